//! The env, file, Vault (over its local fake) and OCI Vault (over its local fake) providers, and a chain, pass the secret port's conformance checks, one trial each.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use alarm_domain::ports::SecretProvider;
use std::collections::HashMap;
use std::time::Duration;

use alarm_secrets::{
    Chain, EnvSecrets, FileSecrets, OciAuth, OciConfig, OciSecrets, VaultAuth, VaultConfig,
    VaultSecrets,
};
use alarm_testkit::conformance::{self, Subject};
use secrecy::SecretString;

/// A directory of its own for each provider made.
fn fresh_dir(tag: &str) -> std::path::PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "alarm-secrets-conformance-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn files(secrets: &[(String, String)]) -> FileSecrets {
    let dir = fresh_dir("file");
    for (name, value) in secrets {
        std::fs::write(dir.join(name), format!("{value}\n")).expect("write");
    }
    FileSecrets::new(dir)
}

fn env(secrets: &[(String, String)]) -> EnvSecrets {
    EnvSecrets::from_vars(
        "APP_",
        secrets
            .iter()
            .map(|(k, v)| (format!("APP_{k}").into(), v.into())),
    )
}

/// A Vault provider over a fresh fake holding `secrets` as KV v2
/// secrets with a `value` field.
async fn vault(secrets: Vec<(String, String)>) -> VaultSecrets {
    let fake = support::vault::FakeVault::start(support::vault::State {
        tokens: HashMap::from([("hvs.t".to_owned(), 0)]),
        secrets: secrets
            .into_iter()
            .map(|(k, v)| (k, vec![HashMap::from([("value".to_owned(), v)])]))
            .collect(),
        ..Default::default()
    })
    .await;
    VaultSecrets::connect(VaultConfig {
        address: fake.url(),
        mount: "secret".into(),
        path_prefix: String::new(),
        field: "value".into(),
        namespace: None,
        ca_cert: None,
        auth: VaultAuth::Token(SecretString::from("hvs.t")),
        timeout: Duration::from_secs(5),
    })
    .await
    .expect("connect to the fake")
}

/// An OCI Vault provider over a fresh fake holding `secrets` by name in
/// one vault, signing with a key the `cryptography` package makes.
async fn oci(secrets: Vec<(String, String)>) -> OciSecrets {
    let out = std::process::Command::new("python3")
        .args(["-c", "from cryptography.hazmat.primitives.asymmetric import rsa\nfrom cryptography.hazmat.primitives import serialization as s\nk = rsa.generate_private_key(public_exponent=65537, key_size=2048)\nprint(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()).decode())"])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 with `cryptography` (installed with `oci` by cargo xtask ci)"
    );
    let key = SecretString::from(String::from_utf8(out.stdout).expect("utf-8"));
    let signer = alarm_secrets::oci::RequestSigner::new("k".into(), &key).expect("key");
    let fake = support::oci::FakeOci::start(support::oci::State {
        key_id: "t/u/f".into(),
        public_key: signer.public_key_der(),
        secrets: secrets
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| {
                (
                    format!("ocid1.vaultsecret.oc1..s{i}"),
                    ("ocid1.vault.oc1..v".to_owned(), k, vec![v]),
                )
            })
            .collect(),
        ..Default::default()
    })
    .await;
    OciSecrets::connect(OciConfig {
        endpoint: fake.url(),
        vault_id: Some("ocid1.vault.oc1..v".into()),
        auth: OciAuth::ApiKey {
            tenancy: "t".into(),
            user: "u".into(),
            fingerprint: "f".into(),
            private_key: key,
        },
        timeout: Duration::from_secs(5),
    })
    .await
    .expect("connect to the fake")
}

fn main() {
    conformance::run_all(vec![
        Subject::new("env")
            .secrets(|secrets| async move { Arc::new(env(&secrets)) as Arc<dyn SecretProvider> }),
        Subject::new("file")
            .secrets(|secrets| async move { Arc::new(files(&secrets)) as Arc<dyn SecretProvider> }),
        Subject::new("vault").secrets(|secrets| async move {
            Arc::new(vault(secrets).await) as Arc<dyn SecretProvider>
        }),
        Subject::new("oci").secrets(|secrets| async move {
            Arc::new(oci(secrets).await) as Arc<dyn SecretProvider>
        }),
        // Every secret in the second provider: the chain must pass over
        // the first one's "not found".
        Subject::new("chain").secrets(|secrets| async move {
            Arc::new(Chain::new(vec![
                ("env", Arc::new(env(&[])) as Arc<dyn SecretProvider>),
                ("file", Arc::new(files(&secrets))),
            ])) as Arc<dyn SecretProvider>
        }),
    ]);
}
