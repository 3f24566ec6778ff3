//! `cargo xtask bench store`: alarm creations through the adapter against pgbench replaying the same transaction, and claim + complete throughput with 1M alarms loaded.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alarm_domain::ids::{AlarmId, AuditId, EventId, UserId};
use alarm_domain::jiff::SignedDuration;
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::{Alarm, AlarmEvent, AlarmEventKind, AuditRecord};
use alarm_domain::ports::{AlarmOp, ChangeSet, FireOutcome, TriggerPlan};
use alarm_domain::services::Ports;
use alarm_domain::trigger::{RingingChange, TriggerKind};
use alarm_sql::{DbConfig, Sql};
use alarm_testkit::{ManualClock, SequentialIds, fixtures};
use sea_orm::{ConnectionTrait, Database};

const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DB: &str = "alarm_bench";

/// Connects with the testkit's fake sealer: the bench measures the store,
/// not the AEAD.
async fn connect(config: &alarm_sql::DbConfig) -> Sql {
    Sql::connect(config)
        .await
        .expect("connect")
        .with_sealer(std::sync::Arc::new(alarm_testkit::FakeSealer::new(
            "k1",
            &[],
        )))
}

fn base() -> String {
    let admin = std::env::var("ALARM_TEST_PG_URL").unwrap_or_else(|_| ADMIN.to_owned());
    admin
        .rsplit_once('/')
        .map_or(admin.clone(), |(b, _)| b.to_owned())
}

async fn admin(sql: &str) {
    let db = Database::connect(format!("{}/postgres", base()))
        .await
        .expect("admin connection");
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = db.close().await;
}

async fn fresh(pool: u32) -> (Sql, Ports) {
    admin(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)")).await;
    admin(&format!("CREATE DATABASE {DB}")).await;
    let config = DbConfig::from_url(&format!("{}/{DB}", base()))
        .expect("url")
        .with_max_connections(pool)
        .expect("pool");
    let sql = connect(&config).await;
    sql.migrate_up().await.expect("migrate");
    let ports = sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(ManualClock::new(fixtures::t0())),
        Arc::new(SequentialIds::new()),
    );
    (sql, ports)
}

fn create_change(owner: UserId, n: u64) -> ChangeSet<AlarmOp> {
    let id = AlarmId::generate();
    let alarm = Alarm::create(id, owner, fixtures::draft("Bench"), fixtures::t0()).expect("alarm");
    let next = fixtures::trigger(
        &alarm,
        fixtures::at(3600 + (n % 86_400) as i64),
        TriggerKind::Fire,
    );
    ChangeSet {
        audit: AuditRecord {
            id: AuditId::generate(),
            actor: Some(owner),
            action: "alarm.create".into(),
            entity_type: "alarm".into(),
            entity_id: id.as_uuid(),
            before: None,
            after: Some("bench".into()),
            at: fixtures::t0(),
            correlation_id: "bench".into(),
        },
        events: vec![AlarmEvent {
            id: EventId::generate(),
            alarm: id,
            owner,
            kind: AlarmEventKind::Created,
            at: fixtures::t0(),
            occurrence: None,
            detail: None,
            data: Some(alarm_domain::sending::event_data(
                &alarm,
                None,
                None,
                alarm_domain::sending::EventChange::Nothing,
            )),
        }],
        triggers: vec![TriggerPlan::Reschedule {
            alarm: id,
            version: alarm.version(),
            next: Some(next),
        }],
        op: AlarmOp::Create(alarm, alarm_domain::limits::Quota::unlimited("alarms")),
    }
}

