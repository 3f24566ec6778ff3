//! Use-case services against the in-memory fakes; mockall where the interaction itself is the point.

use std::sync::Arc;

use alarm_domain::ids::AlarmId;
use alarm_domain::jiff::civil::date;
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::*;
use alarm_domain::ports::{
    AlarmOp, FireOutcome, HolidayPreferences, MockAlarmStore, PageRequest, TriggerPlan,
};
use alarm_domain::schedule::{OccurrenceQuery, Schedule, SuppressionReason, WallTime};
use alarm_domain::services::{
    Actor, AlarmService, CalendarService, FireDecision, NewUser, Ports, RoutineService,
    ServiceError, SkipReason, UserService, WebhookService, decide_fire, next_fire_plan,
};
use alarm_domain::trigger::{Ringing, RingingChange, TriggerKind};
use alarm_domain::tz::TimeZoneName;
use alarm_testkit::{InMemory, ManualClock, SequentialIds};
use secrecy::ExposeSecret;

/// Sunday 2026-11-22 04:00 UTC (01:00 in São Paulo).
fn start() -> Timestamp {
    "2026-11-22T04:00:00Z".parse().unwrap()
}

struct World {
    clock: Arc<ManualClock>,
    ports: Ports,
    users: UserService,
    alarms: AlarmService,
    calendar: CalendarService,
}

fn world() -> World {
    let clock = Arc::new(ManualClock::new(start()));
    let ports = InMemory::new().ports(clock.clone(), Arc::new(SequentialIds::new()));
    let admin = Email::parse("root@example.com").unwrap();
    World {
        users: UserService::new(ports.clone(), vec![admin]),
        alarms: AlarmService::new(ports.clone()),
        calendar: CalendarService::new(ports.clone()),
        clock,
        ports,
    }
}

fn sao_paulo() -> TimeZoneName {
    TimeZoneName::resolve("America/Sao_Paulo", &TimeZoneDatabase::bundled()).unwrap()
}

async fn register(w: &World, email: &str) -> Actor {
    let user = w
        .users
        .register(
            NewUser {
                email: Email::parse(email).unwrap(),
                display_name: DisplayName::parse("Someone").unwrap(),
                password_hash: "$argon2id$test".into(),
                time_zone: sao_paulo(),
                locale: Some(Locale::new(
                    Country::parse("BR").unwrap(),
                    Some(StateCode::parse("SP").unwrap()),
                )),
            },
            "req",
        )
        .await
        .unwrap();
    Actor {
        user: user.id(),
        role: user.role(),
        correlation_id: format!("req-{email}"),
    }
}

/// Verifies `who`'s address with the link the service issues, as the
/// e-mailed link would; answers the account as it acts afterwards.
async fn verified(w: &World, who: &Actor) -> Actor {
    let mailed = w.users.request_verification(who).await.unwrap();
    let user = w.users.verify_email(&mailed.token, "req").await.unwrap();
    assert!(user.verified_at().is_some());
    Actor::for_user(&user, &who.correlation_id)
}

/// Daily 07:00 in São Paulo (10:00 UTC).
fn daily_seven() -> AlarmDraft {
    AlarmDraft {
        name: AlarmName::parse("Wake up").unwrap(),
        description: Description::default(),
        enabled: true,
        time_zone: sao_paulo(),
        schedules: Schedules::new(vec![Schedule::Daily {
            time: WallTime::parse("07:00").unwrap(),
        }])
        .unwrap(),
        snooze: SnoozePolicy::default(),
        escalation: EscalationPolicy::default(),
        channels: ChannelSet::default(),
        sound: None,
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn fire_due(w: &World, id: AlarmId) -> Vec<Timestamp> {
    w.ports
        .queue
        .pending(id)
        .await
        .unwrap()
        .iter()
        .filter(|t| t.kind == TriggerKind::Fire)
        .map(|t| t.due_at)
        .collect()
}

#[tokio::test]
async fn creating_an_alarm_schedules_its_first_fire_in_the_same_commit() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let alarm = w.alarms.create(&ana, daily_seven()).await.unwrap();
    assert_eq!(fire_due(&w, alarm.id()).await, [ts("2026-11-22T10:00:00Z")]);
    assert_eq!(
        w.alarms.next_fire_at(&alarm).await.unwrap(),
        Some(ts("2026-11-22T10:00:00Z"))
    );
    let events = w
        .ports
        .events
        .list(ana.user, alarm.id(), PageRequest::first())
        .await
        .unwrap()
        .items;
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [AlarmEventKind::Created]
    );
    let audit = w
        .ports
        .audit
        .list(Some(ana.user), PageRequest::first())
        .await
        .unwrap()
        .items;
    let last = audit.last().unwrap();
    assert_eq!(
        (
            last.action.as_str(),
            last.entity_type.as_str(),
            last.correlation_id.as_str()
        ),
        ("alarm.create", "alarm", "req-ana@example.com")
    );
}

