//! Secrets stay out of exported images: the scan of the added layers stops a
//! push before the registry sees a byte, allow-lists let named paths
//! through, the user's HOME is never a source, and a base image's ordinary
//! env is never mistaken for a secret.

use std::path::Path;

use serde_json::{Value, json};

use crate::rig::libraries::pytools_python;
use crate::rig::registry::TestRegistry;
use crate::rig::*;

/// An OpenSSH private key as `ssh-keygen -t ed25519` writes it (throwaway
/// bytes); assembled at run time so this file itself holds no key header.
fn openssh_key() -> String {
    let dashes = "-----";
    format!(
        "{dashes}BEGIN OPENSSH PRIVATE KEY{dashes}\n\
         b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n\
         QyNTUxOQAAACBHK9qJzJ2VtZXRocm93YXdheWtleWZvcnRlc3RzAAAAAAAAAAAAAAAAAA\n\
         {dashes}END OPENSSH PRIVATE KEY{dashes}\n"
    )
}

/// An AWS-style access key id that is not AWS's documented example.
fn aws_key_id() -> String {
    format!("AKIA{}", "Q3ZT7WX2Q3ZT7WX2")
}

/// Puts `.ssh/id_ed25519` and a notebook holding an AWS key in the sample
/// app's workspace; returns the notebook line that holds the key.
fn plant_secrets(root: &Path) -> usize {
    write_file(
        &root.join("workspace/.ssh/id_ed25519"),
        openssh_key(),
        0o600,
    );
    let notebook = json!({
        "cells": [{
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "source": [
                "import boto3\n",
                format!("s3 = boto3.client('s3', aws_access_key_id='{}')\n", aws_key_id()),
            ],
        }],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    });
    let text = serde_json::to_string_pretty(&notebook).unwrap();
    write_file(&root.join("workspace/analysis.ipynb"), &text, 0o644);
    text.lines()
        .position(|l| l.contains(&aws_key_id()))
        .expect("the key is in the notebook")
        + 1
}

fn exports_json(sb: &Sandbox, status: &str) -> Vec<Value> {
    let text = run_ok(sb.stowage().args(["--json", "exports", "--status", status]));
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn push_with_a_key_and_a_token_is_refused_until_both_are_allowed() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let image = format!("{}/e2e/secrets:v1", registry.host);
    let spec = write_app(sb.path(), &image);
    let line = plant_secrets(sb.path());
    let insecure = ["--insecure-registry", &registry.host];

    let refused = sb
        .stowage()
        .args(insecure)
        .args(["build", "-f"])
        .arg(&spec)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let key_finding = "/home/user/work/.ssh/id_ed25519: ssh-key-file";
    let token_finding = format!("/home/user/work/analysis.ipynb:{line}: aws-access-key-id");
    assert!(stderr.contains(key_finding), "{stderr}");
    assert!(stderr.contains(&token_finding), "{stderr}");
    assert!(
        stderr.contains("--allow-secret"),
        "the hint says how: {stderr}"
    );
    assert!(refused.stdout.is_empty(), "no reference printed");
    assert!(
        registry.catalog().is_empty(),
        "nothing reached the registry: {:?}",
        registry.catalog()
    );
    assert!(
        !registry.storage().join("docker/registry/v2/blobs").exists(),
        "not even a blob was uploaded"
    );
    let failed = exports_json(&sb, "failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let error = failed[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(key_finding) && error.contains(&token_finding),
        "{error}"
    );
    assert_eq!(failed[0]["digest"], Value::Null);

    let allowed = sb
        .stowage()
        .args(insecure)
        .args(["build", "-f"])
        .arg(&spec)
        .args([
            "--allow-secret",
            "/home/user/work/.ssh/id_ed25519",
            "--allow-secret",
            "/home/user/work/analysis.ipynb",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let printed = parse_printed(&String::from_utf8_lossy(&allowed.stdout));
    let stderr = String::from_utf8_lossy(&allowed.stderr);
    assert!(
        stderr.contains(&format!("{key_finding} (allowed)")),
        "{stderr}"
    );
    assert_eq!(registry.catalog(), ["e2e/secrets"]);
    assert_eq!(
        registry.manifest_status("e2e/secrets", &printed.digest),
        200
    );
    let ok = exports_json(&sb, "ok");
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0]["digest"], printed.digest.as_str());
}

/// A build of `spec` into a new OCI layout that must fail with `code`;
/// returns its stderr after checking that no layout was written and that
/// neither stdout nor stderr holds any of `secrets`.
fn refused_build(sb: &Sandbox, spec: &Path, code: i32, secrets: &[&str]) -> String {
    let out = sb.join("out");
    let refused = sb
        .stowage()
        .args(["build", "-f"])
        .arg(spec)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .assert()
        .code(code)
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&refused.stdout);
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    for secret in secrets {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "a value was printed: {stderr}"
        );
    }
    assert!(!out.exists(), "no sink was written: {stderr}");
    stderr
}

