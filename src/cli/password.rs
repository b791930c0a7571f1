//! Asking for a signing key's password on the terminal, with echo off; nothing else.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

/// The password typed for the key at `path`; `Ok(None)` when standard input is not a terminal.
pub fn ask(path: &Path) -> std::io::Result<Option<String>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let tty = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    read_without_echo(
        &tty,
        &format!("Enter password for private key {}: ", path.display()),
    )
    .map(Some)
}

/// One line from the terminal after `prompt`, with echo off from before the
/// prompt shows (so nothing typed early is echoed) and restored afterwards.
fn read_without_echo(tty: &File, prompt: &str) -> std::io::Result<String> {
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain old data; tcgetattr fills it for an open terminal fd.
    let mut settings: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open for as long as `tty` lives, and settings is a valid termios.
    if unsafe { libc::tcgetattr(fd, &mut settings) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let saved = settings;
    settings.c_lflag &= !libc::ECHO;
    // SAFETY: as above; only the echo flag changes.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &settings) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut line = String::new();
    let mut writer = tty;
    let read = write!(writer, "{prompt}")
        .and_then(|()| writer.flush())
        .and_then(|()| BufReader::new(tty).read_line(&mut line));
    // SAFETY: restores the settings read above on the same fd.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    // The newline the user typed was not echoed either.
    let _ = writeln!(writer);
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
