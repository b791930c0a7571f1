//! The layer and content caches, checked through `write_layers` on trees made here: what is reused, what is reported.

use std::path::Path;
use std::sync::Mutex;

use super::*;
use crate::gzip::CompressPool;
use crate::layer::progress::REPORT_EVERY;
use crate::layer::{
    Excludes, KnownDirs, LayerProgress, LayerRole, LayerRoot, content_key, plan_layer,
};
use crate::scan::ScanRules;
use crate::spec::Owner;
use crate::store::Store;

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
    std::os::unix::fs::symlink("mod.py", dir.join("pkg/link")).unwrap_or_else(|e| panic!("{e}"));
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

/// Settings with mtime 1 and no progress.
fn settings<'a>(
    compression: Compression,
    pool: &'a CompressPool,
    base: &'a BaseFolders,
) -> WriteSettings<'a> {
    WriteSettings {
        compression,
        mtime: 1,
        base_folders: base,
        pool,
        progress: None,
    }
}

fn build(plan: &LayerPlan, store: &Store, compression: Compression) -> BuiltLayer {
    let pool = CompressPool::new(2);
    let base = BaseFolders::new();
    let settings = settings(compression, &pool, &base);
    let mut built = write_layers(std::slice::from_ref(plan), store, &settings, None)
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
    let settings = settings(Compression::Gzip, &pool, &base);
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

/// Every report, as text, in the order it came.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl LayerProgress for Log {
    fn started(&self, name: &str, planned_bytes: u64) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{name} started {planned_bytes}"));
    }
    fn advanced(&self, name: &str, bytes: u64) {
        self.0.lock().unwrap().push(format!("{name} +{bytes}"));
    }
    fn finished(&self, layer: &BuiltLayer) {
        let how = if layer.cached { "cached" } else { "written" };
        self.0.lock().unwrap().push(format!("{} {how}", layer.name));
    }
}

#[test]
fn write_layers_reports_each_layer_and_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    std::fs::create_dir_all(&src).unwrap();
    // 2.5 MiB in one file and a small one: two full batches and a rest.
    std::fs::write(src.join("big"), vec![7u8; 5 * 512 * 1024]).unwrap();
    std::fs::write(src.join("small"), b"hello").unwrap();
    let roots = [LayerRoot {
        source: src,
        target: "/app".into(),
        owner: Owner { uid: 0, gid: 0 },
        mode: None,
    }];
    let plan = plan_layer(
        LayerRole::Files,
        &roots,
        &Excludes::default(),
        &mut KnownDirs::new(),
    )
    .unwrap();
    let pool = CompressPool::new(2);
    let base = BaseFolders::new();
    let settings = settings(Compression::Gzip, &pool, &base);
    let silent = write_layers(
        std::slice::from_ref(&plan),
        &Store::open(dir.path().join("a")).unwrap(),
        &settings,
        None,
    )
    .unwrap();
    let log = Log::default();
    let settings = WriteSettings {
        progress: Some(&log),
        ..settings
    };
    let store = Store::open(dir.path().join("b")).unwrap();
    let told = write_layers(std::slice::from_ref(&plan), &store, &settings, None).unwrap();
    assert_eq!(told[0].digest, silent[0].digest, "progress only watches");
    let planned = 5 * 512 * 1024 + 5;
    assert_eq!(
        *log.0.lock().unwrap(),
        [
            format!("files started {planned}"),
            format!("files +{REPORT_EVERY}"),
            format!("files +{REPORT_EVERY}"),
            format!("files +{}", planned - 2 * REPORT_EVERY),
            "files written".to_string(),
        ]
    );
    log.0.lock().unwrap().clear();
    let again = write_layers(std::slice::from_ref(&plan), &store, &settings, None).unwrap();
    assert!(again[0].cached);
    assert_eq!(
        *log.0.lock().unwrap(),
        [
            format!("files started {planned}"),
            "files cached".to_string()
        ],
        "a cached layer reads nothing and is done at once"
    );
}
