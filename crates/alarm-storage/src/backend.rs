//! The backends an operator chooses between, and how each becomes an `object_store` client.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use secrecy::{ExposeSecret, SecretString};

/// Why a backend could not be opened. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A setting is unusable; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// The client could not be built or the directory made.
    #[error("the {backend} object store could not be opened")]
    Open {
        /// `local`, `s3` or `oci`.
        backend: &'static str,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An S3-compatible service: AWS, MinIO, Ceph, `s3s-fs`, …
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// The service's URL, e.g. `http://127.0.0.1:9000`; `None` is AWS's
    /// own endpoint for the region. `http://` is accepted (a service on
    /// the same host or network); anything else must be `https://`.
    pub endpoint: Option<String>,
    /// The signing region, e.g. `us-east-1`.
    pub region: String,
    /// The bucket (it must exist).
    pub bucket: String,
    /// `https://host/bucket/key` addressing rather than
    /// `https://bucket.host/key` (most self-hosted services need it).
    pub path_style: bool,
    /// The access key id (not a secret: it names the key).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
}

/// OCI Object Storage through its S3 compatibility API.
#[derive(Debug, Clone)]
pub struct OciSettings {
    /// The tenancy's Object Storage namespace.
    pub namespace: String,
    /// The region id, e.g. `sa-saopaulo-1`.
    pub region: String,
    /// The bucket (it must exist).
    pub bucket: String,
    /// The Customer Secret Key's access key.
    pub access_key_id: String,
    /// The Customer Secret Key's secret.
    pub secret_key: SecretString,
}

impl OciSettings {
    /// Oracle's S3 compatibility endpoint for the namespace and region.
    pub fn endpoint(&self) -> String {
        format!(
            "https://{}.compat.objectstorage.{}.oraclecloud.com",
            self.namespace, self.region
        )
    }
}

/// Where blobs live.
#[derive(Debug, Clone)]
pub enum Backend {
    /// In this process's memory (tests; lost at exit).
    Memory,
    /// Files under a directory (the embedded default: `DATA_DIR/blobs`).
    Local {
        /// The directory, made if missing.
        dir: PathBuf,
    },
    /// Any S3-compatible service.
    S3(S3Settings),
    /// OCI Object Storage.
    Oci(OciSettings),
}

/// How long one request may take and how often a failed one is retried:
/// short enough that a store that is down is known in seconds, not in the
/// client's default of minutes.
fn client_limits() -> (ClientOptions, RetryConfig) {
    let options = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(60));
    let retry = RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(15),
        ..RetryConfig::default()
    };
    (options, retry)
}

/// A name that goes into a URL's host or path: letters, digits, `-`,
/// `_`, `.`; 1 to 256 of them.
fn check_name(setting: &str, value: &str) -> Result<(), BackendError> {
    let fine = !value.is_empty()
        && value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(BackendError::Invalid(format!(
            "{setting} must be 1 to 256 letters, digits, '-', '_' or '.'"
        )))
    }
}

