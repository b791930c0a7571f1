//! Layers from folders: walk (sorted), filter, write tar, compress and hash in one streaming pass into the store.
//!
//! Planning (`plan_layer`) only stats the tree, so `--dry-run` and the
//! checks that must fail before anything is written (FIFOs, devices,
//! whiteout names) cost no reads. Writing (`write_layer`) streams each file
//! through tar → diff-id hash → compressor → digest hash → store file, so no
//! layer is ever held in memory.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::digest::Digest;
use crate::scan::{Finding, ScanRules};
use crate::spec::Owner;
use crate::store::StoreError;

pub mod base_folders;
mod bytecode;
pub mod cached;
mod content;
mod excludes;
mod listing;
mod paths;
pub mod progress;
mod records;
mod relocate;
mod split;
mod stat;
mod tree_order;
mod walk;
mod write;

pub use base_folders::scan_base_folders;
pub use cached::write_layers;
pub use content::{content_hint, content_key};
pub use excludes::Excludes;
pub use listing::index_of;
use paths::{PathArena, Span};
pub use progress::LayerProgress;
pub use records::SharedContents;
pub use relocate::{Relocation, RewriteKind, relocated_head};
pub use split::{GroupKey, LayerPart, LibrarySplit, OWN_LAYER_BYTES, SplitRecord};
pub use walk::plan_layer;
pub use write::{WriteSettings, gzip_stored_layer, write_layer};

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
    #[error(
        "{path} embeds the library's install prefix {from} in binary strings, and the target {to} is longer"
    )]
    LongerPrefix {
        path: String,
        from: String,
        to: String,
    },
    #[error("{path} is {size} bytes, too large to relocate in memory (at most {max})")]
    TooLargeToRelocate { path: PathBuf, size: u64, max: u64 },
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
            LayerError::LongerPrefix { from, .. } => Some(format!(
                "a binary's strings keep their length, so a prefix can only get shorter: set the library's `target = \"{from}\"`, or install the library at a prefix at least as long as the target"
            )),
            LayerError::TooLargeToRelocate { .. } => Some(
                "set the library's `target` to the prefix it was installed at, or reinstall it there"
                    .into(),
            ),
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

/// One thing that goes into a layer: a folder (walked) or a single file.
#[derive(Debug)]
pub struct LayerRoot {
    pub source: PathBuf,
    pub target: String,
    pub owner: Owner,
    /// For a single file: the mode to give it instead of the one on disk.
    pub mode: Option<u32>,
}

/// What an entry is; link targets are in the plan's [`PathArena`].
#[derive(Debug, Clone, Copy)]
enum EntryKind {
    Dir,
    File { size: u64 },
    Symlink { target: Span },
    HardLink { to: Span },
}

/// One planned entry. A plan holds one per file of the tree for the whole
/// build, so it is kept small: it allocates nothing (its path is in the
/// plan's arena), and where the bytes are read from is derived from the
/// path and the shared source folder.
#[derive(Debug, Clone)]
struct Entry {
    path: Span,
    /// Index of its [`Origin`] in the plan's list: where it was found and whose it is.
    origin: u32,
    kind: EntryKind,
    mode: u32,
    /// A digest of what stat said, for the layer cache's fingerprint (8 bytes, not the 48 of the stat fields).
    stamp: StampDigest,
    /// A regular file with more than one link: a hard-link candidate, whose
    /// inode the walk keeps aside (few files have one).
    multi_linked: bool,
    /// An ancestor folder whose mode and owner are only the default guess,
    /// to be replaced by the base's own when the base has the folder.
    defaulted: bool,
    /// The library's install prefix is rewritten in this entry (see `relocate`).
    rewrite: Option<RewriteKind>,
}

/// What the entries found under one root (or one ancestor folder) share.
#[derive(Debug, Clone)]
struct Origin {
    /// The source folder (or single file) the entries were found under.
    source: Arc<Path>,
    /// Where an entry's path's part below `source` starts; at or past its end for `source` itself.
    rel_start: u32,
    owner: Owner,
}

