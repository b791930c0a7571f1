//! Writing OCI layouts and oci-archives, and the tar plumbing every archive writer shares: built beside the destination, renamed into place.

use std::fs::{self};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::NamedTempFile;

use super::read::read_small_file;
use super::{ArchiveError, REF_NAME, write_atomic};
use crate::atomic;
use crate::digest::Digest;
use crate::gzip::{CompressPool, GzipWriter};
use crate::image::{Artifact, Descriptor, Image, ImageIndex, canonical_json, media};
use crate::store::{Store, StoreError};

/// A blob to write into an output: small JSON held in memory, layers streamed from the store.
pub(super) enum OutBlob<'a> {
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

pub(super) fn image_blobs(image: &Image) -> Vec<OutBlob<'_>> {
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

pub(super) fn artifact_blobs(artifact: &Artifact) -> Vec<OutBlob<'_>> {
    match artifact {
        Artifact::Image(image) => image_blobs(image),
        Artifact::Index(index) => index_blobs(index),
    }
}

pub(super) fn index_blobs(index: &ImageIndex) -> Vec<OutBlob<'_>> {
    let mut blobs = vec![OutBlob::Bytes(&index.raw)];
    for image in &index.images {
        blobs.extend(image_blobs(image));
    }
    blobs
}

pub(super) fn oci_layout_file() -> Vec<u8> {
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
pub(super) fn fill_oci_layout(
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
    let old = if index_path.is_file() {
        Some(read_small_file(&index_path)?)
    } else {
        None
    };
    let mut index: Value = match &old {
        Some(raw) => serde_json::from_slice(raw).map_err(|e| ArchiveError::Invalid {
            path: index_path.clone(),
            kind: "OCI index",
            problem: format!("{e}; stowage will not overwrite it"),
        })?,
        None => json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []}),
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
    let new = canonical_json(&index);
    // A rebuild with nothing changed gives the same index: not rewritten (nor synced) then.
    if old.as_deref() == Some(new.as_slice()) {
        return Ok(());
    }
    write_atomic(&index_path, &new)
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

pub(super) fn copy_blob(blob: &OutBlob<'_>, store: &Store, out: &mut dyn Write) -> io::Result<()> {
    io::copy(&mut open_out_blob(blob, store)?, out)?;
    Ok(())
}

pub(super) fn write_tar_atomic(
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
pub(super) fn open_out_blob<'a>(
    blob: &OutBlob<'a>,
    store: &Store,
) -> io::Result<Box<dyn Read + 'a>> {
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
pub(super) fn sink_error(path: &Path, source: io::Error) -> ArchiveError {
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
pub(super) enum TarOut<'p> {
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

pub(super) fn member_header(size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_size(size);
    header
}

pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
