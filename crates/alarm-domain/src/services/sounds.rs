//! Sound use cases: list, read, stream the bytes (whole or a range), and delete a sound no alarm names.

use std::ops::Range;

use super::Ports;
use crate::ids::{BlobId, UserId};
use crate::model::Sound;
use crate::ports::{BlobError, BlobStore, ByteStream, SoundStore, StoreError};

super::service_ports! {
    /// The ports [`SoundService`] takes.
    SoundPorts {
        /// The sounds.
        sounds: dyn SoundStore = sounds,
        /// Their bytes.
        blobs: dyn BlobStore = blobs,
        /// Ids (unused; the macro's `Basics`).
        ids: dyn crate::ports::IdSource = ids,
    }
}

/// Why a sound use case failed.
#[derive(Debug, thiserror::Error)]
pub enum SoundError {
    /// No such sound, or another owner's.
    #[error("sound not found")]
    NotFound,
    /// An alarm names it (409).
    #[error("{0}")]
    InUse(String),
    /// The range asked does not overlap the sound (416).
    #[error("range not satisfiable: the sound has {size} bytes")]
    RangeNotSatisfiable {
        /// The sound's size.
        size: u64,
    },
    /// The database failed.
    #[error("sound store failure")]
    Store(#[source] StoreError),
    /// The object store failed.
    #[error("object store failure")]
    Blob(#[source] BlobError),
}

impl From<StoreError> for SoundError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(why) => Self::InUse(why),
            other => Self::Store(other),
        }
    }
}

impl From<BlobError> for SoundError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::RangeNotSatisfiable { size } => Self::RangeNotSatisfiable { size },
            other => Self::Blob(other),
        }
    }
}

/// The sound use cases.
#[derive(Clone)]
pub struct SoundService {
    ports: SoundPorts,
    limit: u32,
}

impl SoundService {
    /// The use cases over `ports`; a list holds at most the sound quota.
    pub fn new(ports: Ports) -> Self {
        Self {
            limit: ports.limits.sounds_per_user,
            ports: ports.into(),
        }
    }

    /// The owner's sounds, oldest first (at most the quota: a lowered
    /// quota hides the newest until some are deleted).
    ///
    /// # Errors
    /// Store failures.
    pub async fn list(&self, owner: UserId) -> Result<Vec<Sound>, SoundError> {
        Ok(self.ports.sounds.list(owner, self.limit).await?)
    }

    /// The owner's sound.
    ///
    /// # Errors
    /// [`SoundError::NotFound`], store failures.
    pub async fn get(&self, owner: UserId, id: BlobId) -> Result<Sound, SoundError> {
        Ok(self.ports.sounds.get(owner, id).await?)
    }

    /// The owner's sound and its bytes (`range` of them when given, clamped
    /// to its end), streamed from the object store.
    ///
    /// # Errors
    /// [`SoundError::NotFound`] (also when its bytes are gone),
    /// [`SoundError::RangeNotSatisfiable`], failures.
    pub async fn content(
        &self,
        owner: UserId,
        id: BlobId,
        range: Option<Range<u64>>,
    ) -> Result<(Sound, Range<u64>, ByteStream), SoundError> {
        let sound = self.ports.sounds.get(owner, id).await?;
        let (meta, body) = match self.ports.blobs.get(owner, id, range.clone()).await {
            Err(BlobError::NotFound) => return Err(SoundError::NotFound),
            other => other?,
        };
        let served = match range {
            Some(r) => crate::ports::clamp_range(r, meta.size)?,
            None => 0..meta.size,
        };
        Ok((sound, served, body))
    }

    /// Deletes the owner's sound: for its readers at once (refused while
    /// an alarm names it), then its bytes, then its tombstone.
    ///
    /// # Errors
    /// [`SoundError::NotFound`], [`SoundError::InUse`], failures (a failure
    /// to delete the bytes leaves the tombstone, and [`SoundService::sweep`]
    /// deletes them later).
    pub async fn delete(&self, owner: UserId, id: BlobId) -> Result<(), SoundError> {
        self.ports.sounds.delete(owner, id).await?;
        self.drop_bytes(owner, id).await
    }

    async fn drop_bytes(&self, owner: UserId, id: BlobId) -> Result<(), SoundError> {
        match self.ports.blobs.delete(owner, id).await {
            Ok(()) | Err(BlobError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(self.ports.sounds.purge(owner, id).await?)
    }

    /// Deletes the bytes of up to `limit` deleted sounds whose delete did
    /// not finish (the object store failed then); returns how many.
    ///
    /// One whose bytes cannot be deleted is skipped and kept for the next
    /// sweep (listed oldest first, it would otherwise stop every sweep),
    /// and reported after the others.
    ///
    /// # Errors
    /// Store failures, and the skipped ones (what was done stays done).
    pub async fn sweep(&self, limit: u32) -> Result<u32, SoundError> {
        let (mut done, mut failed) = (0, None);
        for sound in self.ports.sounds.tombstones(None, limit).await? {
            match self.drop_bytes(sound.owner, sound.id).await {
                Ok(()) => done += 1,
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }
}
