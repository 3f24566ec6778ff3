//! Benchmark: the next alarm after "now" for common RFC 5545 rules, our engine against the `rrule` crate.
//!
//! Run with `cargo xtask bench schedule` (add `--quick` for a smoke run).
//! The two implementations must first agree on every answer; only then is
//! anything timed, so a speed-up can never come from computing something else.
//! The comparison runs in UTC: `rrule` steps zoned values while we expand in
//! civil time, so only a DST-free zone gives both the same question.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alarm_domain::jiff::Timestamp;
use alarm_domain::jiff::civil::DateTime;
use alarm_domain::jiff::tz::{TimeZone, TimeZoneDatabase};
use alarm_domain::schedule::{
    Calendar, OccurrenceQuery, Preview, RecurrenceRule, Schedule, occurrences,
};
use alarm_domain::tz::TimeZoneName;
use rrule::{RRuleResult, RRuleSet};

/// `rrule`'s instant, chrono's `DateTime<rrule::Tz>`. chrono is not one of
/// our dependencies, so the type is named through the iterator that yields it.
type RruleInstant = <rrule::RRuleSetIter as Iterator>::Item;

/// A rule as a user would enter it, with a DTSTART that matches the rule:
/// RFC 5545 counts DTSTART as an occurrence even when it does not match,
/// our engine does not, and the benchmark is about speed, not that choice.
struct Case {
    name: &'static str,
    rule: &'static str,
    /// Local wall time, which is also UTC here.
    dtstart: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "daily 07:00",
        rule: "FREQ=DAILY",
        dtstart: "2024-01-01T07:00",
    },
    Case {
        name: "weekdays 07:30",
        rule: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        dtstart: "2024-01-01T07:30",
    },
    Case {
        name: "biweekly Tue+Thu",
        rule: "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;WKST=SU",
        dtstart: "2024-01-02T06:45",
    },
    // Tuesday and Sunday fall in the same two-week period or not depending
    // on WKST (the RFC 5545 example), so these two pin down WKST handling.
    Case {
        name: "biweekly Tue+Sun WKST=SU",
        rule: "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;WKST=SU",
        dtstart: "2024-01-02T09:00",
    },
    Case {
        name: "biweekly Tue+Sun WKST=MO",
        rule: "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;WKST=MO",
        dtstart: "2024-01-02T09:00",
    },
    Case {
        name: "last Friday of month",
        rule: "FREQ=MONTHLY;BYDAY=-1FR",
        dtstart: "2024-01-26T17:00",
    },
    Case {
        name: "last weekday of month",
        rule: "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        dtstart: "2024-01-31T09:00",
    },
    Case {
        name: "US Thanksgiving",
        rule: "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
        dtstart: "2024-11-28T08:00",
    },
    Case {
        name: "4x a day (8/20h :00/:30)",
        rule: "FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0,30",
        dtstart: "2024-01-01T08:00",
    },
    Case {
        name: "monthly on the 15th",
        rule: "FREQ=MONTHLY;BYMONTHDAY=15",
        dtstart: "2024-01-15T12:00",
    },
    Case {
        name: "monthly on the 31st",
        rule: "FREQ=MONTHLY;BYMONTHDAY=31",
        dtstart: "2024-01-31T06:00",
    },
    Case {
        name: "last day of month",
        rule: "FREQ=MONTHLY;BYMONTHDAY=-1",
        dtstart: "2024-01-31T22:00",
    },
];

/// A realistic "next alarm after now": the rules started years earlier.
const NOW: &str = "2026-11-22T04:00:00Z";
const OPS: [u16; 2] = [1, 100];
const BATCHES: usize = 5;
const GOAL: f64 = 10.0;

struct Prepared {
    case: &'static Case,
    ours: Vec<Schedule>,
    theirs: RRuleSet,
}

/// What both implementations need besides the rule, built once.
struct Env {
    zone: TimeZone,
    calendar: Calendar,
    now: Timestamp,
    /// `RRuleSet::after` keeps an occurrence equal to its argument (it is
    /// inclusive, unlike our `after`); all occurrences are whole seconds, so
    /// one second later asks the same question as our exclusive `now`.
    theirs_from: RruleInstant,
}

fn ours_next(p: &Prepared, env: &Env, n: u16) -> Preview {
    let query = OccurrenceQuery {
        after: env.now,
        limit: usize::from(n),
        include_suppressed: false,
    };
    occurrences(&p.ours, &env.zone, true, &env.calendar, &query)
}

