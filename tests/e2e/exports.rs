//! Export records from real builds, pushes and archives: listing and
//! filtering, deletion from a real registry (started with deletion enabled)
//! and from a Docker Hub stand-in, two builds at once, and the run command
//! run as printed.

use std::path::Path;

use base64::Engine;
use serde_json::Value;

use crate::rig::hub::HubStandIn;
use crate::rig::registry::TestRegistry;
use crate::rig::*;

fn exports(sb: &Sandbox, args: &[&str]) -> Vec<Value> {
    let text = run_ok(sb.stowage().args(["--json", "exports"]).args(args));
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn ids(records: &[Value]) -> Vec<i64> {
    records.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

fn skopeo_inspect_ok(reference: &str) -> bool {
    skopeo()
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .expect("run skopeo")
        .status
        .success()
}

/// Runs `cmd`, which must succeed: its stdout and stderr.
fn succeeds(cmd: &mut assert_cmd::Command) -> (String, String) {
    let out = cmd.assert().success().get_output().clone();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn records_of_ok_failed_and_deleted_exports_filter_and_delete_from_the_registry() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tool("skopeo") {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let spec = write_app(sb.path(), &format!("{host}/e2e/records:v1"));
    let archive = sb.join("app.tar.gz");
    let insecure = ["--insecure-registry", host.as_str()];

    assert!(
        exports(&sb, &[]).is_empty(),
        "a fresh state folder has no records"
    );
    let (stdout, log) = succeeds(
        sb.stowage()
            .args(insecure)
            .args(["build", "-f"])
            .arg(&spec)
            .args(["-o", &format!("{host}/e2e/records:v1")])
            .arg("-o")
            .arg(format!("docker-archive:{}", archive.display())),
    );
    let printed = parse_printed(&stdout);
    assert!(log.contains("recorded as export 1"), "{log}");
    let pinned = format!("{host}/e2e/records@{}", printed.digest);
    assert!(skopeo_inspect_ok(&pinned));

    fail_a_build_on_a_credential_file(&sb, &spec, &insecure);
    let all = exports(&sb, &[]);
    assert_eq!(ids(&all), [1, 2], "{all:?}");
    assert_ok_record(&all[0], &spec, &host, &archive, &printed.digest, &pinned);
    assert_failed_record(&all[1]);

    assert_eq!(ids(&exports(&sb, &["--status", "ok"])), [1]);
    assert_eq!(ids(&exports(&sb, &["list", "--status", "failed"])), [2]);
    assert!(exports(&sb, &["--status", "deleted"]).is_empty());

    delete_both_records(
        &sb,
        &insecure,
        &registry,
        &archive,
        &printed.digest,
        &pinned,
    );
    assert_deleted_records_are_kept(&sb, &insecure, &printed.digest);
}

/// A credential file makes the next build fail, and that is recorded too.
fn fail_a_build_on_a_credential_file(sb: &Sandbox, spec: &Path, insecure: &[&str]) {
    write_file(
        &sb.join("workspace/.git-credentials"),
        "https://u:p@example.org\n",
        0o600,
    );
    sb.stowage()
        .args(insecure)
        .args(["build", "-f"])
        .arg(spec)
        .assert()
        .code(1);
    std::fs::remove_file(sb.join("workspace/.git-credentials")).unwrap();
}

/// The record of the build that pushed `digest` to the registry and wrote
/// `archive`.
fn assert_ok_record(
    ok: &Value,
    spec: &Path,
    host: &str,
    archive: &Path,
    digest: &str,
    pinned: &str,
) {
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["kind"], "build");
    assert_eq!(ok["digest"], digest);
    assert!(ok["size"].as_u64().unwrap() > 0);
    assert_eq!(
        ok["spec"].as_str(),
        Some(std::path::absolute(spec).unwrap().to_str().unwrap())
    );
    let sources: Vec<&str> = ok["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(sources[0], "scratch");
    assert!(
        sources.iter().any(|s| s.ends_with("/workspace")),
        "{sources:?}"
    );
    let destinations = ok["destinations"].as_array().unwrap();
    assert_eq!(destinations[0]["kind"], "registry");
    assert_eq!(
        destinations[0]["destination"],
        format!("docker://{host}/e2e/records:v1")
    );
    assert_eq!(destinations[1]["kind"], "docker-archive");
    assert_eq!(destinations[1]["path"], archive.to_str().unwrap());
    assert_eq!(
        destinations[1]["size"].as_u64(),
        Some(std::fs::metadata(archive).unwrap().len())
    );
    assert_eq!(
        ok["run_command"],
        format!("docker run -p 8888:8888 {pinned}").as_str()
    );
}

/// The record of the build the credential file failed.
fn assert_failed_record(failed: &Value) {
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("/home/user/work/.git-credentials: git-credentials-file"),
        "{}",
        failed["error"]
    );
}

/// Deletes the failed build's record, then the one that pushed `digest`.
fn delete_both_records(
    sb: &Sandbox,
    insecure: &[&str],
    registry: &TestRegistry,
    archive: &Path,
    digest: &str,
    pinned: &str,
) {
    // The failed build pushed nothing: deleting its record must not touch
    // the tag it aimed at, which holds export 1's image.
    let (_, log) = succeeds(
        sb.stowage()
            .args(insecure)
            .args(["exports", "delete", "2", "--yes"]),
    );
    assert!(log.contains("left alone"), "{log}");
    assert_eq!(registry.manifest_status("e2e/records", "v1"), 200);
    assert!(archive.exists());

    let (_, log) = succeeds(
        sb.stowage()
            .args(insecure)
            .args(["exports", "delete", "1", "--yes"]),
    );
    assert!(log.contains(&format!("deleted manifest {digest}")), "{log}");
    assert!(!archive.exists(), "the archive file is removed");
    assert!(!skopeo_inspect_ok(pinned), "the manifest is gone");
    assert_eq!(registry.manifest_status("e2e/records", "v1"), 404);
}

/// Deleted records stay, marked deleted, and cannot be deleted again.
fn assert_deleted_records_are_kept(sb: &Sandbox, insecure: &[&str], digest: &str) {
    let deleted = exports(sb, &["--status", "deleted"]);
    assert_eq!(ids(&deleted), [1, 2]);
    assert!(deleted[0]["deleted_time"].is_string());
    assert!(deleted[1]["error"].is_string(), "the error is kept");
    assert_eq!(deleted[0]["digest"], digest, "kept, not erased");
    assert_eq!(ids(&exports(sb, &[])), [1, 2]);
    let table = run_ok(sb.stowage().arg("exports"));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("1 ") && l.contains("deleted")),
        "{table}"
    );

    let again = sb
        .stowage()
        .args(insecure)
        .args(["exports", "delete", "1", "--yes"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&again.stderr).contains("already deleted"));
}

