//! The inventory over small libraries written in the published formats.

use std::path::Path;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::*;

fn sha(content: &[u8]) -> [u8; 32] {
    Sha256::digest(content).into()
}

fn record_hash(content: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha(content))
    )
}

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// What the layer walk would give: every path under `root`, relative, sorted folder by folder.
fn walk(root: &Path) -> Vec<(String, bool)> {
    fn visit(root: &Path, dir: &Path, out: &mut Vec<(String, bool)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            // As the layer walk does: a symlink to a folder is a symlink, not descended into.
            let is_dir = std::fs::symlink_metadata(&path).unwrap().is_dir();
            out.push((rel, is_dir));
            if is_dir {
                visit(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    visit(root, root, &mut out);
    out
}

/// The walk as the inventory takes it: sorted by path bytes, each path keyed by its place in `walk(root)`.
fn walked_paths(walked: &[(String, bool)]) -> Vec<WalkedPath<'_>> {
    let mut paths: Vec<WalkedPath<'_>> = walked
        .iter()
        .zip(0..)
        .map(|((path, is_dir), key)| WalkedPath {
            path: path.as_bytes(),
            is_dir: *is_dir,
            key,
        })
        .collect();
    paths.sort_by(|a, b| a.path.cmp(b.path));
    paths
}

fn read(root: &Path) -> Inventory {
    let walked = walk(root);
    Inventory::read(root, &walked_paths(&walked)).unwrap()
}

/// The key `read` gave `rel`.
fn key(root: &Path, rel: &str) -> Option<FileKey> {
    let at = walk(root).iter().position(|(path, _)| path == rel)?;
    FileKey::try_from(at).ok()
}

/// A package's files as paths, sorted.
fn paths_of(root: &Path, package: &Package) -> Vec<String> {
    let walked = walk(root);
    let mut paths: Vec<String> = package
        .files
        .iter()
        .map(|&key| walked[usize::try_from(key).unwrap()].0.clone())
        .collect();
    paths.sort();
    paths
}

/// The first recorded hash of `rel`, and its package.
fn recorded(inventory: &Inventory, root: &Path, rel: &str) -> Option<(usize, [u8; 32])> {
    let found = inventory.recorded(root, rel, key(root, rel)?).unwrap();
    found.first().map(|r| (r.package, r.sha256))
}

fn owner(inventory: &Inventory, root: &Path, rel: &str) -> Option<usize> {
    inventory.owners().get(key(root, rel)?)
}

fn published(inventory: &Inventory, root: &Path, rel: &str) -> Option<Published> {
    inventory.published(root, rel, key(root, rel)?).unwrap()
}

fn find<'i>(inventory: &'i Inventory, name: &str) -> (usize, &'i Package) {
    inventory
        .packages
        .iter()
        .enumerate()
        .find(|(_, p)| p.name == name)
        .unwrap()
}

const SITE: &str = "lib/python3.11/site-packages";

/// A venv with a dist-info (RECORD with a script outside site-packages, a
/// .pyc, a shipped labextension), a broken one, an editable one and egg-infos.
fn write_python(root: &Path) {
    write(
        root,
        "pyvenv.cfg",
        b"home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
    );
    let init = b"__version__ = '0.3.0'\n";
    let pyc = b"\xa7\r\r\n compiled";
    let script = b"#!/opt/venv/bin/python\nimport sys\n";
    let ext_json =
        br#"{"name": "jupyterlab_pygments", "version": "0.3.0", "license": "BSD-3-Clause"}"#;
    let ext_js = b"console.log(1)";
    let dist = format!("{SITE}/jupyterlab_pygments-0.3.0.dist-info");
    let metadata = "Metadata-Version: 2.1\nName: jupyterlab_pygments\nVersion: 0.3.0\nLicense: Copyright (c) 2015 Project Jupyter\n        All rights reserved.\nLicense-Expression: BSD-3-Clause\n\nPygments theme\n";
    let record = [
        format!(
            "jupyterlab_pygments/__init__.py,{},{}",
            record_hash(init),
            init.len()
        ),
        format!(
            "jupyterlab_pygments/__pycache__/__init__.cpython-311.pyc,{},{}",
            record_hash(pyc),
            pyc.len()
        ),
        format!(
            "../../../bin/script,{},{}",
            record_hash(script),
            script.len()
        ),
        format!("../../../../../escapes,{},1", record_hash(b"x")),
        format!(
            "../../../share/jupyter/labextensions/jupyterlab_pygments/package.json,{},{}",
            record_hash(ext_json),
            ext_json.len()
        ),
        format!(
            "jupyterlab_pygments-0.3.0.dist-info/METADATA,{},{}",
            record_hash(metadata.as_bytes()),
            metadata.len()
        ),
        "jupyterlab_pygments-0.3.0.dist-info/RECORD,,".to_owned(),
    ]
    .join("\n");
    write(
        root,
        &format!("{SITE}/jupyterlab_pygments/__init__.py"),
        init,
    );
    write(
        root,
        &format!("{SITE}/jupyterlab_pygments/__pycache__/__init__.cpython-311.pyc"),
        pyc,
    );
    write(root, "bin/script", script);
    write(root, &format!("{dist}/METADATA"), metadata.as_bytes());
    write(root, &format!("{dist}/RECORD"), record.as_bytes());
    write(root, &format!("{dist}/INSTALLER"), b"uv\n");
    let ext = "share/jupyter/labextensions/jupyterlab_pygments";
    write(root, &format!("{ext}/package.json"), ext_json);
    write(root, &format!("{ext}/static/remoteEntry.js"), ext_js);
    write(root, &format!("{ext}/install.json"), br#"{"packageManager": "python", "packageName": "jupyterlab_pygments", "uninstallInstructions": "pip uninstall"}"#);
    let other = "share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager";
    write(
        root,
        &format!("{other}/package.json"),
        br#"{"name": "@jupyter-widgets/jupyterlab-manager", "version": "5.0.13"}"#,
    );
    write(
        root,
        &format!("{other}/install.json"),
        br#"{"packageManager": "python", "packageName": "jupyterlab_widgets"}"#,
    );

    write_other_python(root);
}

/// A broken dist-info, an editable one, an egg-info folder and an egg-info file.
fn write_other_python(root: &Path) {
    write(
        root,
        &format!("{SITE}/Broken-1.0.dist-info/METADATA"),
        b"Metadata-Version: 2.1\nName: Broken\n\n",
    );
    write(
        root,
        &format!("{SITE}/Broken-1.0.dist-info/RECORD"),
        b"broken.py,,\n",
    );
    write(
        root,
        &format!("{SITE}/mine-0.1.dist-info/METADATA"),
        b"Name: Mine\nVersion: 0.1.dev0\n",
    );
    write(
        root,
        &format!("{SITE}/mine-0.1.dist-info/direct_url.json"),
        br#"{"url": "file:///src/mine", "dir_info": {"editable": true}}"#,
    );

    write(
        root,
        &format!("{SITE}/legacy-0.1-py3.11.egg-info/PKG-INFO"),
        b"Metadata-Version: 1.1\nName: legacy\nVersion: 0.1\nLicense: UNKNOWN\n",
    );
    write(
        root,
        &format!("{SITE}/legacy-0.1-py3.11.egg-info/installed-files.txt"),
        b"../legacy/__init__.py\nPKG-INFO\ninstalled-files.txt\n",
    );
    write(root, &format!("{SITE}/legacy/__init__.py"), b"");
    write(
        root,
        &format!("{SITE}/oldie-2.0-py3.11.egg-info"),
        b"Metadata-Version: 1.0\nName: Oldie\nVersion: 2.0\nLicense: MIT\n",
    );
}

#[test]
fn python_venv_dist_info_egg_info_and_labextensions() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    write_python(root);
    let inventory = read(root);

    let venv = inventory.venv.clone().unwrap();
    assert_eq!(venv.home.as_deref(), Some("/usr/bin"));
    assert_eq!(venv.version.as_deref(), Some("3.11.2"));
    assert_eq!(inventory.package_folders, [SITE]);
    assert_eq!(
        inventory.warnings,
        [format!(
            "{SITE}/Broken-1.0.dist-info/METADATA: no Name or Version"
        )]
    );

    let names: Vec<(&str, Ecosystem)> = inventory
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.ecosystem))
        .collect();
    assert_eq!(
        names,
        [
            ("jupyterlab_pygments", Ecosystem::Python),
            ("legacy", Ecosystem::Python),
            ("Mine", Ecosystem::Python),
            ("Oldie", Ecosystem::Python),
            ("@jupyter-widgets/jupyterlab-manager", Ecosystem::Npm),
            ("jupyterlab_pygments", Ecosystem::Npm),
        ]
    );

    let (pyg_index, pyg) = find(&inventory, "jupyterlab_pygments");
    assert_eq!(pyg.purl, "pkg:pypi/jupyterlab-pygments@0.3.0");
    assert_eq!(pyg.license.as_deref(), Some("BSD-3-Clause"));
    assert_eq!(pyg.installer.as_deref(), Some("uv"));
    assert!(!pyg.editable);
    let paths = paths_of(root, pyg);
    assert_eq!(
        paths,
        [
            "bin/script",
            "lib/python3.11/site-packages/jupyterlab_pygments-0.3.0.dist-info/INSTALLER",
            "lib/python3.11/site-packages/jupyterlab_pygments-0.3.0.dist-info/METADATA",
            "lib/python3.11/site-packages/jupyterlab_pygments-0.3.0.dist-info/RECORD",
            "lib/python3.11/site-packages/jupyterlab_pygments/__init__.py",
            "lib/python3.11/site-packages/jupyterlab_pygments/__pycache__/__init__.cpython-311.pyc",
            "share/jupyter/labextensions/jupyterlab_pygments/package.json",
        ]
    );

    let (_, mine) = find(&inventory, "Mine");
    assert!(mine.editable);
    assert_eq!(mine.purl, "pkg:pypi/mine@0.1.dev0");

    let (_, legacy) = find(&inventory, "legacy");
    assert_eq!(legacy.license, None);
    let paths = paths_of(root, legacy);
    assert_eq!(
        paths,
        [
            "lib/python3.11/site-packages/legacy-0.1-py3.11.egg-info/PKG-INFO",
            "lib/python3.11/site-packages/legacy-0.1-py3.11.egg-info/installed-files.txt",
            "lib/python3.11/site-packages/legacy/__init__.py",
        ]
    );
    let (_, oldie) = find(&inventory, "Oldie");
    assert_eq!(oldie.license.as_deref(), Some("MIT"));
    assert_eq!(oldie.metadata, format!("{SITE}/oldie-2.0-py3.11.egg-info"));

    let extension = &inventory.packages[5];
    assert_eq!(extension.purl, "pkg:npm/jupyterlab_pygments@0.3.0");
    assert_eq!(extension.shipped_by, Some(pyg_index));
    assert_eq!(extension.files.len(), 3);
    let widgets = &inventory.packages[4];
    assert_eq!(
        widgets.purl,
        "pkg:npm/%40jupyter-widgets/jupyterlab-manager@5.0.13"
    );
    assert_eq!(widgets.shipped_by, None);

    assert_eq!(
        owner(
            &inventory,
            root,
            "share/jupyter/labextensions/jupyterlab_pygments/static/remoteEntry.js"
        )
        .unwrap(),
        pyg_index
    );
    assert_eq!(owner(&inventory, root, "bin/script").unwrap(), pyg_index);
}

