//! The commented starter spec that `stowage init` writes.

use std::path::{Path, PathBuf};

use super::{SPEC_FILE_NAME, SpecError};

/// Commented starter file for `stowage init`; it parses once its `library` folder exists.
pub const STARTER_SPEC: &str = r#"# stowage.toml: what goes into the exported image.
# Relative sources are resolved against this file's folder.
#
# Two shapes of image: an app library (a venv, site-packages, node_modules)
# with its start command, as below; or a base plus a few files and no
# library, e.g. a start script and a helper over a Python base:
#
#   base = "docker.io/library/python:3.12-slim"
#   [app]
#   entrypoint = ["/opt/app/start.sh"]
#   [[files]]
#   source = "start.sh"
#   target = "/opt/app/start.sh"
#   mode = "0755"
#   [[files]]
#   source = "helper.py"
#   target = "/opt/app/helper.py"

# The image to build on: a registry reference, docker-archive:PATH,
# oci:PATH[:TAG], oci-archive:PATH[:TAG], or "scratch" for an empty image.
base = "docker.io/library/python:3.12-slim"
# base = "scratch"

# Where `stowage build` sends the image when no -o is given.
# image = "docker.io/acme/public:my-notebook"

# Which image to pick from a multi-arch base (OS/ARCH[/VARIANT]).
# platform = "linux/amd64"

[app]
# The app library (installed packages and extensions). Optional: without it
# the image is the base plus [[files]] (and the workspace).
library = { source = "library", target = "/opt/app" }

# The user's files. `stowage build --no-workspace` leaves them out.
# workspace = { source = "workspace", target = "/home/user/work" }

# .dockerignore semantics, relative to each source's root: a pattern without
# a leading `**/` matches from the root only; `!pattern` re-includes.
# Keep __pycache__ and *.pyc: stowage writes each .pyc that matched its
# source with the source's mtime as the image has it, so Python uses it
# instead of recompiling on every start (a non-root or read-only container
# cannot write new bytecode, and pays that compile every time).
exclude = ["**/.git"]

# entrypoint = ["/opt/app/start.sh"]
command = ["python3", "-m", "http.server", "8888"]
ports = ["8888/tcp"]
workdir = "/opt/app"

# Runs as this user, who also owns the added files (unless an entry sets
# `owner`). A name ("nobody", "jovyan:users") is looked up in the base's
# /etc/passwd and /etc/group, as the runtime does.
# user = "1000:100"

# Extra files, e.g. a start script; repeat the [[files]] table for more.
# [[files]]
# source = "scripts/start.sh"
# target = "/opt/app/start.sh"
# mode = "0755"
# owner = "1000:100"

[env]
# Baked into the image config, in this order. ${VAR} expands against the
# base image's environment and the [env] entries above it.
PATH = "/opt/app/bin:${PATH}"
PYTHONUNBUFFERED = "1"

[secrets]
# Names that must never be baked into the image, on top of the built-in
# deny-list (…_SECRET, …_TOKEN, …_PASSWORD, …_API_KEY, NUVLA_API_KEY, …).
# The image carries these names (never values) in a label, so
# `stowage run-command IMAGE` prints `-e NAME` for each on any machine.
# Pass them when the container starts: docker run -e NAME IMAGE
names = []
# Paths in the image the secret scan may let through (a folder covers
# everything in it), e.g. test fixtures that only look like keys, and
# values meant to be public by key (env.NAME, labels.KEY, command).
# allow = ["/opt/app/tests/fixtures"]

# Attestations attached to the image as BuildKit stores them (an OCI index),
# read by Docker Hub and Docker Scout; `--attest sbom|provenance` adds to them.
# [attest]
# sbom = true        # an SPDX document of the library's packages
# provenance = true  # SLSA provenance: stowage, the spec, the base, the sources

[labels]
# Quote dotted keys, or TOML reads them as nested tables.
"org.opencontainers.image.description" = "Exported with stowage"
"#;

/// Writes STARTER_SPEC as DIR/stowage.toml, creating DIR if missing; never overwrites an existing file.
pub fn write_starter_spec(dir: &Path) -> Result<PathBuf, SpecError> {
    let path = dir.join(SPEC_FILE_NAME);
    let exists = |path: &Path| {
        SpecError::without_position(
            path,
            "a spec file already exists here".to_string(),
            Some(
                "edit it, remove it to start over, or run `stowage init` in another folder"
                    .to_string(),
            ),
        )
    };
    let io_error = |what: &str, e: std::io::Error| {
        SpecError::without_position(
            &path,
            format!("cannot write the starter spec: {what}: {e}"),
            Some(format!(
                "check that {} is a folder you can write to",
                dir.display()
            )),
        )
    };
    if path.symlink_metadata().is_ok() {
        return Err(exists(&path));
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error("creating the folder", e))?;
    // Written whole or not at all, and never over a file created since the check above.
    crate::atomic::write_new_file(&path, STARTER_SPEC.as_bytes()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            exists(&path)
        } else {
            io_error("writing the file", e)
        }
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::read_spec;

    #[test]
    fn starter_spec_parses_once_library_exists() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let target = dir.path().join("new/project");
        let path = match write_starter_spec(&target) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(path, target.join(SPEC_FILE_NAME));
        assert_eq!(
            std::fs::read_to_string(&path).ok().as_deref(),
            Some(STARTER_SPEC)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .ok();
            assert_eq!(mode, Some(0o644));
        }
        let e = match read_spec(&path) {
            Ok(s) => panic!("{s:?}"),
            Err(e) => e,
        };
        assert!(e.message().contains("does not exist"), "{e}");
        if let Err(e) = std::fs::create_dir(target.join("library")) {
            panic!("{e}");
        }
        let s = match read_spec(&path) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(s.library.as_ref().unwrap().target, "/opt/app");
        assert!(s.workspace.is_none());
        assert!(
            s.env
                .iter()
                .any(|(k, v)| k == "PATH" && v.contains("${PATH}"))
        );
        assert!(!s.ports.is_empty() && s.command.is_some() && !s.labels.is_empty());
        let leftovers = std::fs::read_dir(&target).map(|d| d.count()).ok();
        assert_eq!(leftovers, Some(2), "only stowage.toml and library");
    }

    #[test]
    fn starter_spec_never_overwrites() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let path = dir.path().join(SPEC_FILE_NAME);
        if let Err(e) = std::fs::write(&path, "mine") {
            panic!("{e}");
        }
        let e = match write_starter_spec(dir.path()) {
            Ok(p) => panic!("overwrote {}", p.display()),
            Err(e) => e,
        };
        assert!(e.to_string().contains("already exists"), "{e}");
        assert!(e.hint().is_some());
        assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some("mine"));
    }
}
