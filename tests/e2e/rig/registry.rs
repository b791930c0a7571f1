//! Real registries for the registry tests, started from test code: one
//! `docker-registry` (Debian's distribution 2.8) process per test, on a free
//! loopback port with its own storage folder, so tests run in parallel and
//! each can read its own registry's access log.
//!
//! * [`TestRegistry::anonymous`]: no auth, deletes enabled.
//! * [`TestRegistry::htpasswd`]: Basic auth from a bcrypt htpasswd file
//!   written by `htpasswd -Bbn` (apache2-utils).
//! * [`TestRegistry::token`]: Bearer token auth as Docker Hub does it: the
//!   registry trusts the certificate of a [`TokenServer`] written here, which
//!   signs real RS256 JWTs (with `openssl dgst -sha256 -sign`) for service
//!   `registry.docker.io` and hands out short-lived tokens.
//!
//! Also here: a TCP [`Proxy`] that counts the bytes each way (and can slow
//! the upload direction down), a tiny HTTP client for readiness checks, and
//! hand-made bases pushed with skopeo.
//!
//! Quirks of distribution 2.8.2 met while writing this:
//! * it accepts a token up to 60 s after its `exp` (a fixed clock-skew
//!   leeway, `token.Leeway`), so a token server that wants tokens to die
//!   after N seconds sets `exp = now + N - 60`; `expires_in` says N.
//! * it verifies `x5c` against `rootcertbundle` with any key usage, so a
//!   self-signed certificate that is its own root works.
//! * `Location` headers are built from the request's Host, so a client
//!   that talks through the [`Proxy`] keeps talking through it.
//! * every `REGISTRY_*` environment variable overrides its config, and the
//!   rig exports podman's `REGISTRY_AUTH_FILE`: the process is started
//!   without them.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::*;

/// The service name Docker Hub's registry uses in its token challenge.
pub const HUB_SERVICE: &str = "registry.docker.io";
/// The issuer the token registry trusts.
pub const TOKEN_ISSUER: &str = "stowage-test-token-issuer";
/// Docker Hub's key in config.json.
pub const HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// How long a registry may take to answer its first `GET /v2/`.
const START_TIMEOUT: Duration = Duration::from_secs(15);

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
    child: Child,
    log_path: PathBuf,
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
        if !require_tools(&["docker-registry", "openssl"]) {
            return None;
        }
        let server = TokenServer::start(vec![creds], lifetime);
        Some(TestRegistry::start(RegistryAuth::Token(server)))
    }

    fn start(auth: RegistryAuth) -> TestRegistry {
        let dir = tempfile::Builder::new()
            .prefix("stowage-registry-")
            .tempdir()
            .expect("create the registry's folder");
        let auth_yaml = match &auth {
            RegistryAuth::Anonymous => String::new(),
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
                format!(
                    "auth:\n  htpasswd:\n    realm: stowage-test\n    path: {}\n",
                    file.display()
                )
            }
            RegistryAuth::Token(server) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {HUB_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                server.realm(),
                server.cert_path().display()
            ),
        };
        let log_path = dir.path().join("registry.log");
        for attempt in 1..=5 {
            let port = free_port();
            let host = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: stowage-test-http-secret\n{auth_yaml}",
                    dir.path().join("storage").display()
                ),
            )
            .unwrap();
            let log = fs::File::create(&log_path).unwrap();
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
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Ok(resp) = http_request(&host, "GET", "/v2/", &[], b"")
                    && resp.header("docker-distribution-api-version").is_some()
                {
                    return TestRegistry {
                        host,
                        auth,
                        child,
                        log_path,
                        dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "docker-registry on {host} did not answer within {START_TIMEOUT:?}; its log:\n{}",
                        fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            if log.contains("address already in use") && attempt < 5 {
                continue;
            }
            panic!("docker-registry exited at start; its log:\n{log}");
        }
        unreachable!("the loop returns or panics")
    }

    /// `HOST/PATH`, e.g. `reg.reference("app/x:1")`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host)
    }

    /// `docker://HOST/PATH`, for skopeo.
    pub fn docker_ref(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{repo_and_tag}", self.host)
    }

    /// The registry's whole log (its own lines and the access log).
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
            RegistryAuth::Anonymous => panic!("{} has no credentials", self.host),
        }
    }

    /// skopeo's credential flag for this registry (`--creds` / `--src-creds`
    /// / `--dest-creds`), empty for an anonymous one.
    pub fn skopeo_creds(&self, flag: &str) -> Vec<String> {
        match &self.auth {
            RegistryAuth::Anonymous => Vec::new(),
            _ => vec![flag.to_owned(), self.creds().colon()],
        }
    }

    /// `skopeo inspect` of `repo_and_tag` (JSON summary, or `--raw`/
    /// `--config` when `extra` says so), over plain HTTP.
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
        let _ = self.child.kill();
        let _ = self.child.wait();
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
// A tiny HTTP/1.1 client and server side, enough for readiness checks and
// the token server.

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 request to `host` (no TLS, no redirects), read to the end.
pub fn http_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// A request as the token server sees it.
struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Ok(Request {
        method,
        path: path.to_owned(),
        query: parse_form(query),
        headers,
        body,
    })
}

