//! End-to-end tests of `parse_spec` and `read_spec`: spec text in, a `Spec`
//! or an error with its position, message and hint out.

use std::path::{Path, PathBuf};

use super::validator::line_col;
use super::*;

/// A project folder with a library, a workspace and a start script.
pub(super) struct Project {
    pub(super) dir: tempfile::TempDir,
}

impl Project {
    pub(super) fn new() -> Project {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        for folder in ["library", "workspace", "scripts"] {
            if let Err(e) = std::fs::create_dir(dir.path().join(folder)) {
                panic!("{folder}: {e}");
            }
        }
        if let Err(e) = std::fs::write(dir.path().join("scripts/start.sh"), "#!/bin/sh\n") {
            panic!("start.sh: {e}");
        }
        Project { dir }
    }

    fn spec_path(&self) -> PathBuf {
        self.dir.path().join(SPEC_FILE_NAME)
    }

    fn parse(&self, text: &str) -> Result<Spec, SpecError> {
        parse_spec(text, &self.spec_path())
    }

    fn ok(&self, text: &str) -> Spec {
        match self.parse(text) {
            Ok(s) => s,
            Err(e) => panic!("{e} (hint: {:?})", e.hint()),
        }
    }

    fn err(&self, text: &str) -> SpecError {
        match self.parse(text) {
            Ok(s) => panic!("parsed: {s:?}"),
            Err(e) => e,
        }
    }
}

const MINIMAL: &str = "[app]\nlibrary = { source = \"library\", target = \"/opt/app\" }\n";

/// 1-based line and column of the first `needle` in `text`.
fn at(text: &str, needle: &str) -> (usize, usize) {
    match text.find(needle) {
        Some(i) => line_col(text, i),
        None => panic!("{needle:?} not in {text:?}"),
    }
}

/// Asserts the error's position, that its Display carries the file and position, and that it has a hint.
fn check(e: &SpecError, text: &str, needle: &str, says: &str) {
    let (line, col) = at(text, needle);
    assert_eq!(e.line_col(), Some((line, col)), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}:{line}:{col}: ", e.path().display())),
        "{shown}"
    );
    assert!(shown.contains(says), "{shown:?} should say {says:?}");
    assert!(e.hint().is_some_and(|h| !h.is_empty()), "{e} has no hint");
    assert!(
        !shown.contains(e.hint().unwrap_or("\u{0}")),
        "hint leaked into Display"
    );
}

#[test]
fn design_example_parses() {
    let p = Project::new();
    let text = r#"
base = "docker.io/library/python:3.12-slim"
image = "docker.io/acme/public:my-notebook"
platform = "linux/amd64"

[app]
library   = { source = "library",   target = "/opt/app" }
workspace = { source = "workspace", target = "/home/user/work" }
exclude   = ["**/__pycache__", "*.pyc"]
entrypoint = ["/opt/app/start.sh"]
command   = ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888"]
ports     = ["8888/tcp"]
workdir   = "/home/user/work"
user      = "1000:100"

[[files]]
source = "scripts/start.sh"
target = "/opt/app/start.sh"
mode   = "0755"

[env]
PATH = "/opt/app/bin:${PATH}"

[secrets]
names = ["API_TOKEN"]

[labels]
"org.opencontainers.image.source" = "https://example.org/repo"
"#;
    let s = p.ok(text);
    let root = match std::path::absolute(p.dir.path()) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(s.path, p.spec_path());
    assert_eq!(s.base_text, "docker.io/library/python:3.12-slim");
    assert_eq!(
        s.base.to_string(),
        "docker://docker.io/library/python:3.12-slim"
    );
    assert_eq!(
        s.image.as_ref().map(ToString::to_string).as_deref(),
        Some("docker://docker.io/acme/public:my-notebook")
    );
    assert_eq!(
        s.platform.as_ref().map(ToString::to_string).as_deref(),
        Some("linux/amd64")
    );
    assert_eq!(s.library.as_ref().unwrap().source, root.join("library"));
    assert_eq!(s.library.as_ref().unwrap().target, "/opt/app");
    assert_eq!(
        s.library.as_ref().unwrap().owner,
        Owner {
            uid: 1000,
            gid: 100
        }
    );
    let ws = s
        .workspace
        .as_ref()
        .map(|w| (w.source.clone(), w.target.clone(), w.owner));
    assert_eq!(
        ws,
        Some((
            root.join("workspace"),
            "/home/user/work".to_string(),
            Owner {
                uid: 1000,
                gid: 100
            }
        ))
    );
    assert_eq!(s.exclude, ["**/__pycache__", "*.pyc"]);
    assert_eq!(s.entrypoint, Some(vec!["/opt/app/start.sh".to_string()]));
    assert_eq!(s.command.as_ref().map(Vec::len), Some(4));
    assert_eq!(s.ports, ["8888/tcp"]);
    assert_eq!(s.workdir.as_deref(), Some("/home/user/work"));
    assert_eq!(s.user.as_deref(), Some("1000:100"));
    assert_eq!(s.files.len(), 1);
    assert_eq!(s.files[0].source, root.join("scripts/start.sh"));
    assert_eq!(s.files[0].target, "/opt/app/start.sh");
    assert_eq!(s.files[0].mode, Some(0o755));
    assert_eq!(
        s.files[0].owner,
        Owner {
            uid: 1000,
            gid: 100
        }
    );
    assert_eq!(
        s.env,
        [("PATH".to_string(), "/opt/app/bin:${PATH}".to_string())]
    );
    assert_eq!(s.secret_names, ["API_TOKEN"]);
    assert_eq!(
        s.labels
            .get("org.opencontainers.image.source")
            .map(String::as_str),
        Some("https://example.org/repo")
    );
}

