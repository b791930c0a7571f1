//! Network faults on pull and push, injected by a proxy between stowage and
//! a real `docker-registry`: a connection reset mid-blob, 500 then success,
//! 429 with Retry-After (the wait is measured), a token that expires
//! mid-push, a server that stalls, and the registry killed and restarted
//! mid-push. Each push completes and skopeo reads the same digest from the
//! registry; when retries run out, the error names the blob and the cause.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;

use crate::rig::proxy::{Action, FaultProxy, Forward, Seen, summary};
use crate::rig::registry::FaultRegistry as Registry;
use crate::rig::registry::random_bytes;
use crate::rig::*;

/// A built sample image in an OCI layout, and what a registry must end up with.
struct Built {
    sb: Sandbox,
    /// `oci:DIR:v1`.
    source: String,
    digest: String,
    /// The layer digests, largest first (the blobs worth cutting: the config is tiny).
    layers: Vec<String>,
}

fn built() -> Built {
    built_with_big_file(0)
}

/// `built()`, with a file of `size` random bytes in the library (none for
/// 0), so one layer can be larger than what loopback socket buffers hold.
fn built_with_big_file(size: usize) -> Built {
    let sb = Sandbox::new();
    let spec = write_app(&sb.mkdir("app"), "localhost/stowage-e2e/faults:1");
    if size > 0 {
        write_file(
            &sb.join("app/library/data/weights.bin"),
            random_bytes(0x5eed, size),
            0o644,
        );
    }
    let layout = sb.join("layout");
    let out = run_ok(
        sb.stowage()
            .args(["-q", "build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:v1", layout.display())),
    );
    let digest = parse_printed(&out).digest;
    let image = Layout::open(&layout).image("v1");
    let mut sized: Vec<(u64, String)> = image
        .layers()
        .iter()
        .map(|l| {
            (
                l["size"].as_u64().unwrap(),
                l["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    sized.sort_by_key(|l| std::cmp::Reverse(l.0));
    let layers = sized.into_iter().map(|(_, digest)| digest).collect();
    Built {
        sb,
        source: format!("oci:{}:v1", layout.display()),
        digest,
        layers,
    }
}

impl Built {
    /// `stowage push` of the image to `addr/faults/app:v1`, with `extra` global flags.
    fn push(&self, addr: &str, extra: &[&str]) -> std::process::Output {
        self.sb
            .stowage()
            .args(["--insecure-registry", addr])
            .args(extra)
            .args(["push", &self.source, &format!("{addr}/faults/app:v1")])
            .output()
            .expect("run stowage")
    }
}

fn assert_ok(out: &std::process::Output, seen: &[Seen]) -> String {
    let stderr = show(&out.stderr);
    assert!(
        out.status.success(),
        "stowage failed:\n{stderr}\nthe proxy saw:\n{}",
        summary(seen)
    );
    show(&out.stdout)
}

fn assert_pushed(built: &Built, registry: &Registry, out: &std::process::Output, seen: &[Seen]) {
    let stdout = assert_ok(out, seen);
    assert_eq!(parse_printed(&stdout).digest, built.digest);
    assert_eq!(registry.skopeo_digest("faults/app:v1"), built.digest);
}

/// A rule state: how many times something happened.
fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[test]
fn push_survives_a_connection_reset_mid_blob() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let built = built();
    let cuts = counter();
    let c = cuts.clone();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        let big = req.content_length.unwrap_or(0) > 200_000;
        if req.is_blob_upload() && big && c.fetch_add(1, Ordering::SeqCst) < 2 {
            return Action::Forward(Forward {
                reset_after_request_bytes: Some(64 * 1024),
                ..Forward::default()
            });
        }
        Action::forward()
    });
    let out = built.push(&proxy.addr, &["-v"]);
    let seen = proxy.seen();
    assert_pushed(&built, &registry, &out, &seen);
    assert!(cuts.load(Ordering::SeqCst) >= 3, "{}", summary(&seen));
}

#[test]
fn pull_survives_a_connection_reset_mid_blob() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let built = built();
    assert_ok(&built.push(&registry.host, &[]), &[]);
    let cuts = counter();
    let c = cuts.clone();
    let layers = built.layers.clone();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        let layer = layers.iter().any(|l| req.target.contains(l.as_str()));
        if req.is_blob_get() && layer && c.fetch_add(1, Ordering::SeqCst) < 2 {
            return Action::Forward(Forward {
                reset_after_response_bytes: Some(100_000),
                ..Forward::default()
            });
        }
        Action::forward()
    });
    let archive = built.sb.join("pulled.tar");
    let out = Sandbox::new()
        .stowage()
        .args(["--insecure-registry", &proxy.addr, "archive"])
        .arg(format!("{}/faults/app:v1", proxy.addr))
        .arg("-o")
        .arg(&archive)
        .output()
        .unwrap();
    let seen = proxy.seen();
    let stdout = assert_ok(&out, &seen);
    assert_eq!(parse_printed(&stdout).digest, built.digest);
    assert!(cuts.load(Ordering::SeqCst) >= 3, "{}", summary(&seen));
    let read = DockerArchive::open(&archive);
    assert_eq!(read.repo_tags().len(), 1);
}

