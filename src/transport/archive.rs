//! Local image transports: OCI layout folders, oci-archive tars and docker-save tarballs, read into the store and written from it.
//!
//! Readers import every blob they need into the store, checking each
//! against its digest, and hand back an `Artifact` whose blobs all resolve
//! there. Tar archives are read in one streaming pass (they may be
//! gzip-wrapped, so there is no seeking). Writers build their output in a
//! temporary file or folder beside the destination and rename it into
//! place, so a destination is either whole or untouched; blobs leave the
//! store through verifying readers, so a damaged store blob never reaches
//! an output. An existing layout folder is locked while it is added to, so
//! two processes writing the same layout both keep their tags.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};
use tempfile::NamedTempFile;

use crate::atomic;
use crate::digest::{Digest, HashingWriter, hash_sink};
use crate::gzip::{CompressPool, GzipWriter};
use crate::image::{
    self, Artifact, Descriptor, Format, Image, ImageError, ImageIndex, Index, Layer,
    MAX_JSON_BYTES, canonical_json, media,
};
use crate::reference::ImageRef;
use crate::store::{Store, StoreError};

/// Annotation holding a tag in an OCI layout's index.json.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation holding the full image name (containerd, Docker 25+).
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// What went wrong reading or writing a local transport.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a valid {kind}: {problem}")]
    Invalid {
        path: PathBuf,
        kind: &'static str,
        problem: String,
    },
    #[error("{path}: {problem}")]
    NotFound { path: PathBuf, problem: String },
    #[error("{path}: blob {digest} is missing")]
    MissingBlob { path: PathBuf, digest: Digest },
    #[error("{path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: ImageError,
    },
    #[error("{path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("{what} cannot hold an image index; pick one platform with --platform")]
    IndexUnsupported { what: &'static str },
}

