//! The add-on's files as the Supervisor and the add-on store read them: config.yaml, translations,
//! Dockerfile, AppArmor profile, images, docs, and the repository's repository.yaml.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use meter2mqtt::addon::{offered, options, LOG_LEVELS, POLL_MINUTES};
use meter2mqtt::model::ApiStatus;
use serde_norway::{Mapping, Value};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    let full = root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn yaml(path: &str) -> Mapping {
    match serde_norway::from_str::<Value>(&read(path)).unwrap_or_else(|e| panic!("{path} is not YAML: {e}")) {
        Value::Mapping(map) => map,
        other => panic!("{path} is not a mapping: {other:?}"),
    }
}

fn get<'a>(map: &'a Mapping, key: &str) -> &'a Value {
    map.get(key).unwrap_or_else(|| panic!("missing key {key:?}"))
}

fn text<'a>(map: &'a Mapping, key: &str) -> &'a str {
    get(map, key)
        .as_str()
        .unwrap_or_else(|| panic!("{key:?} is not a string"))
}

fn keys(map: &Mapping) -> BTreeSet<String> {
    map.keys()
        .map(|k| k.as_str().expect("string keys").to_owned())
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn config() -> Mapping {
    yaml("addon/config.yaml")
}

fn schema() -> Mapping {
    get(&config(), "schema")
        .as_mapping()
        .expect("schema is a mapping")
        .clone()
}

/// The dictionary describing one entry of a list-of-dictionaries schema option.
fn list_entry<'a>(schema: &'a Mapping, key: &str) -> &'a Mapping {
    let list = get(schema, key)
        .as_sequence()
        .unwrap_or_else(|| panic!("schema {key} is not a list"));
    assert_eq!(list.len(), 1, "schema {key} describes one entry");
    list[0]
        .as_mapping()
        .unwrap_or_else(|| panic!("schema {key}'s entry is not a dictionary"))
}

#[test]
fn config_has_the_required_and_agreed_keys() {
    let config = config();
    for key in ["name", "version", "slug", "description", "arch"] {
        assert!(config.contains_key(key), "config.yaml lacks the required key {key}");
    }
    assert_eq!(text(&config, "name"), "meter2mqtt");
    assert_eq!(text(&config, "slug"), "meter2mqtt");
    assert!(text(&config, "description").len() > 30, "a description users can read");
    assert!(text(&config, "url").starts_with("https://"));
    assert_eq!(text(&config, "startup"), "application");
    assert_eq!(text(&config, "boot"), "auto");
    assert_eq!(strings(get(&config, "services")), vec!["mqtt:need"]);
    assert_eq!(get(&config, "homeassistant_api").as_bool(), Some(true));
    // The binary is PID 1 and handles SIGTERM itself; Docker's tini would only sit in between.
    assert_eq!(get(&config, "init").as_bool(), Some(false));
    assert!(text(&config, "image").contains("{arch}"), "one image per architecture");
}

#[test]
fn arch_is_exactly_amd64_and_aarch64() {
    let mut arch = strings(get(&config(), "arch"));
    arch.sort();
    assert_eq!(arch, vec!["aarch64", "amd64"]);
}

#[test]
fn version_matches_cargo_toml() {
    assert_eq!(text(&config(), "version"), VERSION);
    let cargo = read("Cargo.toml");
    assert!(
        cargo.contains(&format!("\nversion = \"{VERSION}\"\n")),
        "Cargo.toml's package version is {VERSION}"
    );
}

