//! The engine loop: measure the database's clock, claim a little ahead, wait on the monotonic clock, fire in batches, renew leases, shut down cleanly.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alarm_domain::firing::{
    Verdict, effective_at, judge_claim, replan_after_edit, start_routines, starts_routines,
};
use alarm_domain::ids::{AlarmId, UserId};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::{Alarm, Routine};
use alarm_domain::ports::{
    AlarmStore, EngineRight, IdSource, RingingStore, RoutineStore, StoreError, TriggerClaims,
    TriggerWake,
};
use alarm_domain::schedule::Calendar;
use alarm_domain::services::{CalendarService, Ports, ReplanStep, ServiceError};
use alarm_domain::trigger::{Claimed, LeaseToken, Ringing, TriggerKind};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::RunnerConfig;
use crate::health::EngineHealth;

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// Wakes the engine early: the API calls it (through the domain's
/// [`TriggerWake`] port) when it commits a trigger, and the PostgreSQL
/// listener when another process did.
#[derive(Debug, Default)]
pub struct EngineWake {
    notify: Notify,
    /// A holiday write in this process left a re-plan job.
    replan: Notify,
}

impl EngineWake {
    /// Look at the queue now.
    pub fn poke(&self) {
        // `notify_one` keeps a permit when the engine is busy, so a wake
        // during a fire is not lost.
        self.notify.notify_one();
    }
}

impl TriggerWake for EngineWake {
    fn due(&self, _at: Timestamp) {
        self.poke();
    }

    fn replan(&self) {
        self.replan.notify_one();
    }
}

/// Counts of what a batch (or a [`Engine::tick`]) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Occurrences that rang (fires, snooze ends, escalations).
    pub rang: u64,
    /// Occurrences recorded `missed`.
    pub missed: u64,
    /// Occurrences recorded `expired`.
    pub expired: u64,
    /// Triggers completed without ringing.
    pub skipped: u64,
    /// Claims whose lease was lost before completion (another engine has them).
    pub lost: u64,
}

impl std::ops::AddAssign for TickReport {
    fn add_assign(&mut self, o: Self) {
        self.rang += o.rang;
        self.missed += o.missed;
        self.expired += o.expired;
        self.skipped += o.skipped;
        self.lost += o.lost;
    }
}

/// The database's time, read once per claim cycle and carried forward on
/// the local monotonic clock: the wall clock of this machine is never read
/// for a firing decision.
#[derive(Debug, Clone, Copy)]
struct DbClock {
    at_db: Timestamp,
    at: Instant,
}

impl DbClock {
    fn now(&self) -> Timestamp {
        self.at_db + signed(self.at.elapsed())
    }
    fn instant_of(&self, t: Timestamp) -> Instant {
        let d = t.duration_since(self.at_db);
        if d.is_negative() {
            return self.at;
        }
        self.at + Duration::try_from(d).unwrap_or(Duration::from_secs(86_400))
    }
}

/// The ports the trigger engine takes, picked out of the apps' [`Ports`].
#[derive(Clone)]
pub struct EnginePorts {
    /// Claims, completion, rescue and re-planning of triggers.
    pub claims: Arc<dyn TriggerClaims>,
    /// Ringing occurrences (the judge reads an occurrence's record).
    pub ringing: Arc<dyn RingingStore>,
    /// The one-engine right and the database's clock.
    pub right: Arc<dyn EngineRight>,
    /// The alarms of a batch, as stored now.
    pub alarms: Arc<dyn AlarmStore>,
    /// The routines attached to the alarms that ring.
    pub routines: Arc<dyn RoutineStore>,
    /// Ids of the events and deliveries a fire makes.
    pub ids: Arc<dyn IdSource>,
}

impl From<Ports> for EnginePorts {
    fn from(ports: Ports) -> Self {
        Self {
            claims: ports.queue.clone(),
            ringing: ports.queue.clone(),
            right: ports.queue,
            alarms: ports.alarms,
            routines: ports.routines,
            ids: ports.ids,
        }
    }
}

/// The trigger engine over a set of ports.
pub struct Engine {
    ports: EnginePorts,
    calendars: CalendarService,
    config: RunnerConfig,
    wake: Arc<EngineWake>,
    health: Arc<EngineHealth>,
    holder: Uuid,
    /// Called after each commit that wrote deliveries (wakes an in-process
    /// delivery worker instead of leaving the rows to its next poll).
    after_deliveries: Option<Arc<dyn Fn() + Send + Sync>>,
}

type Key = (Timestamp, u64);

/// A batch handed to a firing task, and what became of it.
struct Fired {
    now: Timestamp,
    claims: Vec<(Key, Claimed)>,
    result: Result<TickReport, ServiceError>,
}

/// A batch being fired, and the alarms its claims belong to: a claim of
/// one of them waits until it is done, so that two batches never judge or
/// commit the same alarm at once (the second judges on what the first
/// committed).
struct Firing {
    alarms: HashSet<AlarmId>,
    handle: tokio::task::JoinHandle<Fired>,
}

