//! Declared licenses as SPDX expressions, where what the metadata says means one license and only one.
//!
//! Each ecosystem writes licenses its own way: PEP 639 `License-Expression`
//! (SPDX already), `License:` free text and trove classifiers in Python, R's
//! `GPL-2 | GPL-3` and `MIT + file LICENSE`, npm's SPDX-ish `license`, conda's
//! free text. A name that stands for several licenses ("BSD License",
//! "Apache Software License", R's bare `GPL`) is left as it is written: the
//! license files decide those (`super::matcher`).

use spdx::identifiers::{EXCEPTIONS, LICENSES};

/// Free-text license names that stand for exactly one SPDX license, matched
/// on the text lowercased with runs of spaces made one.
const NAMES: &[(&str, &str)] = &[
    ("mit license", "MIT"),
    ("the mit license", "MIT"),
    ("mit licence", "MIT"),
    ("expat", "MIT"),
    ("expat license", "MIT"),
    ("apache 2.0", "Apache-2.0"),
    ("apache 2", "Apache-2.0"),
    ("apache-2", "Apache-2.0"),
    ("apache v2", "Apache-2.0"),
    ("apache2", "Apache-2.0"),
    ("asl 2.0", "Apache-2.0"),
    ("apache license 2.0", "Apache-2.0"),
    ("apache license v2.0", "Apache-2.0"),
    ("apache license, version 2.0", "Apache-2.0"),
    ("apache license version 2.0", "Apache-2.0"),
    ("apache software license 2.0", "Apache-2.0"),
    ("apache software license, version 2.0", "Apache-2.0"),
    ("bsd 3-clause", "BSD-3-Clause"),
    ("bsd 3-clause license", "BSD-3-Clause"),
    ("bsd-3", "BSD-3-Clause"),
    ("bsd-3-clause license", "BSD-3-Clause"),
    ("3-clause bsd", "BSD-3-Clause"),
    ("3-clause bsd license", "BSD-3-Clause"),
    ("new bsd", "BSD-3-Clause"),
    ("new bsd license", "BSD-3-Clause"),
    ("modified bsd", "BSD-3-Clause"),
    ("modified bsd license", "BSD-3-Clause"),
    ("revised bsd", "BSD-3-Clause"),
    ("revised bsd license", "BSD-3-Clause"),
    ("bsd 2-clause", "BSD-2-Clause"),
    ("bsd 2-clause license", "BSD-2-Clause"),
    ("bsd-2", "BSD-2-Clause"),
    ("2-clause bsd", "BSD-2-Clause"),
    ("2-clause bsd license", "BSD-2-Clause"),
    ("simplified bsd", "BSD-2-Clause"),
    ("simplified bsd license", "BSD-2-Clause"),
    ("freebsd", "BSD-2-Clause"),
    ("isc license", "ISC"),
    ("mpl 2.0", "MPL-2.0"),
    ("mpl-2", "MPL-2.0"),
    ("mozilla public license 2.0", "MPL-2.0"),
    ("psf", "PSF-2.0"),
    ("psfl", "PSF-2.0"),
    ("psf license", "PSF-2.0"),
    ("python software foundation license", "PSF-2.0"),
    ("the unlicense", "Unlicense"),
    ("cc0", "CC0-1.0"),
    ("cc0 1.0", "CC0-1.0"),
    ("boost software license 1.0", "BSL-1.0"),
    ("gplv2", "GPL-2.0-only"),
    ("gplv2+", "GPL-2.0-or-later"),
    ("gplv3", "GPL-3.0-only"),
    ("gplv3+", "GPL-3.0-or-later"),
    ("lgplv2.1", "LGPL-2.1-only"),
    ("lgplv2.1+", "LGPL-2.1-or-later"),
    ("lgplv3", "LGPL-3.0-only"),
    ("lgplv3+", "LGPL-3.0-or-later"),
    ("agplv3", "AGPL-3.0-only"),
    ("agplv3+", "AGPL-3.0-or-later"),
    // Spelled out, with the version (PyMuPDF's `License:`, classifiers copied into it).
    ("gnu affero gpl 3.0", "AGPL-3.0-only"),
    ("gnu affero general public license v3", "AGPL-3.0-only"),
    (
        "gnu affero general public license v3 or later (agplv3+)",
        "AGPL-3.0-or-later",
    ),
    ("gnu general public license v2 (gplv2)", "GPL-2.0-only"),
    ("gnu general public license v3 (gplv3)", "GPL-3.0-only"),
];

