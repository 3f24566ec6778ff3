//! Operations surface: health endpoints, the OpenAPI document (and its drift from docs/openapi.json), the docs UI, request ids, CORS.

use crate::support::Harness;

async fn operations(h: &Harness) {
    let live = h.req("GET", "/health/live").send().await;
    assert_eq!(
        (live.status, live.body["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = h.req("GET", "/health/ready").send().await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["checks"][0]["name"], "database");
    assert_eq!(ready.body["checks"][0]["status"], "ok");
    let detail = h.req("GET", "/health").send().await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.body["tzdb_version"], "test");

    let spec = h.req("GET", "/openapi.json").send().await;
    assert_eq!(spec.status, 200);
    assert_eq!(spec.body["info"]["title"], "Smart Alarm API");
    let docs = h.req("GET", "/docs").send().await;
    assert_eq!(docs.status, 200);

    // A client's request id is echoed; a hostile one is replaced.
    let r = h
        .req("GET", "/health/live")
        .header("x-request-id", "client-abc.1")
        .send()
        .await;
    assert_eq!(r.header("x-request-id"), Some("client-abc.1"));
    let r = h
        .req("GET", "/health/live")
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await;
    assert_ne!(r.header("x-request-id"), Some("bad id\twith spaces"));
    let r = h
        .req("GET", "/nope")
        .header("x-request-id", "trace-42")
        .send()
        .await;
    r.problem(404, "not-found");
    assert_eq!(r.body["request_id"], "trace-42");

    // CORS for the configured origin only.
    let r = h
        .req("OPTIONS", "/api/v1/alarms")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com"),
        "{r:?}"
    );
    let r = h
        .req("GET", "/health/live")
        .header("origin", "https://evil.example.net")
        .send()
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    r.problem(403, "forbidden");
    let r = h
        .req("GET", "/health/live")
        .header("origin", "https://app.example.com")
        .send()
        .await;
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (200, Some("https://app.example.com"))
    );
}

/// The committed spec is what the code serves; `cargo xtask codegen` rewrites it.
fn openapi_json_has_not_drifted() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let current = alarm_api::openapi_json();
    assert!(
        committed.trim_end() == current.trim_end(),
        "docs/openapi.json is stale: run `cargo xtask codegen` and commit it"
    );
}

/// Every operation has a summary and a tag, declares the bearer scheme when
/// it needs one, and documents its error responses as problems.
fn every_operation_is_documented() {
    let spec: serde_json::Value = serde_json::from_str(&alarm_api::openapi_json()).expect("json");
    assert!(spec["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer");
    let mut count = 0;
    for (path, ops) in spec["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("ops") {
            count += 1;
            let what = format!("{method} {path}");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{what}: summary"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{what}: tag"
            );
            let responses = op["responses"].as_object().expect("responses");
            if path.starts_with("/api/") {
                for status in ["400", "401", "404", "500"] {
                    let r = &responses
                        .get(status)
                        .unwrap_or_else(|| panic!("{what}: {status}"));
                    assert!(
                        r["content"]["application/problem+json"].is_object(),
                        "{what}: {status} is a problem"
                    );
                }
            }
            if path.starts_with("/api/v1/alarms")
                || path.starts_with("/api/v1/webhooks")
                || path.ends_with("/me")
                || path.ends_with("/logout")
            {
                assert!(op["security"].is_array(), "{what}: security");
            }
        }
    }
    assert!(count >= 29, "{count} operations");
}

struct Hangs;
#[async_trait::async_trait]
impl alarm_api::HealthCheck for Hangs {
    fn name(&self) -> &'static str {
        "queue"
    }
    async fn check(&self) -> Result<(), String> {
        std::future::pending().await
    }
}

/// A hanging dependency turns into a `timeout` check and a 503 naming it,
/// instead of a request that never ends; liveness is unaffected.
async fn health_answers_when_a_dependency_hangs() {
    use std::sync::Arc;
    let checks: Vec<Arc<dyn alarm_api::HealthCheck>> =
        vec![Arc::new(Hangs), Arc::new(crate::support::Fails)];
    let server =
        crate::support::serve_in_memory(checks, jiff::SignedDuration::from_millis(200)).await;
    let http = reqwest::Client::new();
    for path in ["/health/ready", "/health"] {
        let r = http
            .get(format!("{}{path}", server.base_url()))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status().as_u16(), 503, "{path}");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["checks"][0]["name"], "queue");
        assert_eq!(body["checks"][0]["status"], "timeout");
        assert_eq!(body["checks"][1]["status"], "failed");
        let error = if path == "/health" {
            serde_json::json!("bucket missing")
        } else {
            serde_json::Value::Null
        };
        assert_eq!(
            body["checks"][1]["error"], error,
            "{path}: error text only in the detail"
        );
    }
    let live = http
        .get(format!("{}/health/live", server.base_url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(live.status().as_u16(), 200);
    server.stop().await.expect("stop");
}

crate::trials! {
    api: [operations],
    tokio: [health_answers_when_a_dependency_hangs],
    sync: [openapi_json_has_not_drifted, every_operation_is_documented],
}
