//! The outbox port: one row per notification to send (a webhook registration or an owner's inbox), claimed under a lease, finished with fencing.
//!
//! Rows are written in the same transaction as the fire that caused them
//! (the engine's [`super::TriggerClaims::complete_many`] fans each webhook
//! delivery out to the owner's active registrations subscribed to its event,
//! and each email delivery to the owner), so a crash between the fire and
//! the send loses nothing: a killed sender's lease runs out and another
//! sender claims the row again.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use super::StoreError;
use crate::ids::{AlarmId, UserId, WebhookId};
use crate::model::{Channel, WebhookEvent};
use crate::trigger::{LeaseToken, OccurrenceRef, TriggerKind};

/// Where an outbox row is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Waiting for its due time (first attempt or a retry).
    Pending,
    /// The receiver took it.
    Delivered,
    /// Given up (last attempt failed, or a permanent failure): the dead-letter queue.
    Dead,
}

impl SendStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Pending => "pending",
            SendStatus::Delivered => "delivered",
            SendStatus::Dead => "dead",
        }
    }
    /// The status called `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What an outbox row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendTopic {
    /// An alarm event (`alarm.created` … `routine.started`).
    Alarm(WebhookEvent),
    /// A `webhook.test` ping asked for by the owner.
    Test,
    /// The email telling an owner that a registration was disabled.
    WebhookDisabled,
}

impl SendTopic {
    /// The stored and wire name (`alarm.triggered`, `webhook.test`, `webhook.disabled`).
    pub fn as_str(self) -> &'static str {
        match self {
            SendTopic::Alarm(e) => e.as_str(),
            SendTopic::Test => "webhook.test",
            SendTopic::WebhookDisabled => "webhook.disabled",
        }
    }
    /// The topic called `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "webhook.test" => Some(SendTopic::Test),
            "webhook.disabled" => Some(SendTopic::WebhookDisabled),
            other => WebhookEvent::parse(other).ok().map(SendTopic::Alarm),
        }
    }
    /// The webhook event a fired trigger of `kind` announces.
    pub fn of_kind(kind: TriggerKind) -> WebhookEvent {
        match kind {
            TriggerKind::Escalate(_) => WebhookEvent::Escalated,
            TriggerKind::Expire => WebhookEvent::Expired,
            TriggerKind::Fire | TriggerKind::Snooze(_) => WebhookEvent::Triggered,
        }
    }
}

/// One notification to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// The message id: the engine's delivery id (the same for every
    /// registration it fans out to). Sent as `webhook-id`, so a receiver
    /// can drop a duplicate after a crash or a retry.
    pub message: Uuid,
    /// The destination: the webhook registration's id, or the owner's id for email.
    pub target: Uuid,
    /// [`Channel::Webhook`] or [`Channel::Email`].
    pub channel: Channel,
    /// The owner.
    pub owner: UserId,
    /// The alarm and occurrence, for alarm topics.
    pub alarm: Option<(AlarmId, OccurrenceRef)>,
    /// What it is about.
    pub topic: SendTopic,
    /// An email made because every other external channel of the alarm failed.
    pub fallback: bool,
    /// The webhook `data` fixed when the alarm event was made
    /// ([`crate::sending::event_data`]); `None` for e-mail deliveries,
    /// tests and notices, whose bodies are built when sent.
    pub payload: Option<String>,
    /// Where it is.
    pub status: SendStatus,
    /// Attempts made so far (deferrals by an open circuit breaker do not count).
    pub attempts: u32,
    /// When the next attempt is due (meaningful while pending).
    pub due: Timestamp,
    /// The last HTTP status code received, if any.
    pub last_code: Option<u16>,
    /// Why the last attempt failed (never holds a secret or a URL path).
    pub last_error: Option<String>,
    /// How long the last attempt took, in milliseconds.
    pub latency_ms: Option<u64>,
    /// When the row was made.
    pub created_at: Timestamp,
    /// When the row last changed.
    pub updated_at: Timestamp,
}

