//! Planning a layer: walking its sources (sorted, in parallel) into checked, counted entries, with every ancestor folder made explicit. Stats only; no file is read.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use super::excludes::Excludes;
use super::{Entry, EntryKind, KnownDir, KnownDirs, LayerError, LayerPlan, LayerRoot, Stamp};
use crate::spec::Owner;

/// Mode of an ancestor folder nobody described: what every distribution uses.
pub(super) fn default_ancestor_mode(path: &[u8]) -> u32 {
    match path {
        b"tmp" | b"var/tmp" => 0o1777,
        _ => 0o755,
    }
}

/// Plans a layer from its roots (I/O: stats the trees, reads no file content).
///
/// Every ancestor folder of a target gets an explicit entry. Leaving them
/// implied does not keep the base's folders: unpackers create the missing
/// parents themselves, with modes that differ by runtime (0600 in Docker 20.10
/// and older containers/storage, which locks out non-root users) and that
/// shadow the base's folder anyway. An ancestor takes the mode and owner an
/// earlier layer of this build gave it (`known_dirs`), else root-owned 0755
/// (1777 for /tmp and /var/tmp) marked as defaulted, for `apply_base_folders`
/// to replace with the base's own once the base is read. The layer's own
/// folders are added to `known_dirs` for the layers after it.
pub fn plan_layer(
    name: &str,
    roots: &[LayerRoot],
    excludes: &Excludes,
    known_dirs: &mut KnownDirs,
) -> Result<LayerPlan, LayerError> {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for root in roots {
        let target = root.target.trim_start_matches('/').as_bytes().to_vec();
        let meta = fs::symlink_metadata(&root.source).map_err(|source| LayerError::Read {
            path: root.source.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk_folder(root, &target, excludes, &mut entries, &mut warnings)?;
        } else if let Some(entry) =
            entry_for(&root.source, target, &meta, root.owner, &mut warnings)?
        {
            let mode = root.mode.unwrap_or(entry.mode);
            entries.push(Entry { mode, ..entry });
        }
    }
    add_ancestors(roots, known_dirs, &mut entries);
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    for pair in entries.windows(2) {
        if pair[0].path == pair[1].path {
            return Err(LayerError::Collision {
                layer: name.to_string(),
                target: String::from_utf8_lossy(&pair[0].path).into_owned(),
                first: pair[0].disk.clone(),
                second: pair[1].disk.clone(),
            });
        }
    }
    link_hard_links(&mut entries);
    for entry in &entries {
        if matches!(entry.kind, EntryKind::Dir) {
            known_dirs.insert(
                entry.path.clone(),
                KnownDir {
                    mode: entry.mode,
                    owner: entry.owner,
                    defaulted: entry.defaulted,
                },
            );
        }
    }
    let file_count = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File { .. }))
        .count() as u64;
    let content_bytes = entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::File { size } => size,
            _ => 0,
        })
        .sum();
    Ok(LayerPlan {
        name: name.to_string(),
        sources: roots.iter().map(|r| r.source.clone()).collect(),
        entry_count: entries.len() as u64,
        file_count,
        content_bytes,
        entries,
        warnings,
        secret_scan: None,
        parts: Vec::new(),
        relocation: None,
    })
}

pub(super) fn add_ancestors(roots: &[LayerRoot], known_dirs: &KnownDirs, entries: &mut Vec<Entry>) {
    let mut ancestors: BTreeMap<Vec<u8>, ()> = BTreeMap::new();
    for root in roots {
        let target = root.target.trim_start_matches('/').as_bytes();
        for (i, byte) in target.iter().enumerate() {
            if *byte == b'/' && i > 0 {
                ancestors.insert(target[..i].to_vec(), ());
            }
        }
    }
    for path in ancestors.into_keys() {
        // A root may itself be the ancestor of another root; its own entry wins.
        if roots
            .iter()
            .any(|r| r.target.trim_start_matches('/').as_bytes() == path.as_slice())
        {
            continue;
        }
        let known = known_dirs.get(&path).copied().unwrap_or(KnownDir {
            mode: default_ancestor_mode(&path),
            owner: Owner { uid: 0, gid: 0 },
            defaulted: true,
        });
        entries.push(Entry {
            disk: PathBuf::from("(ancestor folder)"),
            path,
            kind: EntryKind::Dir,
            mode: known.mode,
            owner: known.owner,
            inode: None,
            stamp: Stamp::default(),
            defaulted: known.defaulted,
            rewrite: None,
        });
    }
}

