//! Pushes: blobs (skipped, mounted or uploaded, several at once) and manifests from the store to a registry, and manifest deletion.
//!
//! Not for the HTTP work itself (auth, retries, schemes): that is `client`'s.

use std::collections::BTreeSet;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Body, Client, Request, Response};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};

use super::answer::status_error;
use super::auth::Scope;
use super::retry::backoff;
use super::{
    CountingReader, Origin, PushReport, Registry, RegistryError, TransferEnd, TransferKind,
    TransferProgress, relock,
};
use crate::digest::Digest;
use crate::image::{Artifact, Descriptor, Image};
use crate::interrupt;
use crate::reference::ImageRef;
use crate::store::{Store, StoreError, UploadLock};

/// Chunk size for chunked uploads when the monolithic PUT is refused.
const FALLBACK_CHUNK: u64 = 16 * 1024 * 1024;

impl Registry {
    /// Pushes what the artifact's tags will name to `dest`'s repository
    /// (I/O): every blob, and for an index each of its images' manifests,
    /// put by digest. Blobs missing from the store come from `origin`.
    /// [`Registry::put_tag`] then names it.
    pub fn push_content(
        &self,
        artifact: &Artifact,
        origin: Option<&Origin>,
        dest: &ImageRef,
        store: &Store,
    ) -> Result<PushReport, RegistryError> {
        let images: Vec<&Image> = match artifact {
            Artifact::Image(image) => vec![image],
            Artifact::Index(index) => index.images.iter().collect(),
        };
        let mut report = PushReport::default();
        for image in &images {
            self.push_blobs(image, origin, dest, store, &mut report)?;
        }
        if let Artifact::Index(_) = artifact {
            for image in &images {
                let by = image.digest().as_str();
                self.put_manifest_naming_blobs(
                    dest,
                    by,
                    image.raw_manifest(),
                    image.media_type(),
                    &|| self.push_blobs(image, origin, dest, store, &mut PushReport::default()),
                )?;
            }
        }
        Ok(report)
    }

    /// Puts the artifact's manifest (an image's, or an index's) under `tag`
    /// in `dest`'s repository (I/O), once [`Registry::push_content`] put
    /// what it names.
    /// A blob the manifest names that the registry does not know (a
    /// concurrent upload of it by another client is being committed) is
    /// checked and pushed again from `store` or `origin`, and the manifest
    /// put again (see [`Registry::put_manifest_naming_blobs`]).
    pub fn put_tag(
        &self,
        artifact: &Artifact,
        origin: Option<&Origin>,
        dest: &ImageRef,
        tag: &str,
        store: &Store,
    ) -> Result<(), RegistryError> {
        match artifact {
            Artifact::Image(image) => self.put_manifest_naming_blobs(
                dest,
                tag,
                image.raw_manifest(),
                image.media_type(),
                &|| self.push_blobs(image, origin, dest, store, &mut PushReport::default()),
            ),
            Artifact::Index(index) => {
                self.put_manifest_naming_blobs(dest, tag, &index.raw, &index.media_type, &|| {
                    self.push_content(artifact, origin, dest, store).map(drop)
                })
            }
        }
    }

    /// Pushes a small artifact whose new blobs are in memory (a signature
    /// manifest: its config and payload) and tags its manifest (I/O). Blobs
    /// the manifest names but `blobs` leaves out must be in the repository already.
    pub fn push_small(
        &self,
        dest: &ImageRef,
        blobs: &[(&Descriptor, &[u8])],
        tag: &str,
        manifest: &[u8],
        media_type: &str,
        store: &Store,
    ) -> Result<(), RegistryError> {
        for (desc, bytes) in blobs {
            self.push_blob(desc, Some(bytes), None, dest, store)
                .map_err(|source| RegistryError::Blob {
                    registry: dest.registry.clone(),
                    digest: desc.digest.clone(),
                    source: Box::new(source),
                })?;
        }
        self.put_manifest(dest, tag, manifest, media_type)
    }

