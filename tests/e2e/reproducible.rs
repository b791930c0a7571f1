//! Same inputs, same digests: whatever the checkout path, the file mtimes,
//! the cache's state, or how often the build runs; and SOURCE_DATE_EPOCH
//! changes the digest predictably.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::rig::*;

const IMAGE: &str = "localhost/stowage-e2e/reproducible:1";

/// Builds `spec` into an OCI layout and a docker-archive under `out`, with
/// its cache in `cache`; returns stdout, the metadata and the archive bytes.
fn build(spec: &Path, out: &Path, cache: &Path, epoch: Option<&str>) -> (Printed, Value, Vec<u8>) {
    fs::create_dir_all(out).unwrap();
    let meta = out.join("meta.json");
    let archive = out.join("app.tar.gz");
    let mut cmd = stowage_with_cache(cache);
    cmd.args(["build", "-f"])
        .arg(spec)
        .arg("-o")
        .arg(format!("oci:{}:r", out.join("layout").display()))
        .arg("-o")
        .arg(format!("docker-archive:{}:{IMAGE}", archive.display()))
        .arg("--metadata-file")
        .arg(&meta);
    if let Some(epoch) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", epoch);
    }
    let printed = parse_printed(&run_ok(&mut cmd));
    (printed, read_json(&meta), fs::read(&archive).unwrap())
}

/// The parts of the metadata that must not depend on where the app lives.
fn identity(meta: &Value) -> Value {
    let layers: Vec<Value> = meta["layers"]
        .as_array()
        .expect("metadata has layers")
        .iter()
        .map(|l| serde_json::json!([l["digest"], l["diff_id"], l["size"], l["files"]]))
        .collect();
    serde_json::json!({
        "digest": meta["digest"],
        "config_digest": meta["config_digest"],
        "media_type": meta["media_type"],
        "layers": layers,
    })
}

#[test]
fn same_digest_from_different_paths_and_mtimes() {
    let sb = Sandbox::new();
    let first = sb.join("checkout-one/app");
    let second = sb.join("somewhere/else/entirely/app");
    let spec_one = write_app(&first, IMAGE);
    let spec_two = write_app(&second, IMAGE);
    touch_tree(&first, "2001-02-03 04:05:06");
    touch_tree(&second, "2024-12-31 23:59:59");

    let (one, meta_one, archive_one) = build(&spec_one, &sb.join("out1"), &sb.join("cache1"), None);
    let (two, meta_two, archive_two) = build(&spec_two, &sb.join("out2"), &sb.join("cache2"), None);
    assert_eq!(one.digest, two.digest, "digests of builds from two paths");
    assert_eq!(
        identity(&meta_one),
        identity(&meta_two),
        "--metadata-file of builds from two paths"
    );
    assert!(
        archive_one == archive_two,
        "the docker-archive bytes differ between the two paths"
    );
}

#[test]
fn repeated_builds_are_identical() {
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), IMAGE);
    let cache = sb.join("cache");
    let (cold, meta_cold, archive_cold) = build(&spec, &sb.join("out1"), &cache, None);
    let (warm, meta_warm, archive_warm) = build(&spec, &sb.join("out2"), &cache, None);
    // Touching the files (new mtimes, same content) changes nothing either.
    touch_tree(&sb.join("app"), "2030-01-01 00:00:00");
    let (touched, meta_touched, _) = build(&spec, &sb.join("out3"), &cache, None);
    // stdout names each build's own layout; the digests must agree.
    assert_eq!(
        cold.digest, warm.digest,
        "a cold-cache and a warm-cache build"
    );
    assert_eq!(
        cold.digest, touched.digest,
        "a build after touching every file"
    );
    assert_eq!(
        identity(&meta_cold),
        identity(&meta_warm),
        "--metadata-file of two builds"
    );
    assert_eq!(identity(&meta_cold), identity(&meta_touched));
    assert!(
        archive_cold == archive_warm,
        "the docker-archive bytes differ between two builds"
    );
    let l1 = Layout::open(sb.join("out1/layout"));
    let l2 = Layout::open(sb.join("out2/layout"));
    assert_eq!(l1.index(), l2.index(), "index.json");
    assert_eq!(
        fs::read(sb.join("out1/layout/index.json")).unwrap(),
        fs::read(sb.join("out2/layout/index.json")).unwrap(),
        "index.json bytes"
    );
}

#[test]
fn source_date_epoch_changes_the_digest_and_is_stable() {
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), IMAGE);
    let (plain, _, _) = build(&spec, &sb.join("out0"), &sb.join("cache0"), None);
    let epoch = "1700000000";
    let (one, meta_one, _) = build(&spec, &sb.join("out1"), &sb.join("cache1"), Some(epoch));
    let (two, meta_two, _) = build(&spec, &sb.join("out2"), &sb.join("cache2"), Some(epoch));
    assert_ne!(
        plain.digest, one.digest,
        "SOURCE_DATE_EPOCH must change the digest"
    );
    assert_eq!(
        one.digest, two.digest,
        "two builds with the same SOURCE_DATE_EPOCH"
    );
    assert_eq!(identity(&meta_one), identity(&meta_two));

    let layout = Layout::open(sb.join("out1/layout"));
    let image = layout.image("r");
    assert_eq!(
        image.config["created"], "2023-11-14T22:13:20Z",
        "created from SOURCE_DATE_EPOCH"
    );
    for i in 0..image.layers().len() {
        for e in tar_entries(&layout.layer_tar(&image, i)) {
            assert_eq!(e.mtime, 1_700_000_000, "mtime of {}", show(&e.path));
        }
    }
}
