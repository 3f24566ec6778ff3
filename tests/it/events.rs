//! Every alarm event delivered through the outbox on both databases: one signed webhook per event and subscribed registration, whatever channels the alarm lists, with the data fixed when the event was made, in order per alarm; `alarm_ids` narrows a registration; a deleted alarm's pending events still go out; a registration made later receives nothing earlier.

use std::sync::Arc;

use alarm_domain::jiff::SignedDuration;
use alarm_domain::model::{RoutineAction, RoutineName, WebhookEvent, WebhookEventSet, WebhookUrl};
use alarm_domain::ports::PageRequest;
use alarm_domain::services::{AlarmService, RoutineService, WebhookService};
use alarm_notify::StaticResolver;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::delivery::{Receiver, assert_signed, dispatcher, open_sender, quick, seven};
use crate::engine::World;

async fn every_event_type_arrives_once_signed_and_in_order(w: &World) {
    let receiver = Receiver::start().await;
    let ana = w.user("ana@example.com").await;
    let hooks = WebhookService::new(w.ports.clone());
    let alarms = AlarmService::new(w.ports.clone());
    let subscribe = |events: &[WebhookEvent], path: &str, narrow| {
        let hooks = hooks.clone();
        let ana = ana.clone();
        let url = receiver.url(path);
        let events = WebhookEventSet::new(events).expect("events");
        async move {
            hooks
                .create(&ana, WebhookUrl::parse(&url).expect("url"), events, narrow)
                .await
                .expect("register")
        }
    };
    let all = subscribe(&WebhookEvent::all().collect::<Vec<_>>(), "/all", Vec::new()).await;
    let secret = all.secret.expose_secret().to_owned();

    // An alarm with the default channels (in-app only): webhooks follow
    // the registrations' subscriptions, not the alarm's channels.
    let mut draft = alarm_testkit::fixtures::draft("Wake");
    draft.escalation = alarm_domain::model::EscalationPolicy::new(1, 5, 5).expect("policy");
    let alarm = alarms.create(&ana, draft.clone()).await.expect("create");
    let other = alarms
        .create(&ana, alarm_testkit::fixtures::draft("Other"))
        .await
        .expect("create other");
    let narrowed = subscribe(
        &[WebhookEvent::Created, WebhookEvent::Deleted],
        "/narrow",
        vec![other.id()],
    )
    .await;
    let routines = RoutineService::new(w.ports.clone());
    let coffee = routines
        .create(
            &ana,
            RoutineName::parse("Coffee").expect("name"),
            vec![RoutineAction::parse("Brew").expect("action")],
            true,
        )
        .await
        .expect("routine");
    routines
        .attach(&ana, alarm.id(), vec![coffee.id()])
        .await
        .expect("attach");
    let mut renamed = draft.clone();
    renamed.name = alarm_domain::model::AlarmName::parse("Wake up").expect("name");
    let alarm = alarms
        .update(&ana, alarm.id(), renamed, alarm.version())
        .await
        .expect("rename");
    let alarm = alarms
        .set_enabled(&ana, alarm.id(), false, None)
        .await
        .expect("disable");
    alarms
        .set_enabled(&ana, alarm.id(), true, None)
        .await
        .expect("enable");
    // Day 0: rings (and starts the routine), snoozed, rings again, dismissed.
    w.clock.set(seven(0));
    w.engine.tick(seven(0)).await.expect("fire");
    alarms.snooze(&ana, alarm.id()).await.expect("snooze");
    let snoozed = seven(0) + SignedDuration::from_mins(10);
    w.clock.set(snoozed);
    w.engine.tick(snoozed).await.expect("snooze ends");
    alarms.dismiss(&ana, alarm.id()).await.expect("dismiss");
    // Day 1: rings, escalates once, expires unanswered.
    w.clock.set(seven(1));
    w.engine.tick(seven(1)).await.expect("fire");
    let escalated = seven(1) + SignedDuration::from_mins(5);
    w.clock.set(escalated);
    w.engine.tick(escalated).await.expect("escalate");
    let expired = escalated + SignedDuration::from_mins(31);
    w.clock.set(expired);
    w.engine.tick(expired).await.expect("expire");
    // Day 2: found past the grace window.
    let late = seven(2) + SignedDuration::from_mins(11);
    w.clock.set(late);
    w.engine.tick(late).await.expect("missed");
    alarms.delete(&ana, alarm.id(), None).await.expect("delete");
    alarms
        .delete(&ana, other.id(), None)
        .await
        .expect("delete other");

    // Nothing has been sent yet: every row waits for the dispatcher, which
    // runs only now, after the alarm is gone.
    let later = subscribe(
        &WebhookEvent::all().collect::<Vec<_>>(),
        "/later",
        Vec::new(),
    )
    .await;
    let d = dispatcher(
        w,
        quick(),
        open_sender(),
        Arc::new(StaticResolver::new()),
        None,
    );
    let until = late + SignedDuration::from_mins(1);
    w.clock.set(until);
    while d.round().await.expect("round") {}

    let got = receiver.got();
    let at = |path: &str| {
        got.iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect::<Vec<_>>()
    };
    let all_got = at("/all");
    for r in &all_got {
        assert_signed(r, &secret);
        // Each body is what the published schema says, member for member.
        crate::spec_answers::conforms("WebhookEventBody", &r.json()).expect("the documented body");
    }
    let of_wake: Vec<(String, serde_json::Value)> = all_got
        .iter()
        .map(|r| r.json())
        .filter(|b| b["data"]["alarm_id"] == alarm.id().to_string())
        .map(|b| {
            (
                b["type"].as_str().expect("type").to_owned(),
                b["data"].clone(),
            )
        })
        .collect();
    let types: Vec<&str> = of_wake.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "alarm.created",
            "alarm.updated",
            "alarm.updated",
            "alarm.updated",
            "alarm.triggered",
            "routine.started",
            "alarm.snoozed",
            "alarm.triggered",
            "alarm.dismissed",
            "alarm.triggered",
            "routine.started",
            "alarm.escalated",
            "alarm.expired",
            "alarm.missed",
            "alarm.deleted",
        ],
        "each event once, in the order it was made"
    );
    // The data, fixed when each event was made.
    let data = |i: usize| &of_wake[i].1;
    assert_eq!(data(0)["alarm_name"], "Wake");
    assert_eq!(data(1)["changes"], json!(["name"]));
    assert_eq!(data(1)["alarm_name"], "Wake up");
    assert_eq!(
        (&data(2)["changes"], &data(2)["enabled"]),
        (&json!(["enabled"]), &json!(false))
    );
    assert_eq!(
        (&data(3)["changes"], &data(3)["enabled"]),
        (&json!(["enabled"]), &json!(true))
    );
    assert_eq!(data(4)["occurrence_at"], "2026-01-05T07:00:00Z");
    assert_eq!(data(4)["local_time"], "2026-01-05T07:00:00");
    assert_eq!(data(4)["user_id"], ana.user.to_string());
    assert_eq!(
        data(5)["routine"],
        json!({"routine_id": coffee.id().to_string(), "name": "Coffee", "actions": ["Brew"]})
    );
    assert_eq!(
        data(14)["alarm_name"],
        "Wake up",
        "sent after the deletion, as it was"
    );
    // `webhook-id` is the event's id, equal to `data.delivery_id`.
    let ids: Vec<String> = w
        .ports
        .events
        .list(
            ana.user,
            alarm.id(),
            PageRequest::new(None, 100).expect("page"),
        )
        .await
        .expect("history")
        .items
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    for r in all_got
        .iter()
        .filter(|r| r.json()["data"]["alarm_id"] == alarm.id().to_string())
    {
        assert_eq!(r.json()["data"]["delivery_id"], r.header("webhook-id"));
        assert!(
            ids.contains(&r.header("webhook-id").to_owned()),
            "an event's id"
        );
    }
    // The narrowed registration (made after the other alarm was created)
    // heard only of the other alarm's deletion.
    let narrow: Vec<(String, String)> = at("/narrow")
        .iter()
        .map(|r| {
            let b = r.json();
            (
                b["type"].as_str().unwrap_or("").to_owned(),
                b["data"]["alarm_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        narrow,
        [("alarm.deleted".to_owned(), other.id().to_string())]
    );
    assert_eq!(narrowed.registration.alarms(), [other.id()]);
    assert!(
        at("/later").is_empty(),
        "a registration made later receives nothing earlier"
    );
    drop(later);

    // A redelivery sends the same `webhook-id` again.
    let first = &all_got[0];
    let rows = w
        .ports
        .outbox
        .list(
            ana.user,
            alarm_domain::model::Channel::Webhook,
            all.registration.id().as_uuid(),
            None,
            100,
        )
        .await
        .expect("rows");
    let row = rows
        .iter()
        .find(|r| r.message.to_string() == first.header("webhook-id"))
        .expect("the first row");
    hooks
        .retry(&ana, all.registration.id(), row.message)
        .await
        .expect("redeliver");
    while d.round().await.expect("round") {}
    let again = receiver.got();
    let last = again.last().expect("redelivered");
    assert_eq!(last.header("webhook-id"), first.header("webhook-id"));
    assert_eq!(last.json()["data"], first.json()["data"]);
}

crate::trials! {
    world: [every_event_type_arrives_once_signed_and_in_order],
}
