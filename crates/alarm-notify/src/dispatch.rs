//! The delivery worker: claims due outbox rows under a lease, sends them concurrently (webhook or e-mail), and records each result with retries, dead letters and the failure policy.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alarm_domain::ids::{AlarmId, UserId, WebhookId};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::{Alarm, Channel, User, WebhookRegistration};
use alarm_domain::ports::{
    AlarmStore, ClaimedSend, Clock, Outbox, OutboxItem, SendResult, SendTopic, StoreError,
    UserStore,
};
use alarm_domain::services::Ports;
use alarm_domain::trigger::LeaseToken;
use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::StreamExt;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::email::{AlarmMail, Mailer, alarm_mail, disabled_mail};
use crate::webhook::{Attempt, WebhookSender, millis_since};

/// The first pause after a failed round, and the longest.
const STORE_RETRY_MIN: Duration = Duration::from_millis(400);
const STORE_RETRY_MAX: Duration = Duration::from_millis(6400);

/// How the worker behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchConfig {
    /// Rows claimed per round.
    pub batch: u32,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// How long a claim is held; a killed worker's rows are sent again after it.
    pub lease: Duration,
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
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            batch: 256,
            concurrency: 64,
            lease: Duration::from_secs(120),
            idle_poll: Duration::from_millis(200),
            max_attempts: 8,
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(3600),
            disable_after: 10,
        }
    }
}

impl DispatchConfig {
    /// Whether a whole batch surely ends inside its lease: at worst every
    /// round of `concurrency` sends takes the full `timeout`.
    pub fn fits_lease(&self, timeout: Duration) -> bool {
        let rounds = u32::try_from((self.batch as usize).div_ceil(self.concurrency.max(1)))
            .unwrap_or(u32::MAX);
        timeout
            .saturating_mul(rounds)
            .saturating_add(Duration::from_secs(5))
            < self.lease
    }
}

/// Counters for health output and benchmarks.
#[derive(Debug, Default)]
pub struct DispatchStats {
    /// Rows delivered.
    pub delivered: AtomicU64,
    /// Attempts that will be retried (breaker deferrals included).
    pub retried: AtomicU64,
    /// Rows dead-lettered.
    pub dead: AtomicU64,
    /// Rounds that failed on the store.
    pub store_errors: AtomicU64,
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
}

/// What one round needs besides the rows: loaded once per round.
struct Context {
    hooks: HashMap<WebhookId, WebhookRegistration>,
    alarms: HashMap<AlarmId, Alarm>,
    users: HashMap<UserId, User>,
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

