//! A base image made of the host's own Python (Debian 12's python3.11), for
//! tests that run a Python app under docker without pulling a base.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// The host libraries that `ldd` says `files` need, as paths under `usr/lib`
/// (Debian merges /lib into /usr/lib); libraries inside `skip` (a wheel's
/// bundled ones) are left out: the image has them already.
fn needed_libraries(files: &[PathBuf], skip: &Path) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    for chunk in files.chunks(200) {
        // ldd fails for a file that is not dynamic; its other lines still count.
        let out = Command::new("ldd").args(chunk).output().unwrap();
        // Only lines of loaded objects (`name => /path (0x…)`, `/lib64/ld… (0x…)`);
        // with several files ldd also prints a `file:` line for each.
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" (0x"))
        {
            let path = match line.split_once("=> ") {
                Some((_, rest)) => rest.split(' ').next().unwrap_or_default(),
                None => line.trim().split(' ').next().unwrap_or_default(),
            };
            if !path.starts_with('/') || Path::new(path).starts_with(skip) {
                continue;
            }
            let rel = path.trim_start_matches('/');
            let rel = rel.strip_prefix("lib/").map(|r| format!("usr/lib/{r}"));
            found.insert(rel.unwrap_or_else(|| path.trim_start_matches('/').to_owned()));
        }
    }
    found
}

/// Every `*.so*` file under `dir`.
fn shared_objects(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            shared_objects(&path, out);
        } else if kind.is_file() && path.to_string_lossy().contains(".so") {
            out.push(path);
        }
    }
}

/// A base image of the host's own Python (Debian's python3.11, its stdlib,
/// and every host library it, `venv`'s extension modules and `programs`
/// link), with `/tmp` and a root entry in `/etc/passwd`; no registry needed.
pub fn host_python_base(sb: &Sandbox, venv: &Path, programs: &[&str]) -> PathBuf {
    let mut binaries = vec![PathBuf::from("/usr/bin/python3.11")];
    binaries.extend(programs.iter().map(PathBuf::from));
    shared_objects(Path::new("/usr/lib/python3.11/lib-dynload"), &mut binaries);
    shared_objects(venv, &mut binaries);
    // A set: tar --dereference would store a path named twice as a hard link to itself.
    let mut libraries = needed_libraries(&binaries, venv);
    libraries.insert("lib64/ld-linux-x86-64.so.2".into());
    let extra = sb.join("base-extra");
    write_file(
        &extra.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    );
    write_file(&extra.join("etc/group"), "root:x:0:\n", 0o644);
    fs::create_dir_all(extra.join("tmp")).unwrap();
    set_mode(&extra.join("tmp"), 0o1777);
    fs::create_dir_all(extra.join("root")).unwrap();
    // The files' folders, 0755: a runtime makes a missing parent with
    // another mode (Docker: 0600), which only root could then enter.
    for folder in ["usr/bin", "usr/lib/x86_64-linux-gnu", "lib64"] {
        fs::create_dir_all(extra.join(folder)).unwrap();
    }
    for folder in [
        "usr",
        "usr/bin",
        "usr/lib",
        "usr/lib/x86_64-linux-gnu",
        "lib64",
    ] {
        set_mode(&extra.join(folder), 0o755);
    }
    // Debian's merged /usr: `#!/bin/bash` finds /usr/bin/bash.
    std::os::unix::fs::symlink("usr/bin", extra.join("bin")).unwrap();
    let tar = sb.join("python-base.tar");
    let out = Command::new("tar")
        .args(["-cf"])
        .arg(&tar)
        .args([
            "-C",
            "/",
            "--dereference",
            "--exclude=__pycache__",
            "--exclude=usr/lib/python3.11/test",
            "--exclude=usr/lib/python3.11/site-packages",
            "--exclude=usr/lib/python3.11/dist-packages",
            "--exclude=sitecustomize.py",
            "usr/bin/python3",
            "usr/lib/python3.11",
        ])
        .args(programs.iter().map(|p| p.trim_start_matches('/')))
        .args(&libraries)
        .arg("-C")
        .arg(&extra)
        .args(["etc", "tmp", "root", "usr", "lib64"])
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {}", show(&out.stderr));
    // Appended without --dereference, so it stays a symlink.
    let out = Command::new("tar")
        .arg("-rf")
        .arg(&tar)
        .arg("-C")
        .arg(&extra)
        .arg("bin")
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {}", show(&out.stderr));
    let layout = sb.join("python-base");
    let desc = write_oci_image(&layout, "amd64", &fs::read(&tar).unwrap());
    write_oci_index(&layout, &[desc]);
    layout
}

/// `docker run` as an unprivileged user (1234:1234) on a read-only root
/// filesystem, without network: someone who cannot write the image's files.
pub const LOCKED_DOWN: [&str; 7] = [
    "run",
    "--rm",
    "--network",
    "none",
    "--read-only",
    "--user",
    "1234:1234",
];

/// The lines of `python -v` output that say a module's bytecode was stale
/// (Python then compiled the source again, and could not save it read-only).
pub fn stale_bytecode(verbose: &str) -> Vec<&str> {
    verbose
        .lines()
        .filter(|l| l.contains("bytecode is stale"))
        .collect()
}

/// Whether this machine can make the host-Python base (Debian 12 on x86_64, as CI is).
pub fn host_python_usable() -> bool {
    if std::env::consts::ARCH != "x86_64" || !Path::new("/usr/bin/python3.11").exists() {
        return !skip_or_fail("the host-Python base needs /usr/bin/python3.11 on x86_64");
    }
    true
}
