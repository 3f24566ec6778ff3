//! Database settings: `DATABASE_URL` (PostgreSQL or SQLite), pool size and connect timeout, with the URL kept secret.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// Which kind of database a URL names (not to be confused with
/// `alarm_runner::Engine`, the trigger engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `sqlite://path` or `sqlite::memory:`.
    Sqlite,
}

/// Why the database settings are unusable. Messages never contain the password.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The URL is not a PostgreSQL or SQLite URL.
    #[error("DATABASE_URL: {0}")]
    Url(String),
    /// A pool setting is out of range.
    #[error("{setting}: {reason}")]
    Setting {
        /// The setting's name.
        setting: &'static str,
        /// Why.
        reason: String,
    },
}

/// How to reach the database. The URL may carry a password, so it is a
/// [`SecretString`] and `Debug` shows it redacted.
#[derive(Clone)]
pub struct DbConfig {
    url: SecretString,
    kind: DbKind,
    max_connections: u32,
    connect_timeout: Duration,
    acquire_timeout: Duration,
}

/// The pool size of the seed's connection schema.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 20;
/// The connect timeout of the seed's connection schema.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a query waits for a pooled connection before it fails as
/// retryable (503 in the API): short, so that while the database is away
/// requests fail fast instead of piling up every client's connection.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

impl DbConfig {
    /// Settings for `url` with the default pool (20 connections, 30 s connect timeout).
    ///
    /// PostgreSQL's `sslmode` (`require`, `verify-full`, …) and `sslrootcert`
    /// in the URL are honoured by the driver; an unknown `sslmode` is refused
    /// here rather than silently downgraded.
    ///
    /// # Errors
    /// [`ConfigError::Url`] for an unsupported scheme, an unparsable URL or
    /// an unknown `sslmode`.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let kind = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DbKind::Postgres
        } else if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else {
            return Err(ConfigError::Url(
                "must start with postgres://, postgresql:// or sqlite:".to_owned(),
            ));
        };
        if kind == DbKind::Sqlite && url.contains(":memory:") {
            // Each pool (readers, the writer) would get its own empty
            // in-memory database, and it vanishes with its last connection.
            return Err(ConfigError::Url("an in-memory SQLite database is not supported; name a file, e.g. sqlite://data/alarms.db".to_owned()));
        }
        if kind == DbKind::Postgres {
            let parsed = url::Url::parse(url)
                .map_err(|e| ConfigError::Url(format!("not a valid URL ({e})")))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(ConfigError::Url("names no host".to_owned()));
            }
            if let Some((_, mode)) = parsed.query_pairs().find(|(k, _)| k == "sslmode")
                && !SSL_MODES.contains(&mode.as_ref())
            {
                return Err(ConfigError::Url(format!(
                    "sslmode `{mode}` is not one of {}",
                    SSL_MODES.join(", ")
                )));
            }
        }
        Ok(Self {
            url: SecretString::from(url.to_owned()),
            kind,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
        })
    }

    /// The same settings with another pool size.
    ///
    /// # Errors
    /// [`ConfigError::Setting`] unless 1..=1000.
    pub fn with_max_connections(mut self, n: u32) -> Result<Self, ConfigError> {
        if !(1..=1000).contains(&n) {
            return Err(ConfigError::Setting {
                setting: "DATABASE_MAX_CONNECTIONS",
                reason: format!("must be 1..=1000, got {n}"),
            });
        }
        self.max_connections = n;
        Ok(self)
    }

    /// The same settings with another connect timeout.
    ///
    /// # Errors
    /// [`ConfigError::Setting`] unless 1 s..=600 s.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&timeout) {
            return Err(ConfigError::Setting {
                setting: "DATABASE_CONNECT_TIMEOUT",
                reason: "must be 1..=600 seconds".to_owned(),
            });
        }
        self.connect_timeout = timeout;
        Ok(self)
    }

    /// The SQLite database file, when the URL names one.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        use secrecy::ExposeSecret as _;
        crate::connect::sqlite_path(self.url.expose_secret()).map(std::path::Path::to_path_buf)
    }

    /// The database kind.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// The pool size.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The same settings with queries waiting at most `timeout` for a
    /// pooled connection (100 ms..=10 min).
    ///
    /// # Errors
    /// Out of range.
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&timeout) {
            return Err(ConfigError::Setting {
                setting: "DB_ACQUIRE_TIMEOUT_MS",
                reason: "must be between 100 ms and 10 minutes".to_owned(),
            });
        }
        self.acquire_timeout = timeout;
        Ok(self)
    }

    /// How long a query waits for a pooled connection.
    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// The URL, for the driver only.
    pub(crate) fn url(&self) -> &str {
        self.url.expose_secret()
    }

    /// The URL with any password replaced by `***`, for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact(self.url.expose_secret())
    }
}

/// Replaces the password of a URL by `***`.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConfig")
            .field("url", &self.redacted_url())
            .field("kind", &self.kind)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_kinds_and_redaction() {
        let pg = DbConfig::from_url(
            "postgres://app:s3cret@db.example.com:5432/alarms?sslmode=verify-full",
        )
        .unwrap();
        assert_eq!(pg.kind(), DbKind::Postgres);
        assert_eq!(
            (pg.max_connections(), pg.connect_timeout()),
            (20, Duration::from_secs(30))
        );
        let shown = format!("{pg:?} {}", pg.redacted_url());
        assert!(
            !shown.contains("s3cret") && shown.contains("***"),
            "{shown}"
        );
        assert_eq!(
            DbConfig::from_url("sqlite://data/alarms.db")
                .unwrap()
                .kind(),
            DbKind::Sqlite
        );
        assert!(matches!(
            DbConfig::from_url("mysql://x"),
            Err(ConfigError::Url(_))
        ));
        assert!(
            matches!(DbConfig::from_url("postgres://h/db?sslmode=sometimes"), Err(ConfigError::Url(m)) if m.contains("sslmode"))
        );
        assert!(
            DbConfig::from_url("sqlite://x.db")
                .unwrap()
                .with_max_connections(0)
                .is_err()
        );
        assert!(
            matches!(DbConfig::from_url("sqlite::memory:"), Err(ConfigError::Url(m)) if m.contains("in-memory"))
        );
    }
}