/// Trove classifiers (the part after the last `::`) that name one SPDX
/// license. "BSD License", "Apache Software License", "GNU General Public
/// License (GPL)" and the like name a family, and are not here.
const CLASSIFIERS: &[(&str, &str)] = &[
    ("MIT License", "MIT"),
    ("MIT No Attribution License (MIT-0)", "MIT-0"),
    ("ISC License (ISCL)", "ISC"),
    ("Python Software Foundation License", "PSF-2.0"),
    ("Mozilla Public License 1.1 (MPL 1.1)", "MPL-1.1"),
    ("Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
    ("The Unlicense (Unlicense)", "Unlicense"),
    ("Zope Public License", "ZPL-2.1"),
    ("Boost Software License 1.0 (BSL-1.0)", "BSL-1.0"),
    ("Eclipse Public License 1.0 (EPL-1.0)", "EPL-1.0"),
    ("Eclipse Public License 2.0 (EPL-2.0)", "EPL-2.0"),
    ("European Union Public Licence 1.1 (EUPL 1.1)", "EUPL-1.1"),
    ("European Union Public Licence 1.2 (EUPL 1.2)", "EUPL-1.2"),
    ("Universal Permissive License (UPL)", "UPL-1.0"),
    ("zlib/libpng License", "Zlib"),
    ("Historical Permission Notice and Disclaimer (HPND)", "HPND"),
    ("Blue Oak Model License (BlueOak-1.0.0)", "BlueOak-1.0.0"),
    (
        "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication",
        "CC0-1.0",
    ),
    ("GNU General Public License v2 (GPLv2)", "GPL-2.0-only"),
    (
        "GNU General Public License v2 or later (GPLv2+)",
        "GPL-2.0-or-later",
    ),
    ("GNU General Public License v3 (GPLv3)", "GPL-3.0-only"),
    (
        "GNU General Public License v3 or later (GPLv3+)",
        "GPL-3.0-or-later",
    ),
    (
        "GNU Lesser General Public License v2 (LGPLv2)",
        "LGPL-2.0-only",
    ),
    (
        "GNU Lesser General Public License v2 or later (LGPLv2+)",
        "LGPL-2.0-or-later",
    ),
    (
        "GNU Lesser General Public License v3 (LGPLv3)",
        "LGPL-3.0-only",
    ),
    (
        "GNU Lesser General Public License v3 or later (LGPLv3+)",
        "LGPL-3.0-or-later",
    ),
    ("GNU Affero General Public License v3", "AGPL-3.0-only"),
    (
        "GNU Affero General Public License v3 or later (AGPLv3+)",
        "AGPL-3.0-or-later",
    ),
    (
        "Common Development and Distribution License 1.0 (CDDL-1.0)",
        "CDDL-1.0",
    ),
    ("Open Software License 3.0 (OSL-3.0)", "OSL-3.0"),
    ("PostgreSQL License", "PostgreSQL"),
    ("W3C License", "W3C"),
];

/// `text` as a canonical SPDX expression, when it is one: identifiers of the
/// SPDX license list (any case, in the list's spelling), `LicenseRef-…`,
/// operators in any case, and the deprecated GNU forms (`GPL-2.0` is
/// `GPL-2.0-only`, `GPL-2.0+` is `GPL-2.0-or-later`). `None` for anything
/// else, whatever part of it would parse.
pub fn spdx_expression(text: &str) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    let mut after_with = false;
    for token in tokens(text) {
        let canonical = match token.to_ascii_uppercase().as_str() {
            "(" | ")" => token.to_owned(),
            operator @ ("AND" | "OR" | "WITH") => operator.to_owned(),
            _ if after_with => exception(token)?.to_owned(),
            _ => license(token)?,
        };
        after_with = canonical == "WITH";
        out.push(canonical);
    }
    let joined = join(&out);
    spdx::Expression::parse(&joined).ok()?;
    Some(joined)
}

/// Whether `text` is a valid SPDX expression exactly as written (the SPDX
/// license list's spellings, no deprecated identifiers).
pub fn is_spdx_expression(text: &str) -> bool {
    !text.trim().is_empty() && spdx::Expression::parse(text).is_ok()
}

/// Free text (Python's `License:`, npm's `license`, conda's `license`) as an
/// SPDX expression: an expression already, or a name with one meaning.
pub fn free_text(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some(expression) = spdx_expression(text) {
        return Some(expression);
    }
    let key = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    NAMES
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, id)| (*id).to_owned())
}

/// Trove classifier names (the part after the last `::`) as an SPDX
/// expression: their identifiers joined by OR (PEP 639's reading of several
/// license classifiers), when every one names a single license.
pub fn classifiers(names: &[&str]) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let ids: Option<Vec<&str>> = names
        .iter()
        .map(|name| {
            CLASSIFIERS
                .iter()
                .find(|(classifier, _)| classifier == name)
                .map(|(_, id)| *id)
        })
        .collect();
    let mut ids = ids?;
    ids.dedup();
    Some(ids.join(" OR "))
}

