//! E-mailed account tokens of every purpose in one table (pending password resets are copied in; `password_resets` stays, unread, until a later release drops it), the verification instant of each address (existing accounts count as verified), and the login instant of each session.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0010_account_tokens"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (uuid, bytes) = match manager.get_database_backend() {
            DbBackend::Postgres => ("UUID", "BYTEA"),
            _ => ("BLOB", "BLOB"),
        };
        let db = manager.get_connection();
        // One row per account and purpose (the primary key): a new link
        // replaces the last of its kind, so only the newest works.
        db.execute_unprepared(&format!(
            "CREATE TABLE account_tokens (
                user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                purpose TEXT NOT NULL,
                hash {bytes} NOT NULL UNIQUE,
                expires_us BIGINT NOT NULL,
                created_us BIGINT NOT NULL,
                PRIMARY KEY (user_id, purpose)
            )"
        ))
        .await?;
        // Links already e-mailed keep working. The old table is not dropped
        // here (expand/contract): processes of the previous release still
        // write and erase there while a deploy rolls; a later release drops
        // it once none runs.
        db.execute_unprepared(
            "INSERT INTO account_tokens (user_id, purpose, hash, expires_us, created_us)
             SELECT user_id, 'password_reset', hash, expires_us, created_us FROM password_resets",
        )
        .await?;
        // Accounts made before verification existed count as verified
        // (since they registered): they were already receiving alarm mail.
        db.execute_unprepared("ALTER TABLE users ADD COLUMN verified_us BIGINT")
            .await?;
        db.execute_unprepared("UPDATE users SET verified_us = created_us")
            .await?;
        // When the password login that opened a session happened; older
        // sessions get the epoch, so none of them counts as a recent login
        // (a default, so the previous release's inserts still work).
        db.execute_unprepared(
            "ALTER TABLE refresh_families ADD COLUMN logged_in_us BIGINT NOT NULL DEFAULT 0",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE refresh_families DROP COLUMN logged_in_us")
            .await?;
        db.execute_unprepared("ALTER TABLE users DROP COLUMN verified_us")
            .await?;
        // The reset links as they stand now go back to the table the
        // previous release reads.
        db.execute_unprepared("DELETE FROM password_resets").await?;
        db.execute_unprepared(
            "INSERT INTO password_resets (user_id, hash, expires_us, created_us)
             SELECT user_id, hash, expires_us, created_us FROM account_tokens
             WHERE purpose = 'password_reset'",
        )
        .await?;
        db.execute_unprepared("DROP TABLE account_tokens").await?;
        Ok(())
    }
}
