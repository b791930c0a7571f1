//! The base's side of the start check, from the store: its tree from the layers' tar headers, and the heads of its files.
//!
//! Both are remembered per base digest (`Cache::BaseFiles`), so a warm
//! rebuild opens no base layer. Not for fetching: the caller puts the base's
//! layers in the store before calling a `read_…` function.

use std::io::Read;

use super::CheckError;
use super::tree::{Change, Node, Source, Tree};
use crate::digest::Digest;
use crate::image::Layer;
use crate::layer::LayerError;
use crate::layer::base_folders::{normalize_member, open_layer_tar};
use crate::store::{Cache, Store};

/// Bumped when the record's shape or meaning changes, so old records stop matching.
const RECORD_VERSION: u32 = 2;

/// One path of the tree as the cache keeps it: `[path, kind, mode, uid, gid, link or member, layer]`,
/// where kind is `f` (file), `d` (folder) or `l` (symlink). Paths are kept as UTF-8 (lossy).
type NodeRecord = (String, char, u32, u64, u64, String, usize);

fn tree_key(base_digest: &Digest) -> Digest {
    Digest::of(format!("start-check tree {RECORD_VERSION}\n{base_digest}").as_bytes())
}

fn head_key(base_digest: &Digest, layer: usize, member: &str, limit: usize) -> Digest {
    let text =
        format!("start-check head {RECORD_VERSION}\n{base_digest}\n{layer}\n{member}\n{limit}");
    Digest::of(text.as_bytes())
}

/// The remembered tree of this base, if any (I/O: one file).
pub fn cached_base_tree(store: &Store, base_digest: &Digest) -> Option<Tree<'static>> {
    let record: Vec<NodeRecord> = store.read_record(Cache::BaseFiles, &tree_key(base_digest))?;
    record
        .into_iter()
        .map(|(path, kind, mode, uid, gid, link, layer)| {
            let node = match kind {
                'f' => Node::File {
                    mode,
                    uid,
                    gid,
                    source: Source::Base {
                        layer,
                        member: link,
                    },
                },
                'd' => Node::Dir,
                'l' => Node::Symlink {
                    target: link.into_bytes(),
                },
                _ => return None,
            };
            Some((path.into_bytes(), node))
        })
        .collect::<Option<Vec<_>>>()
        .map(Tree::from_nodes)
}

/// Reads the base layers' tar headers from the store (I/O) into one tree, and remembers it.
pub fn read_base_tree(
    store: &Store,
    base_digest: &Digest,
    layers: &[Layer],
) -> Result<Tree<'static>, CheckError> {
    let mut tree = Tree::default();
    for (index, layer) in layers.iter().enumerate() {
        let read_err = |source| LayerError::BaseLayer {
            digest: layer.descriptor.digest.clone(),
            source,
        };
        let mut archive = open_layer_tar(store, layer)?;
        let mut changes = Vec::new();
        while let Some(entry) = archive.next_entry().map_err(|e| read_err(e.into()))? {
            let path = normalize_member(&entry.name);
            let node = if entry.is_file() {
                Some(Node::File {
                    mode: (entry.mode & 0o7777) as u32,
                    uid: entry.uid().map_err(read_err)?,
                    gid: entry.gid().map_err(read_err)?,
                    source: Source::Base {
                        layer: index,
                        member: String::from_utf8_lossy(&path).into_owned(),
                    },
                })
            } else if entry.is_dir() {
                Some(Node::Dir)
            } else if entry.is_symlink() && !entry.link_name.is_empty() {
                Some(Node::Symlink {
                    target: entry.link_name.clone(),
                })
            } else {
                None
            };
            let link = (entry.is_hard_link() && !entry.link_name.is_empty())
                .then(|| normalize_member(&entry.link_name));
            changes.extend(Change::from_member(path, node, link));
        }
        tree.apply(changes);
    }
    let record: Vec<NodeRecord> = tree
        .nodes()
        .map(|(path, node)| {
            let path = String::from_utf8_lossy(path).into_owned();
            match node {
                Node::File {
                    mode,
                    uid,
                    gid,
                    source,
                } => {
                    let (layer, member) = match source {
                        Source::Base { layer, member } => (*layer, member.clone()),
                        Source::Added { .. } => (0, String::new()),
                    };
                    (path, 'f', *mode, *uid, *gid, member, layer)
                }
                Node::Dir => (path, 'd', 0, 0, 0, String::new(), 0),
                Node::Symlink { target } => {
                    let target = String::from_utf8_lossy(target).into_owned();
                    (path, 'l', 0, 0, 0, target, 0)
                }
            }
        })
        .collect();
    store.write_record(Cache::BaseFiles, &tree_key(base_digest), &record);
    Ok(tree)
}

/// The remembered head of a base file, if any (I/O: one small file).
pub fn cached_base_head(
    store: &Store,
    base_digest: &Digest,
    layer: usize,
    member: &str,
    limit: usize,
) -> Option<Vec<u8>> {
    store.read_record(
        Cache::BaseFiles,
        &head_key(base_digest, layer, member, limit),
    )
}

/// Up to `limit` bytes of `member` in the base's layer number `layer` (I/O:
/// decompresses that layer up to the member), remembered for the next build.
pub fn read_base_head(
    store: &Store,
    base_digest: &Digest,
    layers: &[Layer],
    layer: usize,
    member: &str,
    limit: usize,
) -> Result<Vec<u8>, CheckError> {
    let missing = || CheckError::Read {
        path: format!("/{member}"),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not in the base layer its tar header was read from",
        ),
    };
    let descriptor = layers.get(layer).ok_or_else(missing)?;
    let read_err = |source| LayerError::BaseLayer {
        digest: descriptor.descriptor.digest.clone(),
        source,
    };
    let mut archive = open_layer_tar(store, descriptor)?;
    while let Some(entry) = archive.next_entry().map_err(|e| read_err(e.into()))? {
        if normalize_member(&entry.name) != member.as_bytes() {
            continue;
        }
        let mut head = Vec::new();
        (&mut archive)
            .take(limit as u64)
            .read_to_end(&mut head)
            .map_err(read_err)?;
        store.write_record(
            Cache::BaseFiles,
            &head_key(base_digest, layer, member, limit),
            &head,
        );
        return Ok(head);
    }
    Err(missing())
}
