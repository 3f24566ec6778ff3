//! Routines over HTTP on both databases: owned CRUD with fields named in every refusal, the per-user cap, attaching to alarms (order, ownership, detaching), and the routines that start when an alarm really rings.

use std::time::Duration;

use alarm_domain::jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::support::Harness;

async fn create(h: &Harness, token: &str, body: serde_json::Value) -> String {
    let r = h
        .req("POST", "/api/v1/routines")
        .bearer(token)
        .json(body)
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

async fn routines_are_owned_validated_and_capped(h: &Harness) {
    let ana = h.account("ana@example.com").await.access;
    let bob = h.account("bob@example.com").await.access;
    for (body, field) in [
        (json!({"name": "", "actions": ["Coffee"]}), "name"),
        (json!({"name": "M", "actions": []}), "actions"),
        (
            json!({"name": "M", "actions": ["Coffee", " "]}),
            "actions[1]",
        ),
        (
            json!({"name": "M", "actions": ["Coffee", "COFFEE"]}),
            "actions[1]",
        ),
        (json!({"name": "M", "actions": vec!["x"; 51]}), "actions"),
        (
            json!({"name": "M", "actions": ["a".repeat(201)]}),
            "actions[0]",
        ),
        (
            json!({"name": "M", "actions": ["Coffee"], "colour": "red"}),
            "colour",
        ),
    ] {
        let r = h
            .req("POST", "/api/v1/routines")
            .bearer(&ana)
            .json(body.clone())
            .send()
            .await;
        assert_eq!(r.problem(422, "validation").field(), field, "{body}");
    }
    let id = create(
        h,
        &ana,
        json!({"name": "Morning", "actions": ["Lights on", "Coffee"], "active": false}),
    )
    .await;
    let path = format!("/api/v1/routines/{id}");
    let got = h.req("GET", &path).bearer(&ana).send().await;
    assert_eq!(
        got.body,
        json!({"id": id, "name": "Morning", "actions": ["Lights on", "Coffee"], "active": false})
    );
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(json!({"name": "Mine", "actions": ["x"]}))),
        ("DELETE", None),
    ] {
        let mut req = h.req(method, &path).bearer(&bob);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.problem(404, "not-found");
    }
    h.req("GET", "/api/v1/routines/not-an-id")
        .bearer(&ana)
        .send()
        .await
        .problem(404, "not-found");
    let listed = h.req("GET", "/api/v1/routines").bearer(&bob).send().await;
    assert_eq!(listed.body["items"], json!([]), "bob sees none of ana's");

    // The cap: 100 per user, the 101st refused naming it.
    for n in 1..100 {
        create(h, &ana, json!({"name": format!("R{n}"), "actions": ["x"]})).await;
    }
    let over = h
        .req("POST", "/api/v1/routines")
        .bearer(&ana)
        .json(json!({"name": "One too many", "actions": ["x"]}))
        .send()
        .await;
    over.problem(409, "quota-exceeded");
    assert_eq!(over.body["quota"], "routines_per_user");
    let all = h.req("GET", "/api/v1/routines").bearer(&ana).send().await;
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(100));
}

/// A `once` schedule at `at` (UTC).
fn once(at: Timestamp) -> serde_json::Value {
    let local = at.to_zoned(alarm_domain::jiff::tz::TimeZone::UTC);
    json!([{
        "kind": "once",
        "date": local.date().to_string(),
        "time": local.time().strftime("%H:%M:%S").to_string(),
    }])
}

