//! The trigger engine on real SQLite and PostgreSQL, stepped with the testkit's manual clock: ringing, escalation, expiry, snooze limits, dismissal, misfires after downtime.

use std::sync::Arc;

use alarm_domain::ids::AlarmId;
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::{Alarm, AlarmEventKind, Channel, EscalationPolicy, SnoozePolicy};
use alarm_domain::ports::{FireOutcome, PageRequest, StoreError, TriggerClaims, TriggerPlan};
use alarm_domain::services::{Actor, AlarmService, CalendarService, Ports, ServiceError};
use alarm_domain::trigger::{Claimed, LeaseToken, Trigger, TriggerKind};
use alarm_runner::{Engine, EnginePorts, RunnerConfig, TickReport, delivery_key};
use alarm_sql::Sql;
use alarm_sql::testing::{PgTestDb, postgres_available, sqlite_config};
use alarm_testkit::{ManualClock, SequentialIds, fixtures};

pub(crate) struct World {
    pub(crate) ports: Ports,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) engine: Engine,
    sql: Sql,
    pg: Option<PgTestDb>,
    dir: Option<std::path::PathBuf>,
}

impl World {
    pub(crate) async fn new(postgres: bool, label: &str) -> Option<Self> {
        Self::made(postgres, label, false).await
    }

    /// A world whose database clock is the manual clock too (as the
    /// conformance suites pin it), for what is decided on the store's
    /// clock: rings prepared ahead become visible when the test says.
    pub(crate) async fn with_store_clock(postgres: bool, label: &str) -> Option<Self> {
        Self::made(postgres, label, true).await
    }

    /// Whether it runs on PostgreSQL.
    pub(crate) fn postgres(&self) -> bool {
        self.pg.is_some()
    }

    async fn made(postgres: bool, label: &str, pinned: bool) -> Option<Self> {
        let (config, pg, dir) = if postgres {
            if !postgres_available(label).await {
                return None;
            }
            let db = PgTestDb::new().await;
            (db.config(), Some(db), None)
        } else {
            let (config, dir) = sqlite_config(label);
            (config, None, Some(dir))
        };
        let sql = Sql::connect(&config)
            .await
            .expect("connect")
            .with_sealer(crate::support::sealer());
        sql.migrate_up().await.expect("migrate");
        let clock = Arc::new(ManualClock::new(fixtures::t0()));
        let sql = if pinned {
            sql.with_store_clock(clock.clone())
        } else {
            sql
        };
        let ports = sql.ports(
            TimeZoneDatabase::bundled(),
            clock.clone(),
            Arc::new(SequentialIds::new()),
        );
        let engine = Engine::new(ports.clone(), RunnerConfig::default());
        Some(Self {
            ports,
            clock,
            engine,
            sql,
            pg,
            dir,
        })
    }

