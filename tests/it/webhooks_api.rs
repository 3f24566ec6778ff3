//! The webhooks API over a real socket: CRUD with the secret shown only on create and rotate, validation with field paths, owner scoping (404 for everything of another user's), test pings and the delivery list, retries.

use alarm_domain::ports::SendResult;
use serde_json::{Value, json};

use crate::support::{Harness, Resp};

/// The harness allows every target (`AnyTarget`), so a loopback URL that
/// nobody listens on is a fine registration. The harness runs no sender,
/// so a queued delivery stays pending until a test moves it.
const URL: &str = "http://127.0.0.1:9/hooks/alarm?token=abc";

fn hook(url: &str, events: Value) -> Value {
    json!({"url": url, "events": events})
}

async fn create(h: &Harness, token: &str, body: Value) -> Resp {
    h.req("POST", "/api/v1/webhooks")
        .bearer(token)
        .json(body)
        .send()
        .await
}

/// The members every view has, and never the secret.
#[track_caller]
fn assert_view(v: &Value) {
    let obj = v.as_object().expect("an object");
    for member in ["id", "url", "events", "active", "consecutive_failures"] {
        assert!(obj.contains_key(member), "{member} in {v}");
    }
    assert!(!obj.contains_key("secret"), "the secret leaked: {v}");
}

#[track_caller]
fn secret_of(r: &Resp) -> String {
    let secret = r.body["secret"].as_str().expect("secret").to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    secret
}

