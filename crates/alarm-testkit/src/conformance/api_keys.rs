//! Conformance checks of [`alarm_domain::ports::ApiKeyStore`].

use super::*;
use alarm_domain::ids::ApiKeyId;
use alarm_domain::limits::Quota;
use alarm_domain::model::{ApiKey, ApiKeyName, ApiKeyScopes};
use alarm_domain::ports::ApiKeyOp;

fn key(ports: &Ports, owner: UserId, prefix: &str) -> ApiKey {
    ApiKey {
        id: ApiKeyId::from_uuid(ports.ids.next_uuid()).expect("v7"),
        owner,
        name: ApiKeyName::parse("ci").expect("name"),
        prefix: prefix.to_owned(),
        scopes: ApiKeyScopes::parse(&["webhooks:read"]).expect("scopes"),
        created_at: t0(),
        expires_at: None,
        retires_at: None,
        last_used_at: None,
    }
}

fn create(ports: &Ports, k: &ApiKey, hash: u8, quota: Quota) -> ChangeSet<ApiKeyOp> {
    ChangeSet::audited(
        ApiKeyOp::Create {
            key: k.clone(),
            hash: [hash; 32],
            quota,
        },
        audit(ports, Some(k.owner), "api_key.create", k.id.as_uuid()),
    )
}

