//! Password-reset tokens: at most one per account, stored only as the SHA-256 of the e-mailed text, deleted when spent.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_password_resets"
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
        // One row per account (the primary key): a new request replaces
        // the last, so only the newest e-mailed link works.
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE TABLE password_resets (
                    user_id {uuid} PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
                    hash {bytes} NOT NULL UNIQUE,
                    expires_us BIGINT NOT NULL,
                    created_us BIGINT NOT NULL
                )"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE password_resets")
            .await?;
        Ok(())
    }
}
