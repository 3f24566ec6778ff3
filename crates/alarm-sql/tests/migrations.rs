//! Migrations apply on an empty database, are idempotent, roll back and rebuild, on SQLite and PostgreSQL.

mod common;

use alarm_sql::Sql;
use alarm_sql::testing::{Test, run_tests};

async fn exercise(sql: &Sql) {
    let before = sql.migration_status().await.expect("status");
    assert!(
        !before.is_empty() && before.iter().all(|m| !m.applied),
        "an empty database has everything pending: {before:?}"
    );
    sql.migrate_up().await.expect("up");
    sql.migrate_up().await.expect("up again is a no-op");
    assert!(
        sql.migration_status()
            .await
            .expect("status")
            .iter()
            .all(|m| m.applied)
    );
    sql.migrate_down(1).await.expect("down");
    let after_down = sql.migration_status().await.expect("status");
    assert!(
        !after_down.last().expect("one").applied,
        "the last migration was rolled back"
    );
    sql.migrate_fresh().await.expect("fresh");
    assert!(
        sql.migration_status()
            .await
            .expect("status")
            .iter()
            .all(|m| m.applied)
    );
}

async fn sqlite_file_is_created_on_first_use_and_migrates() {
    let (config, dir) = common::sqlite_config("migrations");
    assert!(!dir.exists());
    let sql = Sql::connect(&config)
        .await
        .expect("connect creates the file");
    assert!(dir.join("alarms.db").exists());
    exercise(&sql).await;
    sql.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn postgres_empty_database_migrates() {
    if !common::postgres_available("migrations").await {
        return;
    }
    // An empty database (not the template), as an operator's would be.
    let db = common::PgTestDb::new().await;
    let sql = Sql::connect(&db.config()).await.expect("connect");
    sql.migrate_fresh().await.expect("fresh");
    let all = u32::try_from(alarm_sql::migration_names().len()).expect("few");
    sql.migrate_down(all).await.expect("down to empty");
    exercise(&sql).await;
    sql.close().await;
    db.drop_db().await;
}

async fn refused_connections_fail_at_once_with_a_redacted_url() {
    if !common::postgres_available("refused connection").await {
        return;
    }
    let url = format!(
        "{}/no_such_database_here",
        common::pg_admin_url().rsplit_once('/').expect("path").0
    )
    .replace("postgres@", "postgres:hunter2@");
    let config = alarm_sql::DbConfig::from_url(&url).expect("url");
    let err = Sql::connect(&config)
        .await
        .err()
        .expect("a missing database is refused");
    let message = err.to_string();
    // `Refused`, not `Unreachable`: a permanent error is reported at once,
    // without the backoff series transient errors get.
    assert!(
        matches!(err, alarm_sql::ConnectError::Refused { .. }),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

async fn postgres_tls_settings_are_honoured() {
    if !common::postgres_available("TLS").await {
        return;
    }
    let db = common::PgTestDb::new().await;
    // The local server offers TLS with a self-signed certificate: `require`
    // encrypts without checking it, `verify-full` must refuse it.
    let require =
        alarm_sql::DbConfig::from_url(&format!("{}?sslmode=require", db.url)).expect("url");
    let sql = Sql::connect(&require)
        .await
        .expect("sslmode=require connects over TLS");
    assert!(!sql.migration_status().await.expect("status").is_empty());
    sql.close().await;
    let verify =
        alarm_sql::DbConfig::from_url(&format!("{}?sslmode=verify-full", db.url)).expect("url");
    let err = Sql::connect(&verify)
        .await
        .err()
        .expect("an unverifiable certificate is refused");
    assert!(
        matches!(err, alarm_sql::ConnectError::Refused { .. }),
        "a certificate failure is permanent: {err}"
    );
    let disable =
        alarm_sql::DbConfig::from_url(&format!("{}?sslmode=disable", db.url)).expect("url");
    Sql::connect(&disable)
        .await
        .expect("sslmode=disable connects in clear")
        .close()
        .await;
    db.drop_db().await;
}

fn main() {
    run_tests(vec![
        Test::local("sqlite_file_is_created_on_first_use_and_migrates", || {
            Box::pin(sqlite_file_is_created_on_first_use_and_migrates())
        }),
        Test::postgres("postgres_empty_database_migrates", || {
            Box::pin(postgres_empty_database_migrates())
        }),
        Test::postgres(
            "refused_connections_fail_at_once_with_a_redacted_url",
            || Box::pin(refused_connections_fail_at_once_with_a_redacted_url()),
        ),
        Test::postgres("postgres_tls_settings_are_honoured", || {
            Box::pin(postgres_tls_settings_are_honoured())
        }),
    ]);
}
