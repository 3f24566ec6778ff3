//! (a)'s ceiling: one batch of fires captured from PostgreSQL's statement log as the worker ran it, replayed by pgbench batch after batch on rows seeded for each batch.
//!
//! A batch of fires is a claim of up to [`BATCH`] triggers and the
//! transactions that complete them ([`alarm_sql`] commits 400 at a time).
//! The replay runs those statements unchanged: each distinct statement is
//! `PREPARE`d once per pgbench connection and `EXECUTE`d with the logged
//! parameters, as the worker's driver binds them to its prepared
//! statements. Only the ids that must differ from batch to batch change:
//! every UUID parameter except the owners' gets its first eight hex digits
//! from the batch's number. For each batch the bench seeds what the logged
//! statements find: copies of the alarms, their fire triggers leased with
//! the logged tokens, and [`BATCH`] due unleased triggers for the claim.
//! The worker's reads outside those transactions (the alarms and calendars
//! it loads to judge a batch) are not replayed, so the ceiling is an upper
//! bound on what those writes allow.

use std::collections::{HashMap, HashSet};
use std::process::Command;

use alarm_domain::jiff::{Timestamp, Unit};
use alarm_domain::model::{Channel, User};
use alarm_domain::services::Ports;
use alarm_sql::testing::{Logged, StatementLog, Transaction};

use crate::{Worker, pg_cpu_ticks, quiet_stats, rows_written, seed, settle};

/// The worker's claim batch (its default), and so the replay's.
const BATCH: usize = 1000;

/// The claim's statement, as the worker sends it.
fn is_claim(s: &Logged) -> bool {
    s.sql
        .starts_with("UPDATE triggers SET lease_token = gen_random_uuid()")
}

/// The fencing delete of a completion, whose parameters are the tokens of
/// the claims it completes.
fn is_fence(s: &Logged) -> bool {
    s.sql
        .starts_with("DELETE FROM triggers WHERE lease_token IN (")
}

fn fenced(found: &[Transaction]) -> usize {
    found
        .iter()
        .flat_map(|t| &t.statements)
        .filter(|s| is_fence(s))
        .map(|s| s.params.len())
        .sum()
}

/// Whether a logged parameter is a quoted UUID.
fn is_uuid(literal: &str) -> bool {
    let b = literal.as_bytes();
    b.len() == 38
        && b[0] == b'\''
        && b[37] == b'\''
        && b[1..37].iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The SQL that gives `x` (a UUID expression) its batch's first eight hex
/// digits: the same mapping the script's `':batchid…'` literals make
/// (a variable name as long as its value, so pgbench substitutes it in
/// place instead of moving the rest of a long statement each time).
fn mapped(batch: &str, x: &str) -> String {
    format!("(lpad(to_hex({batch}), 8, '0') || substr(({x})::text, 9))::uuid")
}

/// CPU ticks of this process's children that ended and were waited for
/// (the pgbench just run).
fn children_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    stat[close + 2..]
        .split(' ')
        .skip(13)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum()
}

