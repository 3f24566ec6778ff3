//! The in-memory fakes pass every conformance suite: the same suites the SQL adapter must pass.

use std::sync::Arc;

use alarm_domain::services::Ports;
use alarm_testkit::{InMemory, ManualClock, SequentialIds, conformance, fixtures};

async fn fresh() -> Ports {
    InMemory::new().ports(
        Arc::new(ManualClock::new(fixtures::t0())),
        Arc::new(SequentialIds::new()),
    )
}

#[tokio::test]
async fn user_store() {
    conformance::user_store(fresh).await;
}

#[tokio::test]
async fn alarm_store() {
    conformance::alarm_store(fresh).await;
}

#[tokio::test]
async fn exception_period_store() {
    conformance::exception_period_store(fresh).await;
}

#[tokio::test]
async fn holiday_store() {
    conformance::holiday_store(fresh).await;
}

#[tokio::test]
async fn routine_store() {
    conformance::routine_store(fresh).await;
}

#[tokio::test]
async fn webhook_store() {
    conformance::webhook_store(fresh).await;
}

#[tokio::test]
async fn event_store_and_audit_log() {
    conformance::event_store_and_audit_log(fresh).await;
}

#[tokio::test]
async fn refresh_token_store() {
    conformance::refresh_token_store(fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trigger_queue() {
    conformance::trigger_queue(fresh).await;
}

#[tokio::test]
async fn engine_support() {
    conformance::engine_support(fresh).await;
}

#[tokio::test]
async fn blob_store() {
    conformance::blob_store(|limit| async move {
        Arc::new(alarm_testkit::InMemoryBlobs::new(limit))
            as Arc<dyn alarm_domain::ports::BlobStore>
    })
    .await;
}

#[tokio::test]
async fn secret_provider() {
    conformance::secret_provider(|secrets| async move {
        let pairs: Vec<(&str, &str)> = secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Arc::new(alarm_testkit::StaticSecrets::new(pairs))
            as Arc<dyn alarm_domain::ports::SecretProvider>
    })
    .await;
}

#[tokio::test]
async fn outbox() {
    conformance::outbox(fresh).await;
}
