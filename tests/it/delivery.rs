//! Delivery end to end on real SQLite and PostgreSQL: the engine fires, the dispatcher sends to a real local HTTP receiver (signatures checked here with a few lines of HMAC, independently of the product's code) and to a real SMTP server (aiosmtpd, installed by `.ci/run` / `cargo xtask ci`); retries, 4xx, breaker, dead letters, disabling, SSRF and the e-mail fallback.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alarm_domain::ids::{UserId, WebhookId};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::{
    Alarm, Channel, ChannelSet, WebhookEvent, WebhookEventSet, WebhookRegistration, WebhookUrl,
};
use alarm_domain::ports::{
    ClaimedSend, FinishReport, Outbox, OutboxCounts, OutboxItem, SendLease, SendResult, SendStatus,
    StoreError,
};
use alarm_domain::services::{Actor, AlarmService, Ports, ServiceError, WebhookService};
use alarm_notify::email::{Mailer, SmtpConfig, SmtpTls};
use alarm_notify::{
    AddressPolicy, BreakerConfig, DispatchConfig, DispatchStats, Dispatcher, Resolve, SsrfGuard,
    StaticResolver, WebhookConfig, WebhookSender,
};
use alarm_testkit::fixtures;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use secrecy::ExposeSecret;
use sha2::Sha256;
use uuid::Uuid;

use crate::engine::World;

// ---------------------------------------------------------------- receiver

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The request's path.
    pub(crate) path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    /// Replies to give, in order; then `default`.
    script: VecDeque<(u16, Option<String>)>,
    default: u16,
    /// When set, each answer waits for a permit of it (a slow host).
    hold: Option<Arc<tokio::sync::Semaphore>>,
    /// Requests being answered now, and the most there were at once.
    open: usize,
    most_open: usize,
}

/// A real HTTP/1.1 server on a loopback port that records every request
/// and answers from a script.
pub(crate) struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    /// How many requests have arrived (awaitable).
    arrived: tokio::sync::watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(ReceiverState {
            default: 204,
            ..ReceiverState::default()
        }));
        let shared = state.clone();
        let (count, arrived) = tokio::sync::watch::channel(0usize);
        let count = Arc::new(count);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                let count = count.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        answer(state.clone(), count.clone(), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            state,
            arrived,
            task,
        }
    }

    /// Holds every answer until [`Receiver::release`] (a receiver that is
    /// slow to answer).
    fn hold(&self) -> Arc<tokio::sync::Semaphore> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        self.lock().hold = Some(gate.clone());
        gate
    }

    /// Waits until `n` requests have arrived (answered or not).
    async fn arrived(&self, n: usize) {
        let mut arrived = self.arrived.clone();
        tokio::time::timeout(Duration::from_secs(60), arrived.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} requests did not arrive within a minute"))
            .expect("receiver running");
    }

    /// Waits until `n` requests have arrived at `receivers` together.
    async fn arrived_together(receivers: &[Receiver], n: usize) {
        let mut watches: Vec<_> = receivers.iter().map(|r| r.arrived.clone()).collect();
        let all = async {
            loop {
                if watches.iter().map(|w| *w.borrow()).sum::<usize>() >= n {
                    return;
                }
                futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())))
                    .await
                    .0
                    .expect("receivers running");
            }
        };
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .unwrap_or_else(|_| panic!("{n} requests did not arrive within a minute"));
    }

    /// The most requests it was answering at once.
    fn most_open(&self) -> usize {
        self.lock().most_open
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReceiverState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn script(&self, replies: &[(u16, Option<&str>)]) {
        self.lock()
            .script
            .extend(replies.iter().map(|(c, r)| (*c, r.map(str::to_owned))));
    }

    fn always(&self, code: u16) {
        self.lock().default = code;
    }

    pub(crate) fn got(&self) -> Vec<Received> {
        self.lock().got.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    state: Arc<Mutex<ReceiverState>>,
    count: Arc<tokio::sync::watch::Sender<usize>>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let (code, retry_after, hold) = {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        s.got.push(Received {
            path,
            headers,
            body,
        });
        s.open += 1;
        s.most_open = s.most_open.max(s.open);
        let default = s.default;
        let (code, retry_after) = s.script.pop_front().unwrap_or((default, None));
        (code, retry_after, s.hold.clone())
    };
    count.send_modify(|c| *c += 1);
    if let Some(gate) = hold {
        gate.acquire().await.expect("gate open").forget();
    }
    state.lock().unwrap_or_else(PoisonError::into_inner).open -= 1;
    let mut reply = hyper::Response::builder().status(code);
    if let Some(r) = retry_after {
        reply = reply.header("retry-after", r);
    }
    Ok(reply.body(Full::new(Bytes::new())).expect("response"))
}

/// The Standard Webhooks check, written here from the spec rather than
/// borrowed from the product: HMAC-SHA256 over `id.timestamp.body` with the
/// base64 key after `whsec_`, sent as `v1,<base64>`.
pub(crate) fn assert_signed(r: &Received, secret: &str) {
    assert_eq!(
        r.header("webhook-signature"),
        signature_with(r, secret),
        "signature of {:?}",
        r.header("webhook-id")
    );
}

// -------------------------------------------------------------------- smtp

/// A real SMTP server: aiosmtpd writing each message to a maildir.
pub(crate) struct Smtp {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// Fails with what to run when python3 cannot import aiosmtpd. Installing
/// it is the CI entry points' job (`.ci/run`, `cargo xtask ci`), not a
/// test's: a test that reaches for the network is one that can fail for
/// reasons of its own.
fn require_aiosmtpd() {
    let import = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match import {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the e-mail tests need aiosmtpd, a real SMTP server, and python3 cannot import it \
             ({}): run `.ci/run` or `cargo xtask ci`, which install it, \
             or `python3 -m pip install aiosmtpd`",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "the e-mail tests need python3 with aiosmtpd, and python3 could not be started \
             ({e}): run `.ci/run` or `cargo xtask ci`"
        ),
    }
}

impl Smtp {
    pub(crate) async fn start(label: &str) -> Self {
        require_aiosmtpd();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("smart-alarm-smtp-{label}-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        // `-d` makes aiosmtpd log "Server is listening on …" once its socket
        // is bound: the readiness signal awaited below.
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-d", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let stderr = child.stderr.take().expect("aiosmtpd's stderr");
        let (ready, listening) = tokio::sync::oneshot::channel::<Result<(), String>>();
        // Reads the log to its end (the pipe must not fill up), reporting
        // readiness, or everything logged if the process ends first.
        std::thread::spawn(move || {
            let mut ready = Some(ready);
            let mut log = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if ready.is_none() {
                    continue;
                }
                log.push_str(&line);
                log.push('\n');
                if line.contains("Server is listening on")
                    && let Some(ready) = ready.take()
                {
                    let _ = ready.send(Ok(()));
                }
            }
            if let Some(ready) = ready {
                let _ = ready.send(Err(log));
            }
        });
        match tokio::time::timeout(Duration::from_secs(20), listening).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(log))) => panic!("aiosmtpd ended before listening on port {port}:\n{log}"),
            Ok(Err(_)) => panic!("aiosmtpd's log reader ended without an answer"),
            Err(_) => panic!("aiosmtpd did not report listening on port {port} within 20 s"),
        }
        Self { child, port, dir }
    }

    pub(crate) fn mailer(&self) -> Mailer {
        Mailer::new(&SmtpConfig {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "Smart Alarm <alarms@smart-alarm.test>".to_owned(),
            timeout: Duration::from_secs(10),
        })
        .expect("mailer")
    }

    /// Every message received, as raw text with quoted-printable soft line
    /// breaks joined.
    pub(crate) fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("new")) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|m| {
                m.replace("=\r\n", "")
                    .replace("=\n", "")
                    .replace("=3D", "=")
            })
            .collect();
        out.sort();
        out
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ------------------------------------------------------------------- world

