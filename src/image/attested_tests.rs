//! The attestation layout with the images around it: an attested index read back, narrowed to a platform, and picked from by a runtime.

use std::collections::BTreeMap;

use serde_json::json;

use super::attestation::*;
use super::{Artifact, Descriptor, Format, Image, Layer, Platform, canonical_json, media};
use crate::digest::Digest;
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
    let narrowed = Artifact::Index(index).for_platform(&platform).unwrap();
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
    let chosen = Artifact::Index(index.clone())
        .into_image(&platform)
        .unwrap();
    assert_eq!(chosen.digest(), image.digest());
    assert_eq!(
        single_attested_image(&index).unwrap().digest(),
        image.digest()
    );
    // Narrowed to its platform, the index stays whole: the attestations travel with the image.
    let kept = Artifact::Index(index.clone())
        .for_platform(&platform)
        .unwrap();
    assert_eq!(kept.digest(), &index.digest);
    assert!(
        Artifact::Index(index.clone())
            .for_platform(&Platform::parse("linux/s390x").unwrap())
            .is_err()
    );
    let found = attached(&index).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].describes.as_ref(), Some(image.digest()));
    assert_eq!(found[0].manifest.digest(), manifest.digest());
}
