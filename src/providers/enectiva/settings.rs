//! `[[enectiva]]`: one Enectiva account as the user configures it, the checks serde cannot
//! express, and how the add-on offers it.

use serde::Deserialize;

use crate::de::lenient_opt_string;
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
    pub login_token: Secret,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default)]
    pub include_deactivated: bool,
}

pub(crate) fn default_base_url() -> String {
    "https://api.enectiva.cz".into()
}
