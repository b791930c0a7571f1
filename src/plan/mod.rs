//! What a build will do, decided before any byte is read: request + spec → an immutable `BuildPlan`.
//!
//! Planning stats the sources (to list and count every entry) and reads no
//! file content but the library's metadata and, when the library is
//! relocated, the few files that may name its old prefix; no base image and
//! no registry. `--dry-run` prints exactly
//! this value, and `commands::build` runs exactly this value: nothing in it
//! changes once it is made. What only the base can tell (the owner and mode
//! of the folders above a target) is a separate input of the layer writer,
//! not an edit of the plan.

use std::path::{Path, PathBuf};

use crate::attest::Attestations;
use crate::error::Error;
use crate::image::config::ConfigEdit;
use crate::image::{Format, Platform};
use crate::inventory::Inventory;
use crate::layer::{
    self, Compression, Excludes, KnownDirs, LayerPlan, LayerRole, LayerRoot, LibrarySplit,
    Relocation, RewriteKind,
};
use crate::reference::{ImageRef, Location};
use crate::scan::ScanRules;
use crate::spec::{Mount, Spec, SpecError, is_value_key};
use crate::store::Store;

mod library_cache;

/// Everything a build is asked to do: the spec and the command line's settings.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub spec: Spec,
    pub options: BuildOptions,
}

/// The command line's settings of a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Where to write; empty means the spec's `image`.
    pub destinations: Vec<String>,
    pub no_workspace: bool,
    /// `--platform` as given (checked here, by the one platform grammar).
    pub platform: Option<String>,
    pub format: Option<Format>,
    pub compression: Compression,
    /// Compression threads (default: one per core); the output is the same for any count.
    pub threads: Option<usize>,
    /// How many layers the library is split into by package (1: one layer).
    pub library_layers: usize,
    /// Never read the base's layers: ancestor folders of targets then get
    /// root-owned 0755 instead of the base's own owner and mode, and a build
    /// that pushes to the base's registry downloads nothing.
    pub keep_base_remote: bool,
    /// `SOURCE_DATE_EPOCH`, when set.
    pub source_date_epoch: Option<u64>,
    /// Scan the added layers for secrets (`--no-secret-scan` turns it off).
    pub secret_scan: bool,
    /// `--allow-secret`: paths in the image the scan lets through, as given.
    pub allow_secrets: Vec<String>,
    /// Print the plan and write nothing.
    pub dry_run: bool,
    /// Check that the image would start before writing it (`--no-start-check` turns it off).
    pub start_check: bool,
    /// `--attest`: attestations to attach besides the spec's `[attest]`.
    pub attest: Attestations,
    /// `--cache-repo`: the registry repository that shares the content cache, as given.
    pub cache_repo: Option<String>,
    /// `sha256:…` of the export policy the build runs under (`--policy`), for the provenance.
    pub policy_digest: Option<String>,
}

/// `--cache-repo` as a registry reference.
fn cache_repo(given: Option<&str>) -> Result<Option<ImageRef>, Error> {
    let Some(text) = given else {
        return Ok(None);
    };
    match crate::reference::parse_location(text)? {
        Location::Registry(reference) if reference.digest.is_none() => Ok(Some(reference)),
        _ => Err(Error::usage(
            format!("--cache-repo {text} does not name a registry repository"),
            "give a repository and optionally a tag, e.g. --cache-repo registry.example.org/team/stowage-cache",
        )),
    }
}

