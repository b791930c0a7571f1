//! Registry credentials: Docker's config.json (auths, credHelpers, credsStore), podman's auth.json, and what `stowage login` writes.
//!
//! Secrets only ever live in `Credential`, whose `Debug` hides them, so no
//! log line or error message can print one by accident.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::reference::{DOCKER_HUB, canonical_registry};

/// The key Docker uses for Docker Hub in config.json.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// A username and its password or token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub secret: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What went wrong finding or storing credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read credentials from {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("credential helper docker-credential-{helper} failed: {problem}")]
    Helper { helper: String, problem: String },
    #[error("cannot write credentials to {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "there is no folder for registry credentials: HOME is unset and so is DOCKER_CONFIG (set DOCKER_CONFIG to a writable folder, e.g. DOCKER_CONFIG=/tmp/docker)"
    )]
    NoConfigFolder,
}

/// The config.json key for a registry (Docker Hub has its historical URL).
pub fn config_key(registry: &str) -> String {
    if registry == DOCKER_HUB {
        DOCKER_HUB_CONFIG_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Reduces a config.json key (`https://host/v1/`, `host`, `host/repo`) to the registry and optional repository it covers.
fn normalize_key(key: &str) -> (String, Option<String>) {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let trimmed = without_scheme.trim_end_matches('/');
    let (host, path) = match trimmed.split_once('/') {
        Some((host, path)) => (host, Some(path)),
        None => (trimmed, None),
    };
    let host = canonical_registry(host);
    let path = path
        .filter(|p| !matches!(*p, "v1" | "v2" | "v1/" | "v2/"))
        .map(str::to_string);
    (host.to_string(), path)
}

/// Docker's config.json path: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`; none without either (a process with no home
/// reads no credentials from the folder it happens to run in).
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => home().map(|home| home.join(".docker").join("config.json")),
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// podman's auth files, most specific first.
fn podman_auth_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        paths.push(PathBuf::from(file));
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        paths.push(PathBuf::from(dir).join("containers").join("auth.json"));
    }
    if let Some(home) = home() {
        paths.push(home.join(".config").join("containers").join("auth.json"));
    }
    paths
}

fn read_json(path: &Path) -> Result<Option<Value>, CredentialError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CredentialError::Invalid {
                    path: path.to_path_buf(),
                    problem: e.to_string(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Finds credentials for `repository` on `registry` (I/O: reads config files, may run a helper).
///
/// Order: `$REGISTRY_AUTH_FILE`, then Docker's config.json (credHelpers, then
/// credsStore, then auths), then podman's default auth files.
pub fn find_credential(
    registry: &str,
    repository: &str,
) -> Result<Option<Credential>, CredentialError> {
    let podman = podman_auth_paths();
    let explicit = std::env::var_os("REGISTRY_AUTH_FILE").is_some();
    let (first, rest) = if explicit {
        podman.split_at(1)
    } else {
        (&podman[..0], &podman[..])
    };
    for path in first {
        if let Some(found) = from_auth_file(path, registry, repository)? {
            return Ok(Some(found));
        }
    }
    if let Some(config) = docker_config_path()
        && let Some(found) = from_docker_config(&config, registry, repository)?
    {
        return Ok(Some(found));
    }
    for path in rest {
        if let Some(found) = from_auth_file(path, registry, repository)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn from_docker_config(
    path: &Path,
    registry: &str,
    repository: &str,
) -> Result<Option<Credential>, CredentialError> {
    let Some(config) = read_json(path)? else {
        return Ok(None);
    };
    if let Some(helpers) = config.get("credHelpers").and_then(Value::as_object) {
        for (key, helper) in helpers {
            if normalize_key(key).0 == registry
                && let Some(helper) = helper.as_str()
            {
                return run_helper_get(helper, &config_key(registry));
            }
        }
    }
    if let Some(store) = config
        .get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        && let Some(found) = run_helper_get(store, &config_key(registry))?
    {
        return Ok(Some(found));
    }
    from_auths(path, &config, registry, repository)
}

fn from_auth_file(
    path: &Path,
    registry: &str,
    repository: &str,
) -> Result<Option<Credential>, CredentialError> {
    match read_json(path)? {
        Some(config) => from_auths(path, &config, registry, repository),
        None => Ok(None),
    }
}

/// The `auths` entry that covers the repository most specifically.
fn from_auths(
    path: &Path,
    config: &Value,
    registry: &str,
    repository: &str,
) -> Result<Option<Credential>, CredentialError> {
    let Some(auths) = config.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let mut best: Option<(usize, &Value)> = None;
    for (key, entry) in auths {
        let (host, repo_prefix) = normalize_key(key);
        if host != registry {
            continue;
        }
        let specificity = match &repo_prefix {
            None => 0,
            Some(prefix)
                if repository == prefix || repository.starts_with(&format!("{prefix}/")) =>
            {
                prefix.len() + 1
            }
            Some(_) => continue,
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, entry));
        }
    }
    let Some((_, entry)) = best else {
        return Ok(None);
    };
    let invalid = |problem: &str| CredentialError::Invalid {
        path: path.to_path_buf(),
        problem: format!("the entry for {registry}: {problem}"),
    };
    if let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| invalid("`auth` is not base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| invalid("`auth` is not UTF-8"))?;
        let (username, secret) = text
            .split_once(':')
            .ok_or_else(|| invalid("`auth` is not user:password"))?;
        return Ok(Some(Credential {
            username: username.to_string(),
            secret: secret.to_string(),
        }));
    }
    let username = entry.get("username").and_then(Value::as_str);
    let password = entry.get("password").and_then(Value::as_str);
    Ok(match (username, password) {
        (Some(u), Some(p)) => Some(Credential {
            username: u.to_string(),
            secret: p.to_string(),
        }),
        _ => None,
    })
}

fn run_helper(
    helper: &str,
    verb: &str,
    input: &[u8],
) -> Result<(bool, Vec<u8>, String), CredentialError> {
    let program = format!("docker-credential-{helper}");
    let fail = |problem: String| CredentialError::Helper {
        helper: helper.to_string(),
        problem,
    };
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| fail(format!("cannot talk to it: {e}")))?;
    }
    let output = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    // A helper's stdout may hold the secret; only its stderr is ever shown.
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    Ok((output.status.success(), output.stdout, stderr))
}

