//! What a finished build produced: the built image, what the sinks were given, and what each destination got; made once, at the end of the chain.

use super::assemble::BuiltImage;
use crate::commands::{SinkDefaults, reference_line};
use crate::digest::Digest;
use crate::image::{Artifact, ImageIndex};
use crate::plan::BuildPlan;
use crate::transport::Written;

/// What a finished build produced.
#[derive(Debug)]
pub struct BuildOutcome {
    /// The image, its added layers and what its checks found.
    pub built: BuiltImage,
    /// What the sinks were given: with `--attest` or `[attest]`, the OCI
    /// index of the image and its attestation manifest; else the image.
    pub artifact: Artifact,
    /// Each destination, as the sinks wrote it.
    pub written: Vec<Written>,
}

impl BuildOutcome {
    /// What a tag of the export names: the attested index, else the image's manifest.
    pub fn digest(&self) -> &Digest {
        self.artifact.digest()
    }

    /// The index the sinks got, when the image was attested.
    pub fn attested(&self) -> Option<&ImageIndex> {
        match &self.artifact {
            Artifact::Index(index) => Some(index),
            Artifact::Image(_) => None,
        }
    }

    /// The line for stdout: where the image went, with its digest (`commands::reference_line`).
    pub fn reference_line(&self, plan: &BuildPlan) -> String {
        let defaults = SinkDefaults {
            tag: plan.default_tag(),
            reference: plan.default_reference.as_ref(),
        };
        reference_line(&plan.destinations, self.digest(), &defaults)
    }
}
