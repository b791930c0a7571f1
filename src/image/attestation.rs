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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn image() -> Image {
        let config = canonical_json(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"tar")]},
            "config": {}
        }));
        let layer = Layer {
            descriptor: Descriptor::new(media::OCI_LAYER_GZIP, Digest::of(b"gz"), 2),
            diff_id: Digest::of(b"tar"),
        };
        Image::assemble(Format::Oci, config, vec![layer], BTreeMap::new()).unwrap()
    }

    fn statement(text: &[u8], predicate: &str) -> StatementBlob {
        StatementBlob {
            digest: Digest::of(text),
            size: text.len() as u64,
            predicate_type: predicate.into(),
        }
    }

    #[test]
    fn an_index_of_two_images_is_not_a_single_attested_one() {
        let image = image();
        let manifest = attestation_manifest(&[statement(b"s", "t")]).unwrap();
        let platform = Platform::parse("linux/amd64").unwrap();
        let mut index = attested_index(&image, &platform, &manifest).unwrap();
        let mut parsed: Value = serde_json::from_slice(&index.raw).unwrap();
        let mut other = parsed["manifests"][0].clone();
        other["platform"]["architecture"] = json!("arm64");
        parsed["manifests"].as_array_mut().unwrap().push(other);
        index.raw = canonical_json(&parsed);
        assert!(single_attested_image(&index).is_none());
        // Narrowing it gives the one image, without the index.
        let narrowed = crate::image::Artifact::Index(index)
            .for_platform(&platform)
            .unwrap();
        assert_eq!(narrowed.digest(), image.digest());
    }

    #[test]
    fn attestation_manifest_is_buildkits_layout() {
        let statements = [
            statement(b"sbom", "https://spdx.dev/Document"),
            statement(b"prov", "https://slsa.dev/provenance/v1"),
        ];
        let manifest = attestation_manifest(&statements).unwrap();
        let parsed: Value = serde_json::from_slice(manifest.raw_manifest()).unwrap();
        assert_eq!(parsed["mediaType"], media::OCI_MANIFEST);
        assert_eq!(parsed["config"]["mediaType"], media::OCI_CONFIG);
        assert!(parsed.get("subject").is_none());
        assert_eq!(parsed["layers"][1]["mediaType"], INTOTO_MEDIA_TYPE);
        assert_eq!(
            parsed["layers"][1]["annotations"][PREDICATE_TYPE],
            "https://slsa.dev/provenance/v1"
        );
        let config: Value = serde_json::from_slice(manifest.raw_config()).unwrap();
        assert_eq!(config["os"], "unknown");
        assert_eq!(config["architecture"], "unknown");
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            Digest::of(b"sbom").to_string()
        );
    }

    #[test]
    fn index_lists_the_image_then_its_attestations() {
        let image = image();
        let manifest = attestation_manifest(&[statement(b"s", "t")]).unwrap();
        let platform = Platform::parse("linux/amd64").unwrap();
        let index = attested_index(&image, &platform, &manifest).unwrap();
        let parsed: Value = serde_json::from_slice(&index.raw).unwrap();
        let manifests = parsed["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 2);
        assert_eq!(manifests[0]["digest"], image.digest().to_string());
        assert_eq!(manifests[0]["platform"]["architecture"], "amd64");
        assert!(manifests[0].get("annotations").is_none());
        assert_eq!(
            manifests[1]["platform"],
            json!({"os": "unknown", "architecture": "unknown"})
        );
        assert_eq!(
            manifests[1]["annotations"][REFERENCE_TYPE],
            "attestation-manifest"
        );
        assert_eq!(
            manifests[1]["annotations"][REFERENCE_DIGEST],
            image.digest().to_string()
        );
        assert_eq!(index.digest, Digest::of(&index.raw));
        // No runtime is offered the attestation manifest.
        let chosen = crate::image::Artifact::Index(index.clone())
            .into_image(&platform)
            .unwrap();
        assert_eq!(chosen.digest(), image.digest());
        assert_eq!(
            single_attested_image(&index).unwrap().digest(),
            image.digest()
        );
        // Narrowed to its platform, the index stays whole: the attestations travel with the image.
        let kept = crate::image::Artifact::Index(index.clone())
            .for_platform(&platform)
            .unwrap();
        assert_eq!(kept.digest(), &index.digest);
        assert!(
            crate::image::Artifact::Index(index.clone())
                .for_platform(&Platform::parse("linux/s390x").unwrap())
                .is_err()
        );
        let found = attached(&index).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].describes.as_ref(), Some(image.digest()));
        assert_eq!(found[0].manifest.digest(), manifest.digest());
    }
}
