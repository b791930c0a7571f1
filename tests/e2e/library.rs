//! Real app libraries (JupyterLab from PyPI in a venv and a `pip --target`
//! folder, node_modules from the npm registry, conda-meta and R libraries):
//! package inventory, package layers, published files and SBOMs, checked
//! with GNU tar, pyspdxtools, cyclonedx-python-lib and `cyclonedx-py`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::rig::libraries::{
    conda_env, copy_tree, cyclonedx_py, jupyterlab_target_shared, jupyterlab_venv_shared,
    node_modules, npm_expected, pip_install, pytools_python, r_library, require_npm,
    require_pytools,
};
use crate::rig::*;

const TARGET: &str = "/opt/venv";

/// A spec exporting `library` to [`TARGET`] on scratch.
fn spec_for(sb: &Sandbox, library: &Path) -> PathBuf {
    let spec = sb.join("stowage.toml");
    fs::write(
        &spec,
        format!(
            "base = \"scratch\"\n[app]\nlibrary = {{ source = \"{}\", target = \"{TARGET}\" }}\ncommand = [\"{TARGET}/bin/jupyter-lab\"]\n",
            library.display()
        ),
    )
    .unwrap();
    spec
}

fn build(sb: &Sandbox, spec: &Path, tag: &str, extra: &[&str]) -> Output {
    sb.stowage()
        // These images are read, never run: scratch has no Python for the
        // library's scripts, whose #! lines name the build machine's venv.
        .args(["build", "--no-start-check", "-f"])
        .arg(spec)
        .arg("-o")
        .arg(format!("oci:{}:{tag}", sb.join("layout").display()))
        .args(extra)
        .output()
        .unwrap()
}

fn build_ok(sb: &Sandbox, spec: &Path, tag: &str, extra: &[&str]) -> String {
    let out = build(sb, spec, tag, extra);
    let stderr = show(&out.stderr);
    assert!(out.status.success(), "build failed:\n{stderr}");
    stderr
}

/// One layer as GNU tar lists it: regular files and their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    digest: String,
    files: u64,
    bytes: u64,
}

/// The image's layers, listed by GNU tar (`tar -tvzf`), not by stowage.
fn layers_of(sb: &Sandbox, tag: &str) -> Vec<Listed> {
    let layout = Layout::open(sb.join("layout"));
    layout
        .image(tag)
        .layers()
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().unwrap().to_owned();
            let blob = layout.dir.join("blobs/sha256").join(&digest[7..]);
            let out = Command::new("tar")
                .arg("-tvzf")
                .arg(&blob)
                .output()
                .unwrap();
            assert!(out.status.success(), "tar -tvzf {}", blob.display());
            let (mut files, mut bytes) = (0, 0);
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if line.starts_with('-') {
                    files += 1;
                    bytes += line
                        .split_whitespace()
                        .nth(2)
                        .unwrap()
                        .parse::<u64>()
                        .unwrap();
                }
            }
            Listed {
                digest,
                files,
                bytes,
            }
        })
        .collect()
}

fn tornado_key(library: &Path) -> PathBuf {
    let found: Vec<PathBuf> = [
        "lib/python3.11/site-packages/tornado/test/test.key",
        "tornado/test/test.key",
    ]
    .iter()
    .map(|rel| library.join(rel))
    .filter(|p| p.exists())
    .collect();
    assert_eq!(
        found.len(),
        1,
        "tornado's test key in {}",
        library.display()
    );
    found[0].clone()
}

/// The published-file note, a key appended to, and a real key in no RECORD, on one library.
fn published_files_are_notes_and_everything_else_stops(shared: &Path, site_packages: &str) {
    let sb = Sandbox::new();
    let library = sb.join("library");
    copy_tree(shared, &library);
    let spec = spec_for(&sb, &library);

    let stderr = build_ok(&sb, &spec, "published", &[]);
    assert!(
        stderr.contains("note: secret scan: tornado 6.6.1: published file, matches its RECORD"),
        "the tornado key is a note:\n{stderr}"
    );
    assert!(stderr.contains("tornado/test/test.key"), "{stderr}");

    let key = tornado_key(&library);
    let mut bytes = fs::read(&key).unwrap();
    bytes.push(b'\n');
    fs::write(&key, bytes).unwrap();
    let out = build(&sb, &spec, "changed-key", &[]);
    let stderr = show(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a changed key stops the export:\n{stderr}"
    );
    assert!(
        stderr.contains("tornado/test/test.key:1: private-key"),
        "{stderr}"
    );
    assert!(!stderr.contains("published file"), "{stderr}");
    fs::remove_file(&key).unwrap();

    let leak = library.join(site_packages).join("leaky/id_rsa.pem");
    fs::create_dir_all(leak.parent().unwrap()).unwrap();
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&leak)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", show(&made.stderr));
    let out = build(&sb, &spec, "leaky", &[]);
    let stderr = show(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a key in no package stops it:\n{stderr}"
    );
    assert!(
        stderr.contains("leaky/id_rsa.pem:1: private-key"),
        "{stderr}"
    );
}

