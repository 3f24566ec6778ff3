//! The HashiCorp Vault provider: KV v2 reads with the `vaultrs` client, token or AppRole auth, the token renewed before it expires.
//!
//! The secret `db-password` is the field `VAULT_FIELD` (default `value`)
//! of the KV v2 secret `VAULT_PATH_PREFIX` + `db-password` under the mount
//! `VAULT_MOUNT` (default `secret`); `db-password@3` reads its version 3.
//!
//! What was tested, and how: only against a local HTTP fake
//! (`tests/support/vault.rs`) that speaks the KV v2 read, token
//! lookup-self and renew-self, and AppRole login endpoints as Vault's API
//! documentation describes them, with the real `vaultrs` client: the token
//! header and the namespace header checked, versioned reads, 403, 404, 503
//! and sealed answers, renewal, an AppRole login again when a renewal is
//! refused, and TLS with a self-signed CA (refused without `VAULT_CACERT`,
//! trusted with it). No test ran against a real Vault server (none can be
//! installed on the machines this was built on): Vault Enterprise
//! namespaces beyond the header, real policies and response wrapping are
//! untested.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use alarm_domain::ports::{SecretError, SecretProvider};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::RwLock;
use vaultrs::api::kv2::requests::ReadSecretRequest;
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::runtime;

/// How the provider logs in.
pub enum VaultAuth {
    /// A token given to the process (`VAULT_TOKEN`).
    Token(SecretString),
    /// AppRole: the role id and the secret id, at the auth mount
    /// (`VAULT_APPROLE_MOUNT`, default `approle`).
    AppRole {
        /// The auth method's mount.
        mount: String,
        /// The role id (not secret on its own, but kept out of logs).
        role_id: SecretString,
        /// The secret id.
        secret_id: SecretString,
    },
}

impl std::fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token([redacted])"),
            Self::AppRole { mount, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .finish_non_exhaustive(),
        }
    }
}

/// Where the provider reads, and how it logs in.
#[derive(Debug)]
pub struct VaultConfig {
    /// The server, e.g. `https://vault.internal:8200`.
    pub address: String,
    /// The KV v2 engine's mount.
    pub mount: String,
    /// Put before every secret's name to make its path (e.g.
    /// `smart-alarm/prod/`).
    pub path_prefix: String,
    /// The field of the KV secret that holds the value.
    pub field: String,
    /// The Vault Enterprise namespace, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// A PEM bundle of the CAs the server's certificate is checked
    /// against (besides the system's).
    pub ca_cert: Option<PathBuf>,
    /// How to log in.
    pub auth: VaultAuth,
    /// Each request's time limit.
    pub timeout: Duration,
}

/// Why the provider could not start or read.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// Vault answered with an error status.
    #[error("Vault answered {code}{}: {what}", if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) })]
    Status {
        /// The HTTP status.
        code: u16,
        /// What it means here.
        what: &'static str,
        /// Vault's own messages (they name paths and policies, never a
        /// value).
        errors: Vec<String>,
    },
    /// Vault could not be reached, or its answer not read.
    #[error("Vault could not be reached or read: {0}")]
    Transport(String),
    /// The secret exists but has no such field, or it is not text.
    #[error("the KV secret `{path}` has no text field `{field}`")]
    NoField {
        /// The KV path.
        path: String,
        /// The field looked for.
        field: String,
    },
}

fn status_meaning(code: u16) -> &'static str {
    match code {
        400 => "the request was refused",
        403 => "permission denied (the token or its policy does not allow this)",
        404 => "not found",
        429 => "rate limited",
        500 => "Vault failed",
        503 => "Vault is sealed, in standby or down for maintenance",
        _ => "an unexpected answer",
    }
}

/// A `vaultrs` error as this crate says it: the status and Vault's own
/// messages, or the transport's cause; never a request's body.
fn vault_error(e: ClientError) -> VaultError {
    match e {
        ClientError::APIError { code, errors } => VaultError::Status {
            code,
            what: status_meaning(code),
            errors,
        },
        other => VaultError::Transport(alarm_domain::error::chain(&other)),
    }
}

