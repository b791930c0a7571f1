//! `build --dry-run` runs the build's checks that read no file contents —
//! the start check and the secret scan's by-name rules — and fails as the
//! build fails, with the same error; it says what it did not check, and
//! writes and records nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::rig::registry::host_arch;
use crate::rig::*;

const NOT_CHECKED: &str = "not checked in a dry run: secret scan of file contents";

/// A venv made by Debian's `/usr/bin/python3 -m venv` (its `bin/python3`
/// links to `/usr/bin/python3`), with no pip: nothing else is needed.
fn debian_venv(dir: &Path) -> Option<PathBuf> {
    if !Path::new("/usr/bin/python3").exists() {
        skip_or_fail("/usr/bin/python3 missing (Debian's python3, with venv)");
        return None;
    }
    let made = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "venv: {}", show(&made.stderr));
    let python3 = fs::read_link(dir.join("bin/python3")).unwrap();
    assert_eq!(
        python3,
        Path::new("/usr/bin/python3"),
        "Debian's venv layout"
    );
    Some(dir.to_path_buf())
}

/// A base (an OCI layout) with busybox as /bin/sh and an executable at
/// /usr/local/bin/python3, as python:3.x images have it, but no /usr/bin/python3.
fn base_with_local_python(dir: &Path) -> String {
    let busybox = fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let layer = make_layer(
        &["bin", "usr", "usr/local", "usr/local/bin"],
        &[
            ("bin/sh", &busybox, 0o755),
            ("usr/local/bin/python3", &busybox, 0o755),
        ],
    );
    let mut desc = write_oci_image(dir, host_arch(), &layer);
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": "py"});
    write_oci_index(dir, &[desc]);
    format!("oci:{}:py", dir.display())
}

/// A spec that puts the venv at /opt/venv over `base` and runs its python3.
fn venv_spec(sb: &Sandbox, venv: &Path, base: &str) -> PathBuf {
    let spec = sb.join("stowage.toml");
    fs::write(
        &spec,
        format!(
            "base = \"{base}\"\n[app]\nlibrary = {{ source = \"{}\", target = \"/opt/venv\" }}\n\
             command = [\"/opt/venv/bin/python3\", \"-c\", \"print('hi')\"]\n\
             [env]\nPATH = \"/usr/local/bin:/usr/bin:/bin\"\n",
            venv.display()
        ),
    )
    .unwrap();
    spec
}

fn build(sb: &Sandbox, spec: &Path, flags: &[&str]) -> Output {
    let before = export_records(sb).len();
    let out = run_build(sb, spec, flags);
    if flags.contains(&"--dry-run") {
        assert_eq!(
            export_records(sb).len(),
            before,
            "a dry run records nothing"
        );
    }
    out
}

fn run_build(sb: &Sandbox, spec: &Path, flags: &[&str]) -> Output {
    sb.stowage()
        .args(["build", "-f"])
        .arg(spec)
        .args(flags)
        .output()
        .unwrap()
}

/// The error report of a run: its `error:`, `Caused by:` and `hint:` lines.
fn error_report(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("error:") || l.starts_with("  ") || l.starts_with("hint:"))
        .collect()
}

/// Asserts a dry run failed with `code`, said what it did not check, and wrote nothing.
fn assert_dry_refused(sb: &Sandbox, out: &Output, code: i32) -> String {
    let stderr = show(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(NOT_CHECKED), "{stderr}");
    assert!(out.stdout.is_empty(), "no plan on stdout after a refusal");
    assert!(!sb.join("out").exists(), "a dry run writes nothing");
    stderr
}

