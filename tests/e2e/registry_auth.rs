//! Credentials and auth against real registries: Docker Hub's flow (token
//! auth for service `registry.docker.io`, JWTs signed by the test token
//! server, reached through `STOWAGE_DOCKER_HUB_HOST`), htpasswd Basic auth,
//! every place credentials are read from, `stowage login`/`logout`, and a
//! push that outlives its token.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::rig::proxy::Proxy;
use crate::rig::registry::*;
use crate::rig::*;

/// stowage aimed at a token registry standing in for Docker Hub.
fn hub_stowage(sb: &Sandbox, hub: &str, insecure: &str) -> assert_cmd::Command {
    let mut cmd = stowage_insecure(sb, &[insecure]);
    cmd.env("STOWAGE_DOCKER_HUB_HOST", hub);
    cmd
}

/// Builds the sample app into an OCI layout in the sandbox; returns the
/// `oci:` source and its digest.
fn app_layout(sb: &Sandbox) -> (String, String) {
    let spec = write_app(&sb.join("app"), "docker.io/acme/app:unused");
    let src = format!("oci:{}:app", sb.join("layout").display());
    let printed = parse_printed(&run_ok(
        sb.stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .args(["-o", &src]),
    ));
    (src, printed.digest)
}

/// The tokens the server issued to `user` for a scope naming `repo` with
/// `push`.
fn push_tokens(reg: &TestRegistry, user: &str, repo: &str) -> usize {
    reg.token_server()
        .issued()
        .iter()
        .filter(|t| t.subject == user)
        .filter(|t| {
            t.scopes
                .iter()
                .any(|s| s.contains(&format!(":{repo}:")) && s.contains("push"))
        })
        .count()
}

#[test]
fn docker_hub_push_with_credentials_from_config_json() {
    if !require_tool("skopeo") {
        return;
    }
    let creds = Creds::new("acme", &unique_password());
    let Some(reg) = TestRegistry::token(creds.clone(), Duration::from_secs(60)) else {
        return;
    };
    let sb = Sandbox::new();
    write_docker_config(&sb, HUB_CONFIG_KEY, &creds);
    let (src, digest) = app_layout(&sb);

    // A one-part-namespace name: docker.io/acme/app.
    let printed = parse_printed(&run_ok(hub_stowage(&sb, &reg.host, &reg.host).args([
        "push",
        &src,
        "acme/app:1",
    ])));
    assert_eq!(printed.digest, digest);
    assert!(
        printed
            .name
            .as_deref()
            .is_some_and(|n| n.ends_with("acme/app") && !n.contains("127.0.0.1")),
        "stdout names Docker Hub's repository, not the stand-in: {printed:?}"
    );
    assert_eq!(reg.skopeo_digest("acme/app:1"), digest);
    assert!(
        push_tokens(&reg, "acme", "acme/app") >= 1,
        "a push token for acme/app was asked with the config.json credentials: {:?}",
        reg.token_server().issued()
    );

    // Every spelling of Docker Hub is the same registry, and
    // `--insecure-registry docker.io` covers it.
    for (dest, repo_tag) in [
        ("docker.io/acme/app:2", "acme/app:2"),
        ("index.docker.io/acme/app:3", "acme/app:3"),
        ("registry-1.docker.io/acme/app:4", "acme/app:4"),
        ("docker://docker.io/acme/app:5", "acme/app:5"),
    ] {
        let printed = parse_printed(&run_ok(
            hub_stowage(&sb, &reg.host, "docker.io").args(["push", &src, dest]),
        ));
        assert_eq!(printed.digest, digest, "{dest}");
        assert_eq!(reg.skopeo_digest(repo_tag), digest, "{dest}");
    }
}

