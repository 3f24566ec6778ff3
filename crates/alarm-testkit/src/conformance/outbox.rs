//! Conformance checks of [`alarm_domain::ports::Outbox`].

use super::*;

async fn hook(
    ports: &Ports,
    owner: UserId,
    events: &[WebhookEvent],
    active: bool,
) -> WebhookRegistration {
    let hook = WebhookRegistration::new(
        WebhookId::generate(),
        owner,
        WebhookUrl::parse("https://hooks.example.com/alarm").expect("url"),
        WebhookEventSet::new(events).expect("events"),
        SecretString::from("whsec_conformance"),
        active,
        0,
    );
    let change = ChangeSet {
        op: WebhookOp::Create(hook.clone()),
        audit: audit(ports, Some(owner), "webhook.create", hook.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.webhooks.commit(change).await.expect("create hook");
    hook
}

/// [`alarm_domain::ports::Outbox`]: fan-out at fire time, lease claims,
/// fenced finishes, failure counting and disabling, the email fallback,
/// redelivery and listing.
async fn outbox(new_ports: Fresh) {
    use alarm_domain::model::Channel;
    use alarm_domain::ports::{OutboxItem, SendResult, SendStatus, SendTopic};

    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let one = fixtures::alarm(&ports, ana.id(), "One", Some(at(10))).await;
    let wanted = hook(&ports, ana.id(), &[WebhookEvent::Triggered], true).await;
    hook(&ports, ana.id(), &[WebhookEvent::Escalated], true).await;
    hook(&ports, ana.id(), &[WebhookEvent::Triggered], false).await;
    let bobs = hook(&ports, bob.id(), &[WebhookEvent::Triggered], true).await;

    let claimed = ports
        .queue
        .claim(at(10), 10, SignedDuration::from_secs(30))
        .await
        .expect("claim trigger");
    assert_eq!(claimed.len(), 1);
    let t = &claimed[0];
    let delivery = |n: u128, channel| Delivery {
        id: uuid::Uuid::from_u128(n),
        owner: ana.id(),
        alarm: one.id(),
        occurrence: t.trigger.occurrence,
        kind: TriggerKind::Fire,
        channel,
        created_at: at(10),
    };
    let outcome = FireOutcome {
        events: Vec::new(),
        deliveries: vec![delivery(1, Channel::Webhook), delivery(2, Channel::InApp)],
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
    };
    ports
        .queue
        .complete_many(vec![(t.token, outcome)])
        .await
        .expect("complete");

    let out = &ports.outbox;
    assert!(
        out.claim(at(9), at(40), 10)
            .await
            .expect("claim")
            .is_empty(),
        "nothing is due before the fire's time"
    );
    let first = out.claim(at(10), at(40), 10).await.expect("claim");
    assert_eq!(
        first.len(),
        1,
        "one row: the active registration subscribed to alarm.triggered (not the escalation-only one, the inactive one, bob's, or in-app)"
    );
    let row = &first[0].item;
    assert_eq!(
        (row.message, row.target, row.channel, row.owner),
        (
            uuid::Uuid::from_u128(1),
            wanted.id().as_uuid(),
            Channel::Webhook,
            ana.id()
        )
    );
    assert_eq!(row.topic, SendTopic::Alarm(WebhookEvent::Triggered));
    assert_eq!(row.alarm, Some((one.id(), t.trigger.occurrence)));
    assert_eq!((row.status, row.attempts), (SendStatus::Pending, 0));
    assert!(
        out.claim(at(11), at(40), 10)
            .await
            .expect("claim")
            .is_empty(),
        "a leased row is not handed out twice"
    );

    let report = out
        .finish(
            at(11),
            vec![(
                first[0].token,
                SendResult::Retry {
                    due: at(20),
                    counted: true,
                    code: Some(503),
                    error: "HTTP 503".to_owned(),
                    latency_ms: 7,
                },
            )],
            3,
        )
        .await
        .expect("finish retry");
    assert!(report.lost.is_empty() && report.disabled.is_empty() && report.fallbacks == 0);
    let listed = out
        .list(ana.id(), Channel::Webhook, wanted.id().as_uuid(), None, 10)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].status,
            listed[0].attempts,
            listed[0].last_code,
            listed[0].due
        ),
        (SendStatus::Pending, 1, Some(503), at(20))
    );
    assert!(
        out.claim(at(19), at(40), 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let slow = out.claim(at(20), at(25), 10).await.expect("claim");
    assert_eq!(slow.len(), 1, "due again at the retry time");
    let taken = out.claim(at(25), at(60), 10).await.expect("claim");
    assert_eq!(
        taken.len(),
        1,
        "a row whose lease ran out is claimable again"
    );
    let late = out
        .finish(
            at(26),
            vec![(
                slow[0].token,
                SendResult::Delivered {
                    code: Some(200),
                    latency_ms: 1,
                },
            )],
            3,
        )
        .await
        .expect("late finish");
    assert_eq!(
        late.lost,
        vec![slow[0].token],
        "the first sender's finish is fenced"
    );

    let dead = out
        .finish(
            at(27),
            vec![(
                taken[0].token,
                SendResult::Dead {
                    code: Some(410),
                    error: "HTTP 410".to_owned(),
                    latency_ms: 3,
                },
            )],
            3,
        )
        .await
        .expect("finish dead");
    assert_eq!(
        dead.fallbacks, 1,
        "the alarm's only external row failed and it has no email row: a fallback email is queued"
    );
    assert!(dead.disabled.is_empty(), "one failure of three");
    let stored = ports
        .webhooks
        .get(ana.id(), wanted.id())
        .await
        .expect("hook");
    assert_eq!((stored.failure_count(), stored.active()), (1, true));
    let fallback = out.claim(at(27), at(60), 10).await.expect("claim");
    assert_eq!(fallback.len(), 1);
    let mail = &fallback[0].item;
    assert_eq!(
        (mail.channel, mail.target, mail.message, mail.fallback),
        (
            Channel::Email,
            ana.id().as_uuid(),
            uuid::Uuid::from_u128(1),
            true
        )
    );
    assert_eq!(mail.alarm, Some((one.id(), t.trigger.occurrence)));
    out.finish(
        at(28),
        vec![(
            fallback[0].token,
            SendResult::Delivered {
                code: None,
                latency_ms: 2,
            },
        )],
        3,
    )
    .await
    .expect("mail delivered");

    // Redelivery of the dead-lettered row, scoped to its owner.
    is(
        out.redeliver(
            bob.id(),
            Channel::Webhook,
            wanted.id().as_uuid(),
            uuid::Uuid::from_u128(1),
            at(30),
        )
        .await,
        not_found,
        "another owner's delivery",
    );
    is(
        out.redeliver(
            ana.id(),
            Channel::Webhook,
            wanted.id().as_uuid(),
            uuid::Uuid::from_u128(9),
            at(30),
        )
        .await,
        not_found,
        "an unknown delivery",
    );
    let again = out
        .redeliver(
            ana.id(),
            Channel::Webhook,
            wanted.id().as_uuid(),
            uuid::Uuid::from_u128(1),
            at(30),
        )
        .await
        .expect("redeliver");
    assert_eq!(
        (again.status, again.attempts, again.due),
        (SendStatus::Pending, 0, at(30))
    );
    is(
        out.redeliver(
            ana.id(),
            Channel::Webhook,
            wanted.id().as_uuid(),
            uuid::Uuid::from_u128(1),
            at(30),
        )
        .await,
        conflict,
        "a pending delivery",
    );
    let retried = out.claim(at(30), at(60), 10).await.expect("claim");
    assert_eq!(retried.len(), 1);
    let disabled = out
        .finish(
            at(31),
            vec![(
                retried[0].token,
                SendResult::Dead {
                    code: None,
                    error: "timed out".to_owned(),
                    latency_ms: 10_000,
                },
            )],
            2,
        )
        .await
        .expect("finish dead again");
    assert_eq!(
        disabled.disabled,
        vec![wanted.id()],
        "the second consecutive failure disables"
    );
    assert_eq!(
        disabled.fallbacks, 0,
        "the occurrence already has its email"
    );
    let stored = ports
        .webhooks
        .get(ana.id(), wanted.id())
        .await
        .expect("hook");
    assert_eq!((stored.failure_count(), stored.active()), (2, false));
    let notice = out.claim(at(31), at(60), 10).await.expect("claim");
    assert_eq!(notice.len(), 1);
    assert_eq!(
        (
            notice[0].item.channel,
            notice[0].item.topic,
            notice[0].item.target,
            notice[0].item.owner
        ),
        (
            Channel::Email,
            SendTopic::WebhookDisabled,
            wanted.id().as_uuid(),
            ana.id()
        ),
        "the owner's notice names the registration"
    );
    assert_eq!(
        out.list(ana.id(), Channel::Webhook, wanted.id().as_uuid(), None, 10)
            .await
            .expect("list")
            .len(),
        1,
        "the notice is not one of the registration's deliveries"
    );
    out.finish(
        at(32),
        vec![(
            notice[0].token,
            SendResult::Delivered {
                code: None,
                latency_ms: 2,
            },
        )],
        2,
    )
    .await
    .expect("notice sent");

    // Test pings, listing newest first with a cursor, owner scoping.
    for n in 1..=3u8 {
        out.enqueue(OutboxItem::pending(
            uuid::Uuid::from_u128(100 + u128::from(n)),
            bobs.id().as_uuid(),
            Channel::Webhook,
            bob.id(),
            None,
            SendTopic::Test,
            at(100 + i64::from(n)),
        ))
        .await
        .expect("enqueue");
    }
    let page = out
        .list(bob.id(), Channel::Webhook, bobs.id().as_uuid(), None, 2)
        .await
        .expect("list");
    let ids: Vec<u128> = page.iter().map(|i| i.message.as_u128()).collect();
    assert_eq!(ids, vec![103, 102], "newest first");
    let rest = out
        .list(
            bob.id(),
            Channel::Webhook,
            bobs.id().as_uuid(),
            Some(uuid::Uuid::from_u128(102)),
            2,
        )
        .await
        .expect("list");
    assert_eq!(
        rest.iter().map(|i| i.message.as_u128()).collect::<Vec<_>>(),
        vec![101]
    );
    assert!(
        out.list(ana.id(), Channel::Webhook, bobs.id().as_uuid(), None, 10)
            .await
            .expect("list")
            .is_empty(),
        "another owner's registration lists nothing"
    );
    let test_claim = out.claim(at(103), at(200), 10).await.expect("claim");
    assert_eq!(test_claim.len(), 3);
    let done = out
        .finish(
            at(104),
            test_claim
                .iter()
                .map(|c| {
                    (
                        c.token,
                        SendResult::Dead {
                            code: Some(500),
                            error: "HTTP 500".to_owned(),
                            latency_ms: 1,
                        },
                    )
                })
                .collect(),
            1,
        )
        .await
        .expect("finish tests");
    assert!(
        done.disabled.is_empty() && done.fallbacks == 0,
        "failed test pings neither count against the registration nor fall back"
    );

    // Each ring is judged on its own: an escalation whose only external
    // row dies falls back even though an earlier ring of the same
    // occurrence was delivered; and a registration that also succeeded in
    // the same batch is not "failing in a row".
    let two = fixtures::alarm(&ports, bob.id(), "Two", None).await;
    let occurrence = alarm_domain::trigger::OccurrenceRef {
        at: at(500),
        local: at(500)
            .to_zoned(alarm_domain::jiff::tz::TimeZone::UTC)
            .datetime(),
    };
    let ring = |n: u128, created: i64, event| {
        OutboxItem::pending(
            uuid::Uuid::from_u128(n),
            bobs.id().as_uuid(),
            Channel::Webhook,
            bob.id(),
            Some((two.id(), occurrence)),
            SendTopic::Alarm(event),
            at(created),
        )
    };
    out.enqueue(ring(200, 500, WebhookEvent::Triggered))
        .await
        .expect("enqueue first ring");
    let first_ring = out.claim(at(500), at(600), 10).await.expect("claim");
    assert_eq!(first_ring.len(), 1);
    out.finish(
        at(501),
        vec![(
            first_ring[0].token,
            SendResult::Delivered {
                code: Some(200),
                latency_ms: 1,
            },
        )],
        1,
    )
    .await
    .expect("first ring delivered");
    let dead_ring = |c: &alarm_domain::ports::ClaimedSend| {
        (
            c.token,
            SendResult::Dead {
                code: Some(500),
                error: "HTTP 500".to_owned(),
                latency_ms: 1,
            },
        )
    };
    out.enqueue(ring(201, 800, WebhookEvent::Escalated))
        .await
        .expect("enqueue escalation");
    let escalation = out.claim(at(800), at(900), 10).await.expect("claim");
    assert_eq!(escalation.len(), 1);
    let report = out
        .finish(at(801), vec![dead_ring(&escalation[0])], 5)
        .await
        .expect("finish escalation");
    assert_eq!(
        report.fallbacks, 1,
        "the escalation's own ring failed: fallback, whatever the first ring did"
    );
    let mail = out.claim(at(801), at(900), 10).await.expect("claim");
    assert_eq!(
        mail.iter()
            .map(|c| (c.item.channel, c.item.message.as_u128()))
            .collect::<Vec<_>>(),
        [(Channel::Email, 201)]
    );
    out.finish(
        at(802),
        vec![(
            mail[0].token,
            SendResult::Delivered {
                code: None,
                latency_ms: 1,
            },
        )],
        5,
    )
    .await
    .expect("mail sent");
    out.enqueue(ring(202, 900, WebhookEvent::Triggered))
        .await
        .expect("enqueue ring");
    out.enqueue(ring(203, 901, WebhookEvent::Triggered))
        .await
        .expect("enqueue ring");
    let batch = out.claim(at(901), at(1000), 10).await.expect("claim");
    assert_eq!(batch.len(), 2);
    let results = batch
        .iter()
        .map(|c| {
            if c.item.message.as_u128() == 203 {
                dead_ring(c)
            } else {
                (
                    c.token,
                    SendResult::Delivered {
                        code: Some(200),
                        latency_ms: 1,
                    },
                )
            }
        })
        .collect();
    let mixed = out.finish(at(902), results, 1).await.expect("finish");
    assert!(
        mixed.disabled.is_empty(),
        "a success in the same batch keeps the registration enabled (threshold 1)"
    );
    let hook_now = ports.webhooks.get(bob.id(), bobs.id()).await.expect("hook");
    assert_eq!((hook_now.active(), hook_now.failure_count()), (true, 0));

    // Ana's only registration for alarm.triggered is disabled now: her
    // next webhook ring falls back to e-mail at once.
    fixtures::alarm(&ports, ana.id(), "Three", Some(at(2000))).await;
    let third = ports
        .queue
        .claim(at(2000), 10, SignedDuration::from_secs(30))
        .await
        .expect("claim third");
    assert_eq!(third.len(), 1);
    let t3 = &third[0];
    ports
        .queue
        .complete_many(vec![(
            t3.token,
            FireOutcome {
                events: Vec::new(),
                deliveries: vec![Delivery {
                    id: uuid::Uuid::from_u128(300),
                    owner: ana.id(),
                    alarm: t3.trigger.alarm,
                    occurrence: t3.trigger.occurrence,
                    kind: TriggerKind::Fire,
                    channel: Channel::Webhook,
                    created_at: at(2000),
                }],
                follow_up: None,
                next: None,
                ringing: RingingChange::None,
            },
        )])
        .await
        .expect("complete third");
    let now_due = out.claim(at(2000), at(2100), 10).await.expect("claim");
    assert_eq!(
        now_due
            .iter()
            .filter(|c| c.item.owner == ana.id())
            .map(|c| (c.item.channel, c.item.message.as_u128(), c.item.fallback))
            .collect::<Vec<_>>(),
        [(Channel::Email, 300, true)],
        "no webhook row (all disabled), an e-mail fallback instead"
    );

    let mut loaded: Vec<WebhookId> = out
        .webhooks(vec![bobs.id(), WebhookId::generate(), wanted.id()])
        .await
        .expect("webhooks")
        .iter()
        .map(WebhookRegistration::id)
        .collect();
    loaded.sort();
    let mut want = vec![bobs.id(), wanted.id()];
    want.sort();
    assert_eq!(
        loaded, want,
        "loads any owner's registrations, skips unknown ids"
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports: outbox)
}
