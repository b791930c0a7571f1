//! Every relative link in the project's Markdown resolves: the file exists, and a `#fragment` names one of its headings.
//!
//! The README, `CONTRIBUTING.md`, `ARCHITECTURE.md`, `fuzz/README.md` and
//! every page under `docs/` link to each other by path and by heading; text
//! moves between pages, and a link left pointing at the old place would
//! send a reader nowhere. Links with a scheme (`https:`…) are not followed.
//! Fragments are matched against headings as GitHub names them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The Markdown files whose links are checked, relative to the project root.
fn checked_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [
        "README.md",
        "CONTRIBUTING.md",
        "ARCHITECTURE.md",
        "fuzz/README.md",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    let mut folders = vec![PathBuf::from("docs")];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(root.join(&folder))
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", folder.display()));
        for entry in entries.map(|e| e.expect("a readable docs/ entry")) {
            let path = folder.join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The text outside fenced code blocks, line by line (links in code are examples).
fn prose_lines(markdown: &str) -> Vec<&str> {
    let mut in_fence = false;
    let mut lines = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            lines.push(line);
        }
    }
    lines
}

/// The targets of the inline links `[text](target)` in `markdown`, outside code.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(markdown) {
        // Inline code spans hold examples such as `[x](y)`; drop them first.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
    }
    targets
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens.
fn github_slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor the headings of `markdown` give, with GitHub's `-1`, `-2` for repeats.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose_lines(markdown) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let slug = github_slug(heading.trim_start_matches('#'));
        let mut anchor = slug.clone();
        let mut repeat = 0;
        while seen.contains(&anchor) {
            repeat += 1;
            anchor = format!("{slug}-{repeat}");
        }
        seen.insert(anchor);
    }
    seen
}

/// What is wrong with one link from the file `from` (relative to `root`), if anything.
fn broken_link(root: &Path, from: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
    let file = if path.is_empty() {
        root.join(from)
    } else {
        root.join(from).parent().unwrap_or(root).join(path)
    };
    if !file.exists() {
        return Some(format!(
            "{}: `{target}`: {} does not exist",
            from.display(),
            file.display()
        ));
    }
    if fragment.is_empty() {
        return None;
    }
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    if anchors(&text).contains(fragment) {
        return None;
    }
    Some(format!(
        "{}: `{target}`: no heading of {} has the anchor #{fragment}",
        from.display(),
        file.display()
    ))
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    let mut checked = 0;
    for from in checked_files(root) {
        let text = std::fs::read_to_string(root.join(&from))
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
        for target in link_targets(&text) {
            checked += 1;
            broken.extend(broken_link(root, &from, &target));
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the link parser broken?"
    );
    assert!(
        broken.is_empty(),
        "links that lead nowhere:\n  {}\nhint: fix the path or the #heading the link names (anchors are GitHub's: lower case, punctuation dropped, spaces as hyphens)",
        broken.join("\n  ")
    );
}

#[test]
fn anchors_are_named_as_github_names_them() {
    let page = "# Page\n## Signatures: `stowage sign` and `stowage verify`\n## The base's folders\n\
                ```sh\n# not a heading\n```\n## Notes\n## Notes\n";
    let found = anchors(page);
    for anchor in [
        "page",
        "signatures-stowage-sign-and-stowage-verify",
        "the-bases-folders",
        "notes",
        "notes-1",
    ] {
        assert!(found.contains(anchor), "#{anchor} missing from {found:?}");
    }
    assert!(!found.contains("not-a-heading"), "{found:?}");
}

#[test]
fn a_link_to_a_missing_file_or_heading_is_reported() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let from = Path::new("README.md");
    assert_eq!(broken_link(root, from, "docs/spec.md"), None);
    assert_eq!(
        broken_link(root, from, "https://example.org/nowhere.md"),
        None
    );
    assert!(broken_link(root, from, "docs/no-such-page.md").is_some());
    assert!(broken_link(root, from, "docs/spec.md#no-such-heading").is_some());
    assert_eq!(
        link_targets("see [a](x.md) and `[b](y.md)`\n```\n[c](z.md)\n```\n"),
        vec!["x.md".to_string()]
    );
}
