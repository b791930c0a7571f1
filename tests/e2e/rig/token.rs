//! The test token server: Docker Hub's token service in miniature, which a
//! token-auth [`TestRegistry`](super::registry::TestRegistry) trusts. It
//! checks Basic credentials and signs real RS256 JWTs with `openssl dgst
//! -sha256 -sign`, whose `x5c` header holds the certificate the registry
//! trusts, for service `registry.docker.io`. A token's real lifetime can be
//! shorter than the `expires_in` it advertises, which is how a token
//! "expires" mid-push.
//!
//! Quirks of distribution 2.8.2 that shape this file:
//! * it accepts a token up to 60 s after its `exp` (a fixed clock-skew
//!   leeway, `token.Leeway`), so a token server that wants tokens to die
//!   after N seconds sets `exp = now + N - 60`; `expires_in` says N.
//! * it verifies `x5c` against `rootcertbundle` with any key usage, so a
//!   self-signed certificate that is its own root works.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::http::{parse_form, read_request, respond};
use super::registry::Creds;
use super::{show, unique};

/// The service name Docker Hub's registry uses in its token challenge.
pub const HUB_SERVICE: &str = "registry.docker.io";
/// The issuer the token registry trusts.
pub const TOKEN_ISSUER: &str = "stowage-test-token-issuer";

/// A token the server handed out.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub subject: String,
    /// The `scope` parameters of the request.
    pub scopes: Vec<String>,
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
    dir: tempfile::TempDir,
    log: Arc<Mutex<TokenLog>>,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    /// A token server that knows `users` and hands out tokens the registry
    /// accepts for `lifetime` (whole seconds, at least 1) while the answer
    /// says they live `expires_in` seconds.
    pub fn start(users: Vec<Creds>, lifetime: Duration, expires_in: u64) -> TokenServer {
        assert!(lifetime.as_secs() >= 1, "token lifetimes are whole seconds");
        let dir = tempfile::Builder::new()
            .prefix("stowage-token-")
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
        let host = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(TokenLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(TokenContext {
            users: users.clone(),
            lifetime: lifetime.as_secs(),
            expires_in,
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
        self.dir.path().join("token-cert.pem")
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
    expires_in: u64,
    key: PathBuf,
    x5c: String,
    log: Arc<Mutex<TokenLog>>,
}

impl TokenContext {
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Ok((req, body)) = read_request(&stream) else {
            return;
        };
        if req.path() != "/token" {
            return respond(&stream, 404, &[], b"{\"details\":\"no such endpoint\"}");
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
                (req.query(), creds)
            }
            "POST" => {
                let form = parse_form(&String::from_utf8_lossy(&body));
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
            _ => return respond(&stream, 405, &[], b"{}"),
        };
        let service = params
            .iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.as_str());
        if service != Some(HUB_SERVICE) {
            return respond(
                &stream,
                400,
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
            "expires_in": self.expires_in,
            "issued_at": issued_at,
        });
        self.log.lock().unwrap().issued.push(IssuedToken {
            token,
            subject,
            scopes,
        });
        respond(&stream, 200, &[], &serde_json::to_vec(&body).unwrap());
    }

    fn sign(&self, subject: &str, access: &[Value]) -> String {
        let now = unix_now();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]});
        // distribution accepts a token until exp + 60 s (its clock-skew
        // leeway); exp is set so that the registry refuses it after
        // `lifetime` seconds. A lifetime under 60 s puts exp in the past:
        // nbf and iat stay before it.
        let exp = now + self.lifetime as i64 - 60;
        let claims = json!({
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": HUB_SERVICE,
            "exp": exp,
            "nbf": now.min(exp) - 5,
            "iat": now.min(exp) - 5,
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

/// An RSA key and a self-signed certificate in `dir` (`NAME-key.pem`,
/// `NAME-cert.pem`), with an optional subjectAltName: the token server's
/// signing key, and the TLS registry's certificate.
pub fn self_signed(dir: &Path, name: &str, san: Option<&str>) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}-key.pem"));
    let cert = dir.join(format!("{name}-cert.pem"));
    let mut cmd = StdCommand::new("openssl");
    cmd.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    ])
    .args(["-subj", &format!("/CN=stowage-test-{name}"), "-keyout"])
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

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: i64) -> String {
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
