//! The delivery worker: claims due outbox rows under a lease, sends them concurrently (webhook or e-mail), and records each result with retries, dead letters and the failure policy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alarm_domain::ids::{AlarmId, UserId, WebhookId};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::{Alarm, Channel, User, WebhookRegistration};
use alarm_domain::ports::{
    AlarmStore, ClaimedSend, Clock, Outbox, OutboxItem, SendLease, SendResult, SendTopic,
    StoreError, UserStore,
};
use alarm_domain::services::Ports;
use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::FutureExt;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::email::{AlarmMail, Mailer, alarm_mail, disabled_mail};
use crate::webhook::{Attempt, WebhookSender, millis_since};

/// The first pause after a failed round, and the longest.
const STORE_RETRY_MIN: Duration = Duration::from_millis(400);
const STORE_RETRY_MAX: Duration = Duration::from_millis(6400);
/// Destination hosts, and accounts, remembered (their permits and pace)
/// before idle ones are forgotten.
const SHARES_REMEMBERED: usize = 4096;

/// How many claim budgets of rows a sender holds ahead of their instant.
/// A second's rings are released together at their instant: held ahead,
/// they leave the store in one claim and, at the instant, need only one
/// confirming read before their sends start, where claimed when due they
/// would leave a budget at a time, each claim after the last one's results
/// were recorded. Eight, so that with the half second of
/// `DELIVERY_AHEAD_MS` a sender can hold the next second's rows (claimed
/// half a second before the one being held is released) besides the rows
/// of that second: both fit up to about 2,000 rows a second at the default
/// budget.
pub const AHEAD_BUDGETS: usize = 8;

/// Rows held ahead that are confirmed and sent together at their instant.
const RELEASE_PIECE: usize = 256;

/// How the worker behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchConfig {
    /// The claim budget: rows claimed and not yet recorded (and the most one
    /// claim or one `round` takes).
    pub batch: u32,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// Webhook sends in flight at once to one destination host (`host:port`):
    /// a slow receiver holds at most this many of `concurrency`.
    pub host_concurrency: usize,
    /// Webhook sends in flight at once for one account, all its
    /// registrations together: however many slow receivers one account
    /// points at, it holds at most this many of `concurrency`. (E-mail goes
    /// through the operator's one relay: bounded by `concurrency` only.)
    pub account_concurrency: usize,
    /// How long a claim is held; a killed worker's rows are sent again after it.
    pub lease: Duration,
    /// How far ahead of their instant the rows of prepared rings are
    /// claimed and held ready, to be sent at the instant once the store
    /// confirms them (zero: claimed when due). At most
    /// [`AHEAD_BUDGETS`] claim budgets are held so.
    pub ahead: Duration,
    /// How often an idle worker looks for due rows (a poke wakes it sooner).
    pub idle_poll: Duration,
    /// Attempts before a row is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay (doubling, with jitter).
    pub retry_min: Duration,
    /// Longest retry delay, and the most a `Retry-After` is honoured for.
    pub retry_max: Duration,
    /// Consecutive dead deliveries that disable a registration.
    pub disable_after: u32,
    /// The longest the recorder holds results back while the rows released
    /// at an instant are being sent, once per release (see
    /// [`Dispatcher::record_all`]).
    pub record_hold: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            batch: 512,
            concurrency: 128,
            host_concurrency: 16,
            account_concurrency: 32,
            lease: Duration::from_secs(120),
            ahead: Duration::from_millis(1500),
            idle_poll: Duration::from_millis(200),
            max_attempts: 8,
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(3600),
            disable_after: 10,
            record_hold: Duration::from_millis(250),
        }
    }
}

impl DispatchConfig {
    /// Whether a claimed row can be sent and recorded inside its lease:
    /// a send starts only while one send `timeout` and a quarter of the
    /// lease are left (`lease_runs_out`; later, the row is given back
    /// unsent), and a row may first wait up to [`HOST_WAIT_MAX`] for its
    /// shares, plus a margin for its claim. The batch's size does not
    /// enter: rows that would wait past their lease are given back, never
    /// sent twice.
    pub fn fits_lease(&self, timeout: Duration) -> bool {
        timeout
            .saturating_add(self.lease / 4)
            .saturating_add(HOST_WAIT_MAX)
            .saturating_add(Duration::from_secs(3))
            < self.lease
    }
}

/// Counters for health output and benchmarks.
#[derive(Debug, Default)]
pub struct DispatchStats {
    /// Rows delivered.
    pub delivered: AtomicU64,
    /// Attempts that will be retried, and rows given back unsent (an open
    /// breaker, a busy host or account, a lease running out, a stop).
    pub retried: AtomicU64,
    /// Rows dead-lettered.
    pub dead: AtomicU64,
    /// Rounds that failed on the store.
    pub store_errors: AtomicU64,
    /// Rows claimed ahead of their instant.
    pub held_ahead: AtomicU64,
    /// Rows claimed ahead and withdrawn before their instant (an edit, a
    /// deletion): never sent.
    pub withdrawn: AtomicU64,
    /// Held rows found not visible yet when this host's clock said their
    /// instant had come (its clock ahead of the database's): each waited
    /// as long as the store said.
    pub early: AtomicU64,
    /// Times the recorder held results back for releases of held rows
    /// under way, until their sends ended or `record_hold` ran out.
    pub records_held: AtomicU64,
}

/// The ports the delivery worker takes, picked out of the apps' [`Ports`].
#[derive(Clone)]
pub struct DispatchPorts {
    /// The rows to send and where their results go.
    pub outbox: Arc<dyn Outbox>,
    /// The alarms the rows are about (names in payloads).
    pub alarms: Arc<dyn AlarmStore>,
    /// The owners (e-mail addresses).
    pub users: Arc<dyn UserStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl From<Ports> for DispatchPorts {
    fn from(ports: Ports) -> Self {
        Self {
            outbox: ports.outbox,
            alarms: ports.alarms,
            users: ports.users,
            clock: ports.clock,
        }
    }
}

/// The delivery worker.
pub struct Dispatcher {
    ports: DispatchPorts,
    config: DispatchConfig,
    webhooks: WebhookSender,
    mailer: Option<Mailer>,
    poke: Notify,
    stats: DispatchStats,
    /// The sends in flight, all hosts together (`concurrency`).
    permits: Semaphore,
    /// Each destination host's own permits and what it has queued.
    hosts: Mutex<HashMap<String, Arc<Share>>>,
    /// Each account's own webhook permits and what it has queued.
    accounts: Mutex<HashMap<UserId, Arc<Share>>>,
    /// Per (target, subject) being sent, the last lane admitted: its number
    /// and the signal that it has ended. A lane claimed while an older one
    /// of its key is still in flight waits for it, in the order of
    /// admission (which is the claim order).
    lanes: Mutex<HashMap<LaneKey, (u64, LaneEnd)>>,
    /// Numbers the admitted lanes.
    admitted: AtomicU64,
    /// The start of the hosts' and accounts' monotonic clock.
    epoch: Instant,
    /// Set when `run`'s stop comes: rows not yet started are given back.
    stopping: std::sync::atomic::AtomicBool,
}

/// The rows of one (target, subject), sent one after the other.
type LaneKey = (uuid::Uuid, Option<String>);

/// The end of a lane: when the rows it gave back are due again, if it gave
/// any back.
type LaneEnd = oneshot::Receiver<Option<Timestamp>>;

/// What sending a claim's rows needs besides the rows: loaded once per claim.
struct Context {
    hooks: HashMap<WebhookId, WebhookRegistration>,
    alarms: HashMap<AlarmId, Alarm>,
    users: HashMap<UserId, User>,
}

/// One attempt's result with its row as claimed, ready for `finish`, and
/// its duration for the metrics.
type Done = (ClaimedSend, SendResult, Duration);

/// One attempt's result and duration, before it is joined to its row.
type Outcome = (SendResult, Duration);

/// A store failure, with the rows claimed before it that were not prepared.
type Unprepared = (StoreError, Vec<ClaimedSend>);

/// One destination host's, or one account's, share of the sender.
struct Share {
    permits: Semaphore,
    /// Rows admitted for it and not yet sent.
    queued: AtomicUsize,
    /// Moving average of its answers' latency in ms (0 before the first).
    latency_ms: AtomicU64,
    /// When it last answered, or last became busy (ms on the dispatcher's
    /// monotonic epoch): a host that stopped answering is slow before any
    /// answer says so.
    progress_ms: AtomicU64,
}

impl Share {
    fn new(concurrency: usize) -> Self {
        Self {
            permits: Semaphore::new(concurrency.max(1)),
            queued: AtomicUsize::new(0),
            latency_ms: AtomicU64::new(0),
            progress_ms: AtomicU64::new(0),
        }
    }

    /// One send to it ended after `took` (an attempt that reached it).
    fn answered(&self, took: Duration, at_ms: u64) {
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX).max(1);
        // An update lost to a concurrent one only skips a sample.
        let old = self.latency_ms.load(Ordering::Relaxed);
        let new = if old == 0 { ms } else { (old * 7 + ms) / 8 };
        self.latency_ms.store(new, Ordering::Relaxed);
        self.progress_ms.store(at_ms, Ordering::Relaxed);
    }

