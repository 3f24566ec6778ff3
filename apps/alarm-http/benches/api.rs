//! `cargo xtask bench api`: alarm-http (release) on the local PostgreSQL — cold start, idle and loaded RSS, closed-loop maximum rate and open-loop latency at half of it, beside a poem hello-world as the framework's ceiling, and the cost of metrics and traces (CPU, rate, and instructions under callgrind when valgrind is installed). Prints figures; asserts nothing about time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const API: &str = "127.0.0.1:18080";
const HELLO: &str = "127.0.0.1:18081";
const DB: &str = "alarm_bench_api";
const SECRET: &str = "bench-signing-key-bench-signing-key-bench-signing-key";

fn pg_admin() -> String {
    std::env::var("ALARM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn db_url() -> String {
    let admin = pg_admin();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    // Loopback: TLS would only add its handshake (about 90 ms per new
    // connection here) to the cold start being measured.
    format!("{base}/{DB}?sslmode=disable")
}

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

fn must(c: &mut Command, what: &str) {
    let status = c.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// One HTTP/1.1 request over a fresh connection.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let text = out.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(text).unwrap_or(Value::Null))
}

fn ready(addr: &str, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
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

/// What a run of the API records and exports.
#[derive(Clone, Copy, PartialEq)]
enum Telemetry {
    /// Neither metrics nor traces.
    Off,
    /// Metrics only (the default).
    Metrics,
    /// Metrics, and traces at the default sampler (one root in ten)
    /// exported to a local OTLP sink.
    Traced,
    /// Metrics, and every trace exported (`OTEL_TRACES_SAMPLER=always_on`).
    TracedAll,
}

fn start_api(migrate: bool, telemetry: Telemetry) -> (Child, Duration) {
    start_api_with(migrate, telemetry, "")
}

/// [`start_api`] whose traces (if any) go to the OTLP endpoint `sink`.
fn start_api_with(migrate: bool, telemetry: Telemetry, sink: &str) -> (Child, Duration) {
    start_api_under(&[], migrate, telemetry, sink)
}

/// [`start_api_with`] run by `wrapper` (a program and its arguments, e.g.
/// valgrind), when not empty.
fn start_api_under(
    wrapper: &[&str],
    migrate: bool,
    telemetry: Telemetry,
    sink: &str,
) -> (Child, Duration) {
    let bin = root().join("target/release/alarm-http");
    let started = Instant::now();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&bin);
            c
        }
        None => Command::new(bin),
    };
    // Only what is set here: no OTEL_* or other setting of the caller's.
    command.env_clear();
    if matches!(telemetry, Telemetry::Traced | Telemetry::TracedAll) {
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", sink);
    }
    if telemetry == Telemetry::TracedAll {
        command.env("OTEL_TRACES_SAMPLER", "always_on");
    }
    if let Some(path) = std::env::var_os("PATH").filter(|_| !wrapper.is_empty()) {
        command.env("PATH", path);
    }
    let child = command
        .env("DATABASE_URL", db_url())
        .env(
            "DATA_ENCRYPTION_KEYS",
            "YmVuY2ggYXBpIGRhdGEga2V5LCAzMiBieXRlcyBvayE=",
        )
        .env("JWT_SECRET_KEY", SECRET)
        .env("LISTEN_ADDR", API)
        .env("OPS_LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_LEVEL", "warn")
        .env("LOG_FORMAT", "json")
        .env("AUTO_MIGRATE", if migrate { "true" } else { "false" })
        .env(
            "METRICS",
            if telemetry == Telemetry::Off {
                "false"
            } else {
                "true"
            },
        )
        // A load test: one user, one address, thousands of alarms and
        // requests a second. The operator's settings lift the limits.
        .env("QUOTA_ALARMS_PER_USER", "1000000")
        .env("RATE_LIMIT_PER_IP_PER_MINUTE", "100000000")
        .env("RATE_LIMIT_ALARMS_PER_USER_PER_MINUTE", "100000000")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn alarm-http");
    // Under valgrind a start takes some seconds.
    let patience = Duration::from_secs(if wrapper.is_empty() { 30 } else { 300 });
    while !ready(API, "/health/ready") {
        assert!(
            started.elapsed() < patience,
            "alarm-http did not become ready"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    (child, started.elapsed())
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    ok: u64,
    non2xx: u64,
    cut: u64,
}

fn oha(args: &[&str], url: &str) -> Load {
    let out = Command::new("oha")
        .args(["--no-tui", "--output-format", "json"])
        .args(args)
        .arg(url)
        .output()
        .expect("oha");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("oha output: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    let codes = v["statusCodeDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let ok: u64 = codes
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    let all: u64 = codes.values().map(|n| n.as_u64().unwrap_or(0)).sum();
    // oha's "errors" are almost all requests still in flight when its timer
    // ended; they are reported apart from answers that were not 2xx.
    let cut = v["errorDistribution"]
        .as_object()
        .map(|e| e.values().map(|n| n.as_u64().unwrap_or(0)).sum::<u64>())
        .unwrap_or(0);
    Load {
        rps: v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_ms: v["latencyPercentiles"]["p50"].as_f64().unwrap_or(0.0) * 1000.0,
        p99_ms: v["latencyPercentiles"]["p99"].as_f64().unwrap_or(0.0) * 1000.0,
        ok,
        non2xx: all - ok,
        cut,
    }
}

/// Samples a process's RSS while `f` runs; returns the peak (KiB).
fn peak_rss_during<T>(pid: u32, f: impl FnOnce() -> T) -> (T, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let out = f();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    (out, peak.load(Ordering::Relaxed))
}

/// The process's CPU time so far (user + system), in clock ticks of 10 ms.
fn cpu_ticks(pid: u32) -> u64 {
    alarm_appkit::metrics::cpu_ticks(Some(pid)).unwrap_or(0)
}

/// The median (one run disturbed by the shared machine moves it least).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // Only the cost of metrics and traces, with more rounds.
    let telemetry_only = std::env::args().any(|a| a == "--telemetry");
    let secs = if quick { "3s" } else { "10s" };
    if Command::new("oha")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        println!("oha not found: installing it from crates.io (one-time, a few minutes)");
        must(
            cargo().args(["install", "oha", "--locked"]),
            "cargo install oha",
        );
    }
    must(
        cargo().args([
            "build",
            "--release",
            "-p",
            "alarm-http",
            "--bin",
            "alarm-http",
            "--example",
            "hello",
        ]),
        "release build",
    );
    let psql = |sql: &str| {
        must(
            Command::new("psql").args([pg_admin().as_str(), "-q", "-c", sql]),
            sql,
        );
    };
    psql(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"));
    psql(&format!("CREATE DATABASE {DB}"));

    // First start migrates; the measured cold starts find the schema current.
    let (child, _) = start_api(true, Telemetry::Metrics);
    stop(child);
    let mut starts = Vec::new();
    for _ in 0..5 {
        let (child, t) = start_api(false, Telemetry::Metrics);
        starts.push(t);
        stop(child);
    }
    starts.sort();
    let (api, _) = start_api(false, Telemetry::Metrics);
    let pid = api.id();
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = rss_kib(pid);

    // A user with 1,000 alarms.
    let (s, b) = http(
        API,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(&json!({
        "email": "bench@example.com", "password": "bench password 123", "display_name": "Bench"})),
    );
    assert_eq!(s, 201, "{b}");
    let (_, b) = http(
        API,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({
        "email": "bench@example.com", "password": "bench password 123"})),
    );
    let token = b["access_token"].as_str().expect("token").to_owned();
    let alarm = json!({"name": "bench", "time_zone": "America/Sao_Paulo",
        "schedules": [{"kind": "weekly", "days": ["mon", "wed", "fri"], "time": "07:00"}]});
    let mut id = String::new();
    for _ in 0..1000 {
        let (s, b) = http(API, "POST", "/api/v1/alarms", Some(&token), Some(&alarm));
        assert_eq!(s, 201, "{b}");
        id = b["id"].as_str().expect("id").to_owned();
    }
    let auth = format!("authorization: Bearer {token}");
    let get_url = format!("http://{API}/api/v1/alarms/{id}");
    let list_url = format!("http://{API}/api/v1/alarms?limit=50");
    let create_url = format!("http://{API}/api/v1/alarms");
    let body = alarm.to_string();

    let closed = |url: &str, extra: &[&str]| {
        let mut args = vec!["-z", secs, "-c", "32", "-H", auth.as_str()];
        args.extend_from_slice(extra);
        oha(&args, url)
    };
    let open = |url: &str, rate: f64| {
        let q = format!("{:.0}", rate.max(1.0));
        oha(
            &[
                "-z",
                secs,
                "-c",
                "64",
                "-q",
                &q,
                "--latency-correction",
                "-H",
                auth.as_str(),
            ],
            url,
        )
    };

    // Each open-loop run follows its own closed-loop run, before the
    // create load grows the table and sets autovacuum going; a pause lets
    // the previous run's connections and WAL settle.
    let settle = || std::thread::sleep(Duration::from_secs(2));
    let loads = (!telemetry_only).then(|| {
        let ((get_max, get_half, list_max, list_half), loaded_rss) = peak_rss_during(pid, || {
            let g = closed(&get_url, &[]);
            settle();
            let gh = open(&get_url, g.rps / 2.0);
            settle();
            let l = closed(&list_url, &[]);
            settle();
            let lh = open(&list_url, l.rps / 2.0);
            (g, gh, l, lh)
        });
        settle();
        let create_max = closed(
            &create_url,
            &["-m", "POST", "-T", "application/json", "-d", body.as_str()],
        );
        (
            get_max, get_half, list_max, list_half, loaded_rss, create_max,
        )
    });
    stop(api);

    // The cost of metrics and traces: the same GET load with neither,
    // with metrics, with metrics and traces exported at the default sampler
    // (one request in ten that brings no parent) and at 100 %, alternated
    // so that drift on this shared machine hits each alike; medians.
    let rounds = if telemetry_only { 5 } else { 2 };
    let sinks = [(); 2].map(|()| alarm_telemetry::testing::Sink::otlp());
    let mut rps = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    // The server's CPU per 1,000 answered requests: steadier than a rate
    // on two cores shared with PostgreSQL and the load generator.
    let mut cpu = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let modes = [
        Telemetry::Off,
        Telemetry::Metrics,
        Telemetry::Traced,
        Telemetry::TracedAll,
    ];
    for round in 0..rounds {
        // Each round starts at the next mode, so no mode always runs first
        // (on a fresh pool and a quiet machine) or last.
        for i in (0..modes.len()).map(|k| (k + round) % modes.len()) {
            let mode = modes[i];
            let sink = &sinks[usize::from(mode == Telemetry::TracedAll)];
            let (api, _) = start_api_with(false, mode, &sink.endpoint());
            settle();
            let before = cpu_ticks(api.id());
            let load = closed(&get_url, &[]);
            let used = cpu_ticks(api.id()) - before;
            stop(api);
            rps[i].push(load.rps);
            cpu[i].push(used as f64 * 10.0 * 1000.0 / load.ok.max(1) as f64);
        }
    }
    let [metrics_off, metrics_on, traced, traced_all] = rps.map(|v| median(&v));
    let [cpu_off, cpu_metrics, cpu_traced, cpu_traced_all] = cpu.map(|v| median(&v));
    let cost = |name: &str, rate: f64, ms: f64, bytes: Option<usize>, goal: &str| {
        println!(
            "{name:<34} {rate:>6.0} req/s (cost vs off {:>5.1}%); server CPU {ms:>5.1} ms per 1,000 requests (cost vs off {:>5.1}%){}{goal}",
            (1.0 - rate / metrics_off) * 100.0,
            (ms / cpu_off - 1.0) * 100.0,
            bytes.map_or(String::new(), |b| format!("; {} KiB of OTLP", b / 1024)),
        );
    };
    let print_costs = || {
        println!(
            "\nthe cost of telemetry: GET /alarms/{{id}}, closed loop, {rounds} alternating runs each, medians"
        );
        cost("off", metrics_off, cpu_off, None, "");
        cost("metrics", metrics_on, cpu_metrics, None, "   goal <= 5%");
        cost(
            "metrics, traces (default: 1 in 10)",
            traced,
            cpu_traced,
            Some(sinks[0].bytes()),
            "   goal <= 5%",
        );
        cost(
            "metrics, traces (100%)",
            traced_all,
            cpu_traced_all,
            Some(sinks[1].bytes()),
            "",
        );
    };
    // The same cost in instructions, which the shared machine does not
    // blur: each mode's server under callgrind, counted over a fixed
    // number of requests after a warm-up.
    let instructions = |url: &str| -> Option<[f64; 4]> {
        let found = Command::new("valgrind")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            println!("valgrind not found: the instruction counts are skipped");
            return None;
        }
        const COUNTED: u64 = 1000;
        let dir = std::env::temp_dir().join(format!("bench-api-callgrind-{}", std::process::id()));
        let mut per_request = [0.0; 4];
        for (i, mode) in modes.iter().enumerate() {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("callgrind dir");
            let out = format!("--callgrind-out-file={}/cg.%p", dir.display());
            let sink = &sinks[usize::from(*mode == Telemetry::TracedAll)];
            let (api, _) = start_api_under(
                &["valgrind", "--tool=callgrind", "--quiet", &out],
                false,
                *mode,
                &sink.endpoint(),
            );
            let pid = api.id().to_string();
            let load = |n: u64| oha(&["-n", &n.to_string(), "-c", "8", "-H", auth.as_str()], url);
            // -z zeroes the counts, -d dumps them.
            let control = |flag: &str| {
                must(
                    Command::new("callgrind_control")
                        .args([flag, &pid])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null()),
                    &format!("callgrind_control {flag}"),
                );
            };
            load(200);
            control("-z");
            let counted = load(COUNTED);
            assert_eq!(counted.ok, COUNTED, "every counted request answered");
            control("-d");
            stop(api);
            // The dump taken after the zeroing holds only the counted
            // requests (and what the process did meanwhile, export included).
            let total = std::fs::read_dir(&dir)
                .expect("callgrind dir")
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".1"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .find_map(|text| {
                    text.lines()
                        .find_map(|l| l.strip_prefix("summary: ").or(l.strip_prefix("totals: ")))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .expect("a callgrind dump with totals");
            per_request[i] = total as f64 / COUNTED as f64;
        }
        let _ = std::fs::remove_dir_all(&dir);
        Some(per_request)
    };
    let print_instructions = |per_request: Option<[f64; 4]>| {
        let Some(counts) = per_request else { return };
        println!(
            "\nthe cost of telemetry in instructions (callgrind): GET /alarms/{{id}}, 1,000 requests after 200, 8 connections"
        );
        for (name, count, goal) in [
            ("off", counts[0], ""),
            ("metrics", counts[1], "   goal <= 5%"),
            (
                "metrics, traces (default: 1 in 10)",
                counts[2],
                "   goal <= 5%",
            ),
            ("metrics, traces (100%)", counts[3], ""),
        ] {
            println!(
                "{name:<34} {:>7.0} thousand instructions per request (cost vs off {:>5.1}%){goal}",
                count / 1000.0,
                (count / counts[0] - 1.0) * 100.0
            );
        }
    };
    let counts = instructions(&get_url);
    let Some((get_max, get_half, list_max, list_half, loaded_rss, create_max)) = loads else {
        print_costs();
        print_instructions(counts);
        psql(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"));
        return;
    };

    let mut hello = Command::new(root().join("target/release/examples/hello"))
        .env("LISTEN_ADDR", HELLO)
        .spawn()
        .expect("hello");
    while !ready(HELLO, "/") {
        std::thread::sleep(Duration::from_millis(1));
    }
    let hello_rss = rss_kib(hello.id());
    let hello_max = oha(&["-z", secs, "-c", "32"], &format!("http://{HELLO}/"));
    let hello_half = {
        let q = format!("{:.0}", hello_max.rps / 2.0);
        oha(
            &["-z", secs, "-c", "64", "-q", &q, "--latency-correction"],
            &format!("http://{HELLO}/"),
        )
    };
    let _ = hello.kill();
    let _ = hello.wait();
    psql(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"));

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "\nalarm-http (release) on PostgreSQL, 1,000 alarms for the caller; oha on the same 2-core machine"
    );
    println!(
        "cold start to /health/ready = 200: median {:.1} ms (min {:.1}, max {:.1}, 5 starts)   goal <= 100 ms",
        ms(starts[2]),
        ms(starts[0]),
        ms(starts[4])
    );
    println!(
        "idle RSS: {:.1} MB   goal <= 30 MB   (hello-world idle: {:.1} MB)",
        idle_rss as f64 / 1024.0,
        hello_rss as f64 / 1024.0
    );
    println!(
        "RSS peak under closed-loop load: {:.1} MB",
        loaded_rss as f64 / 1024.0
    );
    println!(
        "\n{:<28} {:>10} {:>9} {:>9} {:>8} {:>7} {:>5}",
        "closed loop, 32 conns", "req/s", "p50 ms", "p99 ms", "ok", "non-2xx", "cut"
    );
    for (name, l) in [
        ("GET /alarms/{id}", &get_max),
        ("GET /alarms?limit=50", &list_max),
        ("POST /alarms", &create_max),
        ("hello-world (ceiling)", &hello_max),
    ] {
        println!(
            "{name:<28} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>7} {:>5}",
            l.rps, l.p50_ms, l.p99_ms, l.ok, l.non2xx, l.cut
        );
    }
    println!(
        "\n{:<28} {:>10} {:>9} {:>9} {:>8} {:>7} {:>5}",
        "open loop at 50% of max", "req/s", "p50 ms", "p99 ms", "ok", "non-2xx", "cut"
    );
    for (name, l) in [
        ("GET /alarms/{id}", &get_half),
        ("GET /alarms?limit=50", &list_half),
        ("hello-world", &hello_half),
    ] {
        println!(
            "{name:<28} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>7} {:>5}",
            l.rps, l.p50_ms, l.p99_ms, l.ok, l.non2xx, l.cut
        );
    }
    println!(
        "\nratios: GET alarm / hello-world max rate = {:.3}; list / GET = {:.3}; create / GET = {:.3}",
        get_max.rps / hello_max.rps,
        list_max.rps / get_max.rps,
        create_max.rps / get_max.rps
    );
    println!(
        "goal: GET alarm p99 <= 5 ms at 50% load: measured {:.2} ms",
        get_half.p99_ms
    );
    print_costs();
    print_instructions(counts);
}
