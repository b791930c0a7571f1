//! In-process tests of the build: `plan_build` on small specs, and `commands::build::run` into an `oci:` layout with a temporary store and journal.
//!
//! They need no root, dockerd or registry, and none of the e2e rig: each
//! test writes its app under a temp folder and reads what the build wrote
//! with a reader of its own (serde_json, sha2, flate2, tar), not stowage's.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use stowage::attest::Attestations;
use stowage::commands::build::{BuildCommand, BuildEvents, BuildResult};
use stowage::commands::{Recorded, Session, SessionPaths};
use stowage::exports::{DestinationStatus, Exports, JournalLocation, Status};
use stowage::layer::Compression;
use stowage::plan::{self, BuildOptions, BuildPlan, BuildRequest};
use stowage::reference::Location;
use stowage::registry::RegistryOptions;
use stowage::spec;

/// The spec of the test app: a library, a workspace, one file, excludes, on scratch.
const APP_SPEC: &str = r#"
base = "scratch"
image = "registry.example.org/acme/app:7"

[app]
library = { source = "library", target = "/opt/app" }
workspace = { source = "workspace", target = "/home/user/work" }
exclude = ["**/__pycache__", "*.pyc"]
entrypoint = ["/opt/app/bin/tool"]
workdir = "/home/user/work"
user = "1000:100"

[[files]]
source = "settings.conf"
target = "/etc/app/settings.conf"
mode = "0644"

[env]
GREETING = "hello"
"#;

