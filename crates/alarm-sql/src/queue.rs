//! The trigger queue on SQL: `FOR UPDATE SKIP LOCKED` claims on PostgreSQL, the single writer on SQLite, per-trigger lease tokens for fencing.

use alarm_domain::ids::{AlarmId, UserId};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::{AlarmVersion, Channel};
use alarm_domain::ports::{
    ChangeSet, EngineRight, FireOutcome, RingingOp, RingingStore, StoreError, TriggerClaims,
    TriggerPlan,
};
use alarm_domain::trigger::{
    Claimed, Delivery, LeaseToken, OccurrenceRef, Ringing, RingingChange, Trigger,
};
use async_trait::async_trait;
use sea_orm::{DbBackend, QueryResult, Value};
use uuid::Uuid;

use crate::codec::{kind_from_text, kind_to_text, local_from_text, local_to_text};
use crate::db::{Tx, col, corrupt, num, ts, us};
use crate::row::Row;
use alarm_domain::firing::stale_preparation;

use crate::stores::{SqlStores, Written, apply_common, apply_plan, insert_events, upsert_trigger};

fn v<T: Into<Value>>(x: T) -> Value {
    x.into()
}

fn trigger_from(row: &QueryResult) -> Result<Trigger, StoreError> {
    Ok(Trigger {
        alarm: AlarmId::from_uuid(col(row, "alarm_id")?).map_err(|e| corrupt("alarm id", e))?,
        owner: UserId::from_uuid(col(row, "owner_id")?).map_err(|e| corrupt("owner id", e))?,
        occurrence: OccurrenceRef {
            at: ts(col(row, "occurrence_us")?)?,
            local: local_from_text(&col::<String>(row, "occurrence_local")?)?,
        },
        kind: kind_from_text(&col::<String>(row, "kind")?)?,
        due_at: ts(col(row, "due_us")?)?,
        alarm_version: AlarmVersion::new(num::<i64, u64>(row, "alarm_version")?)
            .map_err(|e| corrupt("version", e))?,
    })
}

fn ringing_from(row: &QueryResult) -> Result<Ringing, StoreError> {
    let small = |n: &str| -> Result<u8, StoreError> { num::<i16, u8>(row, n) };
    Ok(Ringing {
        alarm: AlarmId::from_uuid(col(row, "alarm_id")?).map_err(|e| corrupt("alarm id", e))?,
        owner: UserId::from_uuid(col(row, "owner_id")?).map_err(|e| corrupt("owner id", e))?,
        occurrence: OccurrenceRef {
            at: ts(col(row, "occurrence_us")?)?,
            local: local_from_text(&col::<String>(row, "occurrence_local")?)?,
        },
        since: ts(col(row, "since_us")?)?,
        snoozes: small("snoozes")?,
        level: small("level")?,
        snoozed: col(row, "snoozed")?,
    })
}

fn channel_from(text: &str) -> Result<Channel, StoreError> {
    Channel::parse(text).map_err(|e| corrupt("channel", e))
}

/// A delivery's id is its idempotency key, derived from what it is about:
/// the same delivery committed again (it cannot be, short of a bug) is
/// the one already there, and must not stop the rest of the batch.
const DELIVERY_ONCE: &str = "ON CONFLICT (id) DO NOTHING";

/// A delivery as stored.
fn delivery_row(d: &Delivery) -> Row {
    Row::new()
        .set("id", d.id)
        .set("owner_id", d.owner.as_uuid())
        .set("alarm_id", d.alarm.as_uuid())
        .set("occurrence_us", us(d.occurrence.at))
        .set("occurrence_local", local_to_text(d.occurrence.local))
        .set("trigger_kind", kind_to_text(d.kind))
        .set("channel", d.channel.as_str())
        .set("created_us", us(d.created_at))
}

