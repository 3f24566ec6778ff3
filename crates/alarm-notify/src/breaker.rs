//! The per-host circuit breaker, judged on the instants the dispatcher hands it (its `Clock` port), so its open period ends when that clock says so: tests move a manual clock instead of sleeping.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use alarm_domain::jiff::{SignedDuration, Timestamp};

use crate::webhook::BreakerConfig;

/// One destination's breaker.
///
/// Closed, it records whether each call failed; once `window` results are
/// in and at least `failure_rate` of the last `window` failed, it opens.
/// Open, it refuses calls until the clock has moved `open_for` away from
/// the instant it opened (either way: a clock set back must not hold it
/// open). Then it is half open: calls go through (as many as are made, as
/// recloser did), and the first `min(window, 3)` results decide: closed
/// again below `failure_rate`, open again at or above it.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    Closed(Window),
    /// Open since this instant.
    Open(Timestamp),
    HalfOpen(Window),
}

/// The last `len` results, `true` for a failure.
#[derive(Debug)]
struct Window {
    results: VecDeque<bool>,
    len: usize,
}

impl Window {
    fn new(len: usize) -> Self {
        let len = len.max(1);
        Self {
            results: VecDeque::with_capacity(len),
            len,
        }
    }

    /// Records a result; the failure rate once the window is full.
    fn record(&mut self, failed: bool) -> Option<f32> {
        if self.results.len() == self.len {
            self.results.pop_front();
        }
        self.results.push_back(failed);
        (self.results.len() == self.len).then(|| {
            let failures = self.results.iter().filter(|f| **f).count();
            failures as f32 / self.len as f32
        })
    }
}

impl State {
    /// The `state` label of `webhook_breakers`.
    fn label(&self) -> &'static str {
        match self {
            State::Closed(_) => "closed",
            State::Open(_) => "open",
            State::HalfOpen(_) => "half_open",
        }
    }
}

/// Moves one host from `from` to `to` in `webhook_breakers` (hosts per
/// state in this process: a bounded label set, where a host label would
/// grow with every registration's URL).
fn moved(from: Option<&'static str>, to: &'static str) {
    if from == Some(to) {
        return;
    }
    if let Some(from) = from {
        metrics::gauge!("webhook_breakers", "state" => from).decrement(1.0);
    }
    metrics::gauge!("webhook_breakers", "state" => to).increment(1.0);
}

/// Registers every state of `webhook_breakers` at 0, so a dashboard finds
/// the series before the first host is called.
pub(crate) fn register_gauges() {
    for state in ["closed", "open", "half_open"] {
        metrics::gauge!("webhook_breakers", "state" => state).increment(0.0);
    }
}