#[test]
fn minimal_spec_defaults() {
    let p = Project::new();
    let s = p.ok(MINIMAL);
    assert_eq!(s.base_text, "scratch");
    assert_eq!(s.library.as_ref().unwrap().owner, Owner { uid: 0, gid: 0 });
    assert!(s.workspace.is_none() && s.image.is_none() && s.entrypoint.is_none());
    assert!(s.command.is_none() && s.ports.is_empty() && s.files.is_empty());
    assert!(s.env.is_empty() && s.labels.is_empty() && s.exclude.is_empty());
}

#[test]
fn library_as_a_table_section() {
    let p = Project::new();
    let s =
        p.ok("[app.library]\nsource = \"./library/\"\ntarget = \"/opt/app\"\nowner = \"5:6\"\n");
    assert_eq!(s.library.as_ref().unwrap().owner, Owner { uid: 5, gid: 6 });
    assert!(s.library.as_ref().unwrap().source.ends_with("library"));
}

#[test]
fn relative_sources_resolve_against_the_spec_folder() {
    let p = Project::new();
    let sub = p.dir.path().join("sub");
    if let Err(e) = std::fs::create_dir(&sub) {
        panic!("{e}");
    }
    let text = "[app]\nlibrary = { source = \"../library\", target = \"/opt/app\" }\n";
    let s = match parse_spec(text, &sub.join(SPEC_FILE_NAME)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert!(s.library.as_ref().unwrap().source.is_absolute());
    assert!(s.library.as_ref().unwrap().source.is_dir());
    let abs = p.dir.path().join("library");
    let text = format!(
        "[app]\nlibrary = {{ source = \"{}\", target = \"/opt/app\" }}\n",
        abs.display()
    );
    let s = match parse_spec(&text, Path::new("/nonexistent/stowage.toml")) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(s.library.as_ref().unwrap().source, abs);
}

#[test]
fn env_keeps_file_order() {
    let p = Project::new();
    let s = p.ok(&format!(
        "{MINIMAL}[env]\nZED = \"1\"\nALPHA = \"${{ZED}}\"\nMID = \"\"\n_x9 = \"y\"\n"
    ));
    let names: Vec<&str> = s.env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["ZED", "ALPHA", "MID", "_x9"]);
    assert_eq!(s.env[1].1, "${ZED}");
}

