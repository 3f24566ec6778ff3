//! Prepared fires: the instant an outcome takes effect, the one visibility rule every reader applies, and event ids that sort by that instant.
//!
//! The engine claims a `fire` trigger up to its prefetch window before the
//! trigger's instant, judges it *at* that instant and commits the whole
//! outcome then, so nothing is written when the instant comes. Readers
//! (the stores' list and conflict reads, the outbox's claims) see an
//! outcome only once its instant is at or before the database's clock:
//! that one comparison, [`visible`], is the whole of "it rang".

use jiff::Timestamp;

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
        assert_ne!(
            crate::ports::IdSource::uuid_at(&ids, at),
            id,
            "and stay unique"
        );
    }
}
