//! [`SoundStore`] over the in-memory state: the quota and in-use rules are the domain's, applied under the state's one lock.

use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::model::{Sound, SoundQuota, SoundUsage, sound_deletable};
use alarm_domain::ports::{SoundStore, StoreError};
use async_trait::async_trait;

use super::{InMemory, State};

fn usage(s: &State, owner: UserId) -> SoundUsage {
    s.sounds
        .values()
        .filter(|x| x.owner == owner)
        .fold(SoundUsage::default(), |u, x| SoundUsage {
            count: u.count + 1,
            bytes: u.bytes + x.size,
        })
}

#[async_trait]
impl SoundStore for InMemory {
    async fn register(&self, sound: &Sound, quota: SoundQuota) -> Result<Sound, StoreError> {
        let mut s = self.lock();
        let held = s.sounds.get(&sound.id).or(s.deleted_sounds.get(&sound.id));
        if let Some(kept) = held.filter(|x| x.owner == sound.owner) {
            return Ok(kept.clone());
        }
        if held.is_some() {
            return Err(StoreError::Conflict(format!("sound {} exists", sound.id)));
        }
        quota.admit(usage(&s, sound.owner), sound.size)?;
        s.sounds.insert(sound.id, sound.clone());
        Ok(sound.clone())
    }

    async fn get(&self, owner: UserId, id: BlobId) -> Result<Sound, StoreError> {
        self.lock()
            .sounds
            .get(&id)
            .filter(|x| x.owner == owner)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, owner: UserId, limit: u32) -> Result<Vec<Sound>, StoreError> {
        Ok(self
            .lock()
            .sounds
            .values()
            .filter(|x| x.owner == owner)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn usage(&self, owner: UserId) -> Result<SoundUsage, StoreError> {
        Ok(usage(&self.lock(), owner))
    }

    async fn delete(&self, owner: UserId, id: BlobId) -> Result<Sound, StoreError> {
        let mut s = self.lock();
        if s.sounds.get(&id).is_none_or(|x| x.owner != owner) {
            return Err(StoreError::NotFound);
        }
        let naming = s
            .alarms
            .values()
            .filter(|a| a.owner() == owner && a.draft().sound == Some(id))
            .count();
        sound_deletable(naming as u64)?;
        let sound = s.sounds.remove(&id).ok_or(StoreError::NotFound)?;
        s.deleted_sounds.insert(id, sound.clone());
        Ok(sound)
    }

    async fn purge(&self, owner: UserId, id: BlobId) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.deleted_sounds.get(&id).is_some_and(|x| x.owner == owner) {
            s.deleted_sounds.remove(&id);
        }
        Ok(())
    }

    async fn tombstones(
        &self,
        owner: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<Sound>, StoreError> {
        Ok(self
            .lock()
            .deleted_sounds
            .values()
            .filter(|x| owner.is_none_or(|o| x.owner == o))
            .take(limit as usize)
            .cloned()
            .collect())
    }
}
