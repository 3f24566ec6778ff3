//! The in-app channel over HTTP with the engine in-process: an alarm set a few seconds ahead of the database's clock rings, then snooze, dismiss, idempotent retries and ownership.

use std::time::Duration;

use alarm_domain::jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::support::Harness;

/// Polls the caller's ringing list until it holds something (the engine
/// is another task; there is no push channel to await), failing at
/// `deadline`.
pub(crate) async fn wait_ringing(
    h: &Harness,
    token: &str,
    deadline: tokio::time::Instant,
) -> serde_json::Value {
    loop {
        let r = h.req("GET", "/api/v1/ringing").bearer(token).send().await;
        assert_eq!(r.status, 200, "{}", r.body);
        if !r.body["items"].as_array().expect("items").is_empty() {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the alarm did not ring by its deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How far ahead of the database's clock the alarm is set: the create
/// request must reach the API before that instant, or a one-off alarm in
/// the past is refused.
const AHEAD: SignedDuration = SignedDuration::from_secs(3);

async fn rings_snoozes_and_dismisses(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let bob = h.account("bob@example.com").await;
    // The engine rings on the database's clock, so the instant is taken
    // from it, rounded up to the whole second a schedule can name.
    let db_now = h
        .ports()
        .queue
        .store_time()
        .await
        .expect("the database's time");
    let due = Timestamp::from_second((db_now + AHEAD).as_second() + 1).expect("due");
    let once = |at: Timestamp| {
        let local = at.to_zoned(alarm_domain::jiff::tz::TimeZone::UTC);
        json!([{
            "kind": "once",
            "date": local.date().to_string(),
            "time": local.time().strftime("%H:%M:%S").to_string(),
        }])
    };
    let r = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana.access)
        .json(json!({
            "name": "Tea",
            "time_zone": "UTC",
            "schedules": once(due),
        }))
        .send()
        .await;
    assert_eq!(
        r.status, 201,
        "created less than {AHEAD:?} before {due}: {}",
        r.body
    );
    let id = r.body["id"].as_str().expect("id").to_owned();
    assert_eq!(r.body["next_fire_at"], json!(due.to_string()));
    // An alarm that cannot ring during the test: snoozing what does not
    // ring is a conflict.
    let r = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana.access)
        .json(json!({
            "name": "Tomorrow",
            "time_zone": "UTC",
            "schedules": once(due + SignedDuration::from_hours(24)),
        }))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tomorrow = r.body["id"].as_str().expect("id").to_owned();
    let r = h
        .req("POST", &format!("/api/v1/alarms/{tomorrow}/snooze"))
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(r.status, 409, "nothing rings yet: {}", r.body);
    assert_eq!(r.body["type"], "conflict");

    // Up to the instant, then 15 s for the engine to ring it.
    let wait =
        Duration::try_from(due.duration_since(db_now)).expect("ahead") + Duration::from_secs(15);
    let list = wait_ringing(h, &ana.access, tokio::time::Instant::now() + wait).await;
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(1),
        "only the alarm that was due rings: {list}"
    );
    let item = &list["items"][0];
    assert_eq!(item["alarm_id"], json!(id));
    assert_eq!(item["alarm_name"], "Tea");
    assert_eq!(item["occurrence_at"], json!(due.to_string()));
    let since: Timestamp = item["ringing_since"]
        .as_str()
        .expect("since")
        .parse()
        .expect("ts");
    assert!(since >= due, "never early: rang at {since}, due {due}");
    let r = h
        .req("GET", &format!("/api/v1/alarms/{id}/events"))
        .bearer(&ana.access)
        .send()
        .await;
    let triggered = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["kind"] == "triggered")
        .expect("a triggered event")
        .clone();
    println!(
        "rang {} ms after its instant ({})",
        since.duration_since(due).as_millis(),
        triggered["detail"]
    );

    let bob_list = h
        .req("GET", "/api/v1/ringing")
        .bearer(&bob.access)
        .send()
        .await;
    assert_eq!(
        bob_list.body["items"],
        json!([]),
        "another user sees nothing"
    );
    for action in ["snooze", "dismiss"] {
        let r = h
            .req("POST", &format!("/api/v1/alarms/{id}/{action}"))
            .bearer(&bob.access)
            .send()
            .await;
        assert_eq!(
            r.status, 404,
            "{action} of another user's alarm: {}",
            r.body
        );
    }

    let snooze = |key: &'static str| {
        h.req("POST", &format!("/api/v1/alarms/{id}/snooze"))
            .bearer(&ana.access)
            .header("Idempotency-Key", key)
            .send()
    };
    let first = snooze("s-1").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["snoozed"], true);
    assert_eq!(first.body["snoozes"], 1);
    let again: Timestamp = first.body["rings_again_at"]
        .as_str()
        .expect("rings_again_at")
        .parse()
        .expect("ts");
    let minutes = again.duration_since(since);
    assert!(
        minutes >= SignedDuration::from_mins(5) && minutes < SignedDuration::from_mins(6),
        "the default snooze is 5 minutes: {minutes:?}"
    );
    let replay = snooze("s-1").await;
    assert_eq!(replay.status, 200);
    assert_eq!(
        replay.body, first.body,
        "a retried snooze returns the first answer"
    );
    let list = h
        .req("GET", "/api/v1/ringing")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(
        list.body["items"],
        json!([]),
        "a snoozed occurrence is not ringing"
    );
    let second = snooze("s-2").await;
    assert_eq!(
        second.status, 409,
        "nothing is ringing while snoozed: {}",
        second.body
    );

    let dismiss = |key: Option<&'static str>| {
        let req = h
            .req("POST", &format!("/api/v1/alarms/{id}/dismiss"))
            .bearer(&ana.access);
        match key {
            Some(k) => req.header("Idempotency-Key", k),
            None => req,
        }
        .send()
    };
    assert_eq!(
        dismiss(Some("d-1")).await.status,
        204,
        "a snoozed occurrence can be dismissed"
    );
    assert_eq!(
        dismiss(Some("d-1")).await.status,
        204,
        "a retried dismissal answers the same"
    );
    let r = dismiss(None).await;
    assert_eq!(r.status, 409, "nothing left to dismiss: {}", r.body);
    let r = h
        .req("GET", &format!("/api/v1/alarms/{id}"))
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(
        r.body["next_fire_at"],
        json!(null),
        "a one-off alarm that rang is done"
    );
}

crate::trials! {
    api: [rings_snoozes_and_dismisses],
}
