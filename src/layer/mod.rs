//! Layers from folders: walk (sorted), filter, write tar, compress and hash in one streaming pass into the store.
//!
//! Planning (`plan_layer`) only stats the tree, so `--dry-run` and the
//! checks that must fail before anything is written (FIFOs, devices,
//! whiteout names) cost no reads. Writing (`write_layer`) streams each file
//! through tar → diff-id hash → compressor → digest hash → store file, so no
//! layer is ever held in memory.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Condvar, Mutex};

use globset::{GlobBuilder, GlobMatcher};

use crate::digest::{Digest, HashingWriter};
use crate::gzip::{CompressPool, FileMarks, GzipWriter};
use crate::scan::{Finding, ScanRules, Scanner, Tee};
use crate::spec::Owner;
use crate::store::{Store, StoreError};

pub mod base_folders;
pub mod cached;
pub mod progress;

pub use cached::write_layers;
pub use progress::LayerProgress;
use progress::Ticker;

/// gzip level for layers: part of the layer format, since it decides the digest.
pub const GZIP_LEVEL: u32 = 6;
/// zstd level for layers: likewise part of the format.
pub const ZSTD_LEVEL: i32 = 3;

/// What went wrong while planning or writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is a {kind}; stowage cannot put one in an image")]
    Special { path: PathBuf, kind: &'static str },
    #[error("{path} is named like a whiteout (.wh.*), which would delete files in the image")]
    Whiteout { path: PathBuf },
    #[error("cannot read the base image's layer {digest}")]
    BaseLayer {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("{path} changed size while it was being read")]
    Changed { path: PathBuf },
    #[error("{first} and {second} both go to /{target} in the {layer} layer")]
    Collision {
        layer: String,
        target: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("exclude pattern `{pattern}` is not a valid pattern")]
    Pattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("cannot write the {layer} layer")]
    Write {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug in stowage, not in the input.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl LayerError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            LayerError::Special { .. } => {
                Some("remove it from the source folder, or add it to `exclude`".into())
            }
            LayerError::Whiteout { .. } => {
                Some("rename or remove the file, or add it to `exclude`".into())
            }
            LayerError::Read { .. } => {
                Some("make it readable by this user, or add it to `exclude`".into())
            }
            LayerError::BaseLayer { .. } => Some(
                "the base image's layer is damaged; pull or export the base again, or build with --keep-base-remote to skip reading it".into(),
            ),
            LayerError::Changed { .. } => {
                Some("stop whatever writes to the source tree while building".into())
            }
            _ => None,
        }
    }
}

/// How layer blobs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    /// The name used in media types and the store's alias records.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// `.dockerignore`-style exclude patterns, relative to a source folder.
///
/// Docker's rules: `*` and `?` stop at `/`, `**` spans folders, a leading
/// `!` re-includes, the last matching pattern wins, and a pattern that
/// matches a folder excludes everything below it.
#[derive(Debug, Default)]
pub struct Excludes {
    patterns: Vec<(GlobMatcher, bool)>,
    has_negation: bool,
}

impl Excludes {
    /// Compiles the patterns.
    pub fn new(patterns: &[String]) -> Result<Excludes, LayerError> {
        let mut compiled = Vec::new();
        let mut has_negation = false;
        for raw in patterns {
            let (negated, body) = match raw.trim().strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, raw.trim()),
            };
            let cleaned = clean_pattern(body);
            if cleaned.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&cleaned)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|source| LayerError::Pattern {
                    pattern: raw.clone(),
                    source,
                })?;
            has_negation |= negated;
            compiled.push((glob.compile_matcher(), negated));
        }
        Ok(Excludes {
            patterns: compiled,
            has_negation,
        })
    }

    /// Whether `rel` (relative to the source folder) is excluded.
    pub fn is_excluded(&self, rel: &Path) -> bool {
        let mut excluded = false;
        for (glob, negated) in &self.patterns {
            let hit = rel
                .ancestors()
                .filter(|p| !p.as_os_str().is_empty())
                .any(|p| glob.is_match(p));
            if hit {
                excluded = !negated;
            }
        }
        excluded
    }

    /// Whether an excluded folder may still hold re-included entries, so it must be walked.
    fn may_reinclude(&self) -> bool {
        self.has_negation
    }
}

fn clean_pattern(pattern: &str) -> String {
    let parts: Vec<&str> = pattern
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    parts.join("/")
}

/// One thing that goes into a layer: a folder (walked) or a single file.
#[derive(Debug)]
pub struct LayerRoot {
    pub source: PathBuf,
    pub target: String,
    pub owner: Owner,
    /// For a single file: the mode to give it instead of the one on disk.
    pub mode: Option<u32>,
}

