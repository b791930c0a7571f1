//! Issue 5's guarantees that speed must not cost correctness: the thread count
//! never changes the image, the layer cache gives what a cold build gives,
//! and the library is split by package so one change touches one layer.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::rig::{Sandbox, parse_printed, run_ok, stowage_with_cache, write_file};

/// A library of several packages, some larger than one gzip chunk (1 MiB), so
/// several compression threads really do share a layer.
fn write_packaged_app(root: &Path) -> PathBuf {
    let library = root.join("library");
    for (i, package) in [
        "numpy",
        "pandas",
        "requests",
        "jupyterlab",
        "ext-git",
        "ext-vim",
    ]
    .iter()
    .enumerate()
    {
        let size = if i < 2 { 1_600_000 } else { 20_000 };
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ i as u64;
        let data: Vec<u8> = (0..size)
            .map(|n| {
                if n % 3 == 0 {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    (state >> 40) as u8
                } else {
                    b"import module\n"[n % 14]
                }
            })
            .collect();
        write_file(&library.join(package).join("__init__.py"), &data, 0o644);
        write_file(
            &library.join(package).join("VERSION"),
            format!("{i}.0\n"),
            0o644,
        );
        // Random-only files (shared objects, wheels) between text files, one
        // spanning chunks: the compressor stores these and deflates the rest,
        // so runs of both kinds alternate inside chunks.
        for (n, size) in [3_000usize, 70_000, 1_300_000]
            .iter()
            .enumerate()
            .take(i + 1)
        {
            let noise: Vec<u8> = (0..*size)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    (state >> 33) as u8
                })
                .collect();
            write_file(
                &library.join(package).join(format!("lib{n}.so")),
                &noise,
                0o755,
            );
            write_file(
                &library.join(package).join(format!("lib{n}.txt")),
                b"text between the binaries\n".repeat(200 + n * 50),
                0o644,
            );
        }
    }
    write_file(&root.join("workspace/notes.md"), "notes\n", 0o644);
    let spec = root.join("stowage.toml");
    fs::write(
        &spec,
        r#"base = "scratch"
[app]
library = { source = "library", target = "/opt/app" }
workspace = { source = "workspace", target = "/home/user/work" }
"#,
    )
    .unwrap();
    spec
}

struct Built {
    digest: String,
    layers: Vec<Value>,
}

fn build(cache: &Path, spec: &Path, out: &Path, extra: &[&str]) -> Built {
    let metadata = out.with_extension("json");
    let stdout = run_ok(
        stowage_with_cache(cache)
            .args(["build", "-f"])
            .arg(spec)
            .arg("-o")
            .arg(format!("oci:{}:t", out.display()))
            .arg("--metadata-file")
            .arg(&metadata)
            .args(extra),
    );
    let meta: Value = serde_json::from_slice(&fs::read(&metadata).unwrap()).unwrap();
    Built {
        digest: parse_printed(&stdout).digest,
        layers: meta["layers"].as_array().unwrap().clone(),
    }
}

fn digests(built: &Built) -> Vec<String> {
    built
        .layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn thread_counts_give_identical_digests() {
    let sb = Sandbox::new();
    let spec = write_packaged_app(&sb.join("app"));
    let mut seen = Vec::new();
    for threads in ["1", "2", "8"] {
        // A fresh cache each time, so every layer is really compressed.
        let cache = sb.join(format!("cache-{threads}"));
        let built = build(
            &cache,
            &spec,
            &sb.join(format!("out-{threads}")),
            &["--threads", threads],
        );
        assert!(built.layers.iter().all(|l| l["cached"] == false));
        let layers = digests(&built);
        seen.push((threads, built.digest, layers));
    }
    for (threads, digest, layers) in &seen[1..] {
        assert_eq!(digest, &seen[0].1, "{threads} threads vs 1");
        assert_eq!(layers, &seen[0].2, "{threads} threads vs 1");
    }
}

#[test]
fn cache_gives_the_cold_digests_and_deleting_it_changes_nothing_but_time() {
    let sb = Sandbox::new();
    let spec = write_packaged_app(&sb.join("app"));
    let cache = sb.join("cache");
    let cold = build(&cache, &spec, &sb.join("cold"), &[]);
    let warm = build(&cache, &spec, &sb.join("warm"), &[]);
    assert!(
        warm.layers.iter().all(|l| l["cached"] == true),
        "nothing changed, so nothing is read or compressed: {:?}",
        warm.layers
    );
    assert_eq!(warm.digest, cold.digest);
    fs::remove_dir_all(&cache).unwrap();
    let again = build(&cache, &spec, &sb.join("again"), &[]);
    assert!(again.layers.iter().all(|l| l["cached"] == false));
    assert_eq!(again.digest, cold.digest);
    assert_eq!(digests(&again), digests(&cold));
}

#[test]
fn changing_one_file_changes_exactly_one_layer() {
    let sb = Sandbox::new();
    let app = sb.join("app");
    let spec = write_packaged_app(&app);
    let cache = sb.join("cache");
    let before = build(&cache, &spec, &sb.join("before"), &[]);
    let library_layers = before
        .layers
        .iter()
        .filter(|l| l["name"].as_str().unwrap().starts_with("library"))
        .count();
    assert!(
        library_layers > 1,
        "the library is split: {:?}",
        before.layers
    );

    write_file(&app.join("library/pandas/VERSION"), "1.1\n", 0o644);
    let after = build(&cache, &spec, &sb.join("after"), &[]);
    let (old, new) = (digests(&before), digests(&after));
    assert_eq!(old.len(), new.len());
    let changed = old.iter().zip(&new).filter(|(a, b)| a != b).count();
    assert_eq!(changed, 1, "one file changed, one layer changed");
    let rebuilt = after.layers.iter().filter(|l| l["cached"] == false).count();
    assert_eq!(rebuilt, 1, "only that layer was read again");

    // A changed fingerprint with the same content still gives the same digest.
    let notes = app.join("workspace/notes.md");
    fs::write(&notes, "notes\n").unwrap();
    let touched = build(&cache, &spec, &sb.join("touched"), &[]);
    assert_eq!(touched.digest, after.digest);
}

#[test]
fn adding_a_package_leaves_the_other_library_layers_alone() {
    let sb = Sandbox::new();
    let app = sb.join("app");
    let spec = write_packaged_app(&app);
    let cache = sb.join("cache");
    let before = build(&cache, &spec, &sb.join("before"), &[]);
    write_file(
        &app.join("library/scipy/__init__.py"),
        "# new package\n",
        0o644,
    );
    let after = build(&cache, &spec, &sb.join("after"), &[]);
    let old: std::collections::BTreeSet<String> = digests(&before).into_iter().collect();
    let kept = digests(&after).iter().filter(|d| old.contains(*d)).count();
    assert!(
        kept + 1 >= digests(&after).len(),
        "at most the new package's layer is new: {:?} then {:?}",
        before.layers,
        after.layers
    );
}

#[test]
fn dry_run_shows_the_split() {
    let sb = Sandbox::new();
    let spec = write_packaged_app(&sb.join("app"));
    let stdout = run_ok(
        sb.stowage()
            .args(["build", "--dry-run", "--library-layers", "3", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg("oci:unused"),
    );
    let library_lines = stdout.lines().filter(|l| l.contains(" library-")).count();
    assert!(
        (2..=3).contains(&library_lines),
        "the plan lists the library's parts: {stdout}"
    );
    assert!(!sb.join("unused").exists());
}