    fn push_blobs(
        &self,
        image: &Image,
        origin: Option<&Origin>,
        dest: &ImageRef,
        store: &Store,
        report: &mut PushReport,
    ) -> Result<(), RegistryError> {
        let mut work: Vec<(Descriptor, Option<&[u8]>)> =
            vec![(image.config_descriptor().clone(), Some(image.raw_config()))];
        let mut seen = BTreeSet::new();
        seen.insert(image.config_descriptor().digest.clone());
        for layer in image.layers() {
            if seen.insert(layer.descriptor.digest.clone()) {
                work.push((layer.descriptor.clone(), None));
            }
        }
        let queue = Mutex::new(work.into_iter());
        let results = Mutex::new(Vec::new());
        let jobs = self.options.jobs.max(1);
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(|| {
                    loop {
                        let next = relock(&queue).next();
                        let Some((desc, inline)) = next else { break };
                        let outcome =
                            self.push_blob(&desc, inline, origin, dest, store)
                                .map_err(|source| RegistryError::Blob {
                                    registry: dest.registry.clone(),
                                    digest: desc.digest.clone(),
                                    source: Box::new(source),
                                });
                        let failed = outcome.is_err();
                        relock(&results).push((desc.size, outcome));
                        if failed {
                            // Stop handing out work; the other threads finish what they hold.
                            relock(&queue).by_ref().for_each(drop);
                        }
                    }
                });
            }
        });
        for (size, outcome) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            match outcome? {
                BlobOutcome::Skipped => report.skipped += 1,
                BlobOutcome::Mounted => report.mounted += 1,
                BlobOutcome::Uploaded => {
                    report.uploaded += 1;
                    report.uploaded_bytes += size;
                }
            }
        }
        Ok(())
    }

    pub(super) fn push_blob(
        &self,
        desc: &Descriptor,
        inline: Option<&[u8]>,
        origin: Option<&Origin>,
        dest: &ImageRef,
        store: &Store,
    ) -> Result<BlobOutcome, RegistryError> {
        interrupt::check()?;
        let registry = &dest.registry;
        let repo = &dest.repository;
        let digest = &desc.digest;
        let _turn = self.upload_turn(dest, digest, store)?;
        let push_scope = [Scope::push(repo)];
        let head = self.send(
            registry,
            &push_scope,
            &format!("checking blob {digest}"),
            &|c, base| c.head(format!("{base}/v2/{repo}/blobs/{digest}")),
        )?;
        if head.status().is_success() {
            self.log(&format!("blob {digest} already in {repo}"));
            self.report_end(TransferEnd::Present, desc);
            self.remember_location(store, dest, digest);
            return Ok(BlobOutcome::Skipped);
        }
        let (mounted, session) = self.mount_from_known(desc, origin, dest, store)?;
        if mounted {
            self.remember_location(store, dest, digest);
            return Ok(BlobOutcome::Mounted);
        }
        let data = match inline {
            Some(bytes) => BlobData::Bytes(bytes),
            None => BlobData::Stored(self.stored_blob(desc, origin, store)?),
        };
        interrupt::check()?;
        if let Some(progress) = &self.options.progress {
            progress.begin(TransferKind::Push, digest, desc.size);
        }
        self.upload(dest, desc, &data, session)?;
        self.report_end(TransferEnd::Uploaded, desc);
        self.remember_location(store, dest, digest);
        Ok(BlobOutcome::Uploaded)
    }

    /// Waits for this store's other processes to finish pushing the same
    /// blob to the same repository (I/O): then the HEAD that follows finds
    /// it, instead of two uploads racing (see `put_manifest_naming_blobs`).
    /// None when the lock cannot be had at all (a read-only store): the push
    /// goes ahead alone.
    fn upload_turn(
        &self,
        dest: &ImageRef,
        digest: &Digest,
        store: &Store,
    ) -> Result<Option<UploadLock>, RegistryError> {
        let repository = format!("{}/{}", dest.registry, dest.repository);
        let mut said = false;
        loop {
            match store.try_lock_upload(&repository, digest) {
                Ok(Some(lock)) => return Ok(Some(lock)),
                Ok(None) => {}
                Err(_) => return Ok(None),
            }
            if !said {
                self.log(&format!(
                    "blob {digest} is being pushed to {repository} by another process of this store; waiting for it"
                ));
                said = true;
            }
            std::thread::sleep(Duration::from_millis(50));
            interrupt::check()?;
        }
    }

    /// Asks the registry to mount the blob from `origin`'s repository instead of uploading it (I/O).
    pub(super) fn mount(
        &self,
        desc: &Descriptor,
        origin: &Origin,
        dest: &ImageRef,
    ) -> Result<Mount, RegistryError> {
        let repo = &dest.repository;
        let digest = &desc.digest;
        // Docker Hub only mounts with one token scoped for both repositories.
        let scopes = [Scope::push(repo), Scope::pull(&origin.repository)];
        let from = &origin.repository;
        let response = self.send(
            &dest.registry,
            &scopes,
            &format!("mounting blob {digest} from {from}"),
            &|c, base| {
                c.post(format!("{base}/v2/{repo}/blobs/uploads/"))
                    .query(&[("mount", digest.as_str()), ("from", from.as_str())])
                    .header(CONTENT_LENGTH, 0)
            },
        )?;
        let mut session = None;
        match response.status() {
            StatusCode::CREATED => {
                self.log(&format!("mounted blob {digest} from {from}"));
                self.report_end(TransferEnd::Mounted, desc);
                return Ok(Mount::Mounted);
            }
            StatusCode::ACCEPTED => session = location_header(&response),
            _ => {}
        }
        self.log(&format!("mount of {digest} declined; uploading"));
        Ok(Mount::Declined(session))
    }

    /// The store file of a layer about to be uploaded, fetched from `origin`
    /// first when missing or corrupt (I/O).
    fn stored_blob(
        &self,
        desc: &Descriptor,
        origin: Option<&Origin>,
        store: &Store,
    ) -> Result<PathBuf, RegistryError> {
        let digest = &desc.digest;
        if !store.contains(digest) {
            let origin = origin.ok_or_else(|| RegistryError::Store {
                what: format!("blob {digest}"),
                source: StoreError::Missing {
                    digest: digest.clone(),
                },
            })?;
            self.fetch_blob(origin, desc, store)?;
        }
        // Checked before it goes out: a damaged store blob would only
        // be refused by the registry after a long upload, with a
        // message about digests instead of about the store. A blob
        // this process wrote or already checked (a build's layers)
        // is not read again.
        let checked = if store.is_known_good(digest) {
            Ok(())
        } else {
            store.verify(digest)
        };
        match (checked, origin) {
            (Ok(()), _) => {}
            (Err(StoreError::Corrupt { .. }), Some(origin)) => {
                self.log(&format!(
                    "blob {digest} in the store was corrupt; fetching it again"
                ));
                self.fetch_blob(origin, desc, store)?;
            }
            (Err(source), _) => {
                return Err(RegistryError::Store {
                    what: format!("blob {digest}"),
                    source,
                });
            }
        }
        Ok(store.blob_path(digest))
    }

    fn report_end(&self, how: TransferEnd, desc: &Descriptor) {
        if let Some(progress) = &self.options.progress {
            progress.end(how, &desc.digest, desc.size);
        }
    }

    fn start_upload(&self, dest: &ImageRef) -> Result<String, RegistryError> {
        let repo = &dest.repository;
        let response = self.send(
            &dest.registry,
            &[Scope::push(repo)],
            "starting an upload",
            &|c, base| {
                c.post(format!("{base}/v2/{repo}/blobs/uploads/"))
                    .header(CONTENT_LENGTH, 0)
            },
        )?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error(&dest.registry, "starting an upload", response));
        }
        location_header(&response).ok_or_else(|| RegistryError::Protocol {
            registry: dest.registry.clone(),
            problem: "an upload was accepted without a Location".into(),
        })
    }

    fn upload(
        &self,
        dest: &ImageRef,
        desc: &Descriptor,
        data: &BlobData<'_>,
        session: Option<String>,
    ) -> Result<(), RegistryError> {
        let mut session = session;
        let mut chunk = self.options.chunk_size;
        let mut restarts = 0;
        loop {
            let location = match session.take() {
                Some(location) => location,
                None => self.start_upload(dest)?,
            };
            let result = match chunk {
                Some(size) => self.upload_chunked(dest, desc, data, &location, size.max(1)),
                None => self.upload_monolithic(dest, desc, data, &location),
            };
            if let (Err(_), Some(signal)) = (&result, interrupt::received()) {
                // The body stopped at a signal (or the upload failed as one came): no retry.
                self.cancel_upload(dest, &location);
                return Err(interrupt::Interrupted { signal }.into());
            }
            match result {
                Ok(()) => return Ok(()),
                Err(UploadFailure::Refused(status)) if chunk.is_none() => {
                    self.log(&format!(
                        "streamed upload of {} refused ({status}); uploading in chunks",
                        desc.digest
                    ));
                    chunk = Some(FALLBACK_CHUNK);
                }
                Err(UploadFailure::SessionLost(_)) if restarts < self.options.retries => {
                    restarts += 1;
                    std::thread::sleep(backoff(restarts));
                }
                Err(UploadFailure::Interrupted(RegistryError::Connect {
                    plain_http: false,
                    what,
                    ..
                })) if restarts < self.options.retries => {
                    restarts += 1;
                    let wait = backoff(restarts);
                    self.log(&format!(
                        "{what} broke off; starting a new upload in {wait:?}"
                    ));
                    std::thread::sleep(wait);
                }
                Err(UploadFailure::Interrupted(RegistryError::Connect {
                    registry,
                    what,
                    plain_http: false,
                    source,
                })) => {
                    return Err(RegistryError::Connect {
                        registry,
                        what: self.gave_up(&what),
                        plain_http: false,
                        source,
                    });
                }
                Err(UploadFailure::Interrupted(e)) => return Err(e),
                Err(UploadFailure::Refused(e) | UploadFailure::SessionLost(e)) => {
                    return Err(RegistryError::Protocol {
                        registry: dest.registry.clone(),
                        problem: e,
                    });
                }
                Err(UploadFailure::Error(e)) => return Err(e),
            }
        }
    }

    /// Cancels an upload session a signal stopped (I/O, best effort), so the
    /// registry drops the bytes it got instead of keeping them until it
    /// purges old uploads. One attempt: the process is stopping.
    pub(super) fn cancel_upload(&self, dest: &ImageRef, location: &str) {
        let url = self.absolute(&dest.registry, location);
        let cancelled = self.send_with(
            &dest.registry,
            &[Scope::push(&dest.repository)],
            "cancelling an upload",
            &|c, _| c.delete(&url),
            false,
        );
        match cancelled {
            Ok(response) => self.log(&format!(
                "cancelled the upload session: {}",
                response.status()
            )),
            Err(e) => self.log(&format!("could not cancel the upload session: {e}")),
        }
    }

    fn upload_monolithic(
        &self,
        dest: &ImageRef,
        desc: &Descriptor,
        data: &BlobData<'_>,
        location: &str,
    ) -> Result<(), UploadFailure> {
        let repo = &dest.repository;
        let url = with_digest(&self.absolute(&dest.registry, location), &desc.digest);
        let size = desc.size;
        let what = format!("uploading blob {}", desc.digest);
        let response = self
            .send_with(
                &dest.registry,
                &[Scope::push(repo)],
                &what,
                &|c, _| {
                    let body = match data.open(0, size, self.options.progress.clone()) {
                        Ok(body) => body,
                        Err(_) => Body::from(Vec::new()),
                    };
                    c.put(&url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, size)
                        .body(body)
                },
                false,
            )
            .map_err(upload_error)?;
        finish_status(&dest.registry, &what, response)
    }

    fn upload_chunked(
        &self,
        dest: &ImageRef,
        desc: &Descriptor,
        data: &BlobData<'_>,
        location: &str,
        chunk: u64,
    ) -> Result<(), UploadFailure> {
        let repo = &dest.repository;
        let mut location = self.absolute(&dest.registry, location);
        let mut offset = 0;
        while offset < desc.size {
            let len = chunk.min(desc.size - offset);
            let what = format!(
                "uploading bytes {offset}-{} of blob {}",
                offset + len - 1,
                desc.digest
            );
            let url = location.clone();
            let response = self
                .send_with(
                    &dest.registry,
                    &[Scope::push(repo)],
                    &what,
                    &|c, _| {
                        let body = data
                            .open(offset, len, self.options.progress.clone())
                            .unwrap_or_else(|_| Body::from(Vec::new()));
                        c.patch(&url)
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_RANGE, format!("{offset}-{}", offset + len - 1))
                            .header(CONTENT_LENGTH, len)
                            .body(body)
                    },
                    false,
                )
                .map_err(upload_error)?;
            match response.status() {
                StatusCode::ACCEPTED | StatusCode::NO_CONTENT | StatusCode::CREATED => {}
                StatusCode::NOT_FOUND | StatusCode::RANGE_NOT_SATISFIABLE => {
                    return Err(UploadFailure::SessionLost(format!(
                        "{what}: {}",
                        response.status()
                    )));
                }
                _ => {
                    return Err(UploadFailure::Error(status_error(
                        &dest.registry,
                        &what,
                        response,
                    )));
                }
            }
            if let Some(next) = location_header(&response) {
                location = self.absolute(&dest.registry, &next);
            }
            offset += len;
        }
        let url = with_digest(&location, &desc.digest);
        let what = format!("finishing upload of blob {}", desc.digest);
        let response = self
            .send(&dest.registry, &[Scope::push(repo)], &what, &|c, _| {
                c.put(&url).header(CONTENT_LENGTH, 0)
            })
            .map_err(UploadFailure::Error)?;
        finish_status(&dest.registry, &what, response)
    }

    pub(super) fn put_manifest(
        &self,
        dest: &ImageRef,
        by: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        // A manifest PUT in flight is finished, never cut: the tag is put whole or not at all.
        interrupt::check()?;
        let repo = &dest.repository;
        let what = format!("manifest {repo}:{by}");
        let response = self.send(&dest.registry, &[Scope::push(repo)], &what, &|c, base| {
            c.put(format!("{base}/v2/{repo}/manifests/{by}"))
                .header(CONTENT_TYPE, media_type)
                .body(bytes.to_vec())
        })?;
        if !response.status().is_success() {
            return Err(status_error(&dest.registry, &what, response));
        }
        let sent = Digest::of(bytes);
        if let Some(echoed) = response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
            && echoed != sent
        {
            return Err(RegistryError::DigestMismatch {
                registry: dest.registry.clone(),
                what: format!("{what} (as stored)"),
                expected: sent,
                actual: echoed,
            });
        }
        self.log(&format!("pushed {what}"));
        Ok(())
    }

    /// Puts a manifest (I/O); when the registry refuses it because a blob
    /// (or manifest) it names is unknown, `push_named` checks what the
    /// manifest names and pushes again what is missing, and the manifest is
    /// put again, a bounded number of times.
    ///
    /// Distribution rewrites a repository's link to a blob in place when a
    /// second client finishes uploading the same blob, and for that moment the
    /// blob is unknown to a manifest PUT, though a HEAD answered 200 before:
    /// many workers pushing images over one base into one repository meet
    /// it. Waiting briefly and checking again rides over it.
    pub(super) fn put_manifest_naming_blobs(
        &self,
        dest: &ImageRef,
        by: &str,
        bytes: &[u8],
        media_type: &str,
        push_named: &dyn Fn() -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let mut attempt = 0;
        loop {
            match self.put_manifest(dest, by, bytes, media_type) {
                Err(error) if attempt < MANIFEST_BLOB_RETRIES && names_unknown_content(&error) => {
                    attempt += 1;
                    let wait = Duration::from_millis(100 << attempt);
                    self.log(&format!(
                        "{error}; checking the blobs it names and pushing what is missing in {wait:?} (retry {attempt} of {MANIFEST_BLOB_RETRIES})"
                    ));
                    std::thread::sleep(wait);
                    interrupt::check()?;
                    push_named()?;
                }
                outcome => return outcome,
            }
        }
    }

    /// Deletes a manifest by digest (I/O).
    pub fn delete_manifest(
        &self,
        reference: &ImageRef,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let repo = &reference.repository;
        let what = format!("deleting manifest {repo}@{digest}");
        let response = self.send(
            &reference.registry,
            &[Scope::delete(repo)],
            &what,
            &|c, base| c.delete(format!("{base}/v2/{repo}/manifests/{digest}")),
        )?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(RegistryError::NotFound {
                registry: reference.registry.clone(),
                what: format!("{repo}@{digest}"),
            }),
            _ => Err(status_error(&reference.registry, &what, response)),
        }
    }
}

