//! The mesh identity service: issues workload certificates to sidecars.
//!
//! A sidecar proves who it is with its projected ServiceAccount token (audience
//! [`picket_mtls::issuance::TOKEN_AUDIENCE`]) and sends a CSR for a key that never leaves its
//! pod; the service checks the token ([`TokenValidator`]: [`StaticTokens`] from a file, or
//! [`TokenReviewValidator`] against the Kubernetes API), refuses a CSR that names any other
//! identity, and has the mesh CA issue a certificate for
//! `spiffe://<trust domain>/ns/<namespace>/sa/<serviceaccount>`. The wire contract is
//! [`picket_mtls::issuance`]; see the top-level README, "Identity service".
//!
//! * [`token`]: [`TokenValidator`], [`ServiceAccount`], [`StaticTokens`];
//! * [`review`]: [`TokenReviewValidator`] (`authentication.k8s.io/v1` TokenReview);
//! * [`service`]: the decision ([`IdentityService`]), one log line and one count each;
//! * [`server`]: the HTTPS listener, its serving certificate, the CA directory.

pub mod review;
pub mod server;
pub mod service;
pub mod token;

pub use review::TokenReviewValidator;
pub use server::{
    load_ca_dir, write_ca_dir, IdentityServeError, IdentityServer, IdentityServerOptions,
};
pub use service::{IdentityService, SharedCa};
pub use token::{ServiceAccount, StaticTokens, TokenError, TokenValidator};
