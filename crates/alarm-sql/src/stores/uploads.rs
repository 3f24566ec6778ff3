//! The upload store on SQL: each upload's state in one row, advanced by the domain's rule under a compare-and-set on its offset.

use alarm_domain::ids::{UploadId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::limits::Quota;
use alarm_domain::model::{Upload, UploadFile, UploadPart, UploadProgress};
use alarm_domain::ports::{StoreError, UploadStore, upload_refusal};
use async_trait::async_trait;
use sea_orm::QueryResult;

use super::{SqlStores, id_of, v};
use crate::db::{Tx, col, corrupt, num, ts, us};
use crate::row::Row;

/// Every column of an upload, named.
const COLUMNS: &str = "id, owner_id, length, filename, content_type, multipart, parts, tail, \
                       offset_bytes, created_us, expires_us";

/// A byte count as a `BIGINT` (uploads are bounded at 100 MiB, so it fits).
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Parts as `[[number, size, "tag"], …]`.
fn parts_to_json(parts: &[UploadPart]) -> String {
    serde_json::Value::Array(
        parts
            .iter()
            .map(|p| serde_json::json!([p.number, p.size, p.tag]))
            .collect(),
    )
    .to_string()
}

fn parts_from_json(text: &str) -> Result<Vec<UploadPart>, StoreError> {
    let bad = || corrupt("parts", "not a list of [number, size, tag]");
    let list: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|_| bad())?;
    list.iter()
        .map(|p| {
            Ok(UploadPart {
                number: p[0]
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(bad)?,
                size: p[1].as_u64().ok_or_else(bad)?,
                tag: p[2].as_str().ok_or_else(bad)?.to_owned(),
            })
        })
        .collect()
}

fn upload_from(row: &QueryResult) -> Result<Upload, StoreError> {
    Ok(Upload {
        id: id_of(row, "id", UploadId::from_uuid)?,
        owner: id_of(row, "owner_id", UserId::from_uuid)?,
        length: num::<i64, u64>(row, "length")?,
        file: UploadFile::new(
            &col::<String>(row, "filename")?,
            &col::<String>(row, "content_type")?,
        )
        .map_err(|e| corrupt("filename", e))?,
        multipart: col(row, "multipart")?,
        parts: parts_from_json(&col::<String>(row, "parts")?)?,
        tail: num::<i64, u64>(row, "tail")?,
        created_at: ts(col(row, "created_us")?)?,
        expires_at: ts(col(row, "expires_us")?)?,
    })
}

/// The columns a PATCH changes.
fn progress_row(u: &Upload) -> Row {
    Row::new()
        .set("multipart", u.multipart.clone())
        .set("parts", parts_to_json(&u.parts))
        .set("tail", big(u.tail))
        .set("offset_bytes", big(u.offset()))
        .set("expires_us", us(u.expires_at))
}

/// The owner's upload, locked until commit on PostgreSQL (SQLite's write
/// transaction already excludes other writers).
async fn locked(tx: &Tx, owner: UserId, id: UploadId) -> Result<Upload, StoreError> {
    let lock = if tx.backend == sea_orm::DbBackend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let row = tx
        .query_one(
            &format!("SELECT {COLUMNS} FROM uploads WHERE id = ? AND owner_id = ?{lock}"),
            vec![v(id.as_uuid()), v(owner.as_uuid())],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    upload_from(&row)
}

#[async_trait]
impl UploadStore for SqlStores {
    async fn create(&self, upload: &Upload, quota: Quota) -> Result<(), StoreError> {
        let row = Row::new()
            .set("id", upload.id.as_uuid())
            .set("owner_id", upload.owner.as_uuid())
            .set("length", big(upload.length))
            .set("filename", upload.file.filename())
            .set("content_type", upload.file.content_type())
            .set("created_us", us(upload.created_at))
            .extend(progress_row(upload));
        self.db
            .write(async |tx| {
                tx.admit("uploads", upload.owner.as_uuid(), quota).await?;
                tx.insert("uploads", vec![row], "").await?;
                Ok(())
            })
            .await
    }

    async fn get(&self, owner: UserId, id: UploadId) -> Result<Upload, StoreError> {
        let row = self
            .db
            .query_one(
                &format!("SELECT {COLUMNS} FROM uploads WHERE id = ? AND owner_id = ?"),
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        upload_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn advance(
        &self,
        owner: UserId,
        id: UploadId,
        progress: &UploadProgress,
    ) -> Result<Upload, StoreError> {
        self.db
            .write(async |tx| {
                let next = locked(tx, owner, id)
                    .await?
                    .advance(progress)
                    .map_err(upload_refusal)?;
                let row = progress_row(&next);
                let sql = format!(
                    "UPDATE uploads SET {} WHERE id = ? AND offset_bytes = ?",
                    row.assignments()
                );
                let mut values = row.into_values();
                values.extend([v(id.as_uuid()), v(big(progress.from_offset))]);
                // The lock makes this a formality on PostgreSQL; the
                // offset test keeps it true on any isolation level.
                if tx.exec(&sql, values).await? == 0 {
                    return Err(StoreError::Conflict(
                        "the upload moved while the PATCH was stored".into(),
                    ));
                }
                Ok(next)
            })
            .await
    }

    async fn delete(&self, owner: UserId, id: UploadId) -> Result<Upload, StoreError> {
        self.db
            .write(async |tx| {
                let upload = locked(tx, owner, id).await?;
                tx.exec("DELETE FROM uploads WHERE id = ?", vec![v(id.as_uuid())])
                    .await?;
                Ok(upload)
            })
            .await
    }

    async fn pending(&self, owner: UserId) -> Result<alarm_domain::model::SoundUsage, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(length), 0) AS BIGINT) AS bytes \
                 FROM uploads WHERE owner_id = ?",
                vec![v(owner.as_uuid())],
            )
            .await?;
        Ok(match row {
            Some(r) => alarm_domain::model::SoundUsage {
                count: num::<i64, u64>(&r, "n")?,
                bytes: num::<i64, u64>(&r, "bytes")?,
            },
            None => alarm_domain::model::SoundUsage::default(),
        })
    }

    async fn expired(&self, now: Timestamp, limit: u32) -> Result<Vec<Upload>, StoreError> {
        let rows = self
            .db
            .query_all(
                &format!(
                    "SELECT {COLUMNS} FROM uploads WHERE expires_us <= ? \
                     ORDER BY expires_us, id LIMIT ?"
                ),
                vec![v(us(now)), v(i64::from(limit))],
            )
            .await?;
        rows.iter().map(upload_from).collect()
    }
}
