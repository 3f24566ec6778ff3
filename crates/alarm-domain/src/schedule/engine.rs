//! The occurrence engine: merges schedules, resolves wall times in the zone, applies suppressions and delays.
//!
//! Pipeline, all streaming:
//! 1. each schedule walks its wall times in civil order (local seconds);
//! 2. the smallest pending wall time is resolved in the zone with the
//!    "compatible" rule (gap → shifted forward, fold → earlier instant) and
//!    queued by instant; coinciding instants merge into one occurrence;
//! 3. a queued instant is released once no wall time still to come can
//!    resolve to an instant at or before it (the next wall time's
//!    *earliest* possible instant is a lower bound for all later ones);
//! 4. released occurrences are judged on their nominal local date
//!    (disabled, exception period, holiday skip or delay), delayed ones are
//!    held until it is known whether they reach the following occurrence.

use std::collections::BTreeMap;

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use super::civil::{SECS_PER_DAY, civil_from_days, datetime_of, day_of};
use super::{Schedule, ScheduleCursor, Until};
use crate::ids::ExceptionPeriodId;
use crate::model::{ExceptionPeriod, Holiday, HolidayDate, HolidayPreference};

/// The most occurrences one preview may ask for.
pub const MAX_PREVIEW_LIMIT: usize = 500;

/// How much walking one call may do: every day, week, month or year period
/// examined and every wall time resolved costs one unit. When it runs out the
/// preview stops early and says so (`Preview::complete == false`). It bounds
/// the cost of heavily suppressed or very sparse schedules to tens of
/// milliseconds.
pub const SCAN_BUDGET: u64 = 2_000_000;

/// How far before `after` (in civil time) the walk starts: a wall time can
/// resolve up to a day later than it reads (a skipped calendar day), zones'
/// offsets differ by up to 26 hours, and a holiday delay adds up to a day.
const LOOKBACK_SECS: i64 = 4 * SECS_PER_DAY;

/// The schedules (by index in the alarm, 0..16) that produced an occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScheduleMask(u16);

impl ScheduleMask {
    /// The mask holding only `index`.
    pub fn single(index: usize) -> Self {
        Self(1 << index)
    }
    /// Whether schedule `index` contributed.
    pub fn contains(&self, index: usize) -> bool {
        index < 16 && self.0 & (1 << index) != 0
    }
    /// The contributing schedule indexes, ascending.
    pub fn indexes(&self) -> Vec<usize> {
        (0..16).filter(|i| self.contains(*i)).collect()
    }
    /// The raw bits (bit i = schedule i).
    pub fn bits(&self) -> u16 {
        self.0
    }
}

/// How an occurrence's instant differs from its nominal wall time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Adjustment {
    /// The wall time fell in a spring-forward gap and fires this much later
    /// on the clock (e.g. 02:30 → 03:30 for a one-hour gap).
    pub gap_shift: Option<SignedDuration>,
    /// A holiday's `delay` preference moved the fire later.
    pub holiday_delay: Option<HolidayDelay>,
    /// A delayed occurrence reached this one and was merged into it.
    pub absorbed_delayed: bool,
}

impl Adjustment {
    /// Whether nothing was adjusted.
    pub fn is_none(&self) -> bool {
        self.gap_shift.is_none() && self.holiday_delay.is_none() && !self.absorbed_delayed
    }
}

/// A holiday delay that applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayDelay {
    /// Minutes added to the instant.
    pub minutes: u16,
    /// The holiday's name.
    pub holiday: String,
}

/// Why an occurrence does not ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuppressionReason {
    /// The alarm is disabled.
    Disabled,
    /// The nominal local date lies in an exception period.
    ExceptionPeriod {
        /// The period's id.
        id: ExceptionPeriodId,
        /// The period's name.
        name: String,
    },
    /// The nominal local date is a holiday the user skips.
    HolidaySkip {
        /// The holiday's name.
        holiday: String,
    },
}

impl SuppressionReason {
    /// Stable code: `disabled`, `exception-period`, `holiday-skip`.
    pub fn code(&self) -> &'static str {
        match self {
            SuppressionReason::Disabled => "disabled",
            SuppressionReason::ExceptionPeriod { .. } => "exception-period",
            SuppressionReason::HolidaySkip { .. } => "holiday-skip",
        }
    }
}

