//! SIGINT and SIGTERM at several points of a multi-destination export
//! (`-o REGISTRY/… -o docker-archive:out/app.tar.gz -o oci:out/layout`):
//!
//! * while a big layer is being compressed (a temp blob is growing in the store);
//! * while a blob is being uploaded (the registry behind a throttling proxy);
//! * between destinations (one registry has the tag, a second, slow one is in flight).
//!
//! Each ends with exit 130 (143 for SIGTERM), one line naming what was
//! reached, a record with status `interrupted` that says the same,
//! `exports delete` removing what was reached (the tag is gone afterwards),
//! and no `.stowage-tmp-*` left, neither by the interrupted run nor, with a
//! killed run's leftovers planted beside the outputs and in the store, after
//! the next build into the same folders. Every wait is bounded.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::rig::proxy::{Action, FaultProxy, Forward};
use crate::rig::registry::TestRegistry;
use crate::rig::*;

const TEMP_PREFIX: &str = ".stowage-tmp-";
/// The longest any wait here may take.
const BOUND: Duration = Duration::from_secs(90);
/// The big workspace file of the compression case: text, so it compresses
/// (about 2:1) and takes seconds, not milliseconds.
const BIG_FILE: u64 = 256 << 20;
/// Upload speed through the throttling proxy: the sample app's library
/// layer (about 1 MiB) takes many seconds.
const SLOW_UPLOAD: u64 = 64 * 1024;

/// A stowage process that is running, its stderr collected on a thread.
struct Running {
    child: Child,
    stderr: Option<JoinHandle<String>>,
    started: Instant,
}

/// Starts `stowage ARGS` in the sandbox, with its cache in `cache/`.
fn start(sb: &Sandbox, args: &[String]) -> Running {
    let mut child = stowage_process(sb, &sb.join("cache"))
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("start stowage");
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    Running {
        child,
        stderr: Some(stderr),
        started: Instant::now(),
    }
}

impl Running {
    /// What the process printed on stderr; waits for it to close its end.
    fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }

    /// Sends `signal` to the process.
    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: kill only sends a signal to our own child process.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill {pid}: {}", std::io::Error::last_os_error());
    }

    /// Waits (bounded) for the end: the exit code, stderr, and how long it ran after `from`.
    fn finish(self, from: Instant) -> (i32, String, Duration) {
        let (status, stderr, took) = self.end(from);
        let code = status
            .code()
            .unwrap_or_else(|| panic!("stowage died of a signal ({status}):\n{stderr}"));
        (code, stderr, took)
    }

    /// Waits (bounded) for the end: how it ended, stderr, and how long it ran after `from`.
    fn end(mut self, from: Instant) -> (ExitStatus, String, Duration) {
        let deadline = self.started + BOUND;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for stowage") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr();
                panic!("stowage still ran after {BOUND:?}; killed it. stderr:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = from.elapsed();
        (status, self.stderr(), took)
    }

    /// Polls `ready` until it holds, while the process runs (bounded).
    fn wait_for(&mut self, what: &str, ready: impl Fn() -> bool) {
        while !ready() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("stowage ended ({status}) before {what}:\n{}", self.stderr());
            }
            assert!(
                self.started.elapsed() < BOUND,
                "{what} did not happen within {BOUND:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `build -f app/stowage.toml -o … -o …`.
fn build_args(spec: &Path, destinations: &[String]) -> Vec<String> {
    let mut args = vec!["build".to_string(), "-f".into(), spec.display().to_string()];
    for d in destinations {
        args.push("-o".into());
        args.push(d.clone());
    }
    args
}

/// `args` for a registry behind a proxy, which speaks plain HTTP only.
fn through_proxy(proxy: &FaultProxy, args: Vec<String>) -> Vec<String> {
    let mut all = vec!["--insecure-registry".to_string(), proxy.addr.clone()];
    all.extend(args);
    all
}

/// The registry destination and the two local ones every case writes.
fn destinations(registry_ref: String) -> Vec<String> {
    vec![
        registry_ref,
        "docker-archive:out/app.tar.gz".into(),
        "oci:out/layout".into(),
    ]
}

/// The one record `exports --status interrupted` lists.
fn interrupted_record(sb: &Sandbox) -> Value {
    let text = run_ok(
        sb.stowage()
            .args(["--json", "exports", "--status", "interrupted"]),
    );
    let records: Vec<Value> = serde_json::from_str(&text).expect("exports JSON");
    assert_eq!(records.len(), 1, "one interrupted export: {text}");
    assert_eq!(records[0]["status"], "interrupted", "{text}");
    records[0].clone()
}

/// Each destination's recorded status, in order.
fn destination_statuses(record: &Value) -> Vec<String> {
    record["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .map(|d| d["status"].as_str().unwrap_or("none").to_string())
        .collect()
}

/// The exit code and the one line of an interrupted export.
fn assert_stopped(code: i32, stderr: &str, signal: &str, reached: &str) {
    let expected = if signal == "SIGINT" { 130 } else { 143 };
    assert_eq!(code, expected, "exit code after {signal}:\n{stderr}");
    let first = format!("stowage: {signal}: stopping at the next safe point");
    assert!(stderr.contains(&first), "the first message:\n{stderr}");
    assert!(
        stderr.contains("ends it at once"),
        "the first message says a second signal ends it:\n{stderr}"
    );
    let last: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&format!("was interrupted by {signal}")))
        .collect();
    assert_eq!(last.len(), 1, "one line says what stopped:\n{stderr}");
    assert!(
        last[0].contains(reached),
        "the line says `{reached}`:\n{stderr}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("error:")),
        "an interrupt is not an error report:\n{stderr}"
    );
}

/// Every `.stowage-tmp-*` under `dir`, at any depth.
fn temp_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            found.push(path.clone());
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(temp_files_under(&path));
        }
    }
    found
}

