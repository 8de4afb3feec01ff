//! HTTP/2 with prior knowledge, and gRPC over it: each stream judged on its own.
//!
//! A client connection that opens with the HTTP/2 preface is terminated by an h2 server, and
//! its upstream connection is driven by an h2 client, so picket sees every request as decoded
//! HPACK fields and DATA, and can refuse one stream while the others on the connection carry
//! on. One upstream HTTP/2 connection serves one client connection (the streams of a client
//! are multiplexed onto it), which keeps the transparent model simple: each client connection
//! has one original destination.
//!
//! Per stream, in order (see [`serve_stream`]):
//! 1. **Head**: method, `:path`, `:authority` and the HPACK-decoded headers go through
//!    [`RequestInspection::head_fields`]. A blocked head is refused before anything is sent
//!    upstream.
//! 2. **Body**, for ordinary requests: held (up to the body limit, releasing flow-control
//!    window as it is taken, so memory is bounded by the limit and not by the window) and
//!    inspected whole with the trailers; then the request is sent upstream. Past the limit,
//!    fail-closed refuses and fail-open forwards what was held and streams the rest unseen.
//! 3. **gRPC** (`content-type: application/grpc…`): the head goes upstream as soon as it
//!    passes, because a streaming call's server answers before the client has finished;
//!    messages are reassembled from DATA frames, inspected one by one, and each is forwarded
//!    only after it passed. A blocked message is never forwarded: the upstream stream is
//!    cancelled and the client gets `grpc-status: 7` (PERMISSION_DENIED) — trailers-only if
//!    no response has started, as trailers after the response's messages otherwise — or an
//!    RST_STREAM, as configured.
//!
//! A refused non-gRPC stream gets RST_STREAM with PROTOCOL_ERROR: not REFUSED_STREAM, which
//! tells a client the request was not processed and may be retried, and clients do retry it.
//!
//! Limits are set explicitly on the h2 server: concurrent streams, header-list size (which also
//! bounds CONTINUATION sequences: h2 stops at the limit instead of buffering a flood), pending
//! resets (rapid reset), locally generated resets, send buffer, and flow-control windows.
//! Malformed frames and headers (uppercase names, connection-specific fields, bad
//! pseudo-headers) are refused by the h2 crate itself with a stream or connection error;
//! picket does not see them as requests, so they are counted as connection errors rather than
//! named in a block log.

use std::future::poll_fn;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use h2::client::{ResponseFuture, SendRequest};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use picket_dpi::{Decision, RequestInspection, Verdict};
use picket_signatures::Anomaly;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::blocklog::{BlockAction, Event};
use crate::conn_io::{ClientIo, UpstreamIo};
use crate::gateway::{BlockResponse, ConnError, ConnInfo, Mode, Shared};
use crate::metrics::Proto;
use crate::prefixed::Prefixed;

/// How a blocked gRPC call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcRefusal {
    /// `grpc-status: 7` (PERMISSION_DENIED) with a `grpc-message`.
    Status,
    /// RST_STREAM, as for any HTTP/2 request.
    Reset,
}

/// Bounds of one HTTP/2 connection, set explicitly on the h2 server and client.
#[derive(Debug, Clone)]
pub struct H2Settings {
    /// Concurrent streams a client may open (and picket opens upstream).
    pub max_concurrent_streams: u32,
    /// Largest decoded header list (HPACK) of a request; bounds CONTINUATION floods too.
    pub max_header_list_size: u32,
    /// Flow-control window per stream, in each direction.
    pub stream_window: u32,
    /// Flow-control window per connection.
    pub connection_window: u32,
    pub grpc_refusal: GrpcRefusal,
}

impl Default for H2Settings {
    fn default() -> Self {
        H2Settings {
            max_concurrent_streams: 100,
            max_header_list_size: 64 << 10,
            stream_window: 256 << 10,
            connection_window: 1 << 20,
            grpc_refusal: GrpcRefusal::Status,
        }
    }
}

/// Reset code for a refused request (see the module docs for why not REFUSED_STREAM).
const BLOCK_REASON: Reason = Reason::PROTOCOL_ERROR;
/// Largest DATA frame picket sends; the h2 default.
const MAX_FRAME: u32 = 16 << 10;

