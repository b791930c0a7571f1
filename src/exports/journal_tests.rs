//! Tests of running exports, leases, reservations and the PostgreSQL journal (on the rig's server).

use super::*;

fn temp_journal() -> (tempfile::TempDir, Exports) {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    match Exports::open(dir.path()) {
        Ok(exports) => (dir, exports),
        Err(e) => panic!("{e}"),
    }
}

fn push_to(tag: &str) -> NewExport {
    NewExport {
        kind: Kind::Push,
        spec: None,
        sources: vec!["oci:/src".into()],
        destinations: vec![Destination {
            destination: format!("docker://{tag}"),
            kind: DestinationKind::Registry,
            ..Destination::default()
        }],
        digest: None,
        size: None,
        error: None,
        interrupted: false,
        run_command: None,
        secret_names: Vec::new(),
        notes: Vec::new(),
    }
}

const LEASE: Duration = Duration::from_secs(60);
/// No process has this pid (above any pid_max).
const DEAD_PID: i64 = 1 << 30;

fn ok<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_running_export_reads_interrupted_once_its_process_is_gone() {
    let (_dir, mut exports) = temp_journal();
    let id = ok(exports.begin(&push_to("localhost:5000/app:v1"), LEASE));
    let running = ok(exports.get(id));
    assert_eq!(running.status, Status::Running);
    assert_eq!(running.destinations[0].status, None, "on its way");
    let worker = running
        .worker
        .clone()
        .unwrap_or_else(|| panic!("no worker"));
    assert_eq!(worker.pid, std::process::id());
    let listed = ok(exports.list_filtered(Filter {
        status: Some(Status::Running),
        limit: None,
    }));
    assert_eq!(listed.len(), 1);
    let digest = format!("sha256:{}", "b".repeat(64));
    ok(exports.progress(id, Some(&digest), &running.destinations));
    ok(exports.db.borrow_mut().execute(
        "UPDATE exports SET pid = ?2 WHERE id = ?1",
        &[id.into(), DEAD_PID.into()],
    ));
    let dead = ok(exports.get(id));
    assert_eq!(dead.status, Status::Interrupted);
    assert_eq!(
        dead.destinations[0].status,
        Some(DestinationStatus::Pushed),
        "its image is known, so delete looks there"
    );
    let interrupted = ok(exports.list(Some(Status::Interrupted)));
    assert_eq!(interrupted.len(), 1);
    assert!(ok(exports.list(Some(Status::Running))).is_empty());
}

#[test]
fn a_destination_is_reserved_by_one_live_export_at_a_time() {
    let (dir, mut first) = temp_journal();
    let mut second = ok(Exports::open(dir.path()));
    let tag = "localhost:5000/app:v1";
    let owner = ok(first.begin(&push_to(tag), LEASE));
    match second.begin(&push_to(tag), LEASE) {
        Err(ExportsError::Reserved {
            owner: held,
            destination,
        }) => {
            assert_eq!(held.id, owner);
            assert_eq!(destination, format!("docker://{tag}"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(ok(first.count()), 1, "the refused export left no record");
    let mut done = push_to(tag);
    done.digest = Some(format!("sha256:{}", "c".repeat(64)));
    ok(first.finish(owner, &done));
    let next = ok(second.begin(&push_to(tag), LEASE));
    // Its worker dies: the next claim takes the reservation over.
    ok(second.db.borrow_mut().execute(
        "UPDATE exports SET pid = ?2 WHERE id = ?1",
        &[next.into(), DEAD_PID.into()],
    ));
    assert!(first.begin(&push_to(tag), LEASE).is_ok());
}

#[test]
fn the_owner_of_a_tag_is_its_live_export() {
    let (_dir, mut exports) = temp_journal();
    let mut pushed = push_to("localhost:5000/team/app:v1");
    pushed.destinations[0].status = Some(DestinationStatus::Pushed);
    pushed.digest = Some(format!("sha256:{}", "d".repeat(64)));
    let id = ok(exports.record(&pushed));
    let mut failed = push_to("localhost:5000/team/app:v1");
    failed.error = Some("boom".into());
    failed.destinations[0].status = Some(DestinationStatus::Failed);
    ok(exports.record(&failed));
    for asked in [
        "localhost:5000/team/app:v1",
        "docker://localhost:5000/team/app:v1",
    ] {
        let owner = ok(exports.exported_tag_owner(asked)).map(|r| r.id);
        assert_eq!(owner, Some(id), "{asked}");
    }
    assert!(ok(exports.exported_tag_owner("localhost:5000/team/app:v2")).is_none());
    assert!(ok(exports.exported_tag_owner("localhost:5000/team/app")).is_none());
    ok(exports.mark_deleted(id));
    assert!(ok(exports.exported_tag_owner("localhost:5000/team/app:v1")).is_none());
}

#[test]
fn lists_filter_by_status_and_keep_the_newest() {
    let (_dir, mut exports) = temp_journal();
    for n in 0..10 {
        let mut new = push_to("localhost:5000/app:v1");
        if n % 2 == 1 {
            new.error = Some("boom".into());
        }
        ok(exports.record(&new));
    }
    let newest = ok(exports.list_filtered(Filter {
        status: Some(Status::Failed),
        limit: Some(3),
    }));
    let ids: Vec<i64> = newest.iter().map(|r| r.id).collect();
    assert_eq!(ids, [6, 8, 10], "the newest three, oldest first");
    let all = ok(exports.list_filtered(Filter {
        status: None,
        limit: Some(2),
    }));
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [9, 10]);
}

#[test]
fn a_version_3_database_is_upgraded_in_place() {
    let dir = ok(tempfile::tempdir());
    let path = dir.path().join(DB_FILE);
    let old = ok(rusqlite::Connection::open(&path));
    ok(old.execute_batch(
        "CREATE TABLE exports (
            id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('build', 'push', 'copy', 'archive')),
            spec TEXT, sources TEXT NOT NULL, destinations TEXT NOT NULL, digest TEXT, size INTEGER,
            status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'interrupted', 'deleted')),
            error TEXT, run_command TEXT, secret_names TEXT NOT NULL DEFAULT '[]', deleted_time TEXT,
            notes TEXT NOT NULL DEFAULT '[]');
         CREATE INDEX exports_status ON exports (status);
         CREATE INDEX exports_digest ON exports (digest);
         INSERT INTO exports (time, kind, sources, destinations, status)
             VALUES ('2026-01-01T00:00:00Z', 'copy', '[]', '[]', 'interrupted');
         PRAGMA user_version = 3;",
    ));
    drop(old);
    let mut exports = ok(Exports::open(dir.path()));
    assert_eq!(ok(exports.get(1)).status, Status::Interrupted);
    let id = ok(exports.begin(&push_to("localhost:5000/app:v1"), LEASE));
    assert_eq!(id, 2);
    assert_eq!(ok(exports.get(2)).status, Status::Running);
    drop(exports);
    let check = ok(rusqlite::Connection::open(&path));
    let version: i64 = ok(check.pragma_query_value(None, "user_version", |r| r.get(0)));
    assert_eq!(version, 4);
}

