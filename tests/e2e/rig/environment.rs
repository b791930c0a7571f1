//! The rig's environment: CI or not, root or not, which tools are on PATH,
//! and the variables `scripts/test-env.sh` wrote; a test whose tool is
//! missing fails under `CI=true` and prints a loud `SKIPPED:` line otherwise.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

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
