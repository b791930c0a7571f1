//! The command reference, man pages and shell completions, generated from the clap definition and compared with the checked-in copies.
//!
//! `docs/reference/commands.md`, `docs/man/*.1` and `docs/completions/*`
//! are rendered in memory from `stowage::cli::command()`, the one grammar
//! the binary parses with. When a checked-in file differs (a flag's help
//! changed, a subcommand was added) the test fails and says how to
//! regenerate; with `STOWAGE_BLESS=1` it writes the files instead, each
//! through a temp file and a rename. Nothing rendered depends on the date,
//! the version or the machine, so the files only change when the grammar does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use clap::{Arg, ArgAction, Command};
use clap_complete::Shell;

const REGENERATE: &str = "STOWAGE_BLESS=1 cargo test --test reference";
const MAN_DIR: &str = "docs/man";
const MARKDOWN_PATH: &str = "docs/reference/commands.md";
const BASH_PATH: &str = "docs/completions/stowage.bash";

/// The grammar as the pages describe it: `help` is clap's own subcommand
/// (documented by `-h, --help` everywhere), as in `clap_mangen::generate_to`.
fn documented_command() -> Command {
    let mut cmd = stowage::cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every generated file, by its path relative to the project root.
fn generated_files() -> BTreeMap<PathBuf, Vec<u8>> {
    let cmd = documented_command();
    let mut files = BTreeMap::new();
    files.insert(PathBuf::from(MARKDOWN_PATH), markdown(&cmd).into_bytes());
    for (name, page) in man_pages(&cmd) {
        files.insert(Path::new(MAN_DIR).join(name), page);
    }
    for (shell, name) in [
        (Shell::Bash, "stowage.bash"),
        (Shell::Zsh, "_stowage"),
        (Shell::Fish, "stowage.fish"),
    ] {
        let mut script = Vec::new();
        // The binary's own grammar, `help` subcommand included: it is what the user types.
        clap_complete::generate(shell, &mut stowage::cli::command(), "stowage", &mut script);
        files.insert(Path::new("docs/completions").join(name), script);
    }
    files
}

#[test]
fn checked_in_reference_matches_the_clap_definition() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = generated_files();
    let strays = stray_man_pages(root, &files);
    if std::env::var_os("STOWAGE_BLESS").is_some_and(|v| v == "1") {
        // CI checks the committed files; rewriting them there would pass any change.
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "STOWAGE_BLESS=1 is refused under CI=true: CI checks the committed reference\n\
             hint: run {REGENERATE} locally and commit the result"
        );
        bless(root, &files, &strays);
        return;
    }
    let mut stale: Vec<String> = files
        .iter()
        .filter(|(path, bytes)| std::fs::read(root.join(path)).ok().as_ref() != Some(*bytes))
        .map(|(path, bytes)| describe_difference(&root.join(path), path, bytes))
        .collect();
    stale.extend(
        strays
            .iter()
            .map(|path| format!("{}: no subcommand has this page any more", path.display())),
    );
    assert!(
        stale.is_empty(),
        "the generated command reference is out of date with src/cli/args.rs:\n  {}\n\
         hint: regenerate it and commit the result: {REGENERATE}",
        stale.join("\n  ")
    );
}

/// Man pages in `docs/man` that the grammar no longer produces.
fn stray_man_pages(root: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root.join(MAN_DIR)) else {
        return Vec::new();
    };
    let mut strays: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| Path::new(MAN_DIR).join(entry.file_name()))
        .filter(|path| path.extension().is_some_and(|e| e == "1") && !files.contains_key(path))
        .collect();
    strays.sort();
    strays
}

