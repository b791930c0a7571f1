//! Package URLs (purl spec): `pkg:<type>/<namespace>/<name>@<version>?<qualifiers>`.

use std::fmt::Write as _;

/// `pkg:<kind>/<name>@<version>`, with the name's `/`-separated parts and the
/// version percent-encoded, and the qualifiers sorted by key (empty values left out).
pub(super) fn purl(
    kind: &str,
    name: &str,
    version: &str,
    qualifiers: &[(&str, Option<&str>)],
) -> String {
    let mut out = format!("pkg:{kind}/");
    for (i, part) in name.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        encode_into(&mut out, part);
    }
    out.push('@');
    encode_into(&mut out, version);
    let mut present: Vec<(&str, &str)> = qualifiers
        .iter()
        .filter_map(|&(key, value)| value.filter(|v| !v.is_empty()).map(|v| (key, v)))
        .collect();
    present.sort_unstable();
    for (i, (key, value)) in present.into_iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        encode_into(&mut out, value);
    }
    out
}

/// PEP 503: lowercase, each run of `-`, `_` and `.` one `-`.
pub fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        }
    }
    out
}

/// Percent-encodes all but the purl spec's unreserved characters.
fn encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_scope_version_and_sorts_qualifiers() {
        assert_eq!(
            purl("npm", "@jupyterlab/ui", "4.0.0", &[]),
            "pkg:npm/%40jupyterlab/ui@4.0.0"
        );
        assert_eq!(
            purl("pypi", "torch", "2.1+cpu", &[]),
            "pkg:pypi/torch@2.1%2Bcpu"
        );
        assert_eq!(
            purl(
                "conda",
                "numpy",
                "2.1.0",
                &[("channel", Some("conda-forge")), ("build", Some("py311_0"))]
            ),
            "pkg:conda/numpy@2.1.0?build=py311_0&channel=conda-forge"
        );
        assert_eq!(
            purl("conda", "x", "1", &[("build", None), ("channel", Some(""))]),
            "pkg:conda/x@1"
        );
    }

    #[test]
    fn pep503_normalises_runs() {
        assert_eq!(
            pep503("Jupyter_Server.Terminals"),
            "jupyter-server-terminals"
        );
        assert_eq!(pep503("a-_.b"), "a-b");
    }
}
