//! What the user sees when a registry says no: wrong passwords, unknown
//! repositories and tags, a registry that is down, a plain-HTTP registry
//! that is not loopback without `--insecure-registry`. Each exits 1 with a message that says
//! what failed and where. And with `-vvv` no password or token is printed.

use std::fs;
use std::time::{Duration, Instant};

use crate::rig::registry::*;
use crate::rig::*;

/// Runs `cmd`, which must exit 1; returns its stderr.
fn fails_with_1(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().expect("run stowage");
    let stderr = stderr_of(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code 1 expected; stdout: {:?}; stderr:\n{stderr}",
        show(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "a failed command prints no result on stdout: {:?}",
        show(&out.stdout)
    );
    assert!(
        stderr.contains("error:"),
        "stderr has an error line: {stderr}"
    );
    stderr
}

fn assert_mentions(stderr: &str, what: &str, needles: &[&str]) {
    let lower = stderr.to_lowercase();
    assert!(
        needles.iter().any(|n| lower.contains(&n.to_lowercase())),
        "{what}: stderr should mention one of {needles:?}:\n{stderr}"
    );
}

/// The words a refused credential may be described with.
const REFUSED: [&str; 5] = [
    "refused the credentials",
    "unauthorized",
    "incorrect username or password",
    "authentication failed",
    "wrong password",
];

/// Builds the sample app into an OCI layout; returns the `oci:` source.
fn app_layout(sb: &Sandbox) -> String {
    let spec = write_app(&sb.join("app"), "localhost/unused:1");
    let src = format!("oci:{}:app", sb.join("layout").display());
    run_ok(
        sb.stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .args(["-o", &src]),
    );
    src
}

#[test]
fn login_with_a_wrong_password_fails_clearly() {
    let creds = Creds::new("erin", &unique_password());
    let Some(reg) = TestRegistry::htpasswd(creds) else {
        return;
    };
    let sb = Sandbox::new();
    let wrong = unique_password();
    let stderr = fails_with_1(
        stowage_insecure(&sb, &[&reg.host])
            .args(["login", &reg.host, "-u", "erin", "--password-stdin"])
            .write_stdin(wrong.clone()),
    );
    assert!(stderr.contains(&reg.host), "names the registry: {stderr}");
    assert_mentions(&stderr, "wrong password at login", &REFUSED);
    assert!(!stderr.contains(&wrong), "the password is never printed");
    assert!(
        !docker_config_path(&sb).exists(),
        "a refused login stores nothing"
    );
}

#[test]
fn docker_hub_login_with_a_wrong_password_fails_clearly() {
    let creds = Creds::new("acme", &unique_password());
    let Some(reg) = TestRegistry::token(creds, Duration::from_secs(60)) else {
        return;
    };
    let sb = Sandbox::new();
    let wrong = unique_password();
    let stderr = fails_with_1(
        stowage_insecure(&sb, &[&reg.host])
            .env("STOWAGE_DOCKER_HUB_HOST", &reg.host)
            .args(["login", "-u", "acme", "--password-stdin"])
            .write_stdin(wrong.clone()),
    );
    assert_mentions(&stderr, "wrong Docker Hub password", &REFUSED);
    assert_mentions(&stderr, "names Docker Hub", &["docker.io"]);
    assert!(!stderr.contains(&wrong), "the password is never printed");
    assert!(
        reg.token_server().refused() >= 1,
        "the token server saw the wrong password"
    );
    assert!(!docker_config_path(&sb).exists());
}

#[test]
fn push_with_a_wrong_password_fails_clearly() {
    let creds = Creds::new("frank", &unique_password());
    let Some(basic) = TestRegistry::htpasswd(creds) else {
        return;
    };
    let Some(token) = TestRegistry::token(
        Creds::new("acme", &unique_password()),
        Duration::from_secs(60),
    ) else {
        return;
    };
    let sb = Sandbox::new();
    let src = app_layout(&sb);
    let wrong = Creds::new("frank", &unique_password());
    let config = serde_json::json!({"auths": {
        basic.host.as_str(): {"auth": wrong.basic()},
        HUB_CONFIG_KEY: {"auth": Creds::new("acme", &wrong.password).basic()},
    }});
    fs::write(
        sb.mkdir("docker-config").join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();

    let stderr = fails_with_1(stowage_insecure(&sb, &[&basic.host]).args([
        "push",
        &src,
        &basic.reference("app/x:1"),
    ]));
    assert!(stderr.contains(&basic.host), "names the registry: {stderr}");
    assert_mentions(&stderr, "wrong password at push (htpasswd)", &REFUSED);
    assert!(!stderr.contains(&wrong.password));

    let stderr = fails_with_1(
        stowage_insecure(&sb, &[&token.host])
            .env("STOWAGE_DOCKER_HUB_HOST", &token.host)
            .args(["push", &src, "acme/app:1"]),
    );
    assert_mentions(&stderr, "wrong password at push (token)", &REFUSED);
    assert!(!stderr.contains(&wrong.password));
}

#[test]
fn push_without_credentials_says_to_log_in() {
    let Some(reg) = TestRegistry::htpasswd(Creds::new("gina", &unique_password())) else {
        return;
    };
    let sb = Sandbox::new();
    let src = app_layout(&sb);
    let stderr = fails_with_1(stowage_insecure(&sb, &[&reg.host]).args([
        "push",
        &src,
        &reg.reference("app/x:1"),
    ]));
    assert!(stderr.contains(&reg.host), "names the registry: {stderr}");
    assert!(
        stderr.contains("stowage login"),
        "the hint says how to log in: {stderr}"
    );
}

#[test]
fn unknown_repository_or_tag_fails_clearly() {
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let src = app_layout(&sb);
    run_ok(stowage_insecure(&sb, &[&reg.host]).args(["push", &src, &reg.reference("app/known:1")]));

    let missing_repo = reg.reference("nope/missing:1");
    let stderr = fails_with_1(stowage_insecure(&sb, &[&reg.host]).args(["inspect", &missing_repo]));
    assert!(
        stderr.contains("nope/missing"),
        "names the repository: {stderr}"
    );
    assert_mentions(&stderr, "missing repository", &["not found", "unknown"]);

    let missing_tag = reg.reference("app/known:no-such-tag");
    let stderr = fails_with_1(stowage_insecure(&sb, &[&reg.host]).args(["inspect", &missing_tag]));
    assert!(stderr.contains("no-such-tag"), "names the tag: {stderr}");
    assert_mentions(&stderr, "missing tag", &["not found", "unknown"]);

    let stderr = fails_with_1(
        stowage_insecure(&sb, &[&reg.host])
            .args(["archive", &missing_repo, "-o"])
            .arg(sb.join("never.tar")),
    );
    assert!(stderr.contains("nope/missing"), "archive: {stderr}");
    assert!(!sb.join("never.tar").exists(), "no archive is left behind");

    let stderr = fails_with_1(stowage_insecure(&sb, &[&reg.host]).args([
        "copy",
        &missing_tag,
        &format!("oci:{}", sb.join("never").display()),
    ]));
    assert!(stderr.contains("no-such-tag"), "copy: {stderr}");

    // A missing base is a failure (1), not a spec error (2).
    let spec = write_app_on(
        &sb.join("app-on-missing"),
        &missing_repo,
        &reg.reference("app/y:1"),
    );
    let stderr = fails_with_1(
        stowage_insecure(&sb, &[&reg.host])
            .args(["build", "-f"])
            .arg(&spec),
    );
    assert!(stderr.contains("nope/missing"), "build: {stderr}");
}

#[test]
fn registry_down_fails_clearly_and_soon() {
    let sb = Sandbox::new();
    let src = app_layout(&sb);
    // Nothing listens there; the flag makes stowage try plain HTTP too.
    let host = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let stderr = fails_with_1(stowage_insecure(&sb, &[&host]).args([
        "push",
        &src,
        &format!("{host}/app/x:1"),
    ]));
    let took = started.elapsed();
    assert!(stderr.contains(&host), "names the registry: {stderr}");
    assert_mentions(
        &stderr,
        "registry down",
        &["cannot reach", "connection refused", "cannot connect"],
    );
    assert!(
        took < Duration::from_secs(3),
        "a refused loopback connection is retried once, quickly; took {took:?}"
    );
}

/// The hint line of `stderr`.
fn hint_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("hint:"))
        .unwrap_or_else(|| panic!("a hint line: {stderr}"))
}