/// Locks (PostgreSQL) the alarms whose triggers these tokens lease, in id
/// order so two batches cannot deadlock on each other, before the fencing
/// delete: the runner's completion then serialises with edits, snoozes and
/// dismissals of the same alarm.
/// The claims whose outcome was prepared ahead of its instant from an
/// alarm version that is no longer stored ([`stale_preparation`]), put
/// back unleased (their alarms are locked on PostgreSQL; SQLite has one
/// writer), so that nothing judged from the older alarm is committed.
async fn stale_preparations(
    tx: &Tx,
    items: &[(LeaseToken, FireOutcome)],
) -> Result<std::collections::HashSet<Uuid>, StoreError> {
    let judged: Vec<&(LeaseToken, FireOutcome)> = items
        .iter()
        .filter(|(_, o)| matches!(o.next, Some(TriggerPlan::Reschedule { .. })))
        .collect();
    let now = tx.now_sql();
    let mut stale = std::collections::HashSet::new();
    for chunk in judged.chunks(400) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let rows = tx
            .query_all(
                &format!(
                    "SELECT t.lease_token, (t.due_us > {now}) AS ahead, a.version FROM triggers t \
                     LEFT JOIN alarms a ON a.id = t.alarm_id WHERE t.lease_token IN ({marks})"
                ),
                chunk.iter().map(|(t, _)| v(t.as_uuid())).collect(),
            )
            .await?;
        let outcomes: std::collections::HashMap<Uuid, &FireOutcome> =
            chunk.iter().map(|(t, o)| (t.as_uuid(), o)).collect();
        for row in &rows {
            let token: Uuid = col(row, "lease_token")?;
            let stored = col::<Option<i64>>(row, "version")?.and_then(|v| u64::try_from(v).ok());
            if let Some(outcome) = outcomes.get(&token)
                && stale_preparation(outcome, stored, col(row, "ahead")?)
            {
                stale.insert(token);
            }
        }
    }
    let tokens: Vec<Uuid> = stale.iter().copied().collect();
    for chunk in tokens.chunks(400) {
        let marks = vec!["?"; chunk.len()].join(", ");
        tx.exec(
            &format!("UPDATE triggers SET lease_token = NULL, lease_until_us = NULL WHERE lease_token IN ({marks})"),
            chunk.iter().map(|t| v(*t)).collect(),
        )
        .await?;
    }
    Ok(stale)
}

async fn lock_alarms_of(tx: &Tx, tokens: &[LeaseToken]) -> Result<(), StoreError> {
    if tx.backend != DbBackend::Postgres || tokens.is_empty() {
        return Ok(());
    }
    for chunk in tokens.chunks(400) {
        let marks = vec!["?"; chunk.len()].join(", ");
        tx.query_all(
            // `= ANY(ARRAY(…))` keeps this a primary-key lookup per alarm;
            // as `IN (SELECT …)` the generic plan of the prepared statement
            // hash-joined a sequential scan of every alarm (hundreds of
            // milliseconds per batch with 200k alarms).
            &format!("SELECT id FROM alarms WHERE id = ANY(ARRAY(SELECT alarm_id FROM triggers WHERE lease_token IN ({marks}))) ORDER BY id FOR UPDATE"),
            chunk.iter().map(|t| v(t.as_uuid())).collect(),
        )
        .await?;
    }
    Ok(())
}

/// Writes a fired trigger's outcome inside the caller's transaction.
async fn apply_outcome(tx: &Tx, outcome: &FireOutcome) -> Result<(), StoreError> {
    insert_events(tx, &outcome.events, Written::ByEngine).await?;
    tx.insert(
        "deliveries",
        outcome.deliveries.iter().map(delivery_row).collect(),
        DELIVERY_ONCE,
    )
    .await?;
    crate::outbox::fan_out(
        tx,
        &outcome.deliveries.iter().collect::<Vec<_>>(),
        &outcome.events,
        Written::ByEngine,
    )
    .await?;
    if let Some(follow_up) = &outcome.follow_up {
        upsert_trigger(tx, follow_up).await?;
    }
    if let Some(plan) = &outcome.next {
        apply_plan(tx, plan).await?;
    }
    match &outcome.ringing {
        RingingChange::None => {}
        RingingChange::Upsert(r) => upsert_ringing(tx, r).await?,
        RingingChange::End { alarm, occurrence } => {
            tx.exec(
                "DELETE FROM ringing WHERE alarm_id = ? AND occurrence_us = ?",
                vec![v(alarm.as_uuid()), v(us(*occurrence))],
            )
            .await?;
        }
    }
    Ok(())
}

