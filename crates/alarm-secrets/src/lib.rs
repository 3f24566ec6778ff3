//! Secret providers behind the domain's [`SecretProvider`] port, and the `{vault:name}` references any setting may hold.
//!
//! Built here: [`EnvSecrets`] (the process environment), [`FileSecrets`]
//! (a directory with one secret per file, as Docker and Kubernetes mount
//! them), [`VaultSecrets`] (HashiCorp Vault KV v2), [`OciSecrets`] (OCI
//! Vault secret bundles) and [`Chain`] (providers tried in a configured
//! order). The networked providers do their I/O on one thread of their own
//! (`runtime`), so a setting can be resolved before an app's runtime runs.
//!
//! Values are [`SecretString`]s from the moment they are read; no error,
//! `Debug` or log line of this crate carries a value.

use std::sync::Arc;

use alarm_domain::ports::{SecretError, SecretProvider};
use async_trait::async_trait;
use secrecy::SecretString;

mod env;
mod file;
pub mod oci;
mod reference;
mod refresh;
mod runtime;
mod seal;
mod vault;

pub use env::EnvSecrets;
pub use file::FileSecrets;
pub use oci::{OciAuth, OciConfig, OciSecrets};
pub use reference::{ReferenceError, expand, references};
pub use refresh::{Refresher, Round, Stale};
pub use seal::{AeadSealer, DataKeyError, MAX_DATA_KEYS};
pub use vault::{VaultAuth, VaultConfig, VaultError, VaultSecrets};

/// Installs the process's rustls provider (`ring`, the workspace's one);
/// a second call, or an app that installed one first, is fine.
pub(crate) fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The longest secret name accepted (a name is part of a file path or an
/// environment variable's name).
pub const MAX_NAME_LEN: usize = 128;

/// Whether `name` can name a secret: 1 to [`MAX_NAME_LEN`] ASCII letters,
/// digits, `_`, `-` or `.`, not starting with `.` (no hidden file, no
/// path: `/` and `..` cannot occur).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The providers that can be configured (`SECRETS_PROVIDERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// The process environment.
    Env,
    /// A directory of secret files.
    File,
    /// HashiCorp Vault's KV v2 engine.
    Vault,
    /// OCI Vault's secret bundles.
    Oci,
}

impl ProviderKind {
    /// Reads one name of a `SECRETS_PROVIDERS` list.
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim() {
            "env" => Ok(Self::Env),
            "file" => Ok(Self::File),
            "vault" => Ok(Self::Vault),
            "oci" => Ok(Self::Oci),
            other => Err(format!(
                "unknown secret provider `{other}` (known: env, file, vault, oci)"
            )),
        }
    }

    /// Whether a name read by this provider may carry a version
    /// (`name@3`).
    pub fn versioned(self) -> bool {
        matches!(self, Self::Vault | Self::Oci)
    }

    /// The name written in settings and references.
    pub fn name(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::File => "file",
            Self::Vault => "vault",
            Self::Oci => "oci",
        }
    }
}

/// What the configured providers are made from.
#[derive(Debug, Default)]
pub struct ProviderSettings {
    /// The file provider's directory.
    pub dir: std::path::PathBuf,
    /// The env provider's prefix.
    pub env_prefix: String,
    /// The Vault provider's settings, if any are given.
    pub vault: Option<VaultConfig>,
    /// The OCI Vault provider's settings, if any are given.
    pub oci: Option<OciConfig>,
}

