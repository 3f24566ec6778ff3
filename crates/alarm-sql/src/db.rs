//! Statement helpers shared by the stores: one SQL text for both engines, error translation, and time/ID codecs.

use std::future::Future;

use alarm_domain::jiff::Timestamp;
use alarm_domain::ports::StoreError;
use backon::Retryable;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, QueryResult,
    RuntimeErr, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};
use tracing::Instrument;

/// The statements that look `ids` up through `sql`'s `IN ({ids})`, with
/// their values.
///
/// PostgreSQL: `= ANY(?)` over one `uuid[]` parameter per [`ARRAY_IDS`]
/// ids, so the text is the same whatever the count and is parsed and
/// planned once per connection. An `IN` list has one text per length:
/// batches of varying size made nearly every lookup a new text, each a
/// parse, a plan, a round trip to describe it and a place in the
/// connection's statement cache (pushing out statements that are used
/// again). The parameter is bound as a typed array, never as text cast
/// in the SQL: `ANY(CAST(? AS uuid[]))` parses the whole list again for
/// every row a sequential scan looks at (7.3 ms for 100 registrations
/// against 0.1 ms typed, measured). SQLite prepares locally: `IN` lists
/// of at most 400 ids (a statement's parameters are bounded).
pub(crate) fn in_ids(
    backend: DbBackend,
    sql: &str,
    ids: &[uuid::Uuid],
) -> Vec<(String, Vec<Value>)> {
    const IN: &str = "IN ({ids})";
    // A programming error, caught by any test of the caller: `NOT IN`
    // would become `NOT = ANY(?)`, which PostgreSQL cannot parse.
    assert!(
        sql.contains(IN) && !sql.contains("NOT IN ({ids})"),
        "{sql} must hold one `IN ({{ids}})`, not `NOT IN`"
    );
    if backend == DbBackend::Postgres {
        let sql = sql.replace(IN, "= ANY(?)");
        return ids
            .chunks(ARRAY_IDS)
            .map(|chunk| (sql.clone(), vec![Value::from(chunk.to_vec())]))
            .collect();
    }
    ids.chunks(400)
        .map(|chunk| {
            let marks = vec!["?"; chunk.len()].join(", ");
            (
                sql.replace("{ids}", &marks),
                chunk.iter().map(|id| Value::from(*id)).collect(),
            )
        })
        .collect()
}

/// Ids per array of [`in_ids`] on PostgreSQL: a bound on one parameter's
/// size (callers look up a batch: a few hundred ids).
const ARRAY_IDS: usize = 5000;

/// The statements that join `sql`'s `{keys}` (written where a table goes)
/// to `keys` as the relation `k (message_id, target_id, lease_token)`,
/// with their values: outbox rows found by their primary key and fenced
/// by their lease token, so the outbox needs no index on the token.
///
/// PostgreSQL: `unnest` of three typed `uuid[]` parameters per
/// [`ARRAY_IDS`] keys (one text whatever the count, as [`in_ids`]).
/// SQLite: a `VALUES` list of at most 300 keys (900 parameters).
pub(crate) fn with_keys(
    backend: DbBackend,
    sql: &str,
    keys: &[(uuid::Uuid, uuid::Uuid, uuid::Uuid)],
) -> Vec<(String, Vec<Value>)> {
    const KEYS: &str = "{keys}";
    assert!(sql.contains(KEYS), "{sql} must hold `{{keys}}`");
    const NAMES: &str = "k (message_id, target_id, lease_token)";
    if backend == DbBackend::Postgres {
        let sql = sql.replace(KEYS, &format!("unnest(?, ?, ?) AS {NAMES}"));
        return keys
            .chunks(ARRAY_IDS)
            .map(|chunk| {
                let column = |pick: fn(&(uuid::Uuid, uuid::Uuid, uuid::Uuid)) -> uuid::Uuid| {
                    Value::from(chunk.iter().map(pick).collect::<Vec<_>>())
                };
                (
                    sql.clone(),
                    vec![column(|k| k.0), column(|k| k.1), column(|k| k.2)],
                )
            })
            .collect();
    }
    keys.chunks(300)
        .map(|chunk| {
            let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
            let relation = format!(
                "(SELECT column1 AS message_id, column2 AS target_id, column3 AS lease_token \
                 FROM (VALUES {rows})) AS k"
            );
            (
                sql.replace(KEYS, &relation),
                chunk
                    .iter()
                    .flat_map(|(m, t, l)| [Value::from(*m), Value::from(*t), Value::from(*l)])
                    .collect(),
            )
        })
        .collect()
}

