//! Rate limits: fixed-window counters per key (client address, user, login pair), the limits the operator set, the client's address behind trusted proxies, and the `RateLimit-*` headers every limited answer carries.
//!
//! A window is aligned to the Unix epoch (`now / period`), so every
//! instance that shares a store (Redis) agrees on where it starts and
//! ends, and `RateLimit-Reset` is the same for all of them. A hit adds one
//! and reads the new count in one step (`INCR` in Redis, one locked update
//! in process), so N concurrent requests over a limit of L let exactly L
//! through. The in-process store and the Redis store count the same way;
//! governor's GCRA could not give both the same boundary, so the counter is
//! ours.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

/// One limit: `limit` hits per `period_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The limit's name, reported in a 429's `quota` member.
    pub name: &'static str,
    /// Hits allowed per window.
    pub limit: u32,
    /// The window, in seconds.
    pub period_secs: u64,
}

impl Rate {
    /// `limit` per `period_secs`.
    pub const fn new(name: &'static str, limit: u32, period_secs: u64) -> Self {
        Self {
            name,
            limit,
            period_secs,
        }
    }
}

/// The operator's request limits (settings `RATE_LIMIT_*`, `LOGIN_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Every request to the API from one client address (IPv6 by /64).
    pub per_ip: Rate,
    /// Requests to `/api/v1/alarms…` by one user.
    pub alarms_per_user: Rate,
    /// Registrations from one client address.
    pub register_per_ip: Rate,
    /// Failed logins for one email from one client address.
    pub login_per_pair: Rate,
    /// Failed logins from one client address, any email.
    pub login_per_ip: Rate,
    /// Failed logins for one email from anywhere before a warning is
    /// logged (it refuses nothing: see `ARCHITECTURE.md`).
    pub login_alert_per_email: Rate,
    /// `POST /webhooks/{id}/test` by one user.
    pub test_pings_per_user: Rate,
    /// Requests to `/api/v1/webhooks…` with one API key.
    pub webhooks_per_key: Rate,
    /// Password-reset requests from one client address (each may send an
    /// e-mail, so this bounds the mail one address can cause).
    pub resets_per_ip: Rate,
    /// Password-reset requests for one e-mail address from anywhere (the
    /// mail one mailbox can be sent).
    pub resets_per_email: Rate,
    /// Verification links one account may ask to be re-sent (the mail one
    /// account can cause to its own address).
    pub verifications_per_user: Rate,
    /// Keys one in-process store tracks before new keys share one budget.
    pub max_keys: usize,
    /// How long a refusal (429) is held before it is sent. A client that
    /// retries the moment it is refused (most abusive scripts) then costs
    /// a timer instead of a core; see [`HELD_REFUSALS`].
    pub refusal_delay: std::time::Duration,
}

/// Refusals held back at once; past it a refusal is sent at once, so that
/// a client with thousands of connections cannot make the server hold
/// thousands of them (the connection cap bounds them too).
pub const HELD_REFUSALS: usize = 512;

impl RateLimits {
    /// Every limit that answers 429 when passed (the per-e-mail alert
    /// count refuses nothing), for the metrics' label set.
    pub fn refusing(&self) -> [Rate; 10] {
        [
            self.per_ip,
            self.alarms_per_user,
            self.register_per_ip,
            self.login_per_pair,
            self.login_per_ip,
            self.test_pings_per_user,
            self.webhooks_per_key,
            self.resets_per_ip,
            self.resets_per_email,
            self.verifications_per_user,
        ]
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_ip: Rate::new("requests_per_ip", 1000, 60),
            alarms_per_user: Rate::new("alarm_requests_per_user", 100, 60),
            register_per_ip: Rate::new("registrations_per_ip", 20, 3600),
            login_per_pair: Rate::new("login_failures_per_email_and_ip", 10, 900),
            login_per_ip: Rate::new("login_failures_per_ip", 50, 900),
            login_alert_per_email: Rate::new("login_failures_per_email", 100, 900),
            test_pings_per_user: Rate::new("test_pings_per_user", 10, 3600),
            resets_per_ip: Rate::new("password_resets_per_ip", 10, 3600),
            resets_per_email: Rate::new("password_resets_per_email", 3, 3600),
            webhooks_per_key: Rate::new("webhook_requests_per_api_key", 1000, 3600),
            verifications_per_user: Rate::new("verification_resends_per_user", 3, 3600),
            max_keys: 100_000,
            refusal_delay: std::time::Duration::from_millis(200),
        }
    }
}

