//! Webhook registrations: where to POST which alarm events, signed with a per-registration secret.

use std::fmt;

use jiff::Timestamp;
use secrecy::SecretString;

use crate::error::{ValidationError, codes};
use crate::ids::{AlarmId, UserId, WebhookId};

/// An absolute `http` or `https` URL of at most 2048 characters, with a host
/// and without embedded credentials.
///
/// Whether the host is a private or loopback address is a delivery-time
/// question (DNS can change); the notify adapter guards that.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    /// # Errors
    /// `url` with `too-long` or `invalid-format`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let value = value.trim();
        let bad = |why: &str| ValidationError::new("url", codes::INVALID_FORMAT, why.to_owned());
        if value.len() > 2048 {
            return Err(ValidationError::new(
                "url",
                codes::TOO_LONG,
                "must have at most 2048 characters",
            ));
        }
        let url =
            url::Url::parse(value).map_err(|e| bad(&format!("is not an absolute URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must use http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("must have a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "must not embed credentials; the signature authenticates requests",
            ));
        }
        if url.fragment().is_some() {
            return Err(bad("must not have a #fragment"));
        }
        Ok(Self(url))
    }
    /// The URL text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    /// The parsed URL.
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }
}

impl WebhookUrl {
    /// Scheme, host and port only, for logs and audit records: receivers
    /// often carry a credential in the path or query (`/services/T…/B…/X…`,
    /// `?token=`), which must not end up there.
    pub fn redacted(&self) -> String {
        let port = self.0.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{}{port}/…",
            self.0.scheme(),
            self.0.host_str().unwrap_or("")
        )
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.redacted())
    }
}

/// An alarm event a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookEvent {
    /// `alarm.created`
    Created,
    /// `alarm.updated`
    Updated,
    /// `alarm.deleted`
    Deleted,
    /// `alarm.triggered`
    Triggered,
    /// `alarm.snoozed`
    Snoozed,
    /// `alarm.dismissed`
    Dismissed,
    /// `alarm.escalated`
    Escalated,
    /// `alarm.missed`
    Missed,
    /// `alarm.expired`
    Expired,
    /// `routine.started`
    RoutineStarted,
}

const WEBHOOK_EVENTS: [(WebhookEvent, &str); 10] = [
    (WebhookEvent::Created, "alarm.created"),
    (WebhookEvent::Updated, "alarm.updated"),
    (WebhookEvent::Deleted, "alarm.deleted"),
    (WebhookEvent::Triggered, "alarm.triggered"),
    (WebhookEvent::Snoozed, "alarm.snoozed"),
    (WebhookEvent::Dismissed, "alarm.dismissed"),
    (WebhookEvent::Escalated, "alarm.escalated"),
    (WebhookEvent::Missed, "alarm.missed"),
    (WebhookEvent::Expired, "alarm.expired"),
    (WebhookEvent::RoutineStarted, "routine.started"),
];

