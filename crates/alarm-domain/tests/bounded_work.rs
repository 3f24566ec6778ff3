//! The work an accepted alarm's next fire costs, counted in scan units (`Preview::spent`), not timed: the bound ARCHITECTURE.md states, pinned on the most expensive alarms `Limits::default()` accepts.

mod common;

use alarm_domain::error::codes;
use alarm_domain::limits::Limits;
use alarm_domain::model::Schedules;
use alarm_domain::schedule::{
    Calendar, MAX_COUNT, OccurrenceQuery, PARSE_BUDGET, RecurrenceRule, SCAN_BUDGET, Schedule,
    occurrences,
};
use common::*;

/// Two periods of one year at the default 96 wall times a day, for every
/// schedule, plus the wall times resolved: what a next fire without long
/// suppression may cost.
const NEXT_FIRE_BOUND: u64 = 2 * 366 * 96 + 2 * 16 + 1000;

fn hours() -> String {
    (0..24).map(|h| h.to_string()).collect::<Vec<_>>().join(",")
}

fn accepted(schedules: Vec<Schedule>) -> Vec<Schedule> {
    let set = Schedules::new(schedules).expect("1..=16 schedules");
    Limits::default()
        .check_schedules(&set)
        .expect("within the default bounds");
    set.as_slice().to_vec()
}

fn next_fire_cost(schedules: &[Schedule], after: &str) -> u64 {
    let preview = occurrences(
        schedules,
        &zone("America/Sao_Paulo"),
        true,
        &Calendar::default(),
        &OccurrenceQuery {
            after: ts(after),
            limit: 1,
            include_suppressed: false,
        },
    );
    assert!(preview.complete, "the walk finished within the budget");
    preview.spent
}

#[test]
fn the_densest_accepted_yearly_rule_costs_at_most_two_periods() {
    // 96 wall times a day, expanded a year at a time, asked at 23:50 on
    // 31 December in São Paulo (02:50 UTC), so the walk expands the whole
    // of 2026 (its look-back starts there) and then the whole of 2027.
    let rule_text = format!(
        "FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR={};BYMINUTE=0,15,30,45",
        hours()
    );
    let dense = accepted(vec![rule(&rule_text, "2026-01-01T00:00")]);
    let spent = next_fire_cost(&dense, "2027-01-01T02:50:00Z");
    assert!(spent <= NEXT_FIRE_BOUND, "{spent} > {NEXT_FIRE_BOUND}");
    assert!(
        spent > 2 * 365 * 96,
        "two whole years were expanded: {spent}"
    );
}

#[test]
fn sixteen_schedules_share_the_daily_bound() {
    let schedules: Vec<Schedule> = (0..16)
        .map(|i| {
            rule(
                &format!(
                    "FREQ=YEARLY;BYMONTH={};BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=0,4,8,12,16,20",
                    i % 12 + 1
                ),
                "2026-01-01T00:00",
            )
        })
        .collect();
    let schedules = accepted(schedules);
    let spent = next_fire_cost(&schedules, "2026-12-31T23:50:00Z");
    assert!(spent <= NEXT_FIRE_BOUND, "{spent} > {NEXT_FIRE_BOUND}");
}

#[test]
fn a_count_rule_walks_from_its_start_within_twice_its_count() {
    // COUNT rules are walked from DTSTART: a century of daily occurrences
    // before the query costs one unit per period and per wall time.
    let old = accepted(vec![rule(
        &format!("FREQ=DAILY;COUNT={MAX_COUNT}"),
        "1950-01-01T07:00",
    )]);
    let spent = next_fire_cost(&old, "2026-06-01T00:00:00Z");
    assert!(
        spent <= 2 * u64::from(MAX_COUNT) + 1000,
        "{spent} > twice COUNT"
    );
}

#[test]
fn the_attackers_rule_is_refused_before_it_is_expanded() {
    let every_minute = format!(
        "FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR={};BYMINUTE={}",
        hours(),
        (0..60).map(|m| m.to_string()).collect::<Vec<_>>().join(",")
    );
    // The API parses with the limit: refused as too frequent before the
    // `rule-never-fires` walk expands its first period. A dense rule that
    // also never fires proves the order: it is refused as too frequent.
    let limit = Limits::default().fires_per_day;
    let refused = RecurrenceRule::parse_within(&every_minute, "2026-01-01T00:00", limit)
        .expect_err("too frequent");
    assert_eq!(
        (refused.field(), refused.code()),
        ("rrule", codes::TOO_FREQUENT)
    );
    let never = format!("{every_minute};BYMONTH=2;BYMONTHDAY=30");
    let refused =
        RecurrenceRule::parse_within(&never, "2026-01-01T00:00", limit).expect_err("too frequent");
    assert_eq!(refused.code(), codes::TOO_FREQUENT);
    let refused = RecurrenceRule::parse(&never, "2026-01-01T00:00").expect_err("never fires");
    assert_eq!(refused.code(), codes::RULE_NEVER_FIRES);
    // Read back from storage, a rule is not walked again.
    assert!(RecurrenceRule::parse_stored(&never, "2026-01-01T00:00").is_ok());
    // Without the API's check, the alarm-level sum refuses it too.
    let set = Schedules::new(vec![rule(&every_minute, "2026-01-01T00:00")]).expect("parsed");
    assert!(Limits::default().check_schedules(&set).is_err());
    // Had it been let through, one year period alone would cost 527,040
    // units: the budget, not the bound, would have stopped it.
    let spent = next_fire_cost(set.as_slice(), "2026-12-31T23:59:30Z");
    assert!(spent > 366 * 1440 / 2, "{spent}");
    assert!(spent <= SCAN_BUDGET);
}

#[test]
fn the_never_fires_check_stays_within_its_budget() {
    // February 30th never comes: the parse-time check walks a whole
    // 400-year cycle of daily periods and gives up within PARSE_BUDGET.
    let refused = alarm_domain::schedule::RecurrenceRule::parse(
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "2026-01-01T07:00",
    );
    assert!(refused.is_err());
    const { assert!(146_097 < PARSE_BUDGET) };
    // A rare rule that does fire (29 February on a Monday, next in 2044)
    // is found within the same budget, walking day by day.
    let rare = alarm_domain::schedule::RecurrenceRule::parse(
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
        "2026-01-01T07:00",
    );
    assert!(rare.is_ok(), "{rare:?}");
}
