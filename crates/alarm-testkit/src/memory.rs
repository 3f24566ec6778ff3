//! In-memory implementations of every store port and the trigger queue, sharing one state behind one lock.
//!
//! One mutex guards the whole state, so a change set is validated and
//! applied under the same lock: all or nothing, and concurrent callers see
//! each other's commits in a single order, as with a serializable database.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use alarm_domain::ids::{
    AlarmId, AuditId, EventId, ExceptionPeriodId, HolidayId, RoutineId, UserId, WebhookId,
};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::{
    Alarm, AlarmEvent, AuditRecord, Channel, Country, Email, ExceptionPeriod, Holiday, Routine,
    User, WebhookRegistration,
};
use alarm_domain::ports::{
    AlarmEventStore, AlarmOp, AlarmStore, AuditLog, ChangeSet, Clock, ExceptionOp,
    ExceptionPeriodStore, FireOutcome, HolidayOp, HolidayPreferences, HolidayStore,
    IDEMPOTENCY_IN_FLIGHT_TIMEOUT, IdSource, IdempotencyKey, IdempotencyStore, Page, PageRequest,
    PreferenceOp, RefreshFamily, RefreshTokenStore, Reservation, RingingOp, RoutineOp,
    RoutineStore, StoreError, StoredResponse, TriggerPlan, TriggerQueue, UserOp, UserStore,
    WebhookOp, WebhookStore,
};
use alarm_domain::ports::{
    AnyTarget, ClaimedSend, FinishReport, Outbox, OutboxItem, SendResult, SendStatus, SendTopic,
};
use alarm_domain::services::Ports;
use alarm_domain::trigger::{
    Claimed, Delivery, LeaseToken, Ringing, RingingChange, Trigger, TriggerKind,
};
use async_trait::async_trait;
use secrecy::SecretString;

type TriggerKey = (AlarmId, Timestamp, TriggerKind);

