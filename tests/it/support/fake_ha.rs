//! A fake Home Assistant websocket API on 127.0.0.1: authentication, and the recorder commands
//! meter2mqtt uses, validated the way HA validates them (schema per version, statistic id
//! rule, source, hour-aligned timezone-aware starts). It keeps what it was given.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Timelike, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredRow {
    pub start: DateTime<Utc>,
    pub state: Option<f64>,
    pub sum: Option<f64>,
}

#[derive(Default)]
struct Behaviour {
    version: String,
    token: String,
    admin: bool,
    unresponsive: bool,
    /// Import commands still to accept before the next one fails (`None`: never fail).
    imports_before_failure: Option<usize>,
}

#[derive(Default)]
struct Recorder {
    metadata: BTreeMap<String, Value>,
    rows: BTreeMap<String, BTreeMap<i64, StoredRow>>,
    /// The hourly statistics the recorder compiled of entities (`sensor.x`).
    hours: BTreeMap<String, BTreeMap<i64, EntityHour>>,
}

/// An hour of an entity's long-term statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntityHour {
    pub start: DateTime<Utc>,
    pub state: Option<f64>,
    pub mean: Option<f64>,
    pub change: Option<f64>,
}

/// The entities' states, and who follows them.
#[derive(Default)]
struct States {
    current: BTreeMap<String, (String, Value)>,
}

#[derive(Default)]
struct Journal {
    commands: Vec<Value>,
    auth_attempts: usize,
    warnings: Vec<String>,
    refusals: Vec<String>,
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    recorder: Mutex<Recorder>,
    journal: Mutex<Journal>,
    down: watch::Sender<bool>,
    states: Mutex<States>,
    /// The entity whose state just changed, to every connection.
    changed: tokio::sync::broadcast::Sender<String>,
}

pub struct FakeHa {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeHa {
    pub async fn start(version: &str, token: &str) -> FakeHa {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake HA");
        let addr = listener.local_addr().expect("fake HA address");
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(Behaviour {
                version: version.into(),
                token: token.into(),
                admin: true,
                ..Behaviour::default()
            }),
            recorder: Mutex::default(),
            journal: Mutex::default(),
            down: watch::channel(false).0,
            states: Mutex::default(),
            changed: tokio::sync::broadcast::channel(1024).0,
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        FakeHa { addr, shared, task }
    }

    /// The address a user would type: `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_admin(&self, admin: bool) {
        lock(&self.shared.behaviour).admin = admin;
    }

    /// Down: open connections close, new ones are dropped at once, nothing is answered.
    pub fn set_down(&self, down: bool) {
        self.shared.down.send_replace(down);
    }

    pub fn set_unresponsive(&self, unresponsive: bool) {
        lock(&self.shared.behaviour).unresponsive = unresponsive;
    }

    /// Accept `n` more imports, then refuse the next one (as a recorder error would).
    pub fn fail_import_after(&self, n: usize) {
        lock(&self.shared.behaviour).imports_before_failure = Some(n);
    }

    pub fn rows(&self, statistic_id: &str) -> Vec<StoredRow> {
        lock(&self.shared.recorder)
            .rows
            .get(statistic_id)
            .map(|r| r.values().copied().collect())
            .unwrap_or_default()
    }

    pub fn metadata(&self, statistic_id: &str) -> Option<Value> {
        lock(&self.shared.recorder).metadata.get(statistic_id).cloned()
    }

    /// Puts rows into the recorder as if an earlier import had.
    pub fn seed(&self, metadata: Value, rows: &[StoredRow]) {
        let id = metadata["statistic_id"].as_str().expect("statistic_id").to_owned();
        let mut recorder = lock(&self.shared.recorder);
        recorder.metadata.insert(id.clone(), metadata);
        let stored = recorder.rows.entry(id).or_default();
        for r in rows {
            stored.insert(r.start.timestamp(), *r);
        }
    }

    /// Sets an entity's state (and unit), telling every `subscribe_entities` that follows it.
    pub fn set_state(&self, entity: &str, state: &str, unit: Option<&str>) {
        let attributes = match unit {
            Some(unit) => json!({"unit_of_measurement": unit}),
            None => json!({}),
        };
        lock(&self.shared.states)
            .current
            .insert(entity.to_owned(), (state.to_owned(), attributes));
        let _ = self.shared.changed.send(entity.to_owned());
    }

