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

use serde::{Deserialize, Serialize};

use super::cached::FindingRecord;
use super::write::write_tar;
use super::{
    BuiltLayer, Compression, GZIP_LEVEL, LAYER_FORMAT_VERSION, LayerError, LayerPlan, PlannedKind,
    WriteSettings, ZSTD_LEVEL,
};
use crate::digest::Digest;
use crate::scan::{Finding, ScanRules, Scanner};
use crate::store::{Cache, Store};

/// A shared content cache besides the store (a `--cache-repo`): the same two maps, and its blobs.
pub trait SharedContents: Sync {
    /// The diff-id a layer with this content hint had, if the shared cache knows one.
    fn diff_id_for(&self, hint: &Digest) -> Option<Digest>;
    /// The blob (digest, size) the shared cache lists for this content key.
    fn listed_blob(&self, key: &Digest) -> Option<(Digest, u64)>;
    /// Makes the listed blob usable by this build (I/O: checks it is still
    /// there, or fetches it into the store when a destination needs its
    /// bytes); false when it is gone or cannot be reached.
    fn bring(&self, digest: &Digest, size: u64) -> bool;
}

/// What the content cache keeps for a content hint.
#[derive(Serialize, Deserialize)]
struct HintRecord {
    diff_id: Digest,
}

/// What the content cache keeps for a content key.
#[derive(Serialize, Deserialize)]
struct ContentRecord {
    digest: Digest,
    size: u64,
}

/// What the secret scan found in a diff-id under one set of rules.
#[derive(Serialize, Deserialize)]
struct ScanRecord {
    findings: Vec<FindingRecord>,
}

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
    store
        .read_record::<ScanRecord>(Cache::Contents, key)?
        .findings
        .into_iter()
        .map(FindingRecord::into_finding)
        .collect()
}

