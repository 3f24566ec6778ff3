//! Worker processes against a real PostgreSQL: a separate worker rings on time, four share a burst without a double ring, `kill -9` loses nothing, and a database outage (a TCP proxy cut and restored) is survived.

use alarm_sql::testing::{Test, run_tests};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alarm_domain::ids::AlarmId;
use alarm_domain::jiff::tz::{TimeZone, TimeZoneDatabase};
use alarm_domain::jiff::{SignedDuration, Timestamp, Unit};
use alarm_domain::model::Schedules;
use alarm_domain::model::{AlarmEventKind, Channel};
use alarm_domain::ports::{PageRequest, RandomIds};
use alarm_domain::schedule::{Schedule, WallTime};
use alarm_domain::services::{Actor, AlarmService, Ports};
use alarm_domain::trigger::TriggerKind;
use alarm_runner::delivery_key;
use alarm_sql::Sql;
use alarm_sql::testing::{PgTestDb, postgres_available};
use alarm_testkit::{ManualClock, fixtures};
use tokio::net::{TcpListener, TcpStream};

struct Worker {
    child: Child,
    ops: String,
    log: std::path::PathBuf,
}

impl Worker {
    /// Starts `alarm-worker` on `url` and waits for its ops address.
    fn start(url: &str, label: &str, extra: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!(
            "alarm-worker-{label}-{}-{}.log",
            std::process::id(),
            Timestamp::now().as_microsecond()
        ));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_alarm-worker"));
        cmd.env_clear()
            .env("DATABASE_URL", url)
            .env("DATA_ENCRYPTION_KEYS", DATA_KEY)
            .env("OPS_LISTEN_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn alarm-worker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        let ops = line
            .trim()
            .rsplit_once("ops on ")
            .map(|(_, a)| a.to_owned())
            .unwrap_or_else(|| panic!("no ops address in {line:?}; log: {}", log.display()));
        Self { child, ops, log }
    }

    async fn ready(&self) -> (u16, serde_json::Value) {
        let r = reqwest_get(&format!("{}/health/ready", self.ops)).await;
        (r.0, serde_json::from_str(&r.1).unwrap_or_default())
    }

    fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        self.child.wait().expect("wait")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A bare HTTP GET (the worker's ops port speaks plain HTTP/1.1).
async fn reqwest_get(url: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = TcpStream::connect(host).await.expect("connect");
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned(),
    )
}

struct Db {
    pg: PgTestDb,
    sql: Sql,
    ports: Ports,
}

/// The data key the workers and the test share (32 bytes, base64).
const DATA_KEY: &str = "d29ya2VyIHByb2Nlc3NlcyB0ZXN0IGRhdGEga2V5ISE=";

async fn db(label: &str) -> Option<Db> {
    if !postgres_available(label).await {
        return None;
    }
    let pg = PgTestDb::new().await;
    // The workers' data key: the webhooks the test writes, they open.
    let sealer =
        alarm_secrets::AeadSealer::from_text(&secrecy::SecretString::from(DATA_KEY.to_owned()))
            .expect("key");
    let sql = Sql::connect(&pg.config().with_max_connections(8).expect("pool"))
        .await
        .expect("connect")
        .with_sealer(Arc::new(sealer));
    // The test's own writes go by a clock a minute behind, so that making
    // thousands of alarms on a busy machine can overrun their instant
    // without the service refusing a one-off "in the past"; the workers
    // go by the database's clock as always.
    let ports = sql
        .ports(
            TimeZoneDatabase::bundled(),
            Arc::new(ManualClock::new(
                Timestamp::now() - SignedDuration::from_mins(1),
            )),
            Arc::new(RandomIds),
        )
        // Thousands of alarms for a few owners: the operator's setting
        // (QUOTA_ALARMS_PER_USER) raised, as a load test would.
        .with_limits(alarm_domain::limits::Limits {
            alarms_per_user: 1_000_000,
            ..alarm_domain::limits::Limits::default()
        });
    Some(Db { pg, sql, ports })
}

impl Db {
    async fn close(self) {
        self.sql.close().await;
        self.pg.drop_db().await;
    }

    async fn users(&self, n: usize) -> Vec<Actor> {
        let mut out = Vec::new();
        for i in 0..n {
            let u = fixtures::user(&self.ports, &format!("user{i}@example.com")).await;
            out.push(Actor {
                user: u.id(),
                role: u.role(),
                correlation_id: "worker-test".to_owned(),
            });
        }
        out
    }

