//! `.dockerignore`-style exclude patterns, matched against paths relative to each source.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

use super::LayerError;

/// `.dockerignore`-style exclude patterns, relative to a source folder.
///
/// Docker's rules: `*` and `?` stop at `/`, `**` spans folders, a leading
/// `!` re-includes, the last matching pattern wins, and a pattern that
/// matches a folder excludes everything below it.
#[derive(Debug, Default)]
pub struct Excludes {
    patterns: Vec<(GlobMatcher, bool)>,
    has_negation: bool,
}

impl Excludes {
    /// Compiles the patterns.
    pub fn new(patterns: &[String]) -> Result<Excludes, LayerError> {
        let mut compiled = Vec::new();
        let mut has_negation = false;
        for raw in patterns {
            let (negated, body) = match raw.trim().strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, raw.trim()),
            };
            let cleaned = clean_pattern(body);
            if cleaned.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&cleaned)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|source| LayerError::Pattern {
                    pattern: raw.clone(),
                    source,
                })?;
            has_negation |= negated;
            compiled.push((glob.compile_matcher(), negated));
        }
        Ok(Excludes {
            patterns: compiled,
            has_negation,
        })
    }

    /// Whether `rel` (relative to the source folder) is excluded.
    pub fn is_excluded(&self, rel: &Path) -> bool {
        let mut excluded = false;
        for (glob, negated) in &self.patterns {
            let hit = rel
                .ancestors()
                .filter(|p| !p.as_os_str().is_empty())
                .any(|p| glob.is_match(p));
            if hit {
                excluded = !negated;
            }
        }
        excluded
    }

    /// Whether a pattern matches `rel` itself, not counting the folders
    /// above it (for a caller that walks folders first and keeps their answer).
    pub fn matches_itself(&self, rel: &Path) -> bool {
        self.patterns.iter().any(|(glob, _)| glob.is_match(rel))
    }

    /// Whether an excluded folder may still hold re-included entries, so it must be walked.
    pub(super) fn may_reinclude(&self) -> bool {
        self.has_negation
    }
}

pub(super) fn clean_pattern(pattern: &str) -> String {
    let parts: Vec<&str> = pattern
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    parts.join("/")
}
