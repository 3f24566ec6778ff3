//! What every handler shares: the services, the token keys, the configuration and the health checks.

use std::sync::Arc;

use crate::auth::{Argon2Hasher, TokenConfig, Tokens};
use alarm_domain::jiff::SignedDuration;
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::Email;
use alarm_domain::services::{
    AlarmService, AuthService, CalendarService, Ports, RoutineService, UserService, WebhookService,
};
use async_trait::async_trait;

/// A readiness check (the database, later the queue and the blob store).
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// The check's name in `/health` and in a 503's detail.
    fn name(&self) -> &'static str;
    /// `Ok` when the dependency works; the reason otherwise. The caller
    /// bounds the time it may take.
    async fn check(&self) -> Result<(), String>;
    /// Whether a failure makes the process unready (503). A check that is
    /// not critical reports `degraded`: the process still serves (e.g. a
    /// secret whose refresh fails keeps its last value).
    fn critical(&self) -> bool {
        true
    }
    /// Work waiting on the dependency, reported beside the check (e.g.
    /// sounds in the storage spool not yet pushed); `None` when the check
    /// has no such backlog.
    async fn pending(&self) -> Option<u64> {
        None
    }
}

/// The API's settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Access and refresh tokens.
    pub tokens: TokenConfig,
    /// Origins allowed by CORS (empty: no CORS headers at all).
    pub cors_origins: Vec<String>,
    /// Accounts registered with these emails are administrators.
    pub admin_emails: Vec<Email>,
    /// The public base URL (for `Location` headers and the spec's server).
    pub base_url: Option<String>,
    /// The time-zone database's release, reported by `/health`.
    pub tzdb_version: String,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl: SignedDuration,
    /// How long each health check may take.
    pub health_timeout: SignedDuration,
    /// Request limits.
    pub rate_limits: crate::limiter::RateLimits,
    /// Peers whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one header those proxies write.
    pub proxy_header: crate::limiter::ProxyHeader,
    /// Connection cap, head and keep-alive deadlines, TLS ([`crate::serve`]).
    pub transport: crate::transport::Transport,
    /// How long a request body may take to arrive (then 408).
    pub body_timeout: std::time::Duration,
    /// Where password-reset e-mails go out; `None` when the deployment has
    /// no e-mail, and then a reset is refused (503) rather than accepted
    /// and never sent.
    pub account_mail: Option<AccountMailer>,
    /// Mebibytes all upload PATCHes in progress may buffer together.
    pub upload_memory_megabytes: u32,
    /// Upload PATCHes one account may have in progress at once.
    pub upload_patches_per_user: u32,
    /// How long one upload PATCH may last (then it ends as cut off; the
    /// client resumes).
    pub upload_patch_longest: std::time::Duration,
    /// Signed sound links under a CDN (`CDN_BASE_URL`); `None`: sounds
    /// are read with credentials only.
    pub sound_links: Option<crate::links::SoundLinks>,
}

/// The account e-mail sender the API hands reset tokens to.
#[derive(Clone)]
pub struct AccountMailer(pub Arc<dyn alarm_domain::ports::AccountMail>);

impl std::fmt::Debug for AccountMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountMailer")
    }
}

/// The shared state.
pub struct AppState {
    pub(crate) ports: Ports,
    pub(crate) alarms: AlarmService,
    pub(crate) users: UserService,
    pub(crate) auth: AuthService,
    pub(crate) webhooks: WebhookService,
    pub(crate) calendar: CalendarService,
    pub(crate) routines: RoutineService,
    pub(crate) api_keys: alarm_domain::services::ApiKeyService,
    pub(crate) uploads: alarm_domain::services::UploadService,
    pub(crate) sounds: alarm_domain::services::SoundService,
    pub(crate) upload_gate: crate::api::uploads::UploadGate,
    /// Swapped whole when a rotated key arrives ([`AppState::rekey`]).
    tokens: std::sync::RwLock<Arc<Tokens>>,
    pub(crate) tzdb: TimeZoneDatabase,
    pub(crate) limiter: crate::limiter::Limiter,
    pub(crate) config: ApiConfig,
    pub(crate) checks: Vec<Arc<dyn HealthCheck>>,
    pub(crate) active_users: crate::active::ActiveUsers,
}

impl AppState {
    /// Sets the gauges this state keeps (`active_users`), for a scrape.
    pub fn scrape_gauges(&self) {
        self.active_users.sweep(std::time::Instant::now());
    }

