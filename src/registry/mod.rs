//! The registry HTTP API client: authentication, pulls into the store, pushes from it, and retries.
//!
//! Why not oci-client for the whole of it: its push buffers whole blobs in
//! memory, has no retries, and mounts with a token scoped to one repository,
//! which Docker Hub refuses; and a pull path of its own would keep a second
//! token cache beside the one a push needs. So the registry API is spoken
//! here directly, on reqwest's blocking client: uploads stream from store
//! files with a Content-Length, every request shares one auth state and one
//! retry policy, and blobs are pushed by a bounded pool of threads.

pub mod auth;
pub mod credentials;
pub mod hub;
mod pull;
mod push;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER, WWW_AUTHENTICATE};

use crate::digest::Digest;
use crate::image::MAX_JSON_BYTES;
use crate::reference::{ImageRef, api_host};
use crate::store::StoreError;
use auth::{Challenge, ChallengeError, Scope, Token, TokenResponse};
use credentials::{Credential, CredentialError};

/// The default longest wait for a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default longest stall: no answer, or no next bytes of an answer, for this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The default number of retries after the first attempt.
pub const DEFAULT_RETRIES: u32 = 5;

/// The slowest upload rate that is not a stall, in bytes per second.
///
/// reqwest's blocking client waits for a streamed request body and its
/// answer under one deadline, and nothing can extend that deadline while
/// the body flows, so an upload cannot have a stall watchdog of its own. Its
/// deadline is the stall timeout plus the time its bytes take at this rate
/// instead: 1 GiB gets 4.5 hours. Downloads need no such rule: the blocking
/// client applies the timeout to each read of the body, which is exactly a
/// stall watchdog.
const SLOWEST_UPLOAD: u64 = 64 * 1024;

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach {registry} ({what}): {}", network_cause(.source))]
    Connect {
        registry: String,
        what: String,
        plain_http: bool,
        #[source]
        source: reqwest::Error,
    },
    #[error("{registry} refused the credentials for {what}")]
    Unauthorized {
        registry: String,
        what: String,
        had_credentials: bool,
    },
    #[error("{what} was not found on {registry}")]
    NotFound { registry: String, what: String },
    #[error("{registry} answered {status} to {what}{detail}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    #[error("{registry} sent {what} with digest {actual}, not {expected}")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{registry} sent {what} of {size} bytes, more than the {limit} stowage accepts")]
    TooLarge {
        registry: String,
        what: String,
        size: u64,
        limit: u64,
    },
    #[error("{registry}: {problem}")]
    Protocol { registry: String, problem: String },
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("{what}: {source}")]
    Store {
        what: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot push blob {digest} to {registry}")]
    Blob {
        registry: String,
        digest: Digest,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("{registry} ({what}): the connection failed while sending")]
    Send {
        registry: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Connect {
                registry, source, ..
            } if source.is_timeout() => Some(format!(
                "{registry} stopped answering; if it is only slow, raise --timeout (or STOWAGE_TIMEOUT), else check the network"
            )),
            RegistryError::Connect {
                registry, source, ..
            } if chain_text(source).contains("certificate") => Some(format!(
                "{registry}'s TLS certificate is not trusted; add its CA to the system's trust store, or, only if you trust the network, pass --insecure-registry {registry}"
            )),
            RegistryError::Connect {
                registry, plain_http: true, ..
            } => Some(format!(
                "{registry} seems to speak plain HTTP; if you trust it, pass --insecure-registry {registry}"
            )),
            RegistryError::Connect { registry, .. } => Some(format!(
                "check that {registry} is up and reachable (HTTPS_PROXY/NO_PROXY are honoured); for a plain-HTTP registry pass --insecure-registry {registry}"
            )),
            RegistryError::Unauthorized {
                registry,
                had_credentials: true,
                ..
            } => Some(format!("check the username and password: `stowage login {registry} -u USER --password-stdin`")),
            RegistryError::Unauthorized { registry, .. } => {
                Some(format!("log in first: `stowage login {registry} -u USER --password-stdin`"))
            }
            RegistryError::NotFound { .. } => {
                Some("check the repository and tag; a private repository also answers this way without access".into())
            }
            RegistryError::Blob { source, .. } => source.hint(),
            RegistryError::Store { source, .. } => source.hint(),
            _ => None,
        }
    }
}