#[tokio::test]
async fn another_owners_alarm_is_not_found_everywhere() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let bob = register(&w, "bob@example.com").await;
    let alarm = w.alarms.create(&ana, daily_seven()).await.unwrap();
    let q = OccurrenceQuery {
        after: start(),
        limit: 3,
        include_suppressed: false,
    };
    assert!(matches!(
        w.alarms.get(&bob, alarm.id()).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        w.alarms
            .update(&bob, alarm.id(), daily_seven(), alarm.version())
            .await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        w.alarms.delete(&bob, alarm.id(), None).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        w.alarms.set_enabled(&bob, alarm.id(), false, None).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        w.alarms.preview(&bob, alarm.id(), q).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        w.alarms.snooze(&bob, alarm.id()).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        w.alarms.dismiss(&bob, alarm.id()).await,
        Err(ServiceError::NotFound)
    ));
    assert!(
        matches!(
            w.alarms.get(&bob, AlarmId::generate()).await,
            Err(ServiceError::NotFound)
        ),
        "same answer as a missing id"
    );
}

#[tokio::test]
async fn updates_are_optimistic_and_reschedule() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let alarm = w.alarms.create(&ana, daily_seven()).await.unwrap();
    let mut later = daily_seven();
    later.schedules = Schedules::new(vec![Schedule::Daily {
        time: WallTime::parse("08:30").unwrap(),
    }])
    .unwrap();
    let v2 = w
        .alarms
        .update(&ana, alarm.id(), later.clone(), alarm.version())
        .await
        .unwrap();
    assert_eq!(v2.version().get(), 2);
    assert_eq!(fire_due(&w, alarm.id()).await, [ts("2026-11-22T11:30:00Z")]);
    let stale = w
        .alarms
        .update(&ana, alarm.id(), daily_seven(), alarm.version())
        .await;
    assert!(
        matches!(
            stale,
            Err(ServiceError::StaleVersion {
                expected: 1,
                actual: 2
            })
        ),
        "{stale:?}"
    );
    assert_eq!(
        fire_due(&w, alarm.id()).await,
        [ts("2026-11-22T11:30:00Z")],
        "a refused update changes nothing"
    );
}

#[tokio::test]
async fn disable_enable_and_delete() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let alarm = w.alarms.create(&ana, daily_seven()).await.unwrap();
    let off = w
        .alarms
        .set_enabled(&ana, alarm.id(), false, None)
        .await
        .unwrap();
    assert!(!off.enabled());
    assert!(
        fire_due(&w, alarm.id()).await.is_empty(),
        "a disabled alarm has no fire trigger"
    );
    assert_eq!(w.alarms.next_fire_at(&off).await.unwrap(), None);
    let same = w
        .alarms
        .set_enabled(&ana, alarm.id(), false, None)
        .await
        .unwrap();
    assert_eq!(
        same.version(),
        off.version(),
        "disabling twice creates no version"
    );
    w.alarms
        .set_enabled(&ana, alarm.id(), true, None)
        .await
        .unwrap();
    assert_eq!(fire_due(&w, alarm.id()).await, [ts("2026-11-22T10:00:00Z")]);
    w.alarms
        .delete(&ana, alarm.id(), Some(AlarmVersion::new(1).unwrap()))
        .await
        .expect_err("stale delete");
    w.alarms.delete(&ana, alarm.id(), None).await.unwrap();
    assert!(matches!(
        w.alarms.get(&ana, alarm.id()).await,
        Err(ServiceError::NotFound)
    ));
    assert!(w.ports.queue.pending(alarm.id()).await.unwrap().is_empty());
    let kinds: Vec<AlarmEventKind> = w
        .ports
        .events
        .list(ana.user, alarm.id(), PageRequest::first())
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            AlarmEventKind::Created,
            AlarmEventKind::Disabled,
            AlarmEventKind::Enabled,
            AlarmEventKind::Deleted
        ]
    );
}

