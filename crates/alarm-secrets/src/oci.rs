//! The OCI Vault provider: secret bundles read from the Secret Retrieval API, each request signed with the caller's RSA key on ring.
//!
//! `{vault:oci:ocid1.vaultsecret.oc1…}` reads a secret by its OCID;
//! `{vault:oci:db-password}` reads the secret of that name in the vault
//! `OCI_VAULT_ID`; `@3` after either reads version 3. The bundle's
//! base64 content is decoded and must be UTF-8.
//!
//! Auth: an API key (`OCI_TENANCY`, `OCI_USER`, `OCI_FINGERPRINT`,
//! `OCI_PRIVATE_KEY`, PKCS#1 or PKCS#8 PEM, unencrypted), or the resource
//! principal OCI Functions gives a function (version 2.2: the session
//! token and its private key from `OCI_RESOURCE_PRINCIPAL_RPST` and
//! `OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM`, each the value or a file's path,
//! a path re-read before each request so a renewed token is used).
//! Instance principals are not built: they need an RSA key pair made at
//! run time, which ring cannot generate, and this workspace does not take
//! the `rsa` crate for it.
//!
//! Signing follows Oracle's "Request Signatures" (draft-cavage HTTP
//! signatures, version 1, rsa-sha256): `date (request-target) host`, plus
//! `content-length content-type x-content-sha256` for a request with a
//! body (POST, PUT, PATCH, even empty). Tests: the signing strings of
//! Oracle's published GET and POST examples, checked against Oracle's
//! published signatures with the example's public key (ring cannot sign
//! with that 1024-bit key, only verify); byte-for-byte agreement with the
//! official Python SDK's signer on GET and POST; a local fake of the
//! Secret Retrieval API that verifies every signature with the public key
//! and refuses a tampered request. No request reached a real OCI region.

use std::sync::Arc;
use std::time::Duration;

use alarm_domain::ports::{SecretError, SecretProvider};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::RsaKeyPair;
use secrecy::{ExposeSecret, SecretString};

use crate::runtime;

/// The Secret Retrieval API's version path.
const API: &str = "/20190301";

/// The largest answer read (a secret bundle is at most 25 KB of content,
/// base64 and JSON around it).
const MAX_ANSWER: usize = 256 * 1024;

/// Why the provider could not start or read.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A setting or a key is wrong.
    #[error("{0}")]
    Config(String),
    /// OCI answered with an error status.
    #[error("OCI Vault answered {code}: {what}{}", code_text.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        /// The HTTP status.
        code: u16,
        /// What it means here.
        what: &'static str,
        /// OCI's error code (e.g. `NotAuthenticated`), never a value.
        code_text: Option<String>,
    },
    /// OCI could not be reached, or its answer not read.
    #[error("OCI Vault could not be reached or read: {0}")]
    Transport(String),
    /// The bundle is not a base64 text secret.
    #[error("the secret bundle {0}")]
    Bundle(&'static str),
}

/// How requests are signed.
pub enum OciAuth {
    /// A user's API key.
    ApiKey {
        /// The tenancy's OCID.
        tenancy: String,
        /// The user's OCID.
        user: String,
        /// The key's fingerprint, as the console shows it.
        fingerprint: String,
        /// The private key, PEM (PKCS#1 or PKCS#8, unencrypted).
        private_key: SecretString,
    },
    /// The resource principal of an OCI Function (version 2.2): each
    /// field is the value itself or the path of a file holding it.
    ResourcePrincipal {
        /// The resource principal session token (RPST).
        token: SecretString,
        /// Its private key, PEM.
        private_key: SecretString,
    },
}

impl std::fmt::Debug for OciAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApiKey {
                tenancy,
                user,
                fingerprint,
                ..
            } => f
                .debug_struct("ApiKey")
                .field("tenancy", tenancy)
                .field("user", user)
                .field("fingerprint", fingerprint)
                .finish_non_exhaustive(),
            Self::ResourcePrincipal { .. } => f.write_str("ResourcePrincipal([redacted])"),
        }
    }
}

