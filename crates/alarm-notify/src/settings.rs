//! The notification settings both apps read from the environment (`WEBHOOK_*`, `DELIVERY_*`, `SMTP_*`), validated with the setting's name in every error, and the wiring of a dispatcher and a target guard from them.

use std::sync::Arc;
use std::time::Duration;

use alarm_domain::services::Ports;
use secrecy::SecretString;

use crate::dispatch::{DispatchConfig, Dispatcher};
use crate::email::{Mailer, SmtpConfig, SmtpTls};
use crate::resolve::{Resolve, SsrfGuard, SystemResolver};
use crate::ssrf::AddressPolicy;
use crate::webhook::{BreakerConfig, WebhookConfig, WebhookSender};

/// The `--help` text listing every setting.
pub const HELP: &str = "\
Notifications (environment only):
  WEBHOOK_ALLOW_PRIVATE      true = webhooks may reach loopback/private/link-local
                             addresses (default false: refused at registration and
                             on the resolved address of every delivery)
  WEBHOOK_TIMEOUT_SECONDS    per request, 1..=60 [10]
  WEBHOOK_MAX_ATTEMPTS       attempts before a delivery is dead-lettered, 1..=50 [8]
  WEBHOOK_RETRY_MIN_MS       first retry delay (doubling, jittered), 10..=3600000 [5000]
  WEBHOOK_RETRY_MAX_SECONDS  longest retry delay and Retry-After honoured, 1..=86400 [3600]
  WEBHOOK_DISABLE_AFTER      consecutive dead deliveries that disable a registration
                             (its owner is e-mailed), 1..=1000 [10]
  WEBHOOK_BREAKER_WINDOW     attempts per host the failure rate is measured over;
                             half failing opens the host's breaker, 2..=1000 [20]
  WEBHOOK_BREAKER_OPEN_MS    how long an open breaker holds deliveries back, 100..=3600000 [30000]
  DELIVERY_BATCH             outbox rows claimed per round, 1..=2000 [256]
  DELIVERY_CONCURRENCY       sends in flight, 1..=512 [64]
  DELIVERY_LEASE_SECONDS     claim lease; a killed worker's rows go out again after it,
                             10..=3600 [120]
  DELIVERY_IDLE_POLL_MS      idle look at the outbox, 10..=60000 [200]
  SMTP_HOST                  unset = no e-mail (e-mail deliveries are dead-lettered)
  SMTP_PORT                  [587 starttls, 465 tls, 25 none]
  SMTP_TLS                   starttls | tls | none [starttls]
  SMTP_USERNAME, SMTP_PASSWORD (or SMTP_PASSWORD_FILE)
  SMTP_FROM                  sender mailbox, required with SMTP_HOST
  SMTP_TIMEOUT_SECONDS       whole conversation per message, 1..=300 [20]";

/// Validated notification settings.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The dispatcher.
    pub dispatch: DispatchConfig,
    /// The webhook sender.
    pub webhook: WebhookConfig,
    /// SMTP, when configured.
    pub smtp: Option<SmtpConfig>,
}

/// A bad setting: its name and why.
pub type SettingError = (&'static str, String);

fn number<T>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, SettingError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let value = match get(name) {
        None => default,
        Some(text) => text
            .trim()
            .parse::<T>()
            .map_err(|_| (name, format!("must be a number, got {text:?}")))?,
    };
    if range.contains(&value) {
        Ok(value)
    } else {
        Err((
            name,
            format!("must be {}..={}, got {value}", range.start(), range.end()),
        ))
    }
}

