//! Writing a planned layer: one streaming pass tar → secret scan → compress → hash → store, with no layer held in memory.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use super::bytecode;
use super::progress::LayerProgress;
use super::progress::Ticker;
use super::relocate::{self, Relocation};
use super::{
    BaseFolders, BuiltLayer, Compression, EntryView, GZIP_LEVEL, LAYER_FORMAT_VERSION, LayerError,
    LayerPlan, ViewKind, ZSTD_LEVEL,
};
use crate::digest::{Digest, HashingWriter};
use crate::gzip::{CompressPool, FileMarks, GzipWriter};
use crate::interrupt;
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
        reused: false,
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
    let mut opener = Opener::default();
    for entry in plan.entries_over(base) {
        // Between entries, and (in `ExactReader`) between reads of a large file.
        interrupt::check().map_err(|e| write_err(e.into()))?;
        append_entry(
            &mut builder,
            &entry,
            (mtime, plan.relocation.as_ref()),
            scanner.as_deref_mut(),
            marker.as_ref(),
            ticker,
            &mut opener,
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
    entry: &EntryView<'_>,
    (mtime, relocation): (u64, Option<&Relocation>),
    scanner: Option<&mut Scanner>,
    marker: Option<&ContentMarker>,
    ticker: Option<&Ticker<'_>>,
    opener: &mut Opener,
) -> Result<(), AppendError> {
    let rewrite = entry.rewrite.zip(relocation);
    let mut header = tar::Header::new_gnu();
    header.set_mode(entry.mode);
    header.set_uid(entry.owner.uid);
    header.set_gid(entry.owner.gid);
    header.set_mtime(mtime);
    header.set_size(0);
    let path = OsStr::from_bytes(entry.path);
    let appended = match entry.kind {
        ViewKind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            let mut dir_path = entry.path.to_vec();
            dir_path.push(b'/');
            builder.append_data(&mut header, OsStr::from_bytes(&dir_path), io::empty())
        }
        ViewKind::Symlink { target } => {
            header.set_entry_type(tar::EntryType::Symlink);
            let relocated = rewrite.and_then(|(_, r)| relocate::link_target(target, r));
            let target = relocated.as_deref().unwrap_or(target);
            builder.append_link(&mut header, path, OsStr::from_bytes(target))
        }
        ViewKind::HardLink { to } => {
            if let Some(scanner) = scanner {
                scanner.link(entry.path);
            }
            header.set_entry_type(tar::EntryType::Link);
            builder.append_link(&mut header, path, OsStr::from_bytes(to))
        }
        ViewKind::File { size } if rewrite.is_some() => {
            let Some((kind, relocation)) = rewrite else {
                return Err(AppendError::Source(LayerError::Internal(
                    "a rewrite without a relocation",
                )));
            };
            let bytes = relocate::rewritten_file(entry, size, kind, relocation)
                .map_err(AppendError::Source)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            let mut reader = MemoryReader {
                rest: &bytes,
                marker,
                ticker,
            };
            append_scanned(builder, &mut header, entry.path, &mut reader, scanner)
        }
        ViewKind::File { size } => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(size);
            let file = opener.open(entry).map_err(|source| {
                AppendError::Source(LayerError::Read {
                    path: entry.disk(),
                    source,
                })
            })?;
            let mtime_fix = if entry.path.ends_with(b".pyc") {
                bytecode_fix(&file, entry, mtime)
            } else {
                None
            };
            let mut reader = ExactReader {
                inner: file,
                remaining: size,
                entry,
                changed: false,
                marker,
                ticker,
                mtime_fix,
            };
            let result = append_scanned(builder, &mut header, entry.path, &mut reader, scanner);
            if reader.changed {
                return Err(AppendError::Source(LayerError::Changed {
                    path: entry.disk(),
                }));
            }
            result.map_err(|source| match source.kind() {
                io::ErrorKind::Other if source.get_ref().is_some_and(|e| e.is::<ReadFailure>()) => {
                    AppendError::Source(LayerError::Read {
                        path: entry.disk(),
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

/// The mtime a `.pyc`'s header should record in the image, when it is a
/// timestamp-based one that matched its source (I/O: reads its first bytes
/// without moving the reader, and stats the source).
fn bytecode_fix(file: &File, entry: &EntryView<'_>, mtime: u64) -> Option<[u8; 4]> {
    let mut head = [0u8; bytecode::PYC_HEADER_BYTES];
    let read = std::os::unix::fs::FileExt::read_at(file, &mut head, 0).ok()?;
    bytecode::fixed_mtime(&entry.disk(), &head[..read], mtime)
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
    /// The entry read, to name its file in errors.
    pub(super) entry: &'a EntryView<'a>,
    pub(super) changed: bool,
    /// Taken at the first read: by then the builder has written every header byte and no content byte.
    pub(super) marker: Option<&'a ContentMarker>,
    /// Counts the bytes read, for the progress display.
    pub(super) ticker: Option<&'a Ticker<'a>>,
    /// A `.pyc`'s source mtime as the image has it, written over its header's (`bytecode`).
    pub(super) mtime_fix: Option<[u8; 4]>,
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        interrupt::check_io()?;
        if let Some(marker) = self.marker.take() {
            marker.marks.mark(marker.position.get(), self.remaining);
        }
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            if self
                .inner
                .read(&mut probe)
                .map_err(|e| wrap_read(&self.entry.disk(), e))?
                > 0
            {
                self.changed = true;
                return Err(io::Error::other(ReadFailure(format!(
                    "{} grew",
                    self.entry.disk().display()
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
            .map_err(|e| wrap_read(&self.entry.disk(), e))?;
        if let Some(fix) = self.mtime_fix {
            let start = self.entry_size() - self.remaining;
            patch(&mut buf[..n], start, bytecode::MTIME_OFFSET, &fix);
        }
        if n == 0 {
            self.changed = true;
            return Err(io::Error::other(ReadFailure(format!(
                "{} shrank",
                self.entry.disk().display()
            ))));
        }
        self.remaining -= n as u64;
        if let Some(ticker) = self.ticker {
            ticker.add(n as u64);
        }
        Ok(n)
    }
}

impl ExactReader<'_> {
    /// The size the header announced.
    fn entry_size(&self) -> u64 {
        match self.entry.kind {
            ViewKind::File { size } => size,
            _ => 0,
        }
    }
}

/// Writes `bytes` at stream offset `at` into `chunk`, which holds the stream from offset `start`.
fn patch(chunk: &mut [u8], start: u64, at: u64, bytes: &[u8]) {
    for (i, byte) in bytes.iter().enumerate() {
        let offset = at + i as u64;
        if let Some(index) = offset
            .checked_sub(start)
            .filter(|o| *o < chunk.len() as u64)
        {
            chunk[index as usize] = *byte;
        }
    }
}

pub(super) fn wrap_read(path: &Path, err: io::Error) -> io::Error {
    io::Error::other(ReadFailure(format!("{}: {err}", path.display())))
}

/// Opens a layer's files relative to their folder, which is opened once for
/// all its files (they come in path order): the kernel looks up one name per
/// file instead of every folder above it, and no path is built per file.
#[derive(Default)]
pub(super) struct Opener {
    /// The folder open now: its source, its path below the source, and its descriptor.
    folder: Option<(Arc<Path>, Vec<u8>, File)>,
    /// The file's name, NUL-terminated for `openat`.
    name: Vec<u8>,
}

impl Opener {
    /// Opens the file of `entry` for reading (I/O), as `File::open` of its path on disk would.
    pub(super) fn open(&mut self, entry: &EntryView<'_>) -> io::Result<File> {
        let rel = entry
            .path
            .get(entry.rel_start as usize..)
            .unwrap_or_default();
        let Some(slash) = rel.iter().rposition(|b| *b == b'/') else {
            // Directly in the source folder, or the source itself: rare enough to open by path.
            return File::open(entry.disk());
        };
        let (folder, name) = (&rel[..slash], &rel[slash + 1..]);
        let current = self
            .folder
            .as_ref()
            .is_some_and(|(source, open, _)| Arc::ptr_eq(source, entry.source) && open == folder);
        if !current {
            let dir = File::open(entry.source.join(OsStr::from_bytes(folder)))?;
            self.folder = Some((Arc::clone(entry.source), folder.to_vec(), dir));
        }
        let Some((_, _, dir)) = &self.folder else {
            return File::open(entry.disk());
        };
        self.name.clear();
        self.name.extend_from_slice(name);
        self.name.push(0);
        let Ok(name) = std::ffi::CStr::from_bytes_with_nul(&self.name) else {
            return File::open(entry.disk());
        };
        // SAFETY: `dir` is an open descriptor and `name` a NUL-terminated string, both alive for the call.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        Ok(unsafe { File::from_raw_fd(fd) })
    }
}