#[tokio::test]
async fn exception_periods_move_the_next_fire_in_the_same_commit() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let alarm = w.alarms.create(&ana, daily_seven()).await.unwrap();
    let period = w
        .calendar
        .create_exception(
            &ana,
            "Trip",
            ExceptionKind::Travel,
            date(2026, 11, 22),
            date(2026, 11, 24),
        )
        .await
        .unwrap();
    assert_eq!(fire_due(&w, alarm.id()).await, [ts("2026-11-25T10:00:00Z")]);
    let q = OccurrenceQuery {
        after: start(),
        limit: 4,
        include_suppressed: true,
    };
    let preview = w.alarms.preview(&ana, alarm.id(), q).await.unwrap();
    assert!(
        matches!(preview.items[0].suppressed(), Some(SuppressionReason::ExceptionPeriod { name, .. }) if name == "Trip")
    );
    w.calendar
        .update_exception(
            &ana,
            period.id(),
            "Trip",
            ExceptionKind::Travel,
            date(2026, 11, 22),
            date(2026, 11, 22),
        )
        .await
        .unwrap();
    assert_eq!(fire_due(&w, alarm.id()).await, [ts("2026-11-23T10:00:00Z")]);
    w.calendar
        .delete_exception(&ana, period.id())
        .await
        .unwrap();
    assert_eq!(fire_due(&w, alarm.id()).await, [ts("2026-11-22T10:00:00Z")]);
    let err = w
        .calendar
        .create_exception(
            &ana,
            "Long",
            ExceptionKind::Custom,
            date(2026, 1, 1),
            date(2027, 6, 1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Invalid(e) if e.field() == "end"));
}

#[tokio::test]
async fn holidays_are_admin_only_and_preferences_reschedule() {
    let w = world();
    let root = register(&w, "ROOT@example.com").await;
    assert_eq!(root.role, Role::User, "not an admin before verifying");
    let link = w.users.request_verification(&root).await.unwrap();
    let user = w.users.verify_email(&link.token, "req").await.unwrap();
    assert_eq!(
        user.role(),
        Role::Admin,
        "ADMIN_EMAILS bootstrap on verification, case-insensitive"
    );
    let spent = w.users.verify_email(&link.token, "req").await.unwrap_err();
    assert!(matches!(spent, ServiceError::Invalid(e) if e.field() == "token"));
    let again = w.users.request_verification(&root).await.unwrap_err();
    assert!(matches!(again, ServiceError::Conflict(_)), "{again:?}");
    let root = Actor::for_user(&user, "req");
    let ana = register(&w, "ana@example.com").await;
    let br = Country::parse("BR").unwrap();
    let denied = w
        .calendar
        .create_holiday(
            &ana,
            "Made up",
            HolidayDate::recurring(11, 22).unwrap(),
            br,
            None,
            false,
        )
        .await;
    assert!(matches!(denied, Err(ServiceError::Forbidden)));
    let holiday = w
        .calendar
        .create_holiday(
            &root,
            "Dia de teste",
            HolidayDate::recurring(11, 22).unwrap(),
            br,
            None,
            false,
        )
        .await
        .unwrap();
    let alarm = w.alarms.create(&ana, daily_seven()).await.unwrap();
    assert_eq!(
        fire_due(&w, alarm.id()).await,
        [ts("2026-11-22T10:00:00Z")],
        "the default preference is to fire"
    );
    let skip = HolidayPreferences {
        default: HolidayPreference::Skip,
        overrides: Vec::new(),
    };
    w.calendar.set_preferences(&ana, skip).await.unwrap();
    assert_eq!(
        fire_due(&w, alarm.id()).await,
        [ts("2026-11-23T10:00:00Z")],
        "skipping the holiday moved the fire"
    );
    let delay = HolidayPreferences {
        default: HolidayPreference::Skip,
        overrides: vec![(
            holiday.id(),
            HolidayPreference::Delay(DelayMinutes::new(45).unwrap()),
        )],
    };
    w.calendar.set_preferences(&ana, delay).await.unwrap();
    assert_eq!(fire_due(&w, alarm.id()).await, [ts("2026-11-22T10:45:00Z")]);
    assert!(matches!(
        w.calendar.delete_holiday(&ana, holiday.id()).await,
        Err(ServiceError::Forbidden)
    ));
}