/// An outbox row and its lease, if claimed.
type OutboxRow = (OutboxItem, Option<(LeaseToken, Timestamp)>);

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
    webhooks: BTreeMap<WebhookId, WebhookRegistration>,
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
    leases_issued: u64,
    /// The engine right: (holder, until).
    engine_lease: Option<(uuid::Uuid, Timestamp)>,
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
        self.append_events(change.events);
        for plan in change.triggers {
            self.apply_plan(plan);
        }
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
        match plan {
            TriggerPlan::Reschedule {
                alarm,
                version,
                next,
            } => {
                if self.alarms.get(&alarm).map(Alarm::version) != Some(version) {
                    // Computed from an alarm that changed (or went) since:
                    // the newer commit's own plan stands.
                    return;
                }
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

    /// Writes a fired trigger's outcome; call only after its checks passed.
    fn apply_outcome(&mut self, outcome: FireOutcome) {
        self.append_events(outcome.events);
        let emails = outcome
            .deliveries
            .iter()
            .any(|d| d.channel == Channel::Email);
        for d in &outcome.deliveries {
            self.fan_out(d, emails);
        }
        self.deliveries.extend(outcome.deliveries);
        if let Some(follow_up) = outcome.follow_up {
            self.upsert_trigger(follow_up);
        }
        if let Some(plan) = outcome.next {
            self.apply_plan(plan);
        }
        match outcome.ringing {
            RingingChange::None => {}
            RingingChange::Upsert(r) => {
                self.ringing.insert((r.alarm, r.occurrence.at), r);
            }
            RingingChange::End { alarm, occurrence } => {
                self.ringing.remove(&(alarm, occurrence));
            }
        }
    }

    /// The outbox rows a committed delivery makes: one per active
    /// registration of the owner subscribed to its event (webhook), or one
    /// to the owner (email).
    fn fan_out(&mut self, d: &Delivery, ring_emails: bool) {
        let event = SendTopic::of_kind(d.kind);
        let subscribed =
            |w: &&WebhookRegistration| w.owner() == d.owner && w.events().contains(event);
        // Every subscribed registration disabled: the channel has failed
        // already; fall back to e-mail now unless the ring e-mails anyway.
        let all_disabled = d.channel == Channel::Webhook
            && !ring_emails
            && self.webhooks.values().filter(subscribed).count() > 0
            && !self
                .webhooks
                .values()
                .filter(subscribed)
                .any(|w| w.active());
        if all_disabled {
            let item = OutboxItem {
                fallback: true,
                ..OutboxItem::pending(
                    d.id,
                    d.owner.as_uuid(),
                    Channel::Email,
                    d.owner,
                    Some((d.alarm, d.occurrence)),
                    SendTopic::Alarm(event),
                    d.created_at,
                )
            };
            self.outbox
                .entry((d.id, item.target))
                .or_insert((item, None));
        }
        let targets: Vec<uuid::Uuid> = match d.channel {
            Channel::Webhook => self
                .webhooks
                .values()
                .filter(|w| w.owner() == d.owner && w.active() && w.events().contains(event))
                .map(|w| w.id().as_uuid())
                .collect(),
            Channel::Email => vec![d.owner.as_uuid()],
            Channel::InApp | Channel::Push => Vec::new(),
        };
        for target in targets {
            let item = OutboxItem::pending(
                d.id,
                target,
                d.channel,
                d.owner,
                Some((d.alarm, d.occurrence)),
                SendTopic::Alarm(event),
                d.created_at,
            );
            self.outbox.entry((d.id, target)).or_insert((item, None));
        }
    }

    /// Counts a dead webhook row against its registration, disabling it
    /// (and queueing the owner's notice) at `disable_after`; returns whether
    /// this call disabled it.
    fn count_failure(
        &mut self,
        id: WebhookId,
        by: u32,
        now: Timestamp,
        disable_after: u32,
    ) -> bool {
        let Some(w) = self.webhooks.get(&id).cloned() else {
            return false;
        };
        let failures = w.failure_count().saturating_add(by);
        let disable = w.active() && failures >= disable_after;
        self.webhooks.insert(
            id,
            WebhookRegistration::new(
                id,
                w.owner(),
                w.url().clone(),
                w.events(),
                w.secret().clone(),
                w.active() && !disable,
                failures,
            ),
        );
        if disable {
            let notice = OutboxItem::pending(
                uuid::Uuid::now_v7(),
                id.as_uuid(),
                Channel::Email,
                w.owner(),
                None,
                SendTopic::WebhookDisabled,
                now,
            );
            self.outbox
                .insert((notice.message, notice.target), (notice, None));
        }
        disable
    }

    /// Queues the fallback email of a dead external row when it was the last
    /// live one of its ring (same alarm, occurrence and creation instant)
    /// and the ring has no email row yet.
    fn fall_back(&mut self, dead: &OutboxItem, now: Timestamp) -> bool {
        let Some((alarm, occurrence)) = dead.alarm else {
            return false;
        };
        let siblings = self.outbox.values().map(|(i, _)| i).filter(|i| {
            i.alarm
                .is_some_and(|(a, o)| a == alarm && o.at == occurrence.at)
                && i.created_at == dead.created_at
        });
        let mut live_or_email = false;
        for i in siblings {
            if i.channel == Channel::Email || i.status != SendStatus::Dead {
                live_or_email = true;
            }
        }
        if live_or_email || dead.channel == Channel::Email {
            return false;
        }
        let item = OutboxItem {
            fallback: true,
            ..OutboxItem::pending(
                dead.message,
                dead.owner.as_uuid(),
                Channel::Email,
                dead.owner,
                dead.alarm,
                dead.topic,
                now,
            )
        };
        // A redelivered row that dies again finds its fallback made already.
        if self.outbox.contains_key(&(item.message, item.target)) {
            return false;
        }
        self.outbox
            .insert((item.message, item.target), (item, None));
        true
    }

    fn find_lease(&self, token: LeaseToken) -> Option<TriggerKey> {
        self.triggers
            .iter()
            .find(|(_, t)| t.lease.is_some_and(|(tok, _)| tok == token))
            .map(|(k, _)| *k)
    }
}

/// An owner-scoped entity (exception period, routine, webhook).
trait OwnedEntity: Clone {
    type Id: Ord + Copy + std::fmt::Display;
    fn key(&self) -> Self::Id;
    fn owned_by(&self) -> UserId;
}

macro_rules! owned_entity {
    ($t:ty, $id:ty) => {
        impl OwnedEntity for $t {
            type Id = $id;
            fn key(&self) -> $id {
                self.id()
            }
            fn owned_by(&self) -> UserId {
                self.owner()
            }
        }
    };
}
owned_entity!(ExceptionPeriod, ExceptionPeriodId);
owned_entity!(Routine, RoutineId);
owned_entity!(WebhookRegistration, WebhookId);

/// The three operations every owner-scoped store has.
enum Owned<T: OwnedEntity> {
    Create(T),
    Update(T),
    Delete(UserId, T::Id),
}

impl State {
    /// Create/update/delete of an owner-scoped entity with the change set's
    /// shared parts: every check first, then every write.
    fn commit_owned<T: OwnedEntity, Op>(
        &mut self,
        map: fn(&mut State) -> &mut BTreeMap<T::Id, T>,
        op: Owned<T>,
        change: ChangeSet<Op>,
    ) -> Result<(), StoreError> {
        self.check_common(&change)?;
        let entities = map(self);
        let owned = |m: &BTreeMap<T::Id, T>, owner: UserId, id: T::Id| {
            m.get(&id).is_some_and(|e| e.owned_by() == owner)
        };
        match &op {
            Owned::Create(e) if entities.contains_key(&e.key()) => {
                return Err(StoreError::Conflict(format!("{} exists", e.key())));
            }
            Owned::Update(e) if !owned(entities, e.owned_by(), e.key()) => {
                return Err(StoreError::NotFound);
            }
            Owned::Delete(owner, id) if !owned(entities, *owner, *id) => {
                return Err(StoreError::NotFound);
            }
            _ => {}
        }
        match op {
            Owned::Create(e) | Owned::Update(e) => {
                entities.insert(e.key(), e);
            }
            Owned::Delete(_, id) => {
                entities.remove(&id);
            }
        }
        self.apply_common(change);
        Ok(())
    }
}

impl InMemory {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another test thread must not cascade into every later
        // call; the state itself is never left half-written (all writes
        // happen after all checks).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every port of this backend, with the given clock and id source.
    pub fn ports(&self, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Ports {
        let me = Arc::new(self.clone());
        Ports {
            users: me.clone(),
            alarms: me.clone(),
            exceptions: me.clone(),
            holidays: me.clone(),
            routines: me.clone(),
            webhooks: me.clone(),
            events: me.clone(),
            audit: me.clone(),
            refresh_tokens: me.clone(),
            idempotency: me.clone(),
            outbox: me.clone(),
            queue: me,
            clock,
            ids,
            wake: Arc::new(alarm_domain::ports::NoWake),
            targets: Arc::new(AnyTarget),
        }
    }

    /// How many triggers are stored (leased or not); for assertions.
    pub fn trigger_count(&self) -> usize {
        self.lock().triggers.len()
    }
}

#[async_trait]
impl UserStore for InMemory {
    async fn get(&self, id: UserId) -> Result<User, StoreError> {
        self.lock()
            .users
            .get(&id)
            .map(|(u, _)| u.clone())
            .ok_or(StoreError::NotFound)
    }

    async fn get_many(&self, ids: Vec<UserId>) -> Result<Vec<User>, StoreError> {
        let s = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| s.users.get(id).map(|(u, _)| u.clone()))
            .collect())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|(u, _)| u.email() == email)
            .map(|(u, _)| u.clone()))
    }

    async fn credentials(&self, email: &Email) -> Result<Option<(User, SecretString)>, StoreError> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|(u, _)| u.email() == email)
            .cloned())
    }

    async fn commit(&self, change: ChangeSet<UserOp>) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        match &change.op {
            UserOp::Register { user, .. } => {
                if s.users.contains_key(&user.id()) {
                    return Err(StoreError::Conflict(format!("user {} exists", user.id())));
                }
                if s.users.values().any(|(u, _)| u.email() == user.email()) {
                    return Err(StoreError::Conflict("email already registered".to_owned()));
                }
            }
            UserOp::Update(user) => {
                if !s.users.contains_key(&user.id()) {
                    return Err(StoreError::NotFound);
                }
                if s.users
                    .values()
                    .any(|(u, _)| u.email() == user.email() && u.id() != user.id())
                {
                    return Err(StoreError::Conflict("email already registered".to_owned()));
                }
            }
        }
        match change.op.clone() {
            UserOp::Register {
                user,
                password_hash,
            } => {
                s.users.insert(user.id(), (user, password_hash));
            }
            UserOp::Update(user) => {
                if let Some(entry) = s.users.get_mut(&user.id()) {
                    entry.0 = user;
                }
            }
        }
        s.apply_common(change);
        Ok(())
    }
}

