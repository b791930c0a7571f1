//! Shared helpers for the end-to-end tests: the test rig's environment, the
//! real tools (docker, podman, skopeo, umoci, oci-image-tool), a sample app
//! written in code, and small independent readers of what stowage writes
//! (OCI layouts, docker-save tarballs, layer tars) so assertions do not
//! trust stowage to describe its own output.
//!
//! The rig is started by `scripts/test.sh` (or `scripts/test-env.sh start`),
//! which writes `$STOWAGE_TEST_DIR/env`. A test whose tool is missing fails
//! under `CI=true` and prints a loud `SKIPPED:` line otherwise.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The little HTTP the rig's own servers and proxies speak.
pub mod http;
/// A stand-in for Docker Hub's repository API, for the export tests.
pub mod hub;
/// Real app libraries (PyPI venvs and --target folders, node_modules, a
/// conda env, an R library), built once per run where they are downloaded.
pub mod libraries;
/// The proxies between stowage and a registry: faults and byte counts.
pub mod proxy;
/// Real registries (anonymous, htpasswd, token auth, TLS), credentials, and
/// content for the registry tests.
pub mod registry;
/// The test token server, which signs the registry's tokens.
pub mod token;

/// How long one call of an outside tool may take before the test fails.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(180);

/// The variables `scripts/test-env.sh` exports for the tools it configures.
const RIG_VARS: [&str; 6] = [
    "STOWAGE_TEST_DIR",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "CONTAINERS_CONF",
    "CONTAINERS_STORAGE_CONF",
    "REGISTRY_AUTH_FILE",
];

/// True when running under CI, where no test may skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn test_name() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(str::to_owned)
        .or_else(|| std::env::args().nth(1).filter(|a| !a.starts_with('-')))
        .unwrap_or_else(|| "this test".to_owned())
}

/// Fails under CI; otherwise says loudly that the test is skipped. Returns
/// false so callers can `return` early.
pub fn skip_or_fail(why: &str) -> bool {
    if in_ci() {
        panic!(
            "{why} (CI=true: tests never skip; run scripts/test.sh, which installs and starts the tools)"
        );
    }
    eprintln!();
    eprintln!("SKIPPED: {}: {why}", test_name());
    eprintln!("SKIPPED: run `sudo scripts/test.sh` to install and start the test tools");
    eprintln!();
    false
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
}

/// True when `name` is on PATH. If it is not: panics under `CI=true`,
/// otherwise prints `SKIPPED: … missing` and returns false.
pub fn require_tool(name: &str) -> bool {
    if find_in_path(name).is_some() {
        return true;
    }
    skip_or_fail(&format!("{name} missing"))
}

/// True when every tool in `names` is on PATH (see [`require_tool`]).
pub fn require_tools(names: &[&str]) -> bool {
    names.iter().all(|n| require_tool(n))
}

/// True when the tests run as root (as `scripts/test.sh` does).
pub fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The rig's environment: variables already exported win; the rest come
/// from `$STOWAGE_TEST_DIR/env` (default `/tmp/stowage-test/env`).
pub fn rig_env() -> &'static BTreeMap<String, String> {
    static ENV: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut map = BTreeMap::new();
        let dir = std::env::var("STOWAGE_TEST_DIR").unwrap_or_else(|_| "/tmp/stowage-test".into());
        if let Ok(text) = fs::read_to_string(Path::new(&dir).join("env")) {
            for line in text.lines() {
                let Some(rest) = line.trim().strip_prefix("export ") else {
                    continue;
                };
                let Some((key, value)) = rest.split_once('=') else {
                    continue;
                };
                let value = value
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .unwrap_or(value);
                map.insert(key.to_owned(), value.to_owned());
            }
        }
        for var in RIG_VARS {
            if let Ok(value) = std::env::var(var) {
                map.insert(var.to_owned(), value);
            }
        }
        map
    })
}

