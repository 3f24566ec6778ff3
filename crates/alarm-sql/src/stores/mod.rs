//! The store ports on SQL: `SqlStores` and the parts every store shares, so that each commit is one transaction carrying the entity change, its audit record, events and trigger plans.

mod alarms;
mod api_keys;
mod audit;
mod events;
mod exception_periods;
mod holidays;
mod refresh_tokens;
mod routines;
mod sounds;
mod uploads;
mod users;
mod webhooks;

pub(crate) use webhooks::{WEBHOOK_COLUMNS, alarm_ids_from, open_secret, seal_secret};

use alarm_domain::ids::AlarmId;
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::{AlarmEvent, AuditRecord};
use alarm_domain::ports::{ChangeSet, Page, StoreError, TriggerPlan};
use alarm_domain::trigger::Trigger;
use alarm_domain::tz::TimeZoneName;
use sea_orm::{QueryResult, Value};
use uuid::Uuid;

use crate::codec::{kind_to_text, local_to_text};
use crate::db::{Db, Tx, col, corrupt, us};
use crate::row::Row;

/// Every store port (and, in `queue.rs`, the trigger queue) over one database.
#[derive(Clone)]
pub struct SqlStores {
    pub(crate) db: Db,
    pub(crate) tzdb: TimeZoneDatabase,
    /// Where this process's last outbox claim ended (PostgreSQL): the next
    /// claim starts there (see `outbox.rs`).
    pub(crate) outbox_cursor:
        std::sync::Arc<std::sync::Mutex<Option<(i64, uuid::Uuid, uuid::Uuid)>>>,
    /// Seals the webhook secrets at rest (see [`crate::Sql::with_sealer`]).
    pub(crate) sealer: Option<std::sync::Arc<dyn alarm_domain::ports::SecretSealer>>,
}

fn v<T: Into<Value>>(x: T) -> Value {
    x.into()
}

impl SqlStores {
    pub(crate) fn zone(&self, name: &str) -> Result<TimeZoneName, StoreError> {
        TimeZoneName::resolve(name, &self.tzdb).map_err(|e| corrupt("time zone", e))
    }
}

// ---- the parts every change set shares -------------------------------------

pub(crate) async fn insert_audit(tx: &Tx, a: &AuditRecord) -> Result<(), StoreError> {
    let row = Row::new()
        .set("id", a.id.as_uuid())
        .set("actor_id", a.actor.map(|u| u.as_uuid()))
        .set("action", a.action.clone())
        .set("entity_type", a.entity_type.clone())
        .set("entity_id", a.entity_id)
        .set("before_summary", a.before.clone())
        .set("after_summary", a.after.clone())
        .set("at_us", us(a.at))
        .set("correlation_id", a.correlation_id.clone());
    tx.insert("audit_log", vec![row], "").await?;
    Ok(())
}

/// Who writes a row: the engine's outcomes may be prepared ahead of
/// their instant, a service's change is in effect at its commit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// A use case's change set.
    ByService,
    /// A fired trigger's outcome.
    ByEngine,
}

/// Appends events in multi-row inserts. `Written::ByEngine` marks the
/// engine's outcome events, which are visible only from their own instant
/// (`effective_us`, see [`crate::db::now_sql`]); a service's events are
/// visible from their commit.
pub(crate) async fn insert_events(
    tx: &Tx,
    events: &[AlarmEvent],
    by: Written,
) -> Result<(), StoreError> {
    let rows = events
        .iter()
        .map(|e| {
            Row::new()
                .set("id", e.id.as_uuid())
                .set("alarm_id", e.alarm.as_uuid())
                .set("owner_id", e.owner.as_uuid())
                .set("kind", e.kind.as_str())
                .set("at_us", us(e.at))
                .set("occurrence_us", e.occurrence.map(us))
                .set("detail", e.detail.clone())
                .set("data", e.data.clone())
                .set(
                    "effective_us",
                    (by == Written::ByEngine).then_some(us(e.at)),
                )
        })
        .collect();
    tx.insert("alarm_events", rows, "").await?;
    Ok(())
}

