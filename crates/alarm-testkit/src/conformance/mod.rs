//! The conformance checks every adapter must pass, as data: one check per promise of a port, each run as its own trial.
//!
//! An adapter's test target is one `harness = false` program that hands
//! [`run`] a [`Subject`] naming the ports it implements; every check of
//! every one of those ports then runs as its own trial (through
//! `libtest-mimic`, so `cargo test` and `cargo nextest` list, filter and
//! report each by name). Adding a check here makes it run on every adapter
//! with no other edit; a check that is written but not listed in its
//! module's `checks()` is dead code, which the workspace's `-D warnings`
//! refuses, so no check can be forgotten.
//!
//! Each check panics (like `assert!`) on the first broken promise, naming
//! it; a failing check fails only its own trial. Every check gets fresh
//! ports from the subject, so an adapter must hand out an empty, isolated
//! backend per call (a new database per call for SQL). All ports of one
//! call must share that backend, because change sets span stores (an alarm
//! commit writes triggers, events and audit records).
//!
//! ```no_run
//! use std::sync::Arc;
//! use alarm_testkit::{conformance, InMemory, ManualClock, SequentialIds, fixtures};
//!
//! // tests/conformance.rs of an adapter, with `harness = false` in Cargo.toml:
//! fn main() {
//!     conformance::run(conformance::Subject::new("in-memory").ports(|store_clock| async move {
//!         let memory = match store_clock {
//!             Some(clock) => InMemory::new().with_store_clock(clock),
//!             None => InMemory::new(),
//!         };
//!         memory.ports(Arc::new(ManualClock::new(fixtures::t0())), Arc::new(SequentialIds::new()))
//!     }));
//! }
//! ```

mod alarms;
mod api_keys;
mod blobs;
mod engine_support;
mod events_and_audit;
mod exception_periods;
mod holidays;
mod idempotency;
mod outbox;
mod parts;
mod prepared;
mod quotas;
mod refresh_tokens;
mod routines;
mod secrets;
mod sounds;
mod trigger_queue;
mod uploads;
mod users;
mod webhooks;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use alarm_domain::ids::{AlarmId, ExceptionPeriodId, HolidayId, RoutineId, UserId, WebhookId};
use alarm_domain::jiff::SignedDuration;
use alarm_domain::jiff::civil::date;
use alarm_domain::model::{
    AlarmEventKind, Country, DelayMinutes, DisplayName, Email, ExceptionKind, ExceptionPeriod,
    Holiday, HolidayDate, HolidayName, HolidayPreference, Role, Routine, RoutineAction,
    RoutineName, User, WebhookEvent, WebhookEventSet, WebhookRegistration, WebhookUrl,
};
use alarm_domain::ports::{
    AlarmOp, ChangeSet, ExceptionOp, FireOutcome, HolidayOp, HolidayPreferences, PageRequest,
    PreferenceOp, RefreshFamily, RingingOp, Rotation, RoutineOp, StoreError, TokenPurpose,
    TriggerPlan, UserOp, WebhookOp,
};
use alarm_domain::services::Ports;
use alarm_domain::trigger::{Delivery, Ringing, RingingChange, TriggerKind};
use secrecy::{ExposeSecret, SecretString};

use crate::fixtures::{self, at, audit, event, t0, trigger};
use alarm_domain::ports::{BlobStore, Clock, PartStore, SecretProvider};

/// A future the checks await on the trial's own runtime (it need not be `Send`).
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Fresh ports over an empty, isolated backend, on every call.
type Fresh = Arc<dyn Fn() -> LocalFuture<'static, Ports> + Send + Sync>;
/// Fresh ports whose store reads the given clock where it would read the
/// database's own (the visibility of prepared outcomes, `store_time`).
type FreshAt = Arc<dyn Fn(Arc<dyn Clock>) -> LocalFuture<'static, Ports> + Send + Sync>;
/// A fresh, empty blob store refusing blobs over the given size.
type FreshBlobs = Arc<dyn Fn(u64) -> LocalFuture<'static, Arc<dyn BlobStore>> + Send + Sync>;
/// A fresh, empty part store and the blob store its completed uploads
/// become blobs of.
type FreshParts =
    Arc<dyn Fn() -> LocalFuture<'static, (Arc<dyn PartStore>, Arc<dyn BlobStore>)> + Send + Sync>;
/// A fresh secret provider that knows exactly the given (name, value) pairs.
type FreshSecrets = Arc<
    dyn Fn(Vec<(String, String)>) -> LocalFuture<'static, Arc<dyn SecretProvider>> + Send + Sync,
>;

