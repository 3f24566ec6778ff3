//! Settings: every one declared once (flag, environment variable, `--config` key, default, range, help) in its group; command line > environment > `--config` file > default; secrets only from the environment or a file they name.

use std::net::SocketAddr;
use std::path::PathBuf;

use alarm_appkit::settings::{AsWritten, ConfigFile};
use alarm_appkit::{ConfigError, ProcessArgs, ProcessValues};
use alarm_host::groups::{
    Database, DatabaseArgs, EngineArgs, EngineValues, Notify, NotifyArgs, SECRETS_HELP, SchemaArgs,
    SchemaValues,
};
use alarm_runner::RunnerConfig;
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
    process: ProcessArgs,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    schema: SchemaArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    notify: NotifyArgs,
}

alarm_appkit::settings! {
    /// The worker's own settings.
    pub(crate) struct WorkerArgs => WorkerValues {
        /// Address of the ops endpoints (/health/live, /health/ready)
        ops_listen: SocketAddr = "127.0.0.1:9090", "OPS_LISTEN_ADDR";
    }
}

/// The effective configuration.
pub(crate) struct Settings {
    pub(crate) worker: WorkerValues,
    pub(crate) process: ProcessValues,
    pub(crate) database: Database,
    pub(crate) schema: SchemaValues,
    engine: EngineValues,
    pub(crate) notify: Notify,
}

impl Settings {
    /// Merges the sources and validates every value.
    pub(crate) fn load(args: &Args) -> Result<Self, ConfigError> {
        let mut file = ConfigFile::read(args.config.as_deref())?;
        let resolver = &AsWritten;
        let settings = Self {
            worker: args.worker.resolve(&mut file, resolver)?,
            process: args.process.load(&mut file, resolver)?,
            database: Database::new(args.database.resolve(&mut file, resolver)?)?,
            schema: args.schema.resolve(&mut file, resolver)?,
            engine: args.engine.resolve(&mut file, resolver)?,
            notify: Notify::new(args.notify.resolve(&mut file, resolver)?)?,
        };
        file.finish()?;
        Ok(settings)
    }

    /// The engine's configuration.
    pub(crate) fn runner(&self) -> RunnerConfig {
        self.engine.runner(self.process.shutdown_timeout())
    }

    /// The effective configuration, secrets redacted.
    pub(crate) fn describe(&self) -> String {
        [
            self.worker.describe(),
            self.process.describe(),
            self.database.describe(),
            self.schema.describe(),
            self.engine.describe(),
            self.notify.describe(),
        ]
        .concat()
        .join("\n")
    }
}
