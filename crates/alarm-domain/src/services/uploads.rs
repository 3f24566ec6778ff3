//! Resumable-upload use cases (tus 1.0): create, read the offset, append a PATCH body as whole parts and a durable tail, complete into an audio blob, delete, and sweep abandoned uploads.
//!
//! A PATCH is stored before it is committed: its whole parts go to the
//! part store under the numbers its offset gives them, what is left is
//! written as a new tail object, and only then does one
//! [`UploadStore::advance`] publish it. A failure or a crash before the
//! commit leaves the state where it was (the stray parts and tail are
//! overwritten or ignored, and removed with the upload); a body the client
//! cut off is committed as far as it arrived, unless a checksum was sent,
//! which nothing partial can match.
//!
//! When the part store fails under an upload and can take it elsewhere (a
//! local spool in front of a remote object store, see
//! [`PartStore::relocate`]), the upload moves there and restarts at byte 0:
//! at once when nothing was kept yet, otherwise by answering
//! [`UploadError::Restarted`] so the client resends from the new offset.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use jiff::SignedDuration;
use sha2::{Digest, Sha256};

use crate::error::ValidationError;
use crate::ids::{BlobId, UploadId, UserId};
use crate::limits::Limits;
use crate::model::Sound;
use crate::model::{
    SNIFF_BYTES, UPLOAD_PART_BYTES, Upload, UploadFile, UploadProgress, UploadRefused, audio_type,
};
use crate::ports::{
    BlobError, BlobMeta, BlobStore, ByteStream, Clock, IdSource, PartStore, SoundStore, StoreError,
    UploadStore,
};

/// How long an upload waits for its next PATCH before it is abandoned.
pub const UPLOAD_TTL: SignedDuration = SignedDuration::from_hours(24);

super::service_ports! {
    /// The ports [`UploadService`] takes.
    UploadPorts {
        /// The uploads' state.
        uploads: dyn UploadStore = uploads,
        /// Where their bytes wait.
        parts: dyn PartStore = parts,
        /// The blobs completed uploads become.
        blobs: dyn BlobStore = blobs,
        /// The sounds they are registered as.
        sounds: dyn SoundStore = sounds,
        /// The clock.
        clock: dyn Clock = clock,
        /// Ids.
        ids: dyn IdSource = ids,
    }
}

/// Why an upload use case failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Bad input (length, file name, media type).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No such upload, or another owner's.
    #[error("upload not found")]
    NotFound,
    /// The PATCH does not fit the upload (offset, length, expiry).
    #[error(transparent)]
    Refused(#[from] UploadRefused),
    /// The body's SHA-256 is not the `Upload-Checksum` sent; nothing was
    /// kept.
    #[error("the body does not match its checksum")]
    ChecksumMismatch,
    /// Another PATCH of this upload is being stored (tus: 423).
    #[error("another request is writing this upload")]
    Busy,
    /// Another process's PATCH moved the upload first (409).
    #[error("the upload moved while this request was stored")]
    Moved,
    /// The owner holds the most open uploads allowed, or the file would
    /// take their sounds past a sound quota.
    #[error("quota `{quota}` reached ({limit})")]
    OverQuota {
        /// The quota's name.
        quota: &'static str,
        /// Its limit.
        limit: u32,
    },
    /// The body was cut off; what arrived was kept up to `offset` (or
    /// nothing, with a checksum).
    #[error("the body was interrupted at offset {offset}")]
    Interrupted {
        /// Where the upload now is.
        offset: u64,
    },
    /// The object store failed under the upload and it was moved to a
    /// store that works (a local spool): it starts again at offset 0 and
    /// the client resends from there (tus clients HEAD and resume).
    #[error("the object store failed; the upload starts again at offset 0 in the spool")]
    Restarted,
    /// The completed file is not audio the product plays; it was deleted.
    #[error("the file is not MP3, Ogg, WAV, AAC, M4A or FLAC audio")]
    NotAudio,
    /// The database failed.
    #[error("upload store failure")]
    Store(#[source] StoreError),
    /// The object store failed.
    #[error("object store failure")]
    Blob(#[source] BlobError),
}

impl From<StoreError> for UploadError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::OverQuota { quota, limit } => Self::OverQuota { quota, limit },
            StoreError::Conflict(_) => Self::Moved,
            other => Self::Store(other),
        }
    }
}

