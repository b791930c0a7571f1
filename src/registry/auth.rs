//! Registry authentication: `WWW-Authenticate` challenges, scopes, and the bearer tokens they lead to.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

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
