//! Webhook shapes: registration input and replacement, the registration view, its one-time secret view and the list, none of which shows the secret or the URL's path in `Debug`.

use alarm_domain::error::{ValidationError, codes};
use alarm_domain::ids::AlarmId;
use alarm_domain::model::{WebhookEvent, WebhookEventSet, WebhookRegistration, WebhookUrl};
use alarm_domain::services::NewWebhook;
use poem_openapi::Object;
use secrecy::ExposeSecret;
use serde::Deserialize;

/// A webhook endpoint as registered by the client.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Absolute `http` or `https` URL (at most 2048 characters, no
    /// credentials, no `#fragment`) that receives signed `POST`s.
    pub url: String,
    /// Events to send, e.g. `alarm.triggered`; at least one, none twice.
    pub events: Vec<String>,
    /// Only the events of these alarms (at most 100 of the caller's own,
    /// none twice); absent or `[]`: every alarm of the caller.
    #[serde(default)]
    pub alarm_ids: Option<Vec<String>>,
}

/// A webhook endpoint as replaced by the client (every member is required:
/// `PUT` replaces the whole registration).
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    /// Absolute `http` or `https` URL (at most 2048 characters, no
    /// credentials, no `#fragment`).
    pub url: String,
    /// Events to send; at least one, none twice.
    pub events: Vec<String>,
    /// Whether deliveries are made; re-activating resets `consecutive_failures`.
    pub active: bool,
    /// Only the events of these alarms (at most 100 of the caller's own,
    /// none twice); absent or `[]`: every alarm of the caller.
    #[serde(default)]
    pub alarm_ids: Option<Vec<String>>,
}

/// The alarm ids of a webhook body's filter; a malformed one is
/// `alarm_ids[i]` / `unknown-value`, as an id of nobody's alarm is.
pub(crate) fn alarm_filter(ids: Option<&[String]>) -> Result<Vec<AlarmId>, ValidationError> {
    ids.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            raw.parse::<AlarmId>().map_err(|_| {
                ValidationError::new(
                    format!("alarm_ids[{i}]"),
                    codes::UNKNOWN_VALUE,
                    "not one of your alarms",
                )
            })
        })
        .collect()
}

