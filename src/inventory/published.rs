//! Published files: whether a library file's bytes are exactly those its package's metadata records.
//!
//! Used only for files the secret scan found something in, so a finding in
//! a file that came verbatim from a published package (tornado's test key)
//! can be a note instead of a stop. The inventory keeps no hashes (a million
//! of them would cost 32 MB): the metadata of the few packages that list the
//! file is read again, and the file is hashed once. Never called on the
//! whole tree.

use std::fs::File;
use std::io;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::locate::{read_no_follow, split_last};
use super::{Ecosystem, FileKey, Inventory, InventoryError, conda, python};

/// A file that matched its package's recorded hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Index into the inventory's packages.
    pub package: usize,
    /// What recorded the hash: `RECORD`, `conda-meta record`.
    pub record: &'static str,
}

/// One package's recorded hash of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Index into the inventory's packages (the shipper, for a vendored dist-info).
    pub package: usize,
    pub ecosystem: Ecosystem,
    pub sha256: [u8; 32],
}

impl Inventory {
    /// Every hash the packages that list the file `rel` (walked with `key`)
    /// record for it, in package sort order (I/O: reads their RECORD or
    /// conda-meta record). Two can: a conda env's Python package has a RECORD
    /// (the wheel's bytes) and a conda record (the bytes as installed).
    pub fn recorded(
        &self,
        root: &Path,
        rel: &str,
        key: FileKey,
    ) -> Result<Vec<Recorded>, InventoryError> {
        let mut found = Vec::new();
        for (index, package) in self.listing(key) {
            let sha256 = match package.ecosystem {
                Ecosystem::Python if package.metadata.ends_with(".dist-info") => {
                    let record = format!("{}/RECORD", package.metadata);
                    let text = read_metadata(root, &record)?;
                    let text = String::from_utf8_lossy(&text);
                    python::recorded_hash(split_last(&package.metadata).0, &text, rel)
                }
                Ecosystem::Conda => {
                    let bytes = read_metadata(root, &package.metadata)?;
                    conda::recorded_hash(conda::env_root(&package.metadata), &bytes, rel)
                }
                _ => None,
            };
            if let Some(sha256) = sha256 {
                found.push(Recorded {
                    package: package.shipped_by.unwrap_or(index),
                    ecosystem: package.ecosystem,
                    sha256,
                });
            }
        }
        Ok(found)
    }

    /// Whether `rel` (relative to the library root `root`, walked with `key`) is a file
    /// some package records with a hash, and its bytes on disk have exactly that hash
    /// (I/O: reads that file and the metadata of the packages that list it).
    pub fn published(
        &self,
        root: &Path,
        rel: &str,
        key: FileKey,
    ) -> Result<Option<Published>, InventoryError> {
        let records = self.recorded(root, rel, key)?;
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
            .find(|record| record.sha256 == actual)
            .map(|record| Published {
                package: record.package,
                record: match record.ecosystem {
                    Ecosystem::Conda => "conda-meta record",
                    _ => "RECORD",
                },
            }))
    }
}

/// A metadata file read again (not through a symlink, as the first time).
fn read_metadata(root: &Path, rel: &str) -> Result<Vec<u8>, InventoryError> {
    let path = root.join(rel);
    read_no_follow(&path).map_err(|source| InventoryError::Read { path, source })
}
