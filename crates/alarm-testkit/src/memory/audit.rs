//! [`AuditLog`] over the in-memory state: the audit records, page by page.

use alarm_domain::ids::{AuditId, UserId};
use alarm_domain::model::AuditRecord;
use alarm_domain::ports::{AuditLog, Page, PageRequest, StoreError};
use async_trait::async_trait;

use super::{InMemory, page};

#[async_trait]
impl AuditLog for InMemory {
    async fn record(&self, record: AuditRecord) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.audit.contains_key(&record.id) {
            return Err(StoreError::Conflict(format!(
                "audit record {} exists",
                record.id
            )));
        }
        s.audit.insert(record.id, record);
        Ok(())
    }

    async fn list(
        &self,
        actor: Option<UserId>,
        request: PageRequest<AuditId>,
    ) -> Result<Page<AuditRecord, AuditId>, StoreError> {
        let s = self.lock();
        Ok(page(
            s.audit
                .iter()
                .filter(|(_, r)| actor.is_none_or(|a| r.actor == Some(a)))
                .map(|(k, r)| (*k, r.clone())),
            request,
        ))
    }
}