/// The layers a build would write and where it would send them, before anything is read or written.
#[derive(Debug)]
pub struct BuildPlan {
    /// The spec file, for records and messages.
    pub spec_path: PathBuf,
    /// The base, with a relative local path resolved against the spec's folder.
    pub base: Location,
    /// The base as the spec wrote it, for records.
    pub base_text: String,
    pub platform: Platform,
    /// The platform was asked for (flag or spec), so a base of another platform is an error.
    pub explicit_platform: bool,
    /// Forced manifest family; None follows the base.
    pub format: Option<Format>,
    pub compression: Compression,
    /// Compression threads; None is one per core.
    pub threads: Option<usize>,
    pub keep_base_remote: bool,
    /// Run the start check before writing (off with `--no-start-check`).
    pub start_check: bool,
    /// Modification time of every entry and archive member.
    pub mtime: u64,
    /// The config's `created` and the history entries' time (RFC 3339).
    pub created: String,
    pub layers: Vec<LayerPlan>,
    /// The history entry's `created_by` for each layer, in layer order.
    pub history: Vec<String>,
    /// Paths in the image the secret scan lets through, normalised.
    pub allowed_secrets: Vec<String>,
    /// Secret names of the spec, for `-e NAME=…` placeholders in the run line.
    pub secret_names: Vec<String>,
    /// What the spec changes in the base's config.
    pub config: ConfigEdit,
    /// The app library: where it is read from and goes, and what its metadata
    /// says it holds; None for an image of a base plus files.
    pub library: Option<LibraryPlan>,
    pub destinations: Vec<Location>,
    /// The spec's `image` when it is a registry reference: the tag and name outputs default to.
    pub default_reference: Option<ImageRef>,
    /// The attestations the image carries: the spec's `[attest]` and `--attest` together.
    pub attest: Attestations,
    /// The registry repository that shares the content cache (`--cache-repo`).
    pub cache_repo: Option<ImageRef>,
    /// `sha256:…` of the export policy that admitted the build; the provenance names it.
    pub policy_digest: Option<String>,
}

impl BuildPlan {
    /// The name printed with the digest: the first named destination, else the spec's `image`.
    pub fn output_name(&self) -> Option<ImageRef> {
        self.destinations
            .iter()
            .find_map(|d| match d {
                Location::Registry(reference) => Some(reference.clone()),
                Location::DockerArchive {
                    reference: Some(reference),
                    ..
                } => Some(reference.clone()),
                _ => None,
            })
            .or_else(|| self.default_reference.clone())
    }

    /// The tag an `oci:` or `oci-archive:` destination without one gets: the spec's `image` tag, else `latest`.
    pub fn default_tag(&self) -> &str {
        self.default_reference
            .as_ref()
            .map_or("latest", ImageRef::tag_or_latest)
    }

    /// What was read: the base as written and the app's folders and files.
    pub fn sources(&self) -> Vec<String> {
        let mut sources = vec![self.base_text.clone()];
        for source in self.layers.iter().flat_map(|l| &l.sources) {
            let text = source.display().to_string();
            // The library's layers share one source: list it once.
            if !sources.contains(&text) {
                sources.push(text);
            }
        }
        sources
    }

    /// Warnings the walk and the inventory raised (skipped sockets, metadata not understood).
    pub fn warnings(&self) -> impl Iterator<Item = &String> {
        self.layers
            .iter()
            .flat_map(|l| &l.warnings)
            .chain(self.library.iter().flat_map(|l| &l.inventory.warnings))
    }
}

/// The app library as planned.
#[derive(Debug)]
pub struct LibraryPlan {
    pub source: PathBuf,
    /// The path in the image.
    pub target: String,
    /// The packages its metadata lists (empty when it has none).
    pub inventory: Inventory,
    /// The install prefix is rewritten to `target` (it was installed elsewhere).
    pub relocation: Option<Relocation>,
}

impl BuildPlan {
    /// The packages the library's metadata lists (none without a library).
    pub fn inventory(&self) -> std::borrow::Cow<'_, Inventory> {
        match &self.library {
            Some(library) => std::borrow::Cow::Borrowed(&library.inventory),
            None => std::borrow::Cow::Owned(Inventory::default()),
        }
    }

    /// The layers that hold the library, with their index among the added layers.
    pub fn library_layers(&self) -> impl Iterator<Item = (usize, &LayerPlan)> {
        self.layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.role == LayerRole::Library)
    }

    /// Every entry the relocation rewrites: the path in the image and how, sorted by path.
    pub fn relocated_files(&self) -> Vec<(String, RewriteKind)> {
        let mut files: Vec<(String, RewriteKind)> = self
            .library_layers()
            .flat_map(|(_, layer)| layer.rewrites())
            .map(|(path, kind)| (format!("/{}", String::from_utf8_lossy(path)), kind))
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files
    }
}

/// Validates the request and walks the sources (I/O: stats only).
pub fn plan_build(request: &BuildRequest) -> Result<BuildPlan, Error> {
    plan_build_cached(request, None)
}

