//! Every alarm event is sent to the webhooks subscribed to it: events keep the data their webhooks carry, outbox rows keep the payload they send, and a registration may be narrowed to some alarms.

use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_event_payloads"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            // The webhook `data` of the event, fixed when it was made.
            "ALTER TABLE alarm_events ADD COLUMN data TEXT NULL",
            // What a webhook row sends as `data` (NULL: built when sent).
            "ALTER TABLE outbox ADD COLUMN payload TEXT NULL",
            // A JSON array of alarm ids; NULL: every alarm of the owner.
            "ALTER TABLE webhooks ADD COLUMN alarm_ids TEXT NULL",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "ALTER TABLE webhooks DROP COLUMN alarm_ids",
            "ALTER TABLE outbox DROP COLUMN payload",
            "ALTER TABLE alarm_events DROP COLUMN data",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
