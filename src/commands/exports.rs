//! `stowage exports`: list the journal, and delete an export from everywhere it went.

use std::path::Path;

use super::Session;
use crate::attest::cosign;
use crate::digest::Digest;
use crate::error::Error;
use crate::exports::{Destination, DestinationStatus, ExportRecord, Exports, ExportsError, Status};
use crate::reference::{self, ImageRef};
use crate::registry::{RegistryError, hub};
use crate::transport::Context;

/// The records, oldest first, optionally only those with `status` (I/O).
pub fn list(status: Option<Status>) -> Result<Vec<ExportRecord>, Error> {
    let exports = Exports::open_default()?;
    Ok(exports.list(status)?)
}

/// What `delete` will remove, shown before it asks.
#[derive(Debug, Clone)]
pub struct DeletePlan {
    pub id: i64,
    /// One line per thing removed: a registry manifest, a Docker Hub tag, a file.
    pub removes: Vec<String>,
    /// Destinations this export did not write (or that were deleted already): left alone.
    pub leaves: Vec<String>,
}

/// What `delete(id)` would remove (I/O: reads the record).
pub fn delete_plan(id: i64) -> Result<DeletePlan, Error> {
    let record = Exports::open_default()?.get(id)?;
    if record.status == Status::Deleted {
        return Err(ExportsError::AlreadyDeleted { id }.into());
    }
    let mut plan = DeletePlan {
        id,
        removes: Vec::new(),
        leaves: Vec::new(),
    };
    for dest in &record.destinations {
        let status = dest.status.map_or("unknown", DestinationStatus::as_str);
        if !dest.holds_image() {
            plan.leaves.push(format!("{} ({status})", dest.destination));
            continue;
        }
        let path = dest.path.as_deref().unwrap_or("?");
        plan.removes.push(match dest.kind.as_str() {
            "registry" => {
                let text = dest.destination.trim_start_matches("docker://");
                match ImageRef::parse(text) {
                    Ok(r) if r.registry == reference::DOCKER_HUB => {
                        format!(
                            "Docker Hub tag {} (public for anyone who pulls it)",
                            r.familiar()
                        )
                    }
                    _ => format!(
                        "registry image {text} (manifest {})",
                        record.digest.as_deref().unwrap_or("its tag points at")
                    ),
                }
            }
            "oci" => format!("layout folder {path} (you remove it yourself)"),
            _ => format!("file {path}"),
        });
    }
    // Signatures live at their own tag beside the image and go with it.
    plan.removes.extend(
        record
            .notes
            .iter()
            .filter_map(|note| note.strip_prefix("signed: "))
            .filter_map(|signed| signed.split_once(" at ").map(|(_, tag)| tag))
            .map(|tag| format!("cosign signatures {tag}")),
    );
    Ok(plan)
}

/// What `delete_export` did at one destination.
#[derive(Debug, Clone)]
pub struct Deleted {
    pub destination: String,
    /// e.g. "deleted manifest sha256:…", "removed the file", "already gone".
    pub what: String,
}