/// One check's view of an adapter under test: fresh ports on every call,
/// and a clean-up once the check has passed (a failed check leaves its
/// databases for inspection; the adapter's own sweep removes them later).
pub trait Backend: Send + Sync + 'static {
    /// Ports over an empty backend of their own; every port of one call
    /// shares it. With `store_clock`, the store reads that clock wherever
    /// it would read the database's own (`with_store_clock` on the SQL
    /// adapter and the fake), so a check can stand 1 ms before an instant.
    fn ports(&self, store_clock: Option<Arc<dyn Clock>>) -> LocalFuture<'_, Ports>;
    /// Releases what this check's calls to [`Backend::ports`] created.
    fn finish(&self) -> LocalFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A [`Backend`] that needs no clean-up: a closure making fresh ports.
struct FnBackend<F>(F);

impl<F, Fut> Backend for FnBackend<F>
where
    F: Fn(Option<Arc<dyn Clock>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Ports> + 'static,
{
    fn ports(&self, store_clock: Option<Arc<dyn Clock>>) -> LocalFuture<'_, Ports> {
        Box::pin((self.0)(store_clock))
    }
}

type NewBackend = Arc<dyn Fn() -> Arc<dyn Backend> + Send + Sync>;

/// An adapter under test: its name (the trials' kind) and the ports it
/// implements. Only the checks of those ports become trials.
pub struct Subject {
    name: String,
    ports: Option<NewBackend>,
    blobs: Option<FreshBlobs>,
    parts: Option<FreshParts>,
    secrets: Option<FreshSecrets>,
    skipped: Option<String>,
}