#[test]
fn webhooks_api_keys_env_files_and_git_remotes_are_refused_by_name_never_by_value() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost/stowage-e2e/coverage:v1");
    // Assembled at run time, so this file does not itself look like it holds secrets.
    let db_pass = format!("Db{}", "7hx2Qv9Lm4wK");
    let git_token = format!("tok{}", "R8vN2xQ5mZ7kL3pW");
    let hook_secret = format!("{}{}", "aB3dE5gH7jK9", "mN2pQ4sT6vW8");
    let api_key = format!("{}{}", "k3y-", "Zq8Wm2Rt6Yp4");
    write_file(
        &sb.join("workspace/.env"),
        format!("# local settings\nDEBUG=1\nDB_PASS={db_pass}\n"),
        0o600,
    );
    write_file(
        &sb.join("workspace/.git/config"),
        format!(
            "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = https://u:{git_token}@git.acme.io/acme/app.git\n"
        ),
        0o644,
    );
    let text = std::fs::read_to_string(&spec).unwrap();
    let webhook = format!("https://hooks.slack.com/services/T0A1B2C3D/B0E4F5G6H/{hook_secret}");
    let slack_line = format!("SLACK_WEBHOOK_URL = \"{webhook}\"\n");
    let api_key_line = format!("API_KEY = \"{api_key}\"\n");
    let both = text.replace("[env]\n", &format!("[env]\n{slack_line}{api_key_line}"));
    let line_of =
        |text: &str, start: &str| text.lines().position(|l| l.starts_with(start)).unwrap() + 1;
    let secrets = [
        db_pass.as_str(),
        git_token.as_str(),
        hook_secret.as_str(),
        api_key.as_str(),
    ];

    // A secret's name in [env] is a spec error at the name.
    std::fs::write(&spec, &both).unwrap();
    let stderr = refused_build(&sb, &spec, 2, &secrets);
    let at = format!("stowage.toml:{}:1:", line_of(&both, "API_KEY"));
    assert!(stderr.contains(&at), "{stderr}");
    assert!(
        stderr.contains("`API_KEY`") && stderr.contains("deny-list"),
        "{stderr}"
    );

    // A webhook in a value is a spec error at the value, shown masked.
    let webhook_only = text.replace("[env]\n", &format!("[env]\n{slack_line}"));
    std::fs::write(&spec, &webhook_only).unwrap();
    let stderr = refused_build(&sb, &spec, 2, &secrets);
    let at = format!(
        "stowage.toml:{}:",
        line_of(&webhook_only, "SLACK_WEBHOOK_URL")
    );
    assert!(stderr.contains(&at), "{stderr}");
    assert!(
        stderr.contains("SLACK_WEBHOOK_URL") && stderr.contains("slack-webhook"),
        "{stderr}"
    );

    // With a clean spec, the scan of the files finds the .env and the remote.
    std::fs::write(&spec, &text).unwrap();
    let stderr = refused_build(&sb, &spec, 1, &secrets);
    for finding in [
        "/home/user/work/.env:3: env-file-secret",
        "/home/user/work/.git/config:4: url-credentials",
    ] {
        assert!(stderr.contains(finding), "{finding}: {stderr}");
    }

    // The export records keep the findings, and never a value.
    let failed = exports_json(&sb, "failed");
    assert!(!failed.is_empty());
    let journal = serde_json::to_string(&failed).unwrap();
    for secret in secrets {
        assert!(!journal.contains(secret), "a value was recorded: {journal}");
    }
    assert!(
        journal.contains("/home/user/work/.git/config:4: url-credentials"),
        "{journal}"
    );
}

#[test]
fn credential_stores_are_refused_by_name_unless_the_spec_allows_them() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost/stowage-e2e/creds:v1");
    write_file(
        &sb.join("library/.docker/config.json"),
        r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"}}}"#,
        0o600,
    );
    write_file(
        &sb.join("library/.netrc"),
        "machine example.org login u password p\n",
        0o600,
    );
    let out = sb.join("out");
    let dest = format!("oci:{}", out.display());
    let refused = sb
        .stowage()
        .args(["build", "-f"])
        .arg(&spec)
        .args(["-o", &dest])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("/opt/app/.docker/config.json: docker-config-file"),
        "{stderr}"
    );
    assert!(stderr.contains("/opt/app/.netrc: netrc-file"), "{stderr}");
    assert!(!out.exists(), "no sink was written");

    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push_str("\n[secrets]\nallow = [\"/opt/app/.docker\", \"/opt/app/.netrc\"]\n");
    std::fs::write(&spec, text).unwrap();
    sb.stowage()
        .args(["build", "-f"])
        .arg(&spec)
        .args(["-o", &dest])
        .assert()
        .success();
    assert!(out.join("index.json").exists());
}

#[test]
fn no_secret_scan_lets_everything_through_with_a_warning() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost/stowage-e2e/noscan:v1");
    plant_secrets(sb.path());
    let out = sb.join("out");
    let done = sb
        .stowage()
        .args(["build", "--no-secret-scan", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        stderr.contains("warning: the secret scan is off"),
        "{stderr}"
    );
}

