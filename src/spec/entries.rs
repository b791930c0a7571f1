//! The entries that copy something into the image (`[app] library` and
//! `workspace`, each `[[files]]` entry): where from, where to, owned by whom.
//!
//! Sources are the only checks that touch the file system: each must exist,
//! be of the right kind, and not hand a home folder to the image.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::raw::{RawFile, RawMount};
use super::validator::Validator;
use super::{ExtraFile, Mount, Owner, OwnerName, SpecError};

/// The owner of entries that give no `owner` of their own, from `[app] user`.
pub(super) enum DefaultOwner<'a> {
    /// `user` is numeric, or absent (root).
    Id(Owner),
    /// `user` names a user, whose ids only the image's /etc/passwd knows.
    NamedUser(&'a Spanned<String>),
}

/// Which folder entry a mount is, for messages.
#[derive(Clone, Copy)]
pub(super) enum MountKind {
    Library,
    Workspace,
}

impl MountKind {
    fn name(self) -> &'static str {
        match self {
            MountKind::Library => "library",
            MountKind::Workspace => "workspace",
        }
    }
}

impl Validator<'_> {
    /// Who owns the entries that give no `owner` of their own: the numeric
    /// `[app] user`, a name that only the image can resolve, or root.
    pub(super) fn default_owner<'a>(
        &self,
        user: Option<&'a Spanned<String>>,
    ) -> Result<DefaultOwner<'a>, SpecError> {
        Ok(match user {
            Some(u) => match self.check_user(u)? {
                Some(owner) => DefaultOwner::Id(owner),
                None => DefaultOwner::NamedUser(u),
            },
            None => DefaultOwner::Id(Owner::ROOT),
        })
    }

    /// The entry's own `owner`, else the default one; a name is resolved
    /// later, in the base's `/etc/passwd` and `/etc/group`.
    fn entry_owner(
        &self,
        given: Option<&Spanned<String>>,
        default: &DefaultOwner<'_>,
    ) -> Result<(Owner, Option<OwnerName>), SpecError> {
        match (given, default) {
            (Some(o), _) => Ok((self.parse_owner(o)?, None)),
            (None, DefaultOwner::Id(owner)) => Ok((*owner, None)),
            (None, DefaultOwner::NamedUser(user)) => {
                let (name, group) = match user.get_ref().split_once(':') {
                    Some((name, group)) => (name, Some(group.to_string())),
                    None => (user.get_ref().as_str(), None),
                };
                Ok((
                    Owner::ROOT,
                    Some(OwnerName {
                        user: name.to_string(),
                        group,
                        position: super::validator::line_col(self.text, user.span().start),
                    }),
                ))
            }
        }
    }

    /// `[app] library` or `workspace`: a folder, its place in the image and its owner.
    pub(super) fn mount(
        &self,
        value: &Spanned<RawMount>,
        kind: MountKind,
        default_owner: &DefaultOwner<'_>,
    ) -> Result<Mount, SpecError> {
        let name = kind.name();
        let example = match kind {
            MountKind::Library => "library = { source = \"library\", target = \"/opt/app\" }",
            MountKind::Workspace => {
                "workspace = { source = \"workspace\", target = \"/home/user/work\" }"
            }
        };
        let raw = value.get_ref();
        let Some(source) = &raw.source else {
            return Err(self.error(
                value.span(),
                format!("`{name}` has no `source`"),
                format!("give the folder to copy, e.g. {example}"),
            ));
        };
        let Some(target) = &raw.target else {
            return Err(self.error(
                value.span(),
                format!("`{name}` has no `target`"),
                format!("give the absolute path in the image, e.g. {example}"),
            ));
        };
        let source = self.source(source, name, true)?;
        let target = self.target(target, name)?;
        let (owner, owner_name) = self.entry_owner(raw.owner.as_ref(), default_owner)?;
        let relocate = match (&raw.relocate, kind) {
            (None, _) => true,
            (Some(relocate), MountKind::Library) => *relocate.get_ref(),
            (Some(relocate), MountKind::Workspace) => {
                return Err(self.error(
                    relocate.span(),
                    "`relocate` applies to the library only".to_string(),
                    "remove `relocate` from `workspace`",
                ));
            }
        };
        Ok(Mount {
            source,
            target,
            owner,
            owner_name,
            relocate,
            position: super::validator::line_col(self.text, value.span().start),
        })
    }

    /// One `[[files]]` entry: a regular file, its place in the image, its mode and owner.
    pub(super) fn extra_file(
        &self,
        value: &Spanned<RawFile>,
        default_owner: &DefaultOwner<'_>,
    ) -> Result<ExtraFile, SpecError> {
        let raw = value.get_ref();
        let Some(source) = &raw.source else {
            return Err(self.error(
                value.span(),
                "[[files]] entry has no `source`".to_string(),
                "give the file to copy, e.g. source = \"scripts/start.sh\"",
            ));
        };
        let Some(target) = &raw.target else {
            return Err(self.error(
                value.span(),
                "[[files]] entry has no `target`".to_string(),
                "give the absolute path in the image, e.g. target = \"/opt/app/start.sh\"",
            ));
        };
        let source = self.source(source, "[[files]]", false)?;
        let target = self.target(target, "[[files]]")?;
        let mode = match &raw.mode {
            Some(m) => Some(self.mode(m)?),
            None => None,
        };
        let (owner, owner_name) = self.entry_owner(raw.owner.as_ref(), default_owner)?;
        Ok(ExtraFile {
            source,
            target,
            mode,
            owner,
            owner_name,
        })
    }

    /// Resolves a source against the spec's folder and checks it is a folder (or a file).
    fn source(
        &self,
        value: &Spanned<String>,
        entry: &str,
        folder: bool,
    ) -> Result<PathBuf, SpecError> {
        let written = value.get_ref();
        let what = if folder { "folder" } else { "file" };
        if written.is_empty() {
            return Err(self.error(
                value.span(),
                format!("{entry} `source` is empty"),
                format!("give the {what} to copy, relative to the spec file's folder"),
            ));
        }
        let base = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let joined = base.join(written);
        let resolved = std::path::absolute(&joined).unwrap_or(joined);
        let shown = resolved.display();
        match std::fs::metadata(&resolved) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(self.error(
                value.span(),
                format!("{entry} source {what} {shown} does not exist"),
                "create it, or fix `source` (a relative source is resolved against the spec file's folder)",
            )),
            Err(e) => Err(self.error(
                value.span(),
                format!("cannot read {entry} source {shown}: {e}"),
                "check that it exists and that you may read it",
            )),
            Ok(meta) if folder && !meta.is_dir() => Err(self.error(
                value.span(),
                format!("{entry} source {shown} is not a folder"),
                "point `source` at a folder; single files go in a [[files]] entry",
            )),
            Ok(meta) if !folder && !meta.is_file() => Err(self.error(
                value.span(),
                format!("{entry} source {shown} is not a regular file"),
                "point `source` at a file; whole folders go in [app] library or workspace",
            )),
            Ok(_) if folder && holds_home(&resolved, std::env::var_os("HOME").as_deref()) => {
                Err(self.error(
                    value.span(),
                    format!(
                        "{entry} source {shown} is your home folder or holds it; a home folder holds credentials (.ssh, .docker, .aws, shell history) and never goes into an image"
                    ),
                    "point `source` at the app's own folder inside your home, e.g. \"~/projects/app/workspace\"",
                ))
            }
            Ok(_) => Ok(resolved),
        }
    }
}

