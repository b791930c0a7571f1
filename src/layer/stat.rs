//! The walk's system calls: a folder's names read with `getdents64` into a reused buffer, and each name stat-ed with `statx` on the open folder for only the fields a plan uses.

use std::ffi::CStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What a plan keeps of a stat: the type, mode, size, links, and the stamp's facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stat {
    /// `st_mode`: the type bits and the permission bits.
    pub(super) mode: u32,
    pub(super) size: u64,
    pub(super) nlink: u64,
    pub(super) inode: u64,
    /// As `st_dev` encodes it (`makedev(major, minor)`).
    pub(super) device: u64,
    pub(super) mtime: i64,
    pub(super) mtime_nsec: u32,
    pub(super) ctime: i64,
    pub(super) ctime_nsec: u32,
}

/// The fields `Stat` keeps; a filesystem may fill more, never fewer of these.
const MASK: u32 = libc::STATX_TYPE
    | libc::STATX_MODE
    | libc::STATX_NLINK
    | libc::STATX_INO
    | libc::STATX_SIZE
    | libc::STATX_MTIME
    | libc::STATX_CTIME;

impl Stat {
    pub(super) fn of(meta: &fs::Metadata) -> Stat {
        Stat {
            mode: meta.mode(),
            size: meta.len(),
            nlink: meta.nlink(),
            inode: meta.ino(),
            device: meta.dev(),
            mtime: meta.mtime(),
            // Nanoseconds are below 10^9, so they fit; 0 stands in should a filesystem say otherwise.
            mtime_nsec: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
            ctime: meta.ctime(),
            ctime_nsec: u32::try_from(meta.ctime_nsec()).unwrap_or(0),
        }
    }

    /// `name` in the open folder `dir`, not following a symlink (as `symlink_metadata`).
    pub(super) fn at(dir: &File, name: &CStr) -> io::Result<Stat> {
        let mut out = std::mem::MaybeUninit::<libc::statx>::zeroed();
        // SAFETY: `dir` is open, `name` NUL-terminated, `out` a writable statx; all alive for the call.
        let done = unsafe {
            libc::statx(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
                MASK,
                out.as_mut_ptr(),
            )
        };
        if done != 0 {
            let error = io::Error::last_os_error();
            // Kernels before 4.11 lack statx, and older container seccomp
            // profiles refuse it with EPERM: fstatat answers the same (as std does).
            return match error.raw_os_error() {
                Some(libc::ENOSYS | libc::EPERM) => Stat::at_fstatat(dir, name),
                _ => Err(error),
            };
        }
        // SAFETY: statx succeeded, so it wrote the struct (and it was zeroed before).
        let out = unsafe { out.assume_init() };
        Ok(Stat {
            mode: u32::from(out.stx_mode),
            size: out.stx_size,
            nlink: u64::from(out.stx_nlink),
            inode: out.stx_ino,
            device: libc::makedev(out.stx_dev_major, out.stx_dev_minor),
            mtime: out.stx_mtime.tv_sec,
            mtime_nsec: out.stx_mtime.tv_nsec,
            ctime: out.stx_ctime.tv_sec,
            ctime_nsec: out.stx_ctime.tv_nsec,
        })
    }

    /// As [`Stat::at`], through `fstatat`.
    pub(super) fn at_fstatat(dir: &File, name: &CStr) -> io::Result<Stat> {
        let mut out = std::mem::MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: `dir` is open, `name` NUL-terminated, `out` a writable stat; all alive for the call.
        let done = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name.as_ptr(),
                out.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstatat succeeded, so it wrote the struct (and it was zeroed before).
        let out = unsafe { out.assume_init() };
        Ok(Stat {
            mode: out.st_mode,
            size: u64::try_from(out.st_size).unwrap_or(0),
            nlink: widen(out.st_nlink),
            inode: out.st_ino,
            device: out.st_dev,
            mtime: out.st_mtime,
            mtime_nsec: u32::try_from(out.st_mtime_nsec).unwrap_or(0),
            ctime: out.st_ctime,
            ctime_nsec: u32::try_from(out.st_ctime_nsec).unwrap_or(0),
        })
    }

    fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub(super) fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }
    pub(super) fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }
    pub(super) fn is_symlink(&self) -> bool {
        self.kind() == libc::S_IFLNK
    }
    pub(super) fn is_socket(&self) -> bool {
        self.kind() == libc::S_IFSOCK
    }
    pub(super) fn is_fifo(&self) -> bool {
        self.kind() == libc::S_IFIFO
    }
    pub(super) fn is_char_device(&self) -> bool {
        self.kind() == libc::S_IFCHR
    }
}

/// A field whose width differs by target (`nlink_t` is 64 bits on x86-64, 32 on others), as u64.
fn widen(n: impl Into<u64>) -> u64 {
    n.into()
}

