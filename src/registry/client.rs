//! The HTTP client every registry request goes through: the scheme of an insecure or loopback host, the Authorization header, retries with backoff, and re-authentication on a 401.
//!
//! Not for what the requests mean (`pull`, `push`), nor for how credentials
//! and tokens are found (`auth`, `credentials`): this only asks `auth` for a
//! header and tells it about challenges.

use std::io::Read;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, Request, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER, WWW_AUTHENTICATE};

use super::auth::{self, Challenge, Scope};
use super::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, NetworkError, NetworkFailure, Registry,
    RegistryError, RegistryOptions, relock,
};
use crate::reference::api_host;

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

/// A blocking HTTP client with the options' timeouts; an `insecure` one accepts any certificate.
pub(super) fn http_client(
    insecure: bool,
    options: &RegistryOptions,
) -> Result<Client, reqwest::Error> {
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
    pub(super) fn log(&self, message: &str) {
        if let Some(log) = &self.options.log {
            log(message);
        }
    }

    pub(super) fn stall_timeout(&self) -> Duration {
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
    pub(super) fn gave_up(&self, what: &str) -> String {
        after_attempts(what, self.options.retries + 1)
    }

    /// How long to wait before retrying a request to `host` that got no
    /// answer, after `attempt` retries; `None` to give up. See [`retry_wait_without_answer`].
    pub(super) fn retry_without_answer(
        &self,
        failure: NetworkFailure,
        host: &str,
        attempt: u32,
    ) -> Option<Duration> {
        retry_wait_without_answer(failure, is_loopback(host), attempt, self.options.retries)
    }

    /// Whether `--insecure-registry` names the registry or its API host:
    /// plain HTTP or unverified TLS for it.
    pub(super) fn is_insecure(&self, registry: &str) -> bool {
        let host = api_host(registry);
        self.options
            .insecure
            .iter()
            .any(|h| *h == registry || *h == host)
    }

    /// Whether requests to the registry went over plain HTTP (they do from
    /// the first HTTPS failure on an insecure or loopback host on).
    pub fn reached_over_plain_http(&self, registry: &str) -> bool {
        relock(&self.schemes).get(registry) == Some(&"http")
    }

    /// For an insecure or loopback host, finds out once whether it speaks
    /// HTTPS or only plain HTTP (I/O: one GET /v2/). An insecure host's
    /// certificate is not checked, and any HTTPS failure means plain HTTP; a
    /// loopback host's certificate is, and only an answer in plain HTTP
    /// means plain HTTP, so an untrusted certificate is still refused.
    fn probe_scheme(&self, registry: &str, insecure: bool) {
        if relock(&self.schemes).contains_key(registry) {
            return;
        }
        let _probing = relock(&self.scheme_probe);
        if relock(&self.schemes).contains_key(registry) {
            return;
        }
        let url = format!("https://{}/v2/", api_host(registry));
        match self.client(insecure).get(&url).send() {
            Err(error) if insecure || failure_of(&error) == NetworkFailure::PlainHttp => {
                self.use_plain_http(registry, &error);
            }
            _ => {
                relock(&self.schemes).insert(registry.to_string(), "https");
            }
        }
    }

    /// Reaches `registry` over plain HTTP from now on, saying why.
    fn use_plain_http(&self, registry: &str, error: &reqwest::Error) {
        let allowed_by = if self.is_insecure(registry) {
            "as --insecure-registry allows"
        } else {
            "as a loopback registry may"
        };
        self.log(&format!(
            "{registry}: HTTPS failed ({error}); using plain HTTP {allowed_by}"
        ));
        relock(&self.schemes).insert(registry.to_string(), "http");
    }

    /// The client for a registry: an `--insecure-registry` one accepts any certificate.
    pub(super) fn client(&self, insecure: bool) -> &Client {
        if insecure {
            &self.http_insecure
        } else {
            &self.http
        }
    }

    /// The scheme and API host the registry is reached at.
    fn base_url(&self, registry: &str) -> String {
        let scheme = relock(&self.schemes)
            .get(registry)
            .copied()
            .unwrap_or("https");
        format!("{scheme}://{}", api_host(registry))
    }

    /// An upload Location as a full URL: registries may answer with a path.
    pub(super) fn absolute(&self, registry: &str, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{}", self.base_url(registry), location)
        }
    }

    /// Sends a request built by `make` (called again for each attempt), handling auth challenges and retries (I/O).
    ///
    /// The Authorization header goes only to the registry's own host: an
    /// upload URL or redirect pointing elsewhere never sees a credential.
    pub(super) fn send(
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
    pub(super) fn send_with(
        &self,
        registry: &str,
        scopes: &[Scope],
        what: &str,
        make: &dyn Fn(&Client, &str) -> RequestBuilder,
        retry_transport: bool,
    ) -> Result<Response, RegistryError> {
        let insecure = self.is_insecure(registry);
        let loopback = is_loopback(registry);
        if insecure || loopback {
            self.probe_scheme(registry, insecure);
        }
        let call = Call {
            registry,
            scopes,
            what,
            make,
            retry_transport,
            insecure,
            loopback,
        };
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            let base = self.base_url(registry);
            let request = self.prepare(&call, &base)?;
            let sent = self.client(insecure).execute(request);
            match self.classify(&call, &base, sent, attempt, reauthenticated) {
                Next::Done(response) => return Ok(response),
                Next::Fail(error) => return Err(error),
                Next::Retry { wait, why } => {
                    self.pause(&why, wait);
                    attempt += 1;
                }
                Next::PlainHttp(error) => self.use_plain_http(registry, &error),
                Next::Reauth(challenge) => {
                    self.learn_challenge(registry, scopes, challenge);
                    reauthenticated = true;
                }
            }
        }
    }

    /// One attempt's request, built afresh each time (a streamed body goes
    /// out once), with its deadline, and with the Authorization header when
    /// it goes to the registry's own host (I/O: may fetch a token).
    fn prepare(&self, call: &Call<'_>, base: &str) -> Result<Request, RegistryError> {
        let mut request = (call.make)(self.client(call.insecure), base)
            .build()
            .map_err(|source| RegistryError::Connect {
                registry: call.registry.to_string(),
                what: call.what.to_string(),
                plain_http: false,
                source: no_answer(source),
            })?;
        *request.timeout_mut() = Some(self.request_deadline(&request));
        if is_registry_host(request.url(), call.registry)
            && let Some(header) = self.authorization(call.registry, call.scopes)?
            && let Ok(value) = header.parse()
        {
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        self.log(&format!(
            "{} {} ({})",
            request.method(),
            redact_url(request.url()),
            call.what
        ));
        Ok(request)
    }

    /// What one attempt's outcome leads to; `attempt` counts the retries so far.
    fn classify(
        &self,
        call: &Call<'_>,
        base: &str,
        sent: reqwest::Result<Response>,
        attempt: u32,
        reauthenticated: bool,
    ) -> Next {
        match sent {
            Err(source) => self.after_transport_error(call, base, source, attempt),
            Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                self.after_unauthorized(call, &response, reauthenticated)
            }
            Ok(response) if is_retryable(response.status()) && attempt < self.options.retries => {
                Next::Retry {
                    wait: retry_wait(&response, attempt),
                    why: format!(
                        "{} answered {} to {}",
                        call.registry,
                        response.status(),
                        call.what
                    ),
                }
            }
            Ok(response) => Next::Done(response),
        }
    }

    /// No answer came: an insecure host's HTTPS falls back to plain HTTP (a
    /// loopback host's when it answered in plain HTTP), a failure that may
    /// pass is retried as [`retry_wait_without_answer`] allows, and an
    /// upload fails at once.
    fn after_transport_error(
        &self,
        call: &Call<'_>,
        base: &str,
        source: reqwest::Error,
        attempt: u32,
    ) -> Next {
        let failure = failure_of(&source);
        let plain_http = failure == NetworkFailure::PlainHttp;
        if base.starts_with("https://") && (call.insecure || (call.loopback && plain_http)) {
            return Next::PlainHttp(source);
        }
        let error = no_answer(source);
        let retry = match call.retry_transport {
            true => self.retry_without_answer(failure, call.registry, attempt),
            false => None,
        };
        if let Some(wait) = retry {
            return Next::Retry {
                wait,
                why: format!("{}: {} ({error})", call.registry, failure.describe()),
            };
        }
        Next::Fail(RegistryError::Connect {
            registry: call.registry.to_string(),
            what: after_attempts(call.what, attempt + 1),
            plain_http,
            source: error,
        })
    }

    /// A 401: the first one teaches how the registry wants to be
    /// authenticated (or that the token went stale); a second one, with
    /// that learned, means the credentials are refused.
    fn after_unauthorized(
        &self,
        call: &Call<'_>,
        response: &Response,
        reauthenticated: bool,
    ) -> Next {
        if reauthenticated {
            let repository = call.scopes.first().map_or("", |s| s.repository.as_str());
            return Next::Fail(match self.credential(call.registry, repository) {
                Ok(found) => RegistryError::Unauthorized {
                    registry: call.registry.to_string(),
                    what: call.what.to_string(),
                    had_credentials: found.is_some(),
                },
                Err(error) => error,
            });
        }
        let header = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match auth::parse_challenge(header) {
            Ok(challenge) => Next::Reauth(challenge),
            Err(error) => Next::Fail(error.into()),
        }
    }

    /// Logs why, then waits before the next attempt.
    pub(super) fn pause(&self, why: &str, wait: Duration) {
        self.log(&format!("{why}; retrying in {wait:?}"));
        std::thread::sleep(wait);
    }

    /// Checks that `credential` is accepted by `registry` (I/O), as `stowage login` does before saving it.
    pub fn check_login(&self, registry: &str) -> Result<(), RegistryError> {
        let response = self.send(registry, &[], "logging in", &|c, base| {
            c.get(format!("{base}/v2/"))
        })?;
        if response.status().is_success() {
            return Ok(());
        }
        let needs_token_check = self.uses_bearer(registry);
        if needs_token_check && response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(status_error(registry, "logging in", response))
    }
}

