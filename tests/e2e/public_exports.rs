//! Public exports, safe and clear: secret values in the spec refused at
//! their place and never shown, `-o` strings that look like files refused
//! instead of pushed to Docker Hub, every destination's status in the
//! record (a failed push leaves no local output; a local sink failing after
//! a push is recorded and deleted exactly), and `exports delete` asking on a
//! terminal.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use crate::rig::proxy::{Action, FaultProxy};
use crate::rig::registry::{TestRegistry, free_port};
use crate::rig::secret_tokens::{checksummed_token, pypi_token, random_text};
use crate::rig::*;

fn records_text(sb: &Sandbox) -> String {
    run_ok(sb.stowage().args(["--json", "exports", "list"]))
}

/// Each destination's `status` in a record.
fn statuses(record: &Value) -> Vec<String> {
    record["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap_or("none").to_string())
        .collect()
}

/// `value` as a TOML basic string.
fn toml_str(value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// One value rule: its name, a value it finds, and the part of the value
/// that must never be printed or recorded.
struct Case {
    rule: &'static str,
    value: String,
    secret: String,
}

/// The characters of base64url tokens.
const TOKEN: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/// A value per rule; tokens are assembled at run time so this file does
/// not itself look like it holds secrets.
fn cases() -> Vec<Case> {
    let begin = "-----BEGIN";
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let jwt = format!(
        "{}.{}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV",
        b64("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"),
        b64("{\"sub\":\"1234567890\",\"name\":\"x\"}")
    );
    let body = |prefix: &str, unit: &str, n: usize| format!("{prefix}{}", unit.repeat(n));
    let case = |rule, value: String, secret: String| Case {
        rule,
        value,
        secret,
    };
    let same = |rule, value: String| Case {
        rule,
        secret: value.clone(),
        value,
    };
    let pem_body = "MIIEpAIBAAKCAQEAq7BFUJ3QpWx9v".to_string();
    let aws_secret = random_text(TOKEN, 40, 6).replace(['-', '_'], "/");
    let gcp_body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".to_string();
    vec![
        case(
            "private-key",
            format!("{begin} RSA PRIVATE KEY-----\n{pem_body}\n"),
            pem_body.clone(),
        ),
        case(
            "openssh-private-key",
            format!("{begin} OPENSSH PRIVATE KEY-----\n{pem_body}\n"),
            pem_body,
        ),
        same("aws-access-key-id", body("AKIA", "Q3ZT7WX2", 2)),
        case(
            "aws-secret-access-key",
            format!("aws_secret_access_key={aws_secret}"),
            aws_secret,
        ),
        case(
            "gcp-service-account-key",
            format!("{{\"private_key\": \"{begin} PRIVATE KEY-----\\n{gcp_body}\\n\"}}"),
            gcp_body,
        ),
        same("github-token", checksummed_token("ghp_", 1)),
        same(
            "gitlab-token",
            body("glpat-", &random_text(TOKEN, 20, 2), 1),
        ),
        same(
            "docker-hub-token",
            body("dckr_pat_", &random_text(TOKEN, 27, 3), 1),
        ),
        same(
            "slack-token",
            body(
                "xoxb-1234567890-1234567890-",
                &random_text(TOKEN, 24, 4).replace(['-', '_'], "x"),
                1,
            ),
        ),
        same("pypi-token", pypi_token(5)),
        same("jwt", jwt),
        case(
            "url-credentials",
            "postgres://admin:pw-9f3Kq2@db.internal/prod".into(),
            "pw-9f3Kq2".into(),
        ),
    ]
}

/// The sample app's spec with `value` placed in `[env]`, `[labels]` or
/// `command`; returns the spec text and the key that allows it.
fn spec_with(image: &str, place: &str, value: &str) -> (String, String) {
    let base = app_spec(image);
    let quoted = toml_str(value);
    match place {
        "env" => (
            base.replace("[env]\n", &format!("[env]\nAPP_SETTING = {quoted}\n")),
            "env.APP_SETTING".into(),
        ),
        "labels" => (
            base.replace(
                "[labels]\n",
                &format!("[labels]\n\"org.example.note\" = {quoted}\n"),
            ),
            "labels.org.example.note".into(),
        ),
        _ => (
            base.replace(
                "command = [\"greet\"]",
                &format!("command = [\"greet\", {quoted}]"),
            ),
            "command".into(),
        ),
    }
}

/// 1-based line and column (characters) of the first `needle` in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap();
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line, col)
}