    /// `n` one-off alarms ringing at `at`, spread over `owners`, made
    /// through the service (8 at a time).
    async fn alarms_at(
        &self,
        owners: &[Actor],
        n: usize,
        at: Timestamp,
    ) -> Vec<(AlarmId, Timestamp)> {
        let local = at.to_zoned(TimeZone::UTC);
        let mut draft = fixtures::draft("Burst");
        draft.schedules = Schedules::new(vec![Schedule::Once {
            date: local.date(),
            time: WallTime::from_civil(local.time()),
        }])
        .expect("schedule");
        let service = AlarmService::new(self.ports.clone());
        let mut ids = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
            let mut set = tokio::task::JoinSet::new();
            for i in chunk {
                let (service, draft, who) = (
                    service.clone(),
                    draft.clone(),
                    owners[i % owners.len()].clone(),
                );
                set.spawn(async move { service.create(&who, draft).await.expect("create").id() });
            }
            while let Some(id) = set.join_next().await {
                ids.push((id.expect("task"), at));
            }
        }
        ids
    }

    async fn delivered(&self, owners: &[Actor]) -> Vec<alarm_domain::trigger::Delivery> {
        let mut all = Vec::new();
        for o in owners {
            all.extend(
                self.ports
                    .queue
                    .deliveries(o.user)
                    .await
                    .expect("deliveries"),
            );
        }
        all
    }

