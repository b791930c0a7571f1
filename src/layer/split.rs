//! Splitting the library layer by package, stably: a package's files stay together, and adding or removing one moves no other.
//!
//! Every entry of the library belongs to one *group*: the package whose
//! metadata lists it (the inventory), else the child of a package folder
//! (`site-packages`, `node_modules`, an R library) it sits in, else the
//! library's *unowned* files. When the inventory found neither packages nor
//! package folders, the library's top-level entries are the groups, as
//! before the inventory existed.
//!
//! Groups of at least [`OWN_LAYER_BYTES`] get a layer of their own (the
//! largest first, while there are slots: a third of the layers); every other group goes to one of
//! a fixed number of shared layers chosen by a hash of its name alone, so
//! its layer does not depend on which other packages are installed. Unowned
//! files get a layer of their own. Folders go wherever the entries below
//! them go, so each layer unpacks on its own.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use super::{Entry, EntryKind, LayerPlan};
use crate::digest::Digest;
use crate::inventory::{FileKey, Inventory, Owners, WalkedPath, WalkedTree};

/// How many entries the split moves between shrinks of the plan's list.
const SHRINK_EVERY: usize = 1 << 14;

/// A group this big (bytes of file content) gets a layer of its own.
pub const OWN_LAYER_BYTES: u64 = 8 * 1024 * 1024;

/// What one part of a layer is: a package, a folder standing in for one, or the unowned files.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum GroupKey {
    /// Index into the inventory's packages.
    Package(usize),
    /// A child of a package folder, or a top-level entry, relative to the library root.
    Folder(String),
    /// Files no package lists.
    Unowned,
}

/// One group of a library layer, for `--dry-run`, the history and records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerPart {
    pub key: GroupKey,
    /// `jinja2 3.1.6`, `site-packages/pkg03`, or `unowned files`.
    pub label: String,
    /// Bytes of file content.
    pub bytes: u64,
    /// Regular files.
    pub files: u64,
}

/// How a library plan was split, entry by entry: enough to split the same
/// entries the same way again without the inventory (a no-op rebuild's
/// library plan, `plan::library_cache`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitRecord {
    /// Each layer's name and parts, in order.
    pub layers: Vec<(String, Vec<LayerPart>)>,
    /// Over the unsplit plan's entries in order: runs of (how many, the mask of the layers they go to).
    pub runs: Vec<(u32, u64)>,
}

/// How a library splits: the inventory of its source and the most layers it may take.
pub struct LibrarySplit<'a> {
    pub target: &'a str,
    pub inventory: &'a Inventory,
    pub max_layers: usize,
}

impl LibrarySplit<'_> {
    /// The group an entry (path in the image, walked with `key`) belongs to; None for the root and its ancestors.
    fn group_of<'p>(&self, owners: &Owners, key: FileKey, path: &'p [u8]) -> Option<GroupRef<'p>> {
        let root = self.target.trim_matches('/').as_bytes();
        let rest = path.strip_prefix(root)?.strip_prefix(b"/")?;
        if let Some(index) = owners.get(key) {
            return Some(GroupRef::Package(index));
        }
        let Ok(rel) = std::str::from_utf8(rest) else {
            return Some(GroupRef::Unowned);
        };
        let inventory = self.inventory;
        let folder = inventory
            .package_folders
            .iter()
            .filter(|f| rel.len() > f.len() + 1 && rel.starts_with(f.as_str()))
            .filter(|f| rel.as_bytes()[f.len()] == b'/')
            .max_by_key(|f| f.len());
        if let Some(folder) = folder {
            let child = rel[folder.len() + 1..]
                .split('/')
                .next()
                .unwrap_or_default();
            // `folder/child`, as the path spells it: no copy per entry.
            return Some(GroupRef::Folder(&rel[..folder.len() + 1 + child.len()]));
        }
        if inventory.packages.is_empty() && inventory.package_folders.is_empty() {
            let top = rel.split('/').next().unwrap_or_default();
            return Some(GroupRef::Folder(top));
        }
        Some(GroupRef::Unowned)
    }

    fn label(&self, key: &GroupKey) -> String {
        match key {
            GroupKey::Package(index) => match self.inventory.packages.get(*index) {
                Some(p) => format!("{} {}", p.name, p.version),
                None => format!("package {index}"),
            },
            GroupKey::Folder(path) => path.clone(),
            GroupKey::Unowned => "unowned files".into(),
        }
    }

    /// The stable name a shared layer is chosen by: the package's name, not its version.
    fn hash_name(&self, key: &GroupKey) -> String {
        match key {
            GroupKey::Package(index) => match self.inventory.packages.get(*index) {
                Some(p) => format!("{}:{}", p.ecosystem.name(), p.name.to_lowercase()),
                None => index.to_string(),
            },
            GroupKey::Folder(path) => format!("folder:{path}"),
            GroupKey::Unowned => "unowned".into(),
        }
    }
}

