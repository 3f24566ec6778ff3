//! The routine store on SQL: each owner's named lists of actions, and the routines attached to each alarm (`alarm_routines`, whose foreign keys detach a deleted routine or alarm).

use alarm_domain::ids::{AlarmId, RoutineId, UserId};
use alarm_domain::model::{Routine, RoutineAction, RoutineName};
use alarm_domain::ports::{ChangeSet, Page, PageRequest, RoutineOp, RoutineStore, StoreError};
use async_trait::async_trait;
use sea_orm::QueryResult;

use super::{
    Owned, Prepared, SqlStores, apply_common, commit_one, finish_page, id_of, page_sql, v,
};
use crate::db::{col, corrupt};
use crate::row::Row;

fn routine_from(row: &QueryResult) -> Result<Routine, StoreError> {
    let actions: Vec<String> =
        serde_json::from_str(&col::<String>(row, "actions")?).map_err(|e| corrupt("actions", e))?;
    let actions = actions
        .iter()
        .map(|a| RoutineAction::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt("action", e))?;
    Routine::new(
        id_of(row, "id", RoutineId::from_uuid)?,
        id_of(row, "owner_id", UserId::from_uuid)?,
        RoutineName::parse(&col::<String>(row, "name")?).map_err(|e| corrupt("name", e))?,
        actions,
        col(row, "active")?,
    )
    .map_err(|e| corrupt("routine", e))
}

#[async_trait]
impl RoutineStore for SqlStores {
    async fn get(&self, owner: UserId, id: RoutineId) -> Result<Routine, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT * FROM routines WHERE id = ? AND owner_id = ?",
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        routine_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list(
        &self,
        owner: UserId,
        page: PageRequest<RoutineId>,
    ) -> Result<Page<Routine, RoutineId>, StoreError> {
        let mut values = vec![v(owner.as_uuid())];
        let sql = page_sql(
            "SELECT * FROM routines WHERE owner_id = ?",
            page.after().map(|r| r.as_uuid()),
            page.limit(),
            &mut values,
        );
        let items = self
            .db
            .query_all(&sql, values)
            .await?
            .iter()
            .map(routine_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, page.limit(), Routine::id))
    }

    async fn commit(&self, change: ChangeSet<RoutineOp>) -> Result<(), StoreError> {
        let fields = |r: &Routine| {
            let actions: Vec<&str> = r.actions().iter().map(RoutineAction::as_str).collect();
            Row::new()
                .set("name", r.name().as_str())
                .set("actions", serde_json::Value::from(actions).to_string())
                .set("active", r.active())
        };
        let write = match &change.op {
            RoutineOp::Create(r, quota) => Owned::Create {
                id: r.id().as_uuid(),
                owner: r.owner().as_uuid(),
                fields: fields(r),
                quota: *quota,
            },
            RoutineOp::Update(r) => Owned::Update {
                id: r.id().as_uuid(),
                owner: r.owner().as_uuid(),
                fields: fields(r),
            },
            RoutineOp::Delete { owner, id } => Owned::Delete {
                id: id.as_uuid(),
                owner: owner.as_uuid(),
            },
            RoutineOp::Attach {
                owner,
                alarm,
                routines,
            } => return self.attach(&change, *owner, *alarm, routines).await,
        };
        // A new routine is attached to nothing yet.
        let prepared = if matches!(change.op, RoutineOp::Create(..)) {
            Prepared::Unchanged
        } else {
            Prepared::Reprepare
        };
        commit_one(&self.db, &change, "routines", write, prepared).await
    }

    async fn attached(&self, owner: UserId, alarm: AlarmId) -> Result<Vec<Routine>, StoreError> {
        self.db
            .query_one(
                "SELECT id FROM alarms WHERE id = ? AND owner_id = ?",
                vec![v(alarm.as_uuid()), v(owner.as_uuid())],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        self.db
            .query_all(
                "SELECT r.* FROM alarm_routines l JOIN routines r ON r.id = l.routine_id \
                 WHERE l.alarm_id = ? ORDER BY l.position",
                vec![v(alarm.as_uuid())],
            )
            .await?
            .iter()
            .map(routine_from)
            .collect()
    }

    async fn attached_many(
        &self,
        alarms: Vec<AlarmId>,
    ) -> Result<Vec<(AlarmId, Routine)>, StoreError> {
        let ids: Vec<uuid::Uuid> = alarms.iter().map(AlarmId::as_uuid).collect();
        self.db
            .query_in(
                "SELECT l.alarm_id AS link_alarm, r.* FROM alarm_routines l \
                 JOIN routines r ON r.id = l.routine_id \
                 WHERE l.alarm_id IN ({ids}) ORDER BY l.alarm_id, l.position",
                &ids,
            )
            .await?
            .iter()
            .map(|row| {
                Ok((
                    id_of(row, "link_alarm", AlarmId::from_uuid)?,
                    routine_from(row)?,
                ))
            })
            .collect()
    }
}

impl SqlStores {
    /// Replaces the alarm's attached routines after checking, under locks,
    /// that the alarm and every routine are the owner's.
    async fn attach(
        &self,
        change: &ChangeSet<RoutineOp>,
        owner: UserId,
        alarm: AlarmId,
        routines: &[RoutineId],
    ) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                let postgres = tx.backend == sea_orm::DbBackend::Postgres;
                // The alarm's row is locked so two replacements apply one after
                // the other; the routines are share-locked so a concurrent delete
                // waits (and then detaches them) instead of racing the insert.
                let alarm_sql = if postgres {
                    "SELECT id FROM alarms WHERE id = ? AND owner_id = ? FOR UPDATE"
                } else {
                    "SELECT id FROM alarms WHERE id = ? AND owner_id = ?"
                };
                tx.query_one(alarm_sql, vec![v(alarm.as_uuid()), v(owner.as_uuid())])
                    .await?
                    .ok_or(StoreError::NotFound)?;
                if !routines.is_empty() {
                    let marks = vec!["?"; routines.len()].join(", ");
                    let lock = if postgres { " FOR KEY SHARE" } else { "" };
                    let mut values = vec![v(owner.as_uuid())];
                    values.extend(routines.iter().map(|r| v(r.as_uuid())));
                    let found = tx
                .query_all(
                    &format!(
                        "SELECT id FROM routines WHERE owner_id = ? AND id IN ({marks}){lock}"
                    ),
                    values,
                )
                .await?;
                    if found.len() != routines.len() {
                        return Err(StoreError::Conflict(
                            "a routine is not (or no longer) the owner's".to_owned(),
                        ));
                    }
                }
                tx.exec(
                    "DELETE FROM alarm_routines WHERE alarm_id = ?",
                    vec![v(alarm.as_uuid())],
                )
                .await?;
                if !routines.is_empty() {
                    let rows = routines
                        .iter()
                        .zip(0_i16..)
                        .map(|(r, position)| {
                            Row::new()
                                .set("alarm_id", alarm.as_uuid())
                                .set("routine_id", r.as_uuid())
                                .set("owner_id", owner.as_uuid())
                                .set("position", position)
                        })
                        .collect();
                    tx.insert("alarm_routines", rows, "").await?;
                }
                apply_common(tx, change).await?;
                super::reprepare_owner(tx, owner.as_uuid()).await?;
                Ok(())
            })
            .await
    }
}
