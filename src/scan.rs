//! The secret scan: finds private keys, tokens and credential files in the files a layer adds, while the layer's single pass streams them.
//!
//! The scan never reads a file itself. `layer` hands it each file's path in
//! the image (for the by-name rules) and then each chunk of the file's bytes
//! as they go into the tar ([`Tee`]), so scanning costs no second read of
//! the tree. What it is not: a guarantee. It looks for the shapes that leak
//! most often (see [`CONTENT_RULES`] and [`NAME_RULES`]); a secret in a shape
//! it does not know goes through, which is why deploy-time secrets belong in
//! `docker run -e`, not in files.
//!
//! How a chunk is searched: one Aho-Corasick pass (SIMD prefilter) over the
//! chunk's complete lines finds *anchors* — fixed prefixes such as `ghp_`,
//! `AKIA` or `-----BEGIN ` — and a hand-written check at each anchor decides
//! whether a real token follows. Most chunks have no anchor at all, so the
//! cost is the prefilter plus a newline count, well under the cost of
//! compressing the same bytes. A line that runs over a chunk boundary is
//! carried (at most [`MAX_LINE`] bytes of it) and searched when it ends.

use std::fmt;
use std::io::{self, Read};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;

/// Environment names ending in these (compared case-insensitively) are deploy-time secrets.
///
/// A bare `_KEY` is not here on purpose: base images set names such as
/// `GPG_KEY` to public key fingerprints, and those must keep working.
pub const DENIED_SECRET_SUFFIXES: &[&str] = &[
    "_SECRET",
    "_PASSWORD",
    "_PASSWD",
    "_PASSPHRASE",
    "_TOKEN",
    "_API_KEY",
    "_ACCESS_KEY",
    "_SECRET_KEY",
    "_PRIVATE_KEY",
];

/// Environment names (compared case-insensitively) that are deploy-time secrets whatever their suffix.
pub const DENIED_SECRET_NAMES: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "NUVLA_API_KEY",
    "NUVLA_API_SECRET",
    "SECRET_KEY",
    "DOCKER_AUTH_CONFIG",
];

/// True when `name` must never be baked into an image: the built-in deny-list (case-insensitive) or one of `extra` (exact).
pub fn is_secret_name(name: &str, extra: &[String]) -> bool {
    is_builtin_secret_name(name) || extra.iter().any(|e| e == name)
}

/// True for the built-in deny-list of secret names (case-insensitive).
pub fn is_builtin_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    DENIED_SECRET_NAMES.contains(&upper.as_str())
        || DENIED_SECRET_SUFFIXES.iter().any(|s| upper.ends_with(s))
}

/// Only the first 64 KiB of a line are searched: it bounds the memory a line
/// split across reads may take, and lines that long are minified code or
/// base64 output cells, where a token is rare and a false match likely.
pub const MAX_LINE: usize = 64 * 1024;

/// Content rules: what each finds. Names are stable; they are what findings print.
pub const CONTENT_RULES: &[(&str, &str)] = &[
    (
        "private-key",
        "a PEM private key header (-----BEGIN … PRIVATE KEY-----) on its own line or before an escaped newline",
    ),
    (
        "openssh-private-key",
        "an OpenSSH private key (its PEM header, or its base64 body b3BlbnNzaC1rZXktdjE…)",
    ),
    (
        "aws-access-key-id",
        "an AWS access key id: AKIA or ASIA and 16 more capitals or digits",
    ),
    (
        "aws-secret-access-key",
        "a 40-character value assigned to aws_secret_access_key / SecretAccessKey",
    ),
    (
        "gcp-service-account-key",
        "a Google service-account JSON \"private_key\" holding a PEM key",
    ),
    (
        "github-token",
        "a GitHub token: ghp_, gho_, ghs_, ghu_, ghr_ or github_pat_",
    ),
    ("gitlab-token", "a GitLab personal access token: glpat-…"),
    ("docker-hub-token", "a Docker Hub access token: dckr_pat_…"),
    (
        "slack-token",
        "a Slack token: xoxa-, xoxb-, xoxp-, xoxr-, xoxs-",
    ),
    ("pypi-token", "a PyPI upload token: pypi-AgEI…"),
    (
        "jwt",
        "a JSON Web Token: three base64url parts, the first a JSON header with \"alg\"",
    ),
    (
        "env-file-secret",
        "a deny-listed name given a value in a .env file (.env, .env.*, *.env)",
    ),
];

