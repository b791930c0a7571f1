//! The grammars of single values: image locations, platforms, users and
//! owners, paths in the image, modes, exclude patterns, argument lists,
//! ports, environment variable names and string values.
//!
//! Each check takes the value with its span and returns it parsed or
//! normalised, or an error pointing at it; none reads the file system.

use toml::Spanned;

use super::validator::Validator;
use super::{Owner, SpecError};
use crate::image::Platform;
use crate::reference::{self, Location};
use crate::scan::is_builtin_secret_name;

impl Validator<'_> {
    /// `base` or `image`: a transport (registry reference, `docker-archive:`, `oci:`, …);
    /// `image` is a destination, so `scratch` is refused there.
    pub(super) fn check_location(
        &self,
        value: &Spanned<String>,
        key: &str,
    ) -> Result<Location, SpecError> {
        let s = value.get_ref();
        if s.trim().is_empty() {
            let hint = if key == "base" {
                "name an image such as \"docker.io/library/python:3.12-slim\", write \"scratch\", or remove the line"
            } else {
                "name a destination such as \"docker.io/acme/app:1\", or remove the line"
            };
            return Err(self.error(value.span(), format!("`{key}` is empty"), hint));
        }
        match reference::parse_location(s) {
            Ok(Location::Scratch) if key == "image" => Err(self.error(
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

    /// `platform`, by the one platform grammar shared with the rest of stowage.
    pub(super) fn check_platform(&self, value: &Spanned<String>) -> Result<Platform, SpecError> {
        let p = value.get_ref();
        Platform::parse(p).map_err(|_| {
            self.error(
                value.span(),
                format!("platform `{p}` is not OS/ARCH[/VARIANT]"),
                Platform::hint_for(p),
            )
        })
    }

    /// Checks `user`'s shape; returns the owner it implies, or None when it names a user by name.
    pub(super) fn check_user(&self, value: &Spanned<String>) -> Result<Option<Owner>, SpecError> {
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

    /// An entry's `owner`: numeric `UID[:GID]`, since it is written into the layer's tar headers.
    pub(super) fn parse_owner(&self, value: &Spanned<String>) -> Result<Owner, SpecError> {
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

    /// An entry's `target`: an absolute path in the image, other than `/`.
    pub(super) fn target(&self, value: &Spanned<String>, entry: &str) -> Result<String, SpecError> {
        let t = value.get_ref();
        normalise_path(t, false).map_err(|why| {
            self.error(
                value.span(),
                format!("{entry} target `{t}` {why}"),
                absolute_hint(t),
            )
        })
    }

    /// A `[[files]]` `mode`: octal permission bits up to 7777, as a string or a TOML octal integer.
    pub(super) fn mode(&self, value: &Spanned<toml::Value>) -> Result<u32, SpecError> {
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

    /// One `[app] exclude` pattern: non-empty and a valid glob once a leading `!` is dropped.
    pub(super) fn check_exclude(&self, pattern: &Spanned<String>) -> Result<(), SpecError> {
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

    /// `entrypoint` or `command`: a list whose first element names a program.
    pub(super) fn check_argv(
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

    /// One `[app] ports` entry, as `PORT[/PROTOCOL]` or a bare integer; returns `PORT/proto`.
    pub(super) fn check_port(&self, value: &Spanned<toml::Value>) -> Result<String, SpecError> {
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

    /// One `[env]` entry: a variable name that is not a secret, and a string value.
    pub(super) fn env_entry(
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
                if listed {
                    format!(
                        "remove it from [env] and pass it when the container starts: `docker run -e {name} IMAGE`"
                    )
                } else {
                    format!(
                        "remove it from [env], list \"{name}\" in `[secrets] names` (so the printed run line asks for it), and pass it when the container starts: `docker run -e {name} IMAGE`"
                    )
                },
            ));
        }
        let value = self.string_value(key, value, "[env]")?;
        Ok((name.clone(), value))
    }

    /// The string value of an `[env]` or `[labels]` entry; `table` names it in messages.
    pub(super) fn string_value(
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

/// The hint for a path in the image that is not absolute, has `..` or is `/`.
pub(super) fn absolute_hint(path: &str) -> String {
    let suggestion = format!("/{}", path.trim_start_matches('/'));
    format!("write an absolute path in the image without `..`, e.g. \"{suggestion}\"")
}

/// Collapses `//` and `.` and drops a trailing `/`; refuses relative paths, `..`, and (unless allowed) `/`.
pub(super) fn normalise_path(path: &str, allow_root: bool) -> Result<String, &'static str> {
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

/// `[A-Za-z_][A-Za-z0-9_]*`
pub(super) fn is_env_name(name: &str) -> bool {
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
