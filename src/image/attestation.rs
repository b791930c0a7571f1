//! BuildKit's attestation layout as values: the attestation manifest of in-toto statements, and the index that lists it after its image.
//!
//! The layout is the one BuildKit wrote until 2026 and every registry
//! accepts: an OCI image manifest (no `subject`) whose config says
//! `unknown/unknown` and whose layers are the statements, listed in an OCI
//! index under platform `unknown/unknown` so that no runtime picks it, with
//! `vnd.docker.reference.*` annotations naming the image it describes.

use std::collections::BTreeMap;

use serde_json::json;

use super::{
    Descriptor, Format, Image, ImageError, ImageIndex, Index, Layer, Platform, canonical_json,
    media, parse_json,
};
use crate::digest::Digest;

/// Media type of an in-toto statement layer.
pub const INTOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// Layer annotation naming the statement's predicate type.
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// Index descriptor annotation: what kind of reference the manifest is.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// Index descriptor annotation: the digest of the manifest the attestations describe.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// `vnd.docker.reference.type` of an attestation manifest.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// One in-toto statement blob, as the attestation manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementBlob {
    pub digest: Digest,
    pub size: u64,
    /// The statement's `predicateType`.
    pub predicate_type: String,
}

/// The platform of an attestation manifest: nothing can run it.
pub fn unknown_platform() -> Platform {
    Platform {
        os: "unknown".into(),
        architecture: "unknown".into(),
        variant: None,
        extra: BTreeMap::new(),
    }
}

/// Whether an index descriptor is an attestation manifest (by BuildKit's annotation, or its `unknown` platform).
pub fn is_attestation(descriptor: &Descriptor) -> bool {
    descriptor
        .annotations
        .get(REFERENCE_TYPE)
        .is_some_and(|t| t == ATTESTATION_MANIFEST)
        || descriptor
            .platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown")
}

/// The attestation manifest holding `statements` as its layers, in order.
///
/// Its config is a valid image config for `unknown/unknown` whose diff_ids
/// are the statements' digests (they are not compressed), as BuildKit writes it.
pub fn attestation_manifest(statements: &[StatementBlob]) -> Result<Image, ImageError> {
    let diff_ids: Vec<&Digest> = statements.iter().map(|s| &s.digest).collect();
    let config = canonical_json(&json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }));
    let layers = statements
        .iter()
        .map(|s| {
            let mut descriptor = Descriptor::new(INTOTO_MEDIA_TYPE, s.digest.clone(), s.size);
            descriptor
                .annotations
                .insert(PREDICATE_TYPE.into(), s.predicate_type.clone());
            Layer {
                descriptor,
                diff_id: s.digest.clone(),
            }
        })
        .collect();
    Image::assemble(Format::Oci, config, layers, BTreeMap::new())
}

/// The OCI index of `image` (listed with `platform`) followed by its attestation manifest.
pub fn attested_index(
    image: &Image,
    platform: &Platform,
    attestation: &Image,
) -> Result<ImageIndex, ImageError> {
    let mut runnable = image.descriptor();
    runnable.platform = Some(platform.clone());
    let mut attached = attestation.descriptor();
    attached.platform = Some(unknown_platform());
    attached
        .annotations
        .insert(REFERENCE_TYPE.into(), ATTESTATION_MANIFEST.into());
    attached
        .annotations
        .insert(REFERENCE_DIGEST.into(), image.digest().to_string());
    let raw = canonical_json(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [runnable, attached],
    }));
    Ok(ImageIndex {
        digest: Digest::of(&raw),
        raw,
        media_type: media::OCI_INDEX.to_string(),
        images: vec![image.clone(), attestation.clone()],
    })
}

/// An attestation manifest of an index, with the image it describes.
#[derive(Debug, Clone)]
pub struct Attached<'a> {
    /// The manifest the attestations describe (`vnd.docker.reference.digest`), when named.
    pub describes: Option<Digest>,
    pub manifest: &'a Image,
}

/// The attestation manifests an index lists, in index order (only those whose manifest was read).
pub fn attached(index: &ImageIndex) -> Result<Vec<Attached<'_>>, ImageError> {
    let parsed: Index = parse_json("image index", &index.raw)?;
    Ok(parsed
        .manifests
        .iter()
        .filter(|d| is_attestation(d))
        .filter_map(|d| {
            let manifest = index.images.iter().find(|i| i.digest() == &d.digest)?;
            Some(Attached {
                describes: d
                    .annotations
                    .get(REFERENCE_DIGEST)
                    .and_then(|t| t.parse().ok()),
                manifest,
            })
        })
        .collect())
}

/// The one runnable image of an index that holds nothing else but attestations of it; None for any other index.
pub fn single_attested_image(index: &ImageIndex) -> Option<&Image> {
    let parsed: Index = parse_json("image index", &index.raw).ok()?;
    let mut runnable = parsed.manifests.iter().filter(|d| !is_attestation(d));
    let only = runnable.next()?;
    if runnable.next().is_some() || parsed.manifests.len() < 2 {
        return None;
    }
    index.images.iter().find(|i| i.digest() == &only.digest)
}
