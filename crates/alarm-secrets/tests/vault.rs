//! The Vault provider with the real `vaultrs` client against the local fake: token and AppRole auth, versions, namespaces, errors, renewal.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use alarm_domain::ports::{SecretError, SecretProvider};
use alarm_secrets::{VaultAuth, VaultConfig, VaultSecrets};
use secrecy::{ExposeSecret, SecretString};
use support::vault::{FakeVault, State};

fn kv(value: &str) -> HashMap<String, String> {
    HashMap::from([("value".to_owned(), value.to_owned())])
}

fn config(fake: &FakeVault, auth: VaultAuth) -> VaultConfig {
    VaultConfig {
        address: fake.url(),
        mount: "secret".into(),
        path_prefix: "smart-alarm/".into(),
        field: "value".into(),
        namespace: None,
        ca_cert: None,
        auth,
        timeout: Duration::from_secs(5),
    }
}

fn token(t: &str) -> VaultAuth {
    VaultAuth::Token(SecretString::from(t.to_owned()))
}

fn state() -> State {
    State {
        tokens: HashMap::from([("hvs.good".to_owned(), 0)]),
        secrets: HashMap::from([
            (
                "smart-alarm/db-password".to_owned(),
                vec![kv("first"), kv("second")],
            ),
            (
                "smart-alarm/no-field".to_owned(),
                vec![HashMap::from([("other".to_owned(), "x".to_owned())])],
            ),
            ("smart-alarm/locked".to_owned(), vec![kv("nope")]),
        ]),
        forbidden: vec!["smart-alarm/locked".into()],
        ..State::default()
    }
}

fn message(e: SecretError) -> String {
    match e {
        SecretError::Unexpected(e) => alarm_domain::error::chain(&*e),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn reads_latest_and_pinned_versions_with_a_token() {
    let fake = FakeVault::start(state()).await;
    let vault = VaultSecrets::connect(config(&fake, token("hvs.good")))
        .await
        .expect("connect");
    let latest = vault.get("db-password").await.expect("latest");
    assert_eq!(latest.expose_secret(), "second");
    let first = vault.get("db-password@1").await.expect("version 1");
    assert_eq!(first.expose_secret(), "first");
    assert!(matches!(
        vault.get("db-password@9").await,
        Err(SecretError::NotFound(n)) if n == "db-password@9"
    ));
    assert!(matches!(
        vault.get("missing").await,
        Err(SecretError::NotFound(n)) if n == "missing"
    ));
    let forbidden = message(vault.get("locked").await.unwrap_err());
    assert!(
        forbidden.contains("403") && forbidden.contains("permission denied"),
        "{forbidden}"
    );
    let no_field = message(vault.get("no-field").await.unwrap_err());
    assert!(no_field.contains("`value`"), "{no_field}");
    let shown = format!("{vault:?}");
    assert!(!shown.contains("hvs.good"), "{shown}");
}

#[tokio::test]
async fn a_bad_token_or_a_sealed_vault_fails_the_start_with_the_cause() {
    let fake = FakeVault::start(state()).await;
    let err = VaultSecrets::connect(config(&fake, token("hvs.wrong")))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("403") && !err.contains("hvs.wrong"), "{err}");
    fake.state.lock().expect("state").sealed = true;
    let err = VaultSecrets::connect(config(&fake, token("hvs.good")))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("503") && err.contains("sealed"), "{err}");
    let err = VaultSecrets::connect(VaultConfig {
        address: "vault.internal:8200".into(),
        ..config(&fake, token("hvs.good"))
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("VAULT_ADDR"), "{err}");
}

#[tokio::test]
async fn a_read_after_sealing_is_a_failure_not_a_missing_secret() {
    let fake = FakeVault::start(state()).await;
    let vault = VaultSecrets::connect(config(&fake, token("hvs.good")))
        .await
        .expect("connect");
    fake.state.lock().expect("state").sealed = true;
    let err = message(vault.get("db-password").await.unwrap_err());
    assert!(err.contains("503") && err.contains("sealed"), "{err}");
}

#[tokio::test]
async fn the_namespace_header_is_sent() {
    let fake = FakeVault::start(State {
        namespace: Some("team-a".into()),
        ..state()
    })
    .await;
    assert!(
        VaultSecrets::connect(config(&fake, token("hvs.good")))
            .await
            .is_err(),
        "without the namespace the fake refuses"
    );
    let vault = VaultSecrets::connect(VaultConfig {
        namespace: Some("team-a".into()),
        ..config(&fake, token("hvs.good"))
    })
    .await
    .expect("connect in the namespace");
    assert_eq!(
        vault
            .get("db-password")
            .await
            .expect("read")
            .expose_secret(),
        "second"
    );
}

fn approle() -> VaultAuth {
    VaultAuth::AppRole {
        mount: "approle".into(),
        role_id: SecretString::from("role-1"),
        secret_id: SecretString::from("secret-1"),
    }
}

/// Awaits the fake's reports (logins, renewals) until `done` holds; a
/// minute without it fails the test rather than hanging it.
async fn until(fake: &FakeVault, done: impl Fn(&State) -> bool) {
    let wait = async {
        loop {
            // Registered before the check, so a report between the two
            // is not missed.
            let changed = fake.changed.notified();
            if done(&fake.state.lock().expect("state")) {
                return;
            }
            changed.await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the fake reported it within a minute");
}

#[tokio::test]
async fn approle_logs_in_and_the_token_is_renewed_before_it_expires() {
    let fake = FakeVault::start(State {
        tokens: HashMap::new(),
        // A one-second lease: renewed after two thirds of it.
        approle: Some(("role-1".into(), "secret-1".into(), 1)),
        ..state()
    })
    .await;
    let vault = VaultSecrets::connect(config(&fake, approle()))
        .await
        .expect("login");
    assert_eq!(fake.state.lock().expect("state").logins, 1);
    assert_eq!(
        vault
            .get("db-password")
            .await
            .expect("read")
            .expose_secret(),
        "second"
    );
    // Two renewals, each awaited as the fake reports it.
    until(&fake, |st| st.renewals >= 2).await;
    // A refused renewal makes AppRole log in again.
    fake.state.lock().expect("state").refuse_renewal = true;
    until(&fake, |st| st.logins >= 2).await;
    assert_eq!(
        vault
            .get("db-password@1")
            .await
            .expect("read with the new token")
            .expose_secret(),
        "first"
    );
}

#[tokio::test]
async fn wrong_approle_credentials_fail_the_start_without_showing_them() {
    let fake = FakeVault::start(State {
        approle: Some(("role-1".into(), "other".into(), 60)),
        ..state()
    })
    .await;
    let err = VaultSecrets::connect(config(&fake, approle()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("400") && !err.contains("secret-1"), "{err}");
}

#[tokio::test]
async fn tls_is_checked_against_the_configured_ca() {
    let (fake, ca) = FakeVault::start_tls(state()).await;
    let ca_file = std::env::temp_dir().join(format!("vault-ca-{}.pem", fake.addr.port()));
    std::fs::write(&ca_file, ca).expect("ca file");
    // Without the CA the server's certificate is not trusted.
    let err = VaultSecrets::connect(config(&fake, token("hvs.good")))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("could not be reached"), "{err}");
    let vault = VaultSecrets::connect(VaultConfig {
        ca_cert: Some(ca_file.clone()),
        ..config(&fake, token("hvs.good"))
    })
    .await
    .expect("trusted through VAULT_CACERT");
    assert_eq!(
        vault
            .get("db-password")
            .await
            .expect("read")
            .expose_secret(),
        "second"
    );
    let _ = std::fs::remove_file(ca_file);
}
