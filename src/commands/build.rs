//! `stowage build`: read the spec, plan, lay the app's layers over the base, and write the image to its sinks.
//!
//! The base is never changed in place: its config is edited as raw JSON
//! (`image::config`) and a new manifest is assembled from the base's layers
//! plus the new ones. The plan is made once and only read from then on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::attestations;
use super::cache_repo;
use super::dry_run::{self, DryRun};
use super::record::{self, FailedBuild};
use super::sign::{self, Signed, Signer};
use super::start_check::{self, CheckedBase};
use super::{Recorded, Reported, Session, SinkDefaults, keep_failure_record, keep_record};
use crate::attest::{SbomBase, SbomFormat, SbomInput, SbomPackage, render_sbom};
use crate::check::Checked;
use crate::digest::Digest;
use crate::error::Error;
use crate::gzip::CompressPool;
use crate::image::attestation::PREDICATE_TYPE;
use crate::image::config::{AddedLayers, edit_config};
use crate::image::{
    self, Artifact, Descriptor, Format, Image, ImageIndex, Layer, Platform, canonical_json, media,
};
use crate::layer::{
    self, BaseFolders, BuiltLayer, Compression, GroupKey, LayerProgress, SharedContents,
    WriteSettings,
};
use crate::plan::{self, BuildPlan, BuildRequest};
use crate::reference::{ImageRef, Transport};
use crate::registry::Origin;
use crate::scan::{Finding, SecretsFound};
use crate::spec;
use crate::transport::{self, Context, SinkOptions, Source, Written};

/// Annotation naming the base image.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// Annotation holding the base manifest's digest.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

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
}

/// `--sbom FILE --sbom-format F`.
#[derive(Debug, Clone)]
pub struct SbomRequest {
    pub path: PathBuf,
    pub format: SbomFormat,
}

/// What a build tells its caller while it runs.
pub trait BuildEvents {
    /// The plan is made; nothing has been read or written yet.
    fn planned(&self, plan: &BuildPlan);

    /// Where the layer writer reports the layers' progress; None (the default) reports nothing.
    fn layer_progress(&self) -> Option<&dyn LayerProgress> {
        None
    }

    /// Something the user should hear about that does not stop the build (the default says nothing).
    fn warning(&self, _message: &str) {}

    /// `--dry-run`, before its checks: what a build checks that it will not (the default says nothing).
    fn not_checked(&self, _what: &[&str]) {}
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
    pub metadata: Value,
    /// The `docker run` line, when a destination can be started from.
    pub run_command: Option<String>,
    /// The signatures written (`--sign-key`).
    pub signed: Vec<Signed>,
}

/// What a finished build produced.
#[derive(Debug)]
pub struct BuildOutcome {
    pub image: Image,
    /// The name to print with the digest (`NAME@sha256:…`), when there is one.
    pub name: Option<ImageRef>,
    pub layers: Vec<BuiltLayer>,
    pub written: Vec<Written>,
    /// Secret-scan findings that `--allow-secret` or `[secrets] allow` let through.
    pub allowed_findings: Vec<Finding>,
    /// Findings in library files whose bytes match their package's recorded hash: notes, not stops.
    pub published_findings: Vec<PublishedFinding>,
    /// The base's manifest digest; None for scratch.
    pub base_digest: Option<Digest>,
    /// What the start check found; None when it was off (`--no-start-check`).
    pub start_check: Option<Checked>,
    /// With `--attest` or `[attest]`: the OCI index of the image and its attestation manifest, which the sinks got.
    pub attested: Option<ImageIndex>,
}

/// A finding in a file that came verbatim from a published package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFinding {
    pub finding: Finding,
    /// `tornado 6.5.2`.
    pub package: String,
    /// What recorded the matching hash: `RECORD`, `conda-meta record`.
    pub record: &'static str,
}

impl std::fmt::Display for PublishedFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: published file, matches its {} ({})",
            self.package, self.record, self.finding
        )
    }
}