/// SQL is written once with `?` placeholders (SQLite's); PostgreSQL gets
/// `$1…`. Only a `?` that is a token of its own is a placeholder: the text is
/// scanned the way PostgreSQL's lexer reads it, so a `?` inside a string
/// literal, a quoted identifier, a comment or a dollar-quoted body is left
/// alone. The scan also enforces that the text holds exactly one placeholder
/// per bound value, on both engines: a `?` the scan misjudged, or a value
/// bound to nothing, fails here instead of binding values to the wrong
/// places.
///
/// # Errors
/// [`StoreError::Unexpected`] for a text that cannot be numbered safely (an
/// unterminated literal or comment, a `$n` or `?n` of its own, a
/// placeholder count that differs from the number of values): a
/// programming error, never something a caller can fix.
pub(crate) fn stmt(
    backend: DbBackend,
    sql: &str,
    values: Vec<Value>,
) -> Result<Statement, StoreError> {
    let unsafe_text =
        |why: String| StoreError::Unexpected(format!("SQL text {sql:?}: {why}").into());
    let marks = placeholders(sql).map_err(unsafe_text)?;
    if marks.len() != values.len() {
        return Err(unsafe_text(format!(
            "{} placeholders but {} values",
            marks.len(),
            values.len()
        )));
    }
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 2 * marks.len());
        let mut from = 0;
        for (n, at) in marks.iter().enumerate() {
            out.push_str(&sql[from..*at]);
            out.push('$');
            out.push_str(&(n + 1).to_string());
            from = at + 1;
        }
        out.push_str(&sql[from..]);
        out
    } else {
        sql.to_owned()
    };
    Ok(Statement::from_sql_and_values(backend, sql, values))
}

/// The byte offsets of the placeholders of `sql`, read with PostgreSQL's
/// lexical rules (the stricter of the two engines, and the one whose text is
/// rewritten): `'…'` with `''` (and, after an `E` prefix, backslash)
/// escapes; `"…"` with `""`; `--` to the end of the line; `/* … */`, which
/// nests; `$tag$ … $tag$`. Scanning bytes is sound for UTF-8 text: every
/// byte of a multi-byte character is ≥ 0x80, so none is mistaken for a
/// delimiter.
///
/// # Errors
/// Why the text is ambiguous: an unterminated literal, identifier or
/// comment, a `$n` (mixing numbering styles would bind values twice) or a
/// `?n` (SQLite's numbered form, which `$` numbering would garble).
fn placeholders(sql: &str) -> Result<Vec<usize>, String> {
    let b = sql.as_bytes();
    // A letter, digit, `_`, `$` or non-ASCII byte continues an identifier or
    // keyword, so `e'…'` in `name'…'` and `$` in `a$b` are not prefixes.
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let after_word = |i: usize| i > 0 && word(b[i - 1]);
    let mut marks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                let escapes =
                    after_word(i) && matches!(b[i - 1], b'E' | b'e') && !(i >= 2 && word(b[i - 2]));
                i = skip_quoted(b, i, b'\'', escapes)
                    .ok_or_else(|| format!("unterminated string literal at byte {i}"))?;
            }
            b'"' => {
                i = skip_quoted(b, i, b'"', false)
                    .ok_or_else(|| format!("unterminated quoted identifier at byte {i}"))?;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |n| i + n + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (mut depth, mut j) = (1, i + 2);
                while depth > 0 {
                    match (b.get(j), b.get(j + 1)) {
                        (None, _) => return Err(format!("unterminated comment at byte {i}")),
                        (Some(b'/'), Some(b'*')) => (depth, j) = (depth + 1, j + 2),
                        (Some(b'*'), Some(b'/')) => (depth, j) = (depth - 1, j + 2),
                        _ => j += 1,
                    }
                }
                i = j;
            }
            b'$' if !after_word(i) => {
                if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    return Err(format!("`$n` at byte {i}: write `?`"));
                }
                let tag_len = b[i + 1..]
                    .iter()
                    .enumerate()
                    .take_while(|&(n, &c)| word(c) && c != b'$' && !(n == 0 && c.is_ascii_digit()))
                    .count();
                if b.get(i + 1 + tag_len) == Some(&b'$') {
                    let delimiter = &b[i..i + tag_len + 2];
                    let body = i + delimiter.len();
                    let close = b[body..]
                        .windows(delimiter.len())
                        .position(|w| w == delimiter)
                        .ok_or_else(|| format!("unterminated dollar-quoted text at byte {i}"))?;
                    i = body + close + delimiter.len();
                } else {
                    i += 1;
                }
            }
            b'?' => {
                if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    return Err(format!("`?n` at byte {i}: write `?`"));
                }
                marks.push(i);
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(marks)
}