    pub(crate) async fn close(self) {
        self.sql.close().await;
        if let Some(db) = self.pg {
            db.drop_db().await;
        }
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// An account registered as the API registers one: its address not
    /// verified yet.
    pub(crate) async fn unverified_user(&self, email: &str) -> Actor {
        let user = alarm_domain::services::UserService::new(self.ports.clone(), Vec::new())
            .register(
                alarm_domain::services::NewUser {
                    email: alarm_domain::model::Email::parse(email).expect("email"),
                    display_name: alarm_domain::model::DisplayName::parse("Unverified")
                        .expect("name"),
                    password_hash: "$argon2id$fixture".into(),
                    time_zone: fixtures::zone("UTC"),
                    locale: None,
                },
                "engine-test",
            )
            .await
            .expect("register");
        Actor {
            user: user.id(),
            role: user.role(),
            correlation_id: "engine-test".to_owned(),
        }
    }

    pub(crate) async fn user(&self, email: &str) -> Actor {
        let user = fixtures::user(&self.ports, email).await;
        Actor {
            user: user.id(),
            role: user.role(),
            correlation_id: "engine-test".to_owned(),
        }
    }

    /// A daily 07:00 UTC alarm with the given policies.
    async fn alarm(
        &self,
        who: &Actor,
        snooze: SnoozePolicy,
        escalation: EscalationPolicy,
    ) -> Alarm {
        let mut draft = fixtures::draft("Wake up");
        draft.snooze = snooze;
        draft.escalation = escalation;
        AlarmService::new(self.ports.clone())
            .create(who, draft)
            .await
            .expect("create")
    }

    async fn at(&self, t: Timestamp) -> TickReport {
        self.clock.set(t);
        self.engine.tick(t).await.expect("tick")
    }

    async fn kinds(&self, alarm: &Alarm) -> Vec<(TriggerKind, Timestamp)> {
        self.ports
            .queue
            .pending(alarm.id())
            .await
            .expect("pending")
            .iter()
            .map(|t| (t.kind, t.due_at))
            .collect()
    }

    async fn events(
        &self,
        who: &Actor,
        alarm: &Alarm,
    ) -> Vec<(AlarmEventKind, Option<Timestamp>, String)> {
        self.ports
            .events
            .list(who.user, alarm.id(), PageRequest::first())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.kind != AlarmEventKind::Created)
            .map(|e| (e.kind, e.occurrence, e.detail.unwrap_or_default()))
            .collect()
    }
}

/// `t0` is 2026-01-05 06:00 UTC; the daily alarm rings at 07:00 UTC.
fn seven(day: i64) -> Timestamp {
    fixtures::t0() + SignedDuration::from_hours(1 + 24 * day)
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

async fn rings_escalates_and_expires(w: &World) {
    let ana = w.user("ana@example.com").await;
    let alarm = w
        .alarm(
            &ana,
            SnoozePolicy::default(),
            EscalationPolicy::new(2, 5, 10).expect("policy"),
        )
        .await;
    assert_eq!(w.kinds(&alarm).await, [(TriggerKind::Fire, seven(0))]);

    let early = w.at(seven(0) - SignedDuration::from_millis(1)).await;
    assert_eq!(
        early,
        TickReport::default(),
        "nothing rings a millisecond early"
    );

    let fired_at = seven(0) + SignedDuration::from_millis(15);
    let r = w.at(fired_at).await;
    assert_eq!(r.rang, 1);
    let ringing = w.ports.queue.ringing_of(ana.user).await.expect("ringing");
    assert_eq!(ringing.len(), 1);
    assert_eq!((ringing[0].level, ringing[0].snoozed), (0, false));
    assert_eq!(
        w.kinds(&alarm).await,
        [
            (TriggerKind::Escalate(1), fired_at + mins(5)),
            (TriggerKind::Fire, seven(1)),
        ],
        "the fire leaves the next occurrence and only the next follow-up"
    );
    let deliveries = w
        .ports
        .queue
        .deliveries(ana.user)
        .await
        .expect("deliveries");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].channel, Channel::InApp);
    assert_eq!(
        deliveries[0].id,
        delivery_key(
            alarm.id(),
            seven(0),
            TriggerKind::Fire,
            AlarmEventKind::Triggered,
            "in-app"
        ),
        "the delivery's id is its derived idempotency key"
    );

    assert_eq!(w.at(fired_at + mins(5)).await.rang, 1);
    assert_eq!(
        w.kinds(&alarm).await[0],
        (TriggerKind::Escalate(2), fired_at + mins(15))
    );
    assert_eq!(w.at(fired_at + mins(15)).await.rang, 1);
    assert_eq!(
        w.kinds(&alarm).await[0],
        (TriggerKind::Expire, fired_at + mins(45)),
        "after the last level comes the expiry, 30 minutes later"
    );
    let level = w.ports.queue.ringing_of(ana.user).await.expect("ringing")[0].level;
    assert_eq!(level, 2);
    let r = w.at(fired_at + mins(45)).await;
    assert_eq!(r.expired, 1);
    assert!(
        w.ports
            .queue
            .ringing_of(ana.user)
            .await
            .expect("ringing")
            .is_empty()
    );
    assert_eq!(w.kinds(&alarm).await, [(TriggerKind::Fire, seven(1))]);
    let kinds: Vec<AlarmEventKind> = w.events(&ana, &alarm).await.iter().map(|e| e.0).collect();
    assert_eq!(
        kinds,
        [
            AlarmEventKind::Triggered,
            AlarmEventKind::Escalated,
            AlarmEventKind::Escalated,
            AlarmEventKind::Expired
        ]
    );
    let detail = &w.events(&ana, &alarm).await[0].2;
    assert_eq!(
        detail, "fire lateness_ms=15",
        "lateness is recorded with the ring"
    );
}

