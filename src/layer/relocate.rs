//! Relocation: the library's install prefix rewritten to its target in the layer stream, never on disk.
//!
//! Modelled on conda-pack's `--dest-prefix`: text files get every occurrence
//! of the old prefix replaced; binary files (conda's `file_mode: binary`)
//! get each NUL-terminated string that holds it rewritten and padded with
//! NULs to its old length, so offsets stay valid, which only works when the
//! new prefix is not longer; scripts get their shebang line rewritten;
//! absolute symlinks into the old prefix point into the new one. Symlinks
//! elsewhere (a venv's `bin/python3 -> /usr/bin/python3`) stay as they are.
//!
//! `plan_relocation` decides, at plan time, exactly which entries change, by
//! reading the few candidates (conda's prefix files, `pyvenv.cfg`, activate
//! scripts, `*.pth`, `kernel.json`, the first line of `bin/` files), so
//! `--dry-run` lists what the build rewrites. The writer then holds each
//! rewritten file in memory, as its size changes before the tar header is
//! written; [`MAX_REWRITE_BYTES`] bounds that.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use memchr::memmem;

use super::{EntryView, LayerError, LayerPlan, ViewKind};
use crate::inventory::{FileKey, Inventory};

/// The largest file rewritten in memory; a bigger candidate is an error, not a silent skip.
pub const MAX_REWRITE_BYTES: u64 = 64 * 1024 * 1024;

/// How much of a `bin/` file is read at plan time to see whether its shebang names the prefix.
const SHEBANG_BYTES: u64 = 4096;

/// The prefix a library was installed at and the one it is written to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Relocation {
    pub from: String,
    pub to: String,
}

/// How one entry is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RewriteKind {
    /// Every occurrence of the prefix replaced.
    Text,
    /// Only the first line (`#!…`).
    Shebang,
    /// In NUL-terminated strings, NUL-padded to the old length.
    Binary,
    /// The link's target.
    Symlink,
}

impl RewriteKind {
    /// The lowercase name used in output and records.
    pub fn name(self) -> &'static str {
        match self {
            RewriteKind::Text => "text",
            RewriteKind::Shebang => "shebang",
            RewriteKind::Binary => "binary",
            RewriteKind::Symlink => "symlink",
        }
    }
}

impl LayerPlan {
    /// Marks the entries under `target` that name `relocation.from` (I/O: reads
    /// the candidates, one at a time; see the module doc). A binary that would
    /// need a longer prefix is an error naming it.
    pub fn plan_relocation(
        &mut self,
        target: &str,
        inventory: &Inventory,
        relocation: Relocation,
    ) -> Result<(), LayerError> {
        let conda: HashMap<FileKey, bool> = inventory
            .packages
            .iter()
            .flat_map(|p| &p.prefixed)
            .map(|f| (f.key, f.binary))
            .collect();
        let root = target.trim_matches('/').as_bytes();
        let mut any = false;
        for index in 0..self.entries.len() {
            let view = self.view(&self.entries[index]);
            let Some(rel) = view
                .path
                .strip_prefix(root)
                .and_then(|rest| rest.strip_prefix(b"/"))
                .and_then(|rest| std::str::from_utf8(rest).ok())
            else {
                continue;
            };
            let prefixed = conda.get(&self.entries[index].path.key()).copied();
            let rewrite = rewrite_of(&view, rel, prefixed, &relocation)?;
            self.entries[index].rewrite = rewrite;
            any |= rewrite.is_some();
        }
        if any {
            self.relocation = Some(relocation);
        }
        Ok(())
    }

    /// The entries this layer rewrites (paths in the image, without the leading `/`), in order.
    pub fn rewrites(&self) -> impl Iterator<Item = (&[u8], RewriteKind)> {
        self.entries
            .iter()
            .filter_map(|e| Some((self.paths.get(e.path), e.rewrite?)))
    }
}

