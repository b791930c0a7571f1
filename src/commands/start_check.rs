//! The start check as a build runs it: the base's tree (remembered per base), the added layers over it, and file heads from the sources or the store.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::Cache;

use crate::check::{
    self, CheckError, Checked, Filesystem, ReadHead, Scope, Source, Stack, StartConfig, Tree,
};
use crate::error::Error;
use crate::image::{Artifact, Image};
use crate::layer::{self, BaseFolders};
use crate::plan::BuildPlan;
use crate::reference::Location;
use crate::registry::Origin;
use crate::transport::{self, Access};

/// The base as the check sees it: None for scratch.
pub(super) struct CheckedBase<'a> {
    pub image: Option<&'a Image>,
    pub origin: Option<&'a Origin>,
}

/// A passed check as the store remembers it.
#[derive(Serialize, Deserialize)]
struct Passed {
    program: Option<String>,
    unchecked: Vec<String>,
}

/// The cache key of a check: the image config's digest names every layer's
/// content (its diff-ids) and the entrypoint, command, PATH and user, so an
/// image with the same config digest starts or fails alike; whether the base
/// was read is the one other input.
fn passed_key(image: &Image, scope: Scope) -> Digest {
    let scope = match scope {
        Scope::Image => "image",
        Scope::AddedOnly => "added layers only",
    };
    Digest::of(
        format!(
            "stowage start check v1\n{}\n{scope}",
            image.config_descriptor().digest
        )
        .as_bytes(),
    )
}

/// Checks that `image` (assembled, not yet written) would start (I/O: reads
/// the base's tar headers unless remembered, and the heads of the files it
/// needs; a config digest that passed before is not checked again). Runs
/// before any sink is written; None when `--no-start-check`.
pub(super) fn check_start(
    plan: &BuildPlan,
    base: &CheckedBase<'_>,
    folders: &BaseFolders,
    image: &Image,
    access: &Access<'_>,
) -> Result<Option<Checked>, Error> {
    if !plan.start_check {
        return Ok(None);
    }
    let key = passed_key(image, scope(plan, base));
    if let Some(passed) = access.store.read_record::<Passed>(Cache::StartChecks, &key) {
        return Ok(Some(Checked::Starts {
            program: passed.program,
            unchecked: passed.unchecked,
        }));
    }
    let config = StartConfig::from_config(&image.config_json()?);
    let checked = check_config(plan, base, folders, &config, access)?;
    if let Some(Checked::Starts { program, unchecked }) = &checked {
        let passed = Passed {
            program: program.clone(),
            unchecked: unchecked.clone(),
        };
        access.store.write_record(Cache::StartChecks, &key, &passed);
    }
    Ok(checked)
}

/// Checks that `config`'s program would start over the base and the plan's
/// layers (I/O as [`check_start`]), remembering nothing: a dry run has no
/// image whose config digest could name the result. None when `--no-start-check`.
pub(super) fn check_config(
    plan: &BuildPlan,
    base: &CheckedBase<'_>,
    folders: &BaseFolders,
    config: &StartConfig,
    access: &Access<'_>,
) -> Result<Option<Checked>, Error> {
    if !plan.start_check {
        return Ok(None);
    }
    if config.program().is_none() {
        return Ok(Some(Checked::NoCommand));
    }
    let scope = scope(plan, base);
    run_check(plan, base, folders, config, scope, access).map(Some)
}

/// How much of the image the check sees: the added layers only when the base is there but not read.
fn scope(plan: &BuildPlan, base: &CheckedBase<'_>) -> Scope {
    match (base.image, plan.keep_base_remote) {
        (Some(_), true) => Scope::AddedOnly,
        _ => Scope::Image,
    }
}

/// The check itself: the base's tree, the added layers over it (looked up lazily), the program resolved.
fn run_check(
    plan: &BuildPlan,
    base: &CheckedBase<'_>,
    folders: &BaseFolders,
    config: &StartConfig,
    scope: Scope,
    access: &Access<'_>,
) -> Result<Checked, Error> {
    let read_base = base.image.filter(|_| !plan.keep_base_remote);
    let base_tree = match read_base {
        Some(image) => base_tree(image, base.origin, access)?,
        None => Tree::default(),
    };
    // The added layers are looked into, not copied: the check holds nothing per added file.
    let mut image = Stack::new(base_tree, folders);
    for layer in &plan.layers {
        image.push(layer);
    }
    let mut heads = Heads {
        plan: Some(plan),
        base: read_base,
        origin: base.origin,
        access,
        fetched: false,
    };
    check::check_start(&image, config, scope, &mut heads).map_err(|e| with_base_name(e, plan))
}