/// A command for an outside tool, with the rig's environment and a timeout.
pub fn tool(name: &str) -> Command {
    let mut cmd = Command::new(name);
    cmd.envs(rig_env()).timeout(TOOL_TIMEOUT);
    cmd
}

/// `docker` talking to the test dockerd.
pub fn docker() -> Command {
    tool("docker")
}

/// `podman` with the test containers.conf and storage.conf.
pub fn podman() -> Command {
    tool("podman")
}

pub fn skopeo() -> Command {
    tool("skopeo")
}

fn check_once(
    cell: &'static OnceLock<Result<(), String>>,
    f: impl FnOnce() -> Result<(), String>,
) -> bool {
    match cell.get_or_init(f) {
        Ok(()) => true,
        Err(why) => skip_or_fail(why),
    }
}

/// True when the test dockerd answers. Fails under CI when it does not.
pub fn docker_ready() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    if !require_tool("docker") {
        return false;
    }
    check_once(&READY, || {
        let Some(host) = rig_env().get("DOCKER_HOST") else {
            return Err("DOCKER_HOST is not set and $STOWAGE_TEST_DIR/env was not found: run scripts/test.sh".into());
        };
        let out = docker()
            .args(["info", "--format", "{{.ServerVersion}}"])
            .timeout(Duration::from_secs(30))
            .output()
            .map_err(|e| format!("cannot run docker: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "the test dockerd at {host} does not answer: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    })
}

/// True when podman is configured by the rig. Without the rig's
/// containers.conf podman would use (and fill) the user's own storage, and
/// its default ulimits fail in this sandbox, so the rig is required.
pub fn podman_ready() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    if !require_tool("podman") {
        return false;
    }
    check_once(&READY, || {
        for var in ["CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"] {
            if !rig_env().contains_key(var) {
                return Err(format!(
                    "{var} is not set and $STOWAGE_TEST_DIR/env was not found: run scripts/test.sh"
                ));
            }
        }
        Ok(())
    })
}

/// A unique, lower-case name for images and tags, so tests run in parallel
/// (and in several processes) without meeting.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fully qualified, unique image reference under `localhost/stowage-e2e`.
pub fn unique_ref(name: &str) -> String {
    format!("localhost/stowage-e2e/{name}:{}", unique("t"))
}

/// Removes a docker image when dropped, so runs do not fill the vfs store.
pub struct DockerImage(pub String);

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = docker().args(["rmi", "-f", &self.0]).output();
    }
}

/// Removes a docker container when dropped, however the test ends.
pub struct DockerContainer(pub String);

impl Drop for DockerContainer {
    fn drop(&mut self) {
        let _ = docker().args(["rm", "-f", &self.0]).output();
    }
}

/// Removes a podman image when dropped.
pub struct PodmanImage(pub String);

impl Drop for PodmanImage {
    fn drop(&mut self) {
        let _ = podman().args(["rmi", "-f", &self.0]).output();
    }
}

