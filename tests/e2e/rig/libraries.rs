//! Real app libraries for the tests of what stowage finds in a library:
//! venvs of Debian's `python3 -m venv` and `pip --target` folders with
//! JupyterLab from PyPI, a node_modules from the npm registry, and — since
//! neither conda's channels nor CRAN can be reached here — a conda env and an
//! installed R library written by hand in their published on-disk formats.
//!
//! PyPI and npm are reached once per `$STOWAGE_TEST_DIR` (once per CI run):
//! the wheels land in `$STOWAGE_TEST_DIR/pypi-wheels` and every install after
//! that is offline (`--no-index --find-links`), pinned by
//! `fixtures/libraries/constraints.txt`. Tests run as separate processes, so
//! whatever is built once is built under an `flock` on a lock file beside it
//! and marked done by a file that holds the inputs' key; a build that died
//! half-way has no marker and is redone.
//!
//! The `*_shared` libraries are for reading only: a test that changes a
//! library copies it ([`copy_tree`]) or builds its own.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::{Value, json};

use super::{gzip, rig_env, sha256_hex, skip_or_fail};

/// The top-level PyPI pins; constraints.txt pins everything under them.
pub const JUPYTERLAB: &str = "jupyterlab==4.6.6";
pub const COWSAY: &str = "cowsay==6.1";
/// A package with compiled extensions and hundreds of modules, for the bytecode tests.
pub const NUMPY: &str = "numpy==2.2.6";
/// The npm packages of [`node_modules`]: one scoped, and `debug@2` needs
/// `ms@2.0.0` while the top level has `ms@2.1.3`, so npm nests a
/// `node_modules/debug/node_modules/ms`.
pub const NPM_PACKAGES: [&str; 3] = ["@sindresorhus/is@4.6.0", "debug@2.6.9", "ms@2.1.3"];

/// Bumped when a cached library is built differently, so caches left by an
/// older rig in a kept `$STOWAGE_TEST_DIR` are rebuilt.
const RIG_CACHE_VERSION: &str = "1";

/// Installing JupyterLab or downloading its wheels can take longer than one
/// ordinary tool call ([`super::TOOL_TIMEOUT`]) on a slow network.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// What an inventory of a library should list for one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub version: String,
    pub purl: String,
}

/// `$STOWAGE_TEST_DIR`, which `scripts/test-env.sh` prepares.
pub fn test_dir() -> PathBuf {
    rig_env()
        .get("STOWAGE_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/stowage-test"))
}

/// The pins of every distribution in the wheel set.
pub fn constraints() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/libraries/constraints.txt")
}

/// The key of everything built from the wheels: a changed pin rebuilds.
fn pypi_key() -> String {
    let text = fs::read(constraints()).expect("read fixtures/libraries/constraints.txt");
    format!("{RIG_CACHE_VERSION} {}", sha256_hex(&text))
}

fn missing_pytools() -> String {
    format!(
        "{} is missing: run `sudo scripts/test-env.sh start`, which creates the tools venv",
        test_dir().join("pytools/bin/python").display()
    )
}

/// The tools venv's python (spdx-tools, cyclonedx-python-lib, cyclonedx-bom).
/// Panics, naming scripts/test-env.sh, when it is missing; tests that may
/// skip outside CI call [`require_pytools`] first.
pub fn pytools_python() -> PathBuf {
    let python = test_dir().join("pytools/bin/python");
    assert!(python.is_file(), "{}", missing_pytools());
    python
}

/// `cyclonedx-py` of the tools venv (see [`pytools_python`]).
pub fn cyclonedx_py() -> PathBuf {
    let bin = test_dir().join("pytools/bin/cyclonedx-py");
    assert!(bin.is_file(), "{}", missing_pytools());
    bin
}

/// `pyspdxtools` of the tools venv (see [`pytools_python`]).
pub fn pyspdxtools() -> PathBuf {
    let bin = test_dir().join("pytools/bin/pyspdxtools");
    assert!(bin.is_file(), "{}", missing_pytools());
    bin
}