/// Inserts or replaces a trigger by key, unless that key is leased (it is
/// being fired; replacing it would double-fire).
pub(crate) const TRIGGER_UPSERT: &str = "ON CONFLICT (alarm_id, occurrence_us, kind) DO UPDATE SET \
     owner_id = excluded.owner_id, occurrence_local = excluded.occurrence_local, due_us = excluded.due_us, alarm_version = excluded.alarm_version \
     WHERE triggers.lease_token IS NULL";

/// A trigger as stored.
pub(crate) fn trigger_row(t: &Trigger) -> Row {
    Row::new()
        .set("alarm_id", t.alarm.as_uuid())
        .set("occurrence_us", us(t.occurrence.at))
        .set("kind", kind_to_text(t.kind))
        .set("owner_id", t.owner.as_uuid())
        .set("occurrence_local", local_to_text(t.occurrence.local))
        .set("due_us", us(t.due_at))
        .set("alarm_version", t.alarm_version.get() as i64)
}

pub(crate) async fn upsert_trigger(tx: &Tx, t: &Trigger) -> Result<(), StoreError> {
    tx.insert("triggers", vec![trigger_row(t)], TRIGGER_UPSERT)
        .await?;
    Ok(())
}

pub(crate) async fn apply_plan(tx: &Tx, plan: &TriggerPlan) -> Result<(), StoreError> {
    match plan {
        TriggerPlan::Reschedule { alarm, next, .. } => {
            // Locked: a concurrent edit either committed before (and its
            // version is what we read) or waits for this transaction.
            let stored = tx.lock_alarm(alarm.as_uuid()).await?;
            if !plan.still_current(stored.and_then(|v| u64::try_from(v).ok())) {
                return Ok(());
            }
            tx.exec(
                "DELETE FROM triggers WHERE alarm_id = ? AND kind = 'fire' AND lease_token IS NULL",
                vec![v(alarm.as_uuid())],
            )
            .await?;
            if let Some(next) = next {
                upsert_trigger(tx, next).await?;
            }
        }
        TriggerPlan::CancelAll { alarm } => {
            tx.exec(
                "DELETE FROM triggers WHERE alarm_id = ?",
                vec![v(alarm.as_uuid())],
            )
            .await?;
            tx.exec(
                "DELETE FROM ringing WHERE alarm_id = ?",
                vec![v(alarm.as_uuid())],
            )
            .await?;
        }
    }
    Ok(())
}

pub(crate) async fn apply_common<Op>(tx: &Tx, change: &ChangeSet<Op>) -> Result<(), StoreError> {
    apply_common_with(tx, change, Prepared::Reprepare).await
}

/// [`apply_common`] for a change whose alarms are new: nothing can be
/// prepared for them yet, so their plans withdraw nothing (three deletes
/// per alarm saved on the busiest write path, creation).
pub(crate) async fn apply_common_new<Op>(
    tx: &Tx,
    change: &ChangeSet<Op>,
) -> Result<(), StoreError> {
    apply_common_with(tx, change, Prepared::Unchanged).await
}

async fn apply_common_with<Op>(
    tx: &Tx,
    change: &ChangeSet<Op>,
    prepared: Prepared,
) -> Result<(), StoreError> {
    insert_audit(tx, &change.audit).await?;
    insert_events(tx, &change.events, Written::ByService).await?;
    crate::outbox::fan_out(tx, &[], &change.events, Written::ByService).await?;
    for plan in &change.triggers {
        if prepared == Prepared::Reprepare {
            replan(tx, plan).await?;
        } else {
            apply_plan(tx, plan).await?;
        }
    }
    Ok(())
}

/// Applies a plan made by a change to the alarm or its owner's calendar
/// (not by the engine's own outcome): what the engine prepared for the
/// alarm and has not taken effect yet was judged before the change, so it
/// is withdrawn first, and the plan (computed from now, before those
/// instants) puts its occurrence back if it still rings.
pub(crate) async fn replan(tx: &Tx, plan: &TriggerPlan) -> Result<(), StoreError> {
    // The alarm's lock first, as every transaction writing its triggers or
    // ringing records takes it: the engine's commit of a preparation is
    // then wholly before this (and withdrawn) or after it (and declined as
    // judged from an older version).
    tx.lock_alarm(plan.alarm().as_uuid()).await?;
    cancel_prepared(tx, plan.alarm()).await?;
    apply_plan(tx, plan).await
}

