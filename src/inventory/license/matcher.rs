//! Which license a license file holds, by its text: askalono's matcher (the `spdx` crate's `detection`) against the SPDX list's texts of common licenses.
//!
//! Not the whole list: loading all ~700 prepared licenses costs about
//! 250 ms, and preparing even the common long ones (Apache, the GNU family,
//! MPL) some 40 ms, where `stowage check` has 300 ms in all. So the licenses
//! come in groups, each prepared on first use, once per process: the short
//! permissive ones always (a few ms), a long one only when the file names
//! its family ("Apache License", "GNU … General Public License", …). Each
//! group holds the licenses a file of that family could be confused with
//! (BSD-3-Clause beside BSD-3-Clause-Clear and BSD-4-Clause, MIT beside
//! JSON and X11), so a variant is never taken for its better-known cousin.
//!
//! A file is identified only when its best score is at least [`THRESHOLD`]
//! and no other license comes within [`MARGIN`] of it; anything else stays
//! unknown. Results are kept by the file's SHA-256 for the process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sha2::{Digest as _, Sha256};
use spdx::detection::TextData;

/// The lowest askalono score (Sørensen–Dice over word bigrams) taken as a
/// match. Real license files with their copyright lines and reflowed
/// paragraphs score 0.96–1.0 against their license; askalono's own default
/// is 0.9, but this matcher knows fewer licenses, so it asks for more.
pub const THRESHOLD: f32 = 0.95;

/// How far ahead of the runner-up (another license) the best must be.
pub const MARGIN: f32 = 0.02;

/// The SPDX list's text of `id`, taken at compile time, so that only the
/// texts used here are in the binary.
const fn text(id: &str) -> &'static str {
    let texts = spdx::text::LICENSE_TEXTS;
    let mut at = 0;
    while at < texts.len() {
        if bytes_equal(texts[at].0.as_bytes(), id.as_bytes()) {
            return texts[at].1;
        }
        at += 1;
    }
    panic!("a license id without an SPDX text")
}

const fn bytes_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut at = 0;
    while at < a.len() {
        if a[at] != b[at] {
            return false;
        }
        at += 1;
    }
    true
}

/// A group of licenses prepared together, and the words (lowercase) that
/// make a file a candidate for it; no words: every file is.
struct Group {
    hints: &'static [&'static str],
    licenses: &'static [(&'static str, &'static str)],
}

macro_rules! texts {
    ($($id:literal),* $(,)?) => {
        &[$(($id, text($id))),*]
    };
}

const GROUPS: &[Group] = &[
    Group {
        hints: &[],
        licenses: texts![
            "MIT",
            "MIT-0",
            "JSON",
            "X11",
            "ISC",
            "0BSD",
            "BSD-2-Clause",
            "BSD-2-Clause-Patent",
            "BSD-3-Clause",
            "BSD-3-Clause-Clear",
            "BSD-4-Clause",
            "Zlib",
            "BSL-1.0",
            "Unlicense",
            "HPND",
            "PSF-2.0",
        ],
    },
    Group {
        hints: &["apache license"],
        licenses: texts!["Apache-2.0"],
    },
    Group {
        hints: &["general public license"],
        licenses: texts![
            "GPL-2.0-only",
            "GPL-3.0-only",
            "LGPL-2.0-only",
            "LGPL-2.1-only",
            "LGPL-3.0-only",
            "AGPL-3.0-only",
        ],
    },
    Group {
        hints: &["mozilla public license"],
        licenses: texts!["MPL-1.1", "MPL-2.0"],
    },
    Group {
        hints: &["eclipse public license"],
        licenses: texts!["EPL-1.0", "EPL-2.0"],
    },
    Group {
        hints: &["python software foundation", "cnri"],
        licenses: texts!["Python-2.0"],
    },
    Group {
        hints: &["creative commons"],
        licenses: texts!["CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0"],
    },
    Group {
        hints: &["artistic license"],
        licenses: texts!["Artistic-2.0"],
    },
];

/// One prepared license: its text, and other forms of it that count as it.
struct Prepared {
    id: &'static str,
    forms: Vec<TextData>,
}

/// Apache-2.0's text up to here is the license; the appendix after it
/// ("How to apply the Apache License to your work") is often left out.
const APACHE_END: &str = "END OF TERMS AND CONDITIONS";

fn prepare(id: &'static str, text: &'static str) -> Prepared {
    let mut forms = vec![TextData::new(text)];
    if let Some(end) = text.find(APACHE_END) {
        forms.push(TextData::new(&text[..end + APACHE_END.len()]));
    }
    Prepared { id, forms }
}

/// The process's matcher: the groups, each prepared on first use, and the results so far.
pub struct Matcher {
    groups: Vec<OnceLock<Vec<Prepared>>>,
    results: Mutex<HashMap<[u8; 32], Option<&'static str>>>,
}