struct Inner {
    client: RwLock<VaultClient>,
    mount: String,
    path_prefix: String,
    field: String,
    auth: VaultAuth,
}

/// Secrets from HashiCorp Vault's KV v2 engine.
#[derive(Clone)]
pub struct VaultSecrets {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for VaultSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSecrets")
            .field("mount", &self.inner.mount)
            .field("path_prefix", &self.inner.path_prefix)
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

/// How long a token lives and whether it can be renewed.
#[derive(Debug, Clone, Copy)]
struct Lease {
    ttl: Duration,
    renewable: bool,
}

impl VaultSecrets {
    /// Logs in (or checks the given token) and starts renewing the token
    /// before it expires.
    ///
    /// # Errors
    /// A bad setting, Vault unreachable, or the login refused.
    pub async fn connect(config: VaultConfig) -> Result<Self, VaultError> {
        runtime::run(Self::connect_here(config))
            .await
            .unwrap_or_else(|| Err(VaultError::Transport("the Vault client panicked".into())))
    }

    async fn connect_here(config: VaultConfig) -> Result<Self, VaultError> {
        crate::install_tls_provider();
        if !(config.address.starts_with("http://") || config.address.starts_with("https://"))
            || reqwest::Url::parse(&config.address).is_err()
        {
            return Err(VaultError::Config(
                "VAULT_ADDR is not an http:// or https:// URL".into(),
            ));
        }
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&config.address)
            .verify(true)
            .timeout(Some(config.timeout))
            .ca_certs(
                config
                    .ca_cert
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
            );
        if let Some(ns) = &config.namespace {
            settings.set_namespace(ns.clone());
        }
        if let VaultAuth::Token(token) = &config.auth {
            settings.token(token.expose_secret());
        } else {
            // No token from the environment (the builder's default reads
            // VAULT_TOKEN): AppRole logs in below.
            settings.token("");
        }
        let settings = settings
            .build()
            .map_err(|e| VaultError::Config(format!("Vault client settings: {e}")))?;
        let client = VaultClient::new(settings).map_err(vault_error)?;
        let this = Self {
            inner: Arc::new(Inner {
                client: RwLock::new(client),
                mount: config.mount,
                path_prefix: config.path_prefix,
                field: config.field,
                auth: config.auth,
            }),
        };
        let lease = this.inner.log_in().await?;
        runtime::spawn(renew(Arc::downgrade(&this.inner), lease));
        Ok(this)
    }
}

impl Inner {
    /// AppRole: a new token. Token: the token's own lease, checked.
    async fn log_in(&self) -> Result<Lease, VaultError> {
        match &self.auth {
            VaultAuth::Token(_) => {
                let client = self.client.read().await;
                let info = vaultrs::token::lookup_self(&*client)
                    .await
                    .map_err(vault_error)?;
                Ok(Lease {
                    ttl: Duration::from_secs(info.ttl),
                    renewable: info.renewable.unwrap_or(false),
                })
            }
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let mut client = self.client.write().await;
                let auth = vaultrs::auth::approle::login(
                    &*client,
                    mount,
                    role_id.expose_secret(),
                    secret_id.expose_secret(),
                )
                .await
                .map_err(vault_error)?;
                client.set_token(&auth.client_token);
                Ok(Lease {
                    ttl: Duration::from_secs(auth.lease_duration),
                    renewable: auth.renewable,
                })
            }
        }
    }

    async fn renew_token(&self) -> Result<Lease, VaultError> {
        let client = self.client.read().await;
        let auth = vaultrs::token::renew_self(&*client, None)
            .await
            .map_err(vault_error)?;
        Ok(Lease {
            ttl: Duration::from_secs(auth.lease_duration),
            renewable: auth.renewable,
        })
    }

    async fn read(&self, name: &str) -> Result<SecretString, SecretError> {
        let (base, version) = split_version(name)?;
        let path = format!("{}{base}", self.path_prefix);
        let endpoint = ReadSecretRequest::builder()
            .mount(self.mount.as_str())
            .path(path.as_str())
            .version(version)
            .build()
            .map_err(|e| SecretError::Unexpected(Box::new(VaultError::Config(e.to_string()))))?;
        let client = self.client.read().await;
        let answer = match vaultrs::api::exec_with_result(&*client, endpoint).await {
            Ok(answer) => answer,
            Err(e) => {
                return Err(match vault_error(e) {
                    VaultError::Status { code: 404, .. } => SecretError::NotFound(name.to_owned()),
                    other => SecretError::Unexpected(Box::new(other)),
                });
            }
        };
        match answer.data.get(&self.field).and_then(|v| v.as_str()) {
            Some(value) => Ok(SecretString::from(value.to_owned())),
            None => Err(SecretError::Unexpected(Box::new(VaultError::NoField {
                path,
                field: self.field.clone(),
            }))),
        }
    }
}

