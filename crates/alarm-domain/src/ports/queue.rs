//! The trigger queue, as three ports: claims and completion (the engine's), ringing occurrences (the alarm service's), and the engine right with the store's clock.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use super::{ChangeSet, StoreError, TriggerPlan};
use crate::ids::{AlarmId, UserId};
use crate::model::AlarmEvent;
use crate::trigger::{Claimed, Delivery, LeaseToken, Ringing, RingingChange, Trigger};

/// Everything a fired (or skipped) trigger leaves behind, committed together
/// with the removal of the trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireOutcome {
    /// Events to append (`triggered`, `escalated`, `missed`, `expired`…).
    pub events: Vec<AlarmEvent>,
    /// Notifications to make.
    pub deliveries: Vec<Delivery>,
    /// The next follow-up of this occurrence (next escalation), if any.
    pub follow_up: Option<Trigger>,
    /// The alarm's next occurrence, for a `fire` trigger.
    pub next: Option<TriggerPlan>,
    /// How the ringing state changes.
    pub ringing: RingingChange,
}

/// A user acting on a ringing occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingingOp {
    /// Snooze: the ringing record becomes snoozed with `snoozes` used, the
    /// occurrence's escalations and its expiry (leased ones included) are
    /// cancelled and
    /// `trigger` (its `Snooze(snoozes)` trigger) is inserted.
    Snooze {
        /// The updated ringing record.
        ringing: Ringing,
        /// The snooze trigger.
        trigger: Trigger,
    },
    /// Dismiss: every ringing record of the alarm and every follow-up
    /// (snooze, escalation; leased ones included, so a runner mid-fire gets
    /// `LeaseLost`) of those occurrences are removed.
    Dismiss {
        /// The owner.
        owner: UserId,
        /// The alarm.
        alarm: AlarmId,
    },
}

/// The checks every adapter applies to a snooze against the stored ringing
/// record, inside its transaction: the contract of
/// [`RingingStore::commit_ringing`] written once.
///
/// # Errors
/// [`StoreError::Conflict`] when the count is not the stored count + 1, the
/// stored record is already snoozed, or the trigger is not the
/// `Snooze(snoozes)` trigger of the same alarm, owner and occurrence.
pub fn check_snooze(
    stored: &Ringing,
    ringing: &Ringing,
    trigger: &Trigger,
) -> Result<(), StoreError> {
    if ringing.snoozes != stored.snoozes + 1 || stored.snoozed {
        return Err(StoreError::Conflict("a concurrent snooze won".to_owned()));
    }
    let consistent = ringing.snoozed
        && trigger.alarm == ringing.alarm
        && trigger.owner == ringing.owner
        && trigger.occurrence == ringing.occurrence
        && trigger.kind == crate::trigger::TriggerKind::Snooze(ringing.snoozes);
    if consistent {
        Ok(())
    } else {
        Err(StoreError::Conflict(
            "the snooze trigger does not match the ringing occurrence".to_owned(),
        ))
    }
}