async fn attached_routines_start_when_the_alarm_rings(h: &Harness) {
    let ana = h.account("ana@example.com").await.access;
    let bob = h.account("bob@example.com").await.access;
    let coffee = create(
        h,
        &ana,
        json!({"name": "Coffee", "actions": ["Grind", "Brew"]}),
    )
    .await;
    let paused = create(
        h,
        &ana,
        json!({"name": "Paused", "actions": ["Nothing"], "active": false}),
    )
    .await;
    let lights = create(
        h,
        &ana,
        json!({"name": "Lights", "actions": ["Bedroom on"]}),
    )
    .await;
    let bobs = create(h, &bob, json!({"name": "Bob's", "actions": ["Mine"]})).await;
    let db_now = h
        .ports()
        .queue
        .store_time()
        .await
        .expect("the database's time");
    let due = Timestamp::from_second((db_now + SignedDuration::from_secs(3)).as_second() + 1)
        .expect("due");
    let alarm = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana)
        .json(json!({"name": "Wake", "time_zone": "UTC", "schedules": once(due)}))
        .send()
        .await;
    assert_eq!(alarm.status, 201, "{}", alarm.body);
    let alarm_id = alarm.body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/alarms/{alarm_id}/routines");

    // Refusals name the item; another user's alarm is 404 whatever the body.
    let many: Vec<String> = (0..11).map(|_| coffee.clone()).collect();
    for (ids, field, reason) in [
        (json!(many), "routine_ids", "at most 10"),
        (json!([coffee, coffee]), "routine_ids[1]", "twice"),
        (
            json!([coffee, bobs]),
            "routine_ids[1]",
            "not one of your routines",
        ),
        (
            json!(["not-an-id"]),
            "routine_ids[0]",
            "not one of your routines",
        ),
    ] {
        let r = h
            .req("PUT", &path)
            .bearer(&ana)
            .json(json!({"routine_ids": ids}))
            .send()
            .await;
        r.problem(422, "validation");
        assert_eq!(
            (
                r.field(),
                r.body["errors"][0]["reason"]
                    .as_str()
                    .is_some_and(|m| m.contains(reason))
            ),
            (field, true),
            "{ids}: {}",
            r.body
        );
    }
    h.req("PUT", &path)
        .bearer(&bob)
        .json(json!({"routine_ids": [bobs]}))
        .send()
        .await
        .problem(404, "not-found");
    h.req("GET", &path)
        .bearer(&bob)
        .send()
        .await
        .problem(404, "not-found");

    let order = json!([lights, paused, coffee]);
    let attached = h
        .req("PUT", &path)
        .bearer(&ana)
        .json(json!({"routine_ids": order}))
        .send()
        .await;
    assert_eq!(attached.status, 200, "{}", attached.body);
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(
        ids(&attached.body),
        [lights.clone(), paused.clone(), coffee.clone()]
    );
    let read = h.req("GET", &path).bearer(&ana).send().await;
    assert_eq!(ids(&read.body), ids(&attached.body), "in the order given");

    // It rings: the active routines start, in order; the paused one does not.
    let wait =
        Duration::try_from(due.duration_since(db_now)).expect("ahead") + Duration::from_secs(15);
    crate::ringing::wait_ringing(h, &ana, tokio::time::Instant::now() + wait).await;
    let events = h
        .req("GET", &format!("/api/v1/alarms/{alarm_id}/events"))
        .bearer(&ana)
        .send()
        .await;
    let started: Vec<serde_json::Value> = events.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["kind"] == "routine_started")
        .map(|e| {
            assert_eq!(e["occurrence"], json!(due.to_string()));
            e["routine"].clone()
        })
        .collect();
    assert_eq!(
        started,
        [
            json!({"routine_id": lights, "name": "Lights", "actions": ["Bedroom on"]}),
            json!({"routine_id": coffee, "name": "Coffee", "actions": ["Grind", "Brew"]}),
        ]
    );

    // Deleting a routine detaches it; an empty list detaches the rest.
    let gone = h
        .req("DELETE", &format!("/api/v1/routines/{lights}"))
        .bearer(&ana)
        .send()
        .await;
    assert_eq!(gone.status, 204);
    let read = h.req("GET", &path).bearer(&ana).send().await;
    assert_eq!(ids(&read.body), [paused.clone(), coffee.clone()]);
    let none = h
        .req("PUT", &path)
        .bearer(&ana)
        .json(json!({"routine_ids": []}))
        .send()
        .await;
    assert_eq!(none.body["items"], json!([]));
    let read = h.req("GET", &path).bearer(&ana).send().await;
    assert_eq!(read.body["items"], json!([]));
}

crate::trials! {
    api: [
        routines_are_owned_validated_and_capped,
        attached_routines_start_when_the_alarm_rings,
    ],
}
