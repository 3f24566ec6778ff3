//! Conformance checks of [`alarm_domain::ports::RefreshTokenStore`].

use super::*;

/// A new, unrevoked family of `user` expiring at `at(expires)`.
fn family(ports: &Ports, user: &User, expires: i64) -> RefreshFamily {
    RefreshFamily {
        id: ports.ids.next_uuid(),
        user: user.id(),
        expires_at: at(expires),
        revoked: false,
    }
}

/// Ana with a family expiring at `at(3600)` whose current token is `[1; 32]`.
async fn ana_with_family(ports: &Ports) -> (User, RefreshFamily) {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let family = family(ports, &ana, 3600);
    ports
        .refresh_tokens
        .create(family.clone(), [1u8; 32])
        .await
        .expect("create");
    (ana, family)
}

/// Creating a family twice, or a family with a token hash that exists, conflicts.
async fn creating_a_taken_family_or_token_conflicts(new_ports: Fresh) {
    let ports = new_ports().await;
    let (ana, family) = ana_with_family(&ports).await;
    let tokens = ports.refresh_tokens.clone();
    is(
        tokens.create(family.clone(), [9u8; 32]).await,
        conflict,
        "the same family twice",
    );
    let other = self::family(&ports, &ana, 3600);
    is(
        tokens.create(other, [1u8; 32]).await,
        conflict,
        "a token hash that exists",
    );
    assert_eq!(
        tokens
            .rotate([1u8; 32], [2u8; 32], at(10))
            .await
            .expect("rotate")
            .id,
        family.id,
        "the refused creates left the family and its token as they were"
    );
}

/// Rotating the current token returns its family.
async fn rotating_returns_the_tokens_family(new_ports: Fresh) {
    let ports = new_ports().await;
    let (_, family) = ana_with_family(&ports).await;
    assert_eq!(
        ports
            .refresh_tokens
            .rotate([1u8; 32], [2u8; 32], at(10))
            .await
            .expect("rotate")
            .id,
        family.id
    );
}

/// Reusing a spent token revokes the family: even the current token dies.
async fn reusing_a_spent_token_revokes_the_family(new_ports: Fresh) {
    let ports = new_ports().await;
    let (t1, t2, t3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    ana_with_family(&ports).await;
    let tokens = ports.refresh_tokens.clone();
    tokens.rotate(t1, t2, at(10)).await.expect("rotate");
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
}

/// A family rotates no more once it has expired.
async fn an_expired_family_cannot_rotate(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let tokens = ports.refresh_tokens.clone();
    tokens
        .create(family(&ports, &ana, 100), [3u8; 32])
        .await
        .expect("create");
    is(
        tokens.rotate([3u8; 32], [4u8; 32], at(100)).await,
        lease_lost,
        "an expired family",
    );
}

/// Revoking by token (logout) marks the family revoked and ends its rotation.
async fn revoking_by_token_ends_the_family(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let tokens = ports.refresh_tokens.clone();
    let family = family(&ports, &ana, 1000);
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
}

/// A family is read back as created; revoking it by id ends its rotation.
async fn revoking_a_family_by_id_ends_it(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let tokens = ports.refresh_tokens.clone();
    let session = family(&ports, &ana, 1000);
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
}

/// Unknown tokens and families are not found, whether rotated, read or revoked.
async fn unknown_tokens_and_families_are_not_found(new_ports: Fresh) {
    let ports = new_ports().await;
    ana_with_family(&ports).await;
    let tokens = ports.refresh_tokens.clone();
    is(
        tokens.rotate([8u8; 32], [3u8; 32], at(10)).await,
        not_found,
        "an unknown token",
    );
    is(
        tokens.revoke([7u8; 32]).await,
        not_found,
        "revoking an unknown token",
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
    checks!(Ports:
        creating_a_taken_family_or_token_conflicts,
        rotating_returns_the_tokens_family,
        reusing_a_spent_token_revokes_the_family,
        an_expired_family_cannot_rotate,
        revoking_by_token_ends_the_family,
        revoking_a_family_by_id_ends_it,
        unknown_tokens_and_families_are_not_found,
    )
}
