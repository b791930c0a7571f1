//! Planning `exports delete`: for each destination, which tags point at the export's image now, whose they are, and so what may go.
//!
//! I/O: reads tag lists and manifests' digests from registries and the
//! index.json of layouts, and stats archive files; changes nothing.

use std::path::PathBuf;

use super::failure;
use super::journal;
use super::scope::{Action, DeletePlan, OtherTag, Step, other_tags_text};
use crate::attest::cosign;
use crate::digest::Digest;
use crate::exports::{Destination, DestinationKind, DestinationStatus, ExportRecord, Note};
use crate::reference::{self, ImageRef, Location};
use crate::transport::Access;
use crate::transport::archive;

/// Plans the delete of `record` (I/O: reads, never writes); `journal` is every record, for who owns which tag.
pub fn plan_delete(
    record: &ExportRecord,
    journal: &[ExportRecord],
    access: &Access<'_>,
    all_tags: bool,
) -> DeletePlan {
    let digest = record
        .digest
        .as_deref()
        .and_then(|d| d.parse::<Digest>().ok());
    let steps = record
        .destinations
        .iter()
        .enumerate()
        .map(|(index, dest)| Step {
            index,
            destination: dest.destination.clone(),
            action: plan_destination(
                dest,
                &Scope {
                    record,
                    journal,
                    digest: digest.as_ref(),
                    all_tags,
                },
                access,
            ),
        })
        .collect();
    DeletePlan {
        id: record.id,
        all_tags,
        steps,
    }
}

/// What every destination's plan needs to know.
struct Scope<'a> {
    record: &'a ExportRecord,
    journal: &'a [ExportRecord],
    /// The export's image; None for an export that failed before it had one.
    digest: Option<&'a Digest>,
    all_tags: bool,
}

fn plan_destination(dest: &Destination, scope: &Scope<'_>, access: &Access<'_>) -> Action {
    if !dest.holds_image() {
        return match dest.status {
            Some(DestinationStatus::Deleted) => Action::AlreadyGone("deleted before".into()),
            _ => Action::LeaveAlone(
                "this export did not write there, so nothing there is its own".into(),
            ),
        };
    }
    match &dest.kind {
        DestinationKind::Registry => plan_registry(dest, scope, access),
        DestinationKind::Oci => plan_layout(dest, scope),
        DestinationKind::DockerArchive | DestinationKind::OciArchive => plan_file(dest, scope),
        other => Action::Refuse {
            problem: format!("stowage does not know how to delete a `{other}` destination"),
            hint: "remove it yourself".into(),
        },
    }
}

fn plan_registry(dest: &Destination, scope: &Scope<'_>, access: &Access<'_>) -> Action {
    let reference = match dest.registry_ref() {
        Ok(reference) => reference,
        Err(e) => {
            return Action::Refuse {
                problem: format!("the recorded reference does not parse: {e}"),
                hint: "delete the image in the registry's own interface".into(),
            };
        }
    };
    let registry = match access.registry() {
        Ok(registry) => registry,
        Err(e) => return refuse_registry_error(&reference, &e),
    };
    let digest = match scope.digest {
        Some(digest) => digest.clone(),
        // A failed export has no digest of its own: what its tag points at now.
        None => match registry.tag_digest(&reference, reference.tag_or_latest()) {
            Ok(Some(digest)) => digest,
            Ok(None) => return Action::AlreadyGone("already gone".into()),
            Err(e) => return refuse_registry_error(&reference, &e),
        },
    };
    let pointing = registry.tags_pointing_at(&reference, &digest);
    if reference.registry == reference::DOCKER_HUB {
        return plan_hub(reference, digest, pointing.ok(), scope);
    }
    let pointing = match pointing {
        Ok(tags) => tags,
        // Without the list, --all-tags still knows what it asked for: the manifest, whatever points at it.
        Err(_) if scope.all_tags => reference.tag.iter().cloned().collect(),
        Err(e) => {
            return Action::Refuse {
                problem: format!(
                    "cannot list the tags of {}, so cannot tell whether other tags share manifest {digest}: {}",
                    reference.name(),
                    failure::error_chain(&e)
                ),
                hint: format!(
                    "pass --all-tags to delete the manifest whatever tags point at it: `stowage exports delete {} --all-tags`",
                    scope.record.id
                ),
            };
        }
    };
    plan_registry_tags(reference, digest, &pointing, scope)
}

