//! Backups and restores of the whole database: an online, consistent copy (SQLite's `VACUUM INTO`; `pg_dump` in PostgreSQL's custom format on an exported snapshot), a manifest with every table's row count and row checksum taken from that same snapshot, age-based retention, and a restore that checks the file and every table before it answers.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use alarm_domain::jiff::{SignedDuration, Timestamp};
use futures_util::TryStreamExt as _;
use sea_orm::sqlx::{self, Connection as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use crate::{DbConfig, DbKind, Sql};

/// Why a backup, a restore or a prune failed. Messages name files and tools,
/// never the database password.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file or folder could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file or folder.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// The database refused a statement.
    #[error("the database: {0}")]
    Database(String),
    /// `pg_dump`, `pg_restore` or `psql` is missing or failed.
    #[error("{tool}: {reason}")]
    Tool {
        /// The program.
        tool: &'static str,
        /// Its exit and the end of what it printed.
        reason: String,
    },
    /// The backup cannot be restored as it is: damaged, for the other kind
    /// of database, or its tables do not come back as the manifest says.
    #[error("{file}: {reason}")]
    Refused {
        /// The backup file.
        file: String,
        /// Why.
        reason: String,
    },
    /// PostgreSQL only: the restore committed (the file's checksum and every
    /// table's row count matched inside its transaction), but the row
    /// checksums read after the commit differ from the manifest. The
    /// database now holds the backup's data as loaded; the old data is gone.
    #[error("{file}: restored, but the check after the commit found differences: {reason}")]
    RestoredWithDifferences {
        /// The backup file.
        file: String,
        /// Which tables differ.
        reason: String,
    },
    /// PostgreSQL only: the restore committed, then the check after it
    /// could not run (the database could not be reached or read). The
    /// database holds the backup's data as loaded.
    #[error("{file}: restored, but the check after the commit could not run: {reason}")]
    RestoredUnchecked {
        /// The backup file.
        file: String,
        /// Why.
        reason: String,
    },
}

impl BackupError {
    /// Whether the database is as it was before the failed call.
    #[must_use]
    pub fn left_unchanged(&self) -> bool {
        !matches!(
            self,
            Self::RestoredWithDifferences { .. } | Self::RestoredUnchecked { .. }
        )
    }
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn db_error(e: impl std::fmt::Display) -> BackupError {
    BackupError::Database(e.to_string())
}

/// One table as the backup holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSum {
    /// Its rows.
    pub rows: u64,
    /// SHA-256 of its rows rendered as text in byte order, one per line:
    /// equal after a restore exactly when every row came back unchanged.
    pub sha256: String,
}

/// What a backup holds, written beside it as `<file>.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The database kind the file restores into.
    pub kind: DbKind,
    /// When the snapshot was taken.
    pub taken_at: Timestamp,
    /// The backup file's name (in the same folder as the manifest).
    pub file: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// The newest migration applied in the snapshot.
    pub migration: Option<String>,
    /// Every table of the schema.
    pub tables: BTreeMap<String, TableSum>,
}

impl Manifest {
    fn to_json(&self) -> String {
        let tables: serde_json::Map<String, serde_json::Value> = self
            .tables
            .iter()
            .map(|(name, sum)| {
                (
                    name.clone(),
                    serde_json::json!({ "rows": sum.rows, "sha256": sum.sha256 }),
                )
            })
            .collect();
        let doc = serde_json::json!({
            "format": 1,
            "database": kind_name(self.kind),
            "taken_at": self.taken_at.to_string(),
            "file": self.file,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "migration": self.migration,
            "tables": tables,
        });
        format!("{doc:#}\n")
    }

