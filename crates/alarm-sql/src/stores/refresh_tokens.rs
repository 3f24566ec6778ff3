//! The refresh-token store on SQL: token families, rotation that spends a token once, and revocation.

use alarm_domain::ids::UserId;
use alarm_domain::ports::{RefreshFamily, RefreshTokenStore, Rotation, StoreError};
use async_trait::async_trait;
use uuid::Uuid;

use super::{SqlStores, id_of, v};
use crate::db::{Tx, col, ts, us};
use crate::row::Row;

/// A spent token came back: it leaked, so the whole family dies, and that
/// is committed (the caller refuses the token but the revocation sticks).
async fn reused(tx: &Tx, family: RefreshFamily) -> Result<Rotation, StoreError> {
    tx.exec(
        "UPDATE refresh_families SET revoked = ? WHERE id = ?",
        vec![v(true), v(family.id)],
    )
    .await?;
    Ok(Rotation::Reused(RefreshFamily {
        revoked: true,
        ..family
    }))
}

/// A family from a row of `refresh_families`' columns.
fn family_from(row: &sea_orm::QueryResult) -> Result<RefreshFamily, StoreError> {
    Ok(RefreshFamily {
        id: col(row, "id")?,
        user: id_of(row, "user_id", UserId::from_uuid)?,
        expires_at: ts(col(row, "expires_us")?)?,
        logged_in_at: ts(col(row, "logged_in_us")?)?,
        revoked: col(row, "revoked")?,
    })
}

/// An unspent token of `family`, by its hash.
fn fresh_token(hash: [u8; 32], family: Uuid) -> Row {
    Row::new()
        .set("hash", hash.to_vec())
        .set("family_id", family)
        .set("spent", false)
}

#[async_trait]
impl RefreshTokenStore for SqlStores {
    async fn create(&self, family: RefreshFamily, token_hash: [u8; 32]) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                let row = Row::new()
                    .set("id", family.id)
                    .set("user_id", family.user.as_uuid())
                    .set("expires_us", us(family.expires_at))
                    .set("logged_in_us", us(family.logged_in_at))
                    .set("revoked", family.revoked);
                tx.insert("refresh_families", vec![row], "").await?;
                tx.insert(
                    "refresh_tokens",
                    vec![fresh_token(token_hash, family.id)],
                    "",
                )
                .await?;
                Ok(())
            })
            .await
    }

    async fn rotate(
        &self,
        old_hash: [u8; 32],
        new_hash: [u8; 32],
        now: alarm_domain::jiff::Timestamp,
    ) -> Result<Rotation, StoreError> {
        self.db.write(async |tx| {
        let row = tx
            .query_one(
                &format!(
                    "SELECT t.spent, f.id, f.user_id, f.expires_us, f.logged_in_us, f.revoked FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.hash = ?{}",
                    // Lock the token and its family: a concurrent rotation
                    // or logout waits, then sees this one's result.
                    if tx.backend == sea_orm::DbBackend::Postgres { " FOR UPDATE" } else { "" }
                ),
                vec![v(old_hash.to_vec())],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let family = family_from(&row)?;
        if col::<bool>(&row, "spent")? {
            return reused(tx, family).await;
        }
        if family.revoked || now >= family.expires_at {
            return Ok(Rotation::Refused);
        }
        // Spend only if still unspent: two concurrent rotations, one winner.
        let n = tx
            .exec(
                "UPDATE refresh_tokens SET spent = ? WHERE hash = ? AND spent = ?",
                vec![v(true), v(old_hash.to_vec()), v(false)],
            )
            .await?;
        if n == 0 {
            // Spent by a concurrent rotation: that is reuse too.
            return reused(tx, family).await;
        }
        tx.insert("refresh_tokens", vec![fresh_token(new_hash, family.id)], "")
            .await?;
        Ok(Rotation::Rotated(family))
        }).await
    }

    async fn revoke_user(&self, user: UserId, keep: Option<Uuid>) -> Result<u64, StoreError> {
        self.db.write(async |tx| {
        // The nil UUID is never a family id (families get v7 ids), so it
        // stands for "keep none" in one statement.
        let n = tx
            .exec(
                "UPDATE refresh_families SET revoked = ? WHERE user_id = ? AND revoked = ? AND id <> ?",
                vec![
                    v(true),
                    v(user.as_uuid()),
                    v(false),
                    v(keep.unwrap_or(Uuid::nil())),
                ],
            )
            .await?;
        Ok(n)
        }).await
    }

    async fn revoke(&self, token_hash: [u8; 32]) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                let row = tx
                    .query_one(
                        "SELECT family_id FROM refresh_tokens WHERE hash = ?",
                        vec![v(token_hash.to_vec())],
                    )
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let family: Uuid = col(&row, "family_id")?;
                tx.exec(
                    "UPDATE refresh_families SET revoked = ? WHERE id = ?",
                    vec![v(true), v(family)],
                )
                .await?;
                Ok(())
            })
            .await
    }

    async fn family(&self, id: Uuid) -> Result<RefreshFamily, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT id, user_id, expires_us, logged_in_us, revoked FROM refresh_families WHERE id = ?",
                vec![v(id)],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        family_from(&row)
    }

    async fn revoke_family(&self, id: Uuid) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                let n = tx
                    .exec(
                        "UPDATE refresh_families SET revoked = ? WHERE id = ?",
                        vec![v(true), v(id)],
                    )
                    .await?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await
    }
}
