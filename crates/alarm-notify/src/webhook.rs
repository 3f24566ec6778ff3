//! One signed webhook POST: SSRF-checked connection, 10 s timeout, no redirects, a circuit breaker per destination host, and the answer classified as delivered, worth retrying or final.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alarm_domain::jiff::Timestamp;
use alarm_domain::model::WebhookRegistration;

use crate::breaker::Breaker;
use crate::resolve::{GuardedResolver, Resolve};
use crate::signature;
use crate::ssrf::{AddressPolicy, Refused};

/// When a destination host's breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Failure rate (0..=1) over the last `window` attempts that opens it.
    pub failure_rate: f32,
    /// Attempts the rate is measured over (also the minimum before it can open).
    pub window: usize,
    /// How long it stays open before letting trial requests through, on
    /// the dispatcher's clock (the `now` each send is made at).
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate: 0.5,
            window: 20,
            open_for: Duration::from_secs(30),
        }
    }
}

/// How the sender behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// Per request, connect to last byte of the answer's head.
    pub timeout: Duration,
    /// Which addresses may be reached.
    pub policy: AddressPolicy,
    /// The per-host breaker.
    pub breaker: BreakerConfig,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            policy: AddressPolicy::default(),
            breaker: BreakerConfig::default(),
        }
    }
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx.
    Delivered {
        /// The status code.
        code: u16,
    },
    /// Timeout, connection failure, 5xx, 408 or 429: worth another try.
    Transient {
        /// The status code, if an answer came.
        code: Option<u16>,
        /// The receiver's `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// Why (no URL, no secret).
        error: String,
    },
    /// Any other answer, a refused address, a malformed registration: final.
    Permanent {
        /// The status code, if an answer came.
        code: Option<u16>,
        /// Why.
        error: String,
    },
    /// The host's breaker is open: not sent; try again after `wait`.
    Rejected {
        /// How long the breaker stays open at most.
        wait: Duration,
    },
}

/// Could not build the HTTP client.
#[derive(Debug, thiserror::Error)]
#[error("could not build the webhook HTTP client: {0}")]
pub struct BuildError(String);

/// Sends webhooks.
pub struct WebhookSender {
    client: reqwest::Client,
    config: WebhookConfig,
    breakers: Mutex<HashMap<String, Arc<Breaker>>>,
}