    /// Waits (polling: the workers are other processes) until `n`
    /// deliveries exist; gives up after `limit`.
    async fn wait_delivered(&self, owners: &[Actor], n: usize, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = self.delivered(owners).await.len();
            if got >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {got} of {n} occurrences rang within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every alarm rang exactly once: one delivery with the derived key,
    /// one `triggered` event, nothing left pending.
    async fn assert_each_rang_once(&self, owners: &[Actor], ids: &[(AlarmId, Timestamp)]) {
        let due: HashMap<AlarmId, Timestamp> = ids.iter().copied().collect();
        let delivered = self.delivered(owners).await;
        let mut per_alarm: HashMap<AlarmId, usize> = HashMap::new();
        for d in &delivered {
            *per_alarm.entry(d.alarm).or_default() += 1;
            assert_eq!(
                d.id,
                delivery_key(
                    d.alarm,
                    due[&d.alarm],
                    TriggerKind::Fire,
                    AlarmEventKind::Triggered,
                    "in-app"
                ),
                "every delivery carries its derived idempotency key"
            );
            assert_eq!(d.channel, Channel::InApp);
        }
        assert_eq!(delivered.len(), ids.len(), "one delivery per occurrence");
        for (id, _) in ids {
            assert_eq!(per_alarm.get(id), Some(&1), "alarm {id} rang once");
        }
        let owner_of: HashMap<AlarmId, _> = delivered.iter().map(|d| (d.alarm, d.owner)).collect();
        let mut lateness = Vec::new();
        for (id, at) in ids {
            let at = *at;
            let events = self
                .ports
                .events
                .list(owner_of[id], *id, PageRequest::first())
                .await
                .expect("events")
                .items;
            let triggered: Vec<_> = events
                .iter()
                .filter(|e| e.kind == AlarmEventKind::Triggered)
                .collect();
            assert_eq!(triggered.len(), 1, "alarm {id}: {events:?}");
            assert!(triggered[0].at >= at, "never early");
            lateness.push(triggered[0].at.duration_since(at).as_millis());
            assert!(
                self.ports
                    .queue
                    .pending(*id)
                    .await
                    .expect("pending")
                    .iter()
                    .all(|t| t.kind != TriggerKind::Fire),
                "a one-off alarm has no further fire"
            );
        }
        lateness.sort_unstable();
        println!(
            "lateness over {} occurrences: p50 {} ms, max {} ms",
            lateness.len(),
            lateness[lateness.len() / 2],
            lateness[lateness.len() - 1]
        );
    }
}

fn whole_second(from_now: i64) -> Timestamp {
    (Timestamp::now() + SignedDuration::from_secs(from_now))
        .round(Unit::Second)
        .expect("round")
}

async fn a_separate_worker_rings_on_time() {
    let Some(db) = db("a_separate_worker_rings_on_time").await else {
        return;
    };
    // Polling only once a minute: the alarm below can only ring on time if
    // the database's NOTIFY wakes the worker.
    let worker = Worker::start(&db.pg.url, "on-time", &[("WORKER_IDLE_POLL_MS", "60000")]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while worker.ready().await.0 != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker never ready: {}",
            worker.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let owners = db.users(1).await;
    // Created after the worker went idle: the database's NOTIFY tells it.
    let made = Timestamp::now();
    let at = whole_second(2);
    let ids = db.alarms_at(&owners, 1, at).await;
    db.wait_delivered(&owners, 1, Duration::from_secs(20)).await;
    db.assert_each_rang_once(&owners, &ids).await;
    let rang = db.delivered(&owners).await[0].created_at;
    assert!(
        rang.duration_since(made) < SignedDuration::from_secs(30),
        "rang at {rang}, made at {made}: woken by NOTIFY, not by the minute's poll"
    );
    let (status, body) = worker.ready().await;
    assert_eq!(status, 200);
    assert_eq!(body["rang"], 1);
    // The ops port's Prometheus metrics moved by exactly what happened.
    let (status, text) = reqwest_get(&format!("{}/metrics", worker.ops)).await;
    assert_eq!(status, 200, "{text}");
    for line in [
        "alarms_triggered_total{kind=\"fire\"} 1",
        "alarm_fire_lateness_seconds_count{kind=\"fire\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    assert!(
        text.lines().any(|l| l == "alarms_missed_total 0"),
        "nothing missed, and the series exists from the start:\n{text}"
    );
    assert!(text.contains("build_info{app=\"alarm-worker\""), "{text}");
    // Counted from the database by the engine-right holder (0 elsewhere).
    for gauge in ["triggers_due ", "outbox_pending ", "outbox_dead "] {
        assert!(
            text.lines().any(|l| l.starts_with(gauge)),
            "{gauge}in:\n{text}"
        );
    }
    let exit = worker.terminate();
    assert!(exit.success(), "SIGTERM stops the worker cleanly: {exit:?}");
    db.close().await;
}

async fn four_workers_share_a_burst_and_ring_each_occurrence_once() {
    let Some(db) = db("four_workers").await else {
        return;
    };
    const N: usize = 2000;
    let owners = db.users(4).await;
    let opts = [("WORKER_BATCH", "100")];
    let workers: Vec<Worker> = (0..4)
        .map(|i| Worker::start(&db.pg.url, &format!("four-{i}"), &opts))
        .collect();
    // Due over five consecutive seconds once all four are running, so
    // they race for each second's claims.
    let start = whole_second(8);
    let mut ids = Vec::new();
    for s in 0..5 {
        ids.extend(
            db.alarms_at(&owners, N / 5, start + SignedDuration::from_secs(s))
                .await,
        );
    }
    db.wait_delivered(&owners, N, Duration::from_secs(90)).await;
    db.assert_each_rang_once(&owners, &ids).await;
    let mut shares = Vec::new();
    for w in &workers {
        shares.push(w.ready().await.1["rang"].as_u64().unwrap_or(0));
    }
    println!("occurrences rung per worker: {shares:?}");
    assert_eq!(
        shares.iter().sum::<u64>(),
        N as u64,
        "the workers' own counts add up: {shares:?}"
    );
    for w in workers {
        assert!(w.terminate().success());
    }
    db.close().await;
}

async fn kill_9_loses_nothing() {
    let Some(db) = db("kill_9").await else {
        return;
    };
    const N: usize = 1500;
    let owners = db.users(2).await;
    let opts = [("WORKER_LEASE_SECONDS", "3"), ("WORKER_BATCH", "100")];
    let mut first = Worker::start(&db.pg.url, "kill-first", &opts);
    let at = whole_second(5);
    let ids = db.alarms_at(&owners, N, at).await;
    // Wait until the first worker holds every trigger (claimed ahead of
    // their instant), or has begun ringing them, then kill it without a
    // chance to release anything.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let all_claimed = loop {
        let unclaimed = db.ports.queue.next_due().await.expect("next_due");
        if unclaimed.is_none() {
            break true;
        }
        if !db.delivered(&owners).await.is_empty() {
            break false;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first worker never claimed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    first.kill_9();
    let rang_before = db.delivered(&owners).await.len();
    let killed_at = Timestamp::now();
    let second = Worker::start(&db.pg.url, "kill-second", &opts);
    db.wait_delivered(&owners, N, Duration::from_secs(60)).await;
    println!(
        "killed with {rang_before} of {N} rung; the rest rang {} ms after the kill",
        Timestamp::now().duration_since(killed_at).as_millis()
    );
    db.assert_each_rang_once(&owners, &ids).await;
    if all_claimed && rang_before < N {
        assert!(
            second.log().contains("rescued"),
            "the second worker rescued the dead one's claims: {}",
            second.log()
        );
    }
    assert!(second.terminate().success());
    db.close().await;
}

/// A TCP proxy in front of PostgreSQL that the test can cut (every
/// connection dropped, new ones refused) and restore.
struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (c, k) = (cut.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                k.lock().expect("conns").push(task.abort_handle());
            }
        });
        Self { addr, cut, conns }
    }
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().expect("conns").drain(..) {
            c.abort();
        }
    }
    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

