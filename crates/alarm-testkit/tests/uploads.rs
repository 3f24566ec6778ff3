//! The upload use cases against the in-memory fakes: PATCHes of any size become 5 MiB parts and a tail, a cut-off body keeps what arrived, checksums and offsets are enforced, only audio completes, abandoned uploads are swept.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::limits::Limits;
use alarm_domain::model::{Upload, UploadFile, UploadRefused};
use alarm_domain::ports::{BlobError, BlobStore, ByteStream, Chunk};
use alarm_domain::services::{
    Checksum, Patch, Patched, UPLOAD_TTL, UploadError, UploadService, UploadStatus,
};
use alarm_testkit::{InMemory, InMemoryBlobs, InMemoryParts, ManualClock, SequentialIds};
use sha2::{Digest, Sha256};

struct World {
    ports: alarm_domain::services::Ports,
    clock: Arc<ManualClock>,
    parts: Arc<InMemoryParts>,
    blobs: Arc<InMemoryBlobs>,
    service: Arc<UploadService>,
}

fn world() -> World {
    let clock = Arc::new(ManualClock::new(
        "2026-12-04T12:00:00Z".parse::<Timestamp>().expect("t"),
    ));
    let ids = Arc::new(SequentialIds::new());
    let blobs = Arc::new(InMemoryBlobs::new(u64::MAX));
    let parts = Arc::new(InMemoryParts::new(blobs.clone()));
    let ports = InMemory::new()
        .ports(clock.clone(), ids)
        .with_storage(blobs.clone(), parts.clone())
        .with_limits(Limits {
            uploads_per_user: 3,
            ..Limits::default()
        });
    let service = Arc::new(UploadService::new(ports.clone()));
    World {
        ports,
        clock,
        parts,
        blobs,
        service,
    }
}

/// An Ogg file of `n` bytes: the signature, then a pattern.
fn ogg(n: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    bytes[..4].copy_from_slice(b"OggS");
    bytes
}

fn file() -> UploadFile {
    UploadFile::new("dawn.ogg", "audio/ogg").expect("file")
}

fn body(bytes: &[u8], chunk: usize) -> ByteStream {
    ByteStream::from_chunks(
        bytes
            .chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect(),
    )
}

fn at(offset: u64) -> Patch {
    Patch {
        offset,
        length: None,
        checksum: None,
    }
}

async fn read_blob(w: &World, owner: UserId, u: &Upload) -> Vec<u8> {
    let id = BlobId::from_uuid(u.id.as_uuid()).expect("v7");
    let (_, body) = w.blobs.get(owner, id, None).await.expect("blob");
    body.collect(u64::MAX).await.expect("read")
}

#[tokio::test]
async fn patches_of_any_size_complete_into_the_same_bytes() {
    let w = world();
    let ana = UserId::generate();
    let data = ogg(12 * 1024 * 1024 + 321);
    let u = w
        .service
        .create(ana, data.len() as u64, file())
        .await
        .expect("create");
    // Uneven PATCHes: each ends inside a part, so tails carry over.
    let cuts = [3 * 1024 * 1024 + 5, 4 * 1024 * 1024, data.len()];
    let mut from = 0;
    let mut last = None;
    for to in cuts {
        let patched = w
            .service
            .patch(ana, u.id, at(from as u64), body(&data[from..to], 64 * 1024))
            .await
            .expect("patch");
        from = to;
        last = Some(patched);
    }
    let Some(Patched::Complete(sound)) = last else {
        panic!("the last PATCH completes: {last:?}");
    };
    assert_eq!(
        (
            sound.content_type.as_str(),
            sound.size,
            sound.name.as_str(),
            sound.id.as_uuid()
        ),
        ("audio/ogg", data.len() as u64, "dawn.ogg", u.id.as_uuid())
    );
    assert!(read_blob(&w, ana, &u).await == data, "byte-identical");
    let id = BlobId::from_uuid(u.id.as_uuid()).expect("v7");
    assert_eq!(
        w.blobs.head(ana, id).await.expect("head").content_type,
        "application/octet-stream",
        "the blob's record never carries a declared type: the sound has the sniffed one"
    );
    assert_eq!(w.parts.waiting(), 0, "nothing waits after completion");
    assert_eq!(
        w.service.status(ana, u.id).await.expect("status"),
        UploadStatus::Done(sound),
        "the upload answers as the sound it became"
    );
}

