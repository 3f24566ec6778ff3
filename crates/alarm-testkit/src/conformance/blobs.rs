//! Conformance checks of [`alarm_domain::ports::BlobStore`].

use super::*;

/// [`alarm_domain::ports::BlobStore`]. `new_store(limit)` must return an
/// empty store refusing blobs over `limit` bytes.
async fn blob_store(new_store: FreshBlobs) {
    use alarm_domain::ids::BlobId;
    use alarm_domain::ports::{BlobError, BlobMeta};
    let store = new_store(1024).await;
    let (ana, bob) = (UserId::generate(), UserId::generate());
    let meta = |id, owner, size| BlobMeta {
        id,
        owner,
        content_type: "audio/mpeg".to_owned(),
        size,
        created_at: t0(),
    };
    let id = BlobId::generate();
    store
        .put(meta(id, ana, 3), vec![1, 2, 3])
        .await
        .expect("put");
    let (got, bytes) = store.get(ana, id).await.expect("get");
    assert_eq!(
        (got.content_type.as_str(), got.size, bytes),
        ("audio/mpeg", 3, vec![1, 2, 3])
    );
    assert!(
        matches!(store.get(bob, id).await, Err(BlobError::NotFound)),
        "another owner's blob is not found"
    );
    assert!(
        matches!(store.delete(bob, id).await, Err(BlobError::NotFound)),
        "… nor deletable"
    );
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
    store.delete(ana, id).await.expect("delete");
    assert!(matches!(store.get(ana, id).await, Err(BlobError::NotFound)));
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Blobs: blob_store)
}
