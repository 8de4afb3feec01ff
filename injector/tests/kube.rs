//! The Kubernetes parts against a fake API server: an HTTPS hyper server on 127.0.0.1 with a
//! certificate from rcgen, answering `POST /apis/authentication.k8s.io/v1/tokenreviews` and
//! `GET /api/v1/namespaces/NAME` the way the real one does; kube-rs points at it with its
//! certificate as the only root.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use picket_injector::identity::{TokenError, TokenReviewValidator, TokenValidator};
use picket_injector::metrics::Metrics;
use picket_injector::{KubeNamespaces, NamespaceLookup};
use picket_mtls::issuance::ErrorCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the fake API server saw.
#[derive(Default)]
struct Seen {
    reviews: Mutex<Vec<Value>>,
    authorization: Mutex<Vec<String>>,
    namespace_gets: AtomicUsize,
}

struct FakeApiServer {
    addr: SocketAddr,
    ca_der: Vec<u8>,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
    /// Closes every open connection when it changes.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.stop.send(true);
    }
}

fn json_response(status: StatusCode, v: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn status(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// Answers a TokenReview by the token: `good-SA` (authenticated as shop/SA, audience
/// picket), `bad` (not authenticated), `wrong-audience`, `user` (a person), `forbidden-rbac`
/// (the API server refuses the review itself).
fn token_review(body: &Value) -> Response<Full<Bytes>> {
    let token = body["spec"]["token"].as_str().unwrap_or_default();
    let asked: Vec<String> = body["spec"]["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let reply = |status: Value| {
        json_response(
            StatusCode::CREATED,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                   "metadata": {"creationTimestamp": null}, "spec": body["spec"].clone(),
                   "status": status}),
        )
    };
    if token == "forbidden-rbac" {
        return status(
            403,
            "Forbidden",
            "tokenreviews.authentication.k8s.io is forbidden: User \"system:serviceaccount:picket-system:picket-injector\" cannot create resource",
        );
    }
    if let Some(sa) = token.strip_prefix("good-") {
        return reply(json!({"authenticated": true,
            "user": {"username": format!("system:serviceaccount:shop:{sa}"), "uid": "u-1",
                     "groups": ["system:serviceaccounts", "system:serviceaccounts:shop", "system:authenticated"]},
            "audiences": asked}));
    }
    match token {
        "wrong-audience" => reply(json!({"authenticated": true,
            "user": {"username": "system:serviceaccount:shop:cart"},
            "audiences": ["https://kubernetes.default.svc.cluster.local"]})),
        "user" => reply(json!({"authenticated": true,
            "user": {"username": "alice@example.com", "groups": ["system:authenticated"]},
            "audiences": asked})),
        _ => reply(json!({"authenticated": false, "user": {},
            "error": "[invalid bearer token, token lookup failed]"})),
    }
}

fn namespace(name: &str) -> Response<Full<Bytes>> {
    match name {
        "shop" => json_response(
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "shop", "annotations": {
                       "picket.dev/mode": "monitor",
                       "picket.dev/exclude-outbound-ports": "5432",
                       "kubectl.kubernetes.io/last-applied-configuration": "{…}"}},
                   "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        ),
        "plain" => json_response(
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "plain"}}),
        ),
        "broken" => status(500, "InternalError", "etcd is having a bad day"),
        other => status(
            404,
            "NotFound",
            &format!("namespaces \"{other}\" not found"),
        ),
    }
}

async fn handle(req: Request<Incoming>, seen: Arc<Seen>) -> Response<Full<Bytes>> {
    if let Some(a) = req.headers().get("authorization") {
        seen.authorization
            .lock()
            .unwrap()
            .push(a.to_str().unwrap_or_default().to_string());
    }
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    match (method.as_str(), path.as_str()) {
        ("POST", "/apis/authentication.k8s.io/v1/tokenreviews") => {
            let body: Value = body
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
            seen.reviews.lock().unwrap().push(body.clone());
            token_review(&body)
        }
        ("GET", p) if p.starts_with("/api/v1/namespaces/") => {
            seen.namespace_gets.fetch_add(1, Ordering::SeqCst);
            namespace(&p["/api/v1/namespaces/".len()..])
        }
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

async fn start() -> FakeApiServer {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let ca_der = cert.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        cert.signing_key.serialize_der(),
    ));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let seen = seen2.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(move |req| {
                    let seen = seen.clone();
                    async move { Ok::<_, Infallible>(handle(req, seen).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = stopped.changed() => {}
                }
            });
        }
    });
    FakeApiServer {
        addr,
        ca_der,
        seen,
        task,
        stop,
    }
}

fn client_for(url: &str, ca_der: Vec<u8>) -> kube::Client {
    let mut config = kube::Config::new(url.parse().unwrap());
    config.root_cert = Some(vec![ca_der]);
    config.auth_info.token = Some("injector-own-token".to_string().into());
    picket_injector::kubernetes::client_from_config(config).unwrap()
}

