//! The store ports on SQL: every commit is one transaction carrying the entity change, its audit record, events and trigger plans.

use alarm_domain::ids::{
    AlarmId, AuditId, EventId, ExceptionPeriodId, HolidayId, RoutineId, UserId, WebhookId,
};
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::{
    Alarm, AlarmDraft, AlarmEvent, AlarmEventKind, AlarmName, AlarmVersion, AuditRecord, Country,
    Description, DisplayName, Email, EscalationPolicy, ExceptionKind, ExceptionPeriod, Holiday,
    HolidayDate, HolidayName, Locale, Role, Routine, RoutineAction, RoutineName, Schedules,
    SnoozePolicy, StateCode, User, WebhookRegistration, WebhookUrl,
};
use alarm_domain::ports::{
    AlarmEventStore, AlarmOp, AlarmStore, AuditLog, ChangeSet, ExceptionOp, ExceptionPeriodStore,
    HolidayOp, HolidayPreferences, HolidayStore, Page, PageRequest, PreferenceOp, RefreshFamily,
    RefreshTokenStore, RoutineOp, RoutineStore, StoreError, TriggerPlan, UserOp, UserStore,
    WebhookOp, WebhookStore,
};
use alarm_domain::trigger::Trigger;
use alarm_domain::tz::TimeZoneName;
use async_trait::async_trait;
use sea_orm::{QueryResult, Value};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::codec::{
    channels_from_bits, channels_to_bits, date_from_text, events_from_bits, events_to_bits,
    kind_to_text, local_to_text, preference_from_columns, preference_to_columns,
    schedules_from_json, schedules_to_json,
};
use crate::db::{Db, Tx, col, corrupt, narrow, num, ts, us};

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

fn id_of<T>(
    row: &QueryResult,
    name: &str,
    make: fn(Uuid) -> Result<T, alarm_domain::ValidationError>,
) -> Result<T, StoreError> {
    make(col::<Uuid>(row, name)?).map_err(|e| corrupt(name, e))
}

// ---- users ------------------------------------------------------------------

const USER_COLUMNS: &str =
    "id, email, display_name, role, time_zone, country, state, password_hash";

impl SqlStores {
    fn user_from(&self, row: &QueryResult) -> Result<(User, SecretString), StoreError> {
        let country: Option<String> = col(row, "country")?;
        let state: Option<String> = col(row, "state")?;
        let locale = match country {
            Some(c) => Some(Locale::new(
                Country::parse(&c).map_err(|e| corrupt("country", e))?,
                state
                    .map(|s| StateCode::parse(&s))
                    .transpose()
                    .map_err(|e| corrupt("state", e))?,
            )),
            None => None,
        };
        let user = User::new(
            id_of(row, "id", UserId::from_uuid)?,
            Email::parse(&col::<String>(row, "email")?).map_err(|e| corrupt("email", e))?,
            DisplayName::parse(&col::<String>(row, "display_name")?)
                .map_err(|e| corrupt("display name", e))?,
            Role::parse(&col::<String>(row, "role")?).map_err(|e| corrupt("role", e))?,
            self.zone(&col::<String>(row, "time_zone")?)?,
            locale,
        );
        Ok((
            user,
            SecretString::from(col::<String>(row, "password_hash")?),
        ))
    }
}

#[async_trait]
impl UserStore for SqlStores {
    async fn get(&self, id: UserId) -> Result<User, StoreError> {
        let row = self
            .db
            .query_one(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"),
                vec![v(id.as_uuid())],
            )
            .await?;
        Ok(self.user_from(&row.ok_or(StoreError::NotFound)?)?.0)
    }

