//! Resumable uploads on real components: the state in SQLite or PostgreSQL, the bytes in a real S3 server (s3s-fs); an upload resumes after its client is cut off and after the service restarts, a PATCH that meets a stopped S3 server loses nothing, and with a spool in front the upload moves there and is pushed once the server is back.

use std::sync::Arc;

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::BlobId;
use alarm_domain::model::{Upload, UploadFile};
use alarm_domain::ports::{BlobError, BlobStore, ByteStream};
use alarm_domain::services::{Patch, Patched, UploadError, UploadService};
use alarm_storage::testing::{S3Server, s3_unavailable};
use alarm_storage::{Backend, ObjectParts, Spool};
use libtest_mimic::Trial;
use sha2::{Digest, Sha256};

use crate::engine::World;

/// A service over the world's database and a fresh client of `server`:
/// what a restarted process builds.
fn service(w: &World, server: &S3Server) -> (UploadService, Arc<dyn BlobStore>) {
    let opened = Backend::S3(server.settings())
        .open_with_multipart()
        .expect("open");
    let parts = ObjectParts::new(opened, u64::MAX);
    let blobs = parts.blob_store();
    let service = UploadService::new(w.ports.clone().with_storage(blobs.clone(), Arc::new(parts)));
    (service, blobs)
}

/// A WAV file of `n` bytes: its header, then a pattern.
fn wav(n: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..n).map(|i| (i * 31 % 253) as u8).collect();
    bytes[..12].copy_from_slice(b"RIFF\x24\x08\0\0WAVE");
    bytes
}

fn body(bytes: &[u8]) -> ByteStream {
    ByteStream::from_chunks(
        bytes
            .chunks(256 * 1024)
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

async fn sha_of(blobs: &dyn BlobStore, upload: &Upload) -> [u8; 32] {
    let id = BlobId::from_uuid(upload.id.as_uuid()).expect("v7");
    let (_, body) = blobs.get(upload.owner, id, None).await.expect("blob");
    Sha256::digest(body.collect(u64::MAX).await.expect("read")).into()
}

/// Files left under the server's `uploads/` folder.
fn leftovers(server: &S3Server) -> usize {
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() { count(&path) } else { 1 }
                })
                .sum()
        })
    }
    count(
        &server
            .root()
            .join(alarm_storage::testing::BUCKET)
            .join("uploads"),
    )
}

/// 12 MiB: the client is cut off after 7 MiB, the service restarts (a
/// new S3 client, the same database), `HEAD` says 7 MiB, the rest is sent
/// and the sound is byte-identical.
async fn an_upload_resumes_after_a_cut_off_and_a_restart(w: &World) {
    let server = S3Server::start();
    let ana = w.user("ana@example.com").await;
    let data = wav(12 * 1024 * 1024 + 99);
    let file = UploadFile::new("alarm.wav", "audio/wav").expect("file");
    let upload = {
        let (first, _) = service(w, &server);
        let upload = first
            .create(ana.user, data.len() as u64, file)
            .await
            .expect("create");
        let arrived = 7 * 1024 * 1024;
        let cut = ByteStream::from_chunks(vec![
            Ok(Bytes::copy_from_slice(&data[..arrived])),
            Err(BlobError::Interrupted("the client went away".into())),
        ]);
        let got = first.patch(ana.user, upload.id, at(0), cut).await;
        assert!(
            matches!(got, Err(UploadError::Interrupted { offset }) if offset == arrived as u64),
            "{got:?}"
        );
        upload
    };
    let (second, blobs) = service(w, &server);
    let head = second.get(ana.user, upload.id).await.expect("head");
    assert_eq!(
        head.offset(),
        7 * 1024 * 1024,
        "the restart kept the offset"
    );
    let done = second
        .patch(
            ana.user,
            upload.id,
            at(head.offset()),
            body(&data[7 * 1024 * 1024..]),
        )
        .await
        .expect("the rest");
    let Patched::Complete(sound) = done else {
        panic!("complete: {done:?}");
    };
    assert_eq!(sound.content_type, "audio/wav");
    assert_eq!(
        sha_of(&*blobs, &upload).await,
        <[u8; 32]>::from(Sha256::digest(&data)),
        "byte-identical"
    );
    assert_eq!(leftovers(&server), 0, "no part or tail is left");
}