#[test]
fn jupyterlab_in_a_venv_exports_with_the_default_scan() {
    if !require_pytools() {
        return;
    }
    published_files_are_notes_and_everything_else_stops(
        &jupyterlab_venv_shared(),
        "lib/python3.11/site-packages",
    );
}

#[test]
fn jupyterlab_in_a_pip_target_folder_exports_with_the_default_scan() {
    if !require_pytools() {
        return;
    }
    published_files_are_notes_and_everything_else_stops(&jupyterlab_target_shared(), "");
}

fn library_digests(layers: &[Listed]) -> BTreeSet<String> {
    layers.iter().map(|l| l.digest.clone()).collect()
}

#[test]
fn a_jupyterlab_venv_splits_by_package_and_changes_stay_local() {
    if !require_pytools() {
        return;
    }
    let sb = Sandbox::new();
    let venv = sb.join("venv");
    copy_tree(&jupyterlab_venv_shared(), &venv);
    let spec = spec_for(&sb, &venv);
    let stderr = build_ok(&sb, &spec, "v1", &["--no-secret-scan"]);
    let before = layers_of(&sb, "v1");
    assert!(
        (4..=32).contains(&before.len()),
        "{} layers: {before:?}",
        before.len()
    );
    let total: u64 = before.iter().map(|l| l.bytes).sum();
    for layer in &before {
        assert!(
            layer.files > 0,
            "a layer without a regular file: {before:?}"
        );
        assert!(
            layer.bytes * 100 <= total * 40,
            "a layer holds over 40% of the library: {layer:?} of {total}\n{stderr}"
        );
    }

    // One changed file in one package: exactly one layer digest changes.
    let six = venv.join("lib/python3.11/site-packages/six.py");
    let mut text = fs::read(&six).unwrap();
    text.extend_from_slice(b"\n# changed\n");
    fs::write(&six, text).unwrap();
    build_ok(&sb, &spec, "v2", &["--no-secret-scan"]);
    let changed = layers_of(&sb, "v2");
    let (old, new) = (library_digests(&before), library_digests(&changed));
    assert_eq!(old.difference(&new).count(), 1, "{before:?}\n{changed:?}");
    assert_eq!(new.difference(&old).count(), 1);

    // One more package: at most one existing layer is replaced.
    pip_install(&venv, "cowsay");
    build_ok(&sb, &spec, "v3", &["--no-secret-scan"]);
    let added = library_digests(&layers_of(&sb, "v3"));
    let replaced = new.difference(&added).count();
    assert!(replaced <= 1, "{replaced} layers replaced by adding cowsay");
}

#[test]
fn dry_run_lists_each_layers_packages() {
    if !require_pytools() {
        return;
    }
    let sb = Sandbox::new();
    let spec = spec_for(&sb, &jupyterlab_venv_shared());
    let stdout = run_ok(
        sb.stowage()
            // Scratch has no Python for jupyter-lab: the start check would refuse it.
            .args(["build", "--dry-run", "--no-start-check", "-f"])
            .arg(&spec)
            .args(["-o", "oci:unused"]),
    );
    assert!(stdout.contains("a venv"), "{stdout}");
    for package in ["jupyterlab 4.6.6", "tornado 6.6.1", "unowned files"] {
        assert!(stdout.contains(package), "{package} in:\n{stdout}");
    }
    assert!(!sb.join("unused").exists());
}

/// A tree like benches/build.sh's: packages under site-packages with no metadata.
#[test]
fn a_library_without_metadata_splits_by_site_packages_children() {
    let sb = Sandbox::new();
    let lib = sb.join("lib");
    for i in 0..40 {
        for j in 0..5 {
            write_file(
                &lib.join(format!("lib/python3.11/site-packages/pkg{i:02}/mod{j}.py")),
                format!("value = {i} * {j}\n").repeat(50),
                0o644,
            );
        }
    }
    let spec = spec_for(&sb, &lib);
    build_ok(&sb, &spec, "v1", &[]);
    let before = layers_of(&sb, "v1");
    assert!(before.len() >= 4, "{before:?}");
    write_file(
        &lib.join("lib/python3.11/site-packages/pkg17/mod3.py"),
        "changed = True\n",
        0o644,
    );
    build_ok(&sb, &spec, "v2", &[]);
    let after = layers_of(&sb, "v2");
    let (old, new) = (library_digests(&before), library_digests(&after));
    assert_eq!(old.difference(&new).count(), 1, "{before:?}\n{after:?}");
}

/// `build --dry-run --json`'s packages: (name, version) → purl.
fn planned_packages(sb: &Sandbox, library: &Path) -> BTreeMap<(String, String), String> {
    let spec = spec_for(sb, library);
    let stdout = run_ok(
        sb.stowage()
            .args(["--json", "build", "--dry-run", "--no-start-check", "-f"])
            .arg(&spec)
            .args(["-o", "oci:unused"]),
    );
    let plan: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let mut found = BTreeMap::new();
    for layer in plan["layers"].as_array().unwrap() {
        for p in layer["packages"].as_array().unwrap() {
            if let (Some(name), Some(version)) = (p["name"].as_str(), p["version"].as_str()) {
                found.insert(
                    (name.into(), version.into()),
                    p["purl"].as_str().unwrap().into(),
                );
            }
        }
    }
    found
}