async fn snooze_limits_and_dismissal(w: &World) {
    let ana = w.user("ana@example.com").await;
    let alarm = w
        .alarm(
            &ana,
            SnoozePolicy::new(5, 2).expect("snooze"),
            EscalationPolicy::default(),
        )
        .await;
    let service = AlarmService::new(w.ports.clone());
    assert!(matches!(
        service.snooze(&ana, alarm.id()).await,
        Err(ServiceError::NotRinging)
    ));
    w.at(seven(0)).await;

    w.clock.set(seven(0) + mins(1));
    let snoozed = service.snooze(&ana, alarm.id()).await.expect("snooze 1");
    assert_eq!((snoozed.snoozes, snoozed.snoozed), (1, true));
    assert_eq!(
        w.kinds(&alarm).await,
        [
            (TriggerKind::Snooze(1), seven(0) + mins(6)),
            (TriggerKind::Fire, seven(1))
        ],
        "a snooze replaces the pending escalation"
    );
    assert!(
        w.ports.queue.ringing_of(ana.user).await.expect("ringing")[0].snoozed,
        "a snoozed occurrence is not ringing"
    );
    assert_eq!(
        w.at(seven(0) + mins(6)).await.rang,
        1,
        "the snooze ends and it rings again"
    );
    assert_eq!(
        w.kinds(&alarm).await[0],
        (TriggerKind::Escalate(1), seven(0) + mins(11)),
        "unanswered again, it escalates from where it was"
    );
    w.clock.set(seven(0) + mins(7));
    service.snooze(&ana, alarm.id()).await.expect("snooze 2");
    w.at(seven(0) + mins(12)).await;
    w.clock.set(seven(0) + mins(13));
    assert!(
        matches!(
            service.snooze(&ana, alarm.id()).await,
            Err(ServiceError::SnoozeLimit { max: 2 })
        ),
        "the third snooze is refused"
    );

    service.dismiss(&ana, alarm.id()).await.expect("dismiss");
    assert!(
        w.ports
            .queue
            .ringing_of(ana.user)
            .await
            .expect("ringing")
            .is_empty()
    );
    assert_eq!(
        w.kinds(&alarm).await,
        [(TriggerKind::Fire, seven(1))],
        "dismissal cancels every follow-up; the next occurrence stays"
    );
    assert!(matches!(
        service.dismiss(&ana, alarm.id()).await,
        Err(ServiceError::NotRinging)
    ));
    let r = w.at(seven(0) + mins(60)).await;
    assert_eq!(r, TickReport::default(), "nothing rings after a dismissal");
    let kinds: Vec<(AlarmEventKind, String)> = w
        .events(&ana, &alarm)
        .await
        .into_iter()
        .map(|e| (e.0, e.2))
        .collect();
    assert_eq!(
        kinds.iter().map(|k| k.0).collect::<Vec<_>>(),
        [
            AlarmEventKind::Triggered,
            AlarmEventKind::Snoozed,
            AlarmEventKind::Triggered,
            AlarmEventKind::Snoozed,
            AlarmEventKind::Triggered,
            AlarmEventKind::Dismissed,
        ]
    );
    assert!(kinds[2].1.starts_with("snooze:1 "), "{:?}", kinds[2]);
    let deliveries = w
        .ports
        .queue
        .deliveries(ana.user)
        .await
        .expect("deliveries");
    let ids: std::collections::HashSet<_> = deliveries.iter().map(|d| d.id).collect();
    assert_eq!(deliveries.len(), 3);
    assert_eq!(ids.len(), 3, "each ring has its own idempotency key");
}

