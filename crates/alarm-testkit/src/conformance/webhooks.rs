//! Conformance checks of [`alarm_domain::ports::WebhookStore`].

use super::*;

/// Ana and Bob, and Ana's active registration for `alarm.triggered`, stored.
async fn ana_with_hook(ports: &Ports) -> (User, User, WebhookRegistration) {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let bob = fixtures::user(ports, "bob@example.com").await;
    let hook = WebhookRegistration::new(
        WebhookId::generate(),
        ana.id(),
        WebhookUrl::parse("https://hooks.example.com/alarm").expect("url"),
        WebhookEventSet::new(&[WebhookEvent::Triggered]).expect("events"),
        SecretString::from("whsec_conformance"),
        true,
        0,
    );
    let change = ChangeSet {
        op: WebhookOp::Create(
            hook.clone(),
            alarm_domain::limits::Quota::unlimited("webhooks"),
        ),
        audit: audit(ports, Some(ana.id()), "webhook.create", hook.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.webhooks.commit(change).await.expect("create");
    (ana, bob, hook)
}

fn update(ports: &Ports, actor: UserId, hook: WebhookRegistration) -> ChangeSet<WebhookOp> {
    let id = hook.id();
    ChangeSet {
        op: WebhookOp::Update(hook),
        audit: audit(ports, Some(actor), "webhook.update", id.as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    }
}

fn delete(ports: &Ports, owner: UserId, id: WebhookId) -> ChangeSet<WebhookOp> {
    ChangeSet {
        op: WebhookOp::Delete { owner, id },
        audit: audit(ports, Some(owner), "webhook.delete", id.as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    }
}

/// A registration is read back with its signing secret and URL.
async fn the_signing_secret_and_url_are_kept(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, _, hook) = ana_with_hook(&ports).await;
    let stored = ports.webhooks.get(ana.id(), hook.id()).await.expect("get");
    assert_eq!(
        stored.secret().expose_secret(),
        "whsec_conformance",
        "the signing secret is kept"
    );
    assert_eq!(stored.url(), hook.url());
}

/// Another owner neither gets nor lists a registration.
async fn another_owners_registration_is_not_found(new_ports: Fresh) {
    let ports = new_ports().await;
    let (_, bob, hook) = ana_with_hook(&ports).await;
    is(
        ports.webhooks.get(bob.id(), hook.id()).await,
        not_found,
        "another owner's registration",
    );
    assert!(
        ports
            .webhooks
            .list(bob.id())
            .await
            .expect("list")
            .is_empty()
    );
}

/// An update stores the registration's active flag and failure count.
async fn update_stores_active_and_failure_count(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, _, hook) = ana_with_hook(&ports).await;
    let disabled = WebhookRegistration::new(
        hook.id(),
        ana.id(),
        hook.url().clone(),
        hook.events(),
        hook.secret().clone(),
        false,
        7,
    );
    ports
        .webhooks
        .commit(update(&ports, ana.id(), disabled))
        .await
        .expect("update");
    let stored = ports.webhooks.get(ana.id(), hook.id()).await.expect("get");
    assert_eq!((stored.active(), stored.failure_count()), (false, 7));
}

/// Another owner can neither delete nor update a registration.
async fn another_owner_can_neither_delete_nor_update(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, bob, hook) = ana_with_hook(&ports).await;
    is(
        ports
            .webhooks
            .commit(delete(&ports, bob.id(), hook.id()))
            .await,
        not_found,
        "deleting another owner's registration",
    );
    let foreign = WebhookRegistration::new(
        hook.id(),
        bob.id(),
        hook.url().clone(),
        hook.events(),
        SecretString::from("whsec_x"),
        true,
        0,
    );
    is(
        ports
            .webhooks
            .commit(update(&ports, bob.id(), foreign))
            .await,
        not_found,
        "updating another owner's registration",
    );
    let stored = ports.webhooks.get(ana.id(), hook.id()).await.expect("get");
    assert_eq!(
        (stored.secret().expose_secret(), stored.active()),
        ("whsec_conformance", true),
        "the refused delete and update left the owner's registration as it was"
    );
}

/// A deletion by the owner removes the registration.
async fn delete_removes_the_registration(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, _, hook) = ana_with_hook(&ports).await;
    ports
        .webhooks
        .commit(delete(&ports, ana.id(), hook.id()))
        .await
        .expect("delete");
    is(
        ports.webhooks.get(ana.id(), hook.id()).await,
        not_found,
        "deleted",
    );
}

