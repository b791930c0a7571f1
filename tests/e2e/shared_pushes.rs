//! Issue 26: eight exports over one base, started at once from one store, pushing to one new repository of a real registry, all succeed.
//!
//! Distribution rewrites a repository's link to a blob when a second client
//! finishes uploading (or mounting) the same blob, and for that moment a
//! manifest naming it is refused with `MANIFEST_BLOB_UNKNOWN`: about one
//! round in six failed before stowage took turns on a blob's upload within
//! one store and retried such a manifest after pushing what was missing.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Child;

use crate::rig::http::http_request;
use crate::rig::registry::{TestRegistry, push_busybox_base, write_app_on};
use crate::rig::{Sandbox, stowage_process, write_file};

/// Apps exported at once in a round.
const APPS: usize = 8;
/// Rounds, each to a new repository.
const ROUNDS: usize = 10;
/// Incompressible bytes in the base's layer, so the eight pushes of it overlap.
const BASE_RANDOM: usize = 6 << 20;

/// Eight app folders over `base`, each with a file of its own in the workspace.
fn write_apps(sb: &Sandbox, base: &str) -> Vec<PathBuf> {
    (0..APPS)
        .map(|app| {
            let root = sb.mkdir(format!("app{app}"));
            let spec = write_app_on(&root, base, "app");
            write_file(
                &root.join("workspace/app.txt"),
                format!("app number {app}\n"),
                0o644,
            );
            spec
        })
        .collect()
}

/// The tags `repo` holds, from the registry's own `tags/list`.
fn registry_tags(reg: &TestRegistry, repo: &str) -> BTreeSet<String> {
    let resp = http_request(&reg.host, "GET", &format!("/v2/{repo}/tags/list"), &[], b"")
        .expect("GET tags/list");
    assert_eq!(resp.status, 200, "tags/list of {repo}");
    let doc: serde_json::Value = serde_json::from_slice(&resp.body).expect("tags/list JSON");
    doc["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn eight_exports_over_one_base_to_one_new_repository_all_succeed() {
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let base = push_busybox_base(&reg, "fleet/base:1", BASE_RANDOM);
    let specs = write_apps(&sb, &base.reference);
    let cache = sb.join("cache");
    fs::create_dir_all(&cache).unwrap();
    let mut retried = 0;
    for round in 0..ROUNDS {
        let repo = format!("fleet/round{round}");
        let running: Vec<(usize, Child)> = specs
            .iter()
            .enumerate()
            .map(|(app, spec)| {
                let mut cmd = stowage_process(&sb, &cache);
                cmd.args(["-v", "build", "-f"])
                    .arg(spec)
                    .args(["-o", &format!("docker://{}/{repo}:app{app}", reg.host)]);
                (app, cmd.spawn().expect("start stowage"))
            })
            .collect();
        for (app, child) in running {
            let out = child.wait_with_output().expect("wait for stowage");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "round {round}, app {app} failed:\n{stderr}"
            );
            retried += stderr.matches("pushing what is missing").count();
        }
        let expected: BTreeSet<String> = (0..APPS).map(|app| format!("app{app}")).collect();
        assert_eq!(registry_tags(&reg, &repo), expected, "round {round}");
    }
    eprintln!("{retried} manifest PUT(s) retried over {ROUNDS} rounds");
}
