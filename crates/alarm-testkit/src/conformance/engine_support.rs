//! Conformance checks of what the engine relies on besides claims: batch loads, renewals, the ringing list, expiry triggers and [`alarm_domain::ports::EngineRight`].
//!
//! What the trigger engine needs beyond claim and complete: batch loads,
//! lease renewal (heartbeat), the store's clock, the engine right, the
//! ringing list, and expiry triggers cancelled by a snooze.

use super::*;

use alarm_domain::model::Alarm;
use alarm_domain::trigger::Claimed;

fn lease() -> SignedDuration {
    SignedDuration::from_secs(30)
}

/// Ana's alarm "One" and Bob's alarm "Two", both due at `at(10)`.
struct Two {
    ana: User,
    bob: User,
    one: Alarm,
    two: Alarm,
}

async fn two_owners(ports: &Ports) -> Two {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let bob = fixtures::user(ports, "bob@example.com").await;
    let one = fixtures::alarm(ports, ana.id(), "One", Some(at(10))).await;
    let two = fixtures::alarm(ports, bob.id(), "Two", Some(at(10))).await;
    Two { ana, bob, one, two }
}

/// Both triggers claimed at `at(10)` (leased until `at(40)`).
async fn claim_both(ports: &Ports) -> Vec<Claimed> {
    let claimed = ports.queue.claim(at(10), 10, lease()).await.expect("claim");
    assert_eq!(claimed.len(), 2);
    claimed
}

/// Alarms' `get_many` loads every owner's alarms and skips unknown ids.
async fn alarms_get_many_loads_every_owner_and_skips_unknown_ids(new_ports: Fresh) {
    let ports = new_ports().await;
    let Two { one, two, .. } = two_owners(&ports).await;
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
}

/// Users' `get_many` loads the users named and skips unknown ids.
async fn users_get_many_skips_unknown_ids(new_ports: Fresh) {
    let ports = new_ports().await;
    let Two { ana, bob, .. } = two_owners(&ports).await;
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
}

/// The store's clock is a real clock.
async fn store_time_is_a_real_clock(new_ports: Fresh) {
    let ports = new_ports().await;
    let store_now = ports.queue.store_time().await.expect("store_time");
    let drift = store_now
        .duration_since(alarm_domain::jiff::Timestamp::now())
        .abs();
    assert!(
        drift < SignedDuration::from_secs(300),
        "the store's clock is a real clock (off by {drift:?})"
    );
}

/// Heartbeat: current leases are extended, and not rescued before their new end.
async fn renew_extends_current_leases(new_ports: Fresh) {
    let ports = new_ports().await;
    two_owners(&ports).await;
    let claimed = claim_both(&ports).await;
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
}

/// A rescued claim's token is dead: renew reports it, and it cannot complete.
async fn a_rescued_claims_token_is_dead_to_renew_and_complete(new_ports: Fresh) {
    let ports = new_ports().await;
    two_owners(&ports).await;
    let claimed = claim_both(&ports).await;
    ports
        .queue
        .renew(vec![claimed[0].token, claimed[1].token], at(100))
        .await
        .expect("renew");
    assert_eq!(ports.queue.rescue(at(100)).await.expect("rescue"), 2);
    let again = ports
        .queue
        .claim(at(100), 10, lease())
        .await
        .expect("claim");
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
}

/// Both alarms claimed and completed in one batch, each ringing with an
/// expiry trigger due at `at(1900)`.
async fn both_ringing(ports: &Ports) -> Two {
    let owners = two_owners(ports).await;
    let mut items = Vec::new();
    for c in claim_both(ports).await {
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
    owners
}

/// The ringing list holds only the owner's occurrences.
async fn the_ringing_list_is_per_owner(new_ports: Fresh) {
    let ports = new_ports().await;
    let Two { ana, one, .. } = both_ringing(&ports).await;
    let of_ana = ports.queue.ringing_of(ana.id()).await.expect("ringing_of");
    assert_eq!(
        of_ana.iter().map(|r| r.alarm).collect::<Vec<_>>(),
        [one.id()],
        "the ringing list holds only the owner's occurrences"
    );
}

/// An expiry trigger is stored and read back, and a snooze cancels it.
async fn an_expiry_trigger_is_stored_and_cancelled_by_a_snooze(new_ports: Fresh) {
    let ports = new_ports().await;
    let Two { ana, one, .. } = both_ringing(&ports).await;
    let of_ana = ports.queue.ringing_of(ana.id()).await.expect("ringing_of");
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
}

/// The engine right: renewable by its holder, and free once released.
async fn the_engine_right_is_renewable_and_free_after_unlease(new_ports: Fresh) {
    let ports = new_ports().await;
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
}

/// The engine right is free once its holder's lease has expired.
async fn an_expired_engine_right_can_be_taken(new_ports: Fresh) {
    let ports = new_ports().await;
    let (a, b) = (ports.ids.next_uuid(), ports.ids.next_uuid());
    assert!(
        ports
            .queue
            .engine_lease(b, at(11), at(41))
            .await
            .expect("lease")
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
    checks!(Ports:
        alarms_get_many_loads_every_owner_and_skips_unknown_ids,
        users_get_many_skips_unknown_ids,
        store_time_is_a_real_clock,
        renew_extends_current_leases,
        a_rescued_claims_token_is_dead_to_renew_and_complete,
        the_ringing_list_is_per_owner,
        an_expiry_trigger_is_stored_and_cancelled_by_a_snooze,
        the_engine_right_is_renewable_and_free_after_unlease,
        an_expired_engine_right_can_be_taken,
    )
}
