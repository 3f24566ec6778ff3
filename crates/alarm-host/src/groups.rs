//! The settings groups both apps flatten into their command line: the database, the trigger engine and notifications, each setting declared once with [`alarm_appkit::settings!`].

use std::path::PathBuf;
use std::time::Duration;

use alarm_appkit::{ConfigError, bad, secret_env};
use alarm_notify::NotifySettings;
use alarm_notify::dispatch::DispatchConfig;
use alarm_notify::email::{SmtpConfig, SmtpTls};
use alarm_notify::ssrf::AddressPolicy;
use alarm_notify::webhook::{BreakerConfig, WebhookConfig};
use alarm_runner::RunnerConfig;
use secrecy::{ExposeSecret, SecretString};

alarm_appkit::settings! {
    /// Where the data lives.
    pub struct DatabaseArgs => DatabaseValues {
        /// Folder of the embedded SQLite database (and alarm-http's generated key)
        data_dir: PathBuf = "data", "DATA_DIR";
        /// Database pool size (on PostgreSQL, a process that sends webhooks and e-mail has a second pool of this size for its sender, opened as it needs connections)
        db_max_connections: u32 = "20", "DB_MAX_CONNECTIONS", 1..=1000;
        /// How long a query waits for a pooled connection, in milliseconds; while the database is away requests fail (503, Retry-After) after this instead of piling up
        db_acquire_timeout_ms: u64 = "1500", "DB_ACQUIRE_TIMEOUT_MS", 100..=600_000;
    }
}

alarm_appkit::settings! {
    /// What a server does with the schema at start.
    pub struct SchemaArgs => SchemaValues {
        /// Apply pending migrations at start [default: true on the embedded SQLite default, which only this process uses; false with DATABASE_URL, where `alarm-migrate up` runs on deploy so two versions never race over the schema]
        auto_migrate: Option<bool>, "AUTO_MIGRATE";
    }
}

impl SchemaValues {
    /// Whether migrations run at start: as set, else only on the embedded
    /// default.
    pub fn auto_migrate(&self, db: &Database) -> bool {
        self.auto_migrate.unwrap_or(db.embedded())
    }
}

alarm_appkit::settings! {
    /// Who administers the accounts (alarm-http and alarm-admin read it alike).
    pub struct AccountArgs => AccountValues {
        /// Comma-separated e-mails whose accounts become administrators once their address is verified [default: none]
        admin_emails: Vec<String>, "ADMIN_EMAILS";
    }
}

impl AccountValues {
    /// The `ADMIN_EMAILS` addresses, each checked.
    ///
    /// # Errors
    /// `ADMIN_EMAILS` naming the address that is not one.
    pub fn admin_emails(&self) -> Result<Vec<alarm_domain::model::Email>, ConfigError> {
        self.admin_emails
            .iter()
            .map(|e| {
                alarm_domain::model::Email::parse(e)
                    .map_err(|err| bad("ADMIN_EMAILS", format!("`{e}`: {}", err.message())))
            })
            .collect()
    }
}

