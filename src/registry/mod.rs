//! Talking to registries: the `Registry` client, its options, errors and reports; the work is done in `client` (HTTP: schemes, retries, re-auth), `auth` (challenges and tokens), `pull`, `push`, `credentials` and `hub`.
//!
//! Not for image formats or the store (`image`, `store`), nor for image
//! names (`reference` owns Docker Hub's names and API host).
//!
//! Why not oci-client for the whole of it: its `push` takes whole blobs in
//! memory (its stream upload is chunked PATCHes only), it has no retries, and
//! it mounts with a token scoped to one repository, which Docker Hub refuses;
//! and a pull path of its own would keep a second token cache beside the one
//! a push needs. So the registry API is spoken here directly, on reqwest's
//! blocking client: uploads stream from store files with a Content-Length,
//! every request shares one auth state and one retry policy, and blobs are
//! pushed by a bounded pool of threads.

mod answer;
pub mod auth;
pub mod blob_locations;
pub mod cache_repo;
mod client;
pub mod credentials;
pub mod hub;
mod pull;
mod push;
mod retry;
mod tags;

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::blocking::Client;

use crate::digest::Digest;
use crate::interrupt::{self, Interrupted};
use crate::reference::ImageRef;
use crate::store::StoreError;
use auth::ChallengeError;
use credentials::{Credential, CredentialError};
pub use tags::TagDeletion;

/// The default longest wait for a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default longest stall: no answer, or no next bytes of an answer, for this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The default number of retries after the first attempt.
pub const DEFAULT_RETRIES: u32 = 5;

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach {registry} ({what}): {}", .source.failure.describe())]
    Connect {
        registry: String,
        what: String,
        plain_http: bool,
        #[source]
        source: NetworkError,
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
    /// A signal stopped the transfer at a safe point (an upload in flight is cancelled).
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

impl RegistryError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Connect {
                registry, source, ..
            } => Some(connect_hint(registry, source.failure)),
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

/// Why a request got no answer, as far as retries and hints care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFailure {
    /// The host's name does not resolve (or no resolver answered).
    Unresolved,
    /// The host answered that nothing listens at that port.
    Refused,
    /// The network has no route to the host.
    NoRoute,
    /// No answer, or no next bytes of one, within the timeout.
    Timeout,
    /// The server's TLS certificate is not trusted.
    Untrusted,
    /// The server answered HTTPS in plain HTTP.
    PlainHttp,
    /// The request cannot be sent as built, or its redirects loop.
    Unusable,
    /// Connected, then the connection broke off before a whole answer came.
    BrokeOff,
    /// No connection for another reason (a proxy that failed, a reset during the handshake).
    NoConnection,
}

impl NetworkFailure {
    /// In words, after "cannot reach REGISTRY (WHAT): ".
    pub fn describe(self) -> &'static str {
        match self {
            NetworkFailure::Unresolved => "its name does not resolve",
            NetworkFailure::Refused => "the connection was refused",
            NetworkFailure::NoRoute => "no route to the host",
            NetworkFailure::Timeout => "no answer within the timeout",
            NetworkFailure::Untrusted => "its TLS certificate is not trusted",
            NetworkFailure::PlainHttp => "it answered HTTPS in plain HTTP",
            NetworkFailure::Unusable => "the request failed",
            NetworkFailure::BrokeOff => "the connection broke off",
            NetworkFailure::NoConnection => "could not connect",
        }
    }
}

/// A request that got no answer: the kind of failure, and the URL with the
/// causes that say something. reqwest's error chain names each layer that
/// passed the error on ("client error (Connect)", "tcp connect error"),
/// which would print as as many `Caused by:` lines saying nothing.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct NetworkError {
    pub failure: NetworkFailure,
    detail: String,
}

