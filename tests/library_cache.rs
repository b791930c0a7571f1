//! The library plan cache (`plan::library_cache`): a plan of an unchanged library taken from its record is the plan planning afresh gives, the record is really what a hit uses, and a change to the tree plans afresh.
//!
//! In process, on a relocated venv of three packages split into several
//! layers, with no store or registry beyond a temp folder.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use stowage::attest::Attestations;
use stowage::layer::{BaseFolders, Compression};
use stowage::plan::{self, BuildOptions, BuildPlan, BuildRequest};
use stowage::spec;
use stowage::store::Store;

const SPEC: &str = r#"
base = "scratch"
[app]
library = { source = "venv", target = "/opt/venv" }
command = ["/opt/venv/bin/tool"]
"#;

const PACKAGES: [&str; 3] = ["alpha", "beta", "gamma"];

fn write(path: &Path, text: impl AsRef<[u8]>, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A venv made at /old/prefix: a console script naming it, three
/// dist-info packages (one with names that sort around its folder's), a file no
/// package lists, and an absolute symlink.
fn venv(root: &Path) -> PathBuf {
    let app = root.join("app");
    let venv = app.join("venv");
    write(
        &venv.join("pyvenv.cfg"),
        "home = /usr/bin\nversion = 3.11.2\ncommand = /usr/bin/python3 -m venv /old/prefix\n",
        0o644,
    );
    write(
        &venv.join("bin/tool"),
        "#!/old/prefix/bin/python\nimport alpha\n",
        0o755,
    );
    std::os::unix::fs::symlink("/usr/bin/python3", venv.join("bin/python")).unwrap();
    let site = venv.join("lib/python3.11/site-packages");
    for name in PACKAGES {
        let mut record = String::new();
        for file in ["__init__.py", "core.py", "sub/deep.py"] {
            write(
                &site.join(name).join(file),
                format!("# {name} {file}\n"),
                0o644,
            );
            writeln!(record, "{name}/{file},,").unwrap();
        }
        write(
            &site.join(format!("{name}.py")),
            "# beside the folder\n",
            0o644,
        );
        write(&site.join(format!("{name}-x/data.txt")), "data\n", 0o644);
        writeln!(record, "{name}.py,,").unwrap();
        writeln!(record, "{name}-x/data.txt,,").unwrap();
        let info = site.join(format!("{name}-1.0.dist-info"));
        writeln!(record, "{name}-1.0.dist-info/METADATA,,").unwrap();
        writeln!(record, "{name}-1.0.dist-info/RECORD,,").unwrap();
        write(
            &info.join("METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nLicense: MIT\n"),
            0o644,
        );
        write(&info.join("RECORD"), record, 0o644);
    }
    write(&site.join("loose.py"), "# no package lists it\n", 0o644);
    fs::write(app.join("stowage.toml"), SPEC).unwrap();
    app.join("stowage.toml")
}

fn options() -> BuildOptions {
    BuildOptions {
        destinations: vec!["oci:/tmp/unused:1".into()],
        no_workspace: false,
        platform: Some("linux/amd64".into()),
        format: None,
        compression: Compression::Gzip,
        threads: Some(2),
        library_layers: 4,
        keep_base_remote: false,
        source_date_epoch: Some(1_700_000_000),
        secret_scan: true,
        allow_secrets: Vec::new(),
        dry_run: true,
        start_check: false,
        attest: Attestations::default(),
        cache_repo: None,
        policy_digest: None,
    }
}

fn plan(spec_file: &Path, store: Option<&Store>) -> BuildPlan {
    let spec = spec::read_spec(spec_file).unwrap();
    let request = BuildRequest {
        spec,
        options: options(),
    };
    plan::plan_build_cached(&request, store).unwrap()
}

/// Everything the plan says of the library, files named by path (keys differ from walk to walk).
fn summary(plan: &BuildPlan) -> String {
    let base = BaseFolders::default();
    let mut out = String::new();
    let mut path_of = std::collections::HashMap::new();
    for layer in &plan.layers {
        writeln!(out, "layer {} parts {:?}", layer.name, layer.parts).unwrap();
        writeln!(
            out,
            "  {} entries, {} files, {} bytes, relocation {:?}, warnings {:?}",
            layer.entry_count,
            layer.file_count,
            layer.content_bytes,
            layer.relocation,
            layer.warnings
        )
        .unwrap();
        for entry in layer.planned_entries(&base) {
            let path = String::from_utf8_lossy(entry.path).into_owned();
            writeln!(
                out,
                "  {path} {:?} {:o} {:?} {:?}",
                entry.kind,
                entry.mode,
                entry.owner,
                entry.rewrite.map(|(kind, _)| kind)
            )
            .unwrap();
            if let Some(key) = layer.file_key(entry.path) {
                path_of.insert(key, path);
            }
        }
    }
    let library = plan.library.as_ref().unwrap();
    let mut inventory = library.inventory.clone();
    writeln!(out, "relocation {:?}", library.relocation).unwrap();
    for package in &mut inventory.packages {
        let mut files: Vec<&String> = package.files.iter().map(|key| &path_of[key]).collect();
        files.sort();
        let mut prefixed: Vec<(&String, bool)> = package
            .prefixed
            .iter()
            .map(|file| (&path_of[&file.key], file.binary))
            .collect();
        prefixed.sort();
        writeln!(
            out,
            "package {} files {files:?} prefixed {prefixed:?}",
            package.name
        )
        .unwrap();
        package.files.clear();
        package.prefixed.clear();
    }
    writeln!(out, "inventory {inventory:?}").unwrap();
    out
}

fn records(store_dir: &Path) -> Vec<PathBuf> {
    let dir = store_dir.join("meta/library-plans");
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    read.map(|entry| entry.unwrap().path()).collect()
}

#[test]
fn an_unchanged_library_is_planned_from_its_record_as_planning_afresh_plans_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec_file = venv(dir.path());
    let store_dir = dir.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    let fresh = summary(&plan(&spec_file, None));
    assert!(records(&store_dir).is_empty());
    assert_eq!(
        summary(&plan(&spec_file, Some(&store))),
        fresh,
        "a miss plans afresh"
    );
    let kept = records(&store_dir);
    assert_eq!(kept.len(), 1, "one record kept: {kept:?}");
    assert!(fresh.contains("Shebang"), "the venv is relocated:\n{fresh}");
    assert!(
        fresh.contains("layer library-2of"),
        "the library is split:\n{fresh}"
    );
    assert_eq!(
        summary(&plan(&spec_file, Some(&store))),
        fresh,
        "a hit plans the same"
    );

    // A hit really takes the split from the record: a layer renamed in it comes out renamed.
    let original = fs::read_to_string(&kept[0]).unwrap();
    assert!(original.contains("\"library-1of"), "{original}");
    fs::write(&kept[0], original.replace("\"library-1of", "\"renamed-1of")).unwrap();
    let tampered = plan(&spec_file, Some(&store));
    assert!(
        tampered.layers[0].name.starts_with("renamed-1of"),
        "{}",
        tampered.layers[0].name
    );
    fs::write(&kept[0], &original).unwrap();

    // A changed tree is another listing: planned afresh, its record replacing the first.
    let site = spec_file
        .parent()
        .unwrap()
        .join("venv/lib/python3.11/site-packages");
    write(&site.join("beta/added.py"), "# new\n", 0o644);
    let record = site.join("beta-1.0.dist-info/RECORD");
    let mut text = fs::read_to_string(&record).unwrap();
    text.push_str("beta/added.py,,\n");
    fs::write(&record, text).unwrap();
    let changed_fresh = summary(&plan(&spec_file, None));
    assert!(changed_fresh.contains("beta/added.py"));
    assert_eq!(summary(&plan(&spec_file, Some(&store))), changed_fresh);
    assert_eq!(records(&store_dir), kept, "one record for the library");
    assert_ne!(fs::read_to_string(&kept[0]).unwrap(), original);
    assert_eq!(summary(&plan(&spec_file, Some(&store))), changed_fresh);
}

#[test]
fn a_record_that_does_not_fit_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let spec_file = venv(dir.path());
    let store_dir = dir.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    let fresh = summary(&plan(&spec_file, None));
    plan(&spec_file, Some(&store));
    let kept = records(&store_dir);
    assert_eq!(kept.len(), 1);
    // Runs that cover more entries than the listing has, then a record that is not JSON.
    let original = fs::read_to_string(&kept[0]).unwrap();
    let value: serde_json::Value = serde_json::from_str(&original).unwrap();
    let mut bad = value.clone();
    bad["split"]["runs"][0][0] = serde_json::json!(1_000_000);
    fs::write(&kept[0], bad.to_string()).unwrap();
    assert_eq!(summary(&plan(&spec_file, Some(&store))), fresh);
    let mut bad = value;
    bad["files"][0][0][0] = serde_json::json!(1_000_000);
    fs::write(&kept[0], bad.to_string()).unwrap();
    assert_eq!(summary(&plan(&spec_file, Some(&store))), fresh);
    fs::write(&kept[0], "{ not json").unwrap();
    assert_eq!(summary(&plan(&spec_file, Some(&store))), fresh);
}
