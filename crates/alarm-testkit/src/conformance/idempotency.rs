//! Conformance checks of [`alarm_domain::ports::IdempotencyStore`].

use super::*;

/// [`alarm_domain::ports::IdempotencyStore`]: reservation, replay, mismatch, expiry, abandonment, concurrency, purge.
///
/// # Panics
/// When the store breaks its contract.
async fn idempotency_store(new_ports: Fresh) {
    use alarm_domain::ports::{
        IDEMPOTENCY_IN_FLIGHT_TIMEOUT, IdempotencyKey, Reservation, StoredResponse,
    };
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let store = ports.idempotency.clone();
    let day = SignedDuration::from_hours(24);
    let key = |owner: UserId, scope: &str, k: &str| IdempotencyKey {
        owner,
        scope: scope.to_owned(),
        key: k.to_owned(),
    };
    let k1 = key(ana.id(), "POST /alarms", "k-1");
    let answer = StoredResponse {
        status: 201,
        headers: vec![("etag".to_owned(), "\"1\"".to_owned())],
        body: "{\"id\":1}".to_owned(),
    };
    let holder = |n: u128| uuid::Uuid::from_u128(n);
    let reserve = |k: IdempotencyKey, fp: u8, who: u128, secs: i64| {
        let store = store.clone();
        async move {
            store
                .reserve(&k, [fp; 32], holder(who), at(secs), day)
                .await
                .expect("reserve")
        }
    };
    assert_eq!(reserve(k1.clone(), 1, 1, 0).await, Reservation::Fresh);
    assert_eq!(
        reserve(k1.clone(), 1, 2, 1).await,
        Reservation::InFlight,
        "a second request while the first runs"
    );
    assert_eq!(reserve(k1.clone(), 2, 2, 1).await, Reservation::Mismatch);
    is(
        store.finish(&k1, holder(2), answer.clone()).await,
        not_found,
        "finishing another holder's reservation",
    );
    store
        .abandon(&k1, holder(2))
        .await
        .expect("abandon by another holder");
    store
        .finish(&k1, holder(1), answer.clone())
        .await
        .expect("finish");
    assert_eq!(
        reserve(k1.clone(), 1, 3, 2).await,
        Reservation::Replay(answer.clone()),
        "another holder's abandon left the reservation alone"
    );
    assert_eq!(reserve(k1.clone(), 2, 3, 2).await, Reservation::Mismatch);
    // Keys are per owner and per scope.
    assert_eq!(
        reserve(key(bob.id(), "POST /alarms", "k-1"), 2, 4, 2).await,
        Reservation::Fresh
    );
    assert_eq!(
        reserve(key(ana.id(), "POST /other", "k-1"), 2, 5, 2).await,
        Reservation::Fresh
    );
    // After the ttl the key is new again.
    assert_eq!(
        reserve(k1.clone(), 2, 6, 24 * 3600).await,
        Reservation::Fresh,
        "an expired record is replaced"
    );
    // A reservation without an answer blocks only for the in-flight
    // timeout; the late first holder can then neither answer nor abandon.
    let k2 = key(ana.id(), "POST /alarms", "k-2");
    assert_eq!(reserve(k2.clone(), 3, 7, 0).await, Reservation::Fresh);
    let timeout = IDEMPOTENCY_IN_FLIGHT_TIMEOUT.as_secs();
    assert_eq!(
        reserve(k2.clone(), 3, 8, timeout - 1).await,
        Reservation::InFlight
    );
    assert_eq!(reserve(k2.clone(), 3, 8, timeout).await, Reservation::Fresh);
    is(
        store.finish(&k2, holder(7), answer.clone()).await,
        not_found,
        "the first holder after a take-over",
    );
    store.abandon(&k2, holder(7)).await.expect("abandon");
    assert_eq!(
        reserve(k2.clone(), 3, 9, timeout).await,
        Reservation::InFlight,
        "the take-over's reservation survived the late abandon"
    );
    // Abandoning frees the key at once.
    store.abandon(&k2, holder(8)).await.expect("abandon");
    store.abandon(&k2, holder(8)).await.expect("abandon twice");
    assert_eq!(
        reserve(k2.clone(), 4, 10, timeout).await,
        Reservation::Fresh
    );
    is(
        store
            .finish(
                &key(ana.id(), "POST /alarms", "never"),
                holder(1),
                answer.clone(),
            )
            .await,
        not_found,
        "finishing an unreserved key",
    );
    // Concurrent reservations of one key: exactly one is fresh.
    let k3 = key(ana.id(), "POST /alarms", "k-3");
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let k = k3.clone();
            let who = uuid::Uuid::now_v7();
            tokio::spawn(async move { store.reserve(&k, [5; 32], who, at(10), day).await })
        })
        .collect();
    let mut fresh = 0;
    for t in tries {
        match t.await.expect("join") {
            Ok(Reservation::Fresh) => fresh += 1,
            Ok(Reservation::InFlight) | Err(StoreError::Retryable(_)) => {}
            other => panic!("concurrent reserve: {other:?}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one concurrent reservation wins");
    // Purge removes what was created before the cut.
    let purged = store.purge(at(5)).await.expect("purge");
    assert_eq!(purged, 2, "bob's k-1 and ana's other scope were older");
    assert_eq!(
        reserve(key(bob.id(), "POST /alarms", "k-1"), 9, 11, 20).await,
        Reservation::Fresh,
        "purged records are gone"
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports: idempotency_store)
}
