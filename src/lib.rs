//! stowage: export an application to an OCI image without a container daemon.
//!
//! Data flows one way: `spec` → `plan` → `layer` → `image` → sinks in
//! `transport` and `registry`, with `store` holding every blob, `commands`
//! running one use case each, and `cli` parsing and printing.
//! `ARCHITECTURE.md` at the project root walks through the map.
pub mod atomic;
pub mod attest;
pub mod check;
pub mod cli;
pub mod commands;
pub mod digest;
pub mod error;
pub mod exports;
pub mod gzip;
pub mod image;
pub mod interrupt;
pub mod inventory;
pub mod layer;
pub mod plan;
pub mod policy;
pub mod reference;
pub mod registry;
pub mod scan;
pub mod spec;
pub mod store;
pub mod tar_read;
pub mod transport;
pub mod units;

pub use error::Error;
