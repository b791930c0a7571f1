//! Reading OCI layouts (a folder, or an oci-archive tar imported first) into the store, digests checked.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::tar_import::scan_tar;
use super::{ArchiveError, CONTAINERD_NAME, LayoutProblem, REF_NAME};
use crate::digest::Digest;
use crate::image::{self, Artifact, Descriptor, Image, ImageIndex, Index, MAX_JSON_BYTES, media};
use crate::reference::ImageRef;
use crate::store::{Store, StoreError};

/// Where the blobs of an OCI layout come from while it is resolved.
pub(super) trait LayoutBlobs {
    /// Puts the described blob into the store (I/O), verified.
    fn import(&self, store: &Store, desc: &Descriptor) -> Result<(), ArchiveError>;
    fn origin(&self) -> &Path;
}

pub(super) struct LayoutFolder {
    pub(super) dir: PathBuf,
}

impl LayoutBlobs for LayoutFolder {
    fn import(&self, store: &Store, desc: &Descriptor) -> Result<(), ArchiveError> {
        // A blob already in the store still has to be the size the layout declares.
        if let Ok(size) = store.blob_size(&desc.digest) {
            if size == desc.size {
                return Ok(());
            }
            return Err(ArchiveError::Store {
                path: self.dir.clone(),
                source: StoreError::SizeMismatch {
                    what: format!("blob {}", desc.digest),
                    expected: desc.size,
                    actual: size,
                },
            });
        }
        let path = self
            .dir
            .join("blobs")
            .join("sha256")
            .join(desc.digest.hex());
        let file = File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ArchiveError::MissingBlob {
                path: self.dir.clone(),
                digest: desc.digest.clone(),
            },
            _ => ArchiveError::Read {
                path: path.clone(),
                source,
            },
        })?;
        let what = format!("blob {}", path.display());
        store
            .write_from(
                &what,
                &mut BufReader::new(file),
                Some((&desc.digest, desc.size)),
            )
            .map_err(|source| ArchiveError::Store {
                path: self.dir.clone(),
                source,
            })?;
        Ok(())
    }

    fn origin(&self) -> &Path {
        &self.dir
    }
}

/// An archive already imported into the store by `scan_tar`.
pub(super) struct ImportedTar {
    pub(super) path: PathBuf,
}

impl LayoutBlobs for ImportedTar {
    fn import(&self, store: &Store, desc: &Descriptor) -> Result<(), ArchiveError> {
        match store.blob_size(&desc.digest) {
            Ok(size) if size == desc.size => Ok(()),
            Ok(size) => Err(ArchiveError::Invalid {
                path: self.path.clone(),
                kind: "image archive",
                problem: format!(
                    "blob {} is {size} bytes, but {} bytes are declared",
                    desc.digest, desc.size
                ),
            }),
            Err(_) => Err(ArchiveError::MissingBlob {
                path: self.path.clone(),
                digest: desc.digest.clone(),
            }),
        }
    }

    fn origin(&self) -> &Path {
        &self.path
    }
}

/// Reads `oci:DIR[:TAG]` into the store (I/O).
pub fn read_oci_layout(
    dir: &Path,
    tag: Option<&str>,
    store: &Store,
    with_layers: bool,
) -> Result<Artifact, ArchiveError> {
    let index_path = dir.join("index.json");
    let problem = match (dir.is_dir(), dir.exists(), index_path.exists()) {
        (true, _, true) => None,
        (true, _, false) => Some(LayoutProblem::NoIndex),
        (false, true, _) => Some(LayoutProblem::File),
        (false, false, _) => Some(LayoutProblem::Missing),
    };
    if let Some(problem) = problem {
        return Err(ArchiveError::NotLayout {
            path: dir.to_path_buf(),
            problem,
        });
    }
    let raw_index = read_small_file(&index_path)?;
    if !dir.join("oci-layout").is_file() {
        return Err(ArchiveError::Invalid {
            path: dir.to_path_buf(),
            kind: "OCI image layout",
            problem: "it has no oci-layout file".into(),
        });
    }
    let blobs = LayoutFolder {
        dir: dir.to_path_buf(),
    };
    resolve_layout(&raw_index, tag, None, &blobs, store, with_layers).map(|(artifact, _)| artifact)
}