/// The export record whose destinations name `path`.
fn record_naming(sb: &Sandbox, path: &str) -> serde_json::Value {
    let text = run_ok(sb.stowage().args(["--json", "exports", "list"]));
    let records: serde_json::Value = serde_json::from_str(&text).expect("exports as JSON");
    records
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["destinations"].to_string().contains(path))
        .cloned()
        .unwrap_or_else(|| panic!("a record names {path}: {text}"))
}

/// A build to an unreachable registry and an archive: exit 1 soon, no
/// archive, a record saying neither destination got the image, and an
/// error that names the archive as not written. Returns stderr and how long it took.
fn build_to_unreachable(sb: &Sandbox, registry: &str) -> (String, Duration) {
    let spec = write_app(&sb.join("app"), "localhost/unused:1");
    // Once to a layout first: the timed build takes its layers from the cache.
    run_ok(
        sb.stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}", sb.join("warm").display())),
    );
    let archive = sb.join("app.tar");
    let started = Instant::now();
    let stderr = fails_with_1(
        sb.stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .args(["-o", &format!("{registry}/app/x:1"), "-o"])
            .arg(format!("docker-archive:{}", archive.display())),
    );
    let took = started.elapsed();
    let archive_text = archive.display().to_string();
    assert!(!archive.exists(), "the archive was not written");
    assert!(
        stderr.contains("nothing was written")
            && stderr.contains(&format!("not written: docker-archive:{archive_text}")),
        "names the archive as not written:\n{stderr}"
    );
    let record = record_naming(sb, &archive_text);
    assert_eq!(record["status"], "failed", "{record}");
    for destination in record["destinations"].as_array().expect("destinations") {
        assert_eq!(destination["status"], "failed", "{record}");
    }
    // reqwest and hyper's wrappers each said the same thing once more.
    for wrapper in ["client error (Connect)", "tcp connect error", "dns error"] {
        assert!(!stderr.contains(wrapper), "{wrapper}:\n{stderr}");
    }
    assert!(
        stderr.matches("Caused by:").count() <= 4,
        "only the causes that say something:\n{stderr}"
    );
    (stderr, took)
}

