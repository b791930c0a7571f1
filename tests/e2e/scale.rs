//! Issue 14's bound on memory: a build of a million files keeps its peak resident memory under a fixed limit.
//!
//! The peak is the kernel's `ru_maxrss` of the stowage process, read by
//! `wait4` (`rig::run_measured`). The tree is written to /dev/shm
//! when there is one, so creating a million files takes seconds.
//!
//! Each package has a dist-info whose RECORD lists every one of its files
//! with its sha256, as pip writes it: the inventory reads them all, and the
//! bound holds with what a real environment's metadata makes it keep.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::rig::{Layout, Measured, exit0_elf, require_tool, run_measured, stowage_bin};

/// Package files in the tree (plus each package's three metadata files and the command the spec names).
const FILES: usize = 1_000_000;

/// Files a package holds, besides its dist-info.
const PACKAGE_FILES: usize = 1000;

/// The peak RSS a build of [`FILES`] tiny files must stay under: issue 14's 200 MiB.
///
/// A plan keeps a 48-byte entry per file and its path's bytes in an arena,
/// a package names its files by 8-byte keys, and the start check looks added
/// paths up in the plans instead of copying them: a million files with
/// their RECORDs peak near 150 MiB (debug build), where they took 354 MiB
/// with owned paths and hashes per package file.
const PEAK_RSS_LIMIT_MIB: u64 = 200;

/// A RECORD row's hash and size fields for `content`, as pip writes them.
fn row_tail(content: &str) -> String {
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(content));
    format!("sha256={hash},{}", content.len())
}

/// A small file's content, and its RECORD row's hash and size.
fn small_file(file: usize) -> (String, String) {
    let content = format!("x = {file}\n");
    let tail = row_tail(&content);
    (content, tail)
}

/// Writes one package: its files (100 a folder) and a dist-info whose RECORD lists them all.
fn write_package(site: &Path, package: usize, rows: &[(String, String)]) {
    let name = format!("pkg{package:04}");
    let mut record = String::new();
    for sub in 0..PACKAGE_FILES / 100 {
        let folder = site.join(format!("{name}/sub{sub}"));
        fs::create_dir_all(&folder).expect("create a package folder");
        for (file, (content, row_tail)) in rows.iter().enumerate() {
            let rel = format!("{name}/sub{sub}/m{file:03}.py");
            fs::write(site.join(&rel), content).expect("write a small file");
            record.push_str(&format!("{rel},{row_tail}\n"));
        }
    }
    let dist_info = site.join(format!("{name}-1.0.dist-info"));
    fs::create_dir_all(&dist_info).expect("create a dist-info");
    let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n");
    for (file, content) in [("METADATA", metadata.as_str()), ("INSTALLER", "pip\n")] {
        fs::write(dist_info.join(file), content).expect("write package metadata");
        record.push_str(&format!(
            "{name}-1.0.dist-info/{file},{}\n",
            row_tail(content)
        ));
    }
    record.push_str(&format!("{name}-1.0.dist-info/RECORD,,\n"));
    fs::write(dist_info.join("RECORD"), record).expect("write a RECORD");
}

/// Writes the app: FILES tiny files in packages under site-packages (1,000 a
/// package, each with a dist-info), the command, and the spec. Two threads share the packages.
fn write_million_files(root: &Path) -> PathBuf {
    let site = root.join("library/lib/python3.11/site-packages");
    let packages = FILES / PACKAGE_FILES;
    let rows: Vec<(String, String)> = (0..100).map(small_file).collect();
    std::thread::scope(|scope| {
        for half in 0..2 {
            let (site, rows) = (&site, &rows);
            scope.spawn(move || {
                for package in (half..packages).step_by(2) {
                    write_package(site, package, rows);
                }
            });
        }
    });
    let run = root.join("library/run");
    fs::write(&run, exit0_elf()).expect("write the command");
    fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("make the command executable");
    let spec = root.join("stowage.toml");
    fs::write(
        &spec,
        "base = \"scratch\"\n[app]\nlibrary = { source = \"library\", target = \"/opt/app\" }\n\
         command = [\"/opt/app/run\"]\n",
    )
    .expect("write the spec");
    spec
}

/// Regular files in a gzip layer blob, as GNU tar lists them.
fn files_in_layer(blob: &Path) -> usize {
    let out = Command::new("tar")
        .arg("-tvzf")
        .arg(blob)
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "tar cannot list {}: {}",
        blob.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.starts_with('-'))
        .count()
}

#[test]
fn a_million_files_build_in_bounded_memory() {
    if !require_tool("tar") {
        return;
    }
    let shm = Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix("stowage-scale-");
    let dir = if shm.is_dir() {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    }
    .expect("create a folder for the tree");
    let spec = write_million_files(dir.path());
    let out = dir.path().join("out");
    let home = dir.path();
    let Measured {
        ok,
        stderr,
        peak_kib,
        ..
    } = run_measured(
        Command::new(stowage_bin())
            .args(["-q", "build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:scale", out.display()))
            .env("STOWAGE_CACHE_DIR", home.join("cache"))
            .env("STOWAGE_STATE_DIR", home.join("state"))
            .env("XDG_CACHE_HOME", home.join("xdg-cache"))
            .env("XDG_STATE_HOME", home.join("xdg-state"))
            .env("DOCKER_CONFIG", home.join("docker-config"))
            .env_remove("SOURCE_DATE_EPOCH")
            .current_dir(home),
    );
    assert!(ok, "the build failed:\n{stderr}");
    let peak_mib = peak_kib / 1024;
    eprintln!("a build of {FILES} files peaked at {peak_mib} MiB resident");
    assert!(
        peak_mib < PEAK_RSS_LIMIT_MIB,
        "a build of {FILES} files peaked at {peak_mib} MiB resident, over the {PEAK_RSS_LIMIT_MIB} MiB bound"
    );
    // Every file is in the image, as tar reads the layers.
    let layout = Layout::open(&out);
    let image = layout.image("scale");
    let files: usize = image
        .layers()
        .iter()
        .map(|layer| {
            let digest = layer["digest"].as_str().expect("a layer digest");
            files_in_layer(&out.join("blobs/sha256").join(&digest["sha256:".len()..]))
        })
        .sum();
    let packages = FILES / PACKAGE_FILES;
    assert_eq!(
        files,
        FILES + 3 * packages + 1,
        "regular files in the image's layers"
    );
}
