//! Broken pipes: every command that prints to stdout, piped into `head -1`,
//! `head -c 10` and a pipe whose reader is already gone, ends quietly — no
//! panic, no `error:` line, exit 0 (141 is what a shell reports for a
//! process SIGPIPE killed, which the issue also accepts) — and a build whose
//! reader went away still records its export and leaves no temporary file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, CommandEnvs, Stdio};

use assert_cmd::Command;
use serde_json::Value;

use crate::rig::registry::TestRegistry;
use crate::rig::*;
use crate::sign::key_pair;

const IMAGE: &str = "localhost/stowage-e2e/pipes:1";

/// Where stowage's stdout goes.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// A shell pipeline into this command (no `pipefail`).
    Shell(&'static str),
    /// A pipe whose read end was closed before stowage started: every write fails with EPIPE.
    Gone,
}

const READERS: [Reader; 3] = [
    Reader::Shell("head -1"),
    Reader::Shell("head -c 10"),
    Reader::Gone,
];

/// How stowage ended with its stdout in a reader.
struct Piped {
    code: Option<i32>,
    stderr: String,
}

/// The same program, arguments, environment and folder as `cmd`, as a std command.
fn std_command(cmd: &Command) -> StdCommand {
    let mut std = StdCommand::new(cmd.get_program());
    std.args(cmd.get_args());
    same_environment(&mut std, cmd.get_envs(), cmd.get_current_dir());
    std
}

/// Gives `to` the environment changes `envs` and the folder `dir`.
fn same_environment(to: &mut StdCommand, envs: CommandEnvs<'_>, dir: Option<&Path>) {
    for (key, value) in envs {
        match value {
            Some(value) => to.env(key, value),
            None => to.env_remove(key),
        };
    }
    if let Some(dir) = dir {
        to.current_dir(dir);
    }
}