impl OciAuth {
    /// The resource principal an OCI Function's platform describes in its
    /// environment (`OCI_RESOURCE_PRINCIPAL_VERSION` 2.2).
    ///
    /// # Errors
    /// Not inside a function, or another version.
    pub fn resource_principal_from_env() -> Result<Self, OciError> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                OciError::Config(format!(
                    "OCI_AUTH=resource_principal needs {name} (set by OCI Functions)"
                ))
            })
        };
        let version = var("OCI_RESOURCE_PRINCIPAL_VERSION")?;
        if version != "2.2" {
            return Err(OciError::Config(format!(
                "OCI_RESOURCE_PRINCIPAL_VERSION is {version}; only 2.2 is read"
            )));
        }
        if std::env::var_os("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE").is_some() {
            return Err(OciError::Config(
                "an encrypted resource principal key (OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE) is not supported".into(),
            ));
        }
        Ok(Self::ResourcePrincipal {
            token: SecretString::from(var("OCI_RESOURCE_PRINCIPAL_RPST")?),
            private_key: SecretString::from(var("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM")?),
        })
    }
}

/// Where the provider reads, and how it signs.
#[derive(Debug)]
pub struct OciConfig {
    /// The Secret Retrieval endpoint, e.g.
    /// `https://secrets.vaults.eu-frankfurt-1.oci.oraclecloud.com`.
    pub endpoint: String,
    /// The vault whose secrets are read by name.
    pub vault_id: Option<String>,
    /// How requests are signed.
    pub auth: OciAuth,
    /// Each request's time limit.
    pub timeout: Duration,
}

impl OciConfig {
    /// The Secret Retrieval endpoint of `region` in the commercial realm.
    pub fn endpoint_of(region: &str) -> String {
        format!("https://secrets.vaults.{region}.oci.oraclecloud.com")
    }
}

/// Signs requests as Oracle's "Request Signatures" describes.
pub struct RequestSigner {
    key_id: String,
    key: RsaKeyPair,
}

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSigner")
            .field("key_id", &self.key_id.split('/').next_back())
            .finish_non_exhaustive()
    }
}

/// The headers a signed request carries, in the order they are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `(name, value)`: `date`, then for a body `content-length`,
    /// `content-type` and `x-content-sha256`, then `authorization`.
    pub headers: Vec<(&'static str, String)>,
    /// The signing string the signature covers.
    pub signing_string: String,
}

/// The host as a request names it: with the port when the URL has one.
fn host_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The DER inside a PEM block: its label and bytes.
fn pem_der(pem: &str) -> Result<(String, Vec<u8>), OciError> {
    let bad = || OciError::Config("the private key is not a PEM block".into());
    let begin = pem.find("-----BEGIN ").ok_or_else(bad)?;
    let rest = &pem[begin + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or_else(bad)?;
    let label = rest[..label_end].to_owned();
    let after = &rest[label_end + 5..];
    let end = after
        .find(&format!("-----END {label}-----"))
        .ok_or_else(bad)?;
    let body = &after[..end];
    if body.contains("Proc-Type:") || label.contains("ENCRYPTED") {
        return Err(OciError::Config(
            "the private key is encrypted; give it unencrypted (as a secret: a _FILE or a reference)".into(),
        ));
    }
    let text: String = body.split_whitespace().collect();
    let der = STANDARD.decode(text).map_err(|_| bad())?;
    Ok((label, der))
}

impl RequestSigner {
    /// A signer with `key_id` (`tenancy/user/fingerprint` for an API key,
    /// `ST$<token>` for a resource principal) and the PEM private key.
    ///
    /// # Errors
    /// Not a PEM RSA key ring accepts (2048 to 4096 bits, unencrypted).
    pub fn new(key_id: String, private_key_pem: &SecretString) -> Result<Self, OciError> {
        let (label, der) = pem_der(private_key_pem.expose_secret())?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            _ => {
                return Err(OciError::Config(
                    "the private key is not an RSA key (PEM `RSA PRIVATE KEY` or `PRIVATE KEY`)"
                        .into(),
                ));
            }
        }
        .map_err(|e| {
            OciError::Config(format!(
                "the private key is not an RSA key ring can sign with (2048 to 4096 bits): {e}"
            ))
        })?;
        Ok(Self { key_id, key })
    }

    /// The signing string and headers for `method url`, dated `date` (an
    /// HTTP date), with `body` when the method sends one (POST, PUT,
    /// PATCH: pass `Some(b"")` for an empty body).
    ///
    /// # Errors
    /// The cipher failed.
    pub fn sign(
        &self,
        method: &str,
        url: &reqwest::Url,
        date: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<SignedHeaders, OciError> {
        let (names, mut headers, signing_string) = signing_input(method, url, date, body);
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_string.as_bytes(),
                &mut signature,
            )
            .map_err(|_| OciError::Config("signing failed".into()))?;
        headers.push((
            "authorization",
            authorization(names, &self.key_id, &STANDARD.encode(signature)),
        ));
        Ok(SignedHeaders {
            headers,
            signing_string,
        })
    }

    /// The public key (PKCS#1 DER), as OCI holds it to verify.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public().as_ref().to_vec()
    }
}

