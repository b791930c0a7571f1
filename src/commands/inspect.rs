//! `stowage inspect`: an image's summary, or the exact bytes of its manifest or config.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::Session;
use crate::attest::intoto::{SLSA_PROVENANCE_V1, SPDX_DOCUMENT};
use crate::digest::Digest;
use crate::error::Error;
use crate::image::attestation::{self, PREDICATE_TYPE};
use crate::image::{self, Artifact, Image, ImageError, ImageIndex, Platform};
use crate::reference::{self, Location};
use crate::transport::{self, Access, Source};

/// Which bytes are printed instead of the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawPart {
    /// `--raw manifest`: the exact manifest (or index) bytes.
    Manifest,
    /// `--raw config`: the exact config bytes.
    Config,
    /// `--sbom`: the SPDX document of the image's SBOM attestation.
    Sbom,
    /// `--provenance`: the predicate of the image's provenance attestation.
    Provenance,
}

/// Statements larger than this are refused: an SBOM of thousands of packages is a few MiB.
const MAX_STATEMENT_BYTES: u64 = 256 * 1024 * 1024;

/// What `stowage inspect` found.
#[derive(Debug)]
pub enum Inspected {
    /// The exact bytes asked for with `--raw`.
    Raw(Vec<u8>),
    /// An index of several platforms.
    Index(IndexSummary),
    /// One image.
    Image(Box<ImageSummary>),
}

/// An index: its digest, its images by platform, and their attestations.
#[derive(Debug, Serialize)]
pub struct IndexSummary {
    pub digest: Digest,
    pub media_type: String,
    pub manifests: Vec<IndexEntry>,
    pub attestations: Vec<AttestationSummary>,
}

/// An attestation manifest of an index, in BuildKit's layout.
#[derive(Debug, Serialize)]
pub struct AttestationSummary {
    /// The attestation manifest's digest.
    pub digest: Digest,
    /// The image it describes (`vnd.docker.reference.digest`).
    pub describes: Option<Digest>,
    pub statements: Vec<StatementSummary>,
}

