//! The secret providers of every app (`SECRETS_PROVIDERS`), and the settings resolver that replaces `{vault:name}` references with their secrets at start.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};

use alarm_secrets::{
    Chain, OciAuth, OciConfig, ProviderSettings, Refresher, VaultAuth, VaultConfig,
};
use secrecy::{ExposeSecret, SecretString};

use alarm_appkit::settings::{AsWritten, ConfigFile, Resolve};
use alarm_appkit::{ConfigError, bad, secret_env};

alarm_appkit::settings! {
    /// Where `{vault:name}` references in any setting are looked up. These
    /// are read as written (they cannot hold references themselves).
    pub struct SecretsArgs => SecretsValues {
        /// Secret providers asked in order for a `{vault:name}` reference: env, file, vault, oci
        secrets_providers: String = "env,file", "SECRETS_PROVIDERS";
        /// The file provider's directory: one secret per file, named as the reference names it (a missing directory holds none)
        secrets_dir: PathBuf = "/run/secrets", "SECRETS_DIR";
        /// The env provider's prefix: `{vault:db-password}` is the variable PREFIX + DB_PASSWORD (not empty: a reference would find its own variable)
        secrets_env_prefix: String = "SECRET_", "SECRETS_ENV_PREFIX";
        /// Seconds between re-reads of the secret settings written as references (0: read once at start); a changed value reaches the consumers that take one without a restart, a failed read keeps the last value
        secrets_refresh_seconds: u64 = "300", "SECRETS_REFRESH_SECONDS", 0..=86_400;
        /// Each request of the vault and oci providers is given up after this many seconds
        secrets_timeout_seconds: u64 = "10", "SECRETS_TIMEOUT_SECONDS", 1..=120;
        /// HashiCorp Vault's address (the vault provider), e.g. https://vault.internal:8200
        vault_addr: Option<String>, "VAULT_ADDR";
        /// How the vault provider logs in: token (VAULT_TOKEN or VAULT_TOKEN_FILE) or approle (VAULT_ROLE_ID and VAULT_SECRET_ID or VAULT_SECRET_ID_FILE)
        vault_auth: String = "token", "VAULT_AUTH";
        /// The KV v2 engine's mount
        vault_mount: String = "secret", "VAULT_MOUNT";
        /// Put before a secret's name to make its KV path, e.g. smart-alarm/prod/
        vault_path_prefix: Option<String>, "VAULT_PATH_PREFIX";
        /// The field of each KV secret that holds the value
        vault_field: String = "value", "VAULT_FIELD";
        /// The Vault Enterprise namespace (sent as X-Vault-Namespace)
        vault_namespace: Option<String>, "VAULT_NAMESPACE";
        /// A PEM file of CAs the Vault server's certificate is checked against, besides the system's
        vault_cacert: Option<PathBuf>, "VAULT_CACERT";
        /// The AppRole auth method's mount
        vault_approle_mount: String = "approle", "VAULT_APPROLE_MOUNT";
        /// The AppRole role id
        vault_role_id: Option<String>, "VAULT_ROLE_ID";
        /// How the oci provider signs: api_key (OCI_TENANCY, OCI_USER, OCI_FINGERPRINT, OCI_PRIVATE_KEY or OCI_PRIVATE_KEY_FILE) or resource_principal (inside OCI Functions)
        oci_auth: String = "api_key", "OCI_AUTH";
        /// The OCI region whose Secret Retrieval endpoint is asked, e.g. eu-frankfurt-1 (inside OCI Functions, the function's region)
        oci_region: Option<String>, "OCI_REGION";
        /// The Secret Retrieval endpoint, when not the region's public one (another realm, a private endpoint)
        oci_secrets_endpoint: Option<String>, "OCI_SECRETS_ENDPOINT";
        /// The vault whose secrets `{vault:oci:NAME}` reads by name (an OCID reads without it)
        oci_vault_id: Option<String>, "OCI_VAULT_ID";
        /// The tenancy's OCID (API key auth)
        oci_tenancy: Option<String>, "OCI_TENANCY";
        /// The user's OCID (API key auth)
        oci_user: Option<String>, "OCI_USER";
        /// The API key's fingerprint (API key auth)
        oci_fingerprint: Option<String>, "OCI_FINGERPRINT";
    }
}