/// The database's clock, read once: every decision of one withdrawal is
/// taken at the same instant, so an outcome is withdrawn whole or not at
/// all.
async fn db_now(tx: &Tx) -> Result<i64, StoreError> {
    // PostgreSQL: every withdrawal holds the withdrawal lock, shared, from
    // before its reading of the clock to its commit, so a sender that
    // confirms rows held ahead (`Outbox::confirm`, which takes the lock
    // whole) waits for each withdrawal that read the clock before it, and
    // one that reads it after cannot withdraw what was confirmed by then.
    // (SQLite runs one writer at a time.)
    if tx.backend == sea_orm::DbBackend::Postgres {
        tx.query_all(
            &format!("SELECT pg_advisory_xact_lock_shared({WITHDRAWAL_LOCK})"),
            Vec::new(),
        )
        .await?;
    }
    let row = tx
        .query_one(&format!("SELECT {} AS now_us", tx.now_sql()), Vec::new())
        .await?
        .ok_or_else(|| corrupt("clock", "no row"))?;
    col::<i64>(&row, "now_us")
}

/// The advisory lock (the two-key form, apart from the one-key ring
/// locks) that withdrawals of prepared outcomes hold shared and a sender's
/// confirmation of rows held ahead takes whole.
pub(crate) const WITHDRAWAL_LOCK: &str = "7270, 2";

/// Withdraws the alarm's prepared outcomes whose instant is still ahead
/// by the database's clock: their ringing records and those occurrences'
/// follow-ups, events, deliveries and outbox rows. What already took
/// effect stays as history. Decided inside the caller's transaction, under
/// the alarm's lock, at one reading of the database's clock.
pub(crate) async fn cancel_prepared(tx: &Tx, alarm: AlarmId) -> Result<(), StoreError> {
    let now = db_now(tx).await?;
    let id = alarm.as_uuid();
    revoke_claims(tx, &Ringed::Alarm(id), now).await?;
    withdraw_rings(tx, Ringed::Alarm(id), now).await?;
    // Outcomes that did not ring (suppressed, skipped) have no ringing
    // record: their rows go by the alarm alone.
    tx.exec(
        "DELETE FROM outbox WHERE alarm_id = ? AND effective_us > ?",
        vec![v(id), v(now)],
    )
    .await?;
    withdraw_events(tx, id, None, now).await
}

/// After a change to what a prepared ring carries but not to when it
/// rings (the owner's routines, which it starts; the owner's webhooks,
/// which get its rows): the owner's prepared rings still ahead are
/// withdrawn and their `fire` triggers put back, so the engine prepares
/// them again with the change (at once: they are inside its window).
pub(crate) async fn reprepare_owner(tx: &Tx, owner: Uuid) -> Result<(), StoreError> {
    if tx.backend == sea_orm::DbBackend::Postgres {
        // Every alarm of the owner's, in id order as completions lock
        // them, before anything is read (see `replan`).
        tx.query_all(
            "SELECT id FROM alarms WHERE owner_id = ? ORDER BY id FOR UPDATE",
            vec![v(owner)],
        )
        .await?;
    }
    let now = db_now(tx).await?;
    revoke_claims(tx, &Ringed::Owner(owner), now).await?;
    let rings = withdraw_rings(tx, Ringed::Owner(owner), now).await?;
    let mut triggers = Vec::with_capacity(rings.len());
    for ring in &rings {
        let alarm: Uuid = col(ring, "alarm_id")?;
        let Some(version) = tx.lock_alarm(alarm).await? else {
            continue;
        };
        triggers.push(
            Row::new()
                .set("alarm_id", alarm)
                .set("occurrence_us", col::<i64>(ring, "occurrence_us")?)
                .set(
                    "kind",
                    kind_to_text(alarm_domain::trigger::TriggerKind::Fire),
                )
                .set("owner_id", owner)
                .set("occurrence_local", col::<String>(ring, "occurrence_local")?)
                // A prepared ring's record starts at its trigger's instant.
                .set("due_us", col::<i64>(ring, "since_us")?)
                .set("alarm_version", version),
        );
    }
    tx.insert("triggers", triggers, TRIGGER_UPSERT).await?;
    Ok(())
}

