//! The `alarm-http` binary as an operator meets it: `--help`, `--print-config`, refusal of bad settings, and the embedded default starting, serving and stopping on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use alarm_telemetry::testing::Taken;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alarm-http"));
    // Only what each test sets: the developer's own DATABASE_URL or key must not leak in.
    c.env_clear();
    c
}

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alarm-http-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `GET path` over a plain socket; returns the status and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    send(addr, "GET", path, "", None)
}

#[test]
fn help_documents_every_setting() {
    let out = bin().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for setting in [
        "--config",
        "--print-config",
        "LISTEN_ADDR",
        "DATA_DIR",
        "DB_MAX_CONNECTIONS",
        "AUTO_MIGRATE",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "JWT_ACCESS_MINUTES",
        "JWT_REFRESH_DAYS",
        "CORS_ORIGINS",
        "API_BASE_URL",
        "ADMIN_EMAILS",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "SHUTDOWN_TIMEOUT_SECONDS",
        "DATABASE_URL",
        "DATABASE_URL_FILE",
        "JWT_SECRET_KEY",
        "JWT_SECRET_KEY_FILE",
        "--no-worker",
        "NO_WORKER",
        // The engine and notification groups, shared with alarm-worker.
        "WORKER_GRACE_SECONDS",
        "WORKER_IDLE_POLL_MS",
        "WEBHOOK_ALLOW_PRIVATE",
        "DELIVERY_BATCH",
        "SMTP_HOST",
        "SMTP_PASSWORD",
        // Defaults and ranges come from the same declaration.
        "[default: 127.0.0.1:8080]",
        "(1..=60) [default: 15]",
        "[default: 600]",
    ] {
        assert!(
            help.contains(setting),
            "--help does not mention {setting}:\n{help}"
        );
    }
}

#[test]
fn print_config_redacts_secrets() {
    let secret = "super-secret-signing-key-that-is-long-enough-123";
    let out = bin()
        .arg("--print-config")
        .env(
            "DATABASE_URL",
            "postgres://alarm:hunter2-password@db.internal:5432/alarms",
        )
        .env("JWT_SECRET_KEY", secret)
        .env("ADMIN_EMAILS", "root@example.com, ops@example.com")
        .env("CORS_ORIGINS", "https://app.example.com")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains(secret) && !text.contains("hunter2"),
        "{text}"
    );
    assert!(text.contains("jwt_secret_key = \"[redacted]\""), "{text}");
    assert!(
        text.contains("db.internal"),
        "the host stays visible: {text}"
    );
    assert!(text.contains("embedded = false"));
    assert!(text.contains("\"ops@example.com\""));
    assert!(text.contains("listen = \"127.0.0.1:8080\""));
    assert!(
        text.contains("no_worker = false"),
        "the engine runs in-process by default: {text}"
    );
}

#[test]
fn config_file_is_read_and_the_environment_wins_over_it() {
    let dir = temp_dir("goodcfg");
    let toml = dir.join("alarm.toml");
    std::fs::write(
        &toml,
        "listen = \"0.0.0.0:9000\"\nadmin_emails = [\"boss@example.com\"]\njwt_issuer = \"from-file\"\nlog_format = \"json\"\n",
    )
    .expect("write");
    let out = bin()
        .args(["--config", &toml.display().to_string(), "--print-config"])
        .env("JWT_ISSUER", "from-env")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("listen = \"0.0.0.0:9000\""), "{text}");
    assert!(text.contains("\"boss@example.com\""), "{text}");
    assert!(text.contains("jwt_issuer = \"from-env\""), "{text}");
    assert!(text.contains("log_format = \"json\""), "{text}");
    assert!(text.contains("embedded = true"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invalid_configuration_fails_naming_the_setting() {
    let dir = temp_dir("badcfg");
    let toml = dir.join("bad.toml");
    std::fs::write(&toml, "listen = \"127.0.0.1:1\"\nnot_a_setting = 3\n").expect("write");
    let long_key = "k".repeat(40);
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<String>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (vec![("LISTEN_ADDR", "nowhere")], vec![], "LISTEN_ADDR"),
        (vec![("JWT_SECRET_KEY", "short")], vec![], "JWT_SECRET_KEY"),
        (
            vec![("DATABASE_URL", "postgres://h/db")],
            vec![],
            "JWT_SECRET_KEY",
        ),
        (
            vec![
                ("DATABASE_URL", "mysql://h/db"),
                ("JWT_SECRET_KEY", &long_key),
            ],
            vec![],
            "DATABASE_URL",
        ),
        (
            vec![("CORS_ORIGINS", "not an origin")],
            vec![],
            "CORS_ORIGINS",
        ),
        (vec![("CORS_ORIGINS", "*")], vec![], "CORS_ORIGINS"),
        (vec![("ADMIN_EMAILS", "nope")], vec![], "ADMIN_EMAILS"),
        (
            vec![("JWT_ACCESS_MINUTES", "0")],
            vec![],
            "JWT_ACCESS_MINUTES",
        ),
        (vec![("API_BASE_URL", "ftp://x")], vec![], "API_BASE_URL"),
        (
            vec![],
            vec!["--config".to_owned(), toml.display().to_string()],
            "--config",
        ),
        (
            vec![("JWT_SECRET_KEY_FILE", "/nonexistent/key")],
            vec![],
            "JWT_SECRET_KEY_FILE",
        ),
    ];
    for (env, args, setting) in cases {
        let out = bin()
            .envs(env.clone())
            .args(&args)
            .arg("--print-config")
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?} {args:?}: {err}");
        assert!(
            err.contains(setting),
            "{env:?}: stderr does not name {setting}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Command line > environment > `--config` file > default, for one setting.
#[test]
fn precedence_is_command_line_environment_file_default() {
    let dir = temp_dir("precedence");
    let toml = dir.join("alarm.toml");
    std::fs::write(&toml, "jwt_access_minutes = 20\n").expect("write");
    let config = toml.display().to_string();
    let minutes = |file: bool, env: bool, cli: bool| {
        let mut c = bin();
        c.arg("--print-config");
        if file {
            c.args(["--config", &config]);
        }
        if env {
            c.env("JWT_ACCESS_MINUTES", "25");
        }
        if cli {
            c.args(["--jwt-access-minutes", "30"]);
        }
        let out = c.output().expect("run");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix("jwt_access_minutes = "))
            .unwrap_or_else(|| panic!("no jwt_access_minutes in {text}"))
            .to_owned()
    };
    assert_eq!(minutes(true, true, true), "30", "the command line wins");
    assert_eq!(minutes(true, true, false), "25", "then the environment");
    assert_eq!(minutes(true, false, false), "20", "then the file");
    assert_eq!(minutes(false, false, false), "15", "then the default");
    let _ = std::fs::remove_dir_all(dir);
}

/// One bad value per settings group, from the environment and from the
/// command line, each refused with exit code 2 naming its variable.
#[test]
fn a_bad_value_in_each_group_is_named() {
    for (var, flag, value) in [
        ("LISTEN_ADDR", "--listen", "nowhere"),
        ("LOG_LEVEL", "--log-level", "[[["),
        ("DB_MAX_CONNECTIONS", "--db-max-connections", "0"),
        ("AUTO_MIGRATE", "--auto-migrate", "perhaps"),
        ("WORKER_GRACE_SECONDS", "--grace-seconds", "0"),
        ("WEBHOOK_MAX_ATTEMPTS", "--webhook-max-attempts", "many"),
    ] {
        for from_env in [true, false] {
            let mut c = bin();
            c.arg("--print-config");
            if from_env {
                c.env(var, value);
            } else {
                c.args([flag, value]);
            }
            let out = c.output().expect("run");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{var}={value}: {err}");
            assert!(err.contains(var), "{var}={value}: {err}");
        }
    }
}

/// A webhook receiver on 127.0.0.1 answering 200 to every request: its
/// address and the requests it took.
fn receiver() -> (String, Taken) {
    let sink =
        alarm_telemetry::testing::Sink::answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    (sink.addr, sink.taken)
}

/// The metric names a PromQL expression reads: identifiers that are not
/// functions (followed by `(`), aggregations, keywords, label names inside
/// `{…}` or the labels of a `by (…)`; histogram series are named by their
/// family.
fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' || c == '"' || c == '[' {
            // Skip a label matcher list, a string or a range.
            let close = match c {
                '{' => '}',
                '[' => ']',
                _ => '"',
            };
            i += 1;
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if matches!(word.as_str(), "by" | "without") {
                // Skip the grouping labels.
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
            } else if next != Some(&'(')
                && !matches!(
                    word.as_str(),
                    "and" | "or" | "unless" | "on" | "ignoring"
                        // Aggregations may put `by (…)` before their `(`.
                        | "sum" | "avg" | "min" | "max" | "count" | "group" | "stddev" | "stdvar"
                        | "topk" | "bottomk" | "quantile" | "count_values"
                )
            {
                let family = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| word.strip_suffix(s).filter(|f| f.ends_with("_seconds")))
                    .unwrap_or(&word)
                    .to_owned();
                names.push(family);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// `method path` with a JSON `body` (and a bearer `token`) over a plain
/// socket; returns the status and body.
fn send(addr: &str, method: &str, path: &str, body: &str, token: Option<&str>) -> (u16, String) {
    send_with(addr, method, path, body, token, "")
}

/// [`send`] with `extra` header lines (each ending in CRLF).
fn send_with(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
    extra: &str,
) -> (u16, String) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let extra = format!("{auth}{extra}Content-Type: application/json\r\n");
    let (status, _, body) = exchange(addr, method, path, &extra, body.as_bytes());
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// One request over a fresh connection: `method path` with the header
/// lines `extra` (each ending in CRLF) and a `body` of any bytes; returns
/// the status, the headers (names lower-cased) and the body, de-chunked.
fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    extra: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("write");
    s.write_all(body).expect("write the body");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let mut rest = out.get(end + 4..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        rest = dechunk(&rest);
    }
    (status, headers, rest)
}

/// The bytes of a chunked HTTP/1.1 body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok())
            .expect("a chunk size");
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    out
}

