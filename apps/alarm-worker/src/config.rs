//! Settings: command line, then environment, then the optional TOML file, then defaults; the database URL only from the environment or a file it names.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alarm_appkit::{
    ConfigError, LogFormat, bad, check_log_level, ranged, read_config_file, secret_env, socket_addr,
};
use alarm_runner::RunnerConfig;
use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const SECRETS_HELP: &str = "\
Secrets (environment only, never on the command line or in the TOML file):
  DATABASE_URL          postgres://… or sqlite://path; unset = the embedded
                        default, SQLite at <DATA_DIR>/alarms.db (one engine per
                        SQLite file: a second one stands by)
  DATABASE_URL_FILE     a file holding DATABASE_URL

Many workers may share one PostgreSQL database: they split the due triggers
between them and each occurrence rings once.

Precedence: command line, environment, --config file, defaults.
The TOML file uses the long option names with underscores, e.g.
  ops_listen = \"0.0.0.0:9090\"
  grace_seconds = 300";

/// Smart Alarm worker: rings due alarms; /health/live and /health/ready on the ops port.
#[derive(Debug, Parser)]
#[command(name = "alarm-worker", version, after_help = format!("{SECRETS_HELP}\n\n{}", alarm_notify::settings::HELP))]
pub(crate) struct Args {
    /// TOML file with settings (see below).
    #[arg(long, env = "ALARM_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Address of the ops endpoints [default: 127.0.0.1:9090].
    #[arg(long, env = "OPS_LISTEN_ADDR")]
    ops_listen: Option<String>,
    /// Folder of the embedded database [default: ./data].
    #[arg(long, env = "DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database pool size [default: 10].
    #[arg(long, env = "DB_MAX_CONNECTIONS")]
    db_max_connections: Option<u32>,
    /// An occurrence found later than this many seconds is recorded
    /// `missed` instead of ringing, 1..=86400 [default: 600].
    #[arg(long, env = "WORKER_GRACE_SECONDS")]
    grace_seconds: Option<u64>,
    /// Lease of a claim in seconds; a crashed worker's claims are rescued
    /// after it, 3..=600 [default: 30].
    #[arg(long, env = "WORKER_LEASE_SECONDS")]
    lease_seconds: Option<u64>,
    /// Minutes an unanswered occurrence rings after its last escalation
    /// before it is recorded `expired`, 1..=1440 [default: 30].
    #[arg(long, env = "WORKER_EXPIRY_MINUTES")]
    expiry_minutes: Option<u64>,
    /// How far ahead triggers are claimed, in milliseconds, 0..=10000 [default: 2000].
    #[arg(long, env = "WORKER_PREFETCH_MS")]
    prefetch_ms: Option<u64>,
    /// Triggers claimed and completed per round trip, 1..=5000 [default: 1000].
    #[arg(long, env = "WORKER_BATCH")]
    batch: Option<u32>,
    /// Longest sleep between looks at the queue when nothing wakes the
    /// worker, in milliseconds, 10..=60000 [default: 1000]. New and moved
    /// triggers wake it at once (PostgreSQL NOTIFY), so this only bounds
    /// how late a missed notification is noticed.
    #[arg(long, env = "WORKER_IDLE_POLL_MS")]
    idle_poll_ms: Option<u64>,
    /// Log format [default: auto].
    #[arg(long, env = "LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `alarm_runner=debug` [default: info].
    #[arg(long, env = "LOG_LEVEL")]
    log_level: Option<String>,
    /// Seconds given to finish or release claimed work after SIGTERM/SIGINT [default: 10].
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS")]
    shutdown_timeout_seconds: Option<u64>,
}

/// The same settings in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    ops_listen: Option<String>,
    data_dir: Option<PathBuf>,
    db_max_connections: Option<u32>,
    grace_seconds: Option<u64>,
    lease_seconds: Option<u64>,
    expiry_minutes: Option<u64>,
    prefetch_ms: Option<u64>,
    batch: Option<u32>,
    idle_poll_ms: Option<u64>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    shutdown_timeout_seconds: Option<u64>,
}

/// The effective configuration.
pub(crate) struct Settings {
    pub(crate) ops_listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    database_url: Option<SecretString>,
    db_max_connections: u32,
    pub(crate) runner: RunnerConfig,
    pub(crate) log_format: LogFormat,
    pub(crate) log_level: String,
    /// Webhook, delivery and SMTP settings (environment only).
    pub(crate) notify: alarm_notify::NotifySettings,
}