/// Whether no two outcomes touch the same trigger, plan or ringing row, so
/// that applying them statement by statement (all plan deletions, then all
/// upserts) equals applying them one after the other.
fn independent(kept: &[&FireOutcome]) -> bool {
    use std::collections::HashSet;
    let mut triggers = HashSet::new();
    let mut plans = HashSet::new();
    let mut ringing = HashSet::new();
    for o in kept {
        if let Some(t) = &o.follow_up
            && !triggers.insert(t.key())
        {
            return false;
        }
        match &o.next {
            None => {}
            Some(TriggerPlan::Reschedule { alarm, next, .. }) => {
                if !plans.insert(*alarm) {
                    return false;
                }
                if let Some(t) = next
                    && !triggers.insert(t.key())
                {
                    return false;
                }
            }
            Some(TriggerPlan::CancelAll { .. }) => return false,
        }
        let key = match &o.ringing {
            RingingChange::None => continue,
            RingingChange::Upsert(r) => (r.alarm, r.occurrence.at),
            RingingChange::End { alarm, occurrence } => (*alarm, *occurrence),
        };
        if !ringing.insert(key) {
            return false;
        }
    }
    true
}

/// Applies the follow-ups, plans and ringing changes of a batch in a few
/// multi-row statements instead of a few statements per trigger.
async fn apply_in_bulk(tx: &Tx, kept: &[&FireOutcome]) -> Result<(), StoreError> {
    const CHUNK: usize = 400;
    let plans: Vec<(AlarmId, AlarmVersion, Option<&Trigger>)> = kept
        .iter()
        .filter_map(|o| match &o.next {
            Some(TriggerPlan::Reschedule {
                alarm,
                version,
                next,
            }) => Some((*alarm, *version, next.as_ref())),
            _ => None,
        })
        .collect();
    // A plan applies only if the alarm still has the version it was
    // computed from (the alarms are locked on PostgreSQL; SQLite has one
    // writer).
    let mut stored = std::collections::HashMap::new();
    for chunk in plans.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let rows = tx
            .query_all(
                &format!("SELECT id, version FROM alarms WHERE id IN ({marks})"),
                chunk.iter().map(|(a, _, _)| v(a.as_uuid())).collect(),
            )
            .await?;
        for row in &rows {
            stored.insert(col::<Uuid>(row, "id")?, col::<i64>(row, "version")?);
        }
    }
    let current: Vec<_> = plans
        .iter()
        .filter(|(a, ver, _)| stored.get(&a.as_uuid()) == Some(&(ver.get() as i64)))
        .collect();
    for chunk in current.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(", ");
        tx.exec(
            &format!("DELETE FROM triggers WHERE kind = 'fire' AND lease_token IS NULL AND alarm_id IN ({marks})"),
            chunk.iter().map(|(a, _, _)| v(a.as_uuid())).collect(),
        )
        .await?;
    }
    let upserts: Vec<Row> = kept
        .iter()
        .filter_map(|o| o.follow_up.as_ref())
        .chain(current.iter().filter_map(|(_, _, next)| *next))
        .map(crate::stores::trigger_row)
        .collect();
    tx.insert("triggers", upserts, crate::stores::TRIGGER_UPSERT)
        .await?;
    let ringing: Vec<Row> = kept
        .iter()
        .filter_map(|o| match &o.ringing {
            RingingChange::Upsert(r) => Some(ringing_row(r)),
            _ => None,
        })
        .collect();
    tx.insert("ringing", ringing, RINGING_UPSERT).await?;
    let ends: Vec<(AlarmId, Timestamp)> = kept
        .iter()
        .filter_map(|o| match &o.ringing {
            RingingChange::End { alarm, occurrence } => Some((*alarm, *occurrence)),
            _ => None,
        })
        .collect();
    for chunk in ends.chunks(CHUNK) {
        let marks = vec!["(?, ?)"; chunk.len()].join(", ");
        tx.exec(
            &format!("DELETE FROM ringing WHERE (alarm_id, occurrence_us) IN (VALUES {marks})"),
            chunk
                .iter()
                .flat_map(|(a, at)| [v(a.as_uuid()), v(us(*at))])
                .collect(),
        )
        .await?;
    }
    Ok(())
}

