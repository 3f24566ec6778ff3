//! The engine's health: when it last reached the database, whether it holds the engine right, and what it rang and missed (how late is the `alarm_fire_lateness_seconds` histogram on `/metrics`).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use alarm_domain::jiff::Timestamp;

/// What the engine's readiness check reads.
#[derive(Debug, Default)]
pub struct EngineHealth {
    /// Unix milliseconds of the last claim cycle that reached the database.
    last_ok_ms: AtomicI64,
    /// Whether this engine holds the store's engine right.
    pub(crate) holds_right: AtomicBool,
    pub(crate) rang: AtomicU64,
    pub(crate) missed: AtomicU64,
    /// Rings committed ahead of their instant (prepared).
    pub(crate) prepared: AtomicU64,
    /// Rings committed at or after their instant (found due or late).
    pub(crate) committed_late: AtomicU64,
    /// Holiday re-plan jobs this engine finished.
    pub(crate) replans_finished: tokio::sync::watch::Sender<u64>,
}

impl EngineHealth {
    /// `Ok` while the last successful claim cycle is recent (within
    /// `window`); the error names what is wrong.
    ///
    /// # Errors
    /// A short reason.
    pub fn check(&self, window: Duration) -> Result<(), String> {
        let last = self.last_ok_ms.load(Ordering::Relaxed);
        if last == 0 {
            return Err("the engine has not reached the database yet".to_owned());
        }
        let age = Timestamp::now().as_millisecond() - last;
        if age > i64::try_from(window.as_millis()).unwrap_or(i64::MAX) {
            return Err(format!(
                "the engine has not reached the database for {age} ms"
            ));
        }
        Ok(())
    }

    /// How many holiday re-plan jobs this engine has finished, as a
    /// receiver that sees each new count (what a caller awaits to know a
    /// holiday write has reached every user of its country).
    pub fn replans_finished(&self) -> tokio::sync::watch::Receiver<u64> {
        self.replans_finished.subscribe()
    }

    /// Whether this engine holds the engine right (always, on PostgreSQL).
    pub fn holds_right(&self) -> bool {
        self.holds_right.load(Ordering::Relaxed)
    }
    /// Rings this engine committed ahead of their instant since start.
    pub fn prepared(&self) -> u64 {
        self.prepared.load(Ordering::Relaxed)
    }
    /// Rings this engine committed at or after their instant since start
    /// (found due: after an outage, created inside the commit's time, or a
    /// window too short for the load).
    pub fn committed_late(&self) -> u64 {
        self.committed_late.load(Ordering::Relaxed)
    }
    /// Occurrences rung since start (a prepared ring once its instant has
    /// passed).
    pub fn rang(&self) -> u64 {
        self.rang.load(Ordering::Relaxed)
    }
    /// Occurrences recorded missed since start.
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }
    pub(crate) fn ok(&self) {
        self.last_ok_ms
            .store(Timestamp::now().as_millisecond(), Ordering::Relaxed);
    }
}
