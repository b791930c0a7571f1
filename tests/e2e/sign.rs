//! cosign-format signatures on a real docker-registry: checked with openssl
//! over the payload blob fetched with the registry API (not stowage), and
//! with `stowage verify`; a tampered payload pushed by hand fails both; two
//! keys keep two signatures; a cosign-encrypted key written from cosign's
//! published format (hashlib.scrypt + PyNaCl) opens only with its password;
//! `exports delete` removes the signature tag.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::rig::http::http_request;
use crate::rig::libraries::pytools_python;
use crate::rig::registry::TestRegistry;
use crate::rig::*;

/// An openssl P-256 key pair in `dir`: (`NAME.pem`, `NAME.pub.pem`).
pub(crate) fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let ok = StdCommand::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&key)
        .status()
        .expect("run openssl genpkey");
    assert!(ok.success());
    let ok = StdCommand::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("run openssl pkey");
    assert!(ok.success());
    (key, public)
}

/// Builds the sample app into `reference` (with `extra` flags); the pushed digest.
fn build(sb: &Sandbox, host: &str, reference: &str, extra: &[&str]) -> String {
    let spec = write_app(sb.path(), reference);
    let stdout = run_ok(
        sb.stowage()
            .args(["--insecure-registry", host, "build", "-f"])
            .arg(&spec)
            .args(["-o", reference])
            .args(extra),
    );
    parse_printed(&stdout).digest
}

fn get(host: &str, path: &str) -> (u16, Vec<u8>) {
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let response =
        http_request(host, "GET", path, &[("Accept", accept)], b"").expect("registry answers");
    (response.status, response.body)
}

/// The manifest at the signature tag of `digest`, read with skopeo.
fn signature_manifest(host: &str, repo: &str, digest: &str) -> Option<Value> {
    let tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    let out = skopeo()
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{host}/{repo}:{tag}"))
        .output()
        .expect("run skopeo");
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("the signature manifest is JSON"))
}

/// The one signature at `digest`'s tag: its manifest, payload bytes and base64 signature.
fn only_signature(host: &str, repo: &str, digest: &str) -> (Value, Vec<u8>, String) {
    let manifest = signature_manifest(host, repo, digest).expect("a signature tag");
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    assert_eq!(layers.len(), 1, "{manifest}");
    let signature = layers[0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .expect("the signature annotation")
        .to_string();
    let payload = blob(host, repo, layers[0]["digest"].as_str().unwrap());
    (manifest, payload, signature)
}

/// `stowage verify REFERENCE --key PUBLIC`, which must pass: its stdout.
fn verify_ok(sb: &Sandbox, host: &str, reference: &str, public: &Path) -> String {
    run_ok(
        sb.stowage()
            .args(["--insecure-registry", host, "verify", reference, "--key"])
            .arg(public),
    )
}

fn blob(host: &str, repo: &str, digest: &str) -> Vec<u8> {
    let (status, body) = get(host, &format!("/v2/{repo}/blobs/{digest}"));
    assert_eq!(status, 200, "blob {digest}");
    assert_eq!(sha256_digest(&body), digest);
    body
}

/// `openssl dgst -sha256 -verify` of a base64 DER signature over `payload`.
fn openssl_verifies(dir: &Path, public: &Path, payload: &[u8], signature_b64: &str) -> bool {
    let payload_path = dir.join("payload.json");
    let signature_path = dir.join("signature.der");
    std::fs::write(&payload_path, payload).unwrap();
    std::fs::write(&signature_path, STANDARD.decode(signature_b64).unwrap()).unwrap();
    let out = StdCommand::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&signature_path)
        .arg(&payload_path)
        .output()
        .expect("run openssl dgst");
    out.status.success() && show(&out.stdout).contains("Verified OK")
}

