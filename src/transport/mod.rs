//! Moving images between transports: read any source into the store, write any sink from it.
//!
//! `build`, `copy`, `push`, `archive` and `inspect` all go through here, so
//! every transport pair is one code path and digests survive a copy
//! unchanged. An image read from a registry keeps its `Origin`: its layers
//! are fetched only when a sink needs their bytes, and a push to another
//! repository of the same registry mounts them instead.

pub mod archive;

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::image::{Artifact, Image, ImageError, Platform};
use crate::reference::{ImageRef, Transport};
use crate::registry::{Origin, PushReport, Registry, RegistryError};
use crate::store::{Store, StoreError};
use archive::ArchiveError;

/// What reading and writing need: the blob store and a registry client, opened once per command.
///
/// The client is opened only when a registry is first reached: setting it up
/// starts reqwest's runtime thread, which a build into a local layout never needs.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub store: &'a Store,
    pub registries: &'a dyn OpenRegistry,
}

/// Whoever holds the command's registry client, opening it on the first call.
pub trait OpenRegistry {
    /// The one registry client (I/O: opens it the first time).
    fn open_registry(&self) -> Result<&Registry, RegistryError>;
}

impl<'a> Context<'a> {
    /// The registry client, opened now if this is the first request.
    pub fn registry(&self) -> Result<&'a Registry, RegistryError> {
        self.registries.open_registry()
    }
}

/// What went wrong moving an image between transports.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request cannot work (a scratch source, a digest that does not match).
    #[error("{message}")]
    Usage { message: String, hint: String },
}

fn usage(message: impl Into<String>, hint: impl Into<String>) -> TransportError {
    TransportError::Usage {
        message: message.into(),
        hint: hint.into(),
    }
}

/// An artifact and, when it came from a registry, where its blobs live.
#[derive(Debug, Clone)]
pub struct Source {
    pub artifact: Artifact,
    pub origin: Option<Origin>,
    /// The image's full name where the source records one (a registry reference, a RepoTag).
    pub name: Option<String>,
}

/// Reads the image or index named by `source` (I/O).
///
/// Registry sources bring manifests and configs only; `platform` narrows an
/// index to one image. With `with_layers` false, an OCI layout folder too
/// imports only manifests and configs (enough to inspect); archives are
/// always read whole, since a tar cannot be read out of order.
pub fn read_source(
    source: &Transport,
    context: &Context<'_>,
    platform: Option<&Platform>,
    with_layers: bool,
) -> Result<Source, TransportError> {
    let store = context.store;
    let artifact = match source {
        Transport::Oci { path, tag } => {
            archive::read_oci_layout(path, tag.as_deref(), store, with_layers)?
        }
        Transport::OciArchive { path, tag } => {
            archive::read_oci_archive(path, tag.as_deref(), store, with_layers)?
        }
        Transport::DockerArchive { path, reference } => {
            let (artifact, name) =
                archive::read_docker_archive_named(path, reference.as_ref(), store)?;
            let artifact = match platform {
                Some(platform) => Artifact::Image(artifact.into_image(platform)?),
                None => artifact,
            };
            return Ok(Source {
                artifact,
                origin: None,
                name,
            });
        }
        Transport::Scratch => {
            return Err(usage(
                "`scratch` is the empty image: it can be a base, but there is nothing to read from it",
                "use scratch as `base` in stowage.toml",
            ));
        }
        Transport::Registry(reference) => {
            let artifact = context
                .registry()?
                .read_artifact(reference, platform, store)?;
            return Ok(Source {
                artifact,
                origin: Some(Origin::of(reference)),
                name: Some(reference.to_string()),
            });
        }
    };
    let artifact = match platform {
        Some(platform) => Artifact::Image(artifact.into_image(platform)?),
        None => artifact,
    };
    Ok(Source {
        artifact,
        origin: None,
        name: None,
    })
}

