//! The Kubernetes API client (kube-rs, rustls with the ring provider), for TokenReview
//! ([`crate::identity::TokenReviewValidator`]) and Namespace reads
//! ([`crate::namespace::KubeNamespaces`]).

use std::time::Duration;

/// How long connecting to the API server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one API call may wait for its answer.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
pub enum KubeClientError {
    #[error("no Kubernetes configuration (neither in-cluster nor a kubeconfig): {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// Makes ring rustls's process default, so kube's TLS (which asks for the default provider)
/// never has to choose. Idempotent.
pub fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client from `config`, with picket's timeouts applied where the config has none.
pub fn client_from_config(mut config: kube::Config) -> Result<kube::Client, KubeClientError> {
    install_ring_provider();
    config.connect_timeout = config.connect_timeout.or(Some(CONNECT_TIMEOUT));
    config.read_timeout = config.read_timeout.or(Some(READ_TIMEOUT));
    config.write_timeout = config.write_timeout.or(Some(READ_TIMEOUT));
    Ok(kube::Client::try_from(config)?)
}

/// A client from the environment: in-cluster (the pod's ServiceAccount) or the kubeconfig.
pub async fn client() -> Result<kube::Client, KubeClientError> {
    install_ring_provider();
    client_from_config(kube::Config::infer().await?)
}