fn run_helper_get(helper: &str, server: &str) -> Result<Option<Credential>, CredentialError> {
    let (ok, stdout, stderr) = run_helper(helper, "get", server.as_bytes())?;
    if !ok {
        let said = format!("{stderr} {}", String::from_utf8_lossy(&stdout));
        if said.to_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(CredentialError::Helper {
            helper: helper.to_string(),
            problem: if stderr.is_empty() {
                "it exited with an error".into()
            } else {
                stderr
            },
        });
    }
    let parsed: Value = serde_json::from_slice(&stdout).map_err(|_| CredentialError::Helper {
        helper: helper.to_string(),
        problem: "its answer is not JSON".into(),
    })?;
    let username = parsed
        .get("Username")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let secret = parsed
        .get("Secret")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credential {
        username: username.to_string(),
        secret: secret.to_string(),
    }))
}

/// Stores credentials for `registry` (I/O): in the credsStore helper when config.json names one, else in its `auths`, written 0600 and atomically.
pub fn write_login(registry: &str, credential: &Credential) -> Result<PathBuf, CredentialError> {
    let path = docker_config_path().ok_or(CredentialError::NoConfigFolder)?;
    write_login_at(&path, registry, credential)?;
    Ok(path)
}

/// Locks the folder of `config` (created if needed) for one read-modify-write
/// of it, so two stowage logins at once cannot lose each other's entry.
fn lock_config_folder(config: &Path) -> Result<crate::atomic::FolderLock, CredentialError> {
    let dir = config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let write_err = |source| CredentialError::Write {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(write_err)?;
    crate::atomic::lock_folder(&dir).map_err(write_err)
}

fn write_login_at(
    path: &Path,
    registry: &str,
    credential: &Credential,
) -> Result<(), CredentialError> {
    let path = path.to_path_buf();
    let _lock = lock_config_folder(&path)?;
    let mut config = read_json(&path)?.unwrap_or_else(|| json!({}));
    let key = config_key(registry);
    if let Some(store) = config
        .get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        let input = serde_json::to_vec(&json!({
            "ServerURL": key, "Username": credential.username, "Secret": credential.secret,
        }))
        .unwrap_or_default();
        let (ok, _, stderr) = run_helper(store, "store", &input)?;
        if !ok {
            return Err(CredentialError::Helper {
                helper: store.to_string(),
                problem: stderr,
            });
        }
        return Ok(());
    }
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credential.username, credential.secret));
    let root = config
        .as_object_mut()
        .ok_or_else(|| CredentialError::Invalid {
            path: path.clone(),
            problem: "it is not a JSON object".into(),
        })?;
    let auths = root.entry("auths").or_insert_with(|| json!({}));
    if !auths.is_object() {
        *auths = json!({});
    }
    if let Some(map) = auths.as_object_mut() {
        map.insert(key, json!({ "auth": auth }));
    }
    write_private(&path, &config)
}

