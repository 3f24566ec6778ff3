//! The RFC 5545 recurrence-rule subset: parsing with errors that name the part, and expansion.
//!
//! Supported parts: `FREQ` (DAILY, WEEKLY, MONTHLY, YEARLY), `INTERVAL`,
//! `BYDAY` (ordinals such as `1MO` or `-1FR` only with MONTHLY and YEARLY),
//! `BYMONTHDAY` (negative counts from the month's end), `BYMONTH`, `BYSETPOS`,
//! `BYHOUR`, `BYMINUTE`, `COUNT`, `UNTIL` (UTC with `Z`, or local), `WKST`.
//! Everything else (`BYSECOND`, `BYYEARDAY`, `BYWEEKNO`, sub-daily
//! frequencies) is rejected by name rather than silently ignored.
//!
//! Expansion runs in civil time, one period (day, week, month, year) at a
//! time, on plain day numbers; time zones enter only when a wall time is
//! resolved to an instant, which the engine does.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;

use super::civil::{
    SECS_PER_DAY, civil_from_days, days_from_civil, days_in_month, days_in_year, local_seconds,
    weekday,
};
use crate::error::{ValidationError, codes};

/// How often the rule's period repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// Every `INTERVAL` days.
    Daily,
    /// Every `INTERVAL` weeks (weeks start on `WKST`).
    Weekly,
    /// Every `INTERVAL` months.
    Monthly,
    /// Every `INTERVAL` years.
    Yearly,
}

/// The end of a rule given by `UNTIL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// `UNTIL=…Z`: compared with the resolved instant.
    Utc(Timestamp),
    /// A local wall time (or a date, meaning its last second): compared in civil time.
    Local(DateTime),
}

/// One `BYDAY` entry: a weekday (Monday = 0) with an optional ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ByDay {
    ordinal: Option<i16>,
    weekday: u8,
}

/// A parsed, validated recurrence rule with its local `DTSTART`.
#[derive(Clone, PartialEq, Eq)]
pub struct RecurrenceRule {
    text: String,
    dtstart: DateTime,
    dtstart_local: i64,
    freq: Frequency,
    interval: u32,
    /// Bit `m` set for month `m` (1..=12); 0 means no `BYMONTH`.
    by_month: u16,
    by_month_day: Vec<i8>,
    by_day: Vec<ByDay>,
    by_set_pos: Vec<i16>,
    /// Sorted, deduplicated; empty means "DTSTART's hour".
    by_hour: Vec<u8>,
    by_minute: Vec<u8>,
    count: Option<u32>,
    until: Option<Until>,
    wkst: u8,
    /// DTSTART taken apart once, since every period needs its pieces.
    start: StartParts,
}

/// DTSTART's day number, date and time of day, precomputed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct StartParts {
    day: i32,
    year: i32,
    month: u8,
    day_of_month: u8,
    hour: u8,
    minute: u8,
    second: i64,
}

impl StartParts {
    fn of(local: i64) -> Self {
        let day = local.div_euclid(SECS_PER_DAY) as i32;
        let secs = local.rem_euclid(SECS_PER_DAY);
        let (year, month, day_of_month) = civil_from_days(day);
        Self {
            day,
            year,
            month,
            day_of_month,
            hour: (secs / 3600) as u8,
            minute: ((secs / 60) % 60) as u8,
            second: secs % 60,
        }
    }
}

impl fmt::Debug for RecurrenceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecurrenceRule({} from {})", self.text, self.dtstart)
    }
}

/// Upper bounds that keep a single rule's expansion cheap and finite.
pub const MAX_INTERVAL: u32 = 1000;
/// Largest accepted `COUNT`: a COUNT rule is always walked from DTSTART.
pub const MAX_COUNT: u32 = 100_000;

/// The most units (periods walked, wall times produced) the parse-time
/// `rule-never-fires` check may spend. One 400-year cycle is at most
/// 146,097 daily periods (fewer weeks, months or years, whatever the
/// INTERVAL), and only the period of the first occurrence yields wall
/// times (at most two periods of 366 × 24 × 60), so the check always
/// finishes within it, whatever `MAX_FIRES_PER_DAY` allows.
pub const PARSE_BUDGET: u64 = 1_300_000;

const WEEKDAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

fn rule_error(part: &str, why: impl fmt::Display) -> ValidationError {
    ValidationError::new("rrule", codes::INVALID_RULE, format!("{part}: {why}"))
}

