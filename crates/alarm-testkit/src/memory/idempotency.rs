//! [`IdempotencyStore`] over the in-memory state: reservations per (owner, scope, key), fenced by holder.

use alarm_domain::ids::UserId;
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::ports::{
    IdempotencyKey, IdempotencyStore, Reservation, StoreError, StoredResponse,
};
use async_trait::async_trait;

use super::InMemory;

fn idem_key(k: &IdempotencyKey) -> (UserId, String, String) {
    (k.owner, k.scope.clone(), k.key.clone())
}

#[async_trait]
impl IdempotencyStore for InMemory {
    async fn reserve(
        &self,
        key: &IdempotencyKey,
        fingerprint: [u8; 32],
        holder: uuid::Uuid,
        now: Timestamp,
        ttl: SignedDuration,
    ) -> Result<Reservation, StoreError> {
        let mut s = self.lock();
        let k = idem_key(key);
        if let Some((stored, created, answer, _)) = s.idempotency.get(&k)
            && let Some(found) =
                Reservation::of_stored(stored, *created, answer.clone(), &fingerprint, now, ttl)
        {
            return Ok(found);
        }
        s.idempotency.insert(k, (fingerprint, now, None, holder));
        Ok(Reservation::Fresh)
    }

    async fn finish(
        &self,
        key: &IdempotencyKey,
        holder: uuid::Uuid,
        response: StoredResponse,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        let record = s
            .idempotency
            .get_mut(&idem_key(key))
            .filter(|r| r.3 == holder)
            .ok_or(StoreError::NotFound)?;
        record.2 = Some(response);
        Ok(())
    }

    async fn abandon(&self, key: &IdempotencyKey, holder: uuid::Uuid) -> Result<(), StoreError> {
        let mut s = self.lock();
        let k = idem_key(key);
        if s.idempotency.get(&k).is_some_and(|r| r.3 == holder) {
            s.idempotency.remove(&k);
        }
        Ok(())
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let n = s.idempotency.len();
        s.idempotency
            .retain(|_, (_, created, _, _)| *created >= before);
        Ok((n - s.idempotency.len()) as u64)
    }
}
