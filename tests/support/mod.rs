//! Test peers beyond `common`: a stand-in for Docker Hub's repository API
//! (export tests), and real registries with injected faults (`faults`). Kept
//! apart from `tests/common`, which other test files share.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod faults;
pub mod hub;