#[test]
fn connection_refused_on_loopback_fails_fast_without_the_insecure_flag() {
    let sb = Sandbox::new();
    let host = format!("127.0.0.1:{}", free_port());
    let (stderr, took) = build_to_unreachable(&sb, &host);
    assert!(
        took < Duration::from_secs(3),
        "one quick retry, then the error; took {took:?}:\n{stderr}"
    );
    assert!(stderr.contains("refused"), "says why:\n{stderr}");
    let hint = hint_line(&stderr);
    assert!(
        hint.contains(&format!("nothing listens at {host}")) && hint.contains("host and port"),
        "{hint}"
    );
    // The README: a loopback registry may answer plain HTTP without the flag.
    assert!(!stderr.contains("--insecure-registry"), "{stderr}");
}

#[test]
fn a_name_that_does_not_resolve_fails_within_seconds() {
    let sb = Sandbox::new();
    // `.invalid` never resolves (RFC 6761), online or offline.
    let (stderr, took) = build_to_unreachable(&sb, "nonexistent.invalid");
    assert!(
        took < Duration::from_secs(6),
        "one retry after a second, then the error; took {took:?}:\n{stderr}"
    );
    let hint = hint_line(&stderr);
    assert!(
        hint.contains("the name nonexistent.invalid does not resolve") && hint.contains("DNS"),
        "{hint}"
    );
    assert!(!hint.contains("--insecure-registry"), "{hint}");
}

