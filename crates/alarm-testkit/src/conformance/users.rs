//! Conformance checks of [`alarm_domain::ports::UserStore`].

use super::*;

/// [`alarm_domain::ports::UserStore`].
async fn user_store(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "Ana@Example.com").await;
    assert_eq!(
        ports.users.get(ana.id()).await.expect("get"),
        ana,
        "get returns what was registered"
    );
    let lower = Email::parse("ana@example.com").expect("email");
    assert_eq!(
        ports
            .users
            .find_by_email(&lower)
            .await
            .expect("find")
            .map(|u| u.id()),
        Some(ana.id()),
        "email look-up ignores case"
    );
    let (user, hash) = ports
        .users
        .credentials(&lower)
        .await
        .expect("credentials")
        .expect("registered");
    assert_eq!(user.id(), ana.id());
    assert_eq!(
        hash.expose_secret(),
        "$argon2id$fixture",
        "the password hash is kept"
    );
    assert!(
        ports
            .users
            .find_by_email(&Email::parse("nobody@example.com").expect("email"))
            .await
            .expect("find")
            .is_none()
    );
    is(
        ports.users.get(UserId::generate()).await,
        not_found,
        "get of a missing user",
    );

    // Same email in other case: conflict, and nothing of the change set is stored.
    let before = audit_count(&ports).await;
    let twin = User::new(
        UserId::generate(),
        Email::parse("ANA@example.COM").expect("email"),
        DisplayName::parse("Twin").expect("name"),
        Role::User,
        fixtures::zone("UTC"),
        None,
    );
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

    let ghost = User::new(
        UserId::generate(),
        Email::parse("ghost@example.com").expect("email"),
        DisplayName::parse("G").expect("name"),
        Role::User,
        fixtures::zone("UTC"),
        None,
    );
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

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports: user_store)
}
