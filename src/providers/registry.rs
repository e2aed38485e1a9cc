//! How a provider plugs in. Each provider folder declares a [`Registration`]: its configuration
//! section (`[[<KIND>]]`, a typed `Settings`, which env keys `METER2MQTT_<KIND>__...` patch), the
//! checks serde cannot express, how the add-on offers it, and how an account becomes a running
//! [`Provider`](super::Provider). The configuration, the add-on and [`super::build`] iterate
//! [`super::KINDS`]; none of them names a provider.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use figment::value::Value;
use serde::de::DeserializeOwned;

use super::upload::{UploadSeries, Uploads};
use super::{ProviderError, SharedProvider};
use crate::state::StateStore;

/// What a provider declares about itself.
pub(crate) trait Registration: Send + Sync + 'static {
    /// Machine name: the config section, the topic segment, the unique-id prefix.
    const KIND: &'static str;
    /// One account's section, as the user writes it.
    type Settings: DeserializeOwned + fmt::Debug + Clone + Send + Sync + 'static;
    /// How the add-on offers this provider, if it does.
    const ADDON: Option<AddonAccounts> = None;

    /// The account's own label (`name = "..."`), if it has one.
    fn name(settings: &Self::Settings) -> Option<&str>;

    /// Problems serde cannot see (formats, empty secrets), each with the field it is about.
    fn check(settings: &Self::Settings, problem: &mut dyn FnMut(&str, String));

    fn build(settings: &Self::Settings, label: String, context: &BuildContext)
        -> Result<SharedProvider, ProviderError>;

    /// The account's upload series, if the provider's API ingests records.
    fn upload_series(_settings: &Self::Settings) -> &[UploadSeries] {
        &[]
    }

    /// Whether the account reads meters (an account may only upload).
    fn reads(_settings: &Self::Settings) -> bool {
        true
    }

    /// The importer for the account's upload series, when it has any.
    fn uploads(
        _settings: &Self::Settings,
        _label: String,
        _context: &BuildContext,
    ) -> Result<Option<Uploads>, ProviderError> {
        Ok(None)
    }
}

/// How the add-on's options offer a provider: a list option named after the kind, whose
/// entries have these fields (mapped one to one onto the account's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddonAccounts {
    pub fields: &'static [&'static str],
    /// Lists inside an account, offered as list options of their own (the Supervisor's schema
    /// nests no deeper): each entry names its account in `account`.
    pub lists: &'static [AddonList],
    /// What an account is, for "no account is configured: add ...".
    pub(crate) describe: &'static str,
}

/// A list inside an account (e.g. its upload series) as a top-level list option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddonList {
    /// The add-on option, e.g. `<kind>_upload`.
    pub option: &'static str,
    /// The account's key it fills.
    pub key: &'static str,
    /// The entries' fields, besides `account` (the account's name or number, 1-based; may be
    /// left out when there is one account).
    pub fields: &'static [&'static str],
}

/// What building a provider may share with the other accounts: the state store, and one value
/// per key (e.g. the rate limiter of an API host) that every account of the run sees.
#[derive(Clone)]
pub struct BuildContext {
    pub(crate) store: StateStore,
    shared: Arc<Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>>,
}

impl BuildContext {
    pub(crate) fn new(store: StateStore) -> BuildContext {
        BuildContext {
            store,
            shared: Arc::default(),
        }
    }

    /// The value under `key`, made by `make` the first time it is asked for.
    pub(crate) fn shared<T: Send + Sync + 'static>(&self, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let key = format!("{}:{key}", std::any::type_name::<T>());
        // Type names are not guaranteed unique: a value of another type under the key is replaced.
        if let Some(existing) = shared.get(&key) {
            if let Ok(value) = Arc::clone(existing).downcast::<T>() {
                return value;
            }
        }
        let value = Arc::new(make());
        shared.insert(key, value.clone());
        value
    }
}

/// A provider's registration, as the rest of the program sees it: untyped.
pub trait ProviderKind: Sync {
    fn kind(&self) -> &'static str;
    fn addon(&self) -> Option<AddonAccounts>;
    /// Deserialises one account section; the errors name the fields.
    fn parse(&self, value: &Value) -> Result<Arc<dyn AnySettings>, Box<figment::Error>>;
    fn check(&self, settings: &dyn AnySettings, problem: &mut dyn FnMut(&str, String));
    fn build(&self, account: &Account, context: &BuildContext) -> Result<SharedProvider, ProviderError>;
    fn upload_series<'a>(&self, settings: &'a dyn AnySettings) -> &'a [UploadSeries];
    fn reads(&self, settings: &dyn AnySettings) -> bool;
    fn uploads(&self, account: &Account, context: &BuildContext) -> Result<Option<Uploads>, ProviderError>;
}

