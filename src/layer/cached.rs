//! Writing a build's layers several at once, each skipped when the layer cache knows its inputs
//! (or only hashed when the content cache knows its bytes).
//!
//! A layer's fingerprint (paths, sizes, modes, times, inodes, owners and the
//! write settings) keys a record of the blob it built. A record is trusted
//! only while the store still holds that blob whole-sized, so a hit gives
//! exactly the digest a cold build would.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::content::{content_hint, remember_content, reuse_by_content};
use super::records::{FindingRecord, LayerRecord, SharedContents};
use super::{
    BaseFolders, BuiltLayer, Compression, GZIP_LEVEL, LAYER_FORMAT_VERSION, LayerError, LayerPlan,
    ViewKind, WriteSettings, ZSTD_LEVEL, write_layer,
};
use crate::digest::Digest;
use crate::store::{Cache, Store};

/// Writes the layers (I/O), several at once, each skipped when the layer cache
/// knows its fingerprint and the store still has its blob, or only hashed when
/// the store's content cache or `shared` holds its bytes. Results keep plan order.
pub fn write_layers(
    plans: &[LayerPlan],
    store: &Store,
    settings: &WriteSettings<'_>,
    shared: Option<&dyn SharedContents>,
) -> Result<Vec<BuiltLayer>, LayerError> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<BuiltLayer, LayerError>>>> =
        plans.iter().map(|_| Mutex::new(None)).collect();
    // Walking and hashing run on these threads, compression on the pool's: one more
    // walker than compressors keeps the pool fed without thrashing the disk.
    let walkers = (settings.pool.threads() + 1).min(plans.len()).clamp(1, 8);
    std::thread::scope(|scope| {
        for _ in 0..walkers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(layer_plan) = plans.get(i) else {
                        break;
                    };
                    let outcome = cached_or_written(layer_plan, store, settings, shared);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(outcome);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or(Err(LayerError::Internal(
                    "a layer thread stopped without a result",
                )))
        })
        .collect()
}

/// Takes the layer from the layer cache, or writes it and remembers it; tells
/// `settings.progress` when it starts and when it is done.
fn cached_or_written(
    plan: &LayerPlan,
    store: &Store,
    settings: &WriteSettings<'_>,
    shared: Option<&dyn SharedContents>,
) -> Result<BuiltLayer, LayerError> {
    // Started before the fingerprint, which stats every file: on a large tree that takes a moment too.
    if let Some(progress) = settings.progress {
        progress.started(&plan.name, plan.content_bytes);
    }
    let built = take_or_write(plan, store, settings, shared)?;
    if let Some(progress) = settings.progress {
        progress.finished(&built);
    }
    Ok(built)
}

fn take_or_write(
    plan: &LayerPlan,
    store: &Store,
    settings: &WriteSettings<'_>,
    shared: Option<&dyn SharedContents>,
) -> Result<BuiltLayer, LayerError> {
    let fingerprint = plan.fingerprint(settings.base_folders, settings.compression, settings.mtime);
    if let Some(cached) = store
        .read_record::<LayerRecord>(Cache::Layers, &fingerprint)
        .and_then(|record| from_record(record, plan, settings))
        && store.blob_size(&cached.digest).ok() == Some(cached.size)
    {
        return Ok(cached);
    }
    let hint = content_hint(plan, settings);
    let built = match reuse_by_content(plan, store, shared, settings, &hint)? {
        Some(reused) => reused,
        None => write_layer(plan, store, settings)?,
    };
    remember_content(store, plan, &hint, &built);
    let record = LayerRecord {
        digest: built.digest.clone(),
        diff_id: built.diff_id.clone(),
        size: built.size,
        findings: built.findings.iter().map(FindingRecord::of).collect(),
    };
    store.write_record(Cache::Layers, &fingerprint, &record);
    Ok(built)
}

fn from_record(
    record: LayerRecord,
    plan: &LayerPlan,
    settings: &WriteSettings<'_>,
) -> Option<BuiltLayer> {
    let findings = FindingRecord::into_findings(record.findings)?;
    Some(BuiltLayer {
        name: plan.name.clone(),
        digest: record.digest,
        diff_id: record.diff_id,
        size: record.size,
        compression: settings.compression,
        findings,
        entry_count: plan.entry_count_over(settings.base_folders),
        file_count: plan.file_count,
        cached: true,
        reused: false,
    })
}

/// How many bytes of framed fields `fingerprint` gathers before hashing them.
const FRAMES_PER_WRITE: usize = 64 * 1024;

impl LayerPlan {
    /// A digest of everything that decides this layer's bytes, short of the bytes themselves:
    /// paths, kinds, link targets, modes, owners, and each file's size, times and inode.
    /// Equal fingerprints mean the layer need not be read or compressed again.
    pub fn fingerprint(&self, base: &BaseFolders, compression: Compression, mtime: u64) -> Digest {
        let mut hasher = crate::digest::hash_sink();
        // Each field is framed by its length; entries' fields are gathered
        // and hashed 64 KiB at a time (the same bytes as one write per field).
        let mut frames = Vec::with_capacity(FRAMES_PER_WRITE + 512);
        let put = |frames: &mut Vec<u8>, bytes: &[u8]| {
            frames.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            frames.extend_from_slice(bytes);
        };
        put(
            &mut frames,
            format!("stowage layer v{LAYER_FORMAT_VERSION}").as_bytes(),
        );
        // Each entry's stat facts and path go in as its stamp (`Stamp::digest_at`),
        // which holds the path, so the path is not hashed again; records of
        // builds that hashed either themselves never match this input.
        put(&mut frames, b"stamp digests with paths");
        put(&mut frames, compression.name().as_bytes());
        put(
            &mut frames,
            &match compression {
                Compression::Gzip => GZIP_LEVEL as i64,
                Compression::Zstd => ZSTD_LEVEL as i64,
            }
            .to_le_bytes(),
        );
        put(&mut frames, &mtime.to_le_bytes());
        // A cached layer carries the scan's findings, so the scan's settings are inputs too.
        match &self.secret_scan {
            Some(rules) => {
                put(&mut frames, b"scan");
                for name in &rules.secret_names {
                    put(&mut frames, name.as_bytes());
                }
            }
            None => put(&mut frames, b"no scan"),
        }
        // A relocated layer's bytes depend on the prefixes and on which entries are rewritten.
        if let Some(relocation) = &self.relocation {
            put(&mut frames, b"relocate");
            put(&mut frames, relocation.from.as_bytes());
            put(&mut frames, relocation.to.as_bytes());
        }
        for entry in self.entries_over(base) {
            if frames.len() >= FRAMES_PER_WRITE {
                let _ = hasher.write_all(&frames);
                frames.clear();
            }
            if let Some(kind) = entry.rewrite {
                put(&mut frames, kind.name().as_bytes());
            }
            let (tag, extra): (&[u8], &[u8]) = match entry.kind {
                ViewKind::Dir => (b"d", b""),
                ViewKind::File { .. } => (b"f", b""),
                ViewKind::Symlink { target } => (b"s", target),
                ViewKind::HardLink { to } => (b"h", to),
            };
            put(&mut frames, tag);
            put(&mut frames, extra);
            put(&mut frames, &entry.mode.to_le_bytes());
            put(&mut frames, &entry.owner.uid.to_le_bytes());
            put(&mut frames, &entry.owner.gid.to_le_bytes());
            put(&mut frames, entry.stamp);
        }
        let _ = hasher.write_all(&frames);
        hasher.finish().1
    }
}

#[cfg(test)]
#[path = "cached_tests.rs"]
mod tests;
