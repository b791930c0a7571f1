//! `stowage sign` and `verify`, and the signing of what `build` and `push` sent to a registry: cosign's key-based signatures at `sha256-<hex>.sig`.
//!
//! Not for the format or the crypto (`attest::cosign`, `attest::keys`) nor
//! for HTTP (`registry`): this file fetches, decides and pushes.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use p256::ecdsa::{SigningKey, VerifyingKey};
use serde::Serialize;

use super::Session;
use crate::attest::cosign::{self, SignatureError};
use crate::attest::keys::{self, KeyError, Password, PrivateKeyPem};
use crate::digest::Digest;
use crate::error::Error;
use crate::exports::Note;
use crate::image::{MAX_JSON_BYTES, media};
use crate::reference::{self, ImageRef, Location};
use crate::registry::{Origin, RegistryError};
use crate::transport::Access;

/// Where an encrypted key's password comes from when `COSIGN_PASSWORD` is not set.
pub const PASSWORD_VARIABLE: &str = "COSIGN_PASSWORD";
/// Key files are small; a larger file is not a key.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// Asks the user for the password of the key at the path: `Ok(None)` when there is no one to ask (no terminal).
pub type AskPassword<'a> = &'a dyn Fn(&Path) -> std::io::Result<Option<String>>;

/// A private key ready to sign with, and the file it came from.
#[derive(Clone)]
pub struct Signer {
    pub key_path: PathBuf,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// One signature written.
#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    /// `REPO@DIGEST` of the signed image.
    pub image: String,
    /// `REPO:sha256-<hex>.sig`.
    pub signature_tag: String,
    /// False when the same signature was there already.
    pub added: bool,
    /// Signatures at the tag now.
    pub signatures: usize,
}

/// What `stowage verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// `REPO@DIGEST` of the image checked.
    pub image: String,
    pub key: String,
    pub signatures: Vec<CheckedSignature>,
}

/// One signature at the tag and whether it verified.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedSignature {
    /// The payload blob's digest.
    pub payload: Digest,
    pub verified: bool,
    /// Why it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Reads the private key at `path` (I/O), opening an encrypted one with
/// `COSIGN_PASSWORD`, else the password `ask` gets from the user.
pub fn load_signer(path: &Path, ask: AskPassword<'_>) -> Result<Signer, Error> {
    let text = read_key_file(path)?;
    let key = match keys::parse_private_key(path, &text)? {
        PrivateKeyPem::Plain(key) => key,
        PrivateKeyPem::Encrypted(locked) => {
            let password = match std::env::var(PASSWORD_VARIABLE) {
                Ok(password) => password,
                Err(_) => ask(path)
                    .map_err(|source| KeyError::Prompt {
                        path: path.to_path_buf(),
                        source,
                    })?
                    .ok_or_else(|| KeyError::NoPassword {
                        path: path.to_path_buf(),
                    })?,
            };
            locked.decrypt(&Password(password))?
        }
    };
    Ok(Signer {
        key_path: path.to_path_buf(),
        key,
    })
}

fn read_public_key(path: &Path) -> Result<VerifyingKey, Error> {
    let text = read_key_file(path)?;
    Ok(keys::parse_public_key(path, &text)?)
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    let read_error = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(MAX_KEY_BYTES)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    Ok(text)
}

/// `stowage sign REF --key KEY` (I/O): signs the digest REF has in its registry now.
pub fn sign(session: &Session, reference: &str, signer: &Signer) -> Result<Signed, Error> {
    let reference = registry_reference(reference)?;
    let access = session.access()?;
    let digest = resolve_digest(&access, &reference)?;
    sign_digest(&access, &reference, &digest, signer)
}

/// Signs `digest` once in each registry repository among `destinations` (I/O): after a build's or push's push.
pub fn sign_destinations(
    access: &Access<'_>,
    destinations: &[Location],
    digest: &Digest,
    signer: &Signer,
) -> Result<Vec<Signed>, Error> {
    let mut done = BTreeSet::new();
    let mut signed = Vec::new();
    for destination in destinations {
        let Location::Registry(reference) = destination else {
            continue;
        };
        if done.insert((reference.registry.clone(), reference.repository.clone())) {
            signed.push(sign_digest(access, reference, digest, signer)?);
        }
    }
    Ok(signed)
}

/// The usage error for `--sign-key` without a registry destination, if that is the case.
pub fn check_signable(destinations: &[Location]) -> Result<(), Error> {
    if destinations
        .iter()
        .any(|d| matches!(d, Location::Registry(_)))
    {
        return Ok(());
    }
    Err(Error::usage(
        "--sign-key signs images in a registry, and no destination is a registry",
        "add a registry destination (-o REGISTRY/REPO:TAG), or drop --sign-key",
    ))
}

/// The export record's notes for signatures written.
pub fn notes(signed: &[Signed]) -> Vec<Note> {
    signed
        .iter()
        .map(|s| Note::Signed {
            image: s.image.clone(),
            tag: s.signature_tag.clone(),
        })
        .collect()
}

