//! Configuration layering and validation: every bad input gets a clear error naming its key and
//! where the value came from.

use meter2mqtt::providers::eloverblik;
use std::io::Write;

use meter2mqtt::config::{Config, ConfigError, Sources};

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn load(
    toml: Option<&str>,
    env: &[(&str, &str)],
    overrides: &[&str],
) -> (Result<Config, ConfigError>, Option<tempfile::NamedTempFile>) {
    let f = toml.map(file);
    let sources = Sources {
        file: f.as_ref().map(|f| f.path().to_owned()),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        env: Some(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
    };
    (Config::load(&sources), f)
}

fn issues(result: Result<Config, ConfigError>) -> Vec<String> {
    match result {
        Err(ConfigError::Invalid(issues)) => issues.iter().map(|i| i.to_string()).collect(),
        Err(other) => panic!("expected validation issues, got {other}"),
        Ok(_) => panic!("expected validation issues, got a valid config"),
    }
}

#[test]
fn defaults_alone_are_valid() {
    let (config, _) = load(None, &[], &[]);
    let config = config.unwrap();
    assert_eq!(config.mqtt.host, "localhost");
    assert_eq!(config.mqtt.port, 1883);
    assert_eq!(config.mqtt.base_topic, "meter2mqtt");
    assert_eq!(config.mqtt.discovery_prefix, "homeassistant");
    assert_eq!(config.bridge.poll_interval.as_secs(), 3600);
    assert_eq!(config.bridge.lookback.as_secs(), 7 * 86400);
    assert_eq!(config.state.dir.to_str(), Some("./state"));
}

#[test]
fn layers_file_then_env_then_set() {
    let toml = "[mqtt]\nhost = \"from-file\"\nport = 1000\nbase_topic = \"file\"\n[bridge]\npoll_interval = \"30m\"\n";
    let env = [
        ("METER2MQTT_MQTT__PORT", "2000"),
        ("METER2MQTT_MQTT__BASE_TOPIC", "env"),
    ];
    let (config, _) = load(Some(toml), &env, &["mqtt.base_topic=cli"]);
    let config = config.unwrap();
    assert_eq!(config.mqtt.host, "from-file");
    assert_eq!(config.mqtt.port, 2000);
    assert_eq!(config.mqtt.base_topic, "cli");
    assert_eq!(config.bridge.poll_interval.as_secs(), 1800);
}

#[test]
fn numeric_looking_env_values_for_string_fields_work() {
    let toml = "[[eloverblik]]\nrefresh_token = \"x\"\n";
    let env = [
        ("METER2MQTT_MQTT__PASSWORD", "007"),
        ("METER2MQTT_MQTT__USERNAME", "1234"),
        ("METER2MQTT_MQTT__CLIENT_ID", "42"),
    ];
    let (config, _) = load(Some(toml), &env, &[]);
    let config = config.unwrap();
    assert_eq!(config.mqtt.password.as_ref().unwrap().expose(), "007");
    assert_eq!(config.mqtt.username.as_deref(), Some("1234"));
    assert_eq!(config.mqtt.client_id, "42");

    // An 18-digit id and a numeric token given as TOML integers are read as strings.
    let toml = "[[eloverblik]]\nrefresh_token = 123456\nmetering_points = [571313180100000001]\n";
    let (config, _) = load(Some(toml), &[], &[]);
    let config = config.unwrap();
    assert_eq!(
        config.accounts_of::<eloverblik::Settings>()[0].metering_points,
        vec!["571313180100000001"]
    );
    assert_eq!(
        config.accounts_of::<eloverblik::Settings>()[0].refresh_token.expose(),
        "123456"
    );

    // A whole account from one env var, ids as a comma-separated string.
    let env = [(
        "METER2MQTT_ELOVERBLIK",
        "{refresh_token=\"tok\", metering_points=\"571313180100000001,571313180100000018\"}",
    )];
    let (config, _) = load(None, &env, &[]);
    let config = config.unwrap();
    assert_eq!(config.accounts_of::<eloverblik::Settings>()[0].metering_points.len(), 2);
}

#[test]
fn unknown_keys_are_errors_that_name_the_key_and_source() {
    let (result, f) = load(
        Some("[mqtt]\nhots = \"x\"\n[bogus]\na = 1\n"),
        &[("METER2MQTT_BRIDGE__POLLINTERVAL", "1h")],
        &[],
    );
    let all = issues(result).join("\n");
    let path = f.unwrap().path().display().to_string();
    assert!(all.contains("hots") && all.contains(&path), "{all}");
    assert!(all.contains("bogus") && all.contains("unknown key"), "{all}");
    assert!(
        all.contains("pollinterval") && all.contains("METER2MQTT_BRIDGE__POLLINTERVAL"),
        "{all}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let toml = r#"
[mqtt]
port = 0
base_topic = "a/#"
[bridge]
poll_interval = "often"
history_start = "yesterday"
[[eloverblik]]
refresh_token = ""
base_url = "not a url"
metering_points = ["123"]
[[enectiva]]
customer_uuid = "nope"
login_token = "t"
"#;
    let all = issues(load(Some(toml), &[("METER2MQTT_MQTT__KEEP_ALIVE", "1s")], &[]).0);
    let text = all.join("\n");
    for needle in [
        "bridge.poll_interval",
        "bridge.history_start",
        "eloverblik[0].refresh_token",
        "eloverblik[0].base_url",
        "eloverblik[0].metering_points",
        "enectiva[0].customer_uuid",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    assert!(all.len() >= 6, "{text}");
}

#[test]
fn semantic_checks_name_key_and_source() {
    let all = issues(
        load(
            Some("[mqtt]\nport = 0\nbase_topic = \"a/#\"\n"),
            &[("METER2MQTT_MQTT__KEEP_ALIVE", "1s")],
            &[],
        )
        .0,
    );
    let text = all.join("\n");
    assert!(
        text.contains("mqtt.port") && text.contains("between 1 and 65535"),
        "{text}"
    );
    assert!(text.contains("mqtt.base_topic") && text.contains("wildcards"), "{text}");
    assert!(
        text.contains("mqtt.keep_alive") && text.contains("env METER2MQTT_MQTT__KEEP_ALIVE"),
        "{text}"
    );
}

#[test]
fn missing_required_values() {
    let all = issues(load(Some("[[eloverblik]]\nmetering_points = []\n[[enectiva]]\nlogin_token = \"x\"\n[homeassistant]\ntoken = \"t\"\n"), &[], &[]).0);
    let text = all.join("\n");
    assert!(
        text.contains("eloverblik[0]") && text.contains("refresh_token"),
        "{text}"
    );
    assert!(text.contains("enectiva[0]") && text.contains("customer_uuid"), "{text}");
    assert!(text.contains("homeassistant") && text.contains("url"), "{text}");
}

#[test]
fn wrong_types_and_syntax() {
    let text = issues(load(Some("[mqtt]\nport = \"abc\"\n"), &[], &[]).0).join("\n");
    assert!(text.contains("mqtt.port"), "{text}");
    let text = issues(load(Some("[mqtt\nport = 1"), &[], &[]).0).join("\n");
    assert!(!text.is_empty());
    let text = issues(load(Some("mqtt = 5\n"), &[], &[]).0).join("\n");
    assert!(text.contains("expected a table"), "{text}");
    let text = issues(load(None, &[("METER2MQTT_MQTT__PORT", "70000")], &[]).0).join("\n");
    assert!(
        text.contains("mqtt.port") && text.contains("METER2MQTT_MQTT__PORT"),
        "{text}"
    );
}

#[test]
fn price_resolution_is_hour_or_quarter_and_co2_follows_prices() {
    let account = "[[eloverblik]]\nrefresh_token = \"x\"\n";
    let text = issues(load(Some(&format!("{account}price_resolution = \"halfhour\"\n")), &[], &[]).0).join("\n");
    assert!(
        text.contains("eloverblik[0].price_resolution") && text.contains("`hour` or `quarter`"),
        "{text}"
    );
    let config = load(Some(&format!("{account}price_resolution = \"quarter\"\n")), &[], &[])
        .0
        .unwrap();
    let settings = &config.accounts_of::<eloverblik::Settings>()[0];
    assert_eq!(
        settings.price_resolution,
        Some(meter2mqtt::energidataservice::PriceResolution::Quarter)
    );
    assert!(settings.co2, "on by default");
    let config = load(Some(account), &[("METER2MQTT_ELOVERBLIK__0__CO2", "false")], &[])
        .0
        .unwrap();
    assert!(!config.accounts_of::<eloverblik::Settings>()[0].co2);
}

#[test]
fn a_named_file_that_does_not_exist_is_an_error() {
    let sources = Sources {
        file: Some("/nonexistent/meter2mqtt.toml".into()),
        env: Some(vec![]),
        ..Default::default()
    };
    let err = Config::load(&sources).unwrap_err();
    assert!(matches!(err, ConfigError::MissingFile(_)), "{err}");
    assert!(err.to_string().contains("/nonexistent/meter2mqtt.toml"));
}

#[test]
fn bad_set_override() {
    let (result, _) = load(None, &[], &["mqtt.port"]);
    assert!(matches!(result, Err(ConfigError::BadOverride(_))));
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let toml = "[mqtt]\nusername = \"u\"\npassword = \"sekret-mqtt-pw\"\nport = 0\n[[eloverblik]]\nrefresh_token = \"sekret-refresh\"\nbase_url = \"nope\"\n";
    let (result, _) = load(Some(toml), &[], &[]);
    let text = issues(result).join("\n");
    assert!(!text.contains("sekret"), "{text}");
    let toml =
        "[mqtt]\nusername = \"u\"\npassword = \"sekret-mqtt-pw\"\n[[eloverblik]]\nrefresh_token = \"sekret-refresh\"\n";
    let config = load(Some(toml), &[], &[]).0.unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("sekret") && debug.contains("[redacted]"), "{debug}");
}

#[test]
fn the_example_config_is_valid() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml")).unwrap();
    let (result, _) = load(Some(&example), &[], &[]);
    if let Err(e) = result {
        panic!("config.example.toml: {e}");
    }
}

#[test]
fn env_keys_of_an_account_patch_the_files_account() {
    let toml =
        "[[eloverblik]]\nbase_url = \"http://127.0.0.1:9/customerapi\"\nmetering_points = [\"571313180100000001\"]\n";
    let env = [
        ("METER2MQTT_ELOVERBLIK__REFRESH_TOKEN", "from-env"),
        ("METER2MQTT_ENECTIVA__0__LOGIN_TOKEN", "007"),
    ];
    let (result, _) = load(Some(toml), &env, &[]);
    let text = issues(result).join("\n");
    // The file's ElOverblik account is complete now; the Enectiva one from env lacks its UUID.
    assert!(!text.contains("eloverblik"), "{text}");
    assert!(text.contains("enectiva[0]") && text.contains("customer_uuid"), "{text}");

    let env = [("METER2MQTT_ELOVERBLIK__REFRESH_TOKEN", "from-env")];
    let config = load(Some(toml), &env, &[]).0.unwrap();
    assert_eq!(config.accounts_of::<eloverblik::Settings>().len(), 1);
    assert_eq!(
        config.accounts_of::<eloverblik::Settings>()[0].refresh_token.expose(),
        "from-env"
    );
    assert_eq!(
        config.accounts_of::<eloverblik::Settings>()[0].base_url,
        "http://127.0.0.1:9/customerapi"
    );
    assert_eq!(
        config.accounts_of::<eloverblik::Settings>()[0].metering_points,
        vec!["571313180100000001"]
    );
}

#[test]
fn every_upload_series_problem_is_reported_with_its_key() {
    let toml = r#"
[[enectiva]]
customer_uuid = "5123d8ef-b501-4c71-b188-83ac399d66b9"
import_token = "imp"

[[enectiva.upload]]
entity = "sensor.heat"
topic = "tele/heat"
import_id = "heat main"

[[enectiva.upload]]
import_id = "none"
interval = "30s"

[[enectiva.upload]]
entity = "sensor.water"
import_id = "water"
type = "meter"
"#;
    let (result, _) = load(Some(toml), &[], &[]);
    let found = issues(result).join("\n");
    for expected in [
        "enectiva[0].upload[0].topic",
        "set either entity or topic",
        "enectiva[0].upload[0].import_id",
        "contains a space",
        "enectiva[0].upload[0].entity",
        "[homeassistant] is not configured",
        "enectiva[0].upload[1].entity",
        "set entity",
        "enectiva[0].upload[1].interval",
        "under a minute",
        "enectiva[0].upload[2].type",
        "found `meter`",
    ] {
        assert!(found.contains(expected), "{expected:?} missing in:\n{found}");
    }
}

#[test]
fn an_upload_only_account_needs_no_login_token() {
    let toml = r#"
[homeassistant]
url = "http://127.0.0.1:8123"
token = "t"

[[enectiva]]
customer_uuid = "5123d8ef-b501-4c71-b188-83ac399d66b9"
import_token = "imp"
upload = [{ entity = "sensor.heat", import_id = "heat-main", type = "profile" }]
"#;
    let (result, _) = load(Some(toml), &[], &[]);
    let config = result.unwrap();
    let accounts = config.accounts_of::<meter2mqtt::providers::enectiva::Settings>();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].upload.len(), 1);
    assert!(accounts[0].login_token.is_none());
    let neither = load(
        Some("[[enectiva]]\ncustomer_uuid = \"5123d8ef-b501-4c71-b188-83ac399d66b9\"\n"),
        &[],
        &[],
    )
    .0;
    let found = issues(neither).join("\n");
    assert!(
        found.contains("enectiva[0].login_token") && found.contains("or import_token"),
        "{found}"
    );
}
