//! Alarm events (what happened to an alarm) and audit records (who changed what).

use jiff::Timestamp;
use uuid::Uuid;

use crate::error::{ValidationError, codes};
use crate::ids::{AlarmId, AuditId, EventId, UserId};

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmEventKind {
    /// Created.
    Created,
    /// Edited.
    Updated,
    /// Turned on.
    Enabled,
    /// Turned off.
    Disabled,
    /// Rang.
    Triggered,
    /// Snoozed by the user.
    Snoozed,
    /// Dismissed by the user.
    Dismissed,
    /// Re-notified after no answer.
    Escalated,
    /// Not rung in time (e.g. the service was down past the grace window).
    Missed,
    /// Rang and was never answered.
    Expired,
    /// Deleted.
    Deleted,
    /// A routine attached to the alarm started when an occurrence rang
    /// (its detail: [`crate::firing::routine_detail`]).
    RoutineStarted,
}

const EVENT_KINDS: [(AlarmEventKind, &str); 12] = [
    (AlarmEventKind::Created, "created"),
    (AlarmEventKind::Updated, "updated"),
    (AlarmEventKind::Enabled, "enabled"),
    (AlarmEventKind::Disabled, "disabled"),
    (AlarmEventKind::Triggered, "triggered"),
    (AlarmEventKind::Snoozed, "snoozed"),
    (AlarmEventKind::Dismissed, "dismissed"),
    (AlarmEventKind::Escalated, "escalated"),
    (AlarmEventKind::Missed, "missed"),
    (AlarmEventKind::Expired, "expired"),
    (AlarmEventKind::Deleted, "deleted"),
    (AlarmEventKind::RoutineStarted, "routine_started"),
];

impl AlarmEventKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        EVENT_KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("updated", |(_, n)| n)
    }
    /// # Errors
    /// `kind` with `unknown-value`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        EVENT_KINDS
            .iter()
            .find(|(_, n)| *n == value)
            .map(|(k, _)| *k)
            .ok_or_else(|| {
                ValidationError::new(
                    "kind",
                    codes::UNKNOWN_VALUE,
                    format!("`{value}` is not an alarm event kind"),
                )
            })
    }
}

/// One entry of an alarm's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmEvent {
    /// The id.
    pub id: EventId,
    /// The alarm.
    pub alarm: AlarmId,
    /// The alarm's owner.
    pub owner: UserId,
    /// What happened.
    pub kind: AlarmEventKind,
    /// When it was recorded.
    pub at: Timestamp,
    /// The occurrence it concerns (its nominal instant), for ringing events.
    pub occurrence: Option<Timestamp>,
    /// A short human-readable detail (snooze count, escalation level…).
    pub detail: Option<String>,
    /// What its webhooks carry as `data` (JSON text,
    /// [`crate::sending::event_data`]), fixed when it is made.
    pub data: Option<String>,
}

/// Who changed what, when, and under which request. Summaries are short
/// texts, never secrets: they are shown to administrators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The id.
    pub id: AuditId,
    /// The acting user; `None` for the system (the trigger engine).
    pub actor: Option<UserId>,
    /// A dotted action name, e.g. `alarm.update`.
    pub action: String,
    /// The entity type, e.g. `alarm`.
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: Uuid,
    /// A summary of the state before (absent on creation).
    pub before: Option<String>,
    /// A summary of the state after (absent on deletion).
    pub after: Option<String>,
    /// When it happened.
    pub at: Timestamp,
    /// The request or job id that caused it.
    pub correlation_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_round_trip() {
        for (kind, name) in EVENT_KINDS {
            assert_eq!(AlarmEventKind::parse(name).unwrap(), kind);
            assert_eq!(kind.as_str(), name);
        }
        assert!(AlarmEventKind::parse("exploded").is_err());
    }
}
