//! The content-addressed blob store: `blobs/sha256/<hex>` on disk, written atomically and checked against digests.
//!
//! Every blob stowage handles passes through here: layers it builds, blobs it
//! imports from a base, configs and manifests. A blob only appears under its
//! final name after its digest was computed from the bytes written, so a
//! crash leaves at most a stray file in `tmp/`, never a wrong blob.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::digest::{Digest, HashingWriter};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the blob store at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write a blob into the store at {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} is not in the store")]
    Missing { digest: Digest },
    #[error("cannot read blob {digest} from the store")]
    Read {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("{what} has digest {actual}, but {expected} was expected")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} is {actual} bytes, but {expected} bytes were expected")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is larger than the {limit} bytes stowage accepts for it")]
    TooLarge { what: String, limit: u64 },
}

/// The blob store rooted at a folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// The default store folder: `$STOWAGE_CACHE_DIR`, else `$XDG_CACHE_HOME/stowage`, else `~/.cache/stowage`.
pub fn default_store_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("STOWAGE_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("stowage");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache").join("stowage")
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        for dir in [root.join("blobs").join("sha256"), root.join("tmp")] {
            fs::create_dir_all(&dir).map_err(|source| StoreError::Open {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(Store { root })
    }

    /// The folder the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The size of a present blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64, StoreError> {
        fs::metadata(self.blob_path(digest))
            .map(|m| m.len())
            .map_err(|_| StoreError::Missing {
                digest: digest.clone(),
            })
    }

    /// Starts writing a new blob; its name is known only when it is committed.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let tmp_dir = self.root.join("tmp");
        let file = NamedTempFile::new_in(&tmp_dir).map_err(|source| StoreError::Write {
            path: tmp_dir.clone(),
            source,
        })?;
        Ok(BlobWriter {
            store: self.clone(),
            out: HashingWriter::new(BufWriter::with_capacity(256 * 1024, file)),
        })
    }

    /// Writes `bytes` as a blob (I/O) and returns its digest.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut writer = self.writer()?;
        writer
            .write_all(bytes)
            .map_err(|source| StoreError::Write {
                path: self.root.clone(),
                source,
            })?;
        Ok(writer.commit()?.0)
    }

    /// Streams `reader` into the store (I/O), checking the digest and size when they are known.
    pub fn write_from(
        &self,
        what: &str,
        reader: &mut dyn Read,
        expected: Option<(&Digest, u64)>,
    ) -> Result<(Digest, u64), StoreError> {
        let mut writer = self.writer()?;
        let limit = expected
            .map(|(_, size)| size.saturating_add(1))
            .unwrap_or(u64::MAX);
        io::copy(&mut reader.take(limit), &mut writer).map_err(|source| StoreError::Write {
            path: self.root.join("tmp"),
            source,
        })?;
        match expected {
            Some((digest, size)) => writer
                .commit_expecting(what, digest, size)
                .map(|d| (d, size)),
            None => writer.commit(),
        }
    }

    /// Opens a present blob for reading (I/O).
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        File::open(self.blob_path(digest)).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StoreError::Missing {
                    digest: digest.clone(),
                }
            } else {
                StoreError::Read {
                    digest: digest.clone(),
                    source,
                }
            }
        })
    }

    /// Reads a small blob (a manifest or config) whole, refusing one larger than `limit`.
    pub fn read_small(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let file = self.open_blob(digest)?;
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| StoreError::Read {
                digest: digest.clone(),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(StoreError::TooLarge {
                what: format!("blob {digest}"),
                limit,
            });
        }
        if Digest::of(&bytes) != *digest {
            return Err(StoreError::DigestMismatch {
                what: format!("stored blob {digest}"),
                expected: digest.clone(),
                actual: Digest::of(&bytes),
            });
        }
        Ok(bytes)
    }

    /// Records that the uncompressed layer `diff_id` compresses to the blob `digest` (I/O).
    pub fn write_compressed_alias(
        &self,
        diff_id: &Digest,
        compression: &str,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        let dir = self.root.join("diffs").join(compression);
        fs::create_dir_all(&dir).map_err(|source| StoreError::Write {
            path: dir.clone(),
            source,
        })?;
        let mut tmp = NamedTempFile::new_in(&dir).map_err(|source| StoreError::Write {
            path: dir.clone(),
            source,
        })?;
        let persisted = tmp.write_all(digest.as_str().as_bytes()).and_then(|()| {
            tmp.persist(dir.join(diff_id.hex()))
                .map(drop)
                .map_err(|e| e.error)
        });
        persisted.map_err(|source| StoreError::Write { path: dir, source })
    }

    /// The compressed blob recorded for `diff_id`, when it is still present.
    pub fn read_compressed_alias(&self, diff_id: &Digest, compression: &str) -> Option<Digest> {
        let path = self
            .root
            .join("diffs")
            .join(compression)
            .join(diff_id.hex());
        let digest: Digest = fs::read_to_string(path).ok()?.trim().parse().ok()?;
        self.contains(&digest).then_some(digest)
    }
}

