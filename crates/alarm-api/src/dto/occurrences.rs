//! Occurrence shapes: when an alarm rings (or would), how the instant was adjusted, and why it is suppressed.

use alarm_domain::schedule::Occurrence;
use poem_openapi::Object;

use super::schedules::wall;

/// How an occurrence's instant differs from its nominal wall time.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AdjustmentView {
    /// The wall time fell in a daylight-saving gap and fires this many
    /// seconds later on the clock.
    pub dst_gap_shift_seconds: Option<i64>,
    /// A holiday preference delayed the fire by this many minutes.
    pub holiday_delay_minutes: Option<u32>,
    /// The holiday behind the delay.
    pub holiday: Option<String>,
    /// A delayed occurrence reached this one and was merged into it.
    pub absorbed_delayed: bool,
}

/// One time the alarm rings (or would, when suppressed).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OccurrenceView {
    /// Nominal local date.
    pub local_date: String,
    /// Nominal local wall time.
    pub local_time: String,
    /// The instant it rings (UTC, RFC 3339 with `Z`).
    pub fire_at: String,
    /// Which schedules (0-based) produced it.
    pub schedule_indexes: Vec<u32>,
    /// Absent when the instant is the nominal wall time.
    pub adjustment: Option<AdjustmentView>,
    /// Whether it is suppressed (listed only with `include_suppressed=true`).
    pub suppressed: bool,
    /// Why it is suppressed: `disabled`, `exception-period`, `holiday-skip`.
    pub reason: Option<String>,
    /// The exception period or holiday behind `reason`.
    pub reason_detail: Option<String>,
}

impl OccurrenceView {
    pub(crate) fn new(o: &Occurrence) -> Self {
        use alarm_domain::schedule::SuppressionReason as R;
        let local = o.local();
        let adj = o.adjustment();
        let adjustment = (!adj.is_none()).then(|| AdjustmentView {
            dst_gap_shift_seconds: adj.gap_shift.map(|d| d.as_secs()),
            holiday_delay_minutes: adj.holiday_delay.as_ref().map(|h| u32::from(h.minutes)),
            holiday: adj.holiday_delay.as_ref().map(|h| h.holiday.clone()),
            absorbed_delayed: adj.absorbed_delayed,
        });
        let (reason, reason_detail) = match o.suppressed() {
            None => (None, None),
            Some(r) => (
                Some(r.code().to_owned()),
                match r {
                    R::Disabled => None,
                    R::ExceptionPeriod { name, .. } => Some(name.clone()),
                    R::HolidaySkip { holiday } => Some(holiday.clone()),
                },
            ),
        };
        Self {
            local_date: local.date().to_string(),
            local_time: wall(local.time()),
            fire_at: o.fire_at().to_string(),
            schedule_indexes: o
                .schedules()
                .indexes()
                .into_iter()
                .map(|i| i as u32)
                .collect(),
            adjustment,
            suppressed: o.suppressed().is_some(),
            reason,
            reason_detail,
        }
    }
}

/// Upcoming occurrences.
#[derive(Debug, Clone, Object)]
pub struct OccurrenceList {
    /// In time order.
    pub items: Vec<OccurrenceView>,
    /// False when the search budget ran out before `limit` items were found
    /// (more may exist further ahead).
    pub complete: bool,
}
