//! The content cache: a layer whose fingerprint missed but whose bytes were built before is hashed, not compressed again.
//!
//! Two maps, both in the store (and, with `--cache-repo`, in a registry
//! repository through [`SharedContents`]):
//!
//! * a *content hint* — the layer's entries without times, inodes or the
//!   checkout's path: image paths, kinds, link targets, modes, owners,
//!   sizes, and the write settings — to the diff-id it had when last built;
//! * a *content key* — a diff-id with the compression settings and the
//!   layer format version — to the blob compressing those bytes gave.
//!
//! A hint is only a reason to look: on a fingerprint miss whose hint is
//! known and whose hinted blob can be had, one uncompressed pass (tar →
//! relocate → scan → sha256) gives the real diff-id, and the blob is reused
//! only when it equals the hinted one. Compressed bytes are a function of
//! the tar bytes (gzip's chunks start where the tar's files do, and do not
//! depend on the thread count), so the content key names exactly the blob a
//! cold build would write. With no hint the layer is compressed directly:
//! a cold build pays no extra pass.
//!
//! The secret scan is over bytes too: what it found in a diff-id under the
//! same rules is kept in the store, so the pass over a layer the store knows
//! only hashes. A shared cache is trusted with blobs, not with findings: a
//! layer whose findings the store does not hold is scanned during the pass.

use std::io::{self, Write};

use super::records::{ContentRecord, FindingRecord, HintRecord, ScanRecord, SharedContents};
use super::write::write_tar;
use super::{
    BuiltLayer, Compression, GZIP_LEVEL, LAYER_FORMAT_VERSION, LayerError, LayerPlan, PlannedKind,
    WriteSettings, ZSTD_LEVEL,
};
use crate::digest::Digest;
use crate::scan::{Finding, ScanRules, Scanner};
use crate::store::{Cache, Store};

/// Where a hinted layer's blob can be had.
enum Known {
    Store(Digest, u64),
    Shared(Digest, u64),
}

/// The content hint of `plan` written with `settings`: everything that decides
/// the layer's bytes except the files' contents, and nothing that a fresh
/// checkout changes (times, inodes, the folder it lies in).
pub fn content_hint(plan: &LayerPlan, settings: &WriteSettings<'_>) -> Digest {
    let mut hasher = crate::digest::hash_sink();
    let mut put = |bytes: &[u8]| {
        let _ = hasher.write_all(&(bytes.len() as u64).to_le_bytes());
        let _ = hasher.write_all(bytes);
    };
    put(format!("stowage content hint v{LAYER_FORMAT_VERSION}").as_bytes());
    put(&settings.mtime.to_le_bytes());
    if let Some(relocation) = &plan.relocation {
        put(b"relocate");
        put(relocation.from.as_bytes());
        put(relocation.to.as_bytes());
    }
    for entry in plan.planned_entries(settings.base_folders) {
        put(entry.path);
        let (tag, extra): (&[u8], &[u8]) = match &entry.kind {
            PlannedKind::Dir => (b"d", b""),
            PlannedKind::File => (b"f", b""),
            PlannedKind::Symlink { target } => (b"s", target),
            PlannedKind::HardLink { to } => (b"h", to),
        };
        put(tag);
        put(extra);
        if let Some((kind, _)) = entry.rewrite {
            put(kind.name().as_bytes());
        }
        put(&entry.mode.to_le_bytes());
        put(&entry.owner.uid.to_le_bytes());
        put(&entry.owner.gid.to_le_bytes());
        put(&plan.file_size(entry.index).unwrap_or(0).to_le_bytes());
    }
    hasher.finish().1
}

/// The content key of a layer with `diff_id` compressed as `compression`.
pub fn content_key(diff_id: &Digest, compression: Compression) -> Digest {
    let level = match compression {
        Compression::Gzip => GZIP_LEVEL as i64,
        Compression::Zstd => ZSTD_LEVEL as i64,
    };
    Digest::of(
        format!(
            "stowage content v{LAYER_FORMAT_VERSION} {} {level} {diff_id}",
            compression.name()
        )
        .as_bytes(),
    )
}

