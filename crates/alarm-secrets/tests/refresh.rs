//! The refresher over a real directory of secret files: changed values reach their watchers, a failed read keeps the last value and is reported, each distinct secret is read once per round.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use alarm_domain::ports::{SecretError, SecretProvider};
use alarm_secrets::{Chain, FileSecrets, Refresher, expand};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

fn dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "alarm-secrets-refresh-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// Resolves `written` through `chain` and tracks it as `setting`.
async fn tracked(refresher: &Refresher, chain: &Chain, setting: &'static str, written: &str) {
    let value = expand(written, chain)
        .await
        .expect("resolves")
        .expect("a reference");
    refresher.track(setting, SecretString::from(written), value);
}

#[tokio::test]
async fn changes_reach_watchers_and_failures_keep_the_last_value() {
    let d = dir("watch");
    std::fs::write(d.join("smtp"), "one\n").expect("write");
    let chain = Chain::new(vec![(
        "file",
        Arc::new(FileSecrets::new(&d)) as Arc<dyn SecretProvider>,
    )]);
    let refresher = Refresher::new(chain.clone());
    tracked(&refresher, &chain, "SMTP_PASSWORD", "{vault:smtp}").await;
    let mut watch = refresher.watch("SMTP_PASSWORD").expect("tracked");
    assert!(refresher.watch("JWT_SECRET_KEY").is_none(), "not tracked");
    assert_eq!(watch.borrow_and_update().expose_secret(), "one");

    assert_eq!(
        refresher.refresh().await,
        Default::default(),
        "nothing changed"
    );
    assert!(!watch.has_changed().expect("open"));

    std::fs::write(d.join("smtp"), "two\n").expect("rotate");
    let round = refresher.refresh().await;
    assert_eq!(round.changed, ["SMTP_PASSWORD"]);
    assert!(watch.has_changed().expect("open"));
    assert_eq!(watch.borrow_and_update().expose_secret(), "two");

    std::fs::remove_file(d.join("smtp")).expect("remove");
    let round = refresher.refresh().await;
    assert_eq!(round.failed, ["SMTP_PASSWORD"]);
    assert!(!watch.has_changed().expect("open"), "the last value stays");
    let stale = refresher.stale();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].setting, "SMTP_PASSWORD");
    assert!(stale[0].error.contains("{vault:smtp}") && !stale[0].error.contains("two"));
    let since = stale[0].since;
    refresher.refresh().await;
    assert_eq!(
        refresher.stale()[0].since,
        since,
        "stale since the first failure"
    );

    std::fs::write(d.join("smtp"), "three\n").expect("restore");
    let round = refresher.refresh().await;
    assert_eq!(round.changed, ["SMTP_PASSWORD"]);
    assert!(refresher.stale().is_empty());
    assert_eq!(watch.borrow_and_update().expose_secret(), "three");
    let _ = std::fs::remove_dir_all(d);
}

/// Counts its reads.
struct Counting(AtomicU32);

#[async_trait]
impl SecretProvider for Counting {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        match name {
            "db-password" => Ok(SecretString::from("p4ss")),
            other => Err(SecretError::NotFound(other.to_owned())),
        }
    }
}

#[tokio::test]
async fn each_secret_is_read_once_per_round() {
    let counting = Arc::new(Counting(AtomicU32::new(0)));
    let chain = Chain::new(vec![("vault", counting.clone() as Arc<dyn SecretProvider>)]);
    let refresher = Refresher::new(chain.clone());
    tracked(
        &refresher,
        &chain,
        "DATABASE_URL",
        "postgres://app:{vault:db-password}@db/a",
    )
    .await;
    tracked(&refresher, &chain, "SMTP_PASSWORD", "{vault:db-password}").await;
    assert_eq!(
        counting.0.load(Ordering::SeqCst),
        1,
        "the start reads it once"
    );
    refresher.refresh().await;
    assert_eq!(
        counting.0.load(Ordering::SeqCst),
        2,
        "a round reads it once more"
    );
    assert_eq!(
        refresher
            .watch("DATABASE_URL")
            .expect("tracked")
            .borrow()
            .expose_secret(),
        "postgres://app:p4ss@db/a"
    );
}
