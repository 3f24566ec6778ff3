//! Delivery policy in one place: the outbox rows alarm events and a fire's deliveries fan out to, each event's webhook data, what an attempt's result does to its row, when a failing registration is disabled, and when a ring falls back to e-mail.
//!
//! Every function here is pure: it takes what an adapter loaded (under the
//! adapter's own locks) and returns the rows or the changes to write. The
//! in-memory fake and the SQL adapter call the same functions, so they
//! differ only in how they find and store rows.
//!
//! A *ring* is what one fire committed together: the rows of one alarm
//! occurrence made at one instant (the first ring, each snooze and each
//! escalation are rings of their own, so an earlier ring's success does not
//! hide this one's failure).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use uuid::Uuid;

use crate::ids::{AlarmId, UserId, WebhookId};
use crate::model::{
    Alarm, AlarmEvent, AlarmEventKind, Channel, Routine, RoutineAction, WebhookEvent,
    WebhookEventSet, WebhookRegistration,
};
use crate::ports::{OutboxItem, SendResult, SendStatus, SendTopic, StoreError};
use crate::trigger::{Delivery, OccurrenceRef};

#[cfg(test)]
mod tests;

/// A webhook registration as the fan-out sees it (no URL, no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The registration.
    pub id: WebhookId,
    /// Its owner.
    pub owner: UserId,
    /// What it subscribed to.
    pub events: WebhookEventSet,
    /// Whether it still receives (false once disabled after failures).
    pub active: bool,
    /// The alarms it is narrowed to (empty: all of its owner's).
    pub alarms: Vec<AlarmId>,
}

impl Subscriber {
    /// Whether it takes `event` of `alarm` (active or not).
    fn wants(&self, owner: UserId, event: WebhookEvent, alarm: AlarmId) -> bool {
        self.owner == owner
            && self.events.contains(event)
            && (self.alarms.is_empty() || self.alarms.contains(&alarm))
    }
}

impl From<&WebhookRegistration> for Subscriber {
    fn from(w: &WebhookRegistration) -> Self {
        Self {
            id: w.id(),
            owner: w.owner(),
            events: w.events(),
            active: w.active(),
            alarms: w.alarms().to_vec(),
        }
    }
}

/// The webhook event type an alarm event is sent as. Enabling and
/// disabling are `alarm.updated` (their data says `changes: ["enabled"]`).
pub fn webhook_event_of(kind: AlarmEventKind) -> WebhookEvent {
    match kind {
        AlarmEventKind::Created => WebhookEvent::Created,
        AlarmEventKind::Updated | AlarmEventKind::Enabled | AlarmEventKind::Disabled => {
            WebhookEvent::Updated
        }
        AlarmEventKind::Deleted => WebhookEvent::Deleted,
        AlarmEventKind::Triggered => WebhookEvent::Triggered,
        AlarmEventKind::Snoozed => WebhookEvent::Snoozed,
        AlarmEventKind::Dismissed => WebhookEvent::Dismissed,
        AlarmEventKind::Escalated => WebhookEvent::Escalated,
        AlarmEventKind::Missed => WebhookEvent::Missed,
        AlarmEventKind::Expired => WebhookEvent::Expired,
        AlarmEventKind::RoutineStarted => WebhookEvent::RoutineStarted,
    }
}

/// Whether rows of `event` make up a ring (and may fall back to e-mail):
/// the ringing itself, not what was said about it.
fn rings(event: WebhookEvent) -> bool {
    matches!(event, WebhookEvent::Triggered | WebhookEvent::Escalated)
}

/// What changed in an alarm event, for its webhook data.
#[derive(Debug, Clone, Copy)]
pub enum EventChange<'a> {
    /// Nothing beyond the event itself.
    Nothing,
    /// The alarm's fields that changed (`alarm.updated`).
    Fields(&'a [&'static str]),
    /// The routine that started (`routine.started`).
    Routine(&'a Routine),
}

