//! Bad input: each case exits non-zero (2 for usage and spec errors, 1 for
//! everything else), says what is wrong on stderr, prints nothing on stdout
//! and leaves no output file behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

use crate::rig::*;

const IMAGE: &str = "localhost/stowage-e2e/bad-input:1";

/// What a failed build said.
struct Failure {
    code: i32,
    stderr: String,
}

impl Failure {
    /// Asserts the message contains `needle` (case-insensitively).
    fn names(&self, needle: &str) -> &Failure {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr should mention {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    /// Asserts the message contains at least one of `needles`.
    fn names_any(&self, needles: &[&str]) -> &Failure {
        let lower = self.stderr.to_lowercase();
        assert!(
            needles.iter().any(|n| lower.contains(&n.to_lowercase())),
            "stderr should mention one of {needles:?}:\n{}",
            self.stderr
        );
        self
    }

    fn code(&self, code: i32) -> &Failure {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        self
    }
}

/// The outputs every failing build is given; none may exist afterwards.
fn output_args(out: &Path) -> Vec<String> {
    vec![
        "-o".into(),
        format!("oci:{}:t", out.join("layout").display()),
        "-o".into(),
        format!("docker-archive:{}:{IMAGE}", out.join("app.tar").display()),
        "-o".into(),
        format!(
            "docker-archive:{}:{IMAGE}",
            out.join("app.tar.gz").display()
        ),
        "--metadata-file".into(),
        out.join("meta.json").display().to_string(),
        "--digest-file".into(),
        out.join("digest.txt").display().to_string(),
    ]
}

/// Runs `cmd` (a `stowage build` whose outputs go to `out`), expects a
/// failure, and checks nothing was written or printed.
fn expect_failure(cmd: &mut Command, out: &Path) -> Failure {
    fs::create_dir_all(out).unwrap();
    let output = cmd.args(output_args(out)).output().expect("run stowage");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "the build should fail; stderr:\n{stderr}"
    );
    let code = output.status.code().expect("exit code, not a signal");
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout when the build fails, got {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains("error:"),
        "errors start with `error:`:\n{stderr}"
    );
    let left: Vec<String> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.is_empty(),
        "a failed build left {left:?} behind; stderr:\n{stderr}"
    );
    Failure { code, stderr }
}

/// The sample app in the sandbox, with `edit` applied to its spec text.
fn app_with_spec(sb: &Sandbox, edit: impl FnOnce(String) -> String) -> PathBuf {
    let spec = write_app(&sb.join("app"), IMAGE);
    let text = fs::read_to_string(&spec).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit must change the spec");
    fs::write(&spec, edited).unwrap();
    spec
}

/// The sample app in the sandbox, spec unchanged.
fn app(sb: &Sandbox) -> PathBuf {
    write_app(&sb.join("app"), IMAGE)
}

fn build_fails(sb: &Sandbox, spec: &Path, extra: &[&str]) -> Failure {
    expect_failure(
        sb.stowage().args(["build", "-f"]).arg(spec).args(extra),
        &sb.join("out"),
    )
}

/// Asserts the message points at line `line` of the spec.
fn names_line(f: &Failure, line: usize) {
    let s = &f.stderr;
    assert!(
        s.contains(&format!("stowage.toml:{line}:"))
            || s.to_lowercase().contains(&format!("line {line}")),
        "stderr should give line {line} of stowage.toml:\n{s}"
    );
}

#[test]
fn missing_spec_file() {
    let sb = Sandbox::new();
    let missing = sb.join("nowhere/stowage.toml");
    build_fails(&sb, &missing, &[])
        .code(2)
        .names("nowhere/stowage.toml");

    // No -f and no ./stowage.toml.
    let empty = sb.mkdir("empty");
    let mut cmd = sb.stowage();
    cmd.current_dir(&empty).arg("build");
    expect_failure(&mut cmd, &sb.join("out2"))
        .code(2)
        .names("stowage.toml");
}

#[test]
fn unknown_key() {
    let sb = Sandbox::new();
    // Line 4, after the comment, base and image lines.
    let spec = app_with_spec(&sb, |t| {
        t.replacen("\n[app]\n", "colour = \"blue\"\n[app]\n", 1)
    });
    let f = build_fails(&sb, &spec, &[]);
    f.code(2).names("colour").names("stowage.toml");
    names_line(&f, 4);

    let sb = Sandbox::new();
    let spec = app_with_spec(&sb, |t| t.replace("entrypoint = ", "entry_point = "));
    build_fails(&sb, &spec, &[]).code(2).names("entry_point");
}

