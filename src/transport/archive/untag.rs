//! Removing tags from an OCI layout folder: the tags' entries leave `index.json`, and the blobs only they reached leave `blobs/`.
//!
//! A layout folder is shared: other tags, other exports, other tools' images.
//! So the folder itself is never removed, and a blob goes only when no
//! remaining entry of the index reaches it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

use serde_json::Value;

use super::read::read_small_file;
use super::{ArchiveError, REF_NAME, write_atomic};
use crate::atomic;
use crate::digest::Digest;
use crate::image::{self, canonical_json};

/// What removing tags from a layout did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Untagged {
    /// The tags whose entries left index.json.
    pub tags: Vec<String>,
    /// Blobs removed because no remaining entry reached them.
    pub blobs: usize,
    pub bytes: u64,
}

/// Every tag of the layout `dir` with the digest its entry names (I/O: reads index.json).
pub fn layout_tags(dir: &Path) -> Result<BTreeMap<String, Digest>, ArchiveError> {
    let index = read_index(dir)?;
    Ok(entries(&index)
        .filter_map(|entry| Some((tag_of(entry)?.to_string(), digest_of(entry)?)))
        .collect())
}

/// Removes the entries tagged `tags` that name `digest` from the layout `dir`, then the blobs no other entry reaches (I/O).
///
/// A tag that now names another digest was written again since, by someone
/// else, and stays. The folder is locked for the whole change, as writers
/// lock it; index.json is replaced first, so a crash between the two steps
/// leaves unreferenced blobs, never an index naming missing ones.
pub fn remove_layout_tags(
    dir: &Path,
    tags: &[String],
    digest: &Digest,
) -> Result<Untagged, ArchiveError> {
    let write_err = |path: &Path, source| ArchiveError::Write {
        path: path.to_path_buf(),
        source,
    };
    let _lock = atomic::lock_folder(dir).map_err(|e| write_err(dir, e))?;
    let mut index = read_index(dir)?;
    let goes = |entry: &Value| {
        tag_of(entry).is_some_and(|t| tags.iter().any(|wanted| wanted == t))
            && digest_of(entry).as_ref() == Some(digest)
    };
    let (removed, kept): (Vec<Value>, Vec<Value>) = entries(&index).cloned().partition(goes);
    if removed.is_empty() {
        return Ok(Untagged::default());
    }
    let blob_dir = dir.join("blobs").join("sha256");
    let reached_by_removed = reachable(&blob_dir, &removed);
    let reached_by_kept = reachable(&blob_dir, &kept);
    let mut untagged = Untagged {
        tags: removed
            .iter()
            .filter_map(tag_of)
            .map(str::to_string)
            .collect(),
        ..Untagged::default()
    };
    if let Some(manifests) = index.get_mut("manifests") {
        *manifests = Value::Array(kept);
    }
    write_atomic(&dir.join("index.json"), &canonical_json(&index))?;
    for digest in reached_by_removed.difference(&reached_by_kept) {
        let path = blob_dir.join(digest.hex());
        let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(&path) {
            Ok(()) => {
                untagged.blobs += 1;
                untagged.bytes += size;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(write_err(&path, e)),
        }
    }
    Ok(untagged)
}

fn read_index(dir: &Path) -> Result<Value, ArchiveError> {
    let path = dir.join("index.json");
    let raw = read_small_file(&path)?;
    let index: Value = serde_json::from_slice(&raw).map_err(|e| ArchiveError::Invalid {
        path: path.clone(),
        kind: "OCI index",
        problem: e.to_string(),
    })?;
    if !index.get("manifests").is_some_and(Value::is_array) {
        return Err(ArchiveError::Invalid {
            path,
            kind: "OCI index",
            problem: "it has no manifests list".into(),
        });
    }
    Ok(index)
}

fn entries(index: &Value) -> impl Iterator<Item = &Value> {
    index
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn tag_of(entry: &Value) -> Option<&str> {
    entry
        .get("annotations")
        .and_then(|a| a.get(REF_NAME))
        .and_then(Value::as_str)
}

fn digest_of(entry: &Value) -> Option<Digest> {
    entry.get("digest")?.as_str()?.parse().ok()
}

/// Every blob the descriptors reach: themselves, and through manifests and
/// indexes read from `blob_dir`, their configs, layers and child manifests.
/// A blob that is missing or unreadable reaches nothing further.
fn reachable(blob_dir: &Path, descriptors: &[Value]) -> BTreeSet<Digest> {
    let mut seen = BTreeSet::new();
    let mut pending: Vec<Value> = descriptors.to_vec();
    while let Some(descriptor) = pending.pop() {
        let Some(digest) = digest_of(&descriptor) else {
            continue;
        };
        if !seen.insert(digest.clone()) {
            continue;
        }
        let media_type = descriptor
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !(image::is_index(media_type) || image::is_manifest(media_type)) {
            continue;
        }
        let Ok(raw) = read_small_file(&blob_dir.join(digest.hex())) else {
            continue;
        };
        let Ok(document) = serde_json::from_slice::<Value>(&raw) else {
            continue;
        };
        for field in ["config", "subject"] {
            if let Some(child) = document.get(field) {
                pending.push(child.clone());
            }
        }
        for list in ["layers", "manifests"] {
            if let Some(children) = document.get(list).and_then(Value::as_array) {
                pending.extend(children.iter().cloned());
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blob(dir: &Path, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        fs::write(dir.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
        digest
    }

    fn image(dir: &Path, layer: &[u8]) -> (Digest, u64) {
        let config = blob(dir, b"{}");
        let layer_digest = blob(dir, layer);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": image::media::OCI_MANIFEST,
            "config": {"mediaType": image::media::OCI_CONFIG, "digest": config.to_string(), "size": 2},
            "layers": [{"mediaType": image::media::OCI_LAYER_GZIP, "digest": layer_digest.to_string(), "size": layer.len()}],
        }))
        .unwrap();
        (blob(dir, &manifest), manifest.len() as u64)
    }

    fn entry(digest: &Digest, size: u64, tag: &str) -> Value {
        json!({"mediaType": image::media::OCI_MANIFEST, "digest": digest.to_string(), "size": size,
               "annotations": {REF_NAME: tag}})
    }

    #[test]
    fn removing_a_tag_keeps_the_blobs_other_tags_reach() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        let (shared, shared_size) = image(dir, b"layer one");
        let (own, own_size) = image(dir, b"layer two");
        let index = json!({"schemaVersion": 2, "manifests": [
            entry(&shared, shared_size, "a"), entry(&own, own_size, "b"), entry(&shared, shared_size, "c"),
        ]});
        fs::write(dir.join("index.json"), canonical_json(&index)).unwrap();

        let none = remove_layout_tags(dir, &["b".into()], &shared).unwrap();
        assert_eq!(none, Untagged::default(), "b names another digest");

        let gone = remove_layout_tags(dir, &["b".into()], &own).unwrap();
        assert_eq!(gone.tags, ["b"]);
        assert_eq!(
            gone.blobs, 2,
            "its manifest and its own layer; the config is shared"
        );
        let tags = layout_tags(dir).unwrap();
        assert_eq!(tags.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert!(!dir.join("blobs/sha256").join(own.hex()).exists());
        assert!(dir.join("blobs/sha256").join(shared.hex()).exists());

        let first = remove_layout_tags(dir, &["a".into()], &shared).unwrap();
        assert_eq!(first.blobs, 0, "c still reaches every blob of a");
        let last = remove_layout_tags(dir, &["c".into()], &shared).unwrap();
        assert_eq!(last.blobs, 3);
        assert!(layout_tags(dir).unwrap().is_empty());
        assert!(dir.join("index.json").is_file(), "the folder stays");
    }
}
