//! Conformance checks of [`alarm_domain::ports::ExceptionPeriodStore`].

use super::*;

/// [`alarm_domain::ports::ExceptionPeriodStore`].
async fn exception_period_store(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let alarm = fixtures::alarm(&ports, ana.id(), "Wake", Some(at(60))).await;
    let period = |start, end| {
        ExceptionPeriod::new(
            ExceptionPeriodId::generate(),
            ana.id(),
            "Trip",
            ExceptionKind::Travel,
            start,
            end,
        )
        .expect("period")
    };
    let later = period(date(2026, 3, 1), date(2026, 3, 5));
    let sooner = period(date(2026, 2, 1), date(2026, 2, 2));
    for p in [&later, &sooner] {
        let change = ChangeSet {
            op: ExceptionOp::Create(p.clone()),
            audit: audit(
                &ports,
                Some(ana.id()),
                "exception_period.create",
                p.id().as_uuid(),
            ),
            events: Vec::new(),
            triggers: vec![TriggerPlan::Reschedule {
                alarm: alarm.id(),
                version: alarm.version(),
                next: Some(trigger(&alarm, at(120), TriggerKind::Fire)),
            }],
        };
        ports
            .exceptions
            .commit(change)
            .await
            .expect("create period");
    }
    let bobs = ExceptionPeriod::new(
        ExceptionPeriodId::generate(),
        bob.id(),
        "Bob's",
        ExceptionKind::Travel,
        date(2026, 1, 10),
        date(2026, 1, 11),
    )
    .expect("period");
    ports
        .exceptions
        .commit(ChangeSet {
            op: ExceptionOp::Create(bobs.clone()),
            audit: audit(
                &ports,
                Some(bob.id()),
                "exception_period.create",
                bobs.id().as_uuid(),
            ),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
        .expect("bob's period");
    let many = ports
        .exceptions
        .list_many(vec![ana.id()])
        .await
        .expect("list_many");
    assert_eq!(
        many.iter().map(|p| p.id()).collect::<Vec<_>>(),
        [sooner.id(), later.id()],
        "list_many: only the named owners' periods, each owner's by start date"
    );
    assert_eq!(
        ports
            .exceptions
            .list_many(vec![ana.id(), bob.id()])
            .await
            .expect("list_many")
            .len(),
        3
    );
    ports
        .exceptions
        .commit(ChangeSet {
            op: ExceptionOp::Delete {
                owner: bob.id(),
                id: bobs.id(),
            },
            audit: audit(
                &ports,
                Some(bob.id()),
                "exception_period.delete",
                bobs.id().as_uuid(),
            ),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
        .expect("bob's period removed again");
    let list = ports.exceptions.list(ana.id()).await.expect("list");
    assert_eq!(
        list.iter().map(ExceptionPeriod::id).collect::<Vec<_>>(),
        [sooner.id(), later.id()],
        "ordered by start date"
    );
    assert!(
        ports
            .exceptions
            .list(bob.id())
            .await
            .expect("list")
            .is_empty(),
        "scoped to the owner"
    );
    assert_eq!(
        ports.queue.pending(alarm.id()).await.expect("pending")[0].due_at,
        at(120),
        "the period's commit rescheduled the owner's alarm"
    );
    is(
        ports.exceptions.get(bob.id(), later.id()).await,
        not_found,
        "another owner's period",
    );
    let dup = ChangeSet {
        op: ExceptionOp::Create(later.clone()),
        audit: audit(
            &ports,
            Some(ana.id()),
            "exception_period.create",
            later.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.exceptions.commit(dup).await,
        conflict,
        "creating an existing period id",
    );
    let del = |owner| ChangeSet {
        op: ExceptionOp::Delete {
            owner,
            id: later.id(),
        },
        audit: audit(
            &ports,
            Some(owner),
            "exception_period.delete",
            later.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.exceptions.commit(del(bob.id())).await,
        not_found,
        "deleting another owner's period",
    );
    let foreign = ExceptionPeriod::new(
        later.id(),
        bob.id(),
        "Trip",
        ExceptionKind::Travel,
        date(2026, 3, 1),
        date(2026, 3, 5),
    )
    .expect("period");
    let change = ChangeSet {
        op: ExceptionOp::Update(foreign),
        audit: audit(
            &ports,
            Some(bob.id()),
            "exception_period.update",
            later.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.exceptions.commit(change).await,
        not_found,
        "updating another owner's period",
    );
    // A plan computed from another version of the alarm than the stored one is skipped.
    let stale_plan = ChangeSet {
        op: ExceptionOp::Update(later.clone()),
        audit: audit(
            &ports,
            Some(ana.id()),
            "exception_period.update",
            later.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: vec![TriggerPlan::Reschedule {
            alarm: alarm.id(),
            version: alarm.version().next(),
            next: Some(trigger(&alarm, at(999), TriggerKind::Fire)),
        }],
    };
    ports
        .exceptions
        .commit(stale_plan)
        .await
        .expect("the period change itself commits");
    assert_eq!(
        ports.queue.pending(alarm.id()).await.expect("pending")[0].due_at,
        at(120),
        "a plan stamped with a version the alarm does not have must not replace its trigger"
    );
    let moved = ExceptionPeriod::new(
        later.id(),
        ana.id(),
        "Trip",
        ExceptionKind::Vacation,
        date(2026, 1, 1),
        date(2026, 1, 2),
    )
    .expect("period");
    let change = ChangeSet {
        op: ExceptionOp::Update(moved.clone()),
        audit: audit(
            &ports,
            Some(ana.id()),
            "exception_period.update",
            later.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.exceptions.commit(change).await.expect("update");
    assert_eq!(
        ports
            .exceptions
            .get(ana.id(), later.id())
            .await
            .expect("get"),
        moved
    );
    ports
        .exceptions
        .commit(del(ana.id()))
        .await
        .expect("delete");
    is(
        ports.exceptions.get(ana.id(), later.id()).await,
        not_found,
        "deleted",
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports: exception_period_store)
}
