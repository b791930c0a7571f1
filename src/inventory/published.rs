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
        let recorded = self
            .packages
            .iter()
            .enumerate()
            .find_map(|(index, package)| {
                let file = package.files.iter().find(|f| f.path == rel)?;
                Some((index, package.ecosystem, file.sha256?))
            });
        let Some((package, ecosystem, expected)) = recorded else {
            return Ok(None);
        };
        let path = root.join(rel);
        let read = |source: io::Error| InventoryError::Read {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(read)?;
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher).map_err(read)?;
        let actual: [u8; 32] = hasher.finalize().into();
        if actual != expected {
            return Ok(None);
        }
        let record = match ecosystem {
            Ecosystem::Conda => "conda-meta record",
            _ => "RECORD",
        };
        Ok(Some(Published { package, record }))
    }
}
