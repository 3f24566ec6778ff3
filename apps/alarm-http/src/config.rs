//! Settings: every one declared once (flag, environment variable, `--config` key, default, range, help) in its group; command line > environment > `--config` file > default; secrets only from the environment or a file they name, straight into `SecretString`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alarm_appkit::settings::{AsWritten, ConfigFile};
use alarm_appkit::{ConfigError, bad, secret_env};
use alarm_host::groups::{SECRETS_HELP, Server, ServerArgs};
use clap::Parser;
use secrecy::{ExposeSecret, SecretString};

const JWT_HELP: &str = "\
  JWT_SECRET_KEY        HS256 signing key, at least 32 bytes; required with
                        DATABASE_URL. In the embedded default a key is
                        generated once into <DATA_DIR>/jwt-secret (mode 0600)
  JWT_SECRET_KEY_FILE   a file holding JWT_SECRET_KEY";

/// Smart Alarm HTTP server: the API, its docs at /docs and health endpoints; unless
/// --no-worker, the trigger engine and the delivery worker run in this process too.
#[derive(Debug, Parser)]
#[command(name = "alarm-http", version, after_help = format!("{SECRETS_HELP}\n\n{JWT_HELP}"))]
pub(crate) struct Args {
    /// TOML file with settings: the long option names with underscores as keys.
    #[arg(long, env = "ALARM_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Print the OpenAPI document (JSON) and exit; `cargo xtask codegen` uses it.
    #[arg(long)]
    pub(crate) openapi: bool,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    server: ServerArgs,
}

alarm_appkit::settings! {
    /// The API's own settings.
    pub(crate) struct ApiArgs => ApiValues {
        /// Address to listen on
        listen: SocketAddr = "127.0.0.1:8080", "LISTEN_ADDR";
        /// JWT `iss`
        jwt_issuer: String = "smart-alarm", "JWT_ISSUER";
        /// JWT `aud`
        jwt_audience: String = "smart-alarm-api", "JWT_AUDIENCE";
        /// Access-token lifetime in minutes
        jwt_access_minutes: u32 = "15", "JWT_ACCESS_MINUTES", 1..=60;
        /// Refresh-token (session) lifetime in days
        jwt_refresh_days: u32 = "30", "JWT_REFRESH_DAYS", 1..=365;
        /// Comma-separated origins allowed by CORS, e.g. https://app.example.com [default: none]
        cors_origins: Vec<String>, "CORS_ORIGINS";
        /// Public base URL, used in Location headers and the spec [default: none]
        api_base_url: Option<String>, "API_BASE_URL";
        /// Comma-separated e-mails whose accounts become administrators [default: none]
        admin_emails: Vec<String>, "ADMIN_EMAILS";
        /// Do not run the trigger engine and delivery worker in this process (run alarm-worker instead)
        no_worker: bool = "false", "NO_WORKER", switch;
    }
}

/// The effective configuration.
pub(crate) struct Settings {
    pub(crate) api: ApiValues,
    pub(crate) server: Server,
    /// `None` only in the embedded default before the key file is read.
    pub(crate) jwt_secret: Option<SecretString>,
}

impl Settings {
    /// Merges the sources and validates every value.
    pub(crate) fn load(args: &Args) -> Result<Self, ConfigError> {
        let mut file = ConfigFile::read(args.config.as_deref())?;
        let resolver = &AsWritten;
        let mut api = args.api.resolve(&mut file, resolver)?;
        let server = args.server.load(&mut file, resolver)?;
        file.finish()?;
        let jwt_secret = secret_env("JWT_SECRET_KEY", "JWT_SECRET_KEY_FILE")?;
        match &jwt_secret {
            Some(s) if s.expose_secret().len() < alarm_api::auth::MIN_SECRET_BYTES => {
                return Err(bad(
                    "JWT_SECRET_KEY",
                    format!(
                        "must be at least {} bytes",
                        alarm_api::auth::MIN_SECRET_BYTES
                    ),
                ));
            }
            None if !server.database.embedded() => {
                return Err(bad(
                    "JWT_SECRET_KEY",
                    "is required when DATABASE_URL is set (only the embedded default generates one)",
                ));
            }
            _ => {}
        }
        api.cors_origins = api
            .cors_origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_owned())
            .collect();
        for o in &api.cors_origins {
            let ok = url::Url::parse(o).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/"
            });
            // `*` is refused: poem would take it as a literal origin that no
            // browser sends, and a credentialed API should name its origins.
            if !ok {
                return Err(bad(
                    "CORS_ORIGINS",
                    format!("`{o}` is not an origin like https://app.example.com"),
                ));
            }
        }
        if let Some(u) = &api.api_base_url {
            let ok = url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(bad(
                    "API_BASE_URL",
                    format!("`{u}` is not an absolute http(s) URL"),
                ));
            }
        }
        for e in &api.admin_emails {
            alarm_domain::model::Email::parse(e)
                .map_err(|err| bad("ADMIN_EMAILS", format!("`{e}`: {}", err.message())))?;
        }
        Ok(Self {
            api,
            server,
            jwt_secret,
        })
    }

    /// Whether the trigger engine and the delivery worker run in this process.
    pub(crate) fn worker(&self) -> bool {
        !self.api.no_worker
    }

    /// The effective configuration as TOML-like lines, secrets redacted.
    pub(crate) fn describe(&self) -> String {
        let key = match &self.jwt_secret {
            Some(_) => "\"[redacted]\"".to_owned(),
            None => format!(
                "\"(generated in {})\"",
                key_path(&self.server.database.values.data_dir).display()
            ),
        };
        [
            self.api.describe(),
            vec![format!("jwt_secret_key = {key}")],
            self.server.describe(),
        ]
        .concat()
        .join("\n")
    }
}

/// Where the embedded default keeps its generated signing key.
pub(crate) fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("jwt-secret")
}
