//! Local image transports: OCI layout folders, oci-archive tars and docker-save tarballs, read into the store and written from it.
//!
//! Readers import every blob they need into the store, checking each
//! against its digest, and hand back an `Artifact` whose blobs all resolve
//! there. Tar archives are read in one streaming pass (they may be
//! gzip-wrapped, so there is no seeking). Writers build their output in a
//! temporary file or folder beside the destination and rename it into
//! place, so a destination is either whole or untouched; blobs leave the
//! store through verifying readers, so a damaged store blob never reaches
//! an output. An existing layout folder is locked while it is added to, so
//! two processes writing the same layout both keep their tags.

use std::io;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::digest::Digest;
use crate::image::ImageError;
use crate::store::StoreError;

/// Annotation holding a tag in an OCI layout's index.json.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation holding the full image name (containerd, Docker 25+).
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// What went wrong reading or writing a local transport.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a valid {kind}: {problem}")]
    Invalid {
        path: PathBuf,
        kind: &'static str,
        problem: String,
    },
    #[error("{path}: {problem}")]
    NotFound { path: PathBuf, problem: String },
    /// `oci:PATH` names no OCI image layout folder.
    #[error("{path} is not an OCI image layout: {problem}")]
    NotLayout {
        path: PathBuf,
        problem: LayoutProblem,
    },
    #[error("{path}: blob {digest} is missing")]
    MissingBlob { path: PathBuf, digest: Digest },
    #[error("{path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: ImageError,
    },
    #[error("{path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("{what} cannot hold an image index; pick one platform with --platform")]
    IndexUnsupported { what: &'static str },
}

/// Why a path is not an OCI image layout folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutProblem {
    Missing,
    File,
    NoIndex,
}

impl std::fmt::Display for LayoutProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayoutProblem::Missing => "there is no such folder",
            LayoutProblem::File => "it is a file, not a folder",
            LayoutProblem::NoIndex => "the folder has no index.json",
        })
    }
}

impl ArchiveError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ArchiveError::NotLayout {
                problem: LayoutProblem::File,
                path,
            } => Some(format!(
                "a tar file is read as oci-archive:{0} or docker-archive:{0}",
                path.display()
            )),
            ArchiveError::NotLayout { .. } => Some(
                "check the path: `oci:DIR[:TAG]` names a folder holding index.json, oci-layout and blobs/; \
                 write one with `stowage copy IMAGE oci:DIR:TAG` (or skopeo copy), or use the image's registry reference"
                    .into(),
            ),
            ArchiveError::Read { path, source } if source.kind() == io::ErrorKind::NotFound => {
                Some(format!("check the path: {} does not exist", path.display()))
            }
            ArchiveError::Invalid { .. } | ArchiveError::MissingBlob { .. } => Some(
                "the file is damaged or was not written by a container tool; write it again".into(),
            ),
            ArchiveError::Store {
                source: StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. },
                ..
            } => Some("the archive is corrupt or was tampered with; do not use it".into()),
            ArchiveError::Store { source, .. } => source.hint(),
            ArchiveError::Write { path, source } if source.kind() == io::ErrorKind::StorageFull => {
                Some(format!(
                    "the disk holding {} is full (nothing was left half-written): free some space or write elsewhere",
                    path.display()
                ))
            }
            _ => None,
        }
    }
}

mod docker_save;
mod read;
mod tar_import;
#[cfg(test)]
mod tests;
mod untag;
mod write;

pub use docker_save::{read_docker_archive, read_docker_archive_named, write_docker_archive};
pub use read::{import_layout_layers, read_oci_archive, read_oci_layout};
pub use untag::{Untagged, layout_tags, remove_layout_tags};
pub use write::{write_oci_archive, write_oci_layout};

/// Writes `bytes` to `path` through a temp file and a rename (I/O).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
    atomic::write_file(path, bytes).map_err(|source| ArchiveError::Write {
        path: path.to_path_buf(),
        source,
    })
}