#[test]
fn archive_records_its_path_and_size_and_delete_removes_the_file() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let reference = format!("{host}/e2e/archived:v1");
    let spec = write_app(sb.path(), &reference);
    let insecure = ["--insecure-registry", host.as_str()];
    run_ok(sb.stowage().args(insecure).args(["build", "-f"]).arg(&spec));
    let file = sb.join("saved.tar.gz");
    run_ok(
        sb.stowage()
            .args(insecure)
            .args(["archive", &reference, "-o"])
            .arg(&file),
    );
    let records = exports(&sb, &[]);
    assert_eq!(records.len(), 2, "{records:?}");
    let archived = &records[1];
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(archived["kind"], "archive");
    assert_eq!(archived["sources"][0], format!("docker://{reference}"));
    assert_eq!(archived["destinations"][0]["path"], file.to_str().unwrap());
    assert_eq!(archived["destinations"][0]["size"].as_u64(), Some(size));
    assert_eq!(archived["size"].as_u64(), Some(size));
    run_ok(sb.stowage().args(["exports", "delete", "2", "--yes"]));
    assert!(!file.exists());
    assert_eq!(
        registry.manifest_status("e2e/archived", "v1"),
        200,
        "the pushed image stays"
    );
}

/// Writes Docker's config.json with Docker Hub credentials.
fn log_in_to_docker_hub(sb: &Sandbox, user: &str, password: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    write_file(
        &sb.join("docker-config/config.json"),
        format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}}}}"#),
        0o600,
    );
}

