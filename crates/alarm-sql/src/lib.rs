//! Smart Alarm's SQL adapter: PostgreSQL and the embedded SQLite default through sea-orm, and the schema migrations.
//!
//! Status: connection handling, the schema and migrations exist; the store
//! and queue ports are implemented in the following steps of the SQL
//! milestone (see docs/ARCHITECTURE.md). sea-orm types never leave this
//! crate: callers hold a [`Sql`] handle.

mod config;
mod connect;
mod migration;

use sea_orm::DatabaseConnection;
use sea_orm_migration::{MigrationStatus, MigratorTrait};

pub use config::{ConfigError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DbConfig, Engine};
pub use connect::ConnectError;

/// Why a migration command failed.
#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(String);

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
    engine: Engine,
}

impl Sql {
    /// Opens the pool: SQLite files are created on first use (WAL, foreign keys, busy timeout); transient failures are retried with backoff and jitter.
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn connect(config: &DbConfig) -> Result<Self, ConnectError> {
        Ok(Self {
            db: connect::connect(config).await?,
            engine: config.engine(),
        })
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.engine
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
        migration::Migrator::fresh(&self.db)
            .await
            .map_err(|e| MigrationError(e.to_string()))
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(self) {
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
