//! Exception periods over HTTP on both databases: owned (another user's id is 404), filtered by day and kind, refused with the field named, and moving the next fire and the preview at once.

use alarm_domain::jiff::ToSpan;
use alarm_domain::jiff::civil::Date;
use serde_json::json;

use crate::support::Harness;

fn date_of(instant: &str) -> Date {
    instant[..10].parse().expect("a date")
}

async fn next_fire(h: &Harness, alarm: &str, token: &str) -> Date {
    let r = h
        .req("GET", &format!("/api/v1/alarms/{alarm}"))
        .bearer(token)
        .send()
        .await;
    date_of(r.body["next_fire_at"].as_str().expect("next fire"))
}

async fn exception_periods_are_owned_filtered_and_move_the_next_fire(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let bob = h.account("bob@example.com").await;
    let created = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana.access)
        .json(json!({"name": "Wake", "time_zone": "UTC", "schedules": [{"kind": "daily", "time": "07:00"}]}))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let alarm = created.body["id"].as_str().expect("id").to_owned();
    let first = date_of(created.body["next_fire_at"].as_str().expect("next fire"));

    // Three silent days from the next fire on: the next fire moves past them.
    let end = first.checked_add(2.days()).expect("end");
    let period = h
        .req("POST", "/api/v1/exception-periods")
        .bearer(&ana.access)
        .json(json!({"name": "Lisbon", "type": "vacation", "start": first.to_string(), "end": end.to_string()}))
        .send()
        .await;
    assert_eq!(period.status, 201, "{}", period.body);
    let period_id = period.body["id"].as_str().expect("id").to_owned();
    assert!(
        period
            .header("location")
            .is_some_and(|l| l.ends_with(&format!("/api/v1/exception-periods/{period_id}"))),
        "{:?}",
        period.headers
    );
    let alarm_now = h
        .req("GET", &format!("/api/v1/alarms/{alarm}"))
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(
        date_of(alarm_now.body["next_fire_at"].as_str().expect("next fire")),
        end.checked_add(1.day()).expect("day after"),
        "the period moved the next fire at once"
    );
    let preview = h
        .req(
            "GET",
            &format!("/api/v1/alarms/{alarm}/occurrences?include_suppressed=true&limit=4"),
        )
        .bearer(&ana.access)
        .send()
        .await;
    let items = preview.body["items"].as_array().expect("items");
    for item in &items[..3] {
        assert_eq!(item["suppressed"], json!(true), "{item}");
        assert_eq!(item["reason"], json!("exception-period"));
        assert_eq!(
            item["reason_detail"],
            json!("Lisbon"),
            "the preview names the period"
        );
    }
    assert_eq!(items[3]["suppressed"], json!(false));

    // Filters.
    let travel = h
        .req("POST", "/api/v1/exception-periods")
        .bearer(&ana.access)
        .json(json!({"name": "Conference", "type": "travel", "start": "2031-01-10", "end": "2031-01-12"}))
        .send()
        .await;
    assert_eq!(travel.status, 201, "{}", travel.body);
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let list = |query: &str| h.req("GET", &format!("/api/v1/exception-periods{query}"));
    let all = list("").bearer(&ana.access).send().await;
    assert_eq!(ids(&all.body).len(), 2);
    let on = list("?active_on=2031-01-11")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(
        ids(&on.body),
        vec![travel.body["id"].as_str().expect("id").to_owned()]
    );
    let kind = list("?type=vacation").bearer(&ana.access).send().await;
    assert_eq!(ids(&kind.body), vec![period_id.clone()]);
    let both = list("?type=vacation&active_on=2031-01-11")
        .bearer(&ana.access)
        .send()
        .await;
    assert!(ids(&both.body).is_empty());
    let bad_day = list("?active_on=11/01/2031")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(bad_day.problem(400, "validation").field(), "active_on");
    let bad_kind = list("?type=sabbatical").bearer(&ana.access).send().await;
    assert_eq!(bad_kind.problem(400, "validation").field(), "type");

    // Refusals name the field and store nothing.
    for (body, field) in [
        (
            json!({"name": "x", "type": "vacation", "start": "2031-13-01", "end": "2031-12-02"}),
            "start",
        ),
        (
            json!({"name": "x", "type": "vacation", "start": "2031-02-01", "end": "2031-01-02"}),
            "end",
        ),
        (
            json!({"name": "x", "type": "vacation", "start": "2031-01-01", "end": "2032-01-03"}),
            "end",
        ),
        (
            json!({"name": "", "type": "vacation", "start": "2031-01-01", "end": "2031-01-03"}),
            "name",
        ),
        (
            json!({"name": "x", "type": "gap-year", "start": "2031-01-01", "end": "2031-01-03"}),
            "type",
        ),
    ] {
        let r = h
            .req("POST", "/api/v1/exception-periods")
            .bearer(&ana.access)
            .json(body.clone())
            .send()
            .await;
        assert_eq!(r.problem(422, "validation").field(), field, "{body}");
    }
    assert_eq!(
        ids(&list("").bearer(&ana.access).send().await.body).len(),
        2
    );

    // Another user sees none of it, and every id of ana's is 404 to him.
    let mine = list("").bearer(&bob.access).send().await;
    assert!(ids(&mine.body).is_empty());
    let path = format!("/api/v1/exception-periods/{period_id}");
    h.req("GET", &path)
        .bearer(&bob.access)
        .send()
        .await
        .problem(404, "not-found");
    h.req("PUT", &path)
        .bearer(&bob.access)
        .json(json!({"name": "Mine", "type": "custom", "start": "2031-01-01", "end": "2031-01-01"}))
        .send()
        .await
        .problem(404, "not-found");
    h.req("DELETE", &path)
        .bearer(&bob.access)
        .send()
        .await
        .problem(404, "not-found");
    h.req("GET", "/api/v1/exception-periods/not-a-uuid")
        .bearer(&ana.access)
        .send()
        .await
        .problem(404, "not-found");

    // Replacing and deleting move the next fire back.
    let replaced = h
        .req("PUT", &path)
        .bearer(&ana.access)
        .json(json!({"name": "Lisbon, short", "type": "vacation", "start": first.to_string(), "end": first.to_string()}))
        .send()
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["name"], json!("Lisbon, short"));
    assert_eq!(
        next_fire(h, &alarm, &ana.access).await,
        first.checked_add(1.day()).expect("day after")
    );
    let deleted = h.req("DELETE", &path).bearer(&ana.access).send().await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        next_fire(h, &alarm, &ana.access).await,
        first,
        "the alarm rings on the first day again"
    );
    h.req("GET", &path)
        .bearer(&ana.access)
        .send()
        .await
        .problem(404, "not-found");
}

crate::trials! {
    api: [exception_periods_are_owned_filtered_and_move_the_next_fire],
}
