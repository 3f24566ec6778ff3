//! Property tests: ordering, exactly-once per scheduled wall time, suppression and delays, and rule parsing.

mod common;

use std::collections::BTreeSet;

use alarm_domain::ids::{ExceptionPeriodId, HolidayId, UserId};
use alarm_domain::jiff::civil::Date;
use alarm_domain::jiff::{SignedDuration, Span, Timestamp};
use alarm_domain::model::{
    Country, DelayMinutes, ExceptionKind, ExceptionPeriod, Holiday, HolidayDate, HolidayName,
    HolidayPreference,
};
use alarm_domain::schedule::{
    Calendar, OccurrenceQuery, RecurrenceRule, Schedule, SuppressionReason, WallTime, WeekdaySet,
    occurrences,
};
use common::*;
use proptest::prelude::*;

/// Zones with gaps, folds, skipped midnights, half-hour and quarter-hour
/// offsets, historic rule changes and none at all.
const ZONES: &[&str] = &[
    "America/New_York",
    "Europe/London",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Asia/Tehran",
    "Africa/Casablanca",
    "Europe/Berlin",
    "Asia/Kolkata",
    "UTC",
];

fn zone_name() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(ZONES)
}

/// Any instant from 1900 to 2200.
fn instant() -> impl Strategy<Value = Timestamp> {
    (-2_208_988_800i64..7_258_118_400i64).prop_map(|s| Timestamp::from_second(s).unwrap())
}

fn wall_time() -> impl Strategy<Value = WallTime> {
    // Whole minutes, with a bias towards the hours where DST changes happen.
    (prop_oneof![0u8..4, 0u8..24], 0u8..60)
        .prop_map(|(h, m)| WallTime::parse(&format!("{h:02}:{m:02}")).unwrap())
}

fn simple_schedule() -> impl Strategy<Value = Schedule> {
    prop_oneof![
        wall_time().prop_map(|time| Schedule::Daily { time }),
        (1u8..128, wall_time()).prop_map(|(bits, time)| {
            let names: Vec<&str> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .into_iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, n)| n)
                .collect();
            Schedule::Weekly {
                days: WeekdaySet::parse(&names).unwrap(),
                time,
            }
        }),
    ]
}

fn local_date(zone: &str, at: Timestamp) -> Date {
    at.to_zoned(common::zone(zone)).date()
}