/// A group's number, one more than its index in the split's list: 4 bytes an
/// entry, `None` included.
type GroupId = std::num::NonZeroU32;

/// The index in the split's list of groups of the group numbered `id`.
fn group_index(id: GroupId) -> usize {
    id.get() as usize - 1
}

/// A group as an entry's path names it, borrowed: a [`GroupKey`] is made once per group, not per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum GroupRef<'p> {
    Package(usize),
    Folder(&'p str),
    Unowned,
}

impl GroupRef<'_> {
    fn key(self) -> GroupKey {
        match self {
            GroupRef::Package(index) => GroupKey::Package(index),
            GroupRef::Folder(path) => GroupKey::Folder(path.to_string()),
            GroupRef::Unowned => GroupKey::Unowned,
        }
    }
}

/// Which layer each group goes to: own layers, shared layers by hash, unowned last.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Hash)]
enum Slot {
    Own(String),
    Shared(usize),
    Unowned,
}

impl LayerPlan {
    /// Splits the library layer into at most `split.max_layers` layers by
    /// package (see the module doc). Never returns an empty layer, nor one
    /// without a regular file unless the library has none at all.
    pub fn split_by_package(self, split: &LibrarySplit<'_>) -> Vec<LayerPlan> {
        self.split_by_package_recorded(split).0
    }

