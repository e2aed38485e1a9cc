//! `addon::load_with`: the add-on's options.json and a fake Supervisor (wiremock) in, a validated
//! `Config` or a clear error out. The environment is passed as an `AddonEnv`, so no test touches
//! the process environment.

use meter2mqtt::energidataservice::PriceResolution;
use meter2mqtt::providers::{eloverblik, enectiva};
use std::path::Path;
use std::time::Duration;

use crate::support::addon::*;
use chrono::NaiveDate;
use meter2mqtt::addon::{load_with, AddonEnv, AddonError};
use meter2mqtt::secret::Secret;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn every_option_reaches_its_config_field() {
    let server = healthy_supervisor().await;
    let options = json!({
        "eloverblik": [
            {"refresh_token": REFRESH_TOKEN, "metering_points": format!("{POINT_1}, {POINT_2}"), "name": "home",
             "price_resolution": "quarter", "co2": false},
            {"refresh_token": REFRESH_TOKEN_2, "base_url": "https://preprod.example/customerapi"}
        ],
        "enectiva": [{"customer_uuid": UUID, "login_token": LOGIN_TOKEN, "name": "flat", "base_url": "https://enectiva.example:8443/api"}],
        "poll_interval_minutes": 15,
        "history_start": "2024-06-01",
        "statistics": true,
        "statistics_cost": true,
        "log_level": "debug"
    });
    let (dir, result) = load(&options, &server).await;
    let config = result.unwrap_or_else(|e| panic!("{e}"));

    let elo = config.accounts_of::<eloverblik::Settings>();
    assert_eq!(elo.len(), 2);
    assert_eq!(elo[0].refresh_token.expose(), REFRESH_TOKEN);
    assert_eq!(elo[0].metering_points, vec![POINT_1, POINT_2]);
    assert_eq!(elo[0].name.as_deref(), Some("home"));
    assert_eq!(elo[0].base_url, "https://api.eloverblik.dk/customerapi");
    assert_eq!(elo[1].refresh_token.expose(), REFRESH_TOKEN_2);
    assert!(elo[1].metering_points.is_empty(), "no metering points: all of them");
    assert_eq!(elo[1].name, None);
    assert_eq!(elo[1].base_url, "https://preprod.example/customerapi");
    assert_eq!(elo[0].price_resolution, Some(PriceResolution::Quarter));
    assert!(!elo[0].co2);
    assert_eq!(elo[1].price_resolution, None, "empty: the metering point's own");
    assert!(elo[1].co2, "on where prices are on");

    let enectiva = config.accounts_of::<enectiva::Settings>();
    assert_eq!(enectiva.len(), 1);
    assert_eq!(enectiva[0].customer_uuid, UUID);
    assert_eq!(enectiva[0].login_token.as_ref().unwrap().expose(), LOGIN_TOKEN);
    assert_eq!(enectiva[0].name.as_deref(), Some("flat"));
    assert_eq!(enectiva[0].base_url, "https://enectiva.example:8443/api");

    assert_eq!(config.bridge.poll_interval, Duration::from_secs(15 * 60));
    assert_eq!(config.bridge.history_start, NaiveDate::from_ymd_opt(2024, 6, 1));
    assert_eq!(config.log.level, "debug");
    assert_eq!(config.state.dir, dir.path());

    assert_eq!(config.mqtt.host, "core-mosquitto");
    assert_eq!(config.mqtt.port, 1883);
    assert_eq!(config.mqtt.username.as_deref(), Some("addons"));
    assert_eq!(config.mqtt.password.as_ref().map(Secret::expose), Some(MQTT_PASSWORD));
    assert!(!config.mqtt.tls);

    let ha = config
        .homeassistant
        .as_ref()
        .expect("statistics on: Home Assistant through the Supervisor");
    let authority = server.uri().strip_prefix("http://").unwrap().to_owned();
    assert_eq!(ha.url, format!("ws://{authority}/core/websocket"));
    assert_eq!(ha.token.as_ref().map(Secret::expose), Some(SUPERVISOR_TOKEN));
    assert!(ha.statistics);
    assert!(ha.cost);

    assert_no_secret(&format!("{config:?}"));
}

