//! Smart Alarm's notification channels: the outbox [`dispatch`]er that sends what the engine committed, signed [`webhook`]s (Standard Webhooks [`signature`]s, the [`ssrf`] address policy applied through [`resolve`], retries, a breaker per host) and [`email`] over SMTP.
//!
//! Nothing here decides *what* to send: the engine's fire commits the
//! outbox rows in its own transaction (see `alarm_domain::ports::Outbox`).
//! The dispatcher only claims due rows under a lease, sends them, and
//! records each result; a killed dispatcher's rows go out again after the
//! lease, with the same `webhook-id`, so receivers can drop the duplicate.

mod breaker;
pub mod dispatch;
pub mod email;
pub mod resolve;
pub mod settings;
pub mod signature;
pub mod ssrf;
pub mod webhook;

pub use dispatch::{DispatchConfig, DispatchPorts, DispatchStats, Dispatcher, STAGES};
pub use email::{Mailer, SmtpConfig, SmtpTls};
pub use resolve::{Resolve, SsrfGuard, StaticResolver, SystemResolver};
pub use settings::NotifySettings;
pub use ssrf::AddressPolicy;
pub use webhook::{BreakerConfig, WebhookConfig, WebhookSender};
