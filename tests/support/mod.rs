//! Test peers beyond `common`: a real `docker-registry` with deletion enabled
//! and a stand-in for Docker Hub's repository API (secret-scan and export
//! tests), and real registries with injected faults (`faults`). Kept apart
//! from `tests/common`, which other test files share.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod faults;
pub mod hub;
pub mod registry;
