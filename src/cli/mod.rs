//! The command line: parses arguments, calls the library, prints results and errors. No image logic lives here.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::commands::build::{self, BuildRequest};
use crate::digest::Digest;
use crate::error::Error;
use crate::exports::{self, Exports, Kind, NewExport, Status};
use crate::image::Artifact;
use crate::image::{Format, Platform};
use crate::layer::Compression;
use crate::reference::{self, Transport};
use crate::registry::credentials::{self, Credential};
use crate::registry::{LogSink, PushReport, Registry, RegistryOptions, TransferProgress};
use crate::spec;
use crate::store::{self, Store};
use crate::transport::{self, SinkOptions, Transfer};

#[derive(Parser, Debug)]
#[command(
    name = "stowage",
    version,
    about = "Export an application to an OCI image, without a container daemon"
)]
struct Cli {
    /// Print only the result.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Say more about what happens (repeatable).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Print machine-readable JSON where the output is data.
    #[arg(long, global = true)]
    json: bool,
    /// Allow plain HTTP or unverified TLS for this registry host only (repeatable).
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    insecure_registry: Vec<String>,
    /// Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60].
    #[arg(long, global = true, value_name = "SECS", env = "STOWAGE_TIMEOUT", value_parser = parse_seconds)]
    timeout: Option<std::time::Duration>,
    /// Give up connecting to a registry after this many seconds [default: 30].
    #[arg(long, global = true, value_name = "SECS", env = "STOWAGE_CONNECT_TIMEOUT", value_parser = parse_seconds)]
    connect_timeout: Option<std::time::Duration>,
    /// Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5].
    #[arg(long, global = true, value_name = "N", env = "STOWAGE_RETRIES")]
    retries: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build the image described by a stowage.toml and write it to each destination.
    Build(BuildArgs),
    /// Copy an image between any two transports, keeping its digest (an index keeps all platforms).
    Copy {
        /// Source: REF or docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF].
        source: String,
        /// Destination, in the same forms.
        dest: String,
        /// Copy only this platform of an index (and pick it for a docker-archive).
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        #[command(flatten)]
        push: PushArgs,
    },
    /// Push an image to a registry: `copy` whose destination is a registry.
    Push {
        /// Source, any transport: oci:DIR[:TAG], docker-archive:FILE[:REF], REF…
        source: String,
        /// Registry destination: REF or docker://REF.
        dest: String,
        /// Also tag the pushed image with this tag (repeatable).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Push only this platform of an index.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        #[command(flatten)]
        push: PushArgs,
    },
    /// Pull an image from a registry and write a docker-save tarball (.tar or .tar.gz).
    Archive {
        /// The image: REF or docker://REF.
        reference: String,
        /// The tarball to write; a name ending in .gz is gzipped.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Platform to pick from a multi-platform image (default: this machine's).
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Check credentials against a registry and store them in Docker's config.json.
    Login {
        /// The registry (default: Docker Hub).
        registry: Option<String>,
        /// The username.
        #[arg(short = 'u', long = "username")]
        username: String,
        /// Read the password or token from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget the stored credentials for a registry.
    Logout {
        /// The registry (default: Docker Hub).
        registry: Option<String>,
    },
    /// Show an image's summary, or its exact manifest or config bytes.
    Inspect {
        /// The image: REF or docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF].
        source: String,
        /// Print the exact bytes of the manifest (or index) or of the config.
        #[arg(long, value_enum)]
        raw: Option<RawPart>,
        /// Platform to show when the source is an index.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Write a commented starter stowage.toml.
    Init {
        /// Folder to write it in (default: the current one).
        dir: Option<PathBuf>,
    },
    /// List past exports (builds, pushes, copies, archives), or delete one from where it went.
    Exports(ExportsArgs),
    /// Print the `docker run` line that starts an export: REF (read now) or an export ID.
    #[command(name = "run-command")]
    StartLine {
        /// A registry reference, docker-archive:FILE, or an id from `stowage exports`.
        target: String,
    },
}

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
struct ExportsArgs {
    #[command(subcommand)]
    action: Option<ExportsAction>,
    /// Show only exports with this status.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
}

#[derive(Subcommand, Debug)]
enum ExportsAction {
    /// List exports, oldest first (the default).
    List {
        /// Show only exports with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
    },
    /// Delete an export's image from its registry (or its archive file) and mark the record deleted.
    Delete {
        /// The id from `stowage exports`.
        id: i64,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum StatusArg {
    Ok,
    Failed,
    Deleted,
}

/// How blobs are pushed.
#[derive(clap::Args, Debug, Clone)]
struct PushArgs {
    /// Upload blobs in chunks of this size (e.g. 16MiB) instead of one streamed request.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    chunk_size: Option<u64>,
    /// Blobs pushed at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
}

#[derive(clap::Args, Debug)]
struct BuildArgs {
    /// The spec file.
    #[arg(short = 'f', long = "file", default_value = spec::SPEC_FILE_NAME)]
    file: PathBuf,
    /// Destination (repeatable): oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE.tar[.gz][:REF].
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    outputs: Vec<String>,
    /// Leave the workspace out of the image.
    #[arg(long)]
    no_workspace: bool,
    /// Platform to pick from a multi-platform base (and to record for scratch).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Manifest family (default: the base's; OCI for scratch).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    compression: CompressionArg,
    /// Write the image digest to this file.
    #[arg(long, value_name = "FILE")]
    digest_file: Option<PathBuf>,
    /// Write build metadata (digest, layers) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// Print the plan (layers, sources, sizes) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Split the library into at most this many layers by package (1: one layer).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    library_layers: u16,
    /// Never download the base's layers: parent folders of targets get root-owned 0755
    /// instead of the base's own owner and mode (read once per base and cached otherwise).
    #[arg(long)]
    keep_base_remote: bool,
    /// Compression threads (default: one per core); the image is the same for any count.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Let the secret scan pass this path in the image (a file, or a folder and all in it; repeatable).
    #[arg(long = "allow-secret", value_name = "PATH")]
    allow_secrets: Vec<String>,
    /// Do not scan the added files for keys, tokens and credential files.
    #[arg(long)]
    no_secret_scan: bool,
    #[command(flatten)]
    push: PushArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum FormatArg {
    Oci,
    Docker,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum CompressionArg {
    Gzip,
    Zstd,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum RawPart {
    Manifest,
    Config,
}

/// How chatty stderr is, and the settings every command shares.
struct Output {
    quiet: bool,
    verbose: u8,
    json: bool,
    insecure: Vec<String>,
    timeout: Option<std::time::Duration>,
    connect_timeout: Option<std::time::Duration>,
    retries: Option<u32>,
}

impl Output {
    fn info(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    fn detail(&self, message: &str) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("{message}");
        }
    }

    fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }
}

/// Runs the command line and returns the process exit code.
pub fn run() -> i32 {
    bound_allocator_growth();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 2,
            };
        }
    };
    let out = Output {
        quiet: cli.quiet,
        verbose: cli.verbose,
        json: cli.json,
        insecure: cli.insecure_registry,
        timeout: cli.timeout,
        connect_timeout: cli.connect_timeout,
        retries: cli.retries,
    };
    match dispatch(cli.command, &out) {
        Ok(()) => 0,
        Err(err) => report_error(&err),
    }
}

/// Large buffers (1 MiB gzip chunks) go straight to mmap and back to the
/// system when freed. glibc otherwise raises its mmap threshold after the
/// first frees and keeps such buffers in per-thread arenas, which doubled
/// peak memory on the 500 MB benchmark and grew with the thread count.
fn bound_allocator_growth() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

fn report_error(err: &anyhow::Error) -> i32 {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err}");
    for cause in err.chain().skip(1) {
        let _ = writeln!(stderr, "  Caused by: {cause}");
    }
    let library_error = err.chain().find_map(|e| e.downcast_ref::<Error>());
    if let Some(hint) = library_error.and_then(Error::hint) {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    library_error.map(Error::exit_code).unwrap_or(1)
}

fn dispatch(command: Command, out: &Output) -> anyhow::Result<()> {
    match command {
        Command::Build(args) => run_build(args, out),
        Command::Copy {
            source,
            dest,
            platform,
            push,
        } => run_copy(
            Kind::Copy,
            &source,
            &dest,
            platform.as_deref(),
            &[],
            &push,
            out,
        ),
        Command::Push {
            source,
            dest,
            tags,
            platform,
            push,
        } => {
            if !matches!(
                reference::parse_transport(&dest).map_err(Error::from)?,
                Transport::Registry(_)
            ) {
                return Err(Error::usage(
                    format!("`{dest}` is not a registry destination"),
                    "push to REF or docker://REF; use `stowage copy` for local destinations",
                )
                .into());
            }
            run_copy(
                Kind::Push,
                &source,
                &dest,
                platform.as_deref(),
                &tags,
                &push,
                out,
            )
        }
        Command::Archive {
            reference,
            output,
            platform,
        } => run_archive(&reference, &output, platform.as_deref(), out),
        Command::Login {
            registry,
            username,
            password_stdin,
        } => run_login(registry.as_deref(), &username, password_stdin, out),
        Command::Logout { registry } => run_logout(registry.as_deref(), out),
        Command::Inspect {
            source,
            raw,
            platform,
        } => run_inspect(&source, raw, platform.as_deref(), out),
        Command::Init { dir } => run_init(dir.as_deref().unwrap_or(Path::new(".")), out),
        Command::Exports(args) => match args.action {
            None => run_exports_list(args.status, out),
            Some(ExportsAction::List { status }) => run_exports_list(status.or(args.status), out),
            Some(ExportsAction::Delete { id }) => run_exports_delete(id, out),
        },
        Command::StartLine { target } => run_run_command(&target, out),
    }
}

/// Adds the export record; a record that cannot be written is a warning, never a failed export.
fn record_export(out: &Output, new: &NewExport) {
    match Exports::open_default().and_then(|mut e| e.record(new)) {
        // A failed export's record is news only with -v: the error comes first.
        Ok(id) if new.error.is_some() => {
            out.detail(&format!("recorded as export {id} (`stowage exports`)"))
        }
        Ok(id) => out.info(&format!("recorded as export {id} (`stowage exports`)")),
        Err(e) => out.warn(&format!("could not record this export: {e}")),
    }
}

/// The error and its causes in one line, as a record keeps it.
fn error_text(err: &anyhow::Error) -> String {
    format!("{err:#}")
}

/// Secret names of the build that made `digest`, for a later push's run line.
fn recorded_secret_names(digest: &str) -> Vec<String> {
    Exports::open_default()
        .and_then(|e| e.secret_names_for(digest))
        .unwrap_or_default()
}

fn run_exports_list(status: Option<StatusArg>, out: &Output) -> anyhow::Result<()> {
    let status = status.map(|s| match s {
        StatusArg::Ok => Status::Ok,
        StatusArg::Failed => Status::Failed,
        StatusArg::Deleted => Status::Deleted,
    });
    let exports = Exports::open_default().map_err(Error::from)?;
    let records = exports.list(status).map_err(Error::from)?;
    let mut stdout = std::io::stdout().lock();
    if out.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&records)?)?;
        return Ok(());
    }
    if records.is_empty() {
        match status {
            Some(status) => out.info(&format!("no exports with status {}", status.as_str())),
            None => out.info("no exports recorded yet"),
        }
        return Ok(());
    }
    writeln!(
        stdout,
        "{:<5} {:<20} {:<7} {:<7} {:<19} {:>10}  DESTINATIONS",
        "ID", "TIME", "KIND", "STATUS", "DIGEST", "SIZE"
    )?;
    for r in &records {
        let digest = r
            .digest
            .as_deref()
            .map(|d| d.chars().take(19).collect::<String>())
            .unwrap_or_else(|| "-".into());
        let size = r.size.map(human_bytes).unwrap_or_else(|| "-".into());
        let destinations: Vec<String> = r
            .destinations
            .iter()
            .map(|d| match d.size {
                Some(bytes) => format!("{} ({})", d.destination, human_bytes(bytes)),
                None => d.destination.clone(),
            })
            .collect();
        writeln!(
            stdout,
            "{:<5} {:<20} {:<7} {:<7} {:<19} {:>10}  {}",
            r.id,
            r.time,
            r.kind.as_str(),
            r.status.as_str(),
            digest,
            size,
            destinations.join(", ")
        )?;
        if let Some(error) = &r.error {
            let first = error.lines().next().unwrap_or_default();
            writeln!(stdout, "      error: {first}")?;
        }
    }
    Ok(())
}

