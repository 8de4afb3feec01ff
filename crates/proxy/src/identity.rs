//! The sidecar's mesh certificate from the identity service (`--identity-address`), and its
//! renewal.
//!
//! # Obtaining a certificate
//!
//! [`CertificateSource::fetch`] makes one attempt, by the contract of
//! [`picket_mtls::issuance`]: a new ECDSA P-256 key is generated in memory (it is never
//! written anywhere) with a CSR ([`picket_mtls::generate_key_and_csr`]); the CSR goes to
//! `POST /v1/certificate` over HTTPS (HTTP/1.1, hyper over tokio-rustls with the ring
//! provider) with the ServiceAccount token as bearer token. The token file is read again on
//! every attempt, because the kubelet rotates projected tokens. The service is verified as an
//! ordinary web PKI server: its chain must lead to one of the identity CA roots
//! (`--identity-ca` / `PICKET_IDENTITY_CA`), or to a root of the trust bundle that came with
//! the last certificate (so that a root rotation reaches sidecars started before it), and name
//! the host of the address dialled. Connect
//! and handshake take at most [`CONNECT_TIMEOUT`], the answer at most [`RESPONSE_TIMEOUT`],
//! and an answer body larger than [`MAX_RESPONSE_BYTES`] is refused. The answer is checked
//! before it is used: the chain must load with the key, carry the SPIFFE id the answer
//! names, in the configured trust domain, and verify against the trust bundle that comes
//! with it.
//!
//! # Renewal ([`renew`])
//!
//! A certificate is renewed at about 70 % of the lifetime it had left when it arrived
//! (between 65 % and 75 %, at random, so a fleet started together does not renew together).
//! The lifetime is counted from arrival, not from notBefore, because the CA back-dates
//! notBefore for clock skew. The renewed certificate and the trust bundle that comes with it
//! replace the old ones at once ([`MeshTls::replace`]): new handshakes use them, established
//! connections keep theirs.
//!
//! A failed attempt is retried with exponential backoff, 1 s doubling to 60 s; meanwhile the
//! certificate in force keeps serving (until it expires: from then on peers refuse the
//! handshakes, and the retries go on). A refusal the service calls final (a bad or foreign
//! token, an identity mismatch; see [`ErrorCode::is_retryable`]) and an answer that does not
//! check out are logged at error level and retried every 60 s, since a token the kubelet
//! rotates or a fixed service may still succeed. Every attempt is counted in
//! `picket_mesh_certificate_renewals_total{result="ok|error"}` (the first issuance
//! included) and `picket_mesh_certificate_expiry_timestamp_seconds` follows the certificate
//! in force.
//!
//! # Before the first certificate
//!
//! `picket proxy` binds its listeners and its admin endpoint at once, but `/readyz` answers
//! 503 and no connection is accepted until the first certificate is installed (see
//! [`obtain_first`]): a mesh peer cannot be served without one, and serving plaintext
//! meanwhile would let an application start as if it were meshed. Connections made in the
//! meantime wait in the listen backlog and are served once the certificate arrives. In a pod
//! the application is held by `picket wait-ready` (or the native sidecar's start-up), so it
//! makes no connections before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use picket_mtls::issuance::{
    CertificateRequest, CertificateResponse, ErrorCode, IssuanceError, CERTIFICATE_PATH,
};
use picket_mtls::{MeshTls, SpiffeId, TrustBundle, TrustDomain, WorkloadIdentity};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::http_client;
use crate::metrics::Metrics;

/// Connect and TLS handshake with the identity service.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From sending the request to the end of the answer.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer body read (a chain and a bundle are a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Largest token file read.
pub const MAX_TOKEN_BYTES: u64 = 64 * 1024;
/// First retry delay after a failed attempt.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest retry delay, and the delay after a final refusal.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Where and how to ask for certificates.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    /// `HOST:PORT` of the identity service (`[v6]:PORT` for an IPv6 literal).
    pub address: String,
    /// The ServiceAccount token file (re-read on every attempt).
    pub token: PathBuf,
    /// PEM roots that verify the identity service.
    pub roots_pem: Vec<u8>,
    /// The trust domain the certificate must be in.
    pub trust_domain: TrustDomain,
}