/// What to do about a request to `registry` that got no answer.
///
/// A loopback registry is never told to pass `--insecure-registry` unless
/// its certificate is refused: it may answer plain HTTP without the flag,
/// so the flag cannot be what is missing.
fn connect_hint(registry: &str, failure: NetworkFailure) -> String {
    let proxies = "HTTPS_PROXY/NO_PROXY are honoured";
    // Docker Hub is never plain HTTP nor self-signed: advice to turn off
    // TLS for it is wrong, and an unreachable Hub often means the
    // destination was a file name taken for an image.
    let hub = crate::reference::canonical_registry(registry) == crate::reference::DOCKER_HUB
        || registry.ends_with(".docker.io");
    let loopback = client::is_loopback(registry);
    let check = match failure {
        NetworkFailure::Timeout => {
            return format!(
                "{registry} stopped answering; if it is only slow, raise --timeout (or STOWAGE_TIMEOUT), else check the network"
            );
        }
        NetworkFailure::Untrusted if !hub => {
            return format!(
                "{registry}'s TLS certificate is not trusted; add its CA to the system's trust store, or, only if you trust the network, pass --insecure-registry {registry}"
            );
        }
        NetworkFailure::PlainHttp if !hub && !loopback => {
            return format!(
                "{registry} seems to speak plain HTTP; if you trust it, pass --insecure-registry {registry}"
            );
        }
        NetworkFailure::Unresolved => format!(
            "the name {} does not resolve: {}check that this machine is online and its DNS works ({proxies})",
            host_name(registry),
            if hub { "" } else { "check it for typos, and " }
        ),
        NetworkFailure::Refused => format!(
            "nothing listens at {registry}: check that the registry is running and that the host and port are right"
        ),
        NetworkFailure::NoRoute => {
            format!("there is no route to {registry}: check the network connection ({proxies})")
        }
        _ => format!("check that {registry} is up and reachable from here ({proxies})"),
    };
    if hub {
        return format!(
            "{check}; if you meant a file or folder, write it as docker-archive:PATH or oci:PATH"
        );
    }
    let port_given = registry
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    match failure {
        _ if loopback => check,
        // HTTPS goes to port 443; only the flag makes a host without a port reached on 80.
        NetworkFailure::Refused if !port_given => format!(
            "{check}; if it serves plain HTTP on port 80 only, pass --insecure-registry {registry}"
        ),
        NetworkFailure::BrokeOff | NetworkFailure::NoConnection | NetworkFailure::Unusable => {
            format!("{check}; for a plain-HTTP registry pass --insecure-registry {registry}")
        }
        _ => check,
    }
}

/// The name DNS is asked for: the registry's API host without its port.
fn host_name(registry: &str) -> String {
    let host = crate::reference::api_host(registry);
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name.to_string()
        }
        _ => host.to_string(),
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

/// Which way a blob goes over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    Push,
    Pull,
}

impl TransferKind {
    /// The word a progress display names the transfer by.
    pub fn word(self) -> &'static str {
        match self {
            TransferKind::Push => "push",
            TransferKind::Pull => "pull",
        }
    }
}

/// How a blob's transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEnd {
    /// Its bytes were sent.
    Uploaded,
    /// The registry took it from another repository of its own.
    Mounted,
    /// The repository had it already: nothing was sent.
    Present,
    /// Its bytes were fetched into the store.
    Downloaded,
}

impl TransferEnd {
    /// The word a progress line starts with; scripts and tests read these lines.
    pub fn word(self) -> &'static str {
        match self {
            TransferEnd::Uploaded => "uploaded",
            TransferEnd::Mounted => "mounted",
            TransferEnd::Present => "present",
            TransferEnd::Downloaded => "downloaded",
        }
    }
}

/// Receives byte counts of blob transfers, for progress displays.
pub trait TransferProgress: Send + Sync {
    /// A transfer of `bytes` begins.
    fn begin(&self, kind: TransferKind, digest: &Digest, bytes: u64);
    /// `bytes` more went over the wire.
    fn advance(&self, bytes: u64);
    /// The blob is done, as `how` says.
    fn end(&self, how: TransferEnd, digest: &Digest, bytes: u64);
}

/// Counts bytes read through it into a progress display.
struct CountingReader<R> {
    inner: R,
    progress: Option<Arc<dyn TransferProgress>>,
}

