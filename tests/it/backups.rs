//! The restore drill on SQLite and PostgreSQL: data in, a backup, later writes undone by a restore over the live database, the database destroyed and restored again, every row and checksum back, and the engine resuming: the occurrence due during the outage rings inside the grace window, older ones are reported missed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::ports::{Clock as _, PageRequest};
use alarm_domain::services::{Actor, AlarmService, Ports};
use alarm_runner::{Engine, RunnerConfig};
use alarm_sql::backup::{self, BackupError, Manifest};
use alarm_sql::testing::{PgTestDb, admin_exec, postgres_available, sqlite_config};
use alarm_sql::{DbConfig, Sql};
use alarm_testkit::{ManualClock, SequentialIds, fixtures};

use crate::Db;

/// `t0` is 2026-01-05 06:00 UTC; the daily alarm rings at 07:00 UTC.
fn seven(day: i64) -> Timestamp {
    fixtures::t0() + SignedDuration::from_hours(1 + 24 * day)
}

/// An open database with the engine over it.
struct Open {
    sql: Sql,
    ports: Ports,
    engine: Engine,
}

async fn open(config: &DbConfig, clock: &Arc<ManualClock>) -> Open {
    let sql = Sql::connect(config)
        .await
        .expect("connect")
        .with_sealer(crate::support::sealer());
    let ports = sql.ports(
        TimeZoneDatabase::bundled(),
        clock.clone(),
        // Far from the ids the first run handed out: a restored database
        // must not meet an id twice.
        Arc::new(SequentialIds::starting_at(1_000_000)),
    );
    let engine = Engine::new(ports.clone(), RunnerConfig::default());
    Open { sql, ports, engine }
}

/// What a user can read back: every alarm and every event, in order.
async fn seen(ports: &Ports, who: &Actor) -> String {
    let alarms = ports
        .alarms
        .list(who.user, None, PageRequest::first())
        .await
        .expect("alarms")
        .items;
    let mut out = format!("{alarms:?}");
    for alarm in &alarms {
        let events = ports
            .events
            .list(who.user, alarm.id(), PageRequest::first())
            .await
            .expect("events")
            .items;
        out.push_str(&format!("{events:?}"));
    }
    out
}

/// Removes a SQLite database with its WAL and shared-memory files, or
/// drops and recreates (empty) a PostgreSQL one: the disk or the server
/// is gone.
async fn destroy(config: &DbConfig, pg: Option<&PgTestDb>) {
    if let Some(db) = pg {
        admin_exec(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name)).await;
        admin_exec(&format!("CREATE DATABASE {}", db.name)).await;
    } else {
        let file = config.sqlite_file().expect("a file");
        for side in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{side}", file.display()));
        }
        assert!(!file.exists());
    }
}

