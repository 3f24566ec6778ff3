//! Smart Alarm's SQL adapter: PostgreSQL and the embedded SQLite default through sea-orm, and the schema migrations.
//!
//! [`Sql::ports`] hands out every store port and the trigger queue; each
//! commit is one transaction. sea-orm types never leave this crate:
//! callers hold a [`Sql`] handle and the domain's ports.

pub mod backup;
mod codec;
mod config;
mod connect;
mod db;
mod idempotency;
mod leftovers;
mod migration;
mod outbox;
mod queue;
mod reseal;
mod row;
mod stores;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::ports::{Clock, IdSource};
use alarm_domain::services::Ports;
use sea_orm::{DatabaseConnection, DbBackend};
use sea_orm_migration::{MigrationStatus, MigratorTrait};
use secrecy::{ExposeSecret, SecretString};

pub use config::{
    ConfigError, DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DbConfig, DbKind,
};
pub use connect::ConnectError;
pub use connect::private_dir;
pub use reseal::Resealed;
pub use stores::SqlStores;

/// Why a migration command failed.
#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(String);

/// Stored values the product no longer accepts because nothing acts on them
/// yet (see [`Sql::unsupported_stored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedStored {
    /// Alarms with a channel nothing delivers on (`push`).
    pub alarms: u64,
    /// Webhook registrations subscribed to an event nothing emits.
    pub webhooks: u64,
}

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name.
    pub name: String,
    /// Whether it is applied.
    pub applied: bool,
}

