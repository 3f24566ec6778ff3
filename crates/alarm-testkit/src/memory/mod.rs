//! The in-memory backend: the state behind one lock, the checks and writes every change set shares, and the ports it hands to the services.
//!
//! One mutex guards the whole state, so a change set is validated and
//! applied under the same lock: all or nothing, and concurrent callers see
//! each other's commits in a single order, as with a serializable database.

mod alarms;
mod api_keys;
mod audit;
mod events;
mod exception_periods;
mod holidays;
mod idempotency;
mod outbox;
mod owned;
mod refresh_tokens;
mod routines;
mod sounds;
mod trigger_queue;
mod uploads;
mod users;
mod webhooks;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use alarm_domain::firing::visible;
use alarm_domain::ids::{
    AlarmId, AuditId, EventId, ExceptionPeriodId, HolidayId, RoutineId, UserId, WebhookId,
};
use alarm_domain::jiff::Timestamp;
use alarm_domain::model::{
    Alarm, AlarmEvent, AuditRecord, ExceptionPeriod, Holiday, Routine, User, WebhookRegistration,
};
use alarm_domain::ports::{
    AnyTarget, ChangeSet, Clock, HolidayPreferences, IdSource, OutboxItem, Page, PageRequest,
    RefreshFamily, StoreError, StoredResponse, TriggerPlan,
};
use alarm_domain::services::Ports;
use alarm_domain::trigger::{Delivery, LeaseToken, Ringing, Trigger, TriggerKind};
use secrecy::SecretString;

type TriggerKey = (AlarmId, Timestamp, TriggerKind);

/// An outbox row and its lease, if claimed.
type OutboxRow = (OutboxItem, Option<(LeaseToken, Timestamp)>);

/// (fingerprint, created, answer, holder).
type IdemRecord = ([u8; 32], Timestamp, Option<StoredResponse>, uuid::Uuid);

#[derive(Debug, Clone)]
struct StoredTrigger {
    trigger: Trigger,
    lease: Option<(LeaseToken, Timestamp)>,
}

#[derive(Default)]
struct State {
    users: BTreeMap<UserId, (User, SecretString)>,
    alarms: BTreeMap<AlarmId, Alarm>,
    exceptions: BTreeMap<ExceptionPeriodId, ExceptionPeriod>,
    holidays: BTreeMap<HolidayId, Holiday>,
    preferences: HashMap<UserId, HolidayPreferences>,
    routines: BTreeMap<RoutineId, Routine>,
    /// Each alarm's attached routines, in order. A deleted alarm or
    /// routine is skipped on read (ids are never reused), as the SQL
    /// store's cascading foreign keys remove it.
    routine_links: BTreeMap<AlarmId, Vec<RoutineId>>,
    webhooks: BTreeMap<WebhookId, WebhookRegistration>,
    /// API keys with the hash of their text.
    api_keys: BTreeMap<alarm_domain::ids::ApiKeyId, (alarm_domain::model::ApiKey, [u8; 32])>,
    uploads: BTreeMap<alarm_domain::ids::UploadId, alarm_domain::model::Upload>,
    /// Sounds, in id (creation) order.
    sounds: BTreeMap<alarm_domain::ids::BlobId, alarm_domain::model::Sound>,
    /// Deleted sounds whose bytes may remain (their tombstones).
    deleted_sounds: BTreeMap<alarm_domain::ids::BlobId, alarm_domain::model::Sound>,
    events: BTreeMap<EventId, AlarmEvent>,
    audit: BTreeMap<AuditId, AuditRecord>,
    triggers: HashMap<TriggerKey, StoredTrigger>,
    ringing: BTreeMap<(AlarmId, Timestamp), Ringing>,
    deliveries: Vec<Delivery>,
    /// (message, target) → (row, lease).
    outbox: BTreeMap<(uuid::Uuid, uuid::Uuid), OutboxRow>,
    families: HashMap<uuid::Uuid, RefreshFamily>,
    /// Token hash → (family, spent).
    tokens: HashMap<[u8; 32], (uuid::Uuid, bool)>,
    /// (owner, scope, key) → (fingerprint, created, answer).
    idempotency: HashMap<(UserId, String, String), IdemRecord>,
    /// Each account's newest e-mailed token of each purpose: (SHA-256,
    /// expiry).
    account_tokens: HashMap<(UserId, alarm_domain::ports::TokenPurpose), ([u8; 32], Timestamp)>,
    /// Pending holiday re-plans, one per country.
    replans: HashMap<alarm_domain::model::Country, alarm_domain::ports::ReplanJob>,
    leases_issued: u64,
    /// The engine right: (holder, until).
    engine_lease: Option<(uuid::Uuid, Timestamp)>,
    /// The instants from which the engine's events are visible (the SQL
    /// adapter's `effective_us`); a service's events are not in it.
    effective: HashMap<EventId, Timestamp>,
    /// The same for the engine's outbox rows, by (message, target).
    effective_rows: HashMap<(uuid::Uuid, uuid::Uuid), Timestamp>,
    /// Stands in for a database's clock ([`InMemory::with_store_clock`]);
    /// the machine's clock without one.
    store_clock: Option<Arc<dyn Clock>>,
}

