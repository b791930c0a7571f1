//! PAX extended header records: parsing them, and applying them to the header that follows.

use std::collections::BTreeMap;

use super::TarError;
use super::block::RawHeader;

/// A PAX header's records by key; a key given twice keeps its last value.
pub(super) type Records = BTreeMap<Vec<u8>, Vec<u8>>;

pub(super) const SPARSE_MAP: &[u8] = b"GNU.sparse.map";
const SPARSE_OFFSET: &[u8] = b"GNU.sparse.offset";
const SPARSE_NUMBYTES: &[u8] = b"GNU.sparse.numbytes";

/// The records of one PAX header's data. GNU's sparse format 0.0 repeats
/// `GNU.sparse.offset` and `GNU.sparse.numbytes`; those pairs are gathered
/// into one `GNU.sparse.map` value, as format 0.1 writes it.
pub(super) fn parse_records(mut data: &[u8]) -> Result<Records, TarError> {
    let mut records = Records::new();
    let mut sparse_map: Vec<&[u8]> = Vec::new();
    while !data.is_empty() {
        let (key, value, rest) = parse_record(data).ok_or(TarError::PaxRecord)?;
        data = rest;
        if key == SPARSE_OFFSET || key == SPARSE_NUMBYTES {
            let expected = if sparse_map.len().is_multiple_of(2) {
                SPARSE_OFFSET
            } else {
                SPARSE_NUMBYTES
            };
            if key != expected || value.contains(&b',') {
                return Err(TarError::PaxRecord);
            }
            sparse_map.push(value);
        } else {
            records.insert(key.to_vec(), value.to_vec());
        }
    }
    if !sparse_map.is_empty() {
        records.insert(SPARSE_MAP.to_vec(), sparse_map.join(&b","[..]));
    }
    Ok(records)
}

/// One `"<length> <key>=<value>\n"` record off the front of `data`: key, value, and the rest.
fn parse_record(data: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let space = data.iter().position(|b| *b == b' ')?;
    let length = decimal(&data[..space])?;
    if length < 5 || length > data.len() as i64 {
        return None;
    }
    let rest = &data[space + 1..];
    let in_rest = usize::try_from(length).ok()?.checked_sub(space + 1)?;
    if in_rest == 0 {
        return None;
    }
    let (record, newline, remainder) = (&rest[..in_rest - 1], rest[in_rest - 1], &rest[in_rest..]);
    if newline != b'\n' {
        return None;
    }
    let equals = record.iter().position(|b| *b == b'=')?;
    let (key, value) = (&record[..equals], &record[equals + 1..]);
    let nul_checked = match key {
        b"path" | b"linkpath" | b"uname" | b"gname" => value,
        _ => key,
    };
    if key.is_empty() || nul_checked.contains(&0) {
        return None;
    }
    Some((key, value, remainder))
}

/// A decimal number as Go's `strconv.ParseInt(s, 10, 64)` reads one (an optional sign, digits).
pub(super) fn decimal(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A PAX time: seconds, optionally with a fraction of decimal digits.
fn valid_time(text: &[u8]) -> bool {
    let (seconds, fraction) = match text.iter().position(|b| *b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &[][..]),
    };
    decimal(seconds).is_some() && fraction.iter().all(u8::is_ascii_digit)
}

/// `header` with the records that override its fields applied (an empty
/// value keeps the header's own); a number that does not parse is an error.
pub(super) fn apply(header: &mut RawHeader, records: &Records) -> Result<(), TarError> {
    for (key, value) in records {
        if value.is_empty() {
            continue;
        }
        let number = || {
            decimal(value).ok_or(TarError::PaxValue {
                key: String::from_utf8_lossy(key).into_owned(),
            })
        };
        match key.as_slice() {
            b"path" => header.name = value.clone(),
            b"linkpath" => header.link_name = value.clone(),
            b"uid" => header.uid = number()?,
            b"gid" => header.gid = number()?,
            b"size" => header.size = number()?,
            b"mtime" | b"atime" | b"ctime" if !valid_time(value) => {
                return Err(TarError::PaxValue {
                    key: String::from_utf8_lossy(key).into_owned(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}
