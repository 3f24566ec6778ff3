//! The webhook store on SQL: each owner's registrations, their events and signing secrets.

use alarm_domain::ids::{AlarmId, UserId, WebhookId};
use alarm_domain::model::{PreviousSecret, WebhookRegistration, WebhookUrl};
use alarm_domain::ports::{
    ChangeSet, SecretSealer, StoreError, WebhookOp, WebhookStore, rotation_applies,
};
use async_trait::async_trait;
use sea_orm::QueryResult;
use secrecy::SecretString;

use super::{Owned, Prepared, SqlStores, commit_one, id_of, v};
use crate::codec::{events_from_bits, events_to_bits};
use crate::db::{col, corrupt, num};
use crate::row::Row;

/// Every column of a registration, named (see the outbox's `COLUMNS`).
pub(crate) const WEBHOOK_COLUMNS: &str = "id, owner_id, url, events, secret, previous_secret, previous_until_us, active, failure_count, alarm_ids";

/// What a webhook's sealed secret is bound to: its table, column and id,
/// so a sealed value copied to another row or column does not open there.
fn seal_context(column: &str, id: uuid::Uuid) -> Vec<u8> {
    format!("webhooks.{column}:{id}").into_bytes()
}

fn no_sealer() -> StoreError {
    StoreError::Unexpected("no secret sealer was given to the SQL stores (Sql::with_sealer)".into())
}

/// The secret as stored: sealed, or plain when stored before sealing (re-sealing
/// replaces those, see [`crate::Sql::reseal_secrets`]).
pub(crate) fn open_secret(
    sealer: Option<&dyn SecretSealer>,
    stored: String,
    column: &str,
    id: uuid::Uuid,
) -> Result<SecretString, StoreError> {
    let Some(sealer) = sealer else {
        return Err(no_sealer());
    };
    if !sealer.is_sealed(&stored) {
        // Plain text only in the one form secrets had before sealing: any
        // other unsealed value is damage, never a key.
        return if stored.starts_with("whsec_") {
            Ok(SecretString::from(stored))
        } else {
            Err(corrupt(
                &format!("webhooks.{column}"),
                "neither sealed nor a plain whsec_ secret",
            ))
        };
    }
    sealer
        .open(&stored, &seal_context(column, id))
        .map_err(|e| corrupt(&format!("webhooks.{column}"), e))
}

/// The sealed text of a webhook's secret.
pub(crate) fn seal_secret(
    sealer: Option<&dyn SecretSealer>,
    secret: &SecretString,
    column: &str,
    id: uuid::Uuid,
) -> Result<String, StoreError> {
    sealer
        .ok_or_else(no_sealer)?
        .seal(secret, &seal_context(column, id))
        .map_err(|e| StoreError::Unexpected(Box::new(e)))
}

impl SqlStores {
    pub(crate) fn webhook_from(
        &self,
        row: &QueryResult,
    ) -> Result<WebhookRegistration, StoreError> {
        let id = id_of(row, "id", WebhookId::from_uuid)?;
        Ok(WebhookRegistration::new(
            id,
            id_of(row, "owner_id", UserId::from_uuid)?,
            WebhookUrl::parse(&col::<String>(row, "url")?).map_err(|e| corrupt("url", e))?,
            events_from_bits(col(row, "events")?)?,
            open_secret(
                self.sealer.as_deref(),
                col::<String>(row, "secret")?,
                "secret",
                id.as_uuid(),
            )?,
            col(row, "active")?,
            num::<i32, u32>(row, "failure_count")?,
        )
        .with_previous(self.previous_from(row, id.as_uuid())?)
        .with_alarms(alarm_ids_from(row)?))
    }

    /// The rotated-out secret and its end, when the row has both.
    fn previous_from(
        &self,
        row: &QueryResult,
        id: uuid::Uuid,
    ) -> Result<Option<PreviousSecret>, StoreError> {
        let secret = col::<Option<String>>(row, "previous_secret")?;
        let until = col::<Option<i64>>(row, "previous_until_us")?;
        let (Some(secret), Some(until)) = (secret, until) else {
            return Ok(None);
        };
        Ok(Some(PreviousSecret {
            secret: open_secret(self.sealer.as_deref(), secret, "previous_secret", id)?,
            until: crate::db::ts(until)?,
        }))
    }
}