impl OutboxItem {
    /// A new row, due at `at`, with no attempt made.
    pub fn pending(
        message: Uuid,
        target: Uuid,
        channel: Channel,
        owner: UserId,
        alarm: Option<(AlarmId, OccurrenceRef)>,
        topic: SendTopic,
        at: Timestamp,
    ) -> Self {
        Self {
            message,
            target,
            channel,
            owner,
            alarm,
            topic,
            fallback: false,
            payload: None,
            status: SendStatus::Pending,
            attempts: 0,
            due: at,
            last_code: None,
            last_error: None,
            latency_ms: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// The webhook registration this row goes to, when it is a webhook row.
    pub fn webhook(&self) -> Option<WebhookId> {
        if self.channel == Channel::Webhook {
            WebhookId::from_uuid(self.target).ok()
        } else {
            None
        }
    }
}

/// One claim's hold on one outbox row: the token that fences it, and the
/// row's key (`message`, `target`), by which a store finds the row again.
/// Found by its key, a row needs no index on its token: on PostgreSQL a
/// claim then changes no indexed column and, when the row's page has
/// room, rewrites the row in place (a HOT update) instead of adding an
/// entry to each of its indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendLease {
    /// Fences [`Outbox::confirm`] and [`Outbox::finish`]: a row claimed
    /// again since holds another token.
    pub token: LeaseToken,
    /// The row's message id.
    pub message: Uuid,
    /// The row's target id.
    pub target: Uuid,
}

/// A row handed to one sender until `lease_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedSend {
    /// The row as claimed.
    pub item: OutboxItem,
    /// The claim's lease on it: fences [`Outbox::confirm`] and
    /// [`Outbox::finish`].
    pub token: SendLease,
    /// When another sender may take it over.
    pub lease_until: Timestamp,
    /// The W3C `traceparent` of the span that queued the row (an API
    /// request, an engine batch), stored by adapters that trace; its
    /// delivery continues that trace. `None` without tracing.
    pub trace: Option<String>,
}

impl ClaimedSend {
    /// Whether its row is the one its lease names: a result comes to
    /// [`Outbox::finish`] with both, and one whose row is another's is
    /// refused (reported lost).
    #[must_use]
    pub fn is_whole(&self) -> bool {
        self.item.message == self.token.message && self.item.target == self.token.target
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// Taken by the receiver.
    Delivered {
        /// HTTP status (webhooks).
        code: Option<u16>,
        /// Milliseconds the attempt took.
        latency_ms: u64,
    },
    /// Try again at `due`.
    Retry {
        /// When.
        due: Timestamp,
        /// Whether this was an attempt (false: an open breaker deferred it unsent).
        counted: bool,
        /// HTTP status, if one came back.
        code: Option<u16>,
        /// Why.
        error: String,
        /// Milliseconds the attempt took.
        latency_ms: u64,
    },
    /// Give up: the row goes to the dead-letter queue.
    Dead {
        /// HTTP status, if one came back.
        code: Option<u16>,
        /// Why.
        error: String,
        /// Milliseconds the attempt took.
        latency_ms: u64,
    },
}

/// What [`Outbox::finish`] did besides recording the results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinishReport {
    /// Leases that did not hold, in the order given: another sender owns
    /// the row now (or nobody does), the claim's row is not the lease's
    /// ([`ClaimedSend::is_whole`]), or the same lease came again in one
    /// finish (only its first result is recorded).
    pub lost: Vec<SendLease>,
    /// Registrations disabled by this call (their owners' notice emails are queued).
    pub disabled: Vec<WebhookId>,
    /// Fallback emails queued by this call.
    pub fallbacks: usize,
}

/// How many outbox rows wait and how many were given up on, over every
/// owner (the operator's gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Pending rows, leased or not.
    pub pending: u64,
    /// Dead letters.
    pub dead: u64,
}

