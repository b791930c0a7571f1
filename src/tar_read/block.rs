//! One 512-byte tar header block: its format, its fields, and the numbers in them, parsed as Go's `archive/tar` parses them.

use super::TarError;

pub(super) const BLOCK: usize = 512;

pub(super) type Block = [u8; BLOCK];

/// The header layouts a block can have, told apart by checksum and magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    V7,
    /// USTAR, and PAX, which is USTAR plus `x`/`g` entries.
    Ustar,
    Gnu,
    /// Schily's star: USTAR magic with a `tar\0` trailer and a shorter prefix.
    Star,
}

/// What the header block says, before PAX records and GNU long names are applied.
#[derive(Debug, Clone)]
pub(super) struct RawHeader {
    pub(super) type_flag: u8,
    pub(super) name: Vec<u8>,
    pub(super) link_name: Vec<u8>,
    pub(super) size: i64,
    pub(super) mode: i64,
    pub(super) uid: i64,
    pub(super) gid: i64,
}

/// The bytes of `field` up to its first NUL.
pub(super) fn c_string(field: &[u8]) -> &[u8] {
    match field.iter().position(|b| *b == 0) {
        Some(end) => &field[..end],
        None => field,
    }
}

/// A numeric field: base-256 (two's complement, big-endian) when its top bit
/// is set, else octal, where NULs and spaces around the digits are padding.
pub(super) fn number(field: &[u8], name: &'static str) -> Result<i64, TarError> {
    let bad = || TarError::Field { field: name };
    let Some(first) = field.first() else {
        return Ok(0);
    };
    if first & 0x80 == 0 {
        return octal(field).ok_or_else(bad);
    }
    let invert = if first & 0x40 != 0 { 0xff } else { 0 };
    let mut value: u64 = 0;
    for (i, byte) in field.iter().enumerate() {
        let mut byte = byte ^ invert;
        if i == 0 {
            byte &= 0x7f;
        }
        if value >> 56 != 0 {
            return Err(bad());
        }
        value = value << 8 | u64::from(byte);
    }
    let value = i64::try_from(value).map_err(|_| bad())?;
    Ok(if invert == 0xff { !value } else { value })
}

/// An octal field, or None when it holds anything but padding around digits.
fn octal(field: &[u8]) -> Option<i64> {
    let padding = |b: &u8| *b == 0 || *b == b' ';
    let start = field
        .iter()
        .position(|b| !padding(b))
        .unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !padding(b))
        .map_or(start, |i| i + 1);
    let digits = c_string(&field[start..end]);
    if start == end {
        return Some(0);
    }
    // from_str_radix takes a leading `+`, which a tar field may not carry.
    if digits.is_empty() || !digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return None;
    }
    let text = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(text, 8).ok().map(|v| v as i64)
}

/// The layout of `block`, or None when its checksum does not match (not a header).
pub(super) fn layout(block: &Block) -> Option<Layout> {
    let stored = octal(&block[148..156])?;
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, byte) in block.iter().enumerate() {
        let byte = if (148..156).contains(&i) { b' ' } else { *byte };
        unsigned += i64::from(byte);
        signed += i64::from(byte as i8);
    }
    if stored != unsigned && stored != signed {
        return None;
    }
    let magic = &block[257..263];
    let version = &block[263..265];
    Some(if magic == b"ustar\0" && &block[508..512] == b"tar\0" {
        Layout::Star
    } else if magic == b"ustar\0" {
        Layout::Ustar
    } else if magic == b"ustar " && version == b" \0" {
        Layout::Gnu
    } else {
        Layout::V7
    })
}

/// The header in `block`, with the prefix joined to the name.
pub(super) fn parse(block: &Block) -> Result<RawHeader, TarError> {
    let layout = layout(block).ok_or(TarError::NotAHeader)?;
    let mut header = RawHeader {
        type_flag: block[156],
        name: c_string(&block[0..100]).to_vec(),
        link_name: c_string(&block[157..257]).to_vec(),
        size: number(&block[124..136], "size")?,
        mode: number(&block[100..108], "mode")?,
        uid: number(&block[108..116], "uid")?,
        gid: number(&block[116..124], "gid")?,
    };
    number(&block[136..148], "mtime")?;
    if layout == Layout::V7 {
        return Ok(header);
    }
    number(&block[329..337], "devmajor")?;
    number(&block[337..345], "devminor")?;
    let prefix = match layout {
        Layout::Ustar => c_string(&block[345..500]),
        Layout::Star => {
            number(&block[476..488], "atime")?;
            number(&block[488..500], "ctime")?;
            c_string(&block[345..476])
        }
        _ => gnu_prefix(block),
    };
    if !prefix.is_empty() {
        let mut name = prefix.to_vec();
        name.push(b'/');
        name.extend_from_slice(&header.name);
        header.name = name;
    }
    Ok(header)
}

/// A GNU header has no prefix, but Go before 1.8 wrote one where GNU keeps
/// atime and ctime; when those do not parse, an ASCII prefix is taken back.
fn gnu_prefix(block: &Block) -> &[u8] {
    let times_parse = [&block[345..357], &block[357..369]]
        .iter()
        .all(|field| field[0] == 0 || number(field, "time").is_ok());
    let prefix = c_string(&block[345..500]);
    if times_parse || !prefix.is_ascii() {
        &[]
    } else {
        prefix
    }
}

/// Zeros to the next block boundary after `size` bytes.
pub(super) fn padding(size: u64) -> u64 {
    size.wrapping_neg() & (BLOCK as u64 - 1)
}
