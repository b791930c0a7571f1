//! What the command line prints: messages on stderr, results on stdout, tables and summaries (progress is `progress.rs`'s).
//!
//! Nothing here decides anything: it renders the outcomes `commands` return.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

use crate::check::Checked;
use crate::commands::build::{BuildEvents, Built, DryRun};
use crate::commands::check::CheckReport;
use crate::commands::inspect::{ImageSummary, IndexSummary};
use crate::commands::{Recorded, transfer::Transferred};
use crate::error::Error;
use crate::exports::ExportRecord;
use crate::interrupt::{STOP_GRACE, Signal, Stop};
use crate::layer::LayerProgress;
use crate::plan::BuildPlan;
use crate::reference::Location;
use crate::registry::PushReport;
use crate::store::{PruneReport, StoreInfo};

use super::progress::Progress;
use crate::units::human_bytes;

/// How chatty stderr is.
pub struct Output {
    pub quiet: bool,
    pub verbose: u8,
    pub json: bool,
    /// The progress display of layers and transfers; None with `-q`.
    pub progress: Option<Arc<Progress>>,
    /// A failed command's export record, told after its error (`after_error`).
    pub failed_record: Mutex<Option<Recorded>>,
}

impl Output {
    /// Takes the progress bars off the screen: the outcome and errors are printed after them.
    pub fn end_progress(&self) {
        if let Some(progress) = &self.progress {
            progress.clear();
        }
    }

