//! Real registries, started from test code: one `docker-registry` (Debian's
//! distribution 2.8) process per test, on a free loopback port with its own
//! storage folder, so tests run in parallel and each can read its own
//! registry's access log. This is the one place the tests start a registry.
//!
//! * [`TestRegistry::anonymous`]: no auth, deletes enabled.
//! * [`TestRegistry::htpasswd`]: Basic auth from a bcrypt htpasswd file
//!   written by `htpasswd -Bbn` (apache2-utils).
//! * [`TestRegistry::token`]: Bearer token auth as Docker Hub does it: the
//!   registry trusts the certificate of a [`TokenServer`], which signs real
//!   RS256 JWTs for service `registry.docker.io` and hands out short-lived
//!   tokens.
//! * [`TestRegistry::tls`]: HTTPS with a self-signed certificate for
//!   127.0.0.1.
//!
//! Any of them can be killed and restarted on the same port with the same
//! storage, as a crashed registry comes back. [`FaultRegistry`] is the
//! reliability tests' handle on one.
//!
//! Also here: credentials and Docker's config.json, and content and images
//! for the registry tests (hand-made bases pushed with skopeo, random
//! bytes). The proxies in front of registries are in [`super::proxy`].
//!
//! Quirks of distribution 2.8.2 met while writing this:
//! * it accepts a token up to 60 s after its `exp` (see [`super::token`]).
//! * `Location` headers are built from the request's Host, so a client
//!   that talks through a proxy keeps talking through it.
//! * upload URLs carry a `_state` signed with `http.secret`: the config
//!   fixes it so a restarted registry still accepts its old sessions.
//! * every `REGISTRY_*` environment variable overrides its config, and the
//!   rig exports podman's `REGISTRY_AUTH_FILE`: the process is started
//!   without them.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::http::http_request;
use super::token::{HUB_SERVICE, TOKEN_ISSUER, TokenServer, self_signed};
use super::*;

/// Docker Hub's key in config.json.
pub const HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// How long a registry may take to answer its first `GET /v2/`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A free TCP port on 127.0.0.1 (the kernel's pick; released before return,
/// so a caller that binds it later may race another process: callers retry).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// Username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub user: String,
    pub password: String,
}

impl Creds {
    pub fn new(user: &str, password: &str) -> Creds {
        Creds {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    /// `user:password`, as skopeo's `--creds` wants it.
    pub fn colon(&self) -> String {
        format!("{}:{}", self.user, self.password)
    }

    /// base64 of `user:password`, config.json's `auth` field.
    pub fn basic(&self) -> String {
        STANDARD.encode(self.colon())
    }
}

/// A per-test credential a test can search for in stderr: long, unique and
/// unlike anything else stowage prints.
pub fn unique_password() -> String {
    format!("pw-{}-Zq9", unique("secret").replace('-', "x"))
}

/// Writes `$DOCKER_CONFIG/config.json` with `auths[key] = {auth}`, where
/// DOCKER_CONFIG is the one [`stowage_env`] gives stowage for this sandbox.
pub fn write_docker_config(sb: &Sandbox, key: &str, creds: &Creds) -> PathBuf {
    let dir = sb.mkdir("docker-config");
    let path = dir.join("config.json");
    let doc = json!({"auths": {key: {"auth": creds.basic()}}});
    fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    path
}

/// The path of config.json that stowage reads and writes in this sandbox.
pub fn docker_config_path(sb: &Sandbox) -> PathBuf {
    sb.join("docker-config/config.json")
}

// ---------------------------------------------------------------------------
// The registry process

/// How a [`TestRegistry`] authenticates.
pub enum RegistryAuth {
    Anonymous,
    Htpasswd(Creds),
    Token(TokenServer),
    /// Anonymous, over HTTPS with a self-signed certificate.
    Tls,
}

/// One line of distribution's access log (combined log format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine {
    pub method: String,
    /// Path and query, as the client sent them.
    pub uri: String,
    pub status: u16,
}

/// A running `docker-registry` on 127.0.0.1, killed (and its storage
/// removed) when dropped.
pub struct TestRegistry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    pub auth: RegistryAuth,
    config: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// An anonymous registry with deletes enabled, or None (after the
    /// `SKIPPED:` line) when docker-registry is missing outside CI.
    pub fn anonymous() -> Option<TestRegistry> {
        if !require_tool("docker-registry") {
            return None;
        }
        Some(TestRegistry::start(RegistryAuth::Anonymous))
    }

