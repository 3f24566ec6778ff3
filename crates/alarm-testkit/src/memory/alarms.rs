//! [`AlarmStore`] over the in-memory state: owner-scoped reads and versioned commits.

use alarm_domain::ids::{AlarmId, UserId};
use alarm_domain::model::Alarm;
use alarm_domain::ports::{AlarmOp, AlarmStore, ChangeSet, Page, PageRequest, StoreError};
use async_trait::async_trait;

use super::{InMemory, State, page};

#[async_trait]
impl AlarmStore for InMemory {
    async fn get(&self, owner: UserId, id: AlarmId) -> Result<Alarm, StoreError> {
        self.lock()
            .alarms
            .get(&id)
            .filter(|a| a.owner() == owner)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn get_any(&self, id: AlarmId) -> Result<Alarm, StoreError> {
        self.lock()
            .alarms
            .get(&id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn get_many(&self, ids: Vec<AlarmId>) -> Result<Vec<Alarm>, StoreError> {
        let s = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| s.alarms.get(id).cloned())
            .collect())
    }

    async fn list(
        &self,
        owner: UserId,
        enabled: Option<bool>,
        request: PageRequest<AlarmId>,
    ) -> Result<Page<Alarm, AlarmId>, StoreError> {
        let s = self.lock();
        let items = s
            .alarms
            .iter()
            .filter(|(_, a)| a.owner() == owner && enabled.is_none_or(|e| a.enabled() == e))
            .map(|(k, a)| (*k, a.clone()));
        Ok(page(items, request))
    }

    async fn commit(&self, change: ChangeSet<AlarmOp>) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        let stored_version = |s: &State, owner: UserId, id: AlarmId| {
            s.alarms
                .get(&id)
                .filter(|a| a.owner() == owner)
                .map(Alarm::version)
                .ok_or(StoreError::NotFound)
        };
        if let AlarmOp::Create(alarm, _) | AlarmOp::Update { alarm, .. } = &change.op
            && let Some(sound) = alarm.draft().sound
        {
            let found = s
                .sounds
                .get(&sound)
                .is_some_and(|x| x.owner == alarm.owner());
            alarm_domain::model::sound_present(found)?;
        }
        match &change.op {
            AlarmOp::Create(alarm, quota) => {
                if s.alarms.contains_key(&alarm.id()) {
                    return Err(StoreError::Conflict(format!("alarm {} exists", alarm.id())));
                }
                if quota.limit != u32::MAX {
                    let owner = alarm.owner();
                    let held = s.alarms.values().filter(|a| a.owner() == owner).count();
                    quota.admit(held as u64)?;
                }
            }
            AlarmOp::Update { alarm, .. } => {
                change
                    .op
                    .check_version(stored_version(&s, alarm.owner(), alarm.id())?)?;
            }
            AlarmOp::Delete { owner, id, .. } => {
                change.op.check_version(stored_version(&s, *owner, *id)?)?;
            }
        }
        match change.op.clone() {
            AlarmOp::Create(alarm, _) | AlarmOp::Update { alarm, .. } => {
                s.alarms.insert(alarm.id(), alarm);
            }
            AlarmOp::Delete { id, .. } => {
                s.alarms.remove(&id);
            }
        }
        s.apply_common(change);
        Ok(())
    }
}
