//! `{vault:name}` references in setting values: found, checked and replaced by the secrets they name.
//!
//! Forms (each also with a leading `$`, as in `${vault:name}`):
//! - `{vault:NAME}`: the first provider of the chain that has `NAME`;
//! - `{vault:PROVIDER:NAME}`: that provider only (`env`, `file`, `vault`
//!   or `oci`);
//! - `{vault:vault:NAME@3}`, `{vault:oci:NAME@3}`: version 3 of the secret
//!   (only a provider that keeps versions reads one).
//!
//! A reference may stand alone (`JWT_SECRET_KEY={vault:jwt-key}`) or inside
//! a longer value (`postgres://app:{vault:db-password}@db/alarms`).

use alarm_domain::ports::{SecretError, SecretProvider};
use secrecy::{ExposeSecret, SecretString};

use crate::{Chain, ProviderKind, valid_name};

/// What opens a reference.
const OPEN: &str = "{vault:";

/// One reference in a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// As written, e.g. `${vault:file:db-password}`.
    pub written: String,
    /// The provider it is bound to, if any.
    pub provider: Option<ProviderKind>,
    /// The secret's name.
    pub name: String,
    /// Where it is written: `value[start..end]` is `written`.
    start: usize,
    end: usize,
}

/// Why a value's references could not be replaced. Names the reference
/// and the provider, never a value (nor the rest of the text, which may
/// itself be secret).
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Not a reference this crate reads.
    #[error("malformed secret reference: {0}")]
    Malformed(String),
    /// No provider has the secret.
    #[error("secret reference `{reference}` was not found (providers asked: {providers})")]
    Missing {
        /// As written.
        reference: String,
        /// The providers asked, in order.
        providers: String,
    },
    /// Bound to a provider the chain does not hold.
    #[error(
        "secret reference `{reference}` names the `{provider}` provider, which SECRETS_PROVIDERS does not list"
    )]
    NotConfigured {
        /// As written.
        reference: String,
        /// The provider named.
        provider: &'static str,
    },
    /// The secret is itself a reference: references are not followed
    /// (seen when the env provider, without a prefix, finds the very
    /// variable that holds the reference).
    #[error(
        "secret reference `{reference}` gave another reference; references are not followed (is SECRETS_ENV_PREFIX empty?)"
    )]
    Nested {
        /// As written.
        reference: String,
    },
    /// A provider failed.
    #[error("secret reference `{reference}` could not be read: {source}")]
    Failed {
        /// As written.
        reference: String,
        /// The provider's failure.
        #[source]
        source: SecretError,
    },
}

/// The references in `value`, in order.
///
/// # Errors
/// A `{vault:` that does not form a reference (no closing `}`, a bad
/// name, an unknown provider).
pub fn references(value: &str) -> Result<Vec<Reference>, ReferenceError> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = value[from..].find(OPEN).map(|i| i + from) {
        let start = if value[..at].ends_with('$') {
            at - 1
        } else {
            at
        };
        let body_start = at + OPEN.len();
        let Some(close) = value[body_start..].find('}').map(|i| i + body_start) else {
            return Err(ReferenceError::Malformed(
                "`{vault:` without a closing `}`".into(),
            ));
        };
        let body = &value[body_start..close];
        let (provider, name) = match body.split_once(':') {
            Some((p, n)) => (
                // Not repeated in the message: the text may be part of a
                // secret.
                Some(ProviderKind::parse(p).map_err(|_| {
                    ReferenceError::Malformed(
                        "`{vault:PROVIDER:NAME}` names no provider this build has (env, file, vault, oci)"
                            .into(),
                    )
                })?),
                n,
            ),
            None => (None, body),
        };
        let base = match (provider, name.split_once('@')) {
            (_, None) => name,
            (Some(p), Some((base, version)))
                if p.versioned()
                    && !version.is_empty()
                    && version.bytes().all(|b| b.is_ascii_digit()) =>
            {
                base
            }
            _ => {
                return Err(ReferenceError::Malformed(
                    "a version (`NAME@3`) is read only through `{vault:vault:…}` or `{vault:oci:…}`"
                        .into(),
                ));
            }
        };
        if !valid_name(base) {
            return Err(ReferenceError::Malformed(format!(
                "a secret name is 1 to {} letters, digits, `_`, `-` or `.`, not starting with `.`",
                crate::MAX_NAME_LEN
            )));
        }
        let end = close + 1;
        found.push(Reference {
            written: value[start..end].to_owned(),
            provider,
            name: name.to_owned(),
            start,
            end,
        });
        from = end;
    }
    Ok(found)
}

