//! A build's attestations: the SBOM and provenance statements, written to the store, and the index that carries them beside the image.
//!
//! Runs after the start check and before any sink sees a byte; without
//! `--attest` or `[attest]` nothing here runs and the image is written alone.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::assemble::BuiltImage;
use super::sbom::sbom_input;
use crate::attest::intoto::{self, SLSA_PROVENANCE_V1, SPDX_DOCUMENT, Subject};
use crate::attest::provenance::{Dependency, ProvenanceInput, provenance};
use crate::attest::{SbomFormat, SbomInput, render_sbom};
use crate::digest::Digest;
use crate::error::Error;
use crate::image::attestation::{StatementBlob, attestation_manifest, attested_index};
use crate::image::{self, ImageIndex};
use crate::layer::{Compression, LayerRole};
use crate::plan::BuildPlan;
use crate::reference::Location;
use crate::store::Store;
use crate::transport::archive::ArchiveError;

/// What the statements call the image: its digest says which image it is
/// (the SBOM's namespace and the subject carry it), a destination would make
/// the index differ from one push to the next.
const ATTESTED_NAME: &str = "stowage-image";

/// The OCI index of the built image and its attestation manifest, every blob in the store (I/O); None when none is asked for.
pub fn attach(
    plan: &BuildPlan,
    built: &BuiltImage,
    store: &Store,
) -> Result<Option<ImageIndex>, Error> {
    if !plan.attest.any() {
        return Ok(None);
    }
    let image = &built.image;
    let platform = image.platform().unwrap_or_else(|| plan.platform.clone());
    // Named by content, never by destination: the index is the same for
    // every tag and repository it is pushed to, and for every run.
    let subject = Subject {
        name: format!(
            "pkg:oci/{ATTESTED_NAME}@sha256%3A{}?platform={}",
            image.digest().hex(),
            platform.to_string().replace('/', "%2F")
        ),
        digest: image.digest().clone(),
    };
    let mut statements = Vec::new();
    if plan.attest.sbom {
        let input = SbomInput {
            image_name: ATTESTED_NAME.into(),
            ..sbom_input(plan, built)
        };
        let document = render_sbom(&input, SbomFormat::Spdx);
        let predicate: Value = image::parse_json("the SBOM document", &document)?;
        statements.push((SPDX_DOCUMENT, predicate));
    }
    if plan.attest.provenance {
        statements.push((
            SLSA_PROVENANCE_V1,
            provenance(&provenance_input(plan, built)?),
        ));
    }
    let mut blobs = Vec::new();
    for (predicate_type, predicate) in statements {
        let bytes = intoto::statement(&subject, predicate_type, &predicate);
        let digest = store.write_bytes(&bytes)?;
        blobs.push(StatementBlob {
            digest,
            size: bytes.len() as u64,
            predicate_type: predicate_type.to_string(),
        });
    }
    let manifest = attestation_manifest(&blobs)?;
    store.write_bytes(manifest.raw_config())?;
    store.write_bytes(manifest.raw_manifest())?;
    let index = attested_index(image, &platform, &manifest)?;
    store.write_bytes(&index.raw)?;
    Ok(Some(index))
}

/// What the provenance says of this build (I/O: hashes the spec file).
fn provenance_input(plan: &BuildPlan, built: &BuiltImage) -> Result<ProvenanceInput, Error> {
    // Read again, not taken from the plan: the provenance names the bytes as they are on disk.
    let spec_bytes = std::fs::read(&plan.spec_path).map_err(|source| ArchiveError::Read {
        path: plan.spec_path.clone(),
        source,
    })?;
    let spec_digest = Digest::of(&spec_bytes);
    let spec_dir = plan.spec_path.parent().unwrap_or(Path::new(""));
    let spec_name = plan
        .spec_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut dependencies = vec![Dependency {
        name: "spec".into(),
        uri: format!("file:{spec_name}"),
        digest: Some(spec_digest.clone()),
        annotations: BTreeMap::new(),
    }];
    if let Some(digest) = &built.base_digest {
        dependencies.push(Dependency {
            name: LayerRole::Base.name().into(),
            uri: base_uri(plan),
            digest: Some(digest.clone()),
            annotations: BTreeMap::from([("ref".to_string(), json!(plan.base_text))]),
        });
    }
    dependencies.extend(source_dependencies(plan, built, spec_dir));
    // The export policy that admitted the image: a published image says which rules it passed.
    if let Some(digest) = plan
        .policy_digest
        .as_deref()
        .and_then(|d| d.parse::<Digest>().ok())
    {
        dependencies.push(Dependency {
            name: "policy".into(),
            uri: format!("urn:stowage:policy:{digest}"),
            digest: Some(digest),
            annotations: BTreeMap::new(),
        });
    }
    Ok(ProvenanceInput {
        version: env!("CARGO_PKG_VERSION").to_string(),
        spec_path: spec_name,
        spec_digest,
        dependencies,
        parameters: parameters(plan),
        time: plan.created.clone(),
    })
}