/// [`plan_build`], with what the steps after the library's walk made of an
/// unchanged listing taken from, and kept in, `cache` (`library_cache`).
pub fn plan_build_cached(
    request: &BuildRequest,
    cache: Option<&Store>,
) -> Result<BuildPlan, Error> {
    let (spec, options) = (&request.spec, &request.options);
    let destinations = destinations(request)?;
    let allowed_secrets = allowed_secret_paths(request)?;
    if options.secret_scan {
        spec.check_values(&allowed_secrets)?;
    }
    let (base, platform) = base_and_platform(request)?;
    let (mut layers, library) = plan_layers(request, cache)?;
    if options.secret_scan {
        let rules = ScanRules {
            secret_names: spec.secret_names.clone(),
        };
        for layer in &mut layers {
            layer.secret_scan = Some(rules.clone());
        }
    }
    let history = layers.iter().map(|l| history_entry(spec, l)).collect();
    let attest = spec.attest.union(options.attest);
    let format = match options.format {
        // BuildKit's attestation layout is an OCI index; a Docker manifest list cannot carry it.
        Some(Format::Docker) if attest.any() => {
            return Err(Error::usage(
                "attestations need OCI media types, but --format docker was asked for",
                "drop --format docker (attested images are written as OCI), or drop --attest and [attest]",
            ));
        }
        None if attest.any() => Some(Format::Oci),
        format => format,
    };
    let default_reference = match &spec.image {
        Some(Location::Registry(reference)) => Some(reference.clone()),
        _ => None,
    };
    Ok(BuildPlan {
        spec_path: spec.path.clone(),
        base,
        base_text: spec.base_text.clone(),
        platform,
        explicit_platform: options.platform.is_some() || spec.platform.is_some(),
        format,
        compression: options.compression,
        threads: options.threads,
        keep_base_remote: options.keep_base_remote,
        start_check: options.start_check,
        cache_repo: cache_repo(options.cache_repo.as_deref())?,
        mtime: options.source_date_epoch.unwrap_or(1),
        created: crate::image::config::created_timestamp(options.source_date_epoch),
        layers,
        history,
        allowed_secrets,
        secret_names: spec.secret_names.clone(),
        config: config_edit(spec),
        library,
        destinations,
        default_reference,
        attest,
        policy_digest: options.policy_digest.clone(),
    })
}

/// The base as the build reads it (a relative local path resolved against
/// the spec's folder) and the platform it picks from it.
pub fn base_and_platform(request: &BuildRequest) -> Result<(Location, Platform), Error> {
    let (spec, options) = (&request.spec, &request.options);
    let platform = match &options.platform {
        Some(text) => Platform::parse(text)?,
        None => spec.platform.clone().unwrap_or_else(Platform::host),
    };
    let spec_dir = spec.path.parent().unwrap_or(Path::new(""));
    Ok((relative_to(spec.base.clone(), spec_dir), platform))
}

/// The library (split by package), the extra files, and the workspace, in that order.
fn plan_layers(
    request: &BuildRequest,
    cache: Option<&Store>,
) -> Result<(Vec<LayerPlan>, Option<LibraryPlan>), Error> {
    let spec = &request.spec;
    let excludes = Excludes::new(&spec.exclude)?;
    let mut known_dirs = KnownDirs::new();
    let (mut layers, library) = match &spec.library {
        Some(mount) => {
            let (layers, library) =
                plan_library(request, mount, &excludes, &mut known_dirs, cache)?;
            (layers, Some(library))
        }
        None => (Vec::new(), None),
    };
    if !spec.files.is_empty() {
        let roots: Vec<LayerRoot> = spec
            .files
            .iter()
            .map(|f| LayerRoot {
                source: f.source.clone(),
                target: f.target.clone(),
                owner: f.owner,
                mode: f.mode,
            })
            .collect();
        layers.push(layer::plan_layer(
            LayerRole::Files,
            &roots,
            &Excludes::default(),
            &mut known_dirs,
        )?);
    }
    if let (Some(workspace), false) = (&spec.workspace, request.options.no_workspace) {
        layers.push(layer::plan_layer(
            LayerRole::Workspace,
            &[LayerRoot {
                source: workspace.source.clone(),
                target: workspace.target.clone(),
                owner: workspace.owner,
                mode: None,
            }],
            &excludes,
            &mut known_dirs,
        )?);
    }
    Ok((layers, library))
}

