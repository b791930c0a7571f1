//! The start check: would `docker run` of the built image find and start its program?
//!
//! Before anything is written or pushed, the first word of entrypoint +
//! command is resolved in the image's own filesystem (`tree`: the base's
//! layers with whiteouts and symlinks; `stack`: the added ones over them,
//! looked up in their plans), against the
//! config's PATH for a bare name. It must be a regular file the image's user
//! may execute; a `#!` interpreter (and what `/usr/bin/env NAME` runs) and
//! an ELF's program interpreter must be in the image too (`program`); a user
//! or group given by name must be in `/etc/passwd` or `/etc/group` (`users`).
//! A failure says what `docker run` would have printed, and why.
//!
//! The check itself reads nothing: file heads come through `ReadHead`, so
//! the build decides where bytes come from (a source file, the store's base
//! layers, a relocated head). `base.rs` is the store side: the base's tree
//! from tar headers and base files' heads, both remembered per base digest.
//! Not for: running anything, or checking shared libraries beyond the
//! loader (that would need the dynamic linker's search rules).

use serde_json::Value;

pub mod base;
pub mod program;
pub mod stack;
pub mod tree;
pub mod users;
pub mod venv;

pub use base::{cached_base_head, cached_base_tree, read_base_head, read_base_tree};
pub use stack::Stack;
pub use tree::{Change, Filesystem, Found, Lookup, Node, Source, Tree};
pub use venv::VenvFix;

use program::{BINPRM_BUF_SIZE, HEAD_BYTES, Kind, ShebangFault};

/// docker's PATH when the image's config sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How deep `#!` interpreters may nest, as in Linux (`BINPRM_MAX_RECURSION`).
const MAX_NESTING: usize = 4;

/// The most of `/etc/passwd` or `/etc/group`, or of an ELF head, that is read.
const MAX_READ: usize = 1 << 20;

/// Why the image would not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Why {
    #[error("no executable file named {name} in any folder of the image's PATH ({path})")]
    NotOnPath { name: String, path: String },
    #[error("{path}{} is not in the image", led_to(.links))]
    Missing {
        path: String,
        /// Where the symlinks at or above `path` led, in order (see [`Filesystem::links_followed`]).
        links: Vec<String>,
    },
    #[error("{path}: too many levels of symbolic links (a symlink loop in the image)")]
    Loop { path: String },
    #[error("{path} is a folder in the image")]
    Directory { path: String },
    #[error("{path} has mode {mode:04o}: no execute bit for {user}")]
    NotExecutable {
        path: String,
        mode: u32,
        user: String,
    },
    #[error("{program}: its interpreter {interpreter}{} is not in the image", led_to(.links))]
    Interpreter {
        program: String,
        interpreter: String,
        /// Where the symlinks at or above `interpreter` led, in order.
        links: Vec<String>,
    },
    #[error(
        "{program}: its interpreter `{env} {name}` finds no {name} on the image's PATH ({path})"
    )]
    EnvCannotFind {
        program: String,
        env: String,
        name: String,
        path: String,
    },
    #[error("{program}: its program interpreter {loader}{} is not in the image", led_to(.links))]
    Loader {
        program: String,
        loader: String,
        /// Where the symlinks at or above `loader` led, in order.
        links: Vec<String>,
    },
    #[error("{program} is neither an ELF program nor a script starting with #!")]
    Format { program: String },
    #[error("{program}: {}", shebang_text(*.fault))]
    Shebang {
        program: String,
        fault: ShebangFault,
    },
    #[error("{program}: more than {MAX_NESTING} nested #! interpreters")]
    TooDeep { program: String },
    #[error("the user {user} is not in the image's /etc/passwd")]
    NoUser { user: String },
    #[error("the group {group} is not in the image's /etc/group")]
    NoGroup { group: String },
}

