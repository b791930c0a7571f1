//! R packages: an installed package is a folder `<lib>/<Pkg>/` whose `DESCRIPTION`
//! (Debian control format) has `Package:` and `Built:`, or that has a `Meta/` folder.
//!
//! A `DESCRIPTION` that is neither (a source package, some unrelated file of
//! that name) is not an R package and is passed over without a warning.

use super::license;
use super::locate::{Found, ReadState, split_last};
use super::{Ecosystem, InventoryError, Package, new_package};

/// Reads the R packages among the scan's `DESCRIPTION` files, and the
/// library folders that hold them.
pub(super) fn read_packages(
    cx: &mut ReadState,
    found: &Found,
) -> Result<(Vec<Package>, Vec<String>), InventoryError> {
    let mut packages = Vec::new();
    let mut libraries = Vec::new();
    for path in &found.descriptions {
        let folder = split_last(path).0;
        let has_meta = cx.files.under(&format!("{folder}/Meta")).next().is_some();
        let Some(bytes) = cx.read_metadata(path)? else {
            continue;
        };
        // Older packages declare `Encoding: latin1`; names and versions are ASCII either way.
        let text = String::from_utf8_lossy(&bytes);
        let fields = parse_dcf(&text);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.as_str())
        };
        if !has_meta && field("Built").is_none() {
            continue;
        }
        let (Some(name), Some(version)) = (field("Package"), field("Version")) else {
            cx.warn(path, "no Package or Version");
            continue;
        };
        let files = cx.files.keys_under(folder).collect();
        let mut package = new_package(
            Ecosystem::R,
            name.to_owned(),
            version.to_owned(),
            path,
            files,
        );
        package.license = field("License")
            .map(|text| license::r_license(text).unwrap_or_else(|| text.to_owned()));
        package.license_files = license::license_files_in(cx, folder);
        packages.push(package);
        let library = split_last(folder).0;
        if !library.is_empty() {
            libraries.push(library.to_owned());
        }
    }
    Ok((packages, libraries))
}

/// `Field: value` lines; lines starting with whitespace continue the previous value.
fn parse_dcf(text: &str) -> Vec<(&str, String)> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim(), value.trim().to_owned()));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcf_continuations() {
        let fields = parse_dcf(
            "Package: jsonlite\nTitle: A Simple and Robust JSON Parser\n    and Generator for R\nVersion: 1.8.8\n",
        );
        assert_eq!(fields[0], ("Package", "jsonlite".to_owned()));
        assert_eq!(
            fields[1].1,
            "A Simple and Robust JSON Parser and Generator for R"
        );
        assert_eq!(fields[2], ("Version", "1.8.8".to_owned()));
    }
}
