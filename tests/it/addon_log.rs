//! What `addon::load` writes to the log. A test binary of its own: `tracing` caches per call site
//! whether anyone listens, so a scoped subscriber beside other tests' threads would miss events.

use std::sync::{Arc, Mutex};

use crate::support::addon::*;
use serde_json::json;

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_log_names_unknown_options_and_the_broker_but_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
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
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_no_secret(&log);
    assert!(
        log.contains("old_option") && log.contains("eloverblik[0].legacy_token"),
        "{log}"
    );
    assert!(log.contains("core-mosquitto"), "{log}");
}