fn client(api: &FakeApiServer) -> kube::Client {
    client_for(&format!("https://{}", api.addr), api.ca_der.clone())
}

#[tokio::test]
async fn token_review_accepts_only_authenticated_service_accounts_for_picket() {
    let api = start().await;
    let v = TokenReviewValidator::new(client(&api));

    let sa = v.validate("good-cart").await.unwrap();
    assert_eq!((sa.namespace.as_str(), sa.name.as_str()), ("shop", "cart"));
    // The review asked for audience picket, carried the token, and the injector
    // authenticated with its own credentials.
    let reviews = api.seen.reviews.lock().unwrap().clone();
    assert_eq!(reviews[0]["spec"]["audiences"], json!(["picket"]));
    assert_eq!(reviews[0]["spec"]["token"], "good-cart");
    assert_eq!(reviews[0]["kind"], "TokenReview");
    assert_eq!(
        api.seen.authorization.lock().unwrap()[0],
        "Bearer injector-own-token"
    );

    let e = v.validate("bad").await.unwrap_err();
    assert!(matches!(e, TokenError::Invalid(_)), "{e:?}");
    assert_eq!(e.code(), ErrorCode::Unauthenticated);
    assert!(e.to_string().contains("invalid bearer token"), "{e}");

    let e = v.validate("wrong-audience").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unauthenticated, "{e}");
    assert!(e.to_string().contains("audience"), "{e}");

    let e = v.validate("user").await.unwrap_err();
    assert!(matches!(e, TokenError::NotServiceAccount(_)), "{e:?}");
    assert_eq!(e.code(), ErrorCode::Forbidden);

    let e = v.validate("forbidden-rbac").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
    // The token never appears in an error.
    assert!(!e.to_string().contains("forbidden-rbac"));
}

#[tokio::test]
async fn token_review_with_the_api_server_down_is_unavailable() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = start().await;
    let v = TokenReviewValidator::new(client_for(
        &format!("https://127.0.0.1:{port}"),
        api.ca_der.clone(),
    ));
    let started = std::time::Instant::now();
    let e = v.validate("good-cart").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn namespaces_are_read_cached_bounded_and_never_fail_admission() {
    let api = start().await;
    let metrics = Arc::new(Metrics::new());
    let ns = KubeNamespaces::with_cache(client(&api), Duration::from_millis(300), 2)
        .with_metrics(metrics.clone());

    let shop = ns.annotations("shop").await.unwrap();
    assert_eq!(
        shop,
        BTreeMap::from([
            (
                "picket.dev/exclude-outbound-ports".to_string(),
                "5432".to_string()
            ),
            ("picket.dev/mode".to_string(), "monitor".to_string()),
        ])
    );
    // Cached: a second lookup does not reach the API server.
    assert_eq!(ns.annotations("shop").await.unwrap(), shop);
    assert_eq!(api.seen.namespace_gets.load(Ordering::SeqCst), 1);
    // No annotations; unknown namespace: empty.
    assert!(ns.annotations("plain").await.unwrap().is_empty());
    assert!(ns.annotations("missing").await.unwrap().is_empty());
    // Bounded: never more than 2 entries.
    assert!(ns.cached() <= 2, "{}", ns.cached());
    // An API server error: no error, empty annotations, counted.
    assert!(ns.annotations("broken").await.unwrap().is_empty());
    assert!(metrics
        .encode()
        .contains("picket_injector_namespace_lookup_failures_total 1"));
    // After the TTL it reads again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let before = api.seen.namespace_gets.load(Ordering::SeqCst);
    assert_eq!(ns.annotations("shop").await.unwrap(), shop);
    assert_eq!(api.seen.namespace_gets.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn namespaces_with_the_api_server_down_give_the_last_known_or_nothing() {
    let api = start().await;
    let metrics = Arc::new(Metrics::new());
    let ns = KubeNamespaces::with_cache(client(&api), Duration::from_millis(100), 16)
        .with_metrics(metrics.clone());
    let shop = ns.annotations("shop").await.unwrap();
    assert!(!shop.is_empty());
    // The API server goes away.
    let addr = api.addr;
    drop(api);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Stale but known: the last annotations; never seen: none. Neither is an error.
    assert_eq!(ns.annotations("shop").await.unwrap(), shop);
    assert!(ns.annotations("other").await.unwrap().is_empty());
    assert!(metrics
        .encode()
        .contains("picket_injector_namespace_lookup_failures_total 2"));
    // And the admission path injects the pod with its own settings.
    let config = picket_injector::Config::with_images("p:1", "p:1");
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "namespace": "other", "operation": "CREATE",
                    "object": {"metadata": {"name": "p", "annotations": {"picket.dev/mode": "monitor"}},
                               "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    });
    let (answer, decision) =
        picket_injector::admission::review(review.to_string().as_bytes(), &ns, &config)
            .await
            .unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(decision.decision, "inject", "{addr}: {decision:?}");
    assert!(decision.reason.contains("monitor"), "{decision:?}");
}