/// How `entry` (at `rel` in the library) is rewritten, if it names the old prefix.
fn rewrite_of(
    entry: &EntryView<'_>,
    rel: &str,
    prefixed: Option<bool>,
    relocation: &Relocation,
) -> Result<Option<RewriteKind>, LayerError> {
    let from = relocation.from.as_bytes();
    let size = match entry.kind {
        ViewKind::Symlink { target } => {
            return Ok(link_target(target, relocation).map(|_| RewriteKind::Symlink));
        }
        ViewKind::File { size } => size,
        _ => return Ok(None),
    };
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let kind = match prefixed {
        Some(true) => RewriteKind::Binary,
        Some(false) => RewriteKind::Text,
        None if rel == "pyvenv.cfg"
            || (parent == "bin" && name.starts_with("activate"))
            || name.ends_with(".pth")
            || name == "kernel.json" =>
        {
            RewriteKind::Text
        }
        None if parent == "bin" => RewriteKind::Shebang,
        None => return Ok(None),
    };
    let limit = if kind == RewriteKind::Shebang {
        SHEBANG_BYTES
    } else {
        size
    };
    let head = read_capped(&entry.disk(), size, limit)?;
    let named = match kind {
        RewriteKind::Shebang => {
            let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
            head.starts_with(b"#!") && memmem::find(line, from).is_some()
        }
        _ => memmem::find(&head, from).is_some(),
    };
    if !named {
        return Ok(None);
    }
    if kind == RewriteKind::Binary && relocation.to.len() > relocation.from.len() {
        return Err(LayerError::LongerPrefix {
            path: format!("/{}", String::from_utf8_lossy(entry.path)),
            from: relocation.from.clone(),
            to: relocation.to.clone(),
        });
    }
    Ok(Some(kind))
}

/// Reads up to `limit` bytes of a file of `size` bytes; a rewrite candidate over [`MAX_REWRITE_BYTES`] is an error.
fn read_capped(path: &Path, size: u64, limit: u64) -> Result<Vec<u8>, LayerError> {
    if limit > MAX_REWRITE_BYTES {
        return Err(LayerError::TooLargeToRelocate {
            path: path.to_path_buf(),
            size,
            max: MAX_REWRITE_BYTES,
        });
    }
    let read_err = |source| LayerError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).map_err(read_err)?;
    Ok(bytes)
}

/// Reads the whole file the plan marked for rewriting and rewrites it (I/O).
pub(super) fn rewritten_file(
    entry: &EntryView<'_>,
    size: u64,
    kind: RewriteKind,
    relocation: &Relocation,
) -> Result<Vec<u8>, LayerError> {
    let mut bytes = read_capped(&entry.disk(), size, size.saturating_add(1))?;
    if bytes.len() as u64 != size {
        return Err(LayerError::Changed { path: entry.disk() });
    }
    let (from, to) = (relocation.from.as_bytes(), relocation.to.as_bytes());
    match kind {
        RewriteKind::Text => bytes = replace_text(&bytes, from, to),
        RewriteKind::Shebang => bytes = replace_shebang(&bytes, from, to),
        RewriteKind::Binary => {
            if !replace_binary(&mut bytes, from, to) {
                return Err(LayerError::LongerPrefix {
                    path: format!("/{}", String::from_utf8_lossy(entry.path)),
                    from: relocation.from.clone(),
                    to: relocation.to.clone(),
                });
            }
        }
        RewriteKind::Symlink => {}
    }
    Ok(bytes)
}

/// The first bytes of a file as the layer will hold them, from its first
/// bytes on disk: what the start check reads (shebang, ELF header).
pub fn relocated_head(mut head: Vec<u8>, kind: RewriteKind, relocation: &Relocation) -> Vec<u8> {
    let (from, to) = (relocation.from.as_bytes(), relocation.to.as_bytes());
    match kind {
        RewriteKind::Text => replace_text(&head, from, to),
        RewriteKind::Shebang => replace_shebang(&head, from, to),
        RewriteKind::Binary => {
            // A longer prefix was refused at plan time; a string cut at the head's end stays as it is.
            replace_binary(&mut head, from, to);
            head
        }
        RewriteKind::Symlink => head,
    }
}

/// The new target of a symlink into the old prefix (`from` itself or below it); None for any other.
pub(super) fn link_target(target: &[u8], relocation: &Relocation) -> Option<Vec<u8>> {
    let rest = target.strip_prefix(relocation.from.as_bytes())?;
    if !(rest.is_empty() || rest.starts_with(b"/")) {
        return None;
    }
    let mut out = relocation.to.as_bytes().to_vec();
    out.extend_from_slice(rest);
    Some(out)
}

