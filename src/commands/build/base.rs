//! What a build starts from: the base image read (or scratch's empty config), its folders above the targets, and its layers as the new manifest lists them.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::error::Error;
use crate::image::{self, Artifact, Descriptor, Format, Image, Layer, Platform, media};
use crate::layer::{self, BaseFolders, Compression};
use crate::plan::BuildPlan;
use crate::reference::Location;
use crate::registry::Origin;
use crate::transport::{self, Access};

/// What the build starts from.
pub struct Base {
    /// None for scratch.
    pub image: Option<Image>,
    /// Where a registry base's blobs live.
    pub origin: Option<Origin>,
    /// The base's full name, when it has one that is not a local path.
    pub name: Option<String>,
    /// The config JSON to edit.
    pub config: Value,
}

/// Reads the base image (I/O), or makes the empty config for scratch.
pub fn read_base(plan: &BuildPlan, access: &Access<'_>) -> Result<Base, Error> {
    let platform = &plan.platform;
    if matches!(plan.base, Location::Scratch) {
        return Ok(Base {
            image: None,
            origin: None,
            name: None,
            config: scratch_config(platform),
        });
    }
    let (image, read) = transport::read_image(&plan.base, platform, access)?;
    if plan.explicit_platform
        && let Some(actual) = image.platform()
        && !actual.satisfies(platform)
    {
        return Err(Error::Image(image::ImageError::NoPlatform {
            wanted: platform.to_string(),
            available: actual.to_string(),
        }));
    }
    let config = image.config_json()?;
    Ok(Base {
        image: Some(image),
        origin: read.origin,
        name: read.name,
        config,
    })
}

/// The config of the empty image.
fn scratch_config(platform: &Platform) -> Value {
    let mut config = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    if let Some(variant) = &platform.variant {
        config["variant"] = json!(variant);
    }
    config
}

/// The manifest family of the image: `--format`, else the base's; refused when it cannot hold the plan's layers.
pub fn image_format(plan: &BuildPlan, base: &Base) -> Result<Format, Error> {
    let format = plan.format.unwrap_or_else(|| {
        base.image
            .as_ref()
            .map(Image::format)
            .unwrap_or(Format::Oci)
    });
    if plan.compression == Compression::Zstd && format == Format::Docker {
        return Err(Error::usage(
            "zstd layers cannot be described in a Docker schema 2 manifest",
            "add --format oci, or use gzip compression",
        ));
    }
    Ok(format)
}

/// What the base has at the folders above the targets (I/O: reads the base
/// layers' tar headers, fetching them first, unless remembered for this base).
/// Empty for scratch and with `--keep-base-remote`: the defaults stay.
pub fn base_folders(
    plan: &BuildPlan,
    base: &Base,
    access: &Access<'_>,
) -> Result<BaseFolders, Error> {
    let (Some(image), false) = (&base.image, plan.keep_base_remote) else {
        return Ok(BaseFolders::new());
    };
    let wanted: BTreeSet<String> = plan
        .layers
        .iter()
        .flat_map(|l| l.defaulted_ancestors())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    if wanted.is_empty() {
        return Ok(BaseFolders::new());
    }
    if let Some(cached) = layer::base_folders::cached(access.store, image.digest(), &wanted) {
        return Ok(cached);
    }
    transport::ensure_local(
        &Artifact::Image(image.clone()),
        base.origin.as_ref(),
        access,
    )?;
    Ok(layer::base_folders::read(
        access.store,
        image.digest(),
        image.layers(),
        &wanted,
    )?)
}

/// The base's layers, described in `format`, with uncompressed ones gzipped (registries and
/// docker load both prefer it, and it keeps pushes small); none for scratch.
pub fn base_layers_in(
    format: Format,
    base: &Base,
    access: &Access<'_>,
) -> Result<Vec<Layer>, Error> {
    let Some(image) = &base.image else {
        return Ok(Vec::new());
    };
    image
        .layers()
        .iter()
        .map(|layer| {
            let mut descriptor = layer.descriptor.clone();
            if image::is_uncompressed_layer(&descriptor.media_type) {
                if let Some(origin) = &base.origin {
                    access
                        .registry()?
                        .fetch_blob(origin, &descriptor, access.store)?;
                }
                let (digest, size) = layer::gzip_stored_layer(access.store, &descriptor.digest)?;
                descriptor = Descriptor::new(media::OCI_LAYER_GZIP, digest, size);
            }
            descriptor.media_type = format.layer_media_type(&descriptor.media_type)?.to_string();
            Ok(Layer {
                descriptor,
                diff_id: layer.diff_id.clone(),
            })
        })
        .collect()
}
