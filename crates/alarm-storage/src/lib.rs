//! Object storage for Smart Alarm: the domain's [`BlobStore`] port over `object_store`, on the local file system, any S3-compatible service, OCI Object Storage or memory.
//!
//! # Layout
//! A blob is two objects under `blobs/<owner>/`: its bytes at `<id>` and
//! its record at `<id>.json` (media type, size, time stored). The record is
//! written last, so a blob exists for readers only once its bytes are
//! complete; the owner in the key scopes every read, so another owner's id
//! is simply not found. A record rather than object attributes, because
//! the local file system store keeps no attributes.
//!
//! # Streaming
//! Nothing is held whole in memory. A body smaller than one part
//! ([`PART_SIZE`], 5 MiB: S3's smallest part but the last) is one `PUT`;
//! a larger one becomes a multipart upload of 5 MiB parts with at most
//! [`PARTS_IN_FLIGHT`] uploading at once, so a `put` holds about
//! `(1 + PARTS_IN_FLIGHT) × 5 MiB` whatever the blob's size. Reads are the
//! store's own stream. A failed or over-limit body aborts its multipart
//! upload.
//!
//! # Backends
//! See [`Backend`]: `memory`, `local`, `s3` (any endpoint) and `oci`
//! (Object Storage's S3 compatibility endpoint built from the namespace
//! and region, with a Customer Secret Key). Every backend that can run on
//! a test machine passes the port's conformance suite: memory, local and
//! S3 against `s3s-fs`, a real server checking SigV4 signatures
//! (`tests/conformance.rs`). OCI is the S3 client pointed at Oracle's
//! endpoint; no test reaches Oracle.

mod backend;
mod parts;
mod spool;
#[cfg(feature = "testing")]
pub mod testing;

use std::ops::Range;
use std::sync::Arc;

use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::ports::{BlobError, BlobMeta, BlobStore, ByteStream, clamp_range};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

pub use backend::{Backend, BackendError, OciSettings, Opened, S3Settings};
pub use object_store;
pub use parts::ObjectParts;
pub use spool::{Pushed, STALE_UPLOAD, Spool};

/// The size of a multipart upload's parts (S3's smallest but the last).
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts of one `put` uploading at once: the bound on its memory.
pub const PARTS_IN_FLIGHT: usize = 2;

/// The domain's blob store over any `object_store` backend.
#[derive(Debug, Clone)]
pub struct ObjectBlobs {
    store: Arc<dyn ObjectStore>,
    limit: u64,
}

impl ObjectBlobs {
    /// Blobs in `store`, refusing any over `limit` bytes.
    pub fn new(store: Arc<dyn ObjectStore>, limit: u64) -> Self {
        Self { store, limit }
    }

    /// The object store underneath (for the upload adapter and tests).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub(crate) fn content(owner: UserId, id: BlobId) -> Path {
        Path::from(format!("blobs/{owner}/{id}"))
    }

    fn record(owner: UserId, id: BlobId) -> Path {
        Path::from(format!("blobs/{owner}/{id}.json"))
    }

    /// Writes the record of the blob whose bytes are in place: from then on
    /// it exists for readers. A failure leaves the bytes (invisible without
    /// a record), so a completed multipart upload, whose bytes exist nowhere
    /// else, can be published again.
    pub(crate) async fn publish(&self, meta: &BlobMeta) -> Result<(), BlobError> {
        self.store
            .put(&Self::record(meta.owner, meta.id), record_json(meta))
            .await
            .map(|_| ())
            .map_err(unexpected)
    }

    /// Streams `body` into the object at `to`, counting it against the
    /// limit; returns the bytes stored.
    async fn write(&self, to: &Path, mut body: ByteStream) -> Result<u64, BlobError> {
        let mut counted = 0u64;
        // The body until it passes one part: a small blob is one PUT.
        let mut held: Vec<alarm_domain::bytes::Bytes> = Vec::new();
        let mut held_len = 0usize;
        let mut upload: Option<WriteMultipart> = None;
        let failure = loop {
            let chunk = match body.next().await {
                None => break None,
                Some(Err(e)) => break Some(e),
                Some(Ok(chunk)) => chunk,
            };
            counted += chunk.len() as u64;
            if counted > self.limit {
                break Some(BlobError::TooLarge {
                    size: counted,
                    limit: self.limit,
                });
            }
            if let Some(parts) = upload.as_mut() {
                if let Err(e) = parts.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    break Some(unexpected(e));
                }
                parts.put(chunk);
                continue;
            }
            held_len += chunk.len();
            held.push(chunk);
            if held_len >= PART_SIZE {
                match self.store.put_multipart(to).await {
                    Ok(started) => {
                        let mut parts = WriteMultipart::new_with_chunk_size(started, PART_SIZE);
                        held.drain(..).for_each(|c| parts.put(c));
                        upload = Some(parts);
                    }
                    Err(e) => break Some(unexpected(e)),
                }
            }
        };
        if let Some(error) = failure {
            if let Some(parts) = upload {
                // Best effort: an upload left behind is also expired by the
                // bucket's lifecycle rule for incomplete multipart uploads.
                if let Err(e) = parts.abort().await {
                    tracing::warn!(error = %e, "aborting a failed multipart upload failed");
                }
            }
            return Err(error);
        }
        match upload {
            Some(parts) => parts.finish().await.map_err(unexpected)?,
            None => self
                .store
                .put(to, PutPayload::from_iter(held))
                .await
                .map_err(unexpected)?,
        };
        Ok(counted)
    }
}

