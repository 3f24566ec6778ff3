//! Holiday re-plan jobs (one per country, walked in batches by the engine's process), the index they walk users by, and the routines attached to each alarm.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_replans_and_routine_links"
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
        // `after_user` is the cursor: the last user already re-planned.
        db.execute_unprepared(&format!(
            "CREATE TABLE replan_jobs (
                country TEXT PRIMARY KEY,
                generation BIGINT NOT NULL,
                step BIGINT NOT NULL,
                after_user {uuid} NULL,
                requested_us BIGINT NOT NULL
            )"
        ))
        .await?;
        // A job walks one country's users in id order, a batch at a time.
        db.execute_unprepared("CREATE INDEX users_country ON users (country, id)")
            .await?;
        // Deleting either side detaches (the foreign keys cascade); the
        // owner column lets the store check both sides are one user's.
        db.execute_unprepared(&format!(
            "CREATE TABLE alarm_routines (
                alarm_id {uuid} NOT NULL REFERENCES alarms (id) ON DELETE CASCADE,
                routine_id {uuid} NOT NULL REFERENCES routines (id) ON DELETE CASCADE,
                owner_id {uuid} NOT NULL,
                position SMALLINT NOT NULL,
                PRIMARY KEY (alarm_id, routine_id)
            )"
        ))
        .await?;
        db.execute_unprepared("CREATE INDEX alarm_routines_routine ON alarm_routines (routine_id)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE alarm_routines").await?;
        db.execute_unprepared("DROP INDEX users_country").await?;
        db.execute_unprepared("DROP TABLE replan_jobs").await?;
        Ok(())
    }
}
