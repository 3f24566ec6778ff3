//! Settings: every one declared once (flag, environment variable, `--config` key, default, range, help) in its group; command line > environment > `--config` file > default; secrets only from the environment or a file they name, straight into `SecretString`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alarm_appkit::settings::ConfigFile;
use alarm_appkit::{ConfigError, bad, secret_env};
use alarm_host::groups::{AccountArgs, AccountValues, SECRETS_HELP, Server, ServerArgs};
use alarm_host::secrets::{SecretRefs, SecretsArgs, SecretsValues};
use clap::Parser;
use secrecy::{ExposeSecret, SecretString};

const JWT_HELP: &str = "\
  JWT_SECRET_KEY        HS256 signing key, at least 32 bytes; required with
                        DATABASE_URL. In the embedded default a key is
                        generated once into <DATA_DIR>/jwt-secret (mode 0600)
  JWT_SECRET_KEY_FILE   a file holding JWT_SECRET_KEY
  JWT_PREVIOUS_SECRET_KEYS  earlier HS256 keys, one per line, that still verify
                        (a rotation's overlap window); none signs
  JWT_RSA_KEYS          PEM PKCS#8 RSA private keys: the first signs RS256 tokens,
                        all verify and are published at /.well-known/jwks.json
  JWT_PREVIOUS_SECRET_KEYS_FILE, JWT_RSA_KEYS_FILE  files holding them
  RATE_LIMIT_REDIS_URL  redis://[:password@]host:port/db: every instance shares
                        one rate-limit budget there; unset = each process counts
                        on its own. If Redis stops answering, each process counts
                        on its own until it answers again
  RATE_LIMIT_REDIS_URL_FILE  a file holding RATE_LIMIT_REDIS_URL";

/// Smart Alarm HTTP server: the API, its docs at /docs and health endpoints; unless
/// --no-worker, the trigger engine and the delivery worker run in this process too.
#[derive(Debug, Parser)]
#[command(name = "alarm-http", version, after_help = format!("{SECRETS_HELP}\n\n{JWT_HELP}\n{}", alarm_host::storage::STORAGE_SECRET_HELP))]
pub(crate) struct Args {
    /// TOML file with settings: the long option names with underscores as keys.
    #[arg(long, env = "ALARM_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Print the OpenAPI document (JSON) and exit; `cargo xtask codegen` uses it.
    #[arg(long)]
    pub(crate) openapi: bool,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    accounts: AccountArgs,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    storage: alarm_host::storage::StorageArgs,
    #[command(flatten)]
    secrets: SecretsArgs,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// What else the binary does besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub(crate) enum Command {
    /// GET URL over plain HTTP and exit 0 on a 2xx answer, 1 otherwise: the
    /// container's health check (no shell or curl in the image), e.g.
    /// `alarm-http probe http://127.0.0.1:8080/health/ready`.
    Probe {
        /// An http:// URL.
        url: String,
        /// Seconds to wait for the connection and for the answer.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
        timeout: u64,
    },
}

alarm_appkit::settings! {
    /// The API's own settings.
    pub(crate) struct ApiArgs => ApiValues {
        /// Address to listen on
        listen: SocketAddr = "127.0.0.1:8080", "LISTEN_ADDR";
        /// Address of the ops listener (/metrics), never the public port; alarm-worker's default is 127.0.0.1:9090, so both run on one host
        ops_listen: SocketAddr = "127.0.0.1:9091", "OPS_LISTEN_ADDR";
        /// JWT `iss`
        jwt_issuer: String = "smart-alarm", "JWT_ISSUER";
        /// JWT `aud`
        jwt_audience: String = "smart-alarm-api", "JWT_AUDIENCE";
        /// Access-token lifetime in minutes
        jwt_access_minutes: u32 = "15", "JWT_ACCESS_MINUTES", 1..=60;
        /// Refresh-token (session) lifetime in days
        jwt_refresh_days: u32 = "30", "JWT_REFRESH_DAYS", 1..=365;
        /// Comma-separated origins allowed by CORS, e.g. https://app.example.com [default: none]
        cors_origins: Vec<String>, "CORS_ORIGINS";
        /// Public base URL, used in Location headers and the spec [default: none]
        api_base_url: Option<String>, "API_BASE_URL";
        /// The page a password-reset e-mail links to, the token in its fragment as `#token=...` [default: none: the e-mail gives the token and the API call]
        password_reset_url: Option<String>, "PASSWORD_RESET_URL";
        /// The page an address-verification e-mail links to, the token in its fragment as `#token=...` [default: none: the e-mail gives the token and the API call]
        email_verification_url: Option<String>, "EMAIL_VERIFICATION_URL";
        /// Seconds a client has to send a whole request head, from connecting (the TLS handshake included) or from its first byte after an answer; then the connection is closed
        http_header_timeout_seconds: u64 = "10", "HTTP_HEADER_TIMEOUT_SECONDS", 1..=300;
        /// Seconds a request body may take to arrive; then 408
        http_body_timeout_seconds: u64 = "30", "HTTP_BODY_TIMEOUT_SECONDS", 1..=600;
        /// Seconds from the end of a request (its head, or its body's last byte) to the start of its answer; then the connection is closed
        http_answer_timeout_seconds: u64 = "60", "HTTP_ANSWER_TIMEOUT_SECONDS", 1..=3600;
        /// Seconds a kept-alive connection may stay silent between requests
        http_keep_alive_seconds: u64 = "60", "HTTP_KEEP_ALIVE_SECONDS", 1..=3600;
        /// Connections open at once; further clients wait in the listen backlog
        http_max_connections: usize = "4096", "HTTP_MAX_CONNECTIONS", 1..=1_000_000;
        /// Connections one client address (IPv6 by /64) may hold at once, trusted proxies aside; the next is closed at once
        http_max_connections_per_address: usize = "256", "HTTP_MAX_CONNECTIONS_PER_ADDRESS", 1..=1_000_000;
        /// PEM certificate chain: serve HTTPS (TLS 1.2+) with TLS_KEY_FILE, and send HSTS [default: none: plain HTTP behind a terminating load balancer]
        tls_cert_file: Option<PathBuf>, "TLS_CERT_FILE";
        /// PEM private key of TLS_CERT_FILE [default: none]
        tls_key_file: Option<PathBuf>, "TLS_KEY_FILE";
        /// Base URL of a CDN whose origin is this API, e.g. https://cdn.example.com: each sound then carries a signed link under it that needs no credentials until it expires [default: none: sounds are read with credentials only]
        cdn_base_url: Option<String>, "CDN_BASE_URL";
        /// Seconds a signed sound link works, at least (expiries are rounded up to 10 minutes so a CDN caches one URL)
        sound_link_ttl_seconds: u32 = "3600", "SOUND_LINK_TTL_SECONDS", 60..=604_800;
        /// Do not run the trigger engine and delivery worker in this process (run alarm-worker instead)
        no_worker: bool = "false", "NO_WORKER", switch;
        /// Run as an OCI Function: serve Fn's http-stream contract on this unix socket (unix:/path, set by the Functions service) instead of LISTEN_ADDR, with no worker, ops listener or upload spool; needs DATABASE_URL and STORAGE_BACKEND s3 or oci (a function's disk does not last) [default: none]
        fn_listener: Option<String>, "FN_LISTENER";
        /// With FN_LISTENER: the name of the line that starts each call's log (set by OCI Functions) [default: none]
        fn_logframe_name: Option<String>, "FN_LOGFRAME_NAME";
        /// With FN_LISTENER: the request header whose value that line carries (set by OCI Functions) [default: none]
        fn_logframe_hdr: Option<String>, "FN_LOGFRAME_HDR";
    }
}

alarm_appkit::settings! {
    /// Quotas per account and request limits (see ARCHITECTURE.md, "Abuse resistance").
    pub(crate) struct LimitArgs => LimitValues {
        /// Alarms one account may hold
        quota_alarms_per_user: u32 = "200", "QUOTA_ALARMS_PER_USER", 1..=1_000_000;
        /// Schedules one alarm may have
        quota_schedules_per_alarm: u32 = "16", "QUOTA_SCHEDULES_PER_ALARM", 1..=16;
        /// Wall times one alarm's schedules may yield on one local day, together (a rule yields BYHOUR x BYMINUTE a day)
        max_fires_per_day: u32 = "96", "MAX_FIRES_PER_DAY", 1..=1440;
        /// Webhook registrations one account may hold
        quota_webhooks_per_user: u32 = "20", "QUOTA_WEBHOOKS_PER_USER", 1..=100;
        /// Exception periods one account may hold
        quota_exception_periods_per_user: u32 = "100", "QUOTA_EXCEPTION_PERIODS_PER_USER", 1..=1000;
        /// Routines one account may hold
        quota_routines_per_user: u32 = "100", "QUOTA_ROUTINES_PER_USER", 1..=100;
        /// API keys one account may hold
        quota_api_keys_per_user: u32 = "20", "QUOTA_API_KEYS_PER_USER", 1..=1000;
        /// Resumable uploads one account may have open at once
        quota_uploads_per_user: u32 = "5", "QUOTA_UPLOADS_PER_USER", 1..=1000;
        /// Sounds one account may keep
        quota_sounds_per_user: u32 = "50", "QUOTA_SOUNDS_PER_USER", 1..=100_000;
        /// Mebibytes of sounds one account may keep, all together
        quota_sound_megabytes_per_user: u32 = "500", "QUOTA_SOUND_MEGABYTES_PER_USER", 1..=1_000_000;
        /// Seconds a webhook's old signing secret keeps signing beside the new one after a rotation (0: it stops at once)
        webhook_secret_overlap_seconds: u32 = "86400", "WEBHOOK_SECRET_OVERLAP_SECONDS", 0..=604_800;
        /// Requests per hour to /api/v1/webhooks... with one API key
        rate_limit_webhooks_per_api_key_per_hour: u32 = "1000", "RATE_LIMIT_WEBHOOKS_PER_API_KEY_PER_HOUR", 1..=100_000_000;
        /// Requests per minute from one client address (IPv6 by /64), health checks aside
        rate_limit_per_ip_per_minute: u32 = "1000", "RATE_LIMIT_PER_IP_PER_MINUTE", 1..=100_000_000;
        /// Requests per minute to /api/v1/alarms... by one user
        rate_limit_alarms_per_user_per_minute: u32 = "100", "RATE_LIMIT_ALARMS_PER_USER_PER_MINUTE", 1..=100_000_000;
        /// Registrations per hour from one client address
        rate_limit_registrations_per_ip_per_hour: u32 = "20", "RATE_LIMIT_REGISTRATIONS_PER_IP_PER_HOUR", 1..=100_000_000;
        /// Password-reset requests per hour from one client address
        rate_limit_password_resets_per_ip_per_hour: u32 = "10", "RATE_LIMIT_PASSWORD_RESETS_PER_IP_PER_HOUR", 1..=100_000;
        /// Password-reset requests per hour for one e-mail address, from anywhere
        rate_limit_password_resets_per_email_per_hour: u32 = "3", "RATE_LIMIT_PASSWORD_RESETS_PER_EMAIL_PER_HOUR", 1..=1000;
        /// Verification links one account may ask to be re-sent per hour
        rate_limit_verification_resends_per_hour: u32 = "3", "RATE_LIMIT_VERIFICATION_RESENDS_PER_HOUR", 1..=1000;
        /// Webhook test pings per hour by one user
        rate_limit_test_pings_per_hour: u32 = "10", "RATE_LIMIT_TEST_PINGS_PER_HOUR", 1..=100_000;
        /// Failed logins for one e-mail from one client address per window
        login_max_failures_per_email_and_ip: u32 = "10", "LOGIN_MAX_FAILURES_PER_EMAIL_AND_IP", 1..=100_000;
        /// Failed logins from one client address per window, any e-mail
        login_max_failures_per_ip: u32 = "50", "LOGIN_MAX_FAILURES_PER_IP", 1..=100_000;
        /// Failed logins for one e-mail from anywhere per window before a warning is logged (refuses nothing)
        login_alert_failures_per_email: u32 = "100", "LOGIN_ALERT_FAILURES_PER_EMAIL", 1..=1_000_000;
        /// The failed-login window, in minutes
        login_window_minutes: u32 = "15", "LOGIN_WINDOW_MINUTES", 1..=1440;
        /// Rate-limit keys kept in this process; past it, new keys share one budget
        rate_limit_max_keys: usize = "100000", "RATE_LIMIT_MAX_KEYS", 100..=10_000_000;
        /// How long a refused request (429) is held before its answer, in milliseconds (0: sent at once); at most 512 are held at once
        rate_limit_refusal_delay_ms: u64 = "200", "RATE_LIMIT_REFUSAL_DELAY_MS", 0..=10_000;
        /// How long a rate-limit call may wait for Redis, in milliseconds (then this process counts on its own for a second)
        rate_limit_redis_timeout_ms: u64 = "100", "RATE_LIMIT_REDIS_TIMEOUT_MS", 10..=10_000;
        /// Prefix of this deployment's rate-limit keys in Redis
        rate_limit_redis_prefix: String = "smart-alarm:rl:", "RATE_LIMIT_REDIS_PREFIX";
        /// Comma-separated CIDRs of proxies whose TRUSTED_PROXY_HEADER names the client, e.g. 10.0.0.0/8 [default: none: the socket peer is the client]
        trusted_proxies: Vec<String>, "TRUSTED_PROXIES";
        /// The header the trusted proxies write: x-forwarded-for or forwarded (only that one is read; a client can send the other)
        trusted_proxy_header: String = "x-forwarded-for", "TRUSTED_PROXY_HEADER";
    }
}

impl LimitValues {
    /// The domain's quotas and bounds.
    pub(crate) fn domain(&self) -> alarm_domain::limits::Limits {
        alarm_domain::limits::Limits {
            alarms_per_user: self.quota_alarms_per_user,
            schedules_per_alarm: self.quota_schedules_per_alarm,
            fires_per_day: self.max_fires_per_day,
            webhooks_per_user: self.quota_webhooks_per_user,
            exception_periods_per_user: self.quota_exception_periods_per_user,
            routines_per_user: self.quota_routines_per_user,
            api_keys_per_user: self.quota_api_keys_per_user,
            uploads_per_user: self.quota_uploads_per_user,
            sounds_per_user: self.quota_sounds_per_user,
            sound_megabytes_per_user: self.quota_sound_megabytes_per_user,
            webhook_secret_overlap_seconds: self.webhook_secret_overlap_seconds,
        }
    }

    /// The API's request limits.
    pub(crate) fn rates(&self) -> alarm_api::limiter::RateLimits {
        use alarm_api::limiter::{Rate, RateLimits};
        let d = RateLimits::default();
        let login = u64::from(self.login_window_minutes) * 60;
        RateLimits {
            per_ip: Rate {
                limit: self.rate_limit_per_ip_per_minute,
                ..d.per_ip
            },
            alarms_per_user: Rate {
                limit: self.rate_limit_alarms_per_user_per_minute,
                ..d.alarms_per_user
            },
            register_per_ip: Rate {
                limit: self.rate_limit_registrations_per_ip_per_hour,
                ..d.register_per_ip
            },
            test_pings_per_user: Rate {
                limit: self.rate_limit_test_pings_per_hour,
                ..d.test_pings_per_user
            },
            resets_per_ip: Rate {
                limit: self.rate_limit_password_resets_per_ip_per_hour,
                ..d.resets_per_ip
            },
            resets_per_email: Rate {
                limit: self.rate_limit_password_resets_per_email_per_hour,
                ..d.resets_per_email
            },
            verifications_per_user: Rate {
                limit: self.rate_limit_verification_resends_per_hour,
                ..d.verifications_per_user
            },
            webhooks_per_key: Rate {
                limit: self.rate_limit_webhooks_per_api_key_per_hour,
                ..d.webhooks_per_key
            },
            login_per_pair: Rate {
                limit: self.login_max_failures_per_email_and_ip,
                period_secs: login,
                ..d.login_per_pair
            },
            login_per_ip: Rate {
                limit: self.login_max_failures_per_ip,
                period_secs: login,
                ..d.login_per_ip
            },
            login_alert_per_email: Rate {
                limit: self.login_alert_failures_per_email,
                period_secs: login,
                ..d.login_alert_per_email
            },
            max_keys: self.rate_limit_max_keys,
            refusal_delay: std::time::Duration::from_millis(self.rate_limit_refusal_delay_ms),
        }
    }

    /// `TRUSTED_PROXIES` parsed (a bare address is its own /32 or /128).
    /// `TRUSTED_PROXY_HEADER`.
    pub(crate) fn proxy_header(&self) -> Result<alarm_api::limiter::ProxyHeader, ConfigError> {
        match self
            .trusted_proxy_header
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "x-forwarded-for" => Ok(alarm_api::limiter::ProxyHeader::XForwardedFor),
            "forwarded" => Ok(alarm_api::limiter::ProxyHeader::Forwarded),
            other => Err(bad(
                "TRUSTED_PROXY_HEADER",
                format!("`{other}` is neither x-forwarded-for nor forwarded"),
            )),
        }
    }

    pub(crate) fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        alarm_appkit::cidrs("TRUSTED_PROXIES", &self.trusted_proxies)
    }
}

