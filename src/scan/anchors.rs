//! The anchors of the content rules and the check at each that decides whether a real secret follows.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;

use super::bytes::{
    has_base62_crc32, is_alnum, is_b64, is_token, is_word, looks_generated, run, starts_token,
};
use super::services::{self, Service};
use super::url;

/// What a matched anchor may be the start (or the middle) of.
#[derive(Debug, Clone, Copy)]
enum Anchor {
    PemBegin,
    OpensshBody,
    AwsKeyId,
    AwsSecret,
    GcpKey,
    GitHub,
    GitHubPat,
    GitLab,
    DockerHub,
    Slack,
    PyPi,
    Jwt,
    /// `://`, where a URL may carry a password.
    Url,
    Service(Service),
}

const ANCHORS: &[(&str, Anchor)] = &[
    ("-----BEGIN ", Anchor::PemBegin),
    ("b3BlbnNzaC1rZXktdjE", Anchor::OpensshBody),
    ("AKIA", Anchor::AwsKeyId),
    ("ASIA", Anchor::AwsKeyId),
    ("secret_access_key", Anchor::AwsSecret),
    ("SECRET_ACCESS_KEY", Anchor::AwsSecret),
    ("SecretAccessKey", Anchor::AwsSecret),
    ("secretAccessKey", Anchor::AwsSecret),
    ("\"private_key\"", Anchor::GcpKey),
    ("ghp_", Anchor::GitHub),
    ("gho_", Anchor::GitHub),
    ("ghs_", Anchor::GitHub),
    ("ghu_", Anchor::GitHub),
    ("ghr_", Anchor::GitHub),
    ("github_pat_", Anchor::GitHubPat),
    ("glpat-", Anchor::GitLab),
    ("dckr_pat_", Anchor::DockerHub),
    ("xoxa-", Anchor::Slack),
    ("xoxb-", Anchor::Slack),
    ("xoxp-", Anchor::Slack),
    ("xoxr-", Anchor::Slack),
    ("xoxs-", Anchor::Slack),
    ("xapp-", Anchor::Slack),
    ("pypi-AgEI", Anchor::PyPi),
    ("eyJ", Anchor::Jwt),
    ("://", Anchor::Url),
    ("hooks.slack.com/", Anchor::Service(Service::SlackWebhook)),
    (
        "discord.com/api/webhooks/",
        Anchor::Service(Service::DiscordWebhook),
    ),
    (
        "discordapp.com/api/webhooks/",
        Anchor::Service(Service::DiscordWebhook),
    ),
    (
        "webhook.office.com/webhookb2/",
        Anchor::Service(Service::TeamsWebhook),
    ),
    ("npm_", Anchor::Service(Service::Npm)),
    ("hf_", Anchor::Service(Service::HuggingFace)),
    ("sk_live_", Anchor::Service(Service::Stripe)),
    ("rk_live_", Anchor::Service(Service::Stripe)),
    ("SG.", Anchor::Service(Service::SendGrid)),
    ("AIza", Anchor::Service(Service::GoogleApiKey)),
    ("T3BlbkFJ", Anchor::Service(Service::OpenAi)),
    ("sk-ant-", Anchor::Service(Service::Anthropic)),
    ("shpat_", Anchor::Service(Service::Shopify)),
    ("shpca_", Anchor::Service(Service::Shopify)),
    ("shppa_", Anchor::Service(Service::Shopify)),
    ("shpss_", Anchor::Service(Service::Shopify)),
    ("AccountKey=", Anchor::Service(Service::AzureStorage)),
    ("\"auth\"", Anchor::Service(Service::DockerAuth)),
];

/// One automaton for every anchor, built on first use.
pub(super) fn automaton() -> &'static AhoCorasick {
    static AUTOMATON: OnceLock<AhoCorasick> = OnceLock::new();
    AUTOMATON.get_or_init(|| {
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(ANCHORS.iter().map(|(a, _)| a))
            // A few dozen short constant patterns are far inside the automaton's limits.
            .expect("the constant anchor patterns compile")
    })
}

