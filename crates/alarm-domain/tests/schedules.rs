//! Table tests for each schedule kind and the RRULE subset, and DST behaviour in real zones.

mod common;

use alarm_domain::error::codes;
use alarm_domain::jiff::SignedDuration;
use alarm_domain::schedule::{RecurrenceRule, Schedule, WeekdaySet};
use common::*;

fn p(local: &str, utc: &str) -> (String, String) {
    (local.to_owned(), utc.to_owned())
}

#[test]
fn once_fires_once_and_never_again() {
    let s = Schedule::Once {
        date: "2030-05-01".parse().unwrap(),
        time: t("06:15"),
    };
    let items = run(
        std::slice::from_ref(&s),
        "Europe/Lisbon",
        "2026-01-01T00:00:00Z",
        5,
    );
    assert_eq!(
        pairs(&items),
        vec![p("2030-05-01 06:15", "2030-05-01T05:15Z")]
    );
    assert!(
        run(&[s], "Europe/Lisbon", "2030-05-01T05:15:00Z", 5).is_empty(),
        "`after` is exclusive"
    );
}

#[test]
fn weekly_and_presets() {
    let days = WeekdaySet::parse(&["mon", "WED", "fri"]).unwrap();
    let s = Schedule::Weekly {
        days,
        time: t("07:00"),
    };
    // 2026-11-22 is a Sunday.
    let items = run(&[s], "UTC", "2026-11-22T00:00:00Z", 4);
    assert_eq!(
        dates(&items),
        ["2026-11-23", "2026-11-25", "2026-11-27", "2026-11-30"]
    );
    let weekend = run(
        &[Schedule::weekends(t("09:00"))],
        "UTC",
        "2026-11-22T00:00:00Z",
        3,
    );
    assert_eq!(dates(&weekend), ["2026-11-22", "2026-11-28", "2026-11-29"]);
    let weekdays = run(
        &[Schedule::weekdays(t("09:00"))],
        "UTC",
        "2026-11-21T00:00:00Z",
        2,
    );
    assert_eq!(dates(&weekdays), ["2026-11-23", "2026-11-24"]);
    let err = WeekdaySet::parse(&["mon", "mon"]).unwrap_err();
    assert_eq!((err.field(), err.code()), ("days[1]", codes::DUPLICATE));
    assert_eq!(
        WeekdaySet::parse::<&str>(&[]).unwrap_err().code(),
        codes::BAD_COUNT
    );
}

#[test]
fn daily_previews_any_instant_from_1900_to_2200() {
    let items = run(&[daily("08:00")], "Europe/Paris", "1900-01-01T00:00:00Z", 2);
    // Paris used local mean time (+00:09:21) until 1911.
    assert_eq!(pairs(&items)[0].0, "1900-01-01 08:00");
    let late = run(&[daily("08:00")], "Europe/Paris", "2199-12-31T12:00:00Z", 1);
    assert_eq!(
        pairs(&late),
        vec![p("2200-01-01 08:00", "2200-01-01T07:00Z")]
    );
}