    /// A line of news on stderr, unless `-q`.
    pub fn info(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A line on stderr only with `-v`.
    pub fn detail(&self, message: &str) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A warning, even with `-q`.
    pub fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    /// What happened to the export record: news for a kept one (only with -v when the export failed).
    pub fn record(&self, recorded: &Recorded, failed: bool) {
        match recorded {
            Recorded::Nothing => {}
            Recorded::Kept(id) if failed => {
                self.detail(&format!("recorded as export {id} (`stowage exports`)"))
            }
            Recorded::Kept(id) => {
                self.info(&format!("recorded as export {id} (`stowage exports`)"))
            }
            Recorded::NotKept(e) => self.warn(&format!("could not record this export: {e}")),
        }
    }

    /// Keeps a failed command's record until its error has been printed: the outcome comes first.
    pub fn record_failure(&self, recorded: Recorded) {
        *self
            .failed_record
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(recorded);
    }

    /// Tells what happened to a failed command's record, after the error.
    pub fn after_error(&self) {
        let recorded = self
            .failed_record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(recorded) = recorded {
            self.record(&recorded, true);
        }
    }
}

/// Standard output could not be written. A type of its own, so that only
/// stdout's broken pipe ends a command quietly; a registry connection's
/// broken pipe stays an error.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output")]
pub struct StdoutError(#[source] io::Error);

/// Writes a command's result to stdout through `write`, flushed, so a write
/// that cannot reach its reader fails here rather than in a panic at exit.
pub fn to_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), StdoutError> {
    let mut stdout = io::stdout().lock();
    write(&mut stdout)
        .and_then(|()| stdout.flush())
        .map_err(StdoutError)
}

/// Whether the command ended because stdout's reader went away (`stowage … | head -1`).
///
/// Such a command ends quietly with exit 0, as ripgrep and most Rust command
/// lines do: the reader has what it wanted. stowage does not restore the
/// default SIGPIPE, which would kill it mid-write of an export record.
pub fn reader_gone(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<StdoutError>()
            .is_some_and(|e| e.0.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Prints `error:`, each `Caused by:` and the `hint:`; returns the exit code.
/// An interrupted export is one line: what stopped, what it reached, its record.
pub fn report_error(err: &anyhow::Error) -> i32 {
    let mut stderr = std::io::stderr().lock();
    if let Some(stopped) = err
        .chain()
        .find_map(|e| e.downcast_ref::<Error>())
        .filter(|e| e.stopped_by().is_some())
    {
        let _ = writeln!(stderr, "stowage: {stopped}");
        return stopped.exit_code();
    }
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

/// What the signal watcher says: at the first signal, that the export is
/// stopping and that a second signal ends it at once; and when the stop
/// outlasts its grace, that stowage ends without waiting.
pub fn stop_line(signal: Signal, stop: Stop) -> String {
    let name = signal.name();
    match (stop, signal) {
        (Stop::Stopping, Signal::Interrupt) => format!(
            "stowage: {name}: stopping at the next safe point to record what was reached (Ctrl-C again ends it at once, unrecorded)"
        ),
        (Stop::Stopping, Signal::Terminate) => format!(
            "stowage: {name}: stopping at the next safe point to record what was reached (a second signal ends it at once, unrecorded)"
        ),
        (Stop::GivingUp, _) => format!(
            "stowage: still stopping {} s after {name} (a request in flight gets no answer): ending now, unrecorded; the next run removes the temp files",
            STOP_GRACE.as_secs()
        ),
    }
}

/// The summary line of a push.
pub fn push_line(destination: &str, report: &PushReport) -> String {
    format!(
        "pushed {destination}: {} uploaded ({}), {} mounted, {} already there",
        report.uploaded,
        human_bytes(report.uploaded_bytes),
        report.mounted,
        report.skipped
    )
}

/// Build events on stderr: the warnings of the plan as soon as it is made, then the layers' progress.
pub struct BuildLog<'a> {
    pub out: &'a Output,
    pub secret_scan: bool,
    pub start_check: bool,
}

impl BuildEvents for BuildLog<'_> {
    fn planned(&self, plan: &BuildPlan) {
        if !self.secret_scan {
            self.out.warn("the secret scan is off (--no-secret-scan): keys, tokens and credential files in the sources go into the image unchecked");
        }
        if !self.start_check {
            self.out.warn("the start check is off (--no-start-check): the image is written without checking that its entrypoint and command would start");
        }
        for warning in plan.warnings() {
            self.out.warn(warning);
        }
        if let Some(progress) = &self.out.progress {
            let bytes = plan.layers.iter().map(|l| l.content_bytes).sum();
            progress.plan_layers(plan.layers.len(), bytes);
        }
    }

    fn warning(&self, message: &str) {
        self.out.warn(message);
    }

    fn not_checked(&self, what: &[&str]) {
        if !what.is_empty() {
            self.out
                .info(&format!("not checked in a dry run: {}", what.join(", ")));
        }
    }

    fn layer_progress(&self) -> Option<&dyn LayerProgress> {
        self.out
            .progress
            .as_deref()
            .map(|progress| progress as &dyn LayerProgress)
    }
}

/// What a dry run's checks say on stderr: findings let through, start-check notes, what was checked.
pub fn print_dry_run(out: &Output, dry: &DryRun) {
    for finding in &dry.findings.allowed {
        out.info(&format!("secret scan: {finding} (allowed)"));
    }
    for note in &dry.findings.published {
        out.info(&format!("note: secret scan: {note}"));
    }
    let base_unread = dry.plan.keep_base_remote && dry.plan.base != Location::Scratch;
    start_check_notes(out, dry.start_check.as_ref(), base_unread);
    if !dry.checked.is_empty() {
        out.info(&format!("checked in a dry run: {}", dry.checked.join(", ")));
    }
}

/// The plan as `--dry-run` prints it on stdout.
pub fn write_plan(out: &mut dyn Write, plan: &BuildPlan) -> io::Result<()> {
    writeln!(out, "base       {}", plan.base)?;
    writeln!(out, "platform   {}", plan.platform)?;
    writeln!(out, "library    {}", library_summary(plan))?;
    if let Some(relocation) = plan.library.as_ref().and_then(|l| l.relocation.as_ref()) {
        let files = plan.relocated_files();
        writeln!(
            out,
            "relocate   {} → {}: {} file{}",
            relocation.from,
            relocation.to,
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        )?;
        for (path, kind) in &files {
            writeln!(out, "           {:<8} {path}", kind.name())?;
        }
    }
    for (i, layer) in plan.layers.iter().enumerate() {
        let sources: Vec<String> = layer
            .sources
            .iter()
            .map(|s| s.display().to_string())
            .collect();
        writeln!(
            out,
            "layer {:<4} {:<16} {} files, {} entries, {}  from {}",
            i + 1,
            layer.name,
            layer.file_count,
            layer.entry_count,
            human_bytes(layer.content_bytes),
            sources.join(", ")
        )?;
        for part in &layer.parts {
            writeln!(
                out,
                "           {:<40} {:>6} files  {}",
                part.label,
                part.files,
                human_bytes(part.bytes)
            )?;
        }
    }
    for dest in &plan.destinations {
        writeln!(out, "dest       {dest}")?;
    }
    if plan.destinations.is_empty() {
        writeln!(out, "dest       none (a dry run needs no -o or `image`)")?;
    }
    Ok(())
}

/// What the inventory found in the library: `87 packages (pypi 85, npm 2)`, and whether it is a venv.
fn library_summary(plan: &BuildPlan) -> String {
    let Some(library) = &plan.library else {
        return "none (a base plus files)".to_string();
    };
    let inventory = &library.inventory;
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for package in &inventory.packages {
        *counts.entry(package.ecosystem.name()).or_default() += 1;
    }
    let by_ecosystem: Vec<String> = counts.iter().map(|(e, n)| format!("{e} {n}")).collect();
    let n = inventory.packages.len();
    let mut text = format!(
        "{} → {}: {n} package{}",
        library.source.display(),
        library.target,
        if n == 1 { "" } else { "s" }
    );
    if !by_ecosystem.is_empty() {
        text.push_str(&format!(" ({})", by_ecosystem.join(", ")));
    }
    if inventory.venv.is_some() {
        text.push_str(", a venv");
    }
    text
}

/// What the start check could not say: nothing to check, or the base unread (`base_unread`: a base not read, with --keep-base-remote).
fn start_check_notes(out: &Output, checked: Option<&Checked>, base_unread: bool) {
    match checked {
        Some(Checked::NoCommand) => out.info(
            "note: start check: the image has no entrypoint or command, so `docker run` needs one on its command line",
        ),
        Some(Checked::Starts { unchecked, .. }) if base_unread => {
            let mut text = "the start check did not read the base (--keep-base-remote): only the added layers were checked".to_string();
            if !unchecked.is_empty() {
                text.push_str(&format!(
                    "; not checked, as it may be in the base: {}",
                    unchecked.join(", ")
                ));
            }
            out.warn(&text);
        }
        _ => {}
    }
}

/// What a finished build says on stderr: allowed findings, layers, destinations, the run line.
pub fn print_built(out: &Output, built: &Built) {
    let outcome = &built.outcome;
    let image = &outcome.built;
    for finding in &image.findings.allowed {
        out.info(&format!("secret scan: {finding} (allowed)"));
    }
    for note in &image.findings.published {
        out.info(&format!("note: secret scan: {note}"));
    }
    let base_unread = built.plan.keep_base_remote && image.base_digest.is_some();
    start_check_notes(out, image.start_check.as_ref(), base_unread);
    for layer in &image.layers {
        out.info(&format!(
            "layer {:<16} {} files, {} → {}{}",
            layer.name,
            layer.file_count,
            human_bytes(layer.size),
            layer.digest,
            match (layer.cached, layer.reused) {
                (true, _) => " (cached)",
                (false, true) => " (reused: same content)",
                (false, false) => "",
            }
        ));
    }
    if let Some(index) = outcome.attested() {
        let attest = built.plan.attest;
        let kinds: Vec<&str> = [(attest.sbom, "sbom"), (attest.provenance, "provenance")]
            .into_iter()
            .filter_map(|(on, kind)| on.then_some(kind))
            .collect();
        out.info(&format!(
            "attested {} with {}: index {}",
            image.image.digest(),
            kinds.join(" and "),
            index.digest
        ));
    }
    for written in &outcome.written {
        match &written.push {
            Some(report) => out.info(&push_line(&written.destination, report)),
            None => out.info(&format!("wrote {}", written.destination)),
        }
    }
    if outcome.written.iter().any(|w| w.push.is_some())
        && let Some(line) = &built.run_command
    {
        out.info(&format!("run it with: {line}"));
    }
}

/// What a copy, push or archive says on stderr.
pub fn print_transferred(out: &Output, source: &str, done: &Transferred, archive: bool) {
    for w in &done.written {
        match (&w.push, archive) {
            (Some(report), _) => out.info(&push_line(&w.destination, report)),
            (None, true) => out.info(&format!("wrote {}", w.destination)),
            (None, false) => out.info(&format!("copied {source} to {}", w.destination)),
        }
    }
}

/// The exports table on stdout.
pub fn write_exports_table(
    stdout: &mut dyn Write,
    records: &[ExportRecord],
) -> std::io::Result<()> {
    writeln!(
        stdout,
        "{:<5} {:<20} {:<7} {:<11} {:<19} {:>10}  DESTINATIONS",
        "ID", "TIME", "KIND", "STATUS", "DIGEST", "SIZE"
    )?;
    for r in records {
        let digest = r
            .digest
            .as_deref()
            .map(|d| d.chars().take(19).collect::<String>())
            .unwrap_or_else(|| "-".into());
        let size = r.size.map(human_bytes).unwrap_or_else(|| "-".into());
        let destinations: Vec<String> = r
            .destinations
            .iter()
            .map(|d| {
                // A running export's destination not reached yet has no status.
                let status = d.status.map_or("pending", |s| s.as_str());
                match d.size {
                    Some(bytes) => {
                        format!("{} ({status}, {})", d.destination, human_bytes(bytes))
                    }
                    None => format!("{} ({status})", d.destination),
                }
            })
            .collect();
        writeln!(
            stdout,
            "{:<5} {:<20} {:<7} {:<11} {:<19} {:>10}  {}",
            r.id,
            r.time,
            r.kind.as_str(),
            r.status.as_str(),
            digest,
            size,
            destinations.join(", ")
        )?;
        if let Some(error) = &r.error {
            writeln!(stdout, "      error: {}", error_summary(error))?;
        }
    }
    Ok(())
}

/// A recorded error on one line: its first line and, when that ends in a
/// colon (a list follows, such as the secret scan's findings), the list's
/// first item and how many more `--json` shows.
fn error_summary(error: &str) -> String {
    let mut lines = error.lines();
    let first = lines.next().unwrap_or_default();
    if !first.ends_with(':') {
        return first.to_string();
    }
    let items: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
    match items.as_slice() {
        [] => first.trim_end_matches(':').to_string(),
        [only] => format!("{first} {only}"),
        [item, rest @ ..] => format!(
            "{first} {item} (and {} more: `stowage exports list --json`)",
            rest.len()
        ),
    }
}

/// What `exports delete` will remove, before it asks.
pub fn write_delete_plan(
    out: &mut dyn Write,
    plan: &crate::commands::exports::DeletePlan,
) -> std::io::Result<()> {
    writeln!(out, "Export {} will be deleted from:", plan.id)?;
    let removes = plan.removes();
    if removes.is_empty() {
        writeln!(
            out,
            "  nothing: it wrote nowhere (the record is only marked deleted)"
        )?;
    }
    for line in &removes {
        writeln!(out, "  - {line}")?;
    }
    for line in &plan.leaves() {
        writeln!(out, "  left alone: {line}")?;
    }
    Ok(())
}

/// An index's summary as text.
pub fn write_index_summary(
    out: &mut dyn Write,
    source: &str,
    index: &IndexSummary,
) -> std::io::Result<()> {
    writeln!(out, "Image       {source}")?;
    writeln!(out, "Digest      {}", index.digest)?;
    writeln!(out, "MediaType   {}", index.media_type)?;
    writeln!(out, "Platforms")?;
    for m in &index.manifests {
        writeln!(
            out,
            "  {:<16} {}",
            m.platform.as_deref().unwrap_or("-"),
            m.digest
        )?;
    }
    if !index.attestations.is_empty() {
        writeln!(out, "Attestations")?;
    }
    for a in &index.attestations {
        let describes = a
            .describes
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "-".into());
        writeln!(out, "  {} for {describes}", a.digest)?;
        for s in &a.statements {
            writeln!(
                out,
                "    {:<32} {} ({} bytes)",
                s.predicate_type.as_deref().unwrap_or(&s.media_type),
                s.digest,
                s.size
            )?;
        }
    }
    Ok(())
}

/// An image's summary as text.
pub fn write_image_summary(
    out: &mut dyn Write,
    source: &str,
    image: &ImageSummary,
) -> std::io::Result<()> {
    let list = |items: &Option<Vec<String>>| match items {
        // Each item quoted, no spaces: the JSON-like form the summary always showed.
        Some(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| format!("{i:?}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        None => "-".into(),
    };
    let text = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
    writeln!(out, "Image       {source}")?;
    writeln!(out, "Digest      {}", image.digest)?;
    writeln!(out, "MediaType   {}", image.media_type)?;
    writeln!(out, "Platform    {}", text(&image.platform))?;
    writeln!(out, "Created     {}", text(&image.created))?;
    let config = &image.config;
    if !config.env.is_empty() {
        writeln!(out, "Env")?;
        for kv in &config.env {
            writeln!(out, "  {kv}")?;
        }
    }
    writeln!(out, "Entrypoint  {}", list(&config.entrypoint))?;
    writeln!(out, "Cmd         {}", list(&config.cmd))?;
    writeln!(out, "WorkingDir  {}", text(&config.working_dir))?;
    writeln!(out, "User        {}", text(&config.user))?;
    if !config.exposed_ports.is_empty() {
        writeln!(out, "Ports       {}", config.exposed_ports.join(" "))?;
    }
    if !config.labels.is_empty() {
        writeln!(out, "Labels")?;
        for (k, v) in &config.labels {
            writeln!(out, "  {k}={v}")?;
        }
    }
    writeln!(out, "Layers      {}", image.layers.len())?;
    for l in &image.layers {
        writeln!(
            out,
            "  {}  {:>10}  {}",
            l.digest,
            human_bytes(l.size),
            l.media_type
        )?;
    }
    Ok(())
}

/// `stowage check`'s text: "eligible", or one line per violation, then
/// the warnings, each as `POLICY:LINE: RULE: SUBJECT: DETAIL`.
pub fn write_check(w: &mut dyn Write, report: &CheckReport) -> std::io::Result<()> {
    let place = |line: usize| {
        let path = report.policy_path.display();
        if line == 0 {
            format!("{path}")
        } else {
            format!("{path}:{line}")
        }
    };
    if report.eligible {
        writeln!(w, "eligible")?;
    }
    for v in &report.violations {
        writeln!(
            w,
            "violation: {}: {}: {}: {}",
            place(v.policy_line),
            v.rule,
            v.subject,
            v.detail
        )?;
    }
    for v in &report.warnings {
        writeln!(
            w,
            "warning: {}: {}: {}: {}",
            place(v.policy_line),
            v.rule,
            v.subject,
            v.detail
        )?;
    }
    Ok(())
}

/// What `cache prune` removed (or would remove), as one line.
pub fn prune_line(report: &PruneReport) -> String {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let held = match report.held_blobs {
        0 => String::new(),
        n => format!(", {n} of them held by running builds or exports"),
    };
    format!(
        "{verb} {} blob{} ({}) and {} cache record{}; kept {} blob{} ({}){held}",
        report.removed_blobs,
        plural(report.removed_blobs),
        human_bytes(report.removed_bytes),
        report.removed_records,
        plural(report.removed_records),
        report.kept_blobs,
        plural(report.kept_blobs),
        human_bytes(report.kept_bytes),
    )
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What `cache info` prints on stdout.
pub fn write_store_info(out: &mut dyn Write, info: &StoreInfo) -> io::Result<()> {
    writeln!(out, "store      {}", info.root.display())?;
    writeln!(
        out,
        "blobs      {} ({})",
        info.blobs,
        human_bytes(info.bytes)
    )?;
    let since = |secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    if let Some(age) = info.oldest_use.and_then(|used| {
        std::time::SystemTime::now()
            .duration_since(since(used))
            .ok()
    }) {
        writeln!(out, "oldest use {} ago", human_age(age))?;
    }
    writeln!(
        out,
        "holding    {} running build(s) or export(s)",
        info.holders
    )?;
    writeln!(out, "{:<16} {:>8} {:>10}", "cache", "records", "size")?;
    for cache in &info.caches {
        let (name, records) = (&cache.name, cache.records);
        writeln!(
            out,
            "{name:<16} {records:>8} {:>10}",
            human_bytes(cache.bytes)
        )?;
    }
    Ok(())
}

/// A duration as its largest whole unit: `3 days`, `5 h`, `12 min`, `40 s`.
fn human_age(age: std::time::Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::error_summary;

    #[test]
    fn a_recorded_error_that_ends_in_a_list_shows_its_first_item() {
        let scan = "cannot build the image described by stowage.toml: the secret scan found 2 possible secrets in the files this image adds; nothing was pushed or written:\n  /app/.env: dotenv-secret\n  /app/id_rsa: private-key";
        assert_eq!(
            error_summary(scan),
            "cannot build the image described by stowage.toml: the secret scan found 2 possible secrets in the files this image adds; nothing was pushed or written: /app/.env: dotenv-secret (and 1 more: `stowage exports list --json`)"
        );
        assert_eq!(
            error_summary("found 1 thing:\n  /a: rule"),
            "found 1 thing: /a: rule"
        );
        assert_eq!(
            error_summary("cannot push: connection refused\nsecond line"),
            "cannot push: connection refused"
        );
        assert_eq!(error_summary("an empty list:"), "an empty list");
    }
}
