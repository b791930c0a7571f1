//! What an image says about itself: the SBOM (SPDX 2.3, CycloneDX 1.6) of its packages, SLSA provenance, and the in-toto statements that carry them.
//!
//! Pure functions of typed input: the same input gives the same bytes, so
//! an SBOM, a provenance and a statement are as reproducible as the image
//! they describe. Not for: finding packages (that is `inventory`), the
//! attestation manifest and index (values in `image::attestation`), or
//! writing files (the build command does, atomically).

pub mod intoto;
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