/// Fires the alarm's due trigger the way a runner would, leaving it ringing.
async fn ring(w: &World, alarm: &Alarm) -> Ringing {
    let due = w.ports.queue.next_due().await.unwrap().unwrap();
    w.clock.set(due);
    let claimed = w
        .ports
        .queue
        .claim(due, 10, SignedDuration::from_secs(30))
        .await
        .unwrap();
    let c = claimed
        .into_iter()
        .find(|c| c.trigger.alarm == alarm.id())
        .unwrap();
    let ringing = Ringing {
        alarm: alarm.id(),
        owner: alarm.owner(),
        occurrence: c.trigger.occurrence,
        since: due,
        snoozes: 0,
        level: 0,
        snoozed: false,
    };
    let outcome = FireOutcome {
        events: Vec::new(),
        deliveries: Vec::new(),
        follow_up: None,
        next: None,
        ringing: RingingChange::Upsert(ringing.clone()),
    };
    w.ports.queue.complete(c.token, outcome).await.unwrap();
    ringing
}

#[tokio::test]
async fn snooze_and_dismiss_act_on_ringing_occurrences() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let mut draft = daily_seven();
    draft.snooze = SnoozePolicy::new(9, 2).unwrap();
    let alarm = w.alarms.create(&ana, draft).await.unwrap();
    assert!(matches!(
        w.alarms.snooze(&ana, alarm.id()).await,
        Err(ServiceError::NotRinging)
    ));
    assert!(matches!(
        w.alarms.dismiss(&ana, alarm.id()).await,
        Err(ServiceError::NotRinging)
    ));
    ring(&w, &alarm).await;
    let snoozed = w.alarms.snooze(&ana, alarm.id()).await.unwrap();
    assert_eq!(snoozed.snoozes, 1);
    let pending = w.ports.queue.pending(alarm.id()).await.unwrap();
    let snooze = pending
        .iter()
        .find(|t| t.kind == TriggerKind::Snooze(1))
        .unwrap();
    assert_eq!(
        snooze.due_at,
        ts("2026-11-22T10:09:00Z"),
        "now + the alarm's 9 snooze minutes"
    );
    assert!(
        matches!(
            w.alarms.snooze(&ana, alarm.id()).await,
            Err(ServiceError::NotRinging)
        ),
        "already snoozed: nothing rings right now"
    );
    // The snooze ends: the occurrence rings again and may be snoozed once more, then no more.
    let again = Ringing {
        snoozed: false,
        ..snoozed
    };
    let claimed = w
        .ports
        .queue
        .claim(snooze.due_at, 10, SignedDuration::from_secs(30))
        .await
        .unwrap();
    let c = claimed
        .into_iter()
        .find(|c| c.trigger.kind == TriggerKind::Snooze(1))
        .unwrap();
    w.ports
        .queue
        .complete(
            c.token,
            FireOutcome {
                events: Vec::new(),
                deliveries: Vec::new(),
                follow_up: None,
                next: None,
                ringing: RingingChange::Upsert(again.clone()),
            },
        )
        .await
        .unwrap();
    let second = w.alarms.snooze(&ana, alarm.id()).await.unwrap();
    assert_eq!(second.snoozes, 2);
    let c = w
        .ports
        .queue
        .claim(
            ts("2026-11-22T11:00:00Z"),
            10,
            SignedDuration::from_secs(30),
        )
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.trigger.kind == TriggerKind::Snooze(2))
        .unwrap();
    w.ports
        .queue
        .complete(
            c.token,
            FireOutcome {
                events: Vec::new(),
                deliveries: Vec::new(),
                follow_up: None,
                next: None,
                ringing: RingingChange::Upsert(Ringing {
                    snoozed: false,
                    ..second
                }),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        w.alarms.snooze(&ana, alarm.id()).await,
        Err(ServiceError::SnoozeLimit { max: 2 })
    ));
    w.alarms.dismiss(&ana, alarm.id()).await.unwrap();
    assert!(
        w.ports
            .queue
            .ringing(ana.user, alarm.id())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        w.alarms.dismiss(&ana, alarm.id()).await,
        Err(ServiceError::NotRinging)
    ));
    let kinds: Vec<AlarmEventKind> = w
        .ports
        .events
        .list(ana.user, alarm.id(), PageRequest::first())
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            AlarmEventKind::Created,
            AlarmEventKind::Snoozed,
            AlarmEventKind::Snoozed,
            AlarmEventKind::Dismissed
        ]
    );
}

