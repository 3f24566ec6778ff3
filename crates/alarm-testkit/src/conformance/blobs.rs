//! Conformance checks of [`alarm_domain::ports::BlobStore`].
//!
//! `new_store(limit)` must return an empty store refusing blobs over
//! `limit` bytes.

use super::*;

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::BlobId;
use alarm_domain::ports::{BlobError, BlobMeta, ByteStream};

fn meta(id: BlobId, owner: UserId, size: u64) -> BlobMeta {
    BlobMeta {
        id,
        owner,
        content_type: "audio/mpeg".to_owned(),
        size,
        created_at: t0(),
    }
}

fn chunks(parts: &[&[u8]]) -> ByteStream {
    ByteStream::from_chunks(
        parts
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect(),
    )
}

async fn read(body: ByteStream) -> Vec<u8> {
    body.collect(u64::MAX).await.expect("the body reads")
}

/// A store refusing blobs over 1024 bytes, holding Ana's five-byte blob
/// (stored in two chunks).
async fn anas_blob(new_store: &FreshBlobs) -> (Arc<dyn BlobStore>, UserId, BlobId) {
    let store = new_store(1024).await;
    let ana = UserId::generate();
    let id = BlobId::generate();
    let stored = store
        .put(meta(id, ana, 5), chunks(&[&[1, 2, 3], &[4, 5]]))
        .await
        .expect("put");
    assert_eq!(stored.size, 5, "put returns the stored size");
    (store, ana, id)
}

/// A stored blob is read back by its owner with its metadata and bytes.
async fn a_stored_blob_is_read_back(new_store: FreshBlobs) {
    let (store, ana, id) = anas_blob(&new_store).await;
    let (got, body) = store.get(ana, id, None).await.expect("get");
    assert_eq!(
        (
            got.content_type.as_str(),
            got.size,
            got.owner,
            read(body).await
        ),
        ("audio/mpeg", 5, ana, vec![1, 2, 3, 4, 5])
    );
    let head = store.head(ana, id).await.expect("head");
    assert_eq!(head, got, "head tells what get tells");
}

/// A range is served clamped to the end; one outside the blob is refused
/// with the blob's size.
async fn a_range_is_read_clamped_to_the_end(new_store: FreshBlobs) {
    let (store, ana, id) = anas_blob(&new_store).await;
    let (_, body) = store.get(ana, id, Some(1..3)).await.expect("1..3");
    assert_eq!(read(body).await, vec![2, 3]);
    let (_, body) = store.get(ana, id, Some(3..100)).await.expect("3..100");
    assert_eq!(read(body).await, vec![4, 5], "the end is clamped");
    for outside in [5..6, 2..2, 9..20] {
        assert!(
            matches!(
                store.get(ana, id, Some(outside.clone())).await,
                Err(BlobError::RangeNotSatisfiable { size: 5 })
            ),
            "{outside:?} is not satisfiable"
        );
    }
}

/// Another owner's blob is neither found nor deletable.
async fn another_owners_blob_is_not_found(new_store: FreshBlobs) {
    let (store, ana, id) = anas_blob(&new_store).await;
    let bob = UserId::generate();
    assert!(
        matches!(store.get(bob, id, None).await, Err(BlobError::NotFound)),
        "another owner's blob is not found"
    );
    assert!(matches!(
        store.head(bob, id).await,
        Err(BlobError::NotFound)
    ));
    assert!(
        matches!(store.delete(bob, id).await, Err(BlobError::NotFound)),
        "… nor deletable"
    );
    store
        .get(ana, id, None)
        .await
        .expect("the owner's blob survives another owner's delete");
}

