//! The use cases, one per file: each opens what it needs once, does one job, and returns an outcome for `cli` to print.
//!
//! Not for parsing arguments or printing: a command takes typed input and
//! returns a typed outcome (and, for exports, what happened to the export
//! record), so the same use case can be driven by the CLI or by a test.

pub mod build;
pub mod cache;
pub mod exports;
pub mod init;
pub mod inspect;
pub mod login;
pub mod record;
pub mod run_command;
pub mod sign;
mod start_check;
pub mod transfer;

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::digest::Digest;
use crate::error::Error;
use crate::exports::{Destination, DestinationKind, Exports, ExportsError, NewExport};
use crate::reference::{ImageRef, Location};
use crate::registry::{Registry, RegistryError, RegistryOptions};
use crate::store::Store;
use crate::transport::{Access, OpenRegistry};

/// Where a command keeps what outlives it. `cli` resolves both from the
/// environment; a test passes temporary folders, so a command runs in-process
/// without touching the user's store or journal.
#[derive(Debug, Clone)]
pub struct SessionPaths {
    /// The blob store's root folder.
    pub store: PathBuf,
    /// The folder that holds the export journal.
    pub journal: PathBuf,
}

/// The store, the journal and the registry client of one command: the store
/// and the client are opened on first use and then shared by every step.
pub struct Session {
    options: RegistryOptions,
    paths: SessionPaths,
    store: OnceLock<Store>,
    registry: OnceLock<Registry>,
}

impl Session {
    /// A session whose registry client will use `options`, with its store and journal at `paths`; nothing is opened yet.
    pub fn new(options: RegistryOptions, paths: SessionPaths) -> Session {
        Session {
            options,
            paths,
            store: OnceLock::new(),
            registry: OnceLock::new(),
        }
    }

    /// The export journal, opened (creating it if needed) for each use (I/O):
    /// SQLite's locks, not a long-held connection, let two commands record at once.
    pub fn journal(&self) -> Result<Exports, ExportsError> {
        Exports::open(&self.paths.journal)
    }

    /// The store, opened the first time (I/O), and the registry client, opened on its first request.
    pub fn access(&self) -> Result<Access<'_>, Error> {
        let store = match self.store.get() {
            Some(store) => store,
            None => {
                let opened = Store::open(&self.paths.store)?;
                self.store.get_or_init(|| opened)
            }
        };
        Ok(Access {
            store,
            registries: self,
        })
    }

    /// This session, with plain HTTP also allowed to `hosts` (nothing is opened yet).
    pub fn also_insecure(&self, hosts: impl IntoIterator<Item = String>) -> Session {
        let mut options = self.options.clone();
        options.insecure.extend(hosts);
        Session::new(options, self.paths.clone())
    }

    /// The registry client alone (I/O: none until a request is sent).
    pub fn registry(&self) -> Result<&Registry, Error> {
        Ok(self.open_registry()?)
    }
}

impl OpenRegistry for Session {
    fn open_registry(&self) -> Result<&Registry, RegistryError> {
        if let Some(registry) = self.registry.get() {
            return Ok(registry);
        }
        let made = Registry::new(self.options.clone())?;
        Ok(self.registry.get_or_init(|| made))
    }
}

/// What happened to a command's export record.
#[derive(Debug)]
pub enum Recorded {
    /// The command leaves no record (a dry run, a read-only command).
    Nothing,
    /// Kept under this id.
    Kept(i64),
    /// It could not be written; the export itself stands.
    NotKept(ExportsError),
}

impl Recorded {
    /// The id of the record kept.
    pub fn id(&self) -> Option<i64> {
        match self {
            Recorded::Kept(id) => Some(*id),
            Recorded::Nothing | Recorded::NotKept(_) => None,
        }
    }
}

/// A command's result together with what happened to its export record.
#[derive(Debug)]
pub struct Reported<T> {
    pub result: Result<T, Error>,
    pub record: Recorded,
}

/// Adds the export record (I/O); a record that cannot be written never fails the export.
///
/// Each registry destination notes whether this session reached it over
/// plain HTTP, so deleting the export later needs no `--insecure-registry`.
fn keep_record(session: &Session, new: &NewExport) -> Recorded {
    let mut new = new.clone();
    if let Some(registry) = session.registry.get() {
        for destination in &mut new.destinations {
            destination.plain_http = destination.kind == DestinationKind::Registry
                && registry_of(destination)
                    .is_some_and(|host| registry.reached_over_plain_http(&host));
        }
    }
    match session
        .journal()
        .and_then(|mut exports| exports.record(&new))
    {
        Ok(id) => Recorded::Kept(id),
        Err(e) => Recorded::NotKept(e),
    }
}

/// Records a failed export, unless it failed on its request: a usage or spec
/// error (exit 2) that reached no destination exported nothing, and a record
/// of every typo would bury the failures that matter.
fn keep_failure_record(session: &Session, new: &NewExport, error: &Error) -> Recorded {
    if error.exit_code() == 2 && error.partial_write().is_none() {
        return Recorded::Nothing;
    }
    keep_record(session, new)
}