/// Claims of due triggers under a lease, their fenced completion, and the
/// triggers' own bookkeeping: the trigger engine's port.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait TriggerClaims: Send + Sync {
    /// Claims up to `limit` unleased triggers due at or before `now`, earliest
    /// first, leasing each until `now + lease`. Concurrent claimers never
    /// receive the same trigger.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn claim(
        &self,
        now: Timestamp,
        limit: u32,
        lease: SignedDuration,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Removes the claimed trigger and commits its whole outcome atomically.
    ///
    /// # Errors
    /// MUST return [`StoreError::LeaseLost`] when `token` is not the trigger's
    /// current lease (rescued, released or completed already); nothing is
    /// stored then. Likewise when the outcome was prepared ahead of the
    /// trigger's instant from an alarm version an edit has replaced
    /// ([`crate::firing::stale_preparation`]): the trigger is then put back
    /// unleased, to be judged again.
    async fn complete(&self, token: LeaseToken, outcome: FireOutcome) -> Result<(), StoreError>;

    /// Completes many claimed triggers in one transaction, as a worker does
    /// with a batch: every item whose token is current is removed and its
    /// outcome committed; items whose token is not current are skipped
    /// (nothing of their outcome is stored) and their tokens returned, as
    /// are those of stale preparations (put back unleased, as in
    /// `complete`). A store failure commits none of them.
    ///
    /// # Errors
    /// Infrastructure failures, and [`StoreError::Conflict`] when an item's
    /// outcome itself conflicts (a duplicate event id): the batch is then
    /// refused whole, like a single `complete`. Fencing is reported per item.
    async fn complete_many(
        &self,
        items: Vec<(LeaseToken, FireOutcome)>,
    ) -> Result<Vec<LeaseToken>, StoreError>;

    /// Gives a claimed trigger back, unchanged, for another claimer.
    ///
    /// # Errors
    /// MUST return [`StoreError::LeaseLost`] when `token` is not current.
    async fn release(&self, token: LeaseToken) -> Result<(), StoreError>;

    /// Makes every trigger whose lease expired at or before `now` claimable
    /// again, killing the old tokens. Returns how many were rescued.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn rescue(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// Extends the leases of the claims whose tokens are still current to
    /// `until` (the heartbeat) and returns the tokens that are not current
    /// any more (rescued, released, completed or cancelled): their holder
    /// must not act on them.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn renew(
        &self,
        tokens: Vec<LeaseToken>,
        until: Timestamp,
    ) -> Result<Vec<LeaseToken>, StoreError>;

    /// When the earliest unleased trigger is due, if any (for precise sleeping).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;

    /// How many unleased triggers are due at `now`: the claimable
    /// backlog (the operator's `triggers_due` gauge).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn due_count(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// The alarm's pending triggers (leased or not), by due time.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn pending(&self, alarm: AlarmId) -> Result<Vec<Trigger>, StoreError>;

    /// Applies trigger plans on their own, with the usual version rule (a
    /// plan whose version is not the stored alarm's is skipped). The engine
    /// uses it to re-plan an alarm edited while one of its triggers was
    /// claimed: the edit's own plan could not replace the leased trigger,
    /// and the completion's plan was computed from the older version.
    ///
    /// # Errors
    /// Only infrastructure failures; nothing is stored on error.
    async fn reschedule(&self, plans: Vec<TriggerPlan>) -> Result<(), StoreError>;
}

/// Ringing occurrences and what users do to them, and the deliveries
/// rings made: the alarm service's port.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait RingingStore: Send + Sync {
    /// The owner's ringing occurrences of `alarm`, oldest first.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn ringing(&self, owner: UserId, alarm: AlarmId) -> Result<Vec<Ringing>, StoreError>;

    /// Every ringing occurrence of `owner` (snoozed ones included), oldest
    /// first, for the ringing list.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn ringing_of(&self, owner: UserId) -> Result<Vec<Ringing>, StoreError>;

    /// Commits a snooze or dismissal with its audit record and events.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when nothing of the alarm is
    /// ringing (or it belongs to another owner), and [`StoreError::Conflict`]
    /// when a snooze's count is not the stored count + 1, the stored record is
    /// already snoozed (a concurrent snooze won), or the snooze trigger does
    /// not belong to the ringing occurrence (other alarm, owner or
    /// occurrence, or a kind other than `Snooze(snoozes)`). Nothing is
    /// stored on error.
    async fn commit_ringing(&self, change: ChangeSet<RingingOp>) -> Result<(), StoreError>;

    /// Deliveries committed for `owner` (newest last), for the in-app channel and tests.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn deliveries(&self, owner: UserId) -> Result<Vec<Delivery>, StoreError>;
}

/// The one-engine right of stores that allow one engine, and the store's
/// own clock that engines on several machines agree on.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EngineRight: Send + Sync {
    /// The store's own clock. The one exception to "time is an argument":
    /// engines on several machines agree on `now` by asking the database,
    /// so skew between their clocks cannot fire a trigger early or twice.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn store_time(&self) -> Result<Timestamp, StoreError>;

    /// Takes or renews the right to run the one engine a store allows
    /// (SQLite: one per database file), held by `holder` until `until`;
    /// `false` while another holder's right has not expired at `now`.
    /// Stores that let many engines share the work (PostgreSQL) always
    /// return `true`.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn engine_lease(
        &self,
        holder: uuid::Uuid,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Gives the engine right up (graceful shutdown), if `holder` has it.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn engine_unlease(&self, holder: uuid::Uuid) -> Result<(), StoreError>;
}

/// All three queue ports of one store, as adapters hand them out: a store
/// implements the three traits and is a `TriggerQueue` by that alone; each
/// user takes the narrow one it needs (`Arc<dyn TriggerQueue>` upcasts).
pub trait TriggerQueue: TriggerClaims + RingingStore + EngineRight {}

impl<T: TriggerClaims + RingingStore + EngineRight + ?Sized> TriggerQueue for T {}
