//! The SQL adapter on PostgreSQL passes every conformance check of the in-memory fakes, one trial each, on databases cloned from one migrated template.
//!
//! Without a reachable server every trial is listed as ignored, so runners
//! count them as skipped; under `CI=true` they run and fail instead.

mod common;

use std::sync::{Arc, Mutex};

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::ports::Clock;
use alarm_domain::services::Ports;
use alarm_testkit::conformance::{self, Backend, LocalFuture, Subject};
use alarm_testkit::{ManualClock, SequentialIds, fixtures};

/// One check's databases, cloned from the template on each call and
/// dropped once the check has passed.
#[derive(Default)]
struct Postgres {
    made: Mutex<Vec<common::PgTestDb>>,
}

impl Backend for Postgres {
    fn ports(&self, store_clock: Option<Arc<dyn Clock>>) -> LocalFuture<'_, Ports> {
        Box::pin(async move {
            let db = common::PgTestDb::new().await;
            let mut sql = common::connect(&db.config()).await;
            if let Some(clock) = store_clock {
                sql = sql.with_store_clock(clock);
            }
            self.made.lock().expect("registry").push(db);
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
            for db in made {
                db.drop_db().await;
            }
        })
    }
}

fn main() {
    let subject = Subject::new("postgres").backend(Postgres::default);
    let subject = match common::postgres_unreachable() {
        Some(why) => subject.skipped(why),
        None => subject,
    };
    conformance::run(subject);
}
