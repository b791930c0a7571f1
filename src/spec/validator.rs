//! The validator's ground: the file's text and path, and how a byte span becomes a `SpecError` at its line and column.
//!
//! Each section's checks (`validate`, `entries`, `fields`, `values`) are
//! methods on [`Validator`] in their own files; they all build their errors
//! here, so none of them needs another.

use std::ops::Range;
use std::path::Path;

use super::SpecError;

/// Validates one spec file's raw tables.
///
/// It holds the file's text and path, not the tables: the text turns the
/// byte spans serde records into line:column and lets a check quote a value
/// as written (a mode such as `0o755`, a port such as `-1`); the path goes
/// into every error and is the folder relative sources resolve against.
///
/// The first problem found is the one reported, so the order of the checks
/// is part of the behaviour. It is fixed, not the order of the text: `base`,
/// `image`, `platform`; then `[app]` (`user` first, as it sets who owns the
/// added files, then `library`, `workspace`, `exclude`, `entrypoint`,
/// `command`, `ports`, `workdir`); `[[files]]`; `[secrets]` (before `[env]`,
/// which refuses the names it lists); `[env]`; `[labels]`.
pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
}

impl Validator<'_> {
    /// An error at the start of `span`, with what to do about it.
    pub(super) fn error(
        &self,
        span: Range<usize>,
        message: String,
        hint: impl Into<String>,
    ) -> SpecError {
        SpecError {
            path: self.path.to_path_buf(),
            position: Some(line_col(self.text, span.start)),
            message,
            hint: Some(hint.into()),
        }
    }

    /// Rewords a TOML or serde error (syntax, unknown key, wrong type) and adds a hint.
    pub(super) fn toml_error(&self, e: &toml::de::Error) -> SpecError {
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
            } else if message.ends_with("expected a boolean") {
                "write true or false, without quotes".to_string()
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
}

/// 1-based line and column (in characters, as editors count them) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(line_col("é = 1", "é = ".len()), (1, 5));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("a\n", 2), (2, 1));
        assert_eq!(line_col("", 0), (1, 1));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
