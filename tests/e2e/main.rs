//! The end-to-end tests: stowage run as a command against the real tools
//! and peers (dockerd, podman, skopeo, umoci, docker-registry, …) that
//! `scripts/test.sh` installs and starts. One test binary, so the shared
//! rig in `rig/` is compiled once; each module is one area of the tests.
//!
//! `tests/fuzz_regressions.rs` stays a binary of its own: it calls the
//! library, not the command, and needs none of the rig.

mod rig;

mod attest;
mod bad_input;
mod base;
mod bytecode;
mod cache;
mod crash;
mod delete_scope;
mod docker;
mod dry_run;
mod example;
mod exports;
mod faults;
mod files_only;
mod gigabyte;
mod go_tar;
mod hostile;
mod interrupts;
mod journal;
mod layout;
mod library;
mod library_fixtures;
mod licenses;
mod loopback;
mod mounts;
mod noop;
mod output;
mod owners;
mod pipes;
mod podman;
mod policy;
mod progress;
mod prune;
mod public_exports;
mod registry;
mod registry_auth;
mod registry_failures;
mod relocate;
mod reproducible;
mod scale;
mod secrets;
mod secrets_never_printed;
mod shared_pushes;
mod sign;
mod speed;
mod start_check;
mod start_check_layers;
mod stowage_image;
mod umoci_base;
