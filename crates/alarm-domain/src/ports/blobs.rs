//! The blob port: object storage for alarm sounds and uploads, streamed in both directions so no object is ever held whole in memory.
//!
//! The domain stays free of I/O crates: a body is a [`ByteStream`], a boxed
//! `futures_core::Stream` of `bytes::Bytes` chunks (two small type crates,
//! no runtime). Adapters turn their HTTP or file bodies into one; the fakes
//! build one from chunks.

use std::fmt;
use std::future::poll_fn;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use jiff::Timestamp;

use crate::ids::{BlobId, UserId};

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No such blob (or another owner's).
    #[error("blob not found")]
    NotFound,
    /// The blob is larger than the store accepts.
    #[error("blob too large: {size} bytes, limit {limit}")]
    TooLarge {
        /// The size offered: the declared one, or the bytes counted when
        /// the body went over the limit.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The requested range does not overlap the blob (an empty range, or
    /// one starting at or after its end).
    #[error("range not satisfiable: the blob has {size} bytes")]
    RangeNotSatisfiable {
        /// The blob's size, for a `Content-Range: bytes */size` answer.
        size: u64,
    },
    /// The body being stored failed (e.g. its client went away): nothing
    /// was stored.
    #[error("the body being stored was interrupted")]
    Interrupted(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else, e.g. the object store unreachable or refusing.
    #[error("unexpected blob store failure")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One piece of a body, or the failure that ends it.
pub type Chunk = Result<Bytes, BlobError>;

/// A body: chunks of bytes read one at a time.
pub struct ByteStream(Pin<Box<dyn Stream<Item = Chunk> + Send>>);

impl ByteStream {
    /// Wraps any stream of chunks.
    pub fn new(stream: impl Stream<Item = Chunk> + Send + 'static) -> Self {
        Self(Box::pin(stream))
    }

    /// A body of the given chunks, in order (a failure among them ends it).
    pub fn from_chunks(chunks: Vec<Chunk>) -> Self {
        Self::new(Chunks(chunks.into_iter()))
    }

    /// A body of one chunk.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        Self::from_chunks(vec![Ok(bytes.into())])
    }

    /// The next chunk, or `None` at the end.
    pub async fn next(&mut self) -> Option<Chunk> {
        poll_fn(|cx| self.0.as_mut().poll_next(cx)).await
    }

    /// Reads the whole body into memory: for small bodies and tests only.
    ///
    /// # Errors
    /// The body's own failure, or [`BlobError::TooLarge`] (with the bytes
    /// counted so far) as soon as it passes `limit`.
    pub async fn collect(mut self, limit: u64) -> Result<Vec<u8>, BlobError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next().await {
            all.extend_from_slice(&chunk?);
            let size = all.len() as u64;
            if size > limit {
                return Err(BlobError::TooLarge { size, limit });
            }
        }
        Ok(all)
    }
}

impl Stream for ByteStream {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        self.0.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ByteStream")
    }
}

/// A stream over chunks already in memory.
struct Chunks(std::vec::IntoIter<Chunk>);

impl Stream for Chunks {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Chunk>> {
        Poll::Ready(self.0.next())
    }
}

/// What is known about a stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// The id.
    pub id: BlobId,
    /// The owner.
    pub owner: UserId,
    /// The media type, e.g. `audio/mpeg`.
    pub content_type: String,
    /// Size in bytes. Given to `put`, it is the declared size (refused at
    /// once over the limit); the store records the bytes it counted.
    pub size: u64,
    /// When it was stored.
    pub created_at: Timestamp,
}

impl BlobMeta {
    /// Whether the declared size is within a store's `limit`: every store
    /// refuses a body over it before reading a byte.
    ///
    /// # Errors
    /// [`BlobError::TooLarge`] with the declared size.
    pub fn admit(&self, limit: u64) -> Result<(), BlobError> {
        if self.size > limit {
            return Err(BlobError::TooLarge {
                size: self.size,
                limit,
            });
        }
        Ok(())
    }
}

/// The part of a blob of `size` bytes that `range` asks for, clamped to
/// its end: every store answers ranges by this one rule.
///
/// # Errors
/// [`BlobError::RangeNotSatisfiable`] for an empty range or one starting at
/// or after the end.
pub fn clamp_range(range: Range<u64>, size: u64) -> Result<Range<u64>, BlobError> {
    if range.start >= range.end || range.start >= size {
        return Err(BlobError::RangeNotSatisfiable { size });
    }
    Ok(range.start..range.end.min(size))
}

/// Object storage for alarm sounds and uploads. Bodies are streamed both
/// ways; blobs are scoped to their owner.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `body` under `meta.id` and returns what was stored (the size
    /// is the bytes counted). Nothing is visible until the whole body is
    /// stored; a failure stores nothing.
    ///
    /// # Errors
    /// MUST return [`BlobError::TooLarge`] when the declared size or the
    /// body passes the store's limit (reading no further), and
    /// [`BlobError::Interrupted`] when the body fails.
    async fn put(&self, meta: BlobMeta, body: ByteStream) -> Result<BlobMeta, BlobError>;

    /// The owner's blob's metadata.
    ///
    /// # Errors
    /// MUST return [`BlobError::NotFound`] when missing or another owner's.
    async fn head(&self, owner: UserId, id: BlobId) -> Result<BlobMeta, BlobError>;

    /// The owner's blob, whole or the bytes of `range` (end clamped, see
    /// [`clamp_range`]).
    ///
    /// # Errors
    /// MUST return [`BlobError::NotFound`] when missing or another owner's,
    /// and [`BlobError::RangeNotSatisfiable`] as [`clamp_range`] says.
    async fn get(
        &self,
        owner: UserId,
        id: BlobId,
        range: Option<Range<u64>>,
    ) -> Result<(BlobMeta, ByteStream), BlobError>;

    /// Removes the owner's blob.
    ///
    /// # Errors
    /// MUST return [`BlobError::NotFound`] when missing or another owner's.
    async fn delete(&self, owner: UserId, id: BlobId) -> Result<(), BlobError>;
}