/// The in-memory backend. Cheap to clone (clones share the state); hand
/// its ports to the services with [`InMemory::ports`].
#[derive(Clone, Default)]
pub struct InMemory {
    state: Arc<Mutex<State>>,
}

fn page<K: Ord + Copy, T: Clone>(
    items: impl Iterator<Item = (K, T)>,
    request: PageRequest<K>,
) -> Page<T, K> {
    let limit = request.limit() as usize;
    let mut out: Vec<(K, T)> = items
        .filter(|(k, _)| request.after().is_none_or(|after| *k > after))
        .take(limit + 1)
        .collect();
    let next = if out.len() > limit {
        out.truncate(limit);
        out.last().map(|(k, _)| *k)
    } else {
        None
    };
    Page {
        items: out.into_iter().map(|(_, t)| t).collect(),
        next,
    }
}

impl State {
    /// The backend's clock: what [`visible`] compares a prepared
    /// outcome's instant with.
    fn store_now(&self) -> Timestamp {
        self.store_clock
            .as_ref()
            .map_or_else(Timestamp::now, |c| c.now())
    }

    /// Whether the event exists for readers now.
    fn event_visible(&self, id: EventId) -> bool {
        self.effective
            .get(&id)
            .is_none_or(|at| visible(*at, self.store_now()))
    }

    /// Withdraws the alarm's prepared outcomes still ahead of the store's
    /// clock (the SQL adapter's `cancel_prepared`).
    fn cancel_prepared(&mut self, alarm: AlarmId) {
        let now = self.store_now();
        self.revoke_claims(now, |t| t.alarm == alarm);
        self.withdraw_rings(|r| r.alarm == alarm && !visible(r.since, now));
        // Outcomes that did not ring have no ringing record.
        self.withdraw_rows(|item| item.alarm.is_some_and(|(a, _)| a == alarm));
        self.withdraw_events(|e| e.alarm == alarm);
    }

    /// The owner's prepared rings still ahead are withdrawn and their
    /// `fire` triggers put back (the SQL adapter's `reprepare_owner`),
    /// after a change to what they carry (routines, webhooks).
    pub(super) fn reprepare_owner(&mut self, owner: UserId) {
        let now = self.store_now();
        self.revoke_claims(now, |t| t.owner == owner);
        let rings = self.withdraw_rings(|r| r.owner == owner && !visible(r.since, now));
        for r in rings {
            let Some(version) = self.alarms.get(&r.alarm).map(Alarm::version) else {
                continue;
            };
            self.upsert_trigger(Trigger {
                alarm: r.alarm,
                owner: r.owner,
                occurrence: r.occurrence,
                kind: TriggerKind::Fire,
                due_at: r.since,
                alarm_version: version,
            });
        }
    }

    /// Revokes the leases of the `fire` claims `which` picks that are still
    /// ahead (the SQL adapter's `revoke_claims`): a preparation judged
    /// before the change is declined at its commit, and the trigger judged
    /// again.
    fn revoke_claims(&mut self, now: Timestamp, which: impl Fn(&Trigger) -> bool) {
        for t in self.triggers.values_mut() {
            if t.lease.is_some()
                && t.trigger.kind == TriggerKind::Fire
                && !visible(t.trigger.due_at, now)
                && which(&t.trigger)
            {
                t.lease = None;
            }
        }
    }

    /// Removes the ringing records `which` picks, with their occurrences'
    /// follow-ups and not yet effective deliveries, outbox rows and events.
    fn withdraw_rings(&mut self, which: impl Fn(&Ringing) -> bool) -> Vec<Ringing> {
        let now = self.store_now();
        let rings: Vec<Ringing> = self
            .ringing
            .values()
            .filter(|r| which(r))
            .cloned()
            .collect();
        for r in &rings {
            let (alarm, at) = (r.alarm, r.occurrence.at);
            self.ringing.remove(&(alarm, at));
            self.triggers
                .retain(|(a, o, kind), _| !(*a == alarm && *o == at && *kind != TriggerKind::Fire));
            self.deliveries.retain(|d| {
                !(d.alarm == alarm && d.occurrence.at == at && !visible(d.created_at, now))
            });
            self.withdraw_rows(|item| item.alarm.is_some_and(|(a, o)| a == alarm && o.at == at));
            self.withdraw_events(|e| e.alarm == alarm && e.occurrence == Some(at));
        }
        rings
    }

    /// Removes the events `which` picks that have not taken effect.
    fn withdraw_events(&mut self, which: impl Fn(&AlarmEvent) -> bool) {
        let now = self.store_now();
        let withdrawn: Vec<EventId> = self
            .events
            .values()
            .filter(|e| which(e))
            .filter(|e| {
                self.effective
                    .get(&e.id)
                    .is_some_and(|at| !visible(*at, now))
            })
            .map(|e| e.id)
            .collect();
        for id in withdrawn {
            self.events.remove(&id);
            self.effective.remove(&id);
            // The rows made of the event (a routine's start has no alarm).
            let message = id.as_uuid();
            self.withdraw_rows(|item| item.message == message);
        }
    }