/// Decides whether a real secret is at the match of anchor `pattern` (of `len` bytes at `at` in `line`): the rule that found it.
pub(super) fn check(pattern: usize, line: &[u8], at: usize, len: usize) -> Option<&'static str> {
    // An anchor cut by the end of the searched part of a line (MAX_LINE) is not whole.
    if at + len > line.len() {
        return None;
    }
    check_anchor(ANCHORS[pattern].1, line, at, len)
}

fn check_anchor(anchor: Anchor, line: &[u8], at: usize, len: usize) -> Option<&'static str> {
    let end = at + len;
    match anchor {
        Anchor::PemBegin => pem_private_key(line, at),
        // A key body line: the header was stripped, or this is line two of a
        // key file whose header is reported already. Only a whole line of
        // base64 counts, so the anchor quoted in code is not a key.
        Anchor::OpensshBody => (line[..at].iter().all(u8::is_ascii_whitespace)
            && run(line, at, is_b64) >= 60)
            .then_some("openssh-private-key"),
        Anchor::AwsKeyId => {
            let body = run(line, at + 4, |b| {
                b.is_ascii_uppercase() || b.is_ascii_digit()
            });
            let id = &line[at..at + 4 + body.min(16)];
            (starts_token(line, at, is_alnum)
                && body == 16
                && !is_alnum(*line.get(at + 20).unwrap_or(&b' '))
                // AWS's documentation writes AKIAIOSFODNN7EXAMPLE: a placeholder, not a key.
                && !id.ends_with(b"EXAMPLE")
                && looks_generated(&id[4..], 32))
            .then_some("aws-access-key-id")
        }
        Anchor::AwsSecret => aws_secret(line, end),
        Anchor::GcpKey => {
            let mut i = end;
            i += run(line, i, |b| b == b' ' || b == b'\t');
            (line.get(i) == Some(&b':')).then_some(())?;
            i += 1;
            i += run(line, i, |b| b == b' ' || b == b'\t');
            line.get(i..)?
                .starts_with(b"\"-----BEGIN")
                .then_some("gcp-service-account-key")
        }
        Anchor::GitHub => github_token(line, at, end),
        Anchor::GitHubPat => github_pat(line, at, end),
        Anchor::GitLab => generated_after(line, at, end, is_token, 20).then_some("gitlab-token"),
        Anchor::DockerHub => {
            generated_after(line, at, end, is_token, 24).then_some("docker-hub-token")
        }
        Anchor::Slack => slack_token(line, at, end),
        Anchor::PyPi => pypi_token(line, at, end),
        Anchor::Jwt => jwt(line, at),
        Anchor::Url => url::file_url_has_password(line, at).then_some("url-credentials"),
        Anchor::Service(service) => services::check(service, line, at, end),
    }
}

/// `-----BEGIN <LABEL> PRIVATE KEY-----` that ends its line or is followed by
/// an escaped newline and the start of a key (a key inside a JSON or code
/// string). A header followed by anything else is a constant in a library
/// that parses keys, not a key; so is a label that is not words ending in
/// `PRIVATE KEY` (a binary's read-only data runs its strings together:
/// `-----BEGIN PRIVATE KEYPRIVATE KEY BLOCK-----`).
fn pem_private_key(line: &[u8], at: usize) -> Option<&'static str> {
    let label_start = at + "-----BEGIN ".len();
    let label_len = run(line, label_start, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '
    });
    let label = &line[label_start..label_start + label_len];
    let after = label_start + label_len;
    if !is_private_key_label(label) || !line.get(after..)?.starts_with(b"-----") {
        return None;
    }
    let rest = &line[after + 5..];
    let trimmed = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&rest[rest.len()..], |i| &rest[i..]);
    let escaped_body = trimmed
        .strip_prefix(b"\\r\\n")
        .or_else(|| trimmed.strip_prefix(b"\\n"));
    let key_follows = match escaped_body {
        None => trimmed.is_empty(),
        // PGP armour may start with headers or a blank line; PEM keys are
        // DER (base64 `M…`), OpenSSH's format, or a legacy encrypted key's headers.
        Some(_) if label.starts_with(b"PGP") => true,
        Some(body) => {
            (body.first() == Some(&b'M') && run(body, 0, is_b64) >= 4)
                || body.starts_with(b"b3BlbnNzaC1rZXktdjE")
                || body.starts_with(b"Proc-Type:")
        }
    };
    if !key_follows {
        return None;
    }
    if label.starts_with(b"OPENSSH") {
        Some("openssh-private-key")
    } else {
        Some("private-key")
    }
}

