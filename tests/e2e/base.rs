//! Base images: a real `docker save` tarball from the test dockerd, a
//! skopeo-written OCI layout, a Docker 25+ style archive, and a
//! multi-platform OCI index. The built image keeps every base layer and
//! every base config field, including ones stowage does not model.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::rig::*;

const DOCKERFILE: &str = r#"FROM scratch
COPY rootfs/ /
COPY etc/ /etc/
ENV PATH=/usr/bin:/bin BASE_VAR=from-base
LABEL org.example.base="yes"
HEALTHCHECK --interval=5s --timeout=3s CMD ["/bin/sh", "-c", "true"]
STOPSIGNAL SIGINT
CMD ["/bin/sh", "-c", "echo base"]
"#;

/// Builds a two-layer busybox image with the test dockerd (`docker build`
/// FROM scratch needs no network) and `docker save`s it to `<dir>/base.tar`
/// and `<dir>/base.tar.gz`.
fn docker_saved_base(sb: &Sandbox, dir: &Path, name: &str) -> (PathBuf, PathBuf, DockerImage) {
    let ctx = sb.mkdir("docker-ctx");
    fs::create_dir_all(ctx.join("rootfs/bin")).unwrap();
    fs::copy("/bin/busybox", ctx.join("rootfs/bin/busybox")).unwrap();
    symlink("busybox", ctx.join("rootfs/bin/sh")).unwrap();
    write_file(&ctx.join("etc/base-release"), "stowage-e2e base\n", 0o644);
    fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    // No buildx here: the classic builder. Two tests build this Dockerfile
    // at once: with the build cache they share intermediate images, and the
    // first to finish prunes them under the other's build with its `rmi -f`
    // ("unable to find image"), so each build makes its own.
    run_ok(
        docker()
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "--no-cache", "--label"])
            .arg(format!("org.stowage.test.image={name}"))
            .args(["-t", name])
            .arg(&ctx),
    );
    let guard = DockerImage(name.to_owned());
    fs::create_dir_all(dir).unwrap();
    let tar = dir.join("base.tar");
    run_ok(docker().args(["save", "-o"]).arg(&tar).arg(name));
    let gz = dir.join("base.tar.gz");
    fs::write(&gz, gzip(&fs::read(&tar).unwrap())).unwrap();
    (tar, gz, guard)
}

/// A spec over `base` for the sample app's library and workspace (the base
/// brings /bin/sh), with `${PATH}` expanded against the base.
fn spec_over(base: &str, image: &str, command: bool) -> String {
    let command = if command {
        "command = [\"greet\"]\n"
    } else {
        ""
    };
    format!(
        r#"base = "{base}"
image = "{image}"

[app]
library = {{ source = "library", target = "/opt/app" }}
workspace = {{ source = "workspace", target = "/home/user/work" }}
entrypoint = ["/opt/app/start.sh"]
{command}workdir = "/home/user/work"
user = "1000:100"
ports = ["8888/tcp"]

[env]
GREETING = "hello-from-env"
PATH = "/opt/app/bin:${{PATH}}"

[labels]
"org.opencontainers.image.source" = "https://example.org/stowage-e2e"
"#
    )
}

/// Writes the sample app in `dir` with a spec over `base`.
fn write_app_over(dir: &Path, base: &str, image: &str, command: bool) -> PathBuf {
    let spec = write_app(dir, image);
    fs::write(&spec, spec_over(base, image, command)).unwrap();
    spec
}

