//! Conformance checks of [`alarm_domain::ports::TriggerClaims`] and [`alarm_domain::ports::RingingStore`].

use super::*;

use alarm_domain::model::Alarm;
use alarm_domain::trigger::{Claimed, Trigger};

fn lease() -> SignedDuration {
    SignedDuration::from_secs(30)
}

/// An outcome that stores nothing but the completion.
fn empty() -> FireOutcome {
    FireOutcome {
        events: Vec::new(),
        deliveries: Vec::new(),
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
    }
}

/// Ana's alarms "Early", "Late" and "Future", due at `at(10)`, `at(20)` and `at(1000)`.
struct Three {
    ana: User,
    early: Alarm,
    late: Alarm,
}

async fn three_alarms(ports: &Ports) -> Three {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let early = fixtures::alarm(ports, ana.id(), "Early", Some(at(10))).await;
    let late = fixtures::alarm(ports, ana.id(), "Late", Some(at(20))).await;
    fixtures::alarm(ports, ana.id(), "Future", Some(at(1000))).await;
    Three { ana, early, late }
}

/// `next_due` is the earliest trigger, and nothing is due before its time.
async fn next_due_is_the_earliest_and_nothing_is_due_early(new_ports: Fresh) {
    let ports = new_ports().await;
    three_alarms(&ports).await;
    assert_eq!(
        ports.queue.next_due().await.expect("next_due"),
        Some(at(10)),
        "next_due is the earliest trigger"
    );
    assert!(
        ports
            .queue
            .claim(at(9), 10, lease())
            .await
            .expect("claim")
            .is_empty(),
        "nothing is due before its time"
    );
}

/// `due_count` counts the unleased triggers due by an instant: none
/// early, each as its time comes, and a claimed one no longer.
async fn due_count_is_the_claimable_backlog(new_ports: Fresh) {
    let ports = new_ports().await;
    three_alarms(&ports).await;
    let count = |t| {
        let queue = ports.queue.clone();
        async move { queue.due_count(at(t)).await.expect("due_count") }
    };
    assert_eq!(count(9).await, 0);
    assert_eq!(count(10).await, 1, "due at its instant");
    assert_eq!(count(500).await, 2);
    ports.queue.claim(at(10), 1, lease()).await.expect("claim");
    assert_eq!(count(500).await, 1, "a leased trigger is not claimable");
}

/// A claim hands out at most its limit, earliest first, leased for the lease given.
async fn claim_respects_the_limit_earliest_first(new_ports: Fresh) {
    let ports = new_ports().await;
    let Three { early, .. } = three_alarms(&ports).await;
    let claimed = ports.queue.claim(at(20), 1, lease()).await.expect("claim");
    assert_eq!(claimed.len(), 1, "the limit is respected");
    assert_eq!(claimed[0].trigger.alarm, early.id(), "earliest first");
    assert_eq!(claimed[0].lease_until, at(50));
}

/// A claimed trigger is neither next due nor handed out again.
async fn a_claimed_trigger_is_neither_next_nor_claimed_again(new_ports: Fresh) {
    let ports = new_ports().await;
    let Three { late, .. } = three_alarms(&ports).await;
    ports.queue.claim(at(20), 1, lease()).await.expect("claim");
    assert_eq!(
        ports.queue.next_due().await.expect("next_due"),
        Some(at(20)),
        "a leased trigger is not next"
    );
    let second = ports.queue.claim(at(20), 10, lease()).await.expect("claim");
    assert_eq!(
        second.iter().map(|c| c.trigger.alarm).collect::<Vec<_>>(),
        [late.id()],
        "a claimed trigger is not handed out again"
    );
}

/// "Early" claimed at `at(20)`, and the outcome that rings it: an event,
/// an in-app delivery, an escalation follow-up, the next occurrence and
/// the ringing record.
struct Fired {
    ana: User,
    early: Alarm,
    claim: Claimed,
    follow_up: Trigger,
    next: Trigger,
    delivery: Delivery,
    ringing: Ringing,
    outcome: FireOutcome,
}

