//! [`ExceptionPeriodStore`] over the in-memory state.

use alarm_domain::ids::{ExceptionPeriodId, UserId};
use alarm_domain::model::ExceptionPeriod;
use alarm_domain::ports::{ChangeSet, ExceptionOp, ExceptionPeriodStore, StoreError};
use async_trait::async_trait;

use super::InMemory;
use super::owned::Owned;

#[async_trait]
impl ExceptionPeriodStore for InMemory {
    async fn get(
        &self,
        owner: UserId,
        id: ExceptionPeriodId,
    ) -> Result<ExceptionPeriod, StoreError> {
        self.lock()
            .exceptions
            .get(&id)
            .filter(|p| p.owner() == owner)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, owner: UserId) -> Result<Vec<ExceptionPeriod>, StoreError> {
        let mut list: Vec<ExceptionPeriod> = self
            .lock()
            .exceptions
            .values()
            .filter(|p| p.owner() == owner)
            .cloned()
            .collect();
        list.sort_by_key(|p| (p.start(), p.id()));
        Ok(list)
    }

    async fn list_many(&self, owners: Vec<UserId>) -> Result<Vec<ExceptionPeriod>, StoreError> {
        let mut list: Vec<ExceptionPeriod> = self
            .lock()
            .exceptions
            .values()
            .filter(|p| owners.contains(&p.owner()))
            .cloned()
            .collect();
        list.sort_by_key(|p| (p.owner(), p.start(), p.id()));
        Ok(list)
    }

    async fn commit(&self, change: ChangeSet<ExceptionOp>) -> Result<(), StoreError> {
        let op = match &change.op {
            ExceptionOp::Create(x, quota) => Owned::Create(x.clone(), *quota),
            ExceptionOp::Update(x) => Owned::Update(x.clone()),
            ExceptionOp::Delete { owner, id } => Owned::Delete(*owner, *id),
        };
        self.lock().commit_owned(|s| &mut s.exceptions, op, change)
    }
}
