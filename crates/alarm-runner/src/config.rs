//! The engine's settings and their defaults.

use std::time::Duration;

use alarm_domain::firing::FirePolicy;

/// How the engine claims, leases and judges lateness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerConfig {
    /// How far ahead of their instant triggers are claimed. A `fire`
    /// claimed ahead is judged at its instant and committed at once
    /// (prepared; readers see it from the instant on), so its whole
    /// commit is paid before the instant, not after it; follow-ups are held
    /// until theirs.
    pub prefetch: Duration,
    /// Most triggers claimed, and completed, per database round trip.
    pub batch: u32,
    /// How long a claim is leased; the heartbeat renews it every third of
    /// this, and a crashed engine's claims are rescued after it.
    pub lease: Duration,
    /// An occurrence found later than this after its instant is recorded
    /// `missed` and does not ring ([`FirePolicy::grace`]).
    pub grace: Duration,
    /// How long an occurrence rings unanswered after its last escalation
    /// before it is recorded `expired` ([`FirePolicy::expiry_window`]).
    pub expiry_window: Duration,
    /// The longest sleep between two looks at the queue when nothing wakes
    /// the engine.
    pub idle_poll: Duration,
    /// Most claimed triggers held at once.
    pub max_in_flight: usize,
    /// How long graceful shutdown may take to finish or release work.
    pub shutdown_timeout: Duration,
    /// Users per batch of a holiday re-plan job.
    pub replan_batch: usize,
    /// The longest sleep between two looks for a pending re-plan job when
    /// nothing wakes the engine.
    pub replan_poll: Duration,
}

impl RunnerConfig {
    /// The windows the domain judges due triggers by.
    #[must_use]
    pub fn fire_policy(&self) -> FirePolicy {
        FirePolicy {
            grace: self.grace,
            expiry_window: self.expiry_window,
        }
    }
}

impl Default for RunnerConfig {
    fn default() -> Self {
        // The lateness windows are the domain's defaults, stated once there.
        let policy = FirePolicy::default();
        Self {
            // Half a second past a whole number: alarms ring on whole
            // seconds (most on whole minutes), and a whole second's rings
            // enter the window when it reaches them. At 30 s they did so at
            // another whole second, the very moment that second's prepared
            // sends were released, and the two competed for the same cores:
            // 2,000 webhooks a second reached a sink p99 238 ms after their
            // instant; at 30.5 s, preparation falls between the releases:
            // p99 121, 139 and 137 ms (`cargo xtask bench worker -- --steady`).
            prefetch: Duration::from_millis(30_500),
            batch: 1000,
            lease: Duration::from_secs(30),
            grace: policy.grace,
            expiry_window: policy.expiry_window,
            idle_poll: Duration::from_secs(1),
            max_in_flight: 20_000,
            shutdown_timeout: Duration::from_secs(10),
            replan_batch: 200,
            replan_poll: Duration::from_secs(2),
        }
    }
}