/// Every occurrence of `from` replaced by `to`.
fn replace_text(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    for found in memmem::find_iter(data, from) {
        out.extend_from_slice(&data[at..found]);
        out.extend_from_slice(to);
        at = found + from.len();
    }
    out.extend_from_slice(&data[at..]);
    out
}

/// `from` replaced by `to` in the first line only.
fn replace_shebang(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let end = memchr::memchr(b'\n', data).unwrap_or(data.len());
    let mut out = replace_text(&data[..end], from, to);
    out.extend_from_slice(&data[end..]);
    out
}

/// conda's binary rewrite, in place: each NUL-terminated string that holds
/// `from` gets every occurrence replaced by `to` and is padded with NULs to
/// its old length. An occurrence with no NUL after it is left alone, as
/// conda does. False (and `data` unchanged) when `to` is longer than `from`.
fn replace_binary(data: &mut [u8], from: &[u8], to: &[u8]) -> bool {
    if to.len() > from.len() || from.is_empty() {
        return to.len() <= from.len();
    }
    let finder = memmem::Finder::new(from);
    let mut at = 0;
    while let Some(found) = finder.find(&data[at..]) {
        let start = at + found;
        let Some(nul) = memchr::memchr(0, &data[start..]) else {
            break;
        };
        let end = start + nul;
        let string = replace_text(&data[start..end], from, to);
        data[start..start + string.len()].copy_from_slice(&string);
        data[start + string.len()..end].fill(0);
        at = end + 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relocation(from: &str, to: &str) -> Relocation {
        Relocation {
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn binary_strings_keep_their_length_and_are_nul_padded() {
        let mut data =
            b"\x7fELF\0/build/env/lib\0x/build/env/a:/build/env/b\0tail/build/env".to_vec();
        let before = data.len();
        assert!(replace_binary(&mut data, b"/build/env", b"/opt/e"));
        assert_eq!(data.len(), before);
        assert_eq!(
            data,
            b"\x7fELF\0/opt/e/lib\0\0\0\0\0x/opt/e/a:/opt/e/b\0\0\0\0\0\0\0\0\0tail/build/env"
                .to_vec()
        );
        let mut same = b"/a/b\0".to_vec();
        assert!(replace_binary(&mut same, b"/a/b", b"/c/d"));
        assert_eq!(same, b"/c/d\0");
    }

    #[test]
    fn binary_refuses_a_longer_prefix() {
        let mut data = b"/e/lib\0".to_vec();
        assert!(!replace_binary(&mut data, b"/e", b"/longer"));
        assert_eq!(data, b"/e/lib\0");
    }

    #[test]
    fn text_and_shebang_replacement() {
        assert_eq!(
            replace_text(
                b"VIRTUAL_ENV='/b/v'\nx=/b/v/bin:/b/v",
                b"/b/v",
                b"/opt/venv"
            ),
            b"VIRTUAL_ENV='/opt/venv'\nx=/opt/venv/bin:/opt/venv".to_vec()
        );
        assert_eq!(
            replace_shebang(b"#!/b/v/bin/python3\nprint('/b/v')\n", b"/b/v", b"/o"),
            b"#!/o/bin/python3\nprint('/b/v')\n".to_vec()
        );
        assert_eq!(
            replace_shebang(b"#!/b/v/bin/python3", b"/b/v", b"/o"),
            b"#!/o/bin/python3"
        );
    }

    #[test]
    fn symlinks_into_the_prefix_only() {
        let r = relocation("/build/venv", "/opt/venv");
        assert_eq!(
            link_target(b"/build/venv/lib/x", &r).as_deref(),
            Some(&b"/opt/venv/lib/x"[..])
        );
        assert_eq!(
            link_target(b"/build/venv", &r).as_deref(),
            Some(&b"/opt/venv"[..])
        );
        assert_eq!(link_target(b"/build/venv2/x", &r), None);
        assert_eq!(link_target(b"/usr/bin/python3", &r), None);
        assert_eq!(link_target(b"lib", &r), None);
    }
}
