//! Real registries and the faults a real one will not produce on demand,
//! for the reliability tests.
//!
//! * [`Registry`]: a `docker-registry` process (Debian's distribution 2.8)
//!   on a loopback port with its own storage, anonymous, behind token auth,
//!   or serving TLS; it can be killed and restarted on the same port with
//!   the same storage, as a crashed registry comes back.
//! * [`TokenServer`]: Docker Hub's token service in miniature: it checks
//!   Basic credentials and signs RS256 JWTs with `openssl dgst -sha256
//!   -sign`, whose `x5c` header holds the certificate the registry trusts.
//!   A token's real lifetime can be shorter than the `expires_in` it
//!   advertises, which is how a token "expires" mid-push.
//! * [`FaultProxy`]: an HTTP/1.1 proxy (std `TcpListener` and a thread per
//!   connection) between stowage and a registry. A rule sees each request
//!   and picks an [`Action`]: forward it (optionally resetting, stalling or
//!   corrupting it part-way, throttling it, delaying it, or rewriting auth
//!   and `Location`), answer it itself (500, 429, 401, 307), or stall.
//!   Every request is recorded, with its Authorization header.
//!
//! Quirks of distribution 2.8 that shape this file:
//! * it reads every `REGISTRY_*` environment variable as a config override,
//!   and the rig exports podman's `REGISTRY_AUTH_FILE`: the process is
//!   started without them.
//! * it accepts a token up to 60 s after its `exp` (a fixed leeway), so a
//!   token meant to die after N seconds gets `exp = now + N - 60`.
//! * upload URLs carry a `_state` signed with `http.secret`: the config
//!   fixes it so a restarted registry still accepts its old sessions.
//! * `Location` headers are built from the request's Host, so a client that
//!   talks through a proxy keeps talking through it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::{require_tool, require_tools, show, skopeo, unique};

/// The service name the token registry uses, as Docker Hub's does.
pub const SERVICE: &str = "registry.docker.io";
const ISSUER: &str = "stowage-fault-tests";
/// How long a registry may take to answer its first `GET /v2/`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// The registry process

/// How a [`Registry`] is set up.
pub enum Mode {
    Anonymous,
    Token(TokenServer),
    /// HTTPS with a self-signed certificate for 127.0.0.1.
    Tls,
}