/// A blob over the limit is refused as too large, whether its declared
/// size says so or its body passes the limit under a smaller declared size,
/// and nothing of it is stored.
async fn a_blob_over_the_limit_is_refused(new_store: FreshBlobs) {
    let (store, ana, _) = anas_blob(&new_store).await;
    let declared = BlobId::generate();
    assert!(matches!(
        store
            .put(meta(declared, ana, 2048), chunks(&[&[0; 2048]]))
            .await,
        Err(BlobError::TooLarge {
            size: 2048,
            limit: 1024
        })
    ));
    let lying = BlobId::generate();
    let got = store
        .put(
            meta(lying, ana, 10),
            chunks(&[&[0; 600], &[0; 600], &[0; 600]]),
        )
        .await;
    assert!(
        matches!(got, Err(BlobError::TooLarge { size, limit: 1024 }) if size > 1024),
        "a body passing the limit is refused: {got:?}"
    );
    for refused in [declared, lying] {
        assert!(
            matches!(
                store.get(ana, refused, None).await,
                Err(BlobError::NotFound)
            ),
            "a refused blob is not stored"
        );
    }
}

/// A body that fails half-way stores nothing and says it was interrupted.
async fn an_interrupted_body_stores_nothing(new_store: FreshBlobs) {
    let store = new_store(1024).await;
    let ana = UserId::generate();
    let id = BlobId::generate();
    let body = ByteStream::from_chunks(vec![
        Ok(Bytes::from_static(&[7; 100])),
        Err(BlobError::Interrupted("the client went away".into())),
    ]);
    assert!(matches!(
        store.put(meta(id, ana, 200), body).await,
        Err(BlobError::Interrupted(_))
    ));
    assert!(matches!(
        store.head(ana, id).await,
        Err(BlobError::NotFound)
    ));
}

/// The owner's deletion removes the blob.
async fn delete_removes_the_blob(new_store: FreshBlobs) {
    let (store, ana, id) = anas_blob(&new_store).await;
    store.delete(ana, id).await.expect("delete");
    assert!(matches!(
        store.get(ana, id, None).await,
        Err(BlobError::NotFound)
    ));
    assert!(matches!(
        store.head(ana, id).await,
        Err(BlobError::NotFound)
    ));
}

/// The byte at `offset` of the large test blob: a pattern that no part
/// boundary lines up with, so a misplaced part shows.
fn pattern(offset: u64) -> u8 {
    let mixed = offset.wrapping_mul(2_654_435_761) >> 13;
    mixed.to_le_bytes()[0]
}

const LARGE: u64 = 12 * 1024 * 1024 + 12_345;
const PIECE: u64 = 256 * 1024;

/// A blob of several object-store parts (12 MiB: S3 parts are at least
/// 5 MiB) goes in as a stream of small chunks and comes back byte for byte,
/// whole and as a range across a part boundary.
async fn a_large_blob_streams_through(new_store: FreshBlobs) {
    let store = new_store(64 * 1024 * 1024).await;
    let ana = UserId::generate();
    let id = BlobId::generate();
    let pieces = (0..LARGE.div_ceil(PIECE))
        .map(|i| {
            let range = i * PIECE..((i + 1) * PIECE).min(LARGE);
            Ok(range.map(pattern).collect::<Bytes>())
        })
        .collect();
    let stored = store
        .put(meta(id, ana, LARGE), ByteStream::from_chunks(pieces))
        .await
        .expect("put");
    assert_eq!(stored.size, LARGE);
    let (_, mut body) = store.get(ana, id, None).await.expect("get");
    let mut offset = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("a chunk");
        for (i, byte) in chunk.iter().enumerate() {
            assert_eq!(
                *byte,
                pattern(offset + i as u64),
                "byte {}",
                offset + i as u64
            );
        }
        offset += chunk.len() as u64;
    }
    assert_eq!(offset, LARGE, "every byte came back");
    let boundary = 5 * 1024 * 1024;
    let (_, body) = store
        .get(ana, id, Some(boundary - 10..boundary + 10))
        .await
        .expect("a range");
    assert_eq!(
        read(body).await,
        (boundary - 10..boundary + 10)
            .map(pattern)
            .collect::<Vec<_>>()
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Blobs:
        a_stored_blob_is_read_back,
        a_range_is_read_clamped_to_the_end,
        another_owners_blob_is_not_found,
        a_blob_over_the_limit_is_refused,
        an_interrupted_body_stores_nothing,
        delete_removes_the_blob,
        a_large_blob_streams_through,
    )
}
