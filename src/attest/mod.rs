//! What an image says about itself: the SBOM (SPDX 2.3, CycloneDX 1.6) of its packages; later provenance and signatures.
//!
//! Pure functions of typed input: the same input gives the same bytes, so
//! an SBOM is as reproducible as the image it describes. Not for: finding
//! packages (that is `inventory`) or writing files (the build command does,
//! atomically).

pub mod sbom;

pub use sbom::{SbomBase, SbomFormat, SbomInput, SbomPackage, render_sbom};
