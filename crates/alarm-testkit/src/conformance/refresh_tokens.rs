//! Conformance checks of [`alarm_domain::ports::RefreshTokenStore`].

use super::*;

/// A new, unrevoked family of `user` expiring at `at(expires)`.
fn family(ports: &Ports, user: &User, expires: i64) -> RefreshFamily {
    RefreshFamily {
        id: ports.ids.next_uuid(),
        user: user.id(),
        expires_at: at(expires),
        logged_in_at: at(0),
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
            .expect("rotate"),
        Rotation::Rotated(family),
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
            .expect("rotate"),
        Rotation::Rotated(family)
    );
}

/// Reusing a spent token revokes the family: even the current token dies.
async fn reusing_a_spent_token_revokes_the_family(new_ports: Fresh) {
    let ports = new_ports().await;
    let (t1, t2, t3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let (_, family) = ana_with_family(&ports).await;
    let tokens = ports.refresh_tokens.clone();
    tokens.rotate(t1, t2, at(10)).await.expect("rotate");
    assert_eq!(
        tokens.rotate(t1, t3, at(20)).await.expect("reuse"),
        Rotation::Reused(RefreshFamily {
            revoked: true,
            ..family.clone()
        }),
        "reuse of a spent token names its family, revoked"
    );
    assert_eq!(
        tokens.rotate(t2, t3, at(20)).await.expect("rotate"),
        Rotation::Refused,
        "the family was revoked by the reuse"
    );
    assert!(tokens.family(family.id).await.expect("family").revoked);
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
    assert_eq!(
        tokens
            .rotate([3u8; 32], [4u8; 32], at(100))
            .await
            .expect("rotate"),
        Rotation::Refused,
        "an expired family"
    );
    is(
        tokens.rotate([4u8; 32], [5u8; 32], at(10)).await,
        not_found,
        "a refused rotation stored no new token",
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
    assert_eq!(
        tokens
            .rotate([5u8; 32], [6u8; 32], at(1))
            .await
            .expect("rotate"),
        Rotation::Refused,
        "a revoked family (logout)"
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
    assert_eq!(
        tokens
            .rotate([10u8; 32], [11u8; 32], at(1))
            .await
            .expect("rotate"),
        Rotation::Refused,
        "a family revoked by id"
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

/// Revoking a user's families ends every live one but the kept one, counts
/// only those that were live, and leaves other users' alone.
async fn revoking_a_users_families_keeps_the_named_one(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let tokens = ports.refresh_tokens.clone();
    let (a1, a2, a3) = (
        family(&ports, &ana, 1000),
        family(&ports, &ana, 1000),
        family(&ports, &ana, 1000),
    );
    let b1 = family(&ports, &bob, 1000);
    for (f, hash) in [(&a1, 21u8), (&a2, 22), (&a3, 23), (&b1, 24)] {
        tokens.create(f.clone(), [hash; 32]).await.expect("create");
    }
    tokens.revoke_family(a3.id).await.expect("revoke");
    assert_eq!(
        tokens
            .revoke_user(ana.id(), Some(a1.id))
            .await
            .expect("revoke user"),
        1,
        "only a2 was live and not kept"
    );
    assert!(!tokens.family(a1.id).await.expect("family").revoked, "kept");
    assert!(tokens.family(a2.id).await.expect("family").revoked);
    assert!(
        !tokens.family(b1.id).await.expect("family").revoked,
        "bob's"
    );
    assert_eq!(
        tokens
            .revoke_user(ana.id(), None)
            .await
            .expect("revoke user"),
        1,
        "now the kept one too"
    );
    assert!(tokens.family(a1.id).await.expect("family").revoked);
    assert_eq!(
        tokens
            .rotate([21u8; 32], [25u8; 32], at(1))
            .await
            .expect("rotate"),
        Rotation::Refused
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
        revoking_a_users_families_keeps_the_named_one,
    )
}
