//! The real-library fixtures (`rig/libraries.rs`), checked without
//! stowage: each library is what the inventory tests will take it to be.
//! The PyPI ones use the once-per-run caches, so these tests cost little
//! after the first build.

use std::fs;

use crate::rig::Sandbox;
use crate::rig::libraries::{self, TORNADO_TEST_KEY, assert_tornado_key, names};

#[test]
fn jupyterlab_venv_has_tornado_test_key() {
    if !libraries::require_pytools() {
        return;
    }
    let venv = libraries::jupyterlab_venv_shared();
    assert!(venv.join(TORNADO_TEST_KEY).is_file());
    assert_tornado_key(&venv.join("lib/python3.11/site-packages"));
    let cfg = fs::read_to_string(venv.join("pyvenv.cfg")).unwrap();
    assert!(
        cfg.contains("home = /usr/bin"),
        "not Debian's python: {cfg}"
    );
    assert!(venv.join("bin/jupyter-lab").is_file());
}

#[test]
fn jupyterlab_target_has_tornado_test_key() {
    if !libraries::require_pytools() {
        return;
    }
    let target = libraries::jupyterlab_target_shared();
    assert_tornado_key(&target);
    assert!(target.join("jupyterlab").is_dir());
    assert!(!target.join("pyvenv.cfg").exists());
}

#[test]
fn pip_install_adds_to_a_copied_venv() {
    if !libraries::require_pytools() {
        return;
    }
    // A small venv of its own rather than a copy of the shared JupyterLab
    // one: copy_tree is checked on the target folder.
    let sb = Sandbox::new();
    let venv = sb.join("venv");
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    libraries::pip_install(&venv, "cowsay");
    assert!(
        fs::read_dir(venv.join("lib/python3.11/site-packages"))
            .unwrap()
            .any(|e| e.unwrap().file_name() == "cowsay-6.1.dist-info")
    );

    let copy = sb.join("copy");
    libraries::copy_tree(&venv, &copy);
    let link = fs::symlink_metadata(copy.join("bin/python")).unwrap();
    assert!(link.file_type().is_symlink(), "cp -a keeps symlinks");
}

#[test]
fn node_modules_from_npm() {
    if !libraries::require_npm() {
        return;
    }
    let sb = Sandbox::new();
    let modules = libraries::node_modules(&sb.join("app"));
    let expected = libraries::npm_expected(&modules);
    for (name, version) in [
        ("@sindresorhus/is", "4.6.0"),
        ("debug", "2.6.9"),
        ("ms", "2.0.0"),
        ("ms", "2.1.3"),
    ] {
        assert!(
            expected.contains(&(name.to_owned(), version.to_owned())),
            "{name}@{version} not in {expected:?}"
        );
    }
    assert!(modules.join("@sindresorhus/is/package.json").is_file());
    assert!(modules.join("debug/node_modules/ms/package.json").is_file());
}

#[test]
fn conda_env_records_match_files() {
    let sb = Sandbox::new();
    let (prefix, expected) = libraries::conda_env(&sb.join("env"));
    assert_eq!(names(&expected), ["xz", "zlib", "six"]);
    assert!(
        expected
            .iter()
            .any(|e| e.purl == "pkg:conda/zlib@1.3.1?build=hb9d3cd8_2&channel=conda-forge")
    );
    assert!(
        fs::read_to_string(prefix.join("conda-meta/history"))
            .unwrap()
            .contains(&format!("--prefix {} ", prefix.display()))
    );
    for e in &expected {
        let meta = fs::read_dir(prefix.join("conda-meta"))
            .unwrap()
            .map(|d| d.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{}-{}-", e.name, e.version))
            })
            .unwrap();
        let record: serde_json::Value = serde_json::from_slice(&fs::read(meta).unwrap()).unwrap();
        for p in record["paths_data"]["paths"].as_array().unwrap() {
            let path = prefix.join(p["_path"].as_str().unwrap());
            let bytes = fs::read(&path).unwrap();
            let want = p.get("sha256_in_prefix").unwrap_or(&p["sha256"]);
            assert_eq!(
                crate::rig::sha256_hex(&bytes),
                want.as_str().unwrap(),
                "{}",
                path.display()
            );
        }
    }
    let zlib_pc = fs::read_to_string(prefix.join("lib/pkgconfig/zlib.pc")).unwrap();
    assert!(zlib_pc.starts_with(&format!("prefix={}\n", prefix.display())));
}

#[test]
fn r_library_has_descriptions() {
    let sb = Sandbox::new();
    let (lib, expected) = libraries::r_library(&sb.join("R/library"));
    assert_eq!(names(&expected), ["R6", "glue", "jsonlite"]);
    assert_eq!(expected[0].purl, "pkg:cran/R6@2.5.1");
    for e in &expected {
        let desc = fs::read_to_string(lib.join(&e.name).join("DESCRIPTION")).unwrap();
        assert!(desc.contains(&format!("\nVersion: {}\n", e.version)));
        assert!(desc.contains("\nRepository: CRAN\n"));
        assert!(lib.join(&e.name).join("Meta/package.rds").is_file());
    }
}

#[test]
fn pytools_run() {
    if !libraries::require_pytools() {
        return;
    }
    for (bin, arg) in [
        (libraries::cyclonedx_py(), "--version"),
        (libraries::pyspdxtools(), "--help"),
    ] {
        let out = std::process::Command::new(&bin).arg(arg).output().unwrap();
        assert!(out.status.success(), "{} {arg}: {out:?}", bin.display());
    }
    let out = std::process::Command::new(libraries::pytools_python())
        .args(["-c", "import cyclonedx.validation.json, spdx_tools"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
