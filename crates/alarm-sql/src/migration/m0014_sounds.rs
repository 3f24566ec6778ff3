//! Sounds: one row per sound an owner uploaded (its bytes are the object store's blob of the same id; a deleted one stays as a tombstone, `deleted_us`, until its bytes are gone), and an index for the alarms that name one.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0014_sounds"
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
        db.execute_unprepared(&format!(
            "CREATE TABLE sounds (
                id {uuid} PRIMARY KEY,
                owner_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                content_type TEXT NOT NULL,
                size_bytes BIGINT NOT NULL,
                created_us BIGINT NOT NULL,
                deleted_us BIGINT NULL
            )"
        ))
        .await?;
        db.execute_unprepared("CREATE INDEX sounds_owner ON sounds (owner_id, id)")
            .await?;
        // A sound's delete counts the alarms naming it.
        db.execute_unprepared(
            "CREATE INDEX alarms_sound ON alarms (owner_id, sound_id) WHERE sound_id IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX alarms_sound").await?;
        db.execute_unprepared("DROP TABLE sounds").await?;
        Ok(())
    }
}