    async fn get_many(&self, ids: Vec<UserId>) -> Result<Vec<User>, StoreError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id IN ({{ids}})");
        self.db
            .query_in(&sql, &ids)
            .await?
            .iter()
            .map(|row| Ok(self.user_from(row)?.0))
            .collect()
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self.credentials(email).await?.map(|(u, _)| u))
    }

    async fn credentials(&self, email: &Email) -> Result<Option<(User, SecretString)>, StoreError> {
        let row = self
            .db
            .query_one(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE email_key = ?"),
                vec![v(email.key())],
            )
            .await?;
        row.map(|r| self.user_from(&r)).transpose()
    }

    async fn commit(&self, change: ChangeSet<UserOp>) -> Result<(), StoreError> {
        let tx = self.db.begin().await?;
        match &change.op {
            UserOp::Register {
                user,
                password_hash,
            } => {
                let locale = user.locale();
                tx.exec(
                    "INSERT INTO users (id, email, email_key, display_name, role, time_zone, country, state, password_hash, created_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    vec![
                        v(user.id().as_uuid()),
                        v(user.email().as_str()),
                        v(user.email().key()),
                        v(user.display_name().as_str()),
                        v(user.role().as_str()),
                        v(user.time_zone().as_str()),
                        v(locale.map(|l| l.country().as_str().to_owned())),
                        v(locale.and_then(|l| l.state()).map(|s| s.as_str().to_owned())),
                        v(password_hash.expose_secret()),
                        v(us(change.audit.at)),
                    ],
                )
                .await?;
            }
            UserOp::Update(user) => {
                let locale = user.locale();
                let n = tx
                    .exec(
                        "UPDATE users SET email = ?, email_key = ?, display_name = ?, role = ?, time_zone = ?, country = ?, state = ? WHERE id = ?",
                        vec![
                            v(user.email().as_str()),
                            v(user.email().key()),
                            v(user.display_name().as_str()),
                            v(user.role().as_str()),
                            v(user.time_zone().as_str()),
                            v(locale.map(|l| l.country().as_str().to_owned())),
                            v(locale.and_then(|l| l.state()).map(|s| s.as_str().to_owned())),
                            v(user.id().as_uuid()),
                        ],
                    )
                    .await?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
            }
        }
        apply_common(&tx, &change).await?;
        tx.commit().await
    }
}

// ---- alarms -----------------------------------------------------------------

const ALARM_COLUMNS: &str = "id, owner_id, name, description, enabled, time_zone, schedules, snooze_minutes, max_snoozes, \
     escalation_max_level, escalation_first_delay_min, escalation_repeat_delay_min, channels, sound_id, version, created_us, updated_us";

fn alarm_values(a: &Alarm) -> Vec<Value> {
    let d = a.draft();
    vec![
        v(a.id().as_uuid()),
        v(a.owner().as_uuid()),
        v(d.name.as_str()),
        v(d.description.as_str()),
        v(d.enabled),
        v(d.time_zone.as_str()),
        v(schedules_to_json(d.schedules.as_slice())),
        v(i16::from(d.snooze.minutes())),
        v(i16::from(d.snooze.max_snoozes())),
        v(i16::from(d.escalation.max_level())),
        v(d.escalation.first_delay_minutes() as i16),
        v(d.escalation.repeat_delay_minutes() as i16),
        v(channels_to_bits(d.channels)),
        v(d.sound.map(|b| b.as_uuid())),
        v(a.version().get() as i64),
        v(us(a.created_at())),
        v(us(a.updated_at())),
    ]
}

impl SqlStores {
    fn alarm_from(&self, row: &QueryResult) -> Result<Alarm, StoreError> {
        let small = |name: &str| -> Result<u32, StoreError> { num::<i16, u32>(row, name) };
        let draft = AlarmDraft {
            name: AlarmName::parse(&col::<String>(row, "name")?).map_err(|e| corrupt("name", e))?,
            description: Description::parse(&col::<String>(row, "description")?)
                .map_err(|e| corrupt("description", e))?,
            enabled: col(row, "enabled")?,
            time_zone: self.zone(&col::<String>(row, "time_zone")?)?,
            schedules: Schedules::new(schedules_from_json(&col::<String>(row, "schedules")?)?)
                .map_err(|e| corrupt("schedules", e))?,
            snooze: SnoozePolicy::new(small("snooze_minutes")?, small("max_snoozes")?)
                .map_err(|e| corrupt("snooze", e))?,
            escalation: EscalationPolicy::new(
                small("escalation_max_level")?,
                small("escalation_first_delay_min")?,
                small("escalation_repeat_delay_min")?,
            )
            .map_err(|e| corrupt("escalation", e))?,
            channels: channels_from_bits(col(row, "channels")?)?,
            sound: col::<Option<Uuid>>(row, "sound_id")?
                .map(alarm_domain::ids::BlobId::from_uuid)
                .transpose()
                .map_err(|e| corrupt("sound", e))?,
        };
        let version = num::<i64, u64>(row, "version")?;
        Ok(Alarm::restore(
            id_of(row, "id", AlarmId::from_uuid)?,
            id_of(row, "owner_id", UserId::from_uuid)?,
            draft,
            AlarmVersion::new(version).map_err(|e| corrupt("version", e))?,
            ts(col(row, "created_us")?)?,
            ts(col(row, "updated_us")?)?,
        ))
    }
}

