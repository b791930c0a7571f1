//! Turns the raw tables into a checked [`Policy`], section by section; the
//! first problem found is the one reported, at its line and column.

use std::ops::Range;
use std::path::Path;

use globset::GlobBuilder;
use toml::Spanned;

use super::raw::{RawDestinations, RawLicenses, RawLimits, RawPackages, RawPolicy, Texts};
use super::{
    Destinations, FilePattern, FileRules, Licenses, Limit, Limits, Overwrite, Packages, Pattern,
    Policy, PurlPattern, Unknown,
};
use crate::digest::Digest;
use crate::layer::Excludes;
use crate::spec::{SpecError, line_of, toml_file_error, toml_syntax_error};

/// The file being checked: its text turns spans into lines.
struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
}

/// Parses and checks policy text; `path` names the file in messages.
pub(super) fn parse_policy(text: &str, path: &Path) -> Result<Policy, SpecError> {
    let checker = Checker { text, path };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| toml_syntax_error(text, path, &e))?;
    Ok(Policy {
        path: path.to_path_buf(),
        digest: Digest::of(text.as_bytes()).to_string(),
        licenses: checker.licenses(raw.licenses)?,
        packages: checker.packages(raw.packages)?,
        files: checker.files(raw.files.and_then(|f| f.deny))?,
        limits: checker.limits(raw.limits)?,
        destinations: checker.destinations(raw.destinations)?,
    })
}