    /// Its pace per wave of sends: the measured latency, or how long it
    /// has been busy without an answer if that is longer.
    fn pace_ms(&self, queued: usize, at_ms: u64) -> u64 {
        let latency = self.latency_ms.load(Ordering::Relaxed);
        if queued == 0 {
            return latency;
        }
        latency.max(at_ms.saturating_sub(self.progress_ms.load(Ordering::Relaxed)))
    }
}

/// An admitted lane's rows in its host's and account's queues. Each row
/// leaves them when it is done (sent or given back); whatever has not left
/// when the lane is dropped (a panic unwinding it, a stop) leaves then, so
/// the counts never leak.
struct InQueue {
    shares: Vec<Arc<Share>>,
    left: AtomicUsize,
}

impl InQueue {
    /// Counts `rows` into every one of `shares`.
    fn enter(shares: Vec<Arc<Share>>, rows: usize, at_ms: u64) -> Self {
        for share in &shares {
            if share.queued.fetch_add(rows, Ordering::Relaxed) == 0 {
                share.progress_ms.store(at_ms, Ordering::Relaxed);
            }
        }
        Self {
            shares,
            left: AtomicUsize::new(rows),
        }
    }

    /// One row is done.
    fn leave_one(&self) {
        if self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            for share in &self.shares {
                share.queued.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for InQueue {
    fn drop(&mut self) {
        let left = *self.left.get_mut();
        for share in &self.shares {
            share.queued.fetch_sub(left, Ordering::Relaxed);
        }
    }
}

/// A row being sent: it leaves its lane's queues however this ends.
struct Leaving<'a>(&'a InQueue);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.leave_one();
    }
}

/// Whether `more` rows for a host (or an account) join its queue, or how
/// long to defer them:
/// always while it has fewer rows queued than permits (rows admitted by a
/// claim take their permits only later, so the queue is what counts);
/// otherwise only if, at its pace (ms per wave of `concurrency` sends), the
/// last would start within [`HOST_WAIT_MAX`]. A deferral lasts about until
/// the queue has drained.
fn share_admits(
    queued: usize,
    more: usize,
    concurrency: usize,
    pace_ms: u64,
) -> Result<(), Duration> {
    if queued < concurrency.max(1) {
        return Ok(());
    }
    let wait = drain_wait(queued + more, concurrency, pace_ms);
    if wait > HOST_WAIT_MAX {
        return Err(deferral(wait));
    }
    Ok(())
}

/// How long a busy host's rows are deferred, given the wait ahead of them:
/// about until its queue has drained, the least when that is short.
fn deferral(wait: Duration) -> Duration {
    if wait > HOST_WAIT_MAX {
        wait.clamp(HOST_DEFER_MIN, HOST_DEFER_MAX)
    } else {
        HOST_DEFER_MIN
    }
}

/// How long `queued` rows take to leave a host at its pace (ms per wave of
/// `concurrency` sends).
fn drain_wait(queued: usize, concurrency: usize, pace_ms: u64) -> Duration {
    let waves = u64::try_from(queued.div_ceil(concurrency.max(1))).unwrap_or(u64::MAX);
    Duration::from_millis(pace_ms.saturating_mul(waves))
}

/// The share kept under `key` in `map`, made with `concurrency` permits if
/// new. Idle shares are forgotten once many were seen, so the map stays
/// bounded by the hosts and accounts with rows in flight.
fn share_of<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Arc<Share>>>,
    key: K,
    concurrency: usize,
) -> Arc<Share> {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= SHARES_REMEMBERED && !map.contains_key(&key) {
        map.retain(|_, s| s.queued.load(Ordering::Relaxed) > 0 || Arc::strong_count(s) > 1);
    }
    map.entry(key)
        .or_insert_with(|| Arc::new(Share::new(concurrency)))
        .clone()
}

