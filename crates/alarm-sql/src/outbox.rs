//! The outbox on SQL: fan-out inside the fire's transaction, `SKIP LOCKED` lease claims, fenced finishes with failure counting and the email fallback.

use std::collections::BTreeMap;

use alarm_domain::ids::{AlarmId, UserId, WebhookId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::model::{Channel, WebhookRegistration};
use alarm_domain::ports::{
    ClaimedSend, FinishReport, Outbox, OutboxItem, SendResult, SendStatus, SendTopic, StoreError,
};
use alarm_domain::trigger::{Delivery, LeaseToken, OccurrenceRef};
use async_trait::async_trait;
use sea_orm::{DbBackend, QueryResult, Value};
use uuid::Uuid;

use crate::codec::{local_from_text, local_to_text};
use crate::db::{Tx, col, corrupt, narrow, num, ts, us};
use crate::stores::{SqlStores, webhook_from};

fn v<T: Into<Value>>(x: T) -> Value {
    x.into()
}

const COLUMNS: &str = "message_id, target_id, channel, owner_id, alarm_id, occurrence_us, occurrence_local, topic, fallback, status, attempts, due_us, created_us, updated_us";

/// Writes the outbox rows of freshly inserted deliveries, in the caller's
/// transaction: a webhook delivery goes to every active registration of its
/// owner subscribed to its event (read in the same transaction, so a
/// registration disabled before the fire gets nothing), an email delivery
/// to its owner. In-app rows need no sending; push has no sender yet.
pub(crate) async fn fan_out(tx: &Tx, deliveries: &[&Delivery]) -> Result<(), StoreError> {
    let mut by_event: BTreeMap<&'static str, (i32, Vec<Uuid>)> = BTreeMap::new();
    for d in deliveries {
        if matches!(d.channel, Channel::Webhook | Channel::Email) {
            let event = SendTopic::of_kind(d.kind);
            by_event
                .entry(event.as_str())
                .or_insert((1 << event as u16, Vec::new()))
                .1
                .push(d.id);
        }
    }
    for (topic, (bit, ids)) in by_event {
        for chunk in ids.chunks(400) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let common = format!(
                "d.owner_id, d.alarm_id, d.occurrence_us, d.occurrence_local, '{topic}', false, 'pending', 0, d.created_us, d.created_us, d.created_us"
            );
            let sql = format!(
                "INSERT INTO outbox ({COLUMNS}) \
                 SELECT d.id, w.id, 'webhook', {common} FROM deliveries d JOIN webhooks w ON w.owner_id = d.owner_id \
                 WHERE d.channel = 'webhook' AND w.active AND (w.events & {bit}) <> 0 AND d.id IN ({marks}) \
                 UNION ALL \
                 SELECT d.id, d.owner_id, 'email', {common} FROM deliveries d \
                 WHERE d.channel = 'email' AND d.id IN ({marks}) \
                 ON CONFLICT (message_id, target_id) DO NOTHING"
            );
            let values: Vec<Value> = chunk.iter().chain(chunk).map(|id| v(*id)).collect();
            tx.exec(&sql, values).await?;
            // Every registration subscribed to the event is disabled (they
            // failed): the webhook channel has already failed, so the ring
            // falls back to e-mail at once, unless it e-mails anyway.
            let fallback = format!(
                "INSERT INTO outbox ({COLUMNS}) \
                 SELECT d.id, d.owner_id, 'email', d.owner_id, d.alarm_id, d.occurrence_us, d.occurrence_local, \
                 '{topic}', true, 'pending', 0, d.created_us, d.created_us, d.created_us FROM deliveries d \
                 WHERE d.channel = 'webhook' AND d.id IN ({marks}) \
                 AND EXISTS (SELECT 1 FROM webhooks w WHERE w.owner_id = d.owner_id AND NOT w.active AND (w.events & {bit}) <> 0) \
                 AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.owner_id = d.owner_id AND w.active AND (w.events & {bit}) <> 0) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.owner_id = d.owner_id AND e.created_us = d.created_us \
                   AND e.alarm_id = d.alarm_id AND e.occurrence_us = d.occurrence_us AND e.channel = 'email') \
                 ON CONFLICT (message_id, target_id) DO NOTHING"
            );
            tx.exec(&fallback, chunk.iter().map(|id| v(*id)).collect())
                .await?;
        }
    }
    Ok(())
}

