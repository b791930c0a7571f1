//! Reads and validates `stowage.toml`, the spec that says what goes into an exported image, with file positions in every error.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::image::Platform;
use crate::reference::{self, Transport};
use crate::scan::is_builtin_secret_name;

mod raw;
mod starter;
#[cfg(test)]
mod tests;

use raw::{RawFile, RawMount, RawSpec};
pub use starter::{STARTER_SPEC, write_starter_spec};

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

/// A folder copied into the image (`library` or `workspace`).
#[derive(Debug, Clone)]
pub struct Mount {
    /// Absolute path of the folder on this machine.
    pub source: PathBuf,
    /// Normalised absolute path in the image.
    pub target: String,
    pub owner: Owner,
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
    pub owner: Owner,
}

/// A validated spec file.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The spec file as given.
    pub path: PathBuf,
    /// The base image; `Transport::Scratch` when absent. A relative local
    /// path stays as written (the plan resolves it against the spec's folder).
    pub base: Transport,
    /// `base` as written, for export records.
    pub base_text: String,
    /// The default destination when no `-o` is given.
    pub image: Option<Transport>,
    /// Checked by the one platform grammar, `image::Platform::parse`.
    pub platform: Option<Platform>,
    pub library: Mount,
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
    /// `[secrets] allow`: normalised paths in the image the secret scan lets through.
    pub secret_allow: Vec<String>,
    pub labels: BTreeMap<String, String>,
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

/// Parses and validates spec text; `path` is used for messages and to resolve relative sources (against its parent folder); checks that sources exist.
pub fn parse_spec(text: &str, path: &Path) -> Result<Spec, SpecError> {
    let cx = Cx { text, path };
    let raw: RawSpec = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;
    cx.validate(raw)
}

/// The text being validated, for turning spans into positions.
struct Cx<'a> {
    text: &'a str,
    path: &'a Path,
}

/// The owner of entries that give no `owner` of their own, from `[app] user`.
enum DefaultOwner<'a> {
    Id(Owner),
    /// `user` names a user, whose ids only the image's /etc/passwd knows.
    NamedUser(&'a Spanned<String>),
}

/// Which folder entry a mount is, for messages.
#[derive(Clone, Copy)]
enum MountKind {
    Library,
    Workspace,
}

impl MountKind {
    fn name(self) -> &'static str {
        match self {
            MountKind::Library => "library",
            MountKind::Workspace => "workspace",
        }
    }
}

