//! The sender's PostgreSQL pool: its sessions plan by index and commit without waiting for the flush, a durable commit restores the server's own setting, and the shared pool keeps the server's settings.

mod common;

#[tokio::test]
async fn the_senders_sessions_carry_their_settings_and_the_shared_pool_does_not() {
    if !common::postgres_available("the sender's pool").await {
        return;
    }
    let db = common::PgTestDb::new().await;
    let sql = common::connect(&db.config()).await;
    let [sender, durable, shared] = sql.sender_settings().await.expect("settings");
    assert_eq!(sender, ["off", "off", "off"], "the sender's session");
    // The shared pool's sessions run as the server is configured; this
    // machine's server commits durably (its default, `on`), so a return to
    // the server's setting is seen.
    assert_eq!(
        shared,
        ["on", "on", "on"],
        "the shared pool (API writes, fires) keeps the server's settings"
    );
    assert_eq!(
        durable,
        ["off", "off", "on"],
        "a durable commit takes the server's commit setting back; the planner's stay"
    );
    db.drop_db().await;
}