/// A per-test temporary folder, with stowage's cache and state inside it.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("stowage-e2e-")
            .tempdir()
            .expect("create a temporary folder");
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A fresh, empty folder in the sandbox.
    pub fn mkdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(&p).expect("create folder");
        p
    }

    /// The stowage binary, with `STOWAGE_CACHE_DIR` (and the state and XDG
    /// folders) inside this sandbox and `SOURCE_DATE_EPOCH` unset.
    pub fn stowage(&self) -> Command {
        stowage_with_cache(&self.join("cache"))
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

/// The stowage binary with its cache in `cache` and `SOURCE_DATE_EPOCH`
/// unset; runs in `cache`'s parent folder.
pub fn stowage_with_cache(cache: &Path) -> Command {
    let mut cmd = Command::cargo_bin("stowage").expect("the stowage binary is built by cargo");
    stowage_env(&mut cmd, cache);
    cmd
}

/// Gives `cmd` stowage's environment for a test: cache, state, XDG and
/// credential files under `cache`'s parent, no SOURCE_DATE_EPOCH.
pub fn stowage_env(cmd: &mut Command, cache: &Path) {
    let home = cache.parent().expect("cache has a parent");
    for (name, value) in stowage_vars(home, cache) {
        cmd.env(name, value);
    }
    cmd.env_remove("SOURCE_DATE_EPOCH")
        .current_dir(home)
        .timeout(TOOL_TIMEOUT);
}

/// The variables that keep a test's stowage inside `home`, its store in `cache`.
fn stowage_vars(home: &Path, cache: &Path) -> [(&'static str, PathBuf); 6] {
    [
        ("STOWAGE_CACHE_DIR", cache.to_path_buf()),
        ("STOWAGE_STATE_DIR", home.join("state")),
        ("XDG_CACHE_HOME", home.join("xdg-cache")),
        ("XDG_STATE_HOME", home.join("xdg-state")),
        ("DOCKER_CONFIG", home.join("docker-config")),
        ("REGISTRY_AUTH_FILE", home.join("auth.json")),
    ]
}

/// The stowage binary as a plain process (so it can be killed or
/// signalled), with the sandbox's cache, state and credential files; runs
/// in the sandbox, its output piped.
pub fn stowage_process(sb: &Sandbox, cache: &Path) -> std::process::Command {
    use std::process::Stdio;
    let mut cmd = std::process::Command::new(stowage_bin());
    cmd.envs(stowage_vars(sb.path(), cache))
        .env_remove("SOURCE_DATE_EPOCH")
        .current_dir(sb.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The path of the stowage binary cargo built for these tests.
pub fn stowage_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stowage"))
}

/// Runs a command that must succeed; returns its stdout as text.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().clone();
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// What stowage printed on stdout: `NAME@sha256:<hex>` or `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    pub name: Option<String>,
    pub digest: String,
}

/// Parses stowage's one-line stdout, failing the test on anything else.
pub fn parse_printed(stdout: &str) -> Printed {
    let line = stdout
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("stdout must be one line ending in a newline, got {stdout:?}"));
    assert!(
        !line.contains('\n'),
        "stdout must be one line, got {stdout:?}"
    );
    let (name, digest) = match line.rsplit_once('@') {
        Some((name, digest)) => (Some(name.to_owned()), digest.to_owned()),
        None => (None, line.to_owned()),
    };
    assert_digest(&digest);
    Printed { name, digest }
}

/// Asserts `digest` is `sha256:` and 64 lower-case hex digits.
pub fn assert_digest(digest: &str) {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("{digest:?} is not a sha256 digest"));
    assert!(
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{digest:?} is not sha256 and 64 lower-case hex digits"
    );
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Decompresses gzip or zstd data; returns other data unchanged.
pub fn decompress(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("valid gzip");
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        out = zstd::decode_all(bytes).expect("valid zstd");
    } else {
        out = bytes.to_vec();
    }
    out
}

/// Writes a decompressed copy of a `.tar.gz` next to it and returns its
/// path. podman 4.3 and skopeo 1.9 cannot read gzip-wrapped docker-archive
/// files (not even `docker save | gzip`), so they are handed the tar.
pub fn gunzip_to_tar(gz: &Path) -> PathBuf {
    let tar = gz.with_extension("").with_extension("plain.tar");
    fs::write(&tar, decompress(&fs::read(gz).unwrap())).unwrap();
    tar
}

// ---------------------------------------------------------------------------
// The sample app

/// What the sample app prints when run with its default command.
pub const APP_OUTPUT: [&str; 3] = [
    "stowage-app: hello-from-env in /home/user/work as uid 1000",
    "workspace notes",
    "arg: greet",
];

const START_SH: &str = r#"#!/bin/sh
# The sample app's start script: runs on scratch with the busybox beside it.
echo "stowage-app: $GREETING in $(pwd) as uid $(/opt/app/bin/busybox id -u)"
/opt/app/bin/busybox cat /home/user/work/notes.txt
for a in "$@"; do echo "arg: $a"; done
"#;

