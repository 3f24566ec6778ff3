//! Exception periods, holiday skip and delay, disabled alarms, and the alarm's own checks.

mod common;

use alarm_domain::error::codes;
use alarm_domain::ids::{AlarmId, ExceptionPeriodId, HolidayId, UserId};
use alarm_domain::jiff::civil::date;
use alarm_domain::model::{
    Alarm, AlarmDraft, AlarmName, ChannelSet, Country, DelayMinutes, Description, EscalationPolicy,
    ExceptionKind, ExceptionPeriod, Holiday, HolidayDate, HolidayName, HolidayPreference,
    Schedules, SnoozePolicy,
};
use alarm_domain::schedule::{Calendar, OccurrenceQuery, Schedule, SuppressionReason, occurrences};
use alarm_domain::tz::TimeZoneName;
use common::*;

fn holiday(name: &str, when: HolidayDate) -> Holiday {
    Holiday::new(
        HolidayId::generate(),
        HolidayName::parse(name).unwrap(),
        when,
        Country::parse("BR").unwrap(),
        None,
        false,
    )
}

fn query(after: &str, limit: usize, include_suppressed: bool) -> OccurrenceQuery {
    OccurrenceQuery {
        after: ts(after),
        limit,
        include_suppressed,
    }
}

#[test]
fn exception_periods_suppress_by_local_date() {
    let period = ExceptionPeriod::new(
        ExceptionPeriodId::generate(),
        UserId::generate(),
        "Beach",
        ExceptionKind::Vacation,
        date(2026, 1, 5),
        date(2026, 1, 7),
    )
    .unwrap();
    let calendar = Calendar::new([&period], []);
    // 23:30 in São Paulo is already the next UTC day: the local date decides.
    let zone = zone("America/Sao_Paulo");
    let schedules = [daily("23:30")];
    let active = occurrences(
        &schedules,
        &zone,
        true,
        &calendar,
        &query("2026-01-04T12:00:00Z", 3, false),
    );
    assert_eq!(
        dates(&active.items),
        ["2026-01-04", "2026-01-08", "2026-01-09"]
    );
    let all = occurrences(
        &schedules,
        &zone,
        true,
        &calendar,
        &query("2026-01-04T12:00:00Z", 5, true),
    );
    assert_eq!(
        dates(&all.items),
        [
            "2026-01-04",
            "2026-01-05",
            "2026-01-06",
            "2026-01-07",
            "2026-01-08"
        ]
    );
    assert_eq!(
        all.items[1].suppressed(),
        Some(&SuppressionReason::ExceptionPeriod {
            id: period.id(),
            name: "Beach".into()
        })
    );
    assert!(all.items[0].suppressed().is_none() && all.items[4].suppressed().is_none());
}

#[test]
fn holiday_skip_and_delay() {
    let xmas = holiday("Natal", HolidayDate::recurring(12, 25).unwrap());
    let new_year = holiday("Confraternização", HolidayDate::Fixed(date(2027, 1, 1)));
    let delay = HolidayPreference::Delay(DelayMinutes::new(90).unwrap());
    let calendar = Calendar::new([], [(&xmas, HolidayPreference::Skip), (&new_year, delay)]);
    let zone = zone("America/Sao_Paulo");
    let items = occurrences(
        &[daily("07:00")],
        &zone,
        true,
        &calendar,
        &query("2026-12-24T00:00:00Z", 10, true),
    )
    .items;
    let by_date = |d: &str| {
        items
            .iter()
            .find(|o| o.local().date().to_string() == d)
            .unwrap()
    };
    assert_eq!(
        by_date("2026-12-25").suppressed(),
        Some(&SuppressionReason::HolidaySkip {
            holiday: "Natal".into()
        })
    );
    let ny = by_date("2027-01-01");
    assert!(ny.suppressed().is_none());
    assert_eq!(
        ny.fire_at(),
        ts("2027-01-01T11:30:00Z"),
        "07:00 -03 plus 90 minutes"
    );
    assert_eq!(
        ny.adjustment().holiday_delay.as_ref().map(|d| d.minutes),
        Some(90)
    );
    assert_eq!(by_date("2027-01-02").fire_at(), ts("2027-01-02T10:00:00Z"));
    // Without suppressed items the skipped day is simply absent.
    let active = occurrences(
        &[daily("07:00")],
        &zone,
        true,
        &calendar,
        &query("2026-12-24T00:00:00Z", 3, false),
    );
    assert_eq!(
        dates(&active.items),
        ["2026-12-24", "2026-12-26", "2026-12-27"]
    );
}

