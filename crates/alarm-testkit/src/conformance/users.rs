//! Conformance checks of [`alarm_domain::ports::UserStore`].

use super::*;

/// The fixture user, registered with a mixed-case email.
async fn ana(ports: &Ports) -> User {
    fixtures::user(ports, "Ana@Example.com").await
}

fn lower() -> Email {
    Email::parse("ana@example.com").expect("email")
}

/// A user with an id of its own and `email`, not stored.
fn unstored(email: &str, name: &str) -> User {
    User::new(
        UserId::generate(),
        Email::parse(email).expect("email"),
        DisplayName::parse(name).expect("name"),
        Role::User,
        fixtures::zone("UTC"),
        None,
    )
}

/// `get` returns the user as registered; a missing id is not found.
async fn get_returns_what_was_registered(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = ana(&ports).await;
    assert_eq!(
        ports.users.get(ana.id()).await.expect("get"),
        ana,
        "get returns what was registered"
    );
    is(
        ports.users.get(UserId::generate()).await,
        not_found,
        "get of a missing user",
    );
}

/// Looking a user up by email ignores case; an unknown email finds no one.
async fn email_lookup_ignores_case(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = ana(&ports).await;
    assert_eq!(
        ports
            .users
            .find_by_email(&lower())
            .await
            .expect("find")
            .map(|u| u.id()),
        Some(ana.id()),
        "email look-up ignores case"
    );
    assert!(
        ports
            .users
            .find_by_email(&Email::parse("nobody@example.com").expect("email"))
            .await
            .expect("find")
            .is_none()
    );
}

/// `credentials` returns the user with the password hash it was registered with.
async fn credentials_keep_the_password_hash(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = ana(&ports).await;
    let (user, hash) = ports
        .users
        .credentials(&lower())
        .await
        .expect("credentials")
        .expect("registered");
    assert_eq!(user.id(), ana.id());
    assert_eq!(
        hash.expose_secret(),
        "$argon2id$fixture",
        "the password hash is kept"
    );
}