fn bless(root: &Path, files: &BTreeMap<PathBuf, Vec<u8>>, strays: &[PathBuf]) {
    for (path, bytes) in files {
        let full = root.join(path);
        let parent = full.parent().unwrap_or(root);
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        stowage::atomic::write_file(&full, bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", full.display()));
    }
    for path in strays {
        std::fs::remove_file(root.join(path))
            .unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
    }
}

/// Names the file and its first line that differs from the generated text.
fn describe_difference(full: &Path, path: &Path, expected: &[u8]) -> String {
    let Ok(actual) = std::fs::read(full) else {
        return format!("{}: missing", path.display());
    };
    let expected = String::from_utf8_lossy(expected);
    let actual = String::from_utf8_lossy(&actual);
    let mut want = expected.lines();
    let mut have = actual.lines();
    for number in 1.. {
        match (want.next(), have.next()) {
            (None, None) => break,
            (w, h) if w == h => continue,
            (w, h) => {
                return format!(
                    "{}:{number}: is {:?}, generated {:?}",
                    path.display(),
                    h.unwrap_or("<end of file>"),
                    w.unwrap_or("<end of file>")
                );
            }
        }
    }
    format!("{}: differs (line endings)", path.display())
}

// --- Man pages -----------------------------------------------------------------

/// One page per command and nested subcommand: `stowage.1`, `stowage-build.1`, `stowage-exports-list.1`…
fn man_pages(cmd: &Command) -> Vec<(String, Vec<u8>)> {
    let mut pages = Vec::new();
    for Named { cmd: command, .. } in walk(cmd) {
        // The source field defaults to "stowage VERSION": the name alone keeps
        // the pages unchanged across releases. The date is empty by default.
        let man = clap_mangen::Man::new(command.clone()).source("stowage");
        let mut page = Vec::new();
        render_man_page(&man, command, &mut page)
            .unwrap_or_else(|e| panic!("rendering {}: {e}", man.get_filename()));
        pages.push((man.get_filename(), page));
    }
    pages
}

/// `Man::render` without its VERSION section, which would change the page at every release.
fn render_man_page(
    man: &clap_mangen::Man,
    cmd: &Command,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }
    if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
        man.render_extra_section(out)?;
    }
    if cmd.get_author().is_some() {
        man.render_authors_section(out)?;
    }
    Ok(())
}

// --- The Markdown reference ------------------------------------------------------

/// A command with the words that invoke it: `stowage exports list`.
struct Named<'a> {
    name: String,
    cmd: &'a Command,
}

impl Named<'_> {
    /// GitHub's anchor for the heading `` `stowage exports list` ``.
    fn anchor(&self) -> String {
        self.name.replace(' ', "-")
    }
}

/// The command and every visible subcommand below it, depth first, in declaration order.
fn walk(cmd: &Command) -> Vec<Named<'_>> {
    fn visit<'a>(cmd: &'a Command, prefix: &str, all: &mut Vec<Named<'a>>) {
        let name = if prefix.is_empty() {
            cmd.get_name().to_owned()
        } else {
            format!("{prefix} {}", cmd.get_name())
        };
        all.push(Named {
            name: name.clone(),
            cmd,
        });
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            visit(sub, &name, all);
        }
    }
    let mut all = Vec::new();
    visit(cmd, "", &mut all);
    all
}

fn markdown(root: &Command) -> String {
    let mut md = String::new();
    md.push_str("# Command reference\n\n");
    let _ = writeln!(
        md,
        "<!-- Generated from src/cli/args.rs by tests/reference.rs; do not edit.\n     \
         Regenerate: {REGENERATE} -->\n"
    );
    md.push_str(
        "Every command and option of `stowage`, as `stowage COMMAND --help` prints them. \
         The [global options](#global-options) work with every command. \
         Man pages: `docs/man/`; shell completions: `docs/completions/`.\n\n",
    );
    let commands = walk(root);
    for named in &commands {
        let depth = named.name.matches(' ').count();
        let _ = writeln!(
            md,
            "{}- [`{}`](#{})",
            "  ".repeat(depth),
            named.name,
            named.anchor()
        );
    }
    for named in &commands {
        markdown_command(&mut md, named);
    }
    md
}

fn markdown_command(md: &mut String, named: &Named) {
    let Named { name, cmd } = named;
    let is_root = !name.contains(' ');
    let _ = writeln!(md, "\n## `{name}`\n");
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(md, "{}\n", prose(about.to_string().trim_end()));
    }
    let usage = Command::clone(cmd).render_usage().to_string();
    let usage: Vec<&str> = usage
        .lines()
        .map(|line| line.trim_start_matches("Usage:").trim())
        .collect();
    let _ = writeln!(md, "```text\n{}\n```", usage.join("\n"));

    let (globals, own): (Vec<&Arg>, Vec<&Arg>) = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        // `--help` is on every command: the root lists it once, with the globals.
        .filter(|a| is_root || !matches!(a.get_action(), ArgAction::Help | ArgAction::HelpLong))
        .partition(|a| a.is_global_set() || matches!(a.get_action(), ArgAction::Help));
    let (positionals, options): (Vec<&Arg>, Vec<&Arg>) =
        own.into_iter().partition(|a| a.is_positional());
    markdown_args(md, "Arguments", &positionals);
    markdown_args(md, "Options", &options);
    if is_root {
        md.push_str("\n<a id=\"global-options\"></a>\n");
        markdown_args(md, "Global options", &globals);
    }
    let subcommands: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if !subcommands.is_empty() {
        md.push_str("\n### Commands\n\n");
        for sub in subcommands {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let sub_name = format!("{name} {}", sub.get_name());
            let _ = writeln!(
                md,
                "- [`{sub_name}`](#{}): {}",
                sub_name.replace(' ', "-"),
                prose(&about)
            );
        }
    }
}

