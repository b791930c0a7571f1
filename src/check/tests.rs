use std::collections::BTreeMap;

use super::program::{self, Kind};
use super::*;

/// File heads from memory, keyed by the file's member name (tests put every file in one base layer).
#[derive(Default)]
struct Heads(BTreeMap<String, Vec<u8>>);

impl ReadHead for Heads {
    type Error = CheckError;

    fn read_head(&mut self, source: &Source, limit: usize) -> Result<Vec<u8>, CheckError> {
        let Source::Base { member, .. } = source else {
            panic!("tests only use base sources")
        };
        let mut bytes = self.0.get(member).cloned().unwrap_or_default();
        bytes.truncate(limit);
        Ok(bytes)
    }
}

/// A tiny image: changes built from `(path, what)`, heads from `contents`.
struct Image {
    tree: Tree<'static>,
    heads: Heads,
}

fn file(path: &str, mode: u32) -> Change {
    owned(path, mode, 0, 0)
}

fn owned(path: &str, mode: u32, uid: u64, gid: u64) -> Change {
    Change::Put {
        path: path.as_bytes().to_vec(),
        node: Node::File {
            mode,
            uid,
            gid,
            source: Source::Base {
                layer: 0,
                member: path.to_string(),
            },
        },
    }
}

fn link(path: &str, target: &str) -> Change {
    Change::Put {
        path: path.as_bytes().to_vec(),
        node: Node::Symlink {
            target: target.as_bytes().to_vec(),
        },
    }
}

fn member(path: &str) -> Change {
    Change::from_member(path.as_bytes().to_vec(), Some(Node::Dir), None).unwrap()
}

impl Image {
    fn new(layers: Vec<Vec<Change>>) -> Image {
        let mut tree = Tree::default();
        for layer in layers {
            tree.apply(layer);
        }
        Image {
            tree,
            heads: Heads::default(),
        }
    }

    fn content(mut self, path: &str, bytes: &[u8]) -> Image {
        self.heads.0.insert(path.to_string(), bytes.to_vec());
        self
    }

    fn check(&mut self, config: &StartConfig) -> Result<Checked, CheckError> {
        check_start(&self.tree, config, Scope::Image, &mut self.heads)
    }

    fn check_added(&mut self, config: &StartConfig) -> Result<Checked, CheckError> {
        check_start(&self.tree, config, Scope::AddedOnly, &mut self.heads)
    }
}

fn entrypoint(words: &[&str]) -> StartConfig {
    StartConfig {
        entrypoint: words.iter().map(|w| w.to_string()).collect(),
        ..StartConfig::default()
    }
}

/// The (said, why) of a failed check.
fn failure(result: Result<Checked, CheckError>) -> (String, Why) {
    match result {
        Err(CheckError::WouldNotStart { said, why, .. }) => (said, *why),
        other => panic!("expected a failed start check, got {other:?}"),
    }
}

