//! Licenses of packages: the declared one as an SPDX expression where the metadata means one, and one concluded from the license files a package ships where it does not.
//!
//! Concluding reads files: only the license files (`LICENSE*`, `LICENCE*`,
//! `COPYING*`) of a package whose declared license is missing or not an SPDX
//! expression, each once, and only when the walk found them.

mod declared;
mod matcher;

pub(super) use declared::{classifiers, free_text, r_license};
pub use declared::{is_spdx_expression, spdx_expression};
pub use matcher::{MARGIN, Matcher, THRESHOLD};

use super::locate::{ReadState, split_last};
use super::{Ecosystem, InventoryError, Package};

/// Declared license text as the SPDX expression it plainly means, read the
/// way the ecosystem writes licenses (R's `GPL-2 | GPL-3`, Python's and
/// npm's names in words); None for a name that stands for several licenses
/// or none, such as `BSD License` or `Apache Software License`.
pub fn declared_expression(ecosystem: Ecosystem, text: &str) -> Option<String> {
    match ecosystem {
        Ecosystem::R => r_license(text),
        _ => free_text(text),
    }
}

/// License files longer than this are not one license text (GPL-3.0 is 35 KB).
const LONGEST_LICENSE_FILE: usize = 256 * 1024;

impl Package {
    /// The license a policy evaluates: the declared license when it is a
    /// valid SPDX expression, else the concluded one; `None` when neither
    /// is known. Always a valid SPDX expression (`spdx::Expression::parse`
    /// accepts it).
    pub fn license_to_evaluate(&self) -> Option<&str> {
        self.license
            .as_deref()
            .filter(|declared| is_spdx_expression(declared))
            .or(self.license_concluded.as_deref())
    }
}

/// Whether the file name is a license file's: `LICENSE`, `LICENCE`,
/// `COPYING`, with any suffix (`LICENSE.txt`, `LICENSE-MIT`, `COPYING.LIB`), any case.
pub(super) fn is_license_file_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["LICENSE", "LICENCE", "COPYING"]
        .iter()
        .any(|prefix| upper.starts_with(prefix))
}

/// The walked license files directly in `folder` (relative to the root).
pub(super) fn license_files_in(cx: &ReadState, folder: &str) -> Vec<String> {
    cx.files
        .under(folder)
        .map(|(path, _)| path)
        .filter(|path| {
            let (parent, name) = split_last(path);
            parent == folder && is_license_file_name(name)
        })
        .map(str::to_owned)
        .collect()
}

/// Sets `license_concluded` on each package whose declared license is not an
/// SPDX expression and which ships license files: the licenses those files
/// hold, joined by AND, when every one of them is identified.
pub(super) fn conclude(cx: &mut ReadState, packages: &mut [Package]) -> Result<(), InventoryError> {
    let matcher = Matcher::shared();
    for package in packages.iter_mut() {
        if package.license_files.is_empty()
            || package.license.as_deref().is_some_and(is_spdx_expression)
        {
            continue;
        }
        let mut ids: Vec<&str> = Vec::new();
        let mut all_known = true;
        for path in &package.license_files {
            let Some(bytes) = cx.read_head(path, LONGEST_LICENSE_FILE + 1)? else {
                all_known = false;
                break;
            };
            let found = (bytes.len() <= LONGEST_LICENSE_FILE)
                .then(|| matcher.identify(&String::from_utf8_lossy(&bytes)))
                .flatten();
            match found {
                Some(id) => ids.push(id),
                None => {
                    all_known = false;
                    break;
                }
            }
        }
        if all_known {
            ids.sort_unstable();
            ids.dedup();
            package.license_concluded = Some(ids.join(" AND "));
        }
    }
    Ok(())
}