pub(crate) fn seven(day: i64) -> Timestamp {
    fixtures::t0() + SignedDuration::from_hours(1 + 24 * day)
}

pub(crate) fn quick() -> DispatchConfig {
    DispatchConfig {
        batch: 50,
        concurrency: 8,
        host_concurrency: 8,
        account_concurrency: 8,
        lease: Duration::from_secs(60),
        ahead: Duration::from_secs(1),
        idle_poll: Duration::from_millis(50),
        max_attempts: 4,
        retry_min: Duration::from_secs(1),
        retry_max: Duration::from_secs(3600),
        disable_after: 10,
        record_hold: Duration::from_millis(250),
    }
}

pub(crate) fn open_sender() -> WebhookConfig {
    WebhookConfig {
        timeout: Duration::from_secs(5),
        policy: AddressPolicy {
            allow_private: true,
            ..AddressPolicy::default()
        },
        breaker: BreakerConfig::default(),
    }
}

pub(crate) fn dispatcher(
    w: &World,
    config: DispatchConfig,
    sender: WebhookConfig,
    resolver: Arc<dyn Resolve>,
    mailer: Option<Mailer>,
) -> Dispatcher {
    Dispatcher::new(
        w.ports.clone(),
        config,
        WebhookSender::new(sender, resolver).expect("sender"),
        mailer,
    )
}

async fn daily(w: &World, who: &Actor, name: &str, channels: &[Channel]) -> Alarm {
    let mut draft = fixtures::draft(name);
    draft.channels = ChannelSet::new(channels).expect("channels");
    AlarmService::new(w.ports.clone())
        .create(who, draft)
        .await
        .expect("create alarm")
}

async fn register(w: &World, who: &Actor, url: &str) -> (WebhookId, String) {
    let created = WebhookService::new(w.ports.clone())
        .create(
            who,
            WebhookUrl::parse(url).expect("url"),
            WebhookEventSet::new(&[WebhookEvent::Triggered]).expect("events"),
            Vec::new(),
        )
        .await
        .expect("register");
    (
        created.registration.id(),
        created.secret.expose_secret().to_owned(),
    )
}

async fn fire(w: &World, at: Timestamp) {
    w.clock.set(at);
    w.engine.tick(at).await.expect("tick");
}

/// Moves the clock and runs one dispatcher round.
async fn round(w: &World, d: &Dispatcher, at: Timestamp) {
    w.clock.set(at);
    d.round().await.expect("round");
}

async fn rows(w: &World, who: &Actor, hook: WebhookId) -> Vec<OutboxItem> {
    w.ports
        .outbox
        .list(who.user, Channel::Webhook, hook.as_uuid(), None, 100)
        .await
        .expect("list")
}

// ------------------------------------------------------------------- tests

async fn a_ringing_alarm_posts_a_signed_webhook(w: &World) {
    let receiver = Receiver::start().await;
    let ana = w.user("ana@example.com").await;
    let alarm = daily(w, &ana, "Wake up", &[Channel::InApp, Channel::Webhook]).await;
    let (hook, secret) = register(w, &ana, &receiver.url("/hooks/alarm?token=abc")).await;
    let d = dispatcher(
        w,
        quick(),
        open_sender(),
        Arc::new(StaticResolver::new()),
        None,
    );

    round(w, &d, seven(0) - SignedDuration::from_secs(1)).await;
    assert!(receiver.got().is_empty(), "nothing before the alarm rings");
    let fired_at = seven(0) + SignedDuration::from_millis(20);
    fire(w, fired_at).await;
    round(w, &d, fired_at).await;

    let got = receiver.got();
    assert_eq!(got.len(), 1, "one POST");
    let r = &got[0];
    assert_signed(r, &secret);
    let message = w
        .ports
        .events
        .list(
            ana.user,
            alarm.id(),
            alarm_domain::ports::PageRequest::first(),
        )
        .await
        .expect("events")
        .items
        .into_iter()
        .find(|e| e.kind == alarm_domain::model::AlarmEventKind::Triggered)
        .expect("the triggered event")
        .id;
    assert_eq!(
        r.header("webhook-id"),
        message.to_string(),
        "the triggered event's id is the idempotency key"
    );
    assert_eq!(
        r.header("webhook-timestamp"),
        fired_at.as_second().to_string()
    );
    assert_eq!(r.header("content-type"), "application/json");
    let body = r.json();
    assert_eq!(body["type"], "alarm.triggered");
    assert_eq!(body["data"]["alarm_id"], alarm.id().to_string());
    assert_eq!(body["data"]["alarm_name"], "Wake up");
    assert_eq!(body["data"]["time_zone"], "UTC");
    assert_eq!(body["data"]["local_time"], "2026-01-05T07:00:00");
    assert_eq!(body["data"]["occurrence_at"], "2026-01-05T07:00:00Z");
    assert_eq!(body["data"]["delivery_id"], message.to_string());

    let listed = rows(w, &ana, hook).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].status, listed[0].attempts, listed[0].last_code),
        (SendStatus::Delivered, 1, Some(204))
    );
    round(w, &d, fired_at + SignedDuration::from_hours(2)).await;
    assert_eq!(receiver.got().len(), 1, "a delivered row is not sent again");
}

