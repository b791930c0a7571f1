//! A package's license as the policy judges it: which text (declared, later
//! concluded) and how it reads as an SPDX expression.
//!
//! The SPDX grammar itself is the `spdx` crate's, and the reading of
//! declared free text (R's `GPL-2 | GPL-3`, names in words) the inventory's
//! (`inventory::license`), so a policy and the SBOM never disagree on what a
//! license text means; this file adds the slack of `/` for OR and of
//! alternatives joined by ` or `.

use spdx::{Expression, LicenseItem, LicenseReq, ParseMode};

use crate::inventory::license::declared_expression;
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

/// `text` as an SPDX expression: parsed as written (with [`DECLARED`]'s
/// slack), else read as alternatives (`|`, ` or `), each as the inventory
/// reads declared licenses (`inventory::license::declared_expression`: R's
/// abbreviations, names in words with one meaning); None when any part is
/// neither, so the license counts as unknown. A family name (`BSD License`,
/// `Apache Software License`) is unknown here too: the inventory concludes
/// those from the package's license files, which `license_of` prefers.
pub fn expression(ecosystem: Ecosystem, text: &str) -> Option<Expression> {
    let text = text.trim();
    if let Ok(expression) = Expression::parse_mode(text, DECLARED) {
        return Some(expression);
    }
    if let Some(canonical) = declared_expression(ecosystem, text) {
        return Expression::parse(&canonical).ok();
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
    let parts: Option<Vec<String>> = alternatives
        .iter()
        .map(|a| alternative(ecosystem, a))
        .collect();
    Expression::parse_mode(&parts?.join(" OR "), DECLARED).ok()
}

/// One alternative of a declared license, parenthesised for the OR around it.
fn alternative(ecosystem: Ecosystem, text: &str) -> Option<String> {
    let text = text.trim();
    let canonical = match declared_expression(ecosystem, text) {
        Some(canonical) => canonical,
        None => Expression::parse_mode(text, DECLARED).ok()?.to_string(),
    };
    Some(format!("({canonical})"))
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
        // A family, as the inventory reads it: the license files decide, not a guess here.
        assert!(expression(Ecosystem::Python, "Apache Software License").is_none());
        assert_eq!(terms(Ecosystem::R, "Apache License (>= 2)"), ["Apache-2.0"]);
        // Terms added in a file are more than the license named: unknown.
        assert!(expression(Ecosystem::R, "GPL-3 + file LICENSE").is_none());
        assert!(expression(Ecosystem::Python, "Artifex Commercial License").is_none());
    }
}
