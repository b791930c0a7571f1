//! A stowage run measured by the kernel: its peak resident memory and CPU time, from `wait4`.
//!
//! stowage runs as a child of the test, which reaps it with `wait4` and
//! reads the kernel's `rusage` for exactly that process: `ru_maxrss`, its
//! resident high-water mark over all its threads (unlike an address-space
//! limit, not inflated by thread stacks and reserved-but-untouched memory;
//! unlike a cgroup limit, it needs no root and counts no page cache), and
//! the user and system time of all its threads.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a measured run gave.
pub struct Measured {
    pub ok: bool,
    pub stderr: String,
    /// Peak resident memory, KiB.
    pub peak_kib: u64,
    /// User plus system time of all its threads.
    pub cpu: Duration,
    pub wall: Duration,
}

/// Runs `cmd` to its end, measured.
pub fn run_measured(cmd: &mut Command) -> Measured {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stowage");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr)
            .expect("read stowage's stderr");
    }
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, fully written by wait4 on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: reaps our own child, with valid pointers to locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let wall = started.elapsed();
    // Reaped above: std's own wait only finds it gone (ECHILD), and that is all it is asked for.
    let _ = child.try_wait();
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Measured {
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stderr,
        // Linux reports ru_maxrss in KiB.
        peak_kib: u64::try_from(usage.ru_maxrss).unwrap_or(u64::MAX),
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        wall,
    }
}