async fn failures_are_retried_honouring_retry_after(w: &World) {
    let receiver = Receiver::start().await;
    receiver.script(&[(503, None), (429, Some("120")), (204, None)]);
    let ana = w.user("ana@example.com").await;
    daily(w, &ana, "Wake up", &[Channel::Webhook]).await;
    let (hook, secret) = register(w, &ana, &receiver.url("/h")).await;
    let d = dispatcher(
        w,
        quick(),
        open_sender(),
        Arc::new(StaticResolver::new()),
        None,
    );
    let t = seven(0);
    fire(w, t).await;
    round(w, &d, t).await;
    let after_503 = rows(w, &ana, hook).await.remove(0);
    assert_eq!(
        (after_503.status, after_503.attempts, after_503.last_code),
        (SendStatus::Pending, 1, Some(503))
    );
    assert!(after_503.due > t, "the retry waits");
    round(w, &d, after_503.due).await;
    let after_429 = rows(w, &ana, hook).await.remove(0);
    assert_eq!((after_429.attempts, after_429.last_code), (2, Some(429)));
    assert!(
        after_429.due >= after_503.due + SignedDuration::from_secs(120),
        "Retry-After: 120 is honoured ({} → {})",
        after_503.due,
        after_429.due
    );
    round(w, &d, after_429.due - SignedDuration::from_secs(1)).await;
    assert_eq!(receiver.got().len(), 2, "not before Retry-After");
    round(w, &d, after_429.due).await;
    let done = rows(w, &ana, hook).await.remove(0);
    assert_eq!(
        (done.status, done.attempts, done.last_code),
        (SendStatus::Delivered, 3, Some(204))
    );
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "every attempt carries the same webhook-id: {ids:?}"
    );
    for r in &got {
        assert_signed(r, &secret);
    }
}

async fn a_4xx_is_final_and_falls_back_to_email(w: &World) {
    let smtp = Smtp::start("fallback").await;
    let receiver = Receiver::start().await;
    receiver.always(410);
    let ana = w.user("ana@example.com").await;
    daily(w, &ana, "Morning run", &[Channel::InApp, Channel::Webhook]).await;
    let (hook, _) = register(w, &ana, &receiver.url("/gone")).await;
    let d = dispatcher(
        w,
        quick(),
        open_sender(),
        Arc::new(StaticResolver::new()),
        Some(smtp.mailer()),
    );
    let t = seven(0);
    fire(w, t).await;
    round(w, &d, t).await;
    let dead = rows(w, &ana, hook).await.remove(0);
    assert_eq!(
        (dead.status, dead.attempts, dead.last_code),
        (SendStatus::Dead, 1, Some(410)),
        "a 410 is not retried"
    );
    // The fallback row is due now; the round that made it reports more work.
    round(w, &d, t).await;
    round(w, &d, t + SignedDuration::from_hours(3)).await;
    assert_eq!(receiver.got().len(), 1, "never retried");
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "the fallback e-mail went out: {mail:?}");
    let m = &mail[0];
    assert!(m.contains("To: ana@example.com"), "{m}");
    assert!(m.contains("Your alarm \"Morning run\" is ringing."), "{m}");
    assert!(
        m.contains("Local time: Monday 5 January 2026, 07:00 (UTC)"),
        "{m}"
    );
    assert!(
        m.contains("every other channel of this alarm failed"),
        "{m}"
    );
    assert!(
        m.contains("<strong>Morning run</strong>"),
        "the HTML part: {m}"
    );
    assert!(m.contains("multipart/alternative"), "{m}");
}

/// `who`'s daily in-app and e-mail alarm `name` rings once and one
/// delivery round runs through `smtp`; answers `who`'s e-mail rows.
async fn ring_by_mail(w: &World, who: &Actor, name: &str, smtp: &Smtp) -> Vec<OutboxItem> {
    daily(w, who, name, &[Channel::InApp, Channel::Email]).await;
    let d = dispatcher(
        w,
        quick(),
        open_sender(),
        Arc::new(StaticResolver::new()),
        Some(smtp.mailer()),
    );
    let t = seven(0);
    fire(w, t).await;
    round(w, &d, t).await;
    w.ports
        .outbox
        .list(who.user, Channel::Email, who.user.as_uuid(), None, 10)
        .await
        .expect("list")
}

async fn an_email_alarm_sends_mail(w: &World) {
    let smtp = Smtp::start("email").await;
    let ana = w.user("ana@example.com").await;
    let rows = ring_by_mail(w, &ana, "Pills <8am>", &smtp).await;
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    let m = &mail[0];
    assert!(
        m.contains("From: \"Smart Alarm\" <alarms@smart-alarm.test>"),
        "{m}"
    );
    assert!(m.contains("Your alarm \"Pills <8am>\" is ringing."), "{m}");
    assert!(
        m.contains("<strong>Pills &lt;8am&gt;</strong>"),
        "HTML-escaped: {m}"
    );
    assert!(!m.contains("every other channel"), "not a fallback: {m}");
    assert_eq!(
        rows.iter()
            .map(|r| (r.channel, r.status))
            .collect::<Vec<_>>(),
        [(Channel::Email, SendStatus::Delivered)]
    );
}

/// An address nobody proved is never mailed: the alarm rings in the app,
/// and its e-mail row is dead-lettered with the reason, no message sent.
async fn an_unverified_address_gets_no_alarm_mail(w: &World) {
    let smtp = Smtp::start("unverified").await;
    let ana = w.unverified_user("ana@example.com").await;
    let rows = ring_by_mail(w, &ana, "Pills", &smtp).await;
    assert_eq!(smtp.messages(), Vec::<String>::new(), "nothing was mailed");
    assert_eq!(
        rows.iter()
            .map(|r| (r.status, r.last_error.as_deref()))
            .collect::<Vec<_>>(),
        [(
            SendStatus::Dead,
            Some("the recipient's address is not verified")
        )]
    );
}

