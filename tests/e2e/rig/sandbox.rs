//! A test's own folder and the stowage binary run in it, with its store,
//! state and credential files inside; what stowage prints, parsed.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

use super::environment::TOOL_TIMEOUT;

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

/// Every export record of the sandbox's journal, as `exports list --json` prints them.
pub fn export_records(sb: &Sandbox) -> Vec<serde_json::Value> {
    let text = run_ok(sb.stowage().args(["--json", "exports", "list"]));
    serde_json::from_str::<serde_json::Value>(&text)
        .expect("exports list --json prints JSON")
        .as_array()
        .cloned()
        .unwrap_or_default()
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