    /// Runs rounds until `stop` resolves; a round in progress is finished
    /// first (cut short, its rows would only be sent again after their lease).
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        // While the store fails, rounds are retried after growing, jittered
        // pauses (so many workers do not hammer a recovering database in
        // step); the first success starts the sequence over.
        let mut failing: Option<backon::ExponentialBackoff> = None;
        loop {
            let (busy, pause) = match self.round().await {
                Ok(true) => {
                    failing = None;
                    (true, Duration::ZERO)
                }
                Ok(false) => {
                    failing = None;
                    (false, self.idle_pause().await)
                }
                Err(e) => {
                    self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
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
                    tracing::warn!(error = %e, retry_in_ms = pause.as_millis(), "outbox round failed");
                    (false, pause)
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = self.poke.notified(), if !busy => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// How long an idle sender sleeps: until the earliest row not due yet
    /// (a ring prepared ahead of its instant, a retry) by the store's
    /// clock, at most the idle poll. A failed look falls back to the poll:
    /// the next round reports the store's failure.
    async fn idle_pause(&self) -> Duration {
        let poll = self.config.idle_poll;
        match self.ports.outbox.next_due_in().await {
            Ok(Some(wait)) => Duration::try_from(wait).unwrap_or(Duration::ZERO).min(poll),
            Ok(None) | Err(_) => poll,
        }
    }

    /// One round: claim, send, record. Returns whether there may be more due
    /// right away (a full batch, or rows this round queued).
    ///
    /// # Errors
    /// Store failures (claimed rows are sent again after their lease).
    pub async fn round(&self) -> Result<bool, StoreError> {
        let now = self.ports.clock.now();
        let until = now
            .checked_add(SignedDuration::try_from(self.config.lease).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        let claims = self
            .ports
            .outbox
            .claim(now, until, self.config.batch)
            .await?;
        if claims.is_empty() {
            return Ok(false);
        }
        let full = claims.len() >= self.config.batch as usize;
        let context = self.context(&claims).await?;
        // The events of one alarm reach one receiver in the order they
        // were made: rows are taken oldest first (the claim's RETURNING has
        // no order), those of one (registration, alarm) are sent one after
        // the other, and different ones concurrently. A retried row still
        // arrives after newer ones that succeeded.
        let mut claims = claims;
        claims.sort_by_key(|c| (c.item.due, c.item.message, c.item.target));
        let mut lanes: Vec<Vec<&ClaimedSend>> = Vec::new();
        let mut lane_of: HashMap<(uuid::Uuid, Option<String>), usize> = HashMap::new();
        for c in &claims {
            let key = (c.item.target, subject(&c.item));
            let lane = *lane_of.entry(key).or_insert_with(|| {
                lanes.push(Vec::new());
                lanes.len() - 1
            });
            lanes[lane].push(c);
        }
        // Made up front, not in a stream closure: a closure over borrowed
        // claims makes the round's future unprovably `Send` (rustc's
        // higher-ranked lifetime limitation), and the worker is spawned.
        let lanes: Vec<_> = lanes
            .into_iter()
            .map(|lane| {
                let attempts: Vec<_> = lane
                    .into_iter()
                    .map(|c| self.attempt(c, &context))
                    .collect();
                async move {
                    let mut out = Vec::with_capacity(attempts.len());
                    for attempt in attempts {
                        out.push(attempt.await);
                    }
                    out
                }
            })
            .collect();
        let attempted: Vec<(LeaseToken, SendResult, Duration)> = futures_util::stream::iter(lanes)
            .buffer_unordered(self.config.concurrency.max(1))
            .collect::<Vec<Vec<_>>>()
            .await
            .into_iter()
            .flatten()
            .collect();
        let channel_of: HashMap<LeaseToken, Channel> =
            claims.iter().map(|c| (c.token, c.item.channel)).collect();
        let measured: Vec<(LeaseToken, Channel, &'static str, Duration)> = attempted
            .iter()
            .map(|(token, result, took)| (*token, channel_of[token], outcome(result), *took))
            .collect();
        let results = attempted.into_iter().map(|(t, r, _)| (t, r)).collect();
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
        Ok(full || report.fallbacks > 0 || !report.disabled.is_empty())
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
            if let Some((alarm, _)) = item.alarm {
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
    async fn attempt(
        &self,
        claim: &ClaimedSend,
        context: &Context,
    ) -> (LeaseToken, SendResult, Duration) {
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
        span.record("outcome", outcome(&done.1));
        done
    }

    async fn attempt_in_span(
        &self,
        claim: &ClaimedSend,
        context: &Context,
    ) -> (LeaseToken, SendResult, Duration) {
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
                    return (claim.token, result, took);
                }
                tracing::info!(message = %item.message, target = %item.target, channel = item.channel.as_str(), attempts = item.attempts + 1, error, "delivery will be retried");
            }
            SendResult::Dead { error, .. } => {
                self.stats.dead.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(message = %item.message, target = %item.target, channel = item.channel.as_str(), attempts = item.attempts + 1, error, "delivery dead-lettered");
            }
        }
        (claim.token, result, took)
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
        let later = |d: Duration| {
            now.checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
                .unwrap_or(Timestamp::MAX)
        };
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
        // conversation, so a batch always ends inside its lease.
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
/// (`delivered`, `retry`, `deferred` by an open breaker, `dead`) and the
/// attempt's `*_delivery_duration_seconds`; breaker deferrals made no
/// attempt, so they add no duration.
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
