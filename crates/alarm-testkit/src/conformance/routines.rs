//! Conformance checks of [`alarm_domain::ports::RoutineStore`].

use super::*;

pub(super) fn routine(owner: UserId, id: RoutineId, name: &str) -> Routine {
    Routine::new(
        id,
        owner,
        RoutineName::parse(name).expect("name"),
        vec![RoutineAction::parse("Lights").expect("action")],
        true,
    )
    .expect("routine")
}

pub(super) fn create(ports: &Ports, r: &Routine) -> ChangeSet<RoutineOp> {
    ChangeSet {
        op: RoutineOp::Create(
            r.clone(),
            alarm_domain::limits::Quota::unlimited("routines"),
        ),
        audit: audit(ports, Some(r.owner()), "routine.create", r.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    }
}

/// Ana and Bob, and three routines of Ana's ("R0".."R2"); returns their ids, sorted.
async fn ana_with_three_routines(ports: &Ports) -> (User, User, Vec<RoutineId>) {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let bob = fixtures::user(ports, "bob@example.com").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = routine(ana.id(), RoutineId::generate(), &format!("R{i}"));
        ids.push(r.id());
        ports
            .routines
            .commit(create(ports, &r))
            .await
            .expect("create");
    }
    ids.sort();
    (ana, bob, ids)
}

/// Creating a routine whose id exists conflicts.
async fn creating_an_existing_routine_id_conflicts(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    for i in 0..3 {
        let r = routine(ana.id(), RoutineId::generate(), &format!("R{i}"));
        let change = create(&ports, &r);
        ports.routines.commit(change.clone()).await.expect("create");
        let mut again = change;
        again.audit = audit(&ports, Some(ana.id()), "routine.create", r.id().as_uuid());
        is(
            ports.routines.commit(again).await,
            conflict,
            "creating an existing routine id",
        );
    }
}

/// Pages walk the owner's routines in id order.
async fn list_pages_in_id_order(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, _, ids) = ana_with_three_routines(&ports).await;
    let first = ports
        .routines
        .list(ana.id(), PageRequest::new(None, 2).expect("limit"))
        .await
        .expect("list");
    let second = ports
        .routines
        .list(ana.id(), PageRequest::new(first.next, 2).expect("limit"))
        .await
        .expect("list");
    let walked: Vec<RoutineId> = first
        .items
        .iter()
        .chain(&second.items)
        .map(Routine::id)
        .collect();
    assert_eq!(walked, ids, "pages in id order");
    assert!(second.next.is_none());
}

