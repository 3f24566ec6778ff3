//! Conformance checks of [`alarm_domain::ports::TriggerQueue`].

use super::*;

/// What the trigger engine needs beyond claim and complete: batch loads,
/// lease renewal (heartbeat), the store's clock, the engine right, the
/// ringing list, and expiry triggers cancelled by a snooze.
async fn engine_support(new_ports: Fresh) {
    let lease = SignedDuration::from_secs(30);
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let one = fixtures::alarm(&ports, ana.id(), "One", Some(at(10))).await;
    let two = fixtures::alarm(&ports, bob.id(), "Two", Some(at(10))).await;

    let mut loaded: Vec<_> = ports
        .alarms
        .get_many(vec![two.id(), AlarmId::generate(), one.id()])
        .await
        .expect("get_many")
        .iter()
        .map(|a| a.id())
        .collect();
    loaded.sort();
    let mut want = vec![one.id(), two.id()];
    want.sort();
    assert_eq!(
        loaded, want,
        "get_many loads every owner's alarms and skips unknown ids"
    );

    let mut users: Vec<UserId> = ports
        .users
        .get_many(vec![bob.id(), UserId::generate(), ana.id()])
        .await
        .expect("users get_many")
        .iter()
        .map(|u| u.id())
        .collect();
    users.sort();
    let mut want_users = vec![ana.id(), bob.id()];
    want_users.sort();
    assert_eq!(users, want_users, "users get_many skips unknown ids");

    let store_now = ports.queue.store_time().await.expect("store_time");
    let drift = store_now
        .duration_since(alarm_domain::jiff::Timestamp::now())
        .abs();
    assert!(
        drift < SignedDuration::from_secs(300),
        "the store's clock is a real clock (off by {drift:?})"
    );

    // Heartbeat: current leases are extended, dead ones reported.
    let claimed = ports.queue.claim(at(10), 10, lease).await.expect("claim");
    assert_eq!(claimed.len(), 2);
    let lost = ports
        .queue
        .renew(vec![claimed[0].token, claimed[1].token], at(100))
        .await
        .expect("renew");
    assert!(lost.is_empty(), "both leases are current: {lost:?}");
    assert_eq!(
        ports.queue.rescue(at(99)).await.expect("rescue"),
        0,
        "a renewed lease is not rescued before its new end"
    );
    assert_eq!(ports.queue.rescue(at(100)).await.expect("rescue"), 2);
    let again = ports.queue.claim(at(100), 10, lease).await.expect("claim");
    assert_eq!(again.len(), 2, "rescued triggers are claimable again");
    let lost = ports
        .queue
        .renew(vec![claimed[0].token, again[0].token], at(200))
        .await
        .expect("renew");
    assert_eq!(
        lost,
        [claimed[0].token],
        "a rescued claim's token is dead to renew"
    );
    let empty = FireOutcome {
        events: Vec::new(),
        deliveries: Vec::new(),
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
    };
    is(
        ports.queue.complete(claimed[1].token, empty).await,
        lease_lost,
        "a paused worker whose claim was rescued cannot complete",
    );

    // Ring both; the ringing list is per owner.
    let mut items = Vec::new();
    for c in &again {
        let ringing = Ringing {
            alarm: c.trigger.alarm,
            owner: c.trigger.owner,
            occurrence: c.trigger.occurrence,
            since: at(100),
            snoozes: 0,
            level: 3,
            snoozed: false,
        };
        let expiry = alarm_domain::trigger::Trigger {
            kind: TriggerKind::Expire,
            due_at: at(1900),
            ..c.trigger.clone()
        };
        items.push((
            c.token,
            FireOutcome {
                events: Vec::new(),
                deliveries: Vec::new(),
                follow_up: Some(expiry),
                next: None,
                ringing: RingingChange::Upsert(ringing),
            },
        ));
    }
    let lost = ports
        .queue
        .complete_many(items)
        .await
        .expect("complete_many");
    assert!(lost.is_empty());
    let of_ana = ports.queue.ringing_of(ana.id()).await.expect("ringing_of");
    assert_eq!(
        of_ana.iter().map(|r| r.alarm).collect::<Vec<_>>(),
        [one.id()],
        "the ringing list holds only the owner's occurrences"
    );
    let pending = ports.queue.pending(one.id()).await.expect("pending");
    assert_eq!(
        pending.iter().map(|t| t.kind).collect::<Vec<_>>(),
        [TriggerKind::Expire],
        "an expiry trigger is stored and read back"
    );
    let snooze_trigger = alarm_domain::trigger::Trigger {
        kind: TriggerKind::Snooze(1),
        due_at: at(400),
        ..pending[0].clone()
    };
    ports
        .queue
        .commit_ringing(ChangeSet {
            op: RingingOp::Snooze {
                ringing: Ringing {
                    snoozes: 1,
                    snoozed: true,
                    ..of_ana[0].clone()
                },
                trigger: snooze_trigger,
            },
            audit: audit(&ports, Some(ana.id()), "alarm.snooze", one.id().as_uuid()),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
        .expect("snooze");
    assert_eq!(
        ports
            .queue
            .pending(one.id())
            .await
            .expect("pending")
            .iter()
            .map(|t| t.kind)
            .collect::<Vec<_>>(),
        [TriggerKind::Snooze(1)],
        "a snooze cancels the occurrence's expiry"
    );

    // The engine right: renewable by its holder, free after unlease or expiry.
    let (a, b) = (ports.ids.next_uuid(), ports.ids.next_uuid());
    assert!(
        ports
            .queue
            .engine_lease(a, at(0), at(30))
            .await
            .expect("lease")
    );
    assert!(
        ports
            .queue
            .engine_lease(a, at(10), at(40))
            .await
            .expect("lease"),
        "the holder renews its right"
    );
    ports.queue.engine_unlease(a).await.expect("unlease");
    assert!(
        ports
            .queue
            .engine_lease(b, at(11), at(41))
            .await
            .expect("lease"),
        "a released right can be taken"
    );
    assert!(
        ports
            .queue
            .engine_lease(a, at(41), at(71))
            .await
            .expect("lease"),
        "an expired right can be taken"
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports: engine_support)
}
