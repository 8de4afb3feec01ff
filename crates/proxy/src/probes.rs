//! Kubelet probes of the application, answered on the admin port.
//!
//! When inbound traffic requires mutual TLS, the kubelet's plaintext probes of the application
//! would be refused. The injector therefore rewrites each `httpGet` / `tcpSocket` probe of an
//! application container to `GET /app-health/<container>/<livez|readyz|startupz>` on picket's
//! admin port (15090, which the redirect rules never capture), and hands picket the original
//! probes in the environment variable `PICKET_APP_PROBES`:
//!
//! ```json
//! {"/app-health/web/livez": {"httpGet": {"path": "/healthz", "port": 8080,
//!                                        "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
//!  "/app-health/web/readyz": {"tcpSocket": {"port": 8080}}}
//! ```
//!
//! picket runs the original probe against 127.0.0.1 (its own UID is exempt from redirection,
//! so the probe reaches the application directly) and answers 200 when the kubelet would have
//! counted it a success (HTTP status 200–399, or a TCP connect), 503 otherwise. Ports must be
//! numbers (the injector resolves named ports). An `HTTPS` probe is checked as a TCP connect:
//! the kubelet does not verify the application's certificate either, and the application's
//! liveness is what matters.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpStream;

/// The environment variable the injector sets.
pub const ENV: &str = "PICKET_APP_PROBES";

/// How long one probe of the application may take (the kubelet's own timeout also applies).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One original probe.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AppProbe {
    HttpGet(HttpGet),
    TcpSocket(TcpSocket),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpGet {
    #[serde(default = "root")]
    pub path: String,
    pub port: u16,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub http_headers: Vec<HeaderPair>,
}

fn root() -> String {
    "/".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HeaderPair {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TcpSocket {
    pub port: u16,
}

/// The probes picket answers, by admin path.
#[derive(Debug, Clone, Default)]
pub struct AppProbes(HashMap<String, AppProbe>);

#[derive(Debug, thiserror::Error)]
pub enum ProbeConfigError {
    #[error("{ENV}: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{ENV}: probe path {0:?} must start with /app-health/")]
    Path(String),
    #[error("{ENV}: probe {0:?}: a header name or value holds a line break")]
    Header(String),
}

impl AppProbes {
    /// Parses the JSON the injector wrote; an empty string means none.
    pub fn parse(json: &str) -> Result<AppProbes, ProbeConfigError> {
        if json.trim().is_empty() {
            return Ok(AppProbes::default());
        }
        let map: HashMap<String, AppProbe> = serde_json::from_str(json)?;
        for (path, probe) in &map {
            if !path.starts_with("/app-health/") {
                return Err(ProbeConfigError::Path(path.clone()));
            }
            if let AppProbe::HttpGet(h) = probe {
                let bad = |s: &str| s.contains(['\r', '\n']);
                if bad(&h.path)
                    || h.host.as_deref().is_some_and(bad)
                    || h.http_headers.iter().any(|p| bad(&p.name) || bad(&p.value))
                {
                    return Err(ProbeConfigError::Header(path.clone()));
                }
            }
        }
        Ok(AppProbes(map))
    }

    pub fn get(&self, path: &str) -> Option<&AppProbe> {
        self.0.get(path)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Runs a probe against the application on 127.0.0.1: `Ok(())` when the kubelet would count
/// it a success, else what failed.
pub async fn run(probe: &AppProbe) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, run_inner(probe)).await {
        Ok(r) => r,
        Err(_) => Err(format!("timed out after {PROBE_TIMEOUT:?}")),
    }
}

async fn run_inner(probe: &AppProbe) -> Result<(), String> {
    let port = match probe {
        AppProbe::HttpGet(h) => h.port,
        AppProbe::TcpSocket(t) => t.port,
    };
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    let h = match probe {
        AppProbe::TcpSocket(_) => return Ok(()),
        AppProbe::HttpGet(h)
            if h.scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("https")) =>
        {
            return Ok(())
        }
        AppProbe::HttpGet(h) => h,
    };
    // As the kubelet does: a `Host` among the probe's headers is the Host, else `host`, else
    // the address probed.
    let host = h
        .http_headers
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case("host"))
        .map(|p| p.value.clone())
        .or_else(|| h.host.clone())
        .unwrap_or_else(|| format!("127.0.0.1:{port}"));
    let mut request = hyper::Request::get(h.path.as_str())
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "kube-probe/picket")
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close");
    for p in h
        .http_headers
        .iter()
        .filter(|p| !p.name.eq_ignore_ascii_case("host"))
    {
        request = request.header(p.name.as_str(), p.value.as_str());
    }
    let request = request
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| format!("the probe's request: {e}"))?;
    // The status is all that matters; the kubelet reads at most 10 KiB of body too.
    let answer = crate::http_client::exchange(stream, request, 10 << 10)
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status.as_u16();
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP status {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_injector_format() {
        let p = AppProbes::parse(
            r#"{"/app-health/web/livez": {"httpGet": {"path": "/healthz", "port": 8080,
                 "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
                "/app-health/web/readyz": {"tcpSocket": {"port": 8081}}}"#,
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p.get("/app-health/web/readyz"),
            Some(&AppProbe::TcpSocket(TcpSocket { port: 8081 }))
        );
        assert!(AppProbes::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_what_it_cannot_run_safely() {
        assert!(AppProbes::parse(r#"{"/x": {"tcpSocket": {"port": 1}}}"#).is_err());
        // Named ports are the injector's to resolve.
        assert!(
            AppProbes::parse(r#"{"/app-health/a/livez": {"tcpSocket": {"port": "http"}}}"#)
                .is_err()
        );
        assert!(AppProbes::parse(
            r#"{"/app-health/a/livez": {"httpGet": {"port": 1, "path": "/\r\nX: y"}}}"#
        )
        .is_err());
        assert!(AppProbes::parse("{not json").is_err());
    }
}
