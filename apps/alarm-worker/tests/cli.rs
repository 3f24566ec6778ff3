//! The `alarm-worker` binary as an operator meets it: `--help`, `--print-config` with the URL's password redacted, bad settings refused by name, and the embedded default starting and stopping on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alarm-worker"));
    // Only what each test sets: the developer's own DATABASE_URL must not leak in.
    c.env_clear();
    c
}

#[test]
fn help_documents_every_setting() {
    let out = bin().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for setting in [
        "--config",
        "--print-config",
        "OPS_LISTEN_ADDR",
        "DATA_DIR",
        "DB_MAX_CONNECTIONS",
        "WORKER_GRACE_SECONDS",
        "WORKER_LEASE_SECONDS",
        "WORKER_EXPIRY_MINUTES",
        "WORKER_PREFETCH_MS",
        "WORKER_BATCH",
        "WORKER_IDLE_POLL_MS",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "SHUTDOWN_TIMEOUT_SECONDS",
        "DATABASE_URL",
        "DATABASE_URL_FILE",
        "WEBHOOK_ALLOW_PRIVATE",
        "WEBHOOK_TIMEOUT_SECONDS",
        "WEBHOOK_MAX_ATTEMPTS",
        "WEBHOOK_RETRY_MIN_MS",
        "WEBHOOK_RETRY_MAX_SECONDS",
        "WEBHOOK_DISABLE_AFTER",
        "WEBHOOK_BREAKER_WINDOW",
        "WEBHOOK_BREAKER_OPEN_MS",
        "DELIVERY_BATCH",
        "DELIVERY_CONCURRENCY",
        "DELIVERY_LEASE_SECONDS",
        "DELIVERY_IDLE_POLL_MS",
        "SMTP_HOST",
        "SMTP_PORT",
        "SMTP_TLS",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "SMTP_FROM",
    ] {
        assert!(
            help.contains(setting),
            "--help does not mention {setting}:\n{help}"
        );
    }
}

#[test]
fn print_config_redacts_the_database_password_and_layers_sources() {
    let dir = std::env::temp_dir().join(format!("alarm-worker-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let toml = dir.join("worker.toml");
    std::fs::write(&toml, "grace_seconds = 120\nbatch = 200\n").expect("write");
    let out = bin()
        .args(["--config", &toml.display().to_string(), "--print-config"])
        .env(
            "DATABASE_URL",
            "postgres://alarm:hunter2-password@db.internal:5432/alarms",
        )
        .env("WORKER_BATCH", "300")
        .env("SMTP_HOST", "smtp.example.com")
        .env("SMTP_FROM", "alarms@example.com")
        .env("SMTP_USERNAME", "mailer")
        .env("SMTP_PASSWORD", "smtp-hunter3")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("db.internal"), "{text}");
    assert!(
        text.contains("grace_seconds = 120"),
        "the file is read: {text}"
    );
    assert!(text.contains("batch = 300"), "the environment wins: {text}");
    assert!(text.contains("lease_seconds = 30"), "defaults: {text}");
    assert!(
        !text.contains("smtp-hunter3"),
        "the SMTP password is redacted: {text}"
    );
    assert!(text.contains("smtp_password = \"[redacted]\""), "{text}");
    assert!(
        text.contains("smtp_port = 587"),
        "STARTTLS by default: {text}"
    );
    assert!(text.contains("webhook_allow_private = false"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invalid_configuration_fails_naming_the_setting() {
    for (var, value) in [
        ("OPS_LISTEN_ADDR", "nowhere"),
        ("WORKER_GRACE_SECONDS", "0"),
        ("WORKER_LEASE_SECONDS", "2"),
        ("WORKER_EXPIRY_MINUTES", "1441"),
        ("WORKER_PREFETCH_MS", "120001"),
        ("WORKER_BATCH", "0"),
        ("DB_MAX_CONNECTIONS", "0"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "0"),
        ("LOG_LEVEL", "[[["),
        ("DATABASE_URL", "mysql://h/db"),
        ("WEBHOOK_MAX_ATTEMPTS", "0"),
        ("WEBHOOK_ALLOW_PRIVATE", "perhaps"),
        ("DELIVERY_CONCURRENCY", "0"),
    ] {
        let out = bin().env(var, value).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {err}");
        assert!(err.contains(var), "{var}={value} is not named: {err}");
    }
}

#[test]
fn embedded_default_starts_reports_ready_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("alarm-worker-embedded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut child, addr) = embedded(&dir);
    let live = get(&addr, "/health/live");
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    // The engine's first claim cycle runs right after start; readiness
    // follows it, with the engine right (one engine on this file).
    ready_until(&addr, "\"holds_engine_right\":true");
    assert!(
        dir.join("alarms.db").exists(),
        "the embedded database is created"
    );
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = child.wait().expect("wait");
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Starts an embedded worker on `dir`; returns it and its ops address.
fn embedded(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = bin()
        .env("DATA_DIR", dir)
        .env("OPS_LISTEN_ADDR", "127.0.0.1:0")
        .env("WORKER_LEASE_SECONDS", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let addr = line
        .trim()
        .rsplit_once("http://")
        .map(|(_, a)| a.to_owned())
        .expect("ops address");
    (child, addr)
}

/// `GET path` on the ops port over a plain socket: the raw response.
fn get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// Polls `/health/ready` (another process: there is nothing to await)
/// until it answers 200 with `want` in its body.
fn ready_until(addr: &str, want: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let out = get(addr, "/health/ready");
        if out.starts_with("HTTP/1.1 200") && out.contains(want) {
            return out;
        }
        assert!(std::time::Instant::now() < deadline, "never {want}: {out}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn one_engine_per_sqlite_file_and_the_standby_takes_over() {
    let dir = std::env::temp_dir().join(format!("alarm-worker-standby-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut first, first_addr) = embedded(&dir);
    ready_until(&first_addr, "\"holds_engine_right\":true");
    let (mut second, second_addr) = embedded(&dir);
    ready_until(&second_addr, "\"holds_engine_right\":false");
    ready_until(&first_addr, "\"holds_engine_right\":true");
    let pid = first.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    assert!(first.wait().expect("wait").success());
    // The first gave the right up on its way out; the standby takes it at
    // its next look (a third of the 3 s lease).
    ready_until(&second_addr, "\"holds_engine_right\":true");
    let _ = second.kill();
    let _ = second.wait();
    let _ = std::fs::remove_dir_all(dir);
}
