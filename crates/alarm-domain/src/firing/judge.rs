//! What a due trigger leaves behind, decided from the trigger, the alarm and calendar as stored now, the occurrence's ringing record and the moment: ring, missed, expired or skipped, and everything each commits.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{FireDecision, SkipReason, decide_fire, delivery_key, next_fire_plan};
use crate::model::{Alarm, AlarmEvent, AlarmEventKind};
use crate::ports::{FireOutcome, IdSource};
use crate::schedule::{Calendar, OccurrenceQuery};
use crate::sending::{EventChange, event_data};
use crate::trigger::{Delivery, OccurrenceRef, Ringing, RingingChange, Trigger, TriggerKind};

/// The windows a due trigger is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirePolicy {
    /// A trigger (other than an expiry) found later than this after its
    /// instant is recorded `missed` and does not ring; one found exactly
    /// this late still rings.
    pub grace: Duration,
    /// How long an occurrence rings unanswered after its last escalation
    /// before it is recorded `expired`.
    pub expiry_window: Duration,
}

impl Default for FirePolicy {
    /// Ten minutes of grace; thirty minutes to answer after the last
    /// escalation.
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(600),
            expiry_window: Duration::from_secs(1800),
        }
    }
}

/// What became of a due trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// It rang (a fire, a snooze's end or an escalation).
    Rang,
    /// It was found past the grace window and recorded `missed`.
    Missed,
    /// The occurrence went unanswered and was recorded `expired`.
    Expired,
    /// Nothing to ring: the alarm was deleted, disabled or changed, the
    /// occurrence moved or is suppressed now, or the user answered first.
    Skipped,
}

/// Decides `trigger`'s outcome at `now` under `policy`. `alarm` and
/// `calendar` are as stored now (`None`: deleted); `ringing` is the
/// occurrence's ringing record (only follow-ups and expiries read it).
/// Event ids come from `ids`.
///
/// * A `fire` that rings commits the `triggered` event (with
///   `lateness_ms`), one delivery per channel ([`delivery_key`]), the
///   ringing record, the alarm's next fire and the first follow-up. When
///   later occurrences are already due (a backlog) only the newest rings
///   and the older ones are one `missed` event.
/// * A `fire` found past `grace` is `missed`: only the newest missed
///   occurrence is reported (with the count), and the alarm resumes with its
///   first occurrence inside the window or else its next.
/// * A skipped or suppressed `fire` still commits the alarm's next fire.
///   A stale one (the alarm was edited while it was claimed) is judged
///   against the alarm as it is now.
/// * A snooze's end or an escalation rings at the occurrence's level, or is
///   `missed` past `grace`, or skipped (and the ringing ended) when the
///   alarm no longer rings; an escalation that finds the occurrence snoozed
///   lost the race and leaves it alone.
/// * Every ring plans only the next follow-up: `Escalate(level + 1)` after
///   the policy's first or repeat delay, or after the last level `Expire`
///   after `expiry_window`. An expiry ends an unanswered ringing as
///   `expired`, however late it is found.
#[must_use]
pub fn judge(
    trigger: &Trigger,
    alarm: Option<&Alarm>,
    calendar: Option<&Calendar>,
    ringing: Option<&Ringing>,
    policy: &FirePolicy,
    now: Timestamp,
    ids: &dyn IdSource,
) -> (FireOutcome, Verdict) {
    Judge { policy, now, ids }.judge(trigger, alarm, calendar, ringing)
}

/// The moment and the windows a trigger is judged by.
struct Judge<'a> {
    policy: &'a FirePolicy,
    now: Timestamp,
    ids: &'a dyn IdSource,
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