/// Serves one HTTP/2 client connection against its upstream. `client` starts with the preface
/// detection read; `upstream` with whatever the upstream sent before detection finished (its
/// SETTINGS, typically).
pub(crate) async fn serve(
    client: Prefixed<ClientIo>,
    upstream: Prefixed<UpstreamIo>,
    conn: ConnInfo,
    shared: Arc<Shared>,
) -> Result<(), ConnError> {
    let cfg = &shared.cfg;
    let h2cfg = &cfg.h2;
    let up = Arc::new(UpstreamH2::connect(upstream, conn.upstream, shared.clone()).await?);
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(h2cfg.max_concurrent_streams)
        .max_header_list_size(h2cfg.max_header_list_size)
        .initial_window_size(h2cfg.stream_window)
        .initial_connection_window_size(h2cfg.connection_window)
        .max_frame_size(MAX_FRAME)
        .max_send_buffer_size(h2cfg.stream_window as usize)
        .max_concurrent_reset_streams(h2cfg.max_concurrent_streams as usize)
        .max_pending_accept_reset_streams(h2cfg.max_concurrent_streams as usize / 4 + 1)
        .max_local_error_reset_streams(Some(1024))
        .handshake::<_, Bytes>(client);
    let mut server = match tokio::time::timeout(cfg.request_timeout, handshake).await {
        Err(_) => return Err(ConnError::RequestTimeout(cfg.request_timeout)),
        Ok(Err(e)) => return Err(ConnError::H2Client(e)),
        Ok(Ok(s)) => s,
    };
    let mut streams = tokio::task::JoinSet::new();
    let mut draining = shared.draining.clone();
    let mut goaway_sent = false;
    let result = loop {
        if !goaway_sent && *draining.borrow() {
            // SIGTERM: GOAWAY, then the streams in flight finish within the drain grace.
            server.graceful_shutdown();
            goaway_sent = true;
        }
        let idle = tokio::time::sleep(cfg.idle_timeout);
        tokio::select! {
            _ = draining.changed(), if !goaway_sent => continue,
            next = server.accept() => match next {
                None => break Ok(()),
                Some(Err(e)) => break Err(ConnError::H2Client(e)),
                Some(Ok((req, respond))) => {
                    let shared = shared.clone();
                    let up = up.clone();
                    let conn = conn.clone();
                    streams.spawn(async move { serve_stream(&shared, conn, req, respond, up).await });
                }
            },
            _ = idle => {
                if !server.has_streams() {
                    // GOAWAY; `accept` then drives the connection to its end.
                    server.graceful_shutdown();
                }
            }
        }
        while streams.try_join_next().is_some() {}
    };
    streams.abort_all();
    result
}

/// The facts of one stream, for its log line and metrics.
struct StreamCtx<'a> {
    shared: &'a Shared,
    /// The engine this stream is judged with, taken when it began.
    engine: &'a picket_signatures::Engine,
    conn: ConnInfo,
    proto: Proto,
    method: String,
    authority: String,
    path: String,
}