/// Why the identity client cannot be set up (a start-up error).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--identity-address {0:?}: expected HOST:PORT")]
    Address(String),
    #[error("identity CA: {0}")]
    Roots(#[source] picket_mtls::Error),
    #[error("identity CA: certificate refused as a root: {0}")]
    Root(String),
    #[error("identity CA: TLS configuration: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("token {path}: {source}")]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token {0}: empty or larger than {MAX_TOKEN_BYTES} bytes")]
    TokenSize(PathBuf),
    #[error("generating the key and CSR: {0}")]
    Csr(#[source] picket_mtls::Error),
    #[error("resolving {address}: {source}")]
    Resolve {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {0}: no answer within {CONNECT_TIMEOUT:?}")]
    ConnectTimeout(String),
    #[error("TLS handshake with {address}: {source}")]
    Tls {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Exchange(#[from] http_client::ExchangeError),
    #[error("no complete answer within {RESPONSE_TIMEOUT:?}")]
    ResponseTimeout,
    #[error("answer body: {0}")]
    Body(String),
    #[error("refused: HTTP {status}, code {}: {message}", code.map_or("none", |c| c.as_str()))]
    Refused {
        status: u16,
        /// The contract's code, when the body carried one.
        code: Option<ErrorCode>,
        message: String,
    },
    #[error("answer does not parse: {0}")]
    BadAnswer(String),
    #[error("issued material unusable: {0}")]
    Material(#[source] picket_mtls::Error),
    #[error("issued certificate is for {got}, the answer says {said}")]
    IdMismatch { got: String, said: String },
    #[error("issued identity {got} is not in trust domain {expected}")]
    ForeignTrustDomain { got: String, expected: String },
}

impl FetchError {
    /// Whether backing off and retrying soon may help; otherwise (a final refusal, an answer
    /// that does not check out) someone must act, and the attempt is repeated only at the cap.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Refused {
                code: Some(code), ..
            } => code.is_retryable(),
            FetchError::Refused { status, .. } => *status >= 500 || *status == 429,
            FetchError::BadAnswer(_)
            | FetchError::Material(_)
            | FetchError::IdMismatch { .. }
            | FetchError::ForeignTrustDomain { .. }
            | FetchError::Csr(_) => false,
            _ => true,
        }
    }
}

/// A certificate as it arrived, checked.
#[derive(Debug)]
pub struct Issued {
    pub identity: WorkloadIdentity,
    pub bundle: TrustBundle,
    pub received: SystemTime,
}

impl Issued {
    pub fn not_after(&self) -> SystemTime {
        self.identity.info().not_after
    }
}

/// The identity service client. See the module docs.
pub struct CertificateSource {
    settings: IdentitySettings,
    server_name: ServerName<'static>,
    host: String,
    port: u16,
    /// The roots given at start (`--identity-ca` / `PICKET_IDENTITY_CA`).
    initial_roots: Vec<CertificateDer<'static>>,
    /// How the service is verified: the initial roots and those of the trust bundle that came
    /// with the last certificate, so that a root rotation (new root added to the bundle, then
    /// the service's certificate re-issued under it) does not lock out sidecars that started
    /// before it.
    tls: ArcSwap<ClientConfig>,
}

impl std::fmt::Debug for CertificateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateSource")
            .field("address", &self.settings.address)
            .field("token", &self.settings.token)
            .finish()
    }
}

/// Splits `HOST:PORT` (`[v6]:PORT`).
fn split_address(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port))
}

impl CertificateSource {
    pub fn new(settings: IdentitySettings) -> Result<Self, SetupError> {
        let (host, port) = split_address(&settings.address)
            .ok_or_else(|| SetupError::Address(settings.address.clone()))?;
        let server_name = ServerName::try_from(host.clone())
            .map_err(|_| SetupError::Address(settings.address.clone()))?;
        let initial_roots =
            picket_mtls::cert::certs_from_pem(&settings.roots_pem).map_err(SetupError::Roots)?;
        let tls = service_client_config(&initial_roots)?;
        Ok(CertificateSource {
            settings,
            server_name,
            host,
            port,
            initial_roots,
            tls: ArcSwap::from_pointee(tls),
        })
    }

    /// From now on the service is also verified against the roots of `bundle` (the bundle
    /// of a certificate just issued and checked). A bundle whose roots rustls refuses leaves
    /// the verification as it was, with a log line.
    fn trust_bundle_roots(&self, bundle: &TrustBundle) {
        let roots: Vec<CertificateDer<'static>> = self
            .initial_roots
            .iter()
            .chain(bundle.roots())
            .cloned()
            .collect();
        match service_client_config(&roots) {
            Ok(tls) => self.tls.store(Arc::new(tls)),
            Err(e) => {
                tracing::warn!(error = %e, "identity service: the new trust bundle's roots cannot verify it; keeping the roots in use")
            }
        }
    }

