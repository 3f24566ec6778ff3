//! Conformance checks of prepared fires: every read path hides an outcome committed ahead of its instant until the store's clock reaches it, and an edit withdraws what is still ahead.
//!
//! Each check pins the store's clock (the database's clock on SQL) to a
//! [`crate::ManualClock`], commits a ring of Ana's alarm "One" prepared
//! 10 s before its instant `at(10)`, and looks through every port a reader
//! has: the alarm's events, the ringing list and one alarm's ringing
//! records, the deliveries, the webhook's deliveries and their retry, the
//! outbox's claim and counts, and the snooze and dismiss conflict checks.
//! A sender may claim the ring's rows ahead and hold them: the store
//! confirms them only from the instant, and an edit withdraws them.

use super::*;

use alarm_domain::jiff::Timestamp;
use alarm_domain::model::{Alarm, Channel};
use alarm_domain::ports::{Clock, SendResult};
use alarm_domain::trigger::OccurrenceRef;

use crate::ManualClock;

/// The instant the prepared ring takes effect.
fn instant() -> Timestamp {
    at(10)
}

struct Prepared {
    ports: Ports,
    clock: Arc<ManualClock>,
    ana: User,
    one: Alarm,
    hook: WebhookRegistration,
    occurrence: OccurrenceRef,
}

/// Ana, her alarm "One" due at `at(10)` and a webhook for its rings; the
/// ring committed at `at(0)` as the engine prepares it: events, deliveries
/// and ringing record at the instant, the first escalation after it.
async fn prepared(fresh: FreshAt) -> Prepared {
    let (p, claim) = claimed_ahead(fresh).await;
    let lost = p
        .ports
        .queue
        .complete_many(vec![(claim.token, ring_outcome(&p, &claim, &p.one))])
        .await
        .expect("commit the prepared ring");
    assert!(lost.is_empty(), "the prepared ring commits");
    p
}

/// The setting of [`prepared`], with the fire claimed at `at(0)` (within
/// the engine's window) but nothing committed yet.
async fn claimed_ahead(fresh: FreshAt) -> (Prepared, alarm_domain::trigger::Claimed) {
    let clock = Arc::new(ManualClock::new(at(0)));
    let ports = fresh(clock.clone() as Arc<dyn Clock>).await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let one = fixtures::alarm(&ports, ana.id(), "One", Some(instant())).await;
    let hook = super::outbox::hook(
        &ports,
        ana.id(),
        &[WebhookEvent::Triggered, WebhookEvent::RoutineStarted],
        true,
    )
    .await;
    let mut claimed = ports
        .queue
        .claim(instant(), 10, SignedDuration::from_secs(30))
        .await
        .expect("claim ahead");
    assert_eq!(claimed.len(), 1, "the fire is claimable within the window");
    let claim = claimed.remove(0);
    let p = Prepared {
        occurrence: claim.trigger.occurrence,
        ports,
        clock,
        ana,
        one,
        hook,
    };
    (p, claim)
}

/// The ring of `claim` as judged from `judged` (the alarm as loaded).
fn ring_outcome(
    p: &Prepared,
    claim: &alarm_domain::trigger::Claimed,
    judged: &Alarm,
) -> FireOutcome {
    let t = &claim.trigger;
    let delivery = |n: u128, channel| Delivery {
        id: uuid::Uuid::from_u128(n),
        owner: p.ana.id(),
        alarm: p.one.id(),
        occurrence: t.occurrence,
        kind: TriggerKind::Fire,
        channel,
        created_at: instant(),
    };
    // A routine's start: its outbox row carries no alarm, and must still
    // wait for the instant and go with the ring.
    let started = alarm_domain::model::AlarmEvent {
        kind: AlarmEventKind::RoutineStarted,
        ..super::outbox::triggered(2, t, instant())
    };
    FireOutcome {
        events: vec![super::outbox::triggered(1, t, instant()), started],
        deliveries: vec![delivery(1, Channel::Webhook), delivery(2, Channel::InApp)],
        follow_up: Some(fixtures::trigger(
            &p.one,
            t.occurrence.at,
            TriggerKind::Escalate(1),
        )),
        // A once alarm: nothing after this occurrence.
        next: Some(TriggerPlan::Reschedule {
            alarm: judged.id(),
            version: judged.version(),
            next: None,
        }),
        ringing: RingingChange::Upsert(Ringing {
            alarm: p.one.id(),
            owner: p.ana.id(),
            occurrence: t.occurrence,
            since: instant(),
            snoozes: 0,
            level: 0,
            snoozed: false,
        }),
    }
}