/// The rig's registry as a host that is not loopback: Linux connects
/// 0.0.0.0 to this machine, but the address is not in 127.0.0.0/8, so it
/// stands for any other host on the network.
fn not_loopback(reg: &TestRegistry) -> String {
    let host = reg.host.replace("127.0.0.1", "0.0.0.0");
    assert!(host.starts_with("0.0.0.0:"), "{host}");
    host
}

#[test]
fn plain_http_registry_without_insecure_flag_names_the_flag() {
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let src = app_layout(&sb);
    let host = not_loopback(&reg);
    let dest = format!("{host}/app/x:1");
    let flag = format!("--insecure-registry {host}");
    let stderr = fails_with_1(sb.stowage().args(["push", &src, &dest]));
    assert!(
        stderr.contains(&flag),
        "push: the hint names `{flag}`:\n{stderr}"
    );
    let stderr = fails_with_1(sb.stowage().args(["inspect", &dest]));
    assert!(
        stderr.contains(&flag),
        "inspect: the hint names `{flag}`:\n{stderr}"
    );
    // Another host's flag does not open this one, nor does the registry's loopback name.
    let stderr = fails_with_1(
        sb.stowage()
            .args(["--insecure-registry", "127.0.0.1:1"])
            .args(["--insecure-registry", &reg.host])
            .args(["push", &src, &dest]),
    );
    assert!(stderr.contains(&flag), "{stderr}");
    assert!(
        reg.access_log().iter().all(|l| l.method != "PUT"),
        "nothing was pushed over plain HTTP"
    );
    // With the flag it goes.
    run_ok(
        sb.stowage()
            .args(["--insecure-registry", &host])
            .args(["push", &src, &dest]),
    );
}

/// No secret, nor its base64 form, nor an Authorization header in `stderr`.
fn assert_no_secrets(stderr: &str, creds: &Creds, tokens: &[String], what: &str) {
    assert!(
        stderr.lines().count() >= 5,
        "{what}: -vvv logs the HTTP requests:\n{stderr}"
    );
    assert!(
        !stderr.contains(&creds.password),
        "{what}: the password appears in stderr"
    );
    assert!(
        !stderr.contains(&creds.basic()),
        "{what}: base64(user:password) appears in stderr"
    );
    assert!(
        !stderr.to_lowercase().contains("authorization:"),
        "{what}: a header is logged"
    );
    for token in tokens {
        // Any of a JWT's three parts is a secret's worth; the signature is
        // what makes it one.
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !stderr.contains(token) && !stderr.contains(signature),
            "{what}: a bearer token appears in stderr"
        );
    }
}

#[test]
fn verbose_logs_never_show_passwords_or_tokens() {
    let basic_creds = Creds::new("hank", &unique_password());
    let token_creds = Creds::new("acme", &unique_password());
    let Some(basic) = TestRegistry::htpasswd(basic_creds.clone()) else {
        return;
    };
    let Some(token) = TestRegistry::token(token_creds.clone(), Duration::from_secs(60)) else {
        return;
    };
    let sb = Sandbox::new();
    let src = app_layout(&sb);
    htpasswd_logs_hold_no_secrets(&sb, &basic, &basic_creds, &src);
    token_logs_hold_no_secrets(&sb, &token, &token_creds, &src);
}

