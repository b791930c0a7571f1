//! Issue 14's no-op rebuild: with nothing changed every layer comes from the cache and the `oci:` layout is left untouched; one changed file is seen; and the walk (getdents64 and statx on the open folder) finds exactly what GNU find finds, as GNU tar reads the layers back.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::Digest as _;

use crate::rig::*;

/// Packages of [`FILES_PER_PACKAGE`] files: over 32,768 entries, so the plan is sorted in halves on two threads.
const PACKAGES: usize = 40;
const FILES_PER_PACKAGE: usize = 1000;

/// pip's RECORD hash of `bytes`: urlsafe base64 of the sha256, without padding.
fn record_hash(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes))
}

/// A site-packages of PACKAGES packages with pip's dist-info, plus a symlink,
/// a hard link, an empty folder and names that sort apart by bytes ("a.b"
/// before "a/"). Returns the spec.
fn write_app(root: &Path) -> PathBuf {
    let site = root.join("library/lib/python3.11/site-packages");
    for p in 0..PACKAGES {
        let name = format!("pkg{p:02}");
        let mut record = String::new();
        for i in 0..FILES_PER_PACKAGE {
            let rel = format!("{name}/sub{}/m{:03}.py", i / 100, i % 100);
            let body = format!("x = {p} * {i}\n");
            write_file(&site.join(&rel), &body, 0o644);
            record.push_str(&format!(
                "{rel},sha256={},{}\n",
                record_hash(body.as_bytes()),
                body.len()
            ));
        }
        let info = format!("{name}-1.0.dist-info");
        let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n");
        write_file(&site.join(&info).join("METADATA"), &metadata, 0o644);
        write_file(&site.join(&info).join("INSTALLER"), "pip\n", 0o644);
        for (file, body) in [("METADATA", metadata.as_str()), ("INSTALLER", "pip\n")] {
            record.push_str(&format!(
                "{info}/{file},sha256={},{}\n",
                record_hash(body.as_bytes()),
                body.len()
            ));
        }
        record.push_str(&format!("{info}/RECORD,,\n"));
        write_file(&site.join(&info).join("RECORD"), record, 0o644);
    }
    let lib = root.join("library");
    write_file(&lib.join("a.b"), "dot\n", 0o644);
    write_file(&lib.join("a/b"), "slash\n", 0o755);
    fs::hard_link(lib.join("a/b"), lib.join("a/c")).unwrap();
    symlink("a/b", lib.join("link")).unwrap();
    fs::create_dir_all(lib.join("empty")).unwrap();
    let spec = root.join("stowage.toml");
    fs::write(
        &spec,
        "base = \"scratch\"\n[app]\nlibrary = { source = \"library\", target = \"/opt/app\" }\n\
         command = [\"/opt/app/a/b\"]\n",
    )
    .unwrap();
    spec
}

/// Every file under `dir` with its inode, size and modification time: what a rewrite would change.
fn snapshot(dir: &Path) -> BTreeSet<(String, u64, u64, i64, i64)> {
    let mut out = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for item in fs::read_dir(&folder).unwrap() {
            let path = item.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                pending.push(path.clone());
            }
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            out.insert((rel, meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec()));
        }
    }
    out
}

/// Builds `spec` into `layout` (not quiet); returns the digest and what it printed.
fn build(sandbox: &Sandbox, spec: &Path, layout: &Path) -> (String, String) {
    let out = sandbox
        .stowage()
        .arg("build")
        // The command is a text file: the start check is not what is tested here.
        .arg("--no-start-check")
        .arg("-f")
        .arg(spec)
        .arg("-o")
        .arg(format!("oci:{}:noop", layout.display()))
        .output()
        .expect("run stowage");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "build failed:\n{text}");
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("oci:{}:noop@", layout.display())))
        .unwrap_or_else(|| panic!("no reference to the layout printed:\n{text}"))
        .to_string();
    (digest, text)
}

/// The `layer ...` lines a build printed: (cached, not cached).
fn layer_lines(text: &str) -> (usize, usize) {
    let layers: Vec<&str> = text.lines().filter(|l| l.starts_with("layer ")).collect();
    let cached = layers.iter().filter(|l| l.ends_with("(cached)")).count();
    (cached, layers.len() - cached)
}

/// (type, path) of everything in the image's layers, as GNU tar lists them; a hard link counts as a file.
fn tar_listing(layout: &Path) -> BTreeSet<(char, String)> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(blob(manifest_digest)).unwrap()).unwrap();
    let mut out = BTreeSet::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let listed = Command::new("tar")
            .arg("-tvzf")
            .arg(blob(layer["digest"].as_str().unwrap()))
            .output()
            .expect("run tar");
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            let kind = match line.chars().next() {
                Some('h' | '-') => 'f',
                Some(other) => other,
                None => continue,
            };
            // "drwxr-xr-x 0/0 0 1970-01-01 00:00 opt/app/a -> ..." : the path is the sixth field.
            let path = line
                .split_whitespace()
                .nth(5)
                .unwrap()
                .trim_end_matches('/')
                .to_string();
            out.insert((kind, path));
        }
    }
    out
}

/// (type, image path) of everything under `lib`, as GNU find lists it.
fn find_listing(lib: &Path) -> BTreeSet<(char, String)> {
    let found = Command::new("find")
        .arg(lib)
        .arg("-mindepth")
        .arg("1")
        .arg("-printf")
        .arg("%y %P\\n")
        .output()
        .expect("run find");
    assert!(found.status.success());
    String::from_utf8_lossy(&found.stdout)
        .lines()
        .map(|l| {
            let (kind, path) = l.split_once(' ').unwrap();
            (kind.chars().next().unwrap(), format!("opt/app/{path}"))
        })
        .collect()
}

#[test]
fn a_rebuild_with_nothing_changed_is_all_cache_and_writes_nothing_and_one_change_is_seen() {
    if !require_tools(&["tar", "find"]) {
        return;
    }
    let sandbox = Sandbox::new();
    let spec = write_app(&sandbox.mkdir("app"));
    let layout = sandbox.join("out");
    let (first, text) = build(&sandbox, &spec, &layout);
    let (cached, written) = layer_lines(&text);
    assert!(
        cached == 0 && written > 1,
        "a cold build, split by package:\n{text}"
    );

    let lib = sandbox.join("app/library");
    let mut walked = find_listing(&lib);
    walked.insert(('d', "opt".into()));
    walked.insert(('d', "opt/app".into()));
    assert_eq!(
        tar_listing(&layout),
        walked,
        "the layers hold what find finds"
    );

    let before = snapshot(&layout);
    let (again, text) = build(&sandbox, &spec, &layout);
    assert_eq!(again, first);
    assert_eq!(
        layer_lines(&text),
        (written, 0),
        "every layer from the cache:\n{text}"
    );
    assert_eq!(
        snapshot(&layout),
        before,
        "a no-op leaves the layout as it was"
    );

    // Same size and mtime: only the ctime (and the bytes) say it changed.
    let changed = lib.join("lib/python3.11/site-packages/pkg07/sub3/m042.py");
    let mtime = fs::metadata(&changed).unwrap().modified().unwrap();
    let body = fs::read(&changed).unwrap();
    fs::write(
        &changed,
        body.iter()
            .map(|b| if *b == b'7' { b'8' } else { *b })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    fs::File::options()
        .write(true)
        .open(&changed)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (third, text) = build(&sandbox, &spec, &layout);
    assert_ne!(third, first, "the changed file is seen");
    assert_eq!(
        layer_lines(&text),
        (written - 1, 1),
        "only its layer is written again:\n{text}"
    );
}