/// The built image keeps the base: its layers first, its history first, and
/// every config field the spec does not set, byte for byte as JSON.
fn assert_keeps_base(base_config: &Value, base_diff_ids: &[String], built: &ReadImage) {
    let diff_ids = built.diff_ids();
    assert!(
        diff_ids.len() > base_diff_ids.len() && diff_ids[..base_diff_ids.len()] == *base_diff_ids,
        "base layers must come first, unchanged:\nbase  {base_diff_ids:?}\nbuilt {diff_ids:?}"
    );
    assert_eq!(built.layers().len(), diff_ids.len());
    let base_history = base_config["history"].as_array().unwrap();
    let history = built.config["history"].as_array().unwrap();
    assert_eq!(
        history[..base_history.len()],
        base_history[..],
        "base history kept"
    );

    let set_by_spec = [
        "Env",
        "Labels",
        "Cmd",
        "Entrypoint",
        "User",
        "WorkingDir",
        "ExposedPorts",
    ];
    let base_run = base_config["config"].as_object().unwrap();
    for (key, value) in base_run {
        if set_by_spec.contains(&key.as_str()) {
            continue;
        }
        assert_eq!(
            &built.config["config"][key], value,
            "config.{key} must survive from the base"
        );
    }
    for (key, value) in base_config.as_object().unwrap() {
        if ["rootfs", "history", "created", "config"].contains(&key.as_str()) {
            continue;
        }
        assert_eq!(
            &built.config[key], value,
            "top-level {key} must survive from the base"
        );
    }
    let base_labels = base_run
        .get("Labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, value) in base_labels {
        assert_eq!(
            built.run_config()["Labels"][&key],
            value,
            "base label {key}"
        );
    }
    assert_eq!(
        built.run_config()["Labels"]["org.opencontainers.image.source"],
        "https://example.org/stowage-e2e"
    );
    let env = built.env();
    assert!(
        env.contains(&"GREETING=hello-from-env".to_owned()),
        "{env:?}"
    );
    for var in base_run["Env"].as_array().unwrap() {
        let var = var.as_str().unwrap();
        if !var.starts_with("PATH=") {
            assert!(
                env.contains(&var.to_owned()),
                "base env {var} kept: {env:?}"
            );
        }
    }
}

/// The base has a Healthcheck (a field stowage does not model) and the
/// built image has the same one.
fn assert_keeps_healthcheck(base_config: &Value, built: &ReadImage) {
    let healthcheck = &base_config["config"]["Healthcheck"];
    assert!(
        healthcheck.is_object(),
        "the base has a Healthcheck to keep: {base_config}"
    );
    assert_eq!(
        &built.run_config()["Healthcheck"],
        healthcheck,
        "Healthcheck"
    );
}

/// The config of a docker-archive, as skopeo reads it (not stowage).
fn skopeo_config(src: &str) -> Value {
    serde_json::from_str(&run_ok(
        skopeo().args(["inspect", "--config", "--raw", src]),
    ))
    .unwrap()
}

#[test]
fn docker_save_base_keeps_layers_and_config_and_runs() {
    if !docker_ready() || !require_tool("skopeo") {
        return;
    }
    let sb = Sandbox::new();
    let app = sb.join("app");
    let base_name = unique_ref("base-docker-save");
    let (tar, gz, _base_guard) = docker_saved_base(&sb, &app, &base_name);
    let base_config = skopeo_config(&format!("docker-archive:{}", tar.display()));
    let base_diff_ids = diff_ids_of(&base_config);
    assert_eq!(base_diff_ids.len(), 2, "two COPY layers in the base");

    let image = unique_ref("over-docker-save");
    let (layout, printed, archive) = build_over_docker_save(&sb, &app, &tar, &image);
    let built = layout.image("built");
    assert_eq!(built.manifest_digest, printed.digest);
    assert_keeps_base(&base_config, &base_diff_ids, &built);
    assert_keeps_healthcheck(&base_config, &built);
    assert_built_over_docker_save(&base_config, &built);
    assert_raw_config_is_stored(&sb, &layout, &built);

    // The same base, gzip-wrapped, gives the same layers and config.
    let from_gz = build_over_gzipped_base(&sb, &gz, &image, &layout);
    assert_eq!(from_gz.diff_ids(), built.diff_ids());
    assert_eq!(from_gz.run_config(), built.run_config());

    // And it runs on the base's /bin/sh.
    let _guard = DockerImage(image.clone());
    run_ok(docker().args(["load", "-i"]).arg(&archive));
    let stdout = run_ok(docker().args(["run", "--rm", "--network", "host", &image]));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), APP_OUTPUT);
}

