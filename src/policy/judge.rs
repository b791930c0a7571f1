//! The rules applied: a build plan's packages, files and sizes, and any
//! export's destinations, against a [`Policy`]; every broken rule is kept,
//! not only the first.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::GlobBuilder;

use super::license::{self, license_of, term_name, term_with_exception};
use super::{Limit, Policy, PurlPattern, Unknown, Verdict, Violation};
use crate::inventory::{self, Ecosystem, Package};
use crate::layer::{BaseFolders, LayerPlan, LayerRole, PlannedKind};
use crate::reference::Location;

/// What a build would export, as the policy judges it: the plan's pieces
/// (the policy sits below `plan`, whose errors name the policy's).
#[derive(Clone, Copy)]
pub struct Candidate<'a> {
    /// The library's inventory.
    pub packages: &'a [Package],
    /// The layers the build adds, as planned (paths, sizes, file counts).
    pub layers: &'a [LayerPlan],
}

impl Policy {
    /// What the policy says about a build's contents: its packages' licenses,
    /// names and channels, the paths and sizes of what it adds (its
    /// destinations are [`Policy::judge_destinations`]'s).
    /// Reads nothing: the plan already holds the walk's stats and the inventory.
    pub fn judge_build(&self, plan: Candidate<'_>) -> Verdict {
        let mut verdict = Verdict::default();
        for package in plan.packages {
            self.judge_license(package, &mut verdict);
            self.judge_package(package, &mut verdict);
        }
        self.judge_files(plan, &mut verdict);
        self.judge_limits(plan, &mut verdict);
        verdict
    }

    /// The `[destinations]` rules over the registry destinations (local files are not repositories).
    pub fn judge_destinations(&self, destinations: &[Location]) -> Vec<Violation> {
        let rules = &self.destinations;
        let mut violations = Vec::new();
        for reference in destinations.iter().filter_map(|d| match d {
            Location::Registry(reference) => Some(reference),
            _ => None,
        }) {
            let repository = format!("{}/{}", reference.registry, reference.repository);
            if !rules.repositories.is_empty()
                && !rules
                    .repositories
                    .iter()
                    .any(|p| p.glob.is_match(&repository))
            {
                let listed: Vec<&str> =
                    rules.repositories.iter().map(|p| p.text.as_str()).collect();
                violations.push(Violation {
                    rule: "destinations.repositories".into(),
                    subject: reference.to_string(),
                    detail: format!(
                        "repository {repository} is not one of {}",
                        listed.join(", ")
                    ),
                    policy_line: rules.repositories_line,
                });
            }
            let tag = match (&reference.tag, &reference.digest) {
                (None, Some(_)) => None,
                _ => Some(reference.tag_or_latest()),
            };
            if let (Some(tag), Some((regex, line))) = (tag, &rules.tag)
                && !regex.is_match(tag)
            {
                violations.push(Violation {
                    rule: "destinations.tag".into(),
                    subject: reference.to_string(),
                    detail: format!("tag `{tag}` does not match /{}/", regex.as_str()),
                    policy_line: *line,
                });
            }
        }
        violations
    }

    fn judge_license(&self, package: &Package, verdict: &mut Verdict) {
        let rules = &self.licenses;
        let Some(text) = license_of(package) else {
            self.unknown(package, "no license declared or concluded".into(), verdict);
            return;
        };
        let Some(expression) = license::expression(package.ecosystem, text) else {
            let detail = format!("license \"{text}\" is not an SPDX expression stowage can read");
            self.unknown(package, detail, verdict);
            return;
        };
        let denied_by = |req: &spdx::LicenseReq| {
            let (name, full) = (term_name(req), term_with_exception(req));
            rules
                .deny
                .iter()
                .find(|p| p.glob.is_match(&name) || p.glob.is_match(&full))
        };
        let allowed = |req: &spdx::LicenseReq| {
            let full = term_with_exception(req);
            let name = term_name(req);
            denied_by(req).is_none()
                && (rules.allow.is_empty()
                    || rules
                        .allow
                        .iter()
                        .any(|p| p.glob.is_match(&full) || p.glob.is_match(&name)))
        };
        if expression.evaluate(allowed) {
            return;
        }
        let canonical = expression.to_string();
        let shown = if canonical == text {
            format!("license {text}")
        } else {
            format!("license \"{text}\" ({canonical})")
        };
        let deny = expression.requirements().find_map(|r| denied_by(&r.req));
        let (rule, line) = match deny {
            Some(pattern) => ("licenses.deny", pattern.line),
            None => ("licenses.allow", rules.allow_line),
        };
        let detail = match deny {
            Some(pattern) => format!("{shown}, denied by \"{}\"", pattern.text),
            None => format!("{shown}, not in the allowed licenses"),
        };
        verdict.violations.push(Violation {
            rule: rule.into(),
            subject: subject(package),
            detail,
            policy_line: line,
        });
    }