#[test]
fn a_dry_run_refuses_a_venv_whose_python_the_base_lacks_naming_the_chain() {
    let sb = Sandbox::new();
    let Some(venv) = debian_venv(&sb.join("build/venv")) else {
        return;
    };
    let out_flag = format!("oci:{}", sb.join("out").display());

    // Scratch has no /usr/bin/python3: the chain from the venv's python3 ends nowhere.
    let spec = venv_spec(&sb, &venv, "scratch");
    let dry = build(&sb, &spec, &["--dry-run", "-o", &out_flag]);
    let stderr = assert_dry_refused(&sb, &dry, 1);
    for needle in [
        "exec: \"/opt/venv/bin/python3\": stat /opt/venv/bin/python3: no such file or directory",
        "/opt/venv/bin/python3 -> /usr/bin/python3: /usr/bin/python3 is not in the image",
        "hint: the venv /opt/venv was made with a Python that is on the build machine but not in the image",
        "the image has no python3 on its PATH",
        "python:3.11-slim python3 -m venv venv",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in:\n{stderr}");
    }
    // The build itself refuses with the same report.
    let real = build(&sb, &spec, &["-o", &out_flag]);
    let real_stderr = show(&real.stderr);
    assert_eq!(real.status.code(), Some(1), "{real_stderr}");
    assert_eq!(error_report(&real_stderr), error_report(&stderr));
    assert!(!sb.join("out").exists());

    // A base with its own python3 elsewhere on PATH: the hint names that one.
    let base = base_with_local_python(&sb.join("base"));
    let spec = venv_spec(&sb, &venv, &base);
    let dry = build(&sb, &spec, &["--dry-run"]);
    let stderr = assert_dry_refused(&sb, &dry, 1);
    assert!(
        stderr.contains("recreate the venv with the image's own Python, /usr/local/bin/python3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/usr/local/bin/python3 -m venv venv"),
        "{stderr}"
    );

    // --no-start-check is honoured: the dry run passes, and says the check is off.
    let off = build(&sb, &spec, &["--dry-run", "--no-start-check"]);
    let stderr = show(&off.stderr);
    assert!(off.status.success(), "{stderr}");
    assert!(stderr.contains("the start check is off"), "{stderr}");
    assert!(stderr.contains(NOT_CHECKED), "{stderr}");
}

#[test]
fn a_dry_run_refuses_a_credential_file_by_its_name_and_says_contents_were_not_scanned() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost/stowage-e2e/dry:1");
    write_file(
        &sb.join("workspace/.ssh/id_rsa"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        0o600,
    );
    let out_flag = format!("oci:{}", sb.join("out").display());
    let dry = build(&sb, &spec, &["--dry-run", "-o", &out_flag]);
    let stderr = assert_dry_refused(&sb, &dry, 1);
    assert!(
        stderr.contains("/home/user/work/.ssh/id_rsa: ssh-key-file"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("BEGIN OPENSSH"),
        "never the value: {stderr}"
    );
    // The build refuses with the same report (its content scan finds nothing more here).
    let real = build(&sb, &spec, &["-o", &out_flag]);
    let real_stderr = show(&real.stderr);
    assert_eq!(real.status.code(), Some(1), "{real_stderr}");
    assert_eq!(error_report(&real_stderr), error_report(&stderr));
    assert!(!sb.join("out").exists());

    // Allowed by its path, the finding is shown as allowed and the dry run passes.
    let allowed = build(
        &sb,
        &spec,
        &["--dry-run", "--allow-secret", "/home/user/work/.ssh/id_rsa"],
    );
    let stderr = show(&allowed.stderr);
    assert!(allowed.status.success(), "{stderr}");
    assert!(
        stderr.contains("secret scan: /home/user/work/.ssh/id_rsa: ssh-key-file (allowed)"),
        "{stderr}"
    );
    // --no-secret-scan is honoured: nothing of the scan runs, so nothing is said to be unscanned.
    let off = build(&sb, &spec, &["--dry-run", "--no-secret-scan"]);
    let stderr = show(&off.stderr);
    assert!(off.status.success(), "{stderr}");
    assert!(stderr.contains("the secret scan is off"), "{stderr}");
    assert!(!stderr.contains(NOT_CHECKED), "{stderr}");
}

#[test]
fn a_clean_dry_run_exits_0_and_says_what_it_did_not_check() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost/stowage-e2e/dry:1");
    let out = build(&sb, &spec, &["--dry-run"]);
    let stderr = show(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(NOT_CHECKED), "{stderr}");
    assert!(
        stderr.contains(
            "checked in a dry run: secret scan of spec values, secret scan of file names, start check"
        ),
        "{stderr}"
    );
    assert!(show(&out.stdout).contains("layer"), "the plan on stdout");

    let json = run_ok(
        sb.stowage()
            .args(["--json", "build", "--dry-run", "-f"])
            .arg(&spec),
    );
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["not_checked"], json!(["secret scan of file contents"]));
    assert_eq!(
        json["start_check"],
        json!({"result": "starts", "program": "/opt/app/start.sh", "unchecked": []})
    );
    assert!(
        json["layers"].as_array().is_some_and(|l| !l.is_empty()),
        "the plan's layers: {json}"
    );
    assert!(export_records(&sb).is_empty(), "a dry run records nothing");
}