async fn survives_a_database_outage() {
    let Some(db) = db("outage").await else {
        return;
    };
    let upstream = "127.0.0.1:5432";
    assert!(
        db.pg.url.contains(upstream),
        "the test database is on {upstream}: {}",
        db.pg.url
    );
    let proxy = Proxy::start(upstream).await;
    let url = db.pg.url.replace(upstream, &proxy.addr.to_string());
    let worker = Worker::start(&url, "outage", &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while worker.ready().await.0 != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker never ready: {}",
            worker.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let owners = db.users(2).await;
    // Prepared ahead by the worker (committed before their instant), then
    // the worker loses the database: they ring at their instant anyway,
    // since nothing is written when it comes.
    let first = db.alarms_at(&owners, 200, whole_second(3)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while worker.ready().await.1["prepared"].as_u64() < Some(200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never prepared them: {}",
            worker.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.cut();
    // More alarms come due while the worker cannot reach the database.
    let second = db.alarms_at(&owners, 100, whole_second(2)).await;
    // The outage lasts past both instants: held on purpose, not awaited.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during: HashSet<_> = db
        .delivered(&owners)
        .await
        .iter()
        .map(|d| d.alarm)
        .collect();
    assert_eq!(
        during,
        first.iter().map(|(a, _)| *a).collect::<HashSet<_>>(),
        "during the outage exactly the prepared rings rang"
    );
    proxy.restore();
    db.wait_delivered(&owners, 300, Duration::from_secs(60))
        .await;
    let all: Vec<_> = first.into_iter().chain(second).collect();
    db.assert_each_rang_once(&owners, &all).await;
    let mut worker = worker;
    assert!(
        worker.child.try_wait().expect("status").is_none(),
        "the worker survived"
    );
    let (status, body) = worker.ready().await;
    assert_eq!(status, 200, "ready again: {body}");
    assert!(worker.terminate().success());
    db.close().await;
}

/// A webhook receiver on a loopback port (poem, as the worker's own ops
/// server): records every request's `webhook-id` after checking its
/// signature, then answers 204 after `delay`, like a slow real receiver.
#[derive(Clone)]
struct Sink {
    got: Arc<Mutex<Vec<String>>>,
    bad: Arc<Mutex<Vec<String>>>,
    secrets: Arc<Mutex<Vec<secrecy::SecretString>>>,
    /// Milliseconds each answer waits.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

#[poem::handler]
async fn sink_hook(
    headers: &poem::http::HeaderMap,
    body: Vec<u8>,
    sink: poem::web::Data<&Sink>,
) -> poem::http::StatusCode {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let id = h("webhook-id");
    let stamp: i64 = h("webhook-timestamp").parse().unwrap_or(0);
    let now = Timestamp::now().as_second();
    let signed = sink.secrets.lock().expect("secrets").iter().any(|s| {
        alarm_notify::signature::verify(s, &id, stamp, &body, &h("webhook-signature"), now, 300)
            .is_ok()
    });
    if signed {
        sink.got.lock().expect("got").push(id);
    } else {
        sink.bad.lock().expect("bad").push(id);
    }
    // Recorded on arrival: a request in flight when its sender dies counts
    // as received, as it would at a real receiver that acted on it.
    tokio::time::sleep(Duration::from_millis(sink.delay_ms.load(Ordering::Relaxed))).await;
    poem::http::StatusCode::NO_CONTENT
}

impl Sink {
    async fn start(delay: Duration) -> (Self, SocketAddr) {
        use poem::EndpointExt;
        use poem::listener::{Acceptor, Listener};
        let sink = Self {
            got: Arc::default(),
            bad: Arc::default(),
            secrets: Arc::default(),
            delay_ms: Arc::new(std::sync::atomic::AtomicU64::new(
                u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            )),
        };
        let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind sink");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("socket address");
        let app = poem::Route::new()
            .at("/hook", poem::post(sink_hook))
            .data(sink.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        (sink, addr)
    }
}

async fn kill_9_of_the_delivery_worker_loses_no_webhook() {
    let Some(db) = db("kill_9_webhooks").await else {
        return;
    };
    const N: usize = 120;
    let (sink, addr) = Sink::start(Duration::from_millis(500)).await;
    let owners = db.users(2).await;
    let hooks = alarm_domain::services::WebhookService::new(db.ports.clone());
    for o in &owners {
        let made = hooks
            .create(
                o,
                alarm_domain::model::WebhookUrl::parse(&format!("http://{addr}/hook"))
                    .expect("url"),
                alarm_domain::model::WebhookEventSet::new(&[
                    alarm_domain::model::WebhookEvent::Triggered,
                ])
                .expect("events"),
                Vec::new(),
            )
            .await
            .expect("register");
        sink.secrets.lock().expect("secrets").push(made.secret);
    }
    let at = whole_second(3);
    let local = at.to_zoned(TimeZone::UTC);
    let mut draft = fixtures::draft("Webhook burst");
    draft.channels = alarm_domain::model::ChannelSet::new(&[Channel::Webhook]).expect("channels");
    draft.schedules = Schedules::new(vec![Schedule::Once {
        date: local.date(),
        time: WallTime::from_civil(local.time()),
    }])
    .expect("schedule");
    let service = AlarmService::new(db.ports.clone());
    let mut made = Vec::with_capacity(N);
    for i in 0..N {
        let alarm = service
            .create(&owners[i % 2], draft.clone())
            .await
            .expect("create");
        made.push((owners[i % 2].user, alarm.id()));
    }
    // Small rounds and a short lease, so the survivor takes the killed
    // worker's claimed rows over within seconds.
    let settings = [
        ("WEBHOOK_ALLOW_PRIVATE", "true"),
        ("WEBHOOK_TIMEOUT_SECONDS", "2"),
        ("DELIVERY_LEASE_SECONDS", "10"),
        ("DELIVERY_BATCH", "16"),
        ("DELIVERY_CONCURRENCY", "8"),
        ("WORKER_LEASE_SECONDS", "3"),
    ];
    let mut first = Worker::start(&db.pg.url, "kill-webhooks-1", &settings);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sink.got.lock().expect("got").len() < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no webhook arrived: {}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill_9();
    // Slow until the kill (so requests are in flight when it lands), then quick.
    sink.delay_ms.store(0, Ordering::Relaxed);
    let before = sink.got.lock().expect("got").len();
    assert!(before < N, "killed mid-burst ({before} of {N} received)");
    let second = Worker::start(&db.pg.url, "kill-webhooks-2", &settings);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: std::collections::HashSet<String> =
            sink.got.lock().expect("got").iter().cloned().collect();
        if got.len() >= N {
            // Each ring's webhook-id is its `triggered` event's id, stored
            // with the fire: one per alarm, each received.
            let mut expected = std::collections::HashSet::new();
            for (owner, alarm) in &made {
                let events = db
                    .ports
                    .events
                    .list(*owner, *alarm, alarm_domain::ports::PageRequest::first())
                    .await
                    .expect("events");
                expected.extend(
                    events
                        .items
                        .iter()
                        .filter(|e| e.kind == AlarmEventKind::Triggered)
                        .map(|e| e.id.to_string()),
                );
            }
            assert_eq!(
                got, expected,
                "every ring, under its triggered event's id as webhook-id"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {N} webhooks received; log: {}",
            got.len(),
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sink.bad.lock().expect("bad").is_empty(),
        "every request was correctly signed"
    );
    // The survivor records every row delivered, the killed worker's claimed
    // rows after their lease ran out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut delivered = 0;
        for o in &owners {
            for hook in hooks.list(o).await.expect("hooks") {
                delivered += hooks
                    .deliveries(o, hook.id(), None, 100)
                    .await
                    .expect("deliveries")
                    .iter()
                    .filter(|r| r.status == alarm_domain::ports::SendStatus::Delivered)
                    .count();
            }
        }
        if delivered == N {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{delivered} of {N} rows recorded delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = sink.got.lock().expect("got").len();
    assert!(
        total > N,
        "the rows in flight at the kill were sent again (under the same webhook-id)"
    );
    println!(
        "kill -9 mid-burst: {N} webhooks, {before} before the kill, {} duplicates (same webhook-id), 0 lost",
        total - N
    );
    let exit = second.terminate();
    assert!(exit.success(), "{exit:?}");
    db.close().await;
}

fn main() {
    run_tests(vec![
        Test::postgres("a_separate_worker_rings_on_time", || {
            Box::pin(a_separate_worker_rings_on_time())
        }),
        Test::postgres(
            "four_workers_share_a_burst_and_ring_each_occurrence_once",
            || Box::pin(four_workers_share_a_burst_and_ring_each_occurrence_once()),
        ),
        Test::postgres("kill_9_loses_nothing", || Box::pin(kill_9_loses_nothing())),
        Test::postgres("survives_a_database_outage", || {
            Box::pin(survives_a_database_outage())
        }),
        Test::postgres("kill_9_of_the_delivery_worker_loses_no_webhook", || {
            Box::pin(kill_9_of_the_delivery_worker_loses_no_webhook())
        }),
    ]);
}
