//! Hostile inputs: archives from strangers and registries that lie. Each
//! gets a clear error (exit 1, `error:` on stderr, nothing on stdout) and
//! writes nothing: the destination does not appear.
//!
//! Archives: members named with `..` or an absolute path, symlinks and hard
//! links that escape or loop, descriptors that lie about sizes or claim
//! gigabytes, blobs whose bytes do not match their digest, malformed JSON.
//! Registries (through the fault proxy in front of a real one): a garbage
//! `WWW-Authenticate`, a corrupted or oversized blob, a gigabyte config
//! claim, a malformed manifest, and redirects to another host, which must
//! never see the credentials.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::rig::proxy::{Action, FaultProxy, Forward, summary};
use crate::rig::registry::FaultRegistry as Registry;
use crate::rig::*;

/// One tar member, written byte for byte (tar's own setters refuse `..`).
enum Member<'a> {
    File(&'a str, Vec<u8>),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

fn raw_tar(members: &[Member<'_>]) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    for member in members {
        let mut header = tar::Header::new_old();
        header.set_mode(0o644);
        header.set_mtime(1);
        let (name, data): (&str, &[u8]) = match member {
            Member::File(name, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                (name, data)
            }
            Member::Symlink(name, target) | Member::HardLink(name, target) => {
                header.set_entry_type(if matches!(member, Member::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                (name, &[][..])
            }
        };
        header.set_size(data.len() as u64);
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        out.append(&header, data).unwrap();
    }
    out.into_inner().unwrap()
}

/// A valid one-image docker-archive's members (Docker 25 style: index.json
/// and manifest.json), to be spoiled by each test.
struct Parts {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Value,
}

impl Parts {
    fn new() -> Parts {
        let layer = gzip(&make_layer(&["etc"], &[("etc/hello", b"hello\n", 0o644)]));
        let tar = decompress(&layer);
        let config = serde_json::to_vec(&base_config("amd64", &[&tar])).unwrap();
        let manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(&config), "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(&layer), "size": layer.len()}],
        });
        Parts {
            layer,
            config,
            manifest,
        }
    }

    fn blob(bytes: &[u8]) -> String {
        format!("blobs/sha256/{}", sha256_hex(bytes))
    }

    /// index.json for `manifest` (its bytes and its declared size).
    fn index(manifest: &[u8], size: u64) -> Vec<u8> {
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": sha256_digest(manifest), "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }]}))
        .unwrap()
    }

    /// The archive's members with this manifest.
    fn archive(&self, manifest: &Value) -> Vec<(String, Vec<u8>)> {
        let manifest = serde_json::to_vec(manifest).unwrap();
        vec![
            (Parts::blob(&self.layer), self.layer.clone()),
            (Parts::blob(&self.config), self.config.clone()),
            (Parts::blob(&manifest), manifest.clone()),
            (
                "index.json".into(),
                Parts::index(&manifest, manifest.len() as u64),
            ),
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
        ]
    }
}

fn tar_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    raw_tar(
        &members
            .iter()
            .map(|(n, d)| Member::File(n, d.clone()))
            .collect::<Vec<_>>(),
    )
}

