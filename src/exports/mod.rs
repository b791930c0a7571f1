//! The journal of exports: every build, push, copy and archive, kept in SQLite under the state folder or in a PostgreSQL database many workers share.
//!
//! Only the journal: turning outcomes into records, the `docker run` line and
//! deleting what an export left live in `commands`.
//!
//! Why SQLite: two stowage processes (a CI matrix, a user with two
//! terminals) record at the same time, and a record must never be lost or
//! half-written. WAL mode lets readers go on while one writer commits, the
//! busy timeout makes a second writer wait its turn instead of failing, and
//! each record is one short `BEGIN IMMEDIATE` transaction. Records are only
//! ever added or marked deleted; nothing is erased, but for the running
//! record of an export that turned out to be a usage error.
//!
//! Why PostgreSQL too: a platform's workers need one journal (see
//! docs/journal.md); the same statements run on both (`db.rs`).

mod db;
mod location;
mod schema;
mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::reference::{ImageRef, Location, ReferenceError};
use db::{Db, DbError, Value};
pub use location::{JournalLocation, LocationError, PostgresUrl, redact};
pub use worker::{LeaseKeeper, Worker, lease_length, this_host};

/// The database file in the state folder.
pub const DB_FILE: &str = "exports.sqlite3";

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting to a PostgreSQL journal may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What went wrong with the export records.
#[derive(Debug, thiserror::Error)]
pub enum ExportsError {
    #[error("cannot create the state folder {path}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the export journal {journal} cannot be read or written")]
    Database {
        /// The journal, its password hidden.
        journal: String,
        #[source]
        source: DbError,
    },
    #[error("the export record {id} in {journal} is damaged: {problem}")]
    Damaged {
        journal: String,
        id: i64,
        problem: String,
    },
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("the export journal {journal} is at schema version {version}, newer than this stowage knows ({known})", known = schema::POSTGRES_VERSION)]
    NewerSchema { journal: String, version: i64 },
    #[error("{destination} is reserved by export {} (running on {}), so this export did not push there", owner.id, owner.worker.as_ref().map_or_else(|| "an unknown worker".to_string(), |w| format!("{} as pid {}", w.host, w.pid)))]
    Reserved {
        destination: String,
        owner: Box<ExportRecord>,
    },
    #[error("there is no export {id}")]
    NoSuchExport { id: i64 },
    #[error("export {id} is already deleted")]
    AlreadyDeleted { id: i64 },
    #[error("export {id} was not deleted everywhere:{report}")]
    DeleteIncomplete {
        id: i64,
        report: String,
        hints: Vec<String>,
    },
    #[error("export {id} is still running{}", worker.as_ref().map(|w| format!(" on {w}")).unwrap_or_default())]
    StillRunning { id: i64, worker: Option<String> },
    #[error("export {id} has no run command: {why}")]
    NoRunCommand { id: i64, why: String, failed: bool },
}

impl ExportsError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ExportsError::Folder { .. } => Some(
                "set STOWAGE_STATE_DIR to a folder you can write to".into(),
            ),
            ExportsError::Database { journal, .. } if journal.starts_with("sqlite:") => Some(format!(
                "check that {} is writable; another stowage waits at most {}s for its turn",
                journal.trim_start_matches("sqlite:"),
                BUSY_TIMEOUT.as_secs()
            )),
            ExportsError::Database { .. } => Some(
                "check the server, the database and the credentials (in the URL, PGPASSWORD or ~/.pgpass)".into(),
            ),
            ExportsError::Location(_) => Some(
                "give --journal (or STOWAGE_JOURNAL) as sqlite:PATH or postgresql://USER@HOST[:PORT]/DB".into(),
            ),
            ExportsError::NewerSchema { .. } => {
                Some("use the stowage version the other workers use, or a newer one".into())
            }
            ExportsError::Reserved { owner, .. } => Some(format!(
                "wait for export {} to end (`stowage exports list --status running`), or export to another tag",
                owner.id
            )),
            ExportsError::Damaged { .. } => {
                Some("the record was changed outside stowage; `stowage exports --json` shows it".into())
            }
            ExportsError::NoSuchExport { .. } => {
                Some("`stowage exports` lists the ids".into())
            }
            ExportsError::AlreadyDeleted { .. } => {
                Some("`stowage exports --status deleted` lists deleted exports".into())
            }
            ExportsError::DeleteIncomplete { hints, .. } => Some(hints.join("; ")),
            ExportsError::StillRunning { .. } => Some(
                "delete it once it has ended; an export whose worker died shows as interrupted and can be deleted".into(),
            ),
            ExportsError::NoRunCommand { failed: true, .. } => Some(
                "`stowage exports --status failed` shows why; export again once it is fixed".into(),
            ),
            ExportsError::NoRunCommand { .. } => Some(
                "load it first (`docker load -i FILE`) or push it to a registry, then `stowage run-command REF`".into(),
            ),
        }
    }
}

/// What an export did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Build,
    Push,
    Copy,
    Archive,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Build => "build",
            Kind::Push => "push",
            Kind::Copy => "copy",
            Kind::Archive => "archive",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "build" => Kind::Build,
            "push" => Kind::Push,
            "copy" => Kind::Copy,
            "archive" => Kind::Archive,
            _ => return None,
        })
    }
}

/// How an export ended, or that it was deleted since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Still going: its worker renews its lease.
    Running,
    Ok,
    Failed,
    /// A signal stopped it (SIGINT, SIGTERM), or its worker died while it ran; its destinations say which it reached.
    Interrupted,
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
            Status::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "running" => Status::Running,
            "ok" => Status::Ok,
            "failed" => Status::Failed,
            "interrupted" => Status::Interrupted,
            "deleted" => Status::Deleted,
            _ => return None,
        })
    }
}

/// What an export left at one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationStatus {
    /// The image is in the registry, put there by this export.
    Pushed,
    /// The archive file or layout folder holds the image, written by this export.
    Written,
    /// This export did not put the image there (its sink failed, or the export stopped before it).
    Failed,
    /// `exports delete` removed what this export put there.
    Deleted,
}

impl DestinationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationStatus::Pushed => "pushed",
            DestinationStatus::Written => "written",
            DestinationStatus::Failed => "failed",
            DestinationStatus::Deleted => "deleted",
        }
    }

    /// The status of a destination the export reached: pushed for a registry, else written.
    pub fn reached(kind: &DestinationKind) -> DestinationStatus {
        if *kind == DestinationKind::Registry {
            DestinationStatus::Pushed
        } else {
            DestinationStatus::Written
        }
    }
}

/// What kind of place a destination is. Stored and printed (`--json`) as
/// the word of its transport: `registry`, `docker-archive`, `oci-archive`,
/// `oci`, `scratch`, or `unknown` for a destination a failed build could
/// not parse; a word this stowage does not know (a record from another
/// version) reads as `Other` and is written back as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum DestinationKind {
    Registry,
    DockerArchive,
    OciArchive,
    Oci,
    Scratch,
    #[default]
    Unknown,
    Other(String),
}

