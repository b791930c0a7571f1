//! `stowage inspect`: an image's summary, or the exact bytes of its manifest or config.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::Session;
use crate::digest::Digest;
use crate::error::Error;
use crate::image::{Artifact, ImageIndex, Platform};
use crate::reference;
use crate::transport;

/// Which exact bytes `--raw` prints.
#[derive(Debug, Clone, Copy)]
pub enum RawPart {
    Manifest,
    Config,
}

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

/// An index: its digest and its images by platform.
#[derive(Debug, Serialize)]
pub struct IndexSummary {
    pub digest: Digest,
    pub media_type: String,
    pub manifests: Vec<IndexEntry>,
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
    let transport = reference::parse_transport(source)?;
    let context = session.context()?;
    let artifact = transport::read_source(&transport, &context, None, false)
        .map_err(|e| Error::from(e).context(format!("cannot read {source}")))?
        .artifact;
    match (&artifact, raw, platform) {
        (Artifact::Index(index), Some(RawPart::Manifest), None) => {
            Ok(Inspected::Raw(index.raw.clone()))
        }
        (Artifact::Index(index), None, None) => Ok(Inspected::Index(index_summary(index))),
        _ => image_part(artifact, raw, platform),
    }
}

fn image_part(
    artifact: Artifact,
    raw: Option<RawPart>,
    platform: Option<&str>,
) -> Result<Inspected, Error> {
    let platform = match platform {
        Some(text) => Platform::parse(text)?,
        None => Platform::host(),
    };
    let image = artifact.into_image(&platform)?;
    Ok(match raw {
        Some(RawPart::Manifest) => Inspected::Raw(image.raw_manifest().to_vec()),
        Some(RawPart::Config) => Inspected::Raw(image.raw_config().to_vec()),
        None => {
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

fn index_summary(index: &ImageIndex) -> IndexSummary {
    IndexSummary {
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
    }
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