/// `at` plus `wait`, saturating.
fn after(at: Timestamp, wait: Duration) -> Timestamp {
    at.checked_add(SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

/// The longest a claimed row waits for its host's and account's permits
/// before it is deferred instead (its lease keeps running while it waits,
/// and the claim budget is shared with every other host and account).
const HOST_WAIT_MAX: Duration = Duration::from_secs(2);
/// The bounds of a busy host's (or account's) deferral: about when its
/// queue has drained.
const HOST_DEFER_MIN: Duration = Duration::from_secs(1);
const HOST_DEFER_MAX: Duration = Duration::from_secs(120);

/// What the sending tasks share with `run`: the rows claimed and not yet
/// recorded, the rows held ahead of their instant, the signal at each
/// change, and where results go.
#[derive(Clone)]
struct Pipe {
    outstanding: Arc<AtomicUsize>,
    ahead: Arc<AtomicUsize>,
    recorded: Arc<Notify>,
    results: mpsc::UnboundedSender<Vec<Done>>,
    releases: Arc<Releases>,
}

/// The releases of held rows under way, numbered as they start: the
/// recorder waits for those it has not waited for yet (see
/// [`Dispatcher::record_all`]), so that an instant's sends do not share
/// the cores with its records.
#[derive(Default)]
struct Releases {
    under_way: Mutex<Vec<Arc<Release>>>,
    started: AtomicU64,
}

/// One release of held rows at their instant: what it still has in
/// flight, and a signal when nothing is left.
struct Release {
    number: u64,
    rows: AtomicUsize,
    done: Notify,
}

/// `n` rows counted in a release until this is dropped, however its
/// holder ends (a panic included), so a count never outlives its rows.
struct Counted {
    release: Arc<Release>,
    n: usize,
}

impl Counted {
    fn new(release: &Arc<Release>, n: usize) -> Self {
        release.rows.fetch_add(n, Ordering::AcqRel);
        Self {
            release: release.clone(),
            n,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.n > 0 && self.release.rows.fetch_sub(self.n, Ordering::AcqRel) == self.n {
            self.release.done.notify_one();
        }
    }
}

impl Releases {
    /// Starts a release. The guard counts it as one row until it has
    /// confirmed and launched its last piece, so its count does not fall
    /// to nought between pieces.
    fn begin(&self) -> Counted {
        let release = Arc::new(Release {
            number: self.started.fetch_add(1, Ordering::Relaxed) + 1,
            rows: AtomicUsize::new(0),
            done: Notify::new(),
        });
        let counted = Counted::new(&release, 1);
        let mut under_way = self
            .under_way
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        under_way.retain(|r| r.rows.load(Ordering::Acquire) > 0);
        under_way.push(release);
        counted
    }

    /// The releases still in flight numbered after `after`.
    fn since(&self, after: u64) -> Vec<Arc<Release>> {
        let mut under_way = self
            .under_way
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        under_way.retain(|r| r.rows.load(Ordering::Acquire) > 0);
        under_way
            .iter()
            .filter(|r| r.number > after)
            .cloned()
            .collect()
    }
}

/// The rows one task holds ahead of their instant, counted in the
/// pipeline's `ahead` until handed over to sending (then counted as
/// outstanding until recorded) or forgotten (withdrawn); however the task
/// ends, a panic included, what it still counts leaves with it, so a stop
/// is never kept waiting.
struct Held<'a> {
    left: usize,
    pipe: &'a Pipe,
}

impl Held<'_> {
    /// `n` rows go to sending: outstanding first, so that `run` never sees
    /// both counts empty while they move.
    fn hand_over(&mut self, n: usize) {
        self.pipe.outstanding.fetch_add(n, Ordering::AcqRel);
        self.forget(n);
    }

    /// `n` rows are done with unsent and unrecorded.
    fn forget(&mut self, n: usize) {
        self.left -= n;
        self.pipe.ahead.fetch_sub(n, Ordering::AcqRel);
        self.pipe.recorded.notify_one();
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.left > 0 {
            self.forget(self.left);
        }
    }
}

/// A claimed batch, admitted: the lanes to send and the rows deferred
/// because their host or account is busy (already judged).
struct Claimed {
    count: usize,
    context: Arc<Context>,
    lanes: Vec<Lane>,
    deferred: Vec<Done>,
}

/// Rows of one (target, subject), and for a webhook the host they go to
/// and their account, each capped.
struct Lane {
    key: LaneKey,
    host: Option<Arc<Share>>,
    account: Option<Arc<Share>>,
    /// Set when admitted: the rows counted in those shares' queues.
    queue: Option<InQueue>,
    rows: Vec<ClaimedSend>,
    /// When the claim's lease ends (the dispatcher's clock).
    until: Timestamp,
    /// Its place among the lanes of its key: its number, the end of the
    /// lane before it (if one was still in flight) and its own end.
    turn: Option<Turn>,
}

/// A lane's place in the order of its key.
struct Turn {
    number: u64,
    /// Ends with when the lane before gave rows back, if it did.
    after: Option<LaneEnd>,
    ended: oneshot::Sender<Option<Timestamp>>,
}

impl Dispatcher {
    /// The e-mail channel's mailer, when SMTP is configured (to follow a
    /// rotated password).
    pub fn mailer(&self) -> Option<&Mailer> {
        self.mailer.as_ref()
    }

    /// A worker over `ports` (its outbox, alarms and users).
    pub fn new(
        ports: Ports,
        config: DispatchConfig,
        webhooks: WebhookSender,
        mailer: Option<Mailer>,
    ) -> Self {
        // Every outcome's series exists from the start, so `increase()`
        // sees the first dead letter too.
        for total in ["webhook_deliveries_total", "email_deliveries_total"] {
            for outcome in OUTCOMES {
                metrics::counter!(total, "outcome" => outcome).increment(0);
            }
        }
        crate::breaker::register_gauges();
        Self {
            ports: ports.into(),
            config,
            webhooks,
            mailer,
            poke: Notify::new(),
            stats: DispatchStats::default(),
            permits: Semaphore::new(config.concurrency.max(1)),
            hosts: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
            lanes: Mutex::new(HashMap::new()),
            admitted: AtomicU64::new(0),
            epoch: Instant::now(),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Wakes an idle worker now (new rows were committed in this process).
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// The counters.
    pub fn stats(&self) -> &DispatchStats {
        &self.stats
    }

    /// Sends until `stop` resolves, as a pipeline rather than in rounds:
    /// rows are claimed whenever a share of the claim budget
    /// (`DELIVERY_BATCH` rows claimed and not yet recorded) is free, each
    /// lane is sent on its own task, and a recorder task writes results in
    /// batches as they come, while the next claim is already being made.
    /// A slow receiver therefore holds its own rows only, never a round of
    /// everyone's. On `stop` no more is claimed, and what is in flight is
    /// finished and recorded (cut short, those rows would only be sent again
    /// after their lease).
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let budget = (self.config.batch as usize).max(1);
        // Small claims cost a query each; wait for an eighth of the budget.
        let least = budget.div_ceil(8);
        // Rows claimed and not yet recorded, and a signal at each record.
        let outstanding = Arc::new(AtomicUsize::new(0));
        let recorded = Arc::new(Notify::new());
        let (results, inbox) = mpsc::unbounded_channel::<Vec<Done>>();
        let releases = Arc::new(Releases::default());
        let mut recorder = tokio::spawn(self.clone().record_all(
            inbox,
            budget,
            outstanding.clone(),
            recorded.clone(),
            releases.clone(),
        ));
        let pipe = Pipe {
            outstanding: outstanding.clone(),
            ahead: Arc::new(AtomicUsize::new(0)),
            recorded: recorded.clone(),
            results: results.clone(),
            releases,
        };
        let mut next_claim = tokio::time::Instant::now();
        let mut stopping = false;
        // While the store fails, claims are retried after growing, jittered
        // pauses (so many workers do not hammer a recovering database in
        // step); the first success starts the sequence over.
        let mut failing: Option<backon::ExponentialBackoff> = None;
        loop {
            let held = outstanding.load(Ordering::Acquire);
            if stopping && held == 0 && pipe.ahead.load(Ordering::Acquire) == 0 {
                break;
            }
            let room = budget.saturating_sub(held);
            let may_claim = !stopping && (room >= least || held == 0);
            if may_claim && tokio::time::Instant::now() >= next_claim {
                let started = Instant::now();
                let claimed = self.claim(room).await;
                stage_took("claim", started);
                match claimed {
                    Ok(None) => {
                        failing = None;
                        self.hold_ahead(&pipe).await;
                        next_claim = tokio::time::Instant::now() + self.idle_pause().await;
                    }
                    Ok(Some(claimed)) => {
                        failing = None;
                        outstanding.fetch_add(claimed.count, Ordering::AcqRel);
                        let short = claimed.count < room;
                        self.launch(claimed, &results, None);
                        // After the lanes are on their way: a short claim
                        // takes what is prepared for the next instants and
                        // asks the store when the next row is due.
                        next_claim = tokio::time::Instant::now();
                        if short {
                            self.hold_ahead(&pipe).await;
                            next_claim += self.idle_pause().await;
                        }
                    }
                    Err((e, rows)) => {
                        self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                        let given_back = rows.len();
                        if given_back > 0 {
                            // Claimed, then what they need failed to load:
                            // given back now rather than left leased.
                            outstanding.fetch_add(given_back, Ordering::AcqRel);
                            let _ = results.send(self.unprepared(rows));
                        }
                        let pause = failing
                            .get_or_insert_with(|| {
                                ExponentialBuilder::default()
                                    .with_min_delay(STORE_RETRY_MIN)
                                    .with_max_delay(STORE_RETRY_MAX)
                                    .with_jitter()
                                    .without_max_times()
                                    .build()
                            })
                            .next()
                            .unwrap_or(STORE_RETRY_MAX);
                        if given_back > 0 {
                            tracing::warn!(error = %e, rows = given_back, retry_in_ms = pause.as_millis(), "loading what claimed deliveries need failed; they are given back");
                        } else {
                            tracing::warn!(error = %e, retry_in_ms = pause.as_millis(), "outbox claim failed");
                        }
                        next_claim = tokio::time::Instant::now() + pause;
                    }
                }
                continue;
            }
            tokio::select! {
                () = &mut stop, if !stopping => {
                    stopping = true;
                    self.stopping.store(true, Ordering::Relaxed);
                }
                // Only a panic ends the recorder while results can come:
                // nothing would be recorded any more.
                _ = &mut recorder => {
                    tracing::error!("the delivery recorder stopped; the dispatcher stops (claimed rows go out again after their lease)");
                    return;
                }
                // Notify keeps one wake-up for a waiter that comes later:
                // a record made between the check above and here is seen.
                () = recorded.notified() => {}
                () = self.poke.notified(), if failing.is_none() => {
                    next_claim = tokio::time::Instant::now();
                }
                () = tokio::time::sleep_until(next_claim), if may_claim => {}
            }
        }
        drop((results, pipe));
        let _ = recorder.await;
    }

    /// Sends a claimed batch: its deferred rows to the recorder, each lane
    /// on a task of its own.
    /// Rows of a `release` are counted in it until their lane ends.
    fn launch(
        self: &Arc<Self>,
        claimed: Claimed,
        results: &mpsc::UnboundedSender<Vec<Done>>,
        release: Option<&Arc<Release>>,
    ) {
        if !claimed.deferred.is_empty() {
            let _ = results.send(claimed.deferred);
        }
        for lane in claimed.lanes {
            let me = Arc::clone(self);
            let context = claimed.context.clone();
            let results = results.clone();
            let counted = release.map(|r| Counted::new(r, lane.rows.len()));
            // Each row's attempt catches its own panic; if
            // the rest of a lane panicked, its rows are
            // given back (counted as recorded, so that
            // `stop` still ends). The task owns the lane's
            // rows throughout, so they are at hand either way.
            let mut lane = lane;
            tokio::spawn(async move {
                let sent = std::panic::AssertUnwindSafe(me.send_lane(&mut lane, &context))
                    .catch_unwind()
                    .await;
                let outcomes = sent.unwrap_or_else(|_| {
                    tracing::error!(
                        rows = lane.rows.len(),
                        "a delivery lane panicked; its rows are given back"
                    );
                    let now = me.ports.clock.now();
                    lane.rows
                        .iter()
                        .map(|_| unsent(now, "its lane failed"))
                        .collect()
                });
                let _ = results.send(joined(lane.rows, outcomes));
                // Only after the results are in the recorder's inbox: the
                // recorder, woken by the count reaching nought, takes them
                // with the rest.
                drop(counted);
            });
        }
    }

    /// Claims what is prepared to take effect within `ahead` (while fewer
    /// than [`AHEAD_BUDGETS`] claim budgets are held so) and holds it on a
    /// task of its own until its instant.
    async fn hold_ahead(self: &Arc<Self>, pipe: &Pipe) {
        if self.config.ahead.is_zero() || self.stopping.load(Ordering::Relaxed) {
            return;
        }
        let most = (self.config.batch as usize).max(1) * AHEAD_BUDGETS;
        let room = most.saturating_sub(pipe.ahead.load(Ordering::Acquire));
        if room == 0 {
            return;
        }
        let ahead = SignedDuration::try_from(self.config.ahead).unwrap_or(SignedDuration::ZERO);
        // The lease covers the wait for the instant besides the send.
        let until = after(
            self.ports.clock.now(),
            self.config.ahead + self.config.lease,
        );
        let limit = u32::try_from(room).unwrap_or(u32::MAX);
        let started = Instant::now();
        let claimed = self.ports.outbox.claim_ahead(ahead, until, limit).await;
        stage_took("claim_ahead", started);
        match claimed {
            Ok(rows) if rows.is_empty() => {}
            Ok(rows) => {
                pipe.ahead.fetch_add(rows.len(), Ordering::AcqRel);
                self.stats
                    .held_ahead
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                tokio::spawn(Arc::clone(self).hold(rows, until, pipe.clone()));
            }
            Err(e) => {
                self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "claiming prepared deliveries ahead of their instant failed; they are claimed when due");
            }
        }
    }

    /// Holds rows claimed ahead until their instant by this dispatcher's
    /// clock, then releases those due (see [`Dispatcher::release`]); on a
    /// stop, gives back what is still held, due at its instant.
    async fn hold(self: Arc<Self>, mut rows: Vec<ClaimedSend>, until: Timestamp, pipe: Pipe) {
        let mut held = Held {
            left: rows.len(),
            pipe: &pipe,
        };
        rows.sort_by_key(|c| (c.item.due, c.item.message, c.item.target));
        while let Some(first) = rows.first() {
            if !self.wait_until(first.item.due).await {
                self.give_all_back(rows, &mut held);
                return;
            }
            let now = self.ports.clock.now();
            let later = rows.split_off(rows.partition_point(|c| c.item.due <= now));
            let due = std::mem::replace(&mut rows, later);
            // In pieces: the first piece's sends start while the next is
            // confirmed, instead of after every row of the instant was.
            let mut due = due.into_iter().peekable();
            let release = pipe.releases.begin();
            while due.peek().is_some() {
                let piece = due.by_ref().take(RELEASE_PIECE).collect();
                self.release(piece, until, &mut held, &release.release)
                    .await;
            }
        }
    }

    /// Sleeps until `due` by this dispatcher's clock, in steps of at most
    /// the idle poll (so a stop is seen, and a test's clock moved by hand).
    /// False when the worker is stopping.
    async fn wait_until(&self, due: Timestamp) -> bool {
        loop {
            if self.stopping.load(Ordering::Relaxed) {
                return false;
            }
            let left = due.duration_since(self.ports.clock.now());
            if !left.is_positive() {
                return true;
            }
            let step = Duration::try_from(left).unwrap_or(Duration::ZERO);
            tokio::time::sleep(step.min(self.config.idle_poll)).await;
        }
    }

    /// Sends rows held ahead whose instant has come, once the store
    /// confirms each is still held and visible by its clock: a row
    /// withdrawn meanwhile (an edit, a deletion) is dropped unsent, and
    /// one not visible yet (this host's clock ahead of the store's) waits
    /// as long as the store says. The registrations are loaded now, not
    /// at the claim, so a secret rotated meanwhile signs.
    async fn release(
        self: &Arc<Self>,
        mut waiting: Vec<ClaimedSend>,
        until: Timestamp,
        held: &mut Held<'_>,
        release: &Arc<Release>,
    ) {
        while !waiting.is_empty() {
            if self.stopping.load(Ordering::Relaxed) {
                self.give_all_back(waiting, held);
                return;
            }
            let tokens = waiting.iter().map(|c| c.token).collect();
            let started = Instant::now();
            let confirmed = self.ports.outbox.confirm(tokens).await;
            stage_took("confirm", started);
            let confirmed: HashMap<SendLease, SignedDuration> = match confirmed {
                Ok(confirmed) => confirmed.into_iter().collect(),
                Err(e) => {
                    self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "confirming prepared deliveries failed; they are given back");
                    self.give_all_back(waiting, held);
                    return;
                }
            };
            let (mut ready, mut early, mut gone) = (Vec::new(), Vec::new(), 0);
            let mut longest = SignedDuration::ZERO;
            for c in waiting {
                match confirmed.get(&c.token) {
                    None => gone += 1,
                    Some(wait) if wait.is_positive() => {
                        longest = longest.max(*wait);
                        early.push(c);
                    }
                    Some(_) => ready.push(c),
                }
            }
            if !early.is_empty() {
                self.stats
                    .early
                    .fetch_add(early.len() as u64, Ordering::Relaxed);
            }
            if gone > 0 {
                self.stats
                    .withdrawn
                    .fetch_add(gone as u64, Ordering::Relaxed);
                tracing::debug!(
                    rows = gone,
                    "prepared deliveries withdrawn before their instant; not sent"
                );
                held.forget(gone);
            }
            if !ready.is_empty() {
                let count = ready.len();
                // Handed over only once prepared: the rows then owe the
                // recorder a result each, which `launch` sees to (a panic
                // before leaves them counted here, and `Held` lets go).
                match self.prepare(ready, self.ports.clock.now(), until).await {
                    Ok(claimed) => {
                        held.hand_over(count);
                        self.launch(claimed, &held.pipe.results, Some(release));
                    }
                    Err((e, rows)) => {
                        self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "loading what prepared deliveries need failed; they are given back");
                        held.hand_over(count);
                        let _ = held.pipe.results.send(self.unprepared(rows));
                    }
                }
            }
            waiting = early;
            if !waiting.is_empty() {
                let step = Duration::try_from(longest).unwrap_or(Duration::ZERO);
                tokio::time::sleep(step.min(self.config.idle_poll)).await;
            }
        }
    }

    /// Gives back rows held ahead, unsent, due at their instant.
    fn give_all_back(&self, rows: Vec<ClaimedSend>, held: &mut Held<'_>) {
        if rows.is_empty() {
            return;
        }
        held.hand_over(rows.len());
        let back = rows
            .iter()
            .map(|c| self.give_back(c, c.item.due, "the worker is stopping"))
            .collect();
        let _ = held.pipe.results.send(joined(rows, back));
    }

    /// The recorder: writes results with one `finish` for whatever has come
    /// in since the last (at most `budget` rows), until every sender of
    /// results is gone.
    ///
    /// While releases of held rows are under way that it has not waited
    /// for yet, it first waits for their sends to end, at most
    /// `record_hold`, and then not again for those releases (one whose
    /// receiver is slow delays records once, and never the wait for a
    /// later instant's release): a record's work in the store and here
    /// would otherwise share the cores with the instant's sends, whose
    /// lateness is what holding ahead is for (measured: see
    /// docs/ARCHITECTURE.md, the dispatcher). The wait costs no second
    /// send: a send starts only while a quarter of its lease is left
    /// beyond one send timeout (`lease_runs_out`), so at least that
    /// quarter is left to record it when it ends.
    async fn record_all(
        self: Arc<Self>,
        mut inbox: mpsc::UnboundedReceiver<Vec<Done>>,
        budget: usize,
        outstanding: Arc<AtomicUsize>,
        recorded: Arc<Notify>,
        releases: Arc<Releases>,
    ) {
        // The newest release waited for.
        let mut waited_for = 0;
        while let Some(mut batch) = inbox.recv().await {
            let pending = releases.since(waited_for);
            if let Some(newest) = pending.iter().map(|r| r.number).max() {
                waited_for = newest;
                self.stats.records_held.fetch_add(1, Ordering::Relaxed);
                let ended = async {
                    for release in &pending {
                        // A signal left from before only loops once more.
                        while release.rows.load(Ordering::Acquire) > 0 {
                            release.done.notified().await;
                        }
                    }
                };
                let _ = tokio::time::timeout(self.config.record_hold, ended).await;
            }
            while batch.len() < budget {
                let Ok(more) = inbox.try_recv() else { break };
                batch.extend(more);
            }
            let count = batch.len();
            let started = Instant::now();
            let recorded_now = self.record(batch).await;
            stage_took("record", started);
            match recorded_now {
                // Rows it queued (fallbacks, a disabled registration's mail).
                Ok(true) => self.poke(),
                Ok(false) => {}
                Err(e) => {
                    self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "recording delivery results failed; those rows are sent again after their lease");
                }
            }
            outstanding.fetch_sub(count, Ordering::AcqRel);
            recorded.notify_one();
        }
    }

    /// How long an idle sender sleeps: until the earliest row not due yet
    /// (a ring prepared ahead of its instant, a retry) by the store's
    /// clock, at most the idle poll. A failed look falls back to the poll:
    /// the next claim reports the store's failure.
    async fn idle_pause(&self) -> Duration {
        let poll = self.config.idle_poll;
        match self.ports.outbox.next_due_in().await {
            Ok(Some(wait)) => Duration::try_from(wait).unwrap_or(Duration::ZERO).min(poll),
            Ok(None) | Err(_) => poll,
        }
    }

    /// One round, for tests and tools that drive the worker step by step:
    /// claim a batch, send all of it, record. Returns whether there may be
    /// more due right away (a full batch, or rows this round queued).
    ///
    /// # Errors
    /// Store failures (rows claimed before a failure to load what they need
    /// are given back due now when the store takes the record, else sent
    /// again after their lease).
    pub async fn round(&self) -> Result<bool, StoreError> {
        let claimed = match self.claim(self.config.batch as usize).await {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return Ok(false),
            Err((e, rows)) => {
                // Given back if the store takes the record; the load's
                // error is the one to report either way.
                let _ = self.record(self.unprepared(rows)).await;
                return Err(e);
            }
        };
        let full = claimed.count >= self.config.batch as usize;
        let context = &claimed.context;
        let mut done = claimed.deferred;
        let sent =
            futures_util::future::join_all(claimed.lanes.into_iter().map(|mut lane| async move {
                let outcomes = self.send_lane(&mut lane, context).await;
                joined(lane.rows, outcomes)
            }))
            .await;
        done.extend(sent.into_iter().flatten());
        Ok(self.record(done).await? || full)
    }

    /// Claims up to `limit` due rows, loads what sending them needs, and
    /// splits them into lanes, deferring those whose host or account is
    /// busy.
    ///
    /// # Errors
    /// The store's error, with the rows claimed when what they need failed
    /// to load (none when the claim itself failed): the caller gives them
    /// back unsent, due now, so they do not wait out their lease.
    async fn claim(&self, limit: usize) -> Result<Option<Claimed>, Unprepared> {
        let now = self.ports.clock.now();
        let until = after(now, self.config.lease);
        let limit = u32::try_from(limit.max(1)).unwrap_or(u32::MAX);
        let claims = self
            .ports
            .outbox
            .claim(now, until, limit)
            .await
            .map_err(|e| (e, Vec::new()))?;
        if claims.is_empty() {
            return Ok(None);
        }
        self.prepare(claims, now, until).await.map(Some)
    }

    /// Rows claimed but not prepared, each with a result that gives it back
    /// unsent and due now (no attempt counted).
    fn unprepared(&self, rows: Vec<ClaimedSend>) -> Vec<Done> {
        let now = self.ports.clock.now();
        let back = rows
            .iter()
            .map(|_| unsent(now, "the store failed"))
            .collect();
        joined(rows, back)
    }

    /// Loads what sending `claims` needs and splits them into lanes,
    /// deferring those whose host or account is busy; on a failure to load,
    /// the claims come back with the error.
    async fn prepare(
        &self,
        mut claims: Vec<ClaimedSend>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Claimed, Unprepared> {
        let count = claims.len();
        let context = match self.context(&claims).await {
            Ok(context) => Arc::new(context),
            Err(e) => return Err((e, claims)),
        };
        // The events of one alarm reach one receiver in the order they
        // were made: rows are taken oldest first (the claim's RETURNING has
        // no order), those of one (registration, alarm) are sent one after
        // the other, and different ones concurrently. A retried row still
        // arrives after newer ones that succeeded.
        claims.sort_by_key(|c| (c.item.due, c.item.message, c.item.target));
        let mut lanes: Vec<Lane> = Vec::new();
        let mut lane_of: HashMap<LaneKey, usize> = HashMap::new();
        for c in claims {
            let key = (c.item.target, subject(&c.item));
            let lane = *lane_of.entry(key.clone()).or_insert_with(|| {
                let host = self.host_of(&c.item, &context);
                lanes.push(Lane {
                    account: host.as_ref().map(|_| {
                        share_of(
                            &self.accounts,
                            c.item.owner,
                            self.config.account_concurrency,
                        )
                    }),
                    host,
                    queue: None,
                    key,
                    rows: Vec::new(),
                    until,
                    turn: None,
                });
                lanes.len() - 1
            });
            lanes[lane].rows.push(c);
        }
        let (lanes, deferred) = self.admit(lanes, now);
        Ok(Claimed {
            count,
            context,
            lanes,
            deferred,
        })
    }

    /// The capped host a row goes to: a webhook's `host:port` (e-mail goes
    /// through the one SMTP relay, bounded by the shared permits only).
    fn host_of(&self, item: &OutboxItem, context: &Context) -> Option<Arc<Share>> {
        let hook = context.hooks.get(&item.webhook()?)?;
        let key = crate::webhook::host_key(hook.url().as_url());
        Some(share_of(&self.hosts, key, self.config.host_concurrency))
    }

    /// The lane's host (if capped) and its account, each with its cap.
    fn shares<'a>(&self, lane: &'a Lane) -> impl Iterator<Item = (&'a Share, usize, &'static str)> {
        lane.host
            .as_deref()
            .map(|h| (h, self.config.host_concurrency, "host"))
            .into_iter()
            .chain(
                lane.account
                    .as_deref()
                    .map(|a| (a, self.config.account_concurrency, "account")),
            )
    }

    /// Queues each lane on its host and its account, or defers the whole
    /// lane (so its rows keep their order) when either is busy: not sent,
    /// no attempt counted, due again about when the busier queue has
    /// drained.
    fn admit(&self, lanes: Vec<Lane>, now: Timestamp) -> (Vec<Lane>, Vec<Done>) {
        let at_ms = self.epoch_ms();
        let mut admitted = Vec::with_capacity(lanes.len());
        let mut deferred = Vec::new();
        for lane in lanes {
            let busy = self
                .shares(&lane)
                .filter_map(|(share, cap, what)| {
                    let queued = share.queued.load(Ordering::Relaxed);
                    share_admits(queued, lane.rows.len(), cap, share.pace_ms(queued, at_ms))
                        .err()
                        .map(|wait| (wait, what, queued))
                })
                .max_by_key(|(wait, _, _)| *wait);
            if let Some((wait, what, queued)) = busy {
                let due = after(now, wait);
                let why = format!("its {what} is busy ({queued} deliveries queued)");
                let back = lane
                    .rows
                    .iter()
                    .map(|c| self.give_back(c, due, &why))
                    .collect();
                deferred.extend(joined(lane.rows, back));
                continue;
            }
            let shares = lane.host.iter().chain(&lane.account).cloned().collect();
            let mut lane = lane;
            lane.queue = Some(InQueue::enter(shares, lane.rows.len(), at_ms));
            admitted.push(self.take_turn(lane));
        }
        (admitted, deferred)
    }

    /// A permit of each of the lane's shares (its host's, its account's),
    /// or, when they kept the row waiting longer than [`HOST_WAIT_MAX`]
    /// (its lease runs meanwhile, and the claim budget it holds is
    /// everyone's), about when the busy one's queue will have drained.
    ///
    /// It waits on one share at a time holding nothing, and takes the
    /// others only if they are free at once (else it lets go and waits on
    /// the busy one): a row never holds a busy host's permit from other
    /// accounts while its own account is at its cap, nor its account's
    /// permit from the account's other receivers while its host is slow.
    async fn permits_of<'a>(
        &self,
        lane: &'a Lane,
    ) -> Result<Vec<tokio::sync::SemaphorePermit<'a>>, (Timestamp, &'static str)> {
        let shares: Vec<(&'a Share, usize, &'static str)> = self.shares(lane).collect();
        let deadline = tokio::time::Instant::now() + HOST_WAIT_MAX;
        let mut wait_on = 0;
        loop {
            let Some(&(share, cap, what)) = shares.get(wait_on) else {
                return Ok(Vec::new());
            };
            let Ok(first) = tokio::time::timeout_at(deadline, share.permits.acquire()).await else {
                let queued = share.queued.load(Ordering::Relaxed);
                let wait = deferral(drain_wait(
                    queued,
                    cap,
                    share.pace_ms(queued, self.epoch_ms()),
                ));
                return Err((after(self.ports.clock.now(), wait), what));
            };
            let mut held: Vec<_> = first.into_iter().collect();
            let mut busy = None;
            for (i, (other, _, _)) in shares.iter().enumerate() {
                if i == wait_on {
                    continue;
                }
                match other.permits.try_acquire() {
                    Ok(permit) => held.push(permit),
                    Err(tokio::sync::TryAcquireError::Closed) => {}
                    Err(tokio::sync::TryAcquireError::NoPermits) => {
                        busy = Some(i);
                        break;
                    }
                }
            }
            match busy {
                None => return Ok(held),
                Some(i) => wait_on = i,
            }
        }
    }

    /// Sends one lane's rows in order, each under its host's and account's
    /// permits (webhooks) and a shared one, after any older rows of the
    /// same lane still in flight. Once a row is given back unsent (its host
    /// or account kept it waiting, its lease
    /// is running out, the worker is stopping, or an older lane of the key
    /// gave rows back), the rest of the lane goes back with it, due at the
    /// same instant, and so do the lanes of the key waiting behind it: the
    /// key's rows keep their order when claimed again.
    async fn send_lane(&self, lane: &mut Lane, context: &Context) -> Vec<Outcome> {
        let mut turn = lane.turn.take();
        let mut back: Option<Timestamp> = None;
        if let Some(after) = turn.as_mut().and_then(|t| t.after.take()) {
            // Ended (saying whether it gave rows back), or dropped by a lane
            // that did not finish: either way it is no longer sending.
            back = after.await.ok().flatten();
        }
        let mut out = Vec::with_capacity(lane.rows.len());
        for c in &lane.rows {
            out.push(self.send_row(c, lane, context, &mut back).await);
        }
        if let Some(turn) = turn {
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            // No newer lane of the key was admitted: forget the key.
            if lanes.get(&lane.key).is_some_and(|(n, _)| *n == turn.number) {
                lanes.remove(&lane.key);
            }
            let _ = turn.ended.send(back);
        }
        out
    }

    /// One row of a lane: given back (see [`Dispatcher::send_lane`]) or
    /// attempted. `back` is when the lane's given-back rows are due again.
    async fn send_row(
        &self,
        c: &ClaimedSend,
        lane: &Lane,
        context: &Context,
        back: &mut Option<Timestamp>,
    ) -> Outcome {
        let _leaving = lane.queue.as_ref().map(Leaving);
        if let Some(due) = *back {
            return self.give_back(c, due, "an older row of its lane was given back");
        }
        if self.stopping.load(Ordering::Relaxed) {
            let now = self.ports.clock.now();
            *back = Some(now);
            return self.give_back(c, now, "the worker is stopping");
        }
        // Its host's and account's permits, then a shared one (held while
        // waiting for it: the shared permits are everyone's, in turn).
        let _held = match self.permits_of(lane).await {
            Ok(held) => held,
            Err((due, what)) => {
                *back = Some(due);
                return self.give_back(c, due, &format!("its {what} is busy"));
            }
        };
        let _shared = self.permits.acquire().await.ok();
        if self.lease_runs_out(lane.until) {
            let now = self.ports.clock.now();
            *back = Some(now);
            return self.give_back(c, now, "waited too long in this worker for its lease");
        }
        let attempted = std::panic::AssertUnwindSafe(self.attempt(c, context))
            .catch_unwind()
            .await;
        // A panic is a bug of the sender: counted as a failed attempt, so a
        // row that always makes it panic ends dead, not sent forever.
        let (result, took) = attempted.unwrap_or_else(|_| {
            tracing::error!(message = %c.item.message, target = %c.item.target, "the delivery attempt panicked");
            let failed = Attempt::Transient {
                code: None,
                retry_after: None,
                error: "the sender failed unexpectedly".to_owned(),
            };
            (self.judge(&c.item, failed, 0), Duration::ZERO)
        });
        // A breaker's refusal never reached its host.
        if !matches!(result, SendResult::Retry { counted: false, .. }) {
            for (share, _, _) in self.shares(lane) {
                share.answered(took, self.epoch_ms());
            }
        }
        (result, took)
    }

    /// A row given back unsent, due again at `due`, no attempt counted
    /// (if its lease already ran out, `finish` ignores it).
    fn give_back(&self, c: &ClaimedSend, due: Timestamp, why: &str) -> Outcome {
        self.stats.retried.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(message = %c.item.message, target = %c.item.target, why, "delivery given back unsent");
        unsent(due, why)
    }

    /// Gives an admitted lane its place after the last lane of its key
    /// still in flight. `run` admits its claims in claim order, on one
    /// task; rows held ahead are admitted by their holder at their
    /// instant, so a held ring goes before an older row of its key that a
    /// claim takes only after that instant (a row due just before, claimed
    /// late).
    fn take_turn(&self, mut lane: Lane) -> Lane {
        let number = self.admitted.fetch_add(1, Ordering::Relaxed);
        let (ended, end) = oneshot::channel();
        let after = self
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(lane.key.clone(), (number, end))
            .map(|(_, end)| end);
        lane.turn = Some(Turn {
            number,
            after,
            ended,
        });
        lane
    }

    /// Whether a send started now, and its recording, could outlast the
    /// claim's lease (a row that waited long for its lane or the shared
    /// permits): then a claim, this worker's too, could take it over.
    fn lease_runs_out(&self, until: Timestamp) -> bool {
        // One send at worst, then a quarter of the lease for its result to
        // be recorded: a row this process still holds is never claimed by
        // it again.
        let worst = self.webhooks.timeout().max(
            self.mailer
                .as_ref()
                .map_or(Duration::ZERO, Mailer::deadline),
        ) + self.config.lease / 4;
        after(self.ports.clock.now(), worst) >= until
    }

    /// Milliseconds since this dispatcher was made (its hosts' pace).
    fn epoch_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Records results (one `finish`) and counts them. Returns whether rows
    /// were queued by it (fallbacks, a disabled registration's e-mail).
    async fn record(&self, done: Vec<Done>) -> Result<bool, StoreError> {
        if done.is_empty() {
            return Ok(false);
        }
        let measured: Vec<(SendLease, Channel, &'static str, Duration)> = done
            .iter()
            .map(|(c, result, took)| (c.token, c.item.channel, outcome(result), *took))
            .collect();
        let results = done.into_iter().map(|(c, r, _)| (c, r)).collect();
        let report = self
            .ports
            .outbox
            .finish(self.ports.clock.now(), results, self.config.disable_after)
            .await?;
        // Counted once recorded, and only where this worker's lease held:
        // a row another worker took over is counted by that worker.
        for (token, channel, outcome, took) in measured {
            if !report.lost.contains(&token) {
                record_metrics(channel, outcome, took);
            }
        }
        if !report.lost.is_empty() {
            tracing::warn!(
                lost = report.lost.len(),
                "outbox leases ran out before the results were recorded; those rows were sent again by another worker"
            );
        }
        for id in &report.disabled {
            tracing::warn!(webhook = %id, "webhook disabled after consecutive failed deliveries; owner notified by e-mail");
        }
        Ok(report.fallbacks > 0 || !report.disabled.is_empty())
    }

    async fn context(&self, claims: &[ClaimedSend]) -> Result<Context, StoreError> {
        let mut hook_ids = Vec::new();
        let mut alarm_ids = Vec::new();
        let mut user_ids = Vec::new();
        for c in claims {
            let item = &c.item;
            match item.channel {
                Channel::Webhook => hook_ids.extend(item.webhook()),
                _ => {
                    user_ids.push(item.owner);
                    if item.topic == SendTopic::WebhookDisabled {
                        hook_ids.extend(WebhookId::from_uuid(item.target).ok());
                    }
                }
            }
            // A webhook whose data was fixed when its event was made names
            // the alarm already; e-mail and older rows load it.
            let fixed = item.channel == Channel::Webhook
                && item.payload.as_deref().is_some_and(|p| p.starts_with('{'));
            if let Some((alarm, _)) = item.alarm
                && !fixed
            {
                alarm_ids.push(alarm);
            }
        }
        alarm_ids.sort_unstable();
        alarm_ids.dedup();
        hook_ids.sort_unstable();
        hook_ids.dedup();
        user_ids.sort_unstable();
        user_ids.dedup();
        let hooks = if hook_ids.is_empty() {
            Vec::new()
        } else {
            self.ports.outbox.webhooks(hook_ids).await?
        };
        let alarms = if alarm_ids.is_empty() {
            Vec::new()
        } else {
            self.ports.alarms.get_many(alarm_ids).await?
        };
        let users = if user_ids.is_empty() {
            Vec::new()
        } else {
            self.ports.users.get_many(user_ids).await?
        };
        Ok(Context {
            hooks: hooks.into_iter().map(|h| (h.id(), h)).collect(),
            alarms: alarms.into_iter().map(|a| (a.id(), a)).collect(),
            users: users.into_iter().map(|u| (u.id(), u)).collect(),
        })
    }

    /// One delivery attempt in a span of its own, a child of the span that
    /// queued the row (its stored trace context), so a webhook caused by a
    /// request or a fire is part of that trace; the receiver gets the
    /// attempt's `traceparent`.
    async fn attempt(&self, claim: &ClaimedSend, context: &Context) -> Outcome {
        let item = &claim.item;
        let trace = alarm_telemetry::decide(claim.trace.as_deref());
        let span = alarm_telemetry::span!(
            trace,
            "delivery",
            otel.kind = "producer",
            channel = item.channel.as_str(),
            topic = item.topic.as_str(),
            message = %item.message,
            attempt = item.attempts + 1,
            outcome = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        let done = trace
            .scope(
                self.attempt_in_span(claim, context)
                    .instrument(span.clone()),
            )
            .await;
        span.record("outcome", outcome(&done.0));
        done
    }

    async fn attempt_in_span(&self, claim: &ClaimedSend, context: &Context) -> Outcome {
        let started = Instant::now();
        let item = &claim.item;
        let attempt = match item.channel {
            Channel::Webhook => self.send_webhook(item, context).await,
            Channel::Email => self.send_email(item, context).await,
            other => Attempt::Permanent {
                code: None,
                error: format!("the {} channel has no sender", other.as_str()),
            },
        };
        let latency_ms = millis_since(started);
        let result = self.judge(item, attempt, latency_ms);
        let took = started.elapsed();
        match &result {
            SendResult::Delivered { .. } => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            SendResult::Retry { error, counted, .. } => {
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                // Breaker deferrals come by the thousand while a host is down.
                if !counted {
                    tracing::debug!(message = %item.message, target = %item.target, error, "delivery deferred");
                    return (result, took);
                }
                tracing::info!(message = %item.message, target = %item.target, channel = item.channel.as_str(), attempts = item.attempts + 1, error, "delivery will be retried");
            }
            SendResult::Dead { error, .. } => {
                self.stats.dead.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(message = %item.message, target = %item.target, channel = item.channel.as_str(), attempts = item.attempts + 1, error, "delivery dead-lettered");
            }
        }
        (result, took)
    }

    /// The delay before retry number `attempt` (1-based): exponential from
    /// `retry_min`, capped at `retry_max`, with jitter so a receiver coming
    /// back is not hit by every retry in the same instant.
    fn backoff(&self, attempt: u32) -> Duration {
        ExponentialBuilder::default()
            .with_min_delay(self.config.retry_min)
            .with_max_delay(self.config.retry_max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.config.retry_max)
            // backon adds the jitter after its own cap.
            .min(self.config.retry_max)
    }

    fn judge(&self, item: &OutboxItem, attempt: Attempt, latency_ms: u64) -> SendResult {
        let now = self.ports.clock.now();
        let later = |d: Duration| after(now, d);
        match attempt {
            Attempt::Delivered { code } => SendResult::Delivered {
                code: Some(code),
                latency_ms,
            },
            Attempt::Rejected { wait } => SendResult::Retry {
                due: later(wait),
                counted: false,
                code: None,
                error: "circuit breaker open for this host; not sent".to_owned(),
                latency_ms,
            },
            Attempt::Permanent { code, error } => SendResult::Dead {
                code,
                error,
                latency_ms,
            },
            Attempt::Transient {
                code,
                retry_after,
                error,
            } => {
                let made = item.attempts + 1;
                if made >= self.config.max_attempts {
                    SendResult::Dead {
                        code,
                        error: format!("{error} (gave up after {made} attempts)"),
                        latency_ms,
                    }
                } else {
                    let wait = self
                        .backoff(made)
                        .max(retry_after.unwrap_or_default().min(self.config.retry_max));
                    SendResult::Retry {
                        due: later(wait),
                        counted: true,
                        code,
                        error,
                        latency_ms,
                    }
                }
            }
        }
    }

    async fn send_webhook(&self, item: &OutboxItem, context: &Context) -> Attempt {
        let Some(hook) = item.webhook().and_then(|id| context.hooks.get(&id)) else {
            return Attempt::Permanent {
                code: None,
                error: "the registration no longer exists".to_owned(),
            };
        };
        if !hook.active() && item.topic != SendTopic::Test {
            return Attempt::Permanent {
                code: None,
                error: "the registration is disabled".to_owned(),
            };
        }
        let now = self.ports.clock.now();
        let body = payload(item, context, now);
        self.webhooks
            .send(hook, &item.message.to_string(), body, now)
            .await
    }

    async fn send_email(&self, item: &OutboxItem, context: &Context) -> Attempt {
        let Some(mailer) = &self.mailer else {
            return Attempt::Permanent {
                code: None,
                error: "no SMTP server is configured".to_owned(),
            };
        };
        let Some(user) = context.users.get(&item.owner) else {
            return Attempt::Permanent {
                code: None,
                error: "the recipient no longer exists".to_owned(),
            };
        };
        if !user.receives_email() {
            return Attempt::Permanent {
                code: None,
                error: "the recipient's address is not verified".to_owned(),
            };
        }
        let mail = match (item.topic, item.alarm) {
            (SendTopic::Alarm(event), Some((alarm, occurrence))) => {
                let alarm = context.alarms.get(&alarm);
                alarm_mail(&AlarmMail {
                    name: alarm.map(|a| a.name().as_str()),
                    time_zone: alarm.map(|a| a.time_zone().as_str()),
                    local: occurrence.local,
                    at: occurrence.at,
                    event: event.as_str(),
                    fallback: item.fallback,
                })
            }
            (SendTopic::WebhookDisabled, _) => {
                let hook = WebhookId::from_uuid(item.target)
                    .ok()
                    .and_then(|id| context.hooks.get(&id));
                disabled_mail(
                    &hook.map_or_else(|| "(deleted)".to_owned(), |h| h.url().redacted()),
                    hook.map_or(0, WebhookRegistration::failure_count),
                )
            }
            _ => {
                return Attempt::Permanent {
                    code: None,
                    error: format!("nothing to e-mail for {}", item.topic.as_str()),
                };
            }
        };
        // lettre's timeout is per socket operation; this bounds the whole
        // conversation, so a send started inside its lease ends inside it.
        let sent =
            tokio::time::timeout(mailer.deadline(), mailer.send(user.email().as_str(), &mail))
                .await
                .unwrap_or_else(|_| {
                    Err(crate::email::MailFailure {
                        transient: true,
                        error: "SMTP conversation timed out".to_owned(),
                    })
                });
        match sent {
            Ok(()) => Attempt::Delivered { code: 250 },
            Err(f) if f.transient => Attempt::Transient {
                code: None,
                retry_after: None,
                error: f.error,
            },
            Err(f) => Attempt::Permanent {
                code: None,
                error: f.error,
            },
        }
    }
}

/// A row's result when it was not sent: due again at `due`, no attempt
/// counted, `why` recorded.
fn unsent(due: Timestamp, why: &str) -> Outcome {
    let back = SendResult::Retry {
        due,
        counted: false,
        code: None,
        error: format!("{why}; not sent"),
        latency_ms: 0,
    };
    (back, Duration::ZERO)
}

/// Each row with its outcome, in order (one outcome per row).
fn joined(rows: Vec<ClaimedSend>, outcomes: Vec<Outcome>) -> Vec<Done> {
    debug_assert_eq!(rows.len(), outcomes.len());
    rows.into_iter()
        .zip(outcomes)
        .map(|(c, (result, took))| (c, result, took))
        .collect()
}

/// The `outcome` label of an attempt's result.
fn outcome(result: &SendResult) -> &'static str {
    match result {
        SendResult::Delivered { .. } => OUTCOMES[0],
        SendResult::Retry { counted: false, .. } => OUTCOMES[2],
        SendResult::Retry { .. } => OUTCOMES[1],
        SendResult::Dead { .. } => OUTCOMES[3],
    }
}