/// The vault provider's settings, when `SECRETS_PROVIDERS` lists it.
fn vault_config(v: &SecretsValues) -> Result<Option<VaultConfig>, ConfigError> {
    let Some(address) = v.vault_addr.clone() else {
        return Ok(None);
    };
    let auth =
        match v.vault_auth.as_str() {
            "token" => VaultAuth::Token(
                secret_env("VAULT_TOKEN", "VAULT_TOKEN_FILE", &AsWritten)?.ok_or_else(|| {
                    bad(
                        "VAULT_TOKEN",
                        "VAULT_AUTH=token needs VAULT_TOKEN or VAULT_TOKEN_FILE",
                    )
                })?,
            ),
            "approle" => VaultAuth::AppRole {
                mount: v.vault_approle_mount.clone(),
                role_id: SecretString::from(v.vault_role_id.clone().ok_or_else(|| {
                    bad("VAULT_ROLE_ID", "VAULT_AUTH=approle needs VAULT_ROLE_ID")
                })?),
                secret_id: secret_env("VAULT_SECRET_ID", "VAULT_SECRET_ID_FILE", &AsWritten)?
                    .ok_or_else(|| {
                        bad(
                            "VAULT_SECRET_ID",
                            "VAULT_AUTH=approle needs VAULT_SECRET_ID or VAULT_SECRET_ID_FILE",
                        )
                    })?,
            },
            other => {
                return Err(bad(
                    "VAULT_AUTH",
                    format!("`{other}` is not token or approle"),
                ));
            }
        };
    Ok(Some(VaultConfig {
        address,
        mount: v.vault_mount.clone(),
        path_prefix: v.vault_path_prefix.clone().unwrap_or_default(),
        field: v.vault_field.clone(),
        namespace: v.vault_namespace.clone(),
        ca_cert: v.vault_cacert.clone(),
        auth,
        timeout: std::time::Duration::from_secs(v.secrets_timeout_seconds),
    }))
}

/// The oci provider's settings, when `SECRETS_PROVIDERS` lists it.
fn oci_config(v: &SecretsValues) -> Result<Option<OciConfig>, ConfigError> {
    let auth = match v.oci_auth.as_str() {
        "resource_principal" => {
            OciAuth::resource_principal_from_env().map_err(|e| bad("OCI_AUTH", e.to_string()))?
        }
        "api_key" => {
            let need = |value: &Option<String>, name: &'static str| {
                value
                    .clone()
                    .ok_or_else(|| bad(name, "OCI_AUTH=api_key needs OCI_TENANCY, OCI_USER, OCI_FINGERPRINT and OCI_PRIVATE_KEY"))
            };
            OciAuth::ApiKey {
                tenancy: need(&v.oci_tenancy, "OCI_TENANCY")?,
                user: need(&v.oci_user, "OCI_USER")?,
                fingerprint: need(&v.oci_fingerprint, "OCI_FINGERPRINT")?,
                private_key: secret_env("OCI_PRIVATE_KEY", "OCI_PRIVATE_KEY_FILE", &AsWritten)?
                    .ok_or_else(|| {
                        bad(
                            "OCI_PRIVATE_KEY",
                            "OCI_AUTH=api_key needs OCI_PRIVATE_KEY or OCI_PRIVATE_KEY_FILE",
                        )
                    })?,
            }
        }
        other => {
            return Err(bad(
                "OCI_AUTH",
                format!("`{other}` is not api_key or resource_principal"),
            ));
        }
    };
    let region = v
        .oci_region
        .clone()
        .or_else(|| std::env::var("OCI_RESOURCE_PRINCIPAL_REGION").ok());
    let endpoint = match (&v.oci_secrets_endpoint, region) {
        (Some(e), _) => e.clone(),
        (None, Some(r)) => OciConfig::endpoint_of(&r),
        (None, None) => {
            return Err(bad(
                "OCI_REGION",
                "the oci provider needs OCI_REGION or OCI_SECRETS_ENDPOINT",
            ));
        }
    };
    Ok(Some(OciConfig {
        endpoint,
        vault_id: v.oci_vault_id.clone(),
        auth,
        timeout: std::time::Duration::from_secs(v.secrets_timeout_seconds),
    }))
}

/// The settings resolver of the apps: each `{vault:name}` (or
/// `${vault:name}`, `{vault:env:name}`, `{vault:file:name}`) in a value is
/// replaced by the secret the providers give; a reference that cannot be
/// resolved fails start, naming the setting, the reference and the
/// providers asked, never a value.
#[derive(Debug)]
pub struct SecretRefs {
    chain: Chain,
    refresher: Arc<Refresher>,
    refresh_every: Option<std::time::Duration>,
}

impl SecretRefs {
    /// The providers `args` (and the file's keys) configure.
    ///
    /// # Errors
    /// An unknown provider, one listed twice, or one whose settings are
    /// missing or that cannot connect, named `SECRETS_PROVIDERS`; a bad
    /// Vault or OCI setting, named.
    pub fn load(
        args: &SecretsArgs,
        file: &mut ConfigFile,
    ) -> Result<(Self, SecretsValues), ConfigError> {
        let values = args.resolve(file, &AsWritten)?;
        let listed = |p: &str| values.secrets_providers.split(',').any(|n| n.trim() == p);
        let settings = ProviderSettings {
            dir: values.secrets_dir.clone(),
            env_prefix: values.secrets_env_prefix.clone(),
            vault: if listed("vault") {
                vault_config(&values)?
            } else {
                None
            },
            oci: if listed("oci") {
                oci_config(&values)?
            } else {
                None
            },
        };
        // The networked providers connect here, on their own I/O thread:
        // this thread only waits.
        let chain = block_on(Chain::configured(&values.secrets_providers, settings))
            .map_err(|e| bad("SECRETS_PROVIDERS", e))?;
        let refresher = Refresher::observed(chain.clone(), alarm_appkit::redact::register);
        let refresh_every = (values.secrets_refresh_seconds > 0)
            .then(|| std::time::Duration::from_secs(values.secrets_refresh_seconds));
        Ok((
            Self {
                chain,
                refresher,
                refresh_every,
            },
            values,
        ))
    }

