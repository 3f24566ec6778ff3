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

use std::collections::VecDeque;
use std::fmt;

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use super::civil::{SECS_PER_DAY, civil_from_days, datetime_of, day_of};
use super::rrule::END_OF_TIME;
use super::{Schedule, ScheduleCursor, Until};
use crate::ids::ExceptionPeriodId;
use crate::model::{ExceptionPeriod, Holiday, HolidayDate, HolidayPreference};

/// The most occurrences one preview may ask for.
pub const MAX_PREVIEW_LIMIT: usize = 500;

/// How much walking one call may do: every day, week, month or year period
/// examined, every wall time a rule's period produces and every wall time
/// resolved costs one unit. When it runs out the preview stops early and
/// says so (`Preview::complete == false`). It bounds the cost of heavily
/// suppressed or very sparse schedules; `Preview::spent` reports what a
/// call used, so tests can pin the work of the worst accepted alarms.
pub const SCAN_BUDGET: u64 = 2_000_000;

/// How far before `after` (in civil time) the walk starts: a wall time can
/// resolve up to a day later than it reads (a skipped calendar day), two
/// offsets jiff accepts differ by less than 52 hours (real tzdb offsets,
/// local mean times included, by about 31), and a holiday delay adds up to
/// a day.
const LOOKBACK_SECS: i64 = 5 * SECS_PER_DAY;

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
#[derive(Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Local seconds of the nominal wall time, always within jiff's civil
    /// range (checked when the occurrence is made); turned into a jiff
    /// value only when asked, which keeps a long preview cheap.
    local: i64,
    fire_at: Timestamp,
    schedules: ScheduleMask,
    /// Adjustments and suppression are rare; boxing them keeps the common
    /// occurrence small and cheap to move.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Extra {
    adjustment: Adjustment,
    suppressed: Option<SuppressionReason>,
}

static NO_ADJUSTMENT: Adjustment = Adjustment {
    gap_shift: None,
    holiday_delay: None,
    absorbed_delayed: false,
};

impl Occurrence {
    /// The nominal local date and time the schedule asked for.
    pub fn local(&self) -> DateTime {
        datetime_of(self.local).unwrap_or(DateTime::MAX)
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
        self.extra
            .as_ref()
            .map_or(&NO_ADJUSTMENT, |e| &e.adjustment)
    }
    /// Why it does not ring, when suppressed.
    pub fn suppressed(&self) -> Option<&SuppressionReason> {
        self.extra.as_ref().and_then(|e| e.suppressed.as_ref())
    }
}

impl fmt::Debug for Occurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Occurrence")
            .field("local", &self.local())
            .field("fire_at", &self.fire_at)
            .field("schedules", &self.schedules.indexes())
            .field("adjustment", self.adjustment())
            .field("suppressed", &self.suppressed())
            .finish()
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

    /// Suppression or delay for a nominal local date (a day number), as
    /// indexes into this calendar so the hot path copies no strings.
    fn judge(&self, day: i32) -> Verdict {
        if self.exceptions.is_empty() && self.holidays.is_empty() {
            return Verdict::Ring { delay: None };
        }
        if let Some(i) = self
            .exceptions
            .iter()
            .position(|(s, e, _, _)| (*s..=*e).contains(&day))
        {
            return Verdict::Suppressed(Suppression::Exception(i as u32));
        }
        if self.holidays.is_empty() {
            return Verdict::Ring { delay: None };
        }
        let (_, m, d) = civil_from_days(day);
        let mut delay: Option<(u16, u32)> = None;
        for (i, h) in self.holidays.iter().enumerate() {
            let hit = match h.date {
                HolidayDate::Fixed(date) => day_of(date) == day,
                HolidayDate::Recurring { month, day: md } => month == m && md == d,
            };
            if !hit {
                continue;
            }
            match h.preference {
                HolidayPreference::Skip => {
                    return Verdict::Suppressed(Suppression::Holiday(i as u32));
                }
                HolidayPreference::Delay(minutes) => {
                    // Two delayed holidays on one date: the longer delay wins.
                    let minutes = minutes.get();
                    if delay.is_none_or(|(cur, _)| cur < minutes) {
                        delay = Some((minutes, i as u32));
                    }
                }
                HolidayPreference::Fire => {}
            }
        }
        Verdict::Ring { delay }
    }

    fn reason(&self, s: Suppression) -> SuppressionReason {
        match s {
            Suppression::Disabled => SuppressionReason::Disabled,
            Suppression::Exception(i) => {
                let (_, _, id, name) = &self.exceptions[i as usize];
                SuppressionReason::ExceptionPeriod {
                    id: *id,
                    name: name.clone(),
                }
            }
            Suppression::Holiday(i) => SuppressionReason::HolidaySkip {
                holiday: self.holidays[i as usize].name.clone(),
            },
        }
    }
}

/// A compact suppression, resolved to names only for occurrences returned.
#[derive(Debug, Clone, Copy)]
enum Suppression {
    Disabled,
    Exception(u32),
    Holiday(u32),
}