/// A routine as events record it: its `routine_id`, `name` and ordered
/// `actions` (the `routine_started` event's detail and the
/// `routine.started` webhook's `routine`).
pub(crate) fn routine_json(r: &Routine) -> serde_json::Value {
    serde_json::json!({
        "routine_id": r.id().to_string(),
        "name": r.name().as_str(),
        "actions": r.actions().iter().map(RoutineAction::as_str).collect::<Vec<_>>(),
    })
}

/// The `data` of an alarm event's webhook, fixed when the event is made
/// (so a delivery after the alarm's deletion, a retry or a redelivery
/// sends the same thing): the alarm's id, name and zone, the owner, the
/// occurrence in UTC and in the alarm's zone when there is one, the
/// enabled flag, and what changed. Never a secret.
#[must_use]
pub fn event_data(
    alarm: &Alarm,
    occurrence: Option<Timestamp>,
    detail: Option<&str>,
    change: EventChange<'_>,
) -> String {
    let mut data = serde_json::json!({
        "alarm_id": alarm.id().to_string(),
        "alarm_name": alarm.name().as_str(),
        "user_id": alarm.owner().to_string(),
        "time_zone": alarm.time_zone().as_str(),
        "enabled": alarm.enabled(),
    });
    if let Some(at) = occurrence {
        data["occurrence_at"] = at.to_string().into();
        data["local_time"] = at
            .to_zoned(alarm.time_zone().zone().clone())
            .datetime()
            .to_string()
            .into();
    }
    if let Some(detail) = detail {
        data["detail"] = detail.into();
    }
    match change {
        EventChange::Nothing => {}
        EventChange::Fields(fields) => data["changes"] = fields.into(),
        EventChange::Routine(r) => data["routine"] = routine_json(r),
    }
    data.to_string()
}

/// Which ring a row belongs to: the alarm, the occurrence and the instant
/// the fire committed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RingKey {
    /// The alarm.
    pub alarm: AlarmId,
    /// The occurrence instant.
    pub occurrence: Timestamp,
    /// When the ring's rows were made.
    pub created_at: Timestamp,
}

impl RingKey {
    /// The ring of an alarm row; `None` for a test ping or a notice.
    pub fn of(item: &OutboxItem) -> Option<Self> {
        item.alarm.map(|(alarm, o)| Self {
            alarm,
            occurrence: o.at,
            created_at: item.created_at,
        })
    }

    fn of_delivery(d: &Delivery) -> Self {
        Self {
            alarm: d.alarm,
            occurrence: d.occurrence.at,
            created_at: d.created_at,
        }
    }
}

/// The owners whose registrations [`fan_out`] needs: those of the
/// events, each once.
pub fn subscribers_needed(events: &[AlarmEvent]) -> Vec<UserId> {
    let owners: BTreeSet<UserId> = events.iter().map(|e| e.owner).collect();
    owners.into_iter().collect()
}

