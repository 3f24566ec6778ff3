//! The spool: a local folder in front of a remote object store that keeps uploads, and the sounds they become, while the store is down, and pushes them to it when it is back.
//!
//! # What goes where
//! * An upload lives in the remote store until the store fails under it.
//!   Then [`PartStore::relocate`] begins it again in the spool: its
//!   multipart id becomes `spool:<instance>:<id>`, which routes every
//!   later call to this instance's folder, and the domain restarts it from
//!   byte 0 (the remote store's parts cannot be read back, so the client
//!   resends them; tus clients do, after a `HEAD`). A marker
//!   (`moved/<owner>/<id>`, holding the remote multipart id) makes the
//!   pusher remove what the remote store kept of it, once it answers.
//! * The instance is a UUID kept in the folder (`instance-id`), so it
//!   survives restarts. An upload spooled on another instance fails here
//!   as "unexpected", so the domain moves it again, into this instance's
//!   spool (the client resends from 0). A folder left by an upload that
//!   moved away or was abandoned is removed when it has been untouched
//!   for [`STALE_UPLOAD`].
//! * A spooled upload completes into a blob in the spool, laid out as the
//!   remote store's blobs are (`blobs/<owner>/<id>` and its record
//!   `<id>.json`, written last). That record **is** the durable sync
//!   record: a blob in the spool is a blob not yet pushed, so a restart
//!   finds the same work and nothing needs a second bookkeeping.
//! * Reads look in the spool first, then in the remote store, so a sound
//!   plays while it waits to be pushed. A delete removes the remote copy
//!   first, then the spooled one (so a failure leaves the spooled copy for
//!   the retry, never a sound whose bytes are half gone).
//! * [`Spool::run`] removes moved uploads' remote leftovers, then pushes
//!   each spooled blob (streamed, never whole in memory) and removes the
//!   spooled copy. It wakes when an upload completes into the spool, at
//!   start, and every minute; after a failure of the remote store it waits
//!   an exponential backoff with jitter (1 s doubling to 150 s, plus up to
//!   as much again), so instances coming back together do not all push at
//!   the same instant. A spooled blob that cannot be read locally is
//!   logged and skipped, never blocking the others.
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
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::{ObjectParts, unexpected};

/// The prefix of a spooled upload's multipart id.
const SPOOLED: &str = "spool:";

/// How often the spool is looked at when nothing wakes the pusher.
const IDLE: Duration = Duration::from_secs(60);

/// How long a spooled upload's folder stays untouched before it is
/// removed: uploads expire after 24 h without a PATCH, so by then its
/// state is gone (or it moved to another instance).
pub const STALE_UPLOAD: Duration = Duration::from_secs(48 * 3600);

/// The first and the longest wait after a failed push.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// A remote object store with a local spool in front of it.
pub struct Spool {
    remote: ObjectParts,
    local: ObjectParts,
    /// This instance's id, kept in the folder.
    instance: String,
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
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// Why one blob was not pushed.
enum Failed {
    /// The spool could not read or remove it: skipped, the others go on.
    Local(BlobError),
    /// The remote store failed: the pass stops.
    Remote(BlobError),
}

/// What one pass of the pusher did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pushed {
    /// Blobs now in the remote store.
    pub pushed: u64,
    /// Blobs still in the spool.
    pub pending: u64,
}

/// Where an upload's bytes are.
enum Route {
    /// The remote store.
    Remote,
    /// This instance's spool: the upload as its local part store knows it
    /// (the multipart id without the prefix).
    Here(Upload),
    /// Another instance's spool.
    Elsewhere,
}

