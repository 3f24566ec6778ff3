//! A real S3-compatible server for tests: `s3s-fs` (SigV4 checked) started on a free loopback port over a temporary directory, stoppable and restartable in place.
//!
//! `cargo xtask ci` (so `.ci/run`) installs the pinned `s3s-fs`; on a
//! developer machine without it, [`s3_unavailable`] says why and the tests
//! that need it are counted as skipped. With `CI=true` they never skip: a
//! missing server fails them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use secrecy::SecretString;

use crate::S3Settings;

/// The test server's credentials.
pub const ACCESS_KEY: &str = "alarm-test-key";
const SECRET_KEY: &str = "alarm-test-secret-key-0123456789";

/// The bucket every server starts with.
pub const BUCKET: &str = "alarm-sounds";

/// The `s3s-fs` binary: on `PATH` or in cargo's bin directory.
fn binary() -> Option<PathBuf> {
    let in_cargo = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(in_cargo)
        .map(|dir| dir.join("s3s-fs"))
        .find(|candidate| candidate.is_file())
}

/// Why the S3 tests cannot run here, or `None` when they can (always
/// `None` under `CI=true`: there a missing server is a failure).
pub fn s3_unavailable() -> Option<String> {
    if std::env::var("CI").is_ok_and(|v| v == "true") || binary().is_some() {
        return None;
    }
    Some("s3s-fs is not installed (`cargo xtask ci` installs the release it pins)".into())
}

/// A running `s3s-fs` over a directory of its own, removed on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Option<Child>,
    root: PathBuf,
    port: u16,
}

impl S3Server {
    /// Starts a server with an empty [`BUCKET`] on a free loopback port.
    ///
    /// # Panics
    /// When `s3s-fs` is missing or does not start: a test harness's
    /// failure, reported as such.
    pub fn start() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "alarm-storage-s3-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join(BUCKET)).expect("the server's directory");
        let (child, port) = spawn(&root, 0);
        Self {
            child: Some(child),
            root,
            port,
        }
    }

    /// Settings reaching this server with its credentials.
    pub fn settings(&self) -> S3Settings {
        self.settings_with_secret(SECRET_KEY)
    }

    /// Settings reaching this server with another secret key (refused).
    pub fn settings_with_secret(&self, secret: &str) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint()),
            region: "us-east-1".into(),
            bucket: BUCKET.into(),
            path_style: true,
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SecretString::from(secret.to_owned()),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory the server keeps its objects in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stops the server (its data stays): requests are refused until
    /// [`S3Server::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same port over the same data.
    ///
    /// # Panics
    /// When it does not start (e.g. the port was taken meanwhile).
    pub fn restart(&mut self) {
        self.stop();
        let (child, _) = spawn(&self.root, self.port);
        self.child = Some(child);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Starts `s3s-fs` and waits for the line saying where it listens.
fn spawn(root: &Path, port: u16) -> (Child, u16) {
    let binary = binary().unwrap_or_else(|| {
        panic!(
            "{}",
            s3_unavailable().unwrap_or_else(|| "s3s-fs is not installed".into())
        )
    });
    let mut child = Command::new(binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root)
        .env("RUST_LOG", "s3s_fs=info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("s3s-fs starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (found, listening) = std::sync::mpsc::channel();
    // The log is read on a thread of its own: it reports the port, then
    // keeps draining so a full pipe never blocks the server.
    std::thread::spawn(move || {
        let marker = "server is running at http://";
        let mut found = Some(found);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let port = line.find(marker).and_then(|at| {
                line[at + marker.len()..]
                    .split(|c: char| c.is_whitespace())
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse::<u16>()
                    .ok()
            });
            if let (Some(port), Some(tell)) = (port, found.as_ref()) {
                let _ = tell.send(port);
                found = None;
            }
        }
    });
    match listening.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(port) => (child, port),
        Err(why) => {
            let _ = child.kill();
            let status = child.wait();
            panic!("s3s-fs did not say where it listens ({why}): {status:?}");
        }
    }
}
