//! One conformance suite per port: async functions that take a factory of fresh [`Ports`] and assert the port's whole contract.
//!
//! Each suite panics (like `assert!`) on the first broken promise, naming
//! it. Every check gets fresh ports from the factory, so an adapter's
//! factory must hand out an empty, isolated backend each call (a new
//! database per call for SQL). All ports of one call must share that
//! backend, because change sets span stores (an alarm commit writes
//! triggers, events and audit records).
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use alarm_testkit::{conformance, InMemory, ManualClock, SequentialIds, fixtures};
//!
//! let factory = || async {
//!     InMemory::new().ports(Arc::new(ManualClock::new(fixtures::t0())), Arc::new(SequentialIds::new()))
//! };
//! conformance::all(factory).await;
//! # }
//! ```

use std::collections::HashSet;
use std::future::Future;

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
    PreferenceOp, RefreshFamily, RingingOp, RoutineOp, StoreError, TriggerPlan, UserOp, WebhookOp,
};
use alarm_domain::services::Ports;
use alarm_domain::trigger::{Delivery, Ringing, RingingChange, TriggerKind};
use secrecy::{ExposeSecret, SecretString};

use crate::fixtures::{self, at, audit, event, t0, trigger};

/// Runs every suite.
pub async fn all<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    user_store(&new_ports).await;
    alarm_store(&new_ports).await;
    exception_period_store(&new_ports).await;
    holiday_store(&new_ports).await;
    routine_store(&new_ports).await;
    webhook_store(&new_ports).await;
    event_store_and_audit_log(&new_ports).await;
    refresh_token_store(&new_ports).await;
    idempotency_store(&new_ports).await;
    trigger_queue(&new_ports).await;
    engine_support(&new_ports).await;
    outbox(&new_ports).await;
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