fn days(d: Date, n: i64) -> Date {
    d.checked_add(Span::new().days(n)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn instants_strictly_increase_after_the_query(
        zone in zone_name(),
        schedules in proptest::collection::vec(simple_schedule(), 1..5),
        after in instant(),
    ) {
        let q = OccurrenceQuery { after, limit: 60, include_suppressed: false };
        let preview = occurrences(&schedules, &common::zone(zone), true, &Calendar::default(), &q);
        prop_assert!(preview.complete);
        prop_assert_eq!(preview.items.len(), 60);
        prop_assert!(preview.items[0].fire_at() > after);
        for w in preview.items.windows(2) {
            prop_assert!(w[0].fire_at() < w[1].fire_at(), "{} then {}", w[0].fire_at(), w[1].fire_at());
        }
    }

    #[test]
    fn each_scheduled_wall_time_rings_exactly_once(
        zone in zone_name(),
        times in proptest::collection::btree_set(wall_time(), 1..4),
        after in instant(),
    ) {
        let times: Vec<WallTime> = times.into_iter().collect();
        let schedules: Vec<Schedule> = times.iter().map(|&time| Schedule::Daily { time }).collect();
        let tz = common::zone(zone);
        let q = OccurrenceQuery { after, limit: 90, include_suppressed: false };
        let items = occurrences(&schedules, &tz, true, &Calendar::default(), &q).items;
        let (lo, hi) = (items[0].fire_at(), items[items.len() - 1].fire_at());
        // The oracle: jiff's own compatible resolution of every (date, time).
        let first = days(local_date(zone, after), -2);
        for (i, &time) in times.iter().enumerate() {
            let expected: BTreeSet<Timestamp> = (0..40)
                .map(|n| compatible(days(first, n), time, &tz))
                .filter(|at| *at > after && (lo..=hi).contains(at))
                .collect();
            let got: BTreeSet<Timestamp> = items
                .iter()
                .filter(|o| o.schedules().contains(i))
                .map(|o| o.fire_at())
                .filter(|at| *at <= expected.last().copied().unwrap_or(lo))
                .collect();
            prop_assert_eq!(&got, &expected, "schedule {} at {}", i, time);
        }
    }

    #[test]
    fn a_daily_alarm_rings_on_consecutive_local_dates(
        zone in zone_name(),
        time in wall_time(),
        after in instant(),
    ) {
        let tz = common::zone(zone);
        let q = OccurrenceQuery { after, limit: 50, include_suppressed: false };
        let items = occurrences(&[Schedule::Daily { time }], &tz, true, &Calendar::default(), &q).items;
        for w in items.windows(2) {
            let next = days(w[0].local().date(), 1);
            // A merge can only happen in a zone that skips a whole day.
            prop_assert_eq!(w[1].local().date(), next);
        }
        for o in &items {
            prop_assert_eq!(o.fire_at(), compatible(o.local().date(), time, &tz));
        }
        // Nothing between `after` and the first item was skipped.
        let d0 = items[0].local().date();
        prop_assert!(compatible(days(d0, -1), time, &tz) <= after);
    }

    #[test]
    fn nothing_rings_on_an_exception_date(
        zone in zone_name(),
        schedules in proptest::collection::vec(simple_schedule(), 1..3),
        after in instant(),
        offset in 0i64..20,
        len in 0i64..30,
    ) {
        let start = days(local_date(zone, after), offset);
        let end = days(start, len);
        let period = ExceptionPeriod::new(ExceptionPeriodId::generate(), UserId::generate(), "Off", ExceptionKind::Vacation, start, end).unwrap();
        let calendar = Calendar::new([&period], []);
        let tz = common::zone(zone);
        let active = occurrences(&schedules, &tz, true, &calendar, &OccurrenceQuery { after, limit: 80, include_suppressed: false });
        for o in &active.items {
            prop_assert!(!period.contains(o.local().date()), "{} rang inside {start}..={end}", o.local());
        }
        let all = occurrences(&schedules, &tz, true, &calendar, &OccurrenceQuery { after, limit: 80, include_suppressed: true });
        for o in &all.items {
            let inside = period.contains(o.local().date());
            prop_assert_eq!(inside, matches!(o.suppressed(), Some(SuppressionReason::ExceptionPeriod { .. })));
        }
    }

    #[test]
    fn holiday_skip_and_delay_are_honoured(
        zone in zone_name(),
        time in wall_time(),
        after in instant(),
        offset in 1i64..40,
        delay in prop_oneof![Just(0u32), 1u32..=1440],
    ) {
        let day = days(local_date(zone, after), offset);
        let when = HolidayDate::recurring(day.month() as u8, day.day() as u8).unwrap();
        let holiday = Holiday::new(HolidayId::generate(), HolidayName::parse("H").unwrap(), when, Country::parse("BR").unwrap(), None, false);
        let pref = if delay == 0 { HolidayPreference::Skip } else { HolidayPreference::Delay(DelayMinutes::new(delay).unwrap()) };
        let calendar = Calendar::new([], [(&holiday, pref)]);
        let tz = common::zone(zone);
        let items = occurrences(&[Schedule::Daily { time }], &tz, true, &calendar, &OccurrenceQuery { after, limit: 60, include_suppressed: false }).items;
        let nominal = compatible(day, time, &tz);
        let on_day = items.iter().find(|o| o.local().date() == day);
        if delay == 0 {
            prop_assert!(on_day.is_none(), "skipped holiday rang");
        } else {
            let delayed = nominal + SignedDuration::from_mins(i64::from(delay));
            match on_day {
                Some(o) => prop_assert_eq!(o.fire_at(), delayed),
                None => {
                    // It reached the next occurrence and merged into it.
                    let next = items.iter().find(|o| o.fire_at() > nominal).unwrap();
                    prop_assert!(next.adjustment().absorbed_delayed);
                    prop_assert!(delayed >= next.fire_at());
                }
            }
        }
        for w in items.windows(2) {
            prop_assert!(w[0].fire_at() < w[1].fire_at());
        }
    }
}

#[test]
fn any_parsed_rule_fires_or_is_rejected() {
    let inputs = (rule_case(), 1990i16..2100, 1i8..13, 1i8..29);
    check_counted(
        "any_parsed_rule_fires_or_is_rejected",
        file!(),
        512,
        inputs,
        |(case, year, month, day)| {
            let rrule =
                case.text_local(alarm_domain::jiff::civil::date(year, month, day).at(7, 30, 0, 0));
            let dtstart = format!("{year:04}-{month:02}-{day:02}T07:30");
            // A rejected rule is half of the property, but a generator
            // that only made rejected rules would check nothing else.
            let Ok(rule) = RecurrenceRule::parse(&rrule, &dtstart) else {
                return Ok(Case::SetAside);
            };
            let start = rule
                .dtstart()
                .to_zoned(alarm_domain::jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp();
            let q = OccurrenceQuery {
                after: start - SignedDuration::from_secs(1),
                limit: 20,
                include_suppressed: false,
            };
            let schedules = [Schedule::Rule(Box::new(rule.clone()))];
            let preview = occurrences(
                &schedules,
                &common::zone("UTC"),
                true,
                &Calendar::default(),
                &q,
            );
            prop_assert!(
                !preview.items.is_empty(),
                "{rrule} from {dtstart} was accepted but never fires"
            );
            for o in &preview.items {
                prop_assert!(o.local() >= rule.dtstart());
            }
            if let Some(count) = rule.count() {
                prop_assert!(preview.items.len() <= count as usize);
            }
            Ok(Case::Compared)
        },
    );
}