/// The outbox rows a unit of work makes from the alarm events and the
/// deliveries it commits, given the registrations of the events' owners
/// as stored in the same transaction (so a registration disabled or
/// created before the commit is judged as it is then):
/// * each alarm event: one webhook row per active registration of its
///   owner subscribed to its type ([`webhook_event_of`]) and covering its
///   alarm, whatever channels the alarm lists; the event's id is the
///   message id (`webhook-id`) and its data the payload. The rows of a
///   ring (`alarm.triggered`, `alarm.escalated`) carry the ring's alarm
///   and occurrence, so they can fall back to e-mail; when every
///   registration subscribed to a ring's event is disabled, the ring is
///   e-mailed at once, unless it e-mails anyway;
/// * an e-mail delivery: one row to its owner;
/// * in-app needs no sending; a `webhook` delivery makes nothing (the
///   channel is an alias: webhooks follow subscriptions); push has no
///   sender (refused at the API).
///
/// The rows are keyed by (message, target): writing one that exists
/// already must leave the stored one as it is.
pub fn fan_out(
    deliveries: &[&Delivery],
    events: &[AlarmEvent],
    subscribers: &[Subscriber],
) -> Vec<OutboxItem> {
    let emailed: BTreeSet<RingKey> = deliveries
        .iter()
        .filter(|d| d.channel == Channel::Email)
        .map(|d| RingKey::of_delivery(d))
        .collect();
    let mut rows = Vec::new();
    for e in events {
        let event = webhook_event_of(e.kind);
        let ring = rings(event).then_some(()).and(e.occurrence).map(|at| {
            // The ring's nominal local time is the deliveries'; without a
            // delivery (none listed) the instant itself stands in.
            let occurrence = deliveries
                .iter()
                .find(|d| d.alarm == e.alarm && d.occurrence.at == at && d.created_at == e.at)
                .map_or_else(
                    || OccurrenceRef {
                        at,
                        local: at.to_zoned(jiff::tz::TimeZone::UTC).datetime(),
                    },
                    |d| d.occurrence,
                );
            (e.alarm, occurrence)
        });
        let row = |target: Uuid, channel: Channel| OutboxItem {
            payload: e.data.clone(),
            ..OutboxItem::pending(
                e.id.as_uuid(),
                target,
                channel,
                e.owner,
                ring,
                SendTopic::Alarm(event),
                e.at,
            )
        };
        let mut any = false;
        let mut any_active = false;
        for s in subscribers
            .iter()
            .filter(|s| s.wants(e.owner, event, e.alarm))
        {
            any = true;
            if s.active {
                any_active = true;
                rows.push(row(s.id.as_uuid(), Channel::Webhook));
            }
        }
        if let Some((alarm, occurrence)) = ring {
            let key = RingKey {
                alarm,
                occurrence: occurrence.at,
                created_at: e.at,
            };
            if any && !any_active && !emailed.contains(&key) {
                rows.push(OutboxItem {
                    fallback: true,
                    ..row(e.owner.as_uuid(), Channel::Email)
                });
            }
        }
    }
    for d in deliveries.iter().filter(|d| d.channel == Channel::Email) {
        rows.push(OutboxItem::pending(
            d.id,
            d.owner.as_uuid(),
            Channel::Email,
            d.owner,
            Some((d.alarm, d.occurrence)),
            SendTopic::Alarm(SendTopic::of_kind(d.kind)),
            d.created_at,
        ));
    }
    rows
}

/// Records one attempt's result on its row (the row as loaded under the
/// lease that fenced the attempt): status, attempts counted, the next due
/// time of a retry, and what the receiver answered. Deferrals by an open
/// circuit breaker are not attempts.
pub fn record(item: &mut OutboxItem, result: SendResult, now: Timestamp) {
    item.updated_at = now;
    let (code, latency_ms) = match result {
        SendResult::Delivered { code, latency_ms } => {
            item.status = SendStatus::Delivered;
            item.attempts = item.attempts.saturating_add(1);
            item.last_error = None;
            (code, latency_ms)
        }
        SendResult::Retry {
            due,
            counted,
            code,
            error,
            latency_ms,
        } => {
            item.due = due;
            item.attempts = item.attempts.saturating_add(u32::from(counted));
            item.last_error = Some(error);
            (code, latency_ms)
        }
        SendResult::Dead {
            code,
            error,
            latency_ms,
        } => {
            item.status = SendStatus::Dead;
            item.attempts = item.attempts.saturating_add(1);
            item.last_error = Some(error);
            (code, latency_ms)
        }
    };
    item.last_code = code;
    item.latency_ms = Some(latency_ms);
}

/// What a finished batch means for the registrations it sent to. Only
/// alarm rows count (a failed test ping says nothing about the alarm
/// traffic). A registration that succeeded in the batch is not failing
/// "in a row": its dead rows in the same batch do not count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Registrations that took at least one alarm row.
    pub succeeded: BTreeSet<WebhookId>,
    /// Registrations with dead alarm rows and no success, and how many.
    pub failed: BTreeMap<WebhookId, u32>,
}

