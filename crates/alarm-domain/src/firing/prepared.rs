//! Prepared fires: the instant an outcome takes effect, the one visibility rule every reader applies, and event ids that sort by that instant.
//!
//! The engine claims a `fire` trigger up to its prefetch window before the
//! trigger's instant, judges it *at* that instant and commits the whole
//! outcome then, so nothing is written when the instant comes. Readers
//! (the stores' list and conflict reads, the outbox's claims) see an
//! outcome only once its instant is at or before the database's clock:
//! that one comparison, [`visible`], is the whole of "it rang".

use jiff::Timestamp;

use super::{FireDecision, FirePolicy, SkipReason, Verdict, decide_fire, judge};
use crate::model::Alarm;
use crate::ports::{FireOutcome, IdSource, TriggerPlan};
use crate::schedule::Calendar;
use crate::trigger::{Ringing, Trigger, TriggerKind};

/// The instant a claimed trigger is judged at, which is also when its
/// outcome takes effect: its own instant when it was claimed ahead of it
/// (prepared), else `now` (it is due or late, and takes effect at once).
#[must_use]
pub fn effective_at(due: Timestamp, now: Timestamp) -> Timestamp {
    due.max(now)
}

/// Whether an outcome that takes effect at `effective` exists for a reader
/// whose database clock reads `now`. The SQL adapter writes the same
/// comparison as `effective <= <the database's clock>`.
#[must_use]
pub fn visible(effective: Timestamp, now: Timestamp) -> bool {
    effective <= now
}

/// Judges a claimed trigger as of `now` (the store's clock) and returns
/// the instant it was judged at: its own instant when that is ahead
/// (prepared), else `now`. A `fire` whose alarm changed after it was
/// planned, or whose occurrence moved, does not ring, and is judged at
/// `now` whatever its instant, so the alarm's next fire is planned from
/// now: an occurrence the change moved earlier than this one is not passed
/// over.
#[must_use]
pub fn judge_claim(
    trigger: &Trigger,
    alarm: Option<&Alarm>,
    calendar: Option<&Calendar>,
    ringing: Option<&Ringing>,
    policy: &FirePolicy,
    now: Timestamp,
    ids: &dyn IdSource,
) -> (FireOutcome, Verdict, Timestamp) {
    let mut at = effective_at(trigger.due_at, now);
    if at > now
        && trigger.kind == TriggerKind::Fire
        && let Some(calendar) = calendar
        && matches!(
            decide_fire(trigger, alarm, calendar),
            FireDecision::Skip(SkipReason::AlarmChanged | SkipReason::OccurrenceMoved)
        )
    {
        at = now;
    }
    let (outcome, verdict) = judge(trigger, alarm, calendar, ringing, policy, at, ids);
    (outcome, verdict, at)
}

/// Whether a claimed trigger's outcome must not be committed but the
/// trigger put back (unleased) to be judged again: it was prepared ahead
/// of its instant (`ahead`, by the store's clock at the commit) from an
/// alarm version that is no longer the stored one (`stored`; `None`: the
/// alarm is gone). An edit that lands between the engine's load and its
/// commit could not withdraw an outcome that was not committed yet, so
/// the commit itself declines it; a trigger due already rang as judged,
/// and the engine's re-plan after the edit follows it.
#[must_use]
pub fn stale_preparation(outcome: &FireOutcome, stored: Option<u64>, ahead: bool) -> bool {
    let judged = match &outcome.next {
        Some(TriggerPlan::Reschedule { version, .. }) => version.get(),
        _ => return false,
    };
    ahead && stored != Some(judged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_outcome_takes_effect_at_its_instant_and_a_late_one_at_once() {
        let due = Timestamp::from_second(1_800_000_000).expect("instant");
        let early = due - jiff::SignedDuration::from_secs(20);
        let late = due + jiff::SignedDuration::from_millis(3);
        assert_eq!(effective_at(due, early), due);
        assert_eq!(effective_at(due, late), late);
        let before = due - jiff::SignedDuration::from_millis(1);
        assert!(!visible(due, before));
        assert!(visible(due, due));
    }

    #[test]
    fn an_id_at_an_instant_carries_it_and_sorts_by_it() {
        let ids = crate::ports::RandomIds;
        let at = Timestamp::from_millisecond(1_800_000_000_123).expect("instant");
        let id = crate::ports::IdSource::uuid_at(&ids, at);
        let (secs, nanos) = id.get_timestamp().expect("v7").to_unix();
        assert_eq!(
            secs * 1000 + u64::from(nanos) / 1_000_000,
            1_800_000_000_123
        );
        assert_eq!(id.get_version_num(), 7);
        let later =
            crate::ports::IdSource::uuid_at(&ids, at + jiff::SignedDuration::from_millis(1));
        assert!(later > id, "ids sort by their instant");
        let made: Vec<uuid::Uuid> = (0..100)
            .map(|_| crate::ports::IdSource::uuid_at(&ids, at))
            .collect();
        assert!(
            made.windows(2).all(|w| w[0] < w[1]),
            "ids for one instant sort in the order they were made"
        );
        assert!(
            made.iter()
                .all(|u| u.get_version_num() == 7 && u.get_variant() == uuid::Variant::RFC4122),
            "still v7 ids"
        );
    }

    #[test]
    fn only_a_preparation_from_an_older_version_is_declined() {
        let outcome = |next| FireOutcome {
            events: Vec::new(),
            deliveries: Vec::new(),
            follow_up: None,
            next,
            ringing: crate::trigger::RingingChange::None,
        };
        let at = |v| {
            Some(TriggerPlan::Reschedule {
                alarm: crate::ids::AlarmId::generate(),
                version: crate::model::AlarmVersion::new(v).expect("version"),
                next: None,
            })
        };
        let judged_at_1 = outcome(at(1));
        assert!(
            !stale_preparation(&judged_at_1, Some(1), true),
            "same version"
        );
        assert!(
            stale_preparation(&judged_at_1, Some(2), true),
            "edited meanwhile"
        );
        assert!(
            stale_preparation(&judged_at_1, None, true),
            "deleted meanwhile"
        );
        assert!(
            !stale_preparation(&judged_at_1, Some(2), false),
            "due already: it rang"
        );
        assert!(
            !stale_preparation(&outcome(None), Some(2), true),
            "a follow-up plans nothing"
        );
    }
}
