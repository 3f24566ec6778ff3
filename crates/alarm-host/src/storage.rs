//! Object storage settings (where sounds and upload parts live: the local file system by default, any S3-compatible service, or OCI Object Storage) and the upload limits that protect the API's memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alarm_appkit::{ConfigError, bad, secret_env};
use alarm_domain::model::MAX_UPLOAD_BYTES;
use alarm_domain::ports::{BlobStore, PartStore};
pub use alarm_storage::Spool;
use alarm_storage::{Backend, ObjectParts, OciSettings, S3Settings};
use secrecy::SecretString;

alarm_appkit::settings! {
    /// Object storage: sounds and the parts of uploads in progress.
    pub struct StorageArgs => StorageValues {
        /// local, s3 (any S3-compatible service) or oci (OCI Object Storage through its S3 compatibility endpoint)
        storage_backend: String = "local", "STORAGE_BACKEND";
        /// Folder of the local backend [default: <DATA_DIR>/objects]
        storage_dir: Option<PathBuf>, "STORAGE_DIR";
        /// Bucket (s3, oci); it must exist [default: none]
        storage_bucket: Option<String>, "STORAGE_BUCKET";
        /// s3: the signing region; oci: the region id, e.g. sa-saopaulo-1 [default: us-east-1 for s3; required for oci]
        storage_region: Option<String>, "STORAGE_REGION";
        /// s3: the service's URL, e.g. http://127.0.0.1:9000 (http only for a service on this host or network) [default: AWS's endpoint for the region]
        storage_endpoint: Option<String>, "STORAGE_ENDPOINT";
        /// s3: path-style addressing (https://host/bucket/key), which most self-hosted services need
        storage_path_style: bool = "false", "STORAGE_PATH_STYLE", switch;
        /// oci: the tenancy's Object Storage namespace [default: none]
        storage_namespace: Option<String>, "STORAGE_NAMESPACE";
        /// s3, oci: the access key id (an OCI Customer Secret Key's access key), with STORAGE_SECRET_ACCESS_KEY [default: none]
        storage_access_key_id: Option<String>, "STORAGE_ACCESS_KEY_ID";
        /// s3, oci: the local folder that keeps uploads and sounds while the object store is down, until they are pushed to it [default: <DATA_DIR>/spool]
        storage_spool_dir: Option<PathBuf>, "STORAGE_SPOOL_DIR";
        /// s3, oci: no spool (e.g. on a disk that does not outlive the process): a PATCH that meets the store down is answered 503 and the client resumes later
        storage_no_spool: bool = "false", "STORAGE_NO_SPOOL", switch;
        /// Mebibytes all uploads in progress may buffer together; a PATCH that would pass it is answered 503 with Retry-After (each PATCH reserves 6 MiB: a 5 MiB part and the chunk arriving)
        upload_memory_megabytes: u32 = "96", "UPLOAD_MEMORY_MEGABYTES", 6..=4096;
        /// PATCHes one account may have in progress at once (so one account cannot take the whole upload memory)
        upload_patches_per_user: u32 = "2", "UPLOAD_PATCHES_PER_USER", 1..=64;
        /// Seconds one PATCH may last; then it ends as cut off, what arrived is kept and the client resumes (so a trickling client cannot hold its share of the upload memory)
        upload_patch_max_seconds: u64 = "600", "UPLOAD_PATCH_MAX_SECONDS", 10..=86_400;
    }
}

/// The help text of the storage secret.
pub const STORAGE_SECRET_HELP: &str =
    "  STORAGE_SECRET_ACCESS_KEY       the secret of STORAGE_ACCESS_KEY_ID (s3, oci)
  STORAGE_SECRET_ACCESS_KEY_FILE  a file holding it";

/// The resolved storage settings.
#[derive(Debug)]
pub struct Storage {
    /// Where the objects live.
    pub backend: Backend,
    /// The spool in front of a remote backend (`None`: local backends,
    /// or `STORAGE_NO_SPOOL`).
    pub spool_dir: Option<PathBuf>,
    /// The declared settings.
    pub values: StorageValues,
}

/// Whether the objects live off this machine (a store whose bytes survive
/// the machine: what a spool fronts and what a function needs).
fn remote(backend: &Backend) -> bool {
    matches!(backend, Backend::S3(_) | Backend::Oci(_))
}

impl Storage {
    /// Whether the objects live off this machine (`s3` or `oci`).
    #[must_use]
    pub fn remote(&self) -> bool {
        remote(&self.backend)
    }
}

