//! Conformance checks of [`alarm_domain::ports::ExceptionPeriodStore`].

use super::*;

use alarm_domain::jiff::civil::Date;
use alarm_domain::model::Alarm;

/// Ana's alarm (fire due at `at(60)`) and her two periods, created in the
/// order `later`, `sooner`, each commit rescheduling the alarm to `at(120)`.
struct Trips {
    ana: User,
    bob: User,
    alarm: Alarm,
    later: ExceptionPeriod,
    sooner: ExceptionPeriod,
}

pub(super) fn period(owner: UserId, start: Date, end: Date) -> ExceptionPeriod {
    ExceptionPeriod::new(
        ExceptionPeriodId::generate(),
        owner,
        "Trip",
        ExceptionKind::Travel,
        start,
        end,
    )
    .expect("period")
}

/// A change set of `op` by `actor` on period `id`, with no events and no trigger plan.
pub(super) fn change(
    ports: &Ports,
    actor: UserId,
    action: &str,
    id: ExceptionPeriodId,
    op: ExceptionOp,
) -> ChangeSet<ExceptionOp> {
    ChangeSet {
        op,
        audit: audit(ports, Some(actor), action, id.as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    }
}

async fn trips(ports: &Ports) -> Trips {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let bob = fixtures::user(ports, "bob@example.com").await;
    let alarm = fixtures::alarm(ports, ana.id(), "Wake", Some(at(60))).await;
    let later = period(ana.id(), date(2026, 3, 1), date(2026, 3, 5));
    let sooner = period(ana.id(), date(2026, 2, 1), date(2026, 2, 2));
    for p in [&later, &sooner] {
        let mut create = change(
            ports,
            ana.id(),
            "exception_period.create",
            p.id(),
            ExceptionOp::Create(
                p.clone(),
                alarm_domain::limits::Quota::unlimited("exception_periods"),
            ),
        );
        create.triggers = vec![TriggerPlan::Reschedule {
            alarm: alarm.id(),
            version: alarm.version(),
            next: Some(trigger(&alarm, at(120), TriggerKind::Fire)),
        }];
        ports
            .exceptions
            .commit(create)
            .await
            .expect("create period");
    }
    Trips {
        ana,
        bob,
        alarm,
        later,
        sooner,
    }
}

/// Bob's own period, stored.
async fn bobs_period(ports: &Ports, bob: &User) -> ExceptionPeriod {
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
        .commit(change(
            ports,
            bob.id(),
            "exception_period.create",
            bobs.id(),
            ExceptionOp::Create(
                bobs.clone(),
                alarm_domain::limits::Quota::unlimited("exception_periods"),
            ),
        ))
        .await
        .expect("bob's period");
    bobs
}

/// A deletion of `id` by `owner`.
fn delete(ports: &Ports, owner: UserId, id: ExceptionPeriodId) -> ChangeSet<ExceptionOp> {
    change(
        ports,
        owner,
        "exception_period.delete",
        id,
        ExceptionOp::Delete { owner, id },
    )
}

/// `list_many` returns only the named owners' periods, each owner's by start date.
async fn list_many_returns_the_named_owners_periods_by_start_date(new_ports: Fresh) {
    let ports = new_ports().await;
    let Trips {
        ana,
        bob,
        later,
        sooner,
        ..
    } = trips(&ports).await;
    bobs_period(&ports, &bob).await;
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
}

/// `list` returns the owner's periods by start date, and only theirs (a deleted one is gone).
async fn list_is_the_owners_periods_by_start_date(new_ports: Fresh) {
    let ports = new_ports().await;
    let Trips {
        ana,
        bob,
        later,
        sooner,
        ..
    } = trips(&ports).await;
    let bobs = bobs_period(&ports, &bob).await;
    ports
        .exceptions
        .commit(delete(&ports, bob.id(), bobs.id()))
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
}

/// A period's commit applies its trigger plan: the owner's alarm is rescheduled.
async fn period_commit_reschedules_the_owners_alarm(new_ports: Fresh) {
    let ports = new_ports().await;
    let Trips { alarm, .. } = trips(&ports).await;
    assert_eq!(
        ports.queue.pending(alarm.id()).await.expect("pending")[0].due_at,
        at(120),
        "the period's commit rescheduled the owner's alarm"
    );
}

/// Another owner can neither read, delete nor update a period.
async fn another_owner_can_neither_get_delete_nor_update(new_ports: Fresh) {
    let ports = new_ports().await;
    let Trips { bob, later, .. } = trips(&ports).await;
    is(
        ports.exceptions.get(bob.id(), later.id()).await,
        not_found,
        "another owner's period",
    );
    is(
        ports
            .exceptions
            .commit(delete(&ports, bob.id(), later.id()))
            .await,
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
    let update = change(
        &ports,
        bob.id(),
        "exception_period.update",
        later.id(),
        ExceptionOp::Update(foreign),
    );
    is(
        ports.exceptions.commit(update).await,
        not_found,
        "updating another owner's period",
    );
    assert_eq!(
        ports
            .exceptions
            .get(later.owner(), later.id())
            .await
            .expect("get"),
        later,
        "the refused delete and update left the owner's period as it was"
    );
}

/// Creating a period whose id exists conflicts.
async fn creating_an_existing_period_id_conflicts(new_ports: Fresh) {
    let ports = new_ports().await;
    let Trips { ana, later, .. } = trips(&ports).await;
    let dup = change(
        &ports,
        ana.id(),
        "exception_period.create",
        later.id(),
        ExceptionOp::Create(
            later.clone(),
            alarm_domain::limits::Quota::unlimited("exception_periods"),
        ),
    );
    is(
        ports.exceptions.commit(dup).await,
        conflict,
        "creating an existing period id",
    );
}

/// A plan computed from another version of the alarm than the stored one is skipped.
async fn plan_for_another_alarm_version_is_skipped(new_ports: Fresh) {
    let ports = new_ports().await;
    let Trips {
        ana, alarm, later, ..
    } = trips(&ports).await;
    let mut stale_plan = change(
        &ports,
        ana.id(),
        "exception_period.update",
        later.id(),
        ExceptionOp::Update(later.clone()),
    );
    stale_plan.triggers = vec![TriggerPlan::Reschedule {
        alarm: alarm.id(),
        version: alarm.version().next(),
        next: Some(trigger(&alarm, at(999), TriggerKind::Fire)),
    }];
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
}

/// An update by the owner replaces the stored period.
async fn update_replaces_the_period(new_ports: Fresh) {
    let ports = new_ports().await;
    let Trips { ana, later, .. } = trips(&ports).await;
    let moved = ExceptionPeriod::new(
        later.id(),
        ana.id(),
        "Trip",
        ExceptionKind::Vacation,
        date(2026, 1, 1),
        date(2026, 1, 2),
    )
    .expect("period");
    let update = change(
        &ports,
        ana.id(),
        "exception_period.update",
        later.id(),
        ExceptionOp::Update(moved.clone()),
    );
    ports.exceptions.commit(update).await.expect("update");
    assert_eq!(
        ports
            .exceptions
            .get(ana.id(), later.id())
            .await
            .expect("get"),
        moved
    );
}

/// A deletion by the owner removes the period.
async fn delete_removes_the_period(new_ports: Fresh) {
    let ports = new_ports().await;
    let Trips { ana, later, .. } = trips(&ports).await;
    ports
        .exceptions
        .commit(delete(&ports, ana.id(), later.id()))
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
    checks!(Ports:
        list_many_returns_the_named_owners_periods_by_start_date,
        list_is_the_owners_periods_by_start_date,
        period_commit_reschedules_the_owners_alarm,
        another_owner_can_neither_get_delete_nor_update,
        creating_an_existing_period_id_conflicts,
        plan_for_another_alarm_version_is_skipped,
        update_replaces_the_period,
        delete_removes_the_period,
    )
}
