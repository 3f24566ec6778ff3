//! [`RoutineStore`] over the in-memory state: routines and the ones attached to each alarm.

use alarm_domain::ids::{AlarmId, RoutineId, UserId};
use alarm_domain::model::Routine;
use alarm_domain::ports::{ChangeSet, Page, PageRequest, RoutineOp, RoutineStore, StoreError};
use async_trait::async_trait;

use super::owned::Owned;
use super::{InMemory, State, page};

impl State {
    /// The stored routines attached to `alarm`, in order.
    fn attached_to(&self, alarm: AlarmId) -> Vec<Routine> {
        self.routine_links
            .get(&alarm)
            .into_iter()
            .flatten()
            .filter_map(|id| self.routines.get(id).cloned())
            .collect()
    }
}

#[async_trait]
impl RoutineStore for InMemory {
    async fn get(&self, owner: UserId, id: RoutineId) -> Result<Routine, StoreError> {
        self.lock()
            .routines
            .get(&id)
            .filter(|r| r.owner() == owner)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list(
        &self,
        owner: UserId,
        request: PageRequest<RoutineId>,
    ) -> Result<Page<Routine, RoutineId>, StoreError> {
        let s = self.lock();
        Ok(page(
            s.routines
                .iter()
                .filter(|(_, r)| r.owner() == owner)
                .map(|(k, r)| (*k, r.clone())),
            request,
        ))
    }

    async fn commit(&self, change: ChangeSet<RoutineOp>) -> Result<(), StoreError> {
        let op = match &change.op {
            RoutineOp::Create(x, quota) => Owned::Create(x.clone(), *quota),
            RoutineOp::Update(x) => Owned::Update(x.clone()),
            RoutineOp::Delete { owner, id } => Owned::Delete(*owner, *id),
            RoutineOp::Attach {
                owner,
                alarm,
                routines,
            } => {
                let mut s = self.lock();
                if s.alarms.get(alarm).is_none_or(|a| a.owner() != *owner) {
                    return Err(StoreError::NotFound);
                }
                let twice = routines
                    .iter()
                    .enumerate()
                    .any(|(i, r)| routines[..i].contains(r));
                if let Some(id) = routines
                    .iter()
                    .find(|id| twice || s.routines.get(id).is_none_or(|r| r.owner() != *owner))
                {
                    return Err(StoreError::Conflict(format!(
                        "routine {id} is not the owner's"
                    )));
                }
                s.check_common(&change)?;
                s.routine_links.insert(*alarm, routines.clone());
                let owner = *owner;
                s.apply_common(change);
                s.reprepare_owner(owner);
                return Ok(());
            }
        };
        // A new routine is attached to nothing yet.
        if matches!(change.op, RoutineOp::Create(..)) {
            self.lock().commit_owned(|s| &mut s.routines, op, change)
        } else {
            self.lock()
                .commit_owned_reprepare(|s| &mut s.routines, op, change)
        }
    }

    async fn attached(&self, owner: UserId, alarm: AlarmId) -> Result<Vec<Routine>, StoreError> {
        let s = self.lock();
        if s.alarms.get(&alarm).is_none_or(|a| a.owner() != owner) {
            return Err(StoreError::NotFound);
        }
        Ok(s.attached_to(alarm))
    }

    async fn attached_many(
        &self,
        alarms: Vec<AlarmId>,
    ) -> Result<Vec<(AlarmId, Routine)>, StoreError> {
        let s = self.lock();
        Ok(alarms
            .into_iter()
            .filter(|a| s.alarms.contains_key(a))
            .flat_map(|a| s.attached_to(a).into_iter().map(move |r| (a, r)))
            .collect())
    }
}