async fn early_claimed_with_outcome(ports: &Ports) -> Fired {
    let Three { ana, early, .. } = three_alarms(ports).await;
    let claim = ports.queue.claim(at(20), 1, lease()).await.expect("claim")[0].clone();
    let occurrence = claim.trigger.occurrence;
    let follow_up = Trigger {
        kind: TriggerKind::Escalate(1),
        due_at: at(310),
        ..claim.trigger.clone()
    };
    let delivery = Delivery {
        id: ports.ids.next_uuid(),
        owner: ana.id(),
        alarm: early.id(),
        occurrence,
        kind: TriggerKind::Fire,
        channel: alarm_domain::model::Channel::InApp,
        created_at: at(20),
    };
    let ringing = Ringing {
        alarm: early.id(),
        owner: ana.id(),
        occurrence,
        since: at(20),
        snoozes: 0,
        level: 0,
        snoozed: false,
    };
    let next = trigger(&early, at(86_410), TriggerKind::Fire);
    let outcome = FireOutcome {
        events: vec![event(
            ports,
            early.id(),
            ana.id(),
            AlarmEventKind::Triggered,
        )],
        deliveries: vec![delivery.clone()],
        follow_up: Some(follow_up.clone()),
        next: Some(TriggerPlan::Reschedule {
            alarm: early.id(),
            version: early.version(),
            next: Some(next.clone()),
        }),
        ringing: RingingChange::Upsert(ringing.clone()),
    };
    Fired {
        ana,
        early,
        claim,
        follow_up,
        next,
        delivery,
        ringing,
        outcome,
    }
}

/// Complete commits the whole outcome and removes the fired trigger.
async fn complete_commits_the_whole_outcome(new_ports: Fresh) {
    let ports = new_ports().await;
    let f = early_claimed_with_outcome(&ports).await;
    ports
        .queue
        .complete(f.claim.token, f.outcome.clone())
        .await
        .expect("complete");
    let pending = ports.queue.pending(f.early.id()).await.expect("pending");
    assert_eq!(
        pending,
        [f.follow_up.clone(), f.next.clone()],
        "the fired trigger is gone; follow-up and next occurrence are in"
    );
    assert_eq!(
        ports
            .queue
            .deliveries(f.ana.id())
            .await
            .expect("deliveries"),
        [f.delivery]
    );
    assert_eq!(
        ports
            .queue
            .ringing(f.ana.id(), f.early.id())
            .await
            .expect("ringing"),
        std::slice::from_ref(&f.ringing)
    );
    let events = ports
        .events
        .list(f.ana.id(), f.early.id(), PageRequest::first())
        .await
        .expect("events")
        .items;
    assert_eq!(
        events.last().map(|e| e.kind),
        Some(AlarmEventKind::Triggered)
    );
}

/// Completing a claim twice is lease-lost, and the refused completion writes no event.
async fn completing_twice_is_lease_lost(new_ports: Fresh) {
    let ports = new_ports().await;
    let f = early_claimed_with_outcome(&ports).await;
    ports
        .queue
        .complete(f.claim.token, f.outcome.clone())
        .await
        .expect("complete");
    let events = ports
        .events
        .list(f.ana.id(), f.early.id(), PageRequest::first())
        .await
        .expect("events")
        .items;
    let mut again = f.outcome.clone();
    again.events = vec![event(
        &ports,
        f.early.id(),
        f.ana.id(),
        AlarmEventKind::Triggered,
    )];
    is(
        ports.queue.complete(f.claim.token, again).await,
        lease_lost,
        "completing twice",
    );
    assert_eq!(
        ports
            .events
            .list(f.ana.id(), f.early.id(), PageRequest::first())
            .await
            .expect("events")
            .items
            .len(),
        events.len(),
        "a refused completion writes no event"
    );
}

/// Ana's alarm "Late", its trigger claimed at `at(20)` (leased until `at(50)`).
async fn late_claimed(ports: &Ports) -> (User, Alarm, Claimed) {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let late = fixtures::alarm(ports, ana.id(), "Late", Some(at(20))).await;
    let claimed = ports.queue.claim(at(20), 10, lease()).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    (ana, late, claimed[0].clone())
}

/// A lease runs until it expires; then the trigger is rescued and claimed anew with a new token.
async fn an_expired_lease_is_rescued_with_a_new_token(new_ports: Fresh) {
    let ports = new_ports().await;
    let (_, _, stale) = late_claimed(&ports).await;
    assert_eq!(
        ports.queue.rescue(at(49)).await.expect("rescue"),
        0,
        "leases run until they expire"
    );
    assert_eq!(
        ports.queue.rescue(at(50)).await.expect("rescue"),
        1,
        "an expired lease is rescued"
    );
    let retaken = ports.queue.claim(at(50), 10, lease()).await.expect("claim");
    assert_eq!(retaken.len(), 1);
    assert_ne!(
        retaken[0].token, stale.token,
        "a new claim gets a new token"
    );
}

