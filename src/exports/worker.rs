//! Who runs an export and whether it still does: the host and process, the lease it renews, and the thread that renews it.

use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;

use super::{Exports, JournalLocation};

/// The lease a running export holds unless `STOWAGE_JOURNAL_LEASE` says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// Where and since when a running export runs, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Worker {
    /// `STOWAGE_WORKER`, else the host name.
    pub host: String,
    pub pid: u32,
    /// When the export started (RFC 3339, UTC).
    pub started: String,
    /// Seconds since 1970 until which the export counts as alive on other hosts.
    pub lease_until: i64,
}

/// This process's worker name: `STOWAGE_WORKER` (for hosts that share a
/// name, e.g. containers with the same hostname), else the host name.
pub fn this_host() -> String {
    if let Some(name) = std::env::var("STOWAGE_WORKER")
        .ok()
        .filter(|n| !n.is_empty())
    {
        return name;
    }
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is passed.
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    match rc {
        0 if end > 0 => String::from_utf8_lossy(&buffer[..end]).into_owned(),
        _ => "localhost".into(),
    }
}

/// The lease length: `STOWAGE_JOURNAL_LEASE` seconds, else [`DEFAULT_LEASE`].
pub fn lease_length() -> Duration {
    std::env::var("STOWAGE_JOURNAL_LEASE")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.2 && *s <= 86_400.0)
        .map_or(DEFAULT_LEASE, Duration::from_secs_f64)
}

/// Seconds since 1970.
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The end of a lease taken now.
pub fn lease_until(length: Duration) -> i64 {
    now_seconds() + length.as_secs().max(1) as i64
}

/// True when a process that recorded `worker` is still at work: on this
/// host, its pid is alive; elsewhere, its lease has not run out.
pub fn is_alive(worker: &Worker, here: &str) -> bool {
    if worker.host == here {
        return pid_alive(worker.pid);
    }
    worker.lease_until >= now_seconds()
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Renews a running export's lease from a thread of its own until dropped.
pub struct LeaseKeeper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LeaseKeeper {
    /// Starts renewing the lease of export `id` in `location` every third of `length` (I/O in the thread).
    pub fn start(location: JournalLocation, id: i64, length: Duration) -> LeaseKeeper {
        let (stop, stopped) = mpsc::channel::<()>();
        let every = length / 3;
        let thread = std::thread::spawn(move || {
            // Opened on the first renewal: an export shorter than that never connects twice.
            let mut journal: Option<Exports> = None;
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if journal.is_none() {
                    journal = Exports::open_location(&location).ok();
                }
                // A renewal that fails is tried again next time; the export goes on.
                let renewed = journal
                    .as_mut()
                    .map(|open| open.renew(id, lease_until(length)).is_ok());
                if renewed == Some(false) {
                    journal = None;
                }
            }
        });
        LeaseKeeper {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_an_unknown_one_is_not() {
        let here = "host-a";
        let mut worker = Worker {
            host: here.into(),
            pid: std::process::id(),
            started: String::new(),
            lease_until: 0,
        };
        assert!(is_alive(&worker, here), "own pid, lease long over");
        worker.pid = i32::MAX as u32;
        assert!(!is_alive(&worker, here));
        worker.host = "host-b".into();
        assert!(!is_alive(&worker, here), "another host: lease over");
        worker.lease_until = now_seconds() + 30;
        assert!(is_alive(&worker, here));
    }
}
