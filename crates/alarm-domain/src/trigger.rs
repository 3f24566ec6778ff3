//! The trigger model: typed, unique work items that make an alarm ring, and what ringing leaves behind.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use uuid::Uuid;

use crate::ids::{AlarmId, UserId};
use crate::model::{AlarmVersion, Channel};

/// Which occurrence a trigger or a ringing concerns: its nominal local
/// date-time (kept so it can be re-resolved when the tz database changes)
/// and the UTC instant it resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OccurrenceRef {
    /// The UTC instant the occurrence rings (after any holiday delay, before
    /// snoozes). The engine rings at most once per instant, so this
    /// identifies the occurrence within its alarm.
    pub at: Timestamp,
    /// The nominal local wall time in the alarm's zone.
    pub local: DateTime,
}

/// What a trigger does when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TriggerKind {
    /// The occurrence rings for the first time.
    Fire,
    /// The n-th snooze (1-based) of the occurrence ends and it rings again.
    Snooze(u8),
    /// Re-notify at this escalation level (1-based).
    Escalate(u8),
    /// The occurrence went unanswered past the last escalation plus the
    /// expiry window: record it `expired` and stop ringing.
    Expire,
}

impl TriggerKind {
    /// Stable text form: `fire`, `snooze:2`, `escalate:1`, `expire`.
    pub fn code(&self) -> String {
        match self {
            TriggerKind::Fire => "fire".to_owned(),
            TriggerKind::Snooze(n) => format!("snooze:{n}"),
            TriggerKind::Escalate(n) => format!("escalate:{n}"),
            TriggerKind::Expire => "expire".to_owned(),
        }
    }
}

/// A unit of scheduled work, unique on (alarm, occurrence instant, kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The alarm.
    pub alarm: AlarmId,
    /// The alarm's owner (for scoping and delivery).
    pub owner: UserId,
    /// The occurrence.
    pub occurrence: OccurrenceRef,
    /// Fire, snooze or escalation.
    pub kind: TriggerKind,
    /// When it is due.
    pub due_at: Timestamp,
    /// The alarm version the trigger was computed from; the runner does not
    /// ring a trigger whose alarm has changed since.
    pub alarm_version: AlarmVersion,
}

impl Trigger {
    /// The uniqueness key.
    pub fn key(&self) -> (AlarmId, Timestamp, TriggerKind) {
        (self.alarm, self.occurrence.at, self.kind)
    }
}

/// Proof of a claim. Only the current token of a trigger can complete or
/// release it; a rescued claim's token is dead (fencing).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(Uuid);

impl LeaseToken {
    /// A token from a UUID (adapters generate them at claim time).
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }
    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseToken({})", self.0)
    }
}

/// A claimed trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The trigger.
    pub trigger: Trigger,
    /// The lease token that fences completion.
    pub token: LeaseToken,
    /// When the lease expires and `rescue` may hand the trigger out again.
    pub lease_until: Timestamp,
}

/// An occurrence that rang and is not yet dismissed or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ringing {
    /// The alarm.
    pub alarm: AlarmId,
    /// The owner.
    pub owner: UserId,
    /// The occurrence.
    pub occurrence: OccurrenceRef,
    /// When it first rang.
    pub since: Timestamp,
    /// Snoozes used so far.
    pub snoozes: u8,
    /// Highest escalation level reached.
    pub level: u8,
    /// Whether it is snoozed (waiting for its snooze trigger) right now.
    pub snoozed: bool,
}

/// A notification to send, committed with the fire so a crash loses none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Unique id; doubles as the idempotency key towards receivers.
    pub id: Uuid,
    /// The recipient user.
    pub owner: UserId,
    /// The alarm.
    pub alarm: AlarmId,
    /// The occurrence.
    pub occurrence: OccurrenceRef,
    /// What caused it.
    pub kind: TriggerKind,
    /// Where it goes.
    pub channel: Channel,
    /// When it was created.
    pub created_at: Timestamp,
}

/// How a completed trigger changes the occurrence's ringing state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingingChange {
    /// Leave it as it is.
    None,
    /// Start or update the ringing record (insert or replace by alarm + occurrence).
    Upsert(Ringing),
    /// The occurrence is over (expired or missed).
    End {
        /// The alarm.
        alarm: AlarmId,
        /// The occurrence instant.
        occurrence: Timestamp,
    },
}
