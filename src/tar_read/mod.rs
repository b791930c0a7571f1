//! Reading tars as Go's `archive/tar` reads them: docker, containerd, podman,
//! skopeo and umoci read layers and archives with it, so a tar it reads is a
//! tar stowage must read, and one it refuses stays refused.
//!
//! What that takes, beyond ustar:
//! * the end: two zero blocks end a tar, but so does the stream ending at an
//!   entry boundary, after one zero block, or inside the last entry's padding
//!   (umoci 0.4.7, Debian's, ends its layers so). A stream ending inside an
//!   entry's data or inside a header is an error.
//! * PAX (`x`, `g`) and GNU long name / long link (`L`, `K`) entries: when
//!   several describe one member, the last of each kind wins; a GNU long name
//!   wins over a PAX `path`. A global `g` entry is handed out as an entry.
//! * sparse files in every GNU layout (old `S` headers with extension blocks,
//!   PAX 0.0, 0.1 and 1.0), with fragments at any byte offset; holes read as
//!   zeros. A 1.0 map over 1 MiB is refused, as current Go refuses it; an old
//!   GNU map over 2^20 fragments too, where Go has no bound.
//! * numbers in octal padded with NULs or spaces (all padding is 0) or base-256;
//!   the V7, star and GNU header layouts, including the prefix Go before 1.8
//!   wrote into GNU headers; type `\0` ending in `/` is a folder.
//! * GNU types it has no special meaning for (dump folders `D`, volume labels,
//!   …) are entries whose data is their listing, read like a file's.
//!
//! Not for writing tars, nor for deciding what an entry means. A leaf: it
//! imports nothing of the crate.

mod block;
mod pax;
mod sparse;
#[cfg(test)]
mod tests;

use std::io::{self, Read};

use block::{BLOCK, Block, Layout, RawHeader};
use sparse::{PaxSparse, SparseReading};

/// The most data a PAX header or a GNU long name may carry, as in Go.
const MAX_SPECIAL_BYTES: u64 = 1 << 20;

/// Why a tar could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error(
        "a block where a tar header should be is not one (its checksum does not match); \
         hint: the file is not a tar, or it is damaged"
    )]
    NotAHeader,
    #[error("a tar header's {field} field is not a number")]
    Field { field: &'static str },
    #[error("a zero block is followed by a header; a tar ends with zero blocks")]
    ZeroBlockThenHeader,
    #[error("a tar entry has a negative size")]
    NegativeSize,
    #[error("a {what} of {size} bytes is longer than the {MAX_SPECIAL_BYTES} bytes allowed")]
    SpecialTooLong { what: &'static str, size: u64 },
    #[error("a PAX header record is malformed")]
    PaxRecord,
    #[error("the PAX record `{key}` does not hold a valid value")]
    PaxValue { key: String },
    #[error("an old GNU sparse entry (type S) has a header that is not GNU's")]
    SparseNotGnu,
    #[error("a sparse file's map is malformed, out of order, or reaches past the file's size")]
    SparseMap,
    #[error("a sparse file's map is longer than a reader keeps in memory (1 MiB)")]
    SparseMapTooLong,
    #[error("a sparse file's map references data the tar does not carry")]
    MissingSparseData,
    #[error("a sparse file carries data its map does not reference")]
    UnreferencedSparseData,
    #[error("the tar ends inside a header block; hint: the file is truncated")]
    EndsInHeader,
    #[error("the tar ends inside an entry's data; hint: the file is truncated")]
    EndsInData,
    #[error("the tar could not be read past an earlier error")]
    AfterError,
    #[error("{0}")]
    Read(#[source] io::Error),
}

impl From<TarError> for io::Error {
    fn from(error: TarError) -> io::Error {
        match error {
            TarError::Read(error) => error,
            TarError::EndsInHeader | TarError::EndsInData => {
                io::Error::new(io::ErrorKind::UnexpectedEof, error)
            }
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Whether `head`, the first bytes of a file (512 or all of it), starts a
/// tar Go would read: a header block whose checksum holds (V7 tars have no
/// `ustar` magic), a zero block (docker's empty layers are two), or nothing.
pub fn starts_like_a_tar(head: &[u8]) -> bool {
    if head.is_empty() {
        return true;
    }
    let Some(first) = head.get(..BLOCK).and_then(|b| <&Block>::try_from(b).ok()) else {
        return false;
    };
    first.iter().all(|b| *b == 0) || block::layout(first).is_some()
}

/// One member of a tar, once its PAX records, long names and sparse map are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarHeader {
    /// The name as the tar spells it (leading `./` or trailing `/` kept).
    pub name: Vec<u8>,
    pub link_name: Vec<u8>,
    /// The type byte: `0` file (also for a `\0` not ending in `/`), `5` folder, `2` symlink, …
    pub type_flag: u8,
    /// The size the header gives; for a sparse file, the size with its holes.
    pub size: i64,
    pub mode: i64,
    pub uid: i64,
    pub gid: i64,
}

impl TarHeader {
    /// A regular file: plain, contiguous (`7`) or sparse (`S`, or a PAX sparse `0`).
    pub fn is_file(&self) -> bool {
        matches!(self.type_flag, b'0' | b'7' | b'S')
    }

    /// A folder, or a GNU dump folder (`D`), which GNU tar extracts as a folder.
    pub fn is_dir(&self) -> bool {
        matches!(self.type_flag, b'5' | b'D')
    }

    pub fn is_symlink(&self) -> bool {
        self.type_flag == b'2'
    }

    pub fn is_hard_link(&self) -> bool {
        self.type_flag == b'1'
    }

    /// The bytes reading the entry gives: none for types that carry no data.
    pub fn data_size(&self) -> u64 {
        if header_only(self.type_flag) {
            0
        } else {
            u64::try_from(self.size).unwrap_or(0)
        }
    }

    /// The owner's user id; a negative one (base-256 allows it) is an error.
    pub fn uid(&self) -> io::Result<u64> {
        id(self.uid, "uid", &self.name)
    }

    /// The owner's group id; a negative one is an error.
    pub fn gid(&self) -> io::Result<u64> {
        id(self.gid, "gid", &self.name)
    }
}

fn id(value: i64, field: &str, name: &[u8]) -> io::Result<u64> {
    u64::try_from(value).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "tar member `{}` has a negative {field} ({value})",
                String::from_utf8_lossy(name)
            ),
        )
    })
}

