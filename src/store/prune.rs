//! Bounding the store: `prune` removes least-recently-used blobs (never a held one) and the records that name them; `info` says what the store holds.
//!
//! A blob's last use is its access time, which every hold sets (see
//! `holds`), so pruning reads only metadata: a `stat` per blob, no bytes.
//! Records are small; those naming a removed blob go with it, so none is
//! left pointing at nothing (a reader would take it as a miss anyway).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::holds::{live_holds, open_gate};
use super::{Cache, Store, StoreError};

/// What a prune may remove.
#[derive(Debug, Clone, Default)]
pub struct PruneRules {
    /// Remove the least recently used blobs until the blobs total at most this many bytes.
    pub max_size: Option<u64>,
    /// Remove every blob last used longer ago than this.
    pub older_than: Option<Duration>,
    /// Say what would go, and remove nothing.
    pub dry_run: bool,
}

/// What a prune removed (or, on a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    pub removed_blobs: u64,
    pub removed_bytes: u64,
    pub kept_blobs: u64,
    pub kept_bytes: u64,
    /// Blobs kept only because a running build or export holds them.
    pub held_blobs: u64,
    /// Cache records and compressed-layer aliases that named a removed blob.
    pub removed_records: u64,
    pub dry_run: bool,
}

/// What the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreInfo {
    pub root: PathBuf,
    pub blobs: u64,
    pub bytes: u64,
    pub caches: Vec<CacheUsage>,
    /// Processes holding blobs now.
    pub holders: usize,
    /// When the least recently used blob was last used, in seconds since the epoch.
    pub oldest_use: Option<u64>,
}

/// One cache's records.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheUsage {
    pub name: String,
    pub records: u64,
    pub bytes: u64,
}

/// One blob as a prune sees it.
struct BlobEntry {
    path: PathBuf,
    digest: String,
    size: u64,
    used: SystemTime,
}

impl Store {
    /// Removes blobs by `rules`, least recently used first, never one a live
    /// process holds, and the records naming them (I/O). Holds wait while it runs.
    pub fn prune(&self, rules: &PruneRules) -> Result<PruneReport, StoreError> {
        let open = |source| StoreError::Open {
            path: self.root.join("locks"),
            source,
        };
        let gate = open_gate(&self.root).map_err(open)?;
        gate.lock().map_err(open)?;
        let holds = live_holds(&self.root);
        let mut blobs = self.list_blobs()?;
        blobs.sort_by_key(|blob| blob.used);
        let mut total: u64 = blobs.iter().map(|blob| blob.size).sum();
        let now = SystemTime::now();
        let mut report = PruneReport {
            dry_run: rules.dry_run,
            ..PruneReport::default()
        };
        let mut removed = HashSet::new();
        for blob in blobs {
            let stale = rules
                .older_than
                .is_some_and(|age| now.duration_since(blob.used).unwrap_or_default() > age);
            let over = rules.max_size.is_some_and(|max| total > max);
            let held = holds.held.contains(&blob.digest);
            if (stale || over) && held {
                report.held_blobs += 1;
            }
            if !(stale || over) || held || !self.remove(&blob.path, rules.dry_run) {
                report.kept_blobs += 1;
                report.kept_bytes += blob.size;
                continue;
            }
            total -= blob.size;
            report.removed_blobs += 1;
            report.removed_bytes += blob.size;
            removed.insert(blob.digest);
        }
        if !removed.is_empty() {
            for folder in self.record_folders() {
                report.removed_records += self.remove_records(&folder, &removed, rules.dry_run);
            }
        }
        if !rules.dry_run {
            for dead in holds.dead {
                let _ = fs::remove_file(dead);
            }
        }
        let _ = gate.unlock();
        Ok(report)
    }

    /// Counts the blobs and each cache's records (I/O: metadata only).
    pub fn info(&self) -> Result<StoreInfo, StoreError> {
        let blobs = self.list_blobs()?;
        let caches = Cache::ALL
            .iter()
            .map(|cache| {
                let (records, bytes) = folder_usage(&self.cache_dir(*cache));
                CacheUsage {
                    name: cache.name().to_string(),
                    records,
                    bytes,
                }
            })
            .collect();
        Ok(StoreInfo {
            root: self.root.clone(),
            blobs: blobs.len() as u64,
            bytes: blobs.iter().map(|blob| blob.size).sum(),
            caches,
            holders: live_holds(&self.root).processes,
            oldest_use: blobs
                .iter()
                .map(|blob| blob.used)
                .min()
                .and_then(|used| used.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|since| since.as_secs()),
        })
    }