fn assert_no_temp_files(sb: &Sandbox, when: &str) {
    let left: Vec<PathBuf> = ["out", "cache"]
        .iter()
        .flat_map(|d| temp_files_under(&sb.join(d)))
        .collect();
    assert!(left.is_empty(), "{when}: temp files left: {left:?}");
}

/// Deletes the interrupted export; afterwards the record says deleted.
fn delete_export(sb: &Sandbox, record: &Value) {
    let id = record["id"].as_i64().expect("record id").to_string();
    run_ok(sb.stowage().args(["exports", "delete", &id, "--yes"]));
    let text = run_ok(
        sb.stowage()
            .args(["--json", "exports", "--status", "deleted"]),
    );
    assert!(
        text.contains(&format!("\"id\": {id}")),
        "export {id} is marked deleted: {text}"
    );
}

/// With what a killed run leaves (unlocked temp files, a moment old)
/// planted beside the outputs and in the store, the next build into the
/// same folders succeeds and no temp file is left anywhere.
fn next_build_sweeps(sb: &Sandbox, spec: &Path, destinations: &[String]) {
    let planted = [
        sb.join("out").join(format!("{TEMP_PREFIX}killed-archive")),
        sb.join("cache/tmp")
            .join(format!("{TEMP_PREFIX}killed-blob")),
    ];
    for path in &planted {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::File::create(path)
            .and_then(|mut f| f.write_all(b"half"))
            .unwrap();
    }
    run_ok(stowage_with_cache(&sb.join("cache")).args(build_args(spec, destinations)));
    assert_no_temp_files(sb, "after the next build");
    assert!(sb.join("out/app.tar.gz").is_file() && sb.join("out/layout/index.json").is_file());
}

/// `REPO`, `TAG` of `HOST/REPO:TAG`.
fn repo_and_tag(reference: &str) -> (String, String) {
    let (_, path) = reference.split_once('/').expect("HOST/REPO:TAG");
    let (repo, tag) = path.rsplit_once(':').expect("REPO:TAG");
    (repo.to_string(), tag.to_string())
}

