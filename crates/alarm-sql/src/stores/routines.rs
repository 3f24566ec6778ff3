//! The routine store on SQL: each owner's named lists of actions.

use alarm_domain::ids::{RoutineId, UserId};
use alarm_domain::model::{Routine, RoutineAction, RoutineName};
use alarm_domain::ports::{ChangeSet, Page, PageRequest, RoutineOp, RoutineStore, StoreError};
use async_trait::async_trait;
use sea_orm::QueryResult;

use super::{Owned, SqlStores, commit_one, finish_page, id_of, page_sql, v};
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
            RoutineOp::Create(r) => Owned::Create {
                id: r.id().as_uuid(),
                owner: r.owner().as_uuid(),
                fields: fields(r),
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
        };
        commit_one(&self.db, &change, "routines", write).await
    }
}