#[tokio::test]
async fn the_fire_time_recheck_skips_stale_moved_and_suppressed_triggers() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let alarm = w.alarms.create(&ana, daily_seven()).await.unwrap();
    let trigger = w.ports.queue.pending(alarm.id()).await.unwrap().remove(0);
    let calendar = w.calendar.calendar_for(ana.user).await.unwrap();
    assert_eq!(
        decide_fire(&trigger, Some(&alarm), &calendar),
        FireDecision::Ring
    );
    assert_eq!(
        decide_fire(&trigger, None, &calendar),
        FireDecision::Skip(SkipReason::AlarmGone)
    );
    let edited = w
        .alarms
        .update(&ana, alarm.id(), daily_seven(), alarm.version())
        .await
        .unwrap();
    assert_eq!(
        decide_fire(&trigger, Some(&edited), &calendar),
        FireDecision::Skip(SkipReason::AlarmChanged)
    );
    // A snooze survives an edit: the user still wants to be woken.
    let snooze = alarm_domain::trigger::Trigger {
        kind: TriggerKind::Snooze(1),
        ..trigger.clone()
    };
    assert_eq!(
        decide_fire(&snooze, Some(&edited), &calendar),
        FireDecision::Ring
    );
    let off = w
        .alarms
        .set_enabled(&ana, alarm.id(), false, None)
        .await
        .unwrap();
    assert_eq!(
        decide_fire(&snooze, Some(&off), &calendar),
        FireDecision::Skip(SkipReason::AlarmDisabled)
    );
    let on = w
        .alarms
        .set_enabled(&ana, alarm.id(), true, None)
        .await
        .unwrap();
    let current = alarm_domain::trigger::Trigger {
        alarm_version: on.version(),
        ..trigger.clone()
    };

    // Holiday writes do not reschedule: the check at fire time honours them.
    let root = verified(&w, &register(&w, "root@example.com").await).await;
    let holiday = w
        .calendar
        .create_holiday(
            &root,
            "Surprise",
            HolidayDate::recurring(11, 22).unwrap(),
            Country::parse("BR").unwrap(),
            None,
            false,
        )
        .await
        .unwrap();
    w.calendar
        .set_preferences(
            &ana,
            HolidayPreferences {
                default: HolidayPreference::Skip,
                overrides: Vec::new(),
            },
        )
        .await
        .unwrap();
    let skip_calendar = w.calendar.calendar_for(ana.user).await.unwrap();
    assert!(matches!(
        decide_fire(&current, Some(&on), &skip_calendar),
        FireDecision::Suppressed(SuppressionReason::HolidaySkip { .. })
    ));
    // A delay moves the occurrence: skip it, and the runner's plan puts the
    // delayed fire in place.
    let delay = HolidayPreferences {
        default: HolidayPreference::Skip,
        overrides: vec![(
            holiday.id(),
            HolidayPreference::Delay(DelayMinutes::new(60).unwrap()),
        )],
    };
    w.calendar.set_preferences(&ana, delay).await.unwrap();
    let delay_calendar = w.calendar.calendar_for(ana.user).await.unwrap();
    assert_eq!(
        decide_fire(&current, Some(&on), &delay_calendar),
        FireDecision::Skip(SkipReason::OccurrenceMoved)
    );
    match next_fire_plan(&on, &delay_calendar, start()) {
        alarm_domain::ports::TriggerPlan::Reschedule {
            next: Some(t),
            version,
            ..
        } => {
            assert_eq!(t.due_at, ts("2026-11-22T11:00:00Z"));
            assert_eq!(version, on.version());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn users_register_once_per_email() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    assert_eq!(ana.role, Role::User);
    let dup = w
        .users
        .register(
            NewUser {
                email: Email::parse("ANA@EXAMPLE.COM").unwrap(),
                display_name: DisplayName::parse("Other").unwrap(),
                password_hash: "$argon2id$x".into(),
                time_zone: TimeZoneName::utc(),
                locale: None,
            },
            "req",
        )
        .await;
    assert!(matches!(dup, Err(ServiceError::Conflict(_))));
    assert_eq!(
        w.users
            .find_by_email(&Email::parse("Ana@Example.com").unwrap())
            .await
            .unwrap()
            .id(),
        ana.user
    );
    assert_eq!(w.users.me(&ana).await.unwrap().id(), ana.user);
    assert!(matches!(
        w.users
            .find_by_email(&Email::parse("no@example.com").unwrap())
            .await,
        Err(ServiceError::NotFound)
    ));
}

#[tokio::test]
async fn routines_and_webhooks_are_scoped_and_secrets_generated() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let bob = register(&w, "bob@example.com").await;
    let routines = RoutineService::new(w.ports.clone());
    let actions = vec![
        RoutineAction::parse("Lights on").unwrap(),
        RoutineAction::parse("Coffee").unwrap(),
    ];
    let r = routines
        .create(
            &ana,
            RoutineName::parse("Morning").unwrap(),
            actions.clone(),
            true,
        )
        .await
        .unwrap();
    assert!(matches!(
        routines.get(&bob, r.id()).await,
        Err(ServiceError::NotFound)
    ));
    let updated = routines
        .update(
            &ana,
            r.id(),
            RoutineName::parse("Morning 2").unwrap(),
            actions,
            false,
        )
        .await
        .unwrap();
    assert!(!updated.active());
    assert_eq!(
        routines
            .list(&ana, PageRequest::first())
            .await
            .unwrap()
            .items,
        [updated]
    );
    routines.delete(&ana, r.id()).await.unwrap();

    let hooks = WebhookService::new(w.ports.clone());
    let url = WebhookUrl::parse("https://hooks.example.com/a").unwrap();
    let events = WebhookEventSet::new(&[WebhookEvent::Triggered]).unwrap();
    let created = hooks
        .create(&ana, url.clone(), events, Vec::new())
        .await
        .unwrap();
    let secret = created.secret.expose_secret().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 50,
        "{}",
        secret.len()
    );
    let stored = hooks.get(&ana, created.registration.id()).await.unwrap();
    assert_eq!(stored.secret().expose_secret(), secret);
    assert!(
        !format!("{stored:?}").contains(&secret),
        "the secret never shows in Debug"
    );
    assert!(matches!(
        hooks.get(&bob, created.registration.id()).await,
        Err(ServiceError::NotFound)
    ));
    let other = hooks
        .create(&ana, url.clone(), events, Vec::new())
        .await
        .unwrap();
    assert_ne!(
        other.secret.expose_secret(),
        secret,
        "each registration gets its own secret"
    );
    for _ in 2..alarm_domain::limits::Limits::default().webhooks_per_user {
        hooks
            .create(&ana, url.clone(), events, Vec::new())
            .await
            .unwrap();
    }
    let over = hooks.create(&ana, url, events, Vec::new()).await;
    assert!(matches!(
        over,
        Err(ServiceError::OverQuota {
            quota: "webhooks_per_user",
            limit: 20
        })
    ));
}