#[async_trait]
impl AlarmStore for InMemory {
    async fn get(&self, owner: UserId, id: AlarmId) -> Result<Alarm, StoreError> {
        self.lock()
            .alarms
            .get(&id)
            .filter(|a| a.owner() == owner)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn get_any(&self, id: AlarmId) -> Result<Alarm, StoreError> {
        self.lock()
            .alarms
            .get(&id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn get_many(&self, ids: Vec<AlarmId>) -> Result<Vec<Alarm>, StoreError> {
        let s = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| s.alarms.get(id).cloned())
            .collect())
    }

    async fn list(
        &self,
        owner: UserId,
        enabled: Option<bool>,
        request: PageRequest<AlarmId>,
    ) -> Result<Page<Alarm, AlarmId>, StoreError> {
        let s = self.lock();
        let items = s
            .alarms
            .iter()
            .filter(|(_, a)| a.owner() == owner && enabled.is_none_or(|e| a.enabled() == e))
            .map(|(k, a)| (*k, a.clone()));
        Ok(page(items, request))
    }

    async fn commit(&self, change: ChangeSet<AlarmOp>) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        let stored_version = |s: &State, owner: UserId, id: AlarmId| {
            s.alarms
                .get(&id)
                .filter(|a| a.owner() == owner)
                .map(Alarm::version)
                .ok_or(StoreError::NotFound)
        };
        match &change.op {
            AlarmOp::Create(alarm) => {
                if s.alarms.contains_key(&alarm.id()) {
                    return Err(StoreError::Conflict(format!("alarm {} exists", alarm.id())));
                }
            }
            AlarmOp::Update { alarm, expected } => {
                let actual = stored_version(&s, alarm.owner(), alarm.id())?;
                if actual != *expected {
                    return Err(StoreError::StaleVersion {
                        expected: expected.get(),
                        actual: actual.get(),
                    });
                }
                if alarm.version() != expected.next() {
                    return Err(StoreError::Conflict(
                        "an update must carry version expected + 1".to_owned(),
                    ));
                }
            }
            AlarmOp::Delete {
                owner,
                id,
                expected,
            } => {
                let actual = stored_version(&s, *owner, *id)?;
                if actual != *expected {
                    return Err(StoreError::StaleVersion {
                        expected: expected.get(),
                        actual: actual.get(),
                    });
                }
            }
        }
        match change.op.clone() {
            AlarmOp::Create(alarm) | AlarmOp::Update { alarm, .. } => {
                s.alarms.insert(alarm.id(), alarm);
            }
            AlarmOp::Delete { id, .. } => {
                s.alarms.remove(&id);
            }
        }
        s.apply_common(change);
        Ok(())
    }
}