async fn downtime_past_the_grace_window(w: &World) {
    let ana = w.user("ana@example.com").await;
    let alarm = w
        .alarm(&ana, SnoozePolicy::default(), EscalationPolicy::default())
        .await;
    // Away for three days, back 20 minutes after the third 07:00.
    let r = w.at(seven(2) + mins(20)).await;
    assert_eq!((r.rang, r.missed), (0, 1), "one report, no ringing");
    let events = w.events(&ana, &alarm).await;
    assert_eq!(events.len(), 1, "no storm: {events:?}");
    assert_eq!(events[0].0, AlarmEventKind::Missed);
    assert_eq!(
        events[0].1,
        Some(seven(2)),
        "the newest missed occurrence is reported"
    );
    assert!(
        events[0].2.starts_with("3 occurrence(s)"),
        "{}",
        events[0].2
    );
    assert!(
        w.ports
            .queue
            .deliveries(ana.user)
            .await
            .expect("d")
            .is_empty()
    );
    assert_eq!(w.kinds(&alarm).await, [(TriggerKind::Fire, seven(3))]);

    // Away again, back 5 minutes after an occurrence: that one still rings
    // (inside the grace window), the one before is reported missed.
    let r = w.at(seven(5) + mins(5)).await;
    assert_eq!((r.rang, r.missed), (1, 1));
    let events = w.events(&ana, &alarm).await;
    assert_eq!(events[1].0, AlarmEventKind::Missed);
    assert_eq!(events[1].1, Some(seven(4)));
    assert_eq!(events[2].0, AlarmEventKind::Triggered);
    assert_eq!(events[2].1, Some(seven(5)));
    assert_eq!(events[2].2, "fire lateness_ms=300000");
}

/// The bound on a crash between a claim and its preparation: an engine
/// claims the 07:00 fire 30.5 s ahead (its window) and dies before it
/// commits anything. The claim stays leased until the claim's horizon plus
/// the lease (07:00 + 30 s): before that no engine may take it, nothing
/// rings; then the next engine rescues and fires it, 30 s late. With the
/// defaults a ring is never later than window + lease + the rescue period
/// (1 s) + one commit after such a crash; a crash after the preparation
/// commits changes nothing.
async fn a_crash_between_claim_and_preparation_is_bounded_by_the_lease(w: &World) {
    let ana = w.user("ana@example.com").await;
    let alarm = w
        .alarm(&ana, SnoozePolicy::default(), EscalationPolicy::default())
        .await;
    let config = RunnerConfig::default();
    let window = SignedDuration::try_from(config.prefetch).expect("window");
    let lease = SignedDuration::try_from(config.lease).expect("lease");
    // The crashed engine's claim, as `Engine::run` makes it at 06:59:29.5.
    w.clock.set(seven(0) - window);
    let claimed = w
        .ports
        .queue
        .claim(seven(0), 100, lease)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "the 07:00 fire is inside the window");
    // Until the lease ends, another engine finds nothing to do.
    let r = w.at(seven(0) + lease - SignedDuration::from_secs(1)).await;
    assert_eq!(r.rang, 0, "the crashed engine's claim is still leased");
    assert!(w.events(&ana, &alarm).await.is_empty());
    // At its end the claim is rescued and fired, as late as the lease.
    let r = w.at(seven(0) + lease).await;
    assert_eq!(r.rang, 1);
    let events = w.events(&ana, &alarm).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, AlarmEventKind::Triggered);
    assert_eq!(
        events[0].2,
        format!("fire lateness_ms={}", lease.as_millis()),
        "late by the lease past the claim's horizon"
    );
}