/// Runs `stowage copy SOURCE oci:OUT:t`; it must fail cleanly and write nothing. Returns stderr.
fn copy_fails(sb: &Sandbox, source: &str) -> String {
    let out_dir = sb.join("out");
    let out = sb
        .stowage()
        .args(["copy", source])
        .arg(format!("oci:{}:t", out_dir.display()))
        .output()
        .unwrap();
    let stderr = show(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{source}:\n{stderr}");
    assert!(out.stdout.is_empty(), "{source}: stdout must stay empty");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !out_dir.exists(),
        "{source}: the destination must not appear"
    );
    let strays: Vec<_> = fs::read_dir(sb.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".stowage-tmp-"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
    stderr
}

fn write(sb: &Sandbox, name: &str, bytes: &[u8]) -> PathBuf {
    let path = sb.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

fn says(stderr: &str, needle: &str) {
    assert!(
        stderr.to_lowercase().contains(&needle.to_lowercase()),
        "stderr should say {needle:?}:\n{stderr}"
    );
}

#[test]
fn members_named_outside_the_archive_are_refused() {
    let sb = Sandbox::new();
    for (i, name) in ["../escape", "/etc/passwd", "blobs/../../x", "./../y"]
        .iter()
        .enumerate()
    {
        let bytes = raw_tar(&[Member::File(name, b"x".to_vec())]);
        for transport in ["docker-archive", "oci-archive"] {
            let path = write(&sb, &format!("evil-{i}.tar"), &bytes);
            let stderr = copy_fails(&sb, &format!("{transport}:{}", path.display()));
            says(&stderr, "absolute path or `..`");
        }
    }
}

#[test]
fn links_that_escape_or_loop_are_refused() {
    let sb = Sandbox::new();
    let parts = Parts::new();
    let layer_member = "aaa/layer.tar";
    let classic = |links: Vec<Member<'static>>, layers: &[&str]| {
        let manifest = serde_json::to_vec(&json!([{
            "Config": "config.json", "RepoTags": ["evil:1"], "Layers": layers,
        }]))
        .unwrap();
        let tar = decompress(&parts.layer);
        let mut members = vec![
            Member::File(layer_member, tar),
            Member::File("config.json", parts.config.clone()),
            Member::File("manifest.json", manifest),
        ];
        members.extend(links);
        raw_tar(&members)
    };
    let escaping = [
        Member::Symlink("bbb/layer.tar", "../../../etc/passwd"),
        Member::Symlink("bbb/layer.tar", "/etc/passwd"),
        Member::HardLink("bbb/layer.tar", "../outside"),
        Member::HardLink("bbb/layer.tar", "/etc/shadow"),
    ];
    for (i, link) in escaping.into_iter().enumerate() {
        let path = write(
            &sb,
            &format!("link-{i}.tar"),
            &classic(vec![link], &["bbb/layer.tar"]),
        );
        let stderr = copy_fails(&sb, &format!("docker-archive:{}", path.display()));
        says(&stderr, "points outside the archive");
    }
    let looping = vec![
        Member::Symlink("a/layer.tar", "../b/layer.tar"),
        Member::Symlink("b/layer.tar", "../a/layer.tar"),
    ];
    let path = write(&sb, "loop.tar", &classic(looping, &["a/layer.tar"]));
    let stderr = copy_fails(&sb, &format!("docker-archive:{}", path.display()));
    says(&stderr, "not in the archive");
}

#[test]
fn descriptors_that_lie_about_sizes_are_refused() {
    let sb = Sandbox::new();
    let parts = Parts::new();
    // The layer is declared a byte shorter than it is.
    let mut manifest = parts.manifest.clone();
    manifest["layers"][0]["size"] = json!(parts.layer.len() - 1);
    let path = write(&sb, "short.tar", &tar_of(&parts.archive(&manifest)));
    let stderr = copy_fails(&sb, &format!("oci-archive:{}", path.display()));
    says(&stderr, "bytes are declared");

    // index.json declares the manifest a byte longer than it is.
    let manifest = serde_json::to_vec(&parts.manifest).unwrap();
    let mut members = parts.archive(&parts.manifest);
    members[3].1 = Parts::index(&manifest, manifest.len() as u64 + 1);
    let path = write(&sb, "index-lie.tar", &tar_of(&members));
    let stderr = copy_fails(&sb, &format!("docker-archive:{}", path.display()));
    says(&stderr, "declared");

    // The same lies in an oci: layout folder.
    let layout = sb.join("layout");
    for (name, bytes) in parts.archive(&parts.manifest) {
        write_file(&layout.join(&name), &bytes, 0o644);
    }
    let mut index: Value = read_json(&layout.join("index.json"));
    index["manifests"][0]["size"] = json!(manifest.len() + 7);
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    let stderr = copy_fails(&sb, &format!("oci:{}:v1", layout.display()));
    says(&stderr, "bytes were expected");
}

#[test]
fn gigabyte_claims_are_refused_before_reading() {
    let sb = Sandbox::new();
    let parts = Parts::new();
    let manifest = serde_json::to_vec(&parts.manifest).unwrap();
    let mut members = parts.archive(&parts.manifest);
    members[3].1 = Parts::index(&manifest, 5_000_000_000);
    let path = write(&sb, "huge-manifest.tar", &tar_of(&members));
    let stderr = copy_fails(&sb, &format!("oci-archive:{}", path.display()));
    says(&stderr, "claims 5000000000 bytes");

    let mut huge_config = parts.manifest.clone();
    huge_config["config"]["size"] = json!(7_000_000_000u64);
    let path = write(
        &sb,
        "huge-config.tar",
        &tar_of(&parts.archive(&huge_config)),
    );
    let stderr = copy_fails(&sb, &format!("oci-archive:{}", path.display()));
    says(&stderr, "claims 7000000000 bytes");

    // A member whose tar header claims 8 GiB, in an archive that ends long before.
    let mut bytes = raw_tar(&[Member::File("index.json", b"{}".to_vec())]);
    let mut header = tar::Header::new_old();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(8 << 30);
    header.as_old_mut().name[..7].copy_from_slice(b"big.bin");
    header.set_cksum();
    let end = bytes.len() - 1024;
    bytes.splice(end..end, header.as_bytes().iter().copied());
    bytes.extend_from_slice(&[0u8; 4096]);
    let path = write(&sb, "huge-member.tar", &bytes);
    let stderr = copy_fails(&sb, &format!("docker-archive:{}", path.display()));
    says(&stderr, "truncated");
}

#[test]
fn blobs_that_do_not_match_their_digest_are_refused() {
    let sb = Sandbox::new();
    let parts = Parts::new();
    let mut members = parts.archive(&parts.manifest);
    // The layer member keeps its name but its bytes are another layer's.
    members[0].1 = gzip(&make_layer(&["etc"], &[("etc/hello", b"HELLO\n", 0o644)]));
    let path = write(&sb, "swapped.tar", &tar_of(&members));
    let stderr = copy_fails(&sb, &format!("oci-archive:{}", path.display()));
    says(&stderr, "digest");
    says(&stderr, "tampered");

    let layout = sb.join("layout");
    for (name, bytes) in parts.archive(&parts.manifest) {
        write_file(&layout.join(&name), &bytes, 0o644);
    }
    let victim = layout.join(Parts::blob(&parts.config));
    let mut config = fs::read(&victim).unwrap();
    config[10] ^= 0x20;
    fs::write(&victim, &config).unwrap();
    let stderr = copy_fails(&sb, &format!("oci:{}:v1", layout.display()));
    says(&stderr, "digest");
}

#[test]
fn malformed_json_is_refused() {
    let sb = Sandbox::new();
    let parts = Parts::new();
    for (which, garbage) in [
        (3, b"{\"schemaVersion\": 2, \"manifests\": [".to_vec()),
        (3, b"\xff\xfe not json".to_vec()),
        (3, b"{\"schemaVersion\": 2, \"manifests\": 7}".to_vec()),
        (2, b"[[[[[[[[[[".to_vec()),
    ] {
        let mut members = parts.archive(&parts.manifest);
        if which == 2 {
            // A manifest blob of garbage, named by its own digest, so only the parse can fail.
            members[2] = (Parts::blob(&garbage), garbage.clone());
            members[3].1 = Parts::index(&garbage, garbage.len() as u64);
        } else {
            members[which].1 = garbage;
        }
        let path = write(&sb, "garbage.tar", &tar_of(&members));
        let stderr = copy_fails(&sb, &format!("oci-archive:{}", path.display()));
        says(&stderr, "json");
    }
    let classic = raw_tar(&[Member::File(
        "manifest.json",
        b"[{\"Config\": 12}]".to_vec(),
    )]);
    let path = write(&sb, "classic-garbage.tar", &classic);
    let stderr = copy_fails(&sb, &format!("docker-archive:{}", path.display()));
    says(&stderr, "manifest.json is not valid");
}

// ---------------------------------------------------------------------------
// Registries that lie

/// An image pushed to `registry` by stowage, and the manifest it has there.
fn pushed(sb: &Sandbox, registry: &Registry) -> (String, Value) {
    let spec = write_app(&sb.mkdir("app"), "localhost/stowage-e2e/hostile:1");
    let layout = sb.join("layout");
    run_ok(
        sb.stowage()
            .args(["-q", "--insecure-registry", &registry.host, "build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:v1", layout.display()))
            .arg("-o")
            .arg(registry.reference("hostile/app:v1")),
    );
    let read = Layout::open(&layout).image("v1");
    (read.manifest_digest.clone(), read.manifest)
}

/// `stowage archive PROXY/hostile/app:v1 -o …` with a fresh store; must fail and write nothing.
fn archive_fails(proxy: &FaultProxy, extra: &[&str]) -> String {
    let sb = Sandbox::new();
    let out_path = sb.join("pulled.tar");
    let out = sb
        .stowage()
        .args(["--insecure-registry", &proxy.addr, "--retries", "1"])
        .args(extra)
        .arg("archive")
        .arg(proxy.reference("hostile/app:v1"))
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    let stderr = show(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stderr}\n{}",
        summary(&proxy.seen())
    );
    assert!(out.stdout.is_empty());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out_path.exists(), "nothing may be written");
    stderr
}

