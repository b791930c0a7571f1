//! Shared helpers for the end-to-end tests, a file for each job:
//! `environment` (CI, root, tools on PATH, the rig's variables), `tools`
//! (docker, podman, skopeo and their readiness), `sandbox` (a test's folder
//! and the stowage command), `fixtures` (the sample app, trees, hand-made
//! bases), `readers` (independent readers of layouts, archives and layer
//! tars, so assertions do not trust stowage to describe its own output),
//! and the servers: registries, the token server, proxies, the Docker Hub
//! stand-in, and real app libraries. Every test module takes them all
//! with `use crate::rig::*;`.
//!
//! The rig is started by `scripts/test.sh` (or `scripts/test-env.sh start`),
//! which writes `$STOWAGE_TEST_DIR/env`. A test whose tool is missing fails
//! under `CI=true` and prints a loud `SKIPPED:` line otherwise.

/// The rig's PostgreSQL server: a database per test, for the shared journal.
pub mod database;
/// The little HTTP the rig's own servers and proxies speak.
pub mod http;
/// A stand-in for Docker Hub's repository API, for the export tests.
pub mod hub;
/// Real app libraries (PyPI venvs and --target folders, node_modules, a
/// conda env, an R library), built once per run where they are downloaded.
pub mod libraries;
/// The proxies between stowage and a registry: faults and byte counts.
pub mod proxy;
/// A base of the host's own Python, for running Python apps under docker.
pub mod python_base;
/// Real registries (anonymous, htpasswd, token auth, TLS), credentials, and
/// content for the registry tests.
pub mod registry;
/// Test secrets shaped like real ones: random bodies, valid checksums.
pub mod secret_tokens;
/// The test token server, which signs the registry's tokens.
pub mod token;

/// CI, root, tool discovery and the rig's variables.
mod environment;
/// What the tests build from: the sample app, trees, hand-made bases.
mod fixtures;
/// Peak memory and CPU time of a stowage run, from `wait4`.
mod measure;
/// Independent readers of layouts, archives and layer tars.
mod readers;
/// The per-test folder and the stowage command.
mod sandbox;
/// docker, podman and skopeo, and their readiness.
mod tools;

pub use environment::*;
pub use fixtures::*;
pub use measure::*;
pub use readers::*;
pub use sandbox::*;
pub use tools::*;