impl Tally {
    /// Counts a batch of rows just recorded by [`record`].
    pub fn of(finished: &[OutboxItem]) -> Self {
        let counts = |i: &&OutboxItem| matches!(i.topic, SendTopic::Alarm(_));
        let succeeded: BTreeSet<WebhookId> = finished
            .iter()
            .filter(counts)
            .filter(|i| i.status == SendStatus::Delivered)
            .filter_map(OutboxItem::webhook)
            .collect();
        let mut failed = BTreeMap::new();
        for id in finished
            .iter()
            .filter(counts)
            .filter(|i| i.status == SendStatus::Dead)
            .filter_map(OutboxItem::webhook)
            .filter(|id| !succeeded.contains(id))
        {
            *failed.entry(id).or_insert(0u32) += 1;
        }
        Self { succeeded, failed }
    }

    /// Every registration whose health this batch may change, in id order
    /// (the order adapters lock them in, so two senders finishing
    /// overlapping batches cannot deadlock).
    pub fn touched(&self) -> Vec<WebhookId> {
        let all: BTreeSet<WebhookId> = self
            .succeeded
            .iter()
            .chain(self.failed.keys())
            .copied()
            .collect();
        all.into_iter().collect()
    }

    /// The new health of registration `id`, stored as `now` (with its
    /// `owner`), or `None` when this batch leaves it as it is. A success
    /// resets the consecutive-failure count; failures add to it and, on
    /// reaching `disable_after`, deactivate an active registration and
    /// queue a notice (message id `notice`) to its owner.
    pub fn judge(
        &self,
        id: WebhookId,
        owner: UserId,
        now: Health,
        disable_after: u32,
        notice: Uuid,
        at: Timestamp,
    ) -> Option<HealthChange> {
        if self.succeeded.contains(&id) {
            return (now.failures != 0).then_some(HealthChange {
                health: Health {
                    failures: 0,
                    active: now.active,
                },
                notice: None,
            });
        }
        let by = *self.failed.get(&id)?;
        let failures = now.failures.saturating_add(by);
        let disable = now.active && failures >= disable_after;
        Some(HealthChange {
            health: Health {
                failures,
                active: now.active && !disable,
            },
            notice: disable.then(|| {
                OutboxItem::pending(
                    notice,
                    id.as_uuid(),
                    Channel::Email,
                    owner,
                    None,
                    SendTopic::WebhookDisabled,
                    at,
                )
            }),
        })
    }
}

/// A registration's failure state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Consecutive failed alarm deliveries.
    pub failures: u32,
    /// Whether it still receives.
    pub active: bool,
}

/// What [`Tally::judge`] changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// The health to store.
    pub health: Health,
    /// The owner's `webhook.disabled` e-mail, when this change disabled it.
    pub notice: Option<OutboxItem>,
}

/// The fallback e-mail of a dead external row, given every row of its ring
/// as stored now (the dead row among them): made when no row of the ring
/// is still live or delivered and the ring has no e-mail row. The e-mail
/// carries the dead row's message id, so a redelivered row that dies again
/// finds its fallback made already (the write must keep an existing row).
pub fn fallback(dead: &OutboxItem, ring: &[OutboxItem], now: Timestamp) -> Option<OutboxItem> {
    if dead.status != SendStatus::Dead || dead.channel == Channel::Email {
        return None;
    }
    let key = RingKey::of(dead)?;
    let blocked = ring
        .iter()
        .filter(|i| RingKey::of(i) == Some(key))
        .any(|i| i.channel == Channel::Email || i.status != SendStatus::Dead);
    if blocked {
        return None;
    }
    Some(OutboxItem {
        fallback: true,
        ..OutboxItem::pending(
            dead.message,
            dead.owner.as_uuid(),
            Channel::Email,
            dead.owner,
            dead.alarm,
            dead.topic,
            now,
        )
    })
}

/// Makes a delivered or dead row pending again, with no attempts, due at
/// `now`, at the owner's request.
///
/// # Errors
/// [`StoreError::Conflict`] while the row is still pending (it will be
/// sent anyway; a second copy would only confuse the receiver).
pub fn redeliver(item: &mut OutboxItem, now: Timestamp) -> Result<(), StoreError> {
    if item.status == SendStatus::Pending {
        return Err(StoreError::Conflict(
            "the delivery is still pending".to_owned(),
        ));
    }
    item.status = SendStatus::Pending;
    item.attempts = 0;
    item.due = now;
    item.updated_at = now;
    Ok(())
}
