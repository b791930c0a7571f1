//! What came back from a request: an answer's body read within a limit, an unusable answer as an error, and no answer at all as a [`NetworkError`] of a known kind.
//!
//! Shared by the client, the token fetch and the API calls above them, so
//! each reads answers and failures the same way.

use std::io::Read;

use reqwest::blocking::Response;

use super::{NetworkError, NetworkFailure, RegistryError};

/// The error as a [`NetworkError`]: its kind, its URL without query or
/// password (upload and redirect URLs may carry signed state or
/// credentials), and each cause that says something, once.
pub(super) fn no_answer(error: reqwest::Error) -> NetworkError {
    let failure = failure_of(&error);
    let mut causes: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = next {
        let text = cause.to_string();
        let said = causes.last().is_some_and(|last| last.contains(&text));
        if !said && !only_passes_on(&text) {
            causes.push(text);
        }
        next = cause.source();
    }
    if causes.is_empty() {
        causes.push(failure.describe().to_string());
    }
    let detail = match error.url() {
        Some(url) => format!("{}: {}", redact_url(url), causes.join(": ")),
        None => causes.join(": "),
    };
    NetworkError { failure, detail }
}

/// Whether `message` is one of reqwest's and hyper's wrappers, which say
/// only which layer passed the error on (the URL is shown apart).
fn only_passes_on(message: &str) -> bool {
    let lower = message.to_lowercase();
    lower.starts_with("error sending request for url")
        || lower.starts_with("client error (")
        || ["tcp connect error", "dns error", "error resolving dns"].contains(&lower.as_str())
}

/// What kind of failure a request that got no answer ran into. reqwest
/// exposes timeouts, connect and body errors; refused connections and
/// missing routes are read from the `io::Error` at the chain's end, and DNS
/// failures, certificates and plain HTTP from the causes' text.
pub(super) fn failure_of(error: &reqwest::Error) -> NetworkFailure {
    let causes = causes_text(error);
    let io_kind = io_error_kind(error);
    if error.is_builder() || error.is_redirect() {
        NetworkFailure::Unusable
    } else if causes.contains("certificate") {
        NetworkFailure::Untrusted
    } else if causes.contains("invalidcontenttype")
        || causes.contains("corrupt message")
        || causes.contains("wrong version number")
    {
        NetworkFailure::PlainHttp
    } else if error.is_timeout() {
        NetworkFailure::Timeout
    } else if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        NetworkFailure::Refused
    } else if matches!(
        io_kind,
        Some(std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable)
    ) {
        NetworkFailure::NoRoute
    } else if causes.contains("dns error") || causes.contains("failed to lookup address") {
        NetworkFailure::Unresolved
    } else if error.is_connect() {
        NetworkFailure::NoConnection
    } else if error.is_body() || error.is_request() {
        NetworkFailure::BrokeOff
    } else {
        NetworkFailure::Unusable
    }
}

/// The causes of `error`, without its own message (which holds the URL,
/// whose path may say anything), as one lower-case text.
fn causes_text(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push(' ');
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.to_lowercase()
}