#[test]
fn rule_table() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // Last Friday of the month.
        (
            "FREQ=MONTHLY;BYDAY=-1FR",
            "2026-01-01T09:00",
            "2025-12-31T00:00:00Z",
            &["2026-01-30", "2026-02-27", "2026-03-27", "2026-04-24"],
        ),
        // Last day of the month.
        (
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            "2026-01-01T09:00",
            "2025-12-31T00:00:00Z",
            &["2026-01-31", "2026-02-28", "2026-03-31"],
        ),
        // US Thanksgiving.
        (
            "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
            "2026-01-01T09:00",
            "2025-12-31T00:00:00Z",
            &["2026-11-26", "2027-11-25", "2028-11-23"],
        ),
        // Last weekday of the month.
        (
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            "2026-01-01T09:00",
            "2025-12-31T00:00:00Z",
            &["2026-01-30", "2026-02-27", "2026-03-31"],
        ),
        // DTSTART (a Thursday) is not an occurrence of a Monday rule.
        (
            "FREQ=WEEKLY;BYDAY=MO",
            "2026-01-01T09:00",
            "2025-12-31T00:00:00Z",
            &["2026-01-05", "2026-01-12"],
        ),
        // RFC 5545's WKST example, both week starts.
        (
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
            "1997-08-05T09:00",
            "1997-01-01T00:00:00Z",
            &["1997-08-05", "1997-08-10", "1997-08-19", "1997-08-24"],
        ),
        (
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
            "1997-08-05T09:00",
            "1997-01-01T00:00:00Z",
            &["1997-08-05", "1997-08-17", "1997-08-19", "1997-08-31"],
        ),
        // COUNT counts from DTSTART even when the preview starts later.
        (
            "FREQ=DAILY;COUNT=3",
            "2026-01-01T07:00",
            "2026-01-02T12:00:00Z",
            &["2026-01-03"],
        ),
        // A local UNTIL date includes that whole day.
        (
            "FREQ=DAILY;UNTIL=20260103",
            "2026-01-01T07:00",
            "2025-12-31T00:00:00Z",
            &["2026-01-01", "2026-01-02", "2026-01-03"],
        ),
        // The 31st of every other month (January, March, May…).
        (
            "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=31",
            "2026-01-31T07:00",
            "2026-01-01T00:00:00Z",
            &["2026-01-31", "2026-03-31", "2026-05-31"],
        ),
        // The 31st of every month skips short months.
        (
            "FREQ=MONTHLY;BYMONTHDAY=31",
            "2026-01-31T07:00",
            "2026-01-01T00:00:00Z",
            &["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31"],
        ),
        // The first Monday of each year (ordinal within the year).
        (
            "FREQ=YEARLY;BYDAY=1MO",
            "2026-01-01T07:00",
            "2026-01-01T00:00:00Z",
            &["2026-01-05", "2027-01-04"],
        ),
        // The 20th Monday of the year.
        (
            "FREQ=YEARLY;BYDAY=20MO",
            "2026-01-01T07:00",
            "2026-01-01T00:00:00Z",
            &["2026-05-18", "2027-05-17"],
        ),
        // Leap day only in leap years.
        (
            "FREQ=YEARLY",
            "2024-02-29T07:00",
            "2024-01-01T00:00:00Z",
            &["2024-02-29", "2028-02-29"],
        ),
        // BYSETPOS picks from the whole month, then DTSTART bounds: January's
        // first weekday (the 1st) is before DTSTART, so February's is next.
        (
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1",
            "2026-01-15T09:00",
            "2026-01-01T00:00:00Z",
            &["2026-02-02", "2026-03-02"],
        ),
        // Plain and ordinal weekdays in one BYDAY are a union.
        (
            "FREQ=MONTHLY;BYDAY=-1FR,MO",
            "2026-01-01T09:00",
            "2026-01-01T00:00:00Z",
            &[
                "2026-01-05",
                "2026-01-12",
                "2026-01-19",
                "2026-01-26",
                "2026-01-30",
                "2026-02-02",
            ],
        ),
        // Without BYMONTH a YEARLY ordinal counts within the year, even with
        // BYMONTHDAY: the year's first Monday, when it is the 1st of a month.
        (
            "FREQ=YEARLY;BYMONTHDAY=1;BYDAY=1MO",
            "2020-01-01T09:00",
            "2020-01-01T00:00:00Z",
            &["2024-01-01", "2029-01-01"],
        ),
        // DAILY limited by BYMONTH and BYDAY.
        (
            "FREQ=DAILY;BYMONTH=2;BYDAY=SA",
            "2026-01-01T07:00",
            "2026-01-01T00:00:00Z",
            &[
                "2026-02-07",
                "2026-02-14",
                "2026-02-21",
                "2026-02-28",
                "2027-02-06",
            ],
        ),
    ];
    for (rrule, dtstart, after, want) in cases {
        let items = run(&[rule(rrule, dtstart)], "UTC", after, want.len() + 1);
        let got = dates(&items);
        let n = want.len().min(got.len());
        assert_eq!(&got[..n], *want, "{rrule} from {dtstart}");
        assert!(got.len() >= want.len(), "{rrule}: too few: {got:?}");
    }
}

#[test]
fn count_rules_end() {
    let items = run(
        &[rule(
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
            "1997-08-05T09:00",
        )],
        "America/New_York",
        "1997-01-01T00:00:00Z",
        10,
    );
    assert_eq!(items.len(), 4, "COUNT=4 ends the rule");
    assert_eq!(pairs(&items)[0], p("1997-08-05 09:00", "1997-08-05T13:00Z"));
}

