//! Per-holiday preferences may name a built-in holiday, which has no row: the override table's foreign key to `holidays` goes (deleting a custom holiday deletes its overrides in the same transaction instead).

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_builtin_overrides"
    }
}

/// The override table as SQLite must rebuild it (it cannot drop a
/// constraint in place), with or without the foreign key to `holidays`.
fn sqlite_table(name: &str, holiday_fk: bool) -> String {
    let fk = if holiday_fk {
        " REFERENCES holidays (id) ON DELETE CASCADE"
    } else {
        ""
    };
    format!(
        "CREATE TABLE {name} (
            owner_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            holiday_id BLOB NOT NULL{fk},
            kind TEXT NOT NULL,
            delay_min SMALLINT,
            PRIMARY KEY (owner_id, holiday_id)
        )"
    )
}

async fn rebuild(manager: &SchemaManager<'_>, holiday_fk: bool) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared(&sqlite_table(
        "holiday_preference_overrides_next",
        holiday_fk,
    ))
    .await?;
    db.execute_unprepared(
        "INSERT INTO holiday_preference_overrides_next (owner_id, holiday_id, kind, delay_min) \
         SELECT owner_id, holiday_id, kind, delay_min FROM holiday_preference_overrides",
    )
    .await?;
    db.execute_unprepared("DROP TABLE holiday_preference_overrides")
        .await?;
    db.execute_unprepared(
        "ALTER TABLE holiday_preference_overrides_next RENAME TO holiday_preference_overrides",
    )
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                manager
                    .get_connection()
                    .execute_unprepared(
                        "ALTER TABLE holiday_preference_overrides \
                         DROP CONSTRAINT IF EXISTS holiday_preference_overrides_holiday_id_fkey",
                    )
                    .await?;
                Ok(())
            }
            _ => rebuild(manager, false).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Overrides of built-in holidays cannot stay under the old key.
        manager
            .get_connection()
            .execute_unprepared(
                "DELETE FROM holiday_preference_overrides \
                 WHERE holiday_id NOT IN (SELECT id FROM holidays)",
            )
            .await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                manager
                    .get_connection()
                    .execute_unprepared(
                        "ALTER TABLE holiday_preference_overrides \
                         ADD CONSTRAINT holiday_preference_overrides_holiday_id_fkey \
                         FOREIGN KEY (holiday_id) REFERENCES holidays (id) ON DELETE CASCADE",
                    )
                    .await?;
                Ok(())
            }
            _ => rebuild(manager, true).await,
        }
    }
}
