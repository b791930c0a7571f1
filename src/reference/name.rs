//! Image references in Docker's grammar (`distribution/reference`), normalised as Docker does: `alpine` is `docker.io/library/alpine:latest`.

use std::fmt;

use super::ReferenceError;
use super::hub::{DOCKER_HUB, api_host, canonical_registry};

/// distribution/reference's limit on the length of a name (without tag or digest).
pub(super) const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A registry image reference, normalised the way Docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalises a reference: `alpine` becomes `docker.io/library/alpine:latest`.
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest
            && !is_digest(d)
        {
            return Err(ReferenceError::InvalidDigest {
                input: s.to_string(),
                digest: d.to_string(),
            });
        }
        // A tag's ':' is the last one after the last '/'; earlier ones belong to a host's port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if tag == Some("") {
            return Err(ReferenceError::EmptyTag {
                input: s.to_string(),
            });
        }
        if let Some(t) = tag
            && !is_tag(t)
        {
            return Err(ReferenceError::InvalidTag {
                input: s.to_string(),
                tag: t.to_string(),
            });
        }
        if name.is_empty() {
            return Err(ReferenceError::InvalidName {
                input: s.to_string(),
                reason: "the repository name is empty".to_string(),
            });
        }
        if name.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                input: s.to_string(),
                len: name.len(),
            });
        }
        let (host, path) = split_host(name);
        if let Some(h) = host
            && !is_host(h)
        {
            return Err(ReferenceError::InvalidHost {
                input: s.to_string(),
                host: h.to_string(),
            });
        }
        check_path(s, host, path)?;

        let registry = host.map_or(DOCKER_HUB, canonical_registry);
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        // The limit holds for the normalised name, as in Docker's own parser:
        // `docker.io/library/` may push a short-looking name over it.
        let normalised = registry.len() + 1 + repository.len();
        if normalised > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                input: s.to_string(),
                len: normalised,
            });
        }
        let tag = match (tag, digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(ImageRef {
            registry: registry.to_string(),
            repository,
            tag,
            digest: digest.map(str::to_string),
        })
    }

    /// `registry/repository`, e.g. `docker.io/library/alpine`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host that serves the registry HTTP API (see `api_host`).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The short form `docker images` shows: `alpine:latest`, `acme/app:1`, `ghcr.io/x/y:2`.
    pub fn familiar(&self) -> String {
        let name = if self.registry == DOCKER_HUB {
            match self.repository.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        };
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{name}:{t}"),
            (None, Some(d)) => format!("{name}@{d}"),
            (None, None) => name,
        }
    }

    /// The tag, or `latest` for a digest-only reference.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// `registry/repository@DIGEST`, the form that pins exact content.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{}@{digest}", self.name())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Docker's rule: the first component is a host when it has '.' or ':' or is `localhost`, and more follows.
fn split_host(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_path(input: &str, host: Option<&str>, path: &str) -> Result<(), ReferenceError> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        let lower = path.to_ascii_lowercase();
        let mut suggestion = match host {
            Some(h) => format!("{h}/{lower}"),
            None => lower,
        };
        // Keep the tag and digest as written: only the name has to be lowercase.
        suggestion.push_str(&input[host.map_or(0, |h| h.len() + 1) + path.len()..]);
        return Err(ReferenceError::Uppercase {
            input: input.to_string(),
            suggestion,
        });
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ReferenceError::InvalidName {
                input: input.to_string(),
                reason: "the name has an empty path component (`//`, or a leading or trailing `/`)"
                    .to_string(),
            });
        }
        if !is_path_component(component) {
            return Err(ReferenceError::InvalidName {
                input: input.to_string(),
                reason: format!("path component `{component}` is not valid"),
            });
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
}

/// `host[:port]` where host is dot-separated DNS labels or a bracketed IPv6 address.
fn is_host(h: &str) -> bool {
    let (host, port) = if let Some(inner) = h.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (h, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if h.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn is_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match t.as_bytes() {
        [] => false,
        [first, rest @ ..] => {
            t.len() <= TAG_MAX
                && word(*first)
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
    }
}

/// `sha256:` + 64 lowercase hex, or `sha512:` + 128.
fn is_digest(d: &str) -> bool {
    let hex_of = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match d.split_once(':') {
        Some(("sha256", hex)) => hex_of(hex, 64),
        Some(("sha512", hex)) => hex_of(hex, 128),
        _ => false,
    }
}
