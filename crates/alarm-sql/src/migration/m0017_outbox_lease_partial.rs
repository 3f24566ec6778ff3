//! The outbox's lease-token index holds only leased rows (`WHERE lease_token IS NOT NULL`), as the triggers' has since the start: recording a delivery no longer adds an entry for its cleared token.

use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0017_outbox_lease_partial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Every outbox row but the few being sent has no token, and the
        // full index held an entry for each: one more index insert when a
        // row is written and again when its send is recorded (the token is
        // cleared, but an update that is not HOT adds an entry to every
        // index). Lookups by token (`confirm`, `finish`) compare the token,
        // which implies it is not null, so they can use this index; the
        // uniqueness that fences two leases is the same. Built inside the
        // migration's transaction, not CONCURRENTLY: on PostgreSQL the
        // `DROP INDEX` locks `outbox` whole until the migration commits, so
        // every read and write of it (claims, listings) waits while the
        // table is read once to build the new index (only leased rows go
        // in).
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX outbox_lease").await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX outbox_lease ON outbox (lease_token) \
             WHERE lease_token IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX outbox_lease").await?;
        db.execute_unprepared("CREATE UNIQUE INDEX outbox_lease ON outbox (lease_token)")
            .await?;
        Ok(())
    }
}
