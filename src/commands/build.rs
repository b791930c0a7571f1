//! `stowage build`: plan the app's layers, lay them over the base, and write the image to its sinks.
//!
//! The base is never changed in place: its config is edited as raw JSON
//! (so fields stowage does not model survive) and a new manifest is
//! assembled from the base's layers plus the new ones.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::digest::Digest;
use crate::error::Error;
use crate::gzip::CompressPool;
use crate::image::Artifact;
use crate::image::{self, Descriptor, Format, Image, Layer, Platform, canonical_json, media};
use crate::layer::{
    self, BaseFolder, BaseFolders, BuiltLayer, Compression, Excludes, KnownDirs, LayerPlan,
    LayerRoot,
};
use crate::reference::{self, ImageRef, Transport};
use crate::registry::Origin;
use crate::scan::{Finding, ScanRules, SecretsFound};
use crate::spec::Spec;
use crate::store::Store;
use crate::transport::{self, SinkOptions, Source, Transfer, Written};

/// Annotation naming the base image.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// Annotation holding the base manifest's digest.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// Everything a build needs besides the store.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub spec: Spec,
    /// Where to write; empty means the spec's `image`.
    pub destinations: Vec<String>,
    pub no_workspace: bool,
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
}

/// The layers a build would write, before anything is read or written.
#[derive(Debug)]
pub struct BuildPlan {
    pub base: Transport,
    pub platform: Platform,
    pub layers: Vec<LayerPlan>,
    pub destinations: Vec<Transport>,
}

/// What a finished build produced.
#[derive(Debug)]
pub struct BuildOutcome {
    pub image: Image,
    /// The name to print with the digest (`NAME@sha256:…`), when there is one.
    pub name: Option<ImageRef>,
    pub layers: Vec<BuiltLayer>,
    pub written: Vec<Written>,
    pub warnings: Vec<String>,
    /// Secret-scan findings that `--allow-secret` or `[secrets] allow` let through.
    pub allowed_findings: Vec<Finding>,
}

impl BuildOutcome {
    /// The line for stdout: `NAME@sha256:…`, or the bare digest when the image has no name.
    pub fn reference_line(&self) -> String {
        match &self.name {
            Some(name) => name.with_digest(self.image.digest().as_str()),
            None => self.image.digest().to_string(),
        }
    }
}