    /// A package whose license is not known: allowed, warned about or refused, as `unknown` says.
    fn unknown(&self, package: &Package, detail: String, verdict: &mut Verdict) {
        let violation = Violation {
            rule: "licenses.unknown".into(),
            subject: subject(package),
            detail,
            policy_line: self.licenses.unknown_line,
        };
        match self.licenses.unknown {
            Unknown::Allow => {}
            Unknown::Warn => verdict.warnings.push(violation),
            Unknown::Deny => verdict.violations.push(violation),
        }
    }

    fn judge_package(&self, package: &Package, verdict: &mut Verdict) {
        let rules = &self.packages;
        if let Some(pattern) = rules.deny.iter().find(|p| p.matches(package)) {
            verdict.violations.push(Violation {
                rule: "packages.deny".into(),
                subject: subject(package),
                detail: format!("matches \"{}\"", pattern.text),
                policy_line: pattern.line,
            });
        } else if !rules.allow.is_empty() && !rules.allow.iter().any(|p| p.matches(package)) {
            verdict.violations.push(Violation {
                rule: "packages.allow".into(),
                subject: subject(package),
                detail: "not in the allowed packages".into(),
                policy_line: rules.allow_line,
            });
        }
        let Some(channel) = channel_of(package) else {
            return;
        };
        let forms = inventory::conda_channel_names(&channel);
        if let Some(pattern) = rules
            .deny_channels
            .iter()
            .find(|p| forms.iter().any(|f| p.glob.is_match(f)))
        {
            verdict.violations.push(Violation {
                rule: "packages.deny_channels".into(),
                subject: subject(package),
                detail: format!("from channel {channel}, denied by \"{}\"", pattern.text),
                policy_line: pattern.line,
            });
        }
    }

    fn judge_files(&self, plan: Candidate<'_>, verdict: &mut Verdict) {
        let patterns = &self.files.patterns;
        if patterns.is_empty() {
            return;
        }
        let folders = BaseFolders::new();
        // The last pattern that matches a folder or any folder above it, by
        // folder: siblings share it, so each path is matched once, not once
        // per ancestor (`.dockerignore`: the last matching pattern wins).
        let mut above: HashMap<Vec<u8>, Option<usize>> = HashMap::new();
        for layer in plan.layers {
            for entry in layer.planned_entries(&folders) {
                let folder = matches!(entry.kind, PlannedKind::Dir);
                let hit = self.last_file_pattern(entry.path, folder, &mut above);
                if folder {
                    continue;
                }
                let Some(pattern) = hit.map(|i| &patterns[i]).filter(|p| !p.negated) else {
                    continue;
                };
                let size = layer
                    .file_size(entry.index)
                    .map(|s| format!(" ({})", bytes(s)))
                    .unwrap_or_default();
                verdict.violations.push(Violation {
                    rule: "files.deny".into(),
                    subject: format!("/{}", String::from_utf8_lossy(entry.path)),
                    detail: format!("matches \"{}\"{size}", pattern.text),
                    policy_line: pattern.line,
                });
            }
        }
    }

    /// The index of the last `[files] deny` pattern that matches `path` or
    /// a folder above it; `above` keeps the answer for each folder (`folder`:
    /// `path` is one), so what it holds grows with folders, not files.
    fn last_file_pattern(
        &self,
        path: &[u8],
        folder: bool,
        above: &mut HashMap<Vec<u8>, Option<usize>>,
    ) -> Option<usize> {
        let parent = path
            .iter()
            .rposition(|&b| b == b'/')
            .map(|slash| &path[..slash]);
        let inherited = match parent {
            None => None,
            Some(parent) => match above.get(parent) {
                Some(known) => *known,
                None => self.last_file_pattern(parent, true, above),
            },
        };
        let itself = Path::new(OsStr::from_bytes(path));
        let own = self
            .files
            .patterns
            .iter()
            .rposition(|p| p.matcher.matches_itself(itself));
        let hit = own.max(inherited);
        if folder {
            above.insert(path.to_vec(), hit);
        }
        hit
    }