#[derive(Debug, Clone)]
enum EntryKind {
    Dir,
    File { size: u64 },
    Symlink { target: Vec<u8> },
    HardLink { to: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Entry {
    path: Vec<u8>,
    disk: PathBuf,
    kind: EntryKind,
    mode: u32,
    owner: Owner,
    inode: Option<(u64, u64)>,
    /// What stat said, for the layer cache's fingerprint.
    stamp: Stamp,
    /// An ancestor folder whose mode and owner are only the default guess,
    /// to be replaced by the base's own when the base has the folder.
    defaulted: bool,
}

/// The entries of one layer, sorted, checked and counted, before any byte is read.
#[derive(Debug)]
pub struct LayerPlan {
    pub name: String,
    pub sources: Vec<PathBuf>,
    entries: Vec<Entry>,
    /// Entries of every kind (folders, files, links).
    pub entry_count: u64,
    /// Regular files (hard links not counted twice).
    pub file_count: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
    /// Things skipped that the user should hear about (sockets).
    pub warnings: Vec<String>,
    /// Scan each file for secrets while writing; None writes without looking.
    pub secret_scan: Option<ScanRules>,
}

/// A layer written into the store.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    pub name: String,
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub compression: Compression,
    pub entry_count: u64,
    pub file_count: u64,
    /// Taken from the layer cache: nothing was read or compressed.
    pub cached: bool,
    /// What the secret scan found while the layer was written (empty when it did not run).
    pub findings: Vec<Finding>,
}

/// A folder an earlier layer of the same build wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownDir {
    pub mode: u32,
    pub owner: Owner,
    /// Its mode and owner were the default guess for an ancestor.
    pub defaulted: bool,
}

/// Folders written by earlier layers of the same build, by path.
pub type KnownDirs = BTreeMap<Vec<u8>, KnownDir>;

/// What the base image has at a path an ancestor entry would describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseFolder {
    Dir {
        mode: u32,
        owner: Owner,
    },
    /// A symlink or file: the layer must not replace it with a folder.
    NotDir,
}

/// The base's entries at the paths asked about; a path absent here is absent from the base.
pub type BaseFolders = BTreeMap<Vec<u8>, BaseFolder>;

/// Mode of an ancestor folder nobody described: what every distribution uses.
fn default_ancestor_mode(path: &[u8]) -> u32 {
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
    })
}

fn add_ancestors(roots: &[LayerRoot], known_dirs: &KnownDirs, entries: &mut Vec<Entry>) {
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
        });
    }
}

fn walk_folder(
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
struct WalkQueue {
    state: Mutex<WalkState>,
    changed: Condvar,
}

struct WalkState {
    pending: Vec<PathBuf>,
    /// Folders being listed now: their subfolders may still arrive.
    busy: usize,
    error: Option<LayerError>,
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
fn list_folder(
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

fn entry_for(
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
    }))
}

/// The first path of a (dev, inode) pair in sorted order keeps the content; later ones become tar hard links to it.
fn link_hard_links(entries: &mut [Entry]) {
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

impl LayerPlan {
    /// Ancestor folders whose metadata is still the default guess.
    pub fn defaulted_ancestors(&self) -> impl Iterator<Item = &[u8]> {
        self.entries
            .iter()
            .filter(|e| e.defaulted)
            .map(|e| e.path.as_slice())
    }

    /// The entries as written over `base`: a defaulted ancestor takes the
    /// base's mode and owner, and is left out where the base has something
    /// other than a folder. The plan itself never changes.
    fn entries_over<'a>(&'a self, base: &'a BaseFolders) -> impl Iterator<Item = Cow<'a, Entry>> {
        self.entries.iter().filter_map(|entry| {
            if !entry.defaulted {
                return Some(Cow::Borrowed(entry));
            }
            match base.get(&entry.path) {
                Some(BaseFolder::Dir { mode, owner }) => {
                    let mut resolved = entry.clone();
                    resolved.mode = *mode;
                    resolved.owner = *owner;
                    Some(Cow::Owned(resolved))
                }
                Some(BaseFolder::NotDir) => None,
                None => Some(Cow::Borrowed(entry)),
            }
        })
    }

    /// Entries of every kind the layer holds when written over `base`.
    pub fn entry_count_over(&self, base: &BaseFolders) -> u64 {
        let dropped = self
            .entries
            .iter()
            .filter(|e| e.defaulted && base.get(&e.path) == Some(&BaseFolder::NotDir))
            .count() as u64;
        self.entry_count - dropped
    }
}

/// Reads the base layers' tar headers (I/O) and reports what the finished
/// base has at each `wanted` path, honouring whiteouts.
pub fn scan_base_folders(
    store: &Store,
    layers: &[crate::image::Layer],
    wanted: &std::collections::BTreeSet<Vec<u8>>,
) -> Result<BaseFolders, LayerError> {
    let mut found = BaseFolders::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    for layer in layers {
        let digest = &layer.descriptor.digest;
        let read_err = |source: io::Error| LayerError::BaseLayer {
            digest: digest.clone(),
            source,
        };
        let file = io::BufReader::with_capacity(256 * 1024, store.open_blob(digest)?);
        let media_type = &layer.descriptor.media_type;
        let reader: Box<dyn Read> = if media_type.ends_with("gzip") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else if media_type.ends_with("zstd") {
            Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(read_err)?)
        } else {
            Box::new(file)
        };
        let mut archive = tar::Archive::new(reader);
        let mut this_layer = BaseFolders::new();
        let mut removed: Vec<(Vec<u8>, bool)> = Vec::new();
        for entry in archive.entries().map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let raw = entry.path_bytes();
            let path = normalize_member(&raw);
            let (parent, name) = match path.iter().rposition(|b| *b == b'/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => (&path[..0], &path[..]),
            };
            if name == b".wh..wh..opq" {
                removed.push((parent.to_vec(), true));
                continue;
            }
            if let Some(hidden) = name.strip_prefix(b".wh.") {
                let mut target = parent.to_vec();
                if !target.is_empty() {
                    target.push(b'/');
                }
                target.extend_from_slice(hidden);
                removed.push((target, false));
                continue;
            }
            if !wanted.contains(&path) {
                continue;
            }
            let header = entry.header();
            let folder = if header.entry_type().is_dir() {
                BaseFolder::Dir {
                    mode: lenient_number(&header.as_old().mode, header.mode().map(u64::from))
                        .map_err(read_err)? as u32
                        & 0o7777,
                    owner: Owner {
                        uid: lenient_number(&header.as_old().uid, header.uid())
                            .map_err(read_err)?,
                        gid: lenient_number(&header.as_old().gid, header.gid())
                            .map_err(read_err)?,
                    },
                }
            } else {
                BaseFolder::NotDir
            };
            this_layer.insert(path, folder);
        }
        // A layer's whiteouts hide what the layers below it made, not what it makes itself.
        for (target, opaque) in removed {
            found.retain(|path, _| {
                let beneath = path.len() > target.len()
                    && path.starts_with(&target)
                    && (target.is_empty() || path[target.len()] == b'/');
                !(beneath || (!opaque && *path == target))
            });
        }
        found.extend(this_layer);
    }
    Ok(found)
}