    /// [`LayerPlan::split_by_package`], and the record of how it split.
    pub fn split_by_package_recorded(
        self,
        split: &LibrarySplit<'_>,
    ) -> (Vec<LayerPlan>, SplitRecord) {
        // The folders' layer masks are 64 bits wide (`--library-layers` is at most 64).
        let split = &LibrarySplit {
            max_layers: split.max_layers.min(64),
            ..*split
        };
        let owners = split.inventory.owners();
        // Each entry's group by number; the groups themselves are made once.
        let mut ids: HashMap<GroupRef<'_>, GroupId> = HashMap::new();
        let mut groups: Vec<GroupKey> = Vec::new();
        let mut last_group: Option<(GroupRef<'_>, GroupId)> = None;
        let entry_groups: Vec<Option<GroupId>> = self
            .entries
            .iter()
            .map(|entry| {
                // A hard link must sit in the same layer as the file it links to.
                let anchor = match entry.kind {
                    EntryKind::HardLink { to } => to,
                    _ => entry.path,
                };
                // Folders go where the entries below them go.
                if matches!(entry.kind, EntryKind::Dir) {
                    return None;
                }
                let group = split.group_of(&owners, anchor.key(), self.paths.get(anchor))?;
                // Sorted entries come a package at a time: most need no hashing.
                if let Some((last, id)) = last_group
                    && last == group
                {
                    return Some(id);
                }
                let next = GroupId::new(u32::try_from(groups.len() + 1).ok()?)?;
                let id = *ids.entry(group).or_insert_with(|| {
                    groups.push(group.key());
                    next
                });
                last_group = Some((group, id));
                Some(id)
            })
            .collect();
        // Per-file maps go as soon as they have served: the split's peak is
        // while the entries move into the layers' lists.
        drop(ids);
        drop(owners);
        let mut totals = vec![(0u64, 0u64); groups.len()];
        for (entry, key) in self.entries.iter().zip(&entry_groups) {
            if let (Some(key), EntryKind::File { size }) = (key, &entry.kind) {
                totals[group_index(*key)].0 += size;
                totals[group_index(*key)].1 += 1;
            }
        }
        let parts: BTreeMap<GroupKey, LayerPart> = groups
            .iter()
            .zip(totals)
            .map(|(key, (bytes, files))| {
                let part = LayerPart {
                    key: key.clone(),
                    label: split.label(key),
                    bytes,
                    files,
                };
                (key.clone(), part)
            })
            .collect();
        if split.max_layers <= 1 || parts.len() <= 1 {
            let mut whole = self;
            whole.parts = parts.into_values().collect();
            if split.max_layers > 1 {
                // Named as a split's only part, so the name says which mode built it.
                whole.name = format!("{}-1of1", whole.name);
            }
            let record = SplitRecord {
                layers: vec![(whole.name.clone(), whole.parts.clone())],
                runs: runs_of(std::iter::repeat_n(1, whole.entries.len())),
            };
            return (vec![whole], record);
        }
        let slots = assign_slots(split, &parts);
        self.into_slots(entry_groups, &groups, &parts, &slots)
    }

    /// Whether `record` can split this plan: the same count of entries, and masks naming only its layers.
    pub fn split_fits(&self, record: &SplitRecord) -> bool {
        let total = record.layers.len();
        let covered: u64 = record.runs.iter().map(|(count, _)| u64::from(*count)).sum();
        total > 0
            && total <= 64
            && covered == self.entries.len() as u64
            && record
                .runs
                .iter()
                .all(|(_, mask)| total == 64 || mask >> total == 0)
    }

    /// Splits this plan as `record` says, when it fits: the same count of
    /// entries, and masks naming only its layers. None leaves nothing split
    /// (the caller still has its plan to split from the inventory).
    pub fn split_as(self, record: SplitRecord) -> Result<Vec<LayerPlan>, Box<LayerPlan>> {
        if !self.split_fits(&record) {
            return Err(Box::new(self));
        }
        if let [(name, parts)] = record.layers.as_slice()
            && record.runs.iter().all(|(_, mask)| *mask == 1)
        {
            let mut whole = self;
            whole.name = name.clone();
            whole.parts = parts.clone();
            return Ok(vec![whole]);
        }
        let masks: Vec<u64> = record
            .runs
            .iter()
            .flat_map(|(count, mask)| std::iter::repeat_n(*mask, *count as usize))
            .collect();
        Ok(self.fill_layers(&masks, record.layers))
    }

    /// Builds one layer per slot that holds a regular file; a slot without one joins the last layer.
    fn into_slots(
        self,
        entry_groups: Vec<Option<GroupId>>,
        groups: &[GroupKey],
        parts: &BTreeMap<GroupKey, LayerPart>,
        slots: &BTreeMap<GroupKey, Slot>,
    ) -> (Vec<LayerPlan>, SplitRecord) {
        let mut by_slot: BTreeMap<&Slot, Vec<&LayerPart>> = BTreeMap::new();
        for (key, slot) in slots {
            if let Some(part) = parts.get(key) {
                by_slot.entry(slot).or_default().push(part);
            }
        }
        let mut layer_parts: Vec<(Vec<&LayerPart>, Vec<&Slot>)> = Vec::new();
        let mut fileless: Vec<&Slot> = Vec::new();
        let mut fileless_parts: Vec<&LayerPart> = Vec::new();
        for (slot, slot_parts) in by_slot {
            if slot_parts.iter().any(|p| p.files > 0) {
                layer_parts.push((slot_parts, vec![slot]));
            } else {
                fileless.push(slot);
                fileless_parts.extend(slot_parts);
            }
        }
        match layer_parts.last_mut() {
            Some(last) => {
                last.0.extend(fileless_parts);
                last.1.extend(fileless);
            }
            None => layer_parts.push((fileless_parts, fileless)),
        }
        let slot_index: HashMap<&Slot, usize> = layer_parts
            .iter()
            .enumerate()
            .flat_map(|(i, (_, slots))| slots.iter().map(move |s| (*s, i)))
            .collect();
        // At most 64 layers, so a layer's number fits a byte.
        let group_layer: Vec<Option<u8>> = groups
            .iter()
            .map(|k| {
                slots
                    .get(k)
                    .and_then(|s| slot_index.get(s))
                    .and_then(|i| u8::try_from(*i).ok())
            })
            .collect();
        let entry_layer: Vec<Option<u8>> = entry_groups
            .iter()
            .map(|k| k.and_then(|k| group_layer[group_index(k)]))
            .collect();
        drop(entry_groups);
        let part_lists: Vec<Vec<LayerPart>> = layer_parts
            .into_iter()
            .map(|(parts, _)| parts.into_iter().cloned().collect())
            .collect();
        self.distribute(&entry_layer, part_lists)
    }

    /// Puts each entry into its layer, with the folders above it; folders no entry needs go to the last layer.
    ///
    /// One pass over the sorted entries: each folder gets a mask of the layers
    /// that need it (found through a map of folder paths, looked up once per
    /// new parent), then the entries go out in order (`fill_layers`).
    fn distribute(
        self,
        entry_layer: &[Option<u8>],
        part_lists: Vec<Vec<LayerPart>>,
    ) -> (Vec<LayerPlan>, SplitRecord) {
        let total = part_lists.len();
        let needed = self.folder_masks(entry_layer);
        let last = total.saturating_sub(1);
        // A folder nothing below needs (an empty one) still belongs in the image.
        let mask_of = |folder: usize| match needed[folder] {
            0 => 1u64 << last,
            mask => mask,
        };
        let mut folder = 0;
        let masks: Vec<u64> = self
            .entries
            .iter()
            .zip(entry_layer)
            .map(|(entry, layer)| match (&entry.kind, layer) {
                (EntryKind::Dir, _) => {
                    folder += 1;
                    mask_of(folder - 1)
                }
                (_, Some(layer)) => 1 << layer,
                (_, None) => 0,
            })
            .collect();
        let layers: Vec<(String, Vec<LayerPart>)> = part_lists
            .into_iter()
            .enumerate()
            .map(|(index, parts)| (format!("{}-{}of{total}", self.name, index + 1), parts))
            .collect();
        let record = SplitRecord {
            layers: layers.clone(),
            runs: runs_of(masks.iter().copied()),
        };
        (self.fill_layers(&masks, layers), record)
    }

    /// Puts each entry into the layers its mask names (a folder may go to
    /// several): each layer stays sorted, and a file is moved, never copied.
    fn fill_layers(
        mut self,
        masks: &[u64],
        layers: Vec<(String, Vec<LayerPart>)>,
    ) -> Vec<LayerPlan> {
        let total = layers.len();
        let mut sizes = vec![0usize; total];
        for &mask in masks {
            let mut rest = mask;
            while rest != 0 {
                sizes[rest.trailing_zeros() as usize] += 1;
                rest &= rest - 1;
            }
        }
        let mut buckets: Vec<Vec<Entry>> = sizes.iter().map(|n| Vec::with_capacity(*n)).collect();
        // Taken from the end, and the plan's own list shrunk as the buckets
        // fill: the two never both hold every entry.
        let mut entries = std::mem::take(&mut self.entries);
        while let Some(entry) = entries.pop() {
            let index = entries.len();
            let mask = masks[index];
            if mask.count_ones() == 1 {
                buckets[mask.trailing_zeros() as usize].push(entry);
            } else {
                for (layer, bucket) in buckets.iter_mut().enumerate() {
                    if mask & (1 << layer) != 0 {
                        bucket.push(entry.clone());
                    }
                }
            }
            if index.is_multiple_of(SHRINK_EVERY) {
                entries.shrink_to_fit();
            }
        }
        for bucket in &mut buckets {
            bucket.reverse();
        }
        buckets
            .into_iter()
            .zip(layers)
            .enumerate()
            .map(|(index, (bucket, (name, parts)))| self.part_plan(index, name, bucket, parts))
            .collect()
    }

    /// For each folder entry, in order (the nth folder's at n), a mask of the
    /// layers whose entries sit below it. One word a folder, not one an entry.
    fn folder_masks(&self, entry_layer: &[Option<u8>]) -> Vec<u64> {
        let dir_index: HashMap<&[u8], usize> = self
            .entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::Dir))
            .enumerate()
            .map(|(i, e)| (self.paths.get(e.path), i))
            .collect();
        let mut needed: Vec<u64> = vec![0; dir_index.len()];
        let mut last_parent: &[u8] = &[];
        let mut ancestors: Vec<usize> = Vec::new();
        for (entry, layer) in self.entries.iter().zip(entry_layer) {
            let Some(layer) = layer else { continue };
            let path = self.paths.get(entry.path);
            let parent = match path.iter().rposition(|b| *b == b'/') {
                Some(i) => &path[..i],
                None => &path[..0],
            };
            if parent != last_parent {
                last_parent = parent;
                ancestors.clear();
                for (i, byte) in path.iter().enumerate() {
                    if *byte == b'/'
                        && let Some(dir) = dir_index.get(&path[..i])
                    {
                        ancestors.push(*dir);
                    }
                }
            }
            for dir in &ancestors {
                needed[*dir] |= 1 << layer;
            }
        }
        needed
    }

    /// The `index`th layer of the split (the walk's warnings go with the first).
    fn part_plan(
        &self,
        index: usize,
        name: String,
        entries: Vec<Entry>,
        parts: Vec<LayerPart>,
    ) -> LayerPlan {
        let entries_rewritten = entries.iter().any(|e| e.rewrite.is_some());
        LayerPlan {
            name,
            role: self.role,
            sources: self.sources.clone(),
            paths: Arc::clone(&self.paths),
            origins: Arc::clone(&self.origins),
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
            warnings: if index == 0 {
                self.warnings.clone()
            } else {
                Vec::new()
            },
            secret_scan: self.secret_scan.clone(),
            parts,
            relocation: entries_rewritten.then(|| self.relocation.clone()).flatten(),
        }
    }
}

