//! The triggers' rescue index keyed on what the rescue reads (`lease_until_us IS NOT NULL`), so that lookups by lease token cannot take it for theirs.

use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0016_trigger_rescue_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `triggers_leased` was partial on `lease_token IS NOT NULL`, which
        // every `lease_token IN (…)` of a completion implies. On statistics
        // taken before a burst was claimed (no token at all), PostgreSQL
        // judged that index empty and scanned it whole, filtering each of
        // the thousands of leased rows against the list, instead of probing
        // the unique token index once per token. Keyed on the lease's end,
        // which the rescue compares (and so implies not null), the index
        // serves the rescue alone. A claim and a release set or clear both
        // columns together (a CHECK holds them so), so it holds the same
        // rows. Only an index changes: a running older release reads the
        // same tables. Built inside the migration's transaction, not
        // CONCURRENTLY: on PostgreSQL, writes to `triggers` (an older
        // release's engine too) wait while it reads the leased rows, which
        // are few (the claims in flight) but found by reading the table.
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX triggers_leased").await?;
        db.execute_unprepared(
            "CREATE INDEX triggers_lease_end ON triggers (lease_until_us) \
             WHERE lease_until_us IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX triggers_lease_end")
            .await?;
        db.execute_unprepared(
            "CREATE INDEX triggers_leased ON triggers (lease_until_us) \
             WHERE lease_token IS NOT NULL",
        )
        .await?;
        Ok(())
    }
}
