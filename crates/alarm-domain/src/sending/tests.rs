//! The delivery policy, case by case: fan-out and its immediate fallback, attempts, failure counting and disabling, the ring's e-mail fallback, redelivery.

use jiff::Timestamp;
use jiff::civil::date;
use uuid::Uuid;

use super::{Health, RingKey, Subscriber, Tally, fallback, fan_out, record, redeliver};
use crate::ids::{AlarmId, EventId, UserId, WebhookId};
use crate::model::{AlarmEvent, AlarmEventKind, Channel, WebhookEvent, WebhookEventSet};
use crate::ports::{OutboxItem, SendResult, SendStatus, SendTopic, StoreError};
use crate::trigger::{Delivery, OccurrenceRef, TriggerKind};

fn t(second: i64) -> Timestamp {
    Timestamp::from_second(1_767_592_800 + second).expect("instant")
}

fn id(n: u8) -> [u8; 10] {
    [n; 10]
}

fn owner() -> UserId {
    UserId::from_parts(1, id(1))
}

fn alarm() -> AlarmId {
    AlarmId::from_parts(2, id(2))
}

fn hook(n: u8) -> WebhookId {
    WebhookId::from_parts(3, id(n))
}

fn occurrence() -> OccurrenceRef {
    OccurrenceRef {
        at: t(0),
        local: date(2026, 1, 5).at(6, 0, 0, 0),
    }
}

fn delivery(channel: Channel, kind: TriggerKind, n: u128) -> Delivery {
    Delivery {
        id: Uuid::from_u128(n),
        owner: owner(),
        alarm: alarm(),
        occurrence: occurrence(),
        kind,
        channel,
        created_at: t(1),
    }
}

fn subscriber(n: u8, events: &[WebhookEvent], active: bool) -> Subscriber {
    Subscriber {
        id: hook(n),
        owner: owner(),
        events: WebhookEventSet::new(events).expect("events"),
        active,
        alarms: Vec::new(),
    }
}

/// An event of the alarm, committed at `t(1)` with the fire's deliveries;
/// ring events name the occurrence.
fn event(kind: AlarmEventKind, n: u128) -> AlarmEvent {
    let ring = matches!(kind, AlarmEventKind::Triggered | AlarmEventKind::Escalated);
    AlarmEvent {
        id: EventId::from_uuid(Uuid::from_u128(n | (7 << 76)))
            .unwrap_or_else(|_| EventId::generate()),
        alarm: alarm(),
        owner: owner(),
        kind,
        at: t(1),
        occurrence: ring.then(|| t(0)),
        detail: None,
        data: Some(format!("{{\"n\":{n}}}")),
    }
}

fn webhook_row(n: u8, status: SendStatus) -> OutboxItem {
    OutboxItem {
        status,
        ..OutboxItem::pending(
            Uuid::from_u128(9),
            hook(n).as_uuid(),
            Channel::Webhook,
            owner(),
            Some((alarm(), occurrence())),
            SendTopic::Alarm(WebhookEvent::Triggered),
            t(1),
        )
    }
}

fn targets(rows: &[OutboxItem]) -> Vec<(Uuid, Channel, bool)> {
    rows.iter()
        .map(|r| (r.target, r.channel, r.fallback))
        .collect()
}

#[test]
fn an_event_goes_to_each_active_registration_subscribed_to_its_type_and_alarm() {
    let e = event(AlarmEventKind::Triggered, 1);
    let other_alarm = AlarmId::from_parts(2, id(9));
    let subs = [
        subscriber(1, &[WebhookEvent::Triggered], true),
        subscriber(2, &[WebhookEvent::Escalated], true),
        subscriber(3, &[WebhookEvent::Triggered], false),
        Subscriber {
            owner: UserId::from_parts(1, id(7)),
            ..subscriber(4, &[WebhookEvent::Triggered], true)
        },
        Subscriber {
            alarms: vec![other_alarm],
            ..subscriber(5, &[WebhookEvent::Triggered], true)
        },
        Subscriber {
            alarms: vec![other_alarm, alarm()],
            ..subscriber(6, &[WebhookEvent::Triggered], true)
        },
    ];
    // Whatever channels the alarm lists: the in-app delivery only lends
    // the ring its nominal local time.
    let d = delivery(Channel::InApp, TriggerKind::Fire, 50);
    let rows = fan_out(&[&d], std::slice::from_ref(&e), &subs);
    assert_eq!(
        targets(&rows),
        vec![
            (hook(1).as_uuid(), Channel::Webhook, false),
            (hook(6).as_uuid(), Channel::Webhook, false)
        ],
        "the owner's active registrations subscribed to alarm.triggered that cover the alarm"
    );
    assert_eq!(
        rows[0].message,
        e.id.as_uuid(),
        "the event id is the message id"
    );
    assert_eq!(rows[0].payload, e.data, "the event's data is the payload");
    assert_eq!(rows[0].topic, SendTopic::Alarm(WebhookEvent::Triggered));
    assert_eq!(
        rows[0].alarm,
        Some((alarm(), occurrence())),
        "a ring's row names it"
    );
    assert_eq!((rows[0].due, rows[0].status), (t(1), SendStatus::Pending));
}