/// One in-toto statement of an attestation manifest.
#[derive(Debug, Serialize)]
pub struct StatementSummary {
    pub predicate_type: Option<String>,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// One image of an index.
#[derive(Debug, Serialize)]
pub struct IndexEntry {
    pub digest: Digest,
    pub platform: Option<String>,
    pub media_type: String,
}

/// One image: identity, run config and layers.
#[derive(Debug, Serialize)]
pub struct ImageSummary {
    pub digest: Digest,
    pub media_type: String,
    pub platform: Option<String>,
    pub created: Option<String>,
    pub config: RunConfig,
    pub annotations: BTreeMap<String, String>,
    pub layers: Vec<LayerSummary>,
}

/// The run config fields a user reads first; the rest stays in `--raw config`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One layer of an image.
#[derive(Debug, Serialize)]
pub struct LayerSummary {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
}

/// Reads `source` (I/O: manifests and configs only) and summarises it, or returns the raw bytes asked for.
pub fn inspect(
    session: &Session,
    source: &str,
    raw: Option<RawPart>,
    platform: Option<&str>,
) -> Result<Inspected, Error> {
    let transport = reference::parse_location(source)?;
    let access = session.access()?;
    let read = transport::read_source(&transport, &access, None, false)
        .map_err(|e| Error::from(e).context(format!("cannot read {source}")))?;
    if let Some(wanted @ (RawPart::Sbom | RawPart::Provenance)) = raw {
        return predicate_of(&transport, &read, wanted, platform, &access)
            .map_err(|e| e.context(format!("cannot read the attestation of {source}")));
    }
    let artifact = read.artifact;
    match (&artifact, raw, platform) {
        (Artifact::Index(index), Some(RawPart::Manifest), None) => {
            Ok(Inspected::Raw(index.raw.clone()))
        }
        (Artifact::Index(index), None, None) => Ok(Inspected::Index(index_summary(index)?)),
        _ => image_part(artifact, raw, platform),
    }
}

/// `--platform` as given; else the one image of an attested index (whatever its platform,
/// as for a single image), else this machine's.
fn wanted_platform(artifact: &Artifact, platform: Option<&str>) -> Result<Platform, Error> {
    if let Some(text) = platform {
        return Ok(Platform::parse(text)?);
    }
    Ok(match artifact {
        Artifact::Index(index) => attestation::single_attested_image(index)
            .and_then(Image::platform)
            .unwrap_or_else(Platform::host),
        Artifact::Image(_) => Platform::host(),
    })
}

fn image_part(
    artifact: Artifact,
    raw: Option<RawPart>,
    platform: Option<&str>,
) -> Result<Inspected, Error> {
    let platform = wanted_platform(&artifact, platform)?;
    let image = artifact.into_image(&platform)?;
    Ok(match raw {
        Some(RawPart::Manifest) => Inspected::Raw(image.raw_manifest().to_vec()),
        Some(RawPart::Config) => Inspected::Raw(image.raw_config().to_vec()),
        None | Some(RawPart::Sbom | RawPart::Provenance) => {
            let config = image.config_json()?;
            Inspected::Image(Box::new(ImageSummary {
                digest: image.digest().clone(),
                media_type: image.media_type().to_string(),
                platform: image.platform().map(|p| p.to_string()),
                created: config
                    .get("created")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                config: run_config(config.get("config")),
                annotations: image.annotations().clone(),
                layers: image
                    .layers()
                    .iter()
                    .map(|l| LayerSummary {
                        digest: l.descriptor.digest.clone(),
                        diff_id: l.diff_id.clone(),
                        size: l.descriptor.size,
                        media_type: l.descriptor.media_type.clone(),
                    })
                    .collect(),
            }))
        }
    })
}

fn index_summary(index: &ImageIndex) -> Result<IndexSummary, Error> {
    let attestations = attestation::attached(index)?
        .into_iter()
        .map(|a| AttestationSummary {
            digest: a.manifest.digest().clone(),
            describes: a.describes,
            statements: a
                .manifest
                .layers()
                .iter()
                .map(|l| StatementSummary {
                    predicate_type: l.descriptor.annotations.get(PREDICATE_TYPE).cloned(),
                    digest: l.descriptor.digest.clone(),
                    size: l.descriptor.size,
                    media_type: l.descriptor.media_type.clone(),
                })
                .collect(),
        })
        .collect();
    Ok(IndexSummary {
        digest: index.digest.clone(),
        media_type: index.media_type.clone(),
        manifests: index
            .images
            .iter()
            .map(|i| IndexEntry {
                digest: i.digest().clone(),
                platform: i.platform().map(|p| p.to_string()),
                media_type: i.media_type().to_string(),
            })
            .collect(),
        attestations,
    })
}

/// The predicate of the image's attestation of `wanted`'s type (I/O: fetches that one statement),
/// pretty-printed; the statement must name the image as its subject.
fn predicate_of(
    source: &Location,
    read: &Source,
    wanted: RawPart,
    platform: Option<&str>,
    access: &Access<'_>,
) -> Result<Inspected, Error> {
    let (predicate_type, flag) = match wanted {
        RawPart::Sbom => (SPDX_DOCUMENT, "--attest sbom"),
        _ => (SLSA_PROVENANCE_V1, "--attest provenance"),
    };
    let none = |what: String| {
        Error::usage(
            what,
            format!(
                "build the image with `stowage build {flag}` (or `[attest]` in the spec) to attach one"
            ),
        )
    };
    let Artifact::Index(index) = &read.artifact else {
        return Err(none("it is a single image, with no attestations".into()));
    };
    let platform = wanted_platform(&read.artifact, platform)?;
    let image = read.artifact.clone().into_image(&platform)?;
    let attached = attestation::attached(index)?;
    let Some(manifest) = attached
        .iter()
        .find(|a| a.describes.as_ref() == Some(image.digest()))
    else {
        return Err(none(format!(
            "no attestation manifest describes {}",
            image.digest()
        )));
    };
    let Some(layer) = manifest.manifest.layers().iter().find(|l| {
        l.descriptor
            .annotations
            .get(PREDICATE_TYPE)
            .map(String::as_str)
            == Some(predicate_type)
    }) else {
        return Err(none(format!(
            "attestation manifest {} holds no {predicate_type} statement",
            manifest.manifest.digest()
        )));
    };
    let statements = Image::clone(manifest.manifest);
    transport::fetch_layers(source, &statements, read.origin.as_ref(), access)?;
    let bytes = access
        .store
        .read_small(&layer.descriptor.digest, MAX_STATEMENT_BYTES)?;
    let invalid = |problem: String| ImageError::Invalid {
        what: format!("in-toto statement {}", layer.descriptor.digest),
        problem,
    };
    let statement: Value = image::parse_json("in-toto statement", &bytes)?;
    if statement.get("predicateType").and_then(Value::as_str) != Some(predicate_type) {
        return Err(invalid(format!("its predicateType is not {predicate_type}")).into());
    }
    let names_image = statement
        .get("subject")
        .and_then(Value::as_array)
        .is_some_and(|subjects| {
            subjects.iter().any(|s| {
                s.pointer("/digest/sha256").and_then(Value::as_str) == Some(image.digest().hex())
            })
        });
    if !names_image {
        return Err(invalid(format!("its subject does not name {}", image.digest())).into());
    }
    let predicate = statement.get("predicate").cloned().unwrap_or(Value::Null);
    let mut text = serde_json::to_vec_pretty(&predicate).unwrap_or_default();
    text.push(b'\n');
    Ok(Inspected::Raw(text))
}

/// The run config's well-known fields, read leniently: a field of another type is left out.
fn run_config(config: Option<&Value>) -> RunConfig {
    let Some(config) = config else {
        return RunConfig::default();
    };
    let strings = |key: &str| -> Option<Vec<String>> {
        config.get(key)?.as_array().map(|items| {
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect()
        })
    };
    let text = |key: &str| config.get(key).and_then(Value::as_str).map(str::to_string);
    let keys = |key: &str| -> Vec<String> {
        config
            .get(key)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    RunConfig {
        env: strings("Env").unwrap_or_default(),
        entrypoint: strings("Entrypoint"),
        cmd: strings("Cmd"),
        working_dir: text("WorkingDir"),
        user: text("User"),
        exposed_ports: keys("ExposedPorts"),
        labels: config
            .get("Labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