/// The names of every migration, oldest first (for test templates and diagnostics).
pub fn migration_names() -> Vec<String> {
    migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// An open database: the handle apps pass to this crate's ports.
#[derive(Clone)]
pub struct Sql {
    db: DatabaseConnection,
    /// On SQLite, a pool of one connection that every write transaction
    /// goes through, so read-then-write transactions never meet "database
    /// is locked"; on PostgreSQL the same pool as reads.
    writer: DatabaseConnection,
    /// The sender's statements on the outbox: on PostgreSQL a pool of its
    /// own whose sessions plan by index and commit without waiting for the
    /// WAL flush (`connect::connect_sender`); on SQLite the writer.
    sender: DatabaseConnection,
    kind: DbKind,
    /// Seals the webhook secrets at rest; without one, reading or writing
    /// a webhook fails (a composition error, never a silent plain write).
    sealer: Option<Arc<dyn alarm_domain::ports::SecretSealer>>,
    /// Tests only: stands in for the database's clock ([`Sql::with_store_clock`]).
    store_clock: Option<Arc<dyn Clock>>,
}

impl Sql {
    /// Sets `db_pool_connections{state="in_use"|"idle"}` and
    /// `db_pool_connections_max` (the pool's bound) from the read
    /// pool (on PostgreSQL every query's but the sender's statements on
    /// the outbox, which have a pool of their own; SQLite's writes have
    /// their own one-connection pool; neither is counted), for a scrape.
    pub fn pool_gauges(&self) {
        let (size, idle, max) = match self.kind {
            DbKind::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            DbKind::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
        };
        metrics::gauge!("db_pool_connections_max").set(f64::from(max));
        let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
        metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(idle));
        metrics::gauge!("db_pool_connections", "state" => "in_use").set(f64::from(size - idle));
    }

    /// Opens the pool: SQLite files are created on first use (WAL, foreign
    /// keys, busy timeout); transient failures are retried with backoff and
    /// jitter.
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn connect(config: &DbConfig) -> Result<Self, ConnectError> {
        let db = connect::connect(config).await?;
        let writer =
            match config.kind() {
                DbKind::Sqlite => {
                    let one = config.clone().with_max_connections(1).map_err(|e| {
                        ConnectError::Refused {
                            url: config.redacted_url(),
                            reason: e.to_string(),
                        }
                    })?;
                    connect::connect(&one).await?
                }
                DbKind::Postgres => db.clone(),
            };
        let sender = match config.kind() {
            DbKind::Sqlite => writer.clone(),
            DbKind::Postgres => connect::connect_sender(config).await?,
        };
        Ok(Self {
            db,
            writer,
            sender,
            kind: config.kind(),
            sealer: None,
            store_clock: None,
        })
    }

    /// New PostgreSQL connections log in with the password of `url` from
    /// now on (the database password rotated in the secret provider);
    /// open connections stay as they are, and the pool replaces them as
    /// they age out. Only the password is taken: a URL naming another
    /// host, port, user or database is refused (that needs a restart).
    /// SQLite has no password: a SQLite pool refuses.
    ///
    /// # Errors
    /// Why the URL was not taken (never the URL itself).
    pub fn set_password_from(&self, url: &SecretString) -> Result<(), String> {
        let DbKind::Postgres = self.kind else {
            return Err("a SQLite database has no password".to_owned());
        };
        let next = url::Url::parse(url.expose_secret())
            .map_err(|_| "DATABASE_URL is not a URL".to_owned())?;
        let pool = self.db.get_postgres_connection_pool();
        let current = pool.connect_options();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| "the DATABASE_URL password is not UTF-8".to_owned())
        };
        let same_place = next.host_str() == Some(current.get_host())
            && next.port().unwrap_or(5432) == current.get_port()
            && decode(next.username())? == current.get_username()
            && next.path().trim_start_matches('/') == current.get_database().unwrap_or_default();
        if !same_place {
            return Err(
                "the new DATABASE_URL names another host, port, user or database: only a new password is taken without a restart"
                    .to_owned(),
            );
        }
        let password = decode(next.password().unwrap_or_default())?;
        pool.set_connect_options((*current).clone().password(&password));
        let sender = self.sender.get_postgres_connection_pool();
        sender.set_connect_options((*sender.connect_options()).clone().password(&password));
        Ok(())
    }

    /// The options new PostgreSQL connections are opened with, as sqlx's
    /// `Debug` writes them (password included: tests only): the shared
    /// pool's, then the sender's.
    #[cfg(feature = "testing")]
    pub fn pg_connect_options_text(&self) -> Option<[String; 2]> {
        matches!(self.kind, DbKind::Postgres).then(|| {
            [&self.db, &self.sender].map(|pool| {
                format!(
                    "{:?}",
                    pool.get_postgres_connection_pool().connect_options()
                )
            })
        })
    }

    /// PostgreSQL, tests only: the settings a transaction of the sender's
    /// pool runs with (`enable_seqscan`, then `enable_bitmapscan` and
    /// `plan_cache_mode` joined by a comma, then `synchronous_commit`),
    /// then the same once it asked to commit durably, then the same on
    /// the shared pool.
    ///
    /// # Errors
    /// The store's error.
    #[cfg(feature = "testing")]
    pub async fn sender_settings(
        &self,
    ) -> Result<[[String; 3]; 3], alarm_domain::ports::StoreError> {
        const READ: &str = "SELECT current_setting('enable_seqscan') AS a, \
             current_setting('enable_bitmapscan') || ',' || current_setting('plan_cache_mode') AS b, \
             current_setting('synchronous_commit') AS c";
        let three = |row: Option<sea_orm::QueryResult>| -> Result<[String; 3], alarm_domain::ports::StoreError> {
            let row = row.ok_or_else(|| alarm_domain::ports::StoreError::Unexpected("no row".into()))?;
            Ok([
                db::col::<String>(&row, "a")?,
                db::col::<String>(&row, "b")?,
                db::col::<String>(&row, "c")?,
            ])
        };
        let db = self.handle();
        let (sender, durable) = db
            .send_write(async |tx| {
                let sender = three(tx.query_one(READ, Vec::new()).await?)?;
                tx.durable_commit().await?;
                let durable = three(tx.query_one(READ, Vec::new()).await?)?;
                Ok((sender, durable))
            })
            .await?;
        let shared = three(db.query_one(READ, Vec::new()).await?)?;
        Ok([sender, durable, shared])
    }

    /// Takes each `DATABASE_URL` `changes` gives ([`Sql::set_password_from`]),
    /// for as long as the pool lives. Call inside the runtime.
    pub fn follow_url(&self, mut changes: tokio::sync::watch::Receiver<SecretString>) {
        let sql = self.clone();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let url = changes.borrow_and_update().clone();
                match sql.set_password_from(&url) {
                    Ok(()) => tracing::info!(
                        "DATABASE_URL changed: new connections log in with its password"
                    ),
                    Err(e) => tracing::warn!(error = %e, "DATABASE_URL changed but was not taken"),
                }
            }
        });
    }

    /// These stores seal the webhook secrets with `sealer` (the data keys'
    /// AEAD of `alarm-secrets` in the apps, a fake in tests).
    #[must_use]
    pub fn with_sealer(mut self, sealer: Arc<dyn alarm_domain::ports::SecretSealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// For tests on a manual clock: `clock` stands in for the database's
    /// own in every visibility predicate (a prepared outcome is visible
    /// once its instant is at or before the database's clock) and in
    /// `store_time`, so a test can look 1 ms before and at an instant.
    /// Apps never call this: in production the instant is always the
    /// database's (`statement_timestamp()` on PostgreSQL).
    #[must_use]
    pub fn with_store_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.store_clock = Some(clock);
        self
    }

    /// The stores over this database, resolving zones with `tzdb`.
    fn stores(&self, tzdb: TimeZoneDatabase) -> Arc<SqlStores> {
        Arc::new(SqlStores {
            db: self.handle(),
            tzdb,
            outbox_cursor: Arc::default(),
            sealer: self.sealer.clone(),
        })
    }

    /// The query handle over the pools (shared, writer, sender).
    fn handle(&self) -> db::Db {
        let backend = match self.kind {
            DbKind::Postgres => DbBackend::Postgres,
            DbKind::Sqlite => DbBackend::Sqlite,
        };
        db::Db {
            read: self.db.clone(),
            write: self.writer.clone(),
            sender: self.sender.clone(),
            backend,
            pin: self.store_clock.clone(),
        }
    }

    /// Every store port and the trigger queue over this database, with the
    /// time-zone database alarms are resolved against and the given clock and
    /// id source.
    pub fn ports(
        &self,
        tzdb: TimeZoneDatabase,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
    ) -> Ports {
        let stores = self.stores(tzdb);
        Ports {
            users: stores.clone(),
            alarms: stores.clone(),
            exceptions: stores.clone(),
            holidays: stores.clone(),
            routines: stores.clone(),
            webhooks: stores.clone(),
            api_keys: stores.clone(),
            events: stores.clone(),
            audit: stores.clone(),
            refresh_tokens: stores.clone(),
            idempotency: stores.clone(),
            uploads: stores.clone(),
            sounds: stores.clone(),
            // The apps install their object store (`Ports::with_storage`).
            blobs: Arc::new(alarm_domain::ports::NoStorage),
            parts: Arc::new(alarm_domain::ports::NoStorage),
            outbox: stores.clone(),
            queue: stores,
            clock,
            ids,
            wake: Arc::new(alarm_domain::ports::NoWake),
            targets: Arc::new(alarm_domain::ports::AnyTarget),
            limits: alarm_domain::limits::Limits::default(),
        }
    }

    /// On PostgreSQL, listens for the database's notice that a claimable
    /// trigger was written (by any process) and calls `on_notice` for each;
    /// also after every reconnection, since notices sent while the
    /// connection was down are lost. Runs until the returned task is
    /// aborted. `None` on SQLite, where the API and the engine share a
    /// process and the in-process signal suffices.
    pub fn listen_for_triggers(
        &self,
        on_notice: impl Fn() + Send + Sync + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.kind != DbKind::Postgres {
            return None;
        }
        let pool = self.db.get_postgres_connection_pool().clone();
        Some(tokio::spawn(async move {
            use sea_orm::sqlx::postgres::PgListener;
            let pause = std::time::Duration::from_millis(500);
            loop {
                let mut listener = match PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(_) => {
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                };
                if listener
                    .listen(migration::m0003_engine::TRIGGER_CHANNEL)
                    .await
                    .is_err()
                {
                    tokio::time::sleep(pause).await;
                    continue;
                }
                on_notice();
                // `try_recv` yields `None` when the connection dropped; the
                // next call reconnects and re-subscribes.
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => on_notice(),
                        Ok(None) => on_notice(),
                        Err(_) => {
                            tokio::time::sleep(pause).await;
                            break;
                        }
                    }
                }
            }
        }))
    }

    /// The kind of database.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Applies every pending migration (idempotent: nothing pending, nothing done).
    ///
    /// # Errors
    /// [`MigrationError`] with the database's reason.
    pub async fn migrate_up(&self) -> Result<(), MigrationError> {
        migration::Migrator::up(&self.db, None)
            .await
            .map_err(|e| MigrationError(e.to_string()))
    }

    /// Rolls back the last `steps` applied migrations.
    ///
    /// # Errors
    /// [`MigrationError`].
    pub async fn migrate_down(&self, steps: u32) -> Result<(), MigrationError> {
        migration::Migrator::down(&self.db, Some(steps))
            .await
            .map_err(|e| MigrationError(e.to_string()))
    }

    /// Drops every table and applies all migrations again. Destroys data.
    ///
    /// # Errors
    /// [`MigrationError`].
    pub async fn migrate_fresh(&self) -> Result<(), MigrationError> {
        // Every migration's own `down`, newest first, rather than
        // sea-orm-migration's `fresh`: that one drops tables in catalogue
        // order, and SQLite's foreign-key checks then trip over a table
        // whose parent is already gone.
        migration::Migrator::down(&self.db, None)
            .await
            .map_err(|e| MigrationError(e.to_string()))?;
        self.migrate_up().await
    }

    /// How many stored alarms ask for a channel nothing delivers on yet, and
    /// how many webhook registrations subscribe to an event nothing emits
    /// yet: values accepted before the API refused them. They stay readable;
    /// the apps report them once at start so an operator knows.
    ///
    /// # Errors
    /// Why the database could not be read, with the URL redacted.
    pub async fn unsupported_stored(&self) -> Result<UnsupportedStored, String> {
        use sea_orm::ConnectionTrait;
        let (channels, events) = codec::unsupported_masks();
        let backend = match self.kind {
            DbKind::Postgres => DbBackend::Postgres,
            DbKind::Sqlite => DbBackend::Sqlite,
        };
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                backend,
                format!(
                    "SELECT (SELECT count(*) FROM alarms WHERE (channels & {channels}) <> 0) AS alarms, \
                     (SELECT count(*) FROM webhooks WHERE (events & {events}) <> 0) AS webhooks"
                ),
            ))
            .await
            .map_err(|e| format!("cannot count unsupported stored values: {e}"))?
            .ok_or("cannot count unsupported stored values: no row")?;
        let count = |name: &str| -> Result<u64, String> {
            let n: i64 = row.try_get("", name).map_err(|e| e.to_string())?;
            u64::try_from(n).map_err(|e| e.to_string())
        };
        Ok(UnsupportedStored {
            alarms: count("alarms")?,
            webhooks: count("webhooks")?,
        })
    }

    /// The stored alarms whose schedules break `limits` (set lower since
    /// they were stored): how many, and the ids of the first ten. Reads
    /// every alarm once, 500 at a time.
    ///
    /// # Errors
    /// A read failed.
    pub async fn alarms_over_bounds(
        &self,
        tzdb: TimeZoneDatabase,
        limits: &alarm_domain::limits::Limits,
    ) -> Result<(u64, Vec<alarm_domain::ids::AlarmId>), String> {
        let stores = self.stores(tzdb);
        let (mut over, mut first) = (0u64, Vec::new());
        let mut after = None;
        loop {
            let page = stores
                .scan_alarms(after, 500)
                .await
                .map_err(|e| e.to_string())?;
            for alarm in &page {
                if limits.check_schedules(&alarm.draft().schedules).is_err() {
                    over += 1;
                    if first.len() < 10 {
                        first.push(alarm.id());
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == 500 => after = Some(last.id().as_uuid()),
                _ => return Ok((over, first)),
            }
        }
    }

    /// Checks that the database answers (`SELECT 1` on the shared pool).
    ///
    /// # Errors
    /// Why the database is not ready, with the URL redacted.
    pub async fn ping(&self) -> Result<(), String> {
        use sea_orm::ConnectionTrait;
        self.db
            .execute_unprepared("SELECT 1")
            .await
            .map_err(|e| format!("the database does not answer: {e}"))?;
        Ok(())
    }

    /// The known migrations not applied to this database, oldest first: one
    /// query, for the start-up check of servers (sea-orm-migration's status
    /// first creates its table and reads it through the migrator, which
    /// costs a start-up budget measured in tens of milliseconds).
    ///
    /// # Errors
    /// [`MigrationError`] when the database cannot be read.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, MigrationError> {
        use sea_orm::ConnectionTrait;
        let backend = match self.kind {
            DbKind::Postgres => DbBackend::Postgres,
            DbKind::Sqlite => DbBackend::Sqlite,
        };
        let applied: std::collections::HashSet<String> = match self
            .db
            .query_all_raw(sea_orm::Statement::from_string(
                backend,
                "SELECT version FROM seaql_migrations",
            ))
            .await
        {
            Ok(rows) => rows
                .iter()
                .filter_map(|r| r.try_get::<String>("", "version").ok())
                .collect(),
            // No bookkeeping table yet: an empty database, everything pending.
            Err(e) if e.to_string().contains("seaql_migrations") => Default::default(),
            Err(e) => return Err(MigrationError(e.to_string())),
        };
        Ok(migration_names()
            .into_iter()
            .filter(|n| !applied.contains(n))
            .collect())
    }

    /// Closes the pools, waiting for connections to be returned.
    pub async fn close(self) {
        let _ = self.sender.close().await;
        let _ = self.writer.close().await;
        let _ = self.db.close().await;
    }

    /// Every known migration, oldest first, with its state.
    ///
    /// # Errors
    /// [`MigrationError`].
    pub async fn migration_status(&self) -> Result<Vec<MigrationState>, MigrationError> {
        let list = migration::Migrator::get_migration_with_status(&self.db)
            .await
            .map_err(|e| MigrationError(e.to_string()))?;
        Ok(list
            .iter()
            .map(|m| MigrationState {
                name: m.name().to_owned(),
                applied: matches!(m.status(), MigrationStatus::Applied),
            })
            .collect())
    }
}
