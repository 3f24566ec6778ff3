//! [`Outbox`] over the in-memory state: the rows a fire fans out, claims, the failure policy with its fallbacks, and the dead-letter list.

use std::collections::BTreeMap;

use alarm_domain::ids::{UserId, WebhookId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::model::{Channel, WebhookRegistration};
use alarm_domain::ports::{
    ClaimedSend, FinishReport, Outbox, OutboxItem, SendResult, SendStatus, SendTopic, StoreError,
};
use alarm_domain::trigger::{Delivery, LeaseToken};
use async_trait::async_trait;

use super::{InMemory, State};

impl State {
    /// The outbox rows a committed delivery makes: one per active
    /// registration of the owner subscribed to its event (webhook), or one
    /// to the owner (email).
    pub(super) fn fan_out(&mut self, d: &Delivery, ring_emails: bool) {
        let event = SendTopic::of_kind(d.kind);
        let subscribed =
            |w: &&WebhookRegistration| w.owner() == d.owner && w.events().contains(event);
        // Every subscribed registration disabled: the channel has failed
        // already; fall back to e-mail now unless the ring e-mails anyway.
        let all_disabled = d.channel == Channel::Webhook
            && !ring_emails
            && self.webhooks.values().filter(subscribed).count() > 0
            && !self
                .webhooks
                .values()
                .filter(subscribed)
                .any(|w| w.active());
        if all_disabled {
            let item = OutboxItem {
                fallback: true,
                ..OutboxItem::pending(
                    d.id,
                    d.owner.as_uuid(),
                    Channel::Email,
                    d.owner,
                    Some((d.alarm, d.occurrence)),
                    SendTopic::Alarm(event),
                    d.created_at,
                )
            };
            self.outbox
                .entry((d.id, item.target))
                .or_insert((item, None));
        }
        let targets: Vec<uuid::Uuid> = match d.channel {
            Channel::Webhook => self
                .webhooks
                .values()
                .filter(|w| w.owner() == d.owner && w.active() && w.events().contains(event))
                .map(|w| w.id().as_uuid())
                .collect(),
            Channel::Email => vec![d.owner.as_uuid()],
            Channel::InApp | Channel::Push => Vec::new(),
        };
        for target in targets {
            let item = OutboxItem::pending(
                d.id,
                target,
                d.channel,
                d.owner,
                Some((d.alarm, d.occurrence)),
                SendTopic::Alarm(event),
                d.created_at,
            );
            self.outbox.entry((d.id, target)).or_insert((item, None));
        }
    }

    /// Counts a dead webhook row against its registration, disabling it
    /// (and queueing the owner's notice) at `disable_after`; returns whether
    /// this call disabled it.
    fn count_failure(
        &mut self,
        id: WebhookId,
        by: u32,
        now: Timestamp,
        disable_after: u32,
    ) -> bool {
        let Some(w) = self.webhooks.get(&id).cloned() else {
            return false;
        };
        let failures = w.failure_count().saturating_add(by);
        let disable = w.active() && failures >= disable_after;
        self.webhooks.insert(
            id,
            WebhookRegistration::new(
                id,
                w.owner(),
                w.url().clone(),
                w.events(),
                w.secret().clone(),
                w.active() && !disable,
                failures,
            ),
        );
        if disable {
            let notice = OutboxItem::pending(
                uuid::Uuid::now_v7(),
                id.as_uuid(),
                Channel::Email,
                w.owner(),
                None,
                SendTopic::WebhookDisabled,
                now,
            );
            self.outbox
                .insert((notice.message, notice.target), (notice, None));
        }
        disable
    }

    /// Queues the fallback email of a dead external row when it was the last
    /// live one of its ring (same alarm, occurrence and creation instant)
    /// and the ring has no email row yet.
    fn fall_back(&mut self, dead: &OutboxItem, now: Timestamp) -> bool {
        let Some((alarm, occurrence)) = dead.alarm else {
            return false;
        };
        let siblings = self.outbox.values().map(|(i, _)| i).filter(|i| {
            i.alarm
                .is_some_and(|(a, o)| a == alarm && o.at == occurrence.at)
                && i.created_at == dead.created_at
        });
        let mut live_or_email = false;
        for i in siblings {
            if i.channel == Channel::Email || i.status != SendStatus::Dead {
                live_or_email = true;
            }
        }
        if live_or_email || dead.channel == Channel::Email {
            return false;
        }
        let item = OutboxItem {
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
        };
        // A redelivered row that dies again finds its fallback made already.
        if self.outbox.contains_key(&(item.message, item.target)) {
            return false;
        }
        self.outbox
            .insert((item.message, item.target), (item, None));
        true
    }
}

#[async_trait]
impl Outbox for InMemory {
    async fn claim(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError> {
        let mut s = self.lock();
        let mut due: Vec<(Timestamp, (uuid::Uuid, uuid::Uuid))> = s
            .outbox
            .iter()
            .filter(|(_, (i, lease))| {
                i.status == SendStatus::Pending
                    && i.due <= now
                    && lease.is_none_or(|(_, u)| u <= now)
            })
            .map(|(k, (i, _))| (i.due, *k))
            .collect();
        due.sort();
        due.truncate(limit as usize);
        let mut out = Vec::with_capacity(due.len());
        for (_, key) in due {
            s.leases_issued += 1;
            let token = LeaseToken::from_uuid(uuid::Uuid::from_u64_pair(
                0x5e4d_0000_0000_0000,
                s.leases_issued,
            ));
            if let Some((item, lease)) = s.outbox.get_mut(&key) {
                *lease = Some((token, until));
                out.push(ClaimedSend {
                    item: item.clone(),
                    token,
                    lease_until: until,
                });
            }
        }
        Ok(out)
    }

    async fn finish(
        &self,
        now: Timestamp,
        results: Vec<(LeaseToken, SendResult)>,
        disable_after: u32,
    ) -> Result<FinishReport, StoreError> {
        let mut s = self.lock();
        let mut report = FinishReport::default();
        let mut done = Vec::new();
        for (token, result) in results {
            let Some(key) = s
                .outbox
                .iter()
                .find(|(_, (_, l))| l.is_some_and(|(t, _)| t == token))
                .map(|(k, _)| *k)
            else {
                report.lost.push(token);
                continue;
            };
            let Some((item, lease)) = s.outbox.get_mut(&key) else {
                continue;
            };
            *lease = None;
            item.updated_at = now;
            match result {
                SendResult::Delivered { code, latency_ms } => {
                    item.status = SendStatus::Delivered;
                    item.attempts += 1;
                    item.last_code = code;
                    item.last_error = None;
                    item.latency_ms = Some(latency_ms);
                }
                SendResult::Retry {
                    due,
                    counted,
                    code,
                    error,
                    latency_ms,
                } => {
                    item.due = due;
                    item.attempts += u32::from(counted);
                    item.last_code = code;
                    item.last_error = Some(error);
                    item.latency_ms = Some(latency_ms);
                }
                SendResult::Dead {
                    code,
                    error,
                    latency_ms,
                } => {
                    item.status = SendStatus::Dead;
                    item.attempts += 1;
                    item.last_code = code;
                    item.last_error = Some(error);
                    item.latency_ms = Some(latency_ms);
                }
            }
            done.push(item.clone());
        }
        // As the SQL adapter: successes first, then failures of the
        // registrations that did not also succeed in this batch, then the
        // fallbacks.
        let counts = |i: &OutboxItem| matches!(i.topic, SendTopic::Alarm(_));
        let succeeded: std::collections::BTreeSet<WebhookId> = done
            .iter()
            .filter(|i| i.status == SendStatus::Delivered && counts(i))
            .filter_map(OutboxItem::webhook)
            .collect();
        let mut failures: BTreeMap<WebhookId, u32> = BTreeMap::new();
        for i in &done {
            if i.status == SendStatus::Dead
                && counts(i)
                && let Some(id) = i.webhook().filter(|id| !succeeded.contains(id))
            {
                *failures.entry(id).or_default() += 1;
            }
        }
        for id in &succeeded {
            if let Some(w) = s.webhooks.get(id).cloned() {
                s.webhooks.insert(
                    *id,
                    WebhookRegistration::new(
                        *id,
                        w.owner(),
                        w.url().clone(),
                        w.events(),
                        w.secret().clone(),
                        w.active(),
                        0,
                    ),
                );
            }
        }
        for (id, n) in failures {
            if s.count_failure(id, n, now, disable_after) {
                report.disabled.push(id);
            }
        }
        for item in done.iter().filter(|i| i.status == SendStatus::Dead) {
            if s.fall_back(item, now) {
                report.fallbacks += 1;
            }
        }
        Ok(report)
    }

    async fn list(
        &self,
        owner: UserId,
        channel: Channel,
        target: uuid::Uuid,
        before: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let s = self.lock();
        let mut rows: Vec<&OutboxItem> = s
            .outbox
            .values()
            .map(|(i, _)| i)
            .filter(|i| i.owner == owner && i.channel == channel && i.target == target)
            .collect();
        rows.sort_by_key(|i| std::cmp::Reverse((i.created_at, i.message)));
        let cursor = match before {
            None => None,
            // An unknown cursor is an empty page, as in SQL.
            Some(m) => match s.outbox.get(&(m, target)) {
                Some((i, _)) => Some((i.created_at, i.message)),
                None => return Ok(Vec::new()),
            },
        };
        Ok(rows
            .into_iter()
            .filter(|i| cursor.is_none_or(|c| (i.created_at, i.message) < c))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn redeliver(
        &self,
        owner: UserId,
        channel: Channel,
        target: uuid::Uuid,
        message: uuid::Uuid,
        now: Timestamp,
    ) -> Result<OutboxItem, StoreError> {
        let mut s = self.lock();
        let (item, lease) = s
            .outbox
            .get_mut(&(message, target))
            .filter(|(i, _)| i.owner == owner && i.channel == channel)
            .ok_or(StoreError::NotFound)?;
        if item.status == SendStatus::Pending {
            return Err(StoreError::Conflict(
                "the delivery is still pending".to_owned(),
            ));
        }
        *lease = None;
        item.status = SendStatus::Pending;
        item.attempts = 0;
        item.due = now;
        item.updated_at = now;
        Ok(item.clone())
    }

    async fn enqueue(&self, item: OutboxItem) -> Result<(), StoreError> {
        self.lock()
            .outbox
            .entry((item.message, item.target))
            .or_insert((item, None));
        Ok(())
    }

    async fn webhooks(&self, ids: Vec<WebhookId>) -> Result<Vec<WebhookRegistration>, StoreError> {
        let s = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| s.webhooks.get(id).cloned())
            .collect())
    }
}
