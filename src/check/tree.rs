//! The image's filesystem as one tree of paths: layers applied in order, whiteouts honoured, symlinks followed.
//!
//! Pure: it holds tar-header facts (kind, mode, owner, link target, where
//! a file's bytes are) and never reads a file's content.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::layer::{BaseFolders, LayerPlan, PlannedKind};

/// How many symlinks one lookup follows before it gives up, as Linux does (`ELOOP`).
const MAX_SYMLINKS: usize = 40;

/// Where a file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A member of the base's layer number `layer` (0 is the bottom).
    Base { layer: usize, member: String },
    /// Entry `entry` of the build's added layer `layer`: its bytes come from
    /// the source as that layer writes them (relocated where it rewrites).
    Added { layer: usize, entry: usize },
}

/// What a path is in the finished image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Node {
    File {
        mode: u32,
        uid: u64,
        gid: u64,
        source: Source,
    },
    Dir,
    Symlink {
        target: Vec<u8>,
    },
}

/// One entry of a layer as the tree applies it; paths have no leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put {
        path: Vec<u8>,
        node: Node,
    },
    /// A hard link: the same file as `to`, an earlier path.
    Link {
        path: Vec<u8>,
        to: Vec<u8>,
    },
    /// `.wh.NAME`: `path` and all beneath it are gone from the layers below.
    Whiteout {
        path: Vec<u8>,
    },
    /// `.wh..wh..opq`: what the layers below had beneath `path` is gone.
    Opaque {
        path: Vec<u8>,
    },
}

impl Change {
    /// The change a tar member makes: its name (normalised) and what the header says it is.
    pub fn from_member(path: Vec<u8>, node: Option<Node>, link: Option<Vec<u8>>) -> Option<Change> {
        let (parent, name) = match path.iter().rposition(|b| *b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&path[..0], &path[..]),
        };
        if name == b".wh..wh..opq" {
            return Some(Change::Opaque {
                path: parent.to_vec(),
            });
        }
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            return Some(Change::Whiteout {
                path: join(parent, hidden),
            });
        }
        match (node, link) {
            (_, Some(to)) => Some(Change::Link { path, to }),
            (Some(node), None) => Some(Change::Put { path, node }),
            (None, None) => None,
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A regular file, at this path once every symlink is followed.
    File {
        path: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
        source: Source,
    },
    /// A folder (listed, or implied by paths beneath it).
    Dir,
}

/// Why a lookup found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Missing,
    /// More than 40 symlinks on the way.
    Loop,
}

/// Every path of the image, after all layers so far: the base's layers, as
/// the check keeps them. A build's added layers are looked up in their plans
/// instead (`Stack`); the tests apply them here too, borrowing their paths
/// (`'p`), as the model the lazy lookups must agree with.
#[derive(Debug, Clone, Default)]
pub struct Tree<'p> {
    nodes: BTreeMap<Cow<'p, [u8]>, Node>,
    /// Every path a symlink was put at (some may since be gone): a folder
    /// with none of these above it is where it says, with no walk needed.
    symlinks: HashSet<Vec<u8>>,
}

impl PartialEq for Tree<'_> {
    fn eq(&self, other: &Tree<'_>) -> bool {
        self.nodes == other.nodes
    }
}

impl Eq for Tree<'_> {}

/// A layer's entry as the tree puts it: like [`Change`], with a path that may be borrowed.
enum Put<'p> {
    Node {
        path: Cow<'p, [u8]>,
        node: Node,
    },
    Link {
        path: Cow<'p, [u8]>,
        to: Cow<'p, [u8]>,
    },
}

impl<'p> Tree<'p> {
    /// Applies one layer over the tree: its whiteouts hide what the layers
    /// below made (not what it makes itself), then its entries go in, in order.
    pub fn apply(&mut self, layer: impl IntoIterator<Item = Change>) {
        let mut below = std::mem::take(&mut self.nodes);
        let mut entries = Vec::new();
        for change in layer {
            match change {
                Change::Whiteout { path } => {
                    remove_beneath(&mut below, &path);
                    below.remove(path.as_slice());
                }
                Change::Opaque { path } => remove_beneath(&mut below, &path),
                Change::Put { path, node } => entries.push(Put::Node {
                    path: Cow::Owned(path),
                    node,
                }),
                Change::Link { path, to } => entries.push(Put::Link {
                    path: Cow::Owned(path),
                    to: Cow::Owned(to),
                }),
            }
        }
        self.nodes = below;
        self.put_all(entries);
    }

