//! Finding the metadata among the walked paths, in one pass, and the shared reading context.
//!
//! The scan looks only at each path's last segment (and, for a match, its
//! parents) with byte comparisons, so a library of a million files costs a
//! million cheap checks and no allocation except for the matches kept.
//! The index of walked files borrows the caller's paths (24 bytes a file,
//! for the length of `Inventory::read`); packages keep only their files'
//! keys.

use std::path::Path;

use std::cell::Cell;
use std::ops::Range;

use super::{FileKey, InventoryError, WalkedTree};

/// The metadata locations the scan found, borrowed from the walked paths.
#[derive(Debug, Default)]
pub(super) struct Found<'a> {
    /// `*.dist-info` folders (from the folder itself or its `METADATA`).
    pub dist_infos: Vec<&'a str>,
    /// `*.egg-info` folders that hold a `PKG-INFO`.
    pub egg_info_dirs: Vec<&'a str>,
    /// `*.egg-info` files (PKG-INFO format).
    pub egg_info_files: Vec<&'a str>,
    /// `conda-meta/*.json` files.
    pub conda_records: Vec<&'a str>,
    /// Files named `DESCRIPTION` one folder down at least (R candidates).
    pub descriptions: Vec<&'a str>,
    /// `node_modules/<name>/package.json` and `node_modules/@scope/<name>/package.json`.
    pub npm_manifests: Vec<&'a str>,
    /// `share/jupyter/labextensions/[@scope/]<name>/package.json`.
    pub labextensions: Vec<&'a str>,
    /// `site-packages`, `dist-packages` and `node_modules` folders.
    pub package_folders: Vec<&'a str>,
    /// `pyvenv.cfg` sits at the root.
    pub pyvenv: bool,
}

/// The walked files under the root, for "what is under X", "is X there" and
/// "what is X's key": binary searches over the caller's own sorted list, so
/// the inventory keeps no copy of it.
#[derive(Clone)]
pub(super) struct FileIndex<'a> {
    tree: &'a dyn WalkedTree,
    /// Where the last `key_of` found its file: a RECORD or conda record
    /// lists a package's files mostly in path order, so the next one asked
    /// for is usually the next entry or close after it.
    cursor: Cell<usize>,
}

