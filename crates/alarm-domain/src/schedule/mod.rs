//! Schedules (once, daily, weekly, RFC 5545 rule) and the engine that turns them into occurrences.

pub(crate) mod civil;
mod engine;
mod rrule;

use std::fmt;

use jiff::civil::{Date, Time};

pub use engine::{
    Adjustment, Calendar, CalendarHoliday, HolidayDelay, MAX_PREVIEW_LIMIT, Occurrence,
    OccurrenceQuery, Preview, SCAN_BUDGET, ScheduleMask, SuppressionReason, occurrences,
};
pub use rrule::{Frequency, MAX_COUNT, MAX_INTERVAL, PARSE_BUDGET, RecurrenceRule, Until};

use crate::error::{ValidationError, codes};
use civil::{SECS_PER_DAY, day_of, days_from_civil, time_seconds, weekday};

/// A local wall time, `HH:MM[:SS]`, whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime(Time);

/// Parses `HH:MM` or `HH:MM:SS` (24-hour clock, two digits each).
pub(crate) fn parse_wall_time(value: &str) -> Result<WallTime, ValidationError> {
    let bad = || {
        ValidationError::new(
            "time",
            codes::INVALID_FORMAT,
            format!("`{value}` is not a wall time HH:MM or HH:MM:SS"),
        )
    };
    let v = value.trim();
    let bytes = v.as_bytes();
    let two = |i: usize| -> Option<i8> {
        let (a, b) = (*bytes.get(i)?, *bytes.get(i + 1)?);
        (a.is_ascii_digit() && b.is_ascii_digit()).then(|| ((a - b'0') * 10 + (b - b'0')) as i8)
    };
    let (h, m, s) = match bytes.len() {
        5 if bytes[2] == b':' => (two(0), two(3), Some(0)),
        8 if bytes[2] == b':' && bytes[5] == b':' => (two(0), two(3), two(6)),
        _ => return Err(bad()),
    };
    let (Some(h), Some(m), Some(s)) = (h, m, s) else {
        return Err(bad());
    };
    Time::new(h, m, s, 0).map(WallTime).map_err(|_| bad())
}

impl WallTime {
    /// Parses `HH:MM` or `HH:MM:SS`.
    ///
    /// # Errors
    /// `time` with `invalid-format`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        parse_wall_time(value)
    }

    /// From a jiff time, dropping sub-second precision.
    pub fn from_civil(time: Time) -> Self {
        Self(time.with().subsec_nanosecond(0).build().unwrap_or(time))
    }

    /// The jiff time.
    pub fn as_civil(&self) -> Time {
        self.0
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.second() == 0 {
            write!(f, "{:02}:{:02}", self.0.hour(), self.0.minute())
        } else {
            write!(
                f,
                "{:02}:{:02}:{:02}",
                self.0.hour(),
                self.0.minute(),
                self.0.second()
            )
        }
    }
}

/// A non-empty set of weekdays.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeekdaySet(u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl WeekdaySet {
    /// Monday to Friday.
    pub const WEEKDAYS: WeekdaySet = WeekdaySet(0b001_1111);
    /// Saturday and Sunday.
    pub const WEEKENDS: WeekdaySet = WeekdaySet(0b110_0000);
    /// Every day.
    pub const EVERY_DAY: WeekdaySet = WeekdaySet(0b111_1111);

    /// Parses day names (`mon`…`sun`, any case); duplicates are rejected.
    ///
    /// # Errors
    /// `days` with `bad-count` when empty; `days[i]` with `unknown-value` or
    /// `duplicate`.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, ValidationError> {
        if names.is_empty() {
            return Err(ValidationError::new(
                "days",
                codes::BAD_COUNT,
                "must name at least one day",
            ));
        }
        let mut mask = 0u8;
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref().trim();
            let bit = DAY_NAMES
                .iter()
                .position(|d| d.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    ValidationError::new(
                        format!("days[{i}]"),
                        codes::UNKNOWN_VALUE,
                        format!("`{name}` is not one of mon, tue, wed, thu, fri, sat, sun"),
                    )
                })?;
            if mask & (1 << bit) != 0 {
                return Err(ValidationError::new(
                    format!("days[{i}]"),
                    codes::DUPLICATE,
                    format!("`{name}` is listed twice"),
                ));
            }
            mask |= 1 << bit;
        }
        Ok(Self(mask))
    }

    /// Whether the set holds `day` (jiff weekday).
    pub fn contains(&self, day: jiff::civil::Weekday) -> bool {
        self.0 & (1 << day.to_monday_zero_offset()) != 0
    }

    /// The day names in week order, `mon` first.
    pub fn names(&self) -> Vec<&'static str> {
        (0..7)
            .filter(|b| self.0 & (1 << b) != 0)
            .map(|b| DAY_NAMES[b])
            .collect()
    }

    pub(crate) fn bits(&self) -> u8 {
        self.0
    }
}

