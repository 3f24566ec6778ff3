//! Conformance checks of [`alarm_domain::ports::RoutineStore`].

use super::*;

fn routine(owner: UserId, id: RoutineId, name: &str) -> Routine {
    Routine::new(
        id,
        owner,
        RoutineName::parse(name).expect("name"),
        vec![RoutineAction::parse("Lights").expect("action")],
        true,
    )
    .expect("routine")
}

fn create(ports: &Ports, r: &Routine) -> ChangeSet<RoutineOp> {
    ChangeSet {
        op: RoutineOp::Create(r.clone()),
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

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        creating_an_existing_routine_id_conflicts,
        list_pages_in_id_order,
        another_owner_can_neither_get_delete_nor_update,
    )
}