/// htpasswd: login, push and pull, all at -vvv.
fn htpasswd_logs_hold_no_secrets(
    sb: &Sandbox,
    basic: &TestRegistry,
    basic_creds: &Creds,
    src: &str,
) {
    let out = stowage_insecure(sb, &[&basic.host])
        .args([
            "-vvv",
            "login",
            &basic.host,
            "-u",
            &basic_creds.user,
            "--password-stdin",
        ])
        .write_stdin(basic_creds.password.clone())
        .assert()
        .success()
        .get_output()
        .clone();
    let login_err = stderr_of(&out);
    assert!(
        !login_err.contains(&basic_creds.password),
        "login -vvv printed the password"
    );
    let out = stowage_insecure(sb, &[&basic.host])
        .args(["-vvv", "push", src, &basic.reference("app/v:1")])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("/v2/app/v/"),
        "-vvv logs request URLs: {stderr}"
    );
    assert_no_secrets(&stderr, basic_creds, &[], "push to htpasswd -vvv");
    let out = stowage_insecure(sb, &[&basic.host])
        .args(["-vvv", "archive", &basic.reference("app/v:1"), "-o"])
        .arg(sb.join("v.tar"))
        .assert()
        .success()
        .get_output()
        .clone();
    assert_no_secrets(
        &stderr_of(&out),
        basic_creds,
        &[],
        "archive from htpasswd -vvv",
    );
}

/// stowage at `args`, with `token` standing in for Docker Hub.
fn hub(sb: &Sandbox, token: &TestRegistry, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = stowage_insecure(sb, &[&token.host]);
    cmd.env("STOWAGE_DOCKER_HUB_HOST", &token.host).args(args);
    cmd
}

/// Token auth: login and push; then a wrong password at -vvv.
fn token_logs_hold_no_secrets(sb: &Sandbox, token: &TestRegistry, token_creds: &Creds, src: &str) {
    let login = hub(
        sb,
        token,
        &["-vvv", "login", "-u", "acme", "--password-stdin"],
    )
    .write_stdin(token_creds.password.clone())
    .assert()
    .success()
    .get_output()
    .clone();
    let push = hub(sb, token, &["-vvv", "push", src, "acme/verbose:1"])
        .assert()
        .success()
        .get_output()
        .clone();
    let tokens: Vec<String> = token
        .token_server()
        .issued()
        .into_iter()
        .map(|t| t.token)
        .collect();
    assert!(tokens.len() >= 2, "tokens were issued: {tokens:?}");
    let login_err = stderr_of(&login);
    assert!(!login_err.contains(&token_creds.password));
    for t in &tokens {
        assert!(
            !login_err.contains(t.rsplit('.').next().unwrap()),
            "login -vvv printed a token"
        );
    }
    assert_no_secrets(
        &stderr_of(&push),
        token_creds,
        &tokens,
        "push to Docker Hub -vvv",
    );

    let wrong = Creds::new("acme", &unique_password());
    let out = hub(
        sb,
        token,
        &["-vvv", "login", "-u", "acme", "--password-stdin"],
    )
    .write_stdin(wrong.password.clone())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(
        !stderr.contains(&wrong.password),
        "a refused password is not echoed"
    );
    assert!(!stderr.contains(&wrong.basic()));
}

/// A store blob damaged between two runs (same size, other bytes) is caught
/// before its upload and named, and no manifest reaches the registry. (A
/// blob the same run wrote is trusted: nothing else writes the store.)
#[test]
fn a_damaged_store_blob_is_caught_before_upload() {
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), "localhost/stowage-e2e/damaged:1");
    let layout = sb.join("layout");
    let source = format!("oci:{}:v1", layout.display());
    run_ok(
        sb.stowage()
            .args(["-q", "build", "-f"])
            .arg(&spec)
            .args(["-o", &source]),
    );
    let blobs = sb.join("cache/blobs/sha256");
    let largest = fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&largest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&largest, &bytes).unwrap();

    let out = sb
        .stowage()
        .args(["--insecure-registry", &reg.host])
        .args(["push", &source, &reg.reference("e2e/damaged:1")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = largest.file_name().unwrap().to_string_lossy();
    assert!(
        stderr.contains("corrupt") && stderr.contains(name.as_ref()),
        "names the damaged blob: {stderr}"
    );
    assert_eq!(reg.manifest_status("e2e/damaged", "1"), 404);
}
