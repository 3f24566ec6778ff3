//! The SQL adapter on SQLite passes every conformance check of the in-memory fakes, one trial each, a fresh database file per check.

mod common;

use std::sync::Arc;

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_testkit::conformance::{self, Subject};
use alarm_testkit::{ManualClock, SequentialIds, fixtures};

fn main() {
    conformance::run(Subject::new("sqlite").ports(|store_clock| async move {
        let (config, _dir) = common::sqlite_config("conformance");
        let mut sql = common::connect(&config).await;
        sql.migrate_up().await.expect("migrate");
        if let Some(clock) = store_clock {
            sql = sql.with_store_clock(clock);
        }
        sql.ports(
            TimeZoneDatabase::bundled(),
            Arc::new(ManualClock::new(fixtures::t0())),
            Arc::new(SequentialIds::new()),
        )
    }));
}