    fn from_json(text: &str) -> Result<Self, String> {
        let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let text_of = |key: &str| {
            doc.get(key)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| format!("no `{key}`"))
        };
        if doc.get("format").and_then(serde_json::Value::as_u64) != Some(1) {
            return Err("not a format 1 manifest".to_owned());
        }
        let kind = match text_of("database")? {
            "sqlite" => DbKind::Sqlite,
            "postgres" => DbKind::Postgres,
            other => return Err(format!("unknown database `{other}`")),
        };
        let mut tables = BTreeMap::new();
        for (name, sum) in doc
            .get("tables")
            .and_then(serde_json::Value::as_object)
            .ok_or("no `tables`")?
        {
            if !plain_name(name) {
                return Err(format!("table name {name:?} is not a plain identifier"));
            }
            let rows = sum
                .get("rows")
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| format!("table {name}: no `rows`"))?;
            let sha256 = sum
                .get("sha256")
                .and_then(serde_json::Value::as_str)
                .filter(|s| is_hex_digest(s))
                .ok_or_else(|| format!("table {name}: no `sha256`"))?;
            tables.insert(
                name.clone(),
                TableSum {
                    rows,
                    sha256: sha256.to_owned(),
                },
            );
        }
        Ok(Self {
            kind,
            taken_at: text_of("taken_at")?
                .parse()
                .map_err(|e| format!("`taken_at`: {e}"))?,
            file: text_of("file")?.to_owned(),
            bytes: doc
                .get("bytes")
                .and_then(serde_json::Value::as_u64)
                .ok_or("no `bytes`")?,
            sha256: text_of("sha256")
                .ok()
                .filter(|s| is_hex_digest(s))
                .ok_or("no `sha256`")?
                .to_owned(),
            migration: doc
                .get("migration")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            tables,
        })
    }

    /// The manifest beside `file`, checked against the file's size and
    /// SHA-256.
    ///
    /// # Errors
    /// [`BackupError::Refused`] for a missing or unreadable manifest, or a
    /// file that is not the one it describes.
    pub fn verify(file: &Path) -> Result<Self, BackupError> {
        let refused = |reason: String| BackupError::Refused {
            file: file.display().to_string(),
            reason,
        };
        let path = sidecar(file, "json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| refused(format!("its manifest {}: {e}", path.display())))?;
        let manifest = Self::from_json(&text).map_err(|e| refused(format!("its manifest: {e}")))?;
        if file.file_name().and_then(|n| n.to_str()) != Some(manifest.file.as_str()) {
            return Err(refused(format!(
                "the manifest describes {}, not this file",
                manifest.file
            )));
        }
        let (bytes, sha256) = digest(file)?;
        if (bytes, sha256.as_str()) != (manifest.bytes, manifest.sha256.as_str()) {
            return Err(refused(format!(
                "damaged: {bytes} bytes with SHA-256 {sha256}, the manifest says {} bytes with {}",
                manifest.bytes, manifest.sha256
            )));
        }
        Ok(manifest)
    }
}

fn kind_name(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Sqlite => "sqlite",
        DbKind::Postgres => "postgres",
    }
}

/// Table and column names this crate creates: lower-case identifiers, safe
/// to put between double quotes without escaping.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn is_hex_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn sidecar(file: &Path, ext: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Size and SHA-256 of a file, read in 1 MiB steps.
fn digest(file: &Path) -> Result<(u64, String), BackupError> {
    let mut f = std::fs::File::open(file).map_err(file_error(file))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 1 << 20];
    let mut bytes = 0_u64;
    loop {
        let n = f.read(&mut buf).map_err(file_error(file))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += u64::try_from(n).unwrap_or(u64::MAX);
    }
    Ok((bytes, hex(&hasher.finalize())))
}

/// Backup files are `alarm-<UTC stamp>.<ext>`: the stamp orders them and
/// retention reads their age from it rather than from a modification time
/// that a copy resets.
const PREFIX: &str = "alarm-";
const STAMP: &str = "%Y%m%dT%H%M%SZ";

fn extension(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Sqlite => "sqlite3",
        DbKind::Postgres => "pgdump",
    }
}

/// The stamp of a file of a backup set (the data file, its `.json` and
/// `.sha256` sidecars, or an unfinished `.partial`), and whether it is the
/// data file itself.
fn stamp_of(name: &str) -> Option<(Timestamp, bool, bool)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (stamp, ext) = rest.split_once('.')?;
    // The stamp is UTC; its `Z` is a literal of the format.
    let at = alarm_domain::jiff::fmt::strtime::parse(STAMP, stamp)
        .ok()?
        .to_datetime()
        .ok()?
        .to_zoned(alarm_domain::jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp();
    let data = matches!(ext, "sqlite3" | "pgdump");
    let partial = ext.ends_with(".partial");
    let known = data
        || partial
        || ["sqlite3", "pgdump"]
            .iter()
            .any(|d| ext == format!("{d}.json") || ext == format!("{d}.sha256"));
    known.then_some((at, data, partial))
}

