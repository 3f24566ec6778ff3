//! The environment provider: a secret is an environment variable named from the secret's name.

use std::collections::HashMap;
use std::ffi::OsString;

use alarm_domain::ports::{SecretError, SecretProvider};
use async_trait::async_trait;
use secrecy::SecretString;

/// Secrets from environment variables: the secret `db-password` is the
/// variable `PREFIX` + `DB_PASSWORD` (upper-cased, `-` and `.` read as
/// `_`), so one reference names the same secret in a file and in the
/// environment.
///
/// The environment is read once, when the provider is made: a process's
/// environment does not change under it (changing it needs `unsafe`,
/// which this workspace forbids).
pub struct EnvSecrets {
    vars: HashMap<String, SecretString>,
    /// Variables whose value is not UTF-8: present, yet unreadable.
    unreadable: Vec<String>,
}

impl std::fmt::Debug for EnvSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSecrets")
            .field("variables", &self.vars.len())
            .finish_non_exhaustive()
    }
}

/// The variable that holds the secret `name`, without the prefix.
pub(crate) fn variable(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

impl EnvSecrets {
    /// The process environment's variables that start with `prefix`.
    pub fn from_process(prefix: &str) -> Self {
        Self::from_vars(prefix, std::env::vars_os())
    }

    /// The given variables that start with `prefix` (a process's
    /// environment, or a test's).
    pub fn from_vars(prefix: &str, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let mut this = Self {
            vars: HashMap::new(),
            unreadable: Vec::new(),
        };
        for (key, value) in vars {
            let Some(rest) = key.to_str().and_then(|k| k.strip_prefix(prefix)) else {
                continue;
            };
            match value.into_string() {
                Ok(v) => {
                    this.vars.insert(rest.to_owned(), SecretString::from(v));
                }
                Err(_) => this.unreadable.push(rest.to_owned()),
            }
        }
        this
    }
}

/// A variable that is set but holds no UTF-8 text.
#[derive(Debug, thiserror::Error)]
#[error("the variable for `{0}` is not UTF-8")]
struct NotUtf8(String);

#[async_trait]
impl SecretProvider for EnvSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        if !crate::valid_name(name) {
            return Err(SecretError::NotFound(name.to_owned()));
        }
        let var = variable(name);
        if let Some(v) = self.vars.get(&var) {
            return Ok(v.clone());
        }
        if self.unreadable.contains(&var) {
            return Err(SecretError::Unexpected(Box::new(NotUtf8(name.to_owned()))));
        }
        Err(SecretError::NotFound(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn a_name_maps_to_one_variable_under_the_prefix() {
        let env = EnvSecrets::from_vars(
            "APP_",
            [
                ("APP_DB_PASSWORD".into(), "s3cret".into()),
                ("DB_PASSWORD".into(), "not under the prefix".into()),
            ],
        );
        for name in ["db-password", "DB_PASSWORD", "db.password"] {
            assert_eq!(env.get(name).await.expect(name).expose_secret(), "s3cret");
        }
        assert!(matches!(
            env.get("other").await,
            Err(SecretError::NotFound(_))
        ));
        assert!(!format!("{env:?}").contains("s3cret"));
    }
}
