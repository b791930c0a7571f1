//! The policy file's grammar: what it accepts, and where it points when it does not.

use std::path::Path;

use super::{Overwrite, parse_policy};

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