/// What went wrong in the start check.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The image would not start.
    #[error("the image would not start: `docker run` would fail with `{said}`")]
    WouldNotStart {
        said: String,
        #[source]
        why: Box<Why>,
        /// Set when the program or its interpreter is a venv's Python that links out of the image.
        venv: Option<Box<VenvFix>>,
    },
    #[error("cannot read {path} for the start check")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    /// A bug in stowage, not in the image.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl CheckError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        let CheckError::WouldNotStart { why, venv, .. } = self else {
            return match self {
                CheckError::Layer(e) => e.hint(),
                _ => None,
            };
        };
        let off = "; or build with --no-start-check if the image gets it some other way";
        if let Some(venv) = venv {
            return Some(format!("{}{off}", venv.hint()));
        }
        let hint = match &**why {
            Why::NotOnPath { .. } => {
                "give the full path in `entrypoint` or `command`, put the program in a folder on PATH, or set PATH in [env]"
            }
            Why::Missing { .. } | Why::Loop { .. } | Why::Directory { .. } => {
                "check the path in `entrypoint` or `command`: it is a path inside the image, where a layer or the base must put the program"
            }
            Why::NotExecutable { .. } => {
                "make the file executable (chmod +x) before building, or set `mode` in its [[files]] entry"
            }
            Why::Interpreter { .. } | Why::EnvCannotFind { .. } => {
                "the #! line names a program the image lacks (often a path on the build machine): use a base that has it, add it with [[files]], or change the #! line"
            }
            Why::Loader { .. } => {
                "the program is dynamically linked against a C library the image lacks: use a base that has it (not scratch), or a statically linked build"
            }
            Why::Format { .. } => "start the file with a #! line, or build the program for Linux",
            Why::TooDeep { .. } => "point the #! line at a program, not at another script",
            Why::Shebang { fault, .. } => shebang_hint(*fault),
            Why::NoUser { .. } | Why::NoGroup { .. } => {
                "add it to the image's /etc/passwd and /etc/group (e.g. with [[files]]), use a base that has it, or give numbers (`user = \"1000:1000\"`)"
            }
        };
        Some(format!("{hint}{off}"))
    }
}

/// What is wrong with a `#!` line, as the kernel sees it.
fn shebang_text(fault: ShebangFault) -> String {
    match fault {
        ShebangFault::CarriageReturn => {
            "its #! line ends in a carriage return (Windows line endings), which the kernel keeps as part of the interpreter's name".into()
        }
        ShebangFault::ByteOrderMark => {
            "it starts with a UTF-8 byte order mark before #!, so the kernel does not see a #! line".into()
        }
        ShebangFault::TooLong { interpreter_cut: true } => format!(
            "its #! line is longer than the {BINPRM_BUF_SIZE} bytes the kernel reads, and the interpreter's path is cut"
        ),
        ShebangFault::TooLong { interpreter_cut: false } => format!(
            "its #! line is longer than the {BINPRM_BUF_SIZE} bytes the kernel reads, so the interpreter gets its argument cut short"
        ),
    }
}

/// How to mend a `#!` line.
fn shebang_hint(fault: ShebangFault) -> &'static str {
    match fault {
        ShebangFault::CarriageReturn => {
            "convert the script to Unix line endings before building: `dos2unix FILE` or `sed -i 's/\\r$//' FILE`"
        }
        ShebangFault::ByteOrderMark => {
            "remove the byte order mark (save the file as UTF-8 without BOM, or `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`)"
        }
        ShebangFault::TooLong { .. } => {
            "shorten the #! line: `#!/usr/bin/env python3` finds the interpreter on PATH, or install it at a shorter path"
        }
    }
}

/// ` -> A -> B: B` for the places symlinks led to (empty when none were followed):
/// the chain, and the path that is actually missing.
fn led_to(links: &[String]) -> String {
    match links.last() {
        Some(last) => format!(" -> {}: {last}", links.join(" -> ")),
        None => String::new(),
    }
}

/// What `docker run` would print for `why`, when `top` is the program it runs.
fn docker_said(why: &Why, top: &str) -> String {
    match why {
        Why::NotOnPath { name, .. } => {
            format!("exec: \"{name}\": executable file not found in $PATH")
        }
        Why::Missing { path, .. } => {
            format!("exec: \"{path}\": stat {path}: no such file or directory")
        }
        Why::Loop { path } if path == top => {
            format!("exec: \"{path}\": stat {path}: too many levels of symbolic links")
        }
        Why::Directory { path } if path == top => format!("exec: \"{path}\": is a directory"),
        Why::NotExecutable { path, .. } if path == top => {
            format!("exec: \"{path}\": permission denied")
        }
        Why::Loop { .. } | Why::TooDeep { .. } => {
            format!("exec {top}: too many levels of symbolic links")
        }
        Why::NotExecutable { .. } | Why::Directory { .. } => {
            format!("exec {top}: permission denied")
        }
        Why::Interpreter { .. } | Why::Loader { .. } => {
            format!("exec {top}: no such file or directory")
        }
        Why::EnvCannotFind { env, name, .. } => {
            format!("{env}: '{name}': No such file or directory")
        }
        Why::Format { .. }
        | Why::Shebang {
            fault: ShebangFault::ByteOrderMark | ShebangFault::TooLong { .. },
            ..
        } => format!("exec {top}: exec format error"),
        Why::Shebang {
            fault: ShebangFault::CarriageReturn,
            ..
        } => format!("exec {top}: no such file or directory"),
        Why::NoUser { user } => {
            format!("unable to find user {user}: no matching entries in passwd file")
        }
        Why::NoGroup { group } => {
            format!("unable to find group {group}: no matching entries in group file")
        }
    }
}