#[test]
fn server_errors_then_success() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let built = built();
    let (blobs, manifests) = (counter(), counter());
    let proxy = FaultProxy::start(&registry.host, move |req| {
        // The first two blob uploads and the first manifest PUT fail with 500.
        if req.is_blob_upload() && blobs.fetch_add(1, Ordering::SeqCst) < 2 {
            return Action::status(500);
        }
        if req.is_manifest_put() && manifests.fetch_add(1, Ordering::SeqCst) == 0 {
            return Action::status(500);
        }
        Action::forward()
    });
    let out = built.push(&proxy.addr, &[]);
    let seen = proxy.seen();
    assert_pushed(&built, &registry, &out, &seen);
    assert!(
        seen.iter().filter(|s| s.status == Some(500)).count() >= 2,
        "{}",
        summary(&seen)
    );
}

#[test]
fn retry_after_is_honoured() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let built = built();
    let limited = counter();
    let l = limited.clone();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        if req.is_manifest_put() && l.fetch_add(1, Ordering::SeqCst) == 0 {
            return Action::Respond {
                status: 429,
                headers: vec![("Retry-After".into(), "2".into())],
                body: br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_vec(),
            };
        }
        Action::forward()
    });
    let out = built.push(&proxy.addr, &[]);
    let seen = proxy.seen();
    assert_pushed(&built, &registry, &out, &seen);
    let puts: Vec<&Seen> = seen.iter().filter(|s| s.req.is_manifest_put()).collect();
    assert_eq!(puts.len(), 2, "{}", summary(&seen));
    assert_eq!(puts[0].status, Some(429));
    let waited = puts[1].at.duration_since(puts[0].at);
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(10),
        "Retry-After: 2 should make stowage wait 2 s, it waited {waited:?}"
    );
}

/// Writes a config.json (where the sandbox's stowage reads it) with credentials for `host`.
fn write_credentials(sb: &Sandbox, host: &str, user: &str, password: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let doc = json!({"auths": {host: {"auth": auth}}});
    let dir = sb.mkdir("docker-config");
    std::fs::write(dir.join("config.json"), doc.to_string()).unwrap();
}

#[test]
fn an_expired_token_is_fetched_again_mid_push() {
    // Tokens really live 3 s but say 300 s, so stowage keeps using one
    // until the registry refuses it, as after clock skew or a revocation.
    let Some(registry) = Registry::token("pusher", "pw-expiry-test", Duration::from_secs(3), 300)
    else {
        return;
    };
    let built = built();
    let delayed = counter();
    let d = delayed.clone();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        if req.is_manifest_put() && d.fetch_add(1, Ordering::SeqCst) == 0 {
            // The token is checked when the request arrives: 4 s late, it has expired.
            return Action::Forward(Forward {
                delay: Some(Duration::from_secs(4)),
                ..Forward::default()
            });
        }
        Action::forward()
    });
    write_credentials(&built.sb, &proxy.addr, "pusher", "pw-expiry-test");
    let out = built.push(&proxy.addr, &["-v"]);
    let seen = proxy.seen();
    assert_pushed(&built, &registry, &out, &seen);
    let puts: Vec<&Seen> = seen.iter().filter(|s| s.req.is_manifest_put()).collect();
    assert_eq!(
        puts.iter().map(|s| s.status).collect::<Vec<_>>(),
        [Some(401), Some(201)],
        "{}",
        summary(&seen)
    );
    assert!(puts[0].req.authorization.is_some());
    assert_ne!(
        puts[0].req.authorization, puts[1].req.authorization,
        "a new token is used after the 401"
    );
}

