//! The caches kept beside the blobs: small records under a key digest, each saving work a cold build would redo.
//!
//! A cache only saves time. A record that is missing, unreadable or of an
//! older format is a miss, and a record that cannot be written is skipped:
//! neither may fail a build. Records name blobs; whoever reads one checks
//! that the blob is still in the store before trusting it.

use std::fs;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Store;
use crate::atomic;
use crate::digest::Digest;
use crate::image::canonical_json;

/// Which cache a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// A layer's input fingerprint → the blob it built (and what the secret scan found).
    Layers,
    /// A base digest and a set of paths → what the base has at those paths.
    BaseFolders,
    /// A base digest → its filesystem tree, and a base file's head, for the start check.
    BaseFiles,
    /// An image config digest (and whether the base was read) → the start check passed for it.
    StartChecks,
    /// A layer's content hint (its entries without times, inodes or checkout path) → the diff-id it had.
    ContentHints,
    /// A diff-id with the compression settings and layer format → the blob compressing it gave.
    Contents,
    /// A registry and a blob → the repositories there known to hold it (`registry::blob_locations`).
    BlobLocations,
    /// A library's walked listing and split settings → its inventory and split (`plan::library_cache`).
    LibraryPlans,
}

impl Cache {
    /// Every cache, for the sweep of temp files when the store opens.
    pub const ALL: [Cache; 8] = [
        Cache::Layers,
        Cache::BaseFolders,
        Cache::BaseFiles,
        Cache::StartChecks,
        Cache::ContentHints,
        Cache::Contents,
        Cache::BlobLocations,
        Cache::LibraryPlans,
    ];

    /// The cache's name, which is also its folder under `meta/`.
    pub fn name(self) -> &'static str {
        match self {
            Cache::Layers => "layers",
            Cache::BaseFolders => "base-folders",
            Cache::BaseFiles => "base-files",
            Cache::StartChecks => "start-checks",
            Cache::ContentHints => "content-hints",
            Cache::Contents => "contents",
            Cache::BlobLocations => "blob-locations",
            Cache::LibraryPlans => "library-plans",
        }
    }
}

impl Store {
    /// The folder of one cache's records.
    pub(super) fn cache_dir(&self, cache: Cache) -> PathBuf {
        self.root.join("meta").join(cache.name())
    }

    /// The record under `key` (I/O); None when absent or not readable as `T`.
    pub fn read_record<T: DeserializeOwned>(&self, cache: Cache, key: &Digest) -> Option<T> {
        let path = self.cache_dir(cache).join(format!("{}.json", key.hex()));
        serde_json::from_slice(&fs::read(path).ok()?).ok()
    }

    /// Keeps `record` under `key` (I/O, best effort: a cache write never fails a build).
    pub fn write_record<T: Serialize>(&self, cache: Cache, key: &Digest, record: &T) {
        let Ok(value) = serde_json::to_value(record) else {
            return;
        };
        let dir = self.cache_dir(cache);
        if fs::create_dir_all(&dir).is_ok() {
            let path = dir.join(format!("{}.json", key.hex()));
            let _ = atomic::write_file(&path, &canonical_json(&value));
        }
    }
}
