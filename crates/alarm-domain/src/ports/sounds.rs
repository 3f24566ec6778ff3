//! The sound store: each owner's sounds (rows in the database; their bytes are blobs of the same id), registered under the sound quotas, deleted only while no alarm names them.

use async_trait::async_trait;

use super::StoreError;
use crate::ids::{BlobId, UserId};
use crate::model::{Sound, SoundQuota, SoundUsage};

/// Sounds. Scoped: another owner's sound is [`StoreError::NotFound`].
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait SoundStore: Send + Sync {
    /// Registers `sound` and returns it; registering the same id for the
    /// same owner again returns the sound already stored (a completion
    /// retried after a crash).
    ///
    /// # Errors
    /// MUST return [`StoreError::OverQuota`] when [`SoundQuota::admit`]
    /// refuses the owner's usage (counted atomically with the insert).
    async fn register(&self, sound: &Sound, quota: SoundQuota) -> Result<Sound, StoreError>;

    /// The owner's sound.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when missing or another owner's.
    async fn get(&self, owner: UserId, id: BlobId) -> Result<Sound, StoreError>;

    /// The owner's sounds, oldest first, at most `limit`.
    ///
    /// # Errors
    /// Store failures.
    async fn list(&self, owner: UserId, limit: u32) -> Result<Vec<Sound>, StoreError>;

    /// What the owner's sounds take up.
    ///
    /// # Errors
    /// Store failures.
    async fn usage(&self, owner: UserId) -> Result<SoundUsage, StoreError>;

    /// Deletes the owner's sound for its readers and returns it: from now
    /// on it is not found, listed, counted nor nameable by an alarm, but a
    /// tombstone stays until [`SoundStore::purge`], so bytes whose delete
    /// fails are retried ([`SoundStore::tombstones`]) rather than lost track
    /// of.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (also for a tombstone); MUST return
    /// [`StoreError::Conflict`] by [`crate::model::sound_deletable`] while an
    /// alarm of the owner names it (counted in the delete's transaction).
    async fn delete(&self, owner: UserId, id: BlobId) -> Result<Sound, StoreError>;

    /// Removes the tombstone of a deleted sound whose bytes are gone.
    /// Doing it twice, or for a live sound, changes nothing.
    ///
    /// # Errors
    /// Store failures.
    async fn purge(&self, owner: UserId, id: BlobId) -> Result<(), StoreError>;

    /// Deleted sounds whose bytes may remain, of `owner` or of anyone,
    /// oldest first, at most `limit`.
    ///
    /// # Errors
    /// Store failures.
    async fn tombstones(&self, owner: Option<UserId>, limit: u32)
    -> Result<Vec<Sound>, StoreError>;
}