impl WebhookEvent {
    /// Every event type, in the fixed order of the catalogue.
    pub fn all() -> impl Iterator<Item = WebhookEvent> {
        WEBHOOK_EVENTS.iter().map(|(e, _)| *e)
    }
    /// The wire name, e.g. `alarm.triggered`.
    pub fn as_str(self) -> &'static str {
        WEBHOOK_EVENTS
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("alarm.updated", |(_, n)| n)
    }
    /// Whether anything emits this event: every one of them is produced
    /// (through the outbox, in the transaction of the change that causes
    /// it). Kept so that a future event type can be declared before its
    /// producer exists and still be refused at subscription.
    pub fn is_emitted(self) -> bool {
        true
    }
    /// # Errors
    /// `events` with `unknown-value`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        WEBHOOK_EVENTS
            .iter()
            .find(|(_, n)| *n == value)
            .map(|(e, _)| *e)
            .ok_or_else(|| {
                ValidationError::new(
                    "events",
                    codes::UNKNOWN_VALUE,
                    format!(
                        "`{value}` is not one of {}",
                        WEBHOOK_EVENTS
                            .iter()
                            .map(|(_, n)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }
}

/// A non-empty set of subscribed events.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WebhookEventSet(u16);

impl WebhookEventSet {
    /// # Errors
    /// `events` with `bad-count` when empty, `events[i]` with `duplicate`.
    pub fn new(events: &[WebhookEvent]) -> Result<Self, ValidationError> {
        if events.is_empty() {
            return Err(ValidationError::new(
                "events",
                codes::BAD_COUNT,
                "must name at least one event",
            ));
        }
        let mut bits = 0u16;
        for (i, e) in events.iter().enumerate() {
            let bit = 1 << *e as u16;
            if bits & bit != 0 {
                return Err(ValidationError::new(
                    format!("events[{i}]"),
                    codes::DUPLICATE,
                    format!("`{}` is listed twice", e.as_str()),
                ));
            }
            bits |= bit;
        }
        Ok(Self(bits))
    }
    /// The subscribed events that nothing emits yet.
    pub fn unemitted(&self) -> Vec<WebhookEvent> {
        self.iter().filter(|e| !e.is_emitted()).collect()
    }
    /// Refuses a subscription to an event nothing emits, so a client is
    /// told instead of waiting for deliveries that never come.
    ///
    /// # Errors
    /// `events` with `not-supported`, naming the event.
    pub fn require_emitted(&self) -> Result<(), ValidationError> {
        match self.unemitted().first() {
            None => Ok(()),
            Some(event) => Err(ValidationError::new(
                "events",
                codes::NOT_SUPPORTED,
                format!(
                    "`{}` is not emitted yet; subscribe to alarm.triggered or alarm.escalated",
                    event.as_str()
                ),
            )),
        }
    }
    /// Whether `event` is subscribed.
    pub fn contains(&self, event: WebhookEvent) -> bool {
        self.0 & (1 << event as u16) != 0
    }
    /// The subscribed events in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = WebhookEvent> + '_ {
        WEBHOOK_EVENTS
            .iter()
            .map(|(e, _)| *e)
            .filter(|e| self.contains(*e))
    }
}

impl fmt::Debug for WebhookEventSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(WebhookEvent::as_str))
            .finish()
    }
}

/// The most alarms one registration's `alarm_ids` filter may name.
pub const MAX_WEBHOOK_ALARM_FILTER: usize = 100;

/// The signing secret a rotation replaced, which still signs until
/// `until` (the rotation's overlap), so a receiver can switch to the new
/// one without rejecting deliveries meanwhile.
#[derive(Debug, Clone)]
pub struct PreviousSecret {
    /// The secret before the rotation.
    pub secret: SecretString,
    /// When it stops signing.
    pub until: Timestamp,
}

/// A user's webhook endpoint. The signing secret is a [`SecretString`]: it
/// never appears in `Debug` output or logs.
#[derive(Debug, Clone)]
pub struct WebhookRegistration {
    id: WebhookId,
    owner: UserId,
    url: WebhookUrl,
    events: WebhookEventSet,
    secret: SecretString,
    previous: Option<PreviousSecret>,
    active: bool,
    failure_count: u32,
    alarms: Vec<AlarmId>,
}

impl WebhookRegistration {
    /// Assembles a registration from validated parts.
    pub fn new(
        id: WebhookId,
        owner: UserId,
        url: WebhookUrl,
        events: WebhookEventSet,
        secret: SecretString,
        active: bool,
        failure_count: u32,
    ) -> Self {
        Self {
            id,
            owner,
            url,
            events,
            secret,
            previous: None,
            active,
            failure_count,
            alarms: Vec::new(),
        }
    }
    /// Keeps `previous` signing beside the secret until its instant.
    #[must_use]
    pub fn with_previous(mut self, previous: Option<PreviousSecret>) -> Self {
        self.previous = previous;
        self
    }

    /// These settings with `stored`'s signing secrets: what an update
    /// commits, since only a rotation changes secrets (an update that read
    /// the registration before a rotation must not write the old secret
    /// back).
    pub fn with_secrets_of(mut self, stored: &WebhookRegistration) -> Self {
        self.secret = stored.secret.clone();
        self.previous = stored.previous.clone();
        self
    }

