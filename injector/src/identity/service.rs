//! The issuance decision, without HTTP: a bearer token and a request body in, a
//! [`CertificateResponse`] or an [`IssuanceError`] out. One log line and one count per
//! decision.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use picket_mtls::issuance::{CertificateRequest, CertificateResponse, ErrorCode, IssuanceError};
use picket_mtls::{Error as MtlsError, MeshCa, SpiffeId};

use super::token::{ServiceAccount, TokenValidator};
use crate::metrics::Metrics;

/// How long a token check may take before the request is answered `unavailable`.
pub const TOKEN_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The CA in force, replaced as a whole when its files change.
#[derive(Debug)]
pub struct CaState {
    pub ca: MeshCa,
    /// PEM of the trust bundle (root, then extra roots).
    pub bundle_pem: String,
}

impl CaState {
    pub fn new(ca: MeshCa) -> Result<CaState, MtlsError> {
        let bundle_pem = ca.trust_bundle()?.to_pem();
        Ok(CaState { ca, bundle_pem })
    }
}

/// A shared, swappable [`CaState`].
#[derive(Debug, Clone)]
pub struct SharedCa(Arc<RwLock<Arc<CaState>>>);

impl SharedCa {
    pub fn new(state: CaState) -> SharedCa {
        SharedCa(Arc::new(RwLock::new(Arc::new(state))))
    }

    pub fn current(&self) -> Arc<CaState> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, state: CaState) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
    }
}

/// The identity service's decision logic. See the [module docs](super).
pub struct IdentityService {
    ca: SharedCa,
    validator: Arc<dyn TokenValidator>,
    workload_ttl: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field(
                "trust_domain",
                &self.ca.current().ca.trust_domain().to_string(),
            )
            .field("workload_ttl", &self.workload_ttl)
            .finish()
    }
}