/// The sample app's stowage.toml; `image` is the spec's default reference.
pub fn app_spec(image: &str) -> String {
    format!(
        r#"# The sample app of stowage's end-to-end tests.
base = "scratch"
image = "{image}"

[app]
library = {{ source = "library", target = "/opt/app" }}
workspace = {{ source = "workspace", target = "/home/user/work" }}
exclude = ["**/__pycache__", "*.pyc"]
entrypoint = ["/opt/app/start.sh"]
command = ["greet"]
ports = ["8888/tcp"]
workdir = "/home/user/work"
user = "1000:100"

# The start script's #!/bin/sh: busybox is a shell when called sh.
[[files]]
source = "library/bin/busybox"
target = "/bin/sh"
mode = "0755"

[env]
GREETING = "hello-from-env"
PATH = "/opt/app/bin:/bin"

[labels]
"org.opencontainers.image.source" = "https://example.org/stowage-e2e"
"#
    )
}

/// Gives the app of `spec` a label of its own, so its image ID is its own.
///
/// Tests run at once and share podman's and dockerd's image stores: every
/// test's sample app would otherwise have one image ID, and one test's
/// `rmi -f` would remove the image another is about to run.
pub fn label_uniquely(spec: &Path, label: &str) {
    let mut text = fs::read_to_string(spec).unwrap();
    assert!(
        text.trim_end().ends_with("stowage-e2e\""),
        "[labels] must end the spec"
    );
    text.push_str(&format!("\"org.stowage.test.image\" = \"{label}\"\n"));
    fs::write(spec, text).unwrap();
}

pub fn write_file(path: &Path, content: impl AsRef<[u8]>, mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The sample app, written in `root`: a library (start script, busybox,
/// a few files and some that `exclude` drops), a workspace, and a spec
/// whose `image` is `image`. Returns the spec's path.
pub fn write_app(root: &Path, image: &str) -> PathBuf {
    let lib = root.join("library");
    write_file(&lib.join("start.sh"), START_SH, 0o755);
    fs::create_dir_all(lib.join("bin")).unwrap();
    fs::copy("/bin/busybox", lib.join("bin/busybox")).unwrap_or_else(|e| {
        panic!("copy /bin/busybox (Debian's busybox-static; scripts/test.sh installs it): {e}")
    });
    set_mode(&lib.join("bin/busybox"), 0o755);
    symlink("busybox", lib.join("bin/sh")).unwrap();
    write_file(
        &lib.join("share/motd.txt"),
        "stowage sample library\n",
        0o644,
    );
    write_file(&lib.join("pkg/__init__.py"), "", 0o644);
    write_file(
        &lib.join("pkg/__pycache__/__init__.cpython-312.pyc"),
        "bytecode",
        0o644,
    );
    write_file(&lib.join("mod.pyc"), "bytecode", 0o644);
    set_mode(&lib, 0o755);

    let ws = root.join("workspace");
    write_file(&ws.join("notes.txt"), "workspace notes\n", 0o644);
    write_file(&ws.join("data/numbers.csv"), "n\n1\n2\n3\n", 0o644);
    set_mode(&ws, 0o755);

    let spec = root.join("stowage.toml");
    fs::write(&spec, app_spec(image)).unwrap();
    spec
}

/// Sets the mtime (and atime) of every entry under `root`, symlinks
/// included, with `touch -h -d`.
pub fn touch_tree(root: &Path, date: &str) {
    let mut paths = Vec::new();
    walk(root, &mut |p| paths.push(p.to_path_buf()));
    paths.push(root.to_path_buf());
    for chunk in paths.chunks(200) {
        let status = std::process::Command::new("touch")
            .args(["-h", "-d", date])
            .args(chunk)
            .status()
            .expect("run touch");
        assert!(status.success(), "touch -d {date} failed");
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        f(&p);
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            walk(&p, f);
        }
    }
}

/// One entry of a file tree, as compared between the source and an unpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, sha256: String },
    Symlink { target: OsString },
}

