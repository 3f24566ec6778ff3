//! Conformance checks of [`alarm_domain::ports::SecretProvider`].
//!
//! `new_provider(secrets)` must return a provider that knows exactly
//! `secrets` (name, value).

use super::*;

use alarm_domain::ports::SecretError;

/// A provider knowing only `JWT_SECRET_KEY`.
async fn provider(new_provider: &FreshSecrets) -> Arc<dyn SecretProvider> {
    new_provider(vec![(
        "JWT_SECRET_KEY".to_owned(),
        "k3y-material".to_owned(),
    )])
    .await
}

/// A known secret is returned as given, and its Debug is redacted.
async fn a_known_secret_is_returned_and_redacted(new_provider: FreshSecrets) {
    let provider = provider(&new_provider).await;
    let secret = provider.get("JWT_SECRET_KEY").await.expect("known secret");
    assert_eq!(secret.expose_secret(), "k3y-material");
    assert!(
        !format!("{secret:?}").contains("k3y-material"),
        "a secret's Debug is redacted"
    );
}

/// An unknown secret is not found, by its name.
async fn an_unknown_secret_is_not_found(new_provider: FreshSecrets) {
    let provider = provider(&new_provider).await;
    match provider.get("NOPE").await {
        Err(SecretError::NotFound(name)) => assert_eq!(name, "NOPE"),
        other => panic!("an unknown secret: got {other:?}"),
    }
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Secrets:
        a_known_secret_is_returned_and_redacted,
        an_unknown_secret_is_not_found,
    )
}