fn manifest_response(manifest: &[u8]) -> Action {
    Action::Respond {
        status: 200,
        headers: vec![("Content-Type".into(), OCI_MANIFEST.into())],
        body: manifest.to_vec(),
    }
}

#[test]
fn a_garbage_www_authenticate_is_a_clear_error() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    for garbage in [
        "Bearer realm=\"ftp://evil.example/token\"",
        "Negotiate ,,,===",
        "Bearer service=\"registry\"",
        "Bearer realm=\"https://unterminated",
        "",
    ] {
        let garbage = garbage.to_owned();
        let proxy = FaultProxy::start(&registry.host, move |_| Action::Respond {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), garbage.clone())],
            body: b"{}".to_vec(),
        });
        let stderr = archive_fails(&proxy, &[]);
        says(&stderr, "WWW-Authenticate");
    }
}

#[test]
fn registries_that_send_wrong_bytes_or_lie_are_refused() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let (_, manifest) = pushed(&sb, &registry);
    // The largest layer, so the damaged byte is inside it.
    let layers = manifest["layers"].as_array().unwrap();
    let largest = (0..layers.len())
        .max_by_key(|i| layers[*i]["size"].as_u64().unwrap())
        .unwrap();
    let layer = layers[largest]["digest"].as_str().unwrap().to_owned();

    // A blob whose bytes are damaged on the way.
    let l = layer.clone();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        if req.is_blob_get() && req.target.contains(&l) {
            return Action::Forward(Forward {
                corrupt_response_byte: Some(1000),
                ..Forward::default()
            });
        }
        Action::forward()
    });
    let stderr = archive_fails(&proxy, &[]);
    says(&stderr, &layer);
    says(&stderr, "digest");

    // A manifest that declares a layer shorter than the blob is.
    let mut lying = manifest.clone();
    let size = lying["layers"][largest]["size"].as_u64().unwrap();
    lying["layers"][largest]["size"] = json!(size - 100);
    let body = serde_json::to_vec(&lying).unwrap();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        if req.method == "GET" && req.target.contains("/manifests/") {
            return manifest_response(&body);
        }
        Action::forward()
    });
    let stderr = archive_fails(&proxy, &[]);
    says(&stderr, &layer);
    says(&stderr, "bytes were expected");

    // A config that claims gigabytes.
    let mut huge = manifest.clone();
    huge["config"]["size"] = json!(6_000_000_000u64);
    let body = serde_json::to_vec(&huge).unwrap();
    let proxy = FaultProxy::start(&registry.host, move |req| {
        if req.method == "GET" && req.target.contains("/manifests/") {
            return manifest_response(&body);
        }
        Action::forward()
    });
    let stderr = archive_fails(&proxy, &[]);
    says(&stderr, "6000000000 bytes");

    // A manifest that is not JSON, and one of many megabytes.
    for body in [
        b"{\"schemaVersion\": 2, \"layers\": [".to_vec(),
        format!("{{\"pad\": \"{}\"}}", "x".repeat(9 << 20)).into_bytes(),
    ] {
        let proxy = FaultProxy::start(&registry.host, move |req| {
            if req.method == "GET" && req.target.contains("/manifests/") {
                return manifest_response(&body);
            }
            Action::forward()
        });
        let stderr = archive_fails(&proxy, &[]);
        assert!(
            stderr.contains("manifest") || stderr.contains("bytes"),
            "{stderr}"
        );
    }
}

