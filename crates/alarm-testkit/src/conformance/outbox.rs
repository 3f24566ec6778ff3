//! Conformance checks of [`alarm_domain::ports::Outbox`].

use super::*;

use alarm_domain::model::{Alarm, Channel};
use alarm_domain::ports::{
    ClaimedSend, FinishReport, OutboxCounts, OutboxItem, SendLease, SendResult, SendStatus,
    SendTopic,
};
use alarm_domain::trigger::OccurrenceRef;

pub(super) async fn hook(
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
        op: WebhookOp::Create(
            hook.clone(),
            alarm_domain::limits::Quota::unlimited("webhooks"),
        ),
        audit: audit(ports, Some(owner), "webhook.create", hook.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.webhooks.commit(change).await.expect("create hook");
    hook
}

/// The id of the `triggered` event numbered `n`: the message id of the
/// rows its fire fans out to.
fn message(n: u64) -> uuid::Uuid {
    alarm_domain::ids::EventId::from_parts(n, [0; 10]).as_uuid()
}

/// The `triggered` event a fire of `trigger` makes at `now`, numbered `n`.
pub(super) fn triggered(
    n: u64,
    trigger: &alarm_domain::trigger::Trigger,
    now: alarm_domain::jiff::Timestamp,
) -> alarm_domain::model::AlarmEvent {
    alarm_domain::model::AlarmEvent {
        id: alarm_domain::ids::EventId::from_parts(n, [0; 10]),
        alarm: trigger.alarm,
        owner: trigger.owner,
        kind: AlarmEventKind::Triggered,
        at: now,
        occurrence: Some(trigger.occurrence.at),
        detail: None,
        data: Some(format!("{{\"alarm_id\":\"{}\"}}", trigger.alarm)),
    }
}

fn delivered(c: &ClaimedSend, code: Option<u16>) -> (ClaimedSend, SendResult) {
    (
        c.clone(),
        SendResult::Delivered {
            code,
            latency_ms: 1,
        },
    )
}

fn dead_500(c: &ClaimedSend) -> (ClaimedSend, SendResult) {
    (
        c.clone(),
        SendResult::Dead {
            code: Some(500),
            error: "HTTP 500".to_owned(),
            latency_ms: 1,
        },
    )
}

/// Ana's alarm "One" fired at `at(10)` with its `triggered` event (message
/// [`message`]`(1)`), a webhook delivery and an in-app one. Ana has an active registration for
/// `alarm.triggered` (`wanted`), one for `alarm.escalated` only and an
/// inactive one for `alarm.triggered`; Bob has an active one for
/// `alarm.triggered` (`bobs`).
struct Fired {
    ana: User,
    bob: User,
    one: Alarm,
    wanted: WebhookRegistration,
    bobs: WebhookRegistration,
    occurrence: OccurrenceRef,
}

async fn fired(ports: &Ports) -> Fired {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let bob = fixtures::user(ports, "bob@example.com").await;
    let one = fixtures::alarm(ports, ana.id(), "One", Some(at(10))).await;
    let wanted = hook(ports, ana.id(), &[WebhookEvent::Triggered], true).await;
    hook(ports, ana.id(), &[WebhookEvent::Escalated], true).await;
    hook(ports, ana.id(), &[WebhookEvent::Triggered], false).await;
    let bobs = hook(ports, bob.id(), &[WebhookEvent::Triggered], true).await;
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
        events: vec![triggered(1, &t.trigger, at(10))],
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
    Fired {
        ana,
        bob,
        one,
        wanted,
        bobs,
        occurrence: t.trigger.occurrence,
    }
}

/// The rows to registration `hook`, as its owner lists them, newest first
/// (at most 10).
async fn rows_to(ports: &Ports, hook: &WebhookRegistration) -> Vec<OutboxItem> {
    ports
        .outbox
        .list(
            hook.owner(),
            Channel::Webhook,
            hook.id().as_uuid(),
            None,
            10,
        )
        .await
        .expect("list")
}

/// The fired webhook row claimed at `at(10)` and retried (counted, HTTP 503), due again at `at(20)`.
async fn retried(ports: &Ports) -> (Fired, FinishReport) {
    let f = fired(ports).await;
    let first = ports.outbox.claim(at(10), at(40), 10).await.expect("claim");
    assert_eq!(first.len(), 1);
    let report = ports
        .outbox
        .finish(
            at(11),
            vec![(
                first[0].clone(),
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
    (f, report)
}

/// The retried row claimed at `at(20)` by a slow sender (lease until
/// `at(25)`), then taken over at `at(25)` (lease until `at(60)`).
async fn reclaimed(ports: &Ports) -> (Fired, ClaimedSend, ClaimedSend) {
    let (f, _) = retried(ports).await;
    let slow = ports.outbox.claim(at(20), at(25), 10).await.expect("claim");
    assert_eq!(slow.len(), 1, "due again at the retry time");
    let taken = ports.outbox.claim(at(25), at(60), 10).await.expect("claim");
    assert_eq!(
        taken.len(),
        1,
        "a row whose lease ran out is claimable again"
    );
    (f, slow[0].clone(), taken[0].clone())
}

/// The slow sender's late "delivered" (fenced), then the taking sender's
/// "dead" (HTTP 410) at `at(27)`, threshold 3.
async fn dead_lettered(ports: &Ports) -> (Fired, FinishReport) {
    let (f, slow, taken) = reclaimed(ports).await;
    ports
        .outbox
        .finish(at(26), vec![delivered(&slow, Some(200))], 3)
        .await
        .expect("late finish");
    let dead = ports
        .outbox
        .finish(
            at(27),
            vec![(
                taken.clone(),
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
    (f, dead)
}

/// The dead-lettered row's fallback email claimed and delivered at `at(28)`.
async fn mailed(ports: &Ports) -> Fired {
    let (f, _) = dead_lettered(ports).await;
    let fallback = ports.outbox.claim(at(27), at(60), 10).await.expect("claim");
    assert_eq!(fallback.len(), 1);
    ports
        .outbox
        .finish(at(28), vec![delivered(&fallback[0], None)], 3)
        .await
        .expect("mail delivered");
    f
}

/// `ana`'s redelivery of webhook message `n` of `wanted` at `at(30)`.
async fn redeliver(
    ports: &Ports,
    f: &Fired,
    owner: UserId,
    n: u64,
) -> Result<OutboxItem, StoreError> {
    ports
        .outbox
        .redeliver(
            owner,
            Channel::Webhook,
            f.wanted.id().as_uuid(),
            message(n),
            at(30),
        )
        .await
}

/// The mailed row redelivered at `at(30)`, claimed, and dead again (timed out) at `at(31)`, threshold 2.
async fn disabled(ports: &Ports) -> (Fired, FinishReport) {
    let f = mailed(ports).await;
    redeliver(ports, &f, f.ana.id(), 1)
        .await
        .expect("redeliver");
    let retried = ports.outbox.claim(at(30), at(60), 10).await.expect("claim");
    assert_eq!(retried.len(), 1);
    let report = ports
        .outbox
        .finish(
            at(31),
            vec![(
                retried[0].clone(),
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
    (f, report)
}

/// A fire queues one row: the active registration subscribed to `alarm.triggered`, pending.
async fn a_fire_fans_out_to_subscribed_active_registrations(new_ports: Fresh) {
    let ports = new_ports().await;
    let f = fired(&ports).await;
    let first = ports.outbox.claim(at(10), at(40), 10).await.expect("claim");
    assert_eq!(
        first.len(),
        1,
        "one row: the active registration subscribed to alarm.triggered (not the escalation-only one, the inactive one, bob's, or in-app)"
    );
    let row = &first[0].item;
    assert_eq!(
        (row.message, row.target, row.channel, row.owner),
        (
            message(1),
            f.wanted.id().as_uuid(),
            Channel::Webhook,
            f.ana.id()
        )
    );
    assert_eq!(row.topic, SendTopic::Alarm(WebhookEvent::Triggered));
    assert_eq!(row.alarm, Some((f.one.id(), f.occurrence)));
    assert_eq!((row.status, row.attempts), (SendStatus::Pending, 0));
}

/// Nothing is due before the fire's time, and a leased row is not handed out twice.
async fn nothing_is_due_early_and_a_leased_row_is_not_claimed_twice(new_ports: Fresh) {
    let ports = new_ports().await;
    fired(&ports).await;
    let out = &ports.outbox;
    assert!(
        out.claim(at(9), at(40), 10)
            .await
            .expect("claim")
            .is_empty(),
        "nothing is due before the fire's time"
    );
    assert_eq!(out.claim(at(10), at(40), 10).await.expect("claim").len(), 1);
    assert!(
        out.claim(at(11), at(40), 10)
            .await
            .expect("claim")
            .is_empty(),
        "a leased row is not handed out twice"
    );
}

/// A counted retry is recorded (attempt, code, due) and the row is due again at the retry time, not before.
async fn a_counted_retry_is_recorded_and_due_again_at_its_time(new_ports: Fresh) {
    let ports = new_ports().await;
    let (f, report) = retried(&ports).await;
    let out = &ports.outbox;
    assert!(report.lost.is_empty() && report.disabled.is_empty() && report.fallbacks == 0);
    let listed = rows_to(&ports, &f.wanted).await;
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
}

/// A row whose lease ran out is claimable again, and the first sender's finish is fenced.
async fn a_late_finish_after_a_take_over_is_fenced(new_ports: Fresh) {
    let ports = new_ports().await;
    let (_, slow, _) = reclaimed(&ports).await;
    let late = ports
        .outbox
        .finish(at(26), vec![delivered(&slow, Some(200))], 3)
        .await
        .expect("late finish");
    assert_eq!(
        late.lost,
        vec![slow.token],
        "the first sender's finish is fenced"
    );
}

/// One lease given twice in one finish records its row once: the second
/// is reported lost, and the row counts one attempt.
async fn a_lease_given_twice_is_recorded_once(new_ports: Fresh) {
    let ports = new_ports().await;
    let f = fired(&ports).await;
    let out = &ports.outbox;
    let claimed = out.claim(at(10), at(40), 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let report = out
        .finish(
            at(11),
            vec![dead_500(&claimed[0]), delivered(&claimed[0], Some(200))],
            3,
        )
        .await
        .expect("finish");
    assert_eq!(report.lost, vec![claimed[0].token], "the second is lost");
    let listed = rows_to(&ports, &f.wanted).await;
    assert_eq!(
        (listed[0].status, listed[0].attempts, listed[0].last_code),
        (SendStatus::Dead, 1, Some(500)),
        "the first result is the one recorded"
    );
}

/// A lease is its row's key and its token together: the current token
/// with another key, or the key with a stale token, confirms nothing and
/// records nothing; nor does the current lease given with another row
/// than its own, and the row's holder still records it, in the same
/// finish as the refused result or later.
async fn a_lease_needs_its_key_and_its_token(new_ports: Fresh) {
    let ports = new_ports().await;
    let (f, slow, taken) = reclaimed(&ports).await;
    let elsewhere = SendLease {
        target: uuid::Uuid::from_u128(0xdead),
        ..taken.token
    };
    let stale = SendLease {
        token: slow.token.token,
        ..taken.token
    };
    let confirmed = ports
        .outbox
        .confirm(vec![elsewhere, stale, taken.token])
        .await
        .expect("confirm");
    assert_eq!(
        confirmed.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        vec![taken.token],
        "only the lease that holds the row is confirmed"
    );
    let forged = ports
        .outbox
        .finish(
            at(26),
            vec![
                (
                    ClaimedSend {
                        token: elsewhere,
                        ..taken.clone()
                    },
                    delivered(&taken, Some(200)).1,
                ),
                (
                    ClaimedSend {
                        token: stale,
                        ..taken.clone()
                    },
                    delivered(&taken, Some(200)).1,
                ),
            ],
            3,
        )
        .await
        .expect("forged finish");
    assert_eq!(forged.lost, vec![elsewhere, stale]);
    let pending = rows_to(&ports, &f.wanted).await;
    assert_eq!(pending[0].status, SendStatus::Pending, "nothing recorded");
    let held = ports
        .outbox
        .finish(
            at(27),
            vec![
                // The holder's lease with another row than its own, then
                // with its own.
                (
                    ClaimedSend {
                        item: OutboxItem {
                            target: uuid::Uuid::from_u128(0xbeef),
                            ..taken.item.clone()
                        },
                        ..taken.clone()
                    },
                    dead_500(&taken).1,
                ),
                delivered(&taken, Some(200)),
            ],
            3,
        )
        .await
        .expect("finish");
    assert_eq!(held.lost, vec![taken.token], "the refused result only");
    let recorded = rows_to(&ports, &f.wanted).await;
    assert_eq!(
        (recorded[0].status, recorded[0].last_code),
        (SendStatus::Delivered, Some(200)),
        "the holder's own row, with its own result"
    );
}

/// A dead row that was the alarm's only external row queues a fallback
/// email; one failure of three counts but does not disable.
async fn a_dead_only_external_row_falls_back_to_email(new_ports: Fresh) {
    let ports = new_ports().await;
    let (f, dead) = dead_lettered(&ports).await;
    assert_eq!(
        dead.fallbacks, 1,
        "the alarm's only external row failed and it has no email row: a fallback email is queued"
    );
    assert!(dead.disabled.is_empty(), "one failure of three");
    let stored = ports
        .webhooks
        .get(f.ana.id(), f.wanted.id())
        .await
        .expect("hook");
    assert_eq!((stored.failure_count(), stored.active()), (1, true));
    let fallback = ports.outbox.claim(at(27), at(60), 10).await.expect("claim");
    assert_eq!(fallback.len(), 1);
    let mail = &fallback[0].item;
    assert_eq!(
        (mail.channel, mail.target, mail.message, mail.fallback),
        (Channel::Email, f.ana.id().as_uuid(), message(1), true)
    );
    assert_eq!(mail.alarm, Some((f.one.id(), f.occurrence)));
}

/// `counts` tells the pending rows (leased ones too) from the dead
/// letters, over every owner; delivered rows are neither.
async fn counts_tell_pending_rows_from_dead_letters(new_ports: Fresh) {
    let ports = new_ports().await;
    assert_eq!(
        ports.outbox.counts().await.expect("counts"),
        OutboxCounts::default()
    );
    let (_, dead) = dead_lettered(&ports).await;
    // One dead webhook row, and its fallback e-mail pending.
    assert_eq!(dead.fallbacks, 1);
    assert_eq!(
        ports.outbox.counts().await.expect("counts"),
        OutboxCounts {
            pending: 1,
            dead: 1
        }
    );
    let claimed = ports.outbox.claim(at(28), at(60), 10).await.expect("claim");
    assert_eq!(
        ports.outbox.counts().await.expect("counts").pending,
        1,
        "a leased row still waits"
    );
    ports
        .outbox
        .finish(at(29), vec![delivered(&claimed[0], Some(250))], 3)
        .await
        .expect("finish");
    assert_eq!(
        ports.outbox.counts().await.expect("counts"),
        OutboxCounts {
            pending: 0,
            dead: 1
        }
    );
}

/// Redelivery of a dead-lettered row is scoped to its owner: it resets the
/// row to pending, and a pending row cannot be redelivered (a refusal that
/// leaves the row free for the next claim).
async fn redelivery_resets_only_the_owners_dead_row(new_ports: Fresh) {
    let ports = new_ports().await;
    let f = mailed(&ports).await;
    is(
        redeliver(&ports, &f, f.bob.id(), 1).await,
        not_found,
        "another owner's delivery",
    );
    is(
        redeliver(&ports, &f, f.ana.id(), 9).await,
        not_found,
        "an unknown delivery",
    );
    let again = redeliver(&ports, &f, f.ana.id(), 1)
        .await
        .expect("redeliver");
    assert_eq!(
        (again.status, again.attempts, again.due),
        (SendStatus::Pending, 0, at(30))
    );
    is(
        redeliver(&ports, &f, f.ana.id(), 1).await,
        conflict,
        "a pending delivery",
    );
    // The refusal holds nothing: its row is claimable at once (a store
    // that left the refused transaction's row lock to a deferred rollback
    // made a claimer skip the row).
    let claimed = ports.outbox.claim(at(30), at(60), 10).await.expect("claim");
    assert_eq!(
        claimed.iter().map(|c| c.item.message).collect::<Vec<_>>(),
        vec![again.message],
        "the refused row is claimed right after the refusal"
    );
}

/// Consecutive dead rows disable the registration on reaching the threshold
/// (no second fallback: the occurrence already has its email).
async fn dead_row_disables_registration_after_threshold(new_ports: Fresh) {
    let ports = new_ports().await;
    let (f, disabled) = disabled(&ports).await;
    assert_eq!(
        disabled.disabled,
        vec![f.wanted.id()],
        "the second consecutive failure disables"
    );
    assert_eq!(
        disabled.fallbacks, 0,
        "the occurrence already has its email"
    );
    let stored = ports
        .webhooks
        .get(f.ana.id(), f.wanted.id())
        .await
        .expect("hook");
    assert_eq!((stored.failure_count(), stored.active()), (2, false));
}

/// Disabling queues the owner a notice email naming the registration, not one of its deliveries.
async fn disabling_emails_the_owner_a_notice(new_ports: Fresh) {
    let ports = new_ports().await;
    let (f, _) = disabled(&ports).await;
    let out = &ports.outbox;
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
            f.wanted.id().as_uuid(),
            f.ana.id()
        ),
        "the owner's notice names the registration"
    );
    assert_eq!(
        out.list(
            f.ana.id(),
            Channel::Webhook,
            f.wanted.id().as_uuid(),
            None,
            10
        )
        .await
        .expect("list")
        .len(),
        1,
        "the notice is not one of the registration's deliveries"
    );
}

/// Ana, and Bob with an active registration for `alarm.triggered`.
async fn bob_with_hook(ports: &Ports) -> (User, User, WebhookRegistration) {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let bob = fixtures::user(ports, "bob@example.com").await;
    let bobs = hook(ports, bob.id(), &[WebhookEvent::Triggered], true).await;
    (ana, bob, bobs)
}

/// Three test pings (messages 101..=103) to Bob's registration.
async fn three_test_pings(ports: &Ports, bob: &User, bobs: &WebhookRegistration) {
    for n in 1..=3u8 {
        ports
            .outbox
            .enqueue(OutboxItem::pending(
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
}

/// A registration's rows are listed newest first with a cursor, to its owner only.
async fn listing_is_newest_first_with_a_cursor_per_owner(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, bob, bobs) = bob_with_hook(&ports).await;
    three_test_pings(&ports, &bob, &bobs).await;
    let out = &ports.outbox;
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
}

/// Failed test pings neither count against the registration nor fall back.
async fn failed_test_pings_neither_count_nor_fall_back(new_ports: Fresh) {
    let ports = new_ports().await;
    let (_, bob, bobs) = bob_with_hook(&ports).await;
    three_test_pings(&ports, &bob, &bobs).await;
    let out = &ports.outbox;
    let test_claim = out.claim(at(103), at(200), 10).await.expect("claim");
    assert_eq!(test_claim.len(), 3);
    let done = out
        .finish(at(104), test_claim.iter().map(dead_500).collect(), 1)
        .await
        .expect("finish tests");
    assert!(
        done.disabled.is_empty() && done.fallbacks == 0,
        "failed test pings neither count against the registration nor fall back"
    );
}

/// Bob's registration and his alarm "Two" with an occurrence at `at(500)`.
struct BobRings {
    bob: User,
    bobs: WebhookRegistration,
    two: Alarm,
    occurrence: OccurrenceRef,
}

impl BobRings {
    /// Webhook message `n` of the occurrence, created (and due) at `at(created)`.
    fn ring(&self, n: u128, created: i64, event: WebhookEvent) -> OutboxItem {
        OutboxItem::pending(
            uuid::Uuid::from_u128(n),
            self.bobs.id().as_uuid(),
            Channel::Webhook,
            self.bob.id(),
            Some((self.two.id(), self.occurrence)),
            SendTopic::Alarm(event),
            at(created),
        )
    }
}

/// Bob, his registration and his alarm "Two" (occurrence at `at(500)`).
async fn bob_rings(ports: &Ports) -> BobRings {
    let (_, bob, bobs) = bob_with_hook(ports).await;
    let two = fixtures::alarm(ports, bob.id(), "Two", None).await;
    let occurrence = OccurrenceRef {
        at: at(500),
        local: at(500)
            .to_zoned(alarm_domain::jiff::tz::TimeZone::UTC)
            .datetime(),
    };
    BobRings {
        bob,
        bobs,
        two,
        occurrence,
    }
}

/// Bob's occurrence whose first ring (message 200) was delivered at
/// `at(501)`, and whose escalation (message 201) died at `at(801)`,
/// threshold 5.
async fn escalation_died(ports: &Ports) -> (BobRings, FinishReport) {
    let rings = bob_rings(ports).await;
    let out = &ports.outbox;
    out.enqueue(rings.ring(200, 500, WebhookEvent::Triggered))
        .await
        .expect("enqueue first ring");
    let first_ring = out.claim(at(500), at(600), 10).await.expect("claim");
    assert_eq!(first_ring.len(), 1);
    out.finish(at(501), vec![delivered(&first_ring[0], Some(200))], 1)
        .await
        .expect("first ring delivered");
    out.enqueue(rings.ring(201, 800, WebhookEvent::Escalated))
        .await
        .expect("enqueue escalation");
    let escalation = out.claim(at(800), at(900), 10).await.expect("claim");
    assert_eq!(escalation.len(), 1);
    let report = out
        .finish(at(801), vec![dead_500(&escalation[0])], 5)
        .await
        .expect("finish escalation");
    (rings, report)
}

/// Each ring is judged on its own: an escalation whose only external row
/// dies falls back even though an earlier ring of the same occurrence was delivered.
async fn each_ring_is_judged_on_its_own_for_the_fallback(new_ports: Fresh) {
    let ports = new_ports().await;
    let (_, report) = escalation_died(&ports).await;
    assert_eq!(
        report.fallbacks, 1,
        "the escalation's own ring failed: fallback, whatever the first ring did"
    );
    let mail = ports
        .outbox
        .claim(at(801), at(900), 10)
        .await
        .expect("claim");
    assert_eq!(
        mail.iter()
            .map(|c| (c.item.channel, c.item.message.as_u128()))
            .collect::<Vec<_>>(),
        [(Channel::Email, 201)]
    );
}

/// A registration that also succeeded in the same batch is not "failing in a row".
async fn a_success_in_the_same_batch_keeps_the_registration_enabled(new_ports: Fresh) {
    let ports = new_ports().await;
    let (rings, _) = escalation_died(&ports).await;
    let out = &ports.outbox;
    let mail = out.claim(at(801), at(900), 10).await.expect("claim");
    assert_eq!(mail.len(), 1);
    out.finish(at(802), vec![delivered(&mail[0], None)], 5)
        .await
        .expect("mail sent");
    for (n, created) in [(202, 900), (203, 901)] {
        out.enqueue(rings.ring(n, created, WebhookEvent::Triggered))
            .await
            .expect("enqueue ring");
    }
    let batch = out.claim(at(901), at(1000), 10).await.expect("claim");
    assert_eq!(batch.len(), 2);
    let results = batch
        .iter()
        .map(|c| {
            if c.item.message.as_u128() == 203 {
                dead_500(c)
            } else {
                delivered(c, Some(200))
            }
        })
        .collect();
    let mixed = out.finish(at(902), results, 1).await.expect("finish");
    assert!(
        mixed.disabled.is_empty(),
        "a success in the same batch keeps the registration enabled (threshold 1)"
    );
    let hook_now = ports
        .webhooks
        .get(rings.bob.id(), rings.bobs.id())
        .await
        .expect("hook");
    assert_eq!((hook_now.active(), hook_now.failure_count()), (true, 0));
}

/// A batch of successes alone resets a failing registration's count,
/// and leaves a healthy one as it is; either way its rows are recorded.
async fn a_batch_of_successes_resets_a_failing_count(new_ports: Fresh) {
    let ports = new_ports().await;
    let (rings, _) = escalation_died(&ports).await;
    let out = &ports.outbox;
    let count = async || {
        let stored = ports
            .webhooks
            .get(rings.bob.id(), rings.bobs.id())
            .await
            .expect("hook");
        (stored.active(), stored.failure_count())
    };
    assert_eq!(count().await, (true, 1), "the escalation's death counted");
    let mail = out.claim(at(801), at(900), 10).await.expect("claim");
    out.finish(
        at(802),
        mail.iter().map(|m| delivered(m, None)).collect(),
        5,
    )
    .await
    .expect("mail sent");
    for (n, created) in [(202, 900), (203, 950)] {
        out.enqueue(rings.ring(n, created, WebhookEvent::Triggered))
            .await
            .expect("enqueue ring");
        let ring = out
            .claim(at(created), at(created + 100), 10)
            .await
            .expect("claim");
        assert_eq!(ring.len(), 1);
        let report = out
            .finish(at(created + 1), vec![delivered(&ring[0], Some(200))], 5)
            .await
            .expect("finish");
        assert_eq!(report, FinishReport::default(), "recorded, nothing else");
        assert_eq!(count().await, (true, 0), "reset by a success, then left");
    }
    let listed = rows_to(&ports, &rings.bobs).await;
    let delivered_rings: Vec<u128> = listed
        .iter()
        .filter(|i| i.status == SendStatus::Delivered)
        .map(|i| i.message.as_u128())
        .collect();
    assert_eq!(delivered_rings, [203, 202, 200], "newest first");
}

/// In a batch of successes, a lease taken over meanwhile is reported
/// lost and its row left to its new holder; the others are recorded.
async fn a_batch_of_successes_reports_only_its_lost_leases(new_ports: Fresh) {
    let ports = new_ports().await;
    let rings = bob_rings(&ports).await;
    let out = &ports.outbox;
    for n in [210, 211] {
        out.enqueue(rings.ring(n, 900, WebhookEvent::Triggered))
            .await
            .expect("enqueue ring");
    }
    let first = out.claim(at(900), at(905), 10).await.expect("claim");
    assert_eq!(first.len(), 2);
    let taken = out.claim(at(906), at(960), 1).await.expect("take over");
    assert_eq!(taken.len(), 1, "a lease that ran out is claimable again");
    let report = out
        .finish(
            at(907),
            first.iter().map(|c| delivered(c, Some(200))).collect(),
            5,
        )
        .await
        .expect("finish");
    let (lost, kept): (Vec<&ClaimedSend>, Vec<&ClaimedSend>) = first
        .iter()
        .partition(|c| c.item.message == taken[0].item.message);
    assert_eq!(
        report,
        FinishReport {
            lost: lost.iter().map(|c| c.token).collect(),
            ..FinishReport::default()
        },
        "only the lease taken over is lost"
    );
    let listed = rows_to(&ports, &rings.bobs).await;
    let status = |c: &ClaimedSend| {
        listed
            .iter()
            .find(|i| i.message == c.item.message)
            .map(|i| i.status)
    };
    assert_eq!(status(kept[0]), Some(SendStatus::Delivered));
    assert_eq!(
        status(lost[0]),
        Some(SendStatus::Pending),
        "left to its new holder"
    );
    let theirs = out
        .finish(at(908), vec![delivered(&taken[0], Some(200))], 5)
        .await
        .expect("the new holder's finish");
    assert_eq!(theirs, FinishReport::default(), "the new holder records it");
}

/// Once the owner's only registration for `alarm.triggered` is disabled,
/// their next webhook ring falls back to e-mail at once.
async fn with_every_registration_disabled_a_ring_falls_back_at_once(new_ports: Fresh) {
    let ports = new_ports().await;
    let (f, _) = disabled(&ports).await;
    let out = &ports.outbox;
    let notice = out.claim(at(31), at(60), 10).await.expect("claim");
    assert_eq!(notice.len(), 1);
    out.finish(at(32), vec![delivered(&notice[0], None)], 2)
        .await
        .expect("notice sent");
    fixtures::alarm(&ports, f.ana.id(), "Three", Some(at(2000))).await;
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
                events: vec![triggered(300, &t3.trigger, at(2000))],
                deliveries: vec![Delivery {
                    id: uuid::Uuid::from_u128(300),
                    owner: f.ana.id(),
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
            .filter(|c| c.item.owner == f.ana.id())
            .map(|c| (c.item.channel, c.item.message, c.item.fallback))
            .collect::<Vec<_>>(),
        [(Channel::Email, message(300), true)],
        "no webhook row (all disabled), an e-mail fallback instead"
    );
}

/// `webhooks` loads any owner's registrations and skips unknown ids.
async fn webhooks_loads_any_owners_registrations(new_ports: Fresh) {
    let ports = new_ports().await;
    let f = fired(&ports).await;
    let mut loaded: Vec<WebhookId> = ports
        .outbox
        .webhooks(vec![f.bobs.id(), WebhookId::generate(), f.wanted.id()])
        .await
        .expect("webhooks")
        .iter()
        .map(WebhookRegistration::id)
        .collect();
    loaded.sort();
    let mut want = vec![f.bobs.id(), f.wanted.id()];
    want.sort();
    assert_eq!(
        loaded, want,
        "loads any owner's registrations, skips unknown ids"
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        a_fire_fans_out_to_subscribed_active_registrations,
        nothing_is_due_early_and_a_leased_row_is_not_claimed_twice,
        a_counted_retry_is_recorded_and_due_again_at_its_time,
        a_late_finish_after_a_take_over_is_fenced,
        a_lease_needs_its_key_and_its_token,
        a_lease_given_twice_is_recorded_once,
        a_dead_only_external_row_falls_back_to_email,
        redelivery_resets_only_the_owners_dead_row,
        counts_tell_pending_rows_from_dead_letters,
        dead_row_disables_registration_after_threshold,
        disabling_emails_the_owner_a_notice,
        listing_is_newest_first_with_a_cursor_per_owner,
        failed_test_pings_neither_count_nor_fall_back,
        each_ring_is_judged_on_its_own_for_the_fallback,
        a_success_in_the_same_batch_keeps_the_registration_enabled,
        a_batch_of_successes_resets_a_failing_count,
        a_batch_of_successes_reports_only_its_lost_leases,
        with_every_registration_disabled_a_ring_falls_back_at_once,
        webhooks_loads_any_owners_registrations,
    )
}
