//! Locks that let several processes of one store take turns: one uploads a blob to a repository while the others wait.

use std::fs::{self, File, OpenOptions};
use std::io;

use super::Store;
use crate::digest::Digest;

/// How many lock files the upload locks are spread over: two blobs rarely
/// share one, and the folder never grows with the blobs pushed.
const UPLOAD_LOCK_FILES: u32 = 256;

/// An upload lock: held while it lives (or until the process dies).
pub struct UploadLock {
    _file: File,
}

impl Store {
    /// Tries to take the lock for uploading `blob` to `repository` (a
    /// `registry/repository` name) without waiting (I/O): None while another
    /// process (or thread) of this store holds it. Each caller polls, so it
    /// can stop at a signal while it waits.
    pub fn try_lock_upload(
        &self,
        repository: &str,
        blob: &Digest,
    ) -> io::Result<Option<UploadLock>> {
        let dir = self.root.join("locks").join("uploads");
        fs::create_dir_all(&dir)?;
        let key = Digest::of(format!("{repository}@{blob}").as_bytes());
        let stripe = u32::from_str_radix(&key.hex()[..8], 16).unwrap_or(0) % UPLOAD_LOCK_FILES;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{stripe:03}")))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(UploadLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_per_blob_and_repository() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let other = Store::open(dir.path()).unwrap();
        let blob = Digest::of(b"base layer");
        let held = store.try_lock_upload("r.example/app", &blob).unwrap();
        assert!(held.is_some());
        assert!(
            other
                .try_lock_upload("r.example/app", &blob)
                .unwrap()
                .is_none()
        );
        drop(held);
        assert!(
            other
                .try_lock_upload("r.example/app", &blob)
                .unwrap()
                .is_some()
        );
    }
}