impl Checker<'_> {
    fn error(&self, span: Range<usize>, message: String, hint: &str) -> SpecError {
        toml_file_error(self.text, self.path, span, message, hint)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    /// Globs (`*`, `?`, `[…]`), matched whole and case-insensitively; `key` names the list in messages.
    fn globs(&self, list: &Texts, key: &str, hint: &str) -> Result<Vec<Pattern>, SpecError> {
        let Some(list) = list else {
            return Ok(Vec::new());
        };
        list.get_ref()
            .iter()
            .map(|item| {
                let text = item.get_ref().trim();
                let glob = (!text.is_empty())
                    .then(|| GlobBuilder::new(text).case_insensitive(true).build().ok())
                    .flatten();
                match glob {
                    Some(glob) => Ok(Pattern {
                        text: text.to_string(),
                        glob: glob.compile_matcher(),
                        line: self.line(&item.span()),
                    }),
                    None => Err(self.error(
                        item.span(),
                        format!("{key}: `{text}` is not a valid glob"),
                        hint,
                    )),
                }
            })
            .collect()
    }

    /// The line of a list's key (for a rule the list makes as a whole, such as an allow-list).
    fn list_line(&self, list: &Texts) -> usize {
        list.as_ref().map_or(0, |l| self.line(&l.span()))
    }

    fn licenses(&self, raw: Option<RawLicenses>) -> Result<Licenses, SpecError> {
        let Some(raw) = raw else {
            return Ok(Licenses::default());
        };
        let hint = "write SPDX license identifiers or globs over them, e.g. \"AGPL-*\", \"SSPL-1.0\", \"LicenseRef-*\"";
        let deny = self.globs(&raw.deny, "[licenses] deny", hint)?;
        let allow = self.globs(&raw.allow, "[licenses] allow", hint)?;
        let (unknown, unknown_line) = match &raw.unknown {
            None => (Unknown::Allow, 0),
            Some(value) => {
                let unknown = match value.get_ref().as_str() {
                    "allow" => Unknown::Allow,
                    "warn" => Unknown::Warn,
                    "deny" => Unknown::Deny,
                    other => {
                        return Err(self.error(
                            value.span(),
                            format!("[licenses] unknown = \"{other}\" is not allow, warn or deny"),
                            "write unknown = \"allow\", \"warn\" or \"deny\"",
                        ));
                    }
                };
                (unknown, self.line(&value.span()))
            }
        };
        Ok(Licenses {
            allow_line: self.list_line(&raw.allow),
            deny,
            allow,
            unknown,
            unknown_line,
        })
    }

    fn packages(&self, raw: Option<RawPackages>) -> Result<Packages, SpecError> {
        let Some(raw) = raw else {
            return Ok(Packages::default());
        };
        let channels = self.globs(
            &raw.deny_channels,
            "[packages] deny_channels",
            "write conda channel names or URLs, globs allowed, e.g. \"defaults\", \"https://repo.anaconda.com/*\"",
        )?;
        Ok(Packages {
            allow_line: self.list_line(&raw.allow),
            deny: self.purls(&raw.deny, "[packages] deny")?,
            allow: self.purls(&raw.allow, "[packages] allow")?,
            deny_channels: channels,
        })
    }

    /// Package URL patterns: `pkg:TYPE/NAME[@VERSION]`, globs in the name and version.
    fn purls(&self, list: &Texts, key: &str) -> Result<Vec<PurlPattern>, SpecError> {
        let Some(list) = list else {
            return Ok(Vec::new());
        };
        list.get_ref()
            .iter()
            .map(|item| {
                PurlPattern::parse(item.get_ref().trim(), self.line(&item.span())).ok_or_else(|| {
                    self.error(
                        item.span(),
                        format!("{key}: `{}` is not a package URL pattern", item.get_ref()),
                        "write pkg:TYPE/NAME[@VERSION] with TYPE pypi, conda, cran or npm, e.g. \"pkg:pypi/pymupdf\" or \"pkg:conda/mkl-devel@2024.*\"",
                    )
                })
            })
            .collect()
    }

    /// `[files] deny`: `.dockerignore` patterns over image paths, compiled as `exclude` is.
    fn files(&self, list: Texts) -> Result<FileRules, SpecError> {
        let Some(items) = &list else {
            return Ok(FileRules::default());
        };
        let mut patterns = Vec::new();
        for item in items.get_ref() {
            let text = item.get_ref().trim();
            let negated = text.starts_with('!');
            let body = text.trim_start_matches('!').trim();
            let matcher = (!body.is_empty())
                .then(|| Excludes::new(&[body.to_string()]).ok())
                .flatten();
            let Some(matcher) = matcher else {
                return Err(self.error(
                    item.span(),
                    format!("[files] deny: `{text}` is not a valid pattern"),
                    "patterns use .dockerignore syntax over paths in the image: `*`, `?`, `**`, `[abc]`, and a leading `!` lets a path through",
                ));
            };
            patterns.push(FilePattern {
                text: text.to_string(),
                negated,
                matcher,
                line: self.line(&item.span()),
            });
        }
        Ok(FileRules { patterns })
    }

    fn limits(&self, raw: Option<RawLimits>) -> Result<Limits, SpecError> {
        let Some(raw) = raw else {
            return Ok(Limits::default());
        };
        let files = match &raw.files {
            None => None,
            Some(value) => match value.get_ref() {
                toml::Value::Integer(n) if *n > 0 => Some(Limit {
                    value: n.unsigned_abs(),
                    line: self.line(&value.span()),
                }),
                _ => {
                    return Err(self.error(
                        value.span(),
                        "[limits] files must be a whole number above 0".to_string(),
                        "write the largest number of files, e.g. files = 2000000",
                    ));
                }
            },
        };
        Ok(Limits {
            image: self.size(&raw.image, "image")?,
            layer: self.size(&raw.layer, "layer")?,
            workspace: self.size(&raw.workspace, "workspace")?,
            files,
        })
    }

    /// A size: bytes as a number, or a string with a unit (`"20GiB"`, `"500MB"`).
    fn size(
        &self,
        value: &Option<Spanned<toml::Value>>,
        key: &str,
    ) -> Result<Option<Limit>, SpecError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let bytes = match value.get_ref() {
            toml::Value::Integer(n) if *n > 0 => Some(n.unsigned_abs()),
            toml::Value::String(s) => parse_size(s),
            _ => None,
        };
        match bytes {
            Some(value_bytes) => Ok(Some(Limit {
                value: value_bytes,
                line: self.line(&value.span()),
            })),
            None => Err(self.error(
                value.span(),
                format!("[limits] {key} is not a size"),
                "write a number of bytes or a quoted size with a unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. \"20GiB\"",
            )),
        }
    }

    fn destinations(&self, raw: Option<RawDestinations>) -> Result<Destinations, SpecError> {
        let Some(raw) = raw else {
            return Ok(Destinations::default());
        };
        let repositories = self.globs(
            &raw.repositories,
            "[destinations] repositories",
            "write repository names with their registry, globs allowed, e.g. \"docker.io/acme/public\" or \"registry.example.org/apps/*\"",
        )?;
        let tag = match &raw.tag {
            None => None,
            Some(value) => match regex::Regex::new(value.get_ref()) {
                Ok(regex) => Some((regex, self.line(&value.span()))),
                Err(e) => {
                    let why = e.to_string();
                    let last = why.lines().last().unwrap_or("").trim().to_string();
                    return Err(self.error(
                        value.span(),
                        format!("[destinations] tag is not a valid regular expression: {last}"),
                        "write a regular expression (Rust regex syntax), e.g. tag = \"^[a-z0-9][a-z0-9._-]{0,127}$\"",
                    ));
                }
            },
        };
        let (overwrite, overwrite_line) = match &raw.overwrite {
            None => (Overwrite::Own, 0),
            Some(value) => {
                let overwrite = match value.get_ref().as_str() {
                    "never" => Overwrite::Never,
                    "own" => Overwrite::Own,
                    "always" => Overwrite::Always,
                    other => {
                        return Err(self.error(
                            value.span(),
                            format!("[destinations] overwrite = \"{other}\" is not never, own or always"),
                            "write overwrite = \"never\", \"own\" (only tags this journal exported) or \"always\"",
                        ));
                    }
                };
                (overwrite, self.line(&value.span()))
            }
        };
        Ok(Destinations {
            repositories_line: self.list_line(&raw.repositories),
            repositories,
            tag,
            overwrite,
            overwrite_line,
        })
    }
}

/// A size with an optional unit: `1048576`, `500MB`, `20GiB`, `1.5TiB`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (number * factor).round();
    (bytes.is_finite() && (1.0..1.8e19).contains(&bytes)).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("20GiB"), Some(20 << 30));
        assert_eq!(parse_size("500MB"), Some(500_000_000));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("100"), Some(100));
        for bad in ["", "0", "12 parsecs", "-1GB", "GiB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