fn run_exports_delete(id: i64, out: &Output) -> anyhow::Result<()> {
    let mut exports = Exports::open_default().map_err(Error::from)?;
    let store = open_store()?;
    let registry = open_registry(out, None)?;
    let context = Transfer {
        store: &store,
        registry: &registry,
    };
    let done = exports::delete_export(&mut exports, id, &context)
        .with_context(|| format!("cannot delete export {id}"))?;
    for d in &done {
        out.info(&format!("{}: {}", d.destination, d.what));
    }
    out.info(&format!("export {id} is marked deleted"));
    Ok(())
}

fn run_run_command(target: &str, out: &Output) -> anyhow::Result<()> {
    let exports = Exports::open_default().map_err(Error::from)?;
    let store = open_store()?;
    let registry = open_registry(out, None)?;
    let context = Transfer {
        store: &store,
        registry: &registry,
    };
    let line = exports::run_command_for(target, &exports, &context)
        .with_context(|| format!("cannot make the run command for {target}"))?;
    println!("{line}");
    Ok(())
}

fn open_store() -> anyhow::Result<Store> {
    Ok(Store::open(store::default_store_root()).map_err(Error::from)?)
}

fn open_registry(out: &Output, push: Option<&PushArgs>) -> anyhow::Result<Registry> {
    let log: Option<LogSink> = if out.verbose > 0 && !out.quiet {
        Some(std::sync::Arc::new(|line: &str| eprintln!("{line}")))
    } else {
        None
    };
    let options = RegistryOptions {
        insecure: out.insecure.clone(),
        chunk_size: push.and_then(|p| p.chunk_size),
        jobs: push.map(|p| p.jobs).unwrap_or(4),
        retries: out.retries.unwrap_or(crate::registry::DEFAULT_RETRIES),
        connect_timeout: out.connect_timeout,
        timeout: out.timeout,
        log,
        progress: (!out.quiet).then(|| {
            std::sync::Arc::new(ProgressDisplay::new()) as std::sync::Arc<dyn TransferProgress>
        }),
    };
    Ok(Registry::new(options).map_err(Error::from)?)
}