impl StreamCtx<'_> {
    fn count(&self, decision: Decision) {
        crate::gateway::count_request(self.shared, self.conn.direction, self.proto, decision);
    }

    fn record(&self, verdict: &Verdict, event: Event, action: BlockAction) {
        crate::gateway::log_verdict(
            self.shared,
            self.engine,
            &self.conn,
            verdict,
            event,
            action,
            crate::gateway::RequestTarget {
                proto: self.proto,
                method: self.method.as_bytes(),
                authority: self.authority.as_bytes(),
                path: self.path.as_bytes(),
            },
        );
    }

    fn protect(&self) -> bool {
        self.shared.cfg.mode == Mode::Protect
    }

    fn grpc_refusal(&self) -> GrpcRefusal {
        self.shared.cfg.h2.grpc_refusal
    }

    /// How a refusal of this stream is written in its log line.
    fn block_action(&self) -> BlockAction {
        match self.refusal() {
            Refusal::GrpcStatus => BlockAction::GrpcStatus,
            Refusal::Forbidden => BlockAction::Http403,
            Refusal::Reset => BlockAction::RstStream,
        }
    }

    fn refusal(&self) -> Refusal {
        if self.proto == Proto::grpc {
            match self.grpc_refusal() {
                GrpcRefusal::Status => Refusal::GrpcStatus,
                GrpcRefusal::Reset => Refusal::Reset,
            }
        } else {
            match self.shared.cfg.block_response {
                BlockResponse::Forbidden => Refusal::Forbidden,
                BlockResponse::Reset => Refusal::Reset,
            }
        }
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

async fn serve_stream(
    shared: &Shared,
    conn: ConnInfo,
    req: Request<RecvStream>,
    respond: SendResponse<Bytes>,
    up: Arc<UpstreamH2>,
) {
    let engine = shared.packs.engine();
    let (parts, body) = req.into_parts();
    let authority = match parts.uri.authority() {
        Some(a) => a.as_str().to_string(),
        None => parts
            .headers
            .get(http::header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .unwrap_or_default(),
    };
    let ctx = StreamCtx {
        shared,
        engine: &engine,
        conn,
        proto: if is_grpc(&parts.headers) {
            Proto::grpc
        } else {
            Proto::h2
        },
        method: parts.method.as_str().to_string(),
        authority,
        path: parts.uri.path().to_string(),
    };
    let mut insp = RequestInspection::new(&engine, &shared.cfg.inspect);
    let started = std::time::Instant::now();
    let path_and_query = parts.uri.path_and_query().map_or("", |p| p.as_str());
    insp.head_fields(
        ctx.method.as_bytes(),
        path_and_query.as_bytes(),
        ctx.authority.as_bytes(),
        parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())),
    );
    observe(shared, started);
    let mut client = ClientSide::Waiting(respond);
    if ctx.protect() && insp.blocked() {
        let verdict = insp.finish();
        ctx.count(Decision::Block);
        ctx.record(&verdict, Event::Block, ctx.block_action());
        refuse(&ctx, &mut client);
        return;
    }
    if ctx.proto == Proto::grpc {
        grpc_call(&ctx, insp, parts, body, client, up).await
    } else {
        held_request(&ctx, insp, parts, body, client, up).await
    }
}

fn observe(shared: &Shared, started: std::time::Instant) {
    shared
        .metrics
        .inspection_seconds
        .observe(started.elapsed().as_secs_f64());
}

/// The client's half of a stream: no response yet, a response under way, or finished. It is
/// kept outside the futures that use it, so that a refusal can still reach the client after
/// the response relay was abandoned.
enum ClientSide {
    Waiting(SendResponse<Bytes>),
    Streaming(SendStream<Bytes>),
    Done,
}

/// How one stream is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    GrpcStatus,
    Forbidden,
    Reset,
}

/// Refuses the stream in whatever state its response is.
fn refuse(ctx: &StreamCtx<'_>, client: &mut ClientSide) {
    let refusal = ctx.refusal();
    let status = refusal == Refusal::GrpcStatus;
    match std::mem::replace(client, ClientSide::Done) {
        ClientSide::Waiting(mut respond) if refusal == Refusal::Forbidden => {
            let mut response = Response::new(());
            *response.status_mut() = StatusCode::FORBIDDEN;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain"),
            );
            match respond.send_response(response, false) {
                Ok(mut send) => {
                    if send
                        .send_data(Bytes::from_static(b"request blocked by picket\r\n"), true)
                        .is_err()
                    {
                        send.send_reset(BLOCK_REASON);
                    }
                }
                Err(_) => respond.send_reset(BLOCK_REASON),
            }
        }
        ClientSide::Waiting(mut respond) => {
            if status {
                let mut response = Response::new(());
                *response.status_mut() = StatusCode::OK;
                let h = response.headers_mut();
                h.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/grpc"),
                );
                permission_denied(h);
                if respond.send_response(response, true).is_err() {
                    respond.send_reset(BLOCK_REASON);
                }
            } else {
                respond.send_reset(BLOCK_REASON);
            }
        }
        ClientSide::Streaming(mut send) => {
            if status {
                let mut t = HeaderMap::new();
                permission_denied(&mut t);
                if send.send_trailers(t).is_err() {
                    send.send_reset(BLOCK_REASON);
                }
            } else {
                send.send_reset(BLOCK_REASON);
            }
        }
        ClientSide::Done => {}
    }
}