/// Validates the request and walks the sources (I/O: stats only).
pub fn plan_build(request: &BuildRequest) -> Result<BuildPlan, Error> {
    let spec = &request.spec;
    let spec_dir = spec.path.parent().unwrap_or(std::path::Path::new(""));
    let base = relative_to(reference::parse_transport(&spec.base)?, spec_dir);
    let destinations = destinations(request)?;
    let platform_text = request.platform.as_deref().or(spec.platform.as_deref());
    let platform = match platform_text {
        Some(text) => Platform::parse(text)?,
        None => Platform::host(),
    };
    let excludes = Excludes::new(&spec.exclude)?;
    let mut known_dirs = KnownDirs::new();
    let library = layer::plan_layer(
        "library",
        &[LayerRoot {
            source: spec.library.source.clone(),
            target: spec.library.target.clone(),
            owner: spec.library.owner,
            mode: None,
        }],
        &excludes,
        &mut known_dirs,
    )?;
    let mut layers = library.split_by_package(&spec.library.target, request.library_layers);
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
            "files",
            &roots,
            &Excludes::default(),
            &mut known_dirs,
        )?);
    }
    if let (Some(workspace), false) = (&spec.workspace, request.no_workspace) {
        layers.push(layer::plan_layer(
            "workspace",
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
    if request.secret_scan {
        let rules = ScanRules {
            secret_names: spec.secret_names.clone(),
        };
        for layer in &mut layers {
            layer.secret_scan = Some(rules.clone());
        }
    }
    allowed_secret_paths(request)?;
    Ok(BuildPlan {
        base,
        platform,
        layers,
        destinations,
    })
}

/// `--allow-secret` paths and `[secrets] allow`, normalised; a relative path is a usage error.
fn allowed_secret_paths(request: &BuildRequest) -> Result<Vec<String>, Error> {
    let mut allowed = request.spec.secret_allow.clone();
    for path in &request.allow_secrets {
        if !path.starts_with('/') {
            return Err(Error::usage(
                format!("--allow-secret `{path}` is not a path in the image"),
                "give the absolute path in the image, as the secret scan printed it, e.g. --allow-secret /home/user/work/.ssh/id_ed25519",
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

/// Stops the build when a layer holds a finding no allow-list covers;
/// returns the allowed ones. Runs after the layers are in the store and
/// before any sink sees a byte.
fn check_findings(request: &BuildRequest, built: &[BuiltLayer]) -> Result<Vec<Finding>, Error> {
    let allowed = allowed_secret_paths(request)?;
    let (let_through, refused): (Vec<&Finding>, Vec<&Finding>) = built
        .iter()
        .flat_map(|l| &l.findings)
        .partition(|f| f.is_allowed(&allowed));
    if !refused.is_empty() {
        return Err(SecretsFound {
            findings: refused.into_iter().cloned().collect(),
        }
        .into());
    }
    Ok(let_through.into_iter().cloned().collect())
}

/// A local base path written in the spec is relative to the spec's folder, like its sources.
fn relative_to(transport: Transport, dir: &std::path::Path) -> Transport {
    let join = |path: std::path::PathBuf| {
        if path.is_absolute() {
            path
        } else {
            dir.join(path)
        }
    };
    match transport {
        Transport::Oci { path, tag } => Transport::Oci {
            path: join(path),
            tag,
        },
        Transport::OciArchive { path, tag } => Transport::OciArchive {
            path: join(path),
            tag,
        },
        Transport::DockerArchive { path, reference } => Transport::DockerArchive {
            path: join(path),
            reference,
        },
        other => other,
    }
}

fn destinations(request: &BuildRequest) -> Result<Vec<Transport>, Error> {
    let texts: Vec<&str> = if request.destinations.is_empty() {
        request.spec.image.as_deref().into_iter().collect()
    } else {
        request.destinations.iter().map(String::as_str).collect()
    };
    if texts.is_empty() {
        return Err(Error::usage(
            format!(
                "{}: no destination: the spec has no `image` and no -o was given",
                request.spec.path.display()
            ),
            "pass -o oci:DIR, -o docker-archive:FILE.tar[.gz] or -o oci-archive:FILE, or set `image` in the spec",
        ));
    }
    texts
        .into_iter()
        .map(|t| reference::parse_transport(t).map_err(Error::from))
        .collect()
}

/// Runs the whole build (I/O): base into the store, layers written, config and manifest assembled, every sink written.
pub fn run_build(
    request: &BuildRequest,
    plan: &mut BuildPlan,
    context: &Transfer<'_>,
) -> Result<BuildOutcome, Error> {
    let spec = &request.spec;
    let store = context.store;
    let explicit_platform = request.platform.is_some() || spec.platform.is_some();
    let Base {
        image: base_image,
        origin: base_origin,
        name: base_name,
        config: base_config,
    } = read_base(&plan.base, &plan.platform, explicit_platform, context)?;
    let format = request.format.unwrap_or_else(|| {
        base_image
            .as_ref()
            .map(Image::format)
            .unwrap_or(Format::Oci)
    });
    if request.compression == Compression::Zstd && format == Format::Docker {
        return Err(Error::usage(
            "zstd layers cannot be described in a Docker schema 2 manifest",
            "add --format oci, or use gzip compression",
        ));
    }
    if let (Some(base), false) = (&base_image, request.keep_base_remote) {
        let wanted: BTreeSet<String> = plan
            .layers
            .iter()
            .flat_map(|l| l.defaulted_ancestors())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        if !wanted.is_empty() {
            let folders = base_folders(base, base_origin.as_ref(), &wanted, context)?;
            for layer_plan in &mut plan.layers {
                layer_plan.apply_base_folders(&folders);
            }
        }
    }
    let mtime = request.source_date_epoch.unwrap_or(1);
    let mut layers = match &base_image {
        Some(base) => base_layers_in(format, base, base_origin.as_ref(), context)?,
        None => Vec::new(),
    };
    let warnings: Vec<String> = plan
        .layers
        .iter()
        .flat_map(|l| l.warnings.iter().cloned())
        .collect();
    let pool = match request.threads {
        Some(threads) => CompressPool::new(threads),
        None => CompressPool::for_this_machine(),
    };
    let built = write_layers(&plan.layers, store, request.compression, mtime, &pool)?;
    for layer in &built {
        let oci_type = match request.compression {
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        };
        layers.push(Layer {
            descriptor: Descriptor::new(
                format.layer_media_type(oci_type)?,
                layer.digest.clone(),
                layer.size,
            ),
            diff_id: layer.diff_id.clone(),
        });
    }
    let allowed_findings = check_findings(request, &built)?;
    let created = created_timestamp(request.source_date_epoch);
    let config = edit_config(base_config, spec, &plan.platform, &built, &created, plan)?;
    let raw_config = canonical_json(&config);
    let mut annotations = BTreeMap::new();
    if let Some(base) = &base_image {
        annotations.insert(BASE_DIGEST.to_string(), base.digest().to_string());
        if let Some(name) = base_name {
            annotations.insert(BASE_NAME.to_string(), name);
        }
    }
    let image = Image::assemble(format, raw_config, layers, annotations)?;
    store.write_bytes(image.raw_config())?;
    store.write_bytes(image.raw_manifest())?;

    let name = output_name(spec, &plan.destinations);
    let options = SinkOptions {
        platform: plan.platform.clone(),
        mtime,
        default_tag: spec_image(spec)
            .map(|r| r.tag_or_latest().to_string())
            .unwrap_or_else(|| "latest".into()),
        default_reference: spec_image(spec),
    };
    let source = Source {
        artifact: Artifact::Image(image.clone()),
        origin: base_origin,
        name: None,
    };
    let written = transport::write_all(&plan.destinations, &source, context, &options)?;
    Ok(BuildOutcome {
        image,
        name,
        layers: built,
        written,
        warnings,
        allowed_findings,
    })
}

fn spec_image(spec: &Spec) -> Option<ImageRef> {
    match reference::parse_transport(spec.image.as_deref()?) {
        Ok(Transport::Registry(reference)) => Some(reference),
        _ => None,
    }
}

/// The name printed with the digest: the first named destination, else the spec's `image`.
fn output_name(spec: &Spec, destinations: &[Transport]) -> Option<ImageRef> {
    destinations
        .iter()
        .find_map(|d| match d {
            Transport::Registry(reference) => Some(reference.clone()),
            Transport::DockerArchive {
                reference: Some(reference),
                ..
            } => Some(reference.clone()),
            _ => None,
        })
        .or_else(|| spec_image(spec))
}

/// What the build starts from.
struct Base {
    /// None for scratch.
    image: Option<Image>,
    /// Where a registry base's blobs live.
    origin: Option<Origin>,
    /// The base's full name, when it has one that is not a local path.
    name: Option<String>,
    /// The config JSON to edit.
    config: Value,
}

/// Reads the base image (I/O), or makes the empty config for scratch.
fn read_base(
    base: &Transport,
    platform: &Platform,
    explicit_platform: bool,
    context: &Transfer<'_>,
) -> Result<Base, Error> {
    if matches!(base, Transport::Scratch) {
        let mut config = json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        if let Some(variant) = &platform.variant {
            config["variant"] = json!(variant);
        }
        return Ok(Base {
            image: None,
            origin: None,
            name: None,
            config,
        });
    }
    let (image, read) = transport::read_image(base, platform, context)?;
    if explicit_platform
        && let Some(actual) = image.platform()
        && !actual.satisfies(platform)
    {
        return Err(Error::Image(image::ImageError::NoPlatform {
            wanted: platform.to_string(),
            available: actual.to_string(),
        }));
    }
    let config = image.config_json()?;
    Ok(Base {
        image: Some(image),
        origin: read.origin,
        name: read.name,
        config,
    })
}

/// Writes the layers (I/O), several at once, each skipped when the layer cache
/// knows its fingerprint and the store still has its blob. Results keep plan order.
fn write_layers(
    plans: &[LayerPlan],
    store: &Store,
    compression: Compression,
    mtime: u64,
    pool: &CompressPool,
) -> Result<Vec<BuiltLayer>, Error> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<BuiltLayer, Error>>>> =
        plans.iter().map(|_| std::sync::Mutex::new(None)).collect();
    // Walking and hashing run on these threads, compression on the pool's: one more
    // walker than compressors keeps the pool fed without thrashing the disk.
    let walkers = (pool.threads() + 1).min(plans.len()).clamp(1, 8);
    std::thread::scope(|scope| {
        for _ in 0..walkers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(layer_plan) = plans.get(i) else {
                        break;
                    };
                    let outcome = cached_or_written(layer_plan, store, compression, mtime, pool);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(outcome);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(Error::Unsupported {
                    message: "internal: a layer thread stopped without a result".into(),
                    hint: None,
                })
            })
        })
        .collect()
}

fn cached_or_written(
    plan: &LayerPlan,
    store: &Store,
    compression: Compression,
    mtime: u64,
    pool: &CompressPool,
) -> Result<BuiltLayer, Error> {
    let fingerprint = plan.fingerprint(compression, mtime);
    let record_path = store
        .root()
        .join("meta")
        .join("layers")
        .join(format!("{}.json", fingerprint.hex()));
    if let Some(cached) = read_layer_record(&record_path, plan, compression)
        && store.blob_size(&cached.digest).ok() == Some(cached.size)
    {
        return Ok(cached);
    }
    let built = layer::write_layer(plan, store, compression, mtime, pool)?;
    let findings: Vec<Value> = built
        .findings
        .iter()
        .map(|f| json!({"path": f.path, "line": f.line, "rule": f.rule}))
        .collect();
    let record = json!({
        "digest": built.digest,
        "diff_id": built.diff_id,
        "size": built.size,
        "findings": findings,
    });
    // The cache only saves time; failing to write a record must not fail the build.
    if let Some(dir) = record_path.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = crate::transport::archive::write_atomic(&record_path, &canonical_json(&record));
    }
    Ok(built)
}

fn read_layer_record(
    path: &std::path::Path,
    plan: &LayerPlan,
    compression: Compression,
) -> Option<BuiltLayer> {
    let value: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(BuiltLayer {
        name: plan.name.clone(),
        digest: value.get("digest")?.as_str()?.parse().ok()?,
        diff_id: value.get("diff_id")?.as_str()?.parse().ok()?,
        size: value.get("size")?.as_u64()?,
        compression,
        findings: value
            .get("findings")?
            .as_array()?
            .iter()
            .map(|f| {
                Some(crate::scan::Finding {
                    path: f.get("path")?.as_str()?.to_string(),
                    line: f.get("line").and_then(Value::as_u64),
                    rule: crate::scan::rule_named(f.get("rule")?.as_str()?)?,
                })
            })
            .collect::<Option<Vec<_>>>()?,
        entry_count: plan.entry_count,
        file_count: plan.file_count,
        cached: true,
    })
}

/// What the base has at the ancestor folders the new layers describe (I/O:
/// reads the base layers' tar headers, fetching them first for a registry base).
/// Remembered in the store by base digest and path set, so a rebuild reads no
/// base layer.
fn base_folders(
    base: &Image,
    origin: Option<&Origin>,
    wanted: &BTreeSet<String>,
    context: &Transfer<'_>,
) -> Result<BaseFolders, Error> {
    let key = format!(
        "{}\n{}",
        base.digest(),
        wanted.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    let cache_dir = context.store.root().join("meta").join("base-folders");
    let cache = cache_dir.join(format!("{}.json", Digest::of(key.as_bytes()).hex()));
    if let Some(cached) = std::fs::read(&cache)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| folders_from_json(&v))
    {
        return Ok(cached);
    }
    transport::ensure_local(&Artifact::Image(base.clone()), origin, context)?;
    let paths = wanted.iter().map(|p| p.as_bytes().to_vec()).collect();
    let folders = layer::scan_base_folders(context.store, base.layers(), &paths)?;
    // The cache only saves time; failing to write it must not fail the build.
    if std::fs::create_dir_all(&cache_dir).is_ok() {
        let _ = crate::transport::archive::write_atomic(
            &cache,
            &canonical_json(&folders_to_json(&folders)),
        );
    }
    Ok(folders)
}

fn folders_to_json(folders: &BaseFolders) -> Value {
    let map: Map<String, Value> = folders
        .iter()
        .map(|(path, folder)| {
            let value = match folder {
                BaseFolder::Dir { mode, owner } => {
                    json!({"mode": mode, "uid": owner.uid, "gid": owner.gid})
                }
                BaseFolder::NotDir => json!("not-dir"),
            };
            (String::from_utf8_lossy(path).into_owned(), value)
        })
        .collect();
    Value::Object(map)
}

fn folders_from_json(value: &Value) -> Option<BaseFolders> {
    value
        .as_object()?
        .iter()
        .map(|(path, v)| {
            let folder = match v {
                Value::String(s) if s == "not-dir" => BaseFolder::NotDir,
                Value::Object(_) => BaseFolder::Dir {
                    mode: u32::try_from(v.get("mode")?.as_u64()?).ok()?,
                    owner: crate::spec::Owner {
                        uid: v.get("uid")?.as_u64()?,
                        gid: v.get("gid")?.as_u64()?,
                    },
                },
                _ => return None,
            };
            Some((path.as_bytes().to_vec(), folder))
        })
        .collect()
}

/// The base's layers, described in `format`, with uncompressed ones gzipped (registries and
/// docker load both prefer it, and it keeps pushes small).
fn base_layers_in(
    format: Format,
    base: &Image,
    origin: Option<&Origin>,
    context: &Transfer<'_>,
) -> Result<Vec<Layer>, Error> {
    base.layers()
        .iter()
        .map(|layer| {
            let mut descriptor = layer.descriptor.clone();
            if image::is_uncompressed_layer(&descriptor.media_type) {
                if let Some(origin) = origin {
                    context
                        .registry
                        .fetch_blob(origin, &descriptor, context.store)?;
                }
                let (digest, size) = crate::transport::archive::gzip_stored_layer(
                    context.store,
                    &descriptor.digest,
                )?;
                descriptor = Descriptor::new(media::OCI_LAYER_GZIP, digest, size);
            }
            descriptor.media_type = format.layer_media_type(&descriptor.media_type)?.to_string();
            Ok(Layer {
                descriptor,
                diff_id: layer.diff_id.clone(),
            })
        })
        .collect()
}

/// RFC 3339 time of `SOURCE_DATE_EPOCH`, or the epoch.
pub fn created_timestamp(source_date_epoch: Option<u64>) -> String {
    let secs = source_date_epoch.unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm: a date without a date crate.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Expands `${NAME}` against `env`; an unknown name expands to nothing, as in a Dockerfile.
pub fn expand_env(value: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if let Some((_, v)) = env.iter().rev().find(|(k, _)| k == name) {
                    out.push_str(v);
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn env_pairs(list: Option<&Value>) -> Vec<(String, String)> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Applies the spec to the base config: env, entrypoint/cmd, ports, workdir, user, labels, rootfs, history, created.
fn edit_config(
    mut config: Value,
    spec: &Spec,
    platform: &Platform,
    built: &[BuiltLayer],
    created: &str,
    plan: &BuildPlan,
) -> Result<Value, Error> {
    let root = config
        .as_object_mut()
        .ok_or_else(|| image::ImageError::Invalid {
            what: "base image config".into(),
            problem: "it is not a JSON object".into(),
        })?;
    if !root.get("config").is_some_and(Value::is_object) {
        root.insert("config".into(), json!({}));
    }
    if !root.contains_key("os") {
        root.insert("os".into(), json!(platform.os));
        root.insert("architecture".into(), json!(platform.architecture));
    }
    let run = root
        .get_mut("config")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| image::ImageError::Invalid {
            what: "base image config".into(),
            problem: "`config` is not an object".into(),
        })?;

    let mut env = env_pairs(run.get("Env"));
    for (name, raw) in &spec.env {
        let value = expand_env(raw, &env);
        match env.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => env.push((name.clone(), value)),
        }
    }
    if !env.is_empty() {
        run.insert(
            "Env".into(),
            Value::Array(
                env.into_iter()
                    .map(|(k, v)| Value::String(format!("{k}={v}")))
                    .collect(),
            ),
        );
    }
    if let Some(entrypoint) = &spec.entrypoint {
        run.insert("Entrypoint".into(), json!(entrypoint));
        // Docker semantics: a new entrypoint without a command drops the base's Cmd.
        if spec.command.is_none() {
            run.remove("Cmd");
        }
    }
    if let Some(command) = &spec.command {
        run.insert("Cmd".into(), json!(command));
    }
    if !spec.ports.is_empty() {
        let ports = object_entry(run, "ExposedPorts");
        for port in &spec.ports {
            ports.insert(port.clone(), json!({}));
        }
    }
    if let Some(workdir) = &spec.workdir {
        run.insert("WorkingDir".into(), json!(workdir));
    }
    if let Some(user) = &spec.user {
        run.insert("User".into(), json!(user));
    }
    if !spec.labels.is_empty() {
        let labels = object_entry(run, "Labels");
        for (k, v) in &spec.labels {
            labels.insert(k.clone(), json!(v));
        }
    }

    let rootfs = object_entry(root, "rootfs");
    rootfs.insert("type".into(), json!("layers"));
    let diff_ids = match rootfs.get_mut("diff_ids") {
        Some(Value::Array(ids)) => ids,
        _ => {
            rootfs.insert("diff_ids".into(), json!([]));
            rootfs
                .get_mut("diff_ids")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| Error::Unsupported {
                    message: "internal: diff_ids list vanished".into(),
                    hint: None,
                })?
        }
    };
    for layer in built {
        diff_ids.push(json!(layer.diff_id));
    }
    let history = match root.get_mut("history") {
        Some(Value::Array(h)) => h,
        _ => {
            root.insert("history".into(), json!([]));
            root.get_mut("history")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| Error::Unsupported {
                    message: "internal: history list vanished".into(),
                    hint: None,
                })?
        }
    };
    for (layer, layer_plan) in built.iter().zip(&plan.layers) {
        let targets = history_targets(spec, &layer_plan.name);
        history.push(json!({
            "created": created,
            "created_by": format!("stowage build: {} {}", layer.name, targets),
            "comment": "stowage",
        }));
    }
    root.insert("created".into(), json!(created));
    Ok(config)
}

fn history_targets(spec: &Spec, layer: &str) -> String {
    match layer {
        name if name.starts_with("library") => spec.library.target.clone(),
        "workspace" => spec
            .workspace
            .as_ref()
            .map(|w| w.target.clone())
            .unwrap_or_default(),
        _ => spec
            .files
            .iter()
            .map(|f| f.target.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn object_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    if !map.get(key).is_some_and(Value::is_object) {
        map.insert(key.to_string(), json!({}));
    }
    match map.get_mut(key) {
        Some(Value::Object(inner)) => inner,
        // Just made sure it is an object.
        _ => unreachable!("object_entry inserted an object"),
    }
}

/// Metadata written by `--metadata-file`.
pub fn metadata_json(outcome: &BuildOutcome, plan: &BuildPlan) -> Value {
    let layers: Vec<Value> = outcome
        .layers
        .iter()
        .zip(&plan.layers)
        .map(|(layer, layer_plan)| {
            json!({
                "name": layer.name,
                "digest": layer.digest,
                "diff_id": layer.diff_id,
                "size": layer.size,
                "files": layer.file_count,
                "entries": layer.entry_count,
                "cached": layer.cached,
                "source": layer_plan.sources.iter().map(|s| s.display().to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "digest": outcome.image.digest(),
        "reference": outcome.reference_line(),
        "media_type": outcome.image.media_type(),
        "config_digest": outcome.image.config_descriptor().digest,
        "references": outcome.written.iter().map(|w| w.destination.clone()).collect::<Vec<_>>(),
        "layers": layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(created_timestamp(None), "1970-01-01T00:00:00Z");
        assert_eq!(
            created_timestamp(Some(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(created_timestamp(Some(951_782_400)), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn env_expansion_uses_earlier_values() {
        let env = vec![("PATH".to_string(), "/usr/bin".to_string())];
        assert_eq!(
            expand_env("/opt/app/bin:${PATH}", &env),
            "/opt/app/bin:/usr/bin"
        );
        assert_eq!(expand_env("${MISSING}x", &env), "x");
        assert_eq!(
            expand_env("$PATH ${unterminated", &env),
            "$PATH ${unterminated"
        );
    }
}