async fn webhooks_crud(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let t = ana.access.as_str();

    let created = create(
        h,
        t,
        hook(URL, json!(["alarm.escalated", "alarm.triggered"])),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/webhooks/{id}").as_str())
    );
    let first_secret = secret_of(&created);
    // Every event type is emitted, so every one may be subscribed to; an
    // `alarm_ids` filter names the caller's own alarms only.
    let every = json!([
        "alarm.created",
        "alarm.updated",
        "alarm.deleted",
        "alarm.triggered",
        "alarm.snoozed",
        "alarm.dismissed",
        "alarm.escalated",
        "alarm.missed",
        "alarm.expired",
        "routine.started"
    ]);
    let all = create(h, t, hook(URL, every.clone())).await;
    assert_eq!(all.status, 201, "{}", all.body);
    assert_eq!(all.body["events"], every);
    assert_eq!(all.body["alarm_ids"], json!([]));
    let bob = h.account("bob@example.com").await;
    let bobs = h
        .req("POST", "/api/v1/alarms")
        .bearer(&bob.access)
        .json(json!({"name": "Bob's", "time_zone": "UTC", "schedules": [{"kind": "daily", "time": "07:00"}]}))
        .send()
        .await;
    let bobs = bobs.body["id"].as_str().expect("id").to_owned();
    let mine = h
        .req("POST", "/api/v1/alarms")
        .bearer(t)
        .json(json!({"name": "Mine", "time_zone": "UTC", "schedules": [{"kind": "daily", "time": "07:00"}]}))
        .send()
        .await;
    let mine = mine.body["id"].as_str().expect("id").to_owned();
    for (ids, field) in [
        (json!([bobs]), "alarm_ids[0]"),
        (json!([mine, "nope"]), "alarm_ids[1]"),
        (json!([mine, mine]), "alarm_ids[1]"),
        (json!(vec![mine.clone(); 101]), "alarm_ids"),
    ] {
        let mut body = hook(URL, json!(["alarm.triggered"]));
        body["alarm_ids"] = ids.clone();
        let r = create(h, t, body).await;
        assert_eq!(r.problem(422, "validation").field(), field, "{ids}");
    }
    let mut narrowed = hook(URL, json!(["alarm.triggered"]));
    narrowed["alarm_ids"] = json!([mine]);
    let r = create(h, t, narrowed).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["alarm_ids"], json!([mine]));
    for extra in [&all, &r] {
        let gone = h
            .req(
                "DELETE",
                &format!(
                    "/api/v1/webhooks/{}",
                    extra.body["id"].as_str().expect("id")
                ),
            )
            .bearer(t)
            .send()
            .await;
        assert_eq!(gone.status, 204);
    }
    assert_eq!(created.body["url"], URL);
    // Events come back in the fixed order, whatever order they were sent in.
    assert_eq!(
        created.body["events"],
        json!(["alarm.triggered", "alarm.escalated"])
    );
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["consecutive_failures"], 0);
    assert!(created.body.get("created").is_none(), "{}", created.body);

    // Reads never show the secret.
    let got = h
        .req("GET", &format!("/api/v1/webhooks/{id}"))
        .bearer(t)
        .send()
        .await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_view(&got.body);
    assert_eq!(got.body["id"], id.as_str());
    assert_eq!(got.body["events"], created.body["events"]);
    let list = h.req("GET", "/api/v1/webhooks").bearer(t).send().await;
    assert_eq!(list.status, 200, "{}", list.body);
    let items = list.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_view(&items[0]);
    assert!(!list.body.to_string().contains(&first_secret));

    // Rotation shows a new secret, once.
    let rotated = h
        .req("POST", &format!("/api/v1/webhooks/{id}/rotate-secret"))
        .bearer(t)
        .send()
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let second_secret = secret_of(&rotated);
    assert_ne!(first_secret, second_secret);
    assert_eq!(rotated.body["id"], id.as_str());
    assert_eq!(rotated.body["url"], URL);
    // Sealed at rest: no text column of any table holds either secret, or
    // the key material after its `whsec_` prefix (a dump alone reveals
    // none).
    let material = |s: &str| s.trim_start_matches("whsec_").to_owned();
    let (first_key, second_key) = (material(&first_secret), material(&second_secret));
    assert_eq!(
        h.columns_naming(&[], &[&first_key, &second_key]).await,
        Vec::<String>::new()
    );
    let got = h
        .req("GET", &format!("/api/v1/webhooks/{id}"))
        .bearer(t)
        .send()
        .await;
    assert_view(&got.body);

    // PUT replaces the URL and events and switches it off…
    let other = "https://hooks.example.com/alarm";
    let put = h
        .req("PUT", &format!("/api/v1/webhooks/{id}"))
        .bearer(t)
        .json(json!({"url": other, "events": ["alarm.escalated"], "active": false}))
        .send()
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_view(&put.body);
    assert_eq!(
        (
            put.body["url"].clone(),
            put.body["events"].clone(),
            put.body["active"].clone()
        ),
        (json!(other), json!(["alarm.escalated"]), json!(false))
    );
    let got = h
        .req("GET", &format!("/api/v1/webhooks/{id}"))
        .bearer(t)
        .send()
        .await;
    assert_eq!(got.body, put.body);
    // …an inactive endpoint can still be pinged…
    let ping = h
        .req("POST", &format!("/api/v1/webhooks/{id}/test"))
        .bearer(t)
        .send()
        .await;
    assert_eq!(ping.status, 202, "{}", ping.body);
    // …and on again.
    let put = h
        .req("PUT", &format!("/api/v1/webhooks/{id}"))
        .bearer(t)
        .json(
            json!({"url": other, "events": ["alarm.escalated", "alarm.triggered"], "active": true}),
        )
        .send()
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["active"], true);
    assert_eq!(
        put.body["events"],
        json!(["alarm.triggered", "alarm.escalated"])
    );

    // DELETE, then it is gone everywhere.
    let del = h
        .req("DELETE", &format!("/api/v1/webhooks/{id}"))
        .bearer(t)
        .send()
        .await;
    assert_eq!(del.status, 204, "{}", del.body);
    for (method, path) in [
        ("GET", format!("/api/v1/webhooks/{id}")),
        ("DELETE", format!("/api/v1/webhooks/{id}")),
        ("POST", format!("/api/v1/webhooks/{id}/test")),
        ("GET", format!("/api/v1/webhooks/{id}/deliveries")),
    ] {
        h.req(method, &path)
            .bearer(t)
            .send()
            .await
            .problem(404, "not-found");
    }
    let list = h.req("GET", "/api/v1/webhooks").bearer(t).send().await;
    assert_eq!(list.body, json!({"items": []}));

    // Without credentials: 401.
    let r = h.req("GET", "/api/v1/webhooks").send().await;
    r.problem(401, "unauthorized");
    create(h, "not-a-token", hook(URL, json!(["alarm.triggered"])))
        .await
        .problem(401, "unauthorized");
}

