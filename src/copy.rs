//! Moving images between transports: read any source into the store, write any sink from it.
//!
//! `build`, `copy` and `inspect` all go through here, so every transport
//! pair is one code path and digests survive a copy unchanged.

use crate::archive::{self, Artifact};
use crate::error::Error;
use crate::image::{Image, Platform};
use crate::reference::{ImageRef, Transport};
use crate::store::Store;

/// Reads the image or index named by `source` into the store (I/O).
///
/// With `with_layers` false, an OCI layout folder imports only manifests and
/// configs (enough to inspect); archives are always read whole, since a tar
/// cannot be read out of order.
pub fn read_artifact(
    source: &Transport,
    store: &Store,
    with_layers: bool,
) -> Result<Artifact, Error> {
    match source {
        Transport::Oci { path, tag } => Ok(archive::read_oci_layout(
            path,
            tag.as_deref(),
            store,
            with_layers,
        )?),
        Transport::OciArchive { path, tag } => Ok(archive::read_oci_archive(
            path,
            tag.as_deref(),
            store,
            with_layers,
        )?),
        Transport::DockerArchive { path, reference } => Ok(archive::read_docker_archive(
            path,
            reference.as_ref(),
            store,
        )?),
        Transport::Scratch => Err(Error::usage(
            "`scratch` is the empty image: it can be a base, but there is nothing to read from it",
            "use scratch as `base` in stowage.toml",
        )),
        Transport::Registry(reference) => Err(registry_unsupported(reference)),
    }
}

/// Reads the one image for `platform` from `source` into the store (I/O), importing only that image's layers.
pub fn read_image(source: &Transport, platform: &Platform, store: &Store) -> Result<Image, Error> {
    match source {
        Transport::Oci { path, tag } => {
            let artifact = archive::read_oci_layout(path, tag.as_deref(), store, false)?;
            let image = artifact.into_image(platform)?;
            archive::import_layout_layers(path, &image, store)?;
            Ok(image)
        }
        other => Ok(read_artifact(other, store, true)?.into_image(platform)?),
    }
}

/// What a sink needs besides the artifact.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// The platform to keep when a sink cannot hold an index.
    pub platform: Platform,
    /// Modification time of archive members.
    pub mtime: u64,
    /// Tag for an OCI layout or oci-archive when the destination names none.
    pub default_tag: String,
    /// Image name for a docker-archive when the destination names none.
    pub default_reference: Option<ImageRef>,
}

/// Writes the artifact to `dest` (I/O).
pub fn write_artifact(
    dest: &Transport,
    artifact: &Artifact,
    store: &Store,
    options: &SinkOptions,
) -> Result<(), Error> {
    match dest {
        Transport::Oci { path, tag } => {
            let tag = tag.as_deref().unwrap_or(&options.default_tag);
            Ok(archive::write_oci_layout(path, tag, artifact, store)?)
        }
        Transport::OciArchive { path, tag } => {
            let tag = tag.as_deref().unwrap_or(&options.default_tag);
            Ok(archive::write_oci_archive(
                path,
                tag,
                artifact,
                store,
                options.mtime,
            )?)
        }
        Transport::DockerArchive { path, reference } => {
            let image = artifact.clone().into_image(&options.platform)?;
            let reference = reference.as_ref().or(options.default_reference.as_ref());
            Ok(archive::write_docker_archive(
                path,
                reference,
                &image,
                store,
                options.mtime,
            )?)
        }
        Transport::Scratch => Err(Error::usage(
            "`scratch` cannot be a destination",
            "write to oci:DIR, oci-archive:FILE or docker-archive:FILE",
        )),
        Transport::Registry(reference) => Err(registry_unsupported(reference)),
    }
}

fn registry_unsupported(reference: &ImageRef) -> Error {
    Error::Unsupported {
        message: format!(
            "{reference} is a registry image, and this build of stowage reads and writes local transports only"
        ),
        hint: Some(
            "use oci:DIR, oci-archive:FILE or docker-archive:FILE, or copy through skopeo for now"
                .into(),
        ),
    }
}