impl DestinationKind {
    pub fn as_str(&self) -> &str {
        match self {
            DestinationKind::Registry => "registry",
            DestinationKind::DockerArchive => "docker-archive",
            DestinationKind::OciArchive => "oci-archive",
            DestinationKind::Oci => "oci",
            DestinationKind::Scratch => "scratch",
            DestinationKind::Unknown => "unknown",
            DestinationKind::Other(word) => word,
        }
    }

    /// The kind of a destination written as `transport`.
    pub fn of(transport: &Location) -> DestinationKind {
        match transport {
            Location::Registry(_) => DestinationKind::Registry,
            Location::DockerArchive { .. } => DestinationKind::DockerArchive,
            Location::OciArchive { .. } => DestinationKind::OciArchive,
            Location::Oci { .. } => DestinationKind::Oci,
            Location::Scratch => DestinationKind::Scratch,
        }
    }
}

impl From<String> for DestinationKind {
    fn from(word: String) -> DestinationKind {
        match word.as_str() {
            "registry" => DestinationKind::Registry,
            "docker-archive" => DestinationKind::DockerArchive,
            "oci-archive" => DestinationKind::OciArchive,
            "oci" => DestinationKind::Oci,
            "scratch" => DestinationKind::Scratch,
            "unknown" => DestinationKind::Unknown,
            _ => DestinationKind::Other(word),
        }
    }
}

impl From<DestinationKind> for String {
    fn from(kind: DestinationKind) -> String {
        match kind {
            DestinationKind::Other(word) => word,
            known => known.as_str().to_string(),
        }
    }
}

impl std::fmt::Display for DestinationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an export went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// In transport syntax: `docker://REF`, `docker-archive:/abs/app.tar.gz`, `oci:/abs/dir`…
    pub destination: String,
    pub kind: DestinationKind,
    /// The absolute path of a local destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The size in bytes of an archive file as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The registry was reached over plain HTTP (`--insecure-registry`, or
    /// a loopback host), so `exports delete` may reach it so again without
    /// the flag. Absent from records written before it existed: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plain_http: bool,
    /// What the export left there. Records written before it existed have
    /// none stored; reading them fills it in from the record's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DestinationStatus>,
}

impl Destination {
    /// The reference a registry destination was pushed to, read back from its recorded `docker://REF`.
    pub fn registry_ref(&self) -> Result<ImageRef, ReferenceError> {
        let text = self
            .destination
            .strip_prefix("docker://")
            .unwrap_or(&self.destination);
        ImageRef::parse(text)
    }

    /// True when this export put the image there and it was not deleted since.
    pub fn holds_image(&self) -> bool {
        matches!(
            self.status,
            Some(DestinationStatus::Pushed | DestinationStatus::Written)
        )
    }
}

impl Destination {
    /// Describes `transport`; local paths are made absolute and archive files measured (I/O: stats).
    pub fn of(transport: &Location) -> Destination {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let kind = DestinationKind::of(transport);
        let local = |path: &Path, shown: Location, measure: bool| {
            let path = absolute(path);
            Destination {
                destination: shown.to_string(),
                kind: kind.clone(),
                size: measure
                    .then(|| std::fs::metadata(&path).ok().map(|m| m.len()))
                    .flatten(),
                path: Some(path.display().to_string()),
                plain_http: false,
                status: None,
            }
        };
        match transport {
            Location::Registry(reference) => Destination {
                destination: format!("docker://{reference}"),
                kind,
                ..Destination::default()
            },
            Location::DockerArchive { path, reference } => local(
                path,
                Location::DockerArchive {
                    path: absolute(path),
                    reference: reference.clone(),
                },
                true,
            ),
            Location::OciArchive { path, tag } => local(
                path,
                Location::OciArchive {
                    path: absolute(path),
                    tag: tag.clone(),
                },
                true,
            ),
            Location::Oci { path, tag } => local(
                path,
                Location::Oci {
                    path: absolute(path),
                    tag: tag.clone(),
                },
                false,
            ),
            Location::Scratch => Destination {
                destination: "scratch".into(),
                kind,
                ..Destination::default()
            },
        }
    }
}

/// Something the user should know about an export that did not stop it.
///
/// Stored, and printed by `stowage exports --json`, as a string for the
/// text notes (`secret scan: …`, `attestations: …`, any other line) and as
/// an object for a signature: `{"signed": {"image": "REPO@sha256:…",
/// "tag": "REPO:sha256-<hex>.sig"}}`. Records written before the object
/// hold `signed: IMAGE at TAG`, which reads as `Signed` too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredNote", into = "StoredNote")]
pub enum Note {
    /// A cosign signature of `image` (`REPO@DIGEST`) written at `tag` (`REPO:sha256-<hex>.sig`).
    Signed {
        image: String,
        tag: String,
    },
    /// A secret-scan finding let through because it is in a published package file.
    SecretScan(String),
    /// The attestations attached: their predicate types and manifests.
    Attestations(String),
    /// The export policy that admitted or refused the export: its file and digest.
    Policy {
        path: String,
        digest: String,
    },
    /// A rule of the export policy the export broke (it was refused).
    PolicyViolation(String),
    /// A warning of the export policy (`unknown = "warn"`); it stopped nothing.
    PolicyWarning(String),
    Text(String),
}

const SIGNED: &str = "signed: ";
const SECRET_SCAN: &str = "secret scan: ";
const ATTESTATIONS: &str = "attestations: ";
const POLICY: &str = "policy: ";
const POLICY_VIOLATION: &str = "policy violation: ";
const POLICY_WARNING: &str = "policy warning: ";

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::Signed { image, tag } => write!(f, "{SIGNED}{image} at {tag}"),
            Note::SecretScan(text) => write!(f, "{SECRET_SCAN}{text}"),
            Note::Attestations(text) => write!(f, "{ATTESTATIONS}{text}"),
            Note::Policy { path, digest } => write!(f, "{POLICY}{digest} from {path}"),
            Note::PolicyViolation(text) => write!(f, "{POLICY_VIOLATION}{text}"),
            Note::PolicyWarning(text) => write!(f, "{POLICY_WARNING}{text}"),
            Note::Text(text) => f.write_str(text),
        }
    }
}

/// A note as the journal holds it: a line, or a signature object.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredNote {
    Line(String),
    Signed { signed: StoredSignature },
}

#[derive(Serialize, Deserialize)]
struct StoredSignature {
    image: String,
    tag: String,
}