#[test]
fn every_event_kind_has_its_type_and_only_rings_name_an_occurrence() {
    for (kind, want) in [
        (AlarmEventKind::Created, WebhookEvent::Created),
        (AlarmEventKind::Updated, WebhookEvent::Updated),
        (AlarmEventKind::Enabled, WebhookEvent::Updated),
        (AlarmEventKind::Disabled, WebhookEvent::Updated),
        (AlarmEventKind::Deleted, WebhookEvent::Deleted),
        (AlarmEventKind::Triggered, WebhookEvent::Triggered),
        (AlarmEventKind::Snoozed, WebhookEvent::Snoozed),
        (AlarmEventKind::Dismissed, WebhookEvent::Dismissed),
        (AlarmEventKind::Escalated, WebhookEvent::Escalated),
        (AlarmEventKind::Missed, WebhookEvent::Missed),
        (AlarmEventKind::Expired, WebhookEvent::Expired),
        (AlarmEventKind::RoutineStarted, WebhookEvent::RoutineStarted),
    ] {
        let rows = fan_out(&[], &[event(kind, 1)], &[subscriber(1, &[want], true)]);
        assert_eq!(rows.len(), 1, "{kind:?}");
        assert_eq!(rows[0].topic, SendTopic::Alarm(want), "{kind:?}");
        assert_eq!(
            rows[0].alarm.is_some(),
            matches!(want, WebhookEvent::Triggered | WebhookEvent::Escalated),
            "{kind:?}"
        );
    }
}

#[test]
fn every_subscribed_registration_disabled_falls_back_to_email_at_once() {
    let e = event(AlarmEventKind::Triggered, 1);
    let subs = [subscriber(1, &[WebhookEvent::Triggered], false)];
    let rows = fan_out(&[], std::slice::from_ref(&e), &subs);
    assert_eq!(
        targets(&rows),
        vec![(owner().as_uuid(), Channel::Email, true)]
    );
    assert_eq!(rows[0].message, e.id.as_uuid());
    let created = event(AlarmEventKind::Created, 2);
    assert!(
        fan_out(
            &[],
            &[created],
            &[subscriber(1, &[WebhookEvent::Created], false)]
        )
        .is_empty(),
        "only rings fall back to e-mail"
    );
}

#[test]
fn no_immediate_fallback_when_the_ring_emails_anyway_or_nobody_subscribed() {
    let e = event(AlarmEventKind::Triggered, 1);
    let mail = delivery(Channel::Email, TriggerKind::Fire, 2);
    let disabled = [subscriber(1, &[WebhookEvent::Triggered], false)];
    assert_eq!(
        targets(&fan_out(&[&mail], std::slice::from_ref(&e), &disabled)),
        vec![(owner().as_uuid(), Channel::Email, false)],
        "the ring's own e-mail row, no fallback"
    );
    assert!(
        fan_out(&[], std::slice::from_ref(&e), &[]).is_empty(),
        "no registration: nothing failed, nothing to fall back from"
    );
}

#[test]
fn in_app_push_and_webhook_deliveries_make_no_rows() {
    let a = delivery(Channel::InApp, TriggerKind::Fire, 1);
    let b = delivery(Channel::Push, TriggerKind::Fire, 2);
    let c = delivery(Channel::Webhook, TriggerKind::Fire, 3);
    assert!(
        fan_out(
            &[&a, &b, &c],
            &[],
            &[subscriber(1, &[WebhookEvent::Triggered], true)]
        )
        .is_empty(),
        "webhooks follow events, not the alarm's channels"
    );
}

#[test]
fn attempts_count_except_breaker_deferrals() {
    let mut row = webhook_row(1, SendStatus::Pending);
    record(
        &mut row,
        SendResult::Retry {
            due: t(60),
            counted: false,
            code: None,
            error: "circuit open".into(),
            latency_ms: 0,
        },
        t(2),
    );
    assert_eq!(
        (row.status, row.attempts, row.due),
        (SendStatus::Pending, 0, t(60))
    );
    record(
        &mut row,
        SendResult::Retry {
            due: t(120),
            counted: true,
            code: Some(503),
            error: "HTTP 503".into(),
            latency_ms: 40,
        },
        t(61),
    );
    assert_eq!((row.attempts, row.last_code), (1, Some(503)));
    record(
        &mut row,
        SendResult::Delivered {
            code: Some(204),
            latency_ms: 12,
        },
        t(121),
    );
    assert_eq!(
        (row.status, row.attempts, row.last_error, row.latency_ms),
        (SendStatus::Delivered, 2, None, Some(12))
    );
    assert_eq!(row.updated_at, t(121));
}

