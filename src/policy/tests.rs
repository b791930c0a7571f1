//! The policy file's grammar: what it accepts, and where it points when it does not.

use std::path::Path;

use super::{Candidate, Overwrite, Verdict, Violation, parse_policy};
use crate::inventory::{Ecosystem, Package};

const EXAMPLE: &str = r#"
[licenses]
deny    = ["AGPL-*", "SSPL-1.0"]
allow   = []
unknown = "warn"

[packages]
deny          = ["pkg:pypi/some-package", "pkg:conda/mkl-devel@2024.*"]
deny_channels = ["defaults", "https://repo.anaconda.com/*"]

[files]
deny = ["**/*.lic", "!**/keep.lic"]

[limits]
image     = "20GiB"
layer     = "4GiB"
workspace = 2147483648
files     = 2000000

[destinations]
repositories = ["docker.io/acme/public"]
tag          = "^[a-z0-9][a-z0-9._-]{0,127}$"
overwrite    = "never"
"#;

#[test]
fn the_documented_example_parses() {
    let policy = parse_policy(EXAMPLE, Path::new("policy.toml")).unwrap();
    assert_eq!(policy.overwrite(), (Overwrite::Never, 23));
    assert_eq!(policy.licenses.deny.len(), 2);
    assert_eq!(policy.licenses.unknown_line, 5);
    assert_eq!(policy.limits.image.map(|l| l.value), Some(20 << 30));
    assert_eq!(policy.limits.workspace.map(|l| l.value), Some(2 << 30));
    assert!(policy.digest.starts_with("sha256:"));
    let empty = parse_policy("", Path::new("p.toml")).unwrap();
    assert_eq!(empty.overwrite(), (Overwrite::Own, 0));
}

#[test]
fn errors_point_at_the_value_with_a_hint() {
    let cases = [
        (
            "[licenses]\nunknow = \"warn\"\n",
            "p.toml:2:1: unknown key `unknow`",
            "valid keys here",
        ),
        (
            "[licenses]\nunknown = \"maybe\"\n",
            "p.toml:2:11:",
            "\"allow\", \"warn\" or \"deny\"",
        ),
        ("[licenses]\ndeny = \"AGPL-*\"\n", "p.toml:2:8:", "list"),
        (
            "[licenses]\ndeny = [\"AGPL-[\"]\n",
            "p.toml:2:9: [licenses] deny: `AGPL-[`",
            "SPDX",
        ),
        (
            "[packages]\ndeny = [\"pymupdf\"]\n",
            "p.toml:2:9:",
            "pkg:TYPE/NAME",
        ),
        (
            "[limits]\nimage = \"20 parsecs\"\n",
            "p.toml:2:9: [limits] image is not a size",
            "GiB",
        ),
        (
            "[limits]\nfiles = \"many\"\n",
            "p.toml:2:9:",
            "files = 2000000",
        ),
        (
            "[destinations]\ntag = \"^[a-z\"\n",
            "p.toml:2:7: [destinations] tag",
            "regular expression",
        ),
        (
            "[destinations]\noverwrite = \"yes\"\n",
            "p.toml:2:13:",
            "never",
        ),
        ("[files]\ndeny = [\"\"]\n", "p.toml:2:9:", ".dockerignore"),
        ("[cleanup]\n", "p.toml:1:", "valid keys here"),
    ];
    for (text, message, hint) in cases {
        let error = parse_policy(text, Path::new("p.toml")).unwrap_err();
        assert!(error.to_string().starts_with(message), "{text}: {error}");
        let got = error.hint().unwrap_or_default();
        assert!(got.contains(hint), "{text}: hint {got}");
    }
}

fn package(name: &str, version: &str, license: Option<&str>) -> Package {
    Package {
        ecosystem: Ecosystem::Python,
        name: name.into(),
        version: version.into(),
        license: license.map(Into::into),
        license_concluded: None,
        license_files: Vec::new(),
        purl: format!("pkg:pypi/{}@{version}", name.to_ascii_lowercase()),
        metadata: String::new(),
        files: Vec::new(),
        prefixed: Vec::new(),
        installer: None,
        editable: false,
        editable_location: None,
        shipped_by: None,
        channel: None,
    }
}

fn judge(policy: &str, packages: &[Package]) -> Verdict {
    let policy = parse_policy(policy, Path::new("p.toml")).unwrap();
    policy.judge_build(Candidate {
        packages,
        layers: &[],
    })
}

fn rules(violations: &[Violation]) -> Vec<(&str, usize)> {
    violations
        .iter()
        .map(|v| (v.rule.as_str(), v.policy_line))
        .collect()
}

#[test]
fn licenses_are_judged_as_spdx_expressions() {
    let deny = "[licenses]\ndeny = [\"AGPL-*\"]\n";
    let either = [package("a", "1", Some("MIT OR AGPL-3.0-only"))];
    assert!(judge(deny, &either).eligible());
    let both = [package("b", "1", Some("MIT AND AGPL-3.0-or-later"))];
    let verdict = judge(deny, &both);
    assert_eq!(rules(&verdict.violations), [("licenses.deny", 2)]);
    assert!(verdict.violations[0].detail.contains("AGPL-3.0-or-later"));
    // WITH is kept: an allow-list may name the pair, and the bare license is not it.
    let allow = "[licenses]\nallow = [\"GPL-2.0-only WITH Classpath-exception-2.0\", \"MIT\"]\n";
    let with = [package(
        "c",
        "1",
        Some("GPL-2.0-only WITH Classpath-exception-2.0"),
    )];
    assert!(judge(allow, &with).eligible());
    let bare = [package("d", "1", Some("GPL-2.0-only"))];
    assert_eq!(
        rules(&judge(allow, &bare).violations),
        [("licenses.allow", 2)]
    );
    // A deny glob over the license alone covers it with any exception.
    let gpl = "[licenses]\ndeny = [\"GPL-*\"]\n";
    assert!(!judge(gpl, &with).eligible());
}

#[test]
fn unknown_licenses_allow_warn_or_deny() {
    let packages = [
        package("none", "1", None),
        package("words", "1", Some("BSD License")),
    ];
    assert_eq!(judge("[licenses]\n", &packages), Verdict::default());
    let warned = judge("[licenses]\nunknown = \"warn\"\n", &packages);
    assert!(warned.eligible());
    assert_eq!(
        rules(&warned.warnings),
        [("licenses.unknown", 2), ("licenses.unknown", 2)]
    );
    assert_eq!(warned.warnings[1].subject, "pkg:pypi/words@1");
    let denied = judge("[licenses]\nunknown = \"deny\"\n", &packages);
    assert_eq!(denied.violations.len(), 2);
}

#[test]
fn package_urls_match_normalised_names_and_versions() {
    let packages = [
        package("PyMuPDF", "1.24.14", Some("MIT")),
        package("zope.interface", "7.0", Some("MIT")),
    ];
    let verdict = judge(
        "[packages]\ndeny = [\"pkg:pypi/pymupdf@1.24.*\", \"pkg:pypi/Zope_Interface@6.*\"]\n",
        &packages,
    );
    assert_eq!(rules(&verdict.violations), [("packages.deny", 2)]);
    assert_eq!(verdict.violations[0].subject, "pkg:pypi/pymupdf@1.24.14");
    let allow = judge(
        "[packages]\nallow = [\"pkg:pypi/zope-interface\"]\n",
        &packages,
    );
    assert_eq!(rules(&allow.violations), [("packages.allow", 2)]);
}