/// A [`Registration`] as a [`ProviderKind`].
pub(crate) struct Registered<R>(PhantomData<fn() -> R>);

impl<R> Registered<R> {
    pub(crate) const fn new() -> Self {
        Registered(PhantomData)
    }
}

impl<R> Default for Registered<R> {
    fn default() -> Self {
        Registered::new()
    }
}

impl<R: Registration> ProviderKind for Registered<R> {
    fn kind(&self) -> &'static str {
        R::KIND
    }

    fn addon(&self) -> Option<AddonAccounts> {
        R::ADDON
    }

    fn parse(&self, value: &Value) -> Result<Arc<dyn AnySettings>, Box<figment::Error>> {
        let settings: R::Settings = value.deserialize().map_err(Box::new)?;
        Ok(Arc::new(Typed::<R>(settings)))
    }

    fn check(&self, settings: &dyn AnySettings, problem: &mut dyn FnMut(&str, String)) {
        if let Some(settings) = settings.as_any().downcast_ref::<R::Settings>() {
            R::check(settings, problem);
        }
    }

    fn build(&self, account: &Account, context: &BuildContext) -> Result<SharedProvider, ProviderError> {
        let settings = account.settings::<R::Settings>().ok_or(ProviderError::Config {
            provider: R::KIND,
            message: "the account's settings belong to another provider".into(),
        })?;
        R::build(settings, account.label(), context)
    }

    fn upload_series<'a>(&self, settings: &'a dyn AnySettings) -> &'a [UploadSeries] {
        settings
            .as_any()
            .downcast_ref::<R::Settings>()
            .map_or(&[], R::upload_series)
    }

    fn reads(&self, settings: &dyn AnySettings) -> bool {
        settings.as_any().downcast_ref::<R::Settings>().is_none_or(R::reads)
    }

    fn uploads(&self, account: &Account, context: &BuildContext) -> Result<Option<Uploads>, ProviderError> {
        match account.settings::<R::Settings>() {
            Some(settings) => R::uploads(settings, account.label(), context),
            None => Ok(None),
        }
    }
}

/// One account's settings, typed by its provider and opaque to everyone else.
pub trait AnySettings: fmt::Debug + Send + Sync {
    fn name(&self) -> Option<&str>;
    fn as_any(&self) -> &dyn Any;
}

struct Typed<R: Registration>(R::Settings);

impl<R: Registration> fmt::Debug for Typed<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<R: Registration> AnySettings for Typed<R> {
    fn name(&self) -> Option<&str> {
        R::name(&self.0)
    }

    fn as_any(&self) -> &dyn Any {
        &self.0
    }
}

/// One configured account: `[[<kind>]]` number `index` (0-based) of its kind.
#[derive(Clone, Debug)]
pub struct Account {
    pub(crate) kind: &'static str,
    pub(crate) index: usize,
    settings: Arc<dyn AnySettings>,
}

impl Account {
    pub(crate) fn new(kind: &'static str, index: usize, settings: Arc<dyn AnySettings>) -> Account {
        Account { kind, index, settings }
    }

    /// An account of `R` with these settings (the demo, tests).
    pub(crate) fn of<R: Registration>(index: usize, settings: R::Settings) -> Account {
        Account::new(R::KIND, index, Arc::new(Typed::<R>(settings)))
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.settings.name()
    }

    /// For logs and state file names: the account's name, or its position (1-based).
    pub(crate) fn label(&self) -> String {
        self.name()
            .map(str::to_owned)
            .unwrap_or_else(|| (self.index + 1).to_string())
    }

    /// The settings, if they are `T` (the provider's own type).
    pub(crate) fn settings<T: 'static>(&self) -> Option<&T> {
        self.settings.as_any().downcast_ref()
    }

    pub(crate) fn any_settings(&self) -> &dyn AnySettings {
        &*self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_values_are_made_once_per_key_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let context = BuildContext::new(StateStore::open(dir.path()).unwrap());
        let made = std::sync::atomic::AtomicUsize::new(0);
        let make = || made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let a = context.shared::<usize>("host:443", make);
        let b = context.shared::<usize>("host:443", make);
        let c = context.shared::<usize>("other:443", make);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