#[tokio::test]
async fn offsets_and_lengths_are_enforced() {
    let w = world();
    let ana = UserId::generate();
    let u = w.service.create(ana, 100, file()).await.expect("create");
    let wrong = w.service.patch(ana, u.id, at(5), body(b"x", 1)).await;
    assert!(matches!(
        wrong,
        Err(UploadError::Refused(UploadRefused::OffsetMismatch {
            claimed: 5,
            actual: 0
        }))
    ));
    let declared = Patch {
        length: Some(101),
        ..at(0)
    };
    assert!(matches!(
        w.service.patch(ana, u.id, declared, body(b"x", 1)).await,
        Err(UploadError::Refused(UploadRefused::PastLength { .. }))
    ));
    let too_long = w.service.patch(ana, u.id, at(0), body(&ogg(150), 10)).await;
    assert!(
        matches!(
            too_long,
            Err(UploadError::Refused(UploadRefused::PastLength { .. }))
        ),
        "a body passing the length is refused while read: {too_long:?}"
    );
    assert_eq!(w.service.get(ana, u.id).await.expect("get").offset(), 0);
    let bob = UserId::generate();
    assert!(matches!(
        w.service.patch(bob, u.id, at(0), body(b"x", 1)).await,
        Err(UploadError::NotFound)
    ));
    assert!(matches!(
        w.service.get(bob, u.id).await,
        Err(UploadError::NotFound)
    ));
    assert!(matches!(
        w.service.delete(bob, u.id).await,
        Err(UploadError::NotFound)
    ));
}

/// A body that ends in a failure: the given bytes, then the client gone.
fn cut_off(bytes: &[u8]) -> ByteStream {
    ByteStream::from_chunks(vec![
        Ok(Bytes::copy_from_slice(bytes)),
        Err(BlobError::Interrupted("the client went away".into())),
    ])
}

#[tokio::test]
async fn a_cut_off_body_keeps_what_arrived_and_resumes_from_there() {
    let w = world();
    let ana = UserId::generate();
    let data = ogg(7 * 1024 * 1024);
    let u = w
        .service
        .create(ana, data.len() as u64, file())
        .await
        .expect("create");
    let arrived = 6 * 1024 * 1024 + 17;
    let cut = w
        .service
        .patch(ana, u.id, at(0), cut_off(&data[..arrived]))
        .await;
    assert!(
        matches!(cut, Err(UploadError::Interrupted { offset }) if offset == arrived as u64),
        "{cut:?}"
    );
    let kept = w.service.get(ana, u.id).await.expect("head");
    assert_eq!(
        (kept.offset(), kept.parts.len(), kept.tail),
        (arrived as u64, 1, 1024 * 1024 + 17)
    );
    w.service
        .patch(ana, u.id, at(arrived as u64), body(&data[arrived..], 4096))
        .await
        .expect("resume");
    assert!(read_blob(&w, ana, &u).await == data);
}

#[tokio::test]
async fn checksums_are_checked_and_a_mismatch_keeps_nothing() {
    let w = world();
    let ana = UserId::generate();
    let data = ogg(1000);
    let u = w.service.create(ana, 1000, file()).await.expect("create");
    let good: [u8; 32] = Sha256::digest(&data[..600]).into();
    let bad = Patch {
        checksum: Some(Checksum::Sha256([0; 32])),
        ..at(0)
    };
    assert!(matches!(
        w.service
            .patch(ana, u.id, bad, body(&data[..600], 100))
            .await,
        Err(UploadError::ChecksumMismatch)
    ));
    assert_eq!(w.service.get(ana, u.id).await.expect("head").offset(), 0);
    let checked = Patch {
        checksum: Some(Checksum::Sha256(good)),
        ..at(0)
    };
    assert!(
        matches!(
            w.service
                .patch(ana, u.id, checked, cut_off(&data[..300]))
                .await,
            Err(UploadError::Interrupted { offset: 0 })
        ),
        "a cut-off body cannot match its checksum: nothing is kept"
    );
    w.service
        .patch(ana, u.id, checked, body(&data[..600], 100))
        .await
        .expect("matching");
    assert_eq!(w.service.get(ana, u.id).await.expect("head").offset(), 600);
}

