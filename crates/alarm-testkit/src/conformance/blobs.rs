//! Conformance checks of [`alarm_domain::ports::BlobStore`].
//!
//! `new_store(limit)` must return an empty store refusing blobs over
//! `limit` bytes.

use super::*;

use alarm_domain::ids::BlobId;
use alarm_domain::ports::{BlobError, BlobMeta};

fn meta(id: BlobId, owner: UserId, size: u64) -> BlobMeta {
    BlobMeta {
        id,
        owner,
        content_type: "audio/mpeg".to_owned(),
        size,
        created_at: t0(),
    }
}

/// A store refusing blobs over 1024 bytes, holding Ana's three-byte blob.
async fn anas_blob(new_store: &FreshBlobs) -> (Arc<dyn BlobStore>, UserId, BlobId) {
    let store = new_store(1024).await;
    let ana = UserId::generate();
    let id = BlobId::generate();
    store
        .put(meta(id, ana, 3), vec![1, 2, 3])
        .await
        .expect("put");
    (store, ana, id)
}

/// A stored blob is read back by its owner with its metadata and bytes.
async fn a_stored_blob_is_read_back(new_store: FreshBlobs) {
    let (store, ana, id) = anas_blob(&new_store).await;
    let (got, bytes) = store.get(ana, id).await.expect("get");
    assert_eq!(
        (got.content_type.as_str(), got.size, bytes),
        ("audio/mpeg", 3, vec![1, 2, 3])
    );
}

/// Another owner's blob is neither found nor deletable.
async fn another_owners_blob_is_not_found(new_store: FreshBlobs) {
    let (store, ana, id) = anas_blob(&new_store).await;
    let bob = UserId::generate();
    assert!(
        matches!(store.get(bob, id).await, Err(BlobError::NotFound)),
        "another owner's blob is not found"
    );
    assert!(
        matches!(store.delete(bob, id).await, Err(BlobError::NotFound)),
        "… nor deletable"
    );
    store
        .get(ana, id)
        .await
        .expect("the owner's blob survives another owner's delete");
}

/// A blob over the limit is refused as too large, and not stored.
async fn a_blob_over_the_limit_is_refused(new_store: FreshBlobs) {
    let (store, ana, _) = anas_blob(&new_store).await;
    let big = BlobId::generate();
    assert!(matches!(
        store.put(meta(big, ana, 2048), vec![0; 2048]).await,
        Err(BlobError::TooLarge {
            size: 2048,
            limit: 1024
        })
    ));
    assert!(
        matches!(store.get(ana, big).await, Err(BlobError::NotFound)),
        "a refused blob is not stored"
    );
}

/// The owner's deletion removes the blob.
async fn delete_removes_the_blob(new_store: FreshBlobs) {
    let (store, ana, id) = anas_blob(&new_store).await;
    store.delete(ana, id).await.expect("delete");
    assert!(matches!(store.get(ana, id).await, Err(BlobError::NotFound)));
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Blobs:
        a_stored_blob_is_read_back,
        another_owners_blob_is_not_found,
        a_blob_over_the_limit_is_refused,
        delete_removes_the_blob,
    )
}
