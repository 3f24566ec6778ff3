//! `cargo xtask bench worker`: one alarm-worker (release) on the local PostgreSQL — (a) in-app burst of 100k alarms due at one instant when the worker starts, (a') the same burst created ahead with the worker running (prepared), (b) 2k fires/s for 60 s with a sampled poller, (b') 2k webhooks due each second for 60 s, (c) a 100k burst delivered as signed webhooks to a local sink that verifies every signature, (c') the same beside a slow host, and the bare-client ceiling — with duplicates and losses counted. Prints figures; asserts nothing about time. `-- --quick` runs 10k-sized phases; `-- --webhooks` runs only (b'), (c), (c') and the ceiling, `-- --steady` only (b'), `-- --bursts` only (c), (c') and the ceiling (three bursts, each on emptied tables: alone, beside the slow host, alone again, so a drift over the run cancels; `--slow-first` runs beside, alone, beside), `-- --in-app` only (a), (a') and (b), `-- --peer` (or `cargo xtask bench peer`) graphile-worker beside (a), `-- --ceiling` only (a) and its pgbench replay ceiling.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alarm_domain::ids::{AlarmId, AuditId, EventId};
use alarm_domain::jiff::tz::{TimeZone, TimeZoneDatabase};
use alarm_domain::jiff::{SignedDuration, Timestamp, Unit};
use alarm_domain::model::{
    Alarm, AlarmEvent, AlarmEventKind, AuditRecord, Channel, ChannelSet, EscalationPolicy,
    Schedules,
};
use alarm_domain::ports::{AlarmOp, ChangeSet, RandomIds, TriggerPlan};
use alarm_domain::schedule::{Schedule, WallTime};
use alarm_domain::services::Ports;
use alarm_domain::trigger::{OccurrenceRef, Trigger, TriggerKind};
use alarm_sql::Sql;
use alarm_sql::testing::PgTestDb;
use alarm_testkit::{ManualClock, fixtures};

#[path = "worker/replay.rs"]
mod replay;

const OWNERS: usize = 100;

/// The data key the workers and the bench share (32 bytes, base64).
const DATA_KEY: &str = "YmVuY2ggd29ya2VyIGRhdGEga2V5LCAzMiBieXRlcyE=";