fn rotate(
    ports: &Ports,
    owner: UserId,
    id: WebhookId,
    expected: &str,
    secret: &str,
) -> ChangeSet<WebhookOp> {
    ChangeSet {
        op: WebhookOp::RotateSecret {
            owner,
            id,
            expected: SecretString::from(expected.to_owned()),
            secret: SecretString::from(secret.to_owned()),
            previous: Some(alarm_domain::model::PreviousSecret {
                secret: SecretString::from(expected.to_owned()),
                until: at(3600),
            }),
        },
        audit: audit(ports, Some(owner), "webhook.rotate-secret", id.as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    }
}

/// An update committed after a rotation, from a registration read before
/// it, changes the settings and keeps the rotated secrets.
async fn an_update_keeps_the_stored_secrets(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, _, hook) = ana_with_hook(&ports).await;
    ports
        .webhooks
        .commit(rotate(
            &ports,
            ana.id(),
            hook.id(),
            "whsec_conformance",
            "whsec_new",
        ))
        .await
        .expect("rotate");
    let moved = WebhookRegistration::new(
        hook.id(),
        ana.id(),
        WebhookUrl::parse("https://hooks.example.com/moved").expect("url"),
        hook.events(),
        hook.secret().clone(),
        true,
        0,
    );
    ports
        .webhooks
        .commit(update(&ports, ana.id(), moved))
        .await
        .expect("update");
    let stored = ports.webhooks.get(ana.id(), hook.id()).await.expect("get");
    assert_eq!(stored.url().as_str(), "https://hooks.example.com/moved");
    assert_eq!(
        stored.secret().expose_secret(),
        "whsec_new",
        "not written back"
    );
    assert_eq!(
        stored
            .previous()
            .map(|p| (p.secret.expose_secret().to_owned(), p.until)),
        Some(("whsec_conformance".to_owned(), at(3600)))
    );
}

/// A rotation from a secret that is no longer stored is a conflict and
/// changes nothing; another owner's rotation finds nothing.
async fn a_rotation_from_a_stale_secret_conflicts(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, bob, hook) = ana_with_hook(&ports).await;
    ports
        .webhooks
        .commit(rotate(
            &ports,
            ana.id(),
            hook.id(),
            "whsec_conformance",
            "whsec_first",
        ))
        .await
        .expect("the first rotation");
    let late = ports
        .webhooks
        .commit(rotate(
            &ports,
            ana.id(),
            hook.id(),
            "whsec_conformance",
            "whsec_second",
        ))
        .await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    assert!(matches!(
        ports
            .webhooks
            .commit(rotate(
                &ports,
                bob.id(),
                hook.id(),
                "whsec_first",
                "whsec_bob"
            ))
            .await,
        Err(StoreError::NotFound)
    ));
    let stored = ports.webhooks.get(ana.id(), hook.id()).await.expect("get");
    assert_eq!(stored.secret().expose_secret(), "whsec_first");
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        the_signing_secret_and_url_are_kept,
        another_owners_registration_is_not_found,
        update_stores_active_and_failure_count,
        another_owner_can_neither_delete_nor_update,
        delete_removes_the_registration,
        an_update_keeps_the_stored_secrets,
        a_rotation_from_a_stale_secret_conflicts,
    )
}