fn item_from(row: &QueryResult) -> Result<OutboxItem, StoreError> {
    let channel = col::<String>(row, "channel")?;
    let topic = col::<String>(row, "topic")?;
    let status = col::<String>(row, "status")?;
    let alarm = match col::<Option<Uuid>>(row, "alarm_id")? {
        None => None,
        Some(id) => Some((
            AlarmId::from_uuid(id).map_err(|e| corrupt("alarm id", e))?,
            OccurrenceRef {
                at: ts(col::<Option<i64>>(row, "occurrence_us")?
                    .ok_or_else(|| corrupt("occurrence", "missing"))?)?,
                local: local_from_text(
                    &col::<Option<String>>(row, "occurrence_local")?
                        .ok_or_else(|| corrupt("occurrence", "missing"))?,
                )?,
            },
        )),
    };
    Ok(OutboxItem {
        message: col(row, "message_id")?,
        target: col(row, "target_id")?,
        channel: Channel::parse(&channel).map_err(|e| corrupt("channel", e))?,
        owner: UserId::from_uuid(col(row, "owner_id")?).map_err(|e| corrupt("owner id", e))?,
        alarm,
        topic: SendTopic::parse(&topic).ok_or_else(|| corrupt("topic", &topic))?,
        fallback: col(row, "fallback")?,
        status: SendStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        attempts: num::<i32, u32>(row, "attempts")?,
        due: ts(col(row, "due_us")?)?,
        last_code: col::<Option<i32>>(row, "last_code")?
            .map(|c| narrow(c, "last_code"))
            .transpose()?,
        last_error: col(row, "last_error")?,
        latency_ms: col::<Option<i64>>(row, "latency_ms")?.and_then(|l| u64::try_from(l).ok()),
        created_at: ts(col(row, "created_us")?)?,
        updated_at: ts(col(row, "updated_us")?)?,
    })
}

fn item_values(i: &OutboxItem) -> Vec<Value> {
    vec![
        v(i.message),
        v(i.target),
        v(i.channel.as_str()),
        v(i.owner.as_uuid()),
        v(i.alarm.map(|(a, _)| a.as_uuid())),
        v(i.alarm.map(|(_, o)| us(o.at))),
        v(i.alarm.map(|(_, o)| local_to_text(o.local))),
        v(i.topic.as_str()),
        v(i.fallback),
        v(i.status.as_str()),
        v(i64::from(i.attempts)),
        v(us(i.due)),
        v(us(i.created_at)),
        v(us(i.updated_at)),
    ]
}

/// Inserts a row unless (message, target) exists; whether it did.
async fn insert_item(tx: &Tx, item: &OutboxItem) -> Result<bool, StoreError> {
    let marks = vec!["?"; 14].join(", ");
    let n = tx.exec(
        &format!(
            "INSERT INTO outbox ({COLUMNS}) VALUES ({marks}) ON CONFLICT (message_id, target_id) DO NOTHING"
        ),
        item_values(item),
    )
    .await?;
    Ok(n > 0)
}

fn small(n: Option<u64>) -> Option<i64> {
    n.map(|x| i64::try_from(x).unwrap_or(i64::MAX))
}

/// Serialises the fallback decision of one occurrence's event across
/// concurrent senders (PostgreSQL): without it two senders finishing the
/// last two external rows at once would each still see the other pending
/// and neither would queue the fallback.
async fn lock_occurrence(tx: &Tx, alarm: AlarmId, at: Timestamp) -> Result<(), StoreError> {
    if tx.backend != DbBackend::Postgres {
        return Ok(());
    }
    let bytes = alarm.as_uuid().as_u64_pair();
    let key = (bytes.0 ^ bytes.1 ^ us(at).cast_unsigned()).cast_signed();
    tx.query_all("SELECT pg_advisory_xact_lock(?)", vec![v(key)])
        .await?;
    Ok(())
}