/// One `send_with` call: what each of its attempts is made from.
struct Call<'a> {
    registry: &'a str,
    scopes: &'a [Scope],
    what: &'a str,
    make: &'a dyn Fn(&Client, &str) -> RequestBuilder,
    retry_transport: bool,
    /// Named by `--insecure-registry`.
    insecure: bool,
    /// This machine's loopback: plain HTTP when it answers in plain HTTP.
    loopback: bool,
}

/// Where `send_with` goes after an attempt.
enum Next {
    /// An answer for the caller, whatever its status.
    Done(Response),
    /// Wait, then send again: counts against the retries.
    Retry {
        wait: Duration,
        why: String,
    },
    /// HTTPS failed on an insecure or loopback host: send again over plain HTTP, not counted.
    PlainHttp(reqwest::Error),
    /// The first 401: learn its challenge, then send again with fresh auth, not counted.
    Reauth(Challenge),
    Fail(RegistryError),
}

/// Whether `registry` (a host with an optional `:port`) is this machine's
/// loopback: `localhost`, an address in 127.0.0.0/8, or `[::1]` — also
/// written as the IPv4-mapped `[::ffff:127.x.y.z]`, which the kernel routes
/// to 127.x.y.z. Decided from the name alone, never by resolving it: a name
/// that DNS points at 127.0.0.1 (`127.0.0.1.nip.io`) could point anywhere
/// tomorrow, so it needs `--insecure-registry` like any other host.
pub fn is_loopback(registry: &str) -> bool {
    let bracketed = registry.strip_prefix('[');
    let (host, port) = match bracketed {
        Some(rest) => {
            let Some((address, after)) = rest.split_once(']') else {
                return false;
            };
            match after {
                "" => (address, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (address, Some(port)),
                    None => return false,
                },
            }
        }
        None => match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        },
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if bracketed.is_some() {
        return host.parse::<std::net::Ipv6Addr>().is_ok_and(|ip| {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        });
    }
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `url` points at the registry's own API host (with or without
/// the port), the only place an Authorization header may go.
fn is_registry_host(url: &reqwest::Url, registry: &str) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let api = api_host(registry);
    let with_port = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    with_port == api || host == api
}

