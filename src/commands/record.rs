//! Turning what a command did into the export record the journal keeps.
//!
//! Pure but for stats of archive files (their size goes into the record);
//! the journal itself (`crate::exports`) only stores what it is given.

use std::path::Path;

use serde_json::Value;

use super::run_command::run_command_for_destinations;
use crate::error::Error;
use crate::exports::{Destination, DestinationKind, DestinationStatus, Kind, NewExport, Note};
use crate::image::{Artifact, Image, ImageIndex, Platform, attestation};
use crate::interrupt;
use crate::plan::BuildPlan;
use crate::reference::{self, Location};

/// A record of a finished build (I/O: stats archive files): `image` as
/// built, `artifact` as the sinks got it (the image, or the index that
/// attests it), and the secret-scan findings in published files, in words.
pub fn build_ok(
    plan: &BuildPlan,
    image: &Image,
    artifact: &Artifact,
    published_findings: &[String],
) -> NewExport {
    let digest = artifact.digest().to_string();
    let config = image.config_json().unwrap_or(Value::Null);
    let run_command = run_command_for_destinations(
        &plan.destinations,
        &digest,
        &config,
        &plan.secret_names,
        plan.output_name().as_ref(),
    );
    NewExport {
        kind: Kind::Build,
        spec: Some(absolute_text(&plan.spec_path)),
        sources: plan.sources(),
        destinations: with_status(&plan.destinations, None, &default_tag(plan)),
        digest: Some(digest),
        size: Some(artifact_size(artifact)),
        error: None,
        interrupted: false,
        run_command,
        secret_names: plan.secret_names.clone(),
        notes: published_findings
            .iter()
            .map(|note| Note::SecretScan(note.clone()))
            .chain(match artifact {
                Artifact::Index(index) => attestation_note(index),
                Artifact::Image(_) => None,
            })
            .collect(),
    }
}

/// The record of a build as it starts: what it reads and where it goes, nothing reached yet.
pub fn build_started(plan: &BuildPlan) -> NewExport {
    started(NewExport {
        kind: Kind::Build,
        spec: Some(absolute_text(&plan.spec_path)),
        sources: plan.sources(),
        destinations: with_status(&plan.destinations, None, &default_tag(plan)),
        digest: None,
        size: None,
        error: None,
        interrupted: false,
        run_command: None,
        secret_names: plan.secret_names.clone(),
        notes: Vec::new(),
    })
}

/// `new` as the record of an export that is only starting: no image, no
/// run line, no destination reached yet (each gets its status as it does).
pub fn started(mut new: NewExport) -> NewExport {
    for destination in &mut new.destinations {
        destination.status = None;
        destination.size = None;
    }
    new.digest = None;
    new.size = None;
    new.run_command = None;
    new
}

/// `attestations: https://spdx.dev/Document, https://slsa.dev/provenance/v1 in sha256:… (for sha256:…)`.
fn attestation_note(index: &ImageIndex) -> Option<Note> {
    let attached = attestation::attached(index).ok()?;
    let notes: Vec<String> = attached
        .iter()
        .map(|a| {
            let types: Vec<&str> = a
                .manifest
                .layers()
                .iter()
                .filter_map(|l| l.descriptor.annotations.get(attestation::PREDICATE_TYPE))
                .map(String::as_str)
                .collect();
            let describes = a
                .describes
                .as_ref()
                .map(|d| format!(" (for {d})"))
                .unwrap_or_default();
            format!("{} in {}{describes}", types.join(", "), a.manifest.digest())
        })
        .collect();
    (!notes.is_empty()).then(|| Note::Attestations(notes.join("; ")))
}

/// How far a failed build got: the destinations it was asked for, and the
/// secret names and plan when it got that far.
pub struct FailedBuild<'a> {
    pub spec_path: &'a Path,
    /// `-o` as given, else the spec's `image` as text.
    pub requested: &'a [String],
    pub secret_names: &'a [String],
    pub plan: Option<&'a BuildPlan>,
}