/// Reads the one image for `platform` from `source` (I/O), importing only that image's layers from a layout folder.
pub fn read_image(
    source: &Transport,
    platform: &Platform,
    context: &Context<'_>,
) -> Result<(Image, Source), TransportError> {
    if let Transport::Oci { path, tag } = source {
        let artifact = archive::read_oci_layout(path, tag.as_deref(), context.store, false)?;
        let image = artifact.into_image(platform)?;
        archive::import_layout_layers(path, &image, context.store)?;
        let read = Source {
            artifact: Artifact::Image(image.clone()),
            origin: None,
            name: None,
        };
        return Ok((image, read));
    }
    let read = read_source(source, context, Some(platform), true)?;
    Ok((read.artifact.clone().into_image(platform)?, read))
}

/// Fetches every blob of the artifact that is not in the store yet from its origin (I/O).
pub fn ensure_local(
    artifact: &Artifact,
    origin: Option<&Origin>,
    context: &Context<'_>,
) -> Result<(), TransportError> {
    let images: Vec<&Image> = match artifact {
        Artifact::Image(image) => vec![image],
        Artifact::Index(index) => index.images.iter().collect(),
    };
    for image in images {
        for layer in image.layers() {
            if context.store.contains(&layer.descriptor.digest) {
                continue;
            }
            match origin {
                Some(origin) => {
                    context
                        .registry()?
                        .fetch_blob(origin, &layer.descriptor, context.store)?
                }
                None => {
                    return Err(StoreError::Missing {
                        digest: layer.descriptor.digest.clone(),
                    }
                    .into());
                }
            }
        }
    }
    Ok(())
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

/// What writing to one destination did.
#[derive(Debug, Clone)]
pub struct Written {
    pub destination: String,
    pub push: Option<PushReport>,
}

/// Writes the artifact to every destination (I/O). Registry destinations in
/// one repository are pushed together: blobs once, then one manifest per tag.
pub fn write_all(
    destinations: &[Transport],
    source: &Source,
    context: &Context<'_>,
    options: &SinkOptions,
) -> Result<Vec<Written>, TransportError> {
    let mut written = Vec::new();
    let mut pushes: BTreeMap<(String, String), (ImageRef, Vec<String>)> = BTreeMap::new();
    for dest in destinations {
        match dest {
            Transport::Registry(reference) => {
                let tag = push_tag(reference, source.artifact.digest())?;
                let entry = pushes
                    .entry((reference.registry.clone(), reference.repository.clone()))
                    .or_insert_with(|| (reference.clone(), Vec::new()));
                if !entry.1.contains(&tag) {
                    entry.1.push(tag);
                }
            }
            local => {
                ensure_local(&source.artifact, source.origin.as_ref(), context)?;
                write_local(local, &source.artifact, context.store, options)?;
                written.push(Written {
                    destination: local.to_string(),
                    push: None,
                });
            }
        }
    }
    for (reference, tags) in pushes.into_values() {
        let report = context.registry()?.push(
            &source.artifact,
            source.origin.as_ref(),
            &reference,
            &tags,
            context.store,
        )?;
        for tag in &tags {
            let mut named = reference.clone();
            named.tag = (tag.parse::<Digest>().is_err()).then(|| tag.clone());
            named.digest = None;
            written.push(Written {
                destination: named.to_string(),
                push: Some(report.clone()),
            });
        }
    }
    Ok(written)
}

/// The tag a manifest is put under; a destination named by digest must match the image.
fn push_tag(reference: &ImageRef, digest: &Digest) -> Result<String, TransportError> {
    if let Some(wanted) = &reference.digest
        && wanted != digest.as_str()
    {
        return Err(usage(
            format!("{reference} names digest {wanted}, but the image is {digest}"),
            "push to a tag, or to the image's own digest",
        ));
    }
    Ok(match (&reference.tag, &reference.digest) {
        (Some(tag), _) => tag.clone(),
        (None, Some(digest)) => digest.clone(),
        (None, None) => "latest".into(),
    })
}

fn write_local(
    dest: &Transport,
    artifact: &Artifact,
    store: &Store,
    options: &SinkOptions,
) -> Result<(), TransportError> {
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
        Transport::Scratch => Err(usage(
            "`scratch` cannot be a destination",
            "write to a registry, oci:DIR, oci-archive:FILE or docker-archive:FILE",
        )),
        Transport::Registry(_) => Err(usage(
            "internal: registry destinations are pushed by write_all",
            "report this as a bug",
        )),
    }
}
