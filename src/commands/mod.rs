//! The use cases, one per file: each opens what it needs once and returns an outcome for `cli` to print.
pub mod build;
