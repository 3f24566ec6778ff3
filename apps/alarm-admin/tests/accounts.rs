//! The `alarm-admin` binary on SQLite and PostgreSQL as an operator runs it: an unverified account verified (and made admin when `ADMIN_EMAILS` names it), the role granted and revoked, an unknown address and a bad setting refused by name.

use std::process::Command;
use std::sync::Arc;

use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::{DisplayName, Email, Role};
use alarm_domain::ports::{RandomIds, SystemClock};
use alarm_domain::services::{NewUser, UserService};
use alarm_domain::tz::TimeZoneName;
use alarm_sql::testing::{PgTestDb, Test, postgres_available, run_tests, sqlite_config};
use alarm_sql::{DbConfig, Sql};

/// Runs `alarm-admin` with `args` on `url`, `ADMIN_EMAILS` = `admins`:
/// (exit code, stdout, stderr).
fn admin(url: &str, admins: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_alarm-admin"))
        .env_clear()
        .env("DATABASE_URL", url)
        // PostgreSQL needs the data keys (SQLite would make its own file).
        .env(
            "DATA_ENCRYPTION_KEYS",
            "YWRtaW4gdGVzdHMnIGRhdGEga2V5LCAzMiBieXRlcyE=",
        )
        .env("ADMIN_EMAILS", admins)
        .args(args)
        .output()
        .expect("run alarm-admin");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Registers `email` the way the API does: unverified, an ordinary user.
async fn register(users: &UserService, email: &str) {
    users
        .register(
            NewUser {
                email: Email::parse(email).expect("email"),
                display_name: DisplayName::parse("Op Test").expect("name"),
                password_hash: secrecy::SecretString::from("$argon2id$x".to_owned()),
                time_zone: TimeZoneName::utc(),
                locale: None,
            },
            "test",
        )
        .await
        .expect("register");
}

async fn scenario(config: DbConfig, url: &str) {
    let sql = Sql::connect(&config).await.expect("connect");
    sql.migrate_up().await.expect("migrate");
    let ports = sql.ports(
        TimeZoneDatabase::bundled(),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    // The service the test registers with knows no admin list: only the
    // operator's command applies it.
    let users = UserService::new(ports.clone(), Vec::new());
    register(&users, "root@example.com").await;
    register(&users, "ana@example.com").await;
    let get = |email: &str| {
        let users = users.clone();
        let email = Email::parse(email).expect("email");
        async move { users.find_by_email(&email).await.expect("account") }
    };
    let root = get("root@example.com").await;
    assert_eq!((root.role(), root.verified_at()), (Role::User, None));

    let (code, out, err) = admin(url, "ROOT@example.com", &["verify", "root@example.com"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("role admin, address verified"), "{out}");
    let root = get("root@example.com").await;
    assert_eq!(
        root.role(),
        Role::Admin,
        "ADMIN_EMAILS applies on verification"
    );
    assert!(root.verified_at().is_some());

    let (code, out, err) = admin(url, "root@example.com", &["verify", "ana@example.com"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("role user, address verified"), "{out}");
    assert_eq!(get("ana@example.com").await.role(), Role::User);

    let (code, _, err) = admin(url, "", &["grant", "ana@example.com"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(get("ana@example.com").await.role(), Role::Admin);
    let (code, _, err) = admin(url, "", &["revoke", "ana@example.com"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(get("ana@example.com").await.role(), Role::User);

    // Audited with no actor: the operator is not an account.
    let trail = ports
        .audit
        .list(
            None,
            alarm_domain::ports::PageRequest::new(None, 100).expect("page"),
        )
        .await
        .expect("audit");
    let by_operator: Vec<(&str, bool)> = trail
        .items
        .iter()
        .filter(|r| r.correlation_id == "alarm-admin")
        .map(|r| (r.action.as_str(), r.actor.is_none()))
        .collect();
    assert_eq!(
        by_operator,
        [
            ("user.verify_email", true),
            ("user.verify_email", true),
            ("user.set_role", true),
            ("user.set_role", true),
        ]
    );

    let (code, _, err) = admin(url, "", &["verify", "nobody@example.com"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no account has the address nobody@example.com"),
        "{err}"
    );
    let (code, _, err) = admin(url, "not-an-address", &["verify", "ana@example.com"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("ADMIN_EMAILS"), "{err}");
    sql.close().await;
}

async fn on_sqlite() {
    let (config, dir) = sqlite_config("alarm-admin");
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}/alarms.db", dir.display());
    scenario(config, &url).await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn on_postgres() {
    if !postgres_available("alarm-admin").await {
        return;
    }
    let pg = PgTestDb::new().await;
    scenario(pg.config(), &pg.url.clone()).await;
    pg.drop_db().await;
}

fn main() {
    run_tests(vec![
        Test::local("operator_commands_on_sqlite", || Box::pin(on_sqlite())),
        Test::postgres("operator_commands_on_postgres", || Box::pin(on_postgres())),
    ]);
}