    /// Removes the outbox rows `which` picks that have not taken effect.
    fn withdraw_rows(&mut self, which: impl Fn(&OutboxItem) -> bool) {
        let now = self.store_now();
        let ahead: Vec<(uuid::Uuid, uuid::Uuid)> = self
            .outbox
            .iter()
            .filter(|(k, (item, _))| which(item) && !self.row_visible(**k, now))
            .map(|(k, _)| *k)
            .collect();
        for key in ahead {
            self.outbox.remove(&key);
            self.effective_rows.remove(&key);
        }
    }

    /// Checks the parts every change set shares; nothing is written.
    fn check_common<Op>(&self, change: &ChangeSet<Op>) -> Result<(), StoreError> {
        if self.audit.contains_key(&change.audit.id) {
            return Err(StoreError::Conflict(format!(
                "audit record {} exists",
                change.audit.id
            )));
        }
        self.check_events(&change.events)
    }

    fn check_events(&self, events: &[AlarmEvent]) -> Result<(), StoreError> {
        for (i, e) in events.iter().enumerate() {
            if self.events.contains_key(&e.id) || events[..i].iter().any(|o| o.id == e.id) {
                return Err(StoreError::Conflict(format!("event {} exists", e.id)));
            }
        }
        Ok(())
    }

    /// Writes the shared parts; call only after every check passed.
    fn apply_common<Op>(&mut self, change: ChangeSet<Op>) {
        self.audit.insert(change.audit.id, change.audit);
        self.fan_out(&[], &change.events, false);
        self.append_events(change.events);
        for plan in change.triggers {
            self.replan(plan);
        }
    }

    /// A plan made by a change to the alarm or its owner's calendar: what
    /// was prepared before it and is still ahead is withdrawn first.
    fn replan(&mut self, plan: TriggerPlan) {
        self.cancel_prepared(plan.alarm());
        self.apply_plan(plan);
    }

    fn append_events(&mut self, events: Vec<AlarmEvent>) {
        for e in events {
            self.events.insert(e.id, e);
        }
    }

    /// Inserts or replaces a trigger by key, unless that key is leased right
    /// now (it is being fired; replacing it would double-fire).
    fn upsert_trigger(&mut self, trigger: Trigger) {
        let key = trigger.key();
        if self.triggers.get(&key).is_some_and(|t| t.lease.is_some()) {
            return;
        }
        self.triggers.insert(
            key,
            StoredTrigger {
                trigger,
                lease: None,
            },
        );
    }

    fn apply_plan(&mut self, plan: TriggerPlan) {
        if !plan.still_current(self.alarms.get(&plan.alarm()).map(|a| a.version().get())) {
            return;
        }
        match plan {
            TriggerPlan::Reschedule { alarm, next, .. } => {
                self.triggers.retain(|(a, _, kind), t| {
                    !(*a == alarm && *kind == TriggerKind::Fire && t.lease.is_none())
                });
                if let Some(next) = next {
                    self.upsert_trigger(next);
                }
            }
            TriggerPlan::CancelAll { alarm } => {
                self.triggers.retain(|(a, _, _), _| *a != alarm);
                self.ringing.retain(|(a, _), _| *a != alarm);
            }
        }
    }
}

impl InMemory {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// This backend with `clock` read wherever a database would read its
    /// own clock: the visibility of prepared outcomes and `store_time`, as
    /// the SQL adapter's `with_store_clock`.
    #[must_use]
    pub fn with_store_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.lock().store_clock = Some(clock);
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another test thread must not cascade into every later
        // call; the state itself is never left half-written (all writes
        // happen after all checks).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every port of this backend, with the given clock and id source;
    /// its object storage is a fresh [`crate::InMemoryBlobs`] (with its
    /// [`crate::InMemoryParts`]), replaced by `Ports::with_storage`.
    pub fn ports(&self, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Ports {
        let me = Arc::new(self.clone());
        let blobs = Arc::new(crate::InMemoryBlobs::new(
            alarm_domain::model::MAX_UPLOAD_BYTES,
        ));
        Ports {
            users: me.clone(),
            alarms: me.clone(),
            exceptions: me.clone(),
            holidays: me.clone(),
            routines: me.clone(),
            webhooks: me.clone(),
            api_keys: me.clone(),
            events: me.clone(),
            audit: me.clone(),
            refresh_tokens: me.clone(),
            idempotency: me.clone(),
            uploads: me.clone(),
            sounds: me.clone(),
            parts: Arc::new(crate::InMemoryParts::new(blobs.clone())),
            blobs,
            outbox: me.clone(),
            queue: me,
            clock,
            ids,
            wake: Arc::new(alarm_domain::ports::NoWake),
            targets: Arc::new(AnyTarget),
            limits: alarm_domain::limits::Limits::default(),
        }
    }

    /// How many triggers are stored (leased or not); for assertions.
    pub fn trigger_count(&self) -> usize {
        self.lock().triggers.len()
    }
}