/// Uploads `bytes` as a blob of `repo` through the registry API.
fn upload_blob(host: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    let start = http_request(
        host,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    )
    .expect("start an upload");
    assert_eq!(start.status, 202);
    let location = start
        .header("Location")
        .expect("upload location")
        .to_string();
    let path = location
        .strip_prefix(&format!("http://{host}"))
        .unwrap_or(&location);
    let separator = if path.contains('?') { '&' } else { '?' };
    let done = http_request(
        host,
        "PUT",
        &format!("{path}{separator}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    )
    .expect("finish the upload");
    assert_eq!(done.status, 201, "{}", show(&done.body));
    digest
}

fn put_manifest(host: &str, repo: &str, tag: &str, manifest: &Value) {
    let bytes = serde_json::to_vec(manifest).unwrap();
    let media = "application/vnd.oci.image.manifest.v1+json";
    let put = http_request(
        host,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", media)],
        &bytes,
    )
    .expect("put the manifest");
    assert_eq!(put.status, 201, "{}", show(&put.body));
}

/// Runs `cmd`, which must fail with `code`: its stderr.
fn fails(cmd: &mut assert_cmd::Command, code: i32) -> String {
    let out = cmd.assert().code(code).get_output().clone();
    show(&out.stderr)
}

#[test]
fn a_signed_build_verifies_with_openssl_and_stowage_and_a_tampered_payload_fails_both() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tools(&["openssl", "skopeo"]) {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let (key, public) = key_pair(sb.path(), "signer");
    let repo = "e2e/signed";
    let key_arg = key.display().to_string();
    let digest = build(
        &sb,
        &host,
        &format!("{host}/{repo}:v1"),
        &["--sign-key", &key_arg],
    );

    let (manifest, payload, signature) = only_signature(&host, repo, &digest);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let config = blob(&host, repo, manifest["config"]["digest"].as_str().unwrap());
    let config: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0], layer["digest"]);

    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claims["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        claims["critical"]["identity"]["docker-reference"],
        format!("{host}/{repo}")
    );
    assert_eq!(
        claims["critical"]["type"],
        "cosign container image signature"
    );
    assert!(openssl_verifies(sb.path(), &public, &payload, &signature));

    let verified = verify_ok(&sb, &host, &format!("{host}/{repo}:v1"), &public);
    assert!(
        verified.contains(&format!("verified: {host}/{repo}@{digest}")),
        "{verified}"
    );

    // A payload that names another repository, under the same signature, pushed by hand.
    let tampered = show(&payload).replace(&format!("{host}/{repo}"), &format!("{host}/e2e/evil"));
    assert_ne!(tampered.as_bytes(), payload.as_slice());
    assert!(!openssl_verifies(
        sb.path(),
        &public,
        tampered.as_bytes(),
        &signature
    ));
    let tampered_digest = upload_blob(&host, repo, tampered.as_bytes());
    let mut forged = manifest.clone();
    forged["layers"][0]["digest"] = Value::from(tampered_digest);
    forged["layers"][0]["size"] = Value::from(tampered.len());
    let tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    put_manifest(&host, repo, &tag, &forged);
    let err = fails(
        sb.stowage()
            .args([
                "--insecure-registry",
                &host,
                "verify",
                &format!("{host}/{repo}:v1"),
                "--key",
            ])
            .arg(&public),
        1,
    );
    assert!(
        err.contains(&format!("no signature of {host}/{repo}@{digest} verifies")),
        "{err}"
    );
    assert!(err.contains("does not match the payload"), "{err}");
}

#[test]
fn two_keys_keep_two_signatures_and_either_verifies_but_a_stranger_does_not() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tools(&["openssl", "skopeo"]) {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let insecure = ["--insecure-registry", host.as_str()];
    let (first, first_pub) = key_pair(sb.path(), "first");
    let (second, second_pub) = key_pair(sb.path(), "second");
    let (_, stranger_pub) = key_pair(sb.path(), "stranger");
    let digest = build(&sb, &host, &format!("{host}/e2e/twice:v1"), &[]);
    assert!(
        signature_manifest(&host, "e2e/twice", &digest).is_none(),
        "unsigned so far"
    );

    let reference = format!("{host}/e2e/twice:v1");
    let tag = run_ok(
        sb.stowage()
            .args(insecure)
            .args(["sign", &reference, "--key"])
            .arg(&first),
    );
    assert_eq!(
        tag.trim(),
        format!(
            "{host}/e2e/twice:sha256-{}.sig",
            digest.trim_start_matches("sha256:")
        )
    );
    // push --sign-key to the same repository: the second signature joins the first.
    run_ok(
        sb.stowage()
            .args(insecure)
            .args(["push", &reference, &reference, "--sign-key"])
            .arg(&second),
    );
    // Signing again with the first key adds nothing.
    run_ok(
        sb.stowage()
            .args(insecure)
            .args(["sign", &reference, "--key"])
            .arg(&first),
    );
    let manifest = signature_manifest(&host, "e2e/twice", &digest).expect("signatures");
    assert_eq!(
        manifest["layers"].as_array().map(Vec::len),
        Some(2),
        "{manifest}"
    );

    for public in [&first_pub, &second_pub] {
        let out = run_ok(
            sb.stowage()
                .args(insecure)
                .args(["verify", &reference, "--key"])
                .arg(public),
        );
        assert_eq!(
            out.lines().filter(|l| l.starts_with("verified: ")).count(),
            1,
            "{out}"
        );
    }
    let err = fails(
        sb.stowage()
            .args(insecure)
            .args(["verify", &reference, "--key"])
            .arg(&stranger_pub),
        1,
    );
    assert!(
        err.contains(&format!("no signature of {host}/e2e/twice@{digest}")),
        "{err}"
    );
}