/// A folder with one big text file, made once per target folder (text of
/// pseudo-random words, so it compresses as source code does: neither
/// instantly like zeros nor stored like random bytes).
fn big_workspace() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interrupts-workspace");
    let file = dir.join("big.txt");
    if fs::metadata(&file).is_ok_and(|m| m.len() == BIG_FILE) {
        return dir;
    }
    fs::create_dir_all(&dir).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = Vec::with_capacity(1 << 20);
    while block.len() < (1 << 20) - 16 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = 2 + (state % 8) as usize;
        block.extend((0..len).map(|i| b'a' + ((state >> (i * 5)) % 26) as u8));
        block.push(if state.is_multiple_of(11) {
            b'\n'
        } else {
            b' '
        });
    }
    let partial = dir.join(format!("big.txt.{}", std::process::id()));
    let mut out = std::io::BufWriter::new(fs::File::create(&partial).unwrap());
    let mut written = 0u64;
    let mut n = 0u64;
    while written < BIG_FILE {
        // Each megabyte starts differently, so no chunk repeats another.
        let head = format!("{n:015}\n");
        let take = ((BIG_FILE - written) as usize).min(head.len() + block.len());
        let mut piece = head.into_bytes();
        piece.extend_from_slice(&block);
        out.write_all(&piece[..take]).unwrap();
        written += take as u64;
        n += 1;
    }
    out.flush().unwrap();
    drop(out);
    fs::rename(&partial, &file).unwrap();
    dir
}

/// A registry, and a sandbox with the sample app (its spec returned) and an
/// `out/` folder; None when docker-registry is missing (after `SKIPPED:`).
fn sample_app() -> Option<(TestRegistry, Sandbox, PathBuf)> {
    let registry = TestRegistry::anonymous()?;
    let sb = Sandbox::new();
    let spec = write_app(&sb.mkdir("app"), "localhost/intr/app:1");
    sb.mkdir("out");
    Some((registry, sb, spec))
}

/// Points the spec's workspace `source` from `from` to `to`.
fn set_workspace(spec: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(spec).unwrap();
    let (from, to) = (format!("source = \"{from}\""), format!("source = \"{to}\""));
    assert!(text.contains(&from), "{text}");
    fs::write(spec, text.replace(&from, &to)).unwrap();
}

