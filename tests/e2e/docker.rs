//! docker-archive sinks against the real dockerd: `docker load` and
//! `docker run --network host` of what stowage writes, and skopeo's reading
//! of the image config.

use serde_json::Value;

use crate::rig::*;

/// Builds the sample app into a docker-archive at `file` tagged `image`.
fn build_archive(sb: &Sandbox, file: &str, image: &str) -> (std::path::PathBuf, Printed) {
    let spec = write_app(&sb.join("app"), image);
    label_uniquely(&spec, image);
    let out = sb.mkdir("out").join(file);
    let stdout = run_ok(
        sb.stowage()
            .args(["build", "--library-layers", "1", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("docker-archive:{}:{image}", out.display())),
    );
    (out, parse_printed(&stdout))
}

fn assert_app_output(stdout: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, APP_OUTPUT, "the app's output");
}

fn load_and_run_with_docker(archive: &std::path::Path, image: &str) {
    let _cleanup = DockerImage(image.to_owned());
    let loaded = run_ok(docker().args(["load", "-i"]).arg(archive));
    assert!(
        loaded.contains(&format!("Loaded image: {image}")),
        "docker load should name {image}, said: {loaded}"
    );
    let stdout = run_ok(docker().args(["run", "--rm", "--network", "host", image]));
    assert_app_output(&stdout);

    let config: Value = serde_json::from_str(&run_ok(docker().args([
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        image,
    ])))
    .unwrap();
    assert_eq!(config["User"], "1000:100");
    assert_eq!(config["WorkingDir"], "/home/user/work");
}

#[test]
fn docker_archive_tar_loads_and_runs_in_docker() {
    if !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    let image = unique_ref("docker-tar");
    let (out, printed) = build_archive(&sb, "app.tar", &image);
    assert_eq!(
        printed.name,
        Some(format!("docker-archive:{}:{image}", out.display())),
        "stdout names the archive it wrote, with its reference"
    );
    assert!(
        !fs_starts_with(&out, &[0x1f, 0x8b]),
        "a .tar is not gzip-wrapped"
    );
    load_and_run_with_docker(&out, &image);
}

#[test]
fn docker_archive_tar_gz_loads_and_runs_in_docker() {
    if !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    let image = unique_ref("docker-targz");
    let (out, _) = build_archive(&sb, "app.tar.gz", &image);
    assert!(
        fs_starts_with(&out, &[0x1f, 0x8b]),
        "a .tar.gz is gzip-wrapped"
    );
    load_and_run_with_docker(&out, &image);
}

#[test]
fn docker_archive_has_tags_and_an_oci_layout_inside() {
    let sb = Sandbox::new();
    let image = unique_ref("archive-shape");
    let (out, printed) = build_archive(&sb, "app.tar", &image);
    let archive = DockerArchive::open(&out);
    assert_eq!(archive.repo_tags(), vec![image.clone()], "RepoTags");
    let index: Value = serde_json::from_slice(archive.member("index.json")).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "one descriptor in index.json: {index}");
    let desc = &manifests[0];
    assert_eq!(
        desc["digest"].as_str(),
        Some(printed.digest.as_str()),
        "index.json names the printed digest"
    );
    assert_eq!(
        desc["annotations"]["io.containerd.image.name"],
        image.as_str()
    );
    let tag = image.rsplit_once(':').unwrap().1;
    assert_eq!(
        desc["annotations"]["org.opencontainers.image.ref.name"],
        tag
    );
    assert!(archive.members.contains_key("oci-layout"));
    let hex = printed.digest.strip_prefix("sha256:").unwrap();
    let manifest = archive.member(&format!("blobs/sha256/{hex}"));
    assert_eq!(
        sha256_digest(manifest),
        printed.digest,
        "the manifest blob is the printed digest"
    );
    for (name, bytes) in &archive.members {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            assert_eq!(sha256_hex(bytes), hex, "blob {name} matches its name");
        }
    }
    // Every member: a regular file, root-owned, 0644, fixed mtime.
    let raw = std::fs::read(&out).unwrap();
    for e in tar_entries(&raw) {
        if e.kind.is_dir() {
            continue;
        }
        assert!(e.kind.is_file(), "{} is a regular file", show(&e.path));
        assert_eq!(
            (e.uid, e.gid, e.mode & 0o7777),
            (0, 0, 0o644),
            "{}",
            show(&e.path)
        );
    }
    let mtimes: std::collections::BTreeSet<u64> =
        tar_entries(&raw).iter().map(|e| e.mtime).collect();
    assert_eq!(
        mtimes.len(),
        1,
        "one fixed mtime for all members, got {mtimes:?}"
    );
}

#[test]
fn skopeo_reads_the_spec_config_from_the_archive() {
    if !require_tool("skopeo") {
        return;
    }
    let sb = Sandbox::new();
    let image = unique_ref("skopeo-config");
    let (out, _) = build_archive(&sb, "app.tar.gz", &image);
    // skopeo 1.9 cannot read a gzip-wrapped docker-archive; see gunzip_to_tar.
    let plain = gunzip_to_tar(&out);
    let src = format!("docker-archive:{}", plain.display());
    let config: Value =
        serde_json::from_str(&run_ok(skopeo().args(["inspect", "--config", &src]))).unwrap();
    let c = &config["config"];
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"GREETING=hello-from-env"), "Env: {env:?}");
    assert!(env.contains(&"PATH=/opt/app/bin:/bin"), "Env: {env:?}");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/opt/app/start.sh"]));
    assert_eq!(c["Cmd"], serde_json::json!(["greet"]));
    assert!(
        c["ExposedPorts"].get("8888/tcp").is_some(),
        "ExposedPorts: {}",
        c["ExposedPorts"]
    );
    assert_eq!(c["WorkingDir"], "/home/user/work");
    assert_eq!(c["User"], "1000:100");
    assert_eq!(
        c["Labels"]["org.opencontainers.image.source"],
        "https://example.org/stowage-e2e"
    );
    assert_eq!(config["os"], "linux");

    // The plain summary reads too, and agrees.
    let summary: Value = serde_json::from_str(&run_ok(skopeo().args(["inspect", &src]))).unwrap();
    assert_eq!(
        summary["Layers"].as_array().map(Vec::len),
        Some(3),
        "library, files, workspace: {summary}"
    );
    assert!(
        summary["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "GREETING=hello-from-env"),
        "{summary}"
    );
}

fn fs_starts_with(path: &std::path::Path, magic: &[u8]) -> bool {
    std::fs::read(path).unwrap().starts_with(magic)
}