#[tokio::test]
async fn the_defaults_of_config_yaml_and_one_token_are_enough() {
    let server = healthy_supervisor().await;
    let config_yaml: serde_json::Value = serde_norway::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("addon/config.yaml")).unwrap(),
    )
    .unwrap();
    let mut options = config_yaml["options"].clone();
    options["eloverblik"] = one_account()["eloverblik"].clone();

    let (_dir, result) = load(&options, &server).await;
    let config = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.accounts_of::<eloverblik::Settings>().len(), 1);
    assert!(config.accounts_of::<enectiva::Settings>().is_empty());
    assert_eq!(config.bridge.poll_interval, Duration::from_secs(3600));
    assert_eq!(config.bridge.history_start, None, "default: 1 January of last year");
    assert_eq!(config.log.level, "info");
    assert_eq!(config.mqtt.discovery_prefix, "homeassistant");
    assert_eq!(config.mqtt.base_topic, "meter2mqtt");
    let ha = config.homeassistant.expect("statistics are on by default");
    assert!(ha.statistics && !ha.cost);
}

#[tokio::test]
async fn statistics_off_imports_none_but_keeps_home_assistant_for_uploads() {
    let server = healthy_supervisor().await;
    let mut options = one_account();
    options["statistics"] = json!(false);
    options["statistics_cost"] = json!(true);
    let (_dir, result) = load(&options, &server).await;
    let ha = result.unwrap().homeassistant.expect("the link for upload entities");
    assert!(!ha.statistics);
}

#[tokio::test]
async fn optional_options_may_be_null_or_empty_and_unknown_ones_are_ignored() {
    let server = healthy_supervisor().await;
    let options = json!({
        "eloverblik": [{"refresh_token": REFRESH_TOKEN, "metering_points": "", "name": null, "old_field": 1}],
        "history_start": "",
        "log_level": null,
        "removed_option": "x"
    });
    let (_dir, result) = load(&options, &server).await;
    let config = result.unwrap_or_else(|e| panic!("{e}"));
    assert!(config.accounts_of::<eloverblik::Settings>()[0]
        .metering_points
        .is_empty());
    assert_eq!(config.accounts_of::<eloverblik::Settings>()[0].name, None);
    assert_eq!(config.bridge.history_start, None);
    assert_eq!(config.log.level, "info");
}

#[tokio::test]
async fn a_numeric_token_keeps_its_digits() {
    let server = healthy_supervisor().await;
    let options = json!({"eloverblik": [{"refresh_token": 571313180100000001u64, "metering_points": POINT_1}]});
    let (_dir, result) = load(&options, &server).await;
    let config = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.accounts_of::<eloverblik::Settings>()[0].refresh_token.expose(),
        "571313180100000001"
    );
}