    /// The stored registration with a rotation's secrets.
    pub fn rotated(mut self, secret: SecretString, previous: Option<PreviousSecret>) -> Self {
        self.secret = secret;
        self.previous = previous;
        self
    }
    /// The secret the last rotation replaced, if it had an overlap (it may
    /// have ended: see [`WebhookRegistration::signing_secrets`]).
    pub fn previous(&self) -> Option<&PreviousSecret> {
        self.previous.as_ref()
    }
    /// The secrets a delivery at `now` is signed with: the current one,
    /// then the previous one while its overlap lasts (Standard Webhooks
    /// sends one signature per secret in the same header).
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&SecretString> {
        let mut secrets = vec![&self.secret];
        if let Some(previous) = self.previous.as_ref().filter(|p| now < p.until) {
            secrets.push(&previous.secret);
        }
        secrets
    }
    /// Narrows the registration to the events of `alarms` (empty: every
    /// alarm of its owner). The caller bounds and checks the list.
    #[must_use]
    pub fn with_alarms(mut self, alarms: Vec<AlarmId>) -> Self {
        self.alarms = alarms;
        self
    }
    /// The alarms it is narrowed to (empty: every alarm of its owner).
    pub fn alarms(&self) -> &[AlarmId] {
        &self.alarms
    }
    /// Whether it receives the events of `alarm`.
    pub fn covers(&self, alarm: AlarmId) -> bool {
        self.alarms.is_empty() || self.alarms.contains(&alarm)
    }
    /// The id.
    pub fn id(&self) -> WebhookId {
        self.id
    }
    /// The owner.
    pub fn owner(&self) -> UserId {
        self.owner
    }
    /// The endpoint.
    pub fn url(&self) -> &WebhookUrl {
        &self.url
    }
    /// The subscribed events.
    pub fn events(&self) -> WebhookEventSet {
        self.events
    }
    /// The signing secret.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }
    /// Whether deliveries are made.
    pub fn active(&self) -> bool {
        self.active
    }
    /// Consecutive failed deliveries.
    pub fn failure_count(&self) -> u32 {
        self.failure_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_out_secret_signs_until_its_overlap_ends() {
        use secrecy::ExposeSecret;
        let at = |s: i64| Timestamp::from_second(s).expect("instant");
        let reg = WebhookRegistration::new(
            WebhookId::generate(),
            UserId::generate(),
            WebhookUrl::parse("https://hooks.example.com/a").expect("url"),
            WebhookEventSet::new(&[WebhookEvent::Triggered]).expect("events"),
            SecretString::from("whsec_new"),
            true,
            0,
        );
        let texts = |r: &WebhookRegistration, now| {
            r.signing_secrets(now)
                .iter()
                .map(|s| s.expose_secret().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(texts(&reg, at(100)), ["whsec_new"]);
        let reg = reg.with_previous(Some(PreviousSecret {
            secret: SecretString::from("whsec_old"),
            until: at(200),
        }));
        assert_eq!(texts(&reg, at(199)), ["whsec_new", "whsec_old"]);
        assert_eq!(texts(&reg, at(200)), ["whsec_new"]);
        assert!(!format!("{reg:?}").contains("whsec_old"));
    }

    #[test]
    fn urls_are_absolute_http_without_credentials() {
        assert!(WebhookUrl::parse("https://hooks.example.com/alarm?x=1").is_ok());
        for bad in [
            "/relative",
            "ftp://example.com",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "not a url",
        ] {
            assert_eq!(WebhookUrl::parse(bad).unwrap_err().field(), "url", "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2040));
        assert_eq!(
            WebhookUrl::parse(&long).unwrap_err().code(),
            codes::TOO_LONG
        );
    }

    #[test]
    fn event_sets_and_secret_redaction() {
        let set = WebhookEventSet::new(&[WebhookEvent::Triggered, WebhookEvent::Missed]).unwrap();
        assert!(set.contains(WebhookEvent::Missed) && !set.contains(WebhookEvent::Created));
        assert!(WebhookEventSet::new(&[]).is_err());
        assert_eq!(
            WebhookEvent::parse("alarm.expired").unwrap(),
            WebhookEvent::Expired
        );
        assert!(WebhookEvent::parse("alarm.exploded").is_err());
        let reg = WebhookRegistration::new(
            WebhookId::generate(),
            UserId::generate(),
            WebhookUrl::parse("https://example.com/h").unwrap(),
            set,
            SecretString::from("s3cr3t-value".to_owned()),
            true,
            0,
        );
        let debug = format!("{reg:?}");
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        let hook =
            WebhookUrl::parse("https://hooks.example.com:8443/services/T00/B00/XXXX?token=abc")
                .unwrap();
        assert_eq!(hook.redacted(), "https://hooks.example.com:8443/…");
        assert!(!format!("{hook:?}").contains("XXXX"));
    }
}