#[async_trait]
impl ExceptionPeriodStore for InMemory {
    async fn get(
        &self,
        owner: UserId,
        id: ExceptionPeriodId,
    ) -> Result<ExceptionPeriod, StoreError> {
        self.lock()
            .exceptions
            .get(&id)
            .filter(|p| p.owner() == owner)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, owner: UserId) -> Result<Vec<ExceptionPeriod>, StoreError> {
        let mut list: Vec<ExceptionPeriod> = self
            .lock()
            .exceptions
            .values()
            .filter(|p| p.owner() == owner)
            .cloned()
            .collect();
        list.sort_by_key(|p| (p.start(), p.id()));
        Ok(list)
    }

    async fn list_many(&self, owners: Vec<UserId>) -> Result<Vec<ExceptionPeriod>, StoreError> {
        let mut list: Vec<ExceptionPeriod> = self
            .lock()
            .exceptions
            .values()
            .filter(|p| owners.contains(&p.owner()))
            .cloned()
            .collect();
        list.sort_by_key(|p| (p.owner(), p.start(), p.id()));
        Ok(list)
    }

    async fn commit(&self, change: ChangeSet<ExceptionOp>) -> Result<(), StoreError> {
        let op = match &change.op {
            ExceptionOp::Create(x) => Owned::Create(x.clone()),
            ExceptionOp::Update(x) => Owned::Update(x.clone()),
            ExceptionOp::Delete { owner, id } => Owned::Delete(*owner, *id),
        };
        self.lock().commit_owned(|s| &mut s.exceptions, op, change)
    }
}

#[async_trait]
impl HolidayStore for InMemory {
    async fn get(&self, id: HolidayId) -> Result<Holiday, StoreError> {
        self.lock()
            .holidays
            .get(&id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, country: Country) -> Result<Vec<Holiday>, StoreError> {
        Ok(self
            .lock()
            .holidays
            .values()
            .filter(|h| h.country() == country)
            .cloned()
            .collect())
    }

    async fn commit(&self, change: ChangeSet<HolidayOp>) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        match &change.op {
            HolidayOp::Create(h) => {
                if s.holidays.contains_key(&h.id()) {
                    return Err(StoreError::Conflict(format!("holiday {} exists", h.id())));
                }
                let same = |o: &Holiday| {
                    o.name() == h.name()
                        && o.date() == h.date()
                        && o.country() == h.country()
                        && o.state() == h.state()
                };
                if s.holidays.values().any(same) {
                    return Err(StoreError::Conflict("the same holiday exists".to_owned()));
                }
            }
            HolidayOp::Delete(id) if !s.holidays.contains_key(id) => {
                return Err(StoreError::NotFound);
            }
            HolidayOp::Delete(_) => {}
        }
        match change.op.clone() {
            HolidayOp::Create(h) => {
                s.holidays.insert(h.id(), h);
            }
            HolidayOp::Delete(id) => {
                s.holidays.remove(&id);
                // Overrides of a deleted holiday mean nothing any more.
                for prefs in s.preferences.values_mut() {
                    prefs.overrides.retain(|(h, _)| *h != id);
                }
            }
        }
        s.apply_common(change);
        Ok(())
    }

    async fn preferences(&self, owner: UserId) -> Result<HolidayPreferences, StoreError> {
        Ok(self
            .lock()
            .preferences
            .get(&owner)
            .cloned()
            .unwrap_or_default())
    }

    async fn preferences_many(
        &self,
        owners: Vec<UserId>,
    ) -> Result<Vec<(UserId, HolidayPreferences)>, StoreError> {
        let s = self.lock();
        Ok(owners
            .into_iter()
            .map(|o| (o, s.preferences.get(&o).cloned().unwrap_or_default()))
            .collect())
    }

    async fn commit_preferences(&self, change: ChangeSet<PreferenceOp>) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        let PreferenceOp::Set { owner, preferences } = change.op.clone();
        if preferences
            .overrides
            .iter()
            .any(|(id, _)| !s.holidays.contains_key(id))
        {
            return Err(StoreError::NotFound);
        }
        s.preferences.insert(owner, preferences);
        s.apply_common(change);
        Ok(())
    }
}

