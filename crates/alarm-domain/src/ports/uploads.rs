//! Ports of resumable uploads: the durable state of each upload (a database) and the parts and tail its bytes are kept in (the object store).

use async_trait::async_trait;
use bytes::Bytes;
use jiff::Timestamp;

use super::{BlobError, BlobMeta, StoreError};
use crate::ids::{UploadId, UserId};
use crate::limits::Quota;
use crate::model::{Upload, UploadProgress};

/// A refused [`Upload::advance`] as a store's error: a PATCH that lost the
/// race (or started from a stale offset) is a conflict, progress breaking
/// the part rule an adapter's bug.
pub fn upload_refusal(refused: crate::model::UploadRefused) -> StoreError {
    use crate::model::UploadRefused;
    match refused {
        UploadRefused::OffsetMismatch { .. } | UploadRefused::MultipartChanged { .. } => {
            StoreError::Conflict(refused.to_string())
        }
        other => StoreError::Unexpected(Box::new(other)),
    }
}

/// The uploads' state: what a `HEAD` reports after a disconnect or a
/// restart comes from here. Scoped: another owner's upload is
/// [`StoreError::NotFound`].
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait UploadStore: Send + Sync {
    /// Keeps a new upload.
    ///
    /// # Errors
    /// MUST return [`StoreError::OverQuota`] when the owner already holds
    /// `quota.limit` uploads (counted atomically with the insert).
    async fn create(&self, upload: &Upload, quota: Quota) -> Result<(), StoreError>;

    /// The owner's upload.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when missing or another owner's.
    async fn get(&self, owner: UserId, id: UploadId) -> Result<Upload, StoreError>;

    /// Applies a PATCH's progress by [`Upload::advance`], atomically: of
    /// two PATCHes from the same offset, one wins.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Conflict`] when the upload is
    /// no longer at `progress.from_offset`; [`StoreError::Unexpected`] for
    /// progress that breaks the part rule.
    async fn advance(
        &self,
        owner: UserId,
        id: UploadId,
        progress: &UploadProgress,
    ) -> Result<Upload, StoreError>;

    /// Forgets the owner's upload and returns it (its parts are the
    /// caller's to abort).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when missing or another owner's.
    async fn delete(&self, owner: UserId, id: UploadId) -> Result<Upload, StoreError>;

    /// What the owner's open uploads will add to their sounds once
    /// complete: how many, and their declared lengths together.
    ///
    /// # Errors
    /// Store failures.
    async fn pending(&self, owner: UserId) -> Result<crate::model::SoundUsage, StoreError>;

    /// Uploads of any owner expired at `now`, soonest expired first, at
    /// most `limit`: the sweeper's work.
    ///
    /// # Errors
    /// Store failures.
    async fn expired(&self, now: Timestamp, limit: u32) -> Result<Vec<Upload>, StoreError>;
}