/// Every entry under `root` (not `root` itself), keyed by the path bytes
/// relative to `root`, skipping paths for which `skip` is true.
pub fn read_tree(root: &Path, skip: &dyn Fn(&[u8]) -> bool) -> BTreeMap<Vec<u8>, Node> {
    let mut map = BTreeMap::new();
    let mut paths = Vec::new();
    walk(root, &mut |p| paths.push(p.to_path_buf()));
    for p in paths {
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        if skip(&rel) {
            continue;
        }
        let meta = fs::symlink_metadata(&p).unwrap();
        let mode = meta.mode() & 0o7777;
        let node = if meta.file_type().is_symlink() {
            Node::Symlink {
                target: fs::read_link(&p).unwrap().into_os_string(),
            }
        } else if meta.is_dir() {
            Node::Dir { mode }
        } else {
            Node::File {
                mode,
                sha256: sha256_hex(&fs::read(&p).unwrap()),
            }
        };
        map.insert(rel, node);
    }
    map
}

/// The (uid, gid) of `root` (key: empty) and of every entry under it,
/// keyed by the path bytes relative to `root`.
pub fn owners_under(root: &Path) -> BTreeMap<Vec<u8>, (u32, u32)> {
    let mut map = BTreeMap::new();
    let mut paths = vec![root.to_path_buf()];
    walk(root, &mut |p| paths.push(p.to_path_buf()));
    for p in paths {
        let meta = fs::symlink_metadata(&p).unwrap();
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        map.insert(rel, (meta.uid(), meta.gid()));
    }
    map
}

pub fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------
// Independent readers of what stowage writes

/// An image read from an OCI layout or a docker-save tarball.
#[derive(Debug, Clone)]
pub struct ReadImage {
    pub manifest_digest: String,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Value,
    pub config_bytes: Vec<u8>,
    pub config: Value,
}

impl ReadImage {
    /// The config's `rootfs.diff_ids`.
    pub fn diff_ids(&self) -> Vec<String> {
        self.config["rootfs"]["diff_ids"]
            .as_array()
            .expect("config has rootfs.diff_ids")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// The manifest's layer descriptors.
    pub fn layers(&self) -> Vec<Value> {
        self.manifest["layers"]
            .as_array()
            .expect("manifest has layers")
            .clone()
    }

    /// The `config` object of the image config (Env, Cmd, …).
    pub fn run_config(&self) -> &Value {
        &self.config["config"]
    }

    pub fn env(&self) -> Vec<String> {
        self.run_config()["Env"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }
}

/// An OCI image layout folder, read without stowage.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn open(dir: impl Into<PathBuf>) -> Layout {
        let dir = dir.into();
        let layout: Value = read_json(&dir.join("oci-layout"));
        assert_eq!(
            layout["imageLayoutVersion"],
            "1.0.0",
            "oci-layout in {}",
            dir.display()
        );
        Layout { dir }
    }

    pub fn index(&self) -> Value {
        read_json(&self.dir.join("index.json"))
    }

