//! `[[enectiva]]`: one Enectiva account as the user configures it, the checks serde cannot
//! express, and how the add-on offers it.

use serde::Deserialize;

use crate::de::lenient_opt_string;
use crate::providers::upload::UploadSeries;
use crate::secret::{deserialize_lenient_string, Secret};

/// The provider's machine name: part of every topic, unique id and error.
pub const KIND: &str = "enectiva";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
    #[serde(deserialize_with = "deserialize_lenient_string")]
    pub customer_uuid: String,
    /// Reads meters; optional when the account only uploads.
    #[serde(default)]
    pub login_token: Option<Secret>,
    /// The `/import/...` endpoints take it directly as the bearer.
    #[serde(default)]
    pub import_token: Option<Secret>,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default)]
    pub include_deactivated: bool,
    /// Series carried from Home Assistant or MQTT into Enectiva.
    #[serde(default)]
    pub upload: Vec<UploadSeries>,
    /// The import API's pace, shared by every account on the same host.
    #[serde(default = "default_import_rate")]
    pub import_requests_per_minute: u32,
}

fn default_import_rate() -> u32 {
    60
}

pub(crate) fn default_base_url() -> String {
    "https://api.enectiva.cz".into()
}