pub(super) fn walk_folder(
    root: &LayerRoot,
    target: &[u8],
    excludes: &Excludes,
    entries: &mut Vec<Entry>,
    warnings: &mut Vec<String>,
) -> Result<(), LayerError> {
    let meta = fs::symlink_metadata(&root.source).map_err(|source| LayerError::Read {
        path: root.source.clone(),
        source,
    })?;
    if let Some(entry) = entry_for(&root.source, target.to_vec(), &meta, root.owner, warnings)? {
        entries.push(entry);
    }
    // Folders are listed by a few threads at once: a stat is a syscall, and
    // on a cold disk cache it waits on the disk. The plan is sorted
    // afterwards, so the order they finish in does not matter.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let queue = WalkQueue {
        state: Mutex::new(WalkState {
            pending: vec![PathBuf::new()],
            busy: 0,
            error: None,
        }),
        changed: Condvar::new(),
    };
    let first_warning = warnings.len();
    std::thread::scope(|scope| {
        let walkers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let (mut found, mut notes) = (Vec::new(), Vec::new());
                    while let Some(rel_dir) = queue.next() {
                        match list_folder(root, target, excludes, &rel_dir, &mut found, &mut notes)
                        {
                            Ok(folders) => queue.done(folders),
                            Err(err) => queue.fail(err),
                        }
                    }
                    (found, notes)
                })
            })
            .collect();
        for walker in walkers {
            match walker.join() {
                Ok((found, notes)) => {
                    entries.extend(found);
                    warnings.extend(notes);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    // Sorted, so warnings come in the same order whichever thread met them.
    warnings[first_warning..].sort();
    let state = queue.state.into_inner().unwrap_or_else(|p| p.into_inner());
    state.error.map_or(Ok(()), Err)
}

/// The folders still to list, shared by the walking threads.
pub(super) struct WalkQueue {
    pub(super) state: Mutex<WalkState>,
    pub(super) changed: Condvar,
}

pub(super) struct WalkState {
    pub(super) pending: Vec<PathBuf>,
    /// Folders being listed now: their subfolders may still arrive.
    pub(super) busy: usize,
    pub(super) error: Option<LayerError>,
}

impl WalkQueue {
    /// The next folder to list; None once all are listed or one failed.
    fn next(&self) -> Option<PathBuf> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if state.error.is_some() {
                return None;
            }
            if let Some(folder) = state.pending.pop() {
                state.busy += 1;
                return Some(folder);
            }
            if state.busy == 0 {
                return None;
            }
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn done(&self, folders: Vec<PathBuf>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.pending.extend(folders);
        state.busy -= 1;
        self.changed.notify_all();
    }

    fn fail(&self, error: LayerError) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.error.get_or_insert(error);
        state.busy -= 1;
        self.changed.notify_all();
    }
}

/// Lists one folder of the walk into `entries`; returns the subfolders to list next.
pub(super) fn list_folder(
    root: &LayerRoot,
    target: &[u8],
    excludes: &Excludes,
    rel_dir: &Path,
    entries: &mut Vec<Entry>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>, LayerError> {
    let dir = root.source.join(rel_dir);
    let listing = fs::read_dir(&dir).map_err(|source| LayerError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut folders = Vec::new();
    for item in listing {
        let item = item.map_err(|source| LayerError::Read {
            path: dir.clone(),
            source,
        })?;
        let rel = rel_dir.join(item.file_name());
        let disk = root.source.join(&rel);
        // fstatat on the open folder, not a lookup of the whole path; like
        // symlink_metadata, it does not follow a symlink.
        let meta = item.metadata().map_err(|source| LayerError::Read {
            path: disk.clone(),
            source,
        })?;
        let excluded = excludes.is_excluded(&rel);
        if meta.is_dir() && (!excluded || excludes.may_reinclude()) {
            folders.push(rel.clone());
        }
        if excluded {
            continue;
        }
        if item.file_name().as_bytes().starts_with(b".wh.") {
            return Err(LayerError::Whiteout { path: disk });
        }
        let mut path = target.to_vec();
        path.push(b'/');
        path.extend_from_slice(rel.as_os_str().as_bytes());
        if let Some(entry) = entry_for(&disk, path, &meta, root.owner, warnings)? {
            entries.push(entry);
        }
    }
    Ok(folders)
}

pub(super) fn entry_for(
    disk: &Path,
    path: Vec<u8>,
    meta: &fs::Metadata,
    owner: Owner,
    warnings: &mut Vec<String>,
) -> Result<Option<Entry>, LayerError> {
    let file_type = meta.file_type();
    let kind = if file_type.is_dir() {
        EntryKind::Dir
    } else if file_type.is_file() {
        EntryKind::File { size: meta.len() }
    } else if file_type.is_symlink() {
        let target = fs::read_link(disk).map_err(|source| LayerError::Read {
            path: disk.to_path_buf(),
            source,
        })?;
        EntryKind::Symlink {
            target: target.as_os_str().as_bytes().to_vec(),
        }
    } else if file_type.is_socket() {
        warnings.push(format!("skipped socket {}", disk.display()));
        return Ok(None);
    } else {
        let kind = if file_type.is_fifo() {
            "FIFO (named pipe)"
        } else if file_type.is_char_device() {
            "character device"
        } else {
            "block device"
        };
        return Err(LayerError::Special {
            path: disk.to_path_buf(),
            kind,
        });
    };
    let inode = (meta.is_file() && meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
    Ok(Some(Entry {
        path,
        disk: disk.to_path_buf(),
        kind,
        mode: meta.mode() & 0o7777,
        owner,
        inode,
        stamp: Stamp::of(meta),
        defaulted: false,
        rewrite: None,
    }))
}

/// The first path of a (dev, inode) pair in sorted order keeps the content; later ones become tar hard links to it.
pub(super) fn link_hard_links(entries: &mut [Entry]) {
    let mut first_seen: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    for entry in entries.iter_mut() {
        let Some(inode) = entry.inode else { continue };
        match first_seen.get(&inode) {
            Some(first) => entry.kind = EntryKind::HardLink { to: first.clone() },
            None => {
                first_seen.insert(inode, entry.path.clone());
            }
        }
    }
}