/// The gRPC status of a refused call (PERMISSION_DENIED), in a trailers-only response's head
/// or in the trailers after messages already relayed.
fn permission_denied(h: &mut HeaderMap) {
    h.insert("grpc-status", HeaderValue::from_static("7"));
    h.insert(
        "grpc-message",
        HeaderValue::from_static("request blocked by picket"),
    );
}

/// Refuses a stream that picket could not forward (upstream gone): RST_STREAM
/// REFUSED_STREAM, which tells the client nothing was processed and a retry is safe.
fn unavailable(client: &mut ClientSide) {
    match std::mem::replace(client, ClientSide::Done) {
        ClientSide::Waiting(mut r) => r.send_reset(Reason::REFUSED_STREAM),
        ClientSide::Streaming(mut s) => s.send_reset(Reason::INTERNAL_ERROR),
        ClientSide::Done => {}
    }
}

/// The upstream HTTP/2 connection of one client connection, replaced when it goes away.
///
/// Servers end HTTP/2 connections on their own terms (nginx after `keepalive_requests`
/// streams, any server on a restart, with GOAWAY): the client's connection to picket must not
/// die with it. A stream that cannot be opened on the current connection because it is gone
/// (nothing of the request was sent) opens a new connection and is retried once there.
pub(crate) struct UpstreamH2 {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    /// The first connection was a mesh tunnel: so are the ones that replace it.
    mesh: bool,
    current: tokio::sync::Mutex<(SendRequest<Bytes>, u64, tokio::task::JoinHandle<()>)>,
}

impl UpstreamH2 {
    async fn connect(
        io: Prefixed<UpstreamIo>,
        addr: std::net::SocketAddr,
        shared: Arc<Shared>,
    ) -> Result<UpstreamH2, ConnError> {
        let mesh = matches!(io.get_ref(), UpstreamIo::Tls(_));
        let (send, task) = handshake_upstream(io, addr, &shared.cfg.h2).await?;
        Ok(UpstreamH2 {
            addr,
            shared,
            mesh,
            current: tokio::sync::Mutex::new((send, 0, task)),
        })
    }

    /// Opens the upstream stream for `parts`.
    async fn open(
        &self,
        parts: http::request::Parts,
        end_of_stream: bool,
    ) -> Result<(ResponseFuture, SendStream<Bytes>), ConnError> {
        let (send, generation) = {
            let c = self.current.lock().await;
            (c.0.clone(), c.1)
        };
        let retry = Request::from_parts(clone_head(&parts), ());
        match open_on(send, Request::from_parts(parts, ()), end_of_stream).await {
            Ok(r) => return Ok(r),
            // A refusal of this one stream is the upstream's answer, not a dead connection.
            Err(e) if e.is_reset() && !e.is_go_away() => {
                return Err(ConnError::H2Upstream {
                    addr: self.addr,
                    source: e,
                })
            }
            Err(e) => {
                tracing::debug!(upstream = %self.addr, error = %e, "upstream HTTP/2 connection gone; reconnecting")
            }
        }
        let send = {
            let mut c = self.current.lock().await;
            if c.1 == generation {
                let io = self.reconnect().await?;
                let (send, task) = handshake_upstream(
                    Prefixed::new(Vec::new(), io),
                    self.addr,
                    &self.shared.cfg.h2,
                )
                .await?;
                c.2.abort();
                *c = (send, generation + 1, task);
            }
            c.0.clone()
        };
        open_on(send, retry, end_of_stream)
            .await
            .map_err(|source| ConnError::H2Upstream {
                addr: self.addr,
                source,
            })
    }
}

