//! Output that tells the truth: usage and spec errors leave no export
//! record; the exports table shows what a failed scan found; a build to
//! local outputs prints the local reference it wrote, which stowage reads
//! back; the record's line comes after the error; hints answer the input.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

use crate::rig::registry::TestRegistry;
use crate::rig::*;

const IMAGE: &str = "localhost/stowage-e2e/output:1";

/// What a failed command said: its exit code and stderr.
fn fails(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("run stowage");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "it should fail:\n{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout:\n{stderr}");
    (out.status.code().expect("an exit code"), stderr)
}

/// Runs `stowage ARGS -f SPEC -o LAYOUT` (ARGS ending in `build` and its flags), expecting a failure.
fn build_fails(sb: &Sandbox, args: &[&str], spec: &Path, layout: &str) -> (i32, String) {
    fails(
        sb.stowage()
            .args(args)
            .arg("-f")
            .arg(spec)
            .args(["-o", layout]),
    )
}

fn exports(sb: &Sandbox) -> Vec<Value> {
    let text = run_ok(sb.stowage().args(["exports", "list", "--json"]));
    let listed: Value = serde_json::from_str(&text).expect("exports list --json is JSON");
    listed.as_array().cloned().expect("a list of records")
}

#[test]
fn usage_and_spec_errors_leave_no_export_record() {
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), IMAGE);
    let typo = sb.join("app/typo.toml");
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(&typo, text.replace("entrypoint =", "entrypont =")).unwrap();
    let layout = format!("oci:{}:t", sb.join("out/layout").display());
    let other = format!("oci:{}:t", sb.join("out/other").display());
    let (spec, typo) = (spec.display().to_string(), typo.display().to_string());
    let usage_errors: [&[&str]; 8] = [
        &["build", "-f", &spec, "--plaform", "linux/amd64"],
        &["build", "-f", &spec, "--platform", "amd64", "-o", &layout],
        &["build", "-f", &spec, "-o", "docker:example.org/a/b:1"],
        // Refused only once the base is read.
        &[
            "build",
            "-f",
            &spec,
            "--compression",
            "zstd",
            "--format",
            "docker",
            "-o",
            &layout,
        ],
        &["build", "-f", &typo, "-o", &layout],
        &["push", &layout, &layout],
        &["copy", &layout, &other, "--platform", "amd64"],
        &["push", &layout, "127.0.0.1:9/a/b:1", "--tag", "no spaces"],
    ];
    for args in usage_errors {
        let (code, stderr) = fails(sb.stowage().args(args));
        assert_eq!(code, 2, "{args:?}:\n{stderr}");
    }
    assert_eq!(exports(&sb), Vec::<Value>::new(), "no record of a typo");

    // A failure of the export itself (exit 1) is still recorded.
    let missing_base = sb.join("app/missing-base.toml");
    fs::write(
        &missing_base,
        text.replace("base = \"scratch\"", "base = \"oci:no-such-layout\""),
    )
    .unwrap();
    let (code, stderr) = build_fails(&sb, &["build"], &missing_base, &layout);
    assert_eq!(code, 1, "{stderr}");
    let records = exports(&sb);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["status"], "failed");
}

#[test]
fn the_exports_table_shows_what_a_failed_scan_found() {
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), IMAGE);
    // Refused by its name alone: no key material needed.
    write_file(
        &sb.join("app/workspace/.ssh/id_ed25519"),
        "not a key\n",
        0o600,
    );
    let layout = format!("oci:{}:t", sb.join("out/layout").display());
    let (code, _) = build_fails(&sb, &["build"], &spec, &layout);
    assert_eq!(code, 1);
    let table = run_ok(sb.stowage().arg("exports"));
    assert!(
        table.contains(
            "nothing was pushed or written: /home/user/work/.ssh/id_ed25519: ssh-key-file"
        ),
        "the table names the finding:\n{table}"
    );
}

/// Builds the sample app to `outputs`; what it printed.
fn build_to(sb: &Sandbox, spec: &Path, outputs: &[&str]) -> Printed {
    let mut cmd = sb.stowage();
    cmd.args(["build", "-f"]).arg(spec);
    for output in outputs {
        cmd.args(["-o", output]);
    }
    parse_printed(&run_ok(&mut cmd))
}

