//! Helpers shared by the schedule test files: zones from the bundled database and compact previews.
#![allow(dead_code, unreachable_pub)]

use alarm_domain::jiff::tz::{TimeZone, TimeZoneDatabase};
use alarm_domain::jiff::{Timestamp, civil};
use alarm_domain::schedule::{
    Calendar, Occurrence, OccurrenceQuery, Schedule, WallTime, occurrences,
};
use alarm_domain::tz::TimeZoneName;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

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

/// A random recurrence rule: every part but its end, and the end, which
/// [`RuleCase::text`] renders against the DTSTART it is used with (so an
/// `UNTIL` can be made to fall after it).
#[derive(Debug, Clone)]
pub struct RuleCase {
    body: String,
    end: RuleEnd,
}

#[derive(Debug, Clone, Copy)]
enum RuleEnd {
    Never,
    Count(u32),
    /// `UNTIL` this many days after DTSTART, at 23:59:59 (UTC or local).
    DaysAfter(i64),
    /// `UNTIL` June 1st of this year, local: it may well be before DTSTART.
    Year(i32),
}

impl RuleCase {
    /// Every part but the end.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The rule's text for `dtstart`, with an `UNTIL` in UTC (the form the
    /// rrule crate wants next to a UTC DTSTART).
    pub fn text(&self, dtstart: civil::DateTime) -> String {
        self.render(dtstart, "Z")
    }

    /// The rule's text for `dtstart`, with an `UNTIL` in local time: the
    /// parser judges that one exactly, while a UTC one gets two days of
    /// slack until the alarm's zone is known.
    pub fn text_local(&self, dtstart: civil::DateTime) -> String {
        self.render(dtstart, "")
    }

    fn render(&self, dtstart: civil::DateTime, utc: &str) -> String {
        let end = match self.end {
            RuleEnd::Never => String::new(),
            RuleEnd::Count(c) => format!(";COUNT={c}"),
            RuleEnd::DaysAfter(days) => {
                let until = dtstart
                    .date()
                    .checked_add(alarm_domain::jiff::Span::new().days(days))
                    .expect("in range");
                format!(";UNTIL={}T235959{utc}", until.strftime("%Y%m%d"))
            }
            RuleEnd::Year(y) => format!(";UNTIL={y}0601"),
        };
        format!("{}{end}", self.body)
    }
}

const FREQS: [&str; 4] = ["DAILY", "WEEKLY", "MONTHLY", "YEARLY"];
const WEEKDAY_CODES: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

fn weekday_code() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(WEEKDAY_CODES.to_vec())
}

fn list<T: ToString>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The rule's parts in a fixed order; empty lists are left out.
fn body(
    freq: &str,
    interval: u32,
    by_day: &[String],
    by_month: &[u8],
    by_month_day: &[i32],
    by_set_pos: &[i32],
    by_hour: &[u8],
) -> String {
    let mut s = format!("FREQ={freq};INTERVAL={interval}");
    for (name, values) in [
        ("BYDAY", list(by_day)),
        ("BYMONTH", list(by_month)),
        ("BYMONTHDAY", list(by_month_day)),
        ("BYSETPOS", list(by_set_pos)),
        ("BYHOUR", list(by_hour)),
    ] {
        if !values.is_empty() {
            s += &format!(";{name}={values}");
        }
    }
    s
}

/// Mostly rules the parser accepts, built part by part within the
/// combinations RFC 5545 allows (ordinal weekdays only with MONTHLY and
/// YEARLY, within the period's weeks; no BYMONTHDAY with WEEKLY; BYSETPOS
/// with another BYxxx part to pick from, mostly within the set's size;
/// month days every month has; an `UNTIL` after DTSTART). One in twenty
/// is drawn from every part's whole range, valid or not, so that
/// rejection is exercised too. A property whose every case is rejected
/// checks nothing, which [`check_counted`] guards against.
pub fn rule_case() -> impl Strategy<Value = RuleCase> {
    prop_oneof![19 => valid_rule(), 1 => any_rule()]
}

fn small<S>(values: S, max: usize) -> BoxedStrategy<Vec<S::Value>>
where
    S: Strategy + 'static,
    S::Value: Clone,
{
    // Left out two times in three: a rule with every part is the rarest kind.
    prop_oneof![2 => Just(Vec::new()), 1 => proptest::collection::vec(values, 1..=max)].boxed()
}

