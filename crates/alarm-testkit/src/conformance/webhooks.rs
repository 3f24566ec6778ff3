//! Conformance checks of [`alarm_domain::ports::WebhookStore`].

use super::*;

/// [`alarm_domain::ports::WebhookStore`].
async fn webhook_store(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
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
        op: WebhookOp::Create(hook.clone()),
        audit: audit(
            &ports,
            Some(ana.id()),
            "webhook.create",
            hook.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.webhooks.commit(change).await.expect("create");
    let stored = ports.webhooks.get(ana.id(), hook.id()).await.expect("get");
    assert_eq!(
        stored.secret().expose_secret(),
        "whsec_conformance",
        "the signing secret is kept"
    );
    assert_eq!(stored.url(), hook.url());
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
    let disabled = WebhookRegistration::new(
        hook.id(),
        ana.id(),
        hook.url().clone(),
        hook.events(),
        hook.secret().clone(),
        false,
        7,
    );
    let change = ChangeSet {
        op: WebhookOp::Update(disabled),
        audit: audit(
            &ports,
            Some(ana.id()),
            "webhook.update",
            hook.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.webhooks.commit(change).await.expect("update");
    let stored = ports.webhooks.get(ana.id(), hook.id()).await.expect("get");
    assert_eq!((stored.active(), stored.failure_count()), (false, 7));
    let del = |owner| ChangeSet {
        op: WebhookOp::Delete {
            owner,
            id: hook.id(),
        },
        audit: audit(&ports, Some(owner), "webhook.delete", hook.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.webhooks.commit(del(bob.id())).await,
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
    let change = ChangeSet {
        op: WebhookOp::Update(foreign),
        audit: audit(
            &ports,
            Some(bob.id()),
            "webhook.update",
            hook.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.webhooks.commit(change).await,
        not_found,
        "updating another owner's registration",
    );
    ports.webhooks.commit(del(ana.id())).await.expect("delete");
    is(
        ports.webhooks.get(ana.id(), hook.id()).await,
        not_found,
        "deleted",
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports: webhook_store)
}