/// A provider that failed (not a missing secret): which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("secret provider `{provider}` failed: {source}")]
pub struct ProviderFailed {
    /// The provider's name.
    pub provider: &'static str,
    /// The cause (never a value).
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Providers tried in order: the first that has the secret answers; one
/// that fails (rather than lacking it) stops the search, so a provider
/// that is down never lets a later one answer with a different value.
///
/// Values read are kept (`provider:name` or `name` → value) until
/// [`Chain::forget`], so a secret several settings name is fetched once;
/// the [`Refresher`] empties the cache before each round, which makes its
/// interval the values' time to live.
#[derive(Clone)]
pub struct Chain {
    providers: Vec<(&'static str, Arc<dyn SecretProvider>)>,
    cache: Arc<std::sync::Mutex<std::collections::HashMap<String, SecretString>>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.providers.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Chain {
    /// The providers, in the order they are asked, each with its name.
    pub fn new(providers: Vec<(&'static str, Arc<dyn SecretProvider>)>) -> Self {
        Self {
            providers,
            cache: Arc::default(),
        }
    }

    /// The cache (a panic elsewhere leaves whole entries behind).
    fn cache(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, SecretString>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The values read and remembered (for a log scrubber to know them).
    pub fn values(&self) -> Vec<SecretString> {
        self.cache().values().cloned().collect()
    }

    /// Drops every remembered value: the next reads ask the providers.
    pub fn forget(&self) {
        self.cache().clear();
    }

    fn cached(&self, key: &str) -> Option<SecretString> {
        self.cache().get(key).cloned()
    }

    fn remember(&self, key: String, value: &SecretString) {
        self.cache().insert(key, value.clone());
    }

    /// The chain a `SECRETS_PROVIDERS` list names (e.g. `env,file`), each
    /// provider made from `settings`; the networked ones connect (and log
    /// in) here, so one that is down fails the start, named.
    ///
    /// # Errors
    /// An unknown provider, one listed twice, one whose settings are
    /// missing, or one that cannot connect.
    pub async fn configured(list: &str, settings: ProviderSettings) -> Result<Self, String> {
        let ProviderSettings {
            dir,
            env_prefix,
            mut vault,
            mut oci,
        } = settings;
        let mut providers: Vec<(&'static str, Arc<dyn SecretProvider>)> = Vec::new();
        for name in list.split(',').filter(|n| !n.trim().is_empty()) {
            let kind = ProviderKind::parse(name)?;
            if providers.iter().any(|(n, _)| *n == kind.name()) {
                return Err(format!("`{}` is listed twice", kind.name()));
            }
            let provider: Arc<dyn SecretProvider> = match kind {
                ProviderKind::Env => Arc::new(EnvSecrets::from_process(&env_prefix)),
                ProviderKind::File => Arc::new(FileSecrets::new(&dir)),
                ProviderKind::Vault => {
                    let config = vault.take().ok_or(
                        "the `vault` provider needs VAULT_ADDR and VAULT_TOKEN or VAULT_ROLE_ID + VAULT_SECRET_ID",
                    )?;
                    Arc::new(
                        VaultSecrets::connect(config)
                            .await
                            .map_err(|e| format!("secret provider `vault` cannot start: {e}"))?,
                    )
                }
                ProviderKind::Oci => {
                    let config = oci.take().ok_or(
                        "the `oci` provider needs OCI_REGION (or OCI_SECRETS_ENDPOINT) and its auth settings (OCI_AUTH)",
                    )?;
                    Arc::new(
                        OciSecrets::connect(config)
                            .await
                            .map_err(|e| format!("secret provider `oci` cannot start: {e}"))?,
                    )
                }
            };
            providers.push((kind.name(), provider));
        }
        Ok(Self::new(providers))
    }

    /// The names of the providers, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.providers.iter().map(|(name, _)| *name).collect()
    }

    /// The secret from the provider called `provider` only.
    ///
    /// # Errors
    /// [`SecretError::NotFound`] when that provider is not in the chain or
    /// lacks the secret; [`SecretError::Unexpected`] naming the provider.
    pub async fn get_from(&self, provider: &str, name: &str) -> Result<SecretString, SecretError> {
        let Some((label, p)) = self.providers.iter().find(|(n, _)| *n == provider) else {
            return Err(SecretError::NotFound(name.to_owned()));
        };
        let key = format!("{label}:{name}");
        if let Some(v) = self.cached(&key) {
            return Ok(v);
        }
        let value = p.get(name).await.map_err(|e| named(label, e))?;
        self.remember(key, &value);
        Ok(value)
    }
}

/// Names the provider in a failure; a missing secret stays missing.
fn named(provider: &'static str, e: SecretError) -> SecretError {
    match e {
        SecretError::NotFound(n) => SecretError::NotFound(n),
        SecretError::Unexpected(source) => {
            SecretError::Unexpected(Box::new(ProviderFailed { provider, source }))
        }
    }
}

#[async_trait]
impl SecretProvider for Chain {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        if let Some(v) = self.cached(name) {
            return Ok(v);
        }
        for (label, provider) in &self.providers {
            match provider.get(name).await {
                Err(SecretError::NotFound(_)) => {}
                Ok(value) => {
                    self.remember(name.to_owned(), &value);
                    return Ok(value);
                }
                Err(e) => return Err(named(label, e)),
            }
        }
        Err(SecretError::NotFound(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_be_paths() {
        for good in ["db-password", "JWT_SECRET_KEY", "smtp.password", "a"] {
            assert!(valid_name(good), "{good}");
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            ".hidden",
            "a b",
            "é",
            &long,
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn providers_are_known_by_name() {
        assert_eq!(ProviderKind::parse(" env"), Ok(ProviderKind::Env));
        assert_eq!(ProviderKind::parse("file"), Ok(ProviderKind::File));
        assert_eq!(ProviderKind::parse("vault"), Ok(ProviderKind::Vault));
        assert_eq!(ProviderKind::parse("oci"), Ok(ProviderKind::Oci));
        assert!(ProviderKind::parse("aws").unwrap_err().contains("unknown"));
    }

    #[tokio::test]
    async fn a_networked_provider_without_settings_is_named() {
        for (list, named) in [("env,vault", "VAULT_ADDR"), ("oci", "OCI_REGION")] {
            let err = Chain::configured(list, ProviderSettings::default())
                .await
                .unwrap_err();
            assert!(err.contains(named), "{err}");
        }
    }
}
