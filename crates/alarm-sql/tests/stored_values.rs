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
    let sql = common::connect(&config).await;
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
        store_hook(ports, ana.id(), i, &events, "whsec_test", None).await;
    }
}

/// Stores `owner`'s registration number `i` for `events`, signed with
/// `secret` (and a rotation's `previous`).
async fn store_hook(
    ports: &Ports,
    owner: alarm_domain::ids::UserId,
    i: usize,
    events: &[WebhookEvent],
    secret: &str,
    previous: Option<alarm_domain::model::PreviousSecret>,
) -> WebhookId {
    let hook = WebhookRegistration::new(
        WebhookId::generate(),
        owner,
        WebhookUrl::parse(&format!("https://hooks.example.com/{i}")).expect("url"),
        WebhookEventSet::new(events).expect("events"),
        SecretString::from(secret.to_owned()),
        true,
        0,
    )
    .with_previous(previous);
    ports
        .webhooks
        .commit(ChangeSet {
            op: WebhookOp::Create(
                hook.clone(),
                alarm_domain::limits::Quota::unlimited("webhooks"),
            ),
            audit: fixtures::audit(ports, Some(owner), "webhook.create", hook.id().as_uuid()),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
        .expect("store the registration");
    hook.id()
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
    let sql = common::connect(&db.config()).await;
    let ports = sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(ManualClock::new(fixtures::t0())),
        Arc::new(SequentialIds::new()),
    );
    counts_and_corruption(&sql, &ports, &db.url).await;
    sql.close().await;
    db.drop_db().await;
}

/// Webhook secrets are stored sealed; re-sealing seals the plain ones
/// (stored before sealing) and moves an older key's to the current one,
/// resumably, and refuses a value no configured key opens, naming the row.
async fn resealing(url: &str) {
    let connect = async |sealer: alarm_testkit::FakeSealer| {
        let sql = Sql::connect(&alarm_sql::DbConfig::from_url(url).expect("url"))
            .await
            .expect("connect")
            .with_sealer(Arc::new(sealer));
        let ports = sql.ports(
            TimeZoneDatabase::bundled(),
            Arc::new(ManualClock::new(fixtures::t0())),
            Arc::new(SequentialIds::new()),
        );
        (sql, ports)
    };
    let (old, ports) = connect(alarm_testkit::FakeSealer::new("k1", &[])).await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let mut hooks = Vec::new();
    for i in 0..3 {
        // The last one is in a rotation's overlap: two sealed values.
        let previous = (i == 2).then(|| alarm_domain::model::PreviousSecret {
            secret: SecretString::from("whsec_previous"),
            until: fixtures::t0() + alarm_domain::jiff::SignedDuration::from_hours(24),
        });
        let secret = format!("whsec_secret{i}");
        hooks.push(
            store_hook(
                &ports,
                ana.id(),
                i,
                &[WebhookEvent::Triggered],
                &secret,
                previous,
            )
            .await,
        );
    }
    let raw = Database::connect(url).await.expect("raw connection");
    let stored = async || -> Vec<String> {
        raw.query_all_raw(sea_orm::Statement::from_string(
            raw.get_database_backend(),
            "SELECT secret FROM webhooks UNION ALL SELECT previous_secret AS secret FROM webhooks WHERE previous_secret IS NOT NULL",
        ))
        .await
        .expect("read")
        .iter()
        .map(|r| r.try_get::<String>("", "secret").expect("secret"))
        .collect()
    };
    assert!(
        stored()
            .await
            .iter()
            .all(|s| s.starts_with("fake-sealed:k1:") && !s.contains("whsec")),
        "sealed as written: {:?}",
        stored().await
    );
    // One stored before sealing existed.
    raw.execute_unprepared(
        "UPDATE webhooks SET secret = 'whsec_secret0' WHERE url = 'https://hooks.example.com/0'",
    )
    .await
    .expect("a plain secret");
    old.close().await;
    // A rotation: k2 seals, k1 still opens.
    let (sql, ports) = connect(alarm_testkit::FakeSealer::new("k2", &["k1"])).await;
    let secret_of = async |i: usize| {
        use secrecy::ExposeSecret;
        ports
            .webhooks
            .get(ana.id(), hooks[i])
            .await
            .expect("readable")
            .secret()
            .expose_secret()
            .to_owned()
    };
    for i in 0..3 {
        assert_eq!(secret_of(i).await, format!("whsec_secret{i}"), "before");
    }
    let done = sql.reseal_secrets().await.expect("reseal");
    assert_eq!((done.sealed, done.rekeyed, done.current), (1, 3, 0));
    let again = sql.reseal_secrets().await.expect("reseal again");
    assert_eq!((again.sealed, again.rekeyed, again.current), (0, 0, 4));
    assert!(
        stored()
            .await
            .iter()
            .all(|s| s.starts_with("fake-sealed:k2:")),
        "{:?}",
        stored().await
    );
    for i in 0..3 {
        assert_eq!(secret_of(i).await, format!("whsec_secret{i}"), "after");
    }
    {
        use secrecy::ExposeSecret;
        let read = ports
            .webhooks
            .get(ana.id(), hooks[2])
            .await
            .expect("readable");
        let previous = read.previous().expect("the overlap");
        assert_eq!(previous.secret.expose_secret(), "whsec_previous");
        assert_eq!(
            previous.until,
            fixtures::t0() + alarm_domain::jiff::SignedDuration::from_hours(24)
        );
    }
    // A key dropped from the configuration too early.
    raw.execute_unprepared(
        "UPDATE webhooks SET secret = 'fake-sealed:k0:00:00' WHERE url = 'https://hooks.example.com/1'",
    )
    .await
    .expect("an unknown key's value");
    let e = sql.reseal_secrets().await.expect_err("refused");
    assert!(e.contains(&hooks[1].to_string()) && e.contains("k0"), "{e}");
    assert!(matches!(
        ports.webhooks.get(ana.id(), hooks[1]).await,
        Err(StoreError::Unexpected(_))
    ));
    sql.close().await;
}

async fn sqlite_reseals_webhook_secrets() {
    let (sql, _, url) = sqlite().await;
    sql.close().await;
    resealing(&url).await;
}

async fn postgres_reseals_webhook_secrets() {
    if !common::postgres_available("stored values").await {
        return;
    }
    let db = common::PgTestDb::new().await;
    resealing(&db.url).await;
    db.drop_db().await;
}

fn main() {
    run_tests(vec![
        Test::local("sqlite_reseals_webhook_secrets", || {
            Box::pin(sqlite_reseals_webhook_secrets())
        }),
        Test::postgres("postgres_reseals_webhook_secrets", || {
            Box::pin(postgres_reseals_webhook_secrets())
        }),
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