#[test]
fn targets_are_normalised() {
    let p = Project::new();
    let text = "[app]\nlibrary = { source = \"library\", target = \"//opt//app/./\" }\nworkdir = \"/work/\"\n\n[[files]]\nsource = \"scripts/start.sh\"\ntarget = \"/opt/app//start.sh\"\n";
    let s = p.ok(text);
    assert_eq!(s.library.as_ref().unwrap().target, "/opt/app");
    assert_eq!(s.files[0].target, "/opt/app/start.sh");
    assert_eq!(s.files[0].mode, None);
    assert_eq!(s.workdir.as_deref(), Some("/work"));
    assert_eq!(
        p.ok(&format!("{MINIMAL}workdir = \"/\"\n"))
            .workdir
            .as_deref(),
        Some("/")
    );
}

#[test]
fn ports_are_normalised() {
    let p = Project::new();
    let s = p.ok(&format!(
        "{MINIMAL}ports = [\"8888\", \"53/UDP\", \"9/sctp\", 80, \"065535\", \"1/tcp\"]\n"
    ));
    assert_eq!(
        s.ports,
        [
            "8888/tcp",
            "53/udp",
            "9/sctp",
            "80/tcp",
            "65535/tcp",
            "1/tcp"
        ]
    );
}

#[test]
fn bad_ports() {
    let p = Project::new();
    for bad in [
        "\"0\"",
        "\"65536\"",
        "\"80/icmp\"",
        "\"\"",
        "\"http\"",
        "\"8000-8010\"",
        "\"+80\"",
        "-1",
        "true",
        "\"80/\"",
    ] {
        let text = format!("{MINIMAL}ports = [\"22\", {bad}]\n");
        let e = p.err(&text);
        check(&e, &text, bad, "port");
    }
    let text = format!("{MINIMAL}ports = [\"22\", \"22/tcp\"]\n");
    check(&p.err(&text), &text, "\"22/tcp\"", "listed twice");
}

#[test]
fn modes() {
    let p = Project::new();
    let file = |mode: &str| {
        format!(
            "{MINIMAL}[[files]]\nsource = \"scripts/start.sh\"\ntarget = \"/s\"\nmode = {mode}\n"
        )
    };
    for (mode, want) in [
        ("\"0755\"", 0o755),
        ("\"755\"", 0o755),
        ("\"4755\"", 0o4755),
        ("\"0o644\"", 0o644),
        ("0o7777", 0o7777),
        ("\"0\"", 0),
    ] {
        assert_eq!(p.ok(&file(mode)).files[0].mode, Some(want), "{mode}");
    }
    for bad in [
        "\"0788\"",
        "\"17777\"",
        "\"rwx\"",
        "\"\"",
        "755",
        "0o17777",
        "\"-1\"",
        "1.5",
    ] {
        let text = file(bad);
        check(&p.err(&text), &text, &format!("= {bad}")[2..], "mode");
    }
}

#[test]
fn spec_file_missing() {
    let p = Project::new();
    let path = p.dir.path().join("nope.toml");
    let e = match read_spec(&path) {
        Ok(s) => panic!("{s:?}"),
        Err(e) => e,
    };
    assert_eq!(e.line_col(), None);
    assert_eq!(
        e.to_string(),
        format!("{}: spec file not found", path.display())
    );
    assert!(
        e.hint()
            .is_some_and(|h| h.contains("stowage init") && h.contains("-f"))
    );
    let e = match read_spec(p.dir.path()) {
        Ok(s) => panic!("{s:?}"),
        Err(e) => e,
    };
    assert_eq!(e.line_col(), None);
    assert!(e.hint().is_some_and(|h| h.contains(SPEC_FILE_NAME)));
}