/// The answer to one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The limit it was judged against.
    pub rate: Rate,
    /// Hits in the window, this one included.
    pub count: u64,
    /// Seconds until the window ends.
    pub reset_secs: u64,
    /// The window the hit was counted in (a refund goes back to it).
    pub window: u64,
}

impl Decision {
    /// Whether this hit is within the limit.
    pub fn allowed(&self) -> bool {
        self.count <= u64::from(self.rate.limit)
    }

    /// Hits left in the window.
    pub fn remaining(&self) -> u64 {
        u64::from(self.rate.limit).saturating_sub(self.count)
    }

    /// The tighter of two decisions (the one a client hits first): a
    /// refusal over an allowance, then the fewest hits left.
    pub fn tighter(self, other: Decision) -> Decision {
        match (self.allowed(), other.allowed()) {
            (false, true) => self,
            (true, false) => other,
            _ if other.remaining() < self.remaining() => other,
            _ => self,
        }
    }
}

/// Where counters live.
#[async_trait]
pub trait CounterStore: Send + Sync {
    /// Adds `delta` (1 for a hit, -1 to give one back) to `key`'s counter
    /// of the window `window` (which ends `ttl_secs` from now) and returns
    /// the new count.
    ///
    /// # Errors
    /// When the store cannot be reached.
    async fn add(&self, key: &str, window: u64, delta: i64, ttl_secs: u64) -> Result<u64, String>;
}

/// Counters in this process, bounded: at most `max_keys` keys are tracked;
/// expired ones are swept when the map is full, and while it is still full
/// every new key shares one overflow counter (so a spray of fresh keys
/// neither grows memory nor escapes counting, and the keys already tracked
/// keep their counts).
pub struct LocalCounters {
    max_keys: usize,
    map: Mutex<HashMap<String, (u64, u64, u64)>>,
    /// When expired keys were last swept (Unix seconds): at most once a
    /// second, so a full store does not scan itself on every hit.
    swept: AtomicU64,
}

impl LocalCounters {
    /// A store tracking at most `max_keys` keys.
    pub fn new(max_keys: usize) -> Self {
        Self {
            max_keys: max_keys.max(1),
            map: Mutex::new(HashMap::new()),
            swept: AtomicU64::new(0),
        }
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The counter shared by a limit's keys that arrive while the store is
/// full (one per limit: `<limit>:~overflow`).
const OVERFLOW: &str = "~overflow";

#[async_trait]
impl CounterStore for LocalCounters {
    async fn add(&self, key: &str, window: u64, delta: i64, ttl_secs: u64) -> Result<u64, String> {
        let now = now_secs();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_keys
            && !map.contains_key(key)
            && self.swept.swap(now, Ordering::Relaxed) != now
        {
            map.retain(|_, (_, _, expires)| *expires > now);
        }
        let overflow;
        let key = if map.len() >= self.max_keys && !map.contains_key(key) {
            tracing::warn!(
                keys = map.len(),
                "rate-limit store full; new keys share one budget per limit"
            );
            let limit = key.split(':').next().unwrap_or(key);
            overflow = format!("{limit}:{OVERFLOW}");
            overflow.as_str()
        } else {
            key
        };
        let entry = map
            .entry(key.to_owned())
            .or_insert((window, 0, now + ttl_secs));
        if entry.0 != window {
            *entry = (window, 0, now + ttl_secs);
        }
        entry.1 = entry.1.saturating_add_signed(delta);
        Ok(entry.1)
    }
}

/// Counters in Redis, shared by every instance that names the same server
/// (`RATE_LIMIT_REDIS_URL`): `INCRBY` and `EXPIRE` (to the window's end) in
/// one `MULTI`, so a hit is one atomic step across instances. Each call
/// waits at most `timeout`; a failure or a timeout makes the [`Limiter`]
/// count that hit in its own process instead (see its docs), and the
/// connection reconnects in the background.
pub struct RedisCounters {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    timeout: std::time::Duration,
}

impl RedisCounters {
    /// A store at `url` whose keys start with `prefix` (several
    /// deployments may share one server). Connects lazily: a server that
    /// is down at start is the same as one that goes away later.
    ///
    /// # Errors
    /// `url` is not a Redis URL.
    pub fn new(
        url: &secrecy::SecretString,
        prefix: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, String> {
        use secrecy::ExposeSecret;
        // The URL may carry a password: the error never repeats it.
        let client = redis::Client::open(url.expose_secret())
            .map_err(|_| "RATE_LIMIT_REDIS_URL: not a redis:// or rediss:// URL".to_owned())?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("RATE_LIMIT_REDIS_URL: {}", e.category()))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            timeout,
        })
    }
}