/// [`alarm_domain::ports::UserStore`].
pub async fn user_store<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "Ana@Example.com").await;
    assert_eq!(
        ports.users.get(ana.id()).await.expect("get"),
        ana,
        "get returns what was registered"
    );
    let lower = Email::parse("ana@example.com").expect("email");
    assert_eq!(
        ports
            .users
            .find_by_email(&lower)
            .await
            .expect("find")
            .map(|u| u.id()),
        Some(ana.id()),
        "email look-up ignores case"
    );
    let (user, hash) = ports
        .users
        .credentials(&lower)
        .await
        .expect("credentials")
        .expect("registered");
    assert_eq!(user.id(), ana.id());
    assert_eq!(
        hash.expose_secret(),
        "$argon2id$fixture",
        "the password hash is kept"
    );
    assert!(
        ports
            .users
            .find_by_email(&Email::parse("nobody@example.com").expect("email"))
            .await
            .expect("find")
            .is_none()
    );
    is(
        ports.users.get(UserId::generate()).await,
        not_found,
        "get of a missing user",
    );

    // Same email in other case: conflict, and nothing of the change set is stored.
    let before = audit_count(&ports).await;
    let twin = User::new(
        UserId::generate(),
        Email::parse("ANA@example.COM").expect("email"),
        DisplayName::parse("Twin").expect("name"),
        Role::User,
        fixtures::zone("UTC"),
        None,
    );
    let change = ChangeSet {
        op: UserOp::Register {
            user: twin.clone(),
            password_hash: SecretString::from("x"),
        },
        audit: audit(&ports, None, "user.register", twin.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.users.commit(change).await,
        conflict,
        "registering a taken email in other case",
    );
    assert_eq!(
        audit_count(&ports).await,
        before,
        "a refused registration writes no audit record"
    );
    is(
        ports.users.get(twin.id()).await,
        not_found,
        "a refused registration stores no user",
    );

    let ghost = User::new(
        UserId::generate(),
        Email::parse("ghost@example.com").expect("email"),
        DisplayName::parse("G").expect("name"),
        Role::User,
        fixtures::zone("UTC"),
        None,
    );
    let change = ChangeSet {
        op: UserOp::Update(ghost.clone()),
        audit: audit(&ports, None, "user.update", ghost.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.users.commit(change).await,
        not_found,
        "updating a missing user",
    );
}

/// [`alarm_domain::ports::AlarmStore`], including atomic change sets, optimistic versions and pagination.
pub async fn alarm_store<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let alarm = fixtures::alarm(&ports, ana.id(), "Wake", Some(at(3600))).await;

    assert_eq!(
        ports.alarms.get(ana.id(), alarm.id()).await.expect("get"),
        alarm
    );
    is(
        ports.alarms.get(bob.id(), alarm.id()).await,
        not_found,
        "another owner's alarm is not found",
    );
    assert_eq!(
        ports
            .alarms
            .get_any(alarm.id())
            .await
            .expect("get_any")
            .id(),
        alarm.id()
    );
    let pending = ports.queue.pending(alarm.id()).await.expect("pending");
    assert_eq!(pending.len(), 1, "the create committed its trigger plan");
    assert_eq!(pending[0].due_at, at(3600));

    // Duplicate id.
    let dup = ChangeSet {
        op: AlarmOp::Create(alarm.clone()),
        audit: audit(&ports, Some(ana.id()), "alarm.create", alarm.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.alarms.commit(dup).await,
        conflict,
        "creating an existing alarm id",
    );

    // Optimistic update.
    let mut draft = alarm.draft().clone();
    draft.name = alarm_domain::model::AlarmName::parse("Renamed").expect("name");
    let v2 = alarm.revise(draft.clone(), at(10)).expect("revise");
    let update = |expected, next: &alarm_domain::model::Alarm, fire| ChangeSet {
        op: AlarmOp::Update {
            alarm: next.clone(),
            expected,
        },
        audit: audit(&ports, Some(ana.id()), "alarm.update", alarm.id().as_uuid()),
        events: vec![event(&ports, alarm.id(), ana.id(), AlarmEventKind::Updated)],
        triggers: vec![TriggerPlan::Reschedule {
            alarm: alarm.id(),
            version: next.version(),
            next: Some(trigger(next, fire, TriggerKind::Fire)),
        }],
    };
    ports
        .alarms
        .commit(update(alarm.version(), &v2, at(7200)))
        .await
        .expect("update at the current version");
    let stored = ports.alarms.get(ana.id(), alarm.id()).await.expect("get");
    assert_eq!(stored.version().get(), 2);
    assert_eq!(stored.name().as_str(), "Renamed");
    let pending = ports.queue.pending(alarm.id()).await.expect("pending");
    assert_eq!(
        pending.iter().map(|t| t.due_at).collect::<Vec<_>>(),
        [at(7200)],
        "reschedule replaced the fire trigger"
    );

    // A stale update stores nothing: not the alarm, not the audit record, not the event, not the trigger.
    let audits = audit_count(&ports).await;
    let events_before = ports
        .events
        .list(ana.id(), alarm.id(), PageRequest::first())
        .await
        .expect("events")
        .items
        .len();
    let v2_again = alarm.revise(alarm.draft().clone(), at(20)).expect("revise");
    is(
        ports
            .alarms
            .commit(update(alarm.version(), &v2_again, at(9999)))
            .await,
        stale,
        "update based on an old version",
    );
    assert_eq!(
        ports
            .alarms
            .get(ana.id(), alarm.id())
            .await
            .expect("get")
            .name()
            .as_str(),
        "Renamed"
    );
    assert_eq!(
        audit_count(&ports).await,
        audits,
        "a refused change set writes no audit record"
    );
    assert_eq!(
        ports
            .events
            .list(ana.id(), alarm.id(), PageRequest::first())
            .await
            .expect("events")
            .items
            .len(),
        events_before,
        "… and no event"
    );
    assert_eq!(
        ports
            .queue
            .pending(alarm.id())
            .await
            .expect("pending")
            .iter()
            .map(|t| t.due_at)
            .collect::<Vec<_>>(),
        [at(7200)],
        "… and no trigger change"
    );

    // All or nothing: a change set whose audit id already exists is refused whole.
    let v3 = stored.revise(draft, at(30)).expect("revise");
    let mut reused = update(stored.version(), &v3, at(5000));
    reused.audit.id = ports
        .audit
        .list(None, PageRequest::first())
        .await
        .expect("audit")
        .items[0]
        .id;
    is(
        ports.alarms.commit(reused).await,
        conflict,
        "a change set with a duplicate audit id",
    );
    assert_eq!(
        ports
            .alarms
            .get(ana.id(), alarm.id())
            .await
            .expect("get")
            .version()
            .get(),
        2,
        "the alarm change was rolled back with it"
    );

    // Updating or deleting another owner's alarm is not found.
    let foreign = alarm_domain::model::Alarm::restore(
        alarm.id(),
        bob.id(),
        v3.draft().clone(),
        v3.version(),
        t0(),
        t0(),
    );
    let change = ChangeSet {
        op: AlarmOp::Update {
            alarm: foreign,
            expected: stored.version(),
        },
        audit: audit(&ports, Some(bob.id()), "alarm.update", alarm.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.alarms.commit(change).await,
        not_found,
        "updating another owner's alarm",
    );
    let del = |owner, expected| ChangeSet {
        op: AlarmOp::Delete {
            owner,
            id: alarm.id(),
            expected,
        },
        audit: audit(&ports, Some(owner), "alarm.delete", alarm.id().as_uuid()),
        events: vec![event(&ports, alarm.id(), ana.id(), AlarmEventKind::Deleted)],
        triggers: vec![TriggerPlan::CancelAll { alarm: alarm.id() }],
    };
    is(
        ports.alarms.commit(del(bob.id(), stored.version())).await,
        not_found,
        "deleting another owner's alarm",
    );
    is(
        ports.alarms.commit(del(ana.id(), alarm.version())).await,
        stale,
        "deleting based on an old version",
    );
    ports
        .alarms
        .commit(del(ana.id(), stored.version()))
        .await
        .expect("delete");
    is(
        ports.alarms.get(ana.id(), alarm.id()).await,
        not_found,
        "a deleted alarm is gone",
    );
    assert!(
        ports
            .queue
            .pending(alarm.id())
            .await
            .expect("pending")
            .is_empty(),
        "deletion cancelled its triggers"
    );
    assert!(
        !ports
            .events
            .list(ana.id(), alarm.id(), PageRequest::first())
            .await
            .expect("events")
            .items
            .is_empty(),
        "a deleted alarm's events stay readable"
    );

    // Pagination: id order, no gaps, no repeats; the enabled filter.
    let ports = new_ports().await;
    let owner = fixtures::user(&ports, "pages@example.com").await;
    let other = fixtures::user(&ports, "other@example.com").await;
    fixtures::alarm(&ports, other.id(), "Not mine", None).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            fixtures::alarm(&ports, owner.id(), &format!("A{i}"), None)
                .await
                .id(),
        );
    }
    let mut seen: Vec<AlarmId> = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = ports
            .alarms
            .list(owner.id(), None, PageRequest::new(after, 2).expect("limit"))
            .await
            .expect("list");
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|a| a.id()));
        pages += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    ids.sort();
    assert_eq!(
        seen, ids,
        "pages walk the owner's alarms in id order, each once"
    );
    assert_eq!(pages, 3);
    let first = ports.alarms.get(owner.id(), ids[0]).await.expect("get");
    let mut off = first.draft().clone();
    off.enabled = false;
    let disabled = first.revise(off, at(1)).expect("revise");
    let change = ChangeSet {
        op: AlarmOp::Update {
            alarm: disabled,
            expected: first.version(),
        },
        audit: audit(
            &ports,
            Some(owner.id()),
            "alarm.disable",
            first.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.alarms.commit(change).await.expect("disable");
    let on = ports
        .alarms
        .list(owner.id(), Some(true), PageRequest::first())
        .await
        .expect("list");
    let off = ports
        .alarms
        .list(owner.id(), Some(false), PageRequest::first())
        .await
        .expect("list");
    assert_eq!(
        (on.items.len(), off.items.len()),
        (4, 1),
        "the enabled filter"
    );
}

/// [`alarm_domain::ports::ExceptionPeriodStore`].
pub async fn exception_period_store<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let alarm = fixtures::alarm(&ports, ana.id(), "Wake", Some(at(60))).await;
    let period = |start, end| {
        ExceptionPeriod::new(
            ExceptionPeriodId::generate(),
            ana.id(),
            "Trip",
            ExceptionKind::Travel,
            start,
            end,
        )
        .expect("period")
    };
    let later = period(date(2026, 3, 1), date(2026, 3, 5));
    let sooner = period(date(2026, 2, 1), date(2026, 2, 2));
    for p in [&later, &sooner] {
        let change = ChangeSet {
            op: ExceptionOp::Create(p.clone()),
            audit: audit(
                &ports,
                Some(ana.id()),
                "exception_period.create",
                p.id().as_uuid(),
            ),
            events: Vec::new(),
            triggers: vec![TriggerPlan::Reschedule {
                alarm: alarm.id(),
                version: alarm.version(),
                next: Some(trigger(&alarm, at(120), TriggerKind::Fire)),
            }],
        };
        ports
            .exceptions
            .commit(change)
            .await
            .expect("create period");
    }
    let bobs = ExceptionPeriod::new(
        ExceptionPeriodId::generate(),
        bob.id(),
        "Bob's",
        ExceptionKind::Travel,
        date(2026, 1, 10),
        date(2026, 1, 11),
    )
    .expect("period");
    ports
        .exceptions
        .commit(ChangeSet {
            op: ExceptionOp::Create(bobs.clone()),
            audit: audit(
                &ports,
                Some(bob.id()),
                "exception_period.create",
                bobs.id().as_uuid(),
            ),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
        .expect("bob's period");
    let many = ports
        .exceptions
        .list_many(vec![ana.id()])
        .await
        .expect("list_many");
    assert_eq!(
        many.iter().map(|p| p.id()).collect::<Vec<_>>(),
        [sooner.id(), later.id()],
        "list_many: only the named owners' periods, each owner's by start date"
    );
    assert_eq!(
        ports
            .exceptions
            .list_many(vec![ana.id(), bob.id()])
            .await
            .expect("list_many")
            .len(),
        3
    );
    ports
        .exceptions
        .commit(ChangeSet {
            op: ExceptionOp::Delete {
                owner: bob.id(),
                id: bobs.id(),
            },
            audit: audit(
                &ports,
                Some(bob.id()),
                "exception_period.delete",
                bobs.id().as_uuid(),
            ),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
        .expect("bob's period removed again");
    let list = ports.exceptions.list(ana.id()).await.expect("list");
    assert_eq!(
        list.iter().map(ExceptionPeriod::id).collect::<Vec<_>>(),
        [sooner.id(), later.id()],
        "ordered by start date"
    );
    assert!(
        ports
            .exceptions
            .list(bob.id())
            .await
            .expect("list")
            .is_empty(),
        "scoped to the owner"
    );
    assert_eq!(
        ports.queue.pending(alarm.id()).await.expect("pending")[0].due_at,
        at(120),
        "the period's commit rescheduled the owner's alarm"
    );
    is(
        ports.exceptions.get(bob.id(), later.id()).await,
        not_found,
        "another owner's period",
    );
    let dup = ChangeSet {
        op: ExceptionOp::Create(later.clone()),
        audit: audit(
            &ports,
            Some(ana.id()),
            "exception_period.create",
            later.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.exceptions.commit(dup).await,
        conflict,
        "creating an existing period id",
    );
    let del = |owner| ChangeSet {
        op: ExceptionOp::Delete {
            owner,
            id: later.id(),
        },
        audit: audit(
            &ports,
            Some(owner),
            "exception_period.delete",
            later.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.exceptions.commit(del(bob.id())).await,
        not_found,
        "deleting another owner's period",
    );
    let foreign = ExceptionPeriod::new(
        later.id(),
        bob.id(),
        "Trip",
        ExceptionKind::Travel,
        date(2026, 3, 1),
        date(2026, 3, 5),
    )
    .expect("period");
    let change = ChangeSet {
        op: ExceptionOp::Update(foreign),
        audit: audit(
            &ports,
            Some(bob.id()),
            "exception_period.update",
            later.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.exceptions.commit(change).await,
        not_found,
        "updating another owner's period",
    );
    // A plan computed from another version of the alarm than the stored one is skipped.
    let stale_plan = ChangeSet {
        op: ExceptionOp::Update(later.clone()),
        audit: audit(
            &ports,
            Some(ana.id()),
            "exception_period.update",
            later.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: vec![TriggerPlan::Reschedule {
            alarm: alarm.id(),
            version: alarm.version().next(),
            next: Some(trigger(&alarm, at(999), TriggerKind::Fire)),
        }],
    };
    ports
        .exceptions
        .commit(stale_plan)
        .await
        .expect("the period change itself commits");
    assert_eq!(
        ports.queue.pending(alarm.id()).await.expect("pending")[0].due_at,
        at(120),
        "a plan stamped with a version the alarm does not have must not replace its trigger"
    );
    let moved = ExceptionPeriod::new(
        later.id(),
        ana.id(),
        "Trip",
        ExceptionKind::Vacation,
        date(2026, 1, 1),
        date(2026, 1, 2),
    )
    .expect("period");
    let change = ChangeSet {
        op: ExceptionOp::Update(moved.clone()),
        audit: audit(
            &ports,
            Some(ana.id()),
            "exception_period.update",
            later.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.exceptions.commit(change).await.expect("update");
    assert_eq!(
        ports
            .exceptions
            .get(ana.id(), later.id())
            .await
            .expect("get"),
        moved
    );
    ports
        .exceptions
        .commit(del(ana.id()))
        .await
        .expect("delete");
    is(
        ports.exceptions.get(ana.id(), later.id()).await,
        not_found,
        "deleted",
    );
}

/// [`alarm_domain::ports::HolidayStore`], holidays and preferences.
pub async fn holiday_store<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let ports = new_ports().await;
    let admin = fixtures::user(&ports, "admin@example.com").await;
    let br = Country::parse("BR").expect("BR");
    let xmas = Holiday::new(
        HolidayId::generate(),
        HolidayName::parse("Natal").expect("name"),
        HolidayDate::recurring(12, 25).expect("date"),
        br,
        None,
        false,
    );
    let create = |h: &Holiday| ChangeSet {
        op: HolidayOp::Create(h.clone()),
        audit: audit(&ports, Some(admin.id()), "holiday.create", h.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.holidays.commit(create(&xmas)).await.expect("create");
    assert_eq!(ports.holidays.get(xmas.id()).await.expect("get"), xmas);
    assert_eq!(
        ports.holidays.list(br).await.expect("list"),
        std::slice::from_ref(&xmas)
    );
    assert!(
        ports
            .holidays
            .list(Country::parse("PT").expect("PT"))
            .await
            .expect("list")
            .is_empty(),
        "listed by country"
    );
    let twin = Holiday::new(
        HolidayId::generate(),
        HolidayName::parse("Natal").expect("name"),
        HolidayDate::recurring(12, 25).expect("date"),
        br,
        None,
        false,
    );
    is(
        ports.holidays.commit(create(&twin)).await,
        conflict,
        "the same holiday twice",
    );
    is(
        ports.holidays.commit(create(&xmas)).await,
        conflict,
        "an existing holiday id",
    );

    assert_eq!(
        ports.holidays.preferences(admin.id()).await.expect("prefs"),
        HolidayPreferences::default(),
        "never set: fire, no overrides"
    );
    let prefs = HolidayPreferences {
        default: HolidayPreference::Skip,
        overrides: vec![(
            xmas.id(),
            HolidayPreference::Delay(DelayMinutes::new(30).expect("delay")),
        )],
    };
    let set = |p: HolidayPreferences| ChangeSet {
        op: PreferenceOp::Set {
            owner: admin.id(),
            preferences: p,
        },
        audit: audit(
            &ports,
            Some(admin.id()),
            "holiday_preferences.set",
            admin.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports
        .holidays
        .commit_preferences(set(prefs.clone()))
        .await
        .expect("set prefs");
    assert_eq!(
        ports.holidays.preferences(admin.id()).await.expect("prefs"),
        prefs
    );
    let other = fixtures::user(&ports, "never-set@example.com").await;
    let mut many = ports
        .holidays
        .preferences_many(vec![other.id(), admin.id()])
        .await
        .expect("preferences_many");
    many.sort_by_key(|(o, _)| *o != admin.id());
    assert_eq!(
        many,
        [
            (admin.id(), prefs.clone()),
            (other.id(), HolidayPreferences::default())
        ],
        "preferences_many: the stored ones, and the default for whoever never set any"
    );
    let unknown = HolidayPreferences {
        default: HolidayPreference::Fire,
        overrides: vec![(HolidayId::generate(), HolidayPreference::Skip)],
    };
    is(
        ports.holidays.commit_preferences(set(unknown)).await,
        not_found,
        "an override naming a missing holiday",
    );
    assert_eq!(
        ports.holidays.preferences(admin.id()).await.expect("prefs"),
        prefs,
        "a refused change leaves the preferences as they were"
    );

    let delete = |id| ChangeSet {
        op: HolidayOp::Delete(id),
        audit: audit(
            &ports,
            Some(admin.id()),
            "holiday.delete",
            xmas.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports
        .holidays
        .commit(delete(xmas.id()))
        .await
        .expect("delete");
    is(ports.holidays.get(xmas.id()).await, not_found, "deleted");
    is(
        ports.holidays.commit(delete(xmas.id())).await,
        not_found,
        "deleting a missing holiday",
    );
}

/// [`alarm_domain::ports::RoutineStore`].
pub async fn routine_store<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let routine = |name: &str| {
        Routine::new(
            RoutineId::generate(),
            ana.id(),
            RoutineName::parse(name).expect("name"),
            vec![RoutineAction::parse("Lights").expect("action")],
            true,
        )
        .expect("routine")
    };
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = routine(&format!("R{i}"));
        ids.push(r.id());
        let change = ChangeSet {
            op: RoutineOp::Create(r.clone()),
            audit: audit(&ports, Some(ana.id()), "routine.create", r.id().as_uuid()),
            events: Vec::new(),
            triggers: Vec::new(),
        };
        ports.routines.commit(change.clone()).await.expect("create");
        let mut again = change;
        again.audit = audit(&ports, Some(ana.id()), "routine.create", r.id().as_uuid());
        is(
            ports.routines.commit(again).await,
            conflict,
            "creating an existing routine id",
        );
    }
    ids.sort();
    let first = ports
        .routines
        .list(ana.id(), PageRequest::new(None, 2).expect("limit"))
        .await
        .expect("list");
    let second = ports
        .routines
        .list(ana.id(), PageRequest::new(first.next, 2).expect("limit"))
        .await
        .expect("list");
    let walked: Vec<RoutineId> = first
        .items
        .iter()
        .chain(&second.items)
        .map(Routine::id)
        .collect();
    assert_eq!(walked, ids, "pages in id order");
    assert!(second.next.is_none());
    is(
        ports.routines.get(bob.id(), ids[0]).await,
        not_found,
        "another owner's routine",
    );
    let del = ChangeSet {
        op: RoutineOp::Delete {
            owner: bob.id(),
            id: ids[0],
        },
        audit: audit(&ports, Some(bob.id()), "routine.delete", ids[0].as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.routines.commit(del).await,
        not_found,
        "deleting another owner's routine",
    );
    let foreign = Routine::new(
        ids[0],
        bob.id(),
        RoutineName::parse("Mine now").expect("name"),
        vec![RoutineAction::parse("Lights").expect("action")],
        true,
    )
    .expect("routine");
    let change = ChangeSet {
        op: RoutineOp::Update(foreign),
        audit: audit(&ports, Some(bob.id()), "routine.update", ids[0].as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.routines.commit(change).await,
        not_found,
        "updating another owner's routine",
    );
}

/// [`alarm_domain::ports::WebhookStore`].
pub async fn webhook_store<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let hook = WebhookRegistration::new(
        WebhookId::generate(),
        ana.id(),
        WebhookUrl::parse("https://hooks.example.com/alarm").expect("url"),
        WebhookEventSet::new(&[WebhookEvent::Triggered]).expect("events"),
        SecretString::from("whsec_conformance"),
        true,
        0,
    );
    let change = ChangeSet {
        op: WebhookOp::Create(hook.clone()),
        audit: audit(
            &ports,
            Some(ana.id()),
            "webhook.create",
            hook.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.webhooks.commit(change).await.expect("create");
    let stored = ports.webhooks.get(ana.id(), hook.id()).await.expect("get");
    assert_eq!(
        stored.secret().expose_secret(),
        "whsec_conformance",
        "the signing secret is kept"
    );
    assert_eq!(stored.url(), hook.url());
    is(
        ports.webhooks.get(bob.id(), hook.id()).await,
        not_found,
        "another owner's registration",
    );
    assert!(
        ports
            .webhooks
            .list(bob.id())
            .await
            .expect("list")
            .is_empty()
    );
    let disabled = WebhookRegistration::new(
        hook.id(),
        ana.id(),
        hook.url().clone(),
        hook.events(),
        hook.secret().clone(),
        false,
        7,
    );
    let change = ChangeSet {
        op: WebhookOp::Update(disabled),
        audit: audit(
            &ports,
            Some(ana.id()),
            "webhook.update",
            hook.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.webhooks.commit(change).await.expect("update");
    let stored = ports.webhooks.get(ana.id(), hook.id()).await.expect("get");
    assert_eq!((stored.active(), stored.failure_count()), (false, 7));
    let del = |owner| ChangeSet {
        op: WebhookOp::Delete {
            owner,
            id: hook.id(),
        },
        audit: audit(&ports, Some(owner), "webhook.delete", hook.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.webhooks.commit(del(bob.id())).await,
        not_found,
        "deleting another owner's registration",
    );
    let foreign = WebhookRegistration::new(
        hook.id(),
        bob.id(),
        hook.url().clone(),
        hook.events(),
        SecretString::from("whsec_x"),
        true,
        0,
    );
    let change = ChangeSet {
        op: WebhookOp::Update(foreign),
        audit: audit(
            &ports,
            Some(bob.id()),
            "webhook.update",
            hook.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.webhooks.commit(change).await,
        not_found,
        "updating another owner's registration",
    );
    ports.webhooks.commit(del(ana.id())).await.expect("delete");
    is(
        ports.webhooks.get(ana.id(), hook.id()).await,
        not_found,
        "deleted",
    );
}

/// [`alarm_domain::ports::AlarmEventStore`] and [`alarm_domain::ports::AuditLog`].
pub async fn event_store_and_audit_log<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let alarm = fixtures::alarm(&ports, ana.id(), "Wake", None).await;
    let mut expected = ports
        .events
        .list(ana.id(), alarm.id(), PageRequest::first())
        .await
        .expect("events")
        .items;
    for kind in [
        AlarmEventKind::Disabled,
        AlarmEventKind::Enabled,
        AlarmEventKind::Updated,
    ] {
        let current = ports.alarms.get(ana.id(), alarm.id()).await.expect("get");
        let next = current
            .revise(current.draft().clone(), at(1))
            .expect("revise");
        let e = event(&ports, alarm.id(), ana.id(), kind);
        expected.push(e.clone());
        let change = ChangeSet {
            op: AlarmOp::Update {
                alarm: next,
                expected: current.version(),
            },
            audit: audit(&ports, Some(ana.id()), "alarm.update", alarm.id().as_uuid()),
            events: vec![e],
            triggers: Vec::new(),
        };
        ports.alarms.commit(change).await.expect("update");
    }
    let first = ports
        .events
        .list(
            ana.id(),
            alarm.id(),
            PageRequest::new(None, 3).expect("limit"),
        )
        .await
        .expect("events");
    let rest = ports
        .events
        .list(
            ana.id(),
            alarm.id(),
            PageRequest::new(first.next, 3).expect("limit"),
        )
        .await
        .expect("events");
    let all: Vec<_> = first.items.into_iter().chain(rest.items).collect();
    assert_eq!(all, expected, "events oldest first, paginated");
    assert!(
        ports
            .events
            .list(bob.id(), alarm.id(), PageRequest::first())
            .await
            .expect("events")
            .items
            .is_empty(),
        "another owner sees no events"
    );

    let mine = ports
        .audit
        .list(Some(ana.id()), PageRequest::first())
        .await
        .expect("audit");
    assert_eq!(mine.items.len(), 5, "register + create + three updates");
    assert!(mine.items.iter().all(|r| r.actor == Some(ana.id())));
    assert!(
        mine.items.windows(2).all(|w| w[0].id < w[1].id),
        "in id order"
    );
    let bobs = ports
        .audit
        .list(Some(bob.id()), PageRequest::first())
        .await
        .expect("audit");
    assert_eq!(bobs.items.len(), 1);
}

/// [`alarm_domain::ports::RefreshTokenStore`]: rotation, reuse detection, expiry, revocation.
pub async fn refresh_token_store<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let tokens = ports.refresh_tokens.clone();
    let family = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: at(3600),
        revoked: false,
    };
    let (t1, t2, t3, t4) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]);
    tokens.create(family.clone(), t1).await.expect("create");
    is(
        tokens.create(family.clone(), [9u8; 32]).await,
        conflict,
        "the same family twice",
    );
    let other = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: at(3600),
        revoked: false,
    };
    is(
        tokens.create(other, t1).await,
        conflict,
        "a token hash that exists",
    );
    assert_eq!(
        tokens.rotate(t1, t2, at(10)).await.expect("rotate").id,
        family.id
    );
    is(
        tokens.rotate([8u8; 32], t3, at(10)).await,
        not_found,
        "an unknown token",
    );
    // Reusing the spent t1 revokes the family: even the current t2 dies.
    is(
        tokens.rotate(t1, t3, at(20)).await,
        lease_lost,
        "reuse of a spent token",
    );
    is(
        tokens.rotate(t2, t3, at(20)).await,
        lease_lost,
        "the family was revoked by the reuse",
    );

    let family = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: at(100),
        revoked: false,
    };
    tokens.create(family, t3).await.expect("create");
    is(
        tokens.rotate(t3, t4, at(100)).await,
        lease_lost,
        "an expired family",
    );
    let family = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: at(1000),
        revoked: false,
    };
    tokens
        .create(family.clone(), [5u8; 32])
        .await
        .expect("create");
    assert!(!tokens.family(family.id).await.expect("family").revoked);
    tokens.revoke([5u8; 32]).await.expect("revoke");
    assert!(
        tokens.family(family.id).await.expect("family").revoked,
        "revoke by token marks the family"
    );
    is(
        tokens.rotate([5u8; 32], [6u8; 32], at(1)).await,
        lease_lost,
        "a revoked family (logout)",
    );
    is(
        tokens.revoke([7u8; 32]).await,
        not_found,
        "revoking an unknown token",
    );
    let session = RefreshFamily {
        id: ports.ids.next_uuid(),
        user: ana.id(),
        expires_at: at(1000),
        revoked: false,
    };
    tokens
        .create(session.clone(), [10u8; 32])
        .await
        .expect("create");
    assert_eq!(tokens.family(session.id).await.expect("family"), session);
    tokens
        .revoke_family(session.id)
        .await
        .expect("revoke family");
    assert!(tokens.family(session.id).await.expect("family").revoked);
    is(
        tokens.rotate([10u8; 32], [11u8; 32], at(1)).await,
        lease_lost,
        "a family revoked by id",
    );
    let unknown = ports.ids.next_uuid();
    is(tokens.family(unknown).await, not_found, "an unknown family");
    is(
        tokens.revoke_family(unknown).await,
        not_found,
        "revoking an unknown family",
    );
}

/// [`alarm_domain::ports::IdempotencyStore`]: reservation, replay, mismatch, expiry, abandonment, concurrency, purge.
///
/// # Panics
/// When the store breaks its contract.
pub async fn idempotency_store<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    use alarm_domain::ports::{
        IDEMPOTENCY_IN_FLIGHT_TIMEOUT, IdempotencyKey, Reservation, StoredResponse,
    };
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let store = ports.idempotency.clone();
    let day = SignedDuration::from_hours(24);
    let key = |owner: UserId, scope: &str, k: &str| IdempotencyKey {
        owner,
        scope: scope.to_owned(),
        key: k.to_owned(),
    };
    let k1 = key(ana.id(), "POST /alarms", "k-1");
    let answer = StoredResponse {
        status: 201,
        headers: vec![("etag".to_owned(), "\"1\"".to_owned())],
        body: "{\"id\":1}".to_owned(),
    };
    let holder = |n: u128| uuid::Uuid::from_u128(n);
    let reserve = |k: IdempotencyKey, fp: u8, who: u128, secs: i64| {
        let store = store.clone();
        async move {
            store
                .reserve(&k, [fp; 32], holder(who), at(secs), day)
                .await
                .expect("reserve")
        }
    };
    assert_eq!(reserve(k1.clone(), 1, 1, 0).await, Reservation::Fresh);
    assert_eq!(
        reserve(k1.clone(), 1, 2, 1).await,
        Reservation::InFlight,
        "a second request while the first runs"
    );
    assert_eq!(reserve(k1.clone(), 2, 2, 1).await, Reservation::Mismatch);
    is(
        store.finish(&k1, holder(2), answer.clone()).await,
        not_found,
        "finishing another holder's reservation",
    );
    store
        .abandon(&k1, holder(2))
        .await
        .expect("abandon by another holder");
    store
        .finish(&k1, holder(1), answer.clone())
        .await
        .expect("finish");
    assert_eq!(
        reserve(k1.clone(), 1, 3, 2).await,
        Reservation::Replay(answer.clone()),
        "another holder's abandon left the reservation alone"
    );
    assert_eq!(reserve(k1.clone(), 2, 3, 2).await, Reservation::Mismatch);
    // Keys are per owner and per scope.
    assert_eq!(
        reserve(key(bob.id(), "POST /alarms", "k-1"), 2, 4, 2).await,
        Reservation::Fresh
    );
    assert_eq!(
        reserve(key(ana.id(), "POST /other", "k-1"), 2, 5, 2).await,
        Reservation::Fresh
    );
    // After the ttl the key is new again.
    assert_eq!(
        reserve(k1.clone(), 2, 6, 24 * 3600).await,
        Reservation::Fresh,
        "an expired record is replaced"
    );
    // A reservation without an answer blocks only for the in-flight
    // timeout; the late first holder can then neither answer nor abandon.
    let k2 = key(ana.id(), "POST /alarms", "k-2");
    assert_eq!(reserve(k2.clone(), 3, 7, 0).await, Reservation::Fresh);
    let timeout = IDEMPOTENCY_IN_FLIGHT_TIMEOUT.as_secs();
    assert_eq!(
        reserve(k2.clone(), 3, 8, timeout - 1).await,
        Reservation::InFlight
    );
    assert_eq!(reserve(k2.clone(), 3, 8, timeout).await, Reservation::Fresh);
    is(
        store.finish(&k2, holder(7), answer.clone()).await,
        not_found,
        "the first holder after a take-over",
    );
    store.abandon(&k2, holder(7)).await.expect("abandon");
    assert_eq!(
        reserve(k2.clone(), 3, 9, timeout).await,
        Reservation::InFlight,
        "the take-over's reservation survived the late abandon"
    );
    // Abandoning frees the key at once.
    store.abandon(&k2, holder(8)).await.expect("abandon");
    store.abandon(&k2, holder(8)).await.expect("abandon twice");
    assert_eq!(
        reserve(k2.clone(), 4, 10, timeout).await,
        Reservation::Fresh
    );
    is(
        store
            .finish(
                &key(ana.id(), "POST /alarms", "never"),
                holder(1),
                answer.clone(),
            )
            .await,
        not_found,
        "finishing an unreserved key",
    );
    // Concurrent reservations of one key: exactly one is fresh.
    let k3 = key(ana.id(), "POST /alarms", "k-3");
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let k = k3.clone();
            let who = uuid::Uuid::now_v7();
            tokio::spawn(async move { store.reserve(&k, [5; 32], who, at(10), day).await })
        })
        .collect();
    let mut fresh = 0;
    for t in tries {
        match t.await.expect("join") {
            Ok(Reservation::Fresh) => fresh += 1,
            Ok(Reservation::InFlight) | Err(StoreError::Retryable(_)) => {}
            other => panic!("concurrent reserve: {other:?}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one concurrent reservation wins");
    // Purge removes what was created before the cut.
    let purged = store.purge(at(5)).await.expect("purge");
    assert_eq!(purged, 2, "bob's k-1 and ana's other scope were older");
    assert_eq!(
        reserve(key(bob.id(), "POST /alarms", "k-1"), 9, 11, 20).await,
        Reservation::Fresh,
        "purged records are gone"
    );
}

/// What the trigger engine needs beyond claim and complete: batch loads,
/// lease renewal (heartbeat), the store's clock, the engine right, the
/// ringing list, and expiry triggers cancelled by a snooze.
pub async fn engine_support<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let lease = SignedDuration::from_secs(30);
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let one = fixtures::alarm(&ports, ana.id(), "One", Some(at(10))).await;
    let two = fixtures::alarm(&ports, bob.id(), "Two", Some(at(10))).await;

    let mut loaded: Vec<_> = ports
        .alarms
        .get_many(vec![two.id(), AlarmId::generate(), one.id()])
        .await
        .expect("get_many")
        .iter()
        .map(|a| a.id())
        .collect();
    loaded.sort();
    let mut want = vec![one.id(), two.id()];
    want.sort();
    assert_eq!(
        loaded, want,
        "get_many loads every owner's alarms and skips unknown ids"
    );

    let mut users: Vec<UserId> = ports
        .users
        .get_many(vec![bob.id(), UserId::generate(), ana.id()])
        .await
        .expect("users get_many")
        .iter()
        .map(|u| u.id())
        .collect();
    users.sort();
    let mut want_users = vec![ana.id(), bob.id()];
    want_users.sort();
    assert_eq!(users, want_users, "users get_many skips unknown ids");

    let store_now = ports.queue.store_time().await.expect("store_time");
    let drift = store_now
        .duration_since(alarm_domain::jiff::Timestamp::now())
        .abs();
    assert!(
        drift < SignedDuration::from_secs(300),
        "the store's clock is a real clock (off by {drift:?})"
    );

    // Heartbeat: current leases are extended, dead ones reported.
    let claimed = ports.queue.claim(at(10), 10, lease).await.expect("claim");
    assert_eq!(claimed.len(), 2);
    let lost = ports
        .queue
        .renew(vec![claimed[0].token, claimed[1].token], at(100))
        .await
        .expect("renew");
    assert!(lost.is_empty(), "both leases are current: {lost:?}");
    assert_eq!(
        ports.queue.rescue(at(99)).await.expect("rescue"),
        0,
        "a renewed lease is not rescued before its new end"
    );
    assert_eq!(ports.queue.rescue(at(100)).await.expect("rescue"), 2);
    let again = ports.queue.claim(at(100), 10, lease).await.expect("claim");
    assert_eq!(again.len(), 2, "rescued triggers are claimable again");
    let lost = ports
        .queue
        .renew(vec![claimed[0].token, again[0].token], at(200))
        .await
        .expect("renew");
    assert_eq!(
        lost,
        [claimed[0].token],
        "a rescued claim's token is dead to renew"
    );
    let empty = FireOutcome {
        events: Vec::new(),
        deliveries: Vec::new(),
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
    };
    is(
        ports.queue.complete(claimed[1].token, empty).await,
        lease_lost,
        "a paused worker whose claim was rescued cannot complete",
    );

    // Ring both; the ringing list is per owner.
    let mut items = Vec::new();
    for c in &again {
        let ringing = Ringing {
            alarm: c.trigger.alarm,
            owner: c.trigger.owner,
            occurrence: c.trigger.occurrence,
            since: at(100),
            snoozes: 0,
            level: 3,
            snoozed: false,
        };
        let expiry = alarm_domain::trigger::Trigger {
            kind: TriggerKind::Expire,
            due_at: at(1900),
            ..c.trigger.clone()
        };
        items.push((
            c.token,
            FireOutcome {
                events: Vec::new(),
                deliveries: Vec::new(),
                follow_up: Some(expiry),
                next: None,
                ringing: RingingChange::Upsert(ringing),
            },
        ));
    }
    let lost = ports
        .queue
        .complete_many(items)
        .await
        .expect("complete_many");
    assert!(lost.is_empty());
    let of_ana = ports.queue.ringing_of(ana.id()).await.expect("ringing_of");
    assert_eq!(
        of_ana.iter().map(|r| r.alarm).collect::<Vec<_>>(),
        [one.id()],
        "the ringing list holds only the owner's occurrences"
    );
    let pending = ports.queue.pending(one.id()).await.expect("pending");
    assert_eq!(
        pending.iter().map(|t| t.kind).collect::<Vec<_>>(),
        [TriggerKind::Expire],
        "an expiry trigger is stored and read back"
    );
    let snooze_trigger = alarm_domain::trigger::Trigger {
        kind: TriggerKind::Snooze(1),
        due_at: at(400),
        ..pending[0].clone()
    };
    ports
        .queue
        .commit_ringing(ChangeSet {
            op: RingingOp::Snooze {
                ringing: Ringing {
                    snoozes: 1,
                    snoozed: true,
                    ..of_ana[0].clone()
                },
                trigger: snooze_trigger,
            },
            audit: audit(&ports, Some(ana.id()), "alarm.snooze", one.id().as_uuid()),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
        .expect("snooze");
    assert_eq!(
        ports
            .queue
            .pending(one.id())
            .await
            .expect("pending")
            .iter()
            .map(|t| t.kind)
            .collect::<Vec<_>>(),
        [TriggerKind::Snooze(1)],
        "a snooze cancels the occurrence's expiry"
    );

    // The engine right: renewable by its holder, free after unlease or expiry.
    let (a, b) = (ports.ids.next_uuid(), ports.ids.next_uuid());
    assert!(
        ports
            .queue
            .engine_lease(a, at(0), at(30))
            .await
            .expect("lease")
    );
    assert!(
        ports
            .queue
            .engine_lease(a, at(10), at(40))
            .await
            .expect("lease"),
        "the holder renews its right"
    );
    ports.queue.engine_unlease(a).await.expect("unlease");
    assert!(
        ports
            .queue
            .engine_lease(b, at(11), at(41))
            .await
            .expect("lease"),
        "a released right can be taken"
    );
    assert!(
        ports
            .queue
            .engine_lease(a, at(41), at(71))
            .await
            .expect("lease"),
        "an expired right can be taken"
    );
}

/// [`alarm_domain::ports::TriggerQueue`]: claims, leases, fencing, rescue, uniqueness, ringing, concurrency.
///
/// Run it on a multi-thread runtime (`#[tokio::test(flavor = "multi_thread")]`):
/// its concurrent claimers are spawned tasks, and only real parallelism
/// makes "never the same trigger twice" a meaningful check.
pub async fn trigger_queue<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let lease = SignedDuration::from_secs(30);
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let early = fixtures::alarm(&ports, ana.id(), "Early", Some(at(10))).await;
    let late = fixtures::alarm(&ports, ana.id(), "Late", Some(at(20))).await;
    let future = fixtures::alarm(&ports, ana.id(), "Future", Some(at(1000))).await;

    assert_eq!(
        ports.queue.next_due().await.expect("next_due"),
        Some(at(10)),
        "next_due is the earliest trigger"
    );
    assert!(
        ports
            .queue
            .claim(at(9), 10, lease)
            .await
            .expect("claim")
            .is_empty(),
        "nothing is due before its time"
    );
    let claimed = ports.queue.claim(at(20), 1, lease).await.expect("claim");
    assert_eq!(claimed.len(), 1, "the limit is respected");
    assert_eq!(claimed[0].trigger.alarm, early.id(), "earliest first");
    assert_eq!(claimed[0].lease_until, at(50));
    assert_eq!(
        ports.queue.next_due().await.expect("next_due"),
        Some(at(20)),
        "a leased trigger is not next"
    );
    let second = ports.queue.claim(at(20), 10, lease).await.expect("claim");
    assert_eq!(
        second.iter().map(|c| c.trigger.alarm).collect::<Vec<_>>(),
        [late.id()],
        "a claimed trigger is not handed out again"
    );

    // Complete commits the whole outcome and removes the trigger.
    let first = &claimed[0];
    let occurrence = first.trigger.occurrence;
    let follow_up = alarm_domain::trigger::Trigger {
        kind: TriggerKind::Escalate(1),
        due_at: at(310),
        ..first.trigger.clone()
    };
    let delivery = Delivery {
        id: ports.ids.next_uuid(),
        owner: ana.id(),
        alarm: early.id(),
        occurrence,
        kind: TriggerKind::Fire,
        channel: alarm_domain::model::Channel::InApp,
        created_at: at(20),
    };
    let ringing = Ringing {
        alarm: early.id(),
        owner: ana.id(),
        occurrence,
        since: at(20),
        snoozes: 0,
        level: 0,
        snoozed: false,
    };
    let next = trigger(&early, at(86_410), TriggerKind::Fire);
    let outcome = FireOutcome {
        events: vec![event(
            &ports,
            early.id(),
            ana.id(),
            AlarmEventKind::Triggered,
        )],
        deliveries: vec![delivery.clone()],
        follow_up: Some(follow_up.clone()),
        next: Some(TriggerPlan::Reschedule {
            alarm: early.id(),
            version: early.version(),
            next: Some(next.clone()),
        }),
        ringing: RingingChange::Upsert(ringing.clone()),
    };
    ports
        .queue
        .complete(first.token, outcome.clone())
        .await
        .expect("complete");
    let pending = ports.queue.pending(early.id()).await.expect("pending");
    assert_eq!(
        pending,
        [follow_up.clone(), next.clone()],
        "the fired trigger is gone; follow-up and next occurrence are in"
    );
    assert_eq!(
        ports.queue.deliveries(ana.id()).await.expect("deliveries"),
        [delivery]
    );
    assert_eq!(
        ports
            .queue
            .ringing(ana.id(), early.id())
            .await
            .expect("ringing"),
        std::slice::from_ref(&ringing)
    );
    let events = ports
        .events
        .list(ana.id(), early.id(), PageRequest::first())
        .await
        .expect("events")
        .items;
    assert_eq!(
        events.last().map(|e| e.kind),
        Some(AlarmEventKind::Triggered)
    );
    let mut again = outcome.clone();
    again.events = vec![event(
        &ports,
        early.id(),
        ana.id(),
        AlarmEventKind::Triggered,
    )];
    is(
        ports.queue.complete(first.token, again).await,
        lease_lost,
        "completing twice",
    );
    assert_eq!(
        ports
            .events
            .list(ana.id(), early.id(), PageRequest::first())
            .await
            .expect("events")
            .items
            .len(),
        events.len(),
        "a refused completion writes no event"
    );

    // Lease expiry, rescue and fencing.
    let stale = &second[0];
    assert_eq!(
        ports.queue.rescue(at(49)).await.expect("rescue"),
        0,
        "leases run until they expire"
    );
    assert_eq!(
        ports.queue.rescue(at(50)).await.expect("rescue"),
        1,
        "an expired lease is rescued"
    );
    let retaken = ports.queue.claim(at(50), 10, lease).await.expect("claim");
    assert_eq!(retaken.len(), 1);
    assert_ne!(
        retaken[0].token, stale.token,
        "a new claim gets a new token"
    );
    let stale_outcome = FireOutcome {
        events: vec![event(
            &ports,
            late.id(),
            ana.id(),
            AlarmEventKind::Triggered,
        )],
        deliveries: Vec::new(),
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
    };
    is(
        ports
            .queue
            .complete(stale.token, stale_outcome.clone())
            .await,
        lease_lost,
        "a rescued claim's token cannot commit (fencing)",
    );
    is(
        ports.queue.release(stale.token).await,
        lease_lost,
        "… nor release",
    );
    ports
        .queue
        .release(retaken[0].token)
        .await
        .expect("release");
    assert_eq!(
        ports.queue.next_due().await.expect("next_due"),
        Some(at(20)),
        "a released trigger is claimable again"
    );
    let retaken = ports.queue.claim(at(50), 10, lease).await.expect("claim");
    ports
        .queue
        .complete(retaken[0].token, stale_outcome)
        .await
        .expect("complete with the current token");

    // Uniqueness on (alarm, occurrence, kind): the same key twice is one trigger.
    let current = ports.alarms.get(ana.id(), future.id()).await.expect("get");
    let next_version = current
        .revise(current.draft().clone(), at(1))
        .expect("revise");
    let dup_plan = TriggerPlan::Reschedule {
        alarm: future.id(),
        version: next_version.version(),
        next: Some(trigger(&future, at(1000), TriggerKind::Fire)),
    };
    let change = ChangeSet {
        op: AlarmOp::Update {
            alarm: next_version,
            expected: current.version(),
        },
        audit: audit(
            &ports,
            Some(ana.id()),
            "alarm.update",
            future.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: vec![dup_plan.clone(), dup_plan],
    };
    ports.alarms.commit(change).await.expect("update");
    assert_eq!(
        ports
            .queue
            .pending(future.id())
            .await
            .expect("pending")
            .len(),
        1,
        "one trigger per (alarm, occurrence, kind)"
    );

    // A leased fire trigger survives a reschedule (it is being fired) and is not duplicated.
    let firing = ports.queue.claim(at(1000), 10, lease).await.expect("claim");
    let fire = firing
        .iter()
        .find(|c| c.trigger.alarm == future.id())
        .expect("the future alarm's trigger is due");
    let current = ports.alarms.get(ana.id(), future.id()).await.expect("get");
    let next_version = current
        .revise(current.draft().clone(), at(1))
        .expect("revise");
    let change = ChangeSet {
        op: AlarmOp::Update {
            alarm: next_version.clone(),
            expected: current.version(),
        },
        audit: audit(
            &ports,
            Some(ana.id()),
            "alarm.update",
            future.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: vec![TriggerPlan::Reschedule {
            alarm: future.id(),
            version: next_version.version(),
            next: Some(trigger(&future, at(1000), TriggerKind::Fire)),
        }],
    };
    ports.alarms.commit(change).await.expect("update");
    assert_eq!(
        ports
            .queue
            .pending(future.id())
            .await
            .expect("pending")
            .len(),
        1,
        "the leased trigger was neither removed nor duplicated"
    );
    ports
        .queue
        .complete(
            fire.token,
            FireOutcome {
                events: Vec::new(),
                deliveries: Vec::new(),
                follow_up: None,
                next: None,
                ringing: RingingChange::None,
            },
        )
        .await
        .expect("complete");

    // Batch completion: current tokens commit in one go; a dead token is
    // reported and nothing of its outcome is stored.
    let mut batch = Vec::new();
    for name in ["B0", "B1", "B2"] {
        batch.push(fixtures::alarm(&ports, ana.id(), name, Some(at(3000))).await);
    }
    let claimed: Vec<_> = ports
        .queue
        .claim(at(3000), 10, lease)
        .await
        .expect("claim")
        .into_iter()
        .filter(|c| batch.iter().any(|a| a.id() == c.trigger.alarm))
        .collect();
    assert_eq!(claimed.len(), 3);
    let empty = || FireOutcome {
        events: Vec::new(),
        deliveries: Vec::new(),
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
    };
    ports
        .queue
        .complete(claimed[0].token, empty())
        .await
        .expect("complete the first alone");
    let items = claimed
        .iter()
        .map(|c| {
            (
                c.token,
                FireOutcome {
                    events: vec![event(
                        &ports,
                        c.trigger.alarm,
                        ana.id(),
                        AlarmEventKind::Triggered,
                    )],
                    ..empty()
                },
            )
        })
        .collect();
    let lost = ports
        .queue
        .complete_many(items)
        .await
        .expect("complete_many");
    assert_eq!(
        lost,
        [claimed[0].token],
        "the spent token is reported, the others committed"
    );
    for (i, c) in claimed.iter().enumerate() {
        let kinds: Vec<AlarmEventKind> = ports
            .events
            .list(ana.id(), c.trigger.alarm, PageRequest::first())
            .await
            .expect("events")
            .items
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds.contains(&AlarmEventKind::Triggered),
            i != 0,
            "outcome stored only for current tokens ({i})"
        );
        assert!(
            ports
                .queue
                .pending(c.trigger.alarm)
                .await
                .expect("pending")
                .is_empty()
        );
    }

    // Deleting an alarm kills even a leased trigger: the runner rings nothing.
    let doomed = fixtures::alarm(&ports, ana.id(), "Doomed", Some(at(2000))).await;
    let firing = ports.queue.claim(at(2000), 10, lease).await.expect("claim");
    let doomed_claim = firing
        .iter()
        .find(|c| c.trigger.alarm == doomed.id())
        .expect("due");
    let change = ChangeSet {
        op: AlarmOp::Delete {
            owner: ana.id(),
            id: doomed.id(),
            expected: doomed.version(),
        },
        audit: audit(
            &ports,
            Some(ana.id()),
            "alarm.delete",
            doomed.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: vec![TriggerPlan::CancelAll { alarm: doomed.id() }],
    };
    ports.alarms.commit(change).await.expect("delete");
    is(
        ports
            .queue
            .complete(
                doomed_claim.token,
                FireOutcome {
                    events: Vec::new(),
                    deliveries: Vec::new(),
                    follow_up: None,
                    next: None,
                    ringing: RingingChange::None,
                },
            )
            .await,
        lease_lost,
        "a trigger leased before its alarm was deleted cannot complete",
    );

    ringing_ops(&new_ports).await;
    concurrent_claimers(&new_ports).await;
}

async fn ringing_ops<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    let lease = SignedDuration::from_secs(30);
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let alarm = fixtures::alarm(&ports, ana.id(), "Wake", Some(at(10))).await;
    let claimed = ports.queue.claim(at(10), 1, lease).await.expect("claim");
    let occurrence = claimed[0].trigger.occurrence;
    let ringing = Ringing {
        alarm: alarm.id(),
        owner: ana.id(),
        occurrence,
        since: at(10),
        snoozes: 0,
        level: 0,
        snoozed: false,
    };
    let escalation = alarm_domain::trigger::Trigger {
        kind: TriggerKind::Escalate(1),
        due_at: at(310),
        ..claimed[0].trigger.clone()
    };
    let outcome = FireOutcome {
        events: Vec::new(),
        deliveries: Vec::new(),
        follow_up: Some(escalation),
        next: None,
        ringing: RingingChange::Upsert(ringing.clone()),
    };
    ports
        .queue
        .complete(claimed[0].token, outcome)
        .await
        .expect("complete");

    let snooze = |r: Ringing, n: u8| ChangeSet {
        op: RingingOp::Snooze {
            ringing: Ringing {
                snoozes: n,
                snoozed: true,
                ..r
            },
            trigger: alarm_domain::trigger::Trigger {
                kind: TriggerKind::Snooze(n),
                due_at: at(310),
                ..claimed[0].trigger.clone()
            },
        },
        audit: audit(&ports, Some(ana.id()), "alarm.snooze", alarm.id().as_uuid()),
        events: vec![event(&ports, alarm.id(), ana.id(), AlarmEventKind::Snoozed)],
        triggers: Vec::new(),
    };
    is(
        ports.queue.commit_ringing(snooze(ringing.clone(), 2)).await,
        conflict,
        "a snooze count that skips one",
    );
    let foreign = Ringing {
        owner: bob.id(),
        ..ringing.clone()
    };
    is(
        ports.queue.commit_ringing(snooze(foreign, 1)).await,
        not_found,
        "snoozing another owner's ringing",
    );
    let audits = audit_count(&ports).await;
    let mut wrong = snooze(ringing.clone(), 1);
    if let RingingOp::Snooze { trigger, .. } = &mut wrong.op {
        // A well-counted snooze whose trigger points at another occurrence.
        trigger.occurrence.at = at(77);
    }
    is(
        ports.queue.commit_ringing(wrong).await,
        conflict,
        "a snooze trigger for another occurrence",
    );
    // Two snoozes at once (two devices): exactly one wins.
    let (first, second) = tokio::join!(
        ports.queue.commit_ringing(snooze(ringing.clone(), 1)),
        ports.queue.commit_ringing(snooze(ringing.clone(), 1)),
    );
    match (first, second) {
        (Ok(()), Err(StoreError::Conflict(_))) | (Err(StoreError::Conflict(_)), Ok(())) => {}
        other => panic!("two concurrent snoozes: exactly one must win, got {other:?}"),
    }
    let kinds: Vec<TriggerKind> = ports
        .queue
        .pending(alarm.id())
        .await
        .expect("pending")
        .iter()
        .map(|t| t.kind)
        .collect();
    assert_eq!(
        kinds,
        [TriggerKind::Snooze(1)],
        "a snooze cancels the pending escalation and schedules the snooze"
    );
    assert_eq!(
        ports
            .queue
            .ringing(ana.id(), alarm.id())
            .await
            .expect("ringing")[0]
            .snoozes,
        1
    );
    is(
        ports.queue.commit_ringing(snooze(ringing.clone(), 1)).await,
        conflict,
        "the same snooze twice (a concurrent snooze won)",
    );
    assert_eq!(
        audit_count(&ports).await,
        audits + 1,
        "only the accepted snooze wrote an audit record"
    );
    // A follow-up being fired when the user dismisses loses its lease.
    let leased = ports.queue.claim(at(400), 10, lease).await.expect("claim");
    let snooze_claim = leased
        .iter()
        .find(|c| c.trigger.kind == TriggerKind::Snooze(1))
        .expect("the snooze is due");

    let dismiss = |owner| ChangeSet {
        op: RingingOp::Dismiss {
            owner,
            alarm: alarm.id(),
        },
        audit: audit(&ports, Some(owner), "alarm.dismiss", alarm.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    is(
        ports.queue.commit_ringing(dismiss(bob.id())).await,
        not_found,
        "dismissing another owner's alarm",
    );
    ports
        .queue
        .commit_ringing(dismiss(ana.id()))
        .await
        .expect("dismiss");
    assert!(
        ports
            .queue
            .ringing(ana.id(), alarm.id())
            .await
            .expect("ringing")
            .is_empty(),
        "nothing rings after a dismissal"
    );
    is(
        ports
            .queue
            .complete(
                snooze_claim.token,
                FireOutcome {
                    events: Vec::new(),
                    deliveries: Vec::new(),
                    follow_up: None,
                    next: None,
                    ringing: RingingChange::None,
                },
            )
            .await,
        lease_lost,
        "a follow-up leased before the dismissal cannot ring after it",
    );
    assert!(
        ports
            .queue
            .pending(alarm.id())
            .await
            .expect("pending")
            .is_empty(),
        "the dismissal cancelled the snooze"
    );
    is(
        ports.queue.commit_ringing(dismiss(ana.id())).await,
        not_found,
        "dismissing when nothing rings",
    );
}

async fn concurrent_claimers<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    const TRIGGERS: usize = 120;
    const CLAIMERS: usize = 8;
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    for i in 0..TRIGGERS {
        fixtures::alarm(&ports, ana.id(), &format!("A{i}"), Some(at(i as i64 % 7))).await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLAIMERS {
        let queue = ports.queue.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = queue
                    .claim(at(60), 5, SignedDuration::from_secs(30))
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                for c in batch {
                    queue
                        .complete(
                            c.token,
                            FireOutcome {
                                events: Vec::new(),
                                deliveries: Vec::new(),
                                follow_up: None,
                                next: None,
                                ringing: RingingChange::None,
                            },
                        )
                        .await
                        .expect("complete own claim");
                    mine.push(c.trigger.key());
                }
                tokio::task::yield_now().await;
            }
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.expect("claimer task"));
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "no trigger was claimed twice");
    assert_eq!(all.len(), TRIGGERS, "every trigger was claimed once");
}

/// [`alarm_domain::ports::BlobStore`]. `new_store(limit)` must return an
/// empty store refusing blobs over `limit` bytes.
pub async fn blob_store<F, Fut>(new_store: F)
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = std::sync::Arc<dyn alarm_domain::ports::BlobStore>>,
{
    use alarm_domain::ids::BlobId;
    use alarm_domain::ports::{BlobError, BlobMeta};
    let store = new_store(1024).await;
    let (ana, bob) = (UserId::generate(), UserId::generate());
    let meta = |id, owner, size| BlobMeta {
        id,
        owner,
        content_type: "audio/mpeg".to_owned(),
        size,
        created_at: t0(),
    };
    let id = BlobId::generate();
    store
        .put(meta(id, ana, 3), vec![1, 2, 3])
        .await
        .expect("put");
    let (got, bytes) = store.get(ana, id).await.expect("get");
    assert_eq!(
        (got.content_type.as_str(), got.size, bytes),
        ("audio/mpeg", 3, vec![1, 2, 3])
    );
    assert!(
        matches!(store.get(bob, id).await, Err(BlobError::NotFound)),
        "another owner's blob is not found"
    );
    assert!(
        matches!(store.delete(bob, id).await, Err(BlobError::NotFound)),
        "… nor deletable"
    );
    let big = BlobId::generate();
    assert!(matches!(
        store.put(meta(big, ana, 2048), vec![0; 2048]).await,
        Err(BlobError::TooLarge {
            size: 2048,
            limit: 1024
        })
    ));
    assert!(
        matches!(store.get(ana, big).await, Err(BlobError::NotFound)),
        "a refused blob is not stored"
    );
    store.delete(ana, id).await.expect("delete");
    assert!(matches!(store.get(ana, id).await, Err(BlobError::NotFound)));
}

/// [`alarm_domain::ports::SecretProvider`]. `new_provider(secrets)` must
/// return a provider that knows exactly `secrets` (name, value).
pub async fn secret_provider<F, Fut>(new_provider: F)
where
    F: Fn(Vec<(String, String)>) -> Fut,
    Fut: Future<Output = std::sync::Arc<dyn alarm_domain::ports::SecretProvider>>,
{
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

async fn hook(
    ports: &Ports,
    owner: UserId,
    events: &[WebhookEvent],
    active: bool,
) -> WebhookRegistration {
    let hook = WebhookRegistration::new(
        WebhookId::generate(),
        owner,
        WebhookUrl::parse("https://hooks.example.com/alarm").expect("url"),
        WebhookEventSet::new(events).expect("events"),
        SecretString::from("whsec_conformance"),
        active,
        0,
    );
    let change = ChangeSet {
        op: WebhookOp::Create(hook.clone()),
        audit: audit(ports, Some(owner), "webhook.create", hook.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.webhooks.commit(change).await.expect("create hook");
    hook
}

/// [`alarm_domain::ports::Outbox`]: fan-out at fire time, lease claims,
/// fenced finishes, failure counting and disabling, the email fallback,
/// redelivery and listing.
pub async fn outbox<F, Fut>(new_ports: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ports>,
{
    use alarm_domain::model::Channel;
    use alarm_domain::ports::{OutboxItem, SendResult, SendStatus, SendTopic};

    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let one = fixtures::alarm(&ports, ana.id(), "One", Some(at(10))).await;
    let wanted = hook(&ports, ana.id(), &[WebhookEvent::Triggered], true).await;
    hook(&ports, ana.id(), &[WebhookEvent::Escalated], true).await;
    hook(&ports, ana.id(), &[WebhookEvent::Triggered], false).await;
    let bobs = hook(&ports, bob.id(), &[WebhookEvent::Triggered], true).await;

    let claimed = ports
        .queue
        .claim(at(10), 10, SignedDuration::from_secs(30))
        .await
        .expect("claim trigger");
    assert_eq!(claimed.len(), 1);
    let t = &claimed[0];
    let delivery = |n: u128, channel| Delivery {
        id: uuid::Uuid::from_u128(n),
        owner: ana.id(),
        alarm: one.id(),
        occurrence: t.trigger.occurrence,
        kind: TriggerKind::Fire,
        channel,
        created_at: at(10),
    };
    let outcome = FireOutcome {
        events: Vec::new(),
        deliveries: vec![delivery(1, Channel::Webhook), delivery(2, Channel::InApp)],
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
    };
    ports
        .queue
        .complete_many(vec![(t.token, outcome)])
        .await
        .expect("complete");

    let out = &ports.outbox;
    assert!(
        out.claim(at(9), at(40), 10)
            .await
            .expect("claim")
            .is_empty(),
        "nothing is due before the fire's time"
    );
    let first = out.claim(at(10), at(40), 10).await.expect("claim");
    assert_eq!(
        first.len(),
        1,
        "one row: the active registration subscribed to alarm.triggered (not the escalation-only one, the inactive one, bob's, or in-app)"
    );
    let row = &first[0].item;
    assert_eq!(
        (row.message, row.target, row.channel, row.owner),
        (
            uuid::Uuid::from_u128(1),
            wanted.id().as_uuid(),
            Channel::Webhook,
            ana.id()
        )
    );
    assert_eq!(row.topic, SendTopic::Alarm(WebhookEvent::Triggered));
    assert_eq!(row.alarm, Some((one.id(), t.trigger.occurrence)));
    assert_eq!((row.status, row.attempts), (SendStatus::Pending, 0));
    assert!(
        out.claim(at(11), at(40), 10)
            .await
            .expect("claim")
            .is_empty(),
        "a leased row is not handed out twice"
    );

    let report = out
        .finish(
            at(11),
            vec![(
                first[0].token,
                SendResult::Retry {
                    due: at(20),
                    counted: true,
                    code: Some(503),
                    error: "HTTP 503".to_owned(),
                    latency_ms: 7,
                },
            )],
            3,
        )
        .await
        .expect("finish retry");
    assert!(report.lost.is_empty() && report.disabled.is_empty() && report.fallbacks == 0);
    let listed = out
        .list(ana.id(), Channel::Webhook, wanted.id().as_uuid(), None, 10)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].status,
            listed[0].attempts,
            listed[0].last_code,
            listed[0].due
        ),
        (SendStatus::Pending, 1, Some(503), at(20))
    );
    assert!(
        out.claim(at(19), at(40), 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let slow = out.claim(at(20), at(25), 10).await.expect("claim");
    assert_eq!(slow.len(), 1, "due again at the retry time");
    let taken = out.claim(at(25), at(60), 10).await.expect("claim");
    assert_eq!(
        taken.len(),
        1,
        "a row whose lease ran out is claimable again"
    );
    let late = out
        .finish(
            at(26),
            vec![(
                slow[0].token,
                SendResult::Delivered {
                    code: Some(200),
                    latency_ms: 1,
                },
            )],
            3,
        )
        .await
        .expect("late finish");
    assert_eq!(
        late.lost,
        vec![slow[0].token],
        "the first sender's finish is fenced"
    );

    let dead = out
        .finish(
            at(27),
            vec![(
                taken[0].token,
                SendResult::Dead {
                    code: Some(410),
                    error: "HTTP 410".to_owned(),
                    latency_ms: 3,
                },
            )],
            3,
        )
        .await
        .expect("finish dead");
    assert_eq!(
        dead.fallbacks, 1,
        "the alarm's only external row failed and it has no email row: a fallback email is queued"
    );
    assert!(dead.disabled.is_empty(), "one failure of three");
    let stored = ports
        .webhooks
        .get(ana.id(), wanted.id())
        .await
        .expect("hook");
    assert_eq!((stored.failure_count(), stored.active()), (1, true));
    let fallback = out.claim(at(27), at(60), 10).await.expect("claim");
    assert_eq!(fallback.len(), 1);
    let mail = &fallback[0].item;
    assert_eq!(
        (mail.channel, mail.target, mail.message, mail.fallback),
        (
            Channel::Email,
            ana.id().as_uuid(),
            uuid::Uuid::from_u128(1),
            true
        )
    );
    assert_eq!(mail.alarm, Some((one.id(), t.trigger.occurrence)));
    out.finish(
        at(28),
        vec![(
            fallback[0].token,
            SendResult::Delivered {
                code: None,
                latency_ms: 2,
            },
        )],
        3,
    )
    .await
    .expect("mail delivered");

    // Redelivery of the dead-lettered row, scoped to its owner.
    is(
        out.redeliver(
            bob.id(),
            Channel::Webhook,
            wanted.id().as_uuid(),
            uuid::Uuid::from_u128(1),
            at(30),
        )
        .await,
        not_found,
        "another owner's delivery",
    );
    is(
        out.redeliver(
            ana.id(),
            Channel::Webhook,
            wanted.id().as_uuid(),
            uuid::Uuid::from_u128(9),
            at(30),
        )
        .await,
        not_found,
        "an unknown delivery",
    );
    let again = out
        .redeliver(
            ana.id(),
            Channel::Webhook,
            wanted.id().as_uuid(),
            uuid::Uuid::from_u128(1),
            at(30),
        )
        .await
        .expect("redeliver");
    assert_eq!(
        (again.status, again.attempts, again.due),
        (SendStatus::Pending, 0, at(30))
    );
    is(
        out.redeliver(
            ana.id(),
            Channel::Webhook,
            wanted.id().as_uuid(),
            uuid::Uuid::from_u128(1),
            at(30),
        )
        .await,
        conflict,
        "a pending delivery",
    );
    let retried = out.claim(at(30), at(60), 10).await.expect("claim");
    assert_eq!(retried.len(), 1);
    let disabled = out
        .finish(
            at(31),
            vec![(
                retried[0].token,
                SendResult::Dead {
                    code: None,
                    error: "timed out".to_owned(),
                    latency_ms: 10_000,
                },
            )],
            2,
        )
        .await
        .expect("finish dead again");
    assert_eq!(
        disabled.disabled,
        vec![wanted.id()],
        "the second consecutive failure disables"
    );
    assert_eq!(
        disabled.fallbacks, 0,
        "the occurrence already has its email"
    );
    let stored = ports
        .webhooks
        .get(ana.id(), wanted.id())
        .await
        .expect("hook");
    assert_eq!((stored.failure_count(), stored.active()), (2, false));
    let notice = out.claim(at(31), at(60), 10).await.expect("claim");
    assert_eq!(notice.len(), 1);
    assert_eq!(
        (
            notice[0].item.channel,
            notice[0].item.topic,
            notice[0].item.target,
            notice[0].item.owner
        ),
        (
            Channel::Email,
            SendTopic::WebhookDisabled,
            wanted.id().as_uuid(),
            ana.id()
        ),
        "the owner's notice names the registration"
    );
    assert_eq!(
        out.list(ana.id(), Channel::Webhook, wanted.id().as_uuid(), None, 10)
            .await
            .expect("list")
            .len(),
        1,
        "the notice is not one of the registration's deliveries"
    );
    out.finish(
        at(32),
        vec![(
            notice[0].token,
            SendResult::Delivered {
                code: None,
                latency_ms: 2,
            },
        )],
        2,
    )
    .await
    .expect("notice sent");

    // Test pings, listing newest first with a cursor, owner scoping.
    for n in 1..=3u8 {
        out.enqueue(OutboxItem::pending(
            uuid::Uuid::from_u128(100 + u128::from(n)),
            bobs.id().as_uuid(),
            Channel::Webhook,
            bob.id(),
            None,
            SendTopic::Test,
            at(100 + i64::from(n)),
        ))
        .await
        .expect("enqueue");
    }
    let page = out
        .list(bob.id(), Channel::Webhook, bobs.id().as_uuid(), None, 2)
        .await
        .expect("list");
    let ids: Vec<u128> = page.iter().map(|i| i.message.as_u128()).collect();
    assert_eq!(ids, vec![103, 102], "newest first");
    let rest = out
        .list(
            bob.id(),
            Channel::Webhook,
            bobs.id().as_uuid(),
            Some(uuid::Uuid::from_u128(102)),
            2,
        )
        .await
        .expect("list");
    assert_eq!(
        rest.iter().map(|i| i.message.as_u128()).collect::<Vec<_>>(),
        vec![101]
    );
    assert!(
        out.list(ana.id(), Channel::Webhook, bobs.id().as_uuid(), None, 10)
            .await
            .expect("list")
            .is_empty(),
        "another owner's registration lists nothing"
    );
    let test_claim = out.claim(at(103), at(200), 10).await.expect("claim");
    assert_eq!(test_claim.len(), 3);
    let done = out
        .finish(
            at(104),
            test_claim
                .iter()
                .map(|c| {
                    (
                        c.token,
                        SendResult::Dead {
                            code: Some(500),
                            error: "HTTP 500".to_owned(),
                            latency_ms: 1,
                        },
                    )
                })
                .collect(),
            1,
        )
        .await
        .expect("finish tests");
    assert!(
        done.disabled.is_empty() && done.fallbacks == 0,
        "failed test pings neither count against the registration nor fall back"
    );

    // Each ring is judged on its own: an escalation whose only external
    // row dies falls back even though an earlier ring of the same
    // occurrence was delivered; and a registration that also succeeded in
    // the same batch is not "failing in a row".
    let two = fixtures::alarm(&ports, bob.id(), "Two", None).await;
    let occurrence = alarm_domain::trigger::OccurrenceRef {
        at: at(500),
        local: at(500)
            .to_zoned(alarm_domain::jiff::tz::TimeZone::UTC)
            .datetime(),
    };
    let ring = |n: u128, created: i64, event| {
        OutboxItem::pending(
            uuid::Uuid::from_u128(n),
            bobs.id().as_uuid(),
            Channel::Webhook,
            bob.id(),
            Some((two.id(), occurrence)),
            SendTopic::Alarm(event),
            at(created),
        )
    };
    out.enqueue(ring(200, 500, WebhookEvent::Triggered))
        .await
        .expect("enqueue first ring");
    let first_ring = out.claim(at(500), at(600), 10).await.expect("claim");
    assert_eq!(first_ring.len(), 1);
    out.finish(
        at(501),
        vec![(
            first_ring[0].token,
            SendResult::Delivered {
                code: Some(200),
                latency_ms: 1,
            },
        )],
        1,
    )
    .await
    .expect("first ring delivered");
    let dead_ring = |c: &alarm_domain::ports::ClaimedSend| {
        (
            c.token,
            SendResult::Dead {
                code: Some(500),
                error: "HTTP 500".to_owned(),
                latency_ms: 1,
            },
        )
    };
    out.enqueue(ring(201, 800, WebhookEvent::Escalated))
        .await
        .expect("enqueue escalation");
    let escalation = out.claim(at(800), at(900), 10).await.expect("claim");
    assert_eq!(escalation.len(), 1);
    let report = out
        .finish(at(801), vec![dead_ring(&escalation[0])], 5)
        .await
        .expect("finish escalation");
    assert_eq!(
        report.fallbacks, 1,
        "the escalation's own ring failed: fallback, whatever the first ring did"
    );
    let mail = out.claim(at(801), at(900), 10).await.expect("claim");
    assert_eq!(
        mail.iter()
            .map(|c| (c.item.channel, c.item.message.as_u128()))
            .collect::<Vec<_>>(),
        [(Channel::Email, 201)]
    );
    out.finish(
        at(802),
        vec![(
            mail[0].token,
            SendResult::Delivered {
                code: None,
                latency_ms: 1,
            },
        )],
        5,
    )
    .await
    .expect("mail sent");
    out.enqueue(ring(202, 900, WebhookEvent::Triggered))
        .await
        .expect("enqueue ring");
    out.enqueue(ring(203, 901, WebhookEvent::Triggered))
        .await
        .expect("enqueue ring");
    let batch = out.claim(at(901), at(1000), 10).await.expect("claim");
    assert_eq!(batch.len(), 2);
    let results = batch
        .iter()
        .map(|c| {
            if c.item.message.as_u128() == 203 {
                dead_ring(c)
            } else {
                (
                    c.token,
                    SendResult::Delivered {
                        code: Some(200),
                        latency_ms: 1,
                    },
                )
            }
        })
        .collect();
    let mixed = out.finish(at(902), results, 1).await.expect("finish");
    assert!(
        mixed.disabled.is_empty(),
        "a success in the same batch keeps the registration enabled (threshold 1)"
    );
    let hook_now = ports.webhooks.get(bob.id(), bobs.id()).await.expect("hook");
    assert_eq!((hook_now.active(), hook_now.failure_count()), (true, 0));

    // Ana's only registration for alarm.triggered is disabled now: her
    // next webhook ring falls back to e-mail at once.
    fixtures::alarm(&ports, ana.id(), "Three", Some(at(2000))).await;
    let third = ports
        .queue
        .claim(at(2000), 10, SignedDuration::from_secs(30))
        .await
        .expect("claim third");
    assert_eq!(third.len(), 1);
    let t3 = &third[0];
    ports
        .queue
        .complete_many(vec![(
            t3.token,
            FireOutcome {
                events: Vec::new(),
                deliveries: vec![Delivery {
                    id: uuid::Uuid::from_u128(300),
                    owner: ana.id(),
                    alarm: t3.trigger.alarm,
                    occurrence: t3.trigger.occurrence,
                    kind: TriggerKind::Fire,
                    channel: Channel::Webhook,
                    created_at: at(2000),
                }],
                follow_up: None,
                next: None,
                ringing: RingingChange::None,
            },
        )])
        .await
        .expect("complete third");
    let now_due = out.claim(at(2000), at(2100), 10).await.expect("claim");
    assert_eq!(
        now_due
            .iter()
            .filter(|c| c.item.owner == ana.id())
            .map(|c| (c.item.channel, c.item.message.as_u128(), c.item.fallback))
            .collect::<Vec<_>>(),
        [(Channel::Email, 300, true)],
        "no webhook row (all disabled), an e-mail fallback instead"
    );

    let mut loaded: Vec<WebhookId> = out
        .webhooks(vec![bobs.id(), WebhookId::generate(), wanted.id()])
        .await
        .expect("webhooks")
        .iter()
        .map(WebhookRegistration::id)
        .collect();
    loaded.sort();
    let mut want = vec![bobs.id(), wanted.id()];
    want.sort();
    assert_eq!(
        loaded, want,
        "loads any owner's registrations, skips unknown ids"
    );
}
