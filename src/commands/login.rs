//! `stowage login` and `logout`: check credentials against a registry and keep them in Docker's config.json.

use std::path::PathBuf;

use super::Session;
use crate::error::Error;
use crate::reference;
use crate::registry::RegistryError;
use crate::registry::credentials::{self, Credential};

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
    let registry_name = reference::login_registry_name(registry);
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
    let registry_name = reference::login_registry_name(registry);
    let removed = credentials::remove_login(&registry_name)
        .map_err(|e| Error::from(RegistryError::from(e)))?;
    Ok((registry_name, removed))
}