/// One time an alarm rings (or would have rung, when suppressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    local: DateTime,
    fire_at: Timestamp,
    schedules: ScheduleMask,
    adjustment: Adjustment,
    suppressed: Option<SuppressionReason>,
}

impl Occurrence {
    /// The nominal local date and time the schedule asked for.
    pub fn local(&self) -> DateTime {
        self.local
    }
    /// The UTC instant it fires.
    pub fn fire_at(&self) -> Timestamp {
        self.fire_at
    }
    /// The schedules that produced it.
    pub fn schedules(&self) -> ScheduleMask {
        self.schedules
    }
    /// Gap shift and holiday delay, if any.
    pub fn adjustment(&self) -> &Adjustment {
        &self.adjustment
    }
    /// Why it does not ring, when suppressed.
    pub fn suppressed(&self) -> Option<&SuppressionReason> {
        self.suppressed.as_ref()
    }
}

/// Exception periods and holidays (with the user's preference for each),
/// prepared for fast look-up by local date.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    exceptions: Vec<(i32, i32, ExceptionPeriodId, String)>,
    holidays: Vec<CalendarHoliday>,
}

/// A holiday with what the user wants done on it.
#[derive(Debug, Clone)]
pub struct CalendarHoliday {
    date: HolidayDate,
    name: String,
    preference: HolidayPreference,
}

impl Calendar {
    /// A calendar from the owner's exception periods and the holidays that
    /// apply to them, each with its effective preference. Holidays whose
    /// preference is `fire` change nothing and are dropped.
    pub fn new<'a>(
        exceptions: impl IntoIterator<Item = &'a ExceptionPeriod>,
        holidays: impl IntoIterator<Item = (&'a Holiday, HolidayPreference)>,
    ) -> Self {
        Self {
            exceptions: exceptions
                .into_iter()
                .map(|p| {
                    (
                        day_of(p.start()),
                        day_of(p.end()),
                        p.id(),
                        p.name().to_owned(),
                    )
                })
                .collect(),
            holidays: holidays
                .into_iter()
                .filter(|(_, pref)| *pref != HolidayPreference::Fire)
                .map(|(h, preference)| CalendarHoliday {
                    date: h.date(),
                    name: h.name().to_owned(),
                    preference,
                })
                .collect(),
        }
    }

    /// Suppression or delay for a nominal local date (a day number).
    fn judge(&self, day: i32) -> (Option<SuppressionReason>, Option<HolidayDelay>) {
        if let Some((_, _, id, name)) = self
            .exceptions
            .iter()
            .find(|(s, e, _, _)| (*s..=*e).contains(&day))
        {
            return (
                Some(SuppressionReason::ExceptionPeriod {
                    id: *id,
                    name: name.clone(),
                }),
                None,
            );
        }
        if self.holidays.is_empty() {
            return (None, None);
        }
        let (_, m, d) = civil_from_days(day);
        let mut delay: Option<HolidayDelay> = None;
        for h in &self.holidays {
            let hit = match h.date {
                HolidayDate::Fixed(date) => day_of(date) == day,
                HolidayDate::Recurring { month, day: md } => month == m && md == d,
            };
            if !hit {
                continue;
            }
            match h.preference {
                HolidayPreference::Skip => {
                    return (
                        Some(SuppressionReason::HolidaySkip {
                            holiday: h.name.clone(),
                        }),
                        None,
                    );
                }
                HolidayPreference::Delay(minutes) => {
                    let minutes = minutes.get();
                    // Two delayed holidays on one date: the longer delay wins.
                    if delay.as_ref().is_none_or(|cur| cur.minutes < minutes) {
                        delay = Some(HolidayDelay {
                            minutes,
                            holiday: h.name.clone(),
                        });
                    }
                }
                HolidayPreference::Fire => {}
            }
        }
        (None, delay)
    }
}