/// Runs `cmd` with its stdout going into `reader`; stowage's own exit code and stderr.
fn run_into(cmd: &Command, reader: Reader, scratch: &Path) -> Piped {
    let stowage = std_command(cmd);
    match reader {
        Reader::Shell(reader) => {
            let stderr_file = scratch.join("stderr");
            let code_file = scratch.join("code");
            let mut sh = StdCommand::new("sh");
            sh.arg("-c")
                .arg(format!(
                    r#"{{ "$0" "$@" 2>"$PIPES_STDERR"; echo $? >"$PIPES_CODE"; }} | {reader} >/dev/null"#
                ))
                .arg(stowage.get_program())
                .args(stowage.get_args())
                .env("PIPES_STDERR", &stderr_file)
                .env("PIPES_CODE", &code_file);
            same_environment(&mut sh, stowage.get_envs(), stowage.get_current_dir());
            let status = sh.status().expect("run sh");
            assert!(status.success(), "the pipeline's reader {reader} failed");
            let code = fs::read_to_string(&code_file).expect("the pipeline wrote stowage's code");
            Piped {
                code: Some(code.trim().parse().expect("a number")),
                stderr: fs::read_to_string(&stderr_file).expect("stowage's stderr"),
            }
        }
        Reader::Gone => {
            let (read_end, write_end) = std::io::pipe().expect("make a pipe");
            drop(read_end);
            let mut stowage = stowage;
            let out = stowage
                .stdout(Stdio::from(write_end))
                .stderr(Stdio::piped())
                .output()
                .expect("run stowage");
            Piped {
                code: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
    }
}

/// Asserts `what` ended as a Unix tool does when its reader has had enough.
fn assert_quiet(what: &str, reader: Reader, piped: &Piped) {
    assert!(
        matches!(piped.code, Some(0) | Some(141)),
        "{what} into {reader:?}: exit {:?}, stderr:\n{}",
        piped.code,
        piped.stderr
    );
    for bad in ["panicked", "error:", "Broken pipe", "broken pipe"] {
        assert!(
            !piped.stderr.contains(bad),
            "{what} into {reader:?}: stderr says {bad:?}:\n{}",
            piped.stderr
        );
    }
}

/// A command to pipe: its name, and its arguments for run n (which keeps the outputs of runs apart).
type Case<'a> = (&'a str, &'a dyn Fn(usize) -> Vec<String>);

/// Runs every case into every reader.
fn each_into_every_reader(sb: &Sandbox, cases: &[Case<'_>]) {
    let mut run = 0;
    for (what, args) in cases {
        for reader in READERS {
            run += 1;
            let scratch = sb.mkdir(format!("pipe-{run}"));
            let mut cmd = sb.stowage();
            cmd.args(args(run));
            let piped = run_into(&cmd, reader, &scratch);
            assert_quiet(what, reader, &piped);
        }
    }
}

/// The sample app, built once into a layout and a docker archive: what the other commands read.
fn built_app(sb: &Sandbox) -> (PathBuf, String, String) {
    let spec = write_app(&sb.join("app"), IMAGE);
    let layout = format!("oci:{}:t", sb.join("layout").display());
    let archive = format!("docker-archive:{}", sb.join("app.tar").display());
    run_ok(
        sb.stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .args(["-o", &layout, "-o", &archive]),
    );
    (spec, layout, archive)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(ToString::to_string).collect()
}

#[test]
fn every_local_command_ends_quietly_when_its_reader_goes() {
    let sb = Sandbox::new();
    let (spec, layout, archive) = built_app(&sb);
    let spec = spec.display().to_string();
    let out = |run: usize| format!("oci:{}:t", sb.join(format!("out-{run}")).display());
    let cases: [Case<'_>; 14] = [
        ("--help", &|_| strings(&["--help"])),
        ("build --help", &|_| strings(&["build", "--help"])),
        ("init", &|run| {
            let dir = sb.mkdir(format!("init-{run}"));
            strings(&["init", &dir.display().to_string()])
        }),
        ("build --dry-run", &|_| {
            strings(&["build", "--dry-run", "-f", &spec])
        }),
        ("--json build --dry-run", &|_| {
            strings(&["--json", "build", "--dry-run", "-f", &spec])
        }),
        ("build", &|run| {
            strings(&["build", "-f", &spec, "-o", &out(run)])
        }),
        ("--json build", &|run| {
            strings(&["--json", "build", "-f", &spec, "-o", &out(run)])
        }),
        ("inspect", &|_| strings(&["inspect", &layout])),
        ("inspect --raw manifest", &|_| {
            strings(&["inspect", "--raw", "manifest", &layout])
        }),
        ("--json inspect", &|_| {
            strings(&["--json", "inspect", &layout])
        }),
        ("exports", &|_| strings(&["exports"])),
        ("exports list --json", &|_| {
            strings(&["exports", "list", "--json"])
        }),
        ("run-command", &|_| strings(&["run-command", &archive])),
        ("copy", &|run| strings(&["copy", &layout, &out(run)])),
    ];
    each_into_every_reader(&sb, &cases);
}

#[test]
fn registry_commands_end_quietly_when_their_reader_goes() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    if !require_tool("openssl") {
        return;
    }
    let sb = Sandbox::new();
    let (_, layout, _) = built_app(&sb);
    let (key, public) = key_pair(sb.path(), "key");
    let pushed = registry.reference("pipes/app:1");
    let key = key.display().to_string();
    let public = public.display().to_string();
    let cases: [Case<'_>; 5] = [
        ("push", &|run| {
            strings(&[
                "push",
                &layout,
                &registry.reference(&format!("pipes/p{run}:1")),
            ])
        }),
        ("inspect a registry image", &|_| {
            strings(&["inspect", &pushed])
        }),
        ("sign", &|_| strings(&["sign", &pushed, "--key", &key])),
        ("verify", &|_| {
            strings(&["verify", &pushed, "--key", &public])
        }),
        ("run-command of a registry image", &|_| {
            strings(&["run-command", &pushed])
        }),
    ];
    run_ok(sb.stowage().args(["push", &layout, &pushed]));
    each_into_every_reader(&sb, &cases);
}

#[test]
fn a_build_whose_reader_is_gone_still_records_its_export() {
    let sb = Sandbox::new();
    let spec = write_app(&sb.join("app"), IMAGE);
    let out = sb.mkdir("out");
    let dest = format!("docker-archive:{}", out.join("app.tar").display());
    let mut cmd = sb.stowage();
    cmd.args(["build", "-f"]).arg(&spec).args(["-o", &dest]);
    let piped = run_into(&cmd, Reader::Gone, &sb.mkdir("scratch"));
    assert_quiet("build", Reader::Gone, &piped);
    assert!(
        piped.stderr.contains("recorded as export 1"),
        "the record's line still comes:\n{}",
        piped.stderr
    );

    let listed: Value =
        serde_json::from_str(&run_ok(sb.stowage().args(["exports", "list", "--json"])))
            .expect("exports list --json is JSON");
    let records = listed.as_array().expect("a list");
    assert_eq!(records.len(), 1, "{listed:#}");
    assert_eq!(records[0]["status"], "ok", "{listed:#}");
    let names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["app.tar"], "the archive and no temporary file");
}