/// Renames Ana's alarm "One" at `when` (version 2), its plan firing at
/// `fire`, as the alarm service commits an edit.
async fn rename(p: &Prepared, when: Timestamp, fire: Timestamp, what: &str) {
    let mut draft = p.one.draft().clone();
    draft.name = alarm_domain::model::AlarmName::parse("Edited").expect("name");
    let v2 = p.one.revise(draft, when).expect("revise");
    p.ports
        .alarms
        .commit(super::alarms::update(
            &p.ports,
            &p.one,
            p.one.version(),
            &v2,
            fire,
        ))
        .await
        .expect(what);
}

/// What each read path shows of the prepared ring, by name.
async fn seen(p: &Prepared) -> Vec<(&'static str, bool)> {
    let ports = &p.ports;
    let events = ports
        .events
        .list(
            p.ana.id(),
            p.one.id(),
            PageRequest::new(None, 50).expect("limit"),
        )
        .await
        .expect("events");
    let triggered = events
        .items
        .iter()
        .any(|e| e.kind == AlarmEventKind::Triggered);
    let ringing = !ports
        .queue
        .ringing(p.ana.id(), p.one.id())
        .await
        .expect("ringing")
        .is_empty();
    let ringing_of = !ports
        .queue
        .ringing_of(p.ana.id())
        .await
        .expect("ringing_of")
        .is_empty();
    let deliveries = !ports
        .queue
        .deliveries(p.ana.id())
        .await
        .expect("deliveries")
        .is_empty();
    let listed = ports
        .outbox
        .list(
            p.ana.id(),
            Channel::Webhook,
            p.hook.id().as_uuid(),
            None,
            10,
        )
        .await
        .expect("webhook deliveries");
    // Both rows or neither: the ring's and its routine's start.
    assert!(
        listed.is_empty() || listed.len() == 2,
        "the ring's rows show together: {listed:?}"
    );
    // The retry of a pending row is a conflict; of a row not there yet,
    // not found (as another owner's).
    let retry = match ports
        .outbox
        .redeliver(
            p.ana.id(),
            Channel::Webhook,
            p.hook.id().as_uuid(),
            super::outbox::triggered(
                1,
                &fixtures::trigger(&p.one, p.occurrence.at, TriggerKind::Fire),
                instant(),
            )
            .id
            .as_uuid(),
            at(60),
        )
        .await
    {
        Err(StoreError::Conflict(_)) => true,
        Err(StoreError::NotFound) => false,
        other => panic!("retry of the prepared row: {other:?}"),
    };
    let counted = ports.outbox.counts().await.expect("counts").pending > 0;
    // A sender whose host clock is past the instant still waits for the
    // store's: `now` far ahead, nothing claimed before the instant.
    let claimed = ports
        .outbox
        .claim(at(3600), at(3630), 10)
        .await
        .expect("outbox claim");
    for c in &claimed {
        ports
            .outbox
            .finish(
                at(3600),
                vec![(
                    c.clone(),
                    SendResult::Retry {
                        due: instant(),
                        counted: false,
                        code: None,
                        error: "put back".to_owned(),
                        latency_ms: 0,
                    },
                )],
                3,
            )
            .await
            .expect("put the claimed row back");
    }
    vec![
        ("events", triggered),
        ("ringing", ringing),
        ("ringing_of", ringing_of),
        ("deliveries", deliveries),
        ("webhook deliveries", !listed.is_empty()),
        ("webhook delivery retry", retry),
        ("outbox counts", counted),
        ("outbox claim", !claimed.is_empty()),
    ]
}