/// A schema type as the Supervisor documents them, `?` marking an optional one.
fn is_schema_type(raw: &str) -> bool {
    let ty = raw.strip_suffix('?').unwrap_or(raw);
    let ranged = |name: &str| {
        ty == name
            || ty
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
                .is_some_and(|range| {
                    let (min, max) = range.split_once(',').unwrap_or(("", ""));
                    (!min.is_empty() || !max.is_empty())
                        && [min, max]
                            .iter()
                            .all(|n| n.is_empty() || n.trim().parse::<f64>().is_ok())
                })
    };
    matches!(ty, "bool" | "email" | "url" | "password" | "port")
        || ranged("str")
        || ranged("int")
        || ranged("float")
        || ty.starts_with("match(") && ty.ends_with(')')
        || ty
            .strip_prefix("list(")
            .and_then(|r| r.strip_suffix(')'))
            .is_some_and(|items| items.split('|').all(|i| !i.is_empty()))
        || ty.starts_with("device")
}

fn is_optional(schema_value: &Value) -> bool {
    schema_value.as_str().is_some_and(|t| t.ends_with('?'))
}

/// Options and schema describe the same keys: every option has a schema entry, and every schema
/// entry without `?` has a default (lists of dictionaries compared entry by entry).
fn compare(path: &str, options: &Mapping, schema: &Mapping) {
    for key in keys(options) {
        assert!(
            schema.contains_key(key.as_str()),
            "option {path}{key} has no schema entry"
        );
    }
    for (key, ty) in schema {
        let key = key.as_str().expect("string key");
        let here = format!("{path}{key}");
        match ty {
            Value::String(t) => {
                assert!(
                    is_schema_type(t),
                    "schema {here}: {t:?} is not a Supervisor schema type"
                );
                assert!(
                    options.contains_key(key) || is_optional(ty),
                    "schema {here} is required but has no default"
                );
            }
            Value::Sequence(entries) => {
                let entry = entries[0]
                    .as_mapping()
                    .unwrap_or_else(|| panic!("schema {here} is not a list of dictionaries"));
                let defaults = options.get(key).and_then(Value::as_sequence);
                let defaults = defaults.unwrap_or_else(|| panic!("option {here} needs a default list"));
                for (i, default) in defaults.iter().enumerate() {
                    compare(
                        &format!("{here}[{i}]."),
                        default.as_mapping().expect("a dictionary"),
                        entry,
                    );
                }
                for (field, field_ty) in entry {
                    let t = field_ty
                        .as_str()
                        .unwrap_or_else(|| panic!("schema {here}.{field:?} nests too deep"));
                    assert!(
                        is_schema_type(t),
                        "schema {here}.{field:?}: {t:?} is not a Supervisor schema type"
                    );
                }
            }
            other => panic!("schema {here} is neither a type nor a list: {other:?}"),
        }
    }
}

#[test]
fn every_option_has_a_schema_entry_and_vice_versa() {
    let config = config();
    let options = get(&config, "options").as_mapping().expect("options is a mapping");
    compare("", options, &schema());
    assert!(
        !is_schema_type("string") && !is_schema_type("int(a,)") && !is_schema_type("list()"),
        "the checker rejects"
    );
}

#[test]
fn the_schema_is_what_the_code_reads() {
    let schema = schema();
    assert_eq!(keys(&schema), set(&options()));
    let fields = |kind: &str| offered().into_iter().find(|(k, _)| *k == kind).unwrap().1.fields;
    assert_eq!(keys(list_entry(&schema, "eloverblik")), set(fields("eloverblik")));
    assert_eq!(keys(list_entry(&schema, "enectiva")), set(fields("enectiva")));
    let upload = offered().into_iter().find(|(k, _)| *k == "enectiva").unwrap().1.lists[0];
    let mut upload_fields = set(upload.fields);
    upload_fields.insert("account".into());
    assert_eq!(keys(list_entry(&schema, upload.option)), upload_fields);
    assert_eq!(text(list_entry(&schema, "eloverblik"), "refresh_token"), "password");
    assert_eq!(text(list_entry(&schema, "enectiva"), "login_token"), "password?");
    assert_eq!(text(list_entry(&schema, "enectiva"), "import_token"), "password?");
    assert_eq!(text(&schema, "log_level"), format!("list({})", LOG_LEVELS.join("|")));
    assert_eq!(LOG_LEVELS, ["trace", "debug", "info", "warn", "error"]);
    assert_eq!(
        text(&schema, "poll_interval_minutes"),
        format!("int({},{})", POLL_MINUTES.start(), POLL_MINUTES.end())
    );
}

