//! Routine use cases: get, list, create, update, delete, and attaching routines to an alarm; every write is one change set with its audit record.

use super::{Actor, Basics, Ports, ServiceError};
use crate::error::{ValidationError, codes};
use crate::ids::{AlarmId, RoutineId};
use crate::model::{Routine, RoutineAction, RoutineName};
use crate::ports::{ChangeSet, Page, PageRequest, RoutineOp};

super::service_ports! {
    /// The ports [`RoutineService`] takes.
    RoutinePorts {
        /// Routines.
        routines: dyn RoutineStore = routines,
        /// The alarms routines are attached to (their owner is checked first).
        alarms: dyn AlarmStore = alarms,
        /// The clock.
        clock: dyn Clock = clock,
        /// Ids.
        ids: dyn IdSource = ids,
        /// Told when the owner's prepared rings are put back.
        wake: dyn TriggerWake = wake,
    }
}

use crate::ports::{AlarmStore, Clock, IdSource, RoutineStore, TriggerWake};

/// The most routines one user may keep whatever the operator sets (the
/// list is one page).
pub const MAX_ROUTINES_PER_USER: usize = 100;

/// The most routines attached to one alarm.
pub const MAX_ROUTINES_PER_ALARM: usize = 10;

/// Routine use cases.
#[derive(Clone)]
pub struct RoutineService {
    ports: RoutinePorts,
    quota: crate::limits::Quota,
}

fn routine_summary(r: &Routine) -> String {
    format!(
        "name={:?} actions={} active={}",
        r.name().as_str(),
        r.actions().len(),
        r.active()
    )
}

impl RoutineService {
    /// A service over `ports`.
    pub fn new(ports: Ports) -> Self {
        Self {
            quota: ports.limits.routines(),
            ports: ports.into(),
        }
    }

    /// # Errors
    /// [`ServiceError::NotFound`] when missing or another owner's.
    pub async fn get(&self, actor: &Actor, id: RoutineId) -> Result<Routine, ServiceError> {
        Ok(self.ports.routines.get(actor.user, id).await?)
    }

    /// # Errors
    /// Store failures.
    pub async fn list(
        &self,
        actor: &Actor,
        page: PageRequest<RoutineId>,
    ) -> Result<Page<Routine, RoutineId>, ServiceError> {
        Ok(self.ports.routines.list(actor.user, page).await?)
    }

    /// Every routine of the actor, by id (at most [`MAX_ROUTINES_PER_USER`],
    /// give or take a concurrent creation).
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_all(&self, actor: &Actor) -> Result<Vec<Routine>, ServiceError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .ports
                .routines
                .list(actor.user, PageRequest::new(after, 100)?)
                .await?;
            out.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// # Errors
    /// [`ServiceError::Invalid`] for an empty or duplicated action list;
    /// [`ServiceError::OverQuota`] (`routines_per_user`), judged by the
    /// store under the owner's lock.
    pub async fn create(
        &self,
        actor: &Actor,
        name: RoutineName,
        actions: Vec<RoutineAction>,
        active: bool,
    ) -> Result<Routine, ServiceError> {
        let now = self.ports.clock.now();
        let id = self.ports.new_id(RoutineId::from_uuid, RoutineId::generate);
        let routine = Routine::new(id, actor.user, name, actions, active)?;
        let audit = self.ports.audit(
            actor,
            "routine.create",
            id.as_uuid(),
            None,
            Some(routine_summary(&routine)),
            now,
        );
        self.ports
            .routines
            .commit(ChangeSet::audited(
                RoutineOp::Create(routine.clone(), self.quota),
                audit,
            ))
            .await?;
        Ok(routine)
    }