/// Rules for the values a spec writes into the image's config (`[env]`,
/// `[labels]`, `entrypoint`, `command`), on top of every content rule.
///
/// Not for file contents: documentation and tests are full of
/// `postgres://user:password@localhost`, but a value baked into a public
/// image's config is read by everyone who pulls it.
pub const VALUE_RULES: &[(&str, &str)] = &[(
    "url-credentials",
    "a URL with a password, scheme://user:password@host (any scheme; a ${VAR} or empty password is fine)",
)];

/// One possible secret in a value: the rule and the value masked so it can be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueHit {
    pub rule: &'static str,
    /// Never the value itself: `ghp_…(40 chars)`, or a URL with its password masked.
    pub masked: String,
}

/// What the content rules and [`VALUE_RULES`] find in `value`, each rule once, in rule order.
pub fn scan_value(value: &str) -> Vec<ValueHit> {
    let mut scanner = Scanner::new(&ScanRules::default());
    let mut file = scanner.file(b"");
    file.feed(value.as_bytes());
    file.finish();
    let mut rules: Vec<&'static str> = scanner.into_findings().iter().map(|f| f.rule).collect();
    rules.sort_unstable();
    rules.dedup();
    let mut hits: Vec<ValueHit> = rules
        .into_iter()
        .map(|rule| ValueHit {
            rule,
            masked: mask(value),
        })
        .collect();
    if let Some(password) = url_password(value) {
        hits.push(ValueHit {
            rule: "url-credentials",
            masked: format!(
                "{}…({} chars){}",
                &value[..password.start],
                value[password.clone()].chars().count(),
                mask_tail(&value[password.end..])
            ),
        });
    }
    hits
}

/// A value shown without giving it away: its first four characters (a
/// token's fixed prefix, such as `ghp_`) and its length.
pub fn mask(value: &str) -> String {
    let head: String = value.chars().take(4).collect();
    format!("{head}…({} chars)", value.chars().count())
}

/// What follows a URL's password: the host is shown, anything past it counted only.
fn mask_tail(rest: &str) -> String {
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

/// The byte range of the first real password in a `scheme://user:password@host`
/// URL in `value`: not empty and not a `${VAR}` or `$VAR` to be expanded.
fn url_password(value: &str) -> Option<std::ops::Range<usize>> {
    let bytes = value.as_bytes();
    for (at, _) in value.match_indices("://") {
        let scheme_len = bytes[..at]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            .count();
        let scheme = &bytes[at - scheme_len..at];
        if !scheme.iter().any(u8::is_ascii_alphabetic) {
            continue;
        }
        let start = at + 3;
        let authority_len = bytes[start..]
            .iter()
            .take_while(|b| {
                !matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>')
                    && !b.is_ascii_whitespace()
            })
            .count();
        let authority = &value[start..start + authority_len];
        let Some(userinfo_end) = authority.rfind('@') else {
            continue;
        };
        let Some(colon) = authority[..userinfo_end].find(':') else {
            continue;
        };
        let password = &authority[colon + 1..userinfo_end];
        if password.is_empty() || password.starts_with('$') {
            continue;
        }
        return Some(start + colon + 1..start + userinfo_end);
    }
    None
}

/// By-name rules: credential stores refused wherever they sit in a source tree.
pub const NAME_RULES: &[(&str, &str)] = &[
    ("netrc-file", ".netrc or _netrc"),
    ("git-credentials-file", ".git-credentials"),
    ("docker-config-file", ".docker/config.json"),
    ("aws-credentials-file", ".aws/credentials"),
    ("ssh-key-file", ".ssh/id_* (not *.pub)"),
    ("pypirc-file", ".pypirc"),
    (
        "kubeconfig-file",
        ".kube/config, kubeconfig or *.kubeconfig",
    ),
];

/// One possible secret: where it is in the image and which rule found it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// The path in the image, e.g. `/home/user/work/.ssh/id_ed25519`.
    pub path: String,
    /// 1-based line for content rules; None for by-name rules (the whole file).
    pub line: Option<u64>,
    pub rule: &'static str,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path, self.rule),
            None => write!(f, "{}: {}", self.path, self.rule),
        }
    }
}

impl Finding {
    /// True when `allow` (normalised image paths) names this file or a folder holding it.
    pub fn is_allowed(&self, allow: &[String]) -> bool {
        allow.iter().any(|a| {
            let a = a.trim_end_matches('/');
            a.is_empty()
                || self.path == a
                || (self.path.starts_with(a) && self.path.as_bytes().get(a.len()) == Some(&b'/'))
        })
    }
}