/// A cosign key (cosign's published format: scrypt N=32768 r=8 p=1 over the
/// password, NaCl secretbox over the PKCS#8 DER, JSON in an `ENCRYPTED
/// SIGSTORE PRIVATE KEY` PEM block) of the openssl key `pem`.
fn cosign_key(pem: &Path, password: &str, out: &Path) {
    let script = r#"
import base64, hashlib, json, os, subprocess, sys
pem, password, out = sys.argv[1:4]
der = subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", pem, "-outform", "DER"],
                     check=True, capture_output=True).stdout
from nacl.secret import SecretBox
salt, nonce = os.urandom(32), os.urandom(24)
key = hashlib.scrypt(password.encode(), salt=salt, n=32768, r=8, p=1, maxmem=64 << 20, dklen=32)
box = SecretBox(key).encrypt(der, nonce)
doc = {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
               "salt": base64.b64encode(salt).decode()},
       "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
       "ciphertext": base64.b64encode(box.ciphertext).decode()}
body = base64.b64encode(json.dumps(doc).encode()).decode()
lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
with open(out, "w") as f:
    f.write(f"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{lines}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
"#;
    let status = StdCommand::new(pytools_python())
        .arg("-c")
        .arg(script)
        .arg(pem)
        .arg(password)
        .arg(out)
        .status()
        .expect("run the tools venv's python");
    assert!(
        status.success(),
        "writing the cosign key (needs PyNaCl in the tools venv)"
    );
}

/// A P-256 key pair whose private half is a cosign-encrypted key under `password`: (`cosign.key`, public PEM).
fn encrypted_key_pair(sb: &Sandbox, password: &str) -> (PathBuf, PathBuf) {
    let (pem, public) = key_pair(sb.path(), "plain");
    let key = sb.join("cosign.key");
    cosign_key(&pem, password, &key);
    (key, public)
}

#[test]
fn a_cosign_encrypted_key_signs_with_its_password_and_a_wrong_one_fails_without_showing_it() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tools(&["openssl", "skopeo"]) || !libraries::require_pytools() {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let password = "correct horse 7f3a";
    let (key, public) = encrypted_key_pair(&sb, password);
    let reference = format!("{host}/e2e/cosignkey:v1");
    let spec = write_app(sb.path(), &reference);
    let build = |password: &str| {
        let mut cmd = sb.stowage();
        cmd.env("COSIGN_PASSWORD", password)
            .args(["--insecure-registry", &host, "build", "-f"])
            .arg(&spec)
            .args(["-o", &reference, "--sign-key"])
            .arg(&key);
        cmd
    };

    let wrong = "battery staple 9c1e";
    let out = build(wrong).assert().code(2).get_output().clone();
    let (stdout, stderr) = (show(&out.stdout), show(&out.stderr));
    assert!(
        stderr.contains(&format!("the password does not open {}", key.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("COSIGN_PASSWORD"),
        "the hint says what to do: {stderr}"
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains(wrong) && !text.contains(password), "{text}");
    }
    // Nothing was pushed: the key is opened before the build.
    let (status, _) = get(&host, "/v2/e2e/cosignkey/manifests/v1");
    assert_eq!(status, 404);

    let out = build(password).assert().success().get_output().clone();
    let digest = parse_printed(&show(&out.stdout)).digest;
    assert!(!show(&out.stderr).contains(password));
    let verified = verify_ok(&sb, &host, &reference, &public);
    assert!(
        verified.contains(&format!("@{digest} signature")),
        "{verified}"
    );
    let records = run_ok(sb.stowage().args(["--json", "exports"]));
    assert!(!records.contains(password), "{records}");
    // The record's note is structured: the image signed and the tag its signatures are at.
    let records: Value = serde_json::from_str(&records).unwrap();
    let signed = records
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["notes"].as_array().cloned().unwrap_or_default())
        .find_map(|note| note.get("signed").cloned())
        .unwrap_or_else(|| panic!("no signed note in {records}"));
    assert_eq!(signed["image"], format!("{host}/e2e/cosignkey@{digest}"));
    assert_eq!(
        signed["tag"],
        format!("{host}/e2e/cosignkey:sha256-{}.sig", &digest[7..])
    );

    // Without a password and without a terminal: a clear error, not a hang.
    let err = fails(
        sb.stowage()
            .env_remove("COSIGN_PASSWORD")
            .args(["sign", &reference, "--key"])
            .arg(&key)
            .write_stdin(""),
        2,
    );
    assert!(
        err.contains("is encrypted and no password was given"),
        "{err}"
    );
}