#[test]
fn a_records_hashes_are_read_again_for_the_file_asked_about() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    write_python(root);
    let inventory = read(root);
    let (pyg_index, _) = find(&inventory, "jupyterlab_pygments");
    assert_eq!(
        recorded(&inventory, root, "bin/script"),
        Some((pyg_index, sha(b"#!/opt/venv/bin/python\nimport sys\n")))
    );
    assert_eq!(
        recorded(
            &inventory,
            root,
            &format!("{SITE}/jupyterlab_pygments/__pycache__/__init__.cpython-311.pyc")
        ),
        Some((pyg_index, sha(b"\xa7\r\r\n compiled")))
    );
    assert_eq!(
        recorded(
            &inventory,
            root,
            &format!("{SITE}/jupyterlab_pygments-0.3.0.dist-info/RECORD")
        ),
        None
    );
    assert_eq!(recorded(&inventory, root, "nowhere"), None);
}

#[test]
fn labextension_shipped_by_install_json_alone() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    write(
        root,
        "pkgs/Jupyter_Widgets-3.0.dist-info/METADATA",
        b"Name: Jupyter_Widgets\nVersion: 3.0\n",
    );
    let ext = "pkgs/share/jupyter/labextensions/@jupyter-widgets/manager";
    write(
        root,
        &format!("{ext}/package.json"),
        br#"{"name": "@jupyter-widgets/manager", "version": "1.0.0"}"#,
    );
    write(
        root,
        &format!("{ext}/install.json"),
        br#"{"packageManager": "python", "packageName": "jupyter-widgets"}"#,
    );
    let inventory = read(root);
    assert_eq!(inventory.packages.len(), 2);
    assert_eq!(inventory.packages[1].shipped_by, Some(0));
    assert!(inventory.package_folders.is_empty());
}