fn flag(get: &dyn Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, SettingError> {
    match get(name).as_deref().map(str::trim) {
        None => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err((name, format!("must be true or false, got {other:?}"))),
    }
}

impl NotifySettings {
    /// Reads the settings through `get` (the environment, in the apps);
    /// the SMTP password arrives already as a secret.
    ///
    /// # Errors
    /// The first bad setting.
    pub fn load(
        get: &dyn Fn(&str) -> Option<String>,
        smtp_password: Option<SecretString>,
    ) -> Result<Self, SettingError> {
        let defaults = DispatchConfig::default();
        let dispatch = DispatchConfig {
            batch: number(get, "DELIVERY_BATCH", defaults.batch, 1..=2000)?,
            concurrency: number(get, "DELIVERY_CONCURRENCY", defaults.concurrency, 1..=512)?,
            lease: Duration::from_secs(number(get, "DELIVERY_LEASE_SECONDS", 120, 10..=3600)?),
            idle_poll: Duration::from_millis(number(
                get,
                "DELIVERY_IDLE_POLL_MS",
                200,
                10..=60_000,
            )?),
            max_attempts: number(get, "WEBHOOK_MAX_ATTEMPTS", defaults.max_attempts, 1..=50)?,
            retry_min: Duration::from_millis(number(
                get,
                "WEBHOOK_RETRY_MIN_MS",
                5000,
                10..=3_600_000,
            )?),
            retry_max: Duration::from_secs(number(
                get,
                "WEBHOOK_RETRY_MAX_SECONDS",
                3600,
                1..=86_400,
            )?),
            disable_after: number(
                get,
                "WEBHOOK_DISABLE_AFTER",
                defaults.disable_after,
                1..=1000,
            )?,
        };
        let webhook = WebhookConfig {
            timeout: Duration::from_secs(number(get, "WEBHOOK_TIMEOUT_SECONDS", 10, 1..=60)?),
            policy: AddressPolicy {
                allow_private: flag(get, "WEBHOOK_ALLOW_PRIVATE")?,
            },
            breaker: BreakerConfig {
                failure_rate: 0.5,
                window: number(get, "WEBHOOK_BREAKER_WINDOW", 20, 2..=1000)?,
                open_for: Duration::from_millis(number(
                    get,
                    "WEBHOOK_BREAKER_OPEN_MS",
                    30_000,
                    100..=3_600_000,
                )?),
            },
        };
        let smtp = match get("SMTP_HOST").filter(|h| !h.trim().is_empty()) {
            None => None,
            Some(host) => {
                let tls = match get("SMTP_TLS") {
                    None => SmtpTls::StartTls,
                    Some(t) => SmtpTls::parse(&t).ok_or((
                        "SMTP_TLS",
                        format!("must be starttls, tls or none, got {t:?}"),
                    ))?,
                };
                let default_port = match tls {
                    SmtpTls::StartTls => 587,
                    SmtpTls::Implicit => 465,
                    SmtpTls::None => 25,
                };
                let from = get("SMTP_FROM")
                    .ok_or(("SMTP_FROM", "is required with SMTP_HOST".to_owned()))?;
                let config = SmtpConfig {
                    host: host.trim().to_owned(),
                    port: number(get, "SMTP_PORT", default_port, 1..=65_535)?,
                    tls,
                    username: get("SMTP_USERNAME"),
                    password: smtp_password,
                    from,
                    timeout: Duration::from_secs(number(get, "SMTP_TIMEOUT_SECONDS", 20, 1..=300)?),
                };
                if config.username.is_some() != config.password.is_some() {
                    return Err((
                        "SMTP_USERNAME",
                        "SMTP_USERNAME and SMTP_PASSWORD go together".to_owned(),
                    ));
                }
                crate::email::check_from(&config.from).map_err(|e| ("SMTP_FROM", e.to_string()))?;
                Some(config)
            }
        };
        // E-mail sends count only where e-mail is configured.
        let send_timeout = webhook
            .timeout
            .max(smtp.as_ref().map_or(Duration::ZERO, |s| s.timeout));
        if !dispatch.fits_lease(send_timeout) {
            return Err((
                "DELIVERY_LEASE_SECONDS",
                format!(
                    "{} s is too short for DELIVERY_BATCH {} at DELIVERY_CONCURRENCY {} with a {} s send timeout (WEBHOOK_TIMEOUT_SECONDS, SMTP_TIMEOUT_SECONDS): a slow batch would be sent twice",
                    dispatch.lease.as_secs(),
                    dispatch.batch,
                    dispatch.concurrency,
                    send_timeout.as_secs()
                ),
            ));
        }
        Ok(Self {
            dispatch,
            webhook,
            smtp,
        })
    }

    /// The settings for `--print-config` (the password only as present or not).
    pub fn describe(&self) -> Vec<String> {
        let d = &self.dispatch;
        let w = &self.webhook;
        let mut lines = vec![
            format!("webhook_allow_private = {}", w.policy.allow_private),
            format!("webhook_timeout_seconds = {}", w.timeout.as_secs()),
            format!("webhook_max_attempts = {}", d.max_attempts),
            format!("webhook_retry_min_ms = {}", d.retry_min.as_millis()),
            format!("webhook_retry_max_seconds = {}", d.retry_max.as_secs()),
            format!("webhook_disable_after = {}", d.disable_after),
            format!("webhook_breaker_window = {}", w.breaker.window),
            format!(
                "webhook_breaker_open_ms = {}",
                w.breaker.open_for.as_millis()
            ),
            format!("delivery_batch = {}", d.batch),
            format!("delivery_concurrency = {}", d.concurrency),
            format!("delivery_lease_seconds = {}", d.lease.as_secs()),
            format!("delivery_idle_poll_ms = {}", d.idle_poll.as_millis()),
        ];
        match &self.smtp {
            None => lines.push("smtp = \"off\"".to_owned()),
            Some(s) => {
                lines.push(format!("smtp_host = {:?}", s.host));
                lines.push(format!("smtp_port = {}", s.port));
                lines.push(format!(
                    "smtp_tls = {:?}",
                    format!("{:?}", s.tls).to_lowercase()
                ));
                lines.push(format!(
                    "smtp_username = {:?}",
                    s.username.as_deref().unwrap_or("")
                ));
                lines.push(format!(
                    "smtp_password = {:?}",
                    if s.password.is_some() {
                        "[redacted]"
                    } else {
                        ""
                    }
                ));
                lines.push(format!("smtp_from = {:?}", s.from));
            }
        }
        lines
    }

    /// The registration-time SSRF guard for the API's ports.
    pub fn guard(&self, resolver: Arc<dyn Resolve>) -> SsrfGuard {
        SsrfGuard::new(self.webhook.policy, resolver)
    }

    /// A dispatcher over `ports`, resolving with `resolver`
    /// ([`SystemResolver`] in the apps).
    ///
    /// # Errors
    /// The TLS stack or the mailer could not be set up.
    pub fn dispatcher(
        &self,
        ports: Ports,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Arc<Dispatcher>, String> {
        let sender = WebhookSender::new(self.webhook, resolver).map_err(|e| e.to_string())?;
        let mailer = self
            .smtp
            .as_ref()
            .map(Mailer::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Dispatcher::new(
            ports,
            self.dispatch,
            sender,
            mailer,
        )))
    }
}

/// The system resolver, shared.
pub fn system_resolver() -> Arc<dyn Resolve> {
    Arc::new(SystemResolver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<NotifySettings, SettingError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        NotifySettings::load(&|k| map.get(k).cloned(), None)
    }

    #[test]
    fn defaults_and_named_errors() {
        let s = load(&[]).unwrap();
        assert!(s.smtp.is_none());
        assert!(!s.webhook.policy.allow_private);
        assert_eq!(s.dispatch.max_attempts, 8);
        assert_eq!(
            load(&[("WEBHOOK_MAX_ATTEMPTS", "0")]).unwrap_err().0,
            "WEBHOOK_MAX_ATTEMPTS"
        );
        assert_eq!(
            load(&[("WEBHOOK_ALLOW_PRIVATE", "maybe")]).unwrap_err().0,
            "WEBHOOK_ALLOW_PRIVATE"
        );
        assert_eq!(
            load(&[("SMTP_HOST", "mail.test")]).unwrap_err().0,
            "SMTP_FROM"
        );
        assert_eq!(
            load(&[
                ("SMTP_HOST", "mail.test"),
                ("SMTP_FROM", "a@b.test"),
                ("SMTP_TLS", "ssl")
            ])
            .unwrap_err()
            .0,
            "SMTP_TLS"
        );
        assert_eq!(
            load(&[
                ("DELIVERY_LEASE_SECONDS", "10"),
                ("DELIVERY_CONCURRENCY", "1")
            ])
            .unwrap_err()
            .0,
            "DELIVERY_LEASE_SECONDS"
        );
        let s = load(&[
            ("SMTP_HOST", "mail.test"),
            ("SMTP_FROM", "Alarms <a@b.test>"),
            ("SMTP_TLS", "tls"),
        ])
        .unwrap();
        assert_eq!(s.smtp.unwrap().port, 465);
    }
}