/// A blob being written into the store; dropped without commit, it leaves nothing behind.
pub struct BlobWriter {
    store: Store,
    out: HashingWriter<BufWriter<NamedTempFile>>,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.out.count()
    }

    fn finish(self) -> Result<(Store, NamedTempFile, Digest, u64), StoreError> {
        let (buffered, digest, size) = self.out.finish();
        let file = buffered.into_inner().map_err(|e| StoreError::Write {
            path: self.store.root.join("tmp"),
            source: e.into_error(),
        })?;
        Ok((self.store, file, digest, size))
    }

    /// Moves the blob to its content address and returns its digest and size.
    pub fn commit(self) -> Result<(Digest, u64), StoreError> {
        let (store, file, digest, size) = self.finish()?;
        store.persist(file, &digest)?;
        Ok((digest, size))
    }

    /// Commits only when the bytes have the expected digest and size; otherwise discards them.
    pub fn commit_expecting(
        self,
        what: &str,
        expected: &Digest,
        expected_size: u64,
    ) -> Result<Digest, StoreError> {
        let (store, file, digest, size) = self.finish()?;
        if size != expected_size {
            return Err(StoreError::SizeMismatch {
                what: what.to_string(),
                expected: expected_size,
                actual: size,
            });
        }
        if digest != *expected {
            return Err(StoreError::DigestMismatch {
                what: what.to_string(),
                expected: expected.clone(),
                actual: digest,
            });
        }
        store.persist(file, &digest)?;
        Ok(digest)
    }
}

impl Store {
    fn persist(&self, file: NamedTempFile, digest: &Digest) -> Result<(), StoreError> {
        let target = self.blob_path(digest);
        if target.is_file() {
            return Ok(());
        }
        file.persist(&target).map_err(|e| StoreError::Write {
            path: target,
            source: e.error,
        })?;
        Ok(())
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_land_under_their_digest_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store.write_bytes(b"layer bytes").unwrap();
        assert_eq!(digest, Digest::of(b"layer bytes"));
        assert!(store.contains(&digest));
        assert_eq!(store.read_small(&digest, 1024).unwrap(), b"layer bytes");
        assert!(matches!(
            store.read_small(&digest, 3),
            Err(StoreError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_wrong_digest_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let claimed = Digest::of(b"something else");
        let err = store
            .write_from("blob x", &mut &b"actual"[..], Some((&claimed, 6)))
            .unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(!store.contains(&claimed));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        let err = store
            .write_from(
                "blob y",
                &mut &b"actual"[..],
                Some((&Digest::of(b"actual"), 5)),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::SizeMismatch { .. }));
    }

    #[test]
    fn compressed_alias_round_trips_only_while_blob_exists() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let diff_id = Digest::of(b"tar");
        let gz = store.write_bytes(b"gz").unwrap();
        store.write_compressed_alias(&diff_id, "gzip", &gz).unwrap();
        assert_eq!(
            store.read_compressed_alias(&diff_id, "gzip"),
            Some(gz.clone())
        );
        fs::remove_file(store.blob_path(&gz)).unwrap();
        assert_eq!(store.read_compressed_alias(&diff_id, "gzip"), None);
    }
}
