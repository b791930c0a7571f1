//! The export policy at the door of `build`, `push`, `copy` and `check`:
//! read it, judge the export, and ask the registry and the journal whether
//! a tag that exists may be replaced — before anything is written.

use std::path::PathBuf;

use super::Session;
use crate::error::Error;
use crate::exports::Note;
use crate::plan::BuildPlan;
use crate::policy::{self, Candidate, Overwrite, Policy, PolicyRefusal, Verdict, Violation};
use crate::reference::{ImageRef, Location};

/// What the command line says about the policy.
#[derive(Debug, Clone, Default)]
pub struct PolicyRequest {
    /// `--policy FILE` (or `STOWAGE_POLICY`).
    pub file: Option<PathBuf>,
    /// `--no-overwrite`: refuse a tag that exists, with or without a policy.
    pub no_overwrite: bool,
}

/// An export the policy let through: what the record and the provenance carry.
#[derive(Debug, Clone, Default)]
pub struct Admitted {
    /// `sha256:…` of the policy file, when there was one.
    pub digest: Option<String>,
    pub warnings: Vec<Violation>,
    /// The policy file, for the notes.
    pub path: Option<PathBuf>,
}

impl Admitted {
    /// The record's notes: the policy that admitted the export, and its warnings.
    pub fn notes(&self) -> Vec<Note> {
        let policy = self
            .path
            .as_ref()
            .zip(self.digest.as_ref())
            .map(|(path, digest)| policy_note(path, digest));
        policy
            .into_iter()
            .chain(
                self.warnings
                    .iter()
                    .map(|w| Note::PolicyWarning(w.to_string())),
            )
            .collect()
    }
}

/// What the policy says of a build's plan, destinations and tags included (I/O: see [`judge`]).
pub fn judge_build(
    session: &Session,
    request: &PolicyRequest,
    policy: Option<&Policy>,
    plan: &BuildPlan,
) -> Result<Verdict, Error> {
    let contents = policy
        .map(|p| {
            p.judge_build(Candidate {
                packages: plan
                    .library
                    .as_ref()
                    .map_or(&[], |library| library.inventory.packages.as_slice()),
                layers: &plan.layers,
            })
        })
        .unwrap_or_default();
    judge(session, request, policy, contents, &plan.destinations)
}

/// The note that names the policy an export ran under: its absolute path and digest.
pub fn policy_note(path: &std::path::Path, digest: &str) -> Note {
    Note::Policy {
        path: std::path::absolute(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string(),
        digest: digest.to_string(),
    }
}

/// Reads the policy named by `request`, if any (a bad file is exit 2).
pub fn read(request: &PolicyRequest) -> Result<Option<Policy>, Error> {
    Ok(request
        .file
        .as_deref()
        .map(policy::read_policy)
        .transpose()?)
}

/// Everything the policy says about an export: `judged`, what it says of
/// the contents (empty for a copy), then the destinations' rules and the
/// overwrite rule over the registry tags that exist (I/O: one HEAD per tag,
/// the journal when `own`).
pub fn judge(
    session: &Session,
    request: &PolicyRequest,
    policy: Option<&Policy>,
    judged: Verdict,
    destinations: &[Location],
) -> Result<Verdict, Error> {
    let mut verdict = judged;
    let refused = policy
        .map(|p| p.judge_destinations(destinations))
        .unwrap_or_default();
    // A destination already refused is not asked about: it may not even be reachable.
    let open: Vec<Location> = destinations
        .iter()
        .filter(|d| match d {
            Location::Registry(reference) => {
                !refused.iter().any(|v| v.subject == reference.to_string())
            }
            _ => true,
        })
        .cloned()
        .collect();
    verdict.violations.extend(refused);
    verdict
        .violations
        .extend(overwrites(session, request, policy, &open)?);
    Ok(verdict)
}

/// Admits an export the verdict has no violation for, or refuses it with every one.
pub fn admit(policy: Option<&Policy>, verdict: Verdict) -> Result<Admitted, Error> {
    if !verdict.eligible() {
        return Err(Error::Policy(PolicyRefusal {
            policy: policy.map(|p| (p.path.clone(), p.digest.clone())),
            verdict,
        }));
    }
    Ok(Admitted {
        digest: policy.map(|p| p.digest.clone()),
        path: policy.map(|p| p.path.clone()),
        warnings: verdict.warnings,
    })
}

/// The registry destinations whose tag exists and may not be replaced:
/// `overwrite` of the policy (default `own`), or `never` with
/// `--no-overwrite`; without either, nothing is asked.
pub fn overwrites(
    session: &Session,
    request: &PolicyRequest,
    policy: Option<&Policy>,
    destinations: &[Location],
) -> Result<Vec<Violation>, Error> {
    let (mode, line) = match (request.no_overwrite, policy) {
        (true, _) => (Overwrite::Never, 0),
        (false, Some(policy)) => policy.overwrite(),
        (false, None) => (Overwrite::Always, 0),
    };
    if mode == Overwrite::Always {
        return Ok(Vec::new());
    }
    let mut violations = Vec::new();
    for reference in destinations.iter().filter_map(|d| match d {
        Location::Registry(reference) if reference.digest.is_none() => Some(reference),
        _ => None,
    }) {
        let tag = reference.tag_or_latest();
        let Some(digest) = session.registry()?.tag_digest(reference, tag)? else {
            continue;
        };
        let owner = session
            .journal()?
            .exported_tag_owner(&tag_text(reference))?;
        let ours = owner
            .as_ref()
            .is_some_and(|o| o.digest.as_deref() == Some(digest.as_str()));
        if mode == Overwrite::Own && ours {
            continue;
        }
        let by = match &owner {
            Some(o) if ours => format!(
                "it holds export {} (`stowage exports delete {} --yes` frees it)",
                o.id, o.id
            ),
            Some(o) => format!(
                "it held export {} but was replaced since; it now holds {digest}",
                o.id
            ),
            None => format!("it holds {digest}, which this journal did not export"),
        };
        violations.push(Violation {
            rule: "destinations.overwrite".into(),
            subject: reference.to_string(),
            detail: format!("the tag exists and overwrite = \"{}\": {by}", mode.name()),
            policy_line: line,
        });
    }
    Ok(violations)
}

/// `registry/repository:tag`, as the journal's ownership lookup takes it.
fn tag_text(reference: &ImageRef) -> String {
    format!(
        "{}/{}:{}",
        reference.registry,
        reference.repository,
        reference.tag_or_latest()
    )
}
