//! Home Assistant entities, followed with `subscribe_entities`: Home Assistant sends each
//! entity's state at once (on every connection) and then every change, compressed:
//! `{"a": {id: {"s": state, "a": attributes}}}` for additions, `{"c": {id: {"+": {...}}}}` for
//! changes, `{"r": [id]}` for removals.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::{number, Latest};
use crate::clock::SharedClock;
use crate::homeassistant::{Client, Command, LinkState};

/// Per entity id, the cells of the series that read it.
pub(crate) type EntityFeeds = HashMap<String, Vec<Latest>>;

#[derive(Debug)]
struct SubscribeEntities {
    entity_ids: Vec<String>,
}

impl Command for SubscribeEntities {
    fn name(&self) -> &'static str {
        "subscribe_entities"
    }

    fn subject(&self) -> &str {
        "the upload entities"
    }

    fn body(&self, _ha_version: Option<&str>) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("entity_ids".into(), json!(self.entity_ids));
        body
    }
}

/// Subscribes to the feeds' entities at once (before any later call on the link), and returns
/// the task that keeps every feed's cell up to date until `stop`.
pub(crate) fn follow_entities(
    client: &Client,
    feeds: EntityFeeds,
    clock: SharedClock,
    stop: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut entity_ids: Vec<String> = feeds.keys().cloned().collect();
    entity_ids.sort();
    let events = client.subscribe(SubscribeEntities { entity_ids });
    let status = client.status_updates();
    follow(events, status, feeds, clock, stop)
}

async fn follow(
    mut events: tokio::sync::mpsc::UnboundedReceiver<Value>,
    mut status: tokio::sync::watch::Receiver<crate::homeassistant::LinkStatus>,
    feeds: EntityFeeds,
    clock: SharedClock,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            event = events.recv() => match event {
                Some(event) => apply(&event, &feeds, &clock),
                None => return,
            },
            changed = status.changed() => {
                if changed.is_err() {
                    return;
                }
                let connected = matches!(status.borrow_and_update().state, LinkState::Connected);
                if !connected {
                    let now = clock.now();
                    feeds.values().flatten().for_each(|latest| latest.lost(now));
                }
            }
        }
    }
}

fn apply(event: &Value, feeds: &EntityFeeds, clock: &SharedClock) {
    let now = clock.now();
    for (key, full) in [("a", true), ("c", false)] {
        let Some(entities) = event.get(key).and_then(Value::as_object) else {
            continue;
        };
        for (entity_id, compressed) in entities {
            let Some(cells) = feeds.get(entity_id) else { continue };
            let state = if full { Some(compressed) } else { compressed.get("+") };
            let Some(state) = state else { continue };
            if let Some(unit) = state
                .get("a")
                .and_then(|a| a.get("unit_of_measurement"))
                .and_then(Value::as_str)
            {
                cells.iter().for_each(|c| c.set_unit(Some(unit.to_owned())));
            }
            // A change of attributes only leaves the state as it was.
            let Some(text) = state
                .get("s")
                .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned))
            else {
                continue;
            };
            let value = number(&text);
            if value.is_none() {
                tracing::debug!(entity = %entity_id, state = %text, "not a number; no record until the entity has a numeric state");
            }
            cells.iter().for_each(|c| c.set(value, now, true));
        }
    }
    for removed in event.get("r").and_then(Value::as_array).into_iter().flatten() {
        if let Some(cells) = removed.as_str().and_then(|id| feeds.get(id)) {
            tracing::debug!(entity = %removed, "the entity was removed from Home Assistant");
            cells.iter().for_each(|c| c.set(None, now, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn additions_changes_and_removals_update_the_cells() {
        let now: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let clock: SharedClock = Arc::new(move || now);
        let cell = Latest::default();
        let feeds: EntityFeeds = [("sensor.heat".to_owned(), vec![cell.clone()])].into();
        let hour = Duration::from_secs(3600);
        apply(
            &json!({"a": {"sensor.heat": {"s": "12.5", "a": {"unit_of_measurement": "MWh"}, "lu": 1.0}}}),
            &feeds,
            &clock,
        );
        assert_eq!((cell.at(now, hour), cell.unit()), (Some(12.5), Some("MWh".into())));
        apply(
            &json!({"c": {"sensor.heat": {"+": {"s": "13", "lu": 2.0}}}}),
            &feeds,
            &clock,
        );
        assert_eq!(cell.at(now, hour), Some(13.0));
        apply(
            &json!({"c": {"sensor.heat": {"+": {"a": {"friendly_name": "x"}}}}}),
            &feeds,
            &clock,
        );
        assert_eq!(cell.at(now, hour), Some(13.0));
        apply(
            &json!({"c": {"sensor.heat": {"+": {"s": "unavailable"}}}}),
            &feeds,
            &clock,
        );
        assert_eq!(cell.at(now, hour), None);
        apply(&json!({"a": {"sensor.heat": {"s": "14"}}}), &feeds, &clock);
        apply(&json!({"r": ["sensor.heat"]}), &feeds, &clock);
        assert_eq!(cell.at(now, hour), None);
    }
}