/// What to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OccurrenceQuery {
    /// Occurrences strictly after this instant.
    pub after: Timestamp,
    /// At most this many (capped at [`MAX_PREVIEW_LIMIT`]).
    pub limit: usize,
    /// Whether suppressed occurrences are listed (with their reason).
    pub include_suppressed: bool,
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Occurrences in increasing instant order.
    pub items: Vec<Occurrence>,
    /// `false` when the scan budget ran out before `limit` was reached: more
    /// occurrences may exist. `true` means the list is all there is up to
    /// `limit` (fewer items means the alarm ends).
    pub complete: bool,
}

/// A wall time resolved in a zone.
struct Resolved {
    /// The compatible instant (Unix seconds).
    at: i64,
    /// The earliest instant any wall time at or after this one can resolve to.
    floor: i64,
    /// Gap shift in seconds (0 when the wall time exists).
    shift: i64,
}

fn resolve(zone: &TimeZone, local: i64) -> Option<Resolved> {
    let dt = datetime_of(local)?;
    let r = match zone.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => {
            let at = local - i64::from(offset.seconds());
            Resolved {
                at,
                floor: at,
                shift: 0,
            }
        }
        AmbiguousOffset::Gap { before, after } => Resolved {
            at: local - i64::from(before.seconds()),
            floor: local - i64::from(after.seconds()),
            shift: i64::from(after.seconds() - before.seconds()),
        },
        AmbiguousOffset::Fold { before, .. } => {
            let at = local - i64::from(before.seconds());
            Resolved {
                at,
                floor: at,
                shift: 0,
            }
        }
    };
    // Keep within jiff's timestamp range so conversions later cannot fail.
    Timestamp::from_second(r.at).ok()?;
    Some(r)
}

/// A resolved, merged occurrence before suppression is judged.
struct Base {
    local: i64,
    at: i64,
    mask: u16,
    shift: i64,
}