enum Verdict {
    Suppressed(Suppression),
    /// Rings, possibly delayed by (minutes, holiday index).
    Ring {
        delay: Option<(u16, u32)>,
    },
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
    /// The units of [`SCAN_BUDGET`] the call used: the work it did,
    /// counted, not timed.
    pub spent: u64,
}

/// A wall time resolved in a zone.
struct Resolved {
    /// The compatible instant (Unix seconds).
    at: i64,
    /// The earliest instant any wall time at or after this one can resolve to.
    floor: i64,
    /// Gap shift in seconds (0 when the wall time exists).
    shift: i32,
}

/// Resolves wall times in one zone, remembering the offset of the last
/// stretch without transitions. Far from any transition a wall time has
/// exactly one instant, `local - offset`, so most resolutions skip the
/// zone's transition search entirely.
struct Resolver<'z> {
    zone: &'z TimeZone,
    offset: i64,
    /// Instants in `lo..hi` are at least [`TRANSITION_MARGIN`] from any
    /// transition of the cached stretch. Any two offsets jiff accepts
    /// (±25:59:59) differ by less than that, so no other offset can map a
    /// wall time to an instant in there: the wall time is unambiguous.
    lo: i64,
    hi: i64,
}

/// The first local second jiff can represent: -9999-01-01T00:00.
const LOCAL_MIN: i64 = -377_705_116_800;

/// Margin kept from transitions by the fast path: more than any difference
/// between two offsets jiff accepts (under 52 hours).
const TRANSITION_MARGIN: i64 = 3 * SECS_PER_DAY;

impl<'z> Resolver<'z> {
    fn new(zone: &'z TimeZone) -> Self {
        Self {
            zone,
            offset: 0,
            lo: 0,
            hi: 0,
        }
    }

    fn resolve(&mut self, local: i64) -> Option<Resolved> {
        let at = local - self.offset;
        if (self.lo..self.hi).contains(&at) {
            return Some(Resolved {
                at,
                floor: at,
                shift: 0,
            });
        }
        let dt = datetime_of(local)?;
        let r = match self.zone.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                let at = local - i64::from(offset.seconds());
                self.remember(at, offset.seconds());
                Resolved {
                    at,
                    floor: at,
                    shift: 0,
                }
            }
            AmbiguousOffset::Gap { before, after } => Resolved {
                at: local - i64::from(before.seconds()),
                floor: local - i64::from(after.seconds()),
                shift: after.seconds() - before.seconds(),
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

    /// Caches the transition-free stretch around instant `at`.
    fn remember(&mut self, at: i64, offset: i32) {
        let Ok(ts) = Timestamp::from_second(at) else {
            return;
        };
        let after_ts = ts.checked_add(SignedDuration::from_secs(1)).unwrap_or(ts);
        let start = self
            .zone
            .preceding(after_ts)
            .next()
            .map_or(Timestamp::MIN, |t| t.timestamp());
        let end = self
            .zone
            .following(ts)
            .next()
            .map_or(Timestamp::MAX, |t| t.timestamp());
        self.offset = i64::from(offset);
        self.lo = start.as_second() + TRANSITION_MARGIN;
        self.hi = end.as_second() - TRANSITION_MARGIN;
    }
}

/// An occurrence in flight: integers and indexes only, turned into an
/// [`Occurrence`] (with names) only if it is returned.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Nominal wall time, local seconds.
    local: i64,
    /// The resolved instant before any delay.
    at: i64,
    /// When it rings (after a holiday delay).
    fin: i64,
    /// Gap shift in seconds (a gap is at most a day or so).
    shift: i32,
    mask: u16,
    absorbed: bool,
    suppressed: Option<Suppression>,
    delay: Option<(u16, u32)>,
}