/// Types whose size, whatever the header says, covers no data.
fn header_only(type_flag: u8) -> bool {
    matches!(type_flag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6')
}

/// The current entry's stored data: what is left of it, read from the stream.
struct Stored<R> {
    stream: R,
    left: u64,
}

impl<R: Read> Read for Stored<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let read = self.stream.read(&mut buf[..want])?;
        if read == 0 {
            return Err(TarError::EndsInData.into());
        }
        self.left -= read as u64;
        Ok(read)
    }
}

/// A tar read from a stream, entry by entry: [`TarReader::next_entry`] gives
/// the next member's header, and reading the `TarReader` gives its data.
pub struct TarReader<R> {
    stored: Stored<R>,
    /// Padding after the current entry's stored data.
    padding: u64,
    sparse: Option<SparseReading>,
    ended: bool,
    failed: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(stream: R) -> TarReader<R> {
        TarReader {
            stored: Stored { stream, left: 0 },
            padding: 0,
            sparse: None,
            ended: false,
            failed: false,
        }
    }

    /// The next member's header, skipping what is left of the current one's
    /// data; None at the end of the tar. After an error, every call is one.
    pub fn next_entry(&mut self) -> Result<Option<TarHeader>, TarError> {
        if self.failed {
            return Err(TarError::AfterError);
        }
        if self.ended {
            return Ok(None);
        }
        let next = self.read_next();
        match &next {
            Err(_) => self.failed = true,
            Ok(None) => self.ended = true,
            Ok(Some(_)) => {}
        }
        next
    }

    fn read_next(&mut self) -> Result<Option<TarHeader>, TarError> {
        let mut records = None;
        let mut long_name = None;
        let mut long_link = None;
        loop {
            self.sparse = None;
            io::copy(&mut (&mut self.stored), &mut io::sink()).map_err(TarError::Read)?;
            if !self.skip_padding()? {
                return Ok(None);
            }
            let Some(block) = self.header_block()? else {
                return Ok(None);
            };
            let mut raw = block::parse(&block)?;
            self.start_data(raw.type_flag, raw.size)?;
            match raw.type_flag {
                b'x' | b'g' => {
                    let data = self.special("PAX header")?;
                    let parsed = pax::parse_records(&data)?;
                    if raw.type_flag == b'g' {
                        // As Go does, a global header's bad values do not stop the reading.
                        let _ = pax::apply(&mut raw, &parsed);
                        return Ok(Some(global_entry(raw)));
                    }
                    records = Some(parsed);
                }
                b'L' | b'K' => {
                    let data = self.special("GNU long name")?;
                    let name = block::c_string(&data).to_vec();
                    if raw.type_flag == b'L' {
                        long_name = Some(name);
                    } else {
                        long_link = Some(name);
                    }
                }
                _ => {
                    let records = records.unwrap_or_default();
                    pax::apply(&mut raw, &records)?;
                    if let Some(name) = long_name.filter(|n| !n.is_empty()) {
                        raw.name = name;
                    }
                    if let Some(link) = long_link.filter(|l| !l.is_empty()) {
                        raw.link_name = link;
                    }
                    if raw.type_flag == 0 {
                        raw.type_flag = if raw.name.ends_with(b"/") { b'5' } else { b'0' };
                    }
                    self.start_data(raw.type_flag, raw.size)?;
                    self.start_sparse(&block, &records, &mut raw)?;
                    return Ok(Some(TarHeader {
                        name: raw.name,
                        link_name: raw.link_name,
                        type_flag: raw.type_flag,
                        size: raw.size,
                        mode: raw.mode,
                        uid: raw.uid,
                        gid: raw.gid,
                    }));
                }
            }
        }
    }

