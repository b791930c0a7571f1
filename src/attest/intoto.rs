//! in-toto Statements v1: a predicate about one subject, as the exact bytes an attestation layer holds.

use serde_json::{Value, json};

use crate::digest::Digest;
use crate::image::canonical_json;

/// The statement's `_type`.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of an SPDX document.
pub const SPDX_DOCUMENT: &str = "https://spdx.dev/Document";
/// `predicateType` of SLSA provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// What a statement is about: a name and the digest of the manifest it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// A package URL of the image that names it by digest (`pkg:oci/…@sha256%3A…`), never by a destination.
    pub name: String,
    pub digest: Digest,
}

/// A statement's bytes: canonical JSON (sorted keys, no whitespace), so the same predicate gives the same digest.
pub fn statement(subject: &Subject, predicate_type: &str, predicate: &Value) -> Vec<u8> {
    canonical_json(&json!({
        "_type": STATEMENT_V1,
        "subject": [{
            "name": subject.name,
            "digest": {"sha256": subject.digest.hex()},
        }],
        "predicateType": predicate_type,
        "predicate": predicate,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_names_the_subject_by_sha256_hex() {
        let subject = Subject {
            name: "_".into(),
            digest: Digest::of(b"manifest"),
        };
        let bytes = statement(&subject, SPDX_DOCUMENT, &json!({"b": 1, "a": 2}));
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed["_type"], STATEMENT_V1);
        assert_eq!(parsed["predicateType"], SPDX_DOCUMENT);
        assert_eq!(
            parsed["subject"][0]["digest"]["sha256"],
            Digest::of(b"manifest").hex()
        );
        assert_eq!(parsed["subject"][0]["name"], "_");
        assert!(
            String::from_utf8(bytes)
                .unwrap()
                .contains(r#""predicate":{"a":2,"b":1}"#)
        );
    }
}
