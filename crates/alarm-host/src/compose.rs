//! The one composition both apps run: connect, the schema gate, the ports, the delivery worker, the trigger engine and its wake-ups, and their shutdown.

use std::sync::Arc;
use std::time::Duration;

use alarm_appkit::Stop;
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::ports::{RandomIds, SystemClock};
use alarm_domain::services::Ports;
use alarm_notify::{Dispatcher, NotifySettings};
use alarm_runner::{Engine, EngineHealth, EngineWake, RunnerConfig};
use alarm_sql::{DbConfig, Sql};

use crate::groups::{Database, SchemaValues};

/// An open database with its ports.
pub struct Opened {
    /// The adapter (pool, migrations, NOTIFY).
    pub sql: Sql,
    /// Every store port and the trigger queue, on the system clock.
    pub ports: Ports,
    /// What was connected to (its URL redacted when shown).
    pub config: DbConfig,
    /// The time-zone database the ports resolve zones with.
    pub tzdb: TimeZoneDatabase,
}

/// Connects and passes the schema gate, one rule for both apps: with
/// `AUTO_MIGRATE` (the default only on the embedded SQLite file, which no
/// other process migrates) pending migrations are applied; otherwise a
/// schema that is behind stops the start, because on a shared database
/// `alarm-migrate up` runs once on deploy and two versions of the app must
/// never race over it. Stored values nothing acts on are reported once.
///
/// # Errors
/// The database cannot be reached, migrated, or is behind.
pub async fn open(db: &Database, schema: &SchemaValues) -> Result<Opened, String> {
    let config = db.config().map_err(|e| e.to_string())?;
    if db.embedded() {
        let dir = &db.values.data_dir;
        // Owner-only: the folder holds the database and the signing key.
        alarm_sql::private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let sealer = db.sealer()?;
    let sql = Sql::connect(&config)
        .await
        .map_err(|e| e.to_string())?
        .with_sealer(Arc::new(sealer));
    if schema.auto_migrate(db) {
        sql.migrate_up().await.map_err(|e| e.to_string())?;
    } else {
        let pending = sql.pending_migrations().await.map_err(|e| e.to_string())?;
        if !pending.is_empty() {
            return Err(format!(
                "the database schema is behind ({} pending: {}); run `alarm-migrate up` or set AUTO_MIGRATE=true",
                pending.len(),
                pending.join(", ")
            ));
        }
    }
    // The embedded default is one process on one file: nothing older can
    // be reading the secrets. On a shared database `alarm-migrate reseal`
    // waits until every process runs this release. A row no key opens is
    // reported, not fatal: only that webhook fails.
    if db.embedded()
        && let Err(e) = reseal(&sql).await
    {
        tracing::error!(error = %e, "the stored webhook secrets could not all be sealed");
    }
    report_unsupported(&sql).await;
    let tzdb = TimeZoneDatabase::bundled();
    let ports = sql.ports(tzdb.clone(), Arc::new(SystemClock), Arc::new(RandomIds));
    Ok(Opened {
        sql,
        ports,
        config,
        tzdb,
    })
}

/// Seals the stored webhook secrets that are plain (stored before
/// sealing) or under an older data key with the current one, and says
/// what changed.
///
/// # Errors
/// A secret that does not open with the configured keys, or a store
/// failure.
pub async fn reseal(sql: &Sql) -> Result<alarm_sql::Resealed, String> {
    let done = sql.reseal_secrets().await?;
    if done.sealed + done.rekeyed > 0 {
        tracing::info!(
            sealed = done.sealed,
            rekeyed = done.rekeyed,
            current = done.current,
            "webhook secrets sealed with the current data key"
        );
    }
    Ok(done)
}

/// Reports, once at start, stored values accepted before the API refused
/// them (a `push` channel, webhook events nothing emits): they stay
/// readable, and an operator learns they do nothing yet.
async fn report_unsupported(sql: &Sql) {
    match sql.unsupported_stored().await {
        Ok(found) if found.alarms > 0 || found.webhooks > 0 => tracing::warn!(
            alarms = found.alarms,
            webhooks = found.webhooks,
            "stored alarms ask for the push channel or webhooks subscribe to events that nothing delivers or emits yet; they stay readable, and new ones are refused"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot count unsupported stored values"),
    }
}

/// Reports, once at start, the stored alarms whose schedules break today's
/// `limits` (lowered since they were stored). They keep ringing as stored;
/// a replacement must meet the bounds. Reads every alarm once, so the app
/// runs it in the background.
pub async fn report_over_bounds(
    sql: Sql,
    tzdb: alarm_domain::jiff::tz::TimeZoneDatabase,
    limits: alarm_domain::limits::Limits,
) {
    match sql.alarms_over_bounds(tzdb, &limits).await {
        Ok((0, _)) => {}
        Ok((over, first)) => tracing::warn!(
            alarms = over,
            first = ?first.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "stored alarms have more schedules or rings a day than QUOTA_SCHEDULES_PER_ALARM / MAX_FIRES_PER_DAY now allow; they keep ringing as stored, and an edit must meet the bounds"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot check stored alarms against the bounds"),
    }
}

/// A process's background work: the delivery worker, the trigger engine
/// that pokes it after each commit with deliveries, and on PostgreSQL the
/// NOTIFY listener that wakes the engine when other processes move
/// triggers.
pub struct Background {
    engine: Engine,
    dispatcher: Arc<Dispatcher>,
    listener: Option<tokio::task::JoinHandle<()>>,
    shutdown: Duration,
    ports: Ports,
}

/// How often the engine-right holder counts the backlog gauges.
pub const BACKLOG_EVERY: Duration = Duration::from_secs(15);

/// How often a process looks whether it holds the engine right (no
/// database work): a new holder counts the backlog within this of taking
/// the right, not up to [`BACKLOG_EVERY`] later.
const RIGHT_LOOK_EVERY: Duration = Duration::from_secs(1);

/// Sets `engine_right_held` (1 in the process that holds the engine right)
/// every [`RIGHT_LOOK_EVERY`], and `triggers_due`, `outbox_pending` and
/// `outbox_dead`, until `stop`: counted from the database by the process
/// that holds the engine right, as soon as it holds it and then every
/// [`BACKLOG_EVERY`]; 0 in every other, so a sum over instances is the
/// backlog and no scrape costs a query.
async fn backlog_gauges(ports: Ports, health: Arc<EngineHealth>, stop: Stop) {
    let mut every = tokio::time::interval(RIGHT_LOOK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = stop.wait();
    tokio::pin!(stopped);
    // When this process last counted, while it held the right throughout.
    let mut counted_at: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = &mut stopped => return,
        }
        // A holder that has not reached the database lately rings nothing
        // either (its lease is about to lapse): it counts as not holding.
        let holds = health.holds_right() && health.check(BACKLOG_EVERY * 2).is_ok();
        // Summed over instances, 0 means no engine fires anything.
        metrics::gauge!("engine_right_held").set(if holds { 1.0 } else { 0.0 });
        if holds && counted_at.is_some_and(|at| at.elapsed() < BACKLOG_EVERY) {
            continue;
        }
        let counted = if holds {
            counted_at = Some(std::time::Instant::now());
            async {
                let now = ports.queue.store_time().await?;
                let due = ports.queue.due_count(now).await?;
                let outbox = ports.outbox.counts().await?;
                Ok::<_, alarm_domain::ports::StoreError>((due, outbox.pending, outbox.dead))
            }
            .await
        } else {
            counted_at = None;
            Ok((0, 0, 0))
        };
        match counted {
            Ok((due, pending, dead)) => {
                metrics::gauge!("triggers_due").set(due as f64);
                metrics::gauge!("outbox_pending").set(pending as f64);
                metrics::gauge!("outbox_dead").set(dead as f64);
            }
            Err(e) => {
                // Unknown, not the last count: an old value would keep an
                // alert quiet (or firing) while the database is away.
                for gauge in ["triggers_due", "outbox_pending", "outbox_dead"] {
                    metrics::gauge!(gauge).set(f64::NAN);
                }
                tracing::warn!(error = %e, "cannot count the backlog for the metrics");
            }
        }
    }
}

impl Background {
    /// Wires the engine and the delivery worker over `opened`'s ports.
    ///
    /// # Errors
    /// The TLS stack or the mailer cannot be set up.
    pub fn new(
        opened: &Opened,
        runner: RunnerConfig,
        notify: &NotifySettings,
    ) -> Result<Self, String> {
        let dispatcher = notify.dispatcher(
            opened.ports.clone(),
            alarm_notify::settings::system_resolver(),
        )?;
        let poke = dispatcher.clone();
        let shutdown = runner.shutdown_timeout;
        let engine =
            Engine::new(opened.ports.clone(), runner).on_deliveries(Arc::new(move || poke.poke()));
        let wake = engine.wake();
        let listener = opened.sql.listen_for_triggers(move || wake.poke());
        Ok(Self {
            engine,
            dispatcher,
            listener,
            shutdown,
            ports: opened.ports.clone(),
        })
    }

    /// The engine's health, for readiness.
    pub fn health(&self) -> Arc<EngineHealth> {
        self.engine.health()
    }

    /// The engine's in-process wake-up, for ports whose commits move triggers.
    pub fn wake(&self) -> Arc<EngineWake> {
        self.engine.wake()
    }

    /// The delivery worker, for its counters.
    pub fn dispatcher(&self) -> Arc<Dispatcher> {
        self.dispatcher.clone()
    }

    /// Runs until `stop`: the engine fires what is due and releases its
    /// claims; the delivery worker finishes its round within the shutdown
    /// timeout (rows it has not recorded go out again after their lease).
    pub async fn run(self, stop: Stop) {
        let delivery = tokio::spawn(self.dispatcher.clone().run(stop.clone().wait()));
        let gauges = tokio::spawn(backlog_gauges(
            self.ports.clone(),
            self.engine.health(),
            stop.clone(),
        ));
        self.engine.run(stop.wait()).await;
        gauges.abort();
        let _ = tokio::time::timeout(self.shutdown, delivery).await;
        if let Some(listener) = self.listener {
            listener.abort();
        }
    }
}