#[tokio::test]
async fn each_bad_value_is_reported_under_its_option_before_the_supervisor_is_asked() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let account = |extra: Value| {
        let mut entry = json!({"refresh_token": REFRESH_TOKEN});
        entry
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"eloverblik": [entry]})
    };
    let with = |key: &str, value: Value| {
        let mut options = one_account();
        options[key] = value;
        options
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"eloverblik": [{"refresh_token": " "}]}),
            "eloverblik[0].refresh_token",
            "must not be empty",
        ),
        (
            account(json!({"metering_points": "12345"})),
            "eloverblik[0].metering_points",
            "18 digits",
        ),
        (
            json!({"eloverblik": [{"metering_points": POINT_1}]}),
            "eloverblik[0]",
            "refresh_token",
        ),
        (
            json!({"enectiva": [{"customer_uuid": "my-account", "login_token": LOGIN_TOKEN}]}),
            "enectiva[0].customer_uuid",
            "not a UUID",
        ),
        (
            json!({"enectiva": [{"customer_uuid": UUID, "login_token": ""}]}),
            "enectiva[0].login_token",
            "must not be empty",
        ),
        (
            json!({"enectiva": [{"customer_uuid": UUID}]}),
            "enectiva[0].login_token",
            "is required (or import_token",
        ),
        (
            json!({"enectiva": [{"customer_uuid": UUID, "import_token": LOGIN_TOKEN}],
                   "enectiva_upload": [{"entity": "sensor.heat", "import_id": "heat main"}]}),
            "enectiva[0].upload[0].import_id",
            "contains a space",
        ),
        (
            json!({"enectiva": [{"customer_uuid": UUID, "import_token": LOGIN_TOKEN}],
                   "enectiva_upload": [{"entity": "sensor.heat", "import_id": "heat", "interval": "20s"}]}),
            "enectiva[0].upload[0].interval",
            "under a minute",
        ),
        (
            json!({"enectiva": [{"customer_uuid": UUID, "import_token": LOGIN_TOKEN, "name": "a"}, {"customer_uuid": UUID, "import_token": LOGIN_TOKEN, "name": "b"}],
                   "enectiva_upload": [{"entity": "sensor.heat", "import_id": "heat"}]}),
            "enectiva_upload[0].account",
            "name the account",
        ),
        (
            json!({"enectiva": [{"customer_uuid": UUID, "login_token": LOGIN_TOKEN}],
                   "enectiva_upload": [{"entity": "sensor.heat", "import_id": "heat"}]}),
            "enectiva[0].import_token",
            "is required for upload series",
        ),
        (
            with("history_start", json!("01-06-2024")),
            "history_start",
            "YYYY-MM-DD",
        ),
        (
            with("history_start", json!("2999-01-01")),
            "history_start",
            "in the future",
        ),
        (
            with("poll_interval_minutes", json!(2)),
            "poll_interval_minutes",
            "from 5 to 1440",
        ),
        (
            with("poll_interval_minutes", json!("hourly")),
            "poll_interval_minutes",
            "from 5 to 1440",
        ),
        (
            with("log_level", json!("very loud")),
            "log_level",
            "not one of trace, debug, info, warn, error",
        ),
        (with("log_level", json!(3)), "log_level", "not one of"),
        (with("statistics", json!("yes")), "statistics", "true or false"),
        (with("statistics_cost", json!(1)), "statistics_cost", "true or false"),
        (json!({"eloverblik": REFRESH_TOKEN}), "eloverblik", "list of accounts"),
        (
            json!({"eloverblik": [REFRESH_TOKEN]}),
            "eloverblik[0]",
            "must be an account",
        ),
        (json!({"enectiva": [LOGIN_TOKEN]}), "enectiva[0]", "must be an account"),
        (json!({}), "eloverblik", "no account is configured"),
        (
            json!({"eloverblik": [], "enectiva": []}),
            "eloverblik",
            "no account is configured",
        ),
        (
            json!({"eloverblik": [{"refresh_token": REFRESH_TOKEN, "name": "home"}, {"refresh_token": REFRESH_TOKEN_2, "name": "home"}]}),
            "eloverblik.name",
            "unique",
        ),
    ];
    for (options, key, fragment) in cases {
        let (_dir, result) = load(&options, &server).await;
        let error = result.expect_err(&format!("{options} should be rejected"));
        let text = shown(&error);
        let AddonError::InvalidOptions(issues) = &error else {
            panic!("{options}: not an options error: {text}")
        };
        assert!(
            issues.iter().any(|i| i.key == key && i.message.contains(fragment)),
            "{options}: expected {key} with {fragment:?}, got: {text}"
        );
        assert!(text.contains("Configuration tab"), "{text}");
    }
}