async fn dead_letters_disable_the_registration_and_tell_the_owner(w: &World) {
    let smtp = Smtp::start("disable").await;
    let receiver = Receiver::start().await;
    receiver.always(503);
    let ana = w.user("ana@example.com").await;
    daily(
        w,
        &ana,
        "Wake up",
        &[Channel::InApp, Channel::Email, Channel::Webhook],
    )
    .await;
    let (hook, _) = register(w, &ana, &receiver.url("/down")).await;
    let config = DispatchConfig {
        max_attempts: 3,
        disable_after: 2,
        ..quick()
    };
    let d = dispatcher(
        w,
        config,
        open_sender(),
        Arc::new(StaticResolver::new()),
        Some(smtp.mailer()),
    );
    let mut now = seven(0);
    for day in 0..2 {
        fire(w, seven(day)).await;
        now = now.max(seven(day));
        // Each round sends what is due; retries are due within the hour.
        for _ in 0..3 {
            round(w, &d, now).await;
            now += SignedDuration::from_hours(2);
        }
    }
    let listed = rows(w, &ana, hook).await;
    assert_eq!(listed.len(), 2, "two occurrences: {listed:#?}");
    for row in &listed {
        assert_eq!(
            (row.status, row.attempts, row.last_code),
            (SendStatus::Dead, 3, Some(503)),
            "{row:?}"
        );
        assert!(
            row.last_error
                .as_deref()
                .unwrap_or("")
                .contains("gave up after 3 attempts"),
            "{row:?}"
        );
    }
    assert_eq!(receiver.got().len(), 6, "three attempts each, no more");
    let stored = WebhookService::new(w.ports.clone())
        .get(&ana, hook)
        .await
        .expect("hook");
    assert!(
        !stored.active(),
        "disabled after two dead deliveries in a row"
    );
    assert_eq!(stored.failure_count(), 2);
    round(w, &d, now).await;
    let mail = smtp.messages();
    let notices: Vec<&String> = mail
        .iter()
        .filter(|m| m.contains("has been disabled"))
        .collect();
    assert_eq!(notices.len(), 1, "one notice: {mail:?}");
    assert!(
        notices[0].contains(&format!("http://{}/", receiver.addr)),
        "names the host: {}",
        notices[0]
    );
    assert!(
        !notices[0].contains("/down"),
        "but not the path: {}",
        notices[0]
    );
    assert_eq!(
        mail.iter().filter(|m| m.contains("is ringing")).count(),
        2,
        "the alarm's own e-mail channel rang twice; no fallback on top: {mail:?}"
    );

    // The third day: a disabled registration gets nothing.
    fire(w, seven(2)).await;
    round(w, &d, seven(2)).await;
    assert_eq!(receiver.got().len(), 6);
    assert_eq!(rows(w, &ana, hook).await.len(), 2);

    // Re-enabled and retried by hand from the dead-letter queue.
    receiver.always(204);
    let url = stored.url().clone();
    WebhookService::new(w.ports.clone())
        .update(&ana, hook, url, stored.events(), true, Vec::new())
        .await
        .expect("enable");
    let again = WebhookService::new(w.ports.clone())
        .retry(&ana, hook, listed[0].message)
        .await
        .expect("retry");
    assert_eq!((again.status, again.attempts), (SendStatus::Pending, 0));
    assert!(matches!(
        WebhookService::new(w.ports.clone())
            .retry(&ana, hook, listed[0].message)
            .await,
        Err(ServiceError::Conflict(_))
    ));
    round(w, &d, alarm_domain::ports::Clock::now(&*w.clock)).await;
    let after = rows(w, &ana, hook).await;
    let redone = after
        .iter()
        .find(|r| r.message == listed[0].message)
        .expect("row");
    assert_eq!((redone.status, redone.attempts), (SendStatus::Delivered, 1));
}

async fn the_breaker_opens_and_recovers(w: &World) {
    let receiver = Receiver::start().await;
    receiver.always(503);
    let ana = w.user("ana@example.com").await;
    for n in 0..6 {
        daily(w, &ana, &format!("Alarm {n}"), &[Channel::Webhook]).await;
    }
    let (hook, _) = register(w, &ana, &receiver.url("/flaky")).await;
    let open_for = SignedDuration::from_secs(30);
    let sender = WebhookConfig {
        breaker: BreakerConfig {
            failure_rate: 0.5,
            window: 4,
            open_for: Duration::try_from(open_for).expect("positive"),
        },
        ..open_sender()
    };
    // One at a time, so the breaker sees each result before the next call.
    let config = DispatchConfig {
        concurrency: 1,
        max_attempts: 10,
        ..quick()
    };
    let d = dispatcher(w, config, sender, Arc::new(StaticResolver::new()), None);
    let t = seven(0);
    fire(w, t).await;
    round(w, &d, t).await;
    // The window fills with the first four results, all failures: the
    // breaker opens, and the other two are held back unsent.
    assert_eq!(
        receiver.got().len(),
        4,
        "four sent before the breaker opened"
    );
    let held: Vec<OutboxItem> = rows(w, &ana, hook)
        .await
        .into_iter()
        .filter(|r| r.attempts == 0)
        .collect();
    assert_eq!(held.len(), 2, "the rest held back unsent");
    for r in &held {
        assert_eq!(r.status, SendStatus::Pending);
        assert_eq!(r.due, t + open_for, "deferred by the open period: {r:?}");
        assert!(
            r.last_error
                .as_deref()
                .unwrap_or("")
                .contains("circuit breaker open"),
            "{r:?}"
        );
    }
    // The receiver recovers. The breaker's open period runs on the
    // dispatcher's clock: a second early, the retries that are due are
    // still held back, unsent and without using an attempt.
    receiver.always(204);
    round(w, &d, t + open_for - SignedDuration::from_secs(1)).await;
    assert_eq!(receiver.got().len(), 4, "still open a second early");
    assert!(
        rows(w, &ana, hook)
            .await
            .iter()
            .all(|r| r.status == SendStatus::Pending && r.attempts <= 1),
        "nothing sent, no attempt used"
    );
    // Once it is over, trial requests go through and close it again.
    round(w, &d, t + SignedDuration::from_hours(2)).await;
    let all = rows(w, &ana, hook).await;
    assert!(
        all.iter().all(|r| r.status == SendStatus::Delivered),
        "all six delivered after recovery: {all:?}"
    );
    assert_eq!(
        receiver.got().len(),
        4 + 6,
        "the failures, then six successes"
    );
}

