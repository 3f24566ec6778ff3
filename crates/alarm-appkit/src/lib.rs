//! What the Smart Alarm apps share, and nothing else: settings plumbing, logging, signals and the runtime, so `alarm-http` and `alarm-worker` read their configuration and stop the same way.
//!
//! Business logic never lives here (the apps have none either); this crate
//! knows no port, adapter or domain type.

pub mod metrics;
pub mod redact;
pub mod settings;

use std::io::IsTerminal;
use std::process::ExitCode;

use secrecy::SecretString;
use serde::Deserialize;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

impl LogFormat {
    /// The lowercase name, as written in the settings.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Auto => "auto",
            LogFormat::Json => "json",
            LogFormat::Pretty => "pretty",
        }
    }
}

/// A setting that cannot be used, named as the operator wrote it.
#[derive(Debug)]
pub struct ConfigError {
    /// The setting (environment name or option).
    pub setting: &'static str,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid configuration: {}: {}",
            self.setting, self.reason
        )
    }
}

/// A comma-separated list of networks (`10.0.0.0/8`; a bare address is its
/// own /32 or /128), each one checked.
///
/// # Errors
/// The first item that is not a network, naming `setting`.
pub fn cidrs(setting: &'static str, items: &[String]) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    items
        .iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| bad(setting, format!("`{s}` is not a CIDR like 10.0.0.0/8")))
        })
        .collect()
}

/// A [`ConfigError`].
pub fn bad(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        reason: reason.into(),
    }
}

/// A secret from the environment variable `name`, or from the file named
/// by `file_var` (one trailing newline dropped), straight into a
/// [`SecretString`], its `{vault:…}` references replaced by `resolver`;
/// `None` when neither is set.
///
/// # Errors
/// The file cannot be read (named by `file_var`), or a reference cannot
/// be resolved (named by `name`); the secret never appears.
pub fn secret_env(
    name: &'static str,
    file_var: &'static str,
    resolver: &dyn settings::Resolve,
) -> Result<Option<SecretString>, ConfigError> {
    let raw = if let Ok(v) = std::env::var(name) {
        SecretString::from(v)
    } else {
        match std::env::var(file_var) {
            Ok(path) => std::fs::read_to_string(&path)
                .map(|s| SecretString::from(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| bad(file_var, format!("cannot read `{path}`: {e}")))?,
            Err(_) => return Ok(None),
        }
    };
    let value = resolver.resolve_secret(name, raw)?;
    redact::register(&value);
    Ok(Some(value))
}

settings! {
    /// What every app process has: logging and shutdown.
    pub struct ProcessArgs => ProcessValues {
        /// Log format: auto (pretty on a terminal, JSON otherwise), json or pretty
        log_format: LogFormat = "auto", "LOG_FORMAT";
        /// Log filter, e.g. `info` or `alarm_runner=debug`
        log_level: String = "info", "LOG_LEVEL";
        /// Seconds given to finish or release in-flight work after SIGTERM/SIGINT
        shutdown_timeout_seconds: u64 = "10", "SHUTDOWN_TIMEOUT_SECONDS", 1..=300;
        /// Record Prometheus metrics and serve them at /metrics on the ops listener (false: nothing is recorded, /metrics answers 404)
        metrics: bool = "true", "METRICS";
    }
}

impl ProcessArgs {
    /// The process settings, the log filter checked.
    ///
    /// # Errors
    /// The first bad setting.
    pub fn load(
        &self,
        file: &mut settings::ConfigFile,
        resolver: &dyn settings::Resolve,
    ) -> Result<ProcessValues, ConfigError> {
        let values = self.resolve(file, resolver)?;
        check_log_level(&values.log_level)?;
        Ok(values)
    }
}

impl ProcessValues {
    /// The shutdown timeout.
    pub fn shutdown_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_timeout_seconds)
    }
}

/// Checks a `LOG_LEVEL` filter.
///
/// # Errors
/// Not a tracing filter.
pub fn check_log_level(level: &str) -> Result<(), ConfigError> {
    tracing_subscriber::EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| bad("LOG_LEVEL", e.to_string()))
}

/// Logging and tracing of one process; [`Logging::shutdown`] exports the
/// spans still queued.
#[derive(Debug)]
pub struct Logging {
    tracing: Option<alarm_telemetry::Tracing>,
}

impl Logging {
    /// Whether spans are exported (the `OTEL_*` variables asked for it).
    pub fn traces(&self) -> bool {
        self.tracing.is_some()
    }

    /// Exports the spans still queued; call once the work is done.
    pub fn shutdown(self) {
        if let Some(t) = self.tracing {
            t.shutdown();
        }
    }
}

/// Installs the tracing subscriber: log lines on stderr filtered by
/// `level`, and, when the `OTEL_*` variables ask for it, the OTLP span
/// pipeline (which sees every span at INFO and above, whatever `level`
/// says: a quiet log does not thin out the traces).
///
/// # Errors
/// The span pipeline cannot be built; the message names the setting.
pub fn init_logging(
    level: &str,
    format: LogFormat,
    service: &'static str,
) -> Result<Logging, String> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    // Every line passes the scrubber: no registered secret is written.
    let lines = tracing_subscriber::fmt::layer().with_writer(redact::ScrubbedStderr);
    let lines: Boxed = if json {
        lines
            .json()
            .with_current_span(true)
            .flatten_event(true)
            .with_filter(filter)
            .boxed()
    } else {
        lines.with_filter(filter).boxed()
    };
    let tracing = alarm_telemetry::Tracing::from_env(service, env!("CARGO_PKG_VERSION"))?;
    let mut layers = vec![lines];
    if let Some(t) = &tracing {
        layers.push(t.layer().boxed());
    }
    tracing_subscriber::registry().with(layers).init();
    redact::install_panic_hook();
    Ok(Logging { tracing })
}

/// Runs `work` on a multi-threaded runtime; an error is logged and printed
/// as `<app>: <error>` and becomes exit code 1.
pub fn run<F>(app: &str, work: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{app}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{app} stopped");
            eprintln!("{app}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutdown requested");
}

/// A stop signal shared by the parts of an app (server, engine): it fires
/// on SIGTERM/SIGINT, and each part awaits [`Stop::wait`].
#[derive(Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// Starts listening for the signals.
    pub fn on_signals() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = tx.send(true);
        });
        Self(rx)
    }

    /// Resolves once the stop was signalled.
    pub async fn wait(self) {
        let mut rx = self.0;
        let _ = rx.wait_for(|s| *s).await;
    }
}
