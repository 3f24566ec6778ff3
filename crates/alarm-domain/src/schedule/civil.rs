//! Calendar arithmetic on plain day numbers, the engine's hot path.
//!
//! Expanding a rule touches millions of dates in the worst case; doing that on
//! `i32` day numbers (days since 1970-01-01 in the proleptic Gregorian
//! calendar) instead of a general date type keeps each step a few integer
//! operations. Conversions follow Howard Hinnant's `days_from_civil`.

use jiff::civil::{Date, DateTime, Time};

/// Seconds in a civil day. Civil time has no leap seconds and no DST.
pub(crate) const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub(crate) fn days_from_civil(year: i32, month: u8, day: u8) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i32::from(month);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i32::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number.
pub(crate) fn civil_from_days(days: i32) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

/// Weekday of a day number, Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
pub(crate) fn weekday(days: i32) -> u8 {
    (days + 3).rem_euclid(7) as u8
}

/// Whether `year` has a February 29.
pub(crate) fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Number of days in a month.
pub(crate) fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Number of days in a year.
pub(crate) fn days_in_year(year: i32) -> i32 {
    if is_leap(year) { 366 } else { 365 }
}

/// Local "seconds since 1970-01-01T00:00:00" of a civil date-time: a total
/// order on wall times that is cheap to compare and step.
pub(crate) fn local_seconds(dt: DateTime) -> i64 {
    let days = days_from_civil(i32::from(dt.year()), dt.month() as u8, dt.day() as u8);
    i64::from(days) * SECS_PER_DAY + time_seconds(dt.time())
}

/// Seconds since midnight of a wall time.
pub(crate) fn time_seconds(t: Time) -> i64 {
    i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second())
}

/// Day number of a jiff date.
pub(crate) fn day_of(date: Date) -> i32 {
    days_from_civil(i32::from(date.year()), date.month() as u8, date.day() as u8)
}

/// The jiff date of a day number, if it is within jiff's range (years -9999..=9999).
pub(crate) fn date_of(days: i32) -> Option<Date> {
    let (y, m, d) = civil_from_days(days);
    Date::new(i16::try_from(y).ok()?, m as i8, d as i8).ok()
}

/// The jiff date-time of local seconds, if within jiff's range.
pub(crate) fn datetime_of(local: i64) -> Option<DateTime> {
    let days = i32::try_from(local.div_euclid(SECS_PER_DAY)).ok()?;
    let secs = local.rem_euclid(SECS_PER_DAY);
    let date = date_of(days)?;
    let time = Time::new(
        (secs / 3600) as i8,
        ((secs / 60) % 60) as i8,
        (secs % 60) as i8,
        0,
    )
    .ok()?;
    Some(date.to_datetime(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_four_centuries_and_matches_jiff() {
        let start = days_from_civil(1899, 12, 25);
        for days in start..start + 146_097 * 2 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!(d >= 1 && d <= days_in_month(y, m));
        }
        let date = jiff::civil::date(2100, 3, 1);
        assert_eq!(date_of(day_of(date)), Some(date));
        assert_eq!(weekday(day_of(date)), 0, "2100-03-01 is a Monday");
        assert_eq!(weekday(0), 3, "1970-01-01 was a Thursday");
        assert!(!is_leap(2100) && is_leap(2000) && is_leap(2024));
    }

    #[test]
    fn local_seconds_round_trip() {
        let dt = jiff::civil::datetime(2026, 11, 22, 3, 58, 7, 0);
        assert_eq!(datetime_of(local_seconds(dt)), Some(dt));
        let old = jiff::civil::datetime(1900, 1, 1, 0, 0, 0, 0);
        assert_eq!(datetime_of(local_seconds(old)), Some(old));
    }
}