impl<'a> FileIndex<'a> {
    /// The first index whose path is not below `bound` (bytes order).
    fn first_not_below(&self, bound: &[u8]) -> usize {
        let (mut low, mut high) = (0, self.tree.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if self.tree.entry(mid).path < bound {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    /// Whether the walk found the file `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.key_of(path).is_some()
    }

    /// The caller's key of the walked file `path`.
    pub fn key_of(&self, path: &str) -> Option<FileKey> {
        let wanted = path.as_bytes();
        let len = self.tree.len();
        // The few entries after the last hit first (folders sit between a
        // package's files), then a binary search.
        let from = self.cursor.get();
        let near = (from..len.min(from + 4)).find(|&at| self.tree.entry(at).path == wanted);
        let at = near.unwrap_or_else(|| self.first_not_below(wanted));
        let entry = (at < len).then(|| self.tree.entry(at))?;
        if entry.path != wanted {
            return None;
        }
        self.cursor.set(at + 1);
        (!entry.is_dir).then_some(entry.key)
    }

    /// The indices of the walked entries under `folder` (every depth); all for the root (`""`).
    pub fn range_under(&self, folder: &str) -> Range<usize> {
        if folder.is_empty() {
            return 0..self.tree.len();
        }
        // Every path that starts with "folder/" sorts at or after "folder/"
        // and before "folder0" ('0' follows '/'), so they are one range.
        let start = self.first_not_below(format!("{folder}/").as_bytes());
        let end = self.first_not_below(format!("{folder}0").as_bytes());
        start..end.max(start)
    }

    /// The walked files under `folder` (every depth), sorted, with their keys; all files for the root (`""`).
    pub fn under(&self, folder: &str) -> impl Iterator<Item = (&'a str, FileKey)> + use<'a> {
        let tree = self.tree;
        self.range_under(folder)
            .filter_map(move |at| file_at(tree, at))
    }

    /// The walked files whose name (last segment) `wanted` accepts, by its
    /// bytes: the rest of a million paths are not decoded.
    pub fn named<F: Fn(&[u8]) -> bool>(
        &self,
        wanted: F,
    ) -> impl Iterator<Item = &'a str> + use<'a, F> {
        let tree = self.tree;
        (0..tree.len()).filter_map(move |at| {
            let entry = tree.entry(at);
            (!entry.is_dir && wanted(last_segment(entry.path))).then_some(())?;
            std::str::from_utf8(entry.path).ok()
        })
    }

    /// The keys of the walked files under `folder`.
    pub fn keys_under(&self, folder: &str) -> impl Iterator<Item = FileKey> + use<'a> {
        self.under(folder).map(|(_, key)| key)
    }

    /// The walked files at indices `range`, with their index.
    pub fn files_in(
        &self,
        range: Range<usize>,
    ) -> impl Iterator<Item = (usize, &'a str, FileKey)> + use<'a> {
        let tree = self.tree;
        range.filter_map(move |at| file_at(tree, at).map(|(path, key)| (at, path, key)))
    }
}

/// The file (not folder) at index `at` of `tree`, when its path is UTF-8.
fn file_at(tree: &dyn WalkedTree, at: usize) -> Option<(&str, FileKey)> {
    let entry = tree.entry(at);
    if entry.is_dir {
        return None;
    }
    Some((std::str::from_utf8(entry.path).ok()?, entry.key))
}

/// Goes once over the walked paths: the metadata locations, and the index over them.
pub(super) fn scan(tree: &dyn WalkedTree) -> (Found<'_>, FileIndex<'_>) {
    let mut found = Found::default();
    for at in 0..tree.len() {
        let walked = tree.entry(at);
        if !may_be_metadata(walked.path, walked.is_dir) {
            continue;
        }
        // Metadata has UTF-8 names; a path that is not is no package's file either.
        let Ok(path) = std::str::from_utf8(walked.path) else {
            continue;
        };
        let (parent, name) = split_last(path);
        if walked.is_dir {
            match name {
                "site-packages" | "dist-packages" | "node_modules" => {
                    found.package_folders.push(path)
                }
                _ if name.ends_with(".dist-info") && !in_dist_info(parent) => {
                    found.dist_infos.push(path)
                }
                _ => {}
            }
            continue;
        }
        match name {
            "METADATA" if parent.ends_with(".dist-info") && !in_dist_info(split_last(parent).0) => {
                found.dist_infos.push(parent);
            }
            "PKG-INFO" if parent.ends_with(".egg-info") => found.egg_info_dirs.push(parent),
            "DESCRIPTION" if !parent.is_empty() => found.descriptions.push(path),
            "package.json" => classify_package_json(path, parent, &mut found),
            "pyvenv.cfg" if parent.is_empty() => found.pyvenv = true,
            _ if name.ends_with(".json") && split_last(parent).1 == "conda-meta" => {
                found.conda_records.push(path);
            }
            _ if name.ends_with(".egg-info") => found.egg_info_files.push(path),
            _ => {}
        }
    }
    for list in [
        &mut found.dist_infos,
        &mut found.egg_info_dirs,
        &mut found.package_folders,
    ] {
        list.sort_unstable();
        list.dedup();
    }
    let index = FileIndex {
        tree,
        cursor: Cell::new(0),
    };
    (found, index)
}

/// `a/b/c` → `c`, on bytes.
fn last_segment(path: &[u8]) -> &[u8] {
    match memchr::memrchr(b'/', path) {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

/// Whether the last segment of `path` could name metadata `scan` looks for,
/// by its bytes alone: most paths are neither, and are not decoded.
fn may_be_metadata(path: &[u8], is_dir: bool) -> bool {
    let name = last_segment(path);
    if is_dir {
        return matches!(name, b"site-packages" | b"dist-packages" | b"node_modules")
            || name.ends_with(b".dist-info");
    }
    matches!(
        name,
        b"METADATA" | b"PKG-INFO" | b"DESCRIPTION" | b"pyvenv.cfg"
    ) || name.ends_with(b".json")
        || name.ends_with(b".egg-info")
}

/// A `package.json` is an npm package's manifest one level under `node_modules`
/// (two with a scope), or a prebuilt JupyterLab extension's under `labextensions`.
fn classify_package_json<'a>(path: &'a str, parent: &str, found: &mut Found<'a>) {
    let (up, name) = split_last(parent);
    if name.is_empty() || name.starts_with(['.', '@']) {
        return;
    }
    let (up, container) = if let Some(scope) = split_last(up).1.strip_prefix('@') {
        if scope.is_empty() {
            return;
        }
        split_last(split_last(up).0)
    } else {
        split_last(up)
    };
    if container == "node_modules" {
        found.npm_manifests.push(path);
    } else if container == "labextensions"
        && (up == "share/jupyter" || up.ends_with("/share/jupyter"))
    {
        found.labextensions.push(path);
    }
}

/// Whether `folder` is or lies in a dist-info: a wheel's `licenses/` may hold
/// copies of vendored projects' dist-info folders, which are not installs.
fn in_dist_info(folder: &str) -> bool {
    folder.ends_with(".dist-info") || folder.contains(".dist-info/")
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
pub(super) fn split_last(path: &str) -> (&str, &str) {
    match memchr::memrchr(b'/', path.as_bytes()) {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => ("", path),
    }
}

/// `rel` (as a RECORD or file list writes it) taken from `base`, both relative
/// to the root: `.` and `..` resolved, `/`-joined. `None` when it leaves the
/// root or is absolute.
pub(super) fn normalise(base: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') || rel.is_empty() {
        return None;
    }
    // Most rows are plain (`six.py`, `pkg/mod.py`): one allocation, no split.
    if is_plain(base) && is_plain(rel) {
        return Some(if base.is_empty() {
            rel.to_owned()
        } else {
            format!("{base}/{rel}")
        });
    }
    let mut parts: Vec<&str> = base
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// A relative path with no empty, `.` or `..` segment (and no leading or trailing `/`).
fn is_plain(path: &str) -> bool {
    !path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains("//")
        && path.split('/').all(|part| part != "." && part != "..")
}

/// What every reader shares: the root to read from, the walked files, and the warnings so far.
pub(super) struct ReadState<'a> {
    pub root: &'a Path,
    pub files: FileIndex<'a>,
    pub warnings: Vec<String>,
}

impl<'a> ReadState<'a> {
    /// A context for another thread: the same root and walk, its own
    /// search cursor and warnings (appended to this one's in order after).
    pub fn fork(&self) -> ReadState<'a> {
        ReadState {
            root: self.root,
            files: self.files.clone(),
            warnings: Vec::new(),
        }
    }

    /// Reads one metadata file, relative to the root; `None` (with a warning)
    /// when it is a symlink. The walk does not follow symlinks, and neither
    /// does the inventory: its target may lie outside the library, and is
    /// not what the layer will hold.
    pub fn read_metadata(&mut self, rel: &str) -> Result<Option<Vec<u8>>, InventoryError> {
        let path = self.root.join(rel);
        match read_no_follow(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if is_symlink_refusal(&error) => {
                self.warn(rel, "a symlink; not followed");
                Ok(None)
            }
            Err(source) => Err(InventoryError::Read { path, source }),
        }
    }

    /// Reads at most `max` bytes from the start of `rel`; `None`, silently,
    /// for a symlink (a venv's `bin/python` points into the base image).
    pub fn read_head(&mut self, rel: &str, max: usize) -> Result<Option<Vec<u8>>, InventoryError> {
        let path = self.root.join(rel);
        match read_head_no_follow(&path, max) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if is_symlink_refusal(&error) => Ok(None),
            Err(source) => Err(InventoryError::Read { path, source }),
        }
    }

    /// Reads `rel` when the walk found it (`None` when it did not, or for a symlink).
    pub fn read_if_walked(&mut self, rel: &str) -> Result<Option<Vec<u8>>, InventoryError> {
        if self.files.contains(rel) {
            self.read_metadata(rel)
        } else {
            Ok(None)
        }
    }

    /// Reads one metadata file as text (`None` for a symlink). Bytes that
    /// are not UTF-8 (old distutils wrote Latin-1 descriptions) become U+FFFD
    /// with a warning, rather than losing the package: the fields stowage
    /// needs are ASCII.
    pub fn read_text(&mut self, rel: &str) -> Result<Option<String>, InventoryError> {
        let Some(bytes) = self.read_metadata(rel)? else {
            return Ok(None);
        };
        Ok(Some(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => {
                self.warn(rel, "not UTF-8; read with replacement characters");
                String::from_utf8_lossy(error.as_bytes()).into_owned()
            }
        }))
    }

    /// Records that the metadata at `path` was skipped, and why.
    pub fn warn(&mut self, path: &str, what: impl std::fmt::Display) {
        self.warnings.push(format!("{path}: {what}"));
    }
}

/// Reads a file, refusing (ELOOP) when its last component is a symlink.
#[cfg(unix)]
pub(super) fn read_no_follow(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The first `max` bytes of a file, refusing (ELOOP) when its last component is a symlink.
#[cfg(unix)]
fn read_head_no_follow(path: &Path, max: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    file.take(max as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(not(unix))]
fn read_head_no_follow(path: &Path, max: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = read_no_follow(path)?;
    bytes.truncate(max);
    Ok(bytes)
}

#[cfg(not(unix))]
pub(super) fn read_no_follow(path: &Path) -> std::io::Result<Vec<u8>> {
    if std::fs::symlink_metadata(path)?.is_symlink() {
        return Err(std::io::Error::other("a symlink"));
    }
    std::fs::read(path)
}

#[cfg(unix)]
fn is_symlink_refusal(error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(libc::ELOOP)
}

#[cfg(not(unix))]
fn is_symlink_refusal(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::WalkedPath;

    /// `list` keyed by position, sorted by path bytes as a walk gives it.
    fn sorted(list: &[(&'static str, bool)]) -> Vec<WalkedPath<'static>> {
        let mut paths: Vec<WalkedPath<'static>> = list
            .iter()
            .zip(0..)
            .map(|(&(path, is_dir), key)| WalkedPath {
                path: path.as_bytes(),
                is_dir,
                key,
            })
            .collect();
        paths.sort_by(|a, b| a.path.cmp(b.path));
        paths
    }

    #[test]
    fn normalise_resolves_parents_and_refuses_escapes() {
        let base = "lib/python3.11/site-packages";
        assert_eq!(
            normalise(base, "six.py").as_deref(),
            Some("lib/python3.11/site-packages/six.py")
        );
        assert_eq!(
            normalise(base, "../../../bin/jupyter-lab").as_deref(),
            Some("bin/jupyter-lab")
        );
        assert_eq!(normalise(base, "../../../../etc/passwd"), None);
        assert_eq!(normalise(base, "/usr/bin/x"), None);
        assert_eq!(normalise("", "./a//b"), Some("a/b".to_owned()));
        // The plain fast path gives what the general one would.
        assert_eq!(normalise("", "a/b").as_deref(), Some("a/b"));
        assert_eq!(
            normalise(base, "pkg/mod.py").as_deref(),
            Some("lib/python3.11/site-packages/pkg/mod.py")
        );
        assert_eq!(
            normalise(base, "pkg/").as_deref(),
            Some("lib/python3.11/site-packages/pkg")
        );
        assert_eq!(normalise("a/./b", "c").as_deref(), Some("a/b/c"));
    }

    #[test]
    fn under_is_the_folder_range_only() {
        let tree = sorted(&[
            ("a/b", false),
            ("a.b", false),
            ("a/c/d", false),
            ("ab", false),
            ("a", true),
            ("a/c", true),
            ("a0", false),
        ]);
        let (_, index) = scan(&tree);
        let under: Vec<_> = index.under("a").collect();
        assert_eq!(under, [("a/b", 0), ("a/c/d", 2)]);
        assert_eq!(index.key_of("a.b"), Some(1));
        assert!(index.contains("a.b"));
        assert!(!index.contains("a"));
        assert!(!index.contains("a/c"), "a folder is not a file");
        // In any order, near the last hit or far from it.
        for (path, key) in [
            ("ab", 3),
            ("a/b", 0),
            ("a/c/d", 2),
            ("a0", 6),
            ("a.b", 1),
            ("a/b", 0),
        ] {
            assert_eq!(index.key_of(path), Some(key), "{path}");
        }
        assert_eq!(index.key_of("a/c/e"), None);
        assert_eq!(index.under("").count(), 5);
        assert_eq!(index.under("zz").count(), 0);
    }

    #[test]
    fn scan_classifies_metadata() {
        let tree = sorted(&[
            ("pyvenv.cfg", false),
            ("lib/python3.11/site-packages", true),
            ("lib/python3.11/site-packages/six-1.dist-info", true),
            (
                "lib/python3.11/site-packages/six-1.dist-info/METADATA",
                false,
            ),
            ("x.egg-info", false),
            ("src/y.egg-info/PKG-INFO", false),
            ("conda-meta/zlib-1.3-h0.json", false),
            ("conda-meta/history", false),
            ("node_modules", true),
            ("node_modules/a/package.json", false),
            ("node_modules/a/lib/package.json", false),
            ("node_modules/@s/b/package.json", false),
            ("node_modules/.bin/package.json", false),
            ("node_modules/@s/package.json", false),
            ("node_modules/a/@x/lib/package.json", false),
            ("share/jupyter/labextensions/@j/ext/package.json", false),
            ("etc/jupyter/labextensions/other/package.json", false),
            ("R/lib/foo/DESCRIPTION", false),
        ]);
        let (found, _) = scan(&tree);
        assert!(found.pyvenv);
        assert_eq!(
            found.dist_infos,
            ["lib/python3.11/site-packages/six-1.dist-info"]
        );
        assert_eq!(found.egg_info_files, ["x.egg-info"]);
        assert_eq!(found.egg_info_dirs, ["src/y.egg-info"]);
        assert_eq!(found.conda_records, ["conda-meta/zlib-1.3-h0.json"]);
        assert_eq!(
            found.npm_manifests,
            [
                "node_modules/@s/b/package.json",
                "node_modules/a/package.json"
            ]
        );
        assert_eq!(
            found.labextensions,
            ["share/jupyter/labextensions/@j/ext/package.json"]
        );
        assert_eq!(
            found.package_folders,
            ["lib/python3.11/site-packages", "node_modules"]
        );
        assert_eq!(found.descriptions, ["R/lib/foo/DESCRIPTION"]);
    }
}