    /// The current value of a secret setting written as a reference, and
    /// each later one the refreshes read; `None` for a setting given as
    /// a value (it cannot change without a restart).
    pub fn watch(&self, setting: &str) -> Option<tokio::sync::watch::Receiver<SecretString>> {
        self.refresher.watch(setting)
    }

    /// The refresher, for health and tests.
    pub fn refresher(&self) -> &Arc<Refresher> {
        &self.refresher
    }

    /// Hands each rotated value to the consumers that take one without a
    /// restart: `DATABASE_URL`'s password to new PostgreSQL connections,
    /// `SMTP_PASSWORD` to the e-mail channel's mailer and to `mailers`
    /// (e.g. the API's account e-mails). Call inside the runtime, then
    /// [`SecretRefs::start_refresh`].
    pub fn follow(&self, sql: &alarm_sql::Sql, mailers: &[&alarm_notify::email::Mailer]) {
        if let Some(url) = self.watch("DATABASE_URL") {
            sql.follow_url(url);
        }
        if let Some(password) = self.watch("SMTP_PASSWORD") {
            for mailer in mailers {
                mailer.follow(password.clone());
            }
        }
    }

    /// Starts the refreshes (`SECRETS_REFRESH_SECONDS`), when any secret
    /// setting was written as a reference and the interval is not 0.
    pub fn start_refresh(&self) {
        if let Some(every) = self.refresh_every
            && self.refresher.tracked() > 0
        {
            self.refresher.start(every);
        }
    }

    /// The providers, for the secrets the apps read later.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    fn expand(
        &self,
        setting: &'static str,
        raw: &str,
    ) -> Result<Option<SecretString>, ConfigError> {
        let value = block_on(alarm_secrets::expand(raw, &self.chain))
            .map_err(|e| bad(setting, e.to_string()))?;
        if let Some(v) = &value {
            // The secrets themselves and the value they make: no log line
            // shows either.
            alarm_appkit::redact::register(v);
            for secret in self.chain.values() {
                alarm_appkit::redact::register(&secret);
            }
        }
        Ok(value)
    }
}

impl Resolve for SecretRefs {
    fn resolve(&self, setting: &'static str, raw: String) -> Result<String, ConfigError> {
        Ok(match self.expand(setting, &raw)? {
            Some(v) => {
                alarm_appkit::settings::mark_from_reference(setting);
                v.expose_secret().to_owned()
            }
            None => raw,
        })
    }

    fn resolve_secret(
        &self,
        setting: &'static str,
        raw: SecretString,
    ) -> Result<SecretString, ConfigError> {
        Ok(match self.expand(setting, raw.expose_secret())? {
            Some(value) => {
                // Written as a reference: the refreshes read it again.
                self.refresher.track(setting, raw, value.clone());
                value
            }
            None => raw,
        })
    }
}

/// Wakes the thread that waits in [`block_on`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` on this thread until it is done. Settings are resolved
/// before the apps' runtime starts (and in tests, sometimes inside one);
/// the env and file providers need no reactor, and the vault and oci
/// providers do their I/O on their own thread: a runtime here would be a
/// second one to start, or a panic inside the first.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_through_the_configured_providers() {
        let dir = std::env::temp_dir().join(format!("appkit-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("smtp-password"), "p4ss\n").expect("write");
        let args = SecretsArgs {
            secrets_providers: Some("file".into()),
            secrets_dir: Some(dir.display().to_string()),
            ..SecretsArgs::default()
        };
        let (refs, _) = SecretRefs::load(&args, &mut ConfigFile::default()).expect("load");
        assert_eq!(
            refs.resolve("SMTP_HOST", "mail-{vault:smtp-password}".into())
                .expect("resolved"),
            "mail-p4ss"
        );
        let secret = refs
            .resolve_secret(
                "SMTP_PASSWORD",
                SecretString::from("${vault:file:smtp-password}"),
            )
            .expect("resolved");
        assert_eq!(secret.expose_secret(), "p4ss");
        let err = refs
            .resolve("SMTP_HOST", "{vault:env:smtp-password}".into())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SMTP_HOST") && err.contains("{vault:env:smtp-password}"),
            "{err}"
        );
        assert!(!err.contains("p4ss"), "{err}");
        for (providers, why) in [
            ("env,vault", "VAULT_ADDR"),
            ("env,env", "twice"),
            ("s3", "unknown"),
        ] {
            let args = SecretsArgs {
                secrets_providers: Some(providers.into()),
                ..SecretsArgs::default()
            };
            let err = SecretRefs::load(&args, &mut ConfigFile::default())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("SECRETS_PROVIDERS") && err.contains(why),
                "{err}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