fn theirs_next(p: &Prepared, env: &Env, n: u16) -> RRuleResult {
    // `after` consumes the set, so answering from a prebuilt set costs a clone.
    p.theirs.clone().after(env.theirs_from).all(n)
}

/// `YYYY-MM-DDTHH:MM[:SS]` (local) as iCalendar UTC, `YYYYMMDDTHHMMSSZ`.
fn ical_utc(local: &str) -> Result<String, String> {
    let dt: DateTime = local
        .parse()
        .map_err(|e| format!("bad date-time `{local}`: {e}"))?;
    Ok(dt.strftime("%Y%m%dT%H%M%SZ").to_string())
}

fn rrule_instant(at: Timestamp) -> Result<RruleInstant, String> {
    let text = format!(
        "DTSTART:{}\nRRULE:FREQ=DAILY",
        at.strftime("%Y%m%dT%H%M%SZ")
    );
    let set: RRuleSet = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
    Ok(*set.get_dt_start())
}

fn rrule_text(case: &Case) -> Result<String, String> {
    Ok(format!(
        "DTSTART:{}\nRRULE:{}",
        ical_utc(case.dtstart)?,
        case.rule
    ))
}

fn prepare(case: &'static Case) -> Result<Prepared, String> {
    let ours = RecurrenceRule::parse(case.rule, case.dtstart)
        .map_err(|e| format!("{}: our parser: {e}", case.name))?;
    let text = rrule_text(case)?;
    let theirs = text
        .parse::<RRuleSet>()
        .map_err(|e| format!("{}: rrule parser: {e}", case.name))?;
    Ok(Prepared {
        case,
        ours: vec![Schedule::Rule(Box::new(ours))],
        theirs,
    })
}

fn show(secs: i64) -> String {
    Timestamp::from_second(secs).map_or_else(|_| format!("{secs}s"), |t| t.to_string())
}

/// Compares both implementations' answers for every op; prints the lists when they differ.
fn verify(p: &Prepared, env: &Env) -> bool {
    let mut ok = true;
    for n in OPS {
        let preview = ours_next(p, env, n);
        let ours: Vec<i64> = preview
            .items
            .iter()
            .map(|o| o.fire_at().as_second())
            .collect();
        let theirs: Vec<i64> = theirs_next(p, env, n)
            .dates
            .iter()
            .map(|d| d.timestamp())
            .collect();
        // Every rule here is endless, so a short list is as wrong as a different one.
        let full = preview.complete && ours.len() == usize::from(n);
        if ours == theirs && full {
            println!(
                "  ok    {:<26} next {:<3}  {} .. {}",
                p.case.name,
                n,
                show(ours[0]),
                show(ours[ours.len() - 1])
            );
            continue;
        }
        ok = false;
        println!(
            "  FAIL  {:<26} next {:<3}  {} | {} (ours complete: {})",
            p.case.name, n, p.case.rule, p.case.dtstart, preview.complete
        );
        println!("        {:>4}  {:<22}  {:<22}", "#", "ours", "rrule");
        for i in 0..ours.len().max(theirs.len()) {
            let a = ours.get(i).copied();
            let b = theirs.get(i).copied();
            println!(
                "      {} {:>4}  {:<22}  {:<22}",
                if a == b { ' ' } else { '*' },
                i,
                a.map_or_else(|| "-".to_owned(), show),
                b.map_or_else(|| "-".to_owned(), show)
            );
        }
    }
    ok
}

fn time_batch<R>(iters: u64, op: &mut impl FnMut() -> R) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(op());
    }
    start.elapsed()
}

