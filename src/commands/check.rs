//! `stowage check`: may this build be exported under this policy? The plan,
//! the inventory and the policy, plus the checks of a dry run (the start
//! check, the scan of the spec's values and of file names), and whether
//! the destination tags may be replaced; nothing written, nothing recorded.

use std::path::PathBuf;

use serde::Serialize;

use super::Session;
use super::build::{self, BuildEvents};
use super::policy::{self as export_policy, PolicyRequest};
use crate::error::Error;
use crate::plan::{self, BuildOptions, BuildRequest};
use crate::policy::{Verdict, Violation};
use crate::spec;

/// `stowage check` as asked.
#[derive(Debug, Clone)]
pub struct CheckCommand {
    pub spec_file: PathBuf,
    /// The build it judges, as `build --dry-run` would plan it.
    pub request: BuildOptions,
    pub policy: PolicyRequest,
}

/// What `stowage check --json` prints; its shape is documented in docs/policy.md.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub eligible: bool,
    pub violations: Vec<Violation>,
    pub warnings: Vec<Violation>,
    /// `sha256:…` of the policy file.
    #[serde(skip)]
    pub policy_digest: String,
    /// The policy file, for `path:line` in the text output.
    #[serde(skip)]
    pub policy_path: PathBuf,
}

/// Judges the build `command` describes (I/O: reads the spec, the policy
/// and the library's metadata, stats the sources, reads the base as a dry
/// run does, HEADs the destination tags when `overwrite` asks). A failed
/// dry-run check (the start check, a secret found by name) is a violation
/// too, so every reason comes out at once; a bad spec or policy is an error.
pub fn run(
    session: &Session,
    command: &CheckCommand,
    events: &dyn BuildEvents,
) -> Result<CheckReport, Error> {
    let Some(policy) = export_policy::read(&command.policy)? else {
        return Err(Error::usage(
            "`stowage check` needs a policy to check against",
            "give --policy FILE or set STOWAGE_POLICY",
        ));
    };
    let spec = spec::read_spec(&command.spec_file)?;
    let mut options = command.request.clone();
    options.dry_run = true;
    options.policy_digest = Some(policy.digest.clone());
    let access = session.access().ok();
    let plan = plan::plan_build_cached(
        &BuildRequest { spec, options },
        access.as_ref().map(|a| a.store),
    )?;
    events.planned(&plan);
    let mut verdict: Verdict =
        export_policy::judge_build(session, &command.policy, Some(&policy), &plan)?;
    let spec_file = command.spec_file.display().to_string();
    if let Err(e) = build::dry_run_checks(session, plan, events) {
        verdict.violations.push(Violation {
            rule: "build".into(),
            subject: spec_file,
            detail: e.one_line(),
            policy_line: 0,
        });
    }
    Ok(CheckReport {
        eligible: verdict.eligible(),
        violations: verdict.violations,
        warnings: verdict.warnings,
        policy_digest: policy.digest.clone(),
        policy_path: policy.path.clone(),
    })
}