#[tokio::test]
async fn several_bad_values_are_reported_together() {
    let server = healthy_supervisor().await;
    let options = json!({
        "eloverblik": [{"refresh_token": ""}],
        "enectiva": [{"customer_uuid": "x", "login_token": LOGIN_TOKEN}],
        "history_start": "soon"
    });
    let (_dir, result) = load(&options, &server).await;
    let error = result.unwrap_err();
    let text = shown(&error);
    for key in [
        "eloverblik[0].refresh_token",
        "enectiva[0].customer_uuid",
        "history_start",
    ] {
        assert!(text.contains(&format!("  - {key}: ")), "{key} missing from: {text}");
    }
    assert!(text.starts_with("the app options have 3 problems"), "{text}");
}

#[tokio::test]
async fn options_file_problems_are_explained() {
    let server = healthy_supervisor().await;
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("options.json");
    let error = load_with(&missing, &env(&server.uri())).await.unwrap_err();
    assert!(matches!(error, AddonError::OptionsMissing(_)), "{error}");
    assert!(shown(&error).contains(&missing.display().to_string()));
    assert!(
        error.to_string().contains("--config"),
        "says what to do outside the add-on: {error}"
    );

    let error = load_with(dir.path(), &env(&server.uri())).await.unwrap_err();
    assert!(matches!(error, AddonError::OptionsUnreadable { .. }), "{error}");

    for (content, fragment) in [
        (
            format!("{{\"eloverblik\": [{{\"refresh_token\": \"{REFRESH_TOKEN}\""),
            "EOF",
        ),
        (format!("[\"{REFRESH_TOKEN}\"]"), "not a {...} object"),
        (String::new(), "EOF"),
    ] {
        std::fs::write(&missing, &content).unwrap();
        let error = load_with(&missing, &env(&server.uri())).await.unwrap_err();
        let text = shown(&error);
        assert!(matches!(error, AddonError::OptionsNotJson { .. }), "{text}");
        assert!(text.contains(fragment), "{text}");
    }
}

#[tokio::test]
async fn without_supervisor_token_it_says_where_it_must_run() {
    let server = healthy_supervisor().await;
    let (_dir, file) = write_options(&one_account());
    let env = AddonEnv {
        supervisor_token: None,
        ..env(&server.uri())
    };
    let error = load_with(&file, &env).await.unwrap_err();
    assert!(matches!(error, AddonError::MissingSupervisorToken));
    assert!(shown(&error).contains("SUPERVISOR_TOKEN"));
}

async fn supervisor_error(answer: ResponseTemplate) -> AddonError {
    let server = supervisor(answer).await;
    let (_dir, result) = load(&one_account(), &server).await;
    result.expect_err("the Supervisor's answer should stop the start")
}

#[tokio::test]
async fn no_mqtt_service_points_to_the_mosquitto_add_on() {
    let error = supervisor_error(
        ResponseTemplate::new(400).set_body_json(json!({"result": "error", "message": "Service not enabled"})),
    )
    .await;
    let text = shown(&error);
    assert!(matches!(error, AddonError::MqttServiceUnavailable { .. }), "{text}");
    assert!(
        text.contains("Service not enabled") && text.contains("Mosquitto broker app"),
        "{text}"
    );

    let error = supervisor_error(
        ResponseTemplate::new(200).set_body_json(json!({"result": "error", "message": "Service not enabled"})),
    )
    .await;
    assert!(
        matches!(error, AddonError::MqttServiceUnavailable { .. }),
        "{}",
        shown(&error)
    );
}

#[tokio::test]
async fn a_refusal_names_the_permission() {
    for answer in [
        ResponseTemplate::new(403).set_body_json(json!({"result": "error", "message": "No access to mqtt service!"})),
        ResponseTemplate::new(401).set_body_string("401: Unauthorized"),
    ] {
        let error = supervisor_error(answer).await;
        let text = shown(&error);
        assert!(matches!(error, AddonError::SupervisorRefused { .. }), "{text}");
        assert!(text.contains("mqtt:need"), "{text}");
    }
}

