//! Who owns what, read from the journal: the exports that hold a tag or wrote a file, and the records a delete emptied.
//!
//! Pure: works on records already read; the caller stores what changes.

use std::path::Path;

use crate::digest::Digest;
use crate::exports::{Destination, DestinationKind, DestinationStatus, ExportRecord, Status};
use crate::reference::{self, ImageRef, Location};

/// What one step of a delete removed, for finding the other records it emptied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// These tags of a registry repository (a manifest deleted by digest takes every tag that pointed at it).
    RegistryTags {
        reference: ImageRef,
        tags: Vec<String>,
        digest: Digest,
    },
    /// These tags of a layout folder.
    LayoutTags {
        path: String,
        tags: Vec<String>,
        digest: Digest,
    },
}

/// The ids of the records other than `except` that pushed `reference`'s repository at `tag` and still hold it there.
pub fn registry_tag_owners(
    journal: &[ExportRecord],
    except: i64,
    reference: &ImageRef,
    tag: &str,
) -> Vec<i64> {
    owners(journal, except, |dest| {
        registry_destination(dest)
            .is_some_and(|r| same_repository(&r, reference) && r.tag.as_deref() == Some(tag))
    })
}

/// The ids of the records other than `except` that wrote `tag` into the layout `path` and still hold it there.
pub fn layout_tag_owners(
    journal: &[ExportRecord],
    except: i64,
    path: &Path,
    tag: &str,
) -> Vec<i64> {
    owners(journal, except, |dest| {
        layout_destination(dest).is_some_and(|(p, t)| p == path && t.as_deref() == Some(tag))
    })
}

/// The newest record after `id` that wrote a `kind` file at `path` and still holds it.
pub fn later_writer(
    journal: &[ExportRecord],
    id: i64,
    kind: &DestinationKind,
    path: &Path,
) -> Option<i64> {
    journal
        .iter()
        .filter(|r| r.id > id && r.status != Status::Deleted)
        .filter(|r| {
            r.destinations.iter().any(|d| {
                d.holds_image() && d.kind == *kind && d.path.as_deref().map(Path::new) == Some(path)
            })
        })
        .map(|r| r.id)
        .max()
}

/// The records other than `except` whose destinations `removed` took away,
/// each with its destinations updated and whether none of them holds the
/// image any more.
pub fn emptied_by(
    journal: &[ExportRecord],
    except: i64,
    removed: &[Removed],
) -> Vec<(i64, Vec<Destination>, bool)> {
    let mut changed = Vec::new();
    for record in journal
        .iter()
        .filter(|r| r.id != except && r.status != Status::Deleted)
    {
        let digest = record
            .digest
            .as_deref()
            .and_then(|d| d.parse::<Digest>().ok());
        let mut destinations = record.destinations.clone();
        let mut touched = false;
        for dest in destinations.iter_mut().filter(|d| d.holds_image()) {
            if removed.iter().any(|r| takes(r, dest, digest.as_ref())) {
                dest.status = Some(DestinationStatus::Deleted);
                touched = true;
            }
        }
        if touched {
            let empty = !destinations.iter().any(Destination::holds_image);
            changed.push((record.id, destinations, empty));
        }
    }
    changed
}

/// True when `removed` took the image `digest` that `dest` held.
fn takes(removed: &Removed, dest: &Destination, digest: Option<&Digest>) -> bool {
    match removed {
        Removed::RegistryTags {
            reference,
            tags,
            digest: gone,
        } => registry_destination(dest).is_some_and(|r| {
            same_repository(&r, reference)
                && digest == Some(gone)
                && r.tag.as_ref().is_none_or(|t| tags.contains(t))
        }),
        Removed::LayoutTags {
            path,
            tags,
            digest: gone,
        } => layout_destination(dest).is_some_and(|(p, t)| {
            p == Path::new(path)
                && digest == Some(gone)
                && t.as_ref().is_none_or(|t| tags.contains(t))
        }),
    }
}

fn owners(journal: &[ExportRecord], except: i64, holds: impl Fn(&Destination) -> bool) -> Vec<i64> {
    journal
        .iter()
        .filter(|r| r.id != except && r.status != Status::Deleted)
        .filter(|r| r.destinations.iter().any(|d| d.holds_image() && holds(d)))
        .map(|r| r.id)
        .collect()
}

fn registry_destination(dest: &Destination) -> Option<ImageRef> {
    if dest.kind != DestinationKind::Registry {
        return None;
    }
    dest.registry_ref().ok()
}

fn layout_destination(dest: &Destination) -> Option<(std::path::PathBuf, Option<String>)> {
    if dest.kind != DestinationKind::Oci {
        return None;
    }
    match reference::parse_location(&dest.destination) {
        Ok(Location::Oci { path, tag }) => Some((path, tag)),
        _ => None,
    }
}

pub fn same_repository(a: &ImageRef, b: &ImageRef) -> bool {
    reference::canonical_registry(&a.registry) == reference::canonical_registry(&b.registry)
        && a.repository == b.repository
}
