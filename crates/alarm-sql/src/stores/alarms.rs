//! The alarm store on SQL: alarms with their optimistic version, locked while a change checks it.

use alarm_domain::error::without_bidi;
use alarm_domain::ids::{AlarmId, UserId};
use alarm_domain::model::{
    Alarm, AlarmDraft, AlarmName, AlarmVersion, Description, EscalationPolicy, Schedules,
    SnoozePolicy,
};
use alarm_domain::ports::{AlarmOp, AlarmStore, ChangeSet, Page, PageRequest, StoreError};
use async_trait::async_trait;
use sea_orm::QueryResult;
use uuid::Uuid;

use super::{SqlStores, apply_common, finish_page, id_of, page_sql, v};
use crate::codec::{channels_from_bits, channels_to_bits, schedules_from_json, schedules_to_json};
use crate::db::{Tx, col, corrupt, narrow, num, ts, us};
use crate::row::Row;

const ALARM_COLUMNS: &str = "id, owner_id, name, description, enabled, time_zone, schedules, snooze_minutes, max_snoozes, \
     escalation_max_level, escalation_first_delay_min, escalation_repeat_delay_min, channels, sound_id, version, created_us, updated_us";

/// Everything of an alarm but its identity (id, owner): what an update sets.
fn alarm_fields(a: &Alarm) -> Row {
    let d = a.draft();
    Row::new()
        .set("name", d.name.as_str())
        .set("description", d.description.as_str())
        .set("enabled", d.enabled)
        .set("time_zone", d.time_zone.as_str())
        .set("schedules", schedules_to_json(d.schedules.as_slice()))
        .set("snooze_minutes", i16::from(d.snooze.minutes()))
        .set("max_snoozes", i16::from(d.snooze.max_snoozes()))
        .set("escalation_max_level", i16::from(d.escalation.max_level()))
        .set(
            "escalation_first_delay_min",
            d.escalation.first_delay_minutes() as i16,
        )
        .set(
            "escalation_repeat_delay_min",
            d.escalation.repeat_delay_minutes() as i16,
        )
        .set("channels", channels_to_bits(d.channels))
        .set("sound_id", d.sound.map(|b| b.as_uuid()))
        .set("version", a.version().get() as i64)
        .set("created_us", us(a.created_at()))
        .set("updated_us", us(a.updated_at()))
}

impl SqlStores {
    /// Every stored alarm of every owner after `after`, in id order, at
    /// most `limit` (the start-up report of alarms over today's bounds).
    pub(crate) async fn scan_alarms(
        &self,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<Alarm>, StoreError> {
        let mut values = Vec::new();
        let sql = super::page_sql(
            &format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE 1 = 1"),
            after,
            limit.saturating_sub(1),
            &mut values,
        );
        let rows = self.db.query_all(&sql, values).await?;
        rows.iter().map(|r| self.alarm_from(r)).collect()
    }

    fn alarm_from(&self, row: &QueryResult) -> Result<Alarm, StoreError> {
        let small = |name: &str| -> Result<u32, StoreError> { num::<i16, u32>(row, name) };
        let draft = AlarmDraft {
            name: AlarmName::parse(&without_bidi(&col::<String>(row, "name")?))
                .map_err(|e| corrupt("name", e))?,
            description: Description::parse(&without_bidi(&col::<String>(row, "description")?))
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
        self.db
            .write(async |tx| {
                if let AlarmOp::Create(alarm, _) | AlarmOp::Update { alarm, .. } = &change.op
                    && let Some(sound) = alarm.draft().sound
                {
                    // A share lock: a delete of the sound waits for this
                    // commit (and then counts this alarm), or wins first
                    // and this save finds it gone.
                    let found =
                        super::sounds::sound_in(tx, alarm.owner(), sound, " FOR SHARE", false)
                            .await?
                            .is_some();
                    alarm_domain::model::sound_present(found)?;
                }
                match &change.op {
                    AlarmOp::Create(alarm, quota) => {
                        tx.admit("alarms", alarm.owner().as_uuid(), *quota).await?;
                        let row = Row::new()
                            .set("id", alarm.id().as_uuid())
                            .set("owner_id", alarm.owner().as_uuid())
                            .extend(alarm_fields(alarm));
                        tx.insert("alarms", vec![row], "").await?;
                    }
                    AlarmOp::Update { alarm, expected } => {
                        change
                            .op
                            .check_version(stored_version(tx, alarm.owner(), alarm.id()).await?)?;
                        let n = tx
                            .update(
                                "alarms",
                                alarm_fields(alarm),
                                "id = ? AND owner_id = ? AND version = ?",
                                vec![
                                    v(alarm.id().as_uuid()),
                                    v(alarm.owner().as_uuid()),
                                    v(expected.get() as i64),
                                ],
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
                        change
                            .op
                            .check_version(stored_version(tx, *owner, *id).await?)?;
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
                if matches!(change.op, AlarmOp::Create(..)) {
                    super::apply_common_new(tx, &change).await?;
                } else {
                    apply_common(tx, &change).await?;
                }
                Ok(())
            })
            .await
    }
}