/// The offset just past the literal or identifier opened by the quote at
/// `open`: a doubled quote stands for itself, and with `backslash` (an
/// `E'…'` string) a backslash escapes the byte after it. `None` when the
/// text ends first.
fn skip_quoted(b: &[u8], open: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut j = open + 1;
    loop {
        match *b.get(j)? {
            b'\\' if backslash => j += 2,
            c if c == quote && b.get(j + 1) == Some(&quote) => j += 2,
            c if c == quote => return Some(j + 1),
            _ => j += 1,
        }
    }
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

/// Whether a store call gets a span of its own: only inside a recorded
/// (sampled) trace. Store calls outside any span (the idle polls of the
/// engine and the dispatcher, every 200 ms) would be roots of one-span
/// traces flooding a trace backend; those inside an unrecorded trace would
/// never be exported, yet each span costs its builder and a sampling
/// decision on the hot path.
fn traced() -> bool {
    alarm_telemetry::in_sampled_trace()
}

/// Reads run on the shared pool; writes on the writer (one connection on
/// SQLite, so read-then-write transactions never meet "database is
/// locked"; the same pool on PostgreSQL); the sender's statements on the
/// outbox on the sender's pool (its own on PostgreSQL, the writer on
/// SQLite).
#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) read: DatabaseConnection,
    pub(crate) write: DatabaseConnection,
    /// The sender's pool ([`Db::send_write`], [`Db::send_statement`]): on
    /// PostgreSQL a third pool, on SQLite the writer.
    pub(crate) sender: DatabaseConnection,
    pub(crate) backend: DbBackend,
    /// Tests only ([`crate::Sql::with_store_clock`]): the instant that
    /// stands in for the database's clock in [`Db::now_sql`].
    pub(crate) pin: Option<std::sync::Arc<dyn alarm_domain::ports::Clock>>,
}

/// The database's clock, in microseconds since the epoch, as an SQL
/// expression (or the pinned instant as a literal, in tests). Prepared
/// outcomes are visible once their instant is at or before it: the
/// instant every reader compares with comes from the one database, never
/// from the clock of the host that asks.
///
/// PostgreSQL: `statement_timestamp()` (one value for a whole statement).
/// SQLite: `julianday('now')`, which SQLite also holds for one statement.
pub(crate) fn now_sql(
    backend: DbBackend,
    pin: Option<&std::sync::Arc<dyn alarm_domain::ports::Clock>>,
) -> String {
    if let Some(clock) = pin {
        return us(clock.now()).to_string();
    }
    match backend {
        DbBackend::Postgres => {
            "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)".to_owned()
        }
        _ => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)".to_owned(),
    }
}

/// The retries of a step that is safe to repeat after a transient failure
/// (a BEGIN, a claim): up to four, from 50 ms to 2 s, with jitter.
fn transient_backoff() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(50))
        .with_max_delay(std::time::Duration::from_secs(2))
        .with_max_times(4)
        .with_jitter()
}

/// Whether a failure of a step that is safe to repeat is worth
/// [`transient_backoff`]'s retries: a transient one, but not a pool
/// timeout, which already waited its whole budget (the database is away or
/// every connection is busy): retrying would only make the caller wait
/// longer before its 503.
fn worth_retrying(e: &DbErr) -> bool {
    crate::connect::is_transient(e) && !matches!(e, DbErr::ConnectionAcquire(_))
}