/// The smallest ELF the start check takes for a static x86-64 program: a
/// 64-byte header with no program headers, so no loader is named.
fn static_elf() -> Vec<u8> {
    let mut head = vec![0u8; 64];
    head[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    head[16] = 2; // e_type: EXEC
    head[18] = 0x3e; // e_machine: x86-64
    head[20] = 1; // e_version
    head[52] = 64; // e_ehsize
    head[54] = 56; // e_phentsize
    head
}

/// A temp folder holding the test app and, beside it, the session's store and journal.
struct App {
    root: tempfile::TempDir,
}

impl App {
    fn new(spec_text: &str) -> App {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("app");
        write(&app.join("library/bin/tool"), static_elf(), 0o755);
        write(&app.join("library/pkg/mod.py"), "VALUE = 1\n", 0o644);
        write(
            &app.join("library/pkg/__pycache__/mod.cpython-312.pyc"),
            "bytecode",
            0o644,
        );
        write(&app.join("library/top.pyc"), "bytecode", 0o644);
        write(&app.join("workspace/notes.txt"), "workspace notes\n", 0o644);
        write(&app.join("settings.conf"), "level = 3\n", 0o644);
        fs::write(app.join("stowage.toml"), spec_text).unwrap();
        App { root }
    }

    fn spec_file(&self) -> PathBuf {
        self.root.path().join("app/stowage.toml")
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    fn plan(&self, options: BuildOptions) -> Result<BuildPlan, stowage::Error> {
        let spec = spec::read_spec(&self.spec_file())?;
        plan::plan_build(&BuildRequest { spec, options })
    }

    /// A session whose store and journal are this app's temp folders, with no registry settings.
    fn session(&self) -> Session {
        Session::new(
            RegistryOptions::default(),
            SessionPaths {
                store: self.path("store"),
                journal: JournalLocation::default_in(&self.path("state")),
            },
        )
    }

    fn journal(&self) -> Exports {
        Exports::open(&self.path("state")).unwrap()
    }
}

fn write(path: &Path, text: impl AsRef<[u8]>, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The command line's defaults, writing to `destinations`, with a fixed time so digests repeat.
fn options(destinations: &[String]) -> BuildOptions {
    BuildOptions {
        destinations: destinations.to_vec(),
        no_workspace: false,
        platform: Some("linux/amd64".into()),
        format: None,
        compression: Compression::Gzip,
        threads: Some(2),
        library_layers: 1,
        keep_base_remote: false,
        source_date_epoch: Some(1_700_000_000),
        secret_scan: true,
        allow_secrets: Vec::new(),
        dry_run: false,
        start_check: true,
        attest: Attestations::default(),
        cache_repo: None,
        policy_digest: None,
    }
}

/// Which of the plan's layers holds `path` (image path without the leading `/`).
fn layers_holding(plan: &BuildPlan, path: &str) -> Vec<usize> {
    (0..plan.layers.len())
        .filter(|&i| plan.layers[i].find(path.as_bytes()).is_some())
        .collect()
}

#[test]
fn plan_lists_each_source_in_its_own_layer() {
    let app = App::new(APP_SPEC);
    let plan = app.plan(options(&[])).unwrap();
    assert_eq!(plan.layers.len(), 3, "library, workspace and files");
    let library = layers_holding(&plan, "opt/app/bin/tool");
    let workspace = layers_holding(&plan, "home/user/work/notes.txt");
    let files = layers_holding(&plan, "etc/app/settings.conf");
    assert_eq!(library.len(), 1, "the library's file is in one layer");
    assert_eq!(workspace.len(), 1);
    assert_eq!(files.len(), 1);
    assert!(
        library[0] != workspace[0] && workspace[0] != files[0] && library[0] != files[0],
        "each source has a layer of its own: {library:?} {workspace:?} {files:?}"
    );
    let total_files: u64 = plan.layers.iter().map(|l| l.file_count).sum();
    assert_eq!(total_files, 4, "tool, mod.py, notes.txt, settings.conf");
    assert_eq!(
        plan.mtime, 1_700_000_000,
        "SOURCE_DATE_EPOCH is every entry's time"
    );
    assert_eq!(plan.platform.to_string(), "linux/amd64");
}

#[test]
fn plan_leaves_out_what_exclude_names() {
    let app = App::new(APP_SPEC);
    let plan = app.plan(options(&[])).unwrap();
    assert!(!layers_holding(&plan, "opt/app/pkg/mod.py").is_empty());
    for excluded in [
        "opt/app/pkg/__pycache__",
        "opt/app/pkg/__pycache__/mod.cpython-312.pyc",
        "opt/app/top.pyc",
    ] {
        assert!(
            layers_holding(&plan, excluded).is_empty(),
            "{excluded} is excluded"
        );
    }
}

#[test]
fn plan_without_the_workspace_has_no_workspace_layer() {
    let app = App::new(APP_SPEC);
    let plan = app
        .plan(BuildOptions {
            no_workspace: true,
            ..options(&[])
        })
        .unwrap();
    assert_eq!(plan.layers.len(), 2, "library and files only");
    assert!(layers_holding(&plan, "home/user/work/notes.txt").is_empty());
    assert!(!layers_holding(&plan, "opt/app/bin/tool").is_empty());
}

#[test]
fn plan_destinations_default_to_the_spec_image_and_resolve_local_paths() {
    let app = App::new(APP_SPEC);
    let plan = app.plan(options(&[])).unwrap();
    assert_eq!(
        plan.destinations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["docker://registry.example.org/acme/app:7"],
        "no -o: the spec's image"
    );
    let layout = app.path("out");
    let plan = app
        .plan(options(&[format!("oci:{}", layout.display())]))
        .unwrap();
    match plan.destinations.as_slice() {
        [Location::Oci { path, tag: None }] => assert_eq!(path, &layout),
        other => panic!("one oci: destination, got {other:?}"),
    }
    assert_eq!(
        plan.default_tag(),
        "7",
        "the spec image's tag names the layout's image"
    );
}

#[test]
fn plan_refuses_a_spec_error_naming_the_field() {
    let app = App::new(&APP_SPEC.replace("source = \"workspace\"", "source = \"missing\""));
    let error = app.plan(options(&[])).unwrap_err();
    assert_eq!(
        error.exit_code(),
        2,
        "a spec error is a usage error: {error}"
    );
    let text = format!("{error:#}");
    assert!(text.contains("missing"), "names the path: {text}");
    assert!(error.hint().is_some(), "says what to do: {text}");
}

#[test]
fn plan_refuses_docker_format_with_attestations() {
    let app = App::new(APP_SPEC);
    let error = app
        .plan(BuildOptions {
            format: Some(stowage::image::Format::Docker),
            attest: Attestations {
                sbom: true,
                provenance: false,
            },
            ..options(&[])
        })
        .unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(error.to_string().contains("--format docker"), "{error}");
}

/// A build's events, unheard.
struct Silent;

impl BuildEvents for Silent {
    fn planned(&self, _plan: &BuildPlan) {}
}

fn build_command(app: &App, destinations: &[String]) -> BuildCommand {
    BuildCommand {
        spec_file: app.spec_file(),
        request: options(destinations),
        digest_file: None,
        metadata_file: None,
        sbom: None,
        signer: None,
        policy: Default::default(),
    }
}

/// The blob `digest` of the layout at `layout`, checked against its digest and, when given, its size.
fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let bytes = fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(
        format!("sha256:{:x}", Sha256::digest(&bytes)),
        digest,
        "the blob's bytes hash to its name"
    );
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "the descriptor's size of {digest}"
    );
    bytes
}

/// Each entry of a gzipped layer tar: path, and the bytes of regular files.
fn layer_entries(gzipped: &[u8]) -> Vec<(String, Option<Vec<u8>>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gzipped));
    let mut entries = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let contents = entry.header().entry_type().is_file().then(|| {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            bytes
        });
        entries.push((path, contents));
    }
    entries
}

