//! The command line: parses arguments, calls one use case in `commands`, prints its outcome and errors.
//!
//! Not for image logic, HTTP, tar or JSON: those live below `commands`.
//! stdout carries only the result (`REPO@sha256:…`, a table, `--json`
//! data); everything else goes to stderr.

mod args;
mod password;
mod paths;
mod progress;
mod render;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{CommandFactory, Parser};

use crate::attest::{Attestations, SbomFormat};
use crate::commands::build::{BuildCommand, BuildResult, DryRunReport, SbomRequest};
use crate::commands::check::CheckCommand;
use crate::commands::inspect::{Inspected, RawPart};
use crate::commands::policy::PolicyRequest;
use crate::commands::sign::{Signed, Signer};
use crate::commands::transfer::TransferCommand;
use crate::commands::{self, Reported, Session, SessionPaths};
use crate::error::Error;
use crate::exports::{Kind, Status};
use crate::image::Format;
use crate::interrupt::{self, Signal, Stop};
use crate::layer::Compression;
use crate::plan::BuildOptions;
use crate::registry::{DEFAULT_RETRIES, LogSink, RegistryOptions, TransferProgress};
use crate::store::PruneRules;
use args::{
    AttestArg, BuildArgs, CacheAction, Cli, Command, CompressionArg, ExportsAction, FormatArg,
    PolicyArgs, PushArgs, RawPart as RawArg, SbomFormatArg, StatusArg,
};
use render::{Output, StdoutError, to_stdout};

/// The command line's full clap definition, for `tests/reference.rs`, which
/// generates the command reference, man pages and completions from it.
#[doc(hidden)]
pub fn command() -> clap::Command {
    Cli::command()
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
        progress: (!cli.quiet).then(|| Arc::new(progress::Progress::for_stderr())),
        failed_record: Mutex::new(None),
    };
    let mut journal_paths = match paths::from_environment() {
        Ok(paths) => paths,
        Err(e) => return render::report_error(&e.into()),
    };
    if let Some(url) = &cli.journal {
        match crate::exports::JournalLocation::parse(url) {
            Ok(location) => journal_paths.journal = location,
            Err(e) => return render::report_error(&bad_journal(e).into()),
        }
    }
    if cli.verbose >= 2 && !cli.quiet {
        eprintln!("journal: {}", journal_paths.journal);
    }
    let settings = Settings {
        insecure: cli.insecure_registry,
        timeout: cli.timeout,
        connect_timeout: cli.connect_timeout,
        retries: cli.retries,
        paths: journal_paths,
        docker_hub: paths::docker_hub_from_environment(),
    };
    if matches!(
        cli.command,
        Command::Build(_) | Command::Copy { .. } | Command::Push { .. } | Command::Archive { .. }
    ) {
        catch_interrupts(&out);
    }
    let result = dispatch(cli.command, &out, &settings);
    out.end_progress();
    let code = match result {
        Ok(()) => 0,
        Err(err) if render::reader_gone(&err) => 0,
        Err(err) => render::report_error(&err),
    };
    out.after_error();
    code
}