    /// A registry behind htpasswd Basic auth with one user.
    pub fn htpasswd(creds: Creds) -> Option<TestRegistry> {
        if !require_tools(&["docker-registry", "htpasswd"]) {
            return None;
        }
        Some(TestRegistry::start(RegistryAuth::Htpasswd(creds)))
    }

    /// A registry behind token auth for service `registry.docker.io`, with
    /// a token server that knows `creds` and hands out tokens that the
    /// registry accepts for `lifetime` (whole seconds, at least 1).
    pub fn token(creds: Creds, lifetime: Duration) -> Option<TestRegistry> {
        TestRegistry::token_advertising(creds, lifetime, lifetime.as_secs())
    }

    /// Like [`TestRegistry::token`], with tokens whose answer says they
    /// live `expires_in` seconds, whatever they really live.
    pub fn token_advertising(
        creds: Creds,
        lifetime: Duration,
        expires_in: u64,
    ) -> Option<TestRegistry> {
        if !require_tools(&["docker-registry", "openssl"]) {
            return None;
        }
        let server = TokenServer::start(vec![creds], lifetime, expires_in);
        Some(TestRegistry::start(RegistryAuth::Token(server)))
    }

    /// An anonymous registry serving HTTPS with a self-signed certificate.
    pub fn tls() -> Option<TestRegistry> {
        if !require_tools(&["docker-registry", "openssl"]) {
            return None;
        }
        Some(TestRegistry::start(RegistryAuth::Tls))
    }

