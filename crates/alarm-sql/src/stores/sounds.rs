//! The sound store on SQL: one row per sound, registered under the sound quotas counted in the insert's transaction, deleted only while no alarm of its owner names it.

use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::model::{Sound, SoundQuota, SoundUsage, sound_deletable};
use alarm_domain::ports::{SoundStore, StoreError};
use async_trait::async_trait;
use sea_orm::{DbBackend, QueryResult};

use super::{SqlStores, id_of, v};
use crate::db::{Tx, col, num, ts, us};
use crate::row::Row;

/// Every column of a sound, named.
const COLUMNS: &str = "id, owner_id, name, content_type, size_bytes, created_us";

fn sound_from(row: &QueryResult) -> Result<Sound, StoreError> {
    Ok(Sound {
        id: id_of(row, "id", BlobId::from_uuid)?,
        owner: id_of(row, "owner_id", UserId::from_uuid)?,
        name: col(row, "name")?,
        content_type: col(row, "content_type")?,
        size: num::<i64, u64>(row, "size_bytes")?,
        created_at: ts(col(row, "created_us")?)?,
    })
}

/// The owner's live sound in `tx` (with `tombstones`, a deleted one too);
/// `lock` names the row lock PostgreSQL takes (SQLite's write transaction
/// already excludes other writers).
pub(crate) async fn sound_in(
    tx: &Tx,
    owner: UserId,
    id: BlobId,
    lock: &str,
    tombstones: bool,
) -> Result<Option<Sound>, StoreError> {
    let lock = if tx.backend == DbBackend::Postgres {
        lock
    } else {
        ""
    };
    let live = if tombstones {
        ""
    } else {
        " AND deleted_us IS NULL"
    };
    tx.query_one(
        &format!("SELECT {COLUMNS} FROM sounds WHERE id = ? AND owner_id = ?{live}{lock}"),
        vec![v(id.as_uuid()), v(owner.as_uuid())],
    )
    .await?
    .as_ref()
    .map(sound_from)
    .transpose()
}

/// What an owner's sounds take up (one parameter: the owner).
const USAGE: &str = "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS bytes \
                     FROM sounds WHERE owner_id = ? AND deleted_us IS NULL";

fn usage_from(row: Option<QueryResult>) -> Result<SoundUsage, StoreError> {
    Ok(match row {
        Some(r) => SoundUsage {
            count: num::<i64, u64>(&r, "n")?,
            bytes: num::<i64, u64>(&r, "bytes")?,
        },
        None => SoundUsage::default(),
    })
}

#[async_trait]
impl SoundStore for SqlStores {
    async fn register(&self, sound: &Sound, quota: SoundQuota) -> Result<Sound, StoreError> {
        self.db
            .write(async |tx| {
                // The owner's row lock serialises registrations, so two
                // completions cannot both pass the quota.
                if tx.backend == DbBackend::Postgres {
                    tx.query_one(
                        "SELECT id FROM users WHERE id = ? FOR NO KEY UPDATE",
                        vec![v(sound.owner.as_uuid())],
                    )
                    .await?;
                }
                if let Some(kept) = sound_in(tx, sound.owner, sound.id, "", true).await? {
                    return Ok(kept);
                }
                let usage = usage_from(tx.query_one(USAGE, vec![v(sound.owner.as_uuid())]).await?)?;
                quota.admit(usage, sound.size)?;
                let row = Row::new()
                    .set("id", sound.id.as_uuid())
                    .set("owner_id", sound.owner.as_uuid())
                    .set("name", sound.name.clone())
                    .set("content_type", sound.content_type.clone())
                    .set("size_bytes", i64::try_from(sound.size).unwrap_or(i64::MAX))
                    .set("created_us", us(sound.created_at));
                tx.insert("sounds", vec![row], "").await?;
                Ok(sound.clone())
            })
            .await
    }

    async fn get(&self, owner: UserId, id: BlobId) -> Result<Sound, StoreError> {
        let row = self
            .db
            .query_one(
                &format!(
                    "SELECT {COLUMNS} FROM sounds WHERE id = ? AND owner_id = ? \
                     AND deleted_us IS NULL"
                ),
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        sound_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list(&self, owner: UserId, limit: u32) -> Result<Vec<Sound>, StoreError> {
        let rows = self
            .db
            .query_all(
                &format!(
                    "SELECT {COLUMNS} FROM sounds WHERE owner_id = ? AND deleted_us IS NULL \
                     ORDER BY id LIMIT ?"
                ),
                vec![v(owner.as_uuid()), v(i64::from(limit))],
            )
            .await?;
        rows.iter().map(sound_from).collect()
    }

    async fn usage(&self, owner: UserId) -> Result<SoundUsage, StoreError> {
        usage_from(self.db.query_one(USAGE, vec![v(owner.as_uuid())]).await?)
    }

    async fn delete(&self, owner: UserId, id: BlobId) -> Result<Sound, StoreError> {
        self.db
            .write(async |tx| {
                // Locked before the alarms are counted: an alarm save
                // naming it takes a share lock on the row, so one of the
                // two waits for the other.
                let sound = sound_in(tx, owner, id, " FOR UPDATE", false)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let row = tx
                    .query_one(
                        "SELECT COUNT(*) AS n FROM alarms WHERE owner_id = ? AND sound_id = ?",
                        vec![v(owner.as_uuid()), v(id.as_uuid())],
                    )
                    .await?;
                let naming = match row {
                    Some(r) => num::<i64, u64>(&r, "n")?,
                    None => 0,
                };
                sound_deletable(naming)?;
                tx.exec(
                    "UPDATE sounds SET deleted_us = ? WHERE id = ?",
                    vec![v(us(Timestamp::now())), v(id.as_uuid())],
                )
                .await?;
                Ok(sound)
            })
            .await
    }

    async fn purge(&self, owner: UserId, id: BlobId) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                tx.exec(
                    "DELETE FROM sounds WHERE id = ? AND owner_id = ? AND deleted_us IS NOT NULL",
                    vec![v(id.as_uuid()), v(owner.as_uuid())],
                )
                .await?;
                Ok(())
            })
            .await
    }

    async fn tombstones(
        &self,
        owner: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<Sound>, StoreError> {
        let (filter, mut values) = match owner {
            Some(o) => (" AND owner_id = ?", vec![v(o.as_uuid())]),
            None => ("", Vec::new()),
        };
        values.push(v(i64::from(limit)));
        let rows = self
            .db
            .query_all(
                &format!(
                    "SELECT {COLUMNS} FROM sounds WHERE deleted_us IS NOT NULL{filter} \
                     ORDER BY deleted_us, id LIMIT ?"
                ),
                values,
            )
            .await?;
        rows.iter().map(sound_from).collect()
    }
}