/// Batches fired at once: the next batch loads its alarms and calendars
/// and is judged while the one before commits. With one at a time the
/// database idled during those reads: in `cargo xtask bench worker --
/// --ceiling` PostgreSQL used 127 % of a core with one and 148 % with two,
/// for 12,377 and 13,017 fires/s on average (2 and 3 runs; the gain is
/// within this machine's run-to-run spread).
const FIRING_AT_ONCE: usize = 2;

/// The claims a new batch takes: those due at `now`, in due order, up to
/// `limit`, passing over those whose alarm a batch being fired holds.
fn next_batch(
    inflight: &BTreeMap<Key, Claimed>,
    now: Timestamp,
    limit: usize,
    busy: impl Fn(&AlarmId) -> bool,
) -> Vec<Key> {
    inflight
        .range(..=(now, u64::MAX))
        .filter(|(_, c)| !busy(&c.trigger.alarm))
        .map(|(k, _)| *k)
        .take(limit)
        .collect()
}

/// The first of `firing` to finish, and where it was.
fn next_fired(
    firing: &mut [Firing],
) -> impl Future<Output = (usize, Result<Fired, tokio::task::JoinError>)> + '_ {
    std::future::poll_fn(move |cx| {
        for (i, f) in firing.iter_mut().enumerate() {
            if let std::task::Poll::Ready(r) = std::pin::Pin::new(&mut f.handle).poll(cx) {
                return std::task::Poll::Ready((i, r));
            }
        }
        std::task::Poll::Pending
    })
}

/// Backoff state of failing fires.
#[derive(Default)]
struct FireRetry {
    at: Option<Instant>,
    backoff: Backoff,
    failures: u32,
}

/// Most claims committed in one transaction: big enough to amortise the
/// commit, small enough that several run at once, and no more than the
/// 400 tokens the SQL adapter locks alarms for in one sorted statement (so
/// two commits running at once always lock in the same order).
pub(crate) const COMMIT_CHUNK: usize = 400;

/// The size of the even chunks `len` claims are committed in: as few
/// chunks as [`COMMIT_CHUNK`] allows, as equal as can be.
fn even_chunk(len: usize) -> usize {
    len.div_ceil(len.div_ceil(COMMIT_CHUNK).max(1))
}

impl Engine {
    /// An engine over `ports` (their clock is not used by [`Engine::run`],
    /// which goes by the database's clock).
    pub fn new(ports: Ports, config: RunnerConfig) -> Self {
        Self::from_parts(ports.clone().into(), CalendarService::new(ports), config)
    }

    /// An engine over its own ports and the calendar service it judges
    /// batches by (a test may wrap one port and keep the others).
    pub fn from_parts(
        ports: EnginePorts,
        calendars: CalendarService,
        config: RunnerConfig,
    ) -> Self {
        // The series exist from the start, so `increase()` sees the first
        // ring and the first miss too.
        metrics::counter!("alarms_missed_total").increment(0);
        for kind in [
            TriggerKind::Fire,
            TriggerKind::Snooze(1),
            TriggerKind::Escalate(1),
            TriggerKind::Expire,
        ] {
            metrics::counter!("alarms_triggered_total", "kind" => kind_label(&kind)).increment(0);
        }
        Self {
            calendars,
            ports,
            config,
            wake: Arc::default(),
            health: Arc::default(),
            holder: Uuid::now_v7(),
            after_deliveries: None,
        }
    }

    /// Calls `poke` after every commit that wrote deliveries.
    #[must_use]
    pub fn on_deliveries(mut self, poke: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.after_deliveries = Some(poke);
        self
    }

    /// The handle that wakes this engine; give it to the API's ports
    /// ([`Ports::with_wake`]) and to a database listener.
    pub fn wake(&self) -> Arc<EngineWake> {
        self.wake.clone()
    }

    /// The engine's health, for readiness checks.
    pub fn health(&self) -> Arc<EngineHealth> {
        self.health.clone()
    }

    /// The settings.
    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    /// Rescues expired leases and fires everything due at or before `now`,
    /// batch after batch, without sleeping: the deterministic step tests
    /// drive with a manual clock.
    ///
    /// # Errors
    /// Store failures.
    pub async fn tick(&self, now: Timestamp) -> Result<TickReport, ServiceError> {
        self.ports.claims.rescue(now).await?;
        let mut report = TickReport::default();
        loop {
            let claimed = self
                .ports
                .claims
                .claim(now, self.config.batch, signed(self.config.lease))
                .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            report += self.fire(now, claimed).await?;
        }
    }