/// The adapter's alarm-creation transaction, statement for statement, as a
/// pgbench script, used only when the server log cannot be read.
const PGBENCH_SCRIPT: &str = r#"
SELECT gen_random_uuid() AS id, gen_random_uuid() AS audit, gen_random_uuid() AS event \gset
BEGIN;
INSERT INTO alarms (id, owner_id, name, description, enabled, time_zone, schedules, snooze_minutes, max_snoozes, escalation_max_level, escalation_first_delay_min, escalation_repeat_delay_min, channels, sound_id, version, created_us, updated_us) VALUES (:id, :owner, 'Bench', '', true, 'UTC', '[{"kind":"daily","time":"07:00"}]', 5, 3, 3, 5, 10, 1, NULL, 1, 1767592800000000, 1767592800000000);
INSERT INTO audit_log (id, actor_id, action, entity_type, entity_id, before_summary, after_summary, at_us, correlation_id) VALUES (:audit, :owner, 'alarm.create', 'alarm', :id, NULL, 'bench', 1767592800000000, 'bench');
INSERT INTO alarm_events (id, alarm_id, owner_id, kind, at_us, occurrence_us, detail) VALUES (:event, :id, :owner, 'created', 1767592800000000, NULL, NULL);
SELECT version FROM alarms WHERE id = :id;
DELETE FROM triggers WHERE alarm_id = :id AND kind = 'fire' AND lease_token IS NULL;
INSERT INTO triggers (alarm_id, occurrence_us, kind, owner_id, occurrence_local, due_us, alarm_version, lease_token, lease_until_us) VALUES (:id, 1767596400000000, 'fire', :owner, '2026-01-05T07:00:00', 1767596400000000, 1, NULL, NULL) ON CONFLICT (alarm_id, occurrence_us, kind) DO UPDATE SET owner_id = excluded.owner_id, occurrence_local = excluded.occurrence_local, due_us = excluded.due_us, alarm_version = excluded.alarm_version WHERE triggers.lease_token IS NULL;
COMMIT;
"#;

/// Runs one alarm creation through the adapter with statement logging on,
/// and turns the transaction the server logged into a pgbench script: the
/// exact statements, with the per-alarm ids made pgbench variables.
async fn captured_script(owner: UserId) -> Result<String, String> {
    let log = alarm_sql::testing::StatementLog::start(DB).await?;
    let config = DbConfig::from_url(&format!("{}/{DB}", base()))
        .expect("url")
        .with_max_connections(1)
        .expect("pool");
    let sql = connect(&config).await;
    let ports = sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(ManualClock::new(fixtures::t0())),
        Arc::new(SequentialIds::new()),
    );
    let change = create_change(owner, 7);
    let (AlarmOp::Create(alarm, _), audit, event) =
        (&change.op, change.audit.id, change.events[0].id)
    else {
        return Err("unexpected change set".into());
    };
    let ids = [
        (alarm.id().as_uuid(), ":id"),
        (audit.as_uuid(), ":audit"),
        (event.as_uuid(), ":event"),
    ];
    ports
        .alarms
        .commit(change.clone())
        .await
        .map_err(|e| e.to_string())?;
    sql.close().await;
    let found = log.finish(|t| !t.is_empty()).await?;
    let mut script = vec!["SELECT gen_random_uuid() AS id, gen_random_uuid() AS audit, gen_random_uuid() AS event \\gset".to_owned(), "BEGIN;".to_owned()];
    for stmt in &found[0].statements {
        let mut sql = stmt.inlined();
        for (uuid, var) in ids {
            sql = sql.replace(&format!("'{uuid}'"), var);
        }
        script.push(format!("{sql};"));
    }
    script.push("COMMIT;".to_owned());
    Ok(script.join("\n") + "\n")
}