#[test]
fn each_value_rule_in_env_labels_and_command_is_refused_at_its_place_and_never_shown() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost:5000/e2e/values:v1");
    let out = sb.join("out");
    for case in cases() {
        for place in ["env", "labels", "command"] {
            let (text, key) = spec_with("localhost:5000/e2e/values:v1", place, &case.value);
            std::fs::write(&spec, &text).unwrap();
            let run = sb
                .stowage()
                .args(["build", "-f"])
                .arg(&spec)
                .arg("-o")
                .arg(format!("oci:{}", out.display()))
                .output()
                .unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr),
            );
            let what = format!("{} in {place}: {stderr}", case.rule);
            assert_eq!(run.status.code(), Some(2), "{what}");
            let (line, col) = position(&text, &toml_str(&case.value));
            assert!(
                stderr.contains(&format!("stowage.toml:{line}:{col}: ")),
                "{line}:{col}: {what}"
            );
            assert!(stderr.contains(case.rule), "{what}");
            assert!(stderr.contains(&format!("--allow-secret {key}")), "{what}");
            if place == "env" {
                assert!(
                    stderr.contains("docker run -e APP_SETTING")
                        && stderr.contains("[secrets] names"),
                    "{what}"
                );
            }
            assert!(!stderr.contains(&case.secret), "{what}");
            assert!(!stdout.contains(&case.secret), "{what}");
            assert!(!out.exists(), "nothing written: {what}");
        }
    }
    // A spec error exports nothing, so no record can carry the value either.
    let recorded = records_text(&sb);
    assert!(
        export_records(&sb).is_empty(),
        "a refusal (exit 2) is not recorded: {recorded}"
    );
}

#[test]
fn a_var_url_password_passes_and_allow_secret_lets_a_deliberate_value_through() {
    if !require_tool("skopeo") {
        return;
    }
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost:5000/e2e/values:v1");
    let token = checksummed_token("ghp_", 7);
    let text = app_spec("localhost:5000/e2e/values:v1").replace(
        "[env]\n",
        &format!(
            "[env]\nDATABASE_URL = \"postgres://admin:${{DB_PASSWORD}}@db/prod\"\nPUBLIC_DEMO_PAT = \"{token}\"\n"
        ),
    );
    std::fs::write(&spec, &text).unwrap();
    let out = sb.join("out");
    let dest = format!("oci:{}:v1", out.display());
    sb.stowage()
        .args(["build", "-f"])
        .arg(&spec)
        .args(["-o", &dest])
        .assert()
        .code(2);
    sb.stowage()
        .args(["build", "-f"])
        .arg(&spec)
        .args(["-o", &dest, "--allow-secret", "env.PUBLIC_DEMO_PAT"])
        .assert()
        .success();
    let config = skopeo()
        .args(["inspect", "--config", &dest])
        .output()
        .unwrap();
    assert!(config.status.success(), "{config:?}");
    let config: Value = serde_json::from_slice(&config.stdout).unwrap();
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        env.contains(&"DATABASE_URL=postgres://admin:${DB_PASSWORD}@db/prod")
            || env
                .iter()
                .any(|e| e.starts_with("DATABASE_URL=postgres://admin:")),
        "{env:?}"
    );
    assert!(
        env.contains(&format!("PUBLIC_DEMO_PAT={token}").as_str()),
        "{env:?}"
    );
}

