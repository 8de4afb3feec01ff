//! The admin endpoint (port 15090 in a pod): `/healthz`, `/readyz`, `/metrics`, `/pack`.
//!
//! Served with hyper on its own listener, apart from the data path, so a scrape never waits
//! behind client traffic and client traffic can never reach it.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use picket_signatures::pack::ExclusionEffect;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::probes::AppProbes;
use crate::reload::PackStore;

/// What the admin endpoint reports on.
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    /// The pack in force (reloads show up here at once).
    pub packs: Arc<PackStore>,
    /// True once the pack is loaded and the data-path listeners are bound.
    pub ready: AtomicBool,
    /// The application's own probes, answered under `/app-health/` (see [`crate::probes`]).
    pub app_probes: AppProbes,
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "admin: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&req, &state).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin: connection error");
            }
        });
    }
}

async fn handle(req: &Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    let path = req.uri().path();
    if path.starts_with("/app-health/") {
        let Some(probe) = state.app_probes.get(path) else {
            return text(StatusCode::NOT_FOUND, "no such application probe\n");
        };
        return match crate::probes::run(probe).await {
            Ok(()) => text(StatusCode::OK, "ok\n"),
            Err(why) => {
                tracing::info!(probe = path, reason = %why, "application probe failed");
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("probe failed: {why}\n"),
                )
            }
        };
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            if state.ready.load(Ordering::Acquire) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        "/metrics" => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            state.metrics.encode(),
        ),
        "/pack" => respond(StatusCode::OK, "application/json", pack_json(state)),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The pack in force, with its exclusions, so an operator can see what is tuned and where.
fn pack_json(state: &AdminState) -> String {
    let current = state.packs.current();
    let engine = &current.engine;
    let info = engine.info();
    let exclusions: Vec<serde_json::Value> = engine
        .pack()
        .exclusions
        .iter()
        .map(|e| {
            serde_json::json!({
                "signatures": e.signatures,
                "host": e.host,
                "path_prefix": e.path_prefix,
                "arg": e.arg,
                "header": e.header,
                "cookie": e.cookie,
                "action": match e.effect {
                    ExclusionEffect::Disable => "disable",
                    ExclusionEffect::SetAction(a) => a.as_str(),
                },
                "reason": e.reason,
                "origin": e.origin,
            })
        })
        .collect();
    let disabled: Vec<&str> = engine
        .pack()
        .signatures
        .iter()
        .filter(|s| !s.enabled)
        .map(|s| s.id.as_str())
        .collect();
    serde_json::json!({
        "name": info.name,
        "version": info.version,
        "source": info.source,
        "signatures": info.signatures,
        "disabled_signatures": disabled,
        "exclusions": exclusions,
        "loaded_at": humantime::format_rfc3339_millis(current.loaded_at).to_string(),
    })
    .to_string()
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body.to_string())
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}
