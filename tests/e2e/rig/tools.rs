//! The outside tools the tests drive (docker, podman, skopeo), their
//! readiness checks, unique image names, and guards that remove what a test
//! made.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assert_cmd::Command;

use super::environment::{TOOL_TIMEOUT, require_tool, rig_env, skip_or_fail};

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

/// `umoci unpack`s the layout `dir`'s image `tag` into `bundle` (rootless
/// unless root; umoci checks every blob against its digest); the rootfs.
pub fn umoci_unpack(
    dir: &std::path::Path,
    tag: &str,
    bundle: &std::path::Path,
) -> std::path::PathBuf {
    let mut cmd = tool("umoci");
    cmd.arg("unpack");
    if !super::environment::is_root() {
        cmd.arg("--rootless");
    }
    super::sandbox::run_ok(
        cmd.arg("--image")
            .arg(format!("{}:{tag}", dir.display()))
            .arg(bundle),
    );
    bundle.join("rootfs")
}
