//! Idempotency records for requests sent with an `Idempotency-Key` (expand only: one new table).

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_idempotency_keys"
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
        // `status` is NULL while the first request is still being answered.
        db.execute_unprepared(&format!(
            "CREATE TABLE idempotency_keys (
                owner_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                scope TEXT NOT NULL,
                idem_key TEXT NOT NULL,
                fingerprint {bytes} NOT NULL,
                created_us BIGINT NOT NULL,
                holder {uuid} NOT NULL,
                status INTEGER,
                headers TEXT,
                body TEXT,
                PRIMARY KEY (owner_id, scope, idem_key)
            )"
        ))
        .await?;
        // The hourly purge deletes by age.
        db.execute_unprepared(
            "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_us)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS idempotency_keys")
            .await?;
        Ok(())
    }
}
