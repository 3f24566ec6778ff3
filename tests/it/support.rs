//! The harness: the real API served on a real socket over a real database (a SQLite file or a PostgreSQL database of its own), and a small HTTP client.

use std::sync::Arc;

use alarm_api::{ApiConfig, AppState, HealthCheck, Running, TokenConfig, Tokens};
use alarm_domain::jiff::SignedDuration;
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::Email;
use alarm_domain::ports::{RandomIds, SystemClock};
use alarm_sql::Sql;
use alarm_sql::testing::{PgTestDb, postgres_available, sqlite_config};
use secrecy::SecretString;
use serde_json::Value;

pub(crate) const SECRET: &str = "an-end-to-end-test-signing-key-of-48-bytes-xxxxx";
pub(crate) const ISSUER: &str = "smart-alarm";
pub(crate) const AUDIENCE: &str = "smart-alarm-api";
pub(crate) const ADMIN: &str = "root@example.com";

pub(crate) use crate::Db as Backend;

/// Installs ring as the process's rustls provider before any reqwest
/// client is built: alarm-notify turns on reqwest's `rustls-no-provider`,
/// and a client built without a provider panics. A second call is a no-op.
pub(crate) fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) fn token_config(secret: &str, audience: &str) -> TokenConfig {
    TokenConfig {
        secret: SecretString::from(secret.to_owned()),
        previous_secrets: Vec::new(),
        rsa_keys: Vec::new(),
        issuer: ISSUER.to_owned(),
        audience: audience.to_owned(),
        access_ttl: SignedDuration::from_mins(15),
        refresh_ttl: SignedDuration::from_hours(24 * 30),
    }
}

/// Signs tokens the server must refuse (or accept) without going through it.
pub(crate) fn tokens(secret: &str, audience: &str) -> Tokens {
    Tokens::new(token_config(secret, audience)).expect("token settings")
}

struct DbCheck(Sql);

#[async_trait::async_trait]
impl HealthCheck for DbCheck {
    fn name(&self) -> &'static str {
        "database"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await
    }
}

pub(crate) struct Harness {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    server: Running,
    sql: Sql,
    cleanup: Cleanup,
    /// The local object storage's folder, when the harness made one.
    objects: Option<std::path::PathBuf>,
    engine: (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ),
    /// How many holiday re-plan jobs the engine has finished.
    replans: tokio::sync::watch::Receiver<u64>,
}

/// What a harness is started with beyond the database: the operator's
/// limits. [`Limits::lenient`] for tests that are not about limits.
pub(crate) struct Limits {
    pub(crate) domain: alarm_domain::limits::Limits,
    pub(crate) rates: alarm_api::limiter::RateLimits,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    pub(crate) counters: Option<Box<dyn alarm_api::limiter::CounterStore>>,
    pub(crate) transport: alarm_api::transport::Transport,
    pub(crate) body_timeout: std::time::Duration,
    /// Reach PostgreSQL through this `host:port` (a forwarder the test can cut).
    pub(crate) pg_via: Option<String>,
    /// Where password-reset e-mails go (none: resets answer 503).
    pub(crate) account_mail: Option<alarm_api::AccountMailer>,
    /// Object storage (none: the local backend in a folder of the
    /// harness's own, removed when it stops).
    pub(crate) storage: Option<alarm_storage::Backend>,
    /// `UPLOAD_MEMORY_MEGABYTES`, `UPLOAD_PATCHES_PER_USER`.
    pub(crate) upload_memory_megabytes: u32,
    pub(crate) upload_patches_per_user: u32,
    /// Signed sound links (`CDN_BASE_URL`).
    pub(crate) sound_links: Option<alarm_api::links::SoundLinks>,
}

impl Limits {
    /// The product's quotas and login limits, and request limits far above
    /// what a test sends (every test of a binary comes from 127.0.0.1).
    pub(crate) fn lenient() -> Self {
        use alarm_api::limiter::{Rate, RateLimits};
        let d = RateLimits::default();
        let high = |r: Rate| Rate {
            limit: 1_000_000,
            ..r
        };
        Self {
            domain: alarm_domain::limits::Limits::default(),
            rates: RateLimits {
                per_ip: high(d.per_ip),
                alarms_per_user: high(d.alarms_per_user),
                register_per_ip: high(d.register_per_ip),
                // Failed logins keep the product's limits: the login tests
                // and the spec's 429 answer rely on them.
                login_per_pair: d.login_per_pair,
                login_per_ip: d.login_per_ip,
                login_alert_per_email: d.login_alert_per_email,
                test_pings_per_user: high(d.test_pings_per_user),
                webhooks_per_key: high(d.webhooks_per_key),
                // The reset tests count against the product's limits.
                resets_per_ip: d.resets_per_ip,
                resets_per_email: d.resets_per_email,
                verifications_per_user: d.verifications_per_user,
                max_keys: d.max_keys,
                // Most tests count refusals; `limits::refusals_are_held`
                // checks the product's delay.
                refusal_delay: std::time::Duration::ZERO,
            },
            trusted_proxies: Vec::new(),
            counters: None,
            transport: alarm_api::transport::Transport::default(),
            body_timeout: std::time::Duration::from_secs(30),
            pg_via: None,
            account_mail: None,
            storage: None,
            upload_memory_megabytes: 96,
            upload_patches_per_user: 2,
            sound_links: Some(alarm_api::links::SoundLinks::new(
                CDN,
                SignedDuration::from_hours(1),
                secrecy::SecretString::from("the sound links' key of the tests".to_owned()),
            )),
        }
    }
}

