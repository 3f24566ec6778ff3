//! `cargo xtask bench upload`: a 100 MiB sound through alarm-http's tus API (release, embedded SQLite, objects in s3s-fs) in one PATCH and in twenty, and in the same run a direct object_store multipart put of the same bytes to the same server; prints each throughput, the ratios (goal ≥ 0.5) and alarm-http's peak RSS growth during an upload (goal ≤ 32 MiB). Asserts nothing about time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::ports::{BlobMeta, BlobStore, ByteStream};
use alarm_storage::testing::S3Server;
use alarm_storage::{Backend, ObjectBlobs};
use base64::Engine as _;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

const API: &str = "127.0.0.1:18091";
const SIZE: usize = 100 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const ROUNDS: usize = 3;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One HTTP/1.1 request over a fresh connection, its body written in
/// 64 KiB slices of `body`: status, headers (lower-cased names) and body.
fn http(
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(API).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("head");
    for slice in body.chunks(CHUNK) {
        s.write_all(slice).expect("body");
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, text) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, text.to_owned())
}

fn json_call(method: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut headers = vec![("Content-Type", "application/json".to_owned())];
    if let Some(t) = token {
        headers.push(("Authorization", format!("Bearer {t}")));
    }
    let (status, _, text) = http(method, path, &headers, body.to_string().as_bytes());
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `VmHWM` and `VmRSS` of `pid`, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn start(data_dir: &std::path::Path, server: &S3Server) -> Child {
    let s3 = server.settings();
    let child = Command::new(root().join("target/release/alarm-http"))
        .env_clear()
        .env("DATA_DIR", data_dir)
        .env("LISTEN_ADDR", API)
        .env("OPS_LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_LEVEL", "error")
        .env("STORAGE_BACKEND", "s3")
        .env("STORAGE_ENDPOINT", s3.endpoint.clone().expect("endpoint"))
        .env("STORAGE_BUCKET", &s3.bucket)
        .env("STORAGE_PATH_STYLE", "true")
        .env("STORAGE_ACCESS_KEY_ID", &s3.access_key_id)
        .env(
            "STORAGE_SECRET_ACCESS_KEY",
            s3.secret_access_key.expose_secret(),
        )
        .env("QUOTA_SOUND_MEGABYTES_PER_USER", "100000")
        .env("QUOTA_SOUNDS_PER_USER", "1000")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn alarm-http");
    let started = Instant::now();
    while TcpStream::connect(API).is_err() || http("GET", "/health/ready", &[], b"").0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn data() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..SIZE).map(|i| (i * 131 % 251) as u8).collect();
    bytes[..12].copy_from_slice(b"RIFF\x24\x08\0\0WAVE");
    bytes
}

/// One upload through the API in `patches` PATCHes: its time and the
/// server's peak RSS growth (KiB) over its RSS before it.
fn through_api(pid: u32, token: &str, data: &[u8], patches: usize) -> (Duration, u64) {
    let auth = ("Authorization", format!("Bearer {token}"));
    let tus = ("Tus-Resumable", "1.0.0".to_owned());
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode("bench.wav")
    );
    let (status, headers, body) = http(
        "POST",
        "/api/v1/uploads",
        &[
            auth.clone(),
            tus.clone(),
            ("Upload-Length", SIZE.to_string()),
            ("Upload-Metadata", meta),
        ],
        b"",
    );
    assert_eq!(status, 201, "create: {body}");
    let location = headers
        .iter()
        .find(|(n, _)| n == "location")
        .map(|(_, v)| v.clone())
        .expect("location");
    // Linux: `5` resets the peak RSS to the current RSS (the bench runs as
    // the server's user).
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let (_, before) = memory(pid);
    let started = Instant::now();
    let step = SIZE.div_ceil(patches);
    for from in (0..SIZE).step_by(step) {
        let to = (from + step).min(SIZE);
        let (status, _, body) = http(
            "PATCH",
            &location,
            &[
                auth.clone(),
                tus.clone(),
                ("Upload-Offset", from.to_string()),
                ("Content-Type", "application/offset+octet-stream".to_owned()),
            ],
            &data[from..to],
        );
        assert_eq!(status, 204, "PATCH at {from}: {body}");
    }
    let elapsed = started.elapsed();
    let (peak, _) = memory(pid);
    (elapsed, peak.saturating_sub(before))
}

