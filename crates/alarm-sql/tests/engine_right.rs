//! SQLite allows one trigger engine per database file: the engine right is exclusive while its holder renews it.

mod common;

use std::sync::Arc;

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::services::Ports;
use alarm_testkit::{ManualClock, SequentialIds, fixtures};

async fn sqlite_ports() -> Ports {
    let (config, _dir) = common::sqlite_config("conformance");
    let sql = common::connect(&config).await;
    sql.migrate_up().await.expect("migrate");
    sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(ManualClock::new(fixtures::t0())),
        Arc::new(SequentialIds::new()),
    )
}

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