#[test]
fn sigint_while_a_layer_is_compressed_stops_it_and_records_nothing_reached() {
    let Some((registry, sb, spec)) = sample_app() else {
        return;
    };
    set_workspace(&spec, "workspace", &big_workspace().display().to_string());
    let target = registry.reference(&unique("intr1/app"));
    let dests = destinations(format!("{target}:1"));
    let mut run = start(&sb, &build_args(&spec, &dests));
    // Only the big layer's compressed output grows past 2 MiB.
    let store_tmp = sb.join("cache/tmp");
    run.wait_for("the big layer's compression", || {
        fs::read_dir(&store_tmp).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.metadata().is_ok_and(|m| m.len() > 2 << 20))
        })
    });
    let signalled = Instant::now();
    run.signal(libc::SIGINT);
    let (code, stderr, took) = run.finish(signalled);
    eprintln!("stopped {took:?} after SIGINT, mid-compression");
    assert_stopped(code, &stderr, "SIGINT", "nothing was pushed or written");
    // The layer was never finished: no blob of its size is in the store.
    let big_blobs: Vec<u64> = fs::read_dir(sb.join("cache/blobs/sha256"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .filter(|len| *len > 16 << 20)
        .collect();
    assert!(
        big_blobs.is_empty(),
        "the big layer was finished: {big_blobs:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "stopping took {took:?}:\n{stderr}"
    );
    assert_no_temp_files(&sb, "after the interrupted build");

    let record = interrupted_record(&sb);
    assert_eq!(destination_statuses(&record), ["failed"; 3], "{record:#}");
    assert!(record["digest"].is_null(), "{record:#}");
    delete_export(&sb, &record);
    let (repo, tag) = repo_and_tag(&format!("{target}:1"));
    assert_eq!(registry.manifest_status(&repo, &tag), 404);

    // The next build, with the small workspace again, into the same folders.
    set_workspace(&spec, &big_workspace().display().to_string(), "workspace");
    next_build_sweeps(&sb, &spec, &dests);
}

/// A proxy in front of `registry` on `ip` that sends blob uploads of more
/// than 100 kB up slowly, and tells when the first such upload starts.
fn slow_upload_proxy(ip: &str, registry: &TestRegistry) -> (FaultProxy, Arc<AtomicBool>) {
    let started = Arc::new(AtomicBool::new(false));
    let seen = started.clone();
    let proxy = FaultProxy::start_on(ip, &registry.host, move |req| {
        if req.is_blob_upload() && req.content_length.unwrap_or(0) > 100_000 {
            seen.store(true, Ordering::SeqCst);
            return Action::Forward(Forward {
                throttle_request: Some(SLOW_UPLOAD),
                ..Forward::default()
            });
        }
        Action::forward()
    });
    (proxy, started)
}

#[test]
fn sigint_during_an_upload_cancels_it_and_records_nothing_reached() {
    let Some((registry, sb, spec)) = sample_app() else {
        return;
    };
    let (proxy, upload_started) = slow_upload_proxy("127.0.0.1", &registry);
    let repo = unique("intr2/app");
    let dests = destinations(proxy.reference(&format!("{repo}:1")));
    let mut run = start(&sb, &through_proxy(&proxy, build_args(&spec, &dests)));
    run.wait_for("the library layer's upload", || {
        upload_started.load(Ordering::SeqCst)
    });
    std::thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    run.signal(libc::SIGINT);
    let (code, stderr, took) = run.finish(signalled);
    eprintln!("stopped {took:?} after SIGINT, mid-upload");
    assert_stopped(code, &stderr, "SIGINT", "nothing was pushed or written");
    assert!(
        took < Duration::from_secs(5),
        "a throttled upload stops without waiting for its answer: {took:?}\n{stderr}"
    );
    // The upload session was cancelled, and no manifest was put.
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .any(|s| s.req.method == "DELETE" && s.req.target.contains("/blobs/uploads/")),
        "no DELETE of the upload session:\n{}",
        crate::rig::proxy::summary(&seen)
    );
    assert!(
        !seen.iter().any(|s| s.req.is_manifest_put()),
        "a manifest was put:\n{}",
        crate::rig::proxy::summary(&seen)
    );
    assert_eq!(registry.manifest_status(&repo, "1"), 404);
    assert_no_temp_files(&sb, "after the interrupted build");

    let record = interrupted_record(&sb);
    assert_eq!(destination_statuses(&record), ["failed"; 3], "{record:#}");
    delete_export(&sb, &record);
    let direct = destinations(registry.reference(&format!("{repo}:1")));
    next_build_sweeps(&sb, &spec, &direct);
}

