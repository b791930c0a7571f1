//! The HTTP client every registry request goes through: the scheme of an insecure or loopback host, the Authorization header, retries with backoff, and re-authentication on a 401.
//!
//! Not for what the requests mean (`pull`, `push`), nor for how credentials
//! and tokens are found (`auth`, `credentials`): this only asks `auth` for a
//! header and tells it about challenges.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, Request, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};

use super::answer::{failure_of, no_answer, redact_url, status_error};
use super::auth::{self, Challenge, Scope};
use super::retry::{after_attempts, is_retryable, retry_wait, retry_wait_without_answer};
use super::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, NetworkFailure, Registry, RegistryError,
    RegistryOptions, relock,
};

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
        let host = self.api_host(registry);
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
        let url = format!("https://{}/v2/", self.api_host(registry));
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
        format!("{scheme}://{}", self.api_host(registry))
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
            let sent = super::push::execute(self.client(insecure), request, registry)?;
            match self.classify(&call, &base, sent, attempt, reauthenticated) {
                Next::Done(response) => return Ok(response),
                Next::Fail(error) => return Err(error),
                Next::Retry { wait, why } => {
                    // A signal came: no waiting for another attempt.
                    crate::interrupt::check()?;
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
        if is_api_host(request.url(), self.api_host(call.registry))
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

/// Whether `url` points at `api`, the registry's own API host (with or
/// without the port), the only place an Authorization header may go.
fn is_api_host(url: &reqwest::Url, api: &str) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let with_port = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    with_port == api || host == api
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
}