const PLACEHOLDER: &str = "/home/conda/feedstock_root/build_artifacts/zlib_1716874138375/_h_env_placehold_placehold_placehold_placehold_placehold_placehold_placehold_placehold";

#[test]
fn conda_record_in_published_format() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    let lib = b"\x7fELF zlib";
    let installed_config = b"prefix=/opt/conda\n";
    let in_package = format!("prefix={PLACEHOLDER}\n");
    let record = serde_json::json!({
        "build": "hb9d3cd8_2",
        "build_number": 2,
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
        "constrains": ["zlib 1.3.1 *_2"],
        "depends": ["__glibc >=2.17,<3.0.a0", "libgcc >=13"],
        "extracted_package_dir": "/opt/conda/pkgs/libzlib-1.3.1-hb9d3cd8_2",
        "files": ["lib/libz.so.1.3.1", "lib/pkgconfig/zlib.pc", "lib/libz.so", "../outside"],
        "fn": "libzlib-1.3.1-hb9d3cd8_2.conda",
        "license": "Zlib",
        "link": {"source": "/opt/conda/pkgs/libzlib-1.3.1-hb9d3cd8_2", "type": 1},
        "md5": "edb0dca6bc32e4f4789199455a1dbeb8",
        "name": "libzlib",
        "paths_data": {
            "paths": [
                {"_path": "lib/libz.so", "path_type": "softlink", "sha256": hex(&sha(lib)), "size_in_bytes": 9},
                {"_path": "lib/libz.so.1.3.1", "path_type": "hardlink", "sha256": hex(&sha(lib)), "size_in_bytes": 9},
                {"_path": "lib/pkgconfig/zlib.pc", "path_type": "hardlink", "prefix_placeholder": PLACEHOLDER,
                 "file_mode": "text", "sha256": hex(&sha(in_package.as_bytes())),
                 "sha256_in_prefix": hex(&sha(installed_config)), "size_in_bytes": 18}
            ],
            "paths_version": 1
        },
        "requested_spec": "None",
        "sha256": "edb0dca6bc32e4f4789199455a1dbeb8edb0dca6bc32e4f4789199455a1dbeb8",
        "size": 61574,
        "subdir": "linux-64",
        "timestamp": 1727963148,
        "url": "https://conda.anaconda.org/conda-forge/linux-64/libzlib-1.3.1-hb9d3cd8_2.conda",
        "version": "1.3.1"
    });
    write(
        root,
        "conda-meta/libzlib-1.3.1-hb9d3cd8_2.json",
        record.to_string().as_bytes(),
    );
    write(root, "conda-meta/history", b"==> 2024 <==\n");
    write(root, "conda-meta/bad-1-0.json", b"{\"name\": ");
    write(root, "lib/libz.so.1.3.1", lib);
    write(root, "lib/pkgconfig/zlib.pc", installed_config);
    std::os::unix::fs::symlink("libz.so.1.3.1", root.join("lib/libz.so")).unwrap();
    let inventory = read(root);

    assert_eq!(inventory.packages.len(), 1);
    assert_eq!(inventory.warnings.len(), 1);
    assert!(inventory.warnings[0].starts_with("conda-meta/bad-1-0.json: not a conda-meta record"));
    let package = &inventory.packages[0];
    assert_eq!(
        package.purl,
        "pkg:conda/libzlib@1.3.1?build=hb9d3cd8_2&channel=conda-forge"
    );
    assert_eq!(package.license.as_deref(), Some("Zlib"));
    assert_eq!(package.installer.as_deref(), Some("conda"));
    let paths = paths_of(root, package);
    assert_eq!(
        paths,
        ["lib/libz.so", "lib/libz.so.1.3.1", "lib/pkgconfig/zlib.pc"]
    );
    assert_eq!(
        recorded(&inventory, root, "lib/libz.so"),
        None,
        "a softlink"
    );
    assert_eq!(
        recorded(&inventory, root, "lib/libz.so.1.3.1"),
        Some((0, sha(lib)))
    );
    assert_eq!(
        recorded(&inventory, root, "lib/pkgconfig/zlib.pc"),
        Some((0, sha(installed_config)))
    );
    assert_eq!(
        package.prefixed,
        [PrefixedFile {
            key: key(root, "lib/pkgconfig/zlib.pc").unwrap(),
            binary: false
        }]
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn r_library_of_two_packages() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    let lib = "lib/R/library";
    write(root, &format!("{lib}/jsonlite/DESCRIPTION"), b"Package: jsonlite\nVersion: 1.8.8\nTitle: A Simple and Robust JSON Parser and\n    Generator for R\nLicense: MIT + file LICENSE\nRepository: CRAN\n");
    write(root, &format!("{lib}/jsonlite/Meta/package.rds"), b"rds");
    write(root, &format!("{lib}/jsonlite/R/jsonlite.rdb"), b"rdb");
    write(root, &format!("{lib}/Rcpp/DESCRIPTION"), b"Package: Rcpp\nVersion: 1.0.12\nLicense: GPL (>= 2)\nBuilt: R 4.3.2; x86_64-pc-linux-gnu; 2024-01-10 12:00:00 UTC; unix\n");
    write(root, &format!("{lib}/Rcpp/libs/Rcpp.so"), b"elf");
    write(
        root,
        "src/somepkg/DESCRIPTION",
        b"Package: somepkg\nVersion: 0.0.1\n",
    );
    write(
        root,
        &format!("{lib}/NoVersion/DESCRIPTION"),
        b"Package: NoVersion\nBuilt: R 4.3.2\n",
    );
    let inventory = read(root);

    assert_eq!(inventory.package_folders, [lib]);
    assert_eq!(
        inventory.warnings,
        [format!(
            "{lib}/NoVersion/DESCRIPTION: no Package or Version"
        )]
    );
    let names: Vec<&str> = inventory.packages.iter().map(|p| p.purl.as_str()).collect();
    assert_eq!(names, ["pkg:cran/jsonlite@1.8.8", "pkg:cran/Rcpp@1.0.12"]);
    // `MIT + file LICENSE` is MIT (the file names the holder); R's
    // `GPL (>= 2)` is SPDX's or-later.
    assert_eq!(inventory.packages[0].license.as_deref(), Some("MIT"));
    assert_eq!(
        inventory.packages[1].license.as_deref(),
        Some("GPL-2.0-or-later")
    );
    assert_eq!(inventory.packages[0].files.len(), 3);
    assert_eq!(inventory.packages[1].files.len(), 2);
    assert_eq!(
        owner(&inventory, root, "lib/R/library/Rcpp/libs/Rcpp.so").unwrap(),
        1
    );
}

