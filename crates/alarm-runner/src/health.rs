//! The engine's health: when it last reached the database, whether it holds the engine right, what it rang and missed, and the histogram of how late rings were committed.

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
    /// Holiday re-plan jobs this engine finished.
    pub(crate) replans_finished: tokio::sync::watch::Sender<u64>,
    /// Lateness of rung triggers at commit, per millisecond up to 10 s
    /// (the last bucket holds everything later).
    lateness: std::sync::Mutex<Vec<u64>>,
}

/// How late rings were committed, from the engine's own measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lateness {
    /// Rings measured.
    pub count: u64,
    /// Median, milliseconds.
    pub p50_ms: u64,
    /// 99th percentile, milliseconds.
    pub p99_ms: u64,
    /// Worst, milliseconds (10000 means 10 s or more).
    pub max_ms: u64,
}

const LATENESS_BUCKETS: usize = 10_001;

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
    /// Occurrences rung since start.
    pub fn rang(&self) -> u64 {
        self.rang.load(Ordering::Relaxed)
    }
    /// Occurrences recorded missed since start.
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }
    /// Lateness of the rings committed since start: from each trigger's
    /// instant to the end of the commit that recorded it.
    pub fn lateness(&self) -> Lateness {
        let buckets = self
            .lateness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count: u64 = buckets.iter().sum();
        if count == 0 {
            return Lateness::default();
        }
        let rank = |q: f64| {
            let target = ((count as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (ms, n) in buckets.iter().enumerate() {
                seen += n;
                if seen >= target {
                    return ms as u64;
                }
            }
            (LATENESS_BUCKETS - 1) as u64
        };
        Lateness {
            count,
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: buckets.iter().rposition(|n| *n > 0).unwrap_or(0) as u64,
        }
    }

    pub(crate) fn record_lateness(&self, samples: &[u64]) {
        let mut buckets = self
            .lateness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.is_empty() {
            buckets.resize(LATENESS_BUCKETS, 0);
        }
        for ms in samples {
            buckets[(*ms as usize).min(LATENESS_BUCKETS - 1)] += 1;
        }
    }

    pub(crate) fn ok(&self) {
        self.last_ok_ms
            .store(Timestamp::now().as_millisecond(), Ordering::Relaxed);
    }
}
