//! The env, file and chained providers pass the secret port's conformance checks, one trial each.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use alarm_domain::ports::SecretProvider;
use alarm_secrets::{Chain, EnvSecrets, FileSecrets};
use alarm_testkit::conformance::{self, Subject};

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

fn main() {
    conformance::run_all(vec![
        Subject::new("env")
            .secrets(|secrets| async move { Arc::new(env(&secrets)) as Arc<dyn SecretProvider> }),
        Subject::new("file")
            .secrets(|secrets| async move { Arc::new(files(&secrets)) as Arc<dyn SecretProvider> }),
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