#[test]
fn node_modules_scoped_and_nested() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    write(root, "node_modules/.package-lock.json", b"{}");
    write(
        root,
        "node_modules/left-pad/package.json",
        br#"{"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}"#,
    );
    write(root, "node_modules/left-pad/index.js", b"");
    write(
        root,
        "node_modules/left-pad/lib/package.json",
        br#"{"type": "module"}"#,
    );
    write(
        root,
        "node_modules/@scope/pkg/package.json",
        br#"{"name": "@scope/pkg", "version": "2.0.0", "license": {"type": "MIT"}}"#,
    );
    write(root, "node_modules/@scope/pkg/index.js", b"");
    write(root, "node_modules/@scope/pkg/node_modules/dep/package.json", br#"{"name": "dep", "version": "0.1.0", "licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]}"#);
    write(
        root,
        "node_modules/@scope/pkg/node_modules/dep/index.js",
        b"",
    );
    write(root, "node_modules/@scope/pkg/zz.js", b"");
    write(root, "node_modules/broken/package.json", b"not json");
    let inventory = read(root);

    assert_eq!(
        inventory.package_folders,
        ["node_modules", "node_modules/@scope/pkg/node_modules"]
    );
    assert_eq!(inventory.warnings.len(), 1);
    assert!(
        inventory.warnings[0].starts_with("node_modules/broken/package.json: not a package.json")
    );
    let summary: Vec<(&str, Option<&str>, usize)> = inventory
        .packages
        .iter()
        .map(|p| (p.purl.as_str(), p.license.as_deref(), p.files.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("pkg:npm/%40scope/pkg@2.0.0", Some("MIT"), 3),
            ("pkg:npm/dep@0.1.0", Some("MIT OR Apache-2.0"), 2),
            ("pkg:npm/left-pad@1.3.0", Some("WTFPL"), 3),
        ]
    );
    assert_eq!(
        owner(&inventory, root, "node_modules/@scope/pkg/zz.js").unwrap(),
        0
    );
    assert_eq!(
        owner(
            &inventory,
            root,
            "node_modules/@scope/pkg/node_modules/dep/index.js"
        )
        .unwrap(),
        1
    );
    assert_eq!(
        owner(&inventory, root, "node_modules/left-pad/lib/package.json").unwrap(),
        2
    );
    assert_eq!(
        owner(&inventory, root, "node_modules/.package-lock.json"),
        None
    );
}