/// `JWT_PREVIOUS_SECRET_KEYS`: one key per line (blank lines skipped),
/// each at least as long as a signing key must be.
pub(crate) fn previous_keys(keys: &SecretString) -> Result<Vec<SecretString>, ConfigError> {
    let keys: Vec<SecretString> = keys
        .expose_secret()
        .lines()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| SecretString::from(k.to_owned()))
        .collect();
    if keys
        .iter()
        .any(|k| k.expose_secret().len() < alarm_api::auth::MIN_SECRET_BYTES)
    {
        return Err(bad(
            "JWT_PREVIOUS_SECRET_KEYS",
            format!(
                "each key (one per line) must be at least {} bytes",
                alarm_api::auth::MIN_SECRET_BYTES
            ),
        ));
    }
    Ok(keys)
}

/// `JWT_RSA_KEYS`: PEM `PRIVATE KEY` (PKCS#8) blocks, each kept whole; the
/// keys themselves are checked when the token service is built.
pub(crate) fn rsa_keys(pem: &SecretString) -> Result<Vec<SecretString>, ConfigError> {
    const END: &str = "-----END PRIVATE KEY-----";
    let text = pem.expose_secret();
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(END) {
        let block = rest[..at + END.len()].trim();
        keys.push(SecretString::from(format!("{block}\n")));
        rest = &rest[at + END.len()..];
    }
    if keys.is_empty() || !rest.trim().is_empty() {
        return Err(bad(
            "JWT_RSA_KEYS",
            "must hold PEM PKCS#8 private keys (-----BEGIN PRIVATE KEY-----), the signing key first",
        ));
    }
    if keys.len() > 8 {
        return Err(bad("JWT_RSA_KEYS", "at most 8 keys"));
    }
    Ok(keys)
}