/// What the scan needs besides the bytes: the names a `.env` file may not set.
#[derive(Debug, Clone, Default)]
pub struct ScanRules {
    /// `[secrets] names`, on top of the built-in deny-list.
    pub secret_names: Vec<String>,
}

/// The static name of a rule, for findings read back from the layer cache.
pub fn rule_named(name: &str) -> Option<&'static str> {
    CONTENT_RULES
        .iter()
        .chain(NAME_RULES)
        .chain(VALUE_RULES)
        .map(|(rule, _)| *rule)
        .find(|rule| *rule == name)
}

/// Findings in a layer that the allow-lists do not cover; the export stops.
#[derive(Debug, thiserror::Error)]
pub struct SecretsFound {
    pub findings: Vec<Finding>,
}

impl fmt::Display for SecretsFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.findings.len();
        write!(
            f,
            "the secret scan found {n} possible secret{} in the files this image adds; nothing was pushed or written:",
            if n == 1 { "" } else { "s" }
        )?;
        for finding in &self.findings {
            write!(f, "\n  {finding}")?;
        }
        Ok(())
    }
}

impl SecretsFound {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        "remove each file or secret (pass secrets at `docker run -e NAME=\"$NAME\"` time instead), or leave it out with `exclude`; \
         if it is meant to be public, allow it by its path in the image with `--allow-secret PATH` or `[secrets] allow = [\"PATH\"]`; \
         `--no-secret-scan` turns the scan off"
            .to_string()
    }
}

/// Collects the findings of one layer as its files stream past.
#[derive(Debug)]
pub struct Scanner {
    rules: ScanRules,
    findings: Vec<Finding>,
}

impl Scanner {
    /// A scanner with no findings yet.
    pub fn new(rules: &ScanRules) -> Scanner {
        Scanner {
            rules: rules.clone(),
            findings: Vec::new(),
        }
    }

    /// Starts a regular file at `path` (relative to the image root, as in the tar):
    /// applies the by-name rules, and returns the scan its bytes go through.
    pub fn file(&mut self, path: &[u8]) -> FileScan<'_> {
        let shown = image_path(path);
        let by_name = name_rule(path);
        if let Some(rule) = by_name {
            self.findings.push(Finding {
                path: shown.clone(),
                line: None,
                rule,
            });
        }
        FileScan {
            // A credential file is refused whole; its lines add nothing.
            active: by_name.is_none(),
            env_file: is_env_file(path),
            path: shown,
            scanner: self,
            carry: Vec::new(),
            line: 1,
            hits: Vec::new(),
            openssh_header: false,
        }
    }

    /// A hard link: it has a name but no bytes of its own (they were scanned at its target).
    pub fn link(&mut self, path: &[u8]) {
        if let Some(rule) = name_rule(path) {
            self.findings.push(Finding {
                path: image_path(path),
                line: None,
                rule,
            });
        }
    }

    /// Everything found, in the order the files went by.
    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }
}

fn image_path(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path).trim_start_matches('/'))
}

/// The finding of the by-name rules for a file at `path` (relative to the
/// image root, as in the tar): judged from the path alone, so a dry run can
/// ask it of the plan without reading a byte. [`Scanner::file`] applies the same.
pub fn name_finding(path: &[u8]) -> Option<Finding> {
    name_rule(path).map(|rule| Finding {
        path: image_path(path),
        line: None,
        rule,
    })
}

/// The by-name rule a path in the image falls under, if any.
fn name_rule(path: &[u8]) -> Option<&'static str> {
    let mut parts = path.rsplit(|b| *b == b'/');
    let base = parts.next().unwrap_or_default();
    let parent = parts.next().unwrap_or_default();
    match (parent, base) {
        (_, b".netrc" | b"_netrc") => Some("netrc-file"),
        (_, b".git-credentials") => Some("git-credentials-file"),
        (b".docker", b"config.json") => Some("docker-config-file"),
        (b".aws", b"credentials") => Some("aws-credentials-file"),
        (b".ssh", name) if name.starts_with(b"id_") && !name.ends_with(b".pub") => {
            Some("ssh-key-file")
        }
        (_, b".pypirc") => Some("pypirc-file"),
        (b".kube", b"config") | (_, b"kubeconfig") => Some("kubeconfig-file"),
        (_, name) if name.ends_with(b".kubeconfig") => Some("kubeconfig-file"),
        _ => None,
    }
}