/// Sets owner-only access (0600): a backup holds password hashes and every
/// user's data.
fn private(file: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
            .map_err(file_error(file))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Writes `text` to `path` through a temporary name, so a reader sees the
/// whole file or none.
fn write_whole(path: &Path, text: &str) -> Result<(), BackupError> {
    let tmp = sidecar(path, "tmp");
    std::fs::write(&tmp, text).map_err(file_error(&tmp))?;
    private(&tmp)?;
    std::fs::rename(&tmp, path).map_err(file_error(path))
}

/// sea-orm's record of the applied migrations.
const MIGRATIONS: &str = "seaql_migrations";
const NEWEST_MIGRATION: &str = "SELECT version FROM seaql_migrations ORDER BY version DESC LIMIT 1";

/// Hashes rows rendered as text, sorted by the database in byte order.
async fn table_sum<S>(rows: S) -> Result<TableSum, BackupError>
where
    S: futures_util::Stream<Item = Result<String, sqlx::Error>>,
{
    let mut hasher = Sha256::new();
    let mut count = 0_u64;
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.try_next().await.map_err(db_error)? {
        hasher.update(row.as_bytes());
        hasher.update(b"\n");
        count += 1;
    }
    Ok(TableSum {
        rows: count,
        sha256: hex(&hasher.finalize()),
    })
}

/// Every table of a SQLite database with its rows and checksum, and the
/// newest applied migration.
async fn sqlite_tables(
    conn: &mut sqlx::SqliteConnection,
) -> Result<(BTreeMap<String, TableSum>, Option<String>), BackupError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut tables = BTreeMap::new();
    for name in names {
        if !plain_name(&name) {
            return Err(BackupError::Database(format!(
                "table {name:?} is not one this product creates"
            )));
        }
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(&name)
                .fetch_all(&mut *conn)
                .await
                .map_err(db_error)?;
        // quote() renders every value, blobs included, unambiguously; the
        // unit separator cannot occur in its output outside a string.
        let row = columns
            .iter()
            .map(|c| format!("quote(\"{}\")", c.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" || char(31) || ");
        let sql = format!("SELECT {row} FROM \"{name}\" ORDER BY 1");
        // Names checked by `plain_name`, columns quoted with their quotes doubled.
        let sum =
            table_sum(sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).fetch(&mut *conn))
                .await?;
        tables.insert(name, sum);
    }
    let migration = if tables.contains_key(MIGRATIONS) {
        sqlx::query_scalar(NEWEST_MIGRATION)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?
    } else {
        None
    };
    Ok((tables, migration))
}

/// Every table of the `public` schema with its rows and checksum, inside
/// the caller's transaction.
async fn postgres_tables(
    conn: &mut sqlx::PgConnection,
) -> Result<(BTreeMap<String, TableSum>, Option<String>), BackupError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut tables = BTreeMap::new();
    for name in names {
        if !plain_name(&name) {
            return Err(BackupError::Database(format!(
                "table {name:?} is not one this product creates"
            )));
        }
        // A row's text form covers every column; "C" collation sorts by
        // bytes whatever the database's locale.
        let sql = format!("SELECT r::text FROM public.\"{name}\" r ORDER BY r::text COLLATE \"C\"");
        // Names checked by `plain_name`, columns quoted with their quotes doubled.
        let sum =
            table_sum(sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).fetch(&mut *conn))
                .await?;
        tables.insert(name, sum);
    }
    let migration = if tables.contains_key(MIGRATIONS) {
        sqlx::query_scalar(NEWEST_MIGRATION)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?
    } else {
        None
    };
    Ok((tables, migration))
}