/// Each read is a safe point: a body that fails to read makes reqwest drop
/// the request, so an upload or download stops within one read of a signal.
impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        interrupt::check_io()?;
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
    /// Hosts reached over plain HTTP or unverified TLS (loopback hosts need not be listed).
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
    /// Where Docker Hub's registry API is reached instead of
    /// registry-1.docker.io (`STOWAGE_DOCKER_HUB_HOST`: the tests run a
    /// stand-in, since the real Hub cannot be reached from CI).
    pub docker_hub_host: Option<String>,
    /// Docker Hub's web API base URL instead of `hub::DEFAULT_API` (`STOWAGE_DOCKER_HUB_API`).
    pub docker_hub_api: Option<String>,
}

/// What a push did with each blob.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    pub skipped: usize,
    pub mounted: usize,
    pub uploaded: usize,
    pub uploaded_bytes: u64,
}

/// A client for any number of registries, sharing auth state across threads.
pub struct Registry {
    http: Client,
    http_insecure: Client,
    options: RegistryOptions,
    /// The scheme each `--insecure-registry` host turned out to speak.
    schemes: Mutex<HashMap<String, &'static str>>,
    /// Held while the scheme of an insecure registry is being found out, so
    /// concurrent requests wait for one probe instead of each trying HTTPS.
    scheme_probe: Mutex<()>,
    /// How each registry asked to be authenticated, and the tokens and credentials found for it.
    auth: Mutex<auth::AuthState>,
    /// Credentials given on the command line (`login`), used instead of stored ones.
    override_credential: Option<(String, Credential)>,
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
            source: answer::no_answer(source),
        };
        Ok(Registry {
            http: client::http_client(false, &options).map_err(build_err)?,
            http_insecure: client::http_client(true, &options).map_err(build_err)?,
            options,
            schemes: Mutex::default(),
            scheme_probe: Mutex::new(()),
            auth: Mutex::default(),
            override_credential: None,
        })
    }

    /// The host that serves `registry`'s HTTP API: `reference::api_host`,
    /// unless the options name another host for Docker Hub.
    pub fn api_host<'a>(&'a self, registry: &'a str) -> &'a str {
        match &self.options.docker_hub_host {
            Some(host) if registry == crate::reference::DOCKER_HUB => host,
            _ => crate::reference::api_host(registry),
        }
    }

    /// Docker Hub's web API base URL, without a trailing `/`.
    pub fn docker_hub_api(&self) -> &str {
        self.options
            .docker_hub_api
            .as_deref()
            .map_or(hub::DEFAULT_API, |api| api.trim_end_matches('/'))
    }

    /// Uses `credential` for `registry` instead of stored credentials.
    pub fn with_credential(mut self, registry: &str, credential: Credential) -> Registry {
        self.override_credential = Some((registry.to_string(), credential));
        self
    }
}

