//! What an app library holds, read from its package metadata only: packages, their files and recorded hashes, the venv it is.
//!
//! The inventory never walks a tree or reads a file's content: it is given
//! the relative paths the layer walk already found, picks out the metadata
//! files among them (`*.dist-info/RECORD`, `*.egg-info`, `conda-meta/*.json`,
//! R `DESCRIPTION`, `package.json` under `node_modules` and JupyterLab's
//! `labextensions`, `pyvenv.cfg`) and reads only those. What it is not for:
//! deciding layers (that is `layer::split`) or checking hashes (the build
//! hashes a file only when the secret scan found something in it).

mod conda;
mod locate;
mod npm;
mod prefix;
mod purl;
mod python;
mod r;
#[cfg(test)]
mod tests;

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
    /// Where an editable install's code is (`direct_url.json`'s `file://` URL), when it says.
    pub editable_location: Option<String>,
    /// A JupyterLab prebuilt extension shipped by a Python package, or a
    /// dist-info vendored inside one (`setuptools/_vendor/wheel-….dist-info`):
    /// that package's index. Its files belong to the Python package, not to it.
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

/// An editable install: the package's code is wherever `location` says, not in the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editable {
    /// The package's name, as its metadata or file name gives it.
    pub package: String,
    /// The file that says so, relative to the library root.
    pub metadata: String,
    /// The absolute path of the code, when the file names one.
    pub location: Option<String>,
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

/// One path the layer walk found, relative to the library root.
#[derive(Debug, Clone, Copy)]
pub struct WalkedPath<'a> {
    pub path: &'a str,
    pub is_dir: bool,
}

impl Inventory {
    /// Reads the metadata files among `paths` (relative to `root`, as the walk found them).
    ///
    /// Only metadata files are read, each once; a file the walk did not find
    /// is never opened. Metadata that cannot be understood is skipped with a
    /// line in `warnings`; a metadata file that cannot be read is an error.
    pub fn read<'a>(
        root: &Path,
        paths: impl IntoIterator<Item = WalkedPath<'a>>,
    ) -> Result<Inventory, InventoryError> {
        let (found, files) = locate::scan(paths);
        let mut cx = locate::Context {
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
            sort_files(&mut package.files);
        }
        packages.sort_by_cached_key(|p| {
            (
                p.ecosystem,
                p.name.to_lowercase(),
                p.version.clone(),
                p.metadata.clone(),
            )
        });
        let editables = prefix::read_editables(&mut cx, &packages)?;
        link_vendored_dist_infos(&mut packages);
        link_shipped_extensions(&mut packages, &shipping);
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

    /// The first package in sort order whose metadata records a sha256 for
    /// `path` (its shipper, for a shipped extension), and that hash.
    ///
    /// Costs a binary search per Python and conda package (files are
    /// sorted), so it suits the few files the secret scan flags; use `owners`
    /// for bulk questions.
    pub fn recorded(&self, path: &str) -> Option<(usize, [u8; 32])> {
        self.recorded_all(path).next()
    }

    /// Every package that records a sha256 for `path`, in sort order, with
    /// that hash. Two can: a conda package's record and the RECORD of the
    /// dist-info it installs may differ when conda rewrote a prefix.
    pub fn recorded_all<'s>(
        &'s self,
        path: &'s str,
    ) -> impl Iterator<Item = (usize, [u8; 32])> + 's {
        // Only dist-info RECORDs and conda records carry hashes.
        self.packages
            .iter()
            .enumerate()
            .filter(|(_, package)| {
                matches!(package.ecosystem, Ecosystem::Python | Ecosystem::Conda)
            })
            .filter_map(move |(index, package)| {
                let at = package
                    .files
                    .binary_search_by(|file| file.path.as_str().cmp(path))
                    .ok()?;
                let sha256 = package.files[at].sha256?;
                Some((package.shipped_by.unwrap_or(index), sha256))
            })
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

/// A package with no license, installer or link yet, and the purl of its
/// ecosystem (conda adds its qualifiers after).
fn new_package(
    ecosystem: Ecosystem,
    name: String,
    version: String,
    metadata: &str,
    files: Vec<PackageFile>,
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
        purl,
        metadata: metadata.to_owned(),
        files,
        installer: None,
        editable: false,
        editable_location: None,
        shipped_by: None,
    }
}

/// Sorts by path and keeps one entry per path, the one with a recorded hash when there is one.
fn sort_files(files: &mut Vec<PackageFile>) {
    files.sort_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then(a.sha256.is_none().cmp(&b.sha256.is_none()))
    });
    files.dedup_by(|later, first| later.path == first.path);
}

/// Sets `shipped_by` on each dist-info another package's file list names:
/// a Python RECORD (`setuptools/_vendor/wheel-0.43.0.dist-info`: the vendored
/// project's files are the vendoring package's, as it installed and may have
/// patched them), or a conda record (conda's Python packages carry a
/// dist-info; the conda package is the one listed, once).
fn link_vendored_dist_infos(packages: &mut [Package]) {
    let metadata_files: HashMap<String, usize> = packages
        .iter()
        .enumerate()
        .filter(|(_, p)| p.ecosystem == Ecosystem::Python && p.metadata.ends_with(".dist-info"))
        .map(|(index, p)| (format!("{}/METADATA", p.metadata), index))
        .collect();
    let mut links: Vec<(usize, usize)> = Vec::new();
    for (index, package) in packages.iter().enumerate() {
        if !matches!(package.ecosystem, Ecosystem::Python | Ecosystem::Conda) {
            continue;
        }
        for file in package
            .files
            .iter()
            .filter(|f| f.path.ends_with("/METADATA"))
        {
            match metadata_files.get(&file.path) {
                Some(&vendored) if vendored != index => links.push((vendored, index)),
                _ => {}
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
fn link_shipped_extensions(packages: &mut [Package], shipping: &HashMap<String, Option<String>>) {
    if shipping.is_empty() {
        return;
    }
    let mut by_record: HashMap<&str, usize> = HashMap::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (index, package) in packages.iter().enumerate() {
        if package.ecosystem != Ecosystem::Python {
            continue;
        }
        by_name.entry(purl::pep503(&package.name)).or_insert(index);
        for file in package
            .files
            .iter()
            .filter(|f| f.path.ends_with("/package.json"))
        {
            if shipping.contains_key(&file.path) {
                by_record.entry(file.path.as_str()).or_insert(index);
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
