//! The identity service's HTTPS listener, its own serving certificate, and the CA directory.
//!
//! * The CA directory has the layout of the chart's mesh CA Secret ([`ROOT_CERT`],
//!   [`INTERMEDIATE_CERT`], [`INTERMEDIATE_KEY`], optional [`ROOT_KEY`] and
//!   [`EXTRA_ROOTS`]). It is re-read every `ca_poll`; a change that loads replaces the CA
//!   (and re-issues the serving certificate), one that does not is logged and the previous
//!   CA stays in force.
//! * The serving certificate is issued in memory by the mesh CA for the `--dns-name`s
//!   ([`picket_mtls::MeshCa::issue_server_certificate`]: DNS SANs only, no SPIFFE id), lives
//!   [`SERVING_CERT_LIFETIME`] and is re-issued at half its life.
//! * HTTP/1.1 over TLS 1.2/1.3 (ring). Bounded: [`MAX_CONNECTIONS`] connections,
//!   [`picket_mtls::issuance::MAX_REQUEST_BYTES`] of body, [`READ_TIMEOUT`] for the handshake,
//!   the head and the body each.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use picket_mtls::issuance::{ErrorCode, IssuanceError, CERTIFICATE_PATH, MAX_REQUEST_BYTES};
use picket_mtls::{CaPem, MeshCa};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::service::{CaState, IdentityService, SharedCa};
use crate::server::{serve_https_connection, HttpsLimits};

pub const ROOT_CERT: &str = "root.crt";
pub const ROOT_KEY: &str = "root.key";
pub const INTERMEDIATE_CERT: &str = "intermediate.crt";
pub const INTERMEDIATE_KEY: &str = "intermediate.key";
/// Other roots still trusted during a root rotation (PEM, optional).
pub const EXTRA_ROOTS: &str = "extra-roots.crt";

/// Lifetime of the service's own serving certificate; re-issued at half of it.
pub const SERVING_CERT_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// At most this many connections at once; more wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 512;
/// The TLS handshake, the request head and the body must each arrive within this.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors loading the CA or starting the listener.
#[derive(Debug, thiserror::Error)]
pub enum IdentityServeError {
    #[error("mesh CA directory {dir}: cannot read {file}: {source}")]
    ReadCa {
        dir: String,
        file: &'static str,
        source: std::io::Error,
    },
    #[error("mesh CA directory {dir}: {source}")]
    Ca {
        dir: String,
        source: picket_mtls::Error,
    },
    #[error("serving certificate for {names:?}: {source}")]
    ServingCert {
        names: Vec<String>,
        source: picket_mtls::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The raw files of a CA directory, compared to notice a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CaFiles(Vec<Option<Vec<u8>>>);

fn read_ca_files(dir: &Path) -> Result<CaFiles, IdentityServeError> {
    let mut out = Vec::new();
    for (file, required) in [
        (ROOT_CERT, true),
        (INTERMEDIATE_CERT, true),
        (INTERMEDIATE_KEY, true),
        (ROOT_KEY, false),
        (EXTRA_ROOTS, false),
    ] {
        match std::fs::read(dir.join(file)) {
            Ok(bytes) => out.push(Some(bytes)),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => out.push(None),
            Err(source) => {
                return Err(IdentityServeError::ReadCa {
                    dir: dir.display().to_string(),
                    file,
                    source,
                })
            }
        }
    }
    Ok(CaFiles(out))
}

fn ca_from_files(dir: &Path, files: &CaFiles) -> Result<MeshCa, IdentityServeError> {
    let text = |i: usize| {
        files.0[i]
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let pem = CaPem {
        root_cert: text(0).unwrap_or_default(),
        intermediate_cert: text(1).unwrap_or_default(),
        intermediate_key: text(2).unwrap_or_default(),
        root_key: text(3).filter(|k| !k.trim().is_empty()),
        extra_roots: text(4).unwrap_or_default(),
    };
    MeshCa::from_pem(&pem).map_err(|source| IdentityServeError::Ca {
        dir: dir.display().to_string(),
        source,
    })
}

/// Loads the CA directory (see the module docs).
pub fn load_ca_dir(dir: &Path) -> Result<MeshCa, IdentityServeError> {
    ca_from_files(dir, &read_ca_files(dir)?)
}

/// Writes a CA as a directory of the Secret's layout: keys 0600, certificates 0644; the
/// directory is created (0700) if missing. Refuses to overwrite any file.
pub fn write_ca_dir(dir: &Path, ca: &MeshCa) -> std::io::Result<Vec<PathBuf>> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let pem = ca.to_pem();
    let mut files: Vec<(&str, String, u32)> = vec![
        (ROOT_CERT, pem.root_cert, 0o644),
        (INTERMEDIATE_CERT, pem.intermediate_cert, 0o644),
        (INTERMEDIATE_KEY, pem.intermediate_key, 0o600),
    ];
    if let Some(k) = pem.root_key {
        files.push((ROOT_KEY, k, 0o600));
    }
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        b.mode(0o700);
        b.create(dir)?;
    }
    for name in [
        ROOT_CERT,
        INTERMEDIATE_CERT,
        INTERMEDIATE_KEY,
        ROOT_KEY,
        EXTRA_ROOTS,
    ] {
        let p = dir.join(name);
        if p.symlink_metadata().is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists; refusing to overwrite a CA", p.display()),
            ));
        }
    }
    let mut written = Vec::new();
    for (name, text, mode) in files {
        let p = dir.join(name);
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        o.mode(mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = o.open(&p)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        written.push(p);
    }
    Ok(written)
}