impl BuildOutcome {
    /// The line for stdout: where the image went, with its digest (`commands::reference_line`).
    pub fn reference_line(&self, plan: &BuildPlan) -> String {
        let defaults = SinkDefaults {
            tag: plan.default_tag(),
            reference: plan.default_reference.as_ref(),
        };
        super::reference_line(&plan.destinations, self.digest(), &defaults)
    }

    /// What a tag of the export names: the attested index, else the image's manifest.
    pub fn digest(&self) -> &Digest {
        match &self.attested {
            Some(index) => &index.digest,
            None => self.image.digest(),
        }
    }

    /// What the sinks were given: the attested index, else the image.
    pub fn artifact(&self) -> Artifact {
        match &self.attested {
            Some(index) => Artifact::Index(index.clone()),
            None => Artifact::Image(self.image.clone()),
        }
    }
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
    let request = BuildRequest {
        spec,
        options: command.request.clone(),
    };
    let plan = match plan::plan_build(&request) {
        Ok(plan) => plan,
        Err(e) => return failure(session, command, &failed, e),
    };
    if command.signer.is_some()
        && let Err(e) = sign::check_signable(&plan.destinations)
    {
        return failure(session, command, &failed, e);
    }
    events.planned(&plan);
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
    let outcome = session
        .context()
        .and_then(|context| build_image(&plan, &context, events))
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
    let metadata = metadata_json(&outcome, &plan);
    // The image is at every destination from here on: a failure must say so in the record.
    let finished = write_reports(command, &plan, &outcome, &metadata)
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
    let mut new = record::build_ok(&plan, &outcome);
    new.notes.extend(sign::notes(&signed));
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

/// What the SBOM says: the image, its base, and each package with the layer that holds its files.
pub fn sbom_input(plan: &BuildPlan, outcome: &BuildOutcome) -> SbomInput {
    let inventory = &plan.library.inventory;
    let mut layer_of: BTreeMap<usize, Digest> = BTreeMap::new();
    for (index, layer_plan) in plan.library_layers() {
        let Some(built) = outcome.layers.get(index) else {
            continue;
        };
        for part in &layer_plan.parts {
            if let GroupKey::Package(package) = part.key {
                layer_of.insert(package, built.digest.clone());
            }
        }
    }
    // An extension shipped inside a Python package is in that package's layer.
    let listed: Vec<(usize, Digest)> = inventory
        .packages
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let layer = layer_of.get(&p.shipped_by.unwrap_or(i))?;
            Some((i, layer.clone()))
        })
        .collect();
    let position: BTreeMap<usize, usize> = listed
        .iter()
        .enumerate()
        .map(|(pos, (i, _))| (*i, pos))
        .collect();
    let packages = listed
        .into_iter()
        .filter_map(|(i, layer)| {
            let p = inventory.packages.get(i)?;
            Some(SbomPackage {
                ecosystem: p.ecosystem.name().to_string(),
                name: p.name.clone(),
                version: p.version.clone(),
                license: p.license.clone(),
                purl: p.purl.clone(),
                layer,
                shipped_by: p.shipped_by.and_then(|s| position.get(&s).copied()),
            })
        })
        .collect();
    SbomInput {
        image_name: outcome
            .name
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "stowage-image".into()),
        image_digest: outcome.image.digest().clone(),
        base: outcome.base_digest.as_ref().map(|digest| SbomBase {
            name: plan.base_text.clone(),
            digest: Some(digest.clone()),
        }),
        created: plan.created.clone(),
        tool: format!("stowage-{}", env!("CARGO_PKG_VERSION")),
        packages,
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
    let context = session.context()?;
    sign::sign_destinations(&context, &plan.destinations, outcome.digest(), signer)
}

