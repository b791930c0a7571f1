//! npm packages (`node_modules/[@scope/]<name>/package.json`, at any depth) and
//! JupyterLab prebuilt extensions (`share/jupyter/labextensions/[@scope/]<name>/`).
//!
//! A package owns the walked files under its folder except those under a
//! nested `node_modules`, which belong to the packages there.

use serde::Deserialize;
use serde_json::Value;

use super::license;
use super::locate::{FileIndex, Found, ReadState, split_last};
use super::purl::pep503;
use super::{Ecosystem, FileKey, InventoryError, Package, new_package};

/// A prebuilt JupyterLab extension, and the Python package its
/// `install.json` names (PEP 503-normalised).
pub(super) struct Labextension {
    pub package: Package,
    pub python_package: Option<String>,
}

/// The `package.json` fields stowage uses; any JSON shape is accepted for each.
#[derive(Debug, Deserialize)]
struct Manifest {
    name: Option<Value>,
    version: Option<Value>,
    license: Option<Value>,
    licenses: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct InstallJson {
    #[serde(rename = "packageName")]
    package_name: Option<String>,
}

/// Reads every npm package manifest the scan found.
pub(super) fn read_packages(
    cx: &mut ReadState,
    found: &Found,
) -> Result<Vec<Package>, InventoryError> {
    let mut packages = Vec::new();
    for path in &found.npm_manifests {
        let Some((name, version, license)) = read_manifest(cx, path)? else {
            continue;
        };
        let folder = split_last(path).0;
        let files = files_outside_nested(&cx.files, folder);
        let mut package = new_package(Ecosystem::Npm, name, version, path, files);
        package.license = license;
        package.license_files = license::license_files_in(cx, folder);
        packages.push(package);
    }
    Ok(packages)
}

/// Reads every prebuilt JupyterLab extension the scan found, with its `install.json`.
pub(super) fn read_labextensions(
    cx: &mut ReadState,
    found: &Found,
) -> Result<Vec<Labextension>, InventoryError> {
    let mut extensions = Vec::new();
    for path in &found.labextensions {
        let Some((name, version, license)) = read_manifest(cx, path)? else {
            continue;
        };
        let folder = split_last(path).0;
        let install_path = format!("{folder}/install.json");
        let mut python_package = None;
        if let Some(bytes) = cx.read_if_walked(&install_path)? {
            match serde_json::from_slice::<InstallJson>(&bytes) {
                Ok(install) => python_package = install.package_name.as_deref().map(pep503),
                Err(error) => cx.warn(&install_path, format_args!("not an install.json ({error})")),
            }
        }
        let files = files_outside_nested(&cx.files, folder);
        let mut package = new_package(Ecosystem::Npm, name, version, path, files);
        package.license = license;
        package.license_files = license::license_files_in(cx, folder);
        extensions.push(Labextension {
            package,
            python_package,
        });
    }
    Ok(extensions)
}

/// Name, version and license of a manifest; `None` when it has no name or version
/// (a warning only when it is not JSON at all).
fn read_manifest(
    cx: &mut ReadState,
    path: &str,
) -> Result<Option<(String, String, Option<String>)>, InventoryError> {
    let Some(bytes) = cx.read_metadata(path)? else {
        return Ok(None);
    };
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(manifest) => manifest,
        Err(error) => {
            cx.warn(path, format_args!("not a package.json ({error})"));
            return Ok(None);
        }
    };
    let (Some(name), Some(version)) = (
        text(manifest.name.as_ref()),
        text(manifest.version.as_ref()),
    ) else {
        return Ok(None);
    };
    Ok(Some((
        name.to_owned(),
        version.to_owned(),
        license(&manifest),
    )))
}

/// A non-empty string value.
fn text(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The declared license as an SPDX expression where it names one (see
/// [`license::free_text`]), else as written (`SEE LICENSE IN LICENSE.txt`).
fn license(manifest: &Manifest) -> Option<String> {
    let text = declared_text(manifest)?;
    Some(license::free_text(&text).unwrap_or(text))
}

/// `"license": "MIT"`, the legacy `{"type": "MIT"}`, or the legacy
/// `"licenses": [{"type": …}]` (joined with OR).
fn declared_text(manifest: &Manifest) -> Option<String> {
    let one = |value: &Value| match value {
        Value::String(text) => Some(text.trim().to_owned()),
        Value::Object(object) => object
            .get("type")
            .and_then(Value::as_str)
            .map(|t| t.trim().to_owned()),
        _ => None,
    };
    if let Some(license) = manifest.license.as_ref().and_then(one) {
        return Some(license).filter(|l| !l.is_empty());
    }
    let all: Vec<String> = match manifest.licenses.as_ref() {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(one)
            .filter(|l| !l.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    (!all.is_empty()).then(|| all.join(" OR "))
}

/// The walked files under `folder`, skipping each nested `node_modules` subtree in one jump.
fn files_outside_nested(index: &FileIndex, folder: &str) -> Vec<FileKey> {
    let under = index.range_under(folder);
    let skip = folder.len() + 1;
    let mut files = Vec::new();
    let mut next = under.start;
    while let Some((at, path, key)) = index.files_in(next..under.end).next() {
        let rest = &path[skip..];
        let nested = if rest.starts_with("node_modules/") {
            Some(0)
        } else {
            rest.find("/node_modules/").map(|at| at + 1)
        };
        if let Some(nested_at) = nested {
            let nested_folder = &path[..skip + nested_at + "node_modules".len()];
            next = index.range_under(nested_folder).end.max(at + 1);
            continue;
        }
        files.push(key);
        next = at + 1;
    }
    files
}
