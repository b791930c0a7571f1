//! Holds: the blobs a running build or export uses, written where a prune reads them, so a prune never removes a blob in use.
//!
//! A process that uses a blob appends its digest to a hold file of its own
//! under `holds/`, which it keeps locked (`flock`) for as long as it lives.
//! The kernel drops that lock when the process dies, however it dies
//! (`kill -9` too), so a prune tells a live hold (locked) from one a dead
//! process left (unlocked, removed).
//!
//! Holding a blob and pruning exclude each other through the gate file
//! `locks/prune`: a process records a hold under a shared lock on it, and
//! only then looks at the blob; a prune takes the gate exclusively for its
//! whole run. So a blob is either held before a prune reads the holds, or
//! found missing after the prune (a cache miss, rebuilt), never removed
//! between a process finding it and using it.
//!
//! A hold also records the blob's last use: its access time is set to now.
//! Not its modification time: an `oci:` layout hard-links the store's blobs,
//! and a rebuild that changes nothing must leave the layout's files as they
//! were (mtimes included). Setting it costs one call per blob and process.

use std::collections::HashSet;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::digest::Digest;

/// This process's holds on one store's blobs; the hold file goes when it is dropped.
#[derive(Debug)]
pub(super) struct Holds {
    root: PathBuf,
    state: Mutex<HoldState>,
}

#[derive(Debug, Default)]
struct HoldState {
    gate: Option<File>,
    /// The hold file and its path, made on the first hold.
    file: Option<(File, PathBuf)>,
    held: HashSet<Digest>,
}

impl Holds {
    pub(super) fn new(root: &Path) -> Holds {
        Holds {
            root: root.to_path_buf(),
            state: Mutex::default(),
        }
    }

    /// Holds `digest` for as long as this process lives, and marks the blob
    /// at `blob` used now (I/O, best effort: a store that cannot record it
    /// still builds; only a concurrent prune could then take the blob).
    pub(super) fn hold(&self, digest: &Digest, blob: &Path) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.held.contains(digest) {
            return;
        }
        if self.record(&mut state, digest, blob).is_ok() {
            state.held.insert(digest.clone());
        }
    }

    fn record(&self, state: &mut HoldState, digest: &Digest, blob: &Path) -> io::Result<()> {
        let gate = match state.gate.take() {
            Some(gate) => gate,
            None => open_gate(&self.root)?,
        };
        gate.lock_shared()?;
        let recorded = (|| {
            if state.file.is_none() {
                state.file = Some(new_hold_file(&self.root)?);
            }
            if let Some((file, _)) = &mut state.file {
                file.write_all(format!("{digest}\n").as_bytes())?;
            }
            if let Ok(used) = File::open(blob) {
                let _ = used.set_times(FileTimes::new().set_accessed(SystemTime::now()));
            }
            Ok(())
        })();
        let _ = gate.unlock();
        state.gate = Some(gate);
        recorded
    }
}

impl Drop for Holds {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some((_, path)) = &state.file {
            let _ = fs::remove_file(path);
        }
    }
}

/// Opens (creating) the gate that holds and prunes take turns on (I/O).
pub(super) fn open_gate(root: &Path) -> io::Result<File> {
    let dir = root.join("locks");
    fs::create_dir_all(&dir)?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("prune"))
}

fn holds_dir(root: &Path) -> PathBuf {
    root.join("holds")
}

/// A new hold file, locked before anyone (a prune, under the gate) can see it unlocked.
fn new_hold_file(root: &Path) -> io::Result<(File, PathBuf)> {
    let dir = holds_dir(root);
    fs::create_dir_all(&dir)?;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = dir.join(format!("{}-{nanos}", std::process::id()));
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    file.lock()?;
    Ok((file, path))
}

/// What live processes hold, and the hold files dead ones left.
pub(super) struct LiveHolds {
    /// The digests held, as `sha256:<hex>` text.
    pub held: HashSet<String>,
    pub processes: usize,
    pub dead: Vec<PathBuf>,
}

/// Reads every hold file (I/O); the caller holds the gate exclusively, so no hold is half made.
pub(super) fn live_holds(root: &Path) -> LiveHolds {
    let mut live = LiveHolds {
        held: HashSet::new(),
        processes: 0,
        dead: Vec::new(),
    };
    let Ok(entries) = fs::read_dir(holds_dir(root)) else {
        return live;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            live.dead.push(path);
            continue;
        }
        live.processes += 1;
        if let Ok(text) = fs::read_to_string(&path) {
            live.held.extend(text.lines().map(str::to_string));
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_is_live_while_its_holder_lives_and_marks_the_blob_used() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        fs::write(&blob, b"x").unwrap();
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let times = FileTimes::new().set_accessed(old).set_modified(old);
        File::open(&blob).unwrap().set_times(times).unwrap();
        let holds = Holds::new(dir.path());
        let digest = Digest::of(b"x");
        holds.hold(&digest, &blob);
        holds.hold(&digest, &blob);
        let meta = fs::metadata(&blob).unwrap();
        assert!(meta.accessed().unwrap() > old);
        assert_eq!(
            meta.modified().unwrap(),
            old,
            "a hold leaves the mtime alone"
        );
        let live = live_holds(dir.path());
        assert_eq!(live.processes, 1);
        assert_eq!(live.held, HashSet::from([digest.to_string()]));
        assert!(live.dead.is_empty());
        drop(holds);
        let after = live_holds(dir.path());
        assert_eq!((after.processes, after.held.len()), (0, 0));
    }

    #[test]
    fn a_hold_file_whose_holder_died_is_dead() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(holds_dir(dir.path())).unwrap();
        let left = holds_dir(dir.path()).join("4242-1");
        fs::write(&left, format!("{}\n", Digest::of(b"y"))).unwrap();
        let live = live_holds(dir.path());
        assert_eq!(live.dead, vec![left]);
        assert!(live.held.is_empty());
    }
}
