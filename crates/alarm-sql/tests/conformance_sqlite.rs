//! The SQL adapter on SQLite passes every conformance check of the in-memory fakes, one trial each, a fresh database file per check.

mod common;

use std::sync::{Arc, Mutex};

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::ports::Clock;
use alarm_domain::services::Ports;
use alarm_testkit::conformance::{self, Backend, LocalFuture, Subject};
use alarm_testkit::{ManualClock, SequentialIds, fixtures};

/// One check's database files, a fresh one on each call, each with the
/// store made over it.
#[derive(Default)]
struct Sqlite {
    made: Mutex<Vec<alarm_sql::Sql>>,
}

impl Backend for Sqlite {
    fn ports(&self, store_clock: Option<Arc<dyn Clock>>) -> LocalFuture<'_, Ports> {
        Box::pin(async move {
            let (config, _dir) = common::sqlite_config("conformance");
            let mut sql = common::connect(&config).await;
            sql.migrate_up().await.expect("migrate");
            if let Some(clock) = store_clock {
                sql = sql.with_store_clock(clock);
            }
            self.made.lock().expect("registry").push(sql.clone());
            sql.ports(
                TimeZoneDatabase::bundled(),
                Arc::new(ManualClock::new(fixtures::t0())),
                Arc::new(SequentialIds::new()),
            )
        })
    }

    fn finish(&self) -> LocalFuture<'_, ()> {
        Box::pin(async move {
            let made = std::mem::take(&mut *self.made.lock().expect("registry"));
            for sql in made {
                // Whatever the check did, the pending list agrees with the
                // outbox (`m0019`).
                let drift = sql.outbox_pending_drift().await.expect("drift");
                assert_eq!(drift, 0, "outbox rows and outbox_pending disagree");
            }
        })
    }
}

fn main() {
    conformance::run(Subject::new("sqlite").backend(Sqlite::default));
}
