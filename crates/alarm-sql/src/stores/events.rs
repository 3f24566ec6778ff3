//! The alarm-event store on SQL: the owner's paged history of one alarm.

use alarm_domain::ids::{AlarmId, EventId, UserId};
use alarm_domain::model::{AlarmEvent, AlarmEventKind};
use alarm_domain::ports::{AlarmEventStore, Page, PageRequest, StoreError};
use async_trait::async_trait;
use sea_orm::QueryResult;

use super::{SqlStores, finish_page, id_of, page_sql, v};
use crate::db::{col, corrupt, ts};

fn event_from(row: &QueryResult) -> Result<AlarmEvent, StoreError> {
    Ok(AlarmEvent {
        id: id_of(row, "id", EventId::from_uuid)?,
        alarm: id_of(row, "alarm_id", AlarmId::from_uuid)?,
        owner: id_of(row, "owner_id", UserId::from_uuid)?,
        kind: AlarmEventKind::parse(&col::<String>(row, "kind")?)
            .map_err(|e| corrupt("event kind", e))?,
        at: ts(col(row, "at_us")?)?,
        occurrence: col::<Option<i64>>(row, "occurrence_us")?
            .map(ts)
            .transpose()?,
        detail: col(row, "detail")?,
        data: col(row, "data")?,
    })
}

#[async_trait]
impl AlarmEventStore for SqlStores {
    async fn list(
        &self,
        owner: UserId,
        alarm: AlarmId,
        page: PageRequest<EventId>,
    ) -> Result<Page<AlarmEvent, EventId>, StoreError> {
        let mut values = vec![v(owner.as_uuid()), v(alarm.as_uuid())];
        // An event the engine prepared ahead of its ring is listed from
        // its instant on, by the database's clock.
        let sql = page_sql(
            &format!(
                "SELECT id, alarm_id, owner_id, kind, at_us, occurrence_us, detail, data FROM alarm_events \
                 WHERE owner_id = ? AND alarm_id = ? AND (effective_us IS NULL OR effective_us <= {})",
                self.db.now_sql()
            ),
            page.after().map(|e| e.as_uuid()),
            page.limit(),
            &mut values,
        );
        let items = self
            .db
            .query_all(&sql, values)
            .await?
            .iter()
            .map(event_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, page.limit(), |e: &AlarmEvent| e.id))
    }
}
