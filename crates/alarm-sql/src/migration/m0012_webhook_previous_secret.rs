//! A webhook's rotated-out signing secret (sealed like the current one) and when it stops signing, for a rotation's overlap.

use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0012_webhook_previous_secret"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Both nullable, set and cleared together: a registration never
        // rotated (every row of the previous release) has neither.
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE webhooks ADD COLUMN previous_secret TEXT")
            .await?;
        db.execute_unprepared("ALTER TABLE webhooks ADD COLUMN previous_until_us BIGINT")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE webhooks DROP COLUMN previous_until_us")
            .await?;
        db.execute_unprepared("ALTER TABLE webhooks DROP COLUMN previous_secret")
            .await?;
        Ok(())
    }
}
