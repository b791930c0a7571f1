//! Sparse files: the maps of every GNU layout Go reads (old GNU `S` headers,
//! PAX 0.0, 0.1 and 1.0), and reading a sparse entry's data with its holes as zeros.
//!
//! A map is checked as Go checks it (no negative numbers, fragments in order,
//! not overlapping, inside the file); fragments need not be aligned to blocks.

use std::io::{self, Read};

use super::block::{BLOCK, Block, RawHeader, number};
use super::pax::{Records, SPARSE_MAP, decimal};
use super::{TarError, read_exact};

/// The most fragments an old GNU map may hold: a bound on memory that no
/// real sparse file comes near (Go has none there; a map this long takes 24 MiB of headers).
const MAX_FRAGMENTS: usize = 1 << 20;

/// The most a PAX 1.0 map may take of the entry's data, as in Go (its
/// `errSparseTooLong`): the map is read into memory.
const MAX_DATA_MAP_BYTES: usize = 1 << 20;

/// One stretch of data in a sparse file: where it starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fragment {
    pub(super) offset: i64,
    pub(super) length: i64,
}

/// The map of an old GNU sparse header (`S`), reading any extension blocks
/// that follow it from `stream`; also gives the file's real size.
pub(super) fn old_gnu_map(
    block: &Block,
    stream: &mut impl Read,
) -> Result<(i64, Vec<Fragment>), TarError> {
    let real_size = number(&block[483..495], "realsize")?;
    let mut fragments = Vec::new();
    let mut area: Block = *block;
    let (mut start, mut count) = (386, 4);
    loop {
        for i in 0..count {
            let entry = &area[start + i * 24..start + i * 24 + 24];
            if entry[0] == 0 {
                break;
            }
            push(
                &mut fragments,
                Fragment {
                    offset: number(&entry[..12], "sparse offset")?,
                    length: number(&entry[12..], "sparse length")?,
                },
            )?;
        }
        if area[start + count * 24] == 0 {
            return Ok((real_size, fragments));
        }
        read_exact(stream, &mut area, TarError::EndsInHeader)?;
        (start, count) = (0, 21);
    }
}

fn push(fragments: &mut Vec<Fragment>, fragment: Fragment) -> Result<(), TarError> {
    if fragments.len() >= MAX_FRAGMENTS {
        return Err(TarError::SparseMapTooLong);
    }
    fragments.push(fragment);
    Ok(())
}

/// Which GNU PAX sparse layout the records describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PaxSparse {
    /// The map is in the records (0.0, 0.1).
    InRecords,
    /// The map leads the entry's data (1.0).
    InData,
}

/// The GNU PAX sparse layout of `records`, if any, with the real name and
/// size applied to `header`. An unknown version is not sparse, as in Go.
pub(super) fn pax_layout(
    records: &Records,
    header: &mut RawHeader,
) -> Result<Option<PaxSparse>, TarError> {
    let get = |key: &str| records.get(key.as_bytes()).map(Vec::as_slice);
    let layout = match (get("GNU.sparse.major"), get("GNU.sparse.minor")) {
        (Some(b"0"), Some(b"0" | b"1")) => PaxSparse::InRecords,
        (Some(b"1"), Some(b"0")) => PaxSparse::InData,
        (Some(major), _) if !major.is_empty() => return Ok(None),
        (_, Some(minor)) if !minor.is_empty() => return Ok(None),
        _ if get("GNU.sparse.map").is_some_and(|map| !map.is_empty()) => PaxSparse::InRecords,
        _ => return Ok(None),
    };
    if let Some(name) = get("GNU.sparse.name").filter(|name| !name.is_empty()) {
        header.name = name.to_vec();
    }
    let size = get("GNU.sparse.size")
        .filter(|size| !size.is_empty())
        .or_else(|| get("GNU.sparse.realsize"))
        .filter(|size| !size.is_empty());
    if let Some(size) = size {
        header.size = decimal(size).ok_or(TarError::PaxValue {
            key: "GNU.sparse.size".into(),
        })?;
    }
    Ok(Some(layout))
}

/// The number of map entries, refused when negative or when twice it overflows.
fn entry_count(text: &[u8]) -> Result<i64, TarError> {
    decimal(text)
        .filter(|n| *n >= 0 && n.checked_mul(2).is_some())
        .ok_or(TarError::SparseMap)
}

/// A map in PAX records (0.0 and 0.1): `GNU.sparse.numblocks` pairs in `GNU.sparse.map`.
pub(super) fn records_map(records: &Records) -> Result<Vec<Fragment>, TarError> {
    let count = records
        .get(&b"GNU.sparse.numblocks"[..])
        .map_or(Err(TarError::SparseMap), |n| entry_count(n))?;
    let map = records
        .get(SPARSE_MAP)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let numbers: Vec<&[u8]> = if map.is_empty() {
        Vec::new()
    } else {
        map.split(|b| *b == b',').collect()
    };
    if numbers.len() as i64 != count * 2 {
        return Err(TarError::SparseMap);
    }
    let mut fragments = Vec::new();
    for pair in numbers.chunks(2) {
        let (offset, length) = (decimal(pair[0]), decimal(pair[1]));
        let (Some(offset), Some(length)) = (offset, length) else {
            return Err(TarError::SparseMap);
        };
        push(&mut fragments, Fragment { offset, length })?;
    }
    Ok(fragments)
}

