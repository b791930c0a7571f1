//! Pulls: manifests and blobs from a registry into the store, and images and indexes read from them.
//!
//! Not for the HTTP work itself (auth, retries, schemes): that is `client`'s.

use std::io::BufReader;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, HeaderName, RANGE};

use super::answer::{read_limited, status_error};
use super::auth::Scope;
use super::retry::backoff;
use super::{CountingReader, Origin, Registry, RegistryError, TransferEnd, TransferKind};
use crate::digest::Digest;
use crate::image::{self, Descriptor, Image, Index, MAX_JSON_BYTES, Platform, media};
use crate::image::{Artifact, ImageIndex, attestation};
use crate::reference::ImageRef;
use crate::store::{BlobWriter, Store, StoreError};

/// Manifest media types stowage asks for.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

impl Registry {
    /// Fetches a manifest or index by tag or digest (I/O), checking a requested digest.
    pub fn fetch_manifest(
        &self,
        reference: &ImageRef,
        by: &str,
    ) -> Result<(Vec<u8>, String), RegistryError> {
        let registry = &reference.registry;
        let repo = &reference.repository;
        let what = format!("manifest {repo}:{by}");
        let response = self.send(registry, &[Scope::pull(repo)], &what, &|c, base| {
            c.get(format!("{base}/v2/{repo}/manifests/{by}"))
                .header(ACCEPT, MANIFEST_ACCEPT)
        })?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                registry: registry.clone(),
                what: format!("{repo}:{by}"),
            });
        }
        if !response.status().is_success() {
            return Err(status_error(registry, &what, response));
        }
        let header_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let bytes = read_limited(response, MAX_JSON_BYTES, registry, &what)?;
        if let Ok(expected) = by.parse::<Digest>() {
            let actual = Digest::of(&bytes);
            if actual != expected {
                return Err(RegistryError::DigestMismatch {
                    registry: registry.clone(),
                    what,
                    expected,
                    actual,
                });
            }
        }
        let declared = declared_media_type(&bytes);
        let media_type = declared
            .or(header_type)
            .unwrap_or_else(|| media::DOCKER_MANIFEST.to_string());
        Ok((bytes, media_type))
    }

    /// Streams a blob into the store (I/O), verified against its digest and size; nothing when it is there already.
    ///
    /// A download that breaks off continues from the bytes already in the
    /// store's temporary file (a `Range` request, the hash carried on); a
    /// registry that answers the whole blob instead, or another range, is
    /// read from the start again.
    pub fn fetch_blob(
        &self,
        origin: &Origin,
        desc: &Descriptor,
        store: &Store,
    ) -> Result<(), RegistryError> {
        if stored_already(origin, desc, store)? {
            return Ok(());
        }
        let digest = &desc.digest;
        let what = format!("blob {digest}");
        let into_store = |source| RegistryError::Store {
            what: what.clone(),
            source,
        };
        let mut writer = store.writer().map_err(into_store)?;
        if let Some(progress) = &self.options.progress {
            progress.begin(TransferKind::Pull, digest, desc.size);
        }
        let mut attempt = 0;
        loop {
            // Before each download, first or again: a signal's read error is no reason to retry.
            crate::interrupt::check()?;
            let Some(broken) = self.download_rest(origin, desc, store, &mut writer)? else {
                break;
            };
            if attempt >= self.options.retries {
                return Err(broken.error);
            }
            self.pause(&broken.why, backoff(attempt));
            attempt += 1;
        }
        writer
            .commit_expecting(&what, digest, desc.size)
            .map_err(into_store)?;
        if let Some(progress) = &self.options.progress {
            progress.end(TransferEnd::Downloaded, digest, desc.size);
        }
        Ok(())
    }

    /// One request for what `writer` still lacks of the blob (I/O): `None`
    /// when it has every byte, else why the download broke off. Wrong bytes
    /// and a full disk are errors: retrying does not help them.
    fn download_rest(
        &self,
        origin: &Origin,
        desc: &Descriptor,
        store: &Store,
        writer: &mut BlobWriter,
    ) -> Result<Option<Broken>, RegistryError> {
        let (repo, digest, size) = (&origin.repository, &desc.digest, desc.size);
        let what = format!("blob {digest}");
        let have = writer.written();
        if have >= size {
            return Ok(None);
        }
        let range = (have > 0).then(|| format!("bytes={have}-"));
        let response = self.send(&origin.registry, &[Scope::pull(repo)], &what, &|c, base| {
            let get = c.get(format!("{base}/v2/{repo}/blobs/{digest}"));
            match &range {
                Some(range) => get.header(RANGE, range),
                None => get,
            }
        })?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                registry: origin.registry.clone(),
                what: format!("blob {digest} in {repo}"),
            });
        }
        if !response.status().is_success() {
            return Err(status_error(&origin.registry, &what, response));
        }
        let into_store = |source| RegistryError::Store {
            what: what.clone(),
            source,
        };
        if response.status() == StatusCode::PARTIAL_CONTENT {
            let answered = header_text(&response, CONTENT_RANGE);
            if !range_continues(&answered, have, size) {
                *writer = store.writer().map_err(into_store)?;
                return Ok(Some(Broken {
                    why: format!(
                        "{what}: asked for bytes {have}-, the registry sent the range \"{answered}\"; starting over"
                    ),
                    error: RegistryError::Protocol {
                        registry: origin.registry.clone(),
                        problem: format!(
                            "it answered a request for bytes {have}- of {what} with the range \"{answered}\""
                        ),
                    },
                }));
            }
        } else if have > 0 {
            // The registry ignored the Range: this is the whole blob again.
            *writer = store.writer().map_err(into_store)?;
        }
        let counted = CountingReader {
            inner: response,
            progress: self.options.progress.clone(),
        };
        let mut reader = BufReader::with_capacity(256 * 1024, counted);
        let limit = size.saturating_sub(writer.written()).saturating_add(1);
        let broke_off = match writer.append_from(&what, &mut reader, limit) {
            Ok(()) if writer.written() >= size => return Ok(None),
            // A body without Content-Length that ended early.
            Ok(()) => StoreError::SizeMismatch {
                what: what.clone(),
                expected: size,
                actual: writer.written(),
            },
            // A dropped or stalled connection fails a read.
            Err(source @ StoreError::Source { .. }) => source,
            Err(source) => return Err(into_store(source)),
        };
        Ok(Some(Broken {
            why: format!(
                "{what}: the download broke off after {} of {size} bytes",
                writer.written()
            ),
            error: RegistryError::Store {
                what: self.gave_up(&what),
                source: broke_off,
            },
        }))
    }

    /// Reads an image or index (manifests and configs only; layers stay remote until needed) (I/O).
    ///
    /// With `platform`, an index is narrowed to that one image, fetching only its manifest.
    pub fn read_artifact(
        &self,
        reference: &ImageRef,
        platform: Option<&Platform>,
        store: &Store,
    ) -> Result<Artifact, RegistryError> {
        let by = reference
            .digest
            .clone()
            .unwrap_or_else(|| reference.tag_or_latest().to_string());
        let (raw, media_type) = self.fetch_manifest(reference, &by)?;
        let origin = Origin::of(reference);
        if !image::is_index(&media_type) {
            return self
                .read_image(&origin, raw, &media_type, store)
                .map(Artifact::Image);
        }
        let registry = &reference.registry;
        let index: Index =
            image::parse_json("image index", &raw).map_err(|e| RegistryError::Protocol {
                registry: registry.clone(),
                problem: e.to_string(),
            })?;
        let every_image: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|d| image::is_manifest(&d.media_type))
            .collect();
        // One image and its attestations stay together: the attestation manifests are small.
        let attested_only = every_image.len() == index.manifests.len()
            && every_image
                .iter()
                .filter(|d| !attestation::is_attestation(d))
                .count()
                == 1;
        let children: Vec<&Descriptor> = match platform {
            Some(platform) => {
                let chosen = image::select_platform(&index.manifests, platform).map_err(|e| {
                    RegistryError::NotFound {
                        registry: registry.clone(),
                        what: format!("{reference}: {e}"),
                    }
                })?;
                if attested_only {
                    every_image
                } else {
                    vec![chosen]
                }
            }
            None => every_image,
        };
        let narrowed = platform.is_some() && children.len() == 1;
        let mut images = Vec::new();
        for child in children {
            let (child_raw, child_type) = self.fetch_manifest(reference, child.digest.as_str())?;
            images.push(self.read_image(&origin, child_raw, &child_type, store)?);
        }
        if narrowed {
            return images
                .pop()
                .map(Artifact::Image)
                .ok_or_else(|| RegistryError::Protocol {
                    registry: registry.clone(),
                    problem: "the chosen platform's manifest vanished".into(),
                });
        }
        Ok(Artifact::Index(ImageIndex {
            digest: Digest::of(&raw),
            raw,
            media_type,
            images,
        }))
    }

    fn read_image(
        &self,
        origin: &Origin,
        raw: Vec<u8>,
        media_type: &str,
        store: &Store,
    ) -> Result<Image, RegistryError> {
        let protocol = |problem: String| RegistryError::Protocol {
            registry: origin.registry.clone(),
            problem,
        };
        let manifest: image::Manifest =
            image::parse_json("image manifest", &raw).map_err(|e| protocol(e.to_string()))?;
        if manifest.config.size > MAX_JSON_BYTES {
            return Err(RegistryError::TooLarge {
                registry: origin.registry.clone(),
                what: format!("config {}", manifest.config.digest),
                size: manifest.config.size,
                limit: MAX_JSON_BYTES,
            });
        }
        self.fetch_blob(origin, &manifest.config, store)?;
        let config = store
            .read_small(&manifest.config.digest, MAX_JSON_BYTES)
            .map_err(|source| RegistryError::Store {
                what: format!("config {}", manifest.config.digest),
                source,
            })?;
        let image =
            Image::from_raw(raw, media_type, config).map_err(|e| protocol(e.to_string()))?;
        let _ = store.write_bytes(image.raw_manifest());
        Ok(image)
    }
}