impl From<StoredNote> for Note {
    fn from(stored: StoredNote) -> Note {
        let line = match stored {
            StoredNote::Signed {
                signed: StoredSignature { image, tag },
            } => return Note::Signed { image, tag },
            StoredNote::Line(line) => line,
        };
        // Image references and tags hold no spaces, so ` at ` splits an old line exactly.
        if let Some((image, tag)) = line
            .strip_prefix(SIGNED)
            .and_then(|rest| rest.split_once(" at "))
        {
            return Note::Signed {
                image: image.to_string(),
                tag: tag.to_string(),
            };
        }
        if let Some(text) = line.strip_prefix(SECRET_SCAN) {
            return Note::SecretScan(text.to_string());
        }
        if let Some(text) = line.strip_prefix(ATTESTATIONS) {
            return Note::Attestations(text.to_string());
        }
        // A digest holds no spaces, so the first ` from ` ends it.
        if let Some((digest, path)) = line
            .strip_prefix(POLICY)
            .and_then(|rest| rest.split_once(" from "))
        {
            return Note::Policy {
                path: path.to_string(),
                digest: digest.to_string(),
            };
        }
        if let Some(text) = line.strip_prefix(POLICY_VIOLATION) {
            return Note::PolicyViolation(text.to_string());
        }
        if let Some(text) = line.strip_prefix(POLICY_WARNING) {
            return Note::PolicyWarning(text.to_string());
        }
        Note::Text(line)
    }
}

impl From<Note> for StoredNote {
    fn from(note: Note) -> StoredNote {
        match note {
            Note::Signed { image, tag } => StoredNote::Signed {
                signed: StoredSignature { image, tag },
            },
            text => StoredNote::Line(text.to_string()),
        }
    }
}

/// A record about to be written.
#[derive(Debug, Clone)]
pub struct NewExport {
    pub kind: Kind,
    /// The spec file (absolute), for builds.
    pub spec: Option<String>,
    /// What was read: the base and the app's folders and files, or the copied image.
    pub sources: Vec<String>,
    pub destinations: Vec<Destination>,
    pub digest: Option<String>,
    /// Bytes: the image as a registry stores it (manifest, config and layers), or the archive file.
    pub size: Option<u64>,
    /// The error with its causes, for a failed export; None when it went through.
    pub error: Option<String>,
    /// A signal stopped it: recorded as `interrupted` rather than `failed`.
    pub interrupted: bool,
    pub run_command: Option<String>,
    /// `[secrets] names` of the spec, for `-e NAME=…` placeholders.
    pub secret_names: Vec<String>,
    /// What the user should know about the export that did not stop it
    /// (secret-scan findings in published package files, attestations, signatures).
    pub notes: Vec<Note>,
}

/// A stored record.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRecord {
    pub id: i64,
    /// When it was recorded (RFC 3339, UTC).
    pub time: String,
    pub kind: Kind,
    pub spec: Option<String>,
    pub sources: Vec<String>,
    pub destinations: Vec<Destination>,
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub status: Status,
    pub error: Option<String>,
    pub run_command: Option<String>,
    pub secret_names: Vec<String>,
    pub deleted_time: Option<String>,
    pub notes: Vec<Note>,
    /// Where it ran, for an export recorded while it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<Worker>,
}

/// The export journal, open: a SQLite file or a PostgreSQL database.
pub struct Exports {
    /// Borrowed for each statement, so reads need only `&self`.
    db: std::cell::RefCell<Db>,
    location: JournalLocation,
    /// This process's worker name, against which running records are judged.
    here: String,
}

/// Which records `list` returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub status: Option<Status>,
    /// Only the newest this many (still printed oldest first).
    pub limit: Option<u64>,
}

/// What `migrate_into` copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Records read from the source journal.
    pub read: u64,
    /// Of those, records the target did not hold yet.
    pub added: u64,
}

impl Exports {
    /// Opens (creating if needed) the default SQLite journal in the state folder `dir` (I/O).
    pub fn open(dir: &Path) -> Result<Exports, ExportsError> {
        Exports::open_location(&JournalLocation::default_in(dir))
    }

    /// Opens (creating or upgrading its tables if needed) the journal at `location` (I/O).
    pub fn open_location(location: &JournalLocation) -> Result<Exports, ExportsError> {
        let db = match location {
            JournalLocation::Sqlite(path) => open_sqlite(path)?,
            JournalLocation::Postgres(url) => open_postgres(location, url)?,
        };
        Ok(Exports {
            db: std::cell::RefCell::new(db),
            location: location.clone(),
            here: worker::this_host(),
        })
    }

    /// Where this journal is (its password hidden when shown).
    pub fn location(&self) -> &JournalLocation {
        &self.location
    }

    fn db_err(&self, source: DbError) -> ExportsError {
        ExportsError::Database {
            journal: self.location.to_string(),
            source,
        }
    }

    /// Adds a finished export's record (I/O) and returns its id.
    pub fn record(&mut self, new: &NewExport) -> Result<i64, ExportsError> {
        let status = final_status(new);
        let mut params = record_values(new, status);
        params.insert(0, Value::from(now()));
        let id = self
            .db
            .borrow_mut()
            .query_int(
                "INSERT INTO exports (time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, notes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
                &params,
            )
            .map_err(|e| self.db_err(e))?;
        id.ok_or_else(|| self.db_err(DbError::Postgres("the insert returned no id".into())))
    }

    /// Records `new` as `running` on this worker and reserves its registry
    /// destinations, in one transaction (I/O). A destination another live
    /// export holds refuses the whole export; one held by a dead export is
    /// taken over.
    pub fn begin(&mut self, new: &NewExport, lease: Duration) -> Result<i64, ExportsError> {
        let here = self.here.clone();
        let keys = reservation_keys(&new.destinations);
        let mut conflict = None;
        let outcome = self.db.borrow_mut().transaction(|db| {
            let mut params = record_values(new, Status::Running);
            params.insert(0, Value::from(now()));
            params.extend([
                Value::from(here.as_str()),
                Value::from(i64::from(std::process::id())),
                Value::from(worker::lease_until(lease)),
            ]);
            let id = db
                .query_int(
                    "INSERT INTO exports (time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, notes, host, pid, started, lease_until)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?1, ?15) RETURNING id",
                    &params,
                )?
                .ok_or_else(|| DbError::Postgres("the insert returned no id".into()))?;
            for key in &keys {
                if let Some(owner) = reserve(db, key, id, &here)? {
                    conflict = Some((key.clone(), owner));
                    return Err(DbError::Conflict);
                }
            }
            Ok(id)
        });
        match (outcome, conflict) {
            (Ok(id), _) => Ok(id),
            (Err(DbError::Conflict), Some((destination, owner))) => Err(ExportsError::Reserved {
                destination,
                owner: Box::new(owner),
            }),
            (Err(e), _) => Err(self.db_err(e)),
        }
    }

