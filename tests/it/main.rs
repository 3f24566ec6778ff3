//! End-to-end tests of the HTTP API over a real socket, each on SQLite and on PostgreSQL (skipped loudly when PostgreSQL is unreachable outside CI).

mod support;

mod delivery;
mod engine;
mod flow;
mod inputs;
mod operations;
mod ownership;
mod ringing;
mod spec_answers;
mod tokens;
mod webhooks_api;

/// Runs `$body(harness)` once on each backend as `<name>_sqlite` and `<name>_postgres`.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(h) = $crate::support::Harness::start(
                    $crate::support::Backend::Sqlite,
                    concat!(stringify!($name), "-sqlite"),
                )
                .await
                {
                    super::$name(&h).await;
                    h.stop().await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(h) = $crate::support::Harness::start(
                    $crate::support::Backend::Postgres,
                    concat!(stringify!($name), "-postgres"),
                )
                .await
                {
                    super::$name(&h).await;
                    h.stop().await;
                }
            }
        }
    };
}