    /// # Errors
    /// [`ServiceError::NotFound`]; [`ServiceError::Invalid`].
    pub async fn update(
        &self,
        actor: &Actor,
        id: RoutineId,
        name: RoutineName,
        actions: Vec<RoutineAction>,
        active: bool,
    ) -> Result<Routine, ServiceError> {
        let now = self.ports.clock.now();
        let before = self.ports.routines.get(actor.user, id).await?;
        let routine = Routine::new(id, actor.user, name, actions, active)?;
        let audit = self.ports.audit(
            actor,
            "routine.update",
            id.as_uuid(),
            Some(routine_summary(&before)),
            Some(routine_summary(&routine)),
            now,
        );
        self.ports
            .routines
            .commit(ChangeSet::audited(
                RoutineOp::Update(routine.clone()),
                audit,
            ))
            .await?;
        // Prepared rings of the owner's were put back to be prepared
        // again with this change: an engine in this process does it now.
        self.ports.wake.due(now);
        Ok(routine)
    }

    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn delete(&self, actor: &Actor, id: RoutineId) -> Result<(), ServiceError> {
        let now = self.ports.clock.now();
        let before = self.ports.routines.get(actor.user, id).await?;
        let audit = self.ports.audit(
            actor,
            "routine.delete",
            id.as_uuid(),
            Some(routine_summary(&before)),
            None,
            now,
        );
        self.ports
            .routines
            .commit(ChangeSet::audited(
                RoutineOp::Delete {
                    owner: actor.user,
                    id,
                },
                audit,
            ))
            .await?;
        // Prepared rings of the owner's were put back to be prepared
        // again with this change: an engine in this process does it now.
        self.ports.wake.due(now);
        Ok(())
    }

    /// The routines attached to the actor's alarm, in the order they start.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] for a missing or another owner's alarm.
    pub async fn attached(
        &self,
        actor: &Actor,
        alarm: AlarmId,
    ) -> Result<Vec<Routine>, ServiceError> {
        Ok(self.ports.routines.attached(actor.user, alarm).await?)
    }

    /// Replaces the routines attached to the actor's alarm (in the order
    /// they start when it rings; empty detaches them all) and answers them.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] for a missing or another owner's alarm
    /// (judged first); [`ServiceError::Invalid`]: `routine_ids` /
    /// `bad-count` past [`MAX_ROUTINES_PER_ALARM`], `routine_ids[i]` /
    /// `duplicate`, or `routine_ids[i]` / `unknown-value` for an id that is
    /// not one of the actor's routines; [`ServiceError::Conflict`] when a
    /// routine is deleted while this commits.
    pub async fn attach(
        &self,
        actor: &Actor,
        alarm: AlarmId,
        routine_ids: Vec<RoutineId>,
    ) -> Result<Vec<Routine>, ServiceError> {
        let now = self.ports.clock.now();
        self.ports.alarms.get(actor.user, alarm).await?;
        if routine_ids.len() > MAX_ROUTINES_PER_ALARM {
            return Err(ValidationError::new(
                "routine_ids",
                codes::BAD_COUNT,
                format!(
                    "at most {MAX_ROUTINES_PER_ALARM} routines per alarm, got {}",
                    routine_ids.len()
                ),
            )
            .into());
        }
        let mut routines = Vec::with_capacity(routine_ids.len());
        for (i, id) in routine_ids.iter().enumerate() {
            let field = format!("routine_ids[{i}]");
            if routine_ids[..i].contains(id) {
                return Err(ValidationError::new(field, codes::DUPLICATE, "listed twice").into());
            }
            match self.ports.routines.get(actor.user, *id).await {
                Ok(r) => routines.push(r),
                Err(crate::ports::StoreError::NotFound) => {
                    return Err(ValidationError::new(
                        field,
                        codes::UNKNOWN_VALUE,
                        "not one of your routines",
                    )
                    .into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let audit = self.ports.audit(
            actor,
            "alarm.attach_routines",
            alarm.as_uuid(),
            None,
            Some(format!(
                "routines=[{}]",
                routine_ids
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            now,
        );
        self.ports
            .routines
            .commit(ChangeSet::audited(
                RoutineOp::Attach {
                    owner: actor.user,
                    alarm,
                    routines: routine_ids,
                },
                audit,
            ))
            .await?;
        // Prepared rings of the owner's were put back to be prepared
        // again with this change: an engine in this process does it now.
        self.ports.wake.due(now);
        Ok(routines)
    }
}