fn change(
    owner: &alarm_domain::model::User,
    at: Timestamp,
    channel: Channel,
) -> ChangeSet<AlarmOp> {
    let id = AlarmId::generate();
    let local = at.to_zoned(TimeZone::UTC);
    let mut draft = fixtures::draft("Bench");
    draft.channels = ChannelSet::new(&[channel]).expect("channels");
    // No escalation: a ring's re-notifications five minutes later would
    // land in the next phase and be measured with it.
    draft.escalation = EscalationPolicy::new(0, 5, 5).expect("no escalation");
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

/// Commits `per_instant` alarms for each instant, 16 at a time; returns the seconds taken.
async fn seed(
    ports: &Ports,
    owners: &[alarm_domain::model::User],
    instants: &[Timestamp],
    per_instant: usize,
    channel: Channel,
) -> f64 {
    seed_sampled(ports, owners, instants, per_instant, channel, 0)
        .await
        .0
}

/// One alarm a poller watches: its owner, itself and its instant.
type Sample = (alarm_domain::ids::UserId, AlarmId, Timestamp);

/// [`seed`], also returning `sampled` alarms of each instant to watch.
async fn seed_sampled(
    ports: &Ports,
    owners: &[alarm_domain::model::User],
    instants: &[Timestamp],
    per_instant: usize,
    channel: Channel,
    sampled: usize,
) -> (f64, Vec<Sample>) {
    let started = Instant::now();
    let samples: Arc<std::sync::Mutex<Vec<Sample>>> = Arc::default();
    let jobs: Vec<(usize, Timestamp)> = instants
        .iter()
        .flat_map(|at| (0..per_instant).map(move |i| (i, *at)))
        .collect();
    let jobs = Arc::new(std::sync::Mutex::new(jobs));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (ports, owners, jobs, samples) = (
            ports.clone(),
            owners.to_vec(),
            jobs.clone(),
            samples.clone(),
        );
        set.spawn(async move {
            loop {
                let Some((i, at)) = jobs.lock().expect("jobs").pop() else {
                    return;
                };
                let owner = &owners[i % owners.len()];
                let change = change(owner, at, channel);
                let alarm = change.triggers[0].alarm();
                ports.alarms.commit(change).await.expect("seed");
                if i < sampled {
                    samples
                        .lock()
                        .expect("samples")
                        .push((owner.id(), alarm, at));
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let mut samples = std::mem::take(&mut *samples.lock().expect("samples"));
    samples.sort_by_key(|(_, _, at)| *at);
    (started.elapsed().as_secs_f64(), samples)
}

/// What a sampled poller saw: each sampled ring's first sighting minus its
/// instant (ms), and how many were seen before their instant.
struct Sighted {
    after_ms: Vec<i64>,
    early: usize,
    unseen: usize,
}

/// Watches `samples` as users would: each one's ringing list (through
/// the store, so with the database's visibility rule) every 5 ms from
/// 20 ms before its instant until it shows, at most 5 s.
async fn poll_samples(ports: Ports, samples: Vec<Sample>) -> Sighted {
    let mut set = tokio::task::JoinSet::new();
    for (owner, alarm, at) in samples {
        let ports = ports.clone();
        set.spawn(async move {
            let start = at - SignedDuration::from_millis(20);
            let wait = start.duration_since(Timestamp::now());
            if wait.is_positive() {
                tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
            }
            let give_up = at + SignedDuration::from_secs(5);
            loop {
                let shown = !ports
                    .queue
                    .ringing(owner, alarm)
                    .await
                    .expect("ringing")
                    .is_empty();
                // The answer's arrival: the database read its clock before
                // it, so an answer showing the ring before the instant is
                // early whatever the query's travel time.
                let answered = Timestamp::now();
                if shown {
                    return Some(answered.duration_since(at).as_millis() as i64);
                }
                if answered > give_up {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }
    let mut out = Sighted {
        after_ms: Vec::new(),
        early: 0,
        unseen: 0,
    };
    while let Some(seen) = set.join_next().await {
        match seen.expect("poller") {
            Some(ms) if ms < 0 => out.early += 1,
            Some(ms) => out.after_ms.push(ms),
            None => out.unseen += 1,
        }
    }
    out.after_ms.sort_unstable();
    out
}

fn print_sighted(seen: &Sighted) {
    println!(
        "    sampled poller ({} rings, 5 ms polls from 20 ms before): answers showing a ring before its instant {}, unseen after 5 s {}; first answer showing it, after the instant: p50 {} ms, p99 {} ms, max {} ms",
        seen.after_ms.len() + seen.early + seen.unseen,
        seen.early,
        seen.unseen,
        percentile(&seen.after_ms, 0.50),
        percentile(&seen.after_ms, 0.99),
        seen.after_ms.last().copied().unwrap_or(0)
    );
}

/// The worker's commit counts: prepared ahead of their instant, and at or
/// after it.
fn print_commits(r: &serde_json::Value, cpu: f64, secs: f64) {
    println!(
        "    rings committed ahead of their instant {}, at or after it {}; worker CPU {:.0} % of one core over {secs:.1} s",
        r["prepared"],
        r["committed_late"],
        100.0 * cpu / secs
    );
}

struct Worker {
    child: Child,
    ops: String,
}

impl Worker {
    fn start(url: &str) -> Self {
        Self::start_with(url, &[])
    }

    fn start_with(url: &str, extra: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_alarm-worker"))
            .env_clear()
            .envs(worker_settings())
            .envs(extra.iter().copied())
            .env("DATABASE_URL", url)
            .env("DATA_ENCRYPTION_KEYS", DATA_KEY)
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

    /// The body of `GET path` on the worker's ops port.
    fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(&self.ops).expect("connect");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.ops
        )
        .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }

    /// The worker's health document.
    fn ready(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/health/ready")).unwrap_or_default()
    }

    /// Polls the worker's counters until `n` occurrences are done.
    async fn wait_done(&self, n: u64, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let r = self.ready();
            let done = r["rang"].as_u64().unwrap_or(0) + r["missed"].as_u64().unwrap_or(0);
            if done >= n || Instant::now() > deadline {
                return r;
            }
            // Not a thread sleep: the bench's pollers share the runtime.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The worker's CPU time so far (user + system), in clock ticks of 10 ms.
    fn cpu_ticks(&self) -> u64 {
        alarm_appkit::metrics::cpu_ticks(Some(self.child.id())).unwrap_or(0)
    }

    /// The send times and each stage of the sender's store work, from one
    /// scrape of the worker's `/metrics`.
    fn readings(&self) -> Readings {
        let out = self.get("/metrics");
        Readings {
            sends: histogram_in(&out, "webhook_delivery_duration_seconds", ""),
            stages: alarm_notify::STAGES
                .iter()
                .map(|stage| {
                    histogram_in(
                        &out,
                        "delivery_stage_duration_seconds",
                        &format!("{{stage=\"{stage}\"}}"),
                    )
                })
                .collect(),
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Sums and counts read from the worker's `/metrics`: its webhook send
/// times, and each stage of its store work (`delivery_stage_duration_seconds`)
/// in `alarm_notify::STAGES` order.
struct Readings {
    sends: (f64, f64),
    stages: Vec<(f64, f64)>,
}

/// The sum and count of the histogram series `name` with `labels`
/// (`{stage="record"}`, or empty) in a Prometheus text exposition.
fn histogram_in(out: &str, name: &str, labels: &str) -> (f64, f64) {
    let read = |suffix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_{suffix}{labels} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    (read("sum"), read("count"))
}

/// How busy each step of the sender's store work was over `span` seconds,
/// from two [`Readings`]: the claim loop and the
/// recorder run one step at a time, so a share near 100 % is the step that
/// bounds the deliveries per second (confirmations of held rows can
/// overlap, so theirs can pass 100 %).
fn print_stages(before: &[(f64, f64)], after: &[(f64, f64)], span: f64) {
    let parts: Vec<String> = alarm_notify::STAGES
        .iter()
        .zip(before.iter().zip(after))
        .filter(|(_, (b, a))| a.1 > b.1)
        .map(|(stage, (b, a))| {
            let (took, count) = (a.0 - b.0, a.1 - b.1);
            format!(
                "{stage} {:.0} % ({count:.0} × {:.1} ms)",
                100.0 * took / span,
                1000.0 * took / count
            )
        })
        .collect();
    println!(
        "    the sender's store work, busy share of the {span:.1} s: {}",
        parts.join(", ")
    );
}

/// With `BENCH_PG_STATEMENTS` set to the URL of a database where the
/// `pg_stat_statements` extension exists: resets its counts (`None`), or
/// prints the statements that took PostgreSQL the most time since
/// (`Some(phase)`). For finding where a phase's database time goes; the
/// extension must be preloaded by the server, which the bench never sets.
fn pg_statements(phase: Option<&str>) {
    let Ok(url) = std::env::var("BENCH_PG_STATEMENTS") else {
        return;
    };
    let sql = match phase {
        None => "SELECT pg_stat_statements_reset()".to_owned(),
        // Statements of one kind differ only in their lists' lengths:
        // summed by their first 60 characters.
        // Planning is counted apart (`plan_ms`), and only where the server
        // sets `pg_stat_statements.track_planning`.
        Some(_) => "SELECT sum(calls) AS calls, round(sum(total_exec_time)) AS total_ms, \
             round((1000 * sum(total_exec_time) / greatest(sum(rows), 1))::numeric, 1) AS us_per_row, \
             round(sum(total_plan_time)) AS plan_ms, \
             sum(rows) AS rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 60) AS statement \
             FROM pg_stat_statements GROUP BY 6 ORDER BY 2 DESC LIMIT 12"
            .to_owned(),
    };
    let out = Command::new("psql")
        .args(["-X", "-q", &url, "-c", &sql])
        .output();
    match (phase, out) {
        (_, Ok(out)) if !out.status.success() => println!(
            "    pg_stat_statements could not be read: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        (Some(phase), Ok(out)) => {
            println!("    PostgreSQL's top statements in {phase}:");
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        (_, Err(e)) => println!("    psql could not run for pg_stat_statements: {e}"),
        (None, Ok(_)) => {}
    }
}

/// Worker settings for every worker the bench starts, from
/// `BENCH_WORKER_ENV` (`NAME=value` pairs, comma-separated): the bench
/// otherwise starts workers with a cleared environment and their defaults.
/// A phase's own settings (private addresses for the sinks, telemetry)
/// win over these.
fn worker_settings() -> Vec<(String, String)> {
    std::env::var("BENCH_WORKER_ENV")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// After a bulk load, what a running database would have done long ago:
/// vacuum and analyze the fresh rows and write them out, so that the phase
/// measures the engine rather than autovacuum and a checkpoint catching up
/// with the seeding.
fn settle(url: &str) {
    for sql in ["VACUUM (ANALYZE)", "CHECKPOINT"] {
        if !psql(url, sql) {
            println!("    (could not run {sql} through psql; figures include the catch-up)");
        }
    }
}

/// Empties the tables a burst fills (alarms and what they made, the
/// outbox, the audit log), so that each burst of phase (c) starts on the
/// same database: owners and registrations stay. Without it a later burst
/// ran on the earlier ones' history (100k more rows in the outbox and
/// beside it each time), and its store work took longer (the recorder's
/// `finish` 5.9 ms a call in the first burst, 8.1 in the third, one run).
/// Not analyzed here (the seeding's `settle` does it): `TRUNCATE` leaves
/// the tables' size unknown to the planner, as on a new database, where an
/// analyzed empty table would be planned as empty while the seeding fills
/// it (with autovacuum off on this machine, the seeding took twice as
/// long).
fn forget_history(url: &str) {
    assert!(
        psql(
            url,
            "TRUNCATE alarms, alarm_routines, triggers, ringing, alarm_events, deliveries, outbox, audit_log, replan_jobs"
        ),
        "could not empty the burst's tables through psql"
    );
}

/// Runs one statement on the bench's database through psql: whether it
/// succeeded.
fn psql(url: &str, sql: &str) -> bool {
    let plain = url.split('?').next().unwrap_or(url);
    Command::new("psql")
        .args(["-q", "-X", plain, "-c", sql])
        .status()
        .is_ok_and(|s| s.success())
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

/// What the sink saw.
#[derive(Default)]
struct SinkLog {
    /// Per `webhook-id`, how many times it arrived correctly signed.
    ids: std::collections::HashMap<String, u32>,
    /// Receipt minus the occurrence's nominal instant, per request, in ms.
    lateness_ms: Vec<i64>,
    /// The same, split: registration 0 (the owner whose alarms also go to
    /// the slow host in (c'): its account's cap is shared with the slow
    /// host) and everyone else.
    first_owner_ms: Vec<i64>,
    other_owners_ms: Vec<i64>,
    /// Per nominal instant (Unix seconds), the worst lateness to receipt.
    worst_ms: std::collections::BTreeMap<i64, i64>,
    bad_signatures: u64,
    last: Option<Timestamp>,
}

#[derive(Clone)]
struct Sink {
    log: Arc<std::sync::Mutex<SinkLog>>,
    secrets: Arc<Vec<secrecy::SecretString>>,
}

/// `POST /hook/{i}`: checks the Standard Webhooks signature against
/// registration `i`'s secret and counts the delivery.
#[poem::handler]
async fn sink_hook(
    poem::web::Path(i): poem::web::Path<usize>,
    headers: &poem::http::HeaderMap,
    body: Vec<u8>,
    sink: poem::web::Data<&Sink>,
) -> poem::http::StatusCode {
    let received = Timestamp::now();
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let id = h("webhook-id");
    let stamp: i64 = h("webhook-timestamp").parse().unwrap_or(0);
    let ok = sink.secrets.get(i).is_some_and(|secret| {
        alarm_notify::signature::verify(
            secret,
            &id,
            stamp,
            &body,
            &h("webhook-signature"),
            received.as_second(),
            300,
        )
        .is_ok()
    });
    let nominal: Option<Timestamp> = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v["data"]["occurrence_at"]
                .as_str()
                .and_then(|t| t.parse().ok())
        });
    let mut log = sink.log.lock().expect("sink log");
    if !ok {
        log.bad_signatures += 1;
        return poem::http::StatusCode::UNAUTHORIZED;
    }
    *log.ids.entry(id).or_default() += 1;
    if let Some(at) = nominal {
        let late = received.duration_since(at).as_millis() as i64;
        log.lateness_ms.push(late);
        if i == 0 {
            log.first_owner_ms.push(late);
        } else {
            log.other_owners_ms.push(late);
        }
        let worst = log.worst_ms.entry(at.as_second()).or_insert(late);
        *worst = (*worst).max(late);
    }
    log.last = Some(log.last.map_or(received, |l| l.max(received)));
    poem::http::StatusCode::NO_CONTENT
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Which part of the webhook phases runs alone: (b') (`--steady`), or
/// (c), (c') and the ceiling (`--bursts`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Only {
    Steady,
    Bursts,
}

/// What one burst of phase (c) measured at the fast sink.
struct Burst {
    rate: f64,
    p99_ms: i64,
}

/// Phase (c): `n` alarms due at one future instant, each delivered as a
/// signed webhook (one registration per owner) to a sink in this process;
/// then the same with one owner's alarms also going to a slow host (5 s
/// answers), then alone again (or the reverse with `--slow-first`); then
/// the ceiling: a bare keep-alive client sending the same
/// kind of signed bodies to the same sink at the worker's per-host
/// concurrency.
async fn webhooks(
    ports: &Ports,
    owners: &[alarm_domain::model::User],
    url: &str,
    n: usize,
    (rate, secs): (usize, usize),
    only: Option<Only>,
) {
    use poem::EndpointExt;
    use poem::listener::{Acceptor, Listener};
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind sink");
    let addr = *acceptor.local_addr()[0].as_socket_addr().expect("address");
    let hooks = alarm_domain::services::WebhookService::new(ports.clone());
    let actor = |owner: &alarm_domain::model::User| alarm_domain::services::Actor {
        user: owner.id(),
        role: owner.role(),
        correlation_id: "bench".to_owned(),
    };
    let register = |owner: &alarm_domain::model::User, url: String| {
        let hooks = hooks.clone();
        let actor = actor(owner);
        async move {
            hooks
                .create(
                    &actor,
                    alarm_domain::model::WebhookUrl::parse(&url).expect("url"),
                    alarm_domain::model::WebhookEventSet::new(&[
                        alarm_domain::model::WebhookEvent::Triggered,
                    ])
                    .expect("events"),
                    Vec::new(),
                )
                .await
                .expect("register")
        }
    };
    let mut secrets = Vec::new();
    for (i, owner) in owners.iter().enumerate() {
        secrets.push(
            register(owner, format!("http://{addr}/hook/{i}"))
                .await
                .secret,
        );
    }
    let sink = Sink {
        log: Arc::default(),
        secrets: Arc::new(secrets),
    };
    let app = poem::Route::new()
        .at("/hook/:i", poem::post(sink_hook))
        .data(sink.clone());
    let server = tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));

    // The bare client sends at the worker's per-host cap.
    let host_concurrency = worker_settings()
        .iter()
        .find(|(k, _)| k == "WEBHOOK_HOST_CONCURRENCY")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(16);
    if only != Some(Only::Bursts) {
        steady_webhooks(ports, owners, url, &sink, rate, secs).await;
    }
    if only == Some(Only::Steady) {
        server.abort();
        return;
    }
    // A slow receiver: one owner's alarms also go to it (n / OWNERS rows).
    let slow_answers = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = slow_answers.clone();
    let slow_app = poem::Route::new().at(
        "/slow",
        poem::post(poem::endpoint::make(move |_req: poem::Request| {
            let counted = counted.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                poem::http::StatusCode::NO_CONTENT
            }
        })),
    );
    let (slow_addr, slow_server) = serve(slow_app).await;
    let slow_url = format!("http://{slow_addr}/slow");
    // Three bursts, the burst beside the slow host between two alone (or,
    // with `--slow-first`, one alone between two beside it), each on
    // emptied tables: later bursts ran slower in past runs whichever kind
    // they were, and two bursts cannot tell a drift of the machine from
    // the slow host's effect. The outer two average out a steady drift;
    // each pair is printed too, so an uneven one shows.
    let slow_first = std::env::args().any(|a| a == "--slow-first");
    let order = if slow_first {
        [true, false, true]
    } else {
        [false, true, false]
    };
    let (mut alone, mut beside) = (Vec::new(), Vec::new());
    for with_slow in order {
        if with_slow {
            slow_answers.store(0, std::sync::atomic::Ordering::Relaxed);
            let slow = register(&owners[0], slow_url.clone()).await;
            beside.push(burst(ports, owners, url, n, &sink, Some(&slow_answers)).await);
            // Its rows left unsent stay in the outbox (deleting a
            // registration does not withdraw rows already due) until the
            // next burst empties it.
            hooks
                .delete(&actor(&owners[0]), slow.registration.id())
                .await
                .expect("delete the slow host's registration");
        } else {
            alone.push(burst(ports, owners, url, n, &sink, None).await);
        }
    }
    slow_server.abort();

    let ceiling = bare_client(&sink, addr, n, host_concurrency).await;
    server.abort();
    for (k, alone) in alone.iter().enumerate() {
        println!(
            "(c) summary, burst alone {}: worker {:.0}/s, bare client {:.0}/s at {host_concurrency} in flight: ratio {:.2} (goal ≥ 0.5); p99 {} ms against 1.2 × N ÷ the worker's rate = {:.0} ms (the goal: no tail beyond a fifth past the last delivery's time at that rate) and 1.2 × N ÷ ceiling = {:.0} ms",
            k + 1,
            alone.rate,
            ceiling,
            alone.rate / ceiling,
            alone.p99_ms,
            1.2 * n as f64 / alone.rate * 1000.0,
            1.2 * n as f64 / ceiling * 1000.0,
        );
    }
    let p99s = |bursts: &[Burst]| {
        bursts
            .iter()
            .map(|b| format!("{} ms", b.p99_ms))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mean = |bursts: &[Burst]| {
        bursts.iter().map(|b| b.p99_ms as f64).sum::<f64>() / bursts.len().max(1) as f64
    };
    println!(
        "(c') summary: with a slow host beside it the fast sink's p99 moved {:+.1} % (mean of the bursts alone {:.0} ms: {}; beside the slow host {:.0} ms: {}; run {}; goal ≤ 10 %); against each neighbour alone: {}",
        100.0 * (mean(&beside) / mean(&alone).max(1.0) - 1.0),
        mean(&alone),
        p99s(&alone),
        mean(&beside),
        p99s(&beside),
        if slow_first {
            "beside, alone, beside"
        } else {
            "alone, beside, alone"
        },
        alone
            .iter()
            .flat_map(|a| beside.iter().map(move |b| (a, b)))
            .map(|(a, b)| format!(
                "{:+.1} %",
                100.0 * (b.p99_ms as f64 / a.p99_ms.max(1) as f64 - 1.0)
            ))
            .collect::<Vec<_>>()
            .join(", "),
    );
}

/// Serves `app` on a fresh loopback port.
async fn serve(
    app: impl poem::Endpoint + 'static,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    use poem::listener::{Acceptor, Listener};
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind sink");
    let addr = *acceptor.local_addr()[0].as_socket_addr().expect("address");
    (
        addr,
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app)),
    )
}

/// The sink's counts after a webhook phase: requests, distinct ids,
/// duplicates, losses and bad signatures, beside the worker's counters.
fn print_receipts(log: &SinkLog, n: usize, ready: &serde_json::Value) {
    let distinct = log.ids.len();
    let total: u64 = log.ids.values().map(|c| u64::from(*c)).sum();
    println!(
        "    requests {total}, distinct webhook-ids {distinct}: duplicates {}, losses {}, bad signatures {}; worker counters {}",
        total - distinct as u64,
        n - distinct,
        log.bad_signatures,
        ready["deliveries"]
    );
}

/// The first whole second far enough ahead to seed `n` alarms before it
/// (seeding speed measured on a probe of a twentieth, then twice that and
/// 20 s to spare: the probe seeds in-app alarms with no worker running, and
/// a 100k webhook seed beside a running worker once took 1.6 × longer).
async fn first_instant(ports: &Ports, owners: &[alarm_domain::model::User], n: usize) -> Timestamp {
    let probe = (n / 20).max(100);
    let probe_at = (Timestamp::now() + SignedDuration::from_hours(24))
        .round(Unit::Second)
        .expect("round");
    let probe_secs = seed(ports, owners, &[probe_at], probe, Channel::InApp).await;
    let lead = (n as f64 * probe_secs / probe as f64) * 2.0 + 20.0;
    (Timestamp::now() + SignedDuration::from_secs_f64(lead))
        .round(Unit::Second)
        .expect("round")
}

/// Phase (b'): `rate` alarms with the webhook channel due at each whole
/// second for `secs` seconds, created ahead with the worker running (so
/// every ring and its outbox row are prepared): lateness from each nominal
/// instant to receipt at the verifying sink.
async fn steady_webhooks(
    ports: &Ports,
    owners: &[alarm_domain::model::User],
    url: &str,
    sink: &Sink,
    rate: usize,
    secs: usize,
) {
    *sink.log.lock().expect("log") = SinkLog::default();
    let n = rate * secs;
    let first = first_instant(ports, owners, n).await;
    let instants: Vec<Timestamp> = (0..secs)
        .map(|k| first + SignedDuration::from_secs(k as i64))
        .collect();
    let worker = Worker::start_with(url, &[("WEBHOOK_ALLOW_PRIVATE", "true")]);
    let seeded = seed(ports, owners, &instants, rate, Channel::Webhook).await;
    settle(url);
    let slack = first.duration_since(Timestamp::now()).as_secs_f64();
    println!(
        "(b') steady webhooks: {rate} alarms with the webhook channel due at each whole second for {secs} s ({n}), created ahead with the worker running; seeded in {seeded:.1} s, {slack:.1} s to spare"
    );
    let (cpu_before, pg_before) = (worker.cpu_ticks(), pg_cpu_ticks());
    pg_statements(None);
    let before = worker.readings();
    let clock = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(secs as u64 + 900);
    loop {
        let distinct = sink.log.lock().expect("log").ids.len();
        if distinct >= n || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = (worker.cpu_ticks() - cpu_before) as f64 / 100.0;
    let pg_cpu = (pg_cpu_ticks() - pg_before) as f64 / 100.0;
    let took = clock.elapsed().as_secs_f64();
    let after = worker.readings();
    pg_statements(Some("(b')"));
    let ready = worker.ready();
    worker.stop();
    let mut log = sink.log.lock().expect("log");
    log.lateness_ms.sort_unstable();
    println!(
        "    lateness from the nominal instant to receipt: p50 {} ms, p99 {} ms, max {} ms (goal p99 ≤ 100 ms); worker CPU {:.0} %, PostgreSQL CPU {:.0} % of one core",
        percentile(&log.lateness_ms, 0.50),
        percentile(&log.lateness_ms, 0.99),
        log.lateness_ms.last().copied().unwrap_or(0),
        100.0 * cpu / took,
        100.0 * pg_cpu / took
    );
    print_receipts(&log, n, &ready);
    println!(
        "    the worker's sends: mean {:.2} ms each",
        1000.0 * (after.sends.0 - before.sends.0) / (after.sends.1 - before.sends.1).max(1.0)
    );
    print_stages(&before.stages, &after.stages, took);
    // When in the minute the late receipts fell says more than a
    // percentile: all at the start, spread evenly, or in bursts.
    let worst: Vec<String> = log
        .worst_ms
        .iter()
        .map(|(at, late)| format!("{}:{late}", at - first.as_second()))
        .collect();
    println!(
        "    worst lateness per instant (seconds after the first: ms): {}",
        worst.join(" ")
    );
}

/// One burst of phase (c) with a fresh worker: `n` alarms to the sink
/// (and, with `slow`, one owner's also to the slow host).
async fn burst(
    ports: &Ports,
    owners: &[alarm_domain::model::User],
    url: &str,
    n: usize,
    sink: &Sink,
    slow: Option<&std::sync::atomic::AtomicU64>,
) -> Burst {
    *sink.log.lock().expect("log") = SinkLog::default();
    forget_history(url);
    let at = first_instant(ports, owners, n).await;
    let worker = Worker::start_with(url, &[("WEBHOOK_ALLOW_PRIVATE", "true")]);
    let seeded = seed(ports, owners, &[at], n, Channel::Webhook).await;
    settle(url);
    let slack = at.duration_since(Timestamp::now()).as_secs_f64();
    let label = if slow.is_some() {
        format!(
            "(c') the same beside a slow host (5 s answers) that one owner's {} alarms also go to",
            n / OWNERS
        )
    } else {
        "(c) webhooks".to_owned()
    };
    println!(
        "{label}: {n} alarms with the webhook channel due at one instant, {} registrations (one per owner) to a local sink verifying every signature; seeded in {seeded:.1} s, {slack:.1} s to spare; worker defaults (budget 512 claimed, 128 in flight, 16 per host) but for BENCH_WORKER_ENV {:?}",
        owners.len(),
        worker_settings()
    );
    if slack < 0.0 {
        println!(
            "    the seeding overran the instant: the alarms were not all prepared ahead, so this burst's figures are not comparable"
        );
    }
    // Statements and send times from a second before the instant (the
    // preparation is long done by then; taken at the instant, the reading
    // would compete with the burst's start), CPU from the instant on, not
    // over the wait for it (the engine prepares the rings meanwhile).
    let until = |at: Timestamp| Duration::try_from(at.duration_since(Timestamp::now()));
    if let Ok(wait) = until(at - SignedDuration::from_secs(1)) {
        tokio::time::sleep(wait).await;
    }
    pg_statements(None);
    let before = worker.readings();
    if let Ok(wait) = until(at) {
        tokio::time::sleep(wait).await;
    }
    let (cpu_before, pg_before) = (worker.cpu_ticks(), pg_cpu_ticks());
    let own_before = alarm_appkit::metrics::cpu_ticks(None).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let distinct = sink.log.lock().expect("log").ids.len();
        if distinct >= n || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let slow_by_then = slow.map(|s| s.load(std::sync::atomic::Ordering::Relaxed));
    // Late duplicates (a retry racing a slow answer) would arrive after the
    // last first-time delivery: give them a moment before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ready = worker.ready();
    let cpu = (worker.cpu_ticks() - cpu_before) as f64 / 100.0;
    let pg_cpu = (pg_cpu_ticks() - pg_before) as f64 / 100.0;
    let own_cpu = (alarm_appkit::metrics::cpu_ticks(None).unwrap_or(0) - own_before) as f64 / 100.0;
    let after = worker.readings();
    // The slow host's answers are in the same histogram, 5 s each.
    let slow_sent = slow.map_or(0, |s| s.load(std::sync::atomic::Ordering::Relaxed)) as f64;
    pg_statements(Some(if slow.is_some() { "(c')" } else { "(c)" }));
    worker.stop();
    let mut log = sink.log.lock().expect("log");
    let distinct = log.ids.len();
    let span = log
        .last
        .map_or(f64::NAN, |l| l.duration_since(at).as_secs_f64());
    log.lateness_ms.sort_unstable();
    let rate = distinct as f64 / span;
    let p99_ms = percentile(&log.lateness_ms, 0.99);
    println!(
        "    {distinct} delivered {span:.2} s after the instant: {rate:.0} deliveries/s end to end (fire + send); worker CPU {:.0} %, PostgreSQL CPU {:.0} % of one core from the instant to 2 s after the last",
        100.0 * cpu / (span + 2.0),
        100.0 * pg_cpu / (span + 2.0)
    );
    println!(
        "    lateness from the nominal instant to receipt: p50 {} ms, p99 {p99_ms} ms, max {} ms",
        percentile(&log.lateness_ms, 0.50),
        log.lateness_ms.last().copied().unwrap_or(0)
    );
    // The worker's own send times say whether its per-host cap bounds the
    // rate (sends in flight on average near the cap) or something before
    // the sends does; the bench's CPU is the sink's (and the slow host's).
    let (took, count) = (
        after.sends.0 - before.sends.0 - 5.0 * slow_sent,
        after.sends.1 - before.sends.1 - slow_sent,
    );
    println!(
        "    the worker's sends to the fast sink: {count:.0} recorded, mean {:.2} ms each, so {:.1} in flight on average over the burst; bench process (the sinks) CPU {:.0} % of one core",
        1000.0 * took / count.max(1.0),
        took / span,
        100.0 * own_cpu / (span + 2.0)
    );
    // Read a second before the instant and two after the last receipt,
    // but the work falls inside the burst: shares of the burst's span.
    print_stages(&before.stages, &after.stages, span);
    // Registration 0's owner shares its account's cap with the slow host
    // in (c'): whether the move is that owner's or everyone's.
    log.first_owner_ms.sort_unstable();
    log.other_owners_ms.sort_unstable();
    println!(
        "    owner 0 (its account also has the slow host in (c')): {} rows, p99 {} ms, max {} ms; everyone else: p99 {} ms",
        log.first_owner_ms.len(),
        percentile(&log.first_owner_ms, 0.99),
        log.first_owner_ms.last().copied().unwrap_or(0),
        percentile(&log.other_owners_ms, 0.99)
    );
    if let Some(answered) = slow_by_then {
        println!(
            "    the slow host had answered {answered} of its {} when the fast sink had all of its own",
            n / OWNERS
        );
    }
    print_receipts(&log, n, &ready);
    Burst { rate, p99_ms }
}

/// The ceiling of (c): `n` signed bodies like the worker's, POSTed by a
/// bare keep-alive client with `concurrency` in flight to the same sink,
/// which verifies and counts them the same way. Returns requests/s.
async fn bare_client(sink: &Sink, addr: std::net::SocketAddr, n: usize, concurrency: usize) -> f64 {
    use futures_util::StreamExt;
    *sink.log.lock().expect("log") = SinkLog::default();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let started = Instant::now();
    let at = Timestamp::now();
    let failed = futures_util::stream::iter(0..n)
        .map(|k| {
            let client = client.clone();
            let i = k % sink.secrets.len();
            let id = alarm_domain::ids::EventId::generate().to_string();
            let body = serde_json::to_vec(&serde_json::json!({
                "type": "alarm.triggered",
                "timestamp": at.to_string(),
                "data": {
                    "delivery_id": id,
                    "alarm_id": AlarmId::generate().to_string(),
                    "alarm_name": "bench",
                    "time_zone": "UTC",
                    "occurrence_at": at.to_string(),
                    "local_time": "2026-01-01T07:00:00",
                },
            }))
            .expect("body");
            let stamp = Timestamp::now().as_second();
            let signature =
                alarm_notify::signature::sign(&sink.secrets[i], &id, stamp, &body).expect("sign");
            async move {
                client
                    .post(format!("http://{addr}/hook/{i}"))
                    .header("content-type", "application/json")
                    .header("webhook-id", id)
                    .header("webhook-timestamp", stamp.to_string())
                    .header("webhook-signature", signature)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .buffer_unordered(concurrency)
        .filter(|ok| std::future::ready(!ok))
        .count()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let distinct = sink.log.lock().expect("log").ids.len();
    let rate = distinct as f64 / secs;
    println!(
        "(c) ceiling: a bare keep-alive client, {concurrency} in flight, sent {n} signed bodies to the same sink in {secs:.2} s: {rate:.0} requests/s ({distinct} verified, {failed} failed)"
    );
    rate
}

/// Phase (a): `n` alarms all due at one instant, already due when the
/// worker starts (as after an outage, or created inside the prefetch
/// window); measured from the worker's start. Returns the seeding time and
/// the fires per second.
async fn found_due(
    ports: &Ports,
    owners: &[alarm_domain::model::User],
    url: &str,
    n: usize,
) -> (f64, f64) {
    let at = Timestamp::now().round(Unit::Second).expect("round");
    let seeded = seed(ports, owners, &[at], n, Channel::InApp).await;
    let seeding_ended = Instant::now();
    println!(
        "(a) burst: seeded {n} alarms in {seeded:.1} s ({:.0}/s through the adapter)",
        n as f64 / seeded
    );
    settle(url);
    quiet_stats(seeding_ended).await;
    let written_before = rows_written(url);
    let started = Timestamp::now();
    let clock = Instant::now();
    let pg_before = pg_cpu_ticks();
    let worker = Worker::start(url);
    let cpu_before = worker.cpu_ticks();
    let r = worker.wait_done(n as u64, Duration::from_secs(600)).await;
    let took = clock.elapsed().as_secs_f64();
    let cpu = (worker.cpu_ticks() - cpu_before) as f64 / 100.0;
    let pg_cpu = (pg_cpu_ticks() - pg_before) as f64 / 100.0;
    worker.stop();
    let written = rows_written(url) - written_before;
    let (rows, distinct, last) = audit(ports, owners, at).await;
    let span = last.duration_since(started).as_secs_f64();
    let rate = n as f64 / span;
    println!(
        "    all {} rung {span:.2} s after the worker started (observed {took:.2} s): {rate:.0} fires/s; {written} rows written ({:.0} rows/s, {:.1} per fire); worker CPU {:.0} %, PostgreSQL CPU {:.0} % of one core",
        r["rang"],
        written as f64 / span,
        written as f64 / n as f64,
        100.0 * cpu / took,
        100.0 * pg_cpu / took
    );
    println!(
        "    deliveries {rows}, distinct occurrences {distinct}: duplicates {}, losses {}, missed {}",
        rows - distinct,
        n - distinct,
        r["missed"]
    );
    (seeded, rate)
}

/// CPU ticks (10 ms) PostgreSQL has used so far: every live `postgres`
/// process's own, plus what its postmaster has collected from the backends
/// that ended (so a pgbench or worker connection that closed is counted).
fn pg_cpu_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut procs = Vec::new();
    for entry in dir.filter_map(Result::ok) {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; the name may hold spaces.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let pid: u32 = stat[..open].trim().parse().unwrap_or(0);
        let comm = stat[open + 1..close].to_owned();
        let fields: Vec<u64> = stat[close + 2..]
            .split(' ')
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        if fields.len() > 14 {
            procs.push((pid, comm, fields[0], fields[10..14].to_vec()));
        }
    }
    let postgres: HashSet<u32> = procs
        .iter()
        .filter(|(_, comm, _, _)| comm == "postgres")
        .map(|(pid, _, _, _)| *pid)
        .collect();
    procs
        .iter()
        .filter(|(pid, _, _, _)| postgres.contains(pid))
        .map(|(_, _, ppid, t)| {
            let own = t[0] + t[1];
            // The postmaster (its parent is not PostgreSQL) has waited for
            // the backends that ended: their time is in its children's.
            let ppid = u32::try_from(*ppid).unwrap_or(0);
            if postgres.contains(&ppid) {
                own
            } else {
                own + t[2] + t[3]
            }
        })
        .sum()
}

/// (a)'s ceiling in the same run, and the durable rate against it.
async fn print_ceiling(
    ports: &Ports,
    owners: &[alarm_domain::model::User],
    url: &str,
    n: usize,
    fires: f64,
) {
    if let Some(ceiling) = replay::ceiling(ports, owners, url, n).await {
        println!(
            "    (a) fires/s ÷ pgbench ceiling = {fires:.0} ÷ {ceiling:.0} = {:.2} (goal ≥ 0.7)",
            fires / ceiling
        );
    }
}

/// Rows inserted, updated and deleted in the bench's database so far, as
/// PostgreSQL counts them (`pg_stat_database`): the same measure the peer
/// bench prints for graphile-worker. A backend reports its counts when it
/// ends or within 10 s of going idle, so readings are taken with the
/// writers stopped (see [`quiet_stats`]).
fn rows_written(url: &str) -> i64 {
    let plain = url.split('?').next().unwrap_or(url);
    let out = Command::new("psql")
        .args([
            "-Atq",
            "-X",
            plain,
            "-c",
            "SELECT pg_stat_clear_snapshot(); SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = current_database()",
        ])
        .output()
        .expect("psql");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<i64>().ok())
        .next_back()
        .unwrap_or(0)
}

/// Waits until the bench's own idle connections have reported their
/// counts (PostgreSQL flushes an idle backend's after 10 s), so that what
/// seeding wrote is not counted as the worker's.
async fn quiet_stats(since: Instant) {
    let quiet = Duration::from_secs(11);
    let waited = since.elapsed();
    if waited < quiet {
        tokio::time::sleep(quiet - waited).await;
    }
}

/// Phases (a) and (b): the in-app channel only.
async fn in_app(
    ports: &Ports,
    owners: &[alarm_domain::model::User],
    url: &str,
    burst_n: usize,
    steady_rate: usize,
    steady_secs: usize,
) {
    let (seeded, fires) = found_due(ports, owners, url, burst_n).await;
    print_ceiling(ports, owners, url, burst_n, fires).await;

    // (a') The same burst created ahead of its instant with the worker
    // running: every ring is prepared (committed before the instant) and
    // visible from it.
    let worker = Worker::start(url);
    let cpu_before = worker.cpu_ticks();
    let clock = Instant::now();
    let lead = seeded * 1.5 + 30.0;
    let at = (Timestamp::now() + SignedDuration::from_secs_f64(lead))
        .round(Unit::Second)
        .expect("round");
    let (seeded_ahead, samples) =
        seed_sampled(ports, owners, &[at], burst_n, Channel::InApp, 200).await;
    settle(url);
    let slack = at.duration_since(Timestamp::now()).as_secs_f64();
    println!(
        "(a') prepared burst: {burst_n} alarms due at one instant, seeded in {seeded_ahead:.1} s with the worker running, {slack:.1} s to spare; 200 sampled"
    );
    let poller = tokio::spawn(poll_samples(ports.clone(), samples));
    let r = worker
        .wait_done(burst_n as u64, Duration::from_secs(600))
        .await;
    let counted = Timestamp::now().duration_since(at).as_secs_f64();
    let cpu = (worker.cpu_ticks() - cpu_before) as f64 / 100.0;
    let seen = poller.await.expect("poller");
    print_commits(&r, cpu, clock.elapsed().as_secs_f64());
    println!(
        "    the worker counted all {} rung {counted:.2} s after the instant",
        r["rang"]
    );
    print_sighted(&seen);
    let (rows, distinct, _) = audit(ports, owners, at).await;
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
    // Seeded at the rate of (a'), with a worker running as here.
    let lead = (total as f64 / (burst_n as f64 / seeded_ahead)) * 1.5 + 5.0;
    let first = (Timestamp::now() + SignedDuration::from_secs_f64(lead))
        .round(Unit::Second)
        .expect("round");
    let instants: Vec<Timestamp> = (0..steady_secs as i64)
        .map(|s| first + SignedDuration::from_secs(s))
        .collect();
    let worker = Worker::start(url);
    let cpu_before = worker.cpu_ticks();
    let clock = Instant::now();
    let (seeded, samples) =
        seed_sampled(ports, owners, &instants, per_second, Channel::InApp, 50).await;
    settle(url);
    let slack = first.duration_since(Timestamp::now()).as_secs_f64();
    println!(
        "(b) steady: seeded {total} alarms ({per_second} at each of {steady_secs} whole seconds) in {seeded:.1} s; {slack:.1} s to spare before the first; 50 per second sampled"
    );
    let poller = tokio::spawn(poll_samples(ports.clone(), samples));
    let r = worker
        .wait_done(
            total as u64,
            Duration::from_secs(steady_secs as u64 + lead as u64 + 120),
        )
        .await;
    let cpu = (worker.cpu_ticks() - cpu_before) as f64 / 100.0;
    let seen = poller.await.expect("poller");
    let (rows, distinct, _) = audit(ports, owners, first).await;
    print_commits(&r, cpu, clock.elapsed().as_secs_f64());
    print_sighted(&seen);
    println!(
        "    deliveries {rows}, distinct occurrences {distinct}: duplicates {}, losses {}, missed {}",
        rows - distinct,
        total - distinct,
        r["missed"]
    );
    worker.stop();
}

/// How many times each telemetry mode runs, alternated.
const ROUNDS: usize = 5;

/// (d) The cost of metrics and traces: the same burst of `n` in-app
/// alarms with neither, with metrics (the default), and with metrics and
/// traces exported to a local OTLP sink at the default sampler and at
/// 100 %, alternated [`ROUNDS`] times so drift on this shared machine hits
/// each alike.
async fn telemetry_cost(ports: &Ports, owners: &[alarm_domain::model::User], url: &str, n: usize) {
    let sink = alarm_telemetry::testing::Sink::otlp();
    let endpoint = sink.endpoint();
    let modes: [(&str, Vec<(&str, &str)>); 4] = [
        ("off", vec![("METRICS", "false")]),
        ("metrics", vec![("METRICS", "true")]),
        (
            "traces (default)",
            vec![
                ("METRICS", "true"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ],
        ),
        (
            "traces 100%",
            vec![
                ("METRICS", "true"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_TRACES_SAMPLER", "always_on"),
            ],
        ),
    ];
    let mut rates = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    // The worker's CPU per 1,000 fires, start-up included: steadier than
    // a rate on two cores shared with PostgreSQL and this bench.
    let mut cpu = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    // Each run's alarms are due at an instant after the last run's, so the
    // audit of one run never counts another's.
    let mut at = Timestamp::MIN;
    for round in 0..ROUNDS {
        // Each round starts at the next mode, so no mode always runs first
        // or last.
        for i in (0..modes.len()).map(|k| (k + round) % modes.len()) {
            let env = &modes[i].1;
            at = Timestamp::now()
                .round(Unit::Second)
                .expect("round")
                .max(at + SignedDuration::from_secs(1));
            seed(ports, owners, &[at], n, Channel::InApp).await;
            settle(url);
            let started = Timestamp::now();
            let worker = Worker::start_with(url, env);
            worker.wait_done(n as u64, Duration::from_secs(600)).await;
            let (_, distinct, last) = audit(ports, owners, at).await;
            assert_eq!(distinct, n, "every alarm rang once");
            // From the later of the start and the instant: a worker that
            // started before its alarms were due waited for them, not on
            // its telemetry.
            let from = started.max(at);
            rates[i].push(n as f64 / last.duration_since(from).as_secs_f64());
            cpu[i].push(worker.cpu_ticks() as f64 * 10.0 * 1000.0 / n as f64);
            worker.stop();
        }
    }
    // The median: one run disturbed by the shared machine moves it least.
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let off = median(&rates[0]);
    let cpu_off = median(&cpu[0]);
    println!(
        "(d) telemetry: a burst of {n} in-app alarms, {ROUNDS} alternating runs each, median (fires/s from the worker's start or the instant, whichever is later):"
    );
    for (i, (name, _)) in modes.iter().enumerate() {
        let rate = median(&rates[i]);
        let ms = median(&cpu[i]);
        println!(
            "    {name:<16} {rate:>7.0} fires/s (cost vs off {:>5.1}%); worker CPU {ms:>6.1} ms per 1,000 fires (cost vs off {:>5.1}%)   goal <= 5%",
            (1.0 - rate / off) * 100.0,
            (ms / cpu_off - 1.0) * 100.0
        );
    }
    println!(
        "    traces: the default keeps one root in ten (parentbased_traceidratio 0.1); {} KiB of OTLP received in all",
        sink.bytes() / 1024
    );
}

/// `cargo xtask bench peer`: graphile-worker (pinned in `benches/peer`,
/// installed with `npm ci` under `target/peer`) runs `n` no-op jobs on this
/// PostgreSQL, unbatched (its defaults) and batched (local queue and
/// batched completions), then phase (a) runs the same count of fires, each
/// committing its whole outcome; prints fires/s ÷ jobs/s for both and the
/// rows each side wrote per second.
async fn peer(ports: &Ports, owners: &[alarm_domain::model::User], url: &str, n: usize) {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peer");
    std::fs::create_dir_all(&dir).expect("target/peer");
    for file in ["package.json", "package-lock.json", "run.mjs"] {
        std::fs::copy(source.join(file), dir.join(file)).expect("copy the peer's files");
    }
    let installed = std::fs::read_to_string(dir.join("node_modules/graphile-worker/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned));
    if installed.as_deref() != Some(PEER_VERSION) {
        println!(
            "installing graphile-worker {PEER_VERSION} (npm ci in {})",
            dir.display()
        );
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "npm ci failed: the peer bench needs Node.js and npm with registry access"
        );
    }
    let node = Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "peer: graphile-worker {PEER_VERSION} on Node.js {node}, {n} no-op jobs, concurrency {PEER_CONCURRENCY}, on the same PostgreSQL as the alarm worker"
    );
    let mut peers = Vec::new();
    for mode in ["unbatched", "batched"] {
        let out = Command::new("node")
            .arg("run.mjs")
            .args([url, mode, &n.to_string(), &PEER_CONCURRENCY.to_string()])
            .current_dir(&dir)
            .stderr(Stdio::inherit())
            .output()
            .expect("run node");
        let text = String::from_utf8_lossy(&out.stdout);
        let figures: serde_json::Value = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .next_back()
            .unwrap_or_else(|| panic!("the peer printed no figures:\n{text}"));
        println!(
            "    graphile-worker {mode}: {:.0} jobs/s ({:.2} s), {:.0} rows written/s ({:.1} per job), Node CPU {:.0} % of one core",
            figures["jobs_per_s"].as_f64().unwrap_or(f64::NAN),
            figures["secs"].as_f64().unwrap_or(f64::NAN),
            figures["rows_per_s"].as_f64().unwrap_or(f64::NAN),
            figures["rows_written"].as_f64().unwrap_or(f64::NAN) / n as f64,
            figures["node_cpu_pct"].as_f64().unwrap_or(f64::NAN),
        );
        peers.push((mode, figures["jobs_per_s"].as_f64().unwrap_or(f64::NAN)));
    }
    let (_, fires) = found_due(ports, owners, url, n).await;
    print_ceiling(ports, owners, url, n, fires).await;
    for (mode, jobs) in peers {
        println!(
            "peer: fires/s ÷ graphile-worker {mode} jobs/s = {:.2} (goal ≥ 1.0 against batched)",
            fires / jobs
        );
    }
}

/// The peer's version, as `benches/peer/package.json` pins it.
const PEER_VERSION: &str = "0.17.3";
/// graphile-worker's concurrency in the peer runs.
const PEER_CONCURRENCY: usize = 16;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let telemetry_only = std::env::args().any(|a| a == "--telemetry");
    let webhooks_only = std::env::args().any(|a| a == "--webhooks");
    let in_app_only = std::env::args().any(|a| a == "--in-app");
    let peer_only = std::env::args().any(|a| a == "--peer");
    let ceiling_only = std::env::args().any(|a| a == "--ceiling");
    let steady_only = std::env::args().any(|a| a == "--steady");
    let bursts_only = std::env::args().any(|a| a == "--bursts");
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
        let sealer = alarm_secrets::AeadSealer::from_text(&secrecy::SecretString::from(
            DATA_KEY.to_owned(),
        ))
        .expect("key");
        let sql = Sql::connect(&pg.config().with_max_connections(16).expect("pool"))
            .await
            .expect("connect")
            .with_sealer(Arc::new(sealer));
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
        println!("worker bench: 1 alarm-worker (release), PostgreSQL on loopback, {OWNERS} owners, in-app channel, batch 1000, prefetch: the worker's (30.5 s by default; fires prepared ahead of their instant)");

        if peer_only {
            peer(&ports, &owners, &url, burst_n).await;
        } else if ceiling_only {
            let (_, fires) = found_due(&ports, &owners, &url, burst_n).await;
            print_ceiling(&ports, &owners, &url, burst_n, fires).await;
        } else if telemetry_only {
            telemetry_cost(&ports, &owners, &url, burst_n / 5).await;
        } else {
            if !webhooks_only && !steady_only && !bursts_only {
                in_app(&ports, &owners, &url, burst_n, steady_rate, steady_secs).await;
            }
            if !in_app_only {
                let only = if steady_only {
                    Some(Only::Steady)
                } else if bursts_only {
                    Some(Only::Bursts)
                } else {
                    None
                };
                webhooks(&ports, &owners, &url, burst_n, (steady_rate, steady_secs), only).await;
            }
            if !webhooks_only && !in_app_only && !steady_only && !bursts_only {
                telemetry_cost(&ports, &owners, &url, burst_n / 5).await;
            }
        }
        sql.close().await;
        pg.drop_db().await;
    });
}
