//! The engine's coordination: the SQLite engine lock row, and on PostgreSQL a `NOTIFY` whenever a claimable trigger is written (expand only).

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

/// The channel engines `LISTEN` on.
pub(crate) const TRIGGER_CHANNEL: &str = "alarm_triggers";

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_engine_lock_and_notify"
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
            // script, a restore) wakes the workers. Once per statement, not
            // per row, and only when the statement left a claimable row:
            // claims and lease renewals set a token and stay silent, a
            // rescue speaks. PostgreSQL folds identical notifications of
            // one transaction into one.
            db.execute_unprepared(&format!(
                "CREATE FUNCTION alarm_triggers_notify() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   IF EXISTS (SELECT 1 FROM claimable WHERE lease_token IS NULL) THEN
                     PERFORM pg_notify('{TRIGGER_CHANNEL}', '');
                   END IF;
                   RETURN NULL;
                 END $$"
            ))
            .await?;
            for event in ["INSERT", "UPDATE"] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER triggers_notify_{} AFTER {event} ON triggers
                     REFERENCING NEW TABLE AS claimable
                     FOR EACH STATEMENT EXECUTE FUNCTION alarm_triggers_notify()",
                    event.to_lowercase()
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            for name in ["triggers_notify_insert", "triggers_notify_update"] {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {name} ON triggers"))
                    .await?;
            }
            db.execute_unprepared("DROP FUNCTION IF EXISTS alarm_triggers_notify()")
                .await?;
        }
        db.execute_unprepared("DROP TABLE IF EXISTS engine_locks")
            .await?;
        Ok(())
    }
}
