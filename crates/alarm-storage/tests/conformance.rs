//! The object store adapter passes the blob port's conformance checks on every backend that runs here: memory, the local file system, and S3 against a real `s3s-fs` server.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::model::Upload;
use alarm_domain::ports::{BlobError, BlobMeta, BlobStore, ByteStream, PartStore};
use alarm_storage::testing::{S3Server, s3_unavailable};
use alarm_storage::{Backend, ObjectBlobs, ObjectParts, Spool};
use alarm_testkit::conformance::{self, Subject};
use async_trait::async_trait;

/// Blobs holding what they live on (a server, a directory) until the
/// check drops them.
struct Holding<T> {
    blobs: Arc<dyn BlobStore>,
    _guard: T,
}

/// A directory removed on drop.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[async_trait]
impl<T: Send + Sync> BlobStore for Holding<T> {
    async fn put(&self, meta: BlobMeta, body: ByteStream) -> Result<BlobMeta, BlobError> {
        self.blobs.put(meta, body).await
    }

    async fn head(&self, owner: UserId, id: BlobId) -> Result<BlobMeta, BlobError> {
        self.blobs.head(owner, id).await
    }

    async fn get(
        &self,
        owner: UserId,
        id: BlobId,
        range: Option<Range<u64>>,
    ) -> Result<(BlobMeta, ByteStream), BlobError> {
        self.blobs.get(owner, id, range).await
    }

    async fn delete(&self, owner: UserId, id: BlobId) -> Result<(), BlobError> {
        self.blobs.delete(owner, id).await
    }
}

/// Part stores over `backend`, whose completed blobs are read through the
/// same store; `guard` lives as long as both.
fn parts<T: Send + Sync + 'static>(
    backend: &Backend,
    guard: T,
) -> (Arc<dyn PartStore>, Arc<dyn BlobStore>) {
    let parts = ObjectParts::new(backend.open_with_multipart().expect("open"), u64::MAX);
    let blobs = Arc::new(Holding {
        blobs: Arc::new(ObjectBlobs::new(parts.store().clone(), u64::MAX)),
        _guard: guard,
    });
    (
        Arc::new(parts) as Arc<dyn PartStore>,
        blobs as Arc<dyn BlobStore>,
    )
}

/// A fresh directory of its own (and its guard).
fn fresh_dir() -> (std::path::PathBuf, Dir) {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "alarm-storage-local-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    (dir.clone(), Dir(dir))
}

/// A spool in front of an in-memory "remote" store, in a fresh folder.
fn spool(limit: u64) -> (Arc<Spool>, Dir) {
    let (dir, guard) = fresh_dir();
    let remote = ObjectParts::new(Backend::Memory.open_with_multipart().expect("open"), limit);
    (
        Arc::new(Spool::new(remote, &dir, limit).expect("spool")),
        guard,
    )
}

/// The spool as a part store whose every upload is recorded as moved to
/// it (the multipart id a move gives): the checks run on the spooled path.
struct Moved(Arc<Spool>);

impl Moved {
    /// The upload as recorded once moved to this instance's spool.
    fn moved(&self, upload: &Upload) -> Upload {
        let mut u = upload.clone();
        u.multipart = Some(self.id());
        u
    }

    fn id(&self) -> String {
        format!("spool:{}:parts-as-objects", self.0.instance())
    }
}

#[async_trait]
impl PartStore for Moved {
    async fn begin(&self, _: &Upload) -> Result<String, BlobError> {
        Ok(self.id())
    }
    async fn put_part(
        &self,
        upload: &Upload,
        multipart: &str,
        number: u32,
        bytes: Bytes,
    ) -> Result<String, BlobError> {
        self.0
            .put_part(&self.moved(upload), multipart, number, bytes)
            .await
    }
    async fn put_tail(&self, upload: &Upload, start: u64, bytes: Bytes) -> Result<(), BlobError> {
        self.0.put_tail(&self.moved(upload), start, bytes).await
    }
    async fn tail(&self, upload: &Upload) -> Result<Bytes, BlobError> {
        self.0.tail(&self.moved(upload)).await
    }
    async fn complete(&self, upload: &Upload, meta: BlobMeta) -> Result<BlobMeta, BlobError> {
        self.0.complete(&self.moved(upload), meta).await
    }
    async fn abort(&self, upload: &Upload) -> Result<(), BlobError> {
        self.0.abort(&self.moved(upload)).await
    }
}

fn main() {
    let memory = Subject::new("memory")
        .blobs(|limit| async move {
            let store = Backend::Memory.open().expect("open");
            Arc::new(ObjectBlobs::new(store, limit)) as Arc<dyn BlobStore>
        })
        .parts(|| async { parts(&Backend::Memory, ()) });
    let local = Subject::new("local")
        .blobs(|limit| async move {
            let (dir, guard) = fresh_dir();
            let store = Backend::Local { dir }.open().expect("open");
            Arc::new(Holding {
                blobs: Arc::new(ObjectBlobs::new(store, limit)),
                _guard: guard,
            }) as Arc<dyn BlobStore>
        })
        .parts(|| async {
            let (dir, guard) = fresh_dir();
            parts(&Backend::Local { dir }, guard)
        });
    let s3 = Subject::new("s3")
        .blobs(|limit| async move {
            let server = S3Server::start();
            let store = Backend::S3(server.settings()).open().expect("open");
            Arc::new(Holding {
                blobs: Arc::new(ObjectBlobs::new(store, limit)),
                _guard: server,
            }) as Arc<dyn BlobStore>
        })
        .parts(|| async {
            let server = S3Server::start();
            let backend = Backend::S3(server.settings());
            parts(&backend, server)
        });
    // The spool: passing through to the remote store, and with every
    // upload moved into it (completed there, read back through it).
    let spooled = Subject::new("spool")
        .blobs(|limit| async move {
            let (spool, guard) = spool(limit);
            Arc::new(Holding {
                blobs: spool,
                _guard: guard,
            }) as Arc<dyn BlobStore>
        })
        .parts(|| async {
            let (spool, guard) = spool(u64::MAX);
            let blobs = Arc::new(Holding {
                blobs: spool.clone(),
                _guard: guard,
            });
            (spool as Arc<dyn PartStore>, blobs as Arc<dyn BlobStore>)
        });
    let moved_in = Subject::new("spool-moved").parts(|| async {
        let (spool, guard) = spool(u64::MAX);
        let blobs = Arc::new(Holding {
            blobs: spool.clone(),
            _guard: guard,
        });
        (
            Arc::new(Moved(spool)) as Arc<dyn PartStore>,
            blobs as Arc<dyn BlobStore>,
        )
    });
    let s3 = match s3_unavailable() {
        Some(why) => s3.skipped(why),
        None => s3,
    };
    conformance::run_all(vec![memory, local, spooled, moved_in, s3]);
}