    /// Stores how far running export `id` got: its image and each destination's status (I/O).
    pub fn progress(
        &mut self,
        id: i64,
        digest: Option<&str>,
        destinations: &[Destination],
    ) -> Result<(), ExportsError> {
        self.db
            .borrow_mut()
            .execute(
                "UPDATE exports SET digest = ?2, destinations = ?3 WHERE id = ?1 AND status = 'running'",
                &[id.into(), digest.into(), to_json(&destinations).into()],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Extends running export `id`'s lease to `until` (seconds since 1970) (I/O).
    pub fn renew(&mut self, id: i64, until: i64) -> Result<(), ExportsError> {
        self.db
            .borrow_mut()
            .execute(
                "UPDATE exports SET lease_until = ?2 WHERE id = ?1 AND status = 'running'",
                &[id.into(), until.into()],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Ends running export `id` with what `new` says, and releases its reservations (I/O).
    pub fn finish(&mut self, id: i64, new: &NewExport) -> Result<i64, ExportsError> {
        let mut params = record_values(new, final_status(new));
        params.insert(0, Value::from(id));
        self.db
            .borrow_mut()
            .transaction(|db| {
                db.execute(
                    "UPDATE exports SET kind = ?2, spec = ?3, sources = ?4, destinations = ?5, digest = ?6, size = ?7,
                     status = ?8, error = ?9, run_command = ?10, secret_names = ?11, notes = ?12, lease_until = NULL
                     WHERE id = ?1",
                    &params,
                )?;
                db.execute(
                    "DELETE FROM reservations WHERE export_id = ?1",
                    &[id.into()],
                )
            })
            .map_err(|e| self.db_err(e))?;
        Ok(id)
    }

    /// Removes running export `id` and its reservations (I/O): it turned out
    /// to be a usage error that exported nothing, which leaves no record.
    pub fn discard(&mut self, id: i64) -> Result<(), ExportsError> {
        self.db
            .borrow_mut()
            .transaction(|db| {
                db.execute(
                    "DELETE FROM reservations WHERE export_id = ?1",
                    &[id.into()],
                )?;
                db.execute(
                    "DELETE FROM exports WHERE id = ?1 AND status = 'running'",
                    &[id.into()],
                )
            })
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// All records, oldest first, or those with `status` (I/O).
    pub fn list(&self, status: Option<Status>) -> Result<Vec<ExportRecord>, ExportsError> {
        self.list_filtered(Filter {
            status,
            limit: None,
        })
    }

    /// The records `filter` picks, oldest first (I/O). A running record
    /// whose worker is gone reads as `interrupted`, so those two statuses
    /// are settled here rather than in the query.
    pub fn list_filtered(&self, filter: Filter) -> Result<Vec<ExportRecord>, ExportsError> {
        let stored: &[&str] = match filter.status {
            None => &[],
            Some(Status::Running) => &["running"],
            Some(Status::Interrupted) => &["running", "interrupted"],
            Some(Status::Ok) => &["ok"],
            Some(Status::Failed) => &["failed"],
            Some(Status::Deleted) => &["deleted"],
        };
        let settled = matches!(filter.status, Some(Status::Running | Status::Interrupted));
        let mut sql = format!("SELECT {} FROM exports", schema::COLUMNS);
        let mut params: Vec<Value> = Vec::new();
        if !stored.is_empty() {
            let marks: Vec<String> = (1..=stored.len()).map(|i| format!("?{i}")).collect();
            sql.push_str(&format!(" WHERE status IN ({})", marks.join(", ")));
            params.extend(stored.iter().map(|s| Value::from(*s)));
        }
        sql.push_str(" ORDER BY id DESC");
        if let (Some(limit), false) = (filter.limit, settled) {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let rows = self
            .db
            .borrow_mut()
            .query(&sql, &params)
            .map_err(|e| self.db_err(e))?;
        let mut records = Vec::with_capacity(rows.len());
        for cells in rows {
            let record = self.read(cells)?;
            if filter.status.is_none_or(|s| s == record.status) {
                records.push(record);
            }
            if filter.limit.is_some_and(|l| records.len() as u64 >= l) {
                break;
            }
        }
        records.reverse();
        Ok(records)
    }

    /// The record `id` (I/O).
    pub fn get(&self, id: i64) -> Result<ExportRecord, ExportsError> {
        let sql = format!("SELECT {} FROM exports WHERE id = ?1", schema::COLUMNS);
        let rows = self
            .db
            .borrow_mut()
            .query(&sql, &[id.into()])
            .map_err(|e| self.db_err(e))?;
        match rows.into_iter().next() {
            Some(cells) => self.read(cells),
            None => Err(ExportsError::NoSuchExport { id }),
        }
    }

    /// The live export (ok, or running on a live worker; never deleted) that
    /// pushed the registry tag `reference`, newest first (I/O).
    pub fn exported_tag_owner(
        &self,
        reference: &str,
    ) -> Result<Option<ExportRecord>, ExportsError> {
        let text = reference.strip_prefix("docker://").unwrap_or(reference);
        let wanted = match ImageRef::parse(text) {
            Ok(parsed) => format!("docker://{parsed}"),
            Err(_) => format!("docker://{text}"),
        };
        let pattern = format!("%{}%", to_json(&wanted));
        let sql = format!(
            "SELECT {} FROM exports WHERE status IN ('ok', 'running') AND destinations LIKE ?1 ORDER BY id DESC",
            schema::COLUMNS
        );
        let rows = self
            .db
            .borrow_mut()
            .query(&sql, &[pattern.into()])
            .map_err(|e| self.db_err(e))?;
        for cells in rows {
            let record = self.read(cells)?;
            let pushed = record.destinations.iter().any(|d| {
                d.destination == wanted
                    && matches!(d.status, None | Some(DestinationStatus::Pushed))
            });
            if pushed && matches!(record.status, Status::Ok | Status::Running) {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// Stores what each destination of `id` now holds (after a partial delete) (I/O).
    pub fn set_destinations(
        &mut self,
        id: i64,
        destinations: &[Destination],
    ) -> Result<(), ExportsError> {
        self.db
            .borrow_mut()
            .execute(
                "UPDATE exports SET destinations = ?2 WHERE id = ?1",
                &[id.into(), to_json(&destinations).into()],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Marks `id` deleted, keeping everything else it says, and releases its reservations (I/O).
    pub fn mark_deleted(&mut self, id: i64) -> Result<(), ExportsError> {
        let changed = self
            .db
            .borrow_mut()
            .transaction(|db| {
                db.execute("DELETE FROM reservations WHERE export_id = ?1", &[id.into()])?;
                db.execute(
                    "UPDATE exports SET status = 'deleted', deleted_time = ?2, lease_until = NULL WHERE id = ?1 AND status != 'deleted'",
                    &[id.into(), now_with_millis().into()],
                )
            })
            .map_err(|e| self.db_err(e))?;
        if changed == 0 {
            return match self.get(id)?.status {
                Status::Deleted => Err(ExportsError::AlreadyDeleted { id }),
                _ => Err(ExportsError::NoSuchExport { id }),
            };
        }
        Ok(())
    }

    /// The secret names of the newest build of the image `digest`, for the run command of a later push (I/O).
    pub fn secret_names_for(&self, digest: &str) -> Result<Vec<String>, ExportsError> {
        let rows = self
            .db
            .borrow_mut()
            .query(
                "SELECT secret_names FROM exports WHERE digest = ?1 AND kind = 'build' ORDER BY id DESC LIMIT 1",
                &[digest.into()],
            )
            .map_err(|e| self.db_err(e))?;
        let text = rows
            .into_iter()
            .next()
            .and_then(|row| match row.into_iter().next() {
                Some(Value::Text(t)) => t,
                _ => None,
            });
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    }

    /// Copies every record of this journal into `target` (I/O), each once:
    /// a record copied before is updated, not added again (its origin,
    /// this journal and its id, is unique in the target).
    pub fn migrate_into(&mut self, target: &mut Exports) -> Result<Migrated, ExportsError> {
        let sql = format!("SELECT {} FROM exports ORDER BY id", schema::COLUMNS);
        let rows = self
            .db
            .borrow_mut()
            .query(&sql, &[])
            .map_err(|e| self.db_err(e))?;
        let source = self.location.to_string();
        let read = rows.len() as u64;
        let before = target.count()?;
        target
            .db
            .borrow_mut()
            .transaction(|db| {
                for cells in rows {
                    let row = Row::from_cells(cells);
                    let origin = format!("{source}#{}", row.id);
                    let mut params = row.values();
                    params.push(origin.into());
                    db.execute(
                        "INSERT INTO exports (time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, deleted_time, notes, host, pid, started, lease_until, origin)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
                         ON CONFLICT (origin) DO UPDATE SET destinations = excluded.destinations, status = excluded.status,
                             deleted_time = excluded.deleted_time, notes = excluded.notes, lease_until = excluded.lease_until",
                        &params,
                    )?;
                }
                Ok(())
            })
            .map_err(|e| target.db_err(e))?;
        let after = target.count()?;
        Ok(Migrated {
            read,
            added: after.saturating_sub(before),
        })
    }

    /// How many records the journal holds (I/O).
    pub fn count(&self) -> Result<u64, ExportsError> {
        let n = self
            .db
            .borrow_mut()
            .query_int("SELECT count(*) FROM exports", &[])
            .map_err(|e| self.db_err(e))?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// A stored row as its record, a dead worker's `running` read as `interrupted`.
    fn read(&self, cells: Vec<Value>) -> Result<ExportRecord, ExportsError> {
        Row::from_cells(cells).into_record(&self.location, &self.here)
    }
}

/// Opens a SQLite journal file, creating its folder and tables.
fn open_sqlite(path: &Path) -> Result<Db, ExportsError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ExportsError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let db_err = |source: rusqlite::Error| ExportsError::Database {
        journal: format!("sqlite:{}", path.display()),
        source: source.into(),
    };
    let conn = Connection::open(path).map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    // Switching to WAL takes a lock SQLite does not wait on through the
    // busy handler, so two first runs at once retry here.
    let mut attempt = 0;
    loop {
        match conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        {
            Ok(_) => break,
            Err(e) if is_busy(&e) && attempt < 100 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20 + 10 * attempt));
            }
            Err(e) => return Err(db_err(e)),
        }
    }
    // WAL with synchronous=NORMAL is durable across process crashes, which is what records need.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(db_err)?;
    let mut db = Db::Sqlite(conn);
    schema::prepare_sqlite(&mut db).map_err(|source| ExportsError::Database {
        journal: format!("sqlite:{}", path.display()),
        source,
    })?;
    Ok(db)
}

/// Connects to a PostgreSQL journal (TLS when the URL's `sslmode` asks for
/// it, verified against the system's roots) and creates or upgrades its tables.
fn open_postgres(location: &JournalLocation, url: &PostgresUrl) -> Result<Db, ExportsError> {
    let journal = location.to_string();
    let db_err = |source: DbError| ExportsError::Database {
        journal: journal.clone(),
        source,
    };
    let mut config = url.config().map_err(ExportsError::Location)?;
    config.connect_timeout(CONNECT_TIMEOUT);
    let client = match config.get_ssl_mode() {
        postgres::config::SslMode::Disable => config.connect(postgres::NoTls),
        _ => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = <rustls::ClientConfig as rustls_platform_verifier::ConfigVerifierExt>::with_platform_verifier()
                .map_err(|e| db_err(DbError::Postgres(format!("TLS set-up: {e}"))))?;
            config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        }
    }
    .map_err(|e| db_err(e.into()))?;
    let mut db = Db::Postgres {
        client: Box::new(client),
        prepared: std::collections::HashMap::new(),
    };
    match schema::prepare_postgres(&mut db).map_err(db_err)? {
        schema::Opened::Ready => Ok(db),
        schema::Opened::Newer(version) => Err(ExportsError::NewerSchema { journal, version }),
    }
}

/// The status a finished export is recorded with.
fn final_status(new: &NewExport) -> Status {
    match (new.interrupted, &new.error) {
        (true, _) => Status::Interrupted,
        (false, Some(_)) => Status::Failed,
        (false, None) => Status::Ok,
    }
}

/// `new`'s columns from `kind` to `notes`, in the order the statements name them (`?2`…`?12`).
fn record_values(new: &NewExport, status: Status) -> Vec<Value> {
    vec![
        new.kind.as_str().into(),
        new.spec.clone().into(),
        to_json(&new.sources).into(),
        to_json(&new.destinations).into(),
        new.digest.clone().into(),
        new.size.map(|s| s as i64).into(),
        status.as_str().into(),
        new.error.clone().into(),
        new.run_command.clone().into(),
        to_json(&new.secret_names).into(),
        to_json(&new.notes).into(),
    ]
}

/// What a reservation holds: each registry destination, as recorded.
fn reservation_keys(destinations: &[Destination]) -> Vec<String> {
    let mut keys: Vec<String> = destinations
        .iter()
        .filter(|d| d.kind == DestinationKind::Registry)
        .map(|d| d.destination.clone())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Takes the reservation of `key` for export `id`: None when taken, else
/// the live export that holds it. A holder whose worker is dead, or whose
/// export ended without releasing it, loses it.
fn reserve(db: &mut Db, key: &str, id: i64, here: &str) -> Result<Option<ExportRecord>, DbError> {
    for _ in 0..3 {
        let taken = db.execute(
            "INSERT INTO reservations (destination, export_id) VALUES (?1, ?2) ON CONFLICT (destination) DO NOTHING",
            &[key.into(), id.into()],
        )?;
        if taken == 1 {
            return Ok(None);
        }
        let holder = db.query_int(
            "SELECT export_id FROM reservations WHERE destination = ?1",
            &[key.into()],
        )?;
        let Some(holder) = holder else { continue };
        let sql = format!("SELECT {} FROM exports WHERE id = ?1", schema::COLUMNS);
        let record = db
            .query(&sql, &[holder.into()])?
            .into_iter()
            .next()
            .map(|cells| {
                Row::from_cells(cells).into_record(&JournalLocation::Sqlite(PathBuf::new()), here)
            });
        match record {
            Some(Ok(record)) if record.status == Status::Running => return Ok(Some(record)),
            _ => {
                db.execute(
                    "DELETE FROM reservations WHERE destination = ?1 AND export_id = ?2",
                    &[key.into(), holder.into()],
                )?;
            }
        }
    }
    Err(DbError::Conflict)
}

/// JSON text of a list column; lists of strings and plain structs always serialise.
fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn now() -> String {
    crate::image::config::created_timestamp(Some(worker::now_seconds().max(0) as u64))
}

/// Now, in RFC 3339 UTC with milliseconds (`2026-01-01T00:00:00.123Z`):
/// when a record was deleted, precise enough to order two commands.
pub fn now_with_millis() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = crate::image::config::created_timestamp(Some(since.as_secs()));
    format!(
        "{}.{:03}Z",
        seconds.trim_end_matches('Z'),
        since.subsec_millis()
    )
}

/// A row as stored, before its JSON columns are parsed.
struct Row {
    id: i64,
    time: String,
    kind: String,
    spec: Option<String>,
    sources: String,
    destinations: String,
    digest: Option<String>,
    size: Option<i64>,
    status: String,
    error: Option<String>,
    run_command: Option<String>,
    secret_names: String,
    deleted_time: Option<String>,
    notes: String,
    host: Option<String>,
    pid: Option<i64>,
    started: Option<String>,
    lease_until: Option<i64>,
}

impl Row {
    /// The cells of a `SELECT` of [`schema::COLUMNS`].
    fn from_cells(cells: Vec<Value>) -> Row {
        let mut cells = cells.into_iter();
        let mut next = move || match cells.next() {
            Some(Value::Int(n)) => (n, None),
            Some(Value::Text(t)) => (t.as_deref().and_then(|t| t.parse().ok()), t),
            None => (None, None),
        };
        let id = next().0.unwrap_or(0);
        let text = |cell: (Option<i64>, Option<String>)| cell.1.or(cell.0.map(|n| n.to_string()));
        Row {
            id,
            time: text(next()).unwrap_or_default(),
            kind: text(next()).unwrap_or_default(),
            spec: text(next()),
            sources: text(next()).unwrap_or_default(),
            destinations: text(next()).unwrap_or_default(),
            digest: text(next()),
            size: next().0,
            status: text(next()).unwrap_or_default(),
            error: text(next()),
            run_command: text(next()),
            secret_names: text(next()).unwrap_or_default(),
            deleted_time: text(next()),
            notes: text(next()).unwrap_or_default(),
            host: text(next()),
            pid: next().0,
            started: text(next()),
            lease_until: next().0,
        }
    }

    /// The row's columns from `time` to `lease_until`, as `migrate_into` inserts them (`?1`…`?17`).
    fn values(&self) -> Vec<Value> {
        vec![
            self.time.clone().into(),
            self.kind.clone().into(),
            self.spec.clone().into(),
            self.sources.clone().into(),
            self.destinations.clone().into(),
            self.digest.clone().into(),
            self.size.into(),
            self.status.clone().into(),
            self.error.clone().into(),
            self.run_command.clone().into(),
            self.secret_names.clone().into(),
            self.deleted_time.clone().into(),
            self.notes.clone().into(),
            self.host.clone().into(),
            self.pid.into(),
            self.started.clone().into(),
            self.lease_until.into(),
        ]
    }

    fn into_record(
        self,
        journal: &JournalLocation,
        here: &str,
    ) -> Result<ExportRecord, ExportsError> {
        let damaged = |problem: String| ExportsError::Damaged {
            journal: journal.to_string(),
            id: self.id,
            problem,
        };
        let list = |column: &str, text: &str| -> Result<Vec<String>, ExportsError> {
            serde_json::from_str(text).map_err(|e| damaged(format!("{column}: {e}")))
        };
        let worker = match (&self.host, self.pid) {
            (Some(host), Some(pid)) => Some(Worker {
                host: host.clone(),
                pid: u32::try_from(pid).unwrap_or(0),
                started: self.started.clone().unwrap_or_default(),
                lease_until: self.lease_until.unwrap_or(0),
            }),
            _ => None,
        };
        let mut status = Status::parse(&self.status)
            .ok_or_else(|| damaged(format!("status `{}`", self.status)))?;
        let dead =
            status == Status::Running && worker.as_ref().is_none_or(|w| !worker::is_alive(w, here));
        if dead {
            status = Status::Interrupted;
        }
        let mut destinations: Vec<Destination> = serde_json::from_str(&self.destinations)
            .map_err(|e| damaged(format!("destinations: {e}")))?;
        // Records from before per-destination status: a whole export either
        // reached every destination or (failed) is treated as owning none.
        // An export that died may have reached a destination it had not
        // recorded yet: once its image is known, that counts as reached, so
        // `exports delete` looks there (it takes a tag only when the tag
        // points at the export's image).
        for d in destinations.iter_mut().filter(|d| d.status.is_none()) {
            d.status = match status {
                Status::Running => None,
                Status::Interrupted if dead && self.digest.is_some() => {
                    Some(DestinationStatus::reached(&d.kind))
                }
                Status::Ok => Some(DestinationStatus::reached(&d.kind)),
                Status::Failed | Status::Interrupted => Some(DestinationStatus::Failed),
                Status::Deleted => Some(DestinationStatus::Deleted),
            };
        }
        Ok(ExportRecord {
            id: self.id,
            kind: Kind::parse(&self.kind)
                .ok_or_else(|| damaged(format!("kind `{}`", self.kind)))?,
            status,
            sources: list("sources", &self.sources)?,
            destinations,
            secret_names: list("secret_names", &self.secret_names)?,
            notes: serde_json::from_str(&self.notes).map_err(|e| damaged(format!("notes: {e}")))?,
            size: self.size.and_then(|s| u64::try_from(s).ok()),
            time: self.time,
            spec: self.spec,
            digest: self.digest,
            error: self.error,
            run_command: self.run_command,
            deleted_time: self.deleted_time,
            worker,
        })
    }
}

#[cfg(test)]
mod journal_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal in a temporary folder, which lives as long as the returned guard.
    fn temp_journal() -> (tempfile::TempDir, Exports) {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        match Exports::open(&dir.path().join("state")) {
            Ok(exports) => (dir, exports),
            Err(e) => panic!("{e}"),
        }
    }

    fn new_export(kind: Kind, error: Option<&str>) -> NewExport {
        NewExport {
            kind,
            spec: Some("/p/stowage.toml".into()),
            sources: vec!["scratch".into(), "/p/library".into()],
            destinations: vec![Destination {
                destination: "docker://localhost:5000/app:v1".into(),
                kind: DestinationKind::Registry,
                path: None,
                size: None,
                plain_http: false,
                status: None,
            }],
            digest: error
                .is_none()
                .then(|| format!("sha256:{}", "a".repeat(64))),
            size: Some(1234),
            error: error.map(str::to_string),
            interrupted: false,
            run_command: Some("docker run x".into()),
            secret_names: vec!["API_TOKEN".into()],
            notes: vec![Note::SecretScan("tornado 6.5.2: published file".into())],
        }
    }

    #[test]
    fn a_version_1_database_gets_the_notes_column_and_its_records_still_read() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let state = dir.path().join("state");
        let version_1 = "CREATE TABLE exports (
            id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('build', 'push', 'copy', 'archive')),
            spec TEXT, sources TEXT NOT NULL, destinations TEXT NOT NULL, digest TEXT, size INTEGER,
            status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'deleted')),
            error TEXT, run_command TEXT, secret_names TEXT NOT NULL DEFAULT '[]', deleted_time TEXT);
            CREATE INDEX exports_status ON exports (status);
            CREATE INDEX exports_digest ON exports (digest);";
        assert!(!version_1.contains("notes"), "{version_1}");
        assert!(!version_1.contains("interrupted"), "{version_1}");
        std::fs::create_dir_all(&state).ok();
        let old = match rusqlite::Connection::open(state.join(DB_FILE)) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let inserted = old.execute_batch(&format!(
            "{version_1} INSERT INTO exports (time, kind, sources, destinations, status) \
             VALUES ('2026-01-01T00:00:00Z', 'build', '[]', '[]', 'ok');"
        ));
        assert!(inserted.is_ok(), "{inserted:?}");
        drop(old);
        let mut exports = match Exports::open(&state) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        let old_record = exports.get(1).map(|r| r.notes);
        assert!(
            matches!(old_record, Ok(ref n) if n.is_empty()),
            "{old_record:?}"
        );
        assert_eq!(exports.record(&new_export(Kind::Build, None)).ok(), Some(2));
        let notes = exports.get(2).map(|r| r.notes).unwrap_or_default();
        assert_eq!(
            notes,
            [Note::SecretScan("tornado 6.5.2: published file".into())]
        );
        // The table was rebuilt to allow the newer status, ids and records kept.
        let mut stopped = new_export(Kind::Build, Some("interrupted by SIGTERM"));
        stopped.interrupted = true;
        assert_eq!(exports.record(&stopped).ok(), Some(3));
        let statuses: Vec<Status> = exports
            .list(None)
            .unwrap_or_default()
            .iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, [Status::Ok, Status::Ok, Status::Interrupted]);
        drop(exports);
        assert!(Exports::open(&state).is_ok(), "opens again once rebuilt");
    }

