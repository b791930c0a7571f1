//! SIGINT and SIGTERM during an export: the first asks the work to stop at its next safe point, a second ends the process at once.
//!
//! A signal handler may do almost nothing safely, so it only stores which
//! signal came, restores both signals' default disposition (so a second
//! one kills the process as if stowage had never caught any) and wakes a
//! watcher thread through a pipe. The work asks [`check`] where stopping
//! leaves nothing half-done: between a layer's files and reads, between the
//! chunks of a compression, between the chunks of an upload body, between
//! blobs and destinations, and before each manifest PUT. The error then
//! unwinds to the command, which records what was reached; the temp files
//! of the run are removed on the way by their owners' `Drop`.
//!
//! The watcher tells the user that the run is stopping, and if the stop
//! takes longer than [`STOP_GRACE`] (a registry that does not answer a
//! request in flight), it ends the process itself: stopping never hangs.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// The longest a stop may take after the first signal before the process
/// ends without waiting further. Stopping at a safe point takes well under
/// a second (a compression chunk, an upload read, an upload session's
/// DELETE); only a request the other side never answers takes longer.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A signal that stops an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT, Ctrl-C on a terminal.
    Interrupt,
    /// SIGTERM, what `kill`, `timeout` and service managers send.
    Terminate,
}

impl Signal {
    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// 128 plus the signal's number, as a shell reports a process the signal ended: 130 or 143.
    pub fn exit_code(self) -> i32 {
        128 + self.number()
    }

    fn number(self) -> libc::c_int {
        match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
        }
    }

    fn from_number(number: libc::c_int) -> Option<Signal> {
        match number {
            libc::SIGINT => Some(Signal::Interrupt),
            libc::SIGTERM => Some(Signal::Terminate),
            _ => None,
        }
    }
}

/// The work stopped at a safe point because a signal asked it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", .signal.name())]
pub struct Interrupted {
    pub signal: Signal,
}

/// Carried through `io::Error` by readers and writers, as `ErrorKind::Other`:
/// `ErrorKind::Interrupted` would make `io::copy` and `read_exact` retry.
impl From<Interrupted> for io::Error {
    fn from(interrupted: Interrupted) -> io::Error {
        io::Error::other(interrupted)
    }
}

/// What the watcher reports to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The first signal came: the work is stopping at its next safe point.
    Stopping,
    /// [`STOP_GRACE`] passed without the process ending: it ends now.
    GivingUp,
}

/// The signal received, as its number; 0 for none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// The pipe end the handler writes to, to wake the watcher; -1 before [`install`].
static WAKE: AtomicI32 = AtomicI32::new(-1);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The signal that asked the work to stop, if one came.
pub fn received() -> Option<Signal> {
    Signal::from_number(RECEIVED.load(Ordering::Relaxed))
}

/// `Err` once a signal asked the work to stop: called at each safe point.
pub fn check() -> Result<(), Interrupted> {
    match received() {
        Some(signal) => Err(Interrupted { signal }),
        None => Ok(()),
    }
}

/// [`check`] for readers and writers.
pub fn check_io() -> io::Result<()> {
    Ok(check()?)
}

/// Catches SIGINT and SIGTERM for the rest of the process (I/O); `report`
/// is called on the watcher thread when the first comes and if the stop
/// outlasts [`STOP_GRACE`]. A signal the process was started with ignored
/// (`nohup`, a background job) stays ignored. Later calls do nothing.
pub fn install(report: impl Fn(Signal, Stop) + Send + 'static) -> io::Result<()> {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just opened fds[0], and nothing else owns it. The write
    // end stays open for the life of the process: the handler may use it any time.
    let wake = File::from(unsafe { OwnedFd::from_raw_fd(fds[0]) });
    WAKE.store(fds[1], Ordering::SeqCst);
    std::thread::Builder::new()
        .name("stowage-signals".into())
        .spawn(move || watch(wake, report))?;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        catch(signal)?;
    }
    Ok(())
}

/// Points `signal` at the handler, unless it is ignored (I/O).
fn catch(signal: libc::c_int) -> io::Result<()> {
    // SAFETY: sigaction is given valid pointers to a zeroed (then filled)
    // struct; the handler only does async-signal-safe work.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 {
            return Err(io::Error::last_os_error());
        }
        if old.sa_sigaction == libc::SIG_IGN {
            return Ok(());
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // Restarted system calls: the other threads' reads and writes carry on
        // undisturbed, and the work stops where it checks, not wherever EINTR lands.
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_signal(number: libc::c_int) {
    // SAFETY: only async-signal-safe calls (sigaction, write) on valid
    // arguments; errno is saved and restored for the code the signal interrupted.
    unsafe {
        let errno = *libc::__errno_location();
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for signal in [libc::SIGINT, libc::SIGTERM] {
            libc::sigaction(signal, &default, std::ptr::null_mut());
        }
        let _ = RECEIVED.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
        let fd = WAKE.load(Ordering::SeqCst);
        if fd >= 0 {
            let byte = 1u8;
            libc::write(fd, (&raw const byte).cast(), 1);
        }
        *libc::__errno_location() = errno;
    }
}

/// Waits for the handler's byte, tells the user, and ends the process if
/// the stop takes longer than [`STOP_GRACE`].
fn watch(mut wake: File, report: impl Fn(Signal, Stop)) {
    let mut byte = [0u8; 1];
    loop {
        match wake.read(&mut byte) {
            Ok(1) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
    let Some(signal) = received() else { return };
    report(signal, Stop::Stopping);
    std::thread::sleep(STOP_GRACE);
    report(signal, Stop::GivingUp);
    // SAFETY: _exit ends the process without running anything more; the
    // kernel drops the temp files' locks, so the next run sweeps them.
    unsafe { libc::_exit(signal.exit_code()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_shells() {
        assert_eq!(Signal::Interrupt.exit_code(), 130);
        assert_eq!(Signal::Terminate.exit_code(), 143);
        assert_eq!(Signal::from_number(libc::SIGTERM), Some(Signal::Terminate));
        assert_eq!(Signal::from_number(libc::SIGHUP), None);
    }

    #[test]
    fn an_interruption_survives_io_error_and_is_not_retried_by_std() {
        let error = io::Error::from(Interrupted {
            signal: Signal::Interrupt,
        });
        assert_ne!(error.kind(), io::ErrorKind::Interrupted);
        assert_eq!(error.to_string(), "interrupted by SIGINT");
        let inner = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<Interrupted>());
        assert_eq!(
            inner,
            Some(&Interrupted {
                signal: Signal::Interrupt
            })
        );
        // A reader failing so ends io::copy at once instead of looping.
        struct Stopped;
        impl Read for Stopped {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(Interrupted {
                    signal: Signal::Terminate,
                }
                .into())
            }
        }
        let copied = io::copy(&mut Stopped, &mut io::sink());
        assert!(copied.is_err_and(|e| e.to_string() == "interrupted by SIGTERM"));
    }
}