fn valid_rule() -> impl Strategy<Value = RuleCase> {
    let plain_days = small(weekday_code().prop_map(str::to_owned), 3);
    // Within every period's weeks (the rrule crate allows -4..=5 for MONTHLY).
    let month_ordinal = prop_oneof![1i32..=4, -4i32..=-1, Just(5)];
    let year_ordinal = prop_oneof![3 => month_ordinal.clone(), 1 => 1i32..=52, 1 => -52i32..=-1];
    let ordinal_days = |o: BoxedStrategy<i32>| {
        proptest::collection::vec((o, weekday_code()), 1..=2).prop_map(|v| {
            v.into_iter()
                .map(|(o, d)| format!("{o}{d}"))
                .collect::<Vec<_>>()
        })
    };
    let month_day = prop_oneof![4 => 1i32..=28, 2 => -28i32..=-1, 1 => 29i32..=31];
    let end = prop_oneof![
        Just(RuleEnd::Never),
        (1u32..50).prop_map(RuleEnd::Count),
        prop_oneof![1 => 1i64..400, 3 => 400i64..6000].prop_map(RuleEnd::DaysAfter),
    ];
    (
        proptest::sample::select(FREQS.to_vec()),
        1u32..5,
        small(1u8..13, 3),
        small(0u8..24, 2),
        small(
            prop_oneof![3 => Just(1i32), 3 => Just(-1i32), 1 => Just(2), 1 => Just(-2)],
            1,
        ),
        end,
    )
        .prop_flat_map(
            move |(freq, interval, by_month, by_hour, by_set_pos, end)| {
                let ordinals = match freq {
                    "MONTHLY" => Some(month_ordinal.clone().boxed()),
                    // Past the fifth week only counted within the whole year.
                    "YEARLY" if by_month.is_empty() => Some(year_ordinal.clone().boxed()),
                    "YEARLY" => Some(month_ordinal.clone().boxed()),
                    _ => None,
                };
                let by_day = match ordinals {
                    Some(o) => prop_oneof![2 => plain_days.clone(), 1 => ordinal_days(o)].boxed(),
                    None => plain_days.clone().boxed(),
                };
                let month_days = if freq == "WEEKLY" {
                    Just(Vec::new()).boxed()
                } else {
                    small(month_day.clone(), 2).boxed()
                };
                (by_day, month_days).prop_map(move |(by_day, mut by_month_day)| {
                    // A month day and an ordinal weekday rarely meet at all.
                    if by_day.iter().any(|d| d.len() > 2) {
                        by_month_day.clear();
                    }
                    // BYSETPOS needs another part's set to pick from, and
                    // only two hours a day make every period's set hold a
                    // second one.
                    let picks = !(by_day.is_empty()
                        && by_month.is_empty()
                        && by_month_day.is_empty()
                        && by_hour.is_empty());
                    let hours = by_hour
                        .iter()
                        .collect::<std::collections::BTreeSet<_>>()
                        .len();
                    let by_set_pos: Vec<i32> = by_set_pos
                        .iter()
                        .filter(|_| picks)
                        .map(|p| if hours >= 2 { *p } else { p.signum() })
                        .collect();
                    // Every other month from May never reaches August.
                    let interval = if freq == "MONTHLY" && !by_month.is_empty() {
                        1
                    } else {
                        interval
                    };
                    RuleCase {
                        body: body(
                            freq,
                            interval,
                            &by_day,
                            &by_month,
                            &by_month_day,
                            &by_set_pos,
                            &by_hour,
                        ),
                        end,
                    }
                })
            },
        )
}

/// Every part over its whole range, valid or not.
fn any_rule() -> impl Strategy<Value = RuleCase> {
    let by_day =
        proptest::collection::vec((prop_oneof![Just(0i32), -6i32..7], weekday_code()), 0..3)
            .prop_map(|v| {
                v.into_iter()
                    .map(|(o, d)| {
                        if o == 0 {
                            d.to_owned()
                        } else {
                            format!("{o}{d}")
                        }
                    })
                    .collect::<Vec<_>>()
            });
    let end = prop_oneof![
        Just(RuleEnd::Never),
        (1u32..50).prop_map(RuleEnd::Count),
        (2000i32..2100).prop_map(RuleEnd::Year),
    ];
    (
        proptest::sample::select(FREQS.to_vec()),
        1u32..5,
        by_day,
        proptest::collection::vec(1u8..13, 0..3),
        proptest::collection::vec(prop_oneof![1i32..32, -31i32..0], 0..3),
        proptest::collection::vec(prop_oneof![1i32..5, -4i32..0], 0..2),
        proptest::collection::vec(0u8..24, 0..3),
        end,
    )
        .prop_map(
            |(freq, interval, by_day, by_month, by_month_day, by_set_pos, by_hour, end)| RuleCase {
                body: body(
                    freq,
                    interval,
                    &by_day,
                    &by_month,
                    &by_month_day,
                    &by_set_pos,
                    &by_hour,
                ),
                end,
            },
        )
}

/// Whether a generated case reached the property's comparison, or was set
/// aside before it (a rule one side rejects, a case out of the oracle's
/// reach).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// The property was checked.
    Compared,
    /// Nothing was checked.
    SetAside,
}

/// Runs `test` over `cases` values of `strategy`, as `proptest!` does
/// (same settings, same regressions file next to `source_file`), and
/// fails unless at least 80 % of the generated cases were compared: a
/// property whose generator only makes cases it sets aside would
/// otherwise pass without checking anything.
pub fn check_counted<S: Strategy>(
    test_name: &'static str,
    source_file: &'static str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<Case, TestCaseError>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let generated = AtomicUsize::new(0);
    let compared = AtomicUsize::new(0);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        test_name: Some(test_name),
        source_file: Some(source_file),
        ..ProptestConfig::default()
    });
    let result = runner.run(&strategy, |value| {
        generated.fetch_add(1, Ordering::Relaxed);
        if test(value)? == Case::Compared {
            compared.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
    let (generated, compared) = (generated.into_inner(), compared.into_inner());
    println!("{test_name}: {compared} of {generated} generated cases compared");
    assert!(
        compared * 5 >= generated * 4,
        "{test_name}: only {compared} of {generated} generated cases were compared; \
         at least 80 % must be, or the property passes without checking much: \
         make the generator produce cases the property can judge"
    );
}