/// The serving certificate in force, swapped when re-issued.
#[derive(Debug)]
pub struct ServingCert {
    names: Vec<String>,
    current: RwLock<(Arc<CertifiedKey>, SystemTime)>,
}

fn certified(
    ca: &MeshCa,
    names: &[String],
) -> Result<(Arc<CertifiedKey>, SystemTime), IdentityServeError> {
    let err = |source| IdentityServeError::ServingCert {
        names: names.to_vec(),
        source,
    };
    let cert = ca
        .issue_server_certificate(names, SERVING_CERT_LIFETIME)
        .map_err(err)?;
    let renew_at = cert.renew_at();
    let ck = CertifiedKey::from_der(
        cert.chain.clone(),
        cert.key(),
        &rustls::crypto::ring::default_provider(),
    )
    .map_err(|e| err(picket_mtls::Error::Tls(e)))?;
    Ok((Arc::new(ck), renew_at))
}

impl ServingCert {
    pub fn issue(ca: &MeshCa, names: Vec<String>) -> Result<ServingCert, IdentityServeError> {
        let current = certified(ca, &names)?;
        Ok(ServingCert {
            names,
            current: RwLock::new(current),
        })
    }

    pub fn renew_at(&self) -> SystemTime {
        self.current.read().unwrap_or_else(|p| p.into_inner()).1
    }

    /// Issues a new certificate from `ca` and puts it in force.
    pub fn reissue(&self, ca: &MeshCa) -> Result<(), IdentityServeError> {
        let next = certified(ca, &self.names)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .clone(),
        )
    }
}

/// How to run the identity service.
#[derive(Debug, Clone)]
pub struct IdentityServerOptions {
    pub listen: SocketAddr,
    pub mesh_ca_dir: PathBuf,
    /// DNS names of the serving certificate (at least one).
    pub dns_names: Vec<String>,
    pub workload_ttl: Duration,
    /// How often the CA directory is checked for a change.
    pub ca_poll: Duration,
}

/// A bound identity service, ready to [`run`](IdentityServer::run).
pub struct IdentityServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: Arc<IdentityService>,
    serving: Arc<ServingCert>,
    mesh_ca_dir: PathBuf,
    ca_files: CaFiles,
    ca_poll: Duration,
}