/// The layer diff IDs a config lists.
fn diff_ids_of(config: &Value) -> Vec<String> {
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Builds the sample app over the `docker save` tarball `tar`, to
/// `<sb>/out/layout:built` and a docker-archive `<sb>/out/app.tar` of
/// `image`: the layout, what stowage printed, and the archive's path.
fn build_over_docker_save(
    sb: &Sandbox,
    app: &Path,
    tar: &Path,
    image: &str,
) -> (Layout, Printed, PathBuf) {
    let spec = write_app_over(
        app,
        &format!("docker-archive:{}", tar.display()),
        image,
        true,
    );
    let out = sb.mkdir("out");
    let archive = out.join("app.tar");
    let stdout = run_ok(
        sb.stowage()
            .args(["build", "--library-layers", "1", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:built", out.join("layout").display()))
            .arg("-o")
            .arg(format!("docker-archive:{}:{image}", archive.display())),
    );
    let printed = parse_printed(&stdout);
    let layout = Layout::open(out.join("layout"));
    (layout, printed, archive)
}

/// What a docker-save base gives beyond the base itself: its layers plus
/// the app's two, a Docker manifest, the spec's settings over the base's,
/// and the base annotations.
fn assert_built_over_docker_save(base_config: &Value, built: &ReadImage) {
    assert_eq!(
        built.layers().len(),
        4,
        "two base layers, library, workspace"
    );
    assert_eq!(
        built.manifest["mediaType"], DOCKER_MANIFEST,
        "a docker-save base gives a Docker manifest"
    );
    let env = built.env();
    assert!(
        env.contains(&"PATH=/opt/app/bin:/usr/bin:/bin".to_owned()),
        "${{PATH}} expanded: {env:?}"
    );
    assert_eq!(built.run_config()["Cmd"], json!(["greet"]));
    assert_eq!(
        built.run_config()["Healthcheck"],
        base_config["config"]["Healthcheck"]
    );
    assert_eq!(built.run_config()["StopSignal"], "SIGINT");
    let annotations = &built.manifest["annotations"];
    assert!(
        annotations["org.opencontainers.image.base.name"].is_string(),
        "{annotations}"
    );
    assert_digest(
        annotations["org.opencontainers.image.base.digest"]
            .as_str()
            .unwrap_or(""),
    );
}

/// stowage's own --raw config is the stored config, byte for byte.
fn assert_raw_config_is_stored(sb: &Sandbox, layout: &Layout, built: &ReadImage) {
    let raw = sb
        .stowage()
        .args([
            "inspect",
            &format!("oci:{}:built", layout.dir.display()),
            "--raw",
            "config",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(raw, built.config_bytes, "inspect --raw config");
}

/// Builds the sample app over the gzip-wrapped `docker save` tarball `gz`,
/// to `layout:from-gz`.
fn build_over_gzipped_base(sb: &Sandbox, gz: &Path, image: &str, layout: &Layout) -> ReadImage {
    let gz_spec = sb.join("app/gz.toml");
    fs::write(
        &gz_spec,
        spec_over(&format!("docker-archive:{}", gz.display()), image, true),
    )
    .unwrap();
    run_ok(
        sb.stowage()
            .args(["build", "--library-layers", "1", "-f"])
            .arg(&gz_spec)
            .arg("-o")
            .arg(format!("oci:{}:from-gz", layout.dir.display())),
    );
    layout.image("from-gz")
}

#[test]
fn skopeo_oci_base_keeps_layers_and_config() {
    if !docker_ready() || !require_tool("skopeo") {
        return;
    }
    let sb = Sandbox::new();
    let base_dir = sb.mkdir("base");
    let (tar, _, _base_guard) = docker_saved_base(&sb, &base_dir, &unique_ref("base-skopeo"));
    // skopeo's conversion to OCI rewrites the config and drops Docker-only
    // fields (Healthcheck among them); with --format v2s2 it keeps the
    // config bytes and Docker media types. Both layouts are bases here.
    for (format, family) in [("v2s2", DOCKER_MANIFEST), ("oci", OCI_MANIFEST)] {
        let oci = sb.join(format!("base/oci-{format}"));
        run_ok(skopeo().args([
            "copy",
            "--format",
            format,
            &format!("docker-archive:{}", tar.display()),
            &format!("oci:{}:base", oci.display()),
        ]));
        let base = Layout::open(&oci).image("base");
        assert_eq!(
            base.manifest["mediaType"], family,
            "skopeo --format {format}"
        );

        let spec = write_app_over(
            &sb.join(format!("app-{format}")),
            &format!("oci:{}:base", oci.display()),
            &unique_ref("over-oci"),
            false,
        );
        let out = sb.join(format!("out-{format}"));
        run_ok(
            sb.stowage()
                .args(["build", "--library-layers", "1", "-f"])
                .arg(&spec)
                .arg("-o")
                .arg(format!("oci:{}:built", out.display())),
        );
        let built = Layout::open(&out).image("built");
        assert_keeps_base(&base.config, &base.diff_ids(), &built);
        if format == "v2s2" {
            assert_keeps_healthcheck(&base.config, &built);
        }
        assert_eq!(
            built.manifest["mediaType"], family,
            "the manifest family follows the base ({format})"
        );
        // Base layer blobs are reused as they are, not recompressed.
        assert_eq!(
            built.layers()[..2],
            base.layers()[..],
            "base layer descriptors ({format})"
        );
        // entrypoint without command clears the base's Cmd (Docker semantics).
        assert!(
            built.run_config()["Cmd"].is_null(),
            "Cmd: {}",
            built.run_config()["Cmd"]
        );
        assert_eq!(
            built.run_config()["Entrypoint"],
            json!(["/opt/app/start.sh"])
        );
        assert_eq!(
            built.manifest["annotations"]["org.opencontainers.image.base.digest"].as_str(),
            Some(base.manifest_digest.as_str()),
            "base.digest annotation ({format})"
        );
    }
}

/// A Docker 25+ `docker save`: an OCI layout (Docker media types,
/// uncompressed layer blobs) plus a manifest.json that points into blobs/.
fn docker25_archive(path: &Path, repo_tag: &str) -> (Value, Vec<String>) {
    let layer_one = make_layer(&["etc"], &[("etc/first", b"first layer\n", 0o644)]);
    let layer_two = make_layer(&["etc"], &[("etc/second", b"second layer\n", 0o644)]);
    let config = base_config("amd64", &[&layer_one, &layer_two]);
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let blob = |bytes: &[u8]| format!("blobs/sha256/{}", sha256_hex(bytes));
    let desc = |media: &str, bytes: &[u8]| json!({"mediaType": media, "digest": sha256_digest(bytes), "size": bytes.len()});
    let layer_media = "application/vnd.docker.image.rootfs.diff.tar";
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": desc("application/vnd.docker.container.image.v1+json", &config_bytes),
        "layers": [desc(layer_media, &layer_one), desc(layer_media, &layer_two)],
    }))
    .unwrap();
    let tag = repo_tag.rsplit_once(':').unwrap().1;
    let mut index_desc = desc(DOCKER_MANIFEST, &manifest);
    index_desc["annotations"] = json!({
        "io.containerd.image.name": repo_tag,
        "org.opencontainers.image.ref.name": tag,
    });
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [index_desc]}),
    )
    .unwrap();
    let docker_manifest = serde_json::to_vec(&json!([{
        "Config": blob(&config_bytes),
        "RepoTags": [repo_tag],
        "Layers": [blob(&layer_one), blob(&layer_two)],
    }]))
    .unwrap();
    let mut members: Vec<(String, Vec<u8>)> = vec![
        (blob(&config_bytes), config_bytes.clone()),
        (blob(&layer_one), layer_one.clone()),
        (blob(&layer_two), layer_two.clone()),
        (blob(&manifest), manifest.clone()),
        ("index.json".into(), index),
        ("manifest.json".into(), docker_manifest),
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
    ];
    members.sort();
    let mut b = tar::Builder::new(Vec::new());
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, dir, std::io::empty()).unwrap();
    }
    for (name, content) in &members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        b.append_data(&mut h, name, content.as_slice()).unwrap();
    }
    fs::write(path, b.into_inner().unwrap()).unwrap();
    (
        config,
        vec![sha256_digest(&layer_one), sha256_digest(&layer_two)],
    )
}

