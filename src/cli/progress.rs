//! The progress display: layers being built and blobs being moved, as bars on a terminal and as periodic plain lines otherwise.
//!
//! One `Progress` is both the layer writer's `LayerProgress` and the
//! registry client's `TransferProgress`, so a build that pulls its base,
//! writes its layers and pushes them draws on one display, and a bar is
//! never overdrawn by another display's line. `-q` makes none at all.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Digest;
use crate::layer::{BuiltLayer, LayerProgress};
use crate::registry::{TransferEnd, TransferKind, TransferProgress};
use crate::units::human_bytes;

/// How often plain lines report a running build or transfer: often enough
/// to show a long one is alive, rarely enough to keep CI logs readable.
pub const PLAIN_PERIOD: Duration = Duration::from_secs(5);

/// The time since some fixed start; tests hand in one they move by hand.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// The real clock, counting from when it was made.
struct WallClock(Instant);

impl Clock for WallClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The display of one command's progress.
pub struct Progress {
    view: View,
}

enum View {
    Bars(Bars),
    Lines(Lines),
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines every `PLAIN_PERIOD` when it is a file or pipe.
    pub fn for_stderr() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::bars(ProgressDrawTarget::stderr())
        } else {
            let clock = Arc::new(WallClock(Instant::now()));
            Progress::lines(Box::new(std::io::stderr()), clock, PLAIN_PERIOD)
        }
    }

    /// Bars drawn on `target` (a fake terminal in tests).
    pub fn bars(target: ProgressDrawTarget) -> Progress {
        Progress {
            view: View::Bars(Bars {
                multi: MultiProgress::with_draw_target(target),
                build: Mutex::default(),
                transfer: Mutex::default(),
            }),
        }
    }

    /// Plain lines into `out`, a status report at most every `period` of `clock`.
    pub fn lines(out: Box<dyn Write + Send>, clock: Arc<dyn Clock>, period: Duration) -> Progress {
        Progress {
            view: View::Lines(Lines {
                clock,
                period_ms: millis(period),
                next_due_ms: AtomicU64::new(IDLE),
                moved: AtomicU64::new(0),
                state: Mutex::new(LineState {
                    out,
                    layers: Vec::new(),
                    planned_layers: 0,
                    planned_bytes: 0,
                    done_bytes: 0,
                    build_started: None,
                    transfer: None,
                }),
            }),
        }
    }

    /// The build will write `layers` layers holding `bytes` of file content.
    pub fn plan_layers(&self, layers: usize, bytes: u64) {
        match &self.view {
            View::Bars(bars) => {
                if let Ok(mut build) = bars.build.lock() {
                    build.planned_layers = layers;
                    build.planned_bytes = bytes;
                }
            }
            View::Lines(lines) => {
                if let Ok(mut state) = lines.state.lock() {
                    state.planned_layers = layers;
                    state.planned_bytes = bytes;
                }
            }
        }
    }

    /// A line of news that must not be overdrawn by a bar.
    pub fn println(&self, line: &str) {
        match &self.view {
            View::Bars(bars) => {
                if bars.multi.println(line).is_err() {
                    eprintln!("{line}");
                }
            }
            View::Lines(lines) => lines.write(&format!("{line}\n")),
        }
    }

    /// Takes every bar off the screen, before the command prints its outcome or error.
    pub fn clear(&self) {
        if let View::Bars(bars) = &self.view {
            bars.clear();
        }
    }
}

impl LayerProgress for Progress {
    fn started(&self, name: &str, planned_bytes: u64) {
        match &self.view {
            View::Bars(bars) => bars.layer_started(name, planned_bytes),
            View::Lines(lines) => lines.layer_started(name, planned_bytes),
        }
    }

    fn advanced(&self, name: &str, bytes: u64) {
        match &self.view {
            View::Bars(bars) => bars.layer_advanced(name, bytes),
            View::Lines(lines) => lines.layer_advanced(name, bytes),
        }
    }

    fn finished(&self, layer: &BuiltLayer) {
        match &self.view {
            View::Bars(bars) => bars.layer_finished(layer),
            View::Lines(lines) => lines.layer_finished(layer),
        }
    }
}

impl TransferProgress for Progress {
    fn begin(&self, kind: TransferKind, digest: &Digest, bytes: u64) {
        match &self.view {
            View::Bars(bars) => bars.transfer_begun(kind, digest, bytes),
            View::Lines(lines) => lines.transfer_begun(kind, digest, bytes),
        }
    }