/// The error as a [`NetworkError`]: its kind, its URL without query or
/// password (upload and redirect URLs may carry signed state or
/// credentials), and each cause that says something, once.
pub(super) fn no_answer(error: reqwest::Error) -> NetworkError {
    let failure = failure_of(&error);
    let mut causes: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = next {
        let text = cause.to_string();
        let said = causes.last().is_some_and(|last| last.contains(&text));
        if !said && !only_passes_on(&text) {
            causes.push(text);
        }
        next = cause.source();
    }
    if causes.is_empty() {
        causes.push(failure.describe().to_string());
    }
    let detail = match error.url() {
        Some(url) => format!("{}: {}", redact_url(url), causes.join(": ")),
        None => causes.join(": "),
    };
    NetworkError { failure, detail }
}

/// Whether `message` is one of reqwest's and hyper's wrappers, which say
/// only which layer passed the error on (the URL is shown apart).
fn only_passes_on(message: &str) -> bool {
    let lower = message.to_lowercase();
    lower.starts_with("error sending request for url")
        || lower.starts_with("client error (")
        || ["tcp connect error", "dns error", "error resolving dns"].contains(&lower.as_str())
}

/// What kind of failure a request that got no answer ran into. reqwest
/// exposes timeouts, connect and body errors; refused connections and
/// missing routes are read from the `io::Error` at the chain's end, and DNS
/// failures, certificates and plain HTTP from the causes' text.
pub(super) fn failure_of(error: &reqwest::Error) -> NetworkFailure {
    let causes = causes_text(error);
    let io_kind = io_error_kind(error);
    if error.is_builder() || error.is_redirect() {
        NetworkFailure::Unusable
    } else if causes.contains("certificate") {
        NetworkFailure::Untrusted
    } else if causes.contains("invalidcontenttype")
        || causes.contains("corrupt message")
        || causes.contains("wrong version number")
    {
        NetworkFailure::PlainHttp
    } else if error.is_timeout() {
        NetworkFailure::Timeout
    } else if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        NetworkFailure::Refused
    } else if matches!(
        io_kind,
        Some(std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable)
    ) {
        NetworkFailure::NoRoute
    } else if causes.contains("dns error") || causes.contains("failed to lookup address") {
        NetworkFailure::Unresolved
    } else if error.is_connect() {
        NetworkFailure::NoConnection
    } else if error.is_body() || error.is_request() {
        NetworkFailure::BrokeOff
    } else {
        NetworkFailure::Unusable
    }
}