/// The S3 server stops between two PATCHes: the second fails and changes
/// nothing; once the server is back it is sent again and the upload
/// completes byte-identical.
async fn a_stopped_s3_server_fails_a_patch_and_loses_nothing(w: &World) {
    let mut server = S3Server::start();
    let ana = w.user("ana@example.com").await;
    let data = wav(11 * 1024 * 1024);
    let (uploads, blobs) = service(w, &server);
    let upload = uploads
        .create(
            ana.user,
            data.len() as u64,
            UploadFile::new("alarm.wav", "audio/wav").expect("file"),
        )
        .await
        .expect("create");
    let half = 6 * 1024 * 1024;
    uploads
        .patch(ana.user, upload.id, at(0), body(&data[..half]))
        .await
        .expect("first half");
    server.stop();
    let down = uploads
        .patch(ana.user, upload.id, at(half as u64), body(&data[half..]))
        .await;
    assert!(matches!(down, Err(UploadError::Blob(_))), "{down:?}");
    assert_eq!(
        uploads
            .get(ana.user, upload.id)
            .await
            .expect("head")
            .offset(),
        half as u64,
        "nothing was committed"
    );
    server.restart();
    uploads
        .patch(ana.user, upload.id, at(half as u64), body(&data[half..]))
        .await
        .expect("again, with the server back");
    assert_eq!(
        sha_of(&*blobs, &upload).await,
        <[u8; 32]>::from(Sha256::digest(&data))
    );
}

/// A service whose part and blob store is a spool (in `dir`) in front of
/// `server`: what alarm-http builds for an S3 backend.
fn spooled(w: &World, server: &S3Server, dir: &std::path::Path) -> (UploadService, Arc<Spool>) {
    let opened = Backend::S3(server.settings())
        .open_with_multipart()
        .expect("open");
    let spool =
        Arc::new(Spool::new(ObjectParts::new(opened, u64::MAX), dir, u64::MAX).expect("spool"));
    let service = UploadService::new(w.ports.clone().with_storage(spool.clone(), spool.clone()));
    (service, spool)
}