/// True when `folder` is the home folder `home` or one of its ancestors (both
/// resolved through symlinks, so `/home` → `/usr/home` setups are caught too).
/// An unset, empty or root home holds nothing worth guarding.
fn holds_home(folder: &Path, home: Option<&std::ffi::OsStr>) -> bool {
    let Some(home) = home.filter(|h| !h.is_empty()) else {
        return false;
    };
    let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let home = resolve(Path::new(home));
    if home.parent().is_none() {
        return false;
    }
    home.starts_with(resolve(folder))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::holds_home;
    use crate::spec::tests::Project;

    #[test]
    fn home_or_a_folder_holding_it_is_not_a_source() {
        let p = Project::new();
        let root = std::fs::canonicalize(p.dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let home = root.join("workspace");
        let as_home = Some(home.as_os_str());
        assert!(holds_home(&home, as_home), "home itself");
        assert!(holds_home(&root, as_home), "a folder that holds home");
        assert!(holds_home(Path::new("/"), as_home), "the root holds home");
        assert!(
            !holds_home(&root.join("library"), as_home),
            "a sibling of home"
        );
        if let Err(e) = std::fs::create_dir(home.join("project")) {
            panic!("{e}");
        }
        assert!(
            !holds_home(&home.join("project"), as_home),
            "a folder inside home is fine"
        );
        let link = root.join("link-to-home");
        if let Err(e) = std::os::unix::fs::symlink(&home, &link) {
            panic!("{e}");
        }
        assert!(holds_home(&link, as_home), "through a symlink");
        assert!(!holds_home(&root, None));
        assert!(!holds_home(&root, Some(std::ffi::OsStr::new(""))));
        assert!(!holds_home(Path::new("/"), Some(std::ffi::OsStr::new("/"))));
    }
}