/// The CDN base URL of the harness's signed sound links (the tests send
/// the path and query to the harness, as the CDN would).
pub(crate) const CDN: &str = "https://cdn.test";

/// `host:port` of the PostgreSQL server the tests use.
pub(crate) fn pg_authority() -> String {
    let url = alarm_sql::testing::pg_admin_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// A TCP forwarder a test can cut and restore: while cut it closes every
/// connection, established or new.
pub(crate) struct Forwarder {
    pub(crate) addr: String,
    up: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    pub(crate) async fn to(target: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let accept = {
            let (up, links) = (up.clone(), links.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue;
                    }
                    let target = target.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().expect("links").push(link.abort_handle());
                }
            })
        };
        Self {
            addr,
            up,
            links,
            accept,
        }
    }

    /// Every connection through it closes; new ones are closed at once.
    pub(crate) fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    /// Forwards again.
    pub(crate) fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

enum Cleanup {
    Dir(std::path::PathBuf),
    Pg(PgTestDb),
}

impl Harness {
    /// `None` when PostgreSQL is wanted but unreachable outside CI (the
    /// skip is announced loudly; under `CI=true` it panics instead).
    pub(crate) async fn start(backend: Backend, suite: &str) -> Option<Self> {
        Self::start_with(backend, suite, Limits::lenient()).await
    }

    /// [`Harness::start`] under `limits`.
    pub(crate) async fn start_with(backend: Backend, suite: &str, limits: Limits) -> Option<Self> {
        let (config, cleanup) = match backend {
            Backend::Sqlite => {
                let (config, dir) = sqlite_config(suite);
                (config, Cleanup::Dir(dir))
            }
            Backend::Postgres => {
                if !postgres_available(suite).await {
                    return None;
                }
                let db = PgTestDb::new().await;
                let config = match &limits.pg_via {
                    Some(via) => {
                        let url = db.url.replacen(&pg_authority(), via, 1);
                        alarm_sql::DbConfig::from_url(&url)
                            .expect("url")
                            .with_max_connections(4)
                            .expect("pool")
                    }
                    None => db.config(),
                };
                (config, Cleanup::Pg(db))
            }
        };
        let sql = Sql::connect(&config)
            .await
            .expect("connect")
            .with_sealer(crate::support::sealer());
        sql.migrate_up().await.expect("migrate");
        let tzdb = TimeZoneDatabase::bundled();
        let (storage, objects) = match limits.storage {
            Some(backend) => (backend, None),
            None => {
                let dir =
                    std::env::temp_dir().join(format!("alarm-it-objects-{}", uuid::Uuid::now_v7()));
                (
                    alarm_storage::Backend::Local { dir: dir.clone() },
                    Some(dir),
                )
            }
        };
        let parts = alarm_storage::ObjectParts::new(
            storage.open_with_multipart().expect("object storage"),
            alarm_domain::model::MAX_UPLOAD_BYTES,
        );
        let ports = sql
            .ports(tzdb.clone(), Arc::new(SystemClock), Arc::new(RandomIds))
            .with_storage(parts.blob_store(), Arc::new(parts))
            .with_limits(limits.domain);
        // The engine runs in-process, as in alarm-http's default.
        // Polling once a minute: what rings within a test was woken by the
        // API's commit (the in-process signal), not found by a poll.
        let engine = alarm_runner::Engine::new(
            ports.clone(),
            alarm_runner::RunnerConfig {
                idle_poll: std::time::Duration::from_secs(60),
                ..alarm_runner::RunnerConfig::default()
            },
        );
        let replans = engine.health().replans_finished();
        let ports = ports.with_wake(engine.wake());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let engine = tokio::spawn(engine.run(async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        }));
        let api = ApiConfig {
            tokens: token_config(SECRET, AUDIENCE),
            cors_origins: vec!["https://app.example.com".to_owned()],
            admin_emails: vec![Email::parse(ADMIN).expect("email")],
            base_url: None,
            tzdb_version: "test".to_owned(),
            idempotency_ttl: SignedDuration::from_hours(24),
            health_timeout: SignedDuration::from_secs(1),
            rate_limits: limits.rates,
            trusted_proxies: limits.trusted_proxies,
            proxy_header: alarm_api::limiter::ProxyHeader::XForwardedFor,
            transport: limits.transport,
            body_timeout: limits.body_timeout,
            account_mail: limits.account_mail,
            upload_memory_megabytes: limits.upload_memory_megabytes,
            upload_patches_per_user: limits.upload_patches_per_user,
            upload_patch_longest: std::time::Duration::from_secs(600),
            sound_links: limits.sound_links,
        };
        let checks: Vec<Arc<dyn HealthCheck>> = vec![Arc::new(DbCheck(sql.clone()))];
        let state = AppState::with_counters(ports, tzdb, api, checks, limits.counters)
            .await
            .expect("state");
        let server = alarm_api::serve(state, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        Some(Self {
            base: server.base_url(),
            http: {
                install_tls_provider();
                reqwest::Client::new()
            },
            server,
            sql,
            cleanup,
            objects,
            engine: (stop, engine),
            replans,
        })
    }