/// True when the tools venv, and so Debian's working `python3 -m venv`, is
/// there. If not: panics under `CI=true`, else prints `SKIPPED:` and
/// returns false.
pub fn require_pytools() -> bool {
    if test_dir().join("pytools/bin/cyclonedx-py").is_file() {
        return true;
    }
    skip_or_fail(&missing_pytools())
}

/// True when npm is on PATH (see [`super::require_tool`]).
pub fn require_npm() -> bool {
    super::require_tools(&["node", "npm"])
}

// ---------------------------------------------------------------------------
// Built once per run, across processes

/// An exclusive `flock` on `path`, released when the file is dropped (also
/// when the holder panics or dies).
fn lock_file(path: &Path) -> File {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open lock file {}: {e}", path.display()));
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return file;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            panic!("flock {}: {err}", path.display());
        }
    }
}

/// Builds `path` with `build` unless a build of the same `key` finished
/// there before, in this process or another. Built in place, not renamed
/// into place, because a venv names its own absolute path in its scripts.
fn build_once(path: &Path, key: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let parent = path.parent().expect("a cached library has a parent");
    fs::create_dir_all(parent).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let _lock = lock_file(&parent.join(format!("{name}.lock")));
    let done = parent.join(format!("{name}.done"));
    if path.exists() && fs::read_to_string(&done).is_ok_and(|k| k == key) {
        return path.to_owned();
    }
    let _ = fs::remove_file(&done);
    if path.exists() {
        fs::remove_dir_all(path).unwrap_or_else(|e| panic!("remove stale {}: {e}", path.display()));
    }
    build(path);
    fs::write(&done, key).unwrap();
    path.to_owned()
}

/// Runs an install step, failing the test with its output when it fails.
fn run_step(what: &str, cmd: &mut Command) {
    // The machine's PIP_FIND_LINKS would mix other wheels into the set.
    cmd.env_remove("PIP_FIND_LINKS").timeout(INSTALL_TIMEOUT);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// PyPI

/// The wheels of JupyterLab and cowsay and all they depend on, for CPython
/// 3.11 (Debian's /usr/bin/python3), downloaded once per run into
/// `$STOWAGE_TEST_DIR/pypi-wheels`.
pub fn pypi_wheels() -> PathBuf {
    build_once(&test_dir().join("pypi-wheels"), &pypi_key(), |dir| {
        run_step(
            "pip download",
            Command::new(pytools_python())
                .args(["-m", "pip", "download", "--quiet", "--dest"])
                .arg(dir)
                .args(["--only-binary=:all:", "-c"])
                .arg(constraints())
                .args([JUPYTERLAB, COWSAY]),
        );
    })
}

/// The numpy wheel for CPython 3.11, downloaded once per run into
/// `$STOWAGE_TEST_DIR/pypi-numpy` (apart from [`pypi_wheels`], whose set
/// stays as it is).
pub fn numpy_wheels() -> PathBuf {
    let key = format!("{RIG_CACHE_VERSION} {NUMPY}");
    build_once(&test_dir().join("pypi-numpy"), &key, |dir| {
        run_step(
            "pip download numpy",
            Command::new(pytools_python())
                .args(["-m", "pip", "download", "--quiet", "--dest"])
                .arg(dir)
                .args(["--only-binary=:all:", NUMPY]),
        );
    })
}

/// A new venv of Debian's `/usr/bin/python3 -m venv` at `dir` with numpy
/// installed offline, its bytecode compiled by pip as usual (timestamp-based:
/// `SOURCE_DATE_EPOCH` unset); returns `dir`.
pub fn numpy_venv(dir: &Path) -> PathBuf {
    let wheels = numpy_wheels();
    run_step(
        "python3 -m venv",
        Command::new("/usr/bin/python3")
            .args(["-m", "venv"])
            .arg(dir),
    );
    run_step(
        "pip install numpy",
        Command::new(dir.join("bin/python"))
            .env_remove("SOURCE_DATE_EPOCH")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-index",
                "--find-links",
            ])
            .arg(wheels)
            .arg(NUMPY),
    );
    dir.to_owned()
}

