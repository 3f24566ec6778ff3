//! Conformance checks of [`alarm_domain::ports::TriggerQueue`].

use super::*;

/// [`alarm_domain::ports::TriggerQueue`]: claims, leases, fencing, rescue, uniqueness, ringing, concurrency.
///
/// Run it on a multi-thread runtime (`#[tokio::test(flavor = "multi_thread")]`):
/// its concurrent claimers are spawned tasks, and only real parallelism
/// makes "never the same trigger twice" a meaningful check.
async fn trigger_queue(new_ports: Fresh) {
    let lease = SignedDuration::from_secs(30);
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let early = fixtures::alarm(&ports, ana.id(), "Early", Some(at(10))).await;
    let late = fixtures::alarm(&ports, ana.id(), "Late", Some(at(20))).await;
    let future = fixtures::alarm(&ports, ana.id(), "Future", Some(at(1000))).await;

    assert_eq!(
        ports.queue.next_due().await.expect("next_due"),
        Some(at(10)),
        "next_due is the earliest trigger"
    );
    assert!(
        ports
            .queue
            .claim(at(9), 10, lease)
            .await
            .expect("claim")
            .is_empty(),
        "nothing is due before its time"
    );
    let claimed = ports.queue.claim(at(20), 1, lease).await.expect("claim");
    assert_eq!(claimed.len(), 1, "the limit is respected");
    assert_eq!(claimed[0].trigger.alarm, early.id(), "earliest first");
    assert_eq!(claimed[0].lease_until, at(50));
    assert_eq!(
        ports.queue.next_due().await.expect("next_due"),
        Some(at(20)),
        "a leased trigger is not next"
    );
    let second = ports.queue.claim(at(20), 10, lease).await.expect("claim");
    assert_eq!(
        second.iter().map(|c| c.trigger.alarm).collect::<Vec<_>>(),
        [late.id()],
        "a claimed trigger is not handed out again"
    );

    // Complete commits the whole outcome and removes the trigger.
    let first = &claimed[0];
    let occurrence = first.trigger.occurrence;
    let follow_up = alarm_domain::trigger::Trigger {
        kind: TriggerKind::Escalate(1),
        due_at: at(310),
        ..first.trigger.clone()
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
            &ports,
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
    ports
        .queue
        .complete(first.token, outcome.clone())
        .await
        .expect("complete");
    let pending = ports.queue.pending(early.id()).await.expect("pending");
    assert_eq!(
        pending,
        [follow_up.clone(), next.clone()],
        "the fired trigger is gone; follow-up and next occurrence are in"
    );
    assert_eq!(
        ports.queue.deliveries(ana.id()).await.expect("deliveries"),
        [delivery]
    );
    assert_eq!(
        ports
            .queue
            .ringing(ana.id(), early.id())
            .await
            .expect("ringing"),
        std::slice::from_ref(&ringing)
    );
    let events = ports
        .events
        .list(ana.id(), early.id(), PageRequest::first())
        .await
        .expect("events")
        .items;
    assert_eq!(
        events.last().map(|e| e.kind),
        Some(AlarmEventKind::Triggered)
    );
    let mut again = outcome.clone();
    again.events = vec![event(
        &ports,
        early.id(),
        ana.id(),
        AlarmEventKind::Triggered,
    )];
    is(
        ports.queue.complete(first.token, again).await,
        lease_lost,
        "completing twice",
    );
    assert_eq!(
        ports
            .events
            .list(ana.id(), early.id(), PageRequest::first())
            .await
            .expect("events")
            .items
            .len(),
        events.len(),
        "a refused completion writes no event"
    );

    // Lease expiry, rescue and fencing.
    let stale = &second[0];
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
    let retaken = ports.queue.claim(at(50), 10, lease).await.expect("claim");
    assert_eq!(retaken.len(), 1);
    assert_ne!(
        retaken[0].token, stale.token,
        "a new claim gets a new token"
    );
    let stale_outcome = FireOutcome {
        events: vec![event(
            &ports,
            late.id(),
            ana.id(),
            AlarmEventKind::Triggered,
        )],
        deliveries: Vec::new(),
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
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
    let retaken = ports.queue.claim(at(50), 10, lease).await.expect("claim");
    ports
        .queue
        .complete(retaken[0].token, stale_outcome)
        .await
        .expect("complete with the current token");

    // Uniqueness on (alarm, occurrence, kind): the same key twice is one trigger.
    let current = ports.alarms.get(ana.id(), future.id()).await.expect("get");
    let next_version = current
        .revise(current.draft().clone(), at(1))
        .expect("revise");
    let dup_plan = TriggerPlan::Reschedule {
        alarm: future.id(),
        version: next_version.version(),
        next: Some(trigger(&future, at(1000), TriggerKind::Fire)),
    };
    let change = ChangeSet {
        op: AlarmOp::Update {
            alarm: next_version,
            expected: current.version(),
        },
        audit: audit(
            &ports,
            Some(ana.id()),
            "alarm.update",
            future.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: vec![dup_plan.clone(), dup_plan],
    };
    ports.alarms.commit(change).await.expect("update");
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

    // A leased fire trigger survives a reschedule (it is being fired) and is not duplicated.
    let firing = ports.queue.claim(at(1000), 10, lease).await.expect("claim");
    let fire = firing
        .iter()
        .find(|c| c.trigger.alarm == future.id())
        .expect("the future alarm's trigger is due");
    let current = ports.alarms.get(ana.id(), future.id()).await.expect("get");
    let next_version = current
        .revise(current.draft().clone(), at(1))
        .expect("revise");
    let change = ChangeSet {
        op: AlarmOp::Update {
            alarm: next_version.clone(),
            expected: current.version(),
        },
        audit: audit(
            &ports,
            Some(ana.id()),
            "alarm.update",
            future.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: vec![TriggerPlan::Reschedule {
            alarm: future.id(),
            version: next_version.version(),
            next: Some(trigger(&future, at(1000), TriggerKind::Fire)),
        }],
    };
    ports.alarms.commit(change).await.expect("update");
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
        .complete(
            fire.token,
            FireOutcome {
                events: Vec::new(),
                deliveries: Vec::new(),
                follow_up: None,
                next: None,
                ringing: RingingChange::None,
            },
        )
        .await
        .expect("complete");

    // Batch completion: current tokens commit in one go; a dead token is
    // reported and nothing of its outcome is stored.
    let mut batch = Vec::new();
    for name in ["B0", "B1", "B2"] {
        batch.push(fixtures::alarm(&ports, ana.id(), name, Some(at(3000))).await);
    }
    let claimed: Vec<_> = ports
        .queue
        .claim(at(3000), 10, lease)
        .await
        .expect("claim")
        .into_iter()
        .filter(|c| batch.iter().any(|a| a.id() == c.trigger.alarm))
        .collect();
    assert_eq!(claimed.len(), 3);
    let empty = || FireOutcome {
        events: Vec::new(),
        deliveries: Vec::new(),
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
    };
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

    // Deleting an alarm kills even a leased trigger: the runner rings nothing.
    let doomed = fixtures::alarm(&ports, ana.id(), "Doomed", Some(at(2000))).await;
    let firing = ports.queue.claim(at(2000), 10, lease).await.expect("claim");
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
        ports
            .queue
            .complete(
                doomed_claim.token,
                FireOutcome {
                    events: Vec::new(),
                    deliveries: Vec::new(),
                    follow_up: None,
                    next: None,
                    ringing: RingingChange::None,
                },
            )
            .await,
        lease_lost,
        "a trigger leased before its alarm was deleted cannot complete",
    );
}

async fn ringing_ops(new_ports: Fresh) {
    let lease = SignedDuration::from_secs(30);
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let alarm = fixtures::alarm(&ports, ana.id(), "Wake", Some(at(10))).await;
    let claimed = ports.queue.claim(at(10), 1, lease).await.expect("claim");
    let occurrence = claimed[0].trigger.occurrence;
    let ringing = Ringing {
        alarm: alarm.id(),
        owner: ana.id(),
        occurrence,
        since: at(10),
        snoozes: 0,
        level: 0,
        snoozed: false,
    };
    let escalation = alarm_domain::trigger::Trigger {
        kind: TriggerKind::Escalate(1),
        due_at: at(310),
        ..claimed[0].trigger.clone()
    };
    let outcome = FireOutcome {
        events: Vec::new(),
        deliveries: Vec::new(),
        follow_up: Some(escalation),
        next: None,
        ringing: RingingChange::Upsert(ringing.clone()),
    };
    ports
        .queue
        .complete(claimed[0].token, outcome)
        .await
        .expect("complete");

    let snooze = |r: Ringing, n: u8| ChangeSet {
        op: RingingOp::Snooze {
            ringing: Ringing {
                snoozes: n,
                snoozed: true,
                ..r
            },
            trigger: alarm_domain::trigger::Trigger {
                kind: TriggerKind::Snooze(n),
                due_at: at(310),
                ..claimed[0].trigger.clone()
            },
        },
        audit: audit(&ports, Some(ana.id()), "alarm.snooze", alarm.id().as_uuid()),
        events: vec![event(&ports, alarm.id(), ana.id(), AlarmEventKind::Snoozed)],
        triggers: Vec::new(),
    };
    is(
        ports.queue.commit_ringing(snooze(ringing.clone(), 2)).await,
        conflict,
        "a snooze count that skips one",
    );
    let foreign = Ringing {
        owner: bob.id(),
        ..ringing.clone()
    };
    is(
        ports.queue.commit_ringing(snooze(foreign, 1)).await,
        not_found,
        "snoozing another owner's ringing",
    );
    let audits = audit_count(&ports).await;
    let mut wrong = snooze(ringing.clone(), 1);
    if let RingingOp::Snooze { trigger, .. } = &mut wrong.op {
        // A well-counted snooze whose trigger points at another occurrence.
        trigger.occurrence.at = at(77);
    }
    is(
        ports.queue.commit_ringing(wrong).await,
        conflict,
        "a snooze trigger for another occurrence",
    );
    // Two snoozes at once (two devices): exactly one wins.
    let (first, second) = tokio::join!(
        ports.queue.commit_ringing(snooze(ringing.clone(), 1)),
        ports.queue.commit_ringing(snooze(ringing.clone(), 1)),
    );
    match (first, second) {
        (Ok(()), Err(StoreError::Conflict(_))) | (Err(StoreError::Conflict(_)), Ok(())) => {}
        other => panic!("two concurrent snoozes: exactly one must win, got {other:?}"),
    }
    let kinds: Vec<TriggerKind> = ports
        .queue
        .pending(alarm.id())
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
            .ringing(ana.id(), alarm.id())
            .await
            .expect("ringing")[0]
            .snoozes,
        1
    );
    is(
        ports.queue.commit_ringing(snooze(ringing.clone(), 1)).await,
        conflict,
        "the same snooze twice (a concurrent snooze won)",
    );
    assert_eq!(
        audit_count(&ports).await,
        audits + 1,
        "only the accepted snooze wrote an audit record"
    );
    // A follow-up being fired when the user dismisses loses its lease.
    let leased = ports.queue.claim(at(400), 10, lease).await.expect("claim");
    let snooze_claim = leased
        .iter()
        .find(|c| c.trigger.kind == TriggerKind::Snooze(1))
        .expect("the snooze is due");

    let dismiss = |owner| ChangeSet {
        op: RingingOp::Dismiss {
            owner,
            alarm: alarm.id(),
        },
        audit: audit(&ports, Some(owner), "alarm.dismiss", alarm.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.queue.commit_ringing(dismiss(bob.id())).await,
        not_found,
        "dismissing another owner's alarm",
    );
    ports
        .queue
        .commit_ringing(dismiss(ana.id()))
        .await
        .expect("dismiss");
    assert!(
        ports
            .queue
            .ringing(ana.id(), alarm.id())
            .await
            .expect("ringing")
            .is_empty(),
        "nothing rings after a dismissal"
    );
    is(
        ports
            .queue
            .complete(
                snooze_claim.token,
                FireOutcome {
                    events: Vec::new(),
                    deliveries: Vec::new(),
                    follow_up: None,
                    next: None,
                    ringing: RingingChange::None,
                },
            )
            .await,
        lease_lost,
        "a follow-up leased before the dismissal cannot ring after it",
    );
    assert!(
        ports
            .queue
            .pending(alarm.id())
            .await
            .expect("pending")
            .is_empty(),
        "the dismissal cancelled the snooze"
    );
    is(
        ports.queue.commit_ringing(dismiss(ana.id())).await,
        not_found,
        "dismissing when nothing rings",
    );
}

async fn concurrent_claimers(new_ports: Fresh) {
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
                let batch = queue
                    .claim(at(60), 5, SignedDuration::from_secs(30))
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                for c in batch {
                    queue
                        .complete(
                            c.token,
                            FireOutcome {
                                events: Vec::new(),
                                deliveries: Vec::new(),
                                follow_up: None,
                                next: None,
                                ringing: RingingChange::None,
                            },
                        )
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
    checks!(Ports: trigger_queue, ringing_ops, concurrent_claimers)
}