/// The library's layers, split by package, and what its metadata says it holds.
fn plan_library(
    request: &BuildRequest,
    mount: &Mount,
    excludes: &Excludes,
    known_dirs: &mut KnownDirs,
    cache: Option<&Store>,
) -> Result<(Vec<LayerPlan>, LibraryPlan), Error> {
    let spec = &request.spec;
    let mut library = layer::plan_layer(
        LayerRole::Library,
        &[LayerRoot {
            source: mount.source.clone(),
            target: mount.target.clone(),
            owner: mount.owner,
            mode: None,
        }],
        excludes,
        known_dirs,
    )?;
    let max_layers = request.options.library_layers;
    let cached = cache.map(|store| {
        let key = library_cache::key(mount, max_layers);
        let listing = library.listing_digest();
        let record = library_cache::read(store, &key, &listing);
        (store, (key, listing), record)
    });
    let cached = match cached {
        Some((store, key, Some(record))) => match library_cache::restore(record, library) {
            Ok((inventory, layers)) => {
                // The checks that take the spec run again: it may have changed.
                check_editables(mount, &inventory)?;
                let relocation = relocation(spec, mount, &inventory)?;
                let library = LibraryPlan {
                    source: mount.source.clone(),
                    target: mount.target.clone(),
                    inventory,
                    relocation,
                };
                return Ok((layers, library));
            }
            Err(plan) => {
                library = *plan;
                Some((store, key))
            }
        },
        Some((store, key, None)) => Some((store, key)),
        None => None,
    };
    let inventory = Inventory::read(&mount.source, &library.walked_under(&mount.target))?;
    check_editables(mount, &inventory)?;
    let relocation = relocation(spec, mount, &inventory)?;
    if let Some(relocation) = &relocation {
        library.plan_relocation(&mount.target, &inventory, relocation.clone())?;
    }
    let split = LibrarySplit {
        target: &mount.target,
        inventory: &inventory,
        max_layers,
    };
    let layers = match cached {
        Some((store, (key, listing))) => {
            // Taken before the split, which consumes the plan.
            let unsplit = library_cache::unsplit_record(&library, listing, &inventory);
            let (layers, split) = library.split_by_package_recorded(&split);
            if let Some(record) = unsplit {
                library_cache::write(store, &key, record, split);
            }
            layers
        }
        None => library.split_by_package(&split),
    };
    let library = LibraryPlan {
        source: mount.source.clone(),
        target: mount.target.clone(),
        inventory,
        relocation,
    };
    Ok((layers, library))
}

/// The prefix rewrite the library needs: None when it was installed at its
/// target or nothing names where it was installed; with `relocate = false`
/// a different prefix is a spec error.
fn relocation(
    spec: &Spec,
    library: &Mount,
    inventory: &Inventory,
) -> Result<Option<Relocation>, Error> {
    let Some(from) = &inventory.install_prefix else {
        return Ok(None);
    };
    if *from == library.target {
        return Ok(None);
    }
    if !library.relocate {
        return Err(SpecError::at(
            &spec.path,
            library.position,
            format!(
                "the library was installed at {from}, not at its target {}, and `relocate = false` forbids rewriting it",
                library.target
            ),
            format!(
                "set `target = \"{from}\"` so it runs where it was installed, or `relocate = true` to rewrite {from} to {} in the image",
                library.target
            ),
        )
        .into());
    }
    Ok(Some(Relocation {
        from: from.clone(),
        to: library.target.clone(),
    }))
}

/// An editable install whose code lies outside the library would be missing from the image.
fn check_editables(library: &Mount, inventory: &Inventory) -> Result<(), Error> {
    let source = library.source.to_string_lossy();
    let inside = |location: &str| {
        let under = |root: &str| {
            let root = root.trim_end_matches('/');
            location == root || location.starts_with(&format!("{root}/"))
        };
        under(&source)
            || under(&library.target)
            || inventory.install_prefix.as_deref().is_some_and(under)
    };
    let Some(editable) = inventory
        .editables
        .iter()
        .find(|e| !e.location.as_deref().is_some_and(inside))
    else {
        return Ok(());
    };
    let place = match &editable.location {
        Some(location) => format!("its code is at {location}"),
        None => "its code lives elsewhere".to_string(),
    };
    Err(Error::Library {
        message: format!(
            "package {} is an editable install ({}): {place}, outside the library, so the image would not have it",
            editable.package, editable.metadata
        ),
        hint: format!(
            "install {} without -e (`pip install .` in its folder), or add its code to the image some other way",
            editable.package
        ),
    })
}

