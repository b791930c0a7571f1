//! What a policy file says, before any check: the serde shapes of its
//! tables, each value with its span so that errors point at it.
//!
//! `deny_unknown_fields` rejects misspelt keys; what a value may be is
//! checked in `parse`, with the policy's own messages and hints.

use serde::Deserialize;
use toml::Spanned;

/// A list of strings, each with its span.
pub(super) type Texts = Option<Spanned<Vec<Spanned<String>>>>;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPolicy {
    pub(super) licenses: Option<RawLicenses>,
    pub(super) packages: Option<RawPackages>,
    pub(super) files: Option<RawFiles>,
    pub(super) limits: Option<RawLimits>,
    pub(super) destinations: Option<RawDestinations>,
}

/// `[licenses]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawLicenses {
    pub(super) deny: Texts,
    pub(super) allow: Texts,
    pub(super) unknown: Option<Spanned<String>>,
}

/// `[packages]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPackages {
    pub(super) deny: Texts,
    pub(super) allow: Texts,
    pub(super) deny_channels: Texts,
}

/// `[files]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawFiles {
    pub(super) deny: Texts,
}

/// `[limits]`: sizes as `"20GiB"` or a number of bytes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawLimits {
    pub(super) image: Option<Spanned<toml::Value>>,
    pub(super) layer: Option<Spanned<toml::Value>>,
    pub(super) workspace: Option<Spanned<toml::Value>>,
    pub(super) files: Option<Spanned<toml::Value>>,
}

/// `[destinations]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawDestinations {
    pub(super) repositories: Texts,
    pub(super) tag: Option<Spanned<String>>,
    pub(super) overwrite: Option<Spanned<String>>,
}