/// SIGINT and SIGTERM stop an export at its next safe point, and it records
/// what it reached; the watcher's news goes above the progress bars.
fn catch_interrupts(out: &Output) {
    let progress = out.progress.clone();
    let quiet = out.quiet;
    let report = move |signal: Signal, stop: Stop| {
        let line = render::stop_line(signal, stop);
        match &progress {
            Some(progress) => progress.println(&line),
            None if !quiet || stop == Stop::GivingUp => eprintln!("{line}"),
            None => {}
        }
    };
    if let Err(e) = interrupt::install(report) {
        out.warn(&format!(
            "cannot catch SIGINT and SIGTERM ({e}): an interrupt will end stowage without recording the export"
        ));
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

/// The global flags that shape the registry client.
struct Settings {
    insecure: Vec<String>,
    timeout: Option<std::time::Duration>,
    connect_timeout: Option<std::time::Duration>,
    retries: Option<u32>,
    /// The store and journal folders, from the environment.
    paths: SessionPaths,
    /// Stand-ins for Docker Hub's hosts, from the environment.
    docker_hub: paths::DockerHubOverrides,
}

impl Settings {
    /// The session of one command: its registry client uses these settings and `push`'s.
    fn session(&self, out: &Output, push: Option<&PushArgs>) -> Session {
        // Log lines go through the progress display, which prints them above its bars.
        let log: Option<LogSink> = (out.verbose > 0 && !out.quiet).then(|| {
            let progress = out.progress.clone();
            Arc::new(move |line: &str| match &progress {
                Some(progress) => progress.println(line),
                None => eprintln!("{line}"),
            }) as LogSink
        });
        let options = RegistryOptions {
            insecure: self.insecure.clone(),
            chunk_size: push.and_then(|p| p.chunk_size),
            jobs: push.map(|p| p.jobs).unwrap_or(4),
            retries: self.retries.unwrap_or(DEFAULT_RETRIES),
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            log,
            progress: out
                .progress
                .clone()
                .map(|progress| progress as Arc<dyn TransferProgress>),
            docker_hub_host: self.docker_hub.host.clone(),
            docker_hub_api: self.docker_hub.api.clone(),
        };
        Session::new(options, self.paths.clone())
    }
}

fn dispatch(command: Command, out: &Output, settings: &Settings) -> anyhow::Result<()> {
    match command {
        Command::Build(args) => run_build(args, out, settings),
        Command::Copy {
            source,
            dest,
            platform,
            push,
            policy,
        } => {
            let command = TransferCommand {
                kind: Kind::Copy,
                source,
                dest,
                platform,
                extra_tags: Vec::new(),
                signer: None,
                policy: policy_request(&policy),
            };
            run_transfer(&command, &push, out, settings)
        }
        Command::Push {
            source,
            dest,
            tags,
            platform,
            sign_key,
            push,
            policy,
        } => {
            let command = TransferCommand {
                kind: Kind::Push,
                source,
                dest,
                platform,
                extra_tags: tags,
                signer: load_signer(sign_key.as_deref())?,
                policy: policy_request(&policy),
            };
            run_transfer(&command, &push, out, settings)
        }
        Command::Sign { reference, key } => run_sign(&reference, &key, out, settings),
        Command::Verify { reference, key } => run_verify(&reference, &key, out, settings),
        Command::Archive {
            reference,
            output,
            platform,
        } => run_archive(reference, output, platform, out, settings),
        Command::Login {
            registry,
            username,
            password_stdin,
        } => run_login(
            registry.as_deref(),
            &username,
            password_stdin,
            out,
            settings,
        ),
        Command::Logout { registry } => run_logout(registry.as_deref(), out),
        Command::Inspect {
            source,
            raw,
            platform,
            sbom,
            provenance,
        } => {
            let part = match (raw, sbom, provenance) {
                (Some(RawArg::Manifest), ..) => Some(RawPart::Manifest),
                (Some(RawArg::Config), ..) => Some(RawPart::Config),
                (None, true, _) => Some(RawPart::Sbom),
                (None, false, true) => Some(RawPart::Provenance),
                (None, false, false) => None,
            };
            run_inspect(&source, part, platform.as_deref(), out, settings)
        }
        Command::Check {
            file,
            outputs,
            no_workspace,
            policy,
        } => run_check(file, outputs, no_workspace, &policy, out, settings),
        Command::Init { dir } => run_init(dir.as_deref().unwrap_or(Path::new(".")), out),
        Command::Exports(args) => match args.action {
            None => run_exports_list(args.status, args.limit, out, settings),
            Some(ExportsAction::List { status, limit }) => {
                run_exports_list(status.or(args.status), limit.or(args.limit), out, settings)
            }
            Some(ExportsAction::Migrate { to }) => run_exports_migrate(&to, out, settings),
            Some(ExportsAction::Delete { id, yes, all_tags }) => {
                run_exports_delete(id, yes, all_tags, out, settings)
            }
        },
        Command::Cache { action } => run_cache(action, out, settings),
        Command::StartLine { target } => {
            let session = settings.session(out, None);
            let line = commands::run_command::run_command_for(&session, &target)
                .with_context(|| format!("cannot make the run command for {target}"))?;
            Ok(to_stdout(|w| writeln!(w, "{line}"))?)
        }
    }
}

/// Shows a command's outcome, then what happened to its export record: the
/// record's line comes last, after the result or after the error (`run`
/// prints a failed command's record once its error is out).
fn report<T>(
    out: &Output,
    reported: Reported<T>,
    show: impl FnOnce(T) -> Result<(), StdoutError>,
) -> anyhow::Result<()> {
    out.end_progress();
    match reported.result {
        Ok(value) => {
            let shown = show(value);
            out.record(&reported.record, false);
            Ok(shown?)
        }
        Err(error) => {
            out.record_failure(reported.record);
            Err(error.into())
        }
    }
}

fn run_build(args: BuildArgs, out: &Output, settings: &Settings) -> anyhow::Result<()> {
    let max_size = paths::cache_max_size()?;
    let command = BuildCommand {
        spec_file: args.file.clone(),
        request: BuildOptions {
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
            threads: args.threads.map(usize::from),
            library_layers: usize::from(args.library_layers),
            keep_base_remote: args.keep_base_remote,
            source_date_epoch: commands::source_date_epoch()?,
            secret_scan: !args.no_secret_scan,
            allow_secrets: args.allow_secrets.clone(),
            dry_run: args.dry_run,
            start_check: !args.no_start_check,
            attest: Attestations {
                sbom: args.attest.contains(&AttestArg::Sbom),
                provenance: args.attest.contains(&AttestArg::Provenance),
            },
            cache_repo: args.cache_repo.clone(),
            policy_digest: None,
        },
        digest_file: args.digest_file.clone(),
        metadata_file: args.metadata_file.clone(),
        sbom: args.sbom.clone().map(|path| SbomRequest {
            path,
            format: match args.sbom_format {
                SbomFormatArg::Spdx => SbomFormat::Spdx,
                SbomFormatArg::Cyclonedx => SbomFormat::CycloneDx,
            },
        }),
        signer: load_signer(args.sign_key.as_deref())?,
        policy: policy_request(&args.policy),
    };
    let session = settings.session(out, Some(&args.push));
    let events = render::BuildLog {
        out,
        secret_scan: !args.no_secret_scan,
        start_check: !args.no_start_check,
    };
    let reported = commands::build::run(&session, &command, &events);
    let shown = report(out, reported, |result| match result {
        BuildResult::Planned(dry) => {
            render::print_dry_run(out, &dry);
            if out.json {
                let report = DryRunReport::new(&dry);
                to_stdout(|w| writeln!(w, "{}", commands::json_text(&report)))
            } else {
                to_stdout(|w| render::write_plan(w, &dry.plan))
            }
        }
        BuildResult::Built(built) => {
            render::print_built(out, &built);
            print_signed(out, &built.signed);
            if out.json {
                to_stdout(|w| writeln!(w, "{}", commands::json_text(&built.metadata)))
            } else {
                to_stdout(|w| writeln!(w, "{}", built.outcome.reference_line(&built.plan)))
            }
        }
    });
    if let Some(max_size) = max_size.filter(|_| !args.dry_run) {
        prune_after_build(&session, out, max_size);
    }
    shown
}

fn run_cache(action: CacheAction, out: &Output, settings: &Settings) -> anyhow::Result<()> {
    let session = settings.session(out, None);
    let store = settings.paths.store.display();
    match action {
        CacheAction::Prune {
            max_size,
            older_than,
            dry_run,
        } => {
            let rules = PruneRules {
                max_size,
                older_than,
                dry_run,
            };
            let report = commands::cache::prune(&session, &rules)
                .with_context(|| format!("cannot prune the store at {store}"))?;
            Ok(to_stdout(|w| match out.json {
                true => writeln!(w, "{}", commands::json_text(&report)),
                false => writeln!(w, "{}", render::prune_line(&report)),
            })?)
        }
        CacheAction::Info => {
            let info = commands::cache::info(&session)
                .with_context(|| format!("cannot read the store at {store}"))?;
            Ok(to_stdout(|w| match out.json {
                true => writeln!(w, "{}", commands::json_text(&info)),
                false => render::write_store_info(w, &info),
            })?)
        }
    }
}

/// Prunes the store after a build when `STOWAGE_CACHE_MAX_SIZE` bounds it;
/// a prune that fails is a warning, never the build's failure.
fn prune_after_build(session: &Session, out: &Output, max_size: u64) {
    match commands::cache::prune_after_build(session, max_size) {
        Ok(report) if report.removed_blobs > 0 || report.held_blobs > 0 => out.info(&format!(
            "STOWAGE_CACHE_MAX_SIZE: {}",
            render::prune_line(&report)
        )),
        Ok(_) => {}
        Err(e) => out.warn(&format!(
            "STOWAGE_CACHE_MAX_SIZE: cannot prune the store: {e}"
        )),
    }
}

fn run_logout(registry: Option<&str>, out: &Output) -> anyhow::Result<()> {
    let (name, removed) = commands::login::logout(registry)?;
    if removed {
        out.info(&format!("removed the credentials for {name}"));
    } else {
        out.info(&format!("no stored credentials for {name}"));
    }
    Ok(())
}

fn policy_request(args: &PolicyArgs) -> PolicyRequest {
    PolicyRequest {
        file: args.policy.clone(),
        no_overwrite: args.no_overwrite,
    }
}

/// `stowage check`: "eligible", or every violation, on stdout (JSON with
/// `--json`); exit 1 when not eligible.
fn run_check(
    file: PathBuf,
    outputs: Vec<String>,
    no_workspace: bool,
    policy: &PolicyArgs,
    out: &Output,
    settings: &Settings,
) -> anyhow::Result<()> {
    let command = CheckCommand {
        request: BuildOptions {
            destinations: outputs,
            no_workspace,
            ..check_options()?
        },
        spec_file: file,
        policy: policy_request(policy),
    };
    let session = settings.session(out, None);
    let events = render::BuildLog {
        out,
        secret_scan: true,
        start_check: true,
    };
    let report = commands::check::run(&session, &command, &events)
        .with_context(|| format!("cannot check {}", command.spec_file.display()))?;
    out.end_progress();
    if out.json {
        to_stdout(|w| writeln!(w, "{}", commands::json_text(&report)))?;
    } else {
        to_stdout(|w| render::write_check(w, &report))?;
    }
    if report.eligible {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "not eligible under the export policy {}: {} violation(s)",
            report.policy_path.display(),
            report.violations.len()
        ))
    }
}

