//! What the adapter makes of stored values: ones the API no longer accepts are counted for the start-up report, and integers out of range are corrupt, never read as 0.

mod common;

use alarm_sql::testing::{Test, run_tests};
use std::sync::Arc;

use alarm_domain::ids::{AlarmId, WebhookId};
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::{
    Alarm, AlarmEventKind, Channel, ChannelSet, WebhookEvent, WebhookEventSet, WebhookRegistration,
    WebhookUrl,
};
use alarm_domain::ports::{AlarmOp, ChangeSet, StoreError, TriggerPlan, WebhookOp};
use alarm_domain::services::Ports;
use alarm_sql::{Sql, UnsupportedStored};
use alarm_testkit::{ManualClock, SequentialIds, fixtures};
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;

async fn sqlite() -> (Sql, Ports, String) {
    let (config, dir) = common::sqlite_config("stored-values");
    let sql = Sql::connect(&config).await.expect("connect");
    sql.migrate_up().await.expect("migrate");
    let ports = sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(ManualClock::new(fixtures::t0())),
        Arc::new(SequentialIds::new()),
    );
    (sql, ports, format!("sqlite://{}/alarms.db", dir.display()))
}

/// An alarm stored with the push channel and a registration subscribed to
/// `alarm.missed`, as the API accepted them before it refused both.
async fn store_unsupported(ports: &Ports) {
    let ana = fixtures::user(ports, "ana@example.com").await;
    let mut draft = fixtures::draft("Old push alarm");
    draft.channels = ChannelSet::new(&[Channel::InApp, Channel::Push]).expect("channels");
    let id = AlarmId::from_uuid(ports.ids.next_uuid()).expect("id");
    let alarm = Alarm::create(id, ana.id(), draft, fixtures::t0()).expect("alarm");
    ports
        .alarms
        .commit(ChangeSet {
            op: AlarmOp::Create(
                alarm.clone(),
                alarm_domain::limits::Quota::unlimited("alarms"),
            ),
            audit: fixtures::audit(ports, Some(ana.id()), "alarm.create", id.as_uuid()),
            events: vec![fixtures::event(
                ports,
                id,
                ana.id(),
                AlarmEventKind::Created,
            )],
            triggers: vec![TriggerPlan::Reschedule {
                alarm: id,
                version: alarm.version(),
                next: None,
            }],
        })
        .await
        .expect("store the push alarm");
    fixtures::alarm(ports, ana.id(), "Plain", None).await;
    for (i, events) in [
        vec![WebhookEvent::Triggered, WebhookEvent::Missed],
        vec![WebhookEvent::Triggered],
    ]
    .into_iter()
    .enumerate()
    {
        let hook = WebhookRegistration::new(
            WebhookId::generate(),
            ana.id(),
            WebhookUrl::parse(&format!("https://hooks.example.com/{i}")).expect("url"),
            WebhookEventSet::new(&events).expect("events"),
            SecretString::from("whsec_test"),
            true,
            0,
        );
        ports
            .webhooks
            .commit(ChangeSet {
                op: WebhookOp::Create(
                    hook.clone(),
                    alarm_domain::limits::Quota::unlimited("webhooks"),
                ),
                audit: fixtures::audit(
                    ports,
                    Some(ana.id()),
                    "webhook.create",
                    hook.id().as_uuid(),
                ),
                events: Vec::new(),
                triggers: Vec::new(),
            })
            .await
            .expect("store the registration");
    }
}

async fn counts_and_corruption(sql: &Sql, ports: &Ports, url: &str) {
    assert_eq!(
        sql.unsupported_stored().await.expect("count"),
        UnsupportedStored {
            alarms: 0,
            webhooks: 0
        },
        "an empty database has nothing to report"
    );
    store_unsupported(ports).await;
    assert_eq!(
        sql.unsupported_stored().await.expect("count"),
        UnsupportedStored {
            alarms: 1,
            webhooks: 0
        },
        "one push alarm of two; every event is emitted now, so no registration is reported"
    );
    let owner = fixtures::user(ports, "bob@example.com").await;
    let alarm = fixtures::alarm(ports, owner.id(), "Corrupted", None).await;
    let raw = Database::connect(url).await.expect("raw connection");
    // A column without a CHECK constraint (the version has one on
    // PostgreSQL), written behind the adapter's back.
    raw.execute_unprepared("UPDATE alarms SET snooze_minutes = -5 WHERE name = 'Corrupted'")
        .await
        .expect("corrupt the snooze minutes");
    match ports.alarms.get(owner.id(), alarm.id()).await {
        Err(StoreError::Unexpected(e)) => assert!(
            e.to_string().contains("out of range"),
            "the error says why: {e}"
        ),
        other => panic!("negative stored snooze minutes must be corrupt, got {other:?}"),
    }
}

async fn sqlite_counts_unsupported_values_and_refuses_out_of_range_integers() {
    let (sql, ports, url) = sqlite().await;
    counts_and_corruption(&sql, &ports, &url).await;
}

async fn postgres_counts_unsupported_values_and_refuses_out_of_range_integers() {
    if !common::postgres_available("stored values").await {
        return;
    }
    let db = common::PgTestDb::new().await;
    let sql = Sql::connect(&db.config()).await.expect("connect");
    let ports = sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(ManualClock::new(fixtures::t0())),
        Arc::new(SequentialIds::new()),
    );
    counts_and_corruption(&sql, &ports, &db.url).await;
    sql.close().await;
    db.drop_db().await;
}

fn main() {
    run_tests(vec![
        Test::local(
            "sqlite_counts_unsupported_values_and_refuses_out_of_range_integers",
            || Box::pin(sqlite_counts_unsupported_values_and_refuses_out_of_range_integers()),
        ),
        Test::postgres(
            "postgres_counts_unsupported_values_and_refuses_out_of_range_integers",
            || Box::pin(postgres_counts_unsupported_values_and_refuses_out_of_range_integers()),
        ),
    ]);
}