/// `PRIVATE KEY`, `RSA PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`…: words
/// separated by single spaces, ending in `PRIVATE KEY` (or `… BLOCK`), with
/// no other `PRIVATE` or `KEY` in them.
fn is_private_key_label(label: &[u8]) -> bool {
    let words: Vec<&[u8]> = label.split(|b| *b == b' ').collect();
    let tail: &[&[u8]] = if words.last() == Some(&&b"BLOCK"[..]) {
        &words[..words.len() - 1]
    } else {
        &words
    };
    let Some((qualifiers, [b"PRIVATE", b"KEY"])) = tail.split_last_chunk::<2>() else {
        return false;
    };
    qualifiers.len() <= 2
        && qualifiers.iter().all(|w| {
            !w.is_empty()
                && !w.windows(3).any(|x| x == b"KEY")
                && !w.windows(7).any(|x| x == b"PRIVATE")
        })
}

/// `aws_secret_access_key = <40 base64 characters>` and its JSON and YAML
/// forms; `from` is just past the key's name.
fn aws_secret(line: &[u8], from: usize) -> Option<&'static str> {
    let mut i = from;
    let skip = |i: &mut usize, pred: fn(u8) -> bool| *i += run(line, *i, pred);
    skip(&mut i, |b| {
        b == b'"' || b == b'\'' || b == b' ' || b == b'\t'
    });
    match line.get(i) {
        Some(b'=' | b':') => i += 1,
        _ => return None,
    }
    skip(&mut i, |b| b == b'>' || b == b'=');
    skip(&mut i, |b| {
        b == b'"' || b == b'\'' || b == b' ' || b == b'\t'
    });
    let value_len = run(line, i, is_b64);
    let value = &line[i..i + value_len];
    let after = line.get(i + value_len).copied().unwrap_or(b' ');
    (value_len == 40
        && after != b'='
        && !value.windows(7).any(|w| w == b"EXAMPLE")
        && looks_generated(value, 64))
    .then_some("aws-secret-access-key")
}

/// Three base64url parts joined by dots, the first decoding to a JSON header with `"alg"`.
fn jwt(line: &[u8], at: usize) -> Option<&'static str> {
    let part = is_token;
    if !starts_token(line, at, |b| is_token(b) || b == b'.') {
        return None;
    }
    let header_len = run(line, at, part);
    let mut i = at + header_len;
    for _ in 0..2 {
        if line.get(i) != Some(&b'.') {
            return None;
        }
        let len = run(line, i + 1, part);
        if len < 10 {
            return None;
        }
        i += 1 + len;
    }
    let header = &line[at..at + header_len.min(1024)];
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    (header_len >= 10 && decoded.windows(5).any(|w| w == b"\"alg\"")).then_some("jwt")
}

/// A token that starts at `at` (no word character before it) whose body from
/// `end` is at least `min` bytes of `class` and looks generated.
fn generated_after(line: &[u8], at: usize, end: usize, class: fn(u8) -> bool, min: usize) -> bool {
    let len = run(line, end, class);
    starts_token(line, at, is_word) && len >= min && looks_generated(&line[end..end + len], 64)
}