#[tokio::test]
async fn creating_an_alarm_is_one_commit_carrying_its_whole_change_set() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let mut mock = MockAlarmStore::new();
    mock.expect_commit()
        .times(1)
        .withf(|c| {
            matches!(c.op, AlarmOp::Create(..))
                && c.audit.action == "alarm.create"
                && c.events.len() == 1
                && c.events[0].kind == AlarmEventKind::Created
                && matches!(
                    c.triggers.as_slice(),
                    [TriggerPlan::Reschedule { next: Some(_), .. }]
                )
        })
        .returning(|_| Ok(()));
    let ports = Ports {
        alarms: Arc::new(mock),
        ..w.ports.clone()
    };
    AlarmService::new(ports)
        .create(&ana, daily_seven())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rotation_never_extends_the_old_keys_life() {
    use alarm_domain::model::{ApiKeyName, ApiKeyScopes};
    use alarm_domain::services::{ApiKeyService, KeyRefused};
    use secrecy::ExposeSecret;
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let keys = ApiKeyService::new(w.ports.clone());
    let scopes = ApiKeyScopes::parse(&["webhooks:read"]).unwrap();
    let name = || ApiKeyName::parse("ci").unwrap();
    let soon = start() + SignedDuration::from_mins(10);
    let short = keys.create(&ana, name(), scopes, Some(soon)).await.unwrap();
    keys.rotate(&ana, short.key.id, SignedDuration::from_hours(1))
        .await
        .unwrap();
    let kept = keys.get(&ana, short.key.id).await.unwrap();
    assert_eq!(kept.ends_at(), Some(soon), "its own expiry is the earlier");
    let forever = keys.create(&ana, name(), scopes, None).await.unwrap();
    let new = keys
        .rotate(&ana, forever.key.id, SignedDuration::from_mins(5))
        .await
        .unwrap();
    let kept = keys.get(&ana, forever.key.id).await.unwrap();
    assert_eq!(kept.ends_at(), Some(start() + SignedDuration::from_mins(5)));
    assert_eq!(
        new.key.expires_at, None,
        "the new key keeps the old one's expiry"
    );
    let text = new.secret.expose_secret().to_owned();
    assert_eq!(keys.verify(&text).await.unwrap().id, new.key.id);
    w.clock.advance(SignedDuration::from_mins(6));
    let old_text = forever.secret.expose_secret().to_owned();
    assert!(matches!(
        keys.verify(&old_text).await,
        Err(KeyRefused::Expired)
    ));
    assert!(matches!(
        keys.rotate(&ana, forever.key.id, SignedDuration::from_hours(24 * 8))
            .await,
        Err(ServiceError::Invalid(_))
    ));
}

