//! The engine over the testkit's in-memory ports and manual clock, as a developer embedding the domain would drive it: ring, escalate, snooze, expire, all by `tick`.

use std::sync::Arc;

use alarm_domain::jiff::SignedDuration;
use alarm_domain::model::{AlarmEventKind, EscalationPolicy};
use alarm_domain::ports::PageRequest;
use alarm_domain::services::{Actor, AlarmService};
use alarm_domain::trigger::TriggerKind;
use alarm_runner::{Engine, RunnerConfig};
use alarm_testkit::{InMemory, ManualClock, SequentialIds, fixtures};

#[tokio::test]
async fn rings_escalates_snoozes_and_expires_on_the_fakes() {
    let clock = Arc::new(ManualClock::new(fixtures::t0()));
    let ports = InMemory::new().ports(clock.clone(), Arc::new(SequentialIds::new()));
    let engine = Engine::new(ports.clone(), RunnerConfig::default());
    let user = fixtures::user(&ports, "ana@example.com").await;
    let ana = Actor {
        user: user.id(),
        role: user.role(),
        correlation_id: "fakes".to_owned(),
    };
    let mut draft = fixtures::draft("Wake");
    draft.escalation = EscalationPolicy::new(1, 5, 10).expect("policy");
    let service = AlarmService::new(ports.clone());
    let alarm = service.create(&ana, draft).await.expect("create");
    // 07:00 UTC is an hour after t0.
    let seven = fixtures::t0() + SignedDuration::from_hours(1);
    let step = |t| {
        clock.set(t);
        engine.tick(t)
    };
    assert_eq!(
        step(seven - SignedDuration::from_secs(1))
            .await
            .expect("tick")
            .rang,
        0
    );
    assert_eq!(step(seven).await.expect("tick").rang, 1);
    let r = step(seven + SignedDuration::from_mins(5))
        .await
        .expect("tick");
    assert_eq!(r.rang, 1, "level 1 escalation");
    clock.set(seven + SignedDuration::from_mins(6));
    service.snooze(&ana, alarm.id()).await.expect("snooze");
    assert_eq!(
        step(seven + SignedDuration::from_mins(11))
            .await
            .expect("tick")
            .rang,
        1
    );
    let pending: Vec<TriggerKind> = ports
        .queue
        .pending(alarm.id())
        .await
        .expect("pending")
        .iter()
        .map(|t| t.kind)
        .collect();
    assert_eq!(
        pending,
        [TriggerKind::Expire, TriggerKind::Fire],
        "past the last level only the expiry is left, beside tomorrow's fire"
    );
    let r = step(seven + SignedDuration::from_mins(41))
        .await
        .expect("tick");
    assert_eq!(r.expired, 1);
    let kinds: Vec<AlarmEventKind> = ports
        .events
        .list(ana.user, alarm.id(), PageRequest::first())
        .await
        .expect("events")
        .items
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            AlarmEventKind::Created,
            AlarmEventKind::Triggered,
            AlarmEventKind::Escalated,
            AlarmEventKind::Snoozed,
            AlarmEventKind::Triggered,
            AlarmEventKind::Expired,
        ]
    );
}