/// An entry with its path and link target read from the plan's arena, as
/// writing, fingerprinting and relocation see it.
#[derive(Debug, Clone, Copy)]
struct EntryView<'a> {
    path: &'a [u8],
    kind: ViewKind<'a>,
    source: &'a Arc<Path>,
    rel_start: u32,
    mode: u32,
    owner: Owner,
    stamp: &'a StampDigest,
    rewrite: Option<RewriteKind>,
}

/// [`EntryKind`] with the link targets' bytes.
#[derive(Debug, Clone, Copy)]
enum ViewKind<'a> {
    Dir,
    File { size: u64 },
    Symlink { target: &'a [u8] },
    HardLink { to: &'a [u8] },
}

impl EntryView<'_> {
    /// Where the entry's bytes are read from (allocates: asked once per file written).
    fn disk(&self) -> PathBuf {
        disk_path(self.source, self.path, self.rel_start)
    }
}

/// Where the bytes of the entry at `path`, found under `source`, are read from.
fn disk_path(source: &Path, path: &[u8], rel_start: u32) -> PathBuf {
    match path.get(rel_start as usize..) {
        Some(rel) if !rel.is_empty() => source.join(OsStr::from_bytes(rel)),
        _ => source.to_path_buf(),
    }
}

/// What a layer holds in the image: decides its name, its history line, and
/// how the secret scan, the SBOM and the provenance treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerRole {
    /// A layer of the base image, taken as it is.
    Base,
    /// The app library (`[app] library`), split by package into one or more layers.
    Library,
    /// The spec's `[[files]]`, all in one layer.
    Files,
    /// The workspace (`[app] workspace`), left out with `--no-workspace`.
    Workspace,
}

impl LayerRole {
    /// The word a layer of this role is named by: its own name, or the
    /// start of a split library layer's (`library-1of3`). Part of the image:
    /// history lines name it.
    pub fn name(self) -> &'static str {
        match self {
            LayerRole::Base => "base",
            LayerRole::Library => "library",
            LayerRole::Files => "files",
            LayerRole::Workspace => "workspace",
        }
    }
}

/// The entries of one layer, sorted, checked and counted, before any byte is read.
#[derive(Debug)]
pub struct LayerPlan {
    /// The role's name, or for a split library layer `library-2of3`.
    pub name: String,
    pub role: LayerRole,
    pub sources: Vec<PathBuf>,
    /// Sorted by path bytes.
    entries: Vec<Entry>,
    /// The entries' paths and link targets, shared by the plans a split makes of one.
    paths: Arc<PathArena>,
    /// The entries' origins (by [`Entry::origin`]), shared likewise.
    origins: Arc<[Origin]>,
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
    /// A library layer's packages (or folders standing in for them); empty for other layers.
    pub parts: Vec<LayerPart>,
    /// The install prefix rewritten in the entries marked for it; None rewrites nothing.
    pub relocation: Option<Relocation>,
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
    /// Its blob came from the content cache: the layer was read and hashed, not compressed.
    pub reused: bool,
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

impl LayerPlan {
    /// Ancestor folders whose metadata is still the default guess.
    pub fn defaulted_ancestors(&self) -> impl Iterator<Item = &[u8]> {
        self.entries
            .iter()
            .filter(|e| e.defaulted)
            .map(|e| self.paths.get(e.path))
    }

    /// Entry `entry` with its bytes from the arena.
    fn view<'a>(&'a self, entry: &'a Entry) -> EntryView<'a> {
        let paths = &*self.paths;
        let origin = self.origin(entry);
        EntryView {
            path: paths.get(entry.path),
            kind: match entry.kind {
                EntryKind::Dir => ViewKind::Dir,
                EntryKind::File { size } => ViewKind::File { size },
                EntryKind::Symlink { target } => ViewKind::Symlink {
                    target: paths.get(target),
                },
                EntryKind::HardLink { to } => ViewKind::HardLink { to: paths.get(to) },
            },
            source: &origin.source,
            rel_start: origin.rel_start,
            mode: entry.mode,
            owner: origin.owner,
            stamp: &entry.stamp,
            rewrite: entry.rewrite,
        }
    }