impl SqlStores {
    /// Counts a dead alarm delivery against its registration; disables it
    /// and queues the owner's notice on reaching `disable_after`.
    async fn count_failure(
        &self,
        tx: &Tx,
        id: Uuid,
        by: u32,
        now: Timestamp,
        disable_after: u32,
    ) -> Result<Option<WebhookId>, StoreError> {
        let Some(row) = tx
            .query_one(
                "UPDATE webhooks SET failure_count = failure_count + ? WHERE id = ? \
                 RETURNING owner_id, failure_count, active",
                vec![v(i64::from(by)), v(id)],
            )
            .await?
        else {
            return Ok(None);
        };
        let failures = num::<i32, u32>(&row, "failure_count")?;
        if !col::<bool>(&row, "active")? || failures < disable_after {
            return Ok(None);
        }
        tx.exec(
            "UPDATE webhooks SET active = false WHERE id = ?",
            vec![v(id)],
        )
        .await?;
        let owner =
            UserId::from_uuid(col(&row, "owner_id")?).map_err(|e| corrupt("owner id", e))?;
        insert_item(
            tx,
            &OutboxItem::pending(
                Uuid::now_v7(),
                id,
                Channel::Email,
                owner,
                None,
                SendTopic::WebhookDisabled,
                now,
            ),
        )
        .await?;
        Ok(WebhookId::from_uuid(id).ok())
    }

    /// Queues the fallback email when `dead` was the last live external row
    /// of its ring and the ring has no email row. A ring's rows are the ones
    /// its fire committed together: same alarm, occurrence and creation
    /// instant (the first ring, each snooze and each escalation are rings
    /// of their own, so an earlier ring's success does not hide this one's
    /// failure).
    async fn fall_back(
        &self,
        tx: &Tx,
        dead: &OutboxItem,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some((alarm, occurrence)) = dead.alarm else {
            return Ok(false);
        };
        if dead.channel == Channel::Email {
            return Ok(false);
        }
        lock_occurrence(tx, alarm, occurrence.at).await?;
        let row = tx
            .query_one(
                "SELECT count(*) AS n FROM outbox WHERE alarm_id = ? AND occurrence_us = ? AND created_us = ? \
                 AND (channel = 'email' OR status <> 'dead')",
                vec![
                    v(alarm.as_uuid()),
                    v(us(occurrence.at)),
                    v(us(dead.created_at)),
                ],
            )
            .await?;
        if row.map(|r| col::<i64>(&r, "n")).transpose()?.unwrap_or(0) > 0 {
            return Ok(false);
        }
        // A redelivered row that dies again finds its fallback made already.
        insert_item(
            tx,
            &OutboxItem {
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
            },
        )
        .await
    }
}