/// A running `docker-registry`, killed when dropped.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    pub mode: Mode,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// An anonymous registry, or None (after a `SKIPPED:` line; a panic
    /// under CI) when docker-registry is missing.
    pub fn anonymous() -> Option<Registry> {
        require_tool("docker-registry").then(|| Registry::start(Mode::Anonymous))
    }

    /// A registry behind token auth for [`SERVICE`], with a token server
    /// that knows `user`/`password` and whose tokens really live `lifetime`
    /// while advertising `expires_in` seconds.
    pub fn token(
        user: &str,
        password: &str,
        lifetime: Duration,
        expires_in: u64,
    ) -> Option<Registry> {
        if !require_tools(&["docker-registry", "openssl"]) {
            return None;
        }
        let server = TokenServer::start(user, password, lifetime, expires_in);
        Some(Registry::start(Mode::Token(server)))
    }

    /// A registry serving HTTPS with a self-signed certificate.
    pub fn tls() -> Option<Registry> {
        if !require_tools(&["docker-registry", "openssl"]) {
            return None;
        }
        Some(Registry::start(Mode::Tls))
    }

    fn start(mode: Mode) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("stowage-fault-registry-")
            .tempdir()
            .expect("create the registry's folder");
        let mut extra = String::new();
        match &mode {
            Mode::Anonymous => {}
            Mode::Token(server) => extra.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                server.realm(),
                server.cert.display()
            )),
            Mode::Tls => {
                let (key, cert) = self_signed(dir.path(), "tls", Some("IP:127.0.0.1"));
                extra.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ));
            }
        }
        let (http_extra, top_extra) = match &mode {
            Mode::Tls => (extra, String::new()),
            _ => (String::new(), extra),
        };
        let mut registry = Registry {
            host: String::new(),
            mode,
            config: dir.path().join("config.yml"),
            log: dir.path().join("registry.log"),
            child: None,
            dir,
        };
        for attempt in 1..=5 {
            registry.host = format!("127.0.0.1:{}", free_port());
            // http.tls sits under http:, auth at the top level.
            fs::write(
                &registry.config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {}\n  secret: stowage-fault-tests-secret\n{http_extra}{top_extra}",
                    registry.dir.path().join("storage").display(),
                    registry.host,
                ),
            )
            .unwrap();
            match registry.spawn() {
                Ok(()) => return registry,
                Err(why) if why.contains("address already in use") && attempt < 5 => continue,
                Err(why) => panic!("docker-registry did not start: {why}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = StdCommand::new("docker-registry");
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
        let tls = matches!(self.mode, Mode::Tls);
        loop {
            if tls {
                // A TLS handshake cannot be spoken here; an open port will do.
                if TcpStream::connect(&self.host).is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                    self.child = Some(child);
                    return Ok(());
                }
            } else if let Ok(head) = http_get_head(&self.host, "/v2/")
                && head
                    .to_lowercase()
                    .contains("docker-distribution-api-version")
            {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(_)) = child.try_wait() {
                return Err(self.log_text());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {START_TIMEOUT:?}: {}",
                    self.log_text()
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

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `HOST/REPO:TAG`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host)
    }

    /// The token server of a token registry.
    pub fn tokens(&self) -> &TokenServer {
        match &self.mode {
            Mode::Token(server) => server,
            _ => panic!("{} has no token server", self.host),
        }
    }

    /// The digest `skopeo inspect` reads for `repo_and_tag` at `host`
    /// (the registry's own host, or a proxy's).
    pub fn skopeo_digest(&self, repo_and_tag: &str) -> String {
        let mut cmd = skopeo();
        cmd.args(["inspect", "--tls-verify=false"]);
        if let Mode::Token(server) = &self.mode {
            cmd.args(["--creds", &format!("{}:{}", server.user, server.password)]);
        }
        cmd.arg(format!("docker://{}/{repo_and_tag}", self.host));
        let out = cmd.output().expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo inspect {repo_and_tag} failed: {}",
            show(&out.stderr)
        );
        let summary: Value = serde_json::from_slice(&out.stdout).expect("skopeo prints JSON");
        summary["Digest"].as_str().expect("a Digest").to_owned()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- last lines of the registry log ({}):", self.host);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A free TCP port on 127.0.0.1 (released before return; callers retry on a clash).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// The status line and headers of `GET path` on `host`, over plain HTTP.
fn http_get_head(host: &str, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// An RSA key and a self-signed certificate in `dir` (named `name`), with
/// an optional subjectAltName.
fn self_signed(dir: &Path, name: &str, san: Option<&str>) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}-key.pem"));
    let cert = dir.join(format!("{name}-cert.pem"));
    let mut cmd = StdCommand::new("openssl");
    cmd.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    ])
    .args(["-subj", "/CN=stowage-fault-tests", "-keyout"])
    .arg(&key)
    .arg("-out")
    .arg(&cert);
    if let Some(san) = san {
        cmd.args(["-addext", &format!("subjectAltName={san}")]);
    }
    let out = cmd.output().expect("run openssl");
    assert!(out.status.success(), "openssl req: {}", show(&out.stderr));
    (key, cert)
}

// ---------------------------------------------------------------------------
// The token server