/// Fencing: a rescued claim's token can neither complete nor release;
/// a released trigger is claimable again and completes with the current token.
async fn a_rescued_claims_token_can_neither_complete_nor_release(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, late, stale) = late_claimed(&ports).await;
    assert_eq!(ports.queue.rescue(at(50)).await.expect("rescue"), 1);
    let retaken = ports.queue.claim(at(50), 10, lease()).await.expect("claim");
    let stale_outcome = FireOutcome {
        events: vec![event(
            &ports,
            late.id(),
            ana.id(),
            AlarmEventKind::Triggered,
        )],
        ..empty()
    };
    is(
        ports
            .queue
            .complete(stale.token, stale_outcome.clone())
            .await,
        lease_lost,
        "a rescued claim's token cannot commit (fencing)",
    );
    is(
        ports.queue.release(stale.token).await,
        lease_lost,
        "… nor release",
    );
    ports
        .queue
        .release(retaken[0].token)
        .await
        .expect("release");
    assert_eq!(
        ports.queue.next_due().await.expect("next_due"),
        Some(at(20)),
        "a released trigger is claimable again"
    );
    let retaken = ports.queue.claim(at(50), 10, lease()).await.expect("claim");
    ports
        .queue
        .complete(retaken[0].token, stale_outcome)
        .await
        .expect("complete with the current token");
}

/// An update of `alarm` (as stored) to its next version, with `triggers`.
async fn bump(ports: &Ports, alarm: &Alarm, triggers: impl Fn(&Alarm) -> Vec<TriggerPlan>) {
    let current = ports
        .alarms
        .get(alarm.owner(), alarm.id())
        .await
        .expect("get");
    let next_version = current
        .revise(current.draft().clone(), at(1))
        .expect("revise");
    let change = ChangeSet {
        triggers: triggers(&next_version),
        op: AlarmOp::Update {
            alarm: next_version,
            expected: current.version(),
        },
        audit: audit(
            ports,
            Some(alarm.owner()),
            "alarm.update",
            alarm.id().as_uuid(),
        ),
        events: Vec::new(),
    };
    ports.alarms.commit(change).await.expect("update");
}

/// Uniqueness on (alarm, occurrence, kind): the same key twice is one trigger.
async fn one_trigger_per_alarm_occurrence_and_kind(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let future = fixtures::alarm(&ports, ana.id(), "Future", Some(at(1000))).await;
    bump(&ports, &future, |next| {
        let dup_plan = TriggerPlan::Reschedule {
            alarm: future.id(),
            version: next.version(),
            next: Some(trigger(&future, at(1000), TriggerKind::Fire)),
        };
        vec![dup_plan.clone(), dup_plan]
    })
    .await;
    assert_eq!(
        ports
            .queue
            .pending(future.id())
            .await
            .expect("pending")
            .len(),
        1,
        "one trigger per (alarm, occurrence, kind)"
    );
}

/// A leased fire trigger survives a reschedule (it is being fired) and is not duplicated.
async fn a_leased_fire_trigger_survives_a_reschedule(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let future = fixtures::alarm(&ports, ana.id(), "Future", Some(at(1000))).await;
    let firing = ports
        .queue
        .claim(at(1000), 10, lease())
        .await
        .expect("claim");
    let fire = firing
        .iter()
        .find(|c| c.trigger.alarm == future.id())
        .expect("the future alarm's trigger is due");
    bump(&ports, &future, |next| {
        vec![TriggerPlan::Reschedule {
            alarm: future.id(),
            version: next.version(),
            next: Some(trigger(&future, at(1000), TriggerKind::Fire)),
        }]
    })
    .await;
    assert_eq!(
        ports
            .queue
            .pending(future.id())
            .await
            .expect("pending")
            .len(),
        1,
        "the leased trigger was neither removed nor duplicated"
    );
    ports
        .queue
        .complete(fire.token, empty())
        .await
        .expect("complete");
}