impl Backend {
    /// The backend's short name, as settings spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Local { .. } => "local",
            Self::S3(_) => "s3",
            Self::Oci(_) => "oci",
        }
    }

    /// A client of this backend. Nothing is contacted yet.
    ///
    /// # Errors
    /// An unusable setting, named; a directory that cannot be made.
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>, BackendError> {
        self.open_with_multipart().map(|(store, _)| store)
    }

    /// [`Backend::open`], and the same client as a store of durable
    /// multipart uploads when the backend has them (memory, S3, OCI; the
    /// local file system has none).
    ///
    /// # Errors
    /// As [`Backend::open`].
    pub fn open_with_multipart(&self) -> Result<Opened, BackendError> {
        match self {
            Self::Memory => Ok(both(Arc::new(InMemory::new()))),
            Self::Local { dir } => {
                let open = |source: Box<dyn std::error::Error + Send + Sync>| BackendError::Open {
                    backend: "local",
                    source,
                };
                std::fs::create_dir_all(dir).map_err(|e| open(e.into()))?;
                // fsync: the database may name a part or tail the moment
                // its write returns, so the write must survive a power loss.
                let store = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| open(e.into()))?
                    .with_automatic_cleanup(true)
                    .with_fsync(true);
                Ok((Arc::new(store), None))
            }
            Self::S3(s3) => {
                check_name("S3_BUCKET", &s3.bucket)?;
                check_name("S3_REGION", &s3.region)?;
                let allow_http = match s3.endpoint.as_deref() {
                    None => false,
                    Some(url) if url.starts_with("http://") => true,
                    Some(url) if url.starts_with("https://") => false,
                    Some(_) => {
                        return Err(BackendError::Invalid(
                            "S3_ENDPOINT must be an http:// or https:// URL".into(),
                        ));
                    }
                };
                let builder = AmazonS3Builder::new()
                    .with_region(&s3.region)
                    .with_bucket_name(&s3.bucket)
                    .with_virtual_hosted_style_request(!s3.path_style);
                let builder = match &s3.endpoint {
                    Some(url) => builder.with_endpoint(url),
                    None => builder,
                };
                s3_client(
                    builder,
                    "s3",
                    allow_http,
                    &s3.access_key_id,
                    &s3.secret_access_key,
                )
            }
            Self::Oci(oci) => {
                check_name("OCI_STORAGE_NAMESPACE", &oci.namespace)?;
                check_name("OCI_REGION", &oci.region)?;
                check_name("OCI_STORAGE_BUCKET", &oci.bucket)?;
                // Oracle's compatibility API wants path-style addressing
                // and the region as the signing region.
                let builder = AmazonS3Builder::new()
                    .with_endpoint(oci.endpoint())
                    .with_region(&oci.region)
                    .with_bucket_name(&oci.bucket)
                    .with_virtual_hosted_style_request(false);
                s3_client(builder, "oci", false, &oci.access_key_id, &oci.secret_key)
            }
        }
    }
}

/// A client as both trait objects.
fn both<T: ObjectStore + MultipartStore>(store: Arc<T>) -> Opened {
    (store.clone(), Some(store))
}

/// An opened backend: the object store, and the same client as a
/// multipart store when it is one.
pub type Opened = (Arc<dyn ObjectStore>, Option<Arc<dyn MultipartStore>>);

fn s3_client(
    builder: AmazonS3Builder,
    backend: &'static str,
    allow_http: bool,
    access_key_id: &str,
    secret: &SecretString,
) -> Result<Opened, BackendError> {
    // reqwest is built without a default crypto provider: the workspace's
    // one (ring) is installed here, as the other HTTP clients do.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (options, retry) = client_limits();
    // The client options carry `allow_http` too: set here, after them.
    let options = options.with_allow_http(allow_http);
    let store = builder
        .with_access_key_id(access_key_id)
        .with_secret_access_key(secret.expose_secret())
        .with_client_options(options)
        .with_retry(retry)
        .build()
        .map_err(|e| BackendError::Open {
            backend,
            source: e.into(),
        })?;
    Ok(both(Arc::new(store)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci() -> OciSettings {
        OciSettings {
            namespace: "axaxnpcrorw5".into(),
            region: "sa-saopaulo-1".into(),
            bucket: "alarm-sounds".into(),
            access_key_id: "ocid-key".into(),
            secret_key: SecretString::from("canary-oci-secret-key"),
        }
    }

    #[test]
    fn the_oci_endpoint_is_built_from_namespace_and_region() {
        assert_eq!(
            oci().endpoint(),
            "https://axaxnpcrorw5.compat.objectstorage.sa-saopaulo-1.oraclecloud.com"
        );
        assert!(Backend::Oci(oci()).open().is_ok());
    }

    #[test]
    fn a_name_that_would_change_the_url_is_refused_and_named() {
        let mut bad = oci();
        bad.namespace = "evil.com/x?".into();
        let error = Backend::Oci(bad).open().expect_err("refused");
        assert!(
            error.to_string().contains("OCI_STORAGE_NAMESPACE"),
            "{error}"
        );
        let mut s3 = S3Settings {
            endpoint: Some("ftp://host".into()),
            region: "us-east-1".into(),
            bucket: "b".into(),
            path_style: true,
            access_key_id: "k".into(),
            secret_access_key: SecretString::from("s"),
        };
        let error = Backend::S3(s3.clone()).open().expect_err("refused");
        assert!(error.to_string().contains("S3_ENDPOINT"), "{error}");
        s3.endpoint = Some("http://127.0.0.1:9".into());
        assert!(Backend::S3(s3).open().is_ok());
    }

    #[test]
    fn no_setting_prints_its_secret() {
        let shown = format!("{:?}", Backend::Oci(oci()));
        assert!(!shown.contains("canary-oci-secret-key"), "{shown}");
        assert!(shown.contains("sa-saopaulo-1"), "{shown}");
    }
}