/// A token server: `GET /token?service=…&scope=…` with Basic credentials.
pub struct TokenServer {
    pub user: String,
    pub password: String,
    pub addr: String,
    key: PathBuf,
    cert: PathBuf,
    issued: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    pub fn start(user: &str, password: &str, lifetime: Duration, expires_in: u64) -> TokenServer {
        let dir = tempfile::Builder::new()
            .prefix("stowage-fault-token-")
            .tempdir()
            .unwrap();
        let (key, cert) = self_signed(dir.path(), "token", None);
        let der = StdCommand::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("run openssl");
        assert!(der.status.success(), "openssl x509: {}", show(&der.stderr));
        let x5c = STANDARD.encode(&der.stdout);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let issued = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(TokenContext {
            user: user.to_owned(),
            password: password.to_owned(),
            lifetime,
            expires_in,
            key: key.clone(),
            x5c,
            issued: issued.clone(),
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
            user: user.to_owned(),
            password: password.to_owned(),
            addr,
            key,
            cert,
            issued,
            stop,
            _dir: dir,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// Every token handed out so far.
    pub fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

struct TokenContext {
    user: String,
    password: String,
    lifetime: Duration,
    expires_in: u64,
    key: PathBuf,
    x5c: String,
    issued: Arc<Mutex<Vec<String>>>,
}

impl TokenContext {
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(&stream);
        let Ok(head) = read_head(&mut reader) else {
            return;
        };
        let expected = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.user, self.password))
        );
        if head.header("authorization") != Some(expected.as_str()) {
            respond(&stream, 401, &[], b"{\"details\":\"wrong credentials\"}");
            return;
        }
        let query = head.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let scopes: Vec<String> = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("scope="))
            .map(percent_decode)
            .collect();
        let access: Vec<Value> = scopes
            .iter()
            .filter_map(|scope| {
                let (rest, actions) = scope.rsplit_once(':')?;
                let name = rest.strip_prefix("repository:")?;
                Some(json!({"type": "repository", "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let token = self.sign(&access);
        self.issued.lock().unwrap().push(token.clone());
        let body = json!({"token": token, "access_token": token, "expires_in": self.expires_in});
        respond(&stream, 200, &[], body.to_string().as_bytes());
    }

    fn sign(&self, access: &[Value]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        // distribution allows 60 s past exp; see the file's doc.
        let exp = now + self.lifetime.as_secs() as i64 - 60;
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = json!({
            "iss": ISSUER, "sub": self.user, "aud": SERVICE,
            "exp": exp, "nbf": now.min(exp) - 5, "iat": now.min(exp) - 5,
            "jti": unique("jti"), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut child = StdCommand::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run openssl dgst");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(signing_input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "openssl dgst -sign failed");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
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

// ---------------------------------------------------------------------------
// HTTP/1.1 pieces shared by the token server and the proxy

/// A request or response head.
#[derive(Debug, Clone)]
pub struct Head {
    /// `GET /v2/ HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub line: String,
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_header(&mut self, name: &str, value: Option<String>) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            self.headers.push((name.to_owned(), value));
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut text = format!("{}\r\n", self.line);
        for (k, v) in &self.headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        text.into_bytes()
    }

    fn body_length(&self, request_method: Option<&str>) -> Framing {
        if request_method == Some("HEAD") || matches!(self.status, 100..=199 | 204 | 304) {
            return Framing::Length(0);
        }
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            return Framing::Chunked;
        }
        match self
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
        {
            Some(n) => Framing::Length(n),
            None if request_method.is_none() => Framing::Length(0),
            None => Framing::UntilClose,
        }
    }
}

enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// Reads a head; `Err(UnexpectedEof)` when the peer closed before one began.
fn read_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end().to_owned();
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
    let mut parts = line.split(' ');
    let first = parts.next().unwrap_or_default().to_owned();
    let second = parts.next().unwrap_or_default().to_owned();
    let (method, target, status) = if first.starts_with("HTTP/") {
        (String::new(), String::new(), second.parse().unwrap_or(0))
    } else {
        (first, second, 0)
    };
    Ok(Head {
        line,
        method,
        target,
        status,
        headers,
    })
}

fn respond(mut stream: &TcpStream, status: u16, extra: &[(String, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} Fault\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
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

/// Closes `stream` with a TCP reset instead of an orderly FIN, as a crashed
/// peer or a middlebox does.
///
/// The reset goes out when the last handle of the socket closes, so callers
/// return right after this.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

// ---------------------------------------------------------------------------
// The fault proxy

/// A request as a proxy rule sees it.
#[derive(Debug, Clone)]
pub struct Req {
    /// Position among all requests the proxy received, from 0.
    pub seq: usize,
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    /// The request body's declared length.
    pub content_length: Option<u64>,
}

impl Req {
    /// A PUT or PATCH that carries blob bytes.
    pub fn is_blob_upload(&self) -> bool {
        matches!(self.method.as_str(), "PUT" | "PATCH") && self.target.contains("/blobs/uploads/")
    }

    /// A GET of a blob by digest.
    pub fn is_blob_get(&self) -> bool {
        self.method == "GET" && self.target.contains("/blobs/sha256:")
    }

    /// A PUT of a manifest.
    pub fn is_manifest_put(&self) -> bool {
        self.method == "PUT" && self.target.contains("/manifests/")
    }
}

/// What the proxy does with a request.
#[derive(Clone)]
pub enum Action {
    Forward(Forward),
    /// Answer without asking the registry (the request body is read first).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request and never answer.
    Stall,
}

impl Action {
    pub fn forward() -> Action {
        Action::Forward(Forward::default())
    }

    pub fn status(status: u16) -> Action {
        Action::Respond {
            status,
            headers: Vec::new(),
            body: format!(
                "{{\"errors\":[{{\"code\":\"FAULT\",\"message\":\"injected {status}\"}}]}}"
            )
            .into_bytes(),
        }
    }
}

/// How a forwarded request is tampered with.
#[derive(Clone, Default)]
pub struct Forward {
    /// Reset both connections after this many request body bytes went up.
    pub reset_after_request_bytes: Option<u64>,
    /// Stop reading the request body after this many bytes went up, keeping
    /// the client's connection open: the client's socket buffers fill and
    /// its kernel waits on a zero window, forever.
    pub stall_after_request_bytes: Option<u64>,
    /// Reset the client after this many response body bytes came down.
    pub reset_after_response_bytes: Option<u64>,
    /// Stop sending the response body after this many bytes, forever.
    pub stall_after_response_bytes: Option<u64>,
    /// Flip the bits of the response body byte at this offset.
    pub corrupt_response_byte: Option<u64>,
    /// Send the request body up at no more than this many bytes a second.
    pub throttle_request: Option<u64>,
    /// Wait this long before forwarding.
    pub delay: Option<Duration>,
    /// Drop the Authorization header before forwarding.
    pub strip_auth: bool,
    /// Point a response's Location at this `host:port` instead.
    pub location_to: Option<String>,
}

/// One request the proxy saw, and what came of it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub req: Req,
    /// The status sent to the client, if a response was sent.
    pub status: Option<u16>,
    pub at: Instant,
}

type Rule = dyn Fn(&Req) -> Action + Send + Sync;

struct ProxyShared {
    upstream: String,
    rule: Box<Rule>,
    seq: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
}

/// An HTTP proxy in front of `upstream`, applying `rule` to each request.
pub struct FaultProxy {
    /// `IP:PORT` to point stowage at.
    pub addr: String,
    shared: Arc<ProxyShared>,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1.
    pub fn start(
        upstream: &str,
        rule: impl Fn(&Req) -> Action + Send + Sync + 'static,
    ) -> FaultProxy {
        FaultProxy::start_on("127.0.0.1", upstream, rule)
    }

    /// A proxy on `ip` (any 127.x.y.z is loopback on Linux: another "host").
    pub fn start_on(
        ip: &str,
        upstream: &str,
        rule: impl Fn(&Req) -> Action + Send + Sync + 'static,
    ) -> FaultProxy {
        let listener = TcpListener::bind(format!("{ip}:0")).expect("bind the proxy");
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(ProxyShared {
            upstream: upstream.to_owned(),
            rule: Box::new(rule),
            seq: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = accept.clone();
                std::thread::spawn(move || {
                    let _ = shared.serve(stream);
                });
            }
        });
        FaultProxy { addr, shared }
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        let mut seen = self.shared.seen.lock().unwrap().clone();
        seen.sort_by_key(|s| s.req.seq);
        seen
    }

    /// `ADDR/REPO:TAG`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

impl ProxyShared {
    fn record(&self, req: &Req, status: Option<u16>) {
        self.seen.lock().unwrap().push(Seen {
            req: req.clone(),
            status,
            at: Instant::now(),
        });
    }

    fn stall(&self) {
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Serves one client connection, request after request.
    fn serve(&self, client: TcpStream) -> io::Result<()> {
        let mut from_client = BufReader::new(client.try_clone()?);
        let mut upstream: Option<(TcpStream, BufReader<TcpStream>)> = None;
        loop {
            let mut head = match read_head(&mut from_client) {
                Ok(head) => head,
                Err(_) => return Ok(()),
            };
            let req = Req {
                seq: self.seq.fetch_add(1, Ordering::SeqCst),
                method: head.method.clone(),
                target: head.target.clone(),
                authorization: head.header("authorization").map(str::to_owned),
                content_length: head
                    .header("content-length")
                    .and_then(|v| v.trim().parse().ok()),
            };
            let action = (self.rule)(&req);
            let request_framing = head.body_length(None);
            let forward = match action {
                Action::Stall => {
                    drain_body(&mut from_client, &request_framing)?;
                    self.record(&req, None);
                    self.stall();
                    return Ok(());
                }
                Action::Respond {
                    status,
                    headers,
                    body,
                } => {
                    drain_body(&mut from_client, &request_framing)?;
                    self.record(&req, Some(status));
                    respond(&client, status, &headers, &body);
                    return Ok(());
                }
                Action::Forward(forward) => forward,
            };
            if let Some(delay) = forward.delay {
                std::thread::sleep(delay);
            }
            if upstream.is_none() {
                match TcpStream::connect(&self.upstream) {
                    Ok(up) => {
                        let reader = BufReader::new(up.try_clone()?);
                        upstream = Some((up, reader));
                    }
                    Err(_) => {
                        // The registry is down: the client sees its connection reset.
                        self.record(&req, None);
                        reset(&client);
                        return Ok(());
                    }
                }
            }
            let Some((up, from_up)) = upstream.as_mut() else {
                return Ok(());
            };
            if forward.strip_auth {
                head.set_header("authorization", None);
            }
            // The Host header stays the proxy's: the registry builds upload
            // Locations from it, and the client must keep coming here.
            let sent = up.write_all(&head.bytes()).and_then(|()| {
                copy_body(
                    &mut from_client,
                    up,
                    &request_framing,
                    forward
                        .reset_after_request_bytes
                        .or(forward.stall_after_request_bytes),
                    forward.throttle_request,
                )
            });
            match sent {
                Ok(Copied::All) => {}
                Ok(Copied::Cut) if forward.stall_after_request_bytes.is_some() => {
                    self.record(&req, None);
                    reset(up);
                    self.stall();
                    return Ok(());
                }
                Ok(Copied::Cut) => {
                    self.record(&req, None);
                    reset(up);
                    reset(&client);
                    return Ok(());
                }
                Err(_) => {
                    self.record(&req, None);
                    reset(&client);
                    return Ok(());
                }
            }
            let mut response = match read_head(from_up) {
                Ok(head) => head,
                Err(_) => {
                    self.record(&req, None);
                    reset(&client);
                    return Ok(());
                }
            };
            if let (Some(to), Some(location)) = (
                &forward.location_to,
                response.header("location").map(str::to_owned),
            ) {
                response.set_header("location", Some(relocate(&location, to)));
            }
            self.record(&req, Some(response.status));
            let framing = response.body_length(Some(&req.method));
            let mut out = &client;
            out.write_all(&response.bytes())?;
            let result = relay_response(from_up, &client, &framing, &forward, &self.stop)?;
            match result {
                Relayed::All => {}
                Relayed::Cut => {
                    reset(&client);
                    return Ok(());
                }
                Relayed::Stalled => {
                    self.stall();
                    return Ok(());
                }
                Relayed::Closed => return Ok(()),
            }
        }
    }
}

/// `http://a:1/x?y` with its host and port replaced by `to`.
fn relocate(location: &str, to: &str) -> String {
    match location.split_once("://") {
        Some((scheme, rest)) => {
            let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
            format!("{scheme}://{to}{path}")
        }
        None => format!("http://{to}{location}"),
    }
}

enum Copied {
    All,
    Cut,
}

fn drain_body(from: &mut impl BufRead, framing: &Framing) -> io::Result<()> {
    let mut sink = io::sink();
    copy_body(from, &mut sink, framing, None, None).map(drop)
}

/// Copies a message body (chunked bodies as they are, chunk headers and all).
fn copy_body(
    from: &mut impl BufRead,
    to: &mut impl Write,
    framing: &Framing,
    cut_after: Option<u64>,
    throttle: Option<u64>,
) -> io::Result<Copied> {
    match framing {
        Framing::Length(n) => {
            let mut left = *n;
            let mut done = 0u64;
            let mut buf = [0u8; 16 * 1024];
            let started = Instant::now();
            while left > 0 {
                let want = (left as usize).min(buf.len());
                let got = from.read(&mut buf[..want])?;
                if got == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                let take = match cut_after {
                    Some(cut) if done + got as u64 >= cut => (cut - done) as usize,
                    _ => got,
                };
                to.write_all(&buf[..take])?;
                done += take as u64;
                left -= got as u64;
                if take < got || cut_after == Some(done) && left > 0 {
                    to.flush()?;
                    return Ok(Copied::Cut);
                }
                if let Some(rate) = throttle {
                    let due = Duration::from_secs_f64(done as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
            to.flush()?;
            Ok(Copied::All)
        }
        Framing::Chunked => loop {
            let mut size_line = String::new();
            if from.read_line(&mut size_line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            to.write_all(size_line.as_bytes())?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            from.read_exact(&mut chunk)?;
            to.write_all(&chunk)?;
            if size == 0 {
                to.flush()?;
                return Ok(Copied::All);
            }
        },
        Framing::UntilClose => {
            io::copy(from, to)?;
            Ok(Copied::All)
        }
    }
}

enum Relayed {
    All,
    Cut,
    Stalled,
    Closed,
}

/// Relays a response body of a known length, applying the response faults;
/// other framings are relayed as they are.
fn relay_response(
    from: &mut BufReader<TcpStream>,
    client: &TcpStream,
    framing: &Framing,
    forward: &Forward,
    stop: &AtomicBool,
) -> io::Result<Relayed> {
    let mut out = client;
    let Framing::Length(n) = framing else {
        let until_close = matches!(framing, Framing::UntilClose);
        copy_body(from, &mut out, framing, None, None)?;
        return Ok(if until_close {
            Relayed::Closed
        } else {
            Relayed::All
        });
    };
    let _ = stop;
    let mut done = 0u64;
    let mut buf = [0u8; 16 * 1024];
    while done < *n {
        let want = ((*n - done) as usize).min(buf.len());
        let got = from.read(&mut buf[..want])?;
        if got == 0 {
            return Ok(Relayed::Cut);
        }
        let chunk = &mut buf[..got];
        if let Some(at) = forward.corrupt_response_byte
            && at >= done
            && at < done + got as u64
        {
            chunk[(at - done) as usize] ^= 0xff;
        }
        let limit = forward
            .reset_after_response_bytes
            .map(|cut| (cut, Relayed::Cut))
            .or(forward
                .stall_after_response_bytes
                .map(|cut| (cut, Relayed::Stalled)));
        if let Some((cut, outcome)) = limit
            && done + got as u64 >= cut
        {
            out.write_all(&chunk[..(cut - done) as usize])?;
            out.flush()?;
            return Ok(outcome);
        }
        out.write_all(chunk)?;
        done += got as u64;
    }
    out.flush()?;
    Ok(Relayed::All)
}

/// Counts how often each (method, is-blob) request was answered with each status; for messages.
pub fn summary(seen: &[Seen]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in seen {
        let path = s.req.target.split('?').next().unwrap_or("");
        let key = format!(
            "{} {} -> {}",
            s.req.method,
            path,
            s.status.map(|c| c.to_string()).unwrap_or("cut".into())
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(k, n)| format!("{n}x {k}"))
        .collect::<Vec<_>>()
        .join("\n")
}