    pub fn address(&self) -> &str {
        &self.settings.address
    }

    /// One attempt: a new key and CSR, the request, the checked answer.
    pub async fn fetch(&self) -> Result<Issued, FetchError> {
        let token = read_token(&self.settings.token)?;
        let csr = picket_mtls::generate_key_and_csr(None).map_err(FetchError::Csr)?;
        let body = serde_json::to_vec(&CertificateRequest {
            csr: csr.csr_pem.clone(),
        })
        .map_err(|e| FetchError::BadAnswer(e.to_string()))?;
        let (status, answer) = self.post(&token, body).await?;
        let received = SystemTime::now();
        if status != 200 {
            return Err(match serde_json::from_slice::<IssuanceError>(&answer) {
                Ok(e) => FetchError::Refused {
                    status,
                    code: Some(e.code),
                    message: bounded(&e.message),
                },
                Err(_) => FetchError::Refused {
                    status,
                    code: None,
                    message: bounded(&String::from_utf8_lossy(&answer)),
                },
            });
        }
        let answer: CertificateResponse =
            serde_json::from_slice(&answer).map_err(|e| FetchError::BadAnswer(e.to_string()))?;
        let identity =
            WorkloadIdentity::from_pem(answer.certificate_chain.as_bytes(), csr.key_pem.as_bytes())
                .map_err(FetchError::Material)?;
        let said = SpiffeId::parse(&answer.spiffe_id)
            .map_err(|e| FetchError::BadAnswer(format!("spiffe_id: {e}")))?;
        if identity.spiffe_id() != &said {
            return Err(FetchError::IdMismatch {
                got: identity.spiffe_id().to_string(),
                said: said.to_string(),
            });
        }
        if identity.spiffe_id().trust_domain() != &self.settings.trust_domain {
            return Err(FetchError::ForeignTrustDomain {
                got: identity.spiffe_id().to_string(),
                expected: self.settings.trust_domain.to_string(),
            });
        }
        let bundle =
            TrustBundle::from_pem(answer.trust_bundle.as_bytes()).map_err(FetchError::Material)?;
        bundle
            .verify_chain(identity.chain(), received)
            .map_err(FetchError::Material)?;
        self.trust_bundle_roots(&bundle);
        Ok(Issued {
            identity,
            bundle,
            received,
        })
    }

