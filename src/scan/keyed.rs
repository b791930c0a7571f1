//! Files of `KEY=value` settings judged by their keys: `.env` files and `.npmrc`.

use super::names::is_secret_name;
use super::placeholder::is_placeholder;

/// A settings file whose lines are judged by key, not only by the content rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyedFile {
    /// `.env`, `.env.local`, `prod.env`… (not `.env.example` and other templates).
    Env,
    /// `.npmrc` or `npmrc`: `_auth`, `_authToken` and `_password` hold registry credentials.
    Npmrc,
}

impl KeyedFile {
    /// The kind of settings file at `path` (in the image), if it is one.
    pub(super) fn of(path: &[u8]) -> Option<KeyedFile> {
        let base = path.rsplit(|b| *b == b'/').next().unwrap_or_default();
        if base == b".npmrc" || base == b"npmrc" {
            return Some(KeyedFile::Npmrc);
        }
        let template = [b".example" as &[u8], b".sample", b".template", b".dist"]
            .iter()
            .any(|t| base.ends_with(t));
        let env = base == b".env" || base.starts_with(b".env.") || base.ends_with(b".env");
        (env && !template).then_some(KeyedFile::Env)
    }

    /// The rule a line of this file breaks, if any; `extra` is `[secrets] names`.
    pub(super) fn check(self, line: &[u8], extra: &[String]) -> Option<&'static str> {
        let (key, value) = setting(line)?;
        if is_placeholder(value) {
            return None;
        }
        match self {
            KeyedFile::Env => is_env_file_secret(key, value, extra).then_some("env-file-secret"),
            KeyedFile::Npmrc => {
                let name = key.rsplit(':').next().unwrap_or(key);
                matches!(name, "_auth" | "_authToken" | "_password").then_some("npmrc-credentials")
            }
        }
    }
}

/// `KEY=value`, `KEY = value` or `export KEY=value`, without comments or
/// quotes: the key and the value as a dotenv or npm reader would see them.
fn setting(line: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(line).ok()?.trim();
    if text.starts_with('#') || text.starts_with(';') {
        return None;
    }
    let text = text.strip_prefix("export ").unwrap_or(text);
    let (key, value) = text.split_once('=')?;
    let value = value.trim();
    let value = match value.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let inner = &value[1..];
            inner.find(quote).map_or(inner, |end| &inner[..end])
        }
        // An unquoted value ends where a `#` comment starts.
        _ if value.starts_with('#') => "",
        _ => value.find(" #").map_or(value, |i| &value[..i]).trim_end(),
    };
    Some((key.trim(), value))
}

/// Names a `.env` file may not give a value, beyond the deny-list of
/// `[env]`: there the base image's `GPG_KEY` must keep working, but a `.env`
/// file is the app's own settings, where a `…_KEY` is a credential.
const ENV_FILE_SUFFIXES: &[&str] = &["_PASS", "_PWD", "_KEY"];

/// `…_KEY` names that are public by design.
const PUBLIC_KEY_SUFFIXES: &[&str] = &["_PUBLIC_KEY", "_PUBLISHABLE_KEY", "_PUB_KEY"];

/// `…_KEY` names whose value is public: python images' `GPG_KEY` is the
/// fingerprint of the key that signed the Python release.
const PUBLIC_KEY_NAMES: &[&str] = &["GPG_KEY"];

/// True when a `.env` file's `key` with a real `value` is a secret: a deny-listed
/// name, `[secrets] names`, or `…_PASS`, `…_PWD`, `…_KEY` (not a public key's
/// name, and a value of 8 or more characters: `SORT_KEY=name` is a setting,
/// not a credential).
fn is_env_file_secret(key: &str, value: &str, extra: &[String]) -> bool {
    if is_secret_name(key, extra) {
        return true;
    }
    let upper = key.to_ascii_uppercase();
    let Some(suffix) = ENV_FILE_SUFFIXES.iter().find(|s| upper.ends_with(*s)) else {
        return false;
    };
    if *suffix != "_KEY" {
        return true;
    }
    !PUBLIC_KEY_SUFFIXES.iter().any(|s| upper.ends_with(s))
        && !PUBLIC_KEY_NAMES.contains(&upper.as_str())
        && value.chars().count() >= 8
}