/// The layer built from a blob the content cache holds for the same bytes
/// (I/O: one uncompressed pass over the layer, which also runs the secret
/// scan); None when the hint is unknown, no blob can be had, or the bytes differ.
pub(super) fn reuse_by_content(
    plan: &LayerPlan,
    store: &Store,
    settings: &WriteSettings<'_>,
    hint: &Digest,
) -> Result<Option<BuiltLayer>, LayerError> {
    let Some(hinted) = store
        .read_record::<HintRecord>(Cache::ContentHints, hint)
        .map(|record| record.diff_id)
        .or_else(|| settings.shared.and_then(|shared| shared.diff_id_for(hint)))
    else {
        return Ok(None);
    };
    let key = content_key(&hinted, settings.compression);
    let Some(known) = known_blob(store, settings, &key) else {
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
        Known::Shared(digest, size) => match settings.shared {
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
fn known_blob(store: &Store, settings: &WriteSettings<'_>, key: &Digest) -> Option<Known> {
    if let Some(record) = store.read_record::<ContentRecord>(Cache::Contents, key)
        && store.blob_size(&record.digest).ok() == Some(record.size)
    {
        return Some(Known::Store(record.digest, record.size));
    }
    let (digest, size) = settings.shared?.listed_blob(key)?;
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::gzip::CompressPool;
    use crate::layer::{
        BaseFolders, Excludes, KnownDirs, LayerRole, LayerRoot, plan_layer, write_layers,
    };
    use crate::scan::ScanRules;
    use crate::spec::Owner;

    fn make_tree(dir: &Path, secret: &[u8]) {
        for (rel, bytes) in [
            ("a.txt", b"alpha".as_slice()),
            ("pkg/mod.py", b"print('hello')\n".as_slice()),
            ("pkg/data.bin", &[7u8; 300_000]),
            ("pkg/config.py", secret),
            (
                ".ssh/id_rsa",
                b"-----BEGIN OPENSSH PRIVATE KEY-----\n".as_slice(),
            ),
            (".env", b"MY_THING=abc\n".as_slice()),
        ] {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap_or(dir)).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        std::os::unix::fs::symlink("mod.py", dir.join("pkg/link"))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn plan_of(dir: &Path) -> LayerPlan {
        let roots = [LayerRoot {
            source: dir.to_path_buf(),
            target: "/app".into(),
            owner: Owner { uid: 0, gid: 0 },
            mode: None,
        }];
        let mut plan = plan_layer(
            LayerRole::Files,
            &roots,
            &Excludes::default(),
            &mut KnownDirs::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        plan.secret_scan = Some(ScanRules::default());
        plan
    }

    fn build(plan: &LayerPlan, store: &Store, compression: Compression) -> BuiltLayer {
        let pool = CompressPool::new(2);
        let settings = WriteSettings {
            compression,
            mtime: 1,
            base_folders: &BaseFolders::new(),
            pool: &pool,
            progress: None,
            shared: None,
        };
        let mut built = write_layers(std::slice::from_ref(plan), store, &settings)
            .unwrap_or_else(|e| panic!("{e}"));
        built.remove(0)
    }

    fn blob_count(store: &Store) -> usize {
        std::fs::read_dir(store.root().join("blobs/sha256")).map_or(0, Iterator::count)
    }

    const SECRET: &[u8] = b"KEY = 'AKIAIOSFODNN7EXAMPLE'\n";

    #[test]
    fn a_fresh_checkout_reuses_the_blob_a_cold_build_gives() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let first = dir.path().join("checkout-1");
            make_tree(&first, SECRET);
            let store = Store::open(dir.path().join("store")).unwrap_or_else(|e| panic!("{e}"));
            let cold = build(&plan_of(&first), &store, compression);
            assert!(!cold.reused && !cold.cached);
            assert!(!cold.findings.is_empty(), "the scan found the key");
            let blobs = blob_count(&store);

            // Another path, other mtimes and inodes: the fingerprint misses, the hint does not.
            let second = dir.path().join("elsewhere/checkout-2");
            make_tree(&second, SECRET);
            let again = build(&plan_of(&second), &store, compression);
            assert!(again.reused, "{compression:?}: the blob is reused");
            assert_eq!(again.digest, cold.digest);
            assert_eq!(again.diff_id, cold.diff_id);
            assert_eq!(blob_count(&store), blobs, "no new blob was written");
            assert_eq!(
                again
                    .findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                cold.findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                "the scan ran over the reused layer's bytes"
            );
            let warm = build(&plan_of(&second), &store, compression);
            assert!(warm.cached, "the reuse left a fingerprint record");

            // Other scan rules: the blob is reused, the findings are the new rules' own.
            let third = dir.path().join("third");
            make_tree(&third, SECRET);
            let mut plan = plan_of(&third);
            plan.secret_scan = Some(ScanRules {
                secret_names: vec!["MY_THING".into()],
            });
            let rescanned = build(&plan, &store, compression);
            assert!(rescanned.reused);
            assert_eq!(rescanned.digest, cold.digest);
            let fresh = Store::open(dir.path().join("fresh")).unwrap_or_else(|e| panic!("{e}"));
            let reference = build(&plan, &fresh, compression);
            let names = |l: &BuiltLayer| {
                l.findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(&rescanned), names(&reference));
            assert!(
                names(&rescanned).len() > names(&cold).len(),
                "the new name is found: {:?}",
                names(&rescanned)
            );
        }
    }

    #[test]
    fn same_sizes_other_bytes_are_compressed_as_a_cold_build_would() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = dir.path().join("one");
        make_tree(&first, SECRET);
        let store = Store::open(dir.path().join("store")).unwrap_or_else(|e| panic!("{e}"));
        let cold = build(&plan_of(&first), &store, Compression::Gzip);
        // Same paths, sizes and modes: the hint matches, the diff-id does not.
        let second = dir.path().join("two");
        make_tree(&second, b"KEY = 'AKIAIOSFODNN7EXAMPLF'\n");
        let changed = build(&plan_of(&second), &store, Compression::Gzip);
        assert!(!changed.reused);
        assert_ne!(changed.digest, cold.digest);
        let fresh = Store::open(dir.path().join("fresh")).unwrap_or_else(|e| panic!("{e}"));
        let reference = build(&plan_of(&second), &fresh, Compression::Gzip);
        assert_eq!(changed.digest, reference.digest, "as a cold build gives");
        assert_eq!(changed.diff_id, reference.diff_id);
    }

    #[test]
    fn the_hint_ignores_times_and_place_but_not_sizes_or_modes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pool = CompressPool::new(1);
        let base = BaseFolders::new();
        let settings = WriteSettings {
            compression: Compression::Gzip,
            mtime: 1,
            base_folders: &base,
            pool: &pool,
            progress: None,
            shared: None,
        };
        let one = dir.path().join("one");
        make_tree(&one, SECRET);
        let two = dir.path().join("x/two");
        make_tree(&two, SECRET);
        let hint = content_hint(&plan_of(&one), &settings);
        assert_eq!(hint, content_hint(&plan_of(&two), &settings));
        let later = WriteSettings {
            mtime: 2,
            ..settings
        };
        assert_ne!(
            hint,
            content_hint(&plan_of(&one), &later),
            "the entries' mtime"
        );
        std::fs::write(two.join("a.txt"), b"alphabet").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(hint, content_hint(&plan_of(&two), &settings), "a size");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(one.join("a.txt"), std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(hint, content_hint(&plan_of(&one), &settings), "a mode");
        assert_ne!(
            content_key(&hint, Compression::Gzip),
            content_key(&hint, Compression::Zstd)
        );
    }
}