    async fn connect(&self) -> Result<TcpStream, FetchError> {
        let address = &self.settings.address;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|source| FetchError::Resolve {
                address: address.clone(),
                source,
            })?
            .collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(FetchError::Connect {
            address: address.clone(),
            source: last.unwrap_or_else(|| std::io::Error::other("no address")),
        })
    }

    /// The HTTPS exchange: status and (bounded) body.
    async fn post(&self, token: &str, body: Vec<u8>) -> Result<(u16, Bytes), FetchError> {
        let address = &self.settings.address;
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let tcp = self.connect().await?;
            let _ = tcp.set_nodelay(true);
            tokio_rustls::TlsConnector::from(self.tls.load_full())
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|source| FetchError::Tls {
                    address: address.clone(),
                    source,
                })
        })
        .await
        .map_err(|_| FetchError::ConnectTimeout(address.clone()))??;
        let request = hyper::Request::post(CERTIFICATE_PATH)
            .header(hyper::header::HOST, address.as_str())
            .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| FetchError::BadAnswer(format!("building the request: {e}")))?;
        let answer = tokio::time::timeout(
            RESPONSE_TIMEOUT,
            http_client::exchange(connected, request, MAX_RESPONSE_BYTES),
        )
        .await
        .map_err(|_| FetchError::ResponseTimeout)??;
        if answer.truncated {
            return Err(FetchError::Body(format!(
                "longer than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        Ok((answer.status.as_u16(), answer.body))
    }
}

/// The client configuration that verifies the identity service (web PKI, these roots).
fn service_client_config(roots: &[CertificateDer<'static>]) -> Result<ClientConfig, SetupError> {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store
            .add(cert.clone())
            .map_err(|e| SetupError::Root(e.to_string()))?;
    }
    Ok(ClientConfig::builder_with_provider(picket_mtls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth())
}

fn read_token(path: &Path) -> Result<String, FetchError> {
    use std::io::Read;
    let err = |source| FetchError::Token {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let mut text = String::new();
    file.take(MAX_TOKEN_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(err)?;
    let token = text.trim();
    if token.is_empty()
        || text.len() as u64 > MAX_TOKEN_BYTES
        || token.bytes().any(|b| !b.is_ascii_graphic())
    {
        return Err(FetchError::TokenSize(path.to_path_buf()));
    }
    Ok(token.to_string())
}

/// A peer-supplied message, cut for a log line.
fn bounded(s: &str) -> String {
    const MAX: usize = 512;
    let mut out: String = s.chars().take(MAX).collect();
    out.retain(|c| !c.is_control());
    out
}

/// When to renew a certificate that arrived at `received` and expires at `not_after`:
/// `jitter` (0.0..1.0) places it between 65 % and 75 % of the lifetime left at arrival.
pub fn renew_after(received: SystemTime, not_after: SystemTime, jitter: f64) -> Duration {
    let left = not_after.duration_since(received).unwrap_or_default();
    left.mul_f64(0.65 + 0.10 * jitter.clamp(0.0, 1.0))
}

/// Exponential backoff between failed attempts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_START,
        }
    }
}

impl Backoff {
    /// The delay before the next attempt after `error` (the cap for a final one).
    pub fn after(&mut self, error: &FetchError) -> Duration {
        if !error.is_retryable() {
            return BACKOFF_CAP;
        }
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_CAP);
        d
    }
}

fn jitter() -> f64 {
    let mut b = [0u8; 4];
    if picket_mtls::provider().secure_random.fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn log_failure(error: &FetchError, address: &str, retry_in: Duration, what: &str) {
    if error.is_retryable() {
        tracing::warn!(%error, identity_address = address, retry_in = ?retry_in, "{what} failed; retrying");
    } else {
        tracing::error!(%error, identity_address = address, retry_in = ?retry_in, "{what} REFUSED or unusable; this needs attention (retrying at the cap)");
    }
}

/// Sleeps `d`, or returns false at shutdown.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        r = shutdown.changed() => r.is_ok() && !*shutdown.borrow(),
    }
}

/// Asks until a certificate is issued and `install` accepts it; `None` if shutdown comes
/// first. One loop for the first certificate and for renewals: every attempt is counted, a
/// failure (including one of `install`) is logged and retried with backoff. `in_force` is the
/// certificate serving meanwhile, if any (a renewal), so that its expiry is called out.
async fn until_installed<T>(
    source: &CertificateSource,
    metrics: &Metrics,
    shutdown: &mut watch::Receiver<bool>,
    what: &str,
    in_force: Option<&MeshTls>,
    mut install: impl FnMut(Issued) -> Result<T, picket_mtls::Error>,
) -> Option<T> {
    let mut backoff = Backoff::default();
    loop {
        let attempt = tokio::select! {
            r = source.fetch() => r,
            _ = shutdown.changed() => return None,
        };
        let error = match attempt.and_then(|issued| install(issued).map_err(FetchError::Material)) {
            Ok(installed) => {
                metrics.mesh_renewal("ok");
                return Some(installed);
            }
            Err(e) => e,
        };
        metrics.mesh_renewal("error");
        let wait = backoff.after(&error);
        if let Some(current) = in_force.map(|tls| tls.certificate_info().not_after) {
            if current <= SystemTime::now() {
                tracing::error!(%error, not_after = %rfc3339(current), "mesh certificate EXPIRED and renewal keeps failing; peers refuse our handshakes");
            }
        }
        log_failure(&error, source.address(), wait, what);
        if !sleep_or_shutdown(wait, shutdown).await {
            return None;
        }
    }
}

