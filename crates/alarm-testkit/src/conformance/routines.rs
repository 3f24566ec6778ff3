//! Conformance checks of [`alarm_domain::ports::RoutineStore`].

use super::*;

/// [`alarm_domain::ports::RoutineStore`].
async fn routine_store(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let routine = |name: &str| {
        Routine::new(
            RoutineId::generate(),
            ana.id(),
            RoutineName::parse(name).expect("name"),
            vec![RoutineAction::parse("Lights").expect("action")],
            true,
        )
        .expect("routine")
    };
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = routine(&format!("R{i}"));
        ids.push(r.id());
        let change = ChangeSet {
            op: RoutineOp::Create(r.clone()),
            audit: audit(&ports, Some(ana.id()), "routine.create", r.id().as_uuid()),
            events: Vec::new(),
            triggers: Vec::new(),
        };
        ports.routines.commit(change.clone()).await.expect("create");
        let mut again = change;
        again.audit = audit(&ports, Some(ana.id()), "routine.create", r.id().as_uuid());
        is(
            ports.routines.commit(again).await,
            conflict,
            "creating an existing routine id",
        );
    }
    ids.sort();
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
    let foreign = Routine::new(
        ids[0],
        bob.id(),
        RoutineName::parse("Mine now").expect("name"),
        vec![RoutineAction::parse("Lights").expect("action")],
        true,
    )
    .expect("routine");
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
    checks!(Ports: routine_store)
}