/// `<python> -m pip install` offline from [`pypi_wheels`], pinned by the
/// constraints.
fn pip_offline(python: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
    ])
    .arg(pypi_wheels())
    .arg("-c")
    .arg(constraints());
    cmd
}

/// A new venv of Debian's `/usr/bin/python3 -m venv` at `dir` with
/// JupyterLab installed; returns `dir`.
pub fn jupyterlab_venv(dir: &Path) -> PathBuf {
    run_step(
        "python3 -m venv",
        Command::new("/usr/bin/python3")
            .args(["-m", "venv"])
            .arg(dir),
    );
    pip_install(dir, "jupyterlab");
    dir.to_owned()
}

/// Installs `requirement` (e.g. `cowsay`) into the venv at `venv`, offline.
pub fn pip_install(venv: &Path, requirement: &str) {
    run_step(
        &format!("pip install {requirement}"),
        pip_offline(&venv.join("bin/python")).arg(requirement),
    );
}

/// A `pip install --target <dir>` folder of JupyterLab; returns `dir`.
pub fn jupyterlab_target(dir: &Path) -> PathBuf {
    let mut cmd = pip_offline(&pytools_python());
    run_step(
        "pip install --target",
        cmd.arg("--target").arg(dir).arg("jupyterlab"),
    );
    dir.to_owned()
}

/// [`jupyterlab_venv`] built once per run, for reading only.
pub fn jupyterlab_venv_shared() -> PathBuf {
    build_once(
        &test_dir().join("libraries/jupyterlab-venv"),
        &pypi_key(),
        |dir| {
            jupyterlab_venv(dir);
        },
    )
}

/// PyMuPDF, whose metadata declares `License: GNU AFFERO GPL 3.0`: the
/// AGPL package of the export policy's tests.
pub const PYMUPDF: &str = "PyMuPDF==1.24.14";

/// A venv of Debian's `python3 -m venv` with [`PYMUPDF`] from PyPI
/// (downloaded once per run, no dependencies: it has none at run time),
/// built once per run, for reading only.
pub fn pymupdf_venv_shared() -> PathBuf {
    let wheels = build_once(&test_dir().join("policy-wheels"), PYMUPDF, |dir| {
        run_step(
            "pip download PyMuPDF",
            Command::new(pytools_python())
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--dest",
                ])
                .arg(dir)
                .arg(PYMUPDF),
        );
    });
    build_once(&test_dir().join("libraries/pymupdf-venv"), PYMUPDF, |dir| {
        run_step(
            "python3 -m venv",
            Command::new("/usr/bin/python3")
                .args(["-m", "venv"])
                .arg(dir),
        );
        run_step(
            "pip install PyMuPDF",
            Command::new(dir.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-index",
                    "--no-deps",
                    "--find-links",
                ])
                .arg(&wheels)
                .arg(PYMUPDF),
        );
    })
}

/// [`jupyterlab_target`] built once per run, for reading only.
pub fn jupyterlab_target_shared() -> PathBuf {
    build_once(
        &test_dir().join("libraries/jupyterlab-target"),
        &pypi_key(),
        |dir| {
            jupyterlab_target(dir);
        },
    )
}

