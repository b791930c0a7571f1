//! `stowage login` and `logout`: check credentials against a registry and keep them in Docker's config.json.

use std::path::PathBuf;

use super::Session;
use crate::error::Error;
use crate::registry::RegistryError;
use crate::registry::credentials::{self, Credential};

/// The registry a login names: Docker Hub by default, in any of its spellings.
pub fn login_registry(registry: Option<&str>) -> String {
    let raw = registry.unwrap_or("docker.io");
    let host = raw
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(raw);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" | "" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// Checks `password` for `username` against the registry (I/O) and saves it; returns the registry's name and the file written.
pub fn login(
    session: &Session,
    registry: Option<&str>,
    username: &str,
    password: String,
) -> Result<(String, PathBuf), Error> {
    if password.is_empty() {
        return Err(Error::usage(
            "the password on standard input is empty",
            "pipe the password or token in",
        ));
    }
    let registry_name = login_registry(registry);
    let credential = Credential {
        username: username.to_string(),
        secret: password,
    };
    crate::registry::Registry::new(session.options.clone())?
        .with_credential(&registry_name, credential.clone())
        .check_login(&registry_name)
        .map_err(|e| Error::from(e).context(format!("cannot log in to {registry_name}")))?;
    let path = credentials::write_login(&registry_name, &credential)
        .map_err(|e| Error::from(RegistryError::from(e)))?;
    Ok((registry_name, path))
}

/// Forgets the stored credentials for the registry (I/O); returns its name and whether there were any.
pub fn logout(registry: Option<&str>) -> Result<(String, bool), Error> {
    let registry_name = login_registry(registry);
    let removed = credentials::remove_login(&registry_name)
        .map_err(|e| Error::from(RegistryError::from(e)))?;
    Ok((registry_name, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names_normalise() {
        assert_eq!(login_registry(None), "docker.io");
        assert_eq!(
            login_registry(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(login_registry(Some("localhost:5000")), "localhost:5000");
    }
}
