//! Pushes and pulls against real `docker-registry` processes (anonymous and
//! htpasswd), read back by skopeo, podman and docker: the digest stowage
//! prints is the digest every other tool sees, and the image runs. Also:
//! bases pulled from a registry (multi-platform ones too), cross-repository
//! mounts proven by counting bytes on the wire, `archive` then `push`, and
//! index copies that keep every platform.

use std::path::Path;

use serde_json::Value;

use crate::rig::proxy::Proxy;
use crate::rig::registry::*;
use crate::rig::*;

/// The digest skopeo reads must be the one stowage printed, `skopeo inspect
/// --raw` must hash to it, and skopeo copies of it (to an OCI layout and to
/// another repository) keep it.
fn assert_skopeo_reads_back(reg: &TestRegistry, repo_tag: &str, printed: &Printed) {
    assert_eq!(
        reg.skopeo_digest(repo_tag),
        printed.digest,
        "skopeo inspect of {repo_tag}"
    );
    let raw = reg.skopeo_inspect(repo_tag, &["--raw"]);
    assert_eq!(
        sha256_digest(&raw),
        printed.digest,
        "skopeo inspect --raw bytes"
    );

    let config: Value =
        serde_json::from_slice(&reg.skopeo_inspect(repo_tag, &["--config", "--raw"])).unwrap();
    let env = config["config"]["Env"].to_string();
    assert!(env.contains("GREETING=hello-from-env"), "config Env: {env}");

    let layout = tempfile::tempdir().unwrap();
    let mut cmd = skopeo();
    cmd.args(["copy", "--src-tls-verify=false"])
        .args(reg.skopeo_creds("--src-creds"))
        .arg(reg.docker_ref(repo_tag))
        .arg(format!("oci:{}:copy", layout.path().display()));
    run_ok(&mut cmd);
    let image = Layout::open(layout.path()).image("copy");
    assert_eq!(image.manifest_digest, printed.digest, "skopeo copy to oci:");
    assert_eq!(
        image.manifest_bytes, raw,
        "the manifest bytes skopeo copied"
    );

    let other = format!("{}-skopeo:copied", repo_tag.split(':').next().unwrap());
    let mut cmd = skopeo();
    cmd.args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .args(reg.skopeo_creds("--src-creds"))
        .args(reg.skopeo_creds("--dest-creds"))
        .arg(reg.docker_ref(repo_tag))
        .arg(reg.docker_ref(&other));
    run_ok(&mut cmd);
    assert_eq!(
        reg.skopeo_digest(&other),
        printed.digest,
        "skopeo copy to {other}"
    );
}

/// Builds the sample app straight to `reg`'s `repo_tag`.
fn build_app_to(sb: &Sandbox, reg: &TestRegistry, repo_tag: &str) -> Printed {
    let dest = reg.reference(repo_tag);
    let spec = write_app(&sb.join("app"), &dest);
    label_uniquely(&spec, &dest);
    let printed = build_to(sb, &[&reg.host], &spec, &[&dest], &[]);
    let repo = repo_tag.split(':').next().unwrap();
    assert_eq!(
        printed.name.as_deref(),
        Some(reg.reference(repo).as_str()),
        "stdout names the pushed repository"
    );
    printed
}

