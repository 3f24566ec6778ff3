//! Conformance checks of [`alarm_domain::ports::IdempotencyStore`].

use super::*;

use alarm_domain::ports::{
    IDEMPOTENCY_IN_FLIGHT_TIMEOUT, IdempotencyKey, IdempotencyStore, Reservation, StoredResponse,
};

/// How long a record lives.
fn day() -> SignedDuration {
    SignedDuration::from_hours(24)
}

fn key(owner: UserId, scope: &str, k: &str) -> IdempotencyKey {
    IdempotencyKey {
        owner,
        scope: scope.to_owned(),
        key: k.to_owned(),
    }
}

/// Request holder number `n`.
fn holder(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

/// The answer a finished request stores.
fn answer() -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![("etag".to_owned(), "\"1\"".to_owned())],
        body: "{\"id\":1}".to_owned(),
    }
}

/// The in-flight timeout, in seconds.
fn timeout() -> i64 {
    IDEMPOTENCY_IN_FLIGHT_TIMEOUT.as_secs()
}

/// Ana and Bob, and the idempotency store of `ports`.
struct Keys {
    ana: User,
    bob: User,
    store: Arc<dyn IdempotencyStore>,
}

impl Keys {
    async fn new(ports: &Ports) -> Self {
        Self {
            ana: fixtures::user(ports, "ana@example.com").await,
            bob: fixtures::user(ports, "bob@example.com").await,
            store: ports.idempotency.clone(),
        }
    }

    /// Ana's key `k` of `POST /alarms`.
    fn anas(&self, k: &str) -> IdempotencyKey {
        key(self.ana.id(), "POST /alarms", k)
    }

    /// Reserves `k` with fingerprint `[fp; 32]` as holder `who` at `at(secs)`.
    async fn reserve(&self, k: &IdempotencyKey, fp: u8, who: u128, secs: i64) -> Reservation {
        self.store
            .reserve(k, [fp; 32], holder(who), at(secs), day())
            .await
            .expect("reserve")
    }
}

/// A reserved key answers "in flight" to the same request and "mismatch" to another body.
async fn a_reserved_key_is_in_flight_or_mismatch(new_ports: Fresh) {
    let ports = new_ports().await;
    let keys = Keys::new(&ports).await;
    let k1 = keys.anas("k-1");
    assert_eq!(keys.reserve(&k1, 1, 1, 0).await, Reservation::Fresh);
    assert_eq!(
        keys.reserve(&k1, 1, 2, 1).await,
        Reservation::InFlight,
        "a second request while the first runs"
    );
    assert_eq!(keys.reserve(&k1, 2, 2, 1).await, Reservation::Mismatch);
}

/// Only the holder finishes a reservation (another's abandon leaves it alone); the answer then replays.
async fn only_the_holder_finishes_and_the_answer_replays(new_ports: Fresh) {
    let ports = new_ports().await;
    let keys = Keys::new(&ports).await;
    let store = &keys.store;
    let k1 = keys.anas("k-1");
    assert_eq!(keys.reserve(&k1, 1, 1, 0).await, Reservation::Fresh);
    is(
        store.finish(&k1, holder(2), answer()).await,
        not_found,
        "finishing another holder's reservation",
    );
    store
        .abandon(&k1, holder(2))
        .await
        .expect("abandon by another holder");
    store
        .finish(&k1, holder(1), answer())
        .await
        .expect("finish");
    assert_eq!(
        keys.reserve(&k1, 1, 3, 2).await,
        Reservation::Replay(answer()),
        "another holder's abandon left the reservation alone"
    );
    assert_eq!(keys.reserve(&k1, 2, 3, 2).await, Reservation::Mismatch);
}

/// Keys are per owner and per scope.
async fn keys_are_per_owner_and_scope(new_ports: Fresh) {
    let ports = new_ports().await;
    let keys = Keys::new(&ports).await;
    let k1 = keys.anas("k-1");
    assert_eq!(keys.reserve(&k1, 1, 1, 0).await, Reservation::Fresh);
    keys.store
        .finish(&k1, holder(1), answer())
        .await
        .expect("finish");
    assert_eq!(
        keys.reserve(&key(keys.bob.id(), "POST /alarms", "k-1"), 2, 4, 2)
            .await,
        Reservation::Fresh
    );
    assert_eq!(
        keys.reserve(&key(keys.ana.id(), "POST /other", "k-1"), 2, 5, 2)
            .await,
        Reservation::Fresh
    );
}

/// After the ttl the key is new again: an expired record is replaced.
async fn an_expired_record_is_replaced(new_ports: Fresh) {
    let ports = new_ports().await;
    let keys = Keys::new(&ports).await;
    let k1 = keys.anas("k-1");
    assert_eq!(keys.reserve(&k1, 1, 1, 0).await, Reservation::Fresh);
    keys.store
        .finish(&k1, holder(1), answer())
        .await
        .expect("finish");
    assert_eq!(
        keys.reserve(&k1, 2, 6, 24 * 3600).await,
        Reservation::Fresh,
        "an expired record is replaced"
    );
}