#[test]
fn home_or_a_folder_holding_it_is_never_a_source() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost/stowage-e2e/home:v1");
    let text = std::fs::read_to_string(&spec).unwrap();
    let position = |needle: &str| {
        let (i, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(needle))
            .expect("needle in the spec");
        let col = line.find("source = ").expect("a source") + "source = ".len() + 1;
        format!("stowage.toml:{}:{col}:", i + 1)
    };
    for (home, entry) in [
        (sb.join("workspace"), "workspace = {"),
        (sb.join("library/share"), "library = {"),
    ] {
        let out = sb
            .stowage()
            .env("HOME", &home)
            .args(["build", "--dry-run", "-f"])
            .arg(&spec)
            .assert()
            .code(2)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&position(entry)), "{stderr}");
        assert!(stderr.contains("home folder"), "{stderr}");
        assert!(stderr.contains("hint:"), "{stderr}");
    }
    // The usual case: the project sits inside the home folder.
    sb.stowage()
        .env("HOME", sb.path())
        .args(["build", "--dry-run", "-f"])
        .arg(&spec)
        .assert()
        .success();
}

/// A base whose config sets the env a python image sets.
fn python_like_base(dir: &Path) -> String {
    let layer = make_layer(&["etc"], &[("etc/base", b"python-like\n", 0o644)]);
    let layer_desc = write_blob(dir, OCI_LAYER_GZIP, &gzip(&layer));
    let mut config = base_config("amd64", &[&layer]);
    config["config"]["Env"] = json!([
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "GPG_KEY=7169605F62C751356D054A26A821E680E5FA6305",
        "PYTHON_VERSION=3.12.8",
        "PYTHON_SHA256=c909157bb25ec114e5869124cc2a9c4a4d4c1e957ca4ff553f1edc692101154e",
        "LANG=C.UTF-8",
    ]);
    let config_desc = write_blob(dir, OCI_CONFIG, &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": [layer_desc],
    });
    let mut desc = write_blob(dir, OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": "py"});
    write_oci_index(dir, &[desc]);
    format!("oci:{}:py", dir.display())
}

#[test]
fn a_base_images_ordinary_env_is_never_a_secret_but_env_secrets_are() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost/stowage-e2e/pybase:v1");
    let base = python_like_base(&sb.join("base"));
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("base = \"scratch\"", &format!("base = \"{base}\""));
    std::fs::write(&spec, &text).unwrap();
    let out = sb.join("out");
    sb.stowage()
        .args(["build", "--platform", "linux/amd64", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .assert()
        .success();
    let env = Layout::open(&out).image("v1").env();
    for kept in ["GPG_KEY=7169605F", "PYTHON_VERSION=3.12.8", "GREETING="] {
        assert!(env.iter().any(|e| e.starts_with(kept)), "{kept}: {env:?}");
    }

    let with_secret = text.replace("[env]\n", "[env]\nNUVLA_API_SECRET = \"s3cr3t\"\n");
    std::fs::write(&spec, &with_secret).unwrap();
    let refused = sb
        .stowage()
        .args(["build", "--dry-run", "-f"])
        .arg(&spec)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let line = with_secret
        .lines()
        .position(|l| l.starts_with("NUVLA_API_SECRET"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("stowage.toml:{line}:1:")),
        "{stderr}"
    );
    assert!(
        stderr.contains("docker run -e NUVLA_API_SECRET IMAGE"),
        "{stderr}"
    );
}

/// A secret scanner's own files are full of token prefixes and key headers,
/// and so is stowage's binary (its table of anchors sits in read-only data
/// as one run of bytes): neither holds a secret, and the scan, on, says so.
#[test]
fn secret_scanners_files_and_stowages_own_binary_pass_the_scan() {
    let python = pytools_python();
    let located = std::process::Command::new(&python)
        .args([
            "-c",
            "import detect_secrets, os; print(os.path.dirname(detect_secrets.__file__))",
        ])
        .output()
        .unwrap();
    assert!(
        located.status.success(),
        "detect-secrets is in the tools venv (scripts/test-env.sh PYTOOLS): {}",
        String::from_utf8_lossy(&located.stderr)
    );
    let package = String::from_utf8(located.stdout).unwrap();
    let sb = Sandbox::new();
    let library = sb.mkdir("library");
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(package.trim())
        .arg(library.join("detect_secrets"))
        .status()
        .unwrap();
    assert!(copied.success());
    // Its compiled modules too: the binaries of another scanner.
    let compiled = std::process::Command::new(&python)
        .args(["-m", "compileall", "-q"])
        .arg(library.join("detect_secrets"))
        .status()
        .unwrap();
    assert!(compiled.success());
    std::fs::copy(stowage_bin(), library.join("stowage")).unwrap();
    let spec = sb.join("stowage.toml");
    write_file(
        &spec,
        "base = \"scratch\"\n[app]\nlibrary = { source = \"library\", target = \"/opt/tools\" }\ncommand = [\"/opt/tools/stowage\", \"--version\"]\n",
        0o644,
    );
    let out = sb.join("out");
    let built = sb
        .stowage()
        .args(["build", "--no-start-check", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:v1", out.display()))
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(!stderr.contains("secret"), "{stderr}");
    assert!(out.join("index.json").is_file());
}