impl fmt::Debug for WeekdaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WeekdaySet({})", self.names().join(","))
    }
}

/// When an alarm rings, in the alarm's local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// One wall time on one date.
    Once {
        /// The local date.
        date: Date,
        /// The local wall time.
        time: WallTime,
    },
    /// Every day at a wall time; no start date.
    Daily {
        /// The local wall time.
        time: WallTime,
    },
    /// On some weekdays at a wall time; no start date.
    Weekly {
        /// Non-empty set of days.
        days: WeekdaySet,
        /// The local wall time.
        time: WallTime,
    },
    /// An RFC 5545 recurrence rule from a local DTSTART.
    Rule(Box<RecurrenceRule>),
}

impl Schedule {
    /// The stable name of the kind (`once`, `daily`, `weekly`, `rule`).
    pub fn kind(&self) -> &'static str {
        match self {
            Schedule::Once { .. } => "once",
            Schedule::Daily { .. } => "daily",
            Schedule::Weekly { .. } => "weekly",
            Schedule::Rule(_) => "rule",
        }
    }

    /// The most wall times the schedule yields on one local day (a once,
    /// daily or weekly schedule: one).
    pub fn wall_times_per_day(&self) -> u32 {
        match self {
            Schedule::Rule(rule) => rule.wall_times_per_day(),
            _ => 1,
        }
    }

    /// A weekly schedule on Monday to Friday.
    pub fn weekdays(time: WallTime) -> Self {
        Schedule::Weekly {
            days: WeekdaySet::WEEKDAYS,
            time,
        }
    }

    /// A weekly schedule on Saturday and Sunday.
    pub fn weekends(time: WallTime) -> Self {
        Schedule::Weekly {
            days: WeekdaySet::WEEKENDS,
            time,
        }
    }

    /// Starts walking this schedule's wall times at or after `from_local`.
    pub(crate) fn cursor(&self, from_local: i64) -> ScheduleCursor<'_> {
        let from_day = from_local.div_euclid(SECS_PER_DAY) as i32;
        match self {
            Schedule::Once { date, time } => ScheduleCursor::Once(Some(
                i64::from(day_of(*date)) * SECS_PER_DAY + time_seconds(time.0),
            )),
            Schedule::Daily { time } => ScheduleCursor::Days {
                day: from_day,
                secs: time_seconds(time.0),
                mask: WeekdaySet::EVERY_DAY.bits(),
            },
            Schedule::Weekly { days, time } => ScheduleCursor::Days {
                day: from_day,
                secs: time_seconds(time.0),
                mask: days.bits(),
            },
            Schedule::Rule(rule) => ScheduleCursor::Rule(rrule::RuleCursor::new(rule, from_local)),
        }
    }
}

/// One schedule's wall times in increasing order, as local seconds.
pub(crate) enum ScheduleCursor<'s> {
    Once(Option<i64>),
    Days { day: i32, secs: i64, mask: u8 },
    Rule(rrule::RuleCursor<'s>),
}

/// The last day the engine walks: 9999-12-31.
fn last_day() -> i32 {
    days_from_civil(9999, 12, 31)
}

impl ScheduleCursor<'_> {
    pub(crate) fn next_local(&mut self, budget: &mut u64) -> Option<i64> {
        match self {
            ScheduleCursor::Once(t) => t.take(),
            ScheduleCursor::Days { day, secs, mask } => {
                for _ in 0..7 {
                    if *day > last_day() || *budget == 0 {
                        return None;
                    }
                    *budget -= 1;
                    let d = *day;
                    *day += 1;
                    if *mask & (1 << weekday(d)) != 0 {
                        return Some(i64::from(d) * SECS_PER_DAY + *secs);
                    }
                }
                None
            }
            ScheduleCursor::Rule(cursor) => cursor.next_local(budget, rrule::END_OF_TIME),
        }
    }
}
