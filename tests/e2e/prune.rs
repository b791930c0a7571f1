//! Issue 26's bounded store: `cache prune` keeps the store within a size, never takes a blob a running build holds, leaves no record naming a missing blob as a hit, and `STOWAGE_CACHE_MAX_SIZE` prunes after a build.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::rig::registry::{random_bytes, stderr_of, unique_seed};
use crate::rig::*;

/// The sample app at `root` (scratch base) with `random` bytes of its own, so its data layer is its own blob.
fn app_with_data(root: &Path, seed: u64, random: usize) -> PathBuf {
    let spec = write_app(root, "localhost/stowage-e2e/prune:1");
    write_file(
        &root.join("workspace/data.bin"),
        random_bytes(seed, random),
        0o644,
    );
    spec
}

/// Builds `spec` into an OCI layout in its folder with the store in `cache`; the digest and the metadata.
fn build(spec: &Path, cache: &Path) -> (String, Value) {
    let dir = spec.parent().unwrap();
    let meta = dir.join("meta.json");
    let out = run_ok(
        stowage_with_cache(cache)
            .args(["build", "-f"])
            .arg(spec)
            .arg("-o")
            .arg(format!("oci:{}:built", dir.join("layout").display()))
            .arg("--metadata-file")
            .arg(&meta),
    );
    (parse_printed(&out).digest, read_json(&meta))
}