fn parse_list<T>(
    part: &str,
    value: &str,
    parse_one: impl Fn(&str) -> Option<T>,
    expect: &str,
) -> Result<Vec<T>, ValidationError> {
    value
        .split(',')
        .map(|item| {
            parse_one(item.trim())
                .ok_or_else(|| rule_error(part, format!("`{item}` is not {expect}")))
        })
        .collect()
}

fn parse_int_in(item: &str, min: i32, max: i32, allow_zero: bool) -> Option<i32> {
    let n: i32 = item.parse().ok()?;
    (n >= min && n <= max && (allow_zero || n != 0)).then_some(n)
}

fn parse_weekday(s: &str) -> Option<u8> {
    WEEKDAYS
        .iter()
        .position(|w| w.eq_ignore_ascii_case(s))
        .map(|p| p as u8)
}

/// Parses `DTSTART` as `YYYY-MM-DDTHH:MM[:SS]`, a local wall time without offset.
fn parse_dtstart(value: &str) -> Result<DateTime, ValidationError> {
    let bad = |why: &str| ValidationError::new("dtstart", codes::INVALID_FORMAT, why.to_owned());
    let value = value.trim();
    if value.ends_with(['Z', 'z'])
        || value
            .get(10..)
            .is_some_and(|rest| rest.contains(['+', '-']))
    {
        return Err(bad(
            "must be a local date-time without offset, e.g. 2026-01-05T07:30",
        ));
    }
    let (date, time) = value
        .split_once(['T', 't'])
        .ok_or_else(|| bad("must look like YYYY-MM-DDTHH:MM[:SS]"))?;
    let date: jiff::civil::Date = date
        .parse()
        .map_err(|_| bad("has an invalid date; expected YYYY-MM-DD"))?;
    let time = super::parse_wall_time(time).map_err(|e| e.within("dtstart"))?;
    if !(1900..=2200).contains(&date.year()) {
        return Err(ValidationError::new(
            "dtstart",
            codes::OUT_OF_RANGE,
            "the year must be within 1900..=2200",
        ));
    }
    Ok(date.to_datetime(time.as_civil()))
}

