//! What `addon::load` writes to the log.

use crate::support::addon::*;
use crate::support::logs::Logs;
use serde_json::json;

#[test]
fn the_log_names_unknown_options_and_the_broker_but_no_secret() {
    let (logs, capturing) = Logs::capture();
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = healthy_supervisor().await;
            let options = json!({
                "eloverblik": [{"refresh_token": REFRESH_TOKEN, "legacy_token": REFRESH_TOKEN_2}],
                "enectiva": [{"customer_uuid": UUID, "login_token": LOGIN_TOKEN}],
                "old_option": true
            });
            let (_dir, result) = load(&options, &server).await;
            result.unwrap_or_else(|e| panic!("{e}"));
        });
    }
    drop(capturing);
    let log = logs.text();
    assert_no_secret(&log);
    assert!(
        log.contains("old_option") && log.contains("eloverblik[0].legacy_token"),
        "{log}"
    );
    assert!(log.contains("core-mosquitto"), "{log}");
}
