//! The shared export journal on the rig's real PostgreSQL: many workers
//! (stowage processes with stores of their own) exporting, listing and
//! deleting through one database; reservations of a new tag; a worker
//! killed mid-push; `exports migrate`; and a URL's password never shown.

use std::path::PathBuf;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::rig::database::TestDatabase;
use crate::rig::proxy::Proxy;
use crate::rig::registry::{TestRegistry, random_bytes, unique_seed};
use crate::rig::*;

/// A worker: a store and state folder of its own in `sb`, the journal `url`.
struct Worker {
    cache: PathBuf,
    url: String,
    /// `STOWAGE_WORKER`, to stand for another host.
    host: Option<&'static str>,
}

impl Worker {
    fn new(sb: &Sandbox, name: &str, url: &str) -> Worker {
        Worker {
            cache: sb.mkdir(format!("{name}/cache")),
            url: url.to_string(),
            host: None,
        }
    }

    fn command(&self) -> assert_cmd::Command {
        let mut cmd = stowage_with_cache(&self.cache);
        cmd.env("STOWAGE_JOURNAL", &self.url);
        if let Some(host) = self.host {
            cmd.env("STOWAGE_WORKER", host);
        }
        cmd
    }

    fn process(&self, sb: &Sandbox) -> std::process::Command {
        let mut cmd = stowage_process(sb, &self.cache);
        cmd.env("STOWAGE_STATE_DIR", self.cache.with_file_name("state"))
            .env("STOWAGE_JOURNAL", &self.url);
        cmd
    }

    fn records(&self, args: &[&str]) -> Vec<Value> {
        let text = run_ok(
            self.command()
                .args(["--json", "exports", "list"])
                .args(args),
        );
        serde_json::from_str::<Value>(&text)
            .expect("exports list --json prints JSON")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Two workers with stores of their own, one PostgreSQL journal, a registry and the sample app.
struct Shared {
    registry: TestRegistry,
    db: TestDatabase,
    sb: Sandbox,
    spec: PathBuf,
    workers: [Worker; 2],
}

impl Shared {
    fn new() -> Option<Shared> {
        let (Some(registry), Some(db)) = (TestRegistry::anonymous(), TestDatabase::new()) else {
            return None;
        };
        let sb = Sandbox::new();
        let spec = write_app(sb.path(), "unused/name:1");
        let workers = [
            Worker::new(&sb, "a", &db.url),
            Worker::new(&sb, "b", &db.url),
        ];
        Some(Shared {
            registry,
            db,
            sb,
            spec,
            workers,
        })
    }
}

fn wait_all(children: Vec<Child>) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait for stowage"))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn pid_of(record: &Value) -> u64 {
    record["worker"]["pid"]
        .as_u64()
        .expect("the record names its worker")
}

#[test]
fn eight_workers_with_two_stores_share_one_postgres_journal() {
    let Some(Shared {
        registry,
        db: _db,
        sb,
        spec,
        workers,
    }) = Shared::new()
    else {
        return;
    };
    let children: Vec<(usize, Child)> = (0..8)
        .map(|n| {
            let worker = n % 2;
            let child = workers[worker]
                .process(&sb)
                .args(["build", "-f"])
                .arg(&spec)
                .args(["-o", &registry.reference(&format!("e2e/shared-{n}:v1"))])
                .spawn()
                .expect("start stowage");
            (worker, child)
        })
        .collect();
    let mut made_by: Vec<Vec<u64>> = vec![Vec::new(), Vec::new()];
    for (worker, child) in children {
        made_by[worker].push(u64::from(child.id()));
        let out = child.wait_with_output().expect("wait for stowage");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    for worker in &workers {
        let records = worker.records(&[]);
        assert_eq!(records.len(), 8, "every worker sees every export");
        for r in &records {
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(r["destinations"][0]["status"], "pushed", "{r}");
        }
    }
    let records = workers[0].records(&[]);
    let id_of = |r: &Value| r["id"].as_i64().unwrap().to_string();
    // Two deletes of one export at once: one `deleted` record, and neither fails.
    let first = &records[0];
    let both: Vec<Child> = workers
        .iter()
        .map(|w| {
            w.process(&sb)
                .args(["exports", "delete", &id_of(first), "--yes"])
                .spawn()
                .expect("start stowage")
        })
        .collect();
    for out in wait_all(both) {
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Each worker deletes what the other made.
    for r in &records[1..] {
        let maker = usize::from(made_by[1].contains(&pid_of(r)));
        run_ok(
            workers[1 - maker]
                .command()
                .args(["exports", "delete", &id_of(r), "--yes"]),
        );
    }
    let deleted = workers[1].records(&["--status", "deleted"]);
    assert_eq!(deleted.len(), 8);
    let mut ids: Vec<String> = deleted.iter().map(id_of).collect();
    ids.dedup();
    assert_eq!(ids.len(), 8, "one record each");
    for n in 0..8 {
        assert_eq!(
            registry.manifest_status(&format!("e2e/shared-{n}"), "v1"),
            404,
            "tag {n} deleted from the registry"
        );
    }
}

#[test]
fn two_workers_claiming_one_new_tag_exactly_one_pushes() {
    let Some(Shared {
        registry,
        db: _db,
        sb,
        spec,
        workers,
    }) = Shared::new()
    else {
        return;
    };
    let tag = registry.reference("e2e/claimed:v1");
    let children: Vec<Child> = workers
        .iter()
        .map(|w| {
            w.process(&sb)
                .args(["build", "-f"])
                .arg(&spec)
                .args(["-o", &tag])
                .spawn()
                .expect("start stowage")
        })
        .collect();
    let outs = wait_all(children);
    let ok: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
    let refused: Vec<&Output> = outs.iter().filter(|o| !o.status.success()).collect();
    assert_eq!(ok.len(), 1, "exactly one pushes");
    assert_eq!(refused[0].status.code(), Some(1));
    let why = text(&refused[0].stderr);
    assert!(why.contains("is reserved by export"), "{why}");
    let puts = registry
        .access_log()
        .iter()
        .filter(|l| l.method == "PUT" && l.uri.contains("/e2e/claimed/manifests/"))
        .count();
    assert_eq!(puts, 1, "the refused worker pushed no manifest");
    let records = workers[0].records(&[]);
    let statuses: Vec<&str> = records
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "ok").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == "failed").count(),
        1,
        "{statuses:?}"
    );
}

