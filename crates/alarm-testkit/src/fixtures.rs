//! Ready-made valid values and commits, so a test states only what it is about.

use alarm_domain::ids::{AlarmId, AuditId, EventId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::{
    Alarm, AlarmDraft, AlarmEvent, AlarmEventKind, AlarmName, AuditRecord, ChannelSet, Country,
    Description, DisplayName, Email, EscalationPolicy, Locale, Role, Schedules, SnoozePolicy, User,
};
use alarm_domain::ports::{AlarmOp, ChangeSet, TriggerPlan, UserOp};
use alarm_domain::schedule::{Schedule, WallTime};
use alarm_domain::services::Ports;
use alarm_domain::trigger::{OccurrenceRef, Trigger, TriggerKind};
use alarm_domain::tz::TimeZoneName;

/// A fixed instant the suites start from: 2026-01-05T06:00:00Z (a Monday).
pub fn t0() -> Timestamp {
    Timestamp::from_second(1_767_592_800).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `t0()` plus `secs` seconds.
pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(t0().as_second() + secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A zone from the database the process can reach (the system copy, else
/// jiff's bundled one).
pub fn zone(name: &str) -> TimeZoneName {
    TimeZoneName::resolve(name, alarm_domain::jiff::tz::db())
        .or_else(|_| TimeZoneName::resolve(name, &TimeZoneDatabase::from_env()))
        .unwrap_or_else(|_| TimeZoneName::utc())
}

/// A fresh audit record by `actor`.
pub fn audit(
    ports: &Ports,
    actor: Option<UserId>,
    action: &str,
    entity: uuid::Uuid,
) -> AuditRecord {
    AuditRecord {
        id: AuditId::from_uuid(ports.ids.next_uuid()).unwrap_or_else(|_| AuditId::generate()),
        actor,
        action: action.to_owned(),
        entity_type: action.split('.').next().unwrap_or("entity").to_owned(),
        entity_id: entity,
        before: None,
        after: None,
        at: t0(),
        correlation_id: "conformance".to_owned(),
    }
}

/// A fresh event of `alarm`.
pub fn event(ports: &Ports, alarm: AlarmId, owner: UserId, kind: AlarmEventKind) -> AlarmEvent {
    AlarmEvent {
        id: EventId::from_uuid(ports.ids.next_uuid()).unwrap_or_else(|_| EventId::generate()),
        alarm,
        owner,
        kind,
        at: t0(),
        occurrence: None,
        detail: None,
        data: Some(format!(
            "{{\"alarm_id\":\"{alarm}\",\"kind\":\"{}\"}}",
            kind.as_str()
        )),
    }
}

/// Registers a user with `email` (in Brazil, São Paulo state, its address
/// verified at [`t0`]) straight through the store.
///
/// # Panics
/// When the store refuses: a fixture that cannot be set up is a broken test.
pub async fn user(ports: &Ports, email: &str) -> User {
    let id = UserId::from_uuid(ports.ids.next_uuid()).expect("v7 id source");
    let locale = Locale::new(
        Country::parse("BR").expect("BR"),
        alarm_domain::model::StateCode::parse("SP").ok(),
    );
    let user = User::new(
        id,
        Email::parse(email).expect("fixture email"),
        DisplayName::parse("Fixture").expect("name"),
        Role::User,
        zone("America/Sao_Paulo"),
        Some(locale),
    )
    .with_verified(Some(t0()));
    let change = ChangeSet {
        op: UserOp::Register {
            user: user.clone(),
            password_hash: "$argon2id$fixture".into(),
        },
        audit: audit(ports, Some(id), "user.register", id.as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports
        .users
        .commit(change)
        .await
        .expect("register fixture user");
    user
}

/// A valid daily 07:00 UTC alarm draft.
pub fn draft(name: &str) -> AlarmDraft {
    AlarmDraft {
        name: AlarmName::parse(name).expect("fixture name"),
        description: Description::default(),
        enabled: true,
        time_zone: TimeZoneName::utc(),
        schedules: Schedules::new(vec![Schedule::Daily {
            time: WallTime::parse("07:00").expect("time"),
        }])
        .expect("one schedule"),
        snooze: SnoozePolicy::default(),
        escalation: EscalationPolicy::default(),
        channels: ChannelSet::default(),
        sound: None,
    }
}

/// A `kind` trigger of `alarm` for the occurrence at `occurrence`, due then.
pub fn trigger(alarm: &Alarm, occurrence: Timestamp, kind: TriggerKind) -> Trigger {
    Trigger {
        alarm: alarm.id(),
        owner: alarm.owner(),
        occurrence: OccurrenceRef {
            at: occurrence,
            local: occurrence
                .to_zoned(alarm_domain::jiff::tz::TimeZone::UTC)
                .datetime(),
        },
        kind,
        due_at: occurrence,
        alarm_version: alarm.version(),
    }
}

/// Creates an alarm for `owner` through the store, with a fire trigger due
/// at `fire_at` when given.
///
/// # Panics
/// When the store refuses.
pub async fn alarm(ports: &Ports, owner: UserId, name: &str, fire_at: Option<Timestamp>) -> Alarm {
    let id = AlarmId::from_uuid(ports.ids.next_uuid()).expect("v7 id source");
    let alarm = Alarm::create(id, owner, draft(name), t0()).expect("valid fixture alarm");
    let next = fire_at.map(|t| trigger(&alarm, t, TriggerKind::Fire));
    let change = ChangeSet {
        op: AlarmOp::Create(
            alarm.clone(),
            alarm_domain::limits::Quota::unlimited("alarms"),
        ),
        audit: audit(ports, Some(owner), "alarm.create", id.as_uuid()),
        events: vec![event(ports, id, owner, AlarmEventKind::Created)],
        triggers: vec![TriggerPlan::Reschedule {
            alarm: id,
            version: alarm.version(),
            next,
        }],
    };
    ports
        .alarms
        .commit(change)
        .await
        .expect("create fixture alarm");
    alarm
}