    pub(crate) async fn stop(self) {
        self.server.stop().await.expect("server stops cleanly");
        let _ = self.engine.0.send(true);
        self.engine.1.await.expect("the engine stops cleanly");
        self.sql.close().await;
        if let Some(dir) = self.objects {
            let _ = std::fs::remove_dir_all(dir);
        }
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Pg(db) => db.drop_db().await,
        }
    }

    /// Follows the count of holiday re-plan jobs the in-process engine has
    /// finished: mark the current count, make a holiday write, then await
    /// a higher one.
    pub(crate) fn replans(&self) -> tokio::sync::watch::Receiver<u64> {
        let mut r = self.replans.clone();
        r.mark_unchanged();
        r
    }

    /// The stores behind the server, for a test to set up what no endpoint
    /// can (e.g. a delivery given up on, which only a sender makes).
    pub(crate) fn ports(&self) -> alarm_domain::services::Ports {
        self.sql.ports(
            TimeZoneDatabase::bundled(),
            Arc::new(SystemClock),
            Arc::new(RandomIds),
        )
    }

    /// The whole audit trail, newest first (asserted to fit one page of 100:
    /// the scenarios write far fewer records).
    pub(crate) async fn audit_trail(&self) -> Vec<alarm_domain::model::AuditRecord> {
        let page = self
            .ports()
            .audit
            .list(
                None,
                alarm_domain::ports::PageRequest::new(None, 100).expect("page"),
            )
            .await
            .expect("audit");
        assert!(page.next.is_none(), "one page holds the whole trail");
        page.items
    }

    /// Every `table.column` of the server's database still naming one of
    /// `ids` or containing one of `texts` ([`Sql::columns_naming`]).
    pub(crate) async fn columns_naming(&self, ids: &[uuid::Uuid], texts: &[&str]) -> Vec<String> {
        self.sql
            .columns_naming(ids, texts)
            .await
            .expect("the tables can be searched")
    }

    /// Asserts that `session`'s access and refresh tokens and the login
    /// `email` / `password` are all refused (401).
    pub(crate) async fn assert_shut_out(&self, session: &Session, email: &str, password: &str) {
        self.req("GET", "/api/v1/auth/me")
            .bearer(&session.access)
            .send()
            .await
            .problem(401, "unauthorized");
        self.req("POST", "/api/v1/auth/refresh")
            .json(serde_json::json!({"refresh_token": session.refresh}))
            .send()
            .await
            .problem(401, "unauthorized");
        self.req("POST", "/api/v1/auth/login")
            .json(serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .problem(401, "unauthorized");
    }

    /// A request; `body` is sent as JSON.
    pub(crate) fn req(&self, method: &str, path: &str) -> Req<'_> {
        Req {
            h: self,
            builder: self.http.request(
                method.parse().expect("method"),
                format!("{}{path}", self.base),
            ),
        }
    }

    /// Registers and logs in; returns the tokens. [`ADMIN`]'s address is
    /// verified first, so it logs in as administrator.
    pub(crate) async fn account(&self, email: &str) -> Session {
        let r = self
            .req("POST", "/api/v1/auth/register")
            .json(serde_json::json!({
                "email": email,
                "password": "correct horse battery staple",
                "display_name": "Test User",
                "time_zone": "America/Sao_Paulo",
            }))
            .send()
            .await;
        assert_eq!(r.status, 201, "register: {}", r.body);
        if email == ADMIN {
            // The bootstrap address is admin only once verified: done as the
            // operator's `alarm-admin verify` does it (no mail here).
            alarm_domain::services::UserService::new(
                self.ports(),
                vec![Email::parse(ADMIN).expect("email")],
            )
            .verify_by_operator(&Email::parse(ADMIN).expect("email"), "test")
            .await
            .expect("verify the admin");
        }
        self.login(email, "correct horse battery staple").await
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> Session {
        let r = self
            .req("POST", "/api/v1/auth/login")
            .json(serde_json::json!({"email": email, "password": password}))
            .send()
            .await;
        assert_eq!(r.status, 200, "login: {}", r.body);
        Session {
            access: r.body["access_token"].as_str().expect("access").to_owned(),
            refresh: r.body["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_owned(),
        }
    }
}

pub(crate) struct Session {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

pub(crate) struct Req<'a> {
    h: &'a Harness,
    builder: reqwest::RequestBuilder,
}

impl Req<'_> {
    pub(crate) fn bearer(mut self, token: &str) -> Self {
        self.builder = self.builder.bearer_auth(token);
        self
    }
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }
    pub(crate) fn json(mut self, body: Value) -> Self {
        self.builder = self
            .builder
            .header("content-type", "application/json")
            .body(body.to_string());
        self
    }
    pub(crate) fn raw(mut self, content_type: &str, body: impl Into<reqwest::Body>) -> Self {
        self.builder = self.builder.header("content-type", content_type).body(body);
        self
    }
    pub(crate) async fn send(self) -> Resp {
        let _ = self.h;
        let r = self.builder.send().await.expect("the server answers");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem of `kind` with `status`, the problem media type
    /// and the request id in body and header.
    #[track_caller]
    pub(crate) fn problem(&self, status: u16, kind: &str) -> &Self {
        assert_eq!(
            (self.status, self.body["type"].as_str()),
            (status, Some(kind)),
            "want {status} {kind}, got {} {}",
            self.status,
            self.body
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.body["status"], status);
        let id = self.header("x-request-id").expect("x-request-id");
        assert_eq!(self.body["request_id"], id, "the body names the request id");
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        self
    }

    /// The `field` of the first validation error.
    pub(crate) fn field(&self) -> &str {
        self.body["errors"][0]["field"].as_str().unwrap_or("")
    }
}