#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let (_, manifest) = pushed(&sb, &registry);
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();

    // "Elsewhere": another loopback address, so another host, in front of the same storage.
    let elsewhere = FaultProxy::start_on("127.0.0.2", &registry.host, |_| Action::forward());
    let (user, password) = ("redirected-user", "pw-must-not-leak-9d3");
    let (front, saw_credentials) =
        redirecting_front(&registry.host, elsewhere.addr.clone(), user, password);
    let client = client_with_credentials(&front.addr, user, password);
    pull_and_push_through(&client, &sb.join("layout"), &front, &elsewhere);
    assert!(
        *saw_credentials.lock().unwrap() > 0,
        "the front host got them"
    );
    let away = elsewhere.seen();
    assert!(
        away.iter()
            .any(|s| s.req.is_blob_get() && s.req.target.contains(&layer)),
        "the download was redirected:\n{}",
        summary(&away)
    );
    assert!(
        away.iter().any(|s| s.req.is_blob_upload()),
        "the upload went elsewhere:\n{}",
        summary(&away)
    );
    let leaked: Vec<_> = away
        .iter()
        .filter(|s| s.req.authorization.is_some())
        .collect();
    assert!(
        leaked.is_empty(),
        "credentials reached another host: {leaked:?}"
    );
}

/// The registry stowage talks to: it demands Basic auth (`user`,
/// `password`), redirects blob downloads and points uploads at the `other`
/// host, as registries backed by object storage do. With the count of
/// requests that came with the credentials.
fn redirecting_front(
    registry_host: &str,
    other: String,
    user: &str,
    password: &str,
) -> (FaultProxy, Arc<Mutex<usize>>) {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let saw_credentials = Arc::new(Mutex::new(0usize));
    let seen = saw_credentials.clone();
    let front = FaultProxy::start(registry_host, move |req| {
        if req.authorization.as_deref() != Some(expected.as_str()) {
            return Action::Respond {
                status: 401,
                headers: vec![(
                    "WWW-Authenticate".into(),
                    "Basic realm=\"stowage-tests\"".into(),
                )],
                body: b"{}".to_vec(),
            };
        }
        *seen.lock().unwrap() += 1;
        if req.is_blob_get() {
            return Action::Respond {
                status: 307,
                headers: vec![("Location".into(), format!("http://{other}{}", req.target))],
                body: Vec::new(),
            };
        }
        Action::Forward(Forward {
            strip_auth: true,
            location_to: Some(other.clone()),
            ..Forward::default()
        })
    });
    (front, saw_credentials)
}

