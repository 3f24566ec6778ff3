//! Secret settings re-read on a schedule: a changed value reaches its consumers through a watch channel; a provider that fails keeps the last value, logged, counted and reported as stale.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

use crate::{Chain, expand, runtime};

/// A setting whose last refresh failed: the value in use is the last one
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// The setting, e.g. `SMTP_PASSWORD`.
    pub setting: &'static str,
    /// When its refreshes started failing.
    pub since: jiff::Timestamp,
    /// The last failure (names the reference and the provider, never a
    /// value).
    pub error: String,
}

/// What one refresh round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    /// Settings whose value changed (their watchers were told).
    pub changed: Vec<&'static str>,
    /// Settings that could not be read (they keep their last value).
    pub failed: Vec<&'static str>,
}

struct Entry {
    setting: &'static str,
    /// The value as written, references included.
    written: SecretString,
    tx: watch::Sender<SecretString>,
    stale: Option<(jiff::Timestamp, String)>,
}

/// The secret settings written as references, re-read every interval.
pub struct Refresher {
    chain: Chain,
    entries: Mutex<Vec<Entry>>,
    /// Told every secret a round reads (a log scrubber learns them).
    observer: fn(&SecretString),
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings: Vec<&str> = self.lock().iter().map(|e| e.setting).collect();
        f.debug_struct("Refresher")
            .field("providers", &self.chain)
            .field("settings", &settings)
            .finish()
    }
}

impl Refresher {
    /// A refresher reading through `chain`.
    pub fn new(chain: Chain) -> Arc<Self> {
        Self::observed(chain, |_| {})
    }

    /// A refresher that tells `observer` every secret its rounds read.
    pub fn observed(chain: Chain, observer: fn(&SecretString)) -> Arc<Self> {
        Arc::new(Self {
            chain,
            entries: Mutex::new(Vec::new()),
            observer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic while holding the lock leaves whole entries behind.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers `setting`, written as `written` and resolved at start to
    /// `value`, so rounds re-read it.
    pub fn track(&self, setting: &'static str, written: SecretString, value: SecretString) {
        let mut entries = self.lock();
        if entries.iter().any(|e| e.setting == setting) {
            return;
        }
        let (tx, _) = watch::channel(value);
        entries.push(Entry {
            setting,
            written,
            tx,
            stale: None,
        });
    }

    /// The current value of `setting` and every later one, if the setting
    /// is tracked (it was written with a reference).
    pub fn watch(&self, setting: &str) -> Option<watch::Receiver<SecretString>> {
        self.lock()
            .iter()
            .find(|e| e.setting == setting)
            .map(|e| e.tx.subscribe())
    }

    /// The settings whose last refresh failed.
    pub fn stale(&self) -> Vec<Stale> {
        self.lock()
            .iter()
            .filter_map(|e| {
                e.stale.as_ref().map(|(since, error)| Stale {
                    setting: e.setting,
                    since: *since,
                    error: error.clone(),
                })
            })
            .collect()
    }

    /// How many settings are tracked.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// One round: every tracked setting read again (each distinct secret
    /// once: the chain's cache is emptied first); a changed value is sent
    /// to its watchers; a failure keeps the last value.
    pub async fn refresh(&self) -> Round {
        self.chain.forget();
        let work: Vec<(&'static str, SecretString)> = self
            .lock()
            .iter()
            .map(|e| (e.setting, e.written.clone()))
            .collect();
        let mut round = Round::default();
        for (setting, written) in work {
            let read = expand(written.expose_secret(), &self.chain).await;
            let mut entries = self.lock();
            let Some(entry) = entries.iter_mut().find(|e| e.setting == setting) else {
                continue;
            };
            match read {
                Ok(value) => {
                    let value = value.unwrap_or(written);
                    if entry.stale.take().is_some() {
                        tracing::info!(setting, "secret refresh works again");
                    }
                    let changed = entry.tx.send_if_modified(|current| {
                        if current.expose_secret() == value.expose_secret() {
                            false
                        } else {
                            *current = value;
                            true
                        }
                    });
                    if changed {
                        tracing::info!(
                            setting,
                            "a secret setting changed in its provider (the settings that follow a rotation take it; the others at the next restart)"
                        );
                        round.changed.push(setting);
                    }
                    metrics::counter!("secret_refreshes_total", "outcome" => if changed { "changed" } else { "unchanged" })
                        .increment(1);
                }
                Err(e) => {
                    let error = e.to_string();
                    tracing::warn!(setting, error = %error, "a secret setting could not be refreshed; the last value stays in use");
                    let since = entry
                        .stale
                        .as_ref()
                        .map_or_else(jiff::Timestamp::now, |(s, _)| *s);
                    entry.stale = Some((since, error));
                    round.failed.push(setting);
                    metrics::counter!("secret_refreshes_total", "outcome" => "failed").increment(1);
                }
            }
        }
        for value in self.chain.values() {
            (self.observer)(&value);
        }
        metrics::gauge!("secret_settings_stale").set(self.stale().len() as f64);
        round
    }

    /// Runs a round every `every` on the secrets' I/O thread, until the
    /// refresher is dropped.
    pub fn start(self: &Arc<Self>, every: Duration) {
        metrics::gauge!("secret_settings_stale").set(0.0);
        for outcome in ["changed", "unchanged", "failed"] {
            metrics::counter!("secret_refreshes_total", "outcome" => outcome).increment(0);
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        runtime::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is now: the values were read at start.
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else {
                    return;
                };
                this.refresh().await;
            }
        });
    }
}
