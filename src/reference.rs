//! Image references (Docker's grammar and Docker Hub normalisation) and the transports that name image sources and sinks.

use std::fmt;
use std::path::PathBuf;

/// Docker Hub's canonical registry name; its other spellings normalise to it.
///
/// Docker Hub's names are spelled here only: parsing, credentials, login and
/// the registry client all go through this constant and the functions below.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub serves the registry API from a different host than its name.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const DOCKER_HUB_ALIASES: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];
/// distribution/reference's limit on the length of a name (without tag or digest).
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// Transports stowage speaks, as written in front of a location.
const KNOWN_TRANSPORTS: &str = "docker://, docker-archive:, oci:, oci-archive:, scratch";
/// containers/image transports users may know from skopeo or podman that stowage does not speak.
const UNSUPPORTED_TRANSPORTS: &[&str] = &[
    "containers-storage",
    "dir",
    "docker-daemon",
    "ostree",
    "sif",
    "tarball",
];

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

/// A registry image reference, normalised the way Docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalises a reference: `alpine` becomes `docker.io/library/alpine:latest`.
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest
            && !is_digest(d)
        {
            return Err(ReferenceError::InvalidDigest {
                input: s.to_string(),
                digest: d.to_string(),
            });
        }
        // A tag's ':' is the last one after the last '/'; earlier ones belong to a host's port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if tag == Some("") {
            return Err(ReferenceError::EmptyTag {
                input: s.to_string(),
            });
        }
        if let Some(t) = tag
            && !is_tag(t)
        {
            return Err(ReferenceError::InvalidTag {
                input: s.to_string(),
                tag: t.to_string(),
            });
        }
        if name.is_empty() {
            return Err(ReferenceError::InvalidName {
                input: s.to_string(),
                reason: "the repository name is empty".to_string(),
            });
        }
        if name.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                input: s.to_string(),
                len: name.len(),
            });
        }
        let (host, path) = split_host(name);
        if let Some(h) = host
            && !is_host(h)
        {
            return Err(ReferenceError::InvalidHost {
                input: s.to_string(),
                host: h.to_string(),
            });
        }
        check_path(s, host, path)?;

        let registry = host.map_or(DOCKER_HUB, canonical_registry);
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        // The limit holds for the normalised name, as in Docker's own parser:
        // `docker.io/library/` may push a short-looking name over it.
        let normalised = registry.len() + 1 + repository.len();
        if normalised > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                input: s.to_string(),
                len: normalised,
            });
        }
        let tag = match (tag, digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(ImageRef {
            registry: registry.to_string(),
            repository,
            tag,
            digest: digest.map(str::to_string),
        })
    }

    /// `registry/repository`, e.g. `docker.io/library/alpine`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host that serves the registry HTTP API (see `api_host`).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The short form `docker images` shows: `alpine:latest`, `acme/app:1`, `ghcr.io/x/y:2`.
    pub fn familiar(&self) -> String {
        let name = if self.registry == DOCKER_HUB {
            match self.repository.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        };
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{name}:{t}"),
            (None, Some(d)) => format!("{name}@{d}"),
            (None, None) => name,
        }
    }

    /// The tag, or `latest` for a digest-only reference.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// `registry/repository@DIGEST`, the form that pins exact content.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{}@{digest}", self.name())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

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