alarm_appkit::settings! {
    /// The trigger engine.
    pub struct EngineArgs => EngineValues {
        /// An occurrence found later than this many seconds is recorded `missed` instead of ringing
        grace_seconds: u64 = "600", "WORKER_GRACE_SECONDS", 1..=86_400;
        /// Lease of a claim in seconds; a crashed engine's claims are rescued after it
        lease_seconds: u64 = "30", "WORKER_LEASE_SECONDS", 3..=600;
        /// Minutes an unanswered occurrence rings after its last escalation before it is recorded `expired`
        expiry_minutes: u64 = "30", "WORKER_EXPIRY_MINUTES", 1..=1440;
        /// How far ahead triggers are claimed, in milliseconds: a fire claimed ahead is judged and committed before its instant and visible from it (prepared); keep the half second, so whole-second rings are prepared between the sends of other whole seconds
        prefetch_ms: u64 = "30500", "WORKER_PREFETCH_MS", 0..=120_000;
        /// Triggers claimed and completed per round trip
        batch: u32 = "1000", "WORKER_BATCH", 1..=5000;
        /// Longest sleep between looks at the queue when nothing wakes the engine, in milliseconds (new and moved triggers wake it at once)
        idle_poll_ms: u64 = "1000", "WORKER_IDLE_POLL_MS", 10..=60_000;
        /// Users whose alarms one batch of a holiday re-plan job re-plans (an administrator's holiday write re-plans its country's users a batch at a time)
        replan_batch: usize = "200", "WORKER_REPLAN_BATCH", 1..=5000;
        /// Longest sleep between looks for a pending holiday re-plan job, in milliseconds (a write in the same process starts it at once)
        replan_poll_ms: u64 = "2000", "WORKER_REPLAN_POLL_MS", 10..=60_000;
    }
}

alarm_appkit::settings! {
    /// Webhooks, the delivery worker and SMTP.
    pub struct NotifyArgs => NotifyValues {
        /// true = webhooks may reach every loopback, private and link-local address (an alias of listing every private range in WEBHOOK_ALLOW_CIDRS); the cloud metadata service stays refused
        webhook_allow_private: bool = "false", "WEBHOOK_ALLOW_PRIVATE", switch;
        /// Comma-separated non-public networks webhooks may reach, e.g. 10.20.0.0/16 (checked at registration and on every delivery's resolved address; 169.254.169.254 and fd00:ec2::254 are refused whatever it says) [default: none]
        webhook_allow_cidrs: Vec<String>, "WEBHOOK_ALLOW_CIDRS";
        /// Ports webhooks may reach: ports and ranges, comma-separated
        webhook_allowed_ports: String = "80,443,1024-65535", "WEBHOOK_ALLOWED_PORTS";
        /// Webhook request timeout in seconds
        webhook_timeout_seconds: u64 = "10", "WEBHOOK_TIMEOUT_SECONDS", 1..=60;
        /// Attempts before a delivery is dead-lettered
        webhook_max_attempts: u32 = "8", "WEBHOOK_MAX_ATTEMPTS", 1..=50;
        /// First retry delay in milliseconds (doubling, jittered)
        webhook_retry_min_ms: u64 = "5000", "WEBHOOK_RETRY_MIN_MS", 10..=3_600_000;
        /// Longest retry delay and Retry-After honoured, in seconds
        webhook_retry_max_seconds: u64 = "3600", "WEBHOOK_RETRY_MAX_SECONDS", 1..=86_400;
        /// Consecutive dead deliveries that disable a registration (its owner is e-mailed)
        webhook_disable_after: u32 = "10", "WEBHOOK_DISABLE_AFTER", 1..=1000;
        /// Attempts per host the failure rate is measured over; half failing opens the host's breaker
        webhook_breaker_window: usize = "20", "WEBHOOK_BREAKER_WINDOW", 2..=1000;
        /// How long an open breaker holds deliveries back, in milliseconds
        webhook_breaker_open_ms: u64 = "30000", "WEBHOOK_BREAKER_OPEN_MS", 100..=3_600_000;
        /// Outbox rows claimed per round
        delivery_batch: u32 = "512", "DELIVERY_BATCH", 1..=2000;
        /// Sends in flight
        delivery_concurrency: usize = "128", "DELIVERY_CONCURRENCY", 1..=1024;
        /// Webhook sends in flight to one host (host:port); a slow receiver holds no more
        webhook_host_concurrency: usize = "16", "WEBHOOK_HOST_CONCURRENCY", 1..=1024;
        /// Webhook sends in flight for one account (all its registrations); one account pointing at many slow receivers holds no more
        webhook_account_concurrency: usize = "32", "WEBHOOK_ACCOUNT_CONCURRENCY", 1..=1024;
        /// Claim lease in seconds; a killed worker's rows go out again after it
        delivery_lease_seconds: u64 = "120", "DELIVERY_LEASE_SECONDS", 10..=3600;
        /// How long before their instant prepared deliveries are claimed and held ready, in milliseconds (0: claimed when due); keep the half second, so a whole second's rows are claimed between the sends of other whole seconds
        delivery_ahead_ms: u64 = "1500", "DELIVERY_AHEAD_MS", 0..=10_000;
        /// Idle look at the outbox, in milliseconds
        delivery_idle_poll_ms: u64 = "200", "DELIVERY_IDLE_POLL_MS", 10..=60_000;
        /// SMTP server; unset = no e-mail (e-mail deliveries are dead-lettered)
        smtp_host: Option<String>, "SMTP_HOST";
        /// SMTP port [default: 587 with starttls, 465 with tls, 25 with none]
        smtp_port: Option<u16>, "SMTP_PORT", 1..=65_535;
        /// starttls, tls or none
        smtp_tls: String = "starttls", "SMTP_TLS";
        /// SMTP login (with SMTP_PASSWORD or SMTP_PASSWORD_FILE)
        smtp_username: Option<String>, "SMTP_USERNAME";
        /// Sender mailbox, required with SMTP_HOST
        smtp_from: Option<String>, "SMTP_FROM";
        /// Whole SMTP conversation per message, in seconds
        smtp_timeout_seconds: u64 = "20", "SMTP_TIMEOUT_SECONDS", 1..=300;
    }
}