/// Writes `--sbom`, `--digest-file` and `--metadata-file` (I/O).
fn write_reports(
    command: &BuildCommand,
    plan: &BuildPlan,
    outcome: &BuildOutcome,
    metadata: &Value,
) -> Result<(), Error> {
    if let Some(sbom) = &command.sbom {
        let document = render_sbom(&sbom_input(plan, outcome), sbom.format);
        transport::archive::write_atomic(&sbom.path, &document)?;
    }
    if let Some(path) = &command.digest_file {
        transport::archive::write_atomic(path, outcome.digest().as_str().as_bytes())?;
    }
    if let Some(path) = &command.metadata_file {
        let mut text = serde_json::to_vec_pretty(metadata).unwrap_or_default();
        text.push(b'\n');
        transport::archive::write_atomic(path, &text)?;
    }
    Ok(())
}

/// Runs the plan (I/O): base into the store, layers written (their progress
/// and any warning told to `events`), config and manifest assembled, every
/// sink written, and the cache repository updated.
pub fn build_image(
    plan: &BuildPlan,
    context: &Context<'_>,
    events: &dyn BuildEvents,
) -> Result<BuildOutcome, Error> {
    let warn = |message: &str| events.warning(message);
    let base = read_base(plan, context)?;
    let format = image_format(plan, &base)?;
    let folders = base_folders(plan, &base, context)?;
    let mut layers = match &base.image {
        Some(image) => base_layers_in(format, image, base.origin.as_ref(), context)?,
        None => Vec::new(),
    };
    let pool = match plan.threads {
        Some(threads) => CompressPool::new(threads),
        None => CompressPool::for_this_machine(),
    };
    let shared = cache_repo::open(plan, *context, &warn);
    let settings = WriteSettings {
        compression: plan.compression,
        mtime: plan.mtime,
        base_folders: &folders,
        pool: &pool,
        progress: events.layer_progress(),
    };
    let shared_contents = shared.as_ref().map(|s| s as &dyn SharedContents);
    let built = layer::write_layers(&plan.layers, context.store, &settings, shared_contents)?;
    layers.extend(added_layers(format, plan.compression, &built)?);
    let found = built.iter().map(|layer| layer.findings.as_slice());
    let (allowed_findings, published_findings) = check_findings(plan, found)?;
    let image = assemble(plan, &base, format, layers, &built)?;
    let checked_base = CheckedBase {
        image: base.image.as_ref(),
        origin: base.origin.as_ref(),
    };
    let start_check = start_check::check_start(plan, &checked_base, &folders, &image, context)?;
    context.store.write_bytes(image.raw_config())?;
    context.store.write_bytes(image.raw_manifest())?;
    let base_digest = base.image.as_ref().map(|i| i.digest().clone());
    let mut outcome = BuildOutcome {
        image,
        name: plan.output_name(),
        layers: built,
        written: Vec::new(),
        allowed_findings,
        published_findings,
        base_digest,
        start_check,
        attested: None,
    };
    outcome.attested = attestations::attach(plan, &outcome, context.store)?;
    if let Some(shared) = &shared {
        shared.place_blobs(plan, &outcome.layers, &warn);
    }
    outcome.written = write_sinks(plan, outcome.artifact(), base.origin, context)?;
    if let Some(shared) = &shared {
        shared.update(plan, &settings, &outcome.layers, &warn);
    }
    Ok(outcome)
}

/// The manifest family of the image: `--format`, else the base's; refused when it cannot hold the plan's layers.
pub(super) fn image_format(plan: &BuildPlan, base: &Base) -> Result<Format, Error> {
    let format = plan.format.unwrap_or_else(|| {
        base.image
            .as_ref()
            .map(Image::format)
            .unwrap_or(Format::Oci)
    });
    if plan.compression == Compression::Zstd && format == Format::Docker {
        return Err(Error::usage(
            "zstd layers cannot be described in a Docker schema 2 manifest",
            "add --format oci, or use gzip compression",
        ));
    }
    Ok(format)
}