#[test]
fn sigterm_between_destinations_records_the_registry_reached_and_delete_removes_it() {
    let Some((registry, sb, spec)) = sample_app() else {
        return;
    };
    // Registries are pushed in order of their names: 127.0.0.1 (direct, fast)
    // before 127.0.0.2 (the same registry behind a slow proxy).
    let (slow, _) = slow_upload_proxy("127.0.0.2", &registry);
    let repo = unique("intr3/app");
    let mut dests = destinations(registry.reference(&format!("{repo}:1")));
    dests.insert(1, slow.reference(&format!("{repo}-slow:1")));
    let mut run = start(&sb, &through_proxy(&slow, build_args(&spec, &dests)));
    run.wait_for("the tag in the first registry", || {
        registry.manifest_status(&repo, "1") == 200
    });
    let signalled = Instant::now();
    run.signal(libc::SIGTERM);
    let (code, stderr, took) = run.finish(signalled);
    eprintln!("stopped {took:?} after SIGTERM, between destinations");
    let first = registry.reference(&format!("{repo}:1"));
    assert_stopped(code, &stderr, "SIGTERM", &format!("{first} got the image"));
    assert!(
        stderr.contains("recorded as export 1: `stowage exports delete 1 --yes`"),
        "the line names the record and how to undo it:\n{stderr}"
    );
    assert_eq!(registry.manifest_status(&format!("{repo}-slow"), "1"), 404);
    assert_no_temp_files(&sb, "after the interrupted build");

    let record = interrupted_record(&sb);
    assert_eq!(
        destination_statuses(&record),
        ["pushed", "failed", "failed", "failed"],
        "{record:#}"
    );
    assert!(
        record["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{record:#}"
    );
    delete_export(&sb, &record);
    assert_eq!(
        registry.manifest_status(&repo, "1"),
        404,
        "exports delete removed the tag the interrupted export put"
    );
    let direct: Vec<String> = dests
        .iter()
        .filter(|d| !d.contains("-slow"))
        .cloned()
        .collect();
    next_build_sweeps(&sb, &spec, &direct);
}

/// A proxy in front of `registry` that never answers a manifest PUT, and
/// tells when one came: a request in flight that a stop must not cut.
fn stalled_manifest_proxy(registry: &TestRegistry) -> (FaultProxy, Arc<AtomicBool>) {
    let came = Arc::new(AtomicBool::new(false));
    let seen = came.clone();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        if req.is_manifest_put() {
            seen.store(true, Ordering::SeqCst);
            return Action::Stall;
        }
        Action::forward()
    });
    (proxy, came)
}

/// Starts a build whose manifest PUT hangs, and signals it once the PUT is in flight.
fn interrupted_with_a_put_in_flight(
    sb: &Sandbox,
    spec: &Path,
    registry: &TestRegistry,
) -> (Running, Instant, FaultProxy) {
    let (proxy, put) = stalled_manifest_proxy(registry);
    let dests = destinations(proxy.reference(&format!("{}:1", unique("intr4/app"))));
    let mut run = start(sb, &through_proxy(&proxy, build_args(spec, &dests)));
    run.wait_for("the manifest PUT", || put.load(Ordering::SeqCst));
    let signalled = Instant::now();
    run.signal(libc::SIGINT);
    (run, signalled, proxy)
}

#[test]
fn a_second_signal_while_stopping_ends_stowage_at_once() {
    let Some((registry, sb, spec)) = sample_app() else {
        return;
    };
    let (run, signalled, _proxy) = interrupted_with_a_put_in_flight(&sb, &spec, &registry);
    // The first signal waits for the manifest PUT (a tag is put whole or not at all).
    std::thread::sleep(Duration::from_millis(500));
    run.signal(libc::SIGINT);
    let (status, stderr, took) = run.end(signalled);
    assert_eq!(
        status.signal(),
        Some(libc::SIGINT),
        "the second SIGINT ends it as SIGINT does ({status}):\n{stderr}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(stderr.contains("Ctrl-C again ends it at once"), "{stderr}");
}

#[test]
fn a_stop_that_hangs_on_a_request_ends_after_its_grace() {
    let Some((registry, sb, spec)) = sample_app() else {
        return;
    };
    let (run, signalled, _proxy) = interrupted_with_a_put_in_flight(&sb, &spec, &registry);
    let (code, stderr, took) = run.finish(signalled);
    eprintln!("ended {took:?} after SIGINT with a manifest PUT unanswered");
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains("still stopping 10 s after SIGINT") && stderr.contains("unrecorded"),
        "{stderr}"
    );
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(20),
        "the stop's grace is 10 s: {took:?}"
    );
}