/// `mutex`'s guard, even if a thread panicked holding it: the registry's
/// locks guard only caches and a work queue, which stay usable.
fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::{NetworkError, NetworkFailure, Registry, RegistryError, RegistryOptions};

    const EVERY_FAILURE: [NetworkFailure; 9] = [
        NetworkFailure::Unresolved,
        NetworkFailure::Refused,
        NetworkFailure::NoRoute,
        NetworkFailure::Timeout,
        NetworkFailure::Untrusted,
        NetworkFailure::PlainHttp,
        NetworkFailure::Unusable,
        NetworkFailure::BrokeOff,
        NetworkFailure::NoConnection,
    ];

    fn unreachable(registry: &str, failure: NetworkFailure) -> RegistryError {
        RegistryError::Connect {
            registry: registry.into(),
            what: "the manifest".into(),
            plain_http: failure == NetworkFailure::PlainHttp,
            source: NetworkError {
                failure,
                detail: format!("https://{registry}/v2/: some cause"),
            },
        }
    }

    fn hint(registry: &str, failure: NetworkFailure) -> String {
        unreachable(registry, failure).hint().unwrap_or_default()
    }

    #[test]
    fn docker_hub_hints_never_suggest_an_insecure_registry() {
        for registry in ["docker.io", "registry-1.docker.io"] {
            for failure in EVERY_FAILURE {
                let hint = hint(registry, failure);
                assert!(!hint.contains("insecure"), "{failure:?}: {hint}");
                if failure != NetworkFailure::Timeout {
                    assert!(hint.contains("docker-archive:PATH"), "{failure:?}: {hint}");
                }
            }
        }
        assert!(
            hint("10.0.0.5:5000", NetworkFailure::PlainHttp)
                .contains("--insecure-registry 10.0.0.5:5000")
        );
    }

    #[test]
    fn loopback_hints_never_suggest_the_flag_it_does_not_need() {
        for registry in ["127.0.0.1:5999", "localhost:5000", "[::1]:5000"] {
            for failure in EVERY_FAILURE {
                let hint = hint(registry, failure);
                // Only an untrusted certificate needs the flag on loopback too.
                assert_eq!(
                    hint.contains("--insecure-registry"),
                    failure == NetworkFailure::Untrusted,
                    "{registry} {failure:?}: {hint}"
                );
            }
        }
        let refused = hint("127.0.0.1:5999", NetworkFailure::Refused);
        assert!(
            refused.contains("nothing listens at 127.0.0.1:5999"),
            "{refused}"
        );
        assert!(refused.contains("host and port"), "{refused}");
    }

    #[test]
    fn each_failure_gets_its_own_hint() {
        let dns = hint("nonexistent.invalid:5000", NetworkFailure::Unresolved);
        assert!(
            dns.contains("the name nonexistent.invalid does not resolve"),
            "{dns}"
        );
        assert!(dns.contains("DNS") && dns.contains("online"), "{dns}");
        assert!(!dns.contains("insecure"), "{dns}");
        let hub_dns = hint("docker.io", NetworkFailure::Unresolved);
        assert!(hub_dns.contains("registry-1.docker.io"), "{hub_dns}");
        // Refused on 443: a registry serving plain HTTP on 80 needs the flag.
        let no_port = hint("registry.example.org", NetworkFailure::Refused);
        assert!(
            no_port.contains("--insecure-registry registry.example.org"),
            "{no_port}"
        );
        // With a port, HTTPS and plain HTTP go to the same one: the flag cannot help.
        let port = hint("registry.example.org:5000", NetworkFailure::Refused);
        assert!(!port.contains("insecure"), "{port}");
        let route = hint("10.9.9.9:5000", NetworkFailure::NoRoute);
        assert!(route.contains("no route to 10.9.9.9:5000"), "{route}");
        let slow = hint("10.9.9.9:5000", NetworkFailure::Timeout);
        assert!(slow.contains("--timeout"), "{slow}");
    }

    #[test]
    fn the_message_says_the_failure_and_the_cause_says_the_url() {
        let error = unreachable("127.0.0.1:5999", NetworkFailure::Refused);
        assert_eq!(
            error.to_string(),
            "cannot reach 127.0.0.1:5999 (the manifest): the connection was refused"
        );
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(
            cause.as_deref(),
            Some("https://127.0.0.1:5999/v2/: some cause")
        );
    }

    #[test]
    fn docker_hub_stand_ins_come_from_the_options_alone() {
        let plain = Registry::new(RegistryOptions::default()).unwrap();
        assert_eq!(plain.api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(plain.docker_hub_api(), "https://hub.docker.com");
        let stand_in = Registry::new(RegistryOptions {
            docker_hub_host: Some("127.0.0.1:5000".into()),
            docker_hub_api: Some("http://127.0.0.1:5001/".into()),
            ..RegistryOptions::default()
        })
        .unwrap();
        assert_eq!(stand_in.api_host("docker.io"), "127.0.0.1:5000");
        assert_eq!(stand_in.api_host("ghcr.io"), "ghcr.io");
        assert_eq!(stand_in.docker_hub_api(), "http://127.0.0.1:5001");
    }
}
