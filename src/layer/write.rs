//! Writing a planned layer: one streaming pass tar → secret scan → compress → hash → store, with no layer held in memory.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use super::progress::LayerProgress;
use super::progress::Ticker;
use super::relocate::{self, Relocation};
use super::{
    BaseFolders, BuiltLayer, Compression, Entry, EntryKind, GZIP_LEVEL, LAYER_FORMAT_VERSION,
    LayerError, LayerPlan, ZSTD_LEVEL,
};
use crate::digest::{Digest, HashingWriter};
use crate::gzip::{CompressPool, FileMarks, GzipWriter};
use crate::scan::{Scanner, Tee};
use crate::store::{Store, StoreError};

/// gzips an uncompressed layer already in the store, once: the result is remembered by diff-id (I/O).
pub fn gzip_stored_layer(store: &Store, diff_id: &Digest) -> Result<(Digest, u64), StoreError> {
    // The alias names the format version: a store filled by an older stowage
    // must not hand back bytes this one would not write.
    let alias = format!("gzip-v{}", LAYER_FORMAT_VERSION);
    if let Some(digest) = store.read_compressed_alias(diff_id, &alias) {
        let size = store.blob_size(&digest)?;
        return Ok((digest, size));
    }
    let mut source = io::BufReader::with_capacity(256 * 1024, store.open_blob(diff_id)?);
    let blob = store.writer()?;
    let pool = CompressPool::for_this_machine();
    let mut gz = GzipWriter::new(blob, &pool, GZIP_LEVEL);
    let write_err = |source| StoreError::Write {
        path: store.temp_dir(),
        source,
    };
    io::copy(&mut source, &mut gz).map_err(write_err)?;
    let (digest, size) = gz.finish().map_err(write_err)?.commit()?;
    store.write_compressed_alias(diff_id, &alias, &digest)?;
    Ok((digest, size))
}

/// How the layers of one build are written: the same for each of them.
#[derive(Clone, Copy)]
pub struct WriteSettings<'a> {
    pub compression: Compression,
    /// Modification time of every entry.
    pub mtime: u64,
    /// What the base has at the layers' defaulted ancestor folders (empty: the defaults stay).
    pub base_folders: &'a BaseFolders,
    /// The compression threads.
    pub pool: &'a CompressPool,
    /// Where the bytes read are reported; None reports nothing.
    pub progress: Option<&'a dyn LayerProgress>,
}

/// Writes the planned layer into the store (I/O) and returns its digests; gzip runs on `pool`.
/// The bytes read go to `settings.progress` as they are read; its `started`
/// and `finished` are the caller's to call (`write_layers` does).
pub fn write_layer(
    plan: &LayerPlan,
    store: &Store,
    settings: &WriteSettings<'_>,
) -> Result<BuiltLayer, LayerError> {
    let WriteSettings {
        compression,
        mtime,
        base_folders,
        pool,
        progress,
    } = *settings;
    let ticker = progress.map(|progress| Ticker::new(progress, &plan.name));
    let write_err = |source: io::Error| LayerError::Write {
        layer: plan.name.clone(),
        source,
    };
    let blob = store.writer()?;
    let mut scanner = plan.secret_scan.as_ref().map(Scanner::new);
    let (blob, diff_id) = match compression {
        Compression::Gzip => {
            let gz = GzipWriter::new(blob, pool, GZIP_LEVEL);
            let marks = gz.file_marks();
            let (gz, diff_id) = write_tar(
                plan,
                gz,
                (mtime, base_folders),
                scanner.as_mut(),
                Some(marks),
                ticker.as_ref(),
            )?;
            (gz.finish().map_err(write_err)?, diff_id)
        }
        Compression::Zstd => {
            let zst = zstd::stream::Encoder::new(blob, ZSTD_LEVEL).map_err(write_err)?;
            let (zst, diff_id) = write_tar(
                plan,
                zst,
                (mtime, base_folders),
                scanner.as_mut(),
                None,
                ticker.as_ref(),
            )?;
            (zst.finish().map_err(write_err)?, diff_id)
        }
    };
    let (digest, size) = blob.commit()?;
    Ok(BuiltLayer {
        name: plan.name.clone(),
        digest,
        diff_id,
        size,
        compression,
        entry_count: plan.entry_count_over(base_folders),
        file_count: plan.file_count,
        cached: false,
        findings: scanner.map(Scanner::into_findings).unwrap_or_default(),
    })
}

