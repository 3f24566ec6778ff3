//! The spool: a local folder in front of a remote object store that keeps uploads, and the sounds they become, while the store is down, and pushes them to it when it is back.
//!
//! # What goes where
//! * An upload lives in the remote store until the store fails under it.
//!   Then [`PartStore::relocate`] begins it again in the spool (its
//!   multipart id becomes `spool:<id>`, which routes every later call
//!   there) and the domain restarts it from byte 0: the remote store's
//!   parts cannot be read back, so the client resends them (tus clients
//!   do, after a `HEAD`). What the remote store kept of it is removed when
//!   its blob is pushed; a multipart upload begun there is left to the
//!   bucket's lifecycle rule for incomplete multipart uploads.
//! * A spooled upload completes into a blob in the spool, laid out as the
//!   remote store's blobs are (`blobs/<owner>/<id>` and its record
//!   `<id>.json`, written last). That record **is** the durable sync
//!   record: a blob in the spool is a blob not yet pushed, so a restart
//!   finds the same work and nothing needs a second bookkeeping.
//! * Reads look in the spool first, then in the remote store, so a sound
//!   plays while it waits to be pushed. A delete removes both copies.
//! * [`Spool::run`] pushes each spooled blob (streamed, never whole in
//!   memory), removes the remote leftovers of its upload, then the spooled
//!   copy. It wakes when an upload completes into the spool, at start, and
//!   every minute; after a failure it waits an exponential backoff with
//!   jitter (1 s doubling to 5 min), so instances coming back together do
//!   not all push at the same instant.
//!
//! # Limits, said plainly
//! The spool is one process's folder: a sound in it is readable through
//! that process (instance) only until it is pushed, and a spooled upload
//! resumes only on that instance. Files are written by `object_store`'s
//! local store (a temporary file renamed into place) without `fsync`: a
//! process restart loses nothing, a power cut may lose what was spooled
//! in its last seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::model::Upload;
use alarm_domain::ports::{BlobError, BlobMeta, BlobStore, ByteStream, PartStore};
use async_trait::async_trait;
use backon::BackoffBuilder;
use futures_util::TryStreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::{ObjectParts, unexpected};

/// The prefix of a spooled upload's multipart id.
const SPOOLED: &str = "spool:";

/// How often the spool is looked at when nothing wakes the pusher.
const IDLE: Duration = Duration::from_secs(60);

/// The first and the longest wait after a failed push.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// A remote object store with a local spool in front of it.
pub struct Spool {
    remote: ObjectParts,
    local: ObjectParts,
    /// Held while one blob is pushed and while a blob is deleted, so a
    /// push never puts back in the remote store what a delete removed.
    pushing: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
    /// The backlog last counted (for a metrics scrape, which cannot wait
    /// for a listing).
    counted: AtomicU64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("remote", &self.remote)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// What one pass of the pusher did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pushed {
    /// Blobs now in the remote store.
    pub pushed: u64,
    /// Blobs still in the spool.
    pub pending: u64,
}

/// The upload as the spool's own part store knows it (its multipart id
/// without the prefix), if it is spooled.
fn spooled(upload: &Upload) -> Option<Upload> {
    let id = upload.multipart.as_deref()?.strip_prefix(SPOOLED)?;
    let mut local = upload.clone();
    local.multipart = Some(id.to_owned());
    Some(local)
}

/// The owner and id of a blob whose record is at `location`
/// (`blobs/<owner>/<id>.json`).
fn record_of(location: &Path) -> Option<(UserId, BlobId)> {
    let mut parts = location.parts();
    if parts.next()?.as_ref() != "blobs" {
        return None;
    }
    let owner = parts.next()?.as_ref().parse().ok()?;
    let id = parts.next()?.as_ref().strip_suffix(".json")?.parse().ok()?;
    parts.next().is_none().then_some((owner, id))
}