/// A `postgres://` URL as libpq takes it: without the password (it goes in
/// `PGPASSWORD`, never on a command line other users can read) and with
/// only the query parameters libpq knows.
fn libpq_target(config: &DbConfig) -> Result<(String, Option<SecretString>), BackupError> {
    const KNOWN: &[&str] = &[
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "application_name",
        "options",
        "connect_timeout",
        "target_session_attrs",
    ];
    let mut url = url::Url::parse(config.url()).map_err(|e| BackupError::Tool {
        tool: "libpq",
        reason: format!("the database URL: {e}"),
    })?;
    let password = url.password().map(|p| {
        SecretString::from(
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned(),
        )
    });
    let _ = url.set_password(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| KNOWN.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    Ok((url.to_string(), password))
}

/// Runs a PostgreSQL client tool against `config`'s database and waits.
async fn run_tool(
    tool: &'static str,
    args: Vec<String>,
    config: &DbConfig,
) -> Result<(), BackupError> {
    let (target, password) = libpq_target(config)?;
    let mut command = Command::new(tool);
    command.args(args).arg(format!("--dbname={target}"));
    command.env("PGAPPNAME", "alarm-migrate");
    if let Some(p) = &password {
        command.env("PGPASSWORD", p.expose_secret());
    }
    let output = tokio::task::spawn_blocking(move || {
        let mut command = command;
        command.output()
    })
        .await
        .map_err(|e| BackupError::Tool {
            tool,
            reason: e.to_string(),
        })?
        .map_err(|e| BackupError::Tool {
            tool,
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "not found on PATH: install PostgreSQL's client tools ({tool} must be the server's major version or newer)"
                )
            } else {
                e.to_string()
            },
        })?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let tail: String = said.lines().rev().take(5).collect::<Vec<_>>().join(" / ");
    Err(BackupError::Tool {
        tool,
        reason: format!("{} ({tail})", output.status),
    })
}

impl Sql {
    /// Writes a consistent copy of the whole database into `dir` (created
    /// owner-only when missing) as `alarm-<stamp>.sqlite3` or `.pgdump`,
    /// with its manifest (`.json`) and a `sha256sum -c` file (`.sha256`).
    /// The apps keep running: SQLite's `VACUUM INTO` reads one snapshot;
    /// `pg_dump` dumps the snapshot the manifest's counts were taken in.
    ///
    /// # Errors
    /// [`BackupError`]; nothing is left under the final name then.
    pub async fn backup(
        &self,
        config: &DbConfig,
        dir: &Path,
        now: Timestamp,
    ) -> Result<Manifest, BackupError> {
        crate::connect::private_dir(dir).map_err(file_error(dir))?;
        let kind = self.kind();
        let stamp = alarm_domain::jiff::fmt::strtime::format(STAMP, now)
            .map_err(|e| BackupError::Database(e.to_string()))?;
        let name = format!("{PREFIX}{stamp}.{}", extension(kind));
        let file = dir.join(&name);
        if file.exists() {
            return Err(BackupError::Refused {
                file: file.display().to_string(),
                reason: "exists already (one backup per second)".to_owned(),
            });
        }
        let partial = sidecar(&file, "partial");
        let _ = std::fs::remove_file(&partial);
        let taken = match kind {
            DbKind::Sqlite => self.backup_sqlite(&partial).await,
            DbKind::Postgres => self.backup_postgres(config, &partial).await,
        };
        let (tables, migration) = match taken {
            Ok(t) => t,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        private(&partial)?;
        let (bytes, sha256) = digest(&partial)?;
        let manifest = Manifest {
            kind,
            taken_at: now,
            file: name.clone(),
            bytes,
            sha256,
            migration,
            tables,
        };
        write_whole(&sidecar(&file, "json"), &manifest.to_json())?;
        write_whole(
            &sidecar(&file, "sha256"),
            &format!("{}  {name}\n", manifest.sha256),
        )?;
        // The data file takes its name last: a file under the final name
        // always has its manifest.
        std::fs::rename(&partial, &file).map_err(file_error(&file))?;
        Ok(manifest)
    }

    async fn backup_sqlite(
        &self,
        partial: &Path,
    ) -> Result<(BTreeMap<String, TableSum>, Option<String>), BackupError> {
        let pool = self.db.get_sqlite_connection_pool();
        sqlx::query("VACUUM INTO ?")
            .bind(partial.display().to_string())
            .execute(pool)
            .await
            .map_err(db_error)?;
        // Counted in the copy itself: writes that landed after the copy
        // cannot make the manifest disagree with the file.
        let mut copy = open_sqlite(partial, true).await?;
        let taken = sqlite_tables(&mut copy).await;
        let _ = copy.close().await;
        taken
    }

    async fn backup_postgres(
        &self,
        config: &DbConfig,
        partial: &Path,
    ) -> Result<(BTreeMap<String, TableSum>, Option<String>), BackupError> {
        let pool = self.db.get_postgres_connection_pool();
        let mut conn = pool.acquire().await.map_err(db_error)?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        let taken = async {
            let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
                .fetch_one(&mut *conn)
                .await
                .map_err(db_error)?;
            let tables = postgres_tables(&mut conn).await?;
            // pg_dump reads the very snapshot the counts and checksums
            // came from, while this transaction holds it open.
            run_tool(
                "pg_dump",
                vec![
                    "--format=custom".into(),
                    "--no-owner".into(),
                    "--no-privileges".into(),
                    format!("--snapshot={snapshot}"),
                    format!("--file={}", partial.display()),
                ],
                config,
            )
            .await?;
            Ok(tables)
        }
        .await;
        let _ = sqlx::query("COMMIT").execute(&mut *conn).await;
        taken
    }
}

async fn open_sqlite(file: &Path, read_only: bool) -> Result<sqlx::SqliteConnection, BackupError> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .read_only(read_only)
        .create_if_missing(false);
    sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| BackupError::File {
            path: file.display().to_string(),
            reason: e.to_string(),
        })
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup's manifest; every table in it came back with its rows
    /// and checksum.
    pub manifest: Manifest,
    /// SQLite: where the replaced database file was kept.
    pub kept: Option<PathBuf>,
}