impl Breaker {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        let state = State::Closed(Window::new(config.window));
        moved(None, state.label());
        Self {
            state: Mutex::new(state),
            config,
        }
    }

    fn trials(&self) -> usize {
        self.config.window.clamp(1, 3)
    }

    /// Whether a call may go out at `now`.
    pub(crate) fn permit(&self, now: Timestamp) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State::Open(since) = *state else {
            return true;
        };
        let open_for =
            SignedDuration::try_from(self.config.open_for).unwrap_or(SignedDuration::MAX);
        let over = now.duration_since(since).abs() >= open_for;
        if over {
            moved(Some("open"), "half_open");
            *state = State::HalfOpen(Window::new(self.trials()));
        }
        over
    }

    /// Records how a permitted call made at `now` went.
    pub(crate) fn record(&self, failed: bool, now: Timestamp) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let next = match &mut *state {
            State::Closed(window) => window
                .record(failed)
                .filter(|rate| *rate >= self.config.failure_rate)
                .map(|_| State::Open(now)),
            State::HalfOpen(window) => window.record(failed).map(|rate| {
                if rate >= self.config.failure_rate {
                    State::Open(now)
                } else {
                    State::Closed(Window::new(self.config.window))
                }
            }),
            // A call let through before another's failure opened it.
            State::Open(_) => None,
        };
        if let Some(next) = next {
            moved(Some(state.label()), next.label());
            *state = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("instant")
    }

    fn breaker(window: usize) -> Breaker {
        Breaker::new(BreakerConfig {
            failure_rate: 0.5,
            window,
            open_for: Duration::from_secs(30),
        })
    }

    /// Feeds `results` (`true`: failed) at `at`, each after asking for a
    /// permit; answers which of them were let through.
    fn feed(b: &Breaker, at: Timestamp, results: &[bool]) -> Vec<bool> {
        results
            .iter()
            .map(|failed| {
                let permitted = b.permit(at);
                if permitted {
                    b.record(*failed, at);
                }
                permitted
            })
            .collect()
    }

    #[test]
    fn it_opens_once_the_window_is_full_and_failing_enough() {
        // (results, which were let through)
        let table: [(&[bool], &[bool]); 5] = [
            // Three failures do not open a window of four: it is not full.
            (
                &[true, true, true, true, true],
                &[true, true, true, true, false],
            ),
            // Half of four failed: open, the fifth is held back.
            (
                &[false, true, false, true, false],
                &[true, true, true, true, false],
            ),
            // One in four is below the rate; the window slides.
            (
                &[false, false, false, true, false, false, false, true],
                &[true; 8],
            ),
            // Two of the last four: open after the fifth.
            (&[false, false, true, false, true], &[true; 5]),
            (
                &[false, false, true, false, true, false],
                &[true, true, true, true, true, false],
            ),
        ];
        for (results, want) in table {
            let b = breaker(4);
            assert_eq!(feed(&b, t(0), results), want, "{results:?}");
        }
    }

    /// Gauges by their label values, for [`metrics::with_local_recorder`].
    #[derive(Default)]
    struct Gauges(
        Mutex<std::collections::HashMap<String, std::sync::Arc<std::sync::atomic::AtomicU64>>>,
    );

    impl Gauges {
        fn get(&self, state: &str) -> f64 {
            self.0.lock().expect("gauges").get(state).map_or(0.0, |g| {
                f64::from_bits(g.load(std::sync::atomic::Ordering::SeqCst))
            })
        }
    }

    impl metrics::Recorder for Gauges {
        fn describe_counter(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn register_counter(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
            metrics::Counter::noop()
        }
        fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            assert_eq!(key.name(), "webhook_breakers");
            let state = key
                .labels()
                .map(|l| l.value().to_owned())
                .collect::<String>();
            metrics::Gauge::from_arc(
                self.0
                    .lock()
                    .expect("gauges")
                    .entry(state)
                    .or_default()
                    .clone(),
            )
        }
        fn register_histogram(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Histogram {
            metrics::Histogram::noop()
        }
    }

    #[test]
    fn each_host_is_counted_in_the_state_its_breaker_is_in() {
        let gauges = Gauges::default();
        metrics::with_local_recorder(&gauges, || {
            register_gauges();
            let counts = || ["closed", "open", "half_open"].map(|s| gauges.get(s));
            let (a, b) = (breaker(2), breaker(2));
            assert_eq!(counts(), [2.0, 0.0, 0.0], "two hosts, closed");
            feed(&a, t(0), &[true, true]);
            assert_eq!(counts(), [1.0, 1.0, 0.0], "one opened");
            assert!(a.permit(t(30)));
            assert_eq!(counts(), [1.0, 0.0, 1.0], "its trial period");
            feed(&a, t(30), &[false, false]);
            assert_eq!(counts(), [2.0, 0.0, 0.0], "closed again");
            feed(&b, t(31), &[true, true]);
            assert!(b.permit(t(61)));
            feed(&b, t(61), &[true, true]);
            assert_eq!(counts(), [1.0, 1.0, 0.0], "the trials failed: open again");
        });
    }

    #[test]
    fn the_open_period_ends_on_the_given_clock() {
        let b = breaker(2);
        assert_eq!(feed(&b, t(0), &[true, true, true]), [true, true, false]);
        // Nothing but the instants handed in counts: no real time passes.
        assert!(!b.permit(t(29)), "still open a second early");
        assert!(b.permit(t(30)), "half open after 30 s");
    }

    #[test]
    fn trials_close_it_or_open_it_again() {
        // (trial results, then whether a call at the same instant goes)
        let table: [(&[bool], bool); 4] = [
            (&[false, false], true),
            (&[false, true], false),
            (&[true, false], false),
            (&[true, true], false),
        ];
        for (trials, after) in table {
            let b = breaker(2);
            feed(&b, t(0), &[true, true]);
            assert_eq!(feed(&b, t(30), trials), [true, true], "{trials:?}");
            assert_eq!(b.permit(t(30)), after, "{trials:?}");
            if !after {
                assert!(!b.permit(t(59)), "{trials:?}: open for 30 s again");
                assert!(b.permit(t(60)), "{trials:?}");
            }
        }
    }

    #[test]
    fn a_clock_set_back_does_not_hold_it_open() {
        let b = breaker(2);
        feed(&b, t(100), &[true, true]);
        assert!(
            !b.permit(t(90)),
            "ten seconds back: still within the period"
        );
        assert!(b.permit(t(60)), "forty seconds back: the period is over");
    }

    #[test]
    fn successes_and_final_answers_keep_it_closed() {
        let b = breaker(2);
        assert_eq!(feed(&b, t(0), &[false; 10]), [true; 10]);
        // A late result of a call let through before it opened changes nothing.
        let b = breaker(2);
        feed(&b, t(0), &[true, true]);
        b.record(false, t(1));
        assert!(!b.permit(t(1)));
    }
}
