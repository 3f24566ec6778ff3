//! Login throttling: after too many failed logins for one email from one client address, for one email from anywhere, or from one address for any email, within a window, further attempts get 429 until the window passes.
//!
//! The tight limit is per (email, address): a guesser at one address is
//! stopped after a few tries without locking the account's owner out from
//! elsewhere. The per-email limit is ten times higher, against guessing
//! spread over many addresses (reaching it does lock the account for the
//! rest of the window: the price of bounding distributed guessing).
//!
//! The counters live in this process. Behind a load balancer with several
//! instances each one counts on its own, so the effective limit is the
//! limit times the number of instances; a shared store (the database or
//! Redis) is the follow-up when that matters.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// Failed attempts allowed per email from one address in a window.
pub const MAX_FAILURES_PER_EMAIL_AND_ADDRESS: u32 = 10;
/// Failed attempts allowed per email from all addresses in a window.
pub const MAX_FAILURES_PER_EMAIL: u32 = 100;
/// Failed attempts allowed per client address in a window.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 50;
/// The window.
pub const WINDOW: SignedDuration = SignedDuration::from_mins(15);
/// Keys tracked before expired ones are swept (bounds memory under a spray).
/// Addresses are keyed by IP (an IPv6 client by its /64), never by port:
/// every new connection has a new port.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub(crate) struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Timestamp)>>,
}

/// The throttle's key for a client address: the IP, or an IPv6 /64.
pub(crate) fn client_key(addr: &poem::web::RemoteAddr) -> String {
    match addr.0.as_socket_addr().map(std::net::SocketAddr::ip) {
        Some(std::net::IpAddr::V4(ip)) => ip.to_string(),
        Some(std::net::IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        // Unix sockets and the like: one bucket.
        None => "local".to_owned(),
    }
}

fn keys(email: &str, address: &str) -> [(String, u32); 3] {
    let email = email.trim().to_lowercase();
    [
        (
            format!("pair:{email} {address}"),
            MAX_FAILURES_PER_EMAIL_AND_ADDRESS,
        ),
        (format!("email:{email}"), MAX_FAILURES_PER_EMAIL),
        (format!("addr:{address}"), MAX_FAILURES_PER_ADDRESS),
    ]
}

impl LoginThrottle {
    /// `Some(seconds to wait)` when the pair, the email or the address is over its limit.
    pub(crate) fn blocked(&self, email: &str, address: &str, now: Timestamp) -> Option<u64> {
        let map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys(email, address)
            .iter()
            .filter_map(|(key, limit)| {
                let (count, since) = map.get(key)?;
                let ends = *since + WINDOW;
                (*count >= *limit && ends > now)
                    .then(|| now.duration_until(ends).as_secs().max(1).unsigned_abs())
            })
            .max()
    }

    /// Counts a failed attempt.
    pub(crate) fn failed(&self, email: &str, address: &str, now: Timestamp) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_KEYS {
            map.retain(|_, (_, since)| *since + WINDOW > now);
        }
        for (key, _) in keys(email, address) {
            // When full of live entries, existing counters keep counting and
            // new keys wait for the sweep: a spray of fresh keys cannot
            // reset the counters of the account under attack.
            if map.len() >= MAX_KEYS && !map.contains_key(&key) {
                tracing::warn!(
                    keys = map.len(),
                    "login throttle full; not tracking new keys"
                );
                continue;
            }
            let entry = map.entry(key).or_insert((0, now));
            if entry.1 + WINDOW <= now {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// A successful login clears the pair's failures (not the email's nor
    /// the address's, which count other guessers too).
    pub(crate) fn succeeded(&self, email: &str, address: &str) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let [(pair, _), _, _] = keys(email, address);
        map.remove(&pair);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let t = LoginThrottle::default();
        let t0 = Timestamp::UNIX_EPOCH;
        for _ in 0..MAX_FAILURES_PER_EMAIL_AND_ADDRESS {
            assert_eq!(t.blocked("Ana@x.com", "1.2.3.4", t0), None);
            t.failed("ana@x.com", "1.2.3.4", t0);
        }
        assert_eq!(t.blocked("ANA@x.com", "1.2.3.4", t0), Some(900));
        assert_eq!(
            t.blocked("ana@x.com", "5.6.7.8", t0),
            None,
            "the owner elsewhere is not locked out"
        );
        assert_eq!(
            t.blocked("bob@x.com", "1.2.3.4", t0),
            None,
            "the address is under its own limit"
        );
        assert_eq!(t.blocked("ana@x.com", "1.2.3.4", t0 + WINDOW), None);
        t.failed("ana@x.com", "1.2.3.4", t0 + WINDOW);
        assert_eq!(
            t.blocked("ana@x.com", "1.2.3.4", t0 + WINDOW),
            None,
            "a new window starts at one"
        );
        t.succeeded("ana@x.com", "1.2.3.4");
        // Guessing one account from many addresses.
        let u = LoginThrottle::default();
        for i in 0..MAX_FAILURES_PER_EMAIL {
            u.failed("carol@x.com", &format!("10.0.{}.{}", i / 250, i % 250), t0);
        }
        assert!(
            u.blocked("carol@x.com", "192.0.2.1", t0).is_some(),
            "a distributed guess"
        );
        // Spraying many accounts from one address.
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            t.failed(&format!("u{i}@x.com"), "9.9.9.9", t0);
        }
        assert!(
            t.blocked("new@x.com", "9.9.9.9", t0).is_some(),
            "a spray from one address"
        );
    }
}