#[async_trait]
impl Outbox for SqlStores {
    async fn claim(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError> {
        // A row whose lease ran out is claimable again: its new token fences
        // the slow sender's late finish.
        //
        // PostgreSQL: rows finished since the last vacuum leave dead entries
        // at the front of the pending index (a 100k burst shares one due
        // instant), and a claim from the start walks all of them: measured
        // 28 ms (EXPLAIN) to 250 ms (under load) per claim once 80k were
        // delivered, so throughput fell with the burst's size. Each process
        // therefore resumes after the key its last claim ended at, and
        // starts from the beginning again when a claim comes back short
        // (which is when rows behind the cursor, retries due or leases run
        // out, are picked up).
        let cursor = if self.db.backend == DbBackend::Postgres {
            *self
                .outbox_cursor
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        } else {
            None
        };
        let after = if cursor.is_some() {
            "AND (due_us, message_id, target_id) > (?, ?, ?)"
        } else {
            ""
        };
        let sql = match self.db.backend {
            DbBackend::Postgres => format!(
                "UPDATE outbox SET lease_token = gen_random_uuid(), lease_until_us = ? \
                 WHERE ctid = ANY(ARRAY( \
                   SELECT ctid FROM outbox WHERE status = 'pending' AND due_us <= ? \
                   AND (lease_until_us IS NULL OR lease_until_us <= ?) {after} \
                   ORDER BY due_us, message_id, target_id LIMIT ? FOR UPDATE SKIP LOCKED)) \
                 RETURNING *"
            ),
            _ => "UPDATE outbox SET lease_token = randomblob(16), lease_until_us = ? \
                 WHERE (message_id, target_id) IN ( \
                   SELECT message_id, target_id FROM outbox WHERE status = 'pending' AND due_us <= ? \
                   AND (lease_until_us IS NULL OR lease_until_us <= ?) \
                   ORDER BY due_us LIMIT ?) \
                 RETURNING *"
                .to_owned(),
        };
        let mut values = vec![v(us(until)), v(us(now)), v(us(now))];
        if let Some((due, message, target)) = cursor {
            values.extend([v(due), v(message), v(target)]);
        }
        values.push(v(i64::from(limit)));
        let tx = self.db.begin().await?;
        if self.db.backend == DbBackend::Postgres {
            // The outbox fills in bursts (a fire of 100k rows in seconds)
            // between two autovacuum analyses; on such stale statistics the
            // planner chose a bitmap scan of every pending row plus a sort
            // for each claim (41 ms at 68k pending, measured), where the
            // due-ordered partial index stops after `limit` rows (9 ms).
            tx.exec("SET LOCAL enable_bitmapscan = off", Vec::new())
                .await?;
        }
        let rows = tx.query_all(&sql, values).await?;
        tx.commit().await?;
        if self.db.backend == DbBackend::Postgres {
            let last = rows
                .iter()
                .filter_map(|r| {
                    Some((
                        col::<i64>(r, "due_us").ok()?,
                        col::<Uuid>(r, "message_id").ok()?,
                        col::<Uuid>(r, "target_id").ok()?,
                    ))
                })
                .max();
            *self
                .outbox_cursor
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = if rows.len() < limit as usize
            {
                None
            } else {
                last
            };
        }
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(ClaimedSend {
                    item: item_from(r)?,
                    token: LeaseToken::from_uuid(col::<Uuid>(r, "lease_token")?),
                    lease_until: until,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        claimed.sort_by_key(|c| (c.item.due, c.item.message, c.item.target));
        Ok(claimed)
    }

    async fn finish(
        &self,
        now: Timestamp,
        results: Vec<(LeaseToken, SendResult)>,
        disable_after: u32,
    ) -> Result<FinishReport, StoreError> {
        let tx = self.db.begin().await?;
        let mut report = FinishReport::default();
        let mut succeeded = Vec::new();
        let mut dead = Vec::new();
        // Deliveries, the common case, are recorded in bulk (one statement
        // per 400 rows instead of one per row); what is retried or dead
        // needs its row back for the failure policy and goes one by one.
        let (delivered, rest): (Vec<_>, Vec<_>) = results
            .into_iter()
            .partition(|(_, r)| matches!(r, SendResult::Delivered { .. }));
        for chunk in delivered.chunks(400) {
            let tokens: Vec<Uuid> = chunk.iter().map(|(t, _)| t.as_uuid()).collect();
            let marks = vec!["?"; tokens.len()].join(", ");
            let rows = tx
                .query_all(
                    &format!(
                        "SELECT lease_token, target_id, channel, topic FROM outbox WHERE lease_token IN ({marks})"
                    ),
                    tokens.iter().map(|t| v(*t)).collect(),
                )
                .await?;
            let mut held = std::collections::HashSet::with_capacity(rows.len());
            for row in &rows {
                held.insert(col::<Uuid>(row, "lease_token")?);
                let topic = col::<String>(row, "topic")?;
                if col::<String>(row, "channel")? == Channel::Webhook.as_str()
                    && topic.starts_with("alarm.")
                {
                    succeeded.push(col::<Uuid>(row, "target_id")?);
                }
            }
            let mut values = Vec::with_capacity(chunk.len() * 3 + 1);
            let mut tuples = Vec::with_capacity(chunk.len());
            for (token, result) in chunk {
                if !held.contains(&token.as_uuid()) {
                    report.lost.push(*token);
                    continue;
                }
                if let SendResult::Delivered { code, latency_ms } = result {
                    tuples.push("(?, ?, ?)");
                    values.extend([
                        v(token.as_uuid()),
                        v(code.map(i32::from)),
                        v(small(Some(*latency_ms))),
                    ]);
                }
            }
            if tuples.is_empty() {
                continue;
            }
            values.push(v(us(now)));
            // Correlated subqueries rather than UPDATE … FROM: the same
            // statement runs on PostgreSQL and SQLite.
            tx.exec(
                &format!(
                    "WITH done (token, code, latency) AS (VALUES {}) \
                     UPDATE outbox SET status = 'delivered', attempts = attempts + 1, \
                     last_code = (SELECT code FROM done WHERE done.token = outbox.lease_token), \
                     latency_ms = (SELECT latency FROM done WHERE done.token = outbox.lease_token), \
                     last_error = NULL, lease_token = NULL, lease_until_us = NULL, updated_us = ? \
                     WHERE lease_token IN (SELECT token FROM done)",
                    tuples.join(", ")
                ),
                values,
            )
            .await?;
        }
        for (token, result) in rest {
            let (status, bump, due, code, error, latency) = match result {
                SendResult::Delivered { code, latency_ms } => {
                    (SendStatus::Delivered, 1, None, code, None, latency_ms)
                }
                SendResult::Retry {
                    due,
                    counted,
                    code,
                    error,
                    latency_ms,
                } => (
                    SendStatus::Pending,
                    i64::from(counted),
                    Some(due),
                    code,
                    Some(error),
                    latency_ms,
                ),
                SendResult::Dead {
                    code,
                    error,
                    latency_ms,
                } => (SendStatus::Dead, 1, None, code, Some(error), latency_ms),
            };
            let row = tx
                .query_one(
                    "UPDATE outbox SET status = ?, attempts = attempts + ?, due_us = COALESCE(?, due_us), \
                     last_code = ?, last_error = ?, latency_ms = ?, lease_token = NULL, lease_until_us = NULL, \
                     updated_us = ? WHERE lease_token = ? RETURNING *",
                    vec![
                        v(status.as_str()),
                        v(bump),
                        v(due.map(us)),
                        v(code.map(i32::from)),
                        v(error),
                        v(small(Some(latency))),
                        v(us(now)),
                        v(token.as_uuid()),
                    ],
                )
                .await?;
            let Some(row) = row else {
                report.lost.push(token);
                continue;
            };
            let item = item_from(&row)?;
            if item.status == SendStatus::Dead {
                dead.push(item);
            }
        }
        // The failure policy, on rows locked in one global order (webhook
        // ids ascending, then occurrences ascending) so that two
        // dispatchers finishing overlapping batches cannot deadlock. A
        // registration that succeeded in this batch is not failing "in a
        // row": its dead rows here do not count.
        succeeded.sort_unstable();
        succeeded.dedup();
        let mut failures: BTreeMap<Uuid, u32> = BTreeMap::new();
        for item in &dead {
            if matches!(item.topic, SendTopic::Alarm(_))
                && item.channel == Channel::Webhook
                && succeeded.binary_search(&item.target).is_err()
            {
                *failures.entry(item.target).or_default() += 1;
            }
        }
        let mut touched: Vec<Uuid> = succeeded.iter().chain(failures.keys()).copied().collect();
        touched.sort_unstable();
        touched.dedup();
        if tx.backend == DbBackend::Postgres {
            // Lock, in id order, only the rows that will change (healthy
            // registrations with nothing to reset take no lock at all).
            for chunk in touched.chunks(400) {
                let failing: Vec<Uuid> = chunk
                    .iter()
                    .filter(|id| failures.contains_key(id))
                    .copied()
                    .collect();
                let marks = vec!["?"; chunk.len()].join(", ");
                let either = if failing.is_empty() {
                    String::new()
                } else {
                    format!(" OR id IN ({})", vec!["?"; failing.len()].join(", "))
                };
                tx.query_all(
                    &format!(
                        "SELECT id FROM webhooks WHERE id IN ({marks}) AND (failure_count <> 0{either}) ORDER BY id FOR UPDATE"
                    ),
                    chunk.iter().chain(&failing).map(|id| v(*id)).collect(),
                )
                .await?;
            }
        }
        for chunk in succeeded.chunks(400) {
            let marks = vec!["?"; chunk.len()].join(", ");
            tx.exec(
                &format!("UPDATE webhooks SET failure_count = 0 WHERE failure_count <> 0 AND id IN ({marks})"),
                chunk.iter().map(|id| v(*id)).collect(),
            )
            .await?;
        }
        for (id, n) in &failures {
            if let Some(disabled) = self.count_failure(&tx, *id, *n, now, disable_after).await? {
                report.disabled.push(disabled);
            }
        }
        dead.sort_by_key(|i| {
            (
                i.alarm.map(|(a, o)| (a, o.at)),
                i.created_at,
                i.message,
                i.target,
            )
        });
        for item in &dead {
            if self.fall_back(&tx, item, now).await? {
                report.fallbacks += 1;
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn list(
        &self,
        owner: UserId,
        channel: Channel,
        target: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut values = vec![v(owner.as_uuid()), v(channel.as_str()), v(target)];
        let cursor = if let Some(before) = before {
            values.extend([v(before), v(target)]);
            "AND (created_us, message_id) < (SELECT created_us, message_id FROM outbox WHERE message_id = ? AND target_id = ?)"
        } else {
            ""
        };
        values.push(v(i64::from(limit)));
        self.db
            .query_all(
                &format!(
                    "SELECT * FROM outbox WHERE owner_id = ? AND channel = ? AND target_id = ? {cursor} \
                     ORDER BY created_us DESC, message_id DESC LIMIT ?"
                ),
                values,
            )
            .await?
            .iter()
            .map(item_from)
            .collect()
    }

    async fn redeliver(
        &self,
        owner: UserId,
        channel: Channel,
        target: Uuid,
        message: Uuid,
        now: Timestamp,
    ) -> Result<OutboxItem, StoreError> {
        let tx = self.db.begin().await?;
        let key = vec![
            v(message),
            v(target),
            v(owner.as_uuid()),
            v(channel.as_str()),
        ];
        let row = tx
            .query_one(
                "SELECT status FROM outbox WHERE message_id = ? AND target_id = ? AND owner_id = ? AND channel = ?",
                key.clone(),
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        if col::<String>(&row, "status")? == SendStatus::Pending.as_str() {
            return Err(StoreError::Conflict(
                "the delivery is still pending".to_owned(),
            ));
        }
        let mut values = vec![v(us(now)), v(us(now))];
        values.extend(key);
        let row = tx
            .query_one(
                "UPDATE outbox SET status = 'pending', attempts = 0, due_us = ?, updated_us = ?, \
                 lease_token = NULL, lease_until_us = NULL \
                 WHERE message_id = ? AND target_id = ? AND owner_id = ? AND channel = ? \
                 AND status <> 'pending' RETURNING *",
                values,
            )
            .await?
            .ok_or_else(|| StoreError::Conflict("the delivery is still pending".to_owned()))?;
        let item = item_from(&row)?;
        tx.commit().await?;
        Ok(item)
    }

    async fn enqueue(&self, item: OutboxItem) -> Result<(), StoreError> {
        let tx = self.db.begin().await?;
        insert_item(&tx, &item).await?;
        tx.commit().await
    }

    async fn webhooks(&self, ids: Vec<WebhookId>) -> Result<Vec<WebhookRegistration>, StoreError> {
        let ids: Vec<Uuid> = ids.iter().map(WebhookId::as_uuid).collect();
        self.db
            .query_in("SELECT * FROM webhooks WHERE id IN ({ids})", &ids)
            .await?
            .iter()
            .map(webhook_from)
            .collect()
    }
}