impl Db {
    /// The database's clock as an SQL expression ([`now_sql`]).
    pub(crate) fn now_sql(&self) -> String {
        now_sql(self.backend, self.pin.as_ref())
    }

    /// The OpenTelemetry `db.system` name.
    fn system(&self) -> &'static str {
        match self.backend {
            DbBackend::Postgres => "postgresql",
            _ => "sqlite",
        }
    }

    /// Runs a read in a `db.query` span and records its duration
    /// (`db_query_duration_seconds{kind="read"}`, connection wait
    /// included: reads take their connection inside the driver).
    async fn timed_read<T>(&self, sql: &str, query: impl Future<Output = T>) -> T {
        self.timed(false, sql, query).await
    }

    /// Runs `query`, one statement, in a span of its own (`db.query` for
    /// a read, `db.transaction` for a statement that is a transaction by
    /// itself) and records its duration under the same kind (`read`,
    /// `transaction`).
    async fn timed<T>(&self, alone: bool, sql: &str, query: impl Future<Output = T>) -> T {
        let operation = sql.split_whitespace().next().unwrap_or("");
        let span = match (traced(), alone) {
            (false, _) => tracing::Span::none(),
            (true, false) => tracing::info_span!(
                "db.query",
                otel.kind = "client",
                db.system = self.system(),
                db.operation = operation,
            ),
            (true, true) => tracing::info_span!(
                "db.transaction",
                otel.kind = "client",
                db.system = self.system(),
                db.operation = operation,
            ),
        };
        let kind = if alone { "transaction" } else { "read" };
        let started = std::time::Instant::now();
        let out = query.instrument(span).await;
        metrics::histogram!("db_query_duration_seconds", "kind" => kind)
            .record(started.elapsed().as_secs_f64());
        out
    }

    pub(crate) async fn query_all(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<QueryResult>, StoreError> {
        let statement = stmt(self.backend, sql, values)?;
        self.timed_read(sql, self.read.query_all_raw(statement))
            .await
            .map_err(store_err)
    }

    /// Runs `sql`, whose `IN` list is written `IN ({ids})`, over `ids`
    /// ([`in_ids`]) and returns every row.
    pub(crate) async fn query_in(
        &self,
        sql: &str,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<QueryResult>, StoreError> {
        let mut rows = Vec::new();
        for (sql, values) in in_ids(self.backend, sql, ids) {
            rows.extend(self.query_all(&sql, values).await?);
        }
        Ok(rows)
    }

    pub(crate) async fn query_one(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<QueryResult>, StoreError> {
        let statement = stmt(self.backend, sql, values)?;
        self.timed_read(sql, self.read.query_one_raw(statement))
            .await
            .map_err(store_err)
    }

    /// The `n` column of `sql`'s one row (a `COUNT(*) AS n`), 0 without
    /// one.
    pub(crate) async fn count(&self, sql: &str, values: Vec<Value>) -> Result<u64, StoreError> {
        let n = match self.query_one(sql, values).await? {
            Some(row) => col::<i64>(&row, "n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Runs `work` in one write transaction and ends it by its outcome:
    /// `Ok` commits, `Err` rolls back before the error is returned.
    ///
    /// Every write goes through here rather than a bare [`Db::begin`]
    /// because dropping a transaction only *queues* its ROLLBACK: sqlx
    /// sends it once the pool takes the connection back, on a task of its
    /// own. Until then the row locks of a refused change (a retry judged
    /// too early, a quota, a lost race) outlived the refusal, and a claim
    /// made right after it skipped the still-locked row (seen once in CI);
    /// on SQLite the write lock lingered the same way. A `write` whose
    /// future is dropped mid-way (a client gone, a cancelled request) still
    /// falls back to that deferred rollback: no code runs at a drop.
    pub(crate) async fn write<T>(
        &self,
        work: impl AsyncFnOnce(&Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_on(&self.write, work).await
    }

    /// [`Db::write`] for the sender's transactions on the outbox, on its
    /// own pool ([`crate::connect::connect_sender`]): on PostgreSQL every
    /// statement plans by index only, for each execution's values, and the
    /// commit does not wait for the WAL flush, set once per connection.
    ///
    /// * Planned by index only: the outbox is a queue table whose
    ///   statistics are wrong by nature. It fills from empty in seconds,
    ///   while autovacuum analyses it at most once a minute; a plan made
    ///   while it was empty (a cached generic plan, kept until the next
    ///   analysis) scanned all 120k rows for every claim, 70 ms to 150 ms
    ///   each (measured in the worker bench's steady phase), where the
    ///   partial indexes stop after the rows taken. A bitmap scan of every
    ///   pending row plus a sort is the same trap on stale statistics
    ///   (41 ms against 9 ms at 68k pending, measured).
    /// * Planned for each execution's values (`force_custom_plan`), not
    ///   by the generic plan PostgreSQL may switch to after five executions
    ///   of a prepared statement, when it is estimated to cost no more than
    ///   the custom ones (sqlx prepares each once per connection). A
    ///   generic plan made while the outbox is empty (a fresh install's
    ///   first sends) reads it whole through `outbox_target` for every
    ///   `finish` (a hash join) and every `confirm` (a nested loop): on an
    ///   empty table that full scan costs the same as the lookups by key,
    ///   and a tie goes to the path that needs nothing from the other
    ///   side. It stays until the outbox is vacuumed or analysed, or the
    ///   connection is replaced (sqlx's default lifetime, 30 minutes), so
    ///   on a server whose autovacuum is off or late every record would
    ///   read the whole outbox meanwhile. Planning costs about 0.16 ms a
    ///   claim and 0.29 ms a `finish` (`-- --bursts` at d9040ef).
    /// * The commit does not wait for its WAL to reach the disk
    ///   (`synchronous_commit = off`): a database crash can lose the last
    ///   moments of leases and records (at most three `wal_writer_delay`s,
    ///   600 ms by default), and their rows are then sent again with the
    ///   same `webhook-id`, as after a worker's crash (delivery is at least
    ///   once either way). What this saves is the sender's wait for a disk
    ///   flush twice a batch (about 2,000 transactions in a 100k burst; a
    ///   flush costs at least 0.16 ms here). The rows themselves, fires and
    ///   every API write commit durably, and so does a `finish` that
    ///   disables a registration or queues an e-mail ([`Tx::durable_commit`]);
    ///   WAL order means a durable commit also makes every earlier one
    ///   durable. It also does not wait for a synchronous standby: after a
    ///   failover to one, more can be sent again.
    ///
    /// Set on the connection rather than in each transaction: a statement
    /// setting them cost a round trip of its own, one of the five of a
    /// `finish` and of the four of a claim.
    pub(crate) async fn send_write<T>(
        &self,
        work: impl AsyncFnOnce(&Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_on(&self.sender, work).await
    }

    /// One statement of the sender's on the outbox, a transaction by
    /// itself: on PostgreSQL run on the sender's pool without BEGIN and
    /// COMMIT (one round trip instead of four with the settings'); on
    /// SQLite in a [`Db::write`] (`BEGIN IMMEDIATE`: the write lock up
    /// front).
    ///
    /// Only for statements that may run twice: a claim (an answer lost
    /// after its commit leaves rows leased by nobody until their lease
    /// ends, when they are claimed again) and reads. A transient failure
    /// (a dropped connection, the server restarting) is therefore retried
    /// as [`Db::write`] retries its BEGIN ([`worth_retrying`]).
    pub(crate) async fn send_statement(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<QueryResult>, StoreError> {
        if self.backend != DbBackend::Postgres {
            return self.write(async |tx| tx.query_all(sql, values).await).await;
        }
        let statement = stmt(self.backend, sql, values)?;
        let run = (|| self.sender.query_all_raw(statement.clone()))
            .retry(transient_backoff())
            .when(worth_retrying);
        self.timed(true, sql, run).await.map_err(store_err)
    }

    /// [`Db::write`] on `pool`.
    async fn write_on<T>(
        &self,
        pool: &DatabaseConnection,
        work: impl AsyncFnOnce(&Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let span = if traced() {
            tracing::info_span!(
                "db.transaction",
                otel.kind = "client",
                db.system = self.system(),
                outcome = tracing::field::Empty,
            )
        } else {
            tracing::Span::none()
        };
        // Recorded on this span only: with none made (an unrecorded
        // trace), the caller's span must not take an `outcome` of ours.
        let own = span.clone();
        async {
            // The wait for a pooled connection plus BEGIN's round trip
            // (and its retries after a transient failure): sqlx exposes no
            // count of waiters, so the time is the signal. A wait that
            // ended in a pool timeout is recorded too: it is the sign of a
            // saturated pool.
            let started = std::time::Instant::now();
            let begun = self.begin(pool).await;
            metrics::histogram!("db_acquire_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            let tx = match begun {
                Ok(tx) => tx,
                Err(e) => {
                    own.record("outcome", "no connection");
                    return Err(e);
                }
            };
            let outcome = match work(&tx).await {
                Ok(value) => tx.commit().await.map(|()| value),
                Err(e) => {
                    // A failed ROLLBACK means a broken connection, which
                    // the pool discards: the server ends that transaction
                    // itself.
                    let _ = tx.tx.rollback().await;
                    Err(e)
                }
            };
            metrics::histogram!("db_query_duration_seconds", "kind" => "transaction")
                .record(started.elapsed().as_secs_f64());
            own.record(
                "outcome",
                if outcome.is_ok() {
                    "commit"
                } else {
                    "rollback"
                },
            );
            outcome
        }
        .instrument(span)
        .await
    }

    /// Starts a write transaction. A transient failure to get a connection
    /// (the server restarting, a dropped socket) is retried with backoff and
    /// jitter: nothing was written yet, so retrying is always safe here.
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock up front, so a
    /// read-then-write transaction never fails half-way with
    /// SQLITE_BUSY_SNAPSHOT when another process (the worker, the migrator)
    /// writes the same file; the busy timeout applies instead.
    async fn begin(&self, pool: &DatabaseConnection) -> Result<Tx, StoreError> {
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let tx = (|| pool.begin_with_options(options))
            .retry(transient_backoff())
            .when(worth_retrying)
            .await
            .map_err(store_err)?;
        Ok(Tx {
            tx,
            backend: self.backend,
            pin: self.pin.clone(),
        })
    }
}

/// A write transaction, lent to the work of [`Db::write`], which ends it.
pub(crate) struct Tx {
    tx: DatabaseTransaction,
    pub(crate) backend: DbBackend,
    pin: Option<std::sync::Arc<dyn alarm_domain::ports::Clock>>,
}

impl Tx {
    /// The database's clock as an SQL expression ([`now_sql`]).
    pub(crate) fn now_sql(&self) -> String {
        now_sql(self.backend, self.pin.as_ref())
    }

    /// PostgreSQL: this transaction commits as the server is configured to
    /// after all (the setting's `reset_val`: `on`, or a standby level the
    /// operator chose), undoing the sender's session setting
    /// ([`Db::send_write`]) for a transaction whose writes must not be lost
    /// once others may act on them. (The session's setting is made with
    /// `SET` after connecting, so `reset_val` is still the server's.)
    pub(crate) async fn durable_commit(&self) -> Result<(), StoreError> {
        if self.backend == DbBackend::Postgres {
            self.query_all(
                "SELECT set_config(name, reset_val, true) FROM pg_settings \
                 WHERE name = 'synchronous_commit'",
                Vec::new(),
            )
            .await?;
        }
        Ok(())
    }

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

    /// Counts the owner's rows of `table` and asks `quota` whether one more
    /// may be added. On PostgreSQL the owner's `users` row is locked first,
    /// so two creations for one owner count one after the other; SQLite's
    /// `BEGIN IMMEDIATE` already made this transaction the only writer.
    /// An unlimited quota costs nothing.
    pub(crate) async fn admit(
        &self,
        table: &str,
        owner: uuid::Uuid,
        quota: alarm_domain::limits::Quota,
    ) -> Result<(), StoreError> {
        if quota.limit == u32::MAX {
            return Ok(());
        }
        quota.admit(self.held(table, owner).await?)
    }

    /// [`Tx::admit`] for a replacement (a rotated key): the one replaced
    /// does not count.
    pub(crate) async fn admit_replacing(
        &self,
        table: &str,
        owner: uuid::Uuid,
        quota: alarm_domain::limits::Quota,
    ) -> Result<(), StoreError> {
        quota.admit_replacing(self.held(table, owner).await?)
    }

    /// The owner's rows of `table`, counted after locking the owner
    /// (PostgreSQL; `FOR NO KEY UPDATE` serialises the counts without
    /// blocking the foreign keys that point at the user).
    async fn held(&self, table: &str, owner: uuid::Uuid) -> Result<u64, StoreError> {
        if self.backend == DbBackend::Postgres {
            self.query_one(
                "SELECT id FROM users WHERE id = ? FOR NO KEY UPDATE",
                vec![owner.into()],
            )
            .await?;
        }
        let row = self
            .query_one(
                &format!("SELECT COUNT(*) AS held FROM {table} WHERE owner_id = ?"),
                vec![owner.into()],
            )
            .await?;
        let held = match row {
            Some(r) => col::<i64>(&r, "held")?,
            None => 0,
        };
        Ok(u64::try_from(held).unwrap_or(0))
    }

    pub(crate) async fn exec(&self, sql: &str, values: Vec<Value>) -> Result<u64, StoreError> {
        self.tx
            .execute_raw(stmt(self.backend, sql, values)?)
            .await
            .map(|r| r.rows_affected())
            .map_err(store_err)
    }

    /// [`Db::query_in`] inside this transaction.
    pub(crate) async fn query_in(
        &self,
        sql: &str,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<QueryResult>, StoreError> {
        self.query_each(in_ids(self.backend, sql, ids)).await
    }

    /// Runs `sql`, joined to `keys` through `{keys}` ([`with_keys`]),
    /// inside this transaction and returns every row.
    pub(crate) async fn query_keys(
        &self,
        sql: &str,
        keys: &[(uuid::Uuid, uuid::Uuid, uuid::Uuid)],
    ) -> Result<Vec<QueryResult>, StoreError> {
        self.query_each(with_keys(self.backend, sql, keys)).await
    }

    /// Every row of each statement, in order.
    async fn query_each(
        &self,
        statements: Vec<(String, Vec<Value>)>,
    ) -> Result<Vec<QueryResult>, StoreError> {
        let mut rows = Vec::new();
        for (sql, values) in statements {
            rows.extend(self.query_all(&sql, values).await?);
        }
        Ok(rows)
    }

    pub(crate) async fn query_all(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<QueryResult>, StoreError> {
        self.tx
            .query_all_raw(stmt(self.backend, sql, values)?)
            .await
            .map_err(store_err)
    }

    pub(crate) async fn query_one(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<QueryResult>, StoreError> {
        self.tx
            .query_one_raw(stmt(self.backend, sql, values)?)
            .await
            .map_err(store_err)
    }

    /// Commits. A connection lost *during* COMMIT leaves the outcome
    /// unknown (the server may have committed), so it is not reported as
    /// retryable: a blind retry could apply the unit of work twice.
    async fn commit(self) -> Result<(), StoreError> {
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

    /// The PostgreSQL text of `sql` bound to `n` values.
    fn pg(sql: &str, n: usize) -> String {
        stmt(DbBackend::Postgres, sql, vec![Value::from(0i64); n])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .sql
    }

    /// Why `sql` with `n` values is refused.
    fn refused(sql: &str, n: usize) -> String {
        match stmt(DbBackend::Postgres, sql, vec![Value::from(0i64); n]) {
            Ok(s) => panic!("{sql} was accepted as {}", s.sql),
            Err(StoreError::Unexpected(why)) => why.to_string(),
            Err(other) => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(pg("SELECT ? + ?", 2), "SELECT $1 + $2");
        let s = stmt(
            DbBackend::Sqlite,
            "SELECT ? + ?",
            vec![1i64.into(), 2i64.into()],
        )
        .unwrap();
        assert_eq!(s.sql, "SELECT ? + ?");
    }

    #[test]
    fn a_question_mark_in_a_string_literal_is_text() {
        assert_eq!(
            pg("SELECT '?' , ? FROM t WHERE a = ?", 2),
            "SELECT '?' , $1 FROM t WHERE a = $2"
        );
        // A doubled quote stays inside the literal.
        assert_eq!(
            pg("SELECT 'it''s ?', ? WHERE b = ''''", 1),
            "SELECT 'it''s ?', $1 WHERE b = ''''"
        );
        // A backslash is an ordinary character in a standard string…
        assert_eq!(pg(r"SELECT 'C:\', ?", 1), r"SELECT 'C:\', $1");
        // …and an escape in an E'…' string, where `\'` does not end it.
        assert_eq!(
            pg(r"SELECT E'it\'s ?', e'\\', ?", 1),
            r"SELECT E'it\'s ?', e'\\', $1"
        );
        // An `e` that ends a word is no prefix: the backslash is ordinary.
        assert_eq!(
            pg(r"SELECT x FROM type'\' WHERE a = ?", 1),
            r"SELECT x FROM type'\' WHERE a = $1"
        );
        assert_eq!(pg("SELECT 'é?ü', ?", 1), "SELECT 'é?ü', $1");
    }

    #[test]
    fn a_question_mark_in_a_quoted_identifier_is_text() {
        assert_eq!(
            pg(r#"SELECT "a?b", "say ""?""" FROM t WHERE c = ?"#, 1),
            r#"SELECT "a?b", "say ""?""" FROM t WHERE c = $1"#
        );
    }

    #[test]
    fn a_question_mark_in_a_comment_is_text() {
        assert_eq!(
            pg(
                "SELECT ? -- why? 'unbalanced\nFROM t WHERE a = ? -- last?",
                2
            ),
            "SELECT $1 -- why? 'unbalanced\nFROM t WHERE a = $2 -- last?"
        );
        // PostgreSQL's block comments nest.
        assert_eq!(
            pg("SELECT /* ? /* inner ? */ still ? */ ?, '/*', ?", 2),
            "SELECT /* ? /* inner ? */ still ? */ $1, '/*', $2"
        );
        // A single `-` or `/` is an operator.
        assert_eq!(pg("SELECT ? - ?, ? / ?", 4), "SELECT $1 - $2, $3 / $4");
    }

    #[test]
    fn a_question_mark_in_dollar_quoted_text_is_text() {
        assert_eq!(
            pg("SELECT $$ ? ' $$, $tag$ ? $other$ ? $tag$, ?", 1),
            "SELECT $$ ? ' $$, $tag$ ? $other$ ? $tag$, $1"
        );
        // `$` inside a word belongs to an identifier: no delimiter, no `$n`.
        assert_eq!(
            pg("SELECT a$b, c$1 FROM t WHERE d = ?", 1),
            "SELECT a$b, c$1 FROM t WHERE d = $1"
        );
    }

    #[test]
    fn ambiguous_texts_are_refused_rather_than_numbered() {
        assert!(refused("SELECT 'open, ?", 1).contains("unterminated string"));
        assert!(refused(r"SELECT E'open\', ?", 1).contains("unterminated string"));
        assert!(refused(r#"SELECT "open, ?"#, 1).contains("unterminated quoted identifier"));
        assert!(refused("SELECT /* open /* */ ?", 1).contains("unterminated comment"));
        assert!(refused("SELECT $x$ open ?", 1).contains("unterminated dollar"));
        assert!(refused("SELECT $1, ?", 1).contains("`$n`"));
        assert!(refused("SELECT ?1", 1).contains("`?n`"));
    }

    #[test]
    fn every_value_has_exactly_one_placeholder_on_both_engines() {
        assert!(refused("SELECT '?'", 1).contains("0 placeholders but 1 values"));
        assert!(refused("SELECT ?, ?", 1).contains("2 placeholders but 1 values"));
        let sqlite = stmt(DbBackend::Sqlite, "SELECT '?', ?", vec![Value::from(1i64)]).unwrap();
        assert_eq!(sqlite.sql, "SELECT '?', ?");
        assert!(stmt(DbBackend::Sqlite, "SELECT '?', ?", vec![]).is_err());
    }
}