    /// The bytes of a blob, checked against its digest.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        let path = self.dir.join("blobs/sha256").join(hex);
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert_eq!(
            sha256_hex(&bytes),
            hex,
            "blob {} does not match its digest",
            path.display()
        );
        bytes
    }

    /// The index.json descriptors whose ref.name annotation is `tag`.
    pub fn descriptor(&self, tag: &str) -> Value {
        let index = self.index();
        let found: Vec<&Value> = index["manifests"]
            .as_array()
            .expect("index.json has manifests")
            .iter()
            .filter(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one descriptor tagged {tag:?} in {index}"
        );
        found[0].clone()
    }

    /// The image tagged `tag` (its manifest must be a single image).
    pub fn image(&self, tag: &str) -> ReadImage {
        let desc = self.descriptor(tag);
        self.image_at(desc["digest"].as_str().unwrap())
    }

    pub fn image_at(&self, manifest_digest: &str) -> ReadImage {
        let manifest_bytes = self.blob(manifest_digest);
        let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .expect("manifest has a config");
        let config_bytes = self.blob(config_digest);
        let config = serde_json::from_slice(&config_bytes).unwrap();
        ReadImage {
            manifest_digest: manifest_digest.to_owned(),
            manifest_bytes,
            manifest,
            config_bytes,
            config,
        }
    }

    /// The uncompressed tar of a layer blob, with its diff-id checked.
    pub fn layer_tar(&self, image: &ReadImage, index: usize) -> Vec<u8> {
        let desc = &image.layers()[index];
        let tar = decompress(&self.blob(desc["digest"].as_str().unwrap()));
        assert_eq!(
            sha256_digest(&tar),
            image.diff_ids()[index],
            "layer {index}'s diff-id does not match its tar"
        );
        tar
    }
}

pub fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every member of a tar (gzip-wrapped or not), by name. Test archives are
/// small, so they are read whole.
pub fn tar_members(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let data = decompress(bytes);
    let mut archive = tar::Archive::new(data.as_slice());
    let mut map = BTreeMap::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("a tar entry");
        if entry.header().entry_type().is_dir() {
            continue;
        }
        let name = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        map.insert(name, content);
    }
    map
}

/// A docker-save tarball, read without stowage: `manifest.json` and the
/// files it names.
pub struct DockerArchive {
    pub members: BTreeMap<String, Vec<u8>>,
}

impl DockerArchive {
    pub fn open(path: &Path) -> DockerArchive {
        let members = tar_members(&fs::read(path).unwrap());
        DockerArchive { members }
    }

    pub fn manifest(&self) -> Value {
        serde_json::from_slice(
            self.members
                .get("manifest.json")
                .expect("manifest.json in the archive"),
        )
        .unwrap()
    }

    pub fn member(&self, name: &str) -> &[u8] {
        self.members
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from the archive"))
    }

    /// The config of the archive's only image.
    pub fn config(&self) -> Value {
        let manifest = self.manifest();
        assert_eq!(
            manifest.as_array().unwrap().len(),
            1,
            "one image in {manifest}"
        );
        serde_json::from_slice(self.member(manifest[0]["Config"].as_str().unwrap())).unwrap()
    }

    pub fn repo_tags(&self) -> Vec<String> {
        self.manifest()[0]["RepoTags"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }
}

/// One entry of a layer tar, as the layer rules see it.
#[derive(Debug, Clone)]
pub struct TarEntry {
    pub path: Vec<u8>,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub size: u64,
}

/// The entries of an uncompressed tar, in archive order, with PAX and GNU
/// long names resolved.
pub fn tar_entries(tar_bytes: &[u8]) -> Vec<TarEntry> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("a tar") {
        let entry = entry.expect("a tar entry");
        let h = entry.header();
        out.push(TarEntry {
            path: entry.path_bytes().into_owned(),
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            gname: h.groupname_bytes().unwrap_or_default().to_vec(),
            link: entry.link_name_bytes().map(|l| l.into_owned()),
            size: h.size().unwrap(),
        });
    }
    out
}

// ---------------------------------------------------------------------------
// Base images made by hand (no docker needed)

/// A tar of `files` (path, content, mode), owned by root, mtime 0, with the
/// folders named by `dirs`.
pub fn make_layer(dirs: &[&str], files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for dir in dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        b.append_data(&mut h, format!("{dir}/"), std::io::empty())
            .unwrap();
    }
    for (path, content, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(*mode);
        h.set_size(content.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, path, *content).unwrap();
    }
    b.into_inner().unwrap()
}