#[test]
fn invalid_toml() {
    let sb = Sandbox::new();
    let spec = app_with_spec(&sb, |t| {
        t.replace("command = [\"greet\"]", "command = [\"greet\"")
    });
    build_fails(&sb, &spec, &[]).code(2).names("stowage.toml");
}

#[test]
fn missing_source_folder() {
    let sb = Sandbox::new();
    let spec = app_with_spec(&sb, |t| {
        t.replace("source = \"library\"", "source = \"no-such-library\"")
    });
    build_fails(&sb, &spec, &[])
        .code(2)
        .names("no-such-library");

    let sb = Sandbox::new();
    let spec = app_with_spec(&sb, |t| {
        t.replace(
            "source = \"library/bin/busybox\"",
            "source = \"no/such/file\"",
        )
    });
    build_fails(&sb, &spec, &[]).code(2).names("no/such/file");
}

#[test]
fn relative_target() {
    let sb = Sandbox::new();
    let spec = app_with_spec(&sb, |t| {
        t.replace("target = \"/opt/app\"", "target = \"opt/app\"")
    });
    build_fails(&sb, &spec, &[])
        .code(2)
        .names("opt/app")
        .names("absolute");
}

#[test]
fn secret_name_in_env() {
    for (name, extra) in [
        ("MY_TOKEN", ""),
        ("DB_PASSWORD", ""),
        ("NUVLA_API_SECRET", ""),
        (
            "DEPLOY_CREDENTIAL",
            "[secrets]\nnames = [\"DEPLOY_CREDENTIAL\"]\n",
        ),
    ] {
        let sb = Sandbox::new();
        let spec = app_with_spec(&sb, |t| {
            let t = t.replace("[env]\n", &format!("[env]\n{name} = \"s3cr3t-value\"\n"));
            format!("{t}{extra}")
        });
        let f = build_fails(&sb, &spec, &[]);
        f.code(2).names(name);
        assert!(
            !f.stderr.contains("s3cr3t-value"),
            "a secret's value is never printed:\n{}",
            f.stderr
        );
    }
}

#[test]
fn fifo_in_the_tree() {
    let sb = Sandbox::new();
    let spec = app(&sb);
    let fifo = sb.join("app/library/share/the-fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success());
    build_fails(&sb, &spec, &[]).code(1).names("the-fifo");
}

#[test]
fn whiteout_name_in_the_tree() {
    let sb = Sandbox::new();
    let spec = app(&sb);
    write_file(&sb.join("app/workspace/data/.wh.foo"), "", 0o644);
    build_fails(&sb, &spec, &[]).code(1).names(".wh.foo");
}

#[test]
fn unreadable_file() {
    let sb = Sandbox::new();
    let spec = app(&sb);
    let secret = sb.join("app/workspace/unreadable.bin");
    write_file(&secret, "you cannot read me", 0o000);
    let out = sb.join("out");
    if !is_root() {
        build_fails(&sb, &spec, &[]).code(1).names("unreadable.bin");
        return;
    }
    // root reads a mode-000 file, so stowage runs as nobody, who cannot.
    if !require_tool("setpriv") {
        return;
    }
    let nobody = 65534;
    let bin = sb.join("bin/stowage");
    fs::create_dir_all(bin.parent().unwrap()).unwrap();
    fs::copy(stowage_bin(), &bin).unwrap();
    fs::create_dir_all(&out).unwrap();
    fs::set_permissions(sb.path(), fs::Permissions::from_mode(0o755)).unwrap();
    chown_tree(sb.path(), nobody);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(["build", "-f"])
        .arg(&spec);
    stowage_env(&mut cmd, &sb.join("cache"));
    expect_failure(&mut cmd, &out)
        .code(1)
        .names("unreadable.bin");
}

fn chown_tree(root: &Path, id: u32) {
    std::os::unix::fs::lchown(root, Some(id), Some(id)).unwrap();
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            chown_tree(&path, id);
        } else {
            std::os::unix::fs::lchown(&path, Some(id), Some(id)).unwrap();
        }
    }
}

