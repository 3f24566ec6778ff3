//! The delivery worker's validated configuration and the wiring of a dispatcher and a target guard from it.

use std::sync::Arc;

use alarm_domain::services::Ports;

use crate::dispatch::{DispatchConfig, Dispatcher};
use crate::email::{Mailer, SmtpConfig};
use crate::resolve::{Resolve, SsrfGuard, SystemResolver};
use crate::webhook::{WebhookConfig, WebhookSender};

/// What the delivery worker and the API's SSRF guard run with. The apps
/// declare the settings behind it once (`alarm-host`'s `NotifyArgs`) and
/// build this from them.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The dispatcher.
    pub dispatch: DispatchConfig,
    /// The webhook sender.
    pub webhook: WebhookConfig,
    /// SMTP, when configured.
    pub smtp: Option<SmtpConfig>,
}

impl NotifySettings {
    /// The registration-time SSRF guard for the API's ports.
    pub fn guard(&self, resolver: Arc<dyn Resolve>) -> SsrfGuard {
        SsrfGuard::new(self.webhook.policy.clone(), resolver)
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
        let sender =
            WebhookSender::new(self.webhook.clone(), resolver).map_err(|e| e.to_string())?;
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