impl From<BlobError> for UploadError {
    fn from(e: BlobError) -> Self {
        Self::Blob(e)
    }
}

/// What a PATCH asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch {
    /// `Upload-Offset`.
    pub offset: u64,
    /// `Content-Length`, when sent.
    pub length: Option<u64>,
    /// `Upload-Checksum`, when sent.
    pub checksum: Option<Checksum>,
}

/// A PATCH body's digest, as tus's `Upload-Checksum` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// `sha1 <base64>` (every tus server must take it).
    Sha1([u8; 20]),
    /// `sha256 <base64>`.
    Sha256([u8; 32]),
}

/// A running digest of the algorithm a [`Checksum`] names.
enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(Sha256),
}

impl Hasher {
    fn of(sum: Checksum) -> Self {
        match sum {
            Checksum::Sha1(_) => Self::Sha1(sha1::Sha1::new()),
            Checksum::Sha256(_) => Self::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha1(h) => h.update(bytes),
            Self::Sha256(h) => h.update(bytes),
        }
    }

    fn matches(self, sum: Checksum) -> bool {
        match (self, sum) {
            (Self::Sha1(h), Checksum::Sha1(want)) => h.finalize().as_slice() == want,
            (Self::Sha256(h), Checksum::Sha256(want)) => h.finalize().as_slice() == want,
            _ => false,
        }
    }
}

/// What a PATCH achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patched {
    /// Stored; more bytes are expected.
    Partial(Upload),
    /// Every byte arrived: the upload is now this sound (its state is
    /// gone; [`UploadService::status`] still answers for it).
    Complete(Sound),
}

/// Where an upload stands, for a `HEAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStatus {
    /// Still receiving bytes.
    Open(Upload),
    /// Complete: it became this sound (same id).
    Done(Sound),
}

/// The upload use cases.
pub struct UploadService {
    ports: UploadPorts,
    limits: Limits,
    /// Uploads a PATCH of this process is writing: a second concurrent
    /// PATCH would write the same part numbers.
    busy: Mutex<HashSet<UploadId>>,
}