fn assert_named(path: &str, entry: &Value) {
    let entry = entry
        .as_mapping()
        .unwrap_or_else(|| panic!("translation {path} is not a mapping"));
    for key in ["name", "description"] {
        let value = entry.get(key).and_then(Value::as_str).unwrap_or_default();
        assert!(!value.trim().is_empty(), "translation {path} has no {key}");
    }
}

#[test]
fn translations_cover_every_option() {
    let translations = yaml("addon/translations/en.yaml");
    let configuration = get(&translations, "configuration")
        .as_mapping()
        .expect("configuration is a mapping");
    let schema = schema();
    assert_eq!(
        keys(configuration),
        keys(&schema),
        "translated options = schema options"
    );
    for (key, ty) in &schema {
        let key = key.as_str().unwrap();
        let entry = get(configuration, key);
        assert_named(key, entry);
        if ty.is_sequence() {
            let fields = get(entry.as_mapping().unwrap(), "fields")
                .as_mapping()
                .expect("fields is a mapping");
            assert_eq!(
                keys(fields),
                keys(list_entry(&schema, key)),
                "translated fields of {key}"
            );
            for (field, translation) in fields {
                assert_named(&format!("{key}.{}", field.as_str().unwrap()), translation);
            }
        }
    }
}

#[test]
fn dockerfile_builds_from_nothing_and_labels_itself() {
    let dockerfile = read("addon/Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let bases: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("FROM "))
        .map(|rest| rest.split_whitespace().next().unwrap_or_default())
        .collect();
    assert!(
        bases.iter().all(|b| *b == "scratch" || b.starts_with("addon-")),
        "nothing is pulled: every stage starts from scratch or another stage, not {bases:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("RUN ")),
        "no RUN: the image has no shell to run it with"
    );
    for label in [
        "io.hass.type=\"addon\"",
        "io.hass.version=\"${BUILD_VERSION}\"",
        "org.opencontainers.image.title=",
        "org.opencontainers.image.description=",
        "org.opencontainers.image.version=\"${BUILD_VERSION}\"",
        "org.opencontainers.image.source=",
        "org.opencontainers.image.licenses=\"MIT\"",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(label)),
            "Dockerfile lacks the label {label}"
        );
    }
    assert!(
        lines.contains(&format!("ARG BUILD_VERSION={VERSION}").as_str()),
        "default version {VERSION}"
    );
    for arch in strings(get(&config(), "arch")) {
        assert!(
            lines.contains(&format!("COPY meter2mqtt-{arch} /usr/bin/meter2mqtt").as_str()),
            "{arch} binary"
        );
        assert!(
            lines.contains(&format!("LABEL io.hass.arch=\"{arch}\"").as_str()),
            "{arch} label"
        );
        assert!(
            lines.contains(&format!("FROM scratch AS addon-{arch}").as_str()),
            "{arch} stage"
        );
    }
    assert!(
        lines.contains(&"FROM addon-${BUILD_ARCH}"),
        "the stage follows BUILD_ARCH"
    );
    assert!(lines.contains(&"COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"));
    assert!(lines.contains(&"ENTRYPOINT [\"/usr/bin/meter2mqtt\"]"));
    assert!(lines.contains(&"CMD [\"run\", \"--addon\"]"));
    assert!(
        !root().join("addon/build.yaml").exists() && !root().join("addon/build.json").exists(),
        "build.yaml is retired"
    );
}

