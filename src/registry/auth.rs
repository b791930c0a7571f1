//! Registry authentication: `WWW-Authenticate` challenges, scopes, and the bearer tokens they lead to, fetched and cached per registry and scope set.
//!
//! Not for sending the requests that need them: `client` asks here for an
//! Authorization header and hands 401 challenges back. The parsing half is
//! pure (and fuzzed); the `Registry` half below holds the auth state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::blocking::Response;
use reqwest::header::AUTHORIZATION;

use super::answer::{failure_of, no_answer, read_limited, status_error};
use super::credentials::{self, Credential};
use super::retry::{after_attempts, is_retryable, retry_wait};
use super::{Registry, RegistryError, relock};
use crate::image::MAX_JSON_BYTES;

/// How a registry asked to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Why a challenge header could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the registry sent an unusable WWW-Authenticate header: {0}")]
pub struct ChallengeError(pub String);

/// Parses a `WWW-Authenticate` header (RFC 7235 auth-params, as registries send them).
pub fn parse_challenge(header: &str) -> Result<Challenge, ChallengeError> {
    let header = header.trim();
    let (scheme, rest) = match header.split_once(char::is_whitespace) {
        Some((scheme, rest)) => (scheme, rest.trim()),
        None => (header, ""),
    };
    let params = parse_params(rest)
        .map_err(|problem| ChallengeError(format!("{problem} in `{}`", shorten(header))))?;
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Ok(Challenge::Basic),
        "bearer" => {
            let realm = params
                .get("realm")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    ChallengeError(format!(
                        "a Bearer challenge without a realm: `{}`",
                        shorten(header)
                    ))
                })?;
            if !(realm.starts_with("https://") || realm.starts_with("http://")) {
                return Err(ChallengeError(format!(
                    "the token realm `{}` is not an http(s) URL",
                    shorten(realm)
                )));
            }
            Ok(Challenge::Bearer {
                realm: realm.clone(),
                service: params.get("service").cloned(),
            })
        }
        "" => Err(ChallengeError("it is empty".into())),
        other => Err(ChallengeError(format!(
            "unsupported scheme `{}`",
            shorten(other)
        ))),
    }
}

fn shorten(s: &str) -> String {
    let cut: String = s.chars().take(120).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

fn parse_params(input: &str) -> Result<BTreeMap<String, String>, String> {
    let mut params = BTreeMap::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i] == b' ' || bytes[*i] == b'\t' || bytes[*i] == b',') {
            *i += 1;
        }
    };
    loop {
        skip_space(&mut i);
        if i >= bytes.len() {
            return Ok(params);
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'.'))
        {
            i += 1;
        }
        let key = input[start..i].to_ascii_lowercase();
        if key.is_empty() {
            return Err(format!("unexpected character at offset {i}"));
        }
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            return Err(format!("parameter `{key}` has no value"));
        }
        i += 1;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let value = if i < bytes.len() && bytes[i] == b'"' {
            i += 1;
            let mut value = String::new();
            loop {
                let Some(&b) = bytes.get(i) else {
                    return Err(format!("the value of `{key}` has no closing quote"));
                };
                match b {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' if i + 1 < bytes.len() => {
                        let ch = input[i + 1..].chars().next().unwrap_or('\\');
                        value.push(ch);
                        i += 1 + ch.len_utf8();
                    }
                    _ => {
                        let ch = input[i..].chars().next().unwrap_or('?');
                        value.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            value
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b',' && bytes[i] != b' ' {
                i += 1;
            }
            input[start..i].to_string()
        };
        if value.chars().any(char::is_control) {
            return Err(format!("the value of `{key}` holds control characters"));
        }
        params.insert(key, value);
    }
}

/// A repository permission a token must carry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub repository: String,
    /// The token actions, as the scope string spells them.
    pub actions: &'static str,
}

impl Scope {
    /// Read access to `repository`.
    pub fn pull(repository: &str) -> Scope {
        Scope {
            repository: repository.to_string(),
            actions: "pull",
        }
    }

    /// Read and write access to `repository`.
    pub fn push(repository: &str) -> Scope {
        Scope {
            repository: repository.to_string(),
            actions: "pull,push",
        }
    }

    /// Read, write and delete access to `repository`: distribution's token
    /// auth asks for `delete` on a manifest DELETE.
    pub fn delete(repository: &str) -> Scope {
        Scope {
            repository: repository.to_string(),
            actions: "pull,push,delete",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "repository:{}:{}", self.repository, self.actions)
    }
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub struct Token {
    pub value: String,
    pub expires: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .finish()
    }
}

/// The body a token service answers with.
#[derive(serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token, valid until a little before the service said it expires (so no request races the expiry).
    pub fn into_token(self, now: Instant) -> Option<Token> {
        let value = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        // The spec's default lifetime is 60 s; shave a margin for requests in flight.
        let lifetime = self.expires_in.unwrap_or(60).max(1);
        let margin = (lifetime / 10).clamp(0, 10);
        Some(Token {
            value,
            expires: now + Duration::from_secs(lifetime - margin),
        })
    }
}

/// What a `Registry` has learned about authenticating to each registry.
#[derive(Default)]
pub(super) struct AuthState {
    /// How each registry asked to be authenticated, from its last 401.
    hosts: HashMap<String, Challenge>,
    /// Bearer tokens by registry and scope set.
    tokens: HashMap<String, Token>,
    /// Stored credentials looked up, found or not.
    credentials: HashMap<String, Option<Credential>>,
}