/// The kind of the first `io::Error` among the causes of `error`.
fn io_error_kind(error: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

/// A URL without its query: upload URLs carry session state some registries sign.
pub(super) fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

/// The body, refused when over `limit` bytes: a hostile registry must not fill memory.
pub(super) fn read_limited(
    response: Response,
    limit: u64,
    registry: &str,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    if let Some(length) = response.content_length()
        && length > limit
    {
        return Err(RegistryError::TooLarge {
            registry: registry.to_string(),
            what: what.to_string(),
            size: length,
            limit,
        });
    }
    let mut bytes = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| RegistryError::Send {
            registry: registry.to_string(),
            what: what.to_string(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::TooLarge {
            registry: registry.to_string(),
            what: what.to_string(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// An error for an answer the caller cannot use, with the registry's own explanation when it gave one.
pub(super) fn status_error(registry: &str, what: &str, response: Response) -> RegistryError {
    let status = response.status().as_u16();
    let detail = read_limited(response, 4096, registry, what)
        .ok()
        .and_then(|body| registry_error_text(&body))
        .map(|text| format!(": {text}"))
        .unwrap_or_default();
    RegistryError::Status {
        registry: registry.to_string(),
        what: what.to_string(),
        status,
        detail,
    }
}

/// The `errors[].message` of a registry error body, if it has one.
fn registry_error_text(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let errors = value.get("errors")?.as_array()?;
    let texts: Vec<String> = errors
        .iter()
        .filter_map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            let text = format!("{code} {message}").trim().to_string();
            (!text.is_empty()).then(|| text.chars().take(200).collect())
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("; "))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::blocking::Client;

    use super::*;

    /// What a GET of `url` fails with.
    fn failed_get(url: &str) -> reqwest::Error {
        match test_client()
            .get(url)
            .timeout(Duration::from_millis(300))
            .send()
        {
            Err(error) => error,
            Ok(response) => panic!("{url} answered {}", response.status()),
        }
    }

    /// A loopback server that does `with` to each connection; its address.
    fn serve(with: fn(std::net::TcpStream)) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                with(stream);
            }
        });
        address
    }

    /// A client that goes straight to the host, whatever HTTPS_PROXY says.
    fn test_client() -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client")
    }

    /// A loopback port nothing listens on: bound, then let go.
    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    }

    #[test]
    fn a_refused_connection_is_refused_and_said_once() {
        let url = format!("https://127.0.0.1:{}/v2/x?_state=secret", free_port());
        let error = failed_get(&url);
        assert_eq!(failure_of(&error), NetworkFailure::Refused);
        let detail = no_answer(error).to_string();
        assert!(
            detail.starts_with("https://127.0.0.1:") && detail.contains("/v2/x: "),
            "the URL, without its query: {detail}"
        );
        assert!(!detail.contains("secret"), "{detail}");
        assert!(detail.contains("Connection refused"), "{detail}");
        for wrapper in ["client error", "tcp connect error", "error sending request"] {
            assert!(!detail.contains(wrapper), "{wrapper}: {detail}");
        }
    }

    #[test]
    fn a_name_that_does_not_resolve_is_unresolved() {
        // `.invalid` never resolves (RFC 6761), online or not.
        let error = failed_get("https://nonexistent.invalid/v2/");
        assert_eq!(failure_of(&error), NetworkFailure::Unresolved, "{error:?}");
        let detail = no_answer(error).to_string();
        assert!(!detail.contains("dns error"), "{detail}");
        assert!(
            detail.starts_with("https://nonexistent.invalid/v2/: "),
            "{detail}"
        );
    }

    #[test]
    fn silence_times_out_and_a_hang_up_breaks_off() {
        let silent = serve(|stream| {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(5));
                drop(stream);
            });
        });
        let error = failed_get(&format!("http://{silent}/v2/"));
        assert_eq!(failure_of(&error), NetworkFailure::Timeout);
        let hangs_up = serve(drop);
        let error = failed_get(&format!("http://{hangs_up}/v2/"));
        assert_eq!(failure_of(&error), NetworkFailure::BrokeOff, "{error:?}");
    }

    #[test]
    fn plain_http_answering_https_is_plain_http() {
        let plain = serve(|mut stream| {
            use std::io::Write;
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        });
        let error = failed_get(&format!("https://{plain}/v2/"));
        assert_eq!(failure_of(&error), NetworkFailure::PlainHttp, "{error:?}");
        let error = failed_get("http://exa mple/v2/");
        assert_eq!(failure_of(&error), NetworkFailure::Unusable, "{error:?}");
    }

    #[test]
    fn registry_error_bodies_are_summarised() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        assert_eq!(
            registry_error_text(body).unwrap(),
            "MANIFEST_UNKNOWN manifest unknown"
        );
        assert_eq!(registry_error_text(b"<html>"), None);
    }
}
