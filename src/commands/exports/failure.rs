//! How a failed step of `exports delete` is told: the problem on one line and what the user can do.

use crate::reference::ImageRef;
use crate::registry::RegistryError;

/// A registry error as a problem and a hint.
pub fn registry_failure(registry: &str, e: &RegistryError) -> (String, String) {
    let hint = match e {
        RegistryError::Status {
            status: 405 | 501, ..
        } => format!(
            "{registry} does not allow deleting manifests; ask its operator to enable it (distribution: storage.delete.enabled: true) or delete the image in its web interface"
        ),
        _ => e
            .hint()
            .unwrap_or_else(|| format!("delete the image in {registry}'s own interface")),
    };
    (error_chain(e), hint)
}

/// A Docker Hub repository's namespace and name (`library` for official images).
pub fn hub_names(reference: &ImageRef) -> (&str, &str) {
    reference
        .repository
        .split_once('/')
        .unwrap_or(("library", &reference.repository))
}

/// The repository's tag page on hub.docker.com, where a user can delete by hand.
pub fn hub_page(reference: &ImageRef) -> String {
    let (namespace, repo) = hub_names(reference);
    format!("https://hub.docker.com/repository/docker/{namespace}/{repo}/tags")
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