/// Blob transfer progress on stderr: a redrawn line with bytes and rate on a
/// terminal, one plain line per finished blob otherwise.
struct ProgressDisplay {
    tty: bool,
    started: std::time::Instant,
    total: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
    last_draw_ms: std::sync::atomic::AtomicU64,
    verb: std::sync::Mutex<String>,
}

impl ProgressDisplay {
    fn new() -> ProgressDisplay {
        use std::io::IsTerminal;
        ProgressDisplay {
            tty: std::io::stderr().is_terminal(),
            started: std::time::Instant::now(),
            total: 0.into(),
            done: 0.into(),
            last_draw_ms: 0.into(),
            verb: std::sync::Mutex::new(String::new()),
        }
    }

    fn draw(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let done = self.done.load(Relaxed);
        let total = self.total.load(Relaxed).max(done);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let verb = self.verb.lock().map(|v| v.clone()).unwrap_or_default();
        eprint!(
            "\r\x1b[K{verb} {} / {} ({}/s)",
            human_bytes(done),
            human_bytes(total),
            human_bytes((done as f64 / secs) as u64)
        );
    }
}

impl TransferProgress for ProgressDisplay {
    fn begin(&self, verb: &str, _digest: &Digest, bytes: u64) {
        self.total
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut current) = self.verb.lock() {
            *current = verb.to_string();
        }
    }

    fn advance(&self, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.done.fetch_add(bytes, Relaxed);
        if !self.tty {
            return;
        }
        // Redraw at most ten times a second: a terminal is slower than a fast upload.
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_draw_ms.load(Relaxed);
        if now.saturating_sub(last) >= 100
            && self
                .last_draw_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            self.draw();
        }
    }

    fn end(&self, outcome: &str, digest: &Digest, bytes: u64) {
        let short = &digest.hex()[..12];
        if self.tty {
            eprint!("\r\x1b[K");
        }
        eprintln!("{outcome} {short} ({})", human_bytes(bytes));
        if self.tty {
            self.draw();
        }
    }
}