/// The help text of the secrets, which never come from the command line or
/// the `--config` file.
pub const SECRETS_HELP: &str = "\
Secrets (environment only, never on the command line or in the --config file):
  DATABASE_URL          postgres://… or sqlite://path; unset = the embedded
                        default, SQLite at <DATA_DIR>/alarms.db
  DATABASE_URL_FILE     a file holding DATABASE_URL
  DATA_ENCRYPTION_KEYS  keys sealing the stored webhook secrets: one base64
                        32-byte key per line, the first sealing; required
                        with PostgreSQL, else data-key is made beside
                        the SQLite file
  DATA_ENCRYPTION_KEYS_FILE  a file holding DATA_ENCRYPTION_KEYS
  SMTP_PASSWORD         with SMTP_USERNAME
  SMTP_PASSWORD_FILE    a file holding SMTP_PASSWORD

References: any setting or secret may hold {vault:NAME} or ${vault:NAME}
(the first of SECRETS_PROVIDERS that has NAME), or {vault:env:NAME} /
{vault:file:NAME} (that provider only), alone or inside a longer value, e.g.
  DATABASE_URL=postgres://app:{vault:db-password}@db/alarms
They are resolved once at start; one that cannot be resolved stops the
start, naming the setting and the reference.

Precedence: command line, environment, --config file, defaults. The --config
TOML file takes the long option names with underscores as keys, e.g.
  grace_seconds = 300
  cors_origins = [\"https://app.example.com\"]";

/// The database settings with the URL, which only the environment or a
/// file it names may give.
#[derive(Debug)]
pub struct Database {
    /// `None`: the embedded default, SQLite under `data_dir`.
    pub url: Option<SecretString>,
    /// `DATA_ENCRYPTION_KEYS`: the data keys sealing the secrets the
    /// database holds (checked when read); `None`: see [`Database::sealer`].
    pub data_keys: Option<SecretString>,
    /// The declared settings.
    pub values: DatabaseValues,
}

/// The file beside the SQLite database holding the data key an
/// installation generated for itself when `DATA_ENCRYPTION_KEYS` is unset.
pub const DATA_KEY_FILE: &str = "data-key";

impl Database {
    /// Reads `DATABASE_URL` (or `DATABASE_URL_FILE`) and checks it.
    ///
    /// # Errors
    /// An unreadable file or a URL that is not a database URL.
    pub fn new(
        values: DatabaseValues,
        resolver: &dyn alarm_appkit::settings::Resolve,
    ) -> Result<Self, ConfigError> {
        let url = secret_env("DATABASE_URL", "DATABASE_URL_FILE", resolver)?;
        let data_keys = secret_env(
            "DATA_ENCRYPTION_KEYS",
            "DATA_ENCRYPTION_KEYS_FILE",
            resolver,
        )?;
        if let Some(keys) = &data_keys {
            alarm_secrets::AeadSealer::from_text(keys)
                .map_err(|e| bad("DATA_ENCRYPTION_KEYS", e.to_string()))?;
        }
        let this = Self {
            url,
            data_keys,
            values,
        };
        this.config()?;
        Ok(this)
    }

    /// The sealer of the secrets the database holds: the
    /// `DATA_ENCRYPTION_KEYS`, else, on SQLite (one host), the key in
    /// `data-key` beside the database file, generated owner-only on first
    /// use. PostgreSQL
    /// needs the setting: processes on several hosts must share the keys.
    ///
    /// # Errors
    /// PostgreSQL without the setting, or the key file cannot be made or
    /// read (the message names the setting or the file, never a key).
    pub fn sealer(&self) -> Result<alarm_secrets::AeadSealer, String> {
        let bad_keys = |e: alarm_secrets::DataKeyError| format!("DATA_ENCRYPTION_KEYS: {e}");
        if let Some(keys) = &self.data_keys {
            return alarm_secrets::AeadSealer::from_text(keys).map_err(bad_keys);
        }
        let config = self.config().map_err(|e| e.to_string())?;
        let Some(file) = config.sqlite_file() else {
            return Err("DATA_ENCRYPTION_KEYS is required with a PostgreSQL DATABASE_URL: every process must seal and open the stored webhook secrets with the same keys (make one with `openssl rand -base64 32`)".to_owned());
        };
        // Beside the database file, so every process and tool opening that
        // file finds the same key whatever its DATA_DIR or working folder.
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        alarm_sql::private_dir(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(DATA_KEY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => SecretString::from(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate_key_file(&path)?,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        alarm_secrets::AeadSealer::from_text(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The embedded default: no `DATABASE_URL`.
    pub fn embedded(&self) -> bool {
        self.url.is_none()
    }

    /// The adapter's settings.
    ///
    /// # Errors
    /// Not a database URL (the URL itself never appears).
    pub fn config(&self) -> Result<alarm_sql::DbConfig, ConfigError> {
        let url = match &self.url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!(
                "sqlite://{}",
                self.values.data_dir.join("alarms.db").display()
            ),
        };
        alarm_sql::DbConfig::from_url(&url)
            .and_then(|c| c.with_max_connections(self.values.db_max_connections))
            .and_then(|c| {
                c.with_acquire_timeout(Duration::from_millis(self.values.db_acquire_timeout_ms))
            })
            .map_err(|e| {
                bad(
                    "DATABASE_URL",
                    e.to_string()
                        .trim_start_matches("DATABASE_URL: ")
                        .to_owned(),
                )
            })
    }

    /// The lines of `--print-config`, the URL redacted.
    pub fn describe(&self) -> Vec<String> {
        let url = match self.config() {
            Ok(c) => c.redacted_url(),
            Err(e) => e.to_string(),
        };
        let keys = match &self.data_keys {
            Some(keys) => match alarm_secrets::AeadSealer::from_text(keys) {
                Ok(sealer) => format!("[set: current key id {}]", sealer.current_key_id()),
                Err(e) => e.to_string(),
            },
            None => format!("[unset: {DATA_KEY_FILE} beside a SQLite database]"),
        };
        let mut lines = vec![
            format!("database_url = {url:?}"),
            format!("embedded = {}", self.embedded()),
            format!("data_encryption_keys = {keys:?}"),
        ];
        lines.extend(self.values.describe());
        lines
    }
}

impl EngineValues {
    /// The runner's configuration, with the process's shutdown timeout.
    pub fn runner(&self, shutdown: Duration) -> RunnerConfig {
        RunnerConfig {
            prefetch: Duration::from_millis(self.prefetch_ms),
            batch: self.batch,
            lease: Duration::from_secs(self.lease_seconds),
            grace: Duration::from_secs(self.grace_seconds),
            expiry_window: Duration::from_secs(self.expiry_minutes * 60),
            shutdown_timeout: shutdown,
            idle_poll: Duration::from_millis(self.idle_poll_ms),
            replan_batch: self.replan_batch,
            replan_poll: Duration::from_millis(self.replan_poll_ms),
            ..RunnerConfig::default()
        }
    }
}

/// The notification settings with the SMTP password, which only the
/// environment or a file it names may give.
#[derive(Debug)]
pub struct Notify {
    /// What the delivery worker and the API's SSRF guard run with.
    pub settings: NotifySettings,
    /// The declared settings.
    pub values: NotifyValues,
}

impl Notify {
    /// Checks the settings that depend on each other and builds the
    /// delivery worker's configuration.
    ///
    /// # Errors
    /// The first bad setting, named.
    pub fn new(
        values: NotifyValues,
        resolver: &dyn alarm_appkit::settings::Resolve,
    ) -> Result<Self, ConfigError> {
        let password = secret_env("SMTP_PASSWORD", "SMTP_PASSWORD_FILE", resolver)?;
        let v = &values;
        let dispatch = DispatchConfig {
            batch: v.delivery_batch,
            concurrency: v.delivery_concurrency,
            host_concurrency: v.webhook_host_concurrency,
            account_concurrency: v.webhook_account_concurrency,
            lease: Duration::from_secs(v.delivery_lease_seconds),
            ahead: Duration::from_millis(v.delivery_ahead_ms),
            idle_poll: Duration::from_millis(v.delivery_idle_poll_ms),
            max_attempts: v.webhook_max_attempts,
            retry_min: Duration::from_millis(v.webhook_retry_min_ms),
            retry_max: Duration::from_secs(v.webhook_retry_max_seconds),
            disable_after: v.webhook_disable_after,
            ..DispatchConfig::default()
        };
        let webhook = WebhookConfig {
            timeout: Duration::from_secs(v.webhook_timeout_seconds),
            policy: AddressPolicy {
                allow_private: v.webhook_allow_private,
                allow: alarm_appkit::cidrs("WEBHOOK_ALLOW_CIDRS", &v.webhook_allow_cidrs)?,
                ports: alarm_notify::ssrf::parse_ports(&v.webhook_allowed_ports)
                    .map_err(|e| bad("WEBHOOK_ALLOWED_PORTS", e))?,
            },
            breaker: BreakerConfig {
                window: v.webhook_breaker_window,
                open_for: Duration::from_millis(v.webhook_breaker_open_ms),
                ..BreakerConfig::default()
            },
        };
        let tls = SmtpTls::parse(&v.smtp_tls).ok_or_else(|| {
            bad(
                "SMTP_TLS",
                format!("must be starttls, tls or none, got {:?}", v.smtp_tls),
            )
        })?;
        let smtp = match &v.smtp_host {
            None => None,
            Some(host) => {
                let from = v
                    .smtp_from
                    .clone()
                    .ok_or_else(|| bad("SMTP_FROM", "is required with SMTP_HOST"))?;
                alarm_notify::email::check_from(&from)
                    .map_err(|e| bad("SMTP_FROM", e.to_string()))?;
                if v.smtp_username.is_some() != password.is_some() {
                    return Err(bad(
                        "SMTP_USERNAME",
                        "SMTP_USERNAME and SMTP_PASSWORD go together",
                    ));
                }
                Some(SmtpConfig {
                    host: host.clone(),
                    port: v.smtp_port.unwrap_or(match tls {
                        SmtpTls::StartTls => 587,
                        SmtpTls::Implicit => 465,
                        SmtpTls::None => 25,
                    }),
                    tls,
                    username: v.smtp_username.clone(),
                    password,
                    from,
                    timeout: Duration::from_secs(v.smtp_timeout_seconds),
                })
            }
        };
        // E-mail sends count only where e-mail is configured.
        let send_timeout = webhook
            .timeout
            .max(smtp.as_ref().map_or(Duration::ZERO, |s| s.timeout));
        if !dispatch.fits_lease(send_timeout) {
            return Err(bad(
                "DELIVERY_LEASE_SECONDS",
                format!(
                    "{} s is too short for a {} s send timeout (WEBHOOK_TIMEOUT_SECONDS, SMTP_TIMEOUT_SECONDS): a send starts only while one timeout and a quarter of the lease are left, after up to 2 s waiting for its host and account, so every row would be given back unsent",
                    dispatch.lease.as_secs(),
                    send_timeout.as_secs()
                ),
            ));
        }
        Ok(Self {
            settings: NotifySettings {
                dispatch,
                webhook,
                smtp,
            },
            values,
        })
    }

    /// The lines of `--print-config`, the password only as set or not.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = self.values.describe();
        // The port in effect, which the TLS mode decides when unset.
        if let Some(smtp) = &self.settings.smtp {
            for line in &mut lines {
                if line.starts_with("smtp_port = ") {
                    *line = format!("smtp_port = {}", smtp.port);
                }
            }
        }
        let password = self
            .settings
            .smtp
            .as_ref()
            .is_some_and(|s| s.password.is_some());
        lines.push(format!(
            "smtp_password = {:?}",
            if password { "[redacted]" } else { "" }
        ));
        lines
    }
}

/// Every group a server takes besides its own: process, database, schema,
/// engine and notifications, flattened into its command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    #[command(flatten)]
    process: alarm_appkit::ProcessArgs,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    schema: SchemaArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    notify: NotifyArgs,
}

/// The resolved [`ServerArgs`].
#[derive(Debug)]
pub struct Server {
    /// Logging and shutdown.
    pub process: alarm_appkit::ProcessValues,
    /// The database.
    pub database: Database,
    /// The schema gate.
    pub schema: SchemaValues,
    /// The engine.
    pub engine: EngineValues,
    /// Notifications.
    pub notify: Notify,
}

impl ServerArgs {
    /// Resolves every group (see [`alarm_appkit::settings!`]).
    ///
    /// # Errors
    /// The first bad setting, named.
    pub fn load(
        &self,
        file: &mut alarm_appkit::settings::ConfigFile,
        resolver: &dyn alarm_appkit::settings::Resolve,
    ) -> Result<Server, ConfigError> {
        Ok(Server {
            process: self.process.load(file, resolver)?,
            database: Database::new(self.database.resolve(file, resolver)?, resolver)?,
            schema: self.schema.resolve(file, resolver)?,
            engine: self.engine.resolve(file, resolver)?,
            notify: Notify::new(self.notify.resolve(file, resolver)?, resolver)?,
        })
    }
}

impl Server {
    /// The engine's configuration, with the process's shutdown timeout.
    pub fn runner(&self) -> RunnerConfig {
        self.engine.runner(self.process.shutdown_timeout())
    }

    /// The lines of `--print-config`, secrets redacted.
    pub fn describe(&self) -> Vec<String> {
        [
            self.process.describe(),
            self.database.describe(),
            self.schema.describe(),
            self.engine.describe(),
            self.notify.describe(),
        ]
        .concat()
    }
}

/// Writes a new data key to `path` (see [`write_key_once`]).
fn generate_key_file(path: &std::path::Path) -> Result<SecretString, String> {
    let key = alarm_secrets::AeadSealer::generate_key()?;
    let (key, ours) = write_key_once(path, key)?;
    if ours {
        tracing::warn!(
            path = %path.display(),
            "generated a data key sealing the stored webhook secrets; keep it with the database's backups but apart from them, and set DATA_ENCRYPTION_KEYS in production"
        );
    }
    Ok(key)
}

/// Stores a generated `key` at `path` (owner-only) all at once: written
/// and synced under a name of its own, then linked into place, so no
/// process ever reads a half-written key. When another process linked
/// first, theirs is returned; the flag says whether `key` is the one kept.
///
/// # Errors
/// The file cannot be written or read; the message names it.
pub fn write_key_once(
    path: &std::path::Path,
    key: SecretString,
) -> Result<(SecretString, bool), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let draft = path.with_extension(format!("new-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&draft)
        .and_then(|mut f| {
            f.write_all(key.expose_secret().as_bytes())?;
            f.sync_all()
        });
    let linked = written.and_then(|()| std::fs::hard_link(&draft, path));
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => Ok((key, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(path)
            .map(|k| (SecretString::from(k.trim().to_owned()), false))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Err(e) => Err(format!("cannot write {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use alarm_appkit::settings::{AsWritten, ConfigFile};
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        notify: NotifyArgs,
    }

    fn notify(args: &[&str]) -> Result<Notify, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .expect("arguments");
        let values = cli.notify.resolve(&mut ConfigFile::default(), &AsWritten)?;
        Notify::new(values, &AsWritten)
    }

    fn refused(args: &[&str]) -> &'static str {
        notify(args).expect_err("refused").setting
    }

    #[derive(Parser)]
    struct EngineCli {
        #[command(flatten)]
        engine: EngineArgs,
    }

    /// The engine's settings state their defaults as text and the runner
    /// as values: both are the same (the window's half second included).
    #[test]
    fn the_engine_settings_default_to_the_runners_defaults() {
        let values = EngineCli::try_parse_from(["test"])
            .expect("no arguments")
            .engine
            .resolve(&mut ConfigFile::default(), &AsWritten)
            .expect("defaults");
        let runner = RunnerConfig::default();
        assert_eq!(values.runner(runner.shutdown_timeout), runner);
    }

    #[test]
    fn defaults_and_named_errors() {
        let n = notify(&[]).expect("defaults");
        assert!(n.settings.smtp.is_none());
        assert!(!n.settings.webhook.policy.allow_private);
        assert_eq!(n.settings.dispatch.max_attempts, 8);
        assert_eq!(n.settings.dispatch.lease, Duration::from_secs(120));
        assert_eq!(
            refused(&["--webhook-max-attempts", "0"]),
            "WEBHOOK_MAX_ATTEMPTS"
        );
        assert_eq!(
            refused(&["--webhook-allow-private", "maybe"]),
            "WEBHOOK_ALLOW_PRIVATE"
        );
        assert!(
            notify(&["--webhook-allow-private"])
                .expect("a switch")
                .settings
                .webhook
                .policy
                .allow_private
        );
        assert_eq!(refused(&["--smtp-host", "mail.test"]), "SMTP_FROM");
        assert_eq!(
            refused(&[
                "--smtp-host",
                "mail.test",
                "--smtp-from",
                "a@b.test",
                "--smtp-tls",
                "ssl"
            ]),
            "SMTP_TLS"
        );
        assert_eq!(
            refused(&[
                "--delivery-lease-seconds",
                "10",
                "--delivery-concurrency",
                "1"
            ]),
            "DELIVERY_LEASE_SECONDS"
        );
        let n = notify(&[
            "--smtp-host",
            "mail.test",
            "--smtp-from",
            "Alarms <a@b.test>",
            "--smtp-tls",
            "tls",
        ])
        .expect("implicit TLS");
        assert_eq!(n.settings.smtp.expect("smtp").port, 465);
    }
}