/// Releases an upload's busy mark when the PATCH ends, however it ends.
struct Writing<'a> {
    busy: &'a Mutex<HashSet<UploadId>>,
    id: UploadId,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl UploadService {
    /// The use cases over `ports`, under its limits (open uploads and
    /// sounds per owner).
    pub fn new(ports: super::Ports) -> Self {
        Self {
            limits: ports.limits,
            ports: ports.into(),
            busy: Mutex::new(HashSet::new()),
        }
    }

    /// A new, empty upload of `length` bytes. The sound quotas are judged
    /// now, against the sounds the owner keeps and the uploads they have
    /// open (and again when it completes), so a file that cannot be kept is
    /// refused before a byte of it is sent (two creations racing may both
    /// pass; the registration then refuses the later to complete).
    ///
    /// # Errors
    /// [`UploadError::Invalid`], [`UploadError::OverQuota`]
    /// (`uploads_per_user`, `sounds_per_user`, `sound_megabytes_per_user`),
    /// store failures.
    pub async fn create(
        &self,
        owner: UserId,
        length: u64,
        file: UploadFile,
    ) -> Result<Upload, UploadError> {
        let id = UploadId::from_uuid(self.ports.ids.next_uuid())?;
        let upload = Upload::new(id, owner, length, file, self.ports.clock.now(), UPLOAD_TTL)?;
        // The sounds kept and the uploads still open, each of which will
        // be one: a file is refused now rather than after its bytes.
        let kept = self.ports.sounds.usage(owner).await?;
        let open = self.ports.uploads.pending(owner).await?;
        let usage = crate::model::SoundUsage {
            count: kept.count + open.count,
            bytes: kept.bytes + open.bytes,
        };
        self.limits.sounds().admit(usage, length)?;
        self.ports
            .uploads
            .create(&upload, self.limits.uploads())
            .await?;
        Ok(upload)
    }

    /// The owner's open upload.
    ///
    /// # Errors
    /// [`UploadError::NotFound`], store failures.
    pub async fn get(&self, owner: UserId, id: UploadId) -> Result<Upload, UploadError> {
        Ok(self.ports.uploads.get(owner, id).await?)
    }

    /// Where the owner's upload stands: open (its offset is what a `HEAD`
    /// reports), or done, as the sound it became. An upload whose bytes all
    /// arrived but whose completion did not finish (a crash, the store
    /// down at that moment) is completed now: its client sends no more
    /// PATCHes.
    ///
    /// # Errors
    /// [`UploadError::NotFound`]; [`UploadError::Busy`] while a PATCH of
    /// this process is writing it (its offset is about to move: a client
    /// resuming after a cut-off PATCH asks again); as
    /// [`UploadService::complete`].
    pub async fn status(&self, owner: UserId, id: UploadId) -> Result<UploadStatus, UploadError> {
        let upload = self.ports.uploads.get(owner, id).await;
        if upload.is_ok()
            && self
                .busy
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&id)
        {
            return Err(UploadError::Busy);
        }
        match upload {
            Ok(upload) if upload.is_complete() => {
                Ok(UploadStatus::Done(self.complete(&upload).await?))
            }
            Ok(upload) => Ok(UploadStatus::Open(upload)),
            Err(StoreError::NotFound) => {
                let sound = BlobId::from_uuid(id.as_uuid())?;
                match self.ports.sounds.get(owner, sound).await {
                    Ok(sound) => Ok(UploadStatus::Done(sound)),
                    Err(StoreError::NotFound) => Err(UploadError::NotFound),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    fn claim(&self, id: UploadId) -> Result<Writing<'_>, UploadError> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        if !busy.insert(id) {
            return Err(UploadError::Busy);
        }
        Ok(Writing {
            busy: &self.busy,
            id,
        })
    }

    /// Appends `body` at `patch.offset`; on the last byte, completes the
    /// upload into an audio blob.
    ///
    /// # Errors
    /// [`UploadError::Refused`] (offset 409, past the length 413, expired
    /// 410), [`UploadError::ChecksumMismatch`] (460, nothing kept),
    /// [`UploadError::Busy`] (423), [`UploadError::Interrupted`],
    /// [`UploadError::NotAudio`] (415, the upload is deleted),
    /// [`UploadError::Restarted`] (the store failed under bytes already
    /// kept: the upload moved and starts again at 0), failures.
    pub async fn patch(
        &self,
        owner: UserId,
        id: UploadId,
        patch: Patch,
        mut body: ByteStream,
    ) -> Result<Patched, UploadError> {
        let _writing = self.claim(id)?;
        let mut upload = self.ports.uploads.get(owner, id).await?;
        let now = self.ports.clock.now();
        upload.check_patch(patch.offset, patch.length, now)?;
        let room = upload.length - upload.offset();
        let part = usize::try_from(UPLOAD_PART_BYTES).unwrap_or(usize::MAX);
        // The bytes after the last stored part: the tail, then the body.
        let tail = match self.ports.parts.tail(&upload).await {
            Ok(tail) => tail,
            Err(e) => {
                // The tail is gone with its store: the upload restarts
                // elsewhere, if it can, and the client resends it all.
                self.relocate(&upload, e, false).await?;
                return Err(UploadError::Restarted);
            }
        };
        let mut pending = BytesMut::from(tail);
        let mut multipart = upload.multipart.clone();
        let mut parts = Vec::new();
        let mut number = upload.next_part();
        let mut received = 0u64;
        let mut hasher = patch.checksum.map(Hasher::of);
        let mut cut_off = false;
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else {
                cut_off = true;
                break;
            };
            received += chunk.len() as u64;
            if received > room {
                return Err(UploadRefused::PastLength {
                    length: upload.length,
                    end: upload.offset() + received,
                }
                .into());
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            pending.extend_from_slice(&chunk);
            while pending.len() >= part {
                let whole = pending.split_to(part).freeze();
                let lossless = parts.is_empty();
                parts.push(
                    self.store_part(&mut upload, &mut multipart, lossless, number, whole)
                        .await?,
                );
                number += 1;
            }
        }
        if let (Some(expected), Some(h)) = (patch.checksum, hasher) {
            if cut_off {
                return Err(UploadError::Interrupted {
                    offset: upload.offset(),
                });
            }
            if !h.matches(expected) {
                return Err(UploadError::ChecksumMismatch);
            }
        }
        let end = upload.offset() + received;
        if end == upload.length && !pending.is_empty() {
            let last = pending.split().freeze();
            let lossless = parts.is_empty();
            parts.push(
                self.store_part(&mut upload, &mut multipart, lossless, number, last)
                    .await?,
            );
        }
        let stored = upload.stored() + parts.iter().map(|p| p.size).sum::<u64>();
        let tail = pending.split().freeze();
        if received > 0
            && !tail.is_empty()
            && let Err(e) = self
                .ports
                .parts
                .put_tail(&upload, stored, tail.clone())
                .await
        {
            upload = self.relocate(&upload, e, parts.is_empty()).await?;
            self.ports
                .parts
                .put_tail(&upload, stored, tail.clone())
                .await?;
        }
        let progress = UploadProgress {
            from_offset: upload.offset(),
            // Recorded when it began (see `multipart_of`); named again so
            // parts stored under a multipart upload the state no longer
            // names (the upload moved meanwhile) are refused.
            multipart: multipart.clone(),
            restart: false,
            parts,
            // With no byte received, `tail` is the state's own tail.
            tail: tail.len() as u64,
            expires_at: now.saturating_add(UPLOAD_TTL).unwrap_or(now),
        };
        let next = self.ports.uploads.advance(owner, id, &progress).await?;
        // Every byte arrived (even if the connection broke after the last):
        // complete now; a client that then sees offset == length never
        // sends the PATCH that would.
        if next.is_complete() {
            return Ok(Patched::Complete(self.complete(&next).await?));
        }
        if cut_off {
            return Err(UploadError::Interrupted {
                offset: next.offset(),
            });
        }
        Ok(Patched::Partial(next))
    }

    /// The upload's multipart id, begun on first use and recorded at once,
    /// before any part is put: a PATCH that then fails leaves no multipart
    /// upload that nothing names (the sweep or a delete aborts it). Only if
    /// this record itself fails (the database down, or another process's
    /// PATCH first) is the new multipart upload left to the bucket's
    /// lifecycle rule for incomplete uploads.
    async fn multipart_of(
        &self,
        upload: &Upload,
        multipart: &mut Option<String>,
    ) -> Result<String, UploadError> {
        if let Some(id) = multipart {
            return Ok(id.clone());
        }
        let id = self.ports.parts.begin(upload).await?;
        let record = UploadProgress {
            from_offset: upload.offset(),
            multipart: Some(id.clone()),
            restart: false,
            parts: Vec::new(),
            tail: upload.tail,
            expires_at: upload.expires_at,
        };
        self.ports
            .uploads
            .advance(upload.owner, upload.id, &record)
            .await?;
        *multipart = Some(id.clone());
        Ok(id)
    }

    /// Stores a whole part (beginning the multipart upload if need be).
    /// When the store fails under it, the upload is moved (see
    /// [`UploadService::relocate`]) and, if nothing was lost by that, the
    /// part goes to the new place.
    async fn store_part(
        &self,
        upload: &mut Upload,
        multipart: &mut Option<String>,
        lossless: bool,
        number: u32,
        bytes: Bytes,
    ) -> Result<crate::model::UploadPart, UploadError> {
        let first = async {
            let mp = self.multipart_of(upload, multipart).await?;
            self.put(upload, &mp, number, bytes.clone()).await
        };
        match first.await {
            Err(UploadError::Blob(e)) => {
                *upload = self.relocate(upload, e, lossless).await?;
                *multipart = upload.multipart.clone();
                let mp = self.multipart_of(upload, multipart).await?;
                self.put(upload, &mp, number, bytes).await
            }
            other => other,
        }
    }

    /// The part store failed with `error` under `upload`: if it can take
    /// the upload elsewhere ([`PartStore::relocate`]), the upload restarts
    /// there from byte 0 (committed like any progress, so a PATCH that
    /// moved it first wins). Returns the restarted upload when `lossless`
    /// (no byte was stored before: the PATCH goes on in the new place);
    /// otherwise [`UploadError::Restarted`], and the client resends from
    /// offset 0. Without anywhere else, the store's own error.
    async fn relocate(
        &self,
        upload: &Upload,
        error: BlobError,
        lossless: bool,
    ) -> Result<Upload, UploadError> {
        if !matches!(error, BlobError::Unexpected(_)) {
            return Err(error.into());
        }
        let Ok(Some(multipart)) = self.ports.parts.relocate(upload).await else {
            return Err(error.into());
        };
        let restart = UploadProgress {
            from_offset: upload.offset(),
            multipart: Some(multipart),
            restart: true,
            parts: Vec::new(),
            tail: 0,
            expires_at: upload.expires_at,
        };
        let moved = self
            .ports
            .uploads
            .advance(upload.owner, upload.id, &restart)
            .await?;
        if lossless && upload.offset() == 0 {
            Ok(moved)
        } else {
            Err(UploadError::Restarted)
        }
    }

    async fn put(
        &self,
        upload: &Upload,
        multipart: &str,
        number: u32,
        bytes: Bytes,
    ) -> Result<crate::model::UploadPart, UploadError> {
        let size = bytes.len() as u64;
        let tag = self
            .ports
            .parts
            .put_part(upload, multipart, number, bytes)
            .await?;
        Ok(crate::model::UploadPart { number, size, tag })
    }

    /// Assembles a complete upload into its blob (again, harmlessly, if a
    /// crash came between the last PATCH's commit and here), checks the
    /// blob is audio by its first bytes, registers it as the owner's sound
    /// and forgets the upload. Each step is idempotent, so a completion
    /// cut short is finished by the next call.
    ///
    /// # Errors
    /// [`UploadError::NotAudio`] and [`UploadError::OverQuota`] (the blob
    /// and the upload are deleted), failures.
    pub async fn complete(&self, upload: &Upload) -> Result<Sound, UploadError> {
        let blob_id = BlobId::from_uuid(upload.id.as_uuid())?;
        let meta = match self.ports.blobs.head(upload.owner, blob_id).await {
            Ok(meta) => meta,
            // Unreadable is not "assembled": the part store decides (an
            // upload moved to a spool completes there while the remote
            // store, asked here too, is down; a remote one fails again).
            Err(BlobError::NotFound | BlobError::Unexpected(_)) => {
                // The client's declared type is not trusted: the record
                // says only "bytes"; the sound carries the type read from
                // them.
                let meta = BlobMeta {
                    id: blob_id,
                    owner: upload.owner,
                    content_type: "application/octet-stream".to_owned(),
                    size: upload.length,
                    created_at: self.ports.clock.now(),
                };
                self.ports.parts.complete(upload, meta).await?
            }
            Err(e) => return Err(e.into()),
        };
        let head = if meta.size == 0 {
            Vec::new()
        } else {
            let (_, body) = self
                .ports
                .blobs
                .get(upload.owner, blob_id, Some(0..SNIFF_BYTES))
                .await?;
            body.collect(SNIFF_BYTES).await?
        };
        let Some(kind) = audio_type(&head) else {
            self.discard(upload, blob_id).await?;
            return Err(UploadError::NotAudio);
        };
        let sound = Sound {
            id: blob_id,
            owner: upload.owner,
            name: upload.file.filename().to_owned(),
            content_type: kind.to_owned(),
            size: meta.size,
            created_at: meta.created_at,
        };
        let sound = match self
            .ports
            .sounds
            .register(&sound, self.limits.sounds())
            .await
        {
            Ok(sound) => sound,
            Err(e @ StoreError::OverQuota { .. }) => {
                self.discard(upload, blob_id).await?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        match self.forget(upload.owner, upload.id).await {
            Ok(()) | Err(UploadError::NotFound) => Ok(sound),
            Err(e) => Err(e),
        }
    }

    /// Deletes a completed upload that cannot become a sound: its blob,
    /// then its state.
    async fn discard(&self, upload: &Upload, blob: BlobId) -> Result<(), UploadError> {
        match self.ports.blobs.delete(upload.owner, blob).await {
            Ok(()) | Err(BlobError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        self.forget(upload.owner, upload.id).await
    }

    /// Removes an upload's parts, then its state (in that order: a failure
    /// between leaves the state, and so the sweep, to finish).
    ///
    /// # Errors
    /// [`UploadError::NotFound`], store failures.
    pub async fn forget(&self, owner: UserId, id: UploadId) -> Result<(), UploadError> {
        let upload = self.ports.uploads.get(owner, id).await?;
        self.ports.parts.abort(&upload).await?;
        self.ports.uploads.delete(owner, id).await?;
        Ok(())
    }

    /// Cancels the owner's upload: its parts and state are removed.
    ///
    /// # Errors
    /// [`UploadError::NotFound`], [`UploadError::Busy`], failures.
    pub async fn delete(&self, owner: UserId, id: UploadId) -> Result<(), UploadError> {
        let _writing = self.claim(id)?;
        self.forget(owner, id).await
    }

    /// Aborts up to `limit` expired uploads of any owner; returns how many.
    /// Uploads the store cannot abort are skipped, kept for the next sweep,
    /// and reported as an error after the others are done.
    /// A complete one (every byte arrived, its completion cut short, no
    /// HEAD since) is completed instead: its sound registered, or its blob
    /// deleted when it cannot be one.
    ///
    /// # Errors
    /// Failures (what was swept before stays swept).
    pub async fn sweep(&self, limit: u32) -> Result<u32, UploadError> {
        let now = self.ports.clock.now();
        let (mut swept, mut failed) = (0, 0u32);
        for upload in self.ports.uploads.expired(now, limit).await? {
            let Ok(_writing) = self.claim(upload.id) else {
                continue;
            };
            if upload.is_complete() {
                // Its bytes all arrived but its completion never finished
                // and no HEAD came: completing now registers the sound (or
                // deletes the blob if it cannot be one), so no blob is left
                // that no sound names.
                match self.complete(&upload).await {
                    Ok(_) | Err(UploadError::NotAudio | UploadError::OverQuota { .. }) => {
                        swept += 1;
                    }
                    Err(_) => failed += 1,
                }
                continue;
            }
            // One upload the store cannot abort must not stop the others:
            // listed soonest-expired first, it would come first every time.
            if self.ports.parts.abort(&upload).await.is_err() {
                failed += 1;
                continue;
            }
            match self.ports.uploads.delete(upload.owner, upload.id).await {
                Ok(_) | Err(StoreError::NotFound) => swept += 1,
                Err(e) => return Err(e.into()),
            }
        }
        if failed > 0 {
            return Err(UploadError::Blob(BlobError::Unexpected(
                format!(
                    "{failed} expired uploads could not be aborted or completed (retried next sweep)"
                )
                    .into(),
            )));
        }
        Ok(swept)
    }
}