/// A health check that always fails with "bucket missing".
pub(crate) struct Fails;

#[async_trait::async_trait]
impl HealthCheck for Fails {
    fn name(&self) -> &'static str {
        "storage"
    }
    async fn check(&self) -> Result<(), String> {
        Err("bucket missing".to_owned())
    }
}

/// The API over the in-memory fakes with `checks` as its health checks,
/// for the health answers no database can be made to give on cue.
pub(crate) async fn serve_in_memory(
    checks: Vec<Arc<dyn HealthCheck>>,
    health_timeout: SignedDuration,
) -> Running {
    let ports =
        alarm_testkit::InMemory::default().ports(Arc::new(SystemClock), Arc::new(RandomIds));
    let config = ApiConfig {
        tokens: token_config(SECRET, AUDIENCE),
        cors_origins: Vec::new(),
        admin_emails: Vec::new(),
        base_url: None,
        tzdb_version: "test".to_owned(),
        idempotency_ttl: SignedDuration::from_hours(24),
        health_timeout,
        rate_limits: Limits::lenient().rates,
        trusted_proxies: Vec::new(),
        proxy_header: alarm_api::limiter::ProxyHeader::XForwardedFor,
        transport: alarm_api::transport::Transport::default(),
        body_timeout: std::time::Duration::from_secs(30),
        account_mail: None,
        upload_memory_megabytes: 96,
        upload_patches_per_user: 2,
        upload_patch_longest: std::time::Duration::from_secs(600),
        sound_links: None,
    };
    let state = AppState::new(ports, TimeZoneDatabase::bundled(), config, checks)
        .await
        .expect("state");
    install_tls_provider();
    alarm_api::serve(state, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind")
}

/// The data keys' sealer the apps use, with a fixed test key.
pub(crate) fn sealer() -> Arc<dyn alarm_domain::ports::SecretSealer> {
    Arc::new(
        alarm_secrets::AeadSealer::from_text(&secrecy::SecretString::from(
            "dGVzdCBkYXRhIGtleSwgMzIgYnl0ZXMgbG9uZyEhISE=".to_owned(),
        ))
        .expect("the test key"),
    )
}