fn report_push(out: &Output, destination: &str, report: &PushReport) {
    out.info(&format!(
        "pushed {destination}: {} uploaded ({}), {} mounted, {} already there",
        report.uploaded,
        human_bytes(report.uploaded_bytes),
        report.mounted,
        report.skipped
    ));
}

fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().parse().map_err(|_| {
            Error::usage(
                format!("SOURCE_DATE_EPOCH=`{text}` is not a whole number of seconds"),
                "set it to seconds since 1970, e.g. $(git log -1 --format=%ct), or unset it",
            )
        })?)),
        _ => Ok(None),
    }
}

fn run_build(args: BuildArgs, out: &Output) -> anyhow::Result<()> {
    let mut request = None;
    let mut plan = None;
    let result = build_and_report(&args, out, &mut request, &mut plan);
    if args.dry_run {
        return result.map(|_| ());
    }
    match result {
        Ok(Some(new)) => {
            record_export(out, &new);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(err) => {
            let requested = match (&args.outputs[..], &request) {
                ([], Some(r)) => r.spec.image.iter().cloned().collect(),
                (outputs, _) => outputs.to_vec(),
            };
            let new = NewExport::build_failed(
                &args.file,
                request.as_ref(),
                plan.as_ref(),
                &requested,
                error_text(&err),
            );
            record_export(out, &new);
            Err(err)
        }
    }
}

/// Builds and prints; returns the record to keep (None for --dry-run). The
/// request and plan are left in the slots so a failure can be recorded with them.
fn build_and_report(
    args: &BuildArgs,
    out: &Output,
    request_slot: &mut Option<BuildRequest>,
    plan_slot: &mut Option<build::BuildPlan>,
) -> anyhow::Result<Option<NewExport>> {
    let spec = spec::read_spec(&args.file).map_err(Error::from)?;
    let request = BuildRequest {
        threads: args.threads.map(usize::from),
        library_layers: usize::from(args.library_layers),
        keep_base_remote: args.keep_base_remote,
        spec,
        destinations: args.outputs.clone(),
        no_workspace: args.no_workspace,
        platform: args.platform.clone(),
        format: args.format.map(|f| match f {
            FormatArg::Oci => Format::Oci,
            FormatArg::Docker => Format::Docker,
        }),
        compression: match args.compression {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
        },
        source_date_epoch: source_date_epoch()?,
        secret_scan: !args.no_secret_scan,
        allow_secrets: args.allow_secrets.clone(),
    };
    let request = request_slot.insert(request);
    let plan = plan_slot.insert(build::plan_build(request)?);
    if args.no_secret_scan {
        out.warn("the secret scan is off (--no-secret-scan): keys, tokens and credential files in the sources go into the image unchecked");
    }
    for warning in plan.layers.iter().flat_map(|l| &l.warnings) {
        out.warn(warning);
    }
    if args.dry_run {
        print_plan(plan, out);
        return Ok(None);
    }
    let store = open_store()?;
    let registry = open_registry(out, Some(&args.push))?;
    let context = Transfer {
        store: &store,
        registry: &registry,
    };
    let outcome = build::run_build(request, plan, &context).with_context(|| {
        format!(
            "cannot build the image described by {}",
            args.file.display()
        )
    })?;
    for finding in &outcome.allowed_findings {
        out.info(&format!("secret scan: {finding} (allowed)"));
    }
    for layer in &outcome.layers {
        out.info(&format!(
            "layer {:<16} {} files, {} → {}{}",
            layer.name,
            layer.file_count,
            human_bytes(layer.size),
            layer.digest,
            if layer.cached { " (cached)" } else { "" }
        ));
    }
    for written in &outcome.written {
        match &written.push {
            Some(report) => report_push(out, &written.destination, report),
            None => out.info(&format!("wrote {}", written.destination)),
        }
    }
    let new = NewExport::build_ok(request, plan, &outcome);
    if outcome.written.iter().any(|w| w.push.is_some())
        && let Some(line) = &new.run_command
    {
        out.info(&format!("run it with: {line}"));
    }
    let metadata = build::metadata_json(&outcome, plan);
    if let Some(path) = &args.digest_file {
        crate::transport::archive::write_atomic(path, outcome.image.digest().as_str().as_bytes())
            .map_err(Error::from)?;
    }
    if let Some(path) = &args.metadata_file {
        let mut text = serde_json::to_vec_pretty(&metadata)?;
        text.push(b'\n');
        crate::transport::archive::write_atomic(path, &text).map_err(Error::from)?;
    }
    if out.json {
        println!("{}", serde_json::to_string_pretty(&metadata)?);
    } else {
        println!("{}", outcome.reference_line());
    }
    Ok(Some(new))
}

fn print_plan(plan: &build::BuildPlan, out: &Output) {
    if out.json {
        let layers: Vec<Value> = plan
            .layers
            .iter()
            .map(|l| {
                json!({
                    "name": l.name,
                    "sources": l.sources.iter().map(|s| s.display().to_string()).collect::<Vec<_>>(),
                    "entries": l.entry_count,
                    "files": l.file_count,
                    "bytes": l.content_bytes,
                })
            })
            .collect();
        let doc = json!({
            "base": plan.base.to_string(),
            "platform": plan.platform.to_string(),
            "layers": layers,
            "destinations": plan.destinations.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    println!("base       {}", plan.base);
    println!("platform   {}", plan.platform);
    for (i, layer) in plan.layers.iter().enumerate() {
        let sources: Vec<String> = layer
            .sources
            .iter()
            .map(|s| s.display().to_string())
            .collect();
        println!(
            "layer {}    {:<9} {} files, {} entries, {}  from {}",
            i + 1,
            layer.name,
            layer.file_count,
            layer.entry_count,
            human_bytes(layer.content_bytes),
            sources.join(", ")
        );
    }
    for dest in &plan.destinations {
        println!("dest       {dest}");
    }
}

fn parse_platform(text: Option<&str>) -> anyhow::Result<Platform> {
    Ok(match text {
        Some(text) => Platform::parse(text).map_err(Error::from)?,
        None => Platform::host(),
    })
}

fn run_copy(
    kind: Kind,
    source: &str,
    dest: &str,
    platform: Option<&str>,
    extra_tags: &[String],
    push: &PushArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let source_t = reference::parse_transport(source).map_err(Error::from)?;
    let dest_t = reference::parse_transport(dest).map_err(Error::from)?;
    let mut destinations = vec![dest_t.clone()];
    let mut artifact = None;
    let result = copy_and_report(
        source,
        &source_t,
        &dest_t,
        platform,
        extra_tags,
        push,
        out,
        &mut destinations,
        &mut artifact,
    );
    let secret_names = artifact
        .as_ref()
        .map(|a: &Artifact| recorded_secret_names(a.digest().as_str()))
        .unwrap_or_default();
    let error = result.as_ref().err().map(error_text);
    let new = NewExport::transfer(
        kind,
        source,
        &destinations,
        artifact.as_ref(),
        &secret_names,
        error,
    );
    if result.is_ok()
        && matches!(dest_t, Transport::Registry(_))
        && let Some(line) = &new.run_command
    {
        out.info(&format!("run it with: {line}"));
    }
    record_export(out, &new);
    result
}

/// Copies and prints; leaves the destinations (with extra tags) and the
/// artifact read in the slots, so the caller can record what happened.
#[allow(clippy::too_many_arguments)]
fn copy_and_report(
    source: &str,
    source_t: &Transport,
    dest_t: &Transport,
    platform: Option<&str>,
    extra_tags: &[String],
    push: &PushArgs,
    out: &Output,
    destinations: &mut Vec<Transport>,
    artifact_slot: &mut Option<Artifact>,
) -> anyhow::Result<()> {
    let chosen = platform
        .map(|p| Platform::parse(p).map_err(Error::from))
        .transpose()?;
    let store = open_store()?;
    let registry = open_registry(out, Some(push))?;
    let context = Transfer {
        store: &store,
        registry: &registry,
    };
    for tag in extra_tags {
        let Transport::Registry(reference) = dest_t else {
            break;
        };
        let mut tagged = reference.clone();
        tagged.tag = Some(tag.clone());
        tagged.digest = None;
        let text = tagged.to_string();
        // Parsing validates the tag the way every other reference is validated.
        destinations.push(reference::parse_transport(&text).map_err(Error::from)?);
    }
    let read = transport::read_source(source_t, &context, chosen.as_ref(), true)
        .with_context(|| format!("cannot read {source}"))?;
    *artifact_slot = Some(read.artifact.clone());
    let options = SinkOptions {
        platform: chosen.unwrap_or_else(Platform::host),
        mtime: source_date_epoch()?.unwrap_or(1),
        default_tag: "latest".into(),
        default_reference: None,
    };
    let written = transport::write_all(destinations, &read, &context, &options)
        .with_context(|| format!("cannot write {dest_t}"))?;
    for w in &written {
        match &w.push {
            Some(report) => report_push(out, &w.destination, report),
            None => out.info(&format!("copied {source} to {}", w.destination)),
        }
    }
    match dest_t {
        Transport::Registry(reference) => {
            println!("{}", reference.with_digest(read.artifact.digest().as_str()))
        }
        _ => println!("{}", read.artifact.digest()),
    }
    Ok(())
}

fn run_archive(
    reference_text: &str,
    output: &Path,
    platform: Option<&str>,
    out: &Output,
) -> anyhow::Result<()> {
    let Transport::Registry(reference) =
        reference::parse_transport(reference_text).map_err(Error::from)?
    else {
        return Err(Error::usage(
            format!("`{reference_text}` is not a registry image"),
            "give REF or docker://REF; to convert a local image use `stowage copy SRC docker-archive:FILE`",
        )
        .into());
    };
    let platform = parse_platform(platform)?;
    let mut named = reference.clone();
    if named.tag.is_none() {
        named.tag = Some("latest".into());
    }
    named.digest = None;
    let dest = Transport::DockerArchive {
        path: output.to_path_buf(),
        reference: Some(named),
    };
    let mut artifact = None;
    let result = archive_and_report(&reference, &dest, platform, out, &mut artifact);
    let new = NewExport::transfer(
        Kind::Archive,
        &format!("docker://{reference}"),
        std::slice::from_ref(&dest),
        artifact.as_ref(),
        &[],
        result.as_ref().err().map(error_text),
    );
    record_export(out, &new);
    result
}

fn archive_and_report(
    reference: &crate::reference::ImageRef,
    dest: &Transport,
    platform: Platform,
    out: &Output,
    artifact_slot: &mut Option<Artifact>,
) -> anyhow::Result<()> {
    let store = open_store()?;
    let registry = open_registry(out, None)?;
    let context = Transfer {
        store: &store,
        registry: &registry,
    };
    let read = transport::read_source(
        &Transport::Registry(reference.clone()),
        &context,
        Some(&platform),
        true,
    )
    .with_context(|| format!("cannot pull {reference}"))?;
    *artifact_slot = Some(read.artifact.clone());
    let options = SinkOptions {
        platform,
        mtime: source_date_epoch()?.unwrap_or(1),
        default_tag: "latest".into(),
        default_reference: None,
    };
    transport::write_all(std::slice::from_ref(dest), &read, &context, &options)
        .with_context(|| format!("cannot write {dest}"))?;
    out.info(&format!("wrote {dest}"));
    println!("{}", reference.with_digest(read.artifact.digest().as_str()));
    Ok(())
}

/// The registry a login names: Docker Hub by default, in any of its spellings.
fn login_registry(registry: Option<&str>) -> String {
    let raw = registry.unwrap_or("docker.io");
    let host = raw
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(raw);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" | "" => "docker.io".into(),
        other => other.to_string(),
    }
}

fn run_login(
    registry: Option<&str>,
    username: &str,
    password_stdin: bool,
    out: &Output,
) -> anyhow::Result<()> {
    if !password_stdin {
        return Err(Error::usage(
            "stowage reads the password only from standard input, so it never lands in shell history",
            "echo \"$TOKEN\" | stowage login REGISTRY -u USER --password-stdin",
        )
        .into());
    }
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(Error::usage(
            "the password on standard input is empty",
            "pipe the password or token in",
        )
        .into());
    }
    let registry_name = login_registry(registry);
    let credential = Credential {
        username: username.to_string(),
        secret: password,
    };
    let client = open_registry(out, None)?.with_credential(&registry_name, credential.clone());
    client
        .check_login(&registry_name)
        .map_err(Error::from)
        .with_context(|| format!("cannot log in to {registry_name}"))?;
    let path = credentials::write_login(&registry_name, &credential)
        .map_err(|e| Error::from(crate::registry::RegistryError::from(e)))?;
    out.info(&format!(
        "logged in to {registry_name} as {username}; credentials saved in {}",
        path.display()
    ));
    Ok(())
}

fn run_logout(registry: Option<&str>, out: &Output) -> anyhow::Result<()> {
    let registry_name = login_registry(registry);
    let removed = credentials::remove_login(&registry_name)
        .map_err(|e| Error::from(crate::registry::RegistryError::from(e)))?;
    if removed {
        out.info(&format!("removed the credentials for {registry_name}"));
    } else {
        out.info(&format!("no stored credentials for {registry_name}"));
    }
    Ok(())
}

fn run_inspect(
    source: &str,
    raw: Option<RawPart>,
    platform: Option<&str>,
    out: &Output,
) -> anyhow::Result<()> {
    let source_t = reference::parse_transport(source).map_err(Error::from)?;
    let store = open_store()?;
    let registry = open_registry(out, None)?;
    let context = Transfer {
        store: &store,
        registry: &registry,
    };
    let artifact = transport::read_source(&source_t, &context, None, false)
        .with_context(|| format!("cannot read {source}"))?
        .artifact;
    let mut stdout = std::io::stdout().lock();
    match (raw, &artifact) {
        (Some(RawPart::Manifest), Artifact::Index(index)) if platform.is_none() => {
            stdout.write_all(&index.raw)?;
            return Ok(());
        }
        (Some(part), _) => {
            let image = artifact
                .into_image(&parse_platform(platform)?)
                .map_err(Error::from)?;
            let bytes = match part {
                RawPart::Manifest => image.raw_manifest(),
                RawPart::Config => image.raw_config(),
            };
            stdout.write_all(bytes)?;
            return Ok(());
        }
        (None, _) => {}
    }
    let summary = summarize(&artifact, platform)?;
    out.detail(&format!("read {source}"));
    if out.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&summary)?)?;
    } else {
        write_summary_text(&mut stdout, source, &summary)?;
    }
    Ok(())
}

