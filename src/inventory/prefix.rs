//! Where a library was installed: the prefix its own files name, and installs whose code lives elsewhere.
//!
//! A venv's `pyvenv.cfg` `command` (Python 3.11 and later) ends in the path
//! the venv was made at; else the shebangs of the scripts in `bin/` name
//! `<prefix>/bin/python…`; else a conda env's `conda-meta/history` records
//! `create --prefix <prefix>`. `home` is not a candidate: it names the base
//! Python's folder, not the venv. Only the first bytes of `bin/` files are
//! read.

use super::locate::{ReadState, split_last};
use super::{Editable, InventoryError, Package, VenvConfig};

/// How much of a `bin/` file is read to find its shebang.
const SHEBANG_BYTES: usize = 512;

/// The prefix the library was installed at, by the first source that names one (see the module doc).
pub(super) fn install_prefix(
    cx: &mut ReadState,
    venv: Option<&VenvConfig>,
) -> Result<Option<String>, InventoryError> {
    if let Some(prefix) = venv
        .and_then(|v| v.command.as_deref())
        .and_then(venv_command_prefix)
    {
        return Ok(Some(prefix));
    }
    if let Some(prefix) = shebang_prefix(cx)? {
        return Ok(Some(prefix));
    }
    if cx.files.contains("conda-meta/history")
        && let Some(text) = cx.read_text("conda-meta/history")?
    {
        return Ok(conda_history_prefix(&text));
    }
    Ok(None)
}

/// `/usr/bin/python3 -m venv /build/area/venv` → `/build/area/venv`: the last argument, when absolute.
pub(super) fn venv_command_prefix(command: &str) -> Option<String> {
    let last = command.split_whitespace().last()?;
    let last = last.trim_matches(|c| c == '"' || c == '\'');
    clean_absolute(last)
}

/// The prefix every Python script in `bin/` names (`#!<prefix>/bin/python3`);
/// `None` when there is none, or when they disagree.
fn shebang_prefix(cx: &mut ReadState) -> Result<Option<String>, InventoryError> {
    let scripts: Vec<String> = cx
        .files
        .under("bin")
        .filter(|(path, _)| !split_last(path).0.contains('/'))
        .map(|(path, _)| path.to_owned())
        .collect();
    let mut found: Option<String> = None;
    for script in scripts {
        let Some(head) = cx.read_head(&script, SHEBANG_BYTES)? else {
            continue;
        };
        let Some(prefix) = python_shebang_prefix(&head) else {
            continue;
        };
        match &found {
            Some(seen) if *seen != prefix => return Ok(None),
            _ => found = Some(prefix),
        }
    }
    Ok(found)
}

/// `#!/build/area/venv/bin/python3 -E` → `/build/area/venv`.
pub(super) fn python_shebang_prefix(head: &[u8]) -> Option<String> {
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let interpreter = line.split_whitespace().next()?;
    let (bin, name) = interpreter.rsplit_once('/')?;
    if !name.starts_with("python") {
        return None;
    }
    let prefix = bin.strip_suffix("/bin")?;
    clean_absolute(prefix)
}

/// The prefix of the first `create` in a conda history (`-p P`, `--prefix P`, `--prefix=P`).
pub(super) fn conda_history_prefix(text: &str) -> Option<String> {
    for line in text.lines() {
        let Some(cmd) = line.trim().strip_prefix("# cmd:") else {
            continue;
        };
        let words: Vec<&str> = cmd.split_whitespace().collect();
        for (i, word) in words.iter().enumerate() {
            let value = match *word {
                "-p" | "--prefix" => words.get(i + 1).copied(),
                _ => word.strip_prefix("--prefix="),
            };
            if let Some(prefix) = value.and_then(clean_absolute) {
                return Some(prefix);
            }
        }
    }
    None
}

/// An absolute path without a trailing `/`, `.` or `..` parts; `None` otherwise (or for `/`).
fn clean_absolute(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == "..") {
        return None;
    }
    Some(format!("/{}", parts.join("/")))
}

/// Editable installs: a dist-info whose `direct_url.json` says so, `__editable__*.pth` files and `*.egg-link` files.
pub(super) fn read_editables(
    cx: &mut ReadState,
    packages: &[Package],
) -> Result<Vec<Editable>, InventoryError> {
    let mut editables = Vec::new();
    for package in packages.iter().filter(|p| p.editable) {
        editables.push(Editable {
            package: package.name.clone(),
            metadata: package.metadata.clone(),
            location: package.editable_location.clone(),
        });
    }
    let candidates: Vec<String> = cx
        .files
        .named(|name| {
            (name.starts_with(b"__editable__") && name.ends_with(b".pth"))
                || name.ends_with(b".egg-link")
        })
        .map(str::to_owned)
        .collect();
    for path in candidates {
        let name = split_last(&path).1;
        let Some(text) = cx.read_text(&path)? else {
            continue;
        };
        let (package, location) = match name.strip_suffix(".egg-link") {
            Some(stem) => (
                stem.to_owned(),
                text.lines().next().and_then(|l| clean_absolute(l.trim())),
            ),
            None => {
                let stem = name
                    .trim_start_matches("__editable__")
                    .trim_start_matches(['.', '_'])
                    .trim_end_matches(".pth");
                let package = stem.split('-').next().unwrap_or(stem).to_owned();
                // A path line is where the code is; an `import` line runs a
                // finder whose mapping names it, which is outside as well.
                let location = text
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with('#'))
                    .and_then(clean_absolute);
                (package, location)
            }
        };
        if editables
            .iter()
            .any(|e| e.package.eq_ignore_ascii_case(&package))
        {
            continue;
        }
        editables.push(Editable {
            package,
            metadata: path.clone(),
            location,
        });
    }
    Ok(editables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venv_command_names_the_prefix() {
        assert_eq!(
            venv_command_prefix("/usr/bin/python3 -m venv /build/area/venv/").as_deref(),
            Some("/build/area/venv")
        );
        assert_eq!(
            venv_command_prefix("/usr/bin/python3 -m venv --prompt x venv"),
            None
        );
        assert_eq!(venv_command_prefix(""), None);
    }

    #[test]
    fn python_shebangs_name_the_prefix() {
        assert_eq!(
            python_shebang_prefix(b"#!/build/area/venv/bin/python3\n# -*- coding").as_deref(),
            Some("/build/area/venv")
        );
        assert_eq!(
            python_shebang_prefix(b"#!/opt/env/bin/python3.11 -E\nimport x").as_deref(),
            Some("/opt/env")
        );
        assert_eq!(python_shebang_prefix(b"#!/bin/sh\n"), None);
        assert_eq!(python_shebang_prefix(b"#!/usr/bin/env python3\n"), None);
        assert_eq!(python_shebang_prefix(b"\x7fELF\x02"), None);
    }

    #[test]
    fn conda_history_names_the_prefix() {
        let text = "==> 2024-01-01 00:00:00 <==\n# cmd: /opt/conda/bin/conda create --yes --prefix /build/env python\n# cmd: conda install -p /other x\n";
        assert_eq!(conda_history_prefix(text).as_deref(), Some("/build/env"));
        assert_eq!(
            conda_history_prefix("# cmd: conda create -p /a/b/ x\n").as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            conda_history_prefix("# cmd: conda create --prefix=/c x\n").as_deref(),
            Some("/c")
        );
        assert_eq!(conda_history_prefix("# cmd: conda create -n base\n"), None);
    }
}
