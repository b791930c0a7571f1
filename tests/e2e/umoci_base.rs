//! A base made by Debian's umoci 0.4.7, whose layer tars end without the
//! last entry's padding and without the two end blocks: stowage builds on
//! it and docker runs the result, as docker, podman and skopeo read such
//! bases too. A layer whose file data is cut short is still refused.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::rig::*;

/// A umoci layout at `dir`, tag `base`: a busybox layer (`/bin/busybox`,
/// `/bin/sh` → busybox, so it ends at a symlink's header) and a layer whose
/// last entry is the 14-byte `/usr/share/motd`. Returns the layer tars.
fn umoci_base(sb: &Sandbox, dir: &Path) -> Vec<Vec<u8>> {
    let image = format!("{}:base", dir.display());
    let umoci = |args: &[&str]| {
        run_ok(tool("umoci").args(args));
    };
    umoci(&["init", "--layout", &dir.display().to_string()]);
    umoci(&["new", "--image", &image]);
    let busybox = sb.join("busybox-root");
    fs::create_dir_all(busybox.join("bin")).unwrap();
    fs::copy("/bin/busybox", busybox.join("bin/busybox"))
        .expect("/bin/busybox (busybox-static; scripts/test-env.sh installs it)");
    std::os::unix::fs::symlink("busybox", busybox.join("bin/sh")).unwrap();
    let motd = sb.join("motd-root");
    write_file(&motd.join("usr/share/motd"), "made by umoci\n", 0o644);
    for root in [&busybox, &motd] {
        run_ok(
            tool("umoci")
                .args(["insert", "--rootless", "--image", &image])
                .arg(root)
                .arg("/"),
        );
    }
    umoci(&["config", "--image", &image, "--config.cmd", "/bin/sh"]);
    let manifest = read_json(&blob_path(dir, &only_manifest(dir)["digest"]));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| decompress(&fs::read(blob_path(dir, &layer["digest"])).unwrap()))
        .collect()
}

fn blob_path(dir: &Path, digest: &Value) -> std::path::PathBuf {
    let hex = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
    dir.join("blobs/sha256").join(hex)
}

fn only_manifest(dir: &Path) -> Value {
    let index = read_json(&dir.join("index.json"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    index["manifests"][0].clone()
}

/// The sample app over `base`, with the base's own `/bin/sh` running its start script.
fn app_over(sb: &Sandbox, base: &str, image: &str) -> std::path::PathBuf {
    let spec = write_app(&sb.join("app"), image);
    let text = fs::read_to_string(&spec).unwrap();
    let own_shell =
        "[[files]]\nsource = \"library/bin/busybox\"\ntarget = \"/bin/sh\"\nmode = \"0755\"\n";
    assert!(text.contains(own_shell));
    let text = text
        .replace("base = \"scratch\"", &format!("base = \"{base}\""))
        .replace(own_shell, "");
    fs::write(&spec, text).unwrap();
    label_uniquely(&spec, image);
    spec
}

#[test]
fn a_umoci_base_without_end_blocks_builds_and_runs_in_docker() {
    if !require_tools(&["umoci", "docker"]) {
        return;
    }
    let sb = Sandbox::new();
    let base = sb.join("umoci-layout");
    let layers = umoci_base(&sb, &base);
    assert_eq!(layers.len(), 2);
    // The case this test is about: no end blocks, and the last padding missing.
    for tar in &layers {
        assert!(
            tar.len() < 1024 || tar[tar.len() - 1024..] != [0u8; 1024],
            "umoci's layer has no end blocks"
        );
    }
    assert_eq!(layers[0].len() % 512, 0, "ends at an entry boundary");
    assert_ne!(layers[1].len() % 512, 0, "ends without the last padding");

    let image = unique_ref("umoci-base");
    let spec = app_over(&sb, &format!("oci:{}:base", base.display()), &image);
    let archive = sb.mkdir("out").join("app.tar");
    run_ok(
        sb.stowage()
            .args(["build", "--library-layers", "1", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("docker-archive:{}:{image}", archive.display())),
    );
    if !docker_ready() {
        return;
    }
    let _cleanup = DockerImage(image.clone());
    run_ok(docker().args(["load", "-i"]).arg(&archive));
    let stdout = run_ok(docker().args(["run", "--rm", "--network", "host", &image]));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), APP_OUTPUT);
    let motd = run_ok(docker().args([
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "/bin/sh",
        &image,
        "-c",
        "cat /usr/share/motd",
    ]));
    assert_eq!(
        motd, "made by umoci\n",
        "the base's last layer is in the image"
    );
}

#[test]
fn a_base_layer_cut_inside_a_file_is_refused() {
    if !require_tool("umoci") {
        return;
    }
    let sb = Sandbox::new();
    let base = sb.join("umoci-layout");
    let layers = umoci_base(&sb, &base);
    // Cut `/usr/share/motd` after 7 of its 14 bytes; the digests still match
    // the cut bytes, so only reading the tar can tell.
    let cut = &layers[1][..layers[1].len() - 7];
    let cut_layer = write_blob(&base, OCI_LAYER_GZIP, &gzip(cut));
    let descriptor = only_manifest(&base);
    let mut manifest = read_json(&blob_path(&base, &descriptor["digest"]));
    let mut config = read_json(&blob_path(&base, &manifest["config"]["digest"]));
    config["rootfs"]["diff_ids"][1] = json!(sha256_digest(cut));
    manifest["layers"][1] = cut_layer;
    manifest["config"] = write_blob(&base, OCI_CONFIG, &serde_json::to_vec(&config).unwrap());
    let mut desc = write_blob(&base, OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": "cut"});
    write_oci_index(&base, &[desc]);

    let spec = app_over(&sb, &format!("oci:{}:cut", base.display()), "cut:1");
    let output = sb
        .stowage()
        .args(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:app", sb.join("out").display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains("cannot read the base image's layer")
            && stderr.contains("ends inside an entry's data"),
        "the error says which layer and why:\n{stderr}"
    );
    assert!(
        !sb.join("out/index.json").exists(),
        "nothing is written for a damaged base"
    );
}