fn restore_drill(db: Db, label: String) {
    crate::block_on(async move {
        let postgres = matches!(db, Db::Postgres);
        let (config, pg, dir) = if postgres {
            if !postgres_available(&label).await {
                return;
            }
            let pg = PgTestDb::new().await;
            (pg.config(), Some(pg), None)
        } else {
            let (config, dir) = sqlite_config(&label);
            (config, None, Some(dir))
        };
        let backups: PathBuf =
            std::env::temp_dir().join(format!("alarm-backups-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&backups);
        drill(&config, pg.as_ref(), &backups).await;
        let _ = std::fs::remove_dir_all(&backups);
        if let Some(pg) = pg {
            pg.drop_db().await;
        }
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    });
}

async fn drill(config: &DbConfig, pg: Option<&PgTestDb>, backups: &Path) {
    let clock = Arc::new(ManualClock::new(fixtures::t0()));
    let first = open(config, &clock).await;
    first.sql.migrate_up().await.expect("migrate");
    let ana = fixtures::user(&first.ports, "ana@example.com").await;
    let ana = Actor {
        user: ana.id(),
        role: ana.role(),
        correlation_id: "drill".to_owned(),
    };
    let service = AlarmService::new(first.ports.clone());
    let alarm = service
        .create(&ana, fixtures::draft("Wake up"))
        .await
        .expect("create");
    // A ring before the backup, so events, deliveries and ringing state
    // are in it too.
    clock.set(seven(0));
    let r = first.engine.tick(seven(0)).await.expect("tick");
    assert_eq!(r.rang, 1);
    clock.set(seven(0) + SignedDuration::from_hours(1));
    let before = seen(&first.ports, &ana).await;
    let manifest = first
        .sql
        .backup(config, backups, clock.now())
        .await
        .expect("backup");
    let file = backups.join(&manifest.file);
    assert_eq!(Manifest::verify(&file).expect("verify"), manifest);
    assert!(manifest.tables["alarms"].rows >= 1, "{manifest:?}");
    assert!(manifest.tables["alarm_events"].rows >= 2, "{manifest:?}");
    assert!(manifest.migration.is_some());
    let sums = std::fs::read_to_string(backups.join(format!("{}.sha256", manifest.file)))
        .expect("sha256 file");
    assert_eq!(sums, format!("{}  {}\n", manifest.sha256, manifest.file));

    // Written after the backup: a restore over the live database undoes it.
    service
        .create(&ana, fixtures::draft("After the backup"))
        .await
        .expect("create");
    assert_ne!(seen(&first.ports, &ana).await, before);
    first.sql.close().await;
    let restored = backup::restore(config, &file, clock.now())
        .await
        .expect("restore over the live database");
    assert_eq!(restored.manifest, manifest);
    if pg.is_none() {
        let kept = restored.kept.expect("the replaced file's name");
        assert!(kept.exists(), "the replaced file is kept");
    }
    let again = open(config, &clock).await;
    assert_eq!(
        seen(&again.ports, &ana).await,
        before,
        "the later write is gone"
    );
    again.sql.close().await;

    // The disk or the server is lost; the backup brings everything back.
    destroy(config, pg).await;
    let restored = backup::restore(config, &file, clock.now())
        .await
        .expect("restore into an empty database");
    assert_eq!(restored.manifest.tables, manifest.tables);
    let back = open(config, &clock).await;
    assert!(
        back.sql
            .pending_migrations()
            .await
            .expect("status")
            .is_empty(),
        "the schema came back at the release's version"
    );
    assert_eq!(seen(&back.ports, &ana).await, before);

    // The engine resumes. Back five minutes after the next 07:00: inside
    // the grace window, it rings.
    let at = seven(1) + SignedDuration::from_mins(5);
    clock.set(at);
    let r = back.engine.tick(at).await.expect("tick");
    assert_eq!(r.rang, 1, "{r:?}");
    // Down again for two days, back 20 minutes after 07:00: the grace rule
    // reports one miss and rings nothing.
    let at = seven(3) + SignedDuration::from_mins(20);
    clock.set(at);
    let r = back.engine.tick(at).await.expect("tick");
    assert_eq!(r.rang, 0, "{r:?}");
    assert!(r.missed >= 1, "{r:?}");
    let mut history: Vec<String> = back
        .ports
        .events
        .list(ana.user, alarm.id(), PageRequest::first())
        .await
        .expect("events")
        .items
        .into_iter()
        .map(|e| format!("{:?} {:?}", e.kind, e.occurrence.map(|t| t.to_string())))
        .collect();
    history.sort();
    let day = |n: i64| format!("Some(\"{}\")", seven(n));
    let mut expected = vec![
        "Created None".to_owned(),
        // The ring before the backup, and its follow-up, which the
        // outage let pass.
        format!("Triggered {}", day(0)),
        format!("Missed {}", day(0)),
        // Rung inside the grace window after the restore; its follow-up
        // and the two days after it passed during the second outage: the
        // fires are one report, naming the newest.
        format!("Triggered {}", day(1)),
        format!("Missed {}", day(1)),
        format!("Missed {}", day(3)),
    ];
    expected.sort();
    assert_eq!(history, expected);

    // A damaged copy is refused and changes nothing.
    let damaged = backups.join(format!("damaged-{}", manifest.file));
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&damaged, &bytes).expect("write");
    let text =
        std::fs::read_to_string(backups.join(format!("{}.json", manifest.file))).expect("manifest");
    std::fs::write(
        backups.join(format!("damaged-{}.json", manifest.file)),
        text.replace(
            &format!("\"{}\"", manifest.file),
            &format!("\"damaged-{}\"", manifest.file),
        ),
    )
    .expect("write");
    let after = seen(&back.ports, &ana).await;
    back.sql.close().await;
    let err = backup::restore(config, &damaged, clock.now())
        .await
        .expect_err("damaged");
    assert!(
        matches!(&err, BackupError::Refused { reason, .. } if reason.starts_with("damaged")),
        "{err}"
    );
    let last = open(config, &clock).await;
    assert_eq!(seen(&last.ports, &ana).await, after);
    last.sql.close().await;
}

pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
    crate::on_both("backups", "restore_drill", restore_drill).into()
}
