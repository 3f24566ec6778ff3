//! Tampered, expired, misdirected and revoked access tokens are all 401.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};

use crate::support::{AUDIENCE, Harness, SECRET, tokens as signer};

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

async fn tampered_tokens(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let ok = h
        .req("GET", "/api/v1/auth/me")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(ok.status, 200);
    let claims = claims_of(&ana.access);
    let user: alarm_domain::ids::UserId = claims["sub"].as_str().expect("sub").parse().expect("id");
    let sid: uuid::Uuid = claims["sid"].as_str().expect("sid").parse().expect("sid");
    let role = alarm_domain::model::Role::User;
    let now = Timestamp::now();

    let mut refused: Vec<(&str, String)> = Vec::new();
    // alg: none, with the real claims and no signature.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = ana.access.split('.').nth(1).expect("payload");
    refused.push(("alg none", format!("{header}.{body}.")));
    // HS512 header on an HS256 signature.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
    let sig = ana.access.split('.').nth(2).expect("sig");
    refused.push(("alg swapped", format!("{header}.{body}.{sig}")));
    // A payload edited to another role, signature kept.
    let mut edited = claims.clone();
    edited["role"] = "admin".into();
    let edited = URL_SAFE_NO_PAD.encode(edited.to_string());
    let head = ana.access.split('.').next().expect("header");
    refused.push(("payload edited", format!("{head}.{edited}.{sig}")));
    // Signed with another key.
    let other = signer("a-completely-different-signing-key-of-48-bytes!!", AUDIENCE);
    refused.push((
        "wrong key",
        other.issue(user, role, sid, now).expect("sign"),
    ));
    // Expired an hour ago (15-minute tokens issued 75 minutes ago).
    let real = signer(SECRET, AUDIENCE);
    refused.push((
        "expired",
        real.issue(user, role, sid, now - SignedDuration::from_mins(75))
            .expect("sign"),
    ));
    // Not yet valid.
    refused.push((
        "from the future",
        real.issue(user, role, sid, now + SignedDuration::from_mins(10))
            .expect("sign"),
    ));
    // Wrong audience.
    let elsewhere = signer(SECRET, "another-service");
    refused.push((
        "wrong audience",
        elsewhere.issue(user, role, sid, now).expect("sign"),
    ));
    // Right key, unknown session.
    refused.push((
        "unknown session",
        real.issue(user, role, uuid::Uuid::now_v7(), now)
            .expect("sign"),
    ));
    // Garbage.
    refused.push(("garbage", "not.a.token".to_owned()));
    refused.push(("empty", String::new()));
    // A well-signed token for the right session but another user.
    let bob = h.account("bob@example.com").await;
    let bob_sid: uuid::Uuid = claims_of(&bob.access)["sid"]
        .as_str()
        .expect("sid")
        .parse()
        .expect("sid");
    refused.push((
        "session of another user",
        real.issue(user, role, bob_sid, now).expect("sign"),
    ));

    for (what, token) in &refused {
        let r = h.req("GET", "/api/v1/auth/me").bearer(token).send().await;
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        r.problem(401, "unauthorized");
    }
    // A token minted now for the real session works: the refusals above
    // were about the token, not the account.
    let fresh = real.issue(user, role, sid, now).expect("sign");
    assert_eq!(
        h.req("GET", "/api/v1/auth/me")
            .bearer(&fresh)
            .send()
            .await
            .status,
        200
    );
    // Revoked by logout.
    let out = h
        .req("POST", "/api/v1/auth/logout")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(out.status, 204);
    for token in [&ana.access, &fresh] {
        h.req("GET", "/api/v1/auth/me")
            .bearer(token)
            .send()
            .await
            .problem(401, "unauthorized");
    }
    // Basic auth is not a bearer token.
    let r = h
        .req("GET", "/api/v1/auth/me")
        .header("authorization", "Basic YTpi")
        .send()
        .await;
    r.problem(401, "unauthorized");
}

/// Password guessing is throttled: the 11th attempt on one account from one
/// address within the window is 429 with `Retry-After`, even with the right
/// password; other accounts are unaffected.
async fn login_throttle(h: &Harness) {
    h.account("ana@example.com").await;
    h.account("bob@example.com").await;
    let login = |email: &str, password: &str| {
        h.req("POST", "/api/v1/auth/login")
            .json(serde_json::json!({"email": email, "password": password}))
    };
    for _ in 0..alarm_api::limiter::RateLimits::default()
        .login_per_pair
        .limit
    {
        login("ana@example.com", "wrong guess 123")
            .send()
            .await
            .problem(401, "unauthorized");
    }
    let r = login("ANA@example.com", "correct horse battery staple")
        .send()
        .await;
    r.problem(429, "rate-limited");
    let wait: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=900).contains(&wait), "{wait}");
    assert_eq!(
        login("bob@example.com", "correct horse battery staple")
            .send()
            .await
            .status,
        200
    );
}

crate::trials! {
    api: [tampered_tokens, login_throttle],
}