/// Where the blobs of a remote image can be fetched (or mounted) from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub registry: String,
    pub repository: String,
}

impl Origin {
    /// The repository `reference` lives in.
    pub fn of(reference: &ImageRef) -> Origin {
        Origin {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
        }
    }
}

/// Where verbose log lines go; never handed a secret.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Receives byte counts of blob transfers, for progress displays.
pub trait TransferProgress: Send + Sync {
    /// A transfer of `bytes` begins (`verb` is "pushing" or "pulling").
    fn begin(&self, verb: &str, digest: &Digest, bytes: u64);
    /// `bytes` more went over the wire.
    fn advance(&self, bytes: u64);
    /// The blob is done: `outcome` says how ("uploaded", "mounted", "present", "downloaded").
    fn end(&self, outcome: &str, digest: &Digest, bytes: u64);
}

/// Counts bytes read through it into a progress display.
struct CountingReader<R> {
    inner: R,
    progress: Option<Arc<dyn TransferProgress>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(progress) = &self.progress {
            progress.advance(n as u64);
        }
        Ok(n)
    }
}

/// Settings for the client.
#[derive(Clone, Default)]
pub struct RegistryOptions {
    /// Hosts reached over plain HTTP or unverified TLS.
    pub insecure: Vec<String>,
    /// Upload in chunks of this size instead of one streamed PUT.
    pub chunk_size: Option<u64>,
    /// Blobs pushed at once.
    pub jobs: usize,
    /// Retries after the first attempt.
    pub retries: u32,
    /// Longest wait for a connection (default `DEFAULT_CONNECT_TIMEOUT`).
    pub connect_timeout: Option<Duration>,
    /// Longest stall: no answer, or no next bytes of a download, for this long (default `DEFAULT_TIMEOUT`).
    pub timeout: Option<Duration>,
    /// Verbose log sink; never given secrets.
    pub log: Option<LogSink>,
    /// Progress display for blob transfers.
    pub progress: Option<Arc<dyn TransferProgress>>,
}

/// What a push did with each blob.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    pub skipped: usize,
    pub mounted: usize,
    pub uploaded: usize,
    pub uploaded_bytes: u64,
}

#[derive(Debug, Clone)]
enum HostAuth {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Default)]
struct AuthState {
    schemes: HashMap<String, &'static str>,
    hosts: HashMap<String, HostAuth>,
    tokens: HashMap<String, Token>,
    credentials: HashMap<String, Option<Credential>>,
}

/// A client for any number of registries, sharing auth state across threads.
pub struct Registry {
    http: Client,
    http_insecure: Client,
    options: RegistryOptions,
    state: Mutex<AuthState>,
    /// Held while the scheme of an insecure registry is being found out, so
    /// concurrent requests wait for one probe instead of each trying HTTPS.
    scheme_probe: Mutex<()>,
    /// Credentials given on the command line (`login`), used instead of stored ones.
    override_credential: Option<(String, Credential)>,
}