/// `value` with each reference replaced by its secret; `None` when it
/// holds none (use it as written).
///
/// # Errors
/// [`ReferenceError`]: malformed, missing, or a provider failed.
pub async fn expand(value: &str, chain: &Chain) -> Result<Option<SecretString>, ReferenceError> {
    let refs = references(value)?;
    if refs.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(value.len());
    let mut at = 0;
    for r in refs {
        if let Some(p) = r.provider
            && !chain.names().contains(&p.name())
        {
            return Err(ReferenceError::NotConfigured {
                reference: r.written,
                provider: p.name(),
            });
        }
        let got = match r.provider {
            Some(p) => chain.get_from(p.name(), &r.name).await,
            None => chain.get(&r.name).await,
        };
        let secret = got.map_err(|e| match e {
            SecretError::NotFound(_) => ReferenceError::Missing {
                reference: r.written.clone(),
                providers: match r.provider {
                    Some(p) => p.name().to_owned(),
                    None => chain.names().join(", "),
                },
            },
            source => ReferenceError::Failed {
                reference: r.written.clone(),
                source,
            },
        })?;
        if secret.expose_secret().contains(OPEN) {
            return Err(ReferenceError::Nested {
                reference: r.written,
            });
        }
        out.push_str(&value[at..r.start]);
        out.push_str(secret.expose_secret());
        at = r.end;
    }
    out.push_str(&value[at..]);
    Ok(Some(SecretString::from(out)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{EnvSecrets, FileSecrets};

    fn chain() -> Chain {
        let env = EnvSecrets::from_vars(
            "",
            [
                ("DB_PASSWORD".into(), "from-env".into()),
                ("JWT".into(), "k".into()),
                ("LOOP".into(), "{vault:loop}".into()),
            ],
        );
        Chain::new(vec![
            ("env", Arc::new(env) as Arc<dyn SecretProvider>),
            (
                "file",
                Arc::new(FileSecrets::new("/nonexistent-secrets-dir")),
            ),
        ])
    }

    #[test]
    fn references_are_found_in_every_form() {
        let refs = references("a{vault:x}b${vault:env:y-1}c{vault:file:z.z}{vault:vault:k@12}")
            .expect("refs");
        let read: Vec<_> = refs
            .iter()
            .map(|r| (r.written.as_str(), r.provider, r.name.as_str()))
            .collect();
        assert_eq!(
            read,
            [
                ("{vault:x}", None, "x"),
                ("${vault:env:y-1}", Some(ProviderKind::Env), "y-1"),
                ("{vault:file:z.z}", Some(ProviderKind::File), "z.z"),
                ("{vault:vault:k@12}", Some(ProviderKind::Vault), "k@12"),
            ]
        );
        assert!(
            references("no {reference} here $x")
                .expect("none")
                .is_empty()
        );
        for bad in [
            "{vault:x",
            "{vault:}",
            "{vault:a/b}",
            "{vault:s3cr3t:x}",
            "{vault:x@1}",
            "{vault:file:x@1}",
            "{vault:vault:x@}",
            "{vault:oci:x@v1}",
        ] {
            let err = references(bad).unwrap_err().to_string();
            assert!(!err.contains("s3cr3t"), "the text is not repeated: {err}");
        }
    }

    #[tokio::test]
    async fn values_are_expanded_and_errors_name_the_reference_only() {
        let chain = chain();
        let url = expand("postgres://app:${vault:db-password}@db/alarms", &chain)
            .await
            .expect("expanded")
            .expect("had a reference");
        assert_eq!(url.expose_secret(), "postgres://app:from-env@db/alarms");
        assert!(expand("plain", &chain).await.expect("ok").is_none());
        let missing = expand("p4ss-{vault:nope}", &chain).await.unwrap_err();
        let text = missing.to_string();
        assert!(
            text.contains("`{vault:nope}`") && text.contains("env, file"),
            "{text}"
        );
        assert!(
            !text.contains("p4ss"),
            "the rest of the value is not shown: {text}"
        );
        let looped = expand("{vault:loop}", &chain).await.unwrap_err();
        assert!(matches!(looped, ReferenceError::Nested { .. }), "{looped}");
        let only_env = Chain::new(vec![(
            "env",
            Arc::new(EnvSecrets::from_vars("", [])) as Arc<dyn SecretProvider>,
        )]);
        let unlisted = expand("{vault:file:x}", &only_env).await.unwrap_err();
        assert!(
            matches!(
                unlisted,
                ReferenceError::NotConfigured {
                    provider: "file",
                    ..
                }
            ),
            "{unlisted}"
        );
        let bound = expand("{vault:file:db-password}", &chain)
            .await
            .unwrap_err();
        assert!(
            matches!(&bound, ReferenceError::Missing { providers, .. } if providers == "file"),
            "{bound}"
        );
    }
}
