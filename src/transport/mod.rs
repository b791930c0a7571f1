//! Moving images between transports: read any source into the store, write any sink from it.
//!
//! `build`, `copy`, `push`, `archive` and `inspect` all go through here, so
//! every transport pair is one code path and digests survive a copy
//! unchanged. An image read from a registry keeps its `Origin`: its layers
//! are fetched only when a sink needs their bytes, and a push to another
//! repository of the same registry mounts them instead.

pub mod archive;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::digest::Digest;
use crate::image::{Artifact, Image, ImageError, Platform, attestation};
use crate::interrupt::{self, Interrupted};
use crate::reference::{ImageRef, Location};
use crate::registry::{Origin, PushReport, Registry, RegistryError};
use crate::store::{Store, StoreError};
use archive::ArchiveError;

/// What reading and writing need: the blob store and a registry client, opened once per command.
///
/// The client is opened only when a registry is first reached: setting it up
/// starts reqwest's runtime thread, which a build into a local layout never needs.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    pub store: &'a Store,
    pub registries: &'a dyn OpenRegistry,
}

/// Whoever holds the command's registry client, opening it on the first call.
pub trait OpenRegistry {
    /// The one registry client (I/O: opens it the first time).
    fn open_registry(&self) -> Result<&Registry, RegistryError>;
}