#[async_trait]
impl RoutineStore for InMemory {
    async fn get(&self, owner: UserId, id: RoutineId) -> Result<Routine, StoreError> {
        self.lock()
            .routines
            .get(&id)
            .filter(|r| r.owner() == owner)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list(
        &self,
        owner: UserId,
        request: PageRequest<RoutineId>,
    ) -> Result<Page<Routine, RoutineId>, StoreError> {
        let s = self.lock();
        Ok(page(
            s.routines
                .iter()
                .filter(|(_, r)| r.owner() == owner)
                .map(|(k, r)| (*k, r.clone())),
            request,
        ))
    }

    async fn commit(&self, change: ChangeSet<RoutineOp>) -> Result<(), StoreError> {
        let op = match &change.op {
            RoutineOp::Create(x) => Owned::Create(x.clone()),
            RoutineOp::Update(x) => Owned::Update(x.clone()),
            RoutineOp::Delete { owner, id } => Owned::Delete(*owner, *id),
        };
        self.lock().commit_owned(|s| &mut s.routines, op, change)
    }
}

#[async_trait]
impl WebhookStore for InMemory {
    async fn get(&self, owner: UserId, id: WebhookId) -> Result<WebhookRegistration, StoreError> {
        self.lock()
            .webhooks
            .get(&id)
            .filter(|w| w.owner() == owner)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, owner: UserId) -> Result<Vec<WebhookRegistration>, StoreError> {
        Ok(self
            .lock()
            .webhooks
            .values()
            .filter(|w| w.owner() == owner)
            .cloned()
            .collect())
    }

    async fn commit(&self, change: ChangeSet<WebhookOp>) -> Result<(), StoreError> {
        let op = match &change.op {
            WebhookOp::Create(x) => Owned::Create(x.clone()),
            WebhookOp::Update(x) => Owned::Update(x.clone()),
            WebhookOp::Delete { owner, id } => Owned::Delete(*owner, *id),
        };
        self.lock().commit_owned(|s| &mut s.webhooks, op, change)
    }
}

#[async_trait]
impl AlarmEventStore for InMemory {
    async fn list(
        &self,
        owner: UserId,
        alarm: AlarmId,
        request: PageRequest<EventId>,
    ) -> Result<Page<AlarmEvent, EventId>, StoreError> {
        let s = self.lock();
        Ok(page(
            s.events
                .iter()
                .filter(|(_, e)| e.owner == owner && e.alarm == alarm)
                .map(|(k, e)| (*k, e.clone())),
            request,
        ))
    }
}

#[async_trait]
impl AuditLog for InMemory {
    async fn list(
        &self,
        actor: Option<UserId>,
        request: PageRequest<AuditId>,
    ) -> Result<Page<AuditRecord, AuditId>, StoreError> {
        let s = self.lock();
        Ok(page(
            s.audit
                .iter()
                .filter(|(_, r)| actor.is_none_or(|a| r.actor == Some(a)))
                .map(|(k, r)| (*k, r.clone())),
            request,
        ))
    }
}

#[async_trait]
impl RefreshTokenStore for InMemory {
    async fn create(&self, family: RefreshFamily, token_hash: [u8; 32]) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.families.contains_key(&family.id) || s.tokens.contains_key(&token_hash) {
            return Err(StoreError::Conflict(
                "refresh family or token exists".to_owned(),
            ));
        }
        s.tokens.insert(token_hash, (family.id, false));
        s.families.insert(family.id, family);
        Ok(())
    }

