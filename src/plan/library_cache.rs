//! A library's plan after its walk — the inventory, the entries the relocation rewrites, the split — remembered by the walk's listing, so a rebuild of an unchanged library only walks it.
//!
//! After the walk, reading every RECORD, owning every file and splitting
//! cost a no-op rebuild of 300,000 files about half again the walk's time.
//! None of it can change while the listing does not: the inventory reads only
//! walked files (never through a symlink), and the split and the relocation
//! follow from the listing and the inventory. So the record is keyed by the
//! listing's digest (every entry's stat facts and path, `listing_digest`) and
//! the settings those steps take, and keeps files by their index in the
//! sorted listing, which the same listing gives again. A record that does not
//! fit the plan is ignored, and a miss plans as if there were no cache.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::inventory::{FileKey, Inventory};
use crate::layer::{LayerPlan, Relocation, RewriteKind, SplitRecord, index_of};
use crate::spec::Mount;
use crate::store::{Cache, Store};

/// Changes whenever the inventory, the relocation's marks or the split
/// would come out otherwise from the same listing (the crate's version is in
/// the key too, for releases).
const LIBRARY_CACHE_VERSION: u32 = 1;

/// What the steps after the walk made of one listing.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LibraryRecord {
    /// The listing it was made from (`LayerPlan::listing_digest`).
    listing: Digest,
    /// With every package's `files` and `prefixed` emptied: they are in `files` and `prefixed`.
    inventory: Inventory,
    /// Each package's files, as runs (first index, count) of the listing's indices.
    files: Vec<Vec<(u64, u64)>>,
    /// Each package's prefixed files: listing index and whether binary.
    prefixed: Vec<Vec<(u64, bool)>>,
    /// The relocation the plan carries when it rewrites something.
    relocation: Option<Relocation>,
    rewrites: Vec<(u64, RewriteKind)>,
    split: SplitRecord,
}

/// The key of a library's record: where it is read from and goes, and the
/// most layers it may split into. Not its listing, which the record holds:
/// one record a library, replaced when the library changes, so records do
/// not pile up in the store (they name no blob, so a prune would not remove them).
pub(super) fn key(mount: &Mount, max_layers: usize) -> Digest {
    let text = format!(
        "stowage library plan v{LIBRARY_CACHE_VERSION}\n{}\n{}\n{}\n{}\n{max_layers}\n",
        env!("CARGO_PKG_VERSION"),
        mount.source.display(),
        mount.target,
        mount.relocate,
    );
    Digest::of(text.as_bytes())
}

/// The record under `key` when the store has one that reads and was made from `listing`.
pub(super) fn read(store: &Store, key: &Digest, listing: &Digest) -> Option<LibraryRecord> {
    let record: LibraryRecord = store.read_record(Cache::LibraryPlans, key)?;
    (record.listing == *listing).then_some(record)
}

/// What the steps after the walk made of `library` (the plan before the
/// split, relocation marked), whose listing `inventory` was read from;
/// the split is added by `write`. None when a key of the inventory is not
/// the listing's (nothing is kept then).
pub(super) fn unsplit_record(
    library: &LayerPlan,
    listing: Digest,
    inventory: &Inventory,
) -> Option<LibraryRecord> {
    let indices = library.indices_by_key();
    let mut record = LibraryRecord {
        listing,
        inventory: inventory.clone(),
        files: Vec::new(),
        prefixed: Vec::new(),
        relocation: library.relocation.clone(),
        rewrites: library.rewrite_marks(),
        split: SplitRecord {
            layers: Vec::new(),
            runs: Vec::new(),
        },
    };
    for package in &mut record.inventory.packages {
        let mut files: Vec<u64> = std::mem::take(&mut package.files)
            .into_iter()
            .map(|key| index_of(&indices, key))
            .collect::<Option<_>>()?;
        let prefixed: Vec<(u64, bool)> = std::mem::take(&mut package.prefixed)
            .into_iter()
            .map(|file| Some((index_of(&indices, file.key)?, file.binary)))
            .collect::<Option<_>>()?;
        files.sort_unstable();
        record.files.push(runs(&files));
        record.prefixed.push(prefixed);
    }
    Some(record)
}

/// Keeps `record`, with how the plan split, under `key` (I/O, best effort).
pub(super) fn write(store: &Store, key: &Digest, mut record: LibraryRecord, split: SplitRecord) {
    record.split = split;
    store.write_record(Cache::LibraryPlans, key, &record);
}

/// What a record restores: the inventory (keys of `library`'s entries) and
/// the split plan; Err gives `library` back untouched when the record does not fit it.
pub(super) fn restore(
    record: LibraryRecord,
    mut library: LayerPlan,
) -> Result<(Inventory, Vec<LayerPlan>), Box<LayerPlan>> {
    let LibraryRecord {
        listing: _,
        mut inventory,
        files,
        prefixed,
        relocation,
        rewrites,
        split,
    } = record;
    if files.len() != inventory.packages.len()
        || prefixed.len() != inventory.packages.len()
        || !library.split_fits(&split)
    {
        return Err(Box::new(library));
    }
    let key_at = |index: u64| -> Option<FileKey> { library.key_at(index) };
    for ((package, runs), prefixed) in inventory.packages.iter_mut().zip(&files).zip(&prefixed) {
        let indices = runs
            .iter()
            .flat_map(|(first, count)| *first..first.saturating_add(*count));
        let keys: Option<Vec<FileKey>> = indices.map(key_at).collect();
        let listed: Option<Vec<_>> = prefixed
            .iter()
            .map(|(index, binary)| {
                Some(crate::inventory::PrefixedFile {
                    key: key_at(*index)?,
                    binary: *binary,
                })
            })
            .collect();
        let (Some(mut keys), Some(mut listed)) = (keys, listed) else {
            return Err(Box::new(library));
        };
        // Sorted by key, as the inventory keeps them.
        keys.sort_unstable();
        listed.sort_unstable();
        package.files = keys;
        package.prefixed = listed;
    }
    if !library.mark_rewrites(&rewrites, relocation) {
        return Err(Box::new(library));
    }
    let layers = library.split_as(split)?;
    Ok((inventory, layers))
}

/// Sorted, unique `indices` as runs of (first, count).
fn runs(indices: &[u64]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &index in indices {
        match runs.last_mut() {
            Some((first, count)) if *first + *count == index => *count += 1,
            _ => runs.push((index, 1)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn runs_stand_for_consecutive_indices() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(runs(&[3, 4, 5, 9, 11, 12]), vec![(3, 3), (9, 1), (11, 2)]);
    }
}