/// The descriptors of the new layers, in the manifest family `format`.
fn added_layers(
    format: Format,
    compression: Compression,
    built: &[BuiltLayer],
) -> Result<Vec<Layer>, Error> {
    let oci_type = match compression {
        Compression::Gzip => media::OCI_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
    };
    built
        .iter()
        .map(|layer| {
            Ok(Layer {
                descriptor: Descriptor::new(
                    format.layer_media_type(oci_type)?,
                    layer.digest.clone(),
                    layer.size,
                ),
                diff_id: layer.diff_id.clone(),
            })
        })
        .collect()
}

/// The new config and manifest, from the base's config and all the layers.
fn assemble(
    plan: &BuildPlan,
    base: &Base,
    format: Format,
    layers: Vec<Layer>,
    built: &[BuiltLayer],
) -> Result<Image, Error> {
    let diff_ids: Vec<_> = built.iter().map(|l| l.diff_id.clone()).collect();
    let added = AddedLayers {
        diff_ids: &diff_ids,
        history: &plan.history,
        created: &plan.created,
    };
    let config = edit_config(base.config.clone(), &plan.config, &plan.platform, &added)?;
    let mut annotations = BTreeMap::new();
    if let Some(image) = &base.image {
        annotations.insert(BASE_DIGEST.to_string(), image.digest().to_string());
        if let Some(name) = &base.name {
            annotations.insert(BASE_NAME.to_string(), name.clone());
        }
    }
    Ok(Image::assemble(
        format,
        canonical_json(&config),
        layers,
        annotations,
    )?)
}

/// Writes the image to every destination of the plan (I/O).
fn write_sinks(
    plan: &BuildPlan,
    artifact: Artifact,
    origin: Option<Origin>,
    context: &Context<'_>,
) -> Result<Vec<Written>, Error> {
    let options = SinkOptions {
        platform: plan.platform.clone(),
        mtime: plan.mtime,
        default_tag: plan.default_tag().to_string(),
        default_reference: plan.default_reference.clone(),
    };
    let source = Source {
        artifact,
        origin,
        name: None,
    };
    Ok(transport::write_all(
        &plan.destinations,
        &source,
        context,
        &options,
    )?)
}

/// Stops the build when a layer holds a finding (`found`: each layer's, in
/// layer order) no allow-list covers and that is not in a published library
/// file; returns the allowed findings and the published ones. Runs after the
/// layers are in the store and before any sink sees a byte (I/O: hashes the
/// library files with findings).
pub(super) fn check_findings<'f>(
    plan: &BuildPlan,
    found: impl IntoIterator<Item = &'f [Finding]>,
) -> Result<(Vec<Finding>, Vec<PublishedFinding>), Error> {
    let mut allowed = Vec::new();
    let mut published = Vec::new();
    let mut refused = Vec::new();
    for (findings, layer_plan) in found.into_iter().zip(&plan.layers) {
        let in_library = layer_plan.name.starts_with("library");
        for finding in findings {
            if finding.is_allowed(&plan.allowed_secrets) {
                allowed.push(finding.clone());
            } else if let Some(note) = published_finding(plan, layer_plan, in_library, finding)? {
                published.push(note);
            } else {
                refused.push(finding.clone());
            }
        }
    }
    if !refused.is_empty() {
        return Err(SecretsFound { findings: refused }.into());
    }
    Ok((allowed, published))
}