#[test]
fn conda_r_and_npm_libraries_are_inventoried() {
    let sb = Sandbox::new();
    let (conda, conda_expected) = conda_env(&sb.join("conda"));
    let (r, r_expected) = r_library(&sb.join("rlib"));
    for (library, expected) in [(conda, conda_expected), (r, r_expected)] {
        let found = planned_packages(&sb, &library);
        for e in &expected {
            assert_eq!(
                found.get(&(e.name.clone(), e.version.clone())),
                Some(&e.purl),
                "{e:?} in {found:?}"
            );
        }
    }
    if !require_npm() {
        return;
    }
    let modules = node_modules(&sb.join("app"));
    let found = planned_packages(&sb, modules.parent().unwrap());
    let expected = npm_expected(&modules);
    assert!(expected.len() >= 4, "{expected:?}");
    for (name, version) in expected {
        let purl = format!("pkg:npm/{}@{version}", name.replace('@', "%40"));
        assert_eq!(
            found.get(&(name.clone(), version.clone())),
            Some(&purl),
            "{found:?}"
        );
    }
}

fn python(args: &[&str]) -> Output {
    Command::new(pytools_python()).args(args).output().unwrap()
}

/// Our CycloneDX lists the same installed Python distributions as `cyclonedx-py environment`.
fn same_python_packages_as_cyclonedx_py(sb: &Sandbox, venv: &Path, cdx: &Path) {
    // The same (name, version) set as cyclonedx-py reports for the venv.
    let theirs_file = sb.join("theirs.cdx.json");
    let theirs = Command::new(cyclonedx_py())
        .args(["environment", "--of", "JSON", "-o"])
        .arg(&theirs_file)
        .arg(venv.join("bin/python"))
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "cyclonedx-py: {}",
        show(&theirs.stderr)
    );
    // Installed distributions are the top-level components; what a package
    // vendors (bleach's html5lib dist-info) is nested inside it in ours, and
    // cyclonedx-py does not list it at all.
    let pypi = |doc: &Value| -> BTreeSet<(String, String)> {
        doc["components"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                c["purl"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("pkg:pypi/"))
            })
            .map(|c| {
                let name = c["name"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .replace(['_', '.'], "-");
                (name, c["version"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    let ours: Value = serde_json::from_slice(&fs::read(cdx).unwrap()).unwrap();
    let theirs: Value = serde_json::from_slice(&fs::read(&theirs_file).unwrap()).unwrap();
    let bleach = ours["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "bleach")
        .expect("bleach in our SBOM");
    assert!(
        bleach["components"]
            .to_string()
            .contains("pkg:pypi/html5lib@1.1"),
        "the html5lib bleach vendors is nested in it: {bleach}"
    );
    let (ours, theirs) = (pypi(&ours), pypi(&theirs));
    assert!(ours.len() > 50, "{ours:?}");
    assert_eq!(
        ours.symmetric_difference(&theirs).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "stowage and cyclonedx-py disagree"
    );
}

#[test]
fn sboms_validate_match_cyclonedx_py_and_are_reproducible() {
    if !require_pytools() {
        return;
    }
    let sb = Sandbox::new();
    let venv = jupyterlab_venv_shared();
    let spec = spec_for(&sb, &venv);
    let spdx = sb.join("image.spdx.json");
    let cdx = sb.join("image.cdx.json");
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    for (file, format) in [(&spdx, "spdx"), (&cdx, "cyclonedx")] {
        let out = build(
            &sb,
            &spec,
            format,
            &["--sbom", file.to_str().unwrap(), "--sbom-format", format],
        );
        assert!(out.status.success(), "{}", show(&out.stderr));
        let checked = python(&["scripts/validate-sbom.py", format, file.to_str().unwrap()]);
        assert!(
            checked.status.success(),
            "{format}: {}{}",
            show(&checked.stdout),
            show(&checked.stderr)
        );
    }
    let spdx_check = Command::new(crate::rig::libraries::pyspdxtools())
        .arg("-i")
        .arg(&spdx)
        .output()
        .unwrap();
    assert!(
        spdx_check.status.success(),
        "pyspdxtools: {}",
        show(&spdx_check.stderr)
    );

    same_python_packages_as_cyclonedx_py(&sb, &venv, &cdx);

    // Same inputs, same bytes.
    let again = sb.join("again.spdx.json");
    for (file, tag) in [(&spdx, "r1"), (&again, "r2")] {
        let out = sb
            .stowage()
            .envs(epoch)
            // Read, never run: see `build`.
            .args(["build", "--no-start-check", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:{tag}", sb.join("layout").display()))
            .args(["--sbom", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out.stderr));
    }
    assert_eq!(fs::read(&spdx).unwrap(), fs::read(&again).unwrap());
}