/// Asks until the first certificate is issued and builds the mesh material from it; `None`
/// if shutdown comes first.
pub async fn obtain_first(
    source: &CertificateSource,
    metrics: &Metrics,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(MeshTls, SystemTime)> {
    until_installed(
        source,
        metrics,
        shutdown,
        "mesh certificate request",
        None,
        |issued| {
            let not_after = issued.not_after();
            let received = issued.received;
            let id = issued.identity.spiffe_id().to_string();
            let serial = issued.identity.info().serial_hex();
            let tls = MeshTls::new(issued.identity, issued.bundle)?;
            metrics.mesh_certificate(&tls);
            tracing::info!(spiffe_id = %id, serial = %serial, not_after = %rfc3339(not_after), identity_address = source.address(), "mesh certificate issued");
            Ok((tls, received))
        },
    )
    .await
}

/// Renews the certificate in `tls` until shutdown (see the module docs). `received` is when
/// the certificate in force arrived.
pub async fn renew(
    source: Arc<CertificateSource>,
    tls: Arc<MeshTls>,
    metrics: Arc<Metrics>,
    received: SystemTime,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut due = renew_after(received, tls.certificate_info().not_after, jitter());
    loop {
        tracing::debug!(in_ = ?due, "next mesh certificate renewal");
        if !sleep_or_shutdown(due, &mut shutdown).await {
            return;
        }
        let renewed = until_installed(
            &source,
            &metrics,
            &mut shutdown,
            "mesh certificate renewal",
            Some(&tls),
            |issued| {
                let not_after = issued.not_after();
                let received = issued.received;
                let id = issued.identity.spiffe_id().to_string();
                let serial = issued.identity.info().serial_hex();
                tls.replace(issued.identity, issued.bundle)?;
                metrics.mesh_certificate(&tls);
                let next = renew_after(received, not_after, jitter());
                tracing::info!(spiffe_id = %id, serial = %serial, not_after = %rfc3339(not_after), next_renewal_in = ?next, "mesh certificate renewed");
                Ok(next)
            },
        )
        .await;
        match renewed {
            Some(next) => due = next,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            split_address("picket-injector.picket-system.svc:15012"),
            Some(("picket-injector.picket-system.svc".into(), 15012))
        );
        assert_eq!(split_address("[::1]:15012"), Some(("::1".into(), 15012)));
        assert_eq!(split_address("::1:15012"), None);
        assert_eq!(split_address("host"), None);
        assert_eq!(split_address(":15012"), None);
        assert_eq!(split_address("host:0"), None);
        assert_eq!(split_address("host:x"), None);
    }

    #[test]
    fn renewal_is_at_about_70_percent_of_what_is_left() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let day = Duration::from_secs(86400);
        assert_eq!(renew_after(t0, t0 + day, 0.5), day.mul_f64(0.70));
        assert_eq!(renew_after(t0, t0 + day, 0.0), day.mul_f64(0.65));
        assert_eq!(renew_after(t0, t0 + day, 1.0), day.mul_f64(0.75));
        // Already expired: at once.
        assert_eq!(renew_after(t0 + day, t0, 0.5), Duration::ZERO);
        let j = jitter();
        assert!((0.0..=1.0).contains(&j));
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_final_refusals_wait_the_cap() {
        let retryable = FetchError::ResponseTimeout;
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| b.after(&retryable).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        // Each round of attempts starts a backoff of its own.
        let mut b = Backoff::default();
        assert_eq!(b.after(&retryable), BACKOFF_START);
        let final_ = FetchError::Refused {
            status: 403,
            code: Some(ErrorCode::IdentityMismatch),
            message: String::new(),
        };
        assert!(!final_.is_retryable());
        assert_eq!(b.after(&final_), BACKOFF_CAP);
        let unavailable = FetchError::Refused {
            status: 503,
            code: Some(ErrorCode::Unavailable),
            message: String::new(),
        };
        assert!(unavailable.is_retryable());
        let bare_502 = FetchError::Refused {
            status: 502,
            code: None,
            message: String::new(),
        };
        assert!(bare_502.is_retryable());
    }

    #[test]
    fn tokens_are_bounded_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("picket-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("token");
        std::fs::write(&p, "abc.def\n").unwrap();
        assert_eq!(read_token(&p).unwrap(), "abc.def");
        std::fs::write(&p, "  \n").unwrap();
        assert!(matches!(read_token(&p), Err(FetchError::TokenSize(_))));
        std::fs::write(&p, vec![b'a'; MAX_TOKEN_BYTES as usize + 1]).unwrap();
        assert!(matches!(read_token(&p), Err(FetchError::TokenSize(_))));
        std::fs::write(&p, "a\r\nb").unwrap();
        assert!(matches!(read_token(&p), Err(FetchError::TokenSize(_))));
        assert!(matches!(
            read_token(&dir.join("missing")),
            Err(FetchError::Token { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