/// The note for a finding in a library file whose bytes match its package's record, if it is one.
fn published_finding(
    plan: &BuildPlan,
    layer_plan: &layer::LayerPlan,
    in_library: bool,
    finding: &Finding,
) -> Result<Option<PublishedFinding>, Error> {
    let library = &plan.library;
    let root = library.target.trim_end_matches('/');
    let rel = match finding.path.strip_prefix(root) {
        Some(rest) if in_library && rest.starts_with('/') => &rest[1..],
        _ => return Ok(None),
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

/// What the build starts from.
pub(super) struct Base {
    /// None for scratch.
    pub image: Option<Image>,
    /// Where a registry base's blobs live.
    pub origin: Option<Origin>,
    /// The base's full name, when it has one that is not a local path.
    pub name: Option<String>,
    /// The config JSON to edit.
    pub config: Value,
}

/// Reads the base image (I/O), or makes the empty config for scratch.
pub(super) fn read_base(plan: &BuildPlan, context: &Context<'_>) -> Result<Base, Error> {
    let platform = &plan.platform;
    if matches!(plan.base, Transport::Scratch) {
        return Ok(Base {
            image: None,
            origin: None,
            name: None,
            config: scratch_config(platform),
        });
    }
    let (image, read) = transport::read_image(&plan.base, platform, context)?;
    if plan.explicit_platform
        && let Some(actual) = image.platform()
        && !actual.satisfies(platform)
    {
        return Err(Error::Image(image::ImageError::NoPlatform {
            wanted: platform.to_string(),
            available: actual.to_string(),
        }));
    }
    let config = image.config_json()?;
    Ok(Base {
        image: Some(image),
        origin: read.origin,
        name: read.name,
        config,
    })
}

/// The config of the empty image.
fn scratch_config(platform: &Platform) -> Value {
    let mut config = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    if let Some(variant) = &platform.variant {
        config["variant"] = json!(variant);
    }
    config
}

/// What the base has at the folders above the targets (I/O: reads the base
/// layers' tar headers, fetching them first, unless remembered for this base).
/// Empty for scratch and with `--keep-base-remote`: the defaults stay.
pub(super) fn base_folders(
    plan: &BuildPlan,
    base: &Base,
    context: &Context<'_>,
) -> Result<BaseFolders, Error> {
    let (Some(image), false) = (&base.image, plan.keep_base_remote) else {
        return Ok(BaseFolders::new());
    };
    let wanted: BTreeSet<String> = plan
        .layers
        .iter()
        .flat_map(|l| l.defaulted_ancestors())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    if wanted.is_empty() {
        return Ok(BaseFolders::new());
    }
    if let Some(cached) = layer::base_folders::cached(context.store, image.digest(), &wanted) {
        return Ok(cached);
    }
    transport::ensure_local(
        &Artifact::Image(image.clone()),
        base.origin.as_ref(),
        context,
    )?;
    Ok(layer::base_folders::read(
        context.store,
        image.digest(),
        image.layers(),
        &wanted,
    )?)
}

/// The base's layers, described in `format`, with uncompressed ones gzipped (registries and
/// docker load both prefer it, and it keeps pushes small).
fn base_layers_in(
    format: Format,
    base: &Image,
    origin: Option<&Origin>,
    context: &Context<'_>,
) -> Result<Vec<Layer>, Error> {
    base.layers()
        .iter()
        .map(|layer| {
            let mut descriptor = layer.descriptor.clone();
            if image::is_uncompressed_layer(&descriptor.media_type) {
                if let Some(origin) = origin {
                    context
                        .registry()?
                        .fetch_blob(origin, &descriptor, context.store)?;
                }
                let (digest, size) = layer::gzip_stored_layer(context.store, &descriptor.digest)?;
                descriptor = Descriptor::new(media::OCI_LAYER_GZIP, digest, size);
            }
            descriptor.media_type = format.layer_media_type(&descriptor.media_type)?.to_string();
            Ok(Layer {
                descriptor,
                diff_id: layer.diff_id.clone(),
            })
        })
        .collect()
}

/// Metadata written by `--metadata-file` (and printed by `--json`).
pub fn metadata_json(outcome: &BuildOutcome, plan: &BuildPlan) -> Value {
    let layers: Vec<Value> = outcome
        .layers
        .iter()
        .zip(&plan.layers)
        .map(|(layer, layer_plan)| {
            json!({
                "name": layer.name,
                "digest": layer.digest,
                "diff_id": layer.diff_id,
                "size": layer.size,
                "files": layer.file_count,
                "entries": layer.entry_count,
                "cached": layer.cached,
                "reused": layer.reused,
                "source": layer_plan.sources.iter().map(|s| s.display().to_string()).collect::<Vec<_>>(),
                "packages": parts_json(plan, layer_plan),
            })
        })
        .collect();
    let published: Vec<String> = outcome
        .published_findings
        .iter()
        .map(ToString::to_string)
        .collect();
    json!({
        "published_findings": published,
        "digest": outcome.digest(),
        "manifest_digest": outcome.image.digest(),
        "attestations": attestations_json(outcome),
        "reference": outcome.reference_line(plan),
        "media_type": outcome.artifact().descriptor().media_type,
        "config_digest": outcome.image.config_descriptor().digest,
        "references": outcome.written.iter().map(|w| w.destination.clone()).collect::<Vec<_>>(),
        "layers": layers,
        "relocation": relocation_json(plan),
    })
}

/// Each attestation manifest's digest and the predicate types of its statements; null without `--attest`.
fn attestations_json(outcome: &BuildOutcome) -> Value {
    let Some(index) = &outcome.attested else {
        return Value::Null;
    };
    let manifests: Vec<Value> = index
        .images
        .iter()
        .filter(|m| m.digest() != outcome.image.digest())
        .map(|m| {
            let types: Vec<&String> = m
                .layers()
                .iter()
                .filter_map(|l| l.descriptor.annotations.get(PREDICATE_TYPE))
                .collect();
            json!({"digest": m.digest(), "predicate_types": types})
        })
        .collect();
    json!(manifests)
}

/// The library's prefix rewrite and every file it changes; null when there is none.
fn relocation_json(plan: &BuildPlan) -> Value {
    let Some(relocation) = &plan.library.relocation else {
        return Value::Null;
    };
    let files: Vec<Value> = plan
        .relocated_files()
        .into_iter()
        .map(|(path, kind)| json!({"path": path, "kind": kind.name()}))
        .collect();
    json!({"from": relocation.from, "to": relocation.to, "files": files})
}

/// What a library layer holds: each package (name, version, ecosystem, purl) or folder, with its bytes.
fn parts_json(plan: &BuildPlan, layer: &layer::LayerPlan) -> Vec<Value> {
    layer
        .parts
        .iter()
        .map(|part| match &part.key {
            GroupKey::Package(index) => match plan.library.inventory.packages.get(*index) {
                Some(p) => json!({
                    "name": p.name,
                    "version": p.version,
                    "ecosystem": p.ecosystem.name(),
                    "purl": p.purl,
                    "license": p.license,
                    "files": part.files,
                    "bytes": part.bytes,
                }),
                None => json!({"name": part.label, "files": part.files, "bytes": part.bytes}),
            },
            GroupKey::Folder(path) => {
                json!({"folder": path, "files": part.files, "bytes": part.bytes})
            }
            GroupKey::Unowned => json!({"unowned": true, "files": part.files, "bytes": part.bytes}),
        })
        .collect()
}

/// The plan as `--dry-run --json` prints it.
pub fn plan_json(plan: &BuildPlan) -> Value {
    let layers: Vec<Value> = plan
        .layers
        .iter()
        .map(|l| {
            json!({
                "name": l.name,
                "sources": l.sources.iter().map(|s| s.display().to_string()).collect::<Vec<_>>(),
                "entries": l.entry_count,
                "files": l.file_count,
                "bytes": l.content_bytes,
                "packages": parts_json(plan, l),
            })
        })
        .collect();
    json!({
        "base": plan.base.to_string(),
        "platform": plan.platform.to_string(),
        "layers": layers,
        "relocation": relocation_json(plan),
        "attest": {"sbom": plan.attest.sbom, "provenance": plan.attest.provenance},
        "destinations": plan.destinations.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}
