//! Test peers for the secret-scan and export-record tests: a real
//! `docker-registry` with deletion enabled, and a stand-in for Docker Hub's
//! repository API. Kept apart from `tests/common`, which other test files share.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod hub;
pub mod registry;
