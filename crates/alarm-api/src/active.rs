//! `active_users`: how many distinct accounts made an authenticated request to this instance in the last 15 minutes (per instance: a sum over instances counts a user once per instance it reached).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alarm_domain::ids::UserId;

/// How long a request keeps its account counted.
const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Accounts tracked at most: past it, new accounts are not counted (the
/// gauge saturates) so the map's memory stays bounded.
const MAX_TRACKED: usize = 1_000_000;

/// The last authenticated request of each recent account.
#[derive(Default)]
pub(crate) struct ActiveUsers {
    seen: Mutex<HashMap<UserId, Instant>>,
}

impl ActiveUsers {
    /// `user` made an authenticated request at `now`. When the map is full
    /// it is swept first, so it stays bounded even if nothing scrapes.
    pub(crate) fn seen(&self, user: UserId, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_TRACKED && !seen.contains_key(&user) {
            seen.retain(|_, at| now.saturating_duration_since(*at) < WINDOW);
        }
        if seen.len() < MAX_TRACKED || seen.contains_key(&user) {
            seen.insert(user, now);
        }
    }

    /// Forgets the accounts last seen more than 15 minutes before `now`,
    /// sets the `active_users` gauge and answers it (at each scrape).
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, at| now.saturating_duration_since(*at) < WINDOW);
        let n = seen.len();
        metrics::gauge!("active_users").set(n as f64);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_counts_once_for_fifteen_minutes_after_its_last_request() {
        let active = ActiveUsers::default();
        let t0 = Instant::now();
        let (ana, bob) = (UserId::generate(), UserId::generate());
        active.seen(ana, t0);
        active.seen(ana, t0 + Duration::from_secs(60));
        active.seen(bob, t0 + Duration::from_secs(120));
        assert_eq!(active.sweep(t0 + Duration::from_secs(130)), 2, "ana once");
        assert_eq!(
            active.sweep(t0 + Duration::from_secs(60) + WINDOW),
            1,
            "ana's last request is 15 minutes old"
        );
        assert_eq!(active.sweep(t0 + Duration::from_secs(120) + WINDOW), 0);
    }
}
