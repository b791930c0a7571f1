//! The build's progress as a user sees it: bars on a terminal (stowage run under a pseudo-terminal by `script`), plain lines when stderr is a file, nothing with `-q`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

use crate::rig::require_tool;

/// A scratch app whose library is a few MiB, so the bars move through several batches.
fn app(root: &Path) -> PathBuf {
    let library = root.join("app/library");
    let workspace = root.join("app/workspace");
    std::fs::create_dir_all(&library).unwrap();
    std::fs::create_dir_all(&workspace).unwrap();
    // xorshift bytes: incompressible like real binaries, and the same every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..6 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(library.join("blob.so"), data).unwrap();
    std::fs::write(workspace.join("notes.txt"), "notes\n").unwrap();
    let spec = root.join("app/stowage.toml");
    std::fs::write(
        &spec,
        r#"base = "scratch"

[app]
library = { source = "library", target = "/opt/app" }
workspace = { source = "workspace", target = "/home/user/work" }
"#,
    )
    .unwrap();
    spec
}

/// `cmd` with stowage's cache, state and credential files inside `root`.
fn in_sandbox(mut cmd: Command, root: &Path) -> Command {
    cmd.env("STOWAGE_CACHE_DIR", root.join("cache"))
        .env("STOWAGE_STATE_DIR", root.join("state"))
        .env("XDG_CACHE_HOME", root.join("xdg-cache"))
        .env("XDG_STATE_HOME", root.join("xdg-state"))
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .env("REGISTRY_AUTH_FILE", root.join("auth.json"))
        .env("TERM", "xterm")
        .env_remove("SOURCE_DATE_EPOCH")
        .current_dir(root)
        .write_stdin("")
        .timeout(Duration::from_secs(300));
    cmd
}

fn build_args(spec: &Path, out: &str) -> Vec<String> {
    vec![
        "build".into(),
        "-f".into(),
        spec.display().to_string(),
        "-o".into(),
        out.into(),
    ]
}

fn quoted(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Runs `stowage build` of `spec` into `oci:ROOT/out` with stderr piped (not a terminal); returns stderr.
fn build_to_a_pipe(root: &Path, spec: &Path, out: &str, extra: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stowage"));
    cmd.args(extra).args(build_args(
        spec,
        &format!("oci:{}", root.join(out).display()),
    ));
    let done = in_sandbox(cmd, root).output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    assert!(done.status.success(), "{stderr}");
    stderr
}

#[test]
fn a_terminal_gets_bars() {
    if !require_tool("script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spec = app(root);
    // `script` runs stowage with a pseudo-terminal as its stderr and copies
    // everything stowage drew to its own stdout.
    let line: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_stowage").to_string())
        .chain(build_args(
            &spec,
            &format!("oci:{}", root.join("out").display()),
        ))
        .map(|w| quoted(&w))
        .collect();
    let mut script = Command::new("script");
    script.args(["-qfec", &line.join(" "), "/dev/null"]);
    let tty = in_sandbox(script, root).output().unwrap();
    let screen = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{screen}");
    assert!(
        screen.contains("\x1b[") && screen.contains('\r'),
        "indicatif redraws with cursor moves: {screen:?}"
    );
    for bar in [
        "library-1of1 [",
        "all layers [",
        "MiB/s",
        "ETA",
        "/ 6.00 MiB",
    ] {
        assert!(screen.contains(bar), "a bar shows {bar:?}: {screen:?}");
    }
    assert!(
        screen.contains("layer library-1of1 ") && screen.contains("wrote oci:"),
        "the usual lines follow the bars: {screen:?}"
    );
    assert!(
        !screen.contains("build: library"),
        "no plain lines on a terminal"
    );
}

#[test]
fn a_file_gets_plain_lines_and_quiet_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spec = app(root);

    let cold = build_to_a_pipe(root, &spec, "cold", &[]);
    assert!(!cold.contains('\x1b') && !cold.contains('\r'), "{cold:?}");
    for line in [
        "build: library-1of1 done: 6.0 MiB in ",
        "build: workspace done: 6 B in ",
        "layer library-1of1 ",
        "wrote oci:",
    ] {
        assert!(cold.contains(line), "{line:?} in:\n{cold}");
    }

    let warm = build_to_a_pipe(root, &spec, "warm", &[]);
    assert!(!warm.contains('\x1b') && !warm.contains('\r'), "{warm:?}");
    for line in [
        "build: library-1of1 taken from the layer cache (",
        "build: workspace taken from the layer cache (",
    ] {
        assert!(warm.contains(line), "{line:?} in:\n{warm}");
    }

    let quiet = build_to_a_pipe(root, &spec, "quiet", &["-q"]);
    assert_eq!(quiet, "", "-q prints no progress");
}