pub(crate) fn unexpected(error: object_store::Error) -> BlobError {
    BlobError::Unexpected(Box::new(error))
}

/// A store's answer as the port's error: a missing object is
/// [`BlobError::NotFound`].
pub(crate) fn from_store(error: object_store::Error) -> BlobError {
    match error {
        object_store::Error::NotFound { .. } => BlobError::NotFound,
        other => unexpected(other),
    }
}

/// The record written beside a blob's bytes.
fn record_json(meta: &BlobMeta) -> PutPayload {
    serde_json::json!({
        "content_type": meta.content_type,
        "size": meta.size,
        "created_at": meta.created_at.to_string(),
    })
    .to_string()
    .into()
}

fn parse_record(owner: UserId, id: BlobId, bytes: &[u8]) -> Result<BlobMeta, BlobError> {
    let bad = |why: &str| BlobError::Unexpected(format!("blob record {id}: {why}").into());
    let record: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
    Ok(BlobMeta {
        id,
        owner,
        content_type: record["content_type"]
            .as_str()
            .ok_or_else(|| bad("no content_type"))?
            .to_owned(),
        size: record["size"].as_u64().ok_or_else(|| bad("no size"))?,
        created_at: record["created_at"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .ok_or_else(|| bad("no created_at"))?,
    })
}

#[async_trait]
impl BlobStore for ObjectBlobs {
    async fn put(&self, mut meta: BlobMeta, body: ByteStream) -> Result<BlobMeta, BlobError> {
        meta.admit(self.limit)?;
        let content = Self::content(meta.owner, meta.id);
        meta.size = self.write(&content, body).await?;
        if let Err(e) = self.publish(&meta).await {
            // The caller still has the body's source; unpublished bytes
            // would only take room.
            let _ = self.store.delete(&content).await;
            return Err(e);
        }
        Ok(meta)
    }

    async fn head(&self, owner: UserId, id: BlobId) -> Result<BlobMeta, BlobError> {
        let got = self
            .store
            .get(&Self::record(owner, id))
            .await
            .map_err(from_store)?;
        let bytes = got.bytes().await.map_err(from_store)?;
        parse_record(owner, id, &bytes)
    }

    async fn get(
        &self,
        owner: UserId,
        id: BlobId,
        range: Option<Range<u64>>,
    ) -> Result<(BlobMeta, ByteStream), BlobError> {
        let meta = self.head(owner, id).await?;
        let range = range.map(|r| clamp_range(r, meta.size)).transpose()?;
        if meta.size == 0 {
            return Ok((meta, ByteStream::from_chunks(Vec::new())));
        }
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self
            .store
            .get_opts(&Self::content(owner, id), options)
            .await
            .map_err(from_store)?;
        Ok((meta, ByteStream::new(got.into_stream().map_err(unexpected))))
    }

    async fn delete(&self, owner: UserId, id: BlobId) -> Result<(), BlobError> {
        self.head(owner, id).await?;
        // The bytes first: if the record's removal then fails, a retry
        // still finds the record and finishes; the other way round a
        // failure would leave bytes nothing names.
        match self.store.delete(&Self::content(owner, id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(unexpected(e)),
        }
        self.store
            .delete(&Self::record(owner, id))
            .await
            .map_err(from_store)
    }
}