impl Settings {
    /// Merges the sources and validates every value.
    pub(crate) fn load(args: &Args) -> Result<Self, ConfigError> {
        let file: FileSettings = read_config_file(args.config.as_deref())?;
        let ops = args
            .ops_listen
            .clone()
            .or(file.ops_listen)
            .unwrap_or_else(|| "127.0.0.1:9090".to_owned());
        let ops_listen = socket_addr("OPS_LISTEN_ADDR", &ops)?;
        let database_url = secret_env("DATABASE_URL", "DATABASE_URL_FILE")?;
        if let Some(url) = &database_url {
            alarm_sql::DbConfig::from_url(url.expose_secret()).map_err(|e| {
                bad(
                    "DATABASE_URL",
                    e.to_string()
                        .trim_start_matches("DATABASE_URL: ")
                        .to_owned(),
                )
            })?;
        }
        let db_max_connections = ranged(
            "DB_MAX_CONNECTIONS",
            args.db_max_connections
                .or(file.db_max_connections)
                .unwrap_or(10),
            1..=1000,
        )?;
        let defaults = RunnerConfig::default();
        let grace = ranged(
            "WORKER_GRACE_SECONDS",
            args.grace_seconds.or(file.grace_seconds).unwrap_or(600),
            1..=86_400,
        )?;
        let lease = ranged(
            "WORKER_LEASE_SECONDS",
            args.lease_seconds.or(file.lease_seconds).unwrap_or(30),
            3..=600,
        )?;
        let expiry = ranged(
            "WORKER_EXPIRY_MINUTES",
            args.expiry_minutes.or(file.expiry_minutes).unwrap_or(30),
            1..=1440,
        )?;
        let prefetch = ranged(
            "WORKER_PREFETCH_MS",
            args.prefetch_ms.or(file.prefetch_ms).unwrap_or(2000),
            0..=10_000,
        )?;
        let batch = ranged(
            "WORKER_BATCH",
            args.batch.or(file.batch).unwrap_or(1000),
            1..=5000,
        )?;
        let idle_poll = ranged(
            "WORKER_IDLE_POLL_MS",
            args.idle_poll_ms.or(file.idle_poll_ms).unwrap_or(1000),
            10..=60_000,
        )?;
        let shutdown = ranged(
            "SHUTDOWN_TIMEOUT_SECONDS",
            args.shutdown_timeout_seconds
                .or(file.shutdown_timeout_seconds)
                .unwrap_or(10),
            1..=300,
        )?;
        let log_level = args
            .log_level
            .clone()
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_owned());
        check_log_level(&log_level)?;
        let notify = alarm_notify::NotifySettings::load(
            &|name| std::env::var(name).ok(),
            secret_env("SMTP_PASSWORD", "SMTP_PASSWORD_FILE")?,
        )
        .map_err(|(name, reason)| bad(name, reason))?;
        Ok(Self {
            notify,
            ops_listen,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("data")),
            database_url,
            db_max_connections,
            runner: RunnerConfig {
                prefetch: Duration::from_millis(prefetch),
                batch,
                lease: Duration::from_secs(lease),
                grace: Duration::from_secs(grace),
                expiry_window: Duration::from_secs(expiry * 60),
                shutdown_timeout: Duration::from_secs(shutdown),
                idle_poll: Duration::from_millis(idle_poll),
                ..defaults
            },
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Auto),
            log_level,
        })
    }

    /// The database settings.
    pub(crate) fn db_config(&self) -> Result<alarm_sql::DbConfig, ConfigError> {
        let url = match &self.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("alarms.db").display()),
        };
        alarm_sql::DbConfig::from_url(&url)
            .and_then(|c| c.with_max_connections(self.db_max_connections))
            .map_err(|e| bad("DATABASE_URL", e.to_string()))
    }

    /// The effective configuration, secrets redacted.
    pub(crate) fn describe(&self) -> String {
        let db = match self.db_config() {
            Ok(c) => c.redacted_url(),
            Err(e) => e.to_string(),
        };
        let r = &self.runner;
        [
            format!("ops_listen = \"{}\"", self.ops_listen),
            format!("data_dir = {:?}", self.data_dir.display().to_string()),
            format!("database_url = {db:?}"),
            format!("db_max_connections = {}", self.db_max_connections),
            format!("grace_seconds = {}", r.grace.as_secs()),
            format!("lease_seconds = {}", r.lease.as_secs()),
            format!("expiry_minutes = {}", r.expiry_window.as_secs() / 60),
            format!("prefetch_ms = {}", r.prefetch.as_millis()),
            format!("batch = {}", r.batch),
            format!("idle_poll_ms = {}", r.idle_poll.as_millis()),
            format!(
                "log_format = {:?}",
                format!("{:?}", self.log_format).to_lowercase()
            ),
            format!("log_level = {:?}", self.log_level),
            format!(
                "shutdown_timeout_seconds = {}",
                r.shutdown_timeout.as_secs()
            ),
        ]
        .into_iter()
        .chain(self.notify.describe())
        .collect::<Vec<_>>()
        .join("\n")
    }
}