impl IdentityServer {
    /// Loads the CA, issues the serving certificate and binds the listener.
    pub async fn bind(
        options: IdentityServerOptions,
        validator: Arc<dyn super::TokenValidator>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<IdentityServer, IdentityServeError> {
        let dir = &options.mesh_ca_dir;
        let ca_files = read_ca_files(dir)?;
        let ca = ca_from_files(dir, &ca_files)?;
        let serving = Arc::new(ServingCert::issue(&ca, options.dns_names.clone())?);
        let state = CaState::new(ca).map_err(|source| IdentityServeError::Ca {
            dir: dir.display().to_string(),
            source,
        })?;
        let config = crate::server::tls_config(serving.clone())?;
        let listener = TcpListener::bind(options.listen).await.map_err(|source| {
            IdentityServeError::Listen {
                addr: options.listen,
                source,
            }
        })?;
        let service = Arc::new(IdentityService::new(
            SharedCa::new(state),
            validator,
            options.workload_ttl,
            metrics,
        ));
        Ok(IdentityServer {
            listener,
            acceptor: TlsAcceptor::from(config),
            service,
            serving,
            mesh_ca_dir: options.mesh_ca_dir,
            ca_files,
            ca_poll: options.ca_poll,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The CA in force, shared: the webhook reads the bundle it gives new sidecars from it.
    pub fn shared_ca(&self) -> SharedCa {
        self.service.ca().clone()
    }

    /// PEM of the trust bundle in force (what a new sidecar is given).
    pub fn trust_bundle_pem(&self) -> String {
        self.service.ca().current().bundle_pem.clone()
    }

    pub fn trust_domain(&self) -> String {
        self.service.ca().current().ca.trust_domain().to_string()
    }

    /// Serves until the task is dropped or aborted.
    pub async fn run(self) {
        let IdentityServer {
            listener,
            acceptor,
            service,
            serving,
            mesh_ca_dir,
            ca_files,
            ca_poll,
        } = self;
        let maintain = tokio::spawn(maintain(
            service.clone(),
            serving,
            mesh_ca_dir,
            ca_files,
            ca_poll,
        ));
        let _abort = AbortOnDrop(maintain);
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(target: "picket_injector::identity", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let service = service.clone();
            let svc = service_fn(move |req| {
                let service = service.clone();
                async move { Ok::<_, Infallible>(handle(req, &service, peer).await) }
            });
            tokio::spawn(async move {
                let _permit = permit;
                serve_https_connection(
                    acceptor,
                    stream,
                    Some(peer),
                    "identity",
                    HttpsLimits {
                        read_timeout: READ_TIMEOUT,
                        max_buf_size: Some(64 * 1024),
                    },
                    svc,
                )
                .await;
            });
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Re-reads the CA directory and re-issues the serving certificate when due.
async fn maintain(
    service: Arc<IdentityService>,
    serving: Arc<ServingCert>,
    dir: PathBuf,
    mut files: CaFiles,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let mut ca_changed = false;
        match read_ca_files(&dir) {
            Ok(now) if now != files => {
                files = now;
                match ca_from_files(&dir, &files).and_then(|ca| {
                    CaState::new(ca).map_err(|source| IdentityServeError::Ca {
                        dir: dir.display().to_string(),
                        source,
                    })
                }) {
                    Ok(state) => {
                        tracing::info!(target: "picket_injector::identity", dir = %dir.display(), trust_domain = %state.ca.trust_domain(), "mesh CA reloaded");
                        service.ca().replace(state);
                        ca_changed = true;
                    }
                    Err(e) => {
                        tracing::warn!(target: "picket_injector::identity", error = %e, "mesh CA not reloaded; the previous one stays in force");
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(target: "picket_injector::identity", error = %e, "mesh CA directory unreadable; the previous CA stays in force");
            }
        }
        if ca_changed || SystemTime::now() >= serving.renew_at() {
            match serving.reissue(&service.ca().current().ca) {
                Ok(()) => {
                    service.metrics().serving_cert_reissued.inc();
                    tracing::info!(target: "picket_injector::identity", "serving certificate re-issued");
                }
                Err(e) => {
                    tracing::error!(target: "picket_injector::identity", error = %e, "serving certificate not re-issued; the previous one stays in force")
                }
            }
        }
    }
}

fn error_response(e: &IssuanceError) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(e).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A request refused for its body (before the token is looked at): logged and counted as
/// the service logs and counts its own refusals.
fn body_refused(
    service: &IdentityService,
    peer: SocketAddr,
    message: String,
) -> Response<Full<Bytes>> {
    let refusal = IssuanceError {
        code: ErrorCode::BadRequest,
        message,
    };
    service.refused(None, &refusal, Some(peer));
    error_response(&refusal)
}

async fn handle(
    req: Request<Incoming>,
    service: &IdentityService,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let bad = |code: ErrorCode, message: String| IssuanceError { code, message };
    if req.uri().path() != CERTIFICATE_PATH {
        let mut r = error_response(&bad(
            ErrorCode::BadRequest,
            format!("not found; the endpoint is POST {CERTIFICATE_PATH}"),
        ));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    }
    if req.method() != Method::POST {
        let mut r = error_response(&bad(ErrorCode::BadRequest, "POST only".into()));
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        return r;
    }
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        // Refused before reading: a client that sent `Expect: 100-continue` sends nothing.
        return body_refused(
            service,
            peer,
            format!("the body is larger than {MAX_REQUEST_BYTES} bytes"),
        );
    }
    let body = match tokio::time::timeout(
        READ_TIMEOUT,
        Limited::new(req.into_body(), MAX_REQUEST_BYTES).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => {
            return body_refused(
                service,
                peer,
                format!("cannot read the body (limit {MAX_REQUEST_BYTES} bytes): {e}"),
            )
        }
        Err(_) => {
            return body_refused(
                service,
                peer,
                format!("the body did not arrive within {READ_TIMEOUT:?}"),
            )
        }
    };
    match service
        .certificate(authorization.as_deref(), &body, Some(peer))
        .await
    {
        Ok(answer) => match serde_json::to_vec(&answer) {
            Ok(body) => {
                let mut r = Response::new(Full::new(Bytes::from(body)));
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                r.headers_mut().insert(
                    hyper::header::CACHE_CONTROL,
                    hyper::header::HeaderValue::from_static("no-store"),
                );
                r
            }
            Err(e) => error_response(&bad(ErrorCode::Internal, e.to_string())),
        },
        Err(e) => error_response(&e),
    }
}