/// Whose prepared rings are withdrawn.
enum Ringed {
    /// One alarm's.
    Alarm(Uuid),
    /// Every alarm's of one owner.
    Owner(Uuid),
}

/// Revokes the leases of `fire` claims still ahead at `now` (an engine is
/// preparing them, judged from what this change replaces): their commit
/// then finds its token gone and is declined as lost, and the trigger,
/// unleased (or re-planned by the caller), is claimed and judged again. A
/// claim already due keeps its lease: it rings as judged.
async fn revoke_claims(tx: &Tx, whose: &Ringed, now: i64) -> Result<(), StoreError> {
    let (column, key) = match whose {
        Ringed::Alarm(id) => ("alarm_id", *id),
        Ringed::Owner(id) => ("owner_id", *id),
    };
    tx.exec(
        &format!(
            "UPDATE triggers SET lease_token = NULL, lease_until_us = NULL \
             WHERE {column} = ? AND kind = 'fire' AND lease_token IS NOT NULL AND due_us > ?"
        ),
        vec![v(key), v(now)],
    )
    .await?;
    Ok(())
}

/// Removes the prepared ringing records (not in effect at `now`) of an
/// alarm or an owner, with their occurrences' follow-ups, deliveries,
/// outbox rows and events; returns the records removed.
async fn withdraw_rings(tx: &Tx, whose: Ringed, now: i64) -> Result<Vec<QueryResult>, StoreError> {
    let (column, key) = match whose {
        Ringed::Alarm(id) => ("alarm_id", id),
        Ringed::Owner(id) => ("owner_id", id),
    };
    let rings = tx
        .query_all(
            &format!(
                "DELETE FROM ringing WHERE {column} = ? AND since_us > ? \
                 RETURNING alarm_id, owner_id, occurrence_us, occurrence_local, since_us"
            ),
            vec![v(key), v(now)],
        )
        .await?;
    for ring in &rings {
        let alarm: Uuid = col(ring, "alarm_id")?;
        let owner: Uuid = col(ring, "owner_id")?;
        let at: i64 = col(ring, "occurrence_us")?;
        tx.exec(
            "DELETE FROM triggers WHERE alarm_id = ? AND occurrence_us = ? AND kind <> 'fire'",
            vec![v(alarm), v(at)],
        )
        .await?;
        tx.exec(
            "DELETE FROM deliveries WHERE owner_id = ? AND created_us > ? AND alarm_id = ? AND occurrence_us = ?",
            vec![v(owner), v(now), v(alarm), v(at)],
        )
        .await?;
        tx.exec(
            "DELETE FROM outbox WHERE alarm_id = ? AND occurrence_us = ? AND effective_us > ?",
            vec![v(alarm), v(at), v(now)],
        )
        .await?;
        withdraw_events(tx, alarm, Some(at), now).await?;
    }
    Ok(rings)
}

/// Removes the alarm's events (of one occurrence, or all) not in effect at
/// `now`, with the outbox rows made of them (a routine's start has no
/// alarm on its rows, so they go by their message, the event's id).
async fn withdraw_events(
    tx: &Tx,
    alarm: Uuid,
    occurrence: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    let (sql, values) = match occurrence {
        Some(at) => (
            "DELETE FROM alarm_events WHERE alarm_id = ? AND occurrence_us = ? AND effective_us > ? RETURNING id",
            vec![v(alarm), v(at), v(now)],
        ),
        None => (
            "DELETE FROM alarm_events WHERE alarm_id = ? AND effective_us > ? RETURNING id",
            vec![v(alarm), v(now)],
        ),
    };
    let ids = tx
        .query_all(sql, values)
        .await?
        .iter()
        .map(|r| col::<Uuid>(r, "id"))
        .collect::<Result<Vec<_>, _>>()?;
    for chunk in ids.chunks(400) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut values: Vec<Value> = chunk.iter().map(|id| v(*id)).collect();
        values.push(v(now));
        tx.exec(
            &format!("DELETE FROM outbox WHERE message_id IN ({marks}) AND effective_us > ?"),
            values,
        )
        .await?;
    }
    Ok(())
}