    async fn rotate(
        &self,
        old_hash: [u8; 32],
        new_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<RefreshFamily, StoreError> {
        let mut s = self.lock();
        let (family_id, spent) = *s.tokens.get(&old_hash).ok_or(StoreError::NotFound)?;
        let family = s
            .families
            .get(&family_id)
            .cloned()
            .ok_or(StoreError::NotFound)?;
        if spent {
            // Reuse of a spent token means it leaked: the whole family dies.
            if let Some(f) = s.families.get_mut(&family_id) {
                f.revoked = true;
            }
            return Err(StoreError::LeaseLost);
        }
        if family.revoked || now >= family.expires_at {
            return Err(StoreError::LeaseLost);
        }
        if s.tokens.contains_key(&new_hash) {
            return Err(StoreError::Conflict("refresh token exists".to_owned()));
        }
        s.tokens.insert(old_hash, (family_id, true));
        s.tokens.insert(new_hash, (family_id, false));
        Ok(family)
    }

    async fn revoke(&self, token_hash: [u8; 32]) -> Result<(), StoreError> {
        let mut s = self.lock();
        let (family_id, _) = *s.tokens.get(&token_hash).ok_or(StoreError::NotFound)?;
        if let Some(f) = s.families.get_mut(&family_id) {
            f.revoked = true;
        }
        Ok(())
    }

    async fn family(&self, id: uuid::Uuid) -> Result<RefreshFamily, StoreError> {
        self.lock()
            .families
            .get(&id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn revoke_family(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        let mut s = self.lock();
        let f = s.families.get_mut(&id).ok_or(StoreError::NotFound)?;
        f.revoked = true;
        Ok(())
    }
}

/// (fingerprint, created, answer, holder).
type IdemRecord = ([u8; 32], Timestamp, Option<StoredResponse>, uuid::Uuid);

fn idem_key(k: &IdempotencyKey) -> (UserId, String, String) {
    (k.owner, k.scope.clone(), k.key.clone())
}

#[async_trait]
impl IdempotencyStore for InMemory {
    async fn reserve(
        &self,
        key: &IdempotencyKey,
        fingerprint: [u8; 32],
        holder: uuid::Uuid,
        now: Timestamp,
        ttl: SignedDuration,
    ) -> Result<Reservation, StoreError> {
        let mut s = self.lock();
        let k = idem_key(key);
        if let Some((stored, created, answer, _)) = s.idempotency.get(&k) {
            let expired = *created + ttl <= now
                || (answer.is_none() && *created + IDEMPOTENCY_IN_FLIGHT_TIMEOUT <= now);
            if !expired {
                return Ok(if *stored != fingerprint {
                    Reservation::Mismatch
                } else if let Some(answer) = answer {
                    Reservation::Replay(answer.clone())
                } else {
                    Reservation::InFlight
                });
            }
        }
        s.idempotency.insert(k, (fingerprint, now, None, holder));
        Ok(Reservation::Fresh)
    }

    async fn finish(
        &self,
        key: &IdempotencyKey,
        holder: uuid::Uuid,
        response: StoredResponse,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        let record = s
            .idempotency
            .get_mut(&idem_key(key))
            .filter(|r| r.3 == holder)
            .ok_or(StoreError::NotFound)?;
        record.2 = Some(response);
        Ok(())
    }

    async fn abandon(&self, key: &IdempotencyKey, holder: uuid::Uuid) -> Result<(), StoreError> {
        let mut s = self.lock();
        let k = idem_key(key);
        if s.idempotency.get(&k).is_some_and(|r| r.3 == holder) {
            s.idempotency.remove(&k);
        }
        Ok(())
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let n = s.idempotency.len();
        s.idempotency
            .retain(|_, (_, created, _, _)| *created >= before);
        Ok((n - s.idempotency.len()) as u64)
    }
}

#[async_trait]
impl TriggerQueue for InMemory {
    async fn claim(
        &self,
        now: Timestamp,
        limit: u32,
        lease: SignedDuration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut s = self.lock();
        let mut due: Vec<TriggerKey> = s
            .triggers
            .iter()
            .filter(|(_, t)| t.lease.is_none() && t.trigger.due_at <= now)
            .map(|(k, _)| *k)
            .collect();
        due.sort_by_key(|k| (s.triggers[k].trigger.due_at, *k));
        due.truncate(limit as usize);
        let until = now.checked_add(lease).unwrap_or(Timestamp::MAX);
        let mut claimed = Vec::with_capacity(due.len());
        for key in due {
            s.leases_issued += 1;
            let token = LeaseToken::from_uuid(uuid::Uuid::from_u64_pair(
                0x7e57_0000_0000_0000,
                s.leases_issued,
            ));
            if let Some(t) = s.triggers.get_mut(&key) {
                t.lease = Some((token, until));
                claimed.push(Claimed {
                    trigger: t.trigger.clone(),
                    token,
                    lease_until: until,
                });
            }
        }
        Ok(claimed)
    }

    async fn complete(&self, token: LeaseToken, outcome: FireOutcome) -> Result<(), StoreError> {
        let mut s = self.lock();
        let key = s.find_lease(token).ok_or(StoreError::LeaseLost)?;
        s.check_events(&outcome.events)?;
        s.triggers.remove(&key);
        s.apply_outcome(outcome);
        Ok(())
    }

    async fn complete_many(
        &self,
        items: Vec<(LeaseToken, FireOutcome)>,
    ) -> Result<Vec<LeaseToken>, StoreError> {
        let mut s = self.lock();
        let mut lost = Vec::new();
        let mut keep = Vec::new();
        for (token, outcome) in items {
            match s.find_lease(token) {
                Some(key) if !keep.iter().any(|(k, _)| *k == key) => keep.push((key, outcome)),
                _ => lost.push(token),
            }
        }
        let all_events: Vec<AlarmEvent> = keep.iter().flat_map(|(_, o)| o.events.clone()).collect();
        s.check_events(&all_events)?;
        for (key, outcome) in keep {
            s.triggers.remove(&key);
            s.apply_outcome(outcome);
        }
        Ok(lost)
    }

    async fn release(&self, token: LeaseToken) -> Result<(), StoreError> {
        let mut s = self.lock();
        let key = s.find_lease(token).ok_or(StoreError::LeaseLost)?;
        if let Some(t) = s.triggers.get_mut(&key) {
            t.lease = None;
        }
        Ok(())
    }

    async fn rescue(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let mut rescued = 0;
        for t in s.triggers.values_mut() {
            if t.lease.is_some_and(|(_, until)| until <= now) {
                t.lease = None;
                rescued += 1;
            }
        }
        Ok(rescued)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .lock()
            .triggers
            .values()
            .filter(|t| t.lease.is_none())
            .map(|t| t.trigger.due_at)
            .min())
    }

    async fn pending(&self, alarm: AlarmId) -> Result<Vec<Trigger>, StoreError> {
        let s = self.lock();
        let mut list: Vec<Trigger> = s
            .triggers
            .values()
            .filter(|t| t.trigger.alarm == alarm)
            .map(|t| t.trigger.clone())
            .collect();
        list.sort_by_key(|t| (t.due_at, t.key()));
        Ok(list)
    }

    async fn ringing(&self, owner: UserId, alarm: AlarmId) -> Result<Vec<Ringing>, StoreError> {
        let s = self.lock();
        Ok(s.ringing
            .range((alarm, Timestamp::MIN)..=(alarm, Timestamp::MAX))
            .map(|(_, r)| r.clone())
            .filter(|r| r.owner == owner)
            .collect())
    }

    async fn commit_ringing(&self, change: ChangeSet<RingingOp>) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        match change.op.clone() {
            RingingOp::Snooze { ringing, trigger } => {
                let key = (ringing.alarm, ringing.occurrence.at);
                let stored = s
                    .ringing
                    .get(&key)
                    .filter(|r| r.owner == ringing.owner)
                    .ok_or(StoreError::NotFound)?;
                alarm_domain::ports::check_snooze(stored, &ringing, &trigger)?;
                let occurrence = ringing.occurrence.at;
                // Leased escalations go too: their tokens die, so a runner
                // mid-escalation cannot ring over the user's snooze.
                s.triggers.retain(|(a, at, kind), _| {
                    !(*a == ringing.alarm
                        && *at == occurrence
                        && matches!(kind, TriggerKind::Escalate(_) | TriggerKind::Expire))
                });
                s.upsert_trigger(trigger);
                s.ringing.insert(key, ringing);
            }
            RingingOp::Dismiss { owner, alarm } => {
                let occurrences: Vec<Timestamp> = s
                    .ringing
                    .values()
                    .filter(|r| r.alarm == alarm && r.owner == owner)
                    .map(|r| r.occurrence.at)
                    .collect();
                if occurrences.is_empty() {
                    return Err(StoreError::NotFound);
                }
                s.ringing.retain(|(a, _), _| *a != alarm);
                s.triggers.retain(|(a, at, kind), _| {
                    !(*a == alarm && occurrences.contains(at) && *kind != TriggerKind::Fire)
                });
            }
        }
        s.apply_common(change);
        Ok(())
    }

    async fn reschedule(&self, plans: Vec<TriggerPlan>) -> Result<(), StoreError> {
        let mut s = self.lock();
        for plan in plans {
            s.apply_plan(plan);
        }
        Ok(())
    }

    async fn ringing_of(&self, owner: UserId) -> Result<Vec<Ringing>, StoreError> {
        let s = self.lock();
        let mut list: Vec<Ringing> = s
            .ringing
            .values()
            .filter(|r| r.owner == owner)
            .cloned()
            .collect();
        list.sort_by_key(|r| (r.occurrence.at, r.alarm));
        Ok(list)
    }

    async fn renew(
        &self,
        tokens: Vec<LeaseToken>,
        until: Timestamp,
    ) -> Result<Vec<LeaseToken>, StoreError> {
        let mut s = self.lock();
        let mut lost = Vec::new();
        for token in tokens {
            match s.find_lease(token) {
                Some(key) => {
                    if let Some(t) = s.triggers.get_mut(&key) {
                        t.lease = Some((token, until));
                    }
                }
                None => lost.push(token),
            }
        }
        Ok(lost)
    }

    async fn store_time(&self) -> Result<Timestamp, StoreError> {
        // The fake lives in one process: its clock is the machine's.
        Ok(Timestamp::now())
    }

    async fn engine_lease(
        &self,
        holder: uuid::Uuid,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        match s.engine_lease {
            Some((other, expires)) if other != holder && expires > now => Ok(false),
            _ => {
                s.engine_lease = Some((holder, until));
                Ok(true)
            }
        }
    }

    async fn engine_unlease(&self, holder: uuid::Uuid) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.engine_lease.is_some_and(|(h, _)| h == holder) {
            s.engine_lease = None;
        }
        Ok(())
    }

