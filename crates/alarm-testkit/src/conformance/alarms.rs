//! Conformance checks of [`alarm_domain::ports::AlarmStore`].

use super::*;

use alarm_domain::jiff::Timestamp;
use alarm_domain::model::{Alarm, AlarmName, AlarmVersion};

/// Ana and Bob, and Ana's alarm "Wake" with its fire trigger due at `at(3600)`.
struct Wake {
    ana: User,
    bob: User,
    alarm: Alarm,
}

async fn wake(ports: &Ports) -> Wake {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let bob = fixtures::user(ports, "bob@example.com").await;
    let alarm = fixtures::alarm(ports, ana.id(), "Wake", Some(at(3600))).await;
    Wake { ana, bob, alarm }
}

/// An update of `alarm` (as of `expected`) to `next`, rescheduling its fire to `fire`.
pub(super) fn update(
    ports: &Ports,
    alarm: &Alarm,
    expected: AlarmVersion,
    next: &Alarm,
    fire: Timestamp,
) -> ChangeSet<AlarmOp> {
    ChangeSet {
        op: AlarmOp::Update {
            alarm: next.clone(),
            expected,
        },
        audit: audit(
            ports,
            Some(alarm.owner()),
            "alarm.update",
            alarm.id().as_uuid(),
        ),
        events: vec![event(
            ports,
            alarm.id(),
            alarm.owner(),
            AlarmEventKind::Updated,
        )],
        triggers: vec![TriggerPlan::Reschedule {
            alarm: alarm.id(),
            version: next.version(),
            next: Some(trigger(next, fire, TriggerKind::Fire)),
        }],
    }
}

/// "Wake" renamed to "Renamed" (version 2), its fire moved to `at(7200)`; returns version 2 as stored.
async fn renamed(ports: &Ports, alarm: &Alarm) -> Alarm {
    let mut draft = alarm.draft().clone();
    draft.name = AlarmName::parse("Renamed").expect("name");
    let v2 = alarm.revise(draft, at(10)).expect("revise");
    ports
        .alarms
        .commit(update(ports, alarm, alarm.version(), &v2, at(7200)))
        .await
        .expect("update at the current version");
    ports
        .alarms
        .get(alarm.owner(), alarm.id())
        .await
        .expect("get")
}

/// A deletion of `alarm` by `owner` as of `expected`, cancelling its triggers.
fn delete(
    ports: &Ports,
    alarm: &Alarm,
    owner: UserId,
    expected: AlarmVersion,
) -> ChangeSet<AlarmOp> {
    ChangeSet {
        op: AlarmOp::Delete {
            owner,
            id: alarm.id(),
            expected,
        },
        audit: audit(ports, Some(owner), "alarm.delete", alarm.id().as_uuid()),
        events: vec![event(
            ports,
            alarm.id(),
            alarm.owner(),
            AlarmEventKind::Deleted,
        )],
        triggers: vec![TriggerPlan::CancelAll { alarm: alarm.id() }],
    }
}

/// An alarm is read back by its owner (and by `get_any`), never by another owner.
async fn only_the_owner_gets_an_alarm(new_ports: Fresh) {
    let ports = new_ports().await;
    let Wake { ana, bob, alarm } = wake(&ports).await;
    assert_eq!(
        ports.alarms.get(ana.id(), alarm.id()).await.expect("get"),
        alarm
    );
    is(
        ports.alarms.get(bob.id(), alarm.id()).await,
        not_found,
        "another owner's alarm is not found",
    );
    assert_eq!(
        ports
            .alarms
            .get_any(alarm.id())
            .await
            .expect("get_any")
            .id(),
        alarm.id()
    );
}

/// A create commits its trigger plan with it.
async fn create_commits_its_trigger_plan(new_ports: Fresh) {
    let ports = new_ports().await;
    let Wake { alarm, .. } = wake(&ports).await;
    let pending = ports.queue.pending(alarm.id()).await.expect("pending");
    assert_eq!(pending.len(), 1, "the create committed its trigger plan");
    assert_eq!(pending[0].due_at, at(3600));
}

