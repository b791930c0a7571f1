//! One streaming pass over a tar (plain, gzip or zstd): every member imported into the store, metadata files kept.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use super::ArchiveError;
use crate::digest::{Digest, HashingWriter, hash_sink};
use crate::image::MAX_JSON_BYTES;
use crate::store::{Store, StoreError};
use crate::tar_read::TarReader;

/// What one file in an archive turned out to be, once imported.
#[derive(Debug, Clone)]
pub(super) struct ImportedFile {
    pub(super) digest: Digest,
    pub(super) size: u64,
    /// The diff-id when the file is a layer (plain, gzip or zstd tar).
    pub(super) diff_id: Option<Digest>,
    pub(super) compression: BlobCompression,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BlobCompression {
    None,
    Gzip,
    Zstd,
    NotTar,
}

pub(super) struct ScannedTar {
    pub(super) metadata: HashMap<String, Vec<u8>>,
    pub(super) files: HashMap<String, ImportedFile>,
    pub(super) links: HashMap<String, String>,
}

pub(super) const METADATA_FILES: [&str; 4] =
    ["manifest.json", "index.json", "oci-layout", "repositories"];

/// One pass over a (possibly gzip-wrapped) tar, importing every file into the store (I/O).
pub(super) fn scan_tar(path: &Path, store: &Store) -> Result<ScannedTar, ArchiveError> {
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
    let mut archive = TarReader::new(reader);
    let mut scanned = ScannedTar {
        metadata: HashMap::new(),
        files: HashMap::new(),
        links: HashMap::new(),
    };
    while let Some(entry) = archive
        .next_entry()
        .map_err(|e| invalid(format!("the tar is damaged or truncated: {e}")))?
    {
        let name = safe_member_name(&entry.name).ok_or_else(|| {
            invalid(format!(
                "member `{}` has an absolute path or `..`; refusing to read it",
                String::from_utf8_lossy(&entry.name)
            ))
        })?;
        if entry.is_symlink() || entry.is_hard_link() {
            let target = entry.link_name.clone();
            if target.is_empty() {
                return Err(invalid(format!("link `{name}` has no target")));
            }
            let base = if entry.is_symlink() {
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
        if !entry.is_file() {
            continue;
        }
        if METADATA_FILES.contains(&name.as_str()) {
            let mut bytes = Vec::new();
            (&mut archive)
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
        let declared = entry.data_size();
        let expected_digest = name
            .strip_prefix("blobs/sha256/")
            .map(|hex| format!("sha256:{hex}").parse::<Digest>())
            .transpose()
            .map_err(|_| invalid(format!("blob name `{name}` is not a sha256 digest")))?;
        let mut data = EndsAtCut(&mut archive);
        let imported = import_member(store, &name, &mut data, declared, expected_digest.as_ref())
            .map_err(|source| ArchiveError::Store {
            path: path.to_path_buf(),
            source,
        })?;
        scanned.files.insert(name, imported);
    }
    Ok(scanned)
}

/// A member's data that stops where the archive was cut, so the size check
/// below reports a truncated archive rather than a failed store write.
struct EndsAtCut<R>(R);

impl<R: Read> Read for EndsAtCut<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

pub(super) trait PeekExt {
    fn fill_buf_starts_with(&mut self, magic: &[u8]) -> io::Result<bool>;
}

/// Normalises a tar member name; `None` when it is absolute or climbs out with `..`.
pub(super) fn safe_member_name(raw: &[u8]) -> Option<String> {
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
pub(super) fn import_member(
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
    } else if crate::tar_read::starts_like_a_tar(&head) {
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
pub(super) enum Tee {
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

impl<R: Read> PeekExt for BufReader<R> {
    fn fill_buf_starts_with(&mut self, magic: &[u8]) -> io::Result<bool> {
        use io::BufRead;
        Ok(self.fill_buf()?.starts_with(magic))
    }
}