/// A numeric tar header field, read as Go's archive/tar reads it: a field of
/// only NULs and spaces is 0 (Docker and skopeo accept such layers, so must we).
fn lenient_number(field: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    if field.iter().all(|b| *b == 0 || *b == b' ') {
        return Ok(0);
    }
    parsed
}

fn normalize_member(raw: &[u8]) -> Vec<u8> {
    let mut path = raw;
    while let Some(rest) = path.strip_prefix(b"./").or_else(|| path.strip_prefix(b"/")) {
        path = rest;
    }
    while let Some(rest) = path.strip_suffix(b"/") {
        path = rest;
    }
    if path == b"." {
        Vec::new()
    } else {
        path.to_vec()
    }
}

/// The stat fields that change when a file's content or metadata may have changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Stamp {
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
    inode: u64,
    device: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }
}

/// Bumped whenever the bytes stowage writes for the same inputs change, so old cache entries stop matching.
pub const LAYER_FORMAT_VERSION: u32 = 5;

impl LayerPlan {
    /// A digest of everything that decides this layer's bytes, short of the bytes themselves:
    /// paths, kinds, link targets, modes, owners, and each file's size, times and inode.
    /// Equal fingerprints mean the layer need not be read or compressed again.
    pub fn fingerprint(&self, base: &BaseFolders, compression: Compression, mtime: u64) -> Digest {
        let mut hasher = crate::digest::hash_sink();
        let mut put = |bytes: &[u8]| {
            let _ = hasher.write_all(&(bytes.len() as u64).to_le_bytes());
            let _ = hasher.write_all(bytes);
        };
        put(format!("stowage layer v{LAYER_FORMAT_VERSION}").as_bytes());
        put(compression.name().as_bytes());
        put(&match compression {
            Compression::Gzip => GZIP_LEVEL as i64,
            Compression::Zstd => ZSTD_LEVEL as i64,
        }
        .to_le_bytes());
        put(&mtime.to_le_bytes());
        // A cached layer carries the scan's findings, so the scan's settings are inputs too.
        match &self.secret_scan {
            Some(rules) => {
                put(b"scan");
                for name in &rules.secret_names {
                    put(name.as_bytes());
                }
            }
            None => put(b"no scan"),
        }
        for entry in self.entries_over(base) {
            put(&entry.path);
            let (tag, extra): (&[u8], &[u8]) = match &entry.kind {
                EntryKind::Dir => (b"d", b""),
                EntryKind::File { .. } => (b"f", b""),
                EntryKind::Symlink { target } => (b"s", target),
                EntryKind::HardLink { to } => (b"h", to),
            };
            put(tag);
            put(extra);
            put(&entry.mode.to_le_bytes());
            put(&entry.owner.uid.to_le_bytes());
            put(&entry.owner.gid.to_le_bytes());
            let st = entry.stamp;
            for field in [st.mtime, st.mtime_nsec, st.ctime, st.ctime_nsec] {
                put(&field.to_le_bytes());
            }
            for field in [st.size, st.inode, st.device] {
                put(&field.to_le_bytes());
            }
        }
        hasher.finish().1
    }