/// Starts the embedded default in `dir`; returns the child and its address.
fn start(dir: &PathBuf) -> (std::process::Child, String) {
    let (child, addr, _) = start_with_ops(dir);
    (child, addr)
}

/// Starts the embedded default in `dir`; returns the child, its address
/// and its ops address.
fn start_with_ops(dir: &PathBuf) -> (std::process::Child, String, String) {
    start_with_env(dir, &[])
}

/// [`start_with_ops`] with extra environment variables.
fn start_with_env(dir: &PathBuf, env: &[(&str, &str)]) -> (std::process::Child, String, String) {
    // The log lines, for the tests that read them.
    let log = std::fs::File::create(dir.join("stderr.log")).expect("log file");
    spawn_server(dir, env, log.into())
}

/// The embedded default in `dir` with `env`, its log lines to `stderr`:
/// the child, its address and its ops address (read from its banner).
fn spawn_server(
    dir: &PathBuf,
    env: &[(&str, &str)],
    stderr: Stdio,
) -> (std::process::Child, String, String) {
    let mut child = bin()
        .envs(env.iter().copied())
        .current_dir(dir)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("OPS_LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the banner");
    // "Smart Alarm API on http://127.0.0.1:PORT (docs: …)"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    assert!(line.contains("/docs"), "{line}");
    let ops = line
        .split("metrics: http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no ops address in {line:?}"))
        .to_owned();
    (child, addr, ops)
}

fn sigterm(child: &mut std::process::Child) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    child.wait().expect("wait")
}

