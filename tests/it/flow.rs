//! The main story: accounts, each schedule kind, a preview across a DST change, ETags, idempotent creation, refresh rotation with reuse detection, logout.

use serde_json::{Value, json};

use crate::support::{ADMIN, Harness};

fn alarm(name: &str, zone: &str, schedules: Value) -> Value {
    json!({"name": name, "time_zone": zone, "schedules": schedules})
}

async fn flow(h: &Harness) {
    // Accounts: the bootstrap admin and a user.
    let admin = h.account(ADMIN).await;
    let me = h
        .req("GET", "/api/v1/auth/me")
        .bearer(&admin.access)
        .send()
        .await;
    assert_eq!((me.status, me.body["role"].as_str()), (200, Some("admin")));
    let ana = h.account("ana@example.com").await;
    let me = h
        .req("GET", "/api/v1/auth/me")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(me.body["role"], "user");
    assert_eq!(me.body["time_zone"], "America/Sao_Paulo");
    let again = h
        .req("POST", "/api/v1/auth/register")
        .json(json!({"email": "ANA@example.com", "password": "another long password", "display_name": "A"}))
        .send()
        .await;
    again.problem(409, "conflict");

    // Wrong password and unknown email answer alike.
    let wrong = h
        .req("POST", "/api/v1/auth/login")
        .json(json!({"email": "ana@example.com", "password": "not the password"}))
        .send()
        .await;
    let unknown = h
        .req("POST", "/api/v1/auth/login")
        .json(json!({"email": "nobody@example.com", "password": "not the password"}))
        .send()
        .await;
    wrong.problem(401, "unauthorized");
    unknown.problem(401, "unauthorized");
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);

    // Each schedule kind.
    let kinds = [
        json!([{"kind": "once", "date": "2030-03-01", "time": "07:00"}]),
        json!([{"kind": "daily", "time": "06:30"}]),
        json!([{"kind": "weekly", "days": ["mon", "wed", "fri"], "time": "07:15:30"}]),
        json!([{"kind": "rule", "rrule": "FREQ=MONTHLY;BYDAY=-1FR", "dtstart": "2026-01-01T09:00"}]),
    ];
    let mut ids = Vec::new();
    for schedules in kinds {
        let r = h
            .req("POST", "/api/v1/alarms")
            .bearer(&ana.access)
            .json(alarm("wake", "America/Sao_Paulo", schedules.clone()))
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.header("etag"), Some("\"1\""));
        let id = r.body["id"].as_str().expect("id").to_owned();
        assert_eq!(
            r.header("location"),
            Some(format!("/api/v1/alarms/{id}").as_str())
        );
        assert_eq!(r.body["schedules"][0]["kind"], schedules[0]["kind"]);
        assert!(
            r.body["next_fire_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{}",
            r.body
        );
        assert_eq!(r.body["snooze"], json!({"minutes": 5, "max_snoozes": 3}));
        assert_eq!(r.body["channels"], json!(["in-app"]));
        assert_eq!(r.body["enabled"], true);
        ids.push(id);
    }

    // A preview across New York's spring-forward (2027-03-14): 02:30 does
    // not exist that day and rings at 03:30 EDT.
    let ny = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana.access)
        .json(alarm(
            "night",
            "America/New_York",
            json!([{"kind": "daily", "time": "02:30"}]),
        ))
        .send()
        .await;
    assert_eq!(ny.status, 201, "{}", ny.body);
    let ny_id = ny.body["id"].as_str().expect("id").to_owned();
    let p = h
        .req(
            "GET",
            &format!("/api/v1/alarms/{ny_id}/occurrences?from=2027-03-13T00:00:00Z&limit=3"),
        )
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let items = p.body["items"].as_array().expect("items");
    let fire: Vec<&str> = items
        .iter()
        .map(|i| i["fire_at"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        fire,
        [
            "2027-03-13T07:30:00Z",
            "2027-03-14T07:30:00Z",
            "2027-03-15T06:30:00Z"
        ]
    );
    assert_eq!(items[1]["local_date"], "2027-03-14");
    assert_eq!(items[1]["local_time"], "02:30");
    assert_eq!(items[1]["adjustment"]["dst_gap_shift_seconds"], 3600);
    assert_eq!(items[0]["adjustment"], Value::Null);
    assert_eq!(items[0]["schedule_indexes"], json!([0]));
    assert_eq!(items[0]["suppressed"], false);
    assert_eq!(p.body["complete"], true);

    // ETags: missing → 428, stale → 412, current → 200 with the next one.
    let id = &ids[1];
    let path = format!("/api/v1/alarms/{id}");
    let body = alarm(
        "wake later",
        "America/Sao_Paulo",
        json!([{"kind": "daily", "time": "07:00"}]),
    );
    h.req("PUT", &path)
        .bearer(&ana.access)
        .json(body.clone())
        .send()
        .await
        .problem(428, "precondition-required");
    h.req("PUT", &path)
        .bearer(&ana.access)
        .header("if-match", "\"7\"")
        .json(body.clone())
        .send()
        .await
        .problem(412, "precondition-failed");
    h.req("PUT", &path)
        .bearer(&ana.access)
        .header("if-match", "W/\"1\"")
        .json(body.clone())
        .send()
        .await
        .problem(412, "precondition-failed");
    let put = h
        .req("PUT", &path)
        .bearer(&ana.access)
        .header("if-match", "\"9\", \"1\"")
        .json(body.clone())
        .send()
        .await;
    assert_eq!(
        (put.status, put.header("etag")),
        (200, Some("\"2\"")),
        "{}",
        put.body
    );
    assert_eq!(put.body["name"], "wake later");
    assert_eq!(put.body["schedules"][0]["time"], "07:00");
    h.req("PUT", &path)
        .bearer(&ana.access)
        .header("if-match", "\"1\"")
        .json(body.clone())
        .send()
        .await
        .problem(412, "precondition-failed");
    let off = h
        .req("POST", &format!("{path}/disable"))
        .bearer(&ana.access)
        .header("if-match", "*")
        .send()
        .await;
    assert_eq!(
        (off.status, off.header("etag")),
        (200, Some("\"3\"")),
        "{}",
        off.body
    );
    assert_eq!(
        (
            off.body["enabled"].clone(),
            off.body["next_fire_at"].clone()
        ),
        (json!(false), Value::Null)
    );
    h.req("POST", &format!("{path}/enable"))
        .bearer(&ana.access)
        .send()
        .await
        .problem(428, "precondition-required");
    let on = h
        .req("POST", &format!("{path}/enable"))
        .bearer(&ana.access)
        .header("if-match", "\"3\"")
        .send()
        .await;
    assert_eq!((on.status, on.body["enabled"].clone()), (200, json!(true)));

    // History, oldest first, paginated.
    let ev = h
        .req("GET", &format!("{path}/events?limit=2"))
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(ev.status, 200, "{}", ev.body);
    let kinds: Vec<&str> = ev.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["created", "updated"]);
    let cursor = ev.body["next_cursor"].as_str().expect("a next page");
    let ev2 = h
        .req("GET", &format!("{path}/events?limit=2&cursor={cursor}"))
        .bearer(&ana.access)
        .send()
        .await;
    let kinds: Vec<&str> = ev2.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["disabled", "enabled"]);

    // Listing: pages and the enabled filter.
    let page = h
        .req("GET", "/api/v1/alarms?limit=3")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(3));
    for item in page.body["items"].as_array().expect("items") {
        let one = h
            .req(
                "GET",
                &format!("/api/v1/alarms/{}", item["id"].as_str().unwrap_or("")),
            )
            .bearer(&ana.access)
            .send()
            .await;
        assert!(item["next_fire_at"].is_string(), "{item}");
        assert_eq!(
            item["next_fire_at"], one.body["next_fire_at"],
            "a listed alarm's next fire is the one GET shows"
        );
    }
    let cursor = page.body["next_cursor"].as_str().expect("more");
    let rest = h
        .req("GET", &format!("/api/v1/alarms?limit=3&cursor={cursor}"))
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(rest.body["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(rest.body["next_cursor"], Value::Null);
    h.req("POST", &format!("/api/v1/alarms/{}/disable", ids[0]))
        .bearer(&ana.access)
        .header("if-match", "*")
        .send()
        .await;
    let disabled = h
        .req("GET", "/api/v1/alarms?enabled=false")
        .bearer(&ana.access)
        .send()
        .await;
    let only: Vec<&str> = disabled.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(only, [ids[0].as_str()]);
    assert_eq!(disabled.body["items"][0]["next_fire_at"], Value::Null);

    // Idempotent creation.
    let body = alarm(
        "once only",
        "UTC",
        json!([{"kind": "daily", "time": "05:00"}]),
    );
    let first = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana.access)
        .header("idempotency-key", "create-1")
        .json(body.clone())
        .send()
        .await;
    assert_eq!(first.status, 201);
    // Same body, other key order: the same answer, no second alarm.
    let reordered = json!({"schedules": [{"time": "05:00", "kind": "daily"}], "time_zone": "UTC", "name": "once only"});
    let second = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana.access)
        .header("idempotency-key", "create-1")
        .json(reordered)
        .send()
        .await;
    assert_eq!(
        (second.status, second.body["id"].clone()),
        (201, first.body["id"].clone())
    );
    assert_eq!(second.header("etag"), first.header("etag"));
    assert_eq!(second.header("location"), first.header("location"));
    let other = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana.access)
        .header("idempotency-key", "create-1")
        .json(alarm(
            "different",
            "UTC",
            json!([{"kind": "daily", "time": "05:00"}]),
        ))
        .send()
        .await;
    other.problem(422, "validation");
    assert_eq!(other.field(), "Idempotency-Key");
    let all = h
        .req("GET", "/api/v1/alarms?limit=100")
        .bearer(&ana.access)
        .send()
        .await;
    let named: usize = all.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["name"] == "once only")
        .count();
    assert_eq!(named, 1, "the repeated request created nothing");
    // The same key from another user is another request.
    let bob = h.account("bob@example.com").await;
    let bobs = h
        .req("POST", "/api/v1/alarms")
        .bearer(&bob.access)
        .header("idempotency-key", "create-1")
        .json(body)
        .send()
        .await;
    assert_eq!(bobs.status, 201);
    assert_ne!(bobs.body["id"], first.body["id"]);

    // Delete needs If-Match too; afterwards the alarm is gone.
    h.req("DELETE", &path)
        .bearer(&ana.access)
        .send()
        .await
        .problem(428, "precondition-required");
    let del = h
        .req("DELETE", &path)
        .bearer(&ana.access)
        .header("if-match", "\"4\"")
        .send()
        .await;
    assert_eq!(del.status, 204, "{}", del.body);
    h.req("GET", &path)
        .bearer(&ana.access)
        .send()
        .await
        .problem(404, "not-found");

    // Refresh rotation and reuse detection.
    let r1 = ana.refresh.clone();
    let rotated = h
        .req("POST", "/api/v1/auth/refresh")
        .json(json!({"refresh_token": r1}))
        .send()
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(rotated.body["token_type"], "Bearer");
    assert_eq!(rotated.body["expires_in"], 900);
    let r2 = rotated.body["refresh_token"]
        .as_str()
        .expect("r2")
        .to_owned();
    assert_ne!(r1, r2);
    let a2 = rotated.body["access_token"]
        .as_str()
        .expect("a2")
        .to_owned();
    assert_eq!(
        h.req("GET", "/api/v1/auth/me")
            .bearer(&a2)
            .send()
            .await
            .status,
        200
    );
    // Presenting the spent r1 again revokes the session: r2 and a2 die too.
    h.req("POST", "/api/v1/auth/refresh")
        .json(json!({"refresh_token": r1}))
        .send()
        .await
        .problem(401, "unauthorized");
    h.req("POST", "/api/v1/auth/refresh")
        .json(json!({"refresh_token": r2}))
        .send()
        .await
        .problem(401, "unauthorized");
    h.req("GET", "/api/v1/auth/me")
        .bearer(&a2)
        .send()
        .await
        .problem(401, "unauthorized");

    // Logout ends the session: its access token is refused from then on.
    let s = h
        .login("ana@example.com", "correct horse battery staple")
        .await;
    assert_eq!(
        h.req("GET", "/api/v1/alarms")
            .bearer(&s.access)
            .send()
            .await
            .status,
        200
    );
    let out = h
        .req("POST", "/api/v1/auth/logout")
        .bearer(&s.access)
        .send()
        .await;
    assert_eq!(out.status, 204);
    h.req("GET", "/api/v1/alarms")
        .bearer(&s.access)
        .send()
        .await
        .problem(401, "unauthorized");
    h.req("POST", "/api/v1/auth/refresh")
        .json(json!({"refresh_token": s.refresh}))
        .send()
        .await
        .problem(401, "unauthorized");
    // Other sessions are untouched.
    assert_eq!(
        h.req("GET", "/api/v1/auth/me")
            .bearer(&bob.access)
            .send()
            .await
            .status,
        200
    );
}

crate::trials! {
    api: [flow],
}