#[test]
fn docker25_archive_base_keeps_layers_and_config() {
    let sb = Sandbox::new();
    let base_ref = "localhost/stowage-e2e/docker25:base";
    let base = sb.join("base25.tar");
    let (config, diff_ids) = docker25_archive(&base, base_ref);
    for (flavour, path) in [("tar", base.clone()), ("gz", sb.join("base25.tar.gz"))] {
        if flavour == "gz" {
            fs::write(&path, gzip(&fs::read(&base).unwrap())).unwrap();
        }
        let app = sb.join(format!("app-{flavour}"));
        let spec = write_app_over(
            &app,
            &format!("docker-archive:{}:{base_ref}", path.display()),
            &unique_ref("over-docker25"),
            true,
        );
        let out = sb.join(format!("out-{flavour}"));
        run_ok(
            sb.stowage()
                // Read, never run: the hand-made base has no /bin/sh for start.sh.
                .args(["build", "--library-layers", "1", "--no-start-check", "-f"])
                .arg(&spec)
                .arg("-o")
                .arg(format!("oci:{}:built", out.display())),
        );
        let built = Layout::open(&out).image("built");
        assert_keeps_base(&config, &diff_ids, &built);
        assert_keeps_healthcheck(&config, &built);
        assert_eq!(
            built.diff_ids().len(),
            4,
            "{flavour}: two base layers, library, workspace"
        );
    }
}

