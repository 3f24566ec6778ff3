//! Resumable uploads: one row per upload, its stored parts as JSON, and the offset a PATCH compares and sets.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0013_uploads"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let uuid = match manager.get_database_backend() {
            DbBackend::Postgres => "UUID",
            _ => "BLOB",
        };
        let db = manager.get_connection();
        // `offset_bytes` is derived (parts + tail) but stored: it is the
        // value a PATCH's compare-and-set tests.
        db.execute_unprepared(&format!(
            "CREATE TABLE uploads (
                id {uuid} PRIMARY KEY,
                owner_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                length BIGINT NOT NULL,
                filename TEXT NOT NULL,
                content_type TEXT NOT NULL,
                multipart TEXT NULL,
                parts TEXT NOT NULL,
                tail BIGINT NOT NULL,
                offset_bytes BIGINT NOT NULL,
                created_us BIGINT NOT NULL,
                expires_us BIGINT NOT NULL
            )"
        ))
        .await?;
        db.execute_unprepared("CREATE INDEX uploads_owner ON uploads (owner_id, id)")
            .await?;
        db.execute_unprepared("CREATE INDEX uploads_expiry ON uploads (expires_us, id)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE uploads")
            .await?;
        Ok(())
    }
}