    fn start(auth: RegistryAuth) -> TestRegistry {
        let dir = tempfile::Builder::new()
            .prefix("stowage-registry-")
            .tempdir()
            .expect("create the registry's folder");
        // http.tls sits under http:, auth at the top level.
        let mut http_extra = String::new();
        let mut auth_yaml = String::new();
        match &auth {
            RegistryAuth::Anonymous => {}
            RegistryAuth::Htpasswd(creds) => {
                let out = StdCommand::new("htpasswd")
                    .args(["-Bbn", &creds.user, &creds.password])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(
                    out.status.success(),
                    "htpasswd -Bbn failed: {}",
                    show(&out.stderr)
                );
                let file = dir.path().join("htpasswd");
                fs::write(&file, &out.stdout).unwrap();
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: stowage-test\n    path: {}\n",
                    file.display()
                );
            }
            RegistryAuth::Token(server) => {
                auth_yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {HUB_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    server.realm(),
                    server.cert_path().display()
                );
            }
            RegistryAuth::Tls => {
                let (key, cert) = self_signed(dir.path(), "tls", Some("IP:127.0.0.1"));
                http_extra = format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                );
            }
        }
        let mut registry = TestRegistry {
            host: String::new(),
            auth,
            config: dir.path().join("config.yml"),
            log_path: dir.path().join("registry.log"),
            child: None,
            dir,
        };
        for attempt in 1..=5 {
            registry.host = format!("127.0.0.1:{}", free_port());
            fs::write(
                &registry.config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {}\n  secret: stowage-test-http-secret\n{http_extra}{auth_yaml}",
                    registry.storage().display(),
                    registry.host,
                ),
            )
            .unwrap();
            match registry.spawn() {
                Ok(()) => return registry,
                Err(why) if why.contains("address already in use") && attempt < 5 => continue,
                Err(why) => panic!("docker-registry on {} did not start: {why}", registry.host),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Starts the process and waits for it to answer; on failure, the
    /// error is what this start added to the log.
    fn spawn(&mut self) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let new_log = || {
            let mut text = Vec::new();
            if let Ok(mut file) = fs::File::open(&self.log_path) {
                let _ = file.seek(SeekFrom::Start(log_start));
                let _ = file.read_to_end(&mut text);
            }
            show(&text)
        };
        let mut cmd = StdCommand::new("docker-registry");
        // distribution reads every REGISTRY_* variable as a config
        // override: REGISTRY_AUTH_FILE (podman's, set by the rig) would
        // become `auth.file` and fail the config parse.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(name);
            }
        }
        let mut child = cmd
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run docker-registry: {e}"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        let tls = matches!(self.auth, RegistryAuth::Tls);
        loop {
            if tls {
                // A TLS handshake cannot be spoken here; an open port will do.
                if TcpStream::connect(&self.host).is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                    self.child = Some(child);
                    return Ok(());
                }
            } else if let Ok(resp) = http_request(&self.host, "GET", "/v2/", &[], b"")
                && resp.header("docker-distribution-api-version").is_some()
            {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(_)) = child.try_wait() {
                return Err(new_log());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {START_TIMEOUT:?}; its log:\n{}",
                    new_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the registry process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the registry again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(why) if Instant::now() < deadline && why.contains("address already in use") => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(why) => panic!("docker-registry did not restart: {why}"),
            }
        }
    }

    /// `HOST/PATH`, e.g. `reg.reference("app/x:1")`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host)
    }

    /// `docker://HOST/PATH`, for skopeo.
    pub fn docker_ref(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{repo_and_tag}", self.host)
    }

    /// The registry's whole log (its own lines and the access log), over
    /// every start.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The registry's storage folder.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The access log lines, in order.
    pub fn access_log(&self) -> Vec<AccessLine> {
        self.log().lines().filter_map(parse_access_line).collect()
    }

    /// The repositories an anonymous registry holds, from `/v2/_catalog`.
    pub fn catalog(&self) -> Vec<String> {
        let resp =
            http_request(&self.host, "GET", "/v2/_catalog", &[], b"").expect("GET /v2/_catalog");
        assert_eq!(resp.status, 200, "catalog: {}", show(&resp.body));
        let doc: serde_json::Value = serde_json::from_slice(&resp.body).expect("catalog JSON");
        doc["repositories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The HTTP status of manifest `reference` (a tag or digest) in `repo`
    /// of an anonymous registry.
    pub fn manifest_status(&self, repo: &str, reference: &str) -> u16 {
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
        http_request(
            &self.host,
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", accept)],
            b"",
        )
        .map(|r| r.status)
        .unwrap_or(0)
    }

    /// The token server, for a token registry.
    pub fn token_server(&self) -> &TokenServer {
        match &self.auth {
            RegistryAuth::Token(server) => server,
            _ => panic!("{} is not a token registry", self.host),
        }
    }

    /// The credentials of an htpasswd or token registry.
    pub fn creds(&self) -> Creds {
        match &self.auth {
            RegistryAuth::Htpasswd(c) => c.clone(),
            RegistryAuth::Token(server) => server.users[0].clone(),
            RegistryAuth::Anonymous | RegistryAuth::Tls => {
                panic!("{} has no credentials", self.host)
            }
        }
    }

    /// skopeo's credential flag for this registry (`--creds` / `--src-creds`
    /// / `--dest-creds`), empty for an anonymous one.
    pub fn skopeo_creds(&self, flag: &str) -> Vec<String> {
        match &self.auth {
            RegistryAuth::Anonymous | RegistryAuth::Tls => Vec::new(),
            _ => vec![flag.to_owned(), self.creds().colon()],
        }
    }

    /// `skopeo inspect` of `repo_and_tag` (JSON summary, or `--raw`/
    /// `--config` when `extra` says so), over plain HTTP (or HTTPS without
    /// verification).
    pub fn skopeo_inspect(&self, repo_and_tag: &str, extra: &[&str]) -> Vec<u8> {
        let mut cmd = skopeo();
        cmd.args(["inspect", "--tls-verify=false"])
            .args(self.skopeo_creds("--creds"))
            .args(extra)
            .arg(self.docker_ref(repo_and_tag));
        cmd.assert().success().get_output().stdout.clone()
    }

    /// The digest skopeo reads for `repo_and_tag`.
    pub fn skopeo_digest(&self, repo_and_tag: &str) -> String {
        let summary: Value = serde_json::from_slice(&self.skopeo_inspect(repo_and_tag, &[]))
            .expect("skopeo inspect prints JSON");
        summary["Digest"]
            .as_str()
            .expect("skopeo inspect has Digest")
            .to_owned()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // The registry's view of a failed test is usually the clue.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- last lines of the log of docker-registry on {}:",
                self.host
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// `127.0.0.1 - - [date] "PATCH /v2/x/blobs/uploads/… HTTP/1.1" 202 0 "" "ua"`
fn parse_access_line(line: &str) -> Option<AccessLine> {
    let rest = line.split_once("] \"")?.1;
    let (request, rest) = rest.split_once("\" ")?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_owned();
    let uri = parts.next()?.to_owned();
    parts.next()?.strip_prefix("HTTP/")?;
    let status = rest.split(' ').next()?.parse().ok()?;
    Some(AccessLine {
        method,
        uri,
        status,
    })
}

// ---------------------------------------------------------------------------
// The reliability tests' handle

/// A [`TestRegistry`] as the reliability tests (faults, hostile, crash,
/// secrets_never_printed) start it: their own constructors, and the tokens
/// as plain strings. Everything else is the registry's own, through Deref.
pub struct FaultRegistry(TestRegistry);

impl FaultRegistry {
    /// An anonymous registry, or None (after a `SKIPPED:` line; a panic
    /// under CI) when docker-registry is missing.
    pub fn anonymous() -> Option<FaultRegistry> {
        TestRegistry::anonymous().map(FaultRegistry)
    }

    /// A registry behind token auth for `registry.docker.io`, with a token
    /// server that knows `user`/`password` and whose tokens really live
    /// `lifetime` while advertising `expires_in` seconds.
    pub fn token(
        user: &str,
        password: &str,
        lifetime: Duration,
        expires_in: u64,
    ) -> Option<FaultRegistry> {
        TestRegistry::token_advertising(Creds::new(user, password), lifetime, expires_in)
            .map(FaultRegistry)
    }

    /// A registry serving HTTPS with a self-signed certificate.
    pub fn tls() -> Option<FaultRegistry> {
        TestRegistry::tls().map(FaultRegistry)
    }

    /// The token server of a token registry.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens(self.0.token_server())
    }
}

impl Deref for FaultRegistry {
    type Target = TestRegistry;

    fn deref(&self) -> &TestRegistry {
        &self.0
    }
}

impl DerefMut for FaultRegistry {
    fn deref_mut(&mut self) -> &mut TestRegistry {
        &mut self.0
    }
}

/// A token server, seen by the reliability tests.
pub struct Tokens<'a>(&'a TokenServer);

impl Tokens<'_> {
    /// Every token handed out so far.
    pub fn issued(&self) -> Vec<String> {
        self.0.issued().into_iter().map(|t| t.token).collect()
    }
}

