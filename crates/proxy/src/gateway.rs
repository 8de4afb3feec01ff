//! `picket proxy`'s data path for HTTP/1.x: gateway mode (one listener, one fixed upstream) and
//! transparent mode (listeners that take each connection's original destination).
//!
//! One client connection is paired with one upstream connection at a time: a new one, or for
//! HTTP/1 one taken from the idle pool ([`crate::pool`]); when the client leaves between
//! requests and every response has reached it, a reusable HTTP/1 upstream connection goes back
//! to the pool ([`give_back`]; the relay feeds a [`ResponseFramer`] to know where responses
//! end). Client bytes go through the
//! [`Http1Inspector`] and are held until the request they belong to has a verdict; an allowed
//! request is forwarded *exactly as the client sent it* (header-name case, order and spacing
//! included: what was inspected is what the application gets), a blocked one resets the client
//! connection (TCP RST through `SO_LINGER` 0) and the upstream one. Responses are relayed back
//! as a byte stream, so pipelined requests keep their order without picket parsing responses.
//! An `Upgrade` or `CONNECT` request, once allowed, turns the connection into a tunnel. A body
//! past the inspection limit is the one thing not held whole: the request is judged when the
//! limit is crossed and, unless that blocks it, the rest of its body streams through
//! ([`forward_past_limit`]).
//!
//! Either side may be mesh mutual TLS ([`crate::mesh`]): a client connection is a
//! [`ClientIo`], an upstream one an [`UpstreamIo`] (plain TCP or TLS), and the paths below work
//! on those. One connection goes: `serve` (mesh termination, if any) → `serve_plain_upstream`
//! or `serve_to_mesh` (upstream connection, protocol detection) → `dispatch` → `serve_http1`,
//! `http2::serve` or `tunnel`; a refusal ends in `Relay::reset` or `Relay::forbid`.
//!
//! Limits: the client waits at most `idle_timeout` between requests and `request_timeout` for a
//! whole request from its first byte (the slowloris cut-off); a body streamed past the limit
//! may take longer, but no more than `request_timeout` between two reads; connecting upstream
//! takes at most `connect_timeout`; held bytes per connection are bounded by the head limit
//! plus the body limit; at most `max_connections` are served at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BufMut;
use picket_dpi::{
    Decision, Http1Inspector, InspectConfig, InspectedRequest, RequestMeta, ResponseError,
    ResponseFramer, StreamState,
};
use picket_mtls::{AcceptedPeers, MeshProtocol};
use picket_signatures::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::blocklog::{BlockAction, BlockLog, Event, RequestFacts};
use crate::conn_io::{ClientIo, UpstreamIo};
use crate::detect::{detect, Protocol};
use crate::http2::H2Settings;
use crate::mesh::{Inbound, MeshSettings};
pub use crate::metrics::Direction;
use crate::metrics::{Metrics, Proto, RequestLabels, SignatureLabels};
use crate::pool::{KindLabel, Pool, PoolConfig, PoolKey, PoolKind};
use crate::prefixed::Prefixed;
use crate::reload::PackStore;

/// What to do with a request the engine blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refuse it.
    Protect,
    /// Forward it and log `event: "alert"`.
    Monitor,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Protect => "protect",
            Mode::Monitor => "monitor",
        }
    }
}

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub mode: Mode,
    pub inspect: InspectConfig,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_connections: usize,
    /// How long in-flight connections may finish after SIGTERM.
    pub drain_grace: Duration,
    /// After this long without a client byte, the connection is counted and logged as
    /// server-first (detection goes on waiting; see [`crate::detect`]).
    pub detect_timeout: Duration,
    /// Upstream ports whose traffic is relayed as opaque TCP without detection.
    pub opaque_ports: Vec<u16>,
    /// HTTP/2 and gRPC bounds and refusal style.
    pub h2: H2Settings,
    /// How a blocked HTTP request is refused.
    pub block_response: BlockResponse,
    /// Mesh mTLS: inbound termination and policy, and (gateway mode) a mesh upstream.
    pub mesh: Option<MeshSettings>,
    /// Transparent mode with mesh certificates: which original destinations are mesh peers
    /// ([`crate::mesh_probe`]); outbound connections to them become mesh tunnels.
    pub mesh_probe: Option<Arc<crate::mesh_probe::MeshProbe>>,
    /// Idle HTTP/1 upstream connections kept for reuse ([`crate::pool`]).
    pub pool: PoolConfig,
}

/// How a blocked HTTP request (HTTP/1, or an HTTP/2 stream that is not gRPC) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockResponse {
    /// HTTP/1: TCP RST of the client connection; HTTP/2: RST_STREAM.
    Reset,
    /// `403 Forbidden` (HTTP/1: then the connection closes; HTTP/2: the stream ends).
    Forbidden,
}

impl BlockResponse {
    /// The `action` of the block log line, for HTTP/1.
    pub(crate) fn http1_action(self) -> BlockAction {
        match self {
            BlockResponse::Reset => BlockAction::Reset,
            BlockResponse::Forbidden => BlockAction::Http403,
        }
    }
}

/// Where a listener's connections go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Gateway mode: every connection to one upstream.
    Fixed(SocketAddr),
    /// Transparent mode: to the destination the client addressed before the redirect rules
    /// sent it here (`SO_ORIGINAL_DST` / `IP6T_SO_ORIGINAL_DST`).
    OriginalDst,
}

/// One bound listener and what it is for.
pub struct Listener {
    pub listener: TcpListener,
    pub route: Route,
    pub direction: Direction,
}

/// Binds a listener. An IPv6 address listens for IPv6 only, so that `[::]:15001` and
/// `0.0.0.0:15001` can both be bound and each connection's original destination is read with
/// the option of its own family.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// The destination a redirected connection was addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginalDst(pub SocketAddr);

impl OriginalDst {
    /// Reads it from the accepted socket. Fails on a connection that was not redirected.
    pub fn of(stream: &TcpStream) -> std::io::Result<OriginalDst> {
        let sock = socket2::SockRef::from(stream);
        let local = stream.local_addr()?;
        let addr = if local.is_ipv4() {
            sock.original_dst_v4()?
        } else {
            sock.original_dst_v6()?
        };
        addr.as_socket()
            .map(OriginalDst)
            .ok_or_else(|| std::io::Error::other("original destination is not an IP address"))
    }
}

/// One client connection's facts, for forwarding, logs and metrics.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    pub(crate) upstream: SocketAddr,
    pub(crate) direction: Direction,
    /// The SPIFFE id of the mesh peer: the client on an inbound mesh connection, the
    /// upstream picket on an outbound one.
    pub(crate) peer_identity: Option<Arc<str>>,
    /// The port the client addressed (original destination port, or the listen port in
    /// gateway mode): what `--inbound-allow` lists are keyed by.
    pub(crate) dst_port: u16,
}