    /// Where `entry` was found. The walk makes an entry's origin before the
    /// entry, and a split shares the list, so the index is always in it.
    fn origin(&self, entry: &Entry) -> &Origin {
        &self.origins[entry.origin as usize]
    }

    /// The index of the entry whose image path (without the leading `/`) is exactly `path`.
    pub fn find(&self, path: &[u8]) -> Option<usize> {
        self.entries
            .binary_search_by(|entry| self.paths.get(entry.path).cmp(path))
            .ok()
    }

    /// The key the inventory knows the entry at `path` by (see [`LayerPlan::walked_under`]).
    pub fn file_key(&self, path: &[u8]) -> Option<crate::inventory::FileKey> {
        let index = self.find(path)?;
        Some(self.entries[index].path.key())
    }

    /// The entries as written over `base`: a defaulted ancestor takes the
    /// base's mode and owner, and is left out where the base has something
    /// other than a folder. The plan itself never changes.
    fn entries_over<'a>(&'a self, base: &'a BaseFolders) -> impl Iterator<Item = EntryView<'a>> {
        self.entries.iter().filter_map(|entry| {
            let mut view = self.view(entry);
            if !entry.defaulted {
                return Some(view);
            }
            match base.get(view.path) {
                Some(BaseFolder::Dir { mode, owner }) => {
                    view.mode = *mode;
                    view.owner = *owner;
                    Some(view)
                }
                Some(BaseFolder::NotDir) => None,
                None => Some(view),
            }
        })
    }

    /// Entries of every kind the layer holds when written over `base`.
    pub fn entry_count_over(&self, base: &BaseFolders) -> u64 {
        let dropped = self
            .entries
            .iter()
            .filter(|e| {
                e.defaulted && base.get(self.paths.get(e.path)) == Some(&BaseFolder::NotDir)
            })
            .count() as u64;
        self.entry_count - dropped
    }
}

/// One entry of a planned layer, as the start check reads it.
#[derive(Debug, Clone)]
pub struct PlannedEntry<'a> {
    /// Its position among the layer's entries (for [`LayerPlan::planned_file`]).
    pub index: usize,
    /// The path in the image, without the leading `/`.
    pub path: &'a [u8],
    pub kind: PlannedKind<'a>,
    /// Permission bits as written into the tar header.
    pub mode: u32,
    pub owner: Owner,
    /// How relocation rewrites the file's bytes on their way into the layer.
    pub rewrite: Option<(RewriteKind, &'a Relocation)>,
}

/// What a planned entry is.
#[derive(Debug, Clone)]
pub enum PlannedKind<'a> {
    Dir,
    File,
    /// The link's target as written: relocated when it pointed into the old prefix.
    Symlink {
        target: Cow<'a, [u8]>,
    },
    /// A tar hard link to an earlier entry of the same layer (its image path).
    HardLink {
        to: &'a [u8],
    },
}

impl LayerPlan {
    /// The entries as the layer will hold them when written over `base` (the start check's view).
    pub fn planned_entries<'a>(
        &'a self,
        base: &'a BaseFolders,
    ) -> impl Iterator<Item = PlannedEntry<'a>> + 'a {
        (0..self.entries.len()).filter_map(move |index| self.planned_entry(index, base))
    }

    /// Entry `index` as written over `base`; None past the end, or for a
    /// defaulted folder the layer leaves out because the base has something
    /// other than a folder there.
    pub fn planned_entry<'a>(
        &'a self,
        index: usize,
        base: &'a BaseFolders,
    ) -> Option<PlannedEntry<'a>> {
        let entry = self.entries.get(index)?;
        let view = self.view(entry);
        // A defaulted folder takes the base's mode, which the check never looks at.
        if entry.defaulted && base.get(view.path) == Some(&BaseFolder::NotDir) {
            return None;
        }
        Some(PlannedEntry {
            index,
            path: view.path,
            kind: match view.kind {
                ViewKind::Dir => PlannedKind::Dir,
                ViewKind::File { .. } => PlannedKind::File,
                ViewKind::Symlink { target } => PlannedKind::Symlink {
                    target: match (entry.rewrite, &self.relocation) {
                        (Some(RewriteKind::Symlink), Some(relocation)) => {
                            relocate::link_target(target, relocation)
                                .map_or(Cow::Borrowed(target), Cow::Owned)
                        }
                        _ => Cow::Borrowed(target),
                    },
                },
                ViewKind::HardLink { to } => PlannedKind::HardLink { to },
            },
            mode: entry.mode,
            owner: view.owner,
            rewrite: entry.rewrite.zip(self.relocation.as_ref()),
        })
    }
}

