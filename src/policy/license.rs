//! A package's license as the policy judges it: which text (declared, later
//! concluded) and how it reads as an SPDX expression.
//!
//! The SPDX grammar itself is the `spdx` crate's; this file only turns the
//! free text packages declare into something it can parse: R's `GPL-2 |
//! GPL-3` and `MIT + file LICENSE`, and a few names the trove classifiers
//! and old metadata spell out in words.

use spdx::{Expression, LicenseItem, LicenseReq, ParseMode};

use crate::inventory::{Ecosystem, Package};

/// The license text of `package` the policy judges: the declared one when
/// it is a valid SPDX expression, else the one concluded from its license
/// files (`Package::license_to_evaluate`), else the declared free text,
/// which [`expression`] may still read (`GPL-2 | GPL-3`).
///
/// The one place that chooses it.
pub fn license_of(package: &Package) -> Option<&str> {
    package
        .license_to_evaluate()
        .or(package.license.as_deref())
        .filter(|l| !l.trim().is_empty())
}

/// SPDX's syntax with the slack real metadata needs (`/` for OR, `GPL-2.0+`,
/// deprecated ids), but no guessing of imprecise names: `BSD` stays unknown
/// rather than becoming one particular BSD license.
const DECLARED: ParseMode = ParseMode {
    allow_slash_as_or_operator: true,
    allow_imprecise_license_names: false,
    allow_postfix_plus_on_gpl: true,
    allow_deprecated: true,
    allow_unknown: false,
};

/// Names written in words (lowercase) and the SPDX id they mean.
const NAMES: &[(&str, &str)] = &[
    ("gnu affero gpl 3.0", "AGPL-3.0-only"),
    ("gnu affero general public license v3", "AGPL-3.0-only"),
    (
        "gnu affero general public license v3 or later (agplv3+)",
        "AGPL-3.0-or-later",
    ),
    ("gnu general public license v2 (gplv2)", "GPL-2.0-only"),
    ("gnu general public license v3 (gplv3)", "GPL-3.0-only"),
    ("apache software license", "Apache-2.0"),
    ("apache license 2.0", "Apache-2.0"),
    ("apache license (== 2.0)", "Apache-2.0"),
    ("apache license (>= 2.0)", "Apache-2.0"),
    ("mit license", "MIT"),
    // R's DESCRIPTION spellings (Writing R Extensions, "Licensing").
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl (>= 2)", "GPL-2.0-or-later"),
    ("gpl (>= 2.0)", "GPL-2.0-or-later"),
    ("gpl (>= 3)", "GPL-3.0-or-later"),
    ("gpl (>= 3.0)", "GPL-3.0-or-later"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl (>= 2)", "LGPL-2.0-or-later"),
    ("lgpl (>= 2.1)", "LGPL-2.1-or-later"),
    ("lgpl (>= 3)", "LGPL-3.0-or-later"),
    ("agpl-3", "AGPL-3.0-only"),
    ("agpl (>= 3)", "AGPL-3.0-or-later"),
    ("bsd_2_clause", "BSD-2-Clause"),
    ("bsd_3_clause", "BSD-3-Clause"),
    ("cc0", "CC0-1.0"),
];

/// `text` as an SPDX expression: parsed as written, else read as alternatives
/// (`|`, ` or `) of names each in SPDX or in [`NAMES`]; None when any part is
/// neither, so the license counts as unknown.
pub fn expression(ecosystem: Ecosystem, text: &str) -> Option<Expression> {
    let text = text.trim();
    if let Ok(expression) = Expression::parse_mode(text, DECLARED) {
        return Some(expression);
    }
    if let Some(id) = named(text) {
        return Expression::parse(id).ok();
    }
    let text = text
        .strip_prefix("Dual Licensed - ")
        .or_else(|| text.strip_prefix("Dual licensed - "))
        .unwrap_or(text);
    let separators: &[&str] = match ecosystem {
        Ecosystem::R => &["|"],
        _ => &["|", " or ", " OR "],
    };
    let mut alternatives = vec![text];
    for separator in separators {
        alternatives = alternatives
            .iter()
            .flat_map(|a| a.split(separator))
            .collect();
    }
    let parts: Option<Vec<String>> = alternatives.iter().map(|a| alternative(a)).collect();
    Expression::parse_mode(&parts?.join(" OR "), DECLARED).ok()
}

/// One alternative of a declared license: an SPDX expression or a known
/// name, with R's `+ file LICENSE` (extra terms in a file) dropped.
fn alternative(text: &str) -> Option<String> {
    let mut text = text.trim();
    for suffix in ["+ file LICENSE", "+ file LICENCE"] {
        if let Some(stripped) = text.strip_suffix(suffix) {
            text = stripped.trim();
        }
    }
    if let Some(id) = named(text) {
        return Some(id.to_string());
    }
    Expression::parse_mode(text, DECLARED)
        .ok()
        .map(|e| format!("({})", e.as_ref()))
}

fn named(text: &str) -> Option<&'static str> {
    let lower = text.trim().to_ascii_lowercase();
    NAMES
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, id)| *id)
}

