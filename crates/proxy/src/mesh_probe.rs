//! Outbound mesh mTLS in transparent mode: which original destinations are picket peers.
//!
//! In transparent mode picket does not know, from the redirected connection alone, whether
//! the destination pod has a picket sidecar. It finds out by asking: every sidecar that has
//! mesh certificates listens on the **mesh port** 15443 (`--mesh-listen`; `picket init`
//! never redirects inbound 15443, nor 15090), and the outbound side **probes** `IP:15443`
//! for an original destination IP it has no fresh answer for. The answer is cached per IP.
//!
//! # The probe, and the mesh port
//!
//! A probe is a TCP connect (at most [`PROBE_CONNECT_TIMEOUT`], 300 ms) followed by a full
//! mTLS handshake with this sidecar's own certificate, accepting any workload of its own
//! trust domain, and then a one-line **announcement** the peer writes before it closes
//! (handshake and announcement within [`PROBE_HANDSHAKE_TIMEOUT`]):
//!
//! ```text
//! picket-mesh/1 plain-ports=8081,9000
//! ```
//!
//! `plain-ports` are the peer's inbound ports that its redirect rules do not capture
//! (`picket proxy --exclude-inbound-ports`, the same list as `picket init
//! --exclude-inbound-ports`); connections to those ports stay plaintext, since nothing on the
//! peer would terminate mTLS there. 15090 and 15443 are never captured and always plain.
//! Unknown fields are ignored (room for later versions).
//!
//! The mesh port does nothing else: it completes the handshake (client certificate required,
//! as on 15006), writes the announcement, closes. At most [`MESH_PORT_CONCURRENCY`] handshakes
//! are served at once (more are dropped at accept), each within [`MESH_PORT_TIMEOUT`].
//!
//! Why a handshake and not just a TCP connect: a connect only says *something* listens on
//! 15443 (an Istio gateway uses that port for SNI passthrough, an application may too), and a
//! destination wrongly called meshed fails closed (below). The handshake proves a workload of
//! this trust domain is there, and carries the port exclusions. Its cost is one ECDSA P-256
//! handshake (about a millisecond of CPU on each side) per destination IP per TTL.
//!
//! # The answers
//!
//! * `meshed`: the handshake completed and the announcement came (in TLS 1.3 the client's
//!   handshake ends before the server has checked the client certificate: the announcement
//!   is what proves the peer accepted us). Connections to the IP (except the plain ports) are
//!   mesh tunnels: picket opens mTLS to the **original** `IP:port` (the peer's redirect rules
//!   send it to its inbound 15006, which terminates it by ALPN, see [`crate::mesh`]),
//!   accepting **any identity of the own trust domain** ([`AcceptedPeers::trust_domain`]).
//!   Per-service identity (this IP must be `sa/server`) needs service discovery (the
//!   Kubernetes API, or an identity service that maps addresses to service accounts) and is
//!   not done: within a trust domain, a peer is authenticated as a member of the mesh, not as
//!   a particular service. Cached for [`POSITIVE_TTL`].
//! * `plain`: nothing listens on 15443 (refused), or what listens there does not complete a
//!   mesh handshake with us (not TLS, another CA, another trust domain, no announcement).
//!   Plaintext as the
//!   application sent it. Cached for [`NEGATIVE_TTL`].
//! * `error`: the probe timed out or failed otherwise. Routed as `plain`, cached as `plain`.
//!
//! Counted as `picket_mesh_probes_total{result="meshed|plain|error"}`;
//! `picket_mesh_probe_cache_entries` is the cache's size (probes in flight included).
//!
//! # Fail closed
//!
//! When the cache says meshed and the mTLS handshake of a connection fails (the peer's
//! certificate does not verify, it is not a picket, it refuses us), the entry is invalidated
//! and **that connection fails**; it is never retried in plaintext. A silent downgrade would
//! let anyone who can make one handshake fail (an attacker on the path, a pod that took over
//! the IP) read the traffic in the clear. The next connection probes again.
//!
//! # The cache
//!
//! One entry per IP, at most [`MAX_ENTRIES`] answers (past that, expired ones are dropped,
//! then those expiring first). Concurrent connections to an IP without a fresh answer share
//! one probe (coalesced): the first starts it in a task of its own (so a client that goes
//! away does not cancel it), the others wait for its answer. Loopback and unspecified
//! destinations are never probed (plain).
//!
//! At most [`MAX_PROBES_IN_FLIGHT`] probes run at once (each holds a socket and a task for up
//! to 1.3 s, and an application connecting to many new IPs would otherwise start as many).
//! A connection to an IP without a fresh answer that finds every probe slot taken is not
//! probed and waits for nothing; it gets what a probe that failed would give, by the rules
//! above: an IP whose last answer, now expired, was `meshed` stays meshed (mTLS, failing
//! closed if the handshake fails: running out of slots is never a way to downgrade a mesh
//! peer to plaintext), any other is routed as `error` (plain). Nothing is cached for it, so
//! the next connection tries for a slot again. Counted in
//! `picket_mesh_probe_no_slot_total`.
//!
//! # Failure modes
//!
//! * **Probe timeout** (a network policy dropping 15443, an overloaded peer): the first
//!   connection to the IP waits up to 300 ms (connect) or 1 s (handshake), then goes plain;
//!   so do the others for the negative TTL. A *strict* peer resets those plaintext
//!   connections (`--mesh-inbound strict`): they fail for up to 10 s, and recover when a
//!   probe succeeds.
//! * **Pod IP reuse**: a pod that goes away and whose IP is given to another keeps its cached
//!   answer up to the TTL. Meshed → un-meshed: the new pod's connections fail closed once
//!   (mTLS to a plaintext server), which invalidates the entry; the next connection probes
//!   and goes plain. Un-meshed → meshed: plaintext for up to 10 s, accepted by a permissive
//!   peer (inspected inbound there), refused by a strict one.
//! * **Strict peers** and probe errors: see above; nothing is retried on the data path.
//! * **Port exclusions changed** on the peer: seen at the next probe (up to 60 s).
//! * **Destinations outside the cluster** are probed too (a SYN to `IP:15443` every 10 s per
//!   IP): picket does not know the cluster's pod CIDRs. `picket init
//!   --exclude-outbound-cidrs` keeps such destinations away from picket altogether.
//!
//! # Cost
//!
//! One probe (connect, handshake, 40 bytes) per destination IP per TTL (60 s when meshed,
//! 10 s otherwise); the first connection to an IP waits for it (about a round trip and a
//! handshake, under a millisecond in a cluster; up to 300 ms to a destination that drops
//! SYNs to 15443).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use picket_mtls::{mesh_server_name, AcceptedPeers, MeshProtocol, MeshTls};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::metrics::ResultLabels;

