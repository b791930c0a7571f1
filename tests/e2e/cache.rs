//! The content cache and `--cache-repo`: a fresh checkout, or a fresh runner
//! sharing a cache repository on a real docker-registry, gets exactly the
//! digests of a cold build without compressing (or uploading) a layer again;
//! a cache entry whose blob is gone, or a cache repository that cannot be
//! reached, only costs the compression.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::rig::proxy::{Action, FaultProxy, summary};
use crate::rig::registry::TestRegistry;
use crate::rig::*;

/// The sample app at `root`, with a larger file of fixed pseudo-random bytes
/// (compressing it is the work a reuse saves), touched to `date`.
fn app_at(root: &Path, image: &str, date: &str) -> PathBuf {
    let spec = write_app(root, image);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..3_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Text-like bytes, so gzip and zstd have something to do.
            b"abcdefghij \n"[(state % 12) as usize]
        })
        .collect();
    write_file(&root.join("library/share/data.txt"), data, 0o644);
    touch_tree(root, date);
    spec
}

/// `stowage build` of `spec` with its store in `cache` and `extra` flags;
/// returns what it printed, the metadata and its stderr.
fn build(spec: &Path, cache: &Path, extra: &[&str]) -> (Printed, Value, String) {
    let meta = cache.with_extension("meta.json");
    let mut cmd = stowage_with_cache(cache);
    cmd.args(["build", "-f"])
        .arg(spec)
        .args(extra)
        .arg("--metadata-file")
        .arg(&meta);
    let out = cmd.assert().success().get_output().clone();
    let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    let stderr = String::from_utf8(out.stderr).expect("stderr is UTF-8");
    (parse_printed(&stdout), read_json(&meta), stderr)
}