// ---------------------------------------------------------------------------
// Content and images

/// `len` pseudo-random bytes (xorshift64*; incompressible for gzip), the
/// same for the same seed.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A seed unique to this call, for content no other test shares.
pub fn unique_seed() -> u64 {
    let name = unique("seed");
    u64::from_le_bytes(
        sha256_hex(name.as_bytes()).as_bytes()[..8]
            .try_into()
            .unwrap(),
    )
}

/// Like [`make_layer`], with uid and gid written as 0 (make_layer leaves
/// those header fields NUL-filled; Go's archive/tar reads them as 0, but
/// stowage's scan of base folders fails with "numeric field was not a
/// number … when getting uid").
pub fn root_layer(dirs: &[&str], files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind, mode, size| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    };
    for dir in dirs {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, format!("{dir}/"), std::io::empty())
            .unwrap();
    }
    for (path, content, mode) in files {
        let mut h = header(tar::EntryType::Regular, *mode, content.len() as u64);
        b.append_data(&mut h, path, *content).unwrap();
    }
    b.into_inner().unwrap()
}

/// A busybox base pushed to a registry by skopeo.
pub struct PushedBase {
    /// `HOST/REPO:TAG`.
    pub reference: String,
    pub manifest_digest: String,
    /// The uncompressed layer and its gzip blob as pushed.
    pub layer_tar: Vec<u8>,
    pub layer_digest: String,
    pub layer_size: u64,
}

