//! Idle HTTP/1 upstream connections, kept for the next client connection to the same
//! destination (issue 3: "upstream connections are pooled").
//!
//! # What is pooled
//!
//! An upstream connection goes back to the pool only from the HTTP/1 path
//! ([`crate::gateway`]), when its client left cleanly (EOF between requests, or the idle
//! timeout), every request forwarded on it has a complete response (tracked by
//! [`picket_dpi::ResponseFramer`] on the relayed bytes), the last response let the connection
//! stay open, and nothing is buffered either way. Never pooled: a connection whose request was
//! blocked or reset, a tunnel (`Upgrade`, `CONNECT`, opaque ports, protocols that are not
//! HTTP/1), HTTP/2 (per connection for now; a shared h2 client per destination is the next
//! step), monitor-mode desync, a request streamed past the inspection limit only partly
//! forwarded, anything mid-response, and anything during a drain.
//!
//! # Keys
//!
//! A connection is keyed by its destination address and its kind: plain TCP, or mesh mTLS with
//! the ALPN `picket/1+http/1.1` *and* the [`AcceptedPeers`] expectation it was verified
//! against, so a connection verified for one identity is never handed out under a different
//! expectation. A mesh entry keeps the peer's SPIFFE id for the connection's logs.
//!
//! # Bounds
//!
//! At most `max_per_destination` idle connections per key (default 16; an extra one is
//! closed) and `max_total` in all (default 1,024); each is closed after `idle_timeout` idle
//! (default 4 s: below the 5 s keep-alive of Node's HTTP server, the shortest common one, so
//! picket usually closes first). Expired connections are swept every second and skipped at
//! checkout.
//!
//! # The reuse race
//!
//! A server may close an idle connection at the very moment picket hands it to a new client.
//! Requests are never retried (picket cannot know whether the server acted on one), so the
//! client then sees its connection closed without a response, exactly as it would have with a
//! keep-alive connection of its own. Two defences make this rare: the idle timeout is below
//! common server keep-alive timeouts, and at checkout a connection that has become readable
//! (EOF, an error, or unexpected bytes) is discarded. Plain TCP is checked with a
//! non-blocking `MSG_PEEK`; mesh TLS by polling the stream once with a no-op waker (which may
//! consume a TLS 1.3 NewSessionTicket: `Pending` means usable) and then peeking the socket for
//! an EOF.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use picket_mtls::AcceptedPeers;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;

use crate::conn_io::UpstreamIo;

/// Pool bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most idle connections per destination and kind; 0 turns pooling off.
    pub max_per_destination: usize,
    /// Most idle connections in all.
    pub max_total: usize,
    /// How long a connection may stay idle in the pool.
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_per_destination: 16,
            max_total: 1024,
            idle_timeout: Duration::from_secs(4),
        }
    }
}

/// What kind of upstream connection a pooled one is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PoolKind {
    Plain,
    /// Mesh mTLS carrying HTTP/1.1 (`picket/1+http/1.1`), verified against these peers.
    MeshHttp1(AcceptedPeers),
}

/// Destination and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub addr: SocketAddr,
    pub kind: PoolKind,
}

/// A connection taken from the pool.
pub struct Pooled {
    pub io: UpstreamIo,
    /// The mesh peer's SPIFFE id (mesh connections).
    pub peer: Option<Arc<str>>,
    /// Since when it has been idle: a connection put back unused keeps its age.
    pub idle_since: Instant,
}

struct Idle {
    io: UpstreamIo,
    peer: Option<Arc<str>>,
    since: Instant,
}