/// The key of what the secret scan with `rules` found in the layer with `diff_id`.
/// The rules are built in, so the version that has them is part of the key.
fn scan_key(diff_id: &Digest, rules: &ScanRules) -> Digest {
    let mut text = format!(
        "stowage scan v{LAYER_FORMAT_VERSION} {} {diff_id}",
        env!("CARGO_PKG_VERSION")
    );
    for name in &rules.secret_names {
        text.push(' ');
        text.push_str(&name.len().to_string());
        text.push(':');
        text.push_str(name);
    }
    Digest::of(text.as_bytes())
}

/// The findings the store keeps under `key` (I/O); None when absent or naming a rule this stowage lacks.
fn read_findings(store: &Store, key: &Digest) -> Option<Vec<Finding>> {
    FindingRecord::into_findings(
        store
            .read_record::<ScanRecord>(Cache::Contents, key)?
            .findings,
    )
}

/// The layer built from a blob the store's content cache, or else `shared`,
/// holds for the same bytes (I/O: one uncompressed pass over the layer, which
/// also runs the secret scan); None when the hint is unknown, no blob can be
/// had, or the bytes differ.
pub(super) fn reuse_by_content(
    plan: &LayerPlan,
    store: &Store,
    shared: Option<&dyn SharedContents>,
    settings: &WriteSettings<'_>,
    hint: &Digest,
) -> Result<Option<BuiltLayer>, LayerError> {
    let Some(hinted) = store
        .read_record::<HintRecord>(Cache::ContentHints, hint)
        .map(|record| record.diff_id)
        .or_else(|| shared.and_then(|shared| shared.diff_id_for(hint)))
    else {
        return Ok(None);
    };
    let key = content_key(&hinted, settings.compression);
    let Some(known) = known_blob(store, shared, &key) else {
        return Ok(None);
    };
    // Findings the store holds for these bytes and rules spare the scan; otherwise it runs in the pass.
    let known_findings = plan
        .secret_scan
        .as_ref()
        .map(|rules| read_findings(store, &scan_key(&hinted, rules)));
    let mut scanner = match &known_findings {
        Some(None) => plan.secret_scan.as_ref().map(Scanner::new),
        _ => None,
    };
    let base = settings.base_folders;
    let (_, diff_id) = write_tar(
        plan,
        io::sink(),
        (settings.mtime, base),
        scanner.as_mut(),
        None,
        None,
    )?;
    if diff_id != hinted {
        return Ok(None);
    }
    let findings = match (scanner, known_findings) {
        (Some(scanner), _) => scanner.into_findings(),
        (None, Some(Some(findings))) => findings,
        (None, _) => Vec::new(),
    };
    let (digest, size) = match known {
        Known::Store(digest, size) => (digest, size),
        Known::Shared(digest, size) => match shared {
            Some(shared) if shared.bring(&digest, size) => (digest, size),
            _ => return Ok(None),
        },
    };
    Ok(Some(BuiltLayer {
        name: plan.name.clone(),
        digest,
        diff_id,
        size,
        compression: settings.compression,
        entry_count: plan.entry_count_over(base),
        file_count: plan.file_count,
        cached: false,
        reused: true,
        findings,
    }))
}

/// The blob listed for `key`: the store's when it still holds it whole, else the shared cache's.
fn known_blob(store: &Store, shared: Option<&dyn SharedContents>, key: &Digest) -> Option<Known> {
    if let Some(record) = store.read_record::<ContentRecord>(Cache::Contents, key)
        && store.blob_size(&record.digest).ok() == Some(record.size)
    {
        return Some(Known::Store(record.digest, record.size));
    }
    let (digest, size) = shared?.listed_blob(key)?;
    Some(Known::Shared(digest, size))
}

/// Remembers the built layer in the store's content cache (I/O, best effort).
pub(super) fn remember_content(store: &Store, plan: &LayerPlan, hint: &Digest, built: &BuiltLayer) {
    if let Some(rules) = &plan.secret_scan {
        let findings = built.findings.iter().map(FindingRecord::of).collect();
        store.write_record(
            Cache::Contents,
            &scan_key(&built.diff_id, rules),
            &ScanRecord { findings },
        );
    }
    store.write_record(
        Cache::ContentHints,
        hint,
        &HintRecord {
            diff_id: built.diff_id.clone(),
        },
    );
    store.write_record(
        Cache::Contents,
        &content_key(&built.diff_id, built.compression),
        &ContentRecord {
            digest: built.digest.clone(),
            size: built.size,
        },
    );
}