async fn dismiss(p: &Prepared) -> Result<(), StoreError> {
    p.ports
        .queue
        .commit_ringing(ChangeSet {
            op: RingingOp::Dismiss {
                owner: p.ana.id(),
                alarm: p.one.id(),
            },
            audit: audit(
                &p.ports,
                Some(p.ana.id()),
                "alarm.dismiss",
                p.one.id().as_uuid(),
            ),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
}

async fn snooze(p: &Prepared) -> Result<(), StoreError> {
    let ringing = Ringing {
        alarm: p.one.id(),
        owner: p.ana.id(),
        occurrence: p.occurrence,
        since: instant(),
        snoozes: 1,
        level: 0,
        snoozed: true,
    };
    p.ports
        .queue
        .commit_ringing(ChangeSet {
            op: RingingOp::Snooze {
                ringing,
                trigger: fixtures::trigger(&p.one, p.occurrence.at, TriggerKind::Snooze(1)),
            },
            audit: audit(
                &p.ports,
                Some(p.ana.id()),
                "alarm.snooze",
                p.one.id().as_uuid(),
            ),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
}

/// 1 ms before its instant no read path shows the prepared ring, and the
/// snooze and dismiss checks find nothing ringing; at the instant every
/// one shows it, with no write in between.
async fn every_read_path_shows_a_prepared_ring_from_its_instant(fresh: FreshAt) {
    let p = prepared(fresh).await;
    p.clock.set(instant() - SignedDuration::from_millis(1));
    for (path, shown) in seen(&p).await {
        assert!(!shown, "{path} shows a ring 1 ms before its instant");
    }
    is(
        snooze(&p).await,
        not_found,
        "snoozing a ring 1 ms before its instant",
    );
    is(
        dismiss(&p).await,
        not_found,
        "dismissing a ring 1 ms before its instant",
    );
    p.clock.set(instant());
    for (path, shown) in seen(&p).await {
        assert!(shown, "{path} hides a ring at its instant");
    }
    dismiss(&p)
        .await
        .expect("dismissing the ring at its instant");
    assert!(
        p.ports
            .queue
            .ringing_of(p.ana.id())
            .await
            .expect("ringing_of")
            .is_empty(),
        "dismissed"
    );
}

/// An edit of the alarm before the instant withdraws the prepared ring
/// (events, ringing, deliveries, outbox rows, the escalation) and its plan
/// stands; what had taken effect before stays.
async fn an_edit_before_the_instant_withdraws_the_prepared_ring(fresh: FreshAt) {
    let p = prepared(fresh).await;
    p.clock.set(at(5));
    rename(&p, at(5), instant(), "edit before the instant").await;
    p.clock.set(at(20));
    for (path, shown) in seen(&p).await {
        assert!(!shown, "{path} shows a ring withdrawn by an edit");
    }
    let pending = p.ports.queue.pending(p.one.id()).await.expect("pending");
    let kinds: Vec<_> = pending.iter().map(|t| (t.kind, t.occurrence.at)).collect();
    assert_eq!(
        kinds,
        vec![(TriggerKind::Fire, instant())],
        "the edit's plan fires the occurrence again and its escalation is gone"
    );
}

/// An edit after the instant leaves the ring that took effect as history.
async fn an_edit_after_the_instant_keeps_the_ring(fresh: FreshAt) {
    let p = prepared(fresh).await;
    p.clock.set(instant());
    rename(&p, instant(), at(7200), "edit at the instant").await;
    for (path, shown) in seen(&p).await {
        assert!(shown, "{path} lost a ring that had taken effect");
    }
}

/// The outbox tells a sender how long until the prepared ring's rows are
/// due, by the store's clock, and nothing once they are.
async fn the_outbox_says_when_a_prepared_ring_is_due(fresh: FreshAt) {
    let p = prepared(fresh).await;
    p.clock.set(at(4));
    assert_eq!(
        p.ports.outbox.next_due_in().await.expect("next due"),
        Some(SignedDuration::from_secs(6)),
        "6 s before the instant"
    );
    p.clock.set(instant());
    assert_eq!(
        p.ports.outbox.next_due_in().await.expect("next due"),
        None,
        "due now: nothing is ahead"
    );
}

/// After a change to what the prepared ring carries: nothing of it shows
/// at its instant, and its `fire` trigger is back at that instant (so an
/// engine prepares it again) with its escalation gone.
async fn assert_reprepared(p: &Prepared, what: &str) {
    p.clock.set(instant());
    for (path, shown) in seen(p).await {
        assert!(!shown, "{path} shows a ring prepared before {what}");
    }
    let pending = p.ports.queue.pending(p.one.id()).await.expect("pending");
    let kinds: Vec<_> = pending
        .iter()
        .map(|t| (t.kind, t.occurrence.at, t.due_at))
        .collect();
    assert_eq!(
        kinds,
        vec![(TriggerKind::Fire, instant(), instant())],
        "after {what}, the occurrence's fire is back to be prepared again"
    );
}

/// Attaching a routine to the alarm inside the window prepares its ring
/// again (the ring starts the routines attached when it is prepared).
async fn a_routine_attached_inside_the_window_prepares_the_ring_again(fresh: FreshAt) {
    let p = prepared(fresh).await;
    p.clock.set(at(5));
    attach_routine(&p).await;
    assert_reprepared(&p, "a routine was attached").await;
}

/// Creates a routine of Ana's and attaches it to "One", as the routine
/// service commits them.
async fn attach_routine(p: &Prepared) {
    let r = super::routines::routine(p.ana.id(), RoutineId::generate(), "Coffee");
    p.ports
        .routines
        .commit(super::routines::create(&p.ports, &r))
        .await
        .expect("create routine");
    p.ports
        .routines
        .commit(ChangeSet {
            op: RoutineOp::Attach {
                owner: p.ana.id(),
                alarm: p.one.id(),
                routines: vec![r.id()],
            },
            audit: audit(
                &p.ports,
                Some(p.ana.id()),
                "alarm.attach_routines",
                p.one.id().as_uuid(),
            ),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
        .expect("attach");
}

/// Ana's exception period, committed with the plan of "One" it makes (as
/// the calendar service commits a period, a holiday preference or a zone).
async fn add_period(p: &Prepared) {
    use alarm_domain::ports::ExceptionOp;
    let period = super::exception_periods::period(
        p.ana.id(),
        alarm_domain::jiff::civil::date(2026, 3, 1),
        alarm_domain::jiff::civil::date(2026, 3, 5),
    );
    let mut create = super::exception_periods::change(
        &p.ports,
        p.ana.id(),
        "exception_period.create",
        period.id(),
        ExceptionOp::Create(
            period.clone(),
            alarm_domain::limits::Quota::unlimited("exception_periods"),
        ),
    );
    create.triggers = vec![TriggerPlan::Reschedule {
        alarm: p.one.id(),
        version: p.one.version(),
        next: Some(fixtures::trigger(&p.one, instant(), TriggerKind::Fire)),
    }];
    p.ports
        .exceptions
        .commit(create)
        .await
        .expect("create period");
}

/// A change to the owner's routines or calendar that lands while the fire
/// is claimed ahead, before its preparation commits (the alarm itself
/// unchanged): the claim's lease is revoked, so the preparation judged
/// before the change is declined, nothing of it shows, and the fire is
/// claimable again, to be judged with the change.
async fn a_preparation_judged_before_an_owner_change_is_declined(fresh: FreshAt) {
    for change in ["a routine attached", "an exception period added"] {
        let (p, claim) = claimed_ahead(fresh.clone()).await;
        p.clock.set(at(5));
        if change == "a routine attached" {
            attach_routine(&p).await;
        } else {
            add_period(&p).await;
        }
        assert_declined(&p, &claim, &format!("judged before {change}")).await;
    }
}

/// The preparation of `claim` (judged from "One" as first stored) is
/// declined at its commit: nothing of it shows at the instant, and the
/// fire is claimable again, to be judged anew.
async fn assert_declined(p: &Prepared, claim: &alarm_domain::trigger::Claimed, what: &str) {
    let lost = p
        .ports
        .queue
        .complete_many(vec![(claim.token, ring_outcome(p, claim, &p.one))])
        .await
        .expect("complete");
    assert_eq!(lost, vec![claim.token], "a preparation {what} is declined");
    p.clock.set(instant());
    for (path, shown) in seen(p).await {
        assert!(!shown, "{path} shows a ring {what}");
    }
    let again = p
        .ports
        .queue
        .claim(instant(), 10, SignedDuration::from_secs(30))
        .await
        .expect("claim again");
    assert_eq!(
        again
            .iter()
            .map(|c| (c.trigger.kind, c.trigger.occurrence.at))
            .collect::<Vec<_>>(),
        vec![(TriggerKind::Fire, instant())],
        "after a preparation {what}, the fire is claimable again"
    );
}

/// A webhook registered inside the window prepares the owner's rings
/// again (a prepared ring's rows go to the registrations it was prepared
/// with); one registered after the instant leaves the ring as it was.
async fn a_webhook_registered_inside_the_window_prepares_the_ring_again(fresh: FreshAt) {
    let p = prepared(fresh.clone()).await;
    p.clock.set(at(5));
    super::outbox::hook(&p.ports, p.ana.id(), &[WebhookEvent::Triggered], true).await;
    assert_reprepared(&p, "a webhook was registered").await;

    let q = prepared(fresh).await;
    q.clock.set(at(20));
    super::outbox::hook(&q.ports, q.ana.id(), &[WebhookEvent::Triggered], true).await;
    for (path, shown) in seen(&q).await {
        assert!(shown, "{path} lost a ring that had taken effect");
    }
}

/// An edit that lands while the fire is claimed ahead, before its
/// preparation commits: the store declines the preparation judged from the
/// older alarm and puts the trigger back, to be judged again; one that
/// lands after the instant, the claim still in flight, leaves it to commit
/// as judged (it rang; the engine re-plans after it).
async fn a_preparation_from_an_edited_alarm_is_put_back(fresh: FreshAt) {
    let (p, claim) = claimed_ahead(fresh.clone()).await;
    p.clock.set(at(5));
    rename(&p, at(5), instant(), "edit while claimed").await;
    assert_declined(&p, &claim, "judged from the older alarm").await;

    // An edit after the instant, the claim still in flight (found late):
    // it rang as judged.
    let (q, claim) = claimed_ahead(fresh).await;
    q.clock.set(at(11));
    rename(&q, at(11), instant(), "edit while claimed").await;
    let lost = q
        .ports
        .queue
        .complete_many(vec![(claim.token, ring_outcome(&q, &claim, &q.one))])
        .await
        .expect("complete");
    assert!(lost.is_empty(), "a due trigger commits as judged");
}

/// What a sender claims 2 s ahead of the store's clock, leased until
/// `at(100)`.
async fn claim_ahead(p: &Prepared) -> Vec<alarm_domain::ports::ClaimedSend> {
    p.ports
        .outbox
        .claim_ahead(SignedDuration::from_secs(2), at(100), 10)
        .await
        .expect("claim ahead")
}

/// A sender may claim a prepared ring's rows ahead of its instant (within
/// the window it asks for, never twice) and hold them; the store confirms
/// them, by its clock, only from the instant: 1 ms before, each is 1 ms
/// away. Retries due later are not claimed ahead.
async fn a_ring_claimed_ahead_is_confirmed_from_its_instant(fresh: FreshAt) {
    let p = prepared(fresh).await;
    let outbox = &p.ports.outbox;
    p.clock.set(at(7));
    assert!(
        claim_ahead(&p).await.is_empty(),
        "3 s before its instant the ring is beyond 2 s ahead"
    );
    p.clock.set(at(9));
    let held = claim_ahead(&p).await;
    assert_eq!(
        held.len(),
        2,
        "the ring's row and its routine's start, 1 s ahead"
    );
    assert!(held.iter().all(|c| c.item.due == instant()), "{held:?}");
    assert!(
        claim_ahead(&p).await.is_empty(),
        "held rows are not claimed ahead twice"
    );
    let tokens: Vec<_> = held.iter().map(|c| c.token).collect();
    let waits = |tokens: Vec<_>| async move {
        let mut waits: Vec<SignedDuration> = outbox
            .confirm(tokens)
            .await
            .expect("confirm")
            .into_iter()
            .map(|(_, wait)| wait)
            .collect();
        waits.sort();
        waits
    };
    p.clock.set(instant() - SignedDuration::from_millis(1));
    assert_eq!(
        waits(tokens.clone()).await,
        vec![SignedDuration::from_millis(1); 2],
        "1 ms before its instant each held row is 1 ms from visible"
    );
    p.clock.set(instant());
    assert_eq!(
        waits(tokens.clone()).await,
        vec![SignedDuration::ZERO; 2],
        "at its instant each may be sent"
    );
    assert!(
        outbox
            .claim(instant(), at(40), 10)
            .await
            .expect("claim")
            .is_empty(),
        "rows held ahead are not claimed again when due"
    );
    let retried = outbox
        .finish(
            instant(),
            held.iter()
                .map(|c| {
                    let retry = SendResult::Retry {
                        due: at(12),
                        counted: true,
                        code: Some(503),
                        error: "busy".to_owned(),
                        latency_ms: 1,
                    };
                    (c.clone(), retry)
                })
                .collect(),
            3,
        )
        .await
        .expect("finish");
    assert!(
        retried.lost.is_empty(),
        "the held leases record: {retried:?}"
    );
    p.clock.set(at(11));
    assert!(
        claim_ahead(&p).await.is_empty(),
        "a retry due in 1 s is claimed when due, not ahead"
    );
    assert!(
        waits(tokens).await.is_empty(),
        "recorded, the rows are no longer held by those tokens"
    );
}

/// An edit of the alarm while its ring's rows are held ahead withdraws
/// them: the store confirms none of them, at the instant or after.
async fn an_edit_withdraws_a_ring_claimed_ahead(fresh: FreshAt) {
    let p = prepared(fresh).await;
    p.clock.set(at(9));
    let held = claim_ahead(&p).await;
    assert_eq!(held.len(), 2, "held ahead");
    rename(&p, at(9), instant(), "edit while held ahead").await;
    p.clock.set(instant());
    let confirmed = p
        .ports
        .outbox
        .confirm(held.iter().map(|c| c.token).collect())
        .await
        .expect("confirm");
    assert!(
        confirmed.is_empty(),
        "withdrawn rows are confirmed: {confirmed:?}"
    );
}

pub(super) fn checks() -> Vec<Check> {
    checks!(PortsAt:
        a_preparation_from_an_edited_alarm_is_put_back,
        a_preparation_judged_before_an_owner_change_is_declined,
        a_routine_attached_inside_the_window_prepares_the_ring_again,
        a_webhook_registered_inside_the_window_prepares_the_ring_again,
        the_outbox_says_when_a_prepared_ring_is_due,
        every_read_path_shows_a_prepared_ring_from_its_instant,
        an_edit_before_the_instant_withdraws_the_prepared_ring,
        an_edit_after_the_instant_keeps_the_ring,
        a_ring_claimed_ahead_is_confirmed_from_its_instant,
        an_edit_withdraws_a_ring_claimed_ahead,
    )
}
