//! `alarm-migrate`: applies, rolls back, lists or rebuilds the schema of the database in `DATABASE_URL` (or the embedded default's SQLite file), and backs it up or restores it, with the same settings declarations as the servers.

use std::path::PathBuf;
use std::process::ExitCode;

use alarm_appkit::ConfigError;
use alarm_appkit::settings::ConfigFile;
use std::sync::Arc;

use alarm_host::groups::{Database, DatabaseArgs, SECRETS_HELP};
use alarm_host::secrets::{SecretRefs, SecretsArgs};
use alarm_sql::Sql;
use clap::{Parser, Subcommand};

/// Runs Smart Alarm's schema migrations against the database in DATABASE_URL (postgres://… or
/// sqlite://…; a SQLite file is created on first use), or, without it, the embedded default's
/// SQLite file under DATA_DIR.
#[derive(Debug, Parser)]
#[command(name = "alarm-migrate", version, after_help = SECRETS_HELP)]
struct Args {
    /// TOML file with settings: the long option names with underscores as keys.
    #[arg(long, env = "ALARM_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    secrets: SecretsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to do with the schema.
#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Apply every pending migration (the default; idempotent).
    Up,
    /// Roll back the last STEPS applied migrations.
    Down {
        /// How many, at least 1.
        #[arg(default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        steps: u32,
    },
    /// List every migration and whether it is applied.
    Status {
        /// Exit 1 when any migration is pending: the blue-green switch waits
        /// for `up` (a database migrated past this release is an error
        /// either way).
        #[arg(long)]
        check: bool,
    },
    /// Drop every table and apply all migrations again (destroys data).
    Fresh,
    /// Seal the stored webhook secrets that are plain or under an older
    /// data key with the current DATA_ENCRYPTION_KEYS key (online,
    /// resumable). Run it once every process runs this release: older ones
    /// cannot open a sealed secret.
    Reseal,
    /// Write a consistent copy of the whole database into DIR while the apps
    /// run (SQLite: VACUUM INTO; PostgreSQL: pg_dump custom format on one
    /// snapshot), with a manifest of every table's rows and checksum and a
    /// `sha256sum -c` file, then remove backups older than KEEP_DAYS (the
    /// newest is always kept).
    Backup {
        /// The folder for backups (created owner-only when missing).
        #[arg(long, env = "BACKUP_DIR")]
        dir: PathBuf,
        /// Days a backup is kept.
        #[arg(long, env = "BACKUP_KEEP_DAYS", default_value_t = 30,
              value_parser = clap::value_parser!(u32).range(1..=3650))]
        keep_days: u32,
    },
    /// Replace the database by a backup after checking it against its
    /// manifest; every table's rows and checksum are compared. Stop
    /// alarm-http and alarm-worker first (a SQLite file in use is refused),
    /// and run `up` afterwards if the backup predates this release.
    Restore {
        /// The backup file (its `.json` manifest must be beside it).
        file: PathBuf,
    },
}

fn settings(args: &Args) -> Result<Database, ConfigError> {
    let mut file = ConfigFile::read(args.config.as_deref())?;
    let (refs, _) = SecretRefs::load(&args.secrets, &mut file)?;
    let database = Database::new(args.database.resolve(&mut file, &refs)?, &refs)?;
    file.finish()?;
    Ok(database)
}

