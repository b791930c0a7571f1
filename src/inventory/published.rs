//! Published files: whether a library file's bytes are exactly those its package's metadata records.
//!
//! Used only for files the secret scan found something in, so a finding in
//! a file that came verbatim from a published package (tornado's test key)
//! can be a note instead of a stop. Reads the file once; never called on
//! the whole tree.

use std::fs::File;
use std::io;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::{Ecosystem, Inventory, InventoryError};

/// A file that matched its package's recorded hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Index into the inventory's packages.
    pub package: usize,
    /// What recorded the hash: `RECORD`, `conda-meta record`.
    pub record: &'static str,
}

impl Inventory {
    /// Whether `rel` (relative to the library root `root`) is a file some package records
    /// with a hash, and its bytes on disk have exactly that hash (I/O: reads that one file).
    pub fn published(&self, root: &Path, rel: &str) -> Result<Option<Published>, InventoryError> {
        // Every record of the file: a conda env's Python package has a RECORD
        // (the wheel's bytes) and a conda record (the bytes as installed).
        let records: Vec<(usize, Ecosystem, [u8; 32])> = self
            .packages
            .iter()
            .enumerate()
            .filter_map(|(index, package)| {
                let at = package
                    .files
                    .binary_search_by(|file| file.path.as_str().cmp(rel))
                    .ok()?;
                let sha256 = package.files[at].sha256?;
                Some((
                    package.shipped_by.unwrap_or(index),
                    package.ecosystem,
                    sha256,
                ))
            })
            .collect();
        if records.is_empty() {
            return Ok(None);
        }
        let path = root.join(rel);
        let read = |source: io::Error| InventoryError::Read {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(read)?;
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher).map_err(read)?;
        let actual: [u8; 32] = hasher.finalize().into();
        Ok(records
            .into_iter()
            .find(|(_, _, expected)| *expected == actual)
            .map(|(package, ecosystem, _)| Published {
                package,
                record: match ecosystem {
                    Ecosystem::Conda => "conda-meta record",
                    _ => "RECORD",
                },
            }))
    }
}