/// A hasher that accepts any password and, while "checking" it, lets a
/// password change commit: the race between a slow login and a reset.
struct ResetWhileChecking {
    ports: Ports,
    victim: std::sync::Mutex<Option<alarm_domain::ids::UserId>>,
}

#[async_trait::async_trait]
impl alarm_domain::services::PasswordHasher for ResetWhileChecking {
    async fn hash(&self, password: secrecy::SecretString) -> Result<secrecy::SecretString, String> {
        Ok(password)
    }

    async fn verify(&self, _: secrecy::SecretString, _: Option<secrecy::SecretString>) -> bool {
        let victim = self.victim.lock().unwrap().take();
        if let Some(user) = victim {
            let audit = alarm_testkit::fixtures::audit(
                &self.ports,
                None,
                "user.password_reset",
                user.as_uuid(),
            );
            self.ports
                .users
                .commit(alarm_domain::ports::ChangeSet::audited(
                    alarm_domain::ports::UserOp::SetPassword {
                        user,
                        password_hash: "$argon2id$after-the-reset".into(),
                    },
                    audit,
                ))
                .await
                .unwrap();
        }
        true
    }
}

#[tokio::test]
async fn a_login_that_checked_a_password_replaced_meanwhile_opens_no_session() {
    let w = world();
    let ana = register(&w, "ana@example.com").await;
    let hasher = Arc::new(ResetWhileChecking {
        ports: w.ports.clone(),
        victim: std::sync::Mutex::new(Some(ana.user)),
    });
    let auth = alarm_domain::services::AuthService::new(
        w.ports.clone(),
        hasher,
        SignedDuration::from_hours(24),
    );
    let err = auth
        .login("ana@example.com", "old password".into(), [1; 32], "req")
        .await
        .unwrap_err();
    assert!(
        matches!(err, alarm_domain::services::AuthError::BadCredentials),
        "{err:?}"
    );
    let refreshed = w
        .ports
        .refresh_tokens
        .rotate([1; 32], [2; 32], start())
        .await
        .unwrap();
    assert_eq!(
        refreshed,
        alarm_domain::ports::Rotation::Refused,
        "the session it opened is revoked"
    );
    // With the password unchanged meanwhile, the same login works.
    let session = auth
        .login("ana@example.com", "new password".into(), [3; 32], "req")
        .await
        .unwrap();
    assert!(!session.family.revoked);
}
