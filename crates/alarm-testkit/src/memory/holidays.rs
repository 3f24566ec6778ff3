//! [`HolidayStore`] over the in-memory state: holidays per country and each owner's preferences.

use alarm_domain::ids::{HolidayId, UserId};
use alarm_domain::model::{Country, Holiday, brazil};
use alarm_domain::ports::{
    ChangeSet, HolidayOp, HolidayPreferences, HolidayStore, PreferenceOp, ReplanJob, StoreError,
    TriggerPlan,
};
use async_trait::async_trait;

use super::InMemory;

#[async_trait]
impl HolidayStore for InMemory {
    async fn get(&self, id: HolidayId) -> Result<Holiday, StoreError> {
        self.lock()
            .holidays
            .get(&id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, country: Country) -> Result<Vec<Holiday>, StoreError> {
        Ok(self
            .lock()
            .holidays
            .values()
            .filter(|h| h.country() == country)
            .cloned()
            .collect())
    }

    async fn commit(
        &self,
        change: ChangeSet<HolidayOp>,
        replan: Vec<Country>,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        match &change.op {
            HolidayOp::Create(h) | HolidayOp::Update(h) => {
                let creating = matches!(change.op, HolidayOp::Create(_));
                if creating == s.holidays.contains_key(&h.id()) {
                    return Err(if creating {
                        StoreError::Conflict(format!("holiday {} exists", h.id()))
                    } else {
                        StoreError::NotFound
                    });
                }
                let same = |o: &Holiday| {
                    o.id() != h.id()
                        && o.name() == h.name()
                        && o.date() == h.date()
                        && o.country() == h.country()
                        && o.state() == h.state()
                };
                if s.holidays.values().any(same) {
                    return Err(StoreError::Conflict("the same holiday exists".to_owned()));
                }
            }
            HolidayOp::Delete(id) if !s.holidays.contains_key(id) => {
                return Err(StoreError::NotFound);
            }
            HolidayOp::Delete(_) => {}
        }
        match change.op.clone() {
            HolidayOp::Create(h) | HolidayOp::Update(h) => {
                s.holidays.insert(h.id(), h);
            }
            HolidayOp::Delete(id) => {
                s.holidays.remove(&id);
                // Overrides of a deleted holiday mean nothing any more.
                for prefs in s.preferences.values_mut() {
                    prefs.overrides.retain(|(h, _)| *h != id);
                }
            }
        }
        let requested_at = change.audit.at;
        for country in replan {
            // A finished job stays (step -1), so the generation keeps
            // counting.
            let generation = s.replans.get(&country).map_or(1, |j| j.generation + 1);
            s.replans.insert(
                country,
                ReplanJob {
                    country,
                    generation,
                    step: 0,
                    after: None,
                    requested_at,
                },
            );
        }
        s.apply_common(change);
        Ok(())
    }

    async fn replan_job(&self) -> Result<Option<ReplanJob>, StoreError> {
        Ok(self
            .lock()
            .replans
            .values()
            .filter(|j| j.step >= 0)
            .min_by_key(|j| (j.requested_at, j.country))
            .cloned())
    }

    async fn replan_users(&self, job: &ReplanJob, limit: usize) -> Result<Vec<UserId>, StoreError> {
        Ok(self
            .lock()
            .users
            .values()
            .filter(|(u, _)| u.locale().is_some_and(|l| l.country() == job.country))
            .map(|(u, _)| u.id())
            .filter(|id| job.after.is_none_or(|a| *id > a))
            .take(limit)
            .collect())
    }

    async fn replan_advance(
        &self,
        job: &ReplanJob,
        next: Option<UserId>,
        plans: Vec<TriggerPlan>,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let current = s
            .replans
            .get(&job.country)
            .is_some_and(|j| (j.generation, j.step) == (job.generation, job.step));
        if !current {
            return Ok(false);
        }
        let (step, after) = match next {
            None => (-1, None),
            Some(after) => (job.step + 1, Some(after)),
        };
        s.replans.insert(
            job.country,
            ReplanJob {
                step,
                after,
                ..job.clone()
            },
        );
        for plan in plans {
            s.replan(plan);
        }
        Ok(true)
    }

    async fn preferences(&self, owner: UserId) -> Result<HolidayPreferences, StoreError> {
        Ok(self
            .lock()
            .preferences
            .get(&owner)
            .cloned()
            .unwrap_or_default())
    }

    async fn preferences_many(
        &self,
        owners: Vec<UserId>,
    ) -> Result<Vec<(UserId, HolidayPreferences)>, StoreError> {
        let s = self.lock();
        Ok(owners
            .into_iter()
            .map(|o| (o, s.preferences.get(&o).cloned().unwrap_or_default()))
            .collect())
    }

    async fn commit_preferences(&self, change: ChangeSet<PreferenceOp>) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        let PreferenceOp::Set { owner, preferences } = change.op.clone();
        if preferences
            .overrides
            .iter()
            .any(|(id, _)| !s.holidays.contains_key(id) && !brazil::is_builtin(*id))
        {
            return Err(StoreError::NotFound);
        }
        s.preferences.insert(owner, preferences);
        s.apply_common(change);
        Ok(())
    }
}
