//! Where blobs live in a registry: per registry, the repositories stowage
//! pushed each blob to or pulled it from, kept in the store, so a push to a
//! new repository mounts a blob across repositories before uploading it
//! (as containers/image's blob-info cache does).
//!
//! A location only saves an upload: a mount the registry declines (the
//! repository was deleted, or the user may not read it) falls back to the
//! upload, and a record that cannot be read or written is a miss.

use super::push::Mount;
use super::{Origin, Registry, RegistryError};
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::reference::ImageRef;
use crate::store::{Cache, Store};

/// How many repositories are remembered per blob, most recent first.
const KEPT: usize = 8;

/// The record's key: one per registry and blob.
fn key(registry: &str, digest: &Digest) -> Digest {
    Digest::of(format!("blob-locations\0{registry}\0{digest}").as_bytes())
}

/// The repositories of `registry` known to hold `digest`, most recent first
/// (I/O: one small record), without `except`.
pub fn known_repositories(
    store: &Store,
    registry: &str,
    digest: &Digest,
    except: &str,
) -> Vec<String> {
    let known: Vec<String> = store
        .read_record(Cache::BlobLocations, &key(registry, digest))
        .unwrap_or_default();
    known.into_iter().filter(|r| r != except).collect()
}

/// Remembers that `repository` of `registry` holds `digest` (I/O, best effort).
pub fn remember(store: &Store, registry: &str, repository: &str, digest: &Digest) {
    let key = key(registry, digest);
    let mut known: Vec<String> = store
        .read_record(Cache::BlobLocations, &key)
        .unwrap_or_default();
    if known.first().is_some_and(|r| r == repository) {
        return;
    }
    known.retain(|r| r != repository);
    known.insert(0, repository.to_string());
    known.truncate(KEPT);
    store.write_record(Cache::BlobLocations, &key, &known);
}

impl Registry {
    /// Remembers that the destination's repository holds `digest`, once a push put or found it there (I/O, best effort).
    pub(super) fn remember_location(&self, store: &Store, dest: &ImageRef, digest: &Digest) {
        remember(store, &dest.registry, &dest.repository, digest);
    }

    /// Tries a cross-repository mount from each repository of the destination's
    /// registry known to hold the blob: the source's, then those the store
    /// remembers (`blob_locations`). Whether one mounted, and the upload
    /// session the last declined mount opened, if any (I/O).
    pub(super) fn mount_from_known(
        &self,
        desc: &Descriptor,
        origin: Option<&Origin>,
        dest: &ImageRef,
        store: &Store,
    ) -> Result<(bool, Option<String>), RegistryError> {
        let (registry, repo) = (&dest.registry, &dest.repository);
        let mut candidates: Vec<String> = origin
            .filter(|o| o.registry == *registry && o.repository != *repo)
            .map(|o| o.repository.clone())
            .into_iter()
            .collect();
        for known in known_repositories(store, registry, &desc.digest, repo) {
            if !candidates.contains(&known) {
                candidates.push(known);
            }
        }
        let mut session: Option<String> = None;
        for repository in candidates {
            let from = Origin {
                registry: registry.clone(),
                repository,
            };
            match self.mount(desc, &from, dest)? {
                Mount::Mounted => return Ok((true, None)),
                Mount::Declined(None) => {}
                // Keep one upload session: the one opened by the last declined mount.
                Mount::Declined(Some(location)) => {
                    if let Some(old) = session.replace(location) {
                        self.cancel_upload(dest, &old);
                    }
                }
            }
        }
        Ok((false, session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_remembered_per_registry_most_recent_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let blob = Digest::of(b"layer");
        assert!(known_repositories(&store, "r.example", &blob, "x").is_empty());
        remember(&store, "r.example", "team/a", &blob);
        remember(&store, "r.example", "team/b", &blob);
        remember(&store, "r.example", "team/a", &blob);
        remember(&store, "other.example", "team/c", &blob);
        assert_eq!(
            known_repositories(&store, "r.example", &blob, "team/new"),
            ["team/a", "team/b"]
        );
        assert_eq!(
            known_repositories(&store, "r.example", &blob, "team/a"),
            ["team/b"]
        );
        for i in 0..20 {
            remember(&store, "r.example", &format!("many/{i}"), &blob);
        }
        assert_eq!(
            known_repositories(&store, "r.example", &blob, "").len(),
            KEPT
        );
    }
}
