//! Values that change by the clock (a price per quarter hour) have a topic each, kept current
//! between polls: a task publishes the value of the interval that holds now at every boundary
//! of the values' timetables. A poll hands it the newest values; dropping the handle stops it.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::retained::Retained;
use crate::clock::SharedClock;
use crate::model::MeterValue;
use crate::mqtt::entities::value::clocked_payload;
use crate::mqtt::MqttHandle;

/// One value and the topic it goes to.
pub(crate) type Clocked = (String, MeterValue);

pub(crate) struct ClockedValues {
    values: Arc<Mutex<Vec<Clocked>>>,
    changed: Arc<Notify>,
    task: Option<JoinHandle<()>>,
    mqtt: MqttHandle,
    retained: Retained,
    clock: SharedClock,
}

impl ClockedValues {
    pub(crate) fn new(mqtt: MqttHandle, retained: Retained, clock: SharedClock) -> ClockedValues {
        ClockedValues {
            values: Arc::default(),
            changed: Arc::new(Notify::new()),
            task: None,
            mqtt,
            retained,
            clock,
        }
    }

    /// Replaces the values and publishes each one's value now; the task takes over from here.
    pub(crate) fn set(&mut self, values: Vec<Clocked>, now: DateTime<Utc>) {
        for (topic, value) in &values {
            publish(&self.mqtt, &self.retained, topic, value, now);
        }
        let empty = values.is_empty();
        *self.values.lock().unwrap_or_else(PoisonError::into_inner) = values;
        if empty {
            return;
        }
        if self.task.is_none() {
            let (values, changed) = (self.values.clone(), self.changed.clone());
            let (mqtt, retained, clock) = (self.mqtt.clone(), self.retained.clone(), self.clock.clone());
            self.task = Some(tokio::spawn(async move {
                loop {
                    let next = {
                        let values = values.lock().unwrap_or_else(PoisonError::into_inner);
                        values.iter().filter_map(|(_, v)| v.next_change(clock.now())).min()
                    };
                    let wait = next.map(|at| (at - clock.now()).to_std().unwrap_or_default());
                    tokio::select! {
                        _ = changed.notified() => continue,
                        _ = async {
                            match wait {
                                Some(wait) => tokio::time::sleep(wait).await,
                                None => std::future::pending().await,
                            }
                        } => {}
                    }
                    let now = clock.now();
                    let values = values.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    for (topic, value) in &values {
                        publish(&mqtt, &retained, topic, value, now);
                    }
                }
            }));
        }
        self.changed.notify_one();
    }
}

impl Drop for ClockedValues {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `{"value": <the value at now>, "attributes": {...}}`, retained, when it changed.
fn publish(mqtt: &MqttHandle, retained: &Retained, topic: &str, value: &MeterValue, now: DateTime<Utc>) {
    retained.publish_if_changed(mqtt, topic.to_owned(), clocked_payload(value, now));
}
