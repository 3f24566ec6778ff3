//! The outbox on SQL: `SKIP LOCKED` lease claims, fenced finishes, and the rows and changes [`alarm_domain::sending`] decides, loaded under lock and written in bulk.

use std::collections::{HashMap, HashSet};

use alarm_domain::ids::{AlarmId, UserId, WebhookId};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::{AlarmEvent, Channel, WebhookRegistration};
use alarm_domain::ports::{
    ClaimedSend, FinishReport, Outbox, OutboxCounts, OutboxItem, SendLease, SendResult, SendStatus,
    SendTopic, StoreError,
};
use alarm_domain::sending::{self, Health, RingKey, Subscriber, Tally};
use alarm_domain::trigger::{Delivery, LeaseToken, OccurrenceRef};
use async_trait::async_trait;
use sea_orm::{DbBackend, QueryResult, Value};
use uuid::Uuid;

use crate::codec::events_from_bits;
use crate::codec::{local_from_text, local_to_text};
use crate::db::{Tx, col, corrupt, narrow, num, ts, us};
use crate::row::Row;
use crate::stores::{SqlStores, Written, id_of};

fn v<T: Into<Value>>(x: T) -> Value {
    x.into()
}

/// Every column of an outbox row, named: `SELECT *` is avoided on tables
/// that gained columns after creation, since a SQLite statement prepared
/// with the older column count is reused by the driver.
const COLUMNS: &str = "message_id, target_id, channel, owner_id, alarm_id, occurrence_us, \
     occurrence_local, topic, fallback, payload, status, attempts, due_us, lease_token, \
     lease_until_us, last_code, last_error, latency_ms, created_us, updated_us";

/// Keeps the stored row of a (message, target) that exists already.
const KEEP: &str = "ON CONFLICT (message_id, target_id) DO NOTHING";

/// Writes the outbox rows of freshly inserted alarm events and deliveries,
/// in the caller's transaction: the events' owners' registrations are read
/// in that transaction (so a registration disabled, narrowed or created
/// before the commit is judged as it is then), and [`sending::fan_out`]
/// decides the rows, written in multi-row inserts.
pub(crate) async fn fan_out(
    tx: &Tx,
    deliveries: &[&Delivery],
    events: &[AlarmEvent],
    by: Written,
) -> Result<(), StoreError> {
    let owners: Vec<Uuid> = sending::subscribers_needed(events)
        .iter()
        .map(UserId::as_uuid)
        .collect();
    let mut subscribers = Vec::new();
    let rows = tx
        .query_in(
            "SELECT id, owner_id, events, active, alarm_ids FROM webhooks WHERE owner_id IN ({ids})",
            &owners,
        )
        .await?;
    for row in &rows {
        subscribers.push(Subscriber {
            id: id_of(row, "id", WebhookId::from_uuid)?,
            owner: id_of(row, "owner_id", UserId::from_uuid)?,
            events: events_from_bits(col(row, "events")?)?,
            active: col(row, "active")?,
            alarms: crate::stores::alarm_ids_from(row)?,
        });
    }
    let rows = sending::fan_out(deliveries, events, &subscribers);
    // The engine's rows exist from the ring's instant, their creation.
    tx.insert(
        "outbox",
        rows.iter()
            .map(|i| {
                item_row(i).set(
                    "effective_us",
                    (by == Written::ByEngine).then_some(us(i.created_at)),
                )
            })
            .collect(),
        KEEP,
    )
    .await?;
    Ok(())
}

/// The outbox's visibility predicate: the rows of an engine's outcome
/// (its ring, its routines' start, its e-mail) exist from the outcome's
/// instant (`effective_us`) by the database's clock; a service's rows
/// (tests, notices, edits) from their commit.
fn visible_sql(now: &str) -> String {
    format!("(effective_us IS NULL OR effective_us <= {now})")
}

impl SqlStores {
    fn visible_sql(&self) -> String {
        visible_sql(&self.db.now_sql())
    }