impl Subject {
    /// A subject implementing nothing yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ports: None,
            blobs: None,
            parts: None,
            secrets: None,
            skipped: None,
        }
    }

    /// The store ports and the trigger queue ([`Ports`]), from a closure
    /// that makes fresh ones over an empty backend on every call (with
    /// `Some(clock)`, a store that reads it as the database's clock).
    #[must_use]
    pub fn ports<F, Fut>(self, fresh: F) -> Self
    where
        F: Fn(Option<Arc<dyn Clock>>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Ports> + 'static,
    {
        self.backend(move || FnBackend(fresh.clone()))
    }

    /// The store ports and the trigger queue, from a [`Backend`] made anew
    /// for each check (so it can clean up what the check created).
    #[must_use]
    pub fn backend<B: Backend>(mut self, new: impl Fn() -> B + Send + Sync + 'static) -> Self {
        self.ports = Some(Arc::new(move || Arc::new(new()) as Arc<dyn Backend>));
        self
    }

    /// The [`BlobStore`] port: `fresh(limit)` makes an empty store refusing
    /// blobs over `limit` bytes.
    #[must_use]
    pub fn blobs<F, Fut>(mut self, fresh: F) -> Self
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Arc<dyn BlobStore>> + 'static,
    {
        self.blobs = Some(Arc::new(move |limit| Box::pin(fresh(limit))));
        self
    }

    /// The [`PartStore`] port: `fresh()` makes an empty part store and the
    /// blob store its completed uploads become blobs of.
    #[must_use]
    pub fn parts<F, Fut>(mut self, fresh: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (Arc<dyn PartStore>, Arc<dyn BlobStore>)> + 'static,
    {
        self.parts = Some(Arc::new(move || Box::pin(fresh())));
        self
    }

    /// The [`SecretProvider`] port: `fresh(secrets)` makes a provider that
    /// knows exactly `secrets` (name, value).
    #[must_use]
    pub fn secrets<F, Fut>(mut self, fresh: F) -> Self
    where
        F: Fn(Vec<(String, String)>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Arc<dyn SecretProvider>> + 'static,
    {
        self.secrets = Some(Arc::new(move |secrets| Box::pin(fresh(secrets))));
        self
    }

    /// Lists every trial as ignored, saying why once: the backend cannot
    /// run here (no server). Runners then count them as skipped, never as
    /// passed.
    #[must_use]
    pub fn skipped(mut self, why: impl Into<String>) -> Self {
        self.skipped = Some(why.into());
        self
    }
}

/// What a check needs from the subject.
enum Needs {
    Ports(fn(Fresh) -> LocalFuture<'static, ()>),
    PortsAt(fn(FreshAt) -> LocalFuture<'static, ()>),
    Blobs(fn(FreshBlobs) -> LocalFuture<'static, ()>),
    Parts(fn(FreshParts) -> LocalFuture<'static, ()>),
    Secrets(fn(FreshSecrets) -> LocalFuture<'static, ()>),
}

/// One promise of a port, checked on its own.
struct Check {
    name: &'static str,
    needs: Needs,
}

/// Lists a module's checks: `checks!(Ports: a, b)` (or `Blobs:`, `Secrets:`).
macro_rules! checks {
    ($needs:ident: $($check:ident),+ $(,)?) => {
        vec![$(super::Check {
            name: stringify!($check),
            needs: super::Needs::$needs(|fresh| Box::pin($check(fresh))),
        }),+]
    };
}
use checks;

/// A module of checks: its name and its list.
type Module = (&'static str, fn() -> Vec<Check>);

/// Every module's checks, named `module::check`.
fn all_checks() -> Vec<(&'static str, Check)> {
    let modules: [Module; 20] = [
        ("users", users::checks),
        ("alarms", alarms::checks),
        ("exception_periods", exception_periods::checks),
        ("holidays", holidays::checks),
        ("routines", routines::checks),
        ("webhooks", webhooks::checks),
        ("events_and_audit", events_and_audit::checks),
        ("refresh_tokens", refresh_tokens::checks),
        ("idempotency", idempotency::checks),
        ("engine_support", engine_support::checks),
        ("trigger_queue", trigger_queue::checks),
        ("blobs", blobs::checks),
        ("secrets", secrets::checks),
        ("outbox", outbox::checks),
        ("quotas", quotas::checks),
        ("api_keys", api_keys::checks),
        ("uploads", uploads::checks),
        ("parts", parts::checks),
        ("sounds", sounds::checks),
        ("prepared", prepared::checks),
    ];
    modules
        .into_iter()
        .flat_map(|(module, checks)| checks().into_iter().map(move |c| (module, c)))
        .collect()
}

/// One trial per check of every port `subject` implements, named
/// `port::check`, of kind `subject`'s name.
pub fn trials(subject: &Subject) -> Vec<libtest_mimic::Trial> {
    let mut trials = Vec::new();
    for (module, check) in all_checks() {
        let name = format!("{module}::{}", check.name);
        let run: Box<dyn FnOnce() + Send> = match check.needs {
            Needs::Ports(check) => {
                let Some(new) = subject.ports.clone() else {
                    continue;
                };
                Box::new(move || {
                    block_on(async move {
                        let backend = new();
                        let shared = backend.clone();
                        let fresh: Fresh = Arc::new(move || {
                            let backend = shared.clone();
                            Box::pin(async move { backend.ports(None).await })
                        });
                        check(fresh).await;
                        backend.finish().await;
                    });
                })
            }
            Needs::PortsAt(check) => {
                let Some(new) = subject.ports.clone() else {
                    continue;
                };
                Box::new(move || {
                    block_on(async move {
                        let backend = new();
                        let shared = backend.clone();
                        let fresh: FreshAt = Arc::new(move |clock| {
                            let backend = shared.clone();
                            Box::pin(async move { backend.ports(Some(clock)).await })
                        });
                        check(fresh).await;
                        backend.finish().await;
                    });
                })
            }
            Needs::Blobs(check) => {
                let Some(fresh) = subject.blobs.clone() else {
                    continue;
                };
                Box::new(move || block_on(check(fresh)))
            }
            Needs::Parts(check) => {
                let Some(fresh) = subject.parts.clone() else {
                    continue;
                };
                Box::new(move || block_on(check(fresh)))
            }
            Needs::Secrets(check) => {
                let Some(fresh) = subject.secrets.clone() else {
                    continue;
                };
                Box::new(move || block_on(check(fresh)))
            }
        };
        let trial = libtest_mimic::Trial::test(name, move || {
            run();
            Ok(())
        })
        .with_kind(subject.name.clone())
        .with_ignored_flag(subject.skipped.is_some());
        trials.push(trial);
    }
    trials
}

/// The whole test program of an adapter's conformance target: parses the
/// test runner's arguments, runs [`trials`] and exits with the outcome.
pub fn run(subject: Subject) -> ! {
    run_all(vec![subject])
}

/// [`run`] for several adapters of one crate (e.g. each secret provider),
/// their trials told apart by kind.
pub fn run_all(subjects: Vec<Subject>) -> ! {
    let args = libtest_mimic::Arguments::from_args();
    let mut all = Vec::new();
    for subject in &subjects {
        if let Some(why) = &subject.skipped {
            eprintln!(
                "\n********** SKIPPED every {} conformance check: {why} **********\n",
                subject.name
            );
        }
        all.extend(trials(subject));
    }
    libtest_mimic::run(&args, all).exit()
}

/// Each check on a runtime of its own with real parallelism: the
/// concurrency checks spawn claimers as tasks, and only parallel workers
/// make "never the same trigger twice" a meaningful check.
fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime for the check")
        .block_on(future)
}

fn is<T: std::fmt::Debug>(r: Result<T, StoreError>, want: fn(&StoreError) -> bool, what: &str) {
    match r {
        Err(e) if want(&e) => {}
        other => panic!("{what}: got {other:?}"),
    }
}

fn not_found(e: &StoreError) -> bool {
    matches!(e, StoreError::NotFound)
}
fn conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(_))
}
fn stale(e: &StoreError) -> bool {
    matches!(e, StoreError::StaleVersion { .. })
}
fn lease_lost(e: &StoreError) -> bool {
    matches!(e, StoreError::LeaseLost)
}

async fn audit_count(ports: &Ports) -> usize {
    let mut n = 0;
    let mut after = None;
    loop {
        let page = ports
            .audit
            .list(None, PageRequest::new(after, 100).expect("limit"))
            .await
            .expect("audit list");
        n += page.items.len();
        match page.next {
            Some(next) => after = Some(next),
            None => return n,
        }
    }
}