impl Cx<'_> {
    fn error(&self, span: Range<usize>, message: String, hint: impl Into<String>) -> SpecError {
        SpecError {
            path: self.path.to_path_buf(),
            position: Some(line_col(self.text, span.start)),
            message,
            hint: Some(hint.into()),
        }
    }

    fn toml_error(&self, e: &toml::de::Error) -> SpecError {
        let mut message = e.message().trim().to_string();
        let hint = if let Some(rest) = message.strip_prefix("unknown field ") {
            // serde lists the valid keys in the message; they belong in the hint.
            let (key, valid) = match rest.split_once(", expected ") {
                Some((key, valid)) => (key, valid.strip_prefix("one of ").unwrap_or(valid)),
                None => (rest.split(',').next().unwrap_or(rest), ""),
            };
            let hint = if valid.is_empty() {
                "this table takes no keys; remove it".to_string()
            } else {
                format!("valid keys here: {valid}")
            };
            message = format!("unknown key {key}");
            hint
        } else if message.starts_with("invalid type") {
            if message.ends_with("expected a string") {
                "write a string in double quotes, e.g. \"value\"".to_string()
            } else if message.ends_with("expected a sequence") {
                "write a list in brackets, e.g. [\"a\", \"b\"]; extra files are `[[files]]` tables"
                    .to_string()
            } else if message.ends_with("expected a table") {
                "write a table: `key = { source = \"…\", target = \"…\" }` or a `[section]`"
                    .to_string()
            } else {
                "compare with the commented starter written by `stowage init`".to_string()
            }
        } else if message.starts_with("duplicate key") {
            "each key may appear only once in a table; remove one".to_string()
        } else {
            "fix the TOML syntax here (see https://toml.io)".to_string()
        };
        SpecError {
            path: self.path.to_path_buf(),
            position: e.span().map(|s| line_col(self.text, s.start)),
            message,
            hint: Some(hint),
        }
    }

    fn validate(&self, raw: RawSpec) -> Result<Spec, SpecError> {
        let (base, base_text) = match raw.base {
            Some(b) => (self.check_location(&b, "base")?, b.into_inner()),
            None => (Transport::Scratch, "scratch".to_string()),
        };
        let image = match raw.image {
            Some(i) => Some(self.check_location(&i, "image")?),
            None => None,
        };
        let platform = match raw.platform {
            Some(p) => Some(self.check_platform(&p)?),
            None => None,
        };

        let Some(app) = raw.app else {
            return Err(self.error(
                0..0,
                "missing [app] table".to_string(),
                "add `[app]` with `library = { source = \"library\", target = \"/opt/app\" }`",
            ));
        };
        let app_span = app.span();
        let app = app.into_inner();

        let default_owner = match &app.user {
            Some(u) => match self.check_user(u)? {
                Some(owner) => DefaultOwner::Id(owner),
                None => DefaultOwner::NamedUser(u),
            },
            None => DefaultOwner::Id(Owner::ROOT),
        };

        let Some(library) = app.library.as_ref() else {
            return Err(self.error(
                app_span,
                "[app] has no `library`".to_string(),
                "add `library = { source = \"library\", target = \"/opt/app\" }` under [app]",
            ));
        };
        let library = self.mount(library, MountKind::Library, &default_owner)?;
        let workspace = match &app.workspace {
            Some(w) => Some(self.mount(w, MountKind::Workspace, &default_owner)?),
            None => None,
        };

        let mut exclude = Vec::new();
        for pattern in app.exclude.iter().flatten() {
            self.check_exclude(pattern)?;
            exclude.push(pattern.get_ref().clone());
        }

        let entrypoint = match &app.entrypoint {
            Some(e) => Some(self.check_argv(e, "entrypoint")?),
            None => None,
        };
        let command = match &app.command {
            Some(c) => Some(self.check_argv(c, "command")?),
            None => None,
        };

        let mut ports: Vec<String> = Vec::new();
        for port in app.ports.iter().flatten() {
            let normal = self.check_port(port)?;
            if ports.contains(&normal) {
                return Err(self.error(
                    port.span(),
                    format!("port {normal} is listed twice"),
                    "remove the duplicate",
                ));
            }
            ports.push(normal);
        }

        let workdir = match &app.workdir {
            Some(w) => Some(normalise_path(w.get_ref(), true).map_err(|why| {
                self.error(
                    w.span(),
                    format!("workdir `{}` {why}", w.get_ref()),
                    absolute_hint(w.get_ref()),
                )
            })?),
            None => None,
        };

        let mut files = Vec::new();
        for file in raw.files.iter().flatten() {
            files.push(self.extra_file(file, &default_owner)?);
        }

        let mut secret_names = Vec::new();
        for name in raw.secrets.iter().flat_map(|s| s.names.iter().flatten()) {
            if !is_env_name(name.get_ref()) {
                return Err(self.error(
                    name.span(),
                    format!("`{}` is not an environment variable name", name.get_ref()),
                    "names are letters, digits and `_`, not starting with a digit",
                ));
            }
            secret_names.push(name.get_ref().clone());
        }
        let mut secret_allow = Vec::new();
        for path in raw.secrets.iter().flat_map(|s| s.allow.iter().flatten()) {
            let normal = normalise_path(path.get_ref(), false).map_err(|why| {
                self.error(
                    path.span(),
                    format!("[secrets] allow path `{}` {why}", path.get_ref()),
                    "write the path in the image that the scan reported, e.g. \"/opt/app/tests/fixtures/key.pem\"",
                )
            })?;
            secret_allow.push(normal);
        }

        let mut env = Vec::new();
        for (key, value) in raw.env.iter().flat_map(|t| t.0.iter()) {
            env.push(self.env_entry(key, value, &secret_names)?);
        }

        let mut labels = BTreeMap::new();
        for (key, value) in raw.labels.iter().flat_map(|t| t.0.iter()) {
            if key.get_ref().trim().is_empty() {
                return Err(self.error(
                    key.span(),
                    "label key is empty".to_string(),
                    "name the label, e.g. \"org.opencontainers.image.source\"",
                ));
            }
            let value = self.string_value(key, value, "label")?;
            labels.insert(key.get_ref().clone(), value);
        }

        Ok(Spec {
            path: self.path.to_path_buf(),
            base,
            base_text,
            image,
            platform,
            library,
            workspace,
            exclude,
            entrypoint,
            command,
            ports,
            workdir,
            user: app.user.map(Spanned::into_inner),
            files,
            env,
            secret_names,
            secret_allow,
            labels,
        })
    }

    fn check_location(&self, value: &Spanned<String>, key: &str) -> Result<Transport, SpecError> {
        let s = value.get_ref();
        if s.trim().is_empty() {
            let hint = if key == "base" {
                "name an image such as \"docker.io/library/python:3.12-slim\", write \"scratch\", or remove the line"
            } else {
                "name a destination such as \"docker.io/acme/app:1\", or remove the line"
            };
            return Err(self.error(value.span(), format!("`{key}` is empty"), hint));
        }
        match reference::parse_transport(s) {
            Ok(Transport::Scratch) if key == "image" => Err(self.error(
                value.span(),
                "`image` cannot be \"scratch\": it is where the image is written".to_string(),
                "name a destination such as \"docker.io/acme/app:1\" or \"docker-archive:app.tar\"",
            )),
            Ok(transport) => Ok(transport),
            Err(e) => Err(self.error(
                value.span(),
                format!("`{key}`: {e}"),
                e.hint()
                    .unwrap_or_else(|| "see the transports in the documentation".to_string()),
            )),
        }
    }

    fn check_platform(&self, value: &Spanned<String>) -> Result<Platform, SpecError> {
        let p = value.get_ref();
        Platform::parse(p).map_err(|_| {
            self.error(
                value.span(),
                format!("platform `{p}` is not OS/ARCH[/VARIANT]"),
                "write it in lowercase, e.g. \"linux/amd64\" or \"linux/arm64/v8\"",
            )
        })
    }

    /// Checks `user`'s shape; returns the owner it implies, or None when it names a user by name.
    fn check_user(&self, value: &Spanned<String>) -> Result<Option<Owner>, SpecError> {
        let u = value.get_ref();
        let (user, group) = match u.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (u.as_str(), None),
        };
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && c != ':')
        };
        if !part_ok(user) || !group.is_none_or(part_ok) {
            return Err(self.error(
                value.span(),
                format!("user `{u}` is not USER, UID, USER:GROUP or UID:GID"),
                "write e.g. \"1000:100\", \"1000\" or \"root\", or remove the line to keep the base's user",
            ));
        }
        let id = |p: &str| -> Option<u64> { if p == "root" { Some(0) } else { parse_id(p) } };
        Ok(match (id(user), group.map(id)) {
            (Some(uid), None) => Some(Owner { uid, gid: 0 }),
            (Some(uid), Some(Some(gid))) => Some(Owner { uid, gid }),
            _ => None,
        })
    }

    fn entry_owner(
        &self,
        given: Option<&Spanned<String>>,
        default: &DefaultOwner<'_>,
    ) -> Result<Owner, SpecError> {
        match (given, default) {
            (Some(o), _) => self.parse_owner(o),
            (None, DefaultOwner::Id(owner)) => Ok(*owner),
            (None, DefaultOwner::NamedUser(user)) => Err(self.error(
                user.span(),
                format!(
                    "user `{}` is a name, so stowage cannot tell which uid and gid should own the added files",
                    user.get_ref()
                ),
                "give numeric owner = \"UID:GID\" on the entry, or a numeric user",
            )),
        }
    }

    fn parse_owner(&self, value: &Spanned<String>) -> Result<Owner, SpecError> {
        let o = value.get_ref();
        let owner = match o.split_once(':') {
            Some((uid, gid)) => parse_id(uid).zip(parse_id(gid)),
            None => parse_id(o).map(|uid| (uid, 0)),
        };
        match owner {
            Some((uid, gid)) => Ok(Owner { uid, gid }),
            None => Err(self.error(
                value.span(),
                format!("owner `{o}` is not a numeric UID:GID"),
                "write numbers, e.g. owner = \"1000:100\"",
            )),
        }
    }

    fn mount(
        &self,
        value: &Spanned<RawMount>,
        kind: MountKind,
        default_owner: &DefaultOwner<'_>,
    ) -> Result<Mount, SpecError> {
        let name = kind.name();
        let example = match kind {
            MountKind::Library => "library = { source = \"library\", target = \"/opt/app\" }",
            MountKind::Workspace => {
                "workspace = { source = \"workspace\", target = \"/home/user/work\" }"
            }
        };
        let raw = value.get_ref();
        let Some(source) = &raw.source else {
            return Err(self.error(
                value.span(),
                format!("`{name}` has no `source`"),
                format!("give the folder to copy, e.g. {example}"),
            ));
        };
        let Some(target) = &raw.target else {
            return Err(self.error(
                value.span(),
                format!("`{name}` has no `target`"),
                format!("give the absolute path in the image, e.g. {example}"),
            ));
        };
        let source = self.source(source, name, true)?;
        let target = self.target(target, name)?;
        let owner = self.entry_owner(raw.owner.as_ref(), default_owner)?;
        Ok(Mount {
            source,
            target,
            owner,
        })
    }

    fn extra_file(
        &self,
        value: &Spanned<RawFile>,
        default_owner: &DefaultOwner<'_>,
    ) -> Result<ExtraFile, SpecError> {
        let raw = value.get_ref();
        let Some(source) = &raw.source else {
            return Err(self.error(
                value.span(),
                "[[files]] entry has no `source`".to_string(),
                "give the file to copy, e.g. source = \"scripts/start.sh\"",
            ));
        };
        let Some(target) = &raw.target else {
            return Err(self.error(
                value.span(),
                "[[files]] entry has no `target`".to_string(),
                "give the absolute path in the image, e.g. target = \"/opt/app/start.sh\"",
            ));
        };
        let source = self.source(source, "[[files]]", false)?;
        let target = self.target(target, "[[files]]")?;
        let mode = match &raw.mode {
            Some(m) => Some(self.mode(m)?),
            None => None,
        };
        let owner = self.entry_owner(raw.owner.as_ref(), default_owner)?;
        Ok(ExtraFile {
            source,
            target,
            mode,
            owner,
        })
    }

    /// Resolves a source against the spec's folder and checks it is a folder (or a file).
    fn source(
        &self,
        value: &Spanned<String>,
        entry: &str,
        folder: bool,
    ) -> Result<PathBuf, SpecError> {
        let written = value.get_ref();
        let what = if folder { "folder" } else { "file" };
        if written.is_empty() {
            return Err(self.error(
                value.span(),
                format!("{entry} `source` is empty"),
                format!("give the {what} to copy, relative to the spec file's folder"),
            ));
        }
        let base = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let joined = base.join(written);
        let resolved = std::path::absolute(&joined).unwrap_or(joined);
        let shown = resolved.display();
        match std::fs::metadata(&resolved) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(self.error(
                value.span(),
                format!("{entry} source {what} {shown} does not exist"),
                "create it, or fix `source` (a relative source is resolved against the spec file's folder)",
            )),
            Err(e) => Err(self.error(
                value.span(),
                format!("cannot read {entry} source {shown}: {e}"),
                "check that it exists and that you may read it",
            )),
            Ok(meta) if folder && !meta.is_dir() => Err(self.error(
                value.span(),
                format!("{entry} source {shown} is not a folder"),
                "point `source` at a folder; single files go in a [[files]] entry",
            )),
            Ok(meta) if !folder && !meta.is_file() => Err(self.error(
                value.span(),
                format!("{entry} source {shown} is not a regular file"),
                "point `source` at a file; whole folders go in [app] library or workspace",
            )),
            Ok(_) if folder && holds_home(&resolved, std::env::var_os("HOME").as_deref()) => {
                Err(self.error(
                    value.span(),
                    format!(
                        "{entry} source {shown} is your home folder or holds it; a home folder holds credentials (.ssh, .docker, .aws, shell history) and never goes into an image"
                    ),
                    "point `source` at the app's own folder inside your home, e.g. \"~/projects/app/workspace\"",
                ))
            }
            Ok(_) => Ok(resolved),
        }
    }

    fn target(&self, value: &Spanned<String>, entry: &str) -> Result<String, SpecError> {
        let t = value.get_ref();
        normalise_path(t, false).map_err(|why| {
            self.error(
                value.span(),
                format!("{entry} target `{t}` {why}"),
                absolute_hint(t),
            )
        })
    }

    fn mode(&self, value: &Spanned<toml::Value>) -> Result<u32, SpecError> {
        let octal = match value.get_ref() {
            toml::Value::String(s) => Some(s.strip_prefix("0o").unwrap_or(s).to_string()),
            // TOML's own octal integers (`0o755`) say what the user meant; decimal ones do not.
            toml::Value::Integer(_) => self
                .text
                .get(value.span())
                .and_then(|t| t.strip_prefix("0o"))
                .map(|t| t.replace('_', "")),
            _ => None,
        };
        let mode = octal.and_then(|s| {
            if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            u32::from_str_radix(&s, 8).ok().filter(|m| *m <= 0o7777)
        });
        mode.ok_or_else(|| {
            let shown = self.text.get(value.span()).unwrap_or("?");
            self.error(
                value.span(),
                format!("mode {shown} is not an octal permission string up to 7777"),
                "write it as a quoted octal string, e.g. mode = \"0755\"",
            )
        })
    }

    fn check_exclude(&self, pattern: &Spanned<String>) -> Result<(), SpecError> {
        let p = pattern.get_ref();
        let body = p.strip_prefix('!').unwrap_or(p);
        if body.trim().is_empty() {
            return Err(self.error(
                pattern.span(),
                "exclude pattern is empty".to_string(),
                "remove it, or write a pattern such as \"**/__pycache__\"",
            ));
        }
        match globset::Glob::new(body) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.error(
                pattern.span(),
                format!("exclude pattern `{p}` is not a valid glob: {}", e.kind()),
                "patterns use .dockerignore syntax: `*`, `?`, `**`, `[abc]` and a leading `!` to re-include",
            )),
        }
    }

    fn check_argv(
        &self,
        value: &Spanned<Vec<Spanned<String>>>,
        key: &str,
    ) -> Result<Vec<String>, SpecError> {
        let args = value.get_ref();
        match args.first() {
            None => Err(self.error(
                value.span(),
                format!("`{key}` is an empty list"),
                format!("name the program to run, e.g. {key} = [\"python3\", \"app.py\"], or remove the line"),
            )),
            Some(program) if program.get_ref().trim().is_empty() => Err(self.error(
                program.span(),
                format!("`{key}` starts with an empty program name"),
                "make the first element the program to run",
            )),
            Some(_) => Ok(args.iter().map(|a| a.get_ref().clone()).collect()),
        }
    }

    fn check_port(&self, value: &Spanned<toml::Value>) -> Result<String, SpecError> {
        let written = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            _ => String::new(),
        };
        let (number, proto) = match written.split_once('/') {
            Some((n, p)) => (n, p.to_ascii_lowercase()),
            None => (written.as_str(), "tcp".to_string()),
        };
        let number = if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
            number
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=65535).contains(n))
        } else {
            None
        };
        match number {
            Some(n) if matches!(proto.as_str(), "tcp" | "udp" | "sctp") => {
                Ok(format!("{n}/{proto}"))
            }
            _ => {
                let shown = self.text.get(value.span()).unwrap_or("?");
                Err(self.error(
                    value.span(),
                    format!("port {shown} is not PORT or PORT/PROTOCOL"),
                    "write a port from 1 to 65535, optionally with /tcp, /udp or /sctp, e.g. \"8888/tcp\"",
                ))
            }
        }
    }

    fn env_entry(
        &self,
        key: &Spanned<String>,
        value: &Spanned<toml::Value>,
        secret_names: &[String],
    ) -> Result<(String, String), SpecError> {
        let name = key.get_ref();
        if !is_env_name(name) {
            return Err(self.error(
                key.span(),
                format!("`{name}` is not an environment variable name"),
                "names are letters, digits and `_`, not starting with a digit",
            ));
        }
        let listed = secret_names.iter().any(|s| s == name);
        if listed || is_builtin_secret_name(name) {
            let why = if listed {
                "it is listed in [secrets] names"
            } else {
                "it matches the built-in secret deny-list"
            };
            return Err(self.error(
                key.span(),
                format!("[env] sets `{name}`, but {why}; secrets are never baked into an image"),
                format!(
                    "remove it from [env] and pass it when the container starts: `docker run -e {name}=… IMAGE`"
                ),
            ));
        }
        let value = self.string_value(key, value, "[env]")?;
        Ok((name.clone(), value))
    }

    fn string_value(
        &self,
        key: &Spanned<String>,
        value: &Spanned<toml::Value>,
        table: &str,
    ) -> Result<String, SpecError> {
        match value.get_ref() {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Table(_) => Err(self.error(
                key.span(),
                format!("{table} `{}` is a table, not a string", key.get_ref()),
                "quote keys that hold dots, e.g. \"org.opencontainers.image.source\" = \"…\"",
            )),
            _ => {
                let shown = self.text.get(value.span()).unwrap_or("?");
                Err(self.error(
                    value.span(),
                    format!("{table} `{}` must be a string, not {shown}", key.get_ref()),
                    format!("quote it: {} = \"{shown}\"", key.get_ref()),
                ))
            }
        }
    }
}

