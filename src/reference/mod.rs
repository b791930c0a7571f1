//! Image references and where images live: Docker's reference grammar (`name.rs`), the locations that name image sources and sinks (`location.rs`), and Docker Hub's names (`hub.rs`).
//!
//! A leaf: it imports nothing of the crate and reads no environment.

mod hub;
mod location;
mod name;
#[cfg(test)]
mod tests;

pub use hub::{DOCKER_HUB, DOCKER_HUB_API_HOST, api_host, canonical_registry, login_registry_name};
pub use location::{Location, parse_location};
pub use name::ImageRef;

use location::KNOWN_TRANSPORTS;
use name::NAME_MAX;

/// Why a reference or transport string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("empty image reference")]
    Empty,
    #[error("invalid reference `{input}`: repository names must be lowercase")]
    Uppercase { input: String, suggestion: String },
    #[error("invalid reference `{input}`: {reason}")]
    InvalidName { input: String, reason: String },
    #[error("invalid reference `{input}`: registry host `{host}` is not a valid host[:port]")]
    InvalidHost { input: String, host: String },
    #[error("invalid reference `{input}`: the tag after the last `:` is empty")]
    EmptyTag { input: String },
    #[error(
        "invalid reference `{input}`: tag `{tag}` must be 1 to 128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
    )]
    InvalidTag { input: String, tag: String },
    #[error(
        "invalid reference `{input}`: digest `{digest}` must be `sha256:` and 64 lowercase hex digits (or `sha512:` and 128)"
    )]
    InvalidDigest { input: String, digest: String },
    #[error(
        "invalid reference `{input}`: the full name is {len} characters long, more than {NAME_MAX}"
    )]
    NameTooLong { input: String, len: usize },
    #[error("invalid image location `{input}`: the `docker` transport is written `docker://`")]
    DockerWithoutSlashes { input: String, rest: String },
    #[error("invalid image location `{input}`: the `{transport}` transport needs a path")]
    EmptyPath {
        input: String,
        transport: &'static str,
    },
    #[error("invalid image location `{input}`: nothing follows the `:` after the path")]
    EmptySuffix {
        input: String,
        transport: &'static str,
    },
    #[error(
        "invalid image location `{input}`: a docker-archive image is named by a tag, not a digest"
    )]
    ArchiveDigest { input: String },
    #[error(
        "invalid image location `{input}`: OCI tag `{tag}` may only hold letters, digits and `_` `.` `:` `+` `-`"
    )]
    InvalidOciTag { input: String, tag: String },
    #[error("invalid image location `{input}`: stowage does not support the `{prefix}:` transport")]
    UnsupportedTransport { input: String, prefix: String },
    /// A path or file name without a transport: guessing would push it to a registry.
    #[error(
        "`{input}` looks like a {what}, but names no transport, so it would be taken as a registry image"
    )]
    LooksLikePath {
        input: String,
        what: &'static str,
        archive: bool,
    },
}

impl ReferenceError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ReferenceError::Empty => Some(
                "give an image such as `alpine`, `docker.io/acme/app:1` or `ghcr.io/owner/repo:tag`"
                    .to_string(),
            ),
            ReferenceError::Uppercase { suggestion, .. } => {
                Some(format!("names must be lowercase: try `{suggestion}`"))
            }
            ReferenceError::InvalidName { .. } => Some(
                "repository path components are lowercase letters and digits, joined by `.`, `_`, `__` or dashes, and separated by single `/`"
                    .to_string(),
            ),
            ReferenceError::InvalidHost { .. } => Some(
                "a registry host is a DNS name or `[IPv6]`, optionally followed by `:PORT`, e.g. `localhost:5000/app`"
                    .to_string(),
            ),
            ReferenceError::EmptyTag { .. } => {
                Some("remove the trailing `:`, or write a tag after it, e.g. `acme/app:1.0`".to_string())
            }
            ReferenceError::InvalidTag { .. } => {
                Some("write the tag after the last `:`, e.g. `acme/app:1.0`".to_string())
            }
            ReferenceError::InvalidDigest { .. } => Some(
                "write the digest after `@`, e.g. `alpine@sha256:` followed by 64 hex digits"
                    .to_string(),
            ),
            ReferenceError::NameTooLong { .. } => {
                Some(format!("shorten the repository name: with its registry (docker.io/library/ for a one-part Docker Hub name) it may have at most {NAME_MAX} characters"))
            }
            ReferenceError::DockerWithoutSlashes { rest, .. } => {
                Some(format!("try `docker://{rest}`, or just `{rest}`"))
            }
            ReferenceError::EmptyPath { transport, .. } => {
                Some(format!("write it as `{transport}:PATH`, e.g. `{transport}:./image`"))
            }
            ReferenceError::EmptySuffix { transport, .. } => Some(format!(
                "remove the trailing `:`, or name the image after it, e.g. `{transport}:./image:1.0`"
            )),
            ReferenceError::ArchiveDigest { .. } => Some(
                "docker-save archives record tags only: use `docker-archive:PATH:NAME:TAG`"
                    .to_string(),
            ),
            ReferenceError::InvalidOciTag { .. } => {
                Some("use a tag such as `latest` or `1.0`, e.g. `oci:./layout:1.0`".to_string())
            }
            ReferenceError::UnsupportedTransport { .. } => {
                Some(format!("supported transports: {KNOWN_TRANSPORTS}"))
            }
            ReferenceError::LooksLikePath { input, archive: true, .. } => Some(format!(
                "write `docker-archive:{input}` for an archive `docker load` reads, or `oci-archive:{input}` for an OCI archive"
            )),
            ReferenceError::LooksLikePath { input, .. } => Some(format!(
                "write `oci:{input}` for an OCI layout folder, or `docker-archive:{input}` for an archive `docker load` reads"
            )),
        }
    }
}