#[cfg(unix)]
#[test]
fn unreadable_metadata_is_an_error() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    write(root, "x-1.dist-info/METADATA", b"Name: x\nVersion: 1\n");
    let metadata = root.join("x-1.dist-info/METADATA");
    std::fs::set_permissions(&metadata, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&metadata).is_ok() {
        return; // running as root: permissions do not stop reads
    }
    let walked = walk(root);
    let error = Inventory::read(root, &walked_paths(&walked)).unwrap_err();
    assert!(
        error.to_string().ends_with("x-1.dist-info/METADATA"),
        "{error}"
    );
}

#[test]
fn a_file_the_walk_did_not_find_is_not_read() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    write(root, "a-1.dist-info/METADATA", b"Name: a\nVersion: 1\n");
    write(root, "a-1.dist-info/RECORD", b"a.py,sha256=AAAA,1\n");
    // The walk (an exclude, say) left RECORD out: the package has no listed files.
    let paths = vec![
        WalkedPath {
            path: b"a-1.dist-info",
            is_dir: true,
            key: 0,
        },
        WalkedPath {
            path: b"a-1.dist-info/METADATA",
            is_dir: false,
            key: 1,
        },
    ];
    let inventory = Inventory::read(root, &paths).unwrap();
    assert_eq!(inventory.packages.len(), 1);
    assert_eq!(inventory.packages[0].files.len(), 1);
}

