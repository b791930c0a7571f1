//! Loopback registries need no `--insecure-registry`, as with Docker and
//! crane: a plain-HTTP `docker-registry` on 127.0.0.1 (or `localhost`)
//! takes a build's push, answers `run-command` and `inspect`, and has the
//! export deleted, all without the flag. A host that is not loopback still
//! needs the flag once; its export record remembers plain HTTP, so deleting
//! it does not.

use serde_json::Value;

use crate::rig::registry::TestRegistry;
use crate::rig::*;

fn export_records(sb: &Sandbox) -> Vec<Value> {
    let text = run_ok(sb.stowage().args(["--json", "exports"]));
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(records)) => records,
        other => panic!("exports --json: {other:?}"),
    }
}

#[test]
fn a_loopback_registry_needs_no_insecure_flag() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let host = registry.host.clone();
    assert!(host.starts_with("127.0.0.1:"), "{host}");
    let reference = format!("{host}/e2e/loopback:v1");
    let spec = write_app(sb.path(), &reference);
    let built = sb
        .stowage()
        .args(["-v", "build", "-f"])
        .arg(&spec)
        .assert()
        .success()
        .get_output()
        .clone();
    let printed = parse_printed(&String::from_utf8_lossy(&built.stdout));
    let log = String::from_utf8_lossy(&built.stderr);
    assert!(
        log.contains("using plain HTTP as a loopback registry may"),
        "-v says why plain HTTP: {log}"
    );
    let pinned = format!("{host}/e2e/loopback@{}", printed.digest);
    let expected = format!("docker run -p 8888:8888 {pinned}");

    let by_ref = run_ok(sb.stowage().args(["run-command", &reference]));
    assert_eq!(by_ref.trim_end(), expected);
    assert_eq!(
        run_ok(sb.stowage().args(["run-command", "1"])).trim_end(),
        expected
    );
    // `localhost` is loopback by name.
    let localhost = reference.replace("127.0.0.1", "localhost");
    let inspected = run_ok(sb.stowage().args(["--json", "inspect", &localhost]));
    assert!(inspected.contains(&printed.digest), "{inspected}");

    let records = export_records(&sb);
    assert_eq!(records[0]["destinations"][0]["plain_http"], true);
    run_ok(sb.stowage().args(["exports", "delete", "1", "--yes"]));
    assert_eq!(registry.manifest_status("e2e/loopback", "v1"), 404);
}

#[test]
fn an_export_to_another_host_remembers_plain_http_for_delete() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    // Linux connects 0.0.0.0 to this machine, but it is not a loopback
    // address, so it stands for any other host: it needs the flag.
    let host = registry.host.replace("127.0.0.1", "0.0.0.0");
    let reference = format!("{host}/e2e/remembered:v1");
    let spec = write_app(sb.path(), &reference);
    let refused = sb
        .stowage()
        .args(["build", "-f"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        show(&refused.stderr).contains(&format!("--insecure-registry {host}")),
        "{}",
        show(&refused.stderr)
    );
    run_ok(
        sb.stowage()
            .args(["--insecure-registry", &host, "build", "-f"])
            .arg(&spec),
    );
    let records = export_records(&sb);
    let last = records.last().expect("a record");
    assert_eq!(last["status"], "ok");
    assert_eq!(last["destinations"][0]["plain_http"], true);
    let id = last["id"].as_i64().expect("an id").to_string();
    run_ok(sb.stowage().args(["exports", "delete", &id, "--yes"]));
    assert_eq!(registry.manifest_status("e2e/remembered", "v1"), 404);
}