/// Why a connection ended early. Each is logged once, with the peer.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("upstream {0}: connect timed out")]
    UpstreamTimeout(SocketAddr),
    #[error("upstream {addr}: {source}")]
    Upstream {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("client: {0}")]
    Client(#[source] std::io::Error),
    #[error("client idle for {0:?}")]
    Idle(Duration),
    #[error("client did not finish a request within {0:?}")]
    RequestTimeout(Duration),
    #[error("no original destination: {0}")]
    NoOriginalDst(#[source] std::io::Error),
    #[error("connection addressed to picket itself ({0}); refused to avoid a loop")]
    Loop(SocketAddr),
    #[error("client HTTP/2: {0}")]
    H2Client(#[source] h2::Error),
    #[error("upstream {addr} HTTP/2: {source}")]
    H2Upstream {
        addr: SocketAddr,
        #[source]
        source: h2::Error,
    },
    #[error("upstream {0} sent bytes that are not HTTP/2 to an HTTP/2 client")]
    UpstreamNotH2(SocketAddr),
    #[error("mesh mTLS handshake failed: {0}")]
    MeshHandshake(#[source] std::io::Error),
    #[error("mesh mTLS handshake not completed within {0:?}")]
    MeshHandshakeTimeout(Duration),
    #[error("mesh peer refused: {0}")]
    MeshPeer(#[source] picket_mtls::Error),
    #[error("plaintext connection refused (--mesh-inbound strict)")]
    PlaintextRefused,
    #[error("upstream {addr}: mesh mTLS handshake failed: {source}")]
    UpstreamMesh {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream {addr}: mesh peer refused: {source}")]
    UpstreamMeshPeer {
        addr: SocketAddr,
        #[source]
        source: picket_mtls::Error,
    },
}

impl ConnError {
    /// The `reason` label of `picket_connection_errors_total`.
    fn reason(&self) -> &'static str {
        match self {
            ConnError::Idle(_) => "idle",
            ConnError::RequestTimeout(_) => "request_timeout",
            ConnError::Upstream { .. }
            | ConnError::UpstreamTimeout(_)
            | ConnError::H2Upstream { .. }
            | ConnError::UpstreamNotH2(_) => "upstream",
            ConnError::Client(_) => "client",
            ConnError::H2Client(_) => "h2_protocol",
            ConnError::NoOriginalDst(_) => "no_original_dst",
            ConnError::Loop(_) => "loop",
            ConnError::MeshHandshake(_)
            | ConnError::MeshHandshakeTimeout(_)
            | ConnError::MeshPeer(_) => "mtls",
            ConnError::PlaintextRefused => "plaintext_refused",
            ConnError::UpstreamMesh { .. } | ConnError::UpstreamMeshPeer { .. } => "upstream_mtls",
        }
    }
}

pub(crate) struct Shared {
    pub(crate) cfg: GatewayConfig,
    pub(crate) packs: Arc<PackStore>,
    pub(crate) log: Arc<BlockLog>,
    pub(crate) metrics: Arc<Metrics>,
    /// Turns true on SIGTERM: idle keep-alive connections close, HTTP/2 ones send GOAWAY.
    pub(crate) draining: watch::Receiver<bool>,
    /// Idle HTTP/1 upstream connections (`None`: pooling is off).
    pub(crate) pool: Option<Arc<Pool>>,
    next_request: AtomicU64,
    id_prefix: u64,
}

/// Runs the gateway until `shutdown` turns true, then drains for the grace period.
pub async fn run(
    cfg: GatewayConfig,
    packs: Arc<PackStore>,
    log: Arc<BlockLog>,
    metrics: Arc<Metrics>,
    listeners: Vec<Listener>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let id_prefix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let pool = Arc::new(Pool::new(cfg.pool, metrics.pool.clone()));
    let pool = pool.enabled().then(|| {
        pool.spawn_sweeper();
        pool
    });
    let shared = Arc::new(Shared {
        pool,
        cfg,
        packs,
        log,
        metrics,
        draining: shutdown.clone(),
        next_request: AtomicU64::new(0),
        id_prefix,
    });
    // One accept task per listener feeds one queue; connections are spawned from here so that
    // the permit count and the drain cover all listeners.
    let own_ports: Vec<u16> = listeners
        .iter()
        .filter_map(|l| l.listener.local_addr().ok().map(|a| a.port()))
        .collect();
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::channel(64);
    let mut acceptors = Vec::new();
    for l in listeners {
        let tx = accepted_tx.clone();
        acceptors.push(tokio::spawn(async move {
            loop {
                match l.listener.accept().await {
                    Ok((client, peer)) => {
                        if tx.send((client, peer, l.route, l.direction)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    drop(accepted_tx);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (client, peer, route, direction) = tokio::select! {
            c = accepted.recv() => match c {
                Some(c) => c,
                None => break,
            },
            _ = shutdown.changed() => break,
        };
        let shared = shared.clone();
        let own_ports = own_ports.clone();
        tasks.spawn(async move {
            let _permit = permit;
            shared.metrics.connections.inc();
            shared.metrics.open_connections.inc();
            let result = match resolve(&client, route, &own_ports) {
                Ok(upstream) => {
                    let dst_port = match route {
                        Route::OriginalDst => upstream.port(),
                        Route::Fixed(_) => client.local_addr().map_or(0, |a| a.port()),
                    };
                    let conn = ConnInfo {
                        peer,
                        upstream,
                        direction,
                        peer_identity: None,
                        dst_port,
                    };
                    serve(client, conn, &shared).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                let reason = e.reason();
                shared.metrics.connection_error(reason);
                match reason {
                    // Someone who is not a mesh peer, or a misconfigured one: worth a warning.
                    "mtls" | "plaintext_refused" | "upstream_mtls" => {
                        tracing::warn!(peer = %peer, error = %e, reason, "connection refused")
                    }
                    _ => tracing::info!(peer = %peer, error = %e, "connection closed"),
                }
            }
            shared.metrics.open_connections.dec();
        });
        // Reap finished tasks so the set does not grow with the connection count.
        while tasks.try_join_next().is_some() {}
    }
    for a in acceptors {
        a.abort();
    }
    let grace = shared.cfg.drain_grace;
    tracing::info!(in_flight = tasks.len(), ?grace, "draining");
    if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(
            left = tasks.len(),
            "grace period over; closing remaining connections"
        );
        tasks.abort_all();
    }
}

/// Where this connection goes: the fixed upstream, or its original destination (never picket
/// itself: a connection whose original destination is one of picket's own ports, or the very
/// address it was accepted on, was not redirected and would loop).
fn resolve(client: &TcpStream, route: Route, own_ports: &[u16]) -> Result<SocketAddr, ConnError> {
    match route {
        Route::Fixed(a) => Ok(a),
        Route::OriginalDst => {
            let OriginalDst(dst) = OriginalDst::of(client).map_err(ConnError::NoOriginalDst)?;
            let local = client.local_addr().map_err(ConnError::Client)?;
            if dst == local || (own_ports.contains(&dst.port()) && dst.ip().is_loopback()) {
                return Err(ConnError::Loop(dst));
            }
            Ok(dst)
        }
    }
}

/// One connection, from accept to its end. In order:
/// 1. on an inbound listener with mesh certificates, a ClientHello is terminated here
///    ([`crate::mesh::accept_inbound`]): the ALPN id says what the tunnel carries, the peer's
///    SPIFFE id goes into the connection's facts; plaintext is served or refused by policy;
/// 2. the upstream is connected: at once for a plain upstream ([`serve_plain_upstream`]), after
///    protocol detection for a mesh upstream ([`serve_to_mesh`]), whose handshake names the
///    protocol; in transparent mode an outbound destination is a mesh upstream when its
///    mesh-port probe says so ([`crate::mesh_probe`]);
/// 3. [`dispatch`] hands the connection to the HTTP/1 loop ([`serve_http1`]), the HTTP/2 path
///    ([`crate::http2::serve`]) or an opaque [`tunnel`].
async fn serve(tcp: TcpStream, mut conn: ConnInfo, shared: &Arc<Shared>) -> Result<(), ConnError> {
    let _ = tcp.set_nodelay(true);
    let mesh = shared.cfg.mesh.as_ref();
    // What the mesh handshake said the connection carries (no detection needed).
    let mut known = None;
    let client = match mesh {
        Some(mesh) if conn.direction == Direction::inbound => {
            match crate::mesh::accept_inbound(tcp, mesh, &shared.cfg).await? {
                Inbound::Plain(tcp) => {
                    if !crate::authz::admit(mesh, &conn, None, shared) {
                        ClientIo::Plain(tcp).abort();
                        return Ok(());
                    }
                    ClientIo::Plain(tcp)
                }
                Inbound::Closed => return Ok(()),
                Inbound::Mesh { io, protocol, peer } => {
                    shared.metrics.mesh_peer(conn.direction, peer.as_str());
                    if !crate::authz::admit(mesh, &conn, Some(&peer), shared) {
                        io.abort();
                        return Ok(());
                    }
                    conn.peer_identity = Some(peer.as_str().into());
                    known = match protocol {
                        MeshProtocol::Http1 => Some(Protocol::Http1),
                        MeshProtocol::Http2 => Some(Protocol::H2),
                        // `picket/1+tcp`: detected again on the decrypted bytes.
                        MeshProtocol::Opaque => None,
                    };
                    io
                }
            }
        }
        _ => ClientIo::Plain(tcp),
    };
    match mesh.and_then(|m| m.upstream.as_ref().map(|peers| (m, peers))) {
        Some((mesh, peers)) if conn.direction == Direction::outbound => {
            serve_to_mesh(client, conn, shared, mesh, peers).await
        }
        _ => match (mesh, shared.cfg.mesh_probe.as_ref()) {
            // Transparent mode: a destination the probe calls meshed gets a mesh tunnel; a
            // failed handshake fails the connection (never plaintext instead) and makes the
            // next connection probe again.
            (Some(mesh), Some(probe))
                if conn.direction == Direction::outbound && probe.meshed(conn.upstream).await =>
            {
                let ip = conn.upstream.ip();
                let served = serve_to_mesh(client, conn, shared, mesh, probe.peers()).await;
                if let Err(ConnError::UpstreamMesh { .. } | ConnError::UpstreamMeshPeer { .. }) =
                    &served
                {
                    probe.handshake_failed(ip);
                }
                served
            }
            _ => serve_plain_upstream(client, known, conn, shared).await,
        },
    }
}

/// A plain upstream is connected at once and its bytes are relayed to the client from the
/// start, so server-first protocols never wait for detection; then the client's protocol is
/// detected (unless `known`) and the connection dispatched.
async fn serve_plain_upstream(
    client: ClientIo,
    known: Option<Protocol>,
    conn: ConnInfo,
    shared: &Arc<Shared>,
) -> Result<(), ConnError> {
    let cfg = &shared.cfg;
    let opaque_port = cfg.opaque_ports.contains(&conn.upstream.port());
    // A pooled connection is taken when the client may speak HTTP/1: not on an opaque port,
    // not on a mesh connection whose ALPN said HTTP/2 or opaque.
    let key = PoolKey {
        addr: conn.upstream,
        kind: PoolKind::Plain,
    };
    let pooled = match (&shared.pool, known) {
        (Some(pool), None | Some(Protocol::Http1)) if !opaque_port => pool.checkout(&key),
        _ => None,
    };
    let reused = pooled.as_ref().map(|p| p.idle_since);
    let upstream = match pooled {
        Some(p) => p.io,
        None => connect_plain(conn.upstream, shared).await?,
    };
    shared
        .metrics
        .pool
        .count(KindLabel::plain, reused.is_some());
    let (mut client_rd, client_wr) = tokio::io::split(client);
    let (up_rd, mut up_wr) = tokio::io::split(upstream);
    let mut relay = Relay::start(up_rd, client_wr, shared);

    let mut first = Vec::new();
    let protocol = if known.is_some() {
        known
    } else if opaque_port {
        None
    } else {
        let slow_after = Instant::now() + cfg.detect_timeout;
        let give_up = Instant::now() + cfg.idle_timeout;
        match detect_until(&mut client_rd, &mut first, slow_after).await? {
            Some(p) => Some(p),
            None => {
                shared.metrics.server_first.inc();
                tracing::info!(peer = %conn.peer, timeout = ?cfg.detect_timeout, "client silent after the detection timeout (server-first protocol?); still waiting for its first bytes");
                match detect_until(&mut client_rd, &mut first, give_up).await? {
                    Some(p) => Some(p),
                    None => {
                        let _ = up_wr.shutdown().await;
                        relay.finish().await;
                        return Err(ConnError::Idle(cfg.idle_timeout));
                    }
                }
            }
        }
    };
    if let Some(idle_since) = reused.filter(|_| protocol != Some(Protocol::Http1)) {
        // The pooled connection served HTTP/1: the client wants something else.
        let track = relay.track.clone();
        let Some((up_rd, client_wr, held_back)) = relay.stop().await else {
            return Err(ConnError::Client(std::io::Error::other(
                "response relay gone",
            )));
        };
        // Nothing came from the upstream meanwhile: nothing the relay passed on, nothing it
        // held back (a few bytes could still have been an HTTP/2 preface).
        let untouched = held_back.is_empty() && track.is_some_and(|t| t.state() == (true, true));
        let old = rejoin(up_rd, up_wr);
        if first.is_empty() && protocol == Some(Protocol::Opaque) && untouched {
            // The client closed without a byte (a TCP health check): the upstream saw nothing.
            // The connection goes back as old as it was, so health checks do not keep it
            // past the idle timeout the server may close it at.
            if let (Some(io), Some(pool)) = (old, &shared.pool) {
                pool.checkin(key, io, None, idle_since);
            }
            let mut client_wr = client_wr;
            let _ = tokio::time::timeout(Duration::from_secs(1), client_wr.shutdown()).await;
            return Ok(());
        }
        drop(old);
        let fresh = connect_plain(conn.upstream, shared).await?;
        shared.metrics.pool.count(KindLabel::plain, false);
        let (up_rd, new_wr) = tokio::io::split(fresh);
        up_wr = new_wr;
        relay = Relay::start(up_rd, client_wr, shared);
    }
    let pool_key = (protocol == Some(Protocol::Http1)).then_some(key);
    dispatch(
        protocol, first, client_rd, up_wr, relay, conn, pool_key, shared,
    )
    .await
}

/// A new plain TCP connection to the upstream, within the connect timeout.
async fn connect_plain(addr: SocketAddr, shared: &Shared) -> Result<UpstreamIo, ConnError> {
    let upstream =
        match tokio::time::timeout(shared.cfg.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(ConnError::UpstreamTimeout(addr)),
            Ok(Err(source)) => return Err(ConnError::Upstream { addr, source }),
            Ok(Ok(s)) => s,
        };
    let _ = upstream.set_nodelay(true);
    Ok(UpstreamIo::Plain(upstream))
}

/// Gateway mode with a mesh upstream: the client's protocol is detected first, because the
/// mesh handshake offers it as its ALPN id; a client still silent at the detection timeout (a
/// server-first protocol) gets a `picket/1+tcp` tunnel then, and the peer picket detects and
/// inspects whatever the client sends later (see [`crate::mesh`]).
async fn serve_to_mesh(
    client: ClientIo,
    mut conn: ConnInfo,
    shared: &Arc<Shared>,
    mesh: &MeshSettings,
    peers: &AcceptedPeers,
) -> Result<(), ConnError> {
    let cfg = &shared.cfg;
    let (mut client_rd, client_wr) = tokio::io::split(client);
    let mut first = Vec::new();
    let protocol = if cfg.opaque_ports.contains(&conn.upstream.port()) {
        None
    } else {
        let slow_after = Instant::now() + cfg.detect_timeout;
        match detect_until(&mut client_rd, &mut first, slow_after).await? {
            Some(p) => Some(p),
            None => {
                shared.metrics.server_first.inc();
                tracing::info!(peer = %conn.peer, timeout = ?cfg.detect_timeout, "client silent after the detection timeout (server-first protocol?); opening the mesh tunnel as picket/1+tcp");
                Some(Protocol::Opaque)
            }
        }
    };
    let offered = protocol.map_or(MeshProtocol::Opaque, crate::mesh::mesh_protocol);
    // HTTP/1 mesh connections are pooled per destination and accepted-peer expectation.
    let pool_key = (offered == MeshProtocol::Http1).then(|| PoolKey {
        addr: conn.upstream,
        kind: PoolKind::MeshHttp1(peers.clone()),
    });
    let pooled = match (&shared.pool, &pool_key) {
        (Some(pool), Some(key)) => pool.checkout(key),
        _ => None,
    };
    let upstream = match pooled {
        Some(p) => {
            shared.metrics.pool.count(KindLabel::mesh, true);
            conn.peer_identity = p.peer;
            p.io
        }
        None => {
            let (upstream, server) =
                crate::mesh::connect_upstream(conn.upstream, mesh, peers, offered, cfg).await?;
            shared.metrics.mesh_peer(conn.direction, server.as_str());
            shared.metrics.pool.count(KindLabel::mesh, false);
            conn.peer_identity = Some(server.as_str().into());
            upstream
        }
    };
    let (up_rd, up_wr) = tokio::io::split(upstream);
    let relay = Relay::start(up_rd, client_wr, shared);
    dispatch(
        protocol, first, client_rd, up_wr, relay, conn, pool_key, shared,
    )
    .await
}

/// Reads the client's first bytes into `first` until [`detect`] decides, or `deadline`
/// passes (`None`). A client that closes before saying enough is opaque.
async fn detect_until(
    client_rd: &mut ReadHalf<ClientIo>,
    first: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Option<Protocol>, ConnError> {
    loop {
        if let Some(p) = detect(first) {
            return Ok(Some(p));
        }
        // Read straight into `first`: it becomes the connection's read buffer afterwards
        // (see `serve_http1`), and a buffer inside this future would make every
        // connection's task that much larger for its whole life.
        first.reserve(READ_CHUNK);
        match tokio::time::timeout_at(deadline, client_rd.read_buf(first)).await {
            Err(_) => return Ok(None),
            Ok(Err(e)) => return Err(ConnError::Client(e)),
            Ok(Ok(0)) => return Ok(Some(Protocol::Opaque)),
            Ok(Ok(_)) => {}
        }
    }
}

/// Hands the connection to the path of its protocol (`None`: an opaque port, not detected).
/// `first` holds the client bytes already read; `pool_key` is where the upstream connection
/// goes back when an HTTP/1 client leaves it idle.
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    protocol: Option<Protocol>,
    first: Vec<u8>,
    client_rd: ReadHalf<ClientIo>,
    up_wr: WriteHalf<UpstreamIo>,
    mut relay: Relay,
    conn: ConnInfo,
    pool_key: Option<PoolKey>,
    shared: &Arc<Shared>,
) -> Result<(), ConnError> {
    match protocol {
        Some(Protocol::Http1) => {
            shared.metrics.detected("http1", "inspected");
            relay.open();
            serve_http1(first, client_rd, up_wr, relay, conn, pool_key, shared).await
        }
        Some(Protocol::H2) => {
            shared.metrics.detected("h2", "inspected");
            let Some((up_rd, client_wr, early)) = relay.hand_back().await else {
                // The upstream already spoke, and not HTTP/2: it cannot serve this client.
                return Err(ConnError::UpstreamNotH2(conn.upstream));
            };
            let (Some(client), Some(upstream)) =
                (rejoin(client_rd, client_wr), rejoin(up_rd, up_wr))
            else {
                return Err(ConnError::Client(std::io::Error::other(
                    "connection halves do not match",
                )));
            };
            crate::http2::serve(
                Prefixed::new(first, client),
                Prefixed::new(early, upstream),
                conn,
                shared.clone(),
            )
            .await
        }
        other => {
            relay.open();
            let name = other.map_or("opaque_port", Protocol::as_str);
            shared.metrics.detected(name, "opaque");
            tracing::info!(peer = %conn.peer, protocol = name, "relaying as opaque TCP");
            tunnel(&first, client_rd, up_wr, relay, conn.upstream).await
        }
    }
}

/// Puts the two halves of one stream back together; `None` if they are not a pair (which
/// the data path never makes).
fn rejoin<T: AsyncRead + AsyncWrite + Unpin>(rd: ReadHalf<T>, wr: WriteHalf<T>) -> Option<T> {
    rd.is_pair_of(&wr).then(|| rd.unsplit(wr))
}

/// Writes all of `bytes` and flushes: over TLS, a write may leave records buffered until the
/// next write, and the next write may only come after the peer answered.
async fn send<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}

/// The HTTP/1 loop: every request is inspected before any of it is forwarded; `first` is the
/// start of the first request (read for detection). When the client leaves between requests
/// and the upstream connection is idle and reusable, it goes back to the pool under
/// `pool_key` ([`give_back`]).
async fn serve_http1(
    first: Vec<u8>,
    mut client_rd: ReadHalf<ClientIo>,
    mut up_wr: WriteHalf<UpstreamIo>,
    relay: Relay,
    conn: ConnInfo,
    pool_key: Option<PoolKey>,
    shared: &Arc<Shared>,
) -> Result<(), ConnError> {
    let cfg = &shared.cfg;
    let peer = conn.peer;
    // The engine is taken once per request: a reload applies from the next request on.
    let mut generation = shared.packs.generation();
    let mut engine = shared.packs.engine();
    let mut inspector = Http1Inspector::new(&engine, &cfg.inspect);
    // The client's bytes not yet forwarded, and the connection's only read buffer: reads go
    // straight into its spare capacity. The bytes read for detection are the start of the
    // first request: the loop inspects them before it reads again.
    let mut held: Vec<u8> = first;
    let hold_limit = cfg.inspect.head.max_head + cfg.inspect.body_limit + (64 << 10);
    let mut preloaded = held.len();
    // Bytes of the request in progress already forwarded (its head, for `Expect: 100-continue`).
    let mut early: Option<u64> = None;
    let mut done = Vec::new();
    let mut request_start = Instant::now();
    // The client left between requests, with nothing of a request forwarded in part.
    let mut clean_end = false;
    let result = loop {
        if inspector.state() == StreamState::Idle
            && held.is_empty()
            && early.is_none()
            && preloaded == 0
            && shared.packs.generation() != generation
        {
            generation = shared.packs.generation();
            drop(inspector);
            engine = shared.packs.engine();
            inspector = Http1Inspector::new(&engine, &cfg.inspect);
        }
        let state = inspector.state();
        let deadline = match state {
            StreamState::Idle => Instant::now() + cfg.idle_timeout,
            _ => request_start + cfg.request_timeout,
        };
        let read = if preloaded > 0 {
            Ok(Ok(std::mem::take(&mut preloaded)))
        } else if state == StreamState::Idle && held.is_empty() {
            // Between requests a drain closes the connection; mid-request it waits.
            let mut draining = shared.draining.clone();
            if *draining.borrow() {
                break Ok(());
            }
            reserve_read(&mut held);
            // At most a chunk per read, so `held` passes the hold limit by a chunk at most.
            let mut room = (&mut held).limit(READ_CHUNK);
            tokio::select! {
                r = tokio::time::timeout_at(deadline, client_rd.read_buf(&mut room)) => r,
                _ = draining.changed() => break Ok(()),
            }
        } else {
            reserve_read(&mut held);
            let mut room = (&mut held).limit(READ_CHUNK);
            tokio::time::timeout_at(deadline, client_rd.read_buf(&mut room)).await
        };
        let between_requests = state == StreamState::Idle && held.is_empty() && early.is_none();
        let n = match read {
            Err(_) if state == StreamState::Idle => {
                clean_end = between_requests;
                break Err(ConnError::Idle(cfg.idle_timeout));
            }
            Err(_) => break Err(ConnError::RequestTimeout(cfg.request_timeout)),
            Ok(Err(e)) => break Err(ConnError::Client(e)),
            Ok(Ok(0)) => {
                // The client finished sending. A request still in progress is judged as it
                // stands (an attack in a truncated request is still logged); nothing more is
                // forwarded, and the upstream sees the end of the stream.
                clean_end = between_requests;
                inspector.finish(&mut done);
                for req in done.drain(..) {
                    match req.verdict.decision() {
                        Decision::Allow => {}
                        Decision::Block if cfg.mode == Mode::Protect => {
                            record(shared, &engine, &req, &conn, Event::Block)
                        }
                        _ => record(shared, &engine, &req, &conn, Event::Alert),
                    }
                }
                break Ok(());
            }
            Ok(Ok(n)) => n,
        };
        // `held` ends with the `n` bytes just read (or preloaded).
        let start = held.len() - n;
        if state == StreamState::Idle {
            request_start = Instant::now();
        }
        let started = std::time::Instant::now();
        inspector.push(&held[start..start + n], &mut done);
        shared
            .metrics
            .inspection_seconds
            .observe(started.elapsed().as_secs_f64());
        let forwarding = !done.is_empty();
        let track = relay.track.as_deref();
        match forward_judged(
            shared, &engine, &mut done, &mut held, &mut up_wr, &conn, &mut early, track,
        )
        .await?
        {
            Next::Continue => {
                if forwarding {
                    relay.request_sent();
                }
                let protect = cfg.mode == Mode::Protect;
                forward_head_early(
                    &inspector, &mut held, &mut up_wr, &conn, &mut early, protect, track,
                )
                .await?;
                let past_limit = forward_past_limit(
                    shared,
                    &engine,
                    &mut inspector,
                    &mut held,
                    &mut up_wr,
                    &conn,
                    &mut early,
                    track,
                )
                .await?;
                if let Next::Reset = past_limit {
                    refuse(relay, client_rd, cfg).await;
                    return Ok(());
                }
            }
            Next::Reset => {
                refuse(relay, client_rd, cfg).await;
                return Ok(());
            }
            Next::Tunnel => {
                return tunnel(&held, client_rd, up_wr, relay, conn.upstream).await;
            }
        }
        if inspector.state() != StreamState::Idle && held.is_empty() {
            request_start = Instant::now();
        }
        if inspector.state() == StreamState::Desynchronised {
            // The request that desynchronised the stream was allowed (monitor mode, or its
            // signature disabled): nothing after it can be framed, so nothing after it is
            // forwarded as if it were.
            if cfg.mode == Mode::Monitor {
                return tunnel(&held, client_rd, up_wr, relay, conn.upstream).await;
            }
            refuse(relay, client_rd, cfg).await;
            return Ok(());
        }
        if held.len() > hold_limit {
            // Unreachable with the inspector's own limits (a body past the inspection limit
            // is counted, not held, by the inspector; but this connection holds the raw bytes
            // until the verdict): refuse rather than grow.
            tracing::warn!(peer = %peer, held = held.len(), "request larger than the hold limit; closing");
            record_over_limit(shared, &engine, &conn);
            refuse(relay, client_rd, cfg).await;
            return Ok(());
        }
    };
    // A clean end: once every response has reached the client, the upstream connection may go
    // back to the pool.
    let relay = match (pool_key, clean_end && !*shared.draining.borrow()) {
        (Some(key), true) => match give_back(relay, up_wr, key, &conn, shared).await {
            GiveBack::Pooled => return result,
            GiveBack::Kept(r, w) => {
                up_wr = w;
                r
            }
        },
        _ => relay,
    };
    // Let the responses to what was already forwarded reach the client; the upstream sees the
    // end of the stream, so an idle keep-alive upstream closes and the relay ends. A peer that
    // keeps the upstream side open gets the idle timeout, not forever.
    let _ = up_wr.shutdown().await;
    if tokio::time::timeout(cfg.idle_timeout, relay.finish())
        .await
        .is_err()
    {
        tracing::info!(peer = %peer, "upstream kept the connection open after the client left");
    }
    result
}

enum GiveBack {
    /// The upstream connection is in the pool and the client's side closed.
    Pooled,
    /// Not reusable: the relay and the write half, to finish the old way.
    Kept(Relay, WriteHalf<UpstreamIo>),
}

/// The client left between requests: waits (at most the idle timeout) until every forwarded
/// request has its whole response relayed, then, if the framer says the connection is
/// reusable and at a response boundary, stops the relay, closes the client's side and puts
/// the upstream connection in the pool.
async fn give_back(
    mut relay: Relay,
    up_wr: WriteHalf<UpstreamIo>,
    key: PoolKey,
    conn: &ConnInfo,
    shared: &Shared,
) -> GiveBack {
    let (Some(pool), Some(track)) = (shared.pool.as_ref(), relay.track.clone()) else {
        return GiveBack::Kept(relay, up_wr);
    };
    let deadline = Instant::now() + shared.cfg.idle_timeout;
    loop {
        let changed = track.changed.notified();
        tokio::pin!(changed);
        // Registered before the check, so a change in between is not missed.
        changed.as_mut().enable();
        let (idle, reusable) = track.state();
        if !reusable {
            return GiveBack::Kept(relay, up_wr);
        }
        if idle {
            break;
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return GiveBack::Kept(relay, up_wr);
        }
    }
    let Some((up_rd, mut client_wr, _)) = relay.stop().await else {
        return GiveBack::Pooled;
    };
    // Stopping cuts a relay in the middle of bytes it had read (the framer is then told).
    let upstream = rejoin(up_rd, up_wr);
    let _ = tokio::time::timeout(Duration::from_secs(1), client_wr.shutdown()).await;
    if let (Some(io), (true, true)) = (upstream, track.state()) {
        let peer = match key.kind {
            PoolKind::MeshHttp1(_) => conn.peer_identity.clone(),
            PoolKind::Plain => None,
        };
        let addr = key.addr;
        if pool.checkin(key, io, peer, Instant::now()) {
            tracing::debug!(peer = %conn.peer, upstream = %addr, "upstream connection pooled");
        }
    }
    GiveBack::Pooled
}

/// The responses on one upstream connection, as far as pooling needs them: the relay feeds the
/// bytes it delivered to the client, the request loop tells it each request it forwards.
pub(crate) struct ResponseTrack {
    framer: std::sync::Mutex<ResponseFramer>,
    /// Told when the connection turns idle or not reusable.
    changed: tokio::sync::Notify,
}

impl ResponseTrack {
    fn new() -> Self {
        ResponseTrack {
            framer: std::sync::Mutex::new(ResponseFramer::default()),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ResponseFramer> {
        self.framer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request is about to go upstream.
    fn expect(&self, head: &picket_dpi::http1::Head) {
        self.lock()
            .request(RequestMeta::new(head.method(), head.keep_alive()));
    }

    /// Response bytes the client has been sent.
    fn feed(&self, bytes: &[u8]) {
        let settled = {
            let mut f = self.lock();
            f.push(bytes);
            f.idle() || !f.reusable()
        };
        if settled {
            self.changed.notify_waiters();
        }
    }

    fn stop(&self, why: ResponseError) {
        self.lock().stop(why);
        self.changed.notify_waiters();
    }

    /// (idle, reusable)
    fn state(&self) -> (bool, bool) {
        let f = self.lock();
        (f.idle(), f.reusable())
    }
}

/// Relays the rest of the connection as opaque bytes: what was already read first, then
/// everything the client sends, while the relay task carries the other direction.
async fn tunnel(
    already_read: &[u8],
    mut client_rd: ReadHalf<ClientIo>,
    mut up_wr: WriteHalf<UpstreamIo>,
    relay: Relay,
    upstream: SocketAddr,
) -> Result<(), ConnError> {
    if !already_read.is_empty() {
        send(&mut up_wr, already_read)
            .await
            .map_err(upstream_err(upstream))?;
    }
    let _ = tokio::io::copy(&mut client_rd, &mut up_wr).await;
    let _ = up_wr.shutdown().await;
    relay.finish().await;
    Ok(())
}

/// Refuses the request in progress the configured way.
async fn refuse(relay: Relay, client_rd: ReadHalf<ClientIo>, cfg: &GatewayConfig) {
    match cfg.block_response {
        BlockResponse::Reset => relay.reset(client_rd).await,
        BlockResponse::Forbidden => relay.forbid(client_rd).await,
    }
}

/// The response relay task of one connection: upstream bytes to the client. It owns the
/// upstream's read half and the client's write half, and always gives both back when it
/// ends, so that the connection can be handed to HTTP/2, refused with picket's own response,
/// or reset. Dropping a `Relay` aborts its task.
struct Relay {
    task: tokio::task::JoinHandle<HandBack>,
    /// Sending stops the relay and gives the halves back; dropping lets it finish (relay until
    /// the upstream ends, then a FIN to the client).
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    gate: Option<tokio::sync::oneshot::Sender<()>>,
    timing: Arc<UpstreamTiming>,
    /// Where the responses stand, when pooling is on.
    track: Option<Arc<ResponseTrack>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When the last request went upstream, to time the first response bytes that follow it
/// (`picket_upstream_response_seconds`). With pipelining, a response still streaming when the
/// next request goes out is counted against that request: an approximation that errs short.
pub(crate) struct UpstreamTiming {
    sent: std::sync::Mutex<Option<std::time::Instant>>,
    histogram: prometheus_client::metrics::histogram::Histogram,
}

impl UpstreamTiming {
    fn new(histogram: prometheus_client::metrics::histogram::Histogram) -> Self {
        UpstreamTiming {
            sent: std::sync::Mutex::new(None),
            histogram,
        }
    }

    fn request_sent(&self) {
        if let Ok(mut s) = self.sent.lock() {
            s.get_or_insert_with(std::time::Instant::now);
        }
    }

    fn response_bytes(&self) {
        let sent = self.sent.lock().ok().and_then(|mut s| s.take());
        if let Some(t) = sent {
            self.histogram.observe(t.elapsed().as_secs_f64());
        }
    }
}

/// What the relay returns when the connection turns out to be HTTP/2: the halves it held and
/// the upstream bytes it read but did not relay.
type HandBack = (ReadHalf<UpstreamIo>, WriteHalf<ClientIo>, Vec<u8>);

/// The relay's read buffer inside its task, and the one it uses while a response streams.
const RELAY_SMALL: usize = 2 << 10;
const RELAY_BURST: usize = 16 << 10;

/// Free space a client read asks for in `held` (the connection's read buffer).
const READ_CHUNK: usize = 8 << 10;

/// Capacity of an empty `held` kept for the next request; a large request's buffer is let go.
const HELD_KEEP: usize = 64 << 10;

/// One read of what is there now, without waiting: `None` when nothing is.
fn read_now<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut rb = tokio::io::ReadBuf::new(buf);
    match std::pin::Pin::new(rd).poll_read(&mut cx, &mut rb) {
        std::task::Poll::Ready(Ok(())) => Some(Ok(rb.filled().len())),
        std::task::Poll::Ready(Err(e)) => Some(Err(e)),
        std::task::Poll::Pending => None,
    }
}

/// Makes room in `held` for the next client read.
fn reserve_read(held: &mut Vec<u8>) {
    if held.is_empty() && held.capacity() > HELD_KEEP {
        *held = Vec::new();
    }
    if held.capacity() - held.len() < READ_CHUNK / 2 {
        held.reserve(READ_CHUNK);
    }
}

/// Most upstream bytes held back while they may be an HTTP/2 server preface.
const MAX_EARLY_UPSTREAM: usize = 16 << 10;

/// Whether upstream bytes may be the start of an HTTP/2 server preface (a SETTINGS frame on
/// stream 0). An HTTP/2 server may send it as soon as the connection opens, before the client
/// said anything; relaying it raw would break the client's HTTP/2 connection with picket.
/// Greetings of server-first protocols (SMTP `220 `, a MySQL handshake) fail this at once.
fn could_be_h2_preface(early: &[u8]) -> bool {
    early.iter().take(9).enumerate().all(|(i, &b)| match i {
        0..=2 => true,
        3 => b == 0x04,
        _ => b == 0,
    })
}

impl Relay {
    /// Starts relaying the upstream's bytes to the client. Until the client's protocol is
    /// known, bytes that may be an HTTP/2 server preface are held (see [`Relay::hand_back`]);
    /// anything else is relayed at once, so server-first protocols never wait for detection.
    fn start(
        mut up_rd: ReadHalf<UpstreamIo>,
        mut client_wr: WriteHalf<ClientIo>,
        shared: &Shared,
    ) -> Relay {
        let timing = Arc::new(UpstreamTiming::new(shared.metrics.upstream_seconds.clone()));
        let response_timing = timing.clone();
        let track = shared.pool.as_ref().map(|_| Arc::new(ResponseTrack::new()));
        let relayed = track.clone();
        let delivered = move |bytes: &[u8]| {
            if let Some(t) = &relayed {
                t.feed(bytes);
            }
        };
        let cut = {
            let track = track.clone();
            move || {
                if let Some(t) = &track {
                    t.stop(ResponseError::Closed);
                }
            }
        };
        let (kill, mut killed) = tokio::sync::oneshot::channel::<()>();
        let (gate, mut gated) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut early = Vec::new();
            // Set when `kill` resolved with its sender dropped: finish, do not stop.
            let mut finishing = false;
            while could_be_h2_preface(&early) && early.len() < MAX_EARLY_UPSTREAM {
                tokio::select! {
                    g = &mut gated => {
                        if g.is_ok() {
                            return (up_rd, client_wr, early);
                        }
                        break;
                    }
                    k = &mut killed, if !finishing => match k {
                        Ok(()) => return (up_rd, client_wr, early),
                        Err(_) => finishing = true,
                    },
                    r = up_rd.read_buf(&mut early) => {
                        if !matches!(r, Ok(n) if n > 0) {
                            break;
                        }
                    }
                }
            }
            // A hand-back asked for just as the loop ended still wins: nothing was relayed.
            if gated.try_recv().is_ok() {
                return (up_rd, client_wr, early);
            }
            // From here on a hand-back fails at once (see `hand_back`).
            drop(gated);
            if !early.is_empty() {
                if send(&mut client_wr, &early).await.is_err() {
                    cut();
                    return (up_rd, client_wr, Vec::new());
                }
                delivered(&early);
            }
            drop(early);
            // Responses are read into a small buffer inside the task first (a response to a
            // small request usually fits); only a read that fills it brings in a larger one,
            // kept while more bytes are there at once. An idle keep-alive connection so holds no
            // read buffer of its own (issue 3: RSS at 1,000 connections).
            let mut small = [0u8; RELAY_SMALL];
            let mut burst: Vec<u8> = Vec::new();
            loop {
                // While a response streams, read on into the burst buffer as long as bytes
                // are there at once; when none are, let it go and wait in the small one.
                let now = if burst.is_empty() {
                    None
                } else {
                    read_now(&mut up_rd, &mut burst)
                };
                let n = match now {
                    Some(Ok(n)) if n > 0 => n,
                    Some(_) => {
                        cut();
                        break;
                    }
                    None => {
                        burst = Vec::new();
                        tokio::select! {
                            r = up_rd.read(&mut small) => match r {
                                Ok(n) if n > 0 => n,
                                _ => {
                                    cut();
                                    break;
                                }
                            },
                            k = &mut killed, if !finishing => match k {
                                Ok(()) => return (up_rd, client_wr, Vec::new()),
                                Err(_) => {
                                    finishing = true;
                                    continue;
                                }
                            },
                        }
                    }
                };
                response_timing.response_bytes();
                let data = if burst.is_empty() {
                    &small[..n]
                } else {
                    &burst[..n]
                };
                // The write is not restarted when the relay is told to finish meanwhile: a
                // write cut short and begun again would send its first bytes twice.
                let stop = {
                    let mut write = std::pin::pin!(send(&mut client_wr, data));
                    loop {
                        tokio::select! {
                            w = &mut write => break w.is_err(),
                            // Stopped with bytes in hand: the connection is mid-response.
                            k = &mut killed, if !finishing => match k {
                                Ok(()) => break true,
                                Err(_) => finishing = true,
                            },
                        }
                    }
                };
                if stop {
                    cut();
                    return (up_rd, client_wr, Vec::new());
                }
                delivered(data);
                if burst.is_empty() && n == RELAY_SMALL {
                    burst = vec![0u8; RELAY_BURST];
                }
            }
            // The upstream finished (or failed): end the client's side with a FIN (over TLS,
            // `close_notify` first).
            let _ = client_wr.shutdown().await;
            (up_rd, client_wr, Vec::new())
        });
        Relay {
            task,
            kill: Some(kill),
            gate: Some(gate),
            timing,
            track,
        }
    }

    /// A request went upstream: time the response bytes that follow.
    fn request_sent(&self) {
        self.timing.request_sent();
    }

    /// The client's protocol is not HTTP/2: relay everything from now on.
    fn open(&mut self) {
        drop(self.gate.take());
    }

    /// Stops the relay and takes its halves back (`None` if the task is gone).
    async fn stop(&mut self) -> Option<HandBack> {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        (&mut self.task).await.ok()
    }

    /// The client speaks HTTP/2: stop relaying and give back the halves, with the upstream
    /// bytes held so far. `None` when the relay had already started relaying (the upstream
    /// spoke first, and not with an HTTP/2 preface).
    async fn hand_back(mut self) -> Option<HandBack> {
        let handed = self.gate.take().is_some_and(|g| g.send(()).is_ok());
        let halves = self.stop().await;
        if handed {
            halves
        } else {
            None
        }
    }

    /// Waits until the upstream has sent everything (or closed).
    async fn finish(mut self) {
        drop(self.kill.take());
        let _ = (&mut self.task).await;
    }

    /// Aborts the client connection with a TCP reset ([`ClientIo::abort`]), so the client
    /// sees a reset, not the clean end of a response it might take as complete. The upstream
    /// connection is dropped with it.
    async fn reset(mut self, client_rd: ReadHalf<ClientIo>) {
        match self.stop().await {
            Some((_up_rd, client_wr, _)) => match rejoin(client_rd, client_wr) {
                Some(client) => client.abort(),
                None => tracing::warn!("cannot reset the client connection; closing it"),
            },
            None => tracing::warn!("response relay gone; closing the client connection"),
        }
    }

    /// Refuses with `403 Forbidden` instead of a reset: the relay stops (a response to an
    /// earlier pipelined request still streaming is cut there), picket writes its response
    /// and closes with a FIN, then reads and discards what the client still sends for a
    /// moment, so that the close does not turn into a reset that destroys the response
    /// before the client has read it.
    async fn forbid(mut self, mut client_rd: ReadHalf<ClientIo>) {
        let Some((_up_rd, mut client_wr, _)) = self.stop().await else {
            return;
        };
        let _ = send(&mut client_wr, FORBIDDEN).await;
        let _ = client_wr.shutdown().await;
        let until = Instant::now() + Duration::from_secs(1);
        // On the heap: a buffer in this future would enlarge every connection's task.
        let mut sink = vec![0u8; 8192];
        let mut discarded = 0usize;
        while discarded < (256 << 10) {
            match tokio::time::timeout_at(until, client_rd.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => discarded += n,
                _ => break,
            }
        }
    }
}

/// The response of `--block-response http-403`.
const FORBIDDEN: &[u8] = b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 27\r\nconnection: close\r\n\r\nrequest blocked by picket\r\n";

enum Next {
    Continue,
    Reset,
    Tunnel,
}

/// Forwards (or refuses) every request the inspector completed, in order.
#[allow(clippy::too_many_arguments)]
async fn forward_judged(
    shared: &Shared,
    engine: &Engine,
    done: &mut Vec<InspectedRequest>,
    held: &mut Vec<u8>,
    up_wr: &mut WriteHalf<UpstreamIo>,
    conn: &ConnInfo,
    early: &mut Option<u64>,
    track: Option<&ResponseTrack>,
) -> Result<Next, ConnError> {
    let cfg = &shared.cfg;
    for req in done.drain(..) {
        let decision = req.verdict.decision();
        count_request(shared, conn.direction, Proto::http1, decision);
        if decision == Decision::Block && cfg.mode == Mode::Protect {
            record(shared, engine, &req, conn, Event::Block);
            return Ok(Next::Reset);
        }
        if decision != Decision::Allow {
            record(shared, engine, &req, conn, Event::Alert);
        }
        // The first request to complete is the one whose head may already have gone ahead.
        let already = match early.take() {
            Some(a) => a,
            None => {
                // Told before the first byte goes, so the response cannot come first.
                if let Some(t) = track {
                    t.expect(&req.head);
                }
                0
            }
        };
        let n = (req.wire_len.saturating_sub(already) as usize).min(held.len());
        send(up_wr, &held[..n])
            .await
            .map_err(upstream_err(conn.upstream))?;
        held.drain(..n);
        if req.head.is_upgrade() || req.head.method().eq_ignore_ascii_case(b"CONNECT") {
            return Ok(Next::Tunnel);
        }
    }
    Ok(Next::Continue)
}

/// `Expect: 100-continue`: a client waits for the server's `100 Continue` before it sends the
/// body, and picket holds a request until its body is inspected, so the two would wait for each
/// other (curl gives up waiting after a second, others never). Once such a head is complete
/// and does not block on its own, it is forwarded ahead of the body; the body stays held until
/// the whole request is judged, and a request blocked then is reset on both sides, so the
/// server never receives a body that was not inspected.
async fn forward_head_early(
    inspector: &Http1Inspector<'_>,
    held: &mut Vec<u8>,
    up_wr: &mut WriteHalf<UpstreamIo>,
    conn: &ConnInfo,
    early: &mut Option<u64>,
    protect: bool,
    track: Option<&ResponseTrack>,
) -> Result<(), ConnError> {
    if early.is_some() {
        return Ok(());
    }
    let Some(a) = inspector.awaiting_body() else {
        return Ok(());
    };
    if !a.head.expects_continue() || (a.head_blocked && protect) {
        return Ok(());
    }
    if let Some(t) = track {
        t.expect(a.head);
    }
    let n = (a.head_wire_len as usize).min(held.len());
    send(up_wr, &held[..n])
        .await
        .map_err(upstream_err(conn.upstream))?;
    held.drain(..n);
    *early = Some(n as u64);
    Ok(())
}

/// A body past the inspection limit is not held: when it crosses the limit, the request is
/// judged on its head and the part of the body that was held (the over-limit finding blocks
/// under fail-closed, alerts under fail-open). A block in `protect` mode refuses it at once;
/// otherwise what is held goes upstream, and so does every later byte of that request as it
/// arrives, while the inspector follows its framing so that the next request on the
/// connection is found and inspected as usual. Memory stays at the body limit whatever the
/// size of the upload. The request is counted and logged (alert) when it ends, like any other.
#[allow(clippy::too_many_arguments)]
async fn forward_past_limit(
    shared: &Shared,
    engine: &Engine,
    inspector: &mut Http1Inspector<'_>,
    held: &mut Vec<u8>,
    up_wr: &mut WriteHalf<UpstreamIo>,
    conn: &ConnInfo,
    early: &mut Option<u64>,
    track: Option<&ResponseTrack>,
) -> Result<Next, ConnError> {
    if let Some(req) = inspector.judge_over_limit() {
        if req.verdict.decision() == Decision::Block && shared.cfg.mode == Mode::Protect {
            count_request(shared, conn.direction, Proto::http1, Decision::Block);
            record(shared, engine, &req, conn, Event::Block);
            return Ok(Next::Reset);
        }
        tracing::debug!(peer = %conn.peer, body_seen = req.body_len, "body past the inspection limit: streaming the rest");
    }
    if inspector.streaming_body() && !held.is_empty() {
        // Everything held belongs to the request in progress: requests that ended in the
        // same read were forwarded (or refused) by `forward_judged` already.
        if let (None, Some(t)) = (*early, track) {
            match inspector.awaiting_body() {
                Some(a) => t.expect(a.head),
                None => t.stop(ResponseError::Tunnel),
            }
        }
        send(up_wr, held)
            .await
            .map_err(upstream_err(conn.upstream))?;
        *early = Some(early.unwrap_or(0) + held.len() as u64);
        held.clear();
    }
    Ok(Next::Continue)
}

pub(crate) fn count_request(
    shared: &Shared,
    direction: Direction,
    proto: Proto,
    decision: Decision,
) {
    shared
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            direction,
            proto,
            verdict: decision.into(),
        })
        .inc();
}

fn upstream_err(addr: SocketAddr) -> impl Fn(std::io::Error) -> ConnError {
    move |source| ConnError::Upstream { addr, source }
}

/// Logs a judged request: a block when picket refused it, an alert when it let it through.
fn record(shared: &Shared, engine: &Engine, req: &InspectedRequest, conn: &ConnInfo, event: Event) {
    let head = &req.head;
    let target = RequestTarget {
        proto: Proto::http1,
        method: head.method(),
        authority: head.host().unwrap_or(b""),
        path: head.path(),
    };
    log_verdict(
        shared,
        engine,
        conn,
        &req.verdict,
        event,
        shared.cfg.block_response.http1_action(),
        target,
    );
}

/// What a log line says about the request itself; empty where it is not known.
pub(crate) struct RequestTarget<'a> {
    pub(crate) proto: Proto,
    pub(crate) method: &'a [u8],
    pub(crate) authority: &'a [u8],
    pub(crate) path: &'a [u8],
}

/// The one place a verdict becomes a block log line and a finding in the metrics, named
/// with the engine that reached it (a reload may have put another in force since).
pub(crate) fn log_verdict(
    shared: &Shared,
    engine: &Engine,
    conn: &ConnInfo,
    verdict: &picket_dpi::Verdict,
    event: Event,
    action: BlockAction,
    RequestTarget {
        proto,
        method,
        authority,
        path,
    }: RequestTarget<'_>,
) {
    let seq = shared.next_request.fetch_add(1, Ordering::Relaxed);
    let request_id = format!("{:016x}-{seq:x}", shared.id_prefix);
    count_finding(shared, engine, verdict, event);
    let facts = RequestFacts {
        request_id: &request_id,
        direction: conn.direction.as_str(),
        proto: proto.as_str(),
        src: conn.peer,
        dst: conn.upstream,
        peer_identity: conn.peer_identity.as_deref(),
        method,
        authority,
        path,
    };
    shared.log.record(
        engine,
        &facts,
        verdict,
        event,
        action,
        shared.cfg.mode.as_str(),
    );
}

fn count_finding(shared: &Shared, engine: &Engine, verdict: &picket_dpi::Verdict, event: Event) {
    if let Some(hit) = verdict.primary() {
        shared
            .metrics
            .findings
            .get_or_create(&SignatureLabels {
                signature: engine.signatures()[hit.signature as usize].id.clone(),
                event: match event {
                    Event::Block => "block",
                    Event::Alert => "alert",
                }
                .to_string(),
            })
            .inc();
    }
}

/// Logs the refusal of a request whose body is still arriving past what a connection may hold.
fn record_over_limit(shared: &Shared, engine: &Engine, conn: &ConnInfo) {
    let ctx = picket_signatures::RequestContext::default();
    let Some(mut hit) = engine.anomaly(
        &ctx,
        picket_signatures::Anomaly::BodyOverInspectionLimit,
        b"",
    ) else {
        return;
    };
    hit.action = picket_signatures::Action::Block;
    let verdict = picket_dpi::Verdict { hits: vec![hit] };
    count_request(shared, conn.direction, Proto::http1, Decision::Block);
    log_verdict(
        shared,
        engine,
        conn,
        &verdict,
        Event::Block,
        shared.cfg.block_response.http1_action(),
        RequestTarget {
            proto: Proto::http1,
            method: b"",
            authority: b"",
            path: b"",
        },
    );
}

#[cfg(test)]
mod tests {
    use super::could_be_h2_preface;

    #[test]
    fn only_a_settings_frame_on_stream_zero_is_held() {
        assert!(could_be_h2_preface(b""));
        assert!(could_be_h2_preface(&[0, 0, 18, 4]));
        assert!(could_be_h2_preface(&[0, 0, 18, 4, 0, 0, 0, 0, 0, 0, 3]));
        // A SETTINGS ACK, or a frame on another stream, is not a preface.
        assert!(!could_be_h2_preface(&[0, 0, 0, 4, 1]));
        assert!(!could_be_h2_preface(&[0, 0, 0, 4, 0, 0, 0, 0, 1]));
        // Server-first greetings are relayed at once.
        assert!(!could_be_h2_preface(b"220 mail.example.org ESMTP"));
        assert!(!could_be_h2_preface(&[0x4a, 0, 0, 0, 0x0a, b'8']));
    }
}
