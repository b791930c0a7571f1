//! Docker Hub's own repository API, for what its registry API refuses: deleting a tag.
//!
//! Docker Hub answers `DELETE /v2/<name>/manifests/<digest>` on
//! registry-1.docker.io with UNSUPPORTED, so `stowage exports delete` goes
//! through hub.docker.com instead: `POST /v2/users/login` with the stored
//! Docker Hub credentials (a password or a personal access token with the
//! delete scope) gives a JWT, and
//! `DELETE /v2/repositories/NAMESPACE/REPO/tags/TAG/` removes the tag.
//! `RegistryOptions::docker_hub_api` points this at another base URL (the
//! tests run a stand-in that speaks the same API).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde::Deserialize;

use crate::reference::DOCKER_HUB;
use crate::registry::credentials::{self, CredentialError};

/// Docker Hub's API, unless `RegistryOptions::docker_hub_api` says otherwise.
pub const DEFAULT_API: &str = "https://hub.docker.com";

/// What went wrong talking to Docker Hub's API.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("no Docker Hub credentials are stored")]
    NoCredentials,
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("cannot reach the Docker Hub API at {api} ({what})")]
    Connect {
        api: String,
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Docker Hub refused the credentials of `{username}`")]
    LoginRefused { username: String },
    #[error("Docker Hub answered {status} to {what}{detail}")]
    Status {
        what: String,
        status: u16,
        detail: String,
    },
    #[error("Docker Hub's login answer held no token")]
    NoToken,
}

impl HubError {
    /// What the user can do, with `page` the repository's tag page on hub.docker.com.
    pub fn hint(&self, page: &str) -> String {
        let by_hand = format!("or delete the tag by hand at {page}");
        match self {
            HubError::NoCredentials => format!(
                "log in first: `stowage login -u USER --password-stdin` (a personal access token needs the delete scope), {by_hand}"
            ),
            HubError::LoginRefused { .. } => format!(
                "log in again with a password or a personal access token with the delete scope: `stowage login -u USER --password-stdin`, {by_hand}"
            ),
            HubError::Status {
                status: 401 | 403, ..
            } => format!(
                "the account may read but not delete this repository: use an owner's token with the delete scope, {by_hand}"
            ),
            _ => format!("try again later, {by_hand}"),
        }
    }
}

/// What a tag deletion found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Deleted,
    /// The tag was not there (deleted before, or never pushed).
    AlreadyGone,
}

#[derive(Deserialize)]
struct LoginAnswer {
    token: Option<String>,
}

/// Deletes `NAMESPACE/REPO:TAG` on Docker Hub, whose API is at `api`, with the stored credentials (I/O).
pub fn delete_tag(api: &str, namespace: &str, repo: &str, tag: &str) -> Result<Outcome, HubError> {
    let credential = credentials::find_credential(DOCKER_HUB, &format!("{namespace}/{repo}"))?
        .ok_or(HubError::NoCredentials)?;
    let api = api.to_string();
    // reqwest is built without a default crypto provider; ring is the one linked in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let connect = |what: &str, source| HubError::Connect {
        api: api.clone(),
        what: what.to_string(),
        source,
    };
    let client = Client::builder()
        .user_agent(concat!("stowage/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| connect("setting up HTTP", e))?;

    let login = client
        .post(format!("{api}/v2/users/login"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(
            serde_json::json!({
                "username": credential.username,
                "password": credential.secret,
            })
            .to_string(),
        )
        .send()
        .map_err(|e| connect("logging in", e))?;
    match login.status() {
        s if s.is_success() => {}
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(HubError::LoginRefused {
                username: credential.username,
            });
        }
        _ => return Err(status_error("logging in", login)),
    }
    let token = login
        .bytes()
        .ok()
        .and_then(|body| serde_json::from_slice::<LoginAnswer>(&body).ok())
        .and_then(|a| a.token)
        .filter(|t| !t.is_empty())
        .ok_or(HubError::NoToken)?;

    let what = format!("deleting tag {namespace}/{repo}:{tag}");
    let response = client
        .delete(format!(
            "{api}/v2/repositories/{namespace}/{repo}/tags/{tag}/"
        ))
        .bearer_auth(&token)
        .send()
        .map_err(|e| connect(&what, e))?;
    match response.status() {
        s if s.is_success() => Ok(Outcome::Deleted),
        StatusCode::NOT_FOUND => Ok(Outcome::AlreadyGone),
        _ => Err(status_error(&what, response)),
    }
}

/// An error for an unexpected answer, with the start of its body (Hub explains itself there).
fn status_error(what: &str, response: reqwest::blocking::Response) -> HubError {
    let status = response.status().as_u16();
    let body = response.text().unwrap_or_default();
    let body: String = body.trim().chars().take(200).collect();
    HubError::Status {
        what: what.to_string(),
        status,
        detail: if body.is_empty() {
            String::new()
        } else {
            format!(": {body}")
        },
    }
}
