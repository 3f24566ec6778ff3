//! The audit log on SQL: reading the records every change set writes, paged and optionally by actor.

use alarm_domain::ids::{AuditId, UserId};
use alarm_domain::model::AuditRecord;
use alarm_domain::ports::{AuditLog, Page, PageRequest, StoreError};
use async_trait::async_trait;
use sea_orm::QueryResult;
use uuid::Uuid;

use super::{SqlStores, finish_page, id_of, insert_audit, page_sql, v};
use crate::db::{col, corrupt, ts};

fn audit_from(row: &QueryResult) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: id_of(row, "id", AuditId::from_uuid)?,
        actor: col::<Option<Uuid>>(row, "actor_id")?
            .map(UserId::from_uuid)
            .transpose()
            .map_err(|e| corrupt("actor", e))?,
        action: col(row, "action")?,
        entity_type: col(row, "entity_type")?,
        entity_id: col(row, "entity_id")?,
        before: col(row, "before_summary")?,
        after: col(row, "after_summary")?,
        at: ts(col(row, "at_us")?)?,
        correlation_id: col(row, "correlation_id")?,
    })
}

#[async_trait]
impl AuditLog for SqlStores {
    async fn record(&self, record: AuditRecord) -> Result<(), StoreError> {
        self.db
            .write(async |tx| {
                insert_audit(tx, &record).await?;
                Ok(())
            })
            .await
    }

    async fn list(
        &self,
        actor: Option<UserId>,
        page: PageRequest<AuditId>,
    ) -> Result<Page<AuditRecord, AuditId>, StoreError> {
        let mut values = Vec::new();
        let base = match actor {
            Some(a) => {
                values.push(v(a.as_uuid()));
                "SELECT * FROM audit_log WHERE actor_id = ?"
            }
            None => "SELECT * FROM audit_log WHERE 1 = 1",
        };
        let sql = page_sql(
            base,
            page.after().map(|a| a.as_uuid()),
            page.limit(),
            &mut values,
        );
        let items = self
            .db
            .query_all(&sql, values)
            .await?
            .iter()
            .map(audit_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, page.limit(), |a: &AuditRecord| a.id))
    }
}
