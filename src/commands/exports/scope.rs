//! What `exports delete` will do at each destination of an export: plain values, made by `plan` and carried out by `run`.
//!
//! An export owns its tag, not the manifest behind it: other tags, often
//! other exports', may point at the same manifest. So each step says which
//! tags go and which stay, and the prompt shows exactly that.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::reference::ImageRef;

/// What `delete` will remove, shown before it asks.
#[derive(Debug, Clone)]
pub struct DeletePlan {
    pub id: i64,
    /// `--all-tags`: every tag that points at the export's image goes with it.
    pub all_tags: bool,
    /// One step per destination of the record, in its order.
    pub steps: Vec<Step>,
}

impl DeletePlan {
    /// One line per thing removed (a manifest and the tags that go with it, a tag, a file).
    pub fn removes(&self) -> Vec<String> {
        self.steps.iter().filter_map(Step::removes).collect()
    }

    /// The destinations left as they are, and why.
    pub fn leaves(&self) -> Vec<String> {
        self.steps.iter().filter_map(Step::leaves).collect()
    }
}

/// One destination of the record and what deleting does there.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its position in the record's destinations.
    pub index: usize,
    /// As recorded: `docker://REF`, `oci:/abs/dir:tag`, `docker-archive:/abs/x.tar`…
    pub destination: String,
    pub action: Action,
}

/// A tag that keeps the image after this export's delete, and the exports that put it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherTag {
    pub tag: String,
    /// Ids of the journal's exports that pushed or wrote this tag and still hold it.
    pub exports: Vec<i64>,
}

impl std::fmt::Display for OtherTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.exports.as_slice() {
            [] => write!(f, "{} (not exported from this journal)", self.tag),
            [one] => write!(f, "{} (export {one})", self.tag),
            many => {
                let ids: Vec<String> = many.iter().map(ToString::to_string).collect();
                write!(f, "{} (exports {})", self.tag, ids.join(", "))
            }
        }
    }
}

/// The other tags as one phrase: `1 (export 3), 2 (not exported from this journal)`.
pub fn other_tags_text(others: &[OtherTag]) -> String {
    let texts: Vec<String> = others.iter().map(ToString::to_string).collect();
    texts.join(", ")
}

/// `; the image stays under 1 (export 3)`, or nothing when no other tag keeps it.
fn stays_text(kept_by: &[OtherTag]) -> String {
    if kept_by.is_empty() {
        String::new()
    } else {
        format!("; the image stays under {}", other_tags_text(kept_by))
    }
}

/// What deleting does at one destination.
#[derive(Debug, Clone)]
pub enum Action {
    /// Not this export's to remove; the text says why.
    LeaveAlone(String),
    /// Nothing of this export's is there any more; the text says what was found.
    AlreadyGone(String),
    /// DELETE the manifest by digest: `tags` (every tag that points at it) go with it,
    /// and the manifest at `signature_tag` when there is one.
    Manifest {
        reference: ImageRef,
        digest: Digest,
        tags: Vec<String>,
        signature_tag: String,
    },
    /// DELETE one tag alone (OCI 1.1 registries); `kept_by` still point at the image.
    RegistryTag {
        reference: ImageRef,
        digest: Digest,
        tag: String,
        kept_by: Vec<OtherTag>,
    },
    /// Docker Hub deletes tags through its own API; the image goes with its
    /// last tag, and then `signature_tag` too.
    HubTags {
        reference: ImageRef,
        digest: Digest,
        tags: Vec<String>,
        kept_by: Vec<OtherTag>,
        signature_tag: String,
    },
    /// Remove `tags` from the layout's index.json, and the blobs no other tag reaches.
    LayoutTags {
        path: PathBuf,
        digest: Digest,
        tags: Vec<String>,
        kept_by: Vec<OtherTag>,
    },
    /// Remove the archive file this export wrote.
    RemoveFile { path: PathBuf },
    /// Deleting here would take what is not this export's, or cannot be done.
    Refuse { problem: String, hint: String },
}

impl Step {
    fn removes(&self) -> Option<String> {
        let tags_text = |tags: &[String]| {
            if tags.is_empty() {
                "no tag points at it any more".to_string()
            } else {
                format!("tags that go with it: {}", tags.join(", "))
            }
        };
        Some(match &self.action {
            Action::Manifest {
                reference,
                digest,
                tags,
                ..
            } => format!(
                "registry image {}@{digest} ({})",
                reference.name(),
                tags_text(tags)
            ),
            Action::RegistryTag {
                reference,
                tag,
                kept_by,
                ..
            } => format!(
                "tag {}:{tag} only; the image stays under {}",
                reference.name(),
                other_tags_text(kept_by)
            ),
            Action::HubTags {
                reference,
                tags,
                kept_by,
                ..
            } => {
                let stays = stays_text(kept_by);
                format!(
                    "Docker Hub tags {} of {} (public for anyone who pulls them){stays}",
                    tags.join(", "),
                    reference.name()
                )
            }
            Action::LayoutTags {
                path,
                tags,
                kept_by,
                ..
            } => {
                let stays = stays_text(kept_by);
                format!(
                    "tags {} in layout folder {}, and the blobs no other tag uses (the folder stays){stays}",
                    tags.join(", "),
                    path.display()
                )
            }
            Action::RemoveFile { path } => format!("file {}", path.display()),
            Action::LeaveAlone(_) | Action::AlreadyGone(_) | Action::Refuse { .. } => return None,
        })
    }

    fn leaves(&self) -> Option<String> {
        match &self.action {
            Action::LeaveAlone(why) | Action::AlreadyGone(why) => {
                Some(format!("{}: {why}", self.destination))
            }
            Action::Refuse { problem, .. } => {
                Some(format!("{}: {problem} (refused)", self.destination))
            }
            _ => None,
        }
    }
}
