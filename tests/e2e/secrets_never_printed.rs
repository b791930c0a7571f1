//! Secrets stay secret: no password, Basic credential or bearer token in
//! stowage's output at any verbosity (success or failure), config.json
//! written 0600 by `stowage login`, and TLS verified unless
//! `--insecure-registry` names the host.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use base64::Engine as _;

use crate::rig::proxy::{Action, FaultProxy, Forward, summary};
use crate::rig::registry::FaultRegistry as Registry;
use crate::rig::*;

const USER: &str = "secret-keeper";

/// Every form of the secret that must never be printed.
fn forms(password: &str) -> Vec<String> {
    let pair = format!("{USER}:{password}");
    vec![
        password.to_owned(),
        pair.clone(),
        base64::engine::general_purpose::STANDARD.encode(&pair),
    ]
}

/// Asserts none of `secrets` (nor a token's signature alone) is in the output.
fn assert_clean(what: &str, out: &std::process::Output, secrets: &[String]) {
    let text = format!("{}{}", show(&out.stdout), show(&out.stderr));
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} printed a secret:\n{text}"
        );
        if let Some(signature) = secret.rsplit('.').next().filter(|s| s.len() > 40) {
            assert!(!text.contains(signature), "{what} printed a token:\n{text}");
        }
    }
}

fn app_layout(sb: &Sandbox) -> String {
    let spec = write_app(&sb.mkdir("app"), "localhost/stowage-e2e/secrets:1");
    let layout = sb.join("layout");
    run_ok(
        sb.stowage()
            .args(["-q", "build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:v1", layout.display())),
    );
    format!("oci:{}:v1", layout.display())
}

#[test]
fn tokens_and_passwords_never_reach_the_output_even_at_vvv() {
    let password = format!("pw-{}", unique("tok").replace('-', "Q"));
    let Some(registry) = Registry::token(USER, &password, Duration::from_secs(300), 300) else {
        return;
    };
    let sb = Sandbox::new();
    let source = app_layout(&sb);
    let host = registry.host.clone();

    // login -vvv: the password comes on stdin, is checked, and is stored.
    let login = sb
        .stowage()
        .args([
            "-vvv",
            "--insecure-registry",
            &host,
            "login",
            &host,
            "-u",
            USER,
        ])
        .arg("--password-stdin")
        .write_stdin(format!("{password}\n"))
        .output()
        .unwrap();
    assert!(login.status.success(), "{}", show(&login.stderr));
    let config = sb.join("docker-config/config.json");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config.json holds a password: 0600");

    let mut runs = vec![("login", login)];
    runs.push((
        "push",
        sb.stowage()
            .args(["-vvv", "--insecure-registry", &host, "push", &source])
            .arg(registry.reference("secrets/app:v1"))
            .output()
            .unwrap(),
    ));
    runs.push((
        "archive",
        Sandbox::new()
            .stowage()
            .env("DOCKER_CONFIG", sb.join("docker-config"))
            .args(["-vvv", "--insecure-registry", &host, "archive"])
            .arg(registry.reference("secrets/app:v1"))
            .arg("-o")
            .arg(sb.join("pulled.tar"))
            .output()
            .unwrap(),
    ));
    for (what, out) in &runs[1..] {
        assert!(out.status.success(), "{what}: {}", show(&out.stderr));
    }
    // A wrong password fails, without printing the one it was given.
    let wrong = format!("{password}-wrong");
    let failed = sb
        .stowage()
        .args([
            "-vvv",
            "--insecure-registry",
            &host,
            "login",
            &host,
            "-u",
            USER,
        ])
        .arg("--password-stdin")
        .write_stdin(format!("{wrong}\n"))
        .output()
        .unwrap();
    assert!(!failed.status.success());
    runs.push(("failed login", failed));

    let tokens = registry.tokens().issued();
    assert!(tokens.len() >= 2, "tokens were issued: {}", tokens.len());
    let mut secrets = forms(&password);
    secrets.extend(forms(&wrong));
    secrets.extend(tokens);
    for (what, out) in &runs {
        assert_clean(what, out, &secrets);
    }
    // -vvv did say something, so the check above is not vacuous.
    assert!(
        show(&runs[1].1.stderr).contains("PUT"),
        "{}",
        show(&runs[1].1.stderr)
    );
}

#[test]
fn basic_credentials_never_reach_the_output_even_at_vvv() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let password = format!("pw-{}", unique("basic").replace('-', "Z"));
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"))
    );
    // Basic auth in front of the registry; the uploads' Location carries a
    // signed state that must not be printed either.
    let front = FaultProxy::start(&registry.host, move |req| {
        if req.authorization.as_deref() == Some(expected.as_str()) {
            return Action::Forward(Forward {
                strip_auth: true,
                ..Forward::default()
            });
        }
        Action::Respond {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), "Basic realm=\"secrets\"".into())],
            body: b"{}".to_vec(),
        }
    });
    let sb = Sandbox::new();
    let source = app_layout(&sb);
    let login = sb
        .stowage()
        .args([
            "-vvv",
            "--insecure-registry",
            &front.addr,
            "login",
            &front.addr,
        ])
        .args(["-u", USER, "--password-stdin"])
        .write_stdin(format!("{password}\n"))
        .output()
        .unwrap();
    assert!(login.status.success(), "{}", show(&login.stderr));
    let push = sb
        .stowage()
        .args(["-vvv", "--insecure-registry", &front.addr, "push", &source])
        .arg(front.reference("secrets/basic:v1"))
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "{}\n{}",
        show(&push.stderr),
        summary(&front.seen())
    );
    let states: Vec<String> = front
        .seen()
        .iter()
        .filter_map(|s| {
            s.req
                .target
                .split_once("_state=")
                .map(|(_, v)| v.to_owned())
        })
        .map(|v| v.split('&').next().unwrap_or("").to_owned())
        .collect();
    assert!(!states.is_empty(), "uploads carried a _state");
    let mut secrets = forms(&password);
    secrets.extend(states);
    assert_clean("login", &login, &secrets);
    assert_clean("push", &push, &secrets);
}

#[test]
fn tls_is_verified_unless_the_host_is_named_insecure() {
    let Some(registry) = Registry::tls() else {
        return;
    };
    let sb = Sandbox::new();
    let source = app_layout(&sb);
    let dest = registry.reference("secrets/tls:v1");
    let push = |extra: &[&str]| {
        sb.stowage()
            .args(extra)
            .args(["push", &source, &dest])
            .output()
            .unwrap()
    };
    for extra in [&[][..], &["--insecure-registry", "127.0.0.1:1"][..]] {
        let out = push(extra);
        let stderr = show(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains("certificate"), "{stderr}");
        assert!(stderr.contains("not trusted"), "a hint: {stderr}");
    }
    let out = push(&["--insecure-registry", &registry.host]);
    assert!(out.status.success(), "{}", show(&out.stderr));
    assert_eq!(
        parse_printed(&show(&out.stdout)).digest,
        registry.skopeo_digest("secrets/tls:v1")
    );
}