#[tokio::test]
async fn only_audio_completes() {
    let w = world();
    let ana = UserId::generate();
    let png = b"\x89PNG\r\n\x1a\n0123456789";
    let u = w
        .service
        .create(ana, png.len() as u64, file())
        .await
        .expect("create");
    assert!(matches!(
        w.service.patch(ana, u.id, at(0), body(png, 4)).await,
        Err(UploadError::NotAudio)
    ));
    assert!(matches!(
        w.service.get(ana, u.id).await,
        Err(UploadError::NotFound)
    ));
    let id = BlobId::from_uuid(u.id.as_uuid()).expect("v7");
    assert!(matches!(
        w.blobs.head(ana, id).await,
        Err(BlobError::NotFound)
    ));
}

#[tokio::test]
async fn the_open_upload_quota_holds() {
    let w = world();
    let ana = UserId::generate();
    for _ in 0..3 {
        w.service.create(ana, 10, file()).await.expect("room");
    }
    assert!(matches!(
        w.service.create(ana, 10, file()).await,
        Err(UploadError::OverQuota {
            quota: "uploads_per_user",
            limit: 3
        })
    ));
}

#[tokio::test]
async fn abandoned_uploads_are_swept() {
    let w = world();
    let ana = UserId::generate();
    let data = ogg(6 * 1024 * 1024);
    let old = w
        .service
        .create(ana, data.len() as u64 + 10, file())
        .await
        .expect("old");
    w.service
        .patch(ana, old.id, at(0), body(&data, 1 << 20))
        .await
        .expect("a part and a tail");
    w.clock.advance(UPLOAD_TTL - SignedDuration::from_hours(1));
    let young = w.service.create(ana, 10, file()).await.expect("young");
    w.clock.advance(SignedDuration::from_hours(2));
    assert_eq!(w.service.sweep(10).await.expect("sweep"), 1);
    assert!(matches!(
        w.service.get(ana, old.id).await,
        Err(UploadError::NotFound)
    ));
    w.service.get(ana, young.id).await.expect("kept");
    assert_eq!(w.parts.waiting(), 0, "the old upload's parts are gone");
}

#[tokio::test]
async fn sha1_checksums_are_checked_as_tus_requires() {
    let w = world();
    let ana = UserId::generate();
    let u = w.service.create(ana, 100, file()).await.expect("create");
    // FIPS 180-1's first test vector: SHA-1("abc").
    let abc: [u8; 20] = [
        0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50, 0xc2,
        0x6c, 0x9c, 0xd0, 0xd8, 0x9d,
    ];
    let with = |sum: [u8; 20]| Patch {
        checksum: Some(Checksum::Sha1(sum)),
        ..at(0)
    };
    assert!(matches!(
        w.service
            .patch(ana, u.id, with([0; 20]), body(b"abc", 1))
            .await,
        Err(UploadError::ChecksumMismatch)
    ));
    let kept = w
        .service
        .patch(ana, u.id, with(abc), body(b"abc", 1))
        .await
        .expect("the right digest");
    assert!(matches!(kept, Patched::Partial(ref u) if u.offset() == 3));
}