fn picks_the_platform(nested: bool) {
    let sb = Sandbox::new();
    let (base, amd, arm) = write_multi_platform_base(&sb.join("multi"), nested);
    let spec = write_app_over(&sb.join("app"), &base, &unique_ref("multi"), true);
    let out = sb.join("out");
    for (arch, layer) in [("arm64", &arm), ("amd64", &amd)] {
        run_ok(
            sb.stowage()
                // Read, never run: the hand-made bases have no /bin/sh for start.sh.
                .args([
                    "build",
                    "--no-start-check",
                    "--platform",
                    &format!("linux/{arch}"),
                    "-f",
                ])
                .arg(&spec)
                .arg("-o")
                .arg(format!("oci:{}:{arch}", out.display())),
        );
        let built = Layout::open(&out).image(arch);
        assert_eq!(built.config["architecture"], arch);
        assert_eq!(built.config["os"], "linux");
        assert_eq!(
            built.diff_ids()[0],
            sha256_digest(layer),
            "{arch}: the {arch} base layer"
        );
        assert!(
            built.env().contains(&format!("BASE_ARCH={arch}")),
            "{:?}",
            built.env()
        );
    }
}

#[test]
fn multi_platform_nested_index_base_picks_the_platform() {
    picks_the_platform(true);
}

#[test]
fn multi_platform_flat_index_base_picks_the_platform() {
    picks_the_platform(false);
}