/// Adds the signature of `digest` to the manifest at its signature tag in `reference`'s repository (I/O).
pub fn sign_digest(
    access: &Access<'_>,
    reference: &ImageRef,
    digest: &Digest,
    signer: &Signer,
) -> Result<Signed, Error> {
    let tag = cosign::signature_tag(digest);
    let payload = cosign::payload(&cosign::docker_reference(reference), digest);
    let signature = cosign::sign(&signer.key, &payload);
    let layer = cosign::signature_layer(&payload, &signature);
    let existing = fetch_optional(access, reference, &tag)?;
    let image = reference.with_digest(digest.as_str());
    let signature_tag = format!("{}:{tag}", reference.name());
    let Some(manifest) = cosign::extend_signatures(&tag, existing.as_deref(), layer.clone())?
    else {
        let signatures = cosign::signature_layers(&tag, existing.as_deref().unwrap_or_default())?;
        return Ok(Signed {
            image,
            signature_tag,
            added: false,
            signatures: signatures.len(),
        });
    };
    let blobs = [
        (&manifest.config_descriptor, manifest.config.as_slice()),
        (&layer, payload.as_slice()),
    ];
    access
        .registry()?
        .push_small(
            reference,
            &blobs,
            &tag,
            &manifest.manifest,
            media::OCI_MANIFEST,
            access.store,
        )
        .map_err(|e| Error::from(e).context(format!("cannot push the signature of {image}")))?;
    Ok(Signed {
        image,
        signature_tag,
        added: true,
        signatures: manifest.layers.len(),
    })
}

/// `stowage verify REF --key PUB` (I/O): checks every signature at REF's
/// signature tag; an error when none verifies.
pub fn verify(session: &Session, reference: &str, key_path: &Path) -> Result<Verified, Error> {
    let key = read_public_key(key_path)?;
    let reference = registry_reference(reference)?;
    let access = session.access()?;
    let digest = resolve_digest(&access, &reference)?;
    let image = reference.with_digest(digest.as_str());
    let tag = cosign::signature_tag(&digest);
    let Some(raw) = fetch_optional(&access, &reference, &tag)? else {
        return Err(SignatureError::Unsigned {
            reference: image,
            tag,
        }
        .into());
    };
    let origin = Origin::of(&reference);
    let mut signatures = Vec::new();
    for layer in cosign::signature_layers(&tag, &raw)? {
        let checked = check_layer(&access, &origin, &layer, &key, &digest)?;
        signatures.push(CheckedSignature {
            payload: layer.digest,
            verified: checked.is_ok(),
            problem: checked.err(),
        });
    }
    if !signatures.iter().any(|s| s.verified) {
        return Err(SignatureError::NoneVerified {
            reference: image,
            key: key_path.display().to_string(),
            checked: signatures
                .into_iter()
                .map(|s| (s.payload, s.problem.unwrap_or_default()))
                .collect(),
        }
        .into());
    }
    Ok(Verified {
        image,
        key: key_path.display().to_string(),
        signatures,
    })
}

/// One signature layer: its payload fetched (and checked against its digest) and verified.
/// Err only for failures to reach the registry; a bad signature is `Ok(Err(why))`.
fn check_layer(
    access: &Access<'_>,
    origin: &Origin,
    layer: &crate::image::Descriptor,
    key: &VerifyingKey,
    digest: &Digest,
) -> Result<Result<(), String>, Error> {
    let Some(signature) = layer.annotations.get(cosign::SIGNATURE_ANNOTATION) else {
        return Ok(Err(format!(
            "no {} annotation (a keyless or other signature)",
            cosign::SIGNATURE_ANNOTATION
        )));
    };
    if layer.size > MAX_JSON_BYTES {
        return Ok(Err(format!(
            "a payload of {} bytes is too large",
            layer.size
        )));
    }
    access.registry()?.fetch_blob(origin, layer, access.store)?;
    let payload = access.store.read_small(&layer.digest, MAX_JSON_BYTES)?;
    Ok(cosign::check(key, &payload, signature, digest))
}

/// REF or docker://REF; anything else is a usage error.
fn registry_reference(text: &str) -> Result<ImageRef, Error> {
    match reference::parse_location(text)? {
        Location::Registry(reference) => Ok(reference),
        _ => Err(Error::usage(
            format!("`{text}` is not a registry image"),
            "signatures live in a registry: give REF or docker://REF",
        )),
    }
}

/// The digest REF names: its own, or the one its tag points at now (I/O; checked by the registry client).
fn resolve_digest(access: &Access<'_>, reference: &ImageRef) -> Result<Digest, Error> {
    let by = reference
        .digest
        .clone()
        .unwrap_or_else(|| reference.tag_or_latest().to_string());
    let (bytes, _) = access
        .registry()?
        .fetch_manifest(reference, &by)
        .map_err(|e| Error::from(e).context(format!("cannot read {reference}")))?;
    Ok(Digest::of(&bytes))
}

/// The manifest at `tag`, or None when there is none (I/O).
fn fetch_optional(
    access: &Access<'_>,
    reference: &ImageRef,
    tag: &str,
) -> Result<Option<Vec<u8>>, Error> {
    match access.registry()?.fetch_manifest(reference, tag) {
        Ok((bytes, _)) => Ok(Some(bytes)),
        Err(RegistryError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
