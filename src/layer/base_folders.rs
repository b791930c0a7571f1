//! What the base has at the folders above the targets, remembered per base so a rebuild reads no base layer.
//!
//! Not for fetching: the caller makes sure the base's layers are in the
//! store (`cached` first, then fetch, then `read`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{BaseFolder, BaseFolders, LayerError, scan_base_folders};
use crate::digest::Digest;
use crate::image::Layer;
use crate::spec::Owner;
use crate::store::{Cache, Store};

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
