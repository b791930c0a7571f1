//! Reading tars as leniently as Go's `archive/tar`, which docker, podman,
//! skopeo and umoci read layers and archives with.
//!
//! Go's reader takes a stream that ends where an entry's data and padding
//! end, or inside the last entry's padding, as a complete tar: the two zero
//! blocks that close a tar are optional to it. Some writers leave them out
//! (umoci 0.4.7, Debian's, ends its layers without the last padding and
//! without the end blocks), and images built that way run everywhere. The
//! `tar` crate already stops cleanly at an entry boundary, but fails when
//! the stream ends inside padding; [`LenientArchive`] supplies that padding
//! as zeros. An entry whose *data* is cut short, or a header cut in half,
//! is still an error.
//!
//! Not for writing tars, nor for deciding what an entry means. A leaf: it
//! imports nothing of the crate.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

const BLOCK: u64 = 512;

/// Where the stream is, shared by the reader and the entry iterator.
#[derive(Default)]
struct Position {
    /// Bytes read from the stream so far.
    read: Cell<u64>,
    /// Where the data of the last entry handed out ends, once there is one.
    data_end: Cell<Option<u64>>,
}

/// The stream under a [`LenientArchive`]: it ends as the stream does, except
/// that an end inside the last entry's padding is padded out with zeros, and
/// an end inside an entry's data is an `UnexpectedEof` error (the `tar`
/// crate would hand a reader of that entry short data without one).
pub struct PaddedReader<R> {
    inner: R,
    position: Rc<Position>,
    /// Zeros still to give before the end.
    zeros: u64,
    ended: bool,
}

impl<R: Read> Read for PaddedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.ended {
            let n = self.inner.read(buf)?;
            if n > 0 {
                let read = &self.position.read;
                read.set(read.get() + n as u64);
                return Ok(n);
            }
            let read = self.position.read.get();
            if let Some(end) = self.position.data_end.get()
                && read < end
            {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the tar ends inside an entry's data ({read} of {end} bytes)"),
                ));
            }
            self.ended = true;
            self.zeros = missing_padding(read, self.position.data_end.get());
        }
        let n = (buf.len() as u64).min(self.zeros) as usize;
        buf[..n].fill(0);
        self.zeros -= n as u64;
        Ok(n)
    }
}

/// The zeros that complete a stream ending at `read`: the rest of the last
/// entry's padding when the end falls inside it, else none.
fn missing_padding(read: u64, data_end: Option<u64>) -> u64 {
    let Some(end) = data_end else {
        return 0;
    };
    let padded_end = end.div_ceil(BLOCK) * BLOCK;
    if (end..padded_end).contains(&read) {
        padded_end - read
    } else {
        0
    }
}

/// A tar read as Go's `archive/tar` reads it (see the module doc).
pub struct LenientArchive<R: Read> {
    archive: tar::Archive<PaddedReader<R>>,
    position: Rc<Position>,
}

impl<R: Read> LenientArchive<R> {
    /// A tar read from `reader`, which is read as the entries are.
    pub fn new(reader: R) -> LenientArchive<R> {
        let position = Rc::new(Position::default());
        let padded = PaddedReader {
            inner: reader,
            position: Rc::clone(&position),
            zeros: 0,
            ended: false,
        };
        LenientArchive {
            archive: tar::Archive::new(padded),
            position,
        }
    }

    /// The entries, in stream order, as `tar::Archive::entries` gives them.
    pub fn entries(&mut self) -> io::Result<LenientEntries<'_, R>> {
        Ok(LenientEntries {
            entries: self.archive.entries()?,
            position: Rc::clone(&self.position),
        })
    }
}

/// The entries of a [`LenientArchive`]; each one read (or skipped) before the next is asked for.
pub struct LenientEntries<'a, R: Read> {
    entries: tar::Entries<'a, PaddedReader<R>>,
    position: Rc<Position>,
}

/// One entry of a [`LenientArchive`].
pub type LenientEntry<'a, R> = tar::Entry<'a, PaddedReader<R>>;

