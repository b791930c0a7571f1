//! `[app] user` given by name: resolved in the base's `/etc/passwd` and
//! `/etc/group` for the owner of the added files, as the runtime resolves
//! it; a name the base lacks is refused at its line.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::rig::*;

/// A base of one layer holding Debian's own /etc/passwd and /etc/group
/// (this host's: `nobody` is 65534, `nogroup` 65534).
fn debian_base(sb: &Sandbox) -> PathBuf {
    let tar = sb.join("etc.tar");
    let out = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .args(["-C", "/", "etc/passwd", "etc/group"])
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {}", show(&out.stderr));
    let layout = sb.join("debian-base");
    let desc = write_oci_image(&layout, "amd64", &fs::read(&tar).unwrap());
    write_oci_index(&layout, &[desc]);
    layout
}

/// A spec over `base` adding one file, run as `user`.
fn write_spec(sb: &Sandbox, base: &Path, user: &str) -> PathBuf {
    write_file(&sb.join("app/hello.txt"), "hi\n", 0o644);
    let spec = sb.join("app/stowage.toml");
    fs::write(
        &spec,
        format!(
            "base = \"oci:{}\"\n\n[app]\nuser = \"{user}\"\n\n\
             [[files]]\nsource = \"hello.txt\"\ntarget = \"/opt/app/hello.txt\"\n",
            base.display()
        ),
    )
    .unwrap();
    spec
}

#[test]
fn a_named_user_owns_the_added_files_with_the_base_ids() {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    if !passwd.contains("nobody:x:65534:65534:") {
        assert!(!in_ci(), "CI runs on Debian, whose nobody is 65534:65534");
        return;
    }
    let sb = Sandbox::new();
    let base = debian_base(&sb);
    let spec = write_spec(&sb, &base, "nobody");
    let layout = sb.join("out");
    let out = sb
        .stowage()
        // The base is two files, no shell: nothing to start.
        .args(["build", "--no-start-check", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:1", layout.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out.stderr));
    let read = Layout::open(&layout);
    let image = read.image("1");
    let added = read.layer_tar(&image, image.layers().len() - 1);
    fs::write(sb.join("added.tar"), &added).unwrap();
    // GNU tar, not stowage, says who owns what.
    let listed = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(sb.join("added.tar"))
        .output()
        .unwrap();
    let listed = show(&listed.stdout);
    let hello = listed
        .lines()
        .find(|l| l.ends_with("opt/app/hello.txt"))
        .unwrap_or_else(|| panic!("no hello.txt in:\n{listed}"));
    assert!(hello.contains(" 65534/65534 "), "{hello}");

    // A name the base lacks: a spec error at the `user` line (line 4, its value at column 8).
    let spec = write_spec(&sb, &base, "jovyan");
    let out = sb
        .stowage()
        // The base is two files, no shell: nothing to start.
        .args(["build", "--no-start-check", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:2", layout.display()))
        .output()
        .unwrap();
    let stderr = show(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("stowage.toml:4:8"), "{stderr}");
    assert!(
        stderr.contains("user `jovyan` is not in the base's /etc/passwd"),
        "{stderr}"
    );
}