/// Another owner can neither read, delete nor update a routine.
async fn another_owner_can_neither_get_delete_nor_update(new_ports: Fresh) {
    let ports = new_ports().await;
    let (_, bob, ids) = ana_with_three_routines(&ports).await;
    is(
        ports.routines.get(bob.id(), ids[0]).await,
        not_found,
        "another owner's routine",
    );
    let del = ChangeSet {
        op: RoutineOp::Delete {
            owner: bob.id(),
            id: ids[0],
        },
        audit: audit(&ports, Some(bob.id()), "routine.delete", ids[0].as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.routines.commit(del).await,
        not_found,
        "deleting another owner's routine",
    );
    let foreign = routine(bob.id(), ids[0], "Mine now");
    let change = ChangeSet {
        op: RoutineOp::Update(foreign),
        audit: audit(&ports, Some(bob.id()), "routine.update", ids[0].as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.routines.commit(change).await,
        not_found,
        "updating another owner's routine",
    );
}

fn attach(
    ports: &Ports,
    owner: UserId,
    alarm: AlarmId,
    routines: Vec<RoutineId>,
) -> ChangeSet<RoutineOp> {
    ChangeSet {
        op: RoutineOp::Attach {
            owner,
            alarm,
            routines,
        },
        audit: audit(ports, Some(owner), "alarm.attach_routines", alarm.as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    }
}

/// Attaching replaces an alarm's routines in the given order; only the
/// owner of both sides may attach (another's alarm is not found, another's
/// routine conflicts, and neither changes anything); the engine's batch
/// read sees each alarm's routines in order; deleting a routine or the
/// alarm detaches.
async fn attached_routines_keep_their_order_and_go_with_either_side(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, bob, ids) = ana_with_three_routines(&ports).await;
    let wake = fixtures::alarm(&ports, ana.id(), "Wake", None).await;
    let nap = fixtures::alarm(&ports, ana.id(), "Nap", None).await;
    let names = |rs: Vec<Routine>| rs.iter().map(Routine::id).collect::<Vec<_>>();
    assert!(
        ports
            .routines
            .attached(ana.id(), wake.id())
            .await
            .expect("attached")
            .is_empty(),
        "nothing attached yet"
    );
    let order = vec![ids[2], ids[0]];
    ports
        .routines
        .commit(attach(&ports, ana.id(), wake.id(), order.clone()))
        .await
        .expect("attach");
    ports
        .routines
        .commit(attach(&ports, ana.id(), nap.id(), vec![ids[1]]))
        .await
        .expect("attach");
    assert_eq!(
        names(
            ports
                .routines
                .attached(ana.id(), wake.id())
                .await
                .expect("attached")
        ),
        order,
        "in the order given, not id order"
    );
    is(
        ports.routines.attached(bob.id(), wake.id()).await,
        not_found,
        "another owner's alarm",
    );
    is(
        ports
            .routines
            .commit(attach(&ports, bob.id(), wake.id(), vec![]))
            .await,
        not_found,
        "attaching to another owner's alarm",
    );
    let bobs = routine(bob.id(), RoutineId::generate(), "Bob's");
    ports
        .routines
        .commit(create(&ports, &bobs))
        .await
        .expect("create");
    is(
        ports
            .routines
            .commit(attach(&ports, ana.id(), wake.id(), vec![ids[1], bobs.id()]))
            .await,
        conflict,
        "attaching another owner's routine",
    );
    assert_eq!(
        names(
            ports
                .routines
                .attached(ana.id(), wake.id())
                .await
                .expect("attached")
        ),
        order,
        "a refused attach changes nothing"
    );
    let many: Vec<(AlarmId, RoutineId)> = ports
        .routines
        .attached_many(vec![nap.id(), wake.id(), AlarmId::generate()])
        .await
        .expect("attached_many")
        .into_iter()
        .map(|(a, r)| (a, r.id()))
        .collect();
    let mut want = vec![(wake.id(), ids[2]), (wake.id(), ids[0]), (nap.id(), ids[1])];
    let mut got = many.clone();
    got.sort_by_key(|(a, _)| *a);
    want.sort_by_key(|(a, _)| *a);
    assert_eq!(got, want, "every alarm's routines, each alarm's in order");

    let del = ChangeSet {
        op: RoutineOp::Delete {
            owner: ana.id(),
            id: ids[2],
        },
        audit: audit(&ports, Some(ana.id()), "routine.delete", ids[2].as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.routines.commit(del).await.expect("delete");
    assert_eq!(
        names(
            ports
                .routines
                .attached(ana.id(), wake.id())
                .await
                .expect("attached")
        ),
        [ids[0]],
        "a deleted routine is detached"
    );
    let gone = ChangeSet {
        op: AlarmOp::Delete {
            owner: ana.id(),
            id: nap.id(),
            expected: nap.version(),
        },
        audit: audit(&ports, Some(ana.id()), "alarm.delete", nap.id().as_uuid()),
        events: Vec::new(),
        triggers: vec![TriggerPlan::CancelAll { alarm: nap.id() }],
    };
    ports.alarms.commit(gone).await.expect("delete the alarm");
    assert!(
        ports
            .routines
            .attached_many(vec![nap.id()])
            .await
            .expect("attached_many")
            .is_empty(),
        "a deleted alarm has nothing attached"
    );
    ports
        .routines
        .commit(attach(&ports, ana.id(), wake.id(), vec![]))
        .await
        .expect("detach all");
    assert!(
        ports
            .routines
            .attached(ana.id(), wake.id())
            .await
            .expect("attached")
            .is_empty(),
        "an empty list detaches everything"
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        creating_an_existing_routine_id_conflicts,
        list_pages_in_id_order,
        another_owner_can_neither_get_delete_nor_update,
        attached_routines_keep_their_order_and_go_with_either_side,
    )
}
