//! The API-key store on SQL: each owner's keys, found for authentication by their visible prefix, with the hash of their text and the time of their last use.

use alarm_domain::ids::{ApiKeyId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::model::{ApiKey, ApiKeyName, ApiKeyScopes};
use alarm_domain::ports::{ApiKeyOp, ApiKeyStore, ChangeSet, StoreError};
use async_trait::async_trait;
use sea_orm::QueryResult;

use super::{SqlStores, apply_common, id_of, v};
use crate::db::{Tx, col, corrupt, num, ts, us};
use crate::row::Row;

/// Every column of a key, named (see the outbox's `COLUMNS`).
const COLUMNS: &str =
    "id, owner_id, name, prefix, hash, scopes, created_us, expires_us, retires_us, last_used_us";

fn key_from(row: &QueryResult) -> Result<(ApiKey, [u8; 32]), StoreError> {
    let hash: Vec<u8> = col(row, "hash")?;
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| corrupt("hash", "not 32 bytes"))?;
    let at = |name: &str| -> Result<Option<Timestamp>, StoreError> {
        col::<Option<i64>>(row, name)?.map(ts).transpose()
    };
    Ok((
        ApiKey {
            id: id_of(row, "id", ApiKeyId::from_uuid)?,
            owner: id_of(row, "owner_id", UserId::from_uuid)?,
            name: ApiKeyName::parse(&col::<String>(row, "name")?)
                .map_err(|e| corrupt("name", e))?,
            prefix: col(row, "prefix")?,
            scopes: ApiKeyScopes::from_bits(num::<i16, u8>(row, "scopes")?)
                .map_err(|e| corrupt("scopes", e))?,
            created_at: ts(col(row, "created_us")?)?,
            expires_at: at("expires_us")?,
            retires_at: at("retires_us")?,
            last_used_at: at("last_used_us")?,
        },
        hash,
    ))
}

async fn insert(tx: &Tx, key: &ApiKey, hash: [u8; 32]) -> Result<(), StoreError> {
    let row = Row::new()
        .set("id", key.id.as_uuid())
        .set("owner_id", key.owner.as_uuid())
        .set("name", key.name.as_str())
        .set("prefix", key.prefix.as_str())
        .set("hash", hash.to_vec())
        .set("scopes", i16::from(key.scopes.bits()))
        .set("created_us", us(key.created_at))
        .set("expires_us", key.expires_at.map(us))
        .set("retires_us", key.retires_at.map(us))
        .set("last_used_us", key.last_used_at.map(us));
    tx.insert("api_keys", vec![row], "").await?;
    Ok(())
}

/// Locks the owner's key `id` until commit; `NotFound` if it is not theirs.
async fn lock_owned(tx: &Tx, owner: UserId, id: ApiKeyId) -> Result<(), StoreError> {
    let lock = if tx.backend == sea_orm::DbBackend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    tx.query_one(
        &format!("SELECT id FROM api_keys WHERE id = ? AND owner_id = ?{lock}"),
        vec![v(id.as_uuid()), v(owner.as_uuid())],
    )
    .await?
    .map(|_| ())
    .ok_or(StoreError::NotFound)
}

#[async_trait]
impl ApiKeyStore for SqlStores {
    async fn get(&self, owner: UserId, id: ApiKeyId) -> Result<ApiKey, StoreError> {
        let row = self
            .db
            .query_one(
                &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ? AND owner_id = ?"),
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        Ok(key_from(&row.ok_or(StoreError::NotFound)?)?.0)
    }

    async fn list(&self, owner: UserId) -> Result<Vec<ApiKey>, StoreError> {
        let rows = self
            .db
            .query_all(
                &format!("SELECT {COLUMNS} FROM api_keys WHERE owner_id = ? ORDER BY id"),
                vec![v(owner.as_uuid())],
            )
            .await?;
        rows.iter().map(|r| key_from(r).map(|(k, _)| k)).collect()
    }

    async fn find(&self, prefix: &str) -> Result<Option<(ApiKey, [u8; 32])>, StoreError> {
        let row = self
            .db
            .query_one(
                &format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = ?"),
                vec![v(prefix)],
            )
            .await?;
        row.as_ref().map(key_from).transpose()
    }

    async fn commit(&self, change: ChangeSet<ApiKeyOp>) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                match &change.op {
                    ApiKeyOp::Create { key, hash, quota } => {
                        tx.admit("api_keys", key.owner.as_uuid(), *quota).await?;
                        insert(tx, key, *hash).await?;
                    }
                    ApiKeyOp::Rotate {
                        old,
                        old_retires_at,
                        key,
                        hash,
                        quota,
                    } => {
                        lock_owned(tx, key.owner, *old).await?;
                        tx.admit_replacing("api_keys", key.owner.as_uuid(), *quota)
                            .await?;
                        tx.exec(
                            "UPDATE api_keys SET retires_us = ? WHERE id = ?",
                            vec![v(us(*old_retires_at)), v(old.as_uuid())],
                        )
                        .await?;
                        insert(tx, key, *hash).await?;
                    }
                    ApiKeyOp::Delete { owner, id } => {
                        lock_owned(tx, *owner, *id).await?;
                        tx.exec("DELETE FROM api_keys WHERE id = ?", vec![v(id.as_uuid())])
                            .await?;
                    }
                }
                apply_common(tx, &change).await?;
                Ok(())
            })
            .await
    }

    async fn touch(
        &self,
        id: ApiKeyId,
        at: Timestamp,
        unless_since: Timestamp,
    ) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                tx.exec(
                    "UPDATE api_keys SET last_used_us = ? \
             WHERE id = ? AND (last_used_us IS NULL OR last_used_us < ?)",
                    vec![v(us(at)), v(id.as_uuid()), v(us(unless_since))],
                )
                .await?;
                Ok(())
            })
            .await
    }

    async fn purge_ended(&self, before: Timestamp) -> Result<u64, StoreError> {
        // `ApiKey::ends_at` in SQL: the earlier of the two ends that are set.
        self.db.write(async |tx| {
        let n = tx
            .exec(
                "DELETE FROM api_keys WHERE \
                 (expires_us IS NOT NULL AND expires_us < ?) OR (retires_us IS NOT NULL AND retires_us < ?)",
                vec![v(us(before)), v(us(before))],
            )
            .await?;
        Ok(n)
        }).await
    }
}
