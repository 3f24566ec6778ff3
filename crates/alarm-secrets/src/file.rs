//! The file provider: a directory with one secret per file, as Docker secrets and Kubernetes secret volumes mount them.

use std::collections::HashSet;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use alarm_domain::ports::{SecretError, SecretProvider};
use async_trait::async_trait;
use secrecy::SecretString;

/// The largest secret file read: a secret is a password, a key or a
/// certificate, never a large file.
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Secrets from the files of one directory: the secret `db-password` is
/// the file `DIR/db-password`, its trailing newline trimmed. A missing
/// directory holds no secret. A file that group or others may read is
/// used, with a warning (once per secret).
#[derive(Debug)]
pub struct FileSecrets {
    dir: PathBuf,
    warned: Mutex<HashSet<String>>,
}

impl FileSecrets {
    /// The provider over `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            warned: Mutex::new(HashSet::new()),
        }
    }

    /// The directory read.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn warn_once(&self, name: &str, mode: u32) {
        let first = self
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned());
        if !first {
            return;
        }
        let text = format!(
            "the secret file `{}` has mode {mode:o}: others than its owner may read it (0600 or narrower is expected)",
            self.dir.join(name).display()
        );
        // Settings are resolved before logging starts: say it on stderr
        // then, like the other start-up messages.
        if tracing::dispatcher::has_been_set() {
            tracing::warn!(secret = name, mode = format!("{mode:o}"), "{text}");
        } else {
            eprintln!("warning: {text}");
        }
    }
}

/// Why a secret file could not be used (never its content).
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{0}` is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge(String),
    #[error("`{0}` is not UTF-8 text")]
    NotText(String),
}

#[async_trait]
impl SecretProvider for FileSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        if !crate::valid_name(name) {
            return Err(SecretError::NotFound(name.to_owned()));
        }
        let path = self.dir.join(name);
        let shown = path.display().to_string();
        let io = |source: std::io::Error| {
            SecretError::Unexpected(Box::new(Unreadable::Io {
                path: shown.clone(),
                source,
            }))
        };
        // Small files read once at start and at a refresh: the blocking
        // read is shorter than handing it to another thread.
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Err(SecretError::NotFound(name.to_owned())),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                return Err(SecretError::NotFound(name.to_owned()));
            }
            Err(e) => return Err(io(e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            self.warn_once(name, mode);
        }
        // Bounded while reading (a size read first could be outgrown).
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(io)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(SecretError::Unexpected(Box::new(Unreadable::TooLarge(
                shown,
            ))));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| SecretError::Unexpected(Box::new(Unreadable::NotText(shown.clone()))))?;
        Ok(SecretString::from(
            text.trim_end_matches(['\n', '\r']).to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "alarm-secrets-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[tokio::test]
    async fn files_are_read_trimmed_and_bounded() {
        let d = dir("files");
        std::fs::write(d.join("db-password"), "s3cret\n").expect("write");
        std::fs::set_permissions(
            d.join("db-password"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        std::fs::write(d.join("wide"), "w1de\r\n").expect("write");
        std::fs::set_permissions(d.join("wide"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        std::fs::write(d.join("big"), vec![b'x'; MAX_FILE_BYTES as usize + 1]).expect("write");
        std::fs::write(d.join("binary"), [0xff, 0xfe]).expect("write");
        std::fs::create_dir(d.join("sub")).expect("dir");
        let files = FileSecrets::new(&d);
        assert_eq!(
            files
                .get("db-password")
                .await
                .expect("read")
                .expose_secret(),
            "s3cret"
        );
        // A wider mode is used, and warned about once.
        assert_eq!(
            files.get("wide").await.expect("read").expose_secret(),
            "w1de"
        );
        assert!(files.warned.lock().expect("lock").contains("wide"));
        assert!(!files.warned.lock().expect("lock").contains("db-password"));
        for missing in ["nope", "sub", "../db-password", ".hidden"] {
            assert!(
                matches!(files.get(missing).await, Err(SecretError::NotFound(_))),
                "{missing}"
            );
        }
        for bad in ["big", "binary"] {
            let Err(SecretError::Unexpected(e)) = files.get(bad).await else {
                panic!("{bad} is refused");
            };
            assert!(e.to_string().contains(bad), "{e}");
        }
        // A directory that does not exist holds no secret.
        let gone = FileSecrets::new(d.join("absent"));
        assert!(matches!(
            gone.get("db-password").await,
            Err(SecretError::NotFound(_))
        ));
        let _ = std::fs::remove_dir_all(d);
    }
}
