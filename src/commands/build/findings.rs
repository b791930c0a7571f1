//! The secret-finding policy of a build: each finding is allowed, published (a note), or refused (the build stops).
//!
//! A finding is allowed when `--allow-secret` or `[secrets] allow` names its
//! file or a folder holding it; else published when it lies in a library
//! file whose bytes match the hash its package recorded (a wheel's `RECORD`,
//! a conda-meta record): the package's authors shipped it, the user did not
//! leave it there; else refused. The same policy judges the layer writer's
//! findings in a build and the by-name findings of a dry run.

use std::fmt;

use crate::error::Error;
use crate::layer::{LayerPlan, LayerRole};
use crate::plan::BuildPlan;
use crate::scan::{Finding, SecretsFound};

/// A finding in a file that came verbatim from a published package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFinding {
    pub finding: Finding,
    /// `tornado 6.5.2`.
    pub package: String,
    /// What recorded the matching hash: `RECORD`, `conda-meta record`.
    pub record: &'static str,
}

impl fmt::Display for PublishedFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: published file, matches its {} ({})",
            self.package, self.record, self.finding
        )
    }
}

/// The findings a build let through: none of them stops it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Findings that `--allow-secret` or `[secrets] allow` let through.
    pub allowed: Vec<Finding>,
    /// Findings in library files whose bytes match their package's recorded hash: notes, not stops.
    pub published: Vec<PublishedFinding>,
}

/// Stops the build when a layer holds a finding (`found`: each layer's, in
/// layer order) no allow-list covers and that is not in a published library
/// file; returns the findings let through. Runs after the layers are in the
/// store and before any sink sees a byte (I/O: hashes the library files with
/// findings).
pub fn check_findings<'f>(
    plan: &BuildPlan,
    found: impl IntoIterator<Item = &'f [Finding]>,
) -> Result<Findings, Error> {
    let with_layer = found
        .into_iter()
        .zip(&plan.layers)
        .flat_map(|(findings, layer_plan)| findings.iter().map(move |f| (layer_plan, f)));
    judge(with_layer, &plan.allowed_secrets, |layer_plan, finding| {
        published_finding(plan, layer_plan, finding)
    })
}

/// The policy itself: each finding allowed by `allow`, else published when
/// `published` says so, else refused; any refused finding is the error
/// (`SecretsFound`, every refused one named).
fn judge<'f, L: 'f>(
    found: impl IntoIterator<Item = (L, &'f Finding)>,
    allow: &[String],
    mut published: impl FnMut(L, &Finding) -> Result<Option<PublishedFinding>, Error>,
) -> Result<Findings, Error> {
    let mut passed = Findings::default();
    let mut refused = Vec::new();
    for (layer, finding) in found {
        if finding.is_allowed(allow) {
            passed.allowed.push(finding.clone());
        } else if let Some(note) = published(layer, finding)? {
            passed.published.push(note);
        } else {
            refused.push(finding.clone());
        }
    }
    if !refused.is_empty() {
        return Err(SecretsFound { findings: refused }.into());
    }
    Ok(passed)
}

/// The note for a finding in a library file whose bytes match its package's record, if it is one.
fn published_finding(
    plan: &BuildPlan,
    layer_plan: &LayerPlan,
    finding: &Finding,
) -> Result<Option<PublishedFinding>, Error> {
    let Some(library) = plan.library.as_ref() else {
        return Ok(None);
    };
    if layer_plan.role != LayerRole::Library {
        return Ok(None);
    }
    let Some(rel) = under_library(&library.target, &finding.path) else {
        return Ok(None);
    };
    let Some(key) = layer_plan.file_key(finding.path.trim_start_matches('/').as_bytes()) else {
        return Ok(None);
    };
    let Some(found) = library.inventory.published(&library.source, rel, key)? else {
        return Ok(None);
    };
    let package = &library.inventory.packages[found.package];
    Ok(Some(PublishedFinding {
        finding: finding.clone(),
        package: format!("{} {}", package.name, package.version),
        record: found.record,
    }))
}

/// `path` relative to the library's `target` in the image, when it lies below it.
fn under_library<'p>(target: &str, path: &'p str) -> Option<&'p str> {
    let root = target.trim_end_matches('/');
    match path.strip_prefix(root) {
        Some(rest) if rest.starts_with('/') => Some(&rest[1..]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Findings, PublishedFinding, judge, under_library};
    use crate::error::Error;
    use crate::scan::Finding;

    fn finding(path: &str) -> Finding {
        Finding {
            path: path.into(),
            line: None,
            rule: "private-key",
        }
    }

    /// Published when the path is in `published`, as the inventory's hash check would say.
    fn judged(paths: &[&str], allow: &[&str], published: &[&str]) -> Result<Findings, Error> {
        let findings: Vec<Finding> = paths.iter().map(|p| finding(p)).collect();
        let allow: Vec<String> = allow.iter().map(ToString::to_string).collect();
        judge(findings.iter().map(|f| ((), f)), &allow, |(), f| {
            Ok(published
                .contains(&f.path.as_str())
                .then(|| PublishedFinding {
                    finding: f.clone(),
                    package: "tornado 6.5.2".into(),
                    record: "RECORD",
                }))
        })
    }

    #[test]
    fn an_allowed_folder_lets_its_findings_through_before_the_published_check() {
        let passed = judged(
            &["/w/.ssh/id_rsa", "/opt/app/lib/test.key"],
            &["/w/.ssh/", "/opt/app/lib/test.key"],
            &["/opt/app/lib/test.key"],
        )
        .unwrap();
        assert_eq!(
            passed.allowed,
            vec![finding("/w/.ssh/id_rsa"), finding("/opt/app/lib/test.key")]
        );
        assert!(passed.published.is_empty(), "allowed wins over published");
    }

    #[test]
    fn a_published_file_is_a_note_and_anything_else_stops_the_build() {
        let passed = judged(&["/opt/app/lib/test.key"], &[], &["/opt/app/lib/test.key"]).unwrap();
        assert!(passed.allowed.is_empty());
        assert_eq!(passed.published.len(), 1);
        assert_eq!(
            passed.published[0].to_string(),
            "tornado 6.5.2: published file, matches its RECORD (/opt/app/lib/test.key: private-key)"
        );

        let refused = judged(
            &["/opt/app/lib/test.key", "/w/.env", "/w/.ssh/id_rsa"],
            &["/w/.ssh"],
            &["/opt/app/lib/test.key"],
        );
        match refused {
            Err(Error::Secrets(found)) => {
                assert_eq!(
                    found.findings,
                    vec![finding("/w/.env")],
                    "only the refused one"
                )
            }
            other => panic!("expected the refused finding, got {other:?}"),
        }
    }

    #[test]
    fn a_path_is_in_the_library_only_below_its_target() {
        assert_eq!(under_library("/opt/app", "/opt/app/lib/x"), Some("lib/x"));
        assert_eq!(under_library("/opt/app/", "/opt/app/x"), Some("x"));
        assert_eq!(under_library("/opt/app", "/opt/application/x"), None);
        assert_eq!(under_library("/opt/app", "/opt/app"), None);
    }
}