/// A map leading the entry's data (1.0): decimal numbers each ended by a
/// newline (the count, then offset and length pairs), read whole blocks at a
/// time; the data starts at the block after the last newline.
pub(super) fn data_map(data: &mut impl Read) -> Result<Vec<Fragment>, TarError> {
    let mut tokens = Tokens {
        data,
        block: [0; BLOCK],
        at: BLOCK,
        read: 0,
    };
    let count = entry_count(&tokens.next()?)?;
    let mut fragments = Vec::new();
    for _ in 0..count {
        let (offset, length) = (decimal(&tokens.next()?), decimal(&tokens.next()?));
        let (Some(offset), Some(length)) = (offset, length) else {
            return Err(TarError::SparseMap);
        };
        push(&mut fragments, Fragment { offset, length })?;
    }
    Ok(fragments)
}

/// The newline-ended numbers of a 1.0 map, read a block at a time.
struct Tokens<'a, R> {
    data: &'a mut R,
    block: Block,
    /// Where in `block` the next token starts.
    at: usize,
    /// Bytes of map read so far.
    read: usize,
}

impl<R: Read> Tokens<'_, R> {
    fn next(&mut self) -> Result<Vec<u8>, TarError> {
        let mut token = Vec::new();
        loop {
            if self.at == BLOCK {
                self.read += BLOCK;
                if self.read > MAX_DATA_MAP_BYTES {
                    return Err(TarError::SparseMapTooLong);
                }
                read_exact(self.data, &mut self.block, TarError::EndsInData)?;
                self.at = 0;
            }
            let rest = &self.block[self.at..];
            let newline = rest.iter().position(|b| *b == b'\n');
            let end = newline.unwrap_or(rest.len());
            token.extend_from_slice(&rest[..end]);
            match newline {
                Some(i) => {
                    self.at += i + 1;
                    return Ok(token);
                }
                None => self.at = BLOCK,
            }
        }
    }
}

/// The non-empty data fragments of a valid map for a file of `size` bytes,
/// or None when the map is not valid.
pub(super) fn checked(fragments: Vec<Fragment>, size: i64) -> Option<Vec<(u64, u64)>> {
    if size < 0 {
        return None;
    }
    let mut previous_end = 0i64;
    let mut data = Vec::new();
    for Fragment { offset, length } in fragments {
        if offset < 0 || length < 0 {
            return None;
        }
        let end = offset.checked_add(length)?;
        if end > size || previous_end > offset {
            return None;
        }
        previous_end = end;
        if length > 0 {
            data.push((offset as u64, length as u64));
        }
    }
    Some(data)
}

/// Where a sparse entry's reading is: the logical file is `size` bytes, its
/// data fragments come from the entry's stored data in order, the rest is zeros.
#[derive(Debug)]
pub(super) struct SparseReading {
    /// Data fragments (offset, length), in order, none empty.
    pub(super) fragments: Vec<(u64, u64)>,
    /// The first fragment not wholly read yet.
    pub(super) next: usize,
    /// Logical position.
    pub(super) position: u64,
    pub(super) size: u64,
}

impl SparseReading {
    /// Reads into `buf` at the logical position: data from `stored` inside a
    /// fragment, zeros in a hole. `stored_left` is what the stored data still holds.
    pub(super) fn read(
        &mut self,
        buf: &mut [u8],
        stored: &mut impl Read,
        stored_left: u64,
    ) -> io::Result<usize> {
        if self.position >= self.size || buf.is_empty() {
            if stored_left > 0 && !buf.is_empty() {
                return Err(TarError::UnreferencedSparseData.into());
            }
            return Ok(0);
        }
        while self
            .fragments
            .get(self.next)
            .is_some_and(|(offset, length)| offset + length <= self.position)
        {
            self.next += 1;
        }
        let read = match self.fragments.get(self.next) {
            Some(&(offset, length)) if offset <= self.position => {
                let want = (offset + length - self.position).min(buf.len() as u64) as usize;
                if stored_left == 0 {
                    return Err(TarError::MissingSparseData.into());
                }
                let want = want.min(usize::try_from(stored_left).unwrap_or(usize::MAX));
                stored.read(&mut buf[..want])?
            }
            next => {
                let hole_end = next.map_or(self.size, |(offset, _)| *offset);
                let want = (hole_end - self.position).min(buf.len() as u64) as usize;
                buf[..want].fill(0);
                want
            }
        };
        self.position += read as u64;
        Ok(read)
    }
}
