//! The store ports on SQL: `SqlStores` and the parts every store shares, so that each commit is one transaction carrying the entity change, its audit record, events and trigger plans.

mod alarms;
mod audit;
mod events;
mod exception_periods;
mod holidays;
mod refresh_tokens;
mod routines;
mod users;
mod webhooks;

pub(crate) use webhooks::webhook_from;

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::{AlarmEvent, AuditRecord};
use alarm_domain::ports::{ChangeSet, Page, StoreError, TriggerPlan};
use alarm_domain::trigger::Trigger;
use alarm_domain::tz::TimeZoneName;
use sea_orm::{QueryResult, Value};
use uuid::Uuid;

use crate::codec::{kind_to_text, local_to_text};
use crate::db::{Db, Tx, col, corrupt, us};

/// Every store port (and, in `queue.rs`, the trigger queue) over one database.
#[derive(Clone)]
pub struct SqlStores {
    pub(crate) db: Db,
    pub(crate) tzdb: TimeZoneDatabase,
    /// Where this process's last outbox claim ended (PostgreSQL): the next
    /// claim starts there (see `outbox.rs`).
    pub(crate) outbox_cursor:
        std::sync::Arc<std::sync::Mutex<Option<(i64, uuid::Uuid, uuid::Uuid)>>>,
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
    tx.exec(
        "INSERT INTO audit_log (id, actor_id, action, entity_type, entity_id, before_summary, after_summary, at_us, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            v(a.id.as_uuid()),
            v(a.actor.map(|u| u.as_uuid())),
            v(a.action.clone()),
            v(a.entity_type.clone()),
            v(a.entity_id),
            v(a.before.clone()),
            v(a.after.clone()),
            v(us(a.at)),
            v(a.correlation_id.clone()),
        ],
    )
    .await?;
    Ok(())
}

/// Multi-row `INSERT INTO table (columns) VALUES (…), (…)`, in chunks that
/// stay far below both engines' limits on bound parameters.
pub(crate) async fn insert_rows(
    tx: &Tx,
    table_and_columns: &str,
    rows: Vec<Vec<Value>>,
) -> Result<(), StoreError> {
    insert_rows_then(tx, table_and_columns, rows, "").await
}

/// Multi-row inserts followed by `suffix` (an `ON CONFLICT` clause).
pub(crate) async fn insert_rows_then(
    tx: &Tx,
    table_and_columns: &str,
    rows: Vec<Vec<Value>>,
    suffix: &str,
) -> Result<(), StoreError> {
    const MAX_PARAMS: usize = 8000;
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let row_marks = format!("({})", vec!["?"; width].join(", "));
    for chunk in rows.chunks((MAX_PARAMS / width).max(1)) {
        let marks = vec![row_marks.as_str(); chunk.len()].join(", ");
        tx.exec(
            &format!("INSERT INTO {table_and_columns} VALUES {marks} {suffix}"),
            chunk.iter().flatten().cloned().collect(),
        )
        .await?;
    }
    Ok(())
}

/// Appends events in multi-row inserts.
pub(crate) async fn insert_events(tx: &Tx, events: &[AlarmEvent]) -> Result<(), StoreError> {
    let rows = events
        .iter()
        .map(|e| {
            vec![
                v(e.id.as_uuid()),
                v(e.alarm.as_uuid()),
                v(e.owner.as_uuid()),
                v(e.kind.as_str()),
                v(us(e.at)),
                v(e.occurrence.map(us)),
                v(e.detail.clone()),
            ]
        })
        .collect();
    insert_rows(
        tx,
        "alarm_events (id, alarm_id, owner_id, kind, at_us, occurrence_us, detail)",
        rows,
    )
    .await
}

/// Inserts or replaces a trigger by key, unless that key is leased (it is
/// being fired; replacing it would double-fire).
pub(crate) const TRIGGER_COLUMNS: &str =
    "triggers (alarm_id, occurrence_us, kind, owner_id, occurrence_local, due_us, alarm_version)";

/// A leased trigger is being fired: an upsert leaves it alone.
pub(crate) const TRIGGER_UPSERT: &str = "ON CONFLICT (alarm_id, occurrence_us, kind) DO UPDATE SET \
     owner_id = excluded.owner_id, occurrence_local = excluded.occurrence_local, due_us = excluded.due_us, alarm_version = excluded.alarm_version \
     WHERE triggers.lease_token IS NULL";

pub(crate) fn trigger_values(t: &Trigger) -> Vec<Value> {
    vec![
        v(t.alarm.as_uuid()),
        v(us(t.occurrence.at)),
        v(kind_to_text(t.kind)),
        v(t.owner.as_uuid()),
        v(local_to_text(t.occurrence.local)),
        v(us(t.due_at)),
        v(t.alarm_version.get() as i64),
    ]
}

pub(crate) async fn upsert_trigger(tx: &Tx, t: &Trigger) -> Result<(), StoreError> {
    insert_rows_then(tx, TRIGGER_COLUMNS, vec![trigger_values(t)], TRIGGER_UPSERT).await
}

pub(crate) async fn apply_plan(tx: &Tx, plan: &TriggerPlan) -> Result<(), StoreError> {
    match plan {
        TriggerPlan::Reschedule {
            alarm,
            version,
            next,
        } => {
            // Locked: a concurrent edit either committed before (and its
            // version is what we read) or waits for this transaction.
            let stored = tx.lock_alarm(alarm.as_uuid()).await?;
            if stored != Some(version.get() as i64) {
                // Computed from an alarm that changed (or went) since: the
                // newer commit's own plan stands.
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
    insert_audit(tx, &change.audit).await?;
    insert_events(tx, &change.events).await?;
    for plan in &change.triggers {
        apply_plan(tx, plan).await?;
    }
    Ok(())
}

/// Commits a change set whose entity change is one statement that must
/// touch a row (an owner-scoped update or delete of a missing or foreign row
/// touches none: `NotFound`), with the shared parts, in one transaction.
async fn commit_one<Op>(
    db: &Db,
    change: &ChangeSet<Op>,
    (sql, values): (&str, Vec<Value>),
) -> Result<(), StoreError> {
    let tx = db.begin().await?;
    if tx.exec(sql, values).await? == 0 {
        return Err(StoreError::NotFound);
    }
    apply_common(&tx, change).await?;
    tx.commit().await
}

/// `WHERE` + cursor + order + limit for id-ordered pages.
fn page_sql(base: &str, after: Option<Uuid>, limit: u32, values: &mut Vec<Value>) -> String {
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