/// The build a check judges: `stowage build`'s defaults.
fn check_options() -> anyhow::Result<BuildOptions> {
    Ok(BuildOptions {
        destinations: Vec::new(),
        no_workspace: false,
        platform: None,
        format: None,
        compression: Compression::Gzip,
        threads: None,
        library_layers: 16,
        keep_base_remote: false,
        source_date_epoch: commands::source_date_epoch()?,
        secret_scan: true,
        allow_secrets: Vec::new(),
        dry_run: true,
        start_check: true,
        attest: Attestations::default(),
        cache_repo: None,
        policy_digest: None,
    })
}

fn run_transfer(
    command: &TransferCommand,
    push: &PushArgs,
    out: &Output,
    settings: &Settings,
) -> anyhow::Result<()> {
    let session = settings.session(out, Some(push));
    report(out, commands::transfer::copy(&session, command), |done| {
        for warning in &done.policy_warnings {
            out.warn(&format!("export policy: {warning}"));
        }
        render::print_transferred(out, &command.source, &done, false);
        print_signed(out, &done.signed);
        if let Some(line) = &done.run_command {
            out.info(&format!("run it with: {line}"));
        }
        to_stdout(|w| writeln!(w, "{}", done.reference_line))
    })
}

/// The key of `--sign-key`, opened now so a wrong password stops the command before it pushes anything.
fn load_signer(path: Option<&Path>) -> anyhow::Result<Option<Signer>> {
    let Some(path) = path else { return Ok(None) };
    let signer = commands::sign::load_signer(path, &password::ask)
        .with_context(|| format!("cannot use the signing key {}", path.display()))?;
    Ok(Some(signer))
}

