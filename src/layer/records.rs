//! What the layer and content caches keep in the store, and the interface of a content cache shared beyond it.
//!
//! Both the layer cache (`cached.rs`, keyed by fingerprint) and the content
//! cache (`content.rs`, keyed by content hint, content key and scan key) read
//! and write these records; they live here so that neither path imports the
//! other's. The field names are the records' stored form: renaming one makes
//! every existing cache miss.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::scan::{self, Finding};

/// A shared content cache besides the store (a `--cache-repo`): the same two maps, and its blobs.
pub trait SharedContents: Sync {
    /// The diff-id a layer with this content hint had, if the shared cache knows one.
    fn diff_id_for(&self, hint: &Digest) -> Option<Digest>;
    /// The blob (digest, size) the shared cache lists for this content key.
    fn listed_blob(&self, key: &Digest) -> Option<(Digest, u64)>;
    /// Makes the listed blob usable by this build (I/O: checks it is still
    /// there, or fetches it into the store when a destination needs its
    /// bytes); false when it is gone or cannot be reached.
    fn bring(&self, digest: &Digest, size: u64) -> bool;
}

/// What the layer cache keeps for one fingerprint.
#[derive(Serialize, Deserialize)]
pub(super) struct LayerRecord {
    pub(super) digest: Digest,
    pub(super) diff_id: Digest,
    pub(super) size: u64,
    pub(super) findings: Vec<FindingRecord>,
}

/// What the content cache keeps for a content hint.
#[derive(Serialize, Deserialize)]
pub(super) struct HintRecord {
    pub(super) diff_id: Digest,
}

/// What the content cache keeps for a content key.
#[derive(Serialize, Deserialize)]
pub(super) struct ContentRecord {
    pub(super) digest: Digest,
    pub(super) size: u64,
}

/// What the secret scan found in a diff-id under one set of rules.
#[derive(Serialize, Deserialize)]
pub(super) struct ScanRecord {
    pub(super) findings: Vec<FindingRecord>,
}

/// A secret-scan finding as the layer and content caches keep it (the rule by name).
#[derive(Serialize, Deserialize)]
pub(super) struct FindingRecord {
    path: String,
    line: Option<u64>,
    rule: String,
}

impl FindingRecord {
    pub(super) fn of(finding: &Finding) -> FindingRecord {
        FindingRecord {
            path: finding.path.clone(),
            line: finding.line,
            rule: finding.rule.to_string(),
        }
    }

    /// The finding again; None when the rule is no longer known (the record is then not used).
    pub(super) fn into_finding(self) -> Option<Finding> {
        Some(Finding {
            path: self.path,
            line: self.line,
            rule: scan::rule_named(&self.rule)?,
        })
    }

    /// The findings of `records` again; None when any names a rule this stowage lacks.
    pub(super) fn into_findings(records: Vec<FindingRecord>) -> Option<Vec<Finding>> {
        records
            .into_iter()
            .map(FindingRecord::into_finding)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored form of a record is its field names: old stores must keep hitting.
    #[test]
    fn records_keep_their_stored_field_names() {
        let digest = Digest::of(b"blob");
        let layer = LayerRecord {
            digest: digest.clone(),
            diff_id: digest.clone(),
            size: 7,
            findings: vec![FindingRecord {
                path: "/app/.env".into(),
                line: Some(3),
                rule: "secret-name".into(),
            }],
        };
        let text = serde_json::to_string(&layer).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text,
            format!(
                r#"{{"digest":"{digest}","diff_id":"{digest}","size":7,"findings":[{{"path":"/app/.env","line":3,"rule":"secret-name"}}]}}"#
            )
        );
        let content = serde_json::to_string(&ContentRecord {
            digest: digest.clone(),
            size: 7,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(content, format!(r#"{{"digest":"{digest}","size":7}}"#));
        let hint = serde_json::to_string(&HintRecord {
            diff_id: digest.clone(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hint, format!(r#"{{"diff_id":"{digest}"}}"#));
        let scan = serde_json::to_string(&ScanRecord {
            findings: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scan, r#"{"findings":[]}"#);
    }
}
