//! What `stowage.toml` says, before any check: the serde shapes of its tables,
//! each value with its span so that the validator can point at it.
//!
//! Every key is optional here and `deny_unknown_fields` rejects misspellings;
//! whether a key is required and what its value may be is the validator's job,
//! so that those errors carry stowage's own messages and hints.

use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use toml::Spanned;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawSpec {
    pub(super) base: Option<Spanned<String>>,
    pub(super) image: Option<Spanned<String>>,
    pub(super) platform: Option<Spanned<String>>,
    pub(super) app: Option<Spanned<RawApp>>,
    pub(super) files: Option<Vec<Spanned<RawFile>>>,
    pub(super) env: Option<OrderedTable>,
    pub(super) secrets: Option<RawSecrets>,
    pub(super) labels: Option<OrderedTable>,
    pub(super) attest: Option<RawAttest>,
}

/// `[app]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawApp {
    pub(super) library: Option<Spanned<RawMount>>,
    pub(super) workspace: Option<Spanned<RawMount>>,
    pub(super) exclude: Option<Vec<Spanned<String>>>,
    pub(super) entrypoint: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) command: Option<Spanned<Vec<Spanned<String>>>>,
    /// Values, not strings: a bare `8888` is accepted as well as `"8888/tcp"`.
    pub(super) ports: Option<Vec<Spanned<toml::Value>>>,
    pub(super) workdir: Option<Spanned<String>>,
    pub(super) user: Option<Spanned<String>>,
}

/// `[app] library` or `[app] workspace`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawMount {
    pub(super) source: Option<Spanned<String>>,
    pub(super) target: Option<Spanned<String>>,
    pub(super) owner: Option<Spanned<String>>,
    /// The library only: rewrite the install prefix in the layer (default true).
    pub(super) relocate: Option<Spanned<bool>>,
}

/// One `[[files]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawFile {
    pub(super) source: Option<Spanned<String>>,
    pub(super) target: Option<Spanned<String>>,
    /// A value, not a string: TOML's own octal integer (`0o755`) is accepted too.
    pub(super) mode: Option<Spanned<toml::Value>>,
    pub(super) owner: Option<Spanned<String>>,
}

/// `[secrets]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawSecrets {
    pub(super) names: Option<Vec<Spanned<String>>>,
    pub(super) allow: Option<Vec<Spanned<String>>>,
}

/// `[attest]`: which attestations the image carries.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawAttest {
    pub(super) sbom: Option<bool>,
    pub(super) provenance: Option<bool>,
}

/// A free-form table kept in file order, with the position of every key and value.
///
/// `toml::Table` would sort the keys and drop their spans, but `[env]` is
/// applied in file order (an entry may expand the ones above it) and a bad key
/// must be pointed at.
pub(super) struct OrderedTable(pub(super) Vec<(Spanned<String>, Spanned<toml::Value>)>);

impl<'de> Deserialize<'de> for OrderedTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = OrderedTable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedTable, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(OrderedTable(entries))
            }
        }
        d.deserialize_map(OrderedVisitor)
    }
}