/// How often a manifest refused for naming an unknown blob is put again.
const MANIFEST_BLOB_RETRIES: u32 = 4;

/// Whether the registry refused a manifest because something it names is
/// unknown: `MANIFEST_BLOB_UNKNOWN` or `BLOB_UNKNOWN` (distribution),
/// `MANIFEST_UNKNOWN` for an index's child.
fn names_unknown_content(error: &RegistryError) -> bool {
    match error {
        RegistryError::Status { status, detail, .. } => {
            (*status == 400 || *status == 404)
                && ["BLOB_UNKNOWN", "MANIFEST_UNKNOWN"]
                    .iter()
                    .any(|code| detail.contains(code))
        }
        _ => false,
    }
}

pub(super) enum BlobOutcome {
    Skipped,
    Mounted,
    Uploaded,
}

/// What a cross-repository mount came to.
pub(super) enum Mount {
    Mounted,
    /// Declined; the registry may have opened an upload session instead.
    Declined(Option<String>),
}

enum UploadFailure {
    /// The registry will not take a streamed upload (e.g. 413): try chunks.
    Refused(String),
    /// The upload session is gone: start another.
    SessionLost(String),
    /// The connection broke off mid-upload: start another session.
    Interrupted(RegistryError),
    Error(RegistryError),
}

