//! stowage: export an application to an OCI image without a container daemon.
//!
//! Data flows one way: `spec` → `build` (plan, `layer`s) → `image` → sinks in
//! `archive`, with `store` holding every blob and `copy` joining any source
//! to any sink.
pub mod archive;
pub mod atomic;
pub mod build;
pub mod cli;
pub mod copy;
pub mod digest;
pub mod error;
pub mod exports;
pub mod gzip;
pub mod hub;
pub mod image;
pub mod layer;
pub mod reference;
pub mod registry;
pub mod scan;
pub mod spec;
pub mod store;

pub use error::Error;