impl StorageArgs {
    /// Resolves the group and builds the backend; `data_dir` is where the
    /// local backend goes by default.
    ///
    /// # Errors
    /// The first bad setting, named.
    pub fn load(
        &self,
        file: &mut alarm_appkit::settings::ConfigFile,
        resolver: &dyn alarm_appkit::settings::Resolve,
        data_dir: &Path,
    ) -> Result<Storage, ConfigError> {
        let values = self.resolve(file, resolver)?;
        let secret = secret_env(
            "STORAGE_SECRET_ACCESS_KEY",
            "STORAGE_SECRET_ACCESS_KEY_FILE",
            resolver,
        )?;
        let backend = backend(&values, secret, data_dir)?;
        let spool_dir = (remote(&backend) && !values.storage_no_spool).then(|| {
            values
                .storage_spool_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("spool"))
        });
        Ok(Storage {
            backend,
            spool_dir,
            values,
        })
    }
}

fn required(
    value: &Option<String>,
    setting: &'static str,
    backend: &str,
) -> Result<String, ConfigError> {
    value
        .clone()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            bad(
                setting,
                format!("is required with STORAGE_BACKEND={backend}"),
            )
        })
}

fn backend(
    v: &StorageValues,
    secret: Option<SecretString>,
    data_dir: &Path,
) -> Result<Backend, ConfigError> {
    let kind = v.storage_backend.trim().to_ascii_lowercase();
    let keys = |kind: &str| -> Result<(String, SecretString), ConfigError> {
        let id = required(&v.storage_access_key_id, "STORAGE_ACCESS_KEY_ID", kind)?;
        let secret = secret.clone().ok_or_else(|| {
            bad(
                "STORAGE_SECRET_ACCESS_KEY",
                format!("is required with STORAGE_BACKEND={kind}"),
            )
        })?;
        Ok((id, secret))
    };
    match kind.as_str() {
        "local" => Ok(Backend::Local {
            dir: v
                .storage_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("objects")),
        }),
        "s3" => {
            let (access_key_id, secret_access_key) = keys("s3")?;
            Ok(Backend::S3(S3Settings {
                endpoint: v.storage_endpoint.clone(),
                region: v
                    .storage_region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".to_owned()),
                bucket: required(&v.storage_bucket, "STORAGE_BUCKET", "s3")?,
                path_style: v.storage_path_style,
                access_key_id,
                secret_access_key,
            }))
        }
        "oci" => {
            let (access_key_id, secret_key) = keys("oci")?;
            Ok(Backend::Oci(OciSettings {
                namespace: required(&v.storage_namespace, "STORAGE_NAMESPACE", "oci")?,
                region: required(&v.storage_region, "STORAGE_REGION", "oci")?,
                bucket: required(&v.storage_bucket, "STORAGE_BUCKET", "oci")?,
                access_key_id,
                secret_key,
            }))
        }
        other => Err(bad(
            "STORAGE_BACKEND",
            format!("`{other}` is none of local, s3, oci"),
        )),
    }
}

/// The blob and part stores of an opened backend.
pub struct Stores {
    /// Sounds' bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Uploads' parts.
    pub parts: Arc<dyn PartStore>,
    /// The spool in front of a remote store, whose pusher the app runs
    /// ([`Spool::run`]) and whose backlog `/health` reports.
    pub spool: Option<Arc<Spool>>,
}

impl Storage {
    /// Opens the backend (nothing is contacted yet: a store that is down
    /// shows on first use and in `/health`).
    ///
    /// # Errors
    /// An unusable setting or a local folder that cannot be made, named.
    pub fn open(&self) -> Result<Stores, String> {
        let opened = self
            .backend
            .open_with_multipart()
            .map_err(|e| format!("object storage ({}): {e}", self.backend.name()))?;
        let parts = ObjectParts::new(opened, MAX_UPLOAD_BYTES);
        let Some(dir) = &self.spool_dir else {
            return Ok(Stores {
                blobs: parts.blob_store(),
                parts: Arc::new(parts),
                spool: None,
            });
        };
        let spool = Arc::new(Spool::new(parts, dir, MAX_UPLOAD_BYTES).map_err(|e| {
            format!(
                "STORAGE_SPOOL_DIR {}: {}",
                dir.display(),
                alarm_domain::error::chain(&e)
            )
        })?);
        Ok(Stores {
            blobs: spool.clone(),
            parts: spool.clone(),
            spool: Some(spool),
        })
    }

    /// The lines of `--print-config` (the secret never shown).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = self.values.describe();
        let secret = match self.backend {
            Backend::S3(_) | Backend::Oci(_) => "[redacted]",
            Backend::Memory | Backend::Local { .. } => "(none)",
        };
        lines.push(format!("storage_secret_access_key = \"{secret}\""));
        lines
    }
}

/// Sets the `storage_spool_pending` gauge from the spool's last count (a
/// metrics scrape cannot wait for a listing of the folder).
pub fn spool_gauge(spool: &Spool) {
    metrics::gauge!("storage_spool_pending").set(spool.last_pending() as f64);
}