/// The effective configuration.
pub(crate) struct Settings {
    pub(crate) api: ApiValues,
    /// `ADMIN_EMAILS`, checked.
    pub(crate) admin_emails: Vec<alarm_domain::model::Email>,
    accounts: AccountValues,
    pub(crate) limits: LimitValues,
    /// `RATE_LIMIT_REDIS_URL`: every instance shares one budget there.
    pub(crate) redis: Option<SecretString>,
    pub(crate) server: Server,
    /// Object storage: sounds and uploads.
    pub(crate) storage: alarm_host::storage::Storage,
    /// `None` only in the embedded default before the key file is read.
    pub(crate) jwt_secret: Option<SecretString>,
    /// `JWT_PREVIOUS_SECRET_KEYS`: earlier HS256 keys that still verify.
    pub(crate) jwt_previous: Vec<SecretString>,
    /// `JWT_RSA_KEYS`: PEM RSA keys, the first signs RS256.
    pub(crate) jwt_rsa: Vec<SecretString>,
    secrets: SecretsValues,
    /// The secret providers, for values that change after the start.
    pub(crate) refs: SecretRefs,
}

impl Settings {
    /// Merges the sources and validates every value.
    pub(crate) fn load(args: &Args) -> Result<Self, ConfigError> {
        let mut file = ConfigFile::read(args.config.as_deref())?;
        let (refs, secrets) = SecretRefs::load(&args.secrets, &mut file)?;
        let resolver = &refs;
        let mut api = args.api.resolve(&mut file, resolver)?;
        let limits = args.limits.resolve(&mut file, resolver)?;
        let accounts = args.accounts.resolve(&mut file, resolver)?;
        let admin_emails = accounts.admin_emails()?;
        if api.tls_cert_file.is_some() != api.tls_key_file.is_some() {
            return Err(bad(
                "TLS_CERT_FILE",
                "TLS_CERT_FILE and TLS_KEY_FILE go together",
            ));
        }
        limits.trusted_proxies()?;
        limits.proxy_header()?;
        let server = args.server.load(&mut file, resolver)?;
        let mut storage =
            args.storage
                .load(&mut file, resolver, &server.database.values.data_dir)?;
        if let Some(listener) = &api.fn_listener {
            alarm_api::fnproject::listener_path(listener).map_err(|e| bad("FN_LISTENER", e))?;
            // A function's disk lasts until the service recycles its container: nothing that
            // must outlive a call may be written there.
            if server.database.embedded() {
                return Err(bad(
                    "FN_LISTENER",
                    "a function needs DATABASE_URL: the embedded database would live on its ephemeral disk",
                ));
            }
            if !storage.remote() {
                return Err(bad(
                    "FN_LISTENER",
                    "a function needs STORAGE_BACKEND s3 or oci: local sounds would live on its ephemeral disk",
                ));
            }
            // The function serves as the client's address the hop the gateway appended; a
            // proxy list would make it read a hop the client wrote.
            if !limits.trusted_proxies.is_empty() {
                return Err(bad(
                    "TRUSTED_PROXIES",
                    "a function takes the client's address from the gateway's X-Forwarded-For hop: leave TRUSTED_PROXIES empty with FN_LISTENER",
                ));
            }
            storage.spool_dir = None;
            api.no_worker = true;
        }
        file.finish()?;
        let jwt_secret = secret_env("JWT_SECRET_KEY", "JWT_SECRET_KEY_FILE", resolver)?;
        let redis = secret_env(
            "RATE_LIMIT_REDIS_URL",
            "RATE_LIMIT_REDIS_URL_FILE",
            resolver,
        )?;
        let jwt_previous = secret_env(
            "JWT_PREVIOUS_SECRET_KEYS",
            "JWT_PREVIOUS_SECRET_KEYS_FILE",
            resolver,
        )?
        .map(|keys| previous_keys(&keys))
        .transpose()?
        .unwrap_or_default();
        let jwt_rsa = secret_env("JWT_RSA_KEYS", "JWT_RSA_KEYS_FILE", resolver)?
            .map(|pem| rsa_keys(&pem))
            .transpose()?
            .unwrap_or_default();
        if !jwt_rsa.is_empty() && jwt_secret.is_none() && !server.database.embedded() {
            return Err(bad(
                "JWT_SECRET_KEY",
                "is required with JWT_RSA_KEYS too (HS256 tokens issued before still verify with it)",
            ));
        }
        match &jwt_secret {
            Some(s) if s.expose_secret().len() < alarm_api::auth::MIN_SECRET_BYTES => {
                return Err(bad(
                    "JWT_SECRET_KEY",
                    format!(
                        "must be at least {} bytes",
                        alarm_api::auth::MIN_SECRET_BYTES
                    ),
                ));
            }
            None if !server.database.embedded() => {
                return Err(bad(
                    "JWT_SECRET_KEY",
                    "is required when DATABASE_URL is set (only the embedded default generates one)",
                ));
            }
            _ => {}
        }
        api.cors_origins = api
            .cors_origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_owned())
            .collect();
        for o in &api.cors_origins {
            let ok = url::Url::parse(o).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/"
            });
            // `*` is refused: poem would take it as a literal origin that no
            // browser sends, and a credentialed API should name its origins.
            if !ok {
                return Err(bad(
                    "CORS_ORIGINS",
                    format!("`{o}` is not an origin like https://app.example.com"),
                ));
            }
        }
        for (name, value) in [
            ("API_BASE_URL", &api.api_base_url),
            ("PASSWORD_RESET_URL", &api.password_reset_url),
            ("EMAIL_VERIFICATION_URL", &api.email_verification_url),
            ("CDN_BASE_URL", &api.cdn_base_url),
        ] {
            if let Some(u) = value {
                let ok = url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
                if !ok {
                    return Err(bad(name, format!("`{u}` is not an absolute http(s) URL")));
                }
            }
        }
        Ok(Self {
            api,
            admin_emails,
            accounts,
            limits,
            redis,
            server,
            storage,
            jwt_secret,
            jwt_previous,
            jwt_rsa,
            secrets,
            refs,
        })
    }

    /// Whether the trigger engine and the delivery worker run in this process.
    pub(crate) fn worker(&self) -> bool {
        !self.api.no_worker
    }

    /// The effective configuration as TOML-like lines, secrets redacted.
    pub(crate) fn describe(&self) -> String {
        let key = match &self.jwt_secret {
            Some(_) => "\"[redacted]\"".to_owned(),
            None => format!(
                "\"(generated in {})\"",
                key_path(&self.server.database.values.data_dir).display()
            ),
        };
        [
            self.api.describe(),
            self.accounts.describe(),
            self.limits.describe(),
            vec![
                format!("jwt_secret_key = {key}"),
                format!(
                    "jwt_previous_secret_keys = \"[{} redacted]\"",
                    self.jwt_previous.len()
                ),
                format!("jwt_rsa_keys = \"[{} redacted]\"", self.jwt_rsa.len()),
                format!(
                    "rate_limit_redis_url = {}",
                    if self.redis.is_some() {
                        "\"[redacted]\""
                    } else {
                        "\"(none: counters in this process)\""
                    }
                ),
            ],
            self.server.describe(),
            self.storage.describe(),
            self.secrets.describe(),
        ]
        .concat()
        .join("\n")
    }
}

/// Where the embedded default keeps its generated signing key.
pub(crate) fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("jwt-secret")
}