/// Batch completion: current tokens commit in one go; a dead token is
/// reported and nothing of its outcome is stored.
async fn complete_many_commits_current_tokens_and_reports_dead_ones(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let mut batch = Vec::new();
    for name in ["B0", "B1", "B2"] {
        batch.push(fixtures::alarm(&ports, ana.id(), name, Some(at(3000))).await);
    }
    let claimed: Vec<_> = ports
        .queue
        .claim(at(3000), 10, lease())
        .await
        .expect("claim")
        .into_iter()
        .filter(|c| batch.iter().any(|a| a.id() == c.trigger.alarm))
        .collect();
    assert_eq!(claimed.len(), 3);
    ports
        .queue
        .complete(claimed[0].token, empty())
        .await
        .expect("complete the first alone");
    let items = claimed
        .iter()
        .map(|c| {
            (
                c.token,
                FireOutcome {
                    events: vec![event(
                        &ports,
                        c.trigger.alarm,
                        ana.id(),
                        AlarmEventKind::Triggered,
                    )],
                    ..empty()
                },
            )
        })
        .collect();
    let lost = ports
        .queue
        .complete_many(items)
        .await
        .expect("complete_many");
    assert_eq!(
        lost,
        [claimed[0].token],
        "the spent token is reported, the others committed"
    );
    for (i, c) in claimed.iter().enumerate() {
        let kinds: Vec<AlarmEventKind> = ports
            .events
            .list(ana.id(), c.trigger.alarm, PageRequest::first())
            .await
            .expect("events")
            .items
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds.contains(&AlarmEventKind::Triggered),
            i != 0,
            "outcome stored only for current tokens ({i})"
        );
        assert!(
            ports
                .queue
                .pending(c.trigger.alarm)
                .await
                .expect("pending")
                .is_empty()
        );
    }
}

