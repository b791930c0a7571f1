//! `stowage init`: write a commented starter stowage.toml.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::spec;

/// Writes the starter spec into `dir` (I/O); never overwrites one that is there.
pub fn init(dir: &Path) -> Result<PathBuf, Error> {
    Ok(spec::write_starter_spec(dir)?)
}
