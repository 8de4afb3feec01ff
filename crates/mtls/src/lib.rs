#![forbid(unsafe_code)]
//! picket's mesh mTLS: who a workload is, how it proves it, and how sidecars check each other.
//!
//! Between two picket sidecars, traffic is mutual TLS: each side presents a short-lived
//! certificate naming its workload by [SPIFFE id](spiffe)
//! (`spiffe://<trust-domain>/ns/<namespace>/sa/<serviceaccount>`), and each side verifies the
//! other's chain up to the mesh root and reads the peer's identity from it. The sidecar
//! terminates this TLS so it can inspect the requests inside, and logs the peer identity
//! with every block.
//!
//! The crate has six parts:
//!
//! * [`spiffe`]: [`SpiffeId`] and [`TrustDomain`], strictly parsed;
//! * [`ca`]: the mesh CA ([`MeshCa`]), root + intermediate, saved as PEM in a Secret, issuing
//!   24-hour workload certificates from CSRs ([`MeshCa::issue_from_csr`]) for an identity the
//!   caller has established, or, for the identity service, from CSRs that ask for that
//!   identity or nothing ([`MeshCa::issue_matching_csr`]: one asking for someone else is
//!   refused), and DNS-only server certificates for the identity service itself
//!   ([`MeshCa::issue_server_certificate`]); what a CSR asks for ([`csr_requested_names`]);
//!   and the workload side, [`generate_key_and_csr`];
//! * [`identity`]: a workload's [`WorkloadIdentity`] (chain + key) and the [`TrustBundle`];
//! * [`config`] and [`verify`]: rustls configurations (TLS 1.3, ring) whose verifiers check
//!   SPIFFE ids instead of DNS names, [`peer_spiffe_id`] after the handshake, and the ALPN
//!   scheme of [`alpn`] (`picket/1+h2`, `picket/1+http/1.1`, `picket/1+tcp`);
//! * [`issuance`]: the wire contract between a sidecar and the identity service;
//! * [`reload`]: [`MeshTls`], which swaps certificates and roots at run time without
//!   touching established connections.
//!
//! # Cost
//!
//! Measured by `cargo bench -p picket-mtls --bench handshake` (in memory, both peers on one
//! core of the 2-core development machine, shared, so ±30 %): a full mutual TLS 1.3
//! handshake with ECDSA P-256 certificates and SPIFFE checks takes about 0.56 ms of CPU for
//! client and server together (≈1,800 handshakes/s per core), a resumed one about 0.17 ms
//! (≈5,800/s); issuing a workload certificate from a CSR takes about 80 µs. Most of a full
//! handshake is signature verification (two chains, two CertificateVerify messages); the
//! SPIFFE checks add one X.509 parse of each leaf. Sidecars should therefore keep mesh
//! connections alive and let sessions resume; certificate rotation starts fresh sessions
//! (see [`reload`]).
//!
//! It does no I/O and depends on neither `picket-signatures` nor `picket-dpi`. The identity
//! service (injector) uses [`ca`]; the sidecar uses the rest with tokio-rustls:
//!
//! ```
//! use picket_mtls::*;
//! # fn main() -> Result<(), Error> {
//! // Identity service, once: a CA for the trust domain.
//! let ca = MeshCa::generate(TrustDomain::default(), &CaOptions::default())?;
//! // Workload: a key that stays in the pod, and a CSR.
//! let csr = generate_key_and_csr(None)?;
//! // Identity service: the identity comes from the validated ServiceAccount token.
//! let id = SpiffeId::in_default_domain("shop", "cart")?;
//! let cert = ca.issue_from_csr(csr.csr_pem.as_bytes(), &id, DEFAULT_WORKLOAD_LIFETIME)?;
//! // Sidecar: configurations for both directions.
//! let mesh = MeshTls::new(
//!     WorkloadIdentity::from_pem(cert.chain_pem().as_bytes(), csr.key_pem.as_bytes())?,
//!     ca.trust_bundle()?,
//! )?;
//! let _acceptor_config = mesh.server_config();
//! let peer = AcceptedPeers::one(SpiffeId::in_default_domain("shop", "payments")?);
//! let _connector_config = mesh.client_config(&peer, MeshProtocol::Http1)?;
//! # Ok(())
//! # }
//! ```
pub mod alpn;
pub mod ca;
pub mod cert;
pub mod config;
pub mod error;
pub mod identity;
pub mod issuance;
pub mod reload;
pub mod spiffe;
pub mod verify;

pub use alpn::{negotiated_protocol, MeshProtocol};
pub use ca::{
    csr_requested_names, generate_key_and_csr, CaOptions, CaPem, CsrNames, IssuedCertificate,
    MeshCa, ServerCertificate, WorkloadCsr, DEFAULT_WORKLOAD_LIFETIME,
};
pub use cert::{spiffe_id_of, CertificateInfo};
pub use config::{client_config, mesh_server_name, provider, server_config};
pub use error::Error;
pub use identity::{TrustBundle, WorkloadIdentity};
pub use reload::MeshTls;
pub use spiffe::{SpiffeId, SpiffeIdError, TrustDomain, DEFAULT_TRUST_DOMAIN};
pub use verify::{peer_spiffe_id, verification_error, AcceptedPeers};
