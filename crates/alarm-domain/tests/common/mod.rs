//! Helpers shared by the schedule test files: zones from the bundled database and compact previews.
#![allow(dead_code, unreachable_pub)]

use alarm_domain::jiff::tz::{TimeZone, TimeZoneDatabase};
use alarm_domain::jiff::{Timestamp, civil};
use alarm_domain::schedule::{
    Calendar, Occurrence, OccurrenceQuery, Schedule, WallTime, occurrences,
};
use alarm_domain::tz::TimeZoneName;
use proptest::prelude::*;

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
    Schedule::Rule(Box::new(
        alarm_domain::schedule::RecurrenceRule::parse(rrule, dtstart).expect("valid rule"),
    ))
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

/// Random rules from the supported parts, valid or not.
pub fn rule_text() -> impl Strategy<Value = String> {
    let freq = proptest::sample::select(vec!["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]);
    let wd = proptest::sample::select(vec!["MO", "TU", "WE", "TH", "FR", "SA", "SU"]);
    let by_day = proptest::collection::vec((prop_oneof![Just(0i32), -6i32..7], wd), 0..3);
    let by_month = proptest::collection::vec(1u8..13, 0..3);
    let by_month_day = proptest::collection::vec(prop_oneof![1i32..32, -31i32..0], 0..3);
    let by_set_pos = proptest::collection::vec(prop_oneof![1i32..5, -4i32..0], 0..2);
    let by_hour = proptest::collection::vec(0u8..24, 0..3);
    let end = prop_oneof![
        Just(String::new()),
        (1u32..50).prop_map(|c| format!(";COUNT={c}")),
        (2000i32..2100).prop_map(|y| format!(";UNTIL={y}0601"))
    ];
    (
        freq,
        1u32..5,
        by_day,
        by_month,
        by_month_day,
        by_set_pos,
        by_hour,
        end,
    )
        .prop_map(
            |(freq, interval, by_day, by_month, by_month_day, by_set_pos, by_hour, end)| {
                let mut s = format!("FREQ={freq};INTERVAL={interval}");
                let list = |v: Vec<String>| v.join(",");
                if !by_day.is_empty() {
                    s += &format!(
                        ";BYDAY={}",
                        list(
                            by_day
                                .into_iter()
                                .map(|(o, d)| if o == 0 {
                                    d.to_string()
                                } else {
                                    format!("{o}{d}")
                                })
                                .collect()
                        )
                    );
                }
                if !by_month.is_empty() {
                    s += &format!(
                        ";BYMONTH={}",
                        list(by_month.iter().map(u8::to_string).collect())
                    );
                }
                if !by_month_day.is_empty() {
                    s += &format!(
                        ";BYMONTHDAY={}",
                        list(by_month_day.iter().map(i32::to_string).collect())
                    );
                }
                if !by_set_pos.is_empty() {
                    s += &format!(
                        ";BYSETPOS={}",
                        list(by_set_pos.iter().map(i32::to_string).collect())
                    );
                }
                if !by_hour.is_empty() {
                    s += &format!(
                        ";BYHOUR={}",
                        list(by_hour.iter().map(u8::to_string).collect())
                    );
                }
                s + &end
            },
        )
}
