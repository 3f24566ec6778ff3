//! Conformance checks of the quota every create operation carries: alarms, exception periods, routines and webhooks are counted per owner, in the insert's own transaction, and concurrent creations cannot pass the limit.

use super::*;
use alarm_domain::limits::Quota;

fn alarm_create(ports: &Ports, owner: UserId, quota: Quota) -> ChangeSet<AlarmOp> {
    let id = AlarmId::from_uuid(ports.ids.next_uuid()).expect("v7 id source");
    let alarm = alarm_domain::model::Alarm::create(id, owner, fixtures::draft("quota"), t0())
        .expect("valid alarm");
    ChangeSet {
        op: AlarmOp::Create(alarm.clone(), quota),
        audit: audit(ports, Some(owner), "alarm.create", id.as_uuid()),
        events: vec![event(ports, id, owner, AlarmEventKind::Created)],
        triggers: vec![TriggerPlan::Reschedule {
            alarm: id,
            version: alarm.version(),
            next: None,
        }],
    }
}

fn over(result: Result<(), StoreError>, name: &str, limit: u32) {
    match result {
        Err(StoreError::OverQuota { quota, limit: l }) => {
            assert_eq!((quota, l), (name, limit), "the error names the quota");
        }
        other => panic!("expected OverQuota for {name}, got {other:?}"),
    }
}

/// The third alarm under a quota of two is refused with the quota's name
/// and nothing of it is stored; another owner has a quota of their own.
async fn alarms_stop_at_the_quota(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let quota = Quota::new("alarms_per_user", 2);
    for _ in 0..2 {
        ports
            .alarms
            .commit(alarm_create(&ports, ana.id(), quota))
            .await
            .expect("under the quota");
    }
    let third = alarm_create(&ports, ana.id(), quota);
    let third_id = match &third.op {
        AlarmOp::Create(a, _) => a.id(),
        _ => unreachable!("a create"),
    };
    over(ports.alarms.commit(third).await, "alarms_per_user", 2);
    assert!(
        matches!(
            ports.alarms.get(ana.id(), third_id).await,
            Err(StoreError::NotFound)
        ),
        "a refused create stores nothing"
    );
    let events = ports
        .events
        .list(
            ana.id(),
            third_id,
            PageRequest::new(None, 10).expect("page"),
        )
        .await
        .expect("events");
    assert!(events.items.is_empty(), "nor its events");
    ports
        .alarms
        .commit(alarm_create(&ports, bob.id(), quota))
        .await
        .expect("another owner is under their own quota");
}

/// Ten creations at once under a quota of three: exactly three are stored.
async fn concurrent_alarm_creations_cannot_pass_the_quota(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let quota = Quota::new("alarms_per_user", 3);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let change = alarm_create(&ports, ana.id(), quota);
        let store = ports.alarms.clone();
        tasks.spawn(async move {
            // A transient conflict between racing writers is retried as a
            // client would; only the quota may refuse for good.
            let mut attempts = 0;
            loop {
                match store.commit(change.clone()).await {
                    Err(StoreError::Retryable(_)) if attempts < 20 => attempts += 1,
                    other => return other,
                }
            }
        });
    }
    let mut stored = 0;
    let mut refused = 0;
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            Ok(()) => stored += 1,
            Err(StoreError::OverQuota { .. }) => refused += 1,
            Err(e) => panic!("unexpected failure: {e:?}"),
        }
    }
    assert_eq!((stored, refused), (3, 7), "exactly the quota is stored");
    let page = ports
        .alarms
        .list(ana.id(), None, PageRequest::new(None, 100).expect("page"))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 3);
}

/// Exception periods, routines and webhooks stop at their quotas too.
async fn owned_entities_stop_at_their_quotas(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let one = |name| Quota::new(name, 1);
    let period = |day| {
        ExceptionPeriod::new(
            ExceptionPeriodId::from_uuid(ports.ids.next_uuid()).expect("v7"),
            ana.id(),
            "away",
            ExceptionKind::Vacation,
            date(2026, 7, day),
            date(2026, 7, day),
        )
        .expect("period")
    };
    let period_change = |p: ExceptionPeriod| {
        let id = p.id().as_uuid();
        ChangeSet::audited(
            ExceptionOp::Create(p, one("exception_periods_per_user")),
            audit(&ports, Some(ana.id()), "exception_period.create", id),
        )
    };
    ports
        .exceptions
        .commit(period_change(period(1)))
        .await
        .expect("first period");
    over(
        ports.exceptions.commit(period_change(period(2))).await,
        "exception_periods_per_user",
        1,
    );

    let routine = || {
        Routine::new(
            RoutineId::from_uuid(ports.ids.next_uuid()).expect("v7"),
            ana.id(),
            RoutineName::parse("morning").expect("name"),
            vec![RoutineAction::parse("lights on").expect("action")],
            true,
        )
        .expect("routine")
    };
    let routine_change = |r: Routine| {
        let id = r.id().as_uuid();
        ChangeSet::audited(
            RoutineOp::Create(r, one("routines_per_user")),
            audit(&ports, Some(ana.id()), "routine.create", id),
        )
    };
    ports
        .routines
        .commit(routine_change(routine()))
        .await
        .expect("first routine");
    over(
        ports.routines.commit(routine_change(routine())).await,
        "routines_per_user",
        1,
    );

    let hook = || {
        WebhookRegistration::new(
            WebhookId::from_uuid(ports.ids.next_uuid()).expect("v7"),
            ana.id(),
            WebhookUrl::parse("https://hooks.example.com/q").expect("url"),
            WebhookEventSet::new(&[WebhookEvent::Triggered]).expect("events"),
            SecretString::from("whsec_quota"),
            true,
            0,
        )
    };
    let hook_change = |w: WebhookRegistration| {
        let id = w.id().as_uuid();
        ChangeSet::audited(
            WebhookOp::Create(w, one("webhooks_per_user")),
            audit(&ports, Some(ana.id()), "webhook.create", id),
        )
    };
    ports
        .webhooks
        .commit(hook_change(hook()))
        .await
        .expect("first webhook");
    over(
        ports.webhooks.commit(hook_change(hook())).await,
        "webhooks_per_user",
        1,
    );
}

pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        alarms_stop_at_the_quota,
        concurrent_alarm_creations_cannot_pass_the_quota,
        owned_entities_stop_at_their_quotas,
    )
}
