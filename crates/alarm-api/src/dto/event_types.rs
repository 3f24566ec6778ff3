//! The webhook event catalogue: every event type a registration may subscribe to, with its description and the schema of the body it is sent with.

use alarm_domain::model::WebhookEvent;
use poem_openapi::Object;
use serde::Deserialize;

use super::StartedRoutineView;

/// The `data` of an alarm event's webhook, fixed when the event was made
/// (a retry, a redelivery or a delivery after the alarm's deletion sends
/// the same thing).
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookEventData {
    /// The event's id: equal to the `webhook-id` header, the same on every
    /// retry and redelivery (drop a duplicate by it).
    pub delivery_id: String,
    /// The alarm.
    pub alarm_id: String,
    /// The alarm's name when the event was made.
    pub alarm_name: String,
    /// The alarm's owner.
    pub user_id: String,
    /// The alarm's IANA time zone.
    pub time_zone: String,
    /// Whether the alarm was enabled after the event.
    pub enabled: bool,
    /// The occurrence (UTC), for ringing events.
    pub occurrence_at: Option<String>,
    /// The occurrence in the alarm's zone (`YYYY-MM-DDTHH:MM:SS`).
    pub local_time: Option<String>,
    /// A short human-readable detail (snooze count, escalation level…).
    pub detail: Option<String>,
    /// `alarm.updated`: the fields that changed (`name`, `description`,
    /// `enabled`, `time_zone`, `schedules`, `snooze`, `escalation`,
    /// `channels`, `sound_id`).
    pub changes: Option<Vec<String>>,
    /// `routine.started`: the routine as it was when the alarm rang.
    pub routine: Option<StartedRoutineView>,
}

/// The body of an alarm event's webhook (Standard Webhooks' shape).
#[derive(Debug, Clone, Object, Deserialize)]
pub struct WebhookEventBody {
    /// The event type, e.g. `alarm.triggered`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was sent (UTC).
    pub timestamp: String,
    /// What it is about.
    pub data: WebhookEventData,
}

/// One event type of the catalogue.
#[derive(Debug, Clone, Object)]
pub struct WebhookEventTypeView {
    /// Its name, as subscribed to and as the body's `type`.
    #[oai(rename = "type")]
    pub kind: String,
    /// When it is sent.
    pub description: String,
    /// A body as sent.
    pub example: WebhookEventBody,
}

/// Every event type a registration may subscribe to.
#[derive(Debug, Clone, Object)]
pub struct WebhookEventTypeList {
    /// In a fixed order.
    pub items: Vec<WebhookEventTypeView>,
}

/// When each type is sent.
fn description(event: WebhookEvent) -> &'static str {
    match event {
        WebhookEvent::Created => "An alarm was created.",
        WebhookEvent::Updated => {
            "An alarm was changed (`changes` names the fields); enabling and disabling are `alarm.updated` with `changes: [\"enabled\"]`."
        }
        WebhookEvent::Deleted => "An alarm was deleted; the data is the alarm as it was.",
        WebhookEvent::Triggered => {
            "An occurrence rang: its first ring, or again when a snooze ended."
        }
        WebhookEvent::Snoozed => "The owner snoozed a ringing occurrence (`detail`: the count).",
        WebhookEvent::Dismissed => "The owner dismissed a ringing occurrence.",
        WebhookEvent::Escalated => {
            "A ringing occurrence went unanswered and rang again (`detail`: the level)."
        }
        WebhookEvent::Missed => {
            "An occurrence was not rung in time (the service was away past the grace window)."
        }
        WebhookEvent::Expired => "A ringing occurrence went unanswered to the end.",
        WebhookEvent::RoutineStarted => {
            "An alarm rang and an active routine attached to it started (`routine`)."
        }
    }
}

/// The catalogue, each type with an example body.
pub fn catalogue() -> WebhookEventTypeList {
    let items = WebhookEvent::all()
        .map(|event| {
            let rings = !matches!(
                event,
                WebhookEvent::Created | WebhookEvent::Updated | WebhookEvent::Deleted
            );
            WebhookEventTypeView {
                kind: event.as_str().to_owned(),
                description: description(event).to_owned(),
                example: WebhookEventBody {
                    kind: event.as_str().to_owned(),
                    timestamp: "2027-01-04T10:00:01Z".to_owned(),
                    data: WebhookEventData {
                        delivery_id: "019430a0-0000-7000-8000-000000000001".to_owned(),
                        alarm_id: "019430a0-0000-7000-8000-000000000002".to_owned(),
                        alarm_name: "Wake up".to_owned(),
                        user_id: "019430a0-0000-7000-8000-000000000003".to_owned(),
                        time_zone: "America/Sao_Paulo".to_owned(),
                        enabled: true,
                        occurrence_at: rings.then(|| "2027-01-04T10:00:00Z".to_owned()),
                        local_time: rings.then(|| "2027-01-04T07:00:00".to_owned()),
                        detail: None,
                        changes: (event == WebhookEvent::Updated)
                            .then(|| vec!["name".to_owned(), "schedules".to_owned()]),
                        routine: (event == WebhookEvent::RoutineStarted).then(|| {
                            StartedRoutineView {
                                routine_id: "019430a0-0000-7000-8000-000000000004".to_owned(),
                                name: "Morning".to_owned(),
                                actions: vec!["Lights on".to_owned(), "Coffee".to_owned()],
                            }
                        }),
                    },
                },
            }
        })
        .collect();
    WebhookEventTypeList { items }
}
