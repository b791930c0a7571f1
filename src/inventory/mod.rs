//! What an app library holds, read from its package metadata only: packages, their files and recorded hashes, the venv it is.
//!
//! The inventory never walks a tree or reads a file's content: it is given
//! the relative paths the layer walk already found, picks out the metadata
//! files among them (`*.dist-info/RECORD`, `*.egg-info`, `conda-meta/*.json`,
//! R `DESCRIPTION`, `package.json` under `node_modules` and JupyterLab's
//! `labextensions`, `pyvenv.cfg`) and reads only those, and the license
//! files of the packages whose metadata does not say their license clearly. What it is not for:
//! deciding layers (that is `layer::split`) or checking hashes (the build
//! hashes a file only when the secret scan found something in it).

mod conda;
pub mod license;
mod locate;
mod npm;
mod prefix;
mod purl;
mod python;
mod r;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod published;
pub use conda::channel_names as conda_channel_names;
pub use published::Published;
pub use purl::pep503;

/// Where a package comes from; decides its purl type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

/// The number the caller gives each walked path (unique per path); the
/// inventory names a package's files by it instead of keeping a copy of each
/// path, so a library of a million files costs 8 bytes a file here.
pub type FileKey = u64;

/// A conda file that embeds its install prefix (`prefix_placeholder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrefixedFile {
    pub key: FileKey,
    /// `file_mode` is `binary` (NUL-padded rewrite), else text.
    pub binary: bool,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub ecosystem: Ecosystem,
    /// As the metadata declares it (`Jinja2`, `@jupyterlab/foo`).
    pub name: String,
    pub version: String,
    /// The declared license, when there is one: an SPDX expression where
    /// the metadata means one license expression unambiguously (`MIT License`
    /// is `MIT`, R's `GPL-2 | GPL-3` is `GPL-2.0-only OR GPL-3.0-only`), else
    /// the text as written (`BSD License`).
    pub license: Option<String>,
    /// The license concluded from the license files the package ships (an
    /// SPDX expression), found only where the declared one is missing or not
    /// an SPDX expression. [`Package::license_to_evaluate`] picks between them.
    pub license_concluded: Option<String>,
    /// The package's license files (`LICENSE*`, `COPYING*` in its metadata
    /// folder, dist-info `licenses/`, or its own folder), relative to the
    /// library root, sorted.
    pub license_files: Vec<String>,
    /// Package URL, e.g. `pkg:pypi/jinja2@3.1.6`, `pkg:conda/numpy@2.1.0?channel=conda-forge`.
    pub purl: String,
    /// The metadata folder or file, relative to the library root.
    pub metadata: String,
    /// The walked files the package owns, by key, sorted and unique. Files
    /// the metadata lists but the walk did not find (outside the root,
    /// excluded, missing) are left out.
    pub files: Vec<FileKey>,
    /// conda: the files among them that embed the build prefix, sorted by key.
    pub prefixed: Vec<PrefixedFile>,
    /// The tool that installed it, where recorded (`pip`, `uv`, `conda`).
    pub installer: Option<String>,
    /// Python: `direct_url.json` says the install is editable (its code lives elsewhere).
    pub editable: bool,
    /// Where an editable install's code is (`direct_url.json`'s `file://` URL), when it says.
    pub editable_location: Option<String>,
    /// A JupyterLab prebuilt extension shipped by a Python package, or a
    /// dist-info vendored inside one (`setuptools/_vendor/wheel-….dist-info`):
    /// that package's index. Its files belong to the Python package, not to it.
    pub shipped_by: Option<usize>,
    /// conda: the channel as the record names it (`pkgs/main`,
    /// `https://conda.anaconda.org/conda-forge/linux-64`), for the export policy.
    pub channel: Option<String>,
}

/// A venv's `pyvenv.cfg`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenvConfig {
    /// `home`: the folder of the Python the venv was made from.
    pub home: Option<String>,
    /// `version` or `version_info`.
    pub version: Option<String>,
    /// `command`: how the venv was made (names the prefix it was made at).
    pub command: Option<String>,
}

/// An editable install: the package's code is wherever `location` says, not in the library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Editable {
    /// The package's name, as its metadata or file name gives it.
    pub package: String,
    /// The file that says so, relative to the library root.
    pub metadata: String,
    /// The absolute path of the code, when the file names one.
    pub location: Option<String>,
}

/// Everything the inventory found in one library source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Sorted by ecosystem, lowercase name, version, metadata path.
    pub packages: Vec<Package>,
    /// Folders that hold packages, relative to the root (`lib/python3.11/site-packages`,
    /// `node_modules`, an R library folder), sorted; used for the split when no metadata is found.
    pub package_folders: Vec<String>,
    /// The root is a venv (`pyvenv.cfg` at its top).
    pub venv: Option<VenvConfig>,
    /// The absolute path the library was installed at, as its own files name it
    /// (a venv's `pyvenv.cfg` `command`, `bin/` shebangs, conda's history).
    pub install_prefix: Option<String>,
    /// Editable installs (`direct_url.json`, `__editable__*.pth`, `*.egg-link`).
    pub editables: Vec<Editable>,
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