impl<'a> Access<'a> {
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
    /// A sink failed after others had received the image.
    #[error(transparent)]
    Partial(#[from] PartialWrite),
    /// The first sink failed, so none of the destinations got the image.
    #[error(transparent)]
    NothingWritten(#[from] NothingWritten),
    /// A signal stopped the writing between destinations.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

/// Some destinations hold the image, then one failed: which ones, by their
/// index in the destinations given to [`write_all`], so the export record can
/// say exactly where the image is.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PartialWrite {
    pub reached: Vec<usize>,
    pub failed: usize,
    /// "X failed after the image was written to A, B; not written: C".
    message: String,
    /// The digest of what the reached destinations hold.
    pub digest: Digest,
    #[source]
    pub source: Box<TransportError>,
}

/// The first destination tried failed, and with it the export: none of the
/// destinations holds the image.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NothingWritten {
    /// "nothing was written: X failed; not written: A, B".
    message: String,
    #[source]
    pub source: Box<TransportError>,
}

/// "; not written: A, B" for destinations a failure kept from being written.
fn not_written(names: &[String]) -> String {
    match names {
        [] => String::new(),
        names => format!("; not written: {}", names.join(", ")),
    }
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
    source: &Location,
    access: &Access<'_>,
    platform: Option<&Platform>,
    with_layers: bool,
) -> Result<Source, TransportError> {
    let store = access.store;
    let artifact = match source {
        Location::Oci { path, tag } => {
            archive::read_oci_layout(path, tag.as_deref(), store, with_layers)?
        }
        Location::OciArchive { path, tag } => {
            archive::read_oci_archive(path, tag.as_deref(), store, with_layers)?
        }
        Location::DockerArchive { path, reference } => {
            let (artifact, name) =
                archive::read_docker_archive_named(path, reference.as_ref(), store)?;
            let artifact = match platform {
                Some(platform) => artifact.for_platform(platform)?,
                None => artifact,
            };
            return Ok(Source {
                artifact,
                origin: None,
                name,
            });
        }
        Location::Scratch => {
            return Err(usage(
                "`scratch` is the empty image: it can be a base, but there is nothing to read from it",
                "use scratch as `base` in stowage.toml",
            ));
        }
        Location::Registry(reference) => {
            let artifact = access
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
        Some(platform) => artifact.for_platform(platform)?,
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
    source: &Location,
    platform: &Platform,
    access: &Access<'_>,
) -> Result<(Image, Source), TransportError> {
    if let Location::Oci { path, tag } = source {
        let artifact = archive::read_oci_layout(path, tag.as_deref(), access.store, false)?;
        let image = artifact.into_image(platform)?;
        archive::import_layout_layers(path, &image, access.store)?;
        let read = Source {
            artifact: Artifact::Image(image.clone()),
            origin: None,
            name: None,
        };
        return Ok((image, read));
    }
    let read = read_source(source, access, Some(platform), true)?;
    Ok((read.artifact.clone().into_image(platform)?, read))
}

/// Fetches every blob of the artifact that is not in the store yet from its origin (I/O).
pub fn ensure_local(
    artifact: &Artifact,
    origin: Option<&Origin>,
    access: &Access<'_>,
) -> Result<(), TransportError> {
    let images: Vec<&Image> = match artifact {
        Artifact::Image(image) => vec![image],
        Artifact::Index(index) => index.images.iter().collect(),
    };
    for image in images {
        for layer in image.layers() {
            if access.store.contains(&layer.descriptor.digest) {
                continue;
            }
            match origin {
                Some(origin) => {
                    let digest = &layer.descriptor.digest;
                    access
                        .registry()?
                        .fetch_blob(origin, &layer.descriptor, access.store)?;
                    // A later push to another repository there mounts it from here.
                    crate::registry::blob_locations::remember(
                        access.store,
                        &origin.registry,
                        &origin.repository,
                        digest,
                    );
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

/// Brings the layers of `image`, read from `source`, into the store (I/O): from the layout folder, or from the registry it came from.
pub fn fetch_layers(
    source: &Location,
    image: &Image,
    origin: Option<&Origin>,
    access: &Access<'_>,
) -> Result<(), TransportError> {
    if let Location::Oci { path, .. } = source {
        return Ok(archive::import_layout_layers(path, image, access.store)?);
    }
    ensure_local(&Artifact::Image(image.clone()), origin, access)
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
/// one repository are pushed together: blobs once, then one manifest per tag,
/// each tag its own step (a refused tag leaves those put before it reached).
///
/// Every registry is pushed before any local output is written, so a failed
/// push (the common failure: network, credentials) leaves no new file or
/// folder behind; each archive is written to a temp file and renamed into
/// place, and a layout is written in a temp folder (or, when it exists
/// already, gets its index.json last). When a sink fails after others got
/// the image, the error is
/// [`TransportError::Partial`], naming the destinations that hold it; when
/// the first one fails, [`TransportError::NothingWritten`], naming the
/// others. Either names the destinations never tried. So it is when a
/// signal stops the writing, which it does before each destination and
/// each tag (and, inside a push, between blobs).
///
/// What killed or interrupted runs left in the local destinations' folders
/// is swept first, whether or not this run gets as far as writing them.
pub fn write_all(
    destinations: &[Location],
    source: &Source,
    access: &Access<'_>,
    options: &SinkOptions,
) -> Result<Vec<Written>, TransportError> {
    write_all_reporting(destinations, source, access, options, &|_| {})
}

/// [`write_all`], telling `reached` the indices of the destinations that
/// hold the artifact: once before the first (none yet), then after each,
/// so a running export's record can follow.
pub fn write_all_reporting(
    destinations: &[Location],
    source: &Source,
    access: &Access<'_>,
    options: &SinkOptions,
    reached_so_far: &dyn Fn(&[usize]),
) -> Result<Vec<Written>, TransportError> {
    let mut written = Vec::new();
    let mut reached: Vec<usize> = Vec::new();
    let partial = |reached: &[usize], failed: usize, error: TransportError| {
        not_all_written(destinations, source, (reached, failed), error)
    };
    // Per repository: its reference, and each tag with the destinations it serves.
    type Push = (ImageRef, Vec<(String, Vec<usize>)>);
    let mut pushes: BTreeMap<(String, String), Push> = BTreeMap::new();
    let mut locals = Vec::new();
    for dest in destinations {
        sweep_leftovers(dest);
    }
    for (index, dest) in destinations.iter().enumerate() {
        match dest {
            Location::Registry(reference) => {
                let tag = push_tag(reference, source.artifact.digest())?;
                let (_, tags) = pushes
                    .entry((reference.registry.clone(), reference.repository.clone()))
                    .or_insert_with(|| (reference.clone(), Vec::new()));
                match tags.iter_mut().find(|(known, _)| *known == tag) {
                    Some((_, indices)) => indices.push(index),
                    None => tags.push((tag, vec![index])),
                }
            }
            local => locals.push((index, local)),
        }
    }
    reached_so_far(&[]);
    for (reference, tags) in pushes.into_values() {
        // Each tag is its own step, so when one tag's manifest is refused
        // the tags put before it are recorded as pushed, not failed.
        let first = tags[0].1[0];
        interrupt::check().map_err(|e| partial(&reached, first, e.into()))?;
        let registry = access
            .registry()
            .map_err(|e| partial(&reached, first, e.into()))?;
        let (artifact, origin) = (&source.artifact, source.origin.as_ref());
        let report = registry
            .push_content(artifact, origin, &reference, access.store)
            .map_err(|e| partial(&reached, first, e.into()))?;
        for (tag, indices) in tags {
            interrupt::check().map_err(|e| partial(&reached, indices[0], e.into()))?;
            registry
                .put_tag(artifact, origin, &reference, &tag, access.store)
                .map_err(|e| partial(&reached, indices[0], e.into()))?;
            reached.extend(&indices);
            reached_so_far(&reached);
            let mut named = reference.clone();
            named.tag = (tag.parse::<Digest>().is_err()).then(|| tag.clone());
            named.digest = None;
            written.push(Written {
                destination: named.to_string(),
                push: Some(report.clone()),
            });
        }
    }
    for (index, local) in locals {
        interrupt::check().map_err(|e| partial(&reached, index, e.into()))?;
        sink_artifact(local, &source.artifact, options)
            .and_then(|artifact| {
                ensure_local(&artifact, source.origin.as_ref(), access)?;
                write_local(local, &artifact, access.store, options)
            })
            .map_err(|e| partial(&reached, index, e))?;
        reached.push(index);
        reached_so_far(&reached);
        written.push(Written {
            destination: local.to_string(),
            push: None,
        });
    }
    Ok(written)
}

/// The error of a write that failed at destination `failed` after those at `reached` got the image.
fn not_all_written(
    destinations: &[Location],
    source: &Source,
    (reached, failed): (&[usize], usize),
    error: TransportError,
) -> TransportError {
    let name = |i: &usize| destinations[*i].to_string();
    let unreached: Vec<String> = (0..destinations.len())
        .filter(|i| *i != failed && !reached.contains(i))
        .map(|i| name(&i))
        .collect();
    if reached.is_empty() {
        if unreached.is_empty() {
            return error;
        }
        return TransportError::NothingWritten(NothingWritten {
            message: format!(
                "nothing was written: {} failed{}",
                name(&failed),
                not_written(&unreached)
            ),
            source: Box::new(error),
        });
    }
    let reached_names: Vec<String> = reached.iter().map(name).collect();
    TransportError::Partial(PartialWrite {
        reached: reached.to_vec(),
        failed,
        message: format!(
            "{} failed after the image was written to {}{}",
            name(&failed),
            reached_names.join(", "),
            not_written(&unreached)
        ),
        digest: source.artifact.digest().clone(),
        source: Box::new(error),
    })
}

/// Removes the temp files and folders no live process holds from the
/// folders a local destination writes to (I/O, best effort): beside an
/// archive, beside a layout (a new one is built there) and inside it.
fn sweep_leftovers(dest: &Location) {
    let beside = |path: &Path| match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let folders = match dest {
        Location::Oci { path, .. } => {
            vec![
                beside(path),
                path.clone(),
                path.join("blobs").join("sha256"),
            ]
        }
        Location::OciArchive { path, .. } | Location::DockerArchive { path, .. } => {
            vec![beside(path)]
        }
        Location::Registry(_) | Location::Scratch => Vec::new(),
    };
    for folder in folders {
        atomic::sweep_stale(&folder);
    }
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

/// What a sink is given: a docker-archive holds one runnable image (with its
/// attestations, when the artifact is that image and its attestation manifest);
/// every other sink takes the artifact whole.
fn sink_artifact(
    dest: &Location,
    artifact: &Artifact,
    options: &SinkOptions,
) -> Result<Artifact, TransportError> {
    let (Location::DockerArchive { .. }, Artifact::Index(index)) = (dest, artifact) else {
        return Ok(artifact.clone());
    };
    // One runnable image and its attestations is what an archive holds,
    // whatever its platform (a --platform that does not match it was already
    // refused when the source was read).
    if attestation::single_attested_image(index).is_some() {
        return Ok(artifact.clone());
    }
    Ok(Artifact::Image(
        artifact.clone().into_image(&options.platform)?,
    ))
}

fn write_local(
    dest: &Location,
    artifact: &Artifact,
    store: &Store,
    options: &SinkOptions,
) -> Result<(), TransportError> {
    match dest {
        Location::Oci { path, tag } => {
            let tag = tag.as_deref().unwrap_or(&options.default_tag);
            Ok(archive::write_oci_layout(path, tag, artifact, store)?)
        }
        Location::OciArchive { path, tag } => {
            let tag = tag.as_deref().unwrap_or(&options.default_tag);
            Ok(archive::write_oci_archive(
                path,
                tag,
                artifact,
                store,
                options.mtime,
            )?)
        }
        Location::DockerArchive { path, reference } => {
            let reference = reference.as_ref().or(options.default_reference.as_ref());
            let image = artifact.runnable_image(&options.platform)?;
            // The index goes along only when it is that image's with its attestations.
            let attested = match artifact {
                Artifact::Index(index) if attestation::single_attested_image(index).is_some() => {
                    Some(index)
                }
                _ => None,
            };
            Ok(archive::write_docker_archive(
                path,
                reference,
                &image,
                attested,
                store,
                options.mtime,
            )?)
        }
        Location::Scratch => Err(usage(
            "`scratch` cannot be a destination",
            "write to a registry, oci:DIR, oci-archive:FILE or docker-archive:FILE",
        )),
        Location::Registry(_) => Err(usage(
            "internal: registry destinations are pushed by write_all",
            "report this as a bug",
        )),
    }
}