/// Forgets credentials for `registry` (I/O); says whether there were any.
pub fn remove_login(registry: &str) -> Result<bool, CredentialError> {
    let Some(path) = docker_config_path() else {
        return Ok(false);
    };
    let _lock = lock_config_folder(&path)?;
    let Some(mut config) = read_json(&path)? else {
        return Ok(false);
    };
    let key = config_key(registry);
    if let Some(store) = config
        .get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        let (ok, _, _) = run_helper(store, "erase", key.as_bytes())?;
        return Ok(ok);
    }
    let removed = config
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|auths| {
            let keys: Vec<String> = auths
                .keys()
                .filter(|k| normalize_key(k).0 == registry)
                .cloned()
                .collect();
            keys.iter().filter(|k| auths.remove(*k).is_some()).count() > 0
        })
        .unwrap_or(false);
    if removed {
        write_private(&path, &config)?;
    }
    Ok(removed)
}

fn write_private(path: &Path, config: &Value) -> Result<(), CredentialError> {
    let write_err = |source| CredentialError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let mut text = serde_json::to_vec_pretty(config).unwrap_or_default();
    text.push(b'\n');
    // 0600 is set before the first byte lands, so the secrets are never readable by others.
    crate::atomic::write_file_with_mode(path, &text, 0o600).map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_at_once_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker/config.json");
        std::thread::scope(|scope| {
            for i in 0..16 {
                let path = &path;
                scope.spawn(move || {
                    let credential = Credential {
                        username: format!("user{i}"),
                        secret: "secret".into(),
                    };
                    write_login_at(path, &format!("registry{i}.example:5000"), &credential)
                        .unwrap();
                });
            }
        });
        let config = read_json(&path).unwrap().unwrap();
        assert_eq!(config["auths"].as_object().unwrap().len(), 16, "{config}");
    }

    #[test]
    fn keys_normalise_to_registries() {
        assert_eq!(
            normalize_key("https://index.docker.io/v1/"),
            ("docker.io".into(), None)
        );
        assert_eq!(
            normalize_key("registry-1.docker.io"),
            ("docker.io".into(), None)
        );
        assert_eq!(
            normalize_key("https://Index.Docker.io/v1/"),
            ("docker.io".into(), None),
            "as in references, Docker Hub's names are matched in any case"
        );
        assert_eq!(
            normalize_key("http://localhost:5000"),
            ("localhost:5000".into(), None)
        );
        assert_eq!(
            normalize_key("quay.io/org/repo"),
            ("quay.io".into(), Some("org/repo".into()))
        );
        assert_eq!(config_key("docker.io"), DOCKER_HUB_CONFIG_KEY);
    }

    #[test]
    fn auths_pick_the_most_specific_entry() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config = json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("hub:pw1")},
            "quay.io": {"auth": b64("any:pw2")},
            "quay.io/team": {"auth": b64("team:pw3")},
            "localhost:5000": {"username": "u", "password": "p"},
        }});
        let path = Path::new("config.json");
        let get = |r: &str, repo: &str| {
            from_auths(path, &config, r, repo)
                .unwrap()
                .map(|c| c.username)
        };
        assert_eq!(get("docker.io", "library/alpine").as_deref(), Some("hub"));
        assert_eq!(get("quay.io", "team/app").as_deref(), Some("team"));
        assert_eq!(get("quay.io", "teamx/app").as_deref(), Some("any"));
        assert_eq!(get("localhost:5000", "a").as_deref(), Some("u"));
        assert_eq!(get("ghcr.io", "a"), None);
        let broken = json!({"auths": {"ghcr.io": {"auth": "%%%"}}});
        assert!(from_auths(path, &broken, "ghcr.io", "x").is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Credential {
            username: "me".into(),
            secret: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