#[test]
fn a_delay_that_reaches_the_next_occurrence_merges_into_it() {
    let eve = holiday("Réveillon", HolidayDate::recurring(12, 31).unwrap());
    let delay = HolidayPreference::Delay(DelayMinutes::new(120).unwrap());
    let calendar = Calendar::new([], [(&eve, delay)]);
    // 23:30 on the 31st delayed by two hours passes 00:30 on January 1st.
    let schedules = [daily("23:30"), daily("00:30")];
    let items = occurrences(
        &schedules,
        &zone("UTC"),
        true,
        &calendar,
        &query("2026-12-31T12:00:00Z", 2, false),
    )
    .items;
    assert_eq!(
        pairs(&items),
        [
            (
                "2027-01-01 00:30".to_owned(),
                "2027-01-01T00:30Z".to_owned()
            ),
            (
                "2027-01-01 23:30".to_owned(),
                "2027-01-01T23:30Z".to_owned()
            ),
        ]
    );
    assert_eq!(items[0].schedules().indexes(), [0, 1]);
    assert!(items[0].adjustment().absorbed_delayed);
    // A short delay does not reach it and rings on its own, in order.
    let short = HolidayPreference::Delay(DelayMinutes::new(30).unwrap());
    let calendar = Calendar::new([], [(&eve, short)]);
    let items = occurrences(
        &schedules,
        &zone("UTC"),
        true,
        &calendar,
        &query("2026-12-31T12:00:00Z", 2, false),
    )
    .items;
    assert_eq!(items[0].fire_at(), ts("2027-01-01T00:00:00Z"));
    assert_eq!(items[1].fire_at(), ts("2027-01-01T00:30:00Z"));
}

#[test]
fn a_delay_pushes_an_early_occurrence_past_after() {
    let eve = holiday("Réveillon", HolidayDate::recurring(12, 31).unwrap());
    let delay = HolidayPreference::Delay(DelayMinutes::new(60).unwrap());
    let calendar = Calendar::new([], [(&eve, delay)]);
    // Asked at 07:10, the 07:00 occurrence delayed to 08:00 is still ahead.
    let items = occurrences(
        &[daily("07:00")],
        &zone("UTC"),
        true,
        &calendar,
        &query("2026-12-31T07:10:00Z", 1, false),
    )
    .items;
    assert_eq!(items[0].fire_at(), ts("2026-12-31T08:00:00Z"));
}

#[test]
fn a_disabled_alarm_yields_only_suppressed_occurrences() {
    let schedules = [daily("07:00")];
    let calendar = Calendar::default();
    let none = occurrences(
        &schedules,
        &zone("UTC"),
        false,
        &calendar,
        &query("2026-01-01T00:00:00Z", 3, false),
    );
    assert!(none.items.is_empty() && none.complete);
    let all = occurrences(
        &schedules,
        &zone("UTC"),
        false,
        &calendar,
        &query("2026-01-01T00:00:00Z", 3, true),
    );
    assert_eq!(all.items.len(), 3);
    assert!(
        all.items
            .iter()
            .all(|o| o.suppressed() == Some(&SuppressionReason::Disabled))
    );
}

