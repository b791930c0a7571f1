//! docker-save tarballs: read in either form (classic `manifest.json`, or Docker 25+ with an OCI layout inside), and written with both.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use super::read::{ImportedTar, resolve_layout};
use super::tar_import::{BlobCompression, ImportedFile, ScannedTar, safe_member_name, scan_tar};
use super::write::{image_blobs, index_blobs, oci_layout_file, write_tar_atomic};
use super::{ArchiveError, CONTAINERD_NAME, REF_NAME};
use crate::digest::Digest;
use crate::image::{
    self, Artifact, Descriptor, Format, Image, ImageIndex, Layer, MAX_JSON_BYTES, canonical_json,
    media,
};
use crate::reference::ImageRef;
use crate::store::Store;

/// Reads `docker-archive:PATH[:REF]` into the store (I/O): Docker 25+ archives through their OCI index, classic ones through manifest.json.
pub fn read_docker_archive(
    path: &Path,
    reference: Option<&ImageRef>,
    store: &Store,
) -> Result<Artifact, ArchiveError> {
    read_docker_archive_named(path, reference, store).map(|(artifact, _)| artifact)
}

/// Like `read_docker_archive`, also giving the image's full name as the archive records it (a RepoTag or containerd name).
pub fn read_docker_archive_named(
    path: &Path,
    reference: Option<&ImageRef>,
    store: &Store,
) -> Result<(Artifact, Option<String>), ArchiveError> {
    let scanned = scan_tar(path, store)?;
    if let Some(raw_index) = scanned.metadata.get("index.json") {
        let blobs = ImportedTar {
            path: path.to_path_buf(),
        };
        let tag = reference.map(|r| r.tag_or_latest().to_string());
        let resolved = resolve_layout(raw_index, tag.as_deref(), reference, &blobs, store, true);
        // An index whose blobs are not in the tar (older tools write only manifest.json
        // beside a stub) falls back to the classic description.
        match resolved {
            Ok(found) => return Ok(found),
            Err(err) if !scanned.metadata.contains_key("manifest.json") => return Err(err),
            Err(ArchiveError::MissingBlob { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    classic_docker_image(path, &scanned, reference, store)
        .map(|(image, name)| (Artifact::Image(image), name))
}

#[derive(Deserialize)]
pub(super) struct DockerSaveEntry {
    #[serde(rename = "Config")]
    pub(super) config: String,
    #[serde(rename = "RepoTags", default)]
    pub(super) repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub(super) layers: Vec<String>,
}

pub(super) fn classic_docker_image(
    path: &Path,
    scanned: &ScannedTar,
    reference: Option<&ImageRef>,
    store: &Store,
) -> Result<(Image, Option<String>), ArchiveError> {
    let members = Members { path, scanned };
    let raw = scanned
        .metadata
        .get("manifest.json")
        .ok_or_else(|| members.invalid("it has neither manifest.json nor index.json".into()))?;
    let entries: Vec<DockerSaveEntry> = serde_json::from_slice(raw)
        .map_err(|e| members.invalid(format!("manifest.json is not valid: {e}")))?;
    let entry = choose_entry(path, &entries, reference)?;
    let config_file = members.lookup(&entry.config)?;
    let raw_config = store
        .read_small(&config_file.digest, MAX_JSON_BYTES)
        .map_err(|source| ArchiveError::Store {
            path: path.to_path_buf(),
            source,
        })?;
    let diff_ids = image::config_diff_ids(&raw_config).map_err(|source| ArchiveError::Image {
        path: path.to_path_buf(),
        source,
    })?;
    if diff_ids.len() != entry.layers.len() {
        return Err(members.invalid(format!(
            "the config lists {} layers but manifest.json lists {}",
            diff_ids.len(),
            entry.layers.len()
        )));
    }
    let (format, layers) = classic_layers(&members, entry, &diff_ids, store)?;
    let name = entry
        .repo_tags
        .iter()
        .flatten()
        .find_map(|t| ImageRef::parse(t).ok())
        .map(|r| r.to_string());
    let image = Image::assemble(format, raw_config, layers, BTreeMap::new()).map_err(|source| {
        ArchiveError::Image {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok((image, name))
}

/// The members of a scanned docker-save tarball, looked up by the names its manifest.json uses.
struct Members<'a> {
    path: &'a Path,
    scanned: &'a ScannedTar,
}

impl Members<'_> {
    fn invalid(&self, problem: String) -> ArchiveError {
        ArchiveError::Invalid {
            path: self.path.to_path_buf(),
            kind: "docker-archive",
            problem,
        }
    }

    /// The imported file `member` names, following symlinks (docker save links repeated layers).
    fn lookup(&self, member: &str) -> Result<&ImportedFile, ArchiveError> {
        let mut name = safe_member_name(member.as_bytes())
            .ok_or_else(|| self.invalid(format!("bad path `{member}`")))?;
        for _ in 0..16 {
            match self.scanned.links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        self.scanned.files.get(&name).ok_or_else(|| {
            self.invalid(format!(
                "manifest.json names `{member}`, which is not in the archive"
            ))
        })
    }
}

/// The manifest.json entry `reference` names, or the only one.
fn choose_entry<'a>(
    path: &Path,
    entries: &'a [DockerSaveEntry],
    reference: Option<&ImageRef>,
) -> Result<&'a DockerSaveEntry, ArchiveError> {
    let all_tags: Vec<String> = entries
        .iter()
        .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
        .collect();
    match reference {
        Some(reference) => entries.iter().find(|e| {
            e.repo_tags
                .iter()
                .flatten()
                .any(|t| ImageRef::parse(t).is_ok_and(|r| r == *reference))
        }),
        None if entries.len() == 1 => entries.first(),
        None => {
            return Err(ArchiveError::NotFound {
                path: path.to_path_buf(),
                problem: format!(
                    "it holds {} images; name one as docker-archive:PATH:REF (tags here: {})",
                    entries.len(),
                    all_tags.join(", ")
                ),
            });
        }
    }
    .ok_or_else(|| ArchiveError::NotFound {
        path: path.to_path_buf(),
        problem: format!(
            "no image tagged `{}` (tags here: {})",
            reference.map(|r| r.to_string()).unwrap_or_default(),
            if all_tags.is_empty() {
                "none".into()
            } else {
                all_tags.join(", ")
            }
        ),
    })
}

/// The entry's layers, each checked against the config's diff-id; OCI when any is zstd.
fn classic_layers(
    members: &Members<'_>,
    entry: &DockerSaveEntry,
    diff_ids: &[Digest],
    store: &Store,
) -> Result<(Format, Vec<Layer>), ArchiveError> {
    let mut format = Format::Docker;
    let mut layers = Vec::new();
    for (member, expected) in entry.layers.iter().zip(diff_ids) {
        let file = members.lookup(member)?;
        let actual = file
            .diff_id
            .clone()
            .ok_or_else(|| members.invalid(format!("layer `{member}` is not a tar")))?;
        if actual != *expected {
            return Err(members.invalid(format!(
                "layer `{member}` has diff-id {actual}, but the config says {expected}"
            )));
        }
        // Uncompressed layers are gzipped, as crane and skopeo do: the manifest is
        // new anyway, and registries and pushes want compressed blobs.
        let (digest, size) =
            match file.compression {
                BlobCompression::None => crate::layer::gzip_stored_layer(store, &file.digest)
                    .map_err(|source| ArchiveError::Store {
                        path: members.path.to_path_buf(),
                        source,
                    })?,
                _ => (file.digest.clone(), file.size),
            };
        let media_type = match file.compression {
            BlobCompression::Gzip | BlobCompression::None => media::DOCKER_LAYER_GZIP,
            BlobCompression::Zstd => {
                format = Format::Oci;
                media::OCI_LAYER_ZSTD
            }
            BlobCompression::NotTar => {
                return Err(members.invalid(format!("layer `{member}` is not a tar")));
            }
        };
        layers.push(Layer {
            descriptor: Descriptor::new(media_type, digest, size),
            diff_id: actual,
        });
    }
    if format == Format::Oci {
        for layer in &mut layers {
            layer.descriptor.media_type = Format::Oci
                .layer_media_type(&layer.descriptor.media_type)
                .map_err(|source| ArchiveError::Image {
                    path: members.path.to_path_buf(),
                    source,
                })?
                .to_string();
        }
    }
    Ok((format, layers))
}

/// Writes a `docker save`-compatible tarball (gzip-wrapped when `path` ends in `.gz`) holding both manifest.json and an OCI layout (I/O), atomically.
pub fn write_docker_archive(
    path: &Path,
    reference: Option<&ImageRef>,
    image: &Image,
    attested: Option<&ImageIndex>,
    store: &Store,
    mtime: u64,
) -> Result<(), ArchiveError> {
    let repo_tags: Vec<String> = reference.map(|r| r.familiar()).into_iter().collect();
    let blob_path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let manifest_json = canonical_json(&json!([{
        "Config": blob_path(&image.config_descriptor().digest),
        "RepoTags": repo_tags,
        "Layers": image.layers().iter().map(|l| blob_path(&l.descriptor.digest)).collect::<Vec<_>>(),
    }]));
    // With attestations, the OCI index names the index that holds them; manifest.json
    // still names only the runnable image, which is all `docker load` reads.
    let (mut descriptor, blobs) = match attested {
        Some(index) => {
            let artifact = Artifact::Index(index.clone());
            (artifact.descriptor(), index_blobs(index))
        }
        None => (image.descriptor(), image_blobs(image)),
    };
    if let Some(reference) = reference {
        descriptor
            .annotations
            .insert(CONTAINERD_NAME.into(), reference.to_string());
        descriptor
            .annotations
            .insert(REF_NAME.into(), reference.tag_or_latest().into());
    }
    let index = canonical_json(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [descriptor]
    }));
    let gzip = path.extension().is_some_and(|e| e == "gz");
    write_tar_atomic(
        path,
        gzip,
        mtime,
        store,
        &blobs,
        &[
            ("index.json", &index),
            ("manifest.json", &manifest_json),
            ("oci-layout", &oci_layout_file()),
        ],
    )
}
