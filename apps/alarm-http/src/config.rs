//! Settings: command line, then environment, then the optional TOML file, then defaults; secrets only from the environment or a file they name, straight into `SecretString`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alarm_appkit::{
    ConfigError, LogFormat, bad, check_log_level, read_config_file, secret_env, socket_addr,
};
use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const SECRETS_HELP: &str = "\
Secrets (environment only, never on the command line or in the TOML file):
  DATABASE_URL          postgres://… or sqlite://path; unset = the embedded
                        default, SQLite at <DATA_DIR>/alarms.db
  DATABASE_URL_FILE     a file holding DATABASE_URL
  JWT_SECRET_KEY        HS256 signing key, at least 32 bytes; required with
                        DATABASE_URL. In the embedded default a key is
                        generated once into <DATA_DIR>/jwt-secret (mode 0600)
  JWT_SECRET_KEY_FILE   a file holding JWT_SECRET_KEY

Precedence: command line, environment, --config file, defaults.
The TOML file uses the long option names with underscores, e.g.
  listen = \"0.0.0.0:8080\"
  cors_origins = [\"https://app.example.com\"]";

/// Smart Alarm HTTP server: the API, its docs at /docs and health endpoints.
#[derive(Debug, Parser)]
#[command(name = "alarm-http", version, after_help = format!("{SECRETS_HELP}\n\n{}", alarm_notify::settings::HELP))]
pub(crate) struct Args {
    /// TOML file with settings (see below).
    #[arg(long, env = "ALARM_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Print the OpenAPI document (JSON) and exit; `cargo xtask codegen` uses it.
    #[arg(long)]
    pub(crate) openapi: bool,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LISTEN_ADDR")]
    listen: Option<String>,
    /// Folder for the embedded database and generated key [default: ./data].
    #[arg(long, env = "DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database pool size [default: 20].
    #[arg(long, env = "DB_MAX_CONNECTIONS")]
    db_max_connections: Option<u32>,
    /// Apply pending migrations at start [default: true for the embedded
    /// default, false with DATABASE_URL, where alarm-migrate does it].
    #[arg(long, env = "AUTO_MIGRATE")]
    auto_migrate: Option<bool>,
    /// JWT `iss` [default: smart-alarm].
    #[arg(long, env = "JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// JWT `aud` [default: smart-alarm-api].
    #[arg(long, env = "JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Access-token lifetime in minutes, 1..=60 [default: 15].
    #[arg(long, env = "JWT_ACCESS_MINUTES")]
    jwt_access_minutes: Option<u32>,
    /// Refresh-token (session) lifetime in days, 1..=365 [default: 30].
    #[arg(long, env = "JWT_REFRESH_DAYS")]
    jwt_refresh_days: Option<u32>,
    /// Comma-separated origins allowed by CORS [default: none].
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Option<Vec<String>>,
    /// Public base URL, used in Location headers and the spec [default: none].
    #[arg(long, env = "API_BASE_URL")]
    api_base_url: Option<String>,
    /// Comma-separated emails whose accounts become administrators.
    #[arg(long, env = "ADMIN_EMAILS", value_delimiter = ',')]
    admin_emails: Option<Vec<String>>,
    /// Log format [default: auto].
    #[arg(long, env = "LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `alarm_api=debug` [default: info].
    #[arg(long, env = "LOG_LEVEL")]
    log_level: Option<String>,
    /// Seconds in-flight requests get after SIGTERM/SIGINT [default: 10].
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS")]
    shutdown_timeout_seconds: Option<u64>,
    /// Do not run the trigger engine in this process (run `alarm-worker`
    /// instead). Without it the API rings alarms itself.
    #[arg(long, env = "NO_WORKER")]
    no_worker: bool,
}

/// The same settings in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    db_max_connections: Option<u32>,
    auto_migrate: Option<bool>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    jwt_access_minutes: Option<u32>,
    jwt_refresh_days: Option<u32>,
    cors_origins: Option<Vec<String>>,
    api_base_url: Option<String>,
    admin_emails: Option<Vec<String>>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    shutdown_timeout_seconds: Option<u64>,
    no_worker: Option<bool>,
}

