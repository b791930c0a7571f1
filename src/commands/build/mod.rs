//! `stowage build`: read the spec, plan, lay the app's layers over the base, and write the image to its sinks.
//!
//! A build is a chain of values, each step taking what the one before it
//! made and changing nothing it was given: the spec gives the plan
//! (`plan::plan_build`); the plan and the base (`base`) give the built image
//! in the store (`assemble`: the layers, the findings judged by `findings`,
//! config, manifest and start check); the attestations take that image and
//! give the index that carries them, or nothing (`attestations`);
//! `transport::write_all` writes whichever of the two the sinks get; and the
//! `BuildOutcome` is made once from those values. The reports (`report`)
//! and the export record are made from the outcome. `dry_run` runs the
//! steps that read no file contents. The base is never changed in place:
//! its config is edited as raw JSON (`image::config`) and a new manifest is
//! assembled from the base's layers plus the new ones.

mod assemble;
mod attestations;
mod base;
mod dry_run;
mod events;
mod findings;
mod outcome;
mod owners;
mod report;
mod sbom;
mod shared_contents;

use std::path::PathBuf;

use super::policy::{self as export_policy, Admitted, PolicyRequest};
use super::record::{self, FailedBuild};
use super::sign::{self, Signed, Signer};
use super::{Recorded, Reported, Session, keep_failure_record, keep_record};
use crate::digest::Digest;
use crate::error::Error;
use crate::gzip::CompressPool;
use crate::image::Artifact;
use crate::layer::{SharedContents, WriteSettings};
use crate::plan::{self, BuildPlan, BuildRequest};
use crate::policy::Policy;
use crate::spec;
use crate::transport::{self, Access, SinkOptions, Source};

pub use assemble::BuiltImage;
pub use dry_run::DryRun;
pub use events::BuildEvents;
pub use findings::{Findings, PublishedFinding};
pub use outcome::BuildOutcome;
pub use report::{
    AttestReport, AttestationMetadata, BuildMetadata, DryRunReport, LayerMetadata, PartReport,
    PlannedLayer, RelocatedFile, RelocationReport, ReportFiles, StartCheckReport,
};
pub use sbom::SbomRequest;

/// `stowage build` as asked: the spec file, the build's settings and where to report.
#[derive(Debug, Clone)]
pub struct BuildCommand {
    pub spec_file: PathBuf,
    /// Everything but the spec itself, which is read from `spec_file`.
    pub request: plan::BuildOptions,
    /// Write the image digest here.
    pub digest_file: Option<PathBuf>,
    /// Write build metadata (digest, layers) as JSON here.
    pub metadata_file: Option<PathBuf>,
    /// Write an SBOM of the image here.
    pub sbom: Option<SbomRequest>,
    /// Sign what each registry destination received (`--sign-key`).
    pub signer: Option<Signer>,
    /// `--policy` and `--no-overwrite`.
    pub policy: PolicyRequest,
}

impl BuildCommand {
    /// The report files asked for.
    fn report_files(&self) -> ReportFiles<'_> {
        ReportFiles {
            sbom: self.sbom.as_ref(),
            digest_file: self.digest_file.as_deref(),
            metadata_file: self.metadata_file.as_deref(),
        }
    }
}

/// What `stowage build` did.
#[derive(Debug)]
pub enum BuildResult {
    /// `--dry-run`: the plan and what the checks that read no file contents found; nothing written.
    Planned(Box<DryRun>),
    /// The image, written to every destination.
    Built(Box<Built>),
}

/// A finished build and the plan it ran.
#[derive(Debug)]
pub struct Built {
    pub plan: BuildPlan,
    pub outcome: BuildOutcome,
    /// `--metadata-file`'s JSON, also what `--json` prints.
    pub metadata: BuildMetadata,
    /// The `docker run` line, when a destination can be started from.
    pub run_command: Option<String>,
    /// The signatures written (`--sign-key`).
    pub signed: Vec<Signed>,
}

