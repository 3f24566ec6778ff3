//! The owner-scoped stores' shared commit (exception periods, routines, webhooks): create, update or delete one entity of its owner with the change set's shared parts.

use std::collections::BTreeMap;

use alarm_domain::ids::{ExceptionPeriodId, RoutineId, UserId, WebhookId};
use alarm_domain::limits::Quota;
use alarm_domain::model::{ExceptionPeriod, Routine, WebhookRegistration};
use alarm_domain::ports::{ChangeSet, StoreError};

use super::State;

/// An owner-scoped entity (exception period, routine, webhook).
pub(super) trait OwnedEntity: Clone {
    type Id: Ord + Copy + std::fmt::Display;
    fn key(&self) -> Self::Id;
    fn owned_by(&self) -> UserId;
}

macro_rules! owned_entity {
    ($t:ty, $id:ty) => {
        impl OwnedEntity for $t {
            type Id = $id;
            fn key(&self) -> $id {
                self.id()
            }
            fn owned_by(&self) -> UserId {
                self.owner()
            }
        }
    };
}
owned_entity!(ExceptionPeriod, ExceptionPeriodId);
owned_entity!(Routine, RoutineId);
owned_entity!(WebhookRegistration, WebhookId);

/// The three operations every owner-scoped store has.
pub(super) enum Owned<T: OwnedEntity> {
    Create(T, Quota),
    Update(T),
    Delete(UserId, T::Id),
}

impl State {
    /// Create/update/delete of an owner-scoped entity with the change set's
    /// shared parts: every check first, then every write.
    /// [`State::commit_owned`], then the owner's prepared rings are
    /// prepared again: the entity is one they carry (a routine they
    /// start, a webhook that gets their rows).
    pub(super) fn commit_owned_reprepare<T: OwnedEntity, Op>(
        &mut self,
        map: fn(&mut State) -> &mut BTreeMap<T::Id, T>,
        op: Owned<T>,
        change: ChangeSet<Op>,
    ) -> Result<(), StoreError> {
        let owner = match &op {
            Owned::Create(e, _) | Owned::Update(e) => e.owned_by(),
            Owned::Delete(owner, _) => *owner,
        };
        self.commit_owned(map, op, change)?;
        self.reprepare_owner(owner);
        Ok(())
    }

    pub(super) fn commit_owned<T: OwnedEntity, Op>(
        &mut self,
        map: fn(&mut State) -> &mut BTreeMap<T::Id, T>,
        op: Owned<T>,
        change: ChangeSet<Op>,
    ) -> Result<(), StoreError> {
        self.check_common(&change)?;
        let entities = map(self);
        let owned = |m: &BTreeMap<T::Id, T>, owner: UserId, id: T::Id| {
            m.get(&id).is_some_and(|e| e.owned_by() == owner)
        };
        match &op {
            Owned::Create(e, _) if entities.contains_key(&e.key()) => {
                return Err(StoreError::Conflict(format!("{} exists", e.key())));
            }
            Owned::Create(e, quota) if quota.limit != u32::MAX => {
                let owner = e.owned_by();
                let held = entities.values().filter(|x| x.owned_by() == owner).count();
                quota.admit(held as u64)?;
            }
            Owned::Update(e) if !owned(entities, e.owned_by(), e.key()) => {
                return Err(StoreError::NotFound);
            }
            Owned::Delete(owner, id) if !owned(entities, *owner, *id) => {
                return Err(StoreError::NotFound);
            }
            _ => {}
        }
        match op {
            Owned::Create(e, _) | Owned::Update(e) => {
                entities.insert(e.key(), e);
            }
            Owned::Delete(_, id) => {
                entities.remove(&id);
            }
        }
        self.apply_common(change);
        Ok(())
    }
}