#[test]
fn a_conda_env_python_package_has_both_records() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    let wheel_script = b"#!python\nimport six\n";
    let installed_script = b"#!/opt/conda/bin/python\nimport six\n";
    write(root, "bin/six-tool", installed_script);
    let dist = "lib/python3.12/site-packages/six-1.16.0.dist-info";
    write(
        root,
        &format!("{dist}/METADATA"),
        b"Name: six\nVersion: 1.16.0\n",
    );
    write(root, &format!("{dist}/INSTALLER"), b"conda\n");
    write(
        root,
        &format!("{dist}/RECORD"),
        format!("../../../bin/six-tool,{},20\n", record_hash(wheel_script)).as_bytes(),
    );
    let record = serde_json::json!({
        "name": "six", "version": "1.16.0", "build": "pyhd8ed1ab_0", "channel": "conda-forge",
        "files": ["bin/six-tool", format!("{dist}/METADATA")],
        "paths_data": {"paths_version": 1, "paths": [
            {"_path": "bin/six-tool", "path_type": "hardlink", "sha256": hex(&sha(wheel_script)),
             "sha256_in_prefix": hex(&sha(installed_script)), "prefix_placeholder": "/opt/anaconda1anaconda2anaconda3",
             "file_mode": "text", "size_in_bytes": 31}
        ]}
    });
    write(
        root,
        "conda-meta/six-1.16.0-pyhd8ed1ab_0.json",
        record.to_string().as_bytes(),
    );
    write(
        root,
        "lib/python3.12/site-packages/old-1.egg-info",
        b"Name: old\nVersion: 1\nDescription: caf\xe9\n",
    );
    let inventory = read(root);

    let names: Vec<&str> = inventory.packages.iter().map(|p| p.purl.as_str()).collect();
    assert_eq!(
        names,
        [
            "pkg:pypi/old@1",
            "pkg:pypi/six@1.16.0",
            "pkg:conda/six@1.16.0?build=pyhd8ed1ab_0&channel=conda-forge"
        ]
    );
    assert_eq!(
        inventory.warnings,
        [
            "lib/python3.12/site-packages/old-1.egg-info: not UTF-8; read with replacement characters"
        ]
    );
    // The dist-info is the conda package's: both records name the conda package.
    assert_eq!(inventory.packages[1].shipped_by, Some(2));
    assert_eq!(
        recorded(&inventory, root, "bin/six-tool"),
        Some((2, sha(wheel_script)))
    );
    let all: Vec<_> = inventory
        .recorded(root, "bin/six-tool", key(root, "bin/six-tool").unwrap())
        .unwrap()
        .into_iter()
        .map(|r| (r.package, r.sha256))
        .collect();
    assert_eq!(all, [(2, sha(wheel_script)), (2, sha(installed_script))]);
    assert_eq!(owner(&inventory, root, "bin/six-tool").unwrap(), 2);
    assert_eq!(inventory.package_folders, ["lib/python3.12/site-packages"]);
}

#[test]
fn pip_target_record_paths_resolve_to_the_moved_bin_and_share() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    let tool = b"#!/usr/bin/python3\n";
    let ext_json = br#"{"name": "myext", "version": "1.0.0"}"#;
    write(root, "bin/tool", tool);
    write(
        root,
        "share/jupyter/labextensions/myext/package.json",
        ext_json,
    );
    write(root, "myext/__init__.py", b"");
    let record = format!(
        "myext/__init__.py,{},0\n../../bin/tool,{},{}\n../../share/jupyter/labextensions/myext/package.json,{},{}\n../../etc/gone,{},1\nmyext-1.0.dist-info/RECORD,,\n",
        record_hash(b""),
        record_hash(tool),
        tool.len(),
        record_hash(ext_json),
        ext_json.len(),
        record_hash(b"x"),
    );
    write(
        root,
        "myext-1.0.dist-info/METADATA",
        b"Name: myext\nVersion: 1.0\n",
    );
    write(root, "myext-1.0.dist-info/RECORD", record.as_bytes());
    let inventory = read(root);

    let python = &inventory.packages[0];
    let paths = paths_of(root, python);
    assert_eq!(
        paths,
        [
            "bin/tool",
            "myext-1.0.dist-info/METADATA",
            "myext-1.0.dist-info/RECORD",
            "myext/__init__.py",
            "share/jupyter/labextensions/myext/package.json",
        ]
    );
    assert_eq!(recorded(&inventory, root, "bin/tool"), Some((0, sha(tool))));
    assert_eq!(inventory.packages[1].shipped_by, Some(0));
}

#[test]
fn a_vendored_dist_info_is_shipped_by_its_vendor() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    let vendored = "setuptools/_vendor/wheel-0.43.0.dist-info";
    write(
        root,
        &format!("{vendored}/METADATA"),
        b"Name: wheel\nVersion: 0.43.0\n",
    );
    write(
        root,
        &format!("{vendored}/RECORD"),
        b"wheel/__init__.py,,\n",
    );
    write(root, "setuptools/_vendor/wheel/__init__.py", b"");
    write(
        root,
        "setuptools-70.0.0.dist-info/METADATA",
        b"Name: setuptools\nVersion: 70.0.0\n",
    );
    write(
        root,
        "setuptools-70.0.0.dist-info/RECORD",
        format!("{vendored}/METADATA,,\nsetuptools/_vendor/wheel/__init__.py,,\n").as_bytes(),
    );
    write(
        root,
        "setuptools-70.0.0.dist-info/licenses/x/y-1.dist-info/LICENSE",
        b"",
    );
    let inventory = read(root);

    let names: Vec<(&str, Option<usize>)> = inventory
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.shipped_by))
        .collect();
    assert_eq!(names, [("setuptools", None), ("wheel", Some(0))]);
    assert_eq!(
        owner(&inventory, root, "setuptools/_vendor/wheel/__init__.py").unwrap(),
        0
    );
    assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
}