#[test]
fn sign_key_without_a_registry_destination_is_a_usage_error() {
    if !require_tool("openssl") {
        return;
    }
    let sb = Sandbox::new();
    let (key, _) = key_pair(sb.path(), "k");
    let spec = write_app(sb.path(), "example.org/app:v1");
    let err = fails(
        sb.stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}", sb.join("layout").display()))
            .arg("--sign-key")
            .arg(&key),
        2,
    );
    assert!(err.contains("no destination is a registry"), "{err}");
    assert!(!sb.join("layout").exists());
}

#[test]
fn exports_delete_removes_the_signature_tag_with_the_image() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tools(&["openssl", "skopeo"]) {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let (key, _) = key_pair(sb.path(), "k");
    let key_arg = key.display().to_string();
    let digest = build(
        &sb,
        &host,
        &format!("{host}/e2e/gone:v1"),
        &["--sign-key", &key_arg],
    );
    assert!(signature_manifest(&host, "e2e/gone", &digest).is_some());
    let out = sb
        .stowage()
        .args([
            "--insecure-registry",
            &host,
            "exports",
            "delete",
            "1",
            "--yes",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        show(&out.stderr).contains("deleted signatures sha256-"),
        "{}",
        show(&out.stderr)
    );
    assert!(signature_manifest(&host, "e2e/gone", &digest).is_none());
    let (status, _) = get(&host, &format!("/v2/e2e/gone/manifests/{digest}"));
    assert_eq!(status, 404);
}

#[test]
fn a_signed_docker_hub_export_has_its_signature_tag_deleted_through_the_hub_api() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tools(&["openssl", "skopeo"]) {
        return;
    }
    let sb = Sandbox::new();
    let (key, _) = key_pair(sb.path(), "k");
    let tag = unique("t");
    // The local registry plays registry-1.docker.io for the push and the signature.
    let spec = write_app(sb.path(), &format!("docker.io/acme/e2e-hubsig:{tag}"));
    let stowage = |hub_api: &str| {
        let mut cmd = sb.stowage();
        cmd.env("STOWAGE_DOCKER_HUB_HOST", &registry.host)
            .env("STOWAGE_DOCKER_HUB_API", hub_api)
            .args(["--insecure-registry", &registry.host]);
        cmd
    };
    let stdout = run_ok(
        stowage("http://127.0.0.1:9")
            .args(["build", "-f"])
            .arg(&spec)
            .arg("--sign-key")
            .arg(&key),
    );
    let digest = parse_printed(&stdout).digest;
    let signature_tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    let payload_layer = signature_manifest(&registry.host, "acme/e2e-hubsig", &digest)
        .expect("the signature is in the registry")["layers"][0]["digest"]
        .clone();
    let payload = blob(
        &registry.host,
        "acme/e2e-hubsig",
        payload_layer.as_str().unwrap(),
    );
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claims["critical"]["identity"]["docker-reference"], "index.docker.io/acme/e2e-hubsig",
        "named as cosign names Docker Hub repositories"
    );

    let image_tag = format!("acme/e2e-hubsig:{tag}");
    let sig_tag = format!("acme/e2e-hubsig:{signature_tag}");
    let hub = crate::rig::hub::HubStandIn::start("alice", "s3cret", &[&image_tag, &sig_tag]);
    let auth = STANDARD.encode("alice:s3cret");
    write_file(
        &sb.join("docker-config/config.json"),
        format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}}}}"#),
        0o600,
    );
    let out = stowage(&hub.url())
        .args(["exports", "delete", "1", "--yes"])
        .assert()
        .success()
        .get_output()
        .clone();
    let log = show(&out.stderr);
    assert!(
        log.contains(&format!("deleted signatures {signature_tag}")),
        "{log}"
    );
    assert!(!hub.has_tag(&image_tag) && !hub.has_tag(&sig_tag));
    let deletes: Vec<String> = hub
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("DELETE "))
        .collect();
    assert_eq!(
        deletes,
        [
            format!("DELETE /v2/repositories/acme/e2e-hubsig/tags/{tag}/"),
            format!("DELETE /v2/repositories/acme/e2e-hubsig/tags/{signature_tag}/"),
        ]
    );
}

