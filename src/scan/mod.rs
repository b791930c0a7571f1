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

mod anchors;
mod bytes;
mod keyed;
mod names;
mod placeholder;
mod services;
mod url;

use std::fmt;
use std::io::{self, Read};

use keyed::KeyedFile;

pub use names::{
    DENIED_SECRET_NAMES, DENIED_SECRET_SUFFIXES, is_builtin_secret_name, is_secret_name,
};

/// Only the first 64 KiB of a line are searched: it bounds the memory a line
/// split across reads may take, and lines that long are minified code or
/// base64 output cells, where a token is rare and a false match likely.
pub const MAX_LINE: usize = 64 * 1024;

/// Content rules: what each finds. Names are stable; they are what findings print.
pub const CONTENT_RULES: &[(&str, &str)] = &[
    (
        "private-key",
        "a PEM private key header (-----BEGIN … PRIVATE KEY-----) on its own line before a key body, or before an escaped newline and a key",
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
        "a GitHub token: ghp_, gho_, ghs_, ghu_, ghr_ with a valid CRC32, or github_pat_",
    ),
    ("gitlab-token", "a GitLab personal access token: glpat-…"),
    ("docker-hub-token", "a Docker Hub access token: dckr_pat_…"),
    (
        "slack-token",
        "a Slack token: xoxa-, xoxb-, xoxp-, xoxr-, xoxs-, xapp-",
    ),
    (
        "slack-webhook",
        "a Slack webhook: hooks.slack.com/services/T…/B…/…, /workflows/…, /triggers/…",
    ),
    (
        "discord-webhook",
        "a Discord webhook: discord.com/api/webhooks/<id>/<token> (or discordapp.com)",
    ),
    (
        "teams-webhook",
        "a Microsoft Teams webhook: ….webhook.office.com/webhookb2/…/IncomingWebhook/…",
    ),
    ("pypi-token", "a PyPI upload token: pypi-AgEI…"),
    (
        "npm-token",
        "an npm access token: npm_ and 36 letters or digits with a valid CRC32",
    ),
    (
        "huggingface-token",
        "a Hugging Face access token: hf_ and 34 letters",
    ),
    (
        "stripe-key",
        "a Stripe live secret or restricted key: sk_live_…, rk_live_…",
    ),
    ("sendgrid-key", "a SendGrid API key: SG.<22>.<43>"),
    (
        "google-api-key",
        "a Google API key: AIza and 35 more characters",
    ),
    ("openai-key", "an OpenAI API key: sk-… holding T3BlbkFJ"),
    ("anthropic-key", "an Anthropic API key: sk-ant-…"),
    (
        "shopify-token",
        "a Shopify access token: shpat_, shpca_, shppa_, shpss_ and 32 hex digits",
    ),
    (
        "azure-storage-key",
        "an Azure storage account key in a connection string: AccountKey=<88 base64 characters>",
    ),
    (
        "docker-config-auth",
        "a Docker or podman auth file entry: \"auth\": \"<base64 of user:password>\"",
    ),
    (
        "jwt",
        "a JSON Web Token: three base64url parts, the first a JSON header with \"alg\"",
    ),
    (
        "url-credentials",
        "a URL with a password, scheme://user:password@host, any scheme (in files: not a placeholder, template or documentation URL; in the spec's values: any password but an empty or ${VAR} one)",
    ),
    (
        "env-file-secret",
        "a .env file (.env, .env.*, *.env) giving a real value to a deny-listed name or to …_PASS, …_PWD, …_KEY",
    ),
    (
        "npmrc-credentials",
        "an .npmrc giving a real value to _auth, _authToken or _password",
    ),
];

/// One possible secret in a value: the rule and the value masked so it can be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueHit {
    pub rule: &'static str,
    /// Never the value itself: `ghp_…(40 chars)`, or a URL with its password masked.
    pub masked: String,
}