/// Own layers for the largest groups of at least [`OWN_LAYER_BYTES`], while
/// slots (a third of the layers) last; the rest into shared layers by a hash of their name; unowned
/// files apart when there is room.
fn assign_slots(
    split: &LibrarySplit<'_>,
    parts: &BTreeMap<GroupKey, LayerPart>,
) -> BTreeMap<GroupKey, Slot> {
    let max = split.max_layers;
    let has_unowned = parts.contains_key(&GroupKey::Unowned);
    let unowned_slot = usize::from(has_unowned && max >= 3);
    // A third of the layers for big groups; the shared count is fixed by
    // `max` alone, so no package set moves a small package to another layer.
    let own_slots = (max - unowned_slot) / 3;
    let shared = (max - unowned_slot - own_slots).max(1);
    let mut big: Vec<&LayerPart> = parts
        .values()
        .filter(|p| p.key != GroupKey::Unowned && p.bytes >= OWN_LAYER_BYTES)
        .collect();
    big.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.key.cmp(&b.key)));
    let mut slots = BTreeMap::new();
    for part in big.into_iter().take(own_slots) {
        slots.insert(part.key.clone(), Slot::Own(split.hash_name(&part.key)));
    }
    for key in parts.keys() {
        if slots.contains_key(key) {
            continue;
        }
        let slot = if *key == GroupKey::Unowned && unowned_slot == 1 {
            Slot::Unowned
        } else {
            Slot::Shared(shared_index(&split.hash_name(key), shared))
        };
        slots.insert(key.clone(), slot);
    }
    slots
}

