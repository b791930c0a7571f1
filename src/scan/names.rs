//! Secret names: the built-in deny-list of environment names that `[env]` may not set.

/// Environment names ending in these (compared case-insensitively) are deploy-time secrets.
///
/// A bare `_KEY` is not here on purpose: base images set names such as
/// `GPG_KEY` to public key fingerprints, and those must keep working.
pub const DENIED_SECRET_SUFFIXES: &[&str] = &[
    "_SECRET",
    "_PASSWORD",
    "_PASSWD",
    "_PASSPHRASE",
    "_TOKEN",
    "_API_KEY",
    "_ACCESS_KEY",
    "_SECRET_KEY",
    "_PRIVATE_KEY",
];

/// Environment names (compared case-insensitively) that are deploy-time secrets whatever their suffix.
pub const DENIED_SECRET_NAMES: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "NUVLA_API_KEY",
    "NUVLA_API_SECRET",
    "SECRET_KEY",
    "DOCKER_AUTH_CONFIG",
    "API_KEY",
    "PASSWORD",
    "TOKEN",
    "SECRET",
];

/// True when `name` must never be baked into an image: the built-in deny-list (case-insensitive) or one of `extra` (exact).
pub fn is_secret_name(name: &str, extra: &[String]) -> bool {
    is_builtin_secret_name(name) || extra.iter().any(|e| e == name)
}

/// True for the built-in deny-list of secret names (case-insensitive).
pub fn is_builtin_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    DENIED_SECRET_NAMES.contains(&upper.as_str())
        || DENIED_SECRET_SUFFIXES.iter().any(|s| upper.ends_with(s))
}
