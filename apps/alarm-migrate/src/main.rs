//! `alarm-migrate`: applies, rolls back, lists or rebuilds the schema of the database in `DATABASE_URL`.

use std::process::ExitCode;

use alarm_sql::{DbConfig, Sql};

const USAGE: &str = "\
Usage: alarm-migrate [COMMAND]

Runs Smart Alarm's schema migrations against the database in DATABASE_URL
(postgres://… or sqlite://…; a SQLite file is created on first use).

Commands:
  up            apply every pending migration (the default; idempotent)
  down [N]      roll back the last N applied migrations (default 1)
  status        list every migration and whether it is applied
  fresh         drop every table and apply all migrations again (destroys data)
  help          this text

Environment:
  DATABASE_URL  the database; required
";

enum Command {
    Up,
    Down(u32),
    Status,
    Fresh,
    Help,
}

fn parse(args: &[String]) -> Result<Command, String> {
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["up"] => Ok(Command::Up),
        ["down"] => Ok(Command::Down(1)),
        ["down", n] => n
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .map(Command::Down)
            .ok_or_else(|| format!("`down` takes a positive number of steps, got `{n}`")),
        ["status"] => Ok(Command::Status),
        ["fresh"] => Ok(Command::Fresh),
        ["help" | "-h" | "--help"] => Ok(Command::Help),
        other => Err(format!("unknown arguments `{}`", other.join(" "))),
    }
}

async fn run(command: Command) -> Result<(), String> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_owned())?;
    let config = DbConfig::from_url(&url).map_err(|e| e.to_string())?;
    let sql = Sql::connect(&config).await.map_err(|e| e.to_string())?;
    match command {
        Command::Up => {
            sql.migrate_up().await.map_err(|e| e.to_string())?;
            println!("all migrations applied to {}", config.redacted_url());
        }
        Command::Down(n) => {
            sql.migrate_down(n).await.map_err(|e| e.to_string())?;
            println!("rolled back {n} migration(s) on {}", config.redacted_url());
        }
        Command::Fresh => {
            sql.migrate_fresh().await.map_err(|e| e.to_string())?;
            println!(
                "dropped every table and applied all migrations on {}",
                config.redacted_url()
            );
        }
        Command::Status => {
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
        }
        Command::Help => unreachable!("handled before connecting"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(c) => c,
        Err(e) => {
            eprintln!("alarm-migrate: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
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
    match runtime.block_on(run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alarm-migrate: {e}");
            ExitCode::FAILURE
        }
    }
}