/// The mesh port: every sidecar with mesh certificates answers probes there.
pub const MESH_PORT: u16 = 15443;
/// Ports of a meshed peer that are never mesh tunnels: its admin port and the mesh port
/// (`picket init` never captures them inbound).
pub const ALWAYS_PLAIN_PORTS: [u16; 2] = [15090, MESH_PORT];
/// TCP connect to `IP:15443`.
pub const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// mTLS handshake and announcement, after the connect.
pub const PROBE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a `meshed` answer is used.
pub const POSITIVE_TTL: Duration = Duration::from_secs(60);
/// How long a `plain` or `error` answer is used.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(10);
/// Most answers cached.
pub const MAX_ENTRIES: usize = 4096;
/// Most probes running at once (see "The cache" in the module docs).
pub const MAX_PROBES_IN_FLIGHT: usize = 128;
/// Handshakes the mesh port serves at once.
pub const MESH_PORT_CONCURRENCY: usize = 64;
/// Time a connection to the mesh port has for its handshake.
pub const MESH_PORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest announcement read.
const MAX_ANNOUNCEMENT: usize = 512;
/// The announcement's first word.
const ANNOUNCEMENT_VERSION: &str = "picket-mesh/1";

/// What a probe found out about one IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// A picket peer of this trust domain; its inbound ports that stay plaintext.
    Meshed { plain_ports: Arc<[u16]> },
    /// Not a mesh peer.
    Plain,
    /// The probe failed or timed out (routed as plain).
    Error,
}