const RINGING_UPSERT: &str = "ON CONFLICT (alarm_id, occurrence_us) DO UPDATE SET owner_id = excluded.owner_id, occurrence_local = excluded.occurrence_local, \
     since_us = excluded.since_us, snoozes = excluded.snoozes, level = excluded.level, snoozed = excluded.snoozed";

/// A ringing record as stored.
fn ringing_row(r: &Ringing) -> Row {
    Row::new()
        .set("alarm_id", r.alarm.as_uuid())
        .set("occurrence_us", us(r.occurrence.at))
        .set("owner_id", r.owner.as_uuid())
        .set("occurrence_local", local_to_text(r.occurrence.local))
        .set("since_us", us(r.since))
        .set("snoozes", i16::from(r.snoozes))
        .set("level", i16::from(r.level))
        .set("snoozed", r.snoozed)
}

async fn upsert_ringing(tx: &Tx, r: &Ringing) -> Result<(), StoreError> {
    tx.insert("ringing", vec![ringing_row(r)], RINGING_UPSERT)
        .await?;
    Ok(())
}

#[async_trait]
impl TriggerClaims for SqlStores {
    async fn claim(
        &self,
        now: Timestamp,
        limit: u32,
        lease: SignedDuration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let until = now.checked_add(lease).unwrap_or(Timestamp::MAX);
        // Each trigger gets its own token, made by the database in the same
        // statement; `SKIP LOCKED` lets concurrent claimers pass over rows
        // another transaction is claiming instead of waiting or sharing.
        let sql = match self.db.backend {
            DbBackend::Postgres => {
                // `ctid = ANY(ARRAY(…))` makes the outer update a TID scan of
                // exactly the locked rows; a key `IN (…)` lets the generic
                // plan of the prepared statement hash-join a sequential scan
                // of the whole table. The rows are locked by the inner
                // `FOR UPDATE`, so their ctids cannot move under us.
                "UPDATE triggers SET lease_token = gen_random_uuid(), lease_until_us = ? \
                 WHERE ctid = ANY(ARRAY( \
                   SELECT ctid FROM triggers WHERE lease_token IS NULL AND due_us <= ? \
                   ORDER BY due_us LIMIT ? FOR UPDATE SKIP LOCKED)) \
                 RETURNING *"
            }
            _ => {
                "UPDATE triggers SET lease_token = randomblob(16), lease_until_us = ? \
                 WHERE (alarm_id, occurrence_us, kind) IN ( \
                   SELECT alarm_id, occurrence_us, kind FROM triggers WHERE lease_token IS NULL AND due_us <= ? \
                   ORDER BY due_us LIMIT ?) \
                 RETURNING *"
            }
        };
        self.db
            .write(async |tx| {
                let rows = tx
                    .query_all(sql, vec![v(us(until)), v(us(now)), v(i64::from(limit))])
                    .await?;
                let mut claimed = rows
                    .iter()
                    .map(|r| {
                        Ok(Claimed {
                            trigger: trigger_from(r)?,
                            token: LeaseToken::from_uuid(col::<Uuid>(r, "lease_token")?),
                            lease_until: until,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                claimed.sort_by_key(|c| (c.trigger.due_at, c.trigger.key()));
                Ok(claimed)
            })
            .await
    }

    async fn complete(&self, token: LeaseToken, outcome: FireOutcome) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                lock_alarms_of(tx, &[token]).await?;
                if !stale_preparations(tx, &[(token, outcome.clone())])
                    .await?
                    .is_empty()
                {
                    return Err(StoreError::LeaseLost);
                }
                if tx
                    .exec(
                        "DELETE FROM triggers WHERE lease_token = ?",
                        vec![v(token.as_uuid())],
                    )
                    .await?
                    == 0
                {
                    return Err(StoreError::LeaseLost);
                }
                apply_outcome(tx, &outcome).await?;
                Ok(())
            })
            .await
    }

    async fn complete_many(
        &self,
        items: Vec<(LeaseToken, FireOutcome)>,
    ) -> Result<Vec<LeaseToken>, StoreError> {
        // One transaction (one commit, one fsync) for the whole batch; the
        // fencing deletes go in chunks of a few hundred tokens per statement.
        const CHUNK: usize = 400;
        self.db
            .write(async |tx| {
                let tokens: Vec<LeaseToken> = items.iter().map(|(t, _)| *t).collect();
                lock_alarms_of(tx, &tokens).await?;
                // Preparations from an alarm version an edit replaced meanwhile
                // go back to be judged again; they come back as lost.
                let stale = stale_preparations(tx, &items).await?;
                let live: Vec<&(LeaseToken, FireOutcome)> = items
                    .iter()
                    .filter(|(t, _)| !stale.contains(&t.as_uuid()))
                    .collect();
                let mut current = std::collections::HashSet::new();
                for chunk in live.chunks(CHUNK) {
                    let marks = vec!["?"; chunk.len()].join(", ");
                    let rows = tx
                .query_all(
                    &format!(
                        "DELETE FROM triggers WHERE lease_token IN ({marks}) RETURNING lease_token"
                    ),
                    chunk.iter().map(|(t, _)| v(t.as_uuid())).collect(),
                )
                .await?;
                    for row in &rows {
                        current.insert(col::<Uuid>(row, "lease_token")?);
                    }
                }
                let mut lost = Vec::new();
                let mut kept = Vec::with_capacity(items.len());
                for (token, outcome) in &items {
                    if current.remove(&token.as_uuid()) {
                        kept.push(outcome);
                    } else {
                        lost.push(*token);
                    }
                }
                let events: Vec<_> = kept.iter().flat_map(|o| o.events.iter().cloned()).collect();
                insert_events(tx, &events, Written::ByEngine).await?;
                tx.insert(
                    "deliveries",
                    kept.iter()
                        .flat_map(|o| o.deliveries.iter().map(delivery_row))
                        .collect(),
                    DELIVERY_ONCE,
                )
                .await?;
                crate::outbox::fan_out(
                    tx,
                    &kept
                        .iter()
                        .flat_map(|o| o.deliveries.iter())
                        .collect::<Vec<_>>(),
                    &events,
                    Written::ByEngine,
                )
                .await?;
                if independent(&kept) {
                    apply_in_bulk(tx, &kept).await?;
                } else {
                    // Two outcomes touch the same row (an escalation and the expiry
                    // of one occurrence, found together after downtime): apply them
                    // one by one, in order.
                    for outcome in &kept {
                        let rest = FireOutcome {
                            events: Vec::new(),
                            deliveries: Vec::new(),
                            ..(*outcome).clone()
                        };
                        apply_outcome(tx, &rest).await?;
                    }
                }
                Ok(lost)
            })
            .await
    }

    async fn release(&self, token: LeaseToken) -> Result<(), StoreError> {
        self.db.write(async |tx| {
        let n = tx.exec("UPDATE triggers SET lease_token = NULL, lease_until_us = NULL WHERE lease_token = ?", vec![v(token.as_uuid())]).await?;
        if n == 0 {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
        }).await
    }

    async fn rescue(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.db.write(async |tx| {
        let n = tx
            .exec("UPDATE triggers SET lease_token = NULL, lease_until_us = NULL WHERE lease_token IS NOT NULL AND lease_until_us <= ?", vec![v(us(now))])
            .await?;
        Ok(n)
        }).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT MIN(due_us) AS next FROM triggers WHERE lease_token IS NULL",
                Vec::new(),
            )
            .await?;
        row.map(|r| col::<Option<i64>>(&r, "next"))
            .transpose()?
            .flatten()
            .map(ts)
            .transpose()
    }

    async fn due_count(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.db
            .count(
                "SELECT COUNT(*) AS n FROM triggers WHERE lease_token IS NULL AND due_us <= ?",
                vec![v(us(now))],
            )
            .await
    }

    async fn pending(&self, alarm: AlarmId) -> Result<Vec<Trigger>, StoreError> {
        let rows = self
            .db
            .query_all(
                "SELECT * FROM triggers WHERE alarm_id = ?",
                vec![v(alarm.as_uuid())],
            )
            .await?;
        let mut list = rows
            .iter()
            .map(trigger_from)
            .collect::<Result<Vec<_>, _>>()?;
        list.sort_by_key(|t| (t.due_at, t.key()));
        Ok(list)
    }

    async fn reschedule(&self, mut plans: Vec<TriggerPlan>) -> Result<(), StoreError> {
        // Alarms are locked in id order, as `complete` and an account's
        // erasure lock them, so no two of these transactions wait on each
        // other in a cycle.
        plans.sort_by_key(TriggerPlan::alarm);
        self.db
            .write(async |tx| {
                for plan in &plans {
                    crate::stores::replan(tx, plan).await?;
                }
                Ok(())
            })
            .await
    }

    async fn renew(
        &self,
        tokens: Vec<LeaseToken>,
        until: Timestamp,
    ) -> Result<Vec<LeaseToken>, StoreError> {
        self.db.write(async |tx| {
        let mut current = std::collections::HashSet::new();
        for chunk in tokens.chunks(400) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut values = vec![v(us(until))];
            values.extend(chunk.iter().map(|t| v(t.as_uuid())));
            let rows = tx
                .query_all(
                    &format!("UPDATE triggers SET lease_until_us = ? WHERE lease_token IN ({marks}) RETURNING lease_token"),
                    values,
                )
                .await?;
            for row in &rows {
                current.insert(col::<Uuid>(row, "lease_token")?);
            }
        }
        Ok(tokens
            .into_iter()
            .filter(|t| !current.contains(&t.as_uuid()))
            .collect())
        }).await
    }
}