/// The registry a recorded registry destination went to, when its reference still parses.
fn registry_of(destination: &Destination) -> Option<String> {
    destination.registry_ref().ok().map(|r| r.registry)
}

/// What a local destination without a tag or name of its own is written under.
pub struct SinkDefaults<'a> {
    /// The tag of an `oci:` or `oci-archive:` destination.
    pub tag: &'a str,
    /// The name of a `docker-archive:` destination.
    pub reference: Option<&'a ImageRef>,
}

/// The line a command prints on stdout for the image it wrote: the first
/// registry destination as `REPO@sha256:…`; with only local outputs, the
/// first one as given on the command line, with the tag or name it was
/// written under (`oci:out:1@sha256:…`, `docker-archive:app.tar:REF@sha256:…`),
/// so the line never names a registry nothing was pushed to. Everything
/// before the last `@` is a source `stowage copy` and `push` read.
pub fn reference_line(
    destinations: &[Location],
    digest: &Digest,
    defaults: &SinkDefaults<'_>,
) -> String {
    let registry = destinations.iter().find_map(|d| match d {
        Location::Registry(reference) => Some(reference),
        _ => None,
    });
    if let Some(reference) = registry {
        return reference.with_digest(digest.as_str());
    }
    let written = destinations.iter().find_map(|d| match d {
        Location::Oci { path, tag } => Some(Location::Oci {
            path: path.clone(),
            tag: Some(tag.clone().unwrap_or_else(|| defaults.tag.to_string())),
        }),
        Location::OciArchive { path, tag } => Some(Location::OciArchive {
            path: path.clone(),
            tag: Some(tag.clone().unwrap_or_else(|| defaults.tag.to_string())),
        }),
        Location::DockerArchive { path, reference } => Some(Location::DockerArchive {
            path: path.clone(),
            reference: reference.clone().or_else(|| defaults.reference.cloned()),
        }),
        Location::Registry(_) | Location::Scratch => None,
    });
    match written {
        Some(written) => format!("{written}@{digest}"),
        None => digest.to_string(),
    }
}

/// `value` as indented JSON, for `--json` output (serde writes it; the CLI only prints it).
///
/// Keys come out sorted, whatever order a type declares its fields in
/// (through `serde_json::Value`, whose maps are sorted), so the output of a
/// version is the output of the next and diffs of it show only changes.
pub fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .and_then(|sorted| serde_json::to_string_pretty(&sorted))
        .unwrap_or_default()
}

/// `SOURCE_DATE_EPOCH`, when set: the time every reproducible output carries.
pub fn source_date_epoch() -> Result<Option<u64>, Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().parse().map_err(|_| {
            Error::usage(
                format!("SOURCE_DATE_EPOCH=`{text}` is not a whole number of seconds"),
                "set it to seconds since 1970, e.g. $(git log -1 --format=%ct), or unset it",
            )
        })?)),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::{SinkDefaults, reference_line};
    use crate::digest::Digest;
    use crate::reference::{ImageRef, Location, parse_location};

    fn line(destinations: &[&str], defaults: &SinkDefaults<'_>) -> String {
        let destinations: Vec<Location> = destinations
            .iter()
            .map(|d| parse_location(d).unwrap())
            .collect();
        reference_line(&destinations, &Digest::of(b"image"), defaults)
    }

    #[test]
    fn the_printed_reference_names_where_the_image_was_written() {
        let digest = Digest::of(b"image");
        let named = ImageRef::parse("registry.example.org/nw/flask:2").unwrap();
        let spec_image = SinkDefaults {
            tag: "2",
            reference: Some(&named),
        };
        let unnamed = SinkDefaults {
            tag: "latest",
            reference: None,
        };
        assert_eq!(
            line(&["oci:out", "127.0.0.1:5000/a/b:1"], &spec_image),
            format!("127.0.0.1:5000/a/b@{digest}"),
            "a registry destination is printed whatever its place"
        );
        assert_eq!(
            line(&["oci:out:1", "docker-archive:x.tar"], &spec_image),
            format!("oci:out:1@{digest}")
        );
        assert_eq!(
            line(&["oci:out"], &spec_image),
            format!("oci:out:2@{digest}"),
            "the tag the layout got"
        );
        assert_eq!(
            line(&["oci-archive:o.tar"], &unnamed),
            format!("oci-archive:o.tar:latest@{digest}")
        );
        assert_eq!(
            line(&["docker-archive:x.tar.gz"], &spec_image),
            format!("docker-archive:x.tar.gz:registry.example.org/nw/flask:2@{digest}")
        );
        assert_eq!(
            line(&["docker-archive:x.tar"], &unnamed),
            format!("docker-archive:x.tar@{digest}")
        );
        assert_eq!(line(&[], &unnamed), digest.to_string());
    }
}
