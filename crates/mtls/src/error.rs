//! The crate's error type.
use crate::spiffe::{SpiffeId, SpiffeIdError, TrustDomain};

/// Everything that can go wrong in picket-mtls. Each variant names one cause, so the
/// identity service can answer a bad CSR with a precise refusal and the sidecar can count
/// certificate problems by kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not PEM, or its base64 / framing is broken.
    #[error("bad PEM: {0}")]
    BadPem(String),
    /// The PEM text holds no section of the kind needed.
    #[error("no {0} found in the PEM text")]
    MissingPem(&'static str),
    /// A certificate that cannot be parsed as X.509.
    #[error("certificate cannot be parsed: {0}")]
    BadCertificate(String),
    /// A private key that cannot be parsed or is of a kind the ring provider cannot use.
    #[error("private key cannot be used: {0}")]
    BadKey(String),
    /// The private key is not the one the leaf certificate certifies.
    #[error("private key does not match the certificate")]
    KeyMismatch,
    /// A certificate signing request that cannot be parsed.
    #[error("CSR cannot be parsed: {0}")]
    CsrMalformed(String),
    /// A CSR whose self-signature does not verify (the requester does not hold the key).
    #[error("CSR signature does not verify")]
    CsrBadSignature,
    /// A CSR that asks for a name other than the identity being issued
    /// ([`crate::MeshCa::issue_matching_csr`]).
    #[error("the CSR asks for {} but the identity is {id}", .asked.describe())]
    CsrIdentityMismatch {
        asked: Box<crate::ca::CsrNames>,
        id: Box<SpiffeId>,
    },
    /// A public key algorithm picket does not issue certificates for.
    #[error("unsupported public key algorithm in CSR")]
    UnsupportedKey,
    /// A malformed SPIFFE id or trust domain.
    #[error("SPIFFE id: {0}")]
    SpiffeId(#[from] SpiffeIdError),
    /// A workload certificate without a URI SAN.
    #[error("certificate carries no SPIFFE id (URI SAN)")]
    NoSpiffeId,
    /// A workload certificate with more than one URI SAN (the SPIFFE X.509-SVID spec allows
    /// exactly one, so a peer could not be named unambiguously).
    #[error("certificate carries more than one URI SAN")]
    MultipleUriSans,
    /// An identity outside the CA's / this workload's trust domain.
    #[error("identity {id} is not in trust domain {expected}")]
    ForeignTrustDomain {
        id: Box<SpiffeId>,
        expected: TrustDomain,
    },
    /// A peer whose identity the policy does not accept.
    #[error("peer identity {0} is not accepted")]
    PeerNotAccepted(Box<SpiffeId>),
    /// Replacing a workload's certificate with one for another identity.
    #[error("new certificate is for {new}, this workload is {current}")]
    IdentityChanged {
        current: Box<SpiffeId>,
        new: Box<SpiffeId>,
    },
    /// A certificate whose notAfter is in the past.
    #[error("certificate expired")]
    CertificateExpired,
    /// A certificate whose notBefore is in the future.
    #[error("certificate is not valid yet")]
    CertificateNotYetValid,
    /// A CA certificate that is not a CA, or a CA key pair that does not belong together.
    #[error("invalid CA material: {0}")]
    InvalidCa(String),
    /// A requested certificate lifetime of zero or one the clock cannot represent.
    #[error("invalid certificate lifetime")]
    InvalidLifetime,
    /// A server certificate asked for with no DNS name.
    #[error("a server certificate needs at least one DNS name")]
    NoDnsName,
    /// A trust bundle with no root.
    #[error("trust bundle is empty")]
    EmptyTrustBundle,
    /// A certificate chain that does not verify against the trust bundle.
    #[error("certificate chain is not trusted: {0}")]
    Untrusted(rustls::Error),
    /// The peer presented no certificate (no handshake yet, or a server without client auth).
    #[error("peer presented no certificate")]
    NoPeerCertificate,
    /// The mesh connection negotiated no ALPN protocol.
    #[error("no ALPN protocol negotiated")]
    MissingAlpn,
    /// The mesh connection negotiated an ALPN protocol picket does not know.
    #[error("unknown ALPN protocol {0:?}")]
    UnknownAlpn(String),
    /// Certificate generation (rcgen) failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused a configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// rustls refused a verifier configuration.
    #[error("TLS verifier configuration: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
