//! What the base has at the folders above the targets, remembered per base so a rebuild reads no base layer.
//!
//! Not for fetching: the caller makes sure the base's layers are in the
//! store (`cached` first, then fetch, then `read`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use std::io::{self, Read};

use super::{BaseFolder, BaseFolders, LayerError};
use crate::digest::Digest;
use crate::image::Layer;
use crate::spec::Owner;
use crate::store::{Cache, Store};
use crate::tar_read::TarReader;

/// One path's entry as the cache keeps it: a folder's mode and owner, or "not-dir".
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum FolderRecord {
    Dir { mode: u32, uid: u64, gid: u64 },
    NotDir(String),
}

/// The cache key: the base's digest and the paths asked about.
fn key(base_digest: &Digest, wanted: &BTreeSet<String>) -> Digest {
    let text = format!(
        "{}\n{}",
        base_digest,
        wanted.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    Digest::of(text.as_bytes())
}

/// The remembered answer for this base and these paths, if any (I/O: one small file).
pub fn cached(
    store: &Store,
    base_digest: &Digest,
    wanted: &BTreeSet<String>,
) -> Option<BaseFolders> {
    let record: BTreeMap<String, FolderRecord> =
        store.read_record(Cache::BaseFolders, &key(base_digest, wanted))?;
    record
        .into_iter()
        .map(|(path, folder)| {
            let folder = match folder {
                FolderRecord::Dir { mode, uid, gid } => BaseFolder::Dir {
                    mode,
                    owner: Owner { uid, gid },
                },
                FolderRecord::NotDir(tag) if tag == "not-dir" => BaseFolder::NotDir,
                FolderRecord::NotDir(_) => return None,
            };
            Some((path.into_bytes(), folder))
        })
        .collect()
}

/// Reads the base layers' tar headers from the store (I/O) and remembers the answer.
pub fn read(
    store: &Store,
    base_digest: &Digest,
    base_layers: &[Layer],
    wanted: &BTreeSet<String>,
) -> Result<BaseFolders, LayerError> {
    let paths = wanted.iter().map(|p| p.as_bytes().to_vec()).collect();
    let folders = scan_base_folders(store, base_layers, &paths)?;
    let record: BTreeMap<String, FolderRecord> = folders
        .iter()
        .map(|(path, folder)| {
            let value = match folder {
                BaseFolder::Dir { mode, owner } => FolderRecord::Dir {
                    mode: *mode,
                    uid: owner.uid,
                    gid: owner.gid,
                },
                BaseFolder::NotDir => FolderRecord::NotDir("not-dir".into()),
            };
            (String::from_utf8_lossy(path).into_owned(), value)
        })
        .collect();
    store.write_record(Cache::BaseFolders, &key(base_digest, wanted), &record);
    Ok(folders)
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
        let mut archive = open_layer_tar(store, layer)?;
        let mut this_layer = BaseFolders::new();
        let mut removed: Vec<(Vec<u8>, bool)> = Vec::new();
        while let Some(entry) = archive.next_entry().map_err(|e| read_err(e.into()))? {
            let path = normalize_member(&entry.name);
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
            let folder = if entry.is_dir() {
                BaseFolder::Dir {
                    mode: (entry.mode & 0o7777) as u32,
                    owner: Owner {
                        uid: entry.uid().map_err(read_err)?,
                        gid: entry.gid().map_err(read_err)?,
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

/// A stored base layer's tar, decompressed as its media type says (I/O: opens the blob).
pub fn open_layer_tar(
    store: &Store,
    layer: &Layer,
) -> Result<TarReader<Box<dyn Read>>, LayerError> {
    let digest = &layer.descriptor.digest;
    let file = io::BufReader::with_capacity(256 * 1024, store.open_blob(digest)?);
    let media_type = &layer.descriptor.media_type;
    let reader: Box<dyn Read> = if media_type.ends_with("gzip") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else if media_type.ends_with("zstd") {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(file).map_err(|source| {
                LayerError::BaseLayer {
                    digest: digest.clone(),
                    source,
                }
            })?,
        )
    } else {
        Box::new(file)
    };
    // Read as docker and skopeo read it: umoci, for one, leaves out the end blocks.
    Ok(TarReader::new(reader))
}

/// A tar member's name as a path in the image: no leading `./` or `/`, no trailing `/`; the root is empty.
pub fn normalize_member(raw: &[u8]) -> Vec<u8> {
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