impl Judge<'_> {
    fn event(
        &self,
        trigger: &Trigger,
        alarm: &Alarm,
        kind: AlarmEventKind,
        occurrence: Timestamp,
        detail: String,
    ) -> AlarmEvent {
        let data = event_data(alarm, Some(occurrence), Some(&detail), EventChange::Nothing);
        AlarmEvent {
            id: crate::ids::EventId::from_uuid(self.ids.uuid_at(self.now))
                .unwrap_or_else(|_| crate::ids::EventId::generate()),
            alarm: trigger.alarm,
            owner: trigger.owner,
            kind,
            at: self.now,
            occurrence: Some(occurrence),
            detail: Some(detail),
            data: Some(data),
        }
    }

    fn lateness(&self, trigger: &Trigger) -> SignedDuration {
        self.now.duration_since(trigger.due_at)
    }

    fn too_late(&self, trigger: &Trigger) -> bool {
        trigger.kind != TriggerKind::Expire && self.lateness(trigger) > signed(self.policy.grace)
    }

    fn judge(
        &self,
        trigger: &Trigger,
        alarm: Option<&Alarm>,
        calendar: Option<&Calendar>,
        ringing: Option<&Ringing>,
    ) -> (FireOutcome, Verdict) {
        let mut out = FireOutcome {
            events: Vec::new(),
            deliveries: Vec::new(),
            follow_up: None,
            next: None,
            ringing: RingingChange::None,
        };
        let (Some(alarm), Some(calendar)) = (alarm, calendar) else {
            // Deleted: the deletion cancelled everything else already.
            return (out, Verdict::Skipped);
        };
        let mut decision = decide_fire(trigger, Some(alarm), calendar);
        if decision == FireDecision::Skip(SkipReason::AlarmChanged) {
            // A stale fire trigger survives an edit only when it was
            // claimed during it (the store leaves leased triggers alone), so
            // the edit's own plan could not replace it. Judge it against the
            // alarm as it is now: an edit that kept this occurrence (a new
            // name, a new sound, off and on again) must not swallow it.
            let current = Trigger {
                alarm_version: alarm.version(),
                ..trigger.clone()
            };
            decision = decide_fire(&current, Some(alarm), calendar);
        }
        match trigger.kind {
            TriggerKind::Fire => self.fire(trigger, alarm, calendar, decision, out),
            TriggerKind::Expire => {
                let unanswered = ringing.is_some_and(|r| !r.snoozed);
                if !unanswered {
                    return (out, Verdict::Skipped);
                }
                out.events.push(self.event(
                    trigger,
                    alarm,
                    AlarmEventKind::Expired,
                    trigger.occurrence.at,
                    "unanswered after the last escalation".to_owned(),
                ));
                out.ringing = end(trigger);
                (out, Verdict::Expired)
            }
            TriggerKind::Snooze(_) | TriggerKind::Escalate(_) => {
                let Some(stored) = ringing else {
                    // Dismissed meanwhile (the dismissal removes follow-ups;
                    // this only guards a record removed by other means).
                    return (out, Verdict::Skipped);
                };
                if decision != FireDecision::Ring {
                    out.ringing = end(trigger);
                    return (out, Verdict::Skipped);
                }
                if self.too_late(trigger) {
                    out.events.push(self.event(
                        trigger,
                        alarm,
                        AlarmEventKind::Missed,
                        trigger.occurrence.at,
                        format!(
                            "{} not rung: found {} ms late, past the grace window",
                            trigger.kind.code(),
                            self.lateness(trigger).as_millis()
                        ),
                    ));
                    out.ringing = end(trigger);
                    return (out, Verdict::Missed);
                }
                let updated = match trigger.kind {
                    TriggerKind::Snooze(n) => Ringing {
                        snoozes: n.max(stored.snoozes),
                        snoozed: false,
                        ..stored.clone()
                    },
                    TriggerKind::Escalate(n) => {
                        if stored.snoozed {
                            // A snooze won the race; its own trigger rings.
                            return (out, Verdict::Skipped);
                        }
                        Ringing {
                            level: n,
                            ..stored.clone()
                        }
                    }
                    _ => stored.clone(),
                };
                let event = match trigger.kind {
                    TriggerKind::Escalate(_) => AlarmEventKind::Escalated,
                    _ => AlarmEventKind::Triggered,
                };
                self.ring(trigger, alarm, event, &updated, &mut out);
                out.ringing = RingingChange::Upsert(updated);
                (out, Verdict::Rang)
            }
        }
    }

    fn fire(
        &self,
        trigger: &Trigger,
        alarm: &Alarm,
        calendar: &Calendar,
        decision: FireDecision,
        mut out: FireOutcome,
    ) -> (FireOutcome, Verdict) {
        match decision {
            FireDecision::Ring if self.too_late(trigger) => {
                // Only the newest missed occurrence is reported, however long
                // the engine was away: no storm of stale alarms. The alarm
                // resumes with its first occurrence still inside the grace
                // window (it rings at once) or else its next one.
                let cutoff = self.now - signed(self.policy.grace);
                // An occurrence exactly at the cutoff is exactly `grace` late,
                // and a trigger found exactly that late rings: it is neither
                // counted missed nor passed over by the next plan.
                let last_missed = cutoff - SignedDuration::from_nanos(1);
                let (count, newest) = missed_since(alarm, calendar, trigger, last_missed);
                out.events.push(self.event(
                    trigger,
                    alarm,
                    AlarmEventKind::Missed,
                    newest,
                    format!(
                        "{count} occurrence(s) not rung in time; the first was found {} ms late",
                        self.lateness(trigger).as_millis()
                    ),
                ));
                out.next = Some(next_fire_plan(alarm, calendar, last_missed.max(newest)));
                (out, Verdict::Missed)
            }
            FireDecision::Ring => {
                // Behind by more than the alarm's period (a short outage, a
                // backlog): later occurrences are due too. Only the newest
                // rings; the older ones are reported once as missed, so a
                // minutely alarm does not ring five times in a row.
                let later = due_after(alarm, calendar, trigger, self.now);
                let current = match later.last() {
                    None => trigger.clone(),
                    Some(newest) => {
                        let skipped_newest = later
                            .len()
                            .checked_sub(2)
                            .map_or(trigger.occurrence.at, |i| later[i].at);
                        out.events.push(self.event(
                            trigger,
                            alarm,
                            AlarmEventKind::Missed,
                            skipped_newest,
                            format!(
                                "{} occurrence(s) not rung: a newer one was already due",
                                later.len()
                            ),
                        ));
                        Trigger {
                            occurrence: *newest,
                            due_at: newest.at,
                            ..trigger.clone()
                        }
                    }
                };
                let ringing = Ringing {
                    alarm: current.alarm,
                    owner: current.owner,
                    occurrence: current.occurrence,
                    since: self.now,
                    snoozes: 0,
                    level: 0,
                    snoozed: false,
                };
                self.ring(
                    &current,
                    alarm,
                    AlarmEventKind::Triggered,
                    &ringing,
                    &mut out,
                );
                out.ringing = RingingChange::Upsert(ringing);
                out.next = Some(next_fire_plan(alarm, calendar, current.occurrence.at));
                (out, Verdict::Rang)
            }
            FireDecision::Skip(_) | FireDecision::Suppressed(_) => {
                // Whatever happened, the alarm keeps its next fire (the plan
                // is version-stamped, so it never overwrites a fresher one).
                // Judged before the occurrence (a stale claim ahead, see
                // `judge_claim`), the plan starts from now: an occurrence an
                // edit moved before this one is still to come.
                out.next = Some(next_fire_plan(
                    alarm,
                    calendar,
                    trigger.occurrence.at.min(self.now),
                ));
                (out, Verdict::Skipped)
            }
        }
    }

    /// The `triggered`/`escalated` event, one delivery per channel, and the
    /// single next follow-up: the next escalation level, or the expiry.
    fn ring(
        &self,
        trigger: &Trigger,
        alarm: &Alarm,
        event: AlarmEventKind,
        ringing: &Ringing,
        out: &mut FireOutcome,
    ) {
        let lateness = self.lateness(trigger).as_millis().max(0);
        out.events.push(self.event(
            trigger,
            alarm,
            event,
            trigger.occurrence.at,
            format!("{} lateness_ms={lateness}", trigger.kind.code()),
        ));
        for channel in alarm.draft().channels.iter() {
            out.deliveries.push(Delivery {
                id: delivery_key(
                    trigger.alarm,
                    trigger.occurrence.at,
                    trigger.kind,
                    event,
                    channel.as_str(),
                ),
                owner: trigger.owner,
                alarm: trigger.alarm,
                occurrence: trigger.occurrence,
                kind: trigger.kind,
                channel,
                created_at: self.now,
            });
        }
        let policy = alarm.draft().escalation;
        let level = ringing.level;
        out.follow_up = Some(if level < policy.max_level() {
            let minutes = if level == 0 {
                policy.first_delay_minutes()
            } else {
                policy.repeat_delay_minutes()
            };
            Trigger {
                kind: TriggerKind::Escalate(level + 1),
                due_at: self.now + SignedDuration::from_mins(i64::from(minutes)),
                ..trigger.clone()
            }
        } else {
            Trigger {
                kind: TriggerKind::Expire,
                due_at: self.now + signed(self.policy.expiry_window),
                ..trigger.clone()
            }
        });
    }
}