/// The `outcome` label values of the delivery counters.
const OUTCOMES: [&str; 4] = ["delivered", "retry", "deferred", "dead"];

/// `webhook_deliveries_total` / `email_deliveries_total` by outcome
/// (`delivered`, `retry`, `deferred`: given back unsent by an open breaker,
/// a busy host, a running-out lease, a stop or a failed load of what the
/// rows need, `dead`) and the attempt's
/// `*_delivery_duration_seconds`; a deferral made no attempt, so it adds no
/// duration.
fn record_metrics(channel: Channel, outcome: &'static str, took: Duration) {
    let (total, duration) = match channel {
        Channel::Webhook => (
            "webhook_deliveries_total",
            "webhook_delivery_duration_seconds",
        ),
        Channel::Email => ("email_deliveries_total", "email_delivery_duration_seconds"),
        _ => return,
    };
    metrics::counter!(total, "outcome" => outcome).increment(1);
    if outcome != OUTCOMES[2] {
        metrics::histogram!(duration).record(took.as_secs_f64());
    }
}

/// The `stage` label values of `delivery_stage_duration_seconds`.
pub const STAGES: [&str; 4] = ["claim", "claim_ahead", "confirm", "record"];

/// How long one of the sender's steps against the store took, from
/// `started`: a claim (with the loading of what its rows need), a claim
/// ahead, a confirmation of held rows, or the recording of a batch of
/// results. Claims and records each run one at a time per worker, so the
/// rate of their `_sum` is the share of the time that step was busy: near
/// 1, it is what bounds the worker's deliveries per second.
fn stage_took(stage: &'static str, started: Instant) {
    debug_assert!(STAGES.contains(&stage));
    metrics::histogram!("delivery_stage_duration_seconds", "stage" => stage)
        .record(started.elapsed().as_secs_f64());
}