/// A key is read back by its owner and found by its prefix with its hash;
/// another owner neither gets nor lists it.
async fn keys_are_found_by_prefix_and_scoped_to_their_owner(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let k = key(&ports, ana.id(), "sak_000000000001");
    ports
        .api_keys
        .commit(create(&ports, &k, 7, Quota::unlimited("api_keys")))
        .await
        .expect("create");
    assert_eq!(ports.api_keys.get(ana.id(), k.id).await.expect("get"), k);
    assert_eq!(
        ports.api_keys.find("sak_000000000001").await.expect("find"),
        Some((k.clone(), [7; 32]))
    );
    assert_eq!(
        ports.api_keys.find("sak_00000000000f").await.expect("find"),
        None
    );
    assert!(matches!(
        ports.api_keys.get(bob.id(), k.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        ports
            .api_keys
            .list(bob.id())
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        ports.api_keys.list(ana.id()).await.expect("list"),
        vec![k.clone()]
    );
    let twin = key(&ports, bob.id(), "sak_000000000001");
    assert!(
        matches!(
            ports
                .api_keys
                .commit(create(&ports, &twin, 8, Quota::unlimited("api_keys")))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a prefix names one key"
    );
}

/// The quota counts the owner's keys.
async fn creating_past_the_quota_is_refused(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let quota = Quota::new("api_keys_per_user", 1);
    let first = key(&ports, ana.id(), "sak_000000000002");
    ports
        .api_keys
        .commit(create(&ports, &first, 1, quota))
        .await
        .expect("first");
    let second = key(&ports, ana.id(), "sak_000000000003");
    assert!(matches!(
        ports
            .api_keys
            .commit(create(&ports, &second, 2, quota))
            .await,
        Err(StoreError::OverQuota {
            quota: "api_keys_per_user",
            limit: 1
        })
    ));
    assert_eq!(
        ports.api_keys.find("sak_000000000003").await.expect("find"),
        None
    );
}

/// Rotation stores the new key, sets when the old one retires and counts
/// the new one toward the quota; another owner's key cannot be rotated or
/// deleted.
async fn rotation_and_deletion_act_on_the_owners_key_only(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let mut old = key(&ports, ana.id(), "sak_000000000004");
    old.expires_at = Some(at(3600));
    ports
        .api_keys
        .commit(create(&ports, &old, 1, Quota::unlimited("api_keys")))
        .await
        .expect("create");
    let rotate = |owner: UserId, until: i64, prefix: &str| {
        let new = key(&ports, owner, prefix);
        ChangeSet::audited(
            ApiKeyOp::Rotate {
                old: old.id,
                old_retires_at: at(until),
                key: new,
                hash: [2; 32],
                quota: Quota::new("api_keys_per_user", 2),
            },
            audit(&ports, Some(owner), "api_key.rotate", old.id.as_uuid()),
        )
    };
    assert!(matches!(
        ports
            .api_keys
            .commit(rotate(bob.id(), 60, "sak_000000000005"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        ports.api_keys.find("sak_000000000005").await.expect("find"),
        None
    );
    ports
        .api_keys
        .commit(rotate(ana.id(), 1800, "sak_000000000006"))
        .await
        .expect("rotate");
    let kept = ports.api_keys.get(ana.id(), old.id).await.expect("old");
    assert_eq!(
        (kept.expires_at, kept.retires_at),
        (Some(at(3600)), Some(at(1800))),
        "the owner's expiry stays; the rotation's end is apart"
    );
    ports
        .api_keys
        .commit(rotate(ana.id(), 60, "sak_000000000007"))
        .await
        .expect("rotate again");
    let kept = ports.api_keys.get(ana.id(), old.id).await.expect("old");
    assert_eq!(kept.retires_at, Some(at(60)));
    assert!(
        matches!(
            ports
                .api_keys
                .commit(rotate(ana.id(), 30, "sak_00000000000a"))
                .await,
            Err(StoreError::OverQuota { .. })
        ),
        "a replacement counts toward the quota: two others held"
    );
    assert!(
        ports
            .api_keys
            .find("sak_000000000006")
            .await
            .expect("find")
            .is_some()
    );
    let delete = |owner: UserId| {
        ChangeSet::audited(
            ApiKeyOp::Delete { owner, id: old.id },
            audit(&ports, Some(owner), "api_key.delete", old.id.as_uuid()),
        )
    };
    assert!(matches!(
        ports.api_keys.commit(delete(bob.id())).await,
        Err(StoreError::NotFound)
    ));
    ports
        .api_keys
        .commit(delete(ana.id()))
        .await
        .expect("delete");
    assert_eq!(
        ports.api_keys.find("sak_000000000004").await.expect("find"),
        None
    );
}

/// A use is recorded unless one was recorded since the given instant.
async fn uses_are_recorded_at_most_as_often_as_asked(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let k = key(&ports, ana.id(), "sak_000000000008");
    ports
        .api_keys
        .commit(create(&ports, &k, 1, Quota::unlimited("api_keys")))
        .await
        .expect("create");
    ports
        .api_keys
        .touch(k.id, at(100), at(40))
        .await
        .expect("touch");
    let owner = ana.id();
    let used = |ports: &Ports| {
        let ports = ports.clone();
        async move {
            ports
                .api_keys
                .get(owner, k.id)
                .await
                .expect("get")
                .last_used_at
        }
    };
    assert_eq!(used(&ports).await, Some(at(100)));
    ports
        .api_keys
        .touch(k.id, at(130), at(70))
        .await
        .expect("touch");
    assert_eq!(used(&ports).await, Some(at(100)), "used within the minute");
    ports
        .api_keys
        .touch(k.id, at(200), at(140))
        .await
        .expect("touch");
    assert_eq!(used(&ports).await, Some(at(200)));
}

/// Housekeeping deletes the keys that stopped working before the cut (by
/// expiry or by a rotation's end, whichever came first), every owner's,
/// and keeps the rest.
async fn purging_deletes_the_keys_that_ended_before_the_cut(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let forever = key(&ports, ana.id(), "sak_00000000000a");
    let expiring = ApiKey {
        expires_at: Some(at(100)),
        ..key(&ports, ana.id(), "sak_00000000000b")
    };
    let retired = ApiKey {
        expires_at: Some(at(500)),
        retires_at: Some(at(50)),
        ..key(&ports, ana.id(), "sak_00000000000c")
    };
    let bobs = ApiKey {
        expires_at: Some(at(100)),
        ..key(&ports, bob.id(), "sak_00000000000d")
    };
    for (i, k) in [&forever, &expiring, &retired, &bobs]
        .into_iter()
        .enumerate()
    {
        ports
            .api_keys
            .commit(create(
                &ports,
                k,
                40 + i as u8,
                Quota::unlimited("api_keys"),
            ))
            .await
            .expect("create");
    }
    let purge = |cut| ports.api_keys.purge_ended(cut);
    assert_eq!(
        purge(at(50)).await.expect("purge"),
        0,
        "nothing ended before 50"
    );
    assert_eq!(
        purge(at(100)).await.expect("purge"),
        1,
        "the rotated key ended at 50"
    );
    assert_eq!(
        purge(at(101)).await.expect("purge"),
        2,
        "both expired at 100"
    );
    let left: Vec<_> = ports.api_keys.list(ana.id()).await.expect("list");
    assert_eq!(left, vec![forever], "a key that never ends stays");
    assert!(
        ports
            .api_keys
            .list(bob.id())
            .await
            .expect("list")
            .is_empty()
    );
}

pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        keys_are_found_by_prefix_and_scoped_to_their_owner,
        creating_past_the_quota_is_refused,
        rotation_and_deletion_act_on_the_owners_key_only,
        uses_are_recorded_at_most_as_often_as_asked,
        purging_deletes_the_keys_that_ended_before_the_cut,
    )
}
