//! Crash- and concurrency-safe output: locked temp files and folders that a killed process leaves recognisable, the sweep that removes them, and folder locks.
//!
//! Every file stowage writes is built under a temporary name and renamed
//! into place, so a `kill -9` can leave only a temp file behind, never half
//! an output. Such leftovers start with [`TEMP_PREFIX`], and their writer
//! holds an exclusive `flock` on them for as long as it lives: the kernel
//! drops that lock when the process dies, however it dies. So a later run can
//! tell an abandoned temp file (unlocked) from one another process is still
//! writing (locked), and [`sweep_stale`] removes only the abandoned ones,
//! whatever their age: a run killed a moment ago leaves nothing that the
//! next run keeps.
//!
//! Between creating a temp file and locking it there is an instant in which
//! a sweep may take it for abandoned and remove it. Rather than sparing
//! young files (a margin every killed run's leftovers would then survive
//! for), the creator checks once it holds the lock that its name still
//! names its file, and makes another when a sweep got in between.
//!
//! Locks are `flock(2)` through `std::fs::File::lock` (Rust 1.89): advisory,
//! released on exit, held per open file, and usable on a folder, so a layout
//! folder can be locked without putting a lock file into it.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempDir};

/// The name prefix of every temp file and folder stowage creates.
pub const TEMP_PREFIX: &str = ".stowage-tmp-";

/// How often a temp file or folder is made again when sweeps keep removing
/// it before it is locked; each time takes a sweep in the same instant.
const CREATE_ATTEMPTS: usize = 8;

/// Creates a temp file in `dir`, locked for as long as it (or its renamed self) is open.
///
/// Its mode is 0644 less the umask, as for any file a tool writes (tempfile's
/// default, 0600, would make archives unreadable to other users).
pub fn temp_file_in(dir: &Path) -> io::Result<NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    for _ in 0..CREATE_ATTEMPTS {
        let file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(fs::Permissions::from_mode(0o644))
            .tempfile_in(dir)?;
        file.as_file().lock()?;
        if still_named(file.path(), file.as_file()) {
            return Ok(file);
        }
        // Swept before it was locked: the name is gone (or another's), so it is not removed again.
        drop(file.keep());
    }
    Err(swept_away(dir))
}

fn swept_away(dir: &Path) -> io::Error {
    io::Error::other(format!(
        "every temp file made in {} was removed before it could be locked",
        dir.display()
    ))
}

/// Whether `path` still names the file or folder open as `handle`.
fn still_named(path: &Path, handle: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::symlink_metadata(path), handle.metadata()) {
        (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
        _ => false,
    }
}

/// Writes `bytes` to `path` whole or not at all (I/O): a locked temp file
/// beside it, synced, then renamed over it. The one way stowage writes a
/// small file (records, indexes, caches, credentials, the starter spec).
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = filled_temp_file(path, bytes, None)?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// [`write_file`] with the file's permission bits set to `mode` before any byte lands (0600 for credentials).
pub fn write_file_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = filled_temp_file(path, bytes, Some(mode))?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// [`write_file`] that never replaces an existing file: fails with
/// `ErrorKind::AlreadyExists` when `path` exists, even one created meanwhile.
pub fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = filled_temp_file(path, bytes, None)?;
    tmp.persist_noclobber(path).map(drop).map_err(|e| e.error)
}

fn filled_temp_file(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<NamedTempFile> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = temp_file_in(&dir)?;
    if let Some(mode) = mode {
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// A temp folder and the lock that marks it as in use.
pub struct LockedTempDir {
    dir: TempDir,
    _lock: File,
}

impl LockedTempDir {
    /// The folder's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Renames the folder to `target` (which must not exist, or be an empty folder).
    ///
    /// On failure the temp folder is removed.
    pub fn persist(self, target: &Path) -> io::Result<()> {
        let LockedTempDir { dir, _lock } = self;
        fs::rename(dir.path(), target)?;
        // The folder is renamed: nothing is left for TempDir to remove.
        let _ = dir.keep();
        Ok(())
    }
}

/// Creates a temp folder in `parent`, locked like [`temp_file_in`]'s files.
pub fn temp_dir_in(parent: &Path) -> io::Result<LockedTempDir> {
    for _ in 0..CREATE_ATTEMPTS {
        let dir = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(parent)?;
        let lock = match File::open(dir.path()) {
            Ok(lock) => lock,
            // Swept before it could be opened.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                drop(dir.keep());
                continue;
            }
            Err(e) => return Err(e),
        };
        lock.lock()?;
        if still_named(dir.path(), &lock) {
            return Ok(LockedTempDir { dir, _lock: lock });
        }
        drop(dir.keep());
    }
    Err(swept_away(parent))
}

/// An exclusive lock on a folder, released when dropped (or when the process dies).
pub struct FolderLock {
    _file: File,
}

/// Waits for and takes the exclusive lock on `dir` (I/O).
pub fn lock_folder(dir: &Path) -> io::Result<FolderLock> {
    let file = File::open(dir)?;
    file.lock()?;
    Ok(FolderLock { _file: file })
}

/// Removes the temp files and folders in `dir` that a dead process left (I/O, best effort).
///
/// Only names starting with [`TEMP_PREFIX`] whose lock can be taken are
/// removed, however young (see the module's note on the instant before a
/// new one is locked); errors are ignored, since sweeping only reclaims space.
pub fn sweep_stale(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let path: PathBuf = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        let Ok(handle) = File::open(&path) else {
            continue;
        };
        if handle.try_lock().is_err() {
            continue;
        }
        let gone = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlocked_leftovers_are_swept_however_young() {
        let dir = tempfile::tempdir().unwrap();
        // A leftover of a writer killed a moment ago: nobody holds its lock.
        let dead = dir.path().join(format!("{TEMP_PREFIX}dead"));
        fs::write(&dead, b"half").unwrap();
        // A live writer's file: locked.
        let live = temp_file_in(dir.path()).unwrap();
        // A user's own file.
        let mine = dir.path().join("notes.txt");
        fs::write(&mine, b"x").unwrap();
        // A temp folder whose writer died: kept on disk, its lock dropped.
        let LockedTempDir {
            dir: dead_dir,
            _lock,
        } = temp_dir_in(dir.path()).unwrap();
        let dead_dir_path = dead_dir.keep();
        drop(_lock);
        // A live writer's temp folder.
        let live_dir = temp_dir_in(dir.path()).unwrap();

        assert_eq!(sweep_stale(dir.path()), 2);
        assert!(!dead.exists() && !dead_dir_path.exists());
        assert!(live.path().exists() && live_dir.path().exists() && mine.exists());
    }

    #[test]
    fn a_name_swept_or_taken_over_is_no_longer_the_writers() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = temp_file_in(dir.path()).unwrap();
        assert!(still_named(tmp.path(), tmp.as_file()));
        // What a sweep in the instant before the lock does, and a new file under the name.
        fs::remove_file(tmp.path()).unwrap();
        assert!(!still_named(tmp.path(), tmp.as_file()));
        fs::write(tmp.path(), b"another's").unwrap();
        assert!(!still_named(tmp.path(), tmp.as_file()));
    }

    #[test]
    fn a_folder_lock_excludes_another_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_folder(dir.path()).unwrap();
        let other = File::open(dir.path()).unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
