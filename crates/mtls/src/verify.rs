//! Certificate verification by SPIFFE identity instead of DNS name.
//!
//! A mesh peer is named by its [`SpiffeId`], not by a host name: the outbound sidecar knows
//! which workload it means to reach (or at least which trust domain), and pod IPs and DNS
//! names say nothing trustworthy about who answers. So:
//!
//! * [`SpiffeServerVerifier`] (the client side's view of the server) lets webpki do
//!   everything it does for a browser (chain to a root of the bundle, signatures, validity
//!   period, basic constraints, `serverAuth` usage) **except** the name check, and then
//!   requires the leaf's one URI SAN to be a SPIFFE id that [`AcceptedPeers`] accepts. The
//!   server name handed to rustls is ignored (and SNI is not sent).
//! * [`SpiffeClientVerifier`] (the server's view of the client) wraps rustls'
//!   `WebPkiClientVerifier` (client certificates mandatory) and additionally requires the
//!   leaf to carry a SPIFFE id of this trust domain, so a handshake that completes always
//!   has a nameable peer. Which peers may call which workloads is authorisation, left to the
//!   sidecar's policy on [`peer_spiffe_id`].
//!
//! The cost: one extra X.509 parse of the leaf per full handshake (microseconds, against the
//! signature checks webpki already does).
use std::collections::BTreeSet;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, CommonState, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, SignatureScheme,
};

use crate::cert::spiffe_id_of;
use crate::error::{Error, Result};
use crate::spiffe::{SpiffeId, TrustDomain};

/// Which server identities a client accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AcceptedPeers {
    /// Exactly these identities (one, usually: the destination's service account; several
    /// while a service moves between service accounts).
    Ids(BTreeSet<SpiffeId>),
    /// Any workload of this trust domain: for transparent outbound traffic, where the sidecar
    /// knows the destination address but not which service account serves it. Peer identity
    /// is then still authenticated and logged, only not pinned.
    TrustDomain(TrustDomain),
}

impl AcceptedPeers {
    /// Only `id`.
    pub fn one(id: SpiffeId) -> Self {
        AcceptedPeers::Ids(BTreeSet::from([id]))
    }

    /// Any of `ids`.
    pub fn any_of(ids: impl IntoIterator<Item = SpiffeId>) -> Self {
        AcceptedPeers::Ids(ids.into_iter().collect())
    }

    /// Any identity in `trust_domain`.
    pub fn trust_domain(trust_domain: TrustDomain) -> Self {
        AcceptedPeers::TrustDomain(trust_domain)
    }

    pub fn accepts(&self, id: &SpiffeId) -> bool {
        match self {
            AcceptedPeers::Ids(ids) => ids.contains(id),
            AcceptedPeers::TrustDomain(td) => id.trust_domain() == td,
        }
    }
}

/// The peer's SPIFFE id, from the leaf certificate of a completed handshake. Works on both
/// sides: pass `&ServerConnection` or `&ClientConnection` (they dereference to
/// [`CommonState`]); with tokio-rustls, `stream.get_ref().1`.
pub fn peer_spiffe_id(conn: &CommonState) -> Result<SpiffeId> {
    peer_spiffe_id_from_chain(conn.peer_certificates())
}

/// [`peer_spiffe_id`] on a certificate chain as rustls returns it.
pub fn peer_spiffe_id_from_chain(chain: Option<&[CertificateDer<'_>]>) -> Result<SpiffeId> {
    let leaf = chain
        .and_then(|c| c.first())
        .ok_or(Error::NoPeerCertificate)?;
    spiffe_id_of(leaf)
}

fn reject(e: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

/// Verifies a server's chain with webpki and its identity against [`AcceptedPeers`]. See the
/// module docs.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    roots: Arc<RootCertStore>,
    accepted: AcceptedPeers,
    provider: Arc<CryptoProvider>,
}

impl SpiffeServerVerifier {
    pub fn new(
        roots: Arc<RootCertStore>,
        accepted: AcceptedPeers,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        SpiffeServerVerifier {
            roots,
            accepted,
            provider,
        }
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let id = spiffe_id_of(end_entity).map_err(reject)?;
        if !self.accepted.accepts(&id) {
            return Err(reject(Error::PeerNotAccepted(Box::new(id))));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Requires a client certificate chaining to the bundle (webpki) that names a workload of
/// `trust_domain`. See the module docs.
#[derive(Debug)]
pub struct SpiffeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    trust_domain: TrustDomain,
}

impl SpiffeClientVerifier {
    pub fn new(
        roots: Arc<RootCertStore>,
        trust_domain: TrustDomain,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self> {
        let inner =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider).build()?;
        Ok(SpiffeClientVerifier {
            inner,
            trust_domain,
        })
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let id = spiffe_id_of(end_entity).map_err(reject)?;
        if id.trust_domain() != &self.trust_domain {
            return Err(reject(Error::ForeignTrustDomain {
                id: Box::new(id),
                expected: self.trust_domain.clone(),
            }));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The picket error behind a rustls verification failure, when one of this crate's verifiers
/// produced it (to tell "unexpected identity" from "unknown issuer" in logs and tests).
pub fn verification_error(e: &rustls::Error) -> Option<&Error> {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<Error>()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_peers() {
        let a = SpiffeId::in_default_domain("a", "x").unwrap();
        let b = SpiffeId::in_default_domain("b", "x").unwrap();
        let other = SpiffeId::new(TrustDomain::new("other").unwrap(), "a", "x").unwrap();
        assert!(AcceptedPeers::one(a.clone()).accepts(&a));
        assert!(!AcceptedPeers::one(a.clone()).accepts(&b));
        let both = AcceptedPeers::any_of([a.clone(), b.clone()]);
        assert!(both.accepts(&a) && both.accepts(&b) && !both.accepts(&other));
        let td = AcceptedPeers::trust_domain(TrustDomain::default());
        assert!(td.accepts(&a) && td.accepts(&b) && !td.accepts(&other));
    }

    #[test]
    fn no_peer_certificate() {
        assert!(matches!(
            peer_spiffe_id_from_chain(None),
            Err(Error::NoPeerCertificate)
        ));
        assert!(matches!(
            peer_spiffe_id_from_chain(Some(&[])),
            Err(Error::NoPeerCertificate)
        ));
    }
}
