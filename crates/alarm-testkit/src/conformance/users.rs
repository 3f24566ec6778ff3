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
        logged_in_at: t0(),
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
            UserOp::IssueToken {
                user,
                purpose: TokenPurpose::PasswordReset,
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
        ports
            .users
            .token_owner(TokenPurpose::PasswordReset, [1; 32])
            .await
            .expect("owner"),
        Some(ana.id())
    );
    ports
        .users
        .commit(issue([2; 32], ana.id()))
        .await
        .expect("reissue");
    assert_eq!(
        ports
            .users
            .token_owner(TokenPurpose::PasswordReset, [1; 32])
            .await
            .expect("owner"),
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
        logged_in_at: t0(),
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
    assert_eq!(
        ports
            .users
            .token_owner(TokenPurpose::PasswordReset, [2; 32])
            .await
            .expect("owner"),
        None
    );
    is(
        ports.users.commit(issue([3; 32], UserId::generate())).await,
        not_found,
        "a token for a missing account",
    );
}

/// A verification token works once, only while it is the account's newest
/// and before it expires, and only for its purpose; the first verification
/// sets the instant and grants the bootstrap role, which later profile
/// updates and look-ups keep, and a later one changes neither. An
/// operator's verification needs no token and drops a pending one.
async fn a_verification_token_verifies_once_and_sets_the_role(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = unstored("ana@example.com", "Ana");
    ports
        .users
        .commit(ChangeSet::audited(
            UserOp::Register {
                user: ana.clone(),
                password_hash: SecretString::from("$argon2id$x".to_owned()),
            },
            audit(&ports, Some(ana.id()), "user.register", ana.id().as_uuid()),
        ))
        .await
        .expect("register");
    let stored = || async { ports.users.get(ana.id()).await.expect("get") };
    assert_eq!(stored().await.verified_at(), None, "registered unverified");
    let until = t0() + SignedDuration::from_hours(24);
    let issue = |purpose, hash: [u8; 32]| {
        ChangeSet::audited(
            UserOp::IssueToken {
                user: ana.id(),
                purpose,
                token_hash: hash,
                expires_at: until,
            },
            audit(
                &ports,
                Some(ana.id()),
                "user.verification_requested",
                ana.id().as_uuid(),
            ),
        )
    };
    let verify = |hash: Option<[u8; 32]>, now, grant_admin| {
        ChangeSet::audited(
            UserOp::Verify {
                user: ana.id(),
                token_hash: hash,
                now,
                grant_admin,
            },
            audit(
                &ports,
                Some(ana.id()),
                "user.verify_email",
                ana.id().as_uuid(),
            ),
        )
    };
    for (purpose, hash) in [
        (TokenPurpose::EmailVerification, [1; 32]),
        (TokenPurpose::PasswordReset, [2; 32]),
        (TokenPurpose::EmailVerification, [3; 32]),
    ] {
        ports
            .users
            .commit(issue(purpose, hash))
            .await
            .expect("issue");
    }
    let users = &ports.users;
    let owner =
        |purpose, hash| async move { users.token_owner(purpose, hash).await.expect("owner") };
    assert_eq!(
        owner(TokenPurpose::EmailVerification, [1; 32]).await,
        None,
        "replaced"
    );
    assert_eq!(
        owner(TokenPurpose::PasswordReset, [2; 32]).await,
        Some(ana.id()),
        "a token of another purpose is kept beside it"
    );
    assert_eq!(
        owner(TokenPurpose::EmailVerification, [2; 32]).await,
        None,
        "a reset token is no verification token"
    );
    for (hash, now, what) in [
        ([1; 32], t0(), "a replaced token"),
        ([2; 32], t0(), "a token of another purpose"),
        ([3; 32], until, "a token at its expiry"),
    ] {
        is(
            ports.users.commit(verify(Some(hash), now, true)).await,
            not_found,
            what,
        );
    }
    assert_eq!(stored().await.verified_at(), None, "nothing changed");
    assert_eq!(stored().await.role(), Role::User);
    let at = t0() + SignedDuration::from_secs(5);
    ports
        .users
        .commit(verify(Some([3; 32]), at, true))
        .await
        .expect("verify");
    let user = stored().await;
    assert_eq!(user.verified_at(), Some(at));
    assert_eq!(user.role(), Role::Admin);
    is(
        ports.users.commit(verify(Some([3; 32]), at, true)).await,
        not_found,
        "a spent token",
    );
    assert_eq!(
        owner(TokenPurpose::PasswordReset, [2; 32]).await,
        Some(ana.id()),
        "spending one purpose leaves the other"
    );
    // A profile update touches neither the verification nor the role (it
    // carries a stale one here); every read path carries both.
    let renamed = User::new(
        ana.id(),
        ana.email().clone(),
        DisplayName::parse("Ana Maria").expect("name"),
        Role::User,
        ana.time_zone().clone(),
        None,
    );
    ports
        .users
        .commit(ChangeSet::audited(
            UserOp::Update(renamed),
            audit(
                &ports,
                Some(ana.id()),
                "user.update_profile",
                ana.id().as_uuid(),
            ),
        ))
        .await
        .expect("update");
    assert_eq!(stored().await.verified_at(), Some(at));
    assert_eq!(
        stored().await.role(),
        Role::Admin,
        "the role is not a profile field"
    );
    assert_eq!(stored().await.display_name().as_str(), "Ana Maria");
    let many = ports.users.get_many(vec![ana.id()]).await.expect("many");
    assert_eq!(many[0].verified_at(), Some(at));
    let found = ports.users.find_by_email(&lower()).await.expect("find");
    assert_eq!(found.and_then(|u| u.verified_at()), Some(at));
    // The role is set alone; a later verification (here the operator's:
    // no token) neither moves the instant nor grants the role again, and
    // drops a pending link.
    ports
        .users
        .commit(ChangeSet::audited(
            UserOp::SetRole {
                user: ana.id(),
                role: Role::User,
            },
            audit(&ports, None, "user.set_role", ana.id().as_uuid()),
        ))
        .await
        .expect("revoke");
    assert_eq!(stored().await.role(), Role::User);
    assert_eq!(stored().await.display_name().as_str(), "Ana Maria");
    ports
        .users
        .commit(issue(TokenPurpose::EmailVerification, [4; 32]))
        .await
        .expect("issue");
    ports
        .users
        .commit(verify(None, until, true))
        .await
        .expect("operator");
    let user = stored().await;
    assert_eq!(user.verified_at(), Some(at), "the first verification stays");
    assert_eq!(
        user.role(),
        Role::User,
        "a revoke outlasts a later verification"
    );
    assert_eq!(owner(TokenPurpose::EmailVerification, [4; 32]).await, None);
    is(
        ports
            .users
            .commit(ChangeSet::audited(
                UserOp::Verify {
                    user: UserId::generate(),
                    token_hash: None,
                    now: at,
                    grant_admin: false,
                },
                audit(&ports, None, "user.verify_email", uuid::Uuid::nil()),
            ))
            .await,
        not_found,
        "verifying a missing account",
    );
}