    /// Puts (or corrects) hours of an entity's long-term statistics.
    pub fn set_hours(&self, entity: &str, hours: &[EntityHour]) {
        let mut recorder = lock(&self.shared.recorder);
        let stored = recorder.hours.entry(entity.to_owned()).or_default();
        for h in hours {
            stored.insert(h.start.timestamp(), *h);
        }
    }

    /// Every command received after authentication, in order.
    pub fn commands(&self) -> Vec<Value> {
        lock(&self.shared.journal).commands.clone()
    }

    pub fn count(&self, command: &str) -> usize {
        lock(&self.shared.journal)
            .commands
            .iter()
            .filter(|c| c["type"] == command)
            .count()
    }

    pub fn auth_attempts(&self) -> usize {
        lock(&self.shared.journal).auth_attempts
    }

    /// What HA would have logged as deprecation warnings.
    pub fn warnings(&self) -> Vec<String> {
        lock(&self.shared.journal).warnings.clone()
    }

    /// Error messages HA answered with.
    pub fn refusals(&self) -> Vec<String> {
        lock(&self.shared.journal).refusals.clone()
    }
}

impl Drop for FakeHa {
    fn drop(&mut self) {
        self.task.abort();
        self.shared.down.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((tcp, _)) = listener.accept().await {
        if *shared.down.borrow() {
            drop(tcp);
            continue;
        }
        tokio::spawn(serve(tcp, shared.clone()));
    }
}

async fn serve(tcp: TcpStream, shared: Arc<Shared>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (version, token) = {
        let b = lock(&shared.behaviour);
        (b.version.clone(), b.token.clone())
    };
    if send(&mut ws, json!({"type": "auth_required", "ha_version": version}))
        .await
        .is_err()
    {
        return;
    }
    let Some(auth) = next_json(&mut ws).await else { return };
    lock(&shared.journal).auth_attempts += 1;
    if auth["type"] != "auth" || auth["access_token"].as_str() != Some(token.as_str()) {
        let _ = send(
            &mut ws,
            json!({"type": "auth_invalid", "message": "Invalid access token or password"}),
        )
        .await;
        let _ = ws.close(None).await;
        return;
    }
    if send(&mut ws, json!({"type": "auth_ok", "ha_version": version}))
        .await
        .is_err()
    {
        return;
    }
    let mut down = shared.down.subscribe();
    let mut changed = shared.changed.subscribe();
    // Per subscription id, the entities it follows.
    let mut following: Vec<(Value, Vec<String>)> = Vec::new();
    let mut last_id = 0;
    loop {
        let message = tokio::select! {
            biased;
            _ = down.wait_for(|d| *d) => return,
            entity = changed.recv() => Err(entity),
            m = next_json(&mut ws) => match m { Some(m) => Ok(m), None => return },
        };
        let message = match message {
            Ok(message) => message,
            Err(entity) => {
                let Ok(entity) = entity else { continue };
                let state = lock(&shared.states).current.get(&entity).cloned();
                for (id, entities) in &following {
                    if let (true, Some((s, a))) = (entities.contains(&entity), &state) {
                        let event = json!({"c": {entity.clone(): {"+": {"s": s, "a": a, "lu": 1.0}}}});
                        if send(&mut ws, json!({"id": id, "type": "event", "event": event}))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                continue;
            }
        };
        if *shared.down.borrow() {
            return;
        }
        lock(&shared.journal).commands.push(message.clone());
        if lock(&shared.behaviour).unresponsive {
            continue;
        }
        let id = message["id"].clone();
        // HA refuses an id that does not exceed the previous one on the connection.
        let fresh = id.as_u64().is_some_and(|n| n > last_id);
        last_id = id.as_u64().unwrap_or(last_id).max(last_id);
        let outcome = if fresh {
            handle(&shared, &message)
        } else {
            Answer::Err("id_reuse", "Identifier values have to increase.".into())
        };
        let answer = match outcome {
            Answer::Pong => json!({"id": id, "type": "pong"}),
            Answer::Ok(result) => json!({"id": id, "type": "result", "success": true, "result": result}),
            Answer::Err(code, text) => {
                lock(&shared.journal).refusals.push(format!("{code}: {text}"));
                json!({"id": id, "type": "result", "success": false, "error": {"code": code, "message": text}})
            }
        };
        let subscribed = message["type"] == "subscribe_entities" && answer["success"] == true;
        if send(&mut ws, answer).await.is_err() {
            return;
        }
        if subscribed {
            let entities: Vec<String> = message["entity_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect();
            let current = lock(&shared.states).current.clone();
            let added: Map<String, Value> = entities
                .iter()
                .filter_map(|e| {
                    current
                        .get(e)
                        .map(|(s, a)| (e.clone(), json!({"s": s, "a": a, "lu": 1.0})))
                })
                .collect();
            following.push((id.clone(), entities));
            if send(&mut ws, json!({"id": id, "type": "event", "event": {"a": added}}))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

async fn send(ws: &mut WebSocketStream<TcpStream>, v: Value) -> Result<(), ()> {
    ws.send(Message::text(v.to_string())).await.map_err(drop)
}

async fn next_json(ws: &mut WebSocketStream<TcpStream>) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

enum Answer {
    Pong,
    Ok(Value),
    Err(&'static str, String),
}

fn handle(shared: &Shared, m: &Value) -> Answer {
    if !m["id"].is_u64() {
        return Answer::Err("invalid_format", "Message incorrectly formatted.".into());
    }
    match m["type"].as_str().unwrap_or_default() {
        "ping" => Answer::Pong,
        "recorder/import_statistics" => import_statistics(shared, m),
        "recorder/statistics_during_period" => statistics_during_period(shared, m),
        "recorder/get_statistics_metadata" => get_statistics_metadata(shared, m),
        "subscribe_entities" => Answer::Ok(Value::Null),
        "get_states" => {
            let states = lock(&shared.states).current.clone();
            Answer::Ok(Value::Array(
                states
                    .into_iter()
                    .map(|(id, (s, a))| json!({"entity_id": id, "state": s, "attributes": a}))
                    .collect(),
            ))
        }
        _ => Answer::Err("unknown_command", "Unknown command.".into()),
    }
}

/// True from HA 2025.10 on.
fn current_schema(version: &str) -> bool {
    let mut parts = version.split('.');
    let year: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let month: u32 = parts
        .next()
        .map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (year, month) >= (2025, 10)
}

fn import_statistics(shared: &Shared, m: &Value) -> Answer {
    let current = current_schema(&lock(&shared.behaviour).version);
    if let Err(e) = check_import_schema(m, current) {
        return Answer::Err("invalid_format", e);
    }
    if !lock(&shared.behaviour).admin {
        return Answer::Err("unauthorized", "Unauthorized".into());
    }
    let metadata = &m["metadata"];
    if current {
        let mut journal = lock(&shared.journal);
        for key in ["mean_type", "unit_class"] {
            if metadata.get(key).is_none() {
                journal.warnings.push(format!(
                    "WS command recorder/import_statistics called without specifying {key} in metadata, this is deprecated and will stop working in HA Core 2026.11"
                ));
            }
        }
    }
    let statistic_id = metadata["statistic_id"].as_str().unwrap_or_default();
    if !valid_statistic_id(statistic_id) {
        return Answer::Err("home_assistant_error", "Invalid statistic_id".into());
    }
    let domain = statistic_id.split(':').next().unwrap_or_default();
    if metadata["source"].as_str() != Some(domain) {
        return Answer::Err("home_assistant_error", "Invalid source".into());
    }
    let mut parsed = Vec::new();
    for stat in m["stats"].as_array().into_iter().flatten() {
        let raw = stat["start"].as_str().unwrap_or_default();
        let start = match DateTime::parse_from_rfc3339(raw) {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => return Answer::Err("home_assistant_error", "Naive timestamp".into()),
        };
        if start.minute() != 0 || start.second() != 0 || start.nanosecond() != 0 {
            return Answer::Err("home_assistant_error", "Invalid timestamp".into());
        }
        parsed.push(StoredRow {
            start,
            state: stat["state"].as_f64(),
            sum: stat["sum"].as_f64(),
        });
    }
    {
        let mut b = lock(&shared.behaviour);
        match b.imports_before_failure {
            Some(0) => {
                b.imports_before_failure = None;
                return Answer::Err("home_assistant_error", "Recorder is not ready".into());
            }
            Some(n) => b.imports_before_failure = Some(n - 1),
            None => {}
        }
    }
    let mut recorder = lock(&shared.recorder);
    recorder.metadata.insert(statistic_id.to_owned(), metadata.clone());
    let rows = recorder.rows.entry(statistic_id.to_owned()).or_default();
    for r in parsed {
        rows.insert(r.start.timestamp(), r);
    }
    Answer::Ok(Value::Null)
}

/// The voluptuous schema of `recorder/import_statistics`: before 2025.10 `has_mean` is
/// required and `mean_type`/`unit_class` are unknown keys; from 2025.10 all three are optional.
fn check_import_schema(m: &Value, current: bool) -> Result<(), String> {
    only_keys(m, &["id", "type", "metadata", "stats"], "")?;
    let metadata = m["metadata"]
        .as_object()
        .ok_or("required key not provided @ data['metadata']")?;
    let mut allowed = vec![
        "has_sum",
        "name",
        "source",
        "statistic_id",
        "unit_of_measurement",
        "has_mean",
    ];
    if current {
        allowed.extend(["mean_type", "unit_class"]);
    }
    only_keys(&m["metadata"], &allowed, "['metadata']")?;
    let mut required = vec!["has_sum", "name", "source", "statistic_id", "unit_of_measurement"];
    if !current {
        required.push("has_mean");
    }
    for key in required {
        if !metadata.contains_key(key) {
            return Err(format!("required key not provided @ data['metadata']['{key}']"));
        }
    }
    let bad = |key: &str| format!("expected a different type @ data['metadata']['{key}']");
    for key in ["has_sum", "has_mean"] {
        if metadata.get(key).is_some_and(|v| !v.is_boolean()) {
            return Err(bad(key));
        }
    }
    for key in ["name", "unit_of_measurement", "unit_class"] {
        if metadata.get(key).is_some_and(|v| !(v.is_string() || v.is_null())) {
            return Err(bad(key));
        }
    }
    for key in ["source", "statistic_id"] {
        if !metadata[key].is_string() {
            return Err(bad(key));
        }
    }
    if let Some(mean_type) = metadata.get("mean_type") {
        if !matches!(mean_type.as_u64(), Some(0..=2)) {
            return Err("value must be one of [0, 1, 2] @ data['metadata']['mean_type']".into());
        }
    }
    if let Some(class) = metadata.get("unit_class").and_then(Value::as_str) {
        let units: &[&str] = match class {
            "energy" => &[
                "Wh", "kWh", "MWh", "GJ", "MJ", "J", "kJ", "cal", "kcal", "Mcal", "Gcal", "mWh", "TWh",
            ],
            "volume" => &["m³", "L", "mL", "ft³", "CCF", "gal", "fl. oz."],
            _ => return Err(format!("Unsupported unit_class: '{class}'")),
        };
        let unit = metadata["unit_of_measurement"].as_str().unwrap_or_default();
        if !units.contains(&unit) {
            return Err(format!(
                "Unsupported unit_of_measurement '{unit}' for unit_class '{class}'"
            ));
        }
    }
    let stats = m["stats"]
        .as_array()
        .ok_or("required key not provided @ data['stats']")?;
    for (i, stat) in stats.iter().enumerate() {
        only_keys(
            stat,
            &["start", "mean", "min", "max", "last_reset", "state", "sum"],
            &format!("['stats'][{i}]"),
        )?;
        if !stat["start"].is_string() {
            return Err(format!("required key not provided @ data['stats'][{i}]['start']"));
        }
        for key in ["mean", "min", "max", "state", "sum"] {
            if stat.get(key).is_some_and(|v| !v.is_number()) {
                return Err(format!("expected float @ data['stats'][{i}]['{key}']"));
            }
        }
    }
    Ok(())
}

fn only_keys(v: &Value, allowed: &[&str], path: &str) -> Result<(), String> {
    let object: &Map<String, Value> = v
        .as_object()
        .ok_or_else(|| format!("expected a dictionary @ data{path}"))?;
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(format!("extra keys not allowed @ data{path}['{extra}']")),
        None => Ok(()),
    }
}

/// HA's `VALID_STATISTIC_ID`: `^(?!.+__)(?!_)[\da-z_]+(?<!_):(?!_)[\da-z_]+(?<!_)$`.
pub fn valid_statistic_id(id: &str) -> bool {
    let Some((domain, object)) = id.split_once(':') else {
        return false;
    };
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !p.starts_with('_')
            && !p.ends_with('_')
    };
    part(domain) && part(object) && !id.contains("__")
}

fn statistics_during_period(shared: &Shared, m: &Value) -> Answer {
    if let Err(e) = only_keys(
        m,
        &[
            "id",
            "type",
            "start_time",
            "end_time",
            "statistic_ids",
            "period",
            "units",
            "types",
        ],
        "",
    ) {
        return Answer::Err("invalid_format", e);
    }
    let Some(ids) = m["statistic_ids"].as_array().filter(|ids| !ids.is_empty()) else {
        return Answer::Err(
            "invalid_format",
            "required key not provided @ data['statistic_ids']".into(),
        );
    };
    if m["period"] != "hour" {
        return Answer::Err("invalid_format", "this fake answers period 'hour' only".into());
    }
    let parse = |key: &str| {
        m[key]
            .as_str()
            .map(|s| DateTime::parse_from_rfc3339(s).map(|t| t.timestamp()))
    };
    let start = match parse("start_time") {
        Some(Ok(t)) => t,
        _ => return Answer::Err("invalid_start_time", "Invalid start_time".into()),
    };
    let end = match parse("end_time") {
        None => i64::MAX,
        Some(Ok(t)) => t,
        Some(Err(_)) => return Answer::Err("invalid_end_time", "Invalid end_time".into()),
    };
    let all_types = ["change", "last_reset", "max", "mean", "min", "state", "sum"];
    let types: Vec<String> = match m.get("types") {
        None => all_types.iter().map(|t| t.to_string()).collect(),
        Some(list) => {
            let list: Vec<String> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            if list.iter().any(|t| !all_types.contains(&t.as_str())) {
                return Answer::Err(
                    "invalid_format",
                    "value must be one of the statistic types @ data['types']".into(),
                );
            }
            list
        }
    };
    let recorder = lock(&shared.recorder);
    let mut result = Map::new();
    for id in ids.iter().filter_map(Value::as_str) {
        if let Some(hours) = recorder.hours.get(id) {
            let listed: Vec<Value> = hours
                .range(start..end)
                .map(|(&ts, h)| {
                    let mut row = Map::new();
                    row.insert("start".into(), json!(ts * 1000));
                    row.insert("end".into(), json!((ts + 3600) * 1000));
                    for (name, value) in [("state", h.state), ("mean", h.mean), ("change", h.change)] {
                        if types.iter().any(|t| t == name) {
                            row.insert(name.into(), json!(value));
                        }
                    }
                    Value::Object(row)
                })
                .collect();
            if !listed.is_empty() {
                result.insert(id.to_owned(), Value::Array(listed));
            }
            continue;
        }
        let Some(rows) = recorder.rows.get(id) else { continue };
        let listed: Vec<Value> = rows
            .range(start..end)
            .map(|(&ts, r)| {
                let mut row = Map::new();
                row.insert("start".into(), json!(ts * 1000));
                row.insert("end".into(), json!((ts + 3600) * 1000));
                if types.iter().any(|t| t == "state") {
                    row.insert("state".into(), json!(r.state));
                }
                if types.iter().any(|t| t == "sum") {
                    row.insert("sum".into(), json!(r.sum));
                }
                Value::Object(row)
            })
            .collect();
        if !listed.is_empty() {
            result.insert(id.to_owned(), Value::Array(listed));
        }
    }
    Answer::Ok(Value::Object(result))
}

fn get_statistics_metadata(shared: &Shared, m: &Value) -> Answer {
    let wanted: Option<Vec<&str>> = m
        .get("statistic_ids")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).collect());
    let recorder = lock(&shared.recorder);
    let listed: Vec<Value> = recorder
        .metadata
        .iter()
        .filter(|(id, _)| wanted.as_ref().is_none_or(|w| w.contains(&id.as_str())))
        .map(|(id, meta)| {
            json!({
                "statistic_id": id, "source": meta["source"], "name": meta["name"], "has_sum": meta["has_sum"],
                "mean_type": meta.get("mean_type").cloned().unwrap_or(json!(0)),
                "statistics_unit_of_measurement": meta["unit_of_measurement"], "unit_class": meta.get("unit_class").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    Answer::Ok(Value::Array(listed))
}
