//! [`Outbox`] over the in-memory state: finds and stores rows; what a fire fans out to, what a result changes and when to fall back are [`alarm_domain::sending`]'s.

use alarm_domain::ids::{UserId, WebhookId};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::AlarmEvent;
use alarm_domain::model::{Channel, WebhookRegistration};
use alarm_domain::ports::{
    ClaimedSend, FinishReport, Outbox, OutboxCounts, OutboxItem, SendLease, SendResult, SendStatus,
    StoreError,
};
use alarm_domain::sending::{self, Health, RingKey, Subscriber, Tally};
use alarm_domain::trigger::{Delivery, LeaseToken};
use async_trait::async_trait;

use super::{InMemory, State};

impl State {
    /// Writes the outbox rows of committed alarm events and deliveries;
    /// the engine's (`prepared`) exist from their creation, the outcome's
    /// instant (the SQL adapter's `effective_us`).
    pub(super) fn fan_out(
        &mut self,
        deliveries: &[&Delivery],
        events: &[AlarmEvent],
        prepared: bool,
    ) {
        let subscribers: Vec<Subscriber> = self.webhooks.values().map(Subscriber::from).collect();
        for item in sending::fan_out(deliveries, events, &subscribers) {
            let (key, at) = ((item.message, item.target), item.created_at);
            if self.insert_row(item) && prepared {
                self.effective_rows.insert(key, at);
            }
        }
    }

    /// Whether the outbox row exists for readers and senders now.
    pub(super) fn row_visible(&self, key: (uuid::Uuid, uuid::Uuid), now: Timestamp) -> bool {
        self.effective_rows
            .get(&key)
            .is_none_or(|at| alarm_domain::firing::visible(*at, now))
    }

    /// Inserts a row unless (message, target) exists; whether it did.
    fn insert_row(&mut self, item: OutboxItem) -> bool {
        let key = (item.message, item.target);
        if self.outbox.contains_key(&key) {
            return false;
        }
        self.outbox.insert(key, (item, None));
        true
    }

    /// Stores a registration's new failure state.
    fn set_health(&mut self, w: &WebhookRegistration, health: Health) {
        self.webhooks.insert(
            w.id(),
            WebhookRegistration::new(
                w.id(),
                w.owner(),
                w.url().clone(),
                w.events(),
                w.secret().clone(),
                health.active,
                health.failures,
            )
            .with_previous(w.previous().cloned())
            .with_alarms(w.alarms().to_vec()),
        );
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
        let store_now = s.store_now();
        let mut due: Vec<(Timestamp, (uuid::Uuid, uuid::Uuid))> = s
            .outbox
            .iter()
            .filter(|(k, (i, lease))| {
                i.status == SendStatus::Pending
                    && i.due <= now
                    && s.row_visible(**k, store_now)
                    && lease.is_none_or(|(_, u)| u <= now)
            })
            .map(|(k, (i, _))| (i.due, *k))
            .collect();
        due.sort();
        due.truncate(limit as usize);
        Ok(s.lease(due, until))
    }

    async fn claim_ahead(
        &self,
        ahead: SignedDuration,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError> {
        let mut s = self.lock();
        let now = s.store_now();
        let mut soon: Vec<(Timestamp, (uuid::Uuid, uuid::Uuid))> = s
            .outbox
            .iter()
            .filter(|(k, (i, lease))| {
                // As the SQL adapter: both the row's instant and its due
                // time within the window (a row given back due later than
                // its instant waits for its due time).
                let within =
                    |at: Timestamp| !alarm_domain::firing::visible(at, now) && at <= now + ahead;
                i.status == SendStatus::Pending
                    && within(i.due)
                    && s.effective_rows.get(*k).is_some_and(|at| within(*at))
                    && lease.is_none_or(|(_, u)| u <= now)
            })
            .map(|(k, (i, _))| (i.due, *k))
            .collect();
        soon.sort();
        soon.truncate(limit as usize);
        Ok(s.lease(soon, until))
    }

    async fn confirm(
        &self,
        leases: Vec<SendLease>,
    ) -> Result<Vec<(SendLease, SignedDuration)>, StoreError> {
        let s = self.lock();
        let now = s.store_now();
        // As the SQL adapter: each row found by its key, fenced by the token.
        Ok(leases
            .into_iter()
            .filter_map(|lease| {
                let key = (lease.message, lease.target);
                let (item, held) = s.outbox.get(&key)?;
                (item.status == SendStatus::Pending && held.is_some_and(|(t, _)| t == lease.token))
                    .then(|| {
                        let at = s.effective_rows.get(&key).copied().unwrap_or(now);
                        (lease, at.duration_since(now))
                    })
            })
            .collect())
    }

    async fn finish(
        &self,
        now: Timestamp,
        results: Vec<(ClaimedSend, SendResult)>,
        disable_after: u32,
    ) -> Result<FinishReport, StoreError> {
        self.finish_rows(now, results, disable_after)
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
        let now = s.store_now();
        let mut rows: Vec<&OutboxItem> = s
            .outbox
            .values()
            .map(|(i, _)| i)
            .filter(|i| i.owner == owner && i.channel == channel && i.target == target)
            .filter(|i| s.row_visible((i.message, i.target), now))
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
        let store_now = s.store_now();
        let shown = s.row_visible((message, target), store_now);
        let (item, lease) = s
            .outbox
            .get_mut(&(message, target))
            .filter(|(i, _)| shown && i.owner == owner && i.channel == channel)
            .ok_or(StoreError::NotFound)?;
        sending::redeliver(item, now)?;
        *lease = None;
        Ok(item.clone())
    }

    async fn enqueue(&self, item: OutboxItem) -> Result<(), StoreError> {
        self.lock().insert_row(item);
        Ok(())
    }

    async fn next_due_in(&self) -> Result<Option<SignedDuration>, StoreError> {
        let s = self.lock();
        let now = s.store_now();
        Ok(s.outbox
            .values()
            .filter(|(i, _)| i.status == SendStatus::Pending && i.due > now)
            .map(|(i, _)| i.due)
            .min()
            .map(|due| due.duration_since(now)))
    }

    async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        let s = self.lock();
        let now = s.store_now();
        let of = |status| {
            s.outbox
                .iter()
                .filter(|(k, (item, _))| item.status == status && s.row_visible(**k, now))
                .count() as u64
        };
        Ok(OutboxCounts {
            pending: of(SendStatus::Pending),
            dead: of(SendStatus::Dead),
        })
    }

