//! The initial schema: every table the ports need, on PostgreSQL and SQLite from one SQL text.
//!
//! Instants are `BIGINT` Unix microseconds (`*_us`) on both engines: SQLite
//! would store a timestamp as text whose sub-second digits vary in length,
//! which neither compares nor indexes correctly, and integers range-scan the
//! same way on both. Civil dates are `TEXT` `YYYY-MM-DD` and local
//! date-times `TEXT` `YYYY-MM-DDTHH:MM:SS`: fixed width, so text order is
//! time order.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{DbErr, MigrationName, MigrationTrait, SchemaManager};

/// The migration.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

/// Tables in creation order; dropped in reverse.
const TABLES: &[&str] = &[
    "users",
    "alarms",
    "exception_periods",
    "holidays",
    "holiday_preferences",
    "holiday_preference_overrides",
    "routines",
    "webhooks",
    "alarm_events",
    "audit_log",
    "triggers",
    "ringing",
    "deliveries",
    "refresh_families",
    "refresh_tokens",
];

/// The schema with `{uuid}` and `{bytes}` standing for the engine's types.
const SCHEMA: &str = r"
CREATE TABLE users (
    id {uuid} PRIMARY KEY,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    time_zone TEXT NOT NULL,
    country TEXT,
    state TEXT,
    password_hash TEXT NOT NULL,
    created_us BIGINT NOT NULL
);

CREATE TABLE alarms (
    id {uuid} PRIMARY KEY,
    owner_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    time_zone TEXT NOT NULL,
    schedules TEXT NOT NULL,
    snooze_minutes SMALLINT NOT NULL,
    max_snoozes SMALLINT NOT NULL,
    escalation_max_level SMALLINT NOT NULL,
    escalation_first_delay_min SMALLINT NOT NULL,
    escalation_repeat_delay_min SMALLINT NOT NULL,
    channels SMALLINT NOT NULL,
    sound_id {uuid},
    version BIGINT NOT NULL CHECK (version >= 1),
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
CREATE INDEX alarms_owner ON alarms (owner_id, id);

CREATE TABLE exception_periods (
    id {uuid} PRIMARY KEY,
    owner_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    CHECK (start_date <= end_date)
);
CREATE INDEX exception_periods_owner ON exception_periods (owner_id, start_date, id);

CREATE TABLE holidays (
    id {uuid} PRIMARY KEY,
    name TEXT NOT NULL,
    fixed_date TEXT,
    month SMALLINT,
    day SMALLINT,
    country TEXT NOT NULL,
    state TEXT,
    optional BOOLEAN NOT NULL,
    natural_key TEXT NOT NULL UNIQUE,
    CHECK ((fixed_date IS NULL) <> (month IS NULL))
);
CREATE INDEX holidays_country ON holidays (country, id);

CREATE TABLE holiday_preferences (
    owner_id {uuid} PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    default_kind TEXT NOT NULL,
    default_delay_min SMALLINT
);

CREATE TABLE holiday_preference_overrides (
    owner_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    holiday_id {uuid} NOT NULL REFERENCES holidays (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    delay_min SMALLINT,
    PRIMARY KEY (owner_id, holiday_id)
);

CREATE TABLE routines (
    id {uuid} PRIMARY KEY,
    owner_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    actions TEXT NOT NULL,
    active BOOLEAN NOT NULL
);
CREATE INDEX routines_owner ON routines (owner_id, id);

CREATE TABLE webhooks (
    id {uuid} PRIMARY KEY,
    owner_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    events INTEGER NOT NULL,
    secret TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    failure_count INTEGER NOT NULL
);
CREATE INDEX webhooks_owner ON webhooks (owner_id, id);

CREATE TABLE alarm_events (
    id {uuid} PRIMARY KEY,
    alarm_id {uuid} NOT NULL,
    owner_id {uuid} NOT NULL,
    kind TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    occurrence_us BIGINT,
    detail TEXT
);
CREATE INDEX alarm_events_alarm ON alarm_events (owner_id, alarm_id, id);

CREATE TABLE audit_log (
    id {uuid} PRIMARY KEY,
    actor_id {uuid},
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id {uuid} NOT NULL,
    before_summary TEXT,
    after_summary TEXT,
    at_us BIGINT NOT NULL,
    correlation_id TEXT NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);

CREATE TABLE triggers (
    alarm_id {uuid} NOT NULL,
    occurrence_us BIGINT NOT NULL,
    kind TEXT NOT NULL,
    owner_id {uuid} NOT NULL,
    occurrence_local TEXT NOT NULL,
    due_us BIGINT NOT NULL,
    alarm_version BIGINT NOT NULL,
    lease_token {uuid},
    lease_until_us BIGINT,
    PRIMARY KEY (alarm_id, occurrence_us, kind),
    CHECK ((lease_token IS NULL) = (lease_until_us IS NULL))
);
CREATE INDEX triggers_claimable ON triggers (due_us) WHERE lease_token IS NULL;
CREATE INDEX triggers_leased ON triggers (lease_until_us) WHERE lease_token IS NOT NULL;
CREATE UNIQUE INDEX triggers_lease_token ON triggers (lease_token) WHERE lease_token IS NOT NULL;

CREATE TABLE ringing (
    alarm_id {uuid} NOT NULL,
    occurrence_us BIGINT NOT NULL,
    owner_id {uuid} NOT NULL,
    occurrence_local TEXT NOT NULL,
    since_us BIGINT NOT NULL,
    snoozes SMALLINT NOT NULL,
    level SMALLINT NOT NULL,
    snoozed BOOLEAN NOT NULL,
    PRIMARY KEY (alarm_id, occurrence_us)
);

CREATE TABLE deliveries (
    id {uuid} PRIMARY KEY,
    owner_id {uuid} NOT NULL,
    alarm_id {uuid} NOT NULL,
    occurrence_us BIGINT NOT NULL,
    occurrence_local TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_us BIGINT NOT NULL
);
CREATE INDEX deliveries_owner ON deliveries (owner_id, created_us, id);

CREATE TABLE refresh_families (
    id {uuid} PRIMARY KEY,
    user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_us BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL
);

CREATE TABLE refresh_tokens (
    hash {bytes} PRIMARY KEY,
    family_id {uuid} NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    spent BOOLEAN NOT NULL
);
";

/// The schema's statements for `backend`.
fn statements(backend: DbBackend) -> Vec<String> {
    let (uuid, bytes) = match backend {
        DbBackend::Postgres => ("UUID", "BYTEA"),
        _ => ("BLOB", "BLOB"),
    };
    SCHEMA
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("{uuid}", uuid).replace("{bytes}", bytes))
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In a transaction on SQLite too (sea-orm-migration's default is only
    /// PostgreSQL), so a failure half-way leaves no table behind and `up`
    /// can simply be run again.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in statements(manager.get_database_backend()) {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in TABLES.iter().rev() {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_created_and_dropped() {
        let created: Vec<String> = statements(DbBackend::Sqlite)
            .iter()
            .filter_map(|s| {
                s.strip_prefix("CREATE TABLE ")
                    .map(|r| r.split_whitespace().next().unwrap_or("").to_owned())
            })
            .collect();
        assert_eq!(created, TABLES);
        assert!(
            statements(DbBackend::Postgres)
                .iter()
                .all(|s| !s.contains('{'))
        );
    }
}