/// `.env`, `.env.local`, `prod.env`…, but not the templates projects commit on purpose.
fn is_env_file(path: &[u8]) -> bool {
    let base = path.rsplit(|b| *b == b'/').next().unwrap_or_default();
    let template = [b".example" as &[u8], b".sample", b".template", b".dist"]
        .iter()
        .any(|t| base.ends_with(t));
    !template && (base == b".env" || base.starts_with(b".env.") || base.ends_with(b".env"))
}

/// The scan of one file's bytes; `finish` it after the last chunk.
pub struct FileScan<'a> {
    scanner: &'a mut Scanner,
    path: String,
    active: bool,
    env_file: bool,
    /// The start of a line that has not ended yet (at most MAX_LINE bytes).
    carry: Vec<u8>,
    /// 1-based number of the line the next byte belongs to.
    line: u64,
    /// (line, rule) found so far in this file, to report each once.
    hits: Vec<(u64, &'static str)>,
    /// An OpenSSH header was reported, so its body lines need not be.
    openssh_header: bool,
}

impl FileScan<'_> {
    /// Scans the next chunk of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        if !self.active || chunk.is_empty() {
            return;
        }
        let Some(first_nl) = memchr::memchr(b'\n', chunk) else {
            self.push_carry(chunk);
            return;
        };
        if self.carry.is_empty() {
            self.scan_lines(&chunk[..first_nl]);
        } else {
            self.push_carry(&chunk[..first_nl]);
            let carried = std::mem::take(&mut self.carry);
            self.scan_lines(&carried);
            self.carry = carried;
            self.carry.clear();
        }
        self.line += 1;
        let rest = &chunk[first_nl + 1..];
        match memchr::memrchr(b'\n', rest) {
            Some(last_nl) => {
                self.scan_lines(&rest[..last_nl]);
                self.line += 1;
                self.push_carry(&rest[last_nl + 1..]);
            }
            None => self.push_carry(rest),
        }
    }

    /// Scans what is left (a last line without a newline) and records the findings.
    pub fn finish(mut self) {
        if self.active && !self.carry.is_empty() {
            let carried = std::mem::take(&mut self.carry);
            self.scan_lines(&carried);
        }
        let path = self.path;
        self.hits.sort();
        self.scanner
            .findings
            .extend(self.hits.into_iter().map(|(line, rule)| Finding {
                path: path.clone(),
                line: Some(line),
                rule,
            }));
    }

    fn push_carry(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.carry.len());
        self.carry
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn hit(&mut self, line: u64, rule: &'static str) {
        if rule == "openssh-private-key" {
            if self.openssh_header {
                return;
            }
            self.openssh_header = true;
        }
        if !self.hits.contains(&(line, rule)) {
            self.hits.push((line, rule));
        }
    }

    /// Scans `text`: whole lines separated by `\n`, the first of them numbered
    /// `self.line`; leaves `self.line` at the number of the last one.
    fn scan_lines(&mut self, text: &[u8]) {
        if self.env_file {
            for (line, l) in (self.line..).zip(text.split(|b| *b == b'\n')) {
                if env_line_is_secret(l, &self.scanner.rules.secret_names) {
                    self.hit(line, "env-file-secret");
                }
            }
        }
        let mut counted_to = 0;
        let mut line_no = self.line;
        for m in anchors().find_iter(text) {
            let at = m.start();
            let line_start = memchr::memrchr(b'\n', &text[..at]).map_or(0, |i| i + 1);
            if at - line_start >= MAX_LINE {
                continue;
            }
            let line_end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
            let line = &text[line_start..line_end.min(line_start + MAX_LINE)];
            let anchor = ANCHORS[m.pattern().as_usize()].1;
            let Some(rule) = check_anchor(anchor, line, at - line_start, m.len()) else {
                continue;
            };
            line_no += count_newlines(&text[counted_to..line_start]);
            counted_to = line_start;
            // A service-account key's PEM header is the same secret, reported once.
            if rule == "gcp-service-account-key" {
                self.hits.retain(|h| *h != (line_no, "private-key"));
            } else if rule == "private-key"
                && self.hits.contains(&(line_no, "gcp-service-account-key"))
            {
                continue;
            }
            self.hit(line_no, rule);
        }
        self.line = line_no + count_newlines(&text[counted_to..]);
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    // The compiler vectorises this loop; memchr_iter would stop at every line.
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// A reader that shows every byte it reads to a [`FileScan`] on the way through.
pub struct Tee<'s, 'f, R> {
    pub inner: R,
    pub scan: &'s mut FileScan<'f>,
}

impl<R: Read> Read for Tee<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan.feed(&buf[..n]);
        Ok(n)
    }
}

