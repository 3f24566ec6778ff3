//! Conformance checks of [`alarm_domain::ports::RefreshTokenStore`].

use super::*;

/// [`alarm_domain::ports::RefreshTokenStore`]: rotation, reuse detection, expiry, revocation.
async fn refresh_token_store(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let tokens = ports.refresh_tokens.clone();
    let family = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: at(3600),
        revoked: false,
    };
    let (t1, t2, t3, t4) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]);
    tokens.create(family.clone(), t1).await.expect("create");
    is(
        tokens.create(family.clone(), [9u8; 32]).await,
        conflict,
        "the same family twice",
    );
    let other = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: at(3600),
        revoked: false,
    };
    is(
        tokens.create(other, t1).await,
        conflict,
        "a token hash that exists",
    );
    assert_eq!(
        tokens.rotate(t1, t2, at(10)).await.expect("rotate").id,
        family.id
    );
    is(
        tokens.rotate([8u8; 32], t3, at(10)).await,
        not_found,
        "an unknown token",
    );
    // Reusing the spent t1 revokes the family: even the current t2 dies.
    is(
        tokens.rotate(t1, t3, at(20)).await,
        lease_lost,
        "reuse of a spent token",
    );
    is(
        tokens.rotate(t2, t3, at(20)).await,
        lease_lost,
        "the family was revoked by the reuse",
    );

    let family = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: at(100),
        revoked: false,
    };
    tokens.create(family, t3).await.expect("create");
    is(
        tokens.rotate(t3, t4, at(100)).await,
        lease_lost,
        "an expired family",
    );
    let family = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: at(1000),
        revoked: false,
    };
    tokens
        .create(family.clone(), [5u8; 32])
        .await
        .expect("create");
    assert!(!tokens.family(family.id).await.expect("family").revoked);
    tokens.revoke([5u8; 32]).await.expect("revoke");
    assert!(
        tokens.family(family.id).await.expect("family").revoked,
        "revoke by token marks the family"
    );
    is(
        tokens.rotate([5u8; 32], [6u8; 32], at(1)).await,
        lease_lost,
        "a revoked family (logout)",
    );
    is(
        tokens.revoke([7u8; 32]).await,
        not_found,
        "revoking an unknown token",
    );
    let session = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: at(1000),
        revoked: false,
    };
    tokens
        .create(session.clone(), [10u8; 32])
        .await
        .expect("create");
    assert_eq!(tokens.family(session.id).await.expect("family"), session);
    tokens
        .revoke_family(session.id)
        .await
        .expect("revoke family");
    assert!(tokens.family(session.id).await.expect("family").revoked);
    is(
        tokens.rotate([10u8; 32], [11u8; 32], at(1)).await,
        lease_lost,
        "a family revoked by id",
    );
    let unknown = ports.ids.next_uuid();
    is(tokens.family(unknown).await, not_found, "an unknown family");
    is(
        tokens.revoke_family(unknown).await,
        not_found,
        "revoking an unknown family",
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports: refresh_token_store)
}