/// The registration's alarm filter (NULL: every alarm).
pub(crate) fn alarm_ids_from(row: &QueryResult) -> Result<Vec<AlarmId>, StoreError> {
    let Some(text) = col::<Option<String>>(row, "alarm_ids")? else {
        return Ok(Vec::new());
    };
    let ids: Vec<uuid::Uuid> = serde_json::from_str(&text).map_err(|e| corrupt("alarm_ids", e))?;
    ids.into_iter()
        .map(|u| AlarmId::from_uuid(u).map_err(|e| corrupt("alarm_ids", e)))
        .collect()
}

fn alarm_ids_to(w: &WebhookRegistration) -> Option<String> {
    (!w.alarms().is_empty()).then(|| {
        serde_json::Value::from(w.alarms().iter().map(|a| a.to_string()).collect::<Vec<_>>())
            .to_string()
    })
}

#[async_trait]
impl WebhookStore for SqlStores {
    async fn get(&self, owner: UserId, id: WebhookId) -> Result<WebhookRegistration, StoreError> {
        let row = self
            .db
            .query_one(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ? AND owner_id = ?"),
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        self.webhook_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list(&self, owner: UserId) -> Result<Vec<WebhookRegistration>, StoreError> {
        let rows = self
            .db
            .query_all(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE owner_id = ? ORDER BY id"),
                vec![v(owner.as_uuid())],
            )
            .await?;
        rows.iter().map(|r| self.webhook_from(r)).collect()
    }

    async fn commit(&self, change: ChangeSet<WebhookOp>) -> Result<(), StoreError> {
        let sealer = self.sealer.as_deref();
        // Every column but the signing secrets: an update writes only
        // these, so it cannot put back a secret a rotation replaced.
        let settings = |w: &WebhookRegistration| -> Row {
            Row::new()
                .set("url", w.url().as_str())
                .set("events", events_to_bits(w.events()))
                .set("active", w.active())
                .set("alarm_ids", alarm_ids_to(w))
                .set(
                    "failure_count",
                    i32::try_from(w.failure_count()).unwrap_or(i32::MAX),
                )
        };
        let secrets = |id: uuid::Uuid,
                       secret: &SecretString,
                       previous: Option<&PreviousSecret>|
         -> Result<Row, StoreError> {
            Ok(Row::new()
                .set("secret", seal_secret(sealer, secret, "secret", id)?)
                .set(
                    "previous_secret",
                    previous
                        .map(|p| seal_secret(sealer, &p.secret, "previous_secret", id))
                        .transpose()?,
                )
                .set(
                    "previous_until_us",
                    previous.map(|p| crate::db::us(p.until)),
                ))
        };
        let write = match &change.op {
            WebhookOp::Create(w, quota) => Owned::Create {
                id: w.id().as_uuid(),
                owner: w.owner().as_uuid(),
                fields: settings(w).extend(secrets(w.id().as_uuid(), w.secret(), w.previous())?),
                quota: *quota,
            },
            WebhookOp::Update(w) => Owned::Update {
                id: w.id().as_uuid(),
                owner: w.owner().as_uuid(),
                fields: settings(w),
            },
            WebhookOp::Delete { owner, id } => Owned::Delete {
                id: id.as_uuid(),
                owner: owner.as_uuid(),
            },
            WebhookOp::RotateSecret {
                owner,
                id,
                expected,
                secret,
                previous,
            } => {
                let fields = secrets(id.as_uuid(), secret, previous.as_ref())?;
                return self
                    .db
                    .write(async |tx| {
                        let lock = if tx.backend == sea_orm::DbBackend::Postgres {
                            " FOR UPDATE"
                        } else {
                            ""
                        };
                        let row = tx
                            .query_one(
                                &format!(
                                    "SELECT secret FROM webhooks WHERE id = ? AND owner_id = ?{lock}"
                                ),
                                vec![v(id.as_uuid()), v(owner.as_uuid())],
                            )
                            .await?
                            .ok_or(StoreError::NotFound)?;
                        let stored = open_secret(
                            sealer,
                            col(&row, "secret")?,
                            "secret",
                            id.as_uuid(),
                        )?;
                        rotation_applies(&stored, expected)?;
                        tx.update(
                            "webhooks",
                            fields,
                            "id = ?",
                            vec![v(id.as_uuid())],
                        )
                        .await?;
                        super::apply_common(tx, &change).await
                    })
                    .await;
            }
        };
        commit_one(&self.db, &change, "webhooks", write, Prepared::Reprepare).await
    }
}