#[async_trait]
impl CounterStore for RedisCounters {
    async fn add(&self, key: &str, window: u64, delta: i64, ttl_secs: u64) -> Result<u64, String> {
        let key = format!("{}{key}:{window}", self.prefix);
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("INCRBY")
            .arg(&key)
            .arg(delta)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(ttl_secs.max(1))
            .ignore();
        match tokio::time::timeout(self.timeout, pipe.query_async::<(i64,)>(&mut conn)).await {
            Ok(Ok((count,))) => Ok(u64::try_from(count).unwrap_or(0)),
            Ok(Err(e)) => Err(format!("redis: {}", e.category())),
            Err(_) => Err("redis: no answer in time".to_owned()),
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Counts hits against [`Rate`]s in a [`CounterStore`]. When the store
/// fails (a shared Redis gone away), the hit is counted in this process
/// instead: every limit still holds, per instance, rather than failing
/// open (no limit at all) or closed (refusing every request while Redis
/// is down).
pub struct Limiter {
    store: Box<dyn CounterStore>,
    /// Used when the shared store fails: each instance then counts on its own.
    fallback: LocalCounters,
    /// Until when (Unix seconds) the shared store is skipped after a
    /// failure, so that a store that hangs costs one timeout a second, not
    /// one per request.
    down_until: std::sync::atomic::AtomicU64,
    /// Places for refusals being held back ([`HELD_REFUSALS`]).
    held: tokio::sync::Semaphore,
}

impl Limiter {
    /// A limiter over `store`, falling back to a local store of `max_keys`.
    pub fn new(store: Box<dyn CounterStore>, max_keys: usize) -> Self {
        Self {
            store,
            fallback: LocalCounters::new(max_keys),
            down_until: std::sync::atomic::AtomicU64::new(0),
            held: tokio::sync::Semaphore::new(HELD_REFUSALS),
        }
    }

    /// Waits `delay` before a refusal is sent, when one of the
    /// [`HELD_REFUSALS`] places is free; otherwise returns at once. Whether
    /// it waited.
    pub(crate) async fn hold_refusal(&self, delay: std::time::Duration) -> bool {
        if delay.is_zero() {
            return false;
        }
        let Ok(_place) = self.held.try_acquire() else {
            return false;
        };
        tokio::time::sleep(delay).await;
        true
    }

    /// A limiter counting in this process only.
    pub fn local(max_keys: usize) -> Self {
        Self::new(Box::new(LocalCounters::new(max_keys)), max_keys)
    }

    fn window(rate: Rate) -> (u64, u64) {
        let period = rate.period_secs.max(1);
        let now = now_secs();
        let window = now / period;
        (window, (window + 1) * period - now)
    }

    async fn add(&self, rate: Rate, key: &str, delta: i64, window: Option<u64>) -> Decision {
        let (current, reset_secs) = Self::window(rate);
        let window = window.unwrap_or(current);
        let key = format!("{}:{key}", rate.name);
        use std::sync::atomic::Ordering;
        let shared = if now_secs() >= self.down_until.load(Ordering::Relaxed) {
            match self.store.add(&key, window, delta, reset_secs).await {
                Ok(count) => Some(count),
                Err(e) => {
                    tracing::warn!(error = %e, "shared rate-limit store failed; counting in this process for a second");
                    self.down_until.store(now_secs() + 1, Ordering::Relaxed);
                    None
                }
            }
        } else {
            None
        };
        // Without the shared store, this instance's own counters: the limit
        // still holds per instance while the shared store is away.
        let count = match shared {
            Some(count) => count,
            None => self
                .fallback
                .add(&key, window, delta, reset_secs)
                .await
                .unwrap_or(0),
        };
        Decision {
            rate,
            count,
            reset_secs,
            window,
        }
    }

    /// Counts one hit on `key` and says whether it is within `rate`.
    pub async fn hit(&self, rate: Rate, key: &str) -> Decision {
        self.add(rate, key, 1, None).await
    }

    /// Gives back a hit counted earlier in the same window (a login that
    /// turned out right).
    pub async fn refund(&self, d: &Decision, key: &str) {
        let _ = self.add(d.rate, key, -1, Some(d.window)).await;
    }
}

/// A client address as a counter key: the IP, an IPv4-mapped IPv6 address
/// as its IPv4 form, any other IPv6 address by its /64 (one customer's
/// allocation: a client can pick any address inside it).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Which header the trusted proxies write (`TRUSTED_PROXY_HEADER`). Only
/// that one is read: proxies pass the other through as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, …` (nginx, AWS and OCI load balancers).
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// The client's address: the socket peer, unless the peer is a trusted
/// proxy; then, walking the proxies' header from the right, the first hop
/// that is not itself a trusted proxy (hops further left were written by
/// the client and prove nothing). A hop that does not parse (`unknown`,
/// an obfuscated name) ends the walk at the last trusted hop before it;
/// if every hop is trusted, the leftmost one.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &poem::http::HeaderMap,
    trusted: &[ipnet::IpNet],
    header: ProxyHeader,
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let name = match header {
        ProxyHeader::XForwardedFor => "x-forwarded-for",
        ProxyHeader::Forwarded => "forwarded",
    };
    let hops: Vec<Option<IpAddr>> = headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|hop| match header {
            ProxyHeader::XForwardedFor => parse_hop(hop.trim()),
            ProxyHeader::Forwarded => forwarded_for(hop),
        })
        .collect();
    let mut last_trusted = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => last_trusted = *ip,
            Some(ip) => return Some(*ip),
            None => return Some(last_trusted),
        }
    }
    Some(last_trusted)
}

