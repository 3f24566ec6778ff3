//! The secret providers of every app (`SECRETS_PROVIDERS`), and the settings resolver that replaces `{vault:name}` references with their secrets at start.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};

use alarm_secrets::Chain;
use secrecy::{ExposeSecret, SecretString};

use alarm_appkit::settings::{AsWritten, ConfigFile, Resolve};
use alarm_appkit::{ConfigError, bad};

alarm_appkit::settings! {
    /// Where `{vault:name}` references in any setting are looked up. These
    /// three are read as written (they cannot hold references themselves).
    pub struct SecretsArgs => SecretsValues {
        /// Secret providers asked in order for a `{vault:name}` reference: env, file (vault and oci are not built yet)
        secrets_providers: String = "env,file", "SECRETS_PROVIDERS";
        /// The file provider's directory: one secret per file, named as the reference names it (a missing directory holds none)
        secrets_dir: PathBuf = "/run/secrets", "SECRETS_DIR";
        /// The env provider's prefix: `{vault:db-password}` is the variable PREFIX + DB_PASSWORD (not empty: a reference would find its own variable)
        secrets_env_prefix: String = "SECRET_", "SECRETS_ENV_PREFIX";
    }
}

/// The settings resolver of the apps: each `{vault:name}` (or
/// `${vault:name}`, `{vault:env:name}`, `{vault:file:name}`) in a value is
/// replaced by the secret the providers give; a reference that cannot be
/// resolved fails start, naming the setting, the reference and the
/// providers asked, never a value.
#[derive(Debug)]
pub struct SecretRefs {
    chain: Chain,
}

impl SecretRefs {
    /// The providers `args` (and the file's keys) configure.
    ///
    /// # Errors
    /// An unknown provider, or one not built yet, named `SECRETS_PROVIDERS`.
    pub fn load(
        args: &SecretsArgs,
        file: &mut ConfigFile,
    ) -> Result<(Self, SecretsValues), ConfigError> {
        let values = args.resolve(file, &AsWritten)?;
        let chain = Chain::configured(
            &values.secrets_providers,
            &values.secrets_dir,
            &values.secrets_env_prefix,
        )
        .map_err(|e| bad("SECRETS_PROVIDERS", e))?;
        Ok((Self { chain }, values))
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
        block_on(alarm_secrets::expand(raw, &self.chain)).map_err(|e| bad(setting, e.to_string()))
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
        Ok(self.expand(setting, raw.expose_secret())?.unwrap_or(raw))
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
/// before the apps' runtime starts (and in tests, sometimes inside one),
/// and the env and file providers need no reactor: a runtime would be a
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
            secrets_env_prefix: None,
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
            ("env,vault", "not built"),
            ("env,env", "twice"),
            ("s3", "unknown"),
        ] {
            let args = SecretsArgs {
                secrets_providers: Some(providers.into()),
                secrets_dir: None,
                secrets_env_prefix: None,
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