/// The outbox.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Leases up to `limit` pending rows due at `now` (oldest due first)
    /// until `until`; rows whose lease ran out are pending again and
    /// claimable. Every claim bumps nothing but the lease.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn claim(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError>;

    /// Leases, until `until`, up to `limit` pending rows of outcomes
    /// prepared ahead of their instant that take effect within `ahead` by
    /// the store's clock (none of them visible yet; earliest first), so
    /// that a sender can have them ready at the instant. Nothing else is
    /// taken: rows already due, retries and service rows are
    /// [`Outbox::claim`]'s. A row claimed ahead MUST NOT be sent before
    /// [`Outbox::confirm`] finds it visible: a cancellation in between
    /// withdraws it.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn claim_ahead(
        &self,
        ahead: SignedDuration,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError>;

    /// Of rows claimed ahead, those still pending under these leases (a
    /// row withdrawn by a cancellation, or taken over after its lease, is
    /// left out), each with how long until it is visible by the store's
    /// clock: zero or less, it may be sent now.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn confirm(
        &self,
        leases: Vec<SendLease>,
    ) -> Result<Vec<(SendLease, SignedDuration)>, StoreError>;

    /// Records attempts, fenced by their leases, in one transaction. Each
    /// attempt comes with its row as [`Outbox::claim`] or
    /// [`Outbox::claim_ahead`] returned it, and is recorded on that row
    /// without reading it again: while a lease holds, nothing else changes
    /// its row (a claim replaces the token, a finish or a redelivery clears
    /// it, a withdrawal deletes the row), so the claimed row is the stored
    /// one. A lease that no longer holds is reported `lost`, its row left
    /// alone (see [`FinishReport::lost`]).
    ///
    /// A delivered webhook resets its registration's consecutive-failure
    /// count; a dead one increments it and, on reaching `disable_after`,
    /// deactivates the registration and queues a `webhook.disabled` email to
    /// its owner. When a dead row was the last live external (non-email)
    /// row of an alarm occurrence's event, none of them was delivered and
    /// the occurrence has no email row, a fallback email row is queued.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn finish(
        &self,
        now: Timestamp,
        results: Vec<(ClaimedSend, SendResult)>,
        disable_after: u32,
    ) -> Result<FinishReport, StoreError>;

    /// The `channel` rows sent to `target` of `owner`, newest first, at
    /// most `limit`, optionally older than the row `before` (a message id).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn list(
        &self,
        owner: UserId,
        channel: Channel,
        target: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError>;

    /// Makes a delivered or dead row pending again with no attempts, due at
    /// `now`.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when missing or another owner's,
    /// [`StoreError::Conflict`] while it is still pending.
    async fn redeliver(
        &self,
        owner: UserId,
        channel: Channel,
        target: Uuid,
        message: Uuid,
        now: Timestamp,
    ) -> Result<OutboxItem, StoreError>;

    /// Inserts a row (a test ping); an existing (message, target) is left as it is.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn enqueue(&self, item: OutboxItem) -> Result<(), StoreError>;

    /// How long, by the store's clock, until the earliest pending row not
    /// due yet becomes due (a retry, or a ring prepared ahead of its
    /// instant); `None` when there is none. The sender sleeps until then
    /// instead of its idle poll, so a prepared ring's rows go out at the
    /// instant.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn next_due_in(&self) -> Result<Option<SignedDuration>, StoreError>;

    /// How many rows are pending and dead, over every owner.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn counts(&self) -> Result<OutboxCounts, StoreError>;

    /// Registrations by id, whatever their owner (for the sender; missing ones are left out).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn webhooks(
        &self,
        ids: Vec<WebhookId>,
    ) -> Result<Vec<crate::model::WebhookRegistration>, StoreError>;
}

/// Whether a webhook URL may be registered: the SSRF guard's registration
/// half (the sender re-checks the address it actually connects to).
#[async_trait]
pub trait TargetGuard: Send + Sync {
    /// `Err(reason)` when the URL's host is, or resolves to, an address the
    /// operator does not allow (loopback, private, link-local…). A host that
    /// does not resolve yet is allowed.
    async fn check(&self, url: &url::Url) -> Result<(), String>;
}

/// Allows every target: for tests and embedders that have no network.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyTarget;

#[async_trait]
impl TargetGuard for AnyTarget {
    async fn check(&self, _url: &url::Url) -> Result<(), String> {
        Ok(())
    }
}