/// Concurrent spends of one e-mailed token (two clicks on one link, two
/// tabs confirming one reset): exactly one commits.
async fn a_token_spent_concurrently_has_one_winner(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = ana(&ports).await;
    let until = t0() + SignedDuration::from_hours(1);
    for purpose in [TokenPurpose::PasswordReset, TokenPurpose::EmailVerification] {
        ports
            .users
            .commit(ChangeSet::audited(
                UserOp::IssueToken {
                    user: ana.id(),
                    purpose,
                    token_hash: [9; 32],
                    expires_at: until,
                },
                audit(&ports, Some(ana.id()), "user.token", ana.id().as_uuid()),
            ))
            .await
            .expect("issue");
        let tries: Vec<_> = (0..6)
            .map(|n| {
                let users = ports.users.clone();
                let op = match purpose {
                    TokenPurpose::PasswordReset => UserOp::ResetPassword {
                        user: ana.id(),
                        token_hash: [9; 32],
                        now: t0(),
                        password_hash: SecretString::from(format!("$argon2id${n}")),
                    },
                    TokenPurpose::EmailVerification => UserOp::Verify {
                        user: ana.id(),
                        token_hash: Some([9; 32]),
                        now: t0(),
                        grant_admin: false,
                    },
                };
                let change = ChangeSet::audited(
                    op,
                    audit(&ports, Some(ana.id()), "user.spend", ana.id().as_uuid()),
                );
                tokio::spawn(async move { users.commit(change).await })
            })
            .collect();
        let mut won = 0;
        for t in tries {
            match t.await.expect("join") {
                Ok(()) => won += 1,
                Err(StoreError::NotFound | StoreError::Retryable(_)) => {}
                other => panic!("concurrent spend: {other:?}"),
            }
        }
        assert_eq!(
            won, 1,
            "{purpose:?}: exactly one spend of one token commits"
        );
    }
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
        a_verification_token_verifies_once_and_sets_the_role,
        a_token_spent_concurrently_has_one_winner,
    )
}