/// Writes the tar stream of `plan` into `out` and returns `out` with the diff-id;
/// every file's bytes also pass through `scanner` on their way into the tar,
/// and where each file's contents lie in the stream goes to `marks`; the
/// count of content bytes read goes to `ticker`.
pub(super) fn write_tar<W: Write>(
    plan: &LayerPlan,
    out: W,
    (mtime, base): (u64, &BaseFolders),
    mut scanner: Option<&mut Scanner>,
    marks: Option<FileMarks>,
    ticker: Option<&Ticker<'_>>,
) -> Result<(W, Digest), LayerError> {
    let write_err = |source: io::Error| LayerError::Write {
        layer: plan.name.clone(),
        source,
    };
    // Large buffer: the tar crate issues many small writes (headers, padding)
    // that would otherwise each go through the hasher and compressor.
    let hashed = HashingWriter::new(out);
    let position = Rc::new(Cell::new(0));
    let counted = Counting {
        inner: BufWriter::with_capacity(256 * 1024, hashed),
        position: Rc::clone(&position),
    };
    let marker = marks.map(|marks| ContentMarker { marks, position });
    let mut builder = tar::Builder::new(counted);
    // Holes would become GNU sparse entries, which not every unpacker reads.
    builder.sparse(false);
    for entry in plan.entries_over(base) {
        append_entry(
            &mut builder,
            &entry,
            mtime,
            scanner.as_deref_mut(),
            marker.as_ref(),
            ticker,
            plan.relocation.as_ref(),
        )
        .map_err(|e| match e {
            AppendError::Source(err) => err,
            AppendError::Io(source) => write_err(source),
        })?;
    }
    if let Some(ticker) = ticker {
        ticker.flush();
    }
    let buffered = builder.into_inner().map_err(write_err)?.inner;
    let hashed = buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    let (out, diff_id, _) = hashed.finish();
    Ok((out, diff_id))
}

pub(super) enum AppendError {
    Source(LayerError),
    Io(io::Error),
}

/// Counts the bytes the tar builder has written, so a file's contents can be located in the stream.
pub(super) struct Counting<W> {
    pub(super) inner: W,
    pub(super) position: Rc<Cell<u64>>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.position.set(self.position.get() + written as u64);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Tells the compressor where each file's contents start and how long they are.
pub(super) struct ContentMarker {
    pub(super) marks: FileMarks,
    pub(super) position: Rc<Cell<u64>>,
}

pub(super) fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    entry: &Entry,
    mtime: u64,
    scanner: Option<&mut Scanner>,
    marker: Option<&ContentMarker>,
    ticker: Option<&Ticker<'_>>,
    relocation: Option<&Relocation>,
) -> Result<(), AppendError> {
    let rewrite = entry.rewrite.zip(relocation);
    let mut header = tar::Header::new_gnu();
    header.set_mode(entry.mode);
    header.set_uid(entry.owner.uid);
    header.set_gid(entry.owner.gid);
    header.set_mtime(mtime);
    header.set_size(0);
    let path = OsStr::from_bytes(&entry.path);
    let appended = match &entry.kind {
        EntryKind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            let mut dir_path = entry.path.to_vec();
            dir_path.push(b'/');
            builder.append_data(&mut header, OsStr::from_bytes(&dir_path), io::empty())
        }
        EntryKind::Symlink { target } => {
            header.set_entry_type(tar::EntryType::Symlink);
            let relocated = rewrite.and_then(|(_, r)| relocate::link_target(target, r));
            let target = relocated.as_deref().unwrap_or(target);
            builder.append_link(&mut header, path, OsStr::from_bytes(target))
        }
        EntryKind::HardLink { to } => {
            if let Some(scanner) = scanner {
                scanner.link(&entry.path);
            }
            header.set_entry_type(tar::EntryType::Link);
            builder.append_link(&mut header, path, OsStr::from_bytes(to))
        }
        EntryKind::File { size } if rewrite.is_some() => {
            let Some((kind, relocation)) = rewrite else {
                return Err(AppendError::Source(LayerError::Internal(
                    "a rewrite without a relocation",
                )));
            };
            let bytes = relocate::rewritten_file(entry, *size, kind, relocation)
                .map_err(AppendError::Source)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            let mut reader = MemoryReader {
                rest: &bytes,
                marker,
                ticker,
            };
            append_scanned(builder, &mut header, &entry.path, &mut reader, scanner)
        }
        EntryKind::File { size } => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(*size);
            let disk = entry.disk();
            let file = File::open(&disk).map_err(|source| {
                AppendError::Source(LayerError::Read {
                    path: disk.clone(),
                    source,
                })
            })?;
            let mut reader = ExactReader {
                inner: file,
                remaining: *size,
                path: &disk,
                changed: false,
                marker,
                ticker,
            };
            let result = append_scanned(builder, &mut header, &entry.path, &mut reader, scanner);
            if reader.changed {
                return Err(AppendError::Source(LayerError::Changed {
                    path: disk.clone(),
                }));
            }
            result.map_err(|source| match source.kind() {
                io::ErrorKind::Other if source.get_ref().is_some_and(|e| e.is::<ReadFailure>()) => {
                    AppendError::Source(LayerError::Read {
                        path: disk.clone(),
                        source,
                    })
                }
                _ => AppendError::Io(source),
            })?;
            return Ok(());
        }
    };
    appended.map_err(AppendError::Io)
}

