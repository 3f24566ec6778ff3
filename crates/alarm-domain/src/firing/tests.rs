//! The judge's decisions, table by table: the grace window, backlogs, escalation levels, expiry, snoozes, and alarms deleted, disabled or edited while their trigger was claimed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};

use super::{FirePolicy, Verdict, delivery_key, replan_after_edit};
use crate::ids::{AlarmId, ExceptionPeriodId, UserId};
use crate::model::{
    Alarm, AlarmDraft, AlarmEventKind, AlarmName, AlarmVersion, Channel, ChannelSet,
    EscalationPolicy, ExceptionKind, ExceptionPeriod, Schedules,
};
use crate::ports::{FireOutcome, IdSource, TriggerPlan};
use crate::schedule::{Calendar, RecurrenceRule, Schedule, WallTime};
use crate::trigger::{Ringing, RingingChange, Trigger, TriggerKind};

/// The testkit's fixtures, rebuilt from domain constructors: the testkit
/// depends on this crate, so using it here would compile the domain twice
/// and its types would not match (deny.toml refuses that edge).
mod fixtures {
    use jiff::Timestamp;

    use crate::model::{
        Alarm, AlarmDraft, AlarmName, ChannelSet, Description, EscalationPolicy, Schedules,
        SnoozePolicy,
    };
    use crate::schedule::{Schedule, WallTime};
    use crate::trigger::{OccurrenceRef, Trigger, TriggerKind};
    use crate::tz::TimeZoneName;

    /// 2026-01-05T06:00:00Z, a Monday.
    pub(super) fn t0() -> Timestamp {
        Timestamp::from_second(1_767_592_800).expect("t0")
    }

    /// An enabled daily 07:00 UTC alarm, in-app only, default policies.
    pub(super) fn draft(name: &str) -> AlarmDraft {
        AlarmDraft {
            name: AlarmName::parse(name).expect("name"),
            description: Description::default(),
            enabled: true,
            time_zone: TimeZoneName::utc(),
            schedules: Schedules::new(vec![Schedule::Daily {
                time: WallTime::parse("07:00").expect("time"),
            }])
            .expect("one schedule"),
            snooze: SnoozePolicy::default(),
            escalation: EscalationPolicy::default(),
            channels: ChannelSet::default(),
            sound: None,
        }
    }

    /// A `kind` trigger of `alarm` for the occurrence at `occurrence`, due then.
    pub(super) fn trigger(alarm: &Alarm, occurrence: Timestamp, kind: TriggerKind) -> Trigger {
        Trigger {
            alarm: alarm.id(),
            owner: alarm.owner(),
            occurrence: OccurrenceRef {
                at: occurrence,
                local: occurrence.to_zoned(jiff::tz::TimeZone::UTC).datetime(),
            },
            kind,
            due_at: occurrence,
            alarm_version: alarm.version(),
        }
    }
}

/// Distinct, increasing v7 ids, so event ids never depend on the machine.
struct SequentialIds(AtomicU64);

impl IdSource for SequentialIds {
    fn next_uuid(&self) -> uuid::Uuid {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        let mut random = [0u8; 10];
        random[2..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000 + n, &random).into_uuid()
    }

    fn secret_bytes(&self, _buf: &mut [u8]) -> Result<(), String> {
        Err("the judge makes no secrets".to_owned())
    }
}

// ------------------------------------------------------------------ values