/// Where file heads come from: the build's source files and the base's layers.
pub trait ReadHead {
    /// The caller's error, which a failed check becomes.
    type Error: From<CheckError>;

    /// Up to `limit` bytes from the start of the file at `source` (I/O).
    fn read_head(&mut self, source: &Source, limit: usize) -> Result<Vec<u8>, Self::Error>;
}

/// How much of the image the tree holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The base and the added layers: what is not found is not there.
    Image,
    /// Only the added layers (`--keep-base-remote`): what is not found may be in the base.
    AddedOnly,
}

/// The parts of an image config that decide how it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
}

impl StartConfig {
    /// Reads `config.Entrypoint`, `Cmd`, `Env`, `User` and `WorkingDir` from an image config.
    pub fn from_config(config: &Value) -> StartConfig {
        let inner = &config["config"];
        let strings = |key: &str| -> Vec<String> {
            inner[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |key: &str| inner[key].as_str().unwrap_or_default().to_string();
        StartConfig {
            entrypoint: strings("Entrypoint"),
            cmd: strings("Cmd"),
            env: strings("Env"),
            user: text("User"),
            working_dir: text("WorkingDir"),
        }
    }

    /// The program `docker run` starts: the first word of entrypoint + command.
    pub fn program(&self) -> Option<&str> {
        self.entrypoint
            .first()
            .or_else(|| self.cmd.first())
            .map(String::as_str)
    }

    /// PATH from the config's environment, else docker's default.
    pub fn path_var(&self) -> &str {
        self.env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
    }
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// No entrypoint and no command: nothing to check.
    NoCommand,
    /// The program resolved (to this path, when it was found); what could
    /// not be checked because the base was not read is listed.
    Starts {
        program: Option<String>,
        unchecked: Vec<String>,
    },
}

/// Checks that `config`'s program would start in the image `tree` holds
/// (`scope` says whether that is the whole image); heads come from `heads`.
pub fn check_start<F: Filesystem, R: ReadHead>(
    tree: &F,
    config: &StartConfig,
    scope: Scope,
    heads: &mut R,
) -> Result<Checked, R::Error> {
    let Some(first) = config.program() else {
        return Ok(Checked::NoCommand);
    };
    let mut checker = Checker {
        tree,
        path_var: config.path_var(),
        scope,
        heads,
        user: None,
        unchecked: Vec::new(),
        top: first.to_string(),
    };
    checker.user = checker.user_ids(&config.user)?;
    let program = checker.locate(first, &config.working_dir)?;
    if let Some(path) = &program {
        checker.top.clone_from(path);
        checker.run(path, None, 0)?;
    }
    Ok(Checked::Starts {
        program,
        unchecked: checker.unchecked,
    })
}

/// The user a process runs as: uid and every gid it has.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ids {
    name: String,
    uid: u64,
    gids: Vec<u64>,
}

struct Checker<'a, F, R> {
    tree: &'a F,
    path_var: &'a str,
    scope: Scope,
    heads: &'a mut R,
    /// None when the user could not be looked up (the base was not read).
    user: Option<Ids>,
    unchecked: Vec<String>,
    /// The program `docker run` starts, for the message docker would print.
    top: String,
}

