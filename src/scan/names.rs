//! Secret names: the built-in deny-list for `[env]`, and the keys a `.env` file may not give a value.

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

/// `NAME=value` (optionally `export NAME=value`) with a deny-listed NAME and a non-empty value.
pub(super) fn env_line_is_secret(line: &[u8], extra: &[String]) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('#') {
        return false;
    }
    let text = text.strip_prefix("export ").unwrap_or(text);
    let Some((name, value)) = text.split_once('=') else {
        return false;
    };
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    !value.is_empty() && !value.starts_with("${") && is_secret_name(name.trim(), extra)
}
