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

    /// Forgets the owner's sound and returns it (its blob is the caller's
    /// to delete).
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; MUST return [`StoreError::Conflict`] by
    /// [`crate::model::sound_deletable`] while an alarm of the owner names
    /// it (counted in the delete's transaction).
    async fn delete(&self, owner: UserId, id: BlobId) -> Result<Sound, StoreError>;
}