    /// Puts a layer's entries (no whiteouts among them) into the tree, in order.
    fn put_all(&mut self, entries: impl IntoIterator<Item = Put<'p>>) {
        let mut memo = None;
        for change in entries {
            match change {
                Put::Node { path, node } => {
                    let path = self.placed(path, &mut memo);
                    if matches!(node, Node::Symlink { .. }) {
                        memo = None;
                        self.symlinks.insert(path.to_vec());
                    }
                    // A non-folder replaces a folder together with all beneath it.
                    if node != Node::Dir {
                        remove_beneath(&mut self.nodes, &path);
                    }
                    self.nodes.insert(path, node);
                }
                Put::Link { path, to } => {
                    let path = self.placed(path, &mut memo);
                    let to = self.placed(to, &mut None);
                    if let Some(node @ Node::File { .. }) = self.nodes.get(&*to).cloned() {
                        self.nodes.insert(path, node);
                    }
                }
            }
        }
    }

    /// Applies added layer number `index` as it will be written over the
    /// base. stowage never writes whiteouts, so its entries go straight in.
    /// The build looks added layers up lazily (`Stack`); this eager copy is
    /// the model the tests hold `Stack` to.
    #[cfg(test)]
    pub fn apply_plan(&mut self, index: usize, layer: &'p LayerPlan, base: &'p BaseFolders) {
        let changes = layer.planned_entries(base).map(|entry| {
            let path = Cow::Borrowed(entry.path);
            match entry.kind {
                PlannedKind::Dir => Put::Node {
                    path,
                    node: Node::Dir,
                },
                PlannedKind::File => Put::Node {
                    path,
                    node: Node::File {
                        mode: entry.mode,
                        uid: entry.owner.uid,
                        gid: entry.owner.gid,
                        source: Source::Added {
                            layer: index,
                            entry: entry.index,
                        },
                    },
                },
                PlannedKind::Symlink { target } => Put::Node {
                    path,
                    node: Node::Symlink {
                        target: target.into_owned(),
                    },
                },
                PlannedKind::HardLink { to } => Put::Link {
                    path,
                    to: Cow::Borrowed(to),
                },
            }
        });
        self.put_all(changes);
    }

    /// Number of paths in the tree.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree holds no path at all (scratch).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every path and what it is, sorted (for the cache record).
    pub fn nodes(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.nodes.iter().map(|(path, node)| (&**path, node))
    }

    /// The tree of these nodes, as a cache record gives them back.
    pub fn from_nodes(nodes: impl IntoIterator<Item = (Vec<u8>, Node)>) -> Tree<'p> {
        let nodes: BTreeMap<Cow<'p, [u8]>, Node> = nodes
            .into_iter()
            .map(|(path, node)| (Cow::Owned(path), node))
            .collect();
        let symlinks = nodes
            .iter()
            .filter(|(_, node)| matches!(node, Node::Symlink { .. }))
            .map(|(path, _)| path.to_vec())
            .collect();
        Tree { nodes, symlinks }
    }

    /// Whether `folder` or a folder above it was ever a symlink (cheap: no walk, no allocation).
    fn may_cross_symlink(&self, folder: &[u8]) -> bool {
        if self.symlinks.is_empty() {
            return false;
        }
        folder
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| &folder[..i])
            .chain(std::iter::once(folder))
            .any(|prefix| self.symlinks.contains(prefix))
    }

    /// Where an entry lands when it is unpacked: a symlink among its parents
    /// is followed inside the image, as containerd and podman unpack layers.
    fn placed(&self, path: Cow<'p, [u8]>, memo: &mut Option<(Vec<u8>, Vec<u8>)>) -> Cow<'p, [u8]> {
        let Some(i) = path.iter().rposition(|b| *b == b'/') else {
            return path;
        };
        let (parent, name) = (&path[..i], &path[i + 1..]);
        if let Some((asked, real)) = memo.as_ref()
            && asked == parent
        {
            // Most folders are no symlink's: the path stays as it is.
            return if real == parent {
                path
            } else {
                Cow::Owned(join(real, name))
            };
        }
        let real = if self.may_cross_symlink(parent) {
            self.walk(parent).unwrap_or_else(|_| parent.to_vec())
        } else {
            parent.to_vec()
        };
        let moved = (real != parent).then(|| join(&real, name));
        *memo = Some((parent.to_vec(), real));
        moved.map_or(path, Cow::Owned)
    }
}

/// An image's filesystem as the check asks it: what is at a path, and
/// whether a folder is implied by paths beneath it; symlinks are followed
/// on top of these two.
pub trait Filesystem {
    /// What is at `key` (no leading `/`, no symlink followed), if anything.
    fn node(&self, key: &[u8]) -> Option<Cow<'_, Node>>;

    /// Whether some path lies beneath `folder` (a folder a tar implies without listing it).
    fn has_beneath(&self, folder: &[u8]) -> bool;