    async fn webhooks(&self, ids: Vec<WebhookId>) -> Result<Vec<WebhookRegistration>, StoreError> {
        let s = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| s.webhooks.get(id).cloned())
            .collect())
    }
}

impl State {
    /// Leases the rows at `keys` until `until`.
    fn lease(
        &mut self,
        keys: Vec<(Timestamp, (uuid::Uuid, uuid::Uuid))>,
        until: Timestamp,
    ) -> Vec<ClaimedSend> {
        let mut out = Vec::with_capacity(keys.len());
        for (_, key) in keys {
            self.leases_issued += 1;
            let token = LeaseToken::from_uuid(uuid::Uuid::from_u64_pair(
                0x5e4d_0000_0000_0000,
                self.leases_issued,
            ));
            if let Some((item, lease)) = self.outbox.get_mut(&key) {
                *lease = Some((token, until));
                out.push(ClaimedSend {
                    item: item.clone(),
                    token: SendLease {
                        token,
                        message: key.0,
                        target: key.1,
                    },
                    lease_until: until,
                    // The fake keeps no trace context: it has no spans to
                    // continue.
                    trace: None,
                });
            }
        }
        out
    }
}

impl InMemory {
    /// [`Outbox::finish`].
    fn finish_rows(
        &self,
        now: Timestamp,
        results: Vec<(ClaimedSend, SendResult)>,
        disable_after: u32,
    ) -> Result<FinishReport, StoreError> {
        let mut s = self.lock();

        let mut report = FinishReport::default();
        let mut done = Vec::new();
        for (claimed, result) in results {
            let token = claimed.token;
            let held = s
                .outbox
                .get_mut(&(token.message, token.target))
                .filter(|(_, l)| l.is_some_and(|(t, _)| t == token.token))
                .filter(|_| claimed.is_whole());
            let Some((item, lease)) = held else {
                report.lost.push(token);
                continue;
            };
            // The SQL stores record on the row as claimed without reading
            // it: this fake checks that it is the stored row, so that a
            // write that changed a leased row would fail the conformance
            // checks here.
            debug_assert_eq!(*item, claimed.item, "a leased row changed under its lease");
            *lease = None;
            sending::record(item, result, now);
            done.push(item.clone());
        }
        let tally = Tally::of(&done);
        for id in tally.touched() {
            let Some(w) = s.webhooks.get(&id).cloned() else {
                continue;
            };
            let health = Health {
                failures: w.failure_count(),
                active: w.active(),
            };
            let notice = uuid::Uuid::now_v7();
            if let Some(change) = tally.judge(id, w.owner(), health, disable_after, notice, now) {
                s.set_health(&w, change.health);
                if let Some(notice) = change.notice {
                    s.insert_row(notice);
                    report.disabled.push(id);
                }
            }
        }
        for dead in done.iter().filter(|i| i.status == SendStatus::Dead) {
            let Some(key) = RingKey::of(dead) else {
                continue;
            };
            let ring: Vec<OutboxItem> = s
                .outbox
                .values()
                .map(|(i, _)| i)
                .filter(|i| RingKey::of(i) == Some(key))
                .cloned()
                .collect();
            if let Some(mail) = sending::fallback(dead, &ring, now)
                && s.insert_row(mail)
            {
                report.fallbacks += 1;
            }
        }
        Ok(report)
    }
}