    /// Runs a claim's `UPDATE … RETURNING`, a transaction by itself.
    async fn lease_rows(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<QueryResult>, StoreError> {
        self.db.send_statement(sql, values).await
    }
}

/// Claimed rows as a sender takes them, oldest due first (`RETURNING`
/// has no order).
fn claimed_from(rows: &[QueryResult], until: Timestamp) -> Result<Vec<ClaimedSend>, StoreError> {
    let mut claimed = rows
        .iter()
        .map(|r| {
            Ok(ClaimedSend {
                item: item_from(r)?,
                token: lease_from(r)?,
                lease_until: until,
                trace: col::<Option<String>>(r, "trace_parent")?
                    .filter(|t| t.len() <= alarm_telemetry::TRACEPARENT_LEN),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    claimed.sort_by_key(|c| (c.item.due, c.item.message, c.item.target));
    Ok(claimed)
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
        payload: col(row, "payload")?,
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

/// A new row, as inserted.
fn item_row(i: &OutboxItem) -> Row {
    Row::new()
        .set("message_id", i.message)
        .set("target_id", i.target)
        .set("channel", i.channel.as_str())
        .set("owner_id", i.owner.as_uuid())
        .set("alarm_id", i.alarm.map(|(a, _)| a.as_uuid()))
        .set("occurrence_us", i.alarm.map(|(_, o)| us(o.at)))
        .set(
            "occurrence_local",
            i.alarm.map(|(_, o)| local_to_text(o.local)),
        )
        .set("topic", i.topic.as_str())
        .set("fallback", i.fallback)
        .set("payload", i.payload.clone())
        .set("status", i.status.as_str())
        .set("attempts", i64::from(i.attempts))
        .set("due_us", us(i.due))
        .set("created_us", us(i.created_at))
        .set("updated_us", us(i.updated_at))
        // The span queuing the row (the request, the engine batch): its
        // delivery is then part of the same trace.
        .set("trace_parent", alarm_telemetry::current_traceparent())
}

/// `row` followed by what an attempt or a redelivery changes on a row:
/// everything but its identity and lease.
fn progress(row: Row, i: &OutboxItem) -> Row {
    row.set("status", i.status.as_str())
        .set("attempts", i64::from(i.attempts))
        .set("due_us", us(i.due))
        .set("last_code", i.last_code.map(i32::from))
        .set("last_error", i.last_error.clone())
        .set(
            "latency_ms",
            i.latency_ms.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
        )
        .set("updated_us", us(i.updated_at))
}

/// Inserts a row unless (message, target) exists; whether it did.
async fn insert_item(tx: &Tx, item: &OutboxItem) -> Result<bool, StoreError> {
    Ok(tx.insert("outbox", vec![item_row(item)], KEEP).await? > 0)
}

/// Serialises the fallback decision of one ring across concurrent senders
/// (PostgreSQL): without it two senders finishing the last two external
/// rows at once would each still see the other pending and neither would
/// queue the fallback.
async fn lock_ring(tx: &Tx, ring: RingKey) -> Result<(), StoreError> {
    if tx.backend != DbBackend::Postgres {
        return Ok(());
    }
    let bytes = ring.alarm.as_uuid().as_u64_pair();
    let key = (bytes.0 ^ bytes.1 ^ us(ring.occurrence).cast_unsigned()).cast_signed();
    tx.query_all("SELECT pg_advisory_xact_lock(?)", vec![v(key)])
        .await?;
    Ok(())
}

/// A registration's stored failure state, from a row holding its
/// `failure_count` and `active`.
fn health_from(row: &QueryResult) -> Result<Health, StoreError> {
    Ok(Health {
        failures: num::<i32, u32>(row, "failure_count")?,
        active: col(row, "active")?,
    })
}

/// The registrations' stored failure state, by id; locked until commit on
/// PostgreSQL, in id order (so two senders finishing overlapping batches
/// cannot deadlock).
async fn health_of(
    tx: &Tx,
    ids: &[WebhookId],
) -> Result<Vec<(WebhookId, UserId, Health)>, StoreError> {
    let lock = if tx.backend == DbBackend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let ids: Vec<Uuid> = ids.iter().map(WebhookId::as_uuid).collect();
    let rows = tx
        .query_in(
            &format!(
                "SELECT id, owner_id, failure_count, active FROM webhooks WHERE id IN ({{ids}}) ORDER BY id{lock}"
            ),
            &ids,
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push((
            id_of(row, "id", WebhookId::from_uuid)?,
            id_of(row, "owner_id", UserId::from_uuid)?,
            health_from(row)?,
        ));
    }
    Ok(out)
}

/// The lease a row is held under, from its `message_id`, `target_id`
/// and `lease_token`.
fn lease_from(row: &QueryResult) -> Result<SendLease, StoreError> {
    Ok(SendLease {
        token: LeaseToken::from_uuid(col::<Uuid>(row, "lease_token")?),
        message: col(row, "message_id")?,
        target: col(row, "target_id")?,
    })
}

/// Each lease as the key and token [`crate::db::with_keys`] joins.
fn lease_keys(leases: impl Iterator<Item = SendLease>) -> Vec<(Uuid, Uuid, Uuid)> {
    leases
        .map(|l| (l.message, l.target, l.token.as_uuid()))
        .collect()
}

/// How rows are found by their leases (`k`, [`crate::db::with_keys`]): by
/// primary key, then the token compared, so that no index on the token is
/// needed and a claim stays a HOT update on PostgreSQL (see `m0018`).
const HELD: &str = "JOIN {keys} ON o.message_id = k.message_id AND o.target_id = k.target_id \
     AND o.lease_token = k.lease_token";

/// Writes each recorded row (`progress`, keyed by its lease) whose lease
/// still holds, and answers for each such row its lease (`message_id`,
/// `target_id`, `lease_token`) and its registration's owner and stored
/// health when the target is one (`hook_owner`, `failure_count`,
/// `active`, as [`health_from`] reads them; `NULL` otherwise). A lease
/// that was taken over or rescued matches nothing, its row left alone (the
/// finish is fenced).
///
/// PostgreSQL: one `UPDATE … FROM … RETURNING` per chunk, joined to the
/// registrations: the write itself finds which leases held, with the rows
/// locked, in one round trip. SQLite (whose `RETURNING` cannot name a
/// joined table): the held leases read first, then written; its write
/// transaction already excludes every other writer.
async fn written_held(
    tx: &Tx,
    keys: &[(Uuid, Uuid, Uuid)],
    writes: Vec<Row>,
) -> Result<Vec<QueryResult>, StoreError> {
    if tx.backend == DbBackend::Postgres {
        return tx
            .update_each_returning(
                "outbox",
                writes,
                3,
                "lease_token = NULL, lease_until_us = NULL",
                "LEFT JOIN webhooks w ON w.id = v.target_id",
                "v.message_id, v.target_id, v.lease_token, w.owner_id AS hook_owner, \
                 w.failure_count, w.active",
            )
            .await;
    }
    let held = tx
        .query_keys(
            &format!(
                "SELECT o.message_id, o.target_id, o.lease_token, w.owner_id AS hook_owner, \
                 w.failure_count, w.active FROM outbox o {HELD} \
                 LEFT JOIN webhooks w ON w.id = o.target_id"
            ),
            keys,
        )
        .await?;
    tx.update_each(
        "outbox",
        writes,
        3,
        "lease_token = NULL, lease_until_us = NULL",
    )
    .await?;
    Ok(held)
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
        let visible = self.visible_sql();
        let sql = match self.db.backend {
            DbBackend::Postgres => format!(
                "UPDATE outbox SET lease_token = gen_random_uuid(), lease_until_us = ? \
                 WHERE ctid = ANY(ARRAY( \
                   SELECT ctid FROM outbox WHERE status = 'pending' AND due_us <= ? AND {visible} \
                   AND (lease_until_us IS NULL OR lease_until_us <= ?) {after} \
                   ORDER BY due_us, message_id, target_id LIMIT ? FOR UPDATE SKIP LOCKED)) \
                 RETURNING {COLUMNS}, trace_parent"
            ),
            _ => format!(
                "UPDATE outbox SET lease_token = randomblob(16), lease_until_us = ? \
                 WHERE (message_id, target_id) IN ( \
                   SELECT message_id, target_id FROM outbox WHERE status = 'pending' AND due_us <= ? AND {visible} \
                   AND (lease_until_us IS NULL OR lease_until_us <= ?) \
                   ORDER BY due_us LIMIT ?) \
                 RETURNING {COLUMNS}, trace_parent"
            ),
        };
        let mut values = vec![v(us(until)), v(us(now)), v(us(now))];
        if let Some((due, message, target)) = cursor {
            values.extend([v(due), v(message), v(target)]);
        }
        values.push(v(i64::from(limit)));
        let rows = self.lease_rows(&sql, values).await?;
        // The cursor moves only once the leases are committed.
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
        claimed_from(&rows, until)
    }

    async fn claim_ahead(
        &self,
        ahead: SignedDuration,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError> {
        // Only rows of prepared outcomes, not visible yet and visible
        // within `ahead`, all by the store's clock. Such a row is due at
        // its instant, so the range on `due_us` starts the pending index's
        // scan after every row already due (a burst being sent) instead of
        // walking them.
        let now = self.db.now_sql();
        let window = "due_us > {now} AND due_us <= {now} + ? \
             AND effective_us > {now} AND effective_us <= {now} + ? \
             AND (lease_until_us IS NULL OR lease_until_us <= {now})"
            .replace("{now}", &now);
        let sql = match self.db.backend {
            DbBackend::Postgres => format!(
                "UPDATE outbox SET lease_token = gen_random_uuid(), lease_until_us = ? \
                 WHERE ctid = ANY(ARRAY( \
                   SELECT ctid FROM outbox WHERE status = 'pending' AND {window} \
                   ORDER BY due_us, message_id, target_id LIMIT ? FOR UPDATE SKIP LOCKED)) \
                 RETURNING {COLUMNS}, trace_parent"
            ),
            _ => format!(
                "UPDATE outbox SET lease_token = randomblob(16), lease_until_us = ? \
                 WHERE (message_id, target_id) IN ( \
                   SELECT message_id, target_id FROM outbox WHERE status = 'pending' AND {window} \
                   ORDER BY due_us LIMIT ?) \
                 RETURNING {COLUMNS}, trace_parent"
            ),
        };
        let ahead_us = ahead.as_micros().clamp(0, i128::from(i64::MAX)) as i64;
        let values = vec![v(us(until)), v(ahead_us), v(ahead_us), v(i64::from(limit))];
        let rows = self.lease_rows(&sql, values).await?;
        claimed_from(&rows, until)
    }

    async fn confirm(
        &self,
        leases: Vec<SendLease>,
    ) -> Result<Vec<(SendLease, SignedDuration)>, StoreError> {
        // Read after every withdrawal that read the database's clock
        // before now has committed. PostgreSQL: each holds the withdrawal
        // lock shared until its commit, and this transaction takes it whole
        // first (a plain read would still see a row that an uncommitted
        // withdrawal has deleted, and send it; and a withdrawal that reads
        // the clock after this cannot take back what it confirms). SQLite:
        // the write transaction runs wholly before or after a withdrawal.
        let now = self.db.now_sql();
        let keys = lease_keys(leases.iter().copied());
        let rows = self
            .db
            .send_write(async |tx| {
                if tx.backend == DbBackend::Postgres {
                    tx.query_all(
                        &format!(
                            "SELECT pg_advisory_xact_lock({})",
                            crate::stores::WITHDRAWAL_LOCK
                        ),
                        Vec::new(),
                    )
                    .await?;
                }
                // Each row by its key, the token compared (`HELD`); the
                // status is judged here, not in the filter: a filter on
                // `status = 'pending'` could let PostgreSQL read the
                // pending index instead of probing the key (on statistics
                // taken while nothing was pending it did, when rows were
                // found by token: 46 ms a piece of 256, every piece walking
                // the whole pending index).
                tx.query_keys(
                    &format!(
                        "SELECT o.message_id, o.target_id, o.lease_token, o.status, \
                         COALESCE(o.effective_us, {now}) - {now} AS wait_us FROM outbox o {HELD}"
                    ),
                    &keys,
                )
                .await
            })
            .await?;
        // The join matched key and token: each row is one of `leases`.
        let mut confirmed = Vec::with_capacity(rows.len());
        for r in &rows {
            if col::<String>(r, "status")? == SendStatus::Pending.as_str() {
                confirmed.push((
                    lease_from(r)?,
                    SignedDuration::from_micros(col::<i64>(r, "wait_us")?),
                ));
            }
        }
        Ok(confirmed)
    }

    async fn finish(
        &self,
        now: Timestamp,
        results: Vec<(ClaimedSend, SendResult)>,
        disable_after: u32,
    ) -> Result<FinishReport, StoreError> {
        // Each result recorded by the domain on its row as claimed (the
        // stored row while the lease holds: see the port), before the
        // transaction; the write is fenced by the lease. A lease given
        // again, or with another row than its own, is refused (`None`):
        // written once with its first result (a join with two matches
        // would write either), the others reported lost.
        let mut recorded = Vec::with_capacity(results.len());
        let mut writes = Vec::with_capacity(results.len());
        let mut seen = HashSet::with_capacity(results.len());
        for (claimed, result) in results {
            let lease = claimed.token;
            if !claimed.is_whole() || !seen.insert(lease) {
                recorded.push((lease, None));
                continue;
            }
            let mut item = claimed.item;
            sending::record(&mut item, result, now);
            writes.push(progress(
                Row::new()
                    .set("message_id", lease.message)
                    .set("target_id", lease.target)
                    .set("lease_token", lease.token.as_uuid()),
                &item,
            ));
            recorded.push((lease, Some(item)));
        }
        let keys = lease_keys(
            recorded
                .iter()
                .filter(|(_, i)| i.is_some())
                .map(|(l, _)| *l),
        );
        self.db.send_write(async |tx| {
        let mut report = FinishReport::default();
        let mut held = HashMap::with_capacity(recorded.len());
        for row in written_held(tx, &keys, writes).await? {
            let health = match col::<Option<Uuid>>(&row, "hook_owner")? {
                None => None,
                Some(owner) => Some((
                    UserId::from_uuid(owner).map_err(|e| corrupt("owner id", e))?,
                    health_from(&row)?,
                )),
            };
            held.insert(lease_from(&row)?, health);
        }
        let mut done = Vec::with_capacity(held.len());
        let mut stored_health = HashMap::new();
        for (lease, item) in recorded {
            // A refused result (no item) leaves its lease's held row to
            // the whole result given with it, if any.
            let Some(item) = item else {
                report.lost.push(lease);
                continue;
            };
            let Some(health) = held.remove(&lease) else {
                report.lost.push(lease);
                continue;
            };
            if item.channel == Channel::Webhook
                && let Some(health) = health
            {
                stored_health.insert(item.target, health);
            }
            done.push(item);
        }
        // The registrations' health: read unlocked with the write, so
        // that a batch of healthy registrations (the common case) takes
        // no row lock and no round trip of its own; the few that change
        // are read again under lock and judged on what is stored then.
        let tally = Tally::of(&done);
        let judge =
            |id, owner, health| tally.judge(id, owner, health, disable_after, Uuid::now_v7(), now);
        let changing: Vec<WebhookId> = tally
            .touched()
            .into_iter()
            .filter(|id| {
                stored_health
                    .get(&id.as_uuid())
                    .is_some_and(|(owner, health)| judge(*id, *owner, *health).is_some())
            })
            .collect();
        // The fallbacks' candidates: dead rows of rings.
        let mut dead: Vec<(RingKey, &OutboxItem)> = done
            .iter()
            .filter(|i| i.status == SendStatus::Dead)
            .filter_map(|i| RingKey::of(i).map(|k| (k, i)))
            .collect();
        // A batch that may disable a registration, queue its notice or
        // queue a fallback commits durably: another sender can e-mail a
        // notice as soon as it is committed, and a crash must not then
        // take back the disabling it announced. Records alone (the common
        // case) need not wait for the flush (see `Db::send_write`).
        if !changing.is_empty() || !dead.is_empty() {
            tx.durable_commit().await?;
        }
        for (id, owner, health) in health_of(tx, &changing).await? {
            let Some(change) = judge(id, owner, health) else {
                continue;
            };
            tx.update(
                "webhooks",
                Row::new()
                    .set("failure_count", i64::from(change.health.failures))
                    .set("active", change.health.active),
                "id = ?",
                vec![v(id.as_uuid())],
            )
            .await?;
            if let Some(notice) = change.notice {
                insert_item(tx, &notice).await?;
                report.disabled.push(id);
            }
        }
        // The fallbacks, ring by ring in one global order (rings locked on
        // PostgreSQL in that order, for the same reason).
        dead.sort_by_key(|(k, i)| (*k, i.message, i.target));
        for (key, item) in dead {
            lock_ring(tx, key).await?;
            let ring = tx
                .query_all(
                    &format!("SELECT {COLUMNS} FROM outbox WHERE alarm_id = ? AND occurrence_us = ? AND created_us = ?"),
                    vec![
                        v(key.alarm.as_uuid()),
                        v(us(key.occurrence)),
                        v(us(key.created_at)),
                    ],
                )
                .await?
                .iter()
                .map(item_from)
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(mail) = sending::fallback(item, &ring, now)
                && insert_item(tx, &mail).await?
            {
                report.fallbacks += 1;
            }
        }
        Ok(report)
        }).await
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
                    "SELECT {COLUMNS} FROM outbox WHERE owner_id = ? AND channel = ? AND target_id = ? AND {} {cursor} \
                     ORDER BY created_us DESC, message_id DESC LIMIT ?",
                    self.visible_sql()
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
        self.db
            .write(async |tx| {
                let lock = if tx.backend == DbBackend::Postgres {
                    " FOR UPDATE"
                } else {
                    ""
                };
                let key = "message_id = ? AND target_id = ? AND owner_id = ? AND channel = ?";
                let visible = visible_sql(&tx.now_sql());
                let key_values = || {
                    vec![
                        v(message),
                        v(target),
                        v(owner.as_uuid()),
                        v(channel.as_str()),
                    ]
                };
                let row = tx
                    .query_one(
                        &format!("SELECT {COLUMNS} FROM outbox WHERE {key} AND {visible}{lock}"),
                        key_values(),
                    )
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let mut item = item_from(&row)?;
                sending::redeliver(&mut item, now)?;
                tx.update(
                    "outbox",
                    progress(Row::new(), &item)
                        .set("lease_token", None::<Uuid>)
                        .set("lease_until_us", None::<i64>),
                    key,
                    key_values(),
                )
                .await?;
                Ok(item)
            })
            .await
    }

    async fn enqueue(&self, item: OutboxItem) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                insert_item(tx, &item).await?;
                Ok(())
            })
            .await
    }

    async fn next_due_in(&self) -> Result<Option<SignedDuration>, StoreError> {
        // One statement, so both readings of the clock are the same instant.
        let now = self.db.now_sql();
        let sql = format!(
            "SELECT due_us - {now} AS wait_us FROM outbox WHERE status = 'pending' AND due_us > {now} \
             ORDER BY due_us LIMIT 1"
        );
        // The first row in the pending index's order, not MIN(): on stale
        // statistics PostgreSQL aggregated all 58k pending rows for a MIN
        // (9 ms a call, measured). PostgreSQL: on the sender's pool,
        // planned by that index whatever the statistics say (see
        // `Db::send_write`); SQLite plans by its indexes anyway, and its
        // write transaction would take the write lock for a read.
        let row = if self.db.backend == DbBackend::Postgres {
            self.db
                .send_statement(&sql, Vec::new())
                .await?
                .into_iter()
                .next()
        } else {
            self.db.query_one(&sql, Vec::new()).await?
        };
        Ok(row
            .map(|r| col::<Option<i64>>(&r, "wait_us"))
            .transpose()?
            .flatten()
            .map(SignedDuration::from_micros))
    }

    async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        // The statuses are written into the SQL, not bound: a planner
        // can then use the partial index on pending rows.
        let pending = self
            .db
            .count(
                &format!(
                    "SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND {}",
                    self.visible_sql()
                ),
                Vec::new(),
            )
            .await?;
        let dead = self
            .db
            .count(
                "SELECT COUNT(*) AS n FROM outbox WHERE status = 'dead'",
                Vec::new(),
            )
            .await?;
        Ok(OutboxCounts { pending, dead })
    }

    async fn webhooks(&self, ids: Vec<WebhookId>) -> Result<Vec<WebhookRegistration>, StoreError> {
        let ids: Vec<Uuid> = ids.iter().map(WebhookId::as_uuid).collect();
        self.db
            .query_in(
                &format!(
                    "SELECT {} FROM webhooks WHERE id IN ({{ids}})",
                    crate::stores::WEBHOOK_COLUMNS
                ),
                &ids,
            )
            .await?
            .iter()
            .map(|r| self.webhook_from(r))
            .collect()
    }
}