/// Where an image is read from or written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `docker://REF` or a bare `REF`.
    Registry(ImageRef),
    /// `docker-archive:PATH[:REF]`, a `docker save` tarball.
    DockerArchive {
        path: PathBuf,
        reference: Option<ImageRef>,
    },
    /// `oci:PATH[:TAG]`, an OCI image layout directory.
    Oci { path: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH[:TAG]`, a tar of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// `scratch`, the empty image.
    Scratch,
}

/// Parses an image location in the container tools' transport syntax.
pub fn parse_transport(s: &str) -> Result<Transport, ReferenceError> {
    if s == "scratch" {
        return Ok(Transport::Scratch);
    }
    if let Some(rest) = s.strip_prefix("docker://") {
        return ImageRef::parse(rest).map(Transport::Registry);
    }
    if let Some(rest) = s.strip_prefix("docker-archive:") {
        let transport = "docker-archive";
        let (path, suffix) = split_location(s, rest, transport)?;
        let reference = match suffix {
            Some(r) => {
                let r = ImageRef::parse(r)?;
                if r.digest.is_some() {
                    return Err(ReferenceError::ArchiveDigest {
                        input: s.to_string(),
                    });
                }
                Some(r)
            }
            None => None,
        };
        return Ok(Transport::DockerArchive { path, reference });
    }
    if let Some(rest) = s.strip_prefix("oci-archive:") {
        let (path, tag) = split_oci(s, rest, "oci-archive")?;
        return Ok(Transport::OciArchive { path, tag });
    }
    if let Some(rest) = s.strip_prefix("oci:") {
        let (path, tag) = split_oci(s, rest, "oci")?;
        return Ok(Transport::Oci { path, tag });
    }
    if let Some(rest) = s.strip_prefix("docker:") {
        return Err(ReferenceError::DockerWithoutSlashes {
            input: s.to_string(),
            rest: rest.trim_start_matches('/').to_string(),
        });
    }
    if let Some((prefix, _)) = s.split_once(':')
        && UNSUPPORTED_TRANSPORTS.contains(&prefix)
    {
        return Err(ReferenceError::UnsupportedTransport {
            input: s.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if let Some((what, archive)) = looks_like_path(s)
        && looks_like_transport(s).is_none()
    {
        return Err(ReferenceError::LooksLikePath {
            input: s.to_string(),
            what,
            archive,
        });
    }
    ImageRef::parse(s)
        .map_err(|e| match looks_like_transport(s) {
            Some(prefix) => ReferenceError::UnsupportedTransport {
                input: s.to_string(),
                prefix: prefix.to_string(),
            },
            None => e,
        })
        .map(Transport::Registry)
}

impl fmt::Display for Transport {
    /// Writes the form `parse_transport` reads back (a PATH holding `:` cannot round-trip, as in containers/image).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Registry(r) => write!(f, "docker://{r}"),
            Transport::DockerArchive { path, reference } => {
                write!(f, "docker-archive:{}", path.display())?;
                match reference {
                    Some(r) => write!(f, ":{r}"),
                    None => Ok(()),
                }
            }
            Transport::Oci { path, tag } => write_oci(f, "oci", path, tag.as_deref()),
            Transport::OciArchive { path, tag } => {
                write_oci(f, "oci-archive", path, tag.as_deref())
            }
            Transport::Scratch => f.write_str("scratch"),
        }
    }
}

fn write_oci(
    f: &mut fmt::Formatter<'_>,
    transport: &str,
    path: &std::path::Path,
    tag: Option<&str>,
) -> fmt::Result {
    write!(f, "{transport}:{}", path.display())?;
    match tag {
        Some(t) => write!(f, ":{t}"),
        None => Ok(()),
    }
}

/// Splits `PATH[:SUFFIX]` at the first ':', as containers/image does.
fn split_location<'a>(
    input: &str,
    rest: &'a str,
    transport: &'static str,
) -> Result<(PathBuf, Option<&'a str>), ReferenceError> {
    let (path, suffix) = match rest.split_once(':') {
        Some((p, s)) => (p, Some(s)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(ReferenceError::EmptyPath {
            input: input.to_string(),
            transport,
        });
    }
    if suffix == Some("") {
        return Err(ReferenceError::EmptySuffix {
            input: input.to_string(),
            transport,
        });
    }
    Ok((PathBuf::from(path), suffix))
}

fn split_oci(
    input: &str,
    rest: &str,
    transport: &'static str,
) -> Result<(PathBuf, Option<String>), ReferenceError> {
    let (path, tag) = split_location(input, rest, transport)?;
    if let Some(t) = tag
        && !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:+-".contains(c))
    {
        return Err(ReferenceError::InvalidOciTag {
            input: input.to_string(),
            tag: t.to_string(),
        });
    }
    Ok((path, tag.map(str::to_string)))
}

/// A failed reference that starts `word:` followed by a path is most likely a mistyped transport.
/// What a location without a transport looks like when it is a file or folder
/// on this machine (it starts with `/`, `./`, `../` or `~/`, or ends like an
/// archive or layout): what to call it, and whether it is an archive file.
/// Some such names (`app.tar`) would parse as registry references, which is
/// why they are refused rather than guessed.
fn looks_like_path(s: &str) -> Option<(&'static str, bool)> {
    const ARCHIVE_ENDINGS: &[&str] = &[".tar", ".tar.gz", ".tgz", ".tar.zst"];
    let lower = s.to_ascii_lowercase();
    if ARCHIVE_ENDINGS.iter().any(|e| lower.ends_with(e)) {
        return Some(("file path (an archive)", true));
    }
    if lower.ends_with(".oci") {
        return Some(("folder (an OCI layout)", false));
    }
    let local = ["/", "./", "../", "~/"].iter().any(|p| s.starts_with(p)) || s == "." || s == "..";
    local.then_some(("path on this machine", false))
}

fn looks_like_transport(s: &str) -> Option<&str> {
    let (prefix, rest) = s.split_once(':')?;
    let word = !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_lowercase() || c == '-');
    let pathish = rest.starts_with(['/', '.', '~']);
    (word && pathish).then_some(prefix)
}

/// Docker's rule: the first component is a host when it has '.' or ':' or is `localhost`, and more follows.
fn split_host(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_path(input: &str, host: Option<&str>, path: &str) -> Result<(), ReferenceError> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        let lower = path.to_ascii_lowercase();
        let mut suggestion = match host {
            Some(h) => format!("{h}/{lower}"),
            None => lower,
        };
        // Keep the tag and digest as written: only the name has to be lowercase.
        suggestion.push_str(&input[host.map_or(0, |h| h.len() + 1) + path.len()..]);
        return Err(ReferenceError::Uppercase {
            input: input.to_string(),
            suggestion,
        });
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ReferenceError::InvalidName {
                input: input.to_string(),
                reason: "the name has an empty path component (`//`, or a leading or trailing `/`)"
                    .to_string(),
            });
        }
        if !is_path_component(component) {
            return Err(ReferenceError::InvalidName {
                input: input.to_string(),
                reason: format!("path component `{component}` is not valid"),
            });
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
}

