//! `exports delete` takes only what its export owns: two exports of one
//! image to two tags of a real registry (distribution 2.x, which cannot
//! delete a tag alone), of the Docker Hub stand-in (tag deletion through the
//! Hub's API), and of an OCI layout with three tags; `--all-tags`; and an
//! archive another export wrote again since.

use std::path::Path;

use crate::rig::hub::HubStandIn;
use crate::rig::registry::{TestRegistry, stderr_of, stowage_insecure};
use crate::rig::*;

fn status_of(sb: &Sandbox, id: i64) -> String {
    export_records(sb)
        .iter()
        .find(|r| r["id"] == id)
        .map(|r| r["status"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("no record {id}"))
}

fn build(sb: &Sandbox, hosts: &[&str], spec: &Path, dest: &str) {
    let mut cmd = stowage_insecure(sb, hosts);
    cmd.args(["build", "-f"]).arg(spec).args(["-o", dest]);
    run_ok(&mut cmd);
}

/// Runs `exports delete` with `args`; its exit code and stderr.
fn delete(sb: &Sandbox, hosts: &[&str], args: &[&str]) -> (i32, String) {
    let out = stowage_insecure(sb, hosts)
        .args(["exports", "delete"])
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), stderr_of(&out))
}

#[test]
fn a_registry_that_cannot_delete_a_tag_alone_keeps_the_other_exports_tag() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tool("skopeo") {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let hosts = [host.as_str()];
    let spec = write_app(sb.path(), &format!("{host}/e2e/flask:1"));
    build(&sb, &hosts, &spec, &format!("{host}/e2e/flask:1"));
    build(&sb, &hosts, &spec, &format!("{host}/e2e/flask:2"));
    let all = export_records(&sb);
    assert_eq!(all[0]["digest"], all[1]["digest"], "one image, two tags");

    let (code, log) = delete(&sb, &hosts, &["2", "--yes"]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("cannot delete tag 2 alone"), "{log}");
    assert!(
        log.contains("1 (export 1)"),
        "names the tag and its export: {log}"
    );
    assert!(log.contains("nothing was deleted"), "{log}");
    assert!(log.contains("--all-tags"), "the hint says how: {log}");
    assert_eq!(registry.manifest_status("e2e/flask", "1"), 200);
    assert_eq!(registry.manifest_status("e2e/flask", "2"), 200);
    assert!(
        skopeo()
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{host}/e2e/flask:1"))
            .output()
            .unwrap()
            .status
            .success(),
        "the other export's tag is still pullable"
    );
    assert_eq!(status_of(&sb, 1), "ok");
    assert_eq!(status_of(&sb, 2), "ok");

    let (code, log) = delete(&sb, &hosts, &["2", "--yes", "--all-tags"]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("tags 1, 2 went with it"), "{log}");
    assert!(log.contains("export 1 is marked deleted too"), "{log}");
    assert_eq!(registry.manifest_status("e2e/flask", "1"), 404);
    assert_eq!(registry.manifest_status("e2e/flask", "2"), 404);
    assert_eq!(status_of(&sb, 1), "deleted");
    assert_eq!(status_of(&sb, 2), "deleted");
    let first = &export_records(&sb)[0];
    assert_eq!(first["destinations"][0]["status"], "deleted");
}

#[test]
fn the_prompt_of_all_tags_lists_every_tag_that_goes() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tool("script") {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let hosts = [host.as_str()];
    let spec = write_app(sb.path(), &format!("{host}/e2e/prompt:a"));
    build(&sb, &hosts, &spec, &format!("{host}/e2e/prompt:a"));
    build(&sb, &hosts, &spec, &format!("{host}/e2e/prompt:b"));
    // script(1) gives stowage a terminal, so it asks; the answer is no.
    let command = format!(
        "{} --insecure-registry {host} exports delete 2 --all-tags",
        stowage_bin().display()
    );
    let mut cmd = assert_cmd::Command::new("script");
    stowage_env(&mut cmd, &sb.join("cache"));
    let out = cmd
        .args(["-qec", &command, "/dev/null"])
        .write_stdin("n\n")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("tags that go with it: a, b"), "{shown}");
    assert!(shown.contains("Delete? [y/N]"), "{shown}");
    assert!(shown.contains("not confirmed"), "{shown}");
    assert_eq!(registry.manifest_status("e2e/prompt", "a"), 200);
    assert_eq!(status_of(&sb, 2), "ok");
}