    fn list_blobs(&self) -> Result<Vec<BlobEntry>, StoreError> {
        let dir = self.root.join("blobs").join("sha256");
        let entries = fs::read_dir(&dir).map_err(|source| StoreError::Open {
            path: dir.clone(),
            source,
        })?;
        let mut blobs = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if name.len() != 64 || !meta.is_file() {
                continue;
            }
            blobs.push(BlobEntry {
                path: entry.path(),
                digest: format!("sha256:{name}"),
                size: meta.len(),
                used: meta.accessed().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        Ok(blobs)
    }

    /// Removes a file unless this is a dry run; whether it is (or would be) gone.
    fn remove(&self, path: &Path, dry_run: bool) -> bool {
        dry_run || fs::remove_file(path).is_ok()
    }

    /// Every folder of records that may name blobs: the caches and the compressed-layer aliases.
    fn record_folders(&self) -> Vec<PathBuf> {
        let mut folders: Vec<PathBuf> = Cache::ALL.iter().map(|c| self.cache_dir(*c)).collect();
        if let Ok(aliases) = fs::read_dir(self.root.join("diffs")) {
            folders.extend(aliases.flatten().map(|entry| entry.path()));
        }
        folders
    }

    /// Removes the records in `folder` that name a digest in `removed` (I/O); how many.
    fn remove_records(&self, folder: &Path, removed: &HashSet<String>, dry_run: bool) -> u64 {
        let Ok(entries) = fs::read_dir(folder) else {
            return 0;
        };
        let mut count = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            if names_any(&text, removed) && self.remove(&path, dry_run) {
                count += 1;
            }
        }
        count
    }
}

/// Whether `text` names any of the digests (`sha256:<hex>`) in `digests`.
fn names_any(text: &str, digests: &HashSet<String>) -> bool {
    const LEN: usize = "sha256:".len() + 64;
    text.match_indices("sha256:")
        .filter_map(|(at, _)| text.get(at..at + LEN))
        .any(|named| digests.contains(named))
}

/// The files in `folder` and their bytes (I/O).
fn folder_usage(folder: &Path) -> (u64, u64) {
    let Ok(entries) = fs::read_dir(folder) else {
        return (0, 0);
    };
    entries
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .filter(|meta| meta.is_file())
        .fold((0, 0), |(n, bytes), meta| (n + 1, bytes + meta.len()))
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::digest::Digest;

    /// A store with five 100-byte blobs, each used a day after the one before; their digests, oldest first.
    fn aged_store(dir: &Path) -> (Store, Vec<Digest>) {
        let writer = Store::open(dir).unwrap();
        let digests: Vec<Digest> = (0..5u8)
            .map(|n| writer.write_bytes(&[n; 100]).unwrap())
            .collect();
        let day = Duration::from_secs(86_400);
        for (age, digest) in digests.iter().rev().enumerate() {
            let used = SystemTime::now() - day * (age as u32 + 1);
            let blob = File::open(writer.blob_path(digest)).unwrap();
            blob.set_times(fs::FileTimes::new().set_accessed(used))
                .unwrap();
        }
        drop(writer);
        (Store::open(dir).unwrap(), digests)
    }

    #[test]
    fn the_least_recently_used_blobs_go_until_the_store_fits() {
        let dir = tempfile::tempdir().unwrap();
        let (store, digests) = aged_store(dir.path());
        store.write_record(Cache::Contents, &Digest::of(b"k0"), &digests[0]);
        store.write_record(Cache::Contents, &Digest::of(b"k4"), &digests[4]);
        store
            .write_compressed_alias(&Digest::of(b"tar"), "gzip", &digests[1])
            .unwrap();
        let rules = PruneRules {
            max_size: Some(250),
            ..PruneRules::default()
        };
        let report = store.prune(&rules).unwrap();
        assert_eq!((report.removed_blobs, report.removed_bytes), (3, 300));
        assert_eq!((report.kept_blobs, report.kept_bytes), (2, 200));
        assert_eq!(
            report.removed_records, 2,
            "the record and alias of removed blobs"
        );
        let present: Vec<bool> = digests
            .iter()
            .map(|d| store.blob_path(d).is_file())
            .collect();
        assert_eq!(present, [false, false, false, true, true]);
        assert!(
            store
                .read_record::<Digest>(Cache::Contents, &Digest::of(b"k0"))
                .is_none()
        );
        assert!(
            store
                .read_record::<Digest>(Cache::Contents, &Digest::of(b"k4"))
                .is_some()
        );
        assert_eq!(store.info().unwrap().bytes, 200);
    }

    #[test]
    fn a_held_blob_stays_and_a_dry_run_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, digests) = aged_store(dir.path());
        // Another process of the store (a build) uses the oldest blob.
        let build = Store::open(dir.path()).unwrap();
        assert!(build.contains(&digests[0]));
        let dry = store
            .prune(&PruneRules {
                older_than: Some(Duration::from_secs(86_400 * 2 + 3600)),
                dry_run: true,
                ..PruneRules::default()
            })
            .unwrap();
        // The held blob was used just now, by its hold: neither old nor removable.
        assert_eq!((dry.removed_blobs, dry.kept_blobs), (2, 3));
        assert!(digests.iter().all(|d| store.blob_path(d).is_file()));
        let all = PruneRules {
            max_size: Some(1),
            ..PruneRules::default()
        };
        let report = store.prune(&all).unwrap();
        assert_eq!((report.removed_blobs, report.held_blobs), (4, 1));
        assert!(store.blob_path(&digests[0]).is_file());
        drop(build);
        assert_eq!(store.prune(&all).unwrap().removed_blobs, 1);
        assert_eq!(store.info().unwrap().blobs, 0);
    }
}
