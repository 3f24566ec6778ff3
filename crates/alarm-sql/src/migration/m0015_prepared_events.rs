//! The instant from which an event, or an outbox row, the engine prepared ahead of its ring is visible (`effective_us`; NULL: from its commit).

use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0015_prepared_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Nullable: the services' events (and every row of the previous
        // release) are visible from their commit, so they keep NULL; only
        // the engine's outcomes carry the instant they ring at.
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE alarm_events ADD COLUMN effective_us BIGINT")
            .await?;
        db.execute_unprepared("ALTER TABLE outbox ADD COLUMN effective_us BIGINT")
            .await?;
        // An edit withdraws its alarm's prepared events that have not taken
        // effect yet; this finds them without the owner.
        db.execute_unprepared(
            "CREATE INDEX alarm_events_prepared ON alarm_events (alarm_id, effective_us) \
             WHERE effective_us IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX alarm_events_prepared")
            .await?;
        db.execute_unprepared("ALTER TABLE alarm_events DROP COLUMN effective_us")
            .await?;
        db.execute_unprepared("ALTER TABLE outbox DROP COLUMN effective_us")
            .await?;
        Ok(())
    }
}
