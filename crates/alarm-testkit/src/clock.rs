//! A clock tests move by hand, and an id source that counts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::ports::{Clock, IdSource};

/// A clock that only moves when told to: lease expiry, escalation delays
/// and grace windows are tested without sleeping.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Sets the time (it may go backwards, as a real clock can).
    pub fn set(&self, to: Timestamp) {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = to;
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = now.checked_add(by).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// UUID v7 ids from a counter: the n-th id is the same in every run, and
/// ids still sort in creation order.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl SequentialIds {
    /// A source whose first id has counter value 1.
    pub fn new() -> Self {
        Self {
            next: AtomicU64::new(1),
        }
    }

    /// A source whose first id has counter value `first`: a second source
    /// over the same store (a restarted process, a restored backup) that
    /// must never hand out an id the first one did.
    pub fn starting_at(first: u64) -> Self {
        Self {
            next: AtomicU64::new(first),
        }
    }
}

impl IdSource for SequentialIds {
    fn next_uuid(&self) -> uuid::Uuid {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // The counter is the timestamp (in ms) and the random bits, so every
        // id is distinct and increasing.
        let mut random = [0u8; 10];
        random[2..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000 + n, &random).into_uuid()
    }

    /// The next id of the counter: its ids carry the counter, not the time,
    /// and sort in the order they were made, which tests compare.
    fn uuid_at(&self, _at: alarm_domain::jiff::Timestamp) -> uuid::Uuid {
        self.next_uuid()
    }

    /// Deterministic and distinct per call (never use these as real
    /// secrets): each call takes the next counter value and spreads it with
    /// splitmix64.
    fn secret_bytes(&self, buf: &mut [u8]) -> Result<(), String> {
        let mut state = self.next.fetch_add(1, Ordering::Relaxed);
        for chunk in buf.chunks_mut(8) {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_moves_only_when_told() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(SignedDuration::from_mins(5));
        assert_eq!(
            clock.now(),
            "2026-01-01T00:05:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn ids_are_v7_increasing_and_reproducible() {
        let (a, b) = (SequentialIds::new(), SequentialIds::new());
        let (a1, a2) = (a.next_uuid(), a.next_uuid());
        assert_eq!(a1, b.next_uuid());
        assert!(a1 < a2);
        assert_eq!(a1.get_version_num(), 7);
    }
}