fn print_signed(out: &Output, signed: &[Signed]) {
    for s in signed {
        let what = if s.added {
            "signed"
        } else {
            "already signed with this key"
        };
        out.info(&format!(
            "{what}: {} ({} signature(s) at {})",
            s.image, s.signatures, s.signature_tag
        ));
    }
}

fn run_sign(reference: &str, key: &Path, out: &Output, settings: &Settings) -> anyhow::Result<()> {
    let signer = commands::sign::load_signer(key, &password::ask)
        .with_context(|| format!("cannot use the signing key {}", key.display()))?;
    let session = settings.session(out, None);
    let signed = commands::sign::sign(&session, reference, &signer)
        .with_context(|| format!("cannot sign {reference}"))?;
    if out.json {
        to_stdout(|w| writeln!(w, "{}", commands::json_text(&signed)))?;
    } else {
        print_signed(out, std::slice::from_ref(&signed));
        to_stdout(|w| writeln!(w, "{}", signed.signature_tag))?;
    }
    Ok(())
}

fn run_verify(
    reference: &str,
    key: &Path,
    out: &Output,
    settings: &Settings,
) -> anyhow::Result<()> {
    let session = settings.session(out, None);
    let verified = commands::sign::verify(&session, reference, key)
        .with_context(|| format!("cannot verify {reference}"))?;
    if out.json {
        to_stdout(|w| writeln!(w, "{}", commands::json_text(&verified)))?;
        return Ok(());
    }
    for s in &verified.signatures {
        match &s.problem {
            None => to_stdout(|w| {
                writeln!(
                    w,
                    "verified: {} signature {} with {}",
                    verified.image, s.payload, verified.key
                )
            })?,
            Some(problem) => out.info(&format!("not verified: signature {}: {problem}", s.payload)),
        }
    }
    Ok(())
}