/// The bytes of every blob in the store.
fn store_bytes(cache: &Path) -> u64 {
    fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// Whether each layer of a build came from the store (fingerprint cache) rather than being written.
fn layers_cached(meta: &Value) -> Vec<bool> {
    meta["layers"]
        .as_array()
        .expect("metadata has layers")
        .iter()
        .map(|l| l["cached"] == Value::Bool(true))
        .collect()
}

/// `stowage cache prune` with `args`, which must succeed; its one line.
fn prune(cache: &Path, args: &[&str]) -> String {
    run_ok(
        stowage_with_cache(cache)
            .args(["cache", "prune"])
            .args(args),
    )
}

#[test]
fn a_store_pruned_to_a_size_keeps_the_bound_and_rebuilds_reuse_what_it_kept() {
    let sb = Sandbox::new();
    let cache = sb.join("cache");
    let specs: Vec<PathBuf> = (0..4)
        .map(|n| app_with_data(&sb.join(format!("app{n}")), unique_seed() + n, 2 << 20))
        .collect();
    let first: Vec<(String, Value)> = specs.iter().map(|spec| build(spec, &cache)).collect();
    let full = store_bytes(&cache);
    assert!(
        full > 8 << 20,
        "four apps of 2 MiB each fill the store: {full}"
    );
    let bound = full - (3 << 20);

    let dry = prune(&cache, &["--max-size", &bound.to_string(), "--dry-run"]);
    assert!(dry.starts_with("would remove "), "{dry}");
    assert_eq!(store_bytes(&cache), full, "a dry run removes nothing");

    let said = prune(&cache, &["--max-size", &bound.to_string()]);
    assert!(
        said.starts_with("removed ") && !said.starts_with("removed 0 "),
        "{said}"
    );
    assert!(
        store_bytes(&cache) <= bound,
        "{} > {bound}",
        store_bytes(&cache)
    );
    let info = run_ok(stowage_with_cache(&cache).args(["cache", "info"]));
    assert!(info.contains("layers") && info.contains("blobs "), "{info}");

    // The app built last was used last: all its layers stay and are taken from the store.
    let (digest, meta) = build(&specs[3], &cache);
    assert_eq!(digest, first[3].0);
    assert!(layers_cached(&meta).iter().all(|c| *c), "{meta}");
    // The first app's own data went: its record is a miss, the layer is written again, same image.
    let (digest, meta) = build(&specs[0], &cache);
    assert_eq!(
        digest, first[0].0,
        "the rebuild gives the digest the first build gave"
    );
    assert!(
        layers_cached(&meta).contains(&false),
        "a pruned layer is rebuilt: {meta}"
    );
    // umoci, not stowage, reads the rebuilt image whole.
    unpacks_with_umoci(&sb, &specs[0].parent().unwrap().join("layout"));
}

/// `umoci unpack`s the layout's `built` image (it checks every blob against its digest).
fn unpacks_with_umoci(sb: &Sandbox, layout: &Path) {
    if !require_tool("umoci") {
        return;
    }
    let rootfs = umoci_unpack(layout, "built", &sb.join(unique("bundle")));
    assert!(rootfs.join("opt/app/bin/busybox").is_file());
}

#[test]
fn a_prune_during_a_build_takes_none_of_its_blobs() {
    let sb = Sandbox::new();
    let cache = sb.join("cache");
    // Something older in the store, for the prunes to take.
    let old = app_with_data(&sb.join("old"), unique_seed(), 1 << 20);
    build(&old, &cache);
    let spec = app_with_data(&sb.join("big"), unique_seed(), 24 << 20);
    let layout = sb.join("big/layout");
    let mut building = stowage_process(&sb, &cache)
        .args(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:built", layout.display()))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the build");
    let mut prunes = 0;
    while building.try_wait().unwrap().is_none() {
        prune(&cache, &["--max-size", "1"]);
        prunes += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = building.wait_with_output().unwrap();
    assert!(out.status.success(), "the build: {}", stderr_of(&out));
    assert!(prunes >= 2, "the prunes ran while the build did ({prunes})");
    let printed = parse_printed(&String::from_utf8(out.stdout).unwrap());
    let image = Layout::open(&layout).image_at(&printed.digest);
    assert!(!image.layers().is_empty());
    unpacks_with_umoci(&sb, &layout);
    let mut inspect = skopeo();
    run_ok(
        inspect
            .arg("inspect")
            .arg(format!("oci:{}:built", layout.display())),
    );
    // Once the build is gone, nothing holds its blobs.
    let said = prune(&cache, &["--max-size", "1"]);
    assert!(!said.contains("held"), "{said}");
    assert_eq!(store_bytes(&cache), 0, "{said}");
}

#[test]
fn a_hold_ends_with_a_build_killed_by_sigkill() {
    let sb = Sandbox::new();
    let cache = sb.join("cache");
    let spec = app_with_data(&sb.join("big"), unique_seed(), 24 << 20);
    let mut building = stowage_process(&sb, &cache)
        .args(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:built", sb.join("big/layout").display()))
        .spawn()
        .expect("start the build");
    let holds = cache.join("holds");
    let held = || fs::read_dir(&holds).map(|d| d.count() > 0).unwrap_or(false);
    while !held() && building.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(held(), "the build held blobs before it ended");
    building.kill().unwrap();
    building.wait().unwrap();
    assert!(held(), "SIGKILL leaves the hold file behind");
    let said = prune(&cache, &["--max-size", "1"]);
    assert!(
        !said.contains("held"),
        "a dead process holds nothing: {said}"
    );
    assert!(!held(), "the prune removed the dead process's hold file");
}

#[test]
fn a_build_under_stowage_cache_max_size_prunes_all_but_its_own_blobs() {
    let sb = Sandbox::new();
    let cache = sb.join("cache");
    let (first, second) = (sb.join("one"), sb.join("two"));
    build(&app_with_data(&first, unique_seed(), 1 << 20), &cache);
    let before = store_bytes(&cache);
    // Another size, so the build does not look at the first app's data layer as a candidate for reuse (which holds it).
    let spec = app_with_data(&second, unique_seed(), (1 << 20) + 1);
    let out = stowage_with_cache(&cache)
        .env("STOWAGE_CACHE_MAX_SIZE", "1KiB")
        .args(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:built", second.join("layout").display()))
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("STOWAGE_CACHE_MAX_SIZE: removed "),
        "{stderr}"
    );
    let after = store_bytes(&cache);
    assert!(
        after < before + (1 << 20),
        "the first app's data went: {before} → {after}"
    );
    assert!(after > 1 << 20, "the build's own blobs stayed: {after}");
    unpacks_with_umoci(&sb, &second.join("layout"));
}

/// What a command that must fail as a usage error (exit 2) printed on stderr.
fn usage_error(cmd: &mut assert_cmd::Command) -> String {
    stderr_of(cmd.assert().code(2).get_output())
}

#[test]
fn bad_sizes_and_durations_exit_2_with_a_hint() {
    let sb = Sandbox::new();
    for args in [
        &["--max-size", "12 parsecs"][..],
        &["--max-size", "0"],
        &["--older-than", "7"],
        &["--older-than", "a while"],
        &[],
    ] {
        let mut prune = sb.stowage();
        prune.args(["cache", "prune"]).args(args);
        let stderr = usage_error(prune.env_remove("STOWAGE_CACHE_MAX_SIZE"));
        assert!(
            stderr.contains("--max-size") || stderr.contains("--older-than"),
            "{args:?}: {stderr}"
        );
    }
    let mut build = sb.stowage();
    build.args(["build", "-f", "nowhere.toml"]);
    let stderr = usage_error(build.env("STOWAGE_CACHE_MAX_SIZE", "lots"));
    assert!(
        stderr.contains("STOWAGE_CACHE_MAX_SIZE") && stderr.contains("hint: "),
        "{stderr}"
    );
}
