//! Providers turn an energy data API into [`Meter`](crate::model::Meter)s and
//! [`IntervalReading`](crate::model::IntervalReading)s. They know nothing of MQTT or Home
//! Assistant.
//!
//! Adding a provider is a folder here, its `mod` line and its name in the `registry!` list below:
//! the folder holds the API client, the [`Provider`], and its [`registry::Registration`]
//! (configuration section, checks, add-on options). `contract` is what the bridge sees of a
//! provider, `kit` is what providers share (tokens, the authorised call, redaction, error bodies).

mod contract;
pub(crate) mod kit;
pub(crate) mod registry;
pub mod upload;

// The provider folders, declared here (not inside `registry!`) so that rustfmt sees them.
pub mod eloverblik;
pub mod enectiva;
pub mod sample;

/// Declares [`KINDS`], in the order their sections are read.
macro_rules! registry {
    ($($provider:ident),* $(,)?) => {
        /// Every provider this build knows.
        pub const KINDS: &[&dyn ProviderKind] = &[$(&$provider::REGISTRATION),*];
    };
}

registry! {
    sample,
    eloverblik,
    enectiva,
}

pub use contract::{Provider, ProviderError, Receive, SharedProvider, Window};

pub(crate) use contract::CheckLine;
pub(crate) use registry::{Account, AddonAccounts, AddonList, BuildContext, ProviderKind};

/// The registration of the provider named `kind`.
pub(crate) fn kind(kind: &str) -> Option<&'static dyn ProviderKind> {
    KINDS.iter().copied().find(|k| k.kind() == kind)
}

/// Builds every configured account that reads meters. Accounts share one [`BuildContext`], so
/// what a provider keeps per API (a rate limiter) is one for all its accounts.
pub(crate) fn build(
    accounts: &[Account],
    store: &crate::state::StateStore,
) -> Result<Vec<SharedProvider>, ProviderError> {
    let context = BuildContext::new(store.clone());
    accounts
        .iter()
        .filter_map(|account| {
            let kind = match registered(account) {
                Ok(kind) => kind,
                Err(e) => return Some(Err(e)),
            };
            kind.reads(account.any_settings())
                .then(|| kind.build(account, &context))
        })
        .collect()
}

/// Every configured account's uploads (the accounts without upload series have none). The
/// accounts share one [`BuildContext`], so the import API's limiter is one per host.
pub(crate) fn uploads(
    accounts: &[Account],
    store: &crate::state::StateStore,
) -> Result<Vec<upload::Uploads>, ProviderError> {
    let context = BuildContext::new(store.clone());
    let mut all = Vec::new();
    for account in accounts {
        if let Some(uploads) = registered(account)?.uploads(account, &context)? {
            all.push(uploads);
        }
    }
    Ok(all)
}

fn registered(account: &Account) -> Result<&'static dyn ProviderKind, ProviderError> {
    kind(account.kind).ok_or_else(|| ProviderError::Config {
        provider: account.kind,
        message: "no such provider in this build".into(),
    })
}
