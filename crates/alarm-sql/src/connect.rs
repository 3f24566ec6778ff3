//! Opening the pool: SQLite pragmas for the embedded default, retries with backoff and jitter for transient failures only.

use std::path::Path;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr};

use crate::config::{DbConfig, DbKind, redact};

/// Why the database could not be opened. Messages carry the redacted URL only.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Still unreachable after the retries (server down, network).
    #[error("cannot reach the database at {url} after {attempts} attempts: {reason}")]
    Unreachable {
        /// The redacted URL.
        url: String,
        /// How many attempts were made.
        attempts: usize,
        /// The last failure.
        reason: String,
    },
    /// The server answered and refused (bad credentials, unknown database,
    /// TLS required…): retrying cannot help, so it is reported at once.
    #[error("the database at {url} refused the connection: {reason}")]
    Refused {
        /// The redacted URL.
        url: String,
        /// The server's reason.
        reason: String,
    },
    /// The SQLite file's folder could not be created.
    #[error("cannot create the folder for {path}: {reason}")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Attempts before giving up on a transient failure.
const ATTEMPTS: usize = 6;

/// Whether a connect error is worth retrying: network failures and pool
/// time-outs are; anything the server said (authentication, missing
/// database) or TLS decided (an untrusted certificate) is not.
pub(crate) fn is_transient(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                // Only network trouble is worth another try; an I/O error
                // carrying a TLS verdict (an untrusted certificate) is not.
                Sqlx::Io(io) => {
                    use std::io::ErrorKind as K;
                    matches!(
                        io.kind(),
                        K::ConnectionRefused
                            | K::ConnectionReset
                            | K::ConnectionAborted
                            | K::NotConnected
                            | K::TimedOut
                            | K::BrokenPipe
                            | K::UnexpectedEof
                            | K::AddrNotAvailable
                            | K::Interrupted
                            | K::HostUnreachable
                            | K::NetworkUnreachable
                            | K::NetworkDown
                    )
                }
                Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
                _ => false,
            }
        }
        _ => false,
    }
}

/// The SQLite file path of a `sqlite:` URL, when it names a file.
pub(crate) fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

/// Creates a missing SQLite file, and its missing folders, readable by this
/// user only (0600 and 0700): the file holds password hashes, webhook
/// secrets and every user's data. SQLite gives its `-wal` and `-shm` files
/// the main file's mode. An existing file or folder keeps its mode.
pub(crate) fn private_file(file: &Path) -> std::io::Result<()> {
    if file.exists() {
        return Ok(());
    }
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        private_dir(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `dir` and its missing parents owner-only (0700).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Opens a pool for `config`.
///
/// SQLite: the file (and its folder) is created on first use, in WAL mode
/// with foreign keys on, a 5 s busy timeout and `synchronous = NORMAL` (safe
/// with WAL). PostgreSQL: TLS as the URL's `sslmode` says.
///
/// # Errors
/// [`ConnectError::Refused`] at once for permanent failures,
/// [`ConnectError::Unreachable`] after retries with exponential backoff and
/// jitter for transient ones.
pub(crate) async fn connect(config: &DbConfig) -> Result<DatabaseConnection, ConnectError> {
    let url = config.url().to_owned();
    if config.kind() == DbKind::Sqlite
        && let Some(file) = sqlite_path(&url)
    {
        private_file(file).map_err(|e| ConnectError::Folder {
            path: file.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    let options = options(config, config.max_connections());
    open(options, &url).await
}

/// The settings of every connection of the sender's pool
/// ([`connect_sender`]), set for the session once it is opened.
///
/// Set with `SET` after connecting rather than as startup parameters: a
/// startup parameter would become the session's `reset_val`, which
/// `Tx::durable_commit` reads as the server's own commit setting.
pub(crate) const SENDER_SESSION: &str = "SET enable_seqscan = off; SET enable_bitmapscan = off; \
     SET plan_cache_mode = force_custom_plan; SET synchronous_commit = off";

/// PostgreSQL: a pool of its own for the webhook and e-mail sender's
/// statements on the outbox (`claim`, `claim_ahead`, `confirm`, `finish`,
/// `next_due_in`), whose connections carry [`SENDER_SESSION`] from the
/// moment they open, so those statements need no transaction or round
/// trip to set it. Bounded like the shared pool (`DB_MAX_CONNECTIONS`):
/// the sender's confirmations of rows held ahead all run at their instant
/// and each waits for the withdrawal lock, so a smaller pool could make a
/// claim or a record wait behind them (they shared the whole pool before).
/// Opened on first use and as needed: a process that sends nothing (the
/// API without its worker) opens none, and a sender opens about as many
/// as it runs statements at once.
pub(crate) async fn connect_sender(config: &DbConfig) -> Result<DatabaseConnection, ConnectError> {
    let url = config.url().to_owned();
    let mut options = options(config, config.max_connections());
    options
        .connect_lazy(true)
        .map_sqlx_postgres_pool_opts(|pool| {
            pool.after_connect(|conn, _| {
                Box::pin(async move {
                    sea_orm::sqlx::Executor::execute(conn, SENDER_SESSION)
                        .await
                        .map(|_| ())
                })
            })
        });
    // A lazy pool opens nothing here: only a URL it cannot parse fails.
    Database::connect(options)
        .await
        .map_err(|e| ConnectError::Refused {
            url: redact(&url),
            reason: redact_in(&e.to_string(), &url),
        })
}

/// The pool options every pool shares, with at most `max` connections.
fn options(config: &DbConfig, max: u32) -> ConnectOptions {
    let url = config.url().to_owned();
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max)
        .min_connections(0)
        .connect_timeout(config.connect_timeout())
        // PostgreSQL can go away: fail fast then. An embedded SQLite file
        // cannot, and its single writer queues bursts: they wait as long as
        // a connect may take.
        .acquire_timeout(match config.kind() {
            DbKind::Postgres => config.acquire_timeout(),
            DbKind::Sqlite => config.connect_timeout(),
        })
        // sqlx pings every connection on every checkout by default: one
        // extra round trip per query. Only connections idle long enough to
        // have been dropped by the server or a firewall are pinged now; a
        // connection that breaks while hot fails its query as `Retryable`.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false);
    if config.kind() == DbKind::Sqlite {
        options.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    }
    options
}

/// Opens the pool of `options`, retrying transient failures.
async fn open(options: ConnectOptions, url: &str) -> Result<DatabaseConnection, ConnectError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(ATTEMPTS - 1)
        .with_jitter();
    let attempt = || Database::connect(options.clone());
    attempt
        .retry(backoff)
        .when(is_transient)
        .await
        .map_err(|e| {
            let reason = redact_in(&e.to_string(), url);
            if is_transient(&e) {
                ConnectError::Unreachable {
                    url: redact(url),
                    attempts: ATTEMPTS,
                    reason,
                }
            } else {
                ConnectError::Refused {
                    url: redact(url),
                    reason,
                }
            }
        })
}

/// Drivers sometimes echo the URL in their messages; never the password.
fn redact_in(message: &str, url: &str) -> String {
    message.replace(url, &redact(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn a_new_database_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("alarm-perm-{}", std::process::id()));
        let file = root.join("inner").join("alarms.db");
        private_file(&file).expect("create");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&root.join("inner")), 0o700);
        assert_eq!(mode(&root), 0o700);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/alarms.db?mode=rwc"),
            Some(Path::new("data/alarms.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(
            sqlite_path("sqlite:/tmp/x.db"),
            Some(Path::new("/tmp/x.db"))
        );
    }
}
