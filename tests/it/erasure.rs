//! Account deletion over HTTP on both databases: an account that rang, subscribed, scheduled and kept sessions is erased in one step, every table is then searched from the catalogue for anything that named it, and the neighbour's data is untouched.

use std::time::Duration;

use alarm_domain::ids::UserId;
use alarm_domain::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::ringing::wait_ringing;
use crate::support::{Harness, Session};

const PASSWORD: &str = "correct horse battery staple";
/// Text only the erased account wrote, searched for in every text column.
const MARK: &str = "Zebra-Lantern";

fn once(at: Timestamp) -> Value {
    let local = at.to_zoned(alarm_domain::jiff::tz::TimeZone::UTC);
    json!([{
        "kind": "once",
        "date": local.date().to_string(),
        "time": local.time().strftime("%H:%M:%S").to_string(),
    }])
}

async fn created(h: &Harness, who: &Session, path: &str, body: Value) -> String {
    static KEYS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let key = KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let r = h
        .req("POST", path)
        .bearer(&who.access)
        .header("Idempotency-Key", &format!("key-{key}"))
        .json(body)
        .send()
        .await;
    assert_eq!(r.status, 201, "{path}: {}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

fn uuid(text: &str) -> uuid::Uuid {
    text.parse().expect("a uuid")
}

async fn deleting_an_account_erases_what_it_owns(h: &Harness) {
    let ana = h.account("ana.erased@example.com").await;
    let _second = h.login("ana.erased@example.com", PASSWORD).await;
    let bob = h.account("bob@example.com").await;
    let me = h
        .req("GET", "/api/v1/auth/me")
        .bearer(&ana.access)
        .send()
        .await;
    let ana_id = uuid(me.body["id"].as_str().expect("id"));

    // Everything an account can own, with a ring so that triggers, ringing,
    // events, deliveries and webhook outbox rows exist too.
    let db_now = h.ports().queue.store_time().await.expect("db time");
    let due = Timestamp::from_second((db_now + SignedDuration::from_secs(3)).as_second() + 1)
        .expect("due");
    let routine = created(
        h,
        &ana,
        "/api/v1/routines",
        json!({"name": format!("{MARK} routine"), "actions": ["Lights on"]}),
    )
    .await;
    let webhook = created(
        h,
        &ana,
        "/api/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/hooks/ana", "events": ["alarm.triggered", "alarm.created"]}),
    )
    .await;
    let rings = created(
        h,
        &ana,
        "/api/v1/alarms",
        json!({"name": format!("{MARK} tea"), "time_zone": "UTC", "schedules": once(due)}),
    )
    .await;
    let later = created(
        h,
        &ana,
        "/api/v1/alarms",
        json!({"name": "Later", "description": MARK, "time_zone": "UTC",
               "schedules": once(due + SignedDuration::from_hours(48))}),
    )
    .await;
    let r = h
        .req("PUT", &format!("/api/v1/alarms/{later}/routines"))
        .bearer(&ana.access)
        .json(json!({"routine_ids": [routine]}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let period = created(
        h,
        &ana,
        "/api/v1/exception-periods",
        json!({"name": MARK, "type": "vacation", "start": "2031-01-05", "end": "2031-01-09"}),
    )
    .await;
    let r = h
        .req("PUT", "/api/v1/holiday-preferences")
        .bearer(&ana.access)
        .json(json!({"default": {"action": "delay", "minutes": 90}}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let key = created(
        h,
        &ana,
        "/api/v1/api-keys",
        json!({"name": MARK, "scopes": ["webhooks:read"]}),
    )
    .await;
    let bobs_alarm = created(
        h,
        &bob,
        "/api/v1/alarms",
        json!({"name": "Bob's", "time_zone": "UTC", "schedules": once(due + SignedDuration::from_hours(24))}),
    )
    .await;
    let wait =
        Duration::try_from(due.duration_since(db_now)).expect("ahead") + Duration::from_secs(15);
    wait_ringing(h, &ana.access, tokio::time::Instant::now() + wait).await;

    // A pending password reset (no mail here: written as the service does).
    let ana_user = UserId::from_uuid(ana_id).expect("id");
    h.ports()
        .users
        .commit(alarm_domain::ports::ChangeSet::audited(
            alarm_domain::ports::UserOp::IssueToken {
                user: ana_user,
                purpose: alarm_domain::ports::TokenPurpose::PasswordReset,
                token_hash: [9; 32],
                expires_at: db_now + SignedDuration::from_mins(30),
            },
            alarm_testkit::fixtures::audit(
                &h.ports(),
                Some(ana_user),
                "user.password_reset_requested",
                ana_id,
            ),
        ))
        .await
        .expect("a reset token");
    let ids: Vec<uuid::Uuid> = [&rings, &later, &routine, &webhook, &period, &key]
        .into_iter()
        .map(|s| uuid(s))
        .chain([ana_id])
        .collect();
    let texts = ["ana.erased@example.com", MARK];
    let before = h.columns_naming(&ids, &texts).await;
    for column in [
        "users.email",
        "alarms.owner_id",
        "alarm_events.owner_id",
        "triggers.owner_id",
        "ringing.owner_id",
        "outbox.owner_id",
        "webhooks.owner_id",
        "api_keys.owner_id",
        "exception_periods.owner_id",
        "routines.owner_id",
        "alarm_routines.alarm_id",
        "holiday_preferences.owner_id",
        "refresh_families.user_id",
        "account_tokens.user_id",
        "idempotency_keys.owner_id",
        "audit_log.actor_id",
    ] {
        assert!(
            before.iter().any(|c| c == column),
            "the search finds {column} before the erasure: {before:?}"
        );
    }

    // A wrong password erases nothing.
    let r = h
        .req("DELETE", "/api/v1/auth/me")
        .bearer(&ana.access)
        .json(json!({"password": "not the password at all"}))
        .send()
        .await;
    r.problem(403, "forbidden");
    assert_eq!(h.columns_naming(&ids, &texts).await, before);
    // Without the password, a session that logged in 10 minutes ago is
    // refused (only a login in the last 5 minutes stands in for it).
    let stale = stale_session(h, ana_user, db_now).await;
    let r = h
        .req("DELETE", "/api/v1/auth/me")
        .bearer(&stale)
        .json(json!({}))
        .send()
        .await;
    r.problem(403, "forbidden");
    assert_eq!(h.columns_naming(&ids, &texts).await, before);

    let r = h
        .req("DELETE", "/api/v1/auth/me")
        .bearer(&ana.access)
        .json(json!({"password": PASSWORD}))
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        h.columns_naming(&[ana_id], &texts).await,
        Vec::<String>::new(),
        "no table names the erased account or holds its text"
    );
    // The ids of what it owned survive only as the subjects of kept audit
    // records (random ids whose rows are gone: the trail still tells that
    // the pseudonym created, changed and deleted one alarm).
    assert_eq!(
        h.columns_naming(&ids, &[]).await,
        ["audit_log.entity_id"],
        "no row of what it owned is left"
    );

    // Its tokens and credentials are dead at once; the address is free.
    h.assert_shut_out(&ana, "ana.erased@example.com", PASSWORD)
        .await;

    // The audit trail keeps what happened under a pseudonym.
    let audit = h.audit_trail().await;
    let erase = audit
        .iter()
        .find(|r| r.action == "user.erase")
        .expect("the erasure is audited");
    let alias = erase.actor.expect("a pseudonymous actor");
    assert_ne!(alias, UserId::from_uuid(ana_id).expect("id"));
    assert_eq!(erase.entity_id, alias.as_uuid());
    let kept: Vec<_> = audit
        .iter()
        .filter(|r| r.actor == Some(alias))
        .map(|r| r.action.as_str())
        .collect();
    for action in [
        "user.register",
        "session.login",
        "alarm.create",
        "user.erase",
    ] {
        assert!(kept.contains(&action), "{action} is kept: {kept:?}");
    }
    assert!(
        audit
            .iter()
            .filter(|r| r.actor == Some(alias))
            .all(|r| r.before.is_none() && r.after.is_none()),
        "the pseudonymised records lose their summaries"
    );

    // The neighbour is untouched.
    let r = h
        .req("GET", &format!("/api/v1/alarms/{bobs_alarm}"))
        .bearer(&bob.access)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h
        .req("GET", "/api/v1/auth/me")
        .bearer(&bob.access)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let again = h.account("ana.erased@example.com").await;
    let r = h
        .req("GET", "/api/v1/alarms")
        .bearer(&again.access)
        .send()
        .await;
    assert_eq!(r.body["items"], json!([]), "a new account starts empty");
}

/// An access token of a new session of `user` whose password login was 10
/// minutes before `now` (written as the login would have, then signed with
/// the server's key).
async fn stale_session(h: &Harness, user: UserId, now: Timestamp) -> String {
    let family = alarm_domain::ports::RefreshFamily {
        id: uuid::Uuid::now_v7(),
        user,
        expires_at: now + SignedDuration::from_hours(24),
        logged_in_at: now - SignedDuration::from_mins(10),
        revoked: false,
    };
    h.ports()
        .refresh_tokens
        .create(family.clone(), [11; 32])
        .await
        .expect("a session");
    crate::support::tokens(crate::support::SECRET, crate::support::AUDIENCE)
        .issue(user, alarm_domain::model::Role::User, family.id, now)
        .expect("sign")
}

/// Within 5 minutes of logging in, the session itself stands in for the
/// password (`{}`): the account goes, and a wrong password still is 403.
async fn a_recent_login_stands_in_for_the_password(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let r = h
        .req("DELETE", "/api/v1/auth/me")
        .bearer(&ana.access)
        .json(json!({"password": "not the password at all"}))
        .send()
        .await;
    r.problem(403, "forbidden");
    let r = h
        .req("DELETE", "/api/v1/auth/me")
        .bearer(&ana.access)
        .json(json!({}))
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    h.assert_shut_out(&ana, "ana@example.com", PASSWORD).await;
}

/// A stolen access token is no faster a way to guess the password than the
/// login form: the deletion's (and the password change's) wrong passwords
/// count against the same per-account-and-address budget, 10 by default.
async fn step_up_guesses_share_the_login_budget(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let wrong = |path: &'static str, body: Value| {
        h.req(
            if path.ends_with("/me") {
                "DELETE"
            } else {
                "POST"
            },
            path,
        )
        .bearer(&ana.access)
        .json(body)
    };
    for _ in 0..5 {
        wrong(
            "/api/v1/auth/me",
            json!({"password": "not the password at all"}),
        )
        .send()
        .await
        .problem(403, "forbidden");
        wrong(
            "/api/v1/auth/password",
            json!({"current_password": "not the password either", "new_password": "a brand new passphrase"}),
        )
        .send()
        .await
        .problem(403, "forbidden");
    }
    let r = wrong("/api/v1/auth/me", json!({"password": PASSWORD}))
        .send()
        .await;
    r.problem(429, "rate-limited");
    assert!(r.header("retry-after").is_some());
    let me = h
        .req("GET", "/api/v1/auth/me")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(me.status, 200, "nothing was erased: {}", me.body);
}

crate::trials! {
    api: [
        deleting_an_account_erases_what_it_owns,
        a_recent_login_stands_in_for_the_password,
        step_up_guesses_share_the_login_budget,
    ],
}
