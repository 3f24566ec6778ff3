//! Test databases: re-exported from `alarm_sql::testing`, shared with the end-to-end tests.
#![allow(unused_imports, unreachable_pub)]

pub use alarm_sql::testing::*;

/// Connects to `config` with the testkit's fake sealer (key `k1`): these
/// tests need sealing to work, not the AEAD of `alarm-secrets`, which the
/// end-to-end tests use.
pub async fn connect(config: &alarm_sql::DbConfig) -> alarm_sql::Sql {
    alarm_sql::Sql::connect(config)
        .await
        .expect("connect")
        .with_sealer(std::sync::Arc::new(alarm_testkit::FakeSealer::new(
            "k1",
            &[],
        )))
}