    /// Splits a folder layer into at most `parts` layers by top-level entry (package,
    /// extension) under `target`, each entry's part chosen by a hash of its name alone:
    /// changing a file changes one part, and adding a package leaves the others as they were.
    /// Every part carries the folders above its entries, so each unpacks on its own.
    pub fn split_by_package(self, target: &str, parts: usize) -> Vec<LayerPlan> {
        if parts <= 1 {
            return vec![self];
        }
        let root = target.trim_start_matches('/').as_bytes().to_vec();
        let part_of = |path: &[u8]| -> Option<usize> {
            let rest = path.strip_prefix(root.as_slice())?.strip_prefix(b"/")?;
            let top = rest.split(|b| *b == b'/').next()?;
            let hash = Digest::of(top);
            let mut first = [0u8; 8];
            first.copy_from_slice(&hash.hex().as_bytes()[..8]);
            let value = u64::from_str_radix(std::str::from_utf8(&first).ok()?, 16).ok()?;
            Some((value % parts as u64) as usize)
        };
        let dirs: BTreeMap<Vec<u8>, Entry> = self
            .entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::Dir))
            .map(|e| (e.path.clone(), e.clone()))
            .collect();
        let mut buckets: Vec<BTreeMap<Vec<u8>, Entry>> = vec![BTreeMap::new(); parts];
        for entry in &self.entries {
            // A hard link must sit in the same layer as the file it links to.
            let anchor = match &entry.kind {
                EntryKind::HardLink { to } => to.as_slice(),
                _ => entry.path.as_slice(),
            };
            let Some(part) = part_of(anchor) else {
                continue; // the root folder and its ancestors go wherever they are needed
            };
            let bucket = &mut buckets[part];
            for (i, byte) in entry.path.iter().enumerate() {
                if *byte == b'/'
                    && let Some(dir) = dirs.get(&entry.path[..i])
                {
                    bucket
                        .entry(dir.path.clone())
                        .or_insert_with(|| dir.clone());
                }
            }
            bucket.insert(entry.path.clone(), entry.clone());
        }
        let total = buckets.iter().filter(|b| !b.is_empty()).count();
        if total == 0 {
            return vec![self];
        }
        let mut index = 0;
        buckets
            .into_iter()
            .filter(|b| !b.is_empty())
            .map(|bucket| {
                index += 1;
                let entries: Vec<Entry> = bucket.into_values().collect();
                LayerPlan {
                    name: format!("{}-{index}of{total}", self.name),
                    sources: self.sources.clone(),
                    entry_count: entries.len() as u64,
                    file_count: entries
                        .iter()
                        .filter(|e| matches!(e.kind, EntryKind::File { .. }))
                        .count() as u64,
                    content_bytes: entries
                        .iter()
                        .map(|e| match e.kind {
                            EntryKind::File { size } => size,
                            _ => 0,
                        })
                        .sum(),
                    entries,
                    warnings: if index == 1 {
                        self.warnings.clone()
                    } else {
                        Vec::new()
                    },
                    secret_scan: self.secret_scan.clone(),
                }
            })
            .collect()
    }
}

/// gzips an uncompressed layer already in the store, once: the result is remembered by diff-id (I/O).
pub fn gzip_stored_layer(store: &Store, diff_id: &Digest) -> Result<(Digest, u64), StoreError> {
    // The alias names the format version: a store filled by an older stowage
    // must not hand back bytes this one would not write.
    let alias = format!("gzip-v{}", LAYER_FORMAT_VERSION);
    if let Some(digest) = store.read_compressed_alias(diff_id, &alias) {
        let size = store.blob_size(&digest)?;
        return Ok((digest, size));
    }
    let mut source = io::BufReader::with_capacity(256 * 1024, store.open_blob(diff_id)?);
    let blob = store.writer()?;
    let pool = CompressPool::for_this_machine();
    let mut gz = GzipWriter::new(blob, &pool, GZIP_LEVEL);
    let write_err = |source| StoreError::Write {
        path: store.temp_dir(),
        source,
    };
    io::copy(&mut source, &mut gz).map_err(write_err)?;
    let (digest, size) = gz.finish().map_err(write_err)?.commit()?;
    store.write_compressed_alias(diff_id, &alias, &digest)?;
    Ok((digest, size))
}

/// How the layers of one build are written: the same for each of them.
#[derive(Clone, Copy)]
pub struct WriteSettings<'a> {
    pub compression: Compression,
    /// Modification time of every entry.
    pub mtime: u64,
    /// What the base has at the layers' defaulted ancestor folders (empty: the defaults stay).
    pub base_folders: &'a BaseFolders,
    /// The compression threads.
    pub pool: &'a CompressPool,
    /// Where the bytes read are reported; None reports nothing.
    pub progress: Option<&'a dyn LayerProgress>,
}

/// Writes the planned layer into the store (I/O) and returns its digests; gzip runs on `pool`.
/// The bytes read go to `settings.progress` as they are read; its `started`
/// and `finished` are the caller's to call (`write_layers` does).
pub fn write_layer(
    plan: &LayerPlan,
    store: &Store,
    settings: &WriteSettings<'_>,
) -> Result<BuiltLayer, LayerError> {
    let WriteSettings {
        compression,
        mtime,
        base_folders,
        pool,
        progress,
    } = *settings;
    let ticker = progress.map(|progress| Ticker::new(progress, &plan.name));
    let write_err = |source: io::Error| LayerError::Write {
        layer: plan.name.clone(),
        source,
    };
    let blob = store.writer()?;
    let mut scanner = plan.secret_scan.as_ref().map(Scanner::new);
    let (blob, diff_id) = match compression {
        Compression::Gzip => {
            let gz = GzipWriter::new(blob, pool, GZIP_LEVEL);
            let marks = gz.file_marks();
            let (gz, diff_id) = write_tar(
                plan,
                gz,
                (mtime, base_folders),
                scanner.as_mut(),
                Some(marks),
                ticker.as_ref(),
            )?;
            (gz.finish().map_err(write_err)?, diff_id)
        }
        Compression::Zstd => {
            let zst = zstd::stream::Encoder::new(blob, ZSTD_LEVEL).map_err(write_err)?;
            let (zst, diff_id) = write_tar(
                plan,
                zst,
                (mtime, base_folders),
                scanner.as_mut(),
                None,
                ticker.as_ref(),
            )?;
            (zst.finish().map_err(write_err)?, diff_id)
        }
    };
    let (digest, size) = blob.commit()?;
    Ok(BuiltLayer {
        name: plan.name.clone(),
        digest,
        diff_id,
        size,
        compression,
        entry_count: plan.entry_count_over(base_folders),
        file_count: plan.file_count,
        cached: false,
        findings: scanner.map(Scanner::into_findings).unwrap_or_default(),
    })
}

