//! `--cache-repo` in a build: the shared content cache read before the layers are written, its blobs placed for the sinks, and the map updated after the push.
//!
//! Only the named repository is trusted, and only to name blobs: a reused
//! layer still has its diff-id checked by the layer writer, and every blob
//! is mounted or fetched from that repository alone. Nothing about the
//! cache repository may fail a build: an unreachable repository, a damaged
//! map or a blob that is gone only means compressing as a cold build does.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::digest::Digest;
use crate::image::{Descriptor, media};
use crate::layer::{self, BuiltLayer, Compression, SharedContents, WriteSettings};
use crate::plan::BuildPlan;
use crate::reference::{ImageRef, Location};
use crate::registry::cache_repo::CacheEntry;
use crate::registry::{Origin, Registry};
use crate::store::Store;
use crate::transport::Access;

/// The shared content cache of one build, as read from its repository.
pub struct RepoCache<'a> {
    registry: &'a Registry,
    store: &'a Store,
    reference: ImageRef,
    origin: Origin,
    /// Content hint → diff-id.
    hints: HashMap<Digest, Digest>,
    /// Content key → the entry naming its blob.
    blobs: HashMap<Digest, CacheEntry>,
    /// A destination needs reused blobs' bytes (a local sink, or a push to another registry).
    fetch: bool,
    /// Blobs found in the cache repository during this build.
    confirmed: Mutex<HashSet<Digest>>,
}

/// Reads the map of `plan`'s cache repository (I/O); None without one, or
/// when it cannot be read (then `warn` is told why and the build goes on without it).
pub fn open<'a>(
    plan: &BuildPlan,
    access: Access<'a>,
    warn: &dyn Fn(&str),
) -> Option<RepoCache<'a>> {
    let reference = plan.cache_repo.clone()?;
    let registry = match access.registry() {
        Ok(registry) => registry,
        Err(e) => {
            warn(&format!(
                "cannot open a registry client for the cache repository {reference} ({}); building without it",
                one_line(&e)
            ));
            return None;
        }
    };
    let map = match registry.read_cache_map(&reference, access.store) {
        Ok(map) => map,
        Err(e) => {
            warn(&format!(
                "cannot read the cache repository {reference} ({}); building without it",
                one_line(&e)
            ));
            return None;
        }
    };
    let fetch = plan.destinations.iter().any(|dest| match dest {
        Location::Registry(r) => r.registry != reference.registry,
        _ => true,
    });
    let mut hints = HashMap::new();
    let mut blobs = HashMap::new();
    // Newest first: the first entry for a hint or key wins.
    for entry in map.entries {
        hints
            .entry(entry.hint.clone())
            .or_insert_with(|| entry.diff_id.clone());
        blobs.entry(entry.key.clone()).or_insert(entry);
    }
    Some(RepoCache {
        registry,
        store: access.store,
        origin: Origin::of(&reference),
        reference,
        hints,
        blobs,
        fetch,
        confirmed: Mutex::default(),
    })
}

impl SharedContents for RepoCache<'_> {
    fn diff_id_for(&self, hint: &Digest) -> Option<Digest> {
        self.hints.get(hint).cloned()
    }

    fn listed_blob(&self, key: &Digest) -> Option<(Digest, u64)> {
        let entry = self.blobs.get(key)?;
        Some((entry.digest.clone(), entry.size))
    }

    fn bring(&self, digest: &Digest, size: u64) -> bool {
        let registry = self.registry;
        let found = if self.fetch {
            let media_type = self
                .blobs
                .values()
                .find(|e| e.digest == *digest)
                .map_or(media::OCI_LAYER_GZIP, |e| e.media_type.as_str());
            let desc = Descriptor::new(media_type, digest.clone(), size);
            registry.fetch_blob(&self.origin, &desc, self.store).is_ok()
        } else {
            registry.has_blob(&self.origin, digest).unwrap_or(false)
        };
        if found && let Ok(mut confirmed) = self.confirmed.lock() {
            confirmed.insert(digest.clone());
        }
        found
    }
}

impl RepoCache<'_> {
    /// Puts the reused blobs the store lacks into every registry destination
    /// by mounting them from the cache repository (I/O); a registry that will
    /// not mount gets the blob through the store, uploaded once by the push.
    pub fn place_blobs(&self, plan: &BuildPlan, built: &[BuiltLayer], warn: &dyn Fn(&str)) {
        let store = self.store;
        let registry = self.registry;
        for layer in built.iter().filter(|l| l.reused) {
            let desc = Descriptor::new(
                layer_media_type(layer.compression),
                layer.digest.clone(),
                layer.size,
            );
            for dest in &plan.destinations {
                let Location::Registry(dest) = dest else {
                    continue;
                };
                if matches!(registry.mount_blob(&desc, &self.origin, dest), Ok(true))
                    || store.contains(&layer.digest)
                {
                    continue;
                }
                if let Err(e) = registry.fetch_blob(&self.origin, &desc, store) {
                    warn(&format!(
                        "cannot fetch blob {} from the cache repository {} ({})",
                        layer.digest,
                        self.reference,
                        one_line(&e)
                    ));
                }
            }
        }
    }

    /// Adds this build's layers to the cache repository's map (I/O); a failure is a warning.
    pub fn update(
        &self,
        plan: &BuildPlan,
        settings: &WriteSettings<'_>,
        built: &[BuiltLayer],
        warn: &dyn Fn(&str),
    ) {
        let entries: Vec<CacheEntry> = plan
            .layers
            .iter()
            .zip(built)
            .map(|(layer_plan, layer)| CacheEntry {
                hint: layer::content_hint(layer_plan, settings),
                diff_id: layer.diff_id.clone(),
                key: layer::content_key(&layer.diff_id, layer.compression),
                digest: layer.digest.clone(),
                size: layer.size,
                media_type: layer_media_type(layer.compression).to_string(),
            })
            .collect();
        // Nothing new, and every blob was found there during this build: nothing to write.
        let confirmed = self.confirmed.lock().map(|c| c.clone()).unwrap_or_default();
        let known = entries.iter().all(|e| {
            confirmed.contains(&e.digest)
                && self.blobs.get(&e.key).is_some_and(|b| b.digest == e.digest)
                && self.hints.get(&e.hint) == Some(&e.diff_id)
        });
        if known {
            return;
        }
        // Blobs just pushed to the same registry are mounted from there, not uploaded.
        let pushed = plan.destinations.iter().find_map(|dest| match dest {
            Location::Registry(r) if r.registry == self.reference.registry => Some(Origin::of(r)),
            _ => None,
        });
        if let Err(e) =
            self.registry
                .write_cache_map(&self.reference, &entries, pushed.as_ref(), self.store)
        {
            warn(&format!(
                "cannot update the cache repository {} ({})",
                self.reference,
                one_line(&e)
            ));
        }
    }
}

/// The OCI media type of a layer compressed as `compression`.
fn layer_media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::Gzip => media::OCI_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
    }
}

/// An error and its causes on one line.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
