//! The sender's PostgreSQL pool: its sessions plan by index, for each execution's values, and commit without waiting for the flush, a durable commit restores the server's own setting, and the shared pool keeps the server's settings.

mod common;

#[tokio::test]
async fn the_senders_sessions_carry_their_settings_and_the_shared_pool_does_not() {
    if !common::postgres_available("the sender's pool").await {
        return;
    }
    let db = common::PgTestDb::new().await;
    let sql = common::connect(&db.config()).await;
    let [sender, durable, shared] = sql.sender_settings().await.expect("settings");
    assert_eq!(
        sender,
        ["off", "off,force_custom_plan", "off"],
        "the sender's session"
    );
    // The shared pool's sessions run as the server is configured (scans
    // on, plans cached as the server decides: checked below). A
    // durable commit must come back to the server's commit setting, which
    // is seen only where the server commits durably (its default, `on`,
    // as on this project's machines and CI).
    assert_ne!(
        shared[2], "off",
        "this check needs a server that commits durably (synchronous_commit other than off)"
    );
    assert_eq!(
        durable,
        [
            "off".to_owned(),
            "off,force_custom_plan".to_owned(),
            shared[2].clone()
        ],
        "a durable commit takes the server's commit setting back; the planner's stay"
    );
    assert!(
        shared[0] != "off" && !shared[1].contains("off") && !shared[1].contains("force"),
        "the shared pool (API writes, fires) does not take the sender's planner settings: {shared:?}"
    );
    db.drop_db().await;
}
