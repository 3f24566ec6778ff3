//! Every class of bad input gets its 4xx problem with the right `type` and field; nothing is stored.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::Harness;

fn base() -> Value {
    json!({"name": "wake", "time_zone": "UTC", "schedules": [{"kind": "daily", "time": "07:00"}]})
}

fn with(path: &[&str], value: Value) -> Value {
    let mut b = base();
    let mut at = &mut b;
    for (i, key) in path.iter().enumerate() {
        if i + 1 == path.len() {
            at[*key] = value.clone();
        } else {
            at = &mut at[*key];
        }
    }
    b
}

/// Sends a chunked body over a raw socket (no Content-Length) and returns
/// the status line and body.
async fn chunked(h: &Harness, token: &str, size: usize) -> (u16, String) {
    let addr = h.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/alarms HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        let n = chunk.len().min(size - sent);
        if s.write_all(format!("{n:x}\r\n").as_bytes()).await.is_err()
            || s.write_all(&chunk[..n]).await.is_err()
            || s.write_all(b"\r\n").await.is_err()
        {
            break; // the server answered early and closed its side
        }
        sent += n;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn bad_input(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let t = ana.access.as_str();
    let post = |body: Value| h.req("POST", "/api/v1/alarms").bearer(t).json(body);

    // Syntax.
    h.req("POST", "/api/v1/alarms")
        .bearer(t)
        .raw("application/json", "{\"name\": ")
        .send()
        .await
        .problem(400, "malformed-json");
    h.req("POST", "/api/v1/alarms")
        .bearer(t)
        .raw("application/json", "")
        .send()
        .await
        .problem(400, "malformed-json");
    // Media type.
    h.req("POST", "/api/v1/alarms")
        .bearer(t)
        .raw("text/plain", base().to_string())
        .send()
        .await
        .problem(415, "unsupported-media-type");
    // Shape and values, each naming its field.
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(&["surprise"], json!(1)),
            "surprise",
            "unknown field `surprise`",
        ),
        (with(&["name"], json!(5)), "name", "invalid type"),
        (
            json!({"name": "x", "time_zone": "UTC"}),
            "body",
            "missing field `schedules`",
        ),
        (with(&["name"], json!("")), "name", ""),
        (
            with(&["time_zone"], json!("Mars/Olympus_Mons")),
            "time_zone",
            "IANA",
        ),
        (
            with(&["schedules"], json!([{"kind": "daily", "time": "25:00"}])),
            "schedules[0].time",
            "",
        ),
        (
            with(
                &["schedules"],
                json!([{"kind": "daily", "time": "07:00", "days": ["mon"]}]),
            ),
            "schedules[0].days",
            "unknown field `days`",
        ),
        (
            with(&["schedules"], json!([{"kind": "hourly", "time": "07:00"}])),
            "schedules[0]",
            "unknown variant `hourly`",
        ),
        (
            with(
                &["schedules"],
                json!([{"kind": "weekly", "days": ["funday"], "time": "07:00"}]),
            ),
            "schedules[0].days",
            "",
        ),
        (
            with(
                &["schedules"],
                json!([{"kind": "rule", "rrule": "FREQ=SOMETIMES", "dtstart": "2026-01-01T07:00"}]),
            ),
            "schedules[0].rrule",
            "FREQ",
        ),
        (
            with(
                &["schedules"],
                json!([{"kind": "once", "date": "2001-01-01", "time": "07:00"}]),
            ),
            "schedules[0]",
            "",
        ),
        (
            with(
                &["schedules"],
                json!([{"kind": "once", "date": "2030-02-30", "time": "07:00"}]),
            ),
            "schedules[0].date",
            "",
        ),
        (with(&["schedules"], json!([])), "schedules", ""),
        (
            with(
                &["schedules"],
                Value::Array(vec![json!({"kind": "daily", "time": "07:00"}); 17]),
            ),
            "schedules",
            "",
        ),
        (
            with(&["snooze"], json!({"minutes": 0})),
            "snooze.minutes",
            "",
        ),
        (
            with(&["snooze"], json!({"minutes": -1})),
            "snooze.minutes",
            "invalid value",
        ),
        (
            with(&["escalation"], json!({"max_level": 9})),
            "escalation.max_level",
            "",
        ),
        (with(&["channels"], json!(["pigeon"])), "channels[0]", ""),
        // Known but not delivered yet: refused, never stored and dropped.
        (
            with(&["channels"], json!(["in-app", "push"])),
            "channels",
            "`push` is not delivered yet",
        ),
        (with(&["enabled"], json!("yes")), "enabled", "invalid type"),
    ];
    for (body, field, reason) in cases {
        let r = post(body.clone()).send().await;
        r.problem(422, "validation");
        assert!(
            r.field().starts_with(field),
            "{body}: field {:?}, want {field}",
            r.field()
        );
        let got = r.body["errors"][0]["reason"].as_str().unwrap_or("");
        assert!(
            got.contains(reason),
            "{body}: reason {got:?}, want {reason:?}"
        );
    }
    // Size: 1 MiB + 1 with a Content-Length, and chunked without one.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024));
    h.req("POST", "/api/v1/alarms")
        .bearer(t)
        .raw("application/json", big)
        .send()
        .await
        .problem(413, "payload-too-large");
    let (status, text) = chunked(h, t, 1024 * 1024 + 64 * 1024).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("payload-too-large"), "{text}");
    // A chunked body under the limit is fine.
    let (status, _) = chunked(h, t, 10).await;
    assert_eq!(status, 400, "whitespace only is malformed JSON, not a 411");
    // Parameters.
    let a = post(base()).send().await;
    let id = a.body["id"].as_str().expect("id").to_owned();
    for (path, field) in [
        ("/api/v1/alarms?limit=0", "limit"),
        ("/api/v1/alarms?limit=101", "limit"),
        ("/api/v1/alarms?limit=abc", "limit"),
        ("/api/v1/alarms?enabled=maybe", "enabled"),
        ("/api/v1/alarms?cursor=zzz", "cursor"),
        (
            &format!("/api/v1/alarms/{id}/occurrences?limit=501") as &str,
            "limit",
        ),
        (&format!("/api/v1/alarms/{id}/occurrences?limit=0"), "limit"),
        (
            &format!("/api/v1/alarms/{id}/occurrences?limit=ten"),
            "limit",
        ),
        (
            &format!("/api/v1/alarms/{id}/occurrences?include_suppressed=maybe"),
            "include_suppressed",
        ),
        (&format!("/api/v1/alarms/{id}/events?limit=-1"), "limit"),
        (
            &format!("/api/v1/alarms/{id}/occurrences?from=yesterday"),
            "from",
        ),
        (
            &format!("/api/v1/alarms/{id}/occurrences?from=1899-12-31T23:59:59Z"),
            "from",
        ),
        (
            &format!("/api/v1/alarms/{id}/occurrences?from=2200-01-01T00:00:00Z"),
            "from",
        ),
    ] {
        let r = h.req("GET", path).bearer(t).send().await;
        r.problem(400, "validation");
        assert_eq!(r.field(), field, "{path}");
    }
    // The whole accepted range of `from` works.
    for from in [
        "1900-01-01T00:00:00Z",
        "2199-12-31T00:00:00Z",
        "2026-03-08T12:00:00.5%2B05:30",
    ] {
        let r = h
            .req(
                "GET",
                &format!("/api/v1/alarms/{id}/occurrences?from={from}&limit=500"),
            )
            .bearer(t)
            .send()
            .await;
        assert_eq!(r.status, 200, "{from}: {}", r.body);
    }
    h.req("POST", "/api/v1/alarms")
        .bearer(t)
        .header("idempotency-key", &"k".repeat(256))
        .json(base())
        .send()
        .await
        .problem(400, "validation");
    // Accounts.
    let reg = |body: Value| h.req("POST", "/api/v1/auth/register").json(body);
    let r = reg(json!({"email": "x@example.com", "password": "short", "display_name": "X"}))
        .send()
        .await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "password");
    let r = reg(
        json!({"email": "not-an-email", "password": "long enough password", "display_name": "X"}),
    )
    .send()
    .await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "email");
    let r = reg(json!({"email": "y@example.com", "password": "long enough password", "display_name": "Y", "time_zone": "Nowhere/Land"})).send().await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "time_zone");
    let r = reg(json!({"email": "z@example.com", "password": "long enough password", "display_name": "Z", "country": "ZZ"})).send().await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "country");
    let r =
        reg(json!({"email": "w@example.com", "password": "x".repeat(257), "display_name": "W"}))
            .send()
            .await;
    assert_eq!(r.field(), "password");
    // Routes and methods.
    h.req("GET", "/api/v1/nothing-here")
        .bearer(t)
        .send()
        .await
        .problem(404, "not-found");
    h.req("PATCH", &format!("/api/v1/alarms/{id}"))
        .bearer(t)
        .send()
        .await
        .problem(405, "method-not-allowed");
    // Nothing of the above was stored.
    let list = h.req("GET", "/api/v1/alarms").bearer(t).send().await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
}

crate::trials! {
    api: [bad_input],
}
