//! Issue 14's bound on memory: a build of a million files keeps its peak resident memory under a fixed limit.
//!
//! How the peak is measured: stowage runs as a child of the test, which
//! reaps it with `wait4` and reads the kernel's `ru_maxrss` for exactly that
//! process — its resident high-water mark over all its threads. Unlike an
//! address-space limit (`prlimit --as`), it is not inflated by thread stacks
//! and reserved-but-untouched memory; unlike a cgroup v1 memory limit, it
//! needs no root and counts no page cache. The tree is written to /dev/shm
//! when there is one, so creating a million files takes seconds.
//!
//! Each package has a dist-info whose RECORD lists every one of its files
//! with its sha256, as pip writes it: the inventory reads them all, and the
//! bound holds with what a real environment's metadata makes it keep.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::rig::{Layout, require_tool, stowage_bin};

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

/// A static x86-64 ELF that exits 0: a command the start check can follow on scratch.
fn exit0_elf() -> Vec<u8> {
    let code = [0xB8, 60, 0, 0, 0, 0x31, 0xFF, 0x0F, 0x05]; // mov eax, 60; xor edi, edi; syscall
    let base: u64 = 0x40_0000;
    let start: u64 = 64 + 56;
    let end = start + code.len() as u64;
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.extend_from_slice(&[0; 9]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3Eu16.to_le_bytes()); // x86-64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(base + start).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers at 64
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // read + execute
    for word in [0, base, base, end, end, 0x1000] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(&code);
    elf
}

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

/// Runs `cmd` to its end; returns whether it succeeded, its stderr, and its peak RSS in KiB.
fn run_measured(cmd: &mut Command) -> (bool, String, u64) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stowage");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr)
            .expect("read stowage's stderr");
    }
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, fully written by wait4 on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: reaps our own child, with valid pointers to locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    // Reaped above: std's own wait only finds it gone (ECHILD), and that is all it is asked for.
    let _ = child.try_wait();
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // Linux reports ru_maxrss in KiB.
    (
        ok,
        stderr,
        u64::try_from(usage.ru_maxrss).unwrap_or(u64::MAX),
    )
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
    let (ok, stderr, peak_kib) = run_measured(
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