/// Writes the tar stream of `plan` into `out` and returns `out` with the diff-id;
/// every file's bytes also pass through `scanner` on their way into the tar,
/// and where each file's contents lie in the stream goes to `marks`; the
/// count of content bytes read goes to `ticker`.
fn write_tar<W: Write>(
    plan: &LayerPlan,
    out: W,
    (mtime, base): (u64, &BaseFolders),
    mut scanner: Option<&mut Scanner>,
    marks: Option<FileMarks>,
    ticker: Option<&Ticker<'_>>,
) -> Result<(W, Digest), LayerError> {
    let write_err = |source: io::Error| LayerError::Write {
        layer: plan.name.clone(),
        source,
    };
    // Large buffer: the tar crate issues many small writes (headers, padding)
    // that would otherwise each go through the hasher and compressor.
    let hashed = HashingWriter::new(out);
    let position = Rc::new(Cell::new(0));
    let counted = Counting {
        inner: BufWriter::with_capacity(256 * 1024, hashed),
        position: Rc::clone(&position),
    };
    let marker = marks.map(|marks| ContentMarker { marks, position });
    let mut builder = tar::Builder::new(counted);
    // Holes would become GNU sparse entries, which not every unpacker reads.
    builder.sparse(false);
    for entry in plan.entries_over(base) {
        append_entry(
            &mut builder,
            &entry,
            mtime,
            scanner.as_deref_mut(),
            marker.as_ref(),
            ticker,
        )
        .map_err(|e| match e {
            AppendError::Source(err) => err,
            AppendError::Io(source) => write_err(source),
        })?;
    }
    if let Some(ticker) = ticker {
        ticker.flush();
    }
    let buffered = builder.into_inner().map_err(write_err)?.inner;
    let hashed = buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    let (out, diff_id, _) = hashed.finish();
    Ok((out, diff_id))
}

enum AppendError {
    Source(LayerError),
    Io(io::Error),
}

/// Counts the bytes the tar builder has written, so a file's contents can be located in the stream.
struct Counting<W> {
    inner: W,
    position: Rc<Cell<u64>>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.position.set(self.position.get() + written as u64);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Tells the compressor where each file's contents start and how long they are.
struct ContentMarker {
    marks: FileMarks,
    position: Rc<Cell<u64>>,
}

fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    entry: &Entry,
    mtime: u64,
    scanner: Option<&mut Scanner>,
    marker: Option<&ContentMarker>,
    ticker: Option<&Ticker<'_>>,
) -> Result<(), AppendError> {
    let mut header = tar::Header::new_gnu();
    header.set_mode(entry.mode);
    header.set_uid(entry.owner.uid);
    header.set_gid(entry.owner.gid);
    header.set_mtime(mtime);
    header.set_size(0);
    let path = OsStr::from_bytes(&entry.path);
    let appended = match &entry.kind {
        EntryKind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            let mut dir_path = entry.path.clone();
            dir_path.push(b'/');
            builder.append_data(&mut header, OsStr::from_bytes(&dir_path), io::empty())
        }
        EntryKind::Symlink { target } => {
            header.set_entry_type(tar::EntryType::Symlink);
            builder.append_link(&mut header, path, OsStr::from_bytes(target))
        }
        EntryKind::HardLink { to } => {
            if let Some(scanner) = scanner {
                scanner.link(&entry.path);
            }
            header.set_entry_type(tar::EntryType::Link);
            builder.append_link(&mut header, path, OsStr::from_bytes(to))
        }
        EntryKind::File { size } => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(*size);
            let file = File::open(&entry.disk).map_err(|source| {
                AppendError::Source(LayerError::Read {
                    path: entry.disk.clone(),
                    source,
                })
            })?;
            let mut reader = ExactReader {
                inner: file,
                remaining: *size,
                path: &entry.disk,
                changed: false,
                marker,
                ticker,
            };
            let result = match scanner {
                Some(scanner) => {
                    let mut scan = scanner.file(&entry.path);
                    let mut tee = Tee {
                        inner: &mut reader,
                        scan: &mut scan,
                    };
                    let result = builder.append_data(&mut header, path, &mut tee);
                    scan.finish();
                    result
                }
                None => builder.append_data(&mut header, path, &mut reader),
            };
            if reader.changed {
                return Err(AppendError::Source(LayerError::Changed {
                    path: entry.disk.clone(),
                }));
            }
            result.map_err(|source| match source.kind() {
                io::ErrorKind::Other if source.get_ref().is_some_and(|e| e.is::<ReadFailure>()) => {
                    AppendError::Source(LayerError::Read {
                        path: entry.disk.clone(),
                        source,
                    })
                }
                _ => AppendError::Io(source),
            })?;
            return Ok(());
        }
    };
    appended.map_err(AppendError::Io)
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReadFailure(String);