#[cfg(unix)]
#[test]
fn a_symlinked_metadata_file_is_not_followed() {
    let outside = tempfile::TempDir::new().unwrap();
    write(outside.path(), "METADATA", b"Name: elsewhere\nVersion: 1\n");
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("x-1.dist-info")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("METADATA"),
        root.join("x-1.dist-info/METADATA"),
    )
    .unwrap();
    write(root, "y-2.dist-info/METADATA", b"Name: y\nVersion: 2\n");
    std::os::unix::fs::symlink(
        outside.path().join("METADATA"),
        root.join("y-2.dist-info/RECORD"),
    )
    .unwrap();
    let inventory = read(root);

    assert_eq!(
        inventory.warnings,
        [
            "x-1.dist-info/METADATA: a symlink; not followed",
            "y-2.dist-info/RECORD: a symlink; not followed"
        ]
    );
    assert_eq!(inventory.packages.len(), 1);
    assert_eq!(inventory.packages[0].name, "y");
    assert_eq!(inventory.packages[0].files.len(), 2);
}

#[test]
fn a_nested_conda_env_lists_files_from_its_own_root() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    let record = serde_json::json!({
        "name": "tzdata", "version": "2024a", "build": "h0c530f3_0",
        "url": "https://conda.anaconda.org/conda-forge/noarch/tzdata-2024a-h0c530f3_0.conda",
        "files": ["share/zoneinfo/UTC"], "license": "LicenseRef-Public-Domain"
    });
    write(
        root,
        "envs/tools/conda-meta/tzdata-2024a-h0c530f3_0.json",
        record.to_string().as_bytes(),
    );
    write(root, "envs/tools/share/zoneinfo/UTC", b"TZif");
    let inventory = read(root);
    let package = &inventory.packages[0];
    assert_eq!(
        package.purl,
        "pkg:conda/tzdata@2024a?build=h0c530f3_0&channel=conda-forge"
    );
    assert_eq!(paths_of(root, package), ["envs/tools/share/zoneinfo/UTC"]);
    assert_eq!(
        recorded(&inventory, root, "envs/tools/share/zoneinfo/UTC"),
        None
    );
    assert_eq!(
        owner(&inventory, root, "envs/tools/share/zoneinfo/UTC").unwrap(),
        0
    );
}

#[test]
fn a_file_is_published_when_its_bytes_match_any_record_of_it() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    let key = b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
    let site = "lib/python3.11/site-packages";
    write(root, &format!("{site}/tornado/test/test.key"), key);
    write(root, &format!("{site}/tornado/other.key"), b"changed");
    let record = format!(
        "tornado/test/test.key,{},{}\ntornado/other.key,{},7\ntornado-6.5.2.dist-info/RECORD,,\n",
        record_hash(key),
        key.len(),
        record_hash(b"original"),
    );
    write(
        root,
        &format!("{site}/tornado-6.5.2.dist-info/METADATA"),
        b"Name: tornado\nVersion: 6.5.2\n",
    );
    write(
        root,
        &format!("{site}/tornado-6.5.2.dist-info/RECORD"),
        record.as_bytes(),
    );
    let inventory = read(root);
    let found = published(&inventory, root, &format!("{site}/tornado/test/test.key"));
    assert_eq!(
        found,
        Some(Published {
            package: 0,
            record: "RECORD"
        })
    );
    let changed = published(&inventory, root, &format!("{site}/tornado/other.key"));
    assert_eq!(
        changed, None,
        "bytes that differ from the record are not published"
    );
    let unlisted = published(&inventory, root, &format!("{site}/tornado/__init__.py"));
    assert_eq!(unlisted, None);
}

#[test]
fn many_dist_infos_read_on_threads_keep_their_order_files_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let site = "lib/python3.12/site-packages";
    // Enough dist-infos for several threads; every seventh has no Version,
    // so warnings come from every run.
    let count: usize = 300;
    for i in 0..count {
        let name = format!("pkg{i:03}");
        let info = format!("{site}/{name}-1.{i}.dist-info");
        let module = format!("{site}/{name}/__init__.py");
        write(root, &module, b"x = 1\n");
        let version = if i % 7 == 0 {
            String::new()
        } else {
            format!("Version: 1.{i}\n")
        };
        write(
            root,
            &format!("{info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\n{version}").as_bytes(),
        );
        write(
            root,
            &format!("{info}/RECORD"),
            format!(
                "{name}/__init__.py,{},6\n{name}-1.{i}.dist-info/RECORD,,\n",
                record_hash(b"x = 1\n")
            )
            .as_bytes(),
        );
    }
    let inventory = read(root);
    let expected: Vec<String> = (0..count)
        .filter(|i| i % 7 != 0)
        .map(|i| format!("pkg{i:03}"))
        .collect();
    let names: Vec<&str> = inventory.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, expected);
    for package in &inventory.packages {
        let paths = paths_of(root, package);
        assert!(
            paths.contains(&format!("{site}/{}/__init__.py", package.name)),
            "{paths:?}"
        );
    }
    let warned: Vec<&String> = inventory
        .warnings
        .iter()
        .filter(|w| w.contains("no Name or Version"))
        .collect();
    assert_eq!(warned.len(), count.div_ceil(7));
    let mut sorted = warned.clone();
    sorted.sort();
    assert_eq!(warned, sorted, "warnings in the dist-infos' order");
}

