//! The content-addressed blob store: `blobs/sha256/<hex>` on disk, written atomically and checked against digests.
//!
//! Every blob stowage handles passes through here: layers it builds, blobs it
//! imports from a base, configs and manifests. A blob only appears under its
//! final name after its digest was computed from the bytes written, so a
//! crash leaves at most a stray file in `tmp/`, never a wrong blob; the next
//! `open` sweeps such strays once no live process holds them (see `atomic`).
//! Blobs are checked again when they leave the store (`open_verified`,
//! `verify`, `read_small`): a blob whose bytes no longer match its name
//! (a disk error, a power cut before the data reached the disk, a hand edit)
//! is deleted and reported, so the next run fetches or rebuilds it.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tempfile::NamedTempFile;

pub mod cache;
mod holds;
mod locks;
mod prune;

pub use cache::Cache;
pub use locks::UploadLock;
pub use prune::{PruneReport, PruneRules, StoreInfo};

use crate::atomic;
use crate::digest::{Digest, HashingWriter, hash_sink};

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
    #[error(
        "blob {digest} in the store is corrupt (its bytes hash to {actual}); it was removed from the store"
    )]
    Corrupt { digest: Digest, actual: Digest },
    #[error("reading {what} broke off")]
    Source {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::Corrupt { .. } => Some(
                "run the command again: stowage fetches or rebuilds a removed blob; if this repeats, check the disk"
                    .into(),
            ),
            StoreError::Write { path, source } | StoreError::Open { path, source }
                if source.kind() == io::ErrorKind::StorageFull =>
            {
                Some(format!(
                    "the disk holding {} is full: free some space, or point STOWAGE_CACHE_DIR at a larger disk",
                    path.display()
                ))
            }
            _ => None,
        }
    }

    /// The store error an I/O error carries, when a store reader raised it (a corrupt blob met mid-stream).
    pub fn from_io(error: &io::Error) -> Option<&StoreError> {
        error.get_ref()?.downcast_ref::<StoreError>()
    }
}

