//! The exception-period store on SQL: each owner's date ranges that silence or move alarms.

use alarm_domain::ids::{ExceptionPeriodId, UserId};
use alarm_domain::model::{ExceptionKind, ExceptionPeriod};
use alarm_domain::ports::{ChangeSet, ExceptionOp, ExceptionPeriodStore, StoreError};
use async_trait::async_trait;
use sea_orm::QueryResult;

use super::{SqlStores, commit_one, id_of, v};
use crate::codec::date_from_text;
use crate::db::{col, corrupt};

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
        let values = |p: &ExceptionPeriod| {
            vec![
                v(p.name()),
                v(p.kind().as_str()),
                v(p.start().to_string()),
                v(p.end().to_string()),
                v(p.id().as_uuid()),
                v(p.owner().as_uuid()),
            ]
        };
        let statement = match &change.op {
            ExceptionOp::Create(p) => (
                "INSERT INTO exception_periods (name, kind, start_date, end_date, id, owner_id) VALUES (?, ?, ?, ?, ?, ?)",
                values(p),
            ),
            ExceptionOp::Update(p) => (
                "UPDATE exception_periods SET name = ?, kind = ?, start_date = ?, end_date = ? WHERE id = ? AND owner_id = ?",
                values(p),
            ),
            ExceptionOp::Delete { owner, id } => (
                "DELETE FROM exception_periods WHERE id = ? AND owner_id = ?",
                vec![v(id.as_uuid()), v(owner.as_uuid())],
            ),
        };
        commit_one(&self.db, &change, statement).await
    }
}