/// What the content rules find in `value`, each rule once, in rule order;
/// `url-credentials` by the stricter rule for values (any password but an
/// empty or `${VAR}` one), with only the password masked.
pub fn scan_value(value: &str) -> Vec<ValueHit> {
    let mut scanner = Scanner::new(&ScanRules::default());
    let mut file = scanner.file(b"");
    file.feed(value.as_bytes());
    file.finish();
    let mut rules: Vec<&'static str> = scanner.into_findings().iter().map(|f| f.rule).collect();
    rules.retain(|rule| *rule != "url-credentials");
    rules.sort_unstable();
    rules.dedup();
    let mut hits: Vec<ValueHit> = rules
        .into_iter()
        .map(|rule| ValueHit {
            rule,
            masked: mask(value),
        })
        .collect();
    if let Some(password) = url::value_password(value) {
        hits.push(ValueHit {
            rule: "url-credentials",
            masked: format!(
                "{}…({} chars){}",
                &value[..password.start],
                value[password.clone()].chars().count(),
                url::mask_tail(&value[password.end..])
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

/// By-name rules: credential stores refused wherever they sit in a source tree.
pub const NAME_RULES: &[(&str, &str)] = &[
    ("netrc-file", ".netrc or _netrc"),
    ("git-credentials-file", ".git-credentials"),
    ("docker-config-file", ".docker/config.json"),
    ("aws-credentials-file", ".aws/credentials"),
    (
        "ssh-key-file",
        ".ssh/id_* (not *.pub); id_rsa, id_dsa, id_ecdsa, id_ed25519 (and their _sk forms) anywhere",
    ),
    ("pypirc-file", ".pypirc"),
    (
        "pgpass-file",
        ".pgpass or pgpass.conf (PostgreSQL passwords)",
    ),
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
        "remove each file or secret (pass secrets at `docker run -e NAME` time instead), or leave it out with `exclude`; \
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
            keyed: KeyedFile::of(path),
            path: shown,
            scanner: self,
            carry: Vec::new(),
            line: 1,
            hits: Vec::new(),
            openssh_header: false,
            pem_pending: None,
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
        // ssh-keygen's default names: a private key even outside .ssh/ (a key copied to a workspace).
        (
            _,
            b"id_rsa" | b"id_dsa" | b"id_ecdsa" | b"id_ed25519" | b"id_ecdsa_sk" | b"id_ed25519_sk",
        ) => Some("ssh-key-file"),
        (_, b".pypirc") => Some("pypirc-file"),
        (_, b".pgpass" | b"pgpass.conf") => Some("pgpass-file"),
        (b".kube", b"config") | (_, b"kubeconfig") => Some("kubeconfig-file"),
        (_, name) if name.ends_with(b".kubeconfig") => Some("kubeconfig-file"),
        _ => None,
    }
}

/// The scan of one file's bytes; `finish` it after the last chunk.
pub struct FileScan<'a> {
    scanner: &'a mut Scanner,
    path: String,
    active: bool,
    keyed: Option<KeyedFile>,
    /// The start of a line that has not ended yet (at most MAX_LINE bytes).
    carry: Vec<u8>,
    /// 1-based number of the line the next byte belongs to.
    line: u64,
    /// (line, rule) found so far in this file, to report each once.
    hits: Vec<(u64, &'static str)>,
    /// An OpenSSH header was reported, so its body lines need not be.
    openssh_header: bool,
    /// A PEM header that ended its line (line, rule, PGP armour): a key
    /// only if the next line starts a key body, which it may be in the next chunk.
    pem_pending: Option<(u64, &'static str, bool)>,
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
        if let Some((line, rule, pgp)) = self.pem_pending.take() {
            let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
            if anchors::starts_key_body(first, pgp) {
                self.hit(line, rule);
            }
        }
        if let Some(keyed) = self.keyed {
            for (line, l) in (self.line..).zip(text.split(|b| *b == b'\n')) {
                if let Some(rule) = keyed.check(l, &self.scanner.rules.secret_names) {
                    self.hit(line, rule);
                }
            }
        }
        let mut counted_to = 0;
        let mut line_no = self.line;
        for m in anchors::automaton().find_iter(text) {
            let at = m.start();
            let line_start = memchr::memrchr(b'\n', &text[..at]).map_or(0, |i| i + 1);
            if at - line_start >= MAX_LINE {
                continue;
            }
            let line_end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
            let line = &text[line_start..line_end.min(line_start + MAX_LINE)];
            let Some(rule) = anchors::check(m.pattern().as_usize(), line, at - line_start, m.len())
            else {
                continue;
            };
            line_no += count_newlines(&text[counted_to..line_start]);
            counted_to = line_start;
            // A header alone on its line is a key only with a key body
            // after it: tools that write keys (ssh-keygen) hold the header
            // line as a constant, followed by anything but a key.
            if anchors::is_pem_header_line(m.pattern().as_usize(), line) {
                let pgp = line.windows(11).any(|w| w == b"PGP PRIVATE");
                if line_end == text.len() {
                    self.pem_pending = Some((line_no, rule, pgp));
                    continue;
                }
                let next = &text[line_end + 1..];
                let next = &next[..memchr::memchr(b'\n', next).unwrap_or(next.len())];
                if !anchors::starts_key_body(next, pgp) {
                    continue;
                }
            }
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
    // memchr's count is one vectorised pass (AVX2 where the CPU has it), not
    // a stop at every line, and it is fast in the tests' dev profile too,
    // where a plain loop kept the compression threads of a big layer waiting.
    memchr::memchr_iter(b'\n', bytes).count() as u64
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

#[cfg(test)]
mod tests;
