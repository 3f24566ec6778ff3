//! `cargo xtask bench function`: alarm-http (release) started cold as an OCI Function over Fn's unix socket, on PostgreSQL and s3s-fs, and in the same run started as a plain TCP server on the same database: time to listening and to the first `/health/ready` answer (goal ≤ 500 ms; the seed asks < 5 s), and warm call latency through the function socket beside plain HTTP. Asserts nothing about time.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alarm_storage::testing::S3Server;
use secrecy::ExposeSecret as _;

const ROUNDS: usize = 10;
const WARM_CALLS: usize = 500;
const TCP: &str = "127.0.0.1:18093";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Status of one call the way Fn's agent makes it: `POST /call` with the client's request in
/// `Fn-Http-*` headers; the wrapped status comes back in `Fn-Http-Status`.
fn fn_call(socket: &Path, path: &str) -> u16 {
    let deadline =
        alarm_domain::jiff::Timestamp::now() + alarm_domain::jiff::SignedDuration::from_secs(30);
    let head = format!(
        "POST /call HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\
         Fn-Call-Id: bench\r\nFn-Deadline: {deadline}\r\nFn-Intent: httprequest\r\n\
         Fn-Http-Method: GET\r\nFn-Http-Request-Url: {path}\r\n\r\n"
    );
    let mut s = UnixStream::connect(socket).expect("connect to the function");
    s.write_all(head.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("fn-http-status:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Status of one plain HTTP/1.1 GET.
fn http_get(path: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(TCP).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The app with the database and object store of the run; `extra` makes it a function or a
/// TCP server. Returns the child and the instant its start-up log says it serves.
fn start(db_url: &str, s3: &S3Server, extra: &[(&str, String)]) -> (Child, Instant, Duration) {
    let settings = s3.settings();
    let spawned = Instant::now();
    let mut child = Command::new(root().join("target/release/alarm-http"))
        .env_clear()
        .env("DATABASE_URL", db_url)
        .env(
            "JWT_SECRET_KEY",
            "bench-function-signing-key-of-32-bytes-or-more",
        )
        .env(
            "DATA_ENCRYPTION_KEYS",
            "YmVuY2ggZnVuY3Rpb24gZGF0YSBrZXksIDMyIGIhISE=",
        )
        .env("STORAGE_BACKEND", "s3")
        .env(
            "STORAGE_ENDPOINT",
            settings.endpoint.clone().expect("endpoint"),
        )
        .env("STORAGE_BUCKET", &settings.bucket)
        .env("STORAGE_PATH_STYLE", "true")
        .env("STORAGE_ACCESS_KEY_ID", &settings.access_key_id)
        .env(
            "STORAGE_SECRET_ACCESS_KEY",
            settings.secret_access_key.expose_secret(),
        )
        .env("LOG_FORMAT", "json")
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn alarm-http");
    // The start-up line ("serving as a function" or "listening") is the signal; the rest of
    // the log is drained so that the pipe never fills.
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("serving as a function") || line.contains("API listening") {
                let _ = tx.send(Ok(Instant::now()));
            }
            if seen.len() < 4096 {
                seen.push_str(&line);
                seen.push('\n');
            }
        }
        let _ = tx.send(Err(seen));
    });
    let ready = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(at)) => at,
        Ok(Err(log)) => panic!("alarm-http stopped before it served:\n{log}"),
        Err(e) => panic!("alarm-http did not say it serves: {e}"),
    };
    (child, spawned, ready - spawned)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "p50 {:>7.1} ms  max {:>7.1} ms",
        v[v.len() / 2],
        v[v.len() - 1]
    )
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    assert!(
        runtime.block_on(alarm_sql::testing::postgres_available("bench function")),
        "the function bench needs PostgreSQL on 127.0.0.1:5432"
    );
    let db = runtime.block_on(alarm_sql::testing::PgTestDb::new());
    let s3 = S3Server::start();
    let dir = std::env::temp_dir().join(format!("alarm-bench-fn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let socket = dir.join("lsnr.sock");
    let listener = format!("unix:{}", socket.display());

    let (mut fn_listen, mut fn_first, mut tcp_listen, mut tcp_first) =
        (vec![], vec![], vec![], vec![]);
    let (mut fn_warm, mut tcp_warm) = (vec![], vec![]);
    for round in 0..ROUNDS {
        // Side by side in each round: the function, then the TCP server, each from a cold
        // process on the same database and object store.
        let (child, spawned, listening) = start(
            &db.url,
            &s3,
            &[
                ("FN_LISTENER", listener.clone()),
                ("FN_FORMAT", "http-stream".to_owned()),
            ],
        );
        let first = fn_call(&socket, "/health/ready");
        assert_eq!(first, 200, "the function's first answer");
        fn_first.push(ms(spawned.elapsed()));
        fn_listen.push(ms(listening));
        if round == 0 {
            for _ in 0..WARM_CALLS {
                let at = Instant::now();
                assert_eq!(fn_call(&socket, "/health/live"), 200);
                fn_warm.push(ms(at.elapsed()));
            }
        }
        stop(child);

        let (child, spawned, listening) = start(
            &db.url,
            &s3,
            &[
                ("LISTEN_ADDR", TCP.to_owned()),
                ("OPS_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
                ("NO_WORKER", "true".to_owned()),
                ("STORAGE_NO_SPOOL", "true".to_owned()),
            ],
        );
        assert_eq!(http_get("/health/ready"), 200, "the server's first answer");
        tcp_first.push(ms(spawned.elapsed()));
        tcp_listen.push(ms(listening));
        if round == 0 {
            for _ in 0..WARM_CALLS {
                let at = Instant::now();
                assert_eq!(http_get("/health/live"), 200);
                tcp_warm.push(ms(at.elapsed()));
            }
        }
        stop(child);
    }
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "alarm-http (release) cold starts, {ROUNDS} rounds, PostgreSQL and s3s-fs on this {cpus}-core machine"
    );
    println!("  function: spawn to listening     {}", summary(fn_listen));
    let fn_p50 = {
        let mut v = fn_first.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "  function: spawn to first answer  {}   (goal 500 ms; seed PER-003: < 5 s)",
        summary(fn_first)
    );
    println!("  tcp:      spawn to listening     {}", summary(tcp_listen));
    let tcp_p50 = {
        let mut v = tcp_first.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("  tcp:      spawn to first answer  {}", summary(tcp_first));
    println!(
        "  first answer, function ÷ tcp (p50): {:.2}",
        fn_p50 / tcp_p50
    );
    println!(
        "warm /health/live, {WARM_CALLS} calls, a new connection each: function socket {} | tcp {}",
        summary(fn_warm),
        summary(tcp_warm)
    );
    println!(
        "(OCI adds its own image pull and container start to a function's cold start: not measured here)"
    );
    drop(s3);
    runtime.block_on(db.drop_db());
    let _ = std::fs::remove_dir_all(dir);
}
