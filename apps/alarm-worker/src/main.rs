//! `alarm-worker`: reads the configuration, opens the database, runs the trigger engine, the delivery worker (webhooks, e-mail) and the ops endpoints until SIGTERM/SIGINT.

mod config;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::ports::{RandomIds, SystemClock};
use alarm_notify::Dispatcher;
use alarm_runner::{Engine, EngineHealth};
use alarm_sql::Sql;
use clap::Parser;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Route, Server, get, handler, http::StatusCode};

use config::{Args, Settings};

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
    alarm_appkit::init_logging(&settings.log_level, settings.log_format);
    alarm_appkit::run("alarm-worker", run(settings))
}

/// Liveness: the process answers.
#[handler]
fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the engine reached the database recently.
#[handler]
fn ready(health: Data<&Arc<EngineHealth>>, dispatcher: Data<&Arc<Dispatcher>>) -> poem::Response {
    let body = |status: &str, reason: Option<String>| {
        let late = health.lateness();
        let sent = dispatcher.stats();
        let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        serde_json::json!({
            "deliveries": {
                "delivered": count(&sent.delivered),
                "retried": count(&sent.retried),
                "dead": count(&sent.dead),
                "store_errors": count(&sent.store_errors),
            },
            "status": status,
            "reason": reason,
            "holds_engine_right": health.holds_right(),
            "rang": health.rang(),
            "missed": health.missed(),
            "lateness_ms": {"count": late.count, "p50": late.p50_ms, "p99": late.p99_ms, "max": late.max_ms},
        })
    };
    match health.check(Duration::from_secs(10)) {
        Ok(()) => Json(body("ok", None)).into_response(),
        Err(reason) => Json(body("unavailable", Some(reason)))
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response(),
    }
}

async fn run(settings: Settings) -> Result<(), String> {
    let db_config = settings.db_config().map_err(|e| e.to_string())?;
    let embedded = db_config.engine() == alarm_sql::Engine::Sqlite;
    if embedded {
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", settings.data_dir.display()))?;
    }
    let sql = Sql::connect(&db_config).await.map_err(|e| e.to_string())?;
    let pending = sql.pending_migrations().await.map_err(|e| e.to_string())?;
    if !pending.is_empty() {
        if embedded {
            sql.migrate_up().await.map_err(|e| e.to_string())?;
        } else {
            return Err(format!(
                "the database schema is behind ({} pending: {}); run `alarm-migrate up`",
                pending.len(),
                pending.join(", ")
            ));
        }
    }
    report_unsupported(&sql).await;
    let ports = sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    let dispatcher = settings
        .notify
        .dispatcher(ports.clone(), alarm_notify::settings::system_resolver())?;
    let poke = dispatcher.clone();
    let engine =
        Engine::new(ports, settings.runner.clone()).on_deliveries(Arc::new(move || poke.poke()));
    let health = engine.health();
    let wake = engine.wake();
    let listener = sql.listen_for_triggers(move || wake.poke());

    let acceptor = TcpListener::bind(settings.ops_listen)
        .into_acceptor()
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.ops_listen))?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .unwrap_or(settings.ops_listen);
    let stop = alarm_appkit::Stop::on_signals();
    let ops = Route::new()
        .at("/health/live", get(live))
        .at("/health/ready", get(ready))
        .data(health)
        .data(dispatcher.clone());
    let delivery = tokio::spawn(dispatcher.clone().run(stop.clone().wait()));
    let ops_server = tokio::spawn(
        Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            ops,
            stop.clone().wait(),
            Some(Duration::from_secs(2)),
        ),
    );
    tracing::info!(
        ops = %addr,
        database = %db_config.redacted_url(),
        grace_s = settings.runner.grace.as_secs(),
        lease_s = settings.runner.lease.as_secs(),
        "Smart Alarm worker running"
    );
    println!("Smart Alarm worker; ops on http://{addr}");
    engine.run(stop.wait()).await;
    // The delivery worker finishes its round, within the shutdown timeout;
    // rows it has not recorded are sent again after their lease.
    let _ = tokio::time::timeout(settings.runner.shutdown_timeout, delivery).await;
    if let Some(l) = listener {
        l.abort();
    }
    let _ = ops_server.await;
    sql.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Reports, once at start, stored values accepted before the API refused
/// them (a `push` channel, webhook events nothing emits): they stay
/// readable, and an operator learns they do nothing yet.
async fn report_unsupported(sql: &Sql) {
    match sql.unsupported_stored().await {
        Ok(found) if found.alarms > 0 || found.webhooks > 0 => tracing::warn!(
            alarms = found.alarms,
            webhooks = found.webhooks,
            "stored alarms ask for the push channel or webhooks subscribe to events that nothing delivers or emits yet; they stay readable, and new ones are refused"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot count unsupported stored values"),
    }
}