/// A registry base as a package URL (as BuildKit names it), any other as written in the spec.
fn base_uri(plan: &BuildPlan) -> String {
    match &plan.base {
        Location::Registry(reference) => format!(
            "pkg:docker/{}/{}@{}?platform={}",
            reference.registry,
            reference.repository,
            reference
                .tag
                .clone()
                .or_else(|| reference.digest.clone())
                .unwrap_or_else(|| "latest".into()),
            plan.platform.to_string().replace('/', "%2F")
        ),
        _ => plan.base_text.clone(),
    }
}

/// The library as one input (its folder, target and layers), then each other added layer's sources.
fn source_dependencies(plan: &BuildPlan, built: &BuiltImage, spec_dir: &Path) -> Vec<Dependency> {
    let layer_digest = |index: usize| -> Value {
        built
            .layers
            .get(index)
            .map(|l| json!(l.diff_id))
            .unwrap_or(Value::Null)
    };
    let library_layers: Vec<Value> = plan
        .library_layers()
        .map(|(i, _)| layer_digest(i))
        .collect();
    let mut dependencies: Vec<Dependency> = plan
        .library
        .iter()
        .map(|library| Dependency {
            name: LayerRole::Library.name().into(),
            uri: format!("file:{}", relative_text(&library.source, spec_dir)),
            digest: None,
            annotations: BTreeMap::from([
                ("target".to_string(), json!(library.target)),
                ("layers".to_string(), json!(library_layers)),
                (
                    "packages".to_string(),
                    json!(library.inventory.packages.len()),
                ),
            ]),
        })
        .collect();
    for (index, layer) in plan.layers.iter().enumerate() {
        if layer.role == LayerRole::Library {
            continue;
        }
        for source in &layer.sources {
            dependencies.push(Dependency {
                name: layer.role.name().into(),
                uri: format!("file:{}", relative_text(source, spec_dir)),
                digest: None,
                annotations: BTreeMap::from([("layer".to_string(), layer_digest(index))]),
            });
        }
    }
    dependencies
}

/// `path` relative to the spec's folder when it lies under it, so the provenance does not depend on where the checkout is.
fn relative_text(path: &Path, spec_dir: &Path) -> String {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let spec_dir = if spec_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        spec_dir
    };
    let (path_abs, dir_abs) = (absolute(path), absolute(spec_dir));
    match path_abs.strip_prefix(&dir_abs) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path_abs.display().to_string(),
    }
}

/// The settings that shaped the image; destinations, secrets and credentials are left out.
fn parameters(plan: &BuildPlan) -> BTreeMap<String, Value> {
    let mut attest = Vec::new();
    if plan.attest.sbom {
        attest.push("sbom");
    }
    if plan.attest.provenance {
        attest.push("provenance");
    }
    BTreeMap::from([
        ("platform".to_string(), json!(plan.platform.to_string())),
        ("format".to_string(), json!("oci")),
        (
            "compression".to_string(),
            json!(match plan.compression {
                Compression::Gzip => "gzip",
                Compression::Zstd => "zstd",
            }),
        ),
        ("keepBaseRemote".to_string(), json!(plan.keep_base_remote)),
        ("startCheck".to_string(), json!(plan.start_check)),
        ("allowSecrets".to_string(), json!(plan.allowed_secrets)),
        (
            "libraryLayers".to_string(),
            json!(plan.library_layers().count()),
        ),
        ("created".to_string(), json!(plan.created)),
        ("attest".to_string(), json!(attest)),
    ])
}
