//! The wire contract between a sidecar and the identity service (in `picket-injector`).
//!
//! Only types live here, so both ends agree on one definition and the crate stays free of I/O.
//!
//! # Protocol
//!
//! The identity service listens on HTTPS, port [`IDENTITY_PORT`] by default. Its serving
//! certificate is issued by the mesh CA for its Kubernetes Service DNS names (for example
//! `picket-injector.picket-system.svc`) and carries no SPIFFE id, so a workload certificate
//! can never pass for it: a sidecar verifies it as an ordinary web PKI server certificate
//! against the mesh root, with the DNS name of the address it dialled. The root a sidecar
//! trusts before it has any certificate comes from the injector (environment
//! `PICKET_IDENTITY_CA`, PEM text, set at admission from the CA the injector serves); later
//! bundles arrive with every certificate ([`CertificateResponse::trust_bundle`]).
//!
//! ```text
//! POST /v1/certificate HTTP/1.1
//! Authorization: Bearer <projected ServiceAccount token, audience "picket">
//! Content-Type: application/json
//!
//! {"csr": "-----BEGIN CERTIFICATE REQUEST-----…"}
//! ```
//!
//! `200 OK` carries a [`CertificateResponse`]; any other status carries an [`IssuanceError`]
//! whose [`code`](IssuanceError::code) says which side must act (see [`ErrorCode`]). The
//! private key never leaves the pod: only the CSR's public key is used, and the identity in
//! the certificate is the one the token proves (`spiffe://<td>/ns/<ns>/sa/<sa>`), never one
//! the CSR names — a CSR that names another identity is refused.

use serde::{Deserialize, Serialize};

/// The identity service's default port.
pub const IDENTITY_PORT: u16 = 15012;

/// The path of the one endpoint.
pub const CERTIFICATE_PATH: &str = "/v1/certificate";

/// The audience the ServiceAccount token must carry.
pub const TOKEN_AUDIENCE: &str = "picket";

/// Largest request body the service reads (a P-256 CSR in PEM is about 500 bytes).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Body of `POST /v1/certificate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// PKCS#10 CSR, PEM.
    pub csr: String,
}

/// Body of a `200 OK` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateResponse {
    /// The identity the certificate carries.
    pub spiffe_id: String,
    /// PEM chain, leaf first, then the intermediate.
    pub certificate_chain: String,
    /// PEM roots the workload must trust from now on (all current roots during a rotation).
    pub trust_bundle: String,
    /// The leaf's notBefore and notAfter as seconds since the Unix epoch, so the sidecar can
    /// schedule renewal without parsing the certificate first.
    pub not_before: u64,
    pub not_after: u64,
}

/// Body of every answer other than `200 OK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuanceError {
    pub code: ErrorCode,
    /// For humans and logs; never contains the token.
    pub message: String,
}

/// Why the identity service refused, and the HTTP status it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not a [`CertificateRequest`], or too large.
    BadRequest,
    /// 400: the CSR does not parse or its signature does not verify.
    BadCsr,
    /// 401: no bearer token, or the token is not valid for audience `picket`.
    Unauthenticated,
    /// 403: the token is valid but does not name a ServiceAccount this service issues for.
    Forbidden,
    /// 403: the CSR names an identity other than the token's.
    IdentityMismatch,
    /// 503: the token could not be checked right now (TokenReview unreachable); retry.
    Unavailable,
    /// 500: the service failed (signing failed, CA unusable).
    Internal,
}

impl ErrorCode {
    /// The code's name on the wire (as serialised), for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::BadCsr => "bad_csr",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::IdentityMismatch => "identity_mismatch",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::BadCsr => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden | ErrorCode::IdentityMismatch => 403,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// Whether the same request may succeed later (the sidecar backs off and retries); the
    /// others need a different token or CSR.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::Unavailable | ErrorCode::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_snake_case_on_the_wire() {
        let e = IssuanceError {
            code: ErrorCode::IdentityMismatch,
            message: "x".into(),
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(text, r#"{"code":"identity_mismatch","message":"x"}"#);
        let back: IssuanceError = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
        assert_eq!(ErrorCode::IdentityMismatch.http_status(), 403);
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::BadCsr,
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::IdentityMismatch,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire, format!("\"{}\"", code.as_str()));
        }
        assert!(!ErrorCode::IdentityMismatch.is_retryable());
        assert!(ErrorCode::Unavailable.is_retryable());
    }

    #[test]
    fn request_refuses_unknown_fields() {
        assert!(
            serde_json::from_str::<CertificateRequest>(r#"{"csr":"a","spiffe_id":"b"}"#).is_err()
        );
    }
}
