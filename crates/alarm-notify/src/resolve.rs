//! Name resolution behind the SSRF guard: the system resolver, a fixed table for tests, the registration-time guard and the delivery-time resolver reqwest connects through.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::ssrf::{AddressPolicy, Refused};

/// A boxed lookup.
pub type Lookup = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Resolves a host name to addresses.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`.
    fn lookup(&self, host: &str) -> Lookup;
}

/// The operating system's resolver (`getaddrinfo` on the blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// A table of names, changeable at run time: lets tests move a name from a
/// public to a private address between registration and delivery (the DNS
/// rebinding case) without touching the machine's DNS.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    table: Arc<RwLock<HashMap<String, Vec<IpAddr>>>>,
}

impl StaticResolver {
    /// An empty table (every name is unknown).
    pub fn new() -> Self {
        Self::default()
    }
    /// Makes `host` resolve to `addresses`.
    pub fn set(&self, host: &str, addresses: Vec<IpAddr>) {
        self.table
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(host.to_ascii_lowercase(), addresses);
    }
}

impl Resolve for StaticResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let found = self
            .table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&host.to_ascii_lowercase())
            .cloned();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown host"))
        })
    }
}

/// How long registration waits for DNS before accepting the name unchecked.
const REGISTRATION_LOOKUP: Duration = Duration::from_secs(3);

/// The registration half of the SSRF guard (the domain's
/// [`alarm_domain::ports::TargetGuard`]): an IP literal or `localhost` is
/// judged at once, a name on every address it resolves to now; a name that
/// does not resolve (yet) is accepted, because the sender checks the
/// address it actually connects to on every delivery.
#[derive(Clone)]
pub struct SsrfGuard {
    policy: AddressPolicy,
    resolver: Arc<dyn Resolve>,
}

impl SsrfGuard {
    /// A guard applying `policy` to what `resolver` answers.
    pub fn new(policy: AddressPolicy, resolver: Arc<dyn Resolve>) -> Self {
        Self { policy, resolver }
    }
}

#[async_trait]
impl alarm_domain::ports::TargetGuard for SsrfGuard {
    async fn check(&self, url: &url::Url) -> Result<(), String> {
        self.policy.check_url(url).map_err(|r| r.to_string())?;
        let Some(url::Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        match tokio::time::timeout(REGISTRATION_LOOKUP, self.resolver.lookup(name)).await {
            Ok(Ok(addresses)) => {
                for address in addresses {
                    // Which address, or even which kind, a name resolves
                    // to inside the operator's network is not the caller's
                    // to learn.
                    self.policy.check(address).map_err(|_| {
                        format!("{name} resolves to an address webhooks may not reach")
                    })?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The delivery half: reqwest resolves every connection through this, so
/// the address connected to is the address checked (no window for DNS
/// rebinding). Refused addresses are dropped; when none is left the
/// connection fails with [`Refused`] in its error chain.
pub(crate) struct GuardedResolver {
    pub(crate) policy: AddressPolicy,
    pub(crate) inner: Arc<dyn Resolve>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let lookup = self.inner.lookup(name.as_str());
        Box::pin(async move {
            let mut refused: Option<Refused> = None;
            let mut allowed = Vec::new();
            for address in lookup.await? {
                match policy.check(address) {
                    Ok(()) => allowed.push(SocketAddr::new(address, 0)),
                    Err(r) => refused = Some(r),
                }
            }
            if allowed.is_empty() {
                return Err(match refused {
                    Some(r) => Box::new(r) as Box<dyn std::error::Error + Send + Sync>,
                    None => Box::new(io::Error::new(io::ErrorKind::NotFound, "no addresses")),
                });
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alarm_domain::ports::TargetGuard;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[tokio::test]
    async fn registration_judges_literals_and_resolved_names_and_accepts_unknown_names() {
        let table = StaticResolver::new();
        table.set("public.test", vec!["203.0.114.9".parse().unwrap()]);
        table.set("inward.test", vec!["10.1.2.3".parse().unwrap()]);
        let guard = SsrfGuard::new(AddressPolicy::default(), Arc::new(table));
        assert!(guard.check(&url("http://public.test/h")).await.is_ok());
        assert!(guard.check(&url("http://not-yet.test/h")).await.is_ok());
        let why = guard.check(&url("http://inward.test/h")).await.unwrap_err();
        assert!(
            why.contains("inward.test resolves to an address webhooks may not reach"),
            "{why}"
        );
        assert!(
            !why.contains("10.1.2.3"),
            "the resolved address is not revealed: {why}"
        );
        assert!(guard.check(&url("http://127.0.0.1:9/h")).await.is_err());
        assert!(guard.check(&url("http://[::1]/h")).await.is_err());
        assert!(guard.check(&url("http://localhost/h")).await.is_err());
        let open = SsrfGuard::new(
            AddressPolicy {
                allow_private: true,
                ..AddressPolicy::default()
            },
            Arc::new(StaticResolver::new()),
        );
        assert!(open.check(&url("http://127.0.0.1:9000/h")).await.is_ok());
    }
}