fn end(trigger: &Trigger) -> RingingChange {
    RingingChange::End {
        alarm: trigger.alarm,
        occurrence: trigger.occurrence.at,
    }
}

/// The occurrences after `after` up to `until` (inclusive), oldest first,
/// at most 10,000, read a page at a time so that the usual answer (none,
/// or a few) costs a few occurrences, not 10,000.
fn occurrences_until(
    alarm: &Alarm,
    calendar: &Calendar,
    after: Timestamp,
    until: Timestamp,
) -> Vec<OccurrenceRef> {
    const CAP: usize = 10_000;
    let mut out = Vec::new();
    let mut query = OccurrenceQuery {
        after,
        limit: 1,
        include_suppressed: false,
    };
    loop {
        let page = alarm.occurrences(calendar, &query).items;
        let full = page.len() == query.limit;
        for o in &page {
            if o.fire_at() > until || out.len() >= CAP {
                return out;
            }
            out.push(OccurrenceRef {
                at: o.fire_at(),
                local: o.local(),
            });
        }
        match out.last() {
            Some(last) if full => query.after = last.at,
            _ => return out,
        }
        query.limit = 64;
    }
}

/// The occurrences after `trigger`'s that are already due at `now`.
fn due_after(
    alarm: &Alarm,
    calendar: &Calendar,
    trigger: &Trigger,
    now: Timestamp,
) -> Vec<OccurrenceRef> {
    occurrences_until(alarm, calendar, trigger.occurrence.at, now)
}

/// How many occurrences from `trigger`'s up to `cutoff` (inclusive) went
/// unrung, and the newest of them (counting stops at 10,000: an
/// every-minute alarm after a week away).
fn missed_since(
    alarm: &Alarm,
    calendar: &Calendar,
    trigger: &Trigger,
    cutoff: Timestamp,
) -> (usize, Timestamp) {
    let later = occurrences_until(alarm, calendar, trigger.occurrence.at, cutoff);
    (
        1 + later.len(),
        later.last().map_or(trigger.occurrence.at, |o| o.at),
    )
}