    #[test]
    fn destinations_remember_plain_http_and_older_records_read_without_it() {
        let older = r#"[{"destination":"docker://10.0.0.5:5000/app:1","kind":"registry"}]"#;
        let read: Result<Vec<Destination>, _> = serde_json::from_str(older);
        assert!(
            matches!(read.as_deref(), Ok([d]) if !d.plain_http),
            "{read:?}"
        );
        let mut destination = Destination::of(&Location::Scratch);
        assert!(
            !to_json(&destination).contains("plain_http"),
            "false is left out"
        );
        destination.plain_http = true;
        let text = to_json(&[&destination]);
        let back: Result<Vec<Destination>, _> = serde_json::from_str(&text);
        assert!(matches!(back.as_deref(), Ok([d]) if d.plain_http), "{text}");
    }

    #[test]
    fn destination_kinds_are_stored_as_their_words_and_unknown_words_read_back_as_written() {
        let known = [
            (DestinationKind::Registry, "registry"),
            (DestinationKind::DockerArchive, "docker-archive"),
            (DestinationKind::OciArchive, "oci-archive"),
            (DestinationKind::Oci, "oci"),
            (DestinationKind::Scratch, "scratch"),
            (DestinationKind::Unknown, "unknown"),
        ];
        for (kind, word) in known {
            let text = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(text, format!("\"{word}\""));
            let back: Result<DestinationKind, _> = serde_json::from_str(&text);
            assert_eq!(back.ok(), Some(kind));
        }
        let from_elsewhere = r#"[{"destination":"docker-daemon:app:1","kind":"docker-daemon"}]"#;
        let read: Result<Vec<Destination>, _> = serde_json::from_str(from_elsewhere);
        let kind = read.ok().and_then(|d| d.into_iter().next()).map(|d| d.kind);
        assert_eq!(kind, Some(DestinationKind::Other("docker-daemon".into())));
        assert_eq!(
            kind.map(|k| to_json(&k)).as_deref(),
            Some("\"docker-daemon\""),
            "written back as it was read"
        );
        let archive = Location::OciArchive {
            path: "/x.oci".into(),
            tag: None,
        };
        assert_eq!(Destination::of(&archive).kind, DestinationKind::OciArchive);
    }