/// Deleting an alarm kills even a leased trigger: the runner rings nothing.
async fn a_trigger_leased_before_its_alarm_was_deleted_cannot_complete(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let doomed = fixtures::alarm(&ports, ana.id(), "Doomed", Some(at(2000))).await;
    let firing = ports
        .queue
        .claim(at(2000), 10, lease())
        .await
        .expect("claim");
    let doomed_claim = firing
        .iter()
        .find(|c| c.trigger.alarm == doomed.id())
        .expect("due");
    let change = ChangeSet {
        op: AlarmOp::Delete {
            owner: ana.id(),
            id: doomed.id(),
            expected: doomed.version(),
        },
        audit: audit(
            &ports,
            Some(ana.id()),
            "alarm.delete",
            doomed.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: vec![TriggerPlan::CancelAll { alarm: doomed.id() }],
    };
    ports.alarms.commit(change).await.expect("delete");
    is(
        ports.queue.complete(doomed_claim.token, empty()).await,
        lease_lost,
        "a trigger leased before its alarm was deleted cannot complete",
    );
}

/// Ana's alarm "Wake" fired at `at(10)` and ringing, an escalation due at
/// `at(310)`; Bob exists.
struct RingingAlarm {
    ana: User,
    bob: User,
    alarm: Alarm,
    ringing: Ringing,
    fired: Trigger,
}

async fn ringing_alarm(ports: &Ports) -> RingingAlarm {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let bob = fixtures::user(ports, "bob@example.com").await;
    let alarm = fixtures::alarm(ports, ana.id(), "Wake", Some(at(10))).await;
    let claimed = ports.queue.claim(at(10), 1, lease()).await.expect("claim");
    let fired = claimed[0].trigger.clone();
    let ringing = Ringing {
        alarm: alarm.id(),
        owner: ana.id(),
        occurrence: fired.occurrence,
        since: at(10),
        snoozes: 0,
        level: 0,
        snoozed: false,
    };
    let escalation = Trigger {
        kind: TriggerKind::Escalate(1),
        due_at: at(310),
        ..fired.clone()
    };
    let outcome = FireOutcome {
        follow_up: Some(escalation),
        ringing: RingingChange::Upsert(ringing.clone()),
        ..empty()
    };
    ports
        .queue
        .complete(claimed[0].token, outcome)
        .await
        .expect("complete");
    RingingAlarm {
        ana,
        bob,
        alarm,
        ringing,
        fired,
    }
}

/// Snooze number `n` of `r`, due at `at(310)`, by the alarm's owner.
fn snooze(ports: &Ports, s: &RingingAlarm, r: Ringing, n: u8) -> ChangeSet<RingingOp> {
    ChangeSet {
        op: RingingOp::Snooze {
            ringing: Ringing {
                snoozes: n,
                snoozed: true,
                ..r
            },
            trigger: Trigger {
                kind: TriggerKind::Snooze(n),
                due_at: at(310),
                ..s.fired.clone()
            },
        },
        audit: audit(
            ports,
            Some(s.ana.id()),
            "alarm.snooze",
            s.alarm.id().as_uuid(),
        ),
        events: vec![event(
            ports,
            s.alarm.id(),
            s.ana.id(),
            AlarmEventKind::Snoozed,
        )],
        triggers: Vec::new(),
    }
}

/// A snooze whose count skips one conflicts.
async fn a_snooze_count_that_skips_one_conflicts(new_ports: Fresh) {
    let ports = new_ports().await;
    let s = ringing_alarm(&ports).await;
    is(
        ports
            .queue
            .commit_ringing(snooze(&ports, &s, s.ringing.clone(), 2))
            .await,
        conflict,
        "a snooze count that skips one",
    );
}

/// Snoozing another owner's ringing is not found.
async fn snoozing_another_owners_ringing_is_not_found(new_ports: Fresh) {
    let ports = new_ports().await;
    let s = ringing_alarm(&ports).await;
    let foreign = Ringing {
        owner: s.bob.id(),
        ..s.ringing.clone()
    };
    is(
        ports
            .queue
            .commit_ringing(snooze(&ports, &s, foreign, 1))
            .await,
        not_found,
        "snoozing another owner's ringing",
    );
}

/// A well-counted snooze whose trigger points at another occurrence conflicts and writes nothing.
async fn a_snooze_trigger_for_another_occurrence_conflicts(new_ports: Fresh) {
    let ports = new_ports().await;
    let s = ringing_alarm(&ports).await;
    let audits = audit_count(&ports).await;
    let mut wrong = snooze(&ports, &s, s.ringing.clone(), 1);
    if let RingingOp::Snooze { trigger, .. } = &mut wrong.op {
        trigger.occurrence.at = at(77);
    }
    is(
        ports.queue.commit_ringing(wrong).await,
        conflict,
        "a snooze trigger for another occurrence",
    );
    assert_eq!(
        audit_count(&ports).await,
        audits,
        "a refused snooze writes no audit record"
    );
}

/// Two snoozes at once (two devices): exactly one wins; it cancels the
/// pending escalation, schedules the snooze, and alone writes an audit record.
async fn two_concurrent_snoozes_have_one_winner(new_ports: Fresh) {
    let ports = new_ports().await;
    let s = ringing_alarm(&ports).await;
    let audits = audit_count(&ports).await;
    let (first, second) = tokio::join!(
        ports
            .queue
            .commit_ringing(snooze(&ports, &s, s.ringing.clone(), 1)),
        ports
            .queue
            .commit_ringing(snooze(&ports, &s, s.ringing.clone(), 1)),
    );
    match (first, second) {
        (Ok(()), Err(StoreError::Conflict(_))) | (Err(StoreError::Conflict(_)), Ok(())) => {}
        other => panic!("two concurrent snoozes: exactly one must win, got {other:?}"),
    }
    let kinds: Vec<TriggerKind> = ports
        .queue
        .pending(s.alarm.id())
        .await
        .expect("pending")
        .iter()
        .map(|t| t.kind)
        .collect();
    assert_eq!(
        kinds,
        [TriggerKind::Snooze(1)],
        "a snooze cancels the pending escalation and schedules the snooze"
    );
    assert_eq!(
        ports
            .queue
            .ringing(s.ana.id(), s.alarm.id())
            .await
            .expect("ringing")[0]
            .snoozes,
        1
    );
    is(
        ports
            .queue
            .commit_ringing(snooze(&ports, &s, s.ringing.clone(), 1))
            .await,
        conflict,
        "the same snooze twice (a concurrent snooze won)",
    );
    assert_eq!(
        audit_count(&ports).await,
        audits + 1,
        "only the accepted snooze wrote an audit record"
    );
}

/// The ringing alarm snoozed once, its snooze trigger claimed at `at(400)`.
async fn snoozed_and_leased(ports: &Ports) -> (RingingAlarm, Claimed) {
    let s = ringing_alarm(ports).await;
    ports
        .queue
        .commit_ringing(snooze(ports, &s, s.ringing.clone(), 1))
        .await
        .expect("snooze");
    let leased = ports
        .queue
        .claim(at(400), 10, lease())
        .await
        .expect("claim");
    let snooze_claim = leased
        .iter()
        .find(|c| c.trigger.kind == TriggerKind::Snooze(1))
        .expect("the snooze is due")
        .clone();
    (s, snooze_claim)
}

fn dismiss(ports: &Ports, s: &RingingAlarm, owner: UserId) -> ChangeSet<RingingOp> {
    ChangeSet {
        op: RingingOp::Dismiss {
            owner,
            alarm: s.alarm.id(),
        },
        audit: audit(ports, Some(owner), "alarm.dismiss", s.alarm.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    }
}

/// Dismissing another owner's alarm is not found.
async fn dismissing_another_owners_alarm_is_not_found(new_ports: Fresh) {
    let ports = new_ports().await;
    let (s, _) = snoozed_and_leased(&ports).await;
    is(
        ports
            .queue
            .commit_ringing(dismiss(&ports, &s, s.bob.id()))
            .await,
        not_found,
        "dismissing another owner's alarm",
    );
}

/// A dismissal stops the ringing, cancels the snooze, and a follow-up
/// being fired when the user dismisses loses its lease.
async fn a_dismissal_fences_a_leased_follow_up(new_ports: Fresh) {
    let ports = new_ports().await;
    let (s, snooze_claim) = snoozed_and_leased(&ports).await;
    ports
        .queue
        .commit_ringing(dismiss(&ports, &s, s.ana.id()))
        .await
        .expect("dismiss");
    assert!(
        ports
            .queue
            .ringing(s.ana.id(), s.alarm.id())
            .await
            .expect("ringing")
            .is_empty(),
        "nothing rings after a dismissal"
    );
    is(
        ports.queue.complete(snooze_claim.token, empty()).await,
        lease_lost,
        "a follow-up leased before the dismissal cannot ring after it",
    );
    assert!(
        ports
            .queue
            .pending(s.alarm.id())
            .await
            .expect("pending")
            .is_empty(),
        "the dismissal cancelled the snooze"
    );
}

/// Dismissing when nothing rings (any more) is not found.
async fn dismissing_when_nothing_rings_is_not_found(new_ports: Fresh) {
    let ports = new_ports().await;
    let (s, _) = snoozed_and_leased(&ports).await;
    ports
        .queue
        .commit_ringing(dismiss(&ports, &s, s.ana.id()))
        .await
        .expect("dismiss");
    is(
        ports
            .queue
            .commit_ringing(dismiss(&ports, &s, s.ana.id()))
            .await,
        not_found,
        "dismissing when nothing rings",
    );
}

/// Concurrent claimers never get the same trigger twice, and together get every one.
///
/// Its claimers are spawned tasks on the trial's multi-thread runtime: only
/// real parallelism makes "never the same trigger twice" a meaningful check.
async fn concurrent_claimers_get_every_trigger_once(new_ports: Fresh) {
    const TRIGGERS: usize = 120;
    const CLAIMERS: usize = 8;
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    for i in 0..TRIGGERS {
        fixtures::alarm(&ports, ana.id(), &format!("A{i}"), Some(at(i as i64 % 7))).await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLAIMERS {
        let queue = ports.queue.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = queue.claim(at(60), 5, lease()).await.expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                for c in batch {
                    queue
                        .complete(c.token, empty())
                        .await
                        .expect("complete own claim");
                    mine.push(c.trigger.key());
                }
                tokio::task::yield_now().await;
            }
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.expect("claimer task"));
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "no trigger was claimed twice");
    assert_eq!(all.len(), TRIGGERS, "every trigger was claimed once");
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        next_due_is_the_earliest_and_nothing_is_due_early,
        due_count_is_the_claimable_backlog,
        claim_respects_the_limit_earliest_first,
        a_claimed_trigger_is_neither_next_nor_claimed_again,
        complete_commits_the_whole_outcome,
        completing_twice_is_lease_lost,
        an_expired_lease_is_rescued_with_a_new_token,
        a_rescued_claims_token_can_neither_complete_nor_release,
        one_trigger_per_alarm_occurrence_and_kind,
        a_leased_fire_trigger_survives_a_reschedule,
        complete_many_commits_current_tokens_and_reports_dead_ones,
        a_trigger_leased_before_its_alarm_was_deleted_cannot_complete,
        a_snooze_count_that_skips_one_conflicts,
        snoozing_another_owners_ringing_is_not_found,
        a_snooze_trigger_for_another_occurrence_conflicts,
        two_concurrent_snoozes_have_one_winner,
        dismissing_another_owners_alarm_is_not_found,
        a_dismissal_fences_a_leased_follow_up,
        dismissing_when_nothing_rings_is_not_found,
        concurrent_claimers_get_every_trigger_once,
    )
}
