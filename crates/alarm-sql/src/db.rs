//! Statement helpers shared by the stores: one SQL text for both engines, error translation, and time/ID codecs.

use alarm_domain::jiff::Timestamp;
use alarm_domain::ports::StoreError;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, QueryResult,
    RuntimeErr, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};

/// SQL is written with `?` placeholders (SQLite's); PostgreSQL gets `$1…`.
/// Our statements never contain a `?` inside a string literal.
pub(crate) fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Translates a driver error into the ports' vocabulary: unique violations
/// are conflicts, serialization failures and lost connections retryable,
/// everything else unexpected. Driver types never cross the port.
pub(crate) fn store_err(e: DbErr) -> StoreError {
    use sea_orm::sqlx::Error as Sqlx;
    if crate::connect::is_transient(&e) {
        return StoreError::Retryable(Box::new(e));
    }
    let sqlx = match &e {
        DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s))
        | DbErr::Conn(RuntimeErr::SqlxError(s)) => Some(s.clone()),
        _ => None,
    };
    if let Some(s) = sqlx
        && let Sqlx::Database(db) = s.as_ref()
    {
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        // PostgreSQL SQLSTATEs; SQLite extended result codes.
        // The driver's text names tables and constraints: callers get a
        // neutral sentence (the full error stays inside `Unexpected` cases).
        match code.as_str() {
            "23505" | "2067" | "1555" => {
                return StoreError::Conflict("a unique value is already taken".to_owned());
            }
            // A referenced row is gone (deleted concurrently): not found.
            "23503" | "787" => return StoreError::NotFound,
            "40001" | "40P01" | "5" | "261" | "517" | "773" | "6" | "262" => {
                return StoreError::Retryable(Box::new(e));
            }
            _ => {}
        }
    }
    StoreError::Unexpected(Box::new(e))
}

/// Unix microseconds, the storage form of every instant.
pub(crate) fn us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// The instant of stored microseconds.
pub(crate) fn ts(us: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(us).map_err(|e| StoreError::Unexpected(Box::new(e)))
}

/// A stored integer narrowed to the domain's type: a value out of range is
/// corrupt data, reported as such, never silently read as 0.
pub(crate) fn narrow<S, T>(stored: S, what: &str) -> Result<T, StoreError>
where
    S: Copy + std::fmt::Display,
    T: TryFrom<S>,
{
    T::try_from(stored).map_err(|_| corrupt(what, format!("{stored} is out of range")))
}

/// An integer column narrowed to the domain's type (see [`narrow`]).
pub(crate) fn num<S, T>(row: &QueryResult, name: &str) -> Result<T, StoreError>
where
    S: sea_orm::TryGetable + Copy + std::fmt::Display,
    T: TryFrom<S>,
{
    narrow(col::<S>(row, name)?, name)
}

/// A column of a row, with a driver error turned into `Unexpected`.
pub(crate) fn col<T: sea_orm::TryGetable>(row: &QueryResult, name: &str) -> Result<T, StoreError> {
    row.try_get::<T>("", name)
        .map_err(|e| StoreError::Unexpected(format!("column {name}: {e}").into()))
}

/// A stored value that no longer parses as a domain value: the database
/// holds something the domain would never have written.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(format!("stored {what} is invalid: {e}").into())
}

/// Reads run on the shared pool; writes on the writer (one connection on
/// SQLite, so read-then-write transactions never meet "database is
/// locked"; the same pool on PostgreSQL).
#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) read: DatabaseConnection,
    pub(crate) write: DatabaseConnection,
    pub(crate) backend: DbBackend,
}

