//! The domain's `PartStore` over an object store: durable multipart uploads where the store has them (S3, OCI, memory), parts as objects of their own on the local file system, assembled on completion.
//!
//! # Layout
//! * Multipart stores: the upload's multipart upload targets the blob's
//!   own key (`blobs/<owner>/<id>`), part `n` is the store's part `n`, and
//!   its ETag is the tag. Completion is the store's, then the blob's
//!   record is written.
//! * The local file system keeps no multipart state that survives a
//!   restart (`LocalFileSystem` does not implement `MultipartStore`), so
//!   part `n` is the object `uploads/<owner>/<id>/part-<n>-<tag>`, the tag
//!   a random name of its own for each put: a PATCH that loses a race
//!   writes beside the committed part, never over it. Completion streams
//!   the parts the state names into the blob through the ordinary `put`.
//! * Either way a tail is `uploads/<owner>/<id>/tail-<start>-<length>`
//!   (the state names the one that counts), and completion and abort
//!   remove everything under `uploads/<owner>/<id>/`.

use std::sync::Arc;

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::model::Upload;
use alarm_domain::ports::{BlobError, BlobMeta, BlobStore, ByteStream, PartStore};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::{ObjectBlobs, Opened, unexpected};

/// The multipart id of uploads whose parts are objects of their own.
const OWN_OBJECTS: &str = "parts-as-objects";

/// Upload parts in an object store, completed into [`ObjectBlobs`].
#[derive(Clone)]
pub struct ObjectParts {
    store: Arc<dyn ObjectStore>,
    multipart: Option<Arc<dyn MultipartStore>>,
    blobs: ObjectBlobs,
}

impl std::fmt::Debug for ObjectParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectParts")
            .field("store", &self.store)
            .field("multipart", &self.multipart.is_some())
            .finish()
    }
}

impl ObjectParts {
    /// Parts in the opened backend, completed into blobs refused over
    /// `limit` bytes.
    pub fn new((store, multipart): Opened, limit: u64) -> Self {
        let blobs = ObjectBlobs::new(store.clone(), limit);
        Self {
            store,
            multipart,
            blobs,
        }
    }

    /// The object store underneath.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The blobs completed uploads become, as the domain's port.
    pub fn blob_store(&self) -> Arc<dyn BlobStore> {
        Arc::new(self.blobs.clone())
    }

    fn folder(upload: &Upload) -> Path {
        Self::folder_of(upload.owner, upload.id.as_uuid())
    }

    /// The folder of the owner's upload whose UUID is `id` (the blob it
    /// becomes has the same one).
    pub(crate) fn folder_of(owner: UserId, id: uuid::Uuid) -> Path {
        Path::from(format!("uploads/{owner}/{id}"))
    }

    /// The blobs completed uploads become.
    pub(crate) fn blobs(&self) -> &ObjectBlobs {
        &self.blobs
    }

    /// Part `number` as written once under `tag`: every put is an object
    /// of its own, so a PATCH that loses the race (another process's
    /// committed first) never overwrites a part the state names.
    fn part(upload: &Upload, number: u32, tag: &str) -> Path {
        Path::from(format!(
            "uploads/{}/{}/part-{number}-{tag}",
            upload.owner, upload.id
        ))
    }

    fn tail_path(upload: &Upload, start: u64, length: u64) -> Path {
        Path::from(format!(
            "uploads/{}/{}/tail-{start}-{length}",
            upload.owner, upload.id
        ))
    }

    fn blob_id(upload: &Upload) -> Result<BlobId, BlobError> {
        BlobId::from_uuid(upload.id.as_uuid()).map_err(|e| BlobError::Unexpected(Box::new(e)))
    }

    /// Removes everything under the upload's folder (parts, tail).
    async fn clear(&self, upload: &Upload) -> Result<(), BlobError> {
        self.clear_folder(&Self::folder(upload)).await
    }

    /// Removes every object under `folder`.
    pub(crate) async fn clear_folder(&self, folder: &Path) -> Result<(), BlobError> {
        let folder = folder.clone();
        let listed: Vec<_> = self
            .store
            .list(Some(&folder))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(unexpected)?;
        for location in listed {
            match self.store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(unexpected(e)),
            }
        }
        Ok(())
    }

    /// The parts as objects of their own, streamed in order into the blob.
    async fn assemble(&self, upload: &Upload, meta: BlobMeta) -> Result<BlobMeta, BlobError> {
        let store = self.store.clone();
        let reads: Vec<Path> = upload
            .parts
            .iter()
            .map(|p| Self::part(upload, p.number, &p.tag))
            .collect();
        let body = futures_util::stream::iter(reads)
            .then(move |path| {
                let store = store.clone();
                async move { store.get(&path).await.map(|got| got.into_stream()) }
            })
            .try_flatten()
            .map_err(unexpected);
        self.blobs.put(meta, ByteStream::new(body)).await
    }
}