async fn webhooks_validation(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let t = ana.access.as_str();
    let ok = json!(["alarm.triggered"]);
    for (body, field) in [
        (hook("/relative/hook", ok.clone()), "url"),
        (hook("ftp://example.com/hook", ok.clone()), "url"),
        (hook("https://user:pw@example.com/hook", ok.clone()), "url"),
        (hook("not a url", ok.clone()), "url"),
        (hook(URL, json!([])), "events"),
        (
            hook(URL, json!(["alarm.triggered", "alarm.exploded"])),
            "events[1]",
        ),
        (
            hook(URL, json!(["alarm.triggered", "alarm.triggered"])),
            "events[1]",
        ),
        (hook(URL, json!("alarm.triggered")), "events"),
        (hook(URL, json!([7])), "events[0]"),
        (
            json!({"url": URL, "events": ok, "secret": "mine"}),
            "secret",
        ),
        (json!({"url": URL, "events": ok, "active": true}), "active"),
    ] {
        let r = create(h, t, body.clone()).await;
        r.problem(422, "validation");
        assert_eq!(r.field(), field, "{body} → {}", r.body);
    }
    h.req("POST", "/api/v1/webhooks")
        .bearer(t)
        .raw("application/json", "{\"url\": ")
        .send()
        .await
        .problem(400, "malformed-json");
    h.req("POST", "/api/v1/webhooks")
        .bearer(t)
        .raw("text/plain", hook(URL, ok.clone()).to_string())
        .send()
        .await
        .problem(415, "unsupported-media-type");
    // Nothing was stored.
    let list = h.req("GET", "/api/v1/webhooks").bearer(t).send().await;
    assert_eq!(list.body, json!({"items": []}));

    // PUT judges its body the same way, and `active` is required.
    let created = create(h, t, hook(URL, ok.clone())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let path = format!(
        "/api/v1/webhooks/{}",
        created.body["id"].as_str().expect("id")
    );
    for (body, field) in [
        (
            json!({"url": "ftp://example.com/", "events": ok, "active": true}),
            "url",
        ),
        (json!({"url": URL, "events": [], "active": true}), "events"),
        (
            json!({"url": URL, "events": ["alarm.triggered", "alarm.nope"], "active": true}),
            "events[1]",
        ),
        (
            json!({"url": URL, "events": ok, "active": true, "extra": 1}),
            "extra",
        ),
        (json!({"url": URL, "events": ok, "active": "yes"}), "active"),
    ] {
        let r = h
            .req("PUT", &path)
            .bearer(t)
            .json(body.clone())
            .send()
            .await;
        r.problem(422, "validation");
        assert_eq!(r.field(), field, "{body} → {}", r.body);
    }
    let r = h
        .req("PUT", &path)
        .bearer(t)
        .json(hook(URL, ok.clone()))
        .send()
        .await;
    r.problem(422, "validation");
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("active")),
        "{}",
        r.body
    );
    // Unchanged after all that.
    let got = h.req("GET", &path).bearer(t).send().await;
    assert_eq!(
        (got.body["url"].clone(), got.body["events"].clone()),
        (json!(URL), ok)
    );
}

