//! A stand-in for the mesh identity service (picket-injector's), by the contract of
//! `picket_mtls::issuance`: HTTPS (hyper + tokio-rustls, ring) on 127.0.0.1, serving a
//! certificate for `localhost` issued by the mesh CA's intermediate (DNS SAN, no SPIFFE id), answering
//! `POST /v1/certificate` with a certificate from `MeshCa::issue_from_csr` for the identity
//! its static bearer-token table names. It can be told to refuse (503 `unavailable`), and it
//! counts what it issued. It runs on its own thread and runtime, stopped on drop.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use picket_mtls::issuance::{
    CertificateRequest, CertificateResponse, ErrorCode, IssuanceError, CERTIFICATE_PATH,
    MAX_REQUEST_BYTES,
};
use picket_mtls::{MeshCa, SpiffeId};
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::ServerConfig;

struct State {
    ca: MeshCa,
    tokens: HashMap<String, SpiffeId>,
    lifetime: Mutex<Duration>,
    refusing: AtomicBool,
    issued: AtomicU64,
    refused: AtomicU64,
}

pub struct IdentityDouble {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IdentityDouble {
    /// Listens on 127.0.0.1:`port` (0: any), issuing `lifetime` certificates for the
    /// identities of `tokens` (bearer token → SPIFFE id).
    pub fn start(
        ca: MeshCa,
        tokens: &[(&str, &str)],
        lifetime: Duration,
        port: u16,
    ) -> IdentityDouble {
        let (chain, key) = serving_certificate(&ca);
        let tls = ServerConfig::builder_with_provider(picket_mtls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let state = Arc::new(State {
            ca,
            tokens: tokens
                .iter()
                .map(|(t, id)| (t.to_string(), SpiffeId::parse(id).unwrap()))
                .collect(),
            lifetime: Mutex::new(lifetime),
            refusing: AtomicBool::new(false),
            issued: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (tcp, _) = tokio::select! {
                        r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                        _ = &mut stopped => return,
                    };
                    let acceptor = acceptor.clone();
                    let state = served.clone();
                    tokio::spawn(async move {
                        let Ok(Ok(tls)) =
                            tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await
                        else {
                            return;
                        };
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, std::convert::Infallible>(handle(req, &state).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            });
        });
        IdentityDouble {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn set_refusing(&self, refusing: bool) {
        self.state.refusing.store(refusing, Ordering::SeqCst);
    }

    pub fn set_lifetime(&self, lifetime: Duration) {
        *self.state.lifetime.lock().unwrap() = lifetime;
    }

    /// Certificates issued so far.
    pub fn issued(&self) -> u64 {
        self.state.issued.load(Ordering::SeqCst)
    }

    /// Requests refused so far.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }
}

impl Drop for IdentityDouble {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The double's serving certificate, as the identity service's: issued by the mesh CA's
/// intermediate for the DNS name `localhost`, `serverAuth`, no SPIFFE id. (Made with rcgen
/// here; picket-injector's branch adds `MeshCa::issue_server_certificate` for this.)
fn serving_certificate(
    ca: &MeshCa,
) -> (
    Vec<CertificateDer<'static>>,
    tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
) {
    use rcgen::{
        CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let pem = ca.to_pem();
    let issuer = Issuer::from_ca_cert_der(
        ca.intermediate(),
        KeyPair::from_pem(&pem.intermediate_key).unwrap(),
    )
    .unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let leaf = params.signed_by(&key, &issuer).unwrap().der().clone();
    let key = picket_mtls::cert::key_from_pem(key.serialize_pem().as_bytes()).unwrap();
    (vec![leaf, ca.intermediate().clone()], key)
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn refuse(state: &State, code: ErrorCode, message: &str) -> Response<Full<Bytes>> {
    state.refused.fetch_add(1, Ordering::SeqCst);
    let body = serde_json::to_string(&IssuanceError {
        code,
        message: message.to_string(),
    })
    .unwrap();
    json(StatusCode::from_u16(code.http_status()).unwrap(), body)
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    if req.method() != hyper::Method::POST || req.uri().path() != CERTIFICATE_PATH {
        return json(StatusCode::NOT_FOUND, "{}".into());
    }
    let token = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let Some(id) = token.and_then(|t| state.tokens.get(&t).cloned()) else {
        return refuse(state, ErrorCode::Unauthenticated, "unknown token");
    };
    if state.refusing.load(Ordering::SeqCst) {
        return refuse(state, ErrorCode::Unavailable, "told to refuse");
    }
    let Ok(body) = Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    else {
        return refuse(state, ErrorCode::BadRequest, "body");
    };
    let Ok(request) = serde_json::from_slice::<CertificateRequest>(&body.to_bytes()) else {
        return refuse(state, ErrorCode::BadRequest, "not a CertificateRequest");
    };
    let lifetime = *state.lifetime.lock().unwrap();
    let issued = match state
        .ca
        .issue_from_csr(request.csr.as_bytes(), &id, lifetime)
    {
        Ok(c) => c,
        Err(e) => return refuse(state, ErrorCode::BadCsr, &e.to_string()),
    };
    state.issued.fetch_add(1, Ordering::SeqCst);
    let secs = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let answer = CertificateResponse {
        spiffe_id: id.to_string(),
        certificate_chain: issued.chain_pem(),
        trust_bundle: state.ca.trust_bundle().unwrap().to_pem(),
        not_before: secs(issued.info.not_before),
        not_after: secs(issued.info.not_after),
    };
    json(StatusCode::OK, serde_json::to_string(&answer).unwrap())
}