#[test]
fn socket_is_skipped_with_a_warning() {
    let sb = Sandbox::new();
    let spec = app(&sb);
    let socket = sb.join("app/workspace/the-socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let out = sb.join("out/layout");
    let assert = sb
        .stowage()
        .args(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:t", out.display()))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("the-socket"),
        "a warning names the skipped socket:\n{stderr}"
    );
    let layout = Layout::open(&out);
    let image = layout.image("t");
    for i in 0..image.layers().len() {
        for e in tar_entries(&layout.layer_tar(&image, i)) {
            assert!(
                !e.path.ends_with(b"the-socket"),
                "the socket is not in the image"
            );
        }
    }
}

/// A spec over `base` (the app's library only; nothing needs to run).
fn app_over(sb: &Sandbox, base: &str) -> PathBuf {
    app_with_spec(sb, |t| {
        t.replace("base = \"scratch\"", &format!("base = \"{base}\""))
    })
}

#[test]
fn truncated_base_archive() {
    let sb = Sandbox::new();
    let full = docker_save_tar("localhost/stowage-e2e/truncated:1");
    // Cut in the middle of the layer: manifest.json and config come first.
    let truncated = sb.join("truncated.tar");
    fs::write(&truncated, &full[..full.len() * 3 / 5]).unwrap();
    let spec = app_over(&sb, &format!("docker-archive:{}", truncated.display()));
    build_fails(&sb, &spec, &[])
        .code(1)
        .names("truncated.tar")
        .names_any(&[
            "truncat",
            "unexpected end",
            "eof",
            "incomplete",
            "short",
            "corrupt",
        ]);

    let sb = Sandbox::new();
    let gz = gzip(&full);
    let truncated = sb.join("truncated.tar.gz");
    fs::write(&truncated, &gz[..gz.len() / 2]).unwrap();
    let spec = app_over(&sb, &format!("docker-archive:{}", truncated.display()));
    build_fails(&sb, &spec, &[])
        .code(1)
        .names("truncated.tar.gz");
}

#[test]
fn base_blob_digest_mismatch() {
    let sb = Sandbox::new();
    let base = sb.join("base");
    let layer = make_layer(&["etc"], &[("etc/original", b"original\n", 0o644)]);
    let desc = write_oci_image(&base, "amd64", &layer);
    let mut desc = desc;
    desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "bad"});
    write_oci_index(&base, &[desc]);
    // Same size, still valid gzip of the same tar (only the gzip header's
    // mtime differs), but no longer the bytes the digest names.
    let layer_digest = sha256_digest(&gzip(&layer));
    let hex = layer_digest.strip_prefix("sha256:").unwrap();
    let blob_path = base.join("blobs/sha256").join(hex);
    let mut other = fs::read(&blob_path).unwrap();
    other[4] ^= 1;
    assert_eq!(decompress(&other), layer);
    fs::write(&blob_path, &other).unwrap();

    let spec = app_over(&sb, &format!("oci:{}:bad", base.display()));
    build_fails(&sb, &spec, &[])
        .code(1)
        .names("digest")
        .names_any(&[&hex[..12], &sha256_hex(&other)[..12]]);
}

fn fails_on_unknown_platform(nested: bool) {
    let sb = Sandbox::new();
    let (base, _, _) = write_multi_platform_base(&sb.join("multi"), nested);
    let spec = app_over(&sb, &base);
    let f = build_fails(&sb, &spec, &["--platform", "linux/s390x"]);
    f.names("s390x");
    assert_ne!(f.code, 0);
}

#[test]
fn unknown_platform_in_a_nested_index() {
    fails_on_unknown_platform(true);
}

#[test]
fn unknown_platform_in_a_flat_index() {
    fails_on_unknown_platform(false);
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::new();
    let spec = app(&sb);
    build_fails(&sb, &spec, &["--no-such-flag"]).code(2);
    build_fails(&sb, &spec, &["--format", "tarball"]).code(2);
    build_fails(&sb, &spec, &["-o", "docker-archive:"]).code(2);
    let out = sb.mkdir("out-cmd");
    let output = sb.stowage().arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "an unknown command");
    assert!(fs::read_dir(out).unwrap().next().is_none());
}