    /// Reads the padding after the last entry's data; false when the stream
    /// ends inside it, which ends the tar.
    fn skip_padding(&mut self) -> Result<bool, TarError> {
        let mut zeros = [0u8; BLOCK];
        let wanted = self.padding as usize;
        self.padding = 0;
        Ok(read_full(&mut self.stored.stream, &mut zeros[..wanted])? == wanted)
    }

    /// The next header block, or None where the tar ends: at the end of the
    /// stream, or at one or two zero blocks.
    fn header_block(&mut self) -> Result<Option<Block>, TarError> {
        let mut block = [0u8; BLOCK];
        for zeros_before in 0..2 {
            match read_full(&mut self.stored.stream, &mut block)? {
                0 => return Ok(None),
                BLOCK => {}
                _ => return Err(TarError::EndsInHeader),
            }
            if block.iter().any(|b| *b != 0) {
                return match zeros_before {
                    0 => Ok(Some(block)),
                    _ => Err(TarError::ZeroBlockThenHeader),
                };
            }
        }
        Ok(None)
    }

    /// Sets up reading `size` bytes of stored data for an entry of this type.
    fn start_data(&mut self, type_flag: u8, size: i64) -> Result<(), TarError> {
        let stored = if header_only(type_flag) { 0 } else { size };
        let stored = u64::try_from(stored).map_err(|_| TarError::NegativeSize)?;
        self.stored.left = stored;
        self.padding = block::padding(stored);
        Ok(())
    }

    /// The whole data of a PAX header or GNU long name entry.
    fn special(&mut self, what: &'static str) -> Result<Vec<u8>, TarError> {
        let size = self.stored.left;
        if size > MAX_SPECIAL_BYTES {
            return Err(TarError::SpecialTooLong { what, size });
        }
        let mut data = vec![0; size as usize];
        read_exact(&mut self.stored, &mut data, TarError::EndsInData)?;
        Ok(data)
    }

    /// Makes the entry's data read through its sparse map, when it has one.
    fn start_sparse(
        &mut self,
        block: &Block,
        records: &pax::Records,
        raw: &mut RawHeader,
    ) -> Result<(), TarError> {
        let fragments = if raw.type_flag == b'S' {
            if block::layout(block) != Some(Layout::Gnu) {
                return Err(TarError::SparseNotGnu);
            }
            let (size, fragments) = sparse::old_gnu_map(block, &mut self.stored.stream)?;
            raw.size = size;
            fragments
        } else {
            match sparse::pax_layout(records, raw)? {
                None => return Ok(()),
                Some(PaxSparse::InRecords) => sparse::records_map(records)?,
                Some(PaxSparse::InData) => sparse::data_map(&mut self.stored)?,
            }
        };
        if header_only(raw.type_flag) {
            return Err(TarError::SparseMap);
        }
        let fragments = sparse::checked(fragments, raw.size).ok_or(TarError::SparseMap)?;
        self.sparse = Some(SparseReading {
            fragments,
            next: 0,
            position: 0,
            size: raw.size as u64,
        });
        Ok(())
    }
}

/// What a global PAX header is handed out as: its name and type, no data.
fn global_entry(raw: RawHeader) -> TarHeader {
    TarHeader {
        name: raw.name,
        link_name: Vec::new(),
        type_flag: raw.type_flag,
        size: 0,
        mode: 0,
        uid: 0,
        gid: 0,
    }
}

/// Fills `buf`, or fails with `short` when the stream ends first.
fn read_exact(stream: &mut impl Read, buf: &mut [u8], short: TarError) -> Result<(), TarError> {
    match read_full(stream, buf)? {
        n if n == buf.len() => Ok(()),
        _ => Err(short),
    }
}

/// Reads until `buf` is full or the stream ends; how much was read.
fn read_full(stream: &mut impl Read, buf: &mut [u8]) -> Result<usize, TarError> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TarError::Read(e)),
        }
    }
    Ok(filled)
}

impl<R: Read> Read for TarReader<R> {
    /// Reads the current entry's data (its holes as zeros, for a sparse file).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(TarError::AfterError.into());
        }
        let result = match &mut self.sparse {
            Some(sparse) => {
                let left = self.stored.left;
                sparse.read(buf, &mut self.stored, left)
            }
            None => self.stored.read(buf),
        };
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}
