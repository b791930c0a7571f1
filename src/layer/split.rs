//! Splitting the library layer by package, stably: adding or removing a package moves no other.

use std::collections::BTreeMap;

use super::{Entry, EntryKind, LayerPlan};
use crate::digest::Digest;

impl LayerPlan {
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
