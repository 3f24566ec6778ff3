//! Test support for this crate and for anyone testing against it: a fresh SQLite file, or a PostgreSQL database cloned from a migrated template, per test (like crates.io's test-db).
#![allow(clippy::missing_panics_doc, missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};

use crate::{DbConfig, Sql};
use sea_orm::{ConnectionTrait, Database};
use tokio::sync::OnceCell;

mod statement_log;
pub use statement_log::{Logged, StatementLog, Transaction, pgbench_tps};

/// The maintenance database URL (trust auth on this machine kind); override
/// with `ALARM_TEST_PG_URL`.
pub fn pg_admin_url() -> String {
    std::env::var("ALARM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn base_url(admin: &str) -> &str {
    admin.rsplit_once('/').map_or(admin, |(base, _)| base)
}

/// Whether PostgreSQL suites run. Without a server they are skipped loudly,
/// except under `CI=true`, where a missing server fails the run.
pub async fn postgres_available(suite: &str) -> bool {
    let probe = match port_answers() {
        Err(e) => Err(e),
        Ok(()) => Database::connect(pg_admin_url())
            .await
            .map_err(|e| e.to_string()),
    };
    match probe {
        Ok(db) => {
            let _ = db.close().await;
            true
        }
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true and PostgreSQL is unreachable at {}: {e}",
                    pg_admin_url()
                );
            }
            eprintln!(
                "\n********** SKIPPED {suite} on PostgreSQL: {} unreachable ({e}) **********\n",
                pg_admin_url()
            );
            false
        }
    }
}

