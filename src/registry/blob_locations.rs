//! Where blobs live in a registry: per registry, the repositories stowage
//! pushed each blob to or pulled it from, kept in the store, so a push to a
//! new repository mounts a blob across repositories before uploading it
//! (as containers/image's blob-info cache does).
//!
//! A location only saves an upload: a mount the registry declines (the
//! repository was deleted, or the user may not read it) falls back to the
//! upload, and a record that cannot be read or written is a miss.

use crate::digest::Digest;
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