    #[test]
    fn notes_round_trip_and_old_text_notes_read_as_their_kind() {
        let signed = Note::Signed {
            image: "h:5000/app@sha256:ab".into(),
            tag: "h:5000/app:sha256-ab.sig".into(),
        };
        let notes = vec![
            signed.clone(),
            Note::SecretScan("tornado 6.5.2: published file".into()),
            Note::Attestations("https://spdx.dev/Document in sha256:cd".into()),
            Note::Text("anything else".into()),
        ];
        let text = to_json(&notes);
        assert_eq!(
            text,
            r#"[{"signed":{"image":"h:5000/app@sha256:ab","tag":"h:5000/app:sha256-ab.sig"}},"secret scan: tornado 6.5.2: published file","attestations: https://spdx.dev/Document in sha256:cd","anything else"]"#,
            "text notes stay strings; a signature is an object"
        );
        let back: Result<Vec<Note>, _> = serde_json::from_str(&text);
        assert_eq!(back.ok(), Some(notes));
        // Written before notes had types: every one a string.
        let old = r#"["signed: h:5000/app@sha256:ab at h:5000/app:sha256-ab.sig","secret scan: x: published file","attestations: y","signed: no tag here"]"#;
        let read: Result<Vec<Note>, _> = serde_json::from_str(old);
        assert_eq!(
            read.ok(),
            Some(vec![
                signed.clone(),
                Note::SecretScan("x: published file".into()),
                Note::Attestations("y".into()),
                Note::Text("signed: no tag here".into()),
            ])
        );
        assert_eq!(
            signed.to_string(),
            "signed: h:5000/app@sha256:ab at h:5000/app:sha256-ab.sig"
        );
    }