async fn ssrf_is_refused_at_registration_and_at_delivery(w: &World) {
    let receiver = Receiver::start().await;
    let dns = StaticResolver::new();
    dns.set("inward.test", vec!["10.1.2.3".parse().expect("ip")]);
    dns.set("rebind.test", vec!["203.0.114.9".parse().expect("ip")]);
    let closed = AddressPolicy::default();
    let guarded = w.ports.clone().with_targets(Arc::new(SsrfGuard::new(
        closed.clone(),
        Arc::new(dns.clone()),
    )));
    let hooks = WebhookService::new(guarded);
    let ana = w.user("ana@example.com").await;
    daily(w, &ana, "Wake up", &[Channel::Webhook]).await;
    let events = WebhookEventSet::new(&[WebhookEvent::Triggered]).expect("events");
    for refused in [
        receiver.url("/h"),
        "http://localhost:8080/h".to_owned(),
        "http://[::1]/h".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://inward.test/h".to_owned(),
    ] {
        match hooks
            .create(
                &ana,
                WebhookUrl::parse(&refused).expect("url"),
                events,
                Vec::new(),
            )
            .await
        {
            Err(ServiceError::Invalid(e)) => {
                assert_eq!(
                    (e.field(), e.code()),
                    ("url", "refused-target"),
                    "{refused}"
                );
            }
            other => panic!("{refused} was not refused: {other:?}"),
        }
    }
    // A name that is public now, and moves onto the receiver's loopback
    // address before the delivery (DNS rebinding).
    let port = receiver.addr.port();
    let made = hooks
        .create(
            &ana,
            WebhookUrl::parse(&format!("http://rebind.test:{port}/h")).expect("url"),
            events,
            Vec::new(),
        )
        .await
        .expect("a public name is accepted");
    dns.set("rebind.test", vec!["127.0.0.1".parse().expect("ip")]);
    let sender = WebhookConfig {
        policy: closed,
        ..open_sender()
    };
    let d = dispatcher(w, quick(), sender, Arc::new(dns.clone()), None);
    fire(w, seven(0)).await;
    round(w, &d, seven(0)).await;
    assert!(
        receiver.got().is_empty(),
        "the loopback receiver was never reached"
    );
    let row = rows(w, &ana, made.registration.id()).await.remove(0);
    assert_eq!(
        row.status,
        SendStatus::Dead,
        "refused targets are final: {row:?}"
    );
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or("")
            .contains("the target address is loopback"),
        "{row:?}"
    );
}