/// A term as policies name it: the canonical id (`GPL-2.0-only`,
/// `AGPL-3.0-or-later`, `MPL-2.0+`, `LicenseRef-…`), without its exception.
pub fn term_name(req: &LicenseReq) -> String {
    match &req.license {
        LicenseItem::Spdx { id, or_later } => {
            let name = id.name;
            if id.is_gnu() {
                let base = name
                    .strip_suffix("-only")
                    .or_else(|| name.strip_suffix("-or-later"))
                    .unwrap_or(name);
                let later = *or_later || name.ends_with("-or-later") || name.ends_with('+');
                let base = base.trim_end_matches('+');
                if later {
                    format!("{base}-or-later")
                } else {
                    format!("{base}-only")
                }
            } else if *or_later {
                format!("{name}+")
            } else {
                name.to_string()
            }
        }
        LicenseItem::Other(reference) => reference.to_string(),
    }
}

/// The term with its exception, when it has one (`GPL-2.0-only WITH Classpath-exception-2.0`).
pub fn term_with_exception(req: &LicenseReq) -> String {
    match &req.addition {
        Some(addition) => format!("{} WITH {addition}", term_name(req)),
        None => term_name(req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(ecosystem: Ecosystem, text: &str) -> Vec<String> {
        expression(ecosystem, text)
            .map(|e| {
                e.requirements()
                    .map(|r| term_with_exception(&r.req))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn r_alternatives_are_an_or() {
        let e = expression(Ecosystem::R, "GPL-2 | GPL-3").unwrap();
        assert_eq!(
            terms(Ecosystem::R, "GPL-2 | GPL-3"),
            ["GPL-2.0-only", "GPL-3.0-only"]
        );
        assert!(e.evaluate(|r| term_name(r) == "GPL-3.0-only"));
        assert!(!e.evaluate(|r| term_name(r) == "MIT"));
        assert_eq!(terms(Ecosystem::R, "MIT + file LICENSE"), ["MIT"]);
        assert_eq!(terms(Ecosystem::R, "GPL (>= 2)"), ["GPL-2.0-or-later"]);
    }

    #[test]
    fn spdx_and_words() {
        assert_eq!(
            terms(Ecosystem::Python, "GPL-2.0 WITH Classpath-exception-2.0"),
            ["GPL-2.0-only WITH Classpath-exception-2.0"]
        );
        assert_eq!(
            terms(Ecosystem::Python, "GNU AFFERO GPL 3.0"),
            ["AGPL-3.0-only"]
        );
        assert_eq!(
            terms(
                Ecosystem::Python,
                "Dual Licensed - GNU AFFERO GPL 3.0 or MIT"
            ),
            ["AGPL-3.0-only", "MIT"]
        );
        assert_eq!(
            terms(Ecosystem::Python, "MIT/Apache-2.0"),
            ["MIT", "Apache-2.0"]
        );
        assert_eq!(
            terms(Ecosystem::Python, "LicenseRef-Acme"),
            ["LicenseRef-Acme"]
        );
        assert!(expression(Ecosystem::Python, "BSD").is_none());
        assert!(expression(Ecosystem::Python, "Artifex Commercial License").is_none());
    }
}
