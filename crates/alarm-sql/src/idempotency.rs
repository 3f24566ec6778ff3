//! The idempotency store over SQL: one row per (owner, scope, key); the primary key decides which of two concurrent requests goes first.

use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::ports::{
    IdempotencyKey, IdempotencyStore, Reservation, StoreError, StoredResponse,
};
use async_trait::async_trait;
use sea_orm::{DbBackend, Value};

use crate::SqlStores;
use crate::db::{col, corrupt, ts, us};
use crate::row::Row;

fn key_values(k: &IdempotencyKey) -> Vec<Value> {
    vec![
        k.owner.as_uuid().into(),
        k.scope.clone().into(),
        k.key.clone().into(),
    ]
}

const WHERE_KEY: &str = "owner_id = ? AND scope = ? AND idem_key = ?";

#[async_trait]
impl IdempotencyStore for SqlStores {
    async fn reserve(
        &self,
        key: &IdempotencyKey,
        fingerprint: [u8; 32],
        holder: uuid::Uuid,
        now: Timestamp,
        ttl: SignedDuration,
    ) -> Result<Reservation, StoreError> {
        self.db.write(async |tx| {
        let row = Row::new()
            .set("owner_id", key.owner.as_uuid())
            .set("scope", key.scope.clone())
            .set("idem_key", key.key.clone())
            .set("fingerprint", fingerprint.to_vec())
            .set("created_us", us(now))
            .set("holder", holder);
        // The insert either wins the key or finds it taken; a concurrent
        // inserter on PostgreSQL waits on the key's index entry, then sees it.
        let inserted = tx
            .insert(
                "idempotency_keys",
                vec![row],
                "ON CONFLICT (owner_id, scope, idem_key) DO NOTHING",
            )
            .await?;
        if inserted == 1 {
            return Ok(Reservation::Fresh);
        }
        let lock = if tx.backend == DbBackend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = tx
            .query_one(
                &format!(
                    "SELECT fingerprint, created_us, status, headers, body FROM idempotency_keys WHERE {WHERE_KEY}{lock}"
                ),
                key_values(key),
            )
            .await?
            .ok_or_else(|| StoreError::Retryable("idempotency record vanished".into()))?;
        let stored: Vec<u8> = col(&row, "fingerprint")?;
        let created = ts(col(&row, "created_us")?)?;
        let answer = match col::<Option<i32>>(&row, "status")? {
            None => None,
            Some(status) => Some(StoredResponse {
                status: u16::try_from(status).map_err(|e| corrupt("idempotency status", e))?,
                headers: serde_json::from_str(&col::<String>(&row, "headers")?)
                    .map_err(|e| corrupt("idempotency headers", e))?,
                body: col(&row, "body")?,
            }),
        };
        if let Some(found) =
            Reservation::of_stored(&stored, created, answer, &fingerprint, now, ttl)
        {
            return Ok(found);
        }
        // The record no longer holds the key: this request takes it.
        let mut values = vec![fingerprint.to_vec().into(), us(now).into(), holder.into()];
        values.extend(key_values(key));
        tx.exec(
            &format!(
                "UPDATE idempotency_keys SET fingerprint = ?, created_us = ?, holder = ?, status = NULL, headers = NULL, body = NULL WHERE {WHERE_KEY}"
            ),
            values,
        )
        .await?;
        Ok(Reservation::Fresh)
        }).await
    }

    async fn finish(
        &self,
        key: &IdempotencyKey,
        holder: uuid::Uuid,
        response: StoredResponse,
    ) -> Result<(), StoreError> {
        let headers = serde_json::to_string(&response.headers)
            .map_err(|e| StoreError::Unexpected(e.into()))?;
        let mut values: Vec<Value> = vec![
            i32::from(response.status).into(),
            headers.into(),
            response.body.into(),
        ];
        values.extend(key_values(key));
        values.push(holder.into());
        self.db.write(async |tx| {
        let n = tx
            .exec(
                &format!(
                    "UPDATE idempotency_keys SET status = ?, headers = ?, body = ? WHERE {WHERE_KEY} AND holder = ?"
                ),
                values,
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
        }).await
    }

    async fn abandon(&self, key: &IdempotencyKey, holder: uuid::Uuid) -> Result<(), StoreError> {
        let mut values = key_values(key);
        values.push(holder.into());
        self.db
            .write(async |tx| {
                tx.exec(
                    &format!("DELETE FROM idempotency_keys WHERE {WHERE_KEY} AND holder = ?"),
                    values,
                )
                .await?;
                Ok(())
            })
            .await
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.db
            .write(async |tx| {
                let n = tx
                    .exec(
                        "DELETE FROM idempotency_keys WHERE created_us < ?",
                        vec![us(before).into()],
                    )
                    .await?;
                Ok(n)
            })
            .await
    }
}
