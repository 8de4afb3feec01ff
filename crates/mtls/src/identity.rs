//! What a sidecar holds: its own [`WorkloadIdentity`] (certificate chain and private key) and
//! the [`TrustBundle`] (the mesh roots it trusts).
//!
//! Both are validated once, when built, so a [`crate::MeshTls`] never has to install material
//! that cannot work: the key must match the leaf, the leaf must carry exactly one SPIFFE id,
//! every root must parse as a trust anchor.
use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use crate::cert::{certs_from_pem, certs_to_pem, key_from_pem, spiffe_id_of, CertificateInfo};
use crate::config::provider;
use crate::error::{Error, Result};
use crate::spiffe::SpiffeId;

/// The roots a sidecar trusts. More than one is allowed, so a root can be rotated: trust old
/// and new, move every workload to certificates from the new one, then drop the old.
#[derive(Debug, Clone)]
pub struct TrustBundle {
    roots: Vec<CertificateDer<'static>>,
    store: Arc<RootCertStore>,
}

impl TrustBundle {
    /// A bundle of `roots` (DER). Empty or unparsable roots are refused.
    pub fn new(roots: Vec<CertificateDer<'static>>) -> Result<Self> {
        if roots.is_empty() {
            return Err(Error::EmptyTrustBundle);
        }
        let mut store = RootCertStore::empty();
        for root in &roots {
            store
                .add(root.clone())
                .map_err(|e| Error::BadCertificate(e.to_string()))?;
        }
        Ok(TrustBundle {
            roots,
            store: Arc::new(store),
        })
    }

    /// A bundle of every certificate in `pem`.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        TrustBundle::new(certs_from_pem(pem)?)
    }

    pub fn to_pem(&self) -> String {
        certs_to_pem(&self.roots)
    }

    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    pub(crate) fn root_store(&self) -> Arc<RootCertStore> {
        self.store.clone()
    }

    /// Checks with webpki that `chain` (leaf first) chains to one of the roots and is valid at
    /// `now`, as a peer would at handshake time.
    pub fn verify_chain(&self, chain: &[CertificateDer<'_>], now: SystemTime) -> Result<()> {
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| Error::BadCertificate("empty certificate chain".into()))?;
        let parsed = ParsedCertificate::try_from(leaf).map_err(Error::Untrusted)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.store,
            intermediates,
            UnixTime::since_unix_epoch(
                now.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default(),
            ),
            provider().signature_verification_algorithms.all,
        )
        .map_err(|e| match e {
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. },
            ) => Error::CertificateExpired,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidYet
                | rustls::CertificateError::NotValidYetContext { .. },
            ) => Error::CertificateNotYetValid,
            e => Error::Untrusted(e),
        })
    }
}

/// A workload's certificate chain (leaf, then intermediates) and private key.
#[derive(Debug, Clone)]
pub struct WorkloadIdentity {
    id: SpiffeId,
    info: CertificateInfo,
    certified: Arc<CertifiedKey>,
}

impl WorkloadIdentity {
    /// Checks that the leaf carries one SPIFFE id and that `key` is the leaf's key.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Self> {
        let leaf = chain
            .first()
            .ok_or_else(|| Error::BadCertificate("empty certificate chain".into()))?;
        let info = CertificateInfo::parse(leaf)?;
        let id = spiffe_id_of(leaf)?;
        let signing_key = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| Error::BadKey(e.to_string()))?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(Error::KeyMismatch)
            }
            Err(e) => return Err(Error::BadKey(e.to_string())),
        }
        Ok(WorkloadIdentity {
            id,
            info,
            certified: Arc::new(certified),
        })
    }

    /// From the chain PEM (leaf first) and the key PEM.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        WorkloadIdentity::new(certs_from_pem(chain_pem)?, key_from_pem(key_pem)?)
    }

    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.id
    }

    /// Serial and validity of the leaf.
    pub fn info(&self) -> &CertificateInfo {
        &self.info
    }

    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.certified.cert
    }

    pub(crate) fn certified_key(&self) -> Arc<CertifiedKey> {
        self.certified.clone()
    }
}
