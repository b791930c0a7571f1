//! The journal of exports: every build, push, copy and archive, kept in SQLite under the state folder.
//!
//! Only the journal: turning outcomes into records, the `docker run` line and
//! deleting what an export left live in `commands`.
//!
//! Why SQLite: two stowage processes (a CI matrix, a user with two
//! terminals) record at the same time, and a record must never be lost or
//! half-written. WAL mode lets readers go on while one writer commits, the
//! busy timeout makes a second writer wait its turn instead of failing, and
//! each record is one short `BEGIN IMMEDIATE` transaction. Records are only
//! ever added or marked deleted; nothing is erased.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::reference::{ImageRef, Location, ReferenceError};

/// The database file in the state folder.
pub const DB_FILE: &str = "exports.sqlite3";

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Columns added after version 1, with their definitions: a database an
/// earlier stowage wrote gets them on open, so its records still read.
const ADDED_COLUMNS: &[(&str, &str)] = &[("notes", "TEXT NOT NULL DEFAULT '[]'")];

/// The schema, version 3 (version 1 had no `notes`, version 2's `status`
/// could not be `interrupted`). `status` is ok, failed, interrupted or
/// deleted; list-valued columns hold JSON arrays.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS exports (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    time         TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('build', 'push', 'copy', 'archive')),
    spec         TEXT,
    sources      TEXT    NOT NULL,
    destinations TEXT    NOT NULL,
    digest       TEXT,
    size         INTEGER,
    status       TEXT    NOT NULL CHECK (status IN ('ok', 'failed', 'interrupted', 'deleted')),
    error        TEXT,
    run_command  TEXT,
    secret_names TEXT    NOT NULL DEFAULT '[]',
    deleted_time TEXT,
    notes        TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS exports_status ON exports (status);
CREATE INDEX IF NOT EXISTS exports_digest ON exports (digest);
";

