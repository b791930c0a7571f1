//! The journal's tables in SQLite and PostgreSQL, created on first use and upgraded in place from older versions.

use super::db::{Db, DbError, Value};

/// The SQLite schema, version 4 (version 1 had no `notes`, version 2's
/// `status` could not be `interrupted`, version 3 had no running exports,
/// workers or reservations). `status` is running, ok, failed, interrupted or
/// deleted; list-valued columns hold JSON arrays; `origin` names the record
/// a migrated one was copied from.
pub const SQLITE: &str = "
CREATE TABLE IF NOT EXISTS exports (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    time         TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('build', 'push', 'copy', 'archive')),
    spec         TEXT,
    sources      TEXT    NOT NULL,
    destinations TEXT    NOT NULL,
    digest       TEXT,
    size         INTEGER,
    status       TEXT    NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'interrupted', 'deleted')),
    error        TEXT,
    run_command  TEXT,
    secret_names TEXT    NOT NULL DEFAULT '[]',
    deleted_time TEXT,
    notes        TEXT    NOT NULL DEFAULT '[]',
    host         TEXT,
    pid          INTEGER,
    started      TEXT,
    lease_until  INTEGER,
    origin       TEXT
);
CREATE INDEX IF NOT EXISTS exports_status ON exports (status);
CREATE INDEX IF NOT EXISTS exports_status_id ON exports (status, id);
CREATE INDEX IF NOT EXISTS exports_digest ON exports (digest);
CREATE UNIQUE INDEX IF NOT EXISTS exports_origin ON exports (origin);
CREATE TABLE IF NOT EXISTS reservations (
    destination TEXT    PRIMARY KEY,
    export_id   INTEGER NOT NULL
);
";

const SQLITE_VERSION: i64 = 4;

/// Columns added after version 1, with their definitions: a database an
/// earlier stowage wrote gets them on open, so its records still read.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("notes", "TEXT NOT NULL DEFAULT '[]'"),
    ("host", "TEXT"),
    ("pid", "INTEGER"),
    ("started", "TEXT"),
    ("lease_until", "INTEGER"),
    ("origin", "TEXT"),
];

/// Every column, in the order [`super::Row`] reads them.
pub const COLUMNS: &str = "id, time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, deleted_time, notes, host, pid, started, lease_until";

/// PostgreSQL's schema, step by step: step N takes a database at version
/// N-1 to N. A database records its version in `stowage_journal`; opening
/// one runs the steps it lacks, under an advisory lock, so workers that
/// start together upgrade it once. A step is frozen once released (a
/// change is a new step), which is why the first one spells out the
/// columns the SQLite table also names rather than sharing its text.
const POSTGRES_STEPS: &[&str] = &["
CREATE TABLE exports (
    id           BIGSERIAL PRIMARY KEY,
    time         TEXT   NOT NULL,
    kind         TEXT   NOT NULL CHECK (kind IN ('build', 'push', 'copy', 'archive')),
    spec         TEXT,
    sources      TEXT   NOT NULL,
    destinations TEXT   NOT NULL,
    digest       TEXT,
    size         BIGINT,
    status       TEXT   NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'interrupted', 'deleted')),
    error        TEXT,
    run_command  TEXT,
    secret_names TEXT   NOT NULL DEFAULT '[]',
    deleted_time TEXT,
    notes        TEXT   NOT NULL DEFAULT '[]',
    host         TEXT,
    pid          BIGINT,
    started      TEXT,
    lease_until  BIGINT,
    origin       TEXT   UNIQUE
);
CREATE INDEX exports_status_id ON exports (status, id);
CREATE INDEX exports_digest ON exports (digest);
CREATE TABLE reservations (
    destination TEXT   PRIMARY KEY,
    export_id   BIGINT NOT NULL
);
"];

/// The PostgreSQL schema version this stowage writes.
pub const POSTGRES_VERSION: i64 = POSTGRES_STEPS.len() as i64;

/// Any advisory lock key, as long as it is stowage's alone: "stowage" in ASCII.
const UPGRADE_LOCK: i64 = 0x73_74_6f_77_61_67_65;

/// What opening found.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    Ready,
    /// The database was written by a newer stowage, at this version.
    Newer(i64),
}

/// Creates or upgrades the SQLite tables (one `BEGIN IMMEDIATE` transaction).
pub fn prepare_sqlite(db: &mut Db) -> Result<(), DbError> {
    let Db::Sqlite(conn) = db else {
        return Ok(());
    };
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == SQLITE_VERSION {
        return Ok(tx.commit()?);
    }
    let exists: i64 = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'exports'",
        [],
        |row| row.get(0),
    )?;
    if exists > 0 {
        add_missing_columns(&tx)?;
        allow_every_status(&tx)?;
    }
    tx.execute_batch(SQLITE)?;
    tx.pragma_update(None, "user_version", SQLITE_VERSION)?;
    Ok(tx.commit()?)
}

/// Creates or upgrades the PostgreSQL tables.
pub fn prepare_postgres(db: &mut Db) -> Result<Opened, DbError> {
    let current = postgres_version(db)?;
    if current == POSTGRES_VERSION {
        return Ok(Opened::Ready);
    }
    if current > POSTGRES_VERSION {
        return Ok(Opened::Newer(current));
    }
    db.transaction(|db| {
        db.query_int(
            "SELECT 1 FROM (SELECT pg_advisory_xact_lock(?1)) AS locked",
            &[Value::from(UPGRADE_LOCK)],
        )?;
        db.batch("CREATE TABLE IF NOT EXISTS stowage_journal (version BIGINT NOT NULL)")?;
        let current = db
            .query_int("SELECT max(version) FROM stowage_journal", &[])?
            .unwrap_or(0);
        for (step, sql) in POSTGRES_STEPS
            .iter()
            .enumerate()
            .skip(current.max(0) as usize)
        {
            db.batch(sql)?;
            db.execute("DELETE FROM stowage_journal", &[])?;
            db.execute(
                "INSERT INTO stowage_journal (version) VALUES (?1)",
                &[Value::from(step as i64 + 1)],
            )?;
        }
        Ok(())
    })?;
    Ok(Opened::Ready)
}

/// The version a PostgreSQL database is at (0: no journal there yet).
fn postgres_version(db: &mut Db) -> Result<i64, DbError> {
    let present = db.query_int(
        "SELECT count(*) FROM pg_tables WHERE tablename = 'stowage_journal' AND schemaname = current_schema()",
        &[],
    )?;
    if present.unwrap_or(0) == 0 {
        return Ok(0);
    }
    Ok(db
        .query_int("SELECT max(version) FROM stowage_journal", &[])?
        .unwrap_or(0))
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

/// Rebuilds a table whose `status` CHECK predates `running` (SQLite cannot
/// change a CHECK in place): renamed, made again from [`SQLITE`], every
/// record copied with its id, the old one dropped.
fn allow_every_status(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let table: String = tx.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'exports'",
        [],
        |row| row.get(0),
    )?;
    if table.contains("'running'") {
        return Ok(());
    }
    let columns = format!("{COLUMNS}, origin");
    tx.execute_batch(&format!(
        "ALTER TABLE exports RENAME TO exports_before_v4;
         {SQLITE}
         INSERT INTO exports ({columns}) SELECT {columns} FROM exports_before_v4;
         DROP TABLE exports_before_v4;"
    ))
}