#[test]
fn by_hour_and_minute_expand_within_the_day() {
    let items = run(
        &[rule(
            "FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0,30",
            "2026-01-01T00:00",
        )],
        "UTC",
        "2026-01-01T00:00:00Z",
        5,
    );
    let times: Vec<String> = pairs(&items).into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        times,
        [
            "2026-01-01 08:00",
            "2026-01-01 08:30",
            "2026-01-01 20:00",
            "2026-01-01 20:30",
            "2026-01-02 08:00"
        ]
    );
}

#[test]
fn utc_until_is_compared_with_the_instant() {
    // 07:00 in New York in January is 12:00Z.
    let incl = run(
        &[rule(
            "FREQ=DAILY;UNTIL=20260103T120000Z",
            "2026-01-01T07:00",
        )],
        "America/New_York",
        "2025-12-31T00:00:00Z",
        10,
    );
    assert_eq!(incl.len(), 3);
    let excl = run(
        &[rule(
            "FREQ=DAILY;UNTIL=20260103T115959Z",
            "2026-01-01T07:00",
        )],
        "America/New_York",
        "2025-12-31T00:00:00Z",
        10,
    );
    assert_eq!(excl.len(), 2);
}

#[test]
fn feb_29_on_a_monday_is_rare_but_valid() {
    let items = run(
        &[rule(
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
            "2000-01-01T08:00",
        )],
        "UTC",
        "2000-01-01T00:00:00Z",
        3,
    );
    assert_eq!(dates(&items), ["2016-02-29", "2044-02-29", "2072-02-29"]);
}

#[test]
fn rules_that_never_fire_are_rejected() {
    for (rrule, dtstart) in [
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "2026-01-01T07:00"),
        ("FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31", "2026-01-01T07:00"),
        (
            "FREQ=DAILY;BYMONTHDAY=31;BYMONTH=2,4,6,9,11",
            "2026-01-01T07:00",
        ),
        ("FREQ=WEEKLY;BYDAY=MO;UNTIL=20260104", "2026-01-01T07:00"),
        (
            "FREQ=MONTHLY;BYDAY=5MO;BYMONTH=2;BYMONTHDAY=1",
            "2026-01-01T07:00",
        ),
    ] {
        let err = RecurrenceRule::parse(rrule, dtstart).unwrap_err();
        assert_eq!(
            (err.field(), err.code()),
            ("rrule", codes::RULE_NEVER_FIRES),
            "{rrule}"
        );
    }
}