/// What the decision knew, for the log line.
#[derive(Default)]
struct Facts {
    sa: Option<ServiceAccount>,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> IssuanceError {
    IssuanceError {
        code,
        message: message.into(),
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(header: Option<&[u8]>) -> Option<&str> {
    let text = std::str::from_utf8(header?).ok()?;
    let (scheme, token) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// Namespace and name of a ServiceAccount, empty when none is known, for a log line.
fn sa_names(sa: Option<&ServiceAccount>) -> (&str, &str) {
    sa.map(|sa| (sa.namespace.as_str(), sa.name.as_str()))
        .unwrap_or(("", ""))
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl IdentityService {
    pub fn new(
        ca: SharedCa,
        validator: Arc<dyn TokenValidator>,
        workload_ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> IdentityService {
        IdentityService {
            ca,
            validator,
            workload_ttl,
            metrics,
        }
    }

    pub fn ca(&self) -> &SharedCa {
        &self.ca
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Answers one request: the `Authorization` header (raw) and the body. Logs and counts
    /// the decision.
    pub async fn certificate(
        &self,
        authorization: Option<&[u8]>,
        body: &[u8],
        peer: Option<SocketAddr>,
    ) -> Result<CertificateResponse, IssuanceError> {
        let mut facts = Facts::default();
        let result = self.decide(authorization, body, &mut facts).await;
        match &result {
            Ok(r) => {
                let (namespace, serviceaccount) = sa_names(facts.sa.as_ref());
                let peer = peer.map(|p| p.to_string()).unwrap_or_default();
                self.metrics.identity_result(Ok(()));
                tracing::info!(
                    target: "picket_injector::identity",
                    namespace,
                    serviceaccount,
                    result = "issued",
                    code = "",
                    spiffe_id = %r.spiffe_id,
                    not_after = r.not_after,
                    peer = %peer,
                    "certificate issued"
                );
            }
            Err(e) => self.refused(facts.sa.as_ref(), e, peer),
        }
        result
    }

    /// Logs and counts a refusal: the service's own, and the listener's (a body refused
    /// before the token is looked at, with no ServiceAccount known).
    pub(crate) fn refused(
        &self,
        sa: Option<&ServiceAccount>,
        e: &IssuanceError,
        peer: Option<SocketAddr>,
    ) {
        let (namespace, serviceaccount) = sa_names(sa);
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        self.metrics.identity_result(Err(e.code));
        tracing::warn!(
            target: "picket_injector::identity",
            namespace,
            serviceaccount,
            result = "refused",
            code = e.code.as_str(),
            reason = %e.message,
            peer = %peer,
            "certificate refused"
        );
    }

    async fn decide(
        &self,
        authorization: Option<&[u8]>,
        body: &[u8],
        facts: &mut Facts,
    ) -> Result<CertificateResponse, IssuanceError> {
        let token = bearer_token(authorization).ok_or_else(|| {
            refuse(
                ErrorCode::Unauthenticated,
                "no bearer token (Authorization: Bearer <ServiceAccount token, audience picket>)",
            )
        })?;
        let sa =
            match tokio::time::timeout(TOKEN_CHECK_TIMEOUT, self.validator.validate(token)).await {
                Ok(Ok(sa)) => sa,
                Ok(Err(e)) => return Err(refuse(e.code(), e.to_string())),
                Err(_) => {
                    return Err(refuse(
                        ErrorCode::Unavailable,
                        format!("the token check took longer than {TOKEN_CHECK_TIMEOUT:?}"),
                    ))
                }
            };
        facts.sa = Some(sa.clone());
        let state = self.ca.current();
        let id = SpiffeId::new(state.ca.trust_domain().clone(), &sa.namespace, &sa.name).map_err(
            |e| {
                refuse(
                    ErrorCode::Forbidden,
                    format!("ServiceAccount {sa} makes no valid SPIFFE id: {e}"),
                )
            },
        )?;
        let request: CertificateRequest = serde_json::from_slice(body).map_err(|e| {
            refuse(
                ErrorCode::BadRequest,
                format!("the body is not a certificate request ({{\"csr\": PEM}}): {e}"),
            )
        })?;
        let issued = state
            .ca
            .issue_matching_csr(request.csr.as_bytes(), &id, self.workload_ttl)
            .map_err(|e| match e {
                MtlsError::CsrIdentityMismatch { asked, .. } => refuse(
                    ErrorCode::IdentityMismatch,
                    format!(
                        "the CSR asks for {} but the token proves {id}; send a CSR with no SAN or with exactly that URI SAN",
                        asked.describe()
                    ),
                ),
                MtlsError::CsrMalformed(_)
                | MtlsError::CsrBadSignature
                | MtlsError::UnsupportedKey
                | MtlsError::MissingPem(_)
                | MtlsError::BadPem(_) => refuse(ErrorCode::BadCsr, e.to_string()),
                e => {
                    tracing::error!(target: "picket_injector::identity", error = %e, "signing failed");
                    refuse(ErrorCode::Internal, "the CA could not sign the certificate")
                }
            })?;
        Ok(CertificateResponse {
            spiffe_id: id.to_string(),
            certificate_chain: issued.chain_pem(),
            trust_bundle: state.bundle_pem.clone(),
            not_before: unix_secs(issued.info.not_before),
            not_after: unix_secs(issued.info.not_after),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::token::StaticTokens;
    use picket_mtls::{generate_key_and_csr, CaOptions, TrustDomain};

    fn service() -> IdentityService {
        let ca = MeshCa::generate(TrustDomain::default(), &CaOptions::default()).unwrap();
        let mut tokens = StaticTokens::default();
        tokens.insert(
            "good",
            ServiceAccount {
                namespace: "shop".into(),
                name: "cart".into(),
            },
        );
        tokens.insert(
            "weird",
            ServiceAccount {
                namespace: "Shop!".into(),
                name: "cart".into(),
            },
        );
        IdentityService::new(
            SharedCa::new(CaState::new(ca).unwrap()),
            Arc::new(tokens),
            Duration::from_secs(60),
            Arc::new(Metrics::new()),
        )
    }

    fn body(csr: &str) -> Vec<u8> {
        serde_json::to_vec(&CertificateRequest { csr: csr.into() }).unwrap()
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some(b"Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some(b"bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some(b"Basic abc")), None);
        assert_eq!(bearer_token(Some(b"Bearer ")), None);
        assert_eq!(bearer_token(Some(b"\xff")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[tokio::test]
    async fn decisions() {
        let s = service();
        let csr = generate_key_and_csr(None).unwrap();
        let ok = s
            .certificate(Some(b"Bearer good"), &body(&csr.csr_pem), None)
            .await
            .unwrap();
        assert_eq!(ok.spiffe_id, "spiffe://cluster.local/ns/shop/sa/cart");
        assert!(ok.not_after - ok.not_before >= 60);
        let code = |r: Result<CertificateResponse, IssuanceError>| r.unwrap_err().code;
        assert_eq!(
            code(s.certificate(None, &body(&csr.csr_pem), None).await),
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            code(
                s.certificate(Some(b"Bearer bad"), &body(&csr.csr_pem), None)
                    .await
            ),
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            code(
                s.certificate(Some(b"Bearer weird"), &body(&csr.csr_pem), None)
                    .await
            ),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(s.certificate(Some(b"Bearer good"), b"{nope", None).await),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(
                s.certificate(Some(b"Bearer good"), &body("not a csr"), None)
                    .await
            ),
            ErrorCode::BadCsr
        );
        let other = SpiffeId::in_default_domain("kube-system", "admin").unwrap();
        let evil = generate_key_and_csr(Some(&other)).unwrap();
        assert_eq!(
            code(
                s.certificate(Some(b"Bearer good"), &body(&evil.csr_pem), None)
                    .await
            ),
            ErrorCode::IdentityMismatch
        );
        let me = SpiffeId::in_default_domain("shop", "cart").unwrap();
        let same = generate_key_and_csr(Some(&me)).unwrap();
        assert!(s
            .certificate(Some(b"Bearer good"), &body(&same.csr_pem), None)
            .await
            .is_ok());
        let text = s.metrics().encode();
        assert!(text.contains(r#"result="issued"} 2"#), "{text}");
        assert!(text.contains(r#"result="unauthenticated"} 2"#), "{text}");
    }
}