/// `a=1&b=x%2Fy` → [("a","1"), ("b","x/y")].
fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match byte {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(mut stream: &TcpStream, status: u16, reason: &str, extra: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

// ---------------------------------------------------------------------------
// The token server

/// A token the server handed out.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub subject: String,
    /// The `scope` parameters of the request.
    pub scopes: Vec<String>,
    pub at: Instant,
}

#[derive(Default)]
struct TokenLog {
    issued: Vec<IssuedToken>,
    refused: usize,
}

/// Docker Hub's token service in miniature: `GET /token?service=…&scope=…`
/// (and the OAuth2 `POST /token` password grant) with Basic credentials;
/// answers 401 to wrong credentials, grants anonymous callers `pull` only
/// and a known user every action the scope asks for, in an RS256 JWT whose
/// `x5c` holds the certificate the registry trusts.
pub struct TokenServer {
    pub host: String,
    pub users: Vec<Creds>,
    pub lifetime: Duration,
    dir: tempfile::TempDir,
    log: Arc<Mutex<TokenLog>>,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    pub fn start(users: Vec<Creds>, lifetime: Duration) -> TokenServer {
        assert!(lifetime.as_secs() >= 1, "token lifetimes are whole seconds");
        let dir = tempfile::Builder::new()
            .prefix("stowage-token-")
            .tempdir()
            .unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let out = StdCommand::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=stowage-test-token-server", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl req failed: {}",
            show(&out.stderr)
        );
        let der = StdCommand::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("run openssl");
        assert!(der.status.success(), "openssl x509 failed");
        let x5c = STANDARD.encode(&der.stdout);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(TokenLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(TokenContext {
            users: users.clone(),
            lifetime: lifetime.as_secs(),
            key,
            x5c,
            log: log.clone(),
        });
        let stop_flag = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let ctx = ctx.clone();
                std::thread::spawn(move || ctx.serve(stream));
            }
        });
        TokenServer {
            host,
            users,
            lifetime,
            dir,
            log,
            stop,
        }
    }

    /// The realm the registry's challenge names.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.host)
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Every token handed out so far.
    pub fn issued(&self) -> Vec<IssuedToken> {
        self.log.lock().unwrap().issued.clone()
    }

    /// How many requests were refused for wrong credentials.
    pub fn refused(&self) -> usize {
        self.log.lock().unwrap().refused
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.host);
    }
}

struct TokenContext {
    users: Vec<Creds>,
    lifetime: u64,
    key: PathBuf,
    x5c: String,
    log: Arc<Mutex<TokenLog>>,
}

