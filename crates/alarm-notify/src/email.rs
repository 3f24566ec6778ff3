//! E-mail over SMTP with lettre (rustls; STARTTLS, implicit TLS, or plain for a local relay): the alarm message in plain text and HTML, and the webhook-disabled notice.

use std::sync::Arc;
use std::time::Duration;

use alarm_domain::jiff::Timestamp;
use alarm_domain::jiff::civil::DateTime;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP, upgraded with STARTTLS (refused if the server cannot).
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Implicit,
    /// No TLS: only for a relay on the same host or network.
    None,
}

impl SmtpTls {
    /// `starttls`, `tls` or `none`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "starttls" => Some(Self::StartTls),
            "tls" | "implicit" => Some(Self::Implicit),
            "none" | "plain" => Some(Self::None),
            _ => None,
        }
    }
}

/// The SMTP settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Server name (also the name its certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Login, when the server wants one.
    pub username: Option<String>,
    /// Password (never logged; `SecretString` from the moment it is read).
    pub password: Option<SecretString>,
    /// The sender, e.g. `Smart Alarm <alarms@example.com>`.
    pub from: String,
    /// Per message.
    pub timeout: Duration,
}

/// A bad SMTP setting.
#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    /// `from` is not a mailbox.
    #[error("SMTP_FROM is not an e-mail address: {0}")]
    From(String),
    /// TLS could not be set up for `host`.
    #[error("TLS setup for the SMTP server failed: {0}")]
    Tls(String),
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFailure {
    /// Worth retrying (connection trouble, 4xx reply).
    pub transient: bool,
    /// Why (never the password).
    pub error: String,
}

/// A composed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Subject line.
    pub subject: String,
    /// text/plain part.
    pub plain: String,
    /// text/html part.
    pub html: String,
}

/// Sends mail. Clones share one connection pool and one password.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<MailerInner>,
}

struct MailerInner {
    /// Replaced whole when the password changes ([`Mailer::set_password`]);
    /// messages under way finish on the transport they started with.
    transport: std::sync::RwLock<AsyncSmtpTransport<Tokio1Executor>>,
    config: SmtpConfig,
    from: Mailbox,
    deadline: Duration,
}

/// The SMTP transport for `config`, logging in with `password` when the
/// server wants a login.
fn transport(
    config: &SmtpConfig,
    password: Option<&SecretString>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailConfigError> {
    let tls = match config.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls | SmtpTls::Implicit => {
            let parameters = TlsParameters::new(config.host.clone())
                .map_err(|e| MailConfigError::Tls(e.to_string()))?;
            if config.tls == SmtpTls::StartTls {
                Tls::Required(parameters)
            } else {
                Tls::Wrapper(parameters)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
        .port(config.port)
        .tls(tls)
        .timeout(Some(config.timeout));
    if let (Some(user), Some(password)) = (&config.username, password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_owned(),
        ));
    }
    Ok(builder.build())
}

/// Checks a sender mailbox (`Name <addr>` or `addr`) without building a
/// transport (which needs a running runtime, settings are read before one).
///
/// # Errors
/// [`MailConfigError::From`].
pub fn check_from(from: &str) -> Result<(), MailConfigError> {
    from.parse::<Mailbox>()
        .map(|_| ())
        .map_err(|e| MailConfigError::From(e.to_string()))
}

impl Mailer {
    /// A mailer for `config` (no connection is made yet; call it inside
    /// the tokio runtime: the connection pool starts a task).
    ///
    /// # Errors
    /// [`MailConfigError`].
    pub fn new(config: &SmtpConfig) -> Result<Self, MailConfigError> {
        crate::webhook::install_tls_provider();
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailConfigError::From(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(MailerInner {
                transport: std::sync::RwLock::new(transport(config, config.password.as_ref())?),
                config: config.clone(),
                from,
                deadline: config.timeout,
            }),
        })
    }

    /// Logs in with `password` from now on (a password rotated in the
    /// secret provider): a new connection pool replaces the old one, so
    /// no connection logged in with the old password is reused.
    ///
    /// # Errors
    /// [`MailConfigError`] (the transport in use stays).
    pub fn set_password(&self, password: &SecretString) -> Result<(), MailConfigError> {
        let next = transport(&self.inner.config, Some(password))?;
        *self
            .inner
            .transport
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(())
    }

    /// Takes each password `changes` gives, until this mailer (and every
    /// clone) is dropped. Call inside the runtime.
    pub fn follow(&self, mut changes: tokio::sync::watch::Receiver<SecretString>) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let password = changes.borrow_and_update().clone();
                match (Mailer { inner }).set_password(&password) {
                    Ok(()) => {
                        tracing::info!("SMTP_PASSWORD changed: new SMTP connections log in with it")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "SMTP_PASSWORD changed but the transport could not be rebuilt; the old one stays")
                    }
                }
            }
        });
    }

    /// The most one message may take, whole conversation included.
    pub fn deadline(&self) -> Duration {
        self.inner.deadline
    }

    /// Sends `mail` to `to`.
    ///
    /// # Errors
    /// [`MailFailure`]: transient for connection trouble and 4xx replies,
    /// final for 5xx replies and a bad recipient.
    pub async fn send(&self, to: &str, mail: &Mail) -> Result<(), MailFailure> {
        let permanent = |error: String| MailFailure {
            transient: false,
            error,
        };
        let to: Mailbox = to
            .parse()
            .map_err(|e: lettre::address::AddressError| permanent(format!("bad recipient: {e}")))?;
        let message = Message::builder()
            .from(self.inner.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.plain.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| permanent(format!("could not build the message: {e}")))?;
        let transport = self
            .inner
            .transport
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailFailure {
                transient: !e.is_permanent(),
                error: format!("SMTP: {e}"),
            })
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What an alarm message says.
#[derive(Debug, Clone)]
pub struct AlarmMail<'a> {
    /// The alarm's name (`None` when it was deleted since).
    pub name: Option<&'a str>,
    /// Its time zone.
    pub time_zone: Option<&'a str>,
    /// The occurrence's local wall time.
    pub local: DateTime,
    /// The occurrence's instant.
    pub at: Timestamp,
    /// `alarm.triggered` or `alarm.escalated`.
    pub event: &'a str,
    /// Sent because the alarm's webhooks failed.
    pub fallback: bool,
}

