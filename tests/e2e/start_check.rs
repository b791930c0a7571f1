//! The start check: an image whose entrypoint and command would not start
//! under `docker run` is refused before anything is written, with what
//! docker would have said and why; one that passes does start.

use std::fs;
use std::path::{Path, PathBuf};

use crate::rig::*;

/// A scratch app: `lib/` (filled by the caller) at /opt/app, and `extra` spec lines.
fn write_spec(root: &Path, extra: &str) -> PathBuf {
    fs::create_dir_all(root.join("lib")).unwrap();
    let spec = root.join("stowage.toml");
    let text = format!(
        "base = \"scratch\"\n\n[app]\nlibrary = {{ source = \"lib\", target = \"/opt/app\", owner = \"0:0\" }}\n{extra}\n"
    );
    fs::write(&spec, text).unwrap();
    spec
}

/// Builds `spec` to an OCI layout and a docker-archive; both must be absent after a refused build.
fn build(sb: &Sandbox, spec: &Path, flags: &[&str]) -> (std::process::Output, PathBuf, PathBuf) {
    let layout = sb.join("out/layout");
    let archive = sb.join("out/image.tar");
    fs::create_dir_all(sb.join("out")).unwrap();
    let output = sb
        .stowage()
        .args(["build", "-f"])
        .arg(spec)
        .args(flags)
        .arg("-o")
        .arg(format!("oci:{}", layout.display()))
        .arg("-o")
        .arg(format!(
            "docker-archive:{}:localhost/start-check:1",
            archive.display()
        ))
        .output()
        .unwrap();
    (output, layout, archive)
}

/// Asserts the build was refused (exit 1), named every one of `needles`, and wrote nothing.
fn assert_refused(sb: &Sandbox, spec: &Path, needles: &[&str]) -> String {
    let (output, layout, archive) = build(sb, spec, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr should say {needle:?}:\n{stderr}"
        );
    }
    assert!(stderr.contains("hint:"), "a hint:\n{stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout");
    assert!(!layout.exists(), "no OCI layout written");
    assert!(!archive.exists(), "no docker-archive written");
    stderr
}

#[test]
fn a_command_that_does_not_exist_is_refused() {
    let sb = Sandbox::new();
    let spec = write_spec(
        sb.path(),
        "command = [\"jupyter-lab\", \"--port\", \"8888\"]",
    );
    write_file(&sb.join("lib/readme.txt"), "hi\n", 0o644);
    assert_refused(
        &sb,
        &spec,
        &[
            "exec: \"jupyter-lab\": executable file not found in $PATH",
            "no executable file named jupyter-lab",
        ],
    );
}

#[test]
fn a_script_on_scratch_has_no_shell() {
    let sb = Sandbox::new();
    let spec = write_spec(sb.path(), "entrypoint = [\"/opt/app/start.sh\"]");
    write_file(&sb.join("lib/start.sh"), "#!/bin/sh\necho hi\n", 0o755);
    assert_refused(
        &sb,
        &spec,
        &[
            "exec /opt/app/start.sh: no such file or directory",
            "/opt/app/start.sh: its interpreter /bin/sh is not in the image",
        ],
    );
}

#[test]
fn a_dynamic_binary_without_its_loader_is_refused() {
    let sb = Sandbox::new();
    let spec = write_spec(sb.path(), "entrypoint = [\"/opt/app/ls\"]");
    fs::copy("/bin/ls", sb.join("lib/ls")).unwrap();
    set_mode(&sb.join("lib/ls"), 0o755);
    assert_refused(
        &sb,
        &spec,
        &[
            "exec /opt/app/ls: no such file or directory",
            "/opt/app/ls: its program interpreter /lib",
        ],
    );
}