/// Imports the layers of `image`, read earlier from the layout folder `dir` without them (I/O).
pub fn import_layout_layers(dir: &Path, image: &Image, store: &Store) -> Result<(), ArchiveError> {
    let blobs = LayoutFolder {
        dir: dir.to_path_buf(),
    };
    image
        .layers()
        .iter()
        .try_for_each(|layer| blobs.import(store, &layer.descriptor))
}

/// Reads `oci-archive:PATH[:TAG]` into the store (I/O).
pub fn read_oci_archive(
    path: &Path,
    tag: Option<&str>,
    store: &Store,
    with_layers: bool,
) -> Result<Artifact, ArchiveError> {
    let scanned = scan_tar(path, store)?;
    let raw_index = scanned
        .metadata
        .get("index.json")
        .ok_or_else(|| ArchiveError::Invalid {
            path: path.to_path_buf(),
            kind: "oci-archive",
            problem: "it has no index.json".into(),
        })?;
    let blobs = ImportedTar {
        path: path.to_path_buf(),
    };
    resolve_layout(raw_index, tag, None, &blobs, store, with_layers).map(|(artifact, _)| artifact)
}

pub(super) fn resolve_layout(
    raw_index: &[u8],
    tag: Option<&str>,
    reference: Option<&ImageRef>,
    blobs: &dyn LayoutBlobs,
    store: &Store,
    with_layers: bool,
) -> Result<(Artifact, Option<String>), ArchiveError> {
    let origin = blobs.origin().to_path_buf();
    let index: Index =
        image::parse_json("index.json", raw_index).map_err(|source| ArchiveError::Image {
            path: origin.clone(),
            source,
        })?;
    // index.json may itself be the multi-platform index: untagged manifests, one per platform.
    let per_platform = tag.is_none()
        && reference.is_none()
        && index.manifests.len() > 1
        && index
            .manifests
            .iter()
            .all(|d| image::is_manifest(&d.media_type) && d.platform.is_some());
    if per_platform {
        let mut images = Vec::new();
        for child in &index.manifests {
            if let Artifact::Image(image) = resolve_descriptor(child, blobs, store, with_layers)? {
                images.push(image);
            }
        }
        let artifact = Artifact::Index(ImageIndex {
            raw: raw_index.to_vec(),
            digest: Digest::of(raw_index),
            media_type: media::OCI_INDEX.to_string(),
            images,
        });
        return Ok((artifact, None));
    }
    let chosen = choose_descriptor(&index.manifests, tag, reference).map_err(|problem| {
        ArchiveError::NotFound {
            path: origin.clone(),
            problem,
        }
    })?;
    let name = chosen.annotations.get(CONTAINERD_NAME).cloned();
    resolve_descriptor(chosen, blobs, store, with_layers).map(|artifact| (artifact, name))
}

pub(super) fn choose_descriptor<'a>(
    manifests: &'a [Descriptor],
    tag: Option<&str>,
    reference: Option<&ImageRef>,
) -> Result<&'a Descriptor, String> {
    let tags: Vec<String> = manifests
        .iter()
        .filter_map(|d| d.annotations.get(REF_NAME).cloned())
        .collect();
    let found = match (reference, tag) {
        (Some(reference), _) => manifests.iter().find(|d| {
            d.annotations
                .get(CONTAINERD_NAME)
                .is_some_and(|n| *n == reference.to_string())
        }),
        (None, Some(tag)) => manifests
            .iter()
            .find(|d| d.annotations.get(REF_NAME).is_some_and(|t| t == tag)),
        (None, None) if manifests.len() == 1 => manifests.first(),
        (None, None) if manifests.is_empty() => return Err("it holds no image".into()),
        (None, None) => {
            return Err(format!(
                "it holds {} images; name one with a tag (tags here: {})",
                manifests.len(),
                if tags.is_empty() {
                    "none".into()
                } else {
                    tags.join(", ")
                }
            ));
        }
    };
    // A reference that matches no full name may still match by tag (tools differ in which annotation they write).
    let found = found.or_else(|| {
        let tag = tag?;
        manifests
            .iter()
            .find(|d| d.annotations.get(REF_NAME).is_some_and(|t| t == tag))
    });
    found.ok_or_else(|| {
        let wanted = reference
            .map(|r| r.to_string())
            .or(tag.map(str::to_string))
            .unwrap_or_default();
        format!(
            "no image tagged `{wanted}` (tags here: {})",
            if tags.is_empty() {
                "none".into()
            } else {
                tags.join(", ")
            }
        )
    })
}