/// The `v1,<base64>` signature of `r` with `secret`.
fn signature_with(r: &Received, secret: &str) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 key");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("key");
    mac.update(
        format!(
            "{}.{}.",
            r.header("webhook-id"),
            r.header("webhook-timestamp")
        )
        .as_bytes(),
    );
    mac.update(&r.body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// After a rotation the old secret signs beside the new one (two
/// signatures in one header, the new one first) until the overlap ends,
/// then only the new one does; reads show when the overlap ends.
async fn a_rotated_secret_signs_until_the_overlap_ends(w: &World) {
    let receiver = Receiver::start().await;
    let ana = w.user("ana@example.com").await;
    daily(w, &ana, "Wake up", &[Channel::InApp, Channel::Webhook]).await;
    let (hook, old) = register(w, &ana, &receiver.url("/hooks/alarm")).await;
    let d = dispatcher(
        w,
        quick(),
        open_sender(),
        Arc::new(StaticResolver::new()),
        None,
    );
    let rotated_at = seven(0) - SignedDuration::from_hours(1);
    w.clock.set(rotated_at);
    let hooks = WebhookService::new(w.ports.clone());
    let rotated = hooks.rotate_secret(&ana, hook).await.expect("rotate");
    let new = rotated.secret.expose_secret().to_owned();
    assert_ne!(new, old);
    let until = rotated
        .registration
        .previous()
        .expect("the old secret overlaps")
        .until;
    assert_eq!(
        until,
        rotated_at + SignedDuration::from_hours(24),
        "a day by default"
    );
    // Stored and read back (both sealed).
    let read = hooks.get(&ana, hook).await.expect("read");
    assert_eq!(read.previous().map(|p| p.until), Some(until));

    let fired_at = seven(0) + SignedDuration::from_millis(20);
    fire(w, fired_at).await;
    round(w, &d, fired_at).await;
    let got = receiver.got();
    assert_eq!(got.len(), 1, "one POST");
    assert_eq!(
        got[0].header("webhook-signature"),
        format!(
            "{} {}",
            signature_with(&got[0], &new),
            signature_with(&got[0], &old)
        ),
        "both secrets sign inside the overlap"
    );

    // The next day's ring comes after the overlap.
    let fired_at = seven(1) + SignedDuration::from_millis(20);
    fire(w, fired_at).await;
    round(w, &d, fired_at).await;
    let got = receiver.got();
    assert_eq!(got.len(), 2, "the second day's POST");
    assert_signed(&got[1], &new);
}

/// A dispatcher running in the background with `config` and an open
/// sender, with what stops it and its task.
fn running_dispatcher(
    w: &World,
    config: DispatchConfig,
) -> (
    Arc<Dispatcher>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let d = Arc::new(dispatcher(
        w,
        config,
        open_sender(),
        Arc::new(StaticResolver::new()),
        None,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(d.clone().run(async {
        let _ = stopped.await;
    }));
    (d, stop, running)
}

/// A receiver that holds its answers takes only its own share of the
/// sender: at most `host_concurrency` of its requests are open at once, the
/// other host's rows all arrive meanwhile, and so does a row queued after
/// the slow ones were claimed (rounds would wait for the slowest send).
/// Released, every held row is delivered once (those given back while they
/// waited count no attempt).
async fn a_slow_host_holds_only_its_own_share(w: &World) {
    let slow = Receiver::start().await;
    let gate = slow.hold();
    let fast = Receiver::start().await;
    let ana = w.user("ana@example.com").await;
    for n in 0..10 {
        daily(w, &ana, &format!("Alarm {n}"), &[Channel::Webhook]).await;
    }
    let (slow_hook, _) = register(w, &ana, &slow.url("/slow")).await;
    let (fast_hook, _) = register(w, &ana, &fast.url("/fast")).await;
    let fired_at = seven(0) + SignedDuration::from_millis(20);
    fire(w, fired_at).await;
    // A long lease: the clock is moved past any give-back below, and the
    // claims must still hold then.
    let config = DispatchConfig {
        concurrency: 6,
        host_concurrency: 2,
        lease: Duration::from_secs(600),
        ..quick()
    };
    let (d, stop, running) = running_dispatcher(w, config);

    fast.arrived(10).await;
    slow.arrived(2).await;
    WebhookService::new(w.ports.clone())
        .test(&ana, fast_hook)
        .await
        .expect("test ping");
    d.poke();
    fast.arrived(11).await;
    assert_eq!(
        slow.most_open(),
        2,
        "the held host never has more than its share open"
    );
    assert_eq!(slow.got().len(), 2, "the rest of its rows wait their turn");

    gate.add_permits(1000);
    // Rows that waited on the held host for longer than the dispatcher
    // lets them (real time) were given back, due within two minutes.
    w.clock.set(fired_at + SignedDuration::from_mins(3));
    d.poke();
    slow.arrived(10).await;
    // A stopping dispatcher finishes and records what is in flight.
    stop.send(()).expect("running");
    running.await.expect("the dispatcher stops");
    let slow_rows = rows(w, &ana, slow_hook).await;
    assert_eq!(slow_rows.len(), 10);
    assert!(
        slow_rows
            .iter()
            .all(|r| (r.status, r.attempts) == (SendStatus::Delivered, 1)),
        "{slow_rows:?}"
    );
    let mut ids: Vec<String> = slow
        .got()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "each held row was sent once");
    assert_eq!(fast.got().len(), 11, "and each fast one once");
    let fast_rows = rows(w, &ana, fast_hook).await;
    assert!(
        fast_rows.iter().all(|r| r.status == SendStatus::Delivered),
        "{fast_rows:?}"
    );
}

/// An account whose receivers all hang holds only its own share of the
/// sender (`account_concurrency`), however many hosts it points at: the
/// hosts' caps alone (2 each, 6 for three hosts) would let it take every
/// shared permit (4) and starve another account until its sends time out.
/// Released, every held row is delivered once.
async fn one_account_holds_only_its_own_share(w: &World) {
    let held = [
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    ];
    let gates: Vec<_> = held.iter().map(Receiver::hold).collect();
    let fast = Receiver::start().await;
    let ana = w.user("ana@example.com").await;
    let bob = w.user("bob@example.com").await;
    for n in 0..4 {
        daily(w, &ana, &format!("Ana {n}"), &[Channel::Webhook]).await;
    }
    for n in 0..6 {
        daily(w, &bob, &format!("Bob {n}"), &[Channel::Webhook]).await;
    }
    let mut ana_hooks = Vec::new();
    for (i, r) in held.iter().enumerate() {
        ana_hooks.push(register(w, &ana, &r.url(&format!("/ana{i}"))).await.0);
    }
    let (bob_hook, _) = register(w, &bob, &fast.url("/bob")).await;
    let fired_at = seven(0) + SignedDuration::from_millis(20);
    fire(w, fired_at).await;
    let config = DispatchConfig {
        concurrency: 4,
        host_concurrency: 2,
        account_concurrency: 2,
        lease: Duration::from_secs(600),
        ..quick()
    };
    let (d, stop, running) = running_dispatcher(w, config);

    // Both of the account's permits are taken by hanging sends, and Bob's
    // rows still all go out; only then is the count read (read as soon as
    // Bob's had arrived, a second hanging send could still be on its way).
    fast.arrived(6).await;
    Receiver::arrived_together(&held, 2).await;
    let open: usize = held.iter().map(|r| r.got().len()).sum();
    assert_eq!(
        open, 2,
        "the hanging account never has more than its share open"
    );

    for gate in &gates {
        gate.add_permits(1000);
    }
    // Rows that waited on their account for longer than the dispatcher
    // lets them (real time) were given back, due within two minutes.
    w.clock.set(fired_at + SignedDuration::from_mins(3));
    d.poke();
    for r in &held {
        r.arrived(4).await;
    }
    stop.send(()).expect("running");
    running.await.expect("the dispatcher stops");
    for hook in ana_hooks.into_iter().chain([bob_hook]) {
        let owner = if hook == bob_hook { &bob } else { &ana };
        let delivered = rows(w, owner, hook).await;
        assert!(
            delivered
                .iter()
                .all(|r| (r.status, r.attempts) == (SendStatus::Delivered, 1)),
            "{delivered:?}"
        );
    }
    for r in &held {
        assert_eq!(r.got().len(), 4, "each held row was sent once");
    }
}

/// A world whose database clock is the test's, Ana's daily webhook alarms
/// `names` registered to a fresh receiver and prepared by the engine 5 s
/// before their instant, and a running dispatcher (2 s ahead) that holds
/// all their rows, the clock 1 s before the instant.
struct Holding {
    w: World,
    receiver: Receiver,
    ana: Actor,
    alarms: Vec<Alarm>,
    hook: WebhookId,
    secret: String,
    instant: Timestamp,
    d: Arc<Dispatcher>,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
}

async fn holding(base: &World, label: &str, names: &[&str]) -> Holding {
    holding_with(base, label, names, quick()).await
}

/// [`holding`] with the sender's `config` (its `ahead` set here).
async fn holding_with(
    base: &World,
    label: &str,
    names: &[&str],
    config: DispatchConfig,
) -> Holding {
    let w = World::with_store_clock(base.postgres(), label)
        .await
        .expect("a second world on the same database server");
    let receiver = Receiver::start().await;
    let ana = w.user("ana@example.com").await;
    let mut alarms = Vec::new();
    for name in names {
        alarms.push(daily(&w, &ana, name, &[Channel::Webhook]).await);
    }
    let (hook, secret) = register(&w, &ana, &receiver.url("/hook")).await;
    let instant = seven(0);
    // The engine claims up to the instant, as its prefetch does: the rings
    // are committed, not visible.
    w.clock.set(instant - SignedDuration::from_secs(5));
    w.engine.tick(instant).await.expect("prepare");
    let config = DispatchConfig {
        ahead: Duration::from_secs(2),
        ..config
    };
    let (d, stop, running) = running_dispatcher(&w, config);
    w.clock.set(instant - SignedDuration::from_secs(1));
    d.poke();
    counted(&d, |s| &s.held_ahead, names.len() as u64).await;
    Holding {
        w,
        receiver,
        ana,
        alarms,
        hook,
        secret,
        instant,
        d,
        stop,
        running,
    }
}

/// Waits until the dispatcher's counter `what` reaches `n`.
async fn counted(d: &Dispatcher, what: fn(&DispatchStats) -> &AtomicU64, n: u64) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while what(d.stats()).load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the sender never counted {n}"));
}

/// A running sender claims the webhook rows of rings prepared ahead
/// before their instant, holds them, and sends them only once the store
/// confirms them at the instant; a ring withdrawn by an edit while held is
/// never sent.
async fn a_prepared_ring_is_held_ahead_and_sent_at_its_instant(base: &World) {
    let h = holding(base, "held-ahead", &["One", "Two"]).await;
    // "Two" is disabled while its row is held: the edit withdraws it.
    AlarmService::new(h.w.ports.clone())
        .set_enabled(&h.ana, h.alarms[1].id(), false, None)
        .await
        .expect("disable Two");
    h.w.clock.set(h.instant - SignedDuration::from_millis(1));
    assert!(
        h.receiver.got().is_empty(),
        "nothing is sent before the instant"
    );
    h.w.clock.set(h.instant);
    h.receiver.arrived(1).await;
    counted(&h.d, |s| &s.withdrawn, 1).await;
    h.stop.send(()).expect("running");
    h.running.await.expect("the dispatcher stops");
    let got = h.receiver.got();
    assert_eq!(got.len(), 1, "only One's ring is sent: {got:?}");
    assert_signed(&got[0], &h.secret);
    assert_eq!(
        got[0].json()["data"]["alarm_name"],
        "One",
        "{}",
        got[0].json()
    );
    assert_eq!(h.d.stats().delivered.load(Ordering::Relaxed), 1);
    h.w.close().await;
}

/// The rows released at an instant are all sent before any result of
/// theirs is recorded: the recorder holds the first result back until the
/// release's last send has ended (so the records' work does not compete
/// with the instant's sends), then records them.
async fn an_instants_results_wait_for_its_sends(base: &World) {
    // A hold far longer than the test waits: only the release's end can
    // let the recorder go on.
    let config = DispatchConfig {
        record_hold: Duration::from_secs(600),
        ..quick()
    };
    let h = holding_with(base, "records-held", &["One", "Two"], config).await;
    // One answer goes out at once; the other waits for the test.
    let gate = h.receiver.hold();
    gate.add_permits(1);
    h.w.clock.set(h.instant);
    h.receiver.arrived(2).await;
    counted(&h.d, |s| &s.delivered, 1).await;
    counted(&h.d, |s| &s.records_held, 1).await;
    let now = rows(&h.w, &h.ana, h.hook).await;
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(
        now.iter()
            .all(|r| (r.status, r.attempts) == (SendStatus::Pending, 0)),
        "nothing is recorded while a send of the instant is in flight: {now:?}"
    );
    gate.add_permits(1);
    // A stop records what is in flight: it ends only once the recorder
    // has gone on, long before its hold would run out.
    h.stop.send(()).expect("running");
    tokio::time::timeout(Duration::from_secs(60), h.running)
        .await
        .expect("the recorder goes on once the release's sends end")
        .expect("the dispatcher's task");
    let done = rows(&h.w, &h.ana, h.hook).await;
    assert!(
        done.iter()
            .all(|r| (r.status, r.attempts) == (SendStatus::Delivered, 1)),
        "both recorded: {done:?}"
    );
    assert_eq!(h.d.stats().records_held.load(Ordering::Relaxed), 1);
    h.w.close().await;
}

/// A sender stopped while it holds rows ahead of their instant gives them
/// back unsent, due at their instant with no attempt counted, and stops;
/// a sender started after sends them at the instant.
async fn a_stop_gives_back_what_is_held_ahead(base: &World) {
    let h = holding(base, "stop-held", &["One"]).await;
    h.stop.send(()).expect("running");
    tokio::time::timeout(Duration::from_secs(60), h.running)
        .await
        .expect("the dispatcher stops while it holds rows")
        .expect("the dispatcher's task");
    assert!(h.receiver.got().is_empty(), "nothing was sent");
    assert_eq!(h.d.stats().retried.load(Ordering::Relaxed), 1, "given back");
    h.w.clock.set(h.instant);
    let held = rows(&h.w, &h.ana, h.hook).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (held[0].status, held[0].attempts, held[0].due),
        (SendStatus::Pending, 0, h.instant),
        "given back due at its instant, no attempt counted"
    );
    let (_, stop, running) = running_dispatcher(&h.w, quick());
    h.receiver.arrived(1).await;
    stop.send(()).expect("running");
    running.await.expect("the dispatcher stops");
    assert_signed(&h.receiver.got()[0], &h.secret);
    h.w.close().await;
}

