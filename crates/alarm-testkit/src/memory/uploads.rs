//! [`UploadStore`] over the in-memory state: the upload rule is the domain's [`Upload::advance`], applied under the state's one lock.

use alarm_domain::ids::{UploadId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::limits::Quota;
use alarm_domain::model::{Upload, UploadProgress, UploadRefused};
use alarm_domain::ports::{StoreError, UploadStore};
use async_trait::async_trait;

use super::InMemory;

/// A refused advance as the port's error (the SQL store maps it the same
/// way, through [`alarm_domain::ports::upload_refusal`]).
fn refused(e: UploadRefused) -> StoreError {
    alarm_domain::ports::upload_refusal(e)
}

#[async_trait]
impl UploadStore for InMemory {
    async fn create(&self, upload: &Upload, quota: Quota) -> Result<(), StoreError> {
        let mut s = self.lock();
        let held = s
            .uploads
            .values()
            .filter(|u| u.owner == upload.owner)
            .count();
        quota.admit(held as u64)?;
        s.uploads.insert(upload.id, upload.clone());
        Ok(())
    }

    async fn get(&self, owner: UserId, id: UploadId) -> Result<Upload, StoreError> {
        self.lock()
            .uploads
            .get(&id)
            .filter(|u| u.owner == owner)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn advance(
        &self,
        owner: UserId,
        id: UploadId,
        progress: &UploadProgress,
    ) -> Result<Upload, StoreError> {
        let mut s = self.lock();
        let upload = s
            .uploads
            .get_mut(&id)
            .filter(|u| u.owner == owner)
            .ok_or(StoreError::NotFound)?;
        let next = upload.advance(progress).map_err(refused)?;
        *upload = next.clone();
        Ok(next)
    }

    async fn delete(&self, owner: UserId, id: UploadId) -> Result<Upload, StoreError> {
        let mut s = self.lock();
        if s.uploads.get(&id).is_none_or(|u| u.owner != owner) {
            return Err(StoreError::NotFound);
        }
        s.uploads.remove(&id).ok_or(StoreError::NotFound)
    }

    async fn pending(&self, owner: UserId) -> Result<alarm_domain::model::SoundUsage, StoreError> {
        Ok(self
            .lock()
            .uploads
            .values()
            .filter(|u| u.owner == owner)
            .fold(alarm_domain::model::SoundUsage::default(), |p, u| {
                alarm_domain::model::SoundUsage {
                    count: p.count + 1,
                    bytes: p.bytes + u.length,
                }
            }))
    }

    async fn expired(&self, now: Timestamp, limit: u32) -> Result<Vec<Upload>, StoreError> {
        let mut due: Vec<Upload> = self
            .lock()
            .uploads
            .values()
            .filter(|u| u.expires_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|u| (u.expires_at, u.id));
        due.truncate(limit as usize);
        Ok(due)
    }
}