#[derive(Default)]
struct Inner {
    idle: HashMap<PoolKey, VecDeque<Idle>>,
    total: usize,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum KindLabel {
    plain,
    mesh,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ReuseLabel {
    new,
    reused,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamConnLabels {
    pub kind: KindLabel,
    pub result: ReuseLabel,
}

/// `picket_upstream_connections_total{kind,result}` and `picket_upstream_idle_connections`.
#[derive(Debug, Default, Clone)]
pub struct PoolMetrics {
    pub connections: Family<UpstreamConnLabels, Counter>,
    pub idle: Gauge,
}

impl PoolMetrics {
    /// Counts an upstream connection for a client: a new one, or one from the pool.
    pub fn count(&self, kind: KindLabel, reused: bool) {
        let result = if reused {
            ReuseLabel::reused
        } else {
            ReuseLabel::new
        };
        self.connections
            .get_or_create(&UpstreamConnLabels { kind, result })
            .inc();
    }
}

/// The pool. Cheap to share (`Arc`); every operation takes one short lock.
pub struct Pool {
    cfg: PoolConfig,
    inner: Mutex<Inner>,
    metrics: PoolMetrics,
}

impl Pool {
    pub fn new(cfg: PoolConfig, metrics: PoolMetrics) -> Pool {
        Pool {
            cfg,
            inner: Mutex::new(Inner::default()),
            metrics,
        }
    }

    /// Whether pooling is on.
    pub fn enabled(&self) -> bool {
        self.cfg.max_per_destination > 0 && self.cfg.max_total > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently pooled usable connection for `key`, if any. Expired and readable
    /// ones met on the way are closed.
    pub fn checkout(&self, key: &PoolKey) -> Option<Pooled> {
        let now = Instant::now();
        let mut discarded = Vec::new();
        let found = {
            let mut inner = self.lock();
            let mut found = None;
            if let Some(list) = inner.idle.get_mut(key) {
                while let Some(mut c) = list.pop_back() {
                    if now.duration_since(c.since) < self.cfg.idle_timeout && usable(&mut c.io) {
                        found = Some(c);
                        break;
                    }
                    discarded.push(c);
                }
                if list.is_empty() {
                    inner.idle.remove(key);
                }
            }
            let taken = discarded.len() + usize::from(found.is_some());
            inner.total = inner.total.saturating_sub(taken);
            self.metrics.idle.set(inner.total as i64);
            found
        };
        if !discarded.is_empty() {
            tracing::debug!(upstream = %key.addr, closed = discarded.len(), "pooled upstream connections expired or closed by the server");
        }
        drop(discarded);
        found.map(|c| Pooled {
            io: c.io,
            peer: c.peer,
            idle_since: c.since,
        })
    }

    /// Offers a connection idle since `idle_since` back; it is closed instead when the pool is
    /// full.
    pub fn checkin(
        &self,
        key: PoolKey,
        io: UpstreamIo,
        peer: Option<Arc<str>>,
        idle_since: Instant,
    ) -> bool {
        if !self.enabled() {
            return false;
        }
        let mut inner = self.lock();
        if inner.total >= self.cfg.max_total {
            return false;
        }
        let list = inner.idle.entry(key).or_default();
        if list.len() >= self.cfg.max_per_destination {
            return false;
        }
        list.push_back(Idle {
            io,
            peer,
            since: idle_since,
        });
        inner.total += 1;
        self.metrics.idle.set(inner.total as i64);
        true
    }

    /// Closes connections idle for longer than the idle timeout.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut inner = self.lock();
            let timeout = self.cfg.idle_timeout;
            inner.idle.retain(|_, list| {
                while list
                    .front()
                    .is_some_and(|c| now.duration_since(c.since) >= timeout)
                {
                    expired.extend(list.pop_front());
                }
                !list.is_empty()
            });
            inner.total = inner.total.saturating_sub(expired.len());
            self.metrics.idle.set(inner.total as i64);
        }
        drop(expired);
    }

    /// Sweeps every second (or the idle timeout, if shorter) until the pool is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let period = self
            .cfg
            .idle_timeout
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(pool) => pool.sweep(),
                    None => return,
                }
            }
        });
    }
}

/// Whether an idle connection is still usable: nothing to read, no EOF, no error. Plain TCP
/// is peeked (non-blocking `MSG_PEEK`: `WouldBlock` means nothing arrived). A TLS stream is
/// polled once with a no-op waker first, which processes records already received (a TLS 1.3
/// NewSessionTicket is fine: `Pending` after it means usable), then its socket is peeked the
/// same way: records not read yet (a `close_notify`, perhaps) or an EOF make it unusable, at
/// the cost of a new connection at worst.
fn usable(io: &mut UpstreamIo) -> bool {
    if let UpstreamIo::Tls(_) = io {
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        if Pin::new(&mut *io).poll_read(&mut cx, &mut buf).is_ready() {
            // Data, EOF or an error: not an idle connection.
            return false;
        }
    }
    let mut b = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(io.tcp()).peek(&mut b) {
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        Ok(_) => false,
    }
}