/// The store, but its reads of registrations (what a claim's rows need to
/// be sent) fail while `fails` is above nought, one failure a read.
struct FailingLoads {
    inner: Arc<dyn Outbox>,
    fails: AtomicU32,
}

#[async_trait::async_trait]
impl Outbox for FailingLoads {
    async fn claim(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError> {
        self.inner.claim(now, until, limit).await
    }
    async fn claim_ahead(
        &self,
        ahead: SignedDuration,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError> {
        self.inner.claim_ahead(ahead, until, limit).await
    }
    async fn confirm(
        &self,
        leases: Vec<SendLease>,
    ) -> Result<Vec<(SendLease, SignedDuration)>, StoreError> {
        self.inner.confirm(leases).await
    }
    async fn finish(
        &self,
        now: Timestamp,
        results: Vec<(ClaimedSend, SendResult)>,
        disable_after: u32,
    ) -> Result<FinishReport, StoreError> {
        self.inner.finish(now, results, disable_after).await
    }
    async fn list(
        &self,
        owner: UserId,
        channel: Channel,
        target: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.inner.list(owner, channel, target, before, limit).await
    }
    async fn redeliver(
        &self,
        owner: UserId,
        channel: Channel,
        target: Uuid,
        message: Uuid,
        now: Timestamp,
    ) -> Result<OutboxItem, StoreError> {
        self.inner
            .redeliver(owner, channel, target, message, now)
            .await
    }
    async fn enqueue(&self, item: OutboxItem) -> Result<(), StoreError> {
        self.inner.enqueue(item).await
    }
    async fn next_due_in(&self) -> Result<Option<SignedDuration>, StoreError> {
        self.inner.next_due_in().await
    }
    async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        self.inner.counts().await
    }
    async fn webhooks(&self, ids: Vec<WebhookId>) -> Result<Vec<WebhookRegistration>, StoreError> {
        let failing = self
            .fails
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::Retryable("the test's failure to load".into()));
        }
        self.inner.webhooks(ids).await
    }
}

