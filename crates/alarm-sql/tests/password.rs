//! A rotated `DATABASE_URL` password goes to new PostgreSQL connections; a URL naming another place is refused; SQLite has none.

mod common;

use secrecy::SecretString;

#[tokio::test]
async fn a_new_password_is_taken_for_new_connections_only_from_the_same_place() {
    let (config, _dir) = common::sqlite_config("password");
    let sqlite = common::connect(&config).await;
    assert!(
        sqlite
            .set_password_from(&SecretString::from("postgres://a:b@h/d"))
            .unwrap_err()
            .contains("SQLite")
    );
    if !common::postgres_available("password rotation").await {
        return;
    }
    let db = common::PgTestDb::new().await;
    let sql = common::connect(&db.config()).await;
    sql.ping().await.expect("ping");
    let url = with_password(&db.url, "n3w-p4ss%2Fword");
    let options = || sql.pg_connect_options_text().expect("postgres");
    assert!(options().iter().all(|o| !o.contains("n3w-p4ss")), "not yet");
    sql.set_password_from(&SecretString::from(url.clone()))
        .expect("the same place with a new password");
    assert!(
        options()
            .iter()
            .all(|o| o.contains(r#"password: Some("n3w-p4ss/word")"#)),
        "new connections of both pools (the shared one and the sender's) log in with the decoded new password"
    );
    for (other, why) in [
        (url.replace("127.0.0.1", "localhost"), "another host"),
        (url.replace(":5432", ":5433"), "another port"),
        (url.replace("//postgres:", "//someone:"), "another user"),
        (format!("{url}_other"), "another database"),
        ("not a url".to_owned(), "not a URL"),
    ] {
        let err = sql
            .set_password_from(&SecretString::from(other))
            .unwrap_err();
        assert!(!err.contains("n3w-p4ss"), "{why}: {err}");
    }
    // A refused URL changes nothing.
    assert!(
        options()
            .iter()
            .all(|o| o.contains(r#"password: Some("n3w-p4ss/word")"#))
    );
    // Every connection of the pool ends: the next query opens a new one
    // with the new options. (This machine's PostgreSQL trusts local
    // connections, so the server does not check the password itself: the
    // options above show which one a new connection sends.)
    common::admin_exec(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
        db.name
    ))
    .await;
    // Each idle connection of the pool (at most 4) fails once as it is
    // found ended and is dropped; then a new one answers.
    let mut answered = false;
    for _ in 0..=4 {
        if sql.ping().await.is_ok() {
            answered = true;
            break;
        }
    }
    assert!(answered, "a new connection after the rotation");
    db.drop_db().await;
}

/// `url` (`postgres://user@host:port/db`) with `password` (percent-encoded).
fn with_password(url: &str, password: &str) -> String {
    url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{password}@"),
        1,
    )
}