/// Computes the occurrences of `schedules` in `zone` after `query.after`.
///
/// `enabled == false` marks every occurrence suppressed (`disabled`); with
/// `include_suppressed == false` that is an empty list.
pub fn occurrences(
    schedules: &[Schedule],
    zone: &TimeZone,
    enabled: bool,
    calendar: &Calendar,
    query: &OccurrenceQuery,
) -> Preview {
    let limit = query.limit.min(MAX_PREVIEW_LIMIT);
    if limit == 0 || (!enabled && !query.include_suppressed) || schedules.is_empty() {
        return Preview {
            items: Vec::new(),
            complete: true,
        };
    }
    let after = query.after.as_second();
    let after_local = after + i64::from(zone.to_offset(query.after).seconds());
    let from_local = after_local - LOOKBACK_SECS;
    let mut budget = SCAN_BUDGET;

    let mut cursors: Vec<ScheduleCursor<'_>> = schedules
        .iter()
        .take(16)
        .map(|s| s.cursor(from_local))
        .collect();
    let until_utc: Vec<Option<i64>> = schedules
        .iter()
        .map(|s| match s {
            Schedule::Rule(rule) => match rule.until() {
                Some(Until::Utc(ts)) => Some(ts.as_second()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut heads: Vec<Option<i64>> = Vec::with_capacity(cursors.len());
    for c in &mut cursors {
        heads.push(next_from(c, &mut budget, from_local));
    }

    let mut pending: BTreeMap<i64, Base> = BTreeMap::new();
    let mut judge = Judge {
        calendar,
        enabled,
        include_suppressed: query.include_suppressed,
        after,
        limit,
        held: None,
        out: BTreeMap::new(),
        seq: 0,
        items: Vec::with_capacity(limit.min(64)),
    };

    loop {
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|t| (i, t)))
            .min_by_key(|&(_, t)| t);
        let resolved = next.and_then(|(_, local)| resolve(zone, local));
        let floor = resolved.as_ref().map_or(i64::MAX, |r| r.floor);
        while let Some(entry) = pending.first_entry() {
            if *entry.key() >= floor {
                break;
            }
            if judge.push(entry.remove()) {
                return Preview {
                    items: judge.items,
                    complete: true,
                };
            }
        }
        let (Some((i, local)), Some(r)) = (next, resolved) else {
            break;
        };
        heads[i] = next_from(&mut cursors[i], &mut budget, from_local);
        if budget == 0 {
            break;
        }
        budget -= 1;
        if until_utc[i].is_some_and(|until| r.at > until) {
            continue;
        }
        let bit = 1u16 << i;
        pending
            .entry(r.at)
            .and_modify(|b| {
                b.mask |= bit;
                // Keep as nominal the wall time the clock actually shows at
                // the instant (the unshifted one), else the earliest.
                if (r.shift == 0 && b.shift != 0) || (r.shift == b.shift && local < b.local) {
                    b.local = local;
                    b.shift = r.shift;
                }
            })
            .or_insert(Base {
                local,
                at: r.at,
                mask: bit,
                shift: r.shift,
            });
    }
    let complete = budget > 0;
    for (_, base) in std::mem::take(&mut pending) {
        if judge.push(base) {
            return Preview {
                items: judge.items,
                complete: true,
            };
        }
    }
    judge.finish();
    Preview {
        items: judge.items,
        complete,
    }
}

fn next_from(cursor: &mut ScheduleCursor<'_>, budget: &mut u64, from_local: i64) -> Option<i64> {
    // COUNT rules start at DTSTART; skip what lies before the window.
    loop {
        let t = cursor.next_local(budget)?;
        if t >= from_local {
            return Some(t);
        }
    }
}

/// Stage 4: suppression, holiday delays, the `after` filter and the limit.
struct Judge<'c> {
    calendar: &'c Calendar,
    enabled: bool,
    include_suppressed: bool,
    after: i64,
    limit: usize,
    /// An active, delayed occurrence waiting to learn whether it reaches the next one.
    held: Option<(i64, Occurrence)>,
    /// Decided occurrences keyed by (instant, arrival), released in order.
    out: BTreeMap<(i64, u64), Occurrence>,
    seq: u64,
    items: Vec<Occurrence>,
}

impl Judge<'_> {
    /// Takes the next base occurrence (in instant order); true when the limit is reached.
    fn push(&mut self, base: Base) -> bool {
        let x = base.at;
        let day = base.local.div_euclid(SECS_PER_DAY) as i32;
        let (suppressed, delay) = if self.enabled {
            self.calendar.judge(day)
        } else {
            (Some(SuppressionReason::Disabled), None)
        };
        let (Some(local), Ok(fire_at)) = (datetime_of(base.local), Timestamp::from_second(x))
        else {
            return false;
        };
        let mut occ = Occurrence {
            local,
            fire_at,
            schedules: ScheduleMask(base.mask),
            adjustment: Adjustment {
                gap_shift: (base.shift != 0).then(|| SignedDuration::from_secs(base.shift)),
                ..Adjustment::default()
            },
            suppressed,
        };
        if self.held.as_ref().is_some_and(|(fin, _)| *fin < x) {
            let (fin, h) = self.held.take().expect("checked above");
            self.insert(fin, h);
        }
        if occ.suppressed.is_none() {
            if let Some((_, h)) = self.held.take() {
                // The delayed occurrence reaches this one: ring once, here.
                occ.schedules.0 |= h.schedules.0;
                occ.adjustment.absorbed_delayed = true;
            }
            match delay {
                Some(d) => {
                    let fin = x + i64::from(d.minutes) * 60;
                    occ.adjustment.holiday_delay = Some(d);
                    match Timestamp::from_second(fin) {
                        Ok(ts) => occ.fire_at = ts,
                        Err(_) => return false,
                    }
                    self.held = Some((fin, occ));
                }
                None => self.insert(x, occ),
            }
        } else if self.include_suppressed {
            self.insert(x, occ);
        }
        self.release(x)
    }

    fn insert(&mut self, at: i64, occ: Occurrence) {
        self.seq += 1;
        self.out.insert((at, self.seq), occ);
    }

    /// Emits every decided occurrence before `watermark`: nothing still to
    /// come can land before it.
    fn release(&mut self, watermark: i64) -> bool {
        while let Some(entry) = self.out.first_entry() {
            if entry.key().0 >= watermark {
                break;
            }
            let at = entry.key().0;
            let occ = entry.remove();
            if at > self.after {
                self.items.push(occ);
                if self.items.len() >= self.limit {
                    return true;
                }
            }
        }
        false
    }

    fn finish(&mut self) {
        if let Some((fin, h)) = self.held.take() {
            self.insert(fin, h);
        }
        self.release(i64::MAX);
    }
}