/// Writes a one-layer busybox image (plus `random` incompressible bytes in
/// /data/base.bin) as an OCI layout and pushes it with `skopeo copy` to
/// `reg`'s `repo_and_tag`.
pub fn push_busybox_base(reg: &TestRegistry, repo_and_tag: &str, random: usize) -> PushedBase {
    let dir = tempfile::Builder::new()
        .prefix("stowage-base-")
        .tempdir()
        .unwrap();
    let busybox = fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let data = random_bytes(unique_seed(), random);
    let layer_tar = root_layer(
        &["bin", "data", "etc"],
        &[
            ("bin/busybox", &busybox, 0o755),
            ("bin/sh", &busybox, 0o755),
            ("data/base.bin", &data, 0o644),
            ("etc/base", b"registry-base\n", 0o644),
        ],
    );
    let desc = write_oci_image(dir.path(), "amd64", &layer_tar);
    let mut tagged = desc.clone();
    tagged["annotations"] = json!({"org.opencontainers.image.ref.name": "base"});
    write_oci_index(dir.path(), &[tagged]);
    let layout = Layout::open(dir.path());
    let image = layout.image_at(desc["digest"].as_str().unwrap());
    let layer = image.layers()[0].clone();
    let mut cmd = skopeo();
    cmd.args(["copy", "--dest-tls-verify=false"])
        .args(reg.skopeo_creds("--dest-creds"))
        .arg(format!("oci:{}:base", dir.path().display()))
        .arg(reg.docker_ref(repo_and_tag));
    run_ok(&mut cmd);
    PushedBase {
        reference: reg.reference(repo_and_tag),
        manifest_digest: image.manifest_digest.clone(),
        layer_tar,
        layer_digest: layer["digest"].as_str().unwrap().to_owned(),
        layer_size: layer["size"].as_u64().unwrap(),
    }
}

/// The sample app (see [`write_app`]) over `base` instead of scratch,
/// written in `root`; returns the spec's path.
pub fn write_app_on(root: &Path, base: &str, image: &str) -> PathBuf {
    let spec = write_app(root, image);
    let text = fs::read_to_string(&spec).unwrap();
    assert!(
        text.contains("base = \"scratch\""),
        "the sample spec's base"
    );
    fs::write(
        &spec,
        text.replace("base = \"scratch\"", &format!("base = \"{base}\"")),
    )
    .unwrap();
    spec
}

/// Asserts the app printed what the sample app prints.
pub fn assert_app_output(stdout: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, APP_OUTPUT, "the app's output");
}

/// stowage's platform name for this machine's architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => panic!("no OCI architecture name for {other}"),
    }
}

/// The stderr of a finished command, as text.
pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The keys of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Counts of access-log requests by (method, status), for messages.
pub fn summarize_access(lines: &[AccessLine]) -> BTreeMap<String, usize> {
    let mut map = BTreeMap::new();
    for l in lines {
        *map.entry(format!("{} {}", l.method, l.status)).or_insert(0) += 1;
    }
    map
}

/// `stowage` in this sandbox with `--insecure-registry HOST` for each host.
pub fn stowage_insecure(sb: &Sandbox, hosts: &[&str]) -> assert_cmd::Command {
    let mut cmd = sb.stowage();
    for h in hosts {
        cmd.args(["--insecure-registry", h]);
    }
    cmd
}

/// `stowage build -f SPEC -o DEST…` (plus `extra` arguments) that must
/// succeed; returns what it printed on stdout.
pub fn build_to(
    sb: &Sandbox,
    hosts: &[&str],
    spec: &Path,
    dests: &[&str],
    extra: &[&str],
) -> Printed {
    let mut cmd = stowage_insecure(sb, hosts);
    cmd.args(["build", "-f"]).arg(spec);
    for d in dests {
        cmd.args(["-o", d]);
    }
    cmd.args(extra);
    parse_printed(&run_ok(&mut cmd))
}