/// What went wrong with the export records.
#[derive(Debug, thiserror::Error)]
pub enum ExportsError {
    #[error("cannot create the state folder {path}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the export records in {path} cannot be read or written")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the export record {id} in {path} is damaged: {problem}")]
    Damaged {
        path: PathBuf,
        id: i64,
        problem: String,
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
            ExportsError::Database { path, .. } => Some(format!(
                "check that {} is writable; another stowage waits at most {}s for its turn",
                path.display(),
                BUSY_TIMEOUT.as_secs()
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
    Ok,
    Failed,
    /// A signal stopped it (SIGINT, SIGTERM); its destinations say which it reached.
    Interrupted,
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
            Status::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        Some(match s {
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
}

/// The export records database, open.
pub struct Exports {
    conn: Connection,
    path: PathBuf,
}

impl Exports {
    /// Opens (creating if needed) the records in `dir` (I/O).
    pub fn open(dir: &Path) -> Result<Exports, ExportsError> {
        std::fs::create_dir_all(dir).map_err(|source| ExportsError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let db_err = |source| ExportsError::Database {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(db_err)?;
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
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        tx.execute_batch(SCHEMA).map_err(db_err)?;
        add_missing_columns(&tx).map_err(db_err)?;
        allow_every_status(&tx).map_err(db_err)?;
        tx.pragma_update(None, "user_version", 3).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Exports { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_err(&self, source: rusqlite::Error) -> ExportsError {
        ExportsError::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// Adds a record (I/O) and returns its id.
    pub fn record(&mut self, new: &NewExport) -> Result<i64, ExportsError> {
        let status = match (new.interrupted, &new.error) {
            (true, _) => Status::Interrupted,
            (false, Some(_)) => Status::Failed,
            (false, None) => Status::Ok,
        };
        let path = self.path.clone();
        let db_err = |source| ExportsError::Database {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        tx.execute(
            "INSERT INTO exports (time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, notes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                now(),
                new.kind.as_str(),
                new.spec,
                to_json(&new.sources),
                to_json(&new.destinations),
                new.digest,
                new.size.map(|s| s as i64),
                status.as_str(),
                new.error,
                new.run_command,
                to_json(&new.secret_names),
                to_json(&new.notes),
            ],
        )
        .map_err(db_err)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(db_err)?;
        Ok(id)
    }

    /// All records, oldest first, or those with `status` (I/O).
    pub fn list(&self, status: Option<Status>) -> Result<Vec<ExportRecord>, ExportsError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, deleted_time, notes
                 FROM exports WHERE ?1 IS NULL OR status = ?1 ORDER BY id",
            )
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map(params![status.map(Status::as_str)], Row::read)
            .map_err(|e| self.db_err(e))?;
        let mut records = Vec::new();
        for row in rows {
            records.push(row.map_err(|e| self.db_err(e))?.into_record(&self.path)?);
        }
        Ok(records)
    }

    /// The record `id` (I/O).
    pub fn get(&self, id: i64) -> Result<ExportRecord, ExportsError> {
        self.conn
            .query_row(
                "SELECT id, time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, deleted_time, notes
                 FROM exports WHERE id = ?1",
                params![id],
                Row::read,
            )
            .optional()
            .map_err(|e| self.db_err(e))?
            .ok_or(ExportsError::NoSuchExport { id })?
            .into_record(&self.path)
    }

    /// Stores what each destination of `id` now holds (after a partial delete) (I/O).
    pub fn set_destinations(
        &mut self,
        id: i64,
        destinations: &[Destination],
    ) -> Result<(), ExportsError> {
        self.conn
            .execute(
                "UPDATE exports SET destinations = ?2 WHERE id = ?1",
                params![id, to_json(&destinations)],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Marks `id` deleted, keeping everything else it says (I/O).
    pub fn mark_deleted(&mut self, id: i64) -> Result<(), ExportsError> {
        let changed = self
            .conn
            .execute(
                "UPDATE exports SET status = 'deleted', deleted_time = ?2 WHERE id = ?1 AND status != 'deleted'",
                params![id, now()],
            )
            .map_err(|e| self.db_err(e))?;
        if changed == 0 {
            return match self.get(id)?.status {
                Status::Deleted => Err(ExportsError::AlreadyDeleted { id }),
                _ => Err(ExportsError::NoSuchExport { id }),
            };
        }
        Ok(())
    }

    /// The newest export, not deleted, whose registry destination
    /// `reference` (`registry/repository:tag`) still holds what it pushed:
    /// the owner of that tag, for `overwrite = "own"` (I/O).
    pub fn exported_tag_owner(
        &self,
        reference: &str,
    ) -> Result<Option<ExportRecord>, ExportsError> {
        let wanted = ImageRef::parse(reference).ok();
        let pattern = format!("%{}%", like_escape(reference));
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, deleted_time, notes
                 FROM exports WHERE status != 'deleted' AND destinations LIKE ?1 ESCAPE '\\' ORDER BY id DESC",
            )
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map(params![pattern], Row::read)
            .map_err(|e| self.db_err(e))?;
        for row in rows {
            let record = row.map_err(|e| self.db_err(e))?.into_record(&self.path)?;
            let holds = record.destinations.iter().any(|d| {
                d.kind == DestinationKind::Registry
                    && d.holds_image()
                    && d.registry_ref().ok().as_ref() == wanted.as_ref()
            });
            if holds {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// The secret names of the newest build of the image `digest`, for the run command of a later push (I/O).
    pub fn secret_names_for(&self, digest: &str) -> Result<Vec<String>, ExportsError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT secret_names FROM exports WHERE digest = ?1 AND kind = 'build' ORDER BY id DESC LIMIT 1",
                params![digest],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    }
}

/// Adds the columns of [`ADDED_COLUMNS`] that an older database lacks.
fn add_missing_columns(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare("SELECT name FROM pragma_table_info('exports')")?;
    let present: Vec<String> = stmt
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    for (name, definition) in ADDED_COLUMNS {
        if !present.iter().any(|p| p == name) {
            tx.execute_batch(&format!(
                "ALTER TABLE exports ADD COLUMN {name} {definition}"
            ))?;
        }
    }
    Ok(())
}

/// Rebuilds a table whose `status` CHECK predates `interrupted` (SQLite
/// cannot change a CHECK in place): renamed, made again from [`SCHEMA`],
/// every record copied with its id, the old one dropped.
fn allow_every_status(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let table: String = tx.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'exports'",
        [],
        |row| row.get(0),
    )?;
    if table.contains("'interrupted'") {
        return Ok(());
    }
    let columns = "id, time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, deleted_time, notes";
    tx.execute_batch(&format!(
        "ALTER TABLE exports RENAME TO exports_before_v3;
         {SCHEMA}
         INSERT INTO exports ({columns}) SELECT {columns} FROM exports_before_v3;
         DROP TABLE exports_before_v3;
         {SCHEMA}"
    ))
}

/// `text` with LIKE's wildcards and the escape character escaped by `\\`.
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// JSON text of a list column; lists of strings and plain structs always serialise.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::image::config::created_timestamp(Some(secs))
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
}

impl Row {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        Ok(Row {
            id: row.get(0)?,
            time: row.get(1)?,
            kind: row.get(2)?,
            spec: row.get(3)?,
            sources: row.get(4)?,
            destinations: row.get(5)?,
            digest: row.get(6)?,
            size: row.get(7)?,
            status: row.get(8)?,
            error: row.get(9)?,
            run_command: row.get(10)?,
            secret_names: row.get(11)?,
            deleted_time: row.get(12)?,
            notes: row.get(13)?,
        })
    }

    fn into_record(self, path: &Path) -> Result<ExportRecord, ExportsError> {
        let damaged = |problem: String| ExportsError::Damaged {
            path: path.to_path_buf(),
            id: self.id,
            problem,
        };
        let list = |column: &str, text: &str| -> Result<Vec<String>, ExportsError> {
            serde_json::from_str(text).map_err(|e| damaged(format!("{column}: {e}")))
        };
        let status = Status::parse(&self.status)
            .ok_or_else(|| damaged(format!("status `{}`", self.status)))?;
        let mut destinations: Vec<Destination> = serde_json::from_str(&self.destinations)
            .map_err(|e| damaged(format!("destinations: {e}")))?;
        // Records from before per-destination status: a whole export either
        // reached every destination or (failed) is treated as owning none.
        for d in destinations.iter_mut().filter(|d| d.status.is_none()) {
            d.status = Some(match status {
                Status::Ok => DestinationStatus::reached(&d.kind),
                Status::Failed | Status::Interrupted => DestinationStatus::Failed,
                Status::Deleted => DestinationStatus::Deleted,
            });
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
        })
    }
}

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
        let version_1 = SCHEMA
            .replace(",\n    notes        TEXT    NOT NULL DEFAULT '[]'", "")
            .replace("'interrupted', ", "");
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
            let inserted = exports.conn.execute(
                "INSERT INTO exports (time, kind, sources, destinations, status) VALUES ('t', 'build', '[]', ?1, ?2)",
                params![
                    r#"[{"destination":"docker://h/a:1","kind":"registry"},{"destination":"oci:/x","kind":"oci","path":"/x"}]"#,
                    status
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