    /// What an absolute (or root-relative) path leads to, following symlinks
    /// inside the image the way the kernel does: `..` stops at the root, an
    /// absolute target starts again from the root.
    fn resolve(&self, path: &[u8]) -> Result<Found, Lookup> {
        let key = self.walk(path)?;
        match self.node(&key).map(Cow::into_owned) {
            Some(Node::File {
                mode,
                uid,
                gid,
                source,
            }) => Ok(Found::File {
                path: key,
                mode,
                uid,
                gid,
                source,
            }),
            _ => Ok(Found::Dir),
        }
    }

    /// The path with every symlink on it followed; each part must exist.
    fn walk(&self, path: &[u8]) -> Result<Vec<u8>, Lookup> {
        walk_noting(self, path, None)
    }

    /// Where each symlink a lookup of `path` follows leads: the whole path
    /// after that link, absolute, up to where the lookup stops. What names
    /// the chain when a path that is in the image leads to one that is not.
    fn links_followed(&self, path: &[u8]) -> Vec<String> {
        let mut led_to = Vec::new();
        let _ = walk_noting(self, path, Some(&mut led_to));
        led_to
    }
}

/// [`Filesystem::walk`], noting in `led_to` the path each symlink leads to.
fn walk_noting<F: Filesystem + ?Sized>(
    fs: &F,
    path: &[u8],
    mut led_to: Option<&mut Vec<String>>,
) -> Result<Vec<u8>, Lookup> {
    let mut pending: Vec<Vec<u8>> = components(path).rev().collect();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut followed = 0;
    while let Some(part) = pending.pop() {
        if part == b".." {
            current.pop();
            continue;
        }
        current.push(part);
        let key = current.join(&b'/');
        match fs.node(&key).as_deref() {
            Some(Node::Symlink { target }) => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(Lookup::Loop);
                }
                current.pop();
                if target.starts_with(b"/") {
                    current.clear();
                }
                pending.extend(components(target).rev());
                if let Some(led_to) = led_to.as_deref_mut() {
                    led_to.push(shown_path(&current, &pending));
                }
            }
            Some(Node::File { .. }) if !pending.is_empty() => return Err(Lookup::Missing),
            Some(_) => {}
            None if !fs.has_beneath(&key) => return Err(Lookup::Missing),
            None => {}
        }
    }
    Ok(current.join(&b'/'))
}

/// `/` + the resolved folders + the parts still to walk (last first), with
/// `..` taken off lexically: how a user reads where a link leads.
fn shown_path(current: &[Vec<u8>], pending: &[Vec<u8>]) -> String {
    let mut parts: Vec<&[u8]> = current.iter().map(Vec::as_slice).collect();
    for part in pending.iter().rev() {
        if part == b".." {
            parts.pop();
        } else {
            parts.push(part);
        }
    }
    format!("/{}", String::from_utf8_lossy(&parts.join(&b'/')))
}

impl Filesystem for Tree<'_> {
    fn node(&self, key: &[u8]) -> Option<Cow<'_, Node>> {
        self.nodes.get(key).map(Cow::Borrowed)
    }

    fn has_beneath(&self, folder: &[u8]) -> bool {
        let prefix = join(folder, b"");
        self.nodes
            .range::<[u8], _>((Bound::Included(prefix.as_slice()), Bound::Unbounded))
            .next()
            .is_some_and(|(path, _)| path.starts_with(&prefix))
    }
}

/// The non-empty, non-`.` components of a path.
fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = Vec<u8>> + '_ {
    path.split(|b| *b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .map(<[u8]>::to_vec)
}

/// `parent/name`, or `name` at the root.
fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = parent.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// Removes every path strictly beneath `folder` (everything, for the root).
fn remove_beneath(nodes: &mut BTreeMap<Cow<'_, [u8]>, Node>, folder: &[u8]) {
    if folder.is_empty() {
        nodes.clear();
        return;
    }
    if !has_beneath(nodes, folder) {
        return;
    }
    let prefix = join(folder, b"");
    let doomed: Vec<Vec<u8>> = nodes
        .range::<[u8], _>((Bound::Included(prefix.as_slice()), Bound::Unbounded))
        .take_while(|(path, _)| path.starts_with(&prefix))
        .map(|(path, _)| path.to_vec())
        .collect();
    for path in doomed {
        nodes.remove(path.as_slice());
    }
}

/// Whether any path lies beneath `folder`, without allocating: keys that
/// start with `folder` and a byte below `/` (`a-b` after `a`) sort before
/// `folder/…` and are skipped.
fn has_beneath(nodes: &BTreeMap<Cow<'_, [u8]>, Node>, folder: &[u8]) -> bool {
    let after = nodes.range::<[u8], _>((Bound::Excluded(folder), Bound::Unbounded));
    for (path, _) in after {
        let Some(rest) = path.strip_prefix(folder) else {
            return false;
        };
        match rest.first() {
            Some(b'/') => return true,
            Some(byte) if *byte < b'/' => continue,
            _ => return false,
        }
    }
    false
}