#[test]
fn repository_yaml_is_present_and_valid() {
    let repository = yaml("repository.yaml");
    assert_eq!(keys(&repository), set(&["name", "url", "maintainer"]));
    assert!(!text(&repository, "name").trim().is_empty());
    assert_eq!(text(&repository, "url"), text(&config(), "url"));
    assert!(!text(&repository, "maintainer").trim().is_empty());
}

/// The rules of the profile, without comments and blank lines.
fn apparmor_rules() -> Vec<String> {
    read("addon/apparmor.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn apparmor_profile_is_named_after_the_slug() {
    let profile = read("addon/apparmor.txt");
    assert!(profile.starts_with("#include <tunables/global>"));
    let rules = apparmor_rules();
    assert_eq!(
        rules.iter().filter(|r| r.starts_with("profile ")).collect::<Vec<_>>(),
        ["profile meter2mqtt flags=(attach_disconnected,mediate_deleted) {"],
        "one profile: the binary is the container's only process"
    );
    assert!(
        rules.contains(&"signal (receive) peer=unconfined,".to_owned()),
        "docker stop"
    );
    assert_eq!(
        profile.matches('{').count(),
        profile.matches('}').count(),
        "balanced braces"
    );
}

/// Every path the profile grants is in the image (the files `.ci/addon-image.sh` finds there, plus
/// the /data volume), and the image's files are granted: nothing more, nothing less.
#[test]
fn apparmor_profile_grants_exactly_the_image_files_and_data() {
    let granted: BTreeSet<String> = apparmor_rules()
        .iter()
        .filter(|r| r.starts_with('/'))
        .map(|r| r.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(
        granted,
        set(&[
            "/usr/bin/meter2mqtt",
            "/etc/ssl/certs/",
            "/etc/ssl/certs/ca-certificates.crt",
            "/data/",
            "/data/**",
        ])
    );
    let dockerfile = read("addon/Dockerfile");
    for copied in dockerfile.lines().filter_map(|l| l.strip_prefix("COPY ")) {
        let target = copied.split_whitespace().last().unwrap();
        assert!(
            granted.contains(target),
            "{target} is in the image but not in the profile"
        );
    }
    assert!(
        apparmor_rules().contains(&"/data/** rwlk,".to_owned()),
        "the state store is written under /data"
    );
    assert!(
        !apparmor_rules()
            .iter()
            .any(|r| r == "file," || r.contains(" ix,") || r.contains(" cx ")),
        "no blanket file access and no other program to run"
    );
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is a PNG", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn icon_and_logo_are_pngs_of_the_recommended_size() {
    assert_eq!(png_size(&root().join("addon/icon.png")), (128, 128));
    let (w, h) = png_size(&root().join("addon/logo.png"));
    assert!(
        (200..=300).contains(&w) && (80..=120).contains(&h),
        "logo is about 250×100, not {w}×{h}"
    );
}

#[test]
fn docs_explain_tokens_statistics_and_every_api_status() {
    let docs = read("addon/DOCS.md");
    for needle in [
        "eloverblik.dk",
        "Datadeling",
        "Opret token",
        "Customer UUID",
        "Login token",
        "Mosquitto broker",
        "Settings → Apps → App store → ⋮ (top right) → Repositories",
        "older releases",
        "Settings → Add-ons → Add-on store",
    ] {
        assert!(docs.contains(needle), "DOCS.md should mention {needle}");
    }
    assert!(docs.contains("meter2mqtt:<provider>_<meter>_consumption"));
    for status in [
        ApiStatus::Ok,
        ApiStatus::AuthError,
        ApiStatus::RateLimited,
        ApiStatus::Unavailable,
        ApiStatus::Error,
    ] {
        assert!(
            docs.contains(&format!("| `{}` |", status.as_str())),
            "DOCS.md troubleshoots api_status {status:?}"
        );
    }
    assert!(
        read("addon/CHANGELOG.md").contains(&format!("## {VERSION}")),
        "CHANGELOG.md has this version"
    );
}