/// Creating an alarm whose id exists conflicts.
async fn creating_an_existing_alarm_id_conflicts(new_ports: Fresh) {
    let ports = new_ports().await;
    let Wake { ana, alarm, .. } = wake(&ports).await;
    let dup = ChangeSet {
        op: AlarmOp::Create(
            alarm.clone(),
            alarm_domain::limits::Quota::unlimited("alarms"),
        ),
        audit: audit(&ports, Some(ana.id()), "alarm.create", alarm.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.alarms.commit(dup).await,
        conflict,
        "creating an existing alarm id",
    );
}

/// An update at the current version stores the new version and replaces the fire trigger.
async fn update_at_the_current_version_stores_and_reschedules(new_ports: Fresh) {
    let ports = new_ports().await;
    let Wake { alarm, .. } = wake(&ports).await;
    let stored = renamed(&ports, &alarm).await;
    assert_eq!(stored.version().get(), 2);
    assert_eq!(stored.name().as_str(), "Renamed");
    let pending = ports.queue.pending(alarm.id()).await.expect("pending");
    assert_eq!(
        pending.iter().map(|t| t.due_at).collect::<Vec<_>>(),
        [at(7200)],
        "reschedule replaced the fire trigger"
    );
}

/// A stale update stores nothing: not the alarm, not the audit record, not the event, not the trigger.
async fn stale_update_stores_nothing(new_ports: Fresh) {
    let ports = new_ports().await;
    let Wake { ana, alarm, .. } = wake(&ports).await;
    renamed(&ports, &alarm).await;
    let audits = audit_count(&ports).await;
    let events_before = ports
        .events
        .list(ana.id(), alarm.id(), PageRequest::first())
        .await
        .expect("events")
        .items
        .len();
    let v2_again = alarm.revise(alarm.draft().clone(), at(20)).expect("revise");
    is(
        ports
            .alarms
            .commit(update(&ports, &alarm, alarm.version(), &v2_again, at(9999)))
            .await,
        stale,
        "update based on an old version",
    );
    assert_eq!(
        ports
            .alarms
            .get(ana.id(), alarm.id())
            .await
            .expect("get")
            .name()
            .as_str(),
        "Renamed"
    );
    assert_eq!(
        audit_count(&ports).await,
        audits,
        "a refused change set writes no audit record"
    );
    assert_eq!(
        ports
            .events
            .list(ana.id(), alarm.id(), PageRequest::first())
            .await
            .expect("events")
            .items
            .len(),
        events_before,
        "… and no event"
    );
    assert_eq!(
        ports
            .queue
            .pending(alarm.id())
            .await
            .expect("pending")
            .iter()
            .map(|t| t.due_at)
            .collect::<Vec<_>>(),
        [at(7200)],
        "… and no trigger change"
    );
}

/// All or nothing: a change set whose audit id already exists is refused whole.
async fn change_set_with_a_duplicate_audit_id_is_refused_whole(new_ports: Fresh) {
    let ports = new_ports().await;
    let Wake { ana, alarm, .. } = wake(&ports).await;
    let stored = renamed(&ports, &alarm).await;
    let v3 = stored
        .revise(stored.draft().clone(), at(30))
        .expect("revise");
    let mut reused = update(&ports, &alarm, stored.version(), &v3, at(5000));
    reused.audit.id = ports
        .audit
        .list(None, PageRequest::first())
        .await
        .expect("audit")
        .items[0]
        .id;
    is(
        ports.alarms.commit(reused).await,
        conflict,
        "a change set with a duplicate audit id",
    );
    assert_eq!(
        ports
            .alarms
            .get(ana.id(), alarm.id())
            .await
            .expect("get")
            .version()
            .get(),
        2,
        "the alarm change was rolled back with it"
    );
}

/// Updating or deleting another owner's alarm is not found, even at its current version.
async fn another_owner_can_neither_update_nor_delete(new_ports: Fresh) {
    let ports = new_ports().await;
    let Wake { ana, bob, alarm } = wake(&ports).await;
    let stored = renamed(&ports, &alarm).await;
    let v3 = stored
        .revise(stored.draft().clone(), at(30))
        .expect("revise");
    let foreign = Alarm::restore(
        alarm.id(),
        bob.id(),
        v3.draft().clone(),
        v3.version(),
        t0(),
        t0(),
    );
    let change = ChangeSet {
        op: AlarmOp::Update {
            alarm: foreign,
            expected: stored.version(),
        },
        audit: audit(&ports, Some(bob.id()), "alarm.update", alarm.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.alarms.commit(change).await,
        not_found,
        "updating another owner's alarm",
    );
    is(
        ports
            .alarms
            .commit(delete(&ports, &alarm, bob.id(), stored.version()))
            .await,
        not_found,
        "deleting another owner's alarm",
    );
    assert_eq!(
        ports.alarms.get(ana.id(), alarm.id()).await.expect("get"),
        stored,
        "the refused update and delete left the owner's alarm as it was"
    );
}

/// A deletion based on an old version is stale.
async fn deleting_based_on_an_old_version_is_stale(new_ports: Fresh) {
    let ports = new_ports().await;
    let Wake { ana, alarm, .. } = wake(&ports).await;
    renamed(&ports, &alarm).await;
    is(
        ports
            .alarms
            .commit(delete(&ports, &alarm, ana.id(), alarm.version()))
            .await,
        stale,
        "deleting based on an old version",
    );
}

/// A deletion removes the alarm and cancels its triggers; its events stay readable.
async fn delete_removes_the_alarm_and_its_triggers_but_keeps_events(new_ports: Fresh) {
    let ports = new_ports().await;
    let Wake { ana, alarm, .. } = wake(&ports).await;
    let stored = renamed(&ports, &alarm).await;
    ports
        .alarms
        .commit(delete(&ports, &alarm, ana.id(), stored.version()))
        .await
        .expect("delete");
    is(
        ports.alarms.get(ana.id(), alarm.id()).await,
        not_found,
        "a deleted alarm is gone",
    );
    assert!(
        ports
            .queue
            .pending(alarm.id())
            .await
            .expect("pending")
            .is_empty(),
        "deletion cancelled its triggers"
    );
    assert!(
        !ports
            .events
            .list(ana.id(), alarm.id(), PageRequest::first())
            .await
            .expect("events")
            .items
            .is_empty(),
        "a deleted alarm's events stay readable"
    );
}

/// An owner with five alarms ("A0".."A4"), and another owner with one; returns the owner and the five ids, sorted.
async fn owner_with_five_alarms(ports: &Ports) -> (User, Vec<AlarmId>) {
    let owner = fixtures::user(ports, "pages@example.com").await;
    let other = fixtures::user(ports, "other@example.com").await;
    fixtures::alarm(ports, other.id(), "Not mine", None).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            fixtures::alarm(ports, owner.id(), &format!("A{i}"), None)
                .await
                .id(),
        );
    }
    ids.sort();
    (owner, ids)
}