/// `masks` as runs of equal masks: entries come a package at a time, so a few runs stand for many entries.
fn runs_of(masks: impl Iterator<Item = u64>) -> Vec<(u32, u64)> {
    let mut runs: Vec<(u32, u64)> = Vec::new();
    for mask in masks {
        match runs.last_mut() {
            Some((count, last)) if *last == mask && *count < u32::MAX => *count += 1,
            _ => runs.push((1, mask)),
        }
    }
    runs
}

/// The shared layer a name hashes to: depends on the name and the count alone.
fn shared_index(name: &str, shared: usize) -> usize {
    let hash = Digest::of(name.as_bytes());
    let hex = hash.hex();
    let value = u64::from_str_radix(&hex[..16], 16).unwrap_or(0);
    (value % shared as u64) as usize
}

/// A plan's entries under a target folder, relative to it, as the inventory
/// reads them: a view of the plan's sorted list, not a copy. Each is keyed by
/// where its path sits in the arena, which the split keeps.
pub struct WalkedUnder<'a> {
    plan: &'a LayerPlan,
    entries: Range<usize>,
    /// Bytes of the target's path (and its `/`) before each relative path.
    skip: usize,
}

impl LayerPlan {
    /// The entries below `target` (the plan's entries are sorted by path bytes, so they are one range).
    pub fn walked_under(&self, target: &str) -> WalkedUnder<'_> {
        let root = target.trim_matches('/');
        if root.is_empty() {
            return WalkedUnder {
                plan: self,
                entries: 0..self.entries.len(),
                skip: 0,
            };
        }
        // Paths below "root/" sort from "root/" up to "root0" ('0' follows '/').
        let first = format!("{root}/");
        let bound = format!("{root}0");
        let at = |edge: &str| {
            self.entries
                .partition_point(|entry| self.paths.get(entry.path) < edge.as_bytes())
        };
        let start = at(&first);
        WalkedUnder {
            plan: self,
            entries: start..at(&bound).max(start),
            skip: first.len(),
        }
    }
}

impl WalkedTree for WalkedUnder<'_> {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn entry(&self, index: usize) -> WalkedPath<'_> {
        let entry = &self.plan.entries[self.entries.start + index];
        let path = self.plan.paths.get(entry.path);
        WalkedPath {
            path: path.get(self.skip..).unwrap_or_default(),
            is_dir: matches!(entry.kind, EntryKind::Dir),
            key: entry.path.key(),
        }
    }
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