/// The `for=` address of one `Forwarded` element (RFC 7239), if it is one.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_hop(value.trim().trim_matches('"')))
            .flatten()
    })
}

/// An address as a proxy writes it: `1.2.3.4`, `1.2.3.4:5678`, `[::1]`,
/// `[::1]:5678` or a bare IPv6 address.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

/// The `RateLimit-*` headers of `d` (draft-ietf-httpapi-ratelimit-headers,
/// the separate-fields form) on `resp`, and `Retry-After` when refused.
pub(crate) fn set_headers(resp: &mut poem::Response, d: &Decision) {
    use poem::http::HeaderValue;
    let headers = resp.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(d.rate.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(d.remaining()));
    headers.insert("ratelimit-reset", HeaderValue::from(d.reset_secs));
    if !d.allowed() {
        headers.insert(
            poem::http::header::RETRY_AFTER,
            HeaderValue::from(d.reset_secs.max(1)),
        );
    }
}

tokio::task_local! {
    /// The tightest decision taken while answering this request (the
    /// middleware's and the handler's), for the answer's headers.
    pub(crate) static DECISION: Mutex<Option<Decision>>;
}

/// Records `d` for the current request's headers (outside a request: nothing).
pub(crate) fn note(d: Decision) {
    let _ = DECISION.try_with(|slot| {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(match *slot {
            Some(old) => old.tighter(d),
            None => d,
        });
    });
}

/// The 429 response (problem and headers) for a refused decision, for
/// code outside an operation (a security scheme's checker).
pub(crate) fn refusal_response(d: &Decision, detail: &str) -> poem::Response {
    note(*d);
    counted(d);
    let mut resp = crate::problem::Problem::new(crate::problem::ProblemType::RateLimited, detail)
        .with_quota(d.rate.name, u64::from(d.rate.limit))
        .into_http();
    set_headers(&mut resp, d);
    resp
}

/// The 429 answer for a refused decision.
pub(crate) fn refused(d: &Decision, detail: &str) -> crate::problem::ApiError {
    note(*d);
    counted(d);
    crate::problem::ApiError::RateLimited(
        poem_openapi::payload::Json(
            crate::problem::Problem::new(crate::problem::ProblemType::RateLimited, detail)
                .with_quota(d.rate.name, u64::from(d.rate.limit)),
        ),
        Some(d.reset_secs.max(1)),
    )
}