#[test]
fn destinations_that_look_like_files_are_refused_and_names_stay_references() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost:5000/e2e/guess:v1");
    for (dest, suggestion) in [
        ("app.tar", "docker-archive:app.tar"),
        ("app.tar.gz", "docker-archive:app.tar.gz"),
        ("./out", "oci:./out"),
        ("/tmp/x", "oci:/tmp/x"),
    ] {
        let run = sb
            .stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .args(["-o", dest])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{dest}: {stderr}");
        assert!(
            stderr.contains(&format!("`{suggestion}`")),
            "{dest}: {stderr}"
        );
        assert!(!stderr.contains("insecure-registry"), "{dest}: {stderr}");
        assert!(!stderr.contains("docker.io"), "{dest}: {stderr}");
    }
    assert!(!sb.join("app.tar").exists() && !sb.join("app.tar.gz").exists());
    assert!(!sb.join("out").exists());
    for (dest, canonical) in [
        ("alpine", "docker.io/library/alpine:latest"),
        (
            "registry.example.org:5000/a/b:1",
            "registry.example.org:5000/a/b:1",
        ),
    ] {
        let stdout = run_ok(
            sb.stowage()
                .args(["--json", "build", "--dry-run", "-f"])
                .arg(&spec)
                .args(["-o", dest]),
        );
        assert!(stdout.contains(canonical), "{dest}: {stdout}");
    }
}

#[test]
fn a_failed_push_leaves_no_archive_or_layout_and_the_record_owns_nothing() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost:5000/e2e/nopush:v1");
    let archive = sb.join("app.tar.gz");
    let layout = sb.join("layout");
    // Nothing listens on this loopback port: the push fails to connect.
    let dead = format!("127.0.0.1:{}/e2e/nopush:x", free_port());
    let run = sb
        .stowage()
        .args(["--retries", "0", "build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("docker-archive:{}", archive.display()))
        .arg("-o")
        .arg(format!("oci:{}", layout.display()))
        .args(["-o", &dead])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("wrote"), "{stderr}");
    assert!(!archive.exists(), "no archive left behind");
    assert!(!layout.exists(), "no layout left behind");
    let all = export_records(&sb);
    assert_eq!(all.len(), 1);
    assert_eq!(statuses(&all[0]), ["failed", "failed", "failed"]);
    let done = sb
        .stowage()
        .args(["exports", "delete", "1", "--yes"])
        .output()
        .unwrap();
    assert!(done.status.success(), "{done:?}");
    assert!(String::from_utf8_lossy(&done.stderr).contains("left alone"));
}

/// A file where the layout's parent folder should be: creating the layout
/// fails even for root, after the push went through.
fn blocked_layout(sb: &Sandbox) -> PathBuf {
    let blocker = sb.join("blocker");
    write_file(&blocker, "a file, not a folder\n", 0o644);
    blocker.join("layout")
}