fn elsewhere() -> BlobError {
    BlobError::Unexpected("the upload is spooled on another instance".into())
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
        let io = |e: std::io::Error| BlobError::Unexpected(Box::new(e));
        std::fs::create_dir_all(dir).map_err(io)?;
        let id_file = dir.join("instance-id");
        let instance = match std::fs::read_to_string(&id_file) {
            Ok(id) if uuid::Uuid::parse_str(id.trim()).is_ok() => id.trim().to_owned(),
            _ => {
                let id = uuid::Uuid::now_v7().simple().to_string();
                std::fs::write(&id_file, &id).map_err(io)?;
                id
            }
        };
        // The backlog as the folder holds it now, for `/health` before the
        // pusher's first pass.
        let waiting = std::fs::read_dir(dir.join("blobs"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .flat_map(|owner| std::fs::read_dir(owner.path()).into_iter().flatten())
            .filter_map(Result::ok)
            .filter(|f| f.file_name().to_string_lossy().ends_with(".json"))
            .count() as u64;
        let local = LocalFileSystem::new_with_prefix(dir).map_err(unexpected)?;
        let local: Arc<dyn ObjectStore> = Arc::new(local);
        Ok(Self {
            remote,
            local: ObjectParts::new((local, None), limit),
            instance,
            pushing: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            counted: AtomicU64::new(waiting),
        })
    }

    /// Where `upload`'s bytes are.
    fn route(&self, upload: &Upload) -> Route {
        let Some(spooled) = upload
            .multipart
            .as_deref()
            .and_then(|m| m.strip_prefix(SPOOLED))
        else {
            return Route::Remote;
        };
        match spooled.split_once(':') {
            Some((instance, id)) if instance == self.instance => {
                let mut local = upload.clone();
                local.multipart = Some(id.to_owned());
                Route::Here(local)
            }
            _ => Route::Elsewhere,
        }
    }

    /// This instance's id (in the multipart ids of the uploads it spools).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The marker of a moved upload's remote leftovers.
    fn marker(owner: UserId, id: uuid::Uuid) -> Path {
        Path::from(format!("moved/{owner}/{id}"))
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

    /// Removes moved uploads' remote leftovers, then pushes every spooled
    /// blob to the remote store, stopping at the first failure of the
    /// remote store (still down: the rest would fail too). A blob that
    /// cannot be read locally is logged and skipped. Also removes local
    /// upload folders untouched for [`STALE_UPLOAD`].
    ///
    /// # Errors
    /// The remote store's failure; what was done before stays done.
    pub async fn push(&self) -> Result<Pushed, BlobError> {
        self.forget_stale().await?;
        self.clear_leftovers().await?;
        let waiting = self.spooled_blobs().await?;
        let mut done = Pushed {
            pushed: 0,
            pending: waiting.len() as u64,
        };
        self.counted.store(done.pending, Ordering::Relaxed);
        for (owner, id) in waiting {
            match self.push_one(owner, id).await {
                Ok(()) => {
                    done.pushed += 1;
                    done.pending -= 1;
                    self.counted.store(done.pending, Ordering::Relaxed);
                }
                Err(Failed::Local(e)) => {
                    tracing::warn!(error = %alarm_domain::error::chain(&e), blob = %id, "a spooled blob cannot be read; it stays in the spool and the others go on");
                }
                Err(Failed::Remote(e)) => return Err(e),
            }
        }
        Ok(done)
    }

    /// What the remote store kept of uploads that moved into the spool:
    /// their multipart upload, parts and tail, removed once it answers.
    async fn clear_leftovers(&self) -> Result<(), BlobError> {
        let markers: Vec<Path> = self
            .local
            .store()
            .list(Some(&Path::from("moved")))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(unexpected)?;
        for marker in markers {
            let mut parts = marker.parts().skip(1);
            let (Some(owner), Some(id)) = (
                parts.next().and_then(|p| p.as_ref().parse::<UserId>().ok()),
                parts
                    .next()
                    .and_then(|p| p.as_ref().parse::<uuid::Uuid>().ok()),
            ) else {
                continue;
            };
            let multipart = match self.local.store().get(&marker).await {
                Ok(got) => got.bytes().await.map_err(unexpected)?,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(unexpected(e)),
            };
            let multipart = std::str::from_utf8(&multipart).unwrap_or_default().trim();
            self.remote
                .abort_by(owner, id, (!multipart.is_empty()).then_some(multipart))
                .await?;
            match self.local.store().delete(&marker).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(unexpected(e)),
            }
        }
        Ok(())
    }

    /// Removes local upload folders untouched for [`STALE_UPLOAD`].
    async fn forget_stale(&self) -> Result<(), BlobError> {
        let listed: Vec<object_store::ObjectMeta> = self
            .local
            .store()
            .list(Some(&Path::from("uploads")))
            .try_collect()
            .await
            .map_err(unexpected)?;
        let mut newest: std::collections::HashMap<(String, String), jiff::Timestamp> =
            std::collections::HashMap::new();
        for meta in listed {
            let mut parts = meta.location.parts().skip(1);
            let (Some(owner), Some(id)) = (parts.next(), parts.next()) else {
                continue;
            };
            let at = jiff::Timestamp::from_second(meta.last_modified.timestamp())
                .unwrap_or(jiff::Timestamp::MAX);
            let entry = newest
                .entry((owner.as_ref().to_owned(), id.as_ref().to_owned()))
                .or_insert(at);
            *entry = (*entry).max(at);
        }
        let stale = jiff::Timestamp::now()
            - jiff::SignedDuration::try_from(STALE_UPLOAD).unwrap_or(jiff::SignedDuration::MAX);
        for ((owner, id), at) in newest {
            if at < stale {
                tracing::info!(upload = %id, "removing a spooled upload's folder untouched for 48 h");
                self.local
                    .clear_folder(&Path::from(format!("uploads/{owner}/{id}")))
                    .await?;
            }
        }
        Ok(())
    }

    /// Copies one blob to the remote store (the copy is visible there only
    /// once whole), then removes the spooled copy. A crash between repeats
    /// the copy, harmlessly.
    async fn push_one(&self, owner: UserId, id: BlobId) -> Result<(), Failed> {
        let _held = self.pushing.lock().await;
        let (meta, body) = match self.local.blobs().get(owner, id, None).await {
            Ok(got) => got,
            // Deleted since it was listed, or a record whose bytes are
            // gone (a delete cut short): nothing to push, and the record
            // must not count as waiting.
            Err(BlobError::NotFound) => {
                return match self.local.blobs().delete(owner, id).await {
                    Ok(()) | Err(BlobError::NotFound) => Ok(()),
                    Err(e) => Err(Failed::Local(e)),
                };
            }
            Err(e) => return Err(Failed::Local(e)),
        };
        let pushed = self
            .remote
            .blobs()
            .put(meta, body)
            .await
            .map_err(Failed::Remote)?;
        match self.local.blobs().delete(owner, id).await {
            Ok(()) | Err(BlobError::NotFound) => {}
            Err(e) => return Err(Failed::Local(e)),
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
        match self.route(upload) {
            Route::Here(local) => {
                let id = local.multipart.clone().unwrap_or_default();
                self.local.put_part(&local, &id, number, bytes).await
            }
            Route::Elsewhere => Err(elsewhere()),
            Route::Remote => self.remote.put_part(upload, multipart, number, bytes).await,
        }
    }

    async fn put_tail(&self, upload: &Upload, start: u64, bytes: Bytes) -> Result<(), BlobError> {
        match self.route(upload) {
            Route::Here(local) => self.local.put_tail(&local, start, bytes).await,
            Route::Elsewhere => Err(elsewhere()),
            Route::Remote => self.remote.put_tail(upload, start, bytes).await,
        }
    }

    async fn tail(&self, upload: &Upload) -> Result<Bytes, BlobError> {
        match self.route(upload) {
            Route::Here(local) => self.local.tail(&local).await,
            Route::Elsewhere => Err(elsewhere()),
            Route::Remote => self.remote.tail(upload).await,
        }
    }

    async fn complete(&self, upload: &Upload, meta: BlobMeta) -> Result<BlobMeta, BlobError> {
        match self.route(upload) {
            Route::Here(local) => {
                let done = self.local.complete(&local, meta).await?;
                // Counted at once for `/health`; the pusher's pass, woken
                // now, counts again from the folder.
                self.counted.fetch_add(1, Ordering::Relaxed);
                self.wake.notify_one();
                Ok(done)
            }
            Route::Elsewhere => Err(elsewhere()),
            Route::Remote => self.remote.complete(upload, meta).await,
        }
    }

    async fn abort(&self, upload: &Upload) -> Result<(), BlobError> {
        match self.route(upload) {
            Route::Here(local) => self.local.abort(&local).await,
            // Its folder there is removed once stale (see `forget_stale`).
            Route::Elsewhere => Ok(()),
            Route::Remote => self.remote.abort(upload).await,
        }
    }

    async fn relocate(&self, upload: &Upload) -> Result<Option<String>, BlobError> {
        let remote_multipart = match self.route(upload) {
            Route::Here(_) => return Ok(None),
            Route::Elsewhere => None,
            Route::Remote => upload.multipart.clone(),
        };
        // A fresh start here: whatever an earlier stay in this spool left.
        self.local.abort(upload).await?;
        // The marker first: the remote leftovers are removed even if the
        // move is not committed (the PATCH lost a race: the upload then
        // starts again from its committed state, whose remote parts are
        // gone, and is moved again by the next PATCH that fails).
        self.local
            .store()
            .put(
                &Self::marker(upload.owner, upload.id.as_uuid()),
                remote_multipart.unwrap_or_default().into(),
            )
            .await
            .map_err(unexpected)?;
        let id = self.local.begin(upload).await?;
        tracing::warn!(upload = %upload.id, "the object store failed under an upload: it moves to the local spool and restarts at offset 0");
        Ok(Some(format!("{SPOOLED}{}:{id}", self.instance)))
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
        // Only a spooled blob can be in a push: the lock keeps the push
        // from putting back what this removes.
        let spooled = self.local.blobs().head(owner, id).await.is_ok();
        let _held = if spooled {
            Some(self.pushing.lock().await)
        } else {
            None
        };
        // The remote copy first: if it fails the spooled copy stays, and
        // a retry (the sweep of deleted sounds) finds both again.
        let remote = self.remote.blobs().delete(owner, id).await;
        if let Err(e @ BlobError::Unexpected(_)) = remote {
            return Err(e);
        }
        let local = self.local.blobs().delete(owner, id).await;
        match (remote, local) {
            (Ok(()), _) | (_, Ok(())) => Ok(()),
            (_, Err(BlobError::NotFound)) => Err(BlobError::NotFound),
            (_, Err(e)) => Err(e),
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
