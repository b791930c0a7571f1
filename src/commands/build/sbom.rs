//! What a build's SBOM says (`--sbom`, and the SBOM attestation): the image, its base, and each package with the layer that holds its files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::assemble::BuiltImage;
use crate::attest::{SbomBase, SbomFormat, SbomInput, SbomPackage};
use crate::digest::Digest;
use crate::layer::GroupKey;
use crate::plan::BuildPlan;

/// `--sbom FILE --sbom-format F`.
#[derive(Debug, Clone)]
pub struct SbomRequest {
    pub path: PathBuf,
    pub format: SbomFormat,
}

/// What the SBOM says of `built`: the image, its base, and each package with the layer that holds its files.
pub fn sbom_input(plan: &BuildPlan, built: &BuiltImage) -> SbomInput {
    let inventory = plan.inventory();
    let mut layer_of: BTreeMap<usize, Digest> = BTreeMap::new();
    for (index, layer_plan) in plan.library_layers() {
        let Some(layer) = built.layers.get(index) else {
            continue;
        };
        for part in &layer_plan.parts {
            if let GroupKey::Package(package) = part.key {
                layer_of.insert(package, layer.digest.clone());
            }
        }
    }
    // An extension shipped inside a Python package is in that package's layer.
    let listed: Vec<(usize, Digest)> = inventory
        .packages
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let layer = layer_of.get(&p.shipped_by.unwrap_or(i))?;
            Some((i, layer.clone()))
        })
        .collect();
    let position: BTreeMap<usize, usize> = listed
        .iter()
        .enumerate()
        .map(|(pos, (i, _))| (*i, pos))
        .collect();
    let packages = listed
        .into_iter()
        .filter_map(|(i, layer)| {
            let p = inventory.packages.get(i)?;
            Some(SbomPackage {
                ecosystem: p.ecosystem.name().to_string(),
                name: p.name.clone(),
                version: p.version.clone(),
                license: p.license.clone(),
                license_concluded: p.license_concluded.clone(),
                purl: p.purl.clone(),
                layer,
                shipped_by: p.shipped_by.and_then(|s| position.get(&s).copied()),
            })
        })
        .collect();
    SbomInput {
        image_name: built
            .name
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "stowage-image".into()),
        image_digest: built.image.digest().clone(),
        base: built.base_digest.as_ref().map(|digest| SbomBase {
            name: plan.base_text.clone(),
            digest: Some(digest.clone()),
        }),
        created: plan.created.clone(),
        tool: format!("stowage-{}", env!("CARGO_PKG_VERSION")),
        packages,
    }
}
