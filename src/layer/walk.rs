//! Planning a layer: walking its sources (sorted, in parallel) into checked, counted entries, with every ancestor folder made explicit. Stats only; no file is read.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

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
    let mut links = Vec::new();
    for root in roots {
        let target = root.target.trim_start_matches('/').as_bytes();
        let meta = fs::symlink_metadata(&root.source).map_err(|source| LayerError::Read {
            path: root.source.clone(),
            source,
        })?;
        if meta.is_dir() {
            let found = Found {
                source: &Arc::from(root.source.as_path()),
                path: target.into(),
                rel_start: rel_start(target),
                meta: &meta,
                owner: root.owner,
            };
            if let Some(entry) = entry_for(found, &mut warnings, &mut links)? {
                entries.push(entry);
            }
            walk_folder(
                root,
                target,
                excludes,
                &mut entries,
                &mut warnings,
                &mut links,
            )?;
        } else {
            let found = Found {
                source: &Arc::from(root.source.as_path()),
                path: target.into(),
                rel_start: rel_start(target),
                meta: &meta,
                owner: root.owner,
            };
            if let Some(entry) = entry_for(found, &mut warnings, &mut links)? {
                let mode = root.mode.unwrap_or(entry.mode);
                entries.push(Entry { mode, ..entry });
            }
        }
    }
    add_ancestors(roots, known_dirs, &mut entries);
    // In place (a stable sort would allocate half the plan again); equal paths
    // are a collision, ordered by source so the error names them the same way each run.
    entries.sort_unstable_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| a.rel_start.cmp(&b.rel_start))
    });
    for pair in entries.windows(2) {
        if pair[0].path == pair[1].path {
            return Err(LayerError::Collision {
                layer: name.to_string(),
                target: String::from_utf8_lossy(&pair[0].path).into_owned(),
                first: pair[0].disk(),
                second: pair[1].disk(),
            });
        }
    }
    link_hard_links(&mut entries, links);
    for entry in &entries {
        if matches!(entry.kind, EntryKind::Dir) {
            known_dirs.insert(
                entry.path.to_vec(),
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
            source: Arc::from(Path::new("(ancestor folder)")),
            rel_start: u32::MAX,
            path: path.into(),
            kind: EntryKind::Dir,
            mode: known.mode,
            owner: known.owner,
            multi_linked: false,
            stamp: Stamp::default().digest(),
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
    links: &mut Vec<LinkCandidate>,
) -> Result<(), LayerError> {
    let source: Arc<Path> = Arc::from(root.source.as_path());
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
                    let mut found = Listed::default();
                    while let Some(rel_dir) = queue.next() {
                        let folder = Folder {
                            root,
                            source: &source,
                            target,
                            rel_dir: &rel_dir,
                        };
                        match list_folder(&folder, excludes, &mut found) {
                            Ok(folders) => queue.done(folders),
                            Err(err) => queue.fail(err),
                        }
                    }
                    found
                })
            })
            .collect();
        let mut lists = Vec::new();
        for walker in walkers {
            match walker.join() {
                Ok(found) => {
                    lists.push(found.entries);
                    warnings.extend(found.warnings);
                    links.extend(found.links);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        gather(entries, lists);
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

/// Moves the walkers' entries into `entries` without holding two copies: the
/// largest list is grown in place (a large allocation is remapped, not copied),
/// and each other list is freed once moved.
fn gather(entries: &mut Vec<Entry>, mut lists: Vec<Vec<Entry>>) {
    lists.sort_by_key(|list| std::cmp::Reverse(list.len()));
    let mut lists = lists.into_iter();
    let Some(mut largest) = lists.next() else {
        return;
    };
    let rest: usize = lists.as_slice().iter().map(Vec::len).sum();
    largest.reserve_exact(rest + entries.len());
    largest.append(entries);
    for mut list in lists {
        largest.append(&mut list);
    }
    *entries = largest;
}

/// Where `path`'s part below its source folder starts, for a path that is `target` plus `/` and that part.
fn rel_start(target: &[u8]) -> u32 {
    u32::try_from(target.len() + 1).unwrap_or(u32::MAX)
}

/// One folder of a walk: the root it is under and its path relative to the root's source.
pub(super) struct Folder<'a> {
    pub(super) root: &'a LayerRoot,
    pub(super) source: &'a Arc<Path>,
    pub(super) target: &'a [u8],
    pub(super) rel_dir: &'a Path,
}

/// Lists one folder of the walk into `entries`; returns the subfolders to list next.
///
/// This runs once per file of the tree, so it allocates only the entry's
/// path: the stat is an `fstatat` on the open folder, and the path on disk
/// is built only for what needs it (a symlink, an error).
pub(super) fn list_folder(
    folder: &Folder<'_>,
    excludes: &Excludes,
    listed: &mut Listed,
) -> Result<Vec<PathBuf>, LayerError> {
    let dir = folder.root.source.join(folder.rel_dir);
    let listing = fs::read_dir(&dir).map_err(|source| LayerError::Read {
        path: dir.clone(),
        source,
    })?;
    let rel_dir = folder.rel_dir.as_os_str().as_bytes();
    // target/rel_dir/ : every path of this folder starts with it.
    let mut prefix = Vec::with_capacity(folder.target.len() + rel_dir.len() + 2);
    prefix.extend_from_slice(folder.target);
    prefix.push(b'/');
    if !rel_dir.is_empty() {
        prefix.extend_from_slice(rel_dir);
        prefix.push(b'/');
    }
    let rel_start = rel_start(folder.target);
    let mut folders = Vec::new();
    for item in listing {
        let item = item.map_err(|source| LayerError::Read {
            path: dir.clone(),
            source,
        })?;
        let name = item.file_name();
        let name = name.as_bytes();
        let mut path = Vec::with_capacity(prefix.len() + name.len());
        path.extend_from_slice(&prefix);
        path.extend_from_slice(name);
        let rel = Path::new(OsStr::from_bytes(&path[rel_start as usize..]));
        // fstatat on the open folder, not a lookup of the whole path; like
        // symlink_metadata, it does not follow a symlink.
        let meta = item.metadata().map_err(|source| LayerError::Read {
            path: dir.join(OsStr::from_bytes(name)),
            source,
        })?;
        let excluded = excludes.is_excluded(rel);
        if meta.is_dir() && (!excluded || excludes.may_reinclude()) {
            folders.push(rel.to_path_buf());
        }
        if excluded {
            continue;
        }
        if name.starts_with(b".wh.") {
            return Err(LayerError::Whiteout {
                path: dir.join(OsStr::from_bytes(name)),
            });
        }
        let found = Found {
            source: folder.source,
            path: path.into_boxed_slice(),
            rel_start,
            meta: &meta,
            owner: folder.root.owner,
        };
        if let Some(entry) = entry_for(found, &mut listed.warnings, &mut listed.links)? {
            listed.entries.push(entry);
        }
    }
    Ok(folders)
}

/// What one walking thread found.
#[derive(Default)]
pub(super) struct Listed {
    pub(super) entries: Vec<Entry>,
    pub(super) warnings: Vec<String>,
    pub(super) links: Vec<LinkCandidate>,
}

/// A file with more than one link, by path, and its (device, inode): kept
/// beside the entries rather than in each, since few files have one.
pub(super) type LinkCandidate = (Box<[u8]>, (u64, u64));

/// What the walk found at one path, before it is checked into an entry.
pub(super) struct Found<'a> {
    pub(super) source: &'a Arc<Path>,
    pub(super) path: Box<[u8]>,
    pub(super) rel_start: u32,
    pub(super) meta: &'a fs::Metadata,
    pub(super) owner: Owner,
}

pub(super) fn entry_for(
    found: Found<'_>,
    warnings: &mut Vec<String>,
    links: &mut Vec<LinkCandidate>,
) -> Result<Option<Entry>, LayerError> {
    let Found {
        source,
        path,
        rel_start,
        meta,
        owner,
    } = found;
    let mut entry = Entry {
        path,
        source: Arc::clone(source),
        rel_start,
        kind: EntryKind::Dir,
        mode: meta.mode() & 0o7777,
        owner,
        stamp: Stamp::of(meta).digest(),
        multi_linked: meta.is_file() && meta.nlink() > 1,
        defaulted: false,
        rewrite: None,
    };
    let file_type = meta.file_type();
    entry.kind = if file_type.is_dir() {
        EntryKind::Dir
    } else if file_type.is_file() {
        EntryKind::File { size: meta.len() }
    } else if file_type.is_symlink() {
        let disk = entry.disk();
        let target =
            fs::read_link(&disk).map_err(|source| LayerError::Read { path: disk, source })?;
        EntryKind::Symlink {
            target: target.as_os_str().as_bytes().into(),
        }
    } else if file_type.is_socket() {
        warnings.push(format!("skipped socket {}", entry.disk().display()));
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
            path: entry.disk(),
            kind,
        });
    };
    if entry.multi_linked {
        links.push((entry.path.clone(), (meta.dev(), meta.ino())));
    }
    Ok(Some(entry))
}

/// The first path of a (dev, inode) pair in sorted order keeps the content; later ones become tar hard links to it.
pub(super) fn link_hard_links(entries: &mut [Entry], links: Vec<LinkCandidate>) {
    if links.is_empty() {
        return;
    }
    let inodes: HashMap<Box<[u8]>, (u64, u64)> = links.into_iter().collect();
    let mut first_seen: HashMap<(u64, u64), Box<[u8]>> = HashMap::new();
    for entry in entries.iter_mut() {
        if !entry.multi_linked {
            continue;
        }
        let Some(inode) = inodes.get(&entry.path) else {
            continue;
        };
        match first_seen.get(inode) {
            Some(first) => entry.kind = EntryKind::HardLink { to: first.clone() },
            None => {
                first_seen.insert(*inode, entry.path.clone());
            }
        }
    }
}