#[test]
fn docker_hub_exports_are_deleted_through_the_hub_api() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let tag = unique("t");
    // The local registry plays registry-1.docker.io for the push.
    let spec = write_app(sb.path(), &format!("docker.io/acme/e2e-hub:{tag}"));
    let hub = HubStandIn::start("alice", "s3cret", &[&format!("acme/e2e-hub:{tag}")]);
    let stowage = || {
        let mut cmd = sb.stowage();
        cmd.env("STOWAGE_DOCKER_HUB_HOST", &registry.host)
            .env("STOWAGE_DOCKER_HUB_API", hub.url())
            .args(["--insecure-registry", &registry.host]);
        cmd
    };
    let stdout = run_ok(stowage().args(["build", "-f"]).arg(&spec));
    assert!(
        stdout.starts_with("docker.io/acme/e2e-hub@sha256:"),
        "{stdout}"
    );
    assert_eq!(registry.manifest_status("acme/e2e-hub", &tag), 200);

    let no_login = stowage()
        .args(["exports", "delete", "1", "--yes"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&no_login.stderr);
    assert!(stderr.contains("no Docker Hub credentials"), "{stderr}");
    assert!(
        stderr.contains("stowage login -u USER --password-stdin"),
        "{stderr}"
    );
    assert!(
        stderr.contains("https://hub.docker.com/repository/docker/acme/e2e-hub/tags"),
        "{stderr}"
    );
    assert!(hub.requests().is_empty());
    assert_eq!(
        exports(&sb, &["--status", "ok"]).len(),
        1,
        "the record stays"
    );

    log_in_to_docker_hub(&sb, "alice", "wrong");
    let refused = stowage()
        .args(["exports", "delete", "1", "--yes"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("refused the credentials of `alice`")
    );

    log_in_to_docker_hub(&sb, "alice", "s3cret");
    let log = stowage()
        .args(["exports", "delete", "1", "--yes"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        String::from_utf8_lossy(&log.stderr).contains("through the Docker Hub API"),
        "{}",
        String::from_utf8_lossy(&log.stderr)
    );
    assert!(!hub.has_tag(&format!("acme/e2e-hub:{tag}")));
    assert_eq!(
        hub.requests(),
        [
            "POST /v2/users/login".to_string(),
            "POST /v2/users/login".to_string(),
            format!("DELETE /v2/repositories/acme/e2e-hub/tags/{tag}/"),
        ]
    );
    let deleted = exports(&sb, &["--status", "deleted"]);
    assert_eq!(ids(&deleted), [1]);
}

#[test]
fn two_builds_at_once_are_both_recorded() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost/stowage-e2e/concurrent:v1");
    let outputs: Vec<_> = (0..3).map(|i| sb.join(format!("out{i}"))).collect();
    std::thread::scope(|scope| {
        for out in &outputs {
            let mut cmd = sb.stowage();
            cmd.args(["build", "-f"])
                .arg(&spec)
                .arg("-o")
                .arg(format!("oci-archive:{}", out.display()));
            scope.spawn(move || {
                cmd.assert().success();
            });
        }
    });
    let records = exports(&sb, &["--status", "ok"]);
    assert_eq!(ids(&records), [1, 2, 3], "{records:?}");
    let mut paths: Vec<&str> = records
        .iter()
        .map(|r| r["destinations"][0]["path"].as_str().unwrap())
        .collect();
    paths.sort();
    let mut wanted: Vec<&str> = outputs.iter().map(|p| p.to_str().unwrap()).collect();
    wanted.sort();
    assert_eq!(paths, wanted);
    assert!(records.iter().all(|r| r["digest"] == records[0]["digest"]));
}

/// `line` with `--rm --network host` after `docker run` (the test dockerd has no bridge).
fn on_host_network(line: &str) -> String {
    let rest = line
        .strip_prefix("docker run ")
        .unwrap_or_else(|| panic!("not a docker run line: {line}"));
    format!("docker run --rm --network host {rest}")
}

#[test]
fn run_command_as_printed_starts_the_image() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let reference = format!("{host}/e2e/run:v1");
    let spec = write_app(sb.path(), &reference);
    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push_str("\n[secrets]\nnames = [\"APP_API_TOKEN\"]\n");
    std::fs::write(&spec, text).unwrap();
    let insecure = ["--insecure-registry", host.as_str()];

    let built = sb
        .stowage()
        .args(insecure)
        .args(["build", "-f"])
        .arg(&spec)
        .assert()
        .success()
        .get_output()
        .clone();
    let printed = parse_printed(&String::from_utf8_lossy(&built.stdout));
    let pinned = format!("{host}/e2e/run@{}", printed.digest);
    let expected = format!("docker run -p 8888:8888 -e APP_API_TOKEN {pinned}");
    let log = String::from_utf8_lossy(&built.stderr);
    assert!(log.contains(&format!("run it with: {expected}")), "{log}");

    let by_ref = run_ok(
        sb.stowage()
            .args(insecure)
            .args(["run-command", &reference]),
    );
    assert_eq!(by_ref.trim_end(), expected);
    let by_id = run_ok(sb.stowage().args(["run-command", "1"]));
    assert_eq!(by_id.trim_end(), expected);

    let _cleanup = DockerImage(pinned.clone());
    let out = tool("sh")
        .arg("-c")
        .arg(on_host_network(by_ref.trim_end()))
        .env("APP_API_TOKEN", "given-at-run-time")
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in APP_OUTPUT {
        assert!(stdout.contains(line), "{line:?} missing from {stdout}");
    }
}

#[test]
fn listing_with_no_records_says_so() {
    let sb = Sandbox::new();
    let out = sb
        .stowage()
        .arg("exports")
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no exports recorded yet"));
    assert!(Path::new(&sb.join("state/exports.sqlite3")).exists());
}