#[test]
fn anonymous_push_reads_back_with_skopeo() {
    if !require_tool("skopeo") {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let printed = build_app_to(&sb, &reg, "app/skopeo:1");
    assert_skopeo_reads_back(&reg, "app/skopeo:1", &printed);

    // stowage reads back the same bytes skopeo does.
    let raw = run_ok(stowage_insecure(&sb, &[&reg.host]).args([
        "inspect",
        "--raw",
        "manifest",
        &reg.reference("app/skopeo:1"),
    ]));
    assert_eq!(sha256_digest(raw.as_bytes()), printed.digest);
}

#[test]
fn htpasswd_push_reads_back_with_skopeo() {
    if !require_tool("skopeo") {
        return;
    }
    let creds = Creds::new("alice", &unique_password());
    let Some(reg) = TestRegistry::htpasswd(creds.clone()) else {
        return;
    };
    let sb = Sandbox::new();
    write_docker_config(&sb, &reg.host, &creds);
    let printed = build_app_to(&sb, &reg, "app/basic:1");
    assert_skopeo_reads_back(&reg, "app/basic:1", &printed);
    let authed = reg
        .access_log()
        .iter()
        .filter(|l| {
            l.method == "PUT" && l.uri.starts_with("/v2/app/basic/manifests/") && l.status == 201
        })
        .count();
    assert_eq!(
        authed, 1,
        "one manifest PUT accepted by the htpasswd registry"
    );
}

fn pull_and_run_with_podman(reg: &TestRegistry, reference: &str) {
    let _cleanup = PodmanImage(reference.to_owned());
    let mut pull = podman();
    pull.args(["pull", "--tls-verify=false"]);
    if !matches!(reg.auth, RegistryAuth::Anonymous) {
        pull.args(["--creds", &reg.creds().colon()]);
    }
    run_ok(pull.arg(reference));
    let stdout = run_ok(podman().args(["run", "--rm", "--network", "host", reference]));
    assert_app_output(&stdout);
}

fn pull_and_run_with_docker(reg: &TestRegistry, reference: &str) {
    let _cleanup = DockerImage(reference.to_owned());
    // A docker client config of the test's own, so a login stays private.
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path().to_str().unwrap();
    if !matches!(reg.auth, RegistryAuth::Anonymous) {
        let creds = reg.creds();
        run_ok(
            docker()
                .args([
                    "--config",
                    cfg,
                    "login",
                    "-u",
                    &creds.user,
                    "--password-stdin",
                ])
                .arg(&reg.host)
                .write_stdin(creds.password.clone()),
        );
    }
    // dockerd talks plain HTTP to 127.0.0.0/8 registries by default.
    run_ok(docker().args(["--config", cfg, "pull", reference]));
    let stdout = run_ok(docker().args(["run", "--rm", "--network", "host", reference]));
    assert_app_output(&stdout);
}

#[test]
fn anonymous_push_runs_in_podman() {
    if !podman_ready() {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let printed = build_app_to(&sb, &reg, "app/podman:1");
    pull_and_run_with_podman(&reg, &reg.reference("app/podman:1"));
    let by_digest = format!("{}@{}", reg.reference("app/podman"), printed.digest);
    pull_and_run_with_podman(&reg, &by_digest);
}

#[test]
fn htpasswd_push_runs_in_podman() {
    if !podman_ready() {
        return;
    }
    let creds = Creds::new("podman-user", &unique_password());
    let Some(reg) = TestRegistry::htpasswd(creds.clone()) else {
        return;
    };
    let sb = Sandbox::new();
    write_docker_config(&sb, &reg.host, &creds);
    build_app_to(&sb, &reg, "app/podman-basic:1");
    pull_and_run_with_podman(&reg, &reg.reference("app/podman-basic:1"));
}

#[test]
fn anonymous_push_runs_in_docker() {
    if !docker_ready() {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    build_app_to(&sb, &reg, "app/docker:1");
    pull_and_run_with_docker(&reg, &reg.reference("app/docker:1"));
}

#[test]
fn htpasswd_push_runs_in_docker() {
    if !docker_ready() {
        return;
    }
    let creds = Creds::new("docker-user", &unique_password());
    let Some(reg) = TestRegistry::htpasswd(creds.clone()) else {
        return;
    };
    let sb = Sandbox::new();
    write_docker_config(&sb, &reg.host, &creds);
    build_app_to(&sb, &reg, "app/docker-basic:1");
    pull_and_run_with_docker(&reg, &reg.reference("app/docker-basic:1"));
}

/// Upload completions (`PUT …/blobs/uploads/…?digest=`) accepted, by digest.
fn completed_uploads(reg: &TestRegistry) -> Vec<String> {
    reg.access_log()
        .into_iter()
        .filter(|l| l.method == "PUT" && l.uri.contains("/blobs/uploads/") && l.status == 201)
        .filter_map(|l| {
            let query = l.uri.split_once('?')?.1;
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("digest="))
                .map(|d| d.replace("%3A", ":").replace("%3a", ":"))
        })
        .collect()
}

#[test]
fn several_tags_push_each_blob_once() {
    if !require_tool("skopeo") {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let a = reg.reference("app/tags:a");
    let b = format!("docker://{}", reg.reference("app/tags:b"));
    let spec = write_app(&sb.join("app"), &a);
    let layout = sb.join("layout");
    let printed = build_to(
        &sb,
        &[&reg.host],
        &spec,
        &[&a, &b, &format!("oci:{}:app", layout.display())],
        &[],
    );
    let image = Layout::open(&layout).image("app");
    assert_eq!(image.manifest_digest, printed.digest);
    let mut blobs: Vec<String> = image
        .layers()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    blobs.push(
        image.manifest["config"]["digest"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    blobs.sort();
    blobs.dedup();
    let mut uploaded = completed_uploads(&reg);
    uploaded.sort();
    assert_eq!(
        uploaded, blobs,
        "two tags of one repository: every blob uploaded exactly once"
    );
    for tag in ["app/tags:a", "app/tags:b"] {
        assert_eq!(reg.skopeo_digest(tag), printed.digest, "{tag}");
    }

    // `push --tag`: more tags, and nothing uploaded again.
    let out = stowage_insecure(&sb, &[&reg.host])
        .args(["push", &format!("oci:{}:app", layout.display())])
        .arg(reg.reference("app/tags:c"))
        .args(["--tag", "d", "--tag", "e"])
        .assert()
        .success()
        .get_output()
        .clone();
    let pushed = parse_printed(&String::from_utf8(out.stdout.clone()).unwrap());
    assert_eq!(pushed.digest, printed.digest);
    for tag in ["app/tags:c", "app/tags:d", "app/tags:e"] {
        assert_eq!(reg.skopeo_digest(tag), printed.digest, "{tag}");
    }
    assert_eq!(
        completed_uploads(&reg).len(),
        blobs.len(),
        "a push of blobs the repository holds uploads nothing; stderr: {}",
        stderr_of(&out)
    );
}

#[test]
fn base_from_the_registry_is_kept_under_the_app() {
    if !require_tool("skopeo") {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let base = push_busybox_base(&reg, "base/busybox:1", 64 * 1024);
    let sb = Sandbox::new();
    let dest = reg.reference("app/on-base:1");
    let spec = write_app_on(&sb.join("app"), &base.reference, &dest);
    let printed = build_to(&sb, &[&reg.host], &spec, &[&dest], &[]);
    assert_eq!(reg.skopeo_digest("app/on-base:1"), printed.digest);

    let manifest: Value =
        serde_json::from_slice(&reg.skopeo_inspect("app/on-base:1", &["--raw"])).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers[0]["digest"], base.layer_digest,
        "the base layer comes first, unchanged: {manifest}"
    );
    assert!(
        layers.len() >= 4,
        "base, library (one or more parts), files, workspace: {manifest}"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"], base.manifest_digest,
        "base.digest annotation"
    );
    let config: Value =
        serde_json::from_slice(&reg.skopeo_inspect("app/on-base:1", &["--config", "--raw"]))
            .unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        sha256_digest(&base.layer_tar),
        "base diff-id"
    );
    assert_eq!(
        config["config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/bin/true"]),
        "a base config field stowage does not model survives"
    );
}

#[test]
fn multi_platform_base_from_the_registry_picks_the_platform() {
    if !require_tool("skopeo") {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (layout_ref, amd, arm) = write_multi_platform_base(dir.path(), true);
    run_ok(
        skopeo()
            .args(["copy", "--all", "--dest-tls-verify=false", &layout_ref])
            .arg(reg.docker_ref("base/multi:1")),
    );
    let index: Value =
        serde_json::from_slice(&reg.skopeo_inspect("base/multi:1", &["--raw"])).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");

    let sb = Sandbox::new();
    let base = reg.reference("base/multi:1");
    let spec = write_app_on(&sb.join("app"), &base, &reg.reference("app/multi:x"));
    let arm_dest = reg.reference("app/multi:arm64");
    let arm_layout = sb.join("arm-layout");
    let arm_printed = build_to(
        &sb,
        &[&reg.host],
        &spec,
        &[&arm_dest, &format!("oci:{}:app", arm_layout.display())],
        &["--platform", "linux/arm64"],
    );
    let default_dest = reg.reference("app/multi:default");
    let default_printed = build_to(&sb, &[&reg.host], &spec, &[&default_dest], &[]);
    assert_ne!(arm_printed.digest, default_printed.digest);

    for (tag, arch, layer, printed) in [
        ("app/multi:arm64", "arm64", &arm, &arm_printed),
        (
            "app/multi:default",
            host_arch(),
            if host_arch() == "arm64" { &arm } else { &amd },
            &default_printed,
        ),
    ] {
        assert_eq!(reg.skopeo_digest(tag), printed.digest, "{tag}");
        let config: Value =
            serde_json::from_slice(&reg.skopeo_inspect(tag, &["--config", "--raw"])).unwrap();
        assert_eq!(config["architecture"], arch, "{tag}'s config");
        assert_eq!(config["os"], "linux", "{tag}'s config");
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            sha256_digest(layer),
            "{tag} is built on the {arch} base layer"
        );
        let env = config["config"]["Env"].to_string();
        assert!(
            env.contains(&format!("BASE_ARCH={arch}")),
            "{tag}: base Env kept: {env}"
        );
    }

    // An OCI layout needs the base layer's bytes: fetched from the
    // registry, and the right platform's.
    let layout = Layout::open(&arm_layout);
    let image = layout.image("app");
    assert_eq!(image.manifest_digest, arm_printed.digest);
    assert_eq!(
        layout.layer_tar(&image, 0),
        arm,
        "the arm64 base layer, fetched"
    );
}

#[test]
fn push_to_another_repository_mounts_the_base_layers() {
    if !require_tool("skopeo") {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    // 3 MiB of random bytes: the base layer dwarfs the app's layers.
    let base = push_busybox_base(&reg, "base/mountable:1", 3 << 20);
    // Every byte between stowage and the registry goes through the proxy.
    let proxy = Proxy::start(&reg.host, None);
    let sb = Sandbox::new();
    let dest = proxy.reference("app/mounted:1");
    let spec = write_app_on(&sb.join("app"), &proxy.reference("base/mountable:1"), &dest);
    let out = stowage_insecure(&sb, &[&proxy.host])
        .args(["build", "-f"])
        .arg(&spec)
        .args(["-o", &dest])
        .assert()
        .success()
        .get_output()
        .clone();
    let printed = parse_printed(&String::from_utf8(out.stdout.clone()).unwrap());
    let stderr = stderr_of(&out);
    assert_eq!(reg.skopeo_digest("app/mounted:1"), printed.digest);

    let manifest: Value =
        serde_json::from_slice(&reg.skopeo_inspect("app/mounted:1", &["--raw"])).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], base.layer_digest);
    let new_bytes: u64 = manifest["layers"].as_array().unwrap()[1..]
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum::<u64>()
        + manifest["config"]["size"].as_u64().unwrap();
    let up = proxy.up_bytes();
    let down = proxy.down_bytes();
    let access = summarize_access(&reg.access_log());
    eprintln!(
        "mount test: base layer {} B, app blobs {new_bytes} B, sent {up} B, received {down} B; registry saw {access:?}; stowage said: {}",
        base.layer_size,
        stderr.trim()
    );
    // The app's blobs, the manifest and HTTP headers: far less than the
    // base layer, which would have to cross the wire if it were uploaded.
    assert!(
        up < new_bytes + 256 * 1024 && up < base.layer_size,
        "sent {up} bytes: the {} byte base layer was uploaded, not mounted",
        base.layer_size
    );
    // The registry's own account agrees: a mount request for the base layer,
    // and no upload of it.
    let encoded = base.layer_digest.replace(':', "%3A");
    let log = reg.access_log();
    assert!(
        log.iter().any(|l| l.method == "POST"
            && l.uri.starts_with("/v2/app/mounted/blobs/uploads/?")
            && l.uri.contains("mount=")
            && l.uri.contains(&encoded)
            && l.uri.contains("from=base%2Fmountable")
            && l.status == 201),
        "a 201 POST …?mount={encoded}&from=base/mountable in the access log: {log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.method != "POST"
            && l.uri.starts_with("/v2/app/mounted/blobs/uploads/")
            && l.uri.contains(&encoded)),
        "the base layer was not uploaded to app/mounted: {log:#?}"
    );
    assert!(
        stderr.contains("1 mounted"),
        "stowage's summary counts the mount: {stderr}"
    );
}

#[test]
fn archive_then_push_gives_back_the_same_digest() {
    if !require_tool("skopeo") || !docker_ready() {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let base = push_busybox_base(&reg, "base/archived:1", 16 * 1024);
    let builder = Sandbox::new();
    let src = reg.reference("app/archived:1");
    let spec = write_app_on(&builder.join("app"), &base.reference, &src);
    let built = build_to(&builder, &[&reg.host], &spec, &[&src], &[]);

    // A fresh cache: every blob comes from the registry.
    let sb = Sandbox::new();
    let archive = sb.join("archived.tar.gz");
    let pulled = parse_printed(&run_ok(
        stowage_insecure(&sb, &[&reg.host])
            .args(["archive", &src, "-o"])
            .arg(&archive),
    ));
    assert_eq!(
        pulled.digest, built.digest,
        "archive prints the pulled digest"
    );
    let read = DockerArchive::open(&archive);
    assert_eq!(read.repo_tags(), vec![src.clone()], "RepoTags");

    let dest = reg.reference("app/restored:1");
    let pushed = parse_printed(&run_ok(
        stowage_insecure(&sb, &[&reg.host])
            .args(["push", &format!("docker-archive:{}", archive.display())])
            .arg(&dest),
    ));
    assert_eq!(
        pushed.digest, built.digest,
        "push of the archive restores the digest"
    );
    assert_eq!(reg.skopeo_digest("app/restored:1"), built.digest);
    // And registry to registry: `push` takes any source.
    let pushed = parse_printed(&run_ok(
        stowage_insecure(&sb, &[&reg.host])
            .args(["push", &src])
            .arg(reg.reference("app/from-registry:1")),
    ));
    assert_eq!(
        pushed.digest, built.digest,
        "push REF REF2 keeps the digest"
    );
    assert_eq!(reg.skopeo_digest("app/from-registry:1"), built.digest);

    // The archive holds the base layer fetched from the registry: it loads
    // and runs in docker.
    let _cleanup = DockerImage(src.clone());
    let loaded = run_ok(docker().args(["load", "-i"]).arg(&archive));
    assert!(loaded.contains(&src), "docker load names {src}: {loaded}");
    let stdout = run_ok(docker().args(["run", "--rm", "--network", "host", &src]));
    assert_app_output(&stdout);
}

#[test]
fn index_copy_keeps_every_platform() {
    if !require_tool("skopeo") {
        return;
    }
    let (Some(a), Some(b)) = (TestRegistry::anonymous(), TestRegistry::anonymous()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = push_index_with_skopeo(&a, dir.path());
    assert_eq!(src.children.len(), 2);

    let sb = Sandbox::new();
    let hosts = [a.host.as_str(), b.host.as_str()];
    // To another registry (blobs cross over), and to another repository of
    // the same registry (blobs mount).
    for (reg, repo) in [(&b, "multi/copied"), (&a, "multi/same-registry")] {
        copy_index_and_check(&sb, &hosts, &a, reg, repo, &src);
    }

    // `push --platform` of an index pushes that platform's image alone.
    let arm_digest = &src.children[1];
    let printed = parse_printed(&run_ok(stowage_insecure(&sb, &hosts).args([
        "push",
        &a.reference("multi/src:1"),
        &b.reference("multi/arm-only:1"),
        "--platform",
        "linux/arm64",
    ])));
    assert_eq!(&printed.digest, arm_digest, "push --platform linux/arm64");
    assert_eq!(&b.skopeo_digest("multi/arm-only:1"), arm_digest);

    copy_index_to_a_layout_and_check(&sb, &hosts, &a, &src);
}

/// A two-platform index in a registry: its bytes and digest, its platform
/// manifests' digests, and the amd64 and arm64 layers.
struct PushedIndex {
    raw: Vec<u8>,
    digest: String,
    children: Vec<String>,
    amd: Vec<u8>,
    arm: Vec<u8>,
}

/// Writes a two-platform index in `dir` and pushes it to `a` as
/// `multi/src:1` with skopeo.
fn push_index_with_skopeo(a: &TestRegistry, dir: &Path) -> PushedIndex {
    let (layout_ref, amd, arm) = write_multi_platform_base(dir, true);
    run_ok(
        skopeo()
            .args(["copy", "--all", "--dest-tls-verify=false", &layout_ref])
            .arg(a.docker_ref("multi/src:1")),
    );
    let raw = a.skopeo_inspect("multi/src:1", &["--raw"]);
    let index: Value = serde_json::from_slice(&raw).unwrap();
    let index_digest = sha256_digest(&raw);
    let children: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect();
    PushedIndex {
        raw,
        digest: index_digest,
        children,
        amd,
        arm,
    }
}

/// Copies the index from `a` to `repo` in `reg` and checks that the index,
/// both platform manifests, their configs and their layers got there.
fn copy_index_and_check(
    sb: &Sandbox,
    hosts: &[&str],
    a: &TestRegistry,
    reg: &TestRegistry,
    repo: &str,
    src: &PushedIndex,
) {
    let dest = reg.reference(&format!("{repo}:1"));
    let printed = parse_printed(&run_ok(stowage_insecure(sb, hosts).args([
        "copy",
        &a.reference("multi/src:1"),
        &dest,
    ])));
    assert_eq!(
        printed.digest, src.digest,
        "copy to {dest} prints the index digest"
    );
    let copied = reg.skopeo_inspect(&format!("{repo}:1"), &["--raw"]);
    assert_eq!(copied, src.raw, "the index bytes at {dest}");
    let stowage_raw = stowage_insecure(sb, hosts)
        .args(["inspect", "--raw", "manifest", &dest])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        stowage_raw, src.raw,
        "stowage inspect --raw manifest of {dest}"
    );
    for child in &src.children {
        let at = format!("{repo}@{child}");
        assert_eq!(
            reg.skopeo_inspect(&at, &["--raw"]),
            a.skopeo_inspect(&format!("multi/src@{child}"), &["--raw"]),
            "platform manifest {child} copied"
        );
    }
    for (arch, layer) in [("amd64", &src.amd), ("arm64", &src.arm)] {
        let config: Value = serde_json::from_slice(&reg.skopeo_inspect(
            &format!("{repo}:1"),
            &[
                "--config",
                "--override-arch",
                arch,
                "--override-os",
                "linux",
            ],
        ))
        .unwrap();
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256_digest(layer));
    }
    // The layers are really there: skopeo copies the whole index out.
    let out = tempfile::tempdir().unwrap();
    run_ok(
        skopeo()
            .args(["copy", "--all", "--src-tls-verify=false"])
            .arg(reg.docker_ref(&format!("{repo}:1")))
            .arg(format!("oci:{}:x", out.path().display())),
    );
}

/// Registry to an OCI layout: the index and both images, byte for byte.
fn copy_index_to_a_layout_and_check(
    sb: &Sandbox,
    hosts: &[&str],
    a: &TestRegistry,
    src: &PushedIndex,
) {
    let layout_dir = sb.join("copied-layout");
    let printed = parse_printed(&run_ok(stowage_insecure(sb, hosts).args([
        "copy",
        &a.reference("multi/src:1"),
        &format!("oci:{}:multi", layout_dir.display()),
    ])));
    assert_eq!(printed.digest, src.digest);
    let layout = Layout::open(&layout_dir);
    let desc = layout.descriptor("multi");
    assert_eq!(desc["digest"], src.digest.as_str());
    assert_eq!(
        layout.blob(&src.digest),
        src.raw,
        "the index bytes in the layout"
    );
    for (child, layer) in src.children.iter().zip([&src.amd, &src.arm]) {
        let image = layout.image_at(child);
        assert_eq!(&layout.layer_tar(&image, 0), layer, "layer of {child}");
    }
}

/// Builds `spec` and pushes it to `dest` through `proxy`; returns the bytes
/// received from the registry meanwhile, what stowage printed, and its stderr.
fn build_through(
    sb: &Sandbox,
    proxy: &Proxy,
    spec: &std::path::Path,
    dest: &str,
    extra: &[&str],
) -> (u64, Printed, String) {
    let before = proxy.down_bytes();
    let out = stowage_insecure(sb, &[&proxy.host])
        .args(["build", "-f"])
        .arg(spec)
        .args(["-o", dest])
        .args(extra)
        .assert()
        .success()
        .get_output()
        .clone();
    let printed = parse_printed(&String::from_utf8(out.stdout.clone()).unwrap());
    (proxy.down_bytes() - before, printed, stderr_of(&out))
}

/// GETs of `digest`'s blob in the registry's access log.
fn blob_gets(reg: &TestRegistry, digest: &str) -> usize {
    reg.access_log()
        .iter()
        .filter(|l| l.method == "GET" && l.uri.contains("/blobs/") && l.uri.contains(digest))
        .count()
}

/// README: with `--keep-base-remote` stowage never reads the base's layers,
/// so a build that pushes to the base's registry moves only the new layers.
#[test]
fn keep_base_remote_build_downloads_no_base_layer() {
    if !require_tool("skopeo") {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let base = push_busybox_base(&reg, "base/remote:1", 1 << 20);
    let proxy = Proxy::start(&reg.host, None);
    let sb = Sandbox::new();
    let dest = proxy.reference("app/remote-base:1");
    let spec = write_app_on(&sb.join("app"), &proxy.reference("base/remote:1"), &dest);
    let (down, printed, stderr) = build_through(&sb, &proxy, &spec, &dest, &["--keep-base-remote"]);
    assert!(
        down < base.layer_size / 2 && blob_gets(&reg, &base.layer_digest) == 0,
        "received {down} bytes and {} GETs of the {} byte base layer {}; stowage said: {}",
        blob_gets(&reg, &base.layer_digest),
        base.layer_size,
        base.layer_digest,
        stderr.trim()
    );
    assert_eq!(reg.skopeo_digest("app/remote-base:1"), printed.digest);
}

/// README: without `--keep-base-remote` the base's layers are read once for
/// the parent folders' owners and modes, and cached by base digest: a
/// second build downloads none of them.
#[test]
fn registry_base_layers_are_downloaded_at_most_once() {
    if !require_tool("skopeo") {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let base = push_busybox_base(&reg, "base/once:1", 1 << 20);
    let proxy = Proxy::start(&reg.host, None);
    let sb = Sandbox::new();
    let spec = write_app_on(&sb.join("app"), &proxy.reference("base/once:1"), "unused");
    let (first, _, _) = build_through(&sb, &proxy, &spec, &proxy.reference("app/once:1"), &[]);
    assert!(
        blob_gets(&reg, &base.layer_digest) <= 1 && first < base.layer_size * 3 / 2,
        "the first build fetches the base layer at most once: received {first} bytes, {} GETs",
        blob_gets(&reg, &base.layer_digest)
    );
    let gets = blob_gets(&reg, &base.layer_digest);
    // A changed app, the same base: nothing of the base crosses again.
    write_file(
        &sb.join("app/workspace/notes.txt"),
        "changed notes\n",
        0o644,
    );
    let (second, _, stderr) =
        build_through(&sb, &proxy, &spec, &proxy.reference("app/once:2"), &[]);
    assert!(
        second < base.layer_size / 2 && blob_gets(&reg, &base.layer_digest) == gets,
        "a rebuild on the same base downloads none of it: received {second} bytes; stowage said: {}",
        stderr.trim()
    );
}
