//! TLS for `wss://` Home Assistant URLs: rustls with the ring provider (no aws-lc, no OpenSSL)
//! and the platform's certificate verifier, as the HTTP layer uses.

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls_platform_verifier::BuilderVerifierExt;

/// Built once; a failure (no usable root certificates) is reported on every `wss://` attempt.
pub(crate) fn client_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG.get_or_init(build).clone()
}

fn build() -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_platform_verifier()
        .map_err(|e| format!("TLS setup failed: the system's root certificates cannot be used: {e}"))?
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    #[test]
    fn builds_with_ring() {
        let config = super::client_config().expect("TLS config");
        let ring = rustls::crypto::ring::default_provider();
        let names = |suites: &[rustls::SupportedCipherSuite]| suites.iter().map(|s| s.suite()).collect::<Vec<_>>();
        assert_eq!(
            names(&config.crypto_provider().cipher_suites),
            names(&ring.cipher_suites)
        );
    }
}