/// A dist-info with `METADATA` headers `headers` and license files `licenses` (path, text).
fn write_dist_info(root: &Path, name: &str, headers: &str, licenses: &[(&str, &str)]) {
    let dir = format!("lib/python3.12/site-packages/{name}-1.0.dist-info");
    let metadata = format!("Metadata-Version: 2.4\nName: {name}\nVersion: 1.0\n{headers}");
    write(root, &format!("{dir}/METADATA"), metadata.as_bytes());
    for (path, text) in licenses {
        write(root, &format!("{dir}/{path}"), text.as_bytes());
    }
}

const BSD_3: &str = include_str!("../../fixtures/licenses/BSD-3-Clause.jinja2-3.1.6");
const MIT: &str = include_str!("../../fixtures/licenses/MIT.six-1.17.0");

#[test]
fn vague_licenses_are_concluded_from_the_license_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let classifier = "Classifier: License :: OSI Approved :: BSD License\n";
    write_dist_info(
        root,
        "classified",
        classifier,
        &[("licenses/LICENSE.txt", BSD_3)],
    );
    write_dist_info(root, "bare", "License: BSD\n", &[("LICENSE", BSD_3)]);
    // Two license files: both apply.
    write_dist_info(
        root,
        "two",
        "",
        &[
            ("licenses/LICENSE", BSD_3),
            ("licenses/vendor/COPYING.mit", MIT),
        ],
    );
    // One file no license matches: the conclusion would be a guess, so none.
    write_dist_info(
        root,
        "partly",
        classifier,
        &[
            ("licenses/LICENSE", BSD_3),
            ("licenses/LICENSE.extra", "All rights reserved.\n"),
        ],
    );
    // Declared as an SPDX expression: its files are not read (this one would match).
    write_dist_info(
        root,
        "clear",
        "License-Expression: mit\n",
        &[("LICENSE", BSD_3)],
    );
    write_dist_info(root, "none", "", &[]);
    let inventory = read(root);
    /// Name, declared, concluded, and the license to evaluate.
    type Licenses<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
    let summary: Vec<Licenses> = inventory
        .packages
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.license.as_deref(),
                p.license_concluded.as_deref(),
                p.license_to_evaluate(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "bare",
                Some("BSD"),
                Some("BSD-3-Clause"),
                Some("BSD-3-Clause")
            ),
            (
                "classified",
                Some("BSD License"),
                Some("BSD-3-Clause"),
                Some("BSD-3-Clause")
            ),
            ("clear", Some("MIT"), None, Some("MIT")),
            ("none", None, None, None),
            ("partly", Some("BSD License"), None, None),
            (
                "two",
                None,
                Some("BSD-3-Clause AND MIT"),
                Some("BSD-3-Clause AND MIT")
            ),
        ]
    );
    let (_, classified) = find(&inventory, "classified");
    assert_eq!(
        classified.license_files,
        ["lib/python3.12/site-packages/classified-1.0.dist-info/licenses/LICENSE.txt"]
    );
}

#[test]
fn r_and_npm_licenses_are_normalised_and_their_license_files_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let built = "Built: R 4.2.2; ; 2023-01-01 00:00:00 UTC; unix\n";
    let description = format!("Package: MASS\nVersion: 7.3-58.2\nLicense: GPL-2 | GPL-3\n{built}");
    write(root, "R/MASS/DESCRIPTION", description.as_bytes());
    let description = format!("Package: ownlicense\nVersion: 1.0\nLicense: file LICENSE\n{built}");
    write(root, "R/ownlicense/DESCRIPTION", description.as_bytes());
    write(root, "R/ownlicense/LICENSE", MIT.as_bytes());
    write(
        root,
        "node_modules/old/package.json",
        br#"{"name": "old", "version": "1.0.0", "license": "Apache 2.0"}"#,
    );
    write(
        root,
        "node_modules/seefile/package.json",
        br#"{"name": "seefile", "version": "1.0.0", "license": "SEE LICENSE IN LICENSE.md"}"#,
    );
    write(root, "node_modules/seefile/LICENSE.md", BSD_3.as_bytes());
    let licenses = |inventory: &Inventory, name: &str| {
        let (_, package) = find(inventory, name);
        (package.license.clone(), package.license_concluded.clone())
    };
    let inventory = read(root);
    assert_eq!(
        licenses(&inventory, "MASS"),
        (Some("GPL-2.0-only OR GPL-3.0-only".into()), None)
    );
    assert_eq!(
        licenses(&inventory, "ownlicense"),
        (Some("file LICENSE".into()), Some("MIT".into()))
    );
    assert_eq!(
        licenses(&inventory, "old"),
        (Some("Apache-2.0".into()), None)
    );
    assert_eq!(
        licenses(&inventory, "seefile"),
        (
            Some("SEE LICENSE IN LICENSE.md".into()),
            Some("BSD-3-Clause".into())
        )
    );
}