/// What a request signs: the header names (in order, as the
/// `Authorization` header lists them), the headers to send besides
/// `host` and `authorization`, and the signing string.
pub fn signing_input(
    method: &str,
    url: &reqwest::Url,
    date: &str,
    body: Option<(&str, &[u8])>,
) -> (&'static str, Vec<(&'static str, String)>, String) {
    let mut target = url.path().to_owned();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let mut headers = vec![("date", date.to_owned())];
    let mut lines = vec![
        format!("date: {date}"),
        format!("(request-target): {} {target}", method.to_ascii_lowercase()),
        format!("host: {}", host_of(url)),
    ];
    let mut names = "date (request-target) host";
    if let Some((content_type, bytes)) = body {
        let digest = STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, bytes));
        let length = bytes.len().to_string();
        lines.push(format!("content-length: {length}"));
        lines.push(format!("content-type: {content_type}"));
        lines.push(format!("x-content-sha256: {digest}"));
        headers.push(("content-length", length));
        headers.push(("content-type", content_type.to_owned()));
        headers.push(("x-content-sha256", digest));
        names = "date (request-target) host content-length content-type x-content-sha256";
    }
    (names, headers, lines.join("\n"))
}

/// The `Authorization` header's value, its fields in the order Oracle's
/// own SDKs write them.
pub fn authorization(headers: &str, key_id: &str, signature: &str) -> String {
    format!(
        "Signature version=\"1\",headers=\"{headers}\",keyId=\"{key_id}\",algorithm=\"rsa-sha256\",signature=\"{signature}\""
    )
}

/// A value given inline, or the path of a file holding it (as OCI
/// Functions gives a resource principal).
fn inline_or_file(value: &SecretString) -> Result<SecretString, OciError> {
    let v = value.expose_secret();
    if v.starts_with('/') && !v.contains('\n') {
        std::fs::read_to_string(v)
            .map(|s| SecretString::from(s.trim_end().to_owned()))
            .map_err(|e| OciError::Config(format!("cannot read `{v}`: {e}")))
    } else {
        Ok(value.clone())
    }
}

struct Inner {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    vault_id: Option<String>,
    auth: OciAuth,
    /// The API key's signer, made once (a resource principal's is made
    /// per request from its files).
    api_signer: Option<RequestSigner>,
}

/// Secrets from OCI Vault.
#[derive(Clone)]
pub struct OciSecrets {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OciSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciSecrets")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

fn status_meaning(code: u16) -> &'static str {
    match code {
        400 => "the request was refused",
        401 => "not authenticated (the key, its fingerprint, the token or the clock is wrong)",
        403 | 404 => "not found or not authorized",
        409 => "the secret is not in a state to be read",
        429 => "rate limited",
        500..=599 => "OCI Vault failed or is unavailable",
        _ => "an unexpected answer",
    }
}

impl OciSecrets {
    /// The provider: the key is read and checked here; no request is
    /// made until a secret is asked for.
    ///
    /// # Errors
    /// A bad endpoint or key.
    pub async fn connect(config: OciConfig) -> Result<Self, OciError> {
        runtime::run(async move { Self::connect_here(config) })
            .await
            .unwrap_or_else(|| Err(OciError::Transport("the OCI client panicked".into())))
    }

    fn connect_here(config: OciConfig) -> Result<Self, OciError> {
        crate::install_tls_provider();
        let endpoint = reqwest::Url::parse(&config.endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                OciError::Config("the OCI Vault endpoint is not an http(s) URL".into())
            })?;
        let api_signer = match &config.auth {
            OciAuth::ApiKey {
                tenancy,
                user,
                fingerprint,
                private_key,
            } => Some(RequestSigner::new(
                format!("{tenancy}/{user}/{fingerprint}"),
                private_key,
            )?),
            OciAuth::ResourcePrincipal { .. } => {
                // Checked now so a bad key fails the start, not a read.
                Self::principal_signer(&config.auth)?;
                None
            }
        };
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| OciError::Transport(alarm_domain::error::chain(&e)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint,
                vault_id: config.vault_id,
                auth: config.auth,
                api_signer,
            }),
        })
    }

    fn principal_signer(auth: &OciAuth) -> Result<RequestSigner, OciError> {
        let OciAuth::ResourcePrincipal { token, private_key } = auth else {
            return Err(OciError::Config("not a resource principal".into()));
        };
        let token = inline_or_file(token)?;
        let key = inline_or_file(private_key)?;
        RequestSigner::new(format!("ST${}", token.expose_secret()), &key)
    }
}

