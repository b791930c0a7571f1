//! Issue 14's bound on memory: a build of a million files keeps its peak resident memory under a fixed limit.
//!
//! How the peak is measured: stowage runs as a child of the test, which
//! reaps it with `wait4` and reads the kernel's `ru_maxrss` for exactly that
//! process — its resident high-water mark over all its threads. Unlike an
//! address-space limit (`prlimit --as`), it is not inflated by thread stacks
//! and reserved-but-untouched memory; unlike a cgroup v1 memory limit, it
//! needs no root and counts no page cache. The tree is written to /dev/shm
//! when there is one, so creating a million files takes seconds.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::rig::{Layout, require_tool, stowage_bin};

/// Files in the tree (plus the command the spec names).
const FILES: usize = 1_000_000;

/// The peak RSS a build of [`FILES`] tiny files must stay under: issue 14's 200 MiB.
///
/// A plan keeps a 48-byte entry per file and its path's bytes in an arena,
/// and the start check looks added paths up in the plans instead of
/// copying them: a million files peak near 145 MiB (debug build), where
/// they took 376 MiB before.
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

/// Writes the app: FILES tiny files in packages under site-packages (1,000 a
/// package, 100 a folder), the command, and the spec. Two threads share the packages.
fn write_million_files(root: &Path) -> PathBuf {
    let site = root.join("library/lib/python3.11/site-packages");
    let packages = FILES / 1000;
    std::thread::scope(|scope| {
        for half in 0..2 {
            let site = &site;
            scope.spawn(move || {
                for package in (half..packages).step_by(2) {
                    for sub in 0..10 {
                        let folder = site.join(format!("pkg{package:04}/sub{sub}"));
                        fs::create_dir_all(&folder).expect("create a package folder");
                        for file in 0..100 {
                            fs::write(
                                folder.join(format!("m{file:03}.py")),
                                format!("x = {file}\n"),
                            )
                            .expect("write a small file");
                        }
                    }
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
    assert_eq!(files, FILES + 1, "regular files in the image's layers");
}