fn parse_until(value: &str) -> Option<Until> {
    let v = value.trim();
    if !v.is_ascii() {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let num = |s: &str| s.parse::<i16>().ok();
    let date = |s: &str| -> Option<jiff::civil::Date> {
        if s.len() != 8 || !digits(s) {
            return None;
        }
        jiff::civil::Date::new(num(&s[..4])?, num(&s[4..6])? as i8, num(&s[6..8])? as i8).ok()
    };
    match v.len() {
        8 => Some(Until::Local(
            date(v)?.to_datetime(jiff::civil::time(23, 59, 59, 0)),
        )),
        15 | 16 => {
            let (d, rest) = (&v[..8], &v[8..]);
            if !rest.starts_with(['T', 't']) || !digits(&rest[1..7]) {
                return None;
            }
            let time = jiff::civil::Time::new(
                num(&rest[1..3])? as i8,
                num(&rest[3..5])? as i8,
                num(&rest[5..7])? as i8,
                0,
            )
            .ok()?;
            let dt = date(d)?.to_datetime(time);
            match &rest[7..] {
                "" => Some(Until::Local(dt)),
                "Z" | "z" => Some(Until::Utc(
                    dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp(),
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

impl RecurrenceRule {
    /// Parses `rrule` (the value without the `RRULE:` prefix) with its local
    /// `dtstart` (`YYYY-MM-DDTHH:MM[:SS]`).
    ///
    /// # Errors
    /// `rrule` with `invalid-rule` naming the offending part; `dtstart` with
    /// `invalid-format`; `rrule` with `rule-never-fires` when no occurrence
    /// exists within 400 × INTERVAL years of DTSTART (or before UNTIL/COUNT end it).
    pub fn parse(rrule: &str, dtstart: &str) -> Result<Self, ValidationError> {
        Self::parse_within(rrule, dtstart, u32::MAX)
    }

    /// [`RecurrenceRule::parse`] for a rule that may ring at most
    /// `max_per_day` wall times a day: a denser rule is refused before the
    /// `rule-never-fires` walk, which expands the first period (a yearly
    /// period of an every-minute rule is 527,040 wall times).
    ///
    /// # Errors
    /// As [`RecurrenceRule::parse`], and `rrule` with `too-frequent`.
    pub fn parse_within(
        rrule: &str,
        dtstart: &str,
        max_per_day: u32,
    ) -> Result<Self, ValidationError> {
        let rule = Self::parse_syntax(rrule, dtstart)?;
        let per_day = rule.wall_times_per_day();
        if per_day > max_per_day {
            return Err(ValidationError::new(
                "rrule",
                codes::TOO_FREQUENT,
                format!(
                    "the rule rings at {per_day} wall times a day (BYHOUR × BYMINUTE); \
                     at most {max_per_day} are allowed"
                ),
            ));
        }
        if !rule.fires_at_all() {
            return Err(ValidationError::new(
                "rrule",
                codes::RULE_NEVER_FIRES,
                "the rule has no occurrence within 400 × INTERVAL years of DTSTART (or before its COUNT/UNTIL end)",
            ));
        }
        Ok(rule)
    }

    /// A rule read back from storage: it passed [`RecurrenceRule::parse`]
    /// when it was written, so the `rule-never-fires` walk (up to two
    /// periods' wall times, on every read of every alarm) is not repeated.
    ///
    /// # Errors
    /// As [`RecurrenceRule::parse`] for the syntax only.
    pub fn parse_stored(rrule: &str, dtstart: &str) -> Result<Self, ValidationError> {
        Self::parse_syntax(rrule, dtstart)
    }

    fn parse_syntax(rrule: &str, dtstart: &str) -> Result<Self, ValidationError> {
        let dtstart = parse_dtstart(dtstart)?;
        let text = rrule.trim();
        if text.len() > 1000 {
            return Err(ValidationError::new(
                "rrule",
                codes::TOO_LONG,
                "must have at most 1000 characters",
            ));
        }
        if text
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("RRULE:"))
        {
            return Err(rule_error(
                "RRULE:",
                "give the rule's value without the `RRULE:` prefix",
            ));
        }
        if text.is_empty() {
            return Err(rule_error("FREQ", "the rule is empty; FREQ is required"));
        }
        let mut rule = RecurrenceRule {
            text: String::new(),
            dtstart,
            dtstart_local: local_seconds(dtstart),
            freq: Frequency::Daily,
            interval: 1,
            by_month: 0,
            by_month_day: Vec::new(),
            by_day: Vec::new(),
            by_set_pos: Vec::new(),
            by_hour: Vec::new(),
            by_minute: Vec::new(),
            count: None,
            until: None,
            wkst: 0,
            start: StartParts::of(local_seconds(dtstart)),
        };
        let mut seen: Vec<String> = Vec::new();
        let mut freq = None;
        for part in text.split(';') {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| rule_error(part, "expected NAME=VALUE"))?;
            let name = name.trim().to_ascii_uppercase();
            let value = value.trim();
            if seen.contains(&name) {
                return Err(rule_error(&name, "appears more than once"));
            }
            if value.is_empty() {
                return Err(rule_error(&name, "has no value"));
            }
            seen.push(name.clone());
            match name.as_str() {
                "FREQ" => {
                    freq = Some(match value.to_ascii_uppercase().as_str() {
                        "DAILY" => Frequency::Daily,
                        "WEEKLY" => Frequency::Weekly,
                        "MONTHLY" => Frequency::Monthly,
                        "YEARLY" => Frequency::Yearly,
                        "SECONDLY" | "MINUTELY" | "HOURLY" => {
                            return Err(rule_error(
                                "FREQ",
                                format!("{value} is not supported; use DAILY with BYHOUR/BYMINUTE"),
                            ));
                        }
                        _ => {
                            return Err(rule_error("FREQ", format!("unknown frequency `{value}`")));
                        }
                    })
                }
                "INTERVAL" => {
                    rule.interval =
                        parse_int_in(value, 1, MAX_INTERVAL as i32, false).ok_or_else(|| {
                            rule_error("INTERVAL", format!("must be 1..={MAX_INTERVAL}"))
                        })? as u32;
                }
                "COUNT" => {
                    rule.count = Some(
                        parse_int_in(value, 1, MAX_COUNT as i32, false).ok_or_else(|| {
                            rule_error("COUNT", format!("must be 1..={MAX_COUNT}"))
                        })? as u32,
                    );
                }
                "UNTIL" => {
                    rule.until = Some(parse_until(value).ok_or_else(|| {
                        rule_error(
                            "UNTIL",
                            "expected YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ",
                        )
                    })?);
                }
                "BYMONTH" => {
                    for m in parse_list(
                        "BYMONTH",
                        value,
                        |s| parse_int_in(s, 1, 12, false),
                        "a month 1..=12",
                    )? {
                        rule.by_month |= 1 << m;
                    }
                }
                "BYMONTHDAY" => {
                    rule.by_month_day = parse_list(
                        "BYMONTHDAY",
                        value,
                        |s| parse_int_in(s, -31, 31, false).map(|n| n as i8),
                        "a day -31..=-1 or 1..=31",
                    )?;
                }
                "BYDAY" => {
                    rule.by_day = parse_list(
                        "BYDAY",
                        value,
                        |s| {
                            let split = s.len().checked_sub(2)?;
                            let weekday = parse_weekday(s.get(split..)?)?;
                            let ord = s.get(..split)?;
                            let ordinal = if ord.is_empty() {
                                None
                            } else {
                                Some(parse_int_in(ord, -53, 53, false)? as i16)
                            };
                            Some(ByDay { ordinal, weekday })
                        },
                        "a weekday such as MO, 1MO or -1FR",
                    )?;
                }
                "BYSETPOS" => {
                    rule.by_set_pos = parse_list(
                        "BYSETPOS",
                        value,
                        |s| parse_int_in(s, -366, 366, false).map(|n| n as i16),
                        "a position -366..=-1 or 1..=366",
                    )?;
                }
                "BYHOUR" => {
                    rule.by_hour = parse_list(
                        "BYHOUR",
                        value,
                        |s| parse_int_in(s, 0, 23, true).map(|n| n as u8),
                        "an hour 0..=23",
                    )?;
                }
                "BYMINUTE" => {
                    rule.by_minute = parse_list(
                        "BYMINUTE",
                        value,
                        |s| parse_int_in(s, 0, 59, true).map(|n| n as u8),
                        "a minute 0..=59",
                    )?;
                }
                "WKST" => {
                    rule.wkst = parse_weekday(value).ok_or_else(|| {
                        rule_error("WKST", format!("`{value}` is not a weekday (MO..SU)"))
                    })?;
                }
                "BYSECOND" | "BYYEARDAY" | "BYWEEKNO" | "BYEASTER" | "RSCALE" | "SKIP" => {
                    return Err(rule_error(&name, "is not supported"));
                }
                _ => return Err(rule_error(&name, "is not a recurrence rule part")),
            }
        }
        rule.freq = freq.ok_or_else(|| rule_error("FREQ", "is required"))?;
        rule.validate_combination()?;
        rule.by_hour.sort_unstable();
        rule.by_hour.dedup();
        rule.by_minute.sort_unstable();
        rule.by_minute.dedup();
        rule.by_set_pos.sort_unstable();
        rule.by_set_pos.dedup();
        rule.text = rule.canonical_text();
        Ok(rule)
    }

    fn validate_combination(&self) -> Result<(), ValidationError> {
        if self.count.is_some() && self.until.is_some() {
            return Err(rule_error("COUNT", "must not be combined with UNTIL"));
        }
        let has_ordinal = self.by_day.iter().any(|d| d.ordinal.is_some());
        match self.freq {
            Frequency::Daily | Frequency::Weekly if has_ordinal => {
                return Err(rule_error(
                    "BYDAY",
                    "ordinals such as 1MO are only allowed with FREQ=MONTHLY or YEARLY",
                ));
            }
            Frequency::Weekly if !self.by_month_day.is_empty() => {
                return Err(rule_error("BYMONTHDAY", "is not allowed with FREQ=WEEKLY"));
            }
            Frequency::Monthly
                if self
                    .by_day
                    .iter()
                    .any(|d| d.ordinal.is_some_and(|o| o.abs() > 5)) =>
            {
                return Err(rule_error(
                    "BYDAY",
                    "ordinals must be within -5..=5 with FREQ=MONTHLY",
                ));
            }
            Frequency::Yearly
                if self.by_month != 0
                    && self
                        .by_day
                        .iter()
                        .any(|d| d.ordinal.is_some_and(|o| o.abs() > 5)) =>
            {
                return Err(rule_error(
                    "BYDAY",
                    "ordinals must be within -5..=5 when BYMONTH is given",
                ));
            }
            _ => {}
        }
        if !self.by_set_pos.is_empty()
            && self.by_month == 0
            && self.by_month_day.is_empty()
            && self.by_day.is_empty()
            && self.by_hour.is_empty()
            && self.by_minute.is_empty()
        {
            return Err(rule_error(
                "BYSETPOS",
                "needs another BYxxx part to select from",
            ));
        }
        if let Some(Until::Local(until)) = self.until
            && until < self.dtstart
        {
            return Err(rule_error("UNTIL", "is before DTSTART"));
        }
        Ok(())
    }

    fn canonical_text(&self) -> String {
        let freq = match self.freq {
            Frequency::Daily => "DAILY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Yearly => "YEARLY",
        };
        let mut parts = vec![format!("FREQ={freq}")];
        let join = |v: Vec<String>| v.join(",");
        if self.interval != 1 {
            parts.push(format!("INTERVAL={}", self.interval));
        }
        if self.by_month != 0 {
            parts.push(format!(
                "BYMONTH={}",
                join(
                    (1..=12)
                        .filter(|m| self.by_month & (1 << m) != 0)
                        .map(|m| m.to_string())
                        .collect()
                )
            ));
        }
        if !self.by_month_day.is_empty() {
            parts.push(format!(
                "BYMONTHDAY={}",
                join(self.by_month_day.iter().map(i8::to_string).collect())
            ));
        }
        if !self.by_day.is_empty() {
            let days = self
                .by_day
                .iter()
                .map(|d| {
                    let ord = d.ordinal.map(|o| o.to_string()).unwrap_or_default();
                    format!("{ord}{}", WEEKDAYS[d.weekday as usize])
                })
                .collect();
            parts.push(format!("BYDAY={}", join(days)));
        }
        if !self.by_hour.is_empty() {
            parts.push(format!(
                "BYHOUR={}",
                join(self.by_hour.iter().map(u8::to_string).collect())
            ));
        }
        if !self.by_minute.is_empty() {
            parts.push(format!(
                "BYMINUTE={}",
                join(self.by_minute.iter().map(u8::to_string).collect())
            ));
        }
        if !self.by_set_pos.is_empty() {
            parts.push(format!(
                "BYSETPOS={}",
                join(self.by_set_pos.iter().map(i16::to_string).collect())
            ));
        }
        if let Some(count) = self.count {
            parts.push(format!("COUNT={count}"));
        }
        match self.until {
            Some(Until::Utc(ts)) => parts.push(format!("UNTIL={}", ts.strftime("%Y%m%dT%H%M%SZ"))),
            Some(Until::Local(dt)) => parts.push(format!("UNTIL={}", dt.strftime("%Y%m%dT%H%M%S"))),
            None => {}
        }
        if self.wkst != 0 {
            parts.push(format!("WKST={}", WEEKDAYS[self.wkst as usize]));
        }
        parts.join(";")
    }

    /// The rule in canonical form (upper-case, parts in a fixed order).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The local `DTSTART`.
    pub fn dtstart(&self) -> DateTime {
        self.dtstart
    }

    /// The rule's frequency.
    pub fn frequency(&self) -> Frequency {
        self.freq
    }

    /// The `COUNT` limit, if any.
    pub fn count(&self) -> Option<u32> {
        self.count
    }

    /// The `UNTIL` limit, if any.
    pub fn until(&self) -> Option<Until> {
        self.until
    }

    /// The most wall times the rule yields on one day: its BYHOUR values
    /// times its BYMINUTE values (DTSTART's hour and minute stand in for a
    /// part left out). No sub-daily frequency and no BYSECOND is accepted,
    /// so one rule never rings twice in the same minute.
    pub fn wall_times_per_day(&self) -> u32 {
        let n = |len: usize| u32::try_from(len.max(1)).unwrap_or(u32::MAX);
        n(self.by_hour.len()).saturating_mul(n(self.by_minute.len()))
    }

    /// Whether the rule produces at least one occurrence. Walks at most one
    /// full 400-year Gregorian cycle of periods, after which the calendar, and
    /// so the rule's pattern, repeats.
    fn fires_at_all(&self) -> bool {
        let mut cursor = RuleCursor::new(self, i64::MIN);
        // A UTC UNTIL is judged with two days of slack here (more than any
        // offset) because the zone is not known yet; the engine applies it
        // exactly, and `Alarm::create` re-checks in the alarm's zone.
        let mut budget = PARSE_BUDGET;
        cursor.next_local(&mut budget, self.cycle_end()).is_some()
    }

    /// Local seconds beyond which the rule repeats what it already did:
    /// 400 × INTERVAL years after DTSTART, capped at the end of year 9999.
    fn cycle_end(&self) -> i64 {
        let year = (i64::from(self.dtstart.year()) + 400 * i64::from(self.interval)).min(9999);
        i64::from(days_from_civil(year as i32 + 1, 1, 1)) * SECS_PER_DAY
    }
}

/// Keeps only the BYSETPOS positions (1-based, negative from the end) of a
/// sorted period set. Picks are appended after the set, then moved to the
/// front, so the reused buffer needs no allocation.
fn select_positions<T: Copy + Ord>(items: &mut Vec<T>, positions: &[i16]) {
    if positions.is_empty() {
        return;
    }
    let n = items.len();
    for &pos in positions {
        let idx = if pos > 0 {
            i64::from(pos) - 1
        } else {
            n as i64 + i64::from(pos)
        };
        if (0..n as i64).contains(&idx) {
            items.push(items[idx as usize]);
        }
    }
    items.drain(..n);
    items.sort_unstable();
    items.dedup();
}

/// The end of every expansion: 10000-01-01T00:00 local, past jiff's range.
pub(crate) const END_OF_TIME: i64 = 253_402_300_800;

/// Walks one rule's occurrences in increasing local time.
pub(crate) struct RuleCursor<'r> {
    rule: &'r RecurrenceRule,
    period: i64,
    buf: Vec<i64>,
    days: Vec<i32>,
    pos: usize,
    emitted: u32,
    done: bool,
    /// UNTIL in local seconds, when it is local; a UTC UNTIL is checked by
    /// the engine after resolution (plus a day's slack here to stop walking).
    until_local: i64,
}

impl<'r> RuleCursor<'r> {
    /// Starts at the first period that can contain a wall time at or after
    /// `from_local`. COUNT rules always start at DTSTART, since the count
    /// runs from there.
    pub(crate) fn new(rule: &'r RecurrenceRule, from_local: i64) -> Self {
        let period = if rule.count.is_some() || from_local <= rule.dtstart_local {
            0
        } else {
            rule.period_containing(from_local)
        };
        let until_local = match rule.until {
            None => END_OF_TIME,
            Some(Until::Local(dt)) => local_seconds(dt),
            Some(Until::Utc(ts)) => ts.as_second() + 2 * SECS_PER_DAY,
        };
        Self {
            rule,
            period,
            buf: Vec::with_capacity(8),
            days: Vec::with_capacity(8),
            pos: 0,
            emitted: 0,
            done: false,
            until_local,
        }
    }

    /// The next wall time (local seconds), or `None` at the rule's end, at
    /// `limit`, or when `budget` (periods examined) runs out.
    pub(crate) fn next_local(&mut self, budget: &mut u64, limit: i64) -> Option<i64> {
        loop {
            if self.done {
                return None;
            }
            if self.pos < self.buf.len() {
                let t = self.buf[self.pos];
                self.pos += 1;
                if t > self.until_local || t >= limit {
                    self.done = true;
                    return None;
                }
                if let Some(count) = self.rule.count {
                    if self.emitted >= count {
                        self.done = true;
                        return None;
                    }
                    self.emitted += 1;
                }
                return Some(t);
            }
            if *budget == 0 {
                self.done = true;
                return None;
            }
            *budget -= 1;
            self.buf.clear();
            self.pos = 0;
            match self
                .rule
                .expand_period(self.period, &mut self.days, &mut self.buf)
            {
                Some(period_start) if period_start < limit && period_start <= self.until_local => {
                    // Every wall time the period produced costs a unit too:
                    // a period is a year of days times BYHOUR × BYMINUTE.
                    *budget = budget.saturating_sub(self.buf.len() as u64);
                }
                _ => {
                    self.done = true;
                    return None;
                }
            }
            self.period += 1;
        }
    }
}

impl RecurrenceRule {
    /// The index of the period (relative to DTSTART's) that contains `local`.
    fn period_containing(&self, local: i64) -> i64 {
        let day = local.div_euclid(SECS_PER_DAY) as i32;
        let start_day = self.dtstart_local.div_euclid(SECS_PER_DAY) as i32;
        let interval = i64::from(self.interval);
        let raw = match self.freq {
            Frequency::Daily => i64::from(day - start_day),
            Frequency::Weekly => {
                let week = |d: i32| {
                    let offset = (i32::from(weekday(d)) - i32::from(self.wkst)).rem_euclid(7);
                    i64::from((d - offset).div_euclid(7))
                };
                week(day) - week(start_day)
            }
            Frequency::Monthly => {
                let (y, m, _) = civil_from_days(day);
                let (y0, m0) = (self.start.year, self.start.month);
                (i64::from(y) * 12 + i64::from(m)) - (i64::from(y0) * 12 + i64::from(m0))
            }
            Frequency::Yearly => {
                let (y, _, _) = civil_from_days(day);
                i64::from(y) - i64::from(self.dtstart.year())
            }
        };
        raw.div_euclid(interval).max(0)
    }

    /// Expands period `index` into `out` (sorted local seconds, already
    /// filtered by DTSTART) and returns the period's first local second, or
    /// `None` past the supported calendar.
    fn expand_period(&self, index: i64, days: &mut Vec<i32>, out: &mut Vec<i64>) -> Option<i64> {
        let step = index.checked_mul(i64::from(self.interval))?;
        let StartParts {
            day: start_day,
            year: y0,
            month: m0,
            day_of_month: d0,
            ..
        } = self.start;
        let days = &mut *days;
        days.clear();
        let period_start_day: i64 = match self.freq {
            Frequency::Daily => {
                let day = i64::from(start_day) + step;
                if day * SECS_PER_DAY >= END_OF_TIME {
                    return None;
                }
                let day = day as i32;
                if self.day_passes_limits(day) {
                    days.push(day);
                }
                i64::from(day)
            }
            Frequency::Weekly => {
                let offset = (i32::from(weekday(start_day)) - i32::from(self.wkst)).rem_euclid(7);
                let week_start = i64::from(start_day - offset) + step * 7;
                if week_start * SECS_PER_DAY >= END_OF_TIME {
                    return None;
                }
                let week_start = week_start as i32;
                let mask = self.weekday_mask().unwrap_or(1 << weekday(start_day));
                let first_wd = weekday(week_start);
                for i in 0..7u8 {
                    let wd = (first_wd + i) % 7;
                    let day = week_start + i32::from(i);
                    if mask & (1 << wd) != 0 && self.month_allowed(day) {
                        days.push(day);
                    }
                }
                i64::from(week_start)
            }
            Frequency::Monthly => {
                let months = i64::from(y0) * 12 + i64::from(m0) - 1 + step;
                let (y, m) = (months.div_euclid(12), months.rem_euclid(12) as u8 + 1);
                if y > 9999 {
                    return None;
                }
                let y = y as i32;
                if self.by_month == 0 || self.by_month & (1 << m) != 0 {
                    self.month_days(y, m, d0, true, days);
                }
                i64::from(days_from_civil(y, m, 1))
            }
            Frequency::Yearly => {
                let y = i64::from(y0) + step;
                if y > 9999 {
                    return None;
                }
                let y = y as i32;
                self.year_days(y, m0, d0, days);
                i64::from(days_from_civil(y, 1, 1))
            }
        };
        // BYSETPOS picks from the period's sorted date-times. With one time
        // per day, positions among days are positions among date-times, so
        // picking first avoids expanding days that are thrown away.
        let one_time_a_day = self.by_hour.len() <= 1 && self.by_minute.len() <= 1;
        if one_time_a_day {
            select_positions(days, &self.by_set_pos);
            self.times_of(days, out);
        } else {
            self.times_of(days, out);
            select_positions(out, &self.by_set_pos);
        }
        out.retain(|&t| t >= self.dtstart_local);
        Some(period_start_day * SECS_PER_DAY)
    }

    /// BYDAY weekdays as a bitmask (Monday = bit 0), ignoring ordinals.
    fn weekday_mask(&self) -> Option<u8> {
        (!self.by_day.is_empty()).then(|| self.by_day.iter().fold(0u8, |m, d| m | (1 << d.weekday)))
    }

    fn month_allowed(&self, day: i32) -> bool {
        self.by_month == 0 || self.by_month & (1 << civil_from_days(day).1) != 0
    }

    /// DAILY's limits: BYMONTH, BYMONTHDAY and BYDAY each filter the day.
    fn day_passes_limits(&self, day: i32) -> bool {
        if self.by_month == 0 && self.by_month_day.is_empty() && self.by_day.is_empty() {
            return true;
        }
        let (y, m, d) = civil_from_days(day);
        if self.by_month != 0 && self.by_month & (1 << m) == 0 {
            return false;
        }
        if !self.by_month_day.is_empty() {
            let dim = days_in_month(y, m) as i8;
            let d = d as i8;
            if !self
                .by_month_day
                .iter()
                .any(|&md| md == d || md == d - dim - 1)
            {
                return false;
            }
        }
        self.weekday_mask()
            .is_none_or(|mask| mask & (1 << weekday(day)) != 0)
    }

    /// The days of month `m` selected by BYMONTHDAY/BYDAY (ordinals count
    /// within the month), or DTSTART's day of month when neither is given.
    fn month_days(&self, y: i32, m: u8, default_day: u8, use_default: bool, days: &mut Vec<i32>) {
        let first = days_from_civil(y, m, 1);
        let dim = days_in_month(y, m);
        let mut mask: u32 = 0;
        if !self.by_month_day.is_empty() {
            mask = self.month_day_mask(dim);
            if !self.by_day.is_empty() {
                mask &= self.month_by_day_mask(first, dim);
            }
        } else if !self.by_day.is_empty() {
            mask = self.month_by_day_mask(first, dim);
        } else if use_default && default_day <= dim {
            mask |= 1 << default_day;
        }
        while mask != 0 {
            let d = mask.trailing_zeros() as i32;
            mask &= mask - 1;
            days.push(first + d - 1);
        }
    }

    /// BYMONTHDAY within a month of `dim` days as a bitmask (bit d = day d).
    fn month_day_mask(&self, dim: u8) -> u32 {
        let dim = i32::from(dim);
        self.by_month_day.iter().fold(0u32, |mask, &md| {
            let d = if md > 0 {
                i32::from(md)
            } else {
                dim + 1 + i32::from(md)
            };
            if (1..=dim).contains(&d) {
                mask | (1 << d)
            } else {
                mask
            }
        })
    }

    /// BYDAY within one month as a bitmask of days (bit d = day d): computed
    /// from the month's first and last weekday, not by testing every day.
    fn month_by_day_mask(&self, first: i32, dim: u8) -> u32 {
        let dim = i32::from(dim);
        let first_wd = i32::from(weekday(first));
        let last_wd = i32::from(weekday(first + dim - 1));
        let mut mask = 0u32;
        for bd in &self.by_day {
            let wd = i32::from(bd.weekday);
            let first_hit = 1 + (wd - first_wd).rem_euclid(7);
            match bd.ordinal {
                None => {
                    let mut d = first_hit;
                    while d <= dim {
                        mask |= 1 << d;
                        d += 7;
                    }
                }
                Some(n) if n > 0 => {
                    let d = first_hit + 7 * (i32::from(n) - 1);
                    if d <= dim {
                        mask |= 1 << d;
                    }
                }
                Some(n) => {
                    let last_hit = dim - (last_wd - wd).rem_euclid(7);
                    let d = last_hit - 7 * (-i32::from(n) - 1);
                    if d >= 1 {
                        mask |= 1 << d;
                    }
                }
            }
        }
        mask
    }

    /// Whether day `d` of a month (or year) starting at day number `first`
    /// with `len` days matches any BYDAY entry, ordinals counted within it.
    fn by_day_matches(&self, first: i32, len: i32, d: i32) -> bool {
        let wd = weekday(first + d - 1);
        self.by_day.iter().any(|bd| {
            bd.weekday == wd
                && match bd.ordinal {
                    None => true,
                    Some(n) if n > 0 => (d - 1) / 7 + 1 == i32::from(n),
                    Some(n) => (len - d) / 7 + 1 == i32::from(-n),
                }
        })
    }

    fn year_days(&self, y: i32, m0: u8, d0: u8, days: &mut Vec<i32>) {
        let first = days_from_civil(y, 1, 1);
        let len = days_in_year(y);
        if self.by_month != 0 {
            // With BYMONTH, BYDAY ordinals count within each month, and a rule
            // with neither BYMONTHDAY nor BYDAY uses DTSTART's day of month.
            for m in (1..=12u8).filter(|m| self.by_month & (1 << m) != 0) {
                self.month_days(y, m, d0, true, days);
            }
        } else if !self.by_month_day.is_empty() {
            // Without BYMONTH, BYMONTHDAY applies to every month and BYDAY
            // (ordinals counted within the year, RFC 5545) limits the days.
            for m in 1..=12u8 {
                let month_first = days_from_civil(y, m, 1);
                let mut mask = self.month_day_mask(days_in_month(y, m));
                while mask != 0 {
                    let d = mask.trailing_zeros() as i32;
                    mask &= mask - 1;
                    let day = month_first + d - 1;
                    if self.by_day.is_empty() || self.by_day_matches(first, len, day - first + 1) {
                        days.push(day);
                    }
                }
            }
        } else if !self.by_day.is_empty() {
            for d in 1..=len {
                if self.by_day_matches(first, len, d) {
                    days.push(first + d - 1);
                }
            }
        } else if d0 <= days_in_month(y, m0) {
            days.push(days_from_civil(y, m0, d0));
        }
    }

    /// Every selected day at every BYHOUR × BYMINUTE (or DTSTART's), sorted.
    fn times_of(&self, days: &[i32], out: &mut Vec<i64>) {
        let (h0, mi0, s0) = (self.start.hour, self.start.minute, self.start.second);
        let hours: &[u8] = if self.by_hour.is_empty() {
            std::slice::from_ref(&h0)
        } else {
            &self.by_hour
        };
        let minutes: &[u8] = if self.by_minute.is_empty() {
            std::slice::from_ref(&mi0)
        } else {
            &self.by_minute
        };
        for &day in days {
            let base = i64::from(day) * SECS_PER_DAY + s0;
            for &h in hours {
                for &mi in minutes {
                    out.push(base + i64::from(h) * 3600 + i64::from(mi) * 60);
                }
            }
        }
    }
}