/// `FileTypeExt` answers for the root's `symlink_metadata`, `Stat` for everything below it: both must agree.
#[cfg(test)]
pub(super) fn same_type(meta: &fs::Metadata, stat: &Stat) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    (
        t.is_dir(),
        t.is_file(),
        t.is_symlink(),
        t.is_socket(),
        t.is_fifo(),
        t.is_char_device(),
    ) == (
        stat.is_dir(),
        stat.is_file(),
        stat.is_symlink(),
        stat.is_socket(),
        stat.is_fifo(),
        stat.is_char_device(),
    )
}

/// Reads folders' names with `getdents64`; one per walking thread, its buffer reused for every folder.
pub(super) struct FolderReader {
    buffer: Vec<u8>,
}

impl Default for FolderReader {
    fn default() -> Self {
        // 32 KiB: a folder of a few hundred names in one or two calls.
        FolderReader {
            buffer: vec![0; 32 * 1024],
        }
    }
}

/// Opens the folder at `path` for listing and `statx`.
pub(super) fn open_folder(path: &Path) -> io::Result<File> {
    let mut name = path.as_os_str().as_bytes().to_vec();
    name.push(0);
    let name = CStr::from_bytes_with_nul(&name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    // SAFETY: `name` is NUL-terminated and alive for the call.
    let fd = unsafe {
        libc::open(
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

impl FolderReader {
    /// Calls `each` with every name in `dir` but `.` and `..` (NUL-terminated), in the order the filesystem gives them; a failed read is `failed`'s error.
    pub(super) fn for_each<E>(
        &mut self,
        dir: &File,
        failed: impl Fn(io::Error) -> E,
        mut each: impl FnMut(&CStr) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            // SAFETY: `dir` is open and the buffer writable for its whole length.
            let read = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    dir.as_raw_fd(),
                    self.buffer.as_mut_ptr(),
                    self.buffer.len(),
                )
            };
            if read < 0 {
                return Err(failed(io::Error::last_os_error()));
            }
            let Ok(read) = usize::try_from(read) else {
                return Ok(());
            };
            if read == 0 {
                return Ok(());
            }
            let mut at = 0;
            // Each record: d_ino (8), d_off (8), d_reclen (2), d_type (1), then the NUL-terminated name.
            while at + 19 <= read {
                let reclen = usize::from(u16::from_ne_bytes([
                    self.buffer[at + 16],
                    self.buffer[at + 17],
                ]));
                if reclen == 0 || at + reclen > read {
                    return Err(failed(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "getdents64 returned a malformed record",
                    )));
                }
                let record = &self.buffer[at + 19..at + reclen];
                at += reclen;
                let Ok(name) = CStr::from_bytes_until_nul(record) else {
                    continue;
                };
                if matches!(name.to_bytes(), b"." | b"..") {
                    continue;
                }
                each(name)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    #[test]
    fn statx_at_gives_what_symlink_metadata_gives() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"twelve bytes").unwrap();
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        std::os::unix::fs::symlink("file", dir.path().join("link")).unwrap();
        std::fs::hard_link(dir.path().join("file"), dir.path().join("second")).unwrap();
        let fifo = CString::new(dir.path().join("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path alive for the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let open = open_folder(dir.path()).unwrap();
        for name in ["file", "folder", "link", "second", "fifo"] {
            let meta = std::fs::symlink_metadata(dir.path().join(name)).unwrap();
            let cname = CString::new(name).unwrap();
            let stat = Stat::at(&open, &cname).unwrap();
            assert_eq!(stat, Stat::of(&meta), "{name}");
            assert_eq!(Stat::at_fstatat(&open, &cname).unwrap(), stat, "{name}");
            assert!(same_type(&meta, &stat), "{name}");
        }
        let stat = Stat::at(&open, c"file").unwrap();
        assert!(stat.is_file() && stat.size == 12 && stat.nlink == 2);
        assert!(Stat::at(&open, c"link").unwrap().is_symlink());
        assert!(Stat::at(&open, c"fifo").unwrap().is_fifo());
        let missing = Stat::at(&open, c"missing").unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn folder_reader_lists_every_name_of_a_folder_larger_than_its_buffer() {
        let dir = tempfile::tempdir().unwrap();
        // Long names, so the listing takes several getdents64 calls of the 32 KiB buffer.
        let mut want: Vec<String> = (0..2000).map(|i| format!("{i:0>60}")).collect();
        for name in &want {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let mut reader = FolderReader::default();
        let mut got = Vec::new();
        let open = open_folder(dir.path()).unwrap();
        reader
            .for_each(
                &open,
                |e| e,
                |name| {
                    got.push(name.to_str().unwrap().to_string());
                    Ok(())
                },
            )
            .unwrap();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        let not_a_folder = open_folder(&dir.path().join(&want[0])).unwrap_err();
        assert_eq!(not_a_folder.raw_os_error(), Some(libc::ENOTDIR));
    }
}