#[test]
fn a_stalled_registry_times_out_and_the_push_retries() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let built = built();
    let stalls = counter();
    let s = stalls.clone();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        if req.is_manifest_put() && s.fetch_add(1, Ordering::SeqCst) == 0 {
            return Action::Stall;
        }
        Action::forward()
    });
    let started = Instant::now();
    let out = built.push(&proxy.addr, &["--timeout", "2"]);
    let took = started.elapsed();
    let seen = proxy.seen();
    assert_pushed(&built, &registry, &out, &seen);
    assert_eq!(stalls.load(Ordering::SeqCst), 2, "{}", summary(&seen));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(30),
        "a 2 s timeout, then a retry: took {took:?}"
    );
}

#[test]
fn an_upload_the_registry_stops_reading_is_cut_after_the_timeout() {
    // 48 MiB: more than the socket buffers of both ends hold, so the upload
    // stalls with bytes unsent behind a zero window. Its deadline is the
    // timeout plus the size at 64 KiB/s (over 12 minutes); TCP_USER_TIMEOUT
    // cuts the connection 3 s into the stall instead (without it, this test
    // took 33 s: the proxy gives up first). The registry keeps the 1 MiB it
    // got, so the retry must open a new upload session, not resend to the
    // old one.
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let built = built_with_big_file(48 << 20);
    let stalls = counter();
    let s = stalls.clone();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        let big = req.content_length.unwrap_or(0) > 40 << 20;
        if req.is_blob_upload() && big && s.fetch_add(1, Ordering::SeqCst) == 0 {
            return Action::Forward(Forward {
                stall_after_request_bytes: Some(1 << 20),
                ..Forward::default()
            });
        }
        Action::forward()
    });
    let started = Instant::now();
    let out = built.push(&proxy.addr, &["--timeout", "3"]);
    let took = started.elapsed();
    let seen = proxy.seen();
    assert_pushed(&built, &registry, &out, &seen);
    assert_eq!(stalls.load(Ordering::SeqCst), 2, "{}", summary(&seen));
    assert!(
        took < Duration::from_secs(20),
        "cut about 3 s into the stall and retried on a new session: took {took:?}"
    );
}

#[test]
fn a_download_that_stalls_mid_blob_times_out_and_is_fetched_again() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let built = built();
    assert_ok(&built.push(&registry.host, &[]), &[]);
    let stalls = counter();
    // The largest layer: a small one could end before the stall point.
    let (s, layers) = (stalls.clone(), built.layers[..1].to_vec());
    let proxy = FaultProxy::start(&registry.host, move |req| {
        let layer = layers.iter().any(|l| req.target.contains(l.as_str()));
        if req.is_blob_get() && layer && s.fetch_add(1, Ordering::SeqCst) == 0 {
            return Action::Forward(Forward {
                stall_after_response_bytes: Some(100_000),
                ..Forward::default()
            });
        }
        Action::forward()
    });
    let archive = built.sb.join("pulled.tar.gz");
    let started = Instant::now();
    let out = Sandbox::new()
        .stowage()
        .args([
            "--insecure-registry",
            &proxy.addr,
            "--timeout",
            "2",
            "archive",
        ])
        .arg(format!("{}/faults/app:v1", proxy.addr))
        .arg("-o")
        .arg(&archive)
        .output()
        .unwrap();
    let took = started.elapsed();
    let seen = proxy.seen();
    let stdout = assert_ok(&out, &seen);
    assert_eq!(parse_printed(&stdout).digest, built.digest);
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(stalls.load(Ordering::SeqCst) >= 2, "{}", summary(&seen));
}

