//! Ports: the traits adapters implement, the change sets they commit atomically, and their errors.
//!
//! Two rules keep the ports honest:
//! * **One call per unit of work.** A mutating use case hands one
//!   [`ChangeSet`] to one port method: the entity change, its audit record,
//!   its alarm events and the trigger plans it implies. The adapter commits
//!   all of it or none of it. No transaction object crosses a port.
//! * **Time is an argument.** Every time-dependent method takes `now`;
//!   nothing behind a port reads a clock.
//!
//! Every store is scoped: a method that takes an owner treats another
//! owner's id exactly like a missing one ([`StoreError::NotFound`]).

mod blobs;
mod idempotency;
mod outbox;
mod queue;
mod services;
mod sounds;
mod stores;
mod uploads;

pub use blobs::{BlobError, BlobMeta, BlobStore, ByteStream, Chunk, clamp_range};
pub use idempotency::{
    IDEMPOTENCY_IN_FLIGHT_TIMEOUT, IdempotencyKey, IdempotencyStore, Reservation, StoredResponse,
};
pub use outbox::{
    AnyTarget, ClaimedSend, FinishReport, Outbox, OutboxCounts, OutboxItem, SendLease, SendResult,
    SendStatus, SendTopic, TargetGuard,
};
pub use queue::{
    EngineRight, FireOutcome, RingingOp, RingingStore, TriggerClaims, TriggerQueue, check_snooze,
};
pub use services::{
    AccountMail, Notifier, NotifyError, SealError, SecretError, SecretProvider, SecretSealer,
};
pub use sounds::SoundStore;
pub use stores::{
    AlarmEventStore, AlarmOp, AlarmStore, ApiKeyOp, ApiKeyStore, AuditLog, ExceptionOp,
    ExceptionPeriodStore, HolidayOp, HolidayPreferences, HolidayStore, PreferenceOp, RefreshFamily,
    RefreshTokenStore, ReplanJob, Rotation, RoutineOp, RoutineStore, TokenPurpose, UserOp,
    UserStore, WebhookOp, WebhookStore, rotation_applies,
};
pub use uploads::{NoStorage, PartStore, UploadStore, upload_refusal};

#[cfg(feature = "mocks")]
pub use blobs::MockBlobStore;
#[cfg(feature = "mocks")]
pub use idempotency::MockIdempotencyStore;
#[cfg(feature = "mocks")]
pub use outbox::MockOutbox;
#[cfg(feature = "mocks")]
pub use queue::{MockEngineRight, MockRingingStore, MockTriggerClaims};
#[cfg(feature = "mocks")]
pub use services::{MockNotifier, MockSecretProvider};
#[cfg(feature = "mocks")]
pub use sounds::MockSoundStore;
#[cfg(feature = "mocks")]
pub use stores::{
    MockAlarmEventStore, MockAlarmStore, MockApiKeyStore, MockAuditLog, MockExceptionPeriodStore,
    MockHolidayStore, MockRefreshTokenStore, MockRoutineStore, MockUserStore, MockWebhookStore,
};
#[cfg(feature = "mocks")]
pub use uploads::{MockPartStore, MockUploadStore};

use crate::error::{ValidationError, codes};
use crate::ids::AlarmId;
use crate::model::{AlarmEvent, AuditRecord};
use crate::trigger::Trigger;

/// The current time. Services read it once per use case and pass it down;
/// ports never call it.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> jiff::Timestamp;
}

/// New ids (UUID v7). Deterministic sources make tests reproducible.
pub trait IdSource: Send + Sync {
    /// A fresh UUID v7.
    fn next_uuid(&self) -> uuid::Uuid;
    /// A fresh UUID v7 that sorts at `at` rather than now: an event the
    /// engine prepares ahead of its instant takes its place among the
    /// others by that instant, so a client paging "after" the newest id it
    /// saw never skips it. By default [`IdSource::next_uuid`] with its time
    /// field set to `at` (its random bits keep it unique); a source whose
    /// ids do not carry the time (a test's counter) keeps its own order.
    ///
    /// Ids made for one instant keep the order they were made in within a
    /// process (a 32-bit sequence follows the time field; the 42 bits after
    /// it stay random): the events of one ring list in the order judged.
    fn uuid_at(&self, at: jiff::Timestamp) -> uuid::Uuid {
        static SEQUENCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut bytes = *self.next_uuid().as_bytes();
        let ms = u64::try_from(at.as_millisecond()).unwrap_or(0);
        bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        // Version 7 in the high nibble, then the sequence's top 4 bits.
        bytes[6] = 0x70 | ((seq >> 28) & 0x0f) as u8;
        bytes[7] = (seq >> 20) as u8;
        // The RFC 9562 variant (0b10), then 6 more bits of the sequence.
        bytes[8] = 0x80 | ((seq >> 14) & 0x3f) as u8;
        bytes[9] = (seq >> 6) as u8;
        bytes[10] = (((seq & 0x3f) as u8) << 2) | (bytes[10] & 0x03);
        uuid::Uuid::from_bytes(bytes)
    }
    /// Fills `buf` with bytes for a secret (a webhook signing key): from
    /// the operating system's random source in production; a test source
    /// may make them deterministic.
    ///
    /// # Errors
    /// The random source failed (there is no fallback: a guessable secret
    /// is worse than none).
    fn secret_bytes(&self, buf: &mut [u8]) -> Result<(), String>;
}

/// Told when a committed change created or moved a trigger, so an engine in
/// the same process can wake before its next poll. Purely an optimisation:
/// an engine that is never told still finds the trigger within its poll
/// interval (and other processes hear of it from the database).
pub trait TriggerWake: Send + Sync {
    /// A trigger is now due at `at`.
    fn due(&self, at: jiff::Timestamp);

