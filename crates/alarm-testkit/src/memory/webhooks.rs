//! [`WebhookStore`] over the in-memory state.

use alarm_domain::ids::{UserId, WebhookId};
use alarm_domain::model::WebhookRegistration;
use alarm_domain::ports::{ChangeSet, StoreError, WebhookOp, WebhookStore, rotation_applies};
use async_trait::async_trait;

use super::InMemory;
use super::owned::Owned;

#[async_trait]
impl WebhookStore for InMemory {
    async fn get(&self, owner: UserId, id: WebhookId) -> Result<WebhookRegistration, StoreError> {
        self.lock()
            .webhooks
            .get(&id)
            .filter(|w| w.owner() == owner)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, owner: UserId) -> Result<Vec<WebhookRegistration>, StoreError> {
        Ok(self
            .lock()
            .webhooks
            .values()
            .filter(|w| w.owner() == owner)
            .cloned()
            .collect())
    }

    async fn commit(&self, change: ChangeSet<WebhookOp>) -> Result<(), StoreError> {
        let mut state = self.lock();
        let stored = |id: WebhookId, owner: UserId| {
            state
                .webhooks
                .get(&id)
                .filter(|w| w.owner() == owner)
                .cloned()
                .ok_or(StoreError::NotFound)
        };
        let op = match &change.op {
            WebhookOp::Create(x, quota) => Owned::Create(x.clone(), *quota),
            WebhookOp::Update(x) => match stored(x.id(), x.owner()) {
                Ok(before) => Owned::Update(x.clone().with_secrets_of(&before)),
                Err(_) => Owned::Update(x.clone()),
            },
            WebhookOp::RotateSecret {
                owner,
                id,
                expected,
                secret,
                previous,
            } => {
                let before = stored(*id, *owner)?;
                rotation_applies(before.secret(), expected)?;
                Owned::Update(before.rotated(secret.clone(), previous.clone()))
            }
            WebhookOp::Delete { owner, id } => Owned::Delete(*owner, *id),
        };
        // A rotation changes only how rows are signed, which is done when
        // they are sent.
        if matches!(change.op, WebhookOp::RotateSecret { .. }) {
            state.commit_owned(|s| &mut s.webhooks, op, change)
        } else {
            state.commit_owned_reprepare(|s| &mut s.webhooks, op, change)
        }
    }
}