impl Matcher {
    /// The one matcher of the process; nothing is prepared until a file is matched.
    pub fn shared() -> &'static Matcher {
        static MATCHER: OnceLock<Matcher> = OnceLock::new();
        MATCHER.get_or_init(|| Matcher {
            groups: GROUPS.iter().map(|_| OnceLock::new()).collect(),
            results: Mutex::new(HashMap::new()),
        })
    }

    /// The SPDX identifier of the license `text` holds, or `None` when no
    /// license known here matches it well enough and clearly enough.
    pub fn identify(&self, text: &str) -> Option<&'static str> {
        let key: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if let Some(known) = self.results.lock().ok().and_then(|r| r.get(&key).copied()) {
            return known;
        }
        let found = self.best(text);
        if let Ok(mut results) = self.results.lock() {
            results.insert(key, found);
        }
        found
    }

    fn best(&self, text: &str) -> Option<&'static str> {
        let lower = text.to_lowercase();
        let data = TextData::new(text);
        // The best score of each license, best first.
        let mut scores: Vec<(f32, &'static str)> = Vec::new();
        for (group, prepared) in GROUPS.iter().zip(&self.groups) {
            if !group.hints.is_empty() && !group.hints.iter().any(|hint| lower.contains(hint)) {
                continue;
            }
            let licenses = prepared.get_or_init(|| {
                group
                    .licenses
                    .iter()
                    .map(|(id, text)| prepare(id, text))
                    .collect()
            });
            for license in licenses {
                let score = license
                    .forms
                    .iter()
                    .map(|form| form.match_score(&data))
                    .fold(0.0_f32, f32::max);
                scores.push((score, license.id));
            }
        }
        scores.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (best, id) = *scores.first()?;
        let runner_up = scores.get(1).map_or(0.0, |(score, _)| *score);
        (best >= THRESHOLD && best - runner_up >= MARGIN).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real license files, as their packages ship them (`fixtures/licenses/README.md`).
    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/licenses/",
                $name
            ))
        };
    }

    const MIT_SIX: &str = fixture!("MIT.six-1.17.0");

    #[test]
    fn real_license_files_are_identified() {
        let matcher = Matcher::shared();
        for (text, expected) in [
            (MIT_SIX, "MIT"),
            (fixture!("BSD-2-Clause.nest_asyncio2-1.7.4"), "BSD-2-Clause"),
            (fixture!("BSD-3-Clause.jinja2-3.1.6"), "BSD-3-Clause"),
            (fixture!("Apache-2.0.arrow-1.4.0"), "Apache-2.0"),
            (
                fixture!("Apache-2.0-no-appendix.packaging-26.4"),
                "Apache-2.0",
            ),
            (fixture!("GPL-3.0.debian-base-files"), "GPL-3.0-only"),
        ] {
            assert_eq!(matcher.identify(text), Some(expected), "{}", &text[..60]);
        }
    }

    /// six's MIT license with `from` replaced by `to` (line breaks kept:
    /// askalono drops a line that starts with "Copyright", and a text on one
    /// line would be dropped whole).
    fn six_with(from: &str, to: &str) -> String {
        assert!(MIT_SIX.contains(from), "the fixture changed: no {from:?}");
        MIT_SIX.replacen(from, to, 1)
    }

    #[test]
    fn near_misses_stay_unknown() {
        let matcher = Matcher::shared();
        // The grant cut down to non-commercial use: most words are MIT's, the meaning is not.
        let narrowed = six_with(
            "use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of\n",
            "use and copy, for non-commercial purposes only and not for sale, copies of\n",
        );
        assert_eq!(matcher.identify(&narrowed), None);
        // A restriction added as a sentence of its own.
        let restricted = six_with(
            "subject to the following conditions:\n",
            "subject to the following conditions:\n\nThe Software may not be used for commercial purposes.\n",
        );
        assert_eq!(matcher.identify(&restricted), None);
    }

    #[test]
    fn a_variant_is_not_taken_for_its_cousin() {
        // The JSON license is MIT and one sentence; the group holds it, so
        // it is found as itself rather than as MIT.
        let json = six_with(
            "The above copyright notice",
            "The Software shall be used for Good, not Evil.\n\nThe above copyright notice",
        );
        assert_eq!(Matcher::shared().identify(&json), Some("JSON"));
    }

    #[test]
    fn text_that_is_no_license_stays_unknown() {
        let matcher = Matcher::shared();
        assert_eq!(matcher.identify(""), None);
        assert_eq!(
            matcher.identify("YEAR: 2023\nCOPYRIGHT HOLDER: jsonlite authors\n"),
            None
        );
        assert_eq!(
            matcher.identify("This software is made available under the terms of *either* of the licenses found in LICENSE.APACHE or LICENSE.BSD."),
            None
        );
    }

    #[test]
    fn only_the_groups_a_file_names_are_prepared() {
        let matcher = Matcher {
            groups: GROUPS.iter().map(|_| OnceLock::new()).collect(),
            results: Mutex::new(HashMap::new()),
        };
        assert_eq!(matcher.identify(MIT_SIX), Some("MIT"));
        let prepared: Vec<bool> = matcher.groups.iter().map(|g| g.get().is_some()).collect();
        assert!(prepared[0]);
        assert!(prepared[1..].iter().all(|p| !p), "{prepared:?}");
    }
}