async fn edits_and_deletions_win_over_claims(w: &World) {
    let ana = w.user("ana@example.com").await;
    let service = AlarmService::new(w.ports.clone());
    let kept = w
        .alarm(&ana, SnoozePolicy::default(), EscalationPolicy::default())
        .await;
    let gone = w
        .alarm(&ana, SnoozePolicy::default(), EscalationPolicy::default())
        .await;
    let lease = SignedDuration::from_secs(30);
    let claimed = w
        .ports
        .queue
        .claim(seven(0), 10, lease)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    // While the claims are held: one alarm is deleted, the other disabled
    // and enabled again (a new version with its own trigger).
    service.delete(&ana, gone.id(), None).await.expect("delete");
    let off = service
        .set_enabled(&ana, kept.id(), false, None)
        .await
        .expect("disable");
    service
        .set_enabled(&ana, off.id(), true, None)
        .await
        .expect("enable");
    let r = w.engine.fire(seven(0), claimed).await.expect("fire");
    assert_eq!(
        r.lost, 1,
        "the deleted alarm's claim was cancelled (fenced)"
    );
    assert_eq!(
        r.rang, 1,
        "an edit that kept the occurrence does not swallow it: {r:?}"
    );
    let ringing = w.ports.queue.ringing_of(ana.user).await.expect("r");
    assert_eq!(ringing.len(), 1);
    assert_eq!(ringing[0].alarm, kept.id());
    assert_eq!(
        w.kinds(&kept).await,
        [
            (TriggerKind::Escalate(1), seven(0) + mins(5)),
            (TriggerKind::Fire, seven(1))
        ],
    );
    // Disabled while claimed: it does not ring, and has no next fire.
    w.clock.set(seven(1) - mins(1));
    let claimed = w
        .ports
        .queue
        .claim(seven(1), 10, lease)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2, "the pending escalation and the next fire");
    let current = service.get(&ana, kept.id()).await.expect("get");
    service
        .set_enabled(&ana, current.id(), false, None)
        .await
        .expect("disable");
    let r = w.engine.fire(seven(1), claimed).await.expect("fire");
    assert_eq!((r.rang, r.skipped), (0, 2));
    assert!(
        w.ports
            .queue
            .ringing_of(ana.user)
            .await
            .expect("r")
            .is_empty(),
        "a skipped follow-up ends the ringing"
    );
    assert!(
        !w.kinds(&kept)
            .await
            .iter()
            .any(|(k, _)| *k == TriggerKind::Fire),
        "a disabled alarm has no fire trigger"
    );
}

/// The queue, with a change slipped in just before the engine's commit:
/// what happens when a user edits an alarm after the engine loaded it and
/// before it committed the fire.
struct EditBeforeCommit {
    inner: Arc<dyn TriggerClaims>,
    edit:
        tokio::sync::Mutex<Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>>,
}

#[async_trait::async_trait]
impl TriggerClaims for EditBeforeCommit {
    async fn claim(
        &self,
        now: Timestamp,
        limit: u32,
        lease: SignedDuration,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.inner.claim(now, limit, lease).await
    }
    async fn complete(&self, token: LeaseToken, outcome: FireOutcome) -> Result<(), StoreError> {
        self.inner.complete(token, outcome).await
    }
    async fn complete_many(
        &self,
        items: Vec<(LeaseToken, FireOutcome)>,
    ) -> Result<Vec<LeaseToken>, StoreError> {
        if let Some(edit) = self.edit.lock().await.take() {
            edit.await;
        }
        self.inner.complete_many(items).await
    }
    async fn release(&self, token: LeaseToken) -> Result<(), StoreError> {
        self.inner.release(token).await
    }
    async fn rescue(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.rescue(now).await
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due().await
    }
    async fn due_count(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.due_count(now).await
    }
    async fn pending(&self, alarm: AlarmId) -> Result<Vec<Trigger>, StoreError> {
        self.inner.pending(alarm).await
    }
    async fn reschedule(&self, plans: Vec<TriggerPlan>) -> Result<(), StoreError> {
        self.inner.reschedule(plans).await
    }
    async fn renew(
        &self,
        tokens: Vec<LeaseToken>,
        until: Timestamp,
    ) -> Result<Vec<LeaseToken>, StoreError> {
        self.inner.renew(tokens, until).await
    }
}