/// Rows claimed when what they need then fails to load are given back at
/// once, unsent, due now and with no attempt counted, not left leased
/// until their lease ends: by a round (the next round at the same instant
/// sends the row) and by a running sender (whose lease of ten minutes the
/// test never waits out).
async fn a_failed_load_gives_the_claimed_rows_back(w: &World) {
    let receiver = Receiver::start().await;
    let ana = w.user("ana@example.com").await;
    daily(w, &ana, "Wake up", &[Channel::Webhook]).await;
    let (hook, secret) = register(w, &ana, &receiver.url("/hook")).await;
    let outbox = Arc::new(FailingLoads {
        inner: w.ports.outbox.clone(),
        fails: AtomicU32::new(1),
    });
    let ports = Ports {
        outbox: outbox.clone(),
        ..w.ports.clone()
    };
    let config = DispatchConfig {
        lease: Duration::from_secs(600),
        ..quick()
    };
    let sender = || WebhookSender::new(open_sender(), Arc::new(StaticResolver::new()));
    let d = Dispatcher::new(ports.clone(), config, sender().expect("sender"), None);

    let first = seven(0);
    fire(w, first).await;
    assert!(d.round().await.is_err(), "the load fails");
    let back = rows(w, &ana, hook).await;
    // A row still leased would read the same but for the reason, which
    // only a give-back records.
    assert_eq!(
        back.iter()
            .map(|r| (r.status, r.attempts, r.due, r.last_error.as_deref()))
            .collect::<Vec<_>>(),
        [(
            SendStatus::Pending,
            0,
            first,
            Some("the store failed; not sent")
        )],
        "given back unsent, due now: {back:?}"
    );
    d.round().await.expect("round");
    assert_eq!(receiver.got().len(), 1, "claimed again at the same instant");
    assert_signed(&receiver.got()[0], &secret);

    // The running sender: the next day's ring, the load failing once more.
    let second = seven(1);
    fire(w, second).await;
    outbox.fails.store(1, Ordering::Release);
    let d = Arc::new(Dispatcher::new(
        ports,
        config,
        sender().expect("sender"),
        None,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(d.clone().run(async {
        let _ = stopped.await;
    }));
    // Within a minute (or it fails): long before the lease would end.
    receiver.arrived(2).await;
    stop.send(()).expect("running");
    running.await.expect("the dispatcher stops");
    assert_eq!(d.stats().store_errors.load(Ordering::Relaxed), 1);
    assert_eq!(outbox.fails.load(Ordering::Acquire), 0, "the load failed");
    let done = rows(w, &ana, hook).await;
    assert!(
        done.iter()
            .all(|r| (r.status, r.attempts) == (SendStatus::Delivered, 1)),
        "each delivered at its first attempt: {done:?}"
    );
}

/// A sender whose clock runs ahead of the database's holds a row past its
/// own idea of the instant: the store says it is not visible yet, and it
/// goes out only once the database's clock reaches the instant.
async fn a_held_row_waits_for_the_stores_clock(base: &World) {
    let w = World::with_store_clock(base.postgres(), "held-early")
        .await
        .expect("a second world on the same database server");
    let receiver = Receiver::start().await;
    let ana = w.user("ana@example.com").await;
    daily(&w, &ana, "One", &[Channel::Webhook]).await;
    let (_, secret) = register(&w, &ana, &receiver.url("/hook")).await;
    let instant = seven(0);
    w.clock.set(instant - SignedDuration::from_secs(5));
    w.engine.tick(instant).await.expect("prepare");
    // The sender's own clock, apart from the database's (`w.clock`).
    let own = Arc::new(alarm_testkit::ManualClock::new(
        instant - SignedDuration::from_secs(1),
    ));
    let mut ports = w.ports.clone();
    ports.clock = own.clone();
    let d = Arc::new(Dispatcher::new(
        ports,
        DispatchConfig {
            ahead: Duration::from_secs(2),
            ..quick()
        },
        WebhookSender::new(open_sender(), Arc::new(StaticResolver::new())).expect("sender"),
        None,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(d.clone().run(async {
        let _ = stopped.await;
    }));
    w.clock.set(instant - SignedDuration::from_secs(1));
    d.poke();
    counted(&d, |s| &s.held_ahead, 1).await;
    // The sender's clock says the instant has come; the database's is 1 ms
    // short of it.
    w.clock.set(instant - SignedDuration::from_millis(1));
    own.set(instant);
    counted(&d, |s| &s.early, 1).await;
    assert!(
        receiver.got().is_empty(),
        "nothing is sent before the database's clock reaches the instant"
    );
    w.clock.set(instant);
    receiver.arrived(1).await;
    stop.send(()).expect("running");
    running.await.expect("the dispatcher stops");
    assert_eq!(receiver.got().len(), 1);
    assert_signed(&receiver.got()[0], &secret);
    w.close().await;
}

crate::trials! {
    world: [a_ringing_alarm_posts_a_signed_webhook, a_rotated_secret_signs_until_the_overlap_ends, failures_are_retried_honouring_retry_after, a_4xx_is_final_and_falls_back_to_email, an_email_alarm_sends_mail, an_unverified_address_gets_no_alarm_mail, dead_letters_disable_the_registration_and_tell_the_owner, the_breaker_opens_and_recovers, a_slow_host_holds_only_its_own_share, one_account_holds_only_its_own_share, a_prepared_ring_is_held_ahead_and_sent_at_its_instant, an_instants_results_wait_for_its_sends, a_stop_gives_back_what_is_held_ahead, a_held_row_waits_for_the_stores_clock, a_failed_load_gives_the_claimed_rows_back, ssrf_is_refused_at_registration_and_at_delivery],
}