/// The alarm a row is about, if any: a ring's, or the one its event data
/// names (rows of one alarm to one target are sent in order).
fn subject(item: &OutboxItem) -> Option<String> {
    if let Some((alarm, _)) = item.alarm {
        return Some(alarm.to_string());
    }
    let data: serde_json::Value = serde_json::from_str(item.payload.as_deref()?).ok()?;
    data["alarm_id"].as_str().map(str::to_owned)
}

/// The webhook body: `{type, timestamp, data}` as the Standard Webhooks
/// spec suggests; `data.delivery_id` equals the `webhook-id` header. An
/// alarm event's data was fixed when the event was made (the row's
/// payload); the rest is built now.
fn payload(item: &OutboxItem, context: &Context, now: Timestamp) -> Vec<u8> {
    if let Some(body) = item
        .payload
        .as_deref()
        .and_then(|stored| around_stored(item, stored, now))
    {
        return body;
    }
    let fixed = item
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .filter(serde_json::Value::is_object);
    let data = match (fixed, item.alarm) {
        (Some(mut data), _) => {
            data["delivery_id"] = item.message.to_string().into();
            data
        }
        (None, Some((alarm_id, occurrence))) => {
            let alarm = context.alarms.get(&alarm_id);
            serde_json::json!({
                "delivery_id": item.message.to_string(),
                "alarm_id": alarm_id.to_string(),
                "alarm_name": alarm.map(|a| a.name().as_str()),
                "time_zone": alarm.map(|a| a.time_zone().as_str()),
                "occurrence_at": occurrence.at.to_string(),
                "local_time": occurrence.local.to_string(),
            })
        }
        (None, None) => serde_json::json!({
            "delivery_id": item.message.to_string(),
            "webhook_id": item.target.to_string(),
        }),
    };
    serde_json::to_vec(&serde_json::json!({
        "type": item.topic.as_str(),
        "timestamp": now.to_string(),
        "data": data,
    }))
    .unwrap_or_default()
}