/// `name@3` is version 3 of `name`; a plain name is the latest version.
fn split_version(name: &str) -> Result<(&str, Option<u64>), SecretError> {
    match name.split_once('@') {
        None => Ok((name, None)),
        Some((base, v)) => match v.parse::<u64>() {
            Ok(n) if n > 0 && !v.starts_with('+') => Ok((base, Some(n))),
            _ => Err(SecretError::Unexpected(Box::new(VaultError::Config(
                "a version after `@` is a whole number from 1".into(),
            )))),
        },
    }
}

/// The shortest wait before trying again after a failed renewal.
const RETRY: Duration = Duration::from_secs(5);

/// Keeps the token alive: renews it when two thirds of its lease have
/// passed; when a renewal fails, AppRole logs in again, a given token
/// retries until it expires (nothing else can be done with it). Stops
/// when the provider is dropped, or for a token that never expires.
async fn renew(inner: Weak<Inner>, mut lease: Lease) {
    loop {
        if lease.ttl.is_zero() {
            // A root or periodic-less token without expiry.
            return;
        }
        tokio::time::sleep(lease.ttl * 2 / 3).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let renewed = if lease.renewable {
            inner.renew_token().await
        } else {
            Err(VaultError::Config("the token is not renewable".into()))
        };
        lease = match renewed {
            Ok(l) => {
                tracing::debug!(ttl_seconds = l.ttl.as_secs(), "the Vault token was renewed");
                l
            }
            Err(e) => match &inner.auth {
                VaultAuth::AppRole { .. } => match inner.log_in().await {
                    Ok(l) => {
                        tracing::info!(error = %e, "the Vault token could not be renewed; logged in again with AppRole");
                        l
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the Vault token could not be renewed nor replaced; trying again");
                        Lease {
                            ttl: RETRY * 3 / 2,
                            renewable: lease.renewable,
                        }
                    }
                },
                VaultAuth::Token(_) => {
                    tracing::warn!(error = %e, "the Vault token could not be renewed; it stops working when its lease ends");
                    let left = lease.ttl / 3;
                    if left <= RETRY {
                        return;
                    }
                    Lease {
                        ttl: left.max(RETRY),
                        renewable: lease.renewable,
                    }
                }
            },
        };
    }
}

#[async_trait]
impl SecretProvider for VaultSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let inner = self.inner.clone();
        let name = name.to_owned();
        runtime::run(async move { inner.read(&name).await })
            .await
            .unwrap_or_else(|| {
                Err(SecretError::Unexpected(Box::new(VaultError::Transport(
                    "the Vault client panicked".into(),
                ))))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_an_at_sign() {
        assert_eq!(split_version("db").expect("plain"), ("db", None));
        assert_eq!(split_version("db@3").expect("v3"), ("db", Some(3)));
        for bad in ["db@", "db@0", "db@x", "db@+1", "db@-1"] {
            assert!(split_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn auth_never_shows_its_secrets() {
        let token = VaultAuth::Token(SecretString::from("hvs.canary"));
        let role = VaultAuth::AppRole {
            mount: "approle".into(),
            role_id: SecretString::from("role-canary"),
            secret_id: SecretString::from("secret-canary"),
        };
        let shown = format!("{token:?} {role:?}");
        assert!(!shown.contains("canary"), "{shown}");
    }
}