/// Pages walk the owner's alarms in id order, each once, with no gaps.
async fn list_pages_walk_the_owners_alarms_in_id_order(new_ports: Fresh) {
    let ports = new_ports().await;
    let (owner, ids) = owner_with_five_alarms(&ports).await;
    let mut seen: Vec<AlarmId> = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = ports
            .alarms
            .list(owner.id(), None, PageRequest::new(after, 2).expect("limit"))
            .await
            .expect("list");
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|a| a.id()));
        pages += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "pages walk the owner's alarms in id order, each once"
    );
    assert_eq!(pages, 3);
}

/// The enabled filter of `list` splits enabled from disabled alarms.
async fn list_filters_by_enabled(new_ports: Fresh) {
    let ports = new_ports().await;
    let (owner, ids) = owner_with_five_alarms(&ports).await;
    let first = ports.alarms.get(owner.id(), ids[0]).await.expect("get");
    let mut off = first.draft().clone();
    off.enabled = false;
    let disabled = first.revise(off, at(1)).expect("revise");
    let change = ChangeSet {
        op: AlarmOp::Update {
            alarm: disabled,
            expected: first.version(),
        },
        audit: audit(
            &ports,
            Some(owner.id()),
            "alarm.disable",
            first.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.alarms.commit(change).await.expect("disable");
    let on = ports
        .alarms
        .list(owner.id(), Some(true), PageRequest::first())
        .await
        .expect("list");
    let off = ports
        .alarms
        .list(owner.id(), Some(false), PageRequest::first())
        .await
        .expect("list");
    assert_eq!(
        (on.items.len(), off.items.len()),
        (4, 1),
        "the enabled filter"
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        only_the_owner_gets_an_alarm,
        create_commits_its_trigger_plan,
        creating_an_existing_alarm_id_conflicts,
        update_at_the_current_version_stores_and_reschedules,
        stale_update_stores_nothing,
        change_set_with_a_duplicate_audit_id_is_refused_whole,
        another_owner_can_neither_update_nor_delete,
        deleting_based_on_an_old_version_is_stale,
        delete_removes_the_alarm_and_its_triggers_but_keeps_events,
        list_pages_walk_the_owners_alarms_in_id_order,
        list_filters_by_enabled,
    )
}