/// The body of a row whose data was fixed when its event was made,
/// written around the stored text instead of parsed into a tree and
/// serialised again (every send of a ring goes this way, and the tree's
/// allocations showed in the worker's profile). `None`, for the general
/// path, unless the stored text is one well-formed JSON object whose
/// members' names need no unescaping and none of which is `delivery_id`
/// ([`an_object_without_id`]). The values go out as stored: serde_json
/// wrote them (`sending::event_data`), so they are what it would write
/// again.
fn around_stored(item: &OutboxItem, stored: &str, now: Timestamp) -> Option<Vec<u8>> {
    use std::io::Write as _;
    let inner = stored.trim_start().strip_prefix('{')?;
    if !an_object_without_id(stored) {
        return None;
    }
    let mut body = Vec::with_capacity(stored.len() + 160);
    body.extend_from_slice(b"{\"type\":");
    serde_json::to_writer(&mut body, item.topic.as_str()).ok()?;
    // An RFC 3339 instant and a UUID need no escaping.
    write!(
        body,
        ",\"timestamp\":\"{now}\",\"data\":{{\"delivery_id\":\"{}\"",
        item.message
    )
    .ok()?;
    if !inner.trim_start().starts_with('}') {
        body.push(b',');
    }
    body.extend_from_slice(inner.as_bytes());
    body.push(b'}');
    Some(body)
}