/// Whether the blob is in the store already. It still has to be the size
/// the manifest declares: one of another size is an error.
fn stored_already(
    origin: &Origin,
    desc: &Descriptor,
    store: &Store,
) -> Result<bool, RegistryError> {
    match store.blob_size(&desc.digest) {
        Ok(size) if size == desc.size => Ok(true),
        Ok(size) => Err(RegistryError::Store {
            what: format!("blob {}", desc.digest),
            source: StoreError::SizeMismatch {
                what: format!("blob {} from {}", desc.digest, origin.registry),
                expected: desc.size,
                actual: size,
            },
        }),
        Err(_) => Ok(false),
    }
}

/// A download that broke off: what to say before trying again, and the error when no try is left.
struct Broken {
    why: String,
    error: RegistryError,
}

fn header_text(response: &reqwest::blocking::Response, name: HeaderName) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Whether a `Content-Range` answer (`bytes FIRST-LAST/TOTAL`) is the rest
/// of a `size`-byte blob from byte `have` on.
fn range_continues(content_range: &str, have: u64, size: u64) -> bool {
    let Some((span, total)) = content_range
        .trim()
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('/'))
    else {
        return false;
    };
    let total_fits = total == "*" || total.parse::<u64>().ok() == Some(size);
    let span_fits = span
        .split_once('-')
        .and_then(|(first, last)| Some((first.parse::<u64>().ok()?, last.parse::<u64>().ok()?)))
        == Some((have, size - 1));
    total_fits && span_fits
}

fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct MediaTypeOnly {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<MediaTypeOnly>(bytes)
        .ok()?
        .media_type
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rest_of_the_blob_continues_a_download() {
        assert!(range_continues("bytes 900-999/1000", 900, 1000));
        assert!(range_continues("bytes 900-999/*", 900, 1000));
        assert!(!range_continues("bytes 0-999/1000", 900, 1000));
        assert!(!range_continues("bytes 900-998/1000", 900, 1000));
        assert!(!range_continues("bytes 900-999/1001", 900, 1000));
        assert!(!range_continues("900-999/1000", 900, 1000));
        assert!(!range_continues("", 900, 1000));
    }
}