/// Counts a refusal in `rate_limit_rejections_total`, labelled with the
/// limit's name (a fixed set).
pub(crate) fn counted(d: &Decision) {
    metrics::counter!("rate_limit_rejections_total", "limit" => d.rate.name).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_are_held_only_while_a_place_is_free() {
        let limiter = Limiter::local(100);
        assert!(
            limiter
                .hold_refusal(std::time::Duration::from_millis(1))
                .await
        );
        assert!(!limiter.hold_refusal(std::time::Duration::ZERO).await);
        let all = u32::try_from(HELD_REFUSALS).expect("fits");
        let _taken = limiter.held.try_acquire_many(all).expect("all places");
        // With every place taken it returns at once: were it to wait, the
        // test would hang for the hour instead of passing.
        assert!(
            !limiter
                .hold_refusal(std::time::Duration::from_secs(3600))
                .await
        );
    }

    fn net(s: &str) -> ipnet::IpNet {
        s.parse().expect("net")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> poem::http::HeaderMap {
        let mut h = poem::http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = [net("10.0.0.0/8"), net("::1/128")];
        let xff = ProxyHeader::XForwardedFor;
        let lb: IpAddr = "10.0.0.5".parse().expect("ip");
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(
            client_ip(Some(lb), &h, &trusted, xff),
            Some(ip("203.0.113.7")),
            "the spoofed left hop is ignored"
        );
        let direct = ip("198.51.100.1");
        assert_eq!(
            client_ip(Some(direct), &h, &trusted, xff),
            Some(direct),
            "an untrusted peer's headers are ignored"
        );
        // Only the configured header is read: a client's own `Forwarded`
        // passes a proxy that writes X-Forwarded-For untouched.
        let both = headers(&[
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "203.0.113.8"),
        ]);
        assert_eq!(
            client_ip(Some(lb), &both, &trusted, xff),
            Some(ip("203.0.113.8"))
        );
        let fwd = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"",
        )]);
        assert_eq!(
            client_ip(Some(lb), &fwd, &trusted, ProxyHeader::Forwarded),
            Some(ip("2001:db8::1"))
        );
        let all_trusted = headers(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(
            client_ip(Some(lb), &all_trusted, &trusted, xff),
            Some(ip("10.1.1.1"))
        );
        assert_eq!(
            client_ip(Some(lb), &headers(&[]), &trusted, xff),
            Some(lb),
            "no header: the proxy itself"
        );
        let garbled = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.0.0.7")]);
        assert_eq!(
            client_ip(Some(lb), &garbled, &trusted, xff),
            Some(ip("10.0.0.7")),
            "a hop that does not parse ends the walk at the last trusted one"
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1".parse().expect("ip")),
            address_key("2001:db8:1:2:bbbb::9".parse().expect("ip"))
        );
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().expect("ip")),
            "192.0.2.1"
        );
    }

    #[tokio::test]
    async fn a_full_store_shares_one_budget_for_new_keys() {
        let store = LocalCounters::new(2);
        assert_eq!(store.add("a", 1, 1, 60).await, Ok(1));
        assert_eq!(store.add("b", 1, 1, 60).await, Ok(1));
        assert_eq!(store.add("r:c", 1, 1, 60).await, Ok(1), "overflow");
        assert_eq!(store.add("r:d", 1, 1, 60).await, Ok(2), "the same overflow");
        assert_eq!(
            store.add("q:e", 1, 1, 60).await,
            Ok(1),
            "another limit has its own overflow"
        );
        assert_eq!(
            store.add("a", 1, 1, 60).await,
            Ok(2),
            "tracked keys count on"
        );
        assert!(store.len() <= 4);
        assert_eq!(
            store.add("a", 2, 1, 60).await,
            Ok(1),
            "a new window starts at one"
        );
    }

    #[tokio::test]
    async fn exactly_the_limit_passes_and_refunds_give_back() {
        let limiter = Limiter::local(100);
        let rate = Rate::new("t", 3, 3600);
        let mut allowed = 0;
        for _ in 0..5 {
            if limiter.hit(rate, "k").await.allowed() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 3);
        let other = Rate::new("u", 2, 3600);
        let d = limiter.hit(other, "k").await;
        assert_eq!((d.count, d.remaining()), (1, 1));
        limiter.refund(&d, "k").await;
        assert_eq!(limiter.hit(other, "k").await.count, 1);
    }
}