/// The owner's alarm's version, with the row locked until commit.
async fn stored_version(tx: &Tx, owner: UserId, id: AlarmId) -> Result<AlarmVersion, StoreError> {
    let sql = if tx.backend == sea_orm::DbBackend::Postgres {
        "SELECT version FROM alarms WHERE id = ? AND owner_id = ? FOR UPDATE"
    } else {
        "SELECT version FROM alarms WHERE id = ? AND owner_id = ?"
    };
    let row = tx
        .query_one(sql, vec![v(id.as_uuid()), v(owner.as_uuid())])
        .await?;
    let version: i64 = col(&row.ok_or(StoreError::NotFound)?, "version")?;
    AlarmVersion::new(narrow(version, "version")?).map_err(|e| corrupt("version", e))
}

#[async_trait]
impl AlarmStore for SqlStores {
    async fn get(&self, owner: UserId, id: AlarmId) -> Result<Alarm, StoreError> {
        let row = self
            .db
            .query_one(
                &format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE id = ? AND owner_id = ?"),
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        self.alarm_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn get_any(&self, id: AlarmId) -> Result<Alarm, StoreError> {
        let row = self
            .db
            .query_one(
                &format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE id = ?"),
                vec![v(id.as_uuid())],
            )
            .await?;
        self.alarm_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn get_many(&self, ids: Vec<AlarmId>) -> Result<Vec<Alarm>, StoreError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let sql = format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE id IN ({{ids}})");
        self.db
            .query_in(&sql, &ids)
            .await?
            .iter()
            .map(|row| self.alarm_from(row))
            .collect()
    }

    async fn list(
        &self,
        owner: UserId,
        enabled: Option<bool>,
        page: PageRequest<AlarmId>,
    ) -> Result<Page<Alarm, AlarmId>, StoreError> {
        let mut values = vec![v(owner.as_uuid())];
        let mut base = format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE owner_id = ?");
        if let Some(enabled) = enabled {
            base.push_str(" AND enabled = ?");
            values.push(v(enabled));
        }
        let sql = page_sql(
            &base,
            page.after().map(|a| a.as_uuid()),
            page.limit(),
            &mut values,
        );
        let rows = self.db.query_all(&sql, values).await?;
        let items = rows
            .iter()
            .map(|r| self.alarm_from(r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, page.limit(), Alarm::id))
    }

    async fn commit(&self, change: ChangeSet<AlarmOp>) -> Result<(), StoreError> {
        let tx = self.db.begin().await?;
        match &change.op {
            AlarmOp::Create(alarm) => {
                tx.exec(&format!("INSERT INTO alarms ({ALARM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), alarm_values(alarm)).await?;
            }
            AlarmOp::Update { alarm, expected } => {
                let actual = stored_version(&tx, alarm.owner(), alarm.id()).await?;
                if actual != *expected {
                    return Err(StoreError::StaleVersion {
                        expected: expected.get(),
                        actual: actual.get(),
                    });
                }
                if alarm.version() != expected.next() {
                    return Err(StoreError::Conflict(
                        "an update must carry version expected + 1".to_owned(),
                    ));
                }
                let mut values = alarm_values(alarm);
                let id = values.remove(0);
                let owner = values.remove(0);
                values.push(id);
                values.push(owner);
                values.push(v(expected.get() as i64));
                let n = tx
                    .exec(
                        "UPDATE alarms SET name = ?, description = ?, enabled = ?, time_zone = ?, schedules = ?, snooze_minutes = ?, max_snoozes = ?, \
                         escalation_max_level = ?, escalation_first_delay_min = ?, escalation_repeat_delay_min = ?, channels = ?, sound_id = ?, version = ?, \
                         created_us = ?, updated_us = ? WHERE id = ? AND owner_id = ? AND version = ?",
                        values,
                    )
                    .await?;
                if n == 0 {
                    // The version moved between the check and the write.
                    return Err(StoreError::StaleVersion {
                        expected: expected.get(),
                        actual: expected.get() + 1,
                    });
                }
            }
            AlarmOp::Delete {
                owner,
                id,
                expected,
            } => {
                let actual = stored_version(&tx, *owner, *id).await?;
                if actual != *expected {
                    return Err(StoreError::StaleVersion {
                        expected: expected.get(),
                        actual: actual.get(),
                    });
                }
                tx.exec(
                    "DELETE FROM alarms WHERE id = ? AND owner_id = ? AND version = ?",
                    vec![
                        v(id.as_uuid()),
                        v(owner.as_uuid()),
                        v(expected.get() as i64),
                    ],
                )
                .await?;
            }
        }
        apply_common(&tx, &change).await?;
        tx.commit().await
    }
}

// ---- exception periods ----------------------------------------------------

fn exception_from(row: &QueryResult) -> Result<ExceptionPeriod, StoreError> {
    ExceptionPeriod::new(
        id_of(row, "id", ExceptionPeriodId::from_uuid)?,
        id_of(row, "owner_id", UserId::from_uuid)?,
        &col::<String>(row, "name")?,
        ExceptionKind::parse(&col::<String>(row, "kind")?).map_err(|e| corrupt("kind", e))?,
        date_from_text(&col::<String>(row, "start_date")?)?,
        date_from_text(&col::<String>(row, "end_date")?)?,
    )
    .map_err(|e| corrupt("exception period", e))
}

#[async_trait]
impl ExceptionPeriodStore for SqlStores {
    async fn get(
        &self,
        owner: UserId,
        id: ExceptionPeriodId,
    ) -> Result<ExceptionPeriod, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT * FROM exception_periods WHERE id = ? AND owner_id = ?",
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        exception_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list(&self, owner: UserId) -> Result<Vec<ExceptionPeriod>, StoreError> {
        let rows = self
            .db
            .query_all(
                "SELECT * FROM exception_periods WHERE owner_id = ? ORDER BY start_date, id",
                vec![v(owner.as_uuid())],
            )
            .await?;
        rows.iter().map(exception_from).collect()
    }

    async fn list_many(&self, owners: Vec<UserId>) -> Result<Vec<ExceptionPeriod>, StoreError> {
        let owners: Vec<uuid::Uuid> = owners.iter().map(|o| o.as_uuid()).collect();
        self.db
            .query_in(
                "SELECT * FROM exception_periods WHERE owner_id IN ({ids}) ORDER BY owner_id, start_date, id",
                &owners,
            )
            .await?
            .iter()
            .map(exception_from)
            .collect()
    }

    async fn commit(&self, change: ChangeSet<ExceptionOp>) -> Result<(), StoreError> {
        let values = |p: &ExceptionPeriod| {
            vec![
                v(p.name()),
                v(p.kind().as_str()),
                v(p.start().to_string()),
                v(p.end().to_string()),
                v(p.id().as_uuid()),
                v(p.owner().as_uuid()),
            ]
        };
        let statement = match &change.op {
            ExceptionOp::Create(p) => (
                "INSERT INTO exception_periods (name, kind, start_date, end_date, id, owner_id) VALUES (?, ?, ?, ?, ?, ?)",
                values(p),
            ),
            ExceptionOp::Update(p) => (
                "UPDATE exception_periods SET name = ?, kind = ?, start_date = ?, end_date = ? WHERE id = ? AND owner_id = ?",
                values(p),
            ),
            ExceptionOp::Delete { owner, id } => (
                "DELETE FROM exception_periods WHERE id = ? AND owner_id = ?",
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            ),
        };
        commit_one(&self.db, &change, statement).await
    }
}

// ---- holidays and preferences ---------------------------------------------

fn holiday_from(row: &QueryResult) -> Result<Holiday, StoreError> {
    let date = match col::<Option<String>>(row, "fixed_date")? {
        Some(d) => HolidayDate::Fixed(date_from_text(&d)?),
        None => HolidayDate::recurring(
            narrow(
                col::<Option<i16>>(row, "month")?.ok_or_else(|| corrupt("month", "missing"))?,
                "month",
            )?,
            narrow(
                col::<Option<i16>>(row, "day")?.ok_or_else(|| corrupt("day", "missing"))?,
                "day",
            )?,
        )
        .map_err(|e| corrupt("holiday date", e))?,
    };
    Ok(Holiday::new(
        id_of(row, "id", HolidayId::from_uuid)?,
        HolidayName::parse(&col::<String>(row, "name")?).map_err(|e| corrupt("name", e))?,
        date,
        Country::parse(&col::<String>(row, "country")?).map_err(|e| corrupt("country", e))?,
        col::<Option<String>>(row, "state")?
            .map(|s| StateCode::parse(&s))
            .transpose()
            .map_err(|e| corrupt("state", e))?,
        col(row, "optional")?,
    ))
}

/// One text that is equal exactly when two holidays are "the same holiday".
fn natural_key(h: &Holiday) -> String {
    let date = match h.date() {
        HolidayDate::Fixed(d) => d.to_string(),
        HolidayDate::Recurring { month, day } => format!("--{month:02}-{day:02}"),
    };
    format!(
        "{}|{}|{}|{}",
        h.country(),
        h.state().map_or("", StateCode::as_str),
        date,
        h.name()
    )
}

#[async_trait]
impl HolidayStore for SqlStores {
    async fn get(&self, id: HolidayId) -> Result<Holiday, StoreError> {
        let row = self
            .db
            .query_one("SELECT * FROM holidays WHERE id = ?", vec![v(id.as_uuid())])
            .await?;
        holiday_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list(&self, country: Country) -> Result<Vec<Holiday>, StoreError> {
        let rows = self
            .db
            .query_all(
                "SELECT * FROM holidays WHERE country = ? ORDER BY id",
                vec![v(country.as_str())],
            )
            .await?;
        rows.iter().map(holiday_from).collect()
    }

    async fn commit(&self, change: ChangeSet<HolidayOp>) -> Result<(), StoreError> {
        let tx = self.db.begin().await?;
        match &change.op {
            HolidayOp::Create(h) => {
                let (fixed, month, day) = match h.date() {
                    HolidayDate::Fixed(d) => (Some(d.to_string()), None, None),
                    HolidayDate::Recurring { month, day } => {
                        (None, Some(i16::from(month)), Some(i16::from(day)))
                    }
                };
                tx.exec(
                    "INSERT INTO holidays (id, name, fixed_date, month, day, country, state, optional, natural_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    vec![
                        v(h.id().as_uuid()),
                        v(h.name()),
                        v(fixed),
                        v(month),
                        v(day),
                        v(h.country().as_str()),
                        v(h.state().map(|s| s.as_str().to_owned())),
                        v(h.is_optional()),
                        v(natural_key(h)),
                    ],
                )
                .await?;
            }
            HolidayOp::Delete(id) => {
                // Overrides go with it (ON DELETE CASCADE).
                if tx
                    .exec("DELETE FROM holidays WHERE id = ?", vec![v(id.as_uuid())])
                    .await?
                    == 0
                {
                    return Err(StoreError::NotFound);
                }
            }
        }
        apply_common(&tx, &change).await?;
        tx.commit().await
    }

    async fn preferences(&self, owner: UserId) -> Result<HolidayPreferences, StoreError> {
        let row = self.db.query_one("SELECT default_kind, default_delay_min FROM holiday_preferences WHERE owner_id = ?", vec![v(owner.as_uuid())]).await?;
        let Some(row) = row else {
            return Ok(HolidayPreferences::default());
        };
        let default = preference_from_columns(
            &col::<String>(&row, "default_kind")?,
            col(&row, "default_delay_min")?,
        )?;
        let rows = self.db.query_all("SELECT holiday_id, kind, delay_min FROM holiday_preference_overrides WHERE owner_id = ? ORDER BY holiday_id", vec![v(owner.as_uuid())]).await?;
        let overrides = rows
            .iter()
            .map(|r| {
                Ok((
                    id_of(r, "holiday_id", HolidayId::from_uuid)?,
                    preference_from_columns(&col::<String>(r, "kind")?, col(r, "delay_min")?)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(HolidayPreferences { default, overrides })
    }

    async fn preferences_many(
        &self,
        owners: Vec<UserId>,
    ) -> Result<Vec<(UserId, HolidayPreferences)>, StoreError> {
        let mut prefs: std::collections::HashMap<UserId, HolidayPreferences> = owners
            .iter()
            .map(|o| (*o, HolidayPreferences::default()))
            .collect();
        let ids: Vec<uuid::Uuid> = owners.iter().map(|o| o.as_uuid()).collect();
        let defaults = self
            .db
            .query_in(
                "SELECT owner_id, default_kind, default_delay_min FROM holiday_preferences WHERE owner_id IN ({ids})",
                &ids,
            )
            .await?;
        for row in &defaults {
            let owner = id_of(row, "owner_id", UserId::from_uuid)?;
            let default = preference_from_columns(
                &col::<String>(row, "default_kind")?,
                col(row, "default_delay_min")?,
            )?;
            if let Some(p) = prefs.get_mut(&owner) {
                p.default = default;
            }
        }
        let overrides = self
            .db
            .query_in(
                "SELECT owner_id, holiday_id, kind, delay_min FROM holiday_preference_overrides WHERE owner_id IN ({ids}) ORDER BY owner_id, holiday_id",
                &ids,
            )
            .await?;
        for row in &overrides {
            let owner = id_of(row, "owner_id", UserId::from_uuid)?;
            let item = (
                id_of(row, "holiday_id", HolidayId::from_uuid)?,
                preference_from_columns(&col::<String>(row, "kind")?, col(row, "delay_min")?)?,
            );
            if let Some(p) = prefs.get_mut(&owner) {
                p.overrides.push(item);
            }
        }
        Ok(prefs.into_iter().collect())
    }

    async fn commit_preferences(&self, change: ChangeSet<PreferenceOp>) -> Result<(), StoreError> {
        let tx = self.db.begin().await?;
        let PreferenceOp::Set { owner, preferences } = &change.op;
        let (kind, delay) = preference_to_columns(preferences.default);
        // The upsert comes first: it locks the owner's row, so two saves for
        // one owner run one after the other instead of colliding on keys.
        tx.exec(
            "INSERT INTO holiday_preferences (owner_id, default_kind, default_delay_min) VALUES (?, ?, ?) \
             ON CONFLICT (owner_id) DO UPDATE SET default_kind = excluded.default_kind, default_delay_min = excluded.default_delay_min",
            vec![v(owner.as_uuid()), v(kind), v(delay)],
        )
        .await?;
        tx.exec(
            "DELETE FROM holiday_preference_overrides WHERE owner_id = ?",
            vec![v(owner.as_uuid())],
        )
        .await?;
        for (holiday, pref) in &preferences.overrides {
            if tx
                .query_one(
                    "SELECT id FROM holidays WHERE id = ?",
                    vec![v(holiday.as_uuid())],
                )
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            let (kind, delay) = preference_to_columns(*pref);
            tx.exec(
                "INSERT INTO holiday_preference_overrides (owner_id, holiday_id, kind, delay_min) VALUES (?, ?, ?, ?)",
                vec![v(owner.as_uuid()), v(holiday.as_uuid()), v(kind), v(delay)],
            )
            .await?;
        }
        apply_common(&tx, &change).await?;
        tx.commit().await
    }
}

// ---- routines -------------------------------------------------------------

fn routine_from(row: &QueryResult) -> Result<Routine, StoreError> {
    let actions: Vec<String> =
        serde_json::from_str(&col::<String>(row, "actions")?).map_err(|e| corrupt("actions", e))?;
    let actions = actions
        .iter()
        .map(|a| RoutineAction::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt("action", e))?;
    Routine::new(
        id_of(row, "id", RoutineId::from_uuid)?,
        id_of(row, "owner_id", UserId::from_uuid)?,
        RoutineName::parse(&col::<String>(row, "name")?).map_err(|e| corrupt("name", e))?,
        actions,
        col(row, "active")?,
    )
    .map_err(|e| corrupt("routine", e))
}

#[async_trait]
impl RoutineStore for SqlStores {
    async fn get(&self, owner: UserId, id: RoutineId) -> Result<Routine, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT * FROM routines WHERE id = ? AND owner_id = ?",
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        routine_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list(
        &self,
        owner: UserId,
        page: PageRequest<RoutineId>,
    ) -> Result<Page<Routine, RoutineId>, StoreError> {
        let mut values = vec![v(owner.as_uuid())];
        let sql = page_sql(
            "SELECT * FROM routines WHERE owner_id = ?",
            page.after().map(|r| r.as_uuid()),
            page.limit(),
            &mut values,
        );
        let items = self
            .db
            .query_all(&sql, values)
            .await?
            .iter()
            .map(routine_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, page.limit(), Routine::id))
    }

    async fn commit(&self, change: ChangeSet<RoutineOp>) -> Result<(), StoreError> {
        let values = |r: &Routine| {
            let actions: Vec<&str> = r.actions().iter().map(RoutineAction::as_str).collect();
            vec![
                v(r.name().as_str()),
                v(serde_json::Value::from(actions).to_string()),
                v(r.active()),
                v(r.id().as_uuid()),
                v(r.owner().as_uuid()),
            ]
        };
        let statement = match &change.op {
            RoutineOp::Create(r) => (
                "INSERT INTO routines (name, actions, active, id, owner_id) VALUES (?, ?, ?, ?, ?)",
                values(r),
            ),
            RoutineOp::Update(r) => (
                "UPDATE routines SET name = ?, actions = ?, active = ? WHERE id = ? AND owner_id = ?",
                values(r),
            ),
            RoutineOp::Delete { owner, id } => (
                "DELETE FROM routines WHERE id = ? AND owner_id = ?",
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            ),
        };
        commit_one(&self.db, &change, statement).await
    }
}

// ---- webhooks -------------------------------------------------------------

pub(crate) fn webhook_from(row: &QueryResult) -> Result<WebhookRegistration, StoreError> {
    Ok(WebhookRegistration::new(
        id_of(row, "id", WebhookId::from_uuid)?,
        id_of(row, "owner_id", UserId::from_uuid)?,
        WebhookUrl::parse(&col::<String>(row, "url")?).map_err(|e| corrupt("url", e))?,
        events_from_bits(col(row, "events")?)?,
        SecretString::from(col::<String>(row, "secret")?),
        col(row, "active")?,
        num::<i32, u32>(row, "failure_count")?,
    ))
}

#[async_trait]
impl WebhookStore for SqlStores {
    async fn get(&self, owner: UserId, id: WebhookId) -> Result<WebhookRegistration, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT * FROM webhooks WHERE id = ? AND owner_id = ?",
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        webhook_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list(&self, owner: UserId) -> Result<Vec<WebhookRegistration>, StoreError> {
        let rows = self
            .db
            .query_all(
                "SELECT * FROM webhooks WHERE owner_id = ? ORDER BY id",
                vec![v(owner.as_uuid())],
            )
            .await?;
        rows.iter().map(webhook_from).collect()
    }

    async fn commit(&self, change: ChangeSet<WebhookOp>) -> Result<(), StoreError> {
        let values = |w: &WebhookRegistration| {
            vec![
                v(w.url().as_str()),
                v(events_to_bits(w.events())),
                v(w.secret().expose_secret()),
                v(w.active()),
                v(i32::try_from(w.failure_count()).unwrap_or(i32::MAX)),
                v(w.id().as_uuid()),
                v(w.owner().as_uuid()),
            ]
        };
        let statement = match &change.op {
            WebhookOp::Create(w) => (
                "INSERT INTO webhooks (url, events, secret, active, failure_count, id, owner_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                values(w),
            ),
            WebhookOp::Update(w) => (
                "UPDATE webhooks SET url = ?, events = ?, secret = ?, active = ?, failure_count = ? WHERE id = ? AND owner_id = ?",
                values(w),
            ),
            WebhookOp::Delete { owner, id } => (
                "DELETE FROM webhooks WHERE id = ? AND owner_id = ?",
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            ),
        };
        commit_one(&self.db, &change, statement).await
    }
}

// ---- events and audit -----------------------------------------------------

fn event_from(row: &QueryResult) -> Result<AlarmEvent, StoreError> {
    Ok(AlarmEvent {
        id: id_of(row, "id", EventId::from_uuid)?,
        alarm: id_of(row, "alarm_id", AlarmId::from_uuid)?,
        owner: id_of(row, "owner_id", UserId::from_uuid)?,
        kind: AlarmEventKind::parse(&col::<String>(row, "kind")?)
            .map_err(|e| corrupt("event kind", e))?,
        at: ts(col(row, "at_us")?)?,
        occurrence: col::<Option<i64>>(row, "occurrence_us")?
            .map(ts)
            .transpose()?,
        detail: col(row, "detail")?,
    })
}

#[async_trait]
impl AlarmEventStore for SqlStores {
    async fn list(
        &self,
        owner: UserId,
        alarm: AlarmId,
        page: PageRequest<EventId>,
    ) -> Result<Page<AlarmEvent, EventId>, StoreError> {
        let mut values = vec![v(owner.as_uuid()), v(alarm.as_uuid())];
        let sql = page_sql(
            "SELECT * FROM alarm_events WHERE owner_id = ? AND alarm_id = ?",
            page.after().map(|e| e.as_uuid()),
            page.limit(),
            &mut values,
        );
        let items = self
            .db
            .query_all(&sql, values)
            .await?
            .iter()
            .map(event_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, page.limit(), |e: &AlarmEvent| e.id))
    }
}

fn audit_from(row: &QueryResult) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: id_of(row, "id", AuditId::from_uuid)?,
        actor: col::<Option<Uuid>>(row, "actor_id")?
            .map(UserId::from_uuid)
            .transpose()
            .map_err(|e| corrupt("actor", e))?,
        action: col(row, "action")?,
        entity_type: col(row, "entity_type")?,
        entity_id: col(row, "entity_id")?,
        before: col(row, "before_summary")?,
        after: col(row, "after_summary")?,
        at: ts(col(row, "at_us")?)?,
        correlation_id: col(row, "correlation_id")?,
    })
}

#[async_trait]
impl AuditLog for SqlStores {
    async fn list(
        &self,
        actor: Option<UserId>,
        page: PageRequest<AuditId>,
    ) -> Result<Page<AuditRecord, AuditId>, StoreError> {
        let mut values = Vec::new();
        let base = match actor {
            Some(a) => {
                values.push(v(a.as_uuid()));
                "SELECT * FROM audit_log WHERE actor_id = ?"
            }
            None => "SELECT * FROM audit_log WHERE 1 = 1",
        };
        let sql = page_sql(
            base,
            page.after().map(|a| a.as_uuid()),
            page.limit(),
            &mut values,
        );
        let items = self
            .db
            .query_all(&sql, values)
            .await?
            .iter()
            .map(audit_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, page.limit(), |a: &AuditRecord| a.id))
    }
}

// ---- refresh tokens -------------------------------------------------------

#[async_trait]
impl RefreshTokenStore for SqlStores {
    async fn create(&self, family: RefreshFamily, token_hash: [u8; 32]) -> Result<(), StoreError> {
        let tx = self.db.begin().await?;
        tx.exec(
            "INSERT INTO refresh_families (id, user_id, expires_us, revoked) VALUES (?, ?, ?, ?)",
            vec![
                v(family.id),
                v(family.user.as_uuid()),
                v(us(family.expires_at)),
                v(family.revoked),
            ],
        )
        .await?;
        tx.exec(
            "INSERT INTO refresh_tokens (hash, family_id, spent) VALUES (?, ?, ?)",
            vec![v(token_hash.to_vec()), v(family.id), v(false)],
        )
        .await?;
        tx.commit().await
    }

    async fn rotate(
        &self,
        old_hash: [u8; 32],
        new_hash: [u8; 32],
        now: alarm_domain::jiff::Timestamp,
    ) -> Result<RefreshFamily, StoreError> {
        let tx = self.db.begin().await?;
        let row = tx
            .query_one(
                &format!(
                    "SELECT t.spent, f.id, f.user_id, f.expires_us, f.revoked FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.hash = ?{}",
                    // Lock the token and its family: a concurrent rotation
                    // or logout waits, then sees this one's result.
                    if tx.backend == sea_orm::DbBackend::Postgres { " FOR UPDATE" } else { "" }
                ),
                vec![v(old_hash.to_vec())],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let family = RefreshFamily {
            id: col(&row, "id")?,
            user: id_of(&row, "user_id", UserId::from_uuid)?,
            expires_at: ts(col(&row, "expires_us")?)?,
            revoked: col(&row, "revoked")?,
        };
        if col::<bool>(&row, "spent")? {
            // Reuse of a spent token means it leaked: the whole family dies,
            // and that must stick even though the call fails.
            tx.exec(
                "UPDATE refresh_families SET revoked = ? WHERE id = ?",
                vec![v(true), v(family.id)],
            )
            .await?;
            tx.commit().await?;
            return Err(StoreError::LeaseLost);
        }
        if family.revoked || now >= family.expires_at {
            return Err(StoreError::LeaseLost);
        }
        // Spend only if still unspent: two concurrent rotations, one winner.
        let n = tx
            .exec(
                "UPDATE refresh_tokens SET spent = ? WHERE hash = ? AND spent = ?",
                vec![v(true), v(old_hash.to_vec()), v(false)],
            )
            .await?;
        if n == 0 {
            // Spent by a concurrent rotation: that is reuse too.
            tx.exec(
                "UPDATE refresh_families SET revoked = ? WHERE id = ?",
                vec![v(true), v(family.id)],
            )
            .await?;
            tx.commit().await?;
            return Err(StoreError::LeaseLost);
        }
        tx.exec(
            "INSERT INTO refresh_tokens (hash, family_id, spent) VALUES (?, ?, ?)",
            vec![v(new_hash.to_vec()), v(family.id), v(false)],
        )
        .await?;
        tx.commit().await?;
        Ok(family)
    }

    async fn revoke(&self, token_hash: [u8; 32]) -> Result<(), StoreError> {
        let tx = self.db.begin().await?;
        let row = tx
            .query_one(
                "SELECT family_id FROM refresh_tokens WHERE hash = ?",
                vec![v(token_hash.to_vec())],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let family: Uuid = col(&row, "family_id")?;
        tx.exec(
            "UPDATE refresh_families SET revoked = ? WHERE id = ?",
            vec![v(true), v(family)],
        )
        .await?;
        tx.commit().await
    }

    async fn family(&self, id: Uuid) -> Result<RefreshFamily, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT id, user_id, expires_us, revoked FROM refresh_families WHERE id = ?",
                vec![v(id)],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(RefreshFamily {
            id: col(&row, "id")?,
            user: id_of(&row, "user_id", UserId::from_uuid)?,
            expires_at: ts(col(&row, "expires_us")?)?,
            revoked: col(&row, "revoked")?,
        })
    }

    async fn revoke_family(&self, id: Uuid) -> Result<(), StoreError> {
        let tx = self.db.begin().await?;
        let n = tx
            .exec(
                "UPDATE refresh_families SET revoked = ? WHERE id = ?",
                vec![v(true), v(id)],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }
}
