//! What stowage writes, loaded and run by podman (rootful, vfs storage,
//! runc, the rig's containers.conf).

use std::path::Path;

use crate::rig::*;

fn build(sb: &Sandbox, dest: &str, image: &str) -> String {
    let spec = write_app(&sb.join("app"), image);
    label_uniquely(&spec, image);
    run_ok(
        sb.stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .args(["-o", dest]),
    )
}

fn load_and_run_with_podman(archive: &Path, image: &str) {
    let _cleanup = PodmanImage(image.to_owned());
    let loaded = run_ok(podman().args(["load", "-i"]).arg(archive));
    assert!(
        loaded.contains(image),
        "podman load should name {image}, said: {loaded}"
    );
    let stdout = run_ok(podman().args(["run", "--rm", "--network", "host", image]));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, APP_OUTPUT, "the app's output under podman");
}

#[test]
fn docker_archive_tar_loads_and_runs_in_podman() {
    if !podman_ready() {
        return;
    }
    let sb = Sandbox::new();
    let image = unique_ref("podman-tar");
    let out = sb.mkdir("out").join("app.tar");
    build(
        &sb,
        &format!("docker-archive:{}:{image}", out.display()),
        &image,
    );
    load_and_run_with_podman(&out, &image);
}

#[test]
fn docker_archive_tar_gz_loads_and_runs_in_podman() {
    if !podman_ready() {
        return;
    }
    let sb = Sandbox::new();
    let image = unique_ref("podman-targz");
    let out = sb.mkdir("out").join("app.tar.gz");
    build(
        &sb,
        &format!("docker-archive:{}:{image}", out.display()),
        &image,
    );
    // podman 4.3 cannot read any gzip-wrapped docker-archive (not even
    // `docker save | gzip`), so it gets the same bytes unwrapped.
    load_and_run_with_podman(&gunzip_to_tar(&out), &image);
}

#[test]
fn oci_archive_loads_and_runs_in_podman() {
    if !podman_ready() {
        return;
    }
    let sb = Sandbox::new();
    let image = unique_ref("podman-ociarchive");
    let out = sb.mkdir("out").join("app-oci.tar");
    let tag = image.rsplit_once(':').unwrap().1.to_owned();
    build(&sb, &format!("oci-archive:{}:{tag}", out.display()), &image);
    let _cleanup = PodmanImage(image.clone());
    // An oci-archive carries a tag, not a repository: name it on load.
    let loaded = run_ok(podman().args(["load", "-i"]).arg(&out));
    let id = loaded
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("podman load printed no image: {loaded}"))
        .trim()
        .to_owned();
    run_ok(podman().args(["tag", &id, &image]));
    let _loaded = PodmanImage(id);
    let stdout = run_ok(podman().args(["run", "--rm", "--network", "host", &image]));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), APP_OUTPUT);
}