impl LayerPlan {
    /// Where entry `index`'s bytes are read from, and how relocation rewrites them; None for a non-file.
    pub fn planned_file(
        &self,
        index: usize,
    ) -> Option<(PathBuf, Option<(RewriteKind, &Relocation)>)> {
        let entry = self.entries.get(index)?;
        match entry.kind {
            EntryKind::File { .. } => Some((
                self.view(entry).disk(),
                entry.rewrite.zip(self.relocation.as_ref()),
            )),
            _ => None,
        }
    }

    /// The size on disk of entry `index`, when it is a file (the content hint's view).
    pub fn file_size(&self, index: usize) -> Option<u64> {
        match self.entries.get(index)?.kind {
            EntryKind::File { size } => Some(size),
            _ => None,
        }
    }
}

/// A digest of the stat fields that change when a file's content or
/// metadata may have changed: what the layer cache's fingerprint hashes per entry.
type StampDigest = [u8; 8];

/// The stat fields that change when a file's content or metadata may have changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Stamp {
    size: u64,
    mtime: i64,
    ctime: i64,
    inode: u64,
    device: u64,
    mtime_nsec: u32,
    ctime_nsec: u32,
}

impl Stamp {
    fn of(stat: &stat::Stat) -> Stamp {
        Stamp {
            size: stat.size,
            mtime: stat.mtime,
            mtime_nsec: stat.mtime_nsec,
            ctime: stat.ctime,
            ctime_nsec: stat.ctime_nsec,
            inode: stat.inode,
            device: stat.device,
        }
    }

    /// The first 8 bytes of a SHA-256 of the fields and the entry's path in
    /// the image. The stamp only has to change when the file may have:
    /// stat's own facts (a second's mtime on some filesystems, an inode
    /// reused) are far coarser than a 2^-64 chance that a changed stamp
    /// keeps its digest. The fields go in as fixed-width little-endian
    /// words before the path, so no two stamps share an input. The path
    /// rides along because it costs no more hashing for most paths (the 56
    /// bytes already take two SHA-256 blocks, which hold a path of 63 more)
    /// and it makes the stamps of a listing stand for its paths too: the
    /// fingerprint need not hash them again, and the sum of a library's
    /// stamps keys its plan (`listing_digest`).
    fn digest_at(&self, path: &[u8]) -> StampDigest {
        use sha2::Digest as _;
        let mut words = [0u8; 56];
        let fields = [
            self.mtime,
            i64::from(self.mtime_nsec),
            self.ctime,
            i64::from(self.ctime_nsec),
        ];
        for (slot, field) in words.chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&field.to_le_bytes());
        }
        for (slot, field) in
            words[32..]
                .chunks_exact_mut(8)
                .zip([self.size, self.inode, self.device])
        {
            slot.copy_from_slice(&field.to_le_bytes());
        }
        let mut hasher = sha2::Sha256::new();
        hasher.update(words);
        hasher.update(path);
        let full = hasher.finalize();
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&full[..8]);
        digest
    }
}

/// Bumped whenever the bytes stowage writes for the same inputs change, so old cache entries stop matching.
pub const LAYER_FORMAT_VERSION: u32 = 6;

#[cfg(test)]
mod tests;
