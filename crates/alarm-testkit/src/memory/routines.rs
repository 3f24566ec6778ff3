//! [`RoutineStore`] over the in-memory state.

use alarm_domain::ids::{RoutineId, UserId};
use alarm_domain::model::Routine;
use alarm_domain::ports::{ChangeSet, Page, PageRequest, RoutineOp, RoutineStore, StoreError};
use async_trait::async_trait;

use super::owned::Owned;
use super::{InMemory, page};

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
            RoutineOp::Create(x) => Owned::Create(x.clone()),
            RoutineOp::Update(x) => Owned::Update(x.clone()),
            RoutineOp::Delete { owner, id } => Owned::Delete(*owner, *id),
        };
        self.lock().commit_owned(|s| &mut s.routines, op, change)
    }
}
