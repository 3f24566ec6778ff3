//! Against a real S3-compatible server (s3s-fs, SigV4 checked): wrong credentials are refused and store nothing; a server that is down is a failure, never "not found".
//!
//! Without s3s-fs (and not under `CI=true`) the trials are counted as
//! skipped (ignored), never as passed.

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::ports::{BlobError, BlobMeta, BlobStore, ByteStream};
use alarm_storage::testing::{S3Server, s3_unavailable};
use alarm_storage::{Backend, ObjectBlobs};

fn meta(owner: UserId) -> BlobMeta {
    BlobMeta {
        id: BlobId::generate(),
        owner,
        content_type: "audio/ogg".into(),
        size: 4,
        created_at: Timestamp::UNIX_EPOCH,
    }
}

fn body() -> ByteStream {
    ByteStream::from_bytes(Bytes::from_static(b"OggS"))
}

fn blobs(settings: alarm_storage::S3Settings) -> ObjectBlobs {
    ObjectBlobs::new(Backend::S3(settings).open().expect("open"), 1 << 20)
}

async fn wrong_credentials_are_refused_and_store_nothing() {
    let server = S3Server::start();
    let ana = UserId::generate();
    let wrong = blobs(server.settings_with_secret("not-the-secret-key-at-all"));
    let meta = meta(ana);
    let refused = wrong.put(meta.clone(), body()).await;
    assert!(
        matches!(refused, Err(BlobError::Unexpected(_))),
        "a bad signature is refused: {refused:?}"
    );
    let right = blobs(server.settings());
    assert!(matches!(
        right.head(ana, meta.id).await,
        Err(BlobError::NotFound)
    ));
    let stored = right
        .put(meta.clone(), body())
        .await
        .expect("the right key stores");
    assert_eq!(stored.size, 4);
    assert!(
        matches!(
            wrong.head(ana, meta.id).await,
            Err(BlobError::Unexpected(_))
        ),
        "nor can the wrong key read"
    );
}

async fn a_server_that_is_down_is_a_failure_not_a_missing_blob() {
    let mut server = S3Server::start();
    let ana = UserId::generate();
    let store = blobs(server.settings());
    let meta = meta(ana);
    store.put(meta.clone(), body()).await.expect("put");
    server.stop();
    assert!(
        matches!(
            store.head(ana, meta.id).await,
            Err(BlobError::Unexpected(_))
        ),
        "down is not missing"
    );
    assert!(matches!(
        store.put(self::meta(ana), body()).await,
        Err(BlobError::Unexpected(_))
    ));
    server.restart();
    let (got, bytes) = store.get(ana, meta.id, None).await.expect("back up");
    assert_eq!(got.size, 4);
    assert_eq!(bytes.collect(16).await.expect("read"), b"OggS");
}

fn main() {
    let skipped = s3_unavailable();
    if let Some(why) = &skipped {
        eprintln!("s3 trials skipped: {why}");
    }
    let trial = |name: &str, check: fn() -> std::pin::Pin<Box<dyn Future<Output = ()>>>| {
        libtest_mimic::Trial::test(name, move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(check());
            Ok(())
        })
        .with_ignored_flag(skipped.is_some())
    };
    let trials = vec![
        trial("wrong_credentials_are_refused_and_store_nothing", || {
            Box::pin(wrong_credentials_are_refused_and_store_nothing())
        }),
        trial(
            "a_server_that_is_down_is_a_failure_not_a_missing_blob",
            || Box::pin(a_server_that_is_down_is_a_failure_not_a_missing_blob()),
        ),
    ];
    libtest_mimic::run(&libtest_mimic::Arguments::from_args(), trials).exit();
}
