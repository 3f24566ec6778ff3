//! The engine's coordination: the SQLite engine lock row, and on PostgreSQL a `NOTIFY` whenever a claimable trigger is written (expand only).

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

/// The channel engines `LISTEN` on.
pub(crate) const TRIGGER_CHANNEL: &str = "alarm_triggers";

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_engine_coordination"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let uuid = match backend {
            DbBackend::Postgres => "UUID",
            _ => "BLOB",
        };
        let db = manager.get_connection();
        // One row per named right; SQLite engines take `engine` so that one
        // database file has one engine.
        db.execute_unprepared(&format!(
            "CREATE TABLE engine_locks (
                name TEXT PRIMARY KEY,
                holder {uuid} NOT NULL,
                until_us BIGINT NOT NULL
            )"
        ))
        .await?;
        if backend == DbBackend::Postgres {
            // Written by the database itself, so every writer (the API, a
            // script, a restore) wakes the workers. The payload is empty:
            // PostgreSQL folds identical notifications of one transaction
            // into one, so a 100k-row insert sends a single message. Claims
            // and lease renewals set a token and do not notify.
            db.execute_unprepared(&format!(
                "CREATE FUNCTION alarm_triggers_notify() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   PERFORM pg_notify('{TRIGGER_CHANNEL}', '');
                   RETURN NULL;
                 END $$"
            ))
            .await?;
            db.execute_unprepared(
                "CREATE TRIGGER triggers_notify AFTER INSERT OR UPDATE OF due_us ON triggers
                 FOR EACH ROW WHEN (NEW.lease_token IS NULL) EXECUTE FUNCTION alarm_triggers_notify()",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("DROP TRIGGER IF EXISTS triggers_notify ON triggers")
                .await?;
            db.execute_unprepared("DROP FUNCTION IF EXISTS alarm_triggers_notify()")
                .await?;
        }
        db.execute_unprepared("DROP TABLE IF EXISTS engine_locks")
            .await?;
        Ok(())
    }
}
