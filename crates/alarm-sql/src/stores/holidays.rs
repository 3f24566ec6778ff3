//! The holiday store on SQL: holidays, their natural key, and each owner's holiday preferences.

use alarm_domain::ids::{HolidayId, UserId};
use alarm_domain::model::{Country, Holiday, HolidayDate, HolidayName, StateCode, brazil};
use alarm_domain::ports::{
    ChangeSet, HolidayOp, HolidayPreferences, HolidayStore, PreferenceOp, ReplanJob, StoreError,
    TriggerPlan,
};
use async_trait::async_trait;
use sea_orm::QueryResult;

use super::{SqlStores, apply_common, id_of, replan, v};
use crate::codec::{date_from_text, preference_from_columns, preference_to_columns};
use crate::db::{col, corrupt, narrow, ts, us};
use crate::row::Row;

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

/// Everything of a holiday but its id.
fn holiday_fields(h: &Holiday) -> Row {
    let (fixed, month, day) = match h.date() {
        HolidayDate::Fixed(d) => (Some(d.to_string()), None, None),
        HolidayDate::Recurring { month, day } => {
            (None, Some(i16::from(month)), Some(i16::from(day)))
        }
    };
    Row::new()
        .set("name", h.name())
        .set("fixed_date", fixed)
        .set("month", month)
        .set("day", day)
        .set("country", h.country().as_str())
        .set("state", h.state().map(|s| s.as_str().to_owned()))
        .set("optional", h.is_optional())
        .set("natural_key", natural_key(h))
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

    async fn commit(
        &self,
        change: ChangeSet<HolidayOp>,
        replan: Vec<Country>,
    ) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                match &change.op {
                    HolidayOp::Create(h) => {
                        let row = Row::new()
                            .set("id", h.id().as_uuid())
                            .extend(holiday_fields(h));
                        tx.insert("holidays", vec![row], "").await?;
                    }
                    HolidayOp::Update(h) => {
                        let n = tx
                            .update(
                                "holidays",
                                holiday_fields(h),
                                "id = ?",
                                vec![v(h.id().as_uuid())],
                            )
                            .await?;
                        if n == 0 {
                            return Err(StoreError::NotFound);
                        }
                    }
                    HolidayOp::Delete(id) => {
                        // Overrides go with it (no foreign key since m0005: an
                        // override may name a built-in holiday, which has no row).
                        tx.exec(
                            "DELETE FROM holiday_preference_overrides WHERE holiday_id = ?",
                            vec![v(id.as_uuid())],
                        )
                        .await?;
                        if tx
                            .exec("DELETE FROM holidays WHERE id = ?", vec![v(id.as_uuid())])
                            .await?
                            == 0
                        {
                            return Err(StoreError::NotFound);
                        }
                    }
                }
                for country in replan {
                    // A finished job keeps its row (step -1), so the generation
                    // keeps counting and a batch read from an older job can never
                    // match a newer one.
                    let row = Row::new()
                        .set("country", country.as_str())
                        .set("generation", 1_i64)
                        .set("step", 0_i64)
                        .set("after_user", Option::<uuid::Uuid>::None)
                        .set("requested_us", us(change.audit.at));
                    tx.insert(
                "replan_jobs",
                vec![row],
                "ON CONFLICT (country) DO UPDATE SET generation = replan_jobs.generation + 1, \
                 step = 0, after_user = NULL, requested_us = excluded.requested_us",
            )
            .await?;
                }
                apply_common(tx, &change).await?;
                Ok(())
            })
            .await
    }

    async fn replan_job(&self) -> Result<Option<ReplanJob>, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT * FROM replan_jobs WHERE step >= 0 ORDER BY requested_us, country LIMIT 1",
                vec![],
            )
            .await?;
        row.map(|r| {
            Ok(ReplanJob {
                country: Country::parse(&col::<String>(&r, "country")?)
                    .map_err(|e| corrupt("country", e))?,
                generation: col(&r, "generation")?,
                step: col(&r, "step")?,
                after: col::<Option<uuid::Uuid>>(&r, "after_user")?
                    .map(|u| UserId::from_uuid(u).map_err(|e| corrupt("after_user", e)))
                    .transpose()?,
                requested_at: ts(col(&r, "requested_us")?)?,
            })
        })
        .transpose()
    }

    async fn replan_users(&self, job: &ReplanJob, limit: usize) -> Result<Vec<UserId>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match job.after {
            None => {
                self.db
                    .query_all(
                        "SELECT id FROM users WHERE country = ? ORDER BY id LIMIT ?",
                        vec![v(job.country.as_str()), v(limit)],
                    )
                    .await?
            }
            Some(after) => {
                self.db
                    .query_all(
                        "SELECT id FROM users WHERE country = ? AND id > ? ORDER BY id LIMIT ?",
                        vec![v(job.country.as_str()), v(after.as_uuid()), v(limit)],
                    )
                    .await?
            }
        };
        rows.iter()
            .map(|r| id_of(r, "id", UserId::from_uuid))
            .collect()
    }

    async fn replan_advance(
        &self,
        job: &ReplanJob,
        next: Option<UserId>,
        plans: Vec<TriggerPlan>,
    ) -> Result<bool, StoreError> {
        self.db
            .write(async |tx| {
                let key = vec![v(job.country.as_str()), v(job.generation), v(job.step)];
                // The job row is written first: on PostgreSQL that locks it, so a
                // second engine with the same batch waits here and then finds the
                // step moved (and a holiday write restarting it waits likewise).
                let moved = match next {
                    None => {
                        tx.exec(
                            "UPDATE replan_jobs SET step = -1, after_user = NULL \
                     WHERE country = ? AND generation = ? AND step = ?",
                            key,
                        )
                        .await?
                    }
                    Some(after) => {
                        let mut values = vec![v(after.as_uuid())];
                        values.extend(key);
                        tx.exec(
                            "UPDATE replan_jobs SET after_user = ?, step = step + 1 \
                     WHERE country = ? AND generation = ? AND step = ?",
                            values,
                        )
                        .await?
                    }
                };
                if moved == 0 {
                    return Ok(false);
                }
                for plan in &plans {
                    replan(tx, plan).await?;
                }
                Ok(true)
            })
            .await
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
        self.db.write(async |tx| {
        let PreferenceOp::Set { owner, preferences } = &change.op;
        let (kind, delay) = preference_to_columns(preferences.default);
        // The upsert comes first: it locks the owner's row, so two saves for
        // one owner run one after the other instead of colliding on keys.
        let row = Row::new()
            .set("owner_id", owner.as_uuid())
            .set("default_kind", kind)
            .set("default_delay_min", delay);
        tx.insert(
            "holiday_preferences",
            vec![row],
            "ON CONFLICT (owner_id) DO UPDATE SET default_kind = excluded.default_kind, default_delay_min = excluded.default_delay_min",
        )
        .await?;
        tx.exec(
            "DELETE FROM holiday_preference_overrides WHERE owner_id = ?",
            vec![v(owner.as_uuid())],
        )
        .await?;
        // No foreign key holds a custom holiday in place (m0005): on
        // PostgreSQL the row is share-locked, so a concurrent delete waits
        // and then removes these overrides with it.
        let exists = if tx.backend == sea_orm::DbBackend::Postgres {
            "SELECT id FROM holidays WHERE id = ? FOR KEY SHARE"
        } else {
            "SELECT id FROM holidays WHERE id = ?"
        };
        for (holiday, pref) in &preferences.overrides {
            if !brazil::is_builtin(*holiday)
                && tx
                    .query_one(exists, vec![v(holiday.as_uuid())])
                    .await?
                    .is_none()
            {
                return Err(StoreError::NotFound);
            }
            let (kind, delay) = preference_to_columns(*pref);
            let row = Row::new()
                .set("owner_id", owner.as_uuid())
                .set("holiday_id", holiday.as_uuid())
                .set("kind", kind)
                .set("delay_min", delay);
            tx.insert("holiday_preference_overrides", vec![row], "")
                .await?;
        }
        apply_common(tx, &change).await?;
        Ok(())
        }).await
    }
}
