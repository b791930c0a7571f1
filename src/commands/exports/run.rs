//! Carrying out a planned `exports delete`: each step at its destination, tag-only deletes first, since a registry may refuse them.
//!
//! I/O: registry and Docker Hub requests, layout index rewrites, file removals.

use super::failure::{self, error_chain, hub_names, registry_failure};
use super::journal::Removed;
use super::scope::{Action, OtherTag, Step, other_tags_text};
use crate::digest::Digest;
use crate::reference::{self, ImageRef};
use crate::registry::{RegistryError, TagDeletion, hub};
use crate::transport::Access;
use crate::transport::archive;

/// What `delete` did at one destination.
#[derive(Debug, Clone)]
pub struct Deleted {
    pub destination: String,
    /// e.g. "deleted manifest sha256:…", "removed the file", "already gone".
    pub what: String,
}

/// A step that could not be done: the problem and what the user can do.
#[derive(Debug, Clone)]
pub struct NotDone {
    pub destination: String,
    pub problem: String,
    pub hint: String,
}

/// Everything a run of the steps did.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Steps done (or found already done), by the index of their destination.
    pub done: Vec<(usize, Deleted)>,
    pub not_done: Vec<NotDone>,
    /// What went, for the other records that held it.
    pub removed: Vec<Removed>,
}

/// Runs the steps (I/O). A tag-only delete the registry refuses stops the run before anything else is touched.
pub fn run_steps(id: i64, steps: &[Step], access: &Access<'_>) -> RunOutcome {
    let mut outcome = RunOutcome::default();
    let (tag_only, rest): (Vec<&Step>, Vec<&Step>) = steps
        .iter()
        .partition(|s| matches!(s.action, Action::RegistryTag { .. }));
    for step in tag_only.into_iter().chain(rest) {
        match run_step(id, step, access) {
            Ok((what, removed)) => {
                outcome.removed.extend(removed);
                outcome.done.push((
                    step.index,
                    Deleted {
                        destination: step.destination.clone(),
                        what,
                    },
                ));
            }
            Err((problem, hint)) => {
                let refused = matches!(step.action, Action::RegistryTag { .. });
                outcome.not_done.push(NotDone {
                    destination: step.destination.clone(),
                    problem,
                    hint,
                });
                if refused {
                    return outcome;
                }
            }
        }
    }
    outcome
}

type StepResult = Result<(String, Option<Removed>), (String, String)>;