#[test]
fn docker_hub_deletes_the_exports_own_tag_and_all_tags_takes_the_rest() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let repo = unique("e2e-scope");
    let tag = |t: &str| format!("acme/{repo}:{t}");
    let hub = HubStandIn::start("alice", "s3cret", &[&tag("a"), &tag("b"), &tag("c")]);
    write_file(
        &sb.join("docker-config/config.json"),
        format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
            base64_of("alice:s3cret")
        ),
        0o600,
    );
    let stowage = || {
        let mut cmd = sb.stowage();
        cmd.env("STOWAGE_DOCKER_HUB_HOST", &registry.host)
            .env("STOWAGE_DOCKER_HUB_API", hub.url())
            .args(["--insecure-registry", &registry.host]);
        cmd
    };
    let spec = write_app(sb.path(), &format!("docker.io/acme/{repo}:a"));
    for t in ["a", "b"] {
        run_ok(
            stowage()
                .args(["build", "-f"])
                .arg(&spec)
                .args(["-o", &format!("docker.io/acme/{repo}:{t}")]),
        );
    }
    run_ok(stowage().args(["exports", "delete", "2", "--yes"]));
    assert!(hub.has_tag(&tag("a")), "the other export's tag stays");
    assert!(!hub.has_tag(&tag("b")));
    assert_eq!(status_of(&sb, 1), "ok");
    assert_eq!(status_of(&sb, 2), "deleted");

    run_ok(
        stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .args(["-o", &format!("docker.io/acme/{repo}:c")]),
    );
    let log = stowage()
        .args(["exports", "delete", "3", "--yes", "--all-tags"])
        .assert()
        .success()
        .get_output()
        .clone();
    let log = stderr_of(&log);
    assert!(log.contains("through the Docker Hub API"), "{log}");
    assert!(!hub.has_tag(&tag("a")), "--all-tags: {log}");
    assert!(!hub.has_tag(&tag("c")));
    assert_eq!(status_of(&sb, 1), "deleted", "{log}");
    assert_eq!(status_of(&sb, 3), "deleted");
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The tags `umoci` (not stowage) reads from the layout.
fn umoci_tags(layout: &Path) -> Vec<String> {
    let out = tool("umoci")
        .args(["ls", "--layout"])
        .arg(layout)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut tags: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    tags.sort();
    tags
}

fn blob_count(layout: &Path) -> usize {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn an_oci_layout_with_three_tags_loses_only_the_exports_own_tag() {
    if !require_tools(&["umoci", "skopeo"]) {
        return;
    }
    let sb = Sandbox::new();
    let layout = sb.join("out/layout");
    let at = |t: &str| format!("oci:{}:{t}", layout.display());
    let spec = write_app(sb.path(), "localhost/e2e/layout:a");
    build(&sb, &[], &spec, &at("a"));
    build(&sb, &[], &spec, &at("b"));
    write_file(&sb.join("workspace/notes.txt"), "another image\n", 0o644);
    build(&sb, &[], &spec, &at("c"));
    assert_eq!(umoci_tags(&layout), ["a", "b", "c"]);
    let before = blob_count(&layout);

    run_ok(sb.stowage().args(["exports", "delete", "2", "--yes"]));
    assert_eq!(umoci_tags(&layout), ["a", "c"]);
    assert_eq!(blob_count(&layout), before, "a still uses every blob b did");
    assert_eq!(status_of(&sb, 1), "ok");
    assert_eq!(status_of(&sb, 2), "deleted");

    // Export 3 wrote c, whose workspace layer, config and manifest only it uses.
    run_ok(sb.stowage().args(["exports", "delete", "3", "--yes"]));
    assert_eq!(umoci_tags(&layout), ["a"]);
    assert_eq!(blob_count(&layout), before - 3);
    let inspected = skopeo()
        .args(["inspect", &format!("oci:{}:a", layout.display())])
        .output()
        .unwrap();
    assert!(inspected.status.success(), "{}", stderr_of(&inspected));

    write_file(&sb.join("workspace/notes.txt"), "workspace notes\n", 0o644);
    build(&sb, &[], &spec, &at("d"));
    let (code, log) = delete(&sb, &[], &["4", "--yes", "--all-tags"]);
    assert_eq!(code, 0, "{log}");
    assert!(umoci_tags(&layout).is_empty());
    assert!(layout.join("index.json").is_file(), "the folder stays");
    assert_eq!(blob_count(&layout), 0);
    assert_eq!(status_of(&sb, 1), "deleted");
    assert_eq!(status_of(&sb, 4), "deleted");
}

#[test]
fn an_archive_written_again_by_a_later_export_is_that_exports() {
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "localhost/e2e/archive:v1");
    let archive = sb.join("app.tar");
    let dest = format!("docker-archive:{}", archive.display());
    build(&sb, &[], &spec, &dest);
    write_file(&sb.join("workspace/notes.txt"), "changed\n", 0o644);
    build(&sb, &[], &spec, &dest);

    let (code, log) = delete(&sb, &[], &["1", "--yes"]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("export 2 wrote"), "{log}");
    assert!(archive.exists(), "export 2's file stays");
    run_ok(sb.stowage().args(["exports", "delete", "2", "--yes"]));
    assert!(!archive.exists());
}
