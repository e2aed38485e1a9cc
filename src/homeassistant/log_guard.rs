//! Keeping the access token out of the log when a user turns logging up to `trace`.

/// Log filter directives the daemon must add to any user-chosen level: at `trace`,
/// tungstenite prints websocket frames, and the first one carries the access token. The
/// sink's own log lines never contain it.
pub const LOG_DIRECTIVES: [&str; 2] = ["tungstenite=debug", "tokio_tungstenite=debug"];

/// Says so loudly when the active log filter would print websocket frames.
pub(crate) fn warn_if_frames_are_logged() {
    if frames_are_logged() {
        tracing::warn!(
            "trace logging is on for tungstenite, which prints websocket frames including the Home Assistant access token; add {} to the log filter",
            LOG_DIRECTIVES.join(",")
        );
    }
}

fn frames_are_logged() -> bool {
    tracing::enabled!(target: "tungstenite::protocol", tracing::Level::TRACE)
        || tracing::enabled!(target: "tokio_tungstenite", tracing::Level::TRACE)
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::EnvFilter;

    fn logged_with(filter: &str) -> bool {
        let subscriber = tracing_subscriber::registry().with(EnvFilter::new(filter));
        tracing::subscriber::with_default(subscriber, super::frames_are_logged)
    }

    #[test]
    fn the_directives_silence_frame_logging() {
        assert!(logged_with("trace"));
        assert!(logged_with("info,tungstenite=trace"));
        let safe = std::iter::once("trace")
            .chain(super::LOG_DIRECTIVES)
            .collect::<Vec<_>>()
            .join(",");
        assert!(!logged_with(&safe));
        assert!(!logged_with("debug"));
    }
}
