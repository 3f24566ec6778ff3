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

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        get_returns_what_was_registered,
        setting_a_password_replaces_the_hash,
        email_lookup_ignores_case,
        credentials_keep_the_password_hash,
        taken_email_in_other_case_conflicts_and_stores_nothing,
        updating_a_missing_user_is_not_found,
    )
}