#[test]
fn total_suppression_is_bounded_and_reported() {
    // Every day is an exception for 366 days: the next active occurrence is a year away.
    let owner = UserId::generate();
    let periods: Vec<ExceptionPeriod> = (0..20)
        .map(|i| {
            let start = date(2026, 1, 1)
                .checked_add(alarm_domain::jiff::Span::new().days(i * 366))
                .unwrap();
            let end = start
                .checked_add(alarm_domain::jiff::Span::new().days(365))
                .unwrap();
            ExceptionPeriod::new(
                ExceptionPeriodId::generate(),
                owner,
                "Away",
                ExceptionKind::Travel,
                start,
                end,
            )
            .unwrap()
        })
        .collect();
    let calendar = Calendar::new(&periods, []);
    // Every minute of every day: 1440 wall times a day, 20 years of them.
    let hours: Vec<String> = (0..24).map(|h| h.to_string()).collect();
    let minutes: Vec<String> = (0..60).map(|m| m.to_string()).collect();
    let every_minute = format!(
        "FREQ=DAILY;BYHOUR={};BYMINUTE={}",
        hours.join(","),
        minutes.join(",")
    );
    let schedules = [rule(&every_minute, "2026-01-01T00:00")];
    let preview = occurrences(
        &schedules,
        &zone("UTC"),
        true,
        &calendar,
        &query("2026-01-01T00:00:00Z", 1, false),
    );
    assert!(preview.items.is_empty());
    assert!(
        !preview.complete,
        "the budget ran out, and the preview says so"
    );
}

fn draft(zone: &str, schedules: Vec<Schedule>) -> AlarmDraft {
    AlarmDraft {
        name: AlarmName::parse("Wake up").unwrap(),
        description: Description::default(),
        enabled: true,
        time_zone: TimeZoneName::resolve(zone, &db()).unwrap(),
        schedules: Schedules::new(schedules).unwrap(),
        snooze: SnoozePolicy::default(),
        escalation: EscalationPolicy::default(),
        channels: ChannelSet::default(),
        sound: None,
    }
}

#[test]
fn once_must_be_in_the_future_but_a_fired_one_does_not_block_edits() {
    let once = Schedule::Once {
        date: date(2026, 12, 1),
        time: t("07:00"),
    };
    let now = ts("2026-11-22T04:00:00Z");
    let alarm = Alarm::create(
        AlarmId::generate(),
        UserId::generate(),
        draft("Europe/Berlin", vec![once.clone()]),
        now,
    )
    .unwrap();
    assert_eq!(alarm.version().get(), 1);
    let later = ts("2026-12-02T00:00:00Z");
    let mut renamed = alarm.draft().clone();
    renamed.name = AlarmName::parse("Renamed").unwrap();
    let revised = alarm.revise(renamed, later).unwrap();
    assert_eq!(revised.version().get(), 2);
    assert_eq!(revised.name().as_str(), "Renamed");
    // Moving the one-off into the past is refused, naming the schedule.
    let past = Schedule::Once {
        date: date(2026, 12, 1),
        time: t("08:00"),
    };
    let err = alarm
        .revise(draft("Europe/Berlin", vec![past]), later)
        .unwrap_err();
    assert_eq!(
        (err.field(), err.code()),
        ("schedules[0]", codes::IN_THE_PAST)
    );
    let err = Alarm::create(
        AlarmId::generate(),
        UserId::generate(),
        draft("UTC", vec![once]),
        later,
    )
    .unwrap_err();
    assert_eq!(err.code(), codes::IN_THE_PAST);
}

#[test]
fn a_rule_whose_utc_until_ends_before_its_first_local_occurrence_is_refused_for_that_zone() {
    // 23:00 local on January 1st in Tokyo is 14:00Z, before UNTIL at 15:00Z;
    // in São Paulo it is 02:00Z on the 2nd, after it.
    let r = rule("FREQ=DAILY;UNTIL=20260101T150000Z", "2026-01-01T23:00");
    let now = ts("2025-12-01T00:00:00Z");
    assert!(
        Alarm::create(
            AlarmId::generate(),
            UserId::generate(),
            draft("Asia/Tokyo", vec![r.clone()]),
            now
        )
        .is_ok()
    );
    let err = Alarm::create(
        AlarmId::generate(),
        UserId::generate(),
        draft("America/Sao_Paulo", vec![r]),
        now,
    )
    .unwrap_err();
    assert_eq!(
        (err.field(), err.code()),
        ("schedules[0].rrule", codes::RULE_NEVER_FIRES)
    );
}