impl ArchiveError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ArchiveError::Invalid { .. } | ArchiveError::MissingBlob { .. } => Some(
                "the file is damaged or was not written by a container tool; write it again".into(),
            ),
            ArchiveError::Store {
                source: StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. },
                ..
            } => Some("the archive is corrupt or was tampered with; do not use it".into()),
            ArchiveError::Store { source, .. } => source.hint(),
            ArchiveError::Write { path, source } if source.kind() == io::ErrorKind::StorageFull => {
                Some(format!(
                    "the disk holding {} is full (nothing was left half-written): free some space or write elsewhere",
                    path.display()
                ))
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- readers

/// Where the blobs of an OCI layout come from while it is resolved.
trait LayoutBlobs {
    /// Puts the described blob into the store (I/O), verified.
    fn import(&self, store: &Store, desc: &Descriptor) -> Result<(), ArchiveError>;
    fn origin(&self) -> &Path;
}

struct LayoutFolder {
    dir: PathBuf,
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
struct ImportedTar {
    path: PathBuf,
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

fn resolve_layout(
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

fn choose_descriptor<'a>(
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

fn resolve_descriptor(
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

fn declared_media_type(raw: &[u8], fallback: &str) -> String {
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

/// What one file in an archive turned out to be, once imported.
#[derive(Debug, Clone)]
struct ImportedFile {
    digest: Digest,
    size: u64,
    /// The diff-id when the file is a layer (plain, gzip or zstd tar).
    diff_id: Option<Digest>,
    compression: BlobCompression,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BlobCompression {
    None,
    Gzip,
    Zstd,
    NotTar,
}

struct ScannedTar {
    metadata: HashMap<String, Vec<u8>>,
    files: HashMap<String, ImportedFile>,
    links: HashMap<String, String>,
}

const METADATA_FILES: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];

/// One pass over a (possibly gzip-wrapped) tar, importing every file into the store (I/O).
fn scan_tar(path: &Path, store: &Store) -> Result<ScannedTar, ArchiveError> {
    let read_err = |source| ArchiveError::Read {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |problem: String| ArchiveError::Invalid {
        path: path.to_path_buf(),
        kind: "image archive",
        problem,
    };
    let mut file = BufReader::with_capacity(256 * 1024, File::open(path).map_err(read_err)?);
    let gzipped = file.fill_buf_starts_with(&[0x1f, 0x8b]).map_err(read_err)?;
    let reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut archive = tar::Archive::new(reader);
    let mut scanned = ScannedTar {
        metadata: HashMap::new(),
        files: HashMap::new(),
        links: HashMap::new(),
    };
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("cannot list entries: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| invalid(format!("the tar is damaged or truncated: {e}")))?;
        let raw_name = entry.path_bytes().into_owned();
        let name = safe_member_name(&raw_name).ok_or_else(|| {
            invalid(format!(
                "member `{}` has an absolute path or `..`; refusing to read it",
                String::from_utf8_lossy(&raw_name)
            ))
        })?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .ok_or_else(|| invalid(format!("link `{name}` has no target")))?;
            let base = if kind.is_symlink() {
                Path::new(&name)
                    .parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_default()
            } else {
                PathBuf::new()
            };
            let joined = base.join(String::from_utf8_lossy(&target).as_ref());
            let resolved = safe_member_name(joined.to_string_lossy().as_bytes())
                .ok_or_else(|| invalid(format!("link `{name}` points outside the archive")))?;
            scanned.links.insert(name, resolved);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        if METADATA_FILES.contains(&name.as_str()) {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_JSON_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| invalid(format!("cannot read {name}: {e}")))?;
            if bytes.len() as u64 > MAX_JSON_BYTES {
                return Err(invalid(format!(
                    "{name} is larger than {MAX_JSON_BYTES} bytes"
                )));
            }
            scanned.metadata.insert(name, bytes);
            continue;
        }
        let declared = entry
            .header()
            .size()
            .map_err(|e| invalid(format!("{name}: {e}")))?;
        let expected_digest = name
            .strip_prefix("blobs/sha256/")
            .map(|hex| format!("sha256:{hex}").parse::<Digest>())
            .transpose()
            .map_err(|_| invalid(format!("blob name `{name}` is not a sha256 digest")))?;
        let imported = import_member(store, &name, &mut entry, declared, expected_digest.as_ref())
            .map_err(|source| ArchiveError::Store {
                path: path.to_path_buf(),
                source,
            })?;
        scanned.files.insert(name, imported);
    }
    Ok(scanned)
}

trait PeekExt {
    fn fill_buf_starts_with(&mut self, magic: &[u8]) -> io::Result<bool>;
}

impl<R: Read> PeekExt for BufReader<R> {
    fn fill_buf_starts_with(&mut self, magic: &[u8]) -> io::Result<bool> {
        use io::BufRead;
        Ok(self.fill_buf()?.starts_with(magic))
    }
}

/// Normalises a tar member name; `None` when it is absolute or climbs out with `..`.
fn safe_member_name(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(text).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Streams one archive member into the store, learning what it is on the way.
fn import_member(
    store: &Store,
    name: &str,
    reader: &mut dyn Read,
    declared: u64,
    expected: Option<&Digest>,
) -> Result<ImportedFile, StoreError> {
    let mut head = Vec::with_capacity(512);
    reader
        .take(512)
        .read_to_end(&mut head)
        .map_err(|source| StoreError::Write {
            path: PathBuf::from(name),
            source,
        })?;
    let compression = if head.starts_with(&[0x1f, 0x8b]) {
        BlobCompression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        BlobCompression::Zstd
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        BlobCompression::None
    } else {
        BlobCompression::NotTar
    };
    let blob = store.writer()?;
    let write_err = |source| StoreError::Write {
        path: PathBuf::from(name),
        source,
    };
    let mut tee: Tee = match compression {
        BlobCompression::Gzip => Tee::Gzip(
            blob,
            Box::new(flate2::write::MultiGzDecoder::new(hash_sink())),
        ),
        BlobCompression::Zstd => Tee::Zstd(
            blob,
            zstd::stream::write::Decoder::new(hash_sink()).map_err(write_err)?,
        ),
        BlobCompression::None | BlobCompression::NotTar => Tee::Plain(blob),
    };
    tee.write_all(&head).map_err(write_err)?;
    let copied = head.len() as u64 + io::copy(reader, &mut tee).map_err(write_err)?;
    if copied != declared {
        return Err(StoreError::SizeMismatch {
            what: format!("archive member {name} (the archive is truncated or damaged)"),
            expected: declared,
            actual: copied,
        });
    }
    let (blob, diff_id) = tee.finish().map_err(write_err)?;
    let (digest, size) = match expected {
        Some(expected) => {
            let what = format!("archive member {name}");
            (blob.commit_expecting(&what, expected, declared)?, declared)
        }
        None => blob.commit()?,
    };
    let diff_id = match compression {
        BlobCompression::None => Some(digest.clone()),
        BlobCompression::NotTar => None,
        _ => diff_id,
    };
    Ok(ImportedFile {
        digest,
        size,
        diff_id,
        compression,
    })
}

/// Writes a member to the store while a decompressor computes its diff-id.
enum Tee {
    Plain(crate::store::BlobWriter),
    Gzip(
        crate::store::BlobWriter,
        Box<flate2::write::MultiGzDecoder<HashingWriter<io::Sink>>>,
    ),
    Zstd(
        crate::store::BlobWriter,
        zstd::stream::write::Decoder<'static, HashingWriter<io::Sink>>,
    ),
}

impl Tee {
    fn finish(self) -> io::Result<(crate::store::BlobWriter, Option<Digest>)> {
        match self {
            Tee::Plain(blob) => Ok((blob, None)),
            Tee::Gzip(blob, decoder) => {
                let (_, diff_id, _) = decoder.finish()?.finish();
                Ok((blob, Some(diff_id)))
            }
            Tee::Zstd(blob, mut decoder) => {
                decoder.flush()?;
                let (_, diff_id, _) = decoder.into_inner().finish();
                Ok((blob, Some(diff_id)))
            }
        }
    }
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Tee::Plain(blob) => blob.write(buf),
            Tee::Gzip(blob, decoder) => {
                blob.write_all(buf)?;
                decoder.write_all(buf)?;
                Ok(buf.len())
            }
            Tee::Zstd(blob, decoder) => {
                blob.write_all(buf)?;
                decoder.write_all(buf)?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Tee::Plain(blob) | Tee::Gzip(blob, _) | Tee::Zstd(blob, _) => blob.flush(),
        }
    }
}

#[derive(Deserialize)]
struct DockerSaveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn classic_docker_image(
    path: &Path,
    scanned: &ScannedTar,
    reference: Option<&ImageRef>,
    store: &Store,
) -> Result<(Image, Option<String>), ArchiveError> {
    let invalid = |problem: String| ArchiveError::Invalid {
        path: path.to_path_buf(),
        kind: "docker-archive",
        problem,
    };
    let raw = scanned
        .metadata
        .get("manifest.json")
        .ok_or_else(|| invalid("it has neither manifest.json nor index.json".into()))?;
    let entries: Vec<DockerSaveEntry> = serde_json::from_slice(raw)
        .map_err(|e| invalid(format!("manifest.json is not valid: {e}")))?;
    let all_tags: Vec<String> = entries
        .iter()
        .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
        .collect();
    let entry = match reference {
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
    })?;
    let lookup = |member: &str| -> Result<&ImportedFile, ArchiveError> {
        let mut name = safe_member_name(member.as_bytes())
            .ok_or_else(|| invalid(format!("bad path `{member}`")))?;
        for _ in 0..16 {
            match scanned.links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        scanned.files.get(&name).ok_or_else(|| {
            invalid(format!(
                "manifest.json names `{member}`, which is not in the archive"
            ))
        })
    };
    let config_file = lookup(&entry.config)?;
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
        return Err(invalid(format!(
            "the config lists {} layers but manifest.json lists {}",
            diff_ids.len(),
            entry.layers.len()
        )));
    }
    let mut format = Format::Docker;
    let mut layers = Vec::new();
    for (member, expected) in entry.layers.iter().zip(&diff_ids) {
        let file = lookup(member)?;
        let actual = file
            .diff_id
            .clone()
            .ok_or_else(|| invalid(format!("layer `{member}` is not a tar")))?;
        if actual != *expected {
            return Err(invalid(format!(
                "layer `{member}` has diff-id {actual}, but the config says {expected}"
            )));
        }
        // Uncompressed layers are gzipped, as crane and skopeo do: the manifest is
        // new anyway, and registries and pushes want compressed blobs.
        let (digest, size) =
            match file.compression {
                BlobCompression::None => crate::layer::gzip_stored_layer(store, &file.digest)
                    .map_err(|source| ArchiveError::Store {
                        path: path.to_path_buf(),
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
                return Err(invalid(format!("layer `{member}` is not a tar")));
            }
        };
        layers.push(Layer {
            descriptor: Descriptor::new(media_type, digest, size),
            diff_id: actual,
        });
    }
    let layers = match format {
        Format::Docker => layers,
        Format::Oci => layers
            .into_iter()
            .map(|mut l| {
                l.descriptor.media_type = Format::Oci
                    .layer_media_type(&l.descriptor.media_type)?
                    .to_string();
                Ok(l)
            })
            .collect::<Result<_, ImageError>>()
            .map_err(|source| ArchiveError::Image {
                path: path.to_path_buf(),
                source,
            })?,
    };
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

fn read_small_file(path: &Path) -> Result<Vec<u8>, ArchiveError> {
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

// ---------------------------------------------------------------- writers

/// A blob to write into an output: small JSON held in memory, layers streamed from the store.
enum OutBlob<'a> {
    Bytes(&'a [u8]),
    Stored(&'a Descriptor),
}

impl OutBlob<'_> {
    fn digest(&self) -> Digest {
        match self {
            OutBlob::Bytes(bytes) => Digest::of(bytes),
            OutBlob::Stored(desc) => desc.digest.clone(),
        }
    }

    fn size(&self) -> u64 {
        match self {
            OutBlob::Bytes(bytes) => bytes.len() as u64,
            OutBlob::Stored(desc) => desc.size,
        }
    }
}

fn image_blobs(image: &Image) -> Vec<OutBlob<'_>> {
    let mut blobs = vec![
        OutBlob::Bytes(image.raw_manifest()),
        OutBlob::Bytes(image.raw_config()),
    ];
    blobs.extend(
        image
            .layers()
            .iter()
            .map(|l| OutBlob::Stored(&l.descriptor)),
    );
    blobs
}

fn artifact_blobs(artifact: &Artifact) -> Vec<OutBlob<'_>> {
    match artifact {
        Artifact::Image(image) => image_blobs(image),
        Artifact::Index(index) => {
            let mut blobs = vec![OutBlob::Bytes(&index.raw)];
            for image in &index.images {
                blobs.extend(image_blobs(image));
            }
            blobs
        }
    }
}

fn oci_layout_file() -> Vec<u8> {
    canonical_json(&json!({"imageLayoutVersion": "1.0.0"}))
}

/// Adds the artifact to the OCI layout folder `dir` under `tag` (I/O), keeping its other tags; index.json is replaced atomically.
///
/// A new layout is built in a temp folder and renamed into place whole; an
/// existing one is locked (flock on the folder) for the whole update, so
/// concurrent writers queue instead of losing each other's index entries.
pub fn write_oci_layout(
    dir: &Path,
    tag: &str,
    artifact: &Artifact,
    store: &Store,
) -> Result<(), ArchiveError> {
    let write_err = |path: &Path, source| ArchiveError::Write {
        path: path.to_path_buf(),
        source,
    };
    if fs::symlink_metadata(dir).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        let parent = parent_dir(dir);
        fs::create_dir_all(&parent).map_err(|e| write_err(&parent, e))?;
        atomic::sweep_stale(&parent);
        let tmp = atomic::temp_dir_in(&parent).map_err(|e| write_err(&parent, e))?;
        fill_oci_layout(tmp.path(), tag, artifact, store)?;
        match tmp.persist(dir) {
            Ok(()) => return Ok(()),
            // Another process created the layout meanwhile: add to it like to any existing one.
            Err(_) if dir.is_dir() => {}
            Err(e) => return Err(write_err(dir, e)),
        }
    }
    let _lock = atomic::lock_folder(dir).map_err(|e| write_err(dir, e))?;
    atomic::sweep_stale(dir);
    atomic::sweep_stale(&dir.join("blobs").join("sha256"));
    fill_oci_layout(dir, tag, artifact, store)
}

/// Writes the blobs, then the marker, then index.json (I/O); the caller owns `dir` exclusively.
fn fill_oci_layout(
    dir: &Path,
    tag: &str,
    artifact: &Artifact,
    store: &Store,
) -> Result<(), ArchiveError> {
    let write_err = |path: &Path, source| ArchiveError::Write {
        path: path.to_path_buf(),
        source,
    };
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(|e| write_err(&blob_dir, e))?;
    for blob in artifact_blobs(artifact) {
        let target = blob_dir.join(blob.digest().hex());
        if fs::metadata(&target).is_ok_and(|m| m.len() == blob.size()) {
            continue;
        }
        if let OutBlob::Stored(desc) = &blob
            && fs::symlink_metadata(&target).is_err()
            && store.link_blob(&desc.digest, desc.size, &target)
        {
            continue;
        }
        let mut tmp = atomic::temp_file_in(&blob_dir).map_err(|e| write_err(&blob_dir, e))?;
        copy_blob(&blob, store, tmp.as_file_mut()).map_err(|e| sink_error(&target, e))?;
        tmp.persist(&target)
            .map_err(|e| write_err(&target, e.error))?;
    }
    let layout_marker = dir.join("oci-layout");
    if !layout_marker.is_file() {
        write_atomic(&layout_marker, &oci_layout_file())?;
    }
    let index_path = dir.join("index.json");
    let mut index: Value = if index_path.is_file() {
        let raw = read_small_file(&index_path)?;
        serde_json::from_slice(&raw).map_err(|e| ArchiveError::Invalid {
            path: index_path.clone(),
            kind: "OCI index",
            problem: format!("{e}; stowage will not overwrite it"),
        })?
    } else {
        json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []})
    };
    let mut descriptor = artifact.descriptor();
    descriptor.annotations.insert(REF_NAME.into(), tag.into());
    let descriptor = serde_json::to_value(&descriptor).map_err(|e| ArchiveError::Invalid {
        path: index_path.clone(),
        kind: "OCI index",
        problem: e.to_string(),
    })?;
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| ArchiveError::Invalid {
            path: index_path.clone(),
            kind: "OCI index",
            problem: "it has no manifests list; stowage will not overwrite it".into(),
        })?;
    manifests.retain(|m| {
        m.pointer("/annotations/org.opencontainers.image.ref.name")
            .and_then(Value::as_str)
            != Some(tag)
    });
    manifests.push(descriptor);
    write_atomic(&index_path, &canonical_json(&index))
}

/// Writes the artifact as an oci-archive tar at `path` (I/O), atomically.
pub fn write_oci_archive(
    path: &Path,
    tag: &str,
    artifact: &Artifact,
    store: &Store,
    mtime: u64,
) -> Result<(), ArchiveError> {
    let mut descriptor = artifact.descriptor();
    descriptor.annotations.insert(REF_NAME.into(), tag.into());
    let index = canonical_json(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [descriptor]
    }));
    let blobs = artifact_blobs(artifact);
    write_tar_atomic(
        path,
        false,
        mtime,
        store,
        &blobs,
        &[("index.json", &index), ("oci-layout", &oci_layout_file())],
    )
}