/// Names the base in a venv's hint when `docker run` can run it by that name.
fn with_base_name(mut error: Error, plan: &BuildPlan) -> Error {
    if let (
        Error::Check(CheckError::WouldNotStart {
            venv: Some(fix), ..
        }),
        Location::Registry(reference),
    ) = (&mut error, &plan.base)
    {
        fix.base = Some(reference.to_string());
    }
    error
}

/// The base's tree, remembered per base digest; its layers are fetched only when it is not.
fn base_tree(
    image: &Image,
    origin: Option<&Origin>,
    access: &Access<'_>,
) -> Result<Tree<'static>, Error> {
    if let Some(tree) = check::cached_base_tree(access.store, image.digest()) {
        return Ok(tree);
    }
    transport::ensure_local(&Artifact::Image(image.clone()), origin, access)?;
    Ok(check::read_base_tree(
        access.store,
        image.digest(),
        image.layers(),
    )?)
}

/// The bytes of `path` in the base image (up to 1 MiB), None when the base
/// has no such file (I/O: the base's tree and the file's head, each
/// remembered per base digest; the layers fetched only when they are not).
pub(super) fn read_base_file(
    image: &Image,
    origin: Option<&Origin>,
    access: &Access<'_>,
    path: &str,
) -> Result<Option<Vec<u8>>, Error> {
    let tree = base_tree(image, origin, access)?;
    let Ok(check::Found::File { source, .. }) = tree.resolve(path.as_bytes()) else {
        return Ok(None);
    };
    let mut heads = Heads {
        plan: None,
        base: Some(image),
        origin,
        access,
        fetched: false,
    };
    heads.read_head(&source, 1 << 20).map(Some)
}

/// File heads for the check: added files from disk, base files from the store's records or layers.
struct Heads<'a> {
    /// None when only base files are read.
    plan: Option<&'a BuildPlan>,
    base: Option<&'a Image>,
    origin: Option<&'a Origin>,
    access: &'a Access<'a>,
    /// The base's layers are known to be in the store.
    fetched: bool,
}

impl ReadHead for Heads<'_> {
    type Error = Error;

    fn read_head(&mut self, source: &Source, limit: usize) -> Result<Vec<u8>, Error> {
        let (layer, member) = match source {
            Source::Added { layer, entry } => {
                let file = self
                    .plan
                    .and_then(|plan| plan.layers.get(*layer))
                    .and_then(|l| l.planned_file(*entry));
                let Some((path, rewrite)) = file else {
                    return Err(CheckError::Internal("an added file the plan does not hold").into());
                };
                let head = read_disk_head(&path, limit)?;
                return Ok(match rewrite {
                    Some((kind, relocation)) => layer::relocated_head(head, kind, relocation),
                    None => head,
                });
            }
            Source::Base { layer, member } => (*layer, member.as_str()),
        };
        let Some(image) = self.base else {
            return Err(CheckError::Internal("a base file in a build without a base").into());
        };
        let store = self.access.store;
        if let Some(head) = check::cached_base_head(store, image.digest(), layer, member, limit) {
            return Ok(head);
        }
        if !self.fetched {
            transport::ensure_local(&Artifact::Image(image.clone()), self.origin, self.access)?;
            self.fetched = true;
        }
        Ok(check::read_base_head(
            store,
            image.digest(),
            image.layers(),
            layer,
            member,
            limit,
        )?)
    }
}

/// Up to `limit` bytes from the start of a source file (I/O).
fn read_disk_head(path: &Path, limit: usize) -> Result<Vec<u8>, CheckError> {
    let read = || -> io::Result<Vec<u8>> {
        let mut head = Vec::new();
        File::open(path)?
            .take(limit as u64)
            .read_to_end(&mut head)?;
        Ok(head)
    };
    read().map_err(|source| CheckError::Read {
        path: path.display().to_string(),
        source,
    })
}