    fn judge_limits(&self, plan: Candidate<'_>, verdict: &mut Verdict) {
        let limits = &self.limits;
        let mut over = |rule: &str,
                        subject: String,
                        size: u64,
                        limit: Option<Limit>,
                        unit: fn(u64) -> String| {
            if let Some(limit) = limit.filter(|l| size > l.value) {
                verdict.violations.push(Violation {
                    rule: format!("limits.{rule}"),
                    subject,
                    detail: format!("{} over the limit of {}", unit(size), unit(limit.value)),
                    policy_line: limit.line,
                });
            }
        };
        let total: u64 = plan.layers.iter().map(|l| l.content_bytes).sum();
        over(
            "image",
            "the image's added layers".into(),
            total,
            limits.image,
            bytes,
        );
        for layer in plan.layers {
            let name = format!("layer {}", layer.name);
            over("layer", name, layer.content_bytes, limits.layer, bytes);
        }
        let workspace: u64 = plan
            .layers
            .iter()
            .filter(|l| l.role == LayerRole::Workspace)
            .map(|l| l.content_bytes)
            .sum();
        over(
            "workspace",
            "the workspace".into(),
            workspace,
            limits.workspace,
            bytes,
        );
        let files: u64 = plan.layers.iter().map(|l| l.file_count).sum();
        over(
            "files",
            "the image's added files".into(),
            files,
            limits.files,
            |n| format!("{n} files"),
        );
    }
}

impl PurlPattern {
    /// `pkg:TYPE/NAME[@VERSION]`; None when it is not one.
    pub(super) fn parse(text: &str, line: usize) -> Option<PurlPattern> {
        let rest = text.strip_prefix("pkg:")?;
        let (ecosystem, rest) = rest.split_once('/')?;
        let ecosystem = ecosystem.to_ascii_lowercase();
        if !["pypi", "conda", "cran", "npm"].contains(&ecosystem.as_str()) {
            return None;
        }
        let (name, version) = match rest.rfind('@').filter(|&i| i > 0) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let name = if ecosystem == "pypi" {
            inventory::pep503(name)
        } else {
            name.to_string()
        };
        let glob = |t: &str| {
            (!t.is_empty())
                .then(|| GlobBuilder::new(t).case_insensitive(true).build().ok())
                .flatten()
                .map(|g| g.compile_matcher())
        };
        Some(PurlPattern {
            text: text.to_string(),
            name: glob(&name)?,
            version: match version {
                Some(v) => Some(glob(v)?),
                None => None,
            },
            ecosystem,
            line,
        })
    }

    fn matches(&self, package: &Package) -> bool {
        let name = match package.ecosystem {
            Ecosystem::Python => inventory::pep503(&package.name),
            _ => package.name.clone(),
        };
        self.ecosystem == package.ecosystem.name()
            && self.name.is_match(&name)
            && self
                .version
                .as_ref()
                .is_none_or(|v| v.is_match(&package.version))
    }
}

/// How a package is named in violations: its package URL.
fn subject(package: &Package) -> String {
    package.purl.clone()
}

/// A conda package's channel as its record wrote it.
fn channel_of(package: &Package) -> Option<String> {
    (package.ecosystem == Ecosystem::Conda)
        .then(|| package.channel.clone())
        .flatten()
}

/// A size in words, exact where rounded: `2.1 GiB (2254857830 bytes)`, `512 B`.
fn bytes(n: u64) -> String {
    let words = crate::units::human_bytes(n);
    if n < 1024 {
        words
    } else {
        format!("{words} ({n} bytes)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel_forms(channel: &str) -> Vec<String> {
        inventory::conda_channel_names(channel)
    }

    #[test]
    fn channel_names() {
        let forms = channel_forms("https://repo.anaconda.com/pkgs/main/linux-64");
        assert!(forms.contains(&"pkgs/main".to_string()), "{forms:?}");
        assert!(forms.contains(&"defaults".to_string()));
        assert!(forms.contains(&"https://repo.anaconda.com/pkgs/main".to_string()));
        let forms = channel_forms("https://conda.anaconda.org/conda-forge/noarch");
        assert!(forms.contains(&"conda-forge".to_string()));
        assert!(!forms.contains(&"defaults".to_string()));
        assert!(channel_forms("pkgs/main").contains(&"defaults".to_string()));
    }

    #[test]
    fn pypi_names_normalise() {
        assert_eq!(inventory::pep503("PyMuPDF"), "pymupdf");
        assert_eq!(inventory::pep503("zope.interface__x"), "zope-interface-x");
    }
}