#[test]
fn read_spec_reads_the_file() {
    let p = Project::new();
    if let Err(e) = std::fs::write(p.spec_path(), MINIMAL) {
        panic!("{e}");
    }
    match read_spec(&p.spec_path()) {
        Ok(s) => assert_eq!(s.library.as_ref().unwrap().target, "/opt/app"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn toml_syntax_error() {
    let p = Project::new();
    let text = "base = \"alpine\"\n[app\nlibrary = 1\n";
    let e = p.err(text);
    assert_eq!(e.line_col(), Some((2, 5)), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2:5: ", p.spec_path().display()))
    );
    assert!(e.hint().is_some());
    let text = "base = \"alpine\nx = 1\n";
    assert_eq!(p.err(text).line_col().map(|(l, _)| l), Some(1));
    let text = format!("{MINIMAL}[env]\nA = \"1\"\nA = \"2\"\n");
    let e = p.err(&text);
    assert_eq!(e.line_col(), Some((5, 1)), "{e}");
    assert!(e.hint().is_some_and(|h| h.contains("once")));
}

#[test]
fn unknown_keys_at_every_level() {
    let p = Project::new();
    let cases = [
        (format!("bsae = \"alpine\"\n{MINIMAL}"), "bsae", "`base`"),
        (format!("{MINIMAL}[extra]\nx = 1\n"), "extra", "`labels`"),
        (
            format!("{MINIMAL}comand = [\"x\"]\n"),
            "comand",
            "`command`",
        ),
        (
            "[app]\nlibrary = { source = \"library\", target = \"/opt/app\", mode = \"0755\" }\n"
                .to_string(),
            "mode",
            "`owner`",
        ),
        (
            format!(
                "{MINIMAL}[[files]]\nsource = \"scripts/start.sh\"\ntarget = \"/s\"\nmod = \"0755\"\n"
            ),
            "mod =",
            "`mode`",
        ),
        (
            format!("{MINIMAL}[secrets]\nname = [\"X\"]\n"),
            "name =",
            "`names`",
        ),
    ];
    for (text, needle, valid) in &cases {
        let e = p.err(text);
        check(&e, text, needle, "unknown key `");
        assert!(
            e.hint()
                .is_some_and(|h| h.starts_with("valid keys here") && h.contains(valid)),
            "{:?}",
            e.hint()
        );
    }
}

#[test]
fn wrong_types() {
    let p = Project::new();
    let cases = [
        (format!("base = 3\n{MINIMAL}"), "3", "expected a string"),
        ("app = \"x\"\n".to_string(), "\"x\"", "expected a table"),
        (
            "[app]\nlibrary = \"library\"\n".to_string(),
            "\"library\"",
            "expected a table",
        ),
        (
            format!("{MINIMAL}command = \"jupyter lab\"\n"),
            "\"jupyter lab\"",
            "expected a sequence",
        ),
        (
            format!("{MINIMAL}command = [\"a\", 2]\n"),
            "2]",
            "expected a string",
        ),
        (
            format!("{MINIMAL}[files]\nsource = \"x\"\n"),
            "[files]",
            "expected a sequence",
        ),
    ];
    for (text, needle, says) in &cases {
        check(&p.err(text), text, needle, says);
    }
    let text = format!("{MINIMAL}[env]\nPORT = 8888\n");
    let e = p.err(&text);
    check(&e, &text, "8888", "must be a string");
    assert_eq!(e.hint(), Some("quote it: PORT = \"8888\""));
    let text = format!("{MINIMAL}[labels]\norg.opencontainers.image.source = \"x\"\n");
    let e = p.err(&text);
    check(&e, &text, "org.", "is a table");
    assert!(e.hint().is_some_and(|h| h.contains("quote")));
}

#[test]
fn a_base_plus_files_needs_no_library() {
    let p = Project::new();
    let s = p.ok("base = \"alpine\"\n[app]\nentrypoint = [\"/opt/app/start.sh\"]\n\n\
         [[files]]\nsource = \"scripts/start.sh\"\ntarget = \"/opt/app/start.sh\"\nmode = \"0755\"\n");
    assert!(s.library.is_none());
    assert_eq!(s.files.len(), 1);
    let s = p.ok("[app]\nworkspace = { source = \"workspace\", target = \"/w\" }\n");
    assert!(s.library.is_none() && s.workspace.is_some());
}

#[test]
fn missing_app_or_library() {
    let p = Project::new();
    let text = "base = \"alpine\"\n";
    let e = p.err(text);
    assert_eq!(e.line_col(), Some((1, 1)));
    assert!(e.to_string().contains("missing [app]"));
    assert!(e.hint().is_some_and(|h| h.contains("library")));
    let text = "base = \"alpine\"\n\n[app]\ncommand = [\"x\"]\n";
    check(&p.err(text), text, "[app]", "the image adds nothing");
    let text = "[app]\nlibrary = { target = \"/opt/app\" }\n";
    check(&p.err(text), text, "{ target", "no `source`");
    let text = "[app]\nlibrary = { source = \"library\" }\n";
    check(&p.err(text), text, "{ source", "no `target`");
    let text = format!("{MINIMAL}[[files]]\ntarget = \"/s\"\n");
    check(&p.err(&text), &text, "[[files]]", "no `source`");
}

#[test]
fn missing_or_wrong_kind_of_source() {
    let p = Project::new();
    let text = "[app]\nlibrary = { source = \"libary\", target = \"/opt/app\" }\n";
    let e = p.err(text);
    check(&e, text, "\"libary\"", "does not exist");
    let resolved = match std::path::absolute(p.dir.path().join("libary")) {
        Ok(r) => r,
        Err(err) => panic!("{err}"),
    };
    assert!(e.message().contains(&resolved.display().to_string()), "{e}");

    let text =
        format!("{MINIMAL}workspace = {{ source = \"scripts/start.sh\", target = \"/w\" }}\n");
    check(&p.err(&text), &text, "\"scripts/start.sh\"", "not a folder");

    let text = format!("{MINIMAL}[[files]]\nsource = \"scripts\"\ntarget = \"/s\"\n");
    check(&p.err(&text), &text, "\"scripts\"", "not a regular file");

    let text = format!("{MINIMAL}[[files]]\nsource = \"scripts/stop.sh\"\ntarget = \"/s\"\n");
    check(
        &p.err(&text),
        &text,
        "\"scripts/stop.sh\"",
        "does not exist",
    );

    let text = "[app]\nlibrary = { source = \"\", target = \"/opt/app\" }\n";
    check(&p.err(text), text, "\"\"", "empty");
}

#[test]
fn bad_targets() {
    let p = Project::new();
    for (target, says) in [
        ("opt/app", "not an absolute path"),
        ("", "not an absolute path"),
        ("/opt/../etc", "`..`"),
        ("/", "root"),
        ("//./", "root"),
    ] {
        let text = format!("[app]\nlibrary = {{ source = \"library\", target = \"{target}\" }}\n");
        let e = p.err(&text);
        check(&e, &text, &format!("\"{target}\" }}"), says);
    }
    let text = "[app]\nlibrary = { source = \"library\", target = \"opt/app\" }\n";
    assert!(
        p.err(text)
            .hint()
            .is_some_and(|h| h.contains("\"/opt/app\""))
    );
    let text =
        format!("{MINIMAL}[[files]]\nsource = \"scripts/start.sh\"\ntarget = \"start.sh\"\n");
    check(&p.err(&text), &text, "\"start.sh\"", "not an absolute path");
    let text = format!("{MINIMAL}workdir = \"work\"\n");
    check(&p.err(&text), &text, "\"work\"", "workdir");
}

#[test]
fn secrets_in_env_are_refused() {
    let p = Project::new();
    for name in [
        "NUVLA_API_KEY",
        "NUVLA_API_SECRET",
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "db_password",
        "Some_Api_Key",
    ] {
        let text = format!("{MINIMAL}[env]\nOK = \"1\"\n{name} = \"x\"\n");
        let e = p.err(&text);
        check(&e, &text, &format!("{name} ="), "deny-list");
        assert!(
            e.hint()
                .is_some_and(|h| h.contains(&format!("docker run -e {name}"))
                    && h.contains("[secrets] names")),
            "{:?}",
            e.hint()
        );
    }
    let text = format!("{MINIMAL}[env]\nDB_URL = \"x\"\n[secrets]\nnames = [\"DB_URL\"]\n");
    check(&p.err(&text), &text, "DB_URL =", "[secrets] names");
    let text = format!("{MINIMAL}[env]\ndb_url = \"x\"\n[secrets]\nnames = [\"DB_URL\"]\n");
    assert_eq!(p.ok(&text).env.len(), 1, "extra names are case-sensitive");
    let text = format!("{MINIMAL}[secrets]\nnames = [\"OK\", \"1BAD\"]\n");
    check(
        &p.err(&text),
        &text,
        "\"1BAD\"",
        "not an environment variable name",
    );
}

#[test]
fn bad_env_names() {
    let p = Project::new();
    for name in ["\"1X\"", "\"A-B\"", "\"\"", "\"A B\"", "\"É\""] {
        let text = format!("{MINIMAL}[env]\n{name} = \"x\"\n");
        check(
            &p.err(&text),
            &text,
            &format!("{name} ="),
            "not an environment variable name",
        );
    }
}

#[test]
fn empty_command_or_entrypoint() {
    let p = Project::new();
    for key in ["command", "entrypoint"] {
        let text = format!("{MINIMAL}{key} = []\n");
        check(&p.err(&text), &text, "[]", "empty list");
        let text = format!("{MINIMAL}{key} = [\"\", \"x\"]\n");
        check(&p.err(&text), &text, "\"\",", "empty program");
    }
    assert_eq!(
        p.ok(&format!("{MINIMAL}command = [\"a\", \"\"]\n")).command,
        Some(vec!["a".to_string(), String::new()])
    );
}

#[test]
fn owners_follow_user() {
    let p = Project::new();
    let with_user = |user: &str| {
        format!(
            "[app]\nlibrary = {{ source = \"library\", target = \"/opt/app\" }}\nuser = \"{user}\"\n"
        )
    };
    for (user, owner) in [
        ("1000:100", (1000, 100)),
        ("1000", (1000, 0)),
        ("root", (0, 0)),
        ("root:root", (0, 0)),
        ("0:5", (0, 5)),
        ("4294967295:1", (4294967295, 1)),
    ] {
        assert_eq!(
            p.ok(&with_user(user)).library.unwrap().owner,
            Owner {
                uid: owner.0,
                gid: owner.1
            },
            "{user}"
        );
    }
    // A name waits for the base's /etc/passwd: the entry remembers it and where it was written.
    for (user, name, group) in [
        ("jovyan", "jovyan", None),
        ("1000:users", "1000", Some("users")),
        ("www-data:33", "www-data", Some("33")),
    ] {
        let s = p.ok(&with_user(user));
        let named = s.library.as_ref().unwrap().owner_name.clone().unwrap();
        assert_eq!((named.user.as_str(), named.group.as_deref()), (name, group));
        assert_eq!(named.position, (3, 8));
        assert_eq!(s.owner_names().len(), 1);
        let resolved = s.with_owners(|_| Ok(Owner { uid: 7, gid: 8 })).unwrap();
        assert_eq!(resolved.library.unwrap().owner, Owner { uid: 7, gid: 8 });
    }
    for user in ["", "a:b:c", "1000:", ":100", "a b"] {
        let text = with_user(user);
        check(&p.err(&text), &text, &format!("\"{user}\""), "is not USER");
    }
    let text = "[app]\nlibrary = { source = \"library\", target = \"/opt/app\", owner = \"1:2\" }\nuser = \"jovyan\"\n[[files]]\nsource = \"scripts/start.sh\"\ntarget = \"/s\"\nowner = \"3\"\n";
    let s = p.ok(text);
    assert_eq!(
        (s.library.as_ref().unwrap().owner, s.files[0].owner),
        (Owner { uid: 1, gid: 2 }, Owner { uid: 3, gid: 0 })
    );
    assert_eq!(s.user.as_deref(), Some("jovyan"));
    let text = "[app]\nlibrary = { source = \"library\", target = \"/opt/app\", owner = \"1:2\" }\nuser = \"jovyan\"\n[[files]]\nsource = \"scripts/start.sh\"\ntarget = \"/s\"\n";
    let s = p.ok(text);
    assert!(s.library.as_ref().unwrap().owner_name.is_none());
    assert_eq!(s.files[0].owner_name.as_ref().unwrap().user, "jovyan");
    for owner in ["x", "1:", "-1:0", "4294967296:0", "1:2:3"] {
        let text = format!(
            "[app]\nlibrary = {{ source = \"library\", target = \"/opt/app\", owner = \"{owner}\" }}\n"
        );
        check(
            &p.err(&text),
            &text,
            &format!("\"{owner}\""),
            "not a numeric UID:GID",
        );
    }
}

#[test]
fn base_and_image() {
    let p = Project::new();
    for base in [
        "scratch",
        "alpine",
        "docker-archive:/tmp/x.tar",
        "oci:./layout:1",
    ] {
        assert_eq!(
            p.ok(&format!("base = \"{base}\"\n{MINIMAL}")).base_text,
            base
        );
    }
    for (key, value, says) in [
        ("base", "", "`base` is empty"),
        ("base", "  ", "`base` is empty"),
        ("image", "", "`image` is empty"),
        ("base", "Alpine", "lowercase"),
        ("image", "scratch", "cannot be \"scratch\""),
        ("image", "docker:acme/app", "docker://"),
    ] {
        let text = format!("{key} = \"{value}\"\n{MINIMAL}");
        let e = p.err(&text);
        check(&e, &text, &format!("\"{value}\""), says);
    }
    let text = format!("base = \"Alpine\"\n{MINIMAL}");
    assert_eq!(
        p.err(&text).hint(),
        Some("names must be lowercase: try `alpine`")
    );
}

#[test]
fn platforms() {
    let p = Project::new();
    for ok in ["linux/amd64", "linux/arm64/v8", "windows/amd64"] {
        assert_eq!(
            p.ok(&format!("platform = \"{ok}\"\n{MINIMAL}"))
                .platform
                .map(|p| p.to_string())
                .as_deref(),
            Some(ok)
        );
    }
    for bad in [
        "linux",
        "linux/",
        "Linux/AMD64",
        "a/b/c/d",
        "",
        "linux/arm-x",
    ] {
        let text = format!("platform = \"{bad}\"\n{MINIMAL}");
        check(&p.err(&text), &text, &format!("\"{bad}\""), "OS/ARCH");
    }
}

#[test]
fn exclude_patterns() {
    let p = Project::new();
    let s = p.ok(&format!(
        "{MINIMAL}exclude = [\"*.pyc\", \"!keep.pyc\", \"**/node_modules\", \"a/[bc]\"]\n"
    ));
    assert_eq!(
        s.exclude,
        ["*.pyc", "!keep.pyc", "**/node_modules", "a/[bc]"]
    );
    for bad in ["\"\"", "\"!\"", "\"a/[bc\""] {
        let text = format!("{MINIMAL}exclude = [\"ok\", {bad}]\n");
        check(&p.err(&text), &text, &format!("{bad}]"), "exclude pattern");
    }
}

#[test]
fn labels() {
    let p = Project::new();
    let s = p.ok(&format!("{MINIMAL}[labels]\n\"b.x\" = \"2\"\na = \"1\"\n"));
    assert_eq!(
        s.labels.into_iter().collect::<Vec<_>>(),
        [
            ("a".to_string(), "1".to_string()),
            ("b.x".to_string(), "2".to_string())
        ]
    );
    let text = format!("{MINIMAL}[labels]\n\"\" = \"x\"\n");
    check(&p.err(&text), &text, "\"\" =", "empty");
}

#[test]
fn secret_allow_paths_are_normalised_image_paths() {
    let p = Project::new();
    let text = format!(
        "{MINIMAL}[secrets]\nallow = [\"/opt/app//tests/\", \"/home/user/work/.ssh/id_ed25519\"]\n"
    );
    assert_eq!(
        p.ok(&text).secret_allow,
        ["/opt/app/tests", "/home/user/work/.ssh/id_ed25519"]
    );
    let text = format!("{MINIMAL}[secrets]\nallow = [\"tests/key.pem\"]\n");
    check(
        &p.err(&text),
        &text,
        "\"tests/key.pem\"",
        "not an absolute path",
    );
}

#[test]
fn relocate_is_on_by_default_and_for_the_library_only() {
    let p = Project::new();
    let s = p.ok(MINIMAL);
    assert!(s.library.as_ref().unwrap().relocate);
    assert_eq!(s.library.as_ref().unwrap().position, (2, 11));
    let s = p
        .ok("[app]\nlibrary = { source = \"library\", target = \"/opt/app\", relocate = false }\n");
    assert!(!s.library.as_ref().unwrap().relocate);
    let text = "[app]\nlibrary = { source = \"library\", target = \"/opt/app\" }\nworkspace = { source = \"workspace\", target = \"/w\", relocate = true }\n";
    check(
        &p.err(text),
        text,
        "true }",
        "`relocate` applies to the library only",
    );
}

#[test]
fn secret_values_are_found_with_their_place_and_masked() {
    let p = Project::new();
    // 30 random characters and their base62 CRC32, as GitHub issues tokens.
    let token = format!("ghp_{}{}", "lwCgDRcY38nymU2khdWAeRzFlQjsCo", "3udYzQ");
    let password = "s3cr3t-pw";
    let url = format!("postgres://admin:{password}@db.internal/prod");
    let cases = [
        (
            "[env]\nGITHUB_PAT",
            "env.GITHUB_PAT",
            token.as_str(),
            "github-token",
        ),
        (
            "[env]\nDATABASE_URL",
            "env.DATABASE_URL",
            url.as_str(),
            "url-credentials",
        ),
        (
            "[labels]\n\"org.x\"",
            "labels.org.x",
            token.as_str(),
            "github-token",
        ),
    ];
    for (head, key, value, rule) in cases {
        let text = format!("{MINIMAL}{head} = \"{value}\"\n");
        let spec = p.ok(&text);
        let e = match spec.check_values(&[]) {
            Ok(()) => panic!("{key} passed"),
            Err(e) => e,
        };
        check(&e, &text, &format!("\"{value}\""), rule);
        let hint = e.hint().unwrap_or_default();
        assert!(hint.contains(&format!("--allow-secret {key}")), "{hint}");
        for shown in [e.to_string(), hint.to_string()] {
            assert!(!shown.contains(value), "{shown}");
            assert!(!shown.contains(password), "{shown}");
        }
        assert!(spec.check_values(&[key.to_string()]).is_ok());
    }
    let text = format!("{MINIMAL}[env]\nGITHUB_PAT = \"{token}\"\n");
    let hint = p
        .ok(&text)
        .check_values(&[])
        .err()
        .and_then(|e| e.hint().map(str::to_string));
    assert!(
        hint.as_deref().is_some_and(
            |h| h.contains("docker run -e GITHUB_PAT") && h.contains("[secrets] names")
        ),
        "{hint:?}"
    );
}

#[test]
fn secret_values_in_argument_lists_and_allowed_in_the_spec() {
    let p = Project::new();
    let token = format!("glpat-{}", "x7Qk2Zr9-Lm4Tn_Vb8Wd");
    let text = format!("{MINIMAL}command = [\"python3\", \"app.py\", \"--token\", \"{token}\"]\n");
    let e = match p.ok(&text).check_values(&[]) {
        Ok(()) => panic!("command passed"),
        Err(e) => e,
    };
    check(&e, &text, &format!("\"{token}\""), "gitlab-token");
    assert!(!e.to_string().contains(&token));
    let allowed = format!("{text}[secrets]\nallow = [\"command\"]\n");
    let spec = p.ok(&allowed);
    assert!(spec.check_values(&spec.secret_allow).is_ok());
    let text = format!(
        "{MINIMAL}[env]\nDATABASE_URL = \"postgres://admin:${{DB_PASS}}@db/prod\"\nEMPTY = \"redis://u:@cache\"\n"
    );
    let spec = p.ok(&text);
    assert!(spec.value_findings.is_empty(), "{:?}", spec.value_findings);
    let text = format!("{MINIMAL}workdir = \"/srv/{token}\"\n");
    let spec = p.ok(&text);
    let keys: Vec<&str> = spec.value_findings.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["workdir"]);
    assert!(spec.check_values(&["workdir".into()]).is_ok());
}

#[test]
fn attest_table() {
    let p = Project::new();
    assert_eq!(p.ok(MINIMAL).attest, Attestations::default());
    let spec = p.ok(&format!("{MINIMAL}[attest]\nsbom = true\n"));
    assert!(spec.attest.sbom && !spec.attest.provenance);
    let spec = p.ok(&format!(
        "{MINIMAL}[attest]\nsbom = false\nprovenance = true\n"
    ));
    assert!(!spec.attest.sbom && spec.attest.provenance);
    let text = format!("{MINIMAL}[attest]\nsbom = \"yes\"\n");
    let e = p.err(&text);
    check(&e, &text, "\"yes\"", "expected a boolean");
    assert!(
        e.hint().is_some_and(|h| h.contains("true or false")),
        "{e:?}"
    );
    let text = format!("{MINIMAL}[attest]\nsignature = true\n");
    let e = p.err(&text);
    check(&e, &text, "signature", "unknown key");
    assert!(e.hint().is_some_and(|h| h.contains("provenance")), "{e:?}");
}
