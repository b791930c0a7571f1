//! The values the spec writes into the image's config (`[env]`, `[labels]`, `entrypoint`, `command`, `workdir`, `user`), scanned for secrets.
//!
//! A value in the config is read by everyone who pulls the image, so it goes
//! through the same rules as the files a layer adds, plus the rule for
//! credentials in URLs (`crate::scan::scan_value`). Findings are kept in the
//! spec with their place in the file; the build refuses them (a spec error)
//! unless `--allow-secret KEY` or `[secrets] allow` names their key.

use super::raw::{OrderedTable, RawApp};
use super::validator::{Validator, line_col};
use super::{Spec, SpecError};
use crate::scan::scan_value;

/// A value the spec puts into the image's config that looks like a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueFinding {
    /// How `--allow-secret` names it: `env.NAME`, `labels.KEY`, `entrypoint`, `command`, `workdir` or `user`.
    pub key: String,
    /// 1-based line and column of the value in the spec file.
    pub position: (usize, usize),
    pub rule: &'static str,
    /// The value masked (`ghp_…(40 chars)`); the value itself is never kept.
    pub masked: String,
}

/// True when `allow` entry names a value's key rather than a path in the image.
pub fn is_value_key(allow: &str) -> bool {
    allow.starts_with("env.")
        || allow.starts_with("labels.")
        || matches!(allow, "entrypoint" | "command" | "workdir" | "user")
}

impl Validator<'_> {
    /// Every finding in `[env]` and `[labels]` values, `entrypoint`/`command`
    /// arguments, `workdir` and `user`, in file order.
    pub(super) fn value_findings(
        &self,
        app: &RawApp,
        env: Option<&OrderedTable>,
        labels: Option<&OrderedTable>,
    ) -> Vec<ValueFinding> {
        let mut found = Vec::new();
        let tables = [("env", env), ("labels", labels)];
        for (table, entries) in tables {
            for (key, value) in entries.iter().flat_map(|t| t.0.iter()) {
                if let toml::Value::String(text) = value.get_ref() {
                    let key = format!("{table}.{}", key.get_ref());
                    self.scan_one(&key, text, value.span(), &mut found);
                }
            }
        }
        let lists = [("entrypoint", &app.entrypoint), ("command", &app.command)];
        for (key, list) in lists {
            for arg in list.iter().flat_map(|l| l.get_ref()) {
                self.scan_one(key, arg.get_ref(), arg.span(), &mut found);
            }
        }
        for (key, value) in [("workdir", &app.workdir), ("user", &app.user)] {
            if let Some(value) = value {
                self.scan_one(key, value.get_ref(), value.span(), &mut found);
            }
        }
        found.sort_by_key(|f| f.position);
        found
    }

    fn scan_one(
        &self,
        key: &str,
        value: &str,
        span: std::ops::Range<usize>,
        found: &mut Vec<ValueFinding>,
    ) {
        for hit in scan_value(value) {
            found.push(ValueFinding {
                key: key.to_string(),
                position: line_col(self.text, span.start),
                rule: hit.rule,
                masked: hit.masked,
            });
        }
    }
}

impl Spec {
    /// Refuses the first value finding whose key `allow` (from `--allow-secret`
    /// and `[secrets] allow`) does not name: a spec error at the value.
    pub fn check_values(&self, allow: &[String]) -> Result<(), SpecError> {
        let Some(finding) = self.value_findings.iter().find(|f| !allow.contains(&f.key)) else {
            return Ok(());
        };
        let key = &finding.key;
        let (place, remedy) = match key.split_once('.') {
            Some(("env", name)) => (
                format!("[env] `{name}`"),
                format!(
                    "remove it from [env], list \"{name}\" in `[secrets] names`, and pass it when the container starts: `docker run -e {name} IMAGE`"
                ),
            ),
            Some((_, label)) => (
                format!("[labels] `{label}`"),
                "remove it from [labels]: labels are public metadata, and a secret has no place there".to_string(),
            ),
            None if !matches!(key.as_str(), "entrypoint" | "command") => (
                format!("`{key}`"),
                format!("remove it from `{key}`: the image's config is public"),
            ),
            None => (
                format!("`{key}`"),
                format!(
                    "read it from an environment variable when the container starts instead: list its name in `[secrets] names` and pass it with `docker run -e NAME IMAGE`; remove it from `{key}`"
                ),
            ),
        };
        Err(SpecError::at(
            &self.path,
            finding.position,
            format!(
                "{place} holds what looks like a secret ({}: {}); the image's config is readable by anyone who pulls it",
                finding.rule, finding.masked
            ),
            format!(
                "{remedy}; if the value is meant to be public, allow it with `--allow-secret {key}` or `[secrets] allow = [\"{key}\"]`"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::is_value_key;

    #[test]
    fn value_keys_are_not_paths() {
        for key in ["env.GITHUB_PAT", "labels.org.x", "command", "entrypoint"] {
            assert!(is_value_key(key), "{key}");
        }
        for path in ["/opt/app/key.pem", "env", "commands", "/env.X"] {
            assert!(!is_value_key(path), "{path}");
        }
    }
}
