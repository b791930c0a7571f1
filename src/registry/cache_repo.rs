//! The content cache kept in a registry repository (`--cache-repo`): one small OCI manifest whose config holds the map and whose layers are the cached blobs.
//!
//! The shape follows BuildKit's registry cache with `image-manifest=true`:
//! an ordinary OCI image manifest with its own config media type, so any
//! registry that stores images stores it, and its garbage collection keeps
//! the blobs the map names because the manifest lists them as layers. The
//! map is read with two requests (manifest, config) and written back merged
//! with what is there at the time. Not for deciding what to reuse: that is
//! the layer writer's, through `layer::SharedContents`.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde::{Deserialize, Serialize};

use super::answer::{read_limited, status_error};
use super::auth::Scope;
use super::push::Mount;
use super::{Origin, Registry, RegistryError};
use crate::digest::Digest;
use crate::image::{Descriptor, MAX_JSON_BYTES, canonical_json, media};
use crate::reference::ImageRef;
use crate::store::Store;

/// The media type of the cache manifest's config: the map itself.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.stowage.cache.v1+json";

/// Entries kept in the map, newest first; older ones drop off (and their blobs become collectable).
const MAX_ENTRIES: usize = 2000;

/// One layer the shared cache knows: its content hint, diff-id and content key, and the blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub hint: Digest,
    pub diff_id: Digest,
    pub key: Digest,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

impl CacheEntry {
    /// The blob's descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, self.digest.clone(), self.size)
    }
}

/// The map a cache repository holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CacheMap {
    pub entries: Vec<CacheEntry>,
}

#[derive(Deserialize)]
struct CacheManifest {
    config: Descriptor,
}

impl Registry {
    /// Reads the map kept at `reference` (I/O); empty when nothing is kept there yet.
    pub fn read_cache_map(
        &self,
        reference: &ImageRef,
        store: &Store,
    ) -> Result<CacheMap, RegistryError> {
        let Some(manifest) = self.fetch_cache_manifest(reference)? else {
            return Ok(CacheMap::default());
        };
        let not_a_cache = |problem: String| RegistryError::Protocol {
            registry: reference.registry.clone(),
            problem: format!("{reference} is not a stowage cache: {problem}"),
        };
        let manifest: CacheManifest =
            serde_json::from_slice(&manifest).map_err(|e| not_a_cache(e.to_string()))?;
        if manifest.config.media_type != CACHE_CONFIG_MEDIA_TYPE {
            return Err(not_a_cache(format!(
                "its config is {}",
                manifest.config.media_type
            )));
        }
        self.fetch_blob(&Origin::of(reference), &manifest.config, store)?;
        let bytes = store
            .read_small(&manifest.config.digest, MAX_JSON_BYTES)
            .map_err(|source| RegistryError::Store {
                what: format!("the map of {reference}"),
                source,
            })?;
        serde_json::from_slice(&bytes).map_err(|e| not_a_cache(e.to_string()))
    }

