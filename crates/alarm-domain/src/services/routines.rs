//! Routine use cases: get, list, create, update and delete; every write is one change set with its audit record.

use super::{Actor, Basics, Ports, ServiceError};
use crate::ids::RoutineId;
use crate::model::{Routine, RoutineAction, RoutineName};
use crate::ports::{ChangeSet, Page, PageRequest, RoutineOp};

super::service_ports! {
    /// The ports [`RoutineService`] takes.
    RoutinePorts {
        /// Routines.
        routines: dyn RoutineStore = routines,
        /// The clock.
        clock: dyn Clock = clock,
        /// Ids.
        ids: dyn IdSource = ids,
    }
}

use crate::ports::{Clock, IdSource, RoutineStore};

/// Routine use cases.
#[derive(Clone)]
pub struct RoutineService {
    ports: RoutinePorts,
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

    /// # Errors
    /// [`ServiceError::Invalid`] for an empty or duplicated action list.
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
                RoutineOp::Create(routine.clone()),
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
        Ok(())
    }
}