/// Copies the tree `from` to `to` (which must not exist) as `cp -a` does:
/// symlinks stay links, modes and times are kept. A copied venv still runs
/// the original's python (its scripts name the original path).
pub fn copy_tree(from: &Path, to: &Path) {
    assert!(!to.exists(), "copy_tree: {} exists", to.display());
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .expect("run cp");
    assert!(
        out.status.success(),
        "cp -a {} {}: {}",
        from.display(),
        to.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// npm

/// `npm install` of [`NPM_PACKAGES`] from the npm registry under `dir`
/// (cache shared in `$STOWAGE_TEST_DIR/npm-cache`); returns
/// `dir/node_modules`.
pub fn node_modules(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    run_step(
        "npm install",
        Command::new("npm")
            .args(["install", "--prefix"])
            .arg(dir)
            .args(["--no-audit", "--no-fund", "--ignore-scripts", "--cache"])
            .arg(test_dir().join("npm-cache"))
            .args(NPM_PACKAGES),
    );
    dir.join("node_modules")
}

/// Every package npm installed in `node_modules` (as returned by
/// [`node_modules`]), as (name, version), from the `packages` map of the
/// package-lock.json beside it; a nested copy is listed too.
pub fn npm_expected(node_modules: &Path) -> Vec<(String, String)> {
    let lock_path = node_modules
        .parent()
        .expect("node_modules has a parent")
        .join("package-lock.json");
    let lock: Value = serde_json::from_slice(&fs::read(&lock_path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
    let packages = lock["packages"]
        .as_object()
        .unwrap_or_else(|| panic!("{} has no packages map", lock_path.display()));
    let mut out: Vec<(String, String)> = packages
        .iter()
        .filter_map(|(key, value)| {
            let name = key.rsplit_once("node_modules/")?.1;
            let version = value["version"].as_str()?;
            Some((name.to_owned(), version.to_owned()))
        })
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// conda

/// conda-forge's prefix placeholder: 255 bytes, replaced at install by the
/// env's prefix (in binaries padded with NULs to keep offsets).
fn conda_placeholder(name: &str) -> String {
    let mut p = format!("/home/conda/feedstock_root/build_artifacts/{name}_1704067200000/_h_env");
    while p.len() < 255 {
        p.push_str("_placehold");
    }
    p.truncate(255);
    p
}

enum CondaFile {
    /// A file linked as it is in the package.
    Plain(&'static str, Vec<u8>),
    /// A text file whose placeholder is replaced by the prefix.
    Text(&'static str, String),
    /// A binary whose placeholder, in a NUL-terminated string, is replaced
    /// by the prefix and NUL-padded.
    Binary(&'static str, Vec<u8>),
    /// A symlink to a file of the same package.
    Softlink(&'static str, &'static str),
}

struct CondaPackage {
    name: &'static str,
    version: &'static str,
    build: &'static str,
    build_number: u64,
    subdir: &'static str,
    license: &'static str,
    depends: &'static [&'static str],
    noarch_python: bool,
    files: Vec<CondaFile>,
}

fn replace_binary(bytes: &[u8], placeholder: &str, prefix: &str) -> Vec<u8> {
    let ph = placeholder.as_bytes();
    assert!(
        prefix.len() <= ph.len(),
        "prefix longer than the placeholder"
    );
    let mut out = bytes.to_vec();
    let mut at = 0;
    while let Some(i) = out[at..].windows(ph.len()).position(|w| w == ph) {
        let start = at + i;
        let end = start + out[start..].iter().position(|&b| b == 0).unwrap();
        let mut s = Vec::new();
        s.extend_from_slice(prefix.as_bytes());
        s.extend_from_slice(&out[start + ph.len()..end]);
        s.resize(end - start, 0);
        out[start..end].copy_from_slice(&s);
        at = end;
    }
    out
}

fn write_conda_package(prefix: &Path, pkg: &CondaPackage, channel: &str) -> Expected {
    let dist = format!("{}-{}-{}", pkg.name, pkg.version, pkg.build);
    let placeholder = conda_placeholder(pkg.name);
    let prefix_str = prefix.to_str().expect("a UTF-8 prefix");
    let mut files = Vec::new();
    let mut paths = Vec::new();
    for file in &pkg.files {
        let (path, entry) = match file {
            CondaFile::Plain(path, bytes) => {
                write_file(&prefix.join(path), bytes);
                let sha = sha256_hex(bytes);
                let entry = json!({"_path": path, "path_type": "hardlink", "sha256": sha,
                    "sha256_in_prefix": sha, "size_in_bytes": bytes.len()});
                (path, entry)
            }
            CondaFile::Text(path, text) => {
                let installed = text.replace(&placeholder, prefix_str);
                write_file(&prefix.join(path), installed.as_bytes());
                let entry = json!({"_path": path, "file_mode": "text", "path_type": "hardlink",
                    "prefix_placeholder": placeholder, "sha256": sha256_hex(text.as_bytes()),
                    "sha256_in_prefix": sha256_hex(installed.as_bytes()),
                    "size_in_bytes": text.len()});
                (path, entry)
            }
            CondaFile::Binary(path, bytes) => {
                let installed = replace_binary(bytes, &placeholder, prefix_str);
                write_file(&prefix.join(path), &installed);
                fs::set_permissions(prefix.join(path), fs::Permissions::from_mode(0o755)).unwrap();
                let entry = json!({"_path": path, "file_mode": "binary", "path_type": "hardlink",
                    "prefix_placeholder": placeholder, "sha256": sha256_hex(bytes),
                    "sha256_in_prefix": sha256_hex(&installed), "size_in_bytes": bytes.len()});
                (path, entry)
            }
            CondaFile::Softlink(path, target) => {
                let link = prefix.join(path);
                symlink(target, &link).unwrap();
                let bytes = fs::read(&link).expect("a softlink to a file written before it");
                let entry = json!({"_path": path, "path_type": "softlink",
                    "sha256": sha256_hex(&bytes), "size_in_bytes": bytes.len()});
                (path, entry)
            }
        };
        files.push(path.to_string());
        paths.push(entry);
    }
    // A channel given as a URL is a host's channel (`https://repo.anaconda.com/pkgs/main`), else one on anaconda.org.
    let channel_url = if channel.contains("://") {
        format!("{channel}/{}", pkg.subdir)
    } else {
        format!("https://conda.anaconda.org/{channel}/{}", pkg.subdir)
    };
    let fname = format!("{dist}.conda");
    // The archive's own digests; there is no archive here, so a stand-in.
    let archive = sha256_hex(fname.as_bytes());
    let mut record = json!({
        "build": pkg.build,
        "build_number": pkg.build_number,
        "channel": channel_url,
        "constrains": [],
        "depends": pkg.depends,
        "extracted_package_dir": format!("/opt/conda/pkgs/{dist}"),
        "features": "",
        "files": files,
        "fn": fname,
        "license": pkg.license,
        "link": {"source": format!("/opt/conda/pkgs/{dist}"), "type": 1},
        "md5": &archive[..32],
        "name": pkg.name,
        "package_tarball_full_path": format!("/opt/conda/pkgs/{fname}"),
        "paths_data": {"paths": paths, "paths_version": 1},
        "requested_spec": format!("{channel}::{}={}", pkg.name, pkg.version),
        "sha256": archive,
        "size": 100_000 + fname.len(),
        "subdir": pkg.subdir,
        "timestamp": 1_704_067_200_000u64,
        "track_features": "",
        "url": format!("{channel_url}/{fname}"),
        "version": pkg.version,
    });
    if pkg.noarch_python {
        record["noarch"] = json!("python");
        record["package_type"] = json!("noarch_python");
    }
    let meta = prefix.join("conda-meta").join(format!("{dist}.json"));
    write_file(&meta, &serde_json::to_vec_pretty(&record).unwrap());
    Expected {
        name: pkg.name.to_owned(),
        version: pkg.version.to_owned(),
        purl: format!(
            "pkg:conda/{}@{}?build={}&channel={channel}",
            pkg.name, pkg.version, pkg.build
        ),
    }
}

fn write_file(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A fake ELF shared object with `strings` in its NUL-terminated string
/// table, so a prefix placeholder sits where a real RPATH would.
fn fake_elf(strings: &[&str]) -> Vec<u8> {
    let mut b = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    b.extend_from_slice(&[0u8; 48]);
    for s in strings {
        b.extend_from_slice(s.as_bytes());
        b.push(0);
    }
    b.extend_from_slice(&[0u8; 64]);
    b
}

/// A wheel RECORD's hash: urlsafe base64 of the sha256, unpadded.
fn record_hash(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes))
}

/// xz, zlib and six as conda-forge builds them (file contents abridged).
fn conda_packages() -> [CondaPackage; 3] {
    let zlib_ph = conda_placeholder("zlib");
    let six_py = "\"\"\"Utilities for writing code that runs on Python 2 and 3\"\"\"\n\n\
                  __author__ = \"Benjamin Peterson <benjamin@python.org>\"\n\
                  __version__ = \"1.16.0\"\n";
    let six_metadata = "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\
                        Summary: Python 2 and 3 compatibility utilities\n\
                        Home-page: https://github.com/benjaminp/six\n\
                        Author: Benjamin Peterson\nLicense: MIT\n";
    let six_record = format!(
        "six.py,sha256={},{}\nsix-1.16.0.dist-info/INSTALLER,,\n\
         six-1.16.0.dist-info/METADATA,,\nsix-1.16.0.dist-info/RECORD,,\n\
         six-1.16.0.dist-info/top_level.txt,,\n",
        record_hash(six_py.as_bytes()),
        six_py.len()
    );
    [
        CondaPackage {
            name: "xz",
            version: "5.2.6",
            build: "h166bdaf_0",
            build_number: 0,
            subdir: "linux-64",
            license: "LGPL-2.1 and GPL-2.0",
            depends: &["libgcc-ng >=12"],
            noarch_python: false,
            files: vec![
                CondaFile::Plain("bin/xz", fake_elf(&["xz (XZ Utils) 5.2.6"])),
                CondaFile::Plain("include/lzma.h", b"/* lzma.h 5.2.6 */\n".to_vec()),
                CondaFile::Plain(
                    "lib/liblzma.so.5.2.6",
                    fake_elf(&["liblzma.so.5", "XZ_5.0"]),
                ),
                CondaFile::Softlink("lib/liblzma.so.5", "liblzma.so.5.2.6"),
            ],
        },
        CondaPackage {
            name: "zlib",
            version: "1.3.1",
            build: "hb9d3cd8_2",
            build_number: 2,
            subdir: "linux-64",
            license: "Zlib",
            depends: &["__glibc >=2.17,<3.0.a0", "libgcc >=13"],
            noarch_python: false,
            files: vec![
                CondaFile::Plain("include/zlib.h", b"/* zlib.h 1.3.1 */\n".to_vec()),
                CondaFile::Binary(
                    "lib/libz.so.1.3.1",
                    fake_elf(&["libz.so.1", &format!("{zlib_ph}/lib"), "ZLIB_1.2.9"]),
                ),
                CondaFile::Softlink("lib/libz.so.1", "libz.so.1.3.1"),
                CondaFile::Text(
                    "lib/pkgconfig/zlib.pc",
                    format!(
                        "prefix={zlib_ph}\nexec_prefix=${{prefix}}\nlibdir=${{exec_prefix}}/lib\n\
                         includedir=${{prefix}}/include\n\nName: zlib\n\
                         Description: zlib compression library\nVersion: 1.3.1\n\n\
                         Libs: -L${{libdir}} -lz\nCflags: -I${{includedir}}\n"
                    ),
                ),
            ],
        },
        CondaPackage {
            name: "six",
            version: "1.16.0",
            build: "pyh6c4a22f_0",
            build_number: 0,
            subdir: "noarch",
            license: "MIT",
            depends: &["python"],
            noarch_python: true,
            files: vec![
                CondaFile::Plain(
                    "lib/python3.11/site-packages/six-1.16.0.dist-info/INSTALLER",
                    b"conda\n".to_vec(),
                ),
                CondaFile::Plain(
                    "lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA",
                    six_metadata.as_bytes().to_vec(),
                ),
                CondaFile::Plain(
                    "lib/python3.11/site-packages/six-1.16.0.dist-info/RECORD",
                    six_record.into_bytes(),
                ),
                CondaFile::Plain(
                    "lib/python3.11/site-packages/six-1.16.0.dist-info/top_level.txt",
                    b"six\n".to_vec(),
                ),
                CondaFile::Plain(
                    "lib/python3.11/site-packages/six.py",
                    six_py.as_bytes().to_vec(),
                ),
            ],
        },
    ]
}

/// A conda env at `dir` (its prefix) as conda writes it: zlib and xz from
/// conda-forge's linux-64 and the noarch python package six, each with its
/// `conda-meta/<name>-<version>-<build>.json` (files, paths_data with
/// sha256 and sizes, prefix placeholders in one text and one binary file),
/// and `conda-meta/history`. Returns the prefix and what an inventory
/// should list.
pub fn conda_env(dir: &Path) -> (PathBuf, Vec<Expected>) {
    let (prefix, expected) = conda_env_from(dir, "conda-forge");
    (prefix, expected)
}

/// [`conda_env`]'s packages as installed from `channel`: a name on
/// anaconda.org (`conda-forge`) or a channel URL
/// (`https://repo.anaconda.com/pkgs/main`, Anaconda's own).
pub fn conda_env_from(dir: &Path, channel: &str) -> (PathBuf, Vec<Expected>) {
    fs::create_dir_all(dir.join("conda-meta")).unwrap();
    let packages = conda_packages();
    let expected: Vec<Expected> = packages
        .iter()
        .map(|p| write_conda_package(dir, p, channel))
        .collect();
    let history = format!(
        "==> 2024-01-01 00:00:00 <==\n\
         # cmd: /opt/conda/bin/conda create --yes --prefix {} --channel conda-forge zlib=1.3.1 xz=5.2.6 six=1.16.0\n\
         # conda version: 23.11.0\n\
         +conda-forge/linux-64::xz-5.2.6-h166bdaf_0\n\
         +conda-forge/linux-64::zlib-1.3.1-hb9d3cd8_2\n\
         +conda-forge/noarch::six-1.16.0-pyh6c4a22f_0\n\
         # update specs: [\"zlib=1.3.1\", \"xz=5.2.6\", \"six=1.16.0\"]\n",
        dir.display()
    );
    write_file(&dir.join("conda-meta/history"), history.as_bytes());
    (dir.to_owned(), expected)
}

// ---------------------------------------------------------------------------
// R

struct RPackage {
    name: &'static str,
    version: &'static str,
    title: &'static str,
    license: &'static str,
    packaged: &'static str,
    publication: &'static str,
    compiled: bool,
}

/// One installed package of [`r_library`] at `pkg`.
fn write_r_package(pkg: &Path, p: &RPackage) {
    let platform = if p.compiled {
        "x86_64-pc-linux-gnu"
    } else {
        ""
    };
    let description = format!(
        "Package: {name}\nType: Package\nTitle: {title}\nVersion: {version}\n\
         Description: The {name} package, as installed from CRAN.\n\
         License: {license}\nEncoding: UTF-8\nNeedsCompilation: {nc}\n\
         Packaged: {packaged}\nRepository: CRAN\nDate/Publication: {publication}\n\
         Built: R 4.2.2; {platform}; 2024-01-01 00:00:00 UTC; unix\n",
        name = p.name,
        title = p.title,
        version = p.version,
        license = p.license,
        nc = if p.compiled { "yes" } else { "no" },
        packaged = p.packaged,
        publication = p.publication,
    );
    write_file(&pkg.join("DESCRIPTION"), description.as_bytes());
    write_file(
        &pkg.join("NAMESPACE"),
        format!(
            "# Generated by roxygen2: do not edit by hand\n\nexport({})\n",
            p.name
        )
        .as_bytes(),
    );
    write_file(
        &pkg.join("LICENSE"),
        format!("YEAR: 2024\nCOPYRIGHT HOLDER: {} authors\n", p.name).as_bytes(),
    );
    write_file(
        &pkg.join("INDEX"),
        format!("{}\t\t{}\n", p.name, p.title).as_bytes(),
    );
    // R's serialized objects (.rds) are gzip'd `X\n` streams.
    let rds = |what: &str| gzip(format!("X\n\0\0\0\x03{}:{what}", p.name).as_bytes());
    for meta in ["package", "Rd", "hsearch", "links", "nsInfo"] {
        write_file(&pkg.join(format!("Meta/{meta}.rds")), &rds(meta));
    }
    write_file(
        &pkg.join(format!("R/{}", p.name)),
        format!(
            "#  File share/R/nspackloader.R\n\
             local({{\n    info <- loadingNamespaceInfo()\n    pkg <- info$pkgname\n\
             }})\n# {}\n",
            p.name
        )
        .as_bytes(),
    );
    write_file(&pkg.join(format!("R/{}.rdb", p.name)), &rds("rdb"));
    write_file(&pkg.join(format!("R/{}.rdx", p.name)), &rds("rdx"));
    write_file(
        &pkg.join("help/AnIndex"),
        format!("{0}\t{0}\n", p.name).as_bytes(),
    );
    write_file(&pkg.join(format!("help/{}.rdb", p.name)), &rds("help"));
    write_file(&pkg.join(format!("help/{}.rdx", p.name)), &rds("helpx"));
    write_file(&pkg.join("help/aliases.rds"), &rds("aliases"));
    write_file(&pkg.join("help/paths.rds"), &rds("paths"));
    write_file(
        &pkg.join("html/00Index.html"),
        format!(
            "<!DOCTYPE html>\n<html><head><title>R: {}</title></head></html>\n",
            p.title
        )
        .as_bytes(),
    );
    if p.compiled {
        let so = pkg.join(format!("libs/{}.so", p.name));
        write_file(&so, &fake_elf(&[&format!("{}.so", p.name), "R_init"]));
        fs::set_permissions(&so, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// An installed R library at `dir` as `R CMD INSTALL` leaves it for three
/// CRAN packages (R6, glue, jsonlite): DESCRIPTION with its `Built:` line,
/// NAMESPACE, Meta/, R/ lazy-load databases, help/, html/, and a shared
/// object for the compiled ones. Returns the library and what an inventory
/// should list.
pub fn r_library(dir: &Path) -> (PathBuf, Vec<Expected>) {
    let packages = [
        RPackage {
            name: "R6",
            version: "2.5.1",
            title: "Encapsulated Classes with Reference Semantics",
            license: "MIT + file LICENSE",
            packaged: "2021-08-06 20:18:46 UTC; winston",
            publication: "2021-08-19 14:00:05 UTC",
            compiled: false,
        },
        RPackage {
            name: "glue",
            version: "1.7.0",
            title: "Interpreted String Literals",
            license: "MIT + file LICENSE",
            packaged: "2024-01-08 18:15:56 UTC; jenny",
            publication: "2024-01-09 23:13:08 UTC",
            compiled: true,
        },
        RPackage {
            name: "jsonlite",
            version: "1.8.8",
            title: "A Simple and Robust JSON Parser and Generator for R",
            license: "MIT + file LICENSE",
            packaged: "2023-12-04 19:30:43 UTC; jeroen",
            publication: "2023-12-04 23:20:02 UTC",
            compiled: true,
        },
    ];
    let mut expected = Vec::new();
    for p in &packages {
        write_r_package(&dir.join(p.name), p);
        expected.push(Expected {
            name: p.name.to_owned(),
            version: p.version.to_owned(),
            purl: format!("pkg:cran/{}@{}", p.name, p.version),
        });
    }
    (dir.to_owned(), expected)
}

/// Where tornado's test key (a private key in a published package) is in
/// the JupyterLab venv.
pub const TORNADO_TEST_KEY: &str = "lib/python3.11/site-packages/tornado/test/test.key";

/// `site` has tornado's test key, and the RECORD of tornado's dist-info
/// lists it.
pub fn assert_tornado_key(site: &Path) {
    assert!(
        site.join("tornado/test/test.key").is_file(),
        "no tornado/test/test.key in {}",
        site.display()
    );
    let dist_info = fs::read_dir(site)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("tornado-") && n.ends_with(".dist-info"))
        .unwrap_or_else(|| panic!("no tornado-*.dist-info in {}", site.display()));
    let record = fs::read_to_string(site.join(dist_info).join("RECORD")).unwrap();
    assert!(
        record
            .lines()
            .any(|l| l.starts_with("tornado/test/test.key,sha256=")),
        "tornado's RECORD does not list tornado/test/test.key"
    );
}

/// The names of `expected`, in order.
pub fn names(expected: &[Expected]) -> Vec<&str> {
    expected.iter().map(|e| e.name.as_str()).collect()
}
