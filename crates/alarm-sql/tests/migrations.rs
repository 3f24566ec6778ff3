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
    let sql = common::connect(&db.config()).await;
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

/// `m0010` on a database that already has accounts: a reset link e-mailed
/// before it still works after it (and after a rollback), and every
/// account and session it finds is taken as verified and as an old login.
async fn account_tokens_migrate_both_ways(sql: &Sql) {
    use alarm_domain::jiff::{SignedDuration, tz::TimeZoneDatabase};
    use alarm_domain::ports::{ChangeSet, TokenPurpose, UserOp};
    use alarm_testkit::{ManualClock, SequentialIds, fixtures};
    use std::sync::Arc;

    sql.migrate_up().await.expect("up");
    let ports = sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(ManualClock::new(fixtures::t0())),
        Arc::new(SequentialIds::new()),
    );
    let ana = fixtures::user(&ports, "ana@example.com").await;
    // Registered as the API registers: not verified.
    let bob = alarm_domain::model::User::new(
        alarm_domain::ids::UserId::generate(),
        alarm_domain::model::Email::parse("bob@example.com").expect("email"),
        ana.display_name().clone(),
        alarm_domain::model::Role::User,
        ana.time_zone().clone(),
        None,
    );
    let audit = || fixtures::audit(&ports, None, "test", uuid::Uuid::nil());
    ports
        .users
        .commit(ChangeSet::audited(
            UserOp::Register {
                user: bob.clone(),
                password_hash: "$argon2id$x".into(),
            },
            audit(),
        ))
        .await
        .expect("register");
    let until = fixtures::t0() + SignedDuration::from_mins(30);
    for purpose in [TokenPurpose::PasswordReset, TokenPurpose::EmailVerification] {
        ports
            .users
            .commit(ChangeSet::audited(
                UserOp::IssueToken {
                    user: bob.id(),
                    purpose,
                    token_hash: [purpose as u8 + 1; 32],
                    expires_at: until,
                },
                audit(),
            ))
            .await
            .expect("a link");
    }
    assert_eq!(
        ports.users.get(bob.id()).await.expect("bob").verified_at(),
        None
    );
    let session = alarm_domain::ports::RefreshFamily {
        id: uuid::Uuid::now_v7(),
        user: bob.id(),
        expires_at: until,
        logged_in_at: fixtures::t0(),
        revoked: false,
    };
    ports
        .refresh_tokens
        .create(session.clone(), [7; 32])
        .await
        .expect("a session");

    // Down past m0010 however many migrations came after it.
    let names = alarm_sql::migration_names();
    let m0010 = names
        .iter()
        .position(|n| n.starts_with("m0010"))
        .expect("m0010 exists");
    let steps = u32::try_from(names.len() - m0010).expect("few");
    sql.migrate_down(steps).await.expect("down to m0009");
    sql.migrate_up().await.expect("up again");
    let bob_now = ports.users.get(bob.id()).await.expect("bob");
    assert_eq!(
        bob_now.verified_at(),
        Some(fixtures::t0()),
        "an account from before counts as verified since it registered"
    );
    assert_eq!(
        ports
            .users
            .token_owner(TokenPurpose::PasswordReset, [1; 32])
            .await
            .expect("owner"),
        Some(bob.id()),
        "the e-mailed reset link survives both ways"
    );
    assert_eq!(
        ports
            .users
            .token_owner(TokenPurpose::EmailVerification, [2; 32])
            .await
            .expect("owner"),
        None,
        "a verification link has no table before m0010"
    );
    assert_eq!(
        ports
            .refresh_tokens
            .family(session.id)
            .await
            .expect("session")
            .logged_in_at,
        alarm_domain::jiff::Timestamp::UNIX_EPOCH,
        "a session from before counts as an old login"
    );
}

async fn sqlite_account_tokens_migrate_both_ways() {
    let (config, dir) = common::sqlite_config("m0010");
    let sql = common::connect(&config).await;
    account_tokens_migrate_both_ways(&sql).await;
    sql.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn postgres_account_tokens_migrate_both_ways() {
    if !common::postgres_available("m0010").await {
        return;
    }
    let db = common::PgTestDb::new().await;
    let sql = common::connect(&db.config()).await;
    account_tokens_migrate_both_ways(&sql).await;
    sql.close().await;
    db.drop_db().await;
}

fn main() {
    run_tests(vec![
        Test::local("sqlite_account_tokens_migrate_both_ways", || {
            Box::pin(sqlite_account_tokens_migrate_both_ways())
        }),
        Test::postgres("postgres_account_tokens_migrate_both_ways", || {
            Box::pin(postgres_account_tokens_migrate_both_ways())
        }),
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