impl<F: Filesystem, R: ReadHead> Checker<'_, F, R> {
    fn fail(&self, why: Why) -> R::Error {
        self.fail_in_venv(why, None)
    }

    fn fail_in_venv(&self, why: Why, venv: Option<VenvFix>) -> R::Error {
        let said = docker_said(&why, &self.top);
        let (why, venv) = (Box::new(why), venv.map(Box::new));
        CheckError::WouldNotStart { said, why, venv }.into()
    }

    /// The fix for `path` missing at the end of `links`, when `path` is in a
    /// venv's `bin/` (its `pyvenv.cfg` in the image) and links out of it.
    fn venv_fix(&mut self, path: &str, links: &[String]) -> Result<Option<VenvFix>, R::Error> {
        let Some(venv) = venv::venv_of(path).filter(|_| !links.is_empty()) else {
            return Ok(None);
        };
        let Some(cfg) = self.image_file(&format!("{venv}/pyvenv.cfg"))? else {
            return Ok(None);
        };
        Ok(Some(VenvFix {
            venv: venv.to_string(),
            version: venv::cfg_version(&cfg),
            image_python: self.on_path("python3"),
            base: None,
        }))
    }

    /// Where the first word leads: itself with a `/` (against WorkingDir when relative), else the first executable on PATH.
    fn locate(&mut self, first: &str, working_dir: &str) -> Result<Option<String>, R::Error> {
        if first.contains('/') {
            if first.starts_with('/') {
                return Ok(Some(first.to_string()));
            }
            let dir = working_dir.trim_end_matches('/');
            return Ok(Some(format!("{dir}/{first}")));
        }
        if let Some(path) = self.on_path(first) {
            return Ok(Some(path));
        }
        if self.scope == Scope::AddedOnly {
            self.unchecked
                .push(format!("{first} (not on PATH in the added layers)"));
            return Ok(None);
        }
        Err(self.fail(Why::NotOnPath {
            name: first.to_string(),
            path: self.path_var.to_string(),
        }))
    }

    /// The first `dir/name` on PATH that is a file with an execute bit, as Go's `exec.LookPath` finds it.
    fn on_path(&self, name: &str) -> Option<String> {
        self.path_var
            .split(':')
            .filter(|dir| dir.starts_with('/'))
            .map(|dir| format!("{}/{name}", dir.trim_end_matches('/')))
            .find(|candidate| {
                matches!(self.tree.resolve(candidate.as_bytes()),
                    Ok(Found::File { mode, .. }) if mode & 0o111 != 0)
            })
    }

    /// Checks that `path` may be executed and that what it needs to start is there.
    /// `via` is the program whose interpreter `path` is.
    fn run(&mut self, path: &str, via: Option<&str>, depth: usize) -> Result<(), R::Error> {
        let label = match via {
            Some(program) => format!("{path} (the interpreter of {program})"),
            None => path.to_string(),
        };
        let (mode, uid, gid, source) = match self.tree.resolve(path.as_bytes()) {
            Ok(Found::File {
                mode,
                uid,
                gid,
                source,
                ..
            }) => (mode, uid, gid, source),
            Ok(Found::Dir) => return Err(self.fail(Why::Directory { path: label })),
            Err(Lookup::Loop) => return Err(self.fail(Why::Loop { path: label })),
            Err(Lookup::Missing) if self.scope == Scope::AddedOnly => {
                let links = led_to(&self.tree.links_followed(path.as_bytes()));
                self.unchecked
                    .push(format!("{label}{links} (not in the added layers)"));
                return Ok(());
            }
            Err(Lookup::Missing) => {
                let links = self.tree.links_followed(path.as_bytes());
                let venv = self.venv_fix(path, &links)?;
                let why = match via {
                    Some(program) => Why::Interpreter {
                        program: program.to_string(),
                        interpreter: path.to_string(),
                        links,
                    },
                    None => Why::Missing { path: label, links },
                };
                return Err(self.fail_in_venv(why, venv));
            }
        };
        if !self.may_execute(mode, uid, gid) {
            let user = self.user.as_ref().map_or("root".into(), |u| u.name.clone());
            return Err(self.fail(Why::NotExecutable {
                path: label,
                mode,
                user,
            }));
        }
        let mut head = self.heads.read_head(&source, HEAD_BYTES)?;
        let mut kind = program::kind_of(&head);
        if let Kind::NeedBytes(needed) = kind {
            head = self.heads.read_head(&source, needed.min(MAX_READ))?;
            kind = program::kind_of(&head);
        }
        match kind {
            Kind::Script {
                interpreter,
                argument,
            } => self.script(path, &label, &interpreter, argument.as_deref(), depth),
            Kind::Elf {
                interpreter: Some(loader),
            } => self.loader(&label, &loader),
            Kind::Elf { interpreter: None } => Ok(()),
            Kind::BadShebang(fault) => Err(self.fail(Why::Shebang {
                program: label,
                fault,
            })),
            // A head still too short is a truncated ELF: the kernel refuses it too.
            Kind::NeedBytes(_) | Kind::Unknown => Err(self.fail(Why::Format { program: label })),
        }
    }

    /// A script's interpreter must start; `env NAME` must find NAME on PATH, and NAME must start.
    fn script(
        &mut self,
        path: &str,
        label: &str,
        interpreter: &str,
        argument: Option<&str>,
        depth: usize,
    ) -> Result<(), R::Error> {
        if depth >= MAX_NESTING {
            return Err(self.fail(Why::TooDeep {
                program: label.to_string(),
            }));
        }
        self.run(interpreter, Some(path), depth + 1)?;
        let is_env = interpreter.rsplit('/').next() == Some("env");
        let Some(name) = argument.filter(|_| is_env).and_then(program::env_program) else {
            return Ok(());
        };
        let found = if name.contains('/') {
            Some(name.clone())
        } else {
            self.on_path(&name)
        };
        match found {
            Some(program) => self.run(&program, Some(path), depth + 1),
            None if self.scope == Scope::AddedOnly => {
                let note = format!("{name}, which {label} runs through {interpreter}");
                self.unchecked.push(note);
                Ok(())
            }
            None => Err(self.fail(Why::EnvCannotFind {
                program: label.to_string(),
                env: interpreter.to_string(),
                name,
                path: self.path_var.to_string(),
            })),
        }
    }

    /// An ELF's program interpreter must be in the image.
    fn loader(&mut self, label: &str, loader: &str) -> Result<(), R::Error> {
        match self.tree.resolve(loader.as_bytes()) {
            Ok(Found::File { .. }) => Ok(()),
            Err(Lookup::Missing) if self.scope == Scope::AddedOnly => {
                let note = format!("{loader}, the program interpreter of {label}");
                self.unchecked.push(note);
                Ok(())
            }
            Err(Lookup::Missing) => Err(self.fail(Why::Loader {
                program: label.to_string(),
                loader: loader.to_string(),
                links: self.tree.links_followed(loader.as_bytes()),
            })),
            _ => Err(self.fail(Why::Loader {
                program: label.to_string(),
                loader: loader.to_string(),
                links: Vec::new(),
            })),
        }
    }

    /// Whether the user may execute a file of this mode and owner (root: any execute bit).
    fn may_execute(&self, mode: u32, uid: u64, gid: u64) -> bool {
        match &self.user {
            Some(user) if user.uid != 0 => {
                if user.uid == uid {
                    mode & 0o100 != 0
                } else if user.gids.contains(&gid) {
                    mode & 0o010 != 0
                } else {
                    mode & 0o001 != 0
                }
            }
            _ => mode & 0o111 != 0,
        }
    }

    /// The config's `User` as uid and gids, looked up in the image's files as runc does.
    fn user_ids(&mut self, user: &str) -> Result<Option<Ids>, R::Error> {
        let (name, group) = users::split_user(user);
        if name.is_empty() && group.is_none() {
            return Ok(Some(Ids {
                name: "root".into(),
                uid: 0,
                gids: vec![0],
            }));
        }
        let numeric = name.parse::<u64>().ok();
        let passwd = self.image_file("etc/passwd")?;
        let entry = passwd.as_deref().and_then(|p| users::find_user(p, name));
        let (uid, mut gids) = match (&entry, numeric) {
            (Some(entry), _) => (entry.uid, vec![entry.gid]),
            (None, Some(uid)) => (uid, vec![0]),
            (None, None) if passwd.is_none() && self.scope == Scope::AddedOnly => {
                self.unchecked.push(format!(
                    "the user {name} (no /etc/passwd in the added layers)"
                ));
                return Ok(None);
            }
            (None, None) => {
                return Err(self.fail(Why::NoUser {
                    user: name.to_string(),
                }));
            }
        };
        let group_file = self.image_file("etc/group")?;
        if let Some(group) = group {
            match (group.parse::<u64>().ok(), &group_file) {
                (Some(gid), _) => gids = vec![gid],
                (None, Some(file)) => match users::find_group(file, group) {
                    Some(entry) => gids = vec![entry.gid],
                    None => {
                        return Err(self.fail(Why::NoGroup {
                            group: group.to_string(),
                        }));
                    }
                },
                (None, None) if self.scope == Scope::AddedOnly => {
                    self.unchecked.push(format!(
                        "the group {group} (no /etc/group in the added layers)"
                    ));
                }
                (None, None) => {
                    return Err(self.fail(Why::NoGroup {
                        group: group.to_string(),
                    }));
                }
            }
        }
        if let (Some(entry), Some(file)) = (&entry, &group_file) {
            gids.extend(users::supplementary_gids(file, &entry.name));
        }
        Ok(Some(Ids {
            name: entry.map_or_else(|| name.to_string(), |e| e.name),
            uid,
            gids,
        }))
    }

    /// The bytes of a file of the image, or None when it is not there.
    fn image_file(&mut self, path: &str) -> Result<Option<Vec<u8>>, R::Error> {
        match self.tree.resolve(path.as_bytes()) {
            Ok(Found::File { source, .. }) => Ok(Some(self.heads.read_head(&source, MAX_READ)?)),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