/// For test programs that list their trials before running any: `Some(why)`
/// when PostgreSQL cannot be reached and the trials should be listed as
/// ignored (counted as skipped); `None` when it answers, and always under
/// `CI=true`, where the trials then run and fail on the missing server.
pub fn postgres_unreachable() -> Option<String> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return None;
    }
    // Every test process asks (nextest runs one per trial): a refused or
    // silent port must answer in a second, not after the pool's retries.
    if let Err(e) = port_answers() {
        return Some(format!(
            "PostgreSQL at {} is unreachable ({e})",
            pg_admin_url()
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the reachability probe");
    runtime.block_on(async {
        let mut options = sea_orm::ConnectOptions::new(pg_admin_url());
        options
            .connect_timeout(std::time::Duration::from_secs(5))
            .acquire_timeout(std::time::Duration::from_secs(5))
            .sqlx_logging(false);
        match Database::connect(options).await {
            Ok(db) => {
                let _ = db.close().await;
                None
            }
            Err(e) => Some(format!(
                "PostgreSQL at {} is unreachable ({e})",
                pg_admin_url()
            )),
        }
    })
}

/// Whether the admin URL's host and port accept a TCP connection within a second.
fn port_answers() -> Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let url = url::Url::parse(&pg_admin_url()).map_err(|e| e.to_string())?;
    let host = url.host_str().unwrap_or("localhost").to_owned();
    let port = url.port().unwrap_or(5432);
    let addrs = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?;
    let mut last = format!("{host}:{port} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// A test of a `harness = false` target: its body runs on a multi-thread
/// runtime of its own.
pub struct Test {
    name: &'static str,
    postgres: bool,
    body: fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
}

impl Test {
    /// A test that needs no server.
    pub fn local(
        name: &'static str,
        body: fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
    ) -> Self {
        Self {
            name,
            postgres: false,
            body,
        }
    }

    /// A test that needs PostgreSQL: listed as ignored (counted as skipped,
    /// never passed) when the server is unreachable outside CI.
    pub fn postgres(
        name: &'static str,
        body: fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
    ) -> Self {
        Self {
            name,
            postgres: true,
            body,
        }
    }
}

/// The whole `main` of a test target whose tests may need PostgreSQL.
pub fn run_tests(tests: Vec<Test>) -> ! {
    let args = libtest_mimic::Arguments::from_args();
    let skipped = postgres_unreachable();
    if let Some(why) = &skipped {
        eprintln!("\n********** SKIPPED every PostgreSQL test: {why} **********\n");
    }
    let trials = tests
        .into_iter()
        .map(|test| {
            let body = test.body;
            libtest_mimic::Trial::test(test.name, move || {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the test")
                    .block_on(body());
                Ok(())
            })
            .with_ignored_flag(test.postgres && skipped.is_some())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static SEQ: AtomicU32 = AtomicU32::new(0);

/// Runs `sql` on the maintenance database (test set-up).
pub async fn admin_exec(sql: &str) {
    let db = Database::connect(pg_admin_url())
        .await
        .expect("admin connection");
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = db.close().await;
}

/// A name per migration set, so a schema change gets a new template.
fn template_name() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let names = crate::migration_names();
    assert_eq!(
        names.len(),
        crate::migration::SOURCES.len(),
        "every migration's source is listed in migration::SOURCES"
    );
    for text in names
        .iter()
        .map(String::as_str)
        .chain(crate::migration::SOURCES.iter().copied())
    {
        for b in text.bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("alarm_tmpl_{:012x}", hash & 0xffff_ffff_ffff)
}

/// The migrated template shared by every test process (nextest runs one
/// process per test), built once under an advisory lock and published by
/// a rename, so no process ever clones a half-migrated template. Test
/// databases left behind by crashed processes are swept here.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut options = sea_orm::ConnectOptions::new(pg_admin_url());
            // One connection: the advisory lock belongs to a session.
            options.max_connections(1).sqlx_logging(false);
            let admin = Database::connect(options).await.expect("admin connection");
            admin
                .execute_unprepared("SELECT pg_advisory_lock(7270001)")
                .await
                .expect("lock");
            let exists = |db: &sea_orm::DatabaseConnection, n: String| {
                let db = db.clone();
                async move {
                    let row = db
                        .query_one_raw(sea_orm::Statement::from_sql_and_values(
                            sea_orm::DbBackend::Postgres,
                            "SELECT datname FROM pg_database WHERE datname = $1",
                            [n.into()],
                        ))
                        .await
                        .expect("pg_database");
                    row.is_some()
                }
            };
            if !exists(&admin, name.clone()).await {
                let building = format!("{name}_building");
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                    .await
                    .expect("drop");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {building}"))
                    .await
                    .expect("create");
                let url = format!("{}/{building}", base_url(&pg_admin_url()));
                let config = DbConfig::from_url(&url)
                    .expect("url")
                    .with_max_connections(2)
                    .expect("pool");
                let sql = Sql::connect(&config)
                    .await
                    .expect("connect to the template");
                sql.migrate_up().await.expect("migrate the template");
                sql.close().await;
                admin
                    .execute_unprepared(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .await
                    .expect("publish");
            }
            sweep_orphans(&admin).await;
            admin
                .execute_unprepared("SELECT pg_advisory_unlock(7270001)")
                .await
                .expect("unlock");
            let _ = admin.close().await;
            name
        })
        .await
}

/// Drops `alarm_test_<pid>_<n>` databases whose process is gone.
async fn sweep_orphans(admin: &sea_orm::DatabaseConnection) {
    let rows = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT datname FROM pg_database WHERE datname LIKE 'alarm_test_%'",
        ))
        .await
        .expect("list test databases");
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else {
            continue;
        };
        let pid = name
            .trim_start_matches("alarm_test_")
            .split('_')
            .next()
            .unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// A PostgreSQL database of its own, cloned from the migrated template and
/// dropped by [`PgTestDb::drop_db`].
pub struct PgTestDb {
    pub name: String,
    pub url: String,
}

impl PgTestDb {
    pub async fn new() -> Self {
        let template = template().await;
        let name = format!(
            "alarm_test_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        admin_exec(&format!("DROP DATABASE IF EXISTS {name}")).await;
        admin_exec(&format!("CREATE DATABASE {name} TEMPLATE {template}")).await;
        let url = format!("{}/{name}", base_url(&pg_admin_url()));
        Self { name, url }
    }

    /// A small pool (the tests run in parallel on two cores) that waits up
    /// to 10 s for a connection: here a slow acquire is two cores shared
    /// by PostgreSQL and every test, not an outage, and the product's
    /// fail-fast 1.5 s is tested on its own (`limits::the_database_going_away`
    /// builds its pool from the URL).
    pub fn config(&self) -> DbConfig {
        DbConfig::from_url(&self.url)
            .expect("url")
            .with_max_connections(4)
            .expect("pool")
            .with_acquire_timeout(std::time::Duration::from_secs(10))
            .expect("acquire timeout")
    }

    pub async fn drop_db(self) {
        admin_exec(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await;
    }
}

/// A SQLite file in a fresh temporary folder.
pub fn sqlite_config(label: &str) -> (DbConfig, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "alarm-sql-{label}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/alarms.db", dir.display());
    (DbConfig::from_url(&url).expect("url"), dir)
}