    /// Runs on every read of a blob: no lock in the plain mode, only indicatif's counter with bars.
    fn advance(&self, bytes: u64) {
        match &self.view {
            View::Bars(bars) => {
                if let Ok(transfer) = bars.transfer.lock()
                    && let Some(bar) = &transfer.bar
                {
                    bar.inc(bytes);
                }
            }
            View::Lines(lines) => {
                lines.moved.fetch_add(bytes, Relaxed);
                lines.tick();
            }
        }
    }

    fn end(&self, how: TransferEnd, digest: &Digest, bytes: u64) {
        // The same line as before the bars came, with or without a terminal: scripts and tests read it.
        let hex = digest.hex();
        let line = format!(
            "{} {} ({})",
            how.word(),
            hex.get(..12).unwrap_or(hex),
            human_bytes(bytes)
        );
        match &self.view {
            View::Bars(bars) => bars.transfer_ended(&line, digest),
            View::Lines(lines) => lines.transfer_ended(&line, digest),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `42%` of `planned`, 100 when nothing was planned, never above 100 (a retried blob counts twice).
fn percent(done: u64, planned: u64) -> u64 {
    if planned == 0 {
        return 100;
    }
    (u128::from(done) * 100 / u128::from(planned)).min(100) as u64
}

/// `95.1 MiB/s`: `bytes` over `elapsed`.
fn rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    format!("{}/s", human_bytes((bytes as f64 / secs) as u64))
}

/// `40 s`, `3 min 20 s`, `2 h 5 min`.
fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

// --- Bars, on a terminal ----------------------------------------------------

/// indicatif bars on one `MultiProgress`: one per layer being written, one
/// for all layers, one for the blobs moving.
struct Bars {
    multi: MultiProgress,
    build: Mutex<BuildBars>,
    transfer: Mutex<TransferBar>,
}

#[derive(Default)]
struct BuildBars {
    planned_layers: usize,
    planned_bytes: u64,
    finished_layers: usize,
    /// All layers' bytes; only when there is more than one layer.
    total: Option<ProgressBar>,
    layers: HashMap<String, ProgressBar>,
}

#[derive(Default)]
struct TransferBar {
    bar: Option<ProgressBar>,
    /// The blobs begun and not yet ended (a retry begins one again).
    active: Vec<Digest>,
}

const BAR_TEMPLATE: &str = "{prefix:>12} [{bar:30}] {binary_bytes:>10} / {binary_total_bytes:<10} {binary_bytes_per_sec:>12}  ETA {eta}";

fn bar_style() -> ProgressStyle {
    // The template is a constant, so it parses; the default style is only a fallback.
    ProgressStyle::with_template(BAR_TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Bars {
    fn layer_started(&self, name: &str, planned_bytes: u64) {
        let Ok(mut build) = self.build.lock() else {
            return;
        };
        if build.total.is_none() && build.planned_layers > 1 && build.finished_layers == 0 {
            let total = ProgressBar::new(build.planned_bytes)
                .with_style(bar_style())
                .with_prefix("all layers");
            let total = self.multi.add(total);
            total.tick();
            build.total = Some(total);
        }
        let bar = ProgressBar::new(planned_bytes)
            .with_style(bar_style())
            .with_prefix(name.to_string());
        // Layers above the total, in the order they started.
        let bar = match &build.total {
            Some(total) => self.multi.insert_before(total, bar),
            None => self.multi.add(bar),
        };
        bar.tick();
        build.layers.insert(name.to_string(), bar);
    }

    fn layer_advanced(&self, name: &str, bytes: u64) {
        let Ok(build) = self.build.lock() else {
            return;
        };
        if let Some(bar) = build.layers.get(name) {
            bar.inc(bytes);
        }
        if let Some(total) = &build.total {
            total.inc(bytes);
        }
    }

    fn layer_finished(&self, layer: &BuiltLayer) {
        let Ok(mut build) = self.build.lock() else {
            return;
        };
        build.finished_layers += 1;
        if let Some(bar) = build.layers.remove(&layer.name) {
            // A cached layer read nothing: its bytes count as done all at once.
            let rest = bar.length().unwrap_or(0).saturating_sub(bar.position());
            if let Some(total) = &build.total {
                total.inc(rest);
            }
            self.remove(&bar);
        }
        if build.finished_layers >= build.planned_layers
            && let Some(total) = build.total.take()
        {
            self.remove(&total);
        }
    }

    fn transfer_begun(&self, kind: TransferKind, digest: &Digest, bytes: u64) {
        let Ok(mut transfer) = self.transfer.lock() else {
            return;
        };
        if transfer.active.contains(digest) {
            return;
        }
        transfer.active.push(digest.clone());
        match &transfer.bar {
            Some(bar) => bar.inc_length(bytes),
            None => {
                let bar = ProgressBar::new(bytes)
                    .with_style(bar_style())
                    .with_prefix(kind.word());
                let bar = self.multi.add(bar);
                bar.tick();
                transfer.bar = Some(bar);
            }
        }
    }

    fn transfer_ended(&self, line: &str, digest: &Digest) {
        if self.multi.println(line).is_err() {
            eprintln!("{line}");
        }
        let Ok(mut transfer) = self.transfer.lock() else {
            return;
        };
        transfer.active.retain(|d| d != digest);
        if transfer.active.is_empty()
            && let Some(bar) = transfer.bar.take()
        {
            self.remove(&bar);
        }
    }

    /// Takes a bar off the screen and out of the `MultiProgress`.
    fn remove(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        self.multi.remove(bar);
    }

    fn clear(&self) {
        if let Ok(mut build) = self.build.lock() {
            let layers: Vec<ProgressBar> = build.layers.drain().map(|(_, bar)| bar).collect();
            for bar in layers.iter().chain(build.total.take().as_ref()) {
                self.remove(bar);
            }
        }
        if let Ok(mut transfer) = self.transfer.lock() {
            transfer.active.clear();
            if let Some(bar) = transfer.bar.take() {
                self.remove(&bar);
            }
        }
        let _ = self.multi.clear();
    }
}

// --- Plain lines, when stderr is not a terminal ---------------------------

/// `next_due_ms` when nothing runs: no status is due until something starts.
const IDLE: u64 = u64::MAX;

/// Plain lines: a status of everything running at most once a period, one
/// line per finished layer and one per finished blob.
struct Lines {
    clock: Arc<dyn Clock>,
    period_ms: u64,
    /// When the next status is due, in ms of `clock`; read without the lock on every report.
    next_due_ms: AtomicU64,
    /// Bytes of blobs moved since the display began, counted without the lock.
    moved: AtomicU64,
    state: Mutex<LineState>,
}

struct LineState {
    out: Box<dyn Write + Send>,
    /// The layers being written, in the order they started.
    layers: Vec<ActiveLayer>,
    planned_layers: usize,
    planned_bytes: u64,
    done_bytes: u64,
    build_started: Option<Duration>,
    transfer: Option<ActiveTransfer>,
}

struct ActiveLayer {
    name: String,
    planned: u64,
    done: u64,
    started: Duration,
}

/// The blobs moving now, counted together: the registry reports bytes without saying whose.
struct ActiveTransfer {
    kind: TransferKind,
    active: Vec<Digest>,
    bytes: u64,
    /// `moved` when the first of them began.
    moved_before: u64,
    started: Duration,
}

impl Lines {
    /// Writes `text` in one call, so lines of other threads do not cut into it.
    fn write(&self, text: &str) {
        if let Ok(mut state) = self.state.lock() {
            let _ = state.out.write_all(text.as_bytes());
            let _ = state.out.flush();
        }
    }

    /// Something started: the first status is due one period from now, unless one already is.
    fn arm(&self, now: Duration) {
        let due = millis(now).saturating_add(self.period_ms);
        let _ = self
            .next_due_ms
            .compare_exchange(IDLE, due, Relaxed, Relaxed);
    }

    /// Writes a status of everything running when one is due.
    fn tick(&self) {
        let now = self.clock.now();
        if millis(now) < self.next_due_ms.load(Relaxed) {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        // Another thread may have written the status since the check above.
        if millis(now) < self.next_due_ms.load(Relaxed) {
            return;
        }
        let text = state.status(now, self.moved.load(Relaxed));
        let _ = state.out.write_all(text.as_bytes());
        let _ = state.out.flush();
        self.next_due_ms
            .store(millis(now).saturating_add(self.period_ms), Relaxed);
    }

    /// Nothing runs any more: the next status waits a full period after the next start.
    fn idle_if_done(&self, state: &LineState) {
        if state.layers.is_empty() && state.transfer.is_none() {
            self.next_due_ms.store(IDLE, Relaxed);
        }
    }

    fn layer_started(&self, name: &str, planned: u64) {
        let now = self.clock.now();
        if let Ok(mut state) = self.state.lock() {
            state.build_started.get_or_insert(now);
            state.layers.push(ActiveLayer {
                name: name.to_string(),
                planned,
                done: 0,
                started: now,
            });
        }
        self.arm(now);
    }

    fn layer_advanced(&self, name: &str, bytes: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.done_bytes += bytes;
            if let Some(layer) = state.layers.iter_mut().find(|l| l.name == name) {
                layer.done += bytes;
            }
        }
        self.tick();
    }

    fn layer_finished(&self, built: &BuiltLayer) {
        let now = self.clock.now();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let found = state.layers.iter().position(|l| l.name == built.name);
        let layer = found.map(|i| state.layers.remove(i));
        let line = match &layer {
            _ if built.cached => format!(
                "build: {} taken from the layer cache ({})\n",
                built.name,
                human_bytes(built.size)
            ),
            _ if built.reused => format!(
                "build: {} hashed; its blob reused from the content cache ({})\n",
                built.name,
                human_bytes(built.size)
            ),
            Some(layer) => format!(
                "build: {} done: {} in {:.1} s, {} compressed\n",
                built.name,
                human_bytes(layer.planned),
                now.saturating_sub(layer.started).as_secs_f64(),
                human_bytes(built.size)
            ),
            None => format!(
                "build: {} done: {} compressed\n",
                built.name,
                human_bytes(built.size)
            ),
        };
        if let Some(layer) = layer {
            // A cached layer read nothing: its bytes count as done all at once.
            state.done_bytes += layer.planned.saturating_sub(layer.done);
        }
        let _ = state.out.write_all(line.as_bytes());
        let _ = state.out.flush();
        self.idle_if_done(&state);
    }

    fn transfer_begun(&self, kind: TransferKind, digest: &Digest, bytes: u64) {
        let now = self.clock.now();
        let moved = self.moved.load(Relaxed);
        if let Ok(mut state) = self.state.lock() {
            let transfer = state.transfer.get_or_insert_with(|| ActiveTransfer {
                kind,
                active: Vec::new(),
                bytes: 0,
                moved_before: moved,
                started: now,
            });
            if !transfer.active.contains(digest) {
                transfer.active.push(digest.clone());
                transfer.bytes += bytes;
            }
        }
        self.arm(now);
    }

    fn transfer_ended(&self, line: &str, digest: &Digest) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let _ = writeln!(state.out, "{line}");
        let _ = state.out.flush();
        if let Some(transfer) = &mut state.transfer {
            transfer.active.retain(|d| d != digest);
            if transfer.active.is_empty() {
                state.transfer = None;
            }
        }
        self.idle_if_done(&state);
    }
}

impl LineState {
    /// One line per layer being written, one for all layers, one for the blobs moving.
    fn status(&self, now: Duration, moved: u64) -> String {
        let mut text = String::new();
        for layer in &self.layers {
            text += &format!(
                "build: {} {} of {} ({}%), {}\n",
                layer.name,
                human_bytes(layer.done),
                human_bytes(layer.planned),
                percent(layer.done, layer.planned),
                rate(layer.done, now.saturating_sub(layer.started))
            );
        }
        if let Some(started) = self.build_started
            && self.planned_layers > 1
            && !self.layers.is_empty()
        {
            let elapsed = now.saturating_sub(started);
            let per_sec = self.done_bytes as f64 / elapsed.as_secs_f64().max(0.001);
            let left = self.planned_bytes.saturating_sub(self.done_bytes);
            let eta = if per_sec >= 1.0 && left > 0 {
                let secs = (left as f64 / per_sec).ceil() as u64;
                format!(", about {} left", human_duration(Duration::from_secs(secs)))
            } else {
                String::new()
            };
            text += &format!(
                "build: all layers {} of {} ({}%), {}{eta}\n",
                human_bytes(self.done_bytes),
                human_bytes(self.planned_bytes),
                percent(self.done_bytes, self.planned_bytes),
                rate(self.done_bytes, elapsed)
            );
        }
        if let Some(t) = &self.transfer {
            let done = moved.saturating_sub(t.moved_before);
            text += &format!(
                "{}: {} of {} ({}%), {}\n",
                t.kind.word(),
                human_bytes(done.min(t.bytes)),
                human_bytes(t.bytes),
                percent(done, t.bytes),
                rate(done, now.saturating_sub(t.started))
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use indicatif::TermLike;

    use super::*;
    use crate::layer::Compression;

    const MIB: u64 = 1024 * 1024;

    /// A clock the test moves.
    #[derive(Default)]
    struct FakeClock(AtomicU64);

    impl FakeClock {
        fn set(&self, ms: u64) {
            self.0.store(ms, Relaxed);
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            Duration::from_millis(self.0.load(Relaxed))
        }
    }

    /// A `Write` whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        /// What was written since the last call.
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A terminal that records what indicatif draws, cursor moves as ANSI sequences.
    #[derive(Clone, Default)]
    struct FakeTerm(Arc<Mutex<String>>);

    impl fmt::Debug for FakeTerm {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("FakeTerm")
        }
    }

    impl FakeTerm {
        fn push(&self, text: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(text);
            Ok(())
        }
    }

    impl TermLike for FakeTerm {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.push(&format!("\x1b[{n}A"))
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.push(&format!("\x1b[{n}B"))
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            self.push(&format!("\x1b[{n}C"))
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            self.push(&format!("\x1b[{n}D"))
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.push(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.push(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.push("\r\x1b[2K")
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn built(name: &str, size: u64, cached: bool) -> BuiltLayer {
        BuiltLayer {
            name: name.into(),
            digest: Digest::of(name.as_bytes()),
            diff_id: Digest::of(b"diff"),
            size,
            compression: Compression::Gzip,
            entry_count: 1,
            file_count: 1,
            cached,
            reused: false,
            findings: Vec::new(),
        }
    }

    fn plain() -> (Progress, Arc<FakeClock>, Buffer) {
        let clock = Arc::new(FakeClock::default());
        let out = Buffer::default();
        let progress = Progress::lines(Box::new(out.clone()), clock.clone(), PLAIN_PERIOD);
        (progress, clock, out)
    }

    #[test]
    fn plain_lines_report_at_most_once_a_period_and_each_finished_layer() {
        let (progress, clock, out) = plain();
        progress.plan_layers(2, 300 * MIB);
        progress.started("library", 200 * MIB);
        progress.started("workspace", 100 * MIB);
        for (ms, name) in [(1000, "library"), (2000, "library"), (3000, "workspace")] {
            clock.set(ms);
            progress.advanced(name, 10 * MIB);
        }
        assert_eq!(out.take(), "", "three reports within 5 s: no status yet");
        clock.set(6000);
        progress.advanced("library", 30 * MIB);
        assert_eq!(
            out.take(),
            "build: library 50.0 MiB of 200.0 MiB (25%), 8.3 MiB/s\n\
             build: workspace 10.0 MiB of 100.0 MiB (10%), 1.7 MiB/s\n\
             build: all layers 60.0 MiB of 300.0 MiB (20%), 10.0 MiB/s, about 24 s left\n"
        );
        clock.set(7000);
        progress.advanced("library", MIB);
        clock.set(10_999);
        progress.advanced("library", MIB);
        assert_eq!(
            out.take(),
            "",
            "the next status waits a period after the last"
        );
        clock.set(11_000);
        progress.finished(&built("workspace", 20 * MIB, false));
        progress.advanced("library", 8 * MIB);
        assert_eq!(
            out.take(),
            "build: workspace done: 100.0 MiB in 11.0 s, 20.0 MiB compressed\n\
             build: library 60.0 MiB of 200.0 MiB (30%), 5.5 MiB/s\n\
             build: all layers 160.0 MiB of 300.0 MiB (53%), 14.5 MiB/s, about 10 s left\n"
        );
        progress.finished(&built("library", 50 * MIB, false));
        assert_eq!(
            out.take(),
            "build: library done: 200.0 MiB in 11.0 s, 50.0 MiB compressed\n"
        );
        clock.set(30_000);
        progress.advanced("library", MIB);
        assert_eq!(out.take(), "", "nothing runs: nothing to report");
    }

    #[test]
    fn plain_lines_for_a_cached_layer_and_for_transfers() {
        let (progress, clock, out) = plain();
        progress.plan_layers(1, 10 * MIB);
        progress.started("library", 10 * MIB);
        progress.finished(&built("library", 3 * MIB, true));
        assert_eq!(
            out.take(),
            "build: library taken from the layer cache (3.0 MiB)\n"
        );
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        clock.set(1000);
        progress.begin(TransferKind::Push, &a, 8 * MIB);
        progress.begin(TransferKind::Push, &b, 2 * MIB);
        clock.set(2000);
        progress.advance(3 * MIB);
        assert_eq!(
            out.take(),
            "",
            "the first status waits a period from the start"
        );
        clock.set(6000);
        progress.advance(MIB);
        progress.advance(MIB);
        assert_eq!(out.take(), "push: 4.0 MiB of 10.0 MiB (40%), 819.2 KiB/s\n");
        progress.end(TransferEnd::Uploaded, &b, 2 * MIB);
        let c = Digest::of(b"c");
        progress.end(TransferEnd::Mounted, &c, MIB);
        let (a_hex, b_hex, c_hex) = (&a.hex()[..12], &b.hex()[..12], &c.hex()[..12]);
        assert_eq!(
            out.take(),
            format!("uploaded {b_hex} (2.0 MiB)\nmounted {c_hex} (1.0 MiB)\n")
        );
        progress.end(TransferEnd::Uploaded, &a, 8 * MIB);
        clock.set(60_000);
        progress.advance(MIB);
        assert_eq!(out.take(), format!("uploaded {a_hex} (8.0 MiB)\n"));
    }

    fn bars() -> (Progress, FakeTerm) {
        let term = FakeTerm::default();
        let progress = Progress::bars(ProgressDrawTarget::term_like(Box::new(term.clone())));
        (progress, term)
    }

    fn the_bars(progress: &Progress) -> &Bars {
        match &progress.view {
            View::Bars(bars) => bars,
            View::Lines(_) => panic!("not bars"),
        }
    }

    #[test]
    fn bars_count_each_layer_and_the_total() {
        let (progress, term) = bars();
        progress.plan_layers(2, 30 * MIB);
        progress.started("library", 10 * MIB);
        progress.started("workspace", 20 * MIB);
        progress.advanced("library", 4 * MIB);
        {
            let build = the_bars(&progress).build.lock().unwrap();
            let library = &build.layers["library"];
            assert_eq!(
                (library.position(), library.length()),
                (4 * MIB, Some(10 * MIB))
            );
            assert_eq!(library.prefix(), "library");
            let total = build.total.as_ref().unwrap();
            assert_eq!(
                (total.position(), total.length()),
                (4 * MIB, Some(30 * MIB))
            );
        }
        let drawn = term.0.lock().unwrap().clone();
        for text in ["library", "workspace", "all layers", "10.00 MiB", "ETA"] {
            assert!(drawn.contains(text), "{text} in {drawn:?}");
        }
        progress.finished(&built("library", MIB, false));
        {
            let build = the_bars(&progress).build.lock().unwrap();
            assert!(!build.layers.contains_key("library"));
            assert_eq!(build.total.as_ref().unwrap().position(), 10 * MIB);
        }
        progress.finished(&built("workspace", MIB, true));
        let build = the_bars(&progress).build.lock().unwrap();
        assert!(
            build.layers.is_empty() && build.total.is_none(),
            "all done, all gone"
        );
    }

    #[test]
    fn transfers_share_the_display_and_keep_their_lines() {
        let (progress, term) = bars();
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        progress.begin(TransferKind::Pull, &a, 5 * MIB);
        progress.begin(TransferKind::Pull, &b, 3 * MIB);
        progress.advance(2 * MIB);
        {
            let transfer = the_bars(&progress).transfer.lock().unwrap();
            let bar = transfer.bar.as_ref().unwrap();
            assert_eq!((bar.position(), bar.length()), (2 * MIB, Some(8 * MIB)));
            assert_eq!(bar.prefix(), "pull");
        }
        progress.end(TransferEnd::Downloaded, &a, 5 * MIB);
        assert!(the_bars(&progress).transfer.lock().unwrap().bar.is_some());
        progress.end(TransferEnd::Downloaded, &b, 3 * MIB);
        assert!(the_bars(&progress).transfer.lock().unwrap().bar.is_none());
        let drawn = term.0.lock().unwrap().clone();
        let line = format!("downloaded {} (5.0 MiB)", &a.hex()[..12]);
        assert!(drawn.contains(&line), "{line} in {drawn:?}");
        progress.started("library", MIB);
        progress.clear();
        assert!(the_bars(&progress).build.lock().unwrap().layers.is_empty());
    }
}