fn run_archive(
    reference: String,
    output: PathBuf,
    platform: Option<String>,
    out: &Output,
    settings: &Settings,
) -> anyhow::Result<()> {
    let command = TransferCommand {
        kind: Kind::Archive,
        source: reference,
        dest: output.display().to_string(),
        platform,
        extra_tags: Vec::new(),
        signer: None,
        policy: PolicyRequest::default(),
    };
    let session = settings.session(out, None);
    report(
        out,
        commands::transfer::archive(&session, &command),
        |done| {
            render::print_transferred(out, &command.source, &done, true);
            to_stdout(|w| writeln!(w, "{}", done.reference_line))
        },
    )
}

fn run_login(
    registry: Option<&str>,
    username: &str,
    password_stdin: bool,
    out: &Output,
    settings: &Settings,
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
    let session = settings.session(out, None);
    let (name, path) = commands::login::login(&session, registry, username, password)?;
    out.info(&format!(
        "logged in to {name} as {username}; credentials saved in {}",
        path.display()
    ));
    Ok(())
}

fn run_inspect(
    source: &str,
    raw: Option<RawPart>,
    platform: Option<&str>,
    out: &Output,
    settings: &Settings,
) -> anyhow::Result<()> {
    let session = settings.session(out, None);
    let inspected = commands::inspect::inspect(&session, source, raw, platform)?;
    if !matches!(inspected, Inspected::Raw(_)) {
        out.detail(&format!("read {source}"));
    }
    to_stdout(|w| match inspected {
        Inspected::Raw(bytes) => w.write_all(&bytes),
        Inspected::Index(index) if out.json => writeln!(w, "{}", commands::json_text(&index)),
        Inspected::Image(image) if out.json => writeln!(w, "{}", commands::json_text(&image)),
        Inspected::Index(index) => render::write_index_summary(w, source, &index),
        Inspected::Image(image) => render::write_image_summary(w, source, &image),
    })?;
    Ok(())
}