/// Replaces the database of `config` by the backup in `file`, after
/// checking the file against its manifest.
///
/// SQLite: the copy is checked (`integrity_check`, every table's rows and
/// checksum) before it replaces the database in one rename; the replaced
/// file is kept beside it as `<db>.before-restore-<stamp>`, and any failure
/// leaves the database in place. The apps must be stopped:
/// a database another connection is writing is refused.
///
/// PostgreSQL: `pg_restore` renders the dump and `psql` runs it in one
/// transaction that first drops every object of the `public` schema and
/// last compares every table's row count with the manifest, so a failure
/// up to the commit changes nothing; the row checksums are compared after
/// it commits, and a difference there is
/// [`BackupError::RestoredWithDifferences`], a check that cannot run then
/// [`BackupError::RestoredUnchecked`] (the two errors after which the
/// database is not as it was). Stop the worker first so that it does
/// not act on the old data while the restore waits for its locks.
///
/// # Errors
/// [`BackupError`].
pub async fn restore(
    config: &DbConfig,
    file: &Path,
    now: Timestamp,
) -> Result<Restored, BackupError> {
    let manifest = Manifest::verify(file)?;
    let refused = |reason: String| BackupError::Refused {
        file: file.display().to_string(),
        reason,
    };
    if manifest.kind != config.kind() {
        return Err(refused(format!(
            "a {} backup cannot be restored into {}",
            kind_name(manifest.kind),
            kind_name(config.kind())
        )));
    }
    let mut head = [0_u8; 16];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(file_error(file))?;
    let magic: &[u8] = match manifest.kind {
        DbKind::Sqlite => b"SQLite format 3\0",
        DbKind::Postgres => b"PGDMP",
    };
    if !head.starts_with(magic) {
        return Err(refused(format!(
            "not a {} backup file",
            kind_name(manifest.kind)
        )));
    }
    let kept = match manifest.kind {
        DbKind::Sqlite => Some(restore_sqlite(config, file, &manifest, now).await?),
        DbKind::Postgres => {
            restore_postgres(config, file, &manifest).await?;
            None
        }
    };
    Ok(Restored { manifest, kept })
}