impl ProbeAnswer {
    /// The `result` label of `picket_mesh_probes_total`.
    pub fn label(&self) -> &'static str {
        match self {
            ProbeAnswer::Meshed { .. } => "meshed",
            ProbeAnswer::Plain => "plain",
            ProbeAnswer::Error => "error",
        }
    }

    /// Whether a connection to `port` of this IP is a mesh tunnel.
    pub fn meshed_port(&self, port: u16) -> bool {
        match self {
            ProbeAnswer::Meshed { plain_ports } => {
                !plain_ports.contains(&port) && !ALWAYS_PLAIN_PORTS.contains(&port)
            }
            _ => false,
        }
    }
}

/// A probe of one IP (the real one is [`probe_mesh_port`]; the tests use fakes).
pub type ProbeFn = Arc<dyn Fn(IpAddr) -> ProbeFuture + Send + Sync>;
pub type ProbeFuture = Pin<Box<dyn Future<Output = ProbeAnswer> + Send>>;

/// The cache's bounds.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub positive_ttl: Duration,
    pub negative_ttl: Duration,
    pub max_entries: usize,
    /// Most probes running at once.
    pub max_probes_in_flight: usize,
    /// Hard bound on one probe, whatever the probe function does.
    pub probe_timeout: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            positive_ttl: POSITIVE_TTL,
            negative_ttl: NEGATIVE_TTL,
            max_entries: MAX_ENTRIES,
            max_probes_in_flight: MAX_PROBES_IN_FLIGHT,
            probe_timeout: PROBE_CONNECT_TIMEOUT + PROBE_HANDSHAKE_TIMEOUT + Duration::from_secs(1),
        }
    }
}

/// The metric handles the cache updates.
#[derive(Debug, Clone, Default)]
pub struct ProbeMetrics {
    pub probes: Family<ResultLabels, Counter>,
    pub entries: Gauge,
    /// Lookups that needed a probe and found every probe slot taken.
    pub no_slot: Counter,
}

enum Slot {
    Known {
        answer: ProbeAnswer,
        expires: Instant,
    },
    /// A probe is running; its answer comes on the channel.
    Probing(watch::Receiver<Option<ProbeAnswer>>),
}

struct Inner {
    map: Mutex<HashMap<IpAddr, Slot>>,
    probe: ProbeFn,
    settings: CacheSettings,
    metrics: ProbeMetrics,
    /// One permit per probe in flight, held by its task.
    probe_slots: Arc<Semaphore>,
}

/// Probe answers per IP, with TTLs, a size bound and coalesced probes (see the module docs).
#[derive(Clone)]
pub struct ProbeCache {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ProbeCache {
    pub fn new(probe: ProbeFn, settings: CacheSettings, metrics: ProbeMetrics) -> ProbeCache {
        ProbeCache {
            inner: Arc::new(Inner {
                map: Mutex::new(HashMap::new()),
                probe,
                probe_slots: Arc::new(Semaphore::new(settings.max_probes_in_flight)),
                settings,
                metrics,
            }),
        }
    }

    /// The answer for `ip`: the cached one while fresh, else that of a probe (one probe at a
    /// time per IP; concurrent callers wait for the same one). With every probe slot taken:
    /// an expired `meshed` answer, else [`ProbeAnswer::Error`], at once (see the module docs).
    pub async fn lookup(&self, ip: IpAddr) -> ProbeAnswer {
        let mut rx = {
            let mut map = lock(&self.inner.map);
            match map.get(&ip) {
                Some(Slot::Known { answer, expires }) if *expires > Instant::now() => {
                    return answer.clone();
                }
                // A probe in flight (its task alive: a sender that is gone is replaced).
                Some(Slot::Probing(rx)) if rx.has_changed().is_ok() => rx.clone(),
                stale => {
                    let Ok(permit) = self.inner.probe_slots.clone().try_acquire_owned() else {
                        self.inner.metrics.no_slot.inc();
                        tracing::debug!(%ip, "mesh probe: every probe slot is taken; not probed");
                        return match stale {
                            Some(Slot::Known {
                                answer: answer @ ProbeAnswer::Meshed { .. },
                                ..
                            }) => answer.clone(),
                            _ => ProbeAnswer::Error,
                        };
                    };
                    let (tx, rx) = watch::channel(None);
                    map.insert(ip, Slot::Probing(rx.clone()));
                    self.inner.metrics.entries.set(map.len() as i64);
                    let inner = self.inner.clone();
                    tokio::spawn(async move {
                        let _slot = permit;
                        let probe = (inner.probe)(ip);
                        let answer =
                            match tokio::time::timeout(inner.settings.probe_timeout, probe).await {
                                Ok(a) => a,
                                Err(_) => ProbeAnswer::Error,
                            };
                        inner
                            .metrics
                            .probes
                            .get_or_create(&ResultLabels {
                                result: answer.label().to_string(),
                            })
                            .inc();
                        inner.store(ip, answer.clone());
                        let _ = tx.send(Some(answer));
                    });
                    rx
                }
            }
        };
        let answer = match rx.wait_for(Option::is_some).await {
            Ok(a) => a.clone(),
            Err(_) => None,
        };
        answer.unwrap_or(ProbeAnswer::Error)
    }