/// A relative base path in the spec resolves against the spec's folder,
/// like its sources, not against the current folder.
#[test]
fn relative_base_path_resolves_against_the_spec_folder() {
    let sb = Sandbox::new();
    let app = sb.join("app");
    let spec = write_app_over(
        &app,
        "docker-archive:bases/base.tar",
        &unique_ref("relative"),
        true,
    );
    fs::create_dir_all(app.join("bases")).unwrap();
    fs::write(
        app.join("bases/base.tar"),
        docker_save_tar("localhost/stowage-e2e/relative:base"),
    )
    .unwrap();
    let elsewhere = sb.mkdir("elsewhere");
    let out = sb.join("out");
    run_ok(
        sb.stowage()
            .current_dir(&elsewhere)
            .args(["build", "--library-layers", "1", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:built", out.display())),
    );
    assert_eq!(Layout::open(&out).image("built").diff_ids().len(), 3);
}

/// A base whose folders on the way to the targets have their own owner and
/// mode (/home/user is the user's, /opt is 0711): after unpacking the built
/// image they are unchanged, so the user can still write to their home.
#[test]
fn base_folders_keep_their_owner_and_mode() {
    if !require_tool("umoci") {
        return;
    }
    let sb = Sandbox::new();
    let busybox = busybox_layer("owned");
    let mut b = tar::Builder::new(Vec::new());
    for (path, mode, uid) in [
        ("home/", 0o755, 0),
        ("home/user/", 0o750, 1000),
        ("opt/", 0o711, 0),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(if uid == 0 { 0 } else { 100 });
        h.set_size(0);
        b.append_data(&mut h, path, std::io::empty()).unwrap();
    }
    let dirs = b.into_inner().unwrap();
    let base = sb.join("base");
    let layer_one = write_blob(&base, OCI_LAYER_GZIP, &gzip(&busybox));
    let layer_two = write_blob(&base, OCI_LAYER_GZIP, &gzip(&dirs));
    let config = write_blob(
        &base,
        OCI_CONFIG,
        &serde_json::to_vec(&base_config("amd64", &[&busybox, &dirs])).unwrap(),
    );
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer_one, layer_two]});
    let mut desc = write_blob(&base, OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": "owned"});
    write_oci_index(&base, &[desc]);

    let image = unique_ref("owned");
    let spec = write_app_over(
        &sb.join("app"),
        &format!("oci:{}:owned", base.display()),
        &image,
        false,
    );
    let out = sb.join("out");
    let archive = out.join("owned.tar");
    run_ok(
        sb.stowage()
            .args(["build", "--library-layers", "1", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:built", out.join("layout").display()))
            .arg("-o")
            .arg(format!("docker-archive:{}:{image}", archive.display())),
    );
    let rootfs = umoci_unpack(&out.join("layout"), "built", &sb.join("bundle"));
    let stat = |p: &str| {
        let m = fs::symlink_metadata(rootfs.join(p)).unwrap();
        (m.mode() & 0o7777, m.uid(), m.gid())
    };
    assert_eq!(stat("opt").0, 0o711, "/opt keeps the base's mode");
    assert_eq!(stat("home").0, 0o755);
    assert_eq!(
        stat("home/user").0,
        0o750,
        "/home/user keeps the base's mode"
    );
    if is_root() {
        assert_eq!(
            stat("home/user"),
            (0o750, 1000, 100),
            "/home/user keeps the base's owner"
        );
        assert_eq!(stat("opt"), (0o711, 0, 0));
    }

    // And the user can write to their home in a container.
    if !docker_ready() {
        return;
    }
    let _guard = DockerImage(image.clone());
    run_ok(docker().args(["load", "-i"]).arg(&archive));
    let stdout = run_ok(docker().args([
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "/bin/sh",
        &image,
        "-c",
        "touch /home/user/probe && echo home-writable && cat /opt/app/share/motd.txt",
    ]));
    assert_eq!(stdout, "home-writable\nstowage sample library\n");
}

/// The hand-made bases the other tests rely on are valid for real tools,
/// so a failure elsewhere is stowage's, not the fixture's.
#[test]
fn hand_made_bases_are_valid_for_real_tools() {
    if !docker_ready() || !require_tool("skopeo") {
        return;
    }
    let sb = Sandbox::new();
    let classic_ref = unique_ref("hand-classic");
    let classic = sb.join("classic.tar");
    fs::write(&classic, docker_save_tar(&classic_ref)).unwrap();
    let _g1 = DockerImage(classic_ref.clone());
    run_ok(docker().args(["load", "-i"]).arg(&classic));
    let stdout = run_ok(docker().args(["run", "--rm", "--network", "host", &classic_ref]));
    assert_eq!(stdout, "base\n");

    let d25_ref = unique_ref("hand-docker25");
    let d25 = sb.join("docker25.tar");
    docker25_archive(&d25, &d25_ref);
    let _g2 = DockerImage(d25_ref.clone());
    run_ok(docker().args(["load", "-i"]).arg(&d25));
    run_ok(skopeo().args(["inspect", &format!("oci-archive:{}", d25.display())]));

    let multi = sb.join("multi");
    let amd = write_oci_image(
        &multi,
        "amd64",
        &make_layer(&["etc"], &[("etc/arch", b"amd64\n", 0o644)]),
    );
    let arm = write_oci_image(
        &multi,
        "arm64",
        &make_layer(&["etc"], &[("etc/arch", b"arm64\n", 0o644)]),
    );
    write_oci_index(&multi, &[amd, arm]);
    // skopeo 1.9 cannot pick a platform from a top-level index, and
    // oci-image-tool cannot select one by platform when several share an
    // os; validating every descriptor of the layout is what they offer.
    if require_tool("oci-image-tool") {
        run_ok(
            tool("oci-image-tool")
                .args(["validate", "--type", "image"])
                .arg(&multi),
        );
    }
}