impl<'a, R: Read> Iterator for LenientEntries<'a, R> {
    type Item = io::Result<LenientEntry<'a, R>>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.entries.next()?;
        if let Ok(entry) = &item {
            let end = entry.raw_file_position().saturating_add(entry.size());
            self.position.data_end.set(Some(end));
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `files` as `tar::Builder` writes it, with the two end blocks.
    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// Every entry's name and data, or the first error.
    fn read_all(bytes: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut archive = LenientArchive::new(bytes);
        let mut found = Vec::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            found.push((name, data));
        }
        Ok(found)
    }

    /// Every entry's name, skipping the data as a header-only reader does.
    fn names(bytes: &[u8]) -> io::Result<Vec<String>> {
        let mut archive = LenientArchive::new(bytes);
        let mut found = Vec::new();
        for entry in archive.entries()? {
            found.push(String::from_utf8_lossy(&entry?.path_bytes()).into_owned());
        }
        Ok(found)
    }

    const FILES: [(&str, &[u8]); 2] = [("a.txt", b"hello"), ("b.txt", b"world, 13 byt")];

    #[test]
    fn a_whole_tar_reads() {
        let bytes = tar_of(&FILES);
        assert_eq!(read_all(&bytes).unwrap().len(), 2);
        assert_eq!(names(&bytes).unwrap(), ["a.txt", "b.txt"]);
    }

    #[test]
    fn a_tar_ending_at_an_entry_boundary_without_end_blocks_reads() {
        let bytes = tar_of(&FILES);
        let cut = &bytes[..bytes.len() - 1024];
        assert_eq!(cut.len() % 512, 0);
        let read = read_all(cut).unwrap();
        assert_eq!(read[1], ("b.txt".to_string(), b"world, 13 byt".to_vec()));
        assert_eq!(names(cut).unwrap(), ["a.txt", "b.txt"]);
    }

    #[test]
    fn a_tar_ending_inside_the_last_padding_reads() {
        let bytes = tar_of(&FILES);
        // Header of a.txt, its block, header of b.txt, then b.txt's 13 bytes.
        let data_end = 512 * 3 + 13;
        for end in [data_end, data_end + 1, data_end + 200, 512 * 4 - 1] {
            let cut = &bytes[..end];
            assert_eq!(read_all(cut).unwrap().len(), 2, "cut at {end}");
            assert_eq!(names(cut).unwrap(), ["a.txt", "b.txt"], "cut at {end}");
        }
    }

    #[test]
    fn a_tar_whose_last_data_is_cut_short_is_refused() {
        let bytes = tar_of(&FILES);
        for end in [512 * 3 + 1, 512 * 3 + 12] {
            let cut = &bytes[..end];
            assert!(read_all(cut).is_err(), "read whole, cut at {end}");
            assert!(names(cut).is_err(), "headers only, cut at {end}");
        }
    }

    #[test]
    fn a_tar_cut_inside_an_earlier_entry_or_a_header_is_refused() {
        let big = vec![7u8; 2000];
        let bytes = tar_of(&[("big", &big), ("small", b"x")]);
        // Inside big's data, at a block boundary and off one.
        for end in [1024, 1100] {
            assert!(read_all(&bytes[..end]).is_err(), "cut at {end}");
            assert!(names(&bytes[..end]).is_err(), "cut at {end}");
        }
        // Inside the header of `small`, after big's padding.
        let header_start = 512 + 2048;
        for end in [header_start + 1, header_start + 300] {
            assert!(read_all(&bytes[..end]).is_err(), "cut at {end}");
            assert!(names(&bytes[..end]).is_err(), "cut at {end}");
        }
    }

    #[test]
    fn a_long_name_entry_without_end_blocks_reads() {
        let long = format!("{}/file", "d".repeat(150));
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, &long, &b"abc"[..])
            .unwrap();
        let bytes = builder.into_inner().unwrap();
        let data_end = bytes.len() - 1024 - 512 + 3;
        let read = read_all(&bytes[..data_end]).unwrap();
        assert_eq!(read, [(long, b"abc".to_vec())]);
    }

    #[test]
    fn an_empty_stream_is_an_empty_tar() {
        assert!(read_all(&[]).unwrap().is_empty());
    }
}