/// Runs `stowage build` (I/O) and records the export, whether it succeeded or failed (not a dry run).
pub fn run(
    session: &Session,
    command: &BuildCommand,
    events: &dyn BuildEvents,
) -> Reported<BuildResult> {
    let mut failed = FailedBuild {
        spec_path: &command.spec_file,
        requested: &command.request.destinations,
        secret_names: &[],
        plan: None,
    };
    let spec = match spec::read_spec(&command.spec_file) {
        Ok(spec) => spec,
        Err(e) => return failure(session, command, &failed, e.into()),
    };
    let spec_image: Vec<String> = spec.image.iter().map(ToString::to_string).collect();
    if command.request.destinations.is_empty() {
        failed.requested = &spec_image;
    }
    let secret_names = spec.secret_names.clone();
    failed.secret_names = &secret_names;
    let (plan, policy) = match plan_under_policy(session, command, spec) {
        Ok(pair) => pair,
        Err(e) => return failure(session, command, &failed, e),
    };
    events.planned(&plan);
    let admitted = match admit(session, command, policy.as_ref(), &plan, events) {
        Ok(admitted) => admitted,
        Err(e) => {
            failed.plan = Some(&plan);
            return failure(session, command, &failed, e);
        }
    };
    if command.request.dry_run {
        let checked = dry_run::check(session, plan, events).map_err(|e| {
            e.context(format!(
                "cannot build the image described by {}",
                command.spec_file.display()
            ))
        });
        return Reported {
            result: checked.map(|dry| BuildResult::Planned(Box::new(dry))),
            record: Recorded::Nothing,
        };
    }
    if let Err(e) = session.begin_export(&record::build_started(&plan)) {
        failed.plan = Some(&plan);
        return failure(session, command, &failed, e);
    }
    let progress = |digest: &Digest, reached: &[usize]| session.export_progress(digest, reached);
    let outcome = session
        .access()
        .and_then(|access| build_and_write(&plan, &access, events, &progress))
        .map_err(|e| {
            e.context(format!(
                "cannot build the image described by {}",
                command.spec_file.display()
            ))
        });
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            failed.plan = Some(&plan);
            return failure(session, command, &failed, e);
        }
    };
    let metadata = BuildMetadata::new(&plan, &outcome);
    // The image is at every destination from here on: a failure must say so in the record.
    let finished = report::write_reports(&command.report_files(), &plan, &outcome, &metadata)
        .map_err(|e| reached_all(&plan, &outcome, "but a report file was not", e))
        .and_then(|()| {
            sign_pushed(session, command, &plan, &outcome)
                .map_err(|e| reached_all(&plan, &outcome, "but not signed", e))
        });
    let signed = match finished {
        Ok(signed) => signed,
        Err(e) => {
            failed.plan = Some(&plan);
            return failure(session, command, &failed, e);
        }
    };
    let mut new = record_ok(&plan, &outcome);
    new.notes.extend(sign::notes(&signed));
    new.notes.extend(admitted.notes());
    let record = keep_record(session, &new);
    let built = Built {
        plan,
        outcome,
        metadata,
        run_command: new.run_command,
        signed,
    };
    Reported {
        result: Ok(BuildResult::Built(Box::new(built))),
        record,
    }
}

/// The build's request, and the policy it runs under (read now: a bad
/// policy file stops the build before it plans); the provenance names the
/// policy's digest.
/// The spec's plan, owners resolved in the base, with the policy it runs under (I/O).
fn plan_under_policy(
    session: &Session,
    command: &BuildCommand,
    spec: spec::Spec,
) -> Result<(BuildPlan, Option<Policy>), Error> {
    let (request, policy) = under_policy(command, spec)?;
    let request = owners::resolve_owner_names(session, request)?;
    // A store that does not open plans without the library cache; the build then says why it failed.
    let access = session.access().ok();
    let plan = plan::plan_build_cached(&request, access.as_ref().map(|a| a.store))?;
    if command.signer.is_some() {
        sign::check_signable(&plan.destinations)?;
    }
    Ok((plan, policy))
}

fn under_policy(
    command: &BuildCommand,
    spec: spec::Spec,
) -> Result<(BuildRequest, Option<Policy>), Error> {
    let policy = export_policy::read(&command.policy)?;
    let mut options = command.request.clone();
    options.policy_digest = policy.as_ref().map(|p| p.digest.clone());
    Ok((BuildRequest { spec, options }, policy))
}

/// The policy's verdict on the plan, before anything is read or written:
/// admitted with its warnings told to `events`, or refused (I/O: see
/// `commands::policy::judge`).
fn admit(
    session: &Session,
    command: &BuildCommand,
    policy: Option<&Policy>,
    plan: &BuildPlan,
    events: &dyn BuildEvents,
) -> Result<Admitted, Error> {
    let verdict = export_policy::judge_build(session, &command.policy, policy, plan)?;
    let admitted = export_policy::admit(policy, verdict)?;
    for warning in &admitted.warnings {
        events.warning(&format!("export policy: {warning}"));
    }
    Ok(admitted)
}