impl Db {
    pub(crate) async fn query_all(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<QueryResult>, StoreError> {
        self.read
            .query_all_raw(stmt(self.backend, sql, values))
            .await
            .map_err(store_err)
    }

    /// Runs `sql`, whose `IN` list is written `IN ({ids})`, once per 400
    /// ids (a prepared statement's parameters are bounded), and returns
    /// every row.
    pub(crate) async fn query_in(
        &self,
        sql: &str,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<QueryResult>, StoreError> {
        let mut rows = Vec::new();
        for chunk in ids.chunks(400) {
            let marks = vec!["?"; chunk.len()].join(", ");
            rows.extend(
                self.query_all(
                    &sql.replace("{ids}", &marks),
                    chunk.iter().map(|id| Value::from(*id)).collect(),
                )
                .await?,
            );
        }
        Ok(rows)
    }

    pub(crate) async fn query_one(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<QueryResult>, StoreError> {
        self.read
            .query_one_raw(stmt(self.backend, sql, values))
            .await
            .map_err(store_err)
    }

    /// Starts a write transaction. A transient failure to get a connection
    /// (the server restarting, a dropped socket) is retried with backoff and
    /// jitter: nothing was written yet, so retrying is always safe here.
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock up front, so a
    /// read-then-write transaction never fails half-way with
    /// SQLITE_BUSY_SNAPSHOT when another process (the worker, the migrator)
    /// writes the same file; the busy timeout applies instead.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        use backon::{ExponentialBuilder, Retryable};
        let backoff = ExponentialBuilder::default()
            .with_min_delay(std::time::Duration::from_millis(50))
            .with_max_delay(std::time::Duration::from_secs(2))
            .with_max_times(4)
            .with_jitter();
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let tx = (|| self.write.begin_with_options(options))
            .retry(backoff)
            .when(crate::connect::is_transient)
            .await
            .map_err(store_err)?;
        Ok(Tx {
            tx,
            backend: self.backend,
        })
    }
}

/// A write transaction; dropped without `commit`, it rolls back.
pub(crate) struct Tx {
    tx: DatabaseTransaction,
    pub(crate) backend: DbBackend,
}

impl Tx {
    /// Locks the alarm's row until commit (PostgreSQL; SQLite's single
    /// writer already serialises every write). Every transaction that
    /// writes an alarm's triggers or ringing records takes this lock first,
    /// so work on one alarm happens one transaction at a time and checks
    /// (versions, snooze counts) stay true until commit. Returns the
    /// committed version, `None` when the alarm is gone.
    pub(crate) async fn lock_alarm(&self, alarm: uuid::Uuid) -> Result<Option<i64>, StoreError> {
        let sql = match self.backend {
            DbBackend::Postgres => "SELECT version FROM alarms WHERE id = ? FOR UPDATE",
            _ => "SELECT version FROM alarms WHERE id = ?",
        };
        let row = self.query_one(sql, vec![alarm.into()]).await?;
        row.map(|r| col::<i64>(&r, "version")).transpose()
    }

    pub(crate) async fn exec(&self, sql: &str, values: Vec<Value>) -> Result<u64, StoreError> {
        self.tx
            .execute_raw(stmt(self.backend, sql, values))
            .await
            .map(|r| r.rows_affected())
            .map_err(store_err)
    }

    pub(crate) async fn query_all(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<QueryResult>, StoreError> {
        self.tx
            .query_all_raw(stmt(self.backend, sql, values))
            .await
            .map_err(store_err)
    }

    pub(crate) async fn query_one(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<QueryResult>, StoreError> {
        self.tx
            .query_one_raw(stmt(self.backend, sql, values))
            .await
            .map_err(store_err)
    }

    /// Commits. A connection lost *during* COMMIT leaves the outcome
    /// unknown (the server may have committed), so it is not reported as
    /// retryable: a blind retry could apply the unit of work twice.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(|e| match store_err(e) {
            StoreError::Retryable(source) => {
                StoreError::Unexpected(format!("commit outcome unknown: {source}").into())
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        let s = stmt(
            DbBackend::Postgres,
            "SELECT ? + ?",
            vec![1i64.into(), 2i64.into()],
        );
        assert_eq!(s.sql, "SELECT $1 + $2");
        let s = stmt(
            DbBackend::Sqlite,
            "SELECT ? + ?",
            vec![1i64.into(), 2i64.into()],
        );
        assert_eq!(s.sql, "SELECT ? + ?");
    }
}