/// The causes of `error`, without its own message (which holds the URL,
/// whose path may say anything), as one lower-case text.
fn causes_text(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push(' ');
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.to_lowercase()
}

/// The kind of the first `io::Error` among the causes of `error`.
fn io_error_kind(error: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

/// `what`, saying that retrying did not help when there were retries.
pub(super) fn after_attempts(what: &str, attempts: u32) -> String {
    match attempts {
        0 | 1 => what.to_string(),
        n => format!("{what}; gave up after {n} attempts"),
    }
}

/// How long to wait before retry `attempt + 1` of a request that got no
/// answer, or `None` to give up; never more than `retries` retries.
///
/// A refused connection is an answer: nothing listens there. crane
/// (go-containerregistry) never retries it (ECONNREFUSED is not a temporary
/// error in Go's net package); containers/image retries it like any network
/// error, three times from 2 s doubling. On a loopback host it is one quick
/// retry (a registry a script has just started may be a moment late);
/// elsewhere two short ones, about 1.5 s in all, which cover a registry
/// restarting behind a load balancer without making a wrong host or port
/// wait. A name that does not resolve gets one retry after a second (a
/// resolver may fail once; neither peer retries it at all). A certificate,
/// plain HTTP or a request that cannot be built never passes; a timeout or a
/// connection broken mid-answer gets the full backoff.
pub(super) fn retry_wait_without_answer(
    failure: NetworkFailure,
    loopback: bool,
    attempt: u32,
    retries: u32,
) -> Option<Duration> {
    let (most, wait) = match failure {
        NetworkFailure::Refused if loopback => (1, Duration::from_millis(250)),
        NetworkFailure::Refused | NetworkFailure::NoRoute => (2, backoff(attempt)),
        NetworkFailure::Unresolved => (1, Duration::from_secs(1)),
        NetworkFailure::Untrusted | NetworkFailure::PlainHttp | NetworkFailure::Unusable => {
            (0, Duration::ZERO)
        }
        NetworkFailure::Timeout | NetworkFailure::BrokeOff | NetworkFailure::NoConnection => {
            (retries, backoff(attempt))
        }
    };
    (attempt < most.min(retries)).then_some(wait)
}

/// A URL without its query: upload URLs carry session state some registries sign.
fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

/// The body, refused when over `limit` bytes: a hostile registry must not fill memory.
pub(super) fn read_limited(
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

/// An error for an answer the caller cannot use, with the registry's own explanation when it gave one.
pub(super) fn status_error(registry: &str, what: &str, response: Response) -> RegistryError {
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

/// Answers a retry may get past: a timeout, rate limiting, a server error.
pub(super) fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Exponential backoff from 0.5 s, capped at 30 s, with ±25% jitter so retrying clients spread out.
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << attempt.min(6)).min(30_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    let jitter = (nanos % (base / 2 + 1)) as i64 - (base / 4) as i64;
    Duration::from_millis((base as i64 + jitter).max(50) as u64)
}

/// `Retry-After` (seconds or an HTTP date, capped at 5 minutes) when given, else the backoff.
pub(super) fn retry_wait(response: &Response, attempt: u32) -> Duration {
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
    fn loopback_names_and_addresses_are_loopback() {
        for registry in [
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.1.2.3",
            "127.255.255.254:443",
            "[::1]",
            "[::1]:5000",
            "[0:0:0:0:0:0:0:1]:5000",
            "localhost",
            "localhost:5000",
            "LocalHost:5000",
            // IPv4-mapped 127.0.0.1: the kernel routes it to the IPv4 loopback.
            "[::ffff:7f00:1]:5000",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback(registry), "{registry} is loopback");
        }
    }

    #[test]
    fn other_hosts_need_the_flag() {
        for registry in [
            "example.com",
            "example.com:5000",
            "docker.io",
            "10.0.0.1",
            "192.168.1.1:5000",
            "172.16.0.1",
            "8.8.8.8",
            "0.0.0.0:5000",
            "128.0.0.1",
            "[::]",
            "[::2]:5000",
            "[::ffff:a00:1]",
            "localhost.example.com",
            "localhost.localdomain",
            "mylocalhost:5000",
            "127.0.0.1.nip.io",
            "127.1",
            "0x7f.0.0.1",
            "localhost:",
            "localhost:50x",
            "127.0.0.1:5000:1",
            "[::1]5000",
            "[::1",
            "::1",
            "",
        ] {
            assert!(
                !is_loopback(registry),
                "{registry} needs --insecure-registry"
            );
        }
    }

    /// A client that goes straight to the host, whatever HTTPS_PROXY says.
    fn test_client() -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client")
    }

    /// What a GET of `url` fails with.
    fn failed_get(url: &str) -> reqwest::Error {
        match test_client()
            .get(url)
            .timeout(Duration::from_millis(300))
            .send()
        {
            Err(error) => error,
            Ok(response) => panic!("{url} answered {}", response.status()),
        }
    }

    /// A loopback port nothing listens on: bound, then let go.
    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    }

    /// A loopback server that does `with` to each connection; its address.
    fn serve(with: fn(std::net::TcpStream)) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                with(stream);
            }
        });
        address
    }

    #[test]
    fn a_refused_connection_is_refused_and_said_once() {
        let url = format!("https://127.0.0.1:{}/v2/x?_state=secret", free_port());
        let error = failed_get(&url);
        assert_eq!(failure_of(&error), NetworkFailure::Refused);
        let detail = no_answer(error).to_string();
        assert!(
            detail.starts_with("https://127.0.0.1:") && detail.contains("/v2/x: "),
            "the URL, without its query: {detail}"
        );
        assert!(!detail.contains("secret"), "{detail}");
        assert!(detail.contains("Connection refused"), "{detail}");
        for wrapper in ["client error", "tcp connect error", "error sending request"] {
            assert!(!detail.contains(wrapper), "{wrapper}: {detail}");
        }
    }

    #[test]
    fn a_name_that_does_not_resolve_is_unresolved() {
        // `.invalid` never resolves (RFC 6761), online or not.
        let error = failed_get("https://nonexistent.invalid/v2/");
        assert_eq!(failure_of(&error), NetworkFailure::Unresolved, "{error:?}");
        let detail = no_answer(error).to_string();
        assert!(!detail.contains("dns error"), "{detail}");
        assert!(
            detail.starts_with("https://nonexistent.invalid/v2/: "),
            "{detail}"
        );
    }

    #[test]
    fn silence_times_out_and_a_hang_up_breaks_off() {
        let silent = serve(|stream| {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(5));
                drop(stream);
            });
        });
        let error = failed_get(&format!("http://{silent}/v2/"));
        assert_eq!(failure_of(&error), NetworkFailure::Timeout);
        let hangs_up = serve(drop);
        let error = failed_get(&format!("http://{hangs_up}/v2/"));
        assert_eq!(failure_of(&error), NetworkFailure::BrokeOff, "{error:?}");
    }

    #[test]
    fn plain_http_answering_https_is_plain_http() {
        let plain = serve(|mut stream| {
            use std::io::Write;
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        });
        let error = failed_get(&format!("https://{plain}/v2/"));
        assert_eq!(failure_of(&error), NetworkFailure::PlainHttp, "{error:?}");
        let error = failed_get("http://exa mple/v2/");
        assert_eq!(failure_of(&error), NetworkFailure::Unusable, "{error:?}");
    }

    #[test]
    fn refused_and_unresolved_are_retried_briefly() {
        let total = |failure, loopback, retries| {
            (0..)
                .map_while(|attempt| retry_wait_without_answer(failure, loopback, attempt, retries))
                .collect::<Vec<Duration>>()
        };
        let loopback_refused = total(NetworkFailure::Refused, true, 5);
        assert_eq!(loopback_refused.len(), 1, "one quick retry");
        assert!(loopback_refused[0] <= Duration::from_millis(500));
        let refused = total(NetworkFailure::Refused, false, 5);
        assert_eq!(refused.len(), 2);
        assert!(
            refused.iter().sum::<Duration>() < Duration::from_secs(2),
            "{refused:?}"
        );
        let no_route = total(NetworkFailure::NoRoute, false, 5);
        assert_eq!(no_route.len(), 2);
        let unresolved = total(NetworkFailure::Unresolved, false, 5);
        assert_eq!(unresolved, [Duration::from_secs(1)]);
        for never in [
            NetworkFailure::Untrusted,
            NetworkFailure::PlainHttp,
            NetworkFailure::Unusable,
        ] {
            assert!(total(never, false, 5).is_empty(), "{never:?}");
        }
        // What may pass keeps every retry asked for.
        for passing in [
            NetworkFailure::Timeout,
            NetworkFailure::BrokeOff,
            NetworkFailure::NoConnection,
        ] {
            assert_eq!(total(passing, true, 5).len(), 5, "{passing:?}");
        }
        // --retries 0 means none, whatever the failure.
        assert!(total(NetworkFailure::Refused, true, 0).is_empty());
        assert!(total(NetworkFailure::Unresolved, false, 0).is_empty());
        assert_eq!(total(NetworkFailure::Refused, false, 1).len(), 1);
    }

    #[test]
    fn attempts_are_counted_only_when_there_were_retries() {
        assert_eq!(after_attempts("the manifest", 1), "the manifest");
        assert_eq!(
            after_attempts("the manifest", 2),
            "the manifest; gave up after 2 attempts"
        );
    }

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