/// The alarm message: names the alarm and its local time.
pub fn alarm_mail(m: &AlarmMail<'_>) -> Mail {
    let name = m.name.unwrap_or("(deleted alarm)");
    let local = m.local.strftime("%A %-d %B %Y, %H:%M").to_string();
    let zone = m.time_zone.unwrap_or("UTC");
    let verb = if m.event == "alarm.escalated" {
        "is still ringing"
    } else {
        "is ringing"
    };
    let subject = format!("⏰ {name}: {}", m.local.strftime("%H:%M"));
    let why = if m.fallback {
        "\n\nYou are getting this e-mail because every other channel of this alarm failed."
    } else {
        ""
    };
    let plain = format!(
        "Your alarm \"{name}\" {verb}.\n\nLocal time: {local} ({zone})\nUTC: {}{why}\n",
        m.at
    );
    let html_why = if m.fallback {
        "<p><small>You are getting this e-mail because every other channel of this alarm failed.</small></p>"
    } else {
        ""
    };
    let html = format!(
        "<!doctype html><html><body><p>Your alarm <strong>{}</strong> {verb}.</p>\
         <p>Local time: <strong>{}</strong> ({})<br>UTC: {}</p>{html_why}</body></html>",
        escape(name),
        escape(&local),
        escape(zone),
        m.at
    );
    Mail {
        subject,
        plain,
        html,
    }
}

/// The notice sent when a registration is disabled after failing.
pub fn disabled_mail(url: &str, failures: u32) -> Mail {
    let plain = format!(
        "Your webhook {url} failed {failures} deliveries in a row and has been disabled.\n\n\
         Fix the receiver, then enable it again (PUT /api/v1/webhooks/{{id}} with \"active\": true); \
         failed deliveries can be retried from its delivery list.\n"
    );
    let html = format!(
        "<!doctype html><html><body><p>Your webhook <code>{}</code> failed {failures} deliveries in a row \
         and has been <strong>disabled</strong>.</p><p>Fix the receiver, then enable it again; failed \
         deliveries can be retried from its delivery list.</p></body></html>",
        escape(url)
    );
    Mail {
        subject: "Smart Alarm: a webhook was disabled".to_owned(),
        plain,
        html,
    }
}

/// Where the pages that take an e-mailed token live; the token is added as
/// the fragment `#token=…`, for the page's script to read. `None`: the
/// message gives the token and the API call to make.
#[derive(Debug, Clone, Default)]
pub struct AccountLinks {
    /// The password-reset page (`PASSWORD_RESET_URL`).
    pub reset: Option<String>,
    /// The address-verification page (`EMAIL_VERIFICATION_URL`).
    pub verify: Option<String>,
}

/// Account e-mails (password reset, address verification) through a
/// [`Mailer`]: the domain's [`alarm_domain::ports::AccountMail`]. The token
/// goes into the message and nowhere else (not the log, not an error).
pub struct AccountMails {
    mailer: Mailer,
    links: AccountLinks,
}

impl AccountMails {
    /// Account mails through `mailer`, linking to `links`' pages.
    pub fn new(mailer: Mailer, links: AccountLinks) -> Self {
        Self { mailer, links }
    }
}

#[async_trait::async_trait]
impl alarm_domain::ports::AccountMail for AccountMails {
    async fn send_token(
        &self,
        to: &alarm_domain::model::User,
        purpose: alarm_domain::ports::TokenPurpose,
        token: &secrecy::SecretString,
        expires_at: jiff::Timestamp,
    ) -> Result<(), String> {
        let page = match purpose {
            alarm_domain::ports::TokenPurpose::PasswordReset => self.links.reset.as_deref(),
            alarm_domain::ports::TokenPurpose::EmailVerification => self.links.verify.as_deref(),
        };
        let mail = token_mail(purpose, page, token, expires_at);
        self.mailer
            .send(to.email().as_str(), &mail)
            .await
            .map_err(|f| f.error)
    }
}

