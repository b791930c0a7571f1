//! The built image: the plan's layers written over the base's, the findings judged, the config and manifest assembled and start-checked, all in the store and nowhere else yet.

use std::collections::BTreeMap;

use super::base::{self, Base};
use super::findings::{self, Findings};
use crate::check::Checked;
use crate::commands::start_check::{self, CheckedBase};
use crate::digest::Digest;
use crate::error::Error;
use crate::image::config::{AddedLayers, edit_config};
use crate::image::{Descriptor, Format, Image, Layer, canonical_json, media};
use crate::layer::{self, BuiltLayer, Compression, SharedContents, WriteSettings};
use crate::plan::BuildPlan;
use crate::reference::ImageRef;
use crate::transport::Access;

/// Annotation naming the base image.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// Annotation holding the base manifest's digest.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// An image a build made: its config and manifest (in the store), the layers
/// it added, and what its checks found. Attestations and sinks start from it.
#[derive(Debug)]
pub struct BuiltImage {
    pub image: Image,
    /// The name to print with the digest (`NAME@sha256:…`), when there is one.
    pub name: Option<ImageRef>,
    /// The layers the build added, in the plan's order (the base's are only in `image`).
    pub layers: Vec<BuiltLayer>,
    /// The secret-scan findings let through.
    pub findings: Findings,
    /// The base's manifest digest; None for scratch.
    pub base_digest: Option<Digest>,
    /// What the start check found; None when it was off (`--no-start-check`).
    pub start_check: Option<Checked>,
}

/// Writes the plan's layers into the store with `settings` (their progress
/// told to `settings.progress`; a miss asked of the shared contents, such as
/// `--cache-repo`, when there are any), stops on a refused finding, assembles the
/// config and manifest in `format` over `base`, start-checks them, and puts
/// them in the store (I/O). Nothing outside the store is touched.
pub fn build_image(
    plan: &BuildPlan,
    base: &Base,
    format: Format,
    (settings, shared): (&WriteSettings<'_>, Option<&dyn SharedContents>),
    access: &Access<'_>,
) -> Result<BuiltImage, Error> {
    let mut layers = base::base_layers_in(format, base, access)?;
    let built = layer::write_layers(&plan.layers, access.store, settings, shared)?;
    layers.extend(added_layers(format, plan.compression, &built)?);
    let found = built.iter().map(|layer| layer.findings.as_slice());
    let findings = findings::check_findings(plan, found)?;
    let image = assemble(plan, base, format, layers, &built)?;
    let checked_base = CheckedBase {
        image: base.image.as_ref(),
        origin: base.origin.as_ref(),
    };
    let start_check =
        start_check::check_start(plan, &checked_base, settings.base_folders, &image, access)?;
    access.store.write_bytes(image.raw_config())?;
    access.store.write_bytes(image.raw_manifest())?;
    Ok(BuiltImage {
        image,
        name: plan.output_name(),
        layers: built,
        findings,
        base_digest: base.image.as_ref().map(|i| i.digest().clone()),
        start_check,
    })
}

/// The descriptors of the new layers, in the manifest family `format`.
fn added_layers(
    format: Format,
    compression: Compression,
    built: &[BuiltLayer],
) -> Result<Vec<Layer>, Error> {
    let oci_type = match compression {
        Compression::Gzip => media::OCI_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
    };
    built
        .iter()
        .map(|layer| {
            Ok(Layer {
                descriptor: Descriptor::new(
                    format.layer_media_type(oci_type)?,
                    layer.digest.clone(),
                    layer.size,
                ),
                diff_id: layer.diff_id.clone(),
            })
        })
        .collect()
}

/// The new config and manifest, from the base's config and all the layers.
fn assemble(
    plan: &BuildPlan,
    base: &Base,
    format: Format,
    layers: Vec<Layer>,
    built: &[BuiltLayer],
) -> Result<Image, Error> {
    let diff_ids: Vec<_> = built.iter().map(|l| l.diff_id.clone()).collect();
    let added = AddedLayers {
        diff_ids: &diff_ids,
        history: &plan.history,
        created: &plan.created,
    };
    let config = edit_config(base.config.clone(), &plan.config, &plan.platform, &added)?;
    let mut annotations = BTreeMap::new();
    if let Some(image) = &base.image {
        annotations.insert(BASE_DIGEST.to_string(), image.digest().to_string());
        if let Some(name) = &base.name {
            annotations.insert(BASE_NAME.to_string(), name.clone());
        }
    }
    Ok(Image::assemble(
        format,
        canonical_json(&config),
        layers,
        annotations,
    )?)
}