/// Registering a taken email in other case conflicts, and nothing of the change set is stored.
async fn taken_email_in_other_case_conflicts_and_stores_nothing(new_ports: Fresh) {
    let ports = new_ports().await;
    ana(&ports).await;
    let before = audit_count(&ports).await;
    let twin = unstored("ANA@example.COM", "Twin");
    let change = ChangeSet {
        op: UserOp::Register {
            user: twin.clone(),
            password_hash: SecretString::from("x"),
        },
        audit: audit(&ports, None, "user.register", twin.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.users.commit(change).await,
        conflict,
        "registering a taken email in other case",
    );
    assert_eq!(
        audit_count(&ports).await,
        before,
        "a refused registration writes no audit record"
    );
    is(
        ports.users.get(twin.id()).await,
        not_found,
        "a refused registration stores no user",
    );
}

/// Updating a user that was never registered is not found.
async fn updating_a_missing_user_is_not_found(new_ports: Fresh) {
    let ports = new_ports().await;
    ana(&ports).await;
    let ghost = unstored("ghost@example.com", "G");
    let change = ChangeSet {
        op: UserOp::Update(ghost.clone()),
        audit: audit(&ports, None, "user.update", ghost.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.users.commit(change).await,
        not_found,
        "updating a missing user",
    );
}

/// A new password hash replaces the old one, with its audit record; for a
/// missing user it is not found and nothing is stored.
async fn setting_a_password_replaces_the_hash(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = ana(&ports).await;
    let change = |user| ChangeSet {
        op: UserOp::SetPassword {
            user,
            password_hash: SecretString::from("$argon2id$changed"),
        },
        audit: audit(
            &ports,
            Some(ana.id()),
            "user.password_change",
            ana.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    let before = audit_count(&ports).await;
    let ghost = unstored("ghost@example.com", "G");
    is(
        ports.users.commit(change(ghost.id())).await,
        not_found,
        "a missing user's password",
    );
    assert_eq!(audit_count(&ports).await, before, "nothing stored");
    ports
        .users
        .commit(change(ana.id()))
        .await
        .expect("set password");
    let (user, hash) = ports
        .users
        .credentials(&lower())
        .await
        .expect("credentials")
        .expect("registered");
    assert_eq!(user, ana, "the profile is untouched");
    assert_eq!(hash.expose_secret(), "$argon2id$changed");
    assert_eq!(
        audit_count(&ports).await,
        before + 1,
        "audited in the same commit"
    );
}

/// Erasing an account removes it and what it owns (alarm, its trigger and
/// events, a session) in one commit, renames it in the audit trail to the
/// pseudonym with the summaries cleared, spares another account, and a
/// second erasure is not found.
async fn erasing_an_account_takes_what_it_owns_and_spares_others(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = ana(&ports).await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let due = t0() + SignedDuration::from_hours(1);
    let alarm = fixtures::alarm(&ports, ana.id(), "Tea", Some(due)).await;
    let kept = fixtures::alarm(&ports, bob.id(), "Coffee", Some(due)).await;
    let mut summarised = audit(
        &ports,
        Some(ana.id()),
        "user.update_profile",
        ana.id().as_uuid(),
    );
    summarised.after = Some("display_name=Ana".to_owned());
    ports.audit.record(summarised).await.expect("audit");
    let family = alarm_domain::ports::RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: t0() + SignedDuration::from_hours(24),
        revoked: false,
    };
    ports
        .refresh_tokens
        .create(family.clone(), [7; 32])
        .await
        .expect("session");
    let bobs_audit = ports
        .audit
        .list(Some(bob.id()), PageRequest::new(None, 100).expect("page"))
        .await
        .expect("audit")
        .items;

    let alias = UserId::from_uuid(ports.ids.next_uuid()).expect("id");
    let erase = || {
        ChangeSet::audited(
            UserOp::Erase {
                user: ana.id(),
                pseudonym: alias.as_uuid(),
            },
            audit(&ports, Some(alias), "user.erase", alias.as_uuid()),
        )
    };
    ports.users.commit(erase()).await.expect("erase");

    is(
        ports.users.get(ana.id()).await,
        not_found,
        "the erased account",
    );
    assert!(
        ports
            .users
            .find_by_email(&lower())
            .await
            .expect("find")
            .is_none()
    );
    is(
        ports.alarms.get(ana.id(), alarm.id()).await,
        not_found,
        "its alarm",
    );
    assert!(
        ports
            .queue
            .pending(alarm.id())
            .await
            .expect("pending")
            .is_empty(),
        "its trigger"
    );
    let events = ports
        .events
        .list(
            ana.id(),
            alarm.id(),
            PageRequest::new(None, 100).expect("page"),
        )
        .await
        .expect("events");
    assert!(events.items.is_empty(), "its events");
    is(
        ports.refresh_tokens.family(family.id).await,
        not_found,
        "its session",
    );
    let page = || PageRequest::new(None, 100).expect("page");
    let named = ports
        .audit
        .list(Some(ana.id()), page())
        .await
        .expect("audit");
    assert!(named.items.is_empty(), "no record names the account");
    let renamed = ports
        .audit
        .list(Some(alias), page())
        .await
        .expect("audit")
        .items;
    let actions: Vec<&str> = renamed.iter().map(|r| r.action.as_str()).collect();
    for action in [
        "user.register",
        "alarm.create",
        "user.update_profile",
        "user.erase",
    ] {
        assert!(actions.contains(&action), "{action} is kept: {actions:?}");
    }
    assert!(
        renamed
            .iter()
            .all(|r| r.before.is_none() && r.after.is_none()),
        "summaries are cleared"
    );
    assert!(
        renamed
            .iter()
            .filter(|r| r.action.starts_with("user."))
            .all(|r| r.entity_id == alias.as_uuid()),
        "records about the account name the pseudonym"
    );

    assert_eq!(ports.users.get(bob.id()).await.expect("bob"), bob);
    assert_eq!(
        ports
            .alarms
            .get(bob.id(), kept.id())
            .await
            .expect("kept")
            .id(),
        kept.id()
    );
    assert_eq!(
        ports.queue.pending(kept.id()).await.expect("pending").len(),
        1
    );
    assert_eq!(
        ports
            .audit
            .list(Some(bob.id()), page())
            .await
            .expect("audit")
            .items,
        bobs_audit,
        "another account's audit trail is untouched"
    );
    is(
        ports.users.commit(erase()).await,
        not_found,
        "erasing a missing account",
    );
}

/// A reset token works once, only while it is the account's newest and
/// before it expires; the password changes only with a usable one.
async fn a_reset_token_works_once_while_newest_and_unexpired(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = ana(&ports).await;
    let until = t0() + SignedDuration::from_mins(30);
    let issue = |hash: [u8; 32], user: UserId| {
        ChangeSet::audited(
            UserOp::IssueReset {
                user,
                token_hash: hash,
                expires_at: until,
            },
            audit(
                &ports,
                Some(user),
                "user.password_reset_requested",
                user.as_uuid(),
            ),
        )
    };
    let reset = |hash: [u8; 32], now, new: &str| {
        ChangeSet::audited(
            UserOp::ResetPassword {
                user: ana.id(),
                token_hash: hash,
                now,
                password_hash: SecretString::from(new.to_owned()),
            },
            audit(
                &ports,
                Some(ana.id()),
                "user.password_reset",
                ana.id().as_uuid(),
            ),
        )
    };
    let hash = || async {
        let (_, h) = ports
            .users
            .credentials(&lower())
            .await
            .expect("credentials")
            .expect("registered");
        h.expose_secret().to_owned()
    };
    ports
        .users
        .commit(issue([1; 32], ana.id()))
        .await
        .expect("issue");
    assert_eq!(
        ports.users.reset_owner([1; 32]).await.expect("owner"),
        Some(ana.id())
    );
    ports
        .users
        .commit(issue([2; 32], ana.id()))
        .await
        .expect("reissue");
    assert_eq!(
        ports.users.reset_owner([1; 32]).await.expect("owner"),
        None,
        "a newer token replaces the older"
    );
    is(
        ports
            .users
            .commit(reset([1; 32], t0(), "$argon2id$old-link"))
            .await,
        not_found,
        "a replaced token",
    );
    is(
        ports
            .users
            .commit(reset([2; 32], until, "$argon2id$late"))
            .await,
        not_found,
        "a token at its expiry",
    );
    assert_eq!(hash().await, "$argon2id$fixture", "nothing changed");
    let session = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: until,
        revoked: false,
    };
    ports
        .refresh_tokens
        .create(session.clone(), [8; 32])
        .await
        .expect("session");
    let before = audit_count(&ports).await;
    ports
        .users
        .commit(reset(
            [2; 32],
            until - SignedDuration::from_secs(1),
            "$argon2id$new",
        ))
        .await
        .expect("reset");
    assert_eq!(hash().await, "$argon2id$new");
    assert!(
        ports
            .refresh_tokens
            .family(session.id)
            .await
            .expect("family")
            .revoked,
        "the reset's commit ends every session"
    );
    assert_eq!(
        audit_count(&ports).await,
        before + 1,
        "audited in the same commit"
    );
    is(
        ports
            .users
            .commit(reset([2; 32], t0(), "$argon2id$again"))
            .await,
        not_found,
        "a spent token",
    );
    assert_eq!(ports.users.reset_owner([2; 32]).await.expect("owner"), None);
    is(
        ports.users.commit(issue([3; 32], UserId::generate())).await,
        not_found,
        "a token for a missing account",
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        get_returns_what_was_registered,
        setting_a_password_replaces_the_hash,
        email_lookup_ignores_case,
        credentials_keep_the_password_hash,
        taken_email_in_other_case_conflicts_and_stores_nothing,
        updating_a_missing_user_is_not_found,
        erasing_an_account_takes_what_it_owns_and_spares_others,
        a_reset_token_works_once_while_newest_and_unexpired,
    )
}
