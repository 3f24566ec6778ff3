//! Conformance checks of [`alarm_domain::ports::SecretProvider`].

use super::*;

/// [`alarm_domain::ports::SecretProvider`]. `new_provider(secrets)` must
/// return a provider that knows exactly `secrets` (name, value).
async fn secret_provider(new_provider: FreshSecrets) {
    use alarm_domain::ports::SecretError;
    let provider = new_provider(vec![(
        "JWT_SECRET_KEY".to_owned(),
        "k3y-material".to_owned(),
    )])
    .await;
    let secret = provider.get("JWT_SECRET_KEY").await.expect("known secret");
    assert_eq!(secret.expose_secret(), "k3y-material");
    assert!(
        !format!("{secret:?}").contains("k3y-material"),
        "a secret's Debug is redacted"
    );
    match provider.get("NOPE").await {
        Err(SecretError::NotFound(name)) => assert_eq!(name, "NOPE"),
        other => panic!("an unknown secret: got {other:?}"),
    }
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Secrets: secret_provider)
}