/// The S3 server stops mid-way through an 11 MiB upload: the PATCH that
/// meets it moves the upload to the spool (503-worthy `Restarted`, `HEAD`
/// then says 0) and the resent bytes complete it there; an upload begun
/// while the server is down goes to the spool without an error, and one
/// spooled here but resumed through another instance moves again. Both
/// sounds are readable from the spool, survive a restart of the process
/// (a new spool over the same folder), and once the server is back the
/// pusher moves them into it byte-identical, leaving nothing behind.
async fn a_stopped_s3_server_sends_uploads_to_the_spool_until_it_is_back(w: &World) {
    let mut server = S3Server::start();
    let dir = std::env::temp_dir().join(format!("alarm-it-spool-{}", uuid::Uuid::now_v7()));
    let ana = w.user("ana@example.com").await;
    let data = wav(11 * 1024 * 1024);
    let file = || UploadFile::new("alarm.wav", "audio/wav").expect("file");
    let half = 6 * 1024 * 1024;
    let (moved, small) = {
        let (uploads, spool) = spooled(w, &server, &dir);
        let moved = uploads
            .create(ana.user, data.len() as u64, file())
            .await
            .expect("create");
        uploads
            .patch(ana.user, moved.id, at(0), body(&data[..half]))
            .await
            .expect("first half, into S3");
        server.stop();
        let down = uploads
            .patch(ana.user, moved.id, at(half as u64), body(&data[half..]))
            .await;
        assert!(matches!(down, Err(UploadError::Restarted)), "{down:?}");
        let state = uploads.get(ana.user, moved.id).await.expect("head");
        assert_eq!(state.offset(), 0, "the client resends from 0");
        assert!(
            state
                .multipart
                .as_deref()
                .is_some_and(|m| m.starts_with("spool:")),
            "{state:?}"
        );
        uploads
            .patch(ana.user, moved.id, at(0), body(&data[..half]))
            .await
            .expect("resent first half, into the spool");
        let done = uploads
            .patch(ana.user, moved.id, at(half as u64), body(&data[half..]))
            .await
            .expect("the rest");
        assert!(matches!(done, Patched::Complete(_)), "{done:?}");

        // Begun while the server is down: nothing to lose, no error.
        let small_data = wav(3 * 1024 * 1024 + 5);
        let small = uploads
            .create(ana.user, small_data.len() as u64, file())
            .await
            .expect("create while down");
        let done = uploads
            .patch(ana.user, small.id, at(0), body(&small_data))
            .await
            .expect("one PATCH, straight into the spool");
        assert!(matches!(done, Patched::Complete(_)), "{done:?}");

        // Spooled on this instance, resumed on another: it moves again,
        // into the other's spool, and starts over there.
        let third = uploads
            .create(ana.user, small_data.len() as u64, file())
            .await
            .expect("create while down");
        uploads
            .patch(ana.user, third.id, at(0), body(&small_data[..1024 * 1024]))
            .await
            .expect("a tail, in this spool");
        let other_dir = dir.with_extension("other");
        let (other, other_spool) = spooled(w, &server, &other_dir);
        let there = other
            .patch(
                ana.user,
                third.id,
                at(1024 * 1024),
                body(&small_data[1024 * 1024..]),
            )
            .await;
        assert!(matches!(there, Err(UploadError::Restarted)), "{there:?}");
        let state = other.get(ana.user, third.id).await.expect("head");
        assert_eq!(state.offset(), 0);
        assert!(
            state
                .multipart
                .as_deref()
                .is_some_and(|m| m.starts_with(&format!("spool:{}:", other_spool.instance()))),
            "{state:?}"
        );
        other.delete(ana.user, third.id).await.expect("cancelled");
        let _ = std::fs::remove_dir_all(&other_dir);

        assert_eq!(spool.pending().await.expect("pending"), 2);
        assert_eq!(
            sha_of(&*spool, &moved).await,
            <[u8; 32]>::from(Sha256::digest(&data)),
            "served from the spool while S3 is down"
        );
        assert!(spool.push().await.is_err(), "nothing can be pushed yet");
        (moved, (small, small_data))
    };
    // A restart in between: a new process finds the same spool.
    let (_, spool) = spooled(w, &server, &dir);
    assert_eq!(spool.pending().await.expect("pending"), 2, "nothing lost");
    server.restart();
    let pushed = spool.push().await.expect("pushed");
    assert_eq!((pushed.pushed, pushed.pending), (2, 0));
    assert_eq!(spool.pending().await.expect("pending"), 0);
    let opened = Backend::S3(server.settings()).open().expect("open");
    let remote = alarm_storage::ObjectBlobs::new(opened, u64::MAX);
    assert_eq!(
        sha_of(&remote, &moved).await,
        <[u8; 32]>::from(Sha256::digest(&data)),
        "byte-identical in S3"
    );
    assert_eq!(
        sha_of(&remote, &small.0).await,
        <[u8; 32]>::from(Sha256::digest(&small.1))
    );
    assert_eq!(
        leftovers(&server),
        0,
        "the moved upload's part and tail in S3 were removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

type Scenario = fn(&World) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>;

/// Each scenario on both databases; ignored (counted as skipped) where no
/// S3 server or no PostgreSQL can run.
pub(crate) fn trials() -> Vec<Trial> {
    let scenarios: [(&str, Scenario); 3] = [
        ("an_upload_resumes_after_a_cut_off_and_a_restart", |w| {
            Box::pin(an_upload_resumes_after_a_cut_off_and_a_restart(w))
        }),
        ("a_stopped_s3_server_fails_a_patch_and_loses_nothing", |w| {
            Box::pin(a_stopped_s3_server_fails_a_patch_and_loses_nothing(w))
        }),
        (
            "a_stopped_s3_server_sends_uploads_to_the_spool_until_it_is_back",
            |w| Box::pin(a_stopped_s3_server_sends_uploads_to_the_spool_until_it_is_back(w)),
        ),
    ];
    let no_s3 = s3_unavailable();
    if let Some(why) = &no_s3 {
        eprintln!("uploads scenarios skipped: {why}");
    }
    let mut trials = Vec::new();
    for (name, scenario) in scenarios {
        for postgres in [false, true] {
            let db = if postgres { "postgres" } else { "sqlite" };
            let label = format!("{name}-{db}");
            let skipped = no_s3.is_some()
                || (postgres && crate::POSTGRES_SKIPPED.get().is_some_and(Option::is_some));
            trials.push(
                Trial::test(format!("uploads::{name}::{db}"), move || {
                    crate::block_on(async move {
                        if let Some(w) = World::new(postgres, &label).await {
                            scenario(&w).await;
                            w.close().await;
                        }
                    });
                    Ok(())
                })
                .with_ignored_flag(skipped),
            );
        }
    }
    trials
}
