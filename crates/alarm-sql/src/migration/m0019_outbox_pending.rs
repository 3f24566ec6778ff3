//! Pending outbox rows are listed in `outbox_pending` (key and due instant, the due index), so recording a send rewrites the outbox row in place (HOT) and deletes its small pending entry, instead of writing the row anew with an entry in every index.
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0019_outbox_pending"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Recording a send changes the row's status. While the due index
        // was partial on `status = 'pending'`, that change could never be
        // a HOT update: PostgreSQL wrote the row's new version with an
        // entry in each of the outbox's three other indexes, the largest
        // share of its time in a burst of webhooks. The pending rows' keys
        // and due instants now live in a table of their own that carries
        // the due index, so no index of `outbox` names a column that a
        // record or a claim changes (the fillfactor of `m0018` leaves room
        // on the page). Measured on an idle copy (100k pending rows,
        // 300 claims of 150 then their records): a claim took 1.83 ms
        // instead of 1.56 (the join to the pending table), a record 1.24
        // instead of 2.25, every update HOT.
        //
        // Each entry carries its row's `effective_us` (set when the row is
        // written, never changed), so that counting the visible pending
        // rows reads this table alone: a count joined to the outbox, on
        // statistics taken while both were empty, ran for minutes in the
        // worker bench.
        //
        // A pending entry goes with its outbox row (a withdrawal, an
        // erasure): the foreign key cascades. Erasure also deletes the
        // entries itself, as it does every owned row (`users.rs`).
        let uuid = match manager.get_database_backend() {
            DbBackend::Postgres => "UUID",
            _ => "BLOB",
        };
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE TABLE outbox_pending (
                message_id {uuid} NOT NULL,
                target_id {uuid} NOT NULL,
                due_us BIGINT NOT NULL,
                effective_us BIGINT NULL,
                PRIMARY KEY (message_id, target_id),
                FOREIGN KEY (message_id, target_id) REFERENCES outbox (message_id, target_id)
                    ON DELETE CASCADE
            )"
        ))
        .await?;
        for sql in [
            "CREATE INDEX outbox_pending_due ON outbox_pending (due_us, message_id, target_id)",
            "INSERT INTO outbox_pending (message_id, target_id, due_us, effective_us) \
             SELECT message_id, target_id, due_us, effective_us FROM outbox WHERE status = 'pending'",
            "DROP INDEX outbox_due",
        ] {
            db.execute_unprepared(sql).await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            // Turned over in bursts, as the outbox (`m0004`).
            db.execute_unprepared(
                "ALTER TABLE outbox_pending SET (autovacuum_vacuum_scale_factor = 0.0, \
                 autovacuum_vacuum_threshold = 5000, autovacuum_analyze_scale_factor = 0.0, \
                 autovacuum_analyze_threshold = 5000)",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "CREATE INDEX outbox_due ON outbox (due_us, message_id, target_id) \
             WHERE status = 'pending'",
            "DROP TABLE outbox_pending",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