/// A failed upload request: a transport error is an interruption.
fn upload_error(error: RegistryError) -> UploadFailure {
    match error {
        RegistryError::Connect { .. } => UploadFailure::Interrupted(error),
        other => UploadFailure::Error(other),
    }
}

fn finish_status(registry: &str, what: &str, response: Response) -> Result<(), UploadFailure> {
    match response.status() {
        StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
        StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::LENGTH_REQUIRED
        | StatusCode::NOT_IMPLEMENTED => Err(UploadFailure::Refused(format!(
            "{what}: {}",
            response.status()
        ))),
        StatusCode::NOT_FOUND | StatusCode::RANGE_NOT_SATISFIABLE => Err(
            UploadFailure::SessionLost(format!("{what}: {}", response.status())),
        ),
        _ => Err(UploadFailure::Error(status_error(registry, what, response))),
    }
}

/// A blob's bytes for an upload: small JSON in memory, layers from their store file.
enum BlobData<'a> {
    Bytes(&'a [u8]),
    Stored(PathBuf),
}

impl BlobData<'_> {
    /// A body of `len` bytes from `offset`, streamed from disk for stored blobs.
    fn open(
        &self,
        offset: u64,
        len: u64,
        progress: Option<Arc<dyn TransferProgress>>,
    ) -> std::io::Result<Body> {
        match self {
            BlobData::Bytes(bytes) => {
                let start = offset as usize;
                let end = (offset + len) as usize;
                Ok(Body::from(
                    bytes.get(start..end).unwrap_or_default().to_vec(),
                ))
            }
            BlobData::Stored(path) => {
                let mut file = std::fs::File::open(path)?;
                file.seek(SeekFrom::Start(offset))?;
                let reader = CountingReader {
                    inner: BufReader::with_capacity(256 * 1024, file).take(len),
                    progress,
                };
                Ok(Body::sized(reader, len))
            }
        }
    }
}