/// One path the layer walk found under the library root.
#[derive(Debug, Clone, Copy)]
pub struct WalkedPath<'a> {
    /// Relative to the library root, `/`-separated.
    pub path: &'a [u8],
    pub is_dir: bool,
    /// The caller's key for the path, which packages name their files by.
    pub key: FileKey,
}

/// The walk under the library root as its owner keeps it: sorted by path
/// bytes, with random access. The inventory searches it in place (the layer
/// plan's own entries serve), so it makes no copy of a million paths.
/// `Sync`: the inventory reads metadata folders on several threads at once.
pub trait WalkedTree: Sync {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry at `index`, which is below `len()`.
    fn entry(&self, index: usize) -> WalkedPath<'_>;
}

/// A list of walked paths, sorted by path bytes.
impl WalkedTree for Vec<WalkedPath<'_>> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn entry(&self, index: usize) -> WalkedPath<'_> {
        self[index]
    }
}

impl Inventory {
    /// Reads the metadata files among the walked paths (relative to `root`).
    ///
    /// Only metadata files are read, each once; a file the walk did not find
    /// is never opened. Metadata that cannot be understood is skipped with a
    /// line in `warnings`; a metadata file that cannot be read is an error.
    pub fn read(root: &Path, walked: &dyn WalkedTree) -> Result<Inventory, InventoryError> {
        let (found, files) = locate::scan(walked);
        let mut cx = locate::ReadState {
            root,
            files,
            warnings: Vec::new(),
        };
        let venv = if found.pyvenv {
            python::read_venv(&mut cx)?
        } else {
            None
        };
        let install_prefix = prefix::install_prefix(&mut cx, venv.as_ref())?;
        let mut packages = python::read_packages(&mut cx, &found)?;
        packages.extend(conda::read_packages(&mut cx, &found)?);
        let (r_packages, r_libraries) = r::read_packages(&mut cx, &found)?;
        packages.extend(r_packages);
        packages.extend(npm::read_packages(&mut cx, &found)?);
        let labextensions = npm::read_labextensions(&mut cx, &found)?;
        let mut shipping: HashMap<String, Option<String>> = HashMap::new();
        for extension in labextensions {
            shipping.insert(extension.package.metadata.clone(), extension.python_package);
            packages.push(extension.package);
        }
        for package in &mut packages {
            package.files.sort_unstable();
            package.files.dedup();
            package.prefixed.sort_unstable();
            package.prefixed.dedup_by_key(|file| file.key);
        }
        packages.sort_by_cached_key(|p| {
            (
                p.ecosystem,
                p.name.to_lowercase(),
                p.version.clone(),
                p.metadata.clone(),
            )
        });
        license::conclude(&mut cx, &mut packages)?;
        let editables = prefix::read_editables(&mut cx, &packages)?;
        link_vendored_dist_infos(&mut packages, &cx.files);
        link_shipped_extensions(&mut packages, &shipping, &cx.files);
        let mut package_folders: Vec<String> = found
            .package_folders
            .iter()
            .map(|f| (*f).to_owned())
            .collect();
        package_folders.extend(r_libraries);
        package_folders.sort_unstable();
        package_folders.dedup();
        Ok(Inventory {
            packages,
            package_folders,
            venv,
            install_prefix,
            editables,
            warnings: cx.warnings,
        })
    }

    /// Which package owns each file: the first in sort order that lists it
    /// (a shipped extension's or vendored dist-info's shipper).
    pub fn owners(&self) -> Owners {
        // A merge of the packages' sorted lists, smallest key first and, for
        // a key two list, the first package in sort order first: the output
        // is written once, with nothing bigger in between.
        let total: usize = self.packages.iter().map(|p| p.files.len()).sum();
        let mut keys: Vec<FileKey> = Vec::with_capacity(total);
        let mut packages: Vec<u32> = Vec::with_capacity(total);
        let mut heads: BinaryHeap<Reverse<(FileKey, usize, usize)>> = self
            .packages
            .iter()
            .enumerate()
            .filter_map(|(index, p)| Some(Reverse((*p.files.first()?, index, 0))))
            .collect();
        while let Some(Reverse((key, index, at))) = heads.pop() {
            let package = &self.packages[index];
            if keys.last() != Some(&key) {
                let Ok(owner) = u32::try_from(package.shipped_by.unwrap_or(index)) else {
                    break;
                };
                keys.push(key);
                packages.push(owner);
            }
            if let Some(&next) = package.files.get(at + 1) {
                heads.push(Reverse((next, index, at + 1)));
            }
        }
        Owners { keys, packages }
    }

    /// The packages that list the file `key`, in sort order, with their index.
    fn listing(&self, key: FileKey) -> impl Iterator<Item = (usize, &Package)> {
        self.packages
            .iter()
            .enumerate()
            .filter(move |(_, package)| package.files.binary_search(&key).is_ok())
    }
}