/// Where an upload's bytes wait: numbered parts of
/// [`crate::model::UPLOAD_PART_BYTES`] (an object store's multipart upload,
/// or objects of their own), and a tail of fewer bytes after them.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait PartStore: Send + Sync {
    /// Begins the upload's multipart upload; its id goes in the state.
    ///
    /// # Errors
    /// [`BlobError::Unexpected`] when the store fails.
    async fn begin(&self, upload: &Upload) -> Result<String, BlobError>;

    /// Stores part `number` and returns the tag completion needs. A part
    /// stored again under the same number wins for completion when its tag
    /// is the one given; an earlier tag of that number may stop completing
    /// (S3 keeps one part per number) or keep its own bytes (parts as
    /// objects of their own).
    ///
    /// # Errors
    /// [`BlobError::Unexpected`] when the store fails.
    async fn put_part(
        &self,
        upload: &Upload,
        multipart: &str,
        number: u32,
        bytes: Bytes,
    ) -> Result<String, BlobError>;

    /// Keeps `bytes` as a tail starting at byte `start` (the upload's
    /// stored bytes once the PATCH's parts are recorded). Each (start,
    /// length) is kept apart, so a tail written by a PATCH that then failed
    /// to commit never replaces the one the state names.
    ///
    /// # Errors
    /// [`BlobError::Unexpected`] when the store fails.
    async fn put_tail(&self, upload: &Upload, start: u64, bytes: Bytes) -> Result<(), BlobError>;

    /// The tail the upload's state names (`upload.tail` bytes from
    /// `upload.stored()`); empty when it has none.
    ///
    /// # Errors
    /// [`BlobError::Unexpected`] when the store fails or that tail is gone.
    async fn tail(&self, upload: &Upload) -> Result<Bytes, BlobError>;

    /// Assembles the upload's parts (`upload.parts`, complete) into the
    /// blob `meta` describes (its id is the upload's UUID), readable from
    /// then on through the blob port, and drops the parts and tail.
    ///
    /// # Errors
    /// [`BlobError::Unexpected`] when the store fails or a part is missing.
    async fn complete(&self, upload: &Upload, meta: BlobMeta) -> Result<BlobMeta, BlobError>;

    /// Drops whatever the upload left: its multipart upload, parts and
    /// tail. Doing it twice is no error.
    ///
    /// # Errors
    /// [`BlobError::Unexpected`] when the store fails.
    async fn abort(&self, upload: &Upload) -> Result<(), BlobError>;

    /// The store holding the upload's bytes failed under it: begins the
    /// upload again where its bytes can be kept now (a local spool in
    /// front of a remote object store) and returns that multipart id, for
    /// a restart from byte 0 (see [`crate::model::UploadProgress::restart`]).
    /// `None` when there is nowhere else: the default, and an upload
    /// already moved.
    ///
    /// # Errors
    /// [`BlobError::Unexpected`] when the other place fails too.
    async fn relocate(&self, upload: &Upload) -> Result<Option<String>, BlobError> {
        let _ = upload;
        Ok(None)
    }
}

/// The blob and part store of ports built without object storage (a
/// database adapter's own [`crate::services::Ports`]): every call fails,
/// naming why, until an app installs a real store with
/// [`crate::services::Ports::with_storage`]. A failure, never an empty
/// store: nothing can be written to it and later found missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStorage;

fn no_storage() -> BlobError {
    BlobError::Unexpected("no object storage is configured for these ports".into())
}

#[async_trait]
impl super::BlobStore for NoStorage {
    async fn put(&self, _: BlobMeta, _: super::ByteStream) -> Result<BlobMeta, BlobError> {
        Err(no_storage())
    }
    async fn head(&self, _: UserId, _: crate::ids::BlobId) -> Result<BlobMeta, BlobError> {
        Err(no_storage())
    }
    async fn get(
        &self,
        _: UserId,
        _: crate::ids::BlobId,
        _: Option<std::ops::Range<u64>>,
    ) -> Result<(BlobMeta, super::ByteStream), BlobError> {
        Err(no_storage())
    }
    async fn delete(&self, _: UserId, _: crate::ids::BlobId) -> Result<(), BlobError> {
        Err(no_storage())
    }
}

#[async_trait]
impl PartStore for NoStorage {
    async fn begin(&self, _: &Upload) -> Result<String, BlobError> {
        Err(no_storage())
    }
    async fn put_part(&self, _: &Upload, _: &str, _: u32, _: Bytes) -> Result<String, BlobError> {
        Err(no_storage())
    }
    async fn put_tail(&self, _: &Upload, _: u64, _: Bytes) -> Result<(), BlobError> {
        Err(no_storage())
    }
    async fn tail(&self, _: &Upload) -> Result<Bytes, BlobError> {
        Err(no_storage())
    }
    async fn complete(&self, _: &Upload, _: BlobMeta) -> Result<BlobMeta, BlobError> {
        Err(no_storage())
    }
    async fn abort(&self, _: &Upload) -> Result<(), BlobError> {
        Err(no_storage())
    }
}