/// `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` and 36 or more base62 characters
/// whose last six are the CRC32 of the others: GitHub issues no token
/// without it, so a body that fails it is an example or a table, not a token.
fn github_token(line: &[u8], at: usize, end: usize) -> Option<&'static str> {
    let len = run(line, end, is_alnum);
    (starts_token(line, at, is_word) && len >= 36 && has_base62_crc32(&line[end..end + len]))
        .then_some("github-token")
}

/// `github_pat_`, 22 base62 characters, `_` and 59 more: both parts generated.
fn github_pat(line: &[u8], at: usize, end: usize) -> Option<&'static str> {
    let id = run(line, end, is_alnum);
    let secret = run(line, end + id + 1, is_alnum);
    (starts_token(line, at, is_word)
        && id >= 22
        && line.get(end + id) == Some(&b'_')
        && secret >= 59
        && !is_word(*line.get(end + id + 1 + secret).unwrap_or(&b' '))
        && looks_generated(&line[end..end + id], 62)
        && looks_generated(&line[end + id + 1..end + id + 1 + secret], 62))
    .then_some("github-token")
}

/// `xoxb-`… (and the other kinds): dash-separated numeric ids, then a secret
/// of 20 or more letters and digits that looks generated.
fn slack_token(line: &[u8], at: usize, end: usize) -> Option<&'static str> {
    let len = run(line, end, |b| is_alnum(b) || b == b'-');
    let body = &line[end..end + len];
    let secret = body.rsplit(|b| *b == b'-').next().unwrap_or_default();
    // App and user tokens end in hex, bot tokens in letters and digits.
    let symbols = if secret.iter().all(u8::is_ascii_hexdigit) {
        16
    } else {
        62
    };
    (starts_token(line, at, is_word)
        && body.first().is_some_and(u8::is_ascii_digit)
        && len >= 24
        && secret.len() >= 20
        && looks_generated(secret, symbols))
    .then_some("slack-token")
}

/// `pypi-` and a base64url macaroon (version 2) whose location is `pypi.org`
/// (the anchor's `AgEI` is its version, field and length bytes) and whose
/// identifier field follows, with 50 or more characters in all.
fn pypi_token(line: &[u8], at: usize, end: usize) -> Option<&'static str> {
    let macaroon_start = end - "AgEI".len();
    let len = run(line, macaroon_start, is_token);
    if !starts_token(line, at, is_word) || len < 54 {
        return None;
    }
    // The location and the identifier's field header sit in the first 20
    // characters (15 bytes); the identifier's length is the 13th byte.
    let head = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&line[macaroon_start..macaroon_start + 20])
        .ok()?;
    let identifier_len = *head.get(12)?;
    (head.starts_with(b"\x02\x01\x08pypi.org\x02")
        && identifier_len >= 16
        && looks_generated(&line[macaroon_start + 20..macaroon_start + len], 64))
    .then_some("pypi-token")
}

/// True when the anchor `pattern` is a PEM header and `line` holds nothing
/// after the header (trailing blanks aside): its key, if any, is on the next line.
pub(super) fn is_pem_header_line(pattern: usize, line: &[u8]) -> bool {
    matches!(ANCHORS[pattern].1, Anchor::PemBegin) && line.trim_ascii_end().ends_with(b"-----")
}

/// True when `line`, the line after a PEM header, starts a key: base64 (16
/// characters or more; indented in YAML), a legacy encrypted key's
/// `Proc-Type:`, or for PGP armour a header or the blank line before the body.
pub(super) fn starts_key_body(line: &[u8], pgp: bool) -> bool {
    let line = line.trim_ascii();
    if pgp && (line.is_empty() || line.starts_with(b"Version:") || line.starts_with(b"Comment:")) {
        return true;
    }
    run(line, 0, is_b64) >= 16 || line.starts_with(b"Proc-Type:")
}
