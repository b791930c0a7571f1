//! The README's first command: the bundled example builds with no network,
//! prints its reference, both outputs are valid for independent tools, and
//! the image starts and answers HTTP, as the README's `docker run` says.

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::{Value, json};

use crate::rig::http::{HttpResponse, http_request};
use crate::rig::registry::free_port;
use crate::rig::*;

/// What `cargo run` compiles in the README; the tests use the stowage they built.
const CARGO_RUN: &str = "cargo run --release -- ";

/// The README's text, for the commands it shows.
fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The README's first command: the first `sh` block after its "Build the
/// bundled example" line.
fn readme_build_command() -> String {
    let readme = readme();
    let from = readme
        .find("Build the bundled example")
        .expect("the README introduces the bundled example");
    let block = &readme[from..];
    let start = block.find("```sh\n").expect("a sh block follows") + "```sh\n".len();
    let end = block[start..].find("```").expect("the block ends") + start;
    block[start..end].to_string()
}

/// Runs the README's first command in `sb`, on a copy of `examples/notebook`
/// at the same relative path, with this test's stowage in place of `cargo
/// run`; returns what it printed.
fn run_readme_build(sb: &Sandbox) -> Printed {
    let command = readme_build_command();
    assert!(
        command.contains(CARGO_RUN),
        "the README's first command runs stowage with `{CARGO_RUN}`: {command}"
    );
    let examples = sb.mkdir("examples");
    run_ok(
        tool("cp")
            .arg("-a")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/notebook"))
            .arg(&examples),
    );
    let command = command.replace(CARGO_RUN, &format!("'{}' ", stowage_bin().display()));
    let mut sh = Command::new("sh");
    stowage_env(&mut sh, &sb.join("cache"));
    // The README says no network is needed; a build that reaches for one fails.
    sh.env("CARGO_NET_OFFLINE", "true").args(["-c", &command]);
    parse_printed(&run_ok(&mut sh))
}

#[test]
fn bundled_example_builds_as_the_readme_says() {
    let sb = Sandbox::new();
    let printed = run_readme_build(&sb);
    let layout = sb.join("target/notebook-oci");
    let archive = sb.join("target/notebook.tar.gz");
    assert_eq!(
        printed.name.as_deref(),
        Some("oci:target/notebook-oci:demo"),
        "the README says it prints oci:target/notebook-oci:demo@sha256:…"
    );
    let docker = DockerArchive::open(&archive);
    // Familiar form, as `docker save` writes it.
    assert_eq!(docker.repo_tags(), vec!["acme/notebook:demo"]);
    let config = docker.config();
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"APP_HOME=/opt/app"), "{env:?}");
    assert!(
        !env.iter().any(|e| e.starts_with("NOTEBOOK_API_TOKEN")),
        "{env:?}"
    );
    assert_eq!(config["config"]["User"], "1000:100");
    assert_eq!(
        config["config"]["Entrypoint"],
        json!(["/opt/app/bin/notebook-server"])
    );
    assert_eq!(config["config"]["Cmd"], json!(["--port=8888"]));
    assert_eq!(config["config"]["ExposedPorts"], json!({"8888/tcp": {}}));

    // The layout has one untagged-or-latest image, valid for oci-image-tool.
    let index: Value = Layout::open(&layout).index();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(
        manifests[0]["digest"].as_str(),
        Some(printed.digest.as_str())
    );
    if require_tool("oci-image-tool") {
        run_ok(
            tool("oci-image-tool")
                .args(["validate", "--type", "image"])
                .arg(&layout),
        );
    }
    if require_tool("skopeo") {
        let plain = gunzip_to_tar(&archive);
        let inspect: Value = serde_json::from_str(&run_ok(
            skopeo().args(["inspect", &format!("docker-archive:{}", plain.display())]),
        ))
        .unwrap();
        assert_eq!(
            inspect["Labels"]["org.opencontainers.image.source"],
            "https://example.org/notebook"
        );
    }
}

/// GETs `path` from the server on `port`, retrying while it starts.
fn get_when_up(port: u16, path: &str) -> HttpResponse {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match http_request(&format!("127.0.0.1:{port}"), "GET", path, &[], b"") {
            Ok(response) => return response,
            Err(e) if Instant::now() > deadline => {
                panic!("the example's server did not answer on port {port} in 20 s: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn bundled_example_starts_and_answers_http_as_the_readme_says() {
    if !docker_ready() {
        return;
    }
    let readme = readme();
    for line in [
        "docker load -i target/notebook.tar.gz",
        "docker run --rm -p 8888:8888 docker.io/acme/notebook:demo",
        "curl http://localhost:8888/",
    ] {
        assert!(readme.contains(line), "the README shows `{line}`");
    }
    let sb = Sandbox::new();
    run_readme_build(&sb);
    // A name of its own, so parallel runs on one dockerd do not meet; the
    // copy keeps the digest.
    let image = unique_ref("notebook");
    let archive = sb.join("notebook-test.tar.gz");
    run_ok(sb.stowage().args([
        "copy",
        &format!(
            "docker-archive:{}",
            sb.join("target/notebook.tar.gz").display()
        ),
        &format!("docker-archive:{}:{image}", archive.display()),
    ]));
    let _image = DockerImage(image.clone());
    let loaded = run_ok(docker().args(["load", "-i"]).arg(&archive));
    assert!(
        loaded.contains(&image),
        "docker load names {image}: {loaded}"
    );

    // The test dockerd has no bridge network, so the container shares the
    // host's and the server is told another port than the README's 8888.
    let port = free_port();
    let name = unique("notebook");
    let _container = DockerContainer(name.clone());
    let port_arg = format!("--port={port}");
    run_ok(docker().args([
        "run",
        "-d",
        "--network",
        "host",
        "--name",
        &name,
        &image,
        &port_arg,
    ]));
    let page = get_when_up(port, "/");
    let body = String::from_utf8_lossy(&page.body);
    assert_eq!(page.status, 200, "{body}");
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    for part in [
        "<h1>notebook 1.0.0</h1>",
        "<li>hello</li>",
        "<a href=\"/analysis.ipynb\">analysis.ipynb</a>",
        "<a href=\"/README.md\">README.md</a>",
    ] {
        assert!(body.contains(part), "the page shows {part}: {body}");
    }
    let notes = get_when_up(port, "/README.md");
    assert_eq!(notes.status, 200);
    assert_eq!(notes.body, b"Notes kept with the exported image.\n");
    assert_eq!(get_when_up(port, "/../etc/passwd").status, 404);

    let logs = docker().args(["logs", &name]).output().unwrap();
    let stdout = String::from_utf8_lossy(&logs.stdout);
    assert!(
        stdout.contains("notebook app from /opt/app serving /home/user/work"),
        "the server starts in the workspace: {stdout}"
    );
}