/// An R DESCRIPTION's `License:` as an SPDX expression: alternatives joined
/// by `|` (OR), each an abbreviation of R's license database (`GPL-2`,
/// `GPL (>= 2)`, `LGPL-2.1`, `Apache License 2.0`, …) or an SPDX expression.
/// `+ file LICENSE` is accepted after MIT and the BSD templates, whose
/// LICENSE file only names the year and holder; after any other license it
/// adds terms, and the whole is left as written. So is a bare `GPL` (any
/// version) or `file LICENSE`.
pub fn r_license(text: &str) -> Option<String> {
    let alternatives: Option<Vec<String>> = text.split('|').map(r_alternative).collect();
    let alternatives = alternatives?;
    let joined = alternatives.join(" OR ");
    spdx::Expression::parse(&joined).ok()?;
    Some(joined)
}

fn r_alternative(text: &str) -> Option<String> {
    let text = text.trim();
    let (name, with_file) = match text.split_once('+') {
        Some((name, rest)) if matches!(rest.trim(), "file LICENSE" | "file LICENCE") => {
            (name.trim(), true)
        }
        Some(_) => return None,
        None => (text, false),
    };
    let id = r_name(name)?;
    let template = matches!(id.as_str(), "MIT" | "BSD-2-Clause" | "BSD-3-Clause");
    (!with_file || template).then_some(id)
}

/// One R license name (without `+ file`), as R's `share/licenses/license.db` spells them.
fn r_name(name: &str) -> Option<String> {
    let fixed = match name {
        "GPL-2" => "GPL-2.0-only",
        "GPL-3" => "GPL-3.0-only",
        "LGPL-2" => "LGPL-2.0-only",
        "LGPL-2.1" => "LGPL-2.1-only",
        "LGPL-3" => "LGPL-3.0-only",
        "AGPL-3" => "AGPL-3.0-only",
        "MIT" => "MIT",
        "BSD_2_clause" => "BSD-2-Clause",
        "BSD_3_clause" => "BSD-3-Clause",
        // Apache 2.0 is the last version, so "2 or later" is it.
        "Apache License 2.0"
        | "Apache License (== 2.0)"
        | "Apache License (== 2)"
        | "Apache License (>= 2.0)"
        | "Apache License (>= 2)" => "Apache-2.0",
        "Artistic-2.0" | "Artistic License 2.0" => "Artistic-2.0",
        "CC0" => "CC0-1.0",
        "CC BY 4.0" => "CC-BY-4.0",
        "CC BY-SA 4.0" => "CC-BY-SA-4.0",
        "MPL-2.0" | "MPL (== 2.0)" => "MPL-2.0",
        "EUPL-1.2" | "EUPL (== 1.2)" => "EUPL-1.2",
        "BSL-1.0" => "BSL-1.0",
        _ => return r_versioned(name).or_else(|| spdx_expression(name)),
    };
    Some(fixed.to_owned())
}

/// `GPL (>= 2)`, `LGPL (>= 2.1)`, `AGPL (== 3)` and the like: GNU licenses with a version range.
fn r_versioned(name: &str) -> Option<String> {
    let (family, range) = name.split_once('(')?;
    let range = range.strip_suffix(')')?.trim();
    let (operator, version) = if let Some(version) = range.strip_prefix(">=") {
        ("-or-later", version.trim())
    } else if let Some(version) = range.strip_prefix("==") {
        ("-only", version.trim())
    } else {
        return None;
    };
    let version = match version {
        "2" | "2.0" => "2.0",
        "2.1" => "2.1",
        "3" | "3.0" => "3.0",
        _ => return None,
    };
    let family = family.trim();
    if !matches!(family, "GPL" | "LGPL" | "AGPL") {
        return None;
    }
    let id = format!("{family}-{version}{operator}");
    spdx::license_id(&id).map(|_| id)
}

/// Whitespace-separated words, with each parenthesis a token of its own.
fn tokens(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() || c == '(' || c == ')' {
            if let Some(s) = start.take() {
                tokens.push(&text[s..at]);
            }
            if !c.is_whitespace() {
                tokens.push(&text[at..at + 1]);
            }
        } else if start.is_none() {
            start = Some(at);
        }
    }
    if let Some(s) = start {
        tokens.push(&text[s..]);
    }
    tokens
}

