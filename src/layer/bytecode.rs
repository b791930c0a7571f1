//! Python bytecode made valid in the image: a timestamp-based `.pyc` records
//! its source's mtime and size, and the layer gives every file one fixed
//! mtime, so without this every `.pyc` would be stale in the image.
//!
//! PEP 552: a `.pyc` starts with 16 bytes, the magic number (ending in
//! `\r\n`), a flags word, and then either the source's mtime and size (flags
//! 0) or its hash (flags 1 or 3). Python accepts a timestamp-based `.pyc`
//! when both fields equal the source's `st_mtime` and `st_size` (each modulo
//! 2^32). Like Debian's and Arch's reproducible builds, which clamp source
//! mtimes to `SOURCE_DATE_EPOCH` and record that same time in the bytecode,
//! the header gets the source's mtime as the image has it, but only when it
//! matched the source as found on disk: a hash-based `.pyc` is left as it
//! is, and a stale one stays stale, since its code may not be the source's.
//! Not for: compiling anything, or `.pyc` files without a source beside them.

use std::path::{Path, PathBuf};

/// How many bytes of a `.pyc` its header is.
pub const PYC_HEADER_BYTES: usize = 16;

/// Where the source's mtime sits in the header.
pub const MTIME_OFFSET: u64 = 8;

/// The four bytes to write at [`MTIME_OFFSET`] of the `.pyc` at `pyc` on
/// disk, whose first bytes are `head`, so that Python accepts it in an image
/// where every file's mtime is `image_mtime` (I/O: stats the source). None
/// when the file is not a timestamp-based `.pyc` that matched its source.
pub fn fixed_mtime(pyc: &Path, head: &[u8], image_mtime: u64) -> Option<[u8; 4]> {
    let header: &[u8; PYC_HEADER_BYTES] = head.get(..PYC_HEADER_BYTES)?.try_into().ok()?;
    if header[2..4] != *b"\r\n" || header[4..8] != [0, 0, 0, 0] {
        return None;
    }
    let source = std::fs::metadata(source_of(pyc)?).ok()?;
    if !source.is_file() {
        return None;
    }
    let recorded_mtime = u32::from_le_bytes(header[8..12].try_into().ok()?);
    let recorded_size = u32::from_le_bytes(header[12..16].try_into().ok()?);
    let mtime = std::os::unix::fs::MetadataExt::mtime(&source);
    // Python compares both modulo 2^32: `int(st_mtime) & 0xFFFFFFFF`.
    let matched = recorded_mtime == mtime as u32 && recorded_size == source.len() as u32;
    matched.then(|| (image_mtime as u32).to_le_bytes())
}

/// The source of a PEP 3147 `.pyc`: `pkg/__pycache__/mod.cpython-311.pyc`
/// (or `.opt-1.pyc`) → `pkg/mod.py`. None outside `__pycache__`: Python
/// reads a `.pyc` beside its source only when there is no source.
pub fn source_of(pyc: &Path) -> Option<PathBuf> {
    let name = pyc.file_name()?.to_str()?;
    let cache = pyc.parent()?;
    if cache.file_name()? != "__pycache__" || !name.ends_with(".pyc") {
        return None;
    }
    let module = name.split('.').next().filter(|m| !m.is_empty())?;
    Some(cache.parent()?.join(format!("{module}.py")))
}

/// A `.pyc` of CPython 3.11's magic with these header fields and a few bytes of "code".
#[cfg(test)]
pub(super) fn pyc_bytes(flags: u32, mtime: u32, size: u32) -> Vec<u8> {
    let mut bytes = vec![0xa7, 0x0d, b'\r', b'\n'];
    bytes.extend(flags.to_le_bytes());
    bytes.extend(mtime.to_le_bytes());
    bytes.extend(size.to_le_bytes());
    bytes.extend(b"marshalled code");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u32, mtime: u32, size: u32) -> Vec<u8> {
        pyc_bytes(flags, mtime, size)
    }

    #[test]
    fn sources_of_cached_bytecode() {
        assert_eq!(
            source_of(Path::new("/v/pkg/__pycache__/mod.cpython-311.pyc")),
            Some(PathBuf::from("/v/pkg/mod.py"))
        );
        assert_eq!(
            source_of(Path::new("/v/pkg/__pycache__/mod.cpython-311.opt-2.pyc")),
            Some(PathBuf::from("/v/pkg/mod.py"))
        );
        assert_eq!(source_of(Path::new("/v/pkg/mod.pyc")), None);
        assert_eq!(source_of(Path::new("/v/__pycache__/x.txt")), None);
    }

    #[test]
    fn only_a_timestamp_pyc_matching_its_source_is_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("mod.py");
        std::fs::write(&source, "x = 1\n").unwrap();
        std::fs::create_dir(dir.path().join("__pycache__")).unwrap();
        let pyc = dir.path().join("__pycache__/mod.cpython-311.pyc");
        let stat = std::fs::metadata(&source).unwrap();
        let mtime = std::os::unix::fs::MetadataExt::mtime(&stat) as u32;
        let fixed = fixed_mtime(&pyc, &header(0, mtime, 6), 1);
        assert_eq!(fixed, Some(1u32.to_le_bytes()));
        // Stale on disk (the source changed since): left stale.
        assert_eq!(fixed_mtime(&pyc, &header(0, mtime - 5, 6), 1), None);
        assert_eq!(fixed_mtime(&pyc, &header(0, mtime, 7), 1), None);
        // Hash-based, checked or not: nothing to fix.
        assert_eq!(fixed_mtime(&pyc, &header(1, mtime, 6), 1), None);
        assert_eq!(fixed_mtime(&pyc, &header(3, mtime, 6), 1), None);
        // Not a pyc, or cut short.
        let mut not_pyc = header(0, mtime, 6);
        not_pyc[2] = b'x';
        assert_eq!(fixed_mtime(&pyc, &not_pyc, 1), None);
        assert_eq!(fixed_mtime(&pyc, &header(0, mtime, 6)[..12], 1), None);
        // No source beside it.
        let orphan = dir.path().join("__pycache__/gone.cpython-311.pyc");
        assert_eq!(fixed_mtime(&orphan, &header(0, mtime, 6), 1), None);
    }
}