/// A minimal little-endian ELF64 with one PT_INTERP naming `loader`, or none.
fn elf64(loader: Option<&str>) -> Vec<u8> {
    let mut bytes = vec![0u8; 0x200];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2;
    bytes[5] = 1;
    bytes[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    bytes[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    let kind: u32 = if loader.is_some() { 3 } else { 1 };
    bytes[64..68].copy_from_slice(&kind.to_le_bytes());
    if let Some(loader) = loader {
        let name = format!("{loader}\0");
        bytes[64 + 8..64 + 16].copy_from_slice(&0x100u64.to_le_bytes());
        bytes[64 + 32..64 + 40].copy_from_slice(&(name.len() as u64).to_le_bytes());
        bytes[0x100..0x100 + name.len()].copy_from_slice(name.as_bytes());
    }
    bytes
}

#[test]
fn whiteouts_hide_lower_layers_only() {
    let image = Image::new(vec![
        vec![
            file("bin/a", 0o755),
            file("bin/b", 0o755),
            file("opt/x/y", 0o644),
        ],
        vec![
            member("bin/.wh.a"),
            member("opt/x/.wh..wh..opq"),
            file("opt/x/z", 0o644),
        ],
    ]);
    assert_eq!(image.tree.resolve(b"/bin/a"), Err(Lookup::Missing));
    assert!(matches!(
        image.tree.resolve(b"/bin/b"),
        Ok(Found::File { .. })
    ));
    assert_eq!(image.tree.resolve(b"/opt/x/y"), Err(Lookup::Missing));
    assert!(matches!(
        image.tree.resolve(b"/opt/x/z"),
        Ok(Found::File { .. })
    ));
    assert_eq!(image.tree.resolve(b"/opt/x"), Ok(Found::Dir));
}

#[test]
fn a_whiteout_of_a_folder_removes_all_beneath_it() {
    let image = Image::new(vec![
        vec![file("usr/lib/python3/os.py", 0o644)],
        vec![member("usr/.wh.lib")],
    ]);
    assert_eq!(
        image.tree.resolve(b"/usr/lib/python3/os.py"),
        Err(Lookup::Missing)
    );
}

#[test]
fn symlink_chains_relative_and_absolute_are_followed() {
    let image = Image::new(vec![vec![
        link("bin", "usr/bin"),
        link("usr/bin/python3", "python3.12"),
        link("usr/bin/python3.12", "../local/bin/../bin/real"),
        file("usr/local/bin/real", 0o755),
    ]]);
    match image.tree.resolve(b"/bin/python3") {
        Ok(Found::File { path, .. }) => assert_eq!(path, b"usr/local/bin/real"),
        other => panic!("{other:?}"),
    }
    let absolute = Image::new(vec![vec![
        link("a", "/b/../c"),
        file("b/x", 0o644),
        file("c", 0o755),
    ]]);
    assert!(matches!(
        absolute.tree.resolve(b"/a"),
        Ok(Found::File { .. })
    ));
}

#[test]
fn an_entry_under_a_symlinked_folder_lands_where_the_link_points() {
    let image = Image::new(vec![
        vec![link("bin", "usr/bin"), member("usr/bin")],
        vec![file("bin/sh", 0o755)],
    ]);
    match image.tree.resolve(b"/usr/bin/sh") {
        Ok(Found::File { path, .. }) => assert_eq!(path, b"usr/bin/sh"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        image.tree.resolve(b"/bin/sh"),
        Ok(Found::File { .. })
    ));
}

#[test]
fn symlink_loops_stop() {
    let image = Image::new(vec![vec![link("a", "b"), link("b", "/a")]]);
    assert_eq!(image.tree.resolve(b"/a"), Err(Lookup::Loop));
    let mut image = image;
    let (said, _) = failure(image.check(&entrypoint(&["/a"])));
    assert!(said.contains("too many levels of symbolic links"), "{said}");
}

#[test]
fn a_bare_name_is_found_on_the_configs_path_or_dockers_default() {
    let mut image = Image::new(vec![vec![
        file("usr/bin/tool", 0o755),
        file("opt/bin/tool", 0o644),
        file("opt/bin2/tool", 0o755),
    ]])
    .content("usr/bin/tool", &elf64(None))
    .content("opt/bin2/tool", &elf64(None));
    let found = image.check(&entrypoint(&["tool"])).unwrap();
    assert_eq!(
        found,
        Checked::Starts {
            program: Some("/usr/bin/tool".into()),
            unchecked: vec![]
        }
    );
    let mut config = entrypoint(&["tool"]);
    config.env = vec!["PATH=/opt/bin:/opt/bin2".into()];
    // Like Go's exec.LookPath, a file without an execute bit is passed over.
    let found = image.check(&config).unwrap();
    assert!(matches!(found, Checked::Starts { program: Some(p), .. } if p == "/opt/bin2/tool"));
    let (said, why) = failure(image.check(&entrypoint(&["nothere"])));
    assert_eq!(
        said,
        "exec: \"nothere\": executable file not found in $PATH"
    );
    assert!(why.to_string().contains(DEFAULT_PATH));
}

#[test]
fn no_command_is_nothing_to_check() {
    let mut image = Image::new(vec![]);
    assert_eq!(
        image.check(&StartConfig::default()).unwrap(),
        Checked::NoCommand
    );
}

#[test]
fn a_missing_absolute_program_says_no_such_file() {
    let mut image = Image::new(vec![vec![file("bin/sh", 0o755)]]);
    let (said, why) = failure(image.check(&entrypoint(&["/opt/app/run"])));
    assert_eq!(
        said,
        "exec: \"/opt/app/run\": stat /opt/app/run: no such file or directory"
    );
    assert_eq!(why.to_string(), "/opt/app/run is not in the image");
    let (said, _) = failure(image.check(&entrypoint(&["/bin"])));
    assert_eq!(said, "exec: \"/bin\": is a directory");
}

#[test]
fn a_script_needs_its_interpreter() {
    let mut image = Image::new(vec![vec![file("opt/app/start.sh", 0o755)]])
        .content("opt/app/start.sh", b"#!/bin/sh -e\necho hi\n");
    let (said, why) = failure(image.check(&entrypoint(&["/opt/app/start.sh", "x"])));
    assert_eq!(said, "exec /opt/app/start.sh: no such file or directory");
    assert_eq!(
        why.to_string(),
        "/opt/app/start.sh: its interpreter /bin/sh is not in the image"
    );
    let mut with_shell = Image::new(vec![vec![
        file("opt/app/start.sh", 0o755),
        link("bin/sh", "busybox"),
        file("bin/busybox", 0o755),
    ]])
    .content("opt/app/start.sh", b"#!/bin/sh -e\necho hi\n")
    .content("bin/busybox", &elf64(None));
    assert!(
        with_shell
            .check(&entrypoint(&["/opt/app/start.sh"]))
            .is_ok()
    );
}

/// The pyenv venv of issue 21: `bin/python3 -> python3.11 -> /root/.pyenv/…`, over a base without it.
fn pyenv_venv(base: Vec<Change>) -> Image {
    let venv = vec![
        file("opt/venv/pyvenv.cfg", 0o644),
        file("opt/venv/bin/flask", 0o755),
        link("opt/venv/bin/python", "python3.11"),
        link("opt/venv/bin/python3", "python3.11"),
        link(
            "opt/venv/bin/python3.11",
            "/root/.pyenv/versions/3.11.7/bin/python3.11",
        ),
    ];
    Image::new(vec![base, venv])
        .content(
            "opt/venv/bin/flask",
            b"#!/opt/venv/bin/python3\nimport flask\n",
        )
        .content(
            "opt/venv/pyvenv.cfg",
            b"home = /root/.pyenv/versions/3.11.7/bin\nversion = 3.11.7\n",
        )
}

/// The venv fix a failed check carries, and its hint.
fn venv_failure(result: Result<Checked, CheckError>) -> (Why, Option<Box<VenvFix>>, String) {
    match result {
        Err(e @ CheckError::WouldNotStart { .. }) => {
            let hint = e.hint().unwrap_or_default();
            let CheckError::WouldNotStart { why, venv, .. } = e else {
                unreachable!()
            };
            (*why, venv, hint)
        }
        other => panic!("expected a failed start check, got {other:?}"),
    }
}

#[test]
fn a_chain_of_symlinks_out_of_the_image_is_named_hop_by_hop() {
    let mut image = pyenv_venv(vec![file("usr/local/bin/python3", 0o755)]);
    let (why, venv, hint) = venv_failure(image.check(&entrypoint(&["/opt/venv/bin/python3"])));
    assert_eq!(
        why.to_string(),
        "/opt/venv/bin/python3 -> /opt/venv/bin/python3.11 -> /root/.pyenv/versions/3.11.7/bin/python3.11: \
         /root/.pyenv/versions/3.11.7/bin/python3.11 is not in the image"
    );
    let venv = venv.expect("a venv's python");
    assert_eq!(venv.venv, "/opt/venv");
    assert_eq!(venv.version.as_deref(), Some("3.11"));
    assert_eq!(venv.image_python.as_deref(), Some("/usr/local/bin/python3"));
    assert!(hint.contains("recreate the venv"), "{hint}");
    assert!(
        hint.contains("BASE /usr/local/bin/python3 -m venv venv"),
        "{hint}"
    );

    // A script of the venv: its interpreter is the chain; scratch has no python3 at all.
    let mut image = pyenv_venv(Vec::new());
    let (why, venv, hint) = venv_failure(image.check(&entrypoint(&["/opt/venv/bin/flask"])));
    assert_eq!(
        why.to_string(),
        "/opt/venv/bin/flask: its interpreter /opt/venv/bin/python3 -> /opt/venv/bin/python3.11 -> \
         /root/.pyenv/versions/3.11.7/bin/python3.11: /root/.pyenv/versions/3.11.7/bin/python3.11 is not in the image"
    );
    assert_eq!(venv.and_then(|v| v.image_python), None);
    assert!(hint.contains("no python3 on its PATH"), "{hint}");
    assert!(
        hint.contains("python:3.11-slim python3 -m venv venv"),
        "{hint}"
    );

    // With only the added layers (--keep-base-remote) the chain is listed as not checked.
    match image.check_added(&entrypoint(&["/opt/venv/bin/python3"])) {
        Ok(Checked::Starts { unchecked, .. }) => assert_eq!(
            unchecked,
            [
                "/opt/venv/bin/python3 -> /opt/venv/bin/python3.11 -> /root/.pyenv/versions/3.11.7/bin/python3.11: \
              /root/.pyenv/versions/3.11.7/bin/python3.11 (not in the added layers)"
            ]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_link_through_a_folder_and_dot_dot_shows_whole_paths() {
    // `/bin -> usr/bin` (merged /usr) and a relative `..` target: each hop is the whole path it leads to.
    let mut image = Image::new(vec![vec![
        link("bin", "usr/bin"),
        file("usr/bin/env", 0o755),
        link("usr/bin/python3", "../lib/python/python3"),
        file("opt/app/run", 0o755),
    ]])
    .content("opt/app/run", b"#!/bin/python3\n");
    let (why, venv, _) = venv_failure(image.check(&entrypoint(&["/opt/app/run"])));
    assert_eq!(
        why.to_string(),
        "/opt/app/run: its interpreter /bin/python3 -> /usr/bin/python3 -> /usr/lib/python/python3: \
         /usr/lib/python/python3 is not in the image"
    );
    assert!(venv.is_none(), "not a venv: no pyvenv.cfg");
    // Without a symlink on the way the message is as before.
    let (_, why) = failure(image.check(&entrypoint(&["/opt/app/gone"])));
    assert_eq!(why.to_string(), "/opt/app/gone is not in the image");
}

#[test]
fn pyvenv_cfg_versions_and_venv_folders() {
    assert_eq!(
        venv::cfg_version(b"home = /usr/bin\nversion = 3.11.2\n").as_deref(),
        Some("3.11")
    );
    assert_eq!(
        venv::cfg_version(b"version_info = 3.12.4.final.0\n").as_deref(),
        Some("3.12")
    );
    assert_eq!(venv::cfg_version(b"version = three\n"), None);
    assert_eq!(venv::venv_of("/opt/venv/bin/python3"), Some("/opt/venv"));
    assert_eq!(venv::venv_of("/bin/python3"), None);
    assert_eq!(venv::venv_of("/opt/venv/lib/python3"), None);
}

#[test]
fn env_must_find_its_program_on_path() {
    let layer = vec![
        file("opt/venv/bin/cowsay", 0o755),
        file("usr/bin/env", 0o755),
    ];
    let mut image = Image::new(vec![layer.clone()])
        .content("opt/venv/bin/cowsay", b"#!/usr/bin/env python3\n")
        .content("usr/bin/env", &elf64(None));
    let (said, why) = failure(image.check(&entrypoint(&["/opt/venv/bin/cowsay"])));
    assert_eq!(said, "/usr/bin/env: 'python3': No such file or directory");
    assert!(why.to_string().contains("finds no python3"), "{why}");
    let mut layer = layer;
    layer.push(file("usr/local/bin/python3", 0o755));
    let mut image = Image::new(vec![layer])
        .content("opt/venv/bin/cowsay", b"#!/usr/bin/env -S python3 -u\n")
        .content("usr/bin/env", &elf64(None))
        .content(
            "usr/local/bin/python3",
            &elf64(Some("/lib/ld-musl-x86_64.so.1")),
        );
    // python3 is found, but its own loader is missing.
    let (said, why) = failure(image.check(&entrypoint(&["/opt/venv/bin/cowsay"])));
    assert_eq!(said, "exec /opt/venv/bin/cowsay: no such file or directory");
    assert_eq!(
        why.to_string(),
        "/usr/local/bin/python3 (the interpreter of /opt/venv/bin/cowsay): its program interpreter /lib/ld-musl-x86_64.so.1 is not in the image"
    );
}

#[test]
fn env_program_skips_options() {
    assert_eq!(program::env_program("python3"), Some("python3".into()));
    assert_eq!(
        program::env_program("-S python3 -u"),
        Some("python3".into())
    );
    assert_eq!(program::env_program("-i A=b node"), Some("node".into()));
    assert_eq!(program::env_program("-u"), None);
}

#[test]
fn an_elf_needs_its_loader() {
    let mut image = Image::new(vec![vec![file("app", 0o755)]])
        .content("app", &elf64(Some("/lib64/ld-linux-x86-64.so.2")));
    let (said, why) = failure(image.check(&entrypoint(&["/app"])));
    assert_eq!(said, "exec /app: no such file or directory");
    assert_eq!(
        why.to_string(),
        "/app: its program interpreter /lib64/ld-linux-x86-64.so.2 is not in the image"
    );
}

#[test]
fn a_file_that_is_neither_elf_nor_script_is_a_format_error() {
    let mut image = Image::new(vec![vec![file("app", 0o755)]]).content("app", b"hello");
    let (said, _) = failure(image.check(&entrypoint(&["/app"])));
    assert_eq!(said, "exec /app: exec format error");
}

#[test]
fn pt_interp_of_a_real_binary() {
    let Ok(bytes) = std::fs::read("/bin/ls") else {
        return;
    };
    let head = &bytes[..bytes.len().min(program::HEAD_BYTES)];
    match program::kind_of(head) {
        Kind::Elf {
            interpreter: Some(loader),
        } => assert!(loader.starts_with("/lib"), "{loader}"),
        Kind::Elf { interpreter: None } => {} // a static ls (busybox systems)
        other => panic!("{other:?}"),
    }
}

#[test]
fn pt_interp_of_a_32_bit_big_endian_elf() {
    let mut bytes = vec![0u8; 0x100];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 1;
    bytes[5] = 2;
    bytes[0x1c..0x20].copy_from_slice(&52u32.to_be_bytes());
    bytes[0x2a..0x2c].copy_from_slice(&32u16.to_be_bytes());
    bytes[0x2c..0x2e].copy_from_slice(&2u16.to_be_bytes());
    // First header PT_LOAD, second PT_INTERP.
    bytes[52..56].copy_from_slice(&1u32.to_be_bytes());
    bytes[84..88].copy_from_slice(&3u32.to_be_bytes());
    bytes[84 + 4..84 + 8].copy_from_slice(&0xc0u32.to_be_bytes());
    bytes[84 + 16..84 + 20].copy_from_slice(&14u32.to_be_bytes());
    bytes[0xc0..0xc0 + 14].copy_from_slice(b"/lib/ld.so.1\0\0");
    assert_eq!(
        program::kind_of(&bytes),
        Kind::Elf {
            interpreter: Some("/lib/ld.so.1".into())
        }
    );
    // Cut short before the name: ask for more bytes.
    assert_eq!(program::kind_of(&bytes[..0xc4]), Kind::NeedBytes(0xc0 + 14));
}

#[test]
fn passwd_and_group_are_parsed() {
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1001::/home/app:/bin/sh\n";
    let group = b"root:x:0:\nstaff:x:50:app,other\napp:x:1001:\n";
    let app = users::find_user(passwd, "app").unwrap();
    assert_eq!((app.uid, app.gid), (1000, 1001));
    assert_eq!(users::find_user(passwd, "1000").unwrap().name, "app");
    assert!(users::find_user(passwd, "nobody").is_none());
    assert_eq!(users::find_group(group, "staff").unwrap().gid, 50);
    assert_eq!(users::supplementary_gids(group, "app"), vec![50]);
    assert_eq!(users::split_user("app:staff"), ("app", Some("staff")));
}

#[test]
fn a_named_user_must_be_in_passwd_and_may_need_the_execute_bit() {
    let passwd = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    let mut image = Image::new(vec![vec![
        file("etc/passwd", 0o644),
        file("etc/group", 0o644),
        owned("app/run", 0o744, 0, 0),
        owned("app/mine", 0o700, 1000, 0),
    ]])
    .content("etc/passwd", passwd)
    .content("etc/group", b"root:x:0:\n")
    .content("app/run", &elf64(None))
    .content("app/mine", &elf64(None));
    let mut config = entrypoint(&["/app/run"]);
    config.user = "ghost".into();
    let (said, _) = failure(image.check(&config));
    assert_eq!(
        said,
        "unable to find user ghost: no matching entries in passwd file"
    );
    config.user = "app:nogroup".into();
    let (said, _) = failure(image.check(&config));
    assert_eq!(
        said,
        "unable to find group nogroup: no matching entries in group file"
    );
    config.user = "app".into();
    let (said, why) = failure(image.check(&config));
    assert_eq!(said, "exec: \"/app/run\": permission denied");
    assert_eq!(
        why.to_string(),
        "/app/run has mode 0744: no execute bit for app"
    );
    config.entrypoint = vec!["/app/mine".into()];
    assert!(image.check(&config).is_ok());
    // root needs any execute bit; a numeric uid needs no passwd entry.
    config.user = String::new();
    assert!(image.check(&config).is_ok());
    config.user = "4242".into();
    assert!(
        failure(image.check(&config))
            .0
            .contains("permission denied")
    );
}

#[test]
fn with_only_the_added_layers_what_is_missing_is_unchecked() {
    let mut image = Image::new(vec![vec![file("opt/app/start.sh", 0o755)]])
        .content("opt/app/start.sh", b"#!/bin/sh\n");
    let mut config = entrypoint(&["/opt/app/start.sh"]);
    config.user = "app".into();
    match image.check_added(&config).unwrap() {
        Checked::Starts { unchecked, .. } => {
            assert_eq!(unchecked.len(), 2, "{unchecked:?}");
            assert!(unchecked[1].contains("/bin/sh"));
        }
        other => panic!("{other:?}"),
    }
    assert!(image.check_added(&entrypoint(&["python3"])).is_ok());
    // What the added layers hold is checked all the same.
    let mut broken = Image::new(vec![vec![file("app", 0o644)]]);
    assert!(
        failure(broken.check_added(&entrypoint(&["/app"])))
            .0
            .contains("permission denied")
    );
}

#[test]
fn the_config_gives_entrypoint_command_path_and_user() {
    let config = serde_json::json!({"config": {
        "Cmd": ["serve"], "Env": ["A=1", "PATH=/x:/y"], "User": "app", "WorkingDir": "/w"
    }});
    let start = StartConfig::from_config(&config);
    assert_eq!(start.program(), Some("serve"));
    assert_eq!(start.path_var(), "/x:/y");
    assert_eq!(start.user, "app");
    assert_eq!(
        StartConfig::from_config(&serde_json::json!({})).path_var(),
        DEFAULT_PATH
    );
}

/// An image with bash (static) and a start script whose head is `script`.
fn with_bash_and_script(script: &[u8]) -> Image {
    Image::new(vec![vec![
        file("bin/bash", 0o755),
        file("opt/app/start.sh", 0o755),
    ]])
    .content("bin/bash", &elf64(None))
    .content("opt/app/start.sh", script)
}

/// The failure's said text, its reason and its hint.
fn shebang_failure(script: &[u8]) -> (String, String, String) {
    match with_bash_and_script(script).check(&entrypoint(&["/opt/app/start.sh"])) {
        Err(e @ CheckError::WouldNotStart { .. }) => {
            let hint = e.hint().unwrap_or_default();
            let CheckError::WouldNotStart { said, why, .. } = e else {
                unreachable!()
            };
            (said, why.to_string(), hint)
        }
        other => panic!("expected a failed start check, got {other:?}"),
    }
}

#[test]
fn a_correct_shebang_passes() {
    for script in [
        &b"#!/bin/bash\necho hi\n"[..],
        b"#!/bin/bash -e  \r\n",
        b"#!/bin/bash",
        b"#! /bin/bash\t\n",
    ] {
        let mut image = with_bash_and_script(script);
        let result = image.check(&entrypoint(&["/opt/app/start.sh"]));
        // `-e  \r` keeps its \r inside the argument: still a fault.
        assert_eq!(
            result.is_ok(),
            !script.contains(&b'\r'),
            "{}",
            String::from_utf8_lossy(script)
        );
    }
}

#[test]
fn windows_line_endings_in_the_shebang_are_refused_with_dos2unix() {
    let (said, why, hint) = shebang_failure(b"#!/bin/bash\r\necho hi\r\n");
    assert_eq!(said, "exec /opt/app/start.sh: no such file or directory");
    assert!(why.contains("carriage return"), "{why}");
    assert!(hint.contains("dos2unix"), "{hint}");
    assert!(hint.contains(r"sed -i 's/\r$//'"), "{hint}");
}

#[test]
fn a_byte_order_mark_before_the_shebang_is_refused() {
    let (said, why, hint) = shebang_failure(b"\xef\xbb\xbf#!/bin/bash\necho hi\n");
    assert_eq!(said, "exec /opt/app/start.sh: exec format error");
    assert!(why.contains("byte order mark"), "{why}");
    assert!(hint.contains("remove the byte order mark"), "{hint}");
}

#[test]
fn a_shebang_longer_than_the_kernel_reads_is_refused() {
    // A relocated prefix so long the interpreter's path is cut at 255 bytes.
    let long = format!("#!/{}/bin/python3\nprint()\n", "p".repeat(300));
    let (said, why, hint) = shebang_failure(long.as_bytes());
    assert_eq!(said, "exec /opt/app/start.sh: exec format error");
    assert!(why.contains("interpreter's path is cut"), "{why}");
    assert!(hint.contains("/usr/bin/env"), "{hint}");
    // Only the argument cut: still refused, with its own reason.
    let long = format!("#!/bin/bash {}\n", "-e ".repeat(100));
    let (_, why, _) = shebang_failure(long.as_bytes());
    assert!(why.contains("argument cut short"), "{why}");
    // 255 bytes and a newline fit exactly.
    let fits = format!("#!/bin/bash {}\n", "x".repeat(BINPRM_BUF_SIZE - 13));
    assert_eq!(fits.len(), BINPRM_BUF_SIZE);
    let mut image = with_bash_and_script(fits.as_bytes());
    assert!(image.check(&entrypoint(&["/opt/app/start.sh"])).is_ok());
}