/// A small busybox base layer: /bin/busybox, /bin/sh (a copy), /etc/base.
pub fn busybox_layer(marker: &str) -> Vec<u8> {
    let busybox = fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    make_layer(
        &["bin", "etc"],
        &[
            ("bin/busybox", &busybox, 0o755),
            ("bin/sh", &busybox, 0o755),
            ("etc/base", marker.as_bytes(), 0o644),
        ],
    )
}

/// A minimal image config for `arch` with the given layer tars.
pub fn base_config(arch: &str, layer_tars: &[&[u8]]) -> Value {
    let diff_ids: Vec<String> = layer_tars.iter().map(|t| sha256_digest(t)).collect();
    json!({
        "architecture": arch,
        "os": "linux",
        "created": "2020-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/bin:/bin", format!("BASE_ARCH={arch}")],
            "Cmd": ["/bin/sh", "-c", "echo base"],
            "Healthcheck": {"Test": ["CMD", "/bin/true"], "Interval": 5_000_000_000u64},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layer_tars.iter().map(|_| json!({"created": "2020-01-01T00:00:00Z", "created_by": "hand-made"})).collect::<Vec<_>>(),
    })
}

/// Writes `bytes` as a blob of the layout at `dir`; returns a descriptor.
pub fn write_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let hex = sha256_hex(bytes);
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join(&hex), bytes).unwrap();
    json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Writes one single-layer image for `arch` into the layout at `dir` and
/// returns its manifest descriptor (with a platform), without touching
/// index.json.
pub fn write_oci_image(dir: &Path, arch: &str, layer_tar: &[u8]) -> Value {
    let layer = write_blob(dir, OCI_LAYER_GZIP, &gzip(layer_tar));
    let config = base_config(arch, &[layer_tar]);
    let config = write_blob(dir, OCI_CONFIG, &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer],
    });
    let mut desc = write_blob(dir, OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    desc["platform"] = json!({"architecture": arch, "os": "linux"});
    desc
}

/// Writes `oci-layout` and an `index.json` listing `manifests`.
pub fn write_oci_index(dir: &Path, manifests: &[Value]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A classic `docker save` tarball of one busybox image, written by hand:
/// `manifest.json` and the config first, then `<id>/layer.tar` — so a
/// truncated copy still has a readable manifest and loses layer bytes.
pub fn docker_save_tar(repo_tag: &str) -> Vec<u8> {
    let layer = busybox_layer("docker-save");
    let config = serde_json::to_vec(&base_config("amd64", &[&layer])).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let layer_dir = sha256_hex(&layer);
    let layer_name = format!("{layer_dir}/layer.tar");
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": [layer_name],
    }]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in [
        ("manifest.json", &manifest),
        (config_name.as_str(), &config),
        (layer_name.as_str(), &layer),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, name, content.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A two-platform (linux/amd64, linux/arm64) OCI layout at `dir`, each
/// image one small layer. `nested`: index.json holds one descriptor, tagged
/// `multi`, of an image index listing both (what skopeo and buildx write);
/// else index.json lists both manifests itself, untagged. Returns the base
/// reference and the amd64 and arm64 layer tars.
pub fn write_multi_platform_base(dir: &Path, nested: bool) -> (String, Vec<u8>, Vec<u8>) {
    let amd = make_layer(&["etc"], &[("etc/arch", b"amd64\n", 0o644)]);
    let arm = make_layer(&["etc"], &[("etc/arch", b"arm64\n", 0o644)]);
    let amd_desc = write_oci_image(dir, "amd64", &amd);
    let arm_desc = write_oci_image(dir, "arm64", &arm);
    if nested {
        let index =
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd_desc, arm_desc]});
        let mut desc = write_blob(dir, OCI_INDEX, &serde_json::to_vec(&index).unwrap());
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": "multi"});
        write_oci_index(dir, &[desc]);
        (format!("oci:{}:multi", dir.display()), amd, arm)
    } else {
        write_oci_index(dir, &[amd_desc, arm_desc]);
        (format!("oci:{}", dir.display()), amd, arm)
    }
}
