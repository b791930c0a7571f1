//! Credentials in URLs, `scheme://user:password@host`: in the spec's values any password counts, in files only one that is not a placeholder.

use std::ops::Range;

use super::placeholder::is_placeholder;

/// Where the parts of a URL's authority are, as byte ranges of the text it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    user: Range<usize>,
    password: Range<usize>,
    host: Range<usize>,
}

/// The authority of the URL whose `://` is at `at` in `text`, when it has a
/// `user:password@` part: the scheme before it has a letter, and the
/// authority runs to the first `/`, `?`, `#`, quote, angle bracket or space.
fn authority(text: &[u8], at: usize) -> Option<Authority> {
    let scheme_len = text[..at]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        .count();
    if !text[at - scheme_len..at]
        .iter()
        .any(u8::is_ascii_alphabetic)
    {
        return None;
    }
    let start = at + 3;
    let len = text[start..]
        .iter()
        .take_while(|b| {
            !matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>')
                && !b.is_ascii_whitespace()
        })
        .count();
    let authority = &text[start..start + len];
    let userinfo_end = authority.iter().rposition(|b| *b == b'@')?;
    let colon = authority[..userinfo_end].iter().position(|b| *b == b':')?;
    Some(Authority {
        user: start..start + colon,
        password: start + colon + 1..start + userinfo_end,
        host: start + userinfo_end + 1..start + len,
    })
}

/// The byte range of the first real password in a `scheme://user:password@host`
/// URL in `value`: not empty and not a `${VAR}` or `$VAR` to be expanded.
///
/// This is the rule for the spec's values: a value baked into a public
/// image's config is read by everyone who pulls it, so a placeholder-looking
/// password counts too.
pub(super) fn value_password(value: &str) -> Option<Range<usize>> {
    value.match_indices("://").find_map(|(at, _)| {
        let found = authority(value.as_bytes(), at)?;
        let password = &value[found.password.clone()];
        (!password.is_empty() && !password.starts_with('$')).then_some(found.password)
    })
}

/// True when the URL whose `://` is at `at` in `line` (a line of a file)
/// carries a real password. Files are full of documentation and tests, so
/// more than an empty or `$VAR` password is let through: a user or password
/// that is not valid URL userinfo (a template such as `{password}`, `%s`,
/// `<pass>` or a regex), a password under 3 characters, equal to the user
/// or a placeholder (`password`, `changeme`, `xxx`…), and URLs whose user or
/// host is a documentation name (`example.com`, `*.example`, `*.invalid`).
pub(super) fn file_url_has_password(line: &[u8], at: usize) -> bool {
    let Some(found) = authority(line, at) else {
        return false;
    };
    let user = &line[found.user];
    let password = &line[found.password];
    let host = &line[found.host];
    if password.len() < 3 || password.starts_with(b"$") || password == user {
        return false;
    }
    if !is_userinfo(user) || !is_userinfo(password) {
        return false;
    }
    if !host
        .first()
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'[')
    {
        return false;
    }
    let Some(decoded) = percent_decoded(password) else {
        return false;
    };
    !is_placeholder(&decoded) && !is_documentation(user) && !is_documentation(host)
}

/// RFC 3986 userinfo bytes without `:`: unreserved, `%XX` and the sub-delims
/// less `'`, `(` and `)`, which end strings and groups in code around a URL.
fn is_userinfo(part: &[u8]) -> bool {
    let mut i = 0;
    while i < part.len() {
        let b = part[i];
        if b == b'%' {
            let hex = part.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~!$&*+,;=".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// `part` with its `%XX` escapes decoded, if that is UTF-8 (it is valid userinfo already).
fn percent_decoded(part: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        if part[i] == b'%' {
            let hex = std::str::from_utf8(&part[i + 1..i + 3]).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            bytes.push(part[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Names reserved for documentation (RFC 2606): `example.com`, `x.example`, `y.invalid`…
fn is_documentation(part: &[u8]) -> bool {
    let lower = part.to_ascii_lowercase();
    lower.windows(7).any(|w| w == b"example") || lower.ends_with(b".invalid")
}

/// What follows a URL's password: the host is shown, anything past it counted only.
pub(super) fn mask_tail(rest: &str) -> String {
    let host_end = rest[1..]
        .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
        .map_or(rest.len(), |i| i + 1);
    let more = rest[host_end..].chars().count();
    if more == 0 {
        rest.to_string()
    } else {
        format!("{}…(+{more} chars)", &rest[..host_end])
    }
}