/// What a matched anchor may be the start (or the middle) of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    ("pypi-AgEI", Anchor::PyPi),
    ("eyJ", Anchor::Jwt),
];

fn anchors() -> &'static AhoCorasick {
    static AUTOMATON: OnceLock<AhoCorasick> = OnceLock::new();
    AUTOMATON.get_or_init(|| {
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(ANCHORS.iter().map(|(a, _)| a))
            // A few dozen short constant patterns are far inside the automaton's limits.
            .expect("the constant anchor patterns compile")
    })
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}
fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'/' || b == b'+'
}

/// How many bytes from `from` satisfy `pred`.
fn run(line: &[u8], from: usize, pred: fn(u8) -> bool) -> usize {
    line.get(from..)
        .map_or(0, |rest| rest.iter().take_while(|b| pred(**b)).count())
}

/// True when the byte before `at` does not continue a token of `pred`.
fn starts_token(line: &[u8], at: usize, pred: fn(u8) -> bool) -> bool {
    at == 0 || !pred(line[at - 1])
}

/// Decides whether a real secret starts at the anchor of `len` bytes at `at` in `line`.
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

/// `NAME=value` (optionally `export NAME=value`) with a deny-listed NAME and a non-empty value.
fn env_line_is_secret(line: &[u8], extra: &[String]) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('#') {
        return false;
    }
    let text = text.strip_prefix("export ").unwrap_or(text);
    let Some((name, value)) = text.split_once('=') else {
        return false;
    };
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    !value.is_empty() && !value.starts_with("${") && is_secret_name(name.trim(), extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_with(path: &str, content: &[u8], chunk: usize, names: &[&str]) -> Vec<String> {
        let rules = ScanRules {
            secret_names: names.iter().map(|s| s.to_string()).collect(),
        };
        let mut scanner = Scanner::new(&rules);
        let mut file = scanner.file(path.as_bytes());
        for piece in content.chunks(chunk.max(1)) {
            file.feed(piece);
        }
        file.finish();
        scanner
            .into_findings()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Findings for `content` in a file at `path`, the same whatever the chunk size.
    fn scan(path: &str, content: &[u8]) -> Vec<String> {
        let whole = scan_with(path, content, content.len(), &[]);
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(
                scan_with(path, content, chunk, &[]),
                whole,
                "chunks of {chunk} bytes"
            );
        }
        whole
    }

    fn rules_of(path: &str, content: &str) -> Vec<String> {
        scan(path, content.as_bytes())
            .into_iter()
            .map(|f| f.rsplit(": ").next().unwrap_or_default().to_string())
            .collect()
    }

    // Test tokens are assembled at run time, so this source file does not
    // itself look like it holds secrets to scanners (stowage's own included).
    fn tok(prefix: &str, body: &str, n: usize) -> String {
        format!("{prefix}{}", body.repeat(n))
    }

    #[test]
    fn each_content_rule_has_a_positive_and_a_negative() {
        let begin = "-----BEGIN";
        let cases: Vec<(&str, String, String)> = vec![
            (
                "private-key",
                format!("{begin} RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n"),
                format!("{begin} PUBLIC KEY-----\nMIIBIjANBgkqhkiG\n"),
            ),
            (
                "private-key",
                format!("{{\"key\": \"{begin} EC PRIVATE KEY-----\\nMHcCAQEE\"}}\n"),
                format!("MARKER = \"{begin} EC PRIVATE KEY-----\"\n"),
            ),
            (
                "openssh-private-key",
                format!("{begin} OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"),
                format!("{begin} OPENSSH PUBLIC KEY-----\n"),
            ),
            (
                "openssh-private-key",
                format!("  {}\n", tok("b3BlbnNzaC1rZXktdjE", "AAAAABG5vbmU", 5)),
                format!(
                    "BODY = \"{}\"\n",
                    tok("b3BlbnNzaC1rZXktdjE", "AAAAABG5vbmU", 5)
                ),
            ),
            (
                "aws-access-key-id",
                format!("key = \"{}\"\n", tok("AKIA", "Q3ZT7WX2", 2)),
                format!("key = \"{}\"\n", tok("AKIA", "Q3ZT", 3)),
            ),
            (
                "aws-access-key-id",
                format!("{}\n", tok("ASIA", "Z7WX2QY3", 2)),
                format!("{}\n", tok("AKIAIOSFODNN7", "EXAMPLE", 1)),
            ),
            (
                "aws-secret-access-key",
                format!("aws_secret_access_key = {}\n", tok("", "wJalrXUtnF", 4)),
                "aws_secret_access_key = os.environ['AWS_SECRET_ACCESS_KEY']\n".to_string(),
            ),
            (
                "aws-secret-access-key",
                format!("\"SecretAccessKey\": \"{}\"\n", tok("", "k7Bq/9Zt+A", 4)),
                format!("\"SecretAccessKey\": \"{}\"\n", tok("", "k7Bq/9Zt+A", 3)),
            ),
            (
                "gcp-service-account-key",
                format!("  \"private_key\": \"{begin} PRIVATE KEY-----\\nMIIEvQ\\n\",\n"),
                "  \"private_key\": null,\n".to_string(),
            ),
            (
                "github-token",
                format!("token={}\n", tok("ghp_", "aB3dE5gH7j", 4)),
                format!("token={}\n", tok("ghp_", "aB3dE5", 4)),
            ),
            (
                "github-token",
                format!("{}\n", tok("github_pat_11AB", "cD3eF5gH7j", 6)),
                format!("my_github_pat_{}\n", "x".repeat(60)),
            ),
            (
                "gitlab-token",
                format!("{}\n", tok("glpat-", "xY3_zW9-aB", 2)),
                "glpat-short\n".to_string(),
            ),
            (
                "docker-hub-token",
                format!("{}\n", tok("dckr_pat_", "Ab3-Cd5_Ef", 3)),
                "dckr_pat_\n".to_string(),
            ),
            (
                "slack-token",
                format!("{}\n", tok("xoxb-", "1234567890-", 3)),
                "xoxb-not-a-token\n".to_string(),
            ),
            (
                "pypi-token",
                format!("password = {}\n", tok("pypi-AgEI", "cHlwaS5vcmc", 6)),
                "pypi-AgEI\n".to_string(),
            ),
        ];
        for (rule, positive, negative) in &cases {
            assert_eq!(
                rules_of("/w/file.txt", positive),
                [*rule],
                "{rule} should match {positive:?}"
            );
            assert!(
                rules_of("/w/file.txt", negative).is_empty(),
                "{rule} should not match {negative:?}"
            );
        }
    }

    #[test]
    fn jwt_needs_three_parts_and_a_json_header() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let header = b64("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
        let payload = b64("{\"sub\":\"1234567890\",\"name\":\"x\"}");
        let token = format!("{header}.{payload}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV");
        assert_eq!(
            rules_of("/w/n.ipynb", &format!("Authorization: Bearer {token}\n")),
            ["jwt"]
        );
        assert!(rules_of("/w/n.ipynb", &format!("{header}.{payload}\n")).is_empty());
        let not_jwt = b64("{\"name\":\"a plain json document\"}");
        assert!(
            rules_of("/w/n.ipynb", &format!("{not_jwt}.{payload}.{payload}\n")).is_empty(),
            "base64 JSON without alg is data"
        );
    }

    #[test]
    fn gcp_key_is_reported_once_per_line() {
        let begin = "-----BEGIN";
        let json = format!(
            "{{\n  \"type\": \"service_account\",\n  \"private_key\": \"{begin} PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----\\n\",\n}}\n"
        );
        assert_eq!(
            scan("/app/sa.json", json.as_bytes()),
            ["/app/sa.json:3: gcp-service-account-key"]
        );
    }

    #[test]
    fn each_name_rule_has_a_positive_and_a_negative() {
        let cases = [
            ("netrc-file", "/home/u/.netrc", "/home/u/netrc.txt"),
            (
                "git-credentials-file",
                "/w/.git-credentials",
                "/w/.gitconfig",
            ),
            (
                "docker-config-file",
                "/w/.docker/config.json",
                "/w/docker/config.json",
            ),
            (
                "aws-credentials-file",
                "/w/.aws/credentials",
                "/w/.aws/config",
            ),
            (
                "ssh-key-file",
                "/w/.ssh/id_ed25519",
                "/w/.ssh/id_ed25519.pub",
            ),
            ("pypirc-file", "/w/.pypirc", "/w/pypirc.md"),
            ("kubeconfig-file", "/w/.kube/config", "/w/.kube/cache"),
            ("kubeconfig-file", "/w/prod.kubeconfig", "/w/kubeconfig.md"),
        ];
        for (rule, positive, negative) in cases {
            assert_eq!(
                scan(positive, b"anything"),
                [format!("{positive}: {rule}")],
                "{positive}"
            );
            assert!(scan(negative, b"anything").is_empty(), "{negative}");
        }
        let mut scanner = Scanner::new(&ScanRules::default());
        scanner.link(b"w/.ssh/id_rsa");
        scanner.link(b"w/.ssh/known_hosts");
        let found: Vec<String> = scanner
            .into_findings()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found, ["/w/.ssh/id_rsa: ssh-key-file"]);
    }

    #[test]
    fn env_files_with_deny_listed_names() {
        let text = "# settings\nPYTHON_VERSION=3.12\nGPG_KEY=7169605F62C751356D054A26A821E680E5FA6305\nexport DB_PASSWORD='hunter2'\nAPI_TOKEN=\nNUVLA_API_SECRET=${FROM_ENV}\nMY_URL=x\n";
        assert_eq!(
            scan_with("/w/.env", text.as_bytes(), 5, &["MY_URL"]),
            ["/w/.env:4: env-file-secret", "/w/.env:7: env-file-secret"]
        );
        assert_eq!(
            scan("/w/.env.local", b"GITHUB_TOKEN=abc\n"),
            ["/w/.env.local:1: env-file-secret"]
        );
        assert_eq!(
            scan("/w/prod.env", b"X_SECRET=abc"),
            ["/w/prod.env:1: env-file-secret"]
        );
        assert!(scan("/w/.env.example", b"GITHUB_TOKEN=changeme\n").is_empty());
        assert!(
            scan("/w/notes.txt", b"GITHUB_TOKEN=abc\n").is_empty(),
            "only .env files"
        );
    }

    #[test]
    fn line_numbers_survive_chunking_and_long_lines() {
        let key = tok("AKIA", "Q3ZT7WX2", 2);
        let text = format!("a\n\nb {key}\nc\r\nd {key} e\n{key}");
        assert_eq!(
            scan("/w/f", text.as_bytes()),
            [
                "/w/f:3: aws-access-key-id",
                "/w/f:5: aws-access-key-id",
                "/w/f:6: aws-access-key-id"
            ]
        );
        let late = format!("{}{key}\n{key}\n", "x ".repeat(MAX_LINE / 2));
        assert_eq!(
            scan_with("/w/f", late.as_bytes(), 4096, &[]),
            ["/w/f:2: aws-access-key-id"],
            "past the first 64 KiB of a line is not searched, in any chunking"
        );
        assert_eq!(
            scan_with("/w/f", late.as_bytes(), late.len(), &[]),
            ["/w/f:2: aws-access-key-id"]
        );
        let early = format!("{key}{}\n{key}\n", " y".repeat(MAX_LINE));
        assert_eq!(
            scan_with("/w/f", early.as_bytes(), 1000, &[]),
            ["/w/f:1: aws-access-key-id", "/w/f:2: aws-access-key-id"]
        );
    }

    #[test]
    fn binary_and_empty_files_are_quiet() {
        assert!(scan("/w/empty", b"").is_empty());
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(scan_with("/w/blob.bin", &noise, 8192, &[]).is_empty());
    }

    #[test]
    fn allow_lists_cover_files_and_folders() {
        let finding = Finding {
            path: "/home/user/work/.ssh/id_ed25519".into(),
            line: None,
            rule: "ssh-key-file",
        };
        assert!(finding.is_allowed(&["/home/user/work/.ssh/id_ed25519".into()]));
        assert!(finding.is_allowed(&["/home/user/work/.ssh".into()]));
        assert!(finding.is_allowed(&["/home/user/work/".into()]));
        assert!(!finding.is_allowed(&["/home/user/work/.ss".into()]));
        assert!(!finding.is_allowed(&["/home/user/work/.ssh/id_ed25519.pub".into()]));
        assert!(!finding.is_allowed(&[]));
        assert_eq!(
            finding.to_string(),
            "/home/user/work/.ssh/id_ed25519: ssh-key-file"
        );
    }

    #[test]
    fn secret_names() {
        let none: &[String] = &[];
        // One positive per suffix and per listed name, each with its near miss.
        let cases = [
            ("X_SECRET", "X_SECRETS"),
            ("x_secret", "SECRET"),
            ("DB_PASSWORD", "DB_PASSWORD_FILE"),
            ("FTP_PASSWD", "PASSWD"),
            ("GPG_PASSPHRASE", "PASSPHRASE_HINT"),
            ("GH_TOKEN", "TOKENIZER"),
            ("OPENAI_API_KEY", "API_KEY_FILE"),
            ("S3_ACCESS_KEY", "ACCESS_KEY_ID"),
            ("DJANGO_SECRET_KEY", "SECRET_KEY_BASE_PATH"),
            ("SSH_PRIVATE_KEY", "PRIVATE_KEY_PATH"),
            ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
            ("AWS_SESSION_TOKEN", "AWS_SESSION_NAME"),
            ("nuvla_api_key", "NUVLA_ENDPOINT"),
            ("NUVLA_API_SECRET", "NUVLA_API"),
            ("SECRET_KEY", "KEY"),
            ("DOCKER_AUTH_CONFIG", "DOCKER_CONFIG"),
        ];
        for (secret, harmless) in cases {
            assert!(is_secret_name(secret, none), "{secret}");
            assert!(!is_secret_name(harmless, none), "{harmless}");
        }
        // A base image's ordinary env: python, node and debian images set these.
        for name in [
            "PATH",
            "TOKEN",
            "GPG_KEY",
            "PYTHON_VERSION",
            "PYTHON_SHA256",
            "NODE_VERSION",
            "YARN_VERSION",
            "LANG",
            "HOME",
            "MY_SECRETS",
        ] {
            assert!(!is_secret_name(name, none), "{name}");
        }
        for suffix in DENIED_SECRET_SUFFIXES {
            assert!(is_secret_name(&format!("APP{suffix}"), none), "{suffix}");
            assert!(
                !is_secret_name(&format!("APP{suffix}_PATH"), none),
                "{suffix}"
            );
        }
        for name in DENIED_SECRET_NAMES {
            assert!(is_secret_name(name, none), "{name}");
            assert!(!is_secret_name(&format!("{name}_FILE"), none), "{name}");
        }
        let extra = vec!["DB_URL".to_string()];
        assert!(is_secret_name("DB_URL", &extra));
        assert!(!is_secret_name("db_url", &extra));
    }
    #[test]
    fn values_go_through_the_content_rules_and_never_show_whole() {
        let token = tok("ghp_", "aB3dE5gH7j", 4);
        let hits = scan_value(&token);
        assert_eq!(
            hits,
            [ValueHit {
                rule: "github-token",
                masked: "ghp_…(44 chars)".into()
            }]
        );
        let begin = "-----BEGIN";
        let key = format!("{begin} RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n");
        assert_eq!(scan_value(&key)[0].rule, "private-key");
        assert!(scan_value("python3 -m http.server 8000").is_empty());
        assert!(scan_value("").is_empty());
    }

    #[test]
    fn url_credentials_need_a_real_password() {
        let pass = "s3cr3t";
        let url = format!("postgres://admin:{pass}@db.internal/prod");
        let hits = scan_value(&url);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].rule, "url-credentials");
        assert_eq!(
            hits[0].masked,
            "postgres://admin:…(6 chars)@db.internal…(+5 chars)"
        );
        assert!(!hits[0].masked.contains(pass));
        for found in [
            format!("redis://:{pass}@cache:6379"),
            format!("--db=mysql+pymysql://u:{pass}@h"),
            format!("x-y.z://u:{pass}@h?x=1"),
        ] {
            assert_eq!(
                scan_value(&found)
                    .iter()
                    .map(|h| h.rule)
                    .collect::<Vec<_>>(),
                ["url-credentials"],
                "{found}"
            );
        }
        for fine in [
            "postgres://admin:${DB_PASSWORD}@db/prod",
            "postgres://admin:$DB_PASSWORD@db/prod",
            "postgres://admin:@db/prod",
            "postgres://admin@db/prod",
            "https://example.org/a:b@c",
            "https://example.org/?u=a:b@c",
            "://a:b@c",
            "mailto:a:b@c",
        ] {
            assert!(scan_value(fine).is_empty(), "{fine}");
        }
    }
}