    async fn deliveries(&self, owner: UserId) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .lock()
            .deliveries
            .iter()
            .filter(|d| d.owner == owner)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Outbox for InMemory {
    async fn claim(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError> {
        let mut s = self.lock();
        let mut due: Vec<(Timestamp, (uuid::Uuid, uuid::Uuid))> = s
            .outbox
            .iter()
            .filter(|(_, (i, lease))| {
                i.status == SendStatus::Pending
                    && i.due <= now
                    && lease.is_none_or(|(_, u)| u <= now)
            })
            .map(|(k, (i, _))| (i.due, *k))
            .collect();
        due.sort();
        due.truncate(limit as usize);
        let mut out = Vec::with_capacity(due.len());
        for (_, key) in due {
            s.leases_issued += 1;
            let token = LeaseToken::from_uuid(uuid::Uuid::from_u64_pair(
                0x5e4d_0000_0000_0000,
                s.leases_issued,
            ));
            if let Some((item, lease)) = s.outbox.get_mut(&key) {
                *lease = Some((token, until));
                out.push(ClaimedSend {
                    item: item.clone(),
                    token,
                    lease_until: until,
                });
            }
        }
        Ok(out)
    }

    async fn finish(
        &self,
        now: Timestamp,
        results: Vec<(LeaseToken, SendResult)>,
        disable_after: u32,
    ) -> Result<FinishReport, StoreError> {
        let mut s = self.lock();
        let mut report = FinishReport::default();
        let mut done = Vec::new();
        for (token, result) in results {
            let Some(key) = s
                .outbox
                .iter()
                .find(|(_, (_, l))| l.is_some_and(|(t, _)| t == token))
                .map(|(k, _)| *k)
            else {
                report.lost.push(token);
                continue;
            };
            let Some((item, lease)) = s.outbox.get_mut(&key) else {
                continue;
            };
            *lease = None;
            item.updated_at = now;
            match result {
                SendResult::Delivered { code, latency_ms } => {
                    item.status = SendStatus::Delivered;
                    item.attempts += 1;
                    item.last_code = code;
                    item.last_error = None;
                    item.latency_ms = Some(latency_ms);
                }
                SendResult::Retry {
                    due,
                    counted,
                    code,
                    error,
                    latency_ms,
                } => {
                    item.due = due;
                    item.attempts += u32::from(counted);
                    item.last_code = code;
                    item.last_error = Some(error);
                    item.latency_ms = Some(latency_ms);
                }
                SendResult::Dead {
                    code,
                    error,
                    latency_ms,
                } => {
                    item.status = SendStatus::Dead;
                    item.attempts += 1;
                    item.last_code = code;
                    item.last_error = Some(error);
                    item.latency_ms = Some(latency_ms);
                }
            }
            done.push(item.clone());
        }
        // As the SQL adapter: successes first, then failures of the
        // registrations that did not also succeed in this batch, then the
        // fallbacks.
        let counts = |i: &OutboxItem| matches!(i.topic, SendTopic::Alarm(_));
        let succeeded: std::collections::BTreeSet<WebhookId> = done
            .iter()
            .filter(|i| i.status == SendStatus::Delivered && counts(i))
            .filter_map(OutboxItem::webhook)
            .collect();
        let mut failures: BTreeMap<WebhookId, u32> = BTreeMap::new();
        for i in &done {
            if i.status == SendStatus::Dead
                && counts(i)
                && let Some(id) = i.webhook().filter(|id| !succeeded.contains(id))
            {
                *failures.entry(id).or_default() += 1;
            }
        }
        for id in &succeeded {
            if let Some(w) = s.webhooks.get(id).cloned() {
                s.webhooks.insert(
                    *id,
                    WebhookRegistration::new(
                        *id,
                        w.owner(),
                        w.url().clone(),
                        w.events(),
                        w.secret().clone(),
                        w.active(),
                        0,
                    ),
                );
            }
        }
        for (id, n) in failures {
            if s.count_failure(id, n, now, disable_after) {
                report.disabled.push(id);
            }
        }
        for item in done.iter().filter(|i| i.status == SendStatus::Dead) {
            if s.fall_back(item, now) {
                report.fallbacks += 1;
            }
        }
        Ok(report)
    }

    async fn list(
        &self,
        owner: UserId,
        channel: Channel,
        target: uuid::Uuid,
        before: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let s = self.lock();
        let mut rows: Vec<&OutboxItem> = s
            .outbox
            .values()
            .map(|(i, _)| i)
            .filter(|i| i.owner == owner && i.channel == channel && i.target == target)
            .collect();
        rows.sort_by_key(|i| std::cmp::Reverse((i.created_at, i.message)));
        let cursor = match before {
            None => None,
            // An unknown cursor is an empty page, as in SQL.
            Some(m) => match s.outbox.get(&(m, target)) {
                Some((i, _)) => Some((i.created_at, i.message)),
                None => return Ok(Vec::new()),
            },
        };
        Ok(rows
            .into_iter()
            .filter(|i| cursor.is_none_or(|c| (i.created_at, i.message) < c))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn redeliver(
        &self,
        owner: UserId,
        channel: Channel,
        target: uuid::Uuid,
        message: uuid::Uuid,
        now: Timestamp,
    ) -> Result<OutboxItem, StoreError> {
        let mut s = self.lock();
        let (item, lease) = s
            .outbox
            .get_mut(&(message, target))
            .filter(|(i, _)| i.owner == owner && i.channel == channel)
            .ok_or(StoreError::NotFound)?;
        if item.status == SendStatus::Pending {
            return Err(StoreError::Conflict(
                "the delivery is still pending".to_owned(),
            ));
        }
        *lease = None;
        item.status = SendStatus::Pending;
        item.attempts = 0;
        item.due = now;
        item.updated_at = now;
        Ok(item.clone())
    }

    async fn enqueue(&self, item: OutboxItem) -> Result<(), StoreError> {
        self.lock()
            .outbox
            .entry((item.message, item.target))
            .or_insert((item, None));
        Ok(())
    }

    async fn webhooks(&self, ids: Vec<WebhookId>) -> Result<Vec<WebhookRegistration>, StoreError> {
        let s = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| s.webhooks.get(id).cloned())
            .collect())
    }
}