#[tokio::test]
async fn the_supervisor_token_is_what_gets_the_broker() {
    let server = healthy_supervisor().await;
    let (_dir, file) = write_options(&one_account());
    let env = AddonEnv {
        supervisor_token: Some(Secret::new("another-token")),
        ..env(&server.uri())
    };
    let error = load_with(&file, &env).await.unwrap_err();
    assert!(
        matches!(error, AddonError::SupervisorRefused { status: 401, .. }),
        "{}",
        shown(&error)
    );
}

#[tokio::test]
async fn unusable_answers_are_explained_without_the_password() {
    let data = |data: Value| ResponseTemplate::new(200).set_body_json(json!({"result": "ok", "data": data}));
    let cases = vec![
        (
            ResponseTemplate::new(200).set_body_string(format!("password={MQTT_PASSWORD}")),
            "not JSON",
        ),
        (data(json!({"port": 1883, "password": MQTT_PASSWORD})), "no broker host"),
        (
            data(json!({"host": "core-mosquitto", "password": MQTT_PASSWORD})),
            "no broker port",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"data": {}})),
            "no \"result\"",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"result": "ok"})),
            "no \"data\"",
        ),
        (data(json!({"host": "h", "port": 1883, "ssl": "maybe"})), "\"ssl\""),
    ];
    for (answer, fragment) in cases {
        let error = supervisor_error(answer).await;
        let text = shown(&error);
        assert!(matches!(error, AddonError::SupervisorAnswer { .. }), "{text}");
        assert!(text.contains(fragment), "expected {fragment:?} in {text}");
    }
}

#[tokio::test]
async fn broker_values_go_through_config_validation() {
    let answer = json!({"result": "ok", "data": {"host": "", "port": 0, "password": MQTT_PASSWORD}});
    let error = supervisor_error(ResponseTemplate::new(200).set_body_json(answer)).await;
    let text = shown(&error);
    let AddonError::InvalidMqttService(issues) = &error else {
        panic!("{text}")
    };
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert!(keys.contains(&"mqtt.host") && keys.contains(&"mqtt.port"), "{text}");
    assert!(keys.contains(&"mqtt.password"), "a password without a username: {text}");
}

#[cfg(not(feature = "mqtt-tls"))]
#[tokio::test]
async fn a_tls_only_broker_is_reported_when_this_build_has_no_tls() {
    let mut answer = mqtt_answer();
    answer["data"]["ssl"] = json!(true);
    answer["data"]["port"] = json!(8883);
    let error = supervisor_error(ResponseTemplate::new(200).set_body_json(answer)).await;
    let text = shown(&error);
    assert!(
        matches!(error, AddonError::MqttTlsUnavailable { port: 8883, .. }),
        "{text}"
    );
    assert!(text.contains("core-mosquitto:8883"), "{text}");
}

#[tokio::test]
async fn an_unreachable_or_failing_supervisor_is_named() {
    let error = supervisor_error(ResponseTemplate::new(502).set_body_string("Bad Gateway")).await;
    let text = shown(&error);
    assert!(matches!(error, AddonError::SupervisorUnreachable { .. }), "{text}");
    assert!(text.contains("502"), "{text}");

    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (_dir, file) = write_options(&one_account());
    let error = load_with(&file, &env(&url)).await.unwrap_err();
    let text = shown(&error);
    assert!(matches!(error, AddonError::SupervisorUnreachable { .. }), "{text}");
    assert!(text.contains(&url) && text.contains("could not connect"), "{text}");

    let error = load_with(&file, &env("supervisor")).await.unwrap_err();
    assert!(
        matches!(error, AddonError::BadSupervisorUrl { .. }),
        "{}",
        shown(&error)
    );
}
