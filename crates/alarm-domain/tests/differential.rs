//! Differential test: in UTC, our rule expansion must match the `rrule` crate, occurrence for occurrence.

mod common;

use alarm_domain::jiff::SignedDuration;
use alarm_domain::schedule::{Calendar, OccurrenceQuery, RecurrenceRule, Schedule, occurrences};
use common::rule_text;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn rules_expand_like_the_rrule_crate(rrule in rule_text(), year in 1990i32..2060, month in 1u8..13, day in 1u8..29, hour in 0u8..24) {
        // The crate intersects plain and ordinal weekdays in one BYDAY
        // (`MO,-1MO` gives only last Mondays); RFC 5545 makes them a union,
        // as we do. Such lists are compared in tests/schedules.rs instead.
        if mixes_plain_and_ordinal_weekdays(&rrule) {
            return Ok(());
        }
        // BYSETPOS picks from a period's whole set, then DTSTART bounds the
        // result (python-dateutil does the same); the crate bounds first, so
        // a first period that starts before DTSTART differs. A DTSTART at the
        // very start of every kind of period (Monday 2024-01-01 00:00)
        // leaves nothing before it to disagree about.
        let (year, month, day, hour, minute) = if rrule.contains("BYSETPOS") {
            (2024, 1, 1, 0, 0)
        } else {
            (year, month, day, hour, 30)
        };
        let dtstart = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}");
        let Ok(rule) = RecurrenceRule::parse(&rrule, &dtstart) else {
            return Ok(());
        };
        let text = format!("DTSTART:{year:04}{month:02}{day:02}T{hour:02}{minute:02}00Z\nRRULE:{rrule}");
        let Ok(set) = text.parse::<rrule::RRuleSet>() else {
            return Ok(());
        };
        let theirs: Vec<i64> = set.all(25).dates.iter().map(|d| d.timestamp()).collect();
        let start = rule.dtstart().to_zoned(alarm_domain::jiff::tz::TimeZone::UTC).unwrap().timestamp();
        let q = OccurrenceQuery { after: start - SignedDuration::from_secs(1), limit: 25, include_suppressed: false };
        let schedules = [Schedule::Rule(Box::new(rule))];
        let ours: Vec<i64> = occurrences(&schedules, &common::zone("UTC"), true, &Calendar::default(), &q)
            .items
            .iter()
            .map(|o| o.fire_at().as_second())
            .collect();
        prop_assert_eq!(ours, theirs, "{} from {}", rrule, dtstart);
    }
}

fn mixes_plain_and_ordinal_weekdays(rule: &str) -> bool {
    let Some(by_day) = rule.split(';').find_map(|p| p.strip_prefix("BYDAY=")) else {
        return false;
    };
    let ordinal = |d: &&str| d.len() > 2;
    let items: Vec<&str> = by_day.split(',').collect();
    items.iter().any(ordinal) && !items.iter().all(ordinal)
}