#[test]
fn parse_errors_name_the_offending_part() {
    for (rrule, part) in [
        ("FREQ=HOURLY", "FREQ"),
        ("FREQ=SOMETIMES", "FREQ"),
        ("INTERVAL=2", "FREQ"),
        ("FREQ=DAILY;BYDAY=1MO", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=6MO", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=XX", "BYDAY"),
        ("FREQ=DAILY;BYMONTHDAY=32", "BYMONTHDAY"),
        ("FREQ=DAILY;BYMONTHDAY=0", "BYMONTHDAY"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY"),
        ("FREQ=DAILY;BYMONTH=13", "BYMONTH"),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR"),
        ("FREQ=DAILY;BYMINUTE=60", "BYMINUTE"),
        ("FREQ=DAILY;BYSECOND=1", "BYSECOND"),
        ("FREQ=YEARLY;BYWEEKNO=1", "BYWEEKNO"),
        ("FREQ=DAILY;FOO=1", "FOO"),
        ("FREQ=DAILY;COUNT=2;UNTIL=20260101", "COUNT"),
        ("FREQ=DAILY;COUNT=0", "COUNT"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
        ("FREQ=DAILY;UNTIL=2026-01-01", "UNTIL"),
        ("FREQ=DAILY;WKST=XX", "WKST"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ"),
        ("FREQ=WEEKLY;BYSETPOS=1", "BYSETPOS"),
        ("RRULE:FREQ=DAILY", "RRULE:"),
        ("FREQ", "FREQ"),
    ] {
        let err = RecurrenceRule::parse(rrule, "2026-01-01T07:00").unwrap_err();
        assert_eq!(err.field(), "rrule", "{rrule}");
        assert_eq!(err.code(), codes::INVALID_RULE, "{rrule}");
        assert!(
            err.message().starts_with(part),
            "{rrule}: {}",
            err.message()
        );
    }
    for bad in [
        "2026-01-01T07:00Z",
        "2026-01-01T07:00-03:00",
        "2026-01-01",
        "2026-13-01T07:00",
        "1850-01-01T07:00",
    ] {
        assert_eq!(
            RecurrenceRule::parse("FREQ=DAILY", bad)
                .unwrap_err()
                .field(),
            "dtstart",
            "{bad}"
        );
    }
    let r =
        RecurrenceRule::parse("freq=monthly;byday=-1fr;interval=1", "2026-01-01T07:00").unwrap();
    assert_eq!(r.as_str(), "FREQ=MONTHLY;BYDAY=-1FR");
}

// ---- DST -----------------------------------------------------------------

#[test]
fn new_york_gap_shifts_forward_and_fold_fires_once_at_the_earlier_instant() {
    let items = run(
        &[daily("02:30")],
        "America/New_York",
        "2026-03-07T00:00:00Z",
        3,
    );
    assert_eq!(
        pairs(&items),
        vec![
            p("2026-03-07 02:30", "2026-03-07T07:30Z"),
            p("2026-03-08 02:30", "2026-03-08T07:30Z"),
            p("2026-03-09 02:30", "2026-03-09T06:30Z"),
        ]
    );
    assert_eq!(
        items[1].adjustment().gap_shift,
        Some(SignedDuration::from_hours(1))
    );
    assert!(items[0].adjustment().is_none());

    let fold = run(
        &[daily("01:30")],
        "America/New_York",
        "2026-10-31T12:00:00Z",
        3,
    );
    assert_eq!(
        pairs(&fold),
        vec![
            p("2026-11-01 01:30", "2026-11-01T05:30Z"),
            p("2026-11-02 01:30", "2026-11-02T06:30Z"),
            p("2026-11-03 01:30", "2026-11-03T06:30Z"),
        ]
    );
}

#[test]
fn a_shifted_time_meeting_a_scheduled_one_merges() {
    let items = run(
        &[daily("02:30"), daily("03:30")],
        "America/New_York",
        "2026-03-08T00:00:00Z",
        3,
    );
    assert_eq!(pairs(&items)[0], p("2026-03-08 03:30", "2026-03-08T07:30Z"));
    assert_eq!(items[0].schedules().indexes(), [0, 1]);
    assert!(
        items[0].adjustment().gap_shift.is_none(),
        "the nominal time is the one the clock shows"
    );
    assert_eq!(pairs(&items)[1], p("2026-03-09 02:30", "2026-03-09T06:30Z"));
    // Two identical schedules ring once.
    let same = run(
        &[daily("07:00"), daily("07:00")],
        "UTC",
        "2026-01-01T00:00:00Z",
        2,
    );
    assert_eq!(dates(&same), ["2026-01-01", "2026-01-02"]);
}

#[test]
fn london() {
    let gap = run(
        &[daily("01:30")],
        "Europe/London",
        "2026-03-29T00:00:00Z",
        1,
    );
    assert_eq!(
        pairs(&gap),
        vec![p("2026-03-29 01:30", "2026-03-29T01:30Z")]
    );
    let fold = run(
        &[daily("01:30")],
        "Europe/London",
        "2026-10-25T00:00:00Z",
        2,
    );
    assert_eq!(
        pairs(&fold),
        vec![
            p("2026-10-25 01:30", "2026-10-25T00:30Z"),
            p("2026-10-26 01:30", "2026-10-26T01:30Z")
        ]
    );
}

#[test]
fn santiago_skipped_midnight_loses_no_day() {
    // Chile springs forward at 24:00 on the first Saturday of September 2026.
    let items = run(
        &[daily("00:30")],
        "America/Santiago",
        "2026-09-04T00:00:00Z",
        4,
    );
    assert_eq!(
        pairs(&items),
        vec![
            p("2026-09-04 00:30", "2026-09-04T04:30Z"),
            p("2026-09-05 00:30", "2026-09-05T04:30Z"),
            p("2026-09-06 00:30", "2026-09-06T04:30Z"),
            p("2026-09-07 00:30", "2026-09-07T03:30Z"),
        ]
    );
    assert_eq!(
        items[2].adjustment().gap_shift,
        Some(SignedDuration::from_hours(1))
    );
    // Falling back at midnight repeats 23:00..24:00 of the Saturday.
    let fold = run(
        &[daily("23:30")],
        "America/Santiago",
        "2026-04-04T12:00:00Z",
        2,
    );
    assert_eq!(
        pairs(&fold),
        vec![
            p("2026-04-04 23:30", "2026-04-05T02:30Z"),
            p("2026-04-05 23:30", "2026-04-06T03:30Z")
        ]
    );
}

#[test]
fn lord_howe_half_hour_shift() {
    let gap = run(
        &[daily("02:15")],
        "Australia/Lord_Howe",
        "2026-10-03T00:00:00Z",
        2,
    );
    assert_eq!(
        pairs(&gap),
        vec![
            p("2026-10-04 02:15", "2026-10-03T15:45Z"),
            p("2026-10-05 02:15", "2026-10-04T15:15Z")
        ]
    );
    assert_eq!(
        gap[0].adjustment().gap_shift,
        Some(SignedDuration::from_mins(30))
    );
    let fold = run(
        &[daily("01:45")],
        "Australia/Lord_Howe",
        "2026-04-04T00:00:00Z",
        2,
    );
    assert_eq!(
        pairs(&fold),
        vec![
            p("2026-04-05 01:45", "2026-04-04T14:45Z"),
            p("2026-04-06 01:45", "2026-04-05T15:15Z")
        ]
    );
}

#[test]
fn chatham_quarter_hour_offsets() {
    let winter = run(
        &[daily("07:00")],
        "Pacific/Chatham",
        "2026-06-13T00:00:00Z",
        1,
    );
    assert_eq!(
        pairs(&winter),
        vec![p("2026-06-14 07:00", "2026-06-13T18:15Z")]
    );
    let gap = run(
        &[daily("03:00")],
        "Pacific/Chatham",
        "2026-09-26T00:00:00Z",
        2,
    );
    assert_eq!(
        pairs(&gap),
        vec![
            p("2026-09-27 03:00", "2026-09-26T14:15Z"),
            p("2026-09-28 03:00", "2026-09-27T13:15Z")
        ]
    );
}

#[test]
fn sao_paulo_historic_dst() {
    // 2018: midnight skipped on November 4.
    let start = run(
        &[daily("00:30")],
        "America/Sao_Paulo",
        "2018-11-03T00:00:00Z",
        3,
    );
    assert_eq!(
        pairs(&start),
        vec![
            p("2018-11-03 00:30", "2018-11-03T03:30Z"),
            p("2018-11-04 00:30", "2018-11-04T03:30Z"),
            p("2018-11-05 00:30", "2018-11-05T02:30Z"),
        ]
    );
    // 2019: the last fall-back repeated 23:00..24:00 of February 16.
    let end = run(
        &[daily("23:30")],
        "America/Sao_Paulo",
        "2019-02-16T12:00:00Z",
        2,
    );
    assert_eq!(
        pairs(&end),
        vec![
            p("2019-02-16 23:30", "2019-02-17T01:30Z"),
            p("2019-02-17 23:30", "2019-02-18T02:30Z")
        ]
    );
    // No DST since: November 2020 stays at -03.
    let after = run(
        &[daily("00:30")],
        "America/Sao_Paulo",
        "2020-11-01T00:00:00Z",
        1,
    );
    assert_eq!(
        pairs(&after),
        vec![p("2020-11-01 00:30", "2020-11-01T03:30Z")]
    );
}

#[test]
fn after_2100_the_posix_rule_applies() {
    // 2101-03-13 is the second Sunday of March.
    let items = run(
        &[daily("02:30")],
        "America/New_York",
        "2101-03-12T12:00:00Z",
        2,
    );
    assert_eq!(
        pairs(&items),
        vec![
            p("2101-03-13 02:30", "2101-03-13T07:30Z"),
            p("2101-03-14 02:30", "2101-03-14T06:30Z")
        ]
    );
}

#[test]
fn apia_skipped_day_merges_into_the_next() {
    // Samoa skipped 2011-12-30 entirely: its 09:00 is 24 h late, which is
    // exactly 2011-12-31 09:00, so the two ring once.
    let items = run(&[daily("09:00")], "Pacific/Apia", "2011-12-29T00:00:00Z", 3);
    assert_eq!(
        pairs(&items),
        vec![
            p("2011-12-29 09:00", "2011-12-29T19:00Z"),
            p("2011-12-31 09:00", "2011-12-30T19:00Z"),
            p("2012-01-01 09:00", "2011-12-31T19:00Z"),
        ]
    );
}
