//! Webhook-registration use cases (a webhook's signing secret is generated here), its delivery history, retries and test pings.

use secrecy::SecretString;

use super::{Actor, Basics, Ports, ServiceError};
use crate::error::{ValidationError, codes};
use crate::ids::{AlarmId, WebhookId};
use crate::model::Channel;
use crate::model::{MAX_WEBHOOK_ALARM_FILTER, WebhookEventSet, WebhookRegistration, WebhookUrl};
use crate::ports::{ChangeSet, OutboxItem, SendTopic, WebhookOp};

/// A new webhook registration and its secret, shown to the owner once.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// The stored registration.
    pub registration: WebhookRegistration,
    /// The signing secret (`whsec_` + base64 of 32 random bytes).
    pub secret: SecretString,
}

super::service_ports! {
    /// The ports [`WebhookService`] takes.
    WebhookPorts {
        /// Registrations.
        webhooks: dyn WebhookStore = webhooks,
        /// The alarms a registration may be narrowed to (owner-checked).
        alarms: dyn AlarmStore = alarms,
        /// Test pings and delivery logs.
        outbox: dyn Outbox = outbox,
        /// Which targets may be registered.
        targets: dyn TargetGuard = targets,
        /// The clock.
        clock: dyn Clock = clock,
        /// Ids and signing secrets.
        ids: dyn IdSource = ids,
        /// Told when the owner's prepared rings are put back.
        wake: dyn TriggerWake = wake,
    }
}

use crate::ports::{AlarmStore, Clock, IdSource, Outbox, TargetGuard, TriggerWake, WebhookStore};

/// Webhook-registration use cases.
#[derive(Clone)]
pub struct WebhookService {
    ports: WebhookPorts,
    quota: crate::limits::Quota,
    overlap: jiff::SignedDuration,
}

/// A fresh signing secret: `whsec_` and 32 bytes from the id source's
/// secret bytes, in standard base64 (the Standard Webhooks form).
fn new_secret(ids: &dyn crate::ports::IdSource) -> Result<SecretString, ServiceError> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    ids.secret_bytes(&mut bytes)
        .map_err(|e| ServiceError::Unexpected(crate::ports::StoreError::Unexpected(e.into())))?;
    Ok(SecretString::from(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )))
}

fn webhook_summary(w: &WebhookRegistration) -> String {
    format!(
        "url={} events={} active={}",
        w.url().redacted(),
        w.events().iter().count(),
        w.active()
    )
}

/// The most registrations one user may have whatever the operator sets
/// (the list has no pages, and every event fans out over them).
pub const MAX_WEBHOOKS_PER_USER: usize = 100;

impl WebhookService {
    /// A service over `ports`.
    pub fn new(ports: Ports) -> Self {
        Self {
            quota: ports.limits.webhooks(),
            overlap: jiff::SignedDuration::from_secs(i64::from(
                ports.limits.webhook_secret_overlap_seconds,
            )),
            ports: ports.into(),
        }
    }

    /// # Errors
    /// [`ServiceError::NotFound`] when missing or another owner's.
    pub async fn get(
        &self,
        actor: &Actor,
        id: WebhookId,
    ) -> Result<WebhookRegistration, ServiceError> {
        Ok(self.ports.webhooks.get(actor.user, id).await?)
    }