/// A record of a build that failed, with `error` and its causes on one line,
/// and the destinations that hold the image if a sink failed after others got it.
pub fn build_failed(failed: &FailedBuild<'_>, error: &Error) -> NewExport {
    let destinations = match failed.plan {
        Some(plan) => with_status(&plan.destinations, Some(error), &default_tag(plan)),
        None => failed
            .requested
            .iter()
            .map(|d| match reference::parse_location(d) {
                Ok(t) => Destination::of(&t),
                Err(_) => Destination {
                    destination: d.clone(),
                    kind: DestinationKind::Unknown,
                    ..Destination::default()
                },
            })
            .map(|d| Destination {
                status: Some(DestinationStatus::Failed),
                ..d
            })
            .collect(),
    };
    NewExport {
        kind: Kind::Build,
        spec: Some(absolute_text(failed.spec_path)),
        sources: failed.plan.map(BuildPlan::sources).unwrap_or_default(),
        destinations,
        digest: error.partial_write().map(|(_, digest)| digest.to_string()),
        size: None,
        error: Some(error.one_line()),
        interrupted: error.stopped_by().is_some(),
        run_command: None,
        secret_names: failed.secret_names.to_vec(),
        notes: refusal_notes(error),
    }
}

/// The notes of an export the policy refused: the policy, and every rule broken.
pub fn refusal_notes(error: &Error) -> Vec<Note> {
    let Some(refusal) = error.policy_refusal() else {
        return Vec::new();
    };
    let policy = refusal
        .policy
        .as_ref()
        .map(|(path, digest)| super::policy::policy_note(path, digest));
    policy
        .into_iter()
        .chain(
            refusal
                .verdict
                .violations
                .iter()
                .map(|v| Note::PolicyViolation(v.to_string())),
        )
        .chain(
            refusal
                .verdict
                .warnings
                .iter()
                .map(|w| Note::PolicyWarning(w.to_string())),
        )
        .collect()
}

/// A failed build's error, or when a signal stopped the build, the error
/// that says so and names the destinations that got the image (the record
/// is then `interrupted`, not `failed`).
pub fn build_interrupted(failed: &FailedBuild<'_>, error: Error) -> Error {
    let destinations: Vec<String> = match failed.plan {
        Some(plan) => plan.destinations.iter().map(ToString::to_string).collect(),
        None => failed.requested.to_vec(),
    };
    let what = format!("the build of {}", failed.spec_path.display());
    interrupted(error, what, &destinations)
}

/// [`build_interrupted`] for a push, copy or archive.
pub fn transfer_interrupted(moved: &Moved<'_>, error: Error) -> Error {
    let destinations: Vec<String> = moved.destinations.iter().map(ToString::to_string).collect();
    let what = format!("the {} of {}", moved.kind.as_str(), moved.source);
    interrupted(error, what, &destinations)
}

/// `error` as [`Error::Stopped`] when a signal asked the run to stop: any
/// error after a signal is the stop's (a read cut short, a request dropped).
fn interrupted(error: Error, what: String, destinations: &[String]) -> Error {
    let Some(signal) = interrupt::received() else {
        return error;
    };
    if error.stopped_by().is_some() {
        return error;
    }
    let reached: &[usize] = error.partial_write().map_or(&[], |(reached, _)| reached);
    let (reached, missed): (Vec<_>, Vec<_>) = destinations
        .iter()
        .enumerate()
        .partition(|(index, _)| reached.contains(index));
    let names = |list: Vec<(usize, &String)>| list.into_iter().map(|(_, d)| d.clone()).collect();
    Error::Stopped {
        signal,
        what,
        reached: names(reached),
        missed: names(missed),
        record: None,
        source: Box::new(error),
    }
}

/// What a push, copy or archive moved: the artifact (when it was read) and where it went.
pub struct Moved<'a> {
    pub kind: Kind,
    pub source: &'a str,
    pub destinations: &'a [Location],
    pub artifact: Option<&'a Artifact>,
    /// The secret names of the build that made the artifact, for the run line.
    pub secret_names: &'a [String],
}