/// Whether `text` is one JSON object none of whose members is named
/// `delivery_id`, read without building it: names are borrowed from the
/// text (one with an escape is refused, so no spelling of the name slips
/// by), values skipped.
fn an_object_without_id(text: &str) -> bool {
    struct Members;
    impl<'de> serde::de::Visitor<'de> for Members {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object without a delivery_id")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(name) = map.next_key::<&'de str>()? {
                if name == "delivery_id" {
                    return Err(serde::de::Error::custom("it has a delivery_id"));
                }
                map.next_value::<serde::de::IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut read = serde_json::Deserializer::from_str(text);
    serde::Deserializer::deserialize_map(&mut read, Members).is_ok() && read.end().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorder waits for each release once: a release still in flight
    /// (a slow receiver) is not among those a later wait looks at, a later
    /// release is, and a release's count reaches nought, with its signal,
    /// only when its last counted rows and its own unit have ended.
    #[tokio::test]
    async fn each_release_is_waited_for_once() {
        let releases = Releases::default();
        let first = releases.begin();
        let slow = Counted::new(&first.release, 2);
        drop(first);
        let seen = releases.since(0);
        assert_eq!(seen.iter().map(|r| r.number).collect::<Vec<_>>(), [1]);
        // The recorder has waited for release 1; its slow lane goes on.
        let second = releases.begin();
        let lane = Counted::new(&second.release, 3);
        let release = second.release.clone();
        assert_eq!(
            releases
                .since(1)
                .iter()
                .map(|r| r.number)
                .collect::<Vec<_>>(),
            [2]
        );
        drop(second);
        assert_eq!(
            release.rows.load(Ordering::Acquire),
            3,
            "its lane is in flight"
        );
        drop(lane);
        assert_eq!(release.rows.load(Ordering::Acquire), 0);
        // The signal is kept for a waiter that comes after.
        tokio::time::timeout(Duration::from_secs(60), release.done.notified())
            .await
            .expect("signalled at nought");
        assert!(releases.since(1).is_empty(), "ended releases are forgotten");
        assert_eq!(releases.since(0).len(), 1, "release 1 is still in flight");
        drop(slow);
        assert!(releases.since(0).is_empty());
    }

    /// The body written around a stored object is the body the general
    /// path builds: the same JSON, whatever the stored text holds; text
    /// it cannot vouch for goes the general way.
    #[test]
    fn a_body_around_stored_data_is_the_built_one() {
        let now: Timestamp = "2026-12-06T07:00:00.25Z".parse().expect("instant");
        let context = Context {
            hooks: HashMap::new(),
            alarms: HashMap::new(),
            users: HashMap::new(),
        };
        let mut item = OutboxItem::pending(
            uuid::Uuid::from_u128(7),
            uuid::Uuid::from_u128(9),
            Channel::Webhook,
            UserId::generate(),
            None,
            SendTopic::Alarm(alarm_domain::model::WebhookEvent::Triggered),
            now,
        );
        let (message, topic) = (item.message, item.topic);
        let built = |stored: &str| -> serde_json::Value {
            let mut data: serde_json::Value = serde_json::from_str(stored).expect("stored");
            data["delivery_id"] = message.to_string().into();
            serde_json::json!({"type": topic.as_str(), "timestamp": now.to_string(), "data": data})
        };
        for stored in [
            r#"{"alarm_id":"a","alarm_name":"Wake \"up\" ü \u00e9","enabled":true,"n":[1,{"x":null}]}"#,
            " { } ",
            r#"{"alarm_name":"delivery_id","detail":"\"delivery_id\""}"#,
        ] {
            let around = around_stored(&item, stored, now).expect("written around");
            let body: serde_json::Value = serde_json::from_slice(&around).expect("JSON");
            assert_eq!(body, built(stored), "{stored}");
        }
        // Its own delivery_id, however spelt: the general path, which
        // replaces it.
        for stored in [
            r#"{"delivery_id":"old","a":1}"#,
            r#"{"a":1,"delivery\u005fid":"old"}"#,
        ] {
            assert!(around_stored(&item, stored, now).is_none(), "{stored}");
            item.payload = Some(stored.to_owned());
            let body: serde_json::Value =
                serde_json::from_slice(&payload(&item, &context, now)).expect("JSON");
            assert_eq!(body, built(stored), "{stored}");
        }
        for bad in [r#"{"a":1"#, r#"{"a":1} {"#, "[1]", "{\"a\":1}x", "{\"a\":}"] {
            assert!(around_stored(&item, bad, now).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_lease_fits_one_send_whatever_the_batch() {
        let config = DispatchConfig::default();
        let smtp = Duration::from_secs(20);
        assert!(config.fits_lease(smtp), "the defaults with e-mail");
        let huge = DispatchConfig {
            batch: 2000,
            concurrency: 1,
            ..config
        };
        assert!(huge.fits_lease(smtp), "rows past the lease are given back");
        let short = DispatchConfig {
            lease: Duration::from_secs(30),
            ..config
        };
        assert!(
            !short.fits_lease(smtp),
            "20 s + 7.5 s + 2 s waiting + 3 s is more than 30 s"
        );
        let enough = DispatchConfig {
            lease: Duration::from_secs(40),
            ..config
        };
        assert!(enough.fits_lease(smtp));
    }

    #[test]
    fn a_lane_leaves_its_queues_whatever_becomes_of_its_rows() {
        let (host, account) = (Arc::new(Share::new(2)), Arc::new(Share::new(2)));
        let queue = InQueue::enter(vec![host.clone(), account.clone()], 3, 0);
        assert_eq!(host.queued.load(Ordering::Relaxed), 3);
        // One row sent...
        drop(Leaving(&queue));
        assert_eq!(account.queued.load(Ordering::Relaxed), 2);
        // ...and the lane dropped with two rows never reached (a panic).
        drop(queue);
        assert_eq!(host.queued.load(Ordering::Relaxed), 0);
        assert_eq!(account.queued.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_host_with_a_free_permit_takes_any_lane() {
        assert_eq!(share_admits(0, 500, 16, 60_000), Ok(()));
        assert_eq!(share_admits(15, 1, 16, 60_000), Ok(()));
    }

    #[test]
    fn a_busy_host_queues_only_what_its_pace_sends_soon() {
        // 10 ms a wave: 160 queued is 11 waves, 110 ms.
        assert_eq!(share_admits(160, 1, 16, 10), Ok(()));
        // Unknown pace (no answer yet, just busy): queued.
        assert_eq!(share_admits(16, 100, 16, 0), Ok(()));
        // 5 s a wave: the next wave already waits past the bound; deferred
        // until about when the queue has drained.
        assert_eq!(share_admits(16, 1, 16, 5_000), Err(Duration::from_secs(10)));
        assert_eq!(share_admits(32, 1, 16, 1_000), Err(Duration::from_secs(3)));
        // Bounded both ways.
        assert_eq!(
            share_admits(16, 1, 16, 1_100),
            Err(Duration::from_millis(2_200))
        );
        assert_eq!(share_admits(1_600, 1, 16, 5_000), Err(HOST_DEFER_MAX));
        assert_eq!(share_admits(20, 1, 16, 600), Ok(()));
    }

    #[test]
    fn a_host_that_stopped_answering_is_slow_before_any_answer() {
        let host = Share::new(4);
        assert_eq!(host.pace_ms(0, 10_000), 0, "idle: no pace");
        host.progress_ms.store(1_000, Ordering::Relaxed);
        assert_eq!(host.pace_ms(4, 4_000), 3_000, "busy 3 s without an answer");
        host.answered(Duration::from_millis(80), 4_000);
        assert_eq!(host.pace_ms(4, 4_010), 80, "answering again");
        host.answered(Duration::from_millis(160), 4_100);
        assert_eq!(
            host.latency_ms.load(Ordering::Relaxed),
            90,
            "a moving average"
        );
    }
}