    #[test]
    fn policy_notes_round_trip_as_lines() {
        let notes = vec![
            Note::Policy {
                path: "/etc/stowage/my policy.toml".into(),
                digest: format!("sha256:{}", "b".repeat(64)),
            },
            Note::PolicyViolation(
                "pkg:pypi/pymupdf@1.24.14: license AGPL-3.0-only [licenses.deny, policy line 2]"
                    .into(),
            ),
            Note::PolicyWarning(
                "pkg:pypi/comm@0.2.3: no license declared or concluded [licenses.unknown]".into(),
            ),
        ];
        let text = to_json(&notes);
        assert!(text.starts_with(r#"["policy: sha256:bbbb"#), "{text}");
        let back: Result<Vec<Note>, _> = serde_json::from_str(&text);
        assert_eq!(back.ok(), Some(notes));
    }

    #[test]
    fn the_owner_of_a_tag_is_the_newest_export_that_still_holds_it() {
        let (_dir, mut exports) = temp_journal();
        let mut pushed = new_export(Kind::Build, None);
        pushed.destinations[0].status = Some(DestinationStatus::Pushed);
        let first = exports.record(&pushed).ok();
        let second = exports.record(&pushed).ok();
        let failed = new_export(Kind::Build, Some("boom"));
        let _ = exports.record(&failed);
        let owner = |exports: &Exports, reference: &str| {
            exports
                .exported_tag_owner(reference)
                .ok()
                .flatten()
                .map(|r| r.id)
        };
        assert_eq!(owner(&exports, "localhost:5000/app:v1"), second);
        assert_eq!(owner(&exports, "localhost:5000/app:v2"), None);
        assert_eq!(
            owner(&exports, "localhost:5000/ap_:v1"),
            None,
            "LIKE's wildcards are literal"
        );
        if let Some(id) = second {
            assert!(exports.mark_deleted(id).is_ok());
        }
        assert_eq!(owner(&exports, "localhost:5000/app:v1"), first);
    }

    #[test]
    fn an_interrupted_export_is_its_own_status() {
        let (_dir, mut exports) = temp_journal();
        let mut stopped = new_export(Kind::Build, Some("interrupted by SIGINT"));
        stopped.interrupted = true;
        stopped.destinations[0].status = Some(DestinationStatus::Pushed);
        let ids = (
            exports.record(&new_export(Kind::Push, Some("boom"))).ok(),
            exports.record(&stopped).ok(),
        );
        assert_eq!(ids, (Some(1), Some(2)));
        let listed = exports.list(Some(Status::Interrupted)).unwrap_or_default();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, 2);
        assert_eq!(listed[0].status.as_str(), "interrupted");
        assert!(listed[0].destinations[0].holds_image());
        assert_eq!(
            exports.list(Some(Status::Failed)).map(|l| l.len()).ok(),
            Some(1)
        );
    }

    #[test]
    fn records_round_trip_filter_and_are_marked_deleted() {
        let (dir, mut exports) = temp_journal();
        let ok = exports.record(&new_export(Kind::Build, None)).ok();
        let failed = exports.record(&new_export(Kind::Push, Some("boom"))).ok();
        assert_eq!((ok, failed), (Some(1), Some(2)));
        let all = exports.list(None).unwrap_or_default();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].status, Status::Ok);
        assert_eq!(all[0].destinations[0].kind, DestinationKind::Registry);
        assert_eq!(all[0].secret_names, ["API_TOKEN"]);
        assert_eq!(all[1].status, Status::Failed);
        assert_eq!(all[1].error.as_deref(), Some("boom"));
        assert!(all[0].time.ends_with('Z'));
        assert!(exports.mark_deleted(1).is_ok());
        assert!(matches!(
            exports.mark_deleted(1),
            Err(ExportsError::AlreadyDeleted { id: 1 })
        ));
        assert!(matches!(
            exports.mark_deleted(9),
            Err(ExportsError::NoSuchExport { id: 9 })
        ));
        let deleted = exports.list(Some(Status::Deleted)).unwrap_or_default();
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].id, 1);
        assert!(deleted[0].deleted_time.is_some());
        assert_eq!(deleted[0].digest, all[0].digest, "nothing else changes");
        assert_eq!(
            exports.list(Some(Status::Ok)).map(|l| l.len()).ok(),
            Some(0)
        );
        let names = exports.secret_names_for(&format!("sha256:{}", "a".repeat(64)));
        assert_eq!(names.ok(), Some(vec!["API_TOKEN".to_string()]));
        drop(exports);
        let reopened = match Exports::open(&dir.path().join("state")) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(reopened.list(None).map(|l| l.len()).ok(), Some(2));
    }

    #[test]
    fn threads_with_their_own_connections_all_record() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let state = dir.path().join("state");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let state = state.clone();
                std::thread::spawn(move || {
                    let mut exports = Exports::open(&state).map_err(|e| e.to_string())?;
                    for _ in 0..10 {
                        exports
                            .record(&new_export(Kind::Copy, None))
                            .map_err(|e| e.to_string())?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().ok(), Some(Ok(())));
        }
        let exports = match Exports::open(&state) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        let ids: Vec<i64> = exports
            .list(None)
            .unwrap_or_default()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, (1..=40).collect::<Vec<_>>());
    }
    #[test]
    fn each_destination_keeps_its_status_and_older_records_get_one_from_the_export() {
        let (_dir, mut exports) = temp_journal();
        // Written before per-destination status: no `status` in the JSON.
        for status in ["ok", "failed", "deleted"] {
            let inserted = exports.db.borrow_mut().execute(
                "INSERT INTO exports (time, kind, sources, destinations, status) VALUES ('t', 'build', '[]', ?1, ?2)",
                &[
                    r#"[{"destination":"docker://h/a:1","kind":"registry"},{"destination":"oci:/x","kind":"oci","path":"/x"}]"#.into(),
                    status.into(),
                ],
            );
            assert!(inserted.is_ok(), "{inserted:?}");
        }
        let statuses = |exports: &Exports, id: i64| -> Vec<Option<DestinationStatus>> {
            exports
                .get(id)
                .map(|r| r.destinations.iter().map(|d| d.status).collect())
                .unwrap_or_default()
        };
        use DestinationStatus::*;
        assert_eq!(statuses(&exports, 1), [Some(Pushed), Some(Written)]);
        assert_eq!(statuses(&exports, 2), [Some(Failed), Some(Failed)]);
        assert_eq!(statuses(&exports, 3), [Some(Deleted), Some(Deleted)]);

        let mut partial = new_export(Kind::Build, Some("oci:/x failed"));
        partial.destinations[0].status = Some(Pushed);
        partial.destinations.push(Destination {
            destination: "oci:/x".into(),
            kind: DestinationKind::Oci,
            status: Some(Failed),
            ..Destination::default()
        });
        let id = exports.record(&partial).unwrap_or_default();
        assert_eq!(statuses(&exports, id), [Some(Pushed), Some(Failed)]);
        let mut destinations = exports.get(id).map(|r| r.destinations).unwrap_or_default();
        assert!(destinations[0].holds_image() && !destinations[1].holds_image());
        destinations[0].status = Some(Deleted);
        assert!(exports.set_destinations(id, &destinations).is_ok());
        assert_eq!(statuses(&exports, id), [Some(Deleted), Some(Failed)]);
    }
}
