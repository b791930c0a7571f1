//! examples/stowage-image: stowage builds its own image (scan on), and that
//! image, run locked down — an arbitrary uid with no home, no capabilities,
//! no-new-privileges, a read-only root with only /tmp writable — builds an
//! app and pushes it to a registry, and the pushed image runs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::rig::registry::TestRegistry;
use crate::rig::*;

/// The shared libraries the stowage binary loads (as `ldd` names them), each
/// with the host file that holds it.
fn loaded_libraries(binary: &Path) -> Vec<(String, PathBuf)> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .unwrap();
    assert!(out.status.success(), "ldd {}", binary.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`
            let path = line.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/')
                .then(|| (path.to_string(), fs::canonicalize(path).unwrap()))
        })
        .collect()
}

/// A glibc base made offline from the host's own libraries (what the
/// example's Debian base provides): an OCI layout at `dir`, tag `glibc`.
fn write_glibc_base(sb: &Sandbox, dir: &Path) {
    let root = sb.mkdir("glibc-base");
    write_file(
        &root.join("library/README"),
        "glibc of the test host\n",
        0o644,
    );
    let mut spec = String::from(
        "base = \"scratch\"\n[app]\nlibrary = { source = \"library\", target = \"/usr/share/glibc-base\" }\n",
    );
    for (target, source) in loaded_libraries(&stowage_bin()) {
        spec.push_str(&format!(
            "[[files]]\nsource = \"{}\"\ntarget = \"{target}\"\nmode = \"0755\"\n",
            source.display()
        ));
    }
    write_file(&root.join("stowage.toml"), spec, 0o644);
    run_ok(
        sb.stowage()
            .args(["build", "--no-start-check", "-f"])
            .arg(root.join("stowage.toml"))
            .arg("-o")
            .arg(format!("oci:{}:glibc", dir.display())),
    );
}

/// examples/stowage-image copied into the sandbox, on the offline base,
/// with this build's binary and the host's CA certificates.
fn write_example(sb: &Sandbox, base: &Path) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/stowage-image");
    let dir = sb.mkdir("stowage-image");
    let text = fs::read_to_string(example.join("stowage.toml")).unwrap();
    let base_line = "base = \"docker.io/library/debian:bookworm-slim\"";
    let binary_line = "source = \"../../target/release/stowage\"";
    assert!(
        text.contains(base_line) && text.contains(binary_line),
        "{text}"
    );
    let text = text
        .replace(
            base_line,
            &format!("base = \"oci:{}:glibc\"", base.display()),
        )
        .replace(
            binary_line,
            &format!("source = \"{}\"", stowage_bin().display()),
        );
    write_file(&dir.join("stowage.toml"), text, 0o644);
    let readme = fs::read(example.join("library/README.md")).unwrap();
    write_file(&dir.join("library/README.md"), readme, 0o644);
    fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        dir.join("ca-certificates.crt"),
    )
    .expect("the host's CA certificates (Debian's ca-certificates)");
    dir.join("stowage.toml")
}

#[test]
fn stowages_own_image_builds_and_pushes_locked_down_and_the_pushed_image_runs() {
    if !docker_ready() {
        return;
    }
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let base = sb.join("base");
    write_glibc_base(&sb, &base);
    let spec = write_example(&sb, &base);
    let image = unique_ref("stowage-image");
    let _cleanup = DockerImage(image.clone());
    let archive = sb.join("stowage-image.tar");
    // The scan stays on: stowage's binary holds no secret.
    run_ok(
        sb.stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("docker-archive:{}:{image}", archive.display())),
    );
    run_ok(docker().args(["load", "-i"]).arg(&archive));

    // The app, readable by any uid: the run has no other rights on the host.
    let app = sb.mkdir("app");
    let pushed = format!("{}/e2e/locked-down:v1", registry.host);
    let app_spec_path = write_app(&app, &pushed);
    label_uniquely(&app_spec_path, &pushed);
    let opened = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(sb.path())
        .status()
        .unwrap();
    assert!(opened.success());
    let mount = format!("{}:/app:ro", app.display());
    let stdout = run_ok(docker().args([
        "run",
        "--rm",
        "--user",
        "12345:12345",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--network",
        "host",
        "-v",
        &mount,
        &image,
        "build",
        "-f",
        "/app/stowage.toml",
        "--insecure-registry",
        &registry.host,
    ]));
    let printed = parse_printed(&stdout);
    assert!(
        printed
            .name
            .as_deref()
            .is_some_and(|name| name.starts_with(&pushed[..pushed.len() - 3])),
        "stdout names the pushed image: {stdout}"
    );

    let _pushed_cleanup = DockerImage(pushed.clone());
    let ran = run_ok(docker().args(["run", "--rm", "--network", "host", &pushed]));
    assert_eq!(
        ran.lines().collect::<Vec<_>>(),
        APP_OUTPUT,
        "the pushed app's output"
    );
}