fn absolute_hint(path: &str) -> String {
    let suggestion = format!("/{}", path.trim_start_matches('/'));
    format!("write an absolute path in the image without `..`, e.g. \"{suggestion}\"")
}

/// Collapses `//` and `.` and drops a trailing `/`; refuses relative paths, `..`, and (unless allowed) `/`.
fn normalise_path(path: &str, allow_root: bool) -> Result<String, &'static str> {
    if !path.starts_with('/') {
        return Err("is not an absolute path");
    }
    if path.contains('\0') {
        return Err("contains a NUL character");
    }
    let mut parts = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err("contains `..`"),
            c => parts.push(c),
        }
    }
    if parts.is_empty() && !allow_root {
        return Err("is the image root `/`");
    }
    Ok(format!("/{}", parts.join("/")))
}

/// True when `folder` is the home folder `home` or one of its ancestors (both
/// resolved through symlinks, so `/home` → `/usr/home` setups are caught too).
/// An unset, empty or root home holds nothing worth guarding.
fn holds_home(folder: &Path, home: Option<&std::ffi::OsStr>) -> bool {
    let Some(home) = home.filter(|h| !h.is_empty()) else {
        return false;
    };
    let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let home = resolve(Path::new(home));
    if home.parent().is_none() {
        return false;
    }
    home.starts_with(resolve(folder))
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A uid or gid: decimal, within Linux's 32-bit id range.
fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().map(u64::from)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}