fn direct(runtime: &tokio::runtime::Runtime, server: &S3Server, data: &Bytes) -> Duration {
    let blobs = ObjectBlobs::new(
        Backend::S3(server.settings()).open().expect("open"),
        u64::MAX,
    );
    let meta = BlobMeta {
        id: BlobId::generate(),
        owner: UserId::generate(),
        content_type: "audio/wav".into(),
        size: SIZE as u64,
        created_at: Timestamp::now(),
    };
    let chunks = (0..SIZE)
        .step_by(CHUNK)
        .map(|at| Ok(data.slice(at..(at + CHUNK).min(SIZE))))
        .collect();
    let started = Instant::now();
    runtime
        .block_on(blobs.put(meta, ByteStream::from_chunks(chunks)))
        .expect("put");
    started.elapsed()
}

fn rate(d: Duration) -> f64 {
    SIZE as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(root())
        .args([
            "build",
            "--release",
            "-p",
            "alarm-http",
            "--bin",
            "alarm-http",
        ])
        .status()
        .expect("cargo");
    assert!(status.success(), "release build failed");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = S3Server::start();
    let data_dir = std::env::temp_dir().join(format!("alarm-bench-upload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut app = start(&data_dir, &server);
    let pid = app.id();
    let body = json!({"email": "bench@example.com", "password": "a long bench passphrase", "display_name": "Bench", "time_zone": "UTC"});
    let (s, b) = json_call("POST", "/api/v1/auth/register", None, &body);
    assert_eq!(s, 201, "register: {b}");
    let body = json!({"email": "bench@example.com", "password": "a long bench passphrase"});
    let (s, b) = json_call("POST", "/api/v1/auth/login", None, &body);
    assert_eq!(s, 200, "login: {b}");
    let token = b["access_token"].as_str().expect("token").to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let data = data();
    let shared = Bytes::from(data.clone());
    println!(
        "upload bench: {} MiB through alarm-http (release) into s3s-fs; direct object_store multipart put beside it; {ROUNDS} rounds",
        SIZE >> 20
    );
    let (mut directs, mut ones, mut twenties, mut peaks) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cold = 0;
    for round in 1..=ROUNDS {
        let (one, peak_one) = through_api(pid, &token, &data, 1);
        if round == 1 {
            cold = peak_one;
        }
        let d = direct(&runtime, &server, &shared);
        let (twenty, peak_twenty) = through_api(pid, &token, &data, 20);
        println!(
            "  round {round}: direct {:.1} MiB/s; tus one PATCH {:.1} MiB/s (server peak RSS +{:.1} MiB); twenty PATCHes {:.1} MiB/s (+{:.1} MiB)",
            rate(d),
            rate(one),
            peak_one as f64 / 1024.0,
            rate(twenty),
            peak_twenty as f64 / 1024.0
        );
        directs.push(rate(d));
        ones.push(rate(one));
        twenties.push(rate(twenty));
        peaks.push(peak_one.max(peak_twenty) as f64 / 1024.0);
    }
    let (d, one, twenty) = (median(directs), median(ones), median(twenties));
    println!(
        "medians: direct {d:.1} MiB/s; tus one PATCH {one:.1} MiB/s (ratio {:.2}); twenty PATCHes {twenty:.1} MiB/s (ratio {:.2}); goal ratio >= 0.5",
        one / d,
        twenty / d
    );
    println!(
        "server peak RSS growth during an upload: cold (first) +{:.1} MiB, worst of all rounds +{:.1} MiB; goal <= 32 MiB",
        cold as f64 / 1024.0,
        peaks.iter().copied().fold(0.0, f64::max)
    );
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = app.wait();
    let _ = std::fs::remove_dir_all(&data_dir);
}