fn compare(
    file: &Path,
    expected: &BTreeMap<String, TableSum>,
    found: &BTreeMap<String, TableSum>,
) -> Result<(), BackupError> {
    let mut wrong = Vec::new();
    for name in expected
        .keys()
        .chain(found.keys().filter(|n| !expected.contains_key(*n)))
    {
        match (expected.get(name), found.get(name)) {
            (Some(e), Some(f)) if e == f => {}
            (Some(e), Some(f)) => wrong.push(format!(
                "{name}: {} rows restored with checksum {}, the backup holds {} with {}",
                f.rows, f.sha256, e.rows, e.sha256
            )),
            (Some(_), None) => wrong.push(format!("{name}: missing")),
            (None, _) => wrong.push(format!("{name}: not in the backup")),
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(BackupError::Refused {
            file: file.display().to_string(),
            reason: format!("the restored tables differ: {}", wrong.join("; ")),
        })
    }
}

async fn restore_sqlite(
    config: &DbConfig,
    file: &Path,
    manifest: &Manifest,
    now: Timestamp,
) -> Result<PathBuf, BackupError> {
    let target = config.sqlite_file().ok_or_else(|| BackupError::Refused {
        file: file.display().to_string(),
        reason: "the database URL names no SQLite file".to_owned(),
    })?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::connect::private_dir(parent).map_err(file_error(parent))?;
    }
    let incoming = sidecar(&target, "restoring");
    // A journal left by an earlier restore that stopped half-way would be replayed into this
    // copy the moment it is opened.
    drop_journal(&incoming)?;
    std::fs::copy(file, &incoming).map_err(file_error(&incoming))?;
    private(&incoming)?;
    let checked = async {
        let mut copy = open_sqlite(&incoming, false).await?;
        let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut copy)
            .await
            .map_err(db_error)?;
        let found = sqlite_tables(&mut copy).await;
        let _ = copy.close().await;
        if verdict != "ok" {
            return Err(BackupError::Refused {
                file: file.display().to_string(),
                reason: format!("integrity_check: {verdict}"),
            });
        }
        compare(file, &manifest.tables, &found?.0)
    }
    .await;
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&incoming);
        return Err(e);
    }
    let stamp = alarm_domain::jiff::fmt::strtime::format(STAMP, now).map_err(db_error)?;
    let kept = PathBuf::from(format!("{}.before-restore-{stamp}", target.display()));
    if target.exists() {
        // Everything of the old database into its main file, and proof that
        // nobody else has it open: a running app would keep writing to the
        // file this replaces.
        let mut old = open_sqlite(&target, false).await?;
        let busy: (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut old)
            .await
            .map_err(db_error)?;
        let _ = old.close().await;
        if busy.0 != 0 {
            let _ = std::fs::remove_file(&incoming);
            return Err(BackupError::Refused {
                file: target.display().to_string(),
                reason: "the database is in use: stop alarm-http and alarm-worker, then restore"
                    .to_owned(),
            });
        }
        // The old database keeps its name until the copy replaces it in one rename: a
        // failure anywhere before that leaves it in place. A second name (a hard link, or a
        // copy where the file system has none) is what is kept.
        keep_as(&target, &kept)?;
    }
    drop_journal(&target)?;
    std::fs::rename(&incoming, &target).map_err(file_error(&target))?;
    Ok(kept)
}

/// Removes a SQLite file's `-wal` and `-shm` (only when nothing has it open: SQLite replays a
/// journal into whatever file bears the name next).
fn drop_journal(db: &Path) -> Result<(), BackupError> {
    for ext in ["wal", "shm"] {
        let side = PathBuf::from(format!("{}-{ext}", db.display()));
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error(&side)(e)),
        }
    }
    Ok(())
}

/// Gives `target` the second name `kept`: a hard link, or where the file system has none a
/// copy into a new file. Never over an existing file: with the same stamp it could be a link
/// to `target` itself, which a copy would empty.
fn keep_as(target: &Path, kept: &Path) -> Result<(), BackupError> {
    match std::fs::hard_link(target, kept) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(BackupError::Refused {
            file: kept.display().to_string(),
            reason: "exists already (a restore in the same second): move it away and restore again"
                .to_owned(),
        }),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
            ) || e.raw_os_error() == Some(95) =>
        {
            let mut from = std::fs::File::open(target).map_err(file_error(target))?;
            let mut to = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(kept)
                .map_err(file_error(kept))?;
            std::io::copy(&mut from, &mut to).map_err(file_error(kept))?;
            to.sync_all().map_err(file_error(kept))
        }
        Err(e) => Err(file_error(kept)(e)),
    }
}