/// An image layout read back by this file's own reader, every blob checked against its digest and size.
struct ReadLayout {
    /// The one entry of index.json.
    entry: Value,
    manifest: Value,
    config: Value,
    /// Every layer's entries, in layer order: path, and a regular file's bytes.
    files: Vec<(String, Option<Vec<u8>>)>,
}

impl ReadLayout {
    fn read(layout: &Path) -> ReadLayout {
        let json = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap();
        let layout_file = json(&fs::read(layout.join("oci-layout")).unwrap());
        assert_eq!(layout_file["imageLayoutVersion"], "1.0.0");
        let index = json(&fs::read(layout.join("index.json")).unwrap());
        let [entry] = index["manifests"].as_array().unwrap().as_slice() else {
            panic!("one image in the layout: {index}");
        };
        let manifest = json(&blob(layout, entry));
        let config = json(&blob(layout, &manifest["config"]));
        let layers = manifest["layers"].as_array().unwrap();
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(diff_ids.len(), layers.len(), "a diff-id per layer");
        let mut files = Vec::new();
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            assert_eq!(
                layer["mediaType"],
                "application/vnd.oci.image.layer.v1.tar+gzip"
            );
            let gzipped = blob(layout, layer);
            let mut tar_bytes = Vec::new();
            flate2::read::GzDecoder::new(gzipped.as_slice())
                .read_to_end(&mut tar_bytes)
                .unwrap();
            assert_eq!(
                format!("sha256:{:x}", Sha256::digest(&tar_bytes)),
                diff_id.as_str().unwrap(),
                "the diff-id is the uncompressed tar's digest"
            );
            files.extend(layer_entries(&gzipped));
        }
        ReadLayout {
            entry: entry.clone(),
            manifest,
            config,
            files,
        }
    }

    /// The entry at `path` (no leading `/`): Some(bytes) for a file, Some(None) for anything else.
    fn contents(&self, path: &str) -> Option<Option<Vec<u8>>> {
        self.files
            .iter()
            .find(|(p, _)| p.trim_end_matches('/') == path)
            .map(|(_, c)| c.clone())
    }
}

