//! `cargo xtask bench abuse`: alarm-http (release, embedded SQLite) pinned to one core while attackers on the other core try what issue #18 measured (heavy schedules and big lists, logins with huge e-mails, an address's failed logins, a slow-client flood); prints normal users' `GET /alarms/{id}` latency and the engine's fire lateness next to the same figures without attackers, and the process's peak RSS. Asserts nothing about time.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alarm_domain::jiff::Timestamp;
use serde_json::{Value, json};

const API: &str = "127.0.0.1:18090";
/// Normal users, each at most one request a second (under the per-user
/// alarm limit of 100 a minute), each from its own address.
const USERS: usize = 10;
const PASSWORD: &str = "a long bench passphrase";

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn must(c: &mut Command, what: &str) {
    let status = c.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// One HTTP/1.1 request from `client` (named by the trusted proxy header)
/// over a fresh connection: status and JSON body.
fn http(client: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let Ok(mut s) = TcpStream::connect(API) else {
        return (0, Value::Null);
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let sent = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nX-Forwarded-For: {client}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if sent.is_err() {
        return (0, Value::Null);
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let text = out.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(text).unwrap_or(Value::Null))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The process's CPU time so far (user + system), in clock ticks of 10 ms.
fn cpu_ticks(pid: u32) -> u64 {
    alarm_appkit::metrics::cpu_ticks(Some(pid)).unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn start(data: &std::path::Path) -> Child {
    let bin = root().join("target/release/alarm-http");
    let child = Command::new("taskset")
        .arg("-c")
        .arg("0")
        .arg(bin)
        .env_clear()
        .env("DATA_DIR", data)
        .env("LISTEN_ADDR", API)
        .env("OPS_LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_LEVEL", "error")
        .env("TRUSTED_PROXIES", "127.0.0.1/32")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn alarm-http");
    let started = Instant::now();
    while http("127.0.0.1", "GET", "/health/ready", None, "").0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Registers and logs in `email` from `client`.
fn account(client: &str, email: &str) -> String {
    let body =
        json!({"email": email, "password": PASSWORD, "display_name": "Bench", "time_zone": "UTC"});
    let (s, b) = http(
        client,
        "POST",
        "/api/v1/auth/register",
        None,
        &body.to_string(),
    );
    assert_eq!(s, 201, "register {email}: {b}");
    let body = json!({"email": email, "password": PASSWORD});
    let (s, b) = http(
        client,
        "POST",
        "/api/v1/auth/login",
        None,
        &body.to_string(),
    );
    assert_eq!(s, 200, "login {email}: {b}");
    b["access_token"].as_str().expect("token").to_owned()
}

/// One-off alarms for `user`, ringing one a second from `from`; their ids.
fn ringers(client: &str, token: &str, from: Timestamp, n: usize) -> Vec<(String, Timestamp)> {
    (0..n)
        .map(|i| {
            let at = from + alarm_domain::jiff::SignedDuration::from_secs(i as i64);
            let local = at.to_zoned(alarm_domain::jiff::tz::TimeZone::UTC);
            let body = json!({"name": format!("ring {i}"), "time_zone": "UTC", "escalation": {"max_level": 0},
                "schedules": [{"kind": "once", "date": local.date().to_string(),
                    "time": format!("{:02}:{:02}:{:02}", local.hour(), local.minute(), local.second())}]});
            let (s, b) = http(client, "POST", "/api/v1/alarms", Some(token), &body.to_string());
            assert_eq!(s, 201, "{b}");
            (b["id"].as_str().expect("id").to_owned(), at)
        })
        .collect()
}

/// Seconds each alarm rang after its instant (the `triggered` event's
/// time minus its occurrence: the engine's own record).
fn lateness(client: &str, token: &str, alarms: &[(String, Timestamp)]) -> Vec<f64> {
    let mut out = Vec::new();
    for (id, _) in alarms {
        // The reader is one user reading 120 histories at once: past the
        // per-user budget on `/alarms…` it is told to wait, and waits, as
        // a client should (a 429 read as "never rang" would be a lie).
        let b = loop {
            let (s, b) = http(
                client,
                "GET",
                &format!("/api/v1/alarms/{id}/events"),
                Some(token),
                "",
            );
            match s {
                200 => break b,
                429 => std::thread::sleep(Duration::from_secs(1)),
                other => panic!("events of {id}: {other} {b}"),
            }
        };
        for e in b["items"].as_array().into_iter().flatten() {
            if e["kind"] == "triggered" {
                let at: Option<Timestamp> = e["at"].as_str().and_then(|t| t.parse().ok());
                let occ: Option<Timestamp> = e["occurrence"].as_str().and_then(|t| t.parse().ok());
                if let (Some(at), Some(occ)) = (at, occ) {
                    out.push(at.duration_since(occ).as_secs_f64() * 1000.0);
                }
            }
        }
    }
    out.sort_by(f64::total_cmp);
    out
}

struct Phase {
    latencies_ms: Vec<f64>,
    /// The server's CPU use over the phase, in percent of one core.
    cpu_percent: f64,
    peak_rss_kib: u64,
    errors: u64,
}

/// Normal users read their alarm, each once a second, for `length`, while
/// the server's RSS is sampled.
fn normal_load(users: &[(String, String, String)], pid: u32, length: Duration) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let (began, ticks) = (Instant::now(), cpu_ticks(pid));
    let ends = Instant::now() + length;
    let readers: Vec<_> = users
        .iter()
        .cloned()
        .map(|(client, token, alarm)| {
            let (latencies, errors) = (latencies.clone(), errors.clone());
            std::thread::spawn(move || {
                while Instant::now() < ends {
                    let t = Instant::now();
                    let (s, _) = http(
                        &client,
                        "GET",
                        &format!("/api/v1/alarms/{alarm}"),
                        Some(&token),
                        "",
                    );
                    if s == 200 {
                        latencies
                            .lock()
                            .expect("lock")
                            .push(t.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
                }
            })
        })
        .collect();
    for r in readers {
        let _ = r.join();
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let mut latencies_ms = std::mem::take(&mut *latencies.lock().expect("lock"));
    latencies_ms.sort_by(f64::total_cmp);
    let cpu_percent = (cpu_ticks(pid) - ticks) as f64 / began.elapsed().as_secs_f64();
    Phase {
        latencies_ms,
        cpu_percent,
        peak_rss_kib: peak.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
    }
}

/// An attacker: runs `attack` in a loop until stopped, counting answers by status.
fn attacker(
    name: &'static str,
    stop: Arc<AtomicBool>,
    mut attack: impl FnMut() -> u16 + Send + 'static,
) -> std::thread::JoinHandle<(&'static str, u64, BTreeMap<u16, u64>, Duration)> {
    // `--only=heavy,e-mail` runs just the attackers whose names contain
    // one of the words, to see what each one costs.
    let only: Option<Vec<String>> = std::env::args()
        .find_map(|a| a.strip_prefix("--only=").map(str::to_owned))
        .map(|w| w.split(',').map(str::to_owned).collect());
    let chosen = only.is_none_or(|words| words.iter().any(|w| name.contains(w.as_str())));
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut statuses = BTreeMap::new();
        if !chosen {
            return (name, 0, statuses, started.elapsed());
        }
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            *statuses.entry(attack()).or_insert(0) += 1;
            n += 1;
        }
        (name, n, statuses, started.elapsed())
    })
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // A full phase spans at least one whole per-minute window of the
    // request limits, so the figures include a budget's burst at its start.
    let length = Duration::from_secs(if quick { 10 } else { 60 });
    must(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(root())
            .args([
                "build",
                "--release",
                "-p",
                "alarm-http",
                "--bin",
                "alarm-http",
            ]),
        "release build",
    );
    // Clients (this process and its threads) on core 1, the server on core 0
    // (after the build, which wants both).
    must(
        Command::new("taskset").args(["-p", "-c", "1", &std::process::id().to_string()]),
        "taskset",
    );
    let data = std::env::temp_dir().join(format!("alarm-bench-abuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut server = start(&data);
    let pid = server.id();
    // `taskset` execs the server, so the child's pid is the server's.
    let idle_rss = rss_kib(pid);

    let users: Vec<(String, String, String)> = (0..USERS)
        .map(|i| {
            let client = format!("203.0.113.{}", i + 10);
            let token = account(&client, &format!("user{i}@example.com"));
            let body = json!({"name": "wake", "time_zone": "UTC",
                "schedules": [{"kind": "weekly", "days": ["mon", "wed", "fri"], "time": "07:00"}]});
            let (s, b) = http(
                &client,
                "POST",
                "/api/v1/alarms",
                Some(&token),
                &body.to_string(),
            );
            assert_eq!(s, 201, "{b}");
            (client, token, b["id"].as_str().expect("id").to_owned())
        })
        .collect();
    let (ring_client, ring_token) = (
        "203.0.113.99".to_owned(),
        account("203.0.113.99", "ringer@example.com"),
    );
    let lead = alarm_domain::jiff::SignedDuration::from_secs(3);
    let rings = (length.as_secs() as usize).saturating_sub(4).min(90);

    // Quiet.
    let quiet_ringers = ringers(&ring_client, &ring_token, Timestamp::now() + lead, rings);
    let quiet = normal_load(&users, pid, length);

    // Under attack.
    let attack_ringers = ringers(&ring_client, &ring_token, Timestamp::now() + lead, rings);
    let stop = Arc::new(AtomicBool::new(false));
    let heavy_token = account("198.51.100.1", "heavy@example.com");
    let every = |n: u32| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let rule = format!(
        "FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR={};BYMINUTE={}",
        every(24),
        every(60)
    );
    let heavy = json!({"name": "heavy", "time_zone": "UTC",
        "schedules": vec![json!({"kind": "rule", "rrule": rule, "dtstart": "2026-01-01T00:00"}); 16]})
    .to_string();
    let mut flip = false;
    let attackers = vec![
        attacker("heavy schedules + list(100)", stop.clone(), move || {
            flip = !flip;
            if flip {
                http(
                    "198.51.100.1",
                    "POST",
                    "/api/v1/alarms",
                    Some(&heavy_token),
                    &heavy,
                )
                .0
            } else {
                http(
                    "198.51.100.1",
                    "GET",
                    "/api/v1/alarms?limit=100",
                    Some(&heavy_token),
                    "",
                )
                .0
            }
        }),
        attacker("logins with a 500 kB e-mail", stop.clone(), {
            let body =
                json!({"email": format!("{}@example.com", "a".repeat(500_000)), "password": "x"})
                    .to_string();
            move || http("198.51.100.2", "POST", "/api/v1/auth/login", None, &body).0
        }),
        attacker("failed logins from one address", stop.clone(), {
            let mut i = 0usize;
            move || {
                i += 1;
                let body = json!({"email": format!("user{}@example.com", i % USERS), "password": "a wrong guess!!"}).to_string();
                http("198.51.100.3", "POST", "/api/v1/auth/login", None, &body).0
            }
        }),
        attacker("slow clients (half a request head)", stop.clone(), {
            let mut open: Vec<TcpStream> = Vec::new();
            move || {
                // Keeps 300 half-sent requests open; the server's head
                // deadline closes them, and each close makes room for a
                // new one. Answers: 1 = a half request sent, 2 = all 300
                // still open (waited 10 ms), 3 = could not connect.
                open.retain_mut(|s| {
                    let mut b = [0u8; 1];
                    let _ = s.set_nonblocking(true);
                    matches!(s.read(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
                });
                if open.len() < 300 {
                    match TcpStream::connect(API) {
                        Ok(mut s) => {
                            let _ = s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n");
                            open.push(s);
                            1
                        }
                        Err(_) => 3,
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(10));
                    2
                }
            }
        }),
    ];
    let attacked = normal_load(&users, pid, length);
    stop.store(true, Ordering::Relaxed);
    let reports: Vec<_> = attackers
        .into_iter()
        .map(|a| a.join().expect("attacker"))
        .collect();
    // The owners of the attacked accounts still log in from their own addresses.
    let owners_ok = users
        .iter()
        .enumerate()
        .filter(|(i, (client, _, _))| {
            let body =
                json!({"email": format!("user{i}@example.com"), "password": PASSWORD}).to_string();
            http(client, "POST", "/api/v1/auth/login", None, &body).0 == 200
        })
        .count();
    // Let the last alarms ring before reading their events.
    std::thread::sleep(Duration::from_secs(3));
    let quiet_late = lateness(&ring_client, &ring_token, &quiet_ringers);
    let attack_late = lateness(&ring_client, &ring_token, &attack_ringers);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data);

    println!(
        "\nabuse bench: alarm-http (release, embedded SQLite) on core 0, clients on core 1, {} s per phase",
        length.as_secs()
    );
    println!("{:<40} {:>12} {:>12}", "", "quiet", "attacked");
    let row = |name: &str, a: f64, b: f64| println!("{name:<40} {a:>12.2} {b:>12.2}");
    row(
        "normal GET /alarms/{id} p50 (ms)",
        percentile(&quiet.latencies_ms, 0.5),
        percentile(&attacked.latencies_ms, 0.5),
    );
    row(
        "normal GET /alarms/{id} p99 (ms)",
        percentile(&quiet.latencies_ms, 0.99),
        percentile(&attacked.latencies_ms, 0.99),
    );
    row(
        "normal requests answered",
        quiet.latencies_ms.len() as f64,
        attacked.latencies_ms.len() as f64,
    );
    row(
        "normal requests not 200",
        quiet.errors as f64,
        attacked.errors as f64,
    );
    row(
        "fire lateness p50 (ms)",
        percentile(&quiet_late, 0.5),
        percentile(&attack_late, 0.5),
    );
    row(
        "fire lateness p99 (ms)",
        percentile(&quiet_late, 0.99),
        percentile(&attack_late, 0.99),
    );
    row(
        "alarms rung / expected",
        quiet_late.len() as f64 / rings.max(1) as f64,
        attack_late.len() as f64 / rings.max(1) as f64,
    );
    row(
        "server CPU (% of its core)",
        quiet.cpu_percent,
        attacked.cpu_percent,
    );
    row(
        "peak RSS (MiB)",
        quiet.peak_rss_kib as f64 / 1024.0,
        attacked.peak_rss_kib as f64 / 1024.0,
    );
    println!("idle RSS before load: {:.1} MiB", idle_rss as f64 / 1024.0);
    let ratio = percentile(&attacked.latencies_ms, 0.99) / percentile(&quiet.latencies_ms, 0.99);
    println!("p99 attacked / quiet: {ratio:.2}x (goal: at most 2x); peak RSS goal: under 256 MiB");
    println!("owners logging in from their own addresses after the attack: {owners_ok}/{USERS}");
    println!(
        "\nattackers (tries per second, answers by HTTP status; 0 = no answer; slow clients: 1 = half request sent, 2 = 300 open, 3 = refused):"
    );
    for (name, n, statuses, took) in reports {
        println!(
            "  {name:<38} {:>8.1}/s  {statuses:?}",
            n as f64 / took.as_secs_f64()
        );
    }
}