#[async_trait]
impl PartStore for ObjectParts {
    async fn begin(&self, upload: &Upload) -> Result<String, BlobError> {
        match &self.multipart {
            Some(multipart) => multipart
                .create_multipart(&ObjectBlobs::content(upload.owner, Self::blob_id(upload)?))
                .await
                .map_err(unexpected),
            None => Ok(OWN_OBJECTS.to_owned()),
        }
    }

    async fn put_part(
        &self,
        upload: &Upload,
        multipart: &str,
        number: u32,
        bytes: Bytes,
    ) -> Result<String, BlobError> {
        let index = usize::try_from(number.saturating_sub(1)).unwrap_or(usize::MAX);
        match &self.multipart {
            Some(store) => {
                let target = ObjectBlobs::content(upload.owner, Self::blob_id(upload)?);
                let part = store
                    .put_part(
                        &target,
                        &multipart.to_owned(),
                        index,
                        PutPayload::from(bytes),
                    )
                    .await
                    .map_err(unexpected)?;
                Ok(part.content_id)
            }
            None => {
                let tag = uuid::Uuid::now_v7().simple().to_string();
                self.store
                    .put(&Self::part(upload, number, &tag), PutPayload::from(bytes))
                    .await
                    .map_err(unexpected)?;
                Ok(tag)
            }
        }
    }

    async fn put_tail(&self, upload: &Upload, start: u64, bytes: Bytes) -> Result<(), BlobError> {
        let path = Self::tail_path(upload, start, bytes.len() as u64);
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(unexpected)
    }

    async fn tail(&self, upload: &Upload) -> Result<Bytes, BlobError> {
        if upload.tail == 0 {
            return Ok(Bytes::new());
        }
        let path = Self::tail_path(upload, upload.stored(), upload.tail);
        let got = self.store.get(&path).await.map_err(unexpected)?;
        got.bytes().await.map_err(unexpected)
    }

    async fn complete(&self, upload: &Upload, meta: BlobMeta) -> Result<BlobMeta, BlobError> {
        let stored = match (&self.multipart, &upload.multipart) {
            (Some(store), Some(id)) if !upload.parts.is_empty() => {
                let target = ObjectBlobs::content(meta.owner, meta.id);
                let parts = upload
                    .parts
                    .iter()
                    .map(|p| PartId {
                        content_id: p.tag.clone(),
                    })
                    .collect();
                if let Err(e) = store.complete_multipart(&target, id, parts).await {
                    // A completion that succeeded but whose answer was lost
                    // (or a crash before the record) cannot be completed
                    // again: the multipart id is used up. Its object is
                    // there, whole, and only needs its record.
                    let done = self.store.head(&target).await;
                    if !done.is_ok_and(|o| o.size == upload.stored()) {
                        return Err(unexpected(e));
                    }
                }
                let meta = BlobMeta {
                    size: upload.stored(),
                    ..meta
                };
                self.blobs.publish(&meta).await?;
                meta
            }
            _ => self.assemble(upload, meta).await?,
        };
        if let (Some(store), Some(id)) = (&self.multipart, &upload.multipart)
            && upload.parts.is_empty()
        {
            // An empty upload that began a multipart upload: drop it.
            let target = ObjectBlobs::content(upload.owner, Self::blob_id(upload)?);
            if let Err(e) = store.abort_multipart(&target, id).await {
                tracing::warn!(error = %e, "aborting an empty upload's multipart upload failed");
            }
        }
        self.clear(upload).await?;
        Ok(stored)
    }

    async fn abort(&self, upload: &Upload) -> Result<(), BlobError> {
        self.abort_by(
            upload.owner,
            upload.id.as_uuid(),
            upload.multipart.as_deref(),
        )
        .await
    }
}

impl ObjectParts {
    /// [`PartStore::abort`] by the upload's owner, UUID and multipart id
    /// (what the spool keeps of an upload that moved away).
    pub(crate) async fn abort_by(
        &self,
        owner: UserId,
        id: uuid::Uuid,
        multipart: Option<&str>,
    ) -> Result<(), BlobError> {
        if let (Some(store), Some(multipart)) = (&self.multipart, multipart) {
            let blob = BlobId::from_uuid(id).map_err(|e| BlobError::Unexpected(Box::new(e)))?;
            let target = ObjectBlobs::content(owner, blob);
            // Stores answer an unknown or already aborted upload id
            // differently (S3 404, s3s-fs 403, memory a generic error), so
            // no answer can tell "already gone" from a failure: a failure is
            // logged, and the bucket's lifecycle rule for incomplete
            // multipart uploads removes what stays.
            if let Err(e) = store.abort_multipart(&target, &multipart.to_owned()).await {
                tracing::warn!(error = %e, "aborting a multipart upload failed (or it was gone)");
            }
        }
        self.clear_folder(&Self::folder_of(owner, id)).await
    }
}