/// A client whose docker config holds `user`'s credentials for `front`.
fn client_with_credentials(front: &str, user: &str, password: &str) -> Sandbox {
    let config = json!({"auths": {front: {"auth":
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))}}});
    let client = Sandbox::new();
    write_file(
        &client.join("docker-config/config.json"),
        config.to_string(),
        0o600,
    );
    client
}

/// Archives the pushed image through `front`, then pushes `layout` back
/// through it; both must succeed.
fn pull_and_push_through(
    client: &Sandbox,
    layout: &Path,
    front: &FaultProxy,
    elsewhere: &FaultProxy,
) {
    let out_path = client.join("pulled.tar");
    let out = client
        .stowage()
        .args(["-vvv", "--insecure-registry", &front.addr])
        .args(["--insecure-registry", &elsewhere.addr, "archive"])
        .arg(front.reference("hostile/app:v1"))
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\nfront:\n{}\nelsewhere:\n{}",
        show(&out.stderr),
        summary(&front.seen()),
        summary(&elsewhere.seen())
    );
    // And a push, whose uploads the front points elsewhere.
    let out = client
        .stowage()
        .args(["-vvv", "--insecure-registry", &front.addr])
        .args(["--insecure-registry", &elsewhere.addr, "push"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(front.reference("hostile/copy:v1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\nfront:\n{}\nelsewhere:\n{}",
        show(&out.stderr),
        summary(&front.seen()),
        summary(&elsewhere.seen())
    );
}