async fn webhooks_ownership(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let bob = h.account("bob@example.com").await;
    let created = create(h, &ana.access, hook(URL, json!(["alarm.triggered"]))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let ping = h
        .req("POST", &format!("/api/v1/webhooks/{id}/test"))
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(ping.status, 202, "{}", ping.body);
    let delivery = ping.body["id"].as_str().expect("delivery id").to_owned();
    let before = h
        .req("GET", &format!("/api/v1/webhooks/{id}"))
        .bearer(&ana.access)
        .send()
        .await;

    let valid =
        json!({"url": "https://bob.example.com/", "events": ["alarm.escalated"], "active": false});
    let bodies: [(&str, String); 4] = [
        ("application/json", valid.to_string()),
        ("application/json", "{not json".to_owned()),
        (
            "application/json",
            json!({"url": 5, "bogus": true}).to_string(),
        ),
        ("text/plain", "hello".to_owned()),
    ];
    let unknown = uuid::Uuid::now_v7().to_string();
    for target in [id.as_str(), unknown.as_str(), "not-a-uuid"] {
        let base = format!("/api/v1/webhooks/{target}");
        for (method, path) in [
            ("GET", base.clone()),
            ("DELETE", base.clone()),
            ("POST", format!("{base}/rotate-secret")),
            ("POST", format!("{base}/test")),
            ("GET", format!("{base}/deliveries")),
            ("GET", format!("{base}/deliveries?limit=0&before=nope")),
            ("GET", format!("{base}/deliveries?limit=abc")),
            ("POST", format!("{base}/deliveries/{delivery}/retry")),
            ("POST", format!("{base}/deliveries/{unknown}/retry")),
            ("POST", format!("{base}/deliveries/not-a-uuid/retry")),
        ] {
            h.req(method, &path)
                .bearer(&bob.access)
                .send()
                .await
                .problem(404, "not-found");
        }
        for (ct, body) in &bodies {
            h.req("PUT", &base)
                .bearer(&bob.access)
                .raw(ct, body.clone())
                .send()
                .await
                .problem(404, "not-found");
        }
    }
    // Through his own registration, bob cannot reach ana's delivery either.
    let his = create(h, &bob.access, hook(URL, json!(["alarm.escalated"]))).await;
    assert_eq!(his.status, 201, "{}", his.body);
    let his = his.body["id"].as_str().expect("id").to_owned();
    h.req(
        "POST",
        &format!("/api/v1/webhooks/{his}/deliveries/{delivery}/retry"),
    )
    .bearer(&bob.access)
    .send()
    .await
    .problem(404, "not-found");
    let bobs = h
        .req("GET", &format!("/api/v1/webhooks/{his}/deliveries"))
        .bearer(&bob.access)
        .send()
        .await;
    assert_eq!(bobs.body, json!({"items": []}));
    // Bob's list shows only his.
    let list = h
        .req("GET", "/api/v1/webhooks")
        .bearer(&bob.access)
        .send()
        .await;
    let items = list.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], his.as_str());

    // Ana's registration and deliveries are as she left them.
    let after = h
        .req("GET", &format!("/api/v1/webhooks/{id}"))
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!((after.status, &after.body), (200, &before.body));
    let deliveries = h
        .req("GET", &format!("/api/v1/webhooks/{id}/deliveries"))
        .bearer(&ana.access)
        .send()
        .await;
    let items = deliveries.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "bob's test pings queued nothing: {items:?}");
    assert_eq!(items[0]["id"], delivery.as_str());

    // 401 comes before everything, even a garbage body.
    h.req("PUT", &format!("/api/v1/webhooks/{id}"))
        .raw("application/json", "{")
        .send()
        .await
        .problem(401, "unauthorized");
    // For the owner, the body is judged after the 404 question.
    h.req("PUT", &format!("/api/v1/webhooks/{id}"))
        .bearer(&ana.access)
        .raw("application/json", "{")
        .send()
        .await
        .problem(400, "malformed-json");
}