/// A proxy to `registry` whose address sorts after the registry's own, so
/// stowage (which pushes registries in order) pushes there second.
fn slow_proxy_after(registry: &TestRegistry) -> Proxy {
    loop {
        let proxy = Proxy::start(&registry.host, Some(64 * 1024));
        if proxy.host > registry.host {
            return proxy;
        }
    }
}

#[test]
fn a_worker_killed_mid_push_shows_interrupted_and_delete_removes_what_it_pushed() {
    let (Some(registry), Some(db)) = (TestRegistry::anonymous(), TestDatabase::new()) else {
        return;
    };
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "unused/name:1");
    write_file(
        &sb.join("library/share/noise.bin"),
        random_bytes(unique_seed(), 4 << 20),
        0o644,
    );
    let proxy = slow_proxy_after(&registry);
    let here = Worker::new(&sb, "a", &db.url);
    let mut elsewhere = Worker::new(&sb, "b", &db.url);
    elsewhere.host = Some("another-host");
    let first = registry.reference("e2e/killed:v1");
    let second = proxy.reference("e2e/killed-slow:v1");
    let mut child = here
        .process(&sb)
        .env("STOWAGE_JOURNAL_LEASE", "5")
        .args(["build", "-f"])
        .arg(&spec)
        .args(["-o", &first, "-o", &second])
        .spawn()
        .expect("start stowage");
    let started = Instant::now();
    while proxy.up_bytes() < 256 * 1024 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the slow push never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        registry.manifest_status("e2e/killed", "v1"),
        200,
        "the first tag is pushed"
    );
    child.kill().expect("kill -9 the worker");
    child.wait().expect("reap it");

    let interrupted = here.records(&["--status", "interrupted"]);
    assert_eq!(interrupted.len(), 1, "same host: interrupted at once");
    let record = &interrupted[0];
    assert_eq!(record["destinations"][0]["status"], "pushed", "{record}");
    assert!(record["digest"].is_string(), "{record}");
    let running = elsewhere.records(&["--status", "running"]);
    assert_eq!(
        running.len(),
        1,
        "another host trusts the lease until it ends"
    );
    // The lease (5 s, whole seconds) runs out at most 6 s after its last renewal.
    let killed = Instant::now();
    while !elsewhere.records(&["--status", "running"]).is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the lease never ran out"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        killed.elapsed() >= Duration::from_secs(1),
        "not before the lease ran out"
    );
    assert_eq!(elsewhere.records(&["--status", "interrupted"]).len(), 1);

    let id = record["id"].as_i64().unwrap().to_string();
    run_ok(
        elsewhere
            .command()
            .args(["exports", "delete", &id, "--yes"]),
    );
    assert_eq!(
        registry.manifest_status("e2e/killed", "v1"),
        404,
        "what it pushed is gone"
    );
    assert_eq!(registry.manifest_status("e2e/killed-slow", "v1"), 404);
    assert_eq!(here.records(&["--status", "deleted"]).len(), 1);
}

