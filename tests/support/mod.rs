//! Test support beyond `common`: real registries with injected faults (see `faults`).

pub mod faults;