#[test]
fn the_registry_killed_and_restarted_mid_push() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let host = registry.host.clone();
    let registry = Arc::new(Mutex::new(registry));
    let built = built();
    let kills = counter();
    let (k, reg) = (kills.clone(), registry.clone());
    let proxy = FaultProxy::start(&host, move |req| {
        let big = req.content_length.unwrap_or(0) > 200_000;
        if req.is_blob_upload() && big && k.fetch_add(1, Ordering::SeqCst) == 0 {
            // Kill it while the layer's bytes flow (slowed to 1 MiB/s), bring it back a second later.
            let reg = reg.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                let mut registry = reg.lock().unwrap();
                registry.kill();
                std::thread::sleep(Duration::from_millis(1000));
                registry.restart();
            });
            return Action::Forward(Forward {
                throttle_request: Some(1024 * 1024),
                ..Forward::default()
            });
        }
        Action::forward()
    });
    let out = built.push(&proxy.addr, &["-v"]);
    let seen = proxy.seen();
    let registry = registry.lock().unwrap();
    assert_pushed(&built, &registry, &out, &seen);
    assert!(
        seen.iter().any(|s| s.status.is_none()),
        "some request was cut by the kill:\n{}",
        summary(&seen)
    );
}

#[test]
fn when_retries_run_out_the_error_names_the_blob_and_the_cause() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let built = built();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        if req.is_blob_upload() && req.content_length.unwrap_or(0) > 200_000 {
            return Action::Forward(Forward {
                reset_after_request_bytes: Some(64 * 1024),
                ..Forward::default()
            });
        }
        Action::forward()
    });
    let out = built.push(&proxy.addr, &["--retries", "2"]);
    assert!(!out.status.success());
    let stderr = show(&out.stderr);
    let names_a_layer = |stderr: &str| built.layers.iter().any(|l| stderr.contains(l.as_str()));
    assert!(names_a_layer(&stderr), "names the blob:\n{stderr}");
    assert!(stderr.contains("gave up after 3 attempts"), "{stderr}");
    assert!(
        stderr.contains("the connection broke off"),
        "names the cause:\n{stderr}"
    );
    assert!(out.stdout.is_empty());

    // A pull whose every layer download breaks off.
    assert_ok(&built.push(&registry.host, &[]), &[]);
    let layers = built.layers.clone();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        if req.is_blob_get() && layers.iter().any(|l| req.target.contains(l.as_str())) {
            return Action::Forward(Forward {
                reset_after_response_bytes: Some(100_000),
                ..Forward::default()
            });
        }
        Action::forward()
    });
    let archive: PathBuf = built.sb.join("never.tar");
    let out = Sandbox::new()
        .stowage()
        .args([
            "--insecure-registry",
            &proxy.addr,
            "--retries",
            "1",
            "archive",
        ])
        .arg(format!("{}/faults/app:v1", proxy.addr))
        .arg("-o")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = show(&out.stderr);
    assert!(names_a_layer(&stderr), "names the blob:\n{stderr}");
    assert!(stderr.contains("broke off"), "names the cause:\n{stderr}");
    assert!(!archive.exists());
}

#[test]
fn a_manifest_refused_for_an_unknown_blob_is_put_again_after_the_blobs_are_checked() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let built = built();
    let refusals = counter();
    let r = refusals.clone();
    // What distribution answers while a second upload of a named blob is being committed.
    let proxy = FaultProxy::start(&registry.host, move |req| {
        if req.is_manifest_put() && r.fetch_add(1, Ordering::SeqCst) < 2 {
            return Action::Respond {
                status: 400,
                headers: Vec::new(),
                body: br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#.to_vec(),
            };
        }
        Action::forward()
    });
    let out = built.push(&proxy.addr, &["-v"]);
    let seen = proxy.seen();
    assert_pushed(&built, &registry, &out, &seen);
    let stderr = show(&out.stderr);
    assert_eq!(
        stderr.matches("pushing what is missing").count(),
        2,
        "{stderr}"
    );
    let puts = seen.iter().filter(|s| s.req.is_manifest_put()).count();
    let heads = seen.iter().filter(|s| s.req.method == "HEAD").count();
    assert_eq!(puts, 3, "{}", summary(&seen));
    assert!(
        heads >= 3 * 2,
        "each retry checks the blobs again: {}",
        summary(&seen)
    );
}
