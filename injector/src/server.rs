//! The webhook server: HTTPS (rustls, ring provider, TLS 1.2/1.3, HTTP/1.1) `POST /mutate`
//! on `--listen`, and plain HTTP `/healthz`, `/readyz` and `/metrics` on `--health-listen`;
//! with `--mesh-ca-dir`, the identity service beside them ([`crate::identity`]). The serving
//! certificate is re-read when its files change ([`ReloadingCert`]). On SIGTERM or SIGINT it
//! stops accepting connections, turns `/readyz` false and waits up to [`DRAIN`] for the
//! requests it is answering.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::identity::{IdentityServer, SharedCa};
use crate::metrics::Metrics;
use crate::namespace::NamespaceLookup;
use crate::Config;

/// The largest AdmissionReview body accepted (the API server's own limit is about 3 MiB).
pub const MAX_BODY: usize = 8 << 20;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("TLS certificate {path}: {reason}")]
    Certificate { path: String, reason: String },
    #[error("TLS key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The serving certificate, re-read from its PEM files when they change (cert-manager or
/// the kubelet rotating a mounted Secret). A pair that does not load (a half-written
/// update, a key that does not match) leaves the last good one in force.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file contents last tried, so a bad pair is not retried until it changes.
    last_bytes: Mutex<(Vec<u8>, Vec<u8>)>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|e| ServeError::Certificate {
        path: path.display().to_string(),
        reason: format!("cannot read the {what}: {e}"),
    })
}

fn certified_key(
    cert_path: &Path,
    cert: &[u8],
    key_path: &Path,
    key: &[u8],
) -> Result<CertifiedKey, ServeError> {
    let cert_err = |reason: String| ServeError::Certificate {
        path: cert_path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_slice(key).map_err(|e| ServeError::Key {
        path: key_path.display().to_string(),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key_der, &rustls::crypto::ring::default_provider()).map_err(|e| {
        ServeError::Key {
            path: key_path.display().to_string(),
            reason: e.to_string(),
        }
    })
}

impl ReloadingCert {
    /// Loads the certificate chain and key (PEM).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<ReloadingCert, ServeError> {
        let cert = read(cert_path, "certificate")?;
        let key = read(key_path, "key")?;
        let ck = certified_key(cert_path, &cert, key_path, &key)?;
        Ok(ReloadingCert {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(Arc::new(ck)),
            last_bytes: Mutex::new((cert, key)),
        })
    }

    /// Re-reads the files; swaps the certificate in when they changed and load. `Ok(true)`
    /// when a new certificate is in force.
    pub fn reload_if_changed(&self) -> Result<bool, ServeError> {
        let cert = read(&self.cert_path, "certificate")?;
        let key = read(&self.key_path, "key")?;
        {
            let mut last = self.last_bytes.lock().unwrap_or_else(|p| p.into_inner());
            if last.0 == cert && last.1 == key {
                return Ok(false);
            }
            *last = (cert.clone(), key.clone());
        }
        let ck = certified_key(&self.cert_path, &cert, &self.key_path, &key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ck);
        Ok(true)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// The serving TLS configuration of both HTTPS listeners, the webhook and the identity
/// service: ring provider, TLS 1.2 and 1.3, no client certificate, ALPN `http/1.1`, the
/// certificate from `certificates`.
pub fn tls_config(
    certificates: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Bounds of one HTTPS connection ([`serve_https_connection`]).
#[derive(Debug, Clone, Copy)]
pub struct HttpsLimits {
    /// The TLS handshake, and then each request head, must arrive within this.
    pub read_timeout: Duration,
    /// hyper's read buffer bound (`None`: hyper's default, about 400 KiB).
    pub max_buf_size: Option<usize>,
}

/// One connection of an HTTPS listener (the webhook's or the identity service's): the TLS
/// handshake within `limits.read_timeout`, then HTTP/1.1 served by `service`. A refused or
/// timed-out handshake and a connection error are logged at debug level with `server` (the
/// listener's name) and the peer.
pub async fn serve_https_connection<S>(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: Option<SocketAddr>,
    server: &'static str,
    limits: HttpsLimits,
    service: S,
) where
    S: hyper::service::Service<
        Request<Incoming>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
    >,
{
    let peer = peer.map(|p| p.to_string()).unwrap_or_default();
    let tls = match tokio::time::timeout(limits.read_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(server, error = %e, %peer, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(server, %peer, "TLS handshake timed out");
            return;
        }
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout);
    if let Some(max) = limits.max_buf_size {
        builder.max_buf_size(max);
    }
    if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!(server, error = %e, %peer, "connection error");
    }
}

/// What `picket-injector serve` was given.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub health_listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// How often the certificate files are checked for a change.
    pub tls_poll: Duration,
}

struct State {
    config: Arc<Config>,
    lookup: Arc<dyn NamespaceLookup>,
    /// With the identity service: the CA whose current bundle new sidecars get
    /// (`PICKET_IDENTITY_CA`), so that a reloaded CA reaches pods admitted after it.
    identity_ca: Option<SharedCa>,
    /// Requests being answered, waited for (up to [`DRAIN`]) at shutdown.
    in_flight: AtomicUsize,
}

/// How long a stopping server waits for the requests it is answering.
pub const DRAIN: Duration = Duration::from_secs(5);

struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves until SIGTERM or SIGINT; the identity service too when given.
pub async fn serve(
    options: ServeOptions,
    config: Arc<Config>,
    lookup: Arc<dyn NamespaceLookup>,
    metrics: Arc<Metrics>,
    identity: Option<IdentityServer>,
) -> Result<(), ServeError> {
    let cert = Arc::new(ReloadingCert::load(&options.tls_cert, &options.tls_key)?);
    let acceptor = TlsAcceptor::from(tls_config(cert.clone())?);
    let listen = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen { addr, source })
    };
    let webhook = listen(options.listen).await?;
    let health = listen(options.health_listen).await?;
    let ready = Arc::new(AtomicBool::new(true));
    tracing::info!(
        listen = %options.listen,
        health_listen = %options.health_listen,
        "picket-injector serving"
    );
    let state = Arc::new(State {
        config,
        lookup,
        identity_ca: identity.as_ref().map(IdentityServer::shared_ca),
        in_flight: AtomicUsize::new(0),
    });
    let health_task = tokio::spawn(serve_health(health, ready.clone(), metrics));
    let reload_task = tokio::spawn(watch_certificate(cert, options.tls_poll));
    let webhook_task = tokio::spawn(serve_webhook(webhook, acceptor, state.clone()));
    let identity_task = identity.map(|i| {
        if let Ok(addr) = i.local_addr() {
            tracing::info!(listen = %addr, trust_domain = %i.trust_domain(), "identity service serving");
        }
        tokio::spawn(i.run())
    });
    shutdown_signal().await;
    ready.store(false, Ordering::Release);
    tracing::info!("picket-injector stopping");
    webhook_task.abort();
    if let Some(t) = identity_task {
        t.abort();
    }
    let deadline = tokio::time::Instant::now() + DRAIN;
    while state.in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    health_task.abort();
    reload_task.abort();
    Ok(())
}

