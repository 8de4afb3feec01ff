//! Block logs: one JSON line on stdout for every request picket blocks (or, in monitor mode or
//! for `alert` signatures, would block / alerts on), with the fields DESIGN.md fixes.
//!
//! Lines go through a bounded queue to one writer task, so a burst of blocks never stalls the
//! data path on a slow stdout: when the queue is full the line is dropped and counted
//! ([`BlockLog::dropped`]), which the metrics endpoint exposes.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use picket_dpi::Verdict;
use picket_signatures::Engine;
use serde::Serialize;
use tokio::sync::mpsc;

/// How many lines may wait for the writer before new ones are dropped.
pub const QUEUE: usize = 8192;

/// `block` when the request was refused, `alert` when it was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Block,
    Alert,
}

/// What picket did (or, for an alert, would have done in protect mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockAction {
    Reset,
    #[serde(rename = "http_403")]
    Http403,
    RstStream,
    GrpcStatus,
}

#[derive(Debug, Serialize)]
struct SignatureRef<'a> {
    id: &'a str,
    name: &'a str,
    severity: &'a str,
}

/// One block log line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    ts: String,
    event: Event,
    request_id: &'a str,
    direction: &'a str,
    proto: &'a str,
    src: String,
    dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_identity: Option<&'a str>,
    method: String,
    authority: String,
    path: String,
    signature: SignatureRef<'a>,
    location: &'a str,
    excerpt: &'a str,
    /// Every other finding on the same request (id only), so one line tells the whole story.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    also: Vec<&'a str>,
    pack_version: &'a str,
    action: BlockAction,
    mode: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

/// One `--inbound-allow` refusal (or, in monitor mode, alert): a connection, not a request.
#[derive(Debug, Serialize)]
pub struct DenyFacts<'a> {
    /// `deny`, or `alert` in monitor mode.
    pub event: &'a str,
    pub direction: &'a str,
    pub src: String,
    pub dst: String,
    /// The peer's SPIFFE id; `null` for a plaintext connection.
    pub peer_identity: Option<&'a str>,
    /// `identity_not_allowed` or `no_identity`.
    pub reason: &'a str,
    /// `reset`, or `none` in monitor mode.
    pub action: &'a str,
    pub mode: &'a str,
}

#[derive(Serialize)]
struct DenyLine<'a> {
    ts: String,
    #[serde(flatten)]
    facts: &'a DenyFacts<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

/// The request facts a log line needs besides the verdict.
pub struct RequestFacts<'a> {
    pub request_id: &'a str,
    pub direction: &'a str,
    pub proto: &'a str,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub peer_identity: Option<&'a str>,
    pub method: &'a [u8],
    pub authority: &'a [u8],
    pub path: &'a [u8],
}

/// The block log sink shared by all connections.
pub struct BlockLog {
    tx: mpsc::Sender<Vec<u8>>,
    dropped: prometheus_client::metrics::counter::Counter,
    written: Arc<AtomicU64>,
    pod: Option<String>,
    namespace: Option<String>,
}

impl BlockLog {
    /// Starts the writer task (on the current tokio runtime) writing to stdout.
    pub fn stdout(dropped: prometheus_client::metrics::counter::Counter) -> Arc<BlockLog> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        tokio::task::spawn_blocking(move || {
            let stdout = std::io::stdout();
            while let Some(line) = rx.blocking_recv() {
                let mut out = stdout.lock();
                // A failed write (closed stdout) cannot be reported anywhere better than stderr.
                if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
                    tracing::error!(error = %e, "block log: writing to stdout failed");
                } else {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Arc::new(BlockLog {
            tx,
            dropped,
            written,
            pod: std::env::var("POD_NAME").ok().filter(|s| !s.is_empty()),
            namespace: std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|s| !s.is_empty()),
        })
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Queues the line for an inbound authorization refusal. Never waits.
    pub fn deny(&self, facts: &DenyFacts<'_>) {
        let line = DenyLine {
            ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            facts,
            pod: self.pod.as_deref(),
            namespace: self.namespace.as_deref(),
        };
        match serde_json::to_vec(&line) {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                if self.tx.try_send(bytes).is_err() {
                    self.dropped.inc();
                }
            }
            Err(e) => tracing::error!(error = %e, "block log: serialising a deny line failed"),
        }
    }

    /// Queues the line for a verdict with findings. Never waits.
    pub fn record(
        &self,
        engine: &Engine,
        facts: &RequestFacts<'_>,
        verdict: &Verdict,
        event: Event,
        action: BlockAction,
        mode: &str,
    ) {
        let Some(primary) = verdict.primary() else {
            return;
        };
        let sig = &engine.signatures()[primary.signature as usize];
        let also = verdict
            .hits
            .iter()
            .filter(|h| h.signature != primary.signature)
            .map(|h| engine.signatures()[h.signature as usize].id.as_str())
            .collect();
        let line = Line {
            ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            event,
            request_id: facts.request_id,
            direction: facts.direction,
            proto: facts.proto,
            src: facts.src.to_string(),
            dst: facts.dst.to_string(),
            peer_identity: facts.peer_identity,
            method: bounded(facts.method, 32),
            authority: bounded(facts.authority, 256),
            path: bounded(facts.path, 1024),
            signature: SignatureRef {
                id: &sig.id,
                name: &sig.name,
                severity: sig.severity.as_str(),
            },
            location: &primary.location,
            excerpt: &primary.excerpt,
            also,
            pack_version: &engine.info().version,
            action,
            mode,
            pod: self.pod.as_deref(),
            namespace: self.namespace.as_deref(),
        };
        let mut bytes = match serde_json::to_vec(&line) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "block log: serialising a line failed");
                return;
            }
        };
        bytes.push(b'\n');
        if self.tx.try_send(bytes).is_err() {
            self.dropped.inc();
        }
    }
}

/// Peer-controlled bytes as a bounded, lossless-enough string for a log field.
fn bounded(bytes: &[u8], max: usize) -> String {
    picket_signatures::engine::excerpt_bytes(bytes, max)
}
