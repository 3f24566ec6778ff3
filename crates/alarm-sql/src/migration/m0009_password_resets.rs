//! Password-reset tokens (at most one per account, stored only as the SHA-256 of the e-mailed text, deleted when spent), and the owner indexes that account erasure deletes by.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

/// (index, table and columns) for the owner columns erasure deletes by.
const ERASURE_INDEXES: [(&str, &str); 5] = [
    ("triggers_owner", "triggers (owner_id)"),
    ("ringing_owner", "ringing (owner_id)"),
    ("outbox_owner", "outbox (owner_id)"),
    ("refresh_families_user", "refresh_families (user_id)"),
    ("audit_log_entity", "audit_log (entity_id)"),
];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_password_resets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (uuid, bytes) = match manager.get_database_backend() {
            DbBackend::Postgres => ("UUID", "BYTEA"),
            _ => ("BLOB", "BLOB"),
        };
        // One row per account (the primary key): a new request replaces
        // the last, so only the newest e-mailed link works.
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE TABLE password_resets (
                    user_id {uuid} PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
                    hash {bytes} NOT NULL UNIQUE,
                    expires_us BIGINT NOT NULL,
                    created_us BIGINT NOT NULL
                )"
            ))
            .await?;
        // Erasure deletes by owner in tables that had no index on it; on
        // SQLite it holds the one write lock meanwhile, so each is an
        // index look-up, not a scan of a table that only grows.
        for (name, on) in ERASURE_INDEXES {
            manager
                .get_connection()
                .execute_unprepared(&format!("CREATE INDEX {name} ON {on}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in ERASURE_INDEXES {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        db.execute_unprepared("DROP TABLE password_resets").await?;
        Ok(())
    }
}
