//! [`RefreshTokenStore`] over the in-memory state: families, single-use token hashes and revocation on reuse.

use alarm_domain::ids::UserId;
use alarm_domain::jiff::Timestamp;
use alarm_domain::ports::{RefreshFamily, RefreshTokenStore, Rotation, StoreError};
use async_trait::async_trait;

use super::InMemory;

#[async_trait]
impl RefreshTokenStore for InMemory {
    async fn create(&self, family: RefreshFamily, token_hash: [u8; 32]) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.families.contains_key(&family.id) || s.tokens.contains_key(&token_hash) {
            return Err(StoreError::Conflict(
                "refresh family or token exists".to_owned(),
            ));
        }
        s.tokens.insert(token_hash, (family.id, false));
        s.families.insert(family.id, family);
        Ok(())
    }

    async fn rotate(
        &self,
        old_hash: [u8; 32],
        new_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Rotation, StoreError> {
        let mut s = self.lock();
        let (family_id, spent) = *s.tokens.get(&old_hash).ok_or(StoreError::NotFound)?;
        let family = s
            .families
            .get(&family_id)
            .cloned()
            .ok_or(StoreError::NotFound)?;
        if spent {
            // Reuse of a spent token means it leaked: the whole family dies.
            if let Some(f) = s.families.get_mut(&family_id) {
                f.revoked = true;
            }
            return Ok(Rotation::Reused(RefreshFamily {
                revoked: true,
                ..family
            }));
        }
        if family.revoked || now >= family.expires_at {
            return Ok(Rotation::Refused);
        }
        if s.tokens.contains_key(&new_hash) {
            return Err(StoreError::Conflict("refresh token exists".to_owned()));
        }
        s.tokens.insert(old_hash, (family_id, true));
        s.tokens.insert(new_hash, (family_id, false));
        Ok(Rotation::Rotated(family))
    }

    async fn revoke_user(&self, user: UserId, keep: Option<uuid::Uuid>) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let mut ended = 0;
        for f in s.families.values_mut() {
            if f.user == user && Some(f.id) != keep && !f.revoked {
                f.revoked = true;
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn revoke(&self, token_hash: [u8; 32]) -> Result<(), StoreError> {
        let mut s = self.lock();
        let (family_id, _) = *s.tokens.get(&token_hash).ok_or(StoreError::NotFound)?;
        if let Some(f) = s.families.get_mut(&family_id) {
            f.revoked = true;
        }
        Ok(())
    }

    async fn family(&self, id: uuid::Uuid) -> Result<RefreshFamily, StoreError> {
        self.lock()
            .families
            .get(&id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn revoke_family(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        let mut s = self.lock();
        let f = s.families.get_mut(&id).ok_or(StoreError::NotFound)?;
        f.revoked = true;
        Ok(())
    }
}
