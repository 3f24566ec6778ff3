//! The SQL adapter passes the very same conformance suites as the in-memory fakes, on SQLite and on PostgreSQL.

mod common;

use std::sync::{Arc, Mutex};

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::services::Ports;
use alarm_sql::Sql;
use alarm_testkit::{ManualClock, SequentialIds, conformance, fixtures};

async fn sqlite_ports() -> Ports {
    let (config, _dir) = common::sqlite_config("conformance");
    let sql = Sql::connect(&config).await.expect("connect");
    sql.migrate_up().await.expect("migrate");
    sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(ManualClock::new(fixtures::t0())),
        Arc::new(SequentialIds::new()),
    )
}

/// Runs `suite` with a factory handing out a fresh cloned database per
/// call, and drops those databases afterwards.
macro_rules! on_postgres {
    ($name:expr, $suite:path) => {{
        if !common::postgres_available($name).await {
            return;
        }
        let made: Arc<Mutex<Vec<common::PgTestDb>>> = Arc::default();
        let factory = || {
            let made = made.clone();
            async move {
                let db = common::PgTestDb::new().await;
                let sql = Sql::connect(&db.config()).await.expect("connect");
                made.lock().expect("registry").push(db);
                sql.ports(
                    TimeZoneDatabase::bundled(),
                    Arc::new(ManualClock::new(fixtures::t0())),
                    Arc::new(SequentialIds::new()),
                )
            }
        };
        $suite(factory).await;
        let dbs: Vec<common::PgTestDb> = std::mem::take(&mut *made.lock().expect("registry"));
        for db in dbs {
            db.drop_db().await;
        }
    }};
}

macro_rules! suites {
    ($($suite:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $suite() {
                    conformance::$suite(sqlite_ports).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $suite() {
                    on_postgres!(stringify!($suite), conformance::$suite);
                }
            )*
        }
    };
}

suites!(
    user_store,
    alarm_store,
    exception_period_store,
    holiday_store,
    routine_store,
    webhook_store,
    event_store_and_audit_log,
    refresh_token_store,
    trigger_queue,
    engine_support,
    outbox,
);

/// SQLite allows one engine per database file: a second holder is refused
/// while the first one's right is live.
#[tokio::test]
async fn sqlite_engine_right_is_exclusive() {
    let ports = sqlite_ports().await;
    let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let t = fixtures::at;
    assert!(
        ports
            .queue
            .engine_lease(a, t(0), t(30))
            .await
            .expect("lease")
    );
    assert!(
        !ports
            .queue
            .engine_lease(b, t(10), t(40))
            .await
            .expect("lease"),
        "a second engine on the same file is refused while the first holds the right"
    );
    assert!(
        ports
            .queue
            .engine_lease(b, t(30), t(60))
            .await
            .expect("lease"),
        "the right passes on once the first holder stops renewing"
    );
    assert!(
        !ports
            .queue
            .engine_lease(a, t(31), t(61))
            .await
            .expect("lease"),
        "the old holder does not get it back while the new one is live"
    );
}