fn summarize(artifact: &Artifact, platform: Option<&str>) -> anyhow::Result<Value> {
    if let (Artifact::Index(index), None) = (artifact, platform) {
        let manifests: Vec<Value> = index
            .images
            .iter()
            .map(|i| {
                json!({
                    "digest": i.digest(),
                    "platform": i.platform().map(|p| p.to_string()),
                    "media_type": i.media_type(),
                })
            })
            .collect();
        return Ok(json!({
            "digest": index.digest,
            "media_type": index.media_type,
            "manifests": manifests,
        }));
    }
    let image = artifact
        .clone()
        .into_image(&parse_platform(platform)?)
        .map_err(Error::from)?;
    let config = image.config_json().map_err(Error::from)?;
    let layers: Vec<Value> = image
        .layers()
        .iter()
        .map(|l| json!({"digest": l.descriptor.digest, "diff_id": l.diff_id, "size": l.descriptor.size, "media_type": l.descriptor.media_type}))
        .collect();
    Ok(json!({
        "digest": image.digest(),
        "media_type": image.media_type(),
        "platform": image.platform().map(|p| p.to_string()),
        "created": config.get("created"),
        "config": config.get("config"),
        "annotations": image.annotations(),
        "layers": layers,
    }))
}

fn write_summary_text(out: &mut dyn Write, source: &str, summary: &Value) -> std::io::Result<()> {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    };
    writeln!(out, "Image       {source}")?;
    writeln!(out, "Digest      {}", text(summary.get("digest")))?;
    writeln!(out, "MediaType   {}", text(summary.get("media_type")))?;
    if let Some(Value::Array(manifests)) = summary.get("manifests") {
        writeln!(out, "Platforms")?;
        for m in manifests {
            writeln!(
                out,
                "  {:<16} {}",
                text(m.get("platform")),
                text(m.get("digest"))
            )?;
        }
        return Ok(());
    }
    writeln!(out, "Platform    {}", text(summary.get("platform")))?;
    writeln!(out, "Created     {}", text(summary.get("created")))?;
    let config = summary.get("config").cloned().unwrap_or(Value::Null);
    if let Some(Value::Array(env)) = config.get("Env") {
        writeln!(out, "Env")?;
        for kv in env {
            writeln!(out, "  {}", text(Some(kv)))?;
        }
    }
    writeln!(out, "Entrypoint  {}", text(config.get("Entrypoint")))?;
    writeln!(out, "Cmd         {}", text(config.get("Cmd")))?;
    writeln!(out, "WorkingDir  {}", text(config.get("WorkingDir")))?;
    writeln!(out, "User        {}", text(config.get("User")))?;
    if let Some(Value::Object(ports)) = config.get("ExposedPorts") {
        writeln!(
            out,
            "Ports       {}",
            ports.keys().cloned().collect::<Vec<_>>().join(" ")
        )?;
    }
    if let Some(Value::Object(labels)) = config.get("Labels") {
        writeln!(out, "Labels")?;
        for (k, v) in labels {
            writeln!(out, "  {k}={}", text(Some(v)))?;
        }
    }
    if let Some(Value::Array(layers)) = summary.get("layers") {
        writeln!(out, "Layers      {}", layers.len())?;
        for l in layers {
            let size = l.get("size").and_then(Value::as_u64).unwrap_or(0);
            writeln!(
                out,
                "  {}  {:>10}  {}",
                text(l.get("digest")),
                human_bytes(size),
                text(l.get("media_type"))
            )?;
        }
    }
    Ok(())
}

fn run_init(dir: &Path, out: &Output) -> anyhow::Result<()> {
    let path = spec::write_starter_spec(dir).map_err(Error::from)?;
    out.info(&format!(
        "wrote {}; edit it, then run `stowage build`",
        path.display()
    ));
    println!("{}", path.display());
    Ok(())
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Parses a duration in seconds: `30`, `0.5`.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1e9)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("`{text}` is not a number of seconds above 0"))
}

/// Parses a byte size: `1048576`, `512KiB`, `16MiB`, `1GiB` (K/M/G are binary too).
fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 16MiB"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit (use KiB, MiB or GiB)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is not a usable size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
    }

    #[test]
    fn seconds_parse() {
        assert_eq!(
            parse_seconds("1.5"),
            Ok(std::time::Duration::from_millis(1500))
        );
        for bad in ["0", "-1", "soon", "NaN", "inf"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn login_names_normalise() {
        assert_eq!(login_registry(None), "docker.io");
        assert_eq!(
            login_registry(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(login_registry(Some("localhost:5000")), "localhost:5000");
    }
}
