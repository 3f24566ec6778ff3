//! The authentication service over HTTP on both databases: every login, failure, refresh-token reuse, logout, logout everywhere and password change is audited (the e-mail only for an existing account, never a password), and sessions end as promised.

use alarm_domain::model::AuditRecord;
use alarm_domain::ports::PageRequest;

use crate::support::Harness;

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// Every audit record, oldest first.
async fn audit(h: &Harness) -> Vec<AuditRecord> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .ports()
            .audit
            .list(None, PageRequest::new(after, 100).expect("limit"))
            .await
            .expect("audit");
        all.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

fn actions(records: &[AuditRecord]) -> Vec<&str> {
    records.iter().map(|r| r.action.as_str()).collect()
}

async fn sessions_are_audited_and_end_as_promised(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let user: alarm_domain::ids::UserId = h
        .req("GET", "/api/v1/auth/me")
        .bearer(&ana.access)
        .send()
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("user id");

    // Failures: the existing account's is named, the unknown one's is not,
    // and no password appears anywhere.
    for (email, password) in [
        ("ana@example.com", "a wrong password!"),
        ("nobody@example.com", "another wrong one"),
    ] {
        let r = h
            .req("POST", "/api/v1/auth/login")
            .json(serde_json::json!({"email": email, "password": password}))
            .send()
            .await;
        r.problem(401, "unauthorized");
    }
    let records = audit(h).await;
    let failed: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.action == "session.login_failed")
        .collect();
    assert_eq!(failed.len(), 2, "{:?}", actions(&records));
    assert_eq!(failed[0].actor, Some(user));
    assert_eq!(failed[0].after.as_deref(), Some("email=ana@example.com"));
    assert_eq!((failed[1].actor, failed[1].after.as_deref()), (None, None));
    let text = format!("{records:?}");
    assert!(
        !text.contains("wrong") && !text.contains(PASSWORD) && !text.contains("nobody"),
        "no password and no unknown address in the audit log: {text}"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.action == "session.login")
            .count(),
        1,
        "the account's login"
    );

    // Refresh-token reuse: the session dies and the reuse is audited.
    let r = h
        .req("POST", "/api/v1/auth/refresh")
        .json(serde_json::json!({"refresh_token": ana.refresh}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rotated = r.body["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    h.req("POST", "/api/v1/auth/refresh")
        .json(serde_json::json!({"refresh_token": ana.refresh}))
        .send()
        .await
        .problem(401, "unauthorized");
    h.req("POST", "/api/v1/auth/refresh")
        .json(serde_json::json!({"refresh_token": rotated}))
        .send()
        .await
        .problem(401, "unauthorized");
    let reused: Vec<AuditRecord> = audit(h)
        .await
        .into_iter()
        .filter(|r| r.action == "session.refresh_reused")
        .collect();
    assert_eq!(reused.len(), 1, "one reuse, audited once");
    assert_eq!(reused[0].actor, Some(user));

    // Password change: the other sessions end, this one stays; the old
    // password stops working, the new one works.
    let here = h.login("ana@example.com", PASSWORD).await;
    let there = h.login("ana@example.com", PASSWORD).await;
    h.req("POST", "/api/v1/auth/password")
        .bearer(&here.access)
        .json(
            serde_json::json!({"current_password": "not it at all", "new_password": NEW_PASSWORD}),
        )
        .send()
        .await
        .problem(403, "forbidden");
    let r = h
        .req("POST", "/api/v1/auth/password")
        .bearer(&here.access)
        .json(serde_json::json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let me = |token: String| {
        let req = h.req("GET", "/api/v1/auth/me").bearer(&token);
        async move { req.send().await.status }
    };
    assert_eq!(
        me(here.access.clone()).await,
        200,
        "the changing session stays"
    );
    assert_eq!(
        me(there.access.clone()).await,
        401,
        "every other session ends"
    );
    h.req("POST", "/api/v1/auth/refresh")
        .json(serde_json::json!({"refresh_token": there.refresh}))
        .send()
        .await
        .problem(401, "unauthorized");
    h.req("POST", "/api/v1/auth/login")
        .json(serde_json::json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .problem(401, "unauthorized");
    let fresh = h.login("ana@example.com", NEW_PASSWORD).await;

    // Logout everywhere ends this session and the one that asked.
    let r = h
        .req("POST", "/api/v1/auth/logout-all")
        .bearer(&fresh.access)
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(me(fresh.access.clone()).await, 401);
    assert_eq!(me(here.access.clone()).await, 401);

    // A plain logout, audited too.
    let last = h.login("ana@example.com", NEW_PASSWORD).await;
    let r = h
        .req("POST", "/api/v1/auth/logout")
        .bearer(&last.access)
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(me(last.access.clone()).await, 401);

    let records = audit(h).await;
    let seen = actions(&records);
    for action in [
        "session.password_change_failed",
        "user.password_change",
        "session.logout_everywhere",
        "session.logout",
    ] {
        assert_eq!(
            seen.iter().filter(|a| **a == action).count(),
            1,
            "{action} once in {seen:?}"
        );
    }
    let everywhere = records
        .iter()
        .find(|r| r.action == "session.logout_everywhere")
        .expect("logout everywhere");
    assert_eq!(
        everywhere.after.as_deref(),
        Some("sessions=2"),
        "fresh and here"
    );
    let text = format!("{records:?}");
    assert!(
        !text.contains(NEW_PASSWORD) && !text.contains("not it at all"),
        "no password in the audit log"
    );
}

crate::trials! {
    api: [sessions_are_audited_and_end_as_promised],
}
