//! Conformance checks of [`alarm_domain::ports::AlarmStore`].

use super::*;

/// [`alarm_domain::ports::AlarmStore`], including atomic change sets, optimistic versions and pagination.
async fn alarm_store(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let alarm = fixtures::alarm(&ports, ana.id(), "Wake", Some(at(3600))).await;

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
    let pending = ports.queue.pending(alarm.id()).await.expect("pending");
    assert_eq!(pending.len(), 1, "the create committed its trigger plan");
    assert_eq!(pending[0].due_at, at(3600));

    // Duplicate id.
    let dup = ChangeSet {
        op: AlarmOp::Create(alarm.clone()),
        audit: audit(&ports, Some(ana.id()), "alarm.create", alarm.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.alarms.commit(dup).await,
        conflict,
        "creating an existing alarm id",
    );

    // Optimistic update.
    let mut draft = alarm.draft().clone();
    draft.name = alarm_domain::model::AlarmName::parse("Renamed").expect("name");
    let v2 = alarm.revise(draft.clone(), at(10)).expect("revise");
    let update = |expected, next: &alarm_domain::model::Alarm, fire| ChangeSet {
        op: AlarmOp::Update {
            alarm: next.clone(),
            expected,
        },
        audit: audit(&ports, Some(ana.id()), "alarm.update", alarm.id().as_uuid()),
        events: vec![event(&ports, alarm.id(), ana.id(), AlarmEventKind::Updated)],
        triggers: vec![TriggerPlan::Reschedule {
            alarm: alarm.id(),
            version: next.version(),
            next: Some(trigger(next, fire, TriggerKind::Fire)),
        }],
    };
    ports
        .alarms
        .commit(update(alarm.version(), &v2, at(7200)))
        .await
        .expect("update at the current version");
    let stored = ports.alarms.get(ana.id(), alarm.id()).await.expect("get");
    assert_eq!(stored.version().get(), 2);
    assert_eq!(stored.name().as_str(), "Renamed");
    let pending = ports.queue.pending(alarm.id()).await.expect("pending");
    assert_eq!(
        pending.iter().map(|t| t.due_at).collect::<Vec<_>>(),
        [at(7200)],
        "reschedule replaced the fire trigger"
    );

    // A stale update stores nothing: not the alarm, not the audit record, not the event, not the trigger.
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
            .commit(update(alarm.version(), &v2_again, at(9999)))
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

    // All or nothing: a change set whose audit id already exists is refused whole.
    let v3 = stored.revise(draft, at(30)).expect("revise");
    let mut reused = update(stored.version(), &v3, at(5000));
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

    // Updating or deleting another owner's alarm is not found.
    let foreign = alarm_domain::model::Alarm::restore(
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
    let del = |owner, expected| ChangeSet {
        op: AlarmOp::Delete {
            owner,
            id: alarm.id(),
            expected,
        },
        audit: audit(&ports, Some(owner), "alarm.delete", alarm.id().as_uuid()),
        events: vec![event(&ports, alarm.id(), ana.id(), AlarmEventKind::Deleted)],
        triggers: vec![TriggerPlan::CancelAll { alarm: alarm.id() }],
    };
    is(
        ports.alarms.commit(del(bob.id(), stored.version())).await,
        not_found,
        "deleting another owner's alarm",
    );
    is(
        ports.alarms.commit(del(ana.id(), alarm.version())).await,
        stale,
        "deleting based on an old version",
    );
    ports
        .alarms
        .commit(del(ana.id(), stored.version()))
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

    // Pagination: id order, no gaps, no repeats; the enabled filter.
    let ports = new_ports().await;
    let owner = fixtures::user(&ports, "pages@example.com").await;
    let other = fixtures::user(&ports, "other@example.com").await;
    fixtures::alarm(&ports, other.id(), "Not mine", None).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            fixtures::alarm(&ports, owner.id(), &format!("A{i}"), None)
                .await
                .id(),
        );
    }
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
    ids.sort();
    assert_eq!(
        seen, ids,
        "pages walk the owner's alarms in id order, each once"
    );
    assert_eq!(pages, 3);
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
    checks!(Ports: alarm_store)
}