/// A database of the rig's PostgreSQL, dropped with this.
struct TestDatabase {
    admin: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A fresh database in the rig's PostgreSQL (`STOWAGE_TEST_POSTGRES`), or
/// None outside the rig (under `CI=true` that fails instead).
fn postgres_database() -> Option<(JournalLocation, TestDatabase)> {
    let Ok(admin) = std::env::var("STOWAGE_TEST_POSTGRES") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: STOWAGE_TEST_POSTGRES must be set (scripts/test-env.sh starts PostgreSQL)"
        );
        eprintln!("SKIPPED: STOWAGE_TEST_POSTGRES is not set");
        return None;
    };
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "stowage_unit_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let mut client = ok(postgres::Client::connect(&admin, postgres::NoTls));
    ok(client.batch_execute(&format!("CREATE DATABASE {name}")));
    let (base, _) = admin.rsplit_once('/')?;
    let location = ok(JournalLocation::parse(&format!("{base}/{name}")));
    Some((location, TestDatabase { admin, name }))
}

#[test]
fn postgres_workers_that_start_together_create_the_schema_once_and_share_reservations() {
    let Some((location, _database)) = postgres_database() else {
        return;
    };
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let location = location.clone();
            std::thread::spawn(move || {
                Exports::open_location(&location)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for handle in opened {
        assert_eq!(handle.join().ok(), Some(Ok(())));
    }
    let mut first = ok(Exports::open_location(&location));
    let mut second = ok(Exports::open_location(&location));
    let tag = "localhost:5000/app:v1";
    let owner = ok(first.begin(&push_to(tag), LEASE));
    assert!(matches!(
        second.begin(&push_to(tag), LEASE),
        Err(ExportsError::Reserved { owner: ref held, .. }) if held.id == owner
    ));
    ok(first.finish(owner, &push_to(tag)));
    assert_eq!(ok(second.get(owner)).status, Status::Ok);
    let next = ok(second.begin(&push_to(tag), LEASE));
    assert_eq!(
        ok(first.exported_tag_owner(tag)).map(|r| r.id),
        Some(next),
        "the running export, newer than the ended one"
    );
    // A journal a newer stowage upgraded is refused, not written.
    ok(first
        .db
        .borrow_mut()
        .execute("UPDATE stowage_journal SET version = ?1", &[99i64.into()]));
    assert!(matches!(
        Exports::open_location(&location),
        Err(ExportsError::NewerSchema { version: 99, .. })
    ));
}

#[test]
fn postgres_migrate_copies_each_record_once() {
    let Some((location, _database)) = postgres_database() else {
        return;
    };
    let (_dir, mut sqlite) = temp_journal();
    for _ in 0..5 {
        ok(sqlite.record(&push_to("localhost:5000/app:v1")));
    }
    let mut target = ok(Exports::open_location(&location));
    let first = ok(sqlite.migrate_into(&mut target));
    assert_eq!((first.read, first.added), (5, 5));
    ok(sqlite.mark_deleted(2));
    let again = ok(sqlite.migrate_into(&mut target));
    assert_eq!((again.read, again.added), (5, 0));
    assert_eq!(ok(target.count()), 5);
    assert_eq!(
        ok(target.list(Some(Status::Deleted))).len(),
        1,
        "a change since is carried over"
    );
}
