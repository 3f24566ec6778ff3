//! The trace context of each outbox row: the W3C `traceparent` of the span that queued it, so its delivery continues that trace.

use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0011_outbox_trace"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Nullable, no default: rows queued without tracing (and every
        // row of the previous release) have none. The store writes only
        // the 55-character `traceparent` it formats itself, and a claim
        // ignores a longer value.
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE outbox ADD COLUMN trace_parent TEXT")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE outbox DROP COLUMN trace_parent")
            .await?;
        Ok(())
    }
}