    /// Forgets the answer for `ip` (a handshake to a destination called meshed failed): the
    /// next connection probes again. A probe in flight is left to finish.
    pub fn invalidate(&self, ip: IpAddr) {
        let mut map = lock(&self.inner.map);
        if matches!(map.get(&ip), Some(Slot::Known { .. })) {
            map.remove(&ip);
        }
        self.inner.metrics.entries.set(map.len() as i64);
    }

    /// Entries now (answers and probes in flight).
    pub fn len(&self) -> usize {
        lock(&self.inner.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn store(&self, ip: IpAddr, answer: ProbeAnswer) {
        let now = Instant::now();
        let ttl = match answer {
            ProbeAnswer::Meshed { .. } => self.settings.positive_ttl,
            _ => self.settings.negative_ttl,
        };
        let mut map = lock(&self.map);
        map.insert(
            ip,
            Slot::Known {
                answer,
                expires: now + ttl,
            },
        );
        if map.len() > self.settings.max_entries {
            map.retain(|_, s| !matches!(s, Slot::Known { expires, .. } if *expires <= now));
        }
        while map.len() > self.settings.max_entries {
            // The answer that would expire first goes (never a probe in flight, never the
            // answer just stored).
            let oldest = map
                .iter()
                .filter_map(|(k, s)| match s {
                    Slot::Known { expires, .. } if *k != ip => Some((*expires, *k)),
                    _ => None,
                })
                .min();
            match oldest {
                Some((_, k)) => {
                    map.remove(&k);
                }
                None => break,
            }
        }
        self.metrics.entries.set(map.len() as i64);
    }
}

/// The outbound side of transparent mesh mTLS: the probe cache and the peers accepted.
pub struct MeshProbe {
    cache: ProbeCache,
    peers: AcceptedPeers,
}

impl std::fmt::Debug for MeshProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshProbe")
            .field("peers", &self.peers)
            .field("entries", &self.cache.len())
            .finish()
    }
}

impl MeshProbe {
    /// Probes with `tls` (accepting any workload of its own trust domain), with the default
    /// timeouts and cache bounds.
    pub fn new(tls: Arc<MeshTls>, metrics: ProbeMetrics) -> MeshProbe {
        let peers = AcceptedPeers::trust_domain(tls.spiffe_id().trust_domain().clone());
        let probe_peers = peers.clone();
        let probe: ProbeFn = Arc::new(move |ip| {
            let tls = tls.clone();
            let peers = probe_peers.clone();
            Box::pin(async move {
                probe_mesh_port(
                    SocketAddr::new(ip, MESH_PORT),
                    &tls,
                    &peers,
                    PROBE_CONNECT_TIMEOUT,
                    PROBE_HANDSHAKE_TIMEOUT,
                )
                .await
            })
        });
        MeshProbe {
            cache: ProbeCache::new(probe, CacheSettings::default(), metrics),
            peers,
        }
    }

    /// Whether the connection to `dst` is a mesh tunnel (probing its IP if need be).
    pub async fn meshed(&self, dst: SocketAddr) -> bool {
        let ip = dst.ip();
        if ip.is_loopback() || ip.is_unspecified() {
            return false;
        }
        self.cache.lookup(ip).await.meshed_port(dst.port())
    }