#[test]
fn docker_hub_official_images_get_library() {
    if !require_tool("skopeo") {
        return;
    }
    let creds = Creds::new("acme", &unique_password());
    let Some(reg) = TestRegistry::token(creds.clone(), Duration::from_secs(60)) else {
        return;
    };
    let sb = Sandbox::new();
    write_docker_config(&sb, HUB_CONFIG_KEY, &creds);
    let (src, digest) = app_layout(&sb);
    // `busybox` is docker.io/library/busybox:latest.
    run_ok(hub_stowage(&sb, &reg.host, &reg.host).args(["push", &src, "busybox"]));
    assert_eq!(reg.skopeo_digest("library/busybox:latest"), digest);
    // And pulls by the short name read it back (an anonymous pull token).
    let other = Sandbox::new();
    let raw = other
        .stowage()
        .env("STOWAGE_DOCKER_HUB_HOST", &reg.host)
        .args(["--insecure-registry", &reg.host])
        .args(["inspect", "--raw", "manifest", "busybox:latest"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(sha256_digest(&raw), digest);
}

#[test]
fn docker_hub_login_then_push_then_logout() {
    if !require_tool("skopeo") {
        return;
    }
    let creds = Creds::new("acme", &unique_password());
    let Some(reg) = TestRegistry::token(creds.clone(), Duration::from_secs(60)) else {
        return;
    };
    let sb = Sandbox::new();
    let config = docker_config_path(&sb);
    assert!(!config.exists());
    run_ok(
        hub_stowage(&sb, &reg.host, &reg.host)
            .args(["login", "-u", &creds.user, "--password-stdin"])
            .write_stdin(format!("{}\n", creds.password)),
    );
    let meta = fs::metadata(&config).expect("stowage login writes config.json");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "config.json holds a password: mode 0600"
    );
    let doc = read_json(&config);
    assert_eq!(
        doc["auths"][HUB_CONFIG_KEY]["auth"],
        creds.basic(),
        "Docker Hub's key in {doc}"
    );
    assert_eq!(
        keys(&doc["auths"]),
        vec![HUB_CONFIG_KEY.to_owned()],
        "one entry, under Docker Hub's key"
    );
    assert!(
        reg.token_server()
            .issued()
            .iter()
            .any(|t| t.subject == "acme"),
        "login checked the credentials against the registry"
    );

    let (src, digest) = app_layout(&sb);
    let spec = write_app(&sb.join("app2"), "acme/app:1");
    // The spec's `image` is the destination when no -o is given.
    let printed = parse_printed(&run_ok(
        hub_stowage(&sb, &reg.host, &reg.host)
            .args(["build", "-f"])
            .arg(&spec),
    ));
    assert_eq!(printed.digest, digest, "same app, same digest");
    assert_eq!(reg.skopeo_digest("acme/app:1"), digest);
    run_ok(hub_stowage(&sb, &reg.host, &reg.host).args(["push", &src, "acme/app:pushed"]));
    assert_eq!(reg.skopeo_digest("acme/app:pushed"), digest);

    run_ok(hub_stowage(&sb, &reg.host, &reg.host).args(["logout"]));
    let doc = read_json(&config);
    assert!(
        doc["auths"].get(HUB_CONFIG_KEY).is_none(),
        "logout removes Docker Hub's entry: {doc}"
    );
    // Without credentials the token server grants pull only: the push fails.
    let out = hub_stowage(&sb, &reg.host, &reg.host)
        .args(["push", &src, "acme/app:after-logout"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("stowage login"),
        "the error says to log in: {stderr}"
    );
}

#[test]
fn push_outlives_its_token() {
    if !require_tool("skopeo") {
        return;
    }
    const LIFETIME: Duration = Duration::from_secs(2);
    let creds = Creds::new("acme", &unique_password());
    let Some(reg) = TestRegistry::token(creds.clone(), LIFETIME) else {
        return;
    };
    // Uploads through a proxy held to 1 MiB/s: the app's layers (2 MiB of
    // random bytes and two busybox copies) take twice the token's life.
    let proxy = Proxy::start(&reg.host, Some(1 << 20));
    let sb = Sandbox::new();
    write_docker_config(&sb, HUB_CONFIG_KEY, &creds);
    let spec = write_app(&sb.join("app"), "acme/slow:1");
    write_file(
        &sb.join("app/library/data/random.bin"),
        random_bytes(unique_seed(), 2 << 20),
        0o644,
    );
    let started = Instant::now();
    let out = hub_stowage(&sb, &proxy.host, &proxy.host)
        .args(["build", "-f"])
        .arg(&spec)
        .args(["-o", "acme/slow:1", "--jobs", "1", "--chunk-size", "64KiB"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = stderr_of(&out);
    let issued = reg.token_server().issued();
    let rejected = reg.access_log().iter().filter(|l| l.status == 401).count();
    eprintln!(
        "push took {took:?}; {} tokens issued; the registry answered 401 {rejected} times; uploaded {} bytes",
        issued.len(),
        proxy.up_bytes()
    );
    assert!(
        out.status.success(),
        "the push must survive its token's expiry; exit {:?}, stderr:\n{stderr}",
        out.status.code()
    );
    let printed = parse_printed(&String::from_utf8(out.stdout).unwrap());
    assert!(
        took > LIFETIME * 2,
        "the push took {took:?}, not longer than the {LIFETIME:?} token: the test proves nothing"
    );
    assert!(
        issued.len() >= 2,
        "a {took:?} push with {LIFETIME:?} tokens needs a new token: {issued:?}"
    );
    assert_eq!(reg.skopeo_digest("acme/slow:1"), printed.digest);
}

#[test]
fn htpasswd_login_then_push() {
    if !require_tool("skopeo") {
        return;
    }
    let creds = Creds::new("bob", &unique_password());
    let Some(reg) = TestRegistry::htpasswd(creds.clone()) else {
        return;
    };
    let sb = Sandbox::new();
    run_ok(
        stowage_insecure(&sb, &[&reg.host])
            .args(["login", &reg.host, "-u", &creds.user, "--password-stdin"])
            .write_stdin(creds.password.clone()),
    );
    let config = docker_config_path(&sb);
    assert_eq!(
        fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let doc = read_json(&config);
    assert_eq!(doc["auths"][&reg.host]["auth"], creds.basic(), "{doc}");

    let (src, digest) = app_layout(&sb);
    run_ok(stowage_insecure(&sb, &[&reg.host]).args(["push", &src, &reg.reference("app/x:1")]));
    assert_eq!(reg.skopeo_digest("app/x:1"), digest);

    run_ok(stowage_insecure(&sb, &[&reg.host]).args(["logout", &reg.host]));
    assert!(read_json(&config)["auths"].get(&reg.host).is_none());
}

/// Pushes the sample app to `reg` with the sandbox's credential setup and
/// checks skopeo reads it back.
fn push_with_stored_credentials(sb: &Sandbox, reg: &TestRegistry, path_env: Option<&Path>) {
    let (src, digest) = app_layout(sb);
    let mut cmd = stowage_insecure(sb, &[&reg.host]);
    if let Some(dir) = path_env {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", dir.display()));
    }
    let out = cmd
        .args(["push", &src, &reg.reference("app/stored:1")])
        .assert()
        .get_output()
        .clone();
    assert!(
        out.status.success(),
        "push with stored credentials: {}",
        stderr_of(&out)
    );
    assert_eq!(reg.skopeo_digest("app/stored:1"), digest);
}

#[test]
fn credentials_from_podman_auth_file() {
    if !require_tool("skopeo") {
        return;
    }
    let creds = Creds::new("carol", &unique_password());
    let Some(reg) = TestRegistry::htpasswd(creds.clone()) else {
        return;
    };
    let sb = Sandbox::new();
    // stowage_env points REGISTRY_AUTH_FILE here; no config.json at all.
    let doc = json!({"auths": {reg.host.as_str(): {"auth": creds.basic()}}});
    fs::write(sb.join("auth.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
    push_with_stored_credentials(&sb, &reg, None);
}

/// A `docker-credential-NAME` helper that knows one server's credentials
/// and records each request in `log`.
fn write_credential_helper(dir: &Path, name: &str, server: &str, creds: &Creds, log: &Path) {
    let script = format!(
        r#"#!/bin/sh
# A docker credential helper for stowage's tests.
read -r server
echo "$1 $server" >> '{log}'
if [ "$1" = get ] && [ "$server" = '{server}' ]; then
    printf '{{"ServerURL":"%s","Username":"%s","Secret":"%s"}}\n' '{server}' '{user}' '{secret}'
    exit 0
fi
echo "credentials not found in native keychain"
exit 1
"#,
        log = log.display(),
        user = creds.user,
        secret = creds.password,
    );
    write_file(
        &dir.join(format!("docker-credential-{name}")),
        script,
        0o755,
    );
}

#[test]
fn credentials_from_cred_helpers_and_creds_store() {
    if !require_tool("skopeo") {
        return;
    }
    let creds = Creds::new("dave", &unique_password());
    let Some(reg) = TestRegistry::htpasswd(creds.clone()) else {
        return;
    };
    for (case, config) in [
        (
            "credHelpers",
            json!({"credHelpers": {reg.host.as_str(): "stowagetest"}}),
        ),
        ("credsStore", json!({"credsStore": "stowagetest"})),
    ] {
        let sb = Sandbox::new();
        let bin = sb.mkdir("bin");
        let log = sb.join("helper.log");
        write_credential_helper(&bin, "stowagetest", &reg.host, &creds, &log);
        let dir = sb.mkdir("docker-config");
        fs::write(
            dir.join("config.json"),
            serde_json::to_vec(&config).unwrap(),
        )
        .unwrap();
        push_with_stored_credentials(&sb, &reg, Some(&bin));
        let asked = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            asked.contains(&format!("get {}", reg.host)),
            "{case}: the helper was asked for {}: {asked:?}",
            reg.host
        );
    }
}

/// A Docker Hub base and a Docker Hub destination: the base layer is
/// mounted from acme/base into acme/on-base, which needs one token scoped
/// for both repositories (pull on the source, push on the destination).
#[test]
fn docker_hub_mount_uses_a_token_for_both_repositories() {
    if !require_tool("skopeo") {
        return;
    }
    let creds = Creds::new("acme", &unique_password());
    let Some(reg) = TestRegistry::token(creds.clone(), Duration::from_secs(60)) else {
        return;
    };
    let base = push_busybox_base(&reg, "acme/base:1", 1 << 20);
    let sb = Sandbox::new();
    write_docker_config(&sb, HUB_CONFIG_KEY, &creds);
    // Docker Hub spellings of the base and of the destination (the spec's
    // `image`).
    let spec = write_app_on(&sb.join("app"), "acme/base:1", "acme/on-base:1");
    let out = hub_stowage(&sb, &reg.host, &reg.host)
        .args(["build", "-f"])
        .arg(&spec)
        .assert()
        .success()
        .get_output()
        .clone();
    let printed = parse_printed(&String::from_utf8(out.stdout.clone()).unwrap());
    assert_eq!(reg.skopeo_digest("acme/on-base:1"), printed.digest);
    let manifest: Value =
        serde_json::from_slice(&reg.skopeo_inspect("acme/on-base:1", &["--raw"])).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], base.layer_digest);
    assert!(
        manifest["annotations"]["org.opencontainers.image.base.name"]
            .as_str()
            .is_some_and(|n| n.contains("acme/base")),
        "base.name annotation: {manifest}"
    );
    let encoded = base.layer_digest.replace(':', "%3A");
    let log = reg.access_log();
    let mounted = log.iter().any(|l| {
        l.method == "POST"
            && l.uri.starts_with("/v2/acme/on-base/blobs/uploads/?")
            && l.uri.contains(&encoded)
            && l.uri.contains("from=acme%2Fbase")
            && l.status == 201
    });
    let tokens: Vec<Vec<String>> = reg
        .token_server()
        .issued()
        .into_iter()
        .map(|t| t.scopes)
        .collect();
    assert!(
        mounted,
        "the base layer is mounted from acme/base (201); tokens asked: {tokens:?}; stowage said: {}; registry saw: {:?}",
        stderr_of(&out),
        summarize_access(&log)
    );
    assert!(
        tokens.iter().any(|scopes| {
            scopes
                .iter()
                .any(|s| s.starts_with("repository:acme/base:") && s.contains("pull"))
                && scopes
                    .iter()
                    .any(|s| s.starts_with("repository:acme/on-base:") && s.contains("push"))
        }),
        "one token request names both repositories: {tokens:?}"
    );
}

/// `exports delete` on a token registry other than Docker Hub: distribution
/// answers a manifest DELETE only with a token that grants `delete`.
#[test]
fn deleting_an_export_from_a_token_registry_asks_for_delete() {
    if !require_tool("skopeo") {
        return;
    }
    let creds = Creds::new("deleter", &unique_password());
    let Some(reg) = TestRegistry::token(creds.clone(), Duration::from_secs(60)) else {
        return;
    };
    let sb = Sandbox::new();
    write_docker_config(&sb, &reg.host, &creds);
    let spec = write_app(&sb.join("app"), &reg.reference("team/app:1"));
    let insecure = ["--insecure-registry", reg.host.as_str()];
    let printed = parse_printed(&run_ok(
        sb.stowage().args(insecure).args(["build", "-f"]).arg(&spec),
    ));
    assert_eq!(reg.skopeo_digest("team/app:1"), printed.digest);

    run_ok(
        sb.stowage()
            .args(insecure)
            .args(["exports", "delete", "1", "--yes"]),
    );
    let manifest = format!("/v2/team/app/manifests/{}", printed.digest);
    let log = reg.access_log();
    assert!(
        log.iter()
            .any(|l| l.method == "DELETE" && l.uri == manifest && l.status == 202),
        "the manifest DELETE was accepted: {:?}",
        summarize_access(&log)
    );
    assert!(
        reg.token_server().issued().iter().any(|t| t
            .scopes
            .iter()
            .any(|s| s == "repository:team/app:pull,push,delete")),
        "a token with delete was asked for: {:?}",
        reg.token_server()
            .issued()
            .iter()
            .map(|t| &t.scopes)
            .collect::<Vec<_>>()
    );
}
