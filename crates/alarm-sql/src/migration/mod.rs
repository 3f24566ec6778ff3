//! Schema migrations (sea-orm-migration), written for expand/contract: each one only adds, and removals wait until no running version reads the old shape.

mod m0001_initial;
mod m0002_idempotency;
pub(crate) mod m0003_engine;
mod m0004_outbox;
mod m0005_builtin_overrides;
mod m0006_replans_and_routine_links;
mod m0007_event_payloads;
mod m0008_api_keys;
mod m0009_password_resets;
mod m0010_account_tokens;
mod m0011_outbox_trace;
mod m0012_webhook_previous_secret;
mod m0013_uploads;
mod m0014_sounds;
mod m0015_prepared_events;
mod m0016_trigger_rescue_index;
mod m0017_outbox_lease_partial;
mod m0018_outbox_hot_claims;

use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// Every migration, oldest first.
pub(crate) struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_idempotency::Migration),
            Box::new(m0003_engine::Migration),
            Box::new(m0004_outbox::Migration),
            Box::new(m0005_builtin_overrides::Migration),
            Box::new(m0006_replans_and_routine_links::Migration),
            Box::new(m0007_event_payloads::Migration),
            Box::new(m0008_api_keys::Migration),
            Box::new(m0009_password_resets::Migration),
            Box::new(m0010_account_tokens::Migration),
            Box::new(m0011_outbox_trace::Migration),
            Box::new(m0012_webhook_previous_secret::Migration),
            Box::new(m0013_uploads::Migration),
            Box::new(m0014_sounds::Migration),
            Box::new(m0015_prepared_events::Migration),
            Box::new(m0016_trigger_rescue_index::Migration),
            Box::new(m0017_outbox_lease_partial::Migration),
            Box::new(m0018_outbox_hot_claims::Migration),
        ]
    }
}

/// Every migration's source text: the test template's name hashes it, so an
/// edited migration (before it lands) never reuses a template built from
/// the old text.
#[cfg(feature = "testing")]
pub(crate) const SOURCES: &[&str] = &[
    include_str!("m0001_initial.rs"),
    include_str!("m0002_idempotency.rs"),
    include_str!("m0003_engine.rs"),
    include_str!("m0004_outbox.rs"),
    include_str!("m0005_builtin_overrides.rs"),
    include_str!("m0006_replans_and_routine_links.rs"),
    include_str!("m0007_event_payloads.rs"),
    include_str!("m0008_api_keys.rs"),
    include_str!("m0009_password_resets.rs"),
    include_str!("m0010_account_tokens.rs"),
    include_str!("m0011_outbox_trace.rs"),
    include_str!("m0012_webhook_previous_secret.rs"),
    include_str!("m0013_uploads.rs"),
    include_str!("m0014_sounds.rs"),
    include_str!("m0015_prepared_events.rs"),
    include_str!("m0016_trigger_rescue_index.rs"),
    include_str!("m0017_outbox_lease_partial.rs"),
    include_str!("m0018_outbox_hot_claims.rs"),
];