/// The registry's step once the tags pointing at the image are known.
fn plan_registry_tags(
    reference: ImageRef,
    digest: Digest,
    pointing: &[String],
    scope: &Scope<'_>,
) -> Action {
    let own = reference.tag.clone();
    let own_here = own.as_ref().is_some_and(|t| pointing.contains(t));
    let others = other_tags(&reference, pointing, own.as_deref(), scope);
    if others.is_empty() || scope.all_tags {
        return Action::Manifest {
            signature_tag: signature_tag(scope.record, &reference, &digest),
            reference,
            digest,
            tags: pointing.to_vec(),
        };
    }
    match own {
        Some(tag) if own_here => Action::RegistryTag {
            reference,
            digest,
            tag,
            kept_by: others,
        },
        Some(tag) => Action::AlreadyGone(format!(
            "tag {tag} now holds another image; this export's image stays under {}",
            other_tags_text(&others)
        )),
        None => Action::Refuse {
            problem: format!(
                "this export pushed by digest only, and tags {} point at the same manifest",
                other_tags_text(&others)
            ),
            hint: format!(
                "pass --all-tags to delete the manifest with those tags: `stowage exports delete {} --all-tags`",
                scope.record.id
            ),
        },
    }
}

/// Docker Hub deletes tags, never a manifest alone: the export's own tag, or with --all-tags every tag of the image.
fn plan_hub(
    reference: ImageRef,
    digest: Digest,
    pointing: Option<Vec<String>>,
    scope: &Scope<'_>,
) -> Action {
    let Some(own) = reference.tag.clone() else {
        return Action::Refuse {
            problem: "Docker Hub deletes tags, and this export was pushed by digest only".into(),
            hint: format!("delete the image at {}", failure::hub_page(&reference)),
        };
    };
    // A tag list the Hub would not give: deleting the own tag alone is still safe.
    let pointing = pointing.unwrap_or_else(|| vec![own.clone()]);
    if !pointing.contains(&own) && !scope.all_tags {
        return Action::AlreadyGone(format!("tag {own} no longer holds this export's image"));
    }
    let others = other_tags(&reference, &pointing, Some(&own), scope);
    let signature_tag = signature_tag(scope.record, &reference, &digest);
    if scope.all_tags {
        return Action::HubTags {
            reference,
            digest,
            tags: pointing,
            kept_by: Vec::new(),
            signature_tag,
        };
    }
    Action::HubTags {
        reference,
        digest,
        tags: vec![own],
        kept_by: others,
        signature_tag,
    }
}

/// The tag of the image's signatures in `reference`'s repository: the one
/// the record notes it signed there, else cosign's tag for `digest` (an
/// image signed later by `stowage sign` has no note in this record).
fn signature_tag(record: &ExportRecord, reference: &ImageRef, digest: &Digest) -> String {
    record
        .notes
        .iter()
        .find_map(|note| {
            let Note::Signed { image, tag } = note else {
                return None;
            };
            let image = ImageRef::parse(image).ok()?;
            let at = ImageRef::parse(tag).ok()?;
            let here = journal::same_repository(&at, reference)
                && image.digest.as_deref() == Some(digest.as_str());
            here.then_some(at.tag).flatten()
        })
        .unwrap_or_else(|| cosign::signature_tag(digest))
}

/// The tags in `pointing` other than `own`, each with the exports that put it there.
fn other_tags(
    reference: &ImageRef,
    pointing: &[String],
    own: Option<&str>,
    scope: &Scope<'_>,
) -> Vec<OtherTag> {
    pointing
        .iter()
        .filter(|t| Some(t.as_str()) != own)
        .map(|tag| OtherTag {
            tag: tag.clone(),
            exports: journal::registry_tag_owners(scope.journal, scope.record.id, reference, tag),
        })
        .collect()
}

fn plan_layout(dest: &Destination, scope: &Scope<'_>) -> Action {
    let (path, own) = match reference::parse_location(&dest.destination) {
        Ok(Location::Oci { path, tag }) => (path, tag),
        _ => match &dest.path {
            Some(path) => (PathBuf::from(path), None),
            None => {
                return Action::Refuse {
                    problem: "the record has no path".into(),
                    hint: "remove the tag from the layout yourself".into(),
                };
            }
        },
    };
    if !path.join("index.json").exists() {
        return Action::AlreadyGone("already gone".into());
    }
    let tags = match archive::layout_tags(&path) {
        Ok(tags) => tags,
        Err(e) => {
            return Action::Refuse {
                problem: failure::error_chain(&e),
                hint: format!(
                    "fix or remove {} yourself, then run `stowage exports delete` again",
                    path.display()
                ),
            };
        }
    };
    let digest = match (scope.digest, own.as_ref().and_then(|t| tags.get(t))) {
        (Some(digest), _) => digest.clone(),
        (None, Some(digest)) => digest.clone(),
        (None, None) => return Action::AlreadyGone("already gone".into()),
    };
    let pointing: Vec<String> = tags
        .iter()
        .filter(|(_, d)| **d == digest)
        .map(|(t, _)| t.clone())
        .collect();
    layout_action(path, digest, pointing, own, scope)
}

