//! Password reset over HTTP on both databases with a real SMTP server (aiosmtpd): the link read from the received message, the same answer for unknown addresses, single use, newest only, sessions ended, the per-address limit, and no token text stored.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::delivery::Smtp;
use crate::support::Harness;

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase";
const RESET_PAGE: &str = "https://app.example.com/reset";

/// The token of the link to `page` in `message`, if it has one.
pub(crate) fn link_token(message: &str, page: &str) -> Option<String> {
    let marker = format!("{page}#token=");
    let at = message.find(&marker)? + marker.len();
    Some(
        message[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect(),
    )
}

/// The tokens of every link to `page` received so far, oldest first (the
/// messages are read in name order, which is arrival order for aiosmtpd's
/// maildir only roughly: callers compare sets).
fn tokens(smtp: &Smtp, page: &str) -> Vec<String> {
    smtp.messages()
        .iter()
        .filter_map(|m| link_token(m, page))
        .collect()
}

/// Polls the maildir until `n` reset links arrived (the API sends after
/// answering; there is nothing to await), failing after 20 s.
pub(crate) async fn wait_for(smtp: &Smtp, n: usize) -> Vec<String> {
    wait_for_links(smtp, RESET_PAGE, n).await
}

/// Polls the maildir until `n` links to `page` arrived.
pub(crate) async fn wait_for_links(smtp: &Smtp, page: &str, n: usize) -> Vec<String> {
    mail_arrives(&format!("{n} e-mails linking {page}"), || {
        let got = tokens(smtp, page);
        (got.len() >= n).then_some(got)
    })
    .await
}

/// Polls the maildir with `found` until it finds what it looks for (mail
/// is sent after the API answers: there is nothing to await), failing
/// after 20 s with `what` did not arrive.
pub(crate) async fn mail_arrives<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(it) = found() {
            return it;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_password_is_reset_through_the_e_mailed_link(h: &Harness, smtp: &Smtp) {
    let ana = h.account("ana@example.com").await;
    let other_session = h.login("ana@example.com", PASSWORD).await;
    let ask = |email: &str| {
        h.req("POST", "/api/v1/auth/password-reset")
            .json(json!({"email": email}))
    };
    let confirm = |token: &str, new: &str| {
        h.req("POST", "/api/v1/auth/password-reset/confirm")
            .json(json!({"token": token, "new_password": new}))
    };

    // An unknown address gets the very answer a known one gets.
    let unknown = ask("nobody@example.com").send().await;
    let known = ask("ANA@example.com").send().await;
    assert_eq!(unknown.status, 202, "{}", unknown.body);
    assert_eq!(known.status, 202, "{}", known.body);
    assert_eq!(unknown.body, known.body);
    let first = wait_for(smtp, 1).await;
    assert_eq!(first.len(), 1, "only the account's address got mail");
    let first = first[0].clone();
    assert_eq!(
        first.len(),
        43,
        "32 random bytes in URL-safe base64: {first}"
    );
    assert!(
        smtp.messages()[0].contains("To: ana@example.com"),
        "sent to the account's address"
    );

    // A second request replaces the first link.
    assert_eq!(ask("ana@example.com").send().await.status, 202);
    let both = wait_for(smtp, 2).await;
    let second = both
        .iter()
        .find(|t| **t != first)
        .expect("a new token")
        .clone();
    confirm(&first, NEW_PASSWORD)
        .send()
        .await
        .problem(422, "validation");
    let r = confirm(&second, "short").send().await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "new_password");
    // The token's text is stored nowhere; only its hash is.
    assert_eq!(
        h.columns_naming(&[], &[&second]).await,
        Vec::<String>::new()
    );

    let r = confirm(&second, NEW_PASSWORD).send().await;
    assert_eq!(r.status, 204, "{}", r.body);
    // Every session ended; the old password is gone, the new one works.
    for session in [&ana, &other_session] {
        h.assert_shut_out(session, "ana@example.com", PASSWORD)
            .await;
    }
    let back = h.login("ana@example.com", NEW_PASSWORD).await;
    // Spent: the link works once.
    let r = confirm(&second, "yet another passphrase").send().await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "token");

    // Audited: the requests name the account as their subject (anyone may
    // ask), the reset names it as the actor.
    let me = h
        .req("GET", "/api/v1/auth/me")
        .bearer(&back.access)
        .send()
        .await;
    let id: uuid::Uuid = me.body["id"].as_str().expect("id").parse().expect("uuid");
    let trail = h.audit_trail().await;
    let about: Vec<(&str, bool)> = trail
        .iter()
        .filter(|r| r.entity_id == id && r.action.starts_with("user.password_reset"))
        .map(|r| (r.action.as_str(), r.actor.is_some()))
        .collect();
    assert_eq!(
        about,
        [
            ("user.password_reset_requested", false),
            ("user.password_reset_requested", false),
            ("user.password_reset", true),
        ],
        "{about:?}"
    );

    // Three requests an hour for one address, then 429 with Retry-After.
    assert_eq!(ask("ana@example.com").send().await.status, 202);
    let r = ask("ana@example.com").send().await;
    r.problem(429, "rate-limited");
    assert!(r.header("retry-after").is_some());
}

/// Without e-mail the product cannot send a link, so it refuses the
/// request rather than accepting it and sending nothing.
async fn without_e_mail_a_reset_is_refused(h: &Harness) {
    h.account("ana@example.com").await;
    let r = h
        .req("POST", "/api/v1/auth/password-reset")
        .json(json!({"email": "ana@example.com"}))
        .send()
        .await;
    r.problem(503, "unavailable");
}

/// Account mail through `smtp`, linking to [`RESET_PAGE`] and
/// [`crate::verification::VERIFY_PAGE`].
pub(crate) fn mailer(smtp: &Smtp) -> alarm_api::AccountMailer {
    alarm_api::AccountMailer(Arc::new(alarm_notify::email::AccountMails::new(
        smtp.mailer(),
        alarm_notify::email::AccountLinks {
            reset: Some(RESET_PAGE.to_owned()),
            verify: Some(crate::verification::VERIFY_PAGE.to_owned()),
        },
    )))
}

crate::trials! {
    api: [without_e_mail_a_reset_is_refused],
    mail: [a_password_is_reset_through_the_e_mailed_link],
}
