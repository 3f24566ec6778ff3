//! Owner scoping: another user's alarm id is 404 on every alarm endpoint, whatever the body and headers; 401 comes before everything.

use serde_json::json;

use crate::support::Harness;

async fn ownership(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let bob = h.account("bob@example.com").await;
    let created = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana.access)
        .json(json!({"name": "ana's", "time_zone": "UTC", "schedules": [{"kind": "daily", "time": "07:00"}]}))
        .send()
        .await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let valid = json!({"name": "mine now", "time_zone": "UTC", "schedules": [{"kind": "daily", "time": "08:00"}]});
    let bodies: [(&str, String); 4] = [
        ("application/json", valid.to_string()),
        ("application/json", "{not json".to_owned()),
        (
            "application/json",
            json!({"name": 5, "bogus": true}).to_string(),
        ),
        ("text/plain", "hello".to_owned()),
    ];
    let unknown = uuid::Uuid::now_v7().to_string();
    for target in [id.as_str(), unknown.as_str(), "not-a-uuid"] {
        let base = format!("/api/v1/alarms/{target}");
        for (method, path) in [
            ("GET", base.clone()),
            ("DELETE", base.clone()),
            ("POST", format!("{base}/enable")),
            ("POST", format!("{base}/disable")),
            ("GET", format!("{base}/occurrences?limit=3")),
            (
                "GET",
                format!("{base}/occurrences?limit=abc&from=never&include_suppressed=maybe"),
            ),
            ("GET", format!("{base}/events")),
            ("GET", format!("{base}/events?limit=x&cursor=y")),
        ] {
            for if_match in [None, Some("\"1\""), Some("*")] {
                let mut r = h.req(method, &path).bearer(&bob.access);
                if let Some(tag) = if_match {
                    r = r.header("if-match", tag);
                }
                r.send().await.problem(404, "not-found");
            }
        }
        for (ct, body) in &bodies {
            for if_match in [None, Some("\"1\"")] {
                let mut r = h
                    .req("PUT", &base)
                    .bearer(&bob.access)
                    .raw(ct, body.clone());
                if let Some(tag) = if_match {
                    r = r.header("if-match", tag);
                }
                r.send().await.problem(404, "not-found");
            }
        }
    }
    // The owner sees it unchanged.
    let mine = h
        .req("GET", &format!("/api/v1/alarms/{id}"))
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(
        (
            mine.status,
            mine.body["name"].clone(),
            mine.body["version"].clone()
        ),
        (200, json!("ana's"), json!(1))
    );
    // Bob's list does not show it.
    let list = h
        .req("GET", "/api/v1/alarms")
        .bearer(&bob.access)
        .send()
        .await;
    assert_eq!(list.body["items"], json!([]));
    // Without credentials, 401 comes first, even for a garbage body.
    h.req("PUT", &format!("/api/v1/alarms/{id}"))
        .raw("application/json", "{")
        .send()
        .await
        .problem(401, "unauthorized");
    let r = h.req("GET", "/api/v1/alarms").send().await;
    r.problem(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    // For the owner, the order is 428 (no If-Match) before the body, then the body.
    h.req("PUT", &format!("/api/v1/alarms/{id}"))
        .bearer(&ana.access)
        .raw("application/json", "{")
        .send()
        .await
        .problem(428, "precondition-required");
    h.req("PUT", &format!("/api/v1/alarms/{id}"))
        .bearer(&ana.access)
        .header("if-match", "\"1\"")
        .raw("application/json", "{")
        .send()
        .await
        .problem(400, "malformed-json");
}

crate::trials! {
    api: [ownership],
}
