//! Schedule shapes (once, daily, weekly, rule) and the wall-time formats they share with the other DTOs.

use alarm_domain::error::ValidationError;
use alarm_domain::jiff::civil::{DateTime, Time};
use alarm_domain::schedule::{RecurrenceRule, Schedule, WallTime, WeekdaySet};
use poem_openapi::{Object, Union};
use serde::Deserialize;

/// `HH:MM`, or `HH:MM:SS` when the seconds are not zero.
pub(crate) fn wall(t: Time) -> String {
    if t.second() == 0 {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
    }
}

fn local_date_time(dt: DateTime) -> String {
    format!("{}T{}", dt.date(), wall(dt.time()))
}

/// A one-off alarm on a local date.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnceSchedule {
    /// Local date `YYYY-MM-DD`.
    pub date: String,
    /// Local wall time `HH:MM[:SS]`.
    pub time: String,
}

/// Every day at a local wall time.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailySchedule {
    /// Local wall time `HH:MM[:SS]`.
    pub time: String,
}

/// On some weekdays at a local wall time.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklySchedule {
    /// Days: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Vec<String>,
    /// Local wall time `HH:MM[:SS]`.
    pub time: String,
}

/// An RFC 5545 recurrence rule from a local start.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSchedule {
    /// The rule, e.g. `FREQ=MONTHLY;BYDAY=-1FR`.
    pub rrule: String,
    /// Local start `YYYY-MM-DDTHH:MM[:SS]`.
    pub dtstart: String,
}

/// When an alarm rings, in its zone's local time.
///
/// The `kind` member picks the variant. Unknown members are refused per
/// variant by serde (which consumes `kind` before the variant sees the
/// object), not by poem-openapi, whose `deny_unknown_fields` on a variant
/// would also refuse `kind` itself.
#[derive(Debug, Clone, Union, Deserialize)]
#[oai(discriminator_name = "kind")]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleDto {
    /// Once.
    #[oai(mapping = "once")]
    Once(OnceSchedule),
    /// Daily.
    #[oai(mapping = "daily")]
    Daily(DailySchedule),
    /// Weekly.
    #[oai(mapping = "weekly")]
    Weekly(WeeklySchedule),
    /// A recurrence rule.
    #[oai(mapping = "rule")]
    Rule(RuleSchedule),
}

impl ScheduleDto {
    /// The domain schedule; a rule denser than `max_per_day` wall times a
    /// day is refused before it is expanded.
    pub(super) fn to_domain(&self, max_per_day: u32) -> Result<Schedule, ValidationError> {
        Ok(match self {
            ScheduleDto::Once(s) => Schedule::Once {
                date: super::date("date", s.date.trim())?,
                time: WallTime::parse(&s.time)?,
            },
            ScheduleDto::Daily(s) => Schedule::Daily {
                time: WallTime::parse(&s.time)?,
            },
            ScheduleDto::Weekly(s) => Schedule::Weekly {
                days: WeekdaySet::parse(&s.days)?,
                time: WallTime::parse(&s.time)?,
            },
            ScheduleDto::Rule(s) => Schedule::Rule(Box::new(RecurrenceRule::parse_within(
                &s.rrule,
                &s.dtstart,
                max_per_day,
            )?)),
        })
    }

    pub(super) fn from_domain(s: &Schedule) -> Self {
        match s {
            Schedule::Once { date, time } => ScheduleDto::Once(OnceSchedule {
                date: date.to_string(),
                time: wall(time.as_civil()),
            }),
            Schedule::Daily { time } => ScheduleDto::Daily(DailySchedule {
                time: wall(time.as_civil()),
            }),
            Schedule::Weekly { days, time } => ScheduleDto::Weekly(WeeklySchedule {
                days: days.names().into_iter().map(str::to_owned).collect(),
                time: wall(time.as_civil()),
            }),
            Schedule::Rule(r) => ScheduleDto::Rule(RuleSchedule {
                rrule: r.as_str().to_owned(),
                dtstart: local_date_time(r.dtstart()),
            }),
        }
    }
}