    /// Who a mesh tunnel may lead to: any workload of the own trust domain.
    pub fn peers(&self) -> &AcceptedPeers {
        &self.peers
    }

    /// A handshake to `ip`, called meshed, failed: probe it again next time.
    pub fn handshake_failed(&self, ip: IpAddr) {
        self.cache.invalidate(ip);
    }
}

/// Probes `addr` (an IP's mesh port): see the module docs for what each answer means.
pub async fn probe_mesh_port(
    addr: SocketAddr,
    tls: &MeshTls,
    peers: &AcceptedPeers,
    connect_timeout: Duration,
    handshake_timeout: Duration,
) -> ProbeAnswer {
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => {
            tracing::debug!(%addr, "mesh probe: connect timed out");
            return ProbeAnswer::Error;
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return ProbeAnswer::Plain
        }
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "mesh probe: connect failed");
            return ProbeAnswer::Error;
        }
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let config = match tls.client_config(peers, MeshProtocol::Opaque) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "mesh probe: no client configuration");
            return ProbeAnswer::Error;
        }
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    let deadline = Instant::now() + handshake_timeout;
    let mut stream = match tokio::time::timeout_at(
        deadline,
        connector.connect(mesh_server_name(), tcp),
    )
    .await
    {
        Err(_) => {
            tracing::debug!(%addr, "mesh probe: handshake timed out");
            return ProbeAnswer::Error;
        }
        Ok(Err(e)) => {
            // Something listens there, but it is not a mesh peer of ours.
            tracing::info!(%addr, error = %e, "mesh probe: no mesh handshake; destination is not a mesh peer");
            return ProbeAnswer::Plain;
        }
        Ok(Ok(s)) => s,
    };
    // In TLS 1.3 the client's handshake ends before the server has checked the client's
    // certificate: a peer that refuses ours says so (an alert) when we read. Only the
    // announcement proves that the peer accepted us.
    let mut line = Vec::with_capacity(64);
    let mut buf = [0u8; 128];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                line.extend_from_slice(&buf[..n]);
                if line.contains(&b'\n') || line.len() >= MAX_ANNOUNCEMENT {
                    break;
                }
            }
            Ok(Ok(_)) => break,
            Ok(Err(e)) => {
                tracing::info!(%addr, error = %e, "mesh probe: the peer refused us after the handshake; destination is not a mesh peer");
                return ProbeAnswer::Plain;
            }
            Err(_) => {
                tracing::debug!(%addr, "mesh probe: announcement timed out");
                return ProbeAnswer::Error;
            }
        }
    }
    match parse_announcement(&line) {
        Some(plain_ports) => {
            tracing::debug!(%addr, ?plain_ports, "mesh probe: meshed");
            ProbeAnswer::Meshed {
                plain_ports: plain_ports.into(),
            }
        }
        None => {
            tracing::info!(%addr, "mesh probe: no announcement after the handshake; destination is not a mesh peer");
            ProbeAnswer::Plain
        }
    }
}

/// The announcement a mesh port writes after its handshake.
pub fn announcement(plain_ports: &[u16]) -> String {
    let ports: Vec<String> = plain_ports.iter().map(u16::to_string).collect();
    format!("{ANNOUNCEMENT_VERSION} plain-ports={}\n", ports.join(","))
}

/// The plain ports of an announcement; `None` when it is missing or not one.
pub fn parse_announcement(bytes: &[u8]) -> Option<Vec<u16>> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ANNOUNCEMENT)]);
    let line = text.lines().next().unwrap_or("");
    let mut words = line.split_ascii_whitespace();
    if words.next() != Some(ANNOUNCEMENT_VERSION) {
        return None;
    }
    Some(
        words
            .filter_map(|w| w.strip_prefix("plain-ports="))
            .flat_map(|list| list.split(','))
            .filter_map(|p| p.parse::<u16>().ok())
            .collect(),
    )
}