/// One license token in its canonical spelling: a list identifier (a GNU one
/// without `-only`/`-or-later` made explicit), with `+` kept where SPDX
/// allows it, or a `LicenseRef-`.
fn license(token: &str) -> Option<String> {
    if token.starts_with("LicenseRef-") || token.starts_with("DocumentRef-") {
        return Some(token.to_owned());
    }
    let (name, plus) = match token.strip_suffix('+') {
        Some(name) => (name, true),
        None => (token, false),
    };
    let found = LICENSES
        .iter()
        .find(|license| license.name.eq_ignore_ascii_case(name))?;
    let id = spdx::license_id(found.name)?;
    let bare = !found.name.ends_with("-only") && !found.name.ends_with("-or-later");
    Some(match (id.is_gnu() && bare, plus) {
        (true, true) => format!("{}-or-later", found.name),
        (true, false) => format!("{}-only", found.name),
        (false, true) => format!("{}+", found.name),
        (false, false) => found.name.to_owned(),
    })
}

fn exception(token: &str) -> Option<&'static str> {
    EXCEPTIONS
        .iter()
        .find(|exception| exception.name.eq_ignore_ascii_case(token))
        .map(|exception| exception.name)
}

/// Tokens joined by single spaces, with none inside parentheses.
fn join(tokens: &[String]) -> String {
    let mut out = String::new();
    for (at, token) in tokens.iter().enumerate() {
        if at > 0 && tokens[at - 1] != "(" && token != ")" {
            out.push(' ');
        }
        out.push_str(token);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_come_back_canonical() {
        for (text, expected) in [
            ("MIT", "MIT"),
            ("mit or apache-2.0", "MIT OR Apache-2.0"),
            (
                "(MIT OR Apache-2.0) AND BSD-3-Clause",
                "(MIT OR Apache-2.0) AND BSD-3-Clause",
            ),
            ("GPL-2.0", "GPL-2.0-only"),
            ("GPL-2.0+", "GPL-2.0-or-later"),
            ("LGPL-2.1-or-later", "LGPL-2.1-or-later"),
            (
                "GPL-2.0-only WITH classpath-exception-2.0",
                "GPL-2.0-only WITH Classpath-exception-2.0",
            ),
            ("LicenseRef-Public-Domain", "LicenseRef-Public-Domain"),
        ] {
            assert_eq!(spdx_expression(text).as_deref(), Some(expected), "{text}");
        }
        for text in [
            "",
            "BSD",
            "BSD License",
            "MIT AND",
            "(MIT",
            "MIT WITH Apache-2.0",
            "GPL-2 | GPL-3",
            "UNLICENSED",
        ] {
            assert_eq!(spdx_expression(text), None, "{text:?}");
        }
    }

    #[test]
    fn free_text_names_with_one_meaning_map_and_families_stay() {
        for (text, expected) in [
            ("MIT License", Some("MIT")),
            ("Apache License, Version 2.0", Some("Apache-2.0")),
            ("BSD 3-Clause  License", Some("BSD-3-Clause")),
            ("PSFL", Some("PSF-2.0")),
            ("BSD", None),
            ("BSD License", None),
            ("Apache Software License", None),
            ("GPL", None),
            ("Copyright (c) Someone", None),
        ] {
            assert_eq!(free_text(text).as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn classifiers_map_only_when_every_one_names_one_license() {
        assert_eq!(classifiers(&["MIT License"]).as_deref(), Some("MIT"));
        assert_eq!(
            classifiers(&[
                "GNU General Public License v3 or later (GPLv3+)",
                "MIT License"
            ])
            .as_deref(),
            Some("GPL-3.0-or-later OR MIT")
        );
        assert_eq!(classifiers(&["BSD License"]), None);
        assert_eq!(classifiers(&["Apache Software License"]), None);
        assert_eq!(classifiers(&["MIT License", "BSD License"]), None);
        assert_eq!(classifiers(&[]), None);
    }

    #[test]
    fn r_licenses_follow_r_license_database() {
        for (text, expected) in [
            ("GPL-2 | GPL-3", Some("GPL-2.0-only OR GPL-3.0-only")),
            ("GPL (>= 2)", Some("GPL-2.0-or-later")),
            ("GPL (>= 3.0)", Some("GPL-3.0-or-later")),
            ("LGPL (>= 2.1)", Some("LGPL-2.1-or-later")),
            ("MIT + file LICENSE", Some("MIT")),
            ("BSD_3_clause + file LICENSE", Some("BSD-3-Clause")),
            ("Apache License (== 2.0)", Some("Apache-2.0")),
            ("GPL-2 | file LICENSE", None),
            ("GPL-3 + file LICENSE", None),
            ("GPL", None),
            ("file LICENSE", None),
            ("Unlimited", None),
        ] {
            assert_eq!(r_license(text).as_deref(), expected, "{text}");
        }
    }
}
