//! Docker Hub's names: its canonical registry name, the spellings that mean it, and the host that serves its API.
//!
//! Docker Hub's names are spelled here only: parsing, credentials, login and
//! the registry client all go through these constants and functions.

/// Docker Hub's canonical registry name; its other spellings normalise to it.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub serves the registry API from a different host than its name.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const DOCKER_HUB_ALIASES: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// A registry's canonical name: Docker Hub's other spellings (any case) become
/// `docker.io`, every other host stays as it is.
pub fn canonical_registry(host: &str) -> &str {
    if DOCKER_HUB_ALIASES
        .iter()
        .any(|a| a.eq_ignore_ascii_case(host))
    {
        DOCKER_HUB
    } else {
        host
    }
}

/// The host that serves a registry's HTTP API: for Docker Hub
/// registry-1.docker.io; every other registry serves it itself. (The
/// registry client may be told another host for Docker Hub: `RegistryOptions`.)
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API_HOST
    } else {
        registry
    }
}

/// The registry `stowage login` and `logout` mean by what the user typed: a
/// host, or a URL such as Docker's `https://index.docker.io/v1/` (scheme and
/// path dropped). Nothing, or an empty host, means Docker Hub.
pub fn login_registry_name(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or(DOCKER_HUB);
    let host = raw
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(raw);
    if host.is_empty() {
        return DOCKER_HUB.to_string();
    }
    canonical_registry(host).to_string()
}
