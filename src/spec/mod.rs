//! Parses and validates `stowage.toml` into typed values, with the file,
//! line and column of the problem in every error.
//!
//! The result, [`Spec`], is what the file says, checked: base and destination
//! as transports, the platform by the one platform grammar, paths in the image
//! normalised, ports and modes parsed, owners as ids, sources resolved to
//! absolute paths that exist. It is not the build plan: it does not fetch or
//! open the base image, resolve a relative local base path, expand `${VAR}` in
//! `[env]` (that needs the base's environment), read the sources' contents or
//! scan them for secrets; `plan` and the modules after it do that. It does
//! scan its own values (`[env]`, `[labels]`, `entrypoint`, `command`) and
//! keeps what it finds for the build to refuse or allow.
//!
//! The folder: `raw` is what serde reads (every value with its span),
//! `validate` turns it into a `Spec` section by section, `entries` checks what
//! is copied into the image, `fields` holds the grammars of single values, and
//! `starter` the file `stowage init` writes, `values` the secret scan of the
//! values bound for the image's config.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::attest::Attestations;
use crate::image::Platform;
use crate::reference::Location;

mod entries;
mod fields;
mod raw;
mod starter;
#[cfg(test)]
mod tests;
mod validate;
mod validator;
mod values;

pub use starter::{STARTER_SPEC, write_starter_spec};
pub use values::{ValueFinding, is_value_key};

/// The spec file's name in a project folder.
pub const SPEC_FILE_NAME: &str = "stowage.toml";

/// A spec error: which file, where in it, what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub struct SpecError {
    path: PathBuf,
    position: Option<(usize, usize)>,
    message: String,
    hint: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.path.display(), self.message)
            }
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl SpecError {
    /// What to do about it.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// 1-based line and column in the spec file, when the error has a place in it.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        self.position
    }

    /// The spec file as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is wrong, without the position prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An error the build found later about the entry at `position` (line, column) of the spec file.
    pub fn at(path: &Path, position: (usize, usize), message: String, hint: String) -> SpecError {
        SpecError {
            path: path.to_path_buf(),
            position: Some(position),
            message,
            hint: Some(hint),
        }
    }

    /// An error about a whole file (it cannot be read), with what to do.
    pub fn whole_file(path: &Path, message: String, hint: String) -> SpecError {
        SpecError::without_position(path, message, Some(hint))
    }

    fn without_position(path: &Path, message: String, hint: Option<String>) -> SpecError {
        SpecError {
            path: path.to_path_buf(),
            position: None,
            message,
            hint,
        }
    }
}

/// The owner (uid and gid) of the files a layer adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
}

impl Owner {
    const ROOT: Owner = Owner { uid: 0, gid: 0 };
}

/// `[app] user` given by name (`nobody`, `jovyan:users`): the owner of the
/// added files once the base's `/etc/passwd` and `/etc/group` say its ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerName {
    pub user: String,
    /// The group after `:`, a name or a number; None: the user's own group.
    pub group: Option<String>,
    /// Line and column of the `user` value, where a name the base lacks is reported.
    pub position: (usize, usize),
}

/// A folder copied into the image (`library` or `workspace`).
#[derive(Debug, Clone)]
pub struct Mount {
    /// Absolute path of the folder on this machine.
    pub source: PathBuf,
    /// Normalised absolute path in the image.
    pub target: String,
    /// Root until `owner_name` is resolved (`Spec::with_owners`).
    pub owner: Owner,
    /// The owner given by name; None when `owner` is numeric.
    pub owner_name: Option<OwnerName>,
    /// The library: rewrite a different install prefix into `target` while
    /// writing the layer (`relocate = false` makes a mismatch an error).
    pub relocate: bool,
    /// Line and column of the entry in the spec file, for errors found later.
    pub position: (usize, usize),
}

/// A single extra file copied into the image.
#[derive(Debug, Clone)]
pub struct ExtraFile {
    /// Absolute path of the file on this machine.
    pub source: PathBuf,
    /// Normalised absolute path in the image.
    pub target: String,
    /// Permission bits to set instead of the file's own.
    pub mode: Option<u32>,
    /// Root until `owner_name` is resolved (`Spec::with_owners`).
    pub owner: Owner,
    /// The owner given by name; None when `owner` is numeric.
    pub owner_name: Option<OwnerName>,
}