async fn watch_certificate(cert: Arc<ReloadingCert>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match cert.reload_if_changed() {
            Ok(true) => tracing::info!("serving certificate reloaded"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "serving certificate not reloaded; the previous one stays in force")
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn accept(listener: &TcpListener) -> tokio::net::TcpStream {
    loop {
        match listener.accept().await {
            Ok((s, _)) => return s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The webhook's handshake and head timeout.
const WEBHOOK_READ_TIMEOUT: Duration = Duration::from_secs(10);

async fn serve_webhook(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let stream = accept(&listener).await;
        let peer = stream.peer_addr().ok();
        let acceptor = acceptor.clone();
        let state = state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(req, &state).await) }
        });
        tokio::spawn(serve_https_connection(
            acceptor,
            stream,
            peer,
            "webhook",
            HttpsLimits {
                read_timeout: WEBHOOK_READ_TIMEOUT,
                max_buf_size: None,
            },
            service,
        ));
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message }))
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let _in_flight = InFlight::enter(&state.in_flight);
    if req.uri().path() != "/mutate" {
        return error(
            StatusCode::NOT_FOUND,
            "not found; the webhook is POST /mutate",
        );
    }
    if req.method() != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "POST only");
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let message = format!("cannot read the body (limit {MAX_BODY} bytes): {e}");
            tracing::warn!(target: "picket_injector::admission", decision = "bad_request", reason = %message, "admission request refused");
            return error(StatusCode::BAD_REQUEST, &message);
        }
    };
    let current;
    let config = match &state.identity_ca {
        Some(ca) => {
            let bundle = ca.current().bundle_pem.clone();
            if state.config.identity_ca.as_deref() == Some(bundle.as_str()) {
                &state.config
            } else {
                let mut c = (*state.config).clone();
                c.identity_ca = Some(bundle);
                current = Arc::new(c);
                &current
            }
        }
        None => &state.config,
    };
    match crate::admission::review(&body, state.lookup.as_ref(), config).await {
        Ok((response, _)) => json_response(StatusCode::OK, &response),
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// Plain HTTP `/healthz`, `/readyz` and `/metrics` until the task is aborted.
pub async fn serve_health(listener: TcpListener, ready: Arc<AtomicBool>, metrics: Arc<Metrics>) {
    loop {
        let stream = accept(&listener).await;
        let ready = ready.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let ready = ready.clone();
                let metrics = metrics.clone();
                async move {
                    if req.uri().path() == "/metrics" {
                        let mut r = Response::new(Full::new(Bytes::from(metrics.encode())));
                        r.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static(
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            ),
                        );
                        return Ok::<_, Infallible>(r);
                    }
                    let (status, text) = match req.uri().path() {
                        "/healthz" => (StatusCode::OK, "ok\n"),
                        "/readyz" if ready.load(Ordering::Acquire) => (StatusCode::OK, "ready\n"),
                        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
                        _ => (StatusCode::NOT_FOUND, "not found\n"),
                    };
                    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
                    *r.status_mut() = status;
                    Ok::<_, Infallible>(r)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "health connection error");
            }
        });
    }
}
