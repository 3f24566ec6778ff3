//! `cargo xtask bench worker`: one alarm-worker (release) on the local PostgreSQL, in-app channel — (a) a burst of 100k alarms due at one instant, (b) 2k fires/s for 60 s — with duplicates and losses counted. Prints figures; asserts nothing about time.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alarm_domain::ids::{AlarmId, AuditId, EventId};
use alarm_domain::jiff::tz::{TimeZone, TimeZoneDatabase};
use alarm_domain::jiff::{SignedDuration, Timestamp, Unit};
use alarm_domain::model::{Alarm, AlarmEvent, AlarmEventKind, AuditRecord, Schedules};
use alarm_domain::ports::{AlarmOp, ChangeSet, RandomIds, TriggerPlan};
use alarm_domain::schedule::{Schedule, WallTime};
use alarm_domain::services::Ports;
use alarm_domain::trigger::{OccurrenceRef, Trigger, TriggerKind};
use alarm_sql::Sql;
use alarm_sql::testing::PgTestDb;
use alarm_testkit::{ManualClock, fixtures};

const OWNERS: usize = 100;

fn change(owner: &alarm_domain::model::User, at: Timestamp) -> ChangeSet<AlarmOp> {
    let id = AlarmId::generate();
    let local = at.to_zoned(TimeZone::UTC);
    let mut draft = fixtures::draft("Bench");
    draft.schedules = Schedules::new(vec![Schedule::Once {
        date: local.date(),
        time: WallTime::from_civil(local.time()),
    }])
    .expect("schedule");
    let made = at - SignedDuration::from_mins(5);
    let alarm = Alarm::create(id, owner.id(), draft, made).expect("alarm");
    let next = Trigger {
        alarm: id,
        owner: owner.id(),
        occurrence: OccurrenceRef {
            at,
            local: local.datetime(),
        },
        kind: TriggerKind::Fire,
        due_at: at,
        alarm_version: alarm.version(),
    };
    ChangeSet {
        audit: AuditRecord {
            id: AuditId::generate(),
            actor: Some(owner.id()),
            action: "alarm.create".into(),
            entity_type: "alarm".into(),
            entity_id: id.as_uuid(),
            before: None,
            after: Some("bench".into()),
            at: made,
            correlation_id: "bench".into(),
        },
        events: vec![AlarmEvent {
            id: EventId::generate(),
            alarm: id,
            owner: owner.id(),
            kind: AlarmEventKind::Created,
            at: made,
            occurrence: None,
            detail: None,
        }],
        triggers: vec![TriggerPlan::Reschedule {
            alarm: id,
            version: alarm.version(),
            next: Some(next),
        }],
        op: AlarmOp::Create(alarm),
    }
}

/// Commits `per_instant` alarms for each instant, 16 at a time; returns the seconds taken.
async fn seed(
    ports: &Ports,
    owners: &[alarm_domain::model::User],
    instants: &[Timestamp],
    per_instant: usize,
) -> f64 {
    let started = Instant::now();
    let jobs: Vec<(usize, Timestamp)> = instants
        .iter()
        .flat_map(|at| (0..per_instant).map(move |i| (i, *at)))
        .collect();
    let jobs = Arc::new(std::sync::Mutex::new(jobs));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (ports, owners, jobs) = (ports.clone(), owners.to_vec(), jobs.clone());
        set.spawn(async move {
            loop {
                let Some((i, at)) = jobs.lock().expect("jobs").pop() else {
                    return;
                };
                ports
                    .alarms
                    .commit(change(&owners[i % owners.len()], at))
                    .await
                    .expect("seed");
            }
        });
    }
    while set.join_next().await.is_some() {}
    started.elapsed().as_secs_f64()
}

struct Worker {
    child: Child,
    ops: String,
}