fn run_init(dir: &Path, out: &Output) -> anyhow::Result<()> {
    let path = commands::init::init(dir)?;
    out.info(&format!(
        "wrote {}; edit it, then run `stowage build`",
        path.display()
    ));
    Ok(to_stdout(|w| writeln!(w, "{}", path.display()))?)
}

/// Refuses `exports delete` without `--yes` when there is no terminal to ask on, before anything is read.
fn require_terminal(id: i64) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(Error::usage(
        format!("export {id} was not deleted: there is no terminal to ask on"),
        format!(
            "pass --yes to delete without asking: `stowage exports delete {id} --yes` (`stowage exports list` shows what it holds)"
        ),
    )
    .into())
}

/// Shows what `exports delete` will remove and asks on the terminal.
fn confirm_delete(plan: &commands::exports::DeletePlan) -> anyhow::Result<()> {
    use std::io::BufRead;
    let id = plan.id;
    let mut stderr = std::io::stderr().lock();
    render::write_delete_plan(&mut stderr, plan)?;
    write!(stderr, "Delete? [y/N] ")?;
    stderr.flush()?;
    drop(stderr);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        return Ok(());
    }
    Err(Error::usage(
        format!("export {id} was not deleted: not confirmed"),
        "answer y to delete, or pass --yes",
    )
    .into())
}

/// A journal URL that does not parse: a usage error (exit 2).
fn bad_journal(e: crate::exports::LocationError) -> Error {
    Error::usage(
        e.to_string(),
        "give the journal as sqlite:PATH or postgresql://USER@HOST[:PORT]/DB",
    )
}

fn run_exports_migrate(to: &str, out: &Output, settings: &Settings) -> anyhow::Result<()> {
    let target = crate::exports::JournalLocation::parse(to).map_err(bad_journal)?;
    let session = settings.session(out, None);
    let migrated = commands::exports::migrate(&session, &target)
        .with_context(|| format!("cannot copy the export records into {target}"))?;
    out.info(&format!(
        "{} records read, {} added to {target} (the others were there already)",
        migrated.read, migrated.added
    ));
    Ok(())
}

fn run_exports_list(
    status: Option<StatusArg>,
    limit: Option<u64>,
    out: &Output,
    settings: &Settings,
) -> anyhow::Result<()> {
    let status = status.map(|s| match s {
        StatusArg::Running => Status::Running,
        StatusArg::Ok => Status::Ok,
        StatusArg::Failed => Status::Failed,
        StatusArg::Interrupted => Status::Interrupted,
        StatusArg::Deleted => Status::Deleted,
    });
    let filter = crate::exports::Filter { status, limit };
    let records = commands::exports::list(&settings.session(out, None), filter)?;
    if out.json {
        return Ok(to_stdout(|w| {
            writeln!(w, "{}", commands::json_text(&records))
        })?);
    }
    if records.is_empty() {
        match status {
            Some(status) => out.info(&format!("no exports with status {}", status.as_str())),
            None => out.info("no exports recorded yet"),
        }
        return Ok(());
    }
    Ok(to_stdout(|w| render::write_exports_table(w, &records))?)
}

fn run_exports_delete(
    id: i64,
    yes: bool,
    all_tags: bool,
    out: &Output,
    settings: &Settings,
) -> anyhow::Result<()> {
    if !yes {
        require_terminal(id)?;
    }
    let session = settings.session(out, None);
    let plan = commands::exports::delete_plan(&session, id, all_tags)
        .with_context(|| format!("cannot delete export {id}"))?;
    if !yes {
        confirm_delete(&plan)?;
    }
    let report = commands::exports::delete(&session, &plan)
        .with_context(|| format!("cannot delete export {id}"))?;
    for d in &report.done {
        out.info(&format!("{}: {}", d.destination, d.what));
    }
    for other in &report.also_deleted {
        out.info(&format!(
            "export {other} is marked deleted too: what it put there went with this delete"
        ));
    }
    for other in &report.also_touched {
        out.info(&format!(
            "export {other} lost a destination to this delete; its record says which"
        ));
    }
    out.info(&format!("export {id} is marked deleted"));
    Ok(())
}
