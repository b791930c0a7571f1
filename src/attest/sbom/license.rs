//! Which declared licenses are SPDX license expressions, in their canonical spelling.
//!
//! Packages declare licenses as free text (`MIT`, `BSD License`,
//! `GPL-2 | GPL-3`, `MIT + file LICENSE`). An SBOM may put a license in an
//! expression field only when it is a valid SPDX expression, or validators
//! reject the whole document; anything else goes in as plain text. The
//! identifiers below are a deliberately short list of long-standing, widely
//! used ones: a license missing from it is written as text, which is always
//! valid, where an identifier the validator's list lacks would not be.

/// SPDX license identifiers accepted in an expression.
const LICENSES: &[&str] = &[
    "0BSD",
    "AFL-2.1",
    "AFL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "APSL-2.0",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-1.0",
    "Artistic-2.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-2-Clause-Patent",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSD-4-Clause",
    "BSL-1.0",
    "Beerware",
    "BlueOak-1.0.0",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "CECILL-2.1",
    "CPL-1.0",
    "ECL-2.0",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.1",
    "EUPL-1.2",
    "FTL",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ICU",
    "IJG",
    "ISC",
    "Intel",
    "JSON",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "LPPL-1.3c",
    "Libpng",
    "MIT",
    "MIT-0",
    "MIT-CMU",
    "MPL-1.1",
    "MPL-2.0",
    "MS-PL",
    "MS-RL",
    "NCSA",
    "OFL-1.1",
    "OpenSSL",
    "PHP-3.01",
    "PSF-2.0",
    "PostgreSQL",
    "Python-2.0",
    "Python-2.0.1",
    "Qhull",
    "Ruby",
    "TCL",
    "UPL-1.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "Vim",
    "W3C",
    "WTFPL",
    "X11",
    "ZPL-2.1",
    "Zlib",
    "bzip2-1.0.6",
    "curl",
    "libtiff",
    "zlib-acknowledgement",
];

/// SPDX license exception identifiers accepted after `WITH`.
const EXCEPTIONS: &[&str] = &[
    "Autoconf-exception-3.0",
    "Bison-exception-2.2",
    "Classpath-exception-2.0",
    "Font-exception-2.0",
    "GCC-exception-3.1",
    "LLVM-exception",
    "OCaml-LGPL-linking-exception",
    "OpenJDK-assembly-exception-1.0",
    "Qt-LGPL-exception-1.1",
    "Universal-FOSS-exception-1.0",
];

/// `text` as a canonical SPDX license expression, or `None` when it is not
/// one or names a license or exception outside the lists above.
///
/// The expression is read as the inventory reads declared licenses
/// (identifiers and operators in any case, deprecated GNU forms made
/// explicit), then every identifier must be in the lists. `LicenseRef-` is
/// refused (a document would have to define it), and so is `+`, which is
/// deprecated.
pub(super) fn spdx_expression(text: &str) -> Option<String> {
    let canonical = crate::inventory::license::spdx_expression(text)?;
    let expression = spdx::Expression::parse(&canonical).ok()?;
    let listed = expression.requirements().all(|requirement| {
        let license = match &requirement.req.license {
            spdx::LicenseItem::Spdx { id, or_later } => !or_later && LICENSES.contains(&id.name),
            spdx::LicenseItem::Other(_) => false,
        };
        let exception = match &requirement.req.addition {
            None => true,
            Some(spdx::AdditionItem::Spdx(id)) => EXCEPTIONS.contains(&id.name),
            Some(spdx::AdditionItem::Other(_)) => false,
        };
        license && exception
    });
    listed.then_some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_identifiers_come_back_canonical() {
        assert_eq!(spdx_expression("MIT").as_deref(), Some("MIT"));
        assert_eq!(
            spdx_expression(" apache-2.0 ").as_deref(),
            Some("Apache-2.0")
        );
        assert_eq!(
            spdx_expression("mit or Apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            spdx_expression("GPL-2.0+").as_deref(),
            Some("GPL-2.0-or-later")
        );
    }

    #[test]
    fn compound_expressions_are_accepted_and_normalised() {
        assert_eq!(
            spdx_expression("( mit OR Apache-2.0 )AND BSD-3-Clause").as_deref(),
            Some("(MIT OR Apache-2.0) AND BSD-3-Clause")
        );
        assert_eq!(
            spdx_expression("GPL-2.0-only WITH Classpath-exception-2.0").as_deref(),
            Some("GPL-2.0-only WITH Classpath-exception-2.0")
        );
    }

    #[test]
    fn free_text_is_not_an_expression() {
        for text in [
            "",
            "BSD License",
            "MIT License",
            "GPL-2 | GPL-3",
            "MIT + file LICENSE",
            "LicenseRef-mine",
            "Apache-2.0+",
            "MIT OR LicenseRef-mine",
            "Glide",
            "(MIT",
            "MIT)",
            "MIT AND",
            "MIT WITH Apache-2.0",
            "Classpath-exception-2.0",
        ] {
            assert_eq!(spdx_expression(text), None, "{text:?}");
        }
    }
}