/// Installs the process's rustls provider (`ring`, already linked for
/// sqlx); a second call, or an app that installed one first, is fine.
pub(crate) fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl WebhookSender {
    /// A sender resolving names with `resolver`.
    ///
    /// # Errors
    /// [`BuildError`] when the TLS stack cannot be set up.
    pub fn new(config: WebhookConfig, resolver: Arc<dyn Resolve>) -> Result<Self, BuildError> {
        install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A redirect could point at an address literal the resolver
            // never sees; receivers must answer at the registered URL.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("SmartAlarm-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .dns_resolver(Arc::new(GuardedResolver {
                policy: config.policy.clone(),
                inner: resolver,
            }))
            .build()
            .map_err(|e| BuildError(e.to_string()))?;
        Ok(Self {
            client,
            config,
            breakers: Mutex::new(HashMap::new()),
        })
    }

    /// The longest one send may take.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    fn breaker(&self, host: &str) -> Arc<Breaker> {
        let mut map = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(host.to_owned())
            .or_insert_with(|| Arc::new(Breaker::new(self.config.breaker)))
            .clone()
    }

    /// POSTs `body` to the registration, signed as message `id` at `now`;
    /// the host's breaker judges its open period by `now` too.
    pub async fn send(
        &self,
        registration: &WebhookRegistration,
        id: &str,
        body: Vec<u8>,
        now: Timestamp,
    ) -> Attempt {
        let url = registration.url().as_url();
        // Address literals never reach the resolver: judge them here.
        if let Err(refused) = self.config.policy.check_url(url) {
            return Attempt::Permanent {
                code: None,
                error: refused.to_string(),
            };
        }
        let stamp = now.as_second();
        // The previous secret signs too while a rotation's overlap lasts.
        let secrets = registration.signing_secrets(now);
        let signature = match signature::sign_all(&secrets, id, stamp, &body) {
            Ok(s) => s,
            Err(e) => {
                return Attempt::Permanent {
                    code: None,
                    error: e.to_string(),
                };
            }
        };
        let host = host_key(url);
        let mut request = self
            .client
            .post(url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", stamp.to_string())
            .header("webhook-signature", signature);
        // The attempt's span (the dispatcher's): the receiver can join the
        // trace that caused the event.
        if let Some(parent) = alarm_telemetry::current_traceparent() {
            request = request.header("traceparent", parent);
        }
        let request = request.body(body);
        let breaker = self.breaker(&host);
        if !breaker.permit(now) {
            return Attempt::Rejected {
                wait: self.config.breaker.open_for,
            };
        }
        let attempt = async move {
            match request.send().await {
                Ok(response) => {
                    let attempt = judge(response.status().as_u16(), response.headers(), now);
                    // Read a small answer so the connection can be reused;
                    // a receiver streaming more is cut off (the connection
                    // is dropped), never buffered.
                    let mut response = response;
                    let mut read = 0usize;
                    while let Ok(Some(chunk)) = response.chunk().await {
                        read += chunk.len();
                        if read > 64 * 1024 {
                            break;
                        }
                    }
                    attempt
                }
                Err(e) => match refused_in(&e) {
                    Some(refused) => Attempt::Permanent {
                        code: None,
                        error: refused.to_string(),
                    },
                    None => Attempt::Transient {
                        code: None,
                        retry_after: None,
                        error: describe(&e),
                    },
                },
            }
        }
        .await;
        // Only failures that say the host is unwell count against its
        // breaker; a 4xx is the receiver answering.
        breaker.record(matches!(attempt, Attempt::Transient { .. }), now);
        attempt
    }
}

/// The destination a URL's requests share (its breaker, its permits):
/// `host:port`.
pub(crate) fn host_key(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Classifies an answer.
fn judge(code: u16, headers: &reqwest::header::HeaderMap, now: Timestamp) -> Attempt {
    match code {
        200..=299 => Attempt::Delivered { code },
        408 | 429 | 500..=599 => Attempt::Transient {
            code: Some(code),
            retry_after: headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, now)),
            error: format!("HTTP {code}"),
        },
        _ => Attempt::Permanent {
            code: Some(code),
            error: format!("HTTP {code}"),
        },
    }
}

/// `Retry-After`: delay seconds or an HTTP date.
pub(crate) fn retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = alarm_domain::jiff::fmt::rfc2822::parse(value)
        .ok()?
        .timestamp();
    let ahead = at.duration_since(now);
    Some(Duration::try_from(ahead).unwrap_or(Duration::ZERO))
}

fn refused_in(e: &reqwest::Error) -> Option<Refused> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cause = c.source();
    }
    None
}

/// A transport failure in a few words, without the URL (it may carry a token).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    format!("{what}: {root}")
}

/// Milliseconds since `started`, saturating.
pub(crate) fn millis_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        let now: Timestamp = "2026-12-02T10:00:00Z".parse().unwrap();
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(judge(204, &h, now), Attempt::Delivered { code: 204 });
        assert!(matches!(
            judge(410, &h, now),
            Attempt::Permanent {
                code: Some(410),
                ..
            }
        ));
        assert!(matches!(judge(301, &h, now), Attempt::Permanent { .. }));
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            judge(429, &h, now),
            Attempt::Transient {
                code: Some(429),
                retry_after: Some(Duration::from_secs(7)),
                error: "HTTP 429".to_owned()
            }
        );
        assert!(matches!(judge(408, &h, now), Attempt::Transient { .. }));
        assert!(matches!(judge(503, &h, now), Attempt::Transient { .. }));
        assert_eq!(
            retry_after("Wed, 02 Dec 2026 10:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after("Wed, 02 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
