//! [`ApiKeyStore`] over the in-memory state.

use alarm_domain::ids::{ApiKeyId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::model::ApiKey;
use alarm_domain::ports::{ApiKeyOp, ApiKeyStore, ChangeSet, StoreError};
use async_trait::async_trait;

use super::InMemory;

#[async_trait]
impl ApiKeyStore for InMemory {
    async fn get(&self, owner: UserId, id: ApiKeyId) -> Result<ApiKey, StoreError> {
        self.lock()
            .api_keys
            .get(&id)
            .filter(|(k, _)| k.owner == owner)
            .map(|(k, _)| k.clone())
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, owner: UserId) -> Result<Vec<ApiKey>, StoreError> {
        Ok(self
            .lock()
            .api_keys
            .values()
            .filter(|(k, _)| k.owner == owner)
            .map(|(k, _)| k.clone())
            .collect())
    }

    async fn find(&self, prefix: &str) -> Result<Option<(ApiKey, [u8; 32])>, StoreError> {
        Ok(self
            .lock()
            .api_keys
            .values()
            .find(|(k, _)| k.prefix == prefix)
            .cloned())
    }

    async fn commit(&self, change: ChangeSet<ApiKeyOp>) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        let fresh = |s: &super::State, key: &ApiKey| {
            if s.api_keys.contains_key(&key.id)
                || s.api_keys.values().any(|(k, _)| k.prefix == key.prefix)
            {
                return Err(StoreError::Conflict(format!("api key {} exists", key.id)));
            }
            Ok(())
        };
        let owned = |s: &super::State, owner: UserId, id: ApiKeyId| {
            s.api_keys.get(&id).is_some_and(|(k, _)| k.owner == owner)
        };
        // The owner's keys, as the quota counts them.
        let held = |s: &super::State, owner: UserId| {
            s.api_keys
                .values()
                .filter(|(k, _)| k.owner == owner)
                .count() as u64
        };
        match &change.op {
            ApiKeyOp::Create { key, hash, quota } => {
                fresh(&s, key)?;
                let held = held(&s, key.owner);
                quota.admit(held)?;
                s.api_keys.insert(key.id, (key.clone(), *hash));
            }
            ApiKeyOp::Rotate {
                old,
                old_retires_at,
                key,
                hash,
                quota,
            } => {
                if !owned(&s, key.owner, *old) {
                    return Err(StoreError::NotFound);
                }
                fresh(&s, key)?;
                let held = held(&s, key.owner);
                quota.admit_replacing(held)?;
                if let Some((k, _)) = s.api_keys.get_mut(old) {
                    k.retires_at = Some(*old_retires_at);
                }
                s.api_keys.insert(key.id, (key.clone(), *hash));
            }
            ApiKeyOp::Delete { owner, id } => {
                if !owned(&s, *owner, *id) {
                    return Err(StoreError::NotFound);
                }
                s.api_keys.remove(id);
            }
        }
        s.apply_common(change);
        Ok(())
    }

    async fn touch(
        &self,
        id: ApiKeyId,
        at: Timestamp,
        unless_since: Timestamp,
    ) -> Result<(), StoreError> {
        if let Some((k, _)) = self.lock().api_keys.get_mut(&id)
            && k.last_used_at.is_none_or(|t| t < unless_since)
        {
            k.last_used_at = Some(at);
        }
        Ok(())
    }

    async fn purge_ended(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let held = s.api_keys.len();
        s.api_keys
            .retain(|_, (k, _)| k.ends_at().is_none_or(|end| end >= before));
        Ok((held - s.api_keys.len()) as u64)
    }
}
