//! Planning a layer: walking its sources (sorted, in parallel) into checked, counted entries, with every ancestor folder made explicit. Stats only; no file is read.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use super::excludes::Excludes;
use super::paths::{PathArena, Span};
use super::stat::{FolderReader, Stat, open_folder};
use super::tree_order::{FolderBlock, in_tree_order, sort_folder, sort_subfolders};
use super::{
    Entry, EntryKind, KnownDir, KnownDirs, LayerError, LayerPlan, LayerRole, LayerRoot, Origin,
    Stamp, disk_path,
};
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
    role: LayerRole,
    roots: &[LayerRoot],
    excludes: &Excludes,
    known_dirs: &mut KnownDirs,
) -> Result<LayerPlan, LayerError> {
    let name = role.name();
    let mut listed = Listed::default();
    let mut origins = Vec::new();
    // One folder root's paths are unique by construction and its folders
    // come sorted from the walk; several roots may collide, and are sorted whole.
    let mut tree_root: Option<Vec<u8>> = None;
    for root in roots {
        let target = root.target.trim_start_matches('/').as_bytes();
        let meta = fs::symlink_metadata(&root.source).map_err(|source| LayerError::Read {
            path: root.source.clone(),
            source,
        })?;
        let origin = Origin {
            source: Arc::from(root.source.as_path()),
            rel_start: rel_start(target),
            owner: root.owner,
        };
        let origin = (origin_index(&origins)?, &origin);
        let found = Found {
            origin,
            path: target,
            stat: &Stat::of(&meta),
        };
        if let Some(entry) = entry_for(found, &mut listed)? {
            let mode = if meta.is_dir() { None } else { root.mode };
            let mode = mode.unwrap_or(entry.mode);
            listed.entries.push(Entry { mode, ..entry });
        }
        if meta.is_dir() {
            let folder = Folder {
                root,
                origin,
                target,
                rel_dir: Path::new(""),
            };
            walk_folder(&folder, excludes, &mut listed)?;
            if roots.len() == 1 {
                tree_root = Some(folder_prefix(target, b""));
            }
        }
        origins.push(origin.1.clone());
    }
    add_ancestors(roots, known_dirs, &mut listed, &mut origins)?;
    let Listed {
        entries,
        warnings,
        links,
        mut paths,
        folders,
    } = listed;
    paths.shrink();
    let mut entries = in_order(name, tree_root, entries, &paths, folders, &origins)?;
    link_hard_links(&mut entries, &paths, links);
    for entry in &entries {
        if matches!(entry.kind, EntryKind::Dir) {
            known_dirs.insert(
                paths.get(entry.path).to_vec(),
                KnownDir {
                    mode: entry.mode,
                    owner: origins[entry.origin as usize].owner,
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
        role,
        sources: roots.iter().map(|r| r.source.clone()).collect(),
        entry_count: entries.len() as u64,
        file_count,
        content_bytes,
        entries,
        paths: Arc::new(paths),
        origins: origins.into(),
        warnings,
        secret_scan: None,
        parts: Vec::new(),
        relocation: None,
    })
}

/// The entries in path order: one folder root's from its folders' sorted
/// listings (its paths cannot collide), several roots' by one sort that
/// also finds collisions.
fn in_order(
    name: &str,
    tree_root: Option<Vec<u8>>,
    mut entries: Vec<Entry>,
    paths: &PathArena,
    folders: Vec<FolderBlock>,
    origins: &[Origin],
) -> Result<Vec<Entry>, LayerError> {
    let Some(root_prefix) = tree_root else {
        sort_checked(name, &mut entries, paths, origins)?;
        return Ok(entries);
    };
    let entries = in_tree_order(entries, paths, &folders, &root_prefix)?;
    debug_assert!(
        entries
            .windows(2)
            .all(|pair| paths.get(pair[0].path) < paths.get(pair[1].path)),
        "a single root's walk is in strict path order"
    );
    Ok(entries)
}

/// Sorts the entries by path; two entries at one path are a collision.
fn sort_checked(
    name: &str,
    entries: &mut [Entry],
    paths: &PathArena,
    origins: &[Origin],
) -> Result<(), LayerError> {
    // In place (a stable sort would allocate half the plan again); equal paths
    // are a collision, ordered by source so the error names them the same way each run.
    sort_in_halves(entries, &|a: &Entry, b: &Entry| {
        paths.get(a.path).cmp(paths.get(b.path)).then_with(|| {
            let (a, b) = (&origins[a.origin as usize], &origins[b.origin as usize]);
            a.source.cmp(&b.source).then(a.rel_start.cmp(&b.rel_start))
        })
    });
    for pair in entries.windows(2) {
        let (first, second) = (paths.get(pair[0].path), paths.get(pair[1].path));
        if first == second {
            let disk = |entry: &Entry, path| {
                let origin = &origins[entry.origin as usize];
                disk_path(&origin.source, path, origin.rel_start)
            };
            return Err(LayerError::Collision {
                layer: name.to_string(),
                target: String::from_utf8_lossy(first).into_owned(),
                first: disk(&pair[0], first),
                second: disk(&pair[1], second),
            });
        }
    }
    Ok(())
}

/// Entries from which a plan is sorted on two threads: below it the thread costs more than it saves.
const SORT_IN_HALVES_FROM: usize = 1 << 15;

/// Sorts `entries` by `order`, which is total (equal entries are a
/// collision), on two threads when there are many and two cores: the entries
/// are partitioned in place around the median of a sample, then each side is
/// sorted by its own thread. The sort runs on the main thread after the walk,
/// with nothing else to do, so halving it shortens every build; in place, so
/// it takes no memory. The result is the one a single sort gives.
pub(super) fn sort_in_halves<F>(entries: &mut [Entry], order: &F)
where
    F: Fn(&Entry, &Entry) -> std::cmp::Ordering + Sync,
{
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if entries.len() < SORT_IN_HALVES_FROM || cores < 2 {
        entries.sort_unstable_by(order);
        return;
    }
    let step = entries.len() / 64;
    let mut sample: Vec<Entry> = (1..64).map(|i| entries[i * step].clone()).collect();
    sample.sort_unstable_by(order);
    let pivot = &sample[sample.len() / 2];
    let mut below = 0;
    for index in 0..entries.len() {
        if order(&entries[index], pivot).is_lt() {
            entries.swap(below, index);
            below += 1;
        }
    }
    let (low, high) = entries.split_at_mut(below);
    std::thread::scope(|scope| {
        scope.spawn(|| low.sort_unstable_by(order));
        high.sort_unstable_by(order);
    });
}

/// The number the next origin of `origins` gets.
fn origin_index(origins: &[Origin]) -> Result<u32, LayerError> {
    u32::try_from(origins.len()).map_err(|_| LayerError::Internal("more than 2^32 layer roots"))
}

/// Keeps `bytes` in the plan's arena.
fn keep(paths: &mut PathArena, bytes: &[u8]) -> Result<Span, LayerError> {
    paths.push(bytes).ok_or(LayerError::Internal(
        "a path or link target longer than 4 GiB",
    ))
}

pub(super) fn add_ancestors(
    roots: &[LayerRoot],
    known_dirs: &KnownDirs,
    listed: &mut Listed,
    origins: &mut Vec<Origin>,
) -> Result<(), LayerError> {
    let mut ancestors: BTreeMap<Vec<u8>, ()> = BTreeMap::new();
    for root in roots {
        let target = root.target.trim_start_matches('/').as_bytes();
        for (i, byte) in target.iter().enumerate() {
            if *byte == b'/' && i > 0 {
                ancestors.insert(target[..i].to_vec(), ());
            }
        }
    }
    listed.entries.reserve_exact(ancestors.len());
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
        let span = keep(&mut listed.paths, &path)?;
        let origin = origin_index(origins)?;
        let stamp = Stamp::default().digest_at(&path);
        origins.push(Origin {
            source: Arc::from(Path::new("(ancestor folder)")),
            rel_start: u32::MAX,
            owner: known.owner,
        });
        listed.entries.push(Entry {
            origin,
            path: span,
            kind: EntryKind::Dir,
            mode: known.mode,
            multi_linked: false,
            stamp,
            defaulted: known.defaulted,
            rewrite: None,
        });
    }
    Ok(())
}

/// Walks the folder `top` (a root; its own entry is the caller's) into `listed`.
pub(super) fn walk_folder(
    top: &Folder<'_>,
    excludes: &Excludes,
    listed: &mut Listed,
) -> Result<(), LayerError> {
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
    let first_warning = listed.warnings.len();
    std::thread::scope(|scope| {
        let walkers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut found = Listed::default();
                    let mut reader = FolderReader::default();
                    while let Some(rel_dir) = queue.next() {
                        let folder = Folder {
                            rel_dir: &rel_dir,
                            ..*top
                        };
                        match list_folder(&folder, excludes, &mut reader, &mut found) {
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
                Ok(found) => lists.push(found),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        gather(listed, lists);
    });
    // Sorted, so warnings come in the same order whichever thread met them.
    listed.warnings[first_warning..].sort();
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

/// Moves the walkers' findings into `listed` without holding two copies:
/// the arenas' chunks are taken as they are, the largest list of entries is
/// grown in place (a large allocation is remapped, not copied), and each
/// other list is freed once moved. The folders' ranges move with their entries.
fn gather(listed: &mut Listed, mut lists: Vec<Listed>) {
    for list in &mut lists {
        let moved = listed.paths.absorb(std::mem::take(&mut list.paths));
        for entry in &mut list.entries {
            entry.path = entry.path.moved(moved);
            if let EntryKind::Symlink { target } = &mut entry.kind {
                *target = target.moved(moved);
            }
        }
        listed.warnings.append(&mut list.warnings);
        listed.links.append(&mut list.links);
    }
    lists.sort_by_key(|list| std::cmp::Reverse(list.entries.len()));
    let mut lists = lists.into_iter();
    let Some(largest) = lists.next() else {
        return;
    };
    let Listed {
        entries: mut all,
        folders: mut all_folders,
        ..
    } = largest;
    let rest: usize = lists.as_slice().iter().map(|list| list.entries.len()).sum();
    all.reserve_exact(rest + listed.entries.len());
    let mut append = |entries: &mut Vec<Entry>, folders: &mut Vec<FolderBlock>| {
        let shift = all.len();
        all.append(entries);
        for mut folder in folders.drain(..) {
            folder.range = folder.range.start + shift..folder.range.end + shift;
            all_folders.push(folder);
        }
    };
    append(&mut listed.entries, &mut listed.folders);
    for mut list in lists {
        append(&mut list.entries, &mut list.folders);
    }
    listed.entries = all;
    listed.folders = all_folders;
}

/// The image path of the folder `rel_dir` of a root at `target`, with a `/` after it.
fn folder_prefix(target: &[u8], rel_dir: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(target.len() + rel_dir.len() + 2);
    prefix.extend_from_slice(target);
    prefix.push(b'/');
    if !rel_dir.is_empty() {
        prefix.extend_from_slice(rel_dir);
        prefix.push(b'/');
    }
    prefix
}

/// Where `path`'s part below its source folder starts, for a path that is `target` plus `/` and that part.
fn rel_start(target: &[u8]) -> u32 {
    u32::try_from(target.len() + 1).unwrap_or(u32::MAX)
}

/// One folder of a walk: the root it is under and its path relative to the root's source.
#[derive(Clone, Copy)]
pub(super) struct Folder<'a> {
    pub(super) root: &'a LayerRoot,
    /// The root's origin and its number.
    pub(super) origin: (u32, &'a Origin),
    pub(super) target: &'a [u8],
    pub(super) rel_dir: &'a Path,
}

/// Lists one folder of the walk into `entries`; returns the subfolders to list next.
///
/// This runs once per file of the tree, so it allocates nothing per file:
/// names come from `getdents64` into the thread's reused buffer, the path
/// is built in a reused buffer and copied into the arena, the stat is a
/// `statx` on the open folder for the fields a plan keeps, and the path on
/// disk is built only for what needs it (a symlink, an error).
pub(super) fn list_folder(
    folder: &Folder<'_>,
    excludes: &Excludes,
    reader: &mut FolderReader,
    listed: &mut Listed,
) -> Result<Vec<PathBuf>, LayerError> {
    let dir = folder.root.source.join(folder.rel_dir);
    let read_error = |source| LayerError::Read {
        path: dir.clone(),
        source,
    };
    let open = open_folder(&dir).map_err(read_error)?;
    // target/rel_dir/ : every path of this folder starts with it.
    let prefix = folder_prefix(folder.target, folder.rel_dir.as_os_str().as_bytes());
    let rel_start = rel_start(folder.target);
    let mut folders = Vec::new();
    let mut subfolders = Vec::new();
    let first = listed.entries.len();
    // Reused: the entry keeps its path in the arena, not in an allocation of its own.
    let mut path = Vec::with_capacity(prefix.len() + 64);
    reader.for_each(&open, read_error, |name| {
        let stat = Stat::at(&open, name).map_err(|source| LayerError::Read {
            path: dir.join(OsStr::from_bytes(name.to_bytes())),
            source,
        })?;
        let name = name.to_bytes();
        path.clear();
        path.extend_from_slice(&prefix);
        path.extend_from_slice(name);
        let rel = Path::new(OsStr::from_bytes(&path[rel_start as usize..]));
        let excluded = excludes.is_excluded(rel);
        if stat.is_dir() && (!excluded || excludes.may_reinclude()) {
            folders.push(rel.to_path_buf());
            subfolders.push(Box::from(name));
        }
        if excluded {
            return Ok(());
        }
        if name.starts_with(b".wh.") {
            return Err(LayerError::Whiteout {
                path: dir.join(OsStr::from_bytes(name)),
            });
        }
        let found = Found {
            origin: folder.origin,
            path: &path,
            stat: &stat,
        };
        if let Some(entry) = entry_for(found, listed)? {
            listed.entries.push(entry);
        }
        Ok(())
    })?;
    // Sorted here, on the walking threads, a folder at a time (see `tree_order`).
    sort_folder(&mut listed.entries[first..], &listed.paths, prefix.len());
    sort_subfolders(&mut subfolders);
    listed.folders.push(FolderBlock {
        prefix: prefix.into(),
        range: first..listed.entries.len(),
        subfolders,
    });
    Ok(folders)
}

/// What one walking thread found.
#[derive(Default)]
pub(super) struct Listed {
    pub(super) entries: Vec<Entry>,
    pub(super) warnings: Vec<String>,
    pub(super) links: Vec<LinkCandidate>,
    /// The entries' paths and symlink targets.
    pub(super) paths: PathArena,
    /// The folders listed, each a sorted run of `entries`.
    pub(super) folders: Vec<FolderBlock>,
}

/// A file with more than one link, by path, and its (device, inode): kept
/// beside the entries rather than in each, since few files have one.
pub(super) type LinkCandidate = (Box<[u8]>, (u64, u64));

/// What the walk found at one path, before it is checked into an entry.
pub(super) struct Found<'a> {
    /// Where it was found, and the origin's number.
    pub(super) origin: (u32, &'a Origin),
    pub(super) path: &'a [u8],
    pub(super) stat: &'a Stat,
}

/// The entry for what the walk found, its path and link target kept in `listed`'s arena; None for a socket (a warning).
pub(super) fn entry_for(
    found: Found<'_>,
    listed: &mut Listed,
) -> Result<Option<Entry>, LayerError> {
    let Found {
        origin: (origin, found_at),
        path,
        stat,
    } = found;
    let disk = || disk_path(&found_at.source, path, found_at.rel_start);
    let kind = if stat.is_dir() {
        EntryKind::Dir
    } else if stat.is_file() {
        EntryKind::File { size: stat.size }
    } else if stat.is_symlink() {
        let target = fs::read_link(disk()).map_err(|source| LayerError::Read {
            path: disk(),
            source,
        })?;
        EntryKind::Symlink {
            target: keep(&mut listed.paths, target.as_os_str().as_bytes())?,
        }
    } else if stat.is_socket() {
        listed
            .warnings
            .push(format!("skipped socket {}", disk().display()));
        return Ok(None);
    } else {
        let kind = if stat.is_fifo() {
            "FIFO (named pipe)"
        } else if stat.is_char_device() {
            "character device"
        } else {
            "block device"
        };
        return Err(LayerError::Special { path: disk(), kind });
    };
    let multi_linked = stat.is_file() && stat.nlink > 1;
    if multi_linked {
        listed.links.push((path.into(), (stat.device, stat.inode)));
    }
    Ok(Some(Entry {
        path: keep(&mut listed.paths, path)?,
        origin,
        kind,
        mode: stat.mode & 0o7777,
        stamp: Stamp::of(stat).digest_at(path),
        multi_linked,
        defaulted: false,
        rewrite: None,
    }))
}

/// The first path of a (dev, inode) pair in sorted order keeps the content; later ones become tar hard links to it.
pub(super) fn link_hard_links(entries: &mut [Entry], paths: &PathArena, links: Vec<LinkCandidate>) {
    if links.is_empty() {
        return;
    }
    let inodes: HashMap<Box<[u8]>, (u64, u64)> = links.into_iter().collect();
    let mut first_seen: HashMap<(u64, u64), Span> = HashMap::new();
    for entry in entries.iter_mut() {
        if !entry.multi_linked {
            continue;
        }
        let Some(inode) = inodes.get(paths.get(entry.path)) else {
            continue;
        };
        match first_seen.get(inode) {
            Some(first) => entry.kind = EntryKind::HardLink { to: *first },
            None => {
                first_seen.insert(*inode, entry.path);
            }
        }
    }
}