#[async_trait]
impl RingingStore for SqlStores {
    async fn ringing(&self, owner: UserId, alarm: AlarmId) -> Result<Vec<Ringing>, StoreError> {
        let rows = self
            .db
            .query_all(
                &format!(
                    "SELECT * FROM ringing WHERE alarm_id = ? AND owner_id = ? AND since_us <= {} ORDER BY occurrence_us",
                    self.db.now_sql()
                ),
                vec![v(alarm.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        rows.iter().map(ringing_from).collect()
    }

    async fn commit_ringing(&self, change: ChangeSet<RingingOp>) -> Result<(), StoreError> {
        self.db.write(async |tx| {
        // The alarm's lock serialises this with concurrent snoozes,
        // dismissals and the runner's completions for the same alarm.
        let alarm = match &change.op {
            RingingOp::Snooze { ringing, .. } => ringing.alarm,
            RingingOp::Dismiss { alarm, .. } => *alarm,
        };
        tx.lock_alarm(alarm.as_uuid()).await?;
        match &change.op {
            RingingOp::Snooze { ringing, trigger } => {
                let row = tx
                    .query_one(
                        &format!("SELECT * FROM ringing WHERE alarm_id = ? AND occurrence_us = ? AND owner_id = ? AND since_us <= {}", tx.now_sql()),
                        vec![v(ringing.alarm.as_uuid()), v(us(ringing.occurrence.at)), v(ringing.owner.as_uuid())],
                    )
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let stored = ringing_from(&row)?;
                alarm_domain::ports::check_snooze(&stored, ringing, trigger)?;
                tx.exec(
                    "DELETE FROM triggers WHERE alarm_id = ? AND occurrence_us = ? AND (kind LIKE 'escalate:%' OR kind = 'expire')",
                    vec![v(ringing.alarm.as_uuid()), v(us(ringing.occurrence.at))],
                )
                .await?;
                upsert_trigger(tx, trigger).await?;
                upsert_ringing(tx, ringing).await?;
            }
            RingingOp::Dismiss { owner, alarm } => {
                // Exactly the records deleted get their follow-ups deleted;
                // an occurrence prepared to ring later is not ringing yet,
                // so a dismissal leaves it (and its follow-ups) alone.
                let rows = tx
                    .query_all(
                        &format!("DELETE FROM ringing WHERE alarm_id = ? AND owner_id = ? AND since_us <= {} RETURNING occurrence_us", tx.now_sql()),
                        vec![v(alarm.as_uuid()), v(owner.as_uuid())],
                    )
                    .await?;
                if rows.is_empty() {
                    return Err(StoreError::NotFound);
                }
                for row in &rows {
                    let at: i64 = col(row, "occurrence_us")?;
                    tx.exec("DELETE FROM triggers WHERE alarm_id = ? AND occurrence_us = ? AND kind <> 'fire'", vec![v(alarm.as_uuid()), v(at)]).await?;
                }
            }
        }
        apply_common(tx, &change).await?;
        Ok(())
        }).await
    }

    async fn ringing_of(&self, owner: UserId) -> Result<Vec<Ringing>, StoreError> {
        let rows = self
            .db
            .query_all(
                &format!(
                    "SELECT * FROM ringing WHERE owner_id = ? AND since_us <= {} ORDER BY occurrence_us, alarm_id",
                    self.db.now_sql()
                ),
                vec![v(owner.as_uuid())],
            )
            .await?;
        rows.iter().map(ringing_from).collect()
    }

    async fn deliveries(&self, owner: UserId) -> Result<Vec<Delivery>, StoreError> {
        let rows = self
            .db
            .query_all(
                &format!(
                    "SELECT * FROM deliveries WHERE owner_id = ? AND created_us <= {} ORDER BY created_us, id",
                    self.db.now_sql()
                ),
                vec![v(owner.as_uuid())],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    id: col(r, "id")?,
                    owner: UserId::from_uuid(col(r, "owner_id")?)
                        .map_err(|e| corrupt("owner id", e))?,
                    alarm: AlarmId::from_uuid(col(r, "alarm_id")?)
                        .map_err(|e| corrupt("alarm id", e))?,
                    occurrence: OccurrenceRef {
                        at: ts(col(r, "occurrence_us")?)?,
                        local: local_from_text(&col::<String>(r, "occurrence_local")?)?,
                    },
                    kind: kind_from_text(&col::<String>(r, "trigger_kind")?)?,
                    channel: channel_from(&col::<String>(r, "channel")?)?,
                    created_at: ts(col(r, "created_us")?)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl EngineRight for SqlStores {
    async fn store_time(&self) -> Result<Timestamp, StoreError> {
        // The same clock the visibility predicates read. SQLite has no
        // clock of its own beyond the host's; Julian days work on every
        // SQLite version (`unixepoch('subsec')` needs 3.42).
        let sql = format!("SELECT {} AS now_us", self.db.now_sql());
        let row = self
            .db
            .query_one(&sql, Vec::new())
            .await?
            .ok_or_else(|| corrupt("clock", "no row"))?;
        ts(col::<i64>(&row, "now_us")?)
    }

    async fn engine_lease(
        &self,
        holder: Uuid,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        if self.db.backend == DbBackend::Postgres {
            return Ok(true);
        }
        self.db.write(async |tx| {
        let n = tx
            .exec(
                "INSERT INTO engine_locks (name, holder, until_us) VALUES ('engine', ?, ?) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_us = excluded.until_us \
                 WHERE engine_locks.holder = excluded.holder OR engine_locks.until_us <= ?",
                vec![v(holder), v(us(until)), v(us(now))],
            )
            .await?;
        Ok(n == 1)
        }).await
    }

    async fn engine_unlease(&self, holder: Uuid) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                tx.exec(
                    "DELETE FROM engine_locks WHERE name = 'engine' AND holder = ?",
                    vec![v(holder)],
                )
                .await?;
                Ok(())
            })
            .await
    }
}