async fn webhooks_deliveries(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let t = ana.access.as_str();
    let created = create(h, t, hook(URL, json!(["alarm.triggered"]))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let deliveries = format!("/api/v1/webhooks/{id}/deliveries");

    let empty = h.req("GET", &deliveries).bearer(t).send().await;
    assert_eq!(empty.body, json!({"items": []}));

    // A test ping is queued, pending, and listed.
    let ping = h
        .req("POST", &format!("/api/v1/webhooks/{id}/test"))
        .bearer(t)
        .send()
        .await;
    assert_eq!(ping.status, 202, "{}", ping.body);
    let d = &ping.body;
    assert_eq!(d["event"], "webhook.test");
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"], 0);
    for null in [
        "last_response_code",
        "latency_ms",
        "last_error",
        "alarm_id",
        "occurrence_at",
    ] {
        assert_eq!(d[null], Value::Null, "{null} in {d}");
    }
    for instant in ["next_attempt_at", "created_at", "updated_at"] {
        let text = d[instant].as_str().unwrap_or_else(|| panic!("{instant}"));
        assert!(
            text.ends_with('Z') && text.parse::<jiff::Timestamp>().is_ok(),
            "{instant}: {text}"
        );
    }
    let first = d["id"].as_str().expect("id").to_owned();
    let listed = h.req("GET", &deliveries).bearer(t).send().await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["items"], json!([ping.body.clone()]));
    assert_eq!(listed.body["next_before"], Value::Null);

    // A pending delivery cannot be retried; unknown ones are not found.
    let r = h
        .req("POST", &format!("{deliveries}/{first}/retry"))
        .bearer(t)
        .send()
        .await;
    r.problem(409, "conflict");
    // Once given up on (no sender runs here: the store plays one), it
    // can be sent again, from attempt one, under the same id.
    let ports = h.ports();
    let now = jiff::Timestamp::now();
    let claimed = ports
        .outbox
        .claim(now, now + jiff::SignedDuration::from_secs(30), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let dead = SendResult::Dead {
        code: Some(500),
        error: "HTTP 500".to_owned(),
        latency_ms: 12,
    };
    ports
        .outbox
        .finish(now, vec![(claimed[0].clone(), dead)], 5)
        .await
        .expect("finish");
    let listed = h.req("GET", &deliveries).bearer(t).send().await;
    let d = &listed.body["items"][0];
    assert_eq!(
        (
            d["status"].clone(),
            d["attempts"].clone(),
            d["last_response_code"].clone(),
            d["latency_ms"].clone(),
            d["last_error"].clone(),
            d["next_attempt_at"].clone()
        ),
        (
            json!("dead"),
            json!(1),
            json!(500),
            json!(12),
            json!("HTTP 500"),
            Value::Null
        ),
        "{d}"
    );
    let retried = h
        .req("POST", &format!("{deliveries}/{first}/retry"))
        .bearer(t)
        .send()
        .await;
    assert_eq!(retried.status, 202, "{}", retried.body);
    assert_eq!(
        (
            retried.body["id"].as_str(),
            retried.body["status"].as_str(),
            retried.body["attempts"].as_u64()
        ),
        (Some(first.as_str()), Some("pending"), Some(0))
    );
    assert!(retried.body["next_attempt_at"].is_string());
    let listed = h.req("GET", &deliveries).bearer(t).send().await;
    assert_eq!(listed.body["items"], json!([retried.body.clone()]));
    // Pending again, so a second retry is refused.
    h.req("POST", &format!("{deliveries}/{first}/retry"))
        .bearer(t)
        .send()
        .await
        .problem(409, "conflict");
    for other in [uuid::Uuid::now_v7().to_string(), "nope".to_owned()] {
        h.req("POST", &format!("{deliveries}/{other}/retry"))
            .bearer(t)
            .send()
            .await
            .problem(404, "not-found");
    }

    // Newest first, in pages chained by `next_before`.
    let mut ids = vec![first];
    for _ in 0..2 {
        let ping = h
            .req("POST", &format!("/api/v1/webhooks/{id}/test"))
            .bearer(t)
            .send()
            .await;
        assert_eq!(ping.status, 202, "{}", ping.body);
        ids.push(ping.body["id"].as_str().expect("id").to_owned());
    }
    ids.reverse();
    let page = h
        .req("GET", &format!("{deliveries}?limit=2"))
        .bearer(t)
        .send()
        .await;
    let got: Vec<&str> = page.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(page.body["next_before"], ids[1].as_str());
    let page = h
        .req("GET", &format!("{deliveries}?limit=2&before={}", ids[1]))
        .bearer(t)
        .send()
        .await;
    let got: Vec<&str> = page.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(got, [ids[2].as_str()]);
    assert_eq!(page.body["next_before"], Value::Null);

    // Bad parameters are 400 validation problems naming them, as for alarms.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("before=not-an-id", "before"),
    ] {
        let r = h
            .req("GET", &format!("{deliveries}?{query}"))
            .bearer(t)
            .send()
            .await;
        r.problem(400, "validation");
        assert_eq!(r.field(), field, "{query}");
    }
}

crate::trials! {
    api: [webhooks_crud, webhooks_validation, webhooks_ownership, webhooks_deliveries],
}