impl Registry {
    fn auth_state(&self) -> MutexGuard<'_, AuthState> {
        relock(&self.auth)
    }

    /// The credential for `registry`: the command line's, else the stored
    /// one, looked up once (I/O: config files, maybe a helper).
    pub(super) fn credential(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credential>, RegistryError> {
        if let Some((r, c)) = &self.override_credential
            && r == registry
        {
            return Ok(Some(c.clone()));
        }
        if let Some(found) = self.auth_state().credentials.get(registry) {
            return Ok(found.clone());
        }
        let found = credentials::find_credential(registry, repository)?;
        self.auth_state()
            .credentials
            .insert(registry.to_string(), found.clone());
        Ok(found)
    }

    /// Tokens are cached per registry and set of scopes.
    fn token_key(registry: &str, scopes: &[Scope]) -> String {
        let set: BTreeSet<String> = scopes.iter().map(ToString::to_string).collect();
        format!(
            "{registry} {}",
            set.into_iter().collect::<Vec<_>>().join(" ")
        )
    }

    /// The Authorization header for a request needing `scopes`, fetching a token if needed (I/O).
    pub(super) fn authorization(
        &self,
        registry: &str,
        scopes: &[Scope],
    ) -> Result<Option<String>, RegistryError> {
        let host_auth = self.auth_state().hosts.get(registry).cloned();
        let repository = scopes.first().map(|s| s.repository.as_str()).unwrap_or("");
        match host_auth {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .credential(registry, repository)?
                .map(|c| basic_header(&c))),
            Some(Challenge::Bearer { realm, service }) => {
                let key = Self::token_key(registry, scopes);
                if let Some(token) = self.auth_state().tokens.get(&key)
                    && token.expires > Instant::now()
                {
                    return Ok(Some(format!("Bearer {}", token.value)));
                }
                let token = self.fetch_token(registry, &realm, service.as_deref(), scopes)?;
                let header = format!("Bearer {}", token.value);
                self.auth_state().tokens.insert(key, token);
                Ok(Some(header))
            }
        }
    }

    /// Takes in a 401's challenge: how `registry` wants to be authenticated
    /// from now on. A 401 with a token in hand means it expired or lacks a
    /// scope, so the token for `scopes` is dropped and fetched anew.
    pub(super) fn learn_challenge(&self, registry: &str, scopes: &[Scope], challenge: Challenge) {
        let key = Self::token_key(registry, scopes);
        let mut state = self.auth_state();
        state.hosts.insert(registry.to_string(), challenge);
        state.tokens.remove(&key);
    }

    /// Whether `registry` asked for bearer tokens.
    pub(super) fn uses_bearer(&self, registry: &str) -> bool {
        matches!(
            self.auth_state().hosts.get(registry),
            Some(Challenge::Bearer { .. })
        )
    }

    /// A token for `scopes` from the token service at `realm`, with the
    /// registry's credential if there is one (I/O, retried like any request:
    /// a token service that got no answer as `retry::retry_wait_without_answer` allows).
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
        let client = self.client(self.is_insecure(registry));
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
                    return token_from(registry, response);
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
                    let why = format!("token service answered {}", response.status());
                    self.pause(&why, retry_wait(&response, attempt));
                }
                Ok(response) => return Err(status_error(registry, &what, response)),
                Err(source) => {
                    let failure = failure_of(&source);
                    let host = realm_host(realm);
                    let Some(wait) = self.retry_without_answer(failure, &host, attempt) else {
                        return Err(RegistryError::Connect {
                            registry: host,
                            what: after_attempts(&what, attempt + 1),
                            plain_http: false,
                            source: no_answer(source),
                        });
                    };
                    let why = format!("token service unreachable ({})", failure.describe());
                    self.pause(&why, wait);
                }
            }
            attempt += 1;
        }
    }
}

/// The token in a token service's successful answer.
fn token_from(registry: &str, response: Response) -> Result<Token, RegistryError> {
    let body = read_limited(response, MAX_JSON_BYTES, registry, "a token")?;
    let parsed: TokenResponse =
        serde_json::from_slice(&body).map_err(|_| RegistryError::Protocol {
            registry: registry.to_string(),
            problem: "the token service answered with something that is not a token".into(),
        })?;
    parsed
        .into_token(Instant::now())
        .ok_or_else(|| RegistryError::Protocol {
            registry: registry.to_string(),
            problem: "the token service answered without a token".into(),
        })
}

fn basic_header(credential: &Credential) -> String {
    let raw = format!("{}:{}", credential.username, credential.secret);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
        assert_eq!(parse_challenge("basic").unwrap(), Challenge::Basic);
    }

    #[test]
    fn garbage_challenges_are_errors_not_panics() {
        for bad in [
            "",
            "Bearer",
            "Bearer realm=",
            r#"Bearer realm="https://x"#,
            "Bearer =x",
            r#"Bearer realm="ftp://x""#,
            "Negotiate abc",
            "Bearer realm=\"https://a\u{1}\"",
            "Bearer \u{ff}\u{fe}",
            "Bearer realm=\"\\",
        ] {
            assert!(parse_challenge(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_and_tokens() {
        assert_eq!(Scope::push("a/b").to_string(), "repository:a/b:pull,push");
        let now = Instant::now();
        let t = TokenResponse {
            token: None,
            access_token: Some("abc".into()),
            expires_in: Some(300),
        }
        .into_token(now)
        .unwrap();
        assert_eq!(t.expires, now + Duration::from_secs(290));
        assert!(!format!("{t:?}").contains("abc"));
    }
}
