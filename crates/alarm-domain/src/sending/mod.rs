//! Delivery policy in one place: the outbox rows a fire fans out to, what an attempt's result does to its row, when a failing registration is disabled, and when a ring falls back to e-mail.
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
use crate::model::{Channel, WebhookEventSet, WebhookRegistration};
use crate::ports::{OutboxItem, SendResult, SendStatus, SendTopic, StoreError};
use crate::trigger::Delivery;

#[cfg(test)]
mod tests;

/// A webhook registration as the fan-out sees it (no URL, no secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscriber {
    /// The registration.
    pub id: WebhookId,
    /// Its owner.
    pub owner: UserId,
    /// What it subscribed to.
    pub events: WebhookEventSet,
    /// Whether it still receives (false once disabled after failures).
    pub active: bool,
}

impl From<&WebhookRegistration> for Subscriber {
    fn from(w: &WebhookRegistration) -> Self {
        Self {
            id: w.id(),
            owner: w.owner(),
            events: w.events(),
            active: w.active(),
        }
    }
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

/// The owners whose registrations [`fan_out`] needs: those of the webhook
/// deliveries, each once.
pub fn subscribers_needed(deliveries: &[&Delivery]) -> Vec<UserId> {
    let owners: BTreeSet<UserId> = deliveries
        .iter()
        .filter(|d| d.channel == Channel::Webhook)
        .map(|d| d.owner)
        .collect();
    owners.into_iter().collect()
}

/// The outbox rows a batch of freshly committed deliveries makes, given
/// the registrations of their owners as stored in the same transaction (so
/// a registration disabled before the fire gets nothing):
/// * a webhook delivery: one row per active registration of its owner
///   subscribed to its event; when every subscribed registration is
///   disabled, the webhook channel has failed already and the ring falls
///   back to e-mail at once, unless the ring e-mails anyway;
/// * an e-mail delivery: one row to its owner;
/// * in-app needs no sending, and push has no sender (refused at the API).
///
/// The rows are keyed by (message, target): writing one that exists
/// already must leave the stored one as it is.
pub fn fan_out(deliveries: &[&Delivery], subscribers: &[Subscriber]) -> Vec<OutboxItem> {
    let emailed: BTreeSet<RingKey> = deliveries
        .iter()
        .filter(|d| d.channel == Channel::Email)
        .map(|d| RingKey::of_delivery(d))
        .collect();
    let mut rows = Vec::new();
    for d in deliveries {
        let topic = SendTopic::Alarm(SendTopic::of_kind(d.kind));
        let row = |target: Uuid, channel: Channel| {
            OutboxItem::pending(
                d.id,
                target,
                channel,
                d.owner,
                Some((d.alarm, d.occurrence)),
                topic,
                d.created_at,
            )
        };
        match d.channel {
            Channel::Webhook => {
                let event = SendTopic::of_kind(d.kind);
                let subscribed = subscribers
                    .iter()
                    .filter(|s| s.owner == d.owner && s.events.contains(event));
                let mut any = false;
                let mut any_active = false;
                for s in subscribed {
                    any = true;
                    if s.active {
                        any_active = true;
                        rows.push(row(s.id.as_uuid(), Channel::Webhook));
                    }
                }
                if any && !any_active && !emailed.contains(&RingKey::of_delivery(d)) {
                    rows.push(OutboxItem {
                        fallback: true,
                        ..row(d.owner.as_uuid(), Channel::Email)
                    });
                }
            }
            Channel::Email => rows.push(row(d.owner.as_uuid(), Channel::Email)),
            Channel::InApp | Channel::Push => {}
        }
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