/// Drops every object of the `public` schema (what a backup holds) except
/// those an extension owns.
const CLEAR_PUBLIC: &str = r#"DO $clear$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT format('DROP %s IF EXISTS public.%I CASCADE',
                  CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                 WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                                 ELSE 'TABLE' END,
                  c.relname) AS q
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
  LOOP EXECUTE r.q; END LOOP;
  FOR r IN
    SELECT format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure) AS q
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
  LOOP EXECUTE r.q; END LOOP;
  FOR r IN
    SELECT format('DROP TYPE IF EXISTS public.%I CASCADE', t.typname) AS q
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r', 'm')
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
  LOOP EXECUTE r.q; END LOOP;
END
$clear$;"#;

/// The statement that ends the restore's transaction: it fails, and so
/// rolls everything back, unless the schema holds exactly the manifest's
/// tables with its row counts.
fn count_check(manifest: &Manifest) -> String {
    use std::fmt::Write as _;
    let mut sql = String::from("DO $check$\nDECLARE n bigint;\nBEGIN\n");
    let _ = writeln!(
        sql,
        "  SELECT count(*) INTO n FROM pg_tables WHERE schemaname = 'public';\n  IF n <> {0} THEN RAISE EXCEPTION 'the restored schema holds % tables, the backup {0}', n; END IF;",
        manifest.tables.len()
    );
    for (name, sum) in &manifest.tables {
        let _ = writeln!(
            sql,
            "  SELECT count(*) INTO n FROM public.\"{name}\";\n  IF n <> {rows} THEN RAISE EXCEPTION 'table {name}: % rows restored, the backup holds {rows}', n; END IF;",
            rows = sum.rows
        );
    }
    sql.push_str("END\n$check$;");
    sql
}