impl UpstreamH2 {
    /// A new connection to the same upstream, of the same kind (plain, or a mesh tunnel
    /// carrying `picket/1+h2`).
    async fn reconnect(&self) -> Result<UpstreamIo, ConnError> {
        let cfg = &self.shared.cfg;
        if self.mesh {
            // Gateway mode: the --mesh-upstream peers; transparent mode: the probe's.
            let peers = cfg.mesh.as_ref().and_then(|m| {
                m.upstream
                    .as_ref()
                    .or(cfg.mesh_probe.as_ref().map(|p| p.peers()))
                    .map(|p| (m, p))
            });
            if let Some((mesh, peers)) = peers {
                let (io, _peer) = crate::mesh::connect_upstream(
                    self.addr,
                    mesh,
                    peers,
                    picket_mtls::MeshProtocol::Http2,
                    cfg,
                )
                .await?;
                return Ok(io);
            }
        }
        let io = tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| ConnError::UpstreamTimeout(self.addr))?
            .map_err(|source| ConnError::Upstream {
                addr: self.addr,
                source,
            })?;
        let _ = io.set_nodelay(true);
        Ok(UpstreamIo::Plain(io))
    }
}

impl Drop for UpstreamH2 {
    fn drop(&mut self) {
        if let Ok(c) = self.current.try_lock() {
            c.2.abort();
        }
    }
}

async fn open_on(
    send: SendRequest<Bytes>,
    request: Request<()>,
    end_of_stream: bool,
) -> Result<(ResponseFuture, SendStream<Bytes>), h2::Error> {
    let mut send = send.ready().await?;
    send.send_request(request, end_of_stream)
}

/// A copy of a request head (`Parts` holds extensions and is not `Clone`).
fn clone_head(parts: &http::request::Parts) -> http::request::Parts {
    let mut r = Request::new(());
    *r.method_mut() = parts.method.clone();
    *r.uri_mut() = parts.uri.clone();
    *r.version_mut() = parts.version;
    *r.headers_mut() = parts.headers.clone();
    r.into_parts().0
}

/// The h2 client handshake on an upstream connection, with its driver task.
async fn handshake_upstream(
    io: Prefixed<UpstreamIo>,
    addr: std::net::SocketAddr,
    h2cfg: &H2Settings,
) -> Result<(SendRequest<Bytes>, tokio::task::JoinHandle<()>), ConnError> {
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(h2cfg.stream_window)
        .initial_connection_window_size(h2cfg.connection_window)
        .max_frame_size(MAX_FRAME)
        .max_header_list_size(h2cfg.max_header_list_size.saturating_mul(4))
        .max_concurrent_streams(0)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|source| ConnError::H2Upstream { addr, source })?;
    let task = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::info!(upstream = %addr, error = %e, "upstream HTTP/2 connection ended");
        }
    });
    Ok((send, task))
}

