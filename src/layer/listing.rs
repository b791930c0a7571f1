//! What a library plan's cache record needs of a plan: a digest of its listing, its entries by file key, and which it rewrites.

use std::io::Write;

use super::{EntryKind, LayerPlan, Relocation, RewriteKind};
use crate::digest::Digest;
use crate::inventory::FileKey;

/// How many bytes `listing_digest` gathers before hashing them.
const FRAMES_PER_WRITE: usize = 64 * 1024;

impl LayerPlan {
    /// A digest of what the walk found, in order: each entry's stamp (its
    /// stat facts and path, `Stamp::digest_at`), kind, mode, owner, link
    /// target and whether its mode is a guess. Equal digests mean the same
    /// tree as far as stat can tell, so what was derived from it (the
    /// inventory, the split) holds again; the layer cache trusts stamps the same way.
    pub fn listing_digest(&self) -> Digest {
        let mut hasher = crate::digest::hash_sink();
        // Gathered and hashed 64 KiB at a time, as the fingerprint does.
        let mut bytes = Vec::with_capacity(FRAMES_PER_WRITE + 512);
        bytes.extend_from_slice(b"stowage listing v1\0");
        for entry in &self.entries {
            if bytes.len() >= FRAMES_PER_WRITE {
                let _ = hasher.write_all(&bytes);
                bytes.clear();
            }
            bytes.extend_from_slice(&entry.stamp);
            bytes.extend_from_slice(&entry.mode.to_le_bytes());
            let origin = &self.origins[entry.origin as usize];
            bytes.extend_from_slice(&origin.owner.uid.to_le_bytes());
            bytes.extend_from_slice(&origin.owner.gid.to_le_bytes());
            bytes.push(u8::from(entry.defaulted));
            let (tag, link): (u8, &[u8]) = match entry.kind {
                EntryKind::Dir => (b'd', b""),
                EntryKind::File { .. } => (b'f', b""),
                EntryKind::Symlink { target } => (b's', self.paths.get(target)),
                EntryKind::HardLink { to } => (b'h', self.paths.get(to)),
            };
            bytes.push(tag);
            bytes.extend_from_slice(&(link.len() as u64).to_le_bytes());
            bytes.extend_from_slice(link);
        }
        let _ = hasher.write_all(&bytes);
        hasher.finish().1
    }

    /// Each entry's file key (as `walked_under` gives it) with its index in the plan, sorted by key for `index_of`.
    pub fn indices_by_key(&self) -> Vec<(FileKey, u64)> {
        let mut keys: Vec<(FileKey, u64)> = self
            .entries
            .iter()
            .enumerate()
            .map(|(index, entry)| (entry.path.key(), index as u64))
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The file key of the entry at `index`.
    pub fn key_at(&self, index: u64) -> Option<FileKey> {
        let entry = self.entries.get(usize::try_from(index).ok()?)?;
        Some(entry.path.key())
    }

    /// The entries this plan rewrites, by index.
    pub fn rewrite_marks(&self) -> Vec<(u64, RewriteKind)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| Some((index as u64, entry.rewrite?)))
            .collect()
    }

    /// Marks the entries at `marks`' indices rewritten under `relocation`;
    /// false, with nothing marked, when an index is past the plan's end.
    pub fn mark_rewrites(
        &mut self,
        marks: &[(u64, RewriteKind)],
        relocation: Option<Relocation>,
    ) -> bool {
        let len = self.entries.len() as u64;
        if marks.iter().any(|(index, _)| *index >= len) {
            return false;
        }
        for (index, kind) in marks {
            self.entries[*index as usize].rewrite = Some(*kind);
        }
        self.relocation = relocation;
        true
    }
}

/// The index `indices_by_key` gives the file `key`.
pub fn index_of(indices: &[(FileKey, u64)], key: FileKey) -> Option<u64> {
    let at = indices.binary_search_by_key(&key, |(k, _)| *k).ok()?;
    Some(indices[at].1)
}