/// The effective configuration.
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    /// `None`: the embedded default.
    pub(crate) database_url: Option<SecretString>,
    pub(crate) db_max_connections: u32,
    pub(crate) auto_migrate: bool,
    /// `None` only in the embedded default before the key file is read.
    pub(crate) jwt_secret: Option<SecretString>,
    pub(crate) jwt_issuer: String,
    pub(crate) jwt_audience: String,
    pub(crate) jwt_access_minutes: u32,
    pub(crate) jwt_refresh_days: u32,
    pub(crate) cors_origins: Vec<String>,
    pub(crate) api_base_url: Option<String>,
    pub(crate) admin_emails: Vec<String>,
    pub(crate) log_format: LogFormat,
    pub(crate) log_level: String,
    pub(crate) shutdown_timeout_seconds: u64,
    /// Whether the trigger engine runs in this process.
    pub(crate) worker: bool,
    /// Webhook, delivery and SMTP settings (environment only); the SSRF
    /// policy applies to registrations even with `--no-worker`.
    pub(crate) notify: alarm_notify::NotifySettings,
}

impl Settings {
    /// Merges the sources and validates every value.
    pub(crate) fn load(args: &Args) -> Result<Self, ConfigError> {
        let file: FileSettings = read_config_file(args.config.as_deref())?;
        let listen = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = socket_addr("LISTEN_ADDR", &listen)?;
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
        let embedded = database_url.is_none();
        let jwt_secret = secret_env("JWT_SECRET_KEY", "JWT_SECRET_KEY_FILE")?;
        match &jwt_secret {
            Some(s) if s.expose_secret().len() < alarm_api::auth::MIN_SECRET_BYTES => {
                return Err(bad(
                    "JWT_SECRET_KEY",
                    format!(
                        "must be at least {} bytes",
                        alarm_api::auth::MIN_SECRET_BYTES
                    ),
                ));
            }
            None if !embedded => {
                return Err(bad(
                    "JWT_SECRET_KEY",
                    "is required when DATABASE_URL is set (only the embedded default generates one)",
                ));
            }
            _ => {}
        }
        let db_max_connections = args
            .db_max_connections
            .or(file.db_max_connections)
            .unwrap_or(20);
        if !(1..=1000).contains(&db_max_connections) {
            return Err(bad("DB_MAX_CONNECTIONS", "must be 1..=1000"));
        }
        let jwt_access_minutes = args
            .jwt_access_minutes
            .or(file.jwt_access_minutes)
            .unwrap_or(15);
        if !(1..=60).contains(&jwt_access_minutes) {
            return Err(bad("JWT_ACCESS_MINUTES", "must be 1..=60"));
        }
        let jwt_refresh_days = args
            .jwt_refresh_days
            .or(file.jwt_refresh_days)
            .unwrap_or(30);
        if !(1..=365).contains(&jwt_refresh_days) {
            return Err(bad("JWT_REFRESH_DAYS", "must be 1..=365"));
        }
        let non_empty = |setting: &'static str, v: String| {
            if v.trim().is_empty() {
                Err(bad(setting, "must not be empty"))
            } else {
                Ok(v.trim().to_owned())
            }
        };
        let jwt_issuer = non_empty(
            "JWT_ISSUER",
            args.jwt_issuer
                .clone()
                .or(file.jwt_issuer)
                .unwrap_or_else(|| "smart-alarm".to_owned()),
        )?;
        let jwt_audience = non_empty(
            "JWT_AUDIENCE",
            args.jwt_audience
                .clone()
                .or(file.jwt_audience)
                .unwrap_or_else(|| "smart-alarm-api".to_owned()),
        )?;
        let cors_origins: Vec<String> = args
            .cors_origins
            .clone()
            .or(file.cors_origins)
            .unwrap_or_default()
            .into_iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        for o in &cors_origins {
            let ok = url::Url::parse(o).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/"
            });
            // `*` is refused: poem would take it as a literal origin that no
            // browser sends, and a credentialed API should name its origins.
            if !ok {
                return Err(bad(
                    "CORS_ORIGINS",
                    format!("`{o}` is not an origin like https://app.example.com"),
                ));
            }
        }
        let api_base_url = args.api_base_url.clone().or(file.api_base_url);
        if let Some(u) = &api_base_url {
            let ok = url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(bad(
                    "API_BASE_URL",
                    format!("`{u}` is not an absolute http(s) URL"),
                ));
            }
        }
        let admin_emails: Vec<String> = args
            .admin_emails
            .clone()
            .or(file.admin_emails)
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        for e in &admin_emails {
            alarm_domain::model::Email::parse(e)
                .map_err(|err| bad("ADMIN_EMAILS", format!("`{e}`: {}", err.message())))?;
        }
        let log_level = args
            .log_level
            .clone()
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_owned());
        check_log_level(&log_level)?;
        let shutdown_timeout_seconds = args
            .shutdown_timeout_seconds
            .or(file.shutdown_timeout_seconds)
            .unwrap_or(10);
        if !(1..=300).contains(&shutdown_timeout_seconds) {
            return Err(bad("SHUTDOWN_TIMEOUT_SECONDS", "must be 1..=300"));
        }
        let notify = alarm_notify::NotifySettings::load(
            &|name| std::env::var(name).ok(),
            secret_env("SMTP_PASSWORD", "SMTP_PASSWORD_FILE")?,
        )
        .map_err(|(name, reason)| bad(name, reason))?;
        Ok(Self {
            notify,
            listen,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("data")),
            auto_migrate: args.auto_migrate.or(file.auto_migrate).unwrap_or(embedded),
            database_url,
            db_max_connections,
            jwt_secret,
            jwt_issuer,
            jwt_audience,
            jwt_access_minutes,
            jwt_refresh_days,
            cors_origins,
            api_base_url,
            admin_emails,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Auto),
            log_level,
            shutdown_timeout_seconds,
            worker: !(args.no_worker || file.no_worker.unwrap_or(false)),
        })
    }

    /// The embedded default: no `DATABASE_URL`.
    pub(crate) fn embedded(&self) -> bool {
        self.database_url.is_none()
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

    /// The effective configuration as TOML-like lines, secrets redacted.
    pub(crate) fn describe(&self) -> String {
        let db = match self.db_config() {
            Ok(c) => c.redacted_url(),
            Err(e) => e.to_string(),
        };
        let secret = |s: &Option<SecretString>, fallback: &str| match s {
            Some(_) => "\"[redacted]\"".to_owned(),
            None => format!("\"{fallback}\""),
        };
        let list = |v: &[String]| {
            format!(
                "[{}]",
                v.iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let lines = [
            format!("listen = \"{}\"", self.listen),
            format!("data_dir = {:?}", self.data_dir.display().to_string()),
            format!("database_url = {db:?}"),
            format!("embedded = {}", self.embedded()),
            format!("db_max_connections = {}", self.db_max_connections),
            format!("auto_migrate = {}", self.auto_migrate),
            format!(
                "jwt_secret_key = {}",
                secret(
                    &self.jwt_secret,
                    &format!("(generated in {})", key_path(&self.data_dir).display())
                )
            ),
            format!("jwt_issuer = {:?}", self.jwt_issuer),
            format!("jwt_audience = {:?}", self.jwt_audience),
            format!("jwt_access_minutes = {}", self.jwt_access_minutes),
            format!("jwt_refresh_days = {}", self.jwt_refresh_days),
            format!("cors_origins = {}", list(&self.cors_origins)),
            format!(
                "api_base_url = {}",
                self.api_base_url
                    .as_deref()
                    .map_or("(none)".to_owned(), |u| format!("{u:?}"))
            ),
            format!("admin_emails = {}", list(&self.admin_emails)),
            format!("log_format = \"{:?}\"", self.log_format).to_lowercase(),
            format!("log_level = {:?}", self.log_level),
            format!(
                "shutdown_timeout_seconds = {}",
                self.shutdown_timeout_seconds
            ),
            format!("no_worker = {}", !self.worker),
        ];
        lines
            .into_iter()
            .chain(self.notify.describe())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Where the embedded default keeps its generated signing key.
pub(crate) fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("jwt-secret")
}