#[test]
fn a_success_in_the_batch_outweighs_its_failures_and_pings_do_not_count() {
    let ping = OutboxItem {
        topic: SendTopic::Test,
        ..webhook_row(3, SendStatus::Dead)
    };
    let tally = Tally::of(&[
        webhook_row(1, SendStatus::Dead),
        webhook_row(1, SendStatus::Delivered),
        webhook_row(2, SendStatus::Dead),
        webhook_row(2, SendStatus::Dead),
        ping,
    ]);
    assert_eq!(
        tally.succeeded.iter().copied().collect::<Vec<_>>(),
        [hook(1)]
    );
    assert_eq!(tally.failed.get(&hook(2)), Some(&2));
    assert!(!tally.failed.contains_key(&hook(1)));
    assert!(!tally.failed.contains_key(&hook(3)), "a ping says nothing");
    assert_eq!(tally.touched(), vec![hook(1), hook(2)]);
}

#[test]
fn failures_disable_an_active_registration_at_the_threshold_once() {
    let tally = Tally::of(&[webhook_row(1, SendStatus::Dead)]);
    let notice = Uuid::from_u128(77);
    let below = tally.judge(
        hook(1),
        owner(),
        Health {
            failures: 3,
            active: true,
        },
        5,
        notice,
        t(9),
    );
    assert_eq!(
        below.map(|c| (c.health, c.notice.is_some())),
        Some((
            Health {
                failures: 4,
                active: true
            },
            false
        ))
    );
    let at = tally
        .judge(
            hook(1),
            owner(),
            Health {
                failures: 4,
                active: true,
            },
            5,
            notice,
            t(9),
        )
        .expect("a change");
    assert!(!at.health.active);
    let mail = at.notice.expect("the owner is told");
    assert_eq!(
        (mail.message, mail.target, mail.channel, mail.topic),
        (
            notice,
            hook(1).as_uuid(),
            Channel::Email,
            SendTopic::WebhookDisabled
        )
    );
    let already = tally
        .judge(
            hook(1),
            owner(),
            Health {
                failures: 9,
                active: false,
            },
            5,
            notice,
            t(9),
        )
        .expect("still counted");
    assert!(
        already.notice.is_none(),
        "a disabled registration is not disabled again"
    );
}

#[test]
fn a_success_resets_only_a_nonzero_count() {
    let tally = Tally::of(&[webhook_row(1, SendStatus::Delivered)]);
    let healthy = Health {
        failures: 0,
        active: true,
    };
    assert_eq!(
        tally.judge(hook(1), owner(), healthy, 5, Uuid::nil(), t(9)),
        None
    );
    let change = tally
        .judge(
            hook(1),
            owner(),
            Health {
                failures: 2,
                active: true,
            },
            5,
            Uuid::nil(),
            t(9),
        )
        .expect("reset");
    assert_eq!(change.health, healthy);
    assert_eq!(
        tally.judge(hook(2), owner(), healthy, 5, Uuid::nil(), t(9)),
        None,
        "not in the batch"
    );
}

#[test]
fn the_last_dead_external_row_of_a_ring_falls_back_to_email() {
    let dead1 = webhook_row(1, SendStatus::Dead);
    let dead2 = webhook_row(2, SendStatus::Dead);
    let live = webhook_row(2, SendStatus::Pending);
    assert_eq!(
        fallback(&dead1, &[dead1.clone(), live], t(5)),
        None,
        "another row of the ring may still succeed"
    );
    let mail = fallback(&dead1, &[dead1.clone(), dead2.clone()], t(5)).expect("fallback");
    assert_eq!(
        (mail.message, mail.target, mail.channel, mail.fallback),
        (dead1.message, owner().as_uuid(), Channel::Email, true)
    );
    assert_eq!((mail.due, mail.topic), (t(5), dead1.topic));
    let other_ring = OutboxItem {
        created_at: t(3),
        status: SendStatus::Delivered,
        ..webhook_row(3, SendStatus::Delivered)
    };
    assert!(
        fallback(&dead1, &[dead1.clone(), dead2, other_ring], t(5)).is_some(),
        "an earlier ring's success does not hide this ring's failure"
    );
    let emailed = OutboxItem {
        channel: Channel::Email,
        target: owner().as_uuid(),
        ..webhook_row(1, SendStatus::Dead)
    };
    assert_eq!(
        fallback(&dead1, &[dead1.clone(), emailed.clone()], t(5)),
        None,
        "the ring has an e-mail row"
    );
    assert_eq!(
        fallback(&emailed, std::slice::from_ref(&emailed), t(5)),
        None
    );
    assert_eq!(RingKey::of(&dead1).map(|k| k.created_at), Some(t(1)));
}

#[test]
fn only_a_finished_row_can_be_redelivered() {
    let mut pending = webhook_row(1, SendStatus::Pending);
    assert!(matches!(
        redeliver(&mut pending, t(9)),
        Err(StoreError::Conflict(_))
    ));
    let mut dead = OutboxItem {
        attempts: 8,
        ..webhook_row(1, SendStatus::Dead)
    };
    redeliver(&mut dead, t(9)).expect("dead rows come back");
    assert_eq!(
        (dead.status, dead.attempts, dead.due, dead.updated_at),
        (SendStatus::Pending, 0, t(9), t(9))
    );
}