    /// Judges and completes a batch of claims at `now`: the alarms are
    /// loaded in one query per 400, the owners' calendars in a handful of
    /// queries for all of them, and the outcomes committed in transactions of up to
    /// 400 claims, two at once.
    ///
    /// # Errors
    /// Store failures. Chunks committed before the failure stay committed;
    /// the others stay leased, and retrying the whole batch completes them
    /// (the committed ones come back as lost: fencing never commits twice).
    pub async fn fire(
        &self,
        now: Timestamp,
        claims: Vec<Claimed>,
    ) -> Result<TickReport, ServiceError> {
        // One span per batch: the outbox rows its fires queue carry its
        // trace context, so their deliveries are part of this trace.
        let trace = alarm_telemetry::decide(None);
        let span = alarm_telemetry::span!(
            trace,
            "engine.batch",
            claims = claims.len(),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        trace
            .scope(self.fire_batch(now, claims).instrument(span))
            .await
    }

    async fn fire_batch(
        &self,
        now: Timestamp,
        claims: Vec<Claimed>,
    ) -> Result<TickReport, ServiceError> {
        // Lateness runs to the commit, through the loads and routines too.
        let begun = Instant::now();
        let ids: Vec<AlarmId> = claims
            .iter()
            .map(|c| c.trigger.alarm)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let alarms: HashMap<AlarmId, Alarm> = self
            .ports
            .alarms
            .get_many(ids)
            .await?
            .into_iter()
            .map(|a| (a.id(), a))
            .collect();
        let owners: Vec<UserId> = alarms
            .values()
            .map(Alarm::owner)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let calendars = self.calendars.calendars_for(owners).await?;
        let policy = self.config.fire_policy();
        // Follow-ups need their occurrence's ringing record: one read per
        // owner in the batch, not one per trigger.
        let mut ringing_by_owner: HashMap<UserId, HashMap<(AlarmId, Timestamp), Ringing>> =
            HashMap::new();
        for claim in claims
            .iter()
            .filter(|c| c.trigger.kind != TriggerKind::Fire)
        {
            let owner = claim.trigger.owner;
            if let std::collections::hash_map::Entry::Vacant(slot) = ringing_by_owner.entry(owner) {
                let records = self.ports.ringing.ringing_of(owner).await?;
                slot.insert(
                    records
                        .into_iter()
                        .map(|r| ((r.alarm, r.occurrence.at), r))
                        .collect(),
                );
            }
        }
        let mut items = Vec::with_capacity(claims.len());
        let mut verdicts = HashMap::with_capacity(claims.len());
        // A span per fire only when the batch's trace is recorded: in one
        // that is not, the spans would never be exported yet cost most of
        // the tracing overhead of a burst.
        let traced = alarm_telemetry::in_sampled_trace();
        for claim in &claims {
            let t = &claim.trigger;
            let ringing: Option<&Ringing> = ringing_by_owner
                .get(&t.owner)
                .and_then(|m| m.get(&(t.alarm, t.occurrence.at)));
            let alarm = alarms.get(&t.alarm).filter(|a| a.owner() == t.owner);
            let calendar = alarm.and_then(|a| calendars.get(&a.owner()));
            let _fire = if traced {
                tracing::info_span!(
                    "fire",
                    alarm = %t.alarm,
                    kind = %t.kind.code(),
                    verdict = tracing::field::Empty,
                )
            } else {
                tracing::Span::none()
            }
            .entered();
            // A trigger claimed ahead of its instant is judged at it, and its
            // outcome takes effect then (prepared); a due one at once.
            let (outcome, verdict, at) = judge_claim(
                t,
                alarm,
                calendar,
                ringing,
                &policy,
                now,
                self.ports.ids.as_ref(),
            );
            match verdict {
                Verdict::Rang => {
                    tracing::debug!(alarm = %t.alarm, kind = %t.kind.code(), lateness_ms = at.duration_since(t.due_at).as_millis(), "rang")
                }
                Verdict::Missed => {
                    tracing::info!(alarm = %t.alarm, kind = %t.kind.code(), lateness_ms = at.duration_since(t.due_at).as_millis(), "missed: found past the grace window")
                }
                _ => {}
            }
            _fire.record("verdict", tracing::field::debug(&verdict));
            verdicts.insert(claim.token, verdict);
            items.push((claim.token, outcome));
        }
        self.start_routines(now, &claims, &alarms, &mut items)
            .await?;
        let committing = Instant::now();
        let lost = self.commit(items).await?;
        let commit = signed(committing.elapsed());
        tracing::debug!(
            claims = claims.len(),
            owners = calendars.len(),
            commit_ms = commit.as_millis(),
            "batch fired"
        );
        let mut report = TickReport {
            lost: lost.len() as u64,
            ..TickReport::default()
        };
        let lost: HashSet<LeaseToken> = lost.into_iter().collect();
        let due: HashMap<LeaseToken, (Timestamp, &'static str)> = claims
            .iter()
            .map(|c| (c.token, (c.trigger.due_at, kind_label(&c.trigger.kind))))
            .collect();
        let committed = now + signed(begun.elapsed());
        // Rings committed ahead of their instant are counted at it: the
        // counters say what has rung, not what is prepared to.
        let mut ahead: BTreeMap<(Timestamp, &'static str), u64> = BTreeMap::new();
        let mut rang_now = 0;
        for (token, verdict) in verdicts {
            if lost.contains(&token) {
                continue;
            }
            match verdict {
                Verdict::Rang => {
                    report.rang += 1;
                    let (at, kind) = due[&token];
                    let late = committed.duration_since(at);
                    if late.is_negative() {
                        self.health.prepared.fetch_add(1, Ordering::Relaxed);
                        *ahead.entry((at, kind)).or_default() += 1;
                        continue;
                    }
                    self.health.committed_late.fetch_add(1, Ordering::Relaxed);
                    rang_now += 1;
                    metrics::counter!("alarms_triggered_total", "kind" => kind).increment(1);
                    // From the instant to the ring's commit (its outcome is
                    // visible from then on).
                    metrics::histogram!("alarm_fire_lateness_seconds", "kind" => kind)
                        .record(late.as_secs_f64());
                }
                Verdict::Missed => {
                    report.missed += 1;
                    metrics::counter!("alarms_missed_total").increment(1);
                }
                Verdict::Expired => report.expired += 1,
                Verdict::Skipped => report.skipped += 1,
            }
        }
        if report.lost > 0 {
            tracing::warn!(
                lost = report.lost,
                "claims were rescued by another engine, or their alarm was edited while they were prepared; not rung here"
            );
            // A preparation the store declined put its trigger back: claim
            // it again now, not at the next poll.
            self.wake.poke();
        }
        self.health.rang.fetch_add(rang_now, Ordering::Relaxed);
        self.health
            .missed
            .fetch_add(report.missed, Ordering::Relaxed);
        if !ahead.is_empty() {
            let health = self.health.clone();
            let started = Instant::now();
            // Not tied to this process's shutdown: a prepared ring still
            // rings (its outcome is committed) whether or not the process
            // is there to count it.
            tokio::spawn(async move {
                for ((at, kind), n) in ahead {
                    let wait = at.duration_since(committed);
                    let due = started + Duration::try_from(wait).unwrap_or(Duration::ZERO);
                    tokio::time::sleep_until(due).await;
                    metrics::counter!("alarms_triggered_total", "kind" => kind).increment(n);
                    let lateness =
                        metrics::histogram!("alarm_fire_lateness_seconds", "kind" => kind);
                    for _ in 0..n {
                        lateness.record(0.0);
                    }
                    health.rang.fetch_add(n, Ordering::Relaxed);
                }
            });
        }
        // After the counts: the fires above are committed whatever happens
        // to this follow-up (a failed read here is retried by the caller's
        // next round, and must not make a committed ring go uncounted).
        let lost: Vec<LeaseToken> = lost.into_iter().collect();
        self.replan_edited(
            &claims,
            &lost,
            &alarms,
            &calendars,
            now + signed(begun.elapsed()),
        )
        .await?;
        Ok(report)
    }

    /// Adds the `routine_started` events of every outcome that starts its
    /// alarm's routines ([`starts_routines`]), reading the attached
    /// routines of those alarms only, in one query per 400 alarms.
    async fn start_routines(
        &self,
        now: Timestamp,
        claims: &[Claimed],
        alarms: &HashMap<AlarmId, Alarm>,
        items: &mut [(LeaseToken, alarm_domain::ports::FireOutcome)],
    ) -> Result<(), ServiceError> {
        let starting: Vec<AlarmId> = claims
            .iter()
            .zip(items.iter())
            .filter(|(c, (_, o))| starts_routines(&c.trigger, o))
            .map(|(c, _)| c.trigger.alarm)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if starting.is_empty() {
            return Ok(());
        }
        let mut attached: HashMap<AlarmId, Vec<Routine>> = HashMap::new();
        for (alarm, routine) in self.ports.routines.attached_many(starting).await? {
            attached.entry(alarm).or_default().push(routine);
        }
        for (claim, (_, outcome)) in claims.iter().zip(items.iter_mut()) {
            if let (Some(routines), Some(alarm)) = (
                attached.get(&claim.trigger.alarm),
                alarms.get(&claim.trigger.alarm),
            ) {
                start_routines(
                    &claim.trigger,
                    alarm,
                    outcome,
                    routines,
                    effective_at(claim.trigger.due_at, now),
                    self.ports.ids.as_ref(),
                );
            }
        }
        Ok(())
    }

    /// Re-plans the alarms that were edited while one of their `fire`
    /// triggers was claimed: the edit could not replace the leased trigger,
    /// and the plan just committed was computed from the version loaded
    /// before the edit, so the store skipped it. Without this the alarm
    /// would be left without a next fire. Which plan is needed is the
    /// domain's [`replan_after_edit`]; this reads the alarms again and
    /// applies its answers.
    async fn replan_edited(
        &self,
        claims: &[Claimed],
        lost: &[LeaseToken],
        loaded: &HashMap<AlarmId, Alarm>,
        calendars: &HashMap<UserId, Calendar>,
        clock_now: Timestamp,
    ) -> Result<(), ServiceError> {
        let lost: HashSet<&LeaseToken> = lost.iter().collect();
        let fired: Vec<&Claimed> = claims
            .iter()
            .filter(|c| c.trigger.kind == TriggerKind::Fire && !lost.contains(&c.token))
            .filter(|c| loaded.contains_key(&c.trigger.alarm))
            .collect();
        if fired.is_empty() {
            return Ok(());
        }
        let ids: Vec<AlarmId> = fired.iter().map(|c| c.trigger.alarm).collect();
        let now: HashMap<AlarmId, Alarm> = self
            .ports
            .alarms
            .get_many(ids)
            .await?
            .into_iter()
            .map(|a| (a.id(), a))
            .collect();
        let plans: Vec<_> = fired
            .iter()
            .filter_map(|c| {
                let current = now.get(&c.trigger.alarm)?;
                let before = loaded.get(&c.trigger.alarm)?;
                let calendar = calendars.get(&current.owner())?;
                replan_after_edit(&c.trigger, before, current, calendar, clock_now)
            })
            .collect();
        if !plans.is_empty() {
            tracing::info!(
                alarms = plans.len(),
                "re-planned alarms edited while their trigger was being fired"
            );
            self.ports.claims.reschedule(plans).await?;
        }
        Ok(())
    }

    /// Commits the outcomes in chunks, a few transactions at once; returns
    /// the fenced tokens.
    async fn commit(
        &self,
        items: Vec<(LeaseToken, alarm_domain::ports::FireOutcome)>,
    ) -> Result<Vec<LeaseToken>, ServiceError> {
        let delivers = items.iter().any(|(_, o)| !o.deliveries.is_empty());
        let lost = self.commit_chunks(items).await?;
        if delivers && let Some(poke) = &self.after_deliveries {
            poke();
        }
        Ok(lost)
    }

    async fn commit_chunks(
        &self,
        items: Vec<(LeaseToken, alarm_domain::ports::FireOutcome)>,
    ) -> Result<Vec<LeaseToken>, ServiceError> {
        const AT_ONCE: usize = 3;
        if items.len() <= COMMIT_CHUNK {
            return Ok(self.ports.claims.complete_many(items).await?);
        }
        // Even chunks (1,000 claims: 334 + 333 + 333, committed together)
        // rather than full ones and a remainder (400 + 400, then 200 alone
        // while the database had a core to spare): 10,950 then 12,506
        // fires/s in `cargo xtask bench worker -- --ceiling`.
        let size = even_chunk(items.len());
        let mut chunks = Vec::new();
        let mut rest = items;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(size));
            chunks.push(std::mem::replace(&mut rest, tail));
        }
        let mut lost = Vec::new();
        let mut failure = None;
        let mut set = tokio::task::JoinSet::new();
        let mut pending = chunks.into_iter();
        loop {
            while set.len() < AT_ONCE {
                let Some(chunk) = pending.next() else { break };
                let queue = self.ports.claims.clone();
                // In the batch's trace: the rows it queues carry it.
                set.spawn(alarm_telemetry::in_current_trace(async move {
                    queue.complete_many(chunk).await
                }));
            }
            let Some(done) = set.join_next().await else {
                break;
            };
            match done {
                Ok(Ok(l)) => lost.extend(l),
                Ok(Err(e)) => failure = Some(ServiceError::from(e)),
                Err(e) => {
                    failure = Some(ServiceError::Unexpected(StoreError::Unexpected(Box::new(
                        e,
                    ))));
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(lost),
        }
    }

    /// Runs until `shutdown` resolves, then stops claiming, fires what is
    /// due, releases the rest of its claims (bounded by the shutdown
    /// timeout) and gives up the engine right.
    ///
    /// Up to [`FIRING_AT_ONCE`] batches are fired at a time, each in its
    /// own task and never two with the same alarm, while this loop claims
    /// the next: the database commits one batch while the next is loaded
    /// and judged, and while it hands out the one after.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let engine = Arc::new(self);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let replans = tokio::spawn(engine.clone().replan_loop(stopped));
        engine.run_loop(shutdown).await;
        let _ = stop.send(true);
        if let Err(e) = replans.await {
            tracing::error!(error = %e, "the holiday re-plan task failed");
        }
    }

    /// Works the holiday re-plan jobs ([`CalendarService::replan_step`])
    /// while this engine holds the engine right, one batch after another
    /// until none is pending, then looks again after
    /// [`RunnerConfig::replan_poll`] or when a holiday write in this
    /// process wakes it. A batch that fails is retried from the same
    /// cursor after a backoff.
    async fn replan_loop(self: Arc<Self>, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Backoff::default();
        loop {
            if *stopped.borrow() {
                return;
            }
            let pause = if self.health.holds_right.load(Ordering::Relaxed) {
                // A batch in progress is dropped at shutdown (its
                // transaction rolls back; the job keeps its cursor).
                let step = tokio::select! {
                    step = self.calendars.replan_step(self.config.replan_batch) => step,
                    _ = stopped.changed() => return,
                };
                match step {
                    Ok(ReplanStep::Idle) => {
                        backoff.reset();
                        self.config.replan_poll
                    }
                    Ok(ReplanStep::Raced) => Duration::ZERO,
                    Ok(ReplanStep::Worked {
                        country,
                        users,
                        finished,
                    }) => {
                        backoff.reset();
                        tracing::debug!(%country, users, finished, "re-planned a batch of a holiday change");
                        if finished {
                            tracing::info!(%country, "holiday change re-planned for every user of the country");
                            self.health.replans_finished.send_modify(|n| *n += 1);
                        }
                        Duration::ZERO
                    }
                    Err(e) => {
                        let pause = backoff.next();
                        tracing::warn!(error = %e, retry_in_ms = pause.as_millis(), "holiday re-plan batch failed");
                        pause
                    }
                }
            } else {
                self.config.replan_poll
            };
            if pause.is_zero() {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.wake.replan.notified() => {}
                _ = stopped.changed() => return,
            }
        }
    }

    async fn run_loop(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let cfg = self.config.clone();
        let third = cfg.lease / 3;
        let mut inflight: BTreeMap<Key, Claimed> = BTreeMap::new();
        let mut seq = 0u64;
        let mut clock: Option<DbClock> = None;
        let start = Instant::now();
        let mut next_claim = start;
        let mut next_beat = start + third;
        let mut next_right = start;
        let mut next_rescue = start;
        let mut claim_backoff = Backoff::default();
        let mut retry = FireRetry::default();
        let mut firing: Vec<Firing> = Vec::with_capacity(FIRING_AT_ONCE);
        let mut stopping = false;
        loop {
            // 0. Heartbeat first: a backlog of fires and claims must not
            //    starve the renewal of what is held.
            if Instant::now() >= next_beat {
                next_beat = Instant::now() + third;
                if !inflight.is_empty() {
                    self.heartbeat(clock, &mut inflight).await;
                }
            }
            // 1. A finished batch: count it, or put its claims back.
            if let Some(i) = firing.iter().position(|f| f.handle.is_finished()) {
                let fired = firing.swap_remove(i).handle.await;
                self.settle(fired, &mut inflight, &mut retry, claim_backoff.failing())
                    .await;
                continue;
            }
            // 2. Fire whatever is due and free to go, unless two batches
            //    are already being fired.
            let busy = |alarm: &AlarmId| firing.iter().any(|f| f.alarms.contains(alarm));
            let first_free = if firing.len() < FIRING_AT_ONCE {
                inflight
                    .iter()
                    .find(|(_, c)| !busy(&c.trigger.alarm))
                    .map(|(&(due, _), _)| due)
            } else {
                None
            };
            if let (Some(c), Some(due)) = (clock, first_free) {
                let now_i = Instant::now();
                if c.instant_of(due) <= now_i && retry.at.is_none_or(|r| r <= now_i) {
                    let now = c.now();
                    // Everything due goes at once: `fire` loads each owner's
                    // calendar once and commits in parallel chunks.
                    let keys = next_batch(&inflight, now, cfg.batch as usize * 8, busy);
                    let claims: Vec<(Key, Claimed)> = keys
                        .iter()
                        .filter_map(|k| inflight.remove(k).map(|c| (*k, c)))
                        .collect();
                    let alarms = claims.iter().map(|(_, c)| c.trigger.alarm).collect();
                    let engine = self.clone();
                    let handle = tokio::spawn(async move {
                        let batch: Vec<Claimed> = claims.iter().map(|(_, c)| c.clone()).collect();
                        let result = engine.fire(now, batch).await;
                        Fired {
                            now,
                            claims,
                            result,
                        }
                    });
                    firing.push(Firing { alarms, handle });
                    continue;
                }
            }
            if stopping {
                if let Some(f) = firing.pop() {
                    let fired = f.handle.await;
                    self.settle(fired, &mut inflight, &mut retry, claim_backoff.failing())
                        .await;
                    continue;
                }
                break;
            }
            let now_i = Instant::now();
            // While a batch commits, claim only to have the next batch
            // ready: claiming more would compete with the commit for the
            // database and make both late.
            let may_claim = firing.is_empty() || inflight.len() < cfg.batch as usize;
            // 3. Claim: measure the database's clock, hold the engine right,
            //    rescue expired leases, claim up to `prefetch` ahead.
            if may_claim && now_i >= next_claim {
                match self
                    .claim_cycle(
                        &mut clock,
                        &mut inflight,
                        &mut seq,
                        &mut next_right,
                        &mut next_rescue,
                    )
                    .await
                {
                    Ok(next) => {
                        if claim_backoff.failing() {
                            tracing::info!("the database is reachable again");
                        }
                        claim_backoff.reset();
                        next_claim = next;
                    }
                    Err(e) => {
                        let pause = claim_backoff.next();
                        tracing::warn!(error = %e, retry_in_ms = pause.as_millis(), "claim cycle failed");
                        next_claim = Instant::now() + pause;
                    }
                }
                continue;
            }
            // 4. Sleep until the first of: the next claim, the next fire,
            //    the heartbeat, the end of the batch being committed; or a
            //    wake-up; or shutdown.
            let mut deadline = if may_claim {
                next_claim.min(next_beat)
            } else {
                next_beat
            };
            if let (Some(c), Some(due)) = (clock, first_free) {
                let at = c.instant_of(due).max(retry.at.unwrap_or(now_i));
                deadline = deadline.min(at);
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                (i, fired) = next_fired(&mut firing), if !firing.is_empty() => {
                    firing.swap_remove(i);
                    self.settle(fired, &mut inflight, &mut retry, claim_backoff.failing()).await;
                }
                () = self.wake.notify.notified(), if may_claim => next_claim = Instant::now(),
                () = &mut shutdown => stopping = true,
            }
        }
        self.stop(inflight, clock).await;
    }

    /// Accounts for a finished batch: on failure its claims go back to be
    /// retried with backoff, and a batch that keeps failing while the
    /// database answers is fired one trigger at a time.
    async fn settle(
        &self,
        fired: Result<Fired, tokio::task::JoinError>,
        inflight: &mut BTreeMap<Key, Claimed>,
        retry: &mut FireRetry,
        claims_failing: bool,
    ) {
        let Fired {
            now,
            claims,
            result,
        } = match fired {
            Ok(f) => f,
            Err(e) => {
                // A panic in `fire`: its claims stay leased and come back
                // after their lease.
                tracing::error!(error = %e, "a firing task failed");
                return;
            }
        };
        match result {
            Ok(_) => *retry = FireRetry::default(),
            Err(e) if retry.failures >= 2 && !claims_failing => {
                // The database answers claims but this batch keeps failing:
                // one trigger in it cannot be fired (a row that no longer
                // decodes, say). Fire them one by one so the rest ring; the
                // bad one stays leased and comes back after its lease.
                tracing::error!(error = %e, claims = claims.len(), "a batch failed three times; firing its triggers one by one");
                for (_, claim) in claims {
                    let alarm = claim.trigger.alarm;
                    if let Err(e) = self.fire(now, vec![claim]).await {
                        tracing::error!(%alarm, error = %e, "this trigger cannot be fired; retried after its lease");
                    }
                }
                *retry = FireRetry::default();
            }
            Err(e) => {
                retry.failures += 1;
                let pause = retry.backoff.next();
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis(), "firing failed; the claims stay leased and are retried");
                for (k, c) in claims {
                    inflight.insert(k, c);
                }
                retry.at = Some(Instant::now() + pause);
            }
        }
    }

    async fn claim_cycle(
        &self,
        clock: &mut Option<DbClock>,
        inflight: &mut BTreeMap<Key, Claimed>,
        seq: &mut u64,
        next_right: &mut Instant,
        next_rescue: &mut Instant,
    ) -> Result<Instant, StoreError> {
        let cfg = &self.config;
        let ports = &self.ports;
        let sent = Instant::now();
        let at_db = ports.right.store_time().await?;
        let c = DbClock {
            at_db,
            at: sent + sent.elapsed() / 2,
        };
        *clock = Some(c);
        let now = c.now();
        if Instant::now() >= *next_right || !self.health.holds_right() {
            let held = ports
                .right
                .engine_lease(self.holder, now, now + signed(cfg.lease))
                .await?;
            if held != self.health.holds_right() {
                if held {
                    tracing::info!(holder = %self.holder, "engine right taken: this engine runs the triggers");
                } else {
                    tracing::warn!(
                        "another engine holds this database's engine right; standing by"
                    );
                }
            }
            self.health.holds_right.store(held, Ordering::Relaxed);
            *next_right = Instant::now() + cfg.lease / 3;
            if !held {
                self.health.ok();
                return Ok(Instant::now() + cfg.lease / 3);
            }
        }
        if Instant::now() >= *next_rescue {
            let n = ports.claims.rescue(now).await?;
            if n > 0 {
                tracing::warn!(
                    rescued = n,
                    "claims of a stopped engine were rescued after their lease expired"
                );
            }
            *next_rescue = Instant::now() + Duration::from_secs(1);
        }
        self.health.ok();
        if inflight.len() >= cfg.max_in_flight {
            return Ok(Instant::now() + Duration::from_millis(50));
        }
        let claimed = ports
            .claims
            .claim(now + signed(cfg.prefetch), cfg.batch, signed(cfg.lease))
            .await?;
        let full = claimed.len() as u64 >= u64::from(cfg.batch);
        let none = claimed.is_empty();
        for claim in claimed {
            *seq += 1;
            // A `fire` is prepared as soon as it is claimed (judged at its
            // instant, committed ahead of it: nothing is written when the
            // instant comes). Follow-ups wait for theirs: what they do
            // depends on the ringing state at that moment (a snooze or a
            // dismissal in between).
            let when = if claim.trigger.kind == TriggerKind::Fire {
                claim.trigger.due_at.min(now)
            } else {
                claim.trigger.due_at
            };
            inflight.insert((when, *seq), claim);
        }
        if full {
            return Ok(Instant::now());
        }
        let idle = Instant::now() + cfg.idle_poll;
        // A due row that the claim skipped is locked by another engine's
        // claim in progress: look again shortly rather than at once.
        let soonest = Instant::now()
            + if none {
                Duration::from_millis(20)
            } else {
                Duration::ZERO
            };
        Ok(match ports.claims.next_due().await? {
            Some(due) => c
                .instant_of(due - signed(cfg.prefetch))
                .max(soonest)
                .min(idle),
            None => idle,
        })
    }

    async fn heartbeat(&self, clock: Option<DbClock>, inflight: &mut BTreeMap<Key, Claimed>) {
        let Some(c) = clock else { return };
        let tokens: Vec<LeaseToken> = inflight.values().map(|c| c.token).collect();
        match self
            .ports
            .claims
            .renew(tokens, c.now() + signed(self.config.lease))
            .await
        {
            Ok(lost) if lost.is_empty() => {}
            Ok(lost) => {
                tracing::warn!(
                    lost = lost.len(),
                    "leases lost before firing (rescued or cancelled); dropping them"
                );
                let lost: HashSet<LeaseToken> = lost.into_iter().collect();
                inflight.retain(|_, c| !lost.contains(&c.token));
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed; retrying at the next beat"),
        }
    }

    async fn stop(&self, inflight: BTreeMap<Key, Claimed>, clock: Option<DbClock>) {
        // The database's time, as everywhere else: the leases are judged by it.
        let now = clock.map_or_else(Timestamp::now, |c| c.now());
        let n = inflight.len();
        let release = async {
            // The right first, so that a slow release cannot keep a SQLite
            // standby waiting for a whole lease.
            let _ = self.ports.right.engine_unlease(self.holder).await;
            // Ending the leases now (one statement per 400 claims) makes
            // them claimable at any engine's next rescue, within a second;
            // releasing them one by one would take a transaction each.
            let tokens: Vec<LeaseToken> = inflight.into_values().map(|c| c.token).collect();
            let _ = self
                .ports
                .claims
                .renew(tokens, now - SignedDuration::from_secs(1))
                .await;
        };
        if tokio::time::timeout(self.config.shutdown_timeout, release)
            .await
            .is_err()
        {
            tracing::warn!("shutdown timed out releasing claims; their leases expire on their own");
        }
        tracing::info!(released = n, "engine stopped");
    }
}

/// The pauses between failed attempts: 100 ms doubling to 5 s, jittered so
/// that engines sharing a database do not retry in step. Each failure takes
/// the next pause; a success starts over.
#[derive(Default)]
struct Backoff(Option<backon::ExponentialBackoff>);

impl Backoff {
    const MAX: Duration = Duration::from_secs(5);

    fn next(&mut self) -> Duration {
        use backon::BackoffBuilder;
        self.0
            .get_or_insert_with(|| {
                backon::ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Self::MAX)
                    .with_jitter()
                    .without_max_times()
                    .build()
            })
            .next()
            .unwrap_or(Self::MAX)
    }

    fn reset(&mut self) {
        self.0 = None;
    }

    /// Whether the last attempt failed.
    fn failing(&self) -> bool {
        self.0.is_some()
    }
}

/// The `kind` label of a trigger: `fire`, `snooze`, `escalate` or
/// `expire` (never the snooze count or level: the label set stays fixed).
fn kind_label(kind: &TriggerKind) -> &'static str {
    match kind {
        TriggerKind::Fire => "fire",
        TriggerKind::Snooze(_) => "snooze",
        TriggerKind::Escalate(_) => "escalate",
        TriggerKind::Expire => "expire",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alarm_domain::ids::UserId;
    use alarm_domain::trigger::{OccurrenceRef, Trigger};
    use alarm_testkit::fixtures;

    fn claim(alarm: AlarmId, secs: i64, kind: TriggerKind) -> Claimed {
        let at = fixtures::at(secs);
        Claimed {
            trigger: Trigger {
                alarm,
                owner: UserId::generate(),
                occurrence: OccurrenceRef {
                    at,
                    local: at.to_zoned(jiff::tz::TimeZone::UTC).datetime(),
                },
                kind,
                due_at: at,
                alarm_version: alarm_domain::model::AlarmVersion::INITIAL,
            },
            token: LeaseToken::from_uuid(uuid::Uuid::now_v7()),
            lease_until: fixtures::at(secs + 30),
        }
    }

    #[test]
    fn claims_are_committed_in_even_chunks() {
        assert_eq!(even_chunk(1000), 334);
        assert_eq!(even_chunk(800), 400);
        assert_eq!(even_chunk(401), 201);
        assert_eq!(even_chunk(8000), 400);
        assert_eq!(even_chunk(1), 1);
    }

    #[test]
    fn a_batch_passes_over_the_alarms_a_batch_being_fired_holds() {
        let (a, b, c) = (
            AlarmId::generate(),
            AlarmId::generate(),
            AlarmId::generate(),
        );
        let inflight: BTreeMap<Key, Claimed> = [
            (a, 1, TriggerKind::Fire),
            (b, 2, TriggerKind::Fire),
            (a, 3, TriggerKind::Expire),
            (c, 4, TriggerKind::Fire),
            (b, 9, TriggerKind::Fire),
        ]
        .into_iter()
        .enumerate()
        .map(|(seq, (alarm, secs, kind))| {
            ((fixtures::at(secs), seq as u64), claim(alarm, secs, kind))
        })
        .collect();
        let alarms = |keys: Vec<Key>| -> Vec<AlarmId> {
            keys.iter().map(|k| inflight[k].trigger.alarm).collect()
        };
        // Nothing being fired: everything due, in due order, up to the limit.
        assert_eq!(
            alarms(next_batch(&inflight, fixtures::at(4), 10, |_| false)),
            [a, b, a, c]
        );
        assert_eq!(
            alarms(next_batch(&inflight, fixtures::at(4), 2, |_| false)),
            [a, b]
        );
        // `a` is being fired: both of its claims wait, the others go.
        assert_eq!(
            alarms(next_batch(&inflight, fixtures::at(4), 10, |x| *x == a)),
            [b, c]
        );
    }
}
