//! A venv whose Python is not in the image: what to tell the user to do about it.
//!
//! `python3 -m venv` links the venv's `bin/python3` to the interpreter it was
//! run with (`/usr/bin/python3`, `/root/.pyenv/versions/3.11.7/bin/python3`),
//! so a venv copied into an image works only when the image has a Python at
//! that same path. When the start check finds the chain from a venv's `bin/`
//! ending outside the image, the fix is to make the venv again with the
//! image's own Python, which this names as concretely as the image allows.

/// A venv whose interpreter the image lacks, and what the image offers instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VenvFix {
    /// The venv's folder in the image, e.g. `/opt/venv`.
    pub venv: String,
    /// `major.minor` of the Python its `pyvenv.cfg` names, e.g. `3.11`.
    pub version: Option<String>,
    /// The image's own `python3` on its PATH, e.g. `/usr/local/bin/python3`.
    pub image_python: Option<String>,
    /// The base as `docker run` names it; None when it is not a registry image.
    pub base: Option<String>,
}

/// The venv folder `path` is in, when it is a file of a venv's `bin/`: `/opt/venv` for `/opt/venv/bin/python3`.
pub fn venv_of(path: &str) -> Option<&str> {
    let (folder, _) = path.rsplit_once('/')?;
    let venv = folder.strip_suffix("/bin")?;
    (!venv.is_empty()).then_some(venv)
}

/// `major.minor` from a `pyvenv.cfg`: its `version` (venv) or `version_info` (virtualenv, uv) key.
pub fn cfg_version(cfg: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(cfg);
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if !matches!(key.trim(), "version" | "version_info") {
            return None;
        }
        let mut parts = value.trim().split('.');
        let (major, minor) = (parts.next()?, parts.next()?);
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (numeric(major) && numeric(minor)).then(|| format!("{major}.{minor}"))
    })
}

impl VenvFix {
    /// The hint: make the venv again with a Python the image has, at the same path.
    pub fn hint(&self) -> String {
        let venv = &self.venv;
        let lead = format!(
            "the venv {venv} was made with a Python that is on the build machine but not in the image (its bin/python links to it)"
        );
        let mount = "docker run --rm -v \"$PWD:/work\" -w /work";
        match &self.image_python {
            Some(python) => {
                let base = self.base.as_deref().unwrap_or("BASE");
                format!(
                    "{lead}: recreate the venv with the image's own Python, {python}, so that it links to the same path as in the base \
                     — e.g. inside the base: `{mount} {base} {python} -m venv venv`, then install into it there with `venv/bin/pip install …`"
                )
            }
            None => {
                let (wanted, example) = match &self.version {
                    Some(version) => (
                        format!("Python {version}"),
                        format!("python:{version}-slim"),
                    ),
                    None => ("Python".to_string(), "python:3-slim".to_string()),
                };
                format!(
                    "{lead}, and the image has no python3 on its PATH: build on a base with {wanted} and recreate the venv with that base's Python \
                     — e.g. `{mount} {example} python3 -m venv venv` (its Python is /usr/local/bin/python3), then install into it there with `venv/bin/pip install …`"
                )
            }
        }
    }
}