async fn restore_postgres(
    config: &DbConfig,
    file: &Path,
    manifest: &Manifest,
) -> Result<(), BackupError> {
    // The whole script first, so that psql never commits a stream that
    // pg_restore gave up on half-way.
    // In a folder of its own, made here owner-only (creation fails if the
    // name exists), so nobody else can read the data or plant a link.
    let folder = std::env::temp_dir().join(format!(
        "alarm-restore-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&folder).map_err(file_error(&folder))?;
    let script = folder.join("restore.sql");
    let result = async {
        let mut render = Command::new("pg_restore");
        render
            .args(["--no-owner", "--no-privileges", "--file"])
            .arg(&script)
            .arg(file);
        let rendered = tokio::task::spawn_blocking(move || render.output())
            .await
            .map_err(|e| BackupError::Tool {
                tool: "pg_restore",
                reason: e.to_string(),
            })?
            .map_err(|e| BackupError::Tool {
                tool: "pg_restore",
                reason: e.to_string(),
            })?;
        if !rendered.status.success() {
            return Err(BackupError::Tool {
                tool: "pg_restore",
                reason: format!(
                    "{} ({})",
                    rendered.status,
                    String::from_utf8_lossy(&rendered.stderr).trim()
                ),
            });
        }
        private(&script)?;
        run_tool(
            "psql",
            vec![
                "--no-psqlrc".into(),
                "--quiet".into(),
                "--set=ON_ERROR_STOP=1".into(),
                "--single-transaction".into(),
                format!("--command={CLEAR_PUBLIC}"),
                format!("--file={}", script.display()),
                format!("--command={}", count_check(manifest)),
            ],
            config,
        )
        .await
    }
    .await;
    let _ = std::fs::remove_dir_all(&folder);
    result?;
    // Committed: from here on no error may say the database is as it was.
    let unchecked = |e: BackupError| BackupError::RestoredUnchecked {
        file: file.display().to_string(),
        reason: e.to_string(),
    };
    let sql = Sql::connect(config)
        .await
        .map_err(db_error)
        .map_err(unchecked)?;
    let found = async {
        let pool = sql.db.get_postgres_connection_pool();
        let mut conn = pool.acquire().await.map_err(db_error)?;
        postgres_tables(&mut conn).await
    }
    .await;
    sql.close().await;
    let found = found.map_err(unchecked)?;
    compare(file, &manifest.tables, &found.0).map_err(|e| match e {
        BackupError::Refused { file, reason } => {
            BackupError::RestoredWithDifferences { file, reason }
        }
        other => unchecked(other),
    })
}

/// What a prune removed and kept.
#[derive(Debug, Clone, Default)]
pub struct Pruned {
    /// Files removed (data files, sidecars and unfinished copies).
    pub removed: Vec<PathBuf>,
    /// Complete backups still in the folder.
    pub kept: usize,
}

/// Removes the backups in `dir` taken more than `keep` before `now`, and
/// unfinished copies older than an hour. The newest complete backup is
/// never removed, however old. Only this tool's files are touched.
///
/// # Errors
/// [`BackupError::File`] when the folder cannot be listed or a file
/// cannot be removed.
pub fn prune(dir: &Path, keep: SignedDuration, now: Timestamp) -> Result<Pruned, BackupError> {
    let mut files: Vec<(PathBuf, Timestamp, bool, bool)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(file_error(dir))? {
        let entry = entry.map_err(file_error(dir))?;
        let name = entry.file_name();
        let Some((at, data, partial)) = name.to_str().and_then(stamp_of) else {
            continue;
        };
        files.push((entry.path(), at, data, partial));
    }
    let complete = |path: &Path| sidecar(path, "json").exists();
    let newest = files
        .iter()
        .filter(|(path, _, data, _)| *data && complete(path))
        .map(|(_, at, _, _)| *at)
        .max();
    let cutoff = now - keep;
    let unfinished = now - SignedDuration::from_hours(1);
    let mut pruned = Pruned::default();
    for (path, at, data, partial) in &files {
        let remove = if *partial {
            *at < unfinished
        } else {
            *at < cutoff && Some(*at) != newest
        };
        if remove {
            std::fs::remove_file(path).map_err(file_error(path))?;
            pruned.removed.push(path.clone());
        } else if *data && complete(path) {
            pruned.kept += 1;
        }
    }
    pruned.removed.sort();
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_tools_names_carry_a_stamp() {
        let at = "2026-12-05T06:18:42Z".parse::<Timestamp>().expect("t");
        assert_eq!(
            stamp_of("alarm-20261205T061842Z.pgdump"),
            Some((at, true, false))
        );
        assert_eq!(
            stamp_of("alarm-20261205T061842Z.sqlite3.json"),
            Some((at, false, false))
        );
        assert_eq!(
            stamp_of("alarm-20261205T061842Z.sqlite3.partial"),
            Some((at, false, true))
        );
        for other in [
            "alarm-20261205T061842Z.txt",
            "alarm-yesterday.pgdump",
            "notes-20261205T061842Z.pgdump",
            "alarm-20261205T061842Z",
        ] {
            assert_eq!(stamp_of(other), None, "{other}");
        }
    }

    #[test]
    fn the_password_stays_off_the_command_line() {
        let config = DbConfig::from_url(
            "postgres://alarm:s%40cret@db.internal:5432/alarms?sslmode=require&statement-cache-capacity=10",
        )
        .expect("url");
        let (target, password) = libpq_target(&config).expect("target");
        assert_eq!(
            target,
            "postgres://alarm@db.internal:5432/alarms?sslmode=require"
        );
        assert_eq!(password.expect("password").expose_secret(), "s@cret");
    }

    #[test]
    fn a_manifest_reads_back_and_refuses_odd_table_names() {
        let manifest = Manifest {
            kind: DbKind::Postgres,
            taken_at: "2026-12-05T06:18:42Z".parse().expect("t"),
            file: "alarm-20261205T061842Z.pgdump".to_owned(),
            bytes: 10,
            sha256: "ab".repeat(32),
            migration: Some("m0001".to_owned()),
            tables: BTreeMap::from([(
                "alarms".to_owned(),
                TableSum {
                    rows: 3,
                    sha256: "cd".repeat(32),
                },
            )]),
        };
        let json = manifest.to_json();
        assert_eq!(Manifest::from_json(&json), Ok(manifest));
        let odd = json.replace("\"alarms\"", "\"alarms\\\"; DROP TABLE users; --\"");
        assert!(
            Manifest::from_json(&odd)
                .expect_err("refused")
                .contains("not a plain identifier")
        );
    }
}
