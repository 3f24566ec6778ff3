//! The exception-period store on SQL: each owner's date ranges that silence or move alarms.

use alarm_domain::ids::{ExceptionPeriodId, UserId};
use alarm_domain::model::{ExceptionKind, ExceptionPeriod};
use alarm_domain::ports::{ChangeSet, ExceptionOp, ExceptionPeriodStore, StoreError};
use async_trait::async_trait;
use sea_orm::QueryResult;

use super::{Owned, Prepared, SqlStores, commit_one, id_of, v};
use crate::codec::date_from_text;
use crate::db::{col, corrupt};
use crate::row::Row;

fn exception_from(row: &QueryResult) -> Result<ExceptionPeriod, StoreError> {
    ExceptionPeriod::new(
        id_of(row, "id", ExceptionPeriodId::from_uuid)?,
        id_of(row, "owner_id", UserId::from_uuid)?,
        &col::<String>(row, "name")?,
        ExceptionKind::parse(&col::<String>(row, "kind")?).map_err(|e| corrupt("kind", e))?,
        date_from_text(&col::<String>(row, "start_date")?)?,
        date_from_text(&col::<String>(row, "end_date")?)?,
    )
    .map_err(|e| corrupt("exception period", e))
}

#[async_trait]
impl ExceptionPeriodStore for SqlStores {
    async fn get(
        &self,
        owner: UserId,
        id: ExceptionPeriodId,
    ) -> Result<ExceptionPeriod, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT * FROM exception_periods WHERE id = ? AND owner_id = ?",
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            )
            .await?;
        exception_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list(&self, owner: UserId) -> Result<Vec<ExceptionPeriod>, StoreError> {
        let rows = self
            .db
            .query_all(
                "SELECT * FROM exception_periods WHERE owner_id = ? ORDER BY start_date, id",
                vec![v(owner.as_uuid())],
            )
            .await?;
        rows.iter().map(exception_from).collect()
    }

    async fn list_many(&self, owners: Vec<UserId>) -> Result<Vec<ExceptionPeriod>, StoreError> {
        let owners: Vec<uuid::Uuid> = owners.iter().map(|o| o.as_uuid()).collect();
        self.db
            .query_in(
                "SELECT * FROM exception_periods WHERE owner_id IN ({ids}) ORDER BY owner_id, start_date, id",
                &owners,
            )
            .await?
            .iter()
            .map(exception_from)
            .collect()
    }

    async fn commit(&self, change: ChangeSet<ExceptionOp>) -> Result<(), StoreError> {
        let fields = |p: &ExceptionPeriod| {
            Row::new()
                .set("name", p.name())
                .set("kind", p.kind().as_str())
                .set("start_date", p.start().to_string())
                .set("end_date", p.end().to_string())
        };
        let write = match &change.op {
            ExceptionOp::Create(p, quota) => Owned::Create {
                id: p.id().as_uuid(),
                owner: p.owner().as_uuid(),
                fields: fields(p),
                quota: *quota,
            },
            ExceptionOp::Update(p) => Owned::Update {
                id: p.id().as_uuid(),
                owner: p.owner().as_uuid(),
                fields: fields(p),
            },
            ExceptionOp::Delete { owner, id } => Owned::Delete {
                id: id.as_uuid(),
                owner: owner.as_uuid(),
            },
        };
        commit_one(
            &self.db,
            &change,
            "exception_periods",
            write,
            Prepared::Unchanged,
        )
        .await
    }
}