fn markdown_args(md: &mut String, heading: &str, args: &[&Arg]) {
    if args.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n### {heading}\n");
    for arg in args {
        let _ = writeln!(md, "- `{}`", signature(arg));
        if let Some(help) = arg.get_long_help().or(arg.get_help()) {
            for line in prose(help.to_string().trim_end()).lines() {
                let indent = if line.is_empty() { "" } else { "  " };
                let _ = writeln!(md, "{indent}{line}");
            }
        }
        let details = details(arg);
        if !details.is_empty() {
            let _ = writeln!(md, "  ({})", details.join("; "));
        }
        let described: Vec<_> = possible_values(arg)
            .into_iter()
            .filter_map(|v| {
                v.get_help()
                    .map(|h| (v.get_name().to_owned(), h.to_string()))
            })
            .collect();
        for (name, help) in described {
            let _ = writeln!(md, "  - `{name}`: {}", prose(&help));
        }
    }
}

/// Help text as Markdown: `<` and `>` outside code spans would open HTML tags (`sha256-<hex>.sig`).
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// `-o, --output <DEST>`, `--jobs <JOBS>`, `<SOURCE>`, `[DIR]`.
fn signature(arg: &Arg) -> String {
    let value = arg
        .get_value_names()
        .map(|names| {
            names
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    if arg.is_positional() {
        return if arg.is_required_set() {
            format!("<{value}>")
        } else {
            format!("[{value}]")
        };
    }
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    let mut signature = names.join(", ");
    if arg.get_action().takes_values() {
        let _ = write!(signature, " <{value}>");
    }
    signature
}

/// The default, the possible values and the environment variable, as clap knows them.
fn details(arg: &Arg) -> Vec<String> {
    let mut details = Vec::new();
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| format!("`{}`", v.to_string_lossy()))
        .collect();
    if arg.get_action().takes_values() && !defaults.is_empty() {
        details.push(format!("default: {}", defaults.join(", ")));
    }
    let values: Vec<String> = possible_values(arg)
        .iter()
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    if !values.is_empty() {
        details.push(format!("possible values: {}", values.join(", ")));
    }
    if let Some(env) = arg.get_env() {
        details.push(format!("environment: `{}`", env.to_string_lossy()));
    }
    details
}

fn possible_values(arg: &Arg) -> Vec<clap::builder::PossibleValue> {
    if !arg.get_action().takes_values() {
        return Vec::new();
    }
    arg.get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .collect()
}

// --- Checks of the generated files themselves ---------------------------------

#[test]
fn bash_completion_loads_and_completes_a_subcommand_flag() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = format!(
        "source {BASH_PATH} && complete -p stowage && \
         COMP_WORDS=(stowage build --compr) COMP_CWORD=2 && _stowage stowage --compr build && \
         printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let output = Process::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "sourcing {BASH_PATH} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("-F _stowage stowage"),
        "complete -p printed: {stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == "--compression"),
        "`stowage build --compr<TAB>` completed to: {stdout}"
    );
}

#[test]
fn markdown_reference_names_every_subcommand_and_flag() {
    let cmd = documented_command();
    let md = markdown(&cmd);
    for Named { name, cmd: command } in walk(&cmd) {
        assert!(
            md.contains(&format!("## `{name}`")),
            "no section for {name}"
        );
        for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                assert!(
                    md.contains(&format!("--{long}")),
                    "--{long} of {name} missing"
                );
            }
        }
    }
    assert!(md.contains("## `stowage exports delete`"));
    assert!(md.contains("environment: `STOWAGE_TIMEOUT`"));
    assert!(md.contains("possible values: `gzip`, `zstd`"));
}