#[tokio::test]
async fn an_upload_whose_completion_was_cut_short_is_completed_by_the_sweep() {
    use alarm_domain::model::{UploadPart, UploadProgress};
    use alarm_domain::ports::PartStore as _;
    let w = world();
    let ana = UserId::generate();
    let data = ogg(3000);
    let u = w.service.create(ana, 3000, file()).await.expect("create");
    // The last PATCH committed, then the process died before completing:
    // the state says every byte arrived, no blob and no sound exist, and
    // no HEAD ever comes.
    let mp = w.parts.begin(&u).await.expect("begin");
    let record = UploadProgress {
        from_offset: 0,
        multipart: Some(mp.clone()),
        restart: false,
        parts: Vec::new(),
        tail: 0,
        expires_at: u.expires_at,
    };
    let u = w
        .ports
        .uploads
        .advance(ana, u.id, &record)
        .await
        .expect("multipart recorded");
    let tag = w
        .parts
        .put_part(&u, &mp, 1, Bytes::from(data.clone()))
        .await
        .expect("part");
    let last = UploadProgress {
        from_offset: 0,
        multipart: None,
        restart: false,
        parts: vec![UploadPart {
            number: 1,
            size: 3000,
            tag,
        }],
        tail: 0,
        expires_at: u.expires_at,
    };
    let u = w
        .ports
        .uploads
        .advance(ana, u.id, &last)
        .await
        .expect("committed");
    assert!(u.is_complete());
    w.clock.advance(UPLOAD_TTL + SignedDuration::from_hours(1));
    assert_eq!(w.service.sweep(10).await.expect("sweep"), 1);
    let sound = w
        .ports
        .sounds
        .get(ana, BlobId::from_uuid(u.id.as_uuid()).expect("v7"))
        .await
        .expect("the sweep registered its sound, so no blob is left unnamed");
    assert_eq!(
        (sound.content_type.as_str(), sound.size),
        ("audio/ogg", 3000)
    );
    assert!(read_blob(&w, ana, &u).await == data);
    assert!(matches!(
        w.service.get(ana, u.id).await,
        Err(UploadError::NotFound)
    ));
}

/// A body whose chunks arrive when the test sends them.
struct Fed(tokio::sync::mpsc::Receiver<Chunk>);

impl alarm_domain::futures_core::Stream for Fed {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test]
async fn a_second_concurrent_patch_is_refused_while_the_first_writes() {
    let w = world();
    let ana = UserId::generate();
    let u = w.service.create(ana, 100, file()).await.expect("create");
    let (feed, fed) = tokio::sync::mpsc::channel(1);
    let service = w.service.clone();
    let first = tokio::spawn(async move {
        service
            .patch(ana, u.id, at(0), ByteStream::new(Fed(fed)))
            .await
    });
    feed.send(Ok(Bytes::from_static(b"OggS")))
        .await
        .expect("feed");
    // The channel holds one chunk: once this send returns, the first PATCH
    // has taken the previous one, so it is inside its body loop.
    feed.send(Ok(Bytes::from_static(b"more")))
        .await
        .expect("feed");
    assert!(matches!(
        w.service.patch(ana, u.id, at(0), body(b"OggS", 4)).await,
        Err(UploadError::Busy)
    ));
    drop(feed);
    let done = first.await.expect("joined").expect("the first PATCH");
    assert!(matches!(done, Patched::Partial(ref u) if u.offset() == 8));
}

#[tokio::test]
async fn a_connection_lost_after_the_last_byte_still_completes() {
    let w = world();
    let ana = UserId::generate();
    let data = ogg(3000);
    let u = w.service.create(ana, 3000, file()).await.expect("create");
    let done = w.service.patch(ana, u.id, at(0), cut_off(&data)).await;
    assert!(
        matches!(done, Ok(Patched::Complete(..))),
        "all bytes arrived: {done:?}"
    );
    assert!(
        matches!(
            w.service.status(ana, u.id).await.expect("status"),
            UploadStatus::Done(ref s) if s.content_type == "audio/ogg"
        ),
        "asking again is harmless"
    );
}

#[tokio::test]
async fn a_multipart_upload_is_recorded_before_its_parts() {
    let w = world();
    let ana = UserId::generate();
    let data = ogg(6 * 1024 * 1024);
    let u = w
        .service
        .create(ana, data.len() as u64, file())
        .await
        .expect("create");
    let wrong = Patch {
        checksum: Some(Checksum::Sha256([1; 32])),
        ..at(0)
    };
    assert!(matches!(
        w.service
            .patch(ana, u.id, wrong, body(&data, 1 << 20))
            .await,
        Err(UploadError::ChecksumMismatch)
    ));
    let kept = w.service.get(ana, u.id).await.expect("head");
    assert_eq!(kept.offset(), 0, "nothing committed");
    assert!(
        kept.multipart.is_some(),
        "the multipart upload it began is named, so it can be aborted"
    );
    assert!(
        matches!(w.service.status(ana, u.id).await, Ok(UploadStatus::Open(_))),
        "nothing to finish while bytes are missing"
    );
    w.service.delete(ana, u.id).await.expect("delete");
    assert_eq!(w.parts.waiting(), 0, "the delete aborted it");
}
