//! `alarm-admin`: the operator's account commands that need no e-mail (verify an address, grant or revoke the admin role), on the database in `DATABASE_URL` or the embedded default, with the same settings declarations as the servers.

use std::path::PathBuf;
use std::process::ExitCode;

use alarm_appkit::ConfigError;
use alarm_appkit::settings::ConfigFile;
use alarm_domain::model::{Email, Role};
use alarm_domain::services::{ServiceError, UserService};
use alarm_host::groups::{
    AccountArgs, Database, DatabaseArgs, SECRETS_HELP, SchemaArgs, SchemaValues,
};
use alarm_host::secrets::{SecretRefs, SecretsArgs};
use clap::{Parser, Subcommand};

/// Account commands for Smart Alarm's operator, on the database in DATABASE_URL (postgres://… or
/// sqlite://…), or, without it, the embedded default's SQLite file under DATA_DIR. Each change is
/// written to the audit log with no actor (the operator).
#[derive(Debug, Parser)]
#[command(name = "alarm-admin", version, after_help = SECRETS_HELP)]
struct Args {
    /// TOML file with settings: the long option names with underscores as keys.
    #[arg(long, env = "ALARM_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    schema: SchemaArgs,
    #[command(flatten)]
    accounts: AccountArgs,
    #[command(flatten)]
    secrets: SecretsArgs,
    #[command(subcommand)]
    command: Command,
}

/// What to do.
#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Mark EMAIL's address verified without the e-mailed link (a deployment without SMTP, a
    /// user whose mail does not arrive); an address in ADMIN_EMAILS becomes administrator, as
    /// with the link.
    Verify {
        /// The account's e-mail address.
        email: String,
    },
    /// Make EMAIL's account an administrator.
    Grant {
        /// The account's e-mail address.
        email: String,
    },
    /// Make EMAIL's account an ordinary user again (it lasts: ADMIN_EMAILS acts only at an
    /// address's first verification).
    Revoke {
        /// The account's e-mail address.
        email: String,
    },
}

/// The settings, each checked.
struct Settings {
    database: Database,
    schema: SchemaValues,
    admin_emails: Vec<Email>,
}

fn settings(args: &Args) -> Result<Settings, ConfigError> {
    let mut file = ConfigFile::read(args.config.as_deref())?;
    let (refs, _) = SecretRefs::load(&args.secrets, &mut file)?;
    let database = Database::new(args.database.resolve(&mut file, &refs)?, &refs)?;
    let schema = args.schema.resolve(&mut file, &refs)?;
    let admin_emails = args.accounts.resolve(&mut file, &refs)?.admin_emails()?;
    file.finish()?;
    Ok(Settings {
        database,
        schema,
        admin_emails,
    })
}

async fn run(settings: Settings, command: Command) -> Result<String, String> {
    let (email, verb) = match &command {
        Command::Verify { email } => (email, "verified"),
        Command::Grant { email } => (email, "granted the admin role to"),
        Command::Revoke { email } => (email, "revoked the admin role of"),
    };
    let email = Email::parse(email).map_err(|e| format!("`{email}`: {}", e.message()))?;
    let opened = alarm_host::open(&settings.database, &settings.schema).await?;
    let users = UserService::new(opened.ports.clone(), settings.admin_emails);
    let correlation = "alarm-admin";
    let done = match command {
        Command::Verify { .. } => users.verify_by_operator(&email, correlation).await,
        Command::Grant { .. } => {
            users
                .set_role_by_operator(&email, Role::Admin, correlation)
                .await
        }
        Command::Revoke { .. } => {
            users
                .set_role_by_operator(&email, Role::User, correlation)
                .await
        }
    };
    opened.sql.close().await;
    match done {
        Ok(user) => Ok(format!(
            "{verb} {} (role {}, address {})",
            user.email(),
            user.role().as_str(),
            if user.verified_at().is_some() {
                "verified"
            } else {
                "not verified"
            }
        )),
        Err(ServiceError::NotFound) => Err(format!("no account has the address {email}")),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match settings(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("alarm-admin: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("alarm-admin: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings, args.command)) {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("alarm-admin: {e}");
            ExitCode::FAILURE
        }
    }
}