/// Sends one request (I/O). A blob upload is sent from a thread of its own
/// while this one waits, looking for a signal every 50 ms: once its body is
/// in the kernel's socket buffers (megabytes), the answer comes only when
/// the registry has read them all, and over a slow link a stop would wait
/// that long. Left to itself, the upload ends with the process; a blob no
/// manifest names is invisible, and the caller cancels its session. Other
/// requests (a manifest PUT above all) are waited for: what they did must
/// be known to the record.
pub(super) fn execute(
    client: &Client,
    request: Request,
    registry: &str,
) -> Result<reqwest::Result<Response>, RegistryError> {
    let upload = matches!(request.method().as_str(), "PUT" | "PATCH")
        && request.url().path().contains("/blobs/uploads/");
    if !upload {
        return Ok(client.execute(request));
    }
    let client = client.clone();
    let (answer, answered) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = answer.send(client.execute(request));
    });
    loop {
        match answered.recv_timeout(Duration::from_millis(50)) {
            Ok(sent) => return Ok(sent),
            Err(RecvTimeoutError::Timeout) => interrupt::check()?,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(RegistryError::Protocol {
                    registry: registry.to_string(),
                    problem: "an upload's thread ended without an answer".into(),
                });
            }
        }
    }
}

fn location_header(response: &Response) -> Option<String> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_urls_get_the_digest_appended() {
        let d = Digest::of(b"x");
        assert_eq!(
            with_digest("/v2/a/blobs/uploads/1", &d),
            format!("/v2/a/blobs/uploads/1?digest={d}")
        );
        assert_eq!(
            with_digest("/u?_state=abc", &d),
            format!("/u?_state=abc&digest={d}")
        );
    }
}
