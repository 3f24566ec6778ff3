//! Helpers shared by the schedule test files: zones from the bundled database and compact previews.
#![allow(dead_code, unreachable_pub)]

use alarm_domain::jiff::tz::{TimeZone, TimeZoneDatabase};
use alarm_domain::jiff::{Timestamp, civil};
use alarm_domain::schedule::{
    Calendar, Occurrence, OccurrenceQuery, Schedule, WallTime, occurrences,
};
use alarm_domain::tz::TimeZoneName;

pub fn db() -> TimeZoneDatabase {
    TimeZoneDatabase::bundled()
}

pub fn zone(name: &str) -> TimeZone {
    TimeZoneName::resolve(name, &db())
        .expect("zone in the bundled database")
        .zone()
        .clone()
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339 instant")
}

pub fn t(s: &str) -> WallTime {
    WallTime::parse(s).expect("wall time")
}

pub fn daily(s: &str) -> Schedule {
    Schedule::Daily { time: t(s) }
}

pub fn rule(rrule: &str, dtstart: &str) -> Schedule {
    Schedule::Rule(
        alarm_domain::schedule::RecurrenceRule::parse(rrule, dtstart).expect("valid rule"),
    )
}

pub fn run(schedules: &[Schedule], zone_name: &str, after: &str, limit: usize) -> Vec<Occurrence> {
    let query = OccurrenceQuery {
        after: ts(after),
        limit,
        include_suppressed: false,
    };
    let preview = occurrences(
        schedules,
        &zone(zone_name),
        true,
        &Calendar::default(),
        &query,
    );
    assert!(preview.complete, "preview must not run out of budget");
    preview.items
}

/// `(nominal local, fire_at UTC)` pairs, as text, for readable tables.
pub fn pairs(items: &[Occurrence]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|o| {
            (
                o.local().strftime("%Y-%m-%d %H:%M").to_string(),
                o.fire_at().strftime("%Y-%m-%dT%H:%MZ").to_string(),
            )
        })
        .collect()
}

/// Local dates only.
pub fn dates(items: &[Occurrence]) -> Vec<String> {
    items.iter().map(|o| o.local().date().to_string()).collect()
}

/// The oracle for one wall time: jiff's own "compatible" resolution.
pub fn compatible(date: civil::Date, time: WallTime, zone: &TimeZone) -> Timestamp {
    date.to_datetime(time.as_civil())
        .to_zoned(zone.clone())
        .expect("in range")
        .timestamp()
}
