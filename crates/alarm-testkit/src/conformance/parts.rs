//! Conformance checks of [`alarm_domain::ports::PartStore`].
//!
//! `fresh()` must return an empty part store and the blob store its
//! completed uploads become blobs of.

use super::*;

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::{BlobId, UploadId};
use alarm_domain::jiff::SignedDuration;
use alarm_domain::model::{UPLOAD_PART_BYTES, Upload, UploadFile, UploadPart};
use alarm_domain::ports::{BlobError, BlobMeta, PartStore};

fn upload(length: u64) -> Upload {
    Upload::new(
        UploadId::generate(),
        UserId::generate(),
        length,
        UploadFile::new("wake.ogg", "audio/ogg").expect("file"),
        t0(),
        SignedDuration::from_hours(24),
    )
    .expect("upload")
}

fn meta(u: &Upload) -> BlobMeta {
    BlobMeta {
        id: BlobId::from_uuid(u.id.as_uuid()).expect("v7"),
        owner: u.owner,
        content_type: u.file.content_type().to_owned(),
        size: u.length,
        created_at: t0(),
    }
}

/// `n` bytes of part `number`: every byte says which part it is in.
fn bytes(number: u32, n: u64) -> Bytes {
    let fill = u8::try_from(number % 251).unwrap_or(0);
    Bytes::from(vec![fill; usize::try_from(n).unwrap_or(0)])
}

/// Stores `sizes` as parts 1, 2, … and records them in `u`.
async fn store_parts(parts: &dyn PartStore, u: &mut Upload, sizes: &[u64]) {
    let multipart = parts.begin(u).await.expect("begin");
    u.multipart = Some(multipart.clone());
    for (size, number) in sizes.iter().zip(1..) {
        let tag = parts
            .put_part(u, &multipart, number, bytes(number, *size))
            .await
            .expect("part");
        u.parts.push(UploadPart {
            number,
            size: *size,
            tag,
        });
    }
}

async fn read(blobs: &dyn alarm_domain::ports::BlobStore, u: &Upload) -> Vec<u8> {
    let (_, body) = blobs
        .get(
            u.owner,
            BlobId::from_uuid(u.id.as_uuid()).expect("v7"),
            None,
        )
        .await
        .expect("the completed blob");
    body.collect(u64::MAX).await.expect("read")
}

/// Whole parts and a short last one complete into the blob, byte for
/// byte, readable through the blob port under the upload's id.
async fn parts_complete_into_a_blob(fresh: FreshParts) {
    let (parts, blobs) = fresh().await;
    let mut u = upload(2 * UPLOAD_PART_BYTES + 100);
    store_parts(
        &*parts,
        &mut u,
        &[UPLOAD_PART_BYTES, UPLOAD_PART_BYTES, 100],
    )
    .await;
    let stored = parts.complete(&u, meta(&u)).await.expect("complete");
    assert_eq!(stored.size, u.length);
    let got = read(&*blobs, &u).await;
    let expected: Vec<u8> = [(1, UPLOAD_PART_BYTES), (2, UPLOAD_PART_BYTES), (3, 100)]
        .into_iter()
        .flat_map(|(n, size)| bytes(n, size).to_vec())
        .collect();
    assert!(got == expected, "the blob is the parts in order");
}

/// A part stored again replaces the earlier one; completion uses the
/// tags it is given.
async fn a_resent_part_replaces_the_earlier_one(fresh: FreshParts) {
    let (parts, blobs) = fresh().await;
    let mut u = upload(10);
    let multipart = parts.begin(&u).await.expect("begin");
    u.multipart = Some(multipart.clone());
    parts
        .put_part(&u, &multipart, 1, Bytes::from_static(b"first-try!"))
        .await
        .expect("first");
    let tag = parts
        .put_part(&u, &multipart, 1, Bytes::from_static(b"second-try"))
        .await
        .expect("again");
    u.parts.push(UploadPart {
        number: 1,
        size: 10,
        tag,
    });
    parts.complete(&u, meta(&u)).await.expect("complete");
    assert_eq!(read(&*blobs, &u).await, b"second-try");
}

/// An empty upload completes into an empty blob.
async fn an_empty_upload_completes(fresh: FreshParts) {
    let (parts, blobs) = fresh().await;
    let u = upload(0);
    parts.complete(&u, meta(&u)).await.expect("complete");
    assert!(read(&*blobs, &u).await.is_empty());
}

/// The tail the state names is read back; one written by a PATCH that
/// did not commit replaces nothing; no tail reads as empty.
async fn the_tail_the_state_names_is_read(fresh: FreshParts) {
    let (parts, _blobs) = fresh().await;
    let u = upload(100);
    assert!(parts.tail(&u).await.expect("none yet").is_empty());
    parts
        .put_tail(&u, 0, Bytes::from_static(b"abc"))
        .await
        .expect("tail");
    let three = Upload {
        tail: 3,
        ..u.clone()
    };
    assert_eq!(parts.tail(&three).await.expect("tail"), &b"abc"[..]);
    parts
        .put_tail(&u, 0, Bytes::from_static(b"abcdef"))
        .await
        .expect("a longer one, not committed");
    assert_eq!(
        parts.tail(&three).await.expect("tail"),
        &b"abc"[..],
        "the named tail is untouched"
    );
    let six = Upload { tail: 6, ..u };
    assert_eq!(parts.tail(&six).await.expect("tail"), &b"abcdef"[..]);
}

/// An aborted upload leaves no tail and cannot complete; aborting twice
/// is no error.
async fn abort_drops_parts_and_tail(fresh: FreshParts) {
    let (parts, blobs) = fresh().await;
    let mut u = upload(UPLOAD_PART_BYTES + 5);
    store_parts(&*parts, &mut u, &[UPLOAD_PART_BYTES]).await;
    parts
        .put_tail(&u, UPLOAD_PART_BYTES, Bytes::from_static(b"tail!"))
        .await
        .expect("tail");
    u.tail = 5;
    parts.tail(&u).await.expect("the tail is kept");
    parts.abort(&u).await.expect("abort");
    parts.abort(&u).await.expect("again");
    assert!(parts.tail(&u).await.is_err(), "the tail is gone");
    u.tail = 0;
    u.parts.push(UploadPart {
        number: 2,
        size: 5,
        tag: "never-stored".into(),
    });
    assert!(parts.complete(&u, meta(&u)).await.is_err());
    assert!(matches!(
        blobs
            .head(u.owner, BlobId::from_uuid(u.id.as_uuid()).expect("v7"))
            .await,
        Err(BlobError::NotFound)
    ));
}

/// Completion drops the parts and every tail.
async fn completion_drops_what_waited(fresh: FreshParts) {
    let (parts, _blobs) = fresh().await;
    let mut u = upload(4);
    let early = u.clone();
    parts
        .put_tail(&early, 0, Bytes::from_static(b"ab"))
        .await
        .expect("a tail of an earlier PATCH");
    store_parts(&*parts, &mut u, &[4]).await;
    parts.complete(&u, meta(&u)).await.expect("complete");
    let named = Upload { tail: 2, ..early };
    assert!(parts.tail(&named).await.is_err(), "no tail is left");
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Parts:
        parts_complete_into_a_blob,
        a_resent_part_replaces_the_earlier_one,
        an_empty_upload_completes,
        the_tail_the_state_names_is_read,
        abort_drops_parts_and_tail,
        completion_drops_what_waited,
    )
}