/// The blob store rooted at a folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Blobs this process wrote or read whole with a matching digest: known
    /// good, so they may be linked into outputs without reading them again.
    known_good: Arc<Mutex<HashSet<Digest>>>,
    /// The blobs this process uses, kept from a concurrent prune (see `holds`).
    holds: Arc<holds::Holds>,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    ///
    /// Temp files that killed processes left in `tmp/` are removed on the way.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        for dir in [root.join("blobs").join("sha256"), root.join("tmp")] {
            fs::create_dir_all(&dir).map_err(|source| StoreError::Open {
                path: dir.clone(),
                source,
            })?;
        }
        // Everything the store writes through temp files: blobs, and the
        // records of the layer cache, base folders and gzip aliases.
        let mut swept = vec![root.join("tmp")];
        if let Ok(aliases) = fs::read_dir(root.join("diffs")) {
            swept.extend(aliases.flatten().map(|entry| entry.path()));
        }
        let store = Store {
            holds: Arc::new(holds::Holds::new(&root)),
            root,
            known_good: Arc::default(),
        };
        swept.extend(Cache::ALL.map(|cache| store.cache_dir(cache)));
        for dir in &swept {
            atomic::sweep_stale(dir);
        }
        Ok(store)
    }

    /// Where the store's temp files are written (for messages about a failed write).
    pub fn temp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The folder the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// Holds the blob for this process (see `holds`): a prune leaves it be
    /// from now on, so it is looked at only after this. Every way of finding
    /// a blob in the store holds it first.
    fn hold(&self, digest: &Digest) -> PathBuf {
        let path = self.blob_path(digest);
        self.holds.hold(digest, &path);
        path
    }

    /// Whether the blob is present (and, from now on, held).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.hold(digest).is_file()
    }

    /// The size of a present blob (held from now on).
    pub fn blob_size(&self, digest: &Digest) -> Result<u64, StoreError> {
        fs::metadata(self.hold(digest))
            .map(|m| m.len())
            .map_err(|_| StoreError::Missing {
                digest: digest.clone(),
            })
    }

    /// Starts writing a new blob; its name is known only when it is committed.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let tmp_dir = self.root.join("tmp");
        let file = atomic::temp_file_in(&tmp_dir).map_err(|source| StoreError::Write {
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
        // Written even when present: small, and it heals a damaged copy.
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
        // Not io::copy: a failing read (a dropped connection) and a failing
        // write (a full disk) need different errors, retries and hints.
        let mut reader = reader.take(limit);
        let mut buf = vec![0; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(StoreError::Source {
                        what: what.to_string(),
                        source,
                    });
                }
            };
            writer
                .write_all(&buf[..n])
                .map_err(|source| StoreError::Write {
                    path: self.root.join("tmp"),
                    source,
                })?;
        }
        match expected {
            Some((digest, size)) => writer
                .commit_expecting(what, digest, size)
                .map(|d| (d, size)),
            None => writer.commit(),
        }
    }

    /// Opens a present blob for reading (I/O).
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        File::open(self.hold(digest)).map_err(|source| {
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

    /// Opens a present blob for reading (I/O), checking its digest as it is read.
    ///
    /// At the end of the blob the reader fails with an `InvalidData` error
    /// carrying `StoreError::Corrupt` (see `StoreError::from_io`) when the
    /// bytes do not match, after deleting the bad blob.
    pub fn open_verified(&self, digest: &Digest) -> Result<VerifiedReader, StoreError> {
        let file = self.open_blob(digest)?;
        Ok(VerifiedReader {
            store: self.clone(),
            digest: digest.clone(),
            file: io::BufReader::with_capacity(256 * 1024, file),
            hash: hash_sink(),
            checked: false,
        })
    }

    /// Reads a present blob whole to check its digest (I/O), deleting it when it does not match.
    pub fn verify(&self, digest: &Digest) -> Result<(), StoreError> {
        let mut reader = self.open_verified(digest)?;
        io::copy(&mut reader, &mut io::sink()).map_err(|source| {
            StoreError::from_io(&source)
                .map(|e| StoreError::Corrupt {
                    digest: digest.clone(),
                    actual: match e {
                        StoreError::Corrupt { actual, .. } => actual.clone(),
                        _ => digest.clone(),
                    },
                })
                .unwrap_or(StoreError::Read {
                    digest: digest.clone(),
                    source,
                })
        })?;
        Ok(())
    }

    /// Whether this process wrote the blob, or read it whole against its digest.
    pub fn is_known_good(&self, digest: &Digest) -> bool {
        self.known_good
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(digest)
    }

    fn mark_good(&self, digest: &Digest) {
        self.known_good
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone());
    }

    /// Makes `target` (which must not exist) a hard link to the blob, so an
    /// output on the store's filesystem costs no copy (I/O). The blob is
    /// checked first unless this process wrote or checked it already; blobs
    /// are never written in place, so sharing the file is safe. False when it
    /// could not be done (another filesystem, a bad or missing blob): the
    /// caller copies instead, which reports any error.
    pub fn link_blob(&self, digest: &Digest, size: u64, target: &Path) -> bool {
        if self.blob_size(digest).ok() != Some(size) {
            return false;
        }
        if !self.is_known_good(digest) && self.verify(digest).is_err() {
            return false;
        }
        fs::hard_link(self.blob_path(digest), target).is_ok()
    }

    /// Deletes a blob found corrupt through `file`, unless the name meanwhile holds another (healed) file.
    fn discard_corrupt(&self, digest: &Digest, file: &File) {
        use std::os::unix::fs::MetadataExt;
        let path = self.blob_path(digest);
        let same = match (file.metadata(), fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if same {
            let _ = fs::remove_file(&path);
        }
    }

    /// Reads a small blob (a manifest or config) whole, refusing one larger than `limit`.
    pub fn read_small(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let file = self.open_blob(digest)?;
        let mut bytes = Vec::new();
        (&file)
            .take(limit + 1)
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
        let actual = Digest::of(&bytes);
        if actual != *digest {
            self.discard_corrupt(digest, &file);
            return Err(StoreError::Corrupt {
                digest: digest.clone(),
                actual,
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
        atomic::write_file(&dir.join(diff_id.hex()), digest.as_str().as_bytes())
            .map_err(|source| StoreError::Write { path: dir, source })
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
    /// Renames a verified temp file to its blob name, replacing what is there:
    /// the new bytes are known good, an older file under the name may not be.
    fn persist(&self, file: NamedTempFile, digest: &Digest) -> Result<(), StoreError> {
        let target = self.hold(digest);
        file.persist(&target).map_err(|e| StoreError::Write {
            path: target,
            source: e.error,
        })?;
        self.mark_good(digest);
        Ok(())
    }
}

/// A store blob being read, hashed on the way; see `Store::open_verified`.
pub struct VerifiedReader {
    store: Store,
    digest: Digest,
    file: io::BufReader<File>,
    hash: HashingWriter<io::Sink>,
    checked: bool,
}

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hash.write_all(&buf[..n])?;
        if n == 0 && !buf.is_empty() && !self.checked {
            self.checked = true;
            let hash = std::mem::replace(&mut self.hash, hash_sink());
            let (_, actual, _) = hash.finish();
            if actual != self.digest {
                self.store
                    .discard_corrupt(&self.digest, self.file.get_ref());
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    StoreError::Corrupt {
                        digest: self.digest.clone(),
                        actual,
                    },
                ));
            }
            self.store.mark_good(&self.digest);
        }
        Ok(n)
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
    fn known_good_blobs_are_linked_and_unchecked_ones_verified_first() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store.write_bytes(b"layer bytes").unwrap();
        let linked = out.path().join("linked");
        assert!(store.link_blob(&digest, 11, &linked));
        let (blob, link) = (
            fs::metadata(store.blob_path(&digest)).unwrap(),
            fs::metadata(&linked).unwrap(),
        );
        assert_eq!((blob.dev(), blob.ino()), (link.dev(), link.ino()));
        assert!(!store.link_blob(&digest, 12, &out.path().join("wrong-size")));

        // Another process: nothing is known good, so the blob is read first,
        // and a damaged one (same size, other bytes) is neither linked nor kept.
        fs::remove_file(&linked).unwrap();
        fs::write(store.blob_path(&digest), b"LAYER BYTES").unwrap();
        let later = Store::open(dir.path()).unwrap();
        assert!(!later.link_blob(&digest, 11, &linked));
        assert!(!linked.exists());
        assert!(!later.contains(&digest), "the damaged blob is discarded");
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
    fn a_corrupt_blob_is_found_on_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store.write_bytes(b"good bytes").unwrap();
        fs::write(store.blob_path(&digest), b"bad bytes!").unwrap();
        let mut out = Vec::new();
        let err = store
            .open_verified(&digest)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(
            matches!(StoreError::from_io(&err), Some(StoreError::Corrupt { .. })),
            "{err}"
        );
        assert!(!store.contains(&digest), "the bad blob is discarded");

        store.write_bytes(b"good bytes").unwrap();
        store.verify(&digest).unwrap();
        fs::write(store.blob_path(&digest), b"").unwrap();
        let err = store.verify(&digest).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(!store.contains(&digest));

        store.write_bytes(b"good bytes").unwrap();
        fs::write(store.blob_path(&digest), b"good bytez").unwrap();
        assert!(matches!(
            store.read_small(&digest, 1024),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(!store.contains(&digest));
        // Writing the blob again heals it.
        store.write_bytes(b"good bytes").unwrap();
        assert_eq!(store.read_small(&digest, 1024).unwrap(), b"good bytes");
    }

    #[test]
    fn open_sweeps_what_a_killed_writer_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut live = store.writer().unwrap();
        live.write_all(b"in progress").unwrap();
        let left = dir
            .path()
            .join("tmp")
            .join(format!("{}killed", atomic::TEMP_PREFIX));
        fs::write(&left, b"half a blob").unwrap();
        Store::open(dir.path()).unwrap();
        assert!(!left.exists());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 1);
        live.commit().unwrap();
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