/// Serves the mesh port on `listener` until `shutdown`: each connection gets an mTLS
/// handshake (client certificate required), the announcement of `plain_ports`, and a close.
pub async fn serve_mesh_port(
    listener: TcpListener,
    tls: Arc<MeshTls>,
    plain_ports: Arc<[u16]>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MESH_PORT_CONCURRENCY));
    let line: Arc<[u8]> = announcement(&plain_ports).into_bytes().into();
    loop {
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "mesh port: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "mesh port: too many handshakes at once; dropped");
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
        let line = line.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let served = tokio::time::timeout(MESH_PORT_TIMEOUT, async {
                let mut s = acceptor.accept(tcp).await?;
                let id = picket_mtls::peer_spiffe_id(s.get_ref().1)
                    .map(|id| id.to_string())
                    .unwrap_or_default();
                s.write_all(&line).await?;
                s.shutdown().await?;
                Ok::<_, std::io::Error>(id)
            })
            .await;
            match served {
                Ok(Ok(id)) => {
                    tracing::debug!(%peer, peer_identity = %id, "mesh port: probe answered")
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "mesh port: handshake failed"),
                Err(_) => tracing::debug!(%peer, "mesh port: handshake timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    fn meshed() -> ProbeAnswer {
        ProbeAnswer::Meshed {
            plain_ports: Arc::from(vec![8081u16]),
        }
    }

    /// A cache whose probe answers `answer(ip)` after `delay`, counting calls.
    fn cache(
        delay: Duration,
        max_entries: usize,
        answer: fn(IpAddr) -> ProbeAnswer,
    ) -> (ProbeCache, Arc<AtomicUsize>, ProbeMetrics) {
        cache_with(
            delay,
            CacheSettings {
                max_entries,
                ..CacheSettings::default()
            },
            answer,
        )
    }

    /// [`cache`] with any settings.
    fn cache_with(
        delay: Duration,
        settings: CacheSettings,
        answer: fn(IpAddr) -> ProbeAnswer,
    ) -> (ProbeCache, Arc<AtomicUsize>, ProbeMetrics) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let probe: ProbeFn = Arc::new(move |ip| {
            counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                answer(ip)
            })
        });
        let metrics = ProbeMetrics::default();
        (
            ProbeCache::new(probe, settings, metrics.clone()),
            calls,
            metrics,
        )
    }

    fn probes(m: &ProbeMetrics, result: &str) -> u64 {
        m.probes
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .get()
    }

    #[tokio::test(start_paused = true)]
    async fn answers_expire_after_their_ttl() {
        let (c, calls, m) = cache(Duration::from_millis(5), 16, |ip| {
            if ip == IpAddr::from([10, 0, 0, 1]) {
                meshed()
            } else {
                ProbeAnswer::Plain
            }
        });
        assert_eq!(c.lookup(ip(1)).await, meshed());
        assert_eq!(c.lookup(ip(2)).await, ProbeAnswer::Plain);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Within both TTLs: cached.
        tokio::time::sleep(NEGATIVE_TTL - Duration::from_secs(1)).await;
        c.lookup(ip(1)).await;
        c.lookup(ip(2)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // The negative answer expires first.
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.lookup(ip(1)).await;
        c.lookup(ip(2)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Then the positive one.
        tokio::time::sleep(POSITIVE_TTL).await;
        assert_eq!(c.lookup(ip(1)).await, meshed());
        assert_eq!(c.lookup(ip(2)).await, ProbeAnswer::Plain);
        assert_eq!(calls.load(Ordering::SeqCst), 5, "both probed again");
        assert_eq!(probes(&m, "meshed"), 2);
        assert_eq!(probes(&m, "plain"), 3);
        assert_eq!(m.entries.get(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_lookups_share_one_probe() {
        let (c, calls, m) = cache(Duration::from_millis(200), 16, |_| meshed());
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move { c.lookup(ip(7)).await }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), meshed());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(probes(&m, "meshed"), 1);
        // Another IP is a probe of its own.
        c.lookup(ip(8)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_goes_away_does_not_cancel_the_probe() {
        let (c, calls, _) = cache(Duration::from_millis(200), 16, |_| meshed());
        let waiting = tokio::time::timeout(Duration::from_millis(10), c.lookup(ip(3))).await;
        assert!(waiting.is_err());
        // The probe goes on; a later caller gets its answer without a second probe.
        assert_eq!(c.lookup(ip(3)).await, meshed());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_hangs_is_an_error_after_the_hard_timeout() {
        let (c, _, m) = cache(Duration::from_secs(3600), 16, |_| meshed());
        let started = Instant::now();
        assert_eq!(c.lookup(ip(4)).await, ProbeAnswer::Error);
        assert_eq!(started.elapsed(), CacheSettings::default().probe_timeout);
        assert_eq!(probes(&m, "error"), 1);
        assert!(!ProbeAnswer::Error.meshed_port(80));
    }

    #[tokio::test(start_paused = true)]
    async fn the_size_is_bounded_and_the_first_to_expire_goes() {
        let (c, calls, m) = cache(Duration::from_millis(1), 3, |ip| match ip {
            IpAddr::V4(v4) if v4.octets()[3] % 2 == 1 => meshed(),
            _ => ProbeAnswer::Plain,
        });
        c.lookup(ip(1)).await; // meshed, expires at 60 s
        c.lookup(ip(2)).await; // plain, expires at 10 s
        c.lookup(ip(3)).await; // meshed
        assert_eq!(c.len(), 3);
        c.lookup(ip(5)).await; // meshed: one must go, the plain one (first to expire)
        assert_eq!(c.len(), 3);
        assert_eq!(m.entries.get(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        c.lookup(ip(1)).await;
        c.lookup(ip(3)).await;
        c.lookup(ip(5)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4, "the meshed ones stayed");
        c.lookup(ip(2)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 5, "the plain one was evicted");
        assert_eq!(c.len(), 3);
        // Expired entries go before live ones.
        tokio::time::sleep(NEGATIVE_TTL + Duration::from_secs(1)).await;
        c.lookup(ip(9)).await;
        assert_eq!(c.len(), 3);
        c.lookup(ip(1)).await;
        c.lookup(ip(3)).await;
        c.lookup(ip(5)).await;
        assert!(c.len() <= 3);
    }

    #[tokio::test(start_paused = true)]
    async fn probes_in_flight_are_bounded_and_a_meshed_ip_never_goes_plain_for_it() {
        let settings = CacheSettings {
            max_probes_in_flight: 2,
            ..CacheSettings::default()
        };
        let (c, calls, m) = cache_with(Duration::from_millis(200), settings, |ip| match ip {
            IpAddr::V4(v4) if v4.octets()[3] % 2 == 1 => meshed(),
            _ => ProbeAnswer::Plain,
        });
        // ip(1) was meshed; its answer has expired.
        assert_eq!(c.lookup(ip(1)).await, meshed());
        tokio::time::sleep(POSITIVE_TTL + Duration::from_secs(1)).await;
        // Two probes take both slots.
        let busy: Vec<_> = [10, 12]
            .into_iter()
            .map(|n| {
                let c = c.clone();
                tokio::spawn(async move { c.lookup(ip(n)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // A new IP: not probed, no wait, routed as an error (plain), not cached.
        let started = Instant::now();
        assert_eq!(c.lookup(ip(14)).await, ProbeAnswer::Error);
        assert_eq!(started.elapsed(), Duration::ZERO);
        // The expired meshed IP stays meshed: no slot is no downgrade.
        assert_eq!(c.lookup(ip(1)).await, meshed());
        assert_eq!(calls.load(Ordering::SeqCst), 3, "no probe without a slot");
        assert_eq!(m.no_slot.get(), 2);
        // An IP being probed is joined, not refused.
        assert_eq!(c.lookup(ip(10)).await, ProbeAnswer::Plain);
        for t in busy {
            assert_eq!(t.await.unwrap(), ProbeAnswer::Plain);
        }
        // The slots are free again: both IPs left without a probe are probed now.
        assert_eq!(c.lookup(ip(14)).await, ProbeAnswer::Plain);
        assert_eq!(c.lookup(ip(1)).await, meshed());
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        assert_eq!(m.no_slot.get(), 2);
        assert_eq!(
            probes(&m, "error"),
            0,
            "a lookup without a slot is not a probe"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn invalidation_makes_the_next_lookup_probe() {
        let (c, calls, m) = cache(Duration::from_millis(1), 16, |_| meshed());
        c.lookup(ip(1)).await;
        c.lookup(ip(1)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        c.invalidate(ip(1));
        assert_eq!(c.len(), 0);
        assert_eq!(m.entries.get(), 0);
        c.lookup(ip(1)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Invalidating an unknown IP is harmless.
        c.invalidate(ip(99));
        assert_eq!(c.len(), 1);
    }

    /// A mesh CA of trust domain cluster.local and a workload of it, as [`MeshTls`].
    fn workload(ca: &picket_mtls::MeshCa, sa: &str) -> Arc<MeshTls> {
        let id = picket_mtls::SpiffeId::in_default_domain("e2e", sa).unwrap();
        let csr = picket_mtls::generate_key_and_csr(Some(&id)).unwrap();
        let cert = ca
            .issue_from_csr(
                csr.csr_pem.as_bytes(),
                &id,
                picket_mtls::DEFAULT_WORKLOAD_LIFETIME,
            )
            .unwrap();
        let identity = picket_mtls::WorkloadIdentity::from_pem(
            cert.chain_pem().as_bytes(),
            csr.key_pem.as_bytes(),
        )
        .unwrap();
        Arc::new(MeshTls::new(identity, ca.trust_bundle().unwrap()).unwrap())
    }

    fn new_ca() -> picket_mtls::MeshCa {
        picket_mtls::MeshCa::generate(
            picket_mtls::TrustDomain::default(),
            &picket_mtls::CaOptions::default(),
        )
        .unwrap()
    }

    /// The real probe against the real mesh port, on 127.0.0.1.
    #[tokio::test]
    async fn probing_a_mesh_port_a_closed_port_a_stranger_and_plain_tcp() {
        let ca = new_ca();
        let server = workload(&ca, "server");
        let client = workload(&ca, "client");
        let stranger = workload(&new_ca(), "client");
        let (_stop, stopped) = watch::channel(false);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mesh_port = listener.local_addr().unwrap();
        tokio::spawn(serve_mesh_port(
            listener,
            server.clone(),
            Arc::from(vec![8081u16, 9000]),
            stopped,
        ));
        let peers = AcceptedPeers::trust_domain(picket_mtls::TrustDomain::default());
        let t = Duration::from_secs(2);
        let probe = |tls: Arc<MeshTls>, addr| {
            let peers = peers.clone();
            async move { probe_mesh_port(addr, &tls, &peers, t, t).await }
        };
        assert_eq!(
            probe(client.clone(), mesh_port).await,
            ProbeAnswer::Meshed {
                plain_ports: Arc::from(vec![8081u16, 9000])
            }
        );
        // Another CA: not a peer of ours (whichever side refuses first).
        assert_eq!(probe(stranger, mesh_port).await, ProbeAnswer::Plain);
        // Nothing listening: refused.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert_eq!(probe(client.clone(), closed).await, ProbeAnswer::Plain);
        // Something that is not TLS.
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = http.accept().await {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        assert_eq!(probe(client.clone(), http_addr).await, ProbeAnswer::Plain);
        // Something that accepts and says nothing: a timeout, an error.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                conns.push(s);
            }
        });
        let short = Duration::from_millis(200);
        assert_eq!(
            probe_mesh_port(silent_addr, &client, &peers, short, short).await,
            ProbeAnswer::Error
        );
        held.abort();
    }

    #[test]
    fn announcement_round_trip_and_plain_ports() {
        let line = announcement(&[8081, 9000]);
        assert_eq!(line, "picket-mesh/1 plain-ports=8081,9000\n");
        assert_eq!(parse_announcement(line.as_bytes()), Some(vec![8081, 9000]));
        assert_eq!(
            parse_announcement(announcement(&[]).as_bytes()),
            Some(vec![])
        );
        assert_eq!(
            parse_announcement(b"picket-mesh/1 future=1 plain-ports=80,x,70000,443\n"),
            Some(vec![80, 443])
        );
        assert_eq!(parse_announcement(b"HTTP/1.1 400 Bad Request\r\n"), None);
        assert_eq!(parse_announcement(b""), None);
        let m = ProbeAnswer::Meshed {
            plain_ports: Arc::from(vec![8081u16]),
        };
        assert!(m.meshed_port(8080));
        assert!(!m.meshed_port(8081));
        assert!(!m.meshed_port(15090));
        assert!(!m.meshed_port(15443));
        assert!(!ProbeAnswer::Plain.meshed_port(8080));
    }
}