impl Inner {
    async fn read(&self, name: &str) -> Result<SecretString, OciError> {
        let (base, version) = match name.split_once('@') {
            Some((b, v)) => (
                b,
                Some(v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    OciError::Config("a version after `@` is a whole number from 1".into())
                })?),
            ),
            None => (name, None),
        };
        let mut url = self.endpoint.clone();
        let by_id = base.starts_with("ocid1.vaultsecret.");
        let prefix = self.endpoint.path().trim_end_matches('/');
        if by_id {
            url.set_path(&format!("{prefix}{API}/secretbundles/{base}"));
        } else {
            let vault = self.vault_id.as_deref().ok_or_else(|| {
                OciError::Config(
                    "reading an OCI secret by name needs OCI_VAULT_ID (or give its OCID)".into(),
                )
            })?;
            url.set_path(&format!("{prefix}{API}/secretbundles/actions/getByName"));
            url.query_pairs_mut()
                .append_pair("secretName", base)
                .append_pair("vaultId", vault);
        }
        if let Some(v) = version {
            url.query_pairs_mut()
                .append_pair("versionNumber", &v.to_string());
        }
        let principal;
        let signer = match &self.api_signer {
            Some(s) => s,
            None => {
                principal = OciSecrets::principal_signer(&self.auth)?;
                &principal
            }
        };
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&jiff::Timestamp::now())
            .map_err(|e| OciError::Config(e.to_string()))?;
        let (method, body) = if by_id {
            (reqwest::Method::GET, None)
        } else {
            (reqwest::Method::POST, Some(("application/json", &b""[..])))
        };
        let signed = signer.sign(method.as_str(), &url, &date, body)?;
        let mut request = self
            .http
            .request(method, url)
            .header("accept", "application/json");
        for (name, value) in signed.headers {
            request = request.header(name, value);
        }
        if body.is_some() {
            request = request.body(Vec::new());
        }
        let transport =
            |e: reqwest::Error| OciError::Transport(alarm_domain::error::chain(&e.without_url()));
        let mut answer = request.send().await.map_err(transport)?;
        let status = answer.status().as_u16();
        // Read in chunks and stopped at the bound: a chunked answer has no
        // length to check first.
        let mut bytes = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(OciError::Bundle("answer is larger than any secret bundle"));
            }
            bytes.extend_from_slice(&chunk);
        }
        let json = serde_json::from_slice::<serde_json::Value>(&bytes);
        if status != 200 {
            // The status first: a proxy's HTML error page has no JSON.
            return Err(OciError::Status {
                code: status,
                what: status_meaning(status),
                code_text: json
                    .ok()
                    .as_ref()
                    .and_then(|j| j.get("code"))
                    .and_then(|c| c.as_str())
                    .filter(|c| c.len() <= 64)
                    .map(str::to_owned),
            });
        }
        let json = json.map_err(|_| OciError::Bundle("answer is not JSON"))?;
        let content = json
            .get("secretBundleContent")
            .ok_or(OciError::Bundle("has no content"))?;
        if content.get("contentType").and_then(|t| t.as_str()) != Some("BASE64") {
            return Err(OciError::Bundle("content is not of type BASE64"));
        }
        let decoded = content
            .get("content")
            .and_then(|c| c.as_str())
            .and_then(|c| STANDARD.decode(c).ok())
            .ok_or(OciError::Bundle("content is not base64"))?;
        String::from_utf8(decoded)
            .map(SecretString::from)
            .map_err(|_| OciError::Bundle("content is not UTF-8 text"))
    }
}

#[async_trait]
impl SecretProvider for OciSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let inner = self.inner.clone();
        let owned = name.to_owned();
        let read = runtime::run(async move { inner.read(&owned).await })
            .await
            .unwrap_or_else(|| Err(OciError::Transport("the OCI client panicked".into())));
        match read {
            Ok(v) => Ok(v),
            // OCI answers 404 both for a secret that does not exist and
            // one the principal may not read: the reference is then
            // missing, and the message says both.
            Err(OciError::Status { code: 404, .. }) => Err(SecretError::NotFound(name.to_owned())),
            Err(e) => Err(SecretError::Unexpected(Box::new(e))),
        }
    }
}
