//! Address verification over HTTP on both databases with a real SMTP server (aiosmtpd): the link read from the message sent at registration, single use, newest only, expired links, the resend limit, the `ADMIN_EMAILS` role granted only on verification, audit records, and no token text stored.

use alarm_domain::jiff::SignedDuration;
use alarm_domain::ports::{ChangeSet, TokenPurpose, UserOp};
use serde_json::json;
use sha2::Digest as _;

use crate::delivery::Smtp;
use crate::resets::{link_token, mail_arrives, wait_for_links};
use crate::support::{ADMIN, Harness};

/// The page verification e-mails link to in these tests.
pub(crate) const VERIFY_PAGE: &str = "https://app.example.com/verify";
const PASSWORD: &str = "correct horse battery staple";

/// The token of the one verification link mailed to `email`, waiting up to
/// 20 s for it (the API sends after answering).
pub(crate) async fn link_for(smtp: &Smtp, email: &str) -> String {
    let to = format!("To: {email}");
    mail_arrives(&format!("a verification link to {email}"), || {
        let links: Vec<String> = smtp
            .messages()
            .iter()
            .filter(|m| m.contains(&to))
            .filter_map(|m| link_token(m, VERIFY_PAGE))
            .collect();
        match links.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            more => panic!("{} verification links reached {email}", more.len()),
        }
    })
    .await
}

async fn register(h: &Harness, email: &str) -> serde_json::Value {
    let r = h
        .req("POST", "/api/v1/auth/register")
        .json(json!({
            "email": email,
            "password": PASSWORD,
            "display_name": "Verifier",
        }))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

async fn me(h: &Harness, access: &str) -> serde_json::Value {
    let r = h.req("GET", "/api/v1/auth/me").bearer(access).send().await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn an_address_is_verified_through_the_e_mailed_link(h: &Harness, smtp: &Smtp) {
    let verify = |token: &str| {
        h.req("POST", "/api/v1/auth/verify")
            .json(json!({"token": token}))
    };
    let body = register(h, "ana@example.com").await;
    assert_eq!(body["email_verified"], json!(false));
    let ana = h.login("ana@example.com", PASSWORD).await;
    let first = wait_for_links(smtp, VERIFY_PAGE, 1).await[0].clone();
    assert_eq!(first.len(), 43, "32 random bytes in URL-safe base64");
    assert!(
        smtp.messages()
            .iter()
            .any(|m| m.contains("To: ana@example.com") && m.contains(&first)),
        "sent to the account's address"
    );

    // Asking again replaces the link.
    let resend = |access: &str| {
        h.req("POST", "/api/v1/auth/verify/resend")
            .bearer(access)
            .json(json!({}))
    };
    let r = resend(&ana.access).send().await;
    assert_eq!(r.status, 202, "{}", r.body);
    let both = wait_for_links(smtp, VERIFY_PAGE, 2).await;
    let second = both
        .iter()
        .find(|t| **t != first)
        .expect("a new link")
        .clone();
    let r = verify(&first).send().await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "token");
    verify("x").send().await.problem(422, "validation");
    let r = verify(&"x".repeat(129)).send().await;
    r.problem(422, "validation");
    assert_eq!(
        r.body["errors"][0]["reason"],
        json!("must be 1 to 128 characters"),
        "refused before it is looked up"
    );
    // A verification link is no reset link, and the reverse.
    let r = h
        .req("POST", "/api/v1/auth/password-reset/confirm")
        .json(json!({"token": second, "new_password": "a brand new passphrase"}))
        .send()
        .await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "token");
    assert_eq!(
        h.columns_naming(&[], &[&second]).await,
        Vec::<String>::new(),
        "only the token's hash is stored"
    );

    // The link works once, without a login.
    let r = verify(&second).send().await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(me(h, &ana.access).await["email_verified"], json!(true));
    verify(&second).send().await.problem(422, "validation");
    resend(&ana.access).send().await.problem(409, "conflict");

    // An expired link (written as the service writes one, a day old).
    let bob_id = register(h, "bob@example.com").await["id"]
        .as_str()
        .expect("id")
        .parse::<uuid::Uuid>()
        .expect("uuid");
    let bob_user = alarm_domain::ids::UserId::from_uuid(bob_id).expect("id");
    // Bob's own link first (sent after the answer), so the stale one below
    // is his newest.
    wait_for_links(smtp, VERIFY_PAGE, 3).await;
    let stale = "a-link-that-expired-yesterday-000000000000";
    let now = h.ports().queue.store_time().await.expect("db time");
    h.ports()
        .users
        .commit(ChangeSet::audited(
            UserOp::IssueToken {
                user: bob_user,
                purpose: TokenPurpose::EmailVerification,
                token_hash: sha2::Sha256::digest(stale.as_bytes()).into(),
                expires_at: now - SignedDuration::from_secs(1),
            },
            alarm_testkit::fixtures::audit(
                &h.ports(),
                Some(bob_user),
                "user.verification_requested",
                bob_id,
            ),
        ))
        .await
        .expect("a stale link");
    let r = verify(stale).send().await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "token");
    let bob = h.login("bob@example.com", PASSWORD).await;
    assert_eq!(me(h, &bob.access).await["email_verified"], json!(false));

    // Three new links an hour for one account, then 429 with Retry-After.
    for _ in 0..3 {
        let r = resend(&bob.access).send().await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let r = resend(&bob.access).send().await;
    r.problem(429, "rate-limited");
    assert!(r.header("retry-after").is_some());

    // The bootstrap address: an ordinary user until its link is used.
    register(h, ADMIN).await;
    let root = h.login(ADMIN, PASSWORD).await;
    assert_eq!(me(h, &root.access).await["role"], json!("user"));
    let holiday = json!({"name": "Founders' day", "date": "2031-03-03", "country": "BR"});
    h.req("POST", "/api/v1/holidays")
        .bearer(&root.access)
        .json(holiday.clone())
        .send()
        .await
        .problem(403, "forbidden");
    let root_link = link_for(smtp, ADMIN).await;
    let r = verify(&root_link).send().await;
    assert_eq!(r.status, 204, "{}", r.body);
    let root = h.login(ADMIN, PASSWORD).await;
    assert_eq!(me(h, &root.access).await["role"], json!("admin"));
    let r = h
        .req("POST", "/api/v1/holidays")
        .bearer(&root.access)
        .json(holiday)
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Audited: each link asked for, and the verification by the account.
    let ana_id: uuid::Uuid = me(h, &ana.access).await["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let trail = h.audit_trail().await;
    let about: Vec<(&str, bool)> = trail
        .iter()
        .filter(|r| r.entity_id == ana_id && r.action.contains("verif"))
        .map(|r| (r.action.as_str(), r.actor.is_some()))
        .collect();
    assert_eq!(
        about,
        [
            ("user.verification_requested", true),
            ("user.verification_requested", true),
            ("user.verify_email", true),
        ],
        "{about:?}"
    );
}

/// Without e-mail no link can be sent: registration still works (the
/// operator verifies with `alarm-admin`), and asking for a link is 503.
async fn without_e_mail_a_link_cannot_be_asked_for(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    assert_eq!(me(h, &ana.access).await["email_verified"], json!(false));
    h.req("POST", "/api/v1/auth/verify/resend")
        .bearer(&ana.access)
        .json(json!({}))
        .send()
        .await
        .problem(503, "unavailable");
}

crate::trials! {
    api: [without_e_mail_a_link_cannot_be_asked_for],
    mail: [an_address_is_verified_through_the_e_mailed_link],
}