    /// # Errors
    /// Store failures.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<WebhookRegistration>, ServiceError> {
        Ok(self.ports.webhooks.list(actor.user).await?)
    }

    /// Registers an endpoint with a freshly generated secret.
    ///
    /// # Errors
    /// [`ServiceError::OverQuota`] (`webhooks_per_user`) when the account
    /// holds as many as the operator allows, judged by the store under the
    /// owner's lock, so concurrent creations cannot pass it.
    pub async fn create(
        &self,
        actor: &Actor,
        url: WebhookUrl,
        events: WebhookEventSet,
        alarms: Vec<AlarmId>,
    ) -> Result<NewWebhook, ServiceError> {
        events.require_emitted()?;
        let now = self.ports.clock.now();
        self.check_alarms(actor, &alarms).await?;
        self.check_target(&url).await?;
        let id = self.ports.new_id(WebhookId::from_uuid, WebhookId::generate);
        let secret = new_secret(self.ports.ids.as_ref())?;
        let registration =
            WebhookRegistration::new(id, actor.user, url, events, secret.clone(), true, 0)
                .with_alarms(alarms);
        let audit = self.ports.audit(
            actor,
            "webhook.create",
            id.as_uuid(),
            None,
            Some(webhook_summary(&registration)),
            now,
        );
        self.ports
            .webhooks
            .commit(ChangeSet::audited(
                WebhookOp::Create(registration.clone(), self.quota),
                audit,
            ))
            .await?;
        // Prepared rings of the owner's were put back to be prepared
        // again with this change: an engine in this process does it now.
        self.ports.wake.due(now);
        Ok(NewWebhook {
            registration,
            secret,
        })
    }

    /// Changes the URL, events or active flag; re-activating resets the failure count.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn update(
        &self,
        actor: &Actor,
        id: WebhookId,
        url: WebhookUrl,
        events: WebhookEventSet,
        active: bool,
        alarms: Vec<AlarmId>,
    ) -> Result<WebhookRegistration, ServiceError> {
        events.require_emitted()?;
        let now = self.ports.clock.now();
        let before = self.ports.webhooks.get(actor.user, id).await?;
        self.check_alarms(actor, &alarms).await?;
        if url != *before.url() {
            self.check_target(&url).await?;
        }
        let failures = if active && !before.active() {
            0
        } else {
            before.failure_count()
        };
        let registration = WebhookRegistration::new(
            id,
            actor.user,
            url,
            events,
            before.secret().clone(),
            active,
            failures,
        )
        .with_previous(before.previous().cloned())
        .with_alarms(alarms);
        let audit = self.ports.audit(
            actor,
            "webhook.update",
            id.as_uuid(),
            Some(webhook_summary(&before)),
            Some(webhook_summary(&registration)),
            now,
        );
        self.ports
            .webhooks
            .commit(ChangeSet::audited(
                WebhookOp::Update(registration.clone()),
                audit,
            ))
            .await?;
        // Prepared rings of the owner's were put back to be prepared
        // again with this change: an engine in this process does it now.
        self.ports.wake.due(now);
        Ok(registration)
    }

    /// An `alarm_ids` filter names at most [`MAX_WEBHOOK_ALARM_FILTER`]
    /// of the actor's own alarms, none twice (`alarm_ids`, `alarm_ids[i]`).
    async fn check_alarms(&self, actor: &Actor, alarms: &[AlarmId]) -> Result<(), ServiceError> {
        if alarms.len() > MAX_WEBHOOK_ALARM_FILTER {
            return Err(ValidationError::new(
                "alarm_ids",
                codes::BAD_COUNT,
                format!(
                    "at most {MAX_WEBHOOK_ALARM_FILTER} alarms, got {}",
                    alarms.len()
                ),
            )
            .into());
        }
        for (i, alarm) in alarms.iter().enumerate() {
            let field = format!("alarm_ids[{i}]");
            if alarms[..i].contains(alarm) {
                return Err(ValidationError::new(field, codes::DUPLICATE, "listed twice").into());
            }
            match self.ports.alarms.get(actor.user, *alarm).await {
                Ok(_) => {}
                Err(crate::ports::StoreError::NotFound) => {
                    return Err(ValidationError::new(
                        field,
                        codes::UNKNOWN_VALUE,
                        "not one of your alarms",
                    )
                    .into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn check_target(&self, url: &WebhookUrl) -> Result<(), ServiceError> {
        self.ports
            .targets
            .check(url.as_url())
            .await
            .map_err(|why| ValidationError::new("url", codes::REFUSED_TARGET, why).into())
    }

    /// Replaces the signing secret; the new one is shown once. The old one
    /// keeps signing beside it for the operator's overlap
    /// (`webhook_secret_overlap_seconds`); a second rotation within it
    /// retires the first old secret at once (one previous secret is kept).
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn rotate_secret(
        &self,
        actor: &Actor,
        id: WebhookId,
    ) -> Result<NewWebhook, ServiceError> {
        let now = self.ports.clock.now();
        let before = self.ports.webhooks.get(actor.user, id).await?;
        let secret = new_secret(self.ports.ids.as_ref())?;
        let previous = (!self.overlap.is_zero()).then(|| crate::model::PreviousSecret {
            secret: before.secret().clone(),
            until: now.saturating_add(self.overlap).unwrap_or(now),
        });
        let registration = before.clone().rotated(secret.clone(), previous.clone());
        let audit = self.ports.audit(
            actor,
            "webhook.rotate-secret",
            id.as_uuid(),
            Some(webhook_summary(&before)),
            Some(webhook_summary(&registration)),
            now,
        );
        self.ports
            .webhooks
            .commit(ChangeSet::audited(
                WebhookOp::RotateSecret {
                    owner: actor.user,
                    id,
                    expected: before.secret().clone(),
                    secret: secret.clone(),
                    previous,
                },
                audit,
            ))
            .await?;
        Ok(NewWebhook {
            registration,
            secret,
        })
    }

    /// The registration's deliveries, newest first.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn deliveries(
        &self,
        actor: &Actor,
        id: WebhookId,
        before: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, ServiceError> {
        self.ports.webhooks.get(actor.user, id).await?;
        Ok(self
            .ports
            .outbox
            .list(actor.user, Channel::Webhook, id.as_uuid(), before, limit)
            .await?)
    }

    /// Sends a delivered or dead-lettered delivery again, from attempt one.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`]; [`ServiceError::Conflict`] while it is pending.
    pub async fn retry(
        &self,
        actor: &Actor,
        id: WebhookId,
        message: uuid::Uuid,
    ) -> Result<OutboxItem, ServiceError> {
        let now = self.ports.clock.now();
        self.ports.webhooks.get(actor.user, id).await?;
        Ok(self
            .ports
            .outbox
            .redeliver(actor.user, Channel::Webhook, id.as_uuid(), message, now)
            .await?)
    }

    /// Queues a signed `webhook.test` ping to the registration (even an
    /// inactive one, so its owner can check the receiver before enabling it).
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn test(&self, actor: &Actor, id: WebhookId) -> Result<OutboxItem, ServiceError> {
        let now = self.ports.clock.now();
        self.ports.webhooks.get(actor.user, id).await?;
        let item = OutboxItem::pending(
            self.ports.ids.next_uuid(),
            id.as_uuid(),
            Channel::Webhook,
            actor.user,
            None,
            SendTopic::Test,
            now,
        );
        self.ports.outbox.enqueue(item.clone()).await?;
        Ok(item)
    }

    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn delete(&self, actor: &Actor, id: WebhookId) -> Result<(), ServiceError> {
        let now = self.ports.clock.now();
        let before = self.ports.webhooks.get(actor.user, id).await?;
        let audit = self.ports.audit(
            actor,
            "webhook.delete",
            id.as_uuid(),
            Some(webhook_summary(&before)),
            None,
            now,
        );
        self.ports
            .webhooks
            .commit(ChangeSet::audited(
                WebhookOp::Delete {
                    owner: actor.user,
                    id,
                },
                audit,
            ))
            .await?;
        // Prepared rings of the owner's were put back to be prepared
        // again with this change: an engine in this process does it now.
        self.ports.wake.due(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn secrets_are_32_random_bytes() {
        let ids = crate::ports::RandomIds;
        let a = new_secret(&ids).unwrap();
        let b = new_secret(&ids).unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        let body = a.expose_secret().strip_prefix("whsec_").unwrap();
        assert_eq!(body.len(), 44, "32 bytes in base64");
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
                .len(),
            32
        );
    }
}