/// The domain URL and event set of a webhook body; every error names its
/// field (`url`, `events`, `events[1]`).
fn webhook_parts(
    url: &str,
    events: &[String],
) -> Result<(WebhookUrl, WebhookEventSet), ValidationError> {
    let url = WebhookUrl::parse(url)?;
    let parsed = events
        .iter()
        .enumerate()
        .map(|(i, name)| {
            // The domain names the list; the client needs the item.
            WebhookEvent::parse(name).map_err(|e| {
                ValidationError::new(format!("events[{i}]"), e.code(), e.message().to_owned())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((url, WebhookEventSet::new(&parsed)?))
}

impl WebhookInput {
    /// The domain URL and event set.
    pub(crate) fn to_domain(&self) -> Result<(WebhookUrl, WebhookEventSet), ValidationError> {
        webhook_parts(&self.url, &self.events)
    }
}

impl WebhookUpdate {
    /// The domain URL and event set (`active` is taken as is).
    pub(crate) fn to_domain(&self) -> Result<(WebhookUrl, WebhookEventSet), ValidationError> {
        webhook_parts(&self.url, &self.events)
    }
}

/// A registered webhook endpoint (its signing secret is never shown here).
#[derive(Clone, Object)]
pub struct WebhookView {
    /// Id (UUID v7).
    pub id: String,
    /// The endpoint.
    pub url: String,
    /// Subscribed events, in a fixed order.
    pub events: Vec<String>,
    /// Whether deliveries are made (false after too many consecutive failures).
    pub active: bool,
    /// Deliveries given up on in a row since the last success.
    pub consecutive_failures: u32,
    /// The alarms it is narrowed to; empty: every alarm of the owner.
    pub alarm_ids: Vec<String>,
    /// After a rotation: until when (RFC 3339) the previous secret also
    /// signs, one more signature in `webhook-signature` (absent when the
    /// secret was never rotated with an overlap).
    #[oai(skip_serializing_if_is_none)]
    pub previous_secret_until: Option<String>,
}

impl WebhookView {
    pub(crate) fn new(w: &WebhookRegistration) -> Self {
        Self {
            id: w.id().to_string(),
            url: w.url().as_str().to_owned(),
            events: w.events().iter().map(|e| e.as_str().to_owned()).collect(),
            active: w.active(),
            consecutive_failures: w.failure_count(),
            alarm_ids: w.alarms().iter().map(ToString::to_string).collect(),
            previous_secret_until: w.previous().map(|p| p.until.to_string()),
        }
    }
}

/// A webhook endpoint with its signing secret: answered only by create and
/// rotate-secret, the two moments the secret exists outside the store.
#[derive(Clone, Object)]
pub struct WebhookSecretView {
    /// The registration.
    #[oai(flatten)]
    pub webhook: WebhookView,
    /// The Standard Webhooks signing key (`whsec_` + base64); store it now,
    /// it is never shown again.
    pub secret: String,
}

impl WebhookSecretView {
    pub(crate) fn new(created: &NewWebhook) -> Self {
        Self {
            webhook: WebhookView::new(&created.registration),
            secret: created.secret.expose_secret().to_owned(),
        }
    }
}

/// The caller's webhook endpoints.
#[derive(Clone, Object)]
pub struct WebhookList {
    /// Oldest first (at most 20).
    pub items: Vec<WebhookView>,
}

/// Scheme, host and port of a URL the client sent: receivers often carry a
/// credential in the path or query, which must not reach a log line through
/// a stray `{:?}` (the domain's `WebhookUrl` redacts the same way).
fn redacted_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Credentials, should a client send them, sit before the `@`.
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}/…")
}

impl std::fmt::Debug for WebhookInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookInput")
            .field("url", &redacted_url(&self.url))
            .field("events", &self.events)
            .finish()
    }
}

impl std::fmt::Debug for WebhookUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookUpdate")
            .field("url", &redacted_url(&self.url))
            .field("events", &self.events)
            .field("active", &self.active)
            .finish()
    }
}

impl std::fmt::Debug for WebhookView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookView")
            .field("id", &self.id)
            .field("url", &redacted_url(&self.url))
            .field("events", &self.events)
            .field("active", &self.active)
            .field("consecutive_failures", &self.consecutive_failures)
            .finish()
    }
}

impl std::fmt::Debug for WebhookSecretView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecretView")
            .field("webhook", &self.webhook)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl std::fmt::Debug for WebhookList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookList")
            .field("items", &self.items)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_shapes_never_show_the_secret_or_the_url_path_in_debug() {
        let view = WebhookView {
            id: "0190".to_owned(),
            url: "https://u:pw@hooks.example.com:8443/services/T0/B0/XXXX?token=abc".to_owned(),
            events: vec!["alarm.triggered".to_owned()],
            active: true,
            consecutive_failures: 0,
            alarm_ids: Vec::new(),
            previous_secret_until: None,
        };
        let shown = format!(
            "{:?} {:?}",
            WebhookSecretView {
                webhook: view.clone(),
                secret: "whsec_c2VjcmV0".to_owned(),
            },
            WebhookUpdate {
                url: view.url.clone(),
                events: Vec::new(),
                active: false,
                alarm_ids: None,
            }
        );
        for hidden in ["whsec_", "XXXX", "token", "pw"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(
            shown.contains("https://hooks.example.com:8443/…"),
            "{shown}"
        );
    }

    #[test]
    fn event_errors_name_the_item() {
        let field = |events: &[&str]| {
            let events: Vec<String> = events.iter().map(|&e| e.to_owned()).collect();
            webhook_parts("https://example.com/h", &events)
                .expect_err("invalid")
                .field()
                .to_owned()
        };
        assert_eq!(field(&[]), "events");
        assert_eq!(field(&["alarm.triggered", "alarm.exploded"]), "events[1]");
        assert_eq!(field(&["alarm.missed", "alarm.missed"]), "events[1]");
    }
}