/// Grows the iteration count until one batch lasts `target`; doubles as warm-up.
fn calibrate<R>(target: Duration, op: &mut impl FnMut() -> R) -> u64 {
    let mut iters = 1u64;
    loop {
        let took = time_batch(iters, op);
        if took >= target {
            return iters;
        }
        // Overshoot a little so the next try usually lands; cap the jump
        // because the first, cold runs are slower than the steady state.
        let scale = if took.is_zero() {
            100.0
        } else {
            (target.as_secs_f64() / took.as_secs_f64() * 1.2).min(100.0)
        };
        iters = ((iters as f64 * scale).ceil() as u64).max(iters + 1);
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median ns/op of each side; batches alternate so that drift in machine
/// load (two cores, other builds) hits both sides alike.
fn measure_pair<A, B>(
    target: Duration,
    mut ours: impl FnMut() -> A,
    mut theirs: impl FnMut() -> B,
) -> (f64, f64) {
    let n_ours = calibrate(target, &mut ours);
    let n_theirs = calibrate(target, &mut theirs);
    let mut a = Vec::with_capacity(BATCHES);
    let mut b = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        a.push(time_batch(n_ours, &mut ours).as_nanos() as f64 / n_ours as f64);
        b.push(time_batch(n_theirs, &mut theirs).as_nanos() as f64 / n_theirs as f64);
    }
    (median(a), median(b))
}

/// Nanoseconds with thousands separators, for a table read by people.
fn ns(value: f64) -> String {
    if value < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{value:.0}");
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn geometric_mean(xs: &[f64]) -> f64 {
    (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp()
}

fn main() -> ExitCode {
    // cargo bench adds `--bench` to harness-less binaries; other flags are
    // ignored for the same reason, so only `--quick` means anything here.
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    let target = Duration::from_millis(if quick { 20 } else { 200 });

    let setup = || -> Result<(Vec<Prepared>, Env), String> {
        let db = TimeZoneDatabase::bundled();
        let zone = TimeZoneName::resolve("UTC", &db).map_err(|e| e.to_string())?;
        let now: Timestamp = NOW.parse().map_err(|e| format!("{NOW}: {e}"))?;
        let env = Env {
            zone: zone.zone().clone(),
            calendar: Calendar::default(),
            now,
            theirs_from: rrule_instant(now + Duration::from_secs(1))?,
        };
        let cases = CASES.iter().map(prepare).collect::<Result<_, _>>()?;
        Ok((cases, env))
    };
    let (cases, env) = match setup() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("setup failed: {e}");
            return ExitCode::FAILURE;
        }
    };

    println!("schedule bench: our engine vs rrule 0.14, zone UTC, now = {NOW}");
    println!("verifying: next 1 and next 100 after now must be the same instants");
    let mut all_ok = true;
    for p in &cases {
        all_ok &= verify(p, &env);
    }
    if !all_ok {
        eprintln!("the implementations disagree; nothing was timed");
        return ExitCode::FAILURE;
    }

    println!(
        "\ntiming: median of {BATCHES} interleaved batches, each >= {} ms{}",
        target.as_millis(),
        if quick { " (--quick)" } else { "" }
    );
    let name_width = CASES.iter().map(|c| c.name.len()).max().unwrap_or(4);
    println!(
        "{:<name_width$}  {:<8}  {:>12}  {:>12}  {:>9}",
        "rule", "op", "ours ns/op", "rrule ns/op", "rrule/ours"
    );
    let mut ratios: [Vec<f64>; OPS.len()] = Default::default();
    for p in &cases {
        for (slot, n) in OPS.into_iter().enumerate() {
            let (ours, theirs) = measure_pair(
                target,
                || ours_next(black_box(p), black_box(&env), black_box(n)),
                || theirs_next(black_box(p), black_box(&env), black_box(n)),
            );
            let ratio = theirs / ours;
            ratios[slot].push(ratio);
            println!(
                "{:<name_width$}  {:<8}  {:>12}  {:>12}  {:>8.1}x",
                p.case.name,
                format!("next {n}"),
                ns(ours),
                ns(theirs),
                ratio
            );
        }
    }

    println!("\ngoal: >= {GOAL}x (rrule ns/op / ours ns/op), judged on the geometric mean");
    for (slot, n) in OPS.into_iter().enumerate() {
        let xs = &ratios[slot];
        let below = xs.iter().filter(|r| **r < GOAL).count();
        let verdict = match (geometric_mean(xs) >= GOAL, below) {
            (true, 0) => "met (every rule)".to_owned(),
            (true, k) => format!("met on the geometric mean; {k} rule(s) below"),
            (false, k) => format!("NOT met; {k} rule(s) below"),
        };
        println!(
            "next {n:<3}  geometric mean {:>7.1}x  (min {:.1}x, max {:.1}x)  goal {verdict}",
            geometric_mean(xs),
            xs.iter().copied().fold(f64::INFINITY, f64::min),
            xs.iter().copied().fold(0.0, f64::max),
        );
    }

    println!("\nparse (not in the ratios above): median ns/op");
    println!("{:<name_width$}  {:>12}  {:>12}", "rule", "ours", "rrule");
    // Parsing happens once per alarm edit, so a shorter run is enough.
    let parse_target = target / 4;
    for case in CASES {
        let text = match rrule_text(case) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let (ours, theirs) = measure_pair(
            parse_target,
            || RecurrenceRule::parse(black_box(case.rule), black_box(case.dtstart)),
            || black_box(text.as_str()).parse::<RRuleSet>(),
        );
        println!(
            "{:<name_width$}  {:>12}  {:>12}",
            case.name,
            ns(ours),
            ns(theirs)
        );
    }
    ExitCode::SUCCESS
}