fn psql(url: &str, sql: &str) -> String {
    let plain = url.split('?').next().unwrap_or(url);
    let out = Command::new("psql")
        .args(["-Atq", "-X", "-v", "ON_ERROR_STOP=1", plain])
        .arg("-c")
        .arg(sql)
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A captured batch turned into a pgbench script, and the token each
/// replayed alarm's trigger must be leased with.
struct Replay {
    script: String,
    pairs: Vec<(String, String)>,
}

fn replay_script(
    claim: &Transaction,
    completes: &[&Transaction],
    owners: &HashSet<String>,
    alarms: &HashSet<String>,
) -> Result<Replay, String> {
    let mut names: HashMap<&str, String> = HashMap::new();
    let mut prepare = Vec::new();
    let mut body =
        vec!["SELECT lpad(to_hex(nextval('replay_batch')), 8, '0') AS batchid \\gset".to_owned()];
    let mut pairs = Vec::new();
    for t in std::iter::once(claim).chain(completes.iter().copied()) {
        body.push("BEGIN;".to_owned());
        let mut tokens = Vec::new();
        let mut seen = Vec::new();
        for s in &t.statements {
            if s.params.is_empty() {
                body.push(format!("{};", s.sql));
                continue;
            }
            let next = format!("r{}", names.len());
            let name = names.entry(&s.sql).or_insert_with(|| {
                prepare.push(format!("PREPARE {next} AS {};", s.sql));
                next
            });
            let args: Vec<String> = s
                .params
                .iter()
                .map(|p| {
                    if is_uuid(p) && !owners.contains(p) {
                        format!("':batchid{}", &p[9..])
                    } else {
                        p.clone()
                    }
                })
                .collect();
            body.push(format!("EXECUTE {name}({});", args.join(", ")));
            if is_fence(s) {
                tokens.extend(s.params.iter().cloned());
            }
            for p in &s.params {
                if alarms.contains(p) && !seen.contains(p) {
                    seen.push(p.clone());
                }
            }
        }
        body.push("COMMIT;".to_owned());
        if tokens.len() != seen.len() {
            return Err(format!(
                "a completion fences {} tokens but names {} alarms",
                tokens.len(),
                seen.len()
            ));
        }
        pairs.extend(seen.into_iter().zip(tokens));
    }
    let mut script = vec!["\\if :ready = 0".to_owned()];
    script.extend(prepare);
    script.push("\\set ready 1".to_owned());
    script.push("\\endif".to_owned());
    script.extend(body);
    Ok(Replay {
        script: script.join("\n") + "\n",
        pairs,
    })
}

/// One pgbench run of `batches` batches over `clients` connections: the
/// batches per second it reports.
fn pgbench(url: &str, script: &std::path::Path, clients: usize, batches: usize) -> f64 {
    let plain = url.split('?').next().unwrap_or(url);
    let out = Command::new("pgbench")
        .args(["-n", "-M", "simple", "-D", "ready=0"])
        .args(["-c", &clients.to_string(), "-j", "2"])
        .args(["-t", &(batches / clients).to_string(), "-f"])
        .arg(script)
        .arg(plain)
        .output()
        .expect("run pgbench (Debian package postgresql-client)");
    alarm_sql::testing::pgbench_tps(&out)
}

/// Captures a batch of fires as the worker commits it, replays it with
/// pgbench at two and at four connections, and returns the better rate in
/// fires per second (`None`, with the reason printed, when the server log
/// cannot be read). `fires` sets how many batches the replay runs.
pub(crate) async fn ceiling(
    ports: &Ports,
    owners: &[User],
    url: &str,
    fires: usize,
) -> Option<f64> {
    let plain = url.split('?').next().unwrap_or(url);
    let db = plain.rsplit('/').next().unwrap_or(plain);
    let at = Timestamp::now().round(Unit::Second).expect("round");
    let at_us = at.as_microsecond();
    seed(ports, owners, &[at], BATCH, Channel::InApp).await;
    psql(
        url,
        &format!(
            "CREATE TABLE replay_triggers AS SELECT * FROM triggers WHERE due_us = {at_us}; \
             CREATE TABLE replay_alarms AS SELECT * FROM alarms WHERE id IN (SELECT alarm_id FROM replay_triggers)"
        ),
    );
    let log = match StatementLog::start(db).await {
        Ok(log) => log,
        Err(why) => {
            println!("    (a) ceiling: not measured: {why}");
            return None;
        }
    };
    let worker = Worker::start(url);
    worker
        .wait_done(BATCH as u64, std::time::Duration::from_secs(120))
        .await;
    worker.stop();
    let found = match log.finish(|t| fenced(t) >= BATCH).await {
        Ok(found) => found,
        Err(why) => {
            println!("    (a) ceiling: not measured: {why}");
            return None;
        }
    };
    let claim = found
        .iter()
        .find(|t| t.statements.iter().any(is_claim))
        .expect("the worker's claim was logged");
    let completes: Vec<&Transaction> = found
        .iter()
        .filter(|t| t.statements.iter().any(is_fence))
        .collect();
    let owner_ids: HashSet<String> = owners
        .iter()
        .map(|u| format!("'{}'", u.id().as_uuid()))
        .collect();
    let alarm_ids: HashSet<String> = psql(url, "SELECT id FROM replay_alarms")
        .lines()
        .map(|l| format!("'{}'", l.trim()))
        .collect();
    let replay = match replay_script(claim, &completes, &owner_ids, &alarm_ids) {
        Ok(r) => r,
        Err(why) => {
            println!("    (a) ceiling: not measured: {why}");
            return None;
        }
    };
    let batches = (fires / BATCH).max(8);
    let values: Vec<String> = replay
        .pairs
        .iter()
        .map(|(a, t)| format!("({a}::uuid, {t}::uuid)"))
        .collect();
    let started = std::time::Instant::now();
    psql(
        url,
        &format!(
            "CREATE TABLE replay_pairs (alarm_id uuid, token uuid); \
             INSERT INTO replay_pairs VALUES {}; \
             CREATE SEQUENCE replay_batch; \
             INSERT INTO alarms SELECT (jsonb_populate_record(NULL::alarms, to_jsonb(a) || jsonb_build_object('id', {}))).* \
               FROM replay_alarms a, generate_series(1, {batches}) b; \
             INSERT INTO triggers SELECT (jsonb_populate_record(NULL::triggers, to_jsonb(t) || jsonb_build_object('alarm_id', {}, 'lease_token', {}, 'lease_until_us', t.due_us + 3600000000))).* \
               FROM replay_triggers t JOIN replay_pairs p USING (alarm_id), generate_series(1, {batches}) b; \
             INSERT INTO triggers (alarm_id, occurrence_us, kind, owner_id, occurrence_local, due_us, alarm_version) \
               SELECT gen_random_uuid(), t.occurrence_us, t.kind, t.owner_id, t.occurrence_local, t.due_us, t.alarm_version \
               FROM replay_triggers t, generate_series(1, {batches}) b",
            values.join(", "),
            mapped("b", "a.id"),
            mapped("b", "t.alarm_id"),
            mapped("b", "p.token"),
        ),
    );
    println!(
        "    (a) ceiling: captured one batch ({} fires: 1 claim, {} completions, {} statements); seeded {batches} batches for pgbench in {:.1} s",
        replay.pairs.len(),
        completes.len(),
        claim.statements.len() + completes.iter().map(|t| t.statements.len()).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    let script = std::env::temp_dir().join("alarm-bench-fire-batch.sql");
    std::fs::write(&script, &replay.script).expect("write the script");
    let mut best: f64 = 0.0;
    let mut done = 0;
    let quiet = std::time::Instant::now();
    for clients in [2, 4] {
        let run = (batches / 2 / clients) * clients;
        settle(url);
        quiet_stats(quiet).await;
        let before = rows_written(url);
        let (pg_before, own_before) = (pg_cpu_ticks(), children_ticks());
        let clock = std::time::Instant::now();
        let tps = pgbench(url, &script, clients, run);
        let took = clock.elapsed().as_secs_f64();
        let pg_cpu = (pg_cpu_ticks() - pg_before) as f64 / 100.0;
        let client_cpu = (children_ticks() - own_before) as f64 / 100.0;
        let written = rows_written(url) - before;
        let rate = tps * replay.pairs.len() as f64;
        done += run;
        println!(
            "    pgbench, {clients} connections, {run} batches: {rate:.0} fires/s ({:.1} rows per fire, {:.0} rows written/s); PostgreSQL CPU {:.0} %, pgbench {:.0} % of one core",
            written as f64 / (run * replay.pairs.len()) as f64,
            written as f64 / (run * replay.pairs.len()) as f64 * rate,
            100.0 * pg_cpu / took,
            100.0 * client_cpu / took,
        );
        best = best.max(rate);
    }
    let delivered: usize = psql(
        url,
        &format!(
            "SELECT count(*) FROM deliveries WHERE alarm_id IN (SELECT {} FROM replay_alarms a, generate_series(1, {batches}) b)",
            mapped("b", "a.id")
        ),
    )
    .trim()
    .parse()
    .unwrap_or(0);
    println!(
        "    the replay wrote {delivered} deliveries for {} replayed fires",
        done * replay.pairs.len()
    );
    psql(
        url,
        &format!(
            "DELETE FROM alarms WHERE id IN (SELECT {} FROM replay_alarms a, generate_series(1, {batches}) b); \
             DELETE FROM triggers t WHERE NOT EXISTS (SELECT 1 FROM alarms a WHERE a.id = t.alarm_id); \
             DELETE FROM ringing r WHERE NOT EXISTS (SELECT 1 FROM alarms a WHERE a.id = r.alarm_id); \
             DROP TABLE replay_alarms, replay_triggers, replay_pairs; DROP SEQUENCE replay_batch",
            mapped("b", "a.id")
        ),
    );
    Some(best)
}