    /// A holiday write left a re-plan job (an engine in this process starts
    /// it now instead of at its next poll).
    fn replan(&self) {}
}

/// Tells nobody (no engine in this process).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWake;

impl TriggerWake for NoWake {
    fn due(&self, _at: jiff::Timestamp) {}
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// v7 ids from the system clock and the OS random source.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }

    fn secret_bytes(&self, buf: &mut [u8]) -> Result<(), String> {
        getrandom::fill(buf).map_err(|e| format!("random source: {e}"))
    }
}

/// Why a store call failed. Adapters translate driver errors into these at
/// their boundary; no driver type leaks through.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The entity does not exist, or belongs to another owner.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated (same id, same email, same trigger key…).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Optimistic concurrency: the entity changed since it was read.
    #[error("stale version: expected {expected}, found {actual}")]
    StaleVersion {
        /// The version the caller based its change on.
        expected: u64,
        /// The version stored now.
        actual: u64,
    },
    /// The owner already holds as many as a [`crate::limits::Quota`] allows;
    /// nothing is stored.
    #[error("over quota {quota} ({limit})")]
    OverQuota {
        /// The quota's name.
        quota: &'static str,
        /// Its limit.
        limit: u32,
    },
    /// The lease token is no longer current: the claim was rescued, released
    /// or completed already. The caller must not act on the trigger.
    #[error("lease lost")]
    LeaseLost,
    /// A transient failure (serialization failure, lost connection): the
    /// whole unit of work may be retried.
    #[error("temporarily unavailable")]
    Retryable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else; logged with a correlation id, shown as an opaque 500.
    #[error("unexpected store failure")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A page request for cursor pagination: items after `after` (exclusive,
/// in id order, which for v7 ids is creation order), at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<C> {
    after: Option<C>,
    limit: u32,
}

impl<C: Copy> PageRequest<C> {
    /// The largest page.
    pub const MAX_LIMIT: u32 = 100;

    /// # Errors
    /// `limit` with `out-of-range` unless 1..=100.
    pub fn new(after: Option<C>, limit: u32) -> Result<Self, ValidationError> {
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(ValidationError::new(
                "limit",
                codes::OUT_OF_RANGE,
                format!("must be 1..={}, got {limit}", Self::MAX_LIMIT),
            ));
        }
        Ok(Self { after, limit })
    }
    /// The first page of the largest size.
    pub fn first() -> Self {
        Self {
            after: None,
            limit: Self::MAX_LIMIT,
        }
    }
    /// The cursor.
    pub fn after(&self) -> Option<C> {
        self.after
    }
    /// The page size.
    pub fn limit(&self) -> u32 {
        self.limit
    }
}

/// One page; `next` is the cursor for the following page, `None` at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    /// The items, in id order.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page.
    pub next: Option<C>,
}

/// What a change does to an alarm's pending triggers, in the same commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerPlan {
    /// Replace the alarm's unclaimed `fire` trigger by `next` (`None`: the
    /// alarm will not fire again, or is disabled), **only if** the stored
    /// alarm (after this commit's own entity change) has `version`. A plan
    /// computed from an alarm that changed since is skipped: the newer
    /// commit already rescheduled it, and a stale plan must never replace
    /// a fresher trigger. Snooze and escalation triggers of a ringing
    /// occurrence stay; a leased `fire` trigger stays (it is being fired).
    Reschedule {
        /// The alarm.
        alarm: AlarmId,
        /// The alarm version the plan was computed from.
        version: crate::model::AlarmVersion,
        /// Its next fire trigger.
        next: Option<Trigger>,
    },
    /// Remove every trigger of the alarm, leased ones included (their
    /// tokens die, so a runner mid-fire gets `LeaseLost` and rings nothing),
    /// and its ringing records (deletion).
    CancelAll {
        /// The alarm.
        alarm: AlarmId,
    },
}

impl TriggerPlan {
    /// Whether the plan still applies, given the alarm's version as stored
    /// now (`None`: the alarm is gone), read under the adapter's lock: a
    /// reschedule computed from an alarm that changed (or went) since is
    /// dropped, because the newer commit's own plan stands. A cancellation
    /// always applies.
    pub fn still_current(&self, stored: Option<u64>) -> bool {
        match self {
            TriggerPlan::Reschedule { version, .. } => stored == Some(version.get()),
            TriggerPlan::CancelAll { .. } => true,
        }
    }

    /// The alarm the plan is about.
    pub fn alarm(&self) -> AlarmId {
        match self {
            TriggerPlan::Reschedule { alarm, .. } | TriggerPlan::CancelAll { alarm } => *alarm,
        }
    }
}

/// One unit of work for a store: the entity operation plus everything it
/// implies, committed atomically or not at all.
#[derive(Debug, Clone)]
pub struct ChangeSet<Op> {
    /// The entity change.
    pub op: Op,
    /// Who did what (one record per unit of work).
    pub audit: AuditRecord,
    /// Alarm events to append.
    pub events: Vec<AlarmEvent>,
    /// Trigger changes for every affected alarm.
    pub triggers: Vec<TriggerPlan>,
}

impl<Op> ChangeSet<Op> {
    /// A change that implies no alarm event and no trigger change: the
    /// entity operation and its audit record alone.
    pub fn audited(op: Op, audit: AuditRecord) -> Self {
        Self {
            op,
            audit,
            events: Vec::new(),
            triggers: Vec::new(),
        }
    }
}