/// Reads exactly the size the header announced; a file that grew or shrank since it was planned is an error, not a corrupt tar.
struct ExactReader<'a> {
    inner: File,
    remaining: u64,
    path: &'a Path,
    changed: bool,
    /// Taken at the first read: by then the builder has written every header byte and no content byte.
    marker: Option<&'a ContentMarker>,
    /// Counts the bytes read, for the progress display.
    ticker: Option<&'a Ticker<'a>>,
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(marker) = self.marker.take() {
            marker.marks.mark(marker.position.get(), self.remaining);
        }
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            if self
                .inner
                .read(&mut probe)
                .map_err(|e| wrap_read(self.path, e))?
                > 0
            {
                self.changed = true;
                return Err(io::Error::other(ReadFailure(format!(
                    "{} grew",
                    self.path.display()
                ))));
            }
            return Ok(0);
        }
        let limit = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self
            .inner
            .read(&mut buf[..limit])
            .map_err(|e| wrap_read(self.path, e))?;
        if n == 0 {
            self.changed = true;
            return Err(io::Error::other(ReadFailure(format!(
                "{} shrank",
                self.path.display()
            ))));
        }
        self.remaining -= n as u64;
        if let Some(ticker) = self.ticker {
            ticker.add(n as u64);
        }
        Ok(n)
    }
}