/// An ordinary request: body held and inspected whole, then forwarded.
async fn held_request(
    ctx: &StreamCtx<'_>,
    mut insp: RequestInspection<'_>,
    parts: http::request::Parts,
    mut body: RecvStream,
    mut client: ClientSide,
    up: Arc<UpstreamH2>,
) {
    let cfg = &ctx.shared.cfg;
    let limit = cfg.inspect.body_limit;
    let fail_closed = cfg.inspect.over_limit == picket_dpi::OverLimit::FailClosed;
    let deadline = Instant::now() + cfg.request_timeout;
    let mut held: Vec<Bytes> = Vec::new();
    let mut held_len = 0usize;
    let mut ended = body.is_end_stream();
    while !ended && held_len <= limit {
        match tokio::time::timeout_at(deadline, body.data()).await {
            Err(_) => {
                ctx.shared.metrics.connection_error("request_timeout");
                tracing::info!(peer = %ctx.conn.peer, timeout = ?cfg.request_timeout, "HTTP/2 request body not received in time; stream cancelled");
                if let ClientSide::Waiting(r) = &mut client {
                    r.send_reset(Reason::CANCEL);
                }
                return;
            }
            Ok(None) => ended = true,
            // The client reset the stream: nothing was forwarded, nothing to do.
            Ok(Some(Err(_))) => return,
            Ok(Some(Ok(chunk))) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                let started = std::time::Instant::now();
                insp.body_chunk(&chunk);
                observe(ctx.shared, started);
                held_len += chunk.len();
                held.push(chunk);
                if held_len > limit && fail_closed {
                    break;
                }
            }
        }
    }
    let mut trailers = None;
    if ended {
        match tokio::time::timeout_at(deadline, body.trailers()).await {
            Ok(Ok(t)) => trailers = t,
            Ok(Err(_)) => return,
            Err(_) => {
                if let ClientSide::Waiting(r) = &mut client {
                    r.send_reset(Reason::CANCEL);
                }
                return;
            }
        }
        if let Some(t) = &trailers {
            insp.trailers(t.iter().map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())));
        }
    }
    let started = std::time::Instant::now();
    let verdict = insp.finish();
    observe(ctx.shared, started);
    let decision = verdict.decision();
    ctx.count(decision);
    if decision == Decision::Block && ctx.protect() {
        ctx.record(&verdict, Event::Block, ctx.block_action());
        refuse(ctx, &mut client);
        return;
    }
    if decision != Decision::Allow {
        ctx.record(&verdict, Event::Alert, ctx.block_action());
    }
    let eos = ended && held.is_empty() && trailers.is_none();
    let (response, mut up_send) = match up.open(parts, eos).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(upstream = %ctx.conn.upstream, error = %e, "upstream HTTP/2 stream could not be opened");
            unavailable(&mut client);
            return;
        }
    };
    let to_upstream = async {
        let result: Result<(), PipeError> = async {
            if eos {
                return Ok(());
            }
            for chunk in held {
                send_flow(&mut up_send, chunk)
                    .await
                    .map_err(PipeError::Upstream)?;
            }
            if !ended {
                // Fail-open past the limit: the rest streams through unseen (already logged).
                return pipe_body(&mut body, &mut up_send).await;
            }
            match trailers {
                Some(t) => up_send.send_trailers(t),
                None => up_send.send_data(Bytes::new(), true),
            }
            .map_err(PipeError::Upstream)
        }
        .await;
        // The client gave up: cancel upstream. The upstream itself ending the stream early (a
        // server that answers without reading the body, then RST_STREAM NO_ERROR) needs no
        // reset from picket, and resetting would count against h2's limit of locally reset
        // streams until the upstream connection is torn down.
        if let Err(PipeError::Client(_)) = result {
            up_send.send_reset(Reason::CANCEL);
        }
    };
    tokio::join!(
        to_upstream,
        relay_response(response, &mut client, &ctx.shared.metrics.upstream_seconds)
    );
}