/// 07:00 UTC on the `day`-th day after `t0` (2026-01-05, a Monday).
fn seven(day: i64) -> Timestamp {
    fixtures::t0() + SignedDuration::from_hours(1 + 24 * day)
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

fn grace() -> SignedDuration {
    SignedDuration::try_from(FirePolicy::default().grace).expect("grace fits")
}

/// A daily 07:00 UTC alarm (the fixture draft) after `edit`.
fn alarm_with(edit: impl FnOnce(&mut AlarmDraft)) -> Alarm {
    let mut draft = fixtures::draft("Wake up");
    edit(&mut draft);
    Alarm::create(
        AlarmId::generate(),
        UserId::generate(),
        draft,
        fixtures::t0(),
    )
    .expect("valid alarm")
}

fn daily() -> Alarm {
    alarm_with(|_| {})
}

fn escalating(max_level: u32, first: u32, repeat: u32) -> Alarm {
    alarm_with(|d| d.escalation = EscalationPolicy::new(max_level, first, repeat).expect("policy"))
}

/// Every minute from 07:00 to 07:59 UTC.
fn minutely() -> Alarm {
    let minutes: Vec<String> = (0..60).map(|m| m.to_string()).collect();
    let rule = RecurrenceRule::parse(
        &format!("FREQ=DAILY;BYHOUR=7;BYMINUTE={}", minutes.join(",")),
        "2026-01-05T07:00",
    )
    .expect("rule");
    alarm_with(|d| {
        d.schedules = Schedules::new(vec![Schedule::Rule(Box::new(rule))]).expect("schedules");
    })
}

/// `alarm`'s next version with `edit` applied to its draft.
fn revised(alarm: &Alarm, edit: impl FnOnce(&mut AlarmDraft)) -> Alarm {
    let mut draft = alarm.draft().clone();
    edit(&mut draft);
    alarm
        .revise(draft, fixtures::t0() + mins(1))
        .expect("valid edit")
}

/// The occurrence's ringing record as the fire at `since` left it.
fn ringing(trigger: &Trigger, since: Timestamp, snoozes: u8, level: u8, snoozed: bool) -> Ringing {
    Ringing {
        alarm: trigger.alarm,
        owner: trigger.owner,
        occurrence: trigger.occurrence,
        since,
        snoozes,
        level,
        snoozed,
    }
}

/// A follow-up trigger of the 07:00 occurrence of day 0, due at `due`.
fn follow(alarm: &Alarm, kind: TriggerKind, due: Timestamp) -> Trigger {
    Trigger {
        due_at: due,
        ..fixtures::trigger(alarm, seven(0), kind)
    }
}

fn empty() -> FireOutcome {
    FireOutcome {
        events: Vec::new(),
        deliveries: Vec::new(),
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
    }
}

// ----------------------------------------------------------------- judging

fn judge_with(
    policy: &FirePolicy,
    now: Timestamp,
    trigger: &Trigger,
    alarm: Option<&Alarm>,
    calendar: &Calendar,
    ringing: Option<&Ringing>,
) -> (FireOutcome, Verdict) {
    let ids = SequentialIds(AtomicU64::new(1));
    // As the engine does: no calendar is loaded for an alarm that is gone.
    super::judge(
        trigger,
        alarm,
        alarm.and(Some(calendar)),
        ringing,
        policy,
        now,
        &ids,
    )
}

fn judge(
    now: Timestamp,
    trigger: &Trigger,
    alarm: Option<&Alarm>,
    ringing: Option<&Ringing>,
) -> (FireOutcome, Verdict) {
    judge_with(
        &FirePolicy::default(),
        now,
        trigger,
        alarm,
        &Calendar::default(),
        ringing,
    )
}

// --------------------------------------------------------------- summaries

/// (kind, occurrence, detail) of each event, after checking the fields
/// every event shares.
fn events(
    out: &FireOutcome,
    trigger: &Trigger,
    now: Timestamp,
) -> Vec<(AlarmEventKind, Option<Timestamp>, String)> {
    out.events
        .iter()
        .map(|e| {
            assert_eq!(
                (e.alarm, e.owner, e.at),
                (trigger.alarm, trigger.owner, now),
                "{e:?}"
            );
            (e.kind, e.occurrence, e.detail.clone().unwrap_or_default())
        })
        .collect()
}

/// (kind, occurrence, due) of the follow-up.
fn follow_up(out: &FireOutcome) -> Option<(TriggerKind, Timestamp, Timestamp)> {
    out.follow_up
        .as_ref()
        .map(|t| (t.kind, t.occurrence.at, t.due_at))
}

/// The plan's version and the next fire it leaves (`None`: no plan). A
/// plan's trigger is always a `fire` of the plan's version, due at its
/// occurrence.
fn next(out: &FireOutcome) -> Option<(AlarmVersion, Option<Timestamp>)> {
    out.next.as_ref().map(|plan| match plan {
        TriggerPlan::Reschedule {
            version,
            next: Some(t),
            ..
        } => {
            assert_eq!(
                (t.kind, t.due_at, t.alarm_version),
                (TriggerKind::Fire, t.occurrence.at, *version),
                "{t:?}"
            );
            (*version, Some(t.occurrence.at))
        }
        TriggerPlan::Reschedule {
            version,
            next: None,
            ..
        } => (*version, None),
        other => panic!("a fire never cancels everything: {other:?}"),
    })
}

/// (channel, kind, occurrence, id) of each delivery, after checking the
/// fields every delivery shares.
fn deliveries(
    out: &FireOutcome,
    trigger: &Trigger,
    now: Timestamp,
) -> Vec<(Channel, TriggerKind, Timestamp, uuid::Uuid)> {
    out.deliveries
        .iter()
        .map(|d| {
            assert_eq!(
                (d.alarm, d.owner, d.created_at),
                (trigger.alarm, trigger.owner, now),
                "{d:?}"
            );
            (d.channel, d.kind, d.occurrence.at, d.id)
        })
        .collect()
}

fn in_app(alarm: &Alarm, at: Timestamp, kind: TriggerKind, event: AlarmEventKind) -> uuid::Uuid {
    delivery_key(alarm.id(), at, kind, event, "in-app")
}

// ------------------------------------------------------------------- tests

#[test]
fn the_grace_window_is_inclusive() {
    let short = FirePolicy {
        grace: Duration::from_secs(120),
        ..FirePolicy::default()
    };
    let default = FirePolicy::default();
    let nano = SignedDuration::from_nanos(1);
    // (settings, lateness, verdict)
    let table = [
        (&default, SignedDuration::ZERO, Verdict::Rang),
        (&default, SignedDuration::from_millis(1), Verdict::Rang),
        (&default, grace() - nano, Verdict::Rang),
        (&default, grace(), Verdict::Rang),
        (&default, grace() + nano, Verdict::Missed),
        (
            &default,
            grace() + SignedDuration::from_secs(1),
            Verdict::Missed,
        ),
        (&short, mins(2), Verdict::Rang),
        (&short, mins(2) + nano, Verdict::Missed),
        (&short, mins(5), Verdict::Missed),
    ];
    let alarm = daily();
    let fire = fixtures::trigger(&alarm, seven(0), TriggerKind::Fire);
    for (policy, lateness, want) in table {
        let now = seven(0) + lateness;
        let (out, verdict) =
            judge_with(policy, now, &fire, Some(&alarm), &Calendar::default(), None);
        let case = format!("{lateness:?} late, grace {:?}", policy.grace);
        assert_eq!(verdict, want, "{case}");
        let ms = lateness.as_millis();
        assert_eq!(
            next(&out),
            Some((alarm.version(), Some(seven(1)))),
            "{case}: the alarm keeps tomorrow's fire"
        );
        match want {
            Verdict::Rang => {
                assert_eq!(
                    events(&out, &fire, now),
                    [(
                        AlarmEventKind::Triggered,
                        Some(seven(0)),
                        format!("fire lateness_ms={ms}")
                    )],
                    "{case}"
                );
                assert_eq!(out.deliveries.len(), 1, "{case}");
                assert_eq!(
                    follow_up(&out),
                    Some((TriggerKind::Escalate(1), seven(0), now + mins(5))),
                    "{case}"
                );
                assert_eq!(
                    out.ringing,
                    RingingChange::Upsert(ringing(&fire, now, 0, 0, false)),
                    "{case}"
                );
            }
            _ => {
                assert_eq!(
                    events(&out, &fire, now),
                    [(
                        AlarmEventKind::Missed,
                        Some(seven(0)),
                        format!(
                            "1 occurrence(s) not rung in time; the first was found {ms} ms late"
                        )
                    )],
                    "{case}"
                );
                assert!(out.deliveries.is_empty(), "{case}: nothing is sent");
                assert_eq!(follow_up(&out), None, "{case}: nothing follows up");
                assert_eq!(out.ringing, RingingChange::None, "{case}: nothing rings");
            }
        }
    }
}

#[test]
fn downtime_reports_the_newest_missed_occurrence_and_resumes_inside_the_window() {
    // (alarm, first unrung occurrence, back at, missed count, newest missed, next fire)
    let (daily, minutely) = (daily(), minutely());
    let table = [
        // Three days away: one report, tomorrow's fire.
        (&daily, seven(0), seven(2) + mins(20), 3, seven(2), seven(3)),
        // Back five minutes after an occurrence: it is next, already due.
        (&daily, seven(0), seven(2) + mins(5), 2, seven(1), seven(2)),
        // Back exactly `grace` after one: it still rings, like a trigger
        // found exactly that late.
        (&daily, seven(0), seven(2) + grace(), 2, seven(1), seven(2)),
        (&daily, seven(0), seven(0) + mins(11), 1, seven(0), seven(1)),
        // Twenty minutes of a minutely alarm: the ten older than the
        // grace window are one report; the next plan is the first inside it.
        (
            &minutely,
            seven(0),
            seven(0) + mins(20),
            10,
            seven(0) + mins(9),
            seven(0) + mins(10),
        ),
    ];
    for (alarm, first, now, count, newest, resume) in table {
        let fire = fixtures::trigger(alarm, first, TriggerKind::Fire);
        let (out, verdict) = judge(now, &fire, Some(alarm), None);
        let case = format!("back at {now}");
        assert_eq!(verdict, Verdict::Missed, "{case}");
        assert_eq!(
            events(&out, &fire, now),
            [(
                AlarmEventKind::Missed,
                Some(newest),
                format!(
                    "{count} occurrence(s) not rung in time; the first was found {} ms late",
                    now.duration_since(first).as_millis()
                )
            )],
            "{case}"
        );
        assert!(
            out.deliveries.is_empty() && out.follow_up.is_none(),
            "{case}"
        );
        assert_eq!(out.ringing, RingingChange::None, "{case}");
        assert_eq!(next(&out), Some((alarm.version(), Some(resume))), "{case}");

        // A plan already due is the first occurrence inside the window: it
        // rings at once.
        if resume <= now {
            let resumed = fixtures::trigger(alarm, resume, TriggerKind::Fire);
            let (_, verdict) = judge(now, &resumed, Some(alarm), None);
            assert_eq!(verdict, Verdict::Rang, "{case}: the resumed fire");
        }
    }
}

#[test]
fn a_resumed_minutely_alarm_rings_its_newest_occurrence_once() {
    // The plan of the downtime case above, judged at the same moment: ten
    // more are due, the newest rings, the other nine and the plan's own
    // occurrence are one `missed` report.
    let alarm = minutely();
    let now = seven(0) + mins(20);
    let resumed = fixtures::trigger(&alarm, seven(0) + mins(10), TriggerKind::Fire);
    let (out, verdict) = judge(now, &resumed, Some(&alarm), None);
    assert_eq!(verdict, Verdict::Rang);
    assert_eq!(
        events(&out, &resumed, now),
        [
            (
                AlarmEventKind::Missed,
                Some(seven(0) + mins(19)),
                "10 occurrence(s) not rung: a newer one was already due".to_owned()
            ),
            (
                AlarmEventKind::Triggered,
                Some(now),
                "fire lateness_ms=0".to_owned()
            ),
        ]
    );
}

#[test]
fn a_backlog_rings_only_the_newest_due_occurrence() {
    // (seconds after 07:00, the occurrence that rings, the older ones reported: (count, newest))
    let table = [
        (0, mins(0), None),
        (59, mins(0), None),
        (60, mins(1), Some((1, mins(0)))),
        (61, mins(1), Some((1, mins(0)))),
        (330, mins(5), Some((5, mins(4)))),
        (600, mins(10), Some((10, mins(9)))),
    ];
    let alarm = alarm_with(|d| {
        d.schedules = minutely().draft().schedules.clone();
        d.channels = ChannelSet::new(&[Channel::InApp, Channel::Email]).expect("channels");
    });
    let fire = fixtures::trigger(&alarm, seven(0), TriggerKind::Fire);
    for (secs, rung, missed) in table {
        let now = seven(0) + SignedDuration::from_secs(secs);
        let rung = seven(0) + rung;
        let (out, verdict) = judge(now, &fire, Some(&alarm), None);
        let case = format!("{secs} s after 07:00");
        assert_eq!(verdict, Verdict::Rang, "{case}");
        let mut want = Vec::new();
        if let Some((count, newest)) = missed {
            want.push((
                AlarmEventKind::Missed,
                Some(seven(0) + newest),
                format!("{count} occurrence(s) not rung: a newer one was already due"),
            ));
        }
        want.push((
            AlarmEventKind::Triggered,
            Some(rung),
            format!("fire lateness_ms={}", now.duration_since(rung).as_millis()),
        ));
        assert_eq!(events(&out, &fire, now), want, "{case}");
        let newest = fixtures::trigger(&alarm, rung, TriggerKind::Fire);
        assert_eq!(
            out.ringing,
            RingingChange::Upsert(ringing(&newest, now, 0, 0, false)),
            "{case}: the newest occurrence is the one ringing"
        );
        assert_eq!(
            deliveries(&out, &fire, now),
            [Channel::InApp, Channel::Email].map(|c| (
                c,
                TriggerKind::Fire,
                rung,
                delivery_key(
                    alarm.id(),
                    rung,
                    TriggerKind::Fire,
                    AlarmEventKind::Triggered,
                    c.as_str()
                )
            )),
            "{case}: one delivery per channel, for the newest only"
        );
        assert_eq!(
            follow_up(&out),
            Some((TriggerKind::Escalate(1), rung, now + mins(5))),
            "{case}"
        );
        assert_eq!(
            next(&out),
            Some((alarm.version(), Some(rung + mins(1)))),
            "{case}: then the minute after the newest"
        );
    }
}

#[test]
fn escalation_climbs_level_by_level_then_expires() {
    let policy = FirePolicy {
        expiry_window: Duration::from_secs(45 * 60),
        ..FirePolicy::default()
    };
    // ((max level, first delay, repeat delay), what is due, the level stored, the follow-up and its delay)
    let table = [
        (
            (3, 5, 10),
            TriggerKind::Fire,
            0,
            TriggerKind::Escalate(1),
            5,
        ),
        (
            (3, 5, 10),
            TriggerKind::Escalate(1),
            0,
            TriggerKind::Escalate(2),
            10,
        ),
        (
            (3, 5, 10),
            TriggerKind::Escalate(2),
            1,
            TriggerKind::Escalate(3),
            10,
        ),
        (
            (3, 5, 10),
            TriggerKind::Escalate(3),
            2,
            TriggerKind::Expire,
            45,
        ),
        (
            (1, 7, 20),
            TriggerKind::Fire,
            0,
            TriggerKind::Escalate(1),
            7,
        ),
        (
            (1, 7, 20),
            TriggerKind::Escalate(1),
            0,
            TriggerKind::Expire,
            45,
        ),
        ((0, 5, 10), TriggerKind::Fire, 0, TriggerKind::Expire, 45),
    ];
    for ((max, first, repeat), kind, stored_level, then, delay) in table {
        let alarm = escalating(max, first, repeat);
        let case = format!("{} of max {max} ({first}, {repeat})", kind.code());
        // Each level is found on time: `now` is its due instant.
        let now = seven(0) + mins(2);
        let trigger = follow(&alarm, kind, now);
        let stored = ringing(&trigger, seven(0), 0, stored_level, false);
        let (out, verdict) = judge_with(
            &policy,
            now,
            &trigger,
            Some(&alarm),
            &Calendar::default(),
            Some(&stored),
        );
        assert_eq!(verdict, Verdict::Rang, "{case}");
        assert_eq!(
            follow_up(&out),
            Some((then, seven(0), now + mins(delay))),
            "{case}"
        );
        let (event, level, plan) = match kind {
            TriggerKind::Escalate(n) => (AlarmEventKind::Escalated, n, None),
            _ => (
                AlarmEventKind::Triggered,
                0,
                Some((alarm.version(), Some(seven(1)))),
            ),
        };
        assert_eq!(
            events(&out, &trigger, now),
            [(
                event,
                Some(seven(0)),
                format!("{} lateness_ms=0", kind.code())
            )],
            "{case}"
        );
        assert_eq!(
            deliveries(&out, &trigger, now),
            [(
                Channel::InApp,
                kind,
                seven(0),
                in_app(&alarm, seven(0), kind, event)
            )],
            "{case}"
        );
        let since = if kind == TriggerKind::Fire {
            now
        } else {
            seven(0)
        };
        assert_eq!(
            out.ringing,
            RingingChange::Upsert(ringing(&trigger, since, 0, level, false)),
            "{case}: the record climbs to the level rung"
        );
        assert_eq!(next(&out), plan, "{case}: only a fire plans the next one");
    }
}

#[test]
fn expiry_ends_only_an_unanswered_ringing() {
    let alarm = daily();
    let due = seven(0) + mins(45);
    let expire = follow(&alarm, TriggerKind::Expire, due);
    let unanswered = ringing(&expire, seven(0), 1, 3, false);
    let snoozed = Ringing {
        snoozed: true,
        ..unanswered.clone()
    };
    // (the record, found how late, verdict)
    let table = [
        (Some(&unanswered), SignedDuration::ZERO, Verdict::Expired),
        // The grace window is about ringing late; an expiry found late is
        // still an expiry.
        (Some(&unanswered), grace() + mins(60), Verdict::Expired),
        (Some(&snoozed), SignedDuration::ZERO, Verdict::Skipped),
        (None, SignedDuration::ZERO, Verdict::Skipped),
    ];
    for (record, late, want) in table {
        let now = due + late;
        let case = format!("{record:?} found {late:?} late");
        let (out, verdict) = judge(now, &expire, Some(&alarm), record);
        assert_eq!(verdict, want, "{case}");
        if want == Verdict::Expired {
            assert_eq!(
                events(&out, &expire, now),
                [(
                    AlarmEventKind::Expired,
                    Some(seven(0)),
                    "unanswered after the last escalation".to_owned()
                )],
                "{case}"
            );
            assert_eq!(
                out.ringing,
                RingingChange::End {
                    alarm: alarm.id(),
                    occurrence: seven(0)
                },
                "{case}"
            );
            assert!(
                out.deliveries.is_empty() && out.follow_up.is_none() && out.next.is_none(),
                "{case}: {out:?}"
            );
        } else {
            assert_eq!(
                out,
                empty(),
                "{case}: a snoozed or gone record is left alone"
            );
        }
    }
}

#[test]
fn a_snooze_rings_again_at_its_escalation_level() {
    let policy = FirePolicy::default();
    let expiry = SignedDuration::try_from(policy.expiry_window).expect("fits");
    // (n, snoozes stored, level stored, snoozes after, the follow-up and its delay)
    let table = [
        (1, 1, 0, 1, TriggerKind::Escalate(1), mins(5)),
        (2, 2, 1, 2, TriggerKind::Escalate(2), mins(10)),
        // A count already past n (a later snooze committed first) never
        // goes down.
        (2, 3, 1, 3, TriggerKind::Escalate(2), mins(10)),
        // The count was lost (a record rebuilt by other means): n restores it.
        (3, 1, 2, 3, TriggerKind::Escalate(3), mins(10)),
        // At the last level it expires, as an unanswered ring does.
        (1, 1, 3, 1, TriggerKind::Expire, expiry),
    ];
    let alarm = daily();
    for (n, stored_snoozes, level, snoozes, then, delay) in table {
        let case = format!("snooze:{n} of a record with {stored_snoozes} snoozes at level {level}");
        let now = seven(0) + mins(21);
        let snooze = follow(&alarm, TriggerKind::Snooze(n), now);
        let stored = ringing(&snooze, seven(0), stored_snoozes, level, true);
        let (out, verdict) = judge(now, &snooze, Some(&alarm), Some(&stored));
        assert_eq!(verdict, Verdict::Rang, "{case}");
        assert_eq!(
            out.ringing,
            RingingChange::Upsert(ringing(&snooze, seven(0), snoozes, level, false)),
            "{case}: ringing again, at the level it had"
        );
        assert_eq!(
            events(&out, &snooze, now),
            [(
                AlarmEventKind::Triggered,
                Some(seven(0)),
                format!("snooze:{n} lateness_ms=0")
            )],
            "{case}"
        );
        assert_eq!(
            deliveries(&out, &snooze, now),
            [(
                Channel::InApp,
                TriggerKind::Snooze(n),
                seven(0),
                in_app(
                    &alarm,
                    seven(0),
                    TriggerKind::Snooze(n),
                    AlarmEventKind::Triggered
                )
            )],
            "{case}"
        );
        assert_eq!(
            follow_up(&out),
            Some((then, seven(0), now + delay)),
            "{case}"
        );
        assert_eq!(next(&out), None, "{case}: a snooze plans no fire");
    }
}

#[test]
fn follow_ups_with_nothing_to_ring_are_skipped() {
    let alarm = daily();
    let now = seven(0) + mins(5);
    let disabled = revised(&alarm, |d| d.enabled = false);
    for kind in [TriggerKind::Snooze(1), TriggerKind::Escalate(1)] {
        let trigger = follow(&alarm, kind, now);
        let code = kind.code();
        let record = ringing(&trigger, seven(0), 0, 0, false);

        // Dismissed meanwhile: no record.
        let (out, verdict) = judge(now, &trigger, Some(&alarm), None);
        assert_eq!((out, verdict), (empty(), Verdict::Skipped), "{code}");

        // Disabled meanwhile: the occurrence stops ringing.
        let (out, verdict) = judge(now, &trigger, Some(&disabled), Some(&record));
        assert_eq!(verdict, Verdict::Skipped, "{code}");
        assert_eq!(
            out,
            FireOutcome {
                ringing: RingingChange::End {
                    alarm: alarm.id(),
                    occurrence: seven(0)
                },
                ..empty()
            },
            "{code}"
        );
    }
    // An escalation that finds the occurrence snoozed lost a race with the
    // snooze: the snooze's own trigger rings, the record stays as it is.
    let escalate = follow(&alarm, TriggerKind::Escalate(1), now);
    let snoozed = ringing(&escalate, seven(0), 1, 0, true);
    let (out, verdict) = judge(now, &escalate, Some(&alarm), Some(&snoozed));
    assert_eq!((out, verdict), (empty(), Verdict::Skipped));
}

#[test]
fn late_follow_ups_are_missed_and_end_the_ringing() {
    let alarm = daily();
    let due = seven(0) + mins(5);
    // (kind, found how late, verdict)
    let table = [
        (TriggerKind::Snooze(1), grace(), Verdict::Rang),
        (TriggerKind::Snooze(1), grace() + mins(1), Verdict::Missed),
        (TriggerKind::Escalate(2), grace(), Verdict::Rang),
        (
            TriggerKind::Escalate(2),
            grace() + SignedDuration::from_millis(1),
            Verdict::Missed,
        ),
    ];
    for (kind, late, want) in table {
        let now = due + late;
        let trigger = follow(&alarm, kind, due);
        let record = ringing(&trigger, seven(0), 1, 1, kind != TriggerKind::Escalate(2));
        let (out, verdict) = judge(now, &trigger, Some(&alarm), Some(&record));
        let case = format!("{} found {late:?} late", kind.code());
        assert_eq!(verdict, want, "{case}");
        if want == Verdict::Missed {
            assert_eq!(
                events(&out, &trigger, now),
                [(
                    AlarmEventKind::Missed,
                    Some(seven(0)),
                    format!(
                        "{} not rung: found {} ms late, past the grace window",
                        kind.code(),
                        late.as_millis()
                    )
                )],
                "{case}"
            );
            assert_eq!(
                out.ringing,
                RingingChange::End {
                    alarm: alarm.id(),
                    occurrence: seven(0)
                },
                "{case}"
            );
            assert!(
                out.deliveries.is_empty() && out.follow_up.is_none() && out.next.is_none(),
                "{case}: {out:?}"
            );
        } else {
            assert_eq!(out.deliveries.len(), 1, "{case}");
        }
    }
}

#[test]
fn a_deleted_alarm_leaves_nothing_behind() {
    let alarm = daily();
    let now = seven(0) + mins(5);
    for kind in [
        TriggerKind::Fire,
        TriggerKind::Snooze(1),
        TriggerKind::Escalate(1),
        TriggerKind::Expire,
    ] {
        let trigger = follow(&alarm, kind, now);
        let record = ringing(&trigger, seven(0), 0, 0, false);
        // The deletion already cancelled the alarm's triggers and records.
        let (out, verdict) = judge(now, &trigger, None, Some(&record));
        assert_eq!(
            (out, verdict),
            (empty(), Verdict::Skipped),
            "{}",
            kind.code()
        );
    }
}

#[test]
fn stale_fire_claims_are_judged_against_the_alarm_as_it_is_now() {
    let alarm = daily();
    let renamed = revised(&alarm, |d| {
        d.name = AlarmName::parse("Renamed").expect("name")
    });
    let off = revised(&alarm, |d| d.enabled = false);
    let off_and_on = revised(&off, |d| d.enabled = true);
    let moved = revised(&alarm, |d| {
        d.schedules = Schedules::new(vec![Schedule::Daily {
            time: WallTime::parse("07:30").expect("time"),
        }])
        .expect("schedules");
    });
    assert_eq!(off_and_on.version().get(), 3);
    // (the alarm now, verdict, next fire)
    let table = [
        (&renamed, Verdict::Rang, Some(seven(1))),
        (&off_and_on, Verdict::Rang, Some(seven(1))),
        (&off, Verdict::Skipped, None),
        (&moved, Verdict::Skipped, Some(seven(0) + mins(30))),
    ];
    // Claimed from version 1, judged on time.
    let fire = fixtures::trigger(&alarm, seven(0), TriggerKind::Fire);
    for (now_alarm, want, then) in table {
        let case = format!("version {}", now_alarm.version().get());
        let (out, verdict) = judge(seven(0), &fire, Some(now_alarm), None);
        assert_eq!(verdict, want, "{case}");
        assert_eq!(
            next(&out),
            Some((now_alarm.version(), then)),
            "{case}: the plan carries the current version"
        );
        if want == Verdict::Rang {
            assert_eq!(
                events(&out, &fire, seven(0)),
                [(
                    AlarmEventKind::Triggered,
                    Some(seven(0)),
                    "fire lateness_ms=0".to_owned()
                )],
                "{case}: an edit that kept the occurrence does not swallow it"
            );
            assert_eq!(out.deliveries.len(), 1, "{case}");
        } else {
            assert!(out.events.is_empty() && out.deliveries.is_empty(), "{case}");
            assert_eq!(
                (out.follow_up, out.ringing),
                (None, RingingChange::None),
                "{case}"
            );
        }
    }
    // A stale claim found past the grace window is missed, not rung.
    let late = seven(0) + grace() + mins(1);
    let (out, verdict) = judge(late, &fire, Some(&renamed), None);
    assert_eq!(verdict, Verdict::Missed);
    assert_eq!(next(&out), Some((renamed.version(), Some(seven(1)))));

    // Follow-ups belong to an occurrence that already rang: they ring
    // across any edit that leaves the alarm enabled, even one that moved
    // its schedule.
    let now = seven(0) + mins(5);
    let snooze = follow(&alarm, TriggerKind::Snooze(1), now);
    let record = ringing(&snooze, seven(0), 1, 0, true);
    let (_, verdict) = judge(now, &snooze, Some(&moved), Some(&record));
    assert_eq!(verdict, Verdict::Rang);
}

#[test]
fn disabled_and_suppressed_fires_are_skipped_and_keep_the_next_fire() {
    let alarm = daily();
    let disabled = revised(&alarm, |d| d.enabled = false);
    let fire_v2 = fixtures::trigger(&disabled, seven(0), TriggerKind::Fire);
    let (out, verdict) = judge(seven(0), &fire_v2, Some(&disabled), None);
    assert_eq!(verdict, Verdict::Skipped);
    assert_eq!(
        out,
        FireOutcome {
            next: Some(TriggerPlan::Reschedule {
                alarm: alarm.id(),
                version: disabled.version(),
                next: None,
            }),
            ..empty()
        },
        "a disabled alarm rings nothing and has no next fire"
    );

    // A vacation over Monday and Tuesday, added after the trigger was
    // planned: Monday's occurrence is skipped, Wednesday's is next.
    let vacation = ExceptionPeriod::new(
        ExceptionPeriodId::generate(),
        alarm.owner(),
        "Beach",
        ExceptionKind::Vacation,
        date(2026, 1, 5),
        date(2026, 1, 6),
    )
    .expect("period");
    let calendar = Calendar::new([&vacation], []);
    let fire = fixtures::trigger(&alarm, seven(0), TriggerKind::Fire);
    let (out, verdict) = judge_with(
        &FirePolicy::default(),
        seven(0),
        &fire,
        Some(&alarm),
        &calendar,
        None,
    );
    assert_eq!(verdict, Verdict::Skipped);
    assert_eq!(
        (out.events.len(), out.deliveries.len(), follow_up(&out)),
        (0, 0, None)
    );
    assert_eq!(out.ringing, RingingChange::None);
    assert_eq!(next(&out), Some((alarm.version(), Some(seven(2)))));
}

#[test]
fn a_ring_leaves_one_delivery_per_channel() {
    // (channels, in the order deliveries are made)
    let table: [&[Channel]; 4] = [
        &[Channel::InApp],
        &[Channel::Email],
        &[Channel::Webhook, Channel::InApp],
        &[
            Channel::Push,
            Channel::Webhook,
            Channel::Email,
            Channel::InApp,
        ],
    ];
    for channels in table {
        let alarm = alarm_with(|d| d.channels = ChannelSet::new(channels).expect("channels"));
        let mut want: Vec<Channel> = channels.to_vec();
        want.sort();
        for (kind, event) in [
            (TriggerKind::Fire, AlarmEventKind::Triggered),
            (TriggerKind::Snooze(2), AlarmEventKind::Triggered),
            (TriggerKind::Escalate(1), AlarmEventKind::Escalated),
        ] {
            let trigger = follow(&alarm, kind, seven(0));
            let record = ringing(&trigger, seven(0), 2, 0, kind != TriggerKind::Escalate(1));
            let (out, verdict) = judge(seven(0), &trigger, Some(&alarm), Some(&record));
            assert_eq!(verdict, Verdict::Rang, "{channels:?} {}", kind.code());
            let got = deliveries(&out, &trigger, seven(0));
            assert_eq!(
                got,
                want.iter()
                    .map(|c| (
                        *c,
                        kind,
                        seven(0),
                        delivery_key(alarm.id(), seven(0), kind, event, c.as_str())
                    ))
                    .collect::<Vec<_>>(),
                "{channels:?} {}",
                kind.code()
            );
        }
    }
}

#[test]
fn delivery_keys_are_stable_and_distinct() {
    let alarm = AlarmId::generate();
    let at: Timestamp = "2027-01-01T07:00:00Z".parse().expect("ts");
    let key = |kind, event, dest| delivery_key(alarm, at, kind, event, dest);
    let a = key(TriggerKind::Fire, AlarmEventKind::Triggered, "in-app");
    assert_eq!(
        a,
        key(TriggerKind::Fire, AlarmEventKind::Triggered, "in-app")
    );
    assert_eq!(a.get_version_num(), 8);
    let others = [
        key(TriggerKind::Snooze(1), AlarmEventKind::Triggered, "in-app"),
        key(TriggerKind::Snooze(2), AlarmEventKind::Triggered, "in-app"),
        key(
            TriggerKind::Escalate(1),
            AlarmEventKind::Escalated,
            "in-app",
        ),
        key(TriggerKind::Fire, AlarmEventKind::Triggered, "email"),
        delivery_key(
            alarm,
            at + SignedDuration::from_secs(60),
            TriggerKind::Fire,
            AlarmEventKind::Triggered,
            "in-app",
        ),
        delivery_key(
            AlarmId::generate(),
            at,
            TriggerKind::Fire,
            AlarmEventKind::Triggered,
            "in-app",
        ),
    ];
    for (i, o) in others.iter().enumerate() {
        assert_ne!(a, *o, "input {i} must give another key");
    }
}

#[test]
fn a_fire_judged_before_an_edit_is_replanned_from_the_alarm_as_it_is_now() {
    let alarm = daily();
    let renamed = revised(&alarm, |d| {
        d.name = AlarmName::parse("Renamed").expect("name")
    });
    let moved = revised(&alarm, |d| {
        d.schedules = Schedules::new(vec![Schedule::Daily {
            time: WallTime::parse("07:30").expect("time"),
        }])
        .expect("schedules");
    });
    let off = revised(&alarm, |d| d.enabled = false);
    let calendar = Calendar::default();
    let fire = fixtures::trigger(&alarm, seven(0), TriggerKind::Fire);
    let summary = |p: Option<TriggerPlan>| {
        p.map(|p| match p {
            TriggerPlan::Reschedule { version, next, .. } => {
                (version, next.map(|t| t.occurrence.at))
            }
            other => panic!("an edit never cancels everything here: {other:?}"),
        })
    };
    // (judged from, stored now, the plan still needed)
    let table = [
        // Not edited: the plan committed with the outcome stood.
        (&alarm, &alarm, None),
        (&renamed, &renamed, None),
        // Edited meanwhile: from the fired occurrence, at the new version.
        (&alarm, &renamed, Some((renamed.version(), Some(seven(1))))),
        (
            &alarm,
            &moved,
            Some((moved.version(), Some(seven(0) + mins(30)))),
        ),
        (&alarm, &off, Some((off.version(), None))),
    ];
    for (judged, current, want) in table {
        let case = format!(
            "judged at version {}, stored {}",
            judged.version().get(),
            current.version().get()
        );
        let after_it = fire.occurrence.at + SignedDuration::from_secs(1);
        let got = summary(replan_after_edit(
            &fire, judged, current, &calendar, after_it,
        ));
        assert_eq!(got, want, "{case}");
    }
    // Prepared ahead of its instant: the store withdraws the outcome judged
    // against the older alarm, and the plan brings the occurrence back.
    let ahead = fire.occurrence.at - SignedDuration::from_secs(20);
    assert_eq!(
        summary(replan_after_edit(&fire, &alarm, &renamed, &calendar, ahead)),
        Some((renamed.version(), Some(fire.occurrence.at))),
        "a prepared fire edited meanwhile is planned again at its own instant"
    );
    // Follow-ups plan no fire, edited or not.
    for kind in [
        TriggerKind::Snooze(1),
        TriggerKind::Escalate(1),
        TriggerKind::Expire,
    ] {
        let trigger = follow(&alarm, kind, seven(0) + mins(5));
        assert_eq!(
            replan_after_edit(&trigger, &alarm, &renamed, &calendar, seven(0)),
            None,
            "{}",
            kind.code()
        );
    }
}

#[test]
fn delivery_keys_do_not_change_between_releases() {
    // Receivers deduplicate on the key, and a delivery made before an
    // upgrade may be retried after it: the derivation is frozen. The value
    // was also computed outside Rust from the documented inputs.
    let alarm = AlarmId::from_uuid(
        uuid::Uuid::parse_str("01900000-0000-7000-8000-000000000001").expect("uuid"),
    )
    .expect("v7");
    let at: Timestamp = "2027-01-01T07:00:00Z".parse().expect("ts");
    let key = delivery_key(
        alarm,
        at,
        TriggerKind::Escalate(2),
        AlarmEventKind::Escalated,
        "webhook",
    );
    assert_eq!(key.to_string(), "53f72474-af38-8bce-a6d9-38b5202032fc");
}

// ----------------------------------------------------------------- routines

#[test]
fn only_a_fire_that_rings_starts_the_active_routines_in_order() {
    use crate::ids::RoutineId;
    use crate::model::{Routine, RoutineAction, RoutineName};

    let alarm = daily();
    let routine = |name: &str, actions: &[&str], active: bool| {
        Routine::new(
            RoutineId::generate(),
            alarm.owner(),
            RoutineName::parse(name).expect("name"),
            actions
                .iter()
                .map(|a| RoutineAction::parse(a).expect("action"))
                .collect(),
            active,
        )
        .expect("routine")
    };
    let routines = [
        routine("Coffee", &["Grind \"beans\"", "Brew"], true),
        routine("Paused", &["Nothing"], false),
        routine("Lights", &["Bedroom on"], true),
    ];
    let ids = SequentialIds(AtomicU64::new(100));
    let fire = fixtures::trigger(&alarm, seven(0), TriggerKind::Fire);
    let (mut out, verdict) = judge(seven(0), &fire, Some(&alarm), None);
    assert_eq!(verdict, Verdict::Rang);
    assert!(super::starts_routines(&fire, &out));
    let before = out.events.len();
    super::start_routines(&fire, &alarm, &mut out, &routines, seven(0), &ids);
    let started: Vec<(AlarmEventKind, Option<Timestamp>, serde_json::Value)> = out.events[before..]
        .iter()
        .map(|e| {
            (
                e.kind,
                e.occurrence,
                serde_json::from_str(e.detail.as_deref().expect("detail")).expect("JSON"),
            )
        })
        .collect();
    assert_eq!(
        started,
        [
            (
                AlarmEventKind::RoutineStarted,
                Some(seven(0)),
                serde_json::json!({"routine_id": routines[0].id().to_string(), "name": "Coffee", "actions": ["Grind \"beans\"", "Brew"]}),
            ),
            (
                AlarmEventKind::RoutineStarted,
                Some(seven(0)),
                serde_json::json!({"routine_id": routines[2].id().to_string(), "name": "Lights", "actions": ["Bedroom on"]}),
            ),
        ],
        "active routines only, in their order, recording the routine as it was"
    );

    // An escalation re-rings an occurrence whose routines already started;
    // a missed or suppressed fire starts nothing.
    let escalation = follow(&alarm, TriggerKind::Escalate(1), seven(0) + mins(5));
    let record = ringing(&escalation, seven(0), 0, 0, false);
    let (out, verdict) = judge(seven(0) + mins(5), &escalation, Some(&alarm), Some(&record));
    assert_eq!(verdict, Verdict::Rang);
    assert!(!super::starts_routines(&escalation, &out));
    let (out, verdict) = judge(seven(0) + grace() + mins(1), &fire, Some(&alarm), None);
    assert_eq!(verdict, Verdict::Missed);
    assert!(!super::starts_routines(&fire, &out));
    let off = revised(&alarm, |d| d.enabled = false);
    let (mut out, verdict) = judge(seven(0), &fire, Some(&off), None);
    assert_eq!(verdict, Verdict::Skipped);
    let before = out.events.len();
    super::start_routines(&fire, &off, &mut out, &routines, seven(0), &ids);
    assert_eq!(out.events.len(), before, "nothing rang, nothing starts");
}

#[test]
fn a_claim_ahead_is_judged_at_its_instant_unless_an_edit_left_it_behind() {
    let ids = SequentialIds(AtomicU64::new(1));
    let policy = FirePolicy::default();
    let calendar = Calendar::default();
    let alarm = daily();
    let fire = fixtures::trigger(&alarm, seven(1), TriggerKind::Fire);
    let ahead = seven(1) - SignedDuration::from_secs(20);
    // Prepared: judged at its instant, rung with no lateness, next planned
    // from the instant.
    let (out, verdict, at) = super::judge_claim(
        &fire,
        Some(&alarm),
        Some(&calendar),
        None,
        &policy,
        ahead,
        &ids,
    );
    assert_eq!((verdict, at), (Verdict::Rang, seven(1)));
    assert_eq!(next(&out), Some((alarm.version(), Some(seven(2)))));
    // The alarm moved to 06:30 after the trigger was planned: 06:30 of the
    // same day is still ahead, so the plan starts from now, not from the
    // trigger's 07:00, which would pass it over.
    let moved = revised(&alarm, |d| {
        d.schedules = Schedules::new(vec![Schedule::Daily {
            time: WallTime::parse("06:30").expect("time"),
        }])
        .expect("schedules");
    });
    let early = seven(1) - mins(40);
    let (out, verdict, at) = super::judge_claim(
        &fire,
        Some(&moved),
        Some(&calendar),
        None,
        &policy,
        early,
        &ids,
    );
    assert_eq!((verdict, at), (Verdict::Skipped, early));
    assert_eq!(
        next(&out),
        Some((moved.version(), Some(seven(1) - mins(30)))),
        "the moved occurrence is planned"
    );
}