fn http_client(insecure: bool, options: &RegistryOptions) -> Result<Client, reqwest::Error> {
    let mut builder = Client::builder()
        .user_agent(concat!("stowage/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
        // Set per request instead (see `request_deadline`): a multi-gigabyte
        // upload legitimately takes long, a stalled answer does not.
        .timeout(None::<Duration>)
        .pool_max_idle_per_host(16);
    // An upload the registry stops reading would otherwise wait out its
    // size-scaled deadline (hours for gigabytes): the kernel cuts the
    // connection once sent bytes have waited unacknowledged, or behind a
    // zero window, for the stall timeout.
    #[cfg(target_os = "linux")]
    {
        builder = builder.tcp_user_timeout(options.timeout.unwrap_or(DEFAULT_TIMEOUT));
    }
    if insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build()
}

impl Registry {
    /// A client with these options.
    pub fn new(options: RegistryOptions) -> Result<Registry, RegistryError> {
        // reqwest is built without a default crypto provider; ring is the one linked in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build_err = |source| RegistryError::Connect {
            registry: "(client)".into(),
            what: "setting up HTTP".into(),
            plain_http: false,
            source,
        };
        Ok(Registry {
            http: http_client(false, &options).map_err(build_err)?,
            http_insecure: http_client(true, &options).map_err(build_err)?,
            options,
            state: Mutex::new(AuthState::default()),
            scheme_probe: Mutex::new(()),
            override_credential: None,
        })
    }

    /// Uses `credential` for `registry` instead of stored credentials.
    pub fn with_credential(mut self, registry: &str, credential: Credential) -> Registry {
        self.override_credential = Some((registry.to_string(), credential));
        self
    }

    fn log(&self, message: &str) {
        if let Some(log) = &self.options.log {
            log(message);
        }
    }

    fn stall_timeout(&self) -> Duration {
        self.options.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// How long a request may take before it counts as stalled: the stall
    /// timeout, plus for a streamed upload the time its bytes need at `SLOWEST_UPLOAD`.
    fn request_deadline(&self, request: &reqwest::blocking::Request) -> Duration {
        let body = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        self.stall_timeout() + Duration::from_secs(body / SLOWEST_UPLOAD)
    }

    /// `what`, saying that retrying did not help when there were retries.
    fn gave_up(&self, what: &str) -> String {
        match self.options.retries {
            0 => what.to_string(),
            n => format!("{what}; gave up after {} attempts", n + 1),
        }
    }

    fn is_insecure(&self, registry: &str) -> bool {
        let host = api_host(registry);
        self.options
            .insecure
            .iter()
            .any(|h| *h == registry || *h == host)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthState> {
        // A thread that panicked while holding the lock left only caches behind.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// For an `--insecure-registry` host, finds out once whether it speaks HTTPS
    /// (certificate unchecked) or only plain HTTP (I/O: one GET /v2/).
    fn probe_scheme(&self, registry: &str) {
        if self.lock().schemes.contains_key(registry) {
            return;
        }
        let _probing = self.scheme_probe.lock().unwrap_or_else(|p| p.into_inner());
        if self.lock().schemes.contains_key(registry) {
            return;
        }
        let url = format!("https://{}/v2/", api_host(registry));
        let scheme = match self.http_insecure.get(&url).send() {
            Ok(_) => "https",
            Err(error) => {
                self.log(&format!(
                    "{registry}: HTTPS failed ({error}); using plain HTTP as --insecure-registry allows"
                ));
                "http"
            }
        };
        self.lock().schemes.insert(registry.to_string(), scheme);
    }

    fn base_url(&self, registry: &str) -> String {
        let scheme = self
            .lock()
            .schemes
            .get(registry)
            .copied()
            .unwrap_or("https");
        format!("{scheme}://{}", api_host(registry))
    }

    fn credential(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credential>, RegistryError> {
        if let Some((r, c)) = &self.override_credential
            && r == registry
        {
            return Ok(Some(c.clone()));
        }
        if let Some(found) = self.lock().credentials.get(registry) {
            return Ok(found.clone());
        }
        let found = credentials::find_credential(registry, repository)?;
        self.lock()
            .credentials
            .insert(registry.to_string(), found.clone());
        Ok(found)
    }

    fn token_key(registry: &str, scopes: &[Scope]) -> String {
        let set: BTreeSet<String> = scopes.iter().map(ToString::to_string).collect();
        format!(
            "{registry} {}",
            set.into_iter().collect::<Vec<_>>().join(" ")
        )
    }

    /// The Authorization header for a request needing `scopes`, fetching a token if needed (I/O).
    fn authorization(
        &self,
        registry: &str,
        scopes: &[Scope],
    ) -> Result<Option<String>, RegistryError> {
        let host_auth = self.lock().hosts.get(registry).cloned();
        let repository = scopes.first().map(|s| s.repository.as_str()).unwrap_or("");
        match host_auth {
            None => Ok(None),
            Some(HostAuth::Basic) => Ok(self
                .credential(registry, repository)?
                .map(|c| basic_header(&c))),
            Some(HostAuth::Bearer { realm, service }) => {
                let key = Self::token_key(registry, scopes);
                if let Some(token) = self.lock().tokens.get(&key)
                    && token.expires > Instant::now()
                {
                    return Ok(Some(format!("Bearer {}", token.value)));
                }
                let token = self.fetch_token(registry, &realm, service.as_deref(), scopes)?;
                let header = format!("Bearer {}", token.value);
                self.lock().tokens.insert(key, token);
                Ok(Some(header))
            }
        }
    }

    fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[Scope],
    ) -> Result<Token, RegistryError> {
        let repository = scopes.first().map(|s| s.repository.as_str()).unwrap_or("");
        let credential = self.credential(registry, repository)?;
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(service) = service {
            query.push(("service", service.to_string()));
        }
        for scope in scopes {
            query.push(("scope", scope.to_string()));
        }
        let realm_insecure = self.is_insecure(registry);
        let client = if realm_insecure {
            &self.http_insecure
        } else {
            &self.http
        };
        let what = "a token".to_string();
        let mut attempt = 0;
        loop {
            let mut request = client
                .get(realm)
                .query(&query)
                .timeout(self.stall_timeout());
            if let Some(c) = &credential {
                request = request.header(AUTHORIZATION, basic_header(c));
            }
            self.log(&format!(
                "GET token from {} for {}",
                realm_host(realm),
                scope_list(scopes)
            ));
            match request.send() {
                Ok(response) if response.status().is_success() => {
                    let body = read_limited(response, MAX_JSON_BYTES, registry, &what)?;
                    let parsed: TokenResponse =
                        serde_json::from_slice(&body).map_err(|_| RegistryError::Protocol {
                            registry: registry.to_string(),
                            problem:
                                "the token service answered with something that is not a token"
                                    .into(),
                        })?;
                    return parsed.into_token(Instant::now()).ok_or_else(|| {
                        RegistryError::Protocol {
                            registry: registry.to_string(),
                            problem: "the token service answered without a token".into(),
                        }
                    });
                }
                Ok(response) if matches!(response.status().as_u16(), 401 | 403) => {
                    return Err(RegistryError::Unauthorized {
                        registry: registry.to_string(),
                        what: scope_list(scopes),
                        had_credentials: credential.is_some(),
                    });
                }
                Ok(response)
                    if is_retryable(response.status()) && attempt < self.options.retries =>
                {
                    let wait = retry_wait(&response, attempt);
                    self.log(&format!(
                        "token service answered {}; retrying in {wait:?}",
                        response.status()
                    ));
                    std::thread::sleep(wait);
                }
                Ok(response) => return Err(status_error(registry, &what, response)),
                Err(source) if attempt < self.options.retries => {
                    let wait = backoff(attempt);
                    self.log(&format!(
                        "token service unreachable ({source}); retrying in {wait:?}"
                    ));
                    std::thread::sleep(wait);
                }
                Err(source) => {
                    return Err(RegistryError::Connect {
                        registry: realm_host(realm),
                        what: self.gave_up(&what),
                        plain_http: false,
                        source: redact_error(source),
                    });
                }
            }
            attempt += 1;
        }
    }

    /// Sends a request built by `make` (called again for each attempt), handling auth challenges and retries (I/O).
    ///
    /// The Authorization header goes only to the registry's own host: an
    /// upload URL or redirect pointing elsewhere never sees a credential.
    fn send(
        &self,
        registry: &str,
        scopes: &[Scope],
        what: &str,
        make: &dyn Fn(&Client, &str) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.send_with(registry, scopes, what, make, true)
    }

    /// `send`, retrying a request that broke off in transit only when
    /// `retry_transport` is set. An upload is not retried here: the registry
    /// may have kept the part it received, and the same session then
    /// refuses the blob sent again from its start ("upload resumed at wrong
    /// offset"); `upload` starts a new session instead.
    fn send_with(
        &self,
        registry: &str,
        scopes: &[Scope],
        what: &str,
        make: &dyn Fn(&Client, &str) -> RequestBuilder,
        retry_transport: bool,
    ) -> Result<Response, RegistryError> {
        let insecure = self.is_insecure(registry);
        if insecure {
            self.probe_scheme(registry);
        }
        let client = if insecure {
            &self.http_insecure
        } else {
            &self.http
        };
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            let base = self.base_url(registry);
            let mut request =
                make(client, &base)
                    .build()
                    .map_err(|source| RegistryError::Connect {
                        registry: registry.to_string(),
                        what: what.to_string(),
                        plain_http: false,
                        source: redact_error(source),
                    })?;
            *request.timeout_mut() = Some(self.request_deadline(&request));
            let same_host = request.url().host_str().map(|h| {
                let with_port = match request.url().port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                };
                with_port == api_host(registry) || h == api_host(registry)
            });
            if same_host == Some(true)
                && let Some(header) = self.authorization(registry, scopes)?
                && let Ok(value) = header.parse()
            {
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            self.log(&format!(
                "{} {} ({what})",
                request.method(),
                redact_url(request.url())
            ));
            match client.execute(request) {
                Err(source) => {
                    let plain_http = looks_like_plain_http(&source);
                    if insecure && base.starts_with("https://") {
                        self.log(&format!("{registry}: HTTPS failed ({source}); using plain HTTP as --insecure-registry allows"));
                        self.lock().schemes.insert(registry.to_string(), "http");
                        continue;
                    }
                    if retry_transport
                        && attempt < self.options.retries
                        && !plain_http
                        && !is_permanent(&source)
                    {
                        let wait = backoff(attempt);
                        self.log(&format!("{registry}: {source}; retrying in {wait:?}"));
                        std::thread::sleep(wait);
                        attempt += 1;
                        continue;
                    }
                    return Err(RegistryError::Connect {
                        registry: registry.to_string(),
                        what: if plain_http || is_permanent(&source) || !retry_transport {
                            what.to_string()
                        } else {
                            self.gave_up(what)
                        },
                        plain_http,
                        source: redact_error(source),
                    });
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    if reauthenticated {
                        let had_credentials = self
                            .credential(
                                registry,
                                scopes.first().map(|s| s.repository.as_str()).unwrap_or(""),
                            )?
                            .is_some();
                        return Err(RegistryError::Unauthorized {
                            registry: registry.to_string(),
                            what: what.to_string(),
                            had_credentials,
                        });
                    }
                    let header = response
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let learned = match auth::parse_challenge(&header)? {
                        Challenge::Basic => HostAuth::Basic,
                        Challenge::Bearer { realm, service } => HostAuth::Bearer { realm, service },
                    };
                    let key = Self::token_key(registry, scopes);
                    let mut state = self.lock();
                    state.hosts.insert(registry.to_string(), learned);
                    // A 401 with a token in hand means it expired or lacks a scope: fetch a new one.
                    state.tokens.remove(&key);
                    drop(state);
                    reauthenticated = true;
                }
                Ok(response)
                    if is_retryable(response.status()) && attempt < self.options.retries =>
                {
                    let wait = retry_wait(&response, attempt);
                    self.log(&format!(
                        "{registry} answered {} to {what}; retrying in {wait:?}",
                        response.status()
                    ));
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Ok(response) => return Ok(response),
            }
        }
    }

    /// Checks that `credential` is accepted by `registry` (I/O), as `stowage login` does before saving it.
    pub fn check_login(&self, registry: &str) -> Result<(), RegistryError> {
        let response = self.send(registry, &[], "logging in", &|c, base| {
            c.get(format!("{base}/v2/"))
        })?;
        if response.status().is_success() {
            return Ok(());
        }
        let needs_token_check = matches!(
            self.lock().hosts.get(registry),
            Some(HostAuth::Bearer { .. })
        );
        if needs_token_check && response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(status_error(registry, "logging in", response))
    }

    fn absolute(&self, registry: &str, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{}", self.base_url(registry), location)
        }
    }
}

fn basic_header(credential: &Credential) -> String {
    let raw = format!("{}:{}", credential.username, credential.secret);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// What a failed request ran into, in words: reqwest's own messages speak of receivers and bodies.
fn network_cause(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "no answer within the timeout"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_request() {
        "the connection broke off"
    } else {
        "the request failed"
    }
}

/// The error without its URL's query: upload and redirect URLs may carry signed state or credentials.
fn redact_error(mut error: reqwest::Error) -> reqwest::Error {
    if let Some(url) = error.url_mut() {
        url.set_query(None);
        let _ = url.set_password(None);
    }
    error
}

fn scope_list(scopes: &[Scope]) -> String {
    if scopes.is_empty() {
        return "the registry".into();
    }
    scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn realm_host(realm: &str) -> String {
    reqwest::Url::parse(realm)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "the token service".into())
}

/// A URL without its query: upload URLs carry session state some registries sign.
fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn read_limited(
    response: Response,
    limit: u64,
    registry: &str,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    if let Some(length) = response.content_length()
        && length > limit
    {
        return Err(RegistryError::TooLarge {
            registry: registry.to_string(),
            what: what.to_string(),
            size: length,
            limit,
        });
    }
    let mut bytes = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| RegistryError::Send {
            registry: registry.to_string(),
            what: what.to_string(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::TooLarge {
            registry: registry.to_string(),
            what: what.to_string(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

fn status_error(registry: &str, what: &str, response: Response) -> RegistryError {
    let status = response.status().as_u16();
    let detail = read_limited(response, 4096, registry, what)
        .ok()
        .and_then(|body| registry_error_text(&body))
        .map(|text| format!(": {text}"))
        .unwrap_or_default();
    RegistryError::Status {
        registry: registry.to_string(),
        what: what.to_string(),
        status,
        detail,
    }
}

/// The `errors[].message` of a registry error body, if it has one.
fn registry_error_text(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let errors = value.get("errors")?.as_array()?;
    let texts: Vec<String> = errors
        .iter()
        .filter_map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            let text = format!("{code} {message}").trim().to_string();
            (!text.is_empty()).then(|| text.chars().take(200).collect())
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("; "))
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Errors a retry cannot fix: a bad request, a redirect loop, an untrusted certificate.
fn is_permanent(error: &reqwest::Error) -> bool {
    error.is_builder() || error.is_redirect() || chain_text(error).contains("certificate")
}

/// The error and all its causes as one lower-case text, for recognising kinds reqwest does not expose.
fn chain_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push(' ');
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.to_lowercase()
}

fn looks_like_plain_http(error: &reqwest::Error) -> bool {
    let text = chain_text(error);
    text.contains("invalidcontenttype")
        || text.contains("corrupt message")
        || text.contains("wrong version number")
}

/// Exponential backoff from 0.5 s, capped at 30 s, with ±25% jitter so retrying clients spread out.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << attempt.min(6)).min(30_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    let jitter = (nanos % (base / 2 + 1)) as i64 - (base / 4) as i64;
    Duration::from_millis((base as i64 + jitter).max(50) as u64)
}

/// `Retry-After` (seconds or an HTTP date, capped at 5 minutes) when given, else the backoff.
fn retry_wait(response: &Response, attempt: u32) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after_secs(v, now))
        .map(|secs| Duration::from_secs(secs.min(300)))
        .unwrap_or_else(|| backoff(attempt))
}

/// A `Retry-After` value in seconds from `now` (Unix seconds): delay-seconds,
/// or an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110).
fn retry_after_secs(value: &str, now: u64) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let (_, date) = value.split_once(", ")?;
    let mut parts = date.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's days_from_civil).
    let (y, mo) = if month <= 2 {
        (year.checked_sub(1)?, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y % 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let at = days * 86_400 + h * 3600 + m * 60 + sec;
    Some(at.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..10 {
            let wait = backoff(attempt);
            assert!(
                wait >= Duration::from_millis(50) && wait <= Duration::from_millis(37_500),
                "{wait:?}"
            );
        }
        assert!(backoff(4) > backoff(0));
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(retry_after_secs(" 7 ", 0), Some(7));
        // 1994-11-06T08:49:37Z is 784111777.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(retry_after_secs(date, 784_111_777 - 30), Some(30));
        assert_eq!(
            retry_after_secs(date, 784_111_777 + 5),
            Some(0),
            "a past date: now"
        );
        assert_eq!(
            retry_after_secs("Thu, 29 Feb 2024 00:00:00 GMT", 1_709_164_800 - 1),
            Some(1)
        );
        for bad in [
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "",
        ] {
            assert_eq!(retry_after_secs(bad, 0), None, "{bad}");
        }
    }

    #[test]
    fn registry_error_bodies_are_summarised() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        assert_eq!(
            registry_error_text(body).unwrap(),
            "MANIFEST_UNKNOWN manifest unknown"
        );
        assert_eq!(registry_error_text(b"<html>"), None);
    }
}
