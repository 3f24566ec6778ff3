//! The outbox: one row per notification to one destination (webhook registration or email), with its lease, attempts and last result.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_outbox"
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
        // `message` is the engine's delivery id (shared by every
        // registration it fans out to); `target` the registration, or for
        // email the owner (a `webhook.disabled` notice: the registration).
        // Alarm columns are NULL for tests and notices.
        db.execute_unprepared(&format!(
            "CREATE TABLE outbox (
                message_id {uuid} NOT NULL,
                target_id {uuid} NOT NULL,
                channel TEXT NOT NULL,
                owner_id {uuid} NOT NULL,
                alarm_id {uuid} NULL,
                occurrence_us BIGINT NULL,
                occurrence_local TEXT NULL,
                topic TEXT NOT NULL,
                fallback BOOLEAN NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                due_us BIGINT NOT NULL,
                lease_token {uuid} NULL,
                lease_until_us BIGINT NULL,
                last_code INTEGER NULL,
                last_error TEXT NULL,
                latency_ms BIGINT NULL,
                created_us BIGINT NOT NULL,
                updated_us BIGINT NOT NULL,
                PRIMARY KEY (message_id, target_id)
            )"
        ))
        .await?;
        for index in [
            // Claims scan only what is pending, oldest due first.
            "CREATE INDEX outbox_due ON outbox (due_us, message_id, target_id) WHERE status = 'pending'",
            "CREATE UNIQUE INDEX outbox_lease ON outbox (lease_token)",
            "CREATE INDEX outbox_target ON outbox (target_id, created_us, message_id)",
            // The fallback check looks at one ring's rows.
            "CREATE INDEX outbox_ring ON outbox (alarm_id, occurrence_us, created_us)",
        ] {
            db.execute_unprepared(index).await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            // A queue table: rows turn over in bursts, so vacuum and analyse
            // it after a few thousand changes rather than a fifth of it.
            db.execute_unprepared(
                "ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.0, \
                 autovacuum_vacuum_threshold = 5000, autovacuum_analyze_scale_factor = 0.0, \
                 autovacuum_analyze_threshold = 5000)",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS outbox")
            .await?;
        Ok(())
    }
}