#[test]
fn a_local_sink_failing_after_a_push_is_recorded_and_delete_removes_exactly_what_was_written() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tool("skopeo") {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let spec = write_app(sb.path(), &format!("{host}/e2e/partial:v1"));
    label_uniquely(&spec, "partial");
    let archive = sb.join("written.tar");
    let layout = blocked_layout(&sb);
    let run = sb
        .stowage()
        .args(["build", "-f"])
        .arg(&spec)
        .args(["-o", &format!("{host}/e2e/partial:v1")])
        .arg("-o")
        .arg(format!("docker-archive:{}", archive.display()))
        .arg("-o")
        .arg(format!("oci:{}", layout.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed after the image was written to"),
        "{stderr}"
    );
    assert!(
        archive.exists(),
        "the archive was written before the layout failed"
    );
    assert_eq!(registry.manifest_status("e2e/partial", "v1"), 200);

    let record = export_records(&sb).remove(0);
    assert_eq!(record["status"], "failed");
    assert_eq!(statuses(&record), ["pushed", "written", "failed"]);
    let digest = record["digest"].as_str().unwrap().to_string();
    assert_eq!(registry.skopeo_digest("e2e/partial:v1"), digest);
    let table = run_ok(sb.stowage().args(["exports", "list"]));
    assert!(
        table.contains("(pushed)") && table.contains("(failed)"),
        "{table}"
    );

    run_ok(sb.stowage().args(["exports", "delete", "1", "--yes"]));
    assert_eq!(registry.manifest_status("e2e/partial", "v1"), 404);
    assert!(!archive.exists(), "the written archive is removed");
    assert!(
        sb.join("blocker").is_file(),
        "what the export did not write stays"
    );
    let record = export_records(&sb).remove(0);
    assert_eq!(record["status"], "deleted");
    assert_eq!(statuses(&record), ["deleted", "deleted", "failed"]);
}

#[test]
fn a_tag_the_registry_refuses_leaves_the_tags_put_before_it_recorded_as_pushed() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    // Harbor refuses to move an immutable tag at the manifest PUT, after
    // the blobs and the repository's other tags went up.
    let proxy = FaultProxy::start(&registry.host, |req| {
        if req.is_manifest_put() && req.target.ends_with("/manifests/v2") {
            Action::Respond {
                status: 403,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: br#"{"errors":[{"code":"DENIED","message":"tag v2 is immutable"}]}"#.to_vec(),
            }
        } else {
            Action::forward()
        }
    });
    let sb = Sandbox::new();
    let repo = unique("e2e/tags");
    let v1 = proxy.reference(&format!("{repo}:v1"));
    let v2 = proxy.reference(&format!("{repo}:v2"));
    let archive = sb.join("after.tar");
    let spec = write_app(sb.path(), &v1);
    label_uniquely(&spec, "tags");
    let run = sb
        .stowage()
        .args(["--insecure-registry", &proxy.addr, "build", "-f"])
        .arg(&spec)
        .args(["-o", &v1, "-o", &v2, "-o"])
        .arg(format!("docker-archive:{}", archive.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tag v2 is immutable"), "{stderr}");
    assert!(
        stderr.contains("failed after the image was written to") && stderr.contains(&v1),
        "{stderr}"
    );
    assert_eq!(registry.manifest_status(&repo, "v1"), 200);
    assert_eq!(registry.manifest_status(&repo, "v2"), 404);
    assert!(!archive.exists(), "no local output after a failed push");

    let record = export_records(&sb).remove(0);
    assert_eq!(record["status"], "failed");
    assert_eq!(statuses(&record), ["pushed", "failed", "failed"]);
    run_ok(sb.stowage().args([
        "--insecure-registry",
        &proxy.addr,
        "exports",
        "delete",
        "1",
        "--yes",
    ]));
    assert_eq!(registry.manifest_status(&repo, "v1"), 404);
    assert_eq!(
        statuses(&export_records(&sb).remove(0)),
        ["deleted", "failed", "failed"]
    );
}

/// Runs `stowage exports delete ID` on a pseudo-terminal (util-linux
/// `script`), answering `answer`; returns its exit status and what it showed.
fn delete_on_a_terminal(sb: &Sandbox, id: &str, answer: &str) -> (bool, String) {
    let line = format!("{} exports delete {id}", stowage_bin().display());
    let mut cmd = assert_cmd::Command::new("script");
    stowage_env(&mut cmd, &sb.join("cache"));
    let out = cmd
        .args(["-qfec", &line, "/dev/null"])
        .write_stdin(format!("{answer}\n"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), shown)
}

#[test]
fn delete_refuses_without_a_terminal_asks_on_one_and_goes_ahead_with_yes() {
    if !require_tool("script") {
        return;
    }
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost:5000/e2e/ask:v1");
    let archive = sb.join("app.tar");
    let build = |archive: &Path| {
        run_ok(
            sb.stowage()
                .args(["build", "-f"])
                .arg(&spec)
                .arg("-o")
                .arg(format!("docker-archive:{}", archive.display())),
        )
    };
    build(&archive);
    let refused = sb
        .stowage()
        .args(["exports", "delete", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert!(archive.exists(), "refused: nothing deleted");

    let (ok, shown) = delete_on_a_terminal(&sb, "1", "n");
    assert!(!ok, "{shown}");
    assert!(
        shown.contains(&format!("file {}", archive.display())),
        "{shown}"
    );
    assert!(shown.contains("[y/N]"), "{shown}");
    assert!(archive.exists(), "answered no: nothing deleted");
    assert_eq!(export_records(&sb)[0]["status"], "ok");

    let (ok, shown) = delete_on_a_terminal(&sb, "1", "y");
    assert!(ok, "{shown}");
    assert!(!archive.exists(), "answered yes: deleted");
    assert_eq!(export_records(&sb)[0]["status"], "deleted");

    let second = sb.join("second.tar");
    build(&second);
    run_ok(sb.stowage().args(["exports", "delete", "2", "--yes"]));
    assert!(!second.exists(), "--yes deletes without asking");
}

/// The schema stowage wrote before export notes and per-destination status.
const VERSION_1_SCHEMA: &str = "
CREATE TABLE exports (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    time         TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('build', 'push', 'copy', 'archive')),
    spec         TEXT,
    sources      TEXT    NOT NULL,
    destinations TEXT    NOT NULL,
    digest       TEXT,
    size         INTEGER,
    status       TEXT    NOT NULL CHECK (status IN ('ok', 'failed', 'deleted')),
    error        TEXT,
    run_command  TEXT,
    secret_names TEXT    NOT NULL DEFAULT '[]',
    deleted_time TEXT
);
PRAGMA user_version = 1;
";

#[test]
fn records_an_earlier_version_wrote_still_read_and_delete_as_they_did() {
    if !require_tool("python3") {
        return;
    }
    let sb = Sandbox::new();
    let state = sb.mkdir("state");
    let kept = sb.join("kept.tar");
    let other = sb.join("other.tar");
    write_file(&kept, "an archive export 1 wrote\n", 0o644);
    write_file(&other, "what another export put at a failed path\n", 0o644);
    let destination = |path: &Path| {
        serde_json::json!([{
            "destination": format!("docker-archive:{}", path.display()),
            "kind": "docker-archive",
            "path": path.display().to_string(),
        }])
        .to_string()
    };
    // Written with Python's own sqlite3, as an earlier stowage left it.
    let script = "import sqlite3, sys\n\
        db = sqlite3.connect(sys.argv[1])\n\
        db.executescript(sys.argv[2])\n\
        rows = [('ok', sys.argv[3], 'sha256:' + 'a' * 64, None), ('failed', sys.argv[4], None, 'boom')]\n\
        for status, dests, digest, error in rows:\n\
        \x20   db.execute(\"INSERT INTO exports (time, kind, sources, destinations, digest, status, error) VALUES ('2026-01-01T00:00:00Z', 'build', '[]', ?, ?, ?, ?)\", (dests, digest, status, error))\n\
        db.commit()\n";
    let made = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(state.join("exports.sqlite3"))
        .arg(VERSION_1_SCHEMA)
        .arg(destination(&kept))
        .arg(destination(&other))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");

    let all = export_records(&sb);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(statuses(&all[0]), ["written"]);
    assert_eq!(statuses(&all[1]), ["failed"]);
    assert_eq!(all[0]["notes"], serde_json::json!([]));

    run_ok(sb.stowage().args(["exports", "delete", "2", "--yes"]));
    assert!(
        other.exists(),
        "a failed export of an earlier version owns nothing"
    );
    run_ok(sb.stowage().args(["exports", "delete", "1", "--yes"]));
    assert!(!kept.exists(), "an ok export's archive is removed");
    let all = export_records(&sb);
    assert_eq!(statuses(&all[0]), ["deleted"]);
    assert_eq!(all[1]["status"], "deleted");
}
