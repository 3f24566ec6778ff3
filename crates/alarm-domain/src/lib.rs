//! Smart Alarm's pure domain: validated value types, entities, and the DST-correct schedule engine.
//!
//! This crate does no I/O: no runtime, no database, no network, no clock
//! reads inside the engine. Time is always an argument and the time-zone
//! database is handed in by the application.
//!
//! # Schedule semantics (product promises)
//!
//! * **Civil-time expansion.** Schedules and RFC 5545 rules are expanded in
//!   local (civil) time; every wall time is then resolved on its own in the
//!   alarm's zone. Nothing steps a zoned value by days, so a gap-shifted time
//!   never drifts into the following days.
//! * **Gaps and folds.** A wall time inside a spring-forward gap fires shifted
//!   forward by the gap's length (02:30 in a one-hour gap fires at 03:30), the
//!   "compatible" rule of RFC 5545, java.time and Temporal. A wall time that
//!   occurs twice fires once, at the earlier instant. A zone whose midnight
//!   is skipped (America/Santiago) loses no day: 00:30 fires at 01:30. Zones
//!   with half-hour shifts (Australia/Lord_Howe), odd offsets
//!   (Pacific/Chatham, +12:45/+13:45), historic rules (America/Sao_Paulo's DST
//!   until 2019) and dates after 2100 (the zone's POSIX rule) are resolved by
//!   the same code.
//! * **One ring per instant.** Occurrences that resolve to the same UTC
//!   instant (two schedules at the same time, or a gap-shifted 02:30 meeting
//!   a scheduled 03:30) merge into one occurrence listing every schedule that
//!   produced it. Its nominal wall time is the one the clock shows at that
//!   instant.
//! * **Rules.** DTSTART counts as an occurrence only when it matches the rule.
//!   COUNT counts the rule's occurrences before any suppression. UNTIL may be
//!   UTC (`Z`, compared with the resolved instant) or local (compared in civil
//!   time; a date alone means the end of that day). Plain and ordinal
//!   weekdays in one BYDAY are a union (`MO,-1FR`: every Monday and the last
//!   Friday). Ordinals count within the month for MONTHLY and for YEARLY with
//!   BYMONTH, within the year otherwise. BYSETPOS picks from a period's whole
//!   set before DTSTART bounds it, as python-dateutil does: "the first
//!   weekday of the month" starting on the 15th next fires in the following
//!   month, not on the 15th. A rule with no occurrence
//!   within 400 × INTERVAL years of DTSTART (the Gregorian calendar repeats
//!   every 400 years) is rejected as `rule-never-fires`; rare but valid rules
//!   (February 29 on a Monday) are accepted. Because the zone is not known
//!   when a rule is parsed, a UTC UNTIL is judged there with two days' slack,
//!   and again exactly in the alarm's zone by `Alarm::create`/`revise`.
//! * **No start date for daily and weekly.** They may be previewed from any
//!   instant (1900..2200 and beyond), including before the alarm existed.
//!   `Once` must be in the future when created or changed; an unchanged
//!   `Once` that already fired stays in the alarm without blocking edits.
//! * **Suppression.** Exception periods and holidays are judged on the
//!   nominal local date in the alarm's zone. A holiday `skip` suppresses; a
//!   `delay` moves the fire later by its minutes and, when the delayed instant
//!   reaches the following occurrence, merges into it. A disabled alarm yields
//!   only suppressed occurrences.
//! * **Bounded work.** One preview examines at most [`schedule::SCAN_BUDGET`]
//!   units (each day/week/month/year period walked and each wall time
//!   resolved costs one), never walks past 9999-12-31, and returns at most
//!   [`schedule::MAX_PREVIEW_LIMIT`] occurrences; when the budget runs out
//!   the answer says it is incomplete instead of looping.
//!
//! # Example
//!
//! An alarm at 02:30 on weekdays and 03:30 every day in New York, asked on
//! Saturday 2026-03-07 for its next occurrences across the spring-forward
//! night (Sunday the 8th has no 02:30, but only the daily 03:30 rings then).
//!
//! ```
//! use alarm_domain::jiff::tz::TimeZoneDatabase;
//! use alarm_domain::schedule::{occurrences, Calendar, OccurrenceQuery, Schedule, WallTime};
//! use alarm_domain::tz::TimeZoneName;
//!
//! let db = TimeZoneDatabase::bundled();
//! let zone = TimeZoneName::resolve("America/New_York", &db)?;
//! let schedules = [
//!     Schedule::weekdays(WallTime::parse("02:30")?),
//!     Schedule::Daily { time: WallTime::parse("03:30")? },
//! ];
//! let query = OccurrenceQuery {
//!     after: "2026-03-07T12:00:00Z".parse()?,
//!     limit: 3,
//!     include_suppressed: false,
//! };
//! let preview = occurrences(&schedules, zone.zone(), true, &Calendar::default(), &query);
//! let fired: Vec<String> = preview.items.iter().map(|o| o.fire_at().to_string()).collect();
//! // Sunday 03:30 EDT, then Monday 02:30 and 03:30 EDT.
//! assert_eq!(fired, ["2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z", "2026-03-09T07:30:00Z"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//! * [`error`]: [`ValidationError`] (field, stable code, reason).
//! * [`ids`]: UUID v7 newtypes.
//! * [`tz`]: IANA zone names resolved against a handed-in database.
//! * [`model`]: users, alarms, exception periods, holidays (and Brazil's),
//!   routines, webhooks, alarm events, audit records.
//! * [`schedule`]: schedules, the RRULE subset, and the occurrence engine.
//! * [`trigger`]: the trigger model (fire, snooze, escalation), leases, ringing.
//! * [`firing`]: the fire-time policy: what a due trigger leaves behind
//!   (ring, missed, expired, skipped, the follow-up, the next fire) and the
//!   delivery keys, as pure functions the trigger engine calls.
//! * [`ports`]: the traits adapters implement and the change sets they commit
//!   atomically (one call per unit of work; time is an argument).
//! * [`services`]: the use cases, which check ownership, compute triggers and
//!   submit one change set each.

pub mod error;
pub mod firing;
pub mod ids;
pub mod limits;
pub mod model;
pub mod ports;
pub mod schedule;
pub mod sending;
pub mod services;
pub mod trigger;
pub mod tz;

pub use error::ValidationError;

/// Re-exported so adapters and fakes build blob bodies ([`ports::ByteStream`])
/// from the same `Bytes` type the port uses.
pub use bytes;
/// Re-exported so a fake or an adapter can wrap its own stream in a
/// [`ports::ByteStream`].
pub use futures_core;
/// The date-time library the domain speaks, re-exported so adapters use the
/// same version.
pub use jiff;
