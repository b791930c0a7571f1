//! Talking to registries: the `Registry` client, its options, errors and reports; the work is done in `client` (HTTP: schemes, retries, re-auth), `auth` (challenges and tokens), `pull`, `push`, `credentials` and `hub`.
//!
//! Not for image formats or the store (`image`, `store`), nor for image
//! names (`reference` owns Docker Hub's names and API host).
//!
//! Why not oci-client for the whole of it: its push buffers whole blobs in
//! memory, has no retries, and mounts with a token scoped to one repository,
//! which Docker Hub refuses; and a pull path of its own would keep a second
//! token cache beside the one a push needs. So the registry API is spoken
//! here directly, on reqwest's blocking client: uploads stream from store
//! files with a Content-Length, every request shares one auth state and one
//! retry policy, and blobs are pushed by a bounded pool of threads.

pub mod auth;
pub mod cache_repo;
mod client;
pub mod credentials;
pub mod hub;
mod pull;
mod push;
mod tags;

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::blocking::Client;

use crate::digest::Digest;
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
            // Docker Hub is never plain HTTP nor self-signed: advice to turn off
            // TLS for it is wrong, and an unreachable Hub often means the
            // destination was a file name taken for an image.
            RegistryError::Connect { registry, .. }
                if crate::reference::canonical_registry(registry) == crate::reference::DOCKER_HUB
                    || registry.ends_with(".docker.io") =>
            {
                Some(format!(
                    "check that {registry} is reachable from here (HTTPS_PROXY/NO_PROXY are honoured); if you meant a file or folder, write it as docker-archive:PATH or oci:PATH"
                ))
            }
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
            source,
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

    /// Uses `credential` for `registry` instead of stored credentials.
    pub fn with_credential(mut self, registry: &str, credential: Credential) -> Registry {
        self.override_credential = Some((registry.to_string(), credential));
        self
    }
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

/// `mutex`'s guard, even if a thread panicked holding it: the registry's
/// locks guard only caches and a work queue, which stay usable.
fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::{Client, RegistryError};

    /// A real connection error: nothing listens on port 1 of the loopback.
    fn refused() -> reqwest::Error {
        let _ = rustls::crypto::ring::default_provider().install_default();
        match Client::new().get("http://127.0.0.1:1/v2/").send() {
            Err(e) => e,
            Ok(r) => panic!("port 1 answered: {}", r.status()),
        }
    }

    #[test]
    fn docker_hub_hints_never_suggest_an_insecure_registry() {
        for (registry, plain_http) in [
            ("docker.io", true),
            ("docker.io", false),
            ("registry-1.docker.io", true),
        ] {
            let e = RegistryError::Connect {
                registry: registry.into(),
                what: "the manifest".into(),
                plain_http,
                source: refused(),
            };
            let hint = e.hint().unwrap_or_default();
            assert!(!hint.contains("insecure"), "{hint}");
            assert!(hint.contains("docker-archive:PATH"), "{hint}");
        }
        let e = RegistryError::Connect {
            registry: "10.0.0.5:5000".into(),
            what: "the manifest".into(),
            plain_http: true,
            source: refused(),
        };
        assert!(
            e.hint()
                .unwrap_or_default()
                .contains("--insecure-registry 10.0.0.5:5000")
        );
    }
}
