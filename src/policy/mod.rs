//! The operator's export policy (`--policy FILE`): parse it as strictly as
//! the spec, and judge a build plan's packages, files, sizes and
//! destinations against it, before a byte is read or written.
//!
//! Not for reading a registry or the journal: whether a tag may be
//! overwritten depends on both, and `commands` asks them; this module only
//! says what `overwrite` allows. The folder: `raw` is what serde reads,
//! `parse` checks it into a [`Policy`], `license` reads a package's license
//! as an SPDX expression, `judge` applies the rules.

mod judge;
mod license;
mod parse;
mod raw;

use std::path::{Path, PathBuf};

use globset::GlobMatcher;
use serde::Serialize;

use crate::layer::Excludes;
use crate::spec::SpecError;

pub use judge::Candidate;
pub use license::license_of;
pub use parse::parse_size;

/// A checked policy file.
#[derive(Debug)]
pub struct Policy {
    /// The file as given.
    pub path: PathBuf,
    /// `sha256:…` of the file's bytes: which policy admitted an export.
    pub digest: String,
    licenses: Licenses,
    packages: Packages,
    files: FileRules,
    limits: Limits,
    destinations: Destinations,
}

/// One rule the policy broke, or a warning it raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// `licenses.deny`, `packages.deny_channels`, `files.deny`, `limits.workspace`, `destinations.tag`…
    pub rule: String,
    /// What it is about: a package URL, a path in the image, a layer or destination.
    pub subject: String,
    /// Its license, size, channel or tag, in words.
    pub detail: String,
    /// The line of the policy file that says so (0 when a default says it).
    pub policy_line: usize,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} [{}", self.subject, self.detail, self.rule)?;
        if self.policy_line > 0 {
            write!(f, ", policy line {}", self.policy_line)?;
        }
        f.write_str("]")
    }
}

/// The policy refused an export: every rule it broke.
#[derive(Debug, thiserror::Error)]
#[error("{}", refusal_text(.policy.as_ref(), .verdict))]
pub struct PolicyRefusal {
    /// The policy file and its digest; None when only `--no-overwrite` refused it.
    pub policy: Option<(PathBuf, String)>,
    pub verdict: Verdict,
}

fn refusal_text(policy: Option<&(PathBuf, String)>, verdict: &Verdict) -> String {
    let count = verdict.violations.len();
    let by = match policy {
        Some((path, _)) => format!("the export policy {}", path.display()),
        None => "--no-overwrite".to_string(),
    };
    let mut text = format!(
        "refused by {by} ({count} violation{}):",
        if count == 1 { "" } else { "s" }
    );
    for violation in &verdict.violations {
        text.push_str(&format!("\n  {violation}"));
    }
    text
}

/// What the policy says about one export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    /// `unknown = "warn"` and the like: printed and recorded, they stop nothing.
    pub warnings: Vec<Violation>,
}

impl Verdict {
    /// True when nothing broke a rule.
    pub fn eligible(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Whether an export may replace a tag that exists in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Never: a tag that exists is refused.
    Never,
    /// Only a tag the journal recorded as an export of ours, not deleted.
    Own,
    /// Always (stowage's behaviour without a policy).
    Always,
}

impl Overwrite {
    pub fn name(self) -> &'static str {
        match self {
            Overwrite::Never => "never",
            Overwrite::Own => "own",
            Overwrite::Always => "always",
        }
    }
}

/// A glob and where the policy wrote it.
#[derive(Debug)]
struct Pattern {
    text: String,
    glob: GlobMatcher,
    line: usize,
}

#[derive(Debug, Default)]
struct Licenses {
    deny: Vec<Pattern>,
    allow: Vec<Pattern>,
    /// The line of `allow`, which refuses every license it does not list.
    allow_line: usize,
    unknown: Unknown,
    unknown_line: usize,
}

/// What to do with a package whose license cannot be determined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Unknown {
    #[default]
    Allow,
    Warn,
    Deny,
}

/// `pkg:TYPE/NAME[@VERSION]`, globs in name and version.
#[derive(Debug)]
struct PurlPattern {
    text: String,
    ecosystem: String,
    name: GlobMatcher,
    version: Option<GlobMatcher>,
    line: usize,
}

#[derive(Debug, Default)]
struct Packages {
    deny: Vec<PurlPattern>,
    allow: Vec<PurlPattern>,
    allow_line: usize,
    deny_channels: Vec<Pattern>,
}

/// One `[files] deny` pattern, compiled alone so that a refusal names its line.
#[derive(Debug)]
struct FilePattern {
    text: String,
    /// `!…`: lets through what an earlier pattern denied.
    negated: bool,
    matcher: Excludes,
    line: usize,
}

#[derive(Debug, Default)]
struct FileRules {
    patterns: Vec<FilePattern>,
}

/// A limit and the line that sets it.
#[derive(Debug, Clone, Copy)]
struct Limit {
    value: u64,
    line: usize,
}

#[derive(Debug, Default)]
struct Limits {
    image: Option<Limit>,
    layer: Option<Limit>,
    workspace: Option<Limit>,
    files: Option<Limit>,
}

#[derive(Debug)]
struct Destinations {
    repositories: Vec<Pattern>,
    repositories_line: usize,
    tag: Option<(regex::Regex, usize)>,
    overwrite: Overwrite,
    overwrite_line: usize,
}

impl Default for Destinations {
    fn default() -> Destinations {
        Destinations {
            repositories: Vec::new(),
            repositories_line: 0,
            tag: None,
            overwrite: Overwrite::Own,
            overwrite_line: 0,
        }
    }
}

impl Policy {
    /// What `overwrite` says, and the line that says it (0: the default, `own`).
    pub fn overwrite(&self) -> (Overwrite, usize) {
        (
            self.destinations.overwrite,
            self.destinations.overwrite_line,
        )
    }

    /// `path:line` of a rule, as messages name it.
    pub fn place(&self, line: usize) -> String {
        if line == 0 {
            format!("{} (default)", self.path.display())
        } else {
            format!("{}:{line}", self.path.display())
        }
    }
}

/// Reads and checks the policy file (I/O: reads it).
pub fn read_policy(path: &Path) -> Result<Policy, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let (message, hint) = match e.kind() {
            std::io::ErrorKind::NotFound => (
                "policy file not found".to_string(),
                "check the path given with --policy or STOWAGE_POLICY",
            ),
            std::io::ErrorKind::InvalidData => (
                "the policy file is not valid UTF-8".to_string(),
                "save it as UTF-8 text",
            ),
            _ => (
                format!("cannot read the policy file: {e}"),
                "check that the file is readable by this user",
            ),
        };
        SpecError::whole_file(path, message, hint.to_string())
    })?;
    parse::parse_policy(&text, path)
}

/// Parses policy text; `path` names it in messages.
pub fn parse_policy(text: &str, path: &Path) -> Result<Policy, SpecError> {
    parse::parse_policy(text, path)
}

#[cfg(test)]
mod tests;