/// A record of a push, copy or archive (I/O: stats archive files); `error` for a failed one.
pub fn transfer(moved: &Moved<'_>, failure: Option<&Error>) -> NewExport {
    let error = failure.map(Error::one_line);
    let digest = moved.artifact.map(|a| a.digest().to_string());
    let run_command = match (moved.artifact, &error, &digest) {
        (Some(artifact), None, Some(digest)) => {
            let config = first_image(artifact)
                .and_then(|i| i.config_json().ok())
                .unwrap_or(Value::Null);
            run_command_for_destinations(
                moved.destinations,
                digest,
                &config,
                moved.secret_names,
                None,
            )
        }
        _ => None,
    };
    let destinations = with_status(moved.destinations, failure, "latest");
    let size = match moved.kind {
        Kind::Archive => destinations.iter().find_map(|d| d.size),
        _ => moved.artifact.map(artifact_size),
    };
    NewExport {
        kind: moved.kind,
        spec: None,
        sources: vec![moved.source.to_string()],
        destinations,
        digest: match failure {
            None => digest,
            Some(e) => e.partial_write().map(|(_, digest)| digest.to_string()),
        },
        size: if error.is_none() { size } else { None },
        error,
        interrupted: failure.is_some_and(|e| e.stopped_by().is_some()),
        run_command,
        secret_names: moved.secret_names.to_vec(),
        notes: match moved.artifact {
            Some(Artifact::Index(index)) => attestation_note(index).into_iter().collect(),
            _ => Vec::new(),
        }
        .into_iter()
        .chain(failure.map(refusal_notes).unwrap_or_default())
        .collect(),
    }
}

/// The tag an `oci:` or `oci-archive:` destination without one is written under (as `build`'s sinks choose it).
fn default_tag(plan: &BuildPlan) -> String {
    plan.default_reference
        .as_ref()
        .map(|r| r.tag_or_latest().to_string())
        .unwrap_or_else(|| "latest".into())
}

/// `oci:DIR` as `oci:DIR:TAG` with the tag it was written under, so a record says which tag is its own.
fn with_tag(transport: &Location, default_tag: &str) -> Location {
    match transport {
        Location::Oci { path, tag: None } => Location::Oci {
            path: path.clone(),
            tag: Some(default_tag.to_string()),
        },
        Location::OciArchive { path, tag: None } => Location::OciArchive {
            path: path.clone(),
            tag: Some(default_tag.to_string()),
        },
        other => other.clone(),
    }
}

/// Each destination with what the export left there: every one when it
/// went through; after a failure, those the error says got the image, and
/// `failed` for the rest. Layouts and OCI archives name the tag written.
fn with_status(
    destinations: &[Location],
    failure: Option<&Error>,
    default_tag: &str,
) -> Vec<Destination> {
    let reached = |index: usize| match failure {
        None => true,
        Some(e) => e
            .partial_write()
            .is_some_and(|(reached, _)| reached.contains(&index)),
    };
    destinations
        .iter()
        .enumerate()
        .map(|(index, transport)| {
            let destination = Destination::of(&with_tag(transport, default_tag));
            if reached(index) {
                Destination {
                    status: Some(DestinationStatus::reached(&destination.kind)),
                    ..destination
                }
            } else {
                // A file at the path now is not this export's: its size says nothing.
                Destination {
                    status: Some(DestinationStatus::Failed),
                    size: None,
                    ..destination
                }
            }
        })
        .collect()
}

fn absolute_text(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

fn first_image(artifact: &Artifact) -> Option<&Image> {
    match artifact {
        Artifact::Image(image) => Some(image),
        Artifact::Index(index) => {
            let host = Platform::host();
            index
                .images
                .iter()
                .find(|i| i.platform().is_some_and(|p| p.satisfies(&host)))
                .or_else(|| {
                    index
                        .images
                        .iter()
                        .find(|i| i.platform().is_none_or(|p| p.os != "unknown"))
                })
        }
    }
}

/// Bytes a registry stores for the image: manifest, config and layers.
fn image_size(image: &Image) -> u64 {
    image.raw_manifest().len() as u64
        + image.config_descriptor().size
        + image
            .layers()
            .iter()
            .map(|l| l.descriptor.size)
            .sum::<u64>()
}

fn artifact_size(artifact: &Artifact) -> u64 {
    match artifact {
        Artifact::Image(image) => image_size(image),
        Artifact::Index(index) => {
            index.raw.len() as u64 + index.images.iter().map(image_size).sum::<u64>()
        }
    }
}