/// Appends a file's contents from `reader`, through the secret scan when there is one.
fn append_scanned<W: Write, R: Read>(
    builder: &mut tar::Builder<W>,
    header: &mut tar::Header,
    path: &[u8],
    reader: &mut R,
    scanner: Option<&mut Scanner>,
) -> io::Result<()> {
    let name = OsStr::from_bytes(path);
    match scanner {
        Some(scanner) => {
            let mut scan = scanner.file(path);
            let mut tee = Tee {
                inner: reader,
                scan: &mut scan,
            };
            let result = builder.append_data(header, name, &mut tee);
            scan.finish();
            result
        }
        None => builder.append_data(header, name, reader),
    }
}

/// A rewritten file's bytes, read into the tar as a file on disk would be
/// (marked for the compressor at the first read, counted for progress).
struct MemoryReader<'a> {
    rest: &'a [u8],
    marker: Option<&'a ContentMarker>,
    ticker: Option<&'a Ticker<'a>>,
}

impl Read for MemoryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(marker) = self.marker.take() {
            marker
                .marks
                .mark(marker.position.get(), self.rest.len() as u64);
        }
        let n = self.rest.read(buf)?;
        if let Some(ticker) = self.ticker {
            ticker.add(n as u64);
        }
        Ok(n)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct ReadFailure(String);

/// Reads exactly the size the header announced; a file that grew or shrank since it was planned is an error, not a corrupt tar.
pub(super) struct ExactReader<'a> {
    pub(super) inner: File,
    pub(super) remaining: u64,
    pub(super) path: &'a Path,
    pub(super) changed: bool,
    /// Taken at the first read: by then the builder has written every header byte and no content byte.
    pub(super) marker: Option<&'a ContentMarker>,
    /// Counts the bytes read, for the progress display.
    pub(super) ticker: Option<&'a Ticker<'a>>,
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(marker) = self.marker.take() {
            marker.marks.mark(marker.position.get(), self.remaining);
        }
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            if self
                .inner
                .read(&mut probe)
                .map_err(|e| wrap_read(self.path, e))?
                > 0
            {
                self.changed = true;
                return Err(io::Error::other(ReadFailure(format!(
                    "{} grew",
                    self.path.display()
                ))));
            }
            return Ok(0);
        }
        let limit = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self
            .inner
            .read(&mut buf[..limit])
            .map_err(|e| wrap_read(self.path, e))?;
        if n == 0 {
            self.changed = true;
            return Err(io::Error::other(ReadFailure(format!(
                "{} shrank",
                self.path.display()
            ))));
        }
        self.remaining -= n as u64;
        if let Some(ticker) = self.ticker {
            ticker.add(n as u64);
        }
        Ok(n)
    }
}

pub(super) fn wrap_read(path: &Path, err: io::Error) -> io::Error {
    io::Error::other(ReadFailure(format!("{}: {err}", path.display())))
}