fn wrap_read(path: &Path, err: io::Error) -> io::Error {
    io::Error::other(ReadFailure(format!("{}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// Writes `plan` with `compression`, mtime 1, over `base`, on two threads.
    fn write_over(
        plan: &LayerPlan,
        store: &Store,
        compression: Compression,
        base: &BaseFolders,
    ) -> BuiltLayer {
        let pool = CompressPool::new(2);
        let settings = WriteSettings {
            compression,
            mtime: 1,
            base_folders: base,
            pool: &pool,
            progress: None,
        };
        write_layer(plan, store, &settings).unwrap()
    }

    const ROOT: Owner = Owner { uid: 0, gid: 0 };

    fn root(source: &Path, target: &str) -> LayerRoot {
        LayerRoot {
            source: source.to_path_buf(),
            target: target.to_string(),
            owner: Owner {
                uid: 1000,
                gid: 100,
            },
            mode: None,
        }
    }

    fn tar_names(store: &Store, layer: &BuiltLayer) -> Vec<(String, u64, u32, tar::EntryType)> {
        let file = store.open_blob(&layer.digest).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                    h.entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn dockerignore_rules() {
        let ex = Excludes::new(&[
            "**/__pycache__".into(),
            "*.pyc".into(),
            "build/".into(),
            "!build/keep".into(),
        ])
        .unwrap();
        assert!(ex.is_excluded(Path::new("a/b/__pycache__")));
        assert!(ex.is_excluded(Path::new("a/__pycache__/x.py")));
        assert!(ex.is_excluded(Path::new("top.pyc")));
        assert!(
            !ex.is_excluded(Path::new("sub/deep.pyc")),
            "`*` stops at `/` as in .dockerignore"
        );
        assert!(ex.is_excluded(Path::new("build/out.o")));
        assert!(!ex.is_excluded(Path::new("build/keep")));
        assert!(!ex.is_excluded(Path::new("src/main.py")));
    }

    #[test]
    fn layer_is_sorted_owned_and_spells_out_ancestors() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("lib");
        fs::create_dir_all(src.join("b")).unwrap();
        fs::write(src.join("b/z.txt"), "z").unwrap();
        fs::write(src.join("a-c"), "ac").unwrap();
        fs::write(src.join("skip.pyc"), "x").unwrap();
        symlink("b/z.txt", src.join("link")).unwrap();
        fs::hard_link(src.join("a-c"), src.join("zz-hard")).unwrap();
        fs::set_permissions(src.join("a-c"), fs::Permissions::from_mode(0o640)).unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let ex = Excludes::new(&["*.pyc".into()]).unwrap();
        let plan = plan_layer(
            "library",
            &[root(&src, "/opt/app")],
            &ex,
            &mut KnownDirs::new(),
        )
        .unwrap();
        assert_eq!(plan.file_count, 2);
        let layer = write_over(&plan, &store, Compression::Gzip, &BaseFolders::new());
        let names = tar_names(&store, &layer);
        let paths: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "opt/",
                "opt/app/",
                "opt/app/a-c",
                "opt/app/b/",
                "opt/app/b/z.txt",
                "opt/app/link",
                "opt/app/zz-hard"
            ]
        );
        assert_eq!(
            (names[0].1, names[0].2),
            (0, 0o755),
            "ancestor is root-owned 0755"
        );
        assert!(names[1..].iter().all(|n| n.1 == 1000));
        assert_eq!(names[2].2, 0o640);
        assert_eq!(names[5].3, tar::EntryType::Symlink);
        assert_eq!(names[6].3, tar::EntryType::Link);
    }

    #[test]
    fn same_tree_elsewhere_with_other_mtimes_gives_same_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let mut digests = Vec::new();
        for name in ["one", "two/deeper"] {
            let src = dir.path().join(name);
            fs::create_dir_all(src.join("pkg")).unwrap();
            fs::write(src.join("pkg/mod.py"), "print(1)\n").unwrap();
            let long = "x".repeat(150);
            fs::write(src.join(&long), "long name").unwrap();
            let plan = plan_layer(
                "library",
                &[root(&src, "/opt/app")],
                &Excludes::default(),
                &mut KnownDirs::new(),
            )
            .unwrap();
            let layer = write_over(&plan, &store, Compression::Gzip, &BaseFolders::new());
            digests.push((layer.digest, layer.diff_id));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(digests[0], digests[1]);
    }

    #[test]
    fn fifo_and_whiteout_are_refused_sockets_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("w");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join(".wh.oops"), "").unwrap();
        let err = plan_layer(
            "workspace",
            &[root(&src, "/w")],
            &Excludes::default(),
            &mut KnownDirs::new(),
        )
        .unwrap_err();
        assert!(matches!(err, LayerError::Whiteout { .. }), "{err}");
        fs::remove_file(src.join(".wh.oops")).unwrap();
        let fifo = src.join("pipe");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = plan_layer(
            "workspace",
            &[root(&src, "/w")],
            &Excludes::default(),
            &mut KnownDirs::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("pipe"), "{err}");
        fs::remove_file(&fifo).unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
        let plan = plan_layer(
            "workspace",
            &[root(&src, "/w")],
            &Excludes::default(),
            &mut KnownDirs::new(),
        )
        .unwrap();
        assert_eq!(plan.warnings.len(), 1);
        assert_eq!(plan.entry_count, 1);
    }

    #[test]
    fn a_wide_deep_tree_walks_whole_and_a_deep_error_stops_it() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("lib");
        for package in 0..30 {
            for module in 0..4 {
                let folder = src.join(format!("pkg{package}/m{module}/deep/er"));
                fs::create_dir_all(&folder).unwrap();
                fs::write(folder.join("f.py"), format!("{package} {module}")).unwrap();
                std::os::unix::fs::symlink("f.py", folder.join("link")).unwrap();
            }
        }
        let plan = || {
            plan_layer(
                "library",
                &[root(&src, "/opt/app")],
                &Excludes::default(),
                &mut KnownDirs::new(),
            )
        };
        let walked = plan().unwrap();
        // Per package: its folder, 4 × (3 folders, a file, a link); plus /opt/app and /opt.
        assert_eq!(walked.entry_count, 30 * (1 + 4 * 5) + 2);
        assert_eq!(walked.file_count, 30 * 4);
        let again = plan().unwrap();
        assert_eq!(
            walked.fingerprint(&BaseFolders::new(), Compression::Gzip, 1),
            again.fingerprint(&BaseFolders::new(), Compression::Gzip, 1)
        );

        fs::write(src.join("pkg17/m2/deep/.wh.gone"), "").unwrap();
        let err = plan().unwrap_err();
        assert!(err.to_string().contains("pkg17/m2/deep/.wh.gone"), "{err}");
    }

    #[test]
    fn single_file_root_takes_mode_and_zstd_works() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("start.sh");
        fs::write(&file, "#!/bin/sh\n").unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let roots = [LayerRoot {
            source: file,
            target: "/opt/app/start.sh".into(),
            owner: ROOT,
            mode: Some(0o755),
        }];
        let mut known = KnownDirs::new();
        known.insert(
            b"opt/app".to_vec(),
            KnownDir {
                mode: 0o750,
                owner: Owner {
                    uid: 1000,
                    gid: 100,
                },
                defaulted: false,
            },
        );
        let plan = plan_layer("files", &roots, &Excludes::default(), &mut known).unwrap();
        let layer = write_over(&plan, &store, Compression::Zstd, &BaseFolders::new());
        let blob = store.open_blob(&layer.digest).unwrap();
        let mut archive = tar::Archive::new(zstd::stream::read::Decoder::new(blob).unwrap());
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("opt/".to_string(), 0o755, 0),
                ("opt/app/".to_string(), 0o750, 1000),
                ("opt/app/start.sh".to_string(), 0o755, 0)
            ],
            "ancestors keep what the earlier layer gave them"
        );
    }

    #[test]
    fn base_folders_replace_defaults_and_whiteouts_hide_them() {
        use crate::image::{Descriptor, Layer, media};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let layer_of = |members: &[(&str, tar::EntryType, u32, u64)]| {
            let mut builder = tar::Builder::new(Vec::new());
            for (name, kind, mode, uid) in members {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(*kind);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*uid);
                h.set_size(0);
                if kind.is_symlink() {
                    builder.append_link(&mut h, name, "elsewhere").unwrap();
                } else {
                    builder.append_data(&mut h, name, io::empty()).unwrap();
                }
            }
            let tar = builder.into_inner().unwrap();
            let digest = store.write_bytes(&tar).unwrap();
            Layer {
                descriptor: Descriptor::new(media::OCI_LAYER, digest.clone(), tar.len() as u64),
                diff_id: digest,
            }
        };
        use tar::EntryType::{Directory, Regular, Symlink};
        let lower = layer_of(&[
            ("./opt/", Directory, 0o711, 0),
            ("./home/", Directory, 0o755, 0),
            ("./home/user/", Directory, 0o750, 1000),
            ("./srv/", Directory, 0o755, 0),
            ("./data", Symlink, 0o777, 0),
        ]);
        let upper = layer_of(&[
            ("srv/.wh..wh..opq", Regular, 0o644, 0),
            ("./.wh.opt", Regular, 0o644, 0),
        ]);
        let wanted = [
            &b"opt"[..],
            b"home",
            b"home/user",
            b"data",
            b"srv",
            b"missing",
        ]
        .iter()
        .map(|p| p.to_vec())
        .collect();
        let found = scan_base_folders(&store, &[lower, upper], &wanted).unwrap();
        assert_eq!(found.get(&b"opt"[..]), None, "whited out");
        assert_eq!(
            found.get(&b"home/user"[..]),
            Some(&BaseFolder::Dir {
                mode: 0o750,
                owner: Owner {
                    uid: 1000,
                    gid: 1000
                }
            })
        );
        assert_eq!(found.get(&b"data"[..]), Some(&BaseFolder::NotDir));
        assert!(
            found.contains_key(&b"srv"[..]),
            "an opaque folder keeps itself"
        );

        let ws = dir.path().join("ws");
        fs::create_dir_all(&ws).unwrap();
        let roots = [root(&ws, "/home/user/work")];
        let plan = plan_layer(
            "workspace",
            &roots,
            &Excludes::default(),
            &mut KnownDirs::new(),
        )
        .unwrap();
        let defaulted: Vec<&[u8]> = plan.defaulted_ancestors().collect();
        assert_eq!(defaulted, [&b"home"[..], b"home/user"]);
        let layer = write_over(&plan, &store, Compression::Gzip, &found);
        let names = tar_names(&store, &layer);
        assert_eq!(names[1].0, "home/user/");
        assert_eq!(
            (names[1].1, names[1].2),
            (1000, 0o750),
            "the base's owner and mode are kept"
        );
    }

    #[test]
    fn base_headers_with_empty_numeric_fields_read_as_zero() {
        use crate::image::{Descriptor, Layer, media};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_path("opt/").unwrap();
        // As some layer writers leave them: uid and gid all NUL bytes.
        header.as_old_mut().uid = [0; 8];
        header.as_old_mut().gid = [0; 8];
        header.set_cksum();
        builder.append(&header, io::empty()).unwrap();
        let tar = builder.into_inner().unwrap();
        let digest = store.write_bytes(&tar).unwrap();
        let layer = Layer {
            descriptor: Descriptor::new(media::OCI_LAYER, digest.clone(), tar.len() as u64),
            diff_id: digest,
        };
        let wanted = [b"opt".to_vec()].into_iter().collect();
        let found = scan_base_folders(&store, &[layer], &wanted).unwrap();
        assert_eq!(
            found.get(&b"opt"[..]),
            Some(&BaseFolder::Dir {
                mode: 0o755,
                owner: Owner { uid: 0, gid: 0 }
            })
        );
    }
}