/// Registers ana@example.com and logs her in: her access token.
fn sign_up(addr: &str) -> String {
    let (status, body) = send(
        addr,
        "POST",
        "/api/v1/auth/register",
        r#"{"email":"ana@example.com","password":"a long passphrase","display_name":"Ana"}"#,
        None,
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        addr,
        "POST",
        "/api/v1/auth/login",
        r#"{"email":"ana@example.com","password":"a long passphrase"}"#,
        None,
    );
    assert_eq!(status, 200, "{body}");
    body.split("\"access_token\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("token")
        .to_owned()
}

/// The spans an OTLP/HTTP collector took: (name, trace id, span id,
/// parent span id), ids in hex.
fn spans(taken: &Taken) -> Vec<(String, String, String, String)> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut out = Vec::new();
    for (head, body) in taken.lock().expect("taken").iter() {
        assert!(head.starts_with("post /v1/traces "), "{head}");
        assert!(
            head.contains("content-type: application/x-protobuf"),
            "{head}"
        );
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("protobuf");
        for resource in request.resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    out.push((
                        span.name,
                        hex(&span.trace_id),
                        hex(&span.span_id),
                        hex(&span.parent_span_id),
                    ));
                }
            }
        }
    }
    out
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, a client's trace runs through
/// the request into the webhook delivery it queued (through the outbox
/// row) and on to the receiver, and the spans reach the collector.
#[test]
fn traces_follow_a_request_to_the_webhook_it_caused() {
    let dir = temp_dir("traces");
    let collector = alarm_telemetry::testing::Sink::otlp();
    let (hooks, received) = receiver();
    let endpoint = collector.endpoint();
    let (mut child, addr, _) = start_with_env(
        &dir,
        &[
            ("WEBHOOK_ALLOW_PRIVATE", "true"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let token = sign_up(&addr);
    let hook = format!(r#"{{"url":"http://{hooks}/hook","events":["alarm.triggered"]}}"#);
    let (status, body) = send(&addr, "POST", "/api/v1/webhooks", &hook, Some(&token));
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    // And a client whose trace is not recorded (flags 00): the decision is
    // followed, so nothing of that trace is exported, yet the context still
    // travels to the receiver.
    let unrecorded = "0af7651916cd43dd8448eb211c80319c";
    for parent in [
        format!("00-{client_trace}-{client_span}-01"),
        format!("00-{unrecorded}-b7ad6b7169203331-00"),
    ] {
        let (status, body) = send_with(
            &addr,
            "POST",
            &format!("/api/v1/webhooks/{id}/test"),
            "",
            Some(&token),
            &format!("traceparent: {parent}\r\n"),
        );
        assert_eq!(status, 202, "{body}");
    }
    // The pings go out in the background: poll the receiver.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let pings: Vec<String> = loop {
        let taken = received.lock().expect("taken");
        if taken.len() >= 2 {
            break taken.iter().map(|(head, _)| head.clone()).collect();
        }
        drop(taken);
        assert!(
            std::time::Instant::now() < deadline,
            "the pings did not arrive"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let parent_sent = |trace: &str| {
        pings
            .iter()
            .flat_map(|p| p.lines())
            .filter_map(|l| l.strip_prefix("traceparent: "))
            .map(|v| v.trim().to_owned())
            .find(|v| v.starts_with(&format!("00-{trace}-")))
            .unwrap_or_else(|| panic!("no traceparent of {trace} in {pings:?}"))
    };
    let sent = parent_sent(client_trace);
    assert!(
        sent.ends_with("-01"),
        "the receiver joins the client's recorded trace: {sent}"
    );
    assert!(
        parent_sent(unrecorded).ends_with("-00"),
        "an unrecorded trace stays unrecorded downstream"
    );
    // SIGTERM flushes the spans still queued.
    assert!(sigterm(&mut child).success());
    let spans = spans(&collector.taken);
    let in_trace: Vec<_> = spans.iter().filter(|s| s.1 == client_trace).collect();
    let request = in_trace
        .iter()
        .find(|s| s.0 == "POST /api/v1/webhooks/{id}/test")
        .unwrap_or_else(|| panic!("the request's span, named by its route: {spans:?}"));
    assert_eq!(request.3, client_span, "a child of the client's span");
    let delivery = in_trace
        .iter()
        .find(|s| s.0 == "delivery")
        .unwrap_or_else(|| panic!("the delivery's span in the client's trace: {spans:?}"));
    assert!(
        sent.contains(&delivery.2),
        "the receiver's parent is the delivery attempt"
    );
    // The delivery descends from the request through the stored row.
    let parent_of = |span: &str| in_trace.iter().find(|s| s.2 == span).map(|s| s.3.clone());
    let mut at = delivery.3.clone();
    let mut hops = 0;
    while at != request.2 {
        at = parent_of(&at).unwrap_or_else(|| panic!("{at} is not in the trace: {spans:?}"));
        hops += 1;
        assert!(hops < 10, "{spans:?}");
    }
    assert!(
        in_trace.iter().any(|s| s.0 == "db.transaction"),
        "the store calls are spans too: {spans:?}"
    );
    assert!(
        spans.iter().all(|s| s.1 != unrecorded),
        "nothing of an unrecorded trace is exported: {spans:?}"
    );
    // The request's JSON log line names its trace and span.
    let log = std::fs::read_to_string(dir.join("stderr.log")).expect("log");
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "request" && l["span"]["trace_id"] == client_trace)
        .unwrap_or_else(|| panic!("no request line in the client's trace: {log}"));
    assert_eq!(line["span"]["span_id"], request.2.as_str(), "{line}");
    // An unrecorded trace's lines name it too (and a span id of this
    // process, not the client's).
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "request" && l["span"]["trace_id"] == unrecorded)
        .unwrap_or_else(|| panic!("no request line in the unrecorded trace: {log}"));
    let own = line["span"]["span_id"].as_str().unwrap_or_default();
    assert!(own.len() == 16 && own != "b7ad6b7169203331", "{line}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `{vault:…}` references in settings and secrets are resolved at start
/// from the configured providers; one that cannot be resolved stops the
/// start naming the setting and the reference, never a value.
#[test]
fn settings_take_secrets_by_reference() {
    let dir = temp_dir("secret-refs");
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).expect("dir");
    let key = "file-provided-signing-key-0123456789abcdef";
    std::fs::write(secrets.join("jwt-key"), format!("{key}\n")).expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        secrets.join("jwt-key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let secrets_dir = secrets.display().to_string();
    let providers = [
        ("SECRETS_PROVIDERS", "env,file"),
        ("SECRETS_DIR", secrets_dir.as_str()),
        ("SECRETS_ENV_PREFIX", "ALARM_SECRET_"),
    ];
    // A plain setting and a secret, each by reference.
    let out = bin()
        .arg("--print-config")
        .envs(providers)
        .env("ALARM_SECRET_CORS", "https://app.example.com")
        .env("CORS_ORIGINS", "${vault:env:cors}")
        .env("JWT_SECRET_KEY", "{vault:jwt-key}")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Resolved, yet not shown: a reference may name a secret for a
    // setting that is not one.
    assert!(
        text.contains("cors_origins = \"[from a secret reference]\""),
        "{text}"
    );
    assert!(!text.contains("app.example.com"), "{text}");
    assert!(text.contains("secrets_providers = \"env,file\""), "{text}");
    // Unresolvable: missing, bound to a provider that lacks it, a provider
    // without its settings.
    for (var, value, expected) in [
        (
            "JWT_SECRET_KEY",
            "{vault:nope}",
            "`{vault:nope}` was not found (providers asked: env, file)",
        ),
        (
            "DATABASE_URL",
            "postgres://app:{vault:env:jwt-key}@db/alarms",
            "`{vault:env:jwt-key}` was not found (providers asked: env)",
        ),
        ("SECRETS_PROVIDERS", "vault", "needs VAULT_ADDR"),
    ] {
        let out = bin()
            .arg("--print-config")
            .envs(providers)
            .env(var, value)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert!(err.contains(var) && err.contains(expected), "{var}: {err}");
        assert!(!err.contains(key) && !err.contains("app:"), "{var}: {err}");
    }
    // A provider that is down at start stops it, named, its token unshown.
    let out = bin()
        .arg("--print-config")
        .env("SECRETS_PROVIDERS", "env,vault")
        .env("VAULT_ADDR", "http://127.0.0.1:9")
        .env("VAULT_TOKEN", "hvs.canary-token")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("secret provider `vault` cannot start") && !err.contains("canary"),
        "{err}"
    );
    // The server signs with the file's key: a token it issued verifies
    // under that key given literally, and not under another.
    let (mut child, addr, _) = start_with_env(
        &dir,
        &[
            providers[0],
            providers[1],
            ("JWT_SECRET_KEY", "{vault:file:jwt-key}"),
        ],
    );
    let token = sign_up(&addr);
    assert!(sigterm(&mut child).success());
    for (literal, status) in [
        (key, 200),
        ("another-signing-key-0123456789abcdef-xyz", 401),
    ] {
        let (mut child, addr, _) = start_with_env(&dir, &[("JWT_SECRET_KEY", literal)]);
        assert_eq!(
            send(&addr, "GET", "/api/v1/auth/me", "", Some(&token)).0,
            status
        );
        assert!(sigterm(&mut child).success());
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// With `JWT_RSA_KEYS`, tokens are RS256 and `/.well-known/jwks.json`
/// publishes the key that verifies them (and nothing of the HS256 key).
#[test]
fn rs256_tokens_are_verifiable_from_the_published_keys() {
    let dir = temp_dir("jwks");
    let (mut child, addr, _) = start_with_env(
        &dir,
        &[(
            "JWT_RSA_KEYS",
            concat!(
                include_str!("../../../crates/alarm-api/testdata/jwt-test-rsa-1.pem"),
                include_str!("../../../crates/alarm-api/testdata/jwt-test-rsa-2.pem"),
            ),
        )],
    );
    let token = sign_up(&addr);
    let header: serde_json::Value = serde_json::from_slice(&{
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().expect("header"))
            .expect("base64url")
    })
    .expect("json");
    assert_eq!(header["alg"], "RS256", "{header}");
    let (status, body) = get(&addr, "/.well-known/jwks.json");
    assert_eq!(status, 200, "{body}");
    let jwks: serde_json::Value = serde_json::from_str(&body).expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "{body}");
    assert_eq!(keys[0]["kid"], header["kid"], "the signer first: {body}");
    assert!(
        keys.iter()
            .all(|k| k["kty"] == "RSA" && k["use"] == "sig" && k.get("d").is_none()),
        "{body}"
    );
    assert_eq!(
        send(&addr, "GET", "/api/v1/auth/me", "", Some(&token)).0,
        200
    );
    assert!(sigterm(&mut child).success());
    let _ = std::fs::remove_dir_all(dir);
}

/// The ops listener's `/metrics` counts what the public port served, by
/// route template; the public port has no `/metrics`.
#[test]
fn metrics_count_what_the_api_did() {
    let dir = temp_dir("metrics");
    // A webhook receiver on loopback, which the product reaches only when
    // told to.
    let (hooks, received) = receiver();
    // And one that fails: its delivery is retried, not before 10 minutes.
    let failing = alarm_telemetry::testing::Sink::answering(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
    );
    let env = [
        ("WEBHOOK_ALLOW_PRIVATE", "true"),
        ("WEBHOOK_RETRY_MIN_MS", "600000"),
    ];
    let (mut child, addr, ops) = start_with_env(&dir, &env);
    let token = sign_up(&addr);
    for at in [&hooks, &failing.addr] {
        let hook = format!(r#"{{"url":"http://{at}/hook","events":["alarm.triggered"]}}"#);
        let (status, body) = send(&addr, "POST", "/api/v1/webhooks", &hook, Some(&token));
        assert_eq!(status, 201, "{body}");
    }
    // One alarm for tomorrow morning, one that rings in 3 s by app and
    // e-mail (which an unverified address never gets: a dead letter).
    let daily =
        r#"{"name":"wake","time_zone":"UTC","schedules":[{"kind":"daily","time":"07:00"}]}"#;
    let soon = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(3))
        .expect("time")
        .to_zoned(jiff::tz::TimeZone::UTC);
    let once = format!(
        r#"{{"name":"soon","time_zone":"UTC","channels":["in-app","email"],"schedules":[{{"kind":"once","date":"{}","time":"{}"}}]}}"#,
        soon.date(),
        soon.time().strftime("%H:%M:%S")
    );
    for alarm in [daily, once.as_str()] {
        let (status, body) = send(&addr, "POST", "/api/v1/alarms", alarm, Some(&token));
        assert_eq!(status, 201, "{body}");
    }
    let (status, _) = send(&addr, "POST", "/api/v1/alarms", "{}", Some(&token));
    assert_eq!(status, 422);
    let wrong = r#"{"email":"ana@example.com","password":"not the passphrase"}"#;
    assert_eq!(
        send(&addr, "POST", "/api/v1/auth/login", wrong, None).0,
        401
    );
    assert_eq!(get(&addr, "/metrics").0, 404, "never on the public port");

    // The ring and its deliveries happen in the background: poll the
    // scrape until they are counted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let (status, text) = get(&ops, "/metrics");
        assert_eq!(status, 200, "{text}");
        let has = |prefix: &str| text.lines().any(|l| l.starts_with(prefix));
        if has("alarms_triggered_total{kind=\"fire\"} 1")
            && has("webhook_deliveries_total{outcome=\"delivered\"} 1")
            && has("webhook_deliveries_total{outcome=\"retry\"} 1")
            && has("email_deliveries_total{outcome=\"dead\"} 1")
        {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ring counted:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        !received.lock().expect("taken").is_empty(),
        "the receiver got the webhook"
    );
    // Every metric a dashboard panel queries is one the app exports.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy/observability/dashboard.json"),
        )
        .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "the guide's panels");
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr}");
            for name in names {
                assert!(
                    text.contains(&format!("# TYPE {name} ")),
                    "panel {:?} queries {name}, which is not exported:\n{text}",
                    panel["title"]
                );
            }
        }
    }
    for line in [
        "alarms_created_total 2",
        "login_failures_total 1",
        "api_response_duration_seconds_count{route=\"/api/v1/alarms\",status_class=\"2xx\"} 2",
        "api_response_duration_seconds_count{route=\"/api/v1/alarms\",status_class=\"4xx\"} 1",
        "api_response_duration_seconds_count{route=\"/api/v1/auth/register\",status_class=\"2xx\"} 1",
        "api_response_duration_seconds_count{route=\"other\",status_class=\"4xx\"} 1",
        "webhook_deliveries_total{outcome=\"dead\"} 0",
        "webhook_delivery_duration_seconds_count 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    // The two deliveries were claimed and recorded: each step against the
    // store is timed (how many claims and records depends on timing).
    for stage in ["claim", "record"] {
        let series = format!("delivery_stage_duration_seconds_count{{stage=\"{stage}\"}} ");
        let count: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series}in:\n{text}"));
        assert!(count >= 1, "{series}{count}");
    }
    assert!(text.contains("build_info{app=\"alarm-http\""), "{text}");
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(text.lines().any(|l| l == "active_users 1"), "{text}");
    assert!(
        text.lines().any(|l| l == "http_connections_open 0"),
        "every request's connection closed: {text}"
    );
    // A connection held open on the public port counts once the server
    // has accepted it (which the client cannot observe: poll the gauge).
    let held = TcpStream::connect(&addr).expect("connect");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = get(&ops, "/metrics").1;
        if text.lines().any(|l| l == "http_connections_open 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(held);
    assert!(
        text.lines()
            .any(|l| l.starts_with("db_pool_connections{state=\"idle\"}")),
        "{text}"
    );
    assert!(sigterm(&mut child).success());
    // Restarted, the engine-right holder counts the backlog from the
    // database as soon as it holds the right (well before the 15 s
    // period, hence the 8 s deadline): the failing delivery waits
    // for its retry, the unverified address's alarm e-mail is dead, and no
    // trigger is due.
    let (mut child, _, ops) = start_with_env(&dir, &env);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    loop {
        let text = get(&ops, "/metrics").1;
        let counted = [
            "engine_right_held 1",
            "outbox_pending 1",
            "outbox_dead 1",
            "triggers_due 0",
        ]
        .iter()
        .all(|line| text.lines().any(|l| l == *line));
        if counted {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no backlog counted:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(failing.taken.lock().expect("taken").len(), 1, "one attempt");
    assert!(sigterm(&mut child).success());
    let _ = std::fs::remove_dir_all(dir);
}

/// With `METRICS=false` nothing is recorded and the ops port says so.
#[test]
fn metrics_can_be_turned_off() {
    let dir = temp_dir("metrics-off");
    let (mut child, addr, ops) = start_with_env(&dir, &[("METRICS", "false")]);
    assert_eq!(get(&addr, "/health/ready").0, 200);
    let (status, body) = get(&ops, "/metrics");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("METRICS=false"), "{body}");
    assert!(sigterm(&mut child).success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn embedded_default_starts_serves_and_stops_on_sigterm() {
    let dir = temp_dir("embedded");
    let (mut child, addr) = start(&dir);
    let (status, body) = get(&addr, "/health/ready");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"database\""), "{body}");
    assert_eq!(get(&addr, "/docs").0, 200);
    assert_eq!(get(&addr, "/openapi.json").0, 200);
    let status = sigterm(&mut child);
    assert!(status.success(), "graceful exit: {status}");

    // The database and a 0600 key were created under ./data.
    let key = dir.join("data/jwt-secret");
    assert!(dir.join("data/alarms.db").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let first = std::fs::read_to_string(&key).expect("key");
    assert!(first.len() >= 32);

    // A restart keeps the key (sessions survive restarts) and the data.
    let (mut child, addr) = start(&dir);
    assert_eq!(get(&addr, "/health/ready").0, 200);
    assert_eq!(std::fs::read_to_string(&key).expect("key"), first);
    assert!(sigterm(&mut child).success());
    let _ = std::fs::remove_dir_all(dir);
}

/// Canary secrets never leak: the operator's secrets (one by file
/// reference, one by value, the data key) and a user's password go through
/// a full scenario (start, register with a verification e-mail, a wrong
/// login, an alarm, a webhook and its delivery, a password-reset e-mail
/// whose SMTP server is down, a failing secret lookup) and appear in no
/// log line (at `debug`), answer body, `--print-config` output or error
/// message. Not covered: a panic in a handler (no request can make one).
#[test]
fn canary_secrets_never_leak() {
    let dir = temp_dir("canary");
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).expect("dir");
    let jwt = "canary-jwt-3f9a7c1e5b2d4f6a8c0e2b4d6f8a0c2e";
    std::fs::write(secrets.join("jwt-key"), jwt).expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        secrets.join("jwt-key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let smtp = "canary-smtp-9d8c7b6a5f4e3d2c1b0a";
    let data_key = "Y2FuYXJ5IGRhdGEga2V5IDAxMjM0NTY3ODlhYmNkZWY=";
    let password = "canary-user-password-5e6f7a8b";
    // An SMTP port nobody listens on: every e-mail fails, and its error is
    // logged.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
        .to_string();
    let secrets_dir = secrets.display().to_string();
    let env = [
        ("SECRETS_PROVIDERS", "env,file"),
        ("SECRETS_DIR", secrets_dir.as_str()),
        ("JWT_SECRET_KEY", "{vault:file:jwt-key}"),
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", closed.as_str()),
        ("SMTP_TLS", "none"),
        ("SMTP_FROM", "alarms@example.com"),
        ("SMTP_USERNAME", "alarms"),
        ("SMTP_PASSWORD", smtp),
        ("SMTP_TIMEOUT_SECONDS", "2"),
        ("DATA_ENCRYPTION_KEYS", data_key),
        ("WEBHOOK_ALLOW_PRIVATE", "true"),
        ("LOG_LEVEL", "debug"),
    ];
    let mut seen = Vec::new();
    let printed = bin().arg("--print-config").envs(env).output().expect("run");
    assert!(printed.status.success());
    seen.push(String::from_utf8_lossy(&printed.stdout).into_owned());
    seen.push(String::from_utf8_lossy(&printed.stderr).into_owned());

    let (mut child, addr, _) = start_with_env(&dir, &env);
    let token = sign_up(&addr);
    let (status, body) = send(
        &addr,
        "POST",
        "/api/v1/auth/login",
        &format!(r#"{{"email":"ana@example.com","password":"{password}"}}"#),
        None,
    );
    assert_eq!(status, 401, "{body}");
    seen.push(body);
    let (status, body) = send(
        &addr,
        "POST",
        "/api/v1/alarms",
        r#"{"name":"Canary","time_zone":"UTC","schedules":[{"kind":"daily","time":"07:00"}]}"#,
        Some(&token),
    );
    assert_eq!(status, 201, "{body}");
    seen.push(body);
    let (hooks, received) = receiver();
    let (status, body) = send(
        &addr,
        "POST",
        "/api/v1/webhooks",
        &format!(r#"{{"url":"http://{hooks}/hook","events":["alarm.triggered"]}}"#),
        Some(&token),
    );
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).expect("json");
    let webhook_secret = created["secret"].as_str().expect("secret").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, body) = send(
        &addr,
        "POST",
        &format!("/api/v1/webhooks/{id}/test"),
        "",
        Some(&token),
    );
    assert_eq!(status, 202, "{body}");
    seen.push(body);
    let (status, body) = send(
        &addr,
        "POST",
        "/api/v1/auth/password-reset",
        r#"{"email":"ana@example.com"}"#,
        None,
    );
    assert_eq!(status, 202, "{body}");
    seen.push(body);
    // The ping is delivered, and the reset e-mail has failed, before the
    // process stops.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pinged = !received.lock().expect("taken").is_empty();
        let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        if pinged && log.contains("an account e-mail was not sent") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ping or no failed e-mail: {log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(sigterm(&mut child).success());
    let log = std::fs::read_to_string(dir.join("stderr.log")).expect("log");
    assert!(log.lines().count() > 20, "a debug log: {log}");
    seen.push(log);

    // A secret that cannot be found stops the start, naming it, and the
    // other secrets (given by value) stay unsaid.
    let failed = bin()
        .envs(env)
        .env("JWT_SECRET_KEY", jwt)
        .env("SMTP_PASSWORD", "{vault:env:absent}")
        .current_dir(&dir)
        .output()
        .expect("run");
    assert_eq!(failed.status.code(), Some(2));
    let said = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert!(said.contains("{vault:env:absent}"), "{said}");
    seen.push(said);
    seen.push(String::from_utf8_lossy(&failed.stdout).into_owned());

    let key_material = webhook_secret.trim_start_matches("whsec_");
    for text in &seen {
        for canary in [jwt, smtp, data_key, password, key_material] {
            assert!(!text.contains(canary), "{canary} leaked in: {text}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Starts the embedded default in `dir` with `env`, its log lines sent to
/// the returned channel as they are written (so a test awaits a line
/// instead of sleeping).
fn start_with_log(
    dir: &PathBuf,
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    let (mut child, addr, _) = spawn_server(dir, env, Stdio::piped());
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, addr, rx)
}

/// Awaits the first log line holding `needle` (at most a minute).
fn await_log(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no log line with {needle:?}: {e}"),
        }
    }
}

/// The `kid` of a JWT.
fn kid(token: &str) -> String {
    use base64::Engine as _;
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().expect("header"))
            .expect("base64url"),
    )
    .expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

/// A JWT key written as a reference is re-read every
/// `SECRETS_REFRESH_SECONDS`: a rotated key signs new tokens without a
/// restart while tokens of the old one keep working; a provider that
/// fails keeps the last key, and `/health` says so (degraded, still 200).
#[test]
fn a_rotated_jwt_key_is_taken_without_a_restart() {
    let dir = temp_dir("rotation");
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).expect("dir");
    let key_file = secrets.join("jwt-key");
    std::fs::write(&key_file, "first-signing-key-0123456789abcdefghij\n").expect("write");
    let secrets_dir = secrets.display().to_string();
    let (mut child, addr, logs) = start_with_log(
        &dir,
        &[
            ("SECRETS_PROVIDERS", "file"),
            ("SECRETS_DIR", secrets_dir.as_str()),
            ("SECRETS_REFRESH_SECONDS", "1"),
            ("JWT_SECRET_KEY", "{vault:jwt-key}"),
        ],
    );
    let first = sign_up(&addr);
    std::fs::write(&key_file, "second-signing-key-0123456789abcdefghij\n").expect("rotate");
    await_log(&logs, "JWT keys rotated");
    let (status, body) = send(
        &addr,
        "POST",
        "/api/v1/auth/login",
        r#"{"email":"ana@example.com","password":"a long passphrase"}"#,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let second = body
        .split("\"access_token\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("token")
        .to_owned();
    assert_ne!(kid(&first), kid(&second), "the new key signs");
    for token in [&first, &second] {
        assert_eq!(
            send(&addr, "GET", "/api/v1/auth/me", "", Some(token)).0,
            200,
            "tokens of the old key verify until they expire, the new key's too"
        );
    }
    let (status, body) = get(&addr, "/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""status":"ok""#), "{body}");

    // The provider loses the secret: the last key stays in use.
    std::fs::remove_file(&key_file).expect("remove");
    let line = await_log(&logs, "could not be refreshed");
    assert!(
        line.contains("JWT_SECRET_KEY") && !line.contains("second-signing"),
        "{line}"
    );
    let (status, body) = get(&addr, "/health");
    assert_eq!(status, 200, "degraded still serves: {body}");
    assert!(
        body.contains(r#""status":"degraded""#)
            && body.contains("JWT_SECRET_KEY not refreshed since"),
        "{body}"
    );
    assert_eq!(get(&addr, "/health/ready").0, 200);
    assert_eq!(
        send(&addr, "GET", "/api/v1/auth/me", "", Some(&second)).0,
        200
    );
    std::fs::write(&key_file, "second-signing-key-0123456789abcdefghij\n").expect("restore");
    await_log(&logs, "secret refresh works again");
    let (status, body) = get(&addr, "/health");
    assert!(status == 200 && body.contains(r#""status":"ok""#), "{body}");
    assert!(sigterm(&mut child).success());
    let _ = std::fs::remove_dir_all(dir);
}

/// The S3 object store stops mid-way through an upload to the running
/// server: the PATCH that meets it is answered 503 and the upload moves to
/// the local spool (`HEAD` then says 0); resent, it completes there and is
/// served from the spool, `/health` counting it pending; the server
/// restarts in between and loses nothing; once S3 is back, the pusher
/// moves the sound into it byte-identical and `/health` counts 0.
#[test]
fn a_stopped_object_store_spools_uploads_until_it_is_back() {
    use secrecy::ExposeSecret as _;
    if let Some(why) = alarm_storage::testing::s3_unavailable() {
        panic!("{why} (cargo xtask ci installs it)");
    }
    let mut s3 = alarm_storage::testing::S3Server::start();
    let settings = s3.settings();
    let endpoint = settings.endpoint.clone().expect("endpoint");
    let secret = settings.secret_access_key.expose_secret().to_owned();
    let env = [
        ("STORAGE_BACKEND", "s3"),
        ("STORAGE_ENDPOINT", endpoint.as_str()),
        ("STORAGE_BUCKET", settings.bucket.as_str()),
        ("STORAGE_PATH_STYLE", "true"),
        ("STORAGE_ACCESS_KEY_ID", settings.access_key_id.as_str()),
        ("STORAGE_SECRET_ACCESS_KEY", secret.as_str()),
    ];
    let dir = temp_dir("spool");
    let (mut child, addr, _) = start_with_env(&dir, &env);
    let token = sign_up(&addr);
    let data: Vec<u8> = {
        let mut d: Vec<u8> = (0..11 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
        d[..12].copy_from_slice(b"RIFF\x24\x08\0\0WAVE");
        d
    };
    let tus = format!("Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n");
    let patch = |addr: &str, path: &str, from: usize, bytes: &[u8]| {
        let extra = format!(
            "{tus}Upload-Offset: {from}\r\nContent-Type: application/offset+octet-stream\r\n"
        );
        let (status, _, body) = exchange(addr, "PATCH", path, &extra, bytes);
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let (status, headers, _) = exchange(
        &addr,
        "POST",
        "/api/v1/uploads",
        &format!(
            "{tus}Upload-Length: {}\r\nUpload-Metadata: filename YWxhcm0ud2F2\r\n",
            data.len()
        ),
        b"",
    );
    assert_eq!(status, 201);
    let path = header(&headers, "location").expect("location");
    // One whole part into S3; the next PATCH (less than a part) meets the
    // stopped store only after its whole body was read, at its tail.
    let part = 5 * 1024 * 1024;
    assert_eq!(patch(&addr, &path, 0, &data[..part]).0, 204);

    s3.stop();
    let (status, body) = patch(&addr, &path, part, &data[part..part + 3 * 1024 * 1024]);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("spool"), "{body}");
    let (status, headers, _) = exchange(&addr, "HEAD", &path, &tus, b"");
    assert_eq!(
        (status, header(&headers, "upload-offset").as_deref()),
        (200, Some("0")),
        "the client resends from 0"
    );
    assert_eq!(
        patch(&addr, &path, 0, &data).0,
        204,
        "complete, in the spool"
    );
    let id = path.rsplit('/').next().expect("id").to_owned();
    let content = |addr: &str| {
        let auth = format!("Authorization: Bearer {token}\r\n");
        exchange(
            addr,
            "GET",
            &format!("/api/v1/sounds/{id}/content"),
            &auth,
            b"",
        )
    };
    let pending = |addr: &str| {
        let (_, body) = get(addr, "/health");
        let health: serde_json::Value = serde_json::from_str(&body).expect("health JSON");
        let storage = health["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "storage"))
            .cloned()
            .expect("a storage check");
        (
            storage["status"].as_str().map(str::to_owned),
            storage["pending"].as_u64(),
        )
    };
    let (status, _, bytes) = content(&addr);
    assert!(
        status == 200 && bytes == data,
        "served from the spool ({status})"
    );
    assert_eq!(pending(&addr), (Some("degraded".to_owned()), Some(1)));

    // A restart in between loses nothing.
    assert!(sigterm(&mut child).success());
    let (mut child, addr, _) = start_with_env(&dir, &env);
    assert_eq!(pending(&addr).1, Some(1));
    let (status, _, bytes) = content(&addr);
    assert!(status == 200 && bytes == data, "still served ({status})");

    s3.restart();
    // The pusher retries with backoff (about 1, 2, 4, … s plus jitter
    // while S3 was down): awaited by watching /health, within a minute.
    let started = std::time::Instant::now();
    while pending(&addr) != (Some("ok".to_owned()), Some(0)) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "not pushed: {:?}",
            pending(&addr)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let owner_dirs = s3.root().join(alarm_storage::testing::BUCKET).join("blobs");
    let in_s3 = std::fs::read_dir(&owner_dirs)
        .expect("blobs in S3")
        .filter_map(Result::ok)
        .map(|owner| owner.path().join(&id))
        .find(|p| p.exists())
        .expect("the sound's bytes in S3");
    assert!(
        std::fs::read(in_s3).expect("read") == data,
        "byte-identical in S3"
    );
    assert!(
        std::fs::read_dir(dir.join("data/spool/blobs")).map_or(0, |d| d
            .filter_map(Result::ok)
            .flat_map(|o| std::fs::read_dir(o.path()).into_iter().flatten())
            .count())
            == 0,
        "the spool is empty"
    );
    let (status, _, bytes) = content(&addr);
    assert!(status == 200 && bytes == data, "served from S3 ({status})");
    assert!(sigterm(&mut child).success());
    let _ = std::fs::remove_dir_all(dir);
}

/// One call as Fn's agent makes it over the function's socket: `POST /call` carrying the
/// client's request in `Fn-Http-*` headers. `client` are the client's headers; `agent` extra
/// agent headers (the intent, the deadline, the log-frame header) and replace the defaults.
/// Returns the agent-facing status, headers (lower-case) and body.
fn fn_call(
    socket: &std::path::Path,
    method: &str,
    url: &str,
    client: &[(&str, &str)],
    agent: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::os::unix::net::UnixStream;
    let deadline = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
    let mut head = format!(
        "POST /call HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nFn-Call-Id: 01CALL\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    let mut defaults = vec![
        ("Fn-Intent".to_owned(), "httprequest".to_owned()),
        ("Fn-Deadline".to_owned(), deadline.to_string()),
        ("Fn-Http-Method".to_owned(), method.to_owned()),
        ("Fn-Http-Request-Url".to_owned(), url.to_owned()),
    ];
    for (name, value) in agent {
        defaults.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if !value.is_empty() {
            defaults.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    for (name, value) in &defaults {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    for (name, value) in client {
        head.push_str(&format!("Fn-Http-H-{name}: {value}\r\n"));
        if name.eq_ignore_ascii_case("content-type") {
            head.push_str(&format!("Content-Type: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let mut s = UnixStream::connect(socket).expect("the agent connects");
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write the body");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let text = String::from_utf8_lossy(&out[..end]).into_owned();
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut rest = out[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        rest = dechunk(&rest);
    }
    (status, headers, rest)
}

fn header_of<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The API as an OCI Function, driven the way Fn's agent drives it: the socket appears only
/// once it listens (a 0666 socket behind a relative symlink), the client's method, URL and
/// headers arrive wrapped and the answer goes back wrapped, errors as problem+json with their
/// Content-Type unprefixed; a call the function cannot serve is the agent's 502, one past its
/// deadline the agent's 504; each call's log starts with OCI's frame line; SIGTERM ends it
/// with exit 0 and the socket removed. Without a network database or object store it refuses
/// to start. Prints the cold start (spawn to first answer).
#[test]
fn serves_as_an_oci_function_over_the_agents_socket() {
    use secrecy::ExposeSecret as _;
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if !runtime.block_on(alarm_sql::testing::postgres_available(
        "alarm-http function",
    )) {
        return;
    }
    if let Some(why) = alarm_storage::testing::s3_unavailable() {
        panic!("{why} (cargo xtask ci installs it)");
    }
    let dir = temp_dir("fn");
    let iofs = dir.join("iofs");
    std::fs::create_dir_all(&iofs).expect("iofs");
    let socket = iofs.join("lsnr.sock");
    let listener = format!("unix:{}", socket.display());

    // A function's disk does not last: the embedded defaults are refused.
    let out = bin()
        .env("FN_LISTENER", &listener)
        .env("DATA_DIR", dir.join("data"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("FN_LISTENER") && err.contains("DATABASE_URL"),
        "{err}"
    );
    let db = runtime.block_on(alarm_sql::testing::PgTestDb::new());
    let keys = [
        ("DATABASE_URL", db.url.clone()),
        (
            "JWT_SECRET_KEY",
            "function-test-signing-key-of-at-least-32-bytes".to_owned(),
        ),
        (
            "DATA_ENCRYPTION_KEYS",
            "ZnVuY3Rpb24gdGVzdCBkYXRhIGtleSwgMzIgYnl0ZSE=".to_owned(),
        ),
    ];
    let out = bin()
        .env("FN_LISTENER", &listener)
        .envs(keys.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("STORAGE_BACKEND"), "{err}");

    let s3 = alarm_storage::testing::S3Server::start();
    let settings = s3.settings();
    let endpoint = settings.endpoint.clone().expect("endpoint");
    let secret = settings.secret_access_key.expose_secret().to_owned();
    // The client's address is the gateway's hop: a proxy list would trust one the client wrote.
    let out = bin()
        .envs(keys.iter().map(|(k, v)| (*k, v.as_str())))
        .env("STORAGE_BACKEND", "s3")
        .env("STORAGE_ENDPOINT", &endpoint)
        .env("STORAGE_BUCKET", &settings.bucket)
        .env("STORAGE_ACCESS_KEY_ID", &settings.access_key_id)
        .env("STORAGE_SECRET_ACCESS_KEY", &secret)
        .env("FN_LISTENER", &listener)
        .env("TRUSTED_PROXIES", "10.0.0.0/8")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TRUSTED_PROXIES") && err.contains("FN_LISTENER"),
        "{err}"
    );
    let started = std::time::Instant::now();
    let mut child = bin()
        .envs(keys.iter().map(|(k, v)| (*k, v.as_str())))
        .env("STORAGE_BACKEND", "s3")
        .env("STORAGE_ENDPOINT", &endpoint)
        .env("STORAGE_BUCKET", &settings.bucket)
        .env("STORAGE_PATH_STYLE", "true")
        .env("STORAGE_ACCESS_KEY_ID", &settings.access_key_id)
        .env("STORAGE_SECRET_ACCESS_KEY", &secret)
        .env("FN_LISTENER", &listener)
        .env("FN_FORMAT", "http-stream")
        .env("FN_LOGFRAME_NAME", "01FRAME")
        .env("FN_LOGFRAME_HDR", "Opc-Request-Id")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Both streams drained on their own threads (a full pipe would stall the function); the
    // log line that says it serves is the signal the socket is there.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("serving as a function") {
                let _ = ready_tx.send(line.clone());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let stdout = child.stdout.take().expect("stdout");
    let printed = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = BufReader::new(stdout).read_to_string(&mut all);
        all
    });
    let ready = ready_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the function says it serves");
    let listening = started.elapsed();
    let link = std::fs::symlink_metadata(&socket).expect("the agent's name");
    assert!(link.file_type().is_symlink());
    let target = std::fs::read_link(&socket).expect("link");
    assert_eq!(
        target,
        PathBuf::from("phonylsnr.sock"),
        "relative, in the same folder"
    );
    let real = std::fs::metadata(&socket).expect("the socket");
    assert!(real.file_type().is_socket());
    assert_eq!(real.permissions().mode() & 0o777, 0o666);

    let (status, headers, body) = fn_call(
        &socket,
        "GET",
        "/health/ready",
        &[],
        &[("Opc-Request-Id", "req-1")],
        b"",
    );
    let cold = started.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(header_of(&headers, "fn-http-status"), Some("200"));
    let startup_ms = serde_json::from_str::<serde_json::Value>(&ready)
        .ok()
        .and_then(|line| {
            line.get("startup_ms")
                .or_else(|| line.pointer("/fields/startup_ms"))
                .and_then(serde_json::Value::as_u64)
        });
    eprintln!(
        "cold start to the first answer through the function socket: {} ms (goal 500 ms); \
         listening after {} ms (the app's own count from main: {startup_ms:?} ms)",
        cold.as_millis(),
        listening.as_millis()
    );
    assert!(
        startup_ms.is_some(),
        "the serving line counts its start: {ready}"
    );

    let json = [("Content-Type", "application/json")];
    let (status, headers, _) = fn_call(
        &socket,
        "POST",
        "/api/v1/auth/register",
        &json,
        &[],
        br#"{"email":"fn@example.com","password":"a long passphrase","display_name":"Fn"}"#,
    );
    assert_eq!(
        (status, header_of(&headers, "fn-http-status")),
        (200, Some("201"))
    );
    let (_, headers, body) = fn_call(
        &socket,
        "POST",
        "/api/v1/auth/login",
        &json,
        &[],
        br#"{"email":"fn@example.com","password":"a long passphrase"}"#,
    );
    assert_eq!(header_of(&headers, "fn-http-status"), Some("200"));
    let login: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let bearer = format!("Bearer {}", login["access_token"].as_str().expect("token"));
    let (_, headers, body) = fn_call(
        &socket,
        "POST",
        "/api/v1/alarms",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer),
        ],
        &[],
        br#"{"name":"wake","time_zone":"UTC","schedules":[{"kind":"daily","time":"07:00"}]}"#,
    );
    assert_eq!(
        header_of(&headers, "fn-http-status"),
        Some("201"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let alarm: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let id = alarm["id"].as_str().expect("id");
    assert!(
        header_of(&headers, "fn-http-h-location").is_some_and(|l| l.ends_with(id)),
        "{headers:?}"
    );
    assert_eq!(header_of(&headers, "fn-http-h-etag"), Some("\"1\""));
    assert!(header_of(&headers, "content-type").is_some_and(|c| c.starts_with("application/json")));
    assert_eq!(header_of(&headers, "fn-http-h-content-type"), None);
    // The query string arrives with the URL; a wrong id is the API's own 404 problem.
    let (_, headers, body) = fn_call(
        &socket,
        "GET",
        "/api/v1/alarms/01a244f7-7bac-774d-b2bb-ed48ff2fc059?x=1",
        &[("Authorization", &bearer)],
        &[],
        b"",
    );
    assert_eq!(header_of(&headers, "fn-http-status"), Some("404"));
    assert_eq!(
        header_of(&headers, "content-type"),
        Some("application/problem+json")
    );
    assert!(String::from_utf8_lossy(&body).contains("not-found"));
    let (_, headers, _) = fn_call(&socket, "GET", "/api/v1/alarms?limit=1", &[], &[], b"");
    assert_eq!(header_of(&headers, "fn-http-status"), Some("401"));

    // Not a gateway request: the function failed this call, the container lives on.
    let (status, _, body) = fn_call(
        &socket,
        "GET",
        "/health/live",
        &[],
        &[("Fn-Intent", "")],
        b"",
    );
    assert_eq!(status, 502);
    assert!(String::from_utf8_lossy(&body).contains("httprequest"));
    // Past its deadline: the agent's timeout.
    let (status, _, _) = fn_call(
        &socket,
        "GET",
        "/health/live",
        &[],
        &[("Fn-Deadline", "2020-12-10T01:36:13Z")],
        b"",
    );
    assert_eq!(status, 504);
    let (status, headers, _) = fn_call(&socket, "GET", "/health/live", &[], &[], b"");
    assert_eq!(
        (status, header_of(&headers, "fn-http-status")),
        (200, Some("200"))
    );

    assert!(sigterm(&mut child).success());
    assert!(
        !socket.exists() && std::fs::symlink_metadata(&socket).is_err(),
        "the link is removed"
    );
    assert!(!iofs.join("phonylsnr.sock").exists());
    let printed = printed.join().expect("stdout");
    let log = log.join().expect("stderr");
    assert!(printed.contains("\n01FRAME=req-1\n"), "{printed}");
    assert!(log.contains("\n01FRAME=req-1\n"), "{log}");
    drop(s3);
    runtime.block_on(db.drop_db());
    let _ = std::fs::remove_dir_all(dir);
}