async fn run(database: Database, command: Command) -> Result<(), String> {
    let config = database.config().map_err(|e| e.to_string())?;
    if database.embedded() {
        let dir = &database.values.data_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if let Command::Restore { file } = &command {
        // Before any connection: a SQLite file must not be held open by
        // this process while it is replaced.
        return restored(&config, file).await;
    }
    // The keys before the connection: a missing or bad key is said at once.
    let sealer = matches!(command, Command::Reseal)
        .then(|| database.sealer())
        .transpose()?;
    let sql = Sql::connect(&config).await.map_err(|e| e.to_string())?;
    let target = config.redacted_url();
    match command {
        Command::Up => {
            sql.migrate_up().await.map_err(|e| e.to_string())?;
            println!("all migrations applied to {target}");
        }
        Command::Reseal => {
            // Every column it seals must exist.
            let pending = sql.pending_migrations().await.map_err(|e| e.to_string())?;
            if !pending.is_empty() {
                return Err(format!(
                    "the schema is behind ({} pending); run `alarm-migrate up` first",
                    pending.len()
                ));
            }
            if let Some(sealer) = sealer {
                resealed(&sql.clone().with_sealer(Arc::new(sealer))).await?;
            }
        }
        Command::Down { steps } => {
            sql.migrate_down(steps).await.map_err(|e| e.to_string())?;
            println!("rolled back {steps} migration(s) on {target}");
        }
        Command::Fresh => {
            sql.migrate_fresh().await.map_err(|e| e.to_string())?;
            println!("dropped every table and applied all migrations on {target}");
        }
        Command::Backup { dir, keep_days } => {
            backed_up(&sql, &config, &dir, keep_days).await?;
        }
        Command::Restore { .. } => unreachable!("handled before connecting"),
        Command::Status { check } => {
            let list = sql.migration_status().await.map_err(|e| e.to_string())?;
            for m in &list {
                println!(
                    "{:<10} {}",
                    if m.applied { "applied" } else { "pending" },
                    m.name
                );
            }
            let pending = list.iter().filter(|m| !m.applied).count();
            println!("{} migration(s), {pending} pending", list.len());
            if check && pending > 0 {
                sql.close().await;
                return Err(format!(
                    "{pending} migration(s) pending on {target}: run `alarm-migrate up` first"
                ));
            }
        }
    }
    sql.close().await;
    Ok(())
}

/// Takes a backup, says what it holds, then applies the retention.
async fn backed_up(
    sql: &Sql,
    config: &alarm_sql::DbConfig,
    dir: &std::path::Path,
    keep_days: u32,
) -> Result<(), String> {
    let now = jiff::Timestamp::now();
    let manifest = sql
        .backup(config, dir, now)
        .await
        .map_err(|e| format!("backup failed: {e}"))?;
    let rows: u64 = manifest.tables.values().map(|t| t.rows).sum();
    println!(
        "backup {} written: {} bytes, sha256 {}, {} tables, {rows} rows, schema at {}",
        dir.join(&manifest.file).display(),
        manifest.bytes,
        manifest.sha256,
        manifest.tables.len(),
        manifest.migration.as_deref().unwrap_or("(no migration)")
    );
    let keep = jiff::SignedDuration::from_hours(24 * i64::from(keep_days));
    let pruned = alarm_sql::backup::prune(dir, keep, now)
        .map_err(|e| format!("the backup is written, but retention failed: {e}"))?;
    for file in &pruned.removed {
        println!("removed {} (older than {keep_days} days)", file.display());
    }
    println!("{} backup(s) kept in {}", pruned.kept, dir.display());
    Ok(())
}

/// Restores a backup and says what came back and what the schema needs.
async fn restored(config: &alarm_sql::DbConfig, file: &std::path::Path) -> Result<(), String> {
    let done = alarm_sql::backup::restore(config, file, jiff::Timestamp::now())
        .await
        .map_err(|e| {
            if e.left_unchanged() {
                format!("restore failed, the database is unchanged: {e}")
            } else {
                format!("restore committed, then its check failed: {e}")
            }
        })?;
    let rows: u64 = done.manifest.tables.values().map(|t| t.rows).sum();
    println!(
        "restored {} into {}: {} tables, {rows} rows, every checksum equal; taken at {}",
        file.display(),
        config.redacted_url(),
        done.manifest.tables.len(),
        done.manifest.taken_at
    );
    if let Some(kept) = done.kept.filter(|k| k.exists()) {
        println!("the replaced database file is kept as {}", kept.display());
    }
    let sql = Sql::connect(config).await.map_err(|e| e.to_string())?;
    let pending = sql.pending_migrations().await.map_err(|e| e.to_string());
    sql.close().await;
    match pending?.len() {
        0 => println!("the schema is current"),
        n => println!("{n} migration(s) pending: run `alarm-migrate up` before the apps start"),
    }
    Ok(())
}

/// Seals what is not sealed with the current key and says how many.
async fn resealed(sql: &Sql) -> Result<(), String> {
    let done = alarm_host::reseal(sql).await?;
    println!(
        "webhook secrets: {} sealed, {} moved to the current key, {} already current",
        done.sealed, done.rekeyed, done.current
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let database = match settings(&args) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("alarm-migrate: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        println!("{}", database.describe().join("\n"));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("alarm-migrate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(database, args.command.clone().unwrap_or(Command::Up))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alarm-migrate: {e}");
            ExitCode::FAILURE
        }
    }
}