/// `host[:port]` where host is dot-separated DNS labels or a bracketed IPv6 address.
fn is_host(h: &str) -> bool {
    let (host, port) = if let Some(inner) = h.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (h, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if h.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn is_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match t.as_bytes() {
        [] => false,
        [first, rest @ ..] => {
            t.len() <= TAG_MAX
                && word(*first)
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
    }
}

/// `sha256:` + 64 lowercase hex, or `sha512:` + 128.
fn is_digest(d: &str) -> bool {
    let hex_of = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match d.split_once(':') {
        Some(("sha256", hex)) => hex_of(hex, 64),
        Some(("sha512", hex)) => hex_of(hex, 128),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn r(s: &str) -> ImageRef {
        match ImageRef::parse(s) {
            Ok(r) => r,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn err(s: &str) -> ReferenceError {
        match ImageRef::parse(s) {
            Ok(r) => panic!("{s} parsed as {r:?}"),
            Err(e) => e,
        }
    }

    /// input, registry, repository, tag, digest
    type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

    #[test]
    fn normalisation_table() {
        let digest_ref = format!("ghcr.io/o/r@{D}");
        let both = format!("host:5000/a/b:t@{D}");
        let table: &[Row] = &[
            (
                "alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                None,
            ),
            (
                "library/alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                None,
            ),
            (
                "docker.io/alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                None,
            ),
            (
                "index.docker.io/library/alpine:3",
                "docker.io",
                "library/alpine",
                Some("3"),
                None,
            ),
            (
                "registry-1.docker.io/x/y",
                "docker.io",
                "x/y",
                Some("latest"),
                None,
            ),
            (
                "localhost:5000/a",
                "localhost:5000",
                "a",
                Some("latest"),
                None,
            ),
            ("localhost/a", "localhost", "a", Some("latest"), None),
            (&digest_ref, "ghcr.io", "o/r", None, Some(D)),
            (&both, "host:5000", "a/b", Some("t"), Some(D)),
            ("[::1]:5000/a/b:1.0", "[::1]:5000", "a/b", Some("1.0"), None),
            ("[fe80::1]/a", "[fe80::1]", "a", Some("latest"), None),
            ("acme/app:1", "docker.io", "acme/app", Some("1"), None),
            ("a/b/c/d", "docker.io", "a/b/c/d", Some("latest"), None),
            (
                "localhost:5000",
                "docker.io",
                "library/localhost",
                Some("5000"),
                None,
            ),
            (
                "my.registry:443/team/app",
                "my.registry:443",
                "team/app",
                Some("latest"),
                None,
            ),
            (
                "x/a-b__c.d_e---f",
                "docker.io",
                "x/a-b__c.d_e---f",
                Some("latest"),
                None,
            ),
        ];
        for &(input, registry, repository, tag, digest) in table {
            let got = r(input);
            assert_eq!(got.registry, registry, "{input}");
            assert_eq!(got.repository, repository, "{input}");
            assert_eq!(got.tag.as_deref(), tag, "{input}");
            assert_eq!(got.digest.as_deref(), digest, "{input}");
        }
    }

    #[test]
    fn accessors() {
        let a = r("alpine");
        assert_eq!(a.name(), "docker.io/library/alpine");
        assert_eq!(a.api_host(), "registry-1.docker.io");
        assert_eq!(a.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(a.tag_or_latest(), "latest");
        assert_eq!(a.with_digest(D), format!("docker.io/library/alpine@{D}"));

        let g = r(&format!("ghcr.io/o/r@{D}"));
        assert_eq!(g.api_host(), "ghcr.io");
        assert_eq!(g.tag_or_latest(), "latest");
        assert_eq!(g.to_string(), format!("ghcr.io/o/r@{D}"));

        let both = r(&format!("x/y:t@{D}"));
        assert_eq!(both.to_string(), format!("docker.io/x/y:t@{D}"));
        let hp = r(&format!("host:5000/a/b@{D}"));
        assert_eq!(hp.to_string(), format!("host:5000/a/b@{D}"));
        assert_eq!(hp.api_host(), "host:5000");
    }

    #[test]
    fn docker_hub_names() {
        for alias in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "Docker.IO",
        ] {
            assert_eq!(canonical_registry(alias), DOCKER_HUB, "{alias}");
        }
        assert_eq!(canonical_registry("ghcr.io"), "ghcr.io");
        assert_eq!(canonical_registry("localhost:5000"), "localhost:5000");
        assert_eq!(api_host(DOCKER_HUB), DOCKER_HUB_API_HOST);
        assert_eq!(api_host("localhost:5000"), "localhost:5000");
        assert_eq!(r("index.docker.io/a/b").registry, DOCKER_HUB);
    }

    #[test]
    fn login_names_normalise() {
        assert_eq!(login_registry_name(None), "docker.io");
        assert_eq!(
            login_registry_name(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(
            login_registry_name(Some("registry-1.docker.io")),
            "docker.io"
        );
        assert_eq!(login_registry_name(Some("")), "docker.io");
        assert_eq!(
            login_registry_name(Some("localhost:5000")),
            "localhost:5000"
        );
        assert_eq!(
            login_registry_name(Some("http://localhost:5000/v2/")),
            "localhost:5000"
        );
    }

    #[test]
    fn display_reparses_to_the_same_reference() {
        for s in [
            "alpine",
            "acme/app:1",
            "localhost:5000/a",
            "[::1]:5000/a:b",
            &format!("x/y:t@{D}"),
        ] {
            let a = r(s);
            assert_eq!(r(&a.to_string()), a, "{s}");
        }
    }

    #[test]
    fn familiar_names() {
        assert_eq!(r("alpine").familiar(), "alpine:latest");
        assert_eq!(r("docker.io/library/alpine:3").familiar(), "alpine:3");
        assert_eq!(r("acme/app:1").familiar(), "acme/app:1");
        assert_eq!(r("index.docker.io/acme/app").familiar(), "acme/app:latest");
        assert_eq!(r("ghcr.io/x/y:2").familiar(), "ghcr.io/x/y:2");
        assert_eq!(r("library/a/b").familiar(), "library/a/b:latest");
        assert_eq!(r(&format!("alpine@{D}")).familiar(), format!("alpine@{D}"));
        assert_eq!(r(&format!("alpine:3@{D}")).familiar(), "alpine:3");
        assert_eq!(r("localhost:5000/a").familiar(), "localhost:5000/a:latest");
    }

    #[test]
    fn uppercase_is_refused_with_a_lowercase_suggestion() {
        let e = err("Acme/App:V1");
        assert!(matches!(e, ReferenceError::Uppercase { .. }), "{e:?}");
        assert!(e.to_string().contains("Acme/App:V1"));
        assert!(e.to_string().contains("lowercase"));
        assert_eq!(
            e.hint().as_deref(),
            Some("names must be lowercase: try `acme/app:V1`")
        );
        let e = err("ghcr.io/Owner/repo");
        assert_eq!(
            e.hint().as_deref(),
            Some("names must be lowercase: try `ghcr.io/owner/repo`")
        );
    }

    #[test]
    fn bad_references() {
        assert_eq!(err(""), ReferenceError::Empty);
        assert!(matches!(err("a//b"), ReferenceError::InvalidName { .. }));
        assert!(matches!(err("/a"), ReferenceError::InvalidName { .. }));
        assert!(matches!(err("a/"), ReferenceError::InvalidName { .. }));
        assert!(matches!(err("alpine:"), ReferenceError::EmptyTag { .. }));
        assert!(matches!(
            err("localhost:5000/a:"),
            ReferenceError::EmptyTag { .. }
        ));
        assert!(matches!(
            err("alpine:.x"),
            ReferenceError::InvalidTag { .. }
        ));
        assert!(matches!(
            err("alpine:-x"),
            ReferenceError::InvalidTag { .. }
        ));
        assert!(matches!(
            err("alpine:a b"),
            ReferenceError::InvalidTag { .. }
        ));
        assert!(matches!(
            err(&format!("alpine:{}", "t".repeat(129))),
            ReferenceError::InvalidTag { .. }
        ));
        assert!(r(&format!("alpine:{}", "t".repeat(128))).tag.is_some());
        assert!(matches!(err(":tag"), ReferenceError::InvalidName { .. }));
        assert!(matches!(
            err("alpine@"),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err("alpine@sha256:abc"),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err(&format!("alpine@{}", D.to_uppercase())),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err(&format!("alpine@md5:{}", &D[7..])),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err(&format!("alpine@{D}@{D}")),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(
            r(&format!("alpine@sha512:{}", "0".repeat(128)))
                .digest
                .is_some()
        );
        assert!(matches!(err("a..b"), ReferenceError::InvalidName { .. }));
        assert!(matches!(err("a___b"), ReferenceError::InvalidName { .. }));
        assert!(matches!(err("-a"), ReferenceError::InvalidName { .. }));
        assert!(matches!(err("a-"), ReferenceError::InvalidName { .. }));
        assert!(matches!(err("a b"), ReferenceError::InvalidName { .. }));
        assert!(matches!(
            err("host:port/a"),
            ReferenceError::InvalidHost { .. }
        ));
        assert!(matches!(err("host:/a"), ReferenceError::InvalidHost { .. }));
        assert!(matches!(
            err("-host.io/a"),
            ReferenceError::InvalidHost { .. }
        ));
        assert!(matches!(
            err("[zz::1]/a"),
            ReferenceError::InvalidHost { .. }
        ));
        assert!(matches!(err("[::1/a"), ReferenceError::InvalidHost { .. }));
        // The limit counts the full, normalised name (registry included).
        let long = format!("registry.io/{}", "b".repeat(244));
        assert!(matches!(
            err(&long),
            ReferenceError::NameTooLong { len: 256, .. }
        ));
        assert!(r(&format!("registry.io/{}", "b".repeat(243))).tag.is_some());
        assert!(matches!(
            err(&format!("a/{}", "b".repeat(253))),
            ReferenceError::NameTooLong { len: 265, .. }
        ));
    }

    #[test]
    fn every_error_names_its_input_and_has_a_hint() {
        let inputs = [
            "Up",
            "a//b",
            "alpine:",
            "alpine@x",
            "h:x/a",
            "docker:x",
            "oci:",
            "docker-archive:x:",
            "oci:x:a b",
            "dir:/x",
        ];
        for s in inputs {
            let e = match parse_transport(s) {
                Ok(t) => panic!("{s} parsed as {t:?}"),
                Err(e) => e,
            };
            assert!(e.to_string().contains(s), "{s}: {e}");
            assert!(e.hint().is_some(), "{s}");
        }
    }

    #[test]
    fn transports() {
        assert_eq!(parse_transport("scratch"), Ok(Transport::Scratch));
        assert_eq!(
            parse_transport("alpine"),
            Ok(Transport::Registry(r("alpine")))
        );
        assert_eq!(
            parse_transport("docker://alpine:3"),
            Ok(Transport::Registry(r("alpine:3")))
        );
        assert_eq!(
            parse_transport("localhost:5000/x"),
            Ok(Transport::Registry(r("localhost:5000/x")))
        );
        assert_eq!(
            parse_transport("host:5000/x:tag"),
            Ok(Transport::Registry(r("host:5000/x:tag")))
        );
        assert_eq!(
            parse_transport("foo:bar"),
            Ok(Transport::Registry(r("foo:bar")))
        );
        assert_eq!(
            parse_transport("docker-archive:/tmp/x.tar:myapp:1.0"),
            Ok(Transport::DockerArchive {
                path: PathBuf::from("/tmp/x.tar"),
                reference: Some(r("docker.io/library/myapp:1.0")),
            })
        );
        assert_eq!(
            parse_transport("docker-archive:out.tar.gz"),
            Ok(Transport::DockerArchive {
                path: PathBuf::from("out.tar.gz"),
                reference: None
            })
        );
        assert_eq!(
            parse_transport("docker-archive:x.tar:localhost:5000/a:b"),
            Ok(Transport::DockerArchive {
                path: PathBuf::from("x.tar"),
                reference: Some(r("localhost:5000/a:b"))
            })
        );
        assert_eq!(
            parse_transport("oci:./layout:v1:extra"),
            Ok(Transport::Oci {
                path: PathBuf::from("./layout"),
                tag: Some("v1:extra".to_string())
            })
        );
        assert_eq!(
            parse_transport("oci:/l"),
            Ok(Transport::Oci {
                path: PathBuf::from("/l"),
                tag: None
            })
        );
        assert_eq!(
            parse_transport("oci-archive:/x.tar:1.0+b_2-c"),
            Ok(Transport::OciArchive {
                path: PathBuf::from("/x.tar"),
                tag: Some("1.0+b_2-c".to_string())
            })
        );
    }

    #[test]
    fn bad_transports() {
        let e = parse_transport("docker:alpine").err();
        assert!(matches!(
            e,
            Some(ReferenceError::DockerWithoutSlashes { .. })
        ));
        assert_eq!(
            e.and_then(|e| e.hint()).as_deref(),
            Some("try `docker://alpine`, or just `alpine`")
        );
        assert!(matches!(
            parse_transport("docker-archive:"),
            Err(ReferenceError::EmptyPath { .. })
        ));
        assert!(matches!(
            parse_transport("docker-archive::x"),
            Err(ReferenceError::EmptyPath { .. })
        ));
        assert!(matches!(
            parse_transport("oci:"),
            Err(ReferenceError::EmptyPath { .. })
        ));
        assert!(matches!(
            parse_transport("oci-archive::t"),
            Err(ReferenceError::EmptyPath { .. })
        ));
        assert!(matches!(
            parse_transport("oci:x:"),
            Err(ReferenceError::EmptySuffix { .. })
        ));
        assert!(matches!(
            parse_transport("oci:x:a/b"),
            Err(ReferenceError::InvalidOciTag { .. })
        ));
        assert!(matches!(
            parse_transport(&format!("docker-archive:x.tar:app@{D}")),
            Err(ReferenceError::ArchiveDigest { .. })
        ));
        assert!(matches!(
            parse_transport("docker-archive:x.tar:App"),
            Err(ReferenceError::Uppercase { .. })
        ));
        assert!(matches!(
            parse_transport("docker://"),
            Err(ReferenceError::Empty)
        ));
        assert!(matches!(
            parse_transport("scratch:1"),
            Ok(Transport::Registry(_))
        ));
        for s in [
            "dir:/tmp/x",
            "containers-storage:alpine",
            "docker-daemon:alpine:3",
        ] {
            assert!(
                matches!(
                    parse_transport(s),
                    Err(ReferenceError::UnsupportedTransport { .. })
                ),
                "{s}"
            );
        }
        for (s, archive, suggests) in [
            ("app.tar", true, "docker-archive:app.tar"),
            ("app.tar.gz", true, "docker-archive:app.tar.gz"),
            ("myapp.TGZ", true, "oci-archive:myapp.TGZ"),
            ("./out", false, "oci:./out"),
            ("../out", false, "docker-archive:../out"),
            ("/tmp/x", false, "oci:/tmp/x"),
            ("/tmp/out.tar.gz", true, "docker-archive:/tmp/out.tar.gz"),
            ("layout.oci", false, "oci:layout.oci"),
        ] {
            let e = parse_transport(s);
            assert!(
                matches!(&e, Err(ReferenceError::LooksLikePath { archive: a, .. }) if *a == archive),
                "{s}: {e:?}"
            );
            let hint = e.err().and_then(|e| e.hint()).unwrap_or_default();
            assert!(hint.contains(&format!("`{suggests}`")), "{s}: {hint}");
            assert!(!hint.contains("insecure"), "{hint}");
        }
        for s in [
            "alpine",
            "registry.example.org:5000/a/b:1",
            "docker://app.tar",
            "localhost:5000/tar:1",
            "acme/app.tarball:1",
        ] {
            assert!(
                matches!(parse_transport(s), Ok(Transport::Registry(_))),
                "{s}"
            );
        }
        let typo = parse_transport("oci-arhive:/x.tar");
        assert!(
            matches!(&typo, Err(ReferenceError::UnsupportedTransport { prefix, .. }) if prefix == "oci-arhive"),
            "{typo:?}"
        );
    }

    #[test]
    fn transport_display_round_trips() {
        let inputs = [
            "scratch".to_string(),
            "alpine".to_string(),
            format!("ghcr.io/o/r:1@{D}"),
            "docker-archive:/tmp/x.tar".to_string(),
            "docker-archive:/tmp/x.tar:myapp:1.0".to_string(),
            "docker-archive:rel/x.tar.gz:localhost:5000/a".to_string(),
            "oci:./layout".to_string(),
            "oci:./layout:v1:x".to_string(),
            "oci-archive:/x.tar:1.0".to_string(),
        ];
        for s in inputs {
            let t = match parse_transport(&s) {
                Ok(t) => t,
                Err(e) => panic!("{s}: {e}"),
            };
            let shown = t.to_string();
            assert_eq!(parse_transport(&shown), Ok(t), "{s} shown as {shown}");
        }
        assert_eq!(
            parse_transport("docker-archive:/tmp/x.tar:myapp:1.0").map(|t| t.to_string()),
            Ok("docker-archive:/tmp/x.tar:docker.io/library/myapp:1.0".to_string())
        );
        assert_eq!(
            parse_transport("alpine").map(|t| t.to_string()),
            Ok("docker://docker.io/library/alpine:latest".to_string())
        );
    }

    /// Found by `cargo fuzz run reference`: a 249-character name parsed, but
    /// its normalised form `docker.io/library/…` is 267 characters, so the
    /// reference stowage printed (and would push to) did not parse again.
    #[test]
    fn fuzz_regression_normalised_name_over_the_limit() {
        // fuzz/regressions/reference/normalised-name-too-long
        let input = concat!(
            "786666666666666666666666666666666666666666666666666666666666666666666666666666666666666666",
            "666666666666666633333333333333666666666666666666666666666666666666666666666666666666633333",
            "333333333333333333333333333333333333333333333333336666666666666666662"
        );
        assert_eq!(input.len(), 249);
        assert!(matches!(
            ImageRef::parse(input),
            Err(ReferenceError::NameTooLong { len: 267, .. })
        ));
        // Just under the limit once normalised is still fine, and prints back to itself.
        let fits = "a".repeat(NAME_MAX - "docker.io/library/".len());
        let parsed = ImageRef::parse(&fits).unwrap();
        assert_eq!(ImageRef::parse(&parsed.to_string()).unwrap(), parsed);
        assert!(ImageRef::parse(&format!("{fits}a")).is_err());
    }
}
