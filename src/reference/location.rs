//! Where an image lives, in the container tools' transport syntax: `docker://REF` (or a bare `REF`), `docker-archive:PATH[:REF]`, `oci:PATH[:TAG]`, `oci-archive:PATH[:TAG]`, `scratch`.

use std::fmt;
use std::path::PathBuf;

use super::ReferenceError;
use super::name::ImageRef;

/// Transports stowage speaks, as written in front of a location.
pub(super) const KNOWN_TRANSPORTS: &str = "docker://, docker-archive:, oci:, oci-archive:, scratch";
/// containers/image transports users may know from skopeo or podman that stowage does not speak.
const UNSUPPORTED_TRANSPORTS: &[&str] = &[
    "containers-storage",
    "dir",
    "docker-daemon",
    "ostree",
    "sif",
    "tarball",
];

/// Where an image is read from or written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
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
pub fn parse_location(s: &str) -> Result<Location, ReferenceError> {
    if s == "scratch" {
        return Ok(Location::Scratch);
    }
    if let Some(rest) = s.strip_prefix("docker://") {
        return ImageRef::parse(rest).map(Location::Registry);
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
        return Ok(Location::DockerArchive { path, reference });
    }
    if let Some(rest) = s.strip_prefix("oci-archive:") {
        let (path, tag) = split_oci(s, rest, "oci-archive")?;
        return Ok(Location::OciArchive { path, tag });
    }
    if let Some(rest) = s.strip_prefix("oci:") {
        let (path, tag) = split_oci(s, rest, "oci")?;
        return Ok(Location::Oci { path, tag });
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
        .map(Location::Registry)
}

impl fmt::Display for Location {
    /// Writes the form `parse_location` reads back (a PATH holding `:` cannot round-trip, as in containers/image).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Registry(r) => write!(f, "docker://{r}"),
            Location::DockerArchive { path, reference } => {
                write!(f, "docker-archive:{}", path.display())?;
                match reference {
                    Some(r) => write!(f, ":{r}"),
                    None => Ok(()),
                }
            }
            Location::Oci { path, tag } => write_oci(f, "oci", path, tag.as_deref()),
            Location::OciArchive { path, tag } => write_oci(f, "oci-archive", path, tag.as_deref()),
            Location::Scratch => f.write_str("scratch"),
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
