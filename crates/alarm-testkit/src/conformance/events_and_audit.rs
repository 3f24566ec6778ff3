//! Conformance checks of [`alarm_domain::ports::AlarmEventStore`].

use super::*;

use alarm_domain::model::{Alarm, AlarmEvent};

/// Ana and Bob, and Ana's alarm updated three times (disabled, enabled,
/// updated events); returns the alarm's events as committed, oldest first.
async fn alarm_updated_three_times(ports: &Ports) -> (User, User, Alarm, Vec<AlarmEvent>) {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let bob = fixtures::user(ports, "bob@example.com").await;
    let alarm = fixtures::alarm(ports, ana.id(), "Wake", None).await;
    let mut expected = ports
        .events
        .list(ana.id(), alarm.id(), PageRequest::first())
        .await
        .expect("events")
        .items;
    for kind in [
        AlarmEventKind::Disabled,
        AlarmEventKind::Enabled,
        AlarmEventKind::Updated,
    ] {
        let current = ports.alarms.get(ana.id(), alarm.id()).await.expect("get");
        let next = current
            .revise(current.draft().clone(), at(1))
            .expect("revise");
        let e = event(ports, alarm.id(), ana.id(), kind);
        expected.push(e.clone());
        let change = ChangeSet {
            op: AlarmOp::Update {
                alarm: next,
                expected: current.version(),
            },
            audit: audit(ports, Some(ana.id()), "alarm.update", alarm.id().as_uuid()),
            events: vec![e],
            triggers: Vec::new(),
        };
        ports.alarms.commit(change).await.expect("update");
    }
    (ana, bob, alarm, expected)
}

/// An alarm's events are listed oldest first, in pages.
async fn events_are_listed_oldest_first_in_pages(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, _, alarm, expected) = alarm_updated_three_times(&ports).await;
    let first = ports
        .events
        .list(
            ana.id(),
            alarm.id(),
            PageRequest::new(None, 3).expect("limit"),
        )
        .await
        .expect("events");
    let rest = ports
        .events
        .list(
            ana.id(),
            alarm.id(),
            PageRequest::new(first.next, 3).expect("limit"),
        )
        .await
        .expect("events");
    let all: Vec<_> = first.items.into_iter().chain(rest.items).collect();
    assert_eq!(all, expected, "events oldest first, paginated");
}

/// Another owner sees none of an alarm's events.
async fn another_owner_sees_no_events(new_ports: Fresh) {
    let ports = new_ports().await;
    let (_, bob, alarm, _) = alarm_updated_three_times(&ports).await;
    assert!(
        ports
            .events
            .list(bob.id(), alarm.id(), PageRequest::first())
            .await
            .expect("events")
            .items
            .is_empty(),
        "another owner sees no events"
    );
}

/// The audit log lists an actor's records, and only theirs, in id order.
async fn audit_is_listed_per_actor_in_id_order(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, bob, _, _) = alarm_updated_three_times(&ports).await;
    let mine = ports
        .audit
        .list(Some(ana.id()), PageRequest::first())
        .await
        .expect("audit");
    assert_eq!(mine.items.len(), 5, "register + create + three updates");
    assert!(mine.items.iter().all(|r| r.actor == Some(ana.id())));
    assert!(
        mine.items.windows(2).all(|w| w[0].id < w[1].id),
        "in id order"
    );
    let bobs = ports
        .audit
        .list(Some(bob.id()), PageRequest::first())
        .await
        .expect("audit");
    assert_eq!(bobs.items.len(), 1);
}

/// A standalone record (a login) is listed with the others; its id twice conflicts.
async fn a_standalone_record_is_stored_once(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let record = audit(&ports, Some(ana.id()), "session.login", ana.id().as_uuid());
    ports.audit.record(record.clone()).await.expect("record");
    is(
        ports.audit.record(record.clone()).await,
        conflict,
        "the same record id twice",
    );
    let mine = ports
        .audit
        .list(Some(ana.id()), PageRequest::first())
        .await
        .expect("audit")
        .items;
    assert_eq!(
        mine.iter()
            .filter(|r| r.id == record.id)
            .collect::<Vec<_>>(),
        [&record],
        "stored once, as given"
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        events_are_listed_oldest_first_in_pages,
        another_owner_sees_no_events,
        audit_is_listed_per_actor_in_id_order,
        a_standalone_record_is_stored_once,
    )
}