/// The message carrying a `purpose` token: a link to `page` with the token,
/// or the token and the call to make when no page is configured.
pub fn token_mail(
    purpose: alarm_domain::ports::TokenPurpose,
    page: Option<&str>,
    token: &secrecy::SecretString,
    expires_at: jiff::Timestamp,
) -> Mail {
    use secrecy::ExposeSecret as _;
    let token = token.expose_secret();
    let until = expires_at.strftime("%Y-%m-%d %H:%M UTC");
    // (subject, why, what the link does and for how long, the API call, the closing line)
    let (subject, why, what, call, after) = match purpose {
        alarm_domain::ports::TokenPurpose::PasswordReset => (
            "Smart Alarm: reset your password",
            "Someone (we hope you) asked to reset the password of your Smart Alarm account.",
            "To choose a new one, use this within 30 minutes",
            r#"POST /api/v1/auth/password-reset/confirm with {"token": "TOKEN", "new_password": "..."}"#,
            "Every session of the account ends when the password changes. If you did not ask, \
             ignore this message: your password stays as it is.",
        ),
        alarm_domain::ports::TokenPurpose::EmailVerification => (
            "Smart Alarm: confirm your e-mail address",
            "This address was given for a Smart Alarm account.",
            "To confirm that it is yours, use this within 24 hours",
            r#"POST /api/v1/auth/verify with {"token": "TOKEN"}"#,
            "Until the address is confirmed, no alarm e-mail is sent to it. If you did not sign \
             up, ignore this message.",
        ),
    };
    let how = match page {
        // In the fragment, which browsers never send: the token stays out
        // of the page's server logs and of `Referer` headers.
        Some(url) => format!("{url}#token={token}"),
        None => call.replace("TOKEN", token),
    };
    let plain = format!("{why}\n\n{what} (until {until}); it works once:\n\n{how}\n\n{after}\n");
    let html = format!(
        "<!doctype html><html><body><p>{}</p><p>{} (until {until}); it works once:</p>\
         <p><code>{}</code></p><p>{}</p></body></html>",
        escape(why),
        escape(what),
        escape(&how),
        escape(after)
    );
    Mail {
        subject: subject.to_owned(),
        plain,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_mails_link_the_purposes_page_with_the_token_in_the_fragment() {
        use alarm_domain::ports::TokenPurpose;
        let token = secrecy::SecretString::from("tok_EN-1".to_owned());
        let until: jiff::Timestamp = "2026-12-03T06:30:00Z".parse().unwrap();
        let verify = token_mail(
            TokenPurpose::EmailVerification,
            Some("https://app.example.com/verify"),
            &token,
            until,
        );
        assert_eq!(verify.subject, "Smart Alarm: confirm your e-mail address");
        assert!(
            verify
                .plain
                .contains("https://app.example.com/verify#token=tok_EN-1"),
            "{}",
            verify.plain
        );
        assert!(verify.plain.contains("until 2026-12-03 06:30 UTC"));
        let reset = token_mail(TokenPurpose::PasswordReset, None, &token, until);
        assert_eq!(reset.subject, "Smart Alarm: reset your password");
        assert!(
            reset
                .plain
                .contains(r#"POST /api/v1/auth/password-reset/confirm with {"token": "tok_EN-1""#),
            "{}",
            reset.plain
        );
        assert!(
            reset
                .html
                .contains("{&quot;token&quot;: &quot;tok_EN-1&quot;"),
            "{}",
            reset.html
        );
    }

    #[test]
    fn alarm_mail_names_the_alarm_and_its_local_time_and_escapes_html() {
        let mail = alarm_mail(&AlarmMail {
            name: Some("Wake <up> & go"),
            time_zone: Some("Europe/Paris"),
            local: "2026-12-03T07:30:00".parse().unwrap(),
            at: "2026-12-03T06:30:00Z".parse().unwrap(),
            event: "alarm.triggered",
            fallback: true,
        });
        assert_eq!(mail.subject, "⏰ Wake <up> & go: 07:30");
        assert!(mail.plain.contains("\"Wake <up> & go\" is ringing"));
        assert!(
            mail.plain
                .contains("Thursday 3 December 2026, 07:30 (Europe/Paris)")
        );
        assert!(mail.plain.contains("every other channel"));
        assert!(
            mail.html
                .contains("<strong>Wake &lt;up&gt; &amp; go</strong>")
        );
        assert!(!mail.html.contains("<up>"));
    }

    #[test]
    fn tls_modes_parse() {
        assert_eq!(SmtpTls::parse("STARTTLS"), Some(SmtpTls::StartTls));
        assert_eq!(SmtpTls::parse("tls"), Some(SmtpTls::Implicit));
        assert_eq!(SmtpTls::parse("none"), Some(SmtpTls::None));
        assert_eq!(SmtpTls::parse("ssl3"), None);
    }
}