async fn an_edit_between_load_and_commit_keeps_the_next_fire(w: &World) {
    let ana = w.user("ana@example.com").await;
    let alarm = w
        .alarm(&ana, SnoozePolicy::default(), EscalationPolicy::default())
        .await;
    // The user renames the alarm one second before 07:00, while the engine
    // holds the claim: the edit's own plan (07:00 again) cannot replace the
    // leased trigger, and the engine's plan comes from the older version.
    let (ports, who, id) = (w.ports.clone(), ana.clone(), alarm.id());
    let clock = w.clock.clone();
    let edit = async move {
        clock.set(seven(0) - SignedDuration::from_secs(1));
        let service = AlarmService::new(ports);
        let current = service.get(&who, id).await.expect("get");
        let mut draft = current.draft().clone();
        draft.name = alarm_domain::model::AlarmName::parse("Renamed").expect("name");
        service
            .update(&who, id, draft, current.version())
            .await
            .expect("edit");
    };
    let queue = Arc::new(EditBeforeCommit {
        inner: w.ports.queue.clone(),
        edit: tokio::sync::Mutex::new(Some(Box::pin(edit))),
    });
    let ports = EnginePorts {
        claims: queue,
        ..EnginePorts::from(w.ports.clone())
    };
    let engine = Engine::from_parts(
        ports,
        CalendarService::new(w.ports.clone()),
        RunnerConfig::default(),
    );
    let r = engine.tick(seven(0)).await.expect("tick");
    assert_eq!(r.rang, 1, "07:00 rings");
    let fires: Vec<Timestamp> = w
        .kinds(&alarm)
        .await
        .into_iter()
        .filter(|(k, _)| *k == TriggerKind::Fire)
        .map(|(_, at)| at)
        .collect();
    assert_eq!(
        fires,
        [seven(1)],
        "the edited alarm still has tomorrow's fire"
    );
}

async fn a_backlog_rings_only_the_newest_due_occurrence(w: &World) {
    use alarm_domain::schedule::{Schedule, WallTime};
    let ana = w.user("ana@example.com").await;
    let mut draft = fixtures::draft("Every minute from seven");
    draft.schedules = alarm_domain::model::Schedules::new(
        (0..6)
            .map(|m| Schedule::Daily {
                time: WallTime::parse(&format!("07:0{m}")).expect("time"),
            })
            .collect(),
    )
    .expect("schedules");
    let alarm = AlarmService::new(w.ports.clone())
        .create(&ana, draft)
        .await
        .expect("create");
    // Back five and a half minutes after 07:00: inside the grace window,
    // but six occurrences are due. One rings, the others are one report.
    let r = w.at(seven(0) + SignedDuration::from_secs(330)).await;
    assert_eq!((r.rang, r.missed), (1, 0), "{r:?}");
    let events = w.events(&ana, &alarm).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, AlarmEventKind::Missed);
    assert_eq!(events[0].1, Some(seven(0) + mins(4)));
    assert!(
        events[0].2.starts_with("5 occurrence(s)"),
        "{}",
        events[0].2
    );
    assert_eq!(events[1].0, AlarmEventKind::Triggered);
    assert_eq!(events[1].1, Some(seven(0) + mins(5)), "the newest rings");
    assert_eq!(
        w.ports.queue.ringing_of(ana.user).await.expect("r")[0]
            .occurrence
            .at,
        seven(0) + mins(5)
    );
    assert!(
        w.kinds(&alarm)
            .await
            .contains(&(TriggerKind::Fire, seven(1))),
        "then tomorrow's first"
    );
}

crate::trials! {
    world: [rings_escalates_and_expires, snooze_limits_and_dismissal, downtime_past_the_grace_window, a_crash_between_claim_and_preparation_is_bounded_by_the_lease, edits_and_deletions_win_over_claims, an_edit_between_load_and_commit_keeps_the_next_fire, a_backlog_rings_only_the_newest_due_occurrence],
}