async fn creations(seconds: u64) -> (f64, f64) {
    const TASKS: u64 = 16;
    let (sql, ports) = fresh(16).await;
    let owner = fixtures::user(&ports, "bench@example.com").await.id();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let (ports, done) = (ports.clone(), done.clone());
        tasks.spawn(async move {
            let mut n = t;
            while Instant::now() < deadline {
                ports
                    .alarms
                    .commit(create_change(owner, n))
                    .await
                    .expect("create");
                done.fetch_add(1, Ordering::Relaxed);
                n += TASKS;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let ours = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    sql.close().await;

    let (text, origin) = match captured_script(owner).await {
        Ok(text) => (text, "captured from the server log".to_owned()),
        Err(why) => (
            PGBENCH_SCRIPT.to_owned(),
            format!("hand-written copy ({why})"),
        ),
    };
    println!("    pgbench script: {origin}");
    for line in text.lines() {
        println!("      {line}");
    }
    let script = std::env::temp_dir().join("alarm-bench-create.sql");
    std::fs::write(&script, &text).expect("write script");
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            "16",
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&script)
        .args([
            "-D",
            &format!("owner={owner}"),
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            DB,
        ])
        .output()
        .expect("run pgbench (Debian package postgresql-contrib / postgresql client)");
    (ours, alarm_sql::testing::pgbench_tps(&out))
}

async fn load_million(sql_admin: &sea_orm::DatabaseConnection, owner: UserId, due_now: u64) {
    // 1M alarms (UUID v7 ids built in SQL: PostgreSQL 15 has no uuidv7()),
    // each with one fire trigger; `due_now` of them due at t0,
    // the rest spread over the next 30 days (so the claim scans a range of
    // a large index, as in production).
    let t0 = fixtures::t0().as_microsecond();
    let owner = owner.as_uuid();
    sql_admin
        .execute_unprepared(&format!(
            "INSERT INTO alarms SELECT (lpad(to_hex(1767592800000 + g), 12, '0') || '7' || substr(md5(g::text), 1, 3) || '8' || substr(md5(g::text), 4, 15))::uuid, '{owner}', 'Load ' || g, '', true, 'UTC', '[{{\"kind\":\"daily\",\"time\":\"07:00\"}}]', 5, 3, 3, 5, 10, 1, NULL, 1, {t0}, {t0} FROM generate_series(1, 1000000) g"
        ))
        .await
        .expect("load alarms");
    sql_admin
        .execute_unprepared(&format!(
            "INSERT INTO triggers SELECT id, {t0} + (row_number() OVER ()) , 'fire', owner_id, '2026-01-05T06:00:00', \
             CASE WHEN row_number() OVER () <= {due_now} THEN {t0} ELSE {t0} + 1000000 * (1 + (row_number() OVER ()) % 2592000) END, 1, NULL, NULL FROM alarms"
        ))
        .await
        .expect("load triggers");
    sql_admin
        .execute_unprepared("ANALYZE")
        .await
        .expect("analyze");
}

/// A realistic fire outcome: the `triggered` event and one in-app delivery.
fn fire_outcome(c: &alarm_domain::trigger::Claimed) -> FireOutcome {
    FireOutcome {
        events: vec![AlarmEvent {
            id: EventId::generate(),
            alarm: c.trigger.alarm,
            owner: c.trigger.owner,
            kind: AlarmEventKind::Triggered,
            at: fixtures::t0(),
            occurrence: Some(c.trigger.occurrence.at),
            detail: None,
            // What the judge stores, at its size (about 250 bytes).
            data: Some(format!(
                "{{\"alarm_id\":\"{}\",\"alarm_name\":\"Bench\",\"user_id\":\"{}\",\"time_zone\":\"UTC\",\"enabled\":true,\"occurrence_at\":\"{}\",\"local_time\":\"{}\",\"detail\":\"fire lateness_ms=0\"}}",
                c.trigger.alarm,
                c.trigger.owner,
                c.trigger.occurrence.at,
                c.trigger.occurrence.local
            )),
        }],
        deliveries: vec![alarm_domain::trigger::Delivery {
            id: uuid::Uuid::now_v7(),
            owner: c.trigger.owner,
            alarm: c.trigger.alarm,
            occurrence: c.trigger.occurrence,
            kind: c.trigger.kind,
            channel: alarm_domain::model::Channel::InApp,
            created_at: fixtures::t0(),
        }],
        follow_up: None,
        next: None,
        ringing: RingingChange::None,
    }
}

/// Claim + complete for `seconds` with `workers` tasks; `batched` completes
/// each claimed batch in one transaction (`complete_many`), as a worker
/// does, instead of one transaction per trigger.
async fn claims(batch: u32, batched: bool, seconds: u64, workers: usize, ports: &Ports) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (ports, done) = (ports.clone(), done.clone());
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let claimed = ports
                    .queue
                    .claim(fixtures::t0(), batch, SignedDuration::from_secs(60))
                    .await
                    .expect("claim");
                if claimed.is_empty() {
                    return;
                }
                let n = claimed.len() as u64;
                if batched {
                    let items = claimed.iter().map(|c| (c.token, fire_outcome(c))).collect();
                    let lost = ports
                        .queue
                        .complete_many(items)
                        .await
                        .expect("complete_many");
                    assert!(
                        lost.is_empty(),
                        "no lease may be lost in a benchmark without rescues"
                    );
                } else {
                    for c in &claimed {
                        ports
                            .queue
                            .complete(c.token, fire_outcome(c))
                            .await
                            .expect("complete");
                    }
                }
                done.fetch_add(n, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let seconds = if quick { 3 } else { 10 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("store benchmark on PostgreSQL at {} (2 cores shared by client and server)", base());
        let (ours, pg) = creations(seconds).await;
        println!("\n(a) alarm creations, 16 concurrent tasks, {seconds} s each side");
        println!("    adapter (full change set)      {ours:>9.0} creations/s");
        println!("    pgbench, same transaction      {pg:>9.0} tps");
        println!("    ratio adapter / pgbench        {:>9.2}   (goal >= 0.6)", ours / pg);

        let due_now: u64 = if quick { 100_000 } else { 600_000 };
        let (sql, ports) = fresh(8).await;
        let owner = fixtures::user(&ports, "load@example.com").await;
        // One connection, so the session's PREPARE and SET stay together.
        let mut options = sea_orm::ConnectOptions::new(format!("{}/{DB}", base()));
        options.max_connections(1).sqlx_logging(false);
        let raw = Database::connect(options).await.expect("connect");
        let started = Instant::now();
        load_million(&raw, owner.id(), due_now).await;
        println!("\n(b) claim + complete, 1,000,000 alarms loaded in {:.1} s, {due_now} due", started.elapsed().as_secs_f64());
        // The plan of the claim exactly as the adapter sends it: a prepared
        // UPDATE with parameters, forced to the generic plan PostgreSQL
        // switches to after a few executions (no literal LIMIT to lean on).
        for setup in [
            "SET plan_cache_mode = force_generic_plan",
            "PREPARE claim(bigint, bigint, bigint) AS UPDATE triggers SET lease_token = gen_random_uuid(), lease_until_us = $1 \
             WHERE ctid = ANY(ARRAY(SELECT ctid FROM triggers \
             WHERE lease_token IS NULL AND due_us <= $2 ORDER BY due_us LIMIT $3 FOR UPDATE SKIP LOCKED)) RETURNING *",
        ] {
            raw.execute_unprepared(setup).await.expect("prepare the claim");
        }
        let t0 = fixtures::t0().as_microsecond();
        let plan = raw
            .query_all_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, format!("EXPLAIN EXECUTE claim({t0}, {t0}, 1000)")))
            .await
            .expect("explain");
        println!("    EXPLAIN EXECUTE of the prepared claim (generic plan):");
        for row in plan {
            println!("      {}", row.try_get::<String>("", "QUERY PLAN").unwrap_or_default());
        }
        println!("    each completion commits a `triggered` event and an in-app delivery; 4 workers");
        for batch in [1u32, 100, 1000] {
            let one_by_one = claims(batch, false, seconds, 4, &ports).await;
            let rate = claims(batch, true, seconds, 4, &ports).await;
            println!(
                "    batch {batch:>4}: one transaction per trigger {one_by_one:>7.0}/s, complete_many {rate:>7.0}/s{}",
                if batch == 1000 { "   (goal >= 20000/s)" } else { "" }
            );
        }
        let _ = raw.close().await;
        sql.close().await;
        admin(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)")).await;
    });
}
