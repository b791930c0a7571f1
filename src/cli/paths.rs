//! What the environment says about where things are — the store and journal folders, stand-ins for Docker Hub — read once, here, and handed to every command's `Session`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::commands::SessionPaths;
use crate::error::Error;
use crate::exports::JournalLocation;

/// The store and journal folders this process's environment names; when
/// they fall back to the shared temporary folder, `$TMPDIR/stowage-<uid>`
/// is claimed first (`claim_private_folder`).
pub fn from_environment() -> Result<SessionPaths, Error> {
    let (paths, fallback) = resolve(|name| std::env::var_os(name), is_writable_folder);
    if let Some(root) = fallback {
        claim_private_folder(&root).map_err(|problem| {
            Error::usage(
                format!(
                    "{}: {problem}, so stowage will not keep its store or journal there",
                    root.display()
                ),
                "set STOWAGE_CACHE_DIR and STOWAGE_STATE_DIR (or HOME) to folders of your own",
            )
        })?;
    }
    Ok(paths)
}

/// Makes `root` a folder only this user can enter (0700), or checks that
/// it is one: in a shared `/tmp` anyone may create `stowage-<uid>` first,
/// and a store there would take blobs and cache records from them.
fn claim_private_folder(root: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(root) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot be created ({e})")),
    }
    let meta = std::fs::symlink_metadata(root).map_err(|e| format!("cannot be read ({e})"))?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() {
        return Err("is not a folder (a symlink or a file)".into());
    }
    if meta.uid() != uid {
        return Err(format!(
            "belongs to uid {}, not to you (uid {uid})",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "may be written by others (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// True when this process may create files in the folder at `path` (I/O: asks the kernel).
///
/// `access(2)` answers for a read-only filesystem (`EROFS`) and for
/// ownership alike, which metadata alone cannot tell.
fn is_writable_folder(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access only reads the NUL-terminated path it is given.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

/// Hosts that stand in for Docker Hub's: the tests point stowage at local servers, since the real Hub cannot be reached from CI.
pub struct DockerHubOverrides {
    /// The registry API's host instead of registry-1.docker.io (`STOWAGE_DOCKER_HUB_HOST`).
    pub host: Option<String>,
    /// The web API's base URL instead of hub.docker.com (`STOWAGE_DOCKER_HUB_API`).
    pub api: Option<String>,
}

/// The Docker Hub stand-ins this process's environment names (an empty variable counts as unset).
pub fn docker_hub_from_environment() -> DockerHubOverrides {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    DockerHubOverrides {
        host: var("STOWAGE_DOCKER_HUB_HOST"),
        api: var("STOWAGE_DOCKER_HUB_API"),
    }
}

/// The size `STOWAGE_CACHE_MAX_SIZE` bounds the store to after each build
/// (unset or empty: unbounded); a value that is not a size is a usage error.
pub fn cache_max_size() -> Result<Option<u64>, Error> {
    match std::env::var("STOWAGE_CACHE_MAX_SIZE") {
        Ok(text) if !text.trim().is_empty() => super::args::parse_size(&text)
            .map(Some)
            .map_err(|problem| {
                Error::usage(
                    format!("STOWAGE_CACHE_MAX_SIZE: {problem}"),
                    "set it to a size like 10GiB or 512MiB, or unset it to leave the store unbounded",
                )
            }),
        _ => Ok(None),
    }
}

/// The store: `$STOWAGE_CACHE_DIR`, else `$XDG_CACHE_HOME/stowage`, else
/// `~/.cache/stowage`. The journal: `$STOWAGE_STATE_DIR`, else
/// `$XDG_STATE_HOME/stowage`, else `~/.local/state/stowage`. An empty
/// variable counts as unset, as XDG says.
///
/// A home that is unset or not `writable` (an arbitrary uid in a container
/// gets `HOME=/` on a read-only root) is no place for either: then both go
/// under `$TMPDIR/stowage-<uid>/` (`/tmp` without `TMPDIR`), which lasts as
/// long as the container does; a platform that wants them kept sets
/// `STOWAGE_CACHE_DIR` and `STOWAGE_STATE_DIR`.
///
/// Also returns the temporary folder when either path is under it.
fn resolve(
    lookup: impl Fn(&str) -> Option<OsString>,
    writable: impl Fn(&Path) -> bool,
) -> (SessionPaths, Option<PathBuf>) {
    let var = |name: &str| {
        lookup(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    let home = var("HOME").filter(|home| writable(home));
    let fallback = || {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        var("TMPDIR")
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join(format!("stowage-{uid}"))
    };
    let mut used_fallback = false;
    let mut under_fallback = |folder: &str| {
        used_fallback = true;
        fallback().join(folder)
    };
    let store = var("STOWAGE_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|dir| dir.join("stowage")))
        .unwrap_or_else(|| match &home {
            Some(home) => home.join(".cache/stowage"),
            None => under_fallback("cache"),
        });
    let journal = var("STOWAGE_STATE_DIR")
        .or_else(|| var("XDG_STATE_HOME").map(|dir| dir.join("stowage")))
        .unwrap_or_else(|| match &home {
            Some(home) => home.join(".local/state/stowage"),
            None => under_fallback("state"),
        });
    let paths = SessionPaths {
        store,
        journal: JournalLocation::default_in(&journal),
    };
    (paths, used_fallback.then(fallback))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsString;
    use std::path::Path;

    use super::{claim_private_folder, resolve};

    fn paths_with(vars: &[(&str, &str)]) -> (String, String) {
        let vars: HashMap<&str, OsString> = vars.iter().map(|(k, v)| (*k, (*v).into())).collect();
        let (paths, _) = resolve(
            |name| vars.get(name).cloned(),
            |home| home != Path::new("/"),
        );
        let text = |path: &Path| path.to_string_lossy().into_owned();
        (text(&paths.store), paths.journal.to_string())
    }

    #[test]
    fn stowage_variables_win_then_xdg_then_home() {
        let all = [
            ("HOME", "/h"),
            ("XDG_CACHE_HOME", "/xc"),
            ("XDG_STATE_HOME", "/xs"),
            ("STOWAGE_CACHE_DIR", "/sc"),
            ("STOWAGE_STATE_DIR", "/ss"),
        ];
        assert_eq!(
            paths_with(&all),
            ("/sc".into(), "sqlite:/ss/exports.sqlite3".into())
        );
        assert_eq!(
            paths_with(&all[..3]),
            (
                "/xc/stowage".into(),
                "sqlite:/xs/stowage/exports.sqlite3".into()
            )
        );
        assert_eq!(
            paths_with(&all[..1]),
            (
                "/h/.cache/stowage".into(),
                "sqlite:/h/.local/state/stowage/exports.sqlite3".into()
            )
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let vars = [
            ("HOME", "/h"),
            ("STOWAGE_CACHE_DIR", ""),
            ("XDG_STATE_HOME", ""),
        ];
        assert_eq!(
            paths_with(&vars),
            (
                "/h/.cache/stowage".into(),
                "sqlite:/h/.local/state/stowage/exports.sqlite3".into()
            )
        );
    }

    #[test]
    fn an_unset_or_unwritable_home_gives_way_to_the_temporary_folder() {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let under = |tmp: &str| {
            (
                format!("{tmp}/stowage-{uid}/cache"),
                format!("sqlite:{tmp}/stowage-{uid}/state/exports.sqlite3"),
            )
        };
        assert_eq!(paths_with(&[]), under("/tmp"));
        assert_eq!(paths_with(&[("HOME", "/")]), under("/tmp"));
        assert_eq!(
            paths_with(&[("HOME", "/"), ("TMPDIR", "/scratch")]),
            under("/scratch")
        );
        assert_eq!(
            paths_with(&[("HOME", "/"), ("STOWAGE_CACHE_DIR", "/sc")]),
            (
                "/sc".into(),
                format!("sqlite:/tmp/stowage-{uid}/state/exports.sqlite3")
            )
        );
    }

    #[test]
    fn the_temporary_folder_is_claimed_only_when_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("stowage-test");
        claim_private_folder(&root).unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        claim_private_folder(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = claim_private_folder(&root).unwrap_err();
        assert!(err.contains("written by others (mode 777)"), "{err}");
        let link = dir.path().join("planted");
        std::os::unix::fs::symlink(&root, &link).unwrap();
        let err = claim_private_folder(&link).unwrap_err();
        assert!(err.contains("not a folder"), "{err}");
        let (_, fallback) = resolve(|_| None, |_| true);
        assert!(fallback.is_some(), "no HOME: the temporary folder");
        let home = |name: &str| (name == "HOME").then(|| "/h".into());
        assert!(resolve(home, |_| true).1.is_none());
    }
}