/// The checks of a build that read no file contents, as `--dry-run` runs
/// them (I/O: the base's manifest, config and tar headers): for `stowage check`.
pub fn dry_run_checks(
    session: &Session,
    plan: BuildPlan,
    events: &dyn BuildEvents,
) -> Result<DryRun, Error> {
    dry_run::check(session, plan, events)
}

/// A failed build is recorded, unless it was a dry run or a usage or spec error, which export nothing.
fn failure<T>(
    session: &Session,
    command: &BuildCommand,
    failed: &FailedBuild<'_>,
    error: Error,
) -> Reported<T> {
    if command.request.dry_run {
        return Reported {
            result: Err(error),
            record: Recorded::Nothing,
        };
    }
    let error = record::build_interrupted(failed, error);
    let record = keep_failure_record(session, &record::build_failed(failed, &error), &error);
    Reported {
        result: Err(error.recorded_as(record.id())),
        record,
    }
}

/// A failure after every destination received the image: the record keeps all of them.
fn reached_all(plan: &BuildPlan, outcome: &BuildOutcome, what_failed: &str, e: Error) -> Error {
    Error::Partial {
        message: format!("the image was written to every destination, {what_failed}"),
        reached: (0..plan.destinations.len()).collect(),
        digest: outcome.digest().to_string(),
        source: Box::new(e),
    }
}

/// Signs what each registry destination received, with `--sign-key`'s key (I/O).
fn sign_pushed(
    session: &Session,
    command: &BuildCommand,
    plan: &BuildPlan,
    outcome: &BuildOutcome,
) -> Result<Vec<Signed>, Error> {
    let Some(signer) = &command.signer else {
        return Ok(Vec::new());
    };
    let access = session.access()?;
    sign::sign_destinations(&access, &plan.destinations, outcome.digest(), signer)
}

/// Runs the plan (I/O): the base read, the image built in the store (the
/// layers' progress and any warning told to `events`), attested when asked,
/// written to every sink, and the cache repository updated.
fn build_and_write(
    plan: &BuildPlan,
    access: &Access<'_>,
    events: &dyn BuildEvents,
    progress: &dyn Fn(&Digest, &[usize]),
) -> Result<BuildOutcome, Error> {
    let warn = |message: &str| events.warning(message);
    let base = base::read_base(plan, access)?;
    let format = base::image_format(plan, &base)?;
    let folders = base::base_folders(plan, &base, access)?;
    let pool = match plan.threads {
        Some(threads) => CompressPool::new(threads),
        None => CompressPool::for_this_machine(),
    };
    let shared = shared_contents::open(plan, *access, &warn);
    let settings = WriteSettings {
        compression: plan.compression,
        mtime: plan.mtime,
        base_folders: &folders,
        pool: &pool,
        progress: events.layer_progress(),
    };
    let shared_contents = shared.as_ref().map(|s| s as &dyn SharedContents);
    let built = assemble::build_image(plan, &base, format, (&settings, shared_contents), access)?;
    let artifact = match attestations::attach(plan, &built, access.store)? {
        Some(index) => Artifact::Index(index),
        None => Artifact::Image(built.image.clone()),
    };
    if let Some(shared) = &shared {
        shared.place_blobs(plan, &built.layers, &warn);
    }
    let source = Source {
        artifact,
        origin: base.origin,
        name: None,
    };
    let reached = |reached: &[usize]| progress(source.artifact.digest(), reached);
    let written = transport::write_all_reporting(
        &plan.destinations,
        &source,
        access,
        &sink_options(plan),
        &reached,
    )?;
    if let Some(shared) = &shared {
        shared.update(plan, &settings, &built.layers, &warn);
    }
    Ok(BuildOutcome {
        built,
        artifact: source.artifact,
        written,
    })
}

/// How the sinks name and date what they write, from the plan.
fn sink_options(plan: &BuildPlan) -> SinkOptions {
    SinkOptions {
        platform: plan.platform.clone(),
        mtime: plan.mtime,
        default_tag: plan.default_tag().to_string(),
        default_reference: plan.default_reference.clone(),
    }
}

/// The export record of a finished build (I/O: stats archive files).
fn record_ok(plan: &BuildPlan, outcome: &BuildOutcome) -> crate::exports::NewExport {
    let published: Vec<String> = outcome
        .built
        .findings
        .published
        .iter()
        .map(ToString::to_string)
        .collect();
    record::build_ok(plan, &outcome.built.image, &outcome.artifact, &published)
}
