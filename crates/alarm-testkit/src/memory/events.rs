//! [`AlarmEventStore`] over the in-memory state: an alarm's history, page by page.

use alarm_domain::ids::{AlarmId, EventId, UserId};
use alarm_domain::model::AlarmEvent;
use alarm_domain::ports::{AlarmEventStore, Page, PageRequest, StoreError};
use async_trait::async_trait;

use super::{InMemory, page};

#[async_trait]
impl AlarmEventStore for InMemory {
    async fn list(
        &self,
        owner: UserId,
        alarm: AlarmId,
        request: PageRequest<EventId>,
    ) -> Result<Page<AlarmEvent, EventId>, StoreError> {
        let s = self.lock();
        Ok(page(
            s.events
                .iter()
                .filter(|(_, e)| e.owner == owner && e.alarm == alarm)
                .filter(|(k, _)| s.event_visible(**k))
                .map(|(k, e)| (*k, e.clone())),
            request,
        ))
    }
}