/// Keeps `items` ordered by `key`, inserting after equal keys. Arrivals are
/// almost always in order, so the search from the back is one comparison.
fn insert_ordered(items: &mut VecDeque<Pending>, p: Pending, key: impl Fn(&Pending) -> i64) {
    let k = key(&p);
    if items.back().is_none_or(|last| key(last) <= k) {
        items.push_back(p);
        return;
    }
    let mut idx = items.len();
    while idx > 0 && key(&items[idx - 1]) > k {
        idx -= 1;
    }
    items.insert(idx, p);
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
            spent: 0,
        };
    }
    let after = query.after.as_second();
    let after_local = after + i64::from(zone.to_offset(query.after).seconds());
    let from_local = after_local - LOOKBACK_SECS;
    let mut budget = SCAN_BUDGET;
    let mut resolver = Resolver::new(zone);

    let schedules = &schedules[..schedules.len().min(16)];
    let mut cursors: Vec<ScheduleCursor<'_>> =
        schedules.iter().map(|s| s.cursor(from_local)).collect();
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
    let mut heads: Vec<Option<i64>> = cursors
        .iter_mut()
        .map(|c| next_from(c, &mut budget, from_local))
        .collect();

    // Resolved occurrences waiting until no later wall time can land before them.
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut judge = Judge {
        calendar,
        enabled,
        include_suppressed: query.include_suppressed,
        after,
        limit,
        held: None,
        out: VecDeque::new(),
        items: Vec::with_capacity(limit),
    };

    loop {
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|t| (i, t)))
            .min_by_key(|&(_, t)| t);
        let resolved = next.and_then(|(_, local)| resolver.resolve(local));
        let floor = resolved.as_ref().map_or(i64::MAX, |r| r.floor);
        while pending.front().is_some_and(|p| p.at < floor) {
            let p = pending.pop_front().expect("checked non-empty");
            if judge.push(p) {
                return Preview {
                    items: judge.items,
                    complete: true,
                    spent: SCAN_BUDGET - budget,
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
        if let Some(same) = pending.iter_mut().rev().find(|p| p.at == r.at) {
            same.mask |= bit;
            // Keep as nominal the wall time the clock actually shows at the
            // instant (the unshifted one), else the earliest.
            if (r.shift == 0 && same.shift != 0) || (r.shift == same.shift && local < same.local) {
                same.local = local;
                same.shift = r.shift;
            }
            continue;
        }
        let p = Pending {
            local,
            at: r.at,
            fin: r.at,
            mask: bit,
            shift: r.shift,
            suppressed: None,
            delay: None,
            absorbed: false,
        };
        insert_ordered(&mut pending, p, |p| p.at);
    }
    let complete = budget > 0;
    while let Some(p) = pending.pop_front() {
        if judge.push(p) {
            return Preview {
                items: judge.items,
                complete: true,
                spent: SCAN_BUDGET - budget,
            };
        }
    }
    judge.finish();
    Preview {
        items: judge.items,
        complete,
        spent: SCAN_BUDGET - budget,
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
    held: Option<Pending>,
    /// Decided occurrences ordered by the instant they ring.
    out: VecDeque<Pending>,
    items: Vec<Occurrence>,
}

impl Judge<'_> {
    /// Takes the next occurrence (in instant order); true when the limit is reached.
    fn push(&mut self, mut p: Pending) -> bool {
        let x = p.at;
        let day = p.local.div_euclid(SECS_PER_DAY) as i32;
        let verdict = if self.enabled {
            self.calendar.judge(day)
        } else {
            Verdict::Suppressed(Suppression::Disabled)
        };
        if self.held.is_some_and(|h| h.fin < x) {
            let h = self.held.take().expect("checked above");
            insert_ordered(&mut self.out, h, |p| p.fin);
        }
        match verdict {
            Verdict::Ring { delay } => {
                if let Some(h) = self.held.take() {
                    // The delayed occurrence reaches this one: ring once, here.
                    p.mask |= h.mask;
                    p.absorbed = true;
                }
                match delay {
                    Some((minutes, holiday)) => {
                        p.fin = x + i64::from(minutes) * 60;
                        p.delay = Some((minutes, holiday));
                        self.held = Some(p);
                    }
                    None => insert_ordered(&mut self.out, p, |p| p.fin),
                }
            }
            Verdict::Suppressed(s) if self.include_suppressed => {
                p.suppressed = Some(s);
                insert_ordered(&mut self.out, p, |p| p.fin);
            }
            Verdict::Suppressed(_) => {}
        }
        self.release(x)
    }

    /// Emits every decided occurrence before `watermark`: nothing still to
    /// come can land before it.
    fn release(&mut self, watermark: i64) -> bool {
        while self.out.front().is_some_and(|p| p.fin < watermark) {
            let p = self.out.pop_front().expect("checked non-empty");
            if p.fin <= self.after {
                continue;
            }
            let Ok(fire_at) = Timestamp::from_second(p.fin) else {
                continue;
            };
            if !(LOCAL_MIN..END_OF_TIME).contains(&p.local) {
                continue;
            }
            let plain = p.shift == 0 && p.delay.is_none() && !p.absorbed && p.suppressed.is_none();
            let extra = (!plain).then(|| {
                Box::new(Extra {
                    adjustment: Adjustment {
                        gap_shift: (p.shift != 0)
                            .then(|| SignedDuration::from_secs(i64::from(p.shift))),
                        holiday_delay: p.delay.map(|(minutes, i)| HolidayDelay {
                            minutes,
                            holiday: self.calendar.holidays[i as usize].name.clone(),
                        }),
                        absorbed_delayed: p.absorbed,
                    },
                    suppressed: p.suppressed.map(|s| self.calendar.reason(s)),
                })
            });
            self.items.push(Occurrence {
                local: p.local,
                fire_at,
                schedules: ScheduleMask(p.mask),
                extra,
            });
            if self.items.len() >= self.limit {
                return true;
            }
        }
        false
    }

    fn finish(&mut self) {
        if let Some(h) = self.held.take() {
            insert_ordered(&mut self.out, h, |p| p.fin);
        }
        self.release(i64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::civil::local_seconds;

    #[test]
    fn local_bounds_match_jiff() {
        assert_eq!(local_seconds(DateTime::MIN), LOCAL_MIN);
        assert_eq!(local_seconds(DateTime::MAX) + 1, END_OF_TIME);
    }
}
