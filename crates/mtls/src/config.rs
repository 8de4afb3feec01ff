//! rustls configurations for mesh connections.
//!
//! * TLS 1.3 only: every peer is a picket sidecar, so there is no legacy client to serve,
//!   and 1.3 encrypts the certificates (peer identities are not visible on the wire).
//! * The ring provider, chosen explicitly for every configuration and verifier
//!   ([`provider`]): nothing depends on a process-default provider being installed, and the
//!   crate builds no aws-lc.
//! * The server requires a client certificate ([`crate::verify::SpiffeClientVerifier`]); the
//!   client verifies the server by SPIFFE id ([`crate::verify::SpiffeServerVerifier`]) and
//!   sends no SNI (the server name given to rustls is ignored; [`mesh_server_name`] is a
//!   placeholder that suppresses SNI).
//! * ALPN as in [`crate::alpn`].
//!
//! Session resumption stays at rustls' defaults (an in-memory cache on each side). A
//! resumed session skips certificate verification, so it is bounded by the configuration:
//! [`crate::MeshTls`] builds new configurations, with new empty caches, on every
//! certificate or trust-bundle change, and sessions from before the change cannot be
//! resumed after it.
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, ServerConfig};

use crate::alpn::MeshProtocol;
use crate::error::Result;
use crate::identity::{TrustBundle, WorkloadIdentity};
use crate::verify::{AcceptedPeers, SpiffeClientVerifier, SpiffeServerVerifier};

/// The crypto provider of every configuration and verifier this crate builds: ring.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The server name to give rustls / tokio-rustls when connecting: an IP address, so that no
/// SNI is sent. The verifier ignores it; the peer is checked by SPIFFE id.
pub fn mesh_server_name() -> ServerName<'static> {
    ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into())
}

/// The inbound (server) side: presents `identity`, requires a client certificate chaining to
/// `bundle` with a SPIFFE id of the same trust domain, offers every [`MeshProtocol`].
pub fn server_config(identity: &WorkloadIdentity, bundle: &TrustBundle) -> Result<ServerConfig> {
    let p = provider();
    let verifier = SpiffeClientVerifier::new(
        bundle.root_store(),
        identity.spiffe_id().trust_domain().clone(),
        p.clone(),
    )?;
    let mut config = ServerConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified_key())));
    config.alpn_protocols = MeshProtocol::ALL
        .iter()
        .map(|p| p.alpn_id().to_vec())
        .collect();
    Ok(config)
}

/// The outbound (client) side: presents `identity`, accepts a server whose chain verifies
/// against `bundle` and whose SPIFFE id `accepted` accepts, offers `protocol` only.
pub fn client_config(
    identity: &WorkloadIdentity,
    bundle: &TrustBundle,
    accepted: AcceptedPeers,
    protocol: MeshProtocol,
) -> Result<ClientConfig> {
    let p = provider();
    let verifier = SpiffeServerVerifier::new(bundle.root_store(), accepted, p.clone());
    let mut config = ClientConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified_key())));
    config.alpn_protocols = vec![protocol.alpn_id().to_vec()];
    config.enable_sni = false;
    Ok(config)
}