/// A gRPC call: head forwarded now, messages inspected and forwarded one by one.
async fn grpc_call(
    ctx: &StreamCtx<'_>,
    mut insp: RequestInspection<'_>,
    parts: http::request::Parts,
    mut body: RecvStream,
    mut client: ClientSide,
    up: Arc<UpstreamH2>,
) {
    let eos = body.is_end_stream();
    let (response, mut up_send) = match up.open(parts, eos).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(upstream = %ctx.conn.upstream, error = %e, "upstream HTTP/2 stream could not be opened");
            unavailable(&mut client);
            return;
        }
    };
    let outcome = {
        let mut relay = Box::pin(relay_response(
            response,
            &mut client,
            &ctx.shared.metrics.upstream_seconds,
        ));
        let pump = pump_grpc(ctx, &mut insp, &mut body, &mut up_send, eos);
        tokio::pin!(pump);
        let pump_first = tokio::select! {
            end = &mut pump => Some(end),
            () = &mut relay => None,
        };
        match pump_first {
            // The upstream may have answered and closed its side before the client finished
            // (a server that ends the call early): its response still goes to the client.
            Some(end @ (PumpEnd::Done | PumpEnd::UpstreamClosed)) => {
                relay.await;
                end
            }
            Some(end) => end,
            // The server ended the call before the client finished sending: the call is
            // over; what the client still sends goes nowhere.
            None => PumpEnd::ServerDone,
        }
    };
    match outcome {
        PumpEnd::Blocked => {
            up_send.send_reset(Reason::CANCEL);
            let verdict = insp.finish();
            ctx.count(Decision::Block);
            ctx.record(&verdict, Event::Block, ctx.block_action());
            refuse(ctx, &mut client);
        }
        PumpEnd::ClientFailed => {
            up_send.send_reset(Reason::CANCEL);
            if let ClientSide::Waiting(r) = &mut client {
                r.send_reset(Reason::CANCEL);
            }
        }
        PumpEnd::Done | PumpEnd::ServerDone | PumpEnd::UpstreamClosed => {
            let verdict = insp.finish();
            let decision = verdict.decision();
            ctx.count(decision);
            if decision != Decision::Allow {
                ctx.record(&verdict, Event::Alert, ctx.block_action());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PumpEnd {
    /// The client finished its half and everything allowed was forwarded.
    Done,
    /// The server finished the call first.
    ServerDone,
    /// A message (or the trailers) blocked; nothing of it was forwarded.
    Blocked,
    /// The client reset the stream, or a message stalled past the timeout: both sides are
    /// cancelled.
    ClientFailed,
    /// Sending upstream failed: the upstream ended its side of the stream (typically after
    /// answering); its response is still relayed.
    UpstreamClosed,
}

/// Client → upstream for a gRPC call: reassembles messages, inspects each, forwards it when
/// it passes. Holds at most one partial message (bounded by the body limit) plus one frame.
async fn pump_grpc(
    ctx: &StreamCtx<'_>,
    insp: &mut RequestInspection<'_>,
    body: &mut RecvStream,
    up_send: &mut SendStream<Bytes>,
    already_ended: bool,
) -> PumpEnd {
    let cfg = &ctx.shared.cfg;
    let limit = cfg.inspect.body_limit;
    let protect = ctx.protect();
    let mut pending = BytesMut::new();
    // Bytes of an over-limit message still to pass through unseen (fail-open).
    let mut passing = 0usize;
    let mut partial_since: Option<Instant> = None;
    if !already_ended {
        loop {
            let next = match partial_since {
                Some(t) => {
                    match tokio::time::timeout_at(t + cfg.request_timeout, body.data()).await {
                        Ok(n) => n,
                        Err(_) => {
                            ctx.shared.metrics.connection_error("request_timeout");
                            tracing::info!(peer = %ctx.conn.peer, "gRPC message not completed in time; stream cancelled");
                            return PumpEnd::ClientFailed;
                        }
                    }
                }
                None => body.data().await,
            };
            let mut chunk = match next {
                None => break,
                Some(Err(_)) => return PumpEnd::ClientFailed,
                Some(Ok(c)) => c,
            };
            let _ = body.flow_control().release_capacity(chunk.len());
            if passing > 0 {
                let n = passing.min(chunk.len());
                passing -= n;
                if send_flow(up_send, chunk.split_to(n)).await.is_err() {
                    return PumpEnd::UpstreamClosed;
                }
                if chunk.is_empty() {
                    continue;
                }
            }
            pending.extend_from_slice(&chunk);
            while pending.len() >= picket_dpi::grpc::PREFIX_LEN {
                let len =
                    u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
                let whole = picket_dpi::grpc::PREFIX_LEN + len;
                if len > limit {
                    insp.over_limit_now();
                    if protect && insp.blocked() {
                        return PumpEnd::Blocked;
                    }
                    let have = pending.len().min(whole);
                    passing = whole - have;
                    if send_flow(up_send, pending.split_to(have).freeze())
                        .await
                        .is_err()
                    {
                        return PumpEnd::UpstreamClosed;
                    }
                    continue;
                }
                if pending.len() < whole {
                    break;
                }
                let message = pending.split_to(whole).freeze();
                let started = std::time::Instant::now();
                insp.grpc_message(&message);
                observe(ctx.shared, started);
                if protect && insp.blocked() {
                    return PumpEnd::Blocked;
                }
                if send_flow(up_send, message).await.is_err() {
                    return PumpEnd::UpstreamClosed;
                }
            }
            partial_since = if pending.is_empty() {
                None
            } else {
                partial_since.or_else(|| Some(Instant::now()))
            };
        }
    }
    if !pending.is_empty() {
        // The call ended inside a message: named, and judged by the pack's action for it.
        insp.anomaly(Anomaly::GrpcFrameInvalid, b"");
        if protect && insp.blocked() {
            return PumpEnd::Blocked;
        }
        if send_flow(up_send, pending.freeze()).await.is_err() {
            return PumpEnd::UpstreamClosed;
        }
    }
    if already_ended {
        return PumpEnd::Done;
    }
    let trailers = match body.trailers().await {
        Ok(t) => t,
        Err(_) => return PumpEnd::ClientFailed,
    };
    if let Some(t) = &trailers {
        insp.trailers(t.iter().map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())));
        if protect && insp.blocked() {
            return PumpEnd::Blocked;
        }
    }
    let sent = match trailers {
        Some(t) => up_send.send_trailers(t),
        None => up_send.send_data(Bytes::new(), true),
    };
    if sent.is_err() {
        return PumpEnd::UpstreamClosed;
    }
    PumpEnd::Done
}

/// Upstream → client: the response head, its DATA (window released as it is passed on) and
/// trailers. Upstream resets are passed on with their reason.
async fn relay_response(
    response: ResponseFuture,
    client: &mut ClientSide,
    upstream_seconds: &prometheus_client::metrics::histogram::Histogram,
) {
    let sent = std::time::Instant::now();
    let response = {
        let ClientSide::Waiting(respond) = client else {
            return;
        };
        tokio::select! {
            r = response => r,
            // The client gave up on the stream while the upstream was thinking.
            _ = poll_fn(|cx| respond.poll_reset(cx)) => return,
        }
    };
    upstream_seconds.observe(sent.elapsed().as_secs_f64());
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            let reason = e.reason().unwrap_or(Reason::INTERNAL_ERROR);
            if let ClientSide::Waiting(r) = client {
                r.send_reset(reason);
            }
            *client = ClientSide::Done;
            return;
        }
    };
    let (parts, mut recv) = response.into_parts();
    let eos = recv.is_end_stream();
    let send = match client {
        ClientSide::Waiting(respond) => respond.send_response(Response::from_parts(parts, ()), eos),
        _ => return,
    };
    let send = match send {
        Ok(s) => s,
        Err(_) => {
            *client = ClientSide::Done;
            return;
        }
    };
    if eos {
        *client = ClientSide::Done;
        return;
    }
    *client = ClientSide::Streaming(send);
    let ClientSide::Streaming(send) = client else {
        return;
    };
    let result: Result<(), h2::Error> = async {
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            let n = chunk.len();
            send_flow(send, chunk).await?;
            let _ = recv.flow_control().release_capacity(n);
        }
        match recv.trailers().await? {
            Some(t) => send.send_trailers(t),
            None => send.send_data(Bytes::new(), true),
        }
    }
    .await;
    match result {
        Ok(()) => *client = ClientSide::Done,
        Err(e) => {
            send.send_reset(e.reason().unwrap_or(Reason::INTERNAL_ERROR));
            *client = ClientSide::Done;
        }
    }
}

/// Client body → upstream, after the held part: data as flow control allows, then trailers.
async fn pipe_body(body: &mut RecvStream, send: &mut SendStream<Bytes>) -> Result<(), PipeError> {
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(PipeError::Client)?;
        let n = chunk.len();
        send_flow(send, chunk).await.map_err(PipeError::Upstream)?;
        let _ = body.flow_control().release_capacity(n);
    }
    match body.trailers().await.map_err(PipeError::Client)? {
        Some(t) => send.send_trailers(t),
        None => send.send_data(Bytes::new(), true),
    }
    .map_err(PipeError::Upstream)
}

/// Which side of a stream being piped failed.
enum PipeError {
    Client(#[allow(dead_code)] h2::Error),
    Upstream(#[allow(dead_code)] h2::Error),
}

/// Sends `data` as the peer's flow-control window allows, so that nothing piles up in h2's
/// send buffer beyond what the peer accepts.
async fn send_flow(send: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), h2::Error> {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(g) => g?,
            None => return Err(h2::Error::from(Reason::STREAM_CLOSED)),
        };
        if granted == 0 {
            continue;
        }
        let piece = data.split_to(granted.min(data.len()));
        send.send_data(piece, false)?;
    }
    Ok(())
}