    /// The cache manifest's bytes (I/O); None when there is none yet. A
    /// registry that cannot be reached is not tried again and again: the
    /// cache is only worth the time it saves, and the caller builds without it.
    fn fetch_cache_manifest(&self, reference: &ImageRef) -> Result<Option<Vec<u8>>, RegistryError> {
        let registry = &reference.registry;
        let repo = &reference.repository;
        let tag = reference.tag_or_latest();
        let what = format!("manifest {repo}:{tag}");
        let response = self.send_with(
            registry,
            &[Scope::pull(repo)],
            &what,
            &|c, base| {
                c.get(format!("{base}/v2/{repo}/manifests/{tag}"))
                    .header(ACCEPT, media::OCI_MANIFEST)
            },
            false,
        )?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => Ok(Some(read_limited(
                response,
                MAX_JSON_BYTES,
                registry,
                &what,
            )?)),
            _ => Err(status_error(registry, &what, response)),
        }
    }

    /// Adds `new` to the map at `reference` (I/O): the map there now is read
    /// again and merged, the new entries' blobs are mounted from `origin`
    /// (the repository just pushed to) or uploaded from the store, and the
    /// manifest is put. Entries whose blobs are gone from the repository are dropped.
    pub fn write_cache_map(
        &self,
        reference: &ImageRef,
        new: &[CacheEntry],
        origin: Option<&Origin>,
        store: &Store,
    ) -> Result<(), RegistryError> {
        let current = self.read_cache_map(reference, store)?;
        let mut entries: Vec<CacheEntry> = new.to_vec();
        let replaced: BTreeSet<(&Digest, &Digest)> =
            new.iter().map(|e| (&e.hint, &e.key)).collect();
        entries.extend(
            current
                .entries
                .iter()
                .filter(|e| !replaced.contains(&(&e.hint, &e.key)))
                .cloned(),
        );
        entries.truncate(MAX_ENTRIES);
        // Blobs first (a HEAD each when present): one listed but gone is put back.
        let mut sent = BTreeSet::new();
        for entry in new {
            if sent.insert(&entry.digest) {
                self.push_blob(&entry.descriptor(), None, origin, reference, store)?;
            }
        }
        if entries == current.entries {
            return Ok(());
        }
        match self.put_cache_manifest(reference, &entries, store) {
            Err(RegistryError::Status { .. }) => {
                // Most likely a listed blob was deleted: keep only what is still there.
                let mut kept = Vec::new();
                for entry in entries {
                    if self.has_blob(&Origin::of(reference), &entry.digest)? {
                        kept.push(entry);
                    }
                }
                self.put_cache_manifest(reference, &kept, store)
            }
            other => other,
        }
    }

    fn put_cache_manifest(
        &self,
        reference: &ImageRef,
        entries: &[CacheEntry],
        store: &Store,
    ) -> Result<(), RegistryError> {
        let map = CacheMap {
            entries: entries.to_vec(),
        };
        let json = serde_json::to_value(&map).map_err(|e| RegistryError::Protocol {
            registry: reference.registry.clone(),
            problem: format!("the cache map could not be written: {e}"),
        })?;
        let config = canonical_json(&json);
        let config_descriptor = Descriptor::new(
            CACHE_CONFIG_MEDIA_TYPE,
            Digest::of(&config),
            config.len() as u64,
        );
        self.push_blob(&config_descriptor, Some(&config), None, reference, store)?;
        let mut seen = BTreeSet::new();
        let layers: Vec<Descriptor> = entries
            .iter()
            .filter(|e| seen.insert(&e.digest))
            .map(CacheEntry::descriptor)
            .collect();
        let manifest = canonical_json(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": config_descriptor,
            "layers": layers,
        }));
        self.put_manifest(
            reference,
            reference.tag_or_latest(),
            &manifest,
            media::OCI_MANIFEST,
        )
    }

    /// Whether `origin`'s repository holds the blob (I/O: one HEAD).
    pub fn has_blob(&self, origin: &Origin, digest: &Digest) -> Result<bool, RegistryError> {
        let repo = &origin.repository;
        let what = format!("checking blob {digest}");
        let response = self.send(&origin.registry, &[Scope::pull(repo)], &what, &|c, base| {
            c.head(format!("{base}/v2/{repo}/blobs/{digest}"))
        })?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(&origin.registry, &what, response)),
        }
    }

    /// Puts the blob into `dest`'s repository without sending its bytes (I/O):
    /// true when it is there already or the registry mounted it from `from`;
    /// false when the registry declines to mount.
    pub fn mount_blob(
        &self,
        desc: &Descriptor,
        from: &Origin,
        dest: &ImageRef,
    ) -> Result<bool, RegistryError> {
        if self.has_blob(&Origin::of(dest), &desc.digest)? {
            return Ok(true);
        }
        if from.registry != dest.registry || from.repository == dest.repository {
            return Ok(false);
        }
        Ok(matches!(self.mount(desc, from, dest)?, Mount::Mounted))
    }
}