/// A SQLite journal with `count` records: one real export, copied.
fn sqlite_journal_with(sb: &Sandbox, worker: &Worker, count: usize) -> PathBuf {
    let spec = write_app(sb.path(), "unused/name:1");
    let layout = sb.join("out");
    let journal = worker.cache.with_file_name("journal.sqlite3");
    run_ok(
        stowage_with_cache(&worker.cache)
            .args(["--journal", &format!("sqlite:{}", journal.display())])
            .args(["build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}", layout.display())),
    );
    let conn = rusqlite::Connection::open(&journal).expect("open the SQLite journal");
    for _ in 1..count {
        conn.execute_batch(
            "INSERT INTO exports (time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, notes)
             SELECT time, kind, spec, sources, destinations, digest, size, status, error, run_command, secret_names, notes FROM exports WHERE id = 1",
        )
        .expect("copy the record");
    }
    journal
}

fn postgres_count(db: &TestDatabase) -> i64 {
    db.client()
        .query_one("SELECT count(*) FROM exports", &[])
        .expect("count the records")
        .get(0)
}

#[test]
fn migrate_of_a_hundred_records_twice_leaves_a_hundred() {
    let Some(db) = TestDatabase::new() else {
        return;
    };
    let sb = Sandbox::new();
    let worker = Worker::new(&sb, "a", &db.url);
    let journal = sqlite_journal_with(&sb, &worker, 100);
    for _ in 0..2 {
        run_ok(
            stowage_with_cache(&worker.cache)
                .args(["--journal", &format!("sqlite:{}", journal.display())])
                .args(["exports", "migrate", "--to", &db.url]),
        );
        assert_eq!(postgres_count(&db), 100);
    }
    let records = worker.records(&["--status", "ok", "--limit", "10"]);
    assert_eq!(records.len(), 10);
    assert_eq!(records[9]["id"], 100, "the newest ten, oldest first");
}

fn assert_hidden(password: &str, what: &str, text: &str) {
    assert!(
        !text.contains(password),
        "{what} shows the password: {text}"
    );
}

#[test]
fn a_journal_url_password_is_never_printed_or_recorded() {
    let Some(db) = TestDatabase::new() else {
        return;
    };
    let sb = Sandbox::new();
    let spec = write_app(sb.path(), "unused/name:1");
    let worker = Worker::new(&sb, "a", &db.url);
    let out = worker
        .command()
        .args(["-vvv", "build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}", sb.join("out").display()))
        .assert()
        .success()
        .get_output()
        .clone();
    let log = text(&out.stderr);
    assert!(
        log.contains("postgresql://stowage:***@"),
        "-vv names the journal: {log}"
    );
    assert_hidden(&db.password, "stdout", &text(&out.stdout));
    assert_hidden(&db.password, "-vvv", &log);
    let listed = run_ok(worker.command().args(["--json", "exports", "list"]));
    assert_hidden(&db.password, "the record", &listed);
    let stored: String = db
        .client()
        .query_one("SELECT string_agg(exports::text, ' ') FROM exports", &[])
        .expect("read the rows")
        .get(0);
    assert_hidden(&db.password, "the stored row", &stored);

    // A wrong password: the error names the journal, never the password.
    let wrong = db.url.replace(&db.password, "Wr0ngPassw0rdX");
    let out = worker
        .command()
        .args(["--journal", &wrong, "exports", "list"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let error = text(&out.stderr);
    assert!(
        error.contains("postgresql://stowage:***@127.0.0.1"),
        "{error}"
    );
    assert_hidden("Wr0ngPassw0rdX", "the error", &error);

    // No password in the URL: PGPASSWORD, then ~/.pgpass, as libpq reads them.
    let bare = db.url_without_password();
    run_ok(worker.command().env("PGPASSWORD", &db.password).args([
        "--journal",
        &bare,
        "exports",
        "list",
    ]));
    let home = sb.mkdir("home");
    let pgpass = home.join(".pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:*:*:stowage:{}\n", db.password)).unwrap();
    let listed = run_ok(
        worker
            .command()
            .env("HOME", &home)
            .env_remove("PGPASSWORD")
            .args(["--json", "--journal", &bare, "exports", "list"]),
    );
    assert!(listed.contains("\"status\": \"ok\""), "{listed}");
}