/// Removes export `id` from everywhere it went (I/O), then marks the record deleted.
///
/// A registry that allows it gets a manifest DELETE by digest; Docker Hub,
/// which refuses that, has the tag deleted through its own API; an archive
/// file is removed. A destination that no longer has the image counts as
/// done. When any destination cannot be cleared, the record stays as it is
/// and the error says exactly what is left to do.
///
/// Only destinations whose status says this export put the image there
/// (pushed, written) are touched: what a failed sink's tag or path holds now
/// came from somewhere else. After a partial delete the record keeps which
/// destinations were cleared, so running it again does the rest.
pub fn delete(session: &Session, id: i64) -> Result<Vec<Deleted>, Error> {
    let mut exports = Exports::open_default()?;
    let record = exports.get(id)?;
    // Registries the export reached over plain HTTP are reached so again, without the flag.
    let plain_http: Vec<String> = record
        .destinations
        .iter()
        .filter(|d| d.plain_http)
        .filter_map(super::registry_of)
        .collect();
    let widened;
    let session = if plain_http.is_empty() {
        session
    } else {
        widened = session.also_insecure(plain_http);
        &widened
    };
    let context = &session.context()?;
    if record.status == Status::Deleted {
        return Err(ExportsError::AlreadyDeleted { id }.into());
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let mut hints = Vec::new();
    let mut destinations = record.destinations.clone();
    for dest in &mut destinations {
        if !dest.holds_image() {
            let what = match dest.status {
                Some(DestinationStatus::Deleted) => "deleted before",
                _ => "left alone: this export did not write there, so nothing there is its own",
            };
            done.push(Deleted {
                destination: dest.destination.clone(),
                what: what.into(),
            });
            continue;
        }
        match delete_destination(dest, record.digest.as_deref(), context) {
            Ok(what) => {
                dest.status = Some(DestinationStatus::Deleted);
                done.push(Deleted {
                    destination: dest.destination.clone(),
                    what,
                });
            }
            Err((problem, hint)) => {
                failed.push(format!("{}: {problem}", dest.destination));
                hints.push(hint);
            }
        }
    }
    exports.set_destinations(id, &destinations)?;
    if !failed.is_empty() {
        let mut report = String::new();
        for d in &done {
            report.push_str(&format!("\n  {}: {}", d.destination, d.what));
        }
        for f in &failed {
            report.push_str(&format!("\n  {f}"));
        }
        return Err(ExportsError::DeleteIncomplete { id, report, hints }.into());
    }
    exports.mark_deleted(id)?;
    Ok(done)
}

/// Clears one destination; Err holds what went wrong and what the user must do.
fn delete_destination(
    dest: &Destination,
    digest: Option<&str>,
    context: &Context<'_>,
) -> Result<String, (String, String)> {
    match dest.kind.as_str() {
        "registry" => {
            let text = dest
                .destination
                .strip_prefix("docker://")
                .unwrap_or(&dest.destination);
            let reference = ImageRef::parse(text).map_err(|e| {
                (
                    format!("the recorded reference does not parse: {e}"),
                    "delete the image in the registry's own interface".to_string(),
                )
            })?;
            let deleted = if reference.registry == reference::DOCKER_HUB {
                delete_on_docker_hub(&reference)
            } else {
                delete_on_registry(&reference, digest, context)
            }?;
            let signatures = match digest.and_then(|d| d.parse::<Digest>().ok()) {
                Some(digest) => delete_signatures(&reference, &digest, context)?,
                None => None,
            };
            Ok(match signatures {
                Some(what) => format!("{deleted}; {what}"),
                None => deleted,
            })
        }
        "docker-archive" | "oci-archive" => {
            let Some(path) = &dest.path else {
                return Err((
                    "the record has no path".into(),
                    "remove the file yourself".into(),
                ));
            };
            match std::fs::remove_file(path) {
                Ok(()) => Ok("removed the file".into()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("already gone".into()),
                Err(e) => Err((
                    format!("cannot remove {path}: {e}"),
                    format!("remove {path} yourself, then run `stowage exports delete` again"),
                )),
            }
        }
        "oci" => {
            let path = dest.path.clone().unwrap_or_default();
            if !Path::new(&path).exists() {
                return Ok("already gone".into());
            }
            Err((
                "stowage does not delete layout folders, which can hold other images and files"
                    .into(),
                format!(
                    "remove {path} yourself (`rm -r {path}`), then run `stowage exports delete` again"
                ),
            ))
        }
        other => Err((
            format!("stowage does not know how to delete a `{other}` destination"),
            "remove it yourself".into(),
        )),
    }
}

fn delete_on_registry(
    reference: &ImageRef,
    digest: Option<&str>,
    context: &Context<'_>,
) -> Result<String, (String, String)> {
    let registry = &reference.registry;
    let digest: Digest = match digest.and_then(|d| d.parse().ok()) {
        Some(d) => d,
        // A failed export has no digest of its own: resolve what its tag points at now.
        None => {
            let by = reference.tag_or_latest().to_string();
            match context
                .registry()
                .and_then(|r| r.fetch_manifest(reference, &by))
            {
                Ok((bytes, _)) => Digest::of(&bytes),
                Err(RegistryError::NotFound { .. }) => return Ok("already gone".into()),
                Err(e) => return Err(registry_failure(registry, &e)),
            }
        }
    };
    match context
        .registry()
        .and_then(|r| r.delete_manifest(reference, &digest))
    {
        Ok(()) => Ok(format!("deleted manifest {digest}")),
        Err(RegistryError::NotFound { .. }) => Ok("already gone".into()),
        Err(e) => Err(registry_failure(registry, &e)),
    }
}

/// Removes the image's cosign signature tag (`sha256-<hex>.sig`), when it has one (I/O).
fn delete_signatures(
    reference: &ImageRef,
    digest: &Digest,
    context: &Context<'_>,
) -> Result<Option<String>, (String, String)> {
    let tag = cosign::signature_tag(digest);
    let registry = context
        .registry()
        .map_err(|e| registry_failure(&reference.registry, &e))?;
    // Asked of the registry first, so an unsigned export costs no Docker Hub API call.
    let signatures = match registry.fetch_manifest(reference, &tag) {
        Ok((bytes, _)) => Digest::of(&bytes),
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(registry_failure(&reference.registry, &e)),
    };
    if reference.registry == reference::DOCKER_HUB {
        return match delete_hub_tag(reference, &tag)? {
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

fn registry_failure(registry: &str, e: &RegistryError) -> (String, String) {
    let hint = match e {
        RegistryError::Status {
            status: 405 | 501, ..
        } => format!(
            "{registry} does not allow deleting manifests; ask its operator to enable it (distribution: storage.delete.enabled: true) or delete the image in its web interface"
        ),
        _ => e
            .hint()
            .unwrap_or_else(|| format!("delete the image in {registry}'s own interface")),
    };
    (error_chain(e), hint)
}

fn delete_on_docker_hub(reference: &ImageRef) -> Result<String, (String, String)> {
    let Some(tag) = &reference.tag else {
        return Err((
            "Docker Hub deletes tags, and this export was pushed by digest only".into(),
            format!("delete the image at {}", hub_page(reference)),
        ));
    };
    match delete_hub_tag(reference, tag)? {
        hub::Outcome::Deleted => Ok(format!("deleted tag {tag} through the Docker Hub API")),
        hub::Outcome::AlreadyGone => Ok("already gone".into()),
    }
}

/// Deletes `tag` of `reference`'s Docker Hub repository through the Hub's API (I/O).
fn delete_hub_tag(reference: &ImageRef, tag: &str) -> Result<hub::Outcome, (String, String)> {
    let (namespace, repo) = hub_names(reference);
    hub::delete_tag(namespace, repo, tag)
        .map_err(|e| (error_chain(&e), e.hint(&hub_page(reference))))
}

/// A Docker Hub repository's namespace and name (`library` for official images).
fn hub_names(reference: &ImageRef) -> (&str, &str) {
    reference
        .repository
        .split_once('/')
        .unwrap_or(("library", &reference.repository))
}

fn hub_page(reference: &ImageRef) -> String {
    let (namespace, repo) = hub_names(reference);
    format!("https://hub.docker.com/repository/docker/{namespace}/{repo}/tags")
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
