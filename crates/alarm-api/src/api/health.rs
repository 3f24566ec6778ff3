//! `/health/live`, `/health/ready` and `/health`: each check runs concurrently under its own timeout, so an answer comes within 2 s even when a dependency hangs.

use std::sync::Arc;
use std::time::Instant;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::state::AppState;

/// One check's result.
#[derive(Debug, Clone, Object)]
pub(crate) struct CheckView {
    /// The check (`database`, …).
    pub name: String,
    /// `ok`, `failed`, `timeout`, or `degraded` (a failure that does not
    /// stop the service, e.g. a secret whose refresh fails and whose last
    /// value stays in use).
    pub status: String,
    /// Milliseconds the check took.
    pub duration_ms: u64,
    /// Why it failed.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// Work waiting on this dependency, for checks that have a backlog:
    /// `storage` counts the sounds kept in the local spool while the
    /// object store was down and not yet pushed to it.
    #[oai(skip_serializing_if_is_none)]
    pub pending: Option<u64>,
}

/// The service's health.
#[derive(Debug, Clone, Object)]
pub(crate) struct HealthView {
    /// `ok` when every check passed; `degraded` (still 200) when only
    /// checks that do not stop the service failed; else `unavailable` (503).
    pub status: String,
    /// The time-zone database release the schedule engine uses.
    pub tzdb_version: String,
    /// The server's version.
    pub version: String,
    /// Every check.
    pub checks: Vec<CheckView>,
}

/// Liveness.
#[derive(ApiResponse)]
pub(crate) enum Live {
    /// The process serves requests.
    #[oai(status = 200)]
    Ok(Json<HealthView>),
}

/// Readiness or detail.
#[derive(ApiResponse)]
pub(crate) enum Ready {
    /// Every check passed.
    #[oai(status = 200)]
    Ok(Json<HealthView>),
    /// A check failed or timed out; `checks` names it.
    #[oai(status = 503)]
    Unavailable(Json<HealthView>),
}

pub(crate) struct HealthApi;

async fn run_checks(state: &AppState) -> Vec<CheckView> {
    let timeout = state
        .config
        .health_timeout
        .unsigned_abs()
        .min(std::time::Duration::from_millis(1500));
    let runs = state.checks.iter().map(|check| {
        let check = check.clone();
        async move {
            let started = Instant::now();
            let outcome = tokio::time::timeout(timeout, async {
                let (checked, pending) = tokio::join!(check.check(), check.pending());
                (checked, pending)
            })
            .await;
            let duration_ms = started.elapsed().as_millis() as u64;
            let (status, error, pending) = match outcome {
                Ok((Ok(()), pending)) => ("ok", None, pending),
                Ok((Err(e), pending)) => ("failed", Some(e), pending),
                Err(_) => (
                    "timeout",
                    Some(format!("no answer within {} ms", timeout.as_millis())),
                    None,
                ),
            };
            CheckView {
                name: check.name().to_owned(),
                status: status.to_owned(),
                duration_ms,
                error,
                pending,
            }
        }
    });
    // Each check in its own task, so they run concurrently and a check
    // that panics is reported as failed rather than silently dropped.
    let handles: Vec<_> = state
        .checks
        .iter()
        .map(|c| (c.name(), c.critical()))
        .zip(runs.map(tokio::spawn))
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for ((name, critical), handle) in handles {
        let mut view = handle.await.unwrap_or_else(|e| CheckView {
            name: name.to_owned(),
            status: "failed".to_owned(),
            duration_ms: 0,
            error: Some(format!("the check crashed: {e}")),
            pending: None,
        });
        // Whatever went wrong (a failure, a timeout, a crash), a check
        // that is not critical only degrades the service.
        if !critical && view.status != "ok" {
            view.status = "degraded".to_owned();
        }
        out.push(view);
    }
    out
}

fn answer(v: HealthView) -> Ready {
    if v.status != "unavailable" {
        Ready::Ok(Json(v))
    } else {
        Ready::Unavailable(Json(v))
    }
}

fn view(state: &AppState, checks: Vec<CheckView>) -> HealthView {
    let status = if checks
        .iter()
        .any(|c| c.status != "ok" && c.status != "degraded")
    {
        "unavailable"
    } else if checks.iter().any(|c| c.status == "degraded") {
        "degraded"
    } else {
        "ok"
    };
    HealthView {
        status: status.to_owned(),
        tzdb_version: state.config.tzdb_version.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        checks,
    }
}

#[OpenApi(prefix_path = "/health", tag = "ApiTags::Operations")]
impl HealthApi {
    /// Liveness: the process answers (no dependency is checked).
    #[oai(path = "/live", method = "get")]
    async fn live(&self, state: Data<&Arc<AppState>>) -> Live {
        Live::Ok(Json(view(&state, Vec::new())))
    }

    /// Readiness: every dependency answers; 503 names the failing check
    /// (without its error text, which load balancers do not need and which
    /// may name internal hosts; `/health` has it).
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self, state: Data<&Arc<AppState>>) -> Ready {
        let mut checks = run_checks(&state).await;
        for c in &mut checks {
            if let Some(e) = c.error.take() {
                tracing::warn!(check = %c.name, error = %e, "readiness check failed");
            }
        }
        answer(view(&state, checks))
    }

    /// Every check in detail (errors included), with the time-zone database release.
    #[oai(path = "/", method = "get")]
    async fn detail(&self, state: Data<&Arc<AppState>>) -> Ready {
        answer(view(&state, run_checks(&state).await))
    }
}