/// Each layer's (digest, diff-id, size) in the metadata.
fn layer_ids(meta: &Value) -> Vec<(String, String, u64)> {
    meta["layers"]
        .as_array()
        .expect("metadata has layers")
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap_or_default().to_owned(),
                l["diff_id"].as_str().unwrap_or_default().to_owned(),
                l["size"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// Whether the metadata says every layer's blob came from the content cache.
fn all_reused(meta: &Value) -> bool {
    meta["layers"]
        .as_array()
        .is_some_and(|ls| ls.iter().all(|l| l["reused"] == Value::Bool(true)))
}

/// The blobs in a store folder.
fn store_blobs(cache: &Path) -> BTreeSet<String> {
    fs::read_dir(cache.join("blobs/sha256"))
        .map(|dir| {
            dir.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Empties the store's layer (fingerprint) cache, keeping its blobs and content cache.
fn forget_fingerprints(cache: &Path) {
    let layers = cache.join("meta/layers");
    assert!(
        layers.is_dir(),
        "the store keeps fingerprints in {layers:?}"
    );
    fs::remove_dir_all(&layers).unwrap();
}

#[test]
fn a_fresh_checkout_reuses_the_blobs_of_a_cold_build() {
    for (compression, threads) in [("gzip", "1"), ("gzip", "3"), ("zstd", "2")] {
        let sb = Sandbox::new();
        let image = "localhost/stowage-e2e/cache:1";
        let first = app_at(&sb.join("checkout-one/app"), image, "2001-02-03 04:05:06");
        let layout = |name: &str| format!("oci:{}:r", sb.join(name).display());
        let cache = sb.join("cache");
        let flags = ["--compression", compression, "--threads", threads];
        let out1 = layout("out1");
        let (cold, cold_meta, _) = build(&first, &cache, &[&flags[..], &["-o", &out1]].concat());
        let before = store_blobs(&cache);

        // Another path, other mtimes and inodes, no fingerprint records: only the content is the same.
        let second = app_at(
            &sb.join("elsewhere/deeper/app"),
            image,
            "2024-12-31 23:59:59",
        );
        forget_fingerprints(&cache);
        let out2 = layout("out2");
        let (again, meta, stderr) = build(&second, &cache, &[&flags[..], &["-o", &out2]].concat());
        assert_eq!(
            again.digest, cold.digest,
            "{compression}: same image digest"
        );
        assert_eq!(layer_ids(&meta), layer_ids(&cold_meta));
        assert!(
            all_reused(&meta),
            "{compression}: every layer reused: {meta}\n{stderr}"
        );
        assert_eq!(
            store_blobs(&cache),
            before,
            "{compression}: no new blob went into the store"
        );

        // A cold build from the second checkout, in an empty store, agrees.
        let out3 = layout("out3");
        let (fresh, fresh_meta, _) = build(
            &second,
            &sb.join("cold"),
            &[&flags[..], &["-o", &out3]].concat(),
        );
        assert_eq!(fresh.digest, cold.digest);
        assert!(!all_reused(&fresh_meta));
        // And skopeo reads the same manifest digest from the reused build's layout.
        let inspected: Value = serde_json::from_slice(
            &skopeo()
                .args(["inspect", &format!("oci:{}:r", sb.join("out2").display())])
                .assert()
                .success()
                .get_output()
                .stdout,
        )
        .expect("skopeo inspect prints JSON");
        assert_eq!(inspected["Digest"], Value::String(cold.digest.clone()));
    }
}

/// The URIs of blob uploads (monolithic PUTs and chunks) in `reg`'s access log after line `from`.
fn uploads_since(reg: &TestRegistry, from: usize) -> Vec<String> {
    reg.access_log()
        .into_iter()
        .skip(from)
        .filter(|l| (l.method == "PUT" || l.method == "PATCH") && l.uri.contains("/blobs/uploads/"))
        .map(|l| l.uri)
        .collect()
}

#[test]
fn a_fresh_runner_with_a_cache_repo_mounts_every_layer() {
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let cache_repo = reg.reference(&unique("stowage-cache"));
    let first_ref = reg.reference(&format!("{}:1", unique("runner-one")));
    let second_ref = reg.reference(&format!("{}:1", unique("runner-two")));

    // The first runner builds cold, pushes, and fills the cache repository.
    let spec_one = app_at(
        &sb.join("runner-one/app"),
        &first_ref,
        "2001-02-03 04:05:06",
    );
    let (one, meta_one, _) = build(
        &spec_one,
        &sb.join("cache-one"),
        &["--cache-repo", &cache_repo],
    );
    assert!(!all_reused(&meta_one));
    let cache_manifest = reg.skopeo_inspect(&cache_repo_tag(&cache_repo), &["--raw"]);
    let cache_manifest: Value = serde_json::from_slice(&cache_manifest).unwrap();
    assert_eq!(
        cache_manifest["config"]["mediaType"],
        "application/vnd.stowage.cache.v1+json"
    );
    let cached: BTreeSet<&str> = cache_manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["digest"].as_str())
        .collect();
    let layers = layer_ids(&meta_one);
    for (digest, _, _) in &layers {
        assert!(cached.contains(digest.as_str()), "the cache lists {digest}");
    }

    // The second runner: empty store, the app at another path, one compression thread.
    let log_mark = reg.access_log().len();
    let spec_two = app_at(
        &sb.join("runner-two/x/app"),
        &second_ref,
        "2024-12-31 23:59:59",
    );
    let (two, meta_two, stderr) = build(
        &spec_two,
        &sb.join("cache-two"),
        &["--cache-repo", &cache_repo, "--threads", "1"],
    );
    assert_eq!(two.digest, one.digest, "the same image digest");
    assert_eq!(layer_ids(&meta_two), layers);
    assert!(all_reused(&meta_two), "{meta_two}\n{stderr}");
    let uploads = uploads_since(&reg, log_mark);
    for (digest, _, _) in &layers {
        assert!(
            !uploads.iter().any(|u| u.contains(digest.as_str())),
            "layer {digest} was uploaded again: {uploads:?}"
        );
    }
    assert!(
        store_blobs(&sb.join("cache-two"))
            .iter()
            .all(|hex| !layers.iter().any(|(d, _, _)| d.ends_with(hex.as_str()))),
        "pushing to the cache's registry needs no layer bytes on the runner"
    );
    let second_repo = second_ref.trim_start_matches(&format!("{}/", reg.host));
    assert_eq!(
        reg.skopeo_digest(second_repo),
        one.digest,
        "skopeo reads the pushed image"
    );
}

/// `repo:tag` of a cache reference, without the registry host.
fn cache_repo_tag(reference: &str) -> String {
    let path = reference.split_once('/').map_or(reference, |(_, p)| p);
    if path.contains(':') {
        path.to_owned()
    } else {
        format!("{path}:latest")
    }
}

#[test]
fn an_entry_whose_blob_was_deleted_is_ignored() {
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let cache_repo = reg.reference(&unique("stowage-cache"));
    let image = "localhost/stowage-e2e/cache-gone:1";
    let spec_one = app_at(&sb.join("one/app"), image, "2001-02-03 04:05:06");
    let out1 = format!("oci:{}:r", sb.join("out1").display());
    let (one, meta_one, _) = build(
        &spec_one,
        &sb.join("cache-one"),
        &["--cache-repo", &cache_repo, "-o", &out1],
    );
    let layers = layer_ids(&meta_one);
    let (gone, _, _) = &layers[0];
    let repo = cache_repo_tag(&cache_repo);
    let repo = repo.split(':').next().unwrap();
    let deleted = rig_http_delete(&reg, &format!("/v2/{repo}/blobs/{gone}"));
    assert_eq!(deleted, 202, "docker-registry deletes the blob");

    let spec_two = app_at(&sb.join("two/app"), image, "2024-12-31 23:59:59");
    let out2 = format!("oci:{}:r", sb.join("out2").display());
    let (two, meta_two, stderr) = build(
        &spec_two,
        &sb.join("cache-two"),
        &["--cache-repo", &cache_repo, "-o", &out2],
    );
    assert_eq!(two.digest, one.digest, "{stderr}");
    let reused: Vec<bool> = meta_two["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["reused"] == Value::Bool(true))
        .collect();
    assert!(
        !reused[0],
        "the layer whose blob is gone was compressed again"
    );
    assert!(
        reused[1..].iter().all(|r| *r),
        "the others were reused: {reused:?}"
    );
    // The update put the blob back: a third runner reuses every layer.
    let spec_three = app_at(&sb.join("three/app"), image, "2011-01-01 00:00:00");
    let out3 = format!("oci:{}:r", sb.join("out3").display());
    let (three, meta_three, _) = build(
        &spec_three,
        &sb.join("cache-three"),
        &["--cache-repo", &cache_repo, "-o", &out3],
    );
    assert_eq!(three.digest, one.digest);
    assert!(all_reused(&meta_three), "{meta_three}");
}

/// The status of a DELETE on an anonymous registry.
fn rig_http_delete(reg: &TestRegistry, path: &str) -> u16 {
    crate::rig::http::http_request(&reg.host, "DELETE", path, &[], b"")
        .map(|r| r.status)
        .unwrap_or(0)
}

#[test]
fn an_unreachable_cache_repo_is_a_warning() {
    let sb = Sandbox::new();
    let spec = app_at(
        &sb.join("app"),
        "localhost/stowage-e2e/cache-off:1",
        "2001-02-03 04:05:06",
    );
    let out = format!("oci:{}:r", sb.join("out").display());
    let mut cmd = stowage_with_cache(&sb.join("cache"));
    cmd.args(["build", "-f"]).arg(&spec).args([
        "--cache-repo",
        "127.0.0.1:1/nobody/cache",
        "-o",
        &out,
    ]);
    let output = cmd.assert().success().get_output().clone();
    parse_printed(&String::from_utf8(output.stdout).unwrap());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("warning: cannot read the cache repository 127.0.0.1:1/nobody/cache"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("gave up after"),
        "an unreachable cache is not retried like a destination: {stderr}"
    );
}

#[test]
fn a_registry_that_will_not_mount_gets_each_layer_uploaded_once() {
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    // In front of the registry: every cross-repository mount is refused.
    let proxy = FaultProxy::start(&reg.host, |req| {
        if req.method == "POST" && req.target.contains("mount=") {
            Action::status(405)
        } else {
            Action::forward()
        }
    });
    let sb = Sandbox::new();
    let cache_repo = proxy.reference(&unique("stowage-cache"));
    let first_ref = proxy.reference(&format!("{}:1", unique("no-mount-one")));
    let second_ref = proxy.reference(&format!("{}:1", unique("no-mount-two")));
    let spec_one = app_at(&sb.join("one/app"), &first_ref, "2001-02-03 04:05:06");
    let (one, meta_one, _) = build(
        &spec_one,
        &sb.join("cache-one"),
        &[
            "--insecure-registry",
            &proxy.addr,
            "--cache-repo",
            &cache_repo,
        ],
    );
    let layers = layer_ids(&meta_one);

    let mark = proxy.seen().len();
    let spec_two = app_at(&sb.join("two/x/app"), &second_ref, "2024-12-31 23:59:59");
    let (two, meta_two, stderr) = build(
        &spec_two,
        &sb.join("cache-two"),
        &[
            "--insecure-registry",
            &proxy.addr,
            "--cache-repo",
            &cache_repo,
        ],
    );
    assert_eq!(two.digest, one.digest);
    assert!(all_reused(&meta_two), "{meta_two}\n{stderr}");
    let seen = proxy.seen();
    let refused = seen[mark..]
        .iter()
        .filter(|s| s.req.method == "POST" && s.req.target.contains("mount="))
        .count();
    assert!(refused > 0, "the fresh runner asked to mount");
    for (digest, _, _) in &layers {
        let uploads = seen[mark..]
            .iter()
            .filter(|s| s.req.is_blob_upload() && s.req.target.contains(digest.as_str()))
            .count();
        assert_eq!(
            uploads,
            1,
            "layer {digest} is uploaded once: {}",
            summary(&seen[mark..])
        );
    }
}

#[test]
fn a_reused_layer_is_still_scanned_for_secrets() {
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let cache_repo = reg.reference(&unique("stowage-cache"));
    let image = "localhost/stowage-e2e/cache-secret:1";
    let with_secret = |root: &Path, date: &str| {
        let spec = app_at(root, image, date);
        write_file(&root.join("workspace/.env"), "DB_PASSWORD=hunter2\n", 0o644);
        touch_tree(root, date);
        spec
    };
    // Allowed once: the layers go into the store and the cache repository.
    let spec_one = with_secret(&sb.join("one/app"), "2001-02-03 04:05:06");
    let out1 = format!("oci:{}:r", sb.join("out1").display());
    let allow = "/home/user/work/.env";
    build(
        &spec_one,
        &sb.join("cache-one"),
        &[
            "--cache-repo",
            &cache_repo,
            "--allow-secret",
            allow,
            "-o",
            &out1,
        ],
    );
    // Without the allowance, a fresh checkout (store kept) and a fresh runner
    // (only the cache repository) both refuse it, as a cold build does.
    let spec_two = with_secret(&sb.join("two/app"), "2024-12-31 23:59:59");
    fs::remove_dir_all(sb.join("cache-one/meta/layers")).unwrap();
    for (cache, extra) in [
        (sb.join("cache-one"), vec![]),
        (
            sb.join("cache-two"),
            vec!["--cache-repo", cache_repo.as_str()],
        ),
    ] {
        let out2 = format!("oci:{}:r", sb.join("out2").display());
        let mut cmd = stowage_with_cache(&cache);
        cmd.args(["build", "-f"])
            .arg(&spec_two)
            .args(&extra)
            .args(["-o", &out2]);
        let output = cmd.assert().failure().get_output().clone();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains("/home/user/work/.env:1: env-file-secret"),
            "{cache:?}: {stderr}"
        );
        assert!(
            stderr.contains("build: workspace hashed; its blob reused from the content cache"),
            "{cache:?}: the layer with the secret was reused, not compressed: {stderr}"
        );
        assert!(!stderr.contains("hunter2"), "the value is never printed");
    }
}
