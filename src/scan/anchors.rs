//! The anchors of the content rules and the check at each that decides whether a real secret follows.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;

use super::bytes::{is_alnum, is_b64, is_token, is_word, run, starts_token};
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
                && !id.ends_with(b"EXAMPLE"))
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
        Anchor::GitHub => (starts_token(line, at, is_word) && run(line, end, is_alnum) >= 36)
            .then_some("github-token"),
        Anchor::GitHubPat => (starts_token(line, at, is_word) && run(line, end, is_word) >= 50)
            .then_some("github-token"),
        Anchor::GitLab => (starts_token(line, at, is_word) && run(line, end, is_token) >= 20)
            .then_some("gitlab-token"),
        Anchor::DockerHub => (starts_token(line, at, is_word) && run(line, end, is_token) >= 24)
            .then_some("docker-hub-token"),
        Anchor::Slack => {
            let i = end;
            (starts_token(line, at, is_word)
                && line.get(i).is_some_and(u8::is_ascii_digit)
                && run(line, i, |b| is_alnum(b) || b == b'-') >= 24)
                .then_some("slack-token")
        }
        Anchor::PyPi => (starts_token(line, at, is_word) && run(line, end, is_token) >= 50)
            .then_some("pypi-token"),
        Anchor::Jwt => jwt(line, at),
        Anchor::Url => url::file_url_has_password(line, at).then_some("url-credentials"),
        Anchor::Service(service) => services::check(service, line, at, end),
    }
}

/// `-----BEGIN <LABEL> PRIVATE KEY-----` that ends its line or is followed by
/// an escaped newline (a key inside a JSON or code string). A header followed
/// by anything else is a constant in a library that parses keys, not a key.
fn pem_private_key(line: &[u8], at: usize) -> Option<&'static str> {
    let label_start = at + "-----BEGIN ".len();
    let label_len = run(line, label_start, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '
    });
    let label = &line[label_start..label_start + label_len];
    let private = label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK");
    let after = label_start + label_len;
    if !private || !line.get(after..)?.starts_with(b"-----") {
        return None;
    }
    let rest = &line[after + 5..];
    let trimmed = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&rest[rest.len()..], |i| &rest[i..]);
    let key_follows =
        trimmed.is_empty() || trimmed.starts_with(b"\\n") || trimmed.starts_with(b"\\r\\n");
    if !key_follows {
        return None;
    }
    if label.starts_with(b"OPENSSH") {
        Some("openssh-private-key")
    } else {
        Some("private-key")
    }
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
    (value_len == 40 && after != b'=' && !value.windows(7).any(|w| w == b"EXAMPLE"))
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
