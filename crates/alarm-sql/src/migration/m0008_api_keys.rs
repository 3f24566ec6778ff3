//! API keys: one row per key, the text stored only as its SHA-256, found by its visible prefix.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0008_api_keys"
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
        db.execute_unprepared(&format!(
            "CREATE TABLE api_keys (
                id {uuid} PRIMARY KEY,
                owner_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                prefix TEXT NOT NULL UNIQUE,
                hash {bytes} NOT NULL,
                scopes SMALLINT NOT NULL,
                created_us BIGINT NOT NULL,
                expires_us BIGINT NULL,
                retires_us BIGINT NULL,
                last_used_us BIGINT NULL
            )"
        ))
        .await?;
        db.execute_unprepared("CREATE INDEX api_keys_owner ON api_keys (owner_id, id)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE api_keys")
            .await?;
        Ok(())
    }
}