/// A reservation without an answer blocks only for the in-flight timeout;
/// the late first holder can then neither answer nor abandon.
async fn an_unanswered_reservation_is_taken_over_after_the_timeout(new_ports: Fresh) {
    let ports = new_ports().await;
    let keys = Keys::new(&ports).await;
    let store = &keys.store;
    let k2 = keys.anas("k-2");
    assert_eq!(keys.reserve(&k2, 3, 7, 0).await, Reservation::Fresh);
    let timeout = timeout();
    assert_eq!(
        keys.reserve(&k2, 3, 8, timeout - 1).await,
        Reservation::InFlight
    );
    assert_eq!(keys.reserve(&k2, 3, 8, timeout).await, Reservation::Fresh);
    is(
        store.finish(&k2, holder(7), answer()).await,
        not_found,
        "the first holder after a take-over",
    );
    store.abandon(&k2, holder(7)).await.expect("abandon");
    assert_eq!(
        keys.reserve(&k2, 3, 9, timeout).await,
        Reservation::InFlight,
        "the take-over's reservation survived the late abandon"
    );
}

/// Abandoning frees the key at once (abandoning twice is fine).
async fn abandoning_frees_the_key_at_once(new_ports: Fresh) {
    let ports = new_ports().await;
    let keys = Keys::new(&ports).await;
    let store = &keys.store;
    let k2 = keys.anas("k-2");
    let timeout = timeout();
    assert_eq!(keys.reserve(&k2, 3, 7, 0).await, Reservation::Fresh);
    assert_eq!(keys.reserve(&k2, 3, 8, timeout).await, Reservation::Fresh);
    store.abandon(&k2, holder(8)).await.expect("abandon");
    store.abandon(&k2, holder(8)).await.expect("abandon twice");
    assert_eq!(keys.reserve(&k2, 4, 10, timeout).await, Reservation::Fresh);
}

/// Finishing a key that was never reserved is not found.
async fn finishing_an_unreserved_key_is_not_found(new_ports: Fresh) {
    let ports = new_ports().await;
    let keys = Keys::new(&ports).await;
    assert_eq!(
        keys.reserve(&keys.anas("k-1"), 1, 1, 0).await,
        Reservation::Fresh
    );
    is(
        keys.store
            .finish(&keys.anas("never"), holder(1), answer())
            .await,
        not_found,
        "finishing an unreserved key",
    );
}

/// Concurrent reservations of one key: exactly one is fresh.
async fn concurrent_reservations_of_one_key_have_one_winner(new_ports: Fresh) {
    let ports = new_ports().await;
    let keys = Keys::new(&ports).await;
    let k3 = keys.anas("k-3");
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let store = keys.store.clone();
            let k = k3.clone();
            let who = uuid::Uuid::now_v7();
            tokio::spawn(async move { store.reserve(&k, [5; 32], who, at(10), day()).await })
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
}

/// Purge removes what was created before the cut, and only that.
async fn purge_removes_records_created_before_the_cut(new_ports: Fresh) {
    let ports = new_ports().await;
    let keys = Keys::new(&ports).await;
    let bobs = key(keys.bob.id(), "POST /alarms", "k-1");
    let k1 = keys.anas("k-1");
    assert_eq!(keys.reserve(&k1, 2, 6, 10).await, Reservation::Fresh);
    assert_eq!(keys.reserve(&bobs, 2, 4, 2).await, Reservation::Fresh);
    assert_eq!(
        keys.reserve(&key(keys.ana.id(), "POST /other", "k-1"), 2, 5, 2)
            .await,
        Reservation::Fresh
    );
    let purged = keys.store.purge(at(5)).await.expect("purge");
    assert_eq!(purged, 2, "bob's k-1 and ana's other scope were older");
    assert_eq!(
        keys.reserve(&bobs, 9, 11, 20).await,
        Reservation::Fresh,
        "purged records are gone"
    );
    assert_eq!(
        keys.reserve(&k1, 2, 12, 20).await,
        Reservation::InFlight,
        "a record created after the cut stays"
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        a_reserved_key_is_in_flight_or_mismatch,
        only_the_holder_finishes_and_the_answer_replays,
        keys_are_per_owner_and_scope,
        an_expired_record_is_replaced,
        an_unanswered_reservation_is_taken_over_after_the_timeout,
        abandoning_frees_the_key_at_once,
        finishing_an_unreserved_key_is_not_found,
        concurrent_reservations_of_one_key_have_one_winner,
        purge_removes_records_created_before_the_cut,
    )
}