fn run_step(id: i64, step: &Step, access: &Access<'_>) -> StepResult {
    match &step.action {
        Action::LeaveAlone(why) => Ok((format!("left alone: {why}"), None)),
        Action::AlreadyGone(what) => Ok((what.clone(), None)),
        Action::Refuse { problem, hint } => Err((problem.clone(), hint.clone())),
        Action::Manifest {
            reference,
            digest,
            tags,
            signature_tag,
        } => delete_manifest(reference, digest, signature_tag, tags, access),
        Action::RegistryTag {
            reference,
            digest,
            tag,
            kept_by,
        } => delete_registry_tag(id, reference, digest, tag, kept_by, access),
        Action::HubTags {
            reference,
            digest,
            tags,
            kept_by,
            signature_tag,
        } => {
            let last = kept_by.is_empty().then_some(signature_tag.as_str());
            delete_hub_tags(reference, digest, tags, last, access)
        }
        Action::LayoutTags {
            path, digest, tags, ..
        } => match archive::remove_layout_tags(path, tags, digest) {
            Ok(untagged) if untagged.tags.is_empty() => Ok(("already gone".into(), None)),
            Ok(untagged) => Ok((
                format!(
                    "removed tag(s) {} from the layout, and {} blob(s) ({:.1} MiB) no other tag uses",
                    untagged.tags.join(", "),
                    untagged.blobs,
                    untagged.bytes as f64 / (1024.0 * 1024.0)
                ),
                Some(Removed::LayoutTags {
                    path: path.display().to_string(),
                    tags: untagged.tags,
                    digest: digest.clone(),
                }),
            )),
            Err(e) => Err((
                error_chain(&e),
                format!(
                    "remove the tag from {} yourself, then run `stowage exports delete` again",
                    path.display()
                ),
            )),
        },
        Action::RemoveFile { path } => match std::fs::remove_file(path) {
            Ok(()) => Ok(("removed the file".into(), None)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(("already gone".into(), None)),
            Err(e) => Err((
                format!("cannot remove {}: {e}", path.display()),
                format!(
                    "remove {} yourself, then run `stowage exports delete` again",
                    path.display()
                ),
            )),
        },
    }
}

/// Deletes the manifest `digest` and then its signatures at `signature_tag`, if any (I/O).
fn delete_manifest(
    reference: &ImageRef,
    digest: &Digest,
    signature_tag: &str,
    tags: &[String],
    access: &Access<'_>,
) -> StepResult {
    let registry = access
        .registry()
        .map_err(|e| registry_failure(&reference.registry, &e))?;
    let deleted = match registry.delete_manifest(reference, digest) {
        Ok(()) => {
            let with = if tags.is_empty() {
                String::new()
            } else {
                format!(" (tags {} went with it)", tags.join(", "))
            };
            format!("deleted manifest {digest}{with}")
        }
        Err(RegistryError::NotFound { .. }) => "already gone".into(),
        Err(e) => return Err(registry_failure(&reference.registry, &e)),
    };
    let signatures = delete_signatures(reference, signature_tag, access)?;
    let what = match signatures {
        Some(what) => format!("{deleted}; {what}"),
        None => deleted,
    };
    Ok((
        what,
        Some(Removed::RegistryTags {
            reference: reference.clone(),
            tags: tags.to_vec(),
            digest: digest.clone(),
        }),
    ))
}

fn delete_registry_tag(
    id: i64,
    reference: &ImageRef,
    digest: &Digest,
    tag: &str,
    kept_by: &[OtherTag],
    access: &Access<'_>,
) -> StepResult {
    let registry = access
        .registry()
        .map_err(|e| registry_failure(&reference.registry, &e))?;
    let removed = Some(Removed::RegistryTags {
        reference: reference.clone(),
        tags: vec![tag.to_string()],
        digest: digest.clone(),
    });
    match registry.delete_tag(reference, tag) {
        Ok(TagDeletion::Deleted) => Ok((
            format!(
                "deleted tag {tag} alone; the image stays under {}",
                other_tags_text(kept_by)
            ),
            removed,
        )),
        Ok(TagDeletion::NotFound) => Ok(("already gone".into(), None)),
        Ok(TagDeletion::Unsupported) => Err((
            format!(
                "{} cannot delete tag {tag} alone, and deleting manifest {digest} would also take the other tags that point at it: {}; nothing was deleted",
                reference.registry,
                other_tags_text(kept_by)
            ),
            format!(
                "to delete the image under every tag, run `stowage exports delete {id} --all-tags`; to keep it for the other tags, leave this export as it is"
            ),
        )),
        Err(e) => Err(registry_failure(&reference.registry, &e)),
    }
}

/// Deletes `tags` through Docker Hub's API; when they are the image's
/// `last`, its signatures at the tag given go too (I/O).
fn delete_hub_tags(
    reference: &ImageRef,
    digest: &Digest,
    tags: &[String],
    last: Option<&str>,
    access: &Access<'_>,
) -> StepResult {
    let mut deleted = Vec::new();
    for tag in tags {
        if delete_hub_tag(reference, tag, access)? == hub::Outcome::Deleted {
            deleted.push(tag.clone());
        }
    }
    if deleted.is_empty() {
        return Ok(("already gone".into(), None));
    }
    let mut what = format!(
        "deleted tag(s) {} through the Docker Hub API",
        deleted.join(", ")
    );
    if let Some(signature_tag) = last
        && let Some(signatures) = delete_signatures(reference, signature_tag, access)?
    {
        what.push_str(&format!("; {signatures}"));
    }
    Ok((
        what,
        Some(Removed::RegistryTags {
            reference: reference.clone(),
            tags: deleted,
            digest: digest.clone(),
        }),
    ))
}

/// Removes the image's cosign signature tag (`sha256-<hex>.sig`), when it has one (I/O).
fn delete_signatures(
    reference: &ImageRef,
    tag: &str,
    access: &Access<'_>,
) -> Result<Option<String>, (String, String)> {
    let registry = access
        .registry()
        .map_err(|e| registry_failure(&reference.registry, &e))?;
    // Asked of the registry first, so an unsigned export costs no Docker Hub API call.
    let signatures = match registry.fetch_manifest(reference, tag) {
        Ok((bytes, _)) => Digest::of(&bytes),
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(registry_failure(&reference.registry, &e)),
    };
    if reference.registry == reference::DOCKER_HUB {
        return match delete_hub_tag(reference, tag, access)? {
            hub::Outcome::Deleted => Ok(Some(format!("deleted signatures {tag}"))),
            hub::Outcome::AlreadyGone => Ok(None),
        };
    }
    match registry.delete_manifest(reference, &signatures) {
        Ok(()) => Ok(Some(format!("deleted signatures {tag} ({signatures})"))),
        Err(RegistryError::NotFound { .. }) => Ok(None),
        Err(e) => Err(registry_failure(&reference.registry, &e)),
    }
}

/// Deletes `tag` of `reference`'s Docker Hub repository through the Hub's API (I/O).
fn delete_hub_tag(
    reference: &ImageRef,
    tag: &str,
    access: &Access<'_>,
) -> Result<hub::Outcome, (String, String)> {
    let (namespace, repo) = hub_names(reference);
    let registry = access
        .registry()
        .map_err(|e| registry_failure(&reference.registry, &e))?;
    hub::delete_tag(registry.docker_hub_api(), namespace, repo, tag)
        .map_err(|e| (error_chain(&e), e.hint(&failure::hub_page(reference))))
}