#[test]
fn a_build_to_local_outputs_prints_the_local_reference_it_wrote() {
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), IMAGE);
    let layout = format!("oci:{}", sb.join("out/layout").display());
    let archive = format!("docker-archive:{}", sb.join("out/app.tar").display());

    let printed = build_to(&sb, &spec, &[&format!("{layout}:v1"), &archive]);
    assert_eq!(
        printed.name.as_deref(),
        Some(format!("{layout}:v1").as_str()),
        "the first output, not the spec's registry name"
    );
    let copied = parse_printed(&run_ok(sb.stowage().args([
        "copy",
        printed.name.as_deref().unwrap(),
        &format!("{layout}:copy"),
    ])));
    assert_eq!(copied.name, Some(format!("{layout}:copy")));
    assert_eq!(copied.digest, printed.digest, "stowage reads it back");

    // Without a tag: the one the layout got (the spec's), and the archive's name.
    let printed = build_to(&sb, &spec, &[&layout]);
    assert_eq!(printed.name, Some(format!("{layout}:1")));
    let printed = build_to(&sb, &spec, &[&archive]);
    let name = format!("{archive}:{IMAGE}");
    assert_eq!(printed.name.as_deref(), Some(name.as_str()));
    let inspected: Value =
        serde_json::from_str(&run_ok(sb.stowage().args(["--json", "inspect", &name])))
            .expect("inspect --json is JSON");
    assert_eq!(inspected["digest"].as_str(), Some(printed.digest.as_str()));
}

#[test]
fn a_build_with_a_registry_output_prints_the_registry_reference() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), IMAGE);
    let layout = format!("oci:{}:t", sb.join("out/layout").display());
    let pushed = registry.reference("output/app:1");
    let printed = build_to(&sb, &spec, &[&layout, &pushed]);
    assert_eq!(
        printed.name,
        Some(registry.reference("output/app")),
        "a registry destination is named even when a local one comes first"
    );
}

#[test]
fn with_v_the_record_line_comes_after_the_error() {
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), IMAGE);
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(
        &spec,
        text.replace("base = \"scratch\"", "base = \"oci:no-such-layout\""),
    )
    .unwrap();
    let layout = format!("oci:{}:t", sb.join("out/layout").display());
    let (code, stderr) = build_fails(&sb, &["-v", "build"], &spec, &layout);
    assert_eq!(code, 1);
    let error = stderr.find("error:").expect("an error line");
    let hint = stderr.find("hint:").expect("a hint line");
    let recorded = stderr
        .find("recorded as export 1")
        .unwrap_or_else(|| panic!("-v tells the record:\n{stderr}"));
    assert!(error < hint && hint < recorded, "outcome first:\n{stderr}");
}

#[test]
fn a_missing_oci_base_says_what_is_missing_and_what_to_do() {
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), IMAGE);
    let text = fs::read_to_string(&spec).unwrap();
    let layout = format!("oci:{}:t", sb.join("out/layout").display());
    // A base's path is taken from the spec's folder.
    fs::create_dir_all(sb.join("app/empty")).unwrap();
    let tar = sb.join("app/image.tar");
    fs::write(&tar, "a tar, say").unwrap();
    let tar_hint = format!(
        "hint: a tar file is read as oci-archive:{0} or docker-archive:{0}",
        tar.display()
    );
    for (base, says, hint) in [
        (
            "oci:no-such-layout",
            "no-such-layout is not an OCI image layout: there is no such folder",
            "hint: check the path: `oci:DIR[:TAG]` names a folder holding index.json",
        ),
        (
            "oci:empty",
            "empty is not an OCI image layout: the folder has no index.json",
            "hint: check the path: `oci:DIR[:TAG]` names a folder holding index.json",
        ),
        (
            "oci:image.tar",
            "image.tar is not an OCI image layout: it is a file, not a folder",
            tar_hint.as_str(),
        ),
    ] {
        fs::write(
            &spec,
            text.replace("base = \"scratch\"", &format!("base = \"{base}\"")),
        )
        .unwrap();
        let (code, stderr) = build_fails(&sb, &["build"], &spec, &layout);
        assert_eq!(code, 1, "{base}");
        assert!(stderr.contains(says), "{base}: {says:?} in:\n{stderr}");
        assert!(stderr.contains(hint), "{base}: {hint:?} in:\n{stderr}");
    }
}

#[test]
fn a_platform_without_its_os_gets_the_hint_to_write_it() {
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), IMAGE);
    let layout = format!("oci:{}:t", sb.join("out/layout").display());
    for (platform, hint) in [
        ("amd64", "hint: give the OS too: write linux/amd64"),
        ("aarch64", "hint: give the OS too: write linux/arm64"),
        ("Linux/AMD64", "hint: write it as linux/amd64"),
    ] {
        let (code, stderr) = build_fails(&sb, &["build", "--platform", platform], &spec, &layout);
        assert_eq!(code, 2, "{platform}");
        assert!(stderr.contains(hint), "{platform}: {hint:?} in:\n{stderr}");
    }
    // The spec's `platform` gets the same answer.
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(
        &spec,
        text.replace(
            "base = \"scratch\"",
            "base = \"scratch\"\nplatform = \"amd64\"",
        ),
    )
    .unwrap();
    let (code, stderr) = build_fails(&sb, &["build"], &spec, &layout);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("hint: give the OS too: write linux/amd64"),
        "{stderr}"
    );
    assert!(!stderr.contains("lowercase"), "{stderr}");
}