/// The layout's step once the tags naming the image are known; `own` is None in records that did not name the tag written.
fn layout_action(
    path: PathBuf,
    digest: Digest,
    pointing: Vec<String>,
    own: Option<String>,
    scope: &Scope<'_>,
) -> Action {
    if pointing.is_empty() {
        return Action::AlreadyGone("no tag of the layout names this export's image".into());
    }
    if scope.all_tags {
        return Action::LayoutTags {
            path,
            digest,
            tags: pointing,
            kept_by: Vec::new(),
        };
    }
    let own = match own {
        Some(own) => own,
        None if pointing.len() == 1 => pointing[0].clone(),
        None => {
            return Action::Refuse {
                problem: format!(
                    "the record does not say which tag it wrote, and tags {} name its image",
                    pointing.join(", ")
                ),
                hint: format!(
                    "pass --all-tags to remove all of them: `stowage exports delete {} --all-tags`",
                    scope.record.id
                ),
            };
        }
    };
    if !pointing.contains(&own) {
        return Action::AlreadyGone(format!("tag {own} now names another image"));
    }
    let kept_by = pointing
        .iter()
        .filter(|t| **t != own)
        .map(|tag| OtherTag {
            tag: tag.clone(),
            exports: journal::layout_tag_owners(scope.journal, scope.record.id, &path, tag),
        })
        .collect();
    Action::LayoutTags {
        path,
        digest,
        tags: vec![own],
        kept_by,
    }
}

fn plan_file(dest: &Destination, scope: &Scope<'_>) -> Action {
    let Some(path) = dest.path.as_deref().map(PathBuf::from) else {
        return Action::Refuse {
            problem: "the record has no path".into(),
            hint: "remove the file yourself".into(),
        };
    };
    let size = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Action::AlreadyGone("already gone".into());
        }
        Err(e) => {
            return Action::Refuse {
                problem: format!("cannot read {}: {e}", path.display()),
                hint: format!(
                    "remove {} yourself, then run `stowage exports delete` again",
                    path.display()
                ),
            };
        }
    };
    if let Some(newer) = journal::later_writer(scope.journal, scope.record.id, &dest.kind, &path) {
        return Action::LeaveAlone(format!(
            "export {newer} wrote {} again since; the file is that export's now",
            path.display()
        ));
    }
    if let Some(recorded) = dest.size
        && recorded != size
    {
        return Action::LeaveAlone(format!(
            "{} changed since this export wrote it ({size} bytes now, {recorded} then); it is not this export's any more",
            path.display()
        ));
    }
    Action::RemoveFile { path }
}

/// Refuses a registry destination on an error, with the registry's own hint.
fn refuse_registry_error(reference: &ImageRef, e: &crate::registry::RegistryError) -> Action {
    let (problem, hint) = failure::registry_failure(&reference.registry, e);
    Action::Refuse { problem, hint }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::{Kind, Status};

    fn record(notes: Vec<Note>) -> ExportRecord {
        ExportRecord {
            id: 1,
            time: "t".into(),
            kind: Kind::Push,
            spec: None,
            sources: Vec::new(),
            destinations: Vec::new(),
            digest: None,
            size: None,
            status: Status::Ok,
            error: None,
            run_command: None,
            secret_names: Vec::new(),
            deleted_time: None,
            notes,
            worker: None,
        }
    }

    #[test]
    fn the_signature_tag_is_the_noted_one_for_this_repository_and_image() {
        let digest = Digest::of(b"image");
        let derived = cosign::signature_tag(&digest);
        let here = ImageRef::parse("h:5000/app:v1").unwrap();
        let noted = |repo: &str, tag: &str| Note::Signed {
            image: format!("{repo}@{digest}"),
            tag: format!("{repo}:{tag}"),
        };
        let signed_here = record(vec![noted("h:5000/app", "noted.sig")]);
        assert_eq!(signature_tag(&signed_here, &here, &digest), "noted.sig");
        let elsewhere = record(vec![noted("h:5000/other", "noted.sig")]);
        assert_eq!(signature_tag(&elsewhere, &here, &digest), derived);
        // No note (signed later by `stowage sign`, or not at all): cosign's tag for the digest.
        assert_eq!(signature_tag(&record(Vec::new()), &here, &digest), derived);
    }
}
