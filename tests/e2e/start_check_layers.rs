//! The start check over a base's layers: a file added under a folder the base makes a symlink, a hard link, a whiteout and an opaque folder are judged as docker unpacks them.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::rig::*;

/// A tar member: a folder, a file, or a symlink.
enum Member<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Link(&'a str, &'a str),
}

fn layer_tar(members: &[Member<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for member in members {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_size(0);
        let (path, content): (String, &[u8]) = match member {
            Member::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                (format!("{path}/"), b"")
            }
            Member::File(path, content) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o755);
                header.set_size(content.len() as u64);
                ((*path).to_string(), content)
            }
            Member::Link(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_link_name(target).unwrap();
                ((*path).to_string(), b"")
            }
        };
        builder.append_data(&mut header, path, content).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A usr-merged busybox base as an OCI layout: `/bin` and `/lib` are
/// symlinks into `/usr`; its second layer whites out `/usr/bin/gone` and
/// makes `/opt/data` opaque (hiding `/opt/data/old`). Returns its reference.
fn write_base(dir: &Path) -> String {
    let busybox = fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let lower = layer_tar(&[
        Member::Dir("usr"),
        Member::Dir("usr/bin"),
        Member::Dir("usr/lib"),
        Member::Dir("opt/data"),
        Member::Link("bin", "usr/bin"),
        Member::Link("lib", "usr/lib"),
        Member::File("usr/bin/sh", &busybox),
        Member::File("usr/bin/gone", &busybox),
        Member::File("opt/data/old", &busybox),
    ]);
    let upper = layer_tar(&[
        Member::File("usr/bin/.wh.gone", b""),
        Member::File("opt/data/.wh..wh..opq", b""),
    ]);
    let layers: Vec<_> = [&lower, &upper]
        .iter()
        .map(|tar| write_blob(dir, OCI_LAYER_GZIP, &gzip(tar)))
        .collect();
    let config = base_config("amd64", &[&lower, &upper]);
    let config = write_blob(dir, OCI_CONFIG, &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers,
    });
    let mut desc = write_blob(dir, OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": "usrmerge"});
    write_oci_index(dir, &[desc]);
    format!("oci:{}:usrmerge", dir.display())
}

/// The app: busybox at `/lib/app/bin/echo` and, hard-linked to it, at
/// `/lib/app/echo` (both land under `/usr/lib/app`), with `command`.
fn write_app(sb: &Sandbox, base: &str, command: &str) -> PathBuf {
    let lib = sb.join("lib");
    fs::create_dir_all(lib.join("bin")).unwrap();
    if !lib.join("echo").exists() {
        fs::copy("/bin/busybox", lib.join("bin/echo")).unwrap();
        set_mode(&lib.join("bin/echo"), 0o755);
        fs::hard_link(lib.join("bin/echo"), lib.join("echo")).unwrap();
    }
    let spec = sb.join("stowage.toml");
    let text = format!(
        "base = \"{base}\"\n\n[app]\nlibrary = {{ source = \"lib\", target = \"/lib/app\", owner = \"0:0\" }}\ncommand = {command}\n"
    );
    fs::write(&spec, text).unwrap();
    spec
}

fn build(
    sb: &Sandbox,
    spec: &Path,
    archive: &Path,
    image: &str,
    flags: &[&str],
) -> std::process::Output {
    sb.stowage()
        .args(["build", "-f"])
        .arg(spec)
        .args(flags)
        .arg("-o")
        .arg(format!("docker-archive:{}:{image}", archive.display()))
        .output()
        .unwrap()
}

/// Loads `archive` and runs `image` in docker; its exit status and stdout.
fn docker_run(archive: &Path, image: &str) -> (bool, String) {
    run_ok(docker().args(["load", "-i"]).arg(archive));
    let output = docker()
        .args(["run", "--rm", "--network", "none", image])
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
    )
}

#[test]
fn a_hard_link_under_a_symlinked_base_folder_passes_and_runs() {
    let sb = Sandbox::new();
    let base = write_base(&sb.join("base"));
    // `/lib/app/echo` is the tar hard link (it sorts after `bin/echo`), reached through `/lib`.
    let spec = write_app(&sb, &base, "[\"/lib/app/echo\", \"started\"]");
    let image = unique_ref("start-check-layers");
    let archive = sb.join("image.tar");
    let output = build(&sb, &spec, &archive, &image, &[]);
    assert!(output.status.success(), "{}", show(&output.stderr));
    // The added layer (the last) holds `lib/app/echo` as a tar hard link, as tar reads it.
    let read = DockerArchive::open(&archive);
    let layers = read.manifest()[0]["Layers"].clone();
    let last = layers.as_array().and_then(|l| l.last()).unwrap();
    let entries = tar_entries(&decompress(read.member(last.as_str().unwrap())));
    let echo = entries.iter().find(|e| e.path == b"lib/app/echo").unwrap();
    assert_eq!(echo.kind, tar::EntryType::Link, "{echo:?}");
    assert_eq!(echo.link.as_deref(), Some(&b"lib/app/bin/echo"[..]));
    if !docker_ready() {
        return;
    }
    let _cleanup = DockerImage(image.clone());
    assert_eq!(docker_run(&archive, &image), (true, "started".to_string()));
}

#[test]
fn whited_out_and_opaque_base_files_are_refused_as_docker_fails_them() {
    let sb = Sandbox::new();
    let base = write_base(&sb.join("base"));
    for gone in ["/usr/bin/gone", "/bin/gone", "/opt/data/old"] {
        let spec = write_app(&sb, &base, &format!("[\"{gone}\"]"));
        let archive = sb.join("image.tar");
        let image = unique_ref("start-check-layers");
        let output = build(&sb, &spec, &archive, &image, &[]);
        let stderr = show(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{gone}: {stderr}");
        assert!(
            stderr.contains(&format!("{gone} is not in the image")),
            "{gone}: {stderr}"
        );
        assert!(!archive.exists(), "{gone}: nothing written");
        if !docker_ready() {
            continue;
        }
        // docker agrees: the same image, written without the check, does not start.
        let output = build(&sb, &spec, &archive, &image, &["--no-start-check"]);
        assert!(output.status.success(), "{}", show(&output.stderr));
        let _cleanup = DockerImage(image.clone());
        let (started, _) = docker_run(&archive, &image);
        assert!(
            !started,
            "{gone}: docker started a program the check refused"
        );
        fs::remove_file(&archive).unwrap();
    }
}