#[test]
fn a_user_missing_from_passwd_is_refused() {
    let sb = Sandbox::new();
    let spec = write_spec(
        sb.path(),
        "entrypoint = [\"/opt/app/busybox\", \"true\"]\nuser = \"app\"\n\n\
         [[files]]\nsource = \"passwd\"\ntarget = \"/etc/passwd\"\nmode = \"0644\"\nowner = \"0:0\"\n",
    );
    fs::copy("/bin/busybox", sb.join("lib/busybox")).unwrap();
    set_mode(&sb.join("lib/busybox"), 0o755);
    write_file(&sb.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n", 0o644);
    assert_refused(
        &sb,
        &spec,
        &[
            "unable to find user app: no matching entries in passwd file",
            "the user app is not in the image's /etc/passwd",
        ],
    );
}

#[test]
fn no_start_check_writes_the_image_with_a_warning() {
    let sb = Sandbox::new();
    let spec = write_spec(sb.path(), "entrypoint = [\"/opt/app/start.sh\"]");
    write_file(&sb.join("lib/start.sh"), "#!/bin/sh\necho hi\n", 0o755);
    let (output, layout, _) = build(&sb, &spec, &["--no-start-check"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(
        stderr.contains("warning: the start check is off (--no-start-check)"),
        "{stderr}"
    );
    assert!(layout.join("index.json").exists());
}

#[test]
fn an_image_that_passes_the_check_runs_in_docker() {
    let sb = Sandbox::new();
    let spec = write_spec(
        sb.path(),
        "entrypoint = [\"busybox\", \"echo\"]\ncommand = [\"started\"]\n\n\
         [env]\nPATH = \"/opt/app/bin\"\n",
    );
    fs::create_dir_all(sb.join("lib/bin")).unwrap();
    fs::copy("/bin/busybox", sb.join("lib/bin/busybox")).unwrap();
    set_mode(&sb.join("lib/bin/busybox"), 0o755);
    let image = unique_ref("start-check");
    build_and_run(&sb, &spec, &image);
}

/// Builds `spec` into a docker-archive tagged `image`, loads it and runs it (when dockerd is up).
fn build_and_run(sb: &Sandbox, spec: &Path, image: &str) {
    let archive = sb.join("image.tar");
    run_ok(
        sb.stowage()
            .args(["build", "-f"])
            .arg(spec)
            .arg("-o")
            .arg(format!("docker-archive:{}:{image}", archive.display())),
    );
    if !docker_ready() {
        return;
    }
    let _cleanup = DockerImage(image.to_owned());
    run_ok(docker().args(["load", "-i"]).arg(&archive));
    let stdout = run_ok(docker().args(["run", "--rm", "--network", "host", image]));
    assert_eq!(stdout.trim(), "started");
}

/// A passed check is remembered by the image's config digest, which names
/// every layer's content: the same spec over changed files is checked again.
#[test]
fn a_remembered_pass_is_not_reused_for_other_files() {
    let sb = Sandbox::new();
    let spec = write_spec(sb.path(), "command = [\"/opt/app/tool\"]");
    fs::copy("/bin/busybox", sb.join("lib/tool")).unwrap();
    set_mode(&sb.join("lib/tool"), 0o755);
    let (output, layout, _) = build(&sb, &spec, &[]);
    assert!(output.status.success(), "{}", show(&output.stderr));
    fs::remove_dir_all(&layout).unwrap();
    fs::remove_dir_all(sb.join("out")).unwrap();
    // The same spec; the program is now a script whose interpreter the image lacks.
    write_file(&sb.join("lib/tool"), "#!/bin/sh\necho hi\n", 0o755);
    assert_refused(
        &sb,
        &spec,
        &["/opt/app/tool: its interpreter /bin/sh is not in the image"],
    );
}

/// The mistakes of a script written on Windows or relocated too deep: each
/// refused with the fix in its hint; the same script written right builds.
#[test]
fn shebang_faults_are_refused_with_their_fix() {
    let faults: [(&[u8], &[&str]); 3] = [
        (
            b"#!/opt/app/sh\r\necho hi\r\n",
            &["carriage return", "dos2unix", "sed -i 's/\\r$//'"],
        ),
        (
            b"\xef\xbb\xbf#!/opt/app/sh\necho hi\n",
            &[
                "exec format error",
                "byte order mark",
                "remove the byte order mark",
            ],
        ),
        (
            format!("#!/opt/{}/sh\necho hi\n", "deep/".repeat(60))
                .leak()
                .as_bytes(),
            &["longer than the 256 bytes", "/usr/bin/env"],
        ),
    ];
    for (script, needles) in faults {
        let sb = Sandbox::new();
        let spec = write_spec(sb.path(), "entrypoint = [\"/opt/app/start.sh\"]");
        fs::copy("/bin/busybox", sb.join("lib/sh")).unwrap();
        set_mode(&sb.join("lib/sh"), 0o755);
        fs::write(sb.join("lib/start.sh"), script).unwrap();
        set_mode(&sb.join("lib/start.sh"), 0o755);
        assert_refused(&sb, &spec, needles);
        fs::write(sb.join("lib/start.sh"), b"#!/opt/app/sh\necho hi\n").unwrap();
        let (output, _, _) = build(&sb, &spec, &[]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