pub(super) fn resolve_descriptor(
    desc: &Descriptor,
    blobs: &dyn LayoutBlobs,
    store: &Store,
    with_layers: bool,
) -> Result<Artifact, ArchiveError> {
    let origin = blobs.origin().to_path_buf();
    let store_err = |source| ArchiveError::Store {
        path: origin.clone(),
        source,
    };
    let image_err = |source| ArchiveError::Image {
        path: origin.clone(),
        source,
    };
    if desc.size > MAX_JSON_BYTES {
        return Err(ArchiveError::Invalid {
            path: origin.clone(),
            kind: "image layout",
            problem: format!("manifest {} claims {} bytes", desc.digest, desc.size),
        });
    }
    blobs.import(store, desc)?;
    let raw = store
        .read_small(&desc.digest, MAX_JSON_BYTES)
        .map_err(store_err)?;
    let media_type = declared_media_type(&raw, &desc.media_type);
    if image::is_index(&media_type) {
        let index: Index = image::parse_json("image index", &raw).map_err(image_err)?;
        let mut images = Vec::new();
        for child in &index.manifests {
            if !image::is_manifest(&child.media_type) {
                continue;
            }
            match resolve_descriptor(child, blobs, store, with_layers)? {
                Artifact::Image(image) => images.push(image),
                Artifact::Index(_) => {
                    return Err(ArchiveError::Invalid {
                        path: origin.clone(),
                        kind: "image index",
                        problem: "an index nested in an index is not supported".into(),
                    });
                }
            }
        }
        return Ok(Artifact::Index(ImageIndex {
            digest: desc.digest.clone(),
            raw,
            media_type,
            images,
        }));
    }
    let manifest: image::Manifest = image::parse_json("image manifest", &raw).map_err(image_err)?;
    if manifest.config.size > MAX_JSON_BYTES {
        return Err(ArchiveError::Invalid {
            path: origin.clone(),
            kind: "image",
            problem: format!(
                "config {} claims {} bytes",
                manifest.config.digest, manifest.config.size
            ),
        });
    }
    blobs.import(store, &manifest.config)?;
    let config = store
        .read_small(&manifest.config.digest, MAX_JSON_BYTES)
        .map_err(store_err)?;
    if with_layers {
        for layer in &manifest.layers {
            blobs.import(store, layer)?;
        }
    }
    Image::from_raw(raw, &media_type, config)
        .map(Artifact::Image)
        .map_err(image_err)
}

pub(super) fn declared_media_type(raw: &[u8], fallback: &str) -> String {
    #[derive(Deserialize)]
    struct MediaTypeOnly {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<MediaTypeOnly>(raw)
        .ok()
        .and_then(|m| m.media_type)
        .unwrap_or_else(|| fallback.to_string())
}

pub(super) fn read_small_file(path: &Path) -> Result<Vec<u8>, ArchiveError> {
    let file = File::open(path).map_err(|source| ArchiveError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ArchiveError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_JSON_BYTES {
        return Err(ArchiveError::Invalid {
            path: path.to_path_buf(),
            kind: "metadata file",
            problem: format!("it is larger than {MAX_JSON_BYTES} bytes"),
        });
    }
    Ok(bytes)
}
