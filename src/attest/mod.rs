//! What an image says about itself: the SBOM (SPDX 2.3, CycloneDX 1.6) of its packages, and cosign-format signatures with the keys that make and check them.
//!
//! Pure functions of typed input: the same input gives the same bytes, so
//! an SBOM or a signature is as reproducible as the image it describes. Not
//! for: finding packages (that is `inventory`), writing files or talking to
//! registries (the commands do, atomically and through `registry`).

pub mod cosign;
pub mod keys;
pub mod sbom;

pub use sbom::{SbomBase, SbomFormat, SbomInput, SbomPackage, render_sbom};