impl Spool {
    /// The remote store's parts and blobs, with a spool in the folder
    /// `dir` (made if missing); blobs over `limit` bytes are refused.
    ///
    /// # Errors
    /// The folder cannot be made or used.
    pub fn new(remote: ObjectParts, dir: &std::path::Path, limit: u64) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(|e| BlobError::Unexpected(Box::new(e)))?;
        let local = LocalFileSystem::new_with_prefix(dir).map_err(unexpected)?;
        let local: Arc<dyn ObjectStore> = Arc::new(local);
        Ok(Self {
            remote,
            local: ObjectParts::new((local, None), limit),
            pushing: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            counted: AtomicU64::new(0),
        })
    }

    /// The spooled blobs, as (owner, id).
    async fn spooled_blobs(&self) -> Result<Vec<(UserId, BlobId)>, BlobError> {
        let listed: Vec<Path> = self
            .local
            .store()
            .list(Some(&Path::from("blobs")))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(unexpected)?;
        Ok(listed.iter().filter_map(record_of).collect())
    }

    /// How many blobs wait in the spool to be pushed.
    ///
    /// # Errors
    /// The spool's folder cannot be read.
    pub async fn pending(&self) -> Result<u64, BlobError> {
        let n = self.spooled_blobs().await?.len() as u64;
        self.counted.store(n, Ordering::Relaxed);
        Ok(n)
    }

    /// The backlog as last counted by [`Spool::pending`], a push or a
    /// completion into the spool.
    pub fn last_pending(&self) -> u64 {
        self.counted.load(Ordering::Relaxed)
    }

    /// Pushes every spooled blob to the remote store, stopping at the
    /// first failure (the store is still down: the rest would fail too).
    ///
    /// # Errors
    /// The first push that failed; what was pushed before stays pushed.
    pub async fn push(&self) -> Result<Pushed, BlobError> {
        let waiting = self.spooled_blobs().await?;
        let mut done = Pushed {
            pushed: 0,
            pending: waiting.len() as u64,
        };
        self.counted.store(done.pending, Ordering::Relaxed);
        for (owner, id) in waiting {
            self.push_one(owner, id).await?;
            done.pushed += 1;
            done.pending -= 1;
            self.counted.store(done.pending, Ordering::Relaxed);
        }
        Ok(done)
    }

    /// Copies one blob to the remote store (the copy is visible there only
    /// once whole), removes its upload's leftovers there, then the spooled
    /// copy. A crash between repeats the copy, harmlessly.
    async fn push_one(&self, owner: UserId, id: BlobId) -> Result<(), BlobError> {
        let _held = self.pushing.lock().await;
        let (meta, body) = match self.local.blobs().get(owner, id, None).await {
            Ok(got) => got,
            // Deleted since it was listed.
            Err(BlobError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        let pushed = self.remote.blobs().put(meta, body).await?;
        let leftovers = ObjectParts::folder_of(owner, id.as_uuid());
        if let Err(e) = self.remote.clear_folder(&leftovers).await {
            tracing::warn!(error = %alarm_domain::error::chain(&e), blob = %id, "removing a pushed upload's leftovers failed; they stay in the bucket");
        }
        match self.local.blobs().delete(owner, id).await {
            Ok(()) | Err(BlobError::NotFound) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(blob = %id, bytes = pushed.size, "a spooled blob was pushed to the object store");
        Ok(())
    }

    /// Pushes spooled blobs until the process ends: at once, whenever an
    /// upload completes into the spool, every minute, and after a failure
    /// with exponential backoff and jitter.
    pub async fn run(self: Arc<Self>) {
        let mut failures = 0usize;
        loop {
            let wait = match self.push().await {
                Ok(_) => {
                    failures = 0;
                    IDLE
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff(failures);
                    tracing::warn!(error = %alarm_domain::error::chain(&e), retry_in_ms = wait.as_millis() as u64, "pushing the spool to the object store failed");
                    wait
                }
            };
            // A completion during a backoff does not cut it short: the
            // store that failed a moment ago is given its time.
            if failures == 0 {
                let _ = tokio::time::timeout(wait, self.wake.notified()).await;
            } else {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The wait after the `failures`th failed pass in a row (1-based): `d`
/// doubling from [`BACKOFF_MIN`] up to half of [`BACKOFF_MAX`], plus a
/// random part of up to `d` (backon's jitter), so waits stay spread out
/// even once they stop growing.
fn backoff(failures: usize) -> Duration {
    backon::ExponentialBuilder::default()
        .with_min_delay(BACKOFF_MIN)
        .with_max_delay(BACKOFF_MAX / 2)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(failures.saturating_sub(1))
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX)
}

#[async_trait]
impl PartStore for Spool {
    async fn begin(&self, upload: &Upload) -> Result<String, BlobError> {
        self.remote.begin(upload).await
    }

    async fn put_part(
        &self,
        upload: &Upload,
        multipart: &str,
        number: u32,
        bytes: Bytes,
    ) -> Result<String, BlobError> {
        match multipart.strip_prefix(SPOOLED) {
            Some(local) => self.local.put_part(upload, local, number, bytes).await,
            None => self.remote.put_part(upload, multipart, number, bytes).await,
        }
    }

    async fn put_tail(&self, upload: &Upload, start: u64, bytes: Bytes) -> Result<(), BlobError> {
        match spooled(upload) {
            Some(local) => self.local.put_tail(&local, start, bytes).await,
            None => self.remote.put_tail(upload, start, bytes).await,
        }
    }

    async fn tail(&self, upload: &Upload) -> Result<Bytes, BlobError> {
        match spooled(upload) {
            Some(local) => self.local.tail(&local).await,
            None => self.remote.tail(upload).await,
        }
    }

    async fn complete(&self, upload: &Upload, meta: BlobMeta) -> Result<BlobMeta, BlobError> {
        match spooled(upload) {
            Some(local) => {
                let done = self.local.complete(&local, meta).await?;
                self.counted.fetch_add(1, Ordering::Relaxed);
                self.wake.notify_one();
                Ok(done)
            }
            None => self.remote.complete(upload, meta).await,
        }
    }

    async fn abort(&self, upload: &Upload) -> Result<(), BlobError> {
        let Some(local) = spooled(upload) else {
            return self.remote.abort(upload).await;
        };
        self.local.abort(&local).await?;
        // What the remote store kept before the move: removed if it
        // answers now, else left to the bucket's lifecycle rules (a
        // completed upload's leftovers are also removed by its push).
        let remote = self.remote.clone();
        let leftovers = ObjectParts::folder_of(upload.owner, upload.id.as_uuid());
        tokio::spawn(async move {
            if let Err(e) = remote.clear_folder(&leftovers).await {
                tracing::debug!(error = %alarm_domain::error::chain(&e), "a moved upload's remote leftovers stay for now");
            }
        });
        Ok(())
    }

    async fn relocate(&self, upload: &Upload) -> Result<Option<String>, BlobError> {
        if spooled(upload).is_some() {
            return Ok(None);
        }
        let id = self.local.begin(upload).await?;
        tracing::warn!(upload = %upload.id, "the object store failed under an upload: it moves to the local spool and restarts at offset 0");
        Ok(Some(format!("{SPOOLED}{id}")))
    }
}

#[async_trait]
impl BlobStore for Spool {
    async fn put(&self, meta: BlobMeta, body: ByteStream) -> Result<BlobMeta, BlobError> {
        self.remote.blobs().put(meta, body).await
    }

    async fn head(&self, owner: UserId, id: BlobId) -> Result<BlobMeta, BlobError> {
        match self.local.blobs().head(owner, id).await {
            Ok(meta) => Ok(meta),
            Err(_) => self.remote.blobs().head(owner, id).await,
        }
    }

    async fn get(
        &self,
        owner: UserId,
        id: BlobId,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<(BlobMeta, ByteStream), BlobError> {
        match self.local.blobs().get(owner, id, range.clone()).await {
            Ok(got) => Ok(got),
            Err(e @ BlobError::RangeNotSatisfiable { .. }) => Err(e),
            Err(_) => self.remote.blobs().get(owner, id, range).await,
        }
    }

    async fn delete(&self, owner: UserId, id: BlobId) -> Result<(), BlobError> {
        let _held = self.pushing.lock().await;
        let local = self.local.blobs().delete(owner, id).await;
        let remote = self.remote.blobs().delete(owner, id).await;
        match (local, remote) {
            // A pushed copy may exist even when the spool had one (a push
            // whose last step failed): the remote answer decides.
            (_, Err(e @ BlobError::Unexpected(_))) => Err(e),
            (Ok(()), _) | (_, Ok(())) => Ok(()),
            (Err(BlobError::NotFound), Err(e)) => Err(e),
            (Err(e), _) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_told_from_bytes_and_strays() {
        let owner = UserId::generate();
        let id = BlobId::generate();
        assert_eq!(
            record_of(&Path::from(format!("blobs/{owner}/{id}.json"))),
            Some((owner, id))
        );
        for stray in [
            format!("blobs/{owner}/{id}"),
            format!("uploads/{owner}/{id}.json"),
            format!("blobs/{owner}/not-an-id.json"),
            format!("blobs/{owner}/{id}.json/more"),
        ] {
            assert_eq!(record_of(&Path::from(stray.as_str())), None, "{stray}");
        }
    }

    #[test]
    fn the_backoff_grows_with_jitter_and_is_capped() {
        for failures in 1..40 {
            let wait = backoff(failures);
            assert!(
                wait >= BACKOFF_MIN && wait <= BACKOFF_MAX,
                "{failures}: {wait:?}"
            );
        }
        assert!(
            backoff(1) < Duration::from_secs(2),
            "the first wait is short"
        );
        let late: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(30)).collect();
        assert!(late.len() > 1, "waits at the cap still differ: {late:?}");
        assert!(late.iter().all(|w| *w >= BACKOFF_MAX / 2), "{late:?}");
    }
}