    /// Builds the state.
    ///
    /// # Errors
    /// When the token settings are invalid (e.g. a short secret).
    pub async fn new(
        ports: Ports,
        tzdb: TimeZoneDatabase,
        config: ApiConfig,
        checks: Vec<Arc<dyn HealthCheck>>,
    ) -> Result<Arc<Self>, String> {
        Self::with_counters(ports, tzdb, config, checks, None).await
    }

    /// [`AppState::new`] with the rate-limit counters in `counters` (a
    /// store shared by every instance, such as Redis) instead of in this
    /// process.
    ///
    /// # Errors
    /// When the token settings are invalid (e.g. a short secret).
    pub async fn with_counters(
        ports: Ports,
        tzdb: TimeZoneDatabase,
        config: ApiConfig,
        checks: Vec<Arc<dyn HealthCheck>>,
        counters: Option<Box<dyn crate::limiter::CounterStore>>,
    ) -> Result<Arc<Self>, String> {
        let max_keys = config.rate_limits.max_keys;
        let limiter = match counters {
            Some(store) => crate::limiter::Limiter::new(store, max_keys),
            None => crate::limiter::Limiter::local(max_keys),
        };
        let tokens = Tokens::new(config.tokens.clone())?;
        // The event counters exist from the start (at 0), so `increase()`
        // and the dashboard see the first event too.
        metrics::counter!("alarms_created_total").increment(0);
        metrics::counter!("login_failures_total").increment(0);
        for rate in config.rate_limits.refusing() {
            metrics::counter!("rate_limit_rejections_total", "limit" => rate.name).increment(0);
        }
        Ok(Arc::new(Self {
            alarms: AlarmService::new(ports.clone()),
            users: UserService::new(ports.clone(), config.admin_emails.clone()),
            auth: AuthService::new(
                ports.clone(),
                Arc::new(Argon2Hasher),
                config.tokens.refresh_ttl,
            ),
            webhooks: WebhookService::new(ports.clone()),
            calendar: CalendarService::new(ports.clone()),
            routines: RoutineService::new(ports.clone()),
            api_keys: alarm_domain::services::ApiKeyService::new(ports.clone()),
            uploads: alarm_domain::services::UploadService::new(ports.clone()),
            sounds: alarm_domain::services::SoundService::new(ports.clone()),
            upload_gate: crate::api::uploads::UploadGate::new(
                config.upload_memory_megabytes,
                config.upload_patches_per_user,
            ),
            limiter,
            ports,
            tokens: std::sync::RwLock::new(Arc::new(tokens)),
            tzdb,
            config,
            checks,
            active_users: crate::active::ActiveUsers::default(),
        }))
    }

    /// The absolute address of `path` below `/api/v1/` (for `Location`),
    /// relative when no public base URL is configured.
    pub(crate) fn location(&self, path: &str) -> String {
        let base = self
            .config
            .base_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/');
        format!("{base}/api/v1/{path}")
    }

    /// The token keys in force.
    pub(crate) fn tokens(&self) -> Arc<Tokens> {
        self.tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Changes the token keys (a key rotated in the secret provider):
    /// `change` edits a copy of the settings in force, and the keys it
    /// drops keep verifying until the tokens they signed have expired
    /// ([`Tokens::rekeyed`]). Gives the `kid` new tokens carry.
    ///
    /// # Errors
    /// `change` refused a value, or the new settings are refused; either
    /// way the keys in force stay.
    pub fn rekey(
        &self,
        change: impl FnOnce(&mut TokenConfig) -> Result<(), String>,
    ) -> Result<String, String> {
        let mut slot = self
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut config = slot.config().clone();
        change(&mut config)?;
        let next = slot.rekeyed(config, alarm_domain::jiff::Timestamp::now())?;
        let kid = next.signing_kid().to_owned();
        *slot = Arc::new(next);
        Ok(kid)
    }

    /// Aborts up to `limit` abandoned uploads (the hourly housekeeping).
    ///
    /// # Errors
    /// The first failure (what was swept stays swept).
    pub async fn sweep_uploads(
        &self,
        limit: u32,
    ) -> Result<u32, alarm_domain::services::UploadError> {
        self.uploads.sweep(limit).await
    }

    /// Deletes the bytes of up to `limit` deleted sounds whose delete did
    /// not finish (the hourly housekeeping).
    ///
    /// # Errors
    /// The first failure (what was done stays done).
    pub async fn sweep_sounds(
        &self,
        limit: u32,
    ) -> Result<u32, alarm_domain::services::SoundError> {
        self.sounds.sweep(limit).await
    }

    /// The ports (for the embedding app's housekeeping).
    pub fn ports(&self) -> &Ports {
        &self.ports
    }
}