/// Runs `stowage ARGS` on a pseudo-terminal (util-linux `script`) and types
/// `password` once the prompt shows: the exit code and everything the terminal showed.
fn on_a_terminal(sb: &Sandbox, args: &[&str], password: &str) -> (i32, String) {
    use std::io::{Read, Write};
    let quoted: Vec<String> = std::iter::once(stowage_bin().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut child = StdCommand::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env("STOWAGE_CACHE_DIR", sb.join("cache"))
        .env("STOWAGE_STATE_DIR", sb.join("state"))
        .env("DOCKER_CONFIG", sb.join("docker-config"))
        .env("REGISTRY_AUTH_FILE", sb.join("auth.json"))
        .env_remove("COSIGN_PASSWORD")
        .current_dir(sb.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run script (util-linux)");
    let mut stdout = child.stdout.take().unwrap();
    let mut shown = Vec::new();
    let mut buf = [0u8; 4096];
    while !show(&shown).contains("Enter password for private key") {
        let n = stdout.read(&mut buf).expect("read the terminal");
        assert!(n > 0, "no password prompt: {}", show(&shown));
        shown.extend_from_slice(&buf[..n]);
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
    stdout.read_to_end(&mut shown).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), show(&shown))
}

#[test]
fn on_a_terminal_the_password_is_asked_without_echo() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tools(&["openssl", "script"]) || !libraries::require_pytools() {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let password = "typed pw 41d2";
    let (key, public) = encrypted_key_pair(&sb, password);
    let reference = format!("{host}/e2e/typed:v1");
    let digest = build(&sb, &host, &reference, &[]);
    let key_arg = key.display().to_string();
    let args = [
        "--insecure-registry",
        &host,
        "sign",
        &reference,
        "--key",
        &key_arg,
    ];

    let (code, shown) = on_a_terminal(&sb, &args, "not it 0b9e");
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("the password does not open"), "{shown}");
    assert!(
        !shown.contains("not it 0b9e"),
        "the typed password was echoed: {shown}"
    );

    let (code, shown) = on_a_terminal(&sb, &args, password);
    assert_eq!(code, 0, "{shown}");
    assert!(
        !shown.contains(password),
        "the typed password was echoed: {shown}"
    );
    let verified = verify_ok(&sb, &host, &reference, &public);
    assert!(
        verified.contains(&format!("@{digest} signature")),
        "{verified}"
    );
}

#[test]
fn an_attested_export_is_signed_as_the_index_it_was_pushed_as() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tools(&["openssl", "skopeo"]) {
        return;
    }
    let sb = Sandbox::new();
    let host = registry.host.clone();
    let (key, public) = key_pair(sb.path(), "signer");
    let repo = "e2e/attested-signed";
    let reference = format!("{host}/{repo}:v1");
    let key_arg = key.display().to_string();
    let digest = build(
        &sb,
        &host,
        &reference,
        &[
            "--attest",
            "sbom",
            "--attest",
            "provenance",
            "--sign-key",
            &key_arg,
        ],
    );

    let out = skopeo()
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    assert!(out.status.success(), "{}", show(&out.stderr));
    assert_eq!(
        sha256_digest(&out.stdout),
        digest,
        "the tag holds the index"
    );
    let index: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(manifests.len(), 2, "{index}");
    assert_eq!(
        manifests[1]["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );

    let (_, payload, signature) = only_signature(&host, repo, &digest);
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claims["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert!(openssl_verifies(sb.path(), &public, &payload, &signature));
    let platform_digest = manifests[0]["digest"].as_str().unwrap();
    assert!(
        signature_manifest(&host, repo, platform_digest).is_none(),
        "only the pushed index is signed"
    );
    let verified = verify_ok(&sb, &host, &reference, &public);
    assert!(
        verified.contains(&format!("verified: {host}/{repo}@{digest}")),
        "{verified}"
    );
}