impl Worker {
    fn start(url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_alarm-worker"))
            .env_clear()
            .env("DATABASE_URL", url)
            .env("OPS_LISTEN_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env(
                "LOG_LEVEL",
                std::env::var("BENCH_WORKER_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn alarm-worker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        let ops = line
            .trim()
            .rsplit_once("ops on http://")
            .map(|(_, a)| a.to_owned())
            .expect("ops address");
        Self { child, ops }
    }

    fn ready(&self) -> serde_json::Value {
        let mut s = TcpStream::connect(&self.ops).expect("connect");
        write!(
            s,
            "GET /health/ready HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.ops
        )
        .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap_or_default()
    }

    /// Polls the worker's counters until `n` occurrences are done.
    fn wait_done(&self, n: u64, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let r = self.ready();
            let done = r["rang"].as_u64().unwrap_or(0) + r["missed"].as_u64().unwrap_or(0);
            if done >= n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// After a bulk load, what a running database would have done long ago:
/// vacuum and analyze the fresh rows and write them out, so that the phase
/// measures the engine rather than autovacuum and a checkpoint catching up
/// with the seeding.
fn settle(url: &str) {
    let plain = url.split('?').next().unwrap_or(url);
    for sql in ["VACUUM (ANALYZE)", "CHECKPOINT"] {
        let ok = Command::new("psql")
            .args(["-q", "-X", plain, "-c", sql])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            println!("    (could not run {sql} through psql; figures include the catch-up)");
        }
    }
}

/// Deliveries, distinct alarms and the worst commit time of the phase.
async fn audit(
    ports: &Ports,
    owners: &[alarm_domain::model::User],
    after: Timestamp,
) -> (usize, usize, Timestamp) {
    let mut rows = 0;
    let mut alarms = HashSet::new();
    let mut last = after;
    for o in owners {
        for d in ports.queue.deliveries(o.id()).await.expect("deliveries") {
            if d.occurrence.at < after {
                continue;
            }
            rows += 1;
            alarms.insert((d.alarm, d.occurrence.at));
            last = last.max(d.created_at);
        }
    }
    (rows, alarms.len(), last)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (burst_n, steady_rate, steady_secs) = if quick {
        (10_000usize, 2000usize, 10usize)
    } else {
        (100_000, 2000, 60)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let pg = PgTestDb::new().await;
        let url = format!("{}?sslmode=disable", pg.url);
        let sql = Sql::connect(&pg.config().with_max_connections(16).expect("pool"))
            .await
            .expect("connect");
        let now = Timestamp::now();
        let ports = sql.ports(
            TimeZoneDatabase::bundled(),
            Arc::new(ManualClock::new(now - SignedDuration::from_mins(10))),
            Arc::new(RandomIds),
        );
        let mut owners = Vec::new();
        for i in 0..OWNERS {
            owners.push(fixtures::user(&ports, &format!("bench{i}@example.com")).await);
        }
        println!("worker bench: 1 alarm-worker (release), PostgreSQL on loopback, {OWNERS} owners, in-app channel, batch 1000, prefetch 2 s");

        // (a) Burst: every alarm due at one instant, already due when the
        // worker starts; measured from the worker's start.
        let at = Timestamp::now().round(Unit::Second).expect("round");
        let seeded = seed(&ports, &owners, &[at], burst_n).await;
        println!(
            "(a) burst: seeded {burst_n} alarms in {seeded:.1} s ({:.0}/s through the adapter)",
            burst_n as f64 / seeded
        );
        settle(&url);
        let started = Timestamp::now();
        let clock = Instant::now();
        let worker = Worker::start(&url);
        let r = worker.wait_done(burst_n as u64, Duration::from_secs(600));
        let took = clock.elapsed().as_secs_f64();
        let (rows, distinct, last) = audit(&ports, &owners, at).await;
        let span = last.duration_since(started).as_secs_f64();
        println!(
            "    all {} rung {span:.2} s after the worker started (observed {took:.2} s): {:.0} fires/s",
            r["rang"],
            burst_n as f64 / span
        );
        println!(
            "    deliveries {rows}, distinct occurrences {distinct}: duplicates {}, losses {}, missed {}",
            rows - distinct,
            burst_n - distinct,
            r["missed"]
        );
        worker.stop();

        // (b) Steady: `steady_rate` alarms due at each whole second for
        // `steady_secs` seconds, the worker idle and waiting when they come due.
        let per_second = steady_rate;
        let total = per_second * steady_secs;
        let lead = (total as f64 / (burst_n as f64 / seeded)) * 1.5 + 5.0;
        let first = (Timestamp::now() + SignedDuration::from_secs_f64(lead))
            .round(Unit::Second)
            .expect("round");
        let instants: Vec<Timestamp> = (0..steady_secs as i64)
            .map(|s| first + SignedDuration::from_secs(s))
            .collect();
        let worker = Worker::start(&url);
        let seeded = seed(&ports, &owners, &instants, per_second).await;
        settle(&url);
        let slack = first.duration_since(Timestamp::now()).as_secs_f64();
        println!(
            "(b) steady: seeded {total} alarms ({per_second} at each of {steady_secs} whole seconds) in {seeded:.1} s; {slack:.1} s to spare before the first"
        );
        let r = worker.wait_done(total as u64, Duration::from_secs(steady_secs as u64 + lead as u64 + 120));
        let (rows, distinct, _) = audit(&ports, &owners, first).await;
        println!(
            "    lateness at commit over {} rings: p50 {} ms, p99 {} ms, max {} ms",
            r["lateness_ms"]["count"], r["lateness_ms"]["p50"], r["lateness_ms"]["p99"], r["lateness_ms"]["max"]
        );
        println!(
            "    deliveries {rows}, distinct occurrences {distinct}: duplicates {}, losses {}, missed {}",
            rows - distinct,
            total - distinct,
            r["missed"]
        );
        worker.stop();
        sql.close().await;
        pg.drop_db().await;
    });
}
