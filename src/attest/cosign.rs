//! cosign's key-based signature format: the simple-signing payload, its ECDSA P-256 signature, and the manifest at `sha256-<hex>.sig` that holds them.
//!
//! Pure functions: the bytes cosign writes and what `cosign verify --key`
//! checks (the signature over the payload's exact bytes, and that the
//! payload names the image's digest). Not for fetching or pushing (the sign
//! command does that through `registry`), nor for reading keys (`keys`).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::image::{Descriptor, canonical_json, media};
use crate::reference::{DOCKER_HUB, ImageRef};

/// Media type of the payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 ASN.1 DER signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The payload's `critical.type`.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// Why a signature manifest could not be read or extended.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature manifest at {tag} is not an image manifest: {problem}")]
    BadManifest { tag: String, problem: String },
    #[error("no signature of {reference} verifies with {key}{}", reasons(.checked))]
    NoneVerified {
        reference: String,
        key: String,
        /// Each signature found, with why it failed.
        checked: Vec<(Digest, String)>,
    },
    #[error("{reference} has no signatures (no manifest at tag {tag})")]
    Unsigned { reference: String, tag: String },
}

impl SignatureError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            SignatureError::BadManifest { tag, .. } => format!(
                "the tag {tag} holds something other than cosign signatures; delete or move it, then sign again"
            ),
            SignatureError::NoneVerified { .. } => {
                "check that this public key belongs to the key the image was signed with, and that the reference names the image that was signed".into()
            }
            SignatureError::Unsigned { .. } => {
                "sign it with `stowage sign REF --key KEY` (or push with --sign-key)".into()
            }
        }
    }
}

fn reasons(checked: &[(Digest, String)]) -> String {
    checked
        .iter()
        .map(|(digest, why)| format!("\n  {digest}: {why}"))
        .collect()
}

/// The signature tag of `digest`: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// The repository as cosign names it in the payload (go-containerregistry's
/// spelling: Docker Hub is `index.docker.io`).
pub fn docker_reference(reference: &ImageRef) -> String {
    let registry = if reference.registry == DOCKER_HUB {
        "index.docker.io"
    } else {
        &reference.registry
    };
    format!("{registry}/{}", reference.repository)
}