/// A validated spec file.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The spec file as given.
    pub path: PathBuf,
    /// The base image; `Location::Scratch` when absent. A relative local
    /// path stays as written (the plan resolves it against the spec's folder).
    pub base: Location,
    /// `base` as written, for export records.
    pub base_text: String,
    /// The default destination when no `-o` is given.
    pub image: Option<Location>,
    /// Checked by the one platform grammar, `image::Platform::parse`.
    pub platform: Option<Platform>,
    /// The app library; None for an image of a base plus `[[files]]` (and a workspace).
    pub library: Option<Mount>,
    pub workspace: Option<Mount>,
    /// `.dockerignore`-style patterns, as written, in order.
    pub exclude: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// Normalised `PORT/PROTO`, e.g. "8888/tcp".
    pub ports: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub files: Vec<ExtraFile>,
    /// In file order, values unexpanded.
    pub env: Vec<(String, String)>,
    pub secret_names: Vec<String>,
    /// `[secrets] allow`: normalised paths in the image the secret scan lets
    /// through, and keys of values (`env.NAME`) meant to be public.
    pub secret_allow: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Values bound for the image's config that look like secrets; the build
    /// refuses them unless allowed (`Spec::check_values`).
    pub value_findings: Vec<ValueFinding>,
    /// `[attest]`: the attestations the image carries (`--attest` adds to them).
    pub attest: Attestations,
}

impl Spec {
    /// The owners given by name, which the base must resolve; empty when all are numeric.
    pub fn owner_names(&self) -> Vec<&OwnerName> {
        let mounts = self.library.iter().chain(&self.workspace);
        mounts
            .map(|m| &m.owner_name)
            .chain(self.files.iter().map(|f| &f.owner_name))
            .flatten()
            .collect()
    }

    /// This spec with every owner given by name replaced by the ids `resolve` gives it.
    pub fn with_owners(
        mut self,
        resolve: impl Fn(&OwnerName) -> Result<Owner, SpecError>,
    ) -> Result<Spec, SpecError> {
        let mounts = self.library.iter_mut().chain(&mut self.workspace);
        for (owner, name) in mounts.map(|m| (&mut m.owner, &mut m.owner_name)).chain(
            self.files
                .iter_mut()
                .map(|f| (&mut f.owner, &mut f.owner_name)),
        ) {
            if let Some(named) = name.take() {
                *owner = resolve(&named)?;
            }
        }
        Ok(self)
    }
}

/// Reads and validates the spec file (I/O: reads it and checks that sources exist).
pub fn read_spec(path: &Path) -> Result<Spec, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let (message, hint) = match e.kind() {
            std::io::ErrorKind::NotFound => (
                "spec file not found".to_string(),
                format!(
                    "run `stowage init` to write a starter {SPEC_FILE_NAME}, or point at yours with `-f PATH`"
                ),
            ),
            std::io::ErrorKind::IsADirectory => (
                "this is a folder, not a spec file".to_string(),
                format!(
                    "pass the file itself, e.g. `-f {}`",
                    path.join(SPEC_FILE_NAME).display()
                ),
            ),
            std::io::ErrorKind::InvalidData => (
                "the spec file is not valid UTF-8".to_string(),
                "save it as UTF-8 text".to_string(),
            ),
            _ => (
                format!("cannot read the spec file: {e}"),
                "check that the file is readable, or pass another with `-f PATH`".to_string(),
            ),
        };
        SpecError::without_position(path, message, Some(hint))
    })?;
    parse_spec(&text, path)
}

/// An error at byte `span` of another TOML file the operator or user
/// writes (the export policy), made as the spec's own errors are: the file,
/// line and column, what is wrong and what to do.
pub fn toml_file_error(
    text: &str,
    path: &Path,
    span: std::ops::Range<usize>,
    message: String,
    hint: impl Into<String>,
) -> SpecError {
    validator::Validator { text, path }.error(span, message, hint)
}

/// A TOML or serde error (syntax, unknown key, wrong type) in another TOML
/// file, reworded with a hint as the spec's own are.
pub fn toml_syntax_error(text: &str, path: &Path, error: &toml::de::Error) -> SpecError {
    validator::Validator { text, path }.toml_error(error)
}

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    validator::line_col(text, offset).0
}

/// Parses and validates spec text; `path` is used for messages and to resolve relative sources (against its parent folder); checks that sources exist.
pub fn parse_spec(text: &str, path: &Path) -> Result<Spec, SpecError> {
    let validator = validator::Validator { text, path };
    let raw: raw::RawSpec = toml::from_str(text).map_err(|e| validator.toml_error(&e))?;
    validator.validate(raw)
}
