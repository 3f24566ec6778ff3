//! Ringing shapes: an occurrence waiting for an answer and the caller's list of them.

use poem_openapi::Object;

/// An occurrence that rang and is waiting for an answer.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RingingView {
    /// The alarm.
    pub alarm_id: String,
    /// Its name.
    pub alarm_name: String,
    /// The occurrence's instant (UTC).
    pub occurrence_at: String,
    /// The occurrence's nominal local date and time in the alarm's zone.
    pub local_time: String,
    /// When it first rang (UTC).
    pub ringing_since: String,
    /// Snoozes used.
    pub snoozes: u8,
    /// Snoozes allowed.
    pub max_snoozes: u8,
    /// Escalation level reached (0 = not escalated).
    pub escalation_level: u8,
    /// Snoozed: silent until `rings_again_at`.
    pub snoozed: bool,
    /// When a snoozed occurrence rings again (UTC); absent otherwise.
    pub rings_again_at: Option<String>,
}

impl RingingView {
    pub(crate) fn new(
        r: &alarm_domain::trigger::Ringing,
        alarm: &alarm_domain::model::Alarm,
        rings_again_at: Option<alarm_domain::jiff::Timestamp>,
    ) -> Self {
        Self {
            alarm_id: r.alarm.to_string(),
            alarm_name: alarm.draft().name.as_str().to_owned(),
            occurrence_at: r.occurrence.at.to_string(),
            local_time: r.occurrence.local.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
            ringing_since: r.since.to_string(),
            snoozes: r.snoozes,
            max_snoozes: alarm.draft().snooze.max_snoozes(),
            escalation_level: r.level,
            snoozed: r.snoozed,
            rings_again_at: rings_again_at.map(|t| t.to_string()),
        }
    }
}

/// The caller's ringing occurrences.
#[derive(Debug, Clone, Object)]
pub struct RingingList {
    /// Oldest first; snoozed occurrences are not listed.
    pub items: Vec<RingingView>,
}