/// `--allow-secret` paths and `[secrets] allow`, normalised, and the keys of
/// values (`env.NAME`) as given; a relative path is a usage error.
fn allowed_secret_paths(request: &BuildRequest) -> Result<Vec<String>, Error> {
    let mut allowed = request.spec.secret_allow.clone();
    for path in &request.options.allow_secrets {
        if is_value_key(path) {
            allowed.push(path.clone());
            continue;
        }
        if !path.starts_with('/') {
            return Err(Error::usage(
                format!(
                    "--allow-secret `{path}` is not a path in the image nor the key of a value"
                ),
                "give the absolute path in the image, as the secret scan printed it, e.g. --allow-secret /home/user/work/.ssh/id_ed25519, or the key the spec error named, e.g. --allow-secret env.NAME",
            ));
        }
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        allowed.push(format!("/{}", parts.join("/")));
    }
    Ok(allowed)
}

/// A local base path written in the spec is relative to the spec's folder, like its sources.
fn relative_to(transport: Location, dir: &Path) -> Location {
    let join = |path: PathBuf| {
        if path.is_absolute() {
            path
        } else {
            dir.join(path)
        }
    };
    match transport {
        Location::Oci { path, tag } => Location::Oci {
            path: join(path),
            tag,
        },
        Location::OciArchive { path, tag } => Location::OciArchive {
            path: join(path),
            tag,
        },
        Location::DockerArchive { path, reference } => Location::DockerArchive {
            path: join(path),
            reference,
        },
        other => other,
    }
}

/// The `-o` destinations, else the spec's `image`; a dry run may have none.
fn destinations(request: &BuildRequest) -> Result<Vec<Location>, Error> {
    if !request.options.destinations.is_empty() {
        return request
            .options
            .destinations
            .iter()
            .map(|t| crate::reference::parse_location(t).map_err(Error::from))
            .collect();
    }
    match &request.spec.image {
        Some(image) => Ok(vec![image.clone()]),
        // A dry run writes nothing, so it needs nowhere to write.
        None if request.options.dry_run => Ok(Vec::new()),
        None => Err(Error::usage(
            format!(
                "{}: no destination: the spec has no `image` and no -o was given",
                request.spec.path.display()
            ),
            "pass -o oci:DIR, -o docker-archive:FILE.tar[.gz] or -o oci-archive:FILE, or set `image` in the spec",
        )),
    }
}

/// How many of a library layer's parts its history entry names before `…`.
const HISTORY_PARTS: usize = 8;

/// A layer's history `created_by`: a library layer names what it holds, others their targets.
fn history_entry(spec: &Spec, layer: &LayerPlan) -> String {
    if layer.role != LayerRole::Library {
        return format!(
            "stowage build: {} {}",
            layer.name,
            history_targets(spec, layer.role)
        );
    }
    let mut names: Vec<&str> = layer
        .parts
        .iter()
        .take(HISTORY_PARTS)
        .map(|p| p.label.as_str())
        .collect();
    if layer.parts.len() > HISTORY_PARTS {
        names.push("…");
    }
    if names.is_empty() {
        return format!(
            "stowage: library {}",
            history_targets(spec, LayerRole::Library)
        );
    }
    format!("stowage: library — {}", names.join(", "))
}

/// The image paths a layer's history entry names.
fn history_targets(spec: &Spec, role: LayerRole) -> String {
    match role {
        LayerRole::Library => spec
            .library
            .as_ref()
            .map(|l| l.target.clone())
            .unwrap_or_default(),
        LayerRole::Workspace => spec
            .workspace
            .as_ref()
            .map(|w| w.target.clone())
            .unwrap_or_default(),
        LayerRole::Files => spec
            .files
            .iter()
            .map(|f| f.target.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        // A build plans no base layer: the base's own history describes them.
        LayerRole::Base => String::new(),
    }
}

/// The config-related parts of the spec.
fn config_edit(spec: &Spec) -> ConfigEdit {
    let mut labels = spec.labels.clone();
    if !spec.secret_names.is_empty() {
        labels
            .entry(crate::image::config::DEPLOY_NAMES_LABEL.to_string())
            .or_insert_with(|| spec.secret_names.join(","));
    }
    ConfigEdit {
        env: spec.env.clone(),
        entrypoint: spec.entrypoint.clone(),
        command: spec.command.clone(),
        ports: spec.ports.clone(),
        workdir: spec.workdir.clone(),
        user: spec.user.clone(),
        labels,
    }
}
