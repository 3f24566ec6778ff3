//! Webhook delivery shapes: one outbox message with how sending it went, and a page of them.

use alarm_domain::jiff::Timestamp;
use alarm_domain::ports::{OutboxItem, SendStatus};
use poem_openapi::Object;

/// One message to a webhook endpoint and how sending it went.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryView {
    /// The message id (sent as `webhook-id`; the same on every attempt).
    pub id: String,
    /// `alarm.triggered`, `alarm.escalated`, …, or `webhook.test`.
    pub event: String,
    /// `pending`, `delivered` or `dead` (given up).
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if one came back.
    pub last_response_code: Option<u16>,
    /// How long the last attempt took (milliseconds).
    pub latency_ms: Option<u64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (UTC); absent unless pending.
    pub next_attempt_at: Option<String>,
    /// The alarm the event is about; absent for `webhook.test`.
    pub alarm_id: Option<String>,
    /// The occurrence the event is about (UTC); absent for `webhook.test`.
    pub occurrence_at: Option<String>,
    /// When the message was queued (UTC).
    pub created_at: String,
    /// When it last changed (UTC).
    pub updated_at: String,
}

/// An instant at the stores' precision (microseconds, RFC 3339 UTC with
/// `Z`), so the answer to `test` or `retry` shows the times that the
/// delivery list will show for the same row.
fn stored_instant(t: Timestamp) -> String {
    Timestamp::from_microsecond(t.as_microsecond())
        .unwrap_or(t)
        .to_string()
}

impl DeliveryView {
    pub(crate) fn new(d: &OutboxItem) -> Self {
        Self {
            id: d.message.to_string(),
            event: d.topic.as_str().to_owned(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_response_code: d.last_code,
            latency_ms: d.latency_ms,
            last_error: d.last_error.clone(),
            next_attempt_at: (d.status == SendStatus::Pending).then(|| stored_instant(d.due)),
            alarm_id: d.alarm.map(|(a, _)| a.to_string()),
            occurrence_at: d.alarm.map(|(_, o)| stored_instant(o.at)),
            created_at: stored_instant(d.created_at),
            updated_at: stored_instant(d.updated_at),
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryPage {
    /// Newest first.
    pub items: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<String>,
}
