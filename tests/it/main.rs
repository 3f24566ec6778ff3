//! End-to-end tests of the HTTP API over a real socket and of the engine and delivery worker on real databases, each scenario on SQLite and on PostgreSQL, one libtest-mimic trial each.
//!
//! A `harness = false` program so that PostgreSQL trials are listed as
//! ignored when the server cannot be reached (runners count them skipped,
//! never passed); under `CI=true` they run and fail instead. Each module
//! ends with one `trials!` list; a scenario left out of it is dead code,
//! which `-D warnings` refuses.

mod support;

mod backups;
mod calendar;
mod delivery;
mod engine;
mod erasure;
mod events;
mod flow;
mod inputs;
mod limits;
mod operations;
mod ownership;
mod resets;
mod ringing;
mod routines;
mod sessions;
mod sounds;
mod spec_answers;
mod tokens;
mod transport;
mod uploads;
mod verification;
mod webhooks_api;

use std::future::Future;
use std::sync::OnceLock;

use libtest_mimic::{Arguments, Trial};

/// Why PostgreSQL trials are skipped here, if they are.
static POSTGRES_SKIPPED: OnceLock<Option<String>> = OnceLock::new();

/// The database a scenario runs on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }
}

/// Runs `body` on a multi-thread runtime of its own (the API server, the
/// engine and the receivers are real tasks).
pub(crate) fn block_on<T>(body: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the trial")
        .block_on(body)
}

/// The two trials of a scenario, `<module>::<name>::sqlite` and
/// `…::postgres`; `run(db, label)` runs it on `db`.
pub(crate) fn on_both(module: &str, name: &str, run: fn(Db, String)) -> [Trial; 2] {
    [Db::Sqlite, Db::Postgres].map(|db| {
        let label = format!("{name}-{}", db.name());
        let skipped =
            matches!(db, Db::Postgres) && POSTGRES_SKIPPED.get().is_some_and(Option::is_some);
        Trial::test(format!("{module}::{name}::{}", db.name()), move || {
            run(db, label);
            Ok(())
        })
        .with_ignored_flag(skipped)
    })
}

/// A trial that needs no database of its own.
pub(crate) fn plain(module: &str, name: &str, run: fn()) -> Trial {
    // `stringify!` of a path spaces its `::`.
    Trial::test(format!("{module}::{}", name.replace(' ', "")), move || {
        run();
        Ok(())
    })
}

/// A module's trials: `api` scenarios take a started [`support::Harness`]
/// (the API over a socket, the engine in-process), `world` scenarios an
/// [`engine::World`] (ports, manual clock, engine), `tokio` tests run
/// async on a runtime of their own, `sync` ones as they are.
#[macro_export]
macro_rules! trials {
    ($(api: [$($api:ident),* $(,)?],)? $(mail: [$($mail:ident),* $(,)?],)? $(world: [$($world:ident),* $(,)?],)? $(tokio: [$($tok:path),* $(,)?],)? $(sync: [$($sync:path),* $(,)?],)?) => {
        pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
            let module = module_path!().rsplit("::").next().unwrap_or_default();
            let mut out: Vec<libtest_mimic::Trial> = Vec::new();
            $($(
                out.extend($crate::on_both(module, stringify!($api), |db, label| {
                    $crate::block_on(async move {
                        if let Some(h) = $crate::support::Harness::start(db, &label).await {
                            $api(&h).await;
                            h.stop().await;
                        }
                    })
                }));
            )*)?
            $($(
                // With account e-mail through a real SMTP server (aiosmtpd).
                out.extend($crate::on_both(module, stringify!($mail), |db, label| {
                    $crate::block_on(async move {
                        let smtp = $crate::delivery::Smtp::start(&label).await;
                        let limits = $crate::support::Limits {
                            account_mail: Some($crate::resets::mailer(&smtp)),
                            ..$crate::support::Limits::lenient()
                        };
                        if let Some(h) =
                            $crate::support::Harness::start_with(db, &label, limits).await
                        {
                            $mail(&h, &smtp).await;
                            h.stop().await;
                        }
                    })
                }));
            )*)?
            $($(
                out.extend($crate::on_both(module, stringify!($world), |db, label| {
                    $crate::block_on(async move {
                        let postgres = matches!(db, $crate::Db::Postgres);
                        if let Some(w) = $crate::engine::World::new(postgres, &label).await {
                            $world(&w).await;
                            w.close().await;
                        }
                    })
                }));
            )*)?
            $($(
                out.push($crate::plain(module, stringify!($tok), || {
                    $crate::block_on($tok())
                }));
            )*)?
            $($(
                out.push($crate::plain(module, stringify!($sync), $sync));
            )*)?
            out
        }
    };
}

fn main() {
    let args = Arguments::from_args();
    let skipped = POSTGRES_SKIPPED.get_or_init(alarm_sql::testing::postgres_unreachable);
    if let Some(why) = skipped {
        eprintln!("\n********** SKIPPED every PostgreSQL scenario: {why} **********\n");
    }
    support::install_tls_provider();
    let trials: Vec<Trial> = [
        backups::trials(),
        calendar::trials(),
        delivery::trials(),
        engine::trials(),
        erasure::trials(),
        events::trials(),
        flow::trials(),
        inputs::trials(),
        limits::trials(),
        operations::trials(),
        ownership::trials(),
        resets::trials(),
        verification::trials(),
        ringing::trials(),
        routines::trials(),
        sessions::trials(),
        sounds::trials(),
        sounds::more_trials(),
        spec_answers::trials(),
        tokens::trials(),
        transport::trials(),
        uploads::trials(),
        webhooks_api::trials(),
    ]
    .into_iter()
    .flatten()
    .collect();
    libtest_mimic::run(&args, trials).exit()
}