#[test]
fn scratch_build_into_a_layout_reads_back_whole() {
    let app = App::new(APP_SPEC);
    let layout = app.path("layout");
    let reported = stowage::commands::build::run(
        &app.session(),
        &build_command(&app, &[format!("oci:{}", layout.display())]),
        &Silent,
    );
    let Ok(BuildResult::Built(built)) = reported.result else {
        panic!("the build failed: {:?}", reported.result.err());
    };
    let Recorded::Kept(id) = reported.record else {
        panic!("the export was not recorded: {:?}", reported.record);
    };

    let read = ReadLayout::read(&layout);
    assert_eq!(
        read.entry["annotations"]["org.opencontainers.image.ref.name"],
        "7"
    );
    assert_eq!(
        read.entry["digest"].as_str(),
        Some(built.outcome.digest().as_str()),
        "the index names the image the build returned"
    );
    assert_eq!(
        read.manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(read.manifest["layers"].as_array().unwrap().len(), 3);
    let config = &read.config;
    assert_eq!(
        (&config["architecture"], &config["os"]),
        (&"amd64".into(), &"linux".into())
    );
    assert_eq!(config["config"]["Entrypoint"][0], "/opt/app/bin/tool");
    assert_eq!(config["config"]["User"], "1000:100");
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "GREETING=hello"), "{config}");

    assert_eq!(read.contents("opt/app/bin/tool"), Some(Some(static_elf())));
    assert_eq!(
        read.contents("home/user/work/notes.txt"),
        Some(Some(b"workspace notes\n".to_vec()))
    );
    assert_eq!(
        read.contents("etc/app/settings.conf"),
        Some(Some(b"level = 3\n".to_vec()))
    );
    assert_eq!(read.contents("opt/app/top.pyc"), None, "excluded");

    let record = app.journal().get(id).unwrap();
    assert_eq!(record.status, Status::Ok);
    assert_eq!(
        record.digest.as_deref(),
        Some(built.outcome.digest().as_str())
    );
    assert_eq!(
        record.destinations[0].status,
        Some(DestinationStatus::Written)
    );
    let stored = app.path("store/blobs/sha256").read_dir().unwrap().count();
    assert!(stored >= 3, "the layers went into the session's own store");
}

#[test]
fn same_inputs_give_the_same_digest_in_process() {
    let digests: Vec<String> = (0..2)
        .map(|_| {
            let app = App::new(APP_SPEC);
            let layout = format!("oci:{}", app.path("layout").display());
            match stowage::commands::build::run(
                &app.session(),
                &build_command(&app, &[layout]),
                &Silent,
            )
            .result
            {
                Ok(BuildResult::Built(built)) => built.outcome.digest().to_string(),
                other => panic!("the build failed: {:?}", other.err()),
            }
        })
        .collect();
    assert_eq!(digests[0], digests[1], "two apps, two stores, one digest");
}

/// An error and its causes, as the CLI prints them.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[test]
fn failed_sink_is_recorded_as_failed() {
    let app = App::new(APP_SPEC);
    let file = app.path("a-file");
    fs::write(&file, "not a folder").unwrap();
    let destination = format!("oci:{}", file.join("layout").display());
    let reported = stowage::commands::build::run(
        &app.session(),
        &build_command(&app, std::slice::from_ref(&destination)),
        &Silent,
    );
    let error = match reported.result {
        Err(error) => error,
        Ok(_) => panic!("a layout under a file cannot be written"),
    };
    assert_ne!(error.exit_code(), 0);
    let chain = error_chain(&error);
    assert!(
        chain.contains("a-file"),
        "the error names the path: {chain}"
    );
    let Recorded::Kept(id) = reported.record else {
        panic!("a failed export is recorded: {:?}", reported.record);
    };
    let record = app.journal().get(id).unwrap();
    assert_eq!(record.status, Status::Failed);
    assert!(record.error.is_some(), "the record keeps the error");
    let [recorded] = record.destinations.as_slice() else {
        panic!("one destination: {:?}", record.destinations);
    };
    assert!(
        recorded.destination.contains("a-file/layout"),
        "{}",
        recorded.destination
    );
    assert_eq!(recorded.status, Some(DestinationStatus::Failed));
}
