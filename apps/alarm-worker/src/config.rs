//! Settings: every one declared once (flag, environment variable, `--config` key, default, range, help) in its group; command line > environment > `--config` file > default; secrets only from the environment or a file they name.

use std::net::SocketAddr;
use std::path::PathBuf;

use alarm_appkit::ConfigError;
use alarm_appkit::settings::ConfigFile;
use alarm_host::groups::{SECRETS_HELP, Server, ServerArgs};
use alarm_host::secrets::{SecretRefs, SecretsArgs, SecretsValues};
use clap::Parser;

/// Smart Alarm worker: rings due alarms and sends their notifications; /health/live and
/// /health/ready on the ops port. Many workers may share one PostgreSQL database: they split
/// the due triggers and each occurrence rings once (one engine per SQLite file: a second
/// one stands by).
#[derive(Debug, Parser)]
#[command(name = "alarm-worker", version, after_help = SECRETS_HELP)]
pub(crate) struct Args {
    /// TOML file with settings: the long option names with underscores as keys.
    #[arg(long, env = "ALARM_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    secrets: SecretsArgs,
}

alarm_appkit::settings! {
    /// The worker's own settings.
    pub(crate) struct WorkerArgs => WorkerValues {
        /// Address of the ops endpoints (/health/live, /health/ready, /metrics)
        ops_listen: SocketAddr = "127.0.0.1:9090", "OPS_LISTEN_ADDR";
    }
}

/// The effective configuration.
pub(crate) struct Settings {
    pub(crate) worker: WorkerValues,
    pub(crate) server: Server,
    secrets: SecretsValues,
    /// The secret providers, for values that change after the start.
    pub(crate) refs: SecretRefs,
}

impl Settings {
    /// Merges the sources and validates every value.
    pub(crate) fn load(args: &Args) -> Result<Self, ConfigError> {
        let mut file = ConfigFile::read(args.config.as_deref())?;
        let (refs, secrets) = SecretRefs::load(&args.secrets, &mut file)?;
        let settings = Self {
            worker: args.worker.resolve(&mut file, &refs)?,
            server: args.server.load(&mut file, &refs)?,
            secrets,
            refs,
        };
        file.finish()?;
        Ok(settings)
    }

    /// The effective configuration, secrets redacted.
    pub(crate) fn describe(&self) -> String {
        [
            self.worker.describe(),
            self.server.describe(),
            self.secrets.describe(),
        ]
        .concat()
        .join("\n")
    }
}