/// The simple-signing payload, as cosign marshals it (field order and all).
#[derive(Debug, Serialize, Deserialize)]
pub struct Payload {
    pub critical: Critical,
    pub optional: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: ImageClaim,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ImageClaim {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The payload bytes that sign `digest` in `docker_reference`'s repository.
pub fn payload(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    let payload = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_string(),
            },
            image: ImageClaim {
                docker_manifest_digest: digest.to_string(),
            },
            kind: SIGNATURE_TYPE.to_string(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// The base64 ASN.1 DER ECDSA-SHA256 signature of `bytes` (deterministic, RFC 6979).
pub fn sign(key: &SigningKey, bytes: &[u8]) -> String {
    let signature: Signature = key.sign(bytes);
    STANDARD.encode(signature.to_der().as_bytes())
}

/// Checks one signature layer's payload against `digest`: Ok, or why not.
pub fn check(
    key: &VerifyingKey,
    payload_bytes: &[u8],
    signature_b64: &str,
    digest: &Digest,
) -> Result<(), String> {
    let der = STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| "the signature annotation is not base64".to_string())?;
    let signature = Signature::from_der(&der)
        .map_err(|_| "the signature is not ASN.1 DER ECDSA".to_string())?;
    key.verify(payload_bytes, &signature)
        .map_err(|_| "the signature does not match the payload and key".to_string())?;
    let payload: Payload = serde_json::from_slice(payload_bytes)
        .map_err(|e| format!("the payload is not simple-signing JSON: {e}"))?;
    if payload.critical.kind != SIGNATURE_TYPE {
        return Err(format!("the payload's type is `{}`", payload.critical.kind));
    }
    if payload.critical.image.docker_manifest_digest != digest.as_str() {
        return Err(format!(
            "the payload signs {}, not {digest}",
            payload.critical.image.docker_manifest_digest
        ));
    }
    Ok(())
}

/// A signature layer's descriptor: the payload blob, with its signature in the annotation.
pub fn signature_layer(payload_bytes: &[u8], signature_b64: &str) -> Descriptor {
    let mut layer = Descriptor::new(
        SIMPLE_SIGNING,
        Digest::of(payload_bytes),
        payload_bytes.len() as u64,
    );
    layer
        .annotations
        .insert(SIGNATURE_ANNOTATION.into(), signature_b64.into());
    layer
}

/// The signature layers of a manifest at the signature tag, in order; other layers are left out.
pub fn signature_layers(tag: &str, raw: &[u8]) -> Result<Vec<Descriptor>, SignatureError> {
    Ok(layers_of(tag, raw)?
        .into_iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING)
        .collect())
}

fn layers_of(tag: &str, raw: &[u8]) -> Result<Vec<Descriptor>, SignatureError> {
    #[derive(Deserialize)]
    struct Layers {
        #[serde(default)]
        layers: Option<Vec<Descriptor>>,
    }
    let bad = |problem: String| SignatureError::BadManifest {
        tag: tag.to_string(),
        problem,
    };
    let parsed: Layers = serde_json::from_slice(raw).map_err(|e| bad(e.to_string()))?;
    parsed
        .layers
        .ok_or_else(|| bad("it has no `layers` (an index?)".into()))
}

/// A signature manifest ready to push: its config and manifest bytes.
#[derive(Debug, Clone)]
pub struct SignatureManifest {
    pub config: Vec<u8>,
    pub config_descriptor: Descriptor,
    pub manifest: Vec<u8>,
    /// Every layer, the existing ones first.
    pub layers: Vec<Descriptor>,
}

/// The signature manifest with `layer` appended to what `existing` (the
/// manifest now at the tag) holds; None when an identical layer is there already.
pub fn extend_signatures(
    tag: &str,
    existing: Option<&[u8]>,
    layer: Descriptor,
) -> Result<Option<SignatureManifest>, SignatureError> {
    let mut layers = match existing {
        Some(raw) => layers_of(tag, raw)?,
        None => Vec::new(),
    };
    if layers.contains(&layer) {
        return Ok(None);
    }
    layers.push(layer);
    // The config go-containerregistry gives an image of these layers, as
    // cosign pushes it: nothing reads it but registries that want one.
    let epoch = "0001-01-01T00:00:00Z";
    let config = serde_json::json!({
        "architecture": "",
        "created": epoch,
        "history": layers.iter().map(|_| serde_json::json!({"created": epoch})).collect::<Vec<_>>(),
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>()},
        "config": {},
    });
    let config = canonical_json(&config);
    let config_descriptor =
        Descriptor::new(media::OCI_CONFIG, Digest::of(&config), config.len() as u64);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": config_descriptor,
        "layers": layers,
    });
    Ok(Some(SignatureManifest {
        config,
        config_descriptor,
        manifest: canonical_json(&manifest),
        layers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32].into()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn digest() -> Digest {
        Digest::of(b"an image manifest")
    }

    #[test]
    fn the_payload_is_byte_for_byte_what_cosign_marshals() {
        let d = digest();
        let text = String::from_utf8(payload("localhost:5000/app", &d)).unwrap_or_default();
        assert_eq!(
            text,
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"localhost:5000/app"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
    }

    #[test]
    fn docker_hub_is_named_as_go_containerregistry_names_it() {
        let hub = ImageRef::parse("alpine:3").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(docker_reference(&hub), "index.docker.io/library/alpine");
        let local = ImageRef::parse("localhost:5000/a/b:1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(docker_reference(&local), "localhost:5000/a/b");
        assert_eq!(
            signature_tag(&digest()),
            format!("sha256-{}.sig", digest().hex())
        );
    }

    #[test]
    fn a_signature_verifies_and_a_tampered_payload_or_other_digest_does_not() {
        let d = digest();
        let bytes = payload("r/app", &d);
        let signature = sign(&key(), &bytes);
        let public = *key().verifying_key();
        assert_eq!(check(&public, &bytes, &signature, &d), Ok(()));
        let mut tampered = bytes.clone();
        tampered[20] ^= 1;
        assert!(check(&public, &tampered, &signature, &d).is_err());
        let other = Digest::of(b"another image");
        let why = check(&public, &bytes, &signature, &other)
            .err()
            .unwrap_or_default();
        assert!(why.contains("not sha256:"), "{why}");
        let stranger = SigningKey::from_bytes(&[9u8; 32].into()).unwrap_or_else(|e| panic!("{e}"));
        assert!(check(stranger.verifying_key(), &bytes, &signature, &d).is_err());
        assert!(check(&public, &bytes, "not base64!", &d).is_err());
    }

    /// Go's ecdsa (cosign) and openssl leave S in the upper half half the
    /// time; such a signature is as valid and must verify. This one is
    /// openssl's (`openssl dgst -sha256 -sign`), with S > n/2.
    #[test]
    fn a_signature_with_high_s_from_openssl_verifies() {
        const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9/rI55K/5sX6fZihv6VJsozhkZZ0
iCxi4/twRHVcGKNpydu0e+fkqw1rwoOQRvxjRW8fQmfvPbWAED5/NF2HGg==
-----END PUBLIC KEY-----
";
        let public = crate::attest::keys::parse_public_key(std::path::Path::new("k.pub"), PUBLIC)
            .unwrap_or_else(|e| panic!("{e}"));
        let bytes = payload("r/app", &digest());
        let signature = "MEYCIQDMVLvU3dLJaxk5zHANFJcd4Gci+ctmlKF86hrGe9wbEwIhAMvmFa/0iicAPJ20d4DpGHNkMJO1sYBH6Uzb1XudxOMC";
        assert_eq!(check(&public, &bytes, signature, &digest()), Ok(()));
    }

    #[test]
    fn signatures_are_appended_once_and_existing_ones_kept() {
        let d = digest();
        let bytes = payload("r/app", &d);
        let first = signature_layer(&bytes, &sign(&key(), &bytes));
        let made = extend_signatures("t", None, first.clone()).ok().flatten();
        let Some(made) = made else {
            panic!("nothing made")
        };
        assert_eq!(made.layers, vec![first.clone()]);
        let again = extend_signatures("t", Some(&made.manifest), first.clone());
        assert!(matches!(again, Ok(None)));
        let other_key = SigningKey::from_bytes(&[9u8; 32].into()).unwrap_or_else(|e| panic!("{e}"));
        let second = signature_layer(&bytes, &sign(&other_key, &bytes));
        let both = extend_signatures("t", Some(&made.manifest), second.clone())
            .ok()
            .flatten();
        let Some(both) = both else {
            panic!("nothing made")
        };
        assert_eq!(both.layers, vec![first, second]);
        assert_eq!(
            signature_layers("t", &both.manifest).map(|l| l.len()).ok(),
            Some(2)
        );
        let manifest: Value = serde_json::from_slice(&both.manifest).unwrap_or_default();
        assert_eq!(manifest["mediaType"], media::OCI_MANIFEST);
        assert_eq!(
            manifest["config"]["digest"],
            Digest::of(&both.config).to_string()
        );
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(extend_signatures("t", Some(index), signature_layer(&bytes, "x")).is_err());
    }
}
