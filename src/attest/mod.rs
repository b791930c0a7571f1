//! What an image says about itself: the SBOM (SPDX 2.3, CycloneDX 1.6) of its packages, SLSA provenance, the in-toto statements that carry them, and cosign-format signatures with the keys that make and check them.
//!
//! Pure functions of typed input: the same input gives the same bytes, so
//! an SBOM, a provenance, a statement or a signature is as reproducible as
//! the image it describes. Not for: finding packages (that is `inventory`),
//! the attestation manifest and index (values in `image::attestation`),
//! writing files or talking to registries (the commands do, atomically and
//! through `registry`).

pub mod cosign;
pub mod intoto;
pub mod keys;
pub mod provenance;
pub mod sbom;

pub use sbom::{SbomBase, SbomFormat, SbomInput, SbomPackage, render_sbom};

/// Which attestations a build attaches (`--attest`, `[attest]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attestations {
    /// The SPDX document of the image's packages.
    pub sbom: bool,
    /// SLSA provenance v1.
    pub provenance: bool,
}

impl Attestations {
    /// Whether any is asked for: without one the image is written as it always was.
    pub fn any(self) -> bool {
        self.sbom || self.provenance
    }

    /// Both sets together.
    pub fn union(self, other: Attestations) -> Attestations {
        Attestations {
            sbom: self.sbom || other.sbom,
            provenance: self.provenance || other.provenance,
        }
    }
}
