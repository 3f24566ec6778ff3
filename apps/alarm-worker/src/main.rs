//! `alarm-worker`: reads the configuration, opens the database, runs the trigger engine and its ops endpoints until SIGTERM/SIGINT.

mod config;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::ports::{RandomIds, SystemClock};
use alarm_runner::{Engine, EngineHealth};
use alarm_sql::Sql;
use clap::Parser;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Route, Server, get, handler, http::StatusCode};
use tokio::sync::watch;

use config::{Args, LogFormat, Settings};

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
    init_logging(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("alarm-worker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "alarm-worker stopped");
            eprintln!("alarm-worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match settings.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// Liveness: the process answers.
#[handler]
fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the engine reached the database recently.
#[handler]
fn ready(health: Data<&Arc<EngineHealth>>) -> poem::Response {
    let body = |status: &str, reason: Option<String>| {
        let late = health.lateness();
        serde_json::json!({
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
    let ports = sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    let engine = Engine::new(ports, settings.runner.clone());
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let ops = Route::new()
        .at("/health/live", get(live))
        .at("/health/ready", get(ready))
        .data(health);
    let ops_server = tokio::spawn(
        Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            ops,
            stopped(stop_rx.clone()),
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
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    engine.run(stopped(stop_rx)).await;
    signal.abort();
    if let Some(l) = listener {
        l.abort();
    }
    let _ = ops_server.await;
    sql.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutdown requested; releasing claimed work");
}