/// File key → the index of the package that owns it, for every file some package lists.
#[derive(Debug, Default)]
pub struct Owners {
    /// Sorted, one per file.
    keys: Vec<FileKey>,
    /// The owner of the file at the same place in `keys`.
    packages: Vec<u32>,
}

impl Owners {
    /// The owning package's index in the inventory's `packages`.
    pub fn get(&self, key: FileKey) -> Option<usize> {
        let at = self.keys.binary_search(&key).ok()?;
        Some(self.packages[at] as usize)
    }
}

/// A package with no license, installer or link yet, and the purl of its
/// ecosystem (conda adds its qualifiers after).
fn new_package(
    ecosystem: Ecosystem,
    name: String,
    version: String,
    metadata: &str,
    files: Vec<FileKey>,
) -> Package {
    let purl_name = match ecosystem {
        Ecosystem::Python => purl::pep503(&name),
        Ecosystem::Conda | Ecosystem::R | Ecosystem::Npm => name.clone(),
    };
    let purl = purl::purl(ecosystem.name(), &purl_name, &version, &[]);
    Package {
        ecosystem,
        name,
        version,
        license: None,
        license_concluded: None,
        license_files: Vec::new(),
        purl,
        metadata: metadata.to_owned(),
        files,
        prefixed: Vec::new(),
        installer: None,
        editable: false,
        editable_location: None,
        shipped_by: None,
        channel: None,
    }
}

/// Sets `shipped_by` on each dist-info another package's file list names:
/// a Python RECORD (`setuptools/_vendor/wheel-0.43.0.dist-info`: the vendored
/// project's files are the vendoring package's, as it installed and may have
/// patched them), or a conda record (conda's Python packages carry a
/// dist-info; the conda package is the one listed, once).
fn link_vendored_dist_infos(packages: &mut [Package], walked: &locate::FileIndex) {
    // Each Python dist-info's METADATA by key, sorted: a package's files are
    // looked up here with a binary search of u64s, the cheapest test per file.
    let mut metadata_files: Vec<(FileKey, usize)> = packages
        .iter()
        .enumerate()
        .filter(|(_, p)| p.ecosystem == Ecosystem::Python && p.metadata.ends_with(".dist-info"))
        .filter_map(|(index, p)| Some((walked.key_of(&format!("{}/METADATA", p.metadata))?, index)))
        .collect();
    metadata_files.sort_unstable();
    let mut links: Vec<(usize, usize)> = Vec::new();
    if !metadata_files.is_empty() {
        for (index, package) in packages.iter().enumerate() {
            if !matches!(package.ecosystem, Ecosystem::Python | Ecosystem::Conda) {
                continue;
            }
            for key in &package.files {
                let Ok(at) = metadata_files.binary_search_by_key(key, |&(k, _)| k) else {
                    continue;
                };
                let vendored = metadata_files[at].1;
                if vendored != index {
                    links.push((vendored, index));
                }
            }
        }
    }
    for (vendored, shipper) in links {
        if packages[vendored].shipped_by.is_none() {
            packages[vendored].shipped_by = Some(shipper);
        }
    }
    // A vendored project that vendors another: point at the outermost shipper
    // (bounded, should two dist-infos list each other).
    for index in 0..packages.len() {
        let mut shipper = packages[index].shipped_by;
        for _ in 0..packages.len() {
            match shipper.and_then(|s| packages[s].shipped_by) {
                Some(outer) if Some(outer) != shipper && outer != index => shipper = Some(outer),
                _ => break,
            }
        }
        packages[index].shipped_by = shipper;
    }
}

/// Sets `shipped_by` on each JupyterLab extension a Python package ships: the
/// one whose RECORD lists the extension's `package.json`, else the one its
/// `install.json` names. `shipping` maps an extension's metadata path to that name.
fn link_shipped_extensions(
    packages: &mut [Package],
    shipping: &HashMap<String, Option<String>>,
    walked: &locate::FileIndex,
) {
    if shipping.is_empty() {
        return;
    }
    // Each extension's manifest by key, to find the RECORD that lists it.
    let manifests: Vec<(&str, FileKey)> = shipping
        .keys()
        .filter_map(|metadata| Some((metadata.as_str(), walked.key_of(metadata)?)))
        .collect();
    let mut by_record: HashMap<&str, usize> = HashMap::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (index, package) in packages.iter().enumerate() {
        if package.ecosystem != Ecosystem::Python {
            continue;
        }
        by_name.entry(purl::pep503(&package.name)).or_insert(index);
        for (metadata, key) in &manifests {
            if package.files.binary_search(key).is_ok() {
                by_record.entry(metadata).or_insert(index);
            }
        }
    }
    let links: Vec<(usize, usize)> = packages
        .iter()
        .enumerate()
        .filter_map(|(index, package)| {
            let named = shipping.get(&package.metadata)?;
            let shipper = by_record
                .get(package.metadata.as_str())
                .or_else(|| named.as_ref().and_then(|name| by_name.get(name)))?;
            Some((index, *shipper))
        })
        .collect();
    for (index, shipper) in links {
        packages[index].shipped_by = Some(packages[shipper].shipped_by.unwrap_or(shipper));
    }
}