#[cfg(test)]
mod secret_scan_in_the_layer_pass {
    use crate::layer::{
        self, BaseFolders, Compression, Excludes, KnownDirs, LayerRoot, WriteSettings,
    };
    use crate::scan::ScanRules;
    use crate::spec::Owner;
    use crate::store::Store;

    #[test]
    fn write_layer_reports_findings_and_writes_the_same_bytes() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let src = dir.path().join("ws");
        let key = format!("AKIA{}", "Q3ZT7WX2Q3ZT7WX2");
        let big = format!("{}\nkey = {key}\n", "x = 1\n".repeat(20_000));
        for (path, content) in [
            ("notes.txt", "nothing here\n".to_string()),
            ("deep/config.py", big),
            (".ssh/id_rsa", "not even a key".to_string()),
        ] {
            let path = src.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(path, content).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::hard_link(src.join(".ssh/id_rsa"), src.join("linked"))
            .unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path().join("store")).unwrap_or_else(|e| panic!("{e}"));
        let roots = [LayerRoot {
            source: src.clone(),
            target: "/w".into(),
            owner: Owner { uid: 0, gid: 0 },
            mode: None,
        }];
        let mut plan = layer::plan_layer(
            "workspace",
            &roots,
            &Excludes::default(),
            &mut KnownDirs::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let pool = crate::gzip::CompressPool::new(2);
        let settings = WriteSettings {
            compression: Compression::Gzip,
            mtime: 1,
            base_folders: &BaseFolders::new(),
            pool: &pool,
            progress: None,
        };
        let plain = layer::write_layer(&plan, &store, &settings).unwrap_or_else(|e| panic!("{e}"));
        assert!(plain.findings.is_empty(), "no scan, no findings");
        plan.secret_scan = Some(ScanRules::default());
        let scanned =
            layer::write_layer(&plan, &store, &settings).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scanned.digest, plain.digest, "the scan only looks");
        let found: Vec<String> = scanned.findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "/w/.ssh/id_rsa: ssh-key-file",
                "/w/deep/config.py:20002: aws-access-key-id",
            ],
            "the hard link `linked` sorts after its target and is not a credential name"
        );
    }
}