/// One owner-scoped write of an entity row (ids as stored).
pub(crate) enum Owned {
    /// A new row: its id, its owner and the rest.
    Create {
        /// The row's id.
        id: Uuid,
        /// Its owner.
        owner: Uuid,
        /// Every other column.
        fields: Row,
        /// How many rows of the table the owner may hold.
        quota: alarm_domain::limits::Quota,
    },
    /// New values for the owner's row `id`.
    Update {
        /// The row's id.
        id: Uuid,
        /// Its owner.
        owner: Uuid,
        /// The columns to set.
        fields: Row,
    },
    /// Removal of the owner's row `id`.
    Delete {
        /// The row's id.
        id: Uuid,
        /// Its owner.
        owner: Uuid,
    },
}

/// Commits a change set whose entity write is `write` to `table`, which
/// must touch a row (an owner-scoped update or delete of a missing or
/// foreign row touches none: `NotFound`), with the shared parts, in one
/// transaction.
async fn commit_one<Op>(
    db: &Db,
    change: &ChangeSet<Op>,
    table: &str,
    write: Owned,
    prepared: Prepared,
) -> Result<(), StoreError> {
    db.write(async |tx| {
        let owner = match &write {
            Owned::Create { owner, .. }
            | Owned::Update { owner, .. }
            | Owned::Delete { owner, .. } => *owner,
        };
        let key = "id = ? AND owner_id = ?";
        let touched = match write {
            Owned::Create {
                id,
                owner,
                fields,
                quota,
            } => {
                tx.admit(table, owner, quota).await?;
                let row = Row::new()
                    .set("id", id)
                    .set("owner_id", owner)
                    .extend(fields);
                tx.insert(table, vec![row], "").await?
            }
            Owned::Update { id, owner, fields } => {
                tx.update(table, fields, key, vec![v(id), v(owner)]).await?
            }
            Owned::Delete { id, owner } => {
                tx.exec(
                    &format!("DELETE FROM {table} WHERE {key}"),
                    vec![v(id), v(owner)],
                )
                .await?
            }
        };
        if touched == 0 {
            return Err(StoreError::NotFound);
        }
        apply_common(tx, change).await?;
        if prepared == Prepared::Reprepare {
            reprepare_owner(tx, owner).await?;
        }
        Ok(())
    })
    .await
}

/// Whether a write changes what is prepared: for an entity write, what
/// the owner's prepared rings carry ([`reprepare_owner`]); for a change
/// set's plans, whether they withdraw what was prepared ([`replan`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prepared {
    /// It does not (or its plans already re-plan them).
    Unchanged,
    /// It does.
    Reprepare,
}

/// `WHERE` + cursor + order + limit for id-ordered pages.
pub(crate) fn page_sql(
    base: &str,
    after: Option<Uuid>,
    limit: u32,
    values: &mut Vec<Value>,
) -> String {
    let mut sql = base.to_owned();
    if let Some(after) = after {
        sql.push_str(" AND id > ?");
        values.push(v(after));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", limit + 1));
    sql
}

fn finish_page<T, C: Copy>(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> C) -> Page<T, C> {
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(&id)
    } else {
        None
    };
    Page { items, next }
}

pub(crate) fn id_of<T>(
    row: &QueryResult,
    name: &str,
    make: fn(Uuid) -> Result<T, alarm_domain::ValidationError>,
) -> Result<T, StoreError> {
    make(col::<Uuid>(row, name)?).map_err(|e| corrupt(name, e))
}