impl TokenContext {
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Ok(req) = read_request(&stream) else {
            return;
        };
        if req.path != "/token" {
            return respond(
                &stream,
                404,
                "Not Found",
                &[],
                b"{\"details\":\"no such endpoint\"}",
            );
        }
        // GET with Basic auth (what docker and most clients do), or the
        // OAuth2 password grant as a form POST.
        let (params, supplied): (Vec<(String, String)>, Option<Creds>) = match req.method.as_str() {
            "GET" => {
                let creds = req
                    .header("authorization")
                    .and_then(|h| {
                        h.strip_prefix("Basic ")
                            .or_else(|| h.strip_prefix("basic "))
                    })
                    .and_then(|b| STANDARD.decode(b.trim()).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.split_once(':').map(|(u, p)| Creds::new(u, p)));
                (req.query.clone(), creds)
            }
            "POST" => {
                let form = parse_form(&String::from_utf8_lossy(&req.body));
                let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let creds = match (
                    get("grant_type").as_deref(),
                    get("username"),
                    get("password"),
                ) {
                    (Some("password"), Some(u), Some(p)) => Some(Creds::new(&u, &p)),
                    _ => None,
                };
                (form, creds)
            }
            _ => return respond(&stream, 405, "Method Not Allowed", &[], b"{}"),
        };
        let service = params
            .iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.as_str());
        if service != Some(HUB_SERVICE) {
            return respond(
                &stream,
                400,
                "Bad Request",
                &[],
                format!("{{\"details\":\"unknown service {service:?}\"}}").as_bytes(),
            );
        }
        let subject = match &supplied {
            Some(c) if self.users.contains(c) => c.user.clone(),
            Some(_) => {
                self.log.lock().unwrap().refused += 1;
                return respond(
                    &stream,
                    401,
                    "Unauthorized",
                    &[("WWW-Authenticate", "Basic realm=\"stowage-test-token\"")],
                    b"{\"details\":\"incorrect username or password\"}",
                );
            }
            None => String::new(),
        };
        let scopes: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect();
        let access: Vec<Value> = scopes
            .iter()
            .filter_map(|s| grant(s, !subject.is_empty()))
            .collect();
        let token = self.sign(&subject, &access);
        let issued_at = rfc3339(unix_now());
        let body = json!({
            "token": token,
            "access_token": token,
            "expires_in": self.lifetime,
            "issued_at": issued_at,
        });
        self.log.lock().unwrap().issued.push(IssuedToken {
            token,
            subject,
            scopes,
            at: Instant::now(),
        });
        respond(&stream, 200, "OK", &[], &serde_json::to_vec(&body).unwrap());
    }

    fn sign(&self, subject: &str, access: &[Value]) -> String {
        let now = unix_now();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]});
        // distribution accepts a token until exp + 60 s (its clock-skew
        // leeway); exp is set so that the registry refuses it after
        // `lifetime` seconds, which is what expires_in promises.
        let claims = json!({
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": HUB_SERVICE,
            "exp": now + self.lifetime as i64 - 60,
            "nbf": now - 1,
            "iat": now,
            "jti": unique("jti"),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let mut child = StdCommand::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run openssl dgst");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(signing_input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "openssl dgst -sign failed: {}",
            show(&out.stderr)
        );
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&out.stdout))
    }
}

/// The access a scope `repository:NAME:ACTIONS` is granted: everything for
/// a known user, `pull` only for anonymous callers.
fn grant(scope: &str, authenticated: bool) -> Option<Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions
        .split(',')
        .filter(|a| authenticated || *a == "pull")
        .collect();
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------
// A counting (and optionally slowing) TCP proxy

/// Forwards 127.0.0.1:PORT to an upstream host, counting the bytes each way;
/// with `up_rate` it also holds the client→server direction to about that
/// many bytes per second. Stops accepting when dropped.
pub struct Proxy {
    /// `127.0.0.1:PORT`.
    pub host: String,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: &str, up_rate: Option<u64>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (up2, down2, stop2) = (up.clone(), down.clone(), stop.clone());
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (up, down) = (up2.clone(), down2.clone());
                std::thread::spawn(move || pipe(client, server, &up, up_rate));
                std::thread::spawn(move || pipe(s2, c2, &down, None));
            }
        });
        Proxy {
            host,
            up,
            down,
            stop,
        }
    }

    /// Bytes sent by clients to the upstream so far.
    pub fn up_bytes(&self) -> u64 {
        self.up.load(Ordering::SeqCst)
    }

    /// Bytes sent by the upstream to clients so far.
    pub fn down_bytes(&self) -> u64 {
        self.down.load(Ordering::SeqCst)
    }

    /// `HOST/PATH` through the proxy.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, count: &AtomicU64, rate: Option<u64>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(rate) = rate {
            std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        count.fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
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