/// Writes a `docker save`-compatible tarball (gzip-wrapped when `path` ends in `.gz`) holding both manifest.json and an OCI layout (I/O), atomically.
pub fn write_docker_archive(
    path: &Path,
    reference: Option<&ImageRef>,
    image: &Image,
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
    let mut descriptor = image.descriptor();
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
    let blobs = image_blobs(image);
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

fn copy_blob(blob: &OutBlob<'_>, store: &Store, out: &mut dyn Write) -> io::Result<()> {
    io::copy(&mut open_out_blob(blob, store)?, out)?;
    Ok(())
}

fn write_tar_atomic(
    path: &Path,
    gzip: bool,
    mtime: u64,
    store: &Store,
    blobs: &[OutBlob<'_>],
    small_files: &[(&str, &[u8])],
) -> Result<(), ArchiveError> {
    let write_err = |source| ArchiveError::Write {
        path: path.to_path_buf(),
        source,
    };
    let parent = parent_dir(path);
    atomic::sweep_stale(&parent);
    let tmp = atomic::temp_file_in(&parent).map_err(write_err)?;
    let buffered = BufWriter::with_capacity(256 * 1024, tmp);
    let write_err = |source| sink_error(path, source);
    let pool = CompressPool::for_this_machine();
    let out = if gzip {
        TarOut::Gzip(Box::new(GzipWriter::new(
            buffered,
            &pool,
            crate::layer::GZIP_LEVEL,
        )))
    } else {
        TarOut::Plain(buffered)
    };
    let mut builder = tar::Builder::new(out);
    let mut written = std::collections::HashSet::new();
    for blob in blobs {
        let digest = blob.digest();
        if !written.insert(digest.clone()) {
            continue;
        }
        let mut header = member_header(blob.size(), mtime);
        let reader = open_out_blob(blob, store).map_err(write_err)?;
        builder
            .append_data(
                &mut header,
                format!("blobs/sha256/{}", digest.hex()),
                reader,
            )
            .map_err(write_err)?;
    }
    for (name, bytes) in small_files {
        let mut header = member_header(bytes.len() as u64, mtime);
        builder
            .append_data(&mut header, name, *bytes)
            .map_err(write_err)?;
    }
    let tmp = builder
        .into_inner()
        .and_then(TarOut::finish)
        .map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

/// A blob's bytes for an output; stored blobs are checked against their digest as they stream.
fn open_out_blob<'a>(blob: &OutBlob<'a>, store: &Store) -> io::Result<Box<dyn Read + 'a>> {
    match blob {
        OutBlob::Bytes(bytes) => Ok(Box::new(*bytes)),
        OutBlob::Stored(desc) => {
            let actual = store.blob_size(&desc.digest).map_err(io::Error::other)?;
            if actual != desc.size {
                return Err(io::Error::other(format!(
                    "stored blob {} is {actual} bytes, expected {}",
                    desc.digest, desc.size
                )));
            }
            let reader = store
                .open_verified(&desc.digest)
                .map_err(io::Error::other)?;
            Ok(Box::new(reader))
        }
    }
}

/// The error for a failed output write: a corrupt store blob met on the way is named as such.
fn sink_error(path: &Path, source: io::Error) -> ArchiveError {
    match StoreError::from_io(&source) {
        Some(StoreError::Corrupt { digest, actual }) => ArchiveError::Store {
            path: path.to_path_buf(),
            source: StoreError::Corrupt {
                digest: digest.clone(),
                actual: actual.clone(),
            },
        },
        _ => ArchiveError::Write {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// The temp file a tar output goes to, plain or gzip-wrapped.
enum TarOut<'p> {
    Plain(BufWriter<NamedTempFile>),
    Gzip(Box<GzipWriter<'p, BufWriter<NamedTempFile>>>),
}

impl TarOut<'_> {
    fn finish(self) -> io::Result<NamedTempFile> {
        let buffered = match self {
            TarOut::Plain(buffered) => buffered,
            TarOut::Gzip(gz) => gz.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

impl Write for TarOut<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            TarOut::Plain(out) => out.write(buf),
            TarOut::Gzip(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            TarOut::Plain(out) => out.flush(),
            TarOut::Gzip(out) => out.flush(),
        }
    }
}

fn member_header(size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_size(size);
    header
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` through a temp file and a rename (I/O).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
    atomic::write_file(path, bytes).map_err(|source| ArchiveError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Member<'a> {
        File(&'a str, Vec<u8>),
        Symlink(&'a str, &'a str),
    }

    fn write_tar(path: &Path, members: &[Member<'_>]) {
        let mut builder = tar::Builder::new(File::create(path).unwrap());
        for member in members {
            match member {
                Member::File(name, bytes) => {
                    let mut header = member_header(bytes.len() as u64, 0);
                    builder.append_data(&mut header, name, &bytes[..]).unwrap();
                }
                Member::Symlink(name, target) => {
                    let mut header = tar::Header::new_ustar();
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, name, target).unwrap();
                }
            }
        }
        builder.finish().unwrap();
    }

    /// A one-file layer tar and its bytes.
    fn layer_tar(content: &str) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = member_header(content.len() as u64, 0);
        builder
            .append_data(&mut header, "hello.txt", content.as_bytes())
            .unwrap();
        builder.into_inner().unwrap()
    }

    fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
        canonical_json(&json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Healthcheck": {"Test": ["CMD", "true"]}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
    }

    fn blob_name(bytes: &[u8]) -> String {
        format!("blobs/sha256/{}", Digest::of(bytes).hex())
    }

    fn setup() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        (dir, store)
    }

    #[test]
    fn docker25_archive_is_read_through_its_index_with_digests_kept() {
        let (dir, store) = setup();
        let layer = layer_tar("hi");
        let config = config_for(&[Digest::of(&layer)]);
        let manifest = canonical_json(&json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": Digest::of(&config), "size": config.len()},
            "layers": [{"mediaType": media::OCI_LAYER, "digest": Digest::of(&layer), "size": layer.len()}],
        }));
        let index = canonical_json(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": media::OCI_MANIFEST, "digest": Digest::of(&manifest), "size": manifest.len(),
            "annotations": {CONTAINERD_NAME: "docker.io/library/app:1", REF_NAME: "1"},
        }]}));
        let classic = canonical_json(&json!([{
            "Config": blob_name(&config), "RepoTags": ["app:1"], "Layers": [blob_name(&layer)],
        }]));
        let path = dir.path().join("d25.tar");
        write_tar(
            &path,
            &[
                Member::File(&blob_name(&layer), layer.clone()),
                Member::File(&blob_name(&config), config.clone()),
                Member::File(&blob_name(&manifest), manifest.clone()),
                Member::File("index.json", index),
                Member::File("manifest.json", classic),
                Member::File("oci-layout", oci_layout_file()),
            ],
        );
        let reference = ImageRef::parse("app:1").unwrap();
        for wanted in [None, Some(&reference)] {
            let Artifact::Image(image) = read_docker_archive(&path, wanted, &store).unwrap() else {
                panic!("expected an image");
            };
            assert_eq!(
                image.digest(),
                &Digest::of(&manifest),
                "the stored manifest is used as is"
            );
            assert_eq!(image.layers()[0].descriptor.media_type, media::OCI_LAYER);
            assert!(store.contains(&Digest::of(&layer)));
        }
        let other = ImageRef::parse("other:2").unwrap();
        let err = read_docker_archive(&path, Some(&other), &store).unwrap_err();
        assert!(err.to_string().contains("no image tagged"), "{err}");
    }

    #[test]
    fn classic_archive_with_shared_layer_symlink() {
        let (dir, store) = setup();
        let layer = layer_tar("shared");
        let diff_id = Digest::of(&layer);
        let config = config_for(&[diff_id.clone(), diff_id.clone()]);
        let path = dir.path().join("classic.tar.gz");
        let plain = dir.path().join("classic.tar");
        write_tar(
            &plain,
            &[
                Member::File("aaa/layer.tar", layer.clone()),
                Member::Symlink("bbb/layer.tar", "../aaa/layer.tar"),
                Member::File("cfg.json", config.clone()),
                Member::File(
                    "manifest.json",
                    canonical_json(
                        &json!([{"Config": "cfg.json", "RepoTags": null, "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}]),
                    ),
                ),
            ],
        );
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        io::copy(&mut File::open(&plain).unwrap(), &mut gz).unwrap();
        gz.finish().unwrap();
        let Artifact::Image(image) = read_docker_archive(&path, None, &store).unwrap() else {
            panic!("expected an image");
        };
        assert_eq!(image.media_type(), media::DOCKER_MANIFEST);
        assert_eq!(
            image.raw_config(),
            &config[..],
            "config bytes are kept exactly"
        );
        assert_eq!(image.layers().len(), 2);
        assert!(
            image.layers().iter().all(
                |l| l.diff_id == diff_id && l.descriptor.media_type == media::DOCKER_LAYER_GZIP
            )
        );
        assert_ne!(
            image.layers()[0].descriptor.digest,
            diff_id,
            "classic layers are gzipped on read"
        );
    }

    #[test]
    fn classic_archive_whose_layer_does_not_match_its_diff_id_is_refused() {
        let (dir, store) = setup();
        let layer = layer_tar("real");
        let config = config_for(&[Digest::of(&layer_tar("claimed"))]);
        let path = dir.path().join("lie.tar");
        write_tar(
            &path,
            &[
                Member::File("l/layer.tar", layer),
                Member::File("c.json", config),
                Member::File(
                    "manifest.json",
                    canonical_json(&json!([{"Config": "c.json", "Layers": ["l/layer.tar"]}])),
                ),
            ],
        );
        let err = read_docker_archive(&path, None, &store).unwrap_err();
        assert!(err.to_string().contains("diff-id"), "{err}");
    }

    #[test]
    fn hostile_member_names_are_refused() {
        let (dir, store) = setup();
        for name in ["../escape", "/etc/passwd", "a/../../b"] {
            let path = dir.path().join("hostile.tar");
            let mut raw = tar::Builder::new(Vec::new());
            let mut header = member_header(1, 0);
            // tar's own path setter refuses `..`, so write the name bytes directly.
            let bytes = name.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            header.set_cksum();
            raw.append(&header, &b"x"[..]).unwrap();
            fs::write(&path, raw.into_inner().unwrap()).unwrap();
            let err = read_docker_archive(&path, None, &store).unwrap_err();
            assert!(err.to_string().contains("refusing"), "{name}: {err}");
        }
    }

    #[test]
    fn truncated_archive_and_lying_blob_names_are_errors() {
        let (dir, store) = setup();
        let layer = layer_tar(&"x".repeat(5000));
        let path = dir.path().join("t.tar");
        write_tar(&path, &[Member::File(&blob_name(&layer), layer.clone())]);
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..full.len() / 2]).unwrap();
        let err = read_docker_archive(&path, None, &store).unwrap_err();
        assert!(
            err.to_string().contains("truncated") || err.to_string().contains("damaged"),
            "{err}"
        );

        let liar = format!("blobs/sha256/{}", Digest::of(b"something else").hex());
        write_tar(&path, &[Member::File(&liar, layer)]);
        let err = read_docker_archive(&path, None, &store).unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::Store {
                source: StoreError::DigestMismatch { .. },
                ..
            }
        ));
        assert!(!store.contains(&Digest::of(b"something else")));
    }

    fn sample_image(store: &Store, content: &str) -> Image {
        let layer = layer_tar(content);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&layer).unwrap();
        let gz = gz.finish().unwrap();
        let digest = store.write_bytes(&gz).unwrap();
        let layers = vec![Layer {
            descriptor: Descriptor::new(media::OCI_LAYER_GZIP, digest, gz.len() as u64),
            diff_id: Digest::of(&layer),
        }];
        Image::assemble(
            Format::Oci,
            config_for(&[Digest::of(&layer)]),
            layers,
            BTreeMap::new(),
        )
        .unwrap()
    }

    #[test]
    fn archives_written_read_back_with_the_same_digest() {
        let (dir, store) = setup();
        let image = sample_image(&store, "round trip");
        let reference = ImageRef::parse("acme/app:7").unwrap();
        for name in ["a.tar", "a.tar.gz"] {
            let path = dir.path().join(name);
            write_docker_archive(&path, Some(&reference), &image, &store, 1).unwrap();
            let fresh = Store::open(dir.path().join(format!("fresh-{name}"))).unwrap();
            let back = read_docker_archive(&path, Some(&reference), &fresh).unwrap();
            assert_eq!(back.digest(), image.digest(), "{name}");
        }
        let oci = dir.path().join("o.tar");
        write_oci_archive(&oci, "v1", &Artifact::Image(image.clone()), &store, 1).unwrap();
        assert_eq!(
            read_oci_archive(&oci, Some("v1"), &store, true)
                .unwrap()
                .digest(),
            image.digest()
        );
        // Nothing but the outputs is left in the folder: no stray temp files.
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("fresh") && n != "store")
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn a_corrupt_store_blob_never_reaches_an_output() {
        let (dir, store) = setup();
        let image = sample_image(&store, "to be damaged");
        let layer = image.layers()[0].descriptor.clone();
        let path = store.blob_path(&layer.digest);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let out = dir.path().join("out.tar");
        let err = write_docker_archive(&out, None, &image, &store, 1).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(err.hint().unwrap().contains("again"), "{err}");
        assert!(!out.exists() && !store.contains(&layer.digest));
        let layout = dir.path().join("layout");
        let err =
            write_oci_layout(&layout, "t", &Artifact::Image(image.clone()), &store).unwrap_err();
        assert!(
            matches!(err, ArchiveError::Write { .. } | ArchiveError::Store { .. }),
            "{err}"
        );
        assert!(!layout.exists(), "a new layout appears whole or not at all");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the store is left: {names:?}");
    }

    #[test]
    fn concurrent_writers_to_one_layout_keep_every_tag() {
        let (dir, store) = setup();
        let layout = dir.path().join("shared");
        let images: Vec<Image> = (0..6)
            .map(|i| sample_image(&store, &format!("image {i}")))
            .collect();
        std::thread::scope(|scope| {
            for (i, image) in images.iter().enumerate() {
                let (layout, store) = (&layout, &store);
                scope.spawn(move || {
                    write_oci_layout(
                        layout,
                        &format!("t{i}"),
                        &Artifact::Image(image.clone()),
                        store,
                    )
                    .unwrap()
                });
            }
        });
        for (i, image) in images.iter().enumerate() {
            let read = read_oci_layout(&layout, Some(&format!("t{i}")), &store, true).unwrap();
            assert_eq!(read.digest(), image.digest());
        }
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no temp folder is left: {names:?}");
    }

    #[test]
    fn layout_keeps_other_tags_and_replaces_the_same_tag() {
        let (dir, store) = setup();
        let layout = dir.path().join("layout");
        let first = sample_image(&store, "one");
        let second = sample_image(&store, "two");
        write_oci_layout(&layout, "a", &Artifact::Image(first.clone()), &store).unwrap();
        write_oci_layout(&layout, "b", &Artifact::Image(second.clone()), &store).unwrap();
        write_oci_layout(&layout, "a", &Artifact::Image(second.clone()), &store).unwrap();
        let index: Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
        for tag in ["a", "b"] {
            let read = read_oci_layout(&layout, Some(tag), &store, true).unwrap();
            assert_eq!(read.digest(), second.digest());
        }
        let err = read_oci_layout(&layout, None, &store, true).unwrap_err();
        assert!(
            err.to_string().contains("tags here: a, b")
                || err.to_string().contains("tags here: b, a"),
            "{err}"
        );
        let err = read_oci_layout(&layout, Some("zzz"), &store, true).unwrap_err();
        assert!(err.to_string().contains("no image tagged `zzz`"), "{err}");
    }
}
